"""What a Container offers a Python caller besides create, start, wait and
remove: waiting with a timeout, removal at the end of a `with` block,
list filters, logs as bytes or lines, exec_run with subprocess's
conventions, top.  The Container methods are thin; the work is here."""

import os
import time

from .errors import InvalidArgument


def _timeout_error(ctr, timeout, stdout=None, stderr=None, args=None):
    from .process_errors import ContainerTimeout
    return ContainerTimeout(args if args is not None else ctr.record["spec"]["process"]["args"],
                            timeout, stdout, stderr, ctr.id)


def _seconds(timeout):
    from .numbers import decimal
    return decimal(timeout, "timeout (seconds)")


def pid_exits_within(pid, timeout):
    """True once process `pid` has ended (a zombie counts), False if it
    still runs after `timeout` seconds.  A pidfd: no polling, no signal."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        import select
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            if poller.poll(max(0, int((deadline - time.monotonic()) * 1000) + 1)):
                return True
            if time.monotonic() >= deadline:
                return False
    finally:
        os.close(fd)


def wait_for_end(ctr, timeout):
    """Until the container is not running, at most `timeout` seconds, then
    ContainerTimeout (it runs on)."""
    timeout = _seconds(timeout)
    if ctr.pid:  # our child: its pidfd says when
        if not pid_exits_within(ctr.pid, timeout):
            raise _timeout_error(ctr, timeout)
        return
    from .supervisor import wait_until_exited
    if wait_until_exited(ctr, timeout) == "running":
        raise _timeout_error(ctr, timeout)


def reap_supervisor(ctr):
    """A container this Container object started detached has a supervisor
    (diyc-shim, then the `diyc _finish` it becomes) whose parent we are:
    once the container has ended, reap it (waiting for it to finish
    recording the end)."""
    if ctr.supervisor:
        try:
            os.waitpid(ctr.supervisor, 0)
        except ChildProcessError:
            pass
        ctr.supervisor = None


def remove_at_exit(ctr):
    """The end of `with Container...`: kill it if it runs, record its end
    if it is our child, remove it; quiet if it is gone already."""
    if ctr.pid:
        ctr.kill(9)
        ctr.wait()  # reaps it, records the end (and removes an auto_remove one)
    try:
        ctr.reload()
    except FileNotFoundError:
        return
    ctr.remove(force=True)


# -- Container.list's filters ------------------------------------------------------

_FILTERS = ("status", "name", "id", "ancestor", "exited", "label", "network", "health")
STATUSES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


def checked_filters(filters):
    """{key: [str values]} of docker's filters, each key's values a str or a
    list (any of which matches); an unknown key or status is refused."""
    out = {}
    for key, wanted in dict(filters or {}).items():
        if key not in _FILTERS:
            raise InvalidArgument(f"invalid filter {key!r}: use one of {', '.join(_FILTERS)}")
        out[key] = [str(v) for v in ([wanted] if isinstance(wanted, (str, int)) else list(wanted))]
    for v in out.get("status", ()):
        if v not in STATUSES:
            raise InvalidArgument(f"invalid filter 'status={v}': use one of {', '.join(STATUSES)}")
    return out


def matches(ctr, all, filters):
    """filters (checked_filters'): every key must match.  status= and
    exited= imply all."""
    status = ctr.status
    if not all and status != "running" and not ({"status", "exited"} & filters.keys()):
        return False
    return all_filters_match(ctr, status, filters)


def all_filters_match(ctr, status, filters):
    for key, values in filters.items():
        if key == "status":  # docker's: paused is a status of its own
            ok = (ctr.state_name if status == "running" else status) in values
        elif key == "health":  # healthy, unhealthy, starting, none
            ok = (ctr.health_status or "none") in values
        elif key == "name":
            ok = any(v in ctr.name for v in values)
        elif key == "id":
            ok = any(ctr.id.startswith(v) for v in values)
        elif key == "ancestor":
            image = ctr.record.get("image")
            ok = any(v in (image, ctr.record.get("image_id")) or
                     (":" not in v and image == f"{v}:latest") for v in values)
        elif key == "label":  # KEY or KEY=VALUE
            labels = ctr.record.get("labels") or {}
            ok = any(labels.get(k) == v if eq else k in labels
                     for k, eq, v in (w.partition("=") for w in values))
        elif key == "network":
            ok = ctr.record.get("network") in values
        else:  # exited
            ok = status == "exited" and str(ctr.record["state"].get("exit_code")) in values
        if not ok:
            return False
    return True


# -- logs ---------------------------------------------------------------------------

def logs(ctr, stdout=True, stderr=True, follow=False, since=None, until=None, tail=None,
         timestamps=False):
    """Lines (bytes, each ending in a newline) of a detached container's
    log; with follow, more as they come until the container ends (or
    `until` passes)."""
    from .logs import read_log, time_window
    if tail is not None:
        from .numbers import INT64_MAX, integer
        tail = integer(tail, "tail", 0, INT64_MAX)
    within = time_window(since, until)
    streams = {s for s, wanted in (("stdout", stdout), ("stderr", stderr)) if wanted}
    path = f"{ctr.dir}/container.log"

    def lines(records):
        for ts, stream, text in records:
            if stream in streams and within(ts):
                yield (ts.encode() + b" " if timestamps else b"") + text + b"\n"

    records = read_log(path)
    shown = len(records)
    if tail is None:
        yield from lines(records)
    else:  # the last `tail` of the lines asked for
        wanted = list(lines(records))
        yield from wanted[max(0, len(wanted) - tail):]
    while follow:
        try:
            running = ctr.reload().status == "running"
        except FileNotFoundError:  # an auto_remove container, ended and removed
            running = False
        records = read_log(path)
        if len(records) < shown:  # rotated: start over in the new file
            shown = 0
        yield from lines(records[shown:])
        shown = len(records)
        if not running or within.passed():
            return
        time.sleep(0.05)


# -- exec_run ---------------------------------------------------------------------------

def exec_run(ctr, cmd, env=None, workdir=None, user=None, stdin=None, stdout=None, stderr=None,
             capture_output=True, input=None, text=False, encoding=None, errors=None, check=False,
             timeout=None, detach=False):
    """Container.exec_run: `diyc exec` with diyc.run's conventions."""
    from . import arguments
    from .exec import exec_in
    from .result import Result
    from .stdio import Plumbing
    args = arguments.command(cmd)
    env = arguments.env(env) if env is not None else None
    if timeout is not None:
        timeout = _seconds(timeout)
    if detach:
        exec_in(ctr, args, env=env, workdir=workdir, user=user, detach=True)
        return Result(None, container_id=ctr.id, args=args)
    if capture_output and (stdout is not None or stderr is not None):
        capture_output = False  # explicit streams win over the default capture
    plumbing = Plumbing(stdin, stdout, stderr, capture_output, input, text, encoding, errors)
    got = {}

    def started(pid):
        plumbing.started()
        deadline = None if timeout is None else time.monotonic() + timeout
        got["out"], got["err"], timed_out = plumbing.communicate(deadline)
        if not timed_out and deadline is not None:
            timed_out = not pid_exits_within(pid, max(0.0, deadline - time.monotonic()))
        if timed_out:
            got["timed_out"] = True
            os.kill(pid, 9)  # not reaped yet: still ours, the pid cannot be reused

    try:
        code = exec_in(ctr, args, env=env, workdir=workdir, user=user,
                       stdio=plumbing.child_stdio(), on_started=started)
    finally:
        plumbing.close()
    if got.get("timed_out"):
        raise _timeout_error(ctr, timeout, got["out"], got["err"], args)
    result = Result(code, got.get("out"), got.get("err"), container_id=ctr.id, args=args)
    if check:
        result.check_returncode()
    return result


# -- attrs ----------------------------------------------------------------------------------

def attrs(ctr):
    """Container.attrs: docker's inspect of its record as it is now (as it
    was last, once it is removed)."""
    from .inspect_view import container
    try:
        ctr.reload()
    except FileNotFoundError:
        pass
    return container(ctr)


# -- top ---------------------------------------------------------------------------------

TOP_TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]  # ps -ef's


def top(ctr, ps_args=None):
    """Its processes (those in its cgroup), host pids.  Without ps_args,
    ps -ef's columns read from /proc; with them (["-o", "pid,comm"] or
    "aux"), the host's ps with those options, its rows kept for the
    container's pids (as docker does: the PID column must be there)."""
    from .errors import Conflict
    if ctr.status != "running":
        raise Conflict(f"container {ctr.name} is not running")
    pids = sorted(ctr.control_group().pids())
    if ps_args:
        return _ps_rows(pids, ps_args.split() if isinstance(ps_args, str) else list(ps_args))
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    boot = time.time() - uptime
    rows = []
    for pid in pids:
        row = _proc_row(pid, ticks, uptime, boot)
        if row:
            rows.append(row)
    return {"Titles": list(TOP_TITLES), "Processes": rows}


def _proc_row(pid, ticks, uptime, boot):
    """One process as ps -ef shows it, or None when it has ended."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        uid = os.stat(f"/proc/{pid}").st_uid
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2:].split()  # (the name may hold spaces and parens)
    comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
    cpu = (int(fields[11]) + int(fields[12])) / ticks   # utime + stime
    started = int(fields[19]) / ticks                   # since boot
    elapsed = max(uptime - started, 1e-9)
    return [_user_name(uid), str(pid), fields[1].decode(), str(int(cpu * 100 / elapsed)),
            _start_time(boot + started), _tty_name(int(fields[4])), _cpu_time(cpu),
            (cmdline or b"[" + comm + b"]").decode(errors="replace")]


def _user_name(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _start_time(t):
    """ps's STIME: HH:MM today, MonDD this year, else the year."""
    now = time.localtime()
    then = time.localtime(t)
    if then[:3] == now[:3]:
        return time.strftime("%H:%M", then)
    return time.strftime("%b%d" if then.tm_year == now.tm_year else "%Y", then)


def _tty_name(tty_nr):
    if tty_nr == 0:
        return "?"
    major, minor = (tty_nr >> 8) & 0xfff, (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    return f"tty{minor}" if major == 4 else "?"


def _cpu_time(seconds):
    """ps's TIME: [DD-]HH:MM:SS of CPU."""
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}-{text}" if days else text


def _ps_rows(pids, ps_args):
    """The host's ps with the user's options, filtered to `pids`."""
    import subprocess
    from .errors import InvalidArgument
    try:
        proc = subprocess.run(["ps"] + ps_args, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise InvalidArgument("top with ps options needs the host's ps (procps)") from None
    if proc.returncode != 0:
        raise InvalidArgument(f"ps {' '.join(ps_args)}: {' '.join(proc.stderr.split()) or 'failed'}")
    lines = proc.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise InvalidArgument(f"ps {' '.join(ps_args)}: its output has no PID column")
    column, wanted = titles.index("PID"), {str(p) for p in pids}
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)  # the last column (the command) keeps its spaces
        if len(fields) > column and fields[column] in wanted:
            rows.append(fields)
    return {"Titles": titles, "Processes": rows}
