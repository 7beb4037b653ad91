"""The layer tars a build writes: from a RUN container's overlay upper dir
(whiteouts and opaque dirs turned into their OCI names), from copied files
and from unpacked archives (ADD).  Written to a temp file, then stored
content-addressed by ImageStore.add_layer_blob like any pulled layer."""

import os
import stat

from .buildfs import O_DIR, O_FILE
from .errors import InvalidArgument

# the OCI whiteout names (as diyc.layers reads them; not imported from
# there: it imports tarfile, ~10 ms a fully cached build does not need)
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class LayerTar:
    """A layer tar written to a temp file, then added to the store."""

    def __init__(self, tmpdir, stream=None):
        """A temp file in `tmpdir`; or, with `stream`, a tar written to that
        file object as it goes (never seeked: a pipe will do)."""
        import tarfile
        self.tarfile = tarfile
        if stream is None:
            self.path = f"{tmpdir}/buildlayer-{os.getpid()}-{os.urandom(4).hex()}"
            self.file = open(self.path, "wb")
            self.tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.PAX_FORMAT)
        else:
            self.path = None
            self.file = stream
            self.tar = tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT,
                                    bufsize=1 << 16)  # (its default: 10 KiB writes)
        self.names = set()
        self.entries = 0

    def add(self, name, kind, mode, uid=0, gid=0, mtime=0, fileobj=None, size=0, linkname="",
            device=(0, 0), xattrs=None):
        t = self.tarfile
        info = t.TarInfo(name)
        info.type = {"dir": t.DIRTYPE, "file": t.REGTYPE, "symlink": t.SYMTYPE, "hardlink": t.LNKTYPE,
                     "char": t.CHRTYPE, "block": t.BLKTYPE, "fifo": t.FIFOTYPE}[kind]
        info.mode, info.uid, info.gid, info.mtime = mode & 0o7777, uid, gid, int(mtime)
        info.linkname = linkname
        info.devmajor, info.devminor = device
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                                for k, v in xattrs.items()}
        if kind == "file":
            info.size = size
        self.tar.addfile(info, fileobj if kind == "file" else None)
        self.names.add(name.rstrip("/"))
        self.entries += 1

    def store(self, store):
        """-> diff-id of the layer, now in the store."""
        self.tar.close()
        self.file.close()
        try:
            with open(self.path, "rb") as f:
                diff_id, _, _ = store.add_layer_blob(f)
            return diff_id
        finally:
            self.discard()

    def close_stream(self):
        """The end of a streamed tar (its two zero blocks); the stream stays open."""
        self.tar.close()

    def abandon_stream(self):
        """A streamed tar that failed half-way (a reader that went away):
        nothing more is written, not even by the garbage collector."""
        self.tar.closed = True
        self.tar.fileobj.closed = True

    def discard(self):
        if not self.file.closed:
            self.file.close()
        if self.path is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _xattrs(fd):
    """An upper dir entry's xattrs for the layer, without overlay's own.  A
    redirect or metacopy entry has its data in a lower layer: the layer
    would be wrong, so the build stops (diyc mounts with both off, the
    kernel's default; a host that turns them on by default is refused)."""
    out = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return out
    for name in names:
        if name in ("trusted.overlay.redirect", "trusted.overlay.metacopy"):
            raise InvalidArgument(f"the overlay's {name.rpartition('.')[2]} feature is on (overlay module "
                             "parameters): a RUN layer cannot be read from its upper dir")
        if not name.startswith("trusted.overlay."):
            try:
                out[name] = os.getxattr(fd, name)
            except OSError:
                pass
    return out


def upper_to_layer(layer, upper, skip=(), ids=None):
    """Write a container's overlay upper dir into `layer`: whiteouts (char
    device 0:0) as `.wh.NAME`, opaque dirs with `.wh..wh..opq`.  Walked
    through dir fds, never following a symlink.  `skip`: paths (relative)
    of empty mount points the runtime made, not the command.  ids: see
    TreeTar."""
    fd = os.open(upper, O_DIR)
    try:
        TreeTar(layer, whiteouts=True, skip=skip, ids=ids).add_dir(fd, "", "")
    finally:
        os.close(fd)


class TreeTar:
    """Writes a directory tree into a LayerTar, reading it only through
    directory fds opened with O_NOFOLLOW and *at calls: a symlink in the
    tree is written as a symlink, never followed (the tree may be a
    container's, planted by its owner).

    whiteouts: the tree is an overlay upper dir (a 0:0 char device is a
    whiteout, the opaque xattr an opaque dir), written as OCI names.
    skip: paths (relative to the tree's root) of empty mount points the
    runtime made, left out.  devices: the st_dev of the file systems whose
    directories it enters (None: any); a directory of another is written
    empty (a running container's /proc, /sys, or what it mounted itself).
    ids(uid, gid) -> the (uid, gid) the tar shows."""

    def __init__(self, layer, whiteouts=False, skip=(), devices=None, ids=None):
        self.layer = layer
        self.whiteouts = whiteouts
        self.skip = set(skip)
        self.devices = devices
        self.ids = ids
        self.inodes = {}

    def add_dir(self, dfd, prefix, path):
        """The entries of the directory `dfd`, named `prefix` + name; `path`:
        the directory's own path in the tree ("" for its root)."""
        if self.whiteouts and prefix and is_opaque(dfd):
            self.layer.add(f"{prefix}{OPAQUE_MARKER}", "file", 0)
        for name in sorted(os.listdir(dfd)):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            self.add_entry(dfd, name, st, f"{prefix}{name}", f"{path}/{name}" if path else name)

    def add_fd(self, fd, arcname, path=""):
        """The tree whose top is the O_PATH fd `fd` (a file, directory or
        symlink itself), as `arcname`; "" writes a directory's entries only."""
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            dfd = os.open(".", O_DIR, dir_fd=fd)
            try:
                if arcname:
                    self.add_entry(dfd, ".", st, arcname, path)
                else:
                    self.add_dir(dfd, "", path)
            finally:
                os.close(dfd)
        elif not arcname:
            raise InvalidArgument(f"{path or '.'}: not a directory")
        elif stat.S_ISREG(st.st_mode):
            # reopened through /proc/self/fd: the very inode fd refers to
            self.add_entry(None, f"/proc/self/fd/{fd}", st, arcname, path)
        elif stat.S_ISLNK(st.st_mode):
            self.layer.add(arcname, "symlink", linkname=os.readlink("", dir_fd=fd), **self._common(st))
        else:
            self.add_entry(None, f"/proc/self/fd/{fd}", st, arcname, path)

    def _common(self, st):
        uid, gid = self.ids(st.st_uid, st.st_gid) if self.ids else (st.st_uid, st.st_gid)
        return dict(mode=st.st_mode, uid=uid, gid=gid, mtime=st.st_mtime)

    def add_entry(self, dfd, name, st, arcname, path):
        """Entry `name` of the directory `dfd` (whose lstat is `st`)."""
        mode = st.st_mode
        if self.whiteouts and stat.S_ISCHR(mode) and st.st_rdev == 0:
            head, _, base = arcname.rpartition("/")
            whiteout = f"{WHITEOUT_PREFIX}{base}"
            self.layer.add(f"{head}/{whiteout}" if head else whiteout, "file", 0)
            return
        if path in self.skip and is_empty(dfd, name, st):
            return
        common = self._common(st)
        if stat.S_ISDIR(mode):
            cfd = os.open(name, O_DIR, dir_fd=dfd)
            try:
                self.layer.add(arcname, "dir", xattrs=_xattrs(cfd), **common)
                if self.devices is None or st.st_dev in self.devices:
                    self.add_dir(cfd, f"{arcname}/", path)
            finally:
                os.close(cfd)
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1 and (st.st_dev, st.st_ino) in self.inodes:
                self.layer.add(arcname, "hardlink", linkname=self.inodes[(st.st_dev, st.st_ino)], **common)
                return
            # (dfd None: `name` is /proc/self/fd/N, a link to follow, see add_fd)
            fd = os.open(name, O_FILE, dir_fd=dfd) if dfd is not None else \
                os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                if (os.fstat(fd).st_ino, os.fstat(fd).st_mode) != (st.st_ino, st.st_mode):
                    raise InvalidArgument(f"{path} changed while it was being read")
                self.layer.add(arcname, "file", fileobj=f, size=st.st_size, xattrs=_xattrs(fd), **common)
            if st.st_nlink > 1:
                self.inodes[(st.st_dev, st.st_ino)] = arcname
        elif stat.S_ISLNK(mode):
            self.layer.add(arcname, "symlink", linkname=os.readlink(name, dir_fd=dfd), **common)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            self.layer.add(arcname, "char" if stat.S_ISCHR(mode) else "block",
                           device=(os.major(st.st_rdev), os.minor(st.st_rdev)), **common)
        elif stat.S_ISFIFO(mode):
            self.layer.add(arcname, "fifo", **common)
        # sockets are not part of an image


def is_empty(dfd, name, st):
    if stat.S_ISREG(st.st_mode):
        return st.st_size == 0
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, O_DIR, dir_fd=dfd)
        try:
            return not os.listdir(fd)
        finally:
            os.close(fd)
    return False


def is_opaque(fd):
    try:
        return os.getxattr(fd, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False


def unpack_archive_into(layer, fileobj, target, written):
    """ADD of a local tar: its entries, names checked, under `target`."""
    import tarfile
    from .images.layers import LayerError, clean_name, decompressed
    prefix = "/".join(target)
    try:
        tar = tarfile.open(fileobj=decompressed(fileobj), mode="r|")
        for m in tar:
            try:
                rel = clean_name(m.name)
            except LayerError as e:
                raise InvalidArgument(f"ADD: unsafe entry in archive: {e}") from None
            if not rel or rel.rsplit("/", 1)[-1].startswith(WHITEOUT_PREFIX):
                continue
            name = f"{prefix}/{rel}" if prefix else rel
            common = dict(mode=m.mode, uid=m.uid, gid=m.gid, mtime=m.mtime)
            if m.isdir():
                layer.add(name, "dir", **common)
            elif m.isreg():
                layer.add(name, "file", fileobj=tar.extractfile(m), size=m.size, **common)
            elif m.issym():
                layer.add(name, "symlink", linkname=m.linkname, **common)
            elif m.islnk():
                try:
                    link = clean_name(m.linkname)
                except LayerError as e:
                    raise InvalidArgument(f"ADD: unsafe hard link in archive: {e}") from None
                layer.add(name, "hardlink", linkname=f"{prefix}/{link}" if prefix else link, **common)
            elif m.ischr() or m.isblk():
                layer.add(name, "char" if m.ischr() else "block", device=(m.devmajor, m.devminor), **common)
            elif m.isfifo():
                layer.add(name, "fifo", **common)
            written.add(name)
    except (tarfile.TarError, EOFError) as e:
        raise InvalidArgument(f"ADD: malformed archive: {e}") from None
