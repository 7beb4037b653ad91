"""Everything diyc keeps lives under one root directory (default
/var/lib/diyc; --root or DIYC_ROOT override it):

    images/         repositories.json (name:tag -> image id), <id>.json
    layers/<hex>/   one unpacked layer, by the sha256 of its uncompressed tar
    containers/<id>/container.json   the container's record (config + state)
                    upper/ work/ merged/   its overlay dirs (for --rm too,
                    unless --rm-tmpfs-size puts them on a tmpfs)
    names/<name>    symlink to the id: reserving a name is one atomic symlink()
    locks/<id>.lock serialises commands on one container
    tmp/            staging; anything here is garbage after a crash
    scratch/        an empty mount point for a tmpfs private to a container
                    (idmapped layers; upper/work with --rm-tmpfs-size)

The root is private (0700): image layers hold setuid binaries and device
nodes, which no host user may reach.  (A container in a user namespace,
whose root is an unprivileged host uid, reaches its own directory through
file descriptors instead: see userns.ContainerPaths.)

Writes go to a temp file, fsync()ed, and are renamed into place, so a crash
or a full disk leaves either the old or the new file, never half of one.
Shared resources are guarded by flock()s on files in the root.
"""

import _thread
import errno
import fcntl
import os
import time

from . import _json
from .errors import CorruptStateFile, DiycError, StateWriteError

DEFAULT_ROOT = "/var/lib/diyc"


class Root:
    def __init__(self, path=None):
        self.path = os.path.abspath(path or os.environ.get("DIYC_ROOT") or DEFAULT_ROOT)
        self.images = f"{self.path}/images"
        self.layers = f"{self.path}/layers"
        self.containers = f"{self.path}/containers"
        self.names = f"{self.path}/names"
        self.tmp = f"{self.path}/tmp"
        self.scratch = f"{self.path}/scratch"
        self.locks = f"{self.path}/locks"

    def ensure(self):
        """Create the layout, private from the first mkdir, or make private a
        root an older diyc left searchable (0711, its directories 0755).
        Cheap when done: one stat() of the root, reached through scratch/..
        so that it fails while scratch/ (made last) is missing."""
        try:
            if os.stat(f"{self.scratch}/..").st_mode & 0o7777 == 0o700:
                return self
        except FileNotFoundError:
            pass
        self._make_private()
        return self

    def _make_private(self):
        """Idempotent, so a crash half-way is finished by the next ensure().
        mkdir() with 0700 is never more open than that, whatever the umask."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)  # /var/lib and such
        try:
            os.mkdir(self.path, 0o700)
        except FileExistsError:
            pass
        # The root first: it alone makes everything below unreachable.
        os.chmod(self.path, 0o700)
        for d in (self.images, self.layers, self.containers, self.names, self.tmp, self.locks):
            private_dir(d)
        with os.scandir(self.path) as entries:  # what an older diyc made 0755
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and \
                        entry.stat(follow_symlinks=False).st_mode & 0o7777 != 0o700:
                    os.chmod(entry.path, 0o700)
        private_dir(self.scratch)  # last: its presence says the layout is complete

    def container_dir(self, cid):
        return f"{self.containers}/{cid}"

    def lock(self, name, shared=False):
        return FileLock(f"{self.path}/{name}.lock", shared)


def private_dir(path):
    """A directory of ours, 0700 (made so, or repaired), never a symlink or
    someone else's."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not (st.st_mode & 0o170000 == 0o040000 and st.st_uid == os.geteuid()):
        raise DiycError(f"{path}: not a directory of ours: refusing to use it as diyc state")
    if st.st_mode & 0o7777 != 0o700:
        os.chmod(path, 0o700)


class FileLock:
    """A flock() on a file, as a context manager: exclusive, or shared with
    other shared holders.  The kernel drops it when the process dies, so a
    crash never leaves a stale lock."""

    def __init__(self, path, shared=False):
        self.path = path
        self.shared = shared
        self.fd = -1

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:  # a root made by an older diyc
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        # unlocked before the close: a child cloned meanwhile (a container's
        # init held before its execve) shares the open file, and the lock
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1


def atomic_write(path, data, mode=0o644, durable=True):
    """Write `data` (str or bytes) to `path`: every byte to a temp file,
    fsync() it, rename() it over `path`, fsync() the directory (the rename
    itself is durable only then).  A crash or a full disk leaves the old
    file or the new one, complete.  On failure the temp file is removed and
    StateWriteError names `path` and the reason.

    durable=False skips the two fsync()s (each a journal commit, ~5-15 ms
    here): for files that die with their process anyway, the record of a
    --rm container.  A full disk is still caught (by write()), and only a
    power cut can leave such a file empty: `diyc cleanup` removes it."""
    if isinstance(data, str):
        data = data.encode()
    # unique per thread too: the library's threads (diyc.arun's workers)
    # may write the same file at once, e.g. a fresh root's built-in image
    tmp = f"{path}.tmp{os.getpid()}-{_thread.get_ident()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            rest = memoryview(data)
            while rest:  # a full disk shows up as a short write first
                rest = rest[os.write(fd, rest):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise StateWriteError(path, e) from None
        raise
    if not durable:
        return
    try:
        dirfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except OSError as e:
        raise StateWriteError(path, e) from None


def write_json(path, obj, durable=True):
    atomic_write(path, _json.dumps(obj) + "\n", durable=durable)


def read_json(path):
    """A JSON object diyc wrote (state files are all objects).  A file that
    is not one raises CorruptStateFile (a DiycError and a ValueError) naming
    it; a missing one FileNotFoundError."""
    try:
        obj = _json.load_file(path)
    except ValueError as e:  # UnicodeDecodeError included
        raise CorruptStateFile(path, str(e)) from None
    if not isinstance(obj, dict):
        raise CorruptStateFile(path, f"a JSON {type(obj).__name__}, not an object")
    return obj


def listdir(path):
    """The names in directory `path`; none when it does not exist."""
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def remove_tree(path):
    """rm -rf that tolerates a missing path and directories an image made
    read-only.  shutil is imported here, off the start path (it pulls in re)."""
    import shutil

    def retry_writable(func, p, exc_info):
        if isinstance(exc_info[1], FileNotFoundError):
            return
        os.chmod(os.path.dirname(p), 0o700)
        func(p)

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=retry_writable)
    elif os.path.lexists(path):
        os.unlink(path)


def _read_stat(pid):
    """/proc/PID/stat's bytes (one read: it is short), or None if gone.
    os.read, not open(): three syscalls on a pool's run path, not nine."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        return os.read(fd, 4096) or None
    except ProcessLookupError:  # (ESRCH: it went between the open and the read)
        return None
    finally:
        os.close(fd)


def _stat_fields(pid):
    stat = _read_stat(pid)
    if stat is None:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    return stat[stat.rindex(b")") + 2:].split()


def process_status(pid):
    """(comm, state letter, exit wait status or None) of `pid`, or None if
    it is gone.  A zombie still shows its name and how it ended."""
    stat = _read_stat(pid)
    if stat is None:
        return None
    comm = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace")
    fields = stat[stat.rindex(b")") + 2:].split()
    state = fields[0].decode()
    # field 52, exit_code: the wait status, once the process has exited
    status = int(fields[49]) if state in ("Z", "X") and len(fields) > 49 else None
    return comm, state, status


def process_start_time(pid):
    """The start time of `pid` (clock ticks since boot), or None if it is
    gone.  Recorded with each pid so a recycled pid is never mistaken for
    our container."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def end_processes(pids, timeout):
    """SIGTERM each of `pids` (not our children: a server, a keeper), then
    wait until they have exited, all within `timeout` seconds (one that
    outlives it is left running).  By pidfd: readable once its process has
    exited, reaped or not - a zombie its reaper has not waited for yet
    still answers kill(pid, 0)."""
    import select
    import signal
    ending = []
    try:
        for pid in pids:
            try:
                ending.append(os.pidfd_open(pid))
                signal.pidfd_send_signal(ending[-1], signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        waiting = list(ending)
        while waiting and (left := deadline - time.monotonic()) > 0:
            done, _, _ = select.select(waiting, [], [], left)
            waiting = [fd for fd in waiting if fd not in done]
    finally:
        for fd in ending:
            os.close(fd)


def pid_alive(pid, start_time):
    """Whether `pid` is still the process that started at `start_time`.  A
    zombie counts as gone: an orphan waits for a reaper (init) that may take
    its time, and it runs nothing any more."""
    fields = _stat_fields(pid) if pid else None
    return bool(fields) and fields[0] not in (b"Z", b"X") and int(fields[19]) == start_time


def reserve_name(root, name, cid):
    """Claim `name` for container `cid`; a second claim fails atomically."""
    try:
        os.symlink(cid, f"{root.names}/{name}")
    except FileExistsError:
        return False
    return True


def release_name(root, name, cid):
    path = f"{root.names}/{name}"
    try:
        if os.readlink(path) == cid:
            os.unlink(path)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EINVAL):
            raise
