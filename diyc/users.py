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
    that has it wins."""
    for d in layer_dirs:
        try:
            with open(f"{d}/{path}", "rb") as f:
                return f.read().decode(errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
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

