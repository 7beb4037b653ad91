"""Everything diyc keeps lives under one root directory (default
/var/lib/diyc; --root or DIYC_ROOT override it):

    images/         repositories.json (name:tag -> image id), <id>.json
    layers/<hex>/   one unpacked layer, by the sha256 of its uncompressed tar
    containers/<id>/container.json   the container's record (config + state)
                    upper/ work/ merged/   its overlay dirs (not for --rm)
    names/<name>    symlink to the id: reserving a name is one atomic symlink()
    locks/<id>.lock serialises commands on one container
    tmp/            staging; anything here is garbage after a crash
    scratch/        an empty mount point for the tmpfs of --rm containers

Writes go to a temp file and are renamed into place, so a crash leaves
either the old or the new file, never half of one.  Shared resources are
guarded by flock()s on files in the root.
"""

import errno
import fcntl
import os

from . import _json

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
        """Create the layout (cheap when it exists: one stat)."""
        if os.path.isdir(self.scratch):
            return self
        for d in (self.path, self.images, self.layers, self.containers,
                  self.names, self.tmp, self.locks, self.scratch):
            # the root is searchable, not listable: a container in a user
            # namespace must reach its own directories below it
            os.makedirs(d, mode=0o711 if d == self.path else 0o755, exist_ok=True)
        return self

    def container_dir(self, cid):
        return f"{self.containers}/{cid}"

    def lock(self, name, shared=False):
        return FileLock(f"{self.path}/{name}.lock", shared)


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
        os.close(self.fd)
        self.fd = -1


def atomic_write(path, data, mode=0o644):
    """Write `data` (str or bytes) to `path` via a temp file and rename()."""
    if isinstance(data, str):
        data = data.encode()
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def write_json(path, obj):
    atomic_write(path, _json.dumps(obj) + "\n")


def read_json(path):
    return _json.load_file(path)


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


def _stat_fields(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    return stat[stat.rindex(b")") + 2:].split()


def process_status(pid):
    """(comm, state letter, exit wait status or None) of `pid`, or None if
    it is gone.  A zombie still shows its name and how it ended."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
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
