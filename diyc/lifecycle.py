"""Detached containers: the supervisor, the end of a container, stop, wait,
restart policies, logs.

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
from .state import FileLock, pid_alive, read_json

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diyc-shim")
INIT_BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diyc-init")
DEFAULT_LOG_MAX_SIZE = 10 << 20


def container_lock(ctr):
    """Serialises commands on one container (stop, rm, _finish, the end of
    a foreground run).  Whoever takes it second re-reads the record with
    reload_if_present(): the one before may have removed the container."""
    return FileLock(f"{ctr.root.path}/locks/{ctr.id}.lock")


def reload_if_present(ctr):
    """Under container_lock(ctr): re-read the record -> True; or False when
    the container was removed meanwhile (`rm -f` racing the end of a run):
    whoever held the lock before us did all the work, nothing is left to
    release.  The lock file our open() re-created is removed again (nobody
    needs it any more: every later holder finds the record gone too)."""
    try:
        ctr.reload()
        return True
    except FileNotFoundError:
        try:
            os.unlink(f"{ctr.root.path}/locks/{ctr.id}.lock")
        except FileNotFoundError:
            pass
        return False


def parse_restart_policy(value):
    """docker's --restart no|on-failure[:N]|always|unless-stopped."""
    if value in (None, "", "no"):
        return {"name": "no", "max_retries": 0}
    name, _, count = value.partition(":")
    if name not in ("on-failure", "always", "unless-stopped") or (count and name != "on-failure"):
        raise InvalidArgument(f"invalid --restart {value!r}: expected no, on-failure[:N], always "
                              "or unless-stopped")
    from .numbers import INT64_MAX, integer, shown
    retries = integer(count, f"--restart {shown(value)}: N", 0, INT64_MAX) if count else 0
    return {"name": name, "max_retries": retries}


def parse_log_opts(opts):
    out = {"max_size": DEFAULT_LOG_MAX_SIZE}
    for opt in opts or ():
        key, sep, value = opt.partition("=")
        if key == "max-size" and sep:
            from .config import parse_size
            out["max_size"] = parse_size(value, "log max-size")
        else:
            raise InvalidArgument(f"invalid --log-opt {opt!r}: only max-size=SIZE is supported")
    return out


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
    from .runtime import _now
    with container_lock(ctr):
        if not reload_if_present(ctr):
            return  # removed (rm -f) while we were on the way
        state = ctr.record["state"]
        if state.get("status") != "running":
            return  # a start that failed: whoever started it cleans up
        try:
            with open(f"{ctr.dir}/exit") as f:
                code = int(f.read())
        except (OSError, ValueError):
            code = 255
        oom = ctr._cgroup().oom_killed()
        state.update(status="exited", exit_code=code, oom_killed=oom, finished=_now(),
                     pid=None, supervisor=None)
        ctr.pid = None
        ctr._release_resources()
        if not state.get("removing") and _should_restart(ctr, code):
            state["restart_count"] = state.get("restart_count", 0) + 1
            ctr._save()
            time.sleep(0.1 * min(state["restart_count"], 10))  # a little back-off
            ctr.start(detach=True)
            return
        if ctr.record["auto_remove"] and not state.get("removing"):
            ctr._remove_unlocked()
            return
        ctr._save()


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


def stop(ctr, timeout=10, sig=15):
    """SIGTERM (or `sig`), then SIGKILL after `timeout` seconds."""
    with container_lock(ctr):
        if not reload_if_present(ctr):
            raise ContainerNotFound(f"no such container: {ctr.name} (removed meanwhile)")
        if ctr.status != "running":
            return False
        ctr.record["state"]["stopped_by_user"] = True
        ctr._save()
    ctr.kill(sig)
    if wait_until_exited(ctr, timeout) == "running":
        ctr.kill(9)
        wait_until_exited(ctr, 30)
    _wait_for_supervisor(ctr)
    return True


def _wait_for_supervisor(ctr, timeout=30):
    """Until the shim (and the `_finish` it became) has gone."""
    state = ctr.record["state"]
    pid, start = state.get("supervisor"), state.get("supervisor_start")
    deadline = time.monotonic() + timeout
    while pid and pid_alive(pid, start) and time.monotonic() < deadline:
        time.sleep(0.01)


# -- logs ---------------------------------------------------------------------

def read_log(path):
    """Records of a CRI-format log: (timestamp, stream, text) with partial
    lines joined."""
    records = []
    partial = {}
    for p in (f"{path}.1", path):
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        for line in data.split(b"\n"):
            rec = _parse_log_line(line)
            if rec is None:
                continue
            ts, stream, tag, text = rec
            if tag == b"P":
                partial[stream] = partial.get(stream, b"") + text
                continue
            records.append((ts, stream, partial.pop(stream, b"") + text))
    return records


def _parse_log_line(line):
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[:3]
    return ts.decode(), stream.decode(), tag, parts[3] if len(parts) == 4 else b""


def print_logs(ctr, follow=False, tail=None, timestamps=False, out=None, err=None):
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    path = f"{ctr.dir}/container.log"
    shown = 0
    records = read_log(path)
    if tail is not None:
        shown = max(0, len(records) - tail)

    def emit(recs):
        for ts, stream, text in recs:
            f = err if stream == "stderr" else out
            f.write((ts.encode() + b" " if timestamps else b"") + text + b"\n")
        out.flush()
        err.flush()

    emit(records[shown:])
    shown = len(records)
    while follow:
        try:
            running = ctr.reload().status == "running"
        except FileNotFoundError:  # a --rm container, ended and removed
            running = False
        records = read_log(path)
        if len(records) < shown:   # rotated: start over in the new file
            shown = 0
        emit(records[shown:])
        shown = len(records)
        if not running:
            return
        time.sleep(0.1)


def check_can_remove(ctr, force):
    if ctr.status == "running" and not force:
        raise Conflict(f"container {ctr.name} is running: stop it first or use -f")


# -- exec ---------------------------------------------------------------------

# setns order: the user namespace first (it owns the others), the mount
# namespace last (after it, /proc is the container's; our fds to the others
# still work).  (/proc/PID/ns name, OCI namespace type)
JOIN_ORDER = (("user", "user"), ("ipc", "ipc"), ("uts", "uts"), ("net", "network"),
              ("cgroup", "cgroup"), ("pid", "pid"), ("mnt", "mount"))


def exec_in(ctr, args, env=(), workdir=None, user=None, stdio=(-1, -1, -1), terminal=False,
            on_started=None, detach=False):
    """`diyc exec`: run a command in a running container, with its
    environment (plus `env`), working directory and user unless given.
    With terminal=True the command gets a pty made inside the container;
    on_started(pid, master) then runs once it has exec'd (to relay the
    terminal).  Returns the command's exit code (None when detached: it
    runs on, its output discarded, as with docker exec -d)."""
    from . import config
    args = config.check_text_list(args, "command")
    env = config.check_text_list(env or [], "env")
    for value, what in ((workdir, "workdir"), (user, "user")):
        if value is not None:
            config.check_text(value, what)
    if not args:
        raise InvalidArgument('"diyc exec" requires a command')
    spec = ctr.record["spec"]
    process = dict(spec["process"], args=list(args), terminal=terminal,
                   env=config.merge_env(spec["process"]["env"], env, os.environ),
                   cwd=workdir or spec["process"]["cwd"])
    if user is not None:
        from .users import resolve_user
        uid, gid, groups, _ = resolve_user(user, ctr.record["layers"])
        process["user"] = {"uid": uid, "gid": gid, "additionalGids": groups}
        if "capabilities" in process:
            from .security import process_capabilities
            process["capabilities"] = process_capabilities(process["capabilities"]["bounding"], uid)
    if detach:
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        try:
            return exec_process(ctr, process, (null, null, null), detach=True)[1]
        finally:
            os.close(null)
    return exec_process(ctr, process, stdio, on_started=on_started)[1]


def exec_process(ctr, process, stdio=(-1, -1, -1), on_started=None, detach=False, console_fd=None):
    """Run an OCI `process` in the running container `ctr`: the namespaces
    it has joined with setns (pid too: the process is forked after it), its
    cgroup, and the process's identity, capabilities, rlimits and the
    container's seccomp filter.  A terminal's master goes to `console_fd`
    if given (an OCI console socket), else to on_started(pid, master).
    -> (pid, exit code; None when detached)."""
    from . import _native
    from .errors import init_error
    from .rootfs import init_config
    from .runtime import _waitpid, exec_error
    try:
        ctr.reload()
    except FileNotFoundError:
        raise ContainerNotFound(f"no such container: {ctr.name} (removed meanwhile)") from None
    if ctr.status != "running":
        raise Conflict(f"container {ctr.name} is not running")
    spec = ctr.record["spec"]
    state = ctr.record["state"]
    exec_spec = dict(spec, process=process, mounts=[], root={"path": "/"},
                     linux=dict(spec["linux"], namespaces=[], maskedPaths=[], readonlyPaths=[],
                                sysctl={}, devices=[]))
    own = {ns["type"] for ns in spec["linux"].get("namespaces") or ()}
    fds = []
    child = None
    try:
        for proc_name, oci_name in JOIN_ORDER:
            if oci_name in own:
                fds.append(os.open(f"/proc/{state['pid']}/ns/{proc_name}", os.O_RDONLY | os.O_CLOEXEC))
        n_ns = len(fds)
        cg = ctr._cgroup()
        files = [f"{p}/tasks" for p in cg.paths.values()] if cg.version == 1 else cg.join_files()
        cg_fds = [os.open(f, os.O_WRONLY | os.O_CLOEXEC) for f in files if os.path.exists(f)]
        fds += cg_fds
        init = init_config(exec_spec, stdio=stdio)
        init.join_ns_fds = fds[:n_ns]
        init.cgroup_fds = cg_fds
        init.devices = init.symlinks = ()
        if process.get("terminal") and console_fd is not None:
            init.console_fd = console_fd
        elif process.get("terminal"):
            init.console_to_parent = True
        try:
            child = _native.spawn(init)
        except _native.InitFailure as e:
            raise init_error(e.step, e.errno, e.detail) from None
        try:
            pid = child.wait_pid()  # its first process setns()'d and cloned it
        except _native.InitFailure as e:
            raise init_error(e.step, e.errno, e.detail) from None
        finally:
            _waitpid(child.pid)
        master = None
        if init.console_to_parent:
            try:
                master = child.wait_console()
            except _native.InitFailure:
                pass  # it failed before: wait_exec says why
        child.release()
        error = exec_error(child, reap=True, pid=pid)
        if error:
            if master is not None:
                os.close(master)
            _waitpid(pid)
            raise error
        if detach:
            return pid, None
        if on_started:
            on_started(pid, master) if init.console_to_parent else on_started(pid)
        _, status = _waitpid(pid)
        if master is not None:
            os.close(master)
    finally:
        for fd in fds:
            os.close(fd)
        if child is not None:
            child.close()
    code = os.waitstatus_to_exitcode(status)
    return pid, 128 - code if code < 0 else code
