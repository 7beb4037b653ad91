"""A container's file system as the host reaches it, for `diyc cp`,
`export`, `diff` and `commit`.

The container's files are its owner's: every symlink in them may point at
the host's /etc.  The host never resolves a container path itself: paths
are resolved by openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from a
file descriptor of the container's root (an absolute symlink or `..`
stops at that root, /proc/self/root is refused), and trees are walked and
written through directory fds with O_NOFOLLOW (buildlayer.TreeTar,
images.layers.Unpacker).

Where the root comes from:
    running   /proc/PID/root of its init: what the container sees, volumes
              and --tmpfs included; /proc, /sys, /dev and whatever the
              container mounted itself are not its files: left out (their
              mount points stay, empty)
    stopped   a detached overlay mount (fsopen/fsmount) of its layers and
              upper dir: mounted nowhere, gone with its last fd, so no
              mount is ever left behind; writable ones are made under the
              container's lock
    image     (`export`) a read-only overlay of upper dir + layers, for a
              running container too: its image and its changes, no volumes
"""

import errno
import os
import stat

from . import _native
from .errors import Conflict, DiycError, InvalidArgument

_RESOLVE = _native.RESOLVE["in_root"] | _native.RESOLVE["no_magiclinks"]
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ContainerFS:
    """An open root of a container's file system (see the module's
    docstring); a context manager.  ids: the container's user namespace
    (record["userns"]) or None."""

    def __init__(self, ctr, root_fd, devices=None, lock=None, mount_fd=-1):
        self.ctr = ctr
        self.root_fd = root_fd       # O_RDONLY directory fd of the container's "/"
        # a detached overlay's own fd: while it is open the mount stays whole
        # (closed, the mount is dissolved: still readable through root_fd,
        # but `..` within it fails openat2's RESOLVE_IN_ROOT checks, EAGAIN)
        self.mount_fd = mount_fd
        self.userns_fd = -1          # a running container's user namespace (as_container_root)
        # st_dev of the file systems that are the container's files (None:
        # all): its root, volumes and binds, --tmpfs; not /proc, /sys, /dev
        self.devices = devices
        self.lock = lock
        self.userns = ctr.record.get("userns")

    @classmethod
    def open(cls, ctr, writable=False, image_only=False):
        if is_live(ctr) and not image_only:
            return cls._open_live(ctr)
        if image_only:
            root_fd, mount_fd = _detached_overlay(ctr, writable=False)
            return cls(ctr, root_fd, mount_fd=mount_fd)
        if (ctr.record.get("rootfs") or {}).get("bind"):
            raise InvalidArgument(f"container {ctr.name} is not running and has no image layers "
                                  "(an OCI bundle)")
        lock = ctr.lock() if writable else None
        if lock is not None:
            lock.__enter__()
        try:
            if writable and not ctr.reload_if_present():
                raise InvalidArgument(f"no such container: {ctr.name}")
            if writable and is_live(ctr):
                raise Conflict(f"container {ctr.name} started meanwhile: try again")
            root_fd, mount_fd = _detached_overlay(ctr, writable)
            fs = cls(ctr, root_fd, lock=lock, mount_fd=mount_fd)
            try:
                fs._attach_binds()
            except BaseException:
                fs.lock = None  # (released below)
                fs.close()
                raise
            return fs
        except BaseException:
            if lock is not None:
                lock.__exit__(None, None, None)
            raise

    @classmethod
    def _open_live(cls, ctr):
        """The root of a running container's init, checked to still be that
        process after it was opened (a recycled pid is someone else's)."""
        state = ctr.record["state"]
        from .state import pid_alive
        fds = []
        try:
            fds.append(os.open(f"/proc/{state['pid']}/root", os.O_PATH | os.O_CLOEXEC))
            if ctr.record.get("userns"):  # (setns takes no O_PATH fd)
                fds.append(os.open(f"/proc/{state['pid']}/ns/user", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            pass
        wanted = 2 if ctr.record.get("userns") else 1
        if len(fds) < wanted or not pid_alive(state["pid"], state.get("pid_start")):
            for fd in fds:
                os.close(fd)
            raise Conflict(f"container {ctr.name} stopped meanwhile: try again")
        try:
            root_fd = os.open(".", _O_DIR, dir_fd=fds[0])
        finally:
            os.close(fds[0])
        fs = cls(ctr, root_fd)
        fs.userns_fd = fds[1] if len(fds) > 1 else -1
        fs.devices = fs._own_file_systems()
        return fs

    def as_container_root(self, work, keep_fds=()):
        """work() with the right to create files in the container.  A
        running container in a user namespace has its overlay mounted in
        it: the host's root is no one there (creating a file fails with
        EOVERFLOW), so work() runs in a child that joined the namespace as
        its root (ids then are the container's own).  Errors come back as
        one line.  keep_fds: what work() reads; the child closes every
        other fd (the write end of a pipe it reads, say: else no EOF)."""
        if self.userns_fd < 0:
            return work()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                keep = sorted({0, 1, 2, w, self.userns_fd, self.root_fd, *keep_fds})
                for low, high in zip(keep, keep[1:] + [os.sysconf("SC_OPEN_MAX")]):
                    os.closerange(low + 1, high)
                _native.setns(self.userns_fd, _native.NS_FLAGS["user"])
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
                work()
                os._exit(0)
            except BaseException as e:  # (the parent raises it)
                os.write(w, f"{type(e).__name__}\0{e}".encode(errors="replace")[:4000])
                os._exit(1)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            report = f.read()
        from .record import waitpid
        _, status = waitpid(pid)
        if status != 0 or report:
            kind, _, message = report.decode(errors="replace").partition("\0")
            error = DiycError if kind == "DiycError" else InvalidArgument
            raise error(message or f"copy failed ({status})")

    def _attach_binds(self):
        """A stopped container's volumes and bind mounts, attached to its
        detached overlay where it has them (as docker's cp sees them): a
        copy into /vol lands in the volume.  Each mount point is resolved
        inside the container's root; one the container never made is left
        out."""
        for m in self.ctr.record["spec"].get("mounts", ()):
            options = set(m.get("options") or ())
            if m.get("type") != "bind" and not {"bind", "rbind"} & options:
                continue
            try:
                target = _native.openat2(self.root_fd, m["destination"], os.O_PATH, _RESOLVE)
            except FileNotFoundError:
                continue
            try:
                tree = _native.open_tree_clone(m["source"], recursive="rbind" in options)
            except OSError:
                os.close(target)
                raise InvalidArgument(f"cannot reach {m['source']} (mounted at {m['destination']}) "
                                      f"of container {self.ctr.name}") from None
            try:
                if "ro" in options:
                    _native.mount_setattr(tree, _native.MOUNT_ATTRS["ro"], recursive=True)
                _native.move_mount(tree, target)
            except OSError as e:
                raise InvalidArgument(f"cannot mount {m['destination']} of stopped container "
                                      f"{self.ctr.name} ({e.strerror}: Linux 6.15 attaches to a "
                                      "detached mount): start it") from None
            finally:
                os.close(tree)
                os.close(target)

    def _own_file_systems(self):
        devs = {os.fstat(self.root_fd).st_dev}
        for m in self.ctr.record["spec"].get("mounts", ()):
            dest = m.get("destination", "")
            bind = m.get("type") == "bind" or {"bind", "rbind"} & set(m.get("options") or ())
            user_tmpfs = m.get("type") == "tmpfs" and dest != "/dev" and not dest.startswith("/dev/")
            if bind or user_tmpfs:
                try:
                    fd = _native.openat2(self.root_fd, dest, os.O_PATH, _RESOLVE)
                except OSError:
                    continue
                devs.add(os.fstat(fd).st_dev)
                os.close(fd)
        return devs

    def close(self):
        for fd in (self.root_fd, self.mount_fd, self.userns_fd):
            if fd >= 0:
                os.close(fd)
        self.root_fd = self.mount_fd = self.userns_fd = -1
        if self.lock is not None:
            self.lock.__exit__(None, None, None)
            self.lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- paths --------------------------------------------------------------

    def lookup(self, path, follow=True, flags=os.O_PATH):
        """An fd of `path` in the container (symlinks resolved inside its
        root; the last one only when `follow`).  OSError as openat2 says."""
        flags |= 0 if follow else os.O_NOFOLLOW
        fd = _native.openat2(self.root_fd, path, flags, _RESOLVE)
        if self.devices is not None and os.fstat(fd).st_dev not in self.devices and _below_mount(fd):
            os.close(fd)
            raise InvalidArgument(f"{path}: not part of the container's file system (a kernel file system)")
        return fd

    def open_dir(self, path):
        """An O_RDONLY fd of the directory `path` (symlinks followed inside the root)."""
        fd = self.lookup(path)
        try:
            return os.open(".", _O_DIR, dir_fd=fd)
        finally:
            os.close(fd)

    # -- ids: the user namespace's, when it has one --------------------------

    def to_container_ids(self, uid, gid):
        """Host ids of a file -> the ids the container sees."""
        return to_container_ids(self.userns, uid, gid)

    def to_host_ids(self, uid, gid):
        """Ids in the container -> the ids its files get on the host."""
        u = self.userns
        if not u:
            return uid, gid
        if not (0 <= uid < u["size"] and 0 <= gid < u["size"]):
            raise InvalidArgument(f"uid/gid {uid}:{gid} is outside the container's user namespace")
        return u["uid"] + uid, u["gid"] + gid


def to_container_ids(userns, uid, gid):
    """Host ids -> a container's, through its user namespace (record["userns"])."""
    u = userns
    if not u:
        return uid, gid
    return (uid - u["uid"] if u["uid"] <= uid < u["uid"] + u["size"] else uid,
            gid - u["gid"] if u["gid"] <= gid < u["gid"] + u["size"] else gid)


def is_live(ctr):
    """Whether the container's overlay is mounted: it runs, or its init is
    held before execve (OCI create/start)."""
    status = ctr.status
    return status in ("running", "paused") or (status == "created" and bool(ctr.record["state"].get("pid")))


def _below_mount(fd):
    """Whether fd is below the root of the file system it is on (the mount
    point itself may be copied, empty; nothing below it)."""
    parent = os.open("..", os.O_PATH | os.O_CLOEXEC, dir_fd=fd) if stat.S_ISDIR(os.fstat(fd).st_mode) else -1
    if parent < 0:
        return True
    try:
        return os.fstat(parent).st_dev == os.fstat(fd).st_dev
    finally:
        os.close(parent)


def writable_layer(ctr):
    """The container's upper dir on the host, or InvalidArgument."""
    if (ctr.record.get("rootfs") or {}).get("bind"):
        raise InvalidArgument(f"container {ctr.name} has no image layers (an OCI bundle)")
    if ctr.record.get("rm_tmpfs_size") and ctr.status in ("running", "paused", "created"):
        raise InvalidArgument(f"container {ctr.name} keeps its changes in a private tmpfs "
                              "(--rm-tmpfs-size): the host cannot read them")
    return f"{ctr.dir}/upper"


def _detached_overlay(ctr, writable):
    """-> (an O_RDONLY fd of the root of a detached overlay of the
    container, the mount's fd).  Writable: the container's own upper and
    work dirs (it must not run).  Read-only: its upper dir as the top lower
    layer (consistent enough for a running container: what it writes
    meanwhile may or may not show)."""
    upper = writable_layer(ctr)
    layers = list(ctr.record["layers"])
    if writable or not os.path.isdir(upper):
        # (never started: no upper dir yet; and a read-only overlay needs two layers)
        _make_writable_layer(ctr)
    mapped = _idmapped(layers, ctr.record.get("userns")) if writable else []
    try:
        if writable:
            mnt = overlay_tree([f"/proc/self/fd/{fd}" for fd in mapped] or layers, upper, f"{ctr.dir}/work")
        else:
            mnt = overlay_tree([upper] + layers)
    finally:
        for fd in mapped:
            os.close(fd)
    try:
        return os.open(".", _O_DIR, dir_fd=mnt), mnt
    except BaseException:
        os.close(mnt)
        raise


def _idmapped(layers, userns):
    """A --userns container's layers as its start mounts them: idmapped
    through its id maps, so that what the overlay copies up (a directory
    a file is written into) is owned by the container's root, as when it
    runs, not by the host's (nobody in the container) -> fds, or [] without
    a user namespace."""
    if not userns:
        return []
    from .userns import idmapped_trees, namespace_fd
    ns = namespace_fd(userns)
    try:
        return idmapped_trees(ns, layers)
    finally:
        os.close(ns)


def overlay_tree(lowers, upper=None, work=None):
    """A detached overlay mount (fsopen/fsconfig/fsmount: attached nowhere,
    gone with its last fd), writable into `upper` when given, nodev and
    nosuid (the host never opens the container's devices through it) ->
    the mount's fd.  Each directory goes by /proc/self/fd/N of an fd of
    it: fsconfig takes at most 256 bytes a value, fewer than a state
    root's paths may need; the layers one by one ("lowerdir+", Linux 6.8),
    else all in one "lowerdir"."""
    fds = []
    try:
        for d in [*lowers, *((upper, work) if upper else ())]:
            fds.append(os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        refs = [f"/proc/self/fd/{fd}" for fd in fds]
        layers = refs[:len(lowers)]
        try:
            return _overlay_mount([("lowerdir+", layer) for layer in layers], refs[len(lowers):])
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            return _overlay_mount([("lowerdir", ":".join(layers))], refs[len(lowers):])
    finally:
        for fd in fds:
            os.close(fd)


def _overlay_mount(lower_options, upper_work):
    fs = _native.fsopen("overlay")
    try:
        for key, value in lower_options:
            _native.fsconfig(fs, key, value)
        if upper_work:
            _native.fsconfig(fs, "upperdir", upper_work[0])
            _native.fsconfig(fs, "workdir", upper_work[1])
        _native.fsconfig(fs, None)
        attrs = _native.MOUNT_ATTRS["nodev"] | _native.MOUNT_ATTRS["nosuid"]
        return _native.fsmount(fs, attrs if upper_work else attrs | _native.MOUNT_ATTRS["ro"])
    finally:
        os.close(fs)


def _make_writable_layer(ctr):
    """A container created but never started has no upper dir yet (as
    runtime's _prepare_rootfs makes them)."""
    userns = ctr.record.get("userns")
    for d in ("upper", "work"):
        try:
            os.mkdir(f"{ctr.dir}/{d}", 0o755)
        except FileExistsError:
            continue
        if userns:
            os.chown(f"{ctr.dir}/{d}", userns["uid"], userns["gid"])
