"""The library's exceptions shaped like subprocess's, for callers that
already handle those: a module of their own, as importing subprocess costs
milliseconds the CLI never needs."""

import subprocess


class ContainerError(subprocess.CalledProcessError):
    """A container (or an exec_run command) exited with a non-zero code
    and check=True was given.  returncode (also exit_code), cmd (its
    args), stdout and stderr (as captured, else None), and id: the
    container's."""

    def __init__(self, returncode, cmd, stdout=None, stderr=None, container_id=None):
        super().__init__(returncode, cmd, stdout, stderr)
        self.id = container_id

    @property
    def exit_code(self):
        return self.returncode

    def __str__(self):
        where = f"container {self.id[:12]}: " if self.id else ""
        return where + super().__str__()


class ContainerTimeout(subprocess.TimeoutExpired):
    """A timeout= ran out: cmd, timeout (seconds), stdout and stderr
    (what was captured until then), and id: the container's.  diyc.run
    and exec_run have killed what they started; Container.wait leaves the
    container running."""

    def __init__(self, cmd, timeout, stdout=None, stderr=None, container_id=None):
        super().__init__(cmd, timeout, stdout, stderr)
        self.id = container_id
