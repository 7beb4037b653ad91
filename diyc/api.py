"""diyc.run(): a container run to completion, with subprocess.run's
conventions (capture_output, PIPE/DEVNULL/STDOUT, input, text, check,
timeout) and every `diyc run` option as a keyword."""

from __future__ import annotations  # (type hints as text: nothing imported for them)

import os
import time

from .create import CREATE_OPTIONS
from .errors import DiycError
from .result import Result
from .runtime import Container
from .stdio import Plumbing
from .trace import Trace

TYPE_CHECKING = False  # (typing's costs an import; type checkers know this name)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import IO

    from .state import Root


def run(image: str, command: str | Sequence[str] | None = None, *,
        stdin: int | IO | None = None, stdout: int | IO | None = None,
        stderr: int | IO | None = None,
        capture_output: bool = False, input: bytes | str | None = None, text: bool = False,
        encoding: str | None = None, errors: str | None = None, check: bool = False,
        timeout: float | None = None,
        name: str | None = None, hostname: str | None = None,
        env: Mapping[str, str | int | None] | Sequence[str] | None = None,
        workdir: str | None = None, user: str | None = None,
        entrypoint: str | Sequence[str] | None = None,
        memory: int | str | None = None, memory_swap: int | str | None = None,
        cpus: float | str | None = None, pids_limit: int | str | None = None,
        network: str = "bridge", ip: str | None = None,
        publish: Mapping[str, object] | Sequence[str] | None = None,
        publish_all_ports: bool = False, expose: Sequence[str | int] | str | int | None = None,
        auto_remove: bool = True, rm_tmpfs_size: int | str | None = None,
        cgroup_parent: str | None = None, read_only: bool = False,
        privileged: bool = False, cap_add: Sequence[str] | None = None,
        cap_drop: Sequence[str] | None = None, security_opt: Sequence[str] | None = None,
        ulimits: Sequence[str | Mapping[str, object]] | None = None,
        sysctls: Mapping[str, str | int] | Sequence[str] | None = None,
        oom_score_adj: int | str | None = None,
        devices: Sequence[str | Mapping[str, str]] | None = None,
        tmpfs: Mapping[str, str] | Sequence[str] | None = None,
        restart: str | Mapping[str, object] | None = None,
        log_opts: Mapping[str, str] | Sequence[str] | None = None,
        volumes: Mapping[str, object] | Sequence[str] | None = None,
        init: bool = False, tty: bool = False, userns: str | None = None,
        env_file: str | Sequence[str] | None = None,
        labels: Mapping[str, str] | Sequence[str] | None = None,
        label_file: str | Sequence[str] | None = None,
        extra_hosts: Mapping[str, str] | Sequence[str] | None = None,
        dns: Sequence[str] | None = None, dns_search: Sequence[str] | None = None,
        dns_opt: Sequence[str] | None = None,
        mounts: Sequence[str | Mapping[str, object]] | None = None,
        stop_signal: str | int | None = None, stop_timeout: int | None = None,
        healthcheck: Mapping[str, object] | None = None,
        pull: str | None = None, platform: str | None = None,
        root: str | os.PathLike | Root | None = None, trace: bool | Trace = False) -> Result:
    options = {key: value for key, value in locals().items() if key in CREATE_OPTIONS}
    if timeout is not None:
        from .numbers import decimal
        timeout = decimal(timeout, "timeout (seconds)")
    tr = trace if isinstance(trace, Trace) else Trace(enabled=bool(trace))
    # the stdio first: a bad one is refused before a container exists
    plumbing = Plumbing(stdin, stdout, stderr, capture_output, input, text, encoding, errors)
    try:
        ctr = Container.create(image, command, root=root, trace=tr, **options)
        result = _run_created(ctr, plumbing, timeout)
    finally:
        plumbing.close()
    tr.mark("wait")
    result.timings = tr.as_dict()
    if check:
        result.check_returncode()
    return result


def _run_created(ctr, plumbing, timeout):
    """Start `ctr`, feed and drain its pipes, wait: -> Result.  Whatever
    fails or times out, the container is killed and removed."""
    args = ctr.record["spec"]["process"]["args"]
    try:
        try:
            ctr.start(plumbing.child_stdio())
        finally:
            plumbing.started()
        deadline = None if timeout is None else time.monotonic() + timeout
        out, err, timed_out = plumbing.communicate(deadline)
        if not timed_out and deadline is not None:
            from .process_errors import ContainerTimeout
            try:
                result = ctr.wait(timeout=max(0.0, deadline - time.monotonic()))
            except ContainerTimeout:
                timed_out = True
        elif not timed_out:
            result = ctr.wait()
        if timed_out:
            from .process_errors import ContainerTimeout
            raise ContainerTimeout(args, timeout, out, err, ctr.id)
    except BaseException:
        try:
            ctr.discard()
        except DiycError:
            pass
        raise
    result.stdout, result.stderr = out, err
    return result


def _options_doc():
    """The option list of Container.create's docstring, for run's."""
    doc = Container.create.__doc__ or ""
    start = doc.find("        Options (keyword-only")
    if start < 0:
        return ""
    return "\n".join(line[4:] for line in doc[start:].rstrip().splitlines()) + "\n"


run.__doc__ = """Run a container to completion, as `diyc run --rm`, and return a
    Result shaped like subprocess.CompletedProcess: args, returncode (also
    exit_code), stdout, stderr, check_returncode(); and oom_killed, id,
    timings (ms per start phase).

        r = diyc.run("busybox", "sh -c 'echo hi; exit 3'", memory="64m",
                     capture_output=True, text=True)
        r.returncode, r.stdout            # 3, 'hi\\n'

    image: an image name or id in the store ("busybox", "app:1").
    command: the program and its arguments (["sh", "-c", "echo hi"]), or
        one str split as a shell splits words ("sh -c 'echo hi'");
        None: the image's Cmd.

    As subprocess.run (keyword-only):
      stdin, stdout, stderr: None (ours), diyc.PIPE (captured),
          diyc.DEVNULL, a file object or an fd; stderr=diyc.STDOUT joins
          stdout.  (subprocess's constants are the same values.)
      capture_output: stdout=stderr=PIPE.
      input: bytes (str with text=True) fed to the container's stdin,
          which then gets EOF.
      text, encoding, errors: decode the captured output (and encode
          input): encoding's codec, else the locale's; newlines translated.
      check: a non-zero exit code raises diyc.ContainerError (a
          subprocess.CalledProcessError: returncode, cmd, stdout, stderr,
          and id) - the container is already removed.
      timeout: seconds the container may run; then it is killed and
          removed, and diyc.ContainerTimeout (a subprocess.TimeoutExpired
          with the output so far) is raised.

    auto_remove is True here: the container is removed when it ends (give
    auto_remove=False to keep it, as `diyc run` without --rm).
    network is "bridge" by default, as docker-py's (the daemon's bridge):
    network="none" is the fast path for sandboxes that need no network
    (no veth, address or route to set up; see the README for the cost).
    trace: True (or a diyc.trace.Trace) fills Result.timings.

    Errors: ArgumentTypeError (also a TypeError) for an argument of the
    wrong type, InvalidArgument for a bad value, ImageNotFound, Conflict
    (a name in use), CommandNotFound (127) and CommandNotExecutable (126);
    none leaves anything behind.  Unknown keywords are a TypeError naming
    diyc.run.

""" + _options_doc()
# unknown keywords and missing arguments: "diyc.run() got an unexpected keyword ..."
run.__qualname__ = "diyc.run"
run.__module__ = "diyc"
