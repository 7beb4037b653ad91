"""User namespaces (`--userns=auto`): each container gets 65536 host ids of
its own, so its root is nobody on the host.  The ids come from the `diyc`
entry of /etc/subuid and /etc/subgid when there is one, else from a range
far above ordinary users (1073741824 + 65536 * slot).  A slot is claimed
with one atomic symlink in <root>/userns/, like a container name."""

import os

from .errors import Conflict, InvalidArgument

SIZE = 65536
DEFAULT_BASE = 1 << 30
DEFAULT_SLOTS = 4096


def _subordinate_range(path, user="diyc"):
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] == user:
                    return int(parts[1]), int(parts[2])
    except (OSError, ValueError):
        pass
    return None


def ranges():
    """(uid base, gid base, number of slots) for this machine."""
    uid = _subordinate_range("/etc/subuid")
    gid = _subordinate_range("/etc/subgid")
    if uid and gid:
        return uid[0], gid[0], min(uid[1], gid[1]) // SIZE
    return DEFAULT_BASE, DEFAULT_BASE, DEFAULT_SLOTS


def check_reachable(path):
    """The container's root (an unprivileged uid on the host) must be able
    to walk down to the diyc root: refuse clearly rather than fail mid-start."""
    p = os.path.dirname(os.path.abspath(path))
    while p != "/":
        if not os.stat(p).st_mode & 0o001:
            raise InvalidArgument(f"--userns auto: {p} is not searchable by other users "
                                  f"(mode {oct(os.stat(p).st_mode & 0o777)}); use a diyc root "
                                  "whose parent directories are (like /var/lib)")
        p = os.path.dirname(p)


def allocate(root, cid):
    """Claim a free slot for container `cid` -> {"uid", "gid", "size", "slot"}."""
    check_reachable(root.path)
    uid_base, gid_base, slots = ranges()
    if slots < 1:
        raise InvalidArgument("the diyc entries of /etc/subuid and /etc/subgid hold fewer than 65536 ids")
    d = f"{root.path}/userns"
    os.makedirs(d, exist_ok=True)
    os.chmod(root.path, 0o711)  # searchable by the container's root (a root made before)
    for slot in range(slots):
        try:
            os.symlink(cid, f"{d}/{slot}")
        except FileExistsError:
            continue
        return {"uid": uid_base + slot * SIZE, "gid": gid_base + slot * SIZE, "size": SIZE,
                "slot": slot}
    raise Conflict(f"no free user namespace range left ({slots} in use)")


def release(root, cid, userns):
    path = f"{root.path}/userns/{userns['slot']}"
    try:
        if os.readlink(path) == cid:
            os.unlink(path)
    except FileNotFoundError:
        pass


def mappings(userns):
    """OCI linux.uidMappings / gidMappings."""
    return ([{"containerID": 0, "hostID": userns["uid"], "size": userns["size"]}],
            [{"containerID": 0, "hostID": userns["gid"], "size": userns["size"]}])


def write_maps(pid, uid_mappings, gid_mappings):
    """The id maps of the user namespace of `pid` (which waits for them)."""
    for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def send_idmapped_layers(pid, layer_dirs, sock):
    """Idmapped mounts of the image's layers, seen through the container's
    user namespace, sent to its init (which attaches them for the overlay)."""
    import socket
    from . import _native
    userns_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    fds = []
    try:
        for d in layer_dirs:
            fds.append(_native.idmapped_tree(d, userns_fd))
        socket.send_fds(sock, [b"L"], fds)
    finally:
        for fd in fds:
            os.close(fd)
        os.close(userns_fd)
