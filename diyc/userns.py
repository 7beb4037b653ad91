"""User namespaces (`--userns=auto`): each container gets 65536 host ids of
its own, so its root is nobody on the host.  The ids come from the `diyc`
entry of /etc/subuid and /etc/subgid when there is one, else from a range
far above ordinary users (1073741824 + 65536 * slot).  A slot is claimed
with one atomic symlink in <root>/userns/, like a container name.

That uid may not search the diyc root (0700: it holds every image's setuid
binaries).  The container's init, which mounts its root file system as that
uid, reaches what it needs there through file descriptors we open for it
(ContainerPaths): no path from / has to be open to it."""

import os

from .errors import Conflict, DiycError, InvalidArgument

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


def allocate(root, cid):
    """Claim a free slot for container `cid` -> {"uid", "gid", "size", "slot"}."""
    uid_base, gid_base, slots = ranges()
    if slots < 1:
        raise InvalidArgument("the diyc entries of /etc/subuid and /etc/subgid hold fewer than 65536 ids")
    d = f"{root.path}/userns"
    os.makedirs(d, 0o700, exist_ok=True)
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


def idmapped_layers(pid, layer_dirs):
    """Idmapped mounts of the image's layers, seen through the user
    namespace of `pid`, for its init to attach for the overlay -> fds (the
    caller closes them once sent)."""
    userns_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return idmapped_trees(userns_fd, layer_dirs)
    finally:
        os.close(userns_fd)


def idmapped_trees(userns_fd, dirs):
    """Detached idmapped mounts of `dirs` through the user namespace
    `userns_fd` -> their fds."""
    from . import _native
    fds = []
    try:
        for d in dirs:
            fds.append(_native.idmapped_tree(d, userns_fd))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def namespace_fd(userns):
    """An fd of a new user namespace with a container's id maps (record
    ["userns"]), for idmapped mounts of a container that does not run: a
    child unshares it, we write its maps and open it; the namespace lives
    on with the fd, the child exits once we have opened it."""
    from . import _native
    from .record import waitpid
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(ready_r)
            os.close(done_w)
            _native.unshare(_native.NS_FLAGS["user"])
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # until the parent has opened the namespace
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise DiycError("cannot make a user namespace for the container's id maps")
        write_maps(pid, *mappings(userns))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        waitpid(pid)


class ContainerPaths:
    """Paths under the diyc root that the init of a user-namespaced container
    can resolve after it has taken the namespace's ids: /proc/self/fd/N/...
    We open each directory or file it needs (O_PATH) to reserve the number
    N; the init, still the root's owner then, opens the same path in its own
    mount namespace onto N (InitDescription.reopen), and N closes at its execve.
    Its own directory (0710, group: its root's gid) is searched from there;
    anything else under the root (a named volume, a joined container's
    /etc/hosts) is opened itself."""

    def __init__(self, state_root, container_dir):
        self.state_root, self.container_dir = state_root, container_dir
        self.reopen = []
        self.dir = self._open(container_dir)

    def _open(self, path):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        self.reopen.append((path, fd))
        return f"/proc/self/fd/{fd}"

    def __call__(self, path):
        """The path the init resolves for host path `path`."""
        if not isinstance(path, str) or not path.startswith(self.state_root + "/"):
            return path
        if path.startswith(self.container_dir + "/"):
            return self.dir + path[len(self.container_dir):]
        return self._open(path)

    def close(self):
        """Ours, once the init has been cloned with a copy."""
        for _, fd in self.reopen:
            os.close(fd)
        self.reopen = []
