"""The diyc server's workers (see diyc/server.py).

A worker is forked in advance (the spare) and waits on the server's
listening socket itself, so a request meets a process that is already
there: it accepts, checks the caller (declining what the server must not
run), hands the connection to the server (which relays the launcher's
signals and forks the next spare), adopts the caller's context and runs the
CLI entry point the direct path runs.  It sends the exit code, lets go of
the caller's files, and only then finishes what nobody waits for
(diyc.removal: a `run --rm` container's cgroup and writable layer).

Wire format (the launcher's, _native/launcher.c): one sendmsg with
SCM_RIGHTS [cwd, stdin, stdout, stderr] and "DIYC1\\0" + u32 length + NUL-separated fields (command, root,
umask, argc, argv..., envc, env...); replies are 8-byte records.
"""

import os
import select
import socket
import struct
import sys
import time
from contextlib import suppress

PROTOCOL = b"DIYC1\0"
ACCEPT, DECLINE, EXIT, KILLED, SIGNAL = 1, 2, 3, 4, 5
RECORD = struct.Struct("=Ii")
NAMESPACES = ("mnt", "pid", "net", "user", "cgroup")
MAX_REQUEST = 4 << 20
# a worker to the server, over its channel (SOCK_SEQPACKET)
TOOK = b"took"        # with the connection's fd: relay its signals
DONE = b"done"        # the exit code is on its way: the launcher may go now
RESTART = b"restart"  # the installed diyc changed
KEEPER = b"keeper"    # after the reply, the worker keeps a pool warm (pool_keeper)
REPORT_FD, CHANNEL_FD = 3, 4


class Request:
    def __init__(self, fds, body, accepted_ns):
        self.fds = fds  # cwd, stdin, stdout, stderr
        self.accepted_ns = accepted_ns
        fields = body.split(b"\0")[:-1]
        self.command = fields[0].decode()
        self.root = os.fsdecode(fields[1])
        self.umask = int(fields[2])
        argc = int(fields[3])
        self.argv = [os.fsdecode(a) for a in fields[4:4 + argc]]
        envc = int(fields[4 + argc])
        self.env = [os.fsdecode(e) for e in fields[5 + argc:5 + argc + envc]]
        if len(self.argv) != argc or len(self.env) != envc:
            raise ValueError("truncated request")


class Facts:
    """What a caller must share with the server, read once by the server
    (a worker inherits them)."""

    def __init__(self, root_path, watch, log_path):
        import resource
        self.namespaces = namespaces("self")
        self.real_root = os.path.realpath(root_path)
        self.cgroups = read_text("/proc/self/cgroup")
        self.server_pid = os.getpid()
        self.rlimits = {r: resource.getrlimit(r) for r in rlimit_ids()}
        self.watch = watch  # has the installed diyc changed?
        self.log_path = log_path
        self.privileges = _privileges("self")  # (a worker's are the server's)


class _Probe(Exception):
    pass


# -- the spare: waits for a request ------------------------------------------------

def spare(listener, channel, facts, entry_points):
    """A worker forked in advance -> its exit code.  Exits 0 when the
    server closes its channel (it stops, or is gone)."""
    default_signals()
    keep = sorted({listener.fileno(), channel.fileno()} | set(facts.watch.fds()))
    low = 3
    for fd in keep:  # nothing else of the server's stays open here
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))
    _copy_shared_pages(lambda: select.select([listener, channel], [], [], 0)[0])
    while True:
        ready, _, _ = select.select([listener, channel], [], [])
        if channel in ready:
            return 0
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue  # (another took it)
        accepted_ns = time.perf_counter_ns()
        request = _take(conn, facts, channel, accepted_ns)
        if request is not None:
            listener.close()
            return Worker(request, facts, entry_points, channel).run()


def _copy_shared_pages(interrupted, chunk=256 << 10):
    """Copy now the memory we share with the server, which a request would
    otherwise copy page by page as it writes to it (reference counts: ~900
    of a `run`'s ~1300 page faults): MADV_POPULATE_WRITE (Linux 5.14) on
    each private writable mapping, a chunk at a time, until interrupted()
    says a request (or the server's end) waits.  (Not at idle priority: on
    a busy machine that starves the spare, and the request waits for it.)"""
    import ctypes
    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    for line in read_text("/proc/self/maps").splitlines():
        fields = line.split()
        if not (fields[1].startswith("rw") and fields[1][3] == "p"):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        for at in range(start, end, chunk):
            if interrupted():
                return
            madvise(at, min(chunk, end - at), 23)  # (EINVAL on an old kernel: no harm)


def _take(conn, facts, channel, accepted_ns):
    """The request on conn if we run it (the server then has the
    connection); None after a probe, a bad request or a decline."""
    fds = []
    try:
        conn.settimeout(2)
        request = _receive(conn, accepted_ns, fds)
        reason = _decline_reason(conn, request, facts)
        if reason == RESTARTING:
            channel.send(RESTART)
        if reason:
            log(f"declined: {reason}")
            conn.send(RECORD.pack(DECLINE, 0))
            return None
        channel.sendmsg([TOOK], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                  struct.pack("i", conn.fileno()))])
        conn.settimeout(None)
        request.conn_fd = conn.detach()
        fds.clear()
        return request
    except _Probe:
        return None
    except (OSError, ValueError, UnicodeError) as e:
        log(f"bad request: {e}")
        return None
    finally:
        for fd in fds:
            os.close(fd)
        conn.close()  # (a no-op once detached)


def _receive(conn, accepted_ns, fds):
    """-> the Request (None: not a launcher's); fds: filled with the
    received ones (closed by the caller unless it runs the request)."""
    data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])
    if not data:
        raise _Probe()  # `server status` and the like: connect, close
    if len(fds) != 4 or not data.startswith(PROTOCOL):
        return None
    while len(data) < len(PROTOCOL) + 4:
        data += conn.recv(4096) or b"\0" * 4
    (size,) = struct.unpack_from("=I", data, len(PROTOCOL))
    if size > MAX_REQUEST:
        raise ValueError(f"request of {size} bytes")
    body = bytearray(data[len(PROTOCOL) + 4:])
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("truncated request")
        body += chunk
    return Request(list(fds), bytes(body), accepted_ns)


RESTARTING = "diyc changed: restarting"


def _decline_reason(conn, request, facts):
    if request is None:
        return "not a diyc launcher request"
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                        12))
    if uid != os.geteuid() or gid != os.getegid():
        return f"caller uid {uid} gid {gid} is not the server's"
    if request.command not in ("diyc", "diyc-runc"):
        return f"unknown command {request.command!r}"
    if request.command == "diyc" and _manages_the_server(request.argv):
        return "`diyc server`: not through the server it manages"
    if request.command == "diyc-runc" and _leaves_a_process_to_the_caller(request.argv):
        return "a container or process the caller must be the parent of"
    if _privileges(pid) != facts.privileges:
        return "caller with other capabilities, no_new_privs or seccomp than the server's"
    if os.path.realpath(request.root) != facts.real_root:
        return f"root {request.root} is not the server's"
    if namespaces(pid) != facts.namespaces:
        return "caller in other namespaces"
    import resource
    request.rlimits = {}
    for r, (_, server_hard) in facts.rlimits.items():
        soft, hard = resource.prlimit(pid, r)
        if _above(hard, server_hard):
            return f"caller's rlimit {r} is above the server's"
        request.rlimits[r] = (soft, hard)
    try:
        request.cgroups = read_text(f"/proc/{pid}/cgroup")
    except OSError:
        return "caller gone"
    if facts.watch.changed():
        return RESTARTING
    return None


def _manages_the_server(argv):
    """`diyc [--root DIR] server ...`: its worker would wait for the
    server it stops, which waits for its workers."""
    args = list(argv)
    while args and args[0].startswith("--root"):
        del args[:1 if "=" in args[0] else 2]
    return bool(args) and args[0] == "server"


# runc's global options that take a value (before the subcommand)
_RUNC_GLOBAL_VALUES = ("--root", "--log", "--log-format", "--criu")


def _leaves_a_process_to_the_caller(argv):
    """diyc-runc create, run -d, exec -d, or --preserve-fds: what outlives
    the command must be the caller's child (conmon and containerd's shim
    are subreapers that wait for it), and the fds to preserve are the
    caller's: the direct path gives both, a worker neither."""
    args = list(argv)
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name = args[i].split("=", 1)[0]
        i += 2 if name in _RUNC_GLOBAL_VALUES and "=" not in args[i] else 1
    sub, rest = (args[i], args[i + 1:]) if i < len(args) else ("", [])
    detached = any(a in ("-d", "--detach") or a.startswith(("--detach=", "--preserve-fds"))
                   for a in rest)
    return sub in ("create", "restore") or detached


def _privileges(pid):
    """What a caller could do itself: it gets nothing more through us."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return [line for line in f if line.startswith(("CapEff", "CapBnd", "NoNewPrivs", "Seccomp:"))]
    except OSError:
        return None


def _above(limit, ceiling):
    import resource
    if ceiling == resource.RLIM_INFINITY:
        return False
    return limit == resource.RLIM_INFINITY or limit > ceiling


# -- the worker: becomes the caller, runs the command, replies -------------------

class Worker:
    def __init__(self, request, facts, entry_points, channel):
        self.request = request
        self.facts = facts
        self.entry_points = entry_points
        self.channel = channel

    def run(self):
        r = self.request
        # The exit code goes straight to the launcher (the server only
        # relays signals): it arrives even if the server is gone meanwhile.
        os.write(r.conn_fd, RECORD.pack(ACCEPT, 0))
        # above the fds they go to, so that no dup2() below clobbers another
        conn, channel = _above_stdio(r.conn_fd), _above_stdio(self.channel.detach())
        cwd, stdin, stdout, stderr = map(_above_stdio, r.fds)
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.fchdir(cwd)
        os.dup2(conn, REPORT_FD, inheritable=False)
        os.dup2(channel, CHANNEL_FD, inheritable=False)
        os.closerange(CHANNEL_FD + 1, os.sysconf("SC_OPEN_MAX"))  # nothing of the server's
        os.umask(r.umask)
        os.environ.clear()
        for entry in r.env:
            key, sep, value = entry.partition("=")
            if sep and key:
                os.environ[key] = value
        import resource
        for res, limits in r.rlimits.items():
            if resource.getrlimit(res) != limits:  # (usually the server's own)
                resource.setrlimit(res, limits)
        if r.cgroups != self.facts.cgroups:
            _join_cgroups(r.cgroups)
        self._adopt_stdio()
        sys.argv = [r.command] + r.argv
        from . import removal
        removal.defer_until_replied()
        code = self._main()
        keeper = self._keeper(code)
        self._reply(code)
        errors = removal.run_deferred()
        if errors:
            self._log_errors(errors)
        if keeper is not None:
            return keeper.serve()
        return code

    def _keeper(self, code):
        """A `run --rm` that ran the direct way: we keep its settings warm
        from now on (pool_keeper), unless another does, or diyc refused
        the run (125).  Claimed before the reply: whoever it wakes finds
        the keeper in its lock file."""
        from . import server_pool
        settings = server_pool.take_pending()
        if settings is None or code == 125:
            return None
        from .pool_keeper import Keeper
        try:
            if not settings.seen_before():
                return None  # (from its second run on: not for a one-off)
            keeper = Keeper.claim(settings, self.facts.server_pid, self.facts.log_path)
        except Exception as e:  # (a warm container later is no reason to fail this reply)
            log(f"not kept warm: {e}")
            return None
        if keeper is not None:
            with suppress(OSError):
                os.write(CHANNEL_FD, KEEPER)
        return keeper

    def _reply(self, code):
        """The exit code to the launcher (the server first stops relaying:
        the launcher's exit is no longer the command's), then the caller's
        files are let go, so a pipe on its stdout reads EOF now."""
        with suppress(OSError):
            os.write(CHANNEL_FD, DONE)
        with suppress(OSError):
            os.write(REPORT_FD, RECORD.pack(EXIT, code))
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        for fd in (REPORT_FD, CHANNEL_FD):
            os.close(fd)
        os.chdir("/")

    def _log_errors(self, errors):
        with suppress(OSError):
            with open(self.facts.log_path, "a") as f:
                for e in errors:
                    f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] after the "
                            f"reply: {e} (diyc cleanup finishes it)\n")

    def _adopt_stdio(self):
        import io
        encoding, errors = sys.stdout.encoding, sys.stdout.errors
        sys.stdin = io.TextIOWrapper(io.open(0, "rb", closefd=False), encoding=encoding,
                                     errors=sys.stdin.errors)
        sys.stdout = io.TextIOWrapper(io.open(1, "wb", closefd=False), encoding=encoding,
                                      errors=errors, line_buffering=os.isatty(1))
        sys.stderr = io.TextIOWrapper(io.open(2, "wb", closefd=False), encoding=encoding,
                                      errors="backslashreplace", line_buffering=True)

    def _main(self):
        try:
            entry = self.entry_points["diyc-runc" if self.request.command == "diyc-runc" else "diyc"]
            code = entry(self.request.argv, self.request.accepted_ns)
        except SystemExit as e:
            code = e.code
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        try:
            sys.stdout.flush()
        except OSError:  # (BrokenPipeError among them)
            code = code or 120
        with suppress(OSError):
            sys.stderr.flush()
        return code & 0xff


def _above_stdio(fd, floor=64):
    import fcntl
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    os.close(fd)
    return new


def default_signals():
    import signal
    for sig in range(1, signal.NSIG):
        with suppress(OSError, ValueError):
            if signal.getsignal(sig) not in (signal.SIG_DFL, signal.SIG_IGN, None):
                signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _cgroup_mounts():
    """{frozenset of controllers (or {''} for v2): mount point}."""
    mounts = {}
    for line in read_text("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fstype, _, options = right.split(" ", 2)
        mount_point = left.split(" ")[4]
        if fstype == "cgroup2":
            mounts.setdefault(frozenset([""]), mount_point)
        elif fstype == "cgroup":
            names = {o for o in options.strip().split(",") if o not in ("rw", "ro")}
            mounts.setdefault(frozenset(names), mount_point)
    return mounts


def _join_cgroups(proc_cgroup):
    """Move this process into the cgroups of /proc/PID/cgroup text, per v1
    hierarchy and on v2, so containers nest where the caller's would."""
    mounts = _cgroup_mounts()
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        want = set(controllers.split(",")) if controllers else {""}
        for names, mount_point in mounts.items():
            if want <= names:
                with suppress(OSError):
                    with open(f"{mount_point}{path.rstrip('/')}/cgroup.procs", "w") as f:
                        f.write("0")
                break


# -- small helpers ----------------------------------------------------------------

def namespaces(pid):
    out = {}
    for ns in NAMESPACES:
        try:
            out[ns] = os.stat(f"/proc/{pid}/ns/{ns}").st_ino
        except FileNotFoundError:
            out[ns] = None
    return out


def rlimit_ids():
    import resource
    return [getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")]


def read_text(path):
    with open(path) as f:
        return f.read()


def log(message):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] {message}", file=sys.stderr,
          flush=True)
