"""docker's inspect shapes, built from diyc's records: what `diyc
inspect`, `{{.State.Pid}}` templates and Container.attrs (docker-py's
container.attrs) see.

    container(ctr)         docker's ContainerJSON: Id, Name, State, Config,
                           HostConfig, NetworkSettings, Mounts, ...
    image(store, record)   docker's image inspect: Id, RepoTags, Config, RootFS, ...
    network(root, rec)     docker's network inspect
    volume(root, name)     docker's volume inspect

Maps users fill (labels, networks, ports) are template_values.Map: a
template's `.Config.Labels.missing` is `<no value>` there, where an unknown struct
field is an error.  Besides docker's fields, diyc's own: State.SupervisorPid
(the container's diyc-shim, as podman's State.ConmonPid) and CgroupPaths."""

import os

from .formatting import parse_rfc3339, rfc3339_nano
from .template_values import Map

# docker's State.Status for diyc's statuses (an OCI container held, then gone, is "exited")
_DOCKER_STATUS = {"stopped": "exited"}


def container(ctr):
    """docker's ContainerJSON for a container (a record.ContainerRecord)."""
    rec, spec = ctr.record, ctr.record["spec"]
    args = list(spec["process"]["args"])
    if args[:2] == ["/dev/init", "--"]:  # --init: docker shows the command, not the init
        args = args[2:]
    network = _network_settings(ctr)
    return {
        "Id": ctr.id,
        "Created": rfc3339_nano(rec["created"]),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": _state(ctr),
        "Image": rec.get("image_id") or "",
        "ResolvConfPath": _beside(ctr, "resolv.conf"),
        "HostnamePath": _beside(ctr, "hostname"),
        "HostsPath": _beside(ctr, "hosts"),
        "LogPath": f"{ctr.dir}/container.log",
        "Name": "/" + ctr.name,
        "RestartCount": rec["state"].get("restart_count", 0),
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": _host_config(ctr),
        "Mounts": _mounts(ctr),
        "Config": _config(ctr),
        "NetworkSettings": network,
        "CgroupPaths": Map((rec.get("cgroup") or {}).get("paths") or {}),
    }


def _beside(ctr, name):
    path = f"{ctr.dir}/{name}"
    return path if os.path.exists(path) else ""


def _state(ctr):
    state = ctr.record["state"]
    status = ctr.state_name  # running, or paused: frozen while it runs
    running = status in ("running", "paused")
    health = state.get("health")
    return {
        "Status": _DOCKER_STATUS.get(status, status),
        "Running": running,
        "Paused": status == "paused",
        "Restarting": status == "restarting",
        "OOMKilled": bool(state.get("oom_killed")),
        "Dead": status == "dead",
        "Pid": state.get("pid") or 0 if running or status == "paused" else 0,
        "ExitCode": state.get("exit_code") or 0,
        "Error": state.get("error") or "",
        "StartedAt": rfc3339_nano(state.get("started")),
        "FinishedAt": rfc3339_nano(state.get("finished")),
        "SupervisorPid": state.get("supervisor") or 0 if running else 0,
        **({"Health": {"Status": health.get("Status"), "FailingStreak": health.get("FailingStreak", 0),
                       "Log": list(health.get("Log") or [])}} if health and ctr.record.get("healthcheck")
           else {}),
    }


def _config(ctr):
    rec, spec = ctr.record, ctr.record["spec"]
    asked = rec.get("config") or {}
    args = [a for a in spec["process"]["args"]]
    if args[:2] == ["/dev/init", "--"]:
        args = args[2:]
    return {
        "Hostname": spec.get("hostname") or "",
        "Domainname": "",
        "User": asked.get("User", ""),
        "Tty": bool(rec.get("tty")),
        "OpenStdin": bool(asked.get("OpenStdin")),
        **({"ExposedPorts": Map(asked["ExposedPorts"])} if asked.get("ExposedPorts") else {}),
        "Env": list(spec["process"].get("env") or []),
        "Cmd": asked["Cmd"] if "Cmd" in asked else args,  # (a record older than "config": all of it)
        "Image": rec.get("image") or "",
        "WorkingDir": spec["process"].get("cwd") or "",
        "Entrypoint": asked.get("Entrypoint"),
        "Labels": Map(labels_of(rec)),
        **({"Healthcheck": _healthcheck(rec["healthcheck"])} if rec.get("healthcheck") else {}),
        "StopSignal": _signal_name(rec.get("stop_signal") or 15),
        "StopTimeout": rec.get("stop_timeout"),
    }


def _healthcheck(check):
    """docker's Config.Healthcheck (durations in nanoseconds)."""
    return {"Test": list(check["test"]), "Interval": check["interval"], "Timeout": check["timeout"],
            "StartPeriod": check["start_period"], "Retries": check["retries"]}


def labels_of(record):
    """A container's labels (the image's, then --label's)."""
    return dict(record.get("labels") or {})


def _signal_name(number):
    """A signal number as docker's Config.StopSignal names it (SIGTERM)."""
    import signal
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _host_config(ctr):
    rec, spec = ctr.record, ctr.record["spec"]
    resources = spec.get("linux", {}).get("resources") or {}
    cpu = resources.get("cpu") or {}
    nano_cpus = 0
    if cpu.get("quota") and cpu.get("period") and cpu["quota"] > 0:
        nano_cpus = int(cpu["quota"] * 1_000_000_000 // cpu["period"])
    memory = resources.get("memory") or {}
    pids = (resources.get("pids") or {}).get("limit")
    restart = rec.get("restart") or {"name": "no", "max_retries": 0}
    linux = spec.get("linux") or {}
    return {
        "Binds": [_bind_text(m) for m in user_binds(ctr)] or None,
        "NetworkMode": rec.get("network") or "none",
        "PortBindings": Map(_port_bindings(rec, asked=True)),
        "RestartPolicy": {"Name": restart.get("name", "no"),
                          "MaximumRetryCount": restart.get("max_retries", 0)},
        "AutoRemove": bool(rec.get("auto_remove")),
        "Privileged": not linux.get("maskedPaths") and not linux.get("readonlyPaths"),
        "ReadonlyRootfs": bool((spec.get("root") or {}).get("readonly")),
        "Memory": memory.get("limit") or 0,
        "MemorySwap": memory.get("swap") or 0,
        "NanoCpus": nano_cpus,
        "CpuShares": cpu.get("shares") or 0,
        "PidsLimit": pids if pids and pids > 0 else None,
    }


def user_binds(ctr):
    """The spec's binds that -v asked for: not diyc's own (the /etc files
    beside the record, the --init binary)."""
    from .supervisor import INIT_BINARY
    state_dir = ctr.root.path.rstrip("/") + "/"
    return [m for m in ctr.record["spec"].get("mounts") or []
            if m.get("type") == "bind" and m.get("source") != INIT_BINARY
            and (m.get("volume") or not m.get("source", "").startswith(state_dir))]


def _read_only(mount):
    return "ro" in (mount.get("options") or [])


def _bind_text(m):
    return f"{m.get('volume') or m['source']}:{m['destination']}" + (":ro" if _read_only(m) else "")


def _mounts(ctr):
    out = []
    for m in user_binds(ctr):
        entry = {"Type": "volume" if m.get("volume") else "bind"}
        if m.get("volume"):
            entry["Name"] = m["volume"]
        entry.update(Source=m["source"], Destination=m["destination"],
                     Mode="ro" if _read_only(m) else "", RW=not _read_only(m),
                     Propagation="" if m.get("volume") else _propagation(m))
        if m.get("volume"):
            entry["Driver"] = "local"
        out.append(entry)
    return out


_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


def _propagation(mount):
    return next((o for o in mount.get("options") or [] if o in _PROPAGATIONS), "rprivate")


def _port_key(p):
    return f"{p['container_port']}/{p['proto']}"


def _port_bindings(rec, asked=False):
    """{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}; asked (as
    HostConfig's): a random host port is "", as -p asked it."""
    out = {}
    for p in ((rec.get("network_settings") or {}).get("ports") or []):
        if isinstance(p, dict) and "host_port" in p:
            port = "-".join(map(str, p.get("host_range") or ())) if asked and p.get("random") \
                else str(p["host_port"])
            out.setdefault(_port_key(p), []).append({"HostIp": p.get("host_ip", "0.0.0.0"), "HostPort": port})
    return out


def _network_settings(ctr):
    rec = ctr.record
    settings = rec.get("network_settings") or {}
    name = rec.get("network") or "none"
    ip = settings.get("ip") or ""
    endpoint = _endpoint(ctr.root, name, settings)
    networks = Map({name.partition(":")[0] if name.startswith("container:") else name: endpoint})
    for joined, joined_settings in (rec.get("networks_connected") or {}).items():  # network connect
        networks[joined] = _endpoint(ctr.root, joined, joined_settings)
    ports = Map(_port_bindings(rec))
    if settings:  # an exposed port not published: null, as docker's
        ports.update((key, None) for key in (rec.get("config") or {}).get("ExposedPorts") or ()
                     if key not in ports)
    # docker fills the top-level address for its default network only
    default = name == "bridge"
    return {
        "Bridge": settings.get("bridge") or "",
        "SandboxKey": f"/proc/{rec['state'].get('pid')}/ns/net" if ctr.status == "running" else "",
        "Ports": ports,
        "IPAddress": ip if default else "",
        "IPPrefixLen": endpoint["IPPrefixLen"] if default else 0,
        "Gateway": endpoint["Gateway"] if default else "",
        "MacAddress": endpoint["MacAddress"] if default else "",
        "Networks": networks,
    }


def _endpoint(root, name, settings):
    """docker's endpoint of a container on network `name`."""
    return {"IPAddress": settings.get("ip") or "", "IPPrefixLen": settings.get("prefixlen") or 0,
            "Gateway": settings.get("gateway") or "", "MacAddress": settings.get("mac") or "",
            "NetworkID": _network_id(root, name) if settings else ""}


def _network_id(root, name):
    from .net import network as networking
    rec = networking.load(root, name)
    return rec["id"] if rec else ""


# -- docker inspect's lookup ----------------------------------------------------------------

TYPES = ("container", "image", "volume", "network")


def lookup(root, ref, kind=None):
    """`diyc inspect [--type KIND] REF`: docker's shape of the container,
    image, volume or network named `ref` (tried in that order unless
    `kind` says which).  NotFound when there is none."""
    from .errors import ContainerNotFound, ImageNotFound, InvalidArgument, NotFound
    if kind is not None and kind not in TYPES:
        raise InvalidArgument(f"invalid --type {kind!r}: container, image, volume or network")
    for candidate in (kind,) if kind else TYPES:
        found = _LOOKUPS[candidate](root, ref)
        if found is not None:
            return found
    # (docker's "No such object" is exit 1, as a missing container everywhere)
    error = {None: ContainerNotFound, "container": ContainerNotFound, "image": ImageNotFound}.get(kind, NotFound)
    raise error(f"no such {kind or 'object'}: {ref}")


def _container_named(root, ref):
    from .errors import NotFound
    from .record import ContainerRecord
    try:
        return container(ContainerRecord.load(ref, root))
    except NotFound:
        return None


def _image_named(root, ref):
    from .errors import NotFound
    from .images.store import ImageStore
    store = ImageStore(root)
    try:
        return image(store, store.resolve(ref))
    except (NotFound, FileNotFoundError):
        return None


def _volume_named(root, ref):
    from .volumes import list_volumes
    return volume(root, ref) if ref in list_volumes(root) else None


def _network_named(root, ref):
    from .config import check_name
    from .errors import InvalidArgument
    from .net import network as networking
    try:
        check_name(ref, "network", max_length=64)
    except InvalidArgument:  # not a network's name at all
        return None
    rec = networking.load(root, ref)
    return network(root, rec) if rec is not None else None


_LOOKUPS = {"container": _container_named, "image": _image_named, "volume": _volume_named,
            "network": _network_named}


# -- images ------------------------------------------------------------------------------

def image(store, record):
    """docker's image inspect for an image record of `store`."""
    config = record.get("config") or {}
    run = config.get("config") or {}
    tags, digests = store.names_of(record["id"]) if hasattr(store, "names_of") else ([], [])
    created = config.get("created") or record.get("created") or ""
    return {
        "Id": record["id"],
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": "",
        "Created": _rfc3339_text(created),
        "DockerVersion": "",
        "Author": config.get("author") or "",
        "Config": _image_config(run),
        "Architecture": config.get("architecture") or "",
        "Variant": config.get("variant") or "",
        "Os": config.get("os") or "",
        "Size": record.get("size") or 0,
        "RootFS": {"Type": "layers", "Layers": list(record.get("layers") or [])},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _rfc3339_text(created):
    t = parse_rfc3339(created)
    return rfc3339_nano(t) if t is not None else created


def _image_config(run):
    return {
        "Hostname": "", "Domainname": "", "User": run.get("User") or "",
        "ExposedPorts": Map(run["ExposedPorts"]) if isinstance(run.get("ExposedPorts"), dict) else None,
        "Env": run.get("Env"), "Cmd": run.get("Cmd"), "Image": "",
        "Volumes": Map(run["Volumes"]) if isinstance(run.get("Volumes"), dict) else None,
        "WorkingDir": run.get("WorkingDir") or "", "Entrypoint": run.get("Entrypoint"),
        "OnBuild": run.get("OnBuild"), "Labels": Map(run["Labels"]) if isinstance(run.get("Labels"), dict) else None,
        "StopSignal": run.get("StopSignal") or "",
    }


# -- networks and volumes ------------------------------------------------------------------

def network(root, rec):
    """docker's network inspect for a network record, with its containers
    (those started on it and those `diyc network connect`ed to it)."""
    from .net.attach import endpoints
    attached = Map(endpoints(root, rec["name"]))
    return {
        "Name": rec["name"], "Id": rec["id"], "Created": rfc3339_nano(rec.get("created")),
        "Scope": "local", "Driver": "bridge", "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None,
                 "Config": [{"Subnet": rec["subnet"], "Gateway": rec["gateway"]}]},
        "Internal": False, "Attachable": False, "Ingress": False,
        "Containers": attached,
        "Options": Map({"com.docker.network.bridge.name": rec["bridge"]}),
        "Labels": Map(rec.get("labels") or {}),
    }


def volume(root, name):
    """docker's volume inspect."""
    path = f"{root.path}/volumes/{name}/_data"
    try:
        created = os.stat(f"{root.path}/volumes/{name}").st_mtime
    except OSError:
        created = None
    return {"CreatedAt": rfc3339_nano(created) if created else "", "Driver": "local",
            "Labels": Map(), "Mountpoint": path, "Name": name, "Options": Map(), "Scope": "local"}
