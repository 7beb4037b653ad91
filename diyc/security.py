"""Security defaults, docker's: 14 capabilities, masked and read-only /proc
and /sys paths, opt-outs (--privileged, --cap-add, --security-opt) explicit."""

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


def capability_masks(oci_caps):
    """OCI capability lists -> the bit masks the native init sets."""
    def mask(names):
        m = 0
        for n in names or ():
            m |= 1 << CAPABILITIES.index(_cap_name(n))
        return m
    return {k: mask(oci_caps.get(k)) for k in ("bounding", "effective", "permitted",
                                               "inheritable", "ambient")}


def last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return min(int(f.read()), len(CAPABILITIES) - 1)
    except OSError:
        return len(CAPABILITIES) - 1


def parse_security_opts(opts):
    """--security-opt values -> {"no_new_privileges": bool, "seccomp": str|None}."""
    out = {"no_new_privileges": False, "seccomp": None}
    for opt in opts or ():
        key, sep, value = opt.partition("=")
        if key in ("no-new-privileges", "no_new_privileges"):
            if value not in ("", "true", "false"):
                raise InvalidArgument(f"invalid --security-opt {opt!r}")
            out["no_new_privileges"] = value != "false"
        elif key == "seccomp" and sep:
            if value not in ("unconfined", "default"):
                raise InvalidArgument(f"--security-opt seccomp={value}: custom profiles are not "
                                      "supported yet (use default or unconfined)")
            out["seccomp"] = value
        elif key in ("apparmor", "label"):
            raise InvalidArgument(f"--security-opt {key}= is not supported on this host")
        else:
            raise InvalidArgument(f"invalid --security-opt {opt!r}")
    return out
