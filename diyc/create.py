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


# What each of Container.create's keyword options means: the end of its docstring (and of
# diyc.run's), kept here beside the defaults so that one place says both.
OPTIONS_DOC = """        Options (keyword-only; each is a `diyc run` flag):
          name: the container's name (--name); default: a generated one.
          hostname: its hostname (-h); default: the id's first 12 digits.
          env: environment, {"K": "V"} or ["K=V"]; a None value or a bare
              "K" copies K from our environment, or unsets K if we have none (-e).
          workdir: the working directory, absolute (-w).
          user: "name", "uid", "uid:gid" or "name:group" (-u).
          entrypoint: overrides the image's Entrypoint: one program (str) or
              a list; "" clears it (--entrypoint).
          memory: the memory limit, bytes (int) or "64m" (-m).
          memory_swap: memory+swap, or -1 for unlimited swap (--memory-swap).
          cpus: a CPU quota in CPUs, 0.5 or "0.5" (--cpus).
          pids_limit: the most processes at once; -1 unlimited (--pids-limit).
          network: "bridge" (the default, as docker's: an address on diyc's
              default bridge), "none" (loopback only: the fast path, no
              veth or address to set up), "host", a network's name or
              "container:NAME" (--network).
          ip: its address on a bridge network (--ip).
          publish: published ports, ["[IP:]HOST:PORT[/udp]"] or docker-py's
              ports dict {"80/tcp": 8080, "53/udp": ("127.0.0.1", 5353)}; no
              host port ("80", "127.0.0.1::80", {"80/tcp": None}): a random
              free one, picked at each start (-p).
          publish_all_ports: publish every port the image exposes (and
              `expose`) on a random free host port (-P/--publish-all).
          expose: ports to expose, ["80", "53/udp", "8000-8002"] (--expose).
          auto_remove: remove the container when it ends (--rm).
          rm_tmpfs_size: with auto_remove, its writes on a tmpfs of at most
              this size, in RAM counted in `memory` (--rm-tmpfs-size).
          cgroup_parent: the parent cgroup (--cgroup-parent).
          read_only: the root filesystem read-only (--read-only).
          privileged: every capability, no masked paths (--privileged).
          cap_add, cap_drop: capabilities, ["NET_ADMIN"], "ALL" (--cap-add/drop).
          security_opt: ["no-new-privileges", "seccomp=unconfined" or
              "seccomp=PROFILE.json"] (--security-opt).
          ulimits: ["nofile=1024:2048"] or docker-py's
              [{"name": "nofile", "soft": 1024, "hard": 2048}] (--ulimit).
          sysctls: {"net.core.somaxconn": 1024} or ["K=V"] (--sysctl).
          oom_score_adj: the OOM score adjustment, -1000..1000 (--oom-score-adj).
          devices: ["/dev/fuse[:/dev/fuse][:rwm]"] or [{"PathOnHost": ...,
              "PathInContainer": ..., "CgroupPermissions": "rwm"}] (--device).
          tmpfs: {"/run": "size=1m"} or ["/run:size=1m"] (--tmpfs).
          restart: "no", "on-failure[:N]", "always", "unless-stopped" or
              {"Name": "on-failure", "MaximumRetryCount": 3}; for containers
              started detached (--restart).
          log_opts: {"max-size": "1m"} or ["max-size=1m"] (--log-opt).
          volumes: ["SRC:DST[:ro]"] or {"SRC": {"bind": DST, "mode": "ro"}}
              or {"SRC": DST}; SRC a host path or a volume name (-v).
          mounts: docker's long form, ["type=bind,source=/a,target=/b,readonly"]
              (types bind, volume, tmpfs) or docker-py's Mount dicts
              ({"Type", "Source", "Target", "ReadOnly", ...}) (--mount).
          env_file: files of KEY=VALUE lines, read before env (--env-file).
          labels: {"k": "v"} or ["k=v"], kept in the record (--label).
          label_file: files of k=v lines (--label-file).
          extra_hosts: {"host": "IP"} or ["host:IP"]: /etc/hosts lines; IP
              "host-gateway" is the host's address on the bridge (--add-host).
          dns, dns_search, dns_opt: /etc/resolv.conf's nameservers, search
              domains and options (--dns, --dns-search, --dns-option).
          stop_signal: what stop() sends first, "SIGINT" or 2; default the
              image's StopSignal, else SIGTERM (--stop-signal).
          stop_timeout: seconds stop() waits before SIGKILL; default 10
              (--stop-timeout).
          init: a tiny init as PID 1: signals forwarded, zombies reaped (--init).
          tty: give it a terminal, and TERM=xterm unless TERM is set (-t).
          userns: "auto": a user namespace, its root an unprivileged host
              uid (--userns).
          healthcheck: docker-py's {"test": ["CMD", ...] | ["CMD-SHELL", CMD] |
              ["NONE"], "interval": ns, "timeout": ns, "retries": N,
              "start_period": ns} (durations also as "5s"); over the
              image's HEALTHCHECK (--health-cmd, ..., --no-healthcheck).
          pull: "missing" (pull the image when it is not in the store),
              "always" (pull it first), "never"; default: never (--pull;
              docker's default is missing).
          platform: "linux/ARCH[/VARIANT]": only this host's platform is
              run; an image of another is refused (--platform).
          root: the diyc state directory (--root); default $DIYC_ROOT or
              /var/lib/diyc.
          trace: a diyc.trace.Trace collecting the time of each phase.
        """

# Container.create's keyword options, with their defaults: docker run's
# flags, by name (cli/run.py's RUN_OPTIONS maps the one to the other).
CREATE_OPTIONS = {
    "name": None, "hostname": None, "env": (), "workdir": None, "user": None,
    "entrypoint": None, "memory": None, "memory_swap": None, "cpus": None, "pids_limit": None,
    "network": "bridge", "ip": None, "publish": (), "publish_all_ports": False,
    "expose": (), "auto_remove": False, "rm_tmpfs_size": None,
    "cgroup_parent": None, "read_only": False, "privileged": False, "cap_add": (), "cap_drop": (),
    "security_opt": (), "ulimits": (), "sysctls": (), "oom_score_adj": None, "devices": (),
    "tmpfs": (), "restart": None, "log_opts": (), "volumes": (), "init": False, "tty": False,
    "userns": None, "env_file": (), "labels": (), "label_file": (), "extra_hosts": (), "dns": (),
    "dns_search": (), "dns_opt": (), "mounts": (), "stop_signal": None, "stop_timeout": None,
    "healthcheck": None, "pull": None, "platform": None,
}
# the options whose types and characters config.check_run_arguments checks
CHECKED_OPTIONS = ("name", "hostname", "env", "workdir", "user", "entrypoint", "network", "ip",
                   "publish", "expose", "cgroup_parent", "cap_add", "cap_drop", "security_opt", "ulimits",
                   "sysctls", "devices", "tmpfs", "restart", "log_opts", "volumes", "userns",
                   "env_file", "labels", "label_file", "extra_hosts", "dns", "dns_search", "dns_opt",
                   "mounts", "stop_signal", "pull", "platform")


class CreateOptions:
    """Container.create's options as attributes, defaults filled in; then
    what validate() derives from them (netplan, resources, security,
    spec_mounts, restart_policy, scratch_size, log, env_file_entries,
    label_entries, host_entries, stop_signal_number, stop_seconds)."""

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
    elif o.ip is not None or o.publish or o.publish_all_ports:
        raise InvalidArgument(f"--ip and -p/--publish need a bridge network, not --network {o.network}")
    if o.publish_all_ports and o.network.startswith("container:"):
        raise InvalidArgument("conflicting options: port publishing and the container type network mode")
    o.exposed = []
    if o.expose:
        from .net.addresses import parse_expose
        o.exposed = [port for text in o.expose for port in parse_expose(text)]
    if o.pull not in (None, "always", "missing", "never"):
        raise InvalidArgument(f"invalid --pull {o.pull!r}: expected always, missing or never")
    if o.platform is not None:
        check_platform(o.platform)
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
    o.spec_mounts = [config.parse_tmpfs(t) for t in o.tmpfs or ()]
    if o.mounts or o.volumes:
        from .volumes import parse_mount, parse_volume
        for m in o.mounts or ():
            parse_mount(None, m)  # its checks; made in build_spec
        for v in o.volumes or ():
            parse_volume(None, v)
    from .logs import parse_log_opts
    o.restart_policy = config.parse_restart_policy(o.restart)
    if o.auto_remove and o.restart_policy["name"] != "no":
        raise InvalidArgument("conflicting options: --restart and --rm")
    o.scratch_size = rm_tmpfs_size_bytes(o.rm_tmpfs_size, o.auto_remove)
    o.log = parse_log_opts(o.log_opts)
    validate_run_metadata(o)
    validate_etc_files(o)


def validate_run_metadata(o):
    """--env-file, --label(-file), --stop-signal, --stop-timeout: the
    files read now, before anything is made."""
    o.env_file_entries, o.label_entries = [], {}
    if o.env_file or o.labels or o.label_file:  # (the start path imports nothing for none)
        from .keyvalue_files import env_file_entries, labels
        o.env_file_entries = env_file_entries(o.env_file, os.environ)
        o.label_entries = labels({}, o.labels, o.label_file)
    o.stop_signal_number = None
    if o.stop_signal is not None:
        from .options import signal_number
        o.stop_signal_number = signal_number(o.stop_signal)
    o.stop_seconds = None
    if o.stop_timeout is not None:
        from .numbers import integer
        o.stop_seconds = integer(o.stop_timeout, "--stop-timeout (seconds)", 0, MAX_STOP_TIMEOUT)


MAX_STOP_TIMEOUT = 366 * 86400  # finite: the SIGKILL comes, however late


def validate_etc_files(o):
    """--add-host, --dns, --dns-search, --dns-option: checked; they need
    files of our own in /etc (see net/etcfiles.py)."""
    o.host_entries, o.own_etc = [], False
    if not (o.extra_hosts or o.dns or o.dns_search or o.dns_opt):
        return  # (the start path imports nothing for none)
    from .net import etcfiles
    o.host_entries = [etcfiles.parse_extra_host(h) for h in o.extra_hosts or ()]
    for ip in o.dns or ():
        etcfiles.check_ip(ip, "--dns address")
    for domain in o.dns_search or ():
        etcfiles.check_search_domain(domain)
    for option in o.dns_opt or ():
        etcfiles.check_dns_option(option)
    o.own_etc = bool(o.host_entries or o.dns or o.dns_search or o.dns_opt)
    if o.own_etc and o.network.startswith("container:"):
        raise InvalidArgument("conflicting options: --add-host/--dns* and --network container:NAME "
                              "(the container shares that container's /etc/hosts and resolv.conf)")
    if o.network == "none" and any(ip == etcfiles.HOST_GATEWAY for _, ip in o.host_entries):
        etcfiles.extra_hosts_text(o.host_entries, None)  # raises: no gateway on `none`


def resolve_image(root, image, pull=None, platform=None):
    """`image`: a reference, or an image record (a build step's layers and
    config, which need no name in the store) -> (record, run config, layer
    dirs).  pull, platform: as Container.create's.  A build step mounts
    no volume at its image's VOLUMEs (as BuildKit's RUN)."""
    store = ImageStore(root.ensure())
    if isinstance(image, dict):
        image_record = image
    elif pull in ("always", "missing") or platform is not None:
        image_record = pulled_image(store, image, pull, platform)
    else:
        image_record = store.get(image)
    run_config = config.image_run_config(image_record["config"])
    if isinstance(image, dict):
        run_config["Volumes"] = []
    return image_record, run_config, store.layer_dirs(image_record)


def check_platform(platform):
    """--platform: OS/ARCH[/VARIANT], and this host's (diyc runs no other
    architecture) -> (os, arch, variant)."""
    from .images.puller import host_platform, parse_platform
    want, host = parse_platform(platform), host_platform()
    if want[:2] != host[:2] or (want[2] and host[2] and want[2] != host[2]):
        raise InvalidArgument(f"--platform {platform}: diyc runs only this host's platform, "
                              f"{'/'.join(filter(None, host))}")
    return want


def pulled_image(store, image, pull, platform):
    """The image, pulled when `pull` says so (always; missing: when the
    store lacks it), its progress on stderr as docker's run shows it; with
    `platform`, an image of another platform refused."""
    import sys
    from .errors import ImageNotFound
    record = None
    if pull != "always":
        try:
            record = store.get(image)
        except ImageNotFound:
            if pull != "missing":
                raise
            print(f"Unable to find image '{image}' locally", file=sys.stderr)
    if record is None:
        from .images.puller import Progress, pull as pull_image
        from .images.reference import parse_reference
        record = pull_image(store, parse_reference(image), platform=platform, progress=Progress(sys.stderr))
    if platform is not None:
        cfg = record.get("config") or {}
        want = check_platform(platform)
        have = (cfg.get("os") or want[0], cfg.get("architecture") or want[1])
        if have != want[:2]:
            raise InvalidArgument(f"image {image} is {'/'.join(have)}: it does not match the requested "
                                  f"platform {platform}")
    return record


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
    publish_exposed(o, image_config)
    if o.init:
        args = ["/dev/init", "--"] + args
    from .users import resolve_user
    uid, gid, groups, home = resolve_user(o.user or image_config["User"] or "0", layer_dirs)
    env = config.merge_env(image_config["Env"], o.env_file_entries + list(o.env or ()), os.environ)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    if o.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")  # as docker's -t
    mounts = o.spec_mounts
    o.made_volumes = mounts  # (what a failure from here removes: discard_volumes)
    if o.volumes or o.mounts:  # after the checks: this makes named volumes and missing host dirs
        from .volumes import parse_mount, parse_volume
        for v in o.volumes or ():
            mounts.append(parse_volume(root, v))
        for m in o.mounts or ():
            mounts.append(parse_mount(root, m))
    if image_config["Volumes"]:
        image_volumes(root, mounts, image_config["Volumes"])
    new_volumes = [m for m in mounts if m.pop("fill", False)]  # (filled once the ids are known)
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
    o.etc_files = etc_files(root, o)
    if o.netplan:
        from .net import network as networking
        mounts += networking.etc_mounts(cdir)
    elif o.network.startswith("container:"):
        from .net import network as networking
        mounts += networking.joined_mounts(root, o.network)
    elif o.etc_files:
        mounts += [{"destination": f"/etc/{f}", "type": "bind", "source": f"{cdir}/{f}",
                    "options": ["rbind", "rprivate"]} for f in o.etc_files]
    o.record_fields = run_metadata(o, image_config)
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
    try:
        fill_new_volumes(new_volumes, layer_dirs, ids)
    except BaseException:
        if ids is not None:  # (nobody else would give the slot back)
            user_namespaces.release(root, cid, ids)
        raise
    return spec, ids


def publish_exposed(o, image_config):
    """o.exposed_ports: docker's Config.ExposedPorts (the image's, --expose's,
    the published ones); with -P, each one not published yet gets a random
    host port (appended to the network plan)."""
    exposed = dict.fromkeys(image_config["ExposedPorts"])
    exposed.update(dict.fromkeys(o.exposed))
    ports = o.netplan["ports"] if o.netplan else []
    exposed.update(dict.fromkeys(f"{p['container_port']}/{p['proto']}" for p in ports))
    o.exposed_ports = exposed
    if not (o.publish_all_ports and o.netplan):
        return
    from .net.addresses import parse_expose, parse_publish
    published = {f"{p['container_port']}/{p['proto']}" for p in ports}
    for key in image_config["ExposedPorts"]:
        parse_expose(key, "image config: ExposedPorts key")  # (tcp and udp only: refused, not skipped)
    for key in exposed:
        if key not in published:
            ports.append(parse_publish(key))


def image_volumes(root, mounts, paths):
    """An anonymous volume at each of the image's VOLUME paths that no
    other mount covers (appended to `mounts`), as docker's.  (The image's
    files there are not copied in.)"""
    from .volumes import anonymous_volume
    taken = {m["destination"].rstrip("/") or "/" for m in mounts}
    for path in paths:
        dest = path.rstrip("/") or "/"
        if not dest.startswith("/") or ".." in dest.split("/") or dest == "/":
            raise InvalidArgument(f"image config: invalid VOLUME {path!r}: an absolute path without '..'")
        if dest not in taken:
            taken.add(dest)
            mounts.append(anonymous_volume(root, dest))


OVERFLOW_ID = 65534  # what a user namespace shows for an id it does not map


def fill_new_volumes(mounts, layer_dirs, ids=None):
    """The volumes made for this container get the image's files at their
    mount points, as docker's (copy.image_files_into); with a user
    namespace (`ids`), owned as the container sees them (its root's
    otherwise)."""
    if not mounts:
        return
    from .copy import image_files_into

    def mapped(uid, gid):  # an id of the container -> the host's (outside its range: nobody)
        return (ids["uid"] + (uid if uid < ids["size"] else OVERFLOW_ID),
                ids["gid"] + (gid if gid < ids["size"] else OVERFLOW_ID))
    for m in mounts:
        image_files_into(layer_dirs, m["destination"], m["source"], mapped if ids else None)


def discard_volumes(root, o):
    """After a failed create: the anonymous volumes build_spec made."""
    if getattr(o, "made_volumes", None):
        from .volumes import remove_anonymous
        remove_anonymous(root, o.made_volumes)


def etc_files(root, o):
    """{name: text} of the /etc files a container gets of its own: on a
    bridge its resolv.conf (network.py writes the rest; the --add-host
    lines go into the network settings, for connect()); on none or host
    hosts and resolv.conf when --add-host or --dns* ask for them; else
    None."""
    if not (o.netplan or o.own_etc):
        return None  # (the fast path: --network none, no --add-host/--dns*)
    from .net import etcfiles
    if o.netplan:
        from .net import network as networking
        gateway = networking.defined(root, o.network)["gateway"]
        o.netplan["extra_hosts"] = etcfiles.extra_hosts_text(o.host_entries, gateway)
        return {"resolv.conf": etcfiles.resolv_conf(networking.host_resolv_conf(), o.dns,
                                                    o.dns_search, o.dns_opt)}
    if not o.own_etc:
        return None
    if o.network == "host":  # the host's own files: its loopback resolver is reachable
        hosts = etcfiles.read_host_file("/etc/hosts") or etcfiles.HOSTS_HEADER
        resolv = etcfiles.read_host_file("/etc/resolv.conf")
        gateway = etcfiles.LOOPBACK_GATEWAY
    else:
        from .net import network as networking
        hosts, resolv, gateway = etcfiles.HOSTS_HEADER, networking.host_resolv_conf(), None
    if hosts and not hosts.endswith("\n"):
        hosts += "\n"
    return {"hosts": hosts + etcfiles.extra_hosts_text(o.host_entries, gateway),
            "resolv.conf": etcfiles.resolv_conf(resolv, o.dns, o.dns_search, o.dns_opt)}


def run_metadata(o, image_config):
    """The record's labels (the image's, then --label-file's, then
    --label's), stop_signal (a number: --stop-signal, else the image's
    StopSignal, else SIGTERM) and stop_timeout (seconds, or None: stop's
    default of 10)."""
    labels = dict(image_config.get("Labels") or {}, **o.label_entries)
    signal = o.stop_signal_number
    if signal is None and image_config.get("StopSignal"):
        from .options import signal_number
        try:
            signal = signal_number(image_config["StopSignal"])
        except InvalidArgument:
            raise InvalidArgument(f"image config: invalid StopSignal {image_config['StopSignal']!r}") from None
    return {"labels": labels, "stop_signal": signal or 15, "stop_timeout": o.stop_seconds}


def rootfs_path(root, cdir, o):
    """The overlay's mount point.  A --rm container mounts it on the
    scratch dir, in its own mount namespace: on the empty dir itself, or
    on a dir in the tmpfs it mounts there (--rm-tmpfs-size; the idmapped
    layers of --userns have a scratch dir of their own).  A kept one has
    its own.  (start.prepare_rootfs decides the same at start.)"""
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
            networking.write_etc_files(staging, o.hostname, o.etc_files["resolv.conf"])
        else:
            for name, text in (o.etc_files or {}).items():
                with open(f"{staging}/{name}", "x") as f:
                    f.write(text)
    write_new(root, record, taken=f"the container name {o.name!r} is already in use",
              alternative_name=f"{o.name}_{record['id'][:6]}" if o.generated else None,
              group=ids["gid"] if ids else None,  # searched through an fd (userns.ContainerPaths)
              fill=fill)


_ADJECTIVES = ("brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nimble", "proud", "quiet", "sharp", "swift", "tidy", "vivid", "witty")
_NAMES = ("babbage", "curie", "dijkstra", "hopper", "knuth", "lamport", "liskov", "lovelace",
          "noether", "pike", "ritchie", "shannon", "thompson", "torvalds", "turing", "wirth")


def copied_record(root, template):
    """A new container's record as a copy of `template` (a nameless
    container's record as _create wrote it, before its start), with an
    id, a name, a hostname (when generated), a cgroup and a creation of
    its own: nothing checked, resolved or built again.  None when the
    record has what a copy may not share - a user namespace's ids, a
    network's address, /etc files in its directory, anonymous volumes."""
    old = template["id"]
    if template.get("userns") or template.get("network_settings") or \
            any(m.get("anonymous") for m in template["spec"].get("mounts") or ()):
        return None
    from . import _json
    from .record import creator_fields, now
    text = _json.dumps(template)
    if _json.dumps(root.container_dir(old))[1:-1] in text:  # (as the JSON text escapes it)
        return None
    cid = os.urandom(32).hex()
    record = _json.loads(text.replace(old, cid))  # (its cgroup's paths: diyc-<id>)
    spec = record["spec"]
    if spec.get("hostname") == old[:12]:
        spec["hostname"] = cid[:12]
        env = spec["process"]["env"]
        if f"HOSTNAME={old[:12]}" in env:
            env[env.index(f"HOSTNAME={old[:12]}")] = f"HOSTNAME={cid[:12]}"
    record.update(name=generated_name(root, cid), created=now(), state=creator_fields())
    return record


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


def run_config(image_config, command, o):
    """What docker's inspect calls the container's Config beyond the spec
    and the record's labels: its Cmd and Entrypoint as asked (the image's
    unless overridden), the user as named."""
    entry, cmd = _entry_and_cmd(image_config, command, o.entrypoint)
    out = {"Cmd": cmd or None, "Entrypoint": entry or None,
           "User": o.user or image_config["User"] or ""}
    if o.exposed_ports:
        out["ExposedPorts"] = {key: {} for key in o.exposed_ports}
    return out


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
