"""Health checks, as docker's: a command run in the container every
`interval` through the exec path (`diyc exec`), a failure when it exits
non-zero or outlives `timeout`; `retries` failures in a row make the
container unhealthy, one success healthy.  Failures within `start_period`
after the start do not count (a success there ends it early).

    resolve         the container's check: run flags (or the library's
                    healthcheck={...}, docker-py's shape) over the image's
                    HEALTHCHECK; None for none
    spawn_monitor   the monitor: a process of its own (detached, a new
                    session, not the starter's child) that checks until the
                    container ends or restarts, and writes the result into
                    the record under its lock: State.Health {Status,
                    FailingStreak, Log} (the last LOG_KEEP checks)
    monitor         its loop (`diyc _health ID`)

A container's supervisor, diyc-shim, is C and stays small; the monitor is
started only for containers with a check, once their program runs.
"""

import os
import time

from .errors import InvalidArgument

SECOND = 1_000_000_000
DEFAULTS = {"interval": 30 * SECOND, "timeout": 30 * SECOND, "start_period": 0, "retries": 3}
LOG_KEEP = 5            # checks kept in State.Health.Log, as docker
OUTPUT_MAX = 4096       # bytes of a check's output kept, as docker
_KEYS = {"test": "Test", "interval": "Interval", "timeout": "Timeout",
         "start_period": "StartPeriod", "retries": "Retries"}


def starting_state():
    return {"Status": "starting", "FailingStreak": 0, "Log": []}


def _field(check, key):
    """docker-py's lowercase key, or the image config's capitalised one."""
    value = check.get(key)
    return check.get(_KEYS[key]) if value is None else value


def _test(value, where):
    """["CMD", args...], ["CMD-SHELL", "cmd"], ["NONE"] or a str (a shell
    command, as docker-py takes it) -> the list form."""
    from .config import check_text, check_text_list
    if isinstance(value, str):
        return ["CMD-SHELL", check_text(value, f"{where} test")]
    test = check_text_list(value, f"{where} test")
    if not test:
        return []
    if test[0] == "NONE" or (test[0] in ("CMD", "CMD-SHELL") and len(test) > 1):
        return test
    raise InvalidArgument(f"invalid {where} test {test!r}: expected [\"CMD\", ...], "
                          "[\"CMD-SHELL\", COMMAND] or [\"NONE\"]")


def _normalized(check, where):
    """A healthcheck mapping -> {test, interval, timeout, start_period,
    retries} with the values given (None for the others)."""
    from .numbers import duration_ns, integer
    if not hasattr(check, "get"):
        from .errors import ArgumentTypeError
        raise ArgumentTypeError(f"{where} must be a mapping such as {{\"test\": [...]}}")
    out = {"test": _test(_field(check, "test") or [], where)}
    for key in ("interval", "timeout", "start_period"):
        value = _field(check, key)
        out[key] = None if value in (None, 0) else duration_ns(value, f"{where} {key}")
        if out[key] is not None and out[key] < 1_000_000:  # docker's minimum: 1 ms
            raise InvalidArgument(f"invalid {where} {key}: the minimum is 1ms")
    retries = _field(check, "retries")
    out["retries"] = None if retries in (None, 0) else integer(retries, f"{where} retries", 1, 1 << 31)
    return out


def resolve(healthcheck, image_config):
    """The container's check, as docker merges them: the container's test
    if it has one, else the image's; each other field the container's if
    set, else the image's, else docker's default.  -> None when there is
    no check (no test, or ["NONE"])."""
    image = None
    cfg = (image_config or {}).get("config") if isinstance(image_config, dict) else None
    if isinstance(cfg, dict) and cfg.get("Healthcheck") is not None:
        image = _normalized(cfg["Healthcheck"], "image config: Healthcheck")
    given = _normalized(healthcheck, "healthcheck") if healthcheck is not None else None
    if given is None and image is None:
        return None
    merged = {}
    for key in ("test",) + tuple(DEFAULTS):
        ours = given.get(key) if given else None
        theirs = image.get(key) if image else None
        merged[key] = ours or theirs or DEFAULTS.get(key)
    if not merged["test"] or merged["test"][0] == "NONE":
        return None
    return merged


def from_flags(cmd=None, interval=None, timeout=None, retries=None, start_period=None,
               disabled=False):
    """`diyc run`'s --health-cmd, --health-interval, --health-timeout,
    --health-retries, --health-start-period, --no-healthcheck -> the
    healthcheck option (None when none is given)."""
    given = {"test": None if cmd is None else ["CMD-SHELL", cmd], "interval": interval,
             "timeout": timeout, "retries": retries, "start_period": start_period}
    if disabled:
        if any(v is not None for v in given.values()):
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"test": ["NONE"]}
    if all(v is None for v in given.values()):
        return None
    if retries is not None:
        from .numbers import integer
        given["retries"] = integer(retries, "--health-retries", 0, 1 << 31)
    for key in ("interval", "timeout", "start_period"):
        if given[key] is not None:
            from .numbers import duration_ns
            given[key] = duration_ns(given[key], f"--health-{key.replace('_', '-')}")
    return {k: v for k, v in given.items() if v is not None}


def check_command(test):
    """The argv a test runs: CMD's as it is, CMD-SHELL's under /bin/sh -c."""
    return list(test[1:]) if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]


# -- the monitor ---------------------------------------------------------------------

def spawn_monitor(ctr):
    """Start `diyc _health ID` detached: forked twice, in a session of its
    own, so it is nobody's child here (a library caller's, a test's) and
    outlives the command that started the container."""
    import sys
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys; sys.path.insert(0, {package_parent!r}); "
            "from diyc.health import main; sys.exit(main(sys.argv[1:]))")
    argv = [sys.executable, "-I", "-S", "-c", code, ctr.root.path, ctr.id,
            str(ctr.record["state"]["pid"]), str(ctr.record["state"].get("pid_start"))]
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:  # the child: nothing here may return into the caller's code
        os.setsid()
        if os.fork() == 0:
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 65536)
            os.execv(sys.executable, argv)
    finally:
        os._exit(0)


def main(argv):
    """The monitor process: ROOT ID PID PID_START."""
    from .record import ContainerRecord
    from .state import Root
    root, cid, pid, pid_start = argv
    try:
        ctr = ContainerRecord.load_id(Root(root), cid)
    except (FileNotFoundError, ValueError):
        return 0
    monitor(ctr, int(pid), None if pid_start == "None" else int(pid_start))
    return 0


def monitor(ctr, pid, pid_start):
    """Check every interval while the container's process `pid` runs (a
    restart starts a monitor of its own: this one ends with its pid)."""
    check = ctr.record["healthcheck"]
    started = time.monotonic()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        while not _ended(pidfd, check["interval"] / SECOND):
            if not _still_ours(ctr, pid, pid_start):
                return
            if ctr.paused:
                continue  # a frozen container cannot run its check: docker skips it too
            in_start_period = time.monotonic() - started < check["start_period"] / SECOND
            if not record_result(ctr, pid, _probe(ctr, check), check, in_start_period):
                return
    finally:
        os.close(pidfd)


def _ended(pidfd, seconds):
    """Wait `seconds`, or less when the process ends -> whether it has."""
    import select
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(int(seconds * 1000)))


def _still_ours(ctr, pid, pid_start):
    try:
        ctr.reload()
    except FileNotFoundError:
        return False
    state = ctr.record["state"]
    return ctr.status == "running" and state.get("pid") == pid and state.get("pid_start") == pid_start


def _probe(ctr, check):
    """One check -> (exit code, output, start, end); -1 for a timeout or
    a check that could not be started (as docker's log has it)."""
    from .errors import DiycError
    from .process_errors import ContainerTimeout
    from .container_api import exec_run
    begin = time.time()
    try:
        result = exec_run(ctr, check_command(check["test"]), timeout=check["timeout"] / SECOND)
        code, output = result.returncode, (result.stdout or b"") + (result.stderr or b"")
    except ContainerTimeout:
        code, output = -1, f"Health check exceeded timeout ({check['timeout'] / SECOND:g}s)".encode()
    except (DiycError, OSError) as e:
        code, output = -1, str(e).encode()
    return code, output[:OUTPUT_MAX].decode(errors="replace"), begin, time.time()


def record_result(ctr, pid, probe, check, in_start_period):
    """Write one check's result into State.Health, under the container's
    lock -> False when the container is gone or another process runs."""
    from .events import container_event, timestamp
    code, output, begin, end = probe
    with ctr.lock():
        if not ctr.reload_if_present() or ctr.record["state"].get("pid") != pid:
            return False
        health = ctr.record["state"].setdefault("health", starting_state())
        before = health["Status"]
        if code == 0:
            health.update(Status="healthy", FailingStreak=0)
        elif not in_start_period:
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= check["retries"]:
                health["Status"] = "unhealthy"
        health["Log"] = (health["Log"] + [{
            "Start": timestamp(int(begin * SECOND)), "End": timestamp(int(end * SECOND)),
            "ExitCode": code, "Output": output}])[-LOG_KEEP:]
        ctr.save()
    if health["Status"] != before:
        container_event(ctr, f"health_status: {health['Status']}")
    return True
