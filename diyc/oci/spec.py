"""OCI bundles: a runtime-spec `config.json` plus a root filesystem, run by
the same engine as `diyc run` (diyc/runtime.py).

    load_bundle     read config.json, refuse what diyc cannot honour (one
                    line naming the field), resolve root.path
    create          a container record whose spec is the bundle's, with the
                    bundle's rootfs bound as it is (no overlay)
    OciContainer    a Container started the way runc starts one
                    (runc's pass-through), or a pty sent to a console socket
    state           the runtime-spec state of a container
    exec_process    an OCI `process` run inside a running container
    run_hooks       prestart/createRuntime/poststart/poststop hooks

A field of the runtime-spec that diyc does not implement is an error
naming it, never a silently weaker container.  Properties the spec does not
define are ignored, as the spec says a runtime must.
"""

import errno
import os

from .. import _json, cgroups
from ..errors import Conflict, ContainerNotFound, DiycError, InvalidArgument
from ..rootfs import SECCOMP_ANNOTATION
from ..record import cgroup_fields, creator_fields, now, write_new
from ..runtime import Container
from ..state import Root

OCI_VERSION = "1.0.2"
DEFAULT_ROOT = "/run/diyc-runc"

# Fields diyc honours, per object.  A field the runtime-spec defines (below)
# that diyc does not honour is refused by name; one the spec does not define
# is ignored, as the spec says a runtime must.
_TOP = {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "linux",
        "annotations", "hooks"}
_PROCESS = {"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
            "noNewPrivileges", "oomScoreAdj", "apparmorProfile", "selinuxLabel"}
_USER = {"uid", "gid", "additionalGids", "umask", "username"}
_LINUX = {"namespaces", "resources", "cgroupsPath", "devices", "sysctl", "maskedPaths",
          "readonlyPaths", "seccomp", "rootfsPropagation", "mountLabel", "uidMappings",
          "gidMappings"}
_RESOURCES = {"memory", "cpu", "pids", "devices", "hugepageLimits", "blockIO", "network",
              "rdma", "unified"}
_MEMORY = {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
           "disableOOMKiller", "useHierarchy"}
_CPU = {"shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems",
        "idle"}

# What the runtime-spec (up to 1.2) defines, per object.
_SPEC_FIELDS = {
    "": _TOP | {"solaris", "windows", "vm", "zos"},
    "process": _PROCESS | {"commandLine", "ioPriority", "scheduler", "execCPUAffinity"},
    "process.user": _USER,
    "process.capabilities": {"bounding", "effective", "permitted", "inheritable", "ambient"},
    "root": {"path", "readonly"},
    "mounts[]": {"destination", "type", "source", "options", "uidMappings", "gidMappings"},
    "hooks": {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop"},
    "hooks[]": {"path", "args", "env", "timeout"},
    "linux": _LINUX | {"timeOffsets", "netDevices", "intelRdt", "personality", "memoryPolicy"},
    "linux.namespaces[]": {"type", "path"},
    "linux.devices[]": {"path", "type", "major", "minor", "fileMode", "uid", "gid"},
    "linux.resources": _RESOURCES,
    "linux.resources.devices[]": {"allow", "type", "major", "minor", "access"},
    "linux.resources.memory": {"limit", "reservation", "swap", "kernel", "kernelTCP",
                               "swappiness", "disableOOMKiller", "useHierarchy",
                               "checkBeforeUpdate"},
    "linux.resources.cpu": {"shares", "quota", "burst", "period", "realtimeRuntime",
                            "realtimePeriod", "cpus", "mems", "idle"},
    "linux.resources.pids": {"limit"},
}
HOOKS = ("prestart", "createRuntime", "poststart", "poststop")
NAMESPACES = ("pid", "network", "ipc", "uts", "mount", "cgroup", "user")
_MOUNT_TYPES = ("bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", None)
_CAPABILITY_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def _refuse(what, why="is not supported by diyc"):
    raise InvalidArgument(f"config.json: {what} {why}")


def _check_keys(obj, allowed, where, spec_object=None):
    """Refuse what the spec defines for this object and diyc does not honour."""
    if not isinstance(obj, dict):
        _refuse(where, "must be an object")
    defined = _SPEC_FIELDS.get(where if spec_object is None else spec_object, ())
    for key, value in obj.items():
        if key not in allowed and key in defined and not _empty(value):
            _refuse(f"{where}.{key}" if where else key)


def _has_mount_namespace(spec):
    return any(ns.get("type") == "mount"
               for ns in (spec.get("linux") or {}).get("namespaces") or ())


def release_host_mounts(ctr):
    """A container without a mount namespace made its mounts in ours, all
    below its rootfs bound onto itself (see host_mount_steps in
    _native/spawn.c): detach that mount and everything under it.  Called
    once, when the container is deleted."""
    if _has_mount_namespace(ctr.record["spec"]):
        return
    from .. import _native
    try:
        _native.umount_detach(ctr.record["spec"]["root"]["path"])
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):  # not mounted: never started
            raise


def _empty(value):
    return value in (None, "", [], {}, 0, False)


def check_id(cid):
    if not cid or len(cid) > 1024 or not (cid[0].isalnum() and cid.isascii()) or \
            not all(c.isalnum() or c in "_.+-" for c in cid):
        raise InvalidArgument(f"invalid container id {cid!r}: use [a-zA-Z0-9][a-zA-Z0-9_.+-]*")
    return cid


def load_bundle(bundle):
    """-> (absolute bundle dir, validated spec with an absolute root.path)."""
    bundle = os.path.abspath(bundle or ".")
    try:
        with open(f"{bundle}/config.json", "rb") as f:
            spec = _json.loads(f.read())
    except FileNotFoundError:
        raise InvalidArgument(f"no config.json in bundle {bundle}") from None
    except ValueError as e:
        raise InvalidArgument(f"{bundle}/config.json: {e}") from None
    validate(spec)
    root = spec["root"]["path"]
    root = os.path.normpath(root if root.startswith("/") else f"{bundle}/{root}")
    if not os.path.isdir(root):
        raise InvalidArgument(f"config.json: root.path {root} is not a directory")
    if root == "/" and not _has_mount_namespace(spec):
        _refuse("root.path /", "needs a mount namespace (the container's mounts would cover "
                "the host's)")
    spec["root"]["path"] = root
    return bundle, spec


def validate(spec):
    """Refuse, naming the field, whatever diyc would not honour."""
    _check_keys(spec, _TOP, "")
    from ..config import check_text, check_text_list, nul_field
    where = nul_field(spec)
    if where:
        _refuse(where, "contains a NUL byte")
    version = spec.get("ociVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        _refuse(f"ociVersion {version!r}", "is not a runtime-spec 1.x version")
    process = spec.get("process")
    if process is None:
        _refuse("process", "is required")
    _check_keys(process, _PROCESS, "process")
    args = process.get("args")
    if not args or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        _refuse("process.args", "must be a non-empty list of strings")
    check_text_list(process.get("env") or [], "config.json: process.env")
    for value, field in ((process.get("cwd", "/"), "process.cwd"), (spec.get("hostname"), "hostname")):
        if value is not None:
            check_text(value, f"config.json: {field}")
    if not process.get("cwd", "/").startswith("/"):
        _refuse("process.cwd", "must be an absolute path")
    for field in ("apparmorProfile", "selinuxLabel"):
        if not _empty(process.get(field)):
            _refuse(f"process.{field}", "is not supported (no LSM support in diyc)")
    user = process.get("user") or {}
    _check_keys(user, _USER, "process.user")
    if user.get("umask") is not None and not (isinstance(user["umask"], int) and 0 <= user["umask"] <= 0o777):
        _refuse("process.user.umask", "must be an integer between 0 and 0777")
    if not _empty(user.get("username")):
        _refuse("process.user.username", "is for Windows")
    caps = process.get("capabilities")
    if caps is not None:
        _check_keys(caps, set(_CAPABILITY_SETS), "process.capabilities")
        from ..security import capability_masks, is_capability
        unknown = sorted({n for names in caps.values() if isinstance(names, list)
                          for n in names if isinstance(n, str) and not is_capability(n)})
        if unknown:
            # As runc and crun do: a config written for a newer kernel (or
            # runtime) still runs here, without what this one cannot grant.
            import sys
            print(f"diyc-runc: ignoring unknown or unavailable capabilities: {', '.join(unknown)}",
                  file=sys.stderr)
            for key, names in caps.items():
                if isinstance(names, list):
                    caps[key] = [n for n in names if n not in unknown]
        capability_masks(caps)  # wrong types fail here, before anything exists
    from ..security import RLIMITS
    for r in process.get("rlimits") or ():
        if r.get("type", "").removeprefix("RLIMIT_").lower() not in RLIMITS:
            _refuse(f"process.rlimits type {r.get('type')!r}", "is not a Linux rlimit")
        from ..numbers import UINT64_MAX, integer
        for key in ("soft", "hard"):
            if not isinstance(r.get(key), int):
                _refuse(f"process.rlimits[{r['type']}].{key}", "must be an integer")
            integer(r[key], f"config.json: process.rlimits[{r['type']}].{key}", 0, UINT64_MAX)
    if not isinstance(spec.get("root"), dict) or not isinstance(spec["root"].get("path"), str):
        _refuse("root.path", "is required")
    _check_keys(spec["root"], {"path", "readonly"}, "root")
    for m in spec.get("mounts") or ():
        _check_keys(m, {"destination", "type", "source", "options", "uidMappings", "gidMappings"},
                    "mounts[]")
        if m.get("type") not in _MOUNT_TYPES:
            _refuse(f"mount type {m.get('type')!r} (at {m.get('destination')})")
        if m.get("uidMappings") or m.get("gidMappings"):
            _refuse(f"mounts[{m.get('destination')}].uidMappings/gidMappings (idmapped mounts)")
        if not str(m.get("destination", "")).startswith("/"):
            _refuse(f"mount destination {m.get('destination')!r}", "must be absolute")
    _validate_linux(spec.get("linux") or {})
    hooks = spec.get("hooks") or {}
    _check_keys(hooks, set(HOOKS) | {"createContainer", "startContainer"}, "hooks")
    for kind in HOOKS + ("createContainer", "startContainer"):
        for h in hooks.get(kind) or ():
            _check_keys(h, {"path", "args", "env", "timeout"}, f"hooks.{kind}[]", "hooks[]")
            if not str(h.get("path", "")).startswith("/"):
                _refuse(f"hooks.{kind}[].path {h.get('path')!r}", "must be absolute")
    annotations = spec.get("annotations") or {}
    if annotations.get(SECCOMP_ANNOTATION) not in (None, "default", "unconfined"):
        _refuse(f"annotation {SECCOMP_ANNOTATION}={annotations[SECCOMP_ANNOTATION]!r}",
                "must be default or unconfined")


def _validate_linux(linux):
    _check_keys(linux, _LINUX, "linux")
    has_userns = any(ns.get("type") == "user" and not ns.get("path")
                     for ns in linux.get("namespaces") or ())
    if bool(linux.get("uidMappings")) != has_userns or bool(linux.get("gidMappings")) != has_userns:
        _refuse("linux.uidMappings/gidMappings", "go with a user namespace, and it needs both")
    for m in (linux.get("uidMappings") or []) + (linux.get("gidMappings") or []):
        if set(m) != {"containerID", "hostID", "size"} or not all(
                isinstance(v, int) and v >= 0 for v in m.values()):
            _refuse("linux.uidMappings/gidMappings entries", "need containerID, hostID and size")
    if not _empty(linux.get("mountLabel")):
        _refuse("linux.mountLabel", "is not supported (no SELinux support in diyc)")
    if linux.get("seccomp") is not None:
        from ..seccomp import resolve
        resolve(linux["seccomp"], frozenset())  # refuses unknown actions and operators
    if linux.get("rootfsPropagation") not in (None, "", "private", "rprivate", "slave", "rslave",
                                              "shared", "rshared", "unbindable", "runbindable"):
        _refuse(f"linux.rootfsPropagation {linux['rootfsPropagation']!r}", "is not a propagation")
    types = []
    for ns in linux.get("namespaces") or ():
        _check_keys(ns, {"type", "path"}, "linux.namespaces[]")
        if ns.get("type") not in NAMESPACES:
            _refuse(f"namespace type {ns.get('type')!r}")
        if ns.get("path"):
            if ns["type"] == "user":
                _refuse(f"linux.namespaces[{ns['type']}].path", "is not supported (joining an "
                        "existing user namespace)")
            if not os.path.exists(ns["path"]):
                _refuse(f"linux.namespaces[{ns['type']}].path {ns['path']!r}", "does not exist")
        if ns["type"] in types:
            _refuse(f"namespace type {ns['type']!r}", "is listed twice")
        types.append(ns["type"])
    res = linux.get("resources") or {}
    _check_keys(res, _RESOURCES, "linux.resources")
    # what the host's cgroups cannot apply is refused when they are set up
    # (diyc/cgroups.py), naming the field and the reason
    if not _empty(res.get("rdma")):
        _refuse("linux.resources.rdma")
    _check_keys(res.get("memory") or {}, _MEMORY, "linux.resources.memory")
    _check_keys(res.get("cpu") or {}, _CPU, "linux.resources.cpu")
    _check_keys(res.get("pids") or {}, {"limit"}, "linux.resources.pids")
    for rule in res.get("devices") or ():
        _check_keys(rule, {"allow", "type", "major", "minor", "access"}, "linux.resources.devices[]")
    for d in linux.get("devices") or ():
        _check_keys(d, {"path", "type", "major", "minor", "fileMode", "uid", "gid"}, "linux.devices[]")
        if d.get("uid") or d.get("gid"):
            _refuse(f"linux.devices[{d.get('path')}].uid/gid", "other than 0 are not supported")
    from ..security import parse_sysctl
    network = "none" if "network" in types else "host"
    for key, value in (linux.get("sysctl") or {}).items():
        parse_sysctl(f"{key}={value}", network)


# -- the container record ----------------------------------------------------

# What runc allows whatever linux.resources.devices says: the devices every
# container gets (null, zero, full, random, urandom, tty, console, ptmx, pts).
_DEFAULT_DEVICE_RULES = [
    {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, None))
]


def _engine_spec(spec, cgroup):
    """The spec the engine runs: the bundle's, with the few translations
    diyc needs (cgroup mounts as binds of the container's own cgroups, the
    default device rules, `defaults` dropped from mount options)."""
    spec = _json.loads(_json.dumps(spec))  # a deep copy; the bundle's stays as given
    linux = spec.setdefault("linux", {})
    mounts = []
    for m in spec.get("mounts") or ():
        options = [o for o in m.get("options") or () if o != "defaults"]
        m = dict(m, options=options)
        if m.get("type") in ("cgroup", "cgroup2"):
            mounts += _cgroup_mounts(m, cgroup)
        else:
            mounts.append(m)
    spec["mounts"] = mounts
    res = linux.setdefault("resources", {})
    # (a FIFO is no device to the devices cgroup: no rule for it)
    res["devices"] = list(res.get("devices") or ()) + _DEFAULT_DEVICE_RULES + [
        {"allow": True, "type": "c" if d["type"] == "u" else d["type"], "major": d.get("major"),
         "minor": d.get("minor"), "access": "rwm"}
        for d in linux.get("devices") or () if d.get("type") in ("c", "u", "b")]
    caps = spec["process"].get("capabilities")
    if caps and caps.get("ambient"):
        # The kernel raises an ambient capability only if it is permitted and
        # inheritable; `runc spec` lists ambient ones with no inheritable set,
        # and runc and crun skip those that cannot be raised.  So do we.
        allowed = set(caps.get("inheritable") or ()) & set(caps.get("permitted") or ())
        caps["ambient"] = [c for c in caps["ambient"] if c in allowed]
    linux.setdefault("namespaces", [])
    spec.setdefault("annotations", {})
    spec["annotations"].setdefault(SECCOMP_ANNOTATION, "unconfined")
    return spec


def _cgroup_mounts(m, cgroup):
    """A `cgroup` mount: a tmpfs with the container's own cgroup of each
    controller bound in, as runc does on a v1 host; on v2 the one cgroup."""
    ro = "ro" in m["options"]
    flags = ["nosuid", "nodev", "noexec"] + (["ro"] if ro else [])
    dest = m["destination"].rstrip("/")
    if cgroup.version == 2:
        return [{"destination": dest, "type": "bind", "source": cgroup.path,
                 "options": ["rbind"] + flags}]
    out = [{"destination": dest, "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "mode=755", "size=64k"]}]
    for controller, path in cgroup.paths.items():
        out.append({"destination": f"{dest}/{controller}", "type": "bind", "source": path,
                    "options": ["bind"] + flags})
    return out


def _open_cgroup(cid, linux):
    path = linux.get("cgroupsPath")
    every = cgroups.V1_ALL_CONTROLLERS
    if not path:
        return cgroups.open_cgroup(f"diyc-{cid}", controllers=every)
    if ":" in path:  # systemd's slice:prefix:name; cgroupfs is used (--systemd-cgroup)
        slice_, prefix, name = (path.split(":") + ["", ""])[:3]
        parent = "/" + "/".join(_slice_dirs(slice_ or "system.slice"))
        return cgroups.open_cgroup(f"{prefix}-{name}.scope" if prefix else name, parent,
                                   controllers=every)
    parent, _, name = path.rstrip("/").rpartition("/")
    if not name or ".." in path.split("/"):
        raise InvalidArgument(f"config.json: invalid linux.cgroupsPath {path!r}")
    return cgroups.open_cgroup(name, parent or ("/" if path.startswith("/") else None),
                               controllers=every)


def _slice_dirs(slice_):
    """systemd's nesting: a-b-c.slice lives in a.slice/a-b.slice/a-b-c.slice."""
    parts = slice_.removesuffix(".slice").split("-")
    return ["-".join(parts[:i]) + ".slice" for i in range(1, len(parts) + 1)] if slice_ != "-.slice" else []


class OciContainer(Container):
    """A Container run for an OCI bundle (runc's model: no supervisor; the
    caller's subreaper reaps the init)."""

    console_socket = None


def create(root, cid, bundle, spec, *, auto_remove=False):
    """Record container `cid` (state created, nothing started yet)."""
    check_id(cid)
    root = root if isinstance(root, Root) else Root(root)
    root.ensure()
    key = os.urandom(32).hex()
    linux = spec.get("linux") or {}
    cgroup = _open_cgroup(key, linux)
    network = "none" if any(ns["type"] == "network" for ns in linux.get("namespaces") or ()) \
        else "host"
    record = {
        "id": key,
        "name": cid,
        "image": None,
        "image_id": None,
        "layers": [],
        "rootfs": {"bind": spec["root"]["path"]},
        "created": now(),
        "auto_remove": auto_remove,
        "restart": {"name": "no", "max_retries": 0},
        "log": {"max_size": 0},
        "network": network,
        "network_settings": None,
        "cgroup": cgroup_fields(cgroup),
        "spec": _engine_spec(spec, cgroup),
        "oci": {"bundle": bundle, "annotations": spec.get("annotations") or {},
                "hooks": spec.get("hooks") or {}},
        "state": creator_fields(),
    }
    cgroup.make_parents()  # a cgroupsPath may name parents nobody made yet
    write_new(root, record, taken=f"container {cid} already exists")
    return OciContainer(root, record)


def load(root, cid):
    """The container with OCI id `cid` (exactly: no prefix matching)."""
    root = root if isinstance(root, Root) else Root(root)
    try:
        key = os.readlink(f"{root.names}/{cid}")
        with open(f"{root.container_dir(key)}/container.json", "rb") as f:
            return OciContainer(root, _json.loads(f.read()))
    except (FileNotFoundError, NotADirectoryError):
        raise ContainerNotFound(f"container {cid} does not exist") from None


def list_ids(root):
    try:
        return sorted(os.listdir(Root(root).names if not isinstance(root, Root) else root.names))
    except FileNotFoundError:
        return []


def status(ctr):
    s = ctr.status
    return s if s in ("created", "running") else "stopped"


def state(ctr):
    """The runtime-spec state of a container."""
    st = status(ctr)
    oci = ctr.record.get("oci") or {}
    out = {"ociVersion": OCI_VERSION, "id": ctr.name, "status": st,
           "pid": ctr.record["state"].get("pid") or 0 if st != "stopped" else 0,
           "bundle": oci.get("bundle", ""), "annotations": oci.get("annotations") or {}}
    return out


def started_state(ctr):
    """The state the poststart hooks get: the container as `start` left it,
    running with its pid, even if its program has ended already."""
    return state(ctr) | {"status": "running", "pid": ctr.record["state"].get("pid") or 0}


def start(ctr):
    """`start`: the prestart hooks (the spec's timing: once `start` is
    called, in the runtime's namespaces), then the init held before execve
    goes on.  A failing prestart hook stops and deletes the container, as
    the spec's lifecycle says."""
    _check_startable(ctr)
    try:
        run_hooks(ctr, "prestart", state(ctr))
    except DiycError:
        discard(ctr)
        raise
    start_held(ctr)


def _check_startable(ctr):
    st = status(ctr)
    if st == "stopped":
        raise Conflict("cannot start a container that has stopped")
    if st != "created":
        raise Conflict("cannot start an already running container")


def start_held(ctr):
    """Let the init blocked before execve go on.  Under the container's
    lock, so a supervisor that reaps a quick exit records the end only
    after we recorded the start."""
    with ctr.lock():
        ctr.reload()
        _check_startable(ctr)
        ctr.exec_held()


def discard(ctr):
    """Undo a create, or a start whose prestart hook failed (no poststop
    hooks: the program never ran)."""
    try:
        ctr.kill(9)
        with ctr.lock():
            ctr.remove_under_lock()
        release_host_mounts(ctr)
    except (DiycError, OSError):
        pass


def kill(ctr, sig, all_processes=False):
    """Signal a created or running container.  runc's words for a stopped
    one: containerd's shim takes "container not running" as already gone."""
    if status(ctr) == "stopped":
        raise Conflict("container not running")
    if all_processes:
        for pid in ctr.control_group().pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return
    try:
        ctr.kill(sig)
    except ProcessLookupError:  # it ended meanwhile
        raise Conflict("container not running") from None


def delete(ctr, force=False):
    """Remove a stopped container; a created or running one only with
    force, which kills it first (the spec: deleting a container that is not
    stopped is an error).  Then the poststop hooks."""
    st = status(ctr)
    if st != "stopped" and not force:
        raise Conflict(f"cannot delete container {ctr.name} that is not stopped: {st}")
    try:
        ctr.reload()
    except FileNotFoundError:
        return
    ctr.remove(force=True)
    release_host_mounts(ctr)
    run_hooks(ctr, "poststop", state(ctr) | {"status": "stopped", "pid": 0}, fatal=False)


def update(ctr, resources):
    """`update`: new linux.resources (memory, cpu, pids) for a created or
    running container, written to its cgroup and kept in its record."""
    if not isinstance(resources, dict):
        raise InvalidArgument("update: the resources must be a JSON object")
    resources = {field: {k: v for k, v in values.items() if not _empty(v)}
                 if isinstance(values, dict) else values for field, values in resources.items()}
    for field, allowed in (("memory", _MEMORY), ("cpu", _CPU), ("pids", {"limit"})):
        _check_keys(resources.get(field) or {}, allowed, f"linux.resources.{field}")
    for field in resources:  # devices are not updated (as with runc): clients send them all
        if field not in ("memory", "cpu", "pids", "devices") and not _empty(resources[field]):
            raise InvalidArgument(f"update: linux.resources.{field} is not supported by diyc")
    with ctr.lock():
        ctr.reload()
        if status(ctr) == "stopped":
            raise Conflict("container not running")
        kept = ctr.record["spec"]["linux"].setdefault("resources", {})
        changed = {}
        for field in ("memory", "cpu", "pids"):
            values = resources.get(field)
            if values:
                changed[field] = values
                kept[field] = dict(kept.get(field) or {}, **values)
        cgroup = ctr.control_group()
        try:
            swap = (changed.get("memory") or {}).get("swap")
            if swap is not None and cgroup.version == 1:
                # v1 keeps memory+swap >= memory: a raised pair needs the
                # swap first, a lowered one the limit first (set_limits' order)
                try:
                    cgroup.set_limits({"memory": {"swap": swap}})
                except (OSError, DiycError):  # lowered: below the current limit
                    pass
            cgroup.set_limits(changed)
        except OSError as e:
            raise DiycError(f"update: {e.strerror}") from None
        ctr.save()


# -- hooks --------------------------------------------------------------------

def run_hooks(ctr, kind, oci_state, fatal=True):
    """Run the bundle's `kind` hooks with the state JSON on stdin.  A
    failing prestart/createRuntime hook fails the create; poststart and
    poststop failures are only reported (the spec's rule)."""
    hooks = ((ctr.record.get("oci") or {}).get("hooks") or {}).get(kind) or ()
    if not hooks:
        return
    import subprocess
    data = _json.dumps(oci_state).encode()
    for h in hooks:
        args = h.get("args") or [h["path"]]
        env = dict(e.partition("=")[::2] for e in h.get("env") or ())
        try:
            proc = subprocess.run(args, executable=h["path"], input=data, env=env,
                                  capture_output=True, timeout=h.get("timeout"))
            error = proc.stderr.decode(errors="replace").strip() if proc.returncode else None
            if proc.returncode:
                error = f"exited with {proc.returncode}" + (f": {error}" if error else "")
        except subprocess.TimeoutExpired:
            error = f"timed out after {h.get('timeout')}s"
        except OSError as e:
            error = e.strerror
        if error:
            message = f"{kind} hook {h['path']} {error}"
            if fatal:
                raise DiycError(message)
            import sys
            print(f"diyc-runc: warning: {message}", file=sys.stderr)


# -- exec ---------------------------------------------------------------------

def exec_process(ctr, process, stdio=(0, 1, 2), detach=False, console_fd=None):
    """Run an OCI `process` in the running container `ctr` (the engine's
    exec, after checking the process).  With process.terminal, the pty
    master goes to `console_fd`.  -> (pid, exit code or None)."""
    from .. import exec as engine_exec
    _check_keys(process, _PROCESS, "process")
    from ..config import check_text_list, nul_field
    where = nul_field(process, "process")
    if where:
        _refuse(where, "contains a NUL byte")
    if not process.get("args"):
        _refuse("process.args", "must be a non-empty list of strings")
    check_text_list(process["args"], "process.args")
    check_text_list(process.get("env") or [], "process.env")
    if process.get("terminal") and console_fd is None:
        _refuse("exec with process.terminal", "needs --console-socket")
    if status(ctr) != "running":
        raise Conflict(f"container {ctr.name} is not running")
    return engine_exec.exec_process(ctr, dict(process, cwd=process.get("cwd") or "/"), stdio,
                                    detach=detach, console_fd=console_fd)
