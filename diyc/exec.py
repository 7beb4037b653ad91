"""`diyc exec`: a process started in a running container, joining its
namespaces and cgroup, with its identity, capabilities and seccomp filter."""

import os

from .errors import Conflict, ContainerNotFound, InvalidArgument


# setns order: the user namespace first (it owns the others), the mount
# namespace last (after it, /proc is the container's; our fds to the others
# still work).  (/proc/PID/ns name, OCI namespace type)
JOIN_ORDER = (("user", "user"), ("ipc", "ipc"), ("uts", "uts"), ("net", "network"),
              ("cgroup", "cgroup"), ("pid", "pid"), ("mnt", "mount"))


def exec_in(ctr, args, env=(), workdir=None, user=None, stdio=(-1, -1, -1), terminal=False,
            on_started=None, detach=False, trace=None, reload=True):
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
            return exec_process(ctr, process, (null, null, null), detach=True, trace=trace,
                                reload=reload)[1]
        finally:
            os.close(null)
    return exec_process(ctr, process, stdio, on_started=on_started, trace=trace, reload=reload)[1]


def exec_process(ctr, process, stdio=(-1, -1, -1), on_started=None, detach=False, console_fd=None,
                 trace=None, reload=True):
    """Run an OCI `process` in the running container `ctr`: the namespaces
    it has joined with setns (pid too: the process is forked after it), its
    cgroup, and the process's identity, capabilities, rlimits and the
    container's seccomp filter.  A terminal's master goes to `console_fd`
    if given (an OCI console socket), else to on_started(pid, master).
    reload=False: ctr's record was read just now (the CLI's), not again.
    -> (pid, exit code; None when detached)."""
    from . import _native
    from .errors import init_error
    from .rootfs import init_config
    from .record import exec_error, exit_code_of, waitpid
    _check_running(ctr, reload)
    mark = trace.mark if trace is not None else (lambda phase: None)
    mark("check")
    spec = ctr.record["spec"]
    # (no hooks: createContainer and startContainer run at the start only,
    # as runc and crun run them)
    exec_spec = dict(spec, process=process, mounts=[], root={"path": "/"}, hooks={},
                     linux=dict(spec["linux"], namespaces=[], maskedPaths=[], readonlyPaths=[],
                                sysctl={}, devices=[]))
    fds = []
    child = None
    try:
        ns_fds, cg_fds = _join_fds(ctr, fds)
        init = init_config(exec_spec, stdio=stdio)
        init.join_ns_fds = ns_fds
        init.cgroup_fds = cg_fds
        init.devices = init.symlinks = ()
        if process.get("terminal") and console_fd is not None:
            init.console_fd = console_fd
        elif process.get("terminal"):
            init.console_to_parent = True
        mark("prepare")
        try:
            child = _native.spawn(init)
        except _native.InitFailure as e:
            raise init_error(e.step, e.errno, e.detail) from None
        try:
            pid = child.wait_pid()
        except _native.InitFailure as e:
            waitpid(child.pid)
            raise init_error(e.step, e.errno, e.detail) from None
        if pid != child.pid:
            waitpid(child.pid)  # its first process, which setns()'d and cloned it
        mark("join")
        master = None
        if init.console_to_parent:
            try:
                master = child.wait_console()
            except _native.InitFailure:
                pass  # it failed before: wait_exec says why
        child.release()
        error = exec_error(child, reap=True, pid=pid)
        _close_all(fds)  # (not needed any more: not on the way from the program's end)
        mark("execve")
        if error:
            if master is not None:
                os.close(master)
            waitpid(pid)
            raise error
        if detach:
            return pid, None
        if on_started:
            on_started(pid, master) if init.console_to_parent else on_started(pid)
        _, status = waitpid(pid)
        mark("program")
        if master is not None:
            os.close(master)
    finally:
        _close_all(fds)
        if child is not None:
            child.close()
    return pid, exit_code_of(status)


def _check_running(ctr, reload):
    if reload:
        try:
            ctr.reload()
        except FileNotFoundError:
            raise ContainerNotFound(f"no such container: {ctr.name} (removed meanwhile)") from None
    if ctr.status != "running":
        raise Conflict(f"container {ctr.name} is not running")
    if ctr.control_group().frozen():  # (ctr.paused, without reading its status again)
        raise Conflict(f"container {ctr.name} is paused: unpause it before exec")


def _join_fds(ctr, fds):
    """Opened, in `fds` (the caller closes them): the container's
    namespaces (JOIN_ORDER) and its cgroup files -> (the namespaces' fds,
    the cgroup files' fds)."""
    spec, state = ctr.record["spec"], ctr.record["state"]
    own = {ns["type"] for ns in spec["linux"].get("namespaces") or ()}
    for proc_name, oci_name in JOIN_ORDER:
        if oci_name in own:
            fds.append(os.open(f"/proc/{state['pid']}/ns/{proc_name}", os.O_RDONLY | os.O_CLOEXEC))
    n_ns = len(fds)
    cg = ctr.control_group()
    for f in [f"{p}/tasks" for p in cg.paths.values()] if cg.version == 1 else cg.join_files():
        try:
            fds.append(os.open(f, os.O_WRONLY | os.O_CLOEXEC))
        except (FileNotFoundError, NotADirectoryError):
            pass  # (a hierarchy it has no cgroup in)
    return fds[:n_ns], fds[n_ns:]


def _close_all(fds):
    while fds:
        os.close(fds.pop())
