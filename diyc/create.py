"""From Container.create's options to what a container is made of: the
steps of `config` in runtime.py's start story, less the record's writing
(record.write_new).

    CreateOptions   the options (docker run's flags, by name), defaults
                    filled in
    validate        every check that needs no image
    resolve_image   the image record, its run config, its layer dirs
    build_spec      the OCI spec: process, user, environment, mounts, user
                    namespace, seccomp
    write_record    reserve the name, write the record with the network's
                    /etc files beside it
"""

import os

from . import config
from .errors import InvalidArgument
from .images.store import ImageStore
from .record import write_new
from .rootfs import SECCOMP_ANNOTATION


# Container.create's keyword options, with their defaults: docker run's
# flags, by name (cli/run.py's RUN_OPTIONS maps the one to the other).
CREATE_OPTIONS = {
    "name": None, "hostname": None, "env": (), "workdir": None, "user": None,
    "entrypoint": None, "memory": None, "memory_swap": None, "cpus": None, "pids_limit": None,
    "network": "none", "ip": None, "publish": (), "auto_remove": False, "rm_tmpfs_size": None,
    "cgroup_parent": None, "read_only": False, "privileged": False, "cap_add": (), "cap_drop": (),
    "security_opt": (), "ulimits": (), "sysctls": (), "oom_score_adj": None, "devices": (),
    "tmpfs": (), "restart": None, "log_opts": (), "volumes": (), "init": False, "tty": False,
    "userns": None, "healthcheck": None,
}
# the options whose types and characters config.check_run_arguments checks
CHECKED_OPTIONS = ("name", "hostname", "env", "workdir", "user", "entrypoint", "network", "ip",
                   "publish", "cgroup_parent", "cap_add", "cap_drop", "security_opt", "ulimits",
                   "sysctls", "devices", "tmpfs", "restart", "log_opts", "volumes", "userns")


class CreateOptions:
    """Container.create's options as attributes, defaults filled in; then
    what validate() derives from them (netplan, resources, security,
    mounts, restart_policy, scratch_size, log)."""

    def __init__(self, options):
        unknown = sorted(options.keys() - CREATE_OPTIONS.keys())
        if unknown:
            raise TypeError(f"create() got an unexpected keyword argument {unknown[0]!r}")
        self.__dict__.update(CREATE_OPTIONS)
        self.__dict__.update(options)


def validate(root, o):
    """Every check that needs no image, in the order the flags' errors are
    reported; the values they yield go onto `o`."""
    o.netplan = None
    if o.network not in ("none", "host"):
        from .net import network as networking
        o.netplan = networking.plan(root, o.network, ip=o.ip, publish=o.publish)
    elif o.ip is not None or o.publish:
        raise InvalidArgument(f"--ip and -p/--publish need a bridge network, not --network {o.network}")
    if o.userns not in (None, "", "host", "auto"):
        raise InvalidArgument(f"invalid --userns {o.userns!r}: expected auto or host")
    mem = config.parse_memory(o.memory) if o.memory is not None else None
    swap = config.parse_memory_swap(o.memory_swap, mem) if o.memory_swap is not None else None
    o.resources = config.resources(
        memory=mem, memory_swap=swap,
        cpus=config.parse_cpus(o.cpus) if o.cpus is not None else None,
        pids_limit=config.parse_pids_limit(o.pids_limit) if o.pids_limit is not None else None)
    if o.name is not None:
        config.check_name(o.name)
    if o.hostname is not None:
        config.check_hostname(o.hostname)
    if o.workdir is not None and not o.workdir.startswith("/"):
        raise InvalidArgument(f"invalid working directory {o.workdir!r}: must be absolute")
    from . import security
    o.security = security.SecurityOptions(o.privileged, o.cap_add, o.cap_drop, o.security_opt,
                                          o.ulimits, o.sysctls, o.oom_score_adj, o.devices, o.network)
    o.resources["devices"] = o.security.device_rules
    o.mounts = [config.parse_tmpfs(t) for t in o.tmpfs or ()]
    from .logs import parse_log_opts
    o.restart_policy = config.parse_restart_policy(o.restart)
    if o.auto_remove and o.restart_policy["name"] != "no":
        raise InvalidArgument("--restart and --rm cannot be combined")
    o.scratch_size = rm_tmpfs_size_bytes(o.rm_tmpfs_size, o.auto_remove)
    o.log = parse_log_opts(o.log_opts)


def resolve_image(root, image):
    """`image`: a reference, or an image record (a build step's layers and
    config, which need no name in the store) -> (record, run config, layer
    dirs)."""
    store = ImageStore(root.ensure())
    image_record = image if isinstance(image, dict) else store.get(image)
    return image_record, config.image_run_config(image_record["config"]), store.layer_dirs(image_record)


def healthcheck(o, image_record):
    """The container's health check (health.resolve: the option over the
    image's HEALTHCHECK), or None; health is imported only when there is one."""
    image_config = image_record.get("config") or {}
    if o.healthcheck is None and not (image_config.get("config") or {}).get("Healthcheck"):
        return None
    from .health import resolve
    return resolve(o.healthcheck, image_config)


def build_spec(root, cid, o, command, image_config, layer_dirs):
    """The container's OCI spec -> (spec, its user namespace's ids or
    None).  Names the container (o.name, o.hostname) when not named."""
    args = command_line(image_config, command, o.entrypoint)
    if o.init:
        args = ["/dev/init", "--"] + args
    from .users import resolve_user
    uid, gid, groups, home = resolve_user(o.user or image_config["User"] or "0", layer_dirs)
    env = config.merge_env(image_config["Env"], o.env, os.environ)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    mounts = o.mounts
    if o.volumes:  # after the checks: this makes named volumes and missing host dirs
        from .volumes import parse_volume
        mounts += [parse_volume(root, v) for v in o.volumes]
    if o.init:
        from .supervisor import INIT_BINARY
        mounts.append({"destination": "/dev/init", "type": "bind", "source": INIT_BINARY,
                       "options": ["bind", "ro"]})
    o.generated = o.name is None
    o.name = o.name or generated_name(root, cid)
    o.hostname = o.hostname or cid[:12]
    if not any(e.startswith("HOSTNAME=") for e in env):
        env.insert(0, f"HOSTNAME={o.hostname}")
    cdir = root.container_dir(cid)
    if o.netplan:
        from .net import network as networking
        mounts += networking.etc_mounts(cdir)
    elif o.network.startswith("container:"):
        from .net import network as networking
        mounts += networking.joined_mounts(root, o.network)
    sec = o.security
    spec = config.make_spec(
        args, env=env, cwd=o.workdir or image_config["WorkingDir"] or "/",
        uid=uid, gid=gid, groups=groups, hostname=o.hostname,
        rootfs=rootfs_path(root, cdir, o), readonly=o.read_only, network=o.network,
        res=o.resources, mounts=mounts, **sec.spec_fields(uid))
    spec["process"]["terminal"] = o.tty
    ids = None
    if o.userns == "auto":
        from . import userns as user_namespaces
        ids = user_namespaces.allocate(root, cid)
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"], spec["linux"]["gidMappings"] = user_namespaces.mappings(ids)
        if o.network == "host":  # a fresh sysfs needs a network namespace of our own
            for m in spec["mounts"]:
                if m["type"] == "sysfs":
                    m.update(type="bind", source="/sys",
                             options=["rbind", "ro", "nosuid", "noexec", "nodev"])
    spec["annotations"] = {SECCOMP_ANNOTATION: sec.seccomp}
    if sec.seccomp_profile is not None:
        spec["linux"]["seccomp"] = sec.seccomp_profile
    return spec, ids


def rootfs_path(root, cdir, o):
    """The overlay's mount point.  A --rm container mounts it on the
    scratch dir, in its own mount namespace: on the empty dir itself, or
    on a dir in the tmpfs it mounts there (--rm-tmpfs-size; the idmapped
    layers of --userns have a scratch dir of their own).  A kept one has
    its own.  (runtime.Container._prepare_rootfs decides the same at start.)"""
    if not o.auto_remove:
        return f"{cdir}/merged"
    if o.userns == "auto":
        return f"{cdir}/scratch/merged"
    if o.scratch_size:
        return f"{root.scratch}/merged"
    return root.scratch


def write_record(root, record, o):
    """Reserve the name and write the record (record.write_new), with the
    network's /etc files beside it."""
    ids = record["userns"]
    if o.netplan:
        from .net import network as networking

    def fill(staging):
        if o.netplan:
            networking.write_etc_files(staging, o.hostname)
    write_new(root, record, taken=f"the container name {o.name!r} is already in use",
              alternative_name=f"{o.name}_{record['id'][:6]}" if o.generated else None,
              group=ids["gid"] if ids else None,  # searched through an fd (userns.ContainerPaths)
              fill=fill)


_ADJECTIVES = ("brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nimble", "proud", "quiet", "sharp", "swift", "tidy", "vivid", "witty")
_NAMES = ("babbage", "curie", "dijkstra", "hopper", "knuth", "lamport", "liskov", "lovelace",
          "noether", "pike", "ritchie", "shannon", "thompson", "torvalds", "turing", "wirth")


def generated_name(root, cid):
    """A docker-style name (`swift_hopper`), made unique with the id when taken."""
    n = int(cid[:8], 16)
    name = f"{_ADJECTIVES[n % len(_ADJECTIVES)]}_{_NAMES[(n >> 8) % len(_NAMES)]}"
    if os.path.lexists(f"{root.names}/{name}"):
        name = f"{name}_{cid[:6]}"
    return name


def rm_tmpfs_size_bytes(value, auto_remove):
    """--rm-tmpfs-size SIZE -> bytes, or None (the default: on disk)."""
    if value is None:
        return None
    if not auto_remove:
        raise InvalidArgument("--rm-tmpfs-size needs --rm: a kept container's changes live on disk")
    n = config.parse_size(value, "--rm-tmpfs-size")
    if n < 1 << 20:  # (and tmpfs reads size=0 as no limit at all)
        raise InvalidArgument(f"invalid --rm-tmpfs-size {value!r}: the minimum is 1m")
    return n


def run_config(image_record, image_config, command, o):
    """What docker's inspect calls the container's Config, beyond the
    spec: its Cmd and Entrypoint as asked (the image's unless overridden),
    the user as named, the image's labels."""
    entry, cmd = _entry_and_cmd(image_config, command, o.entrypoint)
    labels = (image_record.get("config") or {}).get("config") or {}
    labels = labels.get("Labels") if isinstance(labels, dict) else None
    return {"Cmd": cmd or None, "Entrypoint": entry or None,
            "User": o.user or image_config["User"] or "",
            "Labels": dict(labels) if isinstance(labels, dict) else {}}


def _entry_and_cmd(image_config, command, entrypoint):
    entry = [entrypoint] if isinstance(entrypoint, str) else list(entrypoint or image_config["Entrypoint"] or [])
    if entrypoint == "":
        entry = []
    cmd = list(command) if command else list(image_config["Cmd"] or []) if entrypoint is None else []
    return entry, cmd


def command_line(image_config, command, entrypoint):
    """image_config: as config.image_run_config() returns it."""
    entry, cmd = _entry_and_cmd(image_config, command, entrypoint)
    args = entry + cmd
    if not args:
        raise InvalidArgument("no command given and the image has neither Cmd nor Entrypoint")
    return args
