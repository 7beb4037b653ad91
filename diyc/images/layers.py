"""Unpacking a layer tarball into a directory, safely.

A layer is untrusted input.  Every entry is checked before anything is
written: no absolute paths, no `..`, no writing through a symlink the layer
itself planted, no hard link to something outside the layer.  Every call
on the unpacked tree goes through directory fds opened with O_NOFOLLOW (see
Unpacker), so no later entry can redirect an earlier one.  OCI whiteouts
become overlayfs whiteouts, so a stack of layers can be mounted as lowerdirs
directly.  Ownership, modes (setuid included), device nodes, hard links and
xattrs are kept: `tarfile`'s own extraction filters either reject real
images (absolute symlinks like bin/sh -> /bin/busybox) or strip bits.
Sparse files stay sparse: the tar's sparse map is honoured and blocks of
zeros are not written.
"""

import errno
import hashlib
import os
import stat
import tarfile

from ..errors import DiycError, InvalidArgument

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class LayerError(InvalidArgument):
    pass


class StorageError(DiycError):
    """Unpacking failed for a reason of the host (a full disk, an I/O
    error): not the layer's fault, and not to be reported as one."""


class HashingReader:
    """Wraps a file object and hashes every byte read through it: the layer's
    diff-id is the sha256 of its uncompressed tar stream."""

    def __init__(self, f):
        self.f = f
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self):
        while self.read(1 << 20):
            pass

    def hexdigest(self):
        return self.hash.hexdigest()


def clean_name(name):
    """The entry's path relative to the layer root, or LayerError."""
    parts = []
    if name.startswith("/"):
        raise LayerError(f"layer entry has an absolute path: {name}")
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise LayerError(f"layer entry escapes the layer with '..': {name}")
        parts.append(part)
    return "/".join(parts)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_BLOCK = 4096                  # holes are made of whole zero blocks of this size
_ZERO_BLOCK = bytes(_BLOCK)
_CHUNK = 1 << 20
_MAX_OPEN_DIRS = 128           # directory fds kept open while unpacking
# Errors of the host, not of the layer: reported as they are, never as a
# malformed layer (a full disk is not a digest mismatch).
_HOST_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM,
                          errno.EMFILE, errno.ENFILE))


class Unpacker:
    """Writes the entries of one layer below `dest`.

    Nothing here resolves a path of the layer: each directory is opened one
    component at a time, relative to its parent's fd, with O_NOFOLLOW, and
    every entry is made and given its metadata relative to that fd (or
    through the fd of the file itself).  A symlink the layer planted is
    therefore never followed, wherever it is (last component or parent),
    and the directory metadata applied at the end goes to the very
    directory that was created, or nowhere when a later entry replaced it.
    """

    def __init__(self, dest, *, layer=True, owner=None, plain_files=False):
        """`dest`: a path, or the fd of a directory (duplicated: the caller
        keeps its own).  layer=False unpacks a plain archive (`diyc cp`):
        `.wh.` names are files like any other, a directory is never
        replaced by a non-directory (an error, as docker's), and `dest`
        keeps its owner and mode.  owner(uid, gid): the owner an entry gets
        on disk (default: the entry's own).  plain_files: no setuid/setgid
        bits, no file capabilities (xattrs other than user.*) and no
        device nodes (an untrusted archive unpacked on the
        host for its caller: a container's setuid shell must not become
        root's)."""
        self.root_fd = os.dup(dest) if isinstance(dest, int) else os.open(dest, _DIR_FLAGS)
        self.open_dirs = {"": self.root_fd}   # relative path -> fd of that directory
        self.dirs = {}     # relative path -> (member, st_dev, st_ino): mode and mtime go last
        self.layer = layer
        self.owner = owner
        self.plain_files = plain_files
        self.mode_mask = 0o1777 if plain_files else 0o7777

    def close(self):
        self.forget_dirs()
        os.close(self.root_fd)

    def forget_dirs(self, removed=None):
        """Close the cached directory fds: all, or those of the tree
        `removed` (whose paths may name other directories from now on)."""
        below = f"{removed}/"
        for rel in list(self.open_dirs):
            if rel and (removed is None or rel == removed or rel.startswith(below)):
                os.close(self.open_dirs.pop(rel))

    def open_dir(self, rel, original, create=True):
        """The fd of directory `rel` of the layer (cached: do not close it),
        creating missing directories when `create`; LayerError when a
        component is a symlink or not a directory."""
        fd = self.open_dirs.get(rel)
        if fd is not None:
            return fd
        parent, _, base = rel.rpartition("/")
        parent_fd = self.open_dir(parent, original, create)
        try:
            fd = os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise LayerError(f"layer entry refers to a missing directory: {original}") from None
            os.mkdir(base, 0o755, dir_fd=parent_fd)
            fd = os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if stat.S_ISLNK(os.stat(base, dir_fd=parent_fd, follow_symlinks=False).st_mode):
                raise LayerError(f"layer entry writes through a symlink: {original}") from None
            raise LayerError(f"layer entry's parent is not a directory: {original}") from None
        self.open_dirs[rel] = fd
        return fd

    def remove_existing(self, parent_fd, rel, keep_dir):
        """Make room for entry `rel` (a name in the directory `parent_fd`)."""
        base = rel.rpartition("/")[2]
        try:
            st = os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            if not self.layer:
                raise LayerError(f"cannot overwrite directory {rel!r} with a non-directory")
            import shutil
            # fd-based: never follows a symlink inside the tree it removes
            shutil.rmtree(base, dir_fd=parent_fd)
            self.forget_dirs(removed=rel)
        elif keep_dir and not self.layer:
            raise LayerError(f"cannot overwrite non-directory {rel!r} with a directory")
        else:
            os.unlink(base, dir_fd=parent_fd)
        below = rel + "/"
        for d in [d for d in self.dirs if d == rel or d.startswith(below)]:
            del self.dirs[d]

    def add(self, tar, member):
        rel = clean_name(member.name)
        if len(self.open_dirs) > _MAX_OPEN_DIRS:
            self.forget_dirs()
        if not rel:
            return  # the layer's own root: see finish()
        if self.owner:
            self.owner_of(member)  # ids it refuses: before anything is made
        parent, _, base = rel.rpartition("/")
        parent_fd = self.open_dir(parent, member.name)

        if self.layer and base == OPAQUE_MARKER:
            os.setxattr(parent_fd, "trusted.overlay.opaque", b"y")
            return
        if self.layer and base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX):]
            if hidden in ("", ".", ".."):
                raise LayerError(f"invalid whiteout entry: {member.name}")
            self.remove_existing(parent_fd, f"{parent}/{hidden}".lstrip("/"), keep_dir=False)
            os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent_fd)
            return

        if member.islnk():
            # check the target first: a link to itself must not remove it
            target = clean_name(member.linkname)
            target_parent, _, target_base = target.rpartition("/")
            target_fd = self.open_dir(target_parent, member.linkname, create=False)
            try:
                target_st = os.stat(target_base, dir_fd=target_fd, follow_symlinks=False)
            except FileNotFoundError:
                target_st = None
            if target_st is None or not stat.S_ISREG(target_st.st_mode) or target == rel:
                raise LayerError(f"hard link to a missing or non-regular file: "
                                 f"{member.name} -> {member.linkname}")
            self.remove_existing(parent_fd, rel, keep_dir=False)
            # the removal closed target_fd if it was below rel
            target_fd = self.open_dir(target_parent, member.linkname, create=False)
            os.link(target_base, base, src_dir_fd=target_fd, dst_dir_fd=parent_fd,
                    follow_symlinks=False)
            return  # a hard link shares the target's inode, owner and mode

        self.remove_existing(parent_fd, rel, keep_dir=member.isdir())
        if member.isdir():
            try:
                os.mkdir(base, 0o755, dir_fd=parent_fd)
            except FileExistsError:
                pass  # kept by remove_existing: a directory already
            fd = self.open_dir(rel, member.name)
            self.set_owner_xattrs(fd, member)
            self.remember_dir(rel, fd, member)
        elif member.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=parent_fd)
            try:
                write_file_data(tar, member, fd)
                self.set_owner_xattrs(fd, member)
                # after chown, which clears setuid bits
                os.chmod(fd, member.mode & self.mode_mask)
                os.utime(fd, (member.mtime, member.mtime))
            finally:
                os.close(fd)
        elif (member.ischr() or member.isblk()) and self.plain_files:
            raise LayerError(f"refusing to make device node {member.name} (copy with -a to keep devices)")
        elif member.issym() or member.ischr() or member.isblk() or member.isfifo():
            if member.issym():
                os.symlink(member.linkname, base, dir_fd=parent_fd)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
                os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent_fd)
            # no fd for these (opening a fifo blocks, a device is a device):
            # everything by name in the parent's fd, without following
            os.chown(base, *self.owner_of(member), dir_fd=parent_fd, follow_symlinks=False)
            for name, value in self.xattrs(member):  # (no lsetxattrat: the parent by its fd)
                os.setxattr(f"/proc/self/fd/{parent_fd}/{base}", name, value, follow_symlinks=False)
            if not member.issym():
                os.chmod(base, member.mode & self.mode_mask, dir_fd=parent_fd, follow_symlinks=False)
            os.utime(base, (member.mtime, member.mtime), dir_fd=parent_fd, follow_symlinks=False)
        else:
            raise LayerError(f"unsupported layer entry type {member.type!r}: {member.name}")

    def owner_of(self, member):
        return self.owner(member.uid, member.gid) if self.owner else (member.uid, member.gid)

    def set_owner_xattrs(self, fd, member):
        os.chown(fd, *self.owner_of(member))
        for name, value in self.xattrs(member):  # after chown, which drops security.capability
            os.setxattr(fd, name, value)

    def xattrs(self, member):
        """An entry's xattrs to set; plain_files: user.* only (a file's
        security.capability is a setuid bit by another name)."""
        pairs = layer_xattrs(member)
        return [(n, v) for n, v in pairs if n.startswith("user.")] if self.plain_files else pairs

    def remember_dir(self, rel, fd, member):
        st = os.fstat(fd)
        self.dirs[rel] = (member, st.st_dev, st.st_ino)

    def finish(self):
        """Modes and mtimes of the directories, now that they are filled (a
        0555 directory must still be written into).  Each is reopened without
        following symlinks and must still be the directory the layer made:
        one a later entry replaced (by a symlink, say) is left alone."""
        self.forget_dirs()
        for rel, (member, dev, ino) in sorted(self.dirs.items(), key=lambda d: -d[0].count("/")):
            try:
                fd = os.open(rel, _DIR_FLAGS, dir_fd=self.root_fd)
            except OSError as e:
                if e.errno in _HOST_ERRNOS:
                    raise
                continue  # the path crosses a symlink or is no directory any more
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    os.chmod(fd, member.mode & self.mode_mask)
                    os.utime(fd, (member.mtime, member.mtime))
            finally:
                os.close(fd)
        if not self.layer:
            return
        # The layer's root is the boundary between the host and the layer:
        # root's alone, whatever a "./" entry says, so no user of the host
        # reaches the layer's setuid-root programs or device nodes (nor owns
        # the directory).  Containers never see it: the root of their
        # overlay is the upper directory.
        os.chown(self.root_fd, 0, 0)
        os.chmod(self.root_fd, 0o700)


def layer_xattrs(member):
    """(name, value) of the extended attributes a tar entry carries."""
    for key, value in (member.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr."):
            name = key[len("SCHILY.xattr."):]
            if name.startswith("trusted.overlay."):
                continue  # overlayfs's own (redirects, metacopy): not a layer's to set
            yield name, value.encode("utf-8", "surrogateescape")


def write_file_data(tar, member, fd):
    """The content of a regular file entry, with holes: the data regions of
    a GNU/PAX sparse entry only, and within them no block that is all zeros
    (a 1 GiB file of zeros in a 1 MB layer stays 1 MB on disk)."""
    if member.sparse is None:
        src = tar.extractfile(member)
        offset = 0
        while chunk := src.read(_CHUNK):
            write_sparse(fd, chunk, offset)
            offset += len(chunk)
    else:
        # The data regions follow each other in the archive, in map order.
        # tarfile's own reader would hand out the holes as zeros to skip
        # again: a hostile 1 PiB hole would keep us busy for days.
        stream = tar.fileobj
        stream.seek(member.offset_data)
        for offset, length in member.sparse:
            if offset < 0 or length < 0 or offset + length > member.size:
                raise LayerError(f"malformed sparse map in layer entry: {member.name}")
            end = offset + length
            while offset < end:
                chunk = stream.read(min(_CHUNK, end - offset))
                if not chunk:
                    raise LayerError(f"malformed layer tarball: unexpected end of data in {member.name}")
                write_sparse(fd, chunk, offset)
                offset += len(chunk)
    os.ftruncate(fd, member.size)  # the size, including a hole at the end


def write_sparse(fd, chunk, offset):
    """pwrite `chunk` at `offset`, skipping the file blocks it would fill
    with zeros only (the file is new: skipped blocks read as zeros)."""
    if _ZERO_BLOCK not in chunk:  # the common case, found at memchr speed
        pwrite_all(fd, memoryview(chunk), offset)
        return
    view = memoryview(chunk)
    data_start = None  # where the pending run of non-zero blocks began
    i, n = 0, len(chunk)
    while i < n:
        j = min(n, i + _BLOCK - (offset + i) % _BLOCK)  # the end of this file block
        # (a bytes slice: memcmp; comparing memoryviews goes item by item)
        zero = chunk[i:j] == (_ZERO_BLOCK if j - i == _BLOCK else bytes(j - i))
        if zero and data_start is not None:
            pwrite_all(fd, view[data_start:i], offset + data_start)
            data_start = None
        elif not zero and data_start is None:
            data_start = i
        i = j
    if data_start is not None:
        pwrite_all(fd, view[data_start:], offset + data_start)


def pwrite_all(fd, view, offset):
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class _Prefixed:
    """A reader that first returns bytes already read from `f`, then `f`."""

    def __init__(self, head, f):
        self.head, self.f = head, f

    def read(self, n=-1):
        if not self.head:
            return self.f.read(n)
        if n is None or n < 0:
            data, self.head = self.head + self.f.read(), b""
            return data
        data, self.head = self.head[:n], self.head[n:]
        if len(data) < n:
            data += self.f.read(n - len(data))
        return data


def decompressed(fileobj):
    """The uncompressed stream of a layer, by its magic bytes."""
    head = fileobj.read(6)
    raw = _Prefixed(head, fileobj)
    if head.startswith(b"\x1f\x8b"):
        import gzip
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"\xfd7zXZ"):
        import lzma
        return lzma.LZMAFile(raw)
    if head.startswith(b"BZh"):
        import bz2
        return bz2.BZ2File(raw)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            import zstandard
        except ImportError:
            raise LayerError("zstd-compressed layer, but the zstandard module is not installed") from None
        return zstandard.ZstdDecompressor().stream_reader(raw)
    return raw


def unpack_layer(fileobj, dest):
    """Unpack a tar stream (plain, gzip, xz, bzip2 or zstd) into the existing,
    empty directory `dest`.  Returns (diff_id, uncompressed size)."""
    reader = HashingReader(decompressed(fileobj))
    _unpack(reader, lambda: Unpacker(dest))
    return "sha256:" + reader.hexdigest(), reader.size


def unpack_archive(fileobj, dest, owner=None, plain_files=False):
    """Unpack a plain archive (`diyc cp`, put_archive; compressed too) into
    the existing directory `dest` (a path or a directory fd) with the same
    checks as a layer, but no whiteouts, no directory replaced by a file
    and `dest` itself left as it is.  owner, plain_files: see Unpacker."""
    _unpack(HashingReader(decompressed(fileobj)),
            lambda: Unpacker(dest, layer=False, owner=owner, plain_files=plain_files))


def _unpack(reader, make_unpacker):
    unpacker = None
    try:
        tar = tarfile.open(fileobj=reader, mode="r|")
        unpacker = make_unpacker()
        for member in tar:
            unpacker.add(tar, member)
        unpacker.finish()
        reader.drain()
    except LayerError:
        raise
    except (tarfile.TarError, EOFError, zlib_error()) as e:
        raise LayerError(f"malformed layer tarball: {e or 'unexpected end of data'}") from None
    except OSError as e:
        if e.errno in _HOST_ERRNOS:
            raise StorageError(f"cannot unpack layer: {e.strerror}") from None
        raise LayerError(f"cannot unpack layer: {e}") from None
    except (ValueError, OverflowError) as e:
        # a NUL in a name, an mtime or id out of range
        raise LayerError(f"malformed layer tarball: {e}") from None
    finally:
        if unpacker is not None:
            unpacker.close()


def zlib_error():
    import zlib
    return zlib.error
