"""Unpacking a layer tarball into a directory, safely.

A layer is untrusted input.  Every entry is checked before anything is
written: no absolute paths, no `..`, no writing through a symlink the layer
itself planted, no hard link to something outside the layer.  OCI whiteouts
become overlayfs whiteouts, so a stack of layers can be mounted as lowerdirs
directly.  Ownership, modes (setuid included), device nodes, hard links and
xattrs are kept: `tarfile`'s own extraction filters either reject real
images (absolute symlinks like bin/sh -> /bin/busybox) or strip bits.
"""

import hashlib
import os
import stat
import tarfile

from .errors import InvalidArgument

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class LayerError(InvalidArgument):
    pass


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


class Unpacker:
    def __init__(self, dest):
        self.dest = dest
        self.symlinks = set()      # paths (relative) the layer made symlinks
        self.dir_modes = []        # applied last: a 0555 dir must still be filled

    def path(self, rel):
        return f"{self.dest}/{rel}" if rel else self.dest

    def check_parents(self, rel, original):
        """Refuse entries below a symlink of this layer (the write would land
        wherever the link points, possibly outside), create missing parents."""
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in self.symlinks:
                raise LayerError(f"layer entry writes through a symlink: {original}")
            p = self.path(prefix)
            if not os.path.lexists(p):
                os.mkdir(p, 0o755)
            elif not os.path.isdir(p) or os.path.islink(p):
                raise LayerError(f"layer entry's parent is not a directory: {original}")

    def remove_existing(self, rel, keep_dir):
        p = self.path(rel)
        if not os.path.lexists(p):
            return
        if keep_dir and os.path.isdir(p) and not os.path.islink(p):
            return
        self.symlinks.discard(rel)
        if os.path.isdir(p) and not os.path.islink(p):
            from .state import remove_tree
            remove_tree(p)
        else:
            os.unlink(p)

    def add(self, tar, member):
        rel = clean_name(member.name)
        if not rel:
            if member.isdir():
                self.dir_modes.append((self.dest, member))
            return
        self.check_parents(rel, member.name)
        base = rel.rsplit("/", 1)[-1]
        parent = rel[: -len(base)].rstrip("/")

        if base == OPAQUE_MARKER:
            os.setxattr(self.path(parent), "trusted.overlay.opaque", b"y")
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX):]
            if hidden in ("", ".", ".."):
                raise LayerError(f"invalid whiteout entry: {member.name}")
            target = f"{parent}/{hidden}".lstrip("/")
            self.remove_existing(target, keep_dir=False)
            os.mknod(self.path(target), stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return

        self.remove_existing(rel, keep_dir=member.isdir())
        p = self.path(rel)
        if member.isdir():
            if not os.path.isdir(p):
                os.mkdir(p, 0o755)
            self.dir_modes.append((p, member))
        elif member.isreg():
            src = tar.extractfile(member)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        elif member.issym():
            os.symlink(member.linkname, p)
            self.symlinks.add(rel)
        elif member.islnk():
            target = clean_name(member.linkname)
            self.check_parents(target, member.linkname)
            tp = self.path(target)
            if target in self.symlinks or not os.path.isfile(tp) or os.path.islink(tp):
                raise LayerError(f"hard link to a missing or non-regular file: {member.name} -> {member.linkname}")
            os.link(tp, p, follow_symlinks=False)
            return  # a hard link shares the target's inode, owner and mode
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            os.mknod(p, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        else:
            raise LayerError(f"unsupported layer entry type {member.type!r}: {member.name}")

        self.apply_metadata(p, member)

    def apply_metadata(self, p, member):
        for key, value in (member.pax_headers or {}).items():
            if key.startswith("SCHILY.xattr."):
                os.setxattr(p, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"),
                            follow_symlinks=False)
        os.chown(p, member.uid, member.gid, follow_symlinks=False)
        if not member.issym():
            # chown clears setuid bits: the mode goes after it.
            if not member.isdir():
                os.chmod(p, member.mode & 0o7777)
            os.utime(p, (member.mtime, member.mtime), follow_symlinks=False)

    def finish(self):
        for p, member in reversed(self.dir_modes):
            os.chmod(p, member.mode & 0o7777)
            os.utime(p, (member.mtime, member.mtime))


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
    reader = None
    try:
        reader = HashingReader(decompressed(fileobj))
        tar = tarfile.open(fileobj=reader, mode="r|")
        unpacker = Unpacker(dest)
        for member in tar:
            unpacker.add(tar, member)
        unpacker.finish()
        reader.drain()
    except LayerError:
        raise
    except (tarfile.TarError, EOFError, zlib_error()) as e:
        raise LayerError(f"malformed layer tarball: {e or 'unexpected end of data'}") from None
    except OSError as e:
        raise LayerError(f"cannot unpack layer: {e}") from None
    return "sha256:" + reader.hexdigest(), reader.size


def zlib_error():
    import zlib
    return zlib.error
