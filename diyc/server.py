"""The diyc server: takes the interpreter and the imports off the path of a
command.

The `diyc` and `diyc-runc` commands are a small C launcher
(_native/launcher.c).  It connects to this server's unix socket in the
state root and sends its argv, environment, umask, cwd and stdio (the fds
themselves).  The server, which imported the whole CLI once, forks a worker
per request; the worker adopts the caller's context (stdio, cwd,
environment, umask, rlimits, cgroups) and runs the same CLI entry point the
direct path runs.  The launcher relays its signals and exits with the
worker's exit code, or dies by the same signal.

The server declines (and the launcher then runs the Python CLI directly, as
without a server) a caller of another uid or gid (SO_PEERCRED), in other
mount, pid, net, user or cgroup namespaces, with another root, with rlimits
above the server's, or while the installed diyc changed under the server
(which then restarts itself).  It exits after an idle time.

    diyc server start [--foreground] [--quiet] [--idle SECONDS]
    diyc server stop
    diyc server status
"""

import os
import pickle
import selectors
import signal
import socket
import struct
import sys
import time
from contextlib import suppress as _suppress

from .errors import InvalidArgument
from .state import private_dir

PROTOCOL = b"DIYC1\0"
ACCEPT, DECLINE, EXIT, KILLED, SIGNAL = 1, 2, 3, 4, 5
RECORD = struct.Struct("=Ii")
RELAYED = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH})
NAMESPACES = ("mnt", "pid", "net", "user", "cgroup")
DEFAULT_IDLE_SECONDS = 600
MAX_REQUEST = 4 << 20
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class Paths:
    def __init__(self, root):
        self.root = root.path
        self.dir = f"{root.path}/server"
        self.socket = f"{self.dir}/socket"
        self.pid = f"{self.dir}/pid"
        self.lock = f"{self.dir}/lock"
        self.log = f"{self.dir}/log"


# -- the command --------------------------------------------------------------

def command(root, args, entry_points):
    """`diyc server start|stop|status`.  entry_points: {"diyc": f,
    "diyc-runc": f}, f(argv, accepted_ns) -> exit code: what a worker runs
    (the front ends hand them in; the server imports neither)."""
    if not args or args[0] not in ("start", "stop", "status"):
        raise InvalidArgument("usage: diyc server start|stop|status")
    paths = Paths(root)
    action, rest = args[0], args[1:]
    if action == "status":
        _no_more(rest)
        pid = running_pid(paths)
        if pid is None:
            print("diyc server: not running")
            return 1
        print(f"diyc server: running (pid {pid}), socket {paths.socket}, log {paths.log}")
        return 0
    if action == "stop":
        _no_more(rest)
        return stop(paths)
    foreground = quiet = False
    idle = float(os.environ.get("DIYC_SERVER_IDLE") or DEFAULT_IDLE_SECONDS)
    while rest:
        opt = rest.pop(0)
        if opt == "--foreground":
            foreground = True
        elif opt == "--quiet":
            quiet = True
        elif opt == "--idle" or opt.startswith("--idle="):
            value = opt.partition("=")[2] if "=" in opt else (rest.pop(0) if rest else "")
            try:
                idle = float(value)
            except ValueError:
                raise InvalidArgument(f"invalid --idle {value!r}: seconds expected") from None
        else:
            raise InvalidArgument(f"unknown flag for server start: {opt}")
    return start(root, paths, idle=idle, foreground=foreground, quiet=quiet,
                 entry_points=entry_points)


def _no_more(rest):
    if rest:
        raise InvalidArgument(f"unexpected argument: {rest[0]}")


def running_pid(paths):
    """The server's pid when its socket answers, else None."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(paths.socket)
    except OSError:
        return None
    finally:
        sock.close()
    try:
        with open(paths.pid) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def stop(paths):
    pid = running_pid(paths)
    if pid is None:
        print("diyc server: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    print(f"diyc server: stopped (pid {pid})")
    return 0


def start(root, paths, idle, foreground, quiet, entry_points):
    import fcntl
    if running_pid(paths) is not None:
        if not quiet:
            print(f"diyc server: already running (pid {running_pid(paths)})")
        return 0
    root.ensure()
    private_dir(paths.dir)
    lock = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another one is starting or running
        os.close(lock)
        if not quiet:
            print("diyc server: already starting")
        return 0
    if foreground:
        return Server(root, paths, idle, lock, entry_points=entry_points).serve()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        code = 1
        try:
            code = Server(root, paths, idle, lock, ready_w, entry_points=entry_points).serve()
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(lock)
    os.waitpid(pid, 0)
    ready = os.read(ready_r, 64)
    os.close(ready_r)
    if not ready:
        raise InvalidArgument(f"diyc server did not start (see {paths.log})")
    if not quiet:
        print(f"diyc server: started (pid {int(ready)}), log {paths.log}")
    return 0


# -- the server ----------------------------------------------------------------

def build_id():
    """The newest mtime of the installed package's files: changes when diyc
    is reinstalled or edited in place."""
    newest = 0
    stack = [PACKAGE_DIR]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.name == "__pycache__" or entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime_ns)
    return newest


def preload():
    """Import the whole CLI once, so no worker pays for it."""
    import importlib
    import pkgutil
    import diyc
    for module in pkgutil.walk_packages(diyc.__path__, "diyc."):
        if module.name in ("diyc.__main__", __name__):
            continue
        try:
            importlib.import_module(module.name)
        except Exception:  # an optional dependency (zstandard): imported on use, as before
            pass


def _namespaces(pid):
    out = {}
    for ns in NAMESPACES:
        try:
            out[ns] = os.stat(f"/proc/{pid}/ns/{ns}").st_ino
        except FileNotFoundError:
            out[ns] = None
    return out


def _log(message):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] {message}", file=sys.stderr,
          flush=True)


class _Probe(Exception):
    pass


class Request:
    def __init__(self, conn, fds, body):
        self.conn = conn
        self.fds = fds  # cwd, stdin, stdout, stderr
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


class Server:
    def __init__(self, root, paths, idle, lock_fd, ready_fd=None, entry_points=None):
        self.root = root
        self.paths = paths
        self.idle = idle
        self.lock_fd = lock_fd
        self.ready_fd = ready_fd
        self.entry_points = entry_points
        self.workers = {}  # worker pid -> connection
        self.closing = False
        self.restart = False
        self.spare = None  # (pid, channel): a worker forked in advance

    def serve(self):
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        log = os.open(self.paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                      0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.umask(0o077)
        os.chdir("/")
        # A worker gets its caller's environment, nothing of whoever started
        # us; the restart below gets that back (DIYC_ROOT, say).
        self.start_env = dict(os.environ)
        os.environ.clear()
        preload()
        self.build = build_id()
        self.namespaces = _namespaces("self")
        self.real_root = os.path.realpath(self.root.path)
        self.cgroups = _read_text("/proc/self/cgroup")
        import resource
        self.rlimits = {r: resource.getrlimit(r) for r in _rlimits()}
        self.listener = self._listen()
        _write_atomic(self.paths.pid, f"{os.getpid()}\n")
        _log(f"started, idle timeout {self.idle:g} s")
        if self.ready_fd is not None:
            os.write(self.ready_fd, str(os.getpid()).encode())
            os.close(self.ready_fd)
        try:
            self._loop()
        finally:
            self._unlisten()
        _log("stopped" + (": diyc changed, restarting" if self.restart else ""))
        if self.restart:
            os.close(self.lock_fd)
            os.execve(sys.executable, sys.orig_argv, self.start_env)
        return 0

    def _listen(self):
        tmp = f"{self.paths.dir}/socket.{os.getpid()}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with _suppress(FileNotFoundError):
            os.unlink(tmp)
        old = os.umask(0o177)
        try:
            sock.bind(tmp)
        finally:
            os.umask(old)
        os.chmod(tmp, 0o600)
        sock.listen(64)
        os.rename(tmp, self.paths.socket)
        self.socket_ino = os.stat(self.paths.socket).st_ino
        sock.setblocking(False)
        return sock

    def _unlisten(self):
        """Remove the socket if it is still ours (a newer server may own the path)."""
        with _suppress(OSError):
            if os.stat(self.paths.socket).st_ino == self.socket_ino:
                os.unlink(self.paths.socket)
        with _suppress(OSError):
            self.listener.close()

    def _loop(self):
        self.selector = selectors.DefaultSelector()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: None)
        self.wake = (wake_r, wake_w)
        self.selector.register(self.listener, selectors.EVENT_READ, "listen")
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")
        self._spawn_spare()
        last_active = time.monotonic()
        while True:
            if self.workers:
                last_active = time.monotonic()
            elif self.closing or time.monotonic() - last_active >= self.idle:
                return
            timeout = None if self.workers else max(0.0, self.idle -
                                                    (time.monotonic() - last_active))
            for key, _ in self.selector.select(timeout):
                if key.data == "listen":
                    self._accept()
                    last_active = time.monotonic()
                elif key.data == "wake":
                    self._on_signals(os.read(wake_r, 256))
                else:
                    self._from_launcher(key.fileobj, key.data)

    def _on_signals(self, signums):
        for sig in signums:
            if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self._close()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare and pid == self.spare[0]:
                self.spare[1].close()
                self.spare = None
            conn = self.workers.pop(pid, None)
            if self.spare is None and not self.closing:
                self._spawn_spare()  # (here: off the path of the request that ended)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                reply = RECORD.pack(KILLED, os.WTERMSIG(status))
            else:
                reply = RECORD.pack(EXIT, os.waitstatus_to_exitcode(status))
            with _suppress(OSError):
                conn.send(reply)  # (the worker reported first; this covers a crash)
            self.selector.unregister(conn)
            conn.close()

    def _close(self):
        if not self.closing:
            self.closing = True
            if self.spare:
                self.spare[1].close()  # it reads EOF and exits
                self.spare = None
            self.selector.unregister(self.listener)
            self._unlisten()

    def _from_launcher(self, conn, pid):
        try:
            data = conn.recv(RECORD.size * 16)
        except OSError:
            data = b""
        if not data:  # the launcher is gone (SIGKILL): so is the command, as on the direct path
            with _suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        for i in range(0, len(data) - RECORD.size + 1, RECORD.size):
            kind, value = RECORD.unpack_from(data, i)
            if kind == SIGNAL and value in RELAYED:
                with _suppress(ProcessLookupError):
                    os.kill(pid, value)

    def _accept(self):
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        accepted_ns = time.perf_counter_ns()
        fds = []
        try:
            conn.settimeout(2)
            request, fds = self._receive(conn)
            if request is not None:
                request.accepted_ns = accepted_ns
            reason = self._decline_reason(conn, request)
            if reason:
                _log(f"declined: {reason}")
                conn.send(RECORD.pack(DECLINE, 0))
                return
            request.conn_fd = conn.fileno()
            # the worker sends ACCEPT, before its EXIT
            pid = self._hand_to_spare(request) or self._fork_worker(request)
            conn.setblocking(False)
            self.workers[pid] = conn
            self.selector.register(conn, selectors.EVENT_READ, pid)
            conn = None
        except _Probe:
            pass
        except (OSError, ValueError, UnicodeError) as e:
            _log(f"bad request: {e}")
        finally:
            for fd in fds:
                os.close(fd)
            if conn is not None:
                conn.close()

    def _receive(self, conn):
        data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * 8))
        if not data:
            raise _Probe()  # `server status` and the like: connect, close
        fds = []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])
        if len(fds) != 4 or not data.startswith(PROTOCOL):
            return None, fds
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
        return Request(conn, fds, bytes(body)), fds

    def _decline_reason(self, conn, request):
        if request is None:
            return "not a diyc launcher request"
        pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                            12))
        request.pid = pid
        if uid != os.geteuid() or gid != os.getegid():
            return f"caller uid {uid} gid {gid} is not the server's"
        if self.closing:
            return "stopping"
        if request.command not in ("diyc", "diyc-runc"):
            return f"unknown command {request.command!r}"
        if os.path.realpath(request.root) != self.real_root:
            return f"root {request.root} is not the server's"
        if _namespaces(pid) != self.namespaces:
            return "caller in other namespaces"
        import resource
        request.rlimits = {}
        for r, (_, server_hard) in self.rlimits.items():
            soft, hard = resource.prlimit(pid, r)
            if _above(hard, server_hard):
                return f"caller's rlimit {r} is above the server's"
            request.rlimits[r] = (soft, hard)
        try:
            request.cgroups = _read_text(f"/proc/{pid}/cgroup")
        except OSError:
            return "caller gone"
        if build_id() != self.build:
            self.restart = True
            self._close()
            return "diyc changed: restarting"
        return None

    def _spawn_spare(self):
        """Fork the next worker now, so that no request waits for a fork."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            code = 125
            try:
                code = Worker.spare(theirs, self.cgroups, self.entry_points)
            finally:
                os._exit(code)
        theirs.close()
        self.spare = (pid, ours)

    def _hand_to_spare(self, request):
        """The pid of the spare worker that took the request, or None."""
        if self.spare is None:
            return None
        (pid, channel), self.spare = self.spare, None
        fields = {k: v for k, v in vars(request).items() if k not in ("conn", "fds")}
        data = pickle.dumps(fields)
        fds = struct.pack("5i", request.conn_fd, *request.fds)
        try:
            channel.sendmsg([struct.pack("=I", len(data))],
                            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            channel.sendall(data)
        except OSError:
            return None  # it died: fork one now
        finally:
            channel.close()
        return pid

    def _fork_worker(self, request):
        pid = os.fork()
        if pid == 0:
            code = 125
            try:
                code = Worker(request, self.cgroups, self.entry_points).run()
            finally:
                os._exit(code)
        return pid


def _above(limit, ceiling):
    import resource
    if ceiling == resource.RLIM_INFINITY:
        return False
    return limit == resource.RLIM_INFINITY or limit > ceiling


def _rlimits():
    import resource
    return [getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")]


# -- the worker ---------------------------------------------------------------

class Worker:
    """Becomes the caller, then runs the CLI entry point the direct path runs."""

    def __init__(self, request, server_cgroups, entry_points):
        self.request = request
        self.server_cgroups = server_cgroups
        self.entry_points = entry_points

    @classmethod
    def spare(cls, channel, server_cgroups, entry_points):
        """A worker forked in advance: waits for its request from the server."""
        _default_signals()
        # Nothing of the server's stays open here (the listener, the other
        # end of this channel: then the server's end closing means EOF).
        fd = channel.fileno()
        os.closerange(3, fd)
        os.closerange(fd + 1, os.sysconf("SC_OPEN_MAX"))
        header, ancdata, _, _ = channel.recvmsg(4, socket.CMSG_SPACE(5 * 4))
        fds = []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])
        if len(fds) != 5:
            return 0  # EOF: the server stops (or is gone)
        while len(header) < 4:
            header += channel.recv(4 - len(header)) or b"\0" * 4
        (size,) = struct.unpack("=I", header)
        data = bytearray()
        while len(data) < size:
            chunk = channel.recv(size - len(data))
            if not chunk:
                return 125
            data += chunk
        request = Request.__new__(Request)
        vars(request).update(pickle.loads(bytes(data)))
        request.conn_fd, request.fds = fds[0], fds[1:]
        return cls(request, server_cgroups, entry_points).run()

    def run(self):
        r = self.request
        _default_signals()
        # The exit code goes straight to the launcher (the server only
        # relays signals): it arrives even if the server is gone meanwhile.
        report = os.dup(r.conn_fd)
        os.write(report, RECORD.pack(ACCEPT, 0))
        cwd, stdin, stdout, stderr = r.fds
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.fchdir(cwd)
        os.dup2(report, 3)
        os.closerange(4, os.sysconf("SC_OPEN_MAX"))  # nothing of the server's stays open
        os.set_inheritable(3, False)
        self.report_fd = 3
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
        if r.cgroups != self.server_cgroups:
            _join_cgroups(r.cgroups)
        self._adopt_stdio()
        sys.argv = [r.command] + r.argv
        code = self._main()
        os.write(self.report_fd, RECORD.pack(EXIT, code))
        return code

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
        except BrokenPipeError:
            code = code or 120
        except OSError:
            code = code or 120
        with _suppress(OSError):
            sys.stderr.flush()
        return code & 0xff


def _default_signals():
    for sig in range(1, signal.NSIG):
        with _suppress(OSError, ValueError):
            if signal.getsignal(sig) not in (signal.SIG_DFL, signal.SIG_IGN, None):
                signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _cgroup_mounts():
    """{frozenset of controllers (or {''} for v2): mount point}."""
    mounts = {}
    for line in _read_text("/proc/self/mountinfo").splitlines():
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
                with _suppress(OSError):
                    with open(f"{mount_point}{path.rstrip('/')}/cgroup.procs", "w") as f:
                        f.write("0")
                break


# -- small helpers --------------------------------------------------------------

def _read_text(path):
    with open(path) as f:
        return f.read()


def _write_atomic(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
