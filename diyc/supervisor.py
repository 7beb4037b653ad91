"""Detached containers: the supervisor, the end of a container, stop, wait,
restart policies.

Daemonless, like podman: each detached container has a supervisor of its
own, diyc-shim (C, ~1 MB resident).  It is the container's parent, copies
its output into containers/<id>/container.log and, when the container
exits, writes containers/<id>/exit and execs `diyc _finish ID`, which
records the end, releases the cgroup and network, and restarts or removes
the container as its policies say.  Everything else reads the record.
"""

import os
import sys
import time

from .errors import Conflict, ContainerNotFound, InvalidArgument
from .logs import DEFAULT_LOG_MAX_SIZE
from .record import now
from .state import pid_alive

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diyc-shim")
INIT_BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diyc-init")


def _finish_command(ctr):
    """How the shim calls us back: this interpreter, this copy of diyc."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys; sys.path.insert(0, {package_parent!r}); "
            "from diyc.cli import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-I", "-S", "-c", code, "--root", ctr.root.path, "_finish", ctr.id]


def supervisor_setup(ctr, init, opened):
    """Give a container being started detached: stdin from /dev/null, stdout
    and stderr into pipes the shim reads, and the shim as its parent.  The
    fds we open are appended to `opened` (the caller closes them)."""
    if not os.access(SHIM, os.X_OK):
        raise InvalidArgument(f"the supervisor {SHIM} is missing: reinstall diyc")
    max_size = ctr.record.get("log", {}).get("max_size", DEFAULT_LOG_MAX_SIZE)
    finish = ["--"] + _finish_command(ctr)
    devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    opened.append(devnull)
    if ctr.record.get("tty"):
        # a terminal: the container makes its pty and sends the master to
        # the supervisor (argv[5]), which serves `diyc attach`
        import socket
        child_end, supervisor_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        opened += (child_end.detach(), supervisor_end.detach())
        init.console_fd, init.console_recv_fd = opened[-2], opened[-1]
        init.stdio = (devnull, devnull, devnull)
        init.supervisor_argv = [SHIM, "PID", f"{ctr.dir}/container.log", str(max_size),
                                f"{ctr.dir}/exit", "MASTER", "-1",
                                f"{ctr.dir}/attach.sock"] + finish
        return
    out_r, out_w = os.pipe()
    opened += (out_r, out_w)
    err_r, err_w = os.pipe()
    opened += (err_r, err_w)
    # the shim inherits the read ends across its execve; the container gets
    # the write ends as its stdout/stderr (everything else it has is CLOEXEC)
    os.set_inheritable(out_r, True)
    os.set_inheritable(err_r, True)
    init.stdio = (devnull, out_w, err_w)
    init.supervisor_argv = [SHIM, "PID", f"{ctr.dir}/container.log", str(max_size),
                            f"{ctr.dir}/exit", str(out_r), str(err_r), "-"] + finish


def finish(ctr):
    """`diyc _finish ID`, run by the shim once the container has exited."""
    with ctr.lock():
        if not ctr.reload_if_present():
            return  # removed (rm -f) while we were on the way
        state = ctr.record["state"]
        if state.get("status") != "running":
            return  # a start that failed: whoever started it cleans up
        try:
            with open(f"{ctr.dir}/exit") as f:
                code = int(f.read())
        except (OSError, ValueError):
            code = 255
        oom = ctr.control_group().oom_killed()
        state.update(status="exited", exit_code=code, oom_killed=oom, finished=now(),
                     pid=None, supervisor=None)
        ctr.died(code, oom)
        ctr.pid = None
        ctr.release_resources()
        if not state.get("removing") and _should_restart(ctr, code):
            state["restart_count"] = state.get("restart_count", 0) + 1
            ctr.save()
            time.sleep(0.1 * min(state["restart_count"], 10))  # a little back-off
            ctr.start(detach=True)
            return
        if ctr.record["auto_remove"] and not state.get("removing"):
            ctr.remove_under_lock()
            return
        ctr.save()


def _should_restart(ctr, code):
    policy = ctr.record.get("restart") or {"name": "no"}
    state = ctr.record["state"]
    if state.get("stopped_by_user"):
        return False
    if policy["name"] in ("always", "unless-stopped"):
        return True
    if policy["name"] == "on-failure" and code != 0:
        return not policy["max_retries"] or state.get("restart_count", 0) < policy["max_retries"]
    return False


def first_exit(ctr, restarts):
    """The exit code of the run that began after `restarts` restarts (its
    record's state["restart_count"] then), once it has ended - restarted
    by its policy since, or not -; else None.  What a foreground `diyc run
    --restart` returns, as docker's (which waits for the next exit, not
    for the policy to give up)."""
    state = ctr.record["state"]
    if ctr.status != "running" and "exit_code" in state:  # ended (and maybe about to restart)
        return state["exit_code"]
    if state.get("restart_count", 0) > restarts:  # restarted since
        return state.get("last_exit_code", 255)
    return None if ctr.status == "running" else 255


def wait_until_exited(ctr, timeout=None):
    """Poll the record until the container is not running.  -> status
    ("removed" when its record went away: a --rm container, or rm -f)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            ctr.reload()
        except FileNotFoundError:
            return "removed"
        status = ctr.status
        if status != "running":
            return status
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(0.02)


DEFAULT_STOP_TIMEOUT = 10


def stop(ctr, timeout=None, sig=None):
    """The container's stop signal (--stop-signal, the image's StopSignal,
    else SIGTERM), then SIGKILL after `timeout` seconds (None: its
    --stop-timeout, else 10)."""
    with ctr.lock():
        if not ctr.reload_if_present():
            raise ContainerNotFound(f"no such container: {ctr.name} (removed meanwhile)")
        if ctr.status != "running":
            return False
        ctr.record["state"]["stopped_by_user"] = True
        ctr.save()
    if timeout is None:
        timeout = ctr.record.get("stop_timeout")
        timeout = DEFAULT_STOP_TIMEOUT if timeout is None else timeout
    ctr.kill(sig or ctr.record.get("stop_signal") or 15)
    if wait_until_exited(ctr, timeout) == "running":
        ctr.kill(9)
        wait_until_exited(ctr, 30)
    wait_for_supervisor(ctr)
    from .events import container_event
    container_event(ctr, "stop")
    return True


def wait_for_supervisor(ctr, timeout=30):
    """Until the shim (and the `_finish` it became) has gone."""
    state = ctr.record["state"]
    pid, start = state.get("supervisor"), state.get("supervisor_start")
    deadline = time.monotonic() + timeout
    while pid and pid_alive(pid, start) and time.monotonic() < deadline:
        time.sleep(0.01)


def check_can_remove(ctr, force):
    if ctr.status == "running" and not force:
        raise Conflict(f"container {ctr.name} is running: stop it first or use -f")
