"""`diyc cp` and the archive API (docker-py's container.get_archive and
put_archive): files between a container and the host, as tar streams.

docker's rules for where a copy lands (SRC -> DEST):
    DEST is a directory      SRC goes into it, by its own name; `SRC/.`
                             puts the directory's entries there instead
    DEST is a file           a file SRC replaces it; a directory is refused
    DEST does not exist      SRC is written under that name (its parent
                             must exist); `DEST/` must be a directory, so a
                             file SRC is refused
    -                        a tar stream on stdout (from a container) or
                             stdin (to a container, unpacked into DEST)
A symlink SRC is copied as a symlink, unless -L follows it (that one
only).  Ownership: files land owned by whoever receives them (the
container's root, or the caller on the host) unless -a keeps the source's.

Every container path goes through container_fs.ContainerFS (resolved
inside the container's root), and whatever is written, on either side, is
unpacked by images.layers.Unpacker through directory fds, never following a
symlink the archive or the container planted."""

import os
import stat
import threading

from .buildlayer import LayerTar, TreeTar
from .container_fs import ContainerFS, overlay_tree
from .errors import DiycError, InvalidArgument, NotFound

_CHUNK = 1 << 20
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


# -- image -> a new volume ------------------------------------------------------

def image_files_into(layer_dirs, path, dest, owner=None):
    """Docker's copy into a new volume: the entries of the image's
    directory `path` (layer_dirs top first: resolved in an overlay of them,
    symlinks inside its root) into the empty directory `dest`, owners kept
    or mapped by owner(uid, gid) -> (uid, gid) (no setuid bits, file
    capabilities or device nodes), `dest` given the directory's owner and
    mode.  When the image has no directory there, `dest` only gets
    owner(0, 0) (with an owner)."""
    dest_fd = os.open(dest, _O_DIR)
    mnt = overlay_tree(layer_dirs) if len(layer_dirs) > 1 else -1  # (kept whole while we read)
    try:
        fd = _image_dir(mnt, layer_dirs, path) if layer_dirs else None
        if fd is None:
            if owner:
                os.fchown(dest_fd, *owner(0, 0))
            return
        try:
            st = os.fstat(fd)
            piped(lambda w: write_archive(w, fd, ""), lambda r: unpack(r, dest_fd, owner, plain_files=True))
            os.fchown(dest_fd, *(owner or (lambda u, g: (u, g)))(st.st_uid, st.st_gid))
            os.fchmod(dest_fd, stat.S_IMODE(st.st_mode) & 0o1777)  # (no setuid/setgid, as inside)
        finally:
            os.close(fd)
    finally:
        os.close(dest_fd)
        if mnt >= 0:
            os.close(mnt)


def _image_dir(mnt, layer_dirs, path):
    """An O_PATH fd of the directory `path` of the image (in the overlay
    mount `mnt` of layer_dirs; with one layer, -1: that layer), or None."""
    from . import _native
    root_fd = os.open(".", _O_DIR, dir_fd=mnt) if mnt >= 0 else os.open(layer_dirs[0], _O_DIR)
    try:
        fd = _native.openat2(root_fd, path, os.O_PATH,
                             _native.RESOLVE["in_root"] | _native.RESOLVE["no_magiclinks"])
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(root_fd)
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def split_source(path):
    """-> (path without a trailing "/.", whether only its entries are meant)."""
    if path == "." or path.endswith("/."):
        return path[:-1] or ".", True
    return path, False


def target(src_is_dir, contents, dest_st, dest, src_name):
    """Where a copy lands, by docker's rules: -> (directory, name), name ""
    for the entries of SRC.  dest_st: DEST's stat, None when missing."""
    if dest_st is not None and stat.S_ISDIR(dest_st.st_mode):
        return dest, "" if contents else src_name
    if dest_st is not None and src_is_dir:
        raise InvalidArgument(f"cannot copy a directory to a file: {dest}")
    if dest_st is None and dest.endswith("/") and not src_is_dir:
        raise InvalidArgument(f"destination directory does not exist: {dest}")
    parent, name = os.path.split(dest.rstrip("/") or "/")
    if not name or name in (".", ".."):
        raise InvalidArgument(f"invalid destination: {dest}")
    return parent or ".", name


def base_name(path):
    """The name SRC has in an archive: "" for the root (its entries)."""
    name = os.path.basename(path.rstrip("/"))
    return name if name not in (".", "..") else ""


# -- container -> host / stream ------------------------------------------------

def source_fd(fs, path, follow):
    try:
        return fs.lookup(path, follow=follow)
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container {fs.ctr.name}") from None
    except OSError as e:
        raise InvalidArgument(f"{path} in container {fs.ctr.name}: {e.strerror}") from None


def write_archive(stream, fd, arcname, ids=None, devices=None):
    """A tar of the tree at the O_PATH fd `fd` into `stream` (see TreeTar.add_fd)."""
    layer = LayerTar(None, stream=stream)
    try:
        TreeTar(layer, ids=ids, devices=devices).add_fd(fd, arcname)
        layer.close_stream()
    except BaseException:
        layer.abandon_stream()
        raise


def copy_from_container(ctr, src, dest, archive=False, follow=False, stdout=None):
    """`diyc cp CONTAINER:SRC DEST` (DEST "-": a tar on `stdout`, a binary file)."""
    src, contents = split_source(src)
    with ContainerFS.open(ctr) as fs:
        fd = source_fd(fs, src, follow)
        try:
            src_is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            if contents and not src_is_dir:
                raise InvalidArgument(f"{src}: not a directory")
            if dest == "-":
                write_archive(stdout, fd, "" if contents else base_name(src), fs.to_container_ids, fs.devices)
                return
            try:
                dest_st = os.stat(dest)
            except FileNotFoundError:
                dest_st = None
            into, name = target(src_is_dir, contents, dest_st, dest, base_name(src))
            owner = None if archive else (lambda uid, gid: (os.getuid(), os.getgid()))
            try:
                dest_fd = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as e:
                raise InvalidArgument(f"{into}: {e.strerror}") from None
            try:
                # without -a the caller owns the files; with or without, a
                # container's file reaches the host without setuid bits,
                # file capabilities or device nodes
                all_or_nothing(dest_fd, name if dest_st is None else "", lambda: piped(
                    lambda w: write_archive(w, fd, name, fs.to_container_ids, fs.devices),
                    lambda r: unpack(r, dest_fd, owner, plain_files=True)))
            finally:
                os.close(dest_fd)
        finally:
            os.close(fd)


def all_or_nothing(dest_fd, new_name, copy):
    """copy(); when it fails, what it made under the new name `new_name`
    of the directory dest_fd is removed (fd-based, never following a
    symlink): no half copy under a name that did not exist.  (Into an
    existing directory, what was copied stays, as docker's.)"""
    try:
        copy()
    except BaseException:
        if new_name:
            from .rootfs import remove_tree_at
            remove_tree_at(dest_fd, new_name)
        raise


def unpack(stream, dest_fd, owner, plain_files=False):
    from .images.layers import LayerError, StorageError, unpack_archive
    try:
        unpack_archive(stream, dest_fd, owner, plain_files)
    except StorageError as e:
        raise DiycError(str(e).replace("layer", "archive")) from None
    except LayerError as e:
        message = str(e).replace("layer tarball", "archive").replace("layer", "archive")
        raise InvalidArgument(message) from None


def piped(write, read):
    """write(w) in a thread, read(r) here, w and r the two ends of a pipe:
    a tar goes from one tree to the other without a copy on disk.  The
    reader's error wins (the writer then sees a broken pipe)."""
    r, w = os.pipe()
    rfile, wfile = os.fdopen(r, "rb"), os.fdopen(w, "wb")
    failure = []

    def writer():
        try:
            write(wfile)
        except BaseException as e:  # handed to the main thread
            failure.append(e)
        finally:
            try:
                wfile.close()
            except OSError:
                pass
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        read(rfile)
        while rfile.read(_CHUNK):
            pass  # the tar's padding after its end
    finally:
        rfile.close()
        thread.join()
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise failure[0]


# -- host / stream -> container ------------------------------------------------

def copy_to_container(ctr, src, dest, archive=False, follow=False, stdin=None):
    """`diyc cp SRC CONTAINER:DEST` (SRC "-": a tar read from `stdin`,
    unpacked into the directory DEST)."""
    with ContainerFS.open(ctr, writable=True) as fs:
        if src == "-":
            dest_fd = container_dir(fs, dest)
            try:
                unpack_in_container(fs, stdin, dest_fd, archive)
            finally:
                os.close(dest_fd)
            return
        src, contents = split_source(src)
        try:
            src_fd = os.open(src, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
        except OSError as e:
            raise NotFound(f"{src}: {e.strerror}") from None
        try:
            src_is_dir = stat.S_ISDIR(os.fstat(src_fd).st_mode)
            if contents and not src_is_dir:
                raise InvalidArgument(f"{src}: not a directory")
            dest = link_target(fs, dest)
            dest_st = container_stat(fs, dest)
            into, name = target(src_is_dir, contents, dest_st, dest, base_name(src))
            dest_fd = container_dir(fs, into)
            try:
                all_or_nothing(dest_fd, name if dest_st is None else "", lambda: piped(
                    lambda w: write_archive(w, src_fd, name),
                    lambda r: unpack_in_container(fs, r, dest_fd, archive)))
            finally:
                os.close(dest_fd)
        finally:
            os.close(src_fd)


def unpack_in_container(fs, stream, dest_fd, keep_owners):
    """A tar into the container's directory dest_fd: its entries owned by
    the container's root, or (keep_owners) by the tar's ids, as the
    container sees them."""
    if fs.userns_fd >= 0:  # as the container's root, in its user namespace
        # imported here: that root may not read the host's Python files
        import gzip  # noqa: F401
        from .images import layers  # noqa: F401
        def owner(uid, gid):
            fs.to_host_ids(uid, gid)  # (refuses ids the namespace does not map)
            return (uid, gid) if keep_owners else (0, 0)
        fds = [dest_fd] + ([stream.fileno()] if hasattr(stream, "fileno") else [])
        fs.as_container_root(lambda: unpack(stream, dest_fd, owner), keep_fds=fds)
    else:
        owner = fs.to_host_ids if keep_owners else (lambda uid, gid: fs.to_host_ids(0, 0))
        unpack(stream, dest_fd, owner)


def link_target(fs, path):
    """DEST itself a symlink: the path it names (as docker, which writes
    through it), still to be resolved inside the container's root."""
    try:
        fd = fs.lookup(path, follow=False)
    except OSError:
        return path
    try:
        if not stat.S_ISLNK(os.fstat(fd).st_mode):
            return path
        link = os.readlink("", dir_fd=fd)
    finally:
        os.close(fd)
    return link if link.startswith("/") else f"{os.path.dirname(path.rstrip('/'))}/{link}"


def container_stat(fs, path):
    """DEST's stat in the container (its symlinks followed inside the root), or None."""
    try:
        fd = fs.lookup(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InvalidArgument(f"{path} in container {fs.ctr.name}: {e.strerror}") from None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def container_dir(fs, path):
    try:
        return fs.open_dir(path)
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container {fs.ctr.name}") from None
    except OSError as e:
        raise InvalidArgument(f"{path} in container {fs.ctr.name}: {e.strerror}") from None


# -- the library API (docker-py's) ---------------------------------------------

# Go's os.FileMode type bits, which docker's path stat carries
_GO_FILE_TYPES = {stat.S_IFDIR: 1 << 31, stat.S_IFLNK: 1 << 27, stat.S_IFBLK: 1 << 26,
                  stat.S_IFCHR: (1 << 26) | (1 << 21), stat.S_IFIFO: 1 << 25, stat.S_IFSOCK: 1 << 24}


def path_stat(fs, path, fd):
    """docker's X-Docker-Container-Path-Stat: name, size, mode (Go's
    os.FileMode bits), mtime (RFC 3339), linkTarget."""
    import time
    st = os.fstat(fd)
    mode = stat.S_IMODE(st.st_mode)
    kind = _GO_FILE_TYPES.get(stat.S_IFMT(st.st_mode), 0)
    setid = (1 << 23 if mode & stat.S_ISUID else 0) | (1 << 22 if mode & stat.S_ISGID else 0) \
        | (1 << 20 if mode & stat.S_ISVTX else 0)
    link = os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
    return {"name": base_name(path) or "/", "size": st.st_size, "mode": kind | setid | (mode & 0o777),
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)), "linkTarget": link}


def get_archive(ctr, path, chunk_size=2 << 20, follow=False):
    """-> (an iterator of the tar's bytes, the path's stat), as docker-py's
    container.get_archive."""
    import tempfile
    src, contents = split_source(path)
    # The tar is made now, into a temp file, and the container let go of
    # before returning: an iterator never iterated holds no mount or fd.
    f = tempfile.TemporaryFile(dir=ctr.root.tmp)
    try:
        with ContainerFS.open(ctr) as fs:
            fd = source_fd(fs, src, follow)
            try:
                info = path_stat(fs, src, fd)
                write_archive(f, fd, "" if contents else base_name(src), fs.to_container_ids, fs.devices)
            finally:
                os.close(fd)
        f.seek(0)
    except BaseException:
        f.close()
        raise

    def chunks():
        with f:
            while data := f.read(chunk_size):
                yield data
    return chunks(), info


def put_archive(ctr, path, data):
    """Unpack the tar `data` (bytes, a binary file or an iterable of bytes)
    into the existing directory `path` of the container, its entries'
    owners kept -> True, as docker-py's container.put_archive."""
    with ContainerFS.open(ctr, writable=True) as fs:
        dest_fd = container_dir(fs, path)
        try:
            unpack_in_container(fs, _reader(data), dest_fd, keep_owners=True)
        finally:
            os.close(dest_fd)
    return True


def _reader(data):
    import io
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(data)
    if hasattr(data, "read"):
        return data
    return _IterReader(iter(data))


class _IterReader:
    def __init__(self, chunks):
        self.chunks, self.buf = chunks, b""

    def read(self, n=-1):
        while n < 0 or len(self.buf) < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buf += chunk
        if n < 0:
            data, self.buf = self.buf, b""
        else:
            data, self.buf = self.buf[:n], self.buf[n:]
        return data


# -- `diyc cp SRC DEST`, one side CONTAINER:PATH -------------------------------

def split_container_path(arg):
    """"CONTAINER:PATH" -> (container, path); a local path -> (None, arg).
    As docker: a path starting with / or . is local, whatever colons it has."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    container, _, path = arg.partition(":")
    return (container, path) if container else (None, arg)


def cp(root, src, dest, archive=False, follow=False, stdin=None, stdout=None):
    """`diyc cp`: between the host (or `-`, a tar on stdin/stdout) and a
    container, either way."""
    from .record import ContainerRecord
    (src_ctr, src_path), (dest_ctr, dest_path) = split_container_path(src), split_container_path(dest)
    if src_ctr and dest_ctr:
        raise InvalidArgument("copying between containers is not supported")
    if not src_ctr and not dest_ctr:
        raise InvalidArgument("must specify at least one container source")
    if not (src_path if src_ctr else dest_path):
        raise InvalidArgument("the container path must not be empty")
    if src_ctr:
        if dest_path == "-" and stdout is not None and stdout.isatty():
            raise InvalidArgument("refusing to write an archive to a terminal")
        copy_from_container(ContainerRecord.load(src_ctr, root), src_path, dest_path, archive, follow, stdout)
    else:
        copy_to_container(ContainerRecord.load(dest_ctr, root), src_path, dest_path, archive, follow, stdin)
