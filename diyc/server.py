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
import selectors
import signal
import socket
import struct
import sys
import time
from contextlib import suppress as _suppress

from . import server_worker as workers
from .errors import InvalidArgument
from .server_worker import DONE, EXIT, KEEPER, KILLED, RECORD, RESTART, SIGNAL, TOOK, log as _log
from .state import end_processes, private_dir

RELAYED = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH})
DEFAULT_IDLE_SECONDS = 600
SPARE_DELAY = 0.02  # seconds after a request is taken, at the latest, the next spare is forked
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
        from .pool_keeper import keepers
        from .server_pool import pools_dir
        for keeper, image in keepers(pools_dir(paths.root)):
            print(f"  warm containers for a `run --rm` of {image}: kept by pid {keeper}")
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
    end_processes([pid], 10)  # (its keepers remove their pools first)
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

# pyroute2 (the management plane: network rm/prune, stats' counters) is
# ~23 MB of the server's 26 MB of private memory, which every worker's fork
# and clone would pay for; those commands import it themselves (~0.2 s).
NOT_PRELOADED = ("diyc.__main__", __name__, "diyc.net.management")


def preload():
    """Import the whole CLI once, and compile what a start compiles, so no
    worker pays for it."""
    import importlib
    import pkgutil
    import diyc
    for module in pkgutil.walk_packages(diyc.__path__, "diyc."):
        if module.name in NOT_PRELOADED:
            continue
        try:
            importlib.import_module(module.name)
        except Exception:  # an optional dependency (zstandard): imported on use, as before
            pass
    # What every default container compiles (seccomp's cache, per process):
    # docker's profile for docker's capabilities, ~1.3 ms a start.
    from .seccomp import compile_profile
    from .security import DEFAULT_CAPS, last_cap
    compile_profile(None, {f"CAP_{cap}" for cap in DEFAULT_CAPS})
    last_cap()  # (read once: every start and exec asks)


def build_id():
    """The newest mtime of the installed package's files: changes when diyc
    is reinstalled or edited in place."""
    newest = 0
    for directory in _package_dirs():
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.name != "__pycache__":
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime_ns)
    return newest


def _package_dirs():
    stack = [PACKAGE_DIR]
    while stack:
        directory = stack.pop()
        yield directory
        with os.scandir(directory) as entries:
            stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)
                      and e.name != "__pycache__" and not e.name.startswith(".")]


class PackageWatch:
    """Has the installed diyc changed since the server started?  An inotify
    watch on the package's directories, so a request asks with one read
    that finds nothing; without inotify, the package's newest mtime, read
    per request (~0.4 ms)."""

    # IN_MODIFY IN_ATTRIB IN_MOVED_FROM IN_MOVED_TO IN_CREATE IN_DELETE
    # IN_DELETE_SELF IN_MOVE_SELF; IN_NONBLOCK|IN_CLOEXEC; IN_Q_OVERFLOW
    MASK, FLAGS, OVERFLOW = 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800, 0o4000 | 0o2000000, 0x4000
    EVENT = struct.Struct("iIII")

    def __init__(self):
        self.build = build_id()
        self.fd = None
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(self.FLAGS)
            if fd < 0:
                return
            self.fd = fd
            for directory in _package_dirs():
                if libc.inotify_add_watch(fd, os.fsencode(directory), self.MASK) < 0:
                    raise OSError(ctypes.get_errno(), "inotify_add_watch")
        except (OSError, AttributeError) as e:
            _log(f"no inotify ({e}): diyc's files are compared per request")
            if self.fd is not None:
                os.close(self.fd)
            self.fd = None

    def fds(self):
        return [] if self.fd is None else [self.fd]

    def changed(self):
        if self.fd is None:
            return build_id() != self.build
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        offset = 0
        while offset + self.EVENT.size <= len(data):
            _, mask, _, size = self.EVENT.unpack_from(data, offset)
            name = data[offset + self.EVENT.size:offset + self.EVENT.size + size].rstrip(b"\0")
            offset += self.EVENT.size + size
            if mask & self.OVERFLOW or not (name == b"__pycache__" or name.startswith(b".")):
                return True
        return False


class Server:
    def __init__(self, root, paths, idle, lock_fd, ready_fd=None, entry_points=None):
        self.root = root
        self.paths = paths
        self.idle = idle
        self.lock_fd = lock_fd
        self.ready_fd = ready_fd
        self.entry_points = entry_points
        self.workers = {}  # pid -> [connection or None, channel or None] of a request's worker
        self.keepers = set()  # pids of former workers that keep a pool warm (pool_keeper)
        self.closing = False
        self.restart = False
        self.spare = None  # (pid, channel): the worker waiting on the listening socket
        self.start_argv = _absolute_argv()  # (before serve() moves to /)
        self.spawn_due = None

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
        self.facts = workers.Facts(self.root.path, PackageWatch(), self.paths.log)
        import gc
        gc.freeze()  # what is imported stays shared with the workers (no GC writes to it)
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
            os.execve(sys.executable, self.start_argv, self.start_env)
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
        self.selector.register(wake_r, selectors.EVENT_READ, ("wake", None))
        self._spawn_spare()
        last_active = time.monotonic()
        while True:
            if self.workers:
                last_active = time.monotonic()
            elif not self.closing and time.monotonic() - last_active >= self.idle:
                self._close()
            if self.closing and not self.workers and not self.keepers:
                return  # (keepers end their runs and remove their pools first)
            timeout = None if self.workers or self.closing else \
                max(0.0, self.idle - (time.monotonic() - last_active))
            if self.spawn_due is not None:
                if self.spare is not None or self.closing:
                    self.spawn_due = None
                elif time.monotonic() >= self.spawn_due:
                    self.spawn_due = None
                    self._spawn_spare()
                else:
                    timeout = min(timeout or 1e9, self.spawn_due - time.monotonic())
            for key, _ in self.selector.select(timeout):
                kind, pid = key.data
                if kind == "wake":
                    self._on_signals(os.read(wake_r, 256))
                elif kind == "spare":
                    self._from_spare(key.fileobj, pid)
                    last_active = time.monotonic()
                elif key.fileobj not in self.workers.get(pid, ()):
                    continue  # (closed by an event before it in this round)
                elif kind == "worker":
                    self._from_worker(key.fileobj, pid)
                else:
                    self._from_launcher(key.fileobj, pid)

    def _spawn_spare(self):
        """Fork the next worker now, so that no request waits for a fork."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            code = 125
            try:
                code = workers.spare(self.listener, theirs, self.facts, self.entry_points)
            except BaseException:  # (the command's own errors went to its caller)
                import traceback
                _log("worker failed:\n" + traceback.format_exc())
            finally:
                os._exit(code)
        theirs.close()
        self.spare = (pid, ours)
        self.selector.register(ours, selectors.EVENT_READ, ("spare", pid))

    def _from_spare(self, channel, pid):
        """The spare took a request (with its connection: we relay the
        launcher's signals), or the installed diyc changed."""
        try:
            data, ancdata, _, _ = channel.recvmsg(64, socket.CMSG_SPACE(4))
        except OSError:
            data, ancdata = b"", []
        fds = [struct.unpack("i", payload[:4])[0] for level, kind, payload in ancdata
               if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS]
        if data == RESTART:
            self.restart = True
            self._close()
            return
        self.selector.unregister(channel)
        self.spare = None
        if data != TOOK or not fds:  # it died (SIGCHLD spawns the next)
            channel.close()
            for fd in fds:
                os.close(fd)
            return
        conn = socket.socket(fileno=fds[0])
        conn.setblocking(False)
        self.workers[pid] = [conn, channel]
        self.selector.register(conn, selectors.EVENT_READ, ("launcher", pid))
        self.selector.register(channel, selectors.EVENT_READ, ("worker", pid))
        # The next spare: at once if others run too; else once this one has
        # replied (or in 20 ms: a long command), so that its fork and its
        # copy of our memory do not take a CPU from this request.
        if not self.closing and len(self.workers) > 1:
            self._spawn_spare()
        elif not self.closing:
            self.spawn_due = time.monotonic() + SPARE_DELAY

    def _from_worker(self, channel, pid):
        """DONE: the exit code is on its way to the launcher, whose going
        away from now on ends nothing.  EOF: it died (SIGCHLD replies)."""
        try:
            data = channel.recv(64)
        except OSError:
            data = b""
        if data in (DONE, KEEPER):
            self._replied(pid, data)
        else:
            self.selector.unregister(channel)
            channel.close()
            self.workers[pid][1] = None

    def _replied(self, pid, data):
        """DONE, or KEEPER (its DONE follows, on the channel closed here):
        after its reply the worker keeps a `run --rm`'s settings warm
        (pool_keeper): no longer a request's, and SIGTERM ends it."""
        self._stop_relaying(pid)
        if data == KEEPER:
            self.workers.pop(pid, None)
            self.keepers.add(pid)
            if self.closing:
                os.kill(pid, signal.SIGTERM)
        if self.spare is None and not self.closing:
            self._spawn_spare()

    def _stop_relaying(self, pid):
        served = self.workers.get(pid)
        for i, sock in enumerate(served or ()):
            if sock is not None:
                self.selector.unregister(sock)
                sock.close()
                served[i] = None

    def _from_launcher(self, conn, pid):
        try:
            data = conn.recv(RECORD.size * 16)
        except OSError:
            data = b""
        if not data:
            channel = self.workers[pid][1]
            with _suppress(OSError, AttributeError):
                if (replied := channel.recv(64, socket.MSG_DONTWAIT)) in (DONE, KEEPER):
                    self._replied(pid, replied)
                    return
            # the launcher is gone (SIGKILL): so is the command, as on the direct path
            with _suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._stop_relaying(pid)
            return
        for i in range(0, len(data) - RECORD.size + 1, RECORD.size):
            kind, value = RECORD.unpack_from(data, i)
            if kind == SIGNAL and value in RELAYED:
                with _suppress(ProcessLookupError):
                    os.kill(pid, value)

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
                _log(f"the spare worker ended before a request: status {status:#x}")
                self.selector.unregister(self.spare[1])
                self.spare[1].close()
                self.spare = None
            if self.spare is None and not self.closing:
                self._spawn_spare()
            served = self.workers.get(pid)
            if served and served[0] is not None:  # it died before its reply
                if os.WIFSIGNALED(status):
                    reply = RECORD.pack(KILLED, os.WTERMSIG(status))
                else:
                    reply = RECORD.pack(EXIT, os.waitstatus_to_exitcode(status))
                with _suppress(OSError):
                    served[0].send(reply)
            self._stop_relaying(pid)
            self.workers.pop(pid, None)
            self.keepers.discard(pid)

    def _close(self):
        if not self.closing:
            self.closing = True
            for pid in self.keepers:
                os.kill(pid, signal.SIGTERM)  # (reaped here: its pid is its own)
            if self.spare:
                self.selector.unregister(self.spare[1])
                self.spare[1].close()  # it reads EOF and exits
                self.spare = None
            self._unlisten()


def _absolute_argv():
    """Our command line, its script's path made absolute: a restart runs
    it again from / (`bin/diyc-py server start` would not be found)."""
    argv = list(sys.orig_argv)
    script = len(argv) - len(sys.argv)
    if script > 0 and argv[script] == sys.argv[0] and os.path.exists(sys.argv[0]):
        argv[script] = os.path.abspath(sys.argv[0])
    return argv


def _write_atomic(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
