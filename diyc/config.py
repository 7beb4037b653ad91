"""The container configuration, modelled on the OCI runtime-spec
`config.json`: process, root, mounts, hostname, linux.namespaces,
linux.resources, maskedPaths, readonlyPaths.  `diyc run` turns its flags
into such a spec; an OCI-bundle front end can hand one in directly.

Also the checks of user input (sizes, cpus, strings without NUL bytes) and
of the image's config, untrusted JSON, where it becomes the container's -
all before anything is created."""

from . import numbers
from .errors import ArgumentTypeError, InvalidArgument

OCI_VERSION = "1.0.2"
DEFAULT_ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD = 100000
PID_MAX_LIMIT = 4194304  # the kernel's ceiling for pid numbers, and so for pids.max

def parse_size(value, what="size"):
    """'64m', '1g', '512k', '1048576' -> bytes (docker's binary units)."""
    return numbers.size(value, what)


def parse_memory(value):
    n = parse_size(value, "memory limit")
    if n < 6 * (1 << 20):
        raise InvalidArgument(f"invalid memory limit {value!r}: the minimum is 6m")
    return n


def parse_memory_swap(value, memory):
    """docker's --memory-swap: memory+swap in total, -1 for unlimited swap."""
    if value in ("-1", -1):
        return -1
    if memory is None:
        raise InvalidArgument("--memory-swap needs --memory as well")
    n = parse_size(value, "memory-swap")
    if n < memory:
        raise InvalidArgument("--memory-swap must be at least as large as --memory")
    return n


def parse_cpus(value):
    # the kernel's smallest CFS quota is 1 ms per 100 ms period: 0.01 CPUs
    return numbers.decimal(value, "--cpus value", 0.01, 1024)


def parse_pids_limit(value):
    n = numbers.integer(value, "--pids-limit value", -1, PID_MAX_LIMIT)
    if n == 0:
        raise InvalidArgument(f"invalid --pids-limit value {value!r}: use 1 to {PID_MAX_LIMIT}, "
                              "or -1 for unlimited")
    return n


# -- strings from untrusted or library input -----------------------------------
# The kernel takes C strings: a NUL byte would silently cut an argument, an
# environment entry or a path short.  JSON and Python strings can hold one.

def check_text(value, what):
    """A str without NUL bytes."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{what} must be a string, not {type(value).__name__}")
    if "\0" in value:
        raise InvalidArgument(f"{what} contains a NUL byte")
    return value


def check_text_list(value, what):
    """A list (or tuple) of str without NUL bytes -> list."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ArgumentTypeError(f"{what} must be a list of strings")
    for i, v in enumerate(value):
        if "\0" in v:
            raise InvalidArgument(f"{what}[{i}] contains a NUL byte")
    return list(value)


def nul_field(obj, where=""):
    """The JSON path of the first string (key or value) in `obj` holding a
    NUL byte, or None: for whole documents such as an OCI spec."""
    if isinstance(obj, str):
        return where or "value" if "\0" in obj else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{where}.{k}" if where else str(k)
            if isinstance(k, str) and "\0" in k:
                return path
            found = nul_field(v, path)
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = nul_field(v, f"{where}[{i}]")
            if found:
                return found
    return None


# What Container.create takes from a library caller (the CLI only ever
# passes str): each must be a str (or None), or a list of str.
_TEXT_ARGUMENTS = ("image", "name", "hostname", "workdir", "user", "network", "ip",
                   "cgroup_parent", "restart", "userns", "stop_signal", "pull", "platform")
_LIST_ARGUMENTS = ("command", "env", "publish", "expose", "cap_add", "cap_drop", "security_opt", "ulimits",
                   "sysctls", "devices", "tmpfs", "log_opts", "volumes", "env_file", "labels",
                   "label_file", "extra_hosts", "dns", "dns_search", "dns_opt", "mounts")


def check_run_arguments(arguments):
    """Type and NUL checks of Container.create's arguments ({name: value}),
    so a wrong type is an ArgumentTypeError naming it (a TypeError and an
    InvalidArgument), not a TypeError from deep inside (or a str taken
    letter by letter)."""
    for name in _TEXT_ARGUMENTS:
        if arguments.get(name) is not None:
            check_text(arguments[name], name)
    for name in _LIST_ARGUMENTS:
        if arguments.get(name) is not None:
            check_text_list(arguments[name], name)
    entrypoint = arguments.get("entrypoint")
    if isinstance(entrypoint, str):
        check_text(entrypoint, "entrypoint")
    elif entrypoint is not None:
        check_text_list(entrypoint, "entrypoint")


# -- the image's config ------------------------------------------------------------

def _str_slice(value, field):
    """Cmd, Entrypoint: a list of strings, or one string taken as a list of
    one (as moby's StrSlice reads them: no splitting at spaces)."""
    if value is None:
        return None
    return check_text_list([value] if isinstance(value, str) else value, f"image config: {field}")


def _optional_text(value, field):
    return None if value is None else check_text(value, f"image config: {field}")


def _string_map(value, field, values_are_objects=False):
    """Labels ({str: str}), ExposedPorts and Volumes ({str: {}})."""
    if value is None:
        return None
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and "\0" not in k and (
            (v is None or isinstance(v, dict)) if values_are_objects else isinstance(v, str))
        for k, v in value.items())
    if not ok:
        kind = "objects" if values_are_objects else "strings"
        raise InvalidArgument(f"image config: {field} must be an object of {kind}")
    return value


def image_run_config(image_config):
    """The part of an image's config (untrusted JSON from a registry or an
    archive) that a run uses, validated once here, where it becomes the
    container's: {"Entrypoint", "Cmd": list or None, "Env": list,
    "User", "WorkingDir", "StopSignal": str or None, "Labels": dict}.  Wrong types are
    refused naming the field rather than taken apart (a string Env read
    letter by letter)."""
    if not isinstance(image_config, dict):
        raise InvalidArgument("image config: must be a JSON object")
    cfg = image_config.get("config")
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise InvalidArgument("image config: config must be a JSON object")
    env = cfg.get("Env")
    out = {
        "Entrypoint": _str_slice(cfg.get("Entrypoint"), "Entrypoint"),
        "Cmd": _str_slice(cfg.get("Cmd"), "Cmd"),
        "Env": [] if env is None else check_text_list(env, "image config: Env"),
        "User": _optional_text(cfg.get("User"), "User"),
        "WorkingDir": _optional_text(cfg.get("WorkingDir"), "WorkingDir"),
        "StopSignal": _optional_text(cfg.get("StopSignal"), "StopSignal"),
        "Labels": _string_map(cfg.get("Labels"), "Labels") or {},
    }
    out["ExposedPorts"] = list(_string_map(cfg.get("ExposedPorts"), "ExposedPorts", values_are_objects=True) or ())
    out["Volumes"] = list(_string_map(cfg.get("Volumes"), "Volumes", values_are_objects=True) or ())
    for field in ("Shell", "OnBuild"):
        if cfg.get(field) is not None:
            check_text_list(cfg[field], f"image config: {field}")
    return out


def parse_tmpfs(value):
    """--tmpfs PATH[:OPTIONS] -> an OCI tmpfs mount.  size= and mode= are
    checked here (docker's grammar), not left to the kernel's EINVAL."""
    path, _, options = value.partition(":")
    if not path.startswith("/") or ".." in path.split("/"):
        raise InvalidArgument(f"invalid --tmpfs path {path!r}: must be absolute")
    opts = ["nosuid", "nodev"]
    for opt in options.split(","):
        if not opt:
            continue
        key, sep, val = opt.partition("=")
        if key == "size" and sep:
            opt = f"size={parse_size(val, '--tmpfs size')}"
        elif key == "mode" and sep:
            if not val or len(val) > 4 or not all(c in "01234567" for c in val):
                raise InvalidArgument(f"invalid --tmpfs mode {val!r}: expected octal such as 1777")
        elif key in ("nr_inodes", "nr_blocks") and sep:
            opt = f"{key}={numbers.size(val, f'--tmpfs {key}')}"
        opts.append(opt)
    return {"destination": path, "type": "tmpfs", "source": "tmpfs", "options": opts}


def resources(memory=None, memory_swap=None, cpus=None, pids_limit=None):
    """OCI linux.resources from docker-style values (already parsed)."""
    res = {}
    if memory is not None:
        swap = memory_swap if memory_swap is not None else 2 * memory  # docker's default
        res["memory"] = {"limit": memory, "swap": swap}
    if cpus is not None:
        res["cpu"] = {"quota": int(cpus * CPU_PERIOD), "period": CPU_PERIOD}
    if pids_limit is not None:
        res["pids"] = {"limit": pids_limit}
    return res


def parse_restart_policy(value):
    """docker's --restart no|on-failure[:N]|always|unless-stopped."""
    if value in (None, "", "no"):
        return {"name": "no", "max_retries": 0}
    name, _, count = value.partition(":")
    if name not in ("on-failure", "always", "unless-stopped") or (count and name != "on-failure"):
        raise InvalidArgument(f"invalid --restart {value!r}: expected no, on-failure[:N], always "
                              "or unless-stopped")
    retries = numbers.integer(count, f"--restart {numbers.shown(value)}: N", 0,
                              numbers.INT64_MAX) if count else 0
    return {"name": name, "max_retries": retries}


def check_name(name, kind="container", max_length=128):
    """A container's, network's or volume's name: docker's rule for all
    three, [a-zA-Z0-9][a-zA-Z0-9_.-]*, ASCII, at most `max_length`."""
    if not name or len(name) > max_length or not (name[0].isalnum() and name.isascii()) or \
            not all(c.isalnum() or c in "_.-" for c in name):
        raise InvalidArgument(f"invalid {kind} name {name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]* "
                              f"(at most {max_length} characters)")
    return name


def check_hostname(hostname):
    if not hostname or len(hostname) > 64 or not hostname.isascii() or \
            not all(c.isalnum() or c in "-." for c in hostname):
        raise InvalidArgument(f"invalid hostname {hostname!r}")
    return hostname


def merge_env(image_env, overrides, host_env=None):
    """Image Env, then -e K=V (a bare -e K copies K from the host, as docker;
    and as docker, unsets K when the host has none: the image's K too)."""
    env = {}
    for item in image_env or ():
        k, _, v = item.partition("=")
        env[k] = v
    for item in overrides or ():
        k, sep, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid environment variable {item!r}")
        if sep:
            env[k] = v
        elif host_env is not None and k in host_env:
            env[k] = host_env[k]
        else:
            env.pop(k, None)
    env.setdefault("PATH", DEFAULT_ENV_PATH)
    return [f"{k}={v}" for k, v in env.items()]


def default_namespaces(network="none"):
    ns = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if network != "host":
        ns.append({"type": "network"})
    return ns


def default_mounts():
    """The mounts every container gets, as in runc's default spec, except
    that /dev is a fresh tmpfs holding only the devices we create."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]


def make_spec(args, *, env, cwd="/", uid=0, gid=0, groups=(), hostname=None,
              rootfs, readonly=False, network="none", res=None, mounts=None,
              capabilities=None, no_new_privileges=False, masked_paths=(), readonly_paths=(),
              rlimits=(), oom_score_adj=None, sysctl=None, devices=()):
    """A runtime-spec config for one container.  capabilities=None keeps
    every capability (privileged)."""
    process = {
        "terminal": False,
        "user": {"uid": uid, "gid": gid, "additionalGids": list(groups)},
        "args": list(args),
        "env": list(env),
        "cwd": cwd or "/",
        "noNewPrivileges": no_new_privileges,
    }
    if capabilities is not None:
        process["capabilities"] = capabilities
    if rlimits:
        process["rlimits"] = list(rlimits)
    if oom_score_adj is not None:
        process["oomScoreAdj"] = oom_score_adj
    return {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": readonly},
        "hostname": hostname,
        "mounts": default_mounts() + list(mounts or ()),
        "linux": {
            "namespaces": default_namespaces(network),
            "resources": res or {},
            "maskedPaths": list(masked_paths),
            "readonlyPaths": list(readonly_paths),
            "sysctl": dict(sysctl or {}),
            "devices": list(devices),
        },
    }
