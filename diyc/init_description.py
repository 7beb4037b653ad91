"""What the container's init is told: one typed description, its defaults
here and nowhere else.

rootfs.init_config() builds it once from the OCI spec; the steps of a
start that know more (the cgroup's files, the user namespace, the
supervisor, a joined network namespace, `exec`) set the fields they own by
name.  _native.spawn() copies it into the C `struct diyc_init` (diyc.h) in
one place and clones the init.

A plain class rather than a dataclass: `dataclasses` imports `re` and
`inspect`, several milliseconds of a start that takes a few (see the
README's "Lazy imports").  The annotations list the fields; an unknown
name is a TypeError, as with a dataclass.  Sequences default to tuples, so
no instance shares a mutable default: a step replaces a field, never
appends to it.
"""


class InitDescription:
    # -- namespaces and cgroup
    clone_flags: int = 0            # CLONE_NEW* namespaces clone() creates
    join_paths: dict = None         # {type: path}: namespaces joined instead (rootfs.spawn_in)
    new_cgroupns: bool = False      # unshare a cgroup namespace once in the cgroup
    userns: bool = False            # a new user namespace: wait for the id maps
    loopback_up: bool = False       # bring `lo` up in a new network namespace
    cgroup_fds: tuple = ()          # open `tasks`/`cgroup.procs` files the init joins through
    join_mnt_fd: int = -1           # the init enters this mount namespace (spawn_in)

    # -- root filesystem
    rootfs: str = None              # the directory that becomes /
    overlay_options: str = None     # an overlay mounted at rootfs; None: bind rootfs as is
    scratch: str = None             # a tmpfs private to the container here (idmapped layers, upper/work)
    scratch_options: str = "mode=0755"  # its mount data (the size= cap)
    readonly_root: bool = False
    rootfs_propagation: int = 0     # MS_SHARED/SLAVE/... [| MS_REC]; 0: private
    mounts: tuple = ()              # (source, target, fstype, data, flags, propagation, is_file)
    devices: tuple = ()             # (path, mode, rdev)
    symlinks: tuple = ()            # (target, linkpath)
    masked_paths: tuple = ()
    readonly_paths: tuple = ()
    sysctls: tuple = ()             # (/proc/sys/... path, value)
    hostname: str = None
    domainname: str = None
    reopen: tuple = ()              # user namespace: (path, O_PATH fd) the init reopens (userns.ContainerPaths)
    n_layers: int = 0               # user namespace: idmapped layers that come with the id maps

    # -- the process
    argv: tuple = ()
    env: tuple = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple = ()
    umask: int = 0o022
    stdio: tuple = (-1, -1, -1)     # fds that become 0, 1, 2; -1: the inherited one
    preserve_fds: int = 0           # our fds 3 .. 3+N-1 stay open in the process
    console_fd: int = -1            # a terminal: its master is sent over this socket ...
    console_to_parent: bool = False  # ... or to us, on the channel (Child.wait_console)
    oom_score_adj: int = None

    # -- privileges
    capabilities: dict = None       # {bounding, effective, ...: mask}; None: keep all (privileged)
    last_cap: int = 40              # /proc/sys/kernel/cap_last_cap
    no_new_privs: bool = False
    rlimits: tuple = ()             # (resource, soft, hard)
    seccomp_filter: bytes = None    # a compiled BPF program
    seccomp_early: bool = False     # a pool's init installs it while it waits (pooled.c)

    # -- OCI hooks, and the create/start split
    create_hooks: tuple = ()        # (path, args, env, timeout)
    start_hooks: tuple = ()
    hook_state: tuple = ("", "", "")  # the state JSON around "status" and "pid"
    start_fifo_fd: int = -1         # held: wait on this FIFO before execve ...
    report_fifo_fd: int = -1        # ... and report to this one once started

    # -- detached: a supervisor (diyc-shim) becomes the init's parent
    supervisor_argv: tuple = None
    console_recv_fd: int = -1       # a terminal: the supervisor receives the master here

    # -- a pool's container: held at the release, its process comes with it
    process_on_release: bool = False  # (pooled.c; diyc/pool.py)
    held_exe_fd: int = -1           # ... waiting as diyc-held (this fd), not as our copy

    # -- exec into a running container
    join_ns_fds: tuple = ()         # namespaces to setns() into, in order

    def __init__(self, **fields):
        unknown = fields.keys() - FIELDS
        if unknown:
            raise TypeError(f"InitDescription has no field {', '.join(sorted(unknown))}")
        self.__dict__.update(fields)  # one step: a start builds one per container

    def __setattr__(self, name, value):
        if name not in FIELDS:
            raise AttributeError(f"InitDescription has no field {name!r}")
        object.__setattr__(self, name, value)

    def replace(self, **changes):
        """A copy with `changes` (the original is someone else's)."""
        copy = InitDescription(**self.__dict__)
        for name, value in changes.items():
            setattr(copy, name, value)
        return copy

    def __repr__(self):
        return f"InitDescription({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


FIELDS = frozenset(InitDescription.__annotations__)
