"""The shapes a Python caller may give Container.create and diyc.run, as
docker-py takes them, turned into the strings the CLI passes (`-e K=V`,
`-v SRC:DST:MODE`, `-p IP:HOST:PORT/PROTO`, ...), so that one set of checks
and parsers sees every input.

    env       {"K": "V"} or ["K=V"]        (a None value: copied from our environment)
    command   ["sh", "-c", "x"] or "sh -c 'x'"   (a str is split as a shell would, shlex)
    volumes   {"/src": {"bind": "/dst", "mode": "ro"}}, {"/src": "/dst"} or ["/src:/dst:ro"]
    publish   {"80/tcp": 8080}, {"80": ("127.0.0.1", 8080)}, {"53/udp": [5353, 5354]},
              {"80/tcp": None} (a random free port) or ["8080:80"]   (docker-py calls it ports=)
    expose    [80, "53/udp"] or ["80"]
    ulimits   [{"name": "nofile", "soft": 1024, "hard": 2048}] or ["nofile=1024:2048"]
    devices   ["/dev/fuse:/dev/fuse:rwm"] or [{"PathOnHost": ..., "PathInContainer": ...,
              "CgroupPermissions": "rwm"}]
    sysctls   {"net.core.somaxconn": 1024} or ["net.core.somaxconn=1024"]
    tmpfs     {"/run": "size=1m"} or ["/run:size=1m"]
    log_opts  {"max-size": "1m"} or ["max-size=1m"]
    restart   "on-failure:3" or {"Name": "on-failure", "MaximumRetryCount": 3}
    labels    {"k": "v"} or ["k=v"]
    extra_hosts  {"db": "10.0.0.5"} or ["db:10.0.0.5"]
    mounts    [{"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True,
              "BindOptions": {"Propagation": "rslave"}, "TmpfsOptions": {"SizeBytes": N,
              "Mode": 0o1777}}] (docker-py's Mount) or ["type=bind,source=/a,target=/b"]
    env_file, label_file, dns, dns_search, dns_opt   one str or a list of them
    stop_signal  "SIGINT" or 2

A wrong type is an ArgumentTypeError (a TypeError and an InvalidArgument)
naming the argument; values are checked where they are parsed.  Nothing
here touches the disk: a refused input leaves nothing behind."""

from .errors import ArgumentTypeError


def _scalar(value, what):
    """A str, or an int (not a bool) written in decimal."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ArgumentTypeError(f"{what} must be a string or an integer, not {type(value).__name__}")


def _mapping_items(value, what):
    try:
        return list(value.items())
    except AttributeError:
        raise ArgumentTypeError(f"{what} must be a mapping or a list of strings") from None


def _is_mapping(value):
    return hasattr(value, "items") and hasattr(value, "keys")


def _key(k, what):
    if not isinstance(k, str):
        raise ArgumentTypeError(f"{what} keys must be strings, not {type(k).__name__}")
    return k


def env(value):
    """{"K": "V"} (None: copy K from our environment, as a bare -e K) or ["K=V"]."""
    if not _is_mapping(value):
        return value
    out = []
    for k, v in _mapping_items(value, "env"):
        _key(k, "env")
        out.append(k if v is None else f"{k}={_scalar(v, f'env[{k!r}]')}")
    return out


def command(value):
    """A str is split as a POSIX shell splits words (shlex, as docker-py)."""
    if not isinstance(value, str):
        return value
    if "\0" in value:
        return [value]  # refused with its name by the checks that follow
    import shlex
    try:
        return shlex.split(value)
    except ValueError as e:  # an unclosed quote
        from .errors import InvalidArgument
        raise InvalidArgument(f"invalid command {value!r}: {e}") from None


def volumes(value):
    """{"SRC": {"bind": DST, "mode": "ro"|"rw"}}, {"SRC": DST} or ["SRC:DST[:MODE]"]."""
    if not _is_mapping(value):
        return value
    out = []
    for src, spec in _mapping_items(value, "volumes"):
        _key(src, "volumes")
        if isinstance(spec, str):
            dst, mode = spec, "rw"
        elif _is_mapping(spec):
            dst = spec.get("bind")
            if not isinstance(dst, str):
                raise ArgumentTypeError(f"volumes[{src!r}]['bind'] must be a string")
            mode = spec.get("mode", "rw")
            if not isinstance(mode, str):
                raise ArgumentTypeError(f"volumes[{src!r}]['mode'] must be a string")
        else:
            raise ArgumentTypeError(f"volumes[{src!r}] must be a string or a mapping "
                                    "{'bind': PATH, 'mode': 'ro'|'rw'}")
        out.append(f"{src}:{dst}:{mode}")
    return out


def publish(value):
    """docker-py's ports={"PORT[/PROTO]": HOST} with HOST a port, (IP, PORT),
    None or (IP, None) (a random free port), or a list of those; or
    ["[IP:]HOST:PORT[/PROTO]"]."""
    if not _is_mapping(value):
        return value
    out = []
    for port, hosts in _mapping_items(value, "publish"):
        container = _scalar(port, "publish keys")
        for host in hosts if isinstance(hosts, list) else [hosts]:
            if host is None:
                out.append(container)
            elif isinstance(host, tuple):
                if len(host) != 2:
                    raise ArgumentTypeError(f"publish[{port!r}]: expected (IP, PORT)")
                ip = _scalar(host[0], f"publish[{port!r}] address")
                host_port = "" if host[1] is None else _scalar(host[1], f"publish[{port!r}] port")
                out.append(f"{ip}:{host_port}:{container}")
            else:
                out.append(f"{_scalar(host, f'publish[{port!r}]')}:{container}")
    return out


def ulimits(value):
    """[{"name": N, "soft": S, "hard": H}] (docker-py's Ulimit, keys in any
    case) or ["N=S[:H]"]; the two may be mixed."""
    if not isinstance(value, (list, tuple)):
        return value
    out = []
    for i, item in enumerate(value):
        if _is_mapping(item):
            fields = {_key(k, f"ulimits[{i}]").lower(): v for k, v in _mapping_items(item, f"ulimits[{i}]")}
            name = fields.get("name")
            if not isinstance(name, str):
                raise ArgumentTypeError(f"ulimits[{i}]['name'] must be a string")
            if "soft" not in fields:
                raise ArgumentTypeError(f"ulimits[{i}] needs a 'soft' limit")
            soft = _scalar(fields["soft"], f"ulimits[{i}]['soft']")
            hard = fields.get("hard")
            item = f"{name}={soft}" + ("" if hard is None else f":{_scalar(hard, f'ulimits[{i}][hard]')}")
        out.append(item)
    return out


def devices(value):
    """["HOST[:CTR][:PERMS]"] or [{"PathOnHost", "PathInContainer", "CgroupPermissions"}]."""
    if not isinstance(value, (list, tuple)):
        return value
    out = []
    for i, item in enumerate(value):
        if _is_mapping(item):
            host = item.get("PathOnHost")
            if not isinstance(host, str):
                raise ArgumentTypeError(f"devices[{i}]['PathOnHost'] must be a string")
            parts = [host, item.get("PathInContainer") or host]
            if item.get("CgroupPermissions"):
                parts.append(item["CgroupPermissions"])
            for p in parts:
                if not isinstance(p, str):
                    raise ArgumentTypeError(f"devices[{i}] values must be strings")
            item = ":".join(parts)
        out.append(item)
    return out


def key_values(value, what, sep="="):
    """{"K": V} -> ["K=V"] (sysctls, log_opts); {"PATH": "OPTS"} -> ["PATH:OPTS"] (tmpfs)."""
    if not _is_mapping(value):
        return value
    out = []
    for k, v in _mapping_items(value, what):
        _key(k, what)
        v = _scalar(v, f"{what}[{k!r}]")
        out.append(f"{k}{sep}{v}" if v or sep == "=" else k)
    return out


def restart(value):
    """docker-py's restart_policy {"Name": ..., "MaximumRetryCount": N} or a str."""
    if not _is_mapping(value):
        return value
    name = value.get("Name", value.get("name"))
    if not isinstance(name, str):
        raise ArgumentTypeError("restart['Name'] must be a string")
    count = value.get("MaximumRetryCount", value.get("maximum_retry_count"))
    return f"{name}:{_scalar(count, 'restart[MaximumRetryCount]')}" if count else name


# the options that take one str for a list of one
ONE_OR_MORE = ("env_file", "label_file", "dns", "dns_search", "dns_opt", "expose")


def mounts(value):
    """docker-py's Mount dicts (the Engine API's shape) -> --mount's CSV."""
    if not isinstance(value, (list, tuple)):
        return value
    return [_mount_text(item, i) if _is_mapping(item) else item for i, item in enumerate(value)]


def _mount_text(item, i):
    fields = []
    for key, name in (("Type", "type"), ("Source", "source"), ("Target", "target")):
        if item.get(key) is not None:
            fields.append(f"{name}={_scalar(item[key], f'mounts[{i}][{key!r}]')}")
    if item.get("ReadOnly"):
        fields.append("readonly")
    propagation = (item.get("BindOptions") or {}).get("Propagation")
    if propagation:
        fields.append(f"bind-propagation={_scalar(propagation, f'mounts[{i}] Propagation')}")
    tmpfs = item.get("TmpfsOptions") or {}
    if tmpfs.get("SizeBytes") is not None:
        fields.append(f"tmpfs-size={_scalar(tmpfs['SizeBytes'], f'mounts[{i}] SizeBytes')}")
    if tmpfs.get("Mode") is not None:
        mode = tmpfs["Mode"]
        fields.append(f"tmpfs-mode={mode:o}" if isinstance(mode, int) else f"tmpfs-mode={mode}")
    return ",".join(fields)


def normalize(options):
    """Container.create's keyword arguments ({name: value}, changed in
    place): every docker-py shape above turned into the CLI's."""
    for name, convert in (("env", env), ("volumes", volumes), ("publish", publish),
                          ("ulimits", ulimits), ("devices", devices), ("restart", restart),
                          ("mounts", mounts)):
        if options.get(name) is not None:
            options[name] = convert(options[name])
    for name in ONE_OR_MORE:
        if isinstance(options.get(name), str):
            options[name] = [options[name]]
    if isinstance(options.get("expose"), (int, list, tuple)):  # docker-py's [80, "53/udp"]
        expose = options["expose"]
        options["expose"] = [_scalar(p, "expose") for p in (expose if isinstance(expose, (list, tuple))
                                                             else [expose])]
    if options.get("stop_signal") is not None:
        options["stop_signal"] = _scalar(options["stop_signal"], "stop_signal")
    for name, sep in (("sysctls", "="), ("log_opts", "="), ("tmpfs", ":"), ("labels", "="),
                      ("extra_hosts", ":")):
        if options.get(name) is not None:
            options[name] = key_values(options[name], name, sep)
    return options

