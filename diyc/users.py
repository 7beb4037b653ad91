"""`--user NAME|UID[:GROUP|GID]`, resolved against the image's own
/etc/passwd and /etc/group (never the host's)."""

from .errors import InvalidArgument


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
        if len(e) >= 6 and (e[0] == user or (user.isdigit() and e[2] == user)):
            name, uid, gid, home = e[0], int(e[2]), int(e[3]), e[5]
            break
    if uid is None:
        if not user.isdigit():
            raise InvalidArgument(f"unable to find user {user}: no matching entries in the image's /etc/passwd")
        uid, gid = int(user), 0 if not group else None
    groups_file = list(_entries(_read_image_file(layer_dirs, "etc/group"))) if (group or name) else []
    if group:
        gid = None
        for e in groups_file:
            if len(e) >= 3 and (e[0] == group or (group.isdigit() and e[2] == group)):
                gid = int(e[2])
                break
        if gid is None:
            if not group.isdigit():
                raise InvalidArgument(f"unable to find group {group}: no matching entries in the image's /etc/group")
            gid = int(group)
    extra = []
    if name:
        for e in groups_file:
            if len(e) >= 4 and name in e[3].split(",") and int(e[2]) != gid:
                extra.append(int(e[2]))
    if uid > 0xFFFFFFFE or gid > 0xFFFFFFFE:
        raise InvalidArgument(f"invalid user {spec_user!r}")
    return uid, gid, extra, home or ("/root" if uid == 0 else "/")

