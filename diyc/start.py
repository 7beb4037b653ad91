"""Container.start's steps: the `cgroup` ... `exec` part of the start story
in runtime.py, each a function of the container (runtime.Container.start
calls them in order, as create.py's steps serve Container.create).

    create_cgroup       the cgroup with its limits; the files the init
                        joins it through
    describe_init       the init's description (InitDescription): the
                        spec's, with the root filesystem prepare_rootfs
                        makes, the cgroup to join, the user namespace's paths
    make_start_fifos    (the OCI create/start split: hold on a FIFO)
    hold_for_process    (a pool's container: hold at the release, as diyc-held)
    clone               _native.spawn (in a joined network namespace if
                        asked) -> a _native.Child
    map_user_namespace  (--userns: id maps, then the idmapped layers)
    release_and_wait    RELEASE, then the init's reports until execve
    wait_held           (a pool's container: until it holds at the release)
    record_started      the record says running (or created, held)

StartHeld is what a start holds until it ends, and undoes if it fails.
"""

import os

from . import _native
from .errors import init_error
from .record import exec_error, now
from .rootfs import init_config, overlay_options, spawn_in
from .state import process_start_time


def prepare_rootfs(ctr, place=None):
    """-> (overlay options, scratch dir or None, its size cap or None,
    root path or None).  The scratch dir gets a tmpfs of the init's own:
    for the idmapped copies of the layers (--userns) and for upper and
    work (--rm-tmpfs-size).  place(path): the path the init resolves for
    a host path (a user namespace's: see userns.ContainerPaths)."""
    if (ctr.record.get("rootfs") or {}).get("bind"):
        return None, None, None, None  # an OCI bundle's rootfs: used as it is, no overlay
    place = place or (lambda path: path)
    lowers = ctr.record["layers"]
    userns = ctr.record.get("userns")
    scratch_size = ctr.record.get("rm_tmpfs_size")
    scratch = None
    if userns:
        # on a directory of its own, which the container's root may reach
        scratch = f"{ctr.dir}/scratch"
        try:
            os.mkdir(scratch, 0o755)
        except FileExistsError:
            pass
        lowers = [place(f"{scratch}/lower{i}") for i in range(len(lowers))]
    elif scratch_size:
        scratch = ctr.root.scratch
    if scratch_size:  # --rm-tmpfs-size: upper and work on the capped tmpfs
        return (overlay_options(lowers, place(f"{scratch}/upper"), place(f"{scratch}/work")),
                place(scratch), scratch_size, place(f"{scratch}/merged"))
    # On disk, in the container's directory (--rm too: on a tmpfs all it
    # writes would stay in RAM, charged to its memory limit); removing
    # the container removes them.  A --rm container's mount point is the
    # empty scratch dir (or the scratch tmpfs's merged/), its overlay
    # volatile: never synced.
    for d in ("upper", "work") if ctr.record["auto_remove"] else ("upper", "work", "merged"):
        try:
            os.mkdir(f"{ctr.dir}/{d}", 0o755)
            if userns and d != "merged":  # written by the container's root
                os.chown(f"{ctr.dir}/{d}", userns["uid"], userns["gid"])
        except FileExistsError:
            pass  # a restart keeps the container's changes
    if not ctr.record["auto_remove"]:
        rootfs = place(f"{ctr.dir}/merged")
    elif scratch:
        rootfs = place(f"{scratch}/merged")
    else:
        rootfs = ctr.root.scratch
    return (overlay_options(lowers, place(f"{ctr.dir}/upper"), place(f"{ctr.dir}/work"),
                            volatile=ctr.record["auto_remove"]),
            place(scratch) if scratch else None, None, rootfs)


def create_cgroup(ctr):
    """The container's cgroup with its limits -> the open files the
    init writes to join it."""
    cgroup = ctr.control_group()
    resources = ctr.record["spec"]["linux"]["resources"]
    cgroup.create(resources) if cgroup.version == 2 else cgroup.create()
    ctr.limit_warnings = cgroup.set_limits(resources) or []
    fds = []
    try:
        for f in cgroup.join_files():
            fds.append(os.open(f, os.O_WRONLY | os.O_CLOEXEC))
    except BaseException:
        for fd in fds:  # (the caller's undo removes the cgroup itself)
            os.close(fd)
        raise
    return fds

def describe_init(ctr, held, stdio, console_fd, preserve_fds):
    """The init's description: the spec's, with the root filesystem we
    prepare, the cgroup to join and (--userns) the paths it must
    reopen and how many idmapped layers it gets."""
    spec = ctr.record["spec"]
    if ctr.record.get("userns"):  # its uid may not search the diyc root
        from .userns import ContainerPaths
        held.place = ContainerPaths(ctr.root.path, ctr.dir)
    place = held.place
    overlay, scratch, scratch_size, rootfs = prepare_rootfs(ctr, place)
    init = init_config(spec, overlay=overlay, scratch=scratch, scratch_size=scratch_size,
                       stdio=stdio)
    if rootfs:
        init.rootfs = rootfs
    if place:
        init.mounts = [(place(m[0]),) + m[1:] for m in init.mounts]
        init.reopen = place.reopen
    init.cgroup_fds = held.cgroup_fds
    if init.create_hooks or init.start_hooks:
        from .rootfs import hook_state
        oci = ctr.record.get("oci") or {}
        init.hook_state = hook_state(spec.get("ociVersion", ""), ctr.name,
                                     oci.get("bundle", ""), oci.get("annotations") or {})
    if init.userns:
        init.n_layers = len(ctr.record["layers"])
    if console_fd is not None:
        init.console_fd = console_fd
    init.preserve_fds = preserve_fds
    return init

def make_start_fifos(ctr, init, held):
    """The create/start split: the init holds on start.fifo until
    `start` writes to it, then reports to report.fifo.  Opened here,
    O_RDWR, for the init: a mapped root could not."""
    for name in ("start", "report"):
        fifo = f"{ctr.dir}/{name}.fifo"
        if os.path.lexists(fifo):
            os.unlink(fifo)
        os.mkfifo(fifo, 0o600)
        held.for_child.append(os.open(fifo, os.O_RDWR | os.O_CLOEXEC))
    init.start_fifo_fd, init.report_fifo_fd = held.for_child[-2:]

# what a pool's container init waits as (_native/held.c)
HELD_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diyc-held")


def hold_for_process(ctr, init, held):
    """A pool's container: the init holds at the release until it is
    handed its process, waiting as diyc-held (which it execs, opened here
    for it) rather than as a copy of us; its seccomp filter goes on while
    it waits if it lets through what the init does after."""
    init.process_on_release = True
    if init.seccomp_filter:
        from .rootfs import seccomp_profile
        from .seccomp import HELD_CALLS, allows_all
        init.seccomp_early = allows_all(*seccomp_profile(ctr.record["spec"]), HELD_CALLS)
    held.for_child.append(os.open(HELD_PROGRAM, os.O_RDONLY | os.O_CLOEXEC))
    init.held_exe_fd = held.for_child[-1]


def clone(ctr, init, held):
    """_native.spawn, in the network namespace of the container we
    share it with (--network container:NAME) -> a _native.Child."""
    try:
        if ctr.record.get("network", "").startswith("container:"):
            from .net import network as networking
            return networking.spawn_joined(ctr, init)
        return spawn_in(init)
    except OSError as e:
        raise init_error(getattr(e, "step", "clone"), e.errno, getattr(e, "detail", "")) from None
    finally:
        held.close_for_child()  # the container's and the supervisor's now

def map_user_namespace(ctr, child):
    """The child waits in its new user namespace: give it id maps, then
    let it go on with its idmapped layers."""
    from . import userns
    linux = ctr.record["spec"]["linux"]
    userns.write_maps(child.pid, linux["uidMappings"], linux["gidMappings"])
    layers = userns.idmapped_layers(child.pid, ctr.record["layers"])
    try:
        child.id_maps_done(layers)
    finally:
        for fd in layers:
            os.close(fd)

def release_and_wait(child, hold_before_exec, t):
    """Let the child go on to execve (or to hold before it) and raise
    what it reports instead."""
    try:
        child.release()
        t.mark("release")
    finally:
        error = exec_error(child, reap=not child.supervisor, ready=hold_before_exec)
    if error:
        raise error

def wait_held(child):
    """A pooled init: until it holds at the release, or raise what it
    reported instead."""
    try:
        child.wait_held()
    except _native.InitFailure as e:
        if e.step != _native.INIT_DIED:
            raise init_error(e.step, e.errno, e.detail) from None
        raise init_error("init", 0, "the container's init died before its release") from None

def record_started(ctr, child, hold_before_exec, pooled=False):
    """pooled: a pool's container is "running" from here: its init is
    alive and the pool's, so rm without -f and the prunes leave it be."""
    state = ctr.record["state"]
    status = "created" if hold_before_exec and not pooled else "running"
    ctr.record["state"] = {"status": status, "pid": child.pid,
                           "pid_start": process_start_time(child.pid), "started": now(),
                           "restart_count": state.get("restart_count", 0)}
    if "exit_code" in state:  # restarted: how the run before ended (supervisor.first_exit)
        ctr.record["state"]["last_exit_code"] = state["exit_code"]
    if not hold_before_exec:
        ctr.record["state"].update(health_fields(ctr.record))
    if child.supervisor:
        ctr.pid = None  # the supervisor is its parent, not us
        ctr.supervisor = child.supervisor  # and ours: reaped by wait/remove/stop
        ctr.record["state"].update(supervisor=child.supervisor,
                                   supervisor_start=process_start_time(child.supervisor))
    ctr.save()


def health_fields(record):
    """A running container's state begins with its health check "starting"."""
    if not record.get("healthcheck"):
        return {}
    from .health import starting_state
    return {"health": starting_state()}


class StartHeld:
    """What a start holds until it ends, and undoes if it fails."""

    def __init__(self):
        self.cgroup_fds = []
        self.for_child = []     # fds the init (or supervisor) inherits: ours until the clone
        self.place = None       # --userns: userns.ContainerPaths
        self.child = None

    def close_for_child(self):
        for fd in self.for_child:
            os.close(fd)
        self.for_child = []

    def undo(self):
        if self.child is not None:
            self.child.close()
            self.child.kill()  # a supervisor reaps it, then records the end

    def close(self):
        self.close_for_child()
        for fd in self.cgroup_fds:
            os.close(fd)
        self.cgroup_fds = []
        if self.place:
            self.place.close()
        if self.child is not None:
            self.child.close()
