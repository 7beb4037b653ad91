# cython: language_level=3
"""diyc._native: thin wrappers over the container-init C code and the few
syscalls Python 3.11 lacks.  Like psutil's C layer: no policy here, errors
surface as OSError with errno (InitFailure: with the init's step and detail)."""

from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.errno cimport errno, EINTR, EPROTO, E2BIG
from libc.signal cimport SIGKILL
from posix.signal cimport kill as c_kill
from posix.unistd cimport close
from posix.wait cimport waitpid
from libc.string cimport memset, strerror
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
        SYS_openat2, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_open_tree, SYS_move_mount,
        SYS_mount_setattr

cdef extern from "<linux/mount.h>":
    enum:
        FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC, FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE,
        MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC,
        OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH
    struct mount_attr:
        unsigned long long attr_set
        unsigned long long attr_clr
        unsigned long long propagation
        unsigned long long userns_fd

cdef extern from "<fcntl.h>":
    enum:
        AT_FDCWD, AT_RECURSIVE, AT_EMPTY_PATH

cdef extern from "<unistd.h>":
    long c_syscall "syscall"(long number, ...) nogil

cdef extern from "syscall_table.h":
    const char *syscall_name "DIYC_SYSCALL_NAME"(int i)
    int syscall_nr "DIYC_SYSCALL_NR"(int i)
    int syscall_count "DIYC_SYSCALL_COUNT"

include "diyc_h.pxi"


class InitFailure(OSError):
    """A step of the container's init failed (or of its start, in the
    parent): `step` names it, `errno` and `detail` say why.  The one
    exception the init's machinery raises; an OSError, so a caller that
    only cares about errno may catch that."""

    def __init__(self, step, errnum, detail=""):
        reason = strerror(errnum).decode() if errnum else "failed"
        super().__init__(errnum, f"{step}: {reason}", detail or None)
        self.step = step
        self.detail = detail or ""


cdef object _failure(diyc_error *err):
    return InitFailure(err.step.decode(), err.errnum, err.detail.decode(errors="surrogateescape"))


cdef extern from "Python.h":
    object PyUnicode_EncodeFSDefault(object unicode)


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
        # os.fsencode's result, without its Python frame (tens of strings a start)
        b = PyUnicode_EncodeFSDefault(s) if type(s) is str else os.fsencode(s)
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


cdef _fill_init(diyc_init *c, init, _Arena arena):
    """The one copy of an InitDescription (diyc/init_description.py, where
    the defaults are) into the C struct the child reads."""
    cdef int i
    memset(c, 0, sizeof(diyc_init))  # (a field not set here, as bounding_dropped: 0)
    c.clone_flags = init.clone_flags
    c.new_cgroupns = init.new_cgroupns
    c.loopback_up = init.loopback_up
    c.n_cgroup_fds = len(init.cgroup_fds)
    c.cgroup_fds = arena.ints(init.cgroup_fds)
    c.join_mnt_fd = init.join_mnt_fd

    c.rootfs = arena.str(init.rootfs)
    c.overlay_options = arena.str(init.overlay_options)
    c.scratch = arena.str(init.scratch)
    c.scratch_options = arena.str(init.scratch_options)
    c.readonly_root = init.readonly_root
    c.rootfs_propagation = init.rootfs_propagation
    mounts = init.mounts
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
    devices = init.devices
    c.n_devices = len(devices)
    c.devices = <diyc_device *>arena.alloc(c.n_devices, sizeof(diyc_device))
    for i, (path, mode, rdev) in enumerate(devices):
        c.devices[i].path = arena.str(path)
        c.devices[i].mode = mode
        c.devices[i].rdev = rdev
    symlinks = init.symlinks
    c.n_symlinks = len(symlinks)
    c.symlinks = <diyc_symlink *>arena.alloc(c.n_symlinks, sizeof(diyc_symlink))
    for i, (target, linkpath) in enumerate(symlinks):
        c.symlinks[i].target = arena.str(target)
        c.symlinks[i].linkpath = arena.str(linkpath)
    c.n_masked = len(init.masked_paths)
    c.masked_paths = <const char **>arena.strv(init.masked_paths)
    c.n_readonly = len(init.readonly_paths)
    c.readonly_paths = <const char **>arena.strv(init.readonly_paths)
    c.n_sysctls = len(init.sysctls)
    c.sysctl_paths = <const char **>arena.strv([p for p, _ in init.sysctls])
    c.sysctl_values = <const char **>arena.strv([v for _, v in init.sysctls])
    c.hostname = arena.str(init.hostname)
    c.domainname = arena.str(init.domainname)
    c.n_reopen = len(init.reopen)
    c.reopen_paths = <const char **>arena.strv([p for p, _ in init.reopen])
    c.reopen_fds = arena.ints([fd for _, fd in init.reopen])
    c.userns = init.userns
    c.n_layers = init.n_layers
    c.layer_fds = <int *>arena.alloc(c.n_layers, sizeof(int))  # filled in by the child

    c.argv = arena.strv(init.argv)
    c.envp = arena.strv(init.env)
    c.cwd = arena.str(init.cwd)
    c.umask = init.umask
    c.uid = init.uid
    c.gid = init.gid
    c.n_groups = len(init.groups)
    cdef gid_t *gids = <gid_t *>arena.alloc(c.n_groups, sizeof(gid_t))  # unsigned: not ints()
    for i, g in enumerate(init.groups):
        gids[i] = g
    c.groups = gids
    for i in range(3):
        c.stdio[i] = init.stdio[i]
    c.preserve_fds = init.preserve_fds
    c.console_fd = init.console_fd
    c.console_to_parent = init.console_to_parent
    oom = init.oom_score_adj
    c.oom_score_adj = arena.str(None if oom is None else str(oom))

    caps = init.capabilities
    c.set_caps = caps is not None
    c.last_cap = init.last_cap
    if caps is not None:
        c.cap_bounding = caps["bounding"]
        c.cap_effective = caps["effective"]
        c.cap_permitted = caps["permitted"]
        c.cap_inheritable = caps["inheritable"]
        c.cap_ambient = caps["ambient"]
    c.no_new_privs = init.no_new_privs
    rlimits = init.rlimits
    c.n_rlimits = len(rlimits)
    c.rlimits = <diyc_rlimit *>arena.alloc(c.n_rlimits, sizeof(diyc_rlimit))
    for i, (resource, soft, hard) in enumerate(rlimits):
        c.rlimits[i].resource = resource
        c.rlimits[i].soft = soft
        c.rlimits[i].hard = hard
    seccomp = init.seccomp_filter
    c.seccomp_len = len(seccomp) // 8 if seccomp else 0
    c.seccomp_filter = arena.bytes_ptr(seccomp) if seccomp else NULL
    c.seccomp_early = init.seccomp_early

    c.n_create_hooks = arena.hooks(init.create_hooks, &c.create_hooks)
    c.n_start_hooks = arena.hooks(init.start_hooks, &c.start_hooks)
    for i in range(3):
        c.hook_state[i] = arena.str(init.hook_state[i])
    c.start_fifo_fd = init.start_fifo_fd
    c.report_fifo_fd = init.report_fifo_fd

    c.supervisor_argv = arena.strv(init.supervisor_argv) if init.supervisor_argv else NULL
    c.console_recv_fd = init.console_recv_fd
    c.process_on_release = init.process_on_release
    c.held_exe_fd = init.held_exe_fd
    c.n_join_ns = len(init.join_ns_fds)
    c.join_ns_fds = arena.ints(init.join_ns_fds)


def spawn(init):
    """Clone a container init process described by `init` (an
    InitDescription) -> a Child.  The child prepares its root filesystem,
    then waits for Child.release(); Child.wait_exec() then tells whether it
    reached its program.  With init.supervisor_argv, a forked supervisor
    (Child.supervisor) is the child's parent.  Raises InitFailure."""
    cdef _Arena arena = _Arena()
    cdef diyc_init c
    cdef Child handle = Child.__new__(Child)
    cdef diyc_error err
    cdef int r

    _fill_init(&c, init, arena)
    with nogil:
        r = diyc_spawn(&c, &handle.c, &err)
    if r < 0:
        raise _failure(&err)
    return handle


cdef class Child:
    """A cloned container init, and the parent's end of the channel to it
    (_native/channel.c), which this handle owns: close() closes it.  Every
    failure is an InitFailure(step, errno, detail)."""
    cdef diyc_child c

    def __cinit__(self):
        memset(&self.c, 0, sizeof(self.c))
        self.c.channel = -1
        self.c.console = -1

    @staticmethod
    def adopt(pid_t pid, int report_fd):
        """The held init `pid` some other process cloned, whose reports we
        read from `report_fd` (the OCI start's report FIFO; now ours)."""
        cdef Child handle = Child.__new__(Child)
        handle.c.pid = pid
        handle.c.channel = report_fd
        return handle

    @property
    def pid(self):
        return self.c.pid

    @property
    def supervisor(self):
        """The supervisor's pid (detached containers; it is the init's
        parent), or 0."""
        return self.c.supervisor

    def id_maps_done(self, layer_fds=()):
        """User namespace: its id maps are written; here are its idmapped
        layers (fds, ours still).  The child may take the namespace's ids."""
        cdef int fds[64]
        cdef diyc_error err
        cdef int i, n = len(layer_fds)
        if n > 64:
            raise InitFailure("id_maps_done", E2BIG, "more than 64 image layers")
        for i in range(n):
            fds[i] = layer_fds[i]
        if diyc_id_maps_done(&self.c, fds, n, &err) < 0:
            raise _failure(&err)

    def release(self):
        """Let the child go on to execve (or to hold before it)."""
        cdef diyc_error err
        if diyc_release(&self.c, &err) < 0:
            raise _failure(&err)

    def wait_pid(self):
        """exec: the pid of the process that runs the command (its first
        process setns()'d and cloned it)."""
        cdef diyc_error err
        cdef pid_t pid
        with nogil:
            pid = diyc_wait_pid(&self.c, &err)
        if pid < 0:
            raise _failure(&err)
        return pid

    def wait_console(self):
        """A terminal for us (init.console_to_parent): the pty master, an
        fd the caller now owns."""
        cdef diyc_error err
        cdef int fd
        with nogil:
            fd = diyc_wait_console(&self.c, &err)
        if fd < 0:
            raise _failure(&err)
        return fd

    def wait_held(self):
        """A pooled init (init.process_on_release): block until it holds at
        the release, every step before it done; the channel stays open for
        send_process().  Raises what it reported otherwise."""
        cdef diyc_error err
        cdef int r
        with nogil:
            r = diyc_wait_held(&self.c, &err)
        if r < 0:
            raise _failure(&err)

    def send_process(self, int description_fd, stdio_fds=()):
        """Release a held pooled init with its process: `description_fd`
        (a memfd holding a struct diyc_process) and the fds that become its
        stdio (ours still).  -> False if the init was gone already (the
        message went nowhere).  wait_exec() then tells how it went."""
        cdef int fds[4]
        cdef diyc_error err
        cdef int i, n = len(stdio_fds)
        if n > 3:
            raise InitFailure("process", E2BIG, "more than 3 stdio fds")
        fds[0] = description_fd
        for i in range(n):
            fds[i + 1] = stdio_fds[i]
        cdef int r = diyc_send_process(&self.c, fds, n + 1, &err)
        if r < 0:
            raise _failure(&err)
        return r == 1

    def wait_exec(self):
        """Block until the child has reached its program; raise what it
        reported otherwise (step INIT_DIED: it died without a word - a
        signal, the OOM killer).  Closes the channel."""
        self._wait(False)

    def wait_ready(self):
        """The create/start split: block until the child holds before
        execve, all its steps done; raise what it reported otherwise.
        Closes the channel: from `start` on, it reports to a FIFO."""
        self._wait(True)

    cdef _wait(self, bint ready_ok):
        cdef diyc_error err
        cdef int r
        with nogil:
            r = diyc_wait_exec(&self.c, &err)
        if r < 0:
            raise _failure(&err)
        if r == 1 and not ready_ok:
            raise InitFailure("wait_exec", EPROTO, "the init holds before execve")
        if r == 0 and ready_ok:
            raise InitFailure("wait_ready", EPROTO, "the init went on to execve without holding")

    def kill(self):
        """SIGKILL the child and reap what is ours: the child, or its
        supervisor (which reaps the child and records its end)."""
        cdef int status
        if self.c.pid <= 0:
            return
        c_kill(self.c.pid, SIGKILL)
        with nogil:
            while waitpid(self.c.supervisor or self.c.pid, &status, 0) < 0 and errno == EINTR:
                pass
        self.c.pid = 0

    def close(self):
        """Close our end of the channel, and a pty master nobody took
        (idempotent)."""
        if self.c.channel >= 0:
            close(self.c.channel)
            self.c.channel = -1
        if self.c.console >= 0:
            close(self.c.console)
            self.c.console = -1

    def __dealloc__(self):
        self.close()


def start_held(int start_fifo_fd):
    """`start` of an init held before execve: START on its start FIFO."""
    if diyc_msg_send(start_fifo_fd, DIYC_MSG_START, 0, NULL, 0, NULL, 0) < 0:
        raise InitFailure("start", errno)


INIT_DIED = DIYC_INIT_DIED.decode()  # Child.wait_exec's step for an init that died without a word
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
        raise _failure(&err)
    return bytes(out[:8 * r])


def idmapped_tree(path, int userns_fd):
    """A detached mount of `path` whose ids are shown through the user
    namespace `userns_fd` (open_tree + mount_setattr).  -> fd"""
    b = os.fsencode(path)
    fd = diyc_idmapped_tree(b, userns_fd)
    if fd < 0:
        raise OSError(errno, strerror(errno).decode(), path)
    return fd


def fsopen(fsname):
    """fsopen(2) with FSOPEN_CLOEXEC -> a file system context fd."""
    b = os.fsencode(fsname)
    cdef const char *c_name = b
    cdef long fd = c_syscall(SYS_fsopen, c_name, FSOPEN_CLOEXEC)
    if fd < 0:
        raise OSError(errno, strerror(errno).decode(), fsname)
    return fd


def fsconfig(int fs_fd, key, value=None):
    """fsconfig(2): FSCONFIG_SET_STRING key=value, or FSCONFIG_CMD_CREATE
    when key is None."""
    cdef long r
    cdef const char *c_key
    cdef const char *c_value
    if key is None:
        r = c_syscall(SYS_fsconfig, fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0)
    else:
        k = os.fsencode(key)
        v = os.fsencode(value)
        c_key = k
        c_value = v
        r = c_syscall(SYS_fsconfig, fs_fd, FSCONFIG_SET_STRING, c_key, c_value, 0)
    if r < 0:
        raise OSError(errno, strerror(errno).decode(), key if value is None else f"{key}={value}")


def fsmount(int fs_fd, unsigned int attrs=0):
    """fsmount(2) with FSMOUNT_CLOEXEC -> fd of the root of a detached mount."""
    cdef long fd = c_syscall(SYS_fsmount, fs_fd, FSMOUNT_CLOEXEC, attrs)
    if fd < 0:
        raise OSError(errno, strerror(errno).decode())
    return fd


def open_tree_clone(path, bint recursive=False):
    """open_tree(2) with OPEN_TREE_CLONE (AT_RECURSIVE when `recursive`):
    a detached copy of the mount(s) at `path` -> fd."""
    b = os.fsencode(path)
    cdef const char *c_path = b
    cdef unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    cdef long fd = c_syscall(SYS_open_tree, AT_FDCWD, c_path, flags)
    if fd < 0:
        raise OSError(errno, strerror(errno).decode(), path)
    return fd


def move_mount(int from_fd, int to_fd):
    """move_mount(2) of the mount `from_fd` onto the directory or file `to_fd`."""
    if c_syscall(SYS_move_mount, from_fd, b"", to_fd, b"",
                 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0:
        raise OSError(errno, strerror(errno).decode())


def mount_setattr(int fd, unsigned long long attr_set, bint recursive=False):
    """mount_setattr(2): set `attr_set` (MOUNT_ATTRS) on the mount `fd`."""
    cdef mount_attr attr
    memset(&attr, 0, sizeof(attr))
    attr.attr_set = attr_set
    if c_syscall(SYS_mount_setattr, fd, b"", AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0),
                 &attr, sizeof(attr)) < 0:
        raise OSError(errno, strerror(errno).decode())


MOUNT_ATTRS = {"ro": MOUNT_ATTR_RDONLY, "nosuid": MOUNT_ATTR_NOSUID, "nodev": MOUNT_ATTR_NODEV,
               "noexec": MOUNT_ATTR_NOEXEC}


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
        raise _failure(&err)


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
