"""From a runtime-spec config to the description the native init
consumes (init_description.InitDescription): mount flags split out of option lists, the default devices, the
overlay that makes an image's layers a writable root."""

import errno
import os
import stat

from . import _native
from .errors import InvalidArgument

# The devices the runtime-spec says every container gets, and no others:
# the host's devtmpfs would expose every disk of the machine.
DEFAULT_DEVICES = (
    ("/dev/null", stat.S_IFCHR | 0o666, 1, 3),
    ("/dev/zero", stat.S_IFCHR | 0o666, 1, 5),
    ("/dev/full", stat.S_IFCHR | 0o666, 1, 7),
    ("/dev/random", stat.S_IFCHR | 0o666, 1, 8),
    ("/dev/urandom", stat.S_IFCHR | 0o666, 1, 9),
    ("/dev/tty", stat.S_IFCHR | 0o666, 5, 0),
)

# "default": diyc's built-in seccomp profile; "unconfined": none.  A
# `linux.seccomp` profile in the spec takes precedence over both.
SECCOMP_ANNOTATION = "org.diyc.seccomp"

DEFAULT_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("/proc/kcore", "/dev/core"),
    ("pts/ptmx", "/dev/ptmx"),
)


def mount_options(options):
    """OCI mount options -> (flags, propagation, data)."""
    flags = propagation = 0
    data = []
    for opt in options or ():
        if opt in _native.MOUNT_FLAGS:
            bit, clear = _native.MOUNT_FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in _native.PROPAGATION_FLAGS:
            propagation |= _native.PROPAGATION_FLAGS[opt]
        else:
            data.append(opt)
    return flags, propagation, ",".join(data) or None


def native_mounts(mounts):
    out = []
    for m in mounts:
        dest = m.get("destination", "")
        if not dest.startswith("/"):
            raise InvalidArgument(f"mount destination must be absolute: {dest!r}")
        flags, propagation, data = mount_options(m.get("options"))
        fstype = m.get("type") or None
        if fstype == "bind":
            fstype = None
            flags |= _native.MOUNT_FLAGS["bind"][0]
        is_file = False
        if flags & _native.MOUNT_FLAGS["bind"][0]:
            is_file = not os.path.isdir(m["source"])
        out.append((m.get("source"), dest, fstype, data, flags, propagation, is_file))
    return out


def overlay_options(lower_dirs, upper, work, volatile=False):
    """volatile: the upper dir is thrown away with the container (--rm), so
    overlayfs may skip every sync of it - above all the syncfs() of the
    whole upper filesystem it does when it is unmounted, which the
    container's exit waits for: it writes back every process's dirty data
    on that filesystem (~10 ms here, 100s of ms after big writes)."""
    options = f"lowerdir={':'.join(lower_dirs)},upperdir={upper},workdir={work}"
    if volatile:
        options += ",volatile"
    if len(options) >= 4096:
        raise InvalidArgument("too many image layers for one overlay mount")
    return options


# A container's writable layer on disk, in its directory: overlayfs's upper
# and work dirs, and the mount point of the overlay.
WRITABLE_LAYER = ("upper", "work", "merged")

# How deep remove_tree_at() descends before it moves a subtree up: bounds
# the directory fds it holds open, whatever depth a container built.
_MAX_OPEN_DEPTH = 32
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_writable_layer(container_dir):
    """Remove a container's upper, work and merged dirs (after its end).
    A container that wrote nothing costs a few rmdir() calls: only a tree
    with something in it is walked."""
    try:
        dirfd = os.open(container_dir, _DIR_FLAGS)
    except FileNotFoundError:
        return
    try:
        _remove_volatile_work(dirfd)
        for name in WRITABLE_LAYER:
            remove_tree_at(dirfd, name)
    finally:
        os.close(dirfd)


def _remove_volatile_work(dirfd):
    """The work dir of a volatile overlay (--rm) as the kernel leaves it,
    work/work/incompat/volatile/dirty, removed entry by entry rather than
    walked (a pool removes one per run).  Anything else there stays for
    remove_tree_at."""
    fds = [dirfd]
    try:
        for name in ("work", "work", "incompat", "volatile"):
            fds.append(os.open(name, _DIR_FLAGS, dir_fd=fds[-1]))
        os.unlink("dirty", dir_fd=fds[-1])
        for parent, name in zip(fds[-2::-1], ("volatile", "incompat", "work", "work")):
            os.rmdir(name, dir_fd=parent)
    except OSError:
        pass  # not that shape: walked
    finally:
        for fd in fds[1:]:
            os.close(fd)


def remove_tree_at(dirfd, name):
    """rm -rf of `name` in the directory `dirfd`, for trees a container
    wrote: never follows a symlink (each step is an *at call on a directory
    fd opened O_NOFOLLOW), tolerates a missing `name`, and recurses neither
    in Python nor in open fds - a subdirectory deeper than _MAX_OPEN_DEPTH
    is renamed up to the top and emptied from there."""
    try:
        os.rmdir(name, dir_fd=dirfd)  # the common case: an empty dir
        return
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(name, dir_fd=dirfd)
        return
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    top = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
    stack = []  # (dir fd, its entries still to remove, its name) from the top down
    try:
        moved = 0
        while entries := list(os.scandir(top)):  # again if deep dirs moved up
            stack.append((top, entries, None))
            while stack:
                fd, entries, dir_name = stack[-1]
                if not entries:
                    stack.pop()
                    if stack:  # a subdirectory, now empty
                        os.close(fd)
                        os.rmdir(dir_name, dir_fd=stack[-1][0])
                    continue
                entry = entries.pop()
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.name, dir_fd=fd)
                elif len(stack) < _MAX_OPEN_DEPTH:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                    stack.append((sub, [], entry.name))  # (closed by `finally` if scandir fails)
                    stack[-1] = (sub, list(os.scandir(sub)), entry.name)
                else:
                    # into the top dir under a name of ours (whatever had
                    # that name is garbage too: an empty dir is replaced)
                    while True:
                        moved += 1
                        try:
                            os.rename(entry.name, f".diyc-deep-{moved}", src_dir_fd=fd, dst_dir_fd=top)
                            break
                        except OSError as e:
                            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                                raise
    finally:
        for fd, _, _ in stack:
            if fd != top:
                os.close(fd)
        os.close(top)
    os.rmdir(name, dir_fd=dirfd)


def init_config(spec, *, overlay=None, scratch=None, scratch_size=None, stdio=(-1, -1, -1)):
    """The description of the container's init (_native.spawn() takes it),
    from an OCI spec.  `overlay` is the overlayfs option string for
    spec.root.path (None: bind it as is); `scratch` a directory where a
    tmpfs private to the container holds the mount points of idmapped
    layers, and upper/work when the overlay options point there;
    `scratch_size` caps that tmpfs (bytes).  What only a later step of the
    start knows (cgroup files, the user namespace, the supervisor) it sets
    on the description by name."""
    from .init_description import InitDescription
    process = spec["process"]
    linux = spec.get("linux", {})
    # namespaces with a path are joined (spawn_in), the others created by clone
    namespaces = {ns["type"] for ns in linux.get("namespaces", ()) if not ns.get("path")}
    join_paths = {ns["type"]: ns["path"] for ns in linux.get("namespaces", ()) if ns.get("path")}
    unknown = (namespaces | set(join_paths)) - set(_native.NS_FLAGS)
    if unknown:
        raise InvalidArgument(f"unknown namespace type(s): {', '.join(sorted(unknown))}")
    flags = 0
    for ns in namespaces - {"cgroup"}:
        flags |= _native.NS_FLAGS[ns]
    user = process.get("user", {})
    init = InitDescription(
        clone_flags=flags,
        join_paths=join_paths,
        new_cgroupns="cgroup" in namespaces,
        userns="user" in namespaces,
        loopback_up="network" in namespaces,
        rootfs=spec["root"]["path"],
        overlay_options=overlay,
        scratch=scratch,
        readonly_root=spec["root"].get("readonly", False),
        rootfs_propagation=_native.PROPAGATION_FLAGS.get(linux.get("rootfsPropagation") or "", 0),
        mounts=native_mounts(spec.get("mounts", ())),
        devices=[(path, mode, os.makedev(major, minor)) for path, mode, major, minor in DEFAULT_DEVICES]
                + [_native_device(d) for d in linux.get("devices", ())],
        symlinks=DEFAULT_SYMLINKS,
        masked_paths=linux.get("maskedPaths", ()),
        readonly_paths=linux.get("readonlyPaths", ()),
        hostname=spec.get("hostname"),
        domainname=spec.get("domainname"),
        argv=process["args"],
        env=process.get("env", ()),
        cwd=process.get("cwd", "/"),
        uid=user.get("uid", 0),
        gid=user.get("gid", 0),
        umask=user.get("umask", 0o022),
        groups=user.get("additionalGids", ()),
        stdio=tuple(-1 if fd is None else fd for fd in stdio),
        sysctls=[(f"/proc/sys/{k.replace('.', '/')}", str(v)) for k, v in linux.get("sysctl", {}).items()],
        oom_score_adj=process.get("oomScoreAdj"),
        seccomp_filter=_seccomp_filter(spec),
        create_hooks=_hooks(spec, "createContainer"),
        start_hooks=_hooks(spec, "startContainer"),
    )
    if scratch_size:
        init.scratch_options = f"mode=0755,size={scratch_size}"
    _set_privileges(init, process)
    return init


def _hooks(spec, kind):
    """OCI hooks the init runs itself: (path, args, env, timeout)."""
    return [(h["path"], h.get("args") or [h["path"]], h.get("env") or [], h.get("timeout") or 0)
            for h in (spec.get("hooks") or {}).get(kind) or ()]


def hook_state(oci_version, cid, bundle, annotations):
    """The state JSON of in-container hooks, cut where the init puts the
    status and its own pid (which only it knows)."""
    from . import _json
    return (f'{{"ociVersion": {_json.dumps(oci_version)}, "id": {_json.dumps(cid)}, "status": ',
            ', "pid": ',
            f', "bundle": {_json.dumps(bundle)}, "annotations": {_json.dumps(annotations)}}}')


def seccomp_profile(spec):
    """(the profile, None for the default; the capabilities it is
    resolved for) of the spec, or None: no filter."""
    profile = spec.get("linux", {}).get("seccomp")
    mode = (spec.get("annotations") or {}).get(SECCOMP_ANNOTATION, "unconfined")
    if profile is None and mode != "default":
        return None
    from .security import CAPABILITIES
    caps = spec["process"].get("capabilities")
    return profile, set(caps.get("bounding") or ()) if caps else {f"CAP_{c}" for c in CAPABILITIES}


def _seccomp_filter(spec):
    """The compiled BPF program the init installs, or None."""
    profile = seccomp_profile(spec)
    if profile is None:
        return None
    from .seccomp import compile_profile
    return compile_profile(*profile)


def _native_device(d):
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    if d.get("type") not in kinds or not d.get("path", "").startswith("/"):
        raise InvalidArgument(f"invalid device {d!r}")
    return (d["path"], kinds[d["type"]] | (d.get("fileMode") or 0o666),
            os.makedev(d.get("major", 0), d.get("minor", 0)))


def _set_privileges(init, process):
    from .security import capability_masks, last_cap, native_rlimits
    init.no_new_privs = bool(process.get("noNewPrivileges"))
    init.rlimits = native_rlimits(process.get("rlimits"))
    if "capabilities" in process:
        init.capabilities = capability_masks(process["capabilities"])
        init.last_cap = last_cap()


# setns() affects the calling thread for these (pid: its future children),
# so a child cloned from this thread meanwhile starts inside them.  A mount
# or user namespace cannot be joined by one thread of a threaded process.
_THREAD_JOINABLE = ("network", "ipc", "uts", "pid", "cgroup")


def spawn_in(init):
    """_native.spawn(), with the namespaces of init.join_paths joined
    instead of created: the calling thread enters them around the clone.
    -> a _native.Child"""
    join = dict(init.join_paths or {})
    mount = join.pop("mount", None)
    if mount:  # entered by the init itself
        try:
            fd = os.open(mount, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise InvalidArgument(f"cannot join the mount namespace {mount}: {e.strerror}") from None
        try:
            return spawn_in(init.replace(join_paths=join, join_mnt_fd=fd))
        finally:
            os.close(fd)
    if not join:
        return _native.spawn(init)
    for kind in join:
        if kind not in _THREAD_JOINABLE:
            raise InvalidArgument(f"joining an existing {kind} namespace is not supported")
    entered = []
    try:
        for kind, path in join.items():
            flag = _native.NS_FLAGS[kind]
            own = os.open(f"/proc/thread-self/ns/{_PROC_NS[kind]}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                os.close(own)
                raise InvalidArgument(f"cannot join the {kind} namespace {path}: {e.strerror}") from None
            try:
                _native.setns(target, flag)
            except OSError:
                os.close(own)
                raise
            finally:
                os.close(target)
            entered.append((own, flag))
        return _native.spawn(init)
    finally:
        for own, flag in reversed(entered):
            _native.setns(own, flag)
            os.close(own)


_PROC_NS = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid_for_children",
            "cgroup": "cgroup"}
