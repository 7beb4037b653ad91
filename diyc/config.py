"""The container configuration, modelled on the OCI runtime-spec
`config.json`: process, root, mounts, hostname, linux.namespaces,
linux.resources, maskedPaths, readonlyPaths.  `diyc run` turns its flags
into such a spec; an OCI-bundle front end can hand one in directly.

Also the parsing of user input (sizes, cpus, users) - all validated before
anything is created."""

from .errors import InvalidArgument

OCI_VERSION = "1.0.2"
DEFAULT_ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD = 100000
PID_MAX_LIMIT = 4194304  # the kernel's ceiling for pid numbers, and so for pids.max

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value, what="size"):
    """'64m', '1g', '512k', '1048576' -> bytes (docker's binary units)."""
    s = str(value).strip().lower()
    if s.endswith("b") and len(s) > 1 and s[-2] in "kmgt":
        s = s[:-1]
    unit = s[-1:] if s[-1:] in "kmgtb" else ""
    number = s[: len(s) - len(unit)]
    try:
        n = float(number)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {value!r} (expected a number with an optional unit b, k, m, g)") from None
    if n != n or n < 0 or n == float("inf") or n * _UNITS[unit] >= 1 << 63:
        raise InvalidArgument(f"invalid {what}: {value!r}")
    return int(n * _UNITS[unit])


def parse_memory(value):
    n = parse_size(value, "memory limit")
    if n < 6 * (1 << 20):
        raise InvalidArgument(f"invalid memory limit {value!r}: the minimum is 6m")
    return n


def parse_memory_swap(value, memory):
    """docker's --memory-swap: memory+swap in total, -1 for unlimited swap."""
    if str(value).strip() == "-1":
        return -1
    if memory is None:
        raise InvalidArgument("--memory-swap needs --memory as well")
    n = parse_size(value, "memory-swap")
    if n < memory:
        raise InvalidArgument("--memory-swap must be at least as large as --memory")
    return n


def parse_cpus(value):
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid --cpus value {value!r}: expected a number such as 0.5") from None
    # the kernel's smallest CFS quota is 1 ms per 100 ms period: 0.01 CPUs
    if not 0.01 <= n <= 1024:
        raise InvalidArgument(f"invalid --cpus value {value!r}: must be between 0.01 and 1024")
    return n


def parse_pids_limit(value):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid --pids-limit value {value!r}: expected an integer") from None
    if n == 0 or n < -1 or n > PID_MAX_LIMIT:
        raise InvalidArgument(f"invalid --pids-limit value {value!r}: use 1 to {PID_MAX_LIMIT}, "
                              "or -1 for unlimited")
    return n


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


def check_name(name):
    if not name or len(name) > 128 or not (name[0].isalnum() and name.isascii()) or \
            not all(c.isalnum() or c in "_.-" for c in name):
        raise InvalidArgument(f"invalid container name {name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    return name


def check_hostname(hostname):
    if not hostname or len(hostname) > 64 or not all(c.isalnum() or c in "-." for c in hostname):
        raise InvalidArgument(f"invalid hostname {hostname!r}")
    return hostname


def merge_env(image_env, overrides, host_env=None):
    """Image Env, then -e K=V (a bare -e K copies K from the host, as docker)."""
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
