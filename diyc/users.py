"""`--user NAME|UID[:GROUP|GID]`, resolved against the image's own
/etc/passwd and /etc/group (never the host's)."""

from .errors import InvalidArgument
from .numbers import integer, is_digits

MAX_ID = 0xFFFFFFFE  # (uid_t)-1 means "no change" to the kernel


def _image_id(text, file, entry):
    """A uid or gid field of the image's own /etc/passwd or /etc/group:
    untrusted, so malformed ones are refused, not taken as 0."""
    if not is_digits(text) or len(text) > 10 or int(text) > MAX_ID:
        raise InvalidArgument(f"the image's {file} has an invalid id {text!r} for {entry!r}")
    return int(text)


def _read_image_file(layer_dirs, path):
    """A file's content as the container will see it: the top-most layer
    that has it (or its whiteout) wins.  The layers are untrusted: symlinks
    in them resolve inside the layer, never to the host's /etc/shadow or
    /dev/zero; the file is looked at through an O_PATH fd (so a device or
    fifo is never opened) and read only when it is a regular file, at most
    4 MiB of it."""
    import os
    import stat
    from . import _native
    resolve = _native.RESOLVE["in_root"] | _native.RESOLVE["no_magiclinks"] | _native.RESOLVE["no_xdev"]
    for d in layer_dirs:
        try:
            layer = os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fd = _native.openat2(layer, path, os.O_PATH, resolve)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:  # a symlink loop, an absolute link to /proc/...
            raise InvalidArgument(f"cannot read /{path} of the image: {e.strerror}") from None
        finally:
            os.close(layer)
        try:
            st = os.fstat(fd)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return ""  # a whiteout: deleted by this layer
            if not stat.S_ISREG(st.st_mode):
                raise InvalidArgument(f"/{path} of the image is not a regular file")
            with open(f"/proc/self/fd/{fd}", "rb") as f:
                return f.read(4 << 20).decode(errors="replace")
        finally:
            os.close(fd)
    return ""


def _entries(text):
    for line in text.splitlines():
        if line and not line.startswith("#"):
            yield line.split(":")


def resolve_user(spec_user, layer_dirs):
    """-> (uid, gid, additional gids, home)."""
    user, _, group = (spec_user or "0").partition(":")
    passwd = list(_entries(_read_image_file(layer_dirs, "etc/passwd")))
    uid = gid = None
    name = home = None
    for e in passwd:
        if len(e) >= 6 and (e[0] == user or (is_digits(user) and e[2] == user)):
            name, home = e[0], e[5]
            uid, gid = _image_id(e[2], "/etc/passwd", name), _image_id(e[3], "/etc/passwd", name)
            break
    if uid is None:
        if not is_digits(user):
            raise InvalidArgument(f"unable to find user {user}: no matching entries in the image's /etc/passwd")
        uid, gid = integer(user, "user id", 0, MAX_ID), 0 if not group else None
    groups_file = list(_entries(_read_image_file(layer_dirs, "etc/group"))) if (group or name) else []
    if group:
        gid = None
        for e in groups_file:
            if len(e) >= 3 and (e[0] == group or (is_digits(group) and e[2] == group)):
                gid = _image_id(e[2], "/etc/group", e[0])
                break
        if gid is None:
            if not is_digits(group):
                raise InvalidArgument(f"unable to find group {group}: no matching entries in the image's /etc/group")
            gid = integer(group, "group id", 0, MAX_ID)
    extra = []
    if name:
        for e in groups_file:
            if len(e) >= 4 and name in e[3].split(",") and _image_id(e[2], "/etc/group", e[0]) != gid:
                extra.append(int(e[2]))
    return uid, gid, extra, home or ("/root" if uid == 0 else "/")

