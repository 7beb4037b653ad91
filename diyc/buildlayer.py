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

    def __init__(self, tmpdir):
        import tarfile
        self.tarfile = tarfile
        self.path = f"{tmpdir}/buildlayer-{os.getpid()}-{os.urandom(4).hex()}"
        self.file = open(self.path, "wb")
        self.tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.PAX_FORMAT)
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

    def discard(self):
        if not self.file.closed:
            self.file.close()
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


def upper_to_layer(layer, upper, skip=()):
    """Write a container's overlay upper dir into `layer`: whiteouts (char
    device 0:0) as `.wh.NAME`, opaque dirs with `.wh..wh..opq`.  Walked
    through dir fds, never following a symlink.  `skip`: paths (relative)
    of empty mount points the runtime made, not the command."""
    fd = os.open(upper, O_DIR)
    try:
        _walk_upper(layer, fd, "", set(skip), {})
    finally:
        os.close(fd)


def _walk_upper(layer, dfd, prefix, skip, inodes):
    if prefix and _has_opaque(dfd):
        layer.add(f"{prefix}{OPAQUE_MARKER}", "file", 0)
    for name in sorted(os.listdir(dfd)):
        rel = f"{prefix}{name}"
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            layer.add(f"{prefix}{WHITEOUT_PREFIX}{name}", "file", 0)
            continue
        if rel in skip and _empty(dfd, name, st):
            continue
        common = dict(mode=mode, uid=st.st_uid, gid=st.st_gid, mtime=st.st_mtime)
        if stat.S_ISDIR(mode):
            cfd = os.open(name, O_DIR, dir_fd=dfd)
            try:
                layer.add(rel, "dir", xattrs=_xattrs(cfd), **common)
                _walk_upper(layer, cfd, f"{rel}/", skip, inodes)
            finally:
                os.close(cfd)
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1 and (st.st_dev, st.st_ino) in inodes:
                layer.add(rel, "hardlink", linkname=inodes[(st.st_dev, st.st_ino)], **common)
                continue
            fd = os.open(name, O_FILE, dir_fd=dfd)
            with os.fdopen(fd, "rb") as f:
                layer.add(rel, "file", fileobj=f, size=st.st_size, xattrs=_xattrs(fd), **common)
            if st.st_nlink > 1:
                inodes[(st.st_dev, st.st_ino)] = rel
        elif stat.S_ISLNK(mode):
            layer.add(rel, "symlink", linkname=os.readlink(name, dir_fd=dfd), **common)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            layer.add(rel, "char" if stat.S_ISCHR(mode) else "block",
                      device=(os.major(st.st_rdev), os.minor(st.st_rdev)), **common)
        elif stat.S_ISFIFO(mode):
            layer.add(rel, "fifo", **common)
        # sockets are not part of an image


def _empty(dfd, name, st):
    if stat.S_ISREG(st.st_mode):
        return st.st_size == 0
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, O_DIR, dir_fd=dfd)
        try:
            return not os.listdir(fd)
        finally:
            os.close(fd)
    return False


def _has_opaque(fd):
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
