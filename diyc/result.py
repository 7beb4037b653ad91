"""The Result of a finished container or exec: subprocess.CompletedProcess's
shape, with diyc's own fields."""


class Result:
    """What a finished container (or exec_run) leaves, shaped like
    subprocess.CompletedProcess: args, returncode (also exit_code), stdout
    and stderr (bytes, or str with text=True; None when not captured),
    check_returncode(); and diyc's own: oom_killed, id (the container's),
    timings (ms per start phase)."""

    def __init__(self, exit_code, stdout=None, stderr=None, oom_killed=False, container_id=None,
                 timings=None, args=None):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.oom_killed = oom_killed
        self.id = container_id
        self.timings = timings or {}
        self.args = args

    @property
    def returncode(self):
        """The exit code: the program's, or 128+N when signal N killed it."""
        return self.exit_code

    def check_returncode(self):
        """Raise diyc.ContainerError (a subprocess.CalledProcessError) if
        the exit code is not 0."""
        if self.exit_code:
            from .process_errors import ContainerError
            raise ContainerError(self.exit_code, self.args, self.stdout, self.stderr, self.id)

    def __repr__(self):
        shown = [f"args={self.args!r}", f"returncode={self.exit_code!r}"]
        shown += [f"{k}={v!r}" for k, v in (("stdout", self.stdout), ("stderr", self.stderr))
                  if v is not None]
        return f"Result({', '.join(shown)}, oom_killed={self.oom_killed})"
