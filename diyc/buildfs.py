"""The file systems a build reads: its context (a directory) and the
rootfs of images and stages (a stack of unpacked layers, read as the
overlay would show it, without mounting).  Both are untrusted: a path is
resolved inside its own root (a symlink is followed only within it) and
every file is opened relative to directory fds, with O_NOFOLLOW."""

import os
import stat

from .errors import InvalidArgument, NotFound

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
O_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
MAX_SYMLINKS = 40
try:
    # CPython's own sha256: importing hashlib loads OpenSSL (5-15 ms), more
    # than a fully cached build of small files spends hashing them
    from _sha256 import sha256 as small_sha256
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import sha256 as small_sha256


def split_path(path):
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve_in_root(lstat, readlink, path, follow_final=True):
    """`path` with every symlink resolved as if the root were `/` (an
    absolute target restarts at the root, `..` stops there).  `lstat(parts)`
    returns a stat or None; `readlink(parts)` the link's target."""
    pending = split_path(path)
    resolved = []
    hops = 0
    while pending:
        name = pending.pop(0)
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = resolved + [name]
        st = lstat(candidate)
        if st is not None and stat.S_ISLNK(st.st_mode) and (pending or follow_final):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise InvalidArgument(f"too many levels of symbolic links: {path}")
            target = readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = split_path(target) + pending
            continue
        resolved.append(name)
    return resolved


class ContextDir:
    """The build context: a directory read through fds, never following a
    symlink out of it.  `.dockerignore` decides what is visible."""

    def __init__(self, path):
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise InvalidArgument(f"unable to prepare context: {path}: {e.strerror}") from None
        self.path = path
        from collections import OrderedDict
        self._fds = OrderedDict()  # a few open directory fds, by path
        from .dockerignore import Matcher, load
        data = self.read_file(".dockerignore", missing_ok=True)
        self.ignore = load(data.decode(errors="replace")) if data is not None else Matcher(())

    def close(self):
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _dir_fd(self, parts):
        """An fd of the directory `parts`, opened one component at a time
        with O_NOFOLLOW.  Kept open (the last 32) for the next lookups in
        the same directory; callers do not close it."""
        key = "/".join(parts)
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
            return fd
        if not parts:
            return self.fd
        parent = self._dir_fd(parts[:-1])
        fd = os.open(parts[-1], O_DIR, dir_fd=parent)
        self._fds[key] = fd
        if len(self._fds) > 32:
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def lstat(self, parts):
        if not parts:
            return os.fstat(self.fd)
        try:
            return os.stat(parts[-1], dir_fd=self._dir_fd(parts[:-1]), follow_symlinks=False)
        except OSError:
            return None

    def readlink(self, parts):
        return os.readlink(parts[-1], dir_fd=self._dir_fd(parts[:-1]))

    def resolve(self, path, follow_final=True):
        return resolve_in_root(self.lstat, self.readlink, path, follow_final)

    def open(self, parts):
        return os.open(parts[-1], O_FILE, dir_fd=self._dir_fd(parts[:-1]))

    def read_file(self, path, missing_ok=False, limit=16 << 20):
        parts = self.resolve(path)
        try:
            fd = self.open(parts)
        except FileNotFoundError:
            if missing_ok:
                return None
            raise NotFound(f"{path}: no such file in the build context") from None
        except OSError as e:
            raise InvalidArgument(f"cannot read {path} in the build context: {e.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InvalidArgument(f"{path} in the build context is not a regular file")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise InvalidArgument(f"{path} in the build context is too large")
        return data

    def listdir(self, parts):
        return os.listdir(self._dir_fd(parts))

    def excluded(self, parts):
        return bool(parts) and self.ignore.excluded("/".join(parts))


class RootfsView:
    """The merged view of a stack of unpacked layers (top first), as the
    overlay would show it, read without mounting: whiteouts hide, an opaque
    directory hides what is below it, a non-directory hides lower ones."""

    def __init__(self, layer_dirs):
        self.dirs = layer_dirs

    def _layers_for(self, parts):
        """[(host path, stat)] of the visible entry `parts`: one for a
        non-directory, every contributing layer for a directory."""
        out = []
        last = len(parts) - 1
        for d in self.dirs:
            path, found, opaque = d, True, False
            try:
                st = os.lstat(d)
            except OSError:
                continue
            for k, name in enumerate(parts):
                path = f"{path}/{name}"
                try:
                    st = os.lstat(path)
                except OSError:
                    found = False
                    break
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return out  # whiteout
                if not stat.S_ISDIR(st.st_mode):
                    if k < last:
                        return out
                    break
                if _opaque(path):
                    opaque = True
            if found:
                if not stat.S_ISDIR(st.st_mode):
                    return out or [(path, st)]
                out.append((path, st))
            if opaque:
                return out
        return out

    def lstat(self, parts):
        layers = self._layers_for(parts)
        return layers[0][1] if layers else None

    def host_path(self, parts):
        layers = self._layers_for(parts)
        return layers[0][0] if layers else None

    def readlink(self, parts):
        return os.readlink(self.host_path(parts))

    def resolve(self, path, follow_final=True):
        return resolve_in_root(self.lstat, self.readlink, path, follow_final)

    def listdir(self, parts):
        names = {}
        for path, st in self._layers_for(parts):
            if not stat.S_ISDIR(st.st_mode):
                break
            for name in os.listdir(path):
                if name not in names:
                    names[name] = True
        return sorted(n for n in names if self.lstat(parts + [n]) is not None)

    def open(self, parts):
        return os.open(self.host_path(parts), O_FILE)

    def read_text(self, path):
        parts = self.resolve(path)
        st = self.lstat(parts)
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size > 16 << 20:
            return ""
        fd = self.open(parts)
        with os.fdopen(fd, "rb") as f:
            return f.read().decode(errors="replace")


def _opaque(path):
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def clean_parts(path):
    out = []
    for p in split_path(path):
        if p == "..":
            if out:
                out.pop()
        else:
            out.append(p)
    return out


class _FdFile:
    def __init__(self, fd):
        self.f = os.fdopen(fd, "rb")

    def __enter__(self):
        return self.f

    def __exit__(self, *exc):
        self.f.close()


def opener(root, parts):
    def open_():
        fd = root.open(parts)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidArgument(f"{'/'.join(parts)} changed while it was being copied")
        return _FdFile(fd)
    return open_


def bytes_opener(data):
    import io

    class _B:
        def __enter__(self):
            self.f = io.BytesIO(data)
            return self.f

        def __exit__(self, *exc):
            pass
    return lambda: _B()


def checksum(root, parts):
    fd = root.open(parts)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"{'/'.join(parts)} is not a regular file")
        h = sha256_for(st.st_size)
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def is_archive(root, parts):
    with opener(root, parts)() as f:
        head = f.read(262)
    return (head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ")
            or head[257:262] == b"ustar")


def sha256_for(size):
    """OpenSSL's sha256 (fast on big inputs) only when it pays for its import."""
    if size < 1 << 20:
        return small_sha256()
    import hashlib
    return hashlib.sha256()
