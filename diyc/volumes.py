"""Volumes: `-v HOST:CONTAINER[:ro]` bind mounts and named volumes
(`-v NAME:CONTAINER`), which live in volumes/<name>/_data under the diyc
root and are created on first use, as in docker; and docker's long form,
`--mount type=bind|volume|tmpfs,source=,target=,...`.

Anonymous volumes (`-v /path`, `--mount type=volume,target=/path`, an
image's VOLUME): a volume named by 64 random hex digits, marked by a file
`anonymous` beside its _data; `rm -v`, the end of a `--rm` container and
`volume prune` (without -a) remove them, as docker's.  A volume made for a
container (anonymous, or named and new) gets the image's files at its
mount point, as docker's (the mount's "fill": create.fill_new_volumes)."""

import os

from .config import check_name
from .errors import Conflict, InvalidArgument, NotFound
from .state import remove_tree


def _volumes_dir(root):
    return f"{root.path}/volumes"


ANONYMOUS_MARK = "anonymous"


def create_volume(root, name):
    check_name(name, "volume", max_length=255)  # a directory's name
    data = volume_path(root, name)
    os.makedirs(data, exist_ok=True)
    return data


def anonymous_volume(root, dest, readonly=False):
    """A new anonymous volume mounted at `dest` -> its OCI mount."""
    name = os.urandom(32).hex()
    data = create_volume(root, name)
    with open(f"{_volumes_dir(root)}/{name}/{ANONYMOUS_MARK}", "x"):
        pass
    mount = _bind(data, dest, readonly, None, name)
    mount.update(anonymous=True, fill=True)
    return mount


def _named_volume(root, name, dest, readonly, propagation=None):
    """Volume `name` (made if new: then marked "fill") mounted at `dest`.
    New is whoever makes its directory: of two creates naming a new volume
    at once, one fills it (the other's copy would overwrite what the
    first container wrote meanwhile)."""
    check_name(name, "volume", max_length=255)
    os.makedirs(_volumes_dir(root), exist_ok=True)
    try:
        os.mkdir(f"{_volumes_dir(root)}/{name}")
        new = True
    except FileExistsError:
        new = False
    mount = _bind(create_volume(root, name), dest, readonly, propagation, name)
    if new:
        mount["fill"] = True
    return mount


def is_anonymous(root, name):
    return os.path.exists(f"{_volumes_dir(root)}/{name}/{ANONYMOUS_MARK}")


def remove_anonymous(root, mounts, but=None):
    """Remove the anonymous volumes among `mounts` (a container's spec
    mounts, at its removal or a failed creation) that no container but
    the one of id `but` mounts."""
    anonymous = [m["volume"] for m in mounts if m.get("anonymous") and m.get("volume")]
    users = _in_use(root, but) if anonymous else ()
    for name in anonymous:
        if name not in users:
            remove_tree(f"{_volumes_dir(root)}/{name}")


def list_volumes(root):
    try:
        return sorted(os.listdir(_volumes_dir(root)))
    except FileNotFoundError:
        return []


def volume_path(root, name):
    """The volume's data directory (its Mountpoint)."""
    return f"{_volumes_dir(root)}/{name}/_data"


def inspect_volume(root, name):
    """docker's `volume inspect` shape: Name, Driver, Mountpoint, CreatedAt,
    Labels, Scope, Options."""
    if name not in list_volumes(root):
        raise NotFound(f"no such volume: {name}")
    import time
    created = os.stat(f"{_volumes_dir(root)}/{name}").st_mtime
    return {"CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)), "Driver": "local",
            "Labels": None, "Mountpoint": volume_path(root, name), "Name": name, "Options": None,
            "Scope": "local"}


def remove_volume(root, name):
    """`volume rm`: refused while a container (in any state) mounts it."""
    with _no_creation(root):
        if name not in list_volumes(root):
            raise NotFound(f"no such volume: {name}")
        if name in _in_use(root):
            raise Conflict(f"volume {name} is in use by a container")
        remove_tree(f"{_volumes_dir(root)}/{name}")


def prune_volumes(root, anonymous_only=False):
    """Remove every volume no container mounts (anonymous_only: only the
    anonymous ones, as docker 23+'s prune without -a); -> their names."""
    removed = []
    with _no_creation(root):
        users = _in_use(root)
        for name in list_volumes(root):
            if name not in users and (is_anonymous(root, name) or not anonymous_only):
                remove_tree(f"{_volumes_dir(root)}/{name}")
                removed.append(name)
    return removed


def _no_creation(root):
    """A `run -v NAME:...` makes its volume before its record exists: while
    a creation is under way, its volume is not yet seen in use.  Creations
    hold ImageStore.using() until their record exists: we wait for them."""
    from .images.store import ImageStore
    return ImageStore(root).no_creation()


def _in_use(root, but=None):
    """The volumes a container (of any state; but the one of id `but`) mounts."""
    from .record import ContainerRecord
    return {m.get("volume") for c in ContainerRecord.list(root) if c.id != but
            for m in c.record["spec"].get("mounts", ())}


_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


def _host_source(source, what):
    """A bind mount's host path: absolute, or relative to our cwd when it
    starts with `.` (`-v ./data:/data`, as docker 23+)."""
    if source in (".", "..") or source.startswith(("./", "../")):
        return os.path.abspath(source)
    if ".." in source.split("/"):
        raise InvalidArgument(f"invalid {what} source {source!r}")
    return source


def parse_volume(root, value):
    """-v [SOURCE:]DEST[:OPTIONS] -> an OCI bind mount (creating a named
    volume, or a missing host directory, as docker does; no SOURCE: an
    anonymous volume).  OPTIONS: ro or rw and a propagation (rslave,
    shared, ...), comma-separated.  root=None checks `value` only."""
    parts = value.split(":")
    if len(parts) == 1 and value.startswith("/"):
        _check_destination(value, "volume")
        return anonymous_volume(root, value) if root is not None else None
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume {value!r}: expected [SOURCE:]DEST[:ro]")
    source, dest = parts[0], parts[1]
    mode, propagation = None, None
    for option in parts[2].split(",") if len(parts) == 3 else ():
        if option in ("ro", "rw") and mode is None:  # at most one of each kind, as docker's
            mode = option
        elif option in _PROPAGATIONS and propagation is None:
            propagation = option
        else:
            raise InvalidArgument(f"invalid volume mode {option!r} in {value!r}: at most one of ro "
                                  f"or rw, and one propagation ({', '.join(_PROPAGATIONS)})")
    _check_destination(dest, "volume")
    if root is None:  # the checks only: nothing made
        _host_source(source, "volume") if source.startswith(("/", ".")) else \
            check_name(source, "volume", max_length=255)
        return None
    if not source.startswith(("/", ".")):
        return _named_volume(root, source, dest, mode == "ro", propagation)
    source = _host_source(source, "volume")
    if not os.path.exists(source):
        os.makedirs(source, exist_ok=True)
    return _bind(source, dest, mode == "ro", propagation, None)


def _check_destination(dest, what):
    if not dest.startswith("/") or ".." in dest.split("/"):
        raise InvalidArgument(f"invalid {what} destination {dest!r}: an absolute path without '..'")


def _bind(source, dest, readonly, propagation, volume):
    options = ["rbind", "ro" if readonly else "rw"] + ([propagation] if propagation else [])
    mount = {"destination": dest, "type": "bind", "source": source, "options": options}
    if volume:
        mount["volume"] = volume  # not OCI: lets `volume rm` see who uses it
    return mount


# --mount's keys, by docker's names and aliases
_MOUNT_KEYS = {"type": "type", "source": "source", "src": "source", "target": "target",
               "destination": "target", "dst": "target", "readonly": "readonly", "ro": "readonly",
               "bind-propagation": "bind-propagation", "tmpfs-size": "tmpfs-size",
               "tmpfs-mode": "tmpfs-mode", "volume-nocopy": "volume-nocopy",
               "consistency": "consistency"}


def parse_mount_fields(value):
    """docker's --mount CSV (`type=bind,source=/a,target=/b,readonly`) ->
    {key: value}, keys by their canonical names; checks only the syntax."""
    fields = {}
    for item in value.split(","):
        key, eq, val = item.partition("=")
        name = _MOUNT_KEYS.get(key.strip().lower())
        if name is None:
            raise InvalidArgument(f"invalid --mount {value!r}: unknown field {key!r}")
        if not eq and name not in ("readonly", "volume-nocopy"):
            raise InvalidArgument(f"invalid --mount {value!r}: {key} needs a value ({key}=...)")
        fields[name] = val if eq else "true"
    for flag in ("readonly", "volume-nocopy"):
        if fields.get(flag, "true").lower() not in ("true", "1", "false", "0"):
            raise InvalidArgument(f"invalid --mount {value!r}: {flag} is true or false")
    return fields


def parse_mount(root, value):
    """--mount type=bind|volume|tmpfs,source=,target=[,readonly]
    [,bind-propagation=][,tmpfs-size=][,tmpfs-mode=] -> an OCI mount.
    Unlike -v, a bind source must exist (as docker's --mount).  root=None
    checks `value` only (a volume is made on first use: not yet)."""
    fields = parse_mount_fields(value)
    kind, target = fields.get("type", "volume"), fields.get("target")
    if not target:
        raise InvalidArgument(f"invalid --mount {value!r}: target= is required")
    _check_destination(target, "--mount")
    readonly = fields.get("readonly", "false").lower() in ("true", "1")
    misplaced = [k for k in fields if k.startswith(("tmpfs-", "bind-", "volume-")) and
                 not k.startswith(kind + "-")]
    if misplaced:
        raise InvalidArgument(f"invalid --mount {value!r}: {misplaced[0]} is not for type={kind}")
    if kind == "tmpfs":
        if "source" in fields:
            raise InvalidArgument(f"invalid --mount {value!r}: a tmpfs has no source")
        from .config import parse_tmpfs
        options = [f"{k[6:]}={fields[k]}" for k in ("tmpfs-size", "tmpfs-mode") if k in fields]
        mount = parse_tmpfs(":".join([target, ",".join(options)]))
        if readonly:
            mount["options"].append("ro")
        return mount
    source = fields.get("source")
    if not source and kind == "volume":  # an anonymous volume
        return anonymous_volume(root, target, readonly) if root is not None else None
    if not source:
        raise InvalidArgument(f"invalid --mount {value!r}: source= is required for type={kind}")
    if kind == "volume":
        if root is None:
            check_name(source, "volume", max_length=255)
            return None
        return _named_volume(root, source, target, readonly)
    if kind != "bind":
        raise InvalidArgument(f"invalid --mount {value!r}: type must be bind, volume or tmpfs")
    propagation = fields.get("bind-propagation")
    if propagation is not None and propagation not in _PROPAGATIONS:
        raise InvalidArgument(f"invalid --mount {value!r}: bind-propagation is one of "
                              f"{', '.join(_PROPAGATIONS)}")
    source = _host_source(source, "--mount")
    if not source.startswith("/"):
        raise InvalidArgument(f"invalid --mount {value!r}: a bind source is an absolute path")
    if not os.path.exists(source):
        raise InvalidArgument(f"invalid --mount {value!r}: bind source path does not exist: {source}")
    return _bind(source, target, readonly, propagation, None)
