"""seccomp profiles: docker's JSON format and the OCI `linux.seccomp`
object, resolved here to syscall numbers and kernel action values, then
compiled to BPF by _native.compile_seccomp and installed by the native
init as the last step before the capability drop.

DEFAULT_PROFILE is docker's default profile in effect, written as a deny
list: everything is allowed except what reaches kernel state shared with
the host (keys, modules, kexec, clock, swap, accounting, bpf, perf,
io_uring, handles) and, without CAP_SYS_ADMIN, mounts and new namespaces.
"""

import errno
import os

from .errors import InvalidArgument

ACTIONS = {
    "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_TRACE": 0x7FF00000,
}
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
NATIVE_ARCHES = {"amd64", "x86_64", "SCMP_ARCH_X86_64"}
_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

_ERRNO = {"action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM}
_ADMIN = {"excludes": {"caps": ["CAP_SYS_ADMIN"]}}

DEFAULT_PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        dict(_ERRNO, names=[
            "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load",
            "init_module", "finit_module", "delete_module", "open_by_handle_at", "acct",
            "iopl", "ioperm", "lookup_dcookie", "quotactl", "swapon", "swapoff", "reboot",
            "settimeofday", "clock_settime", "syslog", "uselib", "userfaultfd", "vhangup",
            "_sysctl", "bpf", "perf_event_open", "io_uring_setup", "io_uring_enter",
            "io_uring_register", "kcmp", "process_vm_readv", "process_vm_writev"]),
        dict(_ERRNO, **_ADMIN, names=[
            "mount", "umount2", "pivot_root", "setns", "unshare", "move_mount", "open_tree",
            "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "fanotify_init",
            "name_to_handle_at"]),
        # clone: threads and processes, not new namespaces
        dict(action="SCMP_ACT_ALLOW", names=["clone"], **_ADMIN, args=[
            {"index": 0, "value": _NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]),
        dict(_ERRNO, names=["clone"], **_ADMIN),
        # clone3 hides its flags behind a pointer: ENOSYS makes libc use clone
        dict(action="SCMP_ACT_ERRNO", errnoRet=errno.ENOSYS, names=["clone3"], **_ADMIN),
        # personality: Linux, +UNAME26, +ADDR_NO_RANDOMIZE, and the query
        *[dict(action="SCMP_ACT_ALLOW", names=["personality"],
               args=[{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}])
          for v in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)],
        dict(_ERRNO, names=["personality"]),
    ],
}


def _action(name, errno_ret):
    if name not in ACTIONS:
        raise InvalidArgument(f"seccomp profile: unknown action {name!r}")
    value = ACTIONS[name]
    if name == "SCMP_ACT_ERRNO":
        value |= (errno.EPERM if errno_ret is None else int(errno_ret)) & 0xFFFF
    return value


def _kernel_version():
    release = os.uname().release.split("-")[0]
    return tuple(int(p) for p in release.split(".")[:2] if p.isdigit())


def _applies(entry, caps):
    includes = entry.get("includes") or {}
    excludes = entry.get("excludes") or {}
    if includes.get("caps") and not set(includes["caps"]) <= caps:
        return False
    if excludes.get("caps") and set(excludes["caps"]) & caps:
        return False
    if includes.get("arches") and not set(includes["arches"]) & NATIVE_ARCHES:
        return False
    if excludes.get("arches") and set(excludes["arches"]) & NATIVE_ARCHES:
        return False
    if includes.get("minKernel"):
        wanted = tuple(int(p) for p in str(includes["minKernel"]).split(".")[:2])
        if _kernel_version() < wanted:
            return False
    return True


def resolve(profile, caps):
    """-> (default action, [(nr, action, conditions)]) for this machine and
    this container's capabilities.  Rules of a syscall keep their order,
    those with argument conditions first (an unconditional one decides
    only what no condition caught).  Unknown syscall names are skipped, as
    libseccomp does for names of other architectures."""
    from . import _native
    if not isinstance(profile, dict) or not isinstance(profile.get("syscalls", []), list):
        raise InvalidArgument("seccomp profile: expected an object with a syscalls list")
    default = _action(profile.get("defaultAction", "SCMP_ACT_ERRNO"), profile.get("defaultErrnoRet"))
    table = _native.syscall_table()
    by_nr = {}
    for entry in profile.get("syscalls") or ():
        if not _applies(entry, caps):
            continue
        action = _action(entry.get("action"), entry.get("errnoRet"))
        conds = []
        for a in entry.get("args") or ():
            if a.get("op") not in OPERATORS:
                raise InvalidArgument(f"seccomp profile: unknown operator {a.get('op')!r}")
            conds.append((int(a["index"]), OPERATORS[a["op"]], int(a.get("value", 0)),
                          int(a.get("valueTwo", 0))))
        names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
        for name in names:
            if name in table:
                by_nr.setdefault(table[name], []).append((action, conds))
    rules = []
    for nr in sorted(by_nr):
        ordered = [r for r in by_nr[nr] if r[1]] + [r for r in by_nr[nr] if not r[1]]
        rules += [(nr, action, conds) for action, conds in ordered]
    return default, rules


_compiled = {}


def compile_profile(profile, caps):
    """BPF bytes for `profile` (None: the built-in default) and `caps`.
    The default is compiled once per capability set per process."""
    caps = frozenset(caps)
    if profile is None and caps in _compiled:
        return _compiled[caps]
    from . import _native
    default, rules = resolve(DEFAULT_PROFILE if profile is None else profile, caps)
    try:
        program = _native.compile_seccomp(default, rules)
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"seccomp profile: {e}") from None
    if profile is None:
        _compiled[caps] = program
    return program


# What a pool's held init calls between its release and its execve
# (pooled.c's receive_process, spawn.c's finish_and_exec: process.c,
# caps.c; a failure's report and exit too).  A filter that lets each of
# these through, whatever the arguments, can go on while it waits.
HELD_CALLS = ("recvmsg", "sendmsg", "write", "fstat", "newfstatat", "stat", "mmap", "munmap",
              "close", "close_range", "dup2", "dup3", "fcntl", "chdir", "mkdir", "mkdirat",
              "setrlimit", "prlimit64", "getrlimit", "prctl", "setgroups", "setresgid",
              "setresuid", "capset", "capget", "access", "faccessat", "faccessat2", "umask",
              "rt_sigprocmask", "execve", "exit", "exit_group")
_allowing = {}


def allows_all(profile, caps, names):
    """Whether `profile` (None: the built-in default) resolved for `caps`
    lets every call of `names` through, whatever its arguments."""
    caps = frozenset(caps)
    if profile is None and (caps, names) in _allowing:
        return _allowing[caps, names]
    from . import _native
    default, rules = resolve(DEFAULT_PROFILE if profile is None else profile, caps)
    allow, table = ACTIONS["SCMP_ACT_ALLOW"], _native.syscall_table()
    by_nr = {}
    for nr, action, conds in rules:
        by_nr.setdefault(nr, []).append((action, conds))
    # every rule of the call allows, and so does the default unless one
    # of them catches every call (no conditions)
    allowed = all(all(action == allow for action, _ in by_nr.get(table[name], ())) and
                  (default == allow or any(not conds for _, conds in by_nr.get(table[name], ())))
                  for name in names if name in table)
    if profile is None:
        _allowing[caps, names] = allowed
    return allowed


def load_profile(path):
    """A docker-format profile file (--security-opt seccomp=FILE)."""
    import json
    try:
        with open(path) as f:
            profile = json.load(f)
    except OSError as e:
        raise InvalidArgument(f"seccomp profile {path}: {e.strerror}") from None
    except ValueError as e:
        raise InvalidArgument(f"seccomp profile {path}: not valid JSON ({e})") from None
    resolve(profile, frozenset())  # validate now, not in the middle of a start
    return profile
