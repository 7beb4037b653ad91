"""The keeper of one server pool (diyc/server_pool.py has the design).

A server worker that ran a poolable `run --rm` the direct way becomes the
keeper of those settings - unless another keeper has them, or MAX_KEEPERS
run already: it claims them before its reply and keeps them after it.  It
keeps a diyc.Pool of POOL_SIZE held containers and serves each request in
a thread: take a held container, release it with the request's process
and fds, relay signals, wait, reply with the exit code.  It ends after
POOL_IDLE_SECONDS without a request, on SIGTERM (the server stops, a
`system reset`, an `rmi`) or when the server is gone; its runs in flight
finish first, then the pool is closed (every held container killed and
removed).
"""

import fcntl
import json
import os
import select
import signal
import socket
import struct
import threading
import time
from contextlib import suppress

from .errors import DiycError, InitError
from .server_pool import MAX_MESSAGE, SEEN_SECONDS, describe_error, pools_dir

POOL_SIZE = 2            # warm containers per setting
POOL_IDLE_SECONDS = 120  # a keeper without a request for this long ends
MAX_KEEPERS = 4          # settings kept warm at once, per root
TAKE_WAIT = 0.2          # s a request waits for a refill in flight before the direct way
VISIBLE_AFTER = 0.02     # s of a run after which its record shows its command (ps)
REQUEST_TIMEOUT = 5      # s a connection may take to send its request


class Keeper:
    """claim() before the worker's reply (so that whoever the reply wakes
    finds the keeper named in its lock file), serve() after it."""

    def __init__(self, settings, server_pid, log_path):
        self.settings = settings
        self.server_pid = server_pid
        self.log_path = log_path
        self.runs = set()  # threads serving a request
        self.stopping = False
        self.pool = None
        self.fds = []  # ours to close at the end
        self.dir_fd = self.wake_r = self.wake_w = -1
        self.socket_ino = None

    @classmethod
    def claim(cls, settings, server_pid, log_path):
        """-> a Keeper holding the settings' lock, SIGTERM caught from here
        on; None when another keeps them, or MAX_KEEPERS run."""
        from .state import private_dir
        keeper = cls(settings, server_pid, log_path)
        try:
            private_dir(settings.dir)
            keeper.dir_fd = keeper.opened(os.open(settings.dir, os.O_RDONLY | os.O_DIRECTORY |
                                                  os.O_CLOEXEC))
            lock = keeper.lock()
        except OSError:
            lock = None
        if lock is None:
            keeper.close()
            return None
        keeper.opened(lock)
        keeper.wake_r, keeper.wake_w = map(keeper.opened, os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC))
        signal.set_wakeup_fd(keeper.wake_w)
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # (the caller's ^C is not ours)
        # The first caller's environment is not the next one's: `-e KEY`
        # comes resolved, and nothing else of it may reach a container.
        for key in [k for k in os.environ if not k.startswith("DIYC_")]:
            del os.environ[key]
        return keeper

    def opened(self, fd):
        self.fds.append(fd)
        return fd

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def lock(self):
        """Our settings' lock fd, our pid in it (None: kept by another, or
        MAX_KEEPERS are)."""
        claiming = _locked_fd(self.dir_fd, ".claim", fcntl.LOCK_EX)  # (one count at a time)
        try:
            mine = _locked_fd(self.dir_fd, f"{self.settings.hash}.lock",
                              fcntl.LOCK_EX | fcntl.LOCK_NB)
            if mine is None:
                return None
            # who keeps what, at once (an earlier keeper's pid may be another
            # process's by now): `server status`, stop_keepers()
            os.ftruncate(mine, 0)
            os.write(mine, f"{os.getpid()} {self.settings.image}\n".encode())
            others = 0
            for name in os.listdir(self.dir_fd):
                if name.endswith(".seen"):  # (a setting's last direct run: old ones go)
                    with suppress(FileNotFoundError):
                        st = os.stat(name, dir_fd=self.dir_fd, follow_symlinks=False)
                        if time.time() - st.st_mtime > SEEN_SECONDS:
                            os.unlink(name, dir_fd=self.dir_fd)
                    continue
                if name.endswith(".lock") and name != f"{self.settings.hash}.lock":
                    fd = _locked_fd(self.dir_fd, name, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    if fd is None:
                        others += 1  # (locked: a live keeper)
                        continue
                    # a keeper's that ended (killed, its socket left too):
                    # lock files are opened only under .claim, so none is
                    # about to be locked
                    for stale in (name, name[:-len(".lock")] + ".sock"):
                        with suppress(FileNotFoundError):
                            os.unlink(stale, dir_fd=self.dir_fd)
                    os.close(fd)
            if others >= MAX_KEEPERS:
                os.close(mine)
                return None
            return mine
        finally:
            os.close(claiming)

    def serve(self):
        """Keep the settings warm until idle, SIGTERM or the server's end
        -> exit code (0)."""
        from .pool import Pool
        try:
            server = self.opened(os.pidfd_open(self.server_pid))
            if os.getppid() != self.server_pid:
                return 0  # the server is gone already
            try:
                self.pool = Pool(self.settings.image, POOL_SIZE, root=self.settings.root,
                                 **self.settings.options)
            except Exception as e:  # what the direct way said to its caller already
                self.log(f"not kept warm: {e}")
                return 0
            listener = self._listen()
            try:
                self._loop(listener, server, self.wake_r)
            finally:
                self._unlisten(listener)
                for thread in list(self.runs):
                    thread.join()
                self.pool.close()
        except ProcessLookupError:
            return 0  # (the server is gone)
        finally:
            self.close()
        return 0

    def _listen(self):
        name = f"{self.settings.hash}.sock"
        tmp = f"{self.settings.hash}.{os.getpid()}.tmp"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        with suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=self.dir_fd)
        listener.bind(f"/proc/self/fd/{self.dir_fd}/{tmp}")
        os.chmod(f"/proc/self/fd/{self.dir_fd}/{tmp}", 0o600)  # (in our private dir)
        listener.listen(16)
        os.rename(tmp, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)  # (over a stale one)
        self.socket_ino = os.stat(name, dir_fd=self.dir_fd).st_ino
        return listener

    def _unlisten(self, listener):
        name = f"{self.settings.hash}.sock"
        with suppress(OSError):
            if os.stat(name, dir_fd=self.dir_fd).st_ino == self.socket_ino:
                os.unlink(name, dir_fd=self.dir_fd)
        listener.close()

    def _loop(self, listener, server, wake_r):
        last = time.monotonic()
        while not self.stopping:
            if self.runs:
                last = time.monotonic()
            left = POOL_IDLE_SECONDS - (time.monotonic() - last)
            if left <= 0:
                return
            ready, _, _ = select.select([listener, server, wake_r], [], [],
                                        1.0 if self.runs else left)
            if server in ready:
                return  # the server is gone
            if wake_r in ready:
                with suppress(BlockingIOError):
                    if signal.SIGTERM in os.read(wake_r, 64):
                        return
            if listener in ready:
                with suppress(BlockingIOError, InterruptedError):
                    conn, _ = listener.accept()
                    last = time.monotonic()
                    thread = threading.Thread(target=self._serve_one, args=(conn,), daemon=True)
                    self.runs.add(thread)
                    thread.start()

    # -- one request --------------------------------------------------------------------

    def _serve_one(self, conn):
        fds = []
        try:
            if not self._from_a_worker(conn):
                return
            conn.settimeout(REQUEST_TIMEOUT)
            request = _receive_request(conn, fds)
            conn.settimeout(None)
            if request is None:
                return
            try:
                held = self.pool.take(timeout=TAKE_WAIT)
            except DiycError as e:
                if "no warm container" not in str(e):  # a refill failed: the direct way says it
                    self.log(f"pool failed: {e}; not kept warm any longer")
                    self.stopping = True
                    os.write(self.wake_w, b"\0")
                conn.send(b'{"none": true}')
                return
            with held:
                self._run(conn, held, request, fds)
        except OSError as e:  # (the worker sees the connection end: an error, or the direct way)
            self.log(f"a request failed: {e}")
        finally:
            for fd in fds:
                os.close(fd)
            conn.close()
            self.runs.discard(threading.current_thread())

    def _from_a_worker(self, conn):
        """Only the server's workers, which checked their caller (uid,
        namespaces, privileges, rlimits) and computed the settings from its
        context, may hand a process over: another process of our uid that
        reaches the socket gets nothing (it could be confined)."""
        peer = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        pid, uid, _ = struct.unpack("3i", peer)
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            parent = None
        if uid == os.geteuid() and parent == self.server_pid:
            return True
        self.log(f"refused a connection from pid {pid} (uid {uid}): not a server worker")
        return False

    def _run(self, conn, held, request, fds):
        pidfd = os.pidfd_open(held.pid)  # (our child, unreaped: its pid is its own)
        try:
            try:
                held.start(request["cmd"], env=request["env"], cwd=request["cwd"],
                           user=request["user"], stdio=fds)
            except Exception as e:
                self.log(f"ran {held.id[:12]} warm ({self.settings.hash[:12]}): {e}")
                if isinstance(e, InitError) and e.step == "release":
                    conn.send(b'{"none": true}')  # gone while held: the direct way runs it
                else:
                    conn.send(json.dumps({"error": describe_error(e)}).encode())
                return
            finally:
                for fd in fds:
                    os.close(fd)
                fds.clear()
            conn.send(json.dumps({"started": held.id}).encode())
            from .events import container_event
            container_event(held.container, "start")
            _relay_until_exit(conn, held, pidfd, request["cmd"])
        finally:
            os.close(pidfd)
        result = held.wait()
        ctr = held.container
        if result.oom_killed:
            container_event(ctr, "oom")
        container_event(ctr, "die", exitCode=result.exit_code)
        limit = ctr.record["spec"]["linux"].get("resources", {}).get("memory", {}).get("limit")
        self.log(f"ran {held.id[:12]} warm ({self.settings.hash[:12]})")  # (before: tests read it)
        with suppress(OSError):
            conn.send(json.dumps({"exit": result.exit_code, "oom": result.oom_killed,
                                  "name": ctr.name, "limit": limit}).encode())

    def log(self, message):
        with suppress(OSError):
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.write(fd, f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] pool: "
                             f"{message}\n".encode())
            finally:
                os.close(fd)


def _receive_request(conn, fds):
    """-> the request dict, or None (not one: dropped); fds: the three
    received (ours to close)."""
    data, ancdata, _, _ = conn.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(3 * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])
    try:
        request = json.loads(data)
    except ValueError:
        return None
    text = (str, type(None))
    if len(fds) != 3 or not isinstance(request, dict) or \
            not all(isinstance(request.get(k), list) and all(isinstance(a, str) for a in request[k])
                    for k in ("cmd", "env")) or \
            not isinstance(request.get("cwd"), text) or not isinstance(request.get("user"), text):
        return None
    return request


def _relay_until_exit(conn, held, pidfd, cmd):
    """Relay the worker's signals until the process ends; the worker gone
    (its launcher killed): kill it, as the direct path's end does.  A run
    still going after VISIBLE_AFTER shows in `ps`."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(conn, select.POLLIN)
    timeout = int(VISIBLE_AFTER * 1000)
    while True:
        events = dict(poller.poll(timeout))
        if pidfd in events:
            return
        if not events and timeout is not None:
            timeout = None
            _show(held, cmd)
        if conn.fileno() in events:
            data = conn.recv(MAX_MESSAGE)
            if not data:
                poller.unregister(conn)
                held.kill(9)
                continue
            with suppress(ValueError, TypeError, KeyError):
                held.kill(int(json.loads(data)["signal"]))


def _show(held, cmd):
    """Its record with the command it runs, no longer a held one's: `ps`
    lists it.  (Not the run's business: a failure here is not its end.)"""
    ctr = held.container
    args = ctr.record["spec"]["process"]["args"]
    with suppress(OSError, DiycError), ctr.lock():
        if ctr.reload_if_present():
            ctr.record["spec"]["process"]["args"] = args
            if "config" in ctr.record:
                ctr.record["config"]["Cmd"] = cmd  # (inspect's)
            ctr.record["state"]["started"] = time.time() - VISIBLE_AFTER  # (`Up`: this run's)
            ctr.save()


def keepers(pools_dir):
    """[(pid, image)] of the live keepers of a server's pools dir."""
    out = []
    try:
        names = sorted(os.listdir(pools_dir))
    except FileNotFoundError:
        return out
    for name in names:
        if not name.endswith(".lock"):
            continue
        with suppress(OSError, ValueError):
            fd = os.open(f"{pools_dir}/{name}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # (held: a live keeper's)
                pid, _, image = os.read(fd, 4096).decode().strip().partition(" ")
                out.append((int(pid), image))
            finally:
                os.close(fd)
    return out


def stop_keepers(pools_dir, timeout=10):
    """SIGTERM the live keepers, then wait until they have ended (their
    runs in flight finished, their pools removed), all within `timeout`."""
    from .state import end_processes
    end_processes([pid for pid, _ in keepers(pools_dir)], timeout)


def end_warm_containers(root, uses):
    """A warm container is a cache, not a reason to refuse `rmi` or
    `network rm`: when a held container's record `uses(record)`, the
    root's keepers end (their pools removed), and what a killed keeper
    left (dead held containers) is removed."""
    from .runtime import Container
    held = [c for c in Container.list(root, all=True, held=True)
            if c.held_in_pool and uses(c.record)]
    if not held:
        return
    stop_keepers(pools_dir(root.path))
    for ctr in held:
        with suppress(DiycError, OSError):
            if ctr.reload_if_present() and ctr.held_in_pool:  # (still there: a dead one's)
                ctr.remove(force=True)


def _locked_fd(dir_fd, name, how):
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, how)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
