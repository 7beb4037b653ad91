# cython: language_level=3
"""diyc._native: thin wrappers over the container-init C code and the few
syscalls Python 3.11 lacks.  Like psutil's C layer: no policy here, errors
surface as OSError with errno, or as plain tuples for Python to interpret."""

from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.errno cimport errno
from libc.string cimport strerror
from posix.types cimport pid_t, uid_t, gid_t, mode_t, dev_t

import os

cdef extern from "<sched.h>":
    int c_setns "setns"(int fd, int nstype) nogil
    int c_unshare "unshare"(int flags) nogil
    enum:
        CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET,
        CLONE_NEWCGROUP, CLONE_NEWUSER

cdef extern from "<sys/mount.h>":
    int c_umount2 "umount2"(const char *target, int flags) nogil
    enum:
        MNT_DETACH
    enum:
        MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT,
        MS_MANDLOCK, MS_DIRSYNC, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE,
        MS_REC, MS_SILENT, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED,
        MS_RELATIME, MS_STRICTATIME, MS_LAZYTIME

cdef extern from "<linux/openat2.h>":
    struct open_how:
        unsigned long long flags
        unsigned long long mode
        unsigned long long resolve
    enum:
        RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH,
        RESOLVE_IN_ROOT

cdef extern from "<sys/syscall.h>":
    enum:
        SYS_openat2

cdef extern from "<unistd.h>":
    long c_syscall "syscall"(long number, ...) nogil

cdef extern from "syscall_table.h":
    const char *syscall_name "DIYC_SYSCALL_NAME"(int i)
    int syscall_nr "DIYC_SYSCALL_NR"(int i)
    int syscall_count "DIYC_SYSCALL_COUNT"

cdef extern from "diyc.h":
    const char *DIYC_INIT_DIED
    const char *DIYC_INIT_COMM
    struct diyc_error:
        char step[32]
        int errnum
        char detail[224]
    struct diyc_mount:
        const char *source
        const char *target
        const char *fstype
        const char *data
        unsigned long flags
        unsigned long propagation
        int is_file
    struct diyc_device:
        const char *path
        mode_t mode
        dev_t rdev
    struct diyc_symlink:
        const char *target
        const char *linkpath
    struct diyc_init:
        int clone_flags
        int new_cgroupns
        const int *cgroup_fds
        int n_cgroup_fds
        int loopback_up
        const char *rootfs
        const char *overlay_options
        const char *scratch
        const char *scratch_options
        int readonly_root
        unsigned long rootfs_propagation
        diyc_mount *mounts
        int n_mounts
        diyc_device *devices
        int n_devices
        diyc_symlink *symlinks
        int n_symlinks
        const char **masked_paths
        int n_masked
        const char **readonly_paths
        int n_readonly
        const char *hostname
        const char *domainname
        char *const *argv
        char *const *envp
        const char *cwd
        mode_t umask
        uid_t uid
        gid_t gid
        const gid_t *groups
        int n_groups
        int stdio[3]
        int preserve_fds
        int set_caps
        int last_cap
        unsigned long long cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient
        int no_new_privs
        const void *seccomp_filter
        int seccomp_len
        diyc_rlimit *rlimits
        int n_rlimits
        const char *oom_score_adj
        const char **sysctl_paths
        const char **sysctl_values
        int n_sysctls
        char *const *supervisor_argv
        const int *join_ns_fds
        int n_join_ns
        int pid_fd
        int join_mnt_fd
        int start_fifo_fd
        int report_fifo_fd
        diyc_hook *create_hooks
        int n_create_hooks
        diyc_hook *start_hooks
        int n_start_hooks
        const char *hook_state[3]
        int userns
        int layer_sock
        int n_layers
        const char **reopen_paths
        const int *reopen_fds
        int n_reopen
        int console_fd
        int console_recv_fd
    struct diyc_hook:
        const char *path
        char *const *argv
        char *const *envp
        int timeout
    struct diyc_rlimit:
        int resource
        unsigned long long soft, hard
    struct diyc_seccomp_cond:
        int arg
        int op
        unsigned long long value, value_two
    struct diyc_seccomp_rule:
        int nr
        unsigned int action
        int n_conds
        diyc_seccomp_cond conds[6]
    int DIYC_SECCOMP_MAX_CONDS
    struct sock_filter:
        pass
    struct diyc_device_rule:
        int allow
        int type
        long major, minor
        int access
    int diyc_device_filter(const diyc_device_rule *rules, int n_rules, int cgroup_fd,
                           diyc_error *err)
    int diyc_seccomp_compile(unsigned int default_action, const diyc_seccomp_rule *rules,
                             int n_rules, sock_filter *out, int max, diyc_error *err)
    struct diyc_child:
        pid_t pid
        pid_t supervisor
        int release_fd
        int error_fd
    int diyc_spawn(diyc_init *init, diyc_child *child, diyc_error *err) nogil
    int diyc_idmapped_tree(const char *path, int userns_fd)
    int diyc_release(diyc_child *child, diyc_error *err) nogil
    int diyc_wait_exec(diyc_child *child, diyc_error *err) nogil


cdef object _oserror(diyc_error *err):
    step = err.step.decode()
    detail = err.detail.decode(errors="surrogateescape")
    e = OSError(err.errnum, f"{step}: {strerror(err.errnum).decode()}", detail or None)
    e.step = step
    return e


cdef class _Arena:
    """Owns the C memory of one diyc_init until clone() has copied it."""
    cdef list keep
    cdef list blocks

    def __cinit__(self):
        self.keep = []
        self.blocks = []

    cdef const char *str(self, s) except? NULL:
        if s is None:
            return NULL
        b = os.fsencode(s)
        self.keep.append(b)
        return <const char *>b

    cdef void *alloc(self, size_t n, size_t size) except NULL:
        cdef void *p = PyMem_Calloc(n + 1, size)
        if p == NULL:
            raise MemoryError()
        self.blocks.append(<size_t>p)
        return p

    cdef int hooks(self, hooks, diyc_hook **out) except -1:
        cdef diyc_hook *h = <diyc_hook *>self.alloc(len(hooks), sizeof(diyc_hook))
        for i, (path, args, env, timeout) in enumerate(hooks):
            h[i].path = self.str(path)
            h[i].argv = self.strv(args)
            h[i].envp = self.strv(env)
            h[i].timeout = timeout or 0
        out[0] = h
        return len(hooks)

    cdef int *ints(self, items) except NULL:
        cdef int *v = <int *>self.alloc(len(items), sizeof(int))
        for i, x in enumerate(items):
            v[i] = x
        return v

    cdef const void *bytes_ptr(self, bytes b):
        self.keep.append(b)
        return <const char *>b

    cdef char **strv(self, items) except NULL:
        cdef char **v = <char **>self.alloc(len(items), sizeof(char *))
        for i, s in enumerate(items):
            v[i] = <char *>self.str(s)
        return v

    def __dealloc__(self):
        for p in self.blocks:
            PyMem_Free(<void *><size_t>p)


def spawn(dict init):
    """Clone a container init process described by `init`.

    Returns (pid, release_fd, error_fd, supervisor_pid).  The child prepares
    its root filesystem, then waits until release(release_fd); wait_exec(
    error_fd) then tells whether execve succeeded.  With "supervisor_argv",
    a forked supervisor (pid returned, 0 otherwise) is the child's parent."""
    cdef _Arena arena = _Arena()
    cdef diyc_init c
    cdef diyc_child child
    cdef diyc_error err
    cdef int i, r

    c.clone_flags = init["clone_flags"]
    c.new_cgroupns = init.get("new_cgroupns", False)
    c.loopback_up = init.get("loopback_up", False)
    cgroup_fds = init.get("cgroup_fds", ())
    c.n_cgroup_fds = len(cgroup_fds)
    c.cgroup_fds = arena.ints(cgroup_fds)
    c.rootfs = arena.str(init["rootfs"])
    c.overlay_options = arena.str(init.get("overlay_options"))
    c.scratch = arena.str(init.get("scratch"))
    c.scratch_options = arena.str(init.get("scratch_options") or "mode=0755")
    c.readonly_root = init.get("readonly_root", False)
    c.rootfs_propagation = init.get("rootfs_propagation", 0)

    mounts = init.get("mounts", ())
    c.n_mounts = len(mounts)
    c.mounts = <diyc_mount *>arena.alloc(c.n_mounts, sizeof(diyc_mount))
    for i, (source, target, fstype, data, flags, propagation, is_file) in enumerate(mounts):
        c.mounts[i].source = arena.str(source)
        c.mounts[i].target = arena.str(target)
        c.mounts[i].fstype = arena.str(fstype)
        c.mounts[i].data = arena.str(data)
        c.mounts[i].flags = flags
        c.mounts[i].propagation = propagation
        c.mounts[i].is_file = is_file

    devices = init.get("devices", ())
    c.n_devices = len(devices)
    c.devices = <diyc_device *>arena.alloc(c.n_devices, sizeof(diyc_device))
    for i, (path, mode, rdev) in enumerate(devices):
        c.devices[i].path = arena.str(path)
        c.devices[i].mode = mode
        c.devices[i].rdev = rdev

    symlinks = init.get("symlinks", ())
    c.n_symlinks = len(symlinks)
    c.symlinks = <diyc_symlink *>arena.alloc(c.n_symlinks, sizeof(diyc_symlink))
    for i, (target, linkpath) in enumerate(symlinks):
        c.symlinks[i].target = arena.str(target)
        c.symlinks[i].linkpath = arena.str(linkpath)

    masked = init.get("masked_paths", ())
    c.n_masked = len(masked)
    c.masked_paths = <const char **>arena.strv(masked)
    readonly = init.get("readonly_paths", ())
    c.n_readonly = len(readonly)
    c.readonly_paths = <const char **>arena.strv(readonly)

    c.hostname = arena.str(init.get("hostname"))
    c.domainname = arena.str(init.get("domainname"))
    c.argv = arena.strv(init["argv"])
    c.envp = arena.strv(init.get("env", ()))
    c.cwd = arena.str(init.get("cwd", "/"))
    c.umask = init.get("umask", 0o022)
    c.uid = init.get("uid", 0)
    c.gid = init.get("gid", 0)
    groups = init.get("groups", ())
    c.n_groups = len(groups)
    cdef gid_t *gids = <gid_t *>arena.alloc(c.n_groups, sizeof(gid_t))  # unsigned: not ints()
    for i, g in enumerate(groups):
        gids[i] = g
    c.groups = gids
    c.preserve_fds = init.get("preserve_fds", 0)
    stdio = init.get("stdio", (-1, -1, -1))
    for i in range(3):
        c.stdio[i] = stdio[i] if stdio[i] is not None else -1

    caps = init.get("capabilities")
    c.set_caps = caps is not None
    c.last_cap = init.get("last_cap", 40)
    if caps is not None:
        c.cap_bounding = caps["bounding"]
        c.cap_effective = caps["effective"]
        c.cap_permitted = caps["permitted"]
        c.cap_inheritable = caps["inheritable"]
        c.cap_ambient = caps["ambient"]
    c.no_new_privs = init.get("no_new_privs", False)
    seccomp = init.get("seccomp_filter")
    c.seccomp_len = len(seccomp) // 8 if seccomp else 0
    c.seccomp_filter = arena.bytes_ptr(seccomp) if seccomp else NULL
    rlimits = init.get("rlimits", ())
    c.n_rlimits = len(rlimits)
    c.rlimits = <diyc_rlimit *>arena.alloc(c.n_rlimits, sizeof(diyc_rlimit))
    for i, (resource, soft, hard) in enumerate(rlimits):
        c.rlimits[i].resource = resource
        c.rlimits[i].soft = soft
        c.rlimits[i].hard = hard
    oom = init.get("oom_score_adj")
    c.oom_score_adj = arena.str(None if oom is None else str(oom))
    sysctls = init.get("sysctls", ())
    c.n_sysctls = len(sysctls)
    c.sysctl_paths = <const char **>arena.strv([p for p, _ in sysctls])
    c.sysctl_values = <const char **>arena.strv([v for _, v in sysctls])

    join = init.get("join_ns_fds", ())
    c.n_join_ns = len(join)
    c.join_ns_fds = arena.ints(join)
    c.pid_fd = init.get("pid_fd", -1)
    c.join_mnt_fd = init.get("join_mnt_fd", -1)
    c.start_fifo_fd = init.get("start_fifo_fd", -1)
    c.report_fifo_fd = init.get("report_fifo_fd", -1)
    c.n_create_hooks = arena.hooks(init.get("create_hooks", ()), &c.create_hooks)
    c.n_start_hooks = arena.hooks(init.get("start_hooks", ()), &c.start_hooks)
    state = init.get("hook_state") or ("", "", "")
    for i in range(3):
        c.hook_state[i] = arena.str(state[i])
    c.userns = init.get("userns", False)
    c.layer_sock = init.get("layer_sock", -1)
    c.n_layers = init.get("n_layers", 0)
    reopen = init.get("reopen", ())
    c.n_reopen = len(reopen)
    c.reopen_paths = <const char **>arena.strv([p for p, _ in reopen])
    c.reopen_fds = arena.ints([fd for _, fd in reopen])
    c.console_fd = init.get("console_fd", -1)
    c.console_recv_fd = init.get("console_recv_fd", -1)
    supervisor = init.get("supervisor_argv")
    c.supervisor_argv = arena.strv(supervisor) if supervisor else NULL

    with nogil:
        r = diyc_spawn(&c, &child, &err)
    if r < 0:
        raise _oserror(&err)
    return child.pid, child.release_fd, child.error_fd, child.supervisor


def release(int release_fd):
    """Let the child go on to execve (closes release_fd)."""
    cdef diyc_child child
    cdef diyc_error err
    child.release_fd = release_fd
    if diyc_release(&child, &err) < 0:
        raise _oserror(&err)


def wait_exec(int error_fd):
    """Block until the child has called execve (returns None) or failed
    (returns (step, errno, detail)); ("init_died", 0, "") when it died
    without a word (a signal, the OOM killer).  Closes error_fd."""
    cdef diyc_child child
    cdef diyc_error err
    cdef int r
    child.error_fd = error_fd
    with nogil:
        r = diyc_wait_exec(&child, &err)
    if r == 0:
        return None
    return (err.step.decode(), err.errnum, err.detail.decode(errors="surrogateescape"))


INIT_DIED = DIYC_INIT_DIED.decode()  # wait_exec's step for an init that died without a word
INIT_COMM = DIYC_INIT_COMM.decode()  # the init's name until execve


def syscall_table():
    """{name: number} of this architecture's system calls."""
    return {syscall_name(i).decode(): syscall_nr(i) for i in range(syscall_count)}


def compile_seccomp(unsigned int default_action, rules):
    """A seccomp BPF program (bytes) from resolved rules: a list of
    (syscall number, SECCOMP_RET_* action, [(arg, op, value, value_two)...]),
    the rules of one syscall adjacent, first match wins."""
    cdef int n = len(rules), i, j, r
    cdef int max_insns = 4096
    cdef diyc_seccomp_rule *c_rules = <diyc_seccomp_rule *>PyMem_Calloc(n + 1, sizeof(diyc_seccomp_rule))
    cdef bytearray out = bytearray(8 * max_insns)
    cdef char *buf = out
    cdef diyc_error err
    if c_rules == NULL:
        raise MemoryError()
    try:
        for i, (nr, action, conds) in enumerate(rules):
            if len(conds) > DIYC_SECCOMP_MAX_CONDS:
                raise ValueError(f"syscall {nr}: more than {DIYC_SECCOMP_MAX_CONDS} argument conditions")
            c_rules[i].nr = nr
            c_rules[i].action = action
            c_rules[i].n_conds = len(conds)
            for j, (arg, op, value, value_two) in enumerate(conds):
                c_rules[i].conds[j].arg = arg
                c_rules[i].conds[j].op = op
                c_rules[i].conds[j].value = value
                c_rules[i].conds[j].value_two = value_two
        r = diyc_seccomp_compile(default_action, c_rules, n, <sock_filter *>buf, max_insns, &err)
    finally:
        PyMem_Free(c_rules)
    if r < 0:
        raise _oserror(&err)
    return bytes(out[:8 * r])


def idmapped_tree(path, int userns_fd):
    """A detached mount of `path` whose ids are shown through the user
    namespace `userns_fd` (open_tree + mount_setattr).  -> fd"""
    b = os.fsencode(path)
    fd = diyc_idmapped_tree(b, userns_fd)
    if fd < 0:
        raise OSError(errno, strerror(errno).decode(), path)
    return fd


def attach_device_filter(int cgroup_fd, rules):
    """Build the cgroup v2 device filter (eBPF) for `rules` - a list of
    (allow, type 'a'|'b'|'c', major or -1, minor or -1, access string of
    r, w, m) - and attach it to the cgroup directory `cgroup_fd`."""
    cdef int n = len(rules), i
    cdef diyc_device_rule *c_rules = <diyc_device_rule *>PyMem_Calloc(n + 1, sizeof(diyc_device_rule))
    cdef diyc_error err
    cdef int r
    if c_rules == NULL:
        raise MemoryError()
    try:
        for i, (allow, kind, major, minor, access) in enumerate(rules):
            c_rules[i].allow = allow
            c_rules[i].type = ord(kind)
            c_rules[i].major = major
            c_rules[i].minor = minor
            c_rules[i].access = (("m" in access) * 1) | (("r" in access) * 2) | (("w" in access) * 4)
        r = diyc_device_filter(c_rules, n, cgroup_fd, &err)
    finally:
        PyMem_Free(c_rules)
    if r < 0:
        raise _oserror(&err)


def setns(int fd, int nstype=0):
    if c_setns(fd, nstype) < 0:
        raise OSError(errno, strerror(errno).decode())


def umount_detach(path):
    """umount2(path, MNT_DETACH): the mount and everything below it."""
    if c_umount2(path.encode(), MNT_DETACH) < 0:
        raise OSError(errno, strerror(errno).decode(), path)


def unshare(int flags):
    if c_unshare(flags) < 0:
        raise OSError(errno, strerror(errno).decode())


def openat2(int dirfd, path, int flags, unsigned long long resolve, int mode=0):
    """openat2(2): open `path` relative to `dirfd` with the RESOLVE_* limits
    `resolve` (O_CLOEXEC is added) -> fd."""
    b = os.fsencode(path)
    cdef const char *c_path = b
    cdef open_how how
    how.flags = <unsigned int>(flags | os.O_CLOEXEC)
    how.mode = mode
    how.resolve = resolve
    cdef long fd = c_syscall(SYS_openat2, dirfd, c_path, &how, sizeof(how))
    if fd < 0:
        raise OSError(errno, strerror(errno).decode(), path)
    return fd


RESOLVE = {
    "no_xdev": RESOLVE_NO_XDEV, "no_magiclinks": RESOLVE_NO_MAGICLINKS,
    "no_symlinks": RESOLVE_NO_SYMLINKS, "beneath": RESOLVE_BENEATH, "in_root": RESOLVE_IN_ROOT,
}


NS_FLAGS = {
    "mount": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC,
    "pid": CLONE_NEWPID, "network": CLONE_NEWNET, "cgroup": CLONE_NEWCGROUP,
    "user": CLONE_NEWUSER,
}

MOUNT_FLAGS = {
    "ro": (MS_RDONLY, False), "rw": (MS_RDONLY, True),
    "nosuid": (MS_NOSUID, False), "suid": (MS_NOSUID, True),
    "nodev": (MS_NODEV, False), "dev": (MS_NODEV, True),
    "noexec": (MS_NOEXEC, False), "exec": (MS_NOEXEC, True),
    "sync": (MS_SYNCHRONOUS, False), "async": (MS_SYNCHRONOUS, True),
    "dirsync": (MS_DIRSYNC, False), "remount": (MS_REMOUNT, False),
    "mand": (MS_MANDLOCK, False), "nomand": (MS_MANDLOCK, True),
    "atime": (MS_NOATIME, True), "noatime": (MS_NOATIME, False),
    "diratime": (MS_NODIRATIME, True), "nodiratime": (MS_NODIRATIME, False),
    "bind": (MS_BIND, False), "rbind": (MS_BIND | MS_REC, False),
    "relatime": (MS_RELATIME, False), "norelatime": (MS_RELATIME, True),
    "strictatime": (MS_STRICTATIME, False), "lazytime": (MS_LAZYTIME, False),
}

PROPAGATION_FLAGS = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
