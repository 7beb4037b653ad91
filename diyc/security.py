"""Security defaults, docker's: 14 capabilities, masked and read-only /proc
and /sys paths, opt-outs (--privileged, --cap-add, --security-opt) explicit."""

from . import numbers
from .errors import InvalidArgument

# Index = capability number (linux/capability.h).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)

DEFAULT_CAPS = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)

READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def _cap_name(name):
    n = name.upper().removeprefix("CAP_")
    if n != "ALL" and n not in CAPABILITIES:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return n


def is_capability(name):
    """Whether `name` (CAP_X or X, any case) is a capability diyc knows."""
    return name.upper().removeprefix("CAP_") in CAPABILITIES


def capability_set(cap_add=(), cap_drop=()):
    """docker's --cap-add/--cap-drop on top of the default set.  ALL works
    on both sides: `--cap-add ALL --cap-drop X` is everything but X,
    `--cap-drop ALL --cap-add X` is X alone."""
    add = {_cap_name(c) for c in cap_add or ()}
    drop = {_cap_name(c) for c in cap_drop or ()}
    if "ALL" in add:
        caps = set(CAPABILITIES) - drop
    else:
        caps = (set() if "ALL" in drop else set(DEFAULT_CAPS) - drop) | add
    return [f"CAP_{c}" for c in CAPABILITIES if c in caps]


def process_capabilities(caps, uid):
    """OCI process.capabilities.  As docker does since CVE-2022-24769: the
    inheritable set is empty, and a non-root user starts with no effective or
    permitted capabilities (only the bounding set limits what it can gain)."""
    granted = list(caps) if uid == 0 else []
    return {"bounding": list(caps), "effective": granted, "permitted": granted,
            "inheritable": [], "ambient": []}


_MASKS = ("bounding", "effective", "permitted", "inheritable", "ambient")
_masks_of = {}  # the lists, as a key -> their masks (a start's, again and again)


def capability_masks(oci_caps):
    """OCI capability lists -> the bit masks the native init sets."""
    def mask(names):
        m = 0
        for n in names or ():
            m |= 1 << CAPABILITIES.index(_cap_name(n))
        return m
    key = tuple(tuple(oci_caps.get(k) or ()) for k in _MASKS)
    try:
        hash(key)
    except TypeError:  # (not names: mask() says what is wrong)
        return {k: mask(oci_caps.get(k)) for k in _MASKS}
    if key not in _masks_of:
        if len(_masks_of) >= 64:
            _masks_of.clear()
        _masks_of[key] = {k: mask(oci_caps.get(k)) for k in _MASKS}
    return dict(_masks_of[key])


_last_cap = []


def last_cap():
    """The kernel's highest capability (fixed while it runs: read once)."""
    if not _last_cap:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap.append(min(int(f.read()), len(CAPABILITIES) - 1))
        except OSError:
            return len(CAPABILITIES) - 1
    return _last_cap[0]


def parse_security_opts(opts):
    """--security-opt values -> {"no_new_privileges": bool, "seccomp": str|None}."""
    out = {"no_new_privileges": False, "seccomp": None, "seccomp_profile": None}
    for opt in opts or ():
        key, sep, value = opt.partition("=")
        if key in ("no-new-privileges", "no_new_privileges"):
            if value not in ("", "true", "false"):
                raise InvalidArgument(f"invalid --security-opt {opt!r}")
            out["no_new_privileges"] = value != "false"
        elif key == "seccomp" and sep:
            if value in ("unconfined", "default"):
                out["seccomp"] = value
            else:  # a profile file in docker's format
                from .seccomp import load_profile
                out["seccomp"] = "profile"
                out["seccomp_profile"] = load_profile(value)
        elif key in ("apparmor", "label"):
            raise InvalidArgument(f"--security-opt {key}= is not supported on this host")
        else:
            raise InvalidArgument(f"invalid --security-opt {opt!r}")
    return out


RLIMITS = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
    "nofile": 7, "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12,
    "nice": 13, "rtprio": 14, "rttime": 15,
}


def parse_ulimit(value):
    """docker's --ulimit NAME=SOFT[:HARD] -> OCI process.rlimits entry."""
    name, sep, limits = value.partition("=")
    if not sep or name not in RLIMITS:
        raise InvalidArgument(f"invalid --ulimit {value!r}: expected NAME=SOFT[:HARD], "
                              f"NAME one of {', '.join(RLIMITS)}")
    soft, sep, hard = limits.partition(":")
    soft_n = _rlimit_value(soft, value)
    hard_n = _rlimit_value(hard, value) if sep else soft_n
    if soft_n > hard_n:
        raise InvalidArgument(f"invalid --ulimit {value!r}: soft limit above hard limit")
    return {"type": f"RLIMIT_{name.upper()}", "soft": soft_n, "hard": hard_n}


def _rlimit_value(text, value):
    """docker's int64 limits; -1 is RLIM_INFINITY."""
    n = numbers.integer(text, f"--ulimit {numbers.shown(value)}: limit", -1, numbers.INT64_MAX)
    return numbers.UINT64_MAX if n == -1 else n


def native_rlimits(rlimits):
    return [(RLIMITS[r["type"].removeprefix("RLIMIT_").lower()], r["soft"], r["hard"])
            for r in rlimits or ()]


# Sysctls that only affect the container's own namespaces (docker's list):
# IPC keys need the IPC namespace, net.* the network namespace.
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def parse_sysctl(value, network):
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise InvalidArgument(f"invalid --sysctl {value!r}: expected KEY=VALUE")
    if key.startswith("net."):
        if network == "host":
            raise InvalidArgument(f"--sysctl {key}: not allowed with --network host "
                                  "(it would change the host)")
    elif key not in _IPC_SYSCTLS and not key.startswith("fs.mqueue."):
        raise InvalidArgument(f"--sysctl {key}: not a namespaced sysctl; refusing to change "
                              "the host's kernel")
    if "/" in key or ".." in key:
        raise InvalidArgument(f"invalid --sysctl key {key!r}")
    return key, val


def parse_device(value):
    """--device HOST[:CONTAINER][:PERMS] -> (OCI linux.devices entry, cgroup rule)."""
    import os
    import stat
    parts = value.split(":")
    host = parts[0]
    ctr = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    if not perms or set(perms) - set("rwm") or len(parts) > 3:
        raise InvalidArgument(f"invalid --device {value!r}: expected HOST[:CONTAINER][:rwm]")
    try:
        st = os.stat(host)
    except OSError as e:
        raise InvalidArgument(f"--device {host}: {e.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgument(f"--device {host}: not a device node")
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    device = {"path": ctr, "type": kind, "major": major, "minor": minor,
              "fileMode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0}
    rule = {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}
    return device, rule


def default_device_rules():
    """The devices cgroup: deny all, allow what /dev holds, and mknod (only
    mknod: a node made for a disk cannot be opened)."""
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "access": "m"},
             {"allow": True, "type": "b", "access": "m"}]
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2),
                         (136, None), (10, 200)):
        rules.append({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"})
    return rules


class SecurityOptions:
    """The security flags of `diyc run`, validated, and what they put into
    the container's spec."""

    def __init__(self, privileged=False, cap_add=(), cap_drop=(), security_opt=(), ulimits=(),
                 sysctls=(), oom_score_adj=None, devices=(), network="none"):
        opts = parse_security_opts(security_opt)
        self.privileged = privileged
        self.no_new_privileges = opts["no_new_privileges"]
        self.seccomp = "unconfined" if privileged else opts["seccomp"] or "default"
        self.seccomp_profile = None if privileged else opts["seccomp_profile"]
        self.caps = None if privileged else capability_set(cap_add, cap_drop)
        self.rlimits = [parse_ulimit(u) for u in ulimits or ()]
        self.sysctl = dict(parse_sysctl(s, network) for s in sysctls or ())
        self.oom_score_adj = _parse_oom_score_adj(oom_score_adj)
        extra = [parse_device(d) for d in devices or ()]
        self.devices = [d for d, _ in extra]
        self.device_rules = ([{"allow": True, "type": "a", "access": "rwm"}] if privileged
                             else default_device_rules() + [r for _, r in extra])

    def spec_fields(self, uid):
        """Keyword arguments of config.make_spec."""
        return {
            "capabilities": None if self.caps is None else process_capabilities(self.caps, uid),
            "no_new_privileges": self.no_new_privileges,
            "masked_paths": () if self.privileged else MASKED_PATHS,
            "readonly_paths": () if self.privileged else READONLY_PATHS,
            "rlimits": self.rlimits, "oom_score_adj": self.oom_score_adj,
            "sysctl": self.sysctl, "devices": self.devices,
        }


def _parse_oom_score_adj(value):
    if value is None:
        return None
    return numbers.integer(value, "--oom-score-adj", -1000, 1000)
