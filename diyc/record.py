"""The container record: containers/<id>/container.json, what every part of
diyc knows of a container (the CLI and library, the supervisor, networks,
stats, the OCI front end), and the process helpers around it.

    ContainerRecord    a container as its record says: loaded by name, id
                       or id prefix; its status, derived from the record and
                       from whether its processes live; its lock; its cgroup
    write_new          the one builder of a record, for `diyc run`/create
                       and for OCI bundles alike: staged in tmp/ and renamed
                       into place, so a container dir without its record
                       never exists, whenever diyc is killed
    waitpid, kill_and_reap, exit_code_of, wait_gone     processes
    exec_error         how an init that never reached execve ended

It depends on nothing above it (runtime, networks, the OCI front end):
they depend on it.
"""

import _thread
import errno
import os
import time

from . import _native, cgroups
from .errors import Conflict, ContainerNotFound, InvalidArgument, init_error
from .state import (FileLock, Root, listdir, pid_alive, process_start_time, process_status, read_json,
                    release_name, remove_tree, reserve_name, write_json)


# a pool's container before its process is handed over (diyc.pool): its
# record's args until then; hidden from `ps`
POOL_HELD_ARGS = ["diyc-pool-held"]


def now():
    """A record's timestamps: seconds since the epoch."""
    return time.time()


class ContainerRecord:
    """A container as its record describes it.  runtime.Container (which
    creates, starts and removes containers) builds on it; what only reads
    or updates a record (a network's lease check, stats, the supervisor)
    needs no more than this."""

    def __init__(self, root, record):
        self.root = root
        self.record = record
        self.cgroup = None

    @classmethod
    def load(cls, ref, root=None):
        """A container by name, id or unique id prefix."""
        root = root if isinstance(root, Root) else Root(root)
        cid = None
        try:
            cid = os.readlink(f"{root.names}/{ref}")
        except OSError:
            if len(ref) >= 3 and all(c in "0123456789abcdef" for c in ref):
                matches = [c for c in listdir(root.containers) if c.startswith(ref)]
                if len(matches) > 1:
                    raise InvalidArgument(f"container id prefix {ref!r} is ambiguous") from None
                cid = matches[0] if matches else None
        if cid:
            try:
                return cls(root, read_json(f"{root.container_dir(cid)}/container.json"))
            except FileNotFoundError:
                pass
        raise ContainerNotFound(f"no such container: {ref}")

    @classmethod
    def load_id(cls, root, cid):
        """The container with id `cid` exactly (FileNotFoundError when it
        has no record, ValueError when its record is unreadable)."""
        return cls(root, read_json(f"{root.container_dir(cid)}/container.json"))

    @classmethod
    def list(cls, root=None):
        root = root if isinstance(root, Root) else Root(root)
        out = []
        for cid in listdir(root.containers):
            try:
                out.append(cls.load_id(root, cid))
            except (FileNotFoundError, NotADirectoryError, ValueError):
                continue  # being created or removed right now
        return sorted(out, key=lambda c: c.record["created"], reverse=True)

    # -- identity -------------------------------------------------------------

    @property
    def id(self):
        return self.record["id"]

    @property
    def name(self):
        return self.record["name"]

    @property
    def dir(self):
        return self.root.container_dir(self.id)

    @property
    def status(self):
        state = self.record["state"]
        if state["status"] == "running":
            if state.get("supervisor"):
                # its supervisor records the end: until it has, it is running;
                # without it (killed), nobody keeps its logs or its end
                alive = pid_alive(state["supervisor"], state.get("supervisor_start"))
                return "running" if alive else "dead"
            if not pid_alive(state["pid"], state.get("pid_start")):
                return "dead"  # whoever ran it was killed: nobody recorded the end
        if state["status"] == "created" and state.get("pid"):
            # held before execve (create/start split): gone means stopped;
            # a --rm one (a pool's) is garbage then: nobody will remove it
            if pid_alive(state["pid"], state.get("pid_start")):
                return "created"
            return "dead" if self.record["auto_remove"] else "stopped"
        if state["status"] == "created" and self.record["auto_remove"] and "creator" in state and \
                not pid_alive(state["creator"], state.get("creator_start")):
            return "dead"
        return state["status"]

    @property
    def held_in_pool(self):
        """A pool's warm container, not handed a process yet (or not shown
        as running one): not the user's, so not listed."""
        return self.record["spec"]["process"].get("args") == POOL_HELD_ARGS

    @property
    def paused(self):
        """Running with its processes frozen (`diyc pause`): read from its
        cgroup, the one place that knows."""
        return self.status == "running" and self.control_group().frozen()

    @property
    def health_status(self):
        """Its health check's verdict while it runs: "starting", "healthy",
        "unhealthy"; None without a check (or when it does not run)."""
        health = self.record["state"].get("health")
        return health.get("Status") if health and self.status == "running" else None

    @property
    def state_name(self):
        """docker's State.Status: created, running, paused, exited, dead."""
        return "paused" if self.paused else self.status

    @property
    def ports(self) -> "dict":
        """Its published ports, as docker-py's Container.ports: {"80/tcp":
        [{"HostIp": "0.0.0.0", "HostPort": "8080"}]} (empty unless it runs)."""
        out = {}
        if self.status != "running":
            return out
        for p in (self.record.get("network_settings") or {}).get("ports") or ():
            if isinstance(p, dict) and "host_port" in p:
                out.setdefault(f"{p['container_port']}/{p['proto']}", []).append(
                    {"HostIp": p.get("host_ip", "0.0.0.0"), "HostPort": str(p["host_port"])})
        return out

    def died(self, exit_code, oom_killed):
        """The end's events: oom (when the memory limit killed a process), die."""
        from .events import container_event
        if oom_killed:
            container_event(self, "oom")
        container_event(self, "die", exitCode=exit_code)

    # -- docker-py's operations on a live container (diyc.operations) ----------

    def pause(self) -> None:
        """Freeze its processes (`diyc pause`): the cgroup freezer."""
        from .operations import pause
        pause(self)

    def unpause(self) -> None:
        from .operations import unpause
        unpause(self)

    def update(self, *, memory=None, memory_swap=None, cpus=None, cpu_shares=None,
               pids_limit=None, restart=None, mem_limit=None, memswap_limit=None,
               restart_policy=None) -> None:
        """Change its limits and restart policy, live (`diyc update`): the
        names of Container.create (memory="128m", cpus=0.5, pids_limit=64,
        restart="on-failure:3") or docker-py's (mem_limit, memswap_limit,
        restart_policy={"Name": "always"})."""
        from .operations import update
        if restart_policy is not None:
            from .arguments import restart as restart_text
            restart = restart_text(restart_policy)
        update(self, memory=memory if memory is not None else mem_limit,
               memory_swap=memory_swap if memory_swap is not None else memswap_limit,
               cpus=cpus, cpu_shares=cpu_shares, pids_limit=pids_limit, restart=restart)

    def rename(self, name: str) -> None:
        """Give it another name (`diyc rename`); a running one runs on."""
        from .operations import rename
        rename(self, name)

    # -- the record on disk ---------------------------------------------------

    def save(self):
        # a --rm container's record dies with it: no fsync on its start path
        write_json(f"{self.dir}/container.json", self.record, durable=not self.record["auto_remove"])

    def reload(self):
        self.record = read_json(f"{self.dir}/container.json")
        self.cgroup = None  # as the record names it now (a first pause adds the v1 freezer)
        return self

    def keep_created(self):
        """Let a created container outlive the process that created it (`diyc
        create`; `diyc start` runs it later): with auto_remove it is no longer
        garbage once we exit, it is removed when it ends after its start."""
        with self.lock():
            self.reload()
            for field in ("creator", "creator_start"):
                self.record["state"].pop(field, None)
            self.save()

    lock_depth = 0  # how often this object's lock_owner holds lock() now
    lock_owner = None  # the thread holding lock() through this object

    def lock(self):
        """Serialises commands on one container (start, stop, rm, _finish,
        the end of a foreground run, a cp into it stopped, network
        connect).  Whoever takes it second re-reads the record with
        reload_if_present(): the one before may have removed the container,
        or changed its record.  Re-entrant for the thread holding it through
        this object (a restart by the supervisor's _finish starts the
        container under its lock); another thread waits, as another
        process does."""
        return _Lock(self)

    def reload_if_present(self):
        """Under lock(): re-read the record -> True; or False when the
        container was removed meanwhile (`rm -f` racing the end of a run):
        whoever held the lock before us did all the work, nothing is left to
        release.  The lock file our open() re-created is removed again
        (nobody needs it any more: every later holder finds the record gone
        too)."""
        try:
            self.reload()
            return True
        except FileNotFoundError:
            self.unlink_lock()
            return False

    def removal_done(self):
        """True once the container is removed, to the last step (its
        directory gone, then its lock file: remove_under_lock's order)."""
        return not os.path.lexists(self.dir) and \
            not os.path.lexists(f"{self.root.path}/locks/{self.id}.lock")

    def unlink_lock(self):
        try:
            os.unlink(f"{self.root.path}/locks/{self.id}.lock")
        except FileNotFoundError:
            pass

    def control_group(self):
        """The container's cgroup, as its record names it."""
        if self.cgroup is None:
            cg = self.record["cgroup"]
            self.cgroup = cgroups.CgroupV1(dict(cg["paths"])) if cg["version"] == 1 \
                else cgroups.CgroupV2(cg["paths"][""])
        return self.cgroup


class _Lock:
    """ContainerRecord.lock(): its FileLock, taken once by the thread that
    holds it through its record object however deep it enters it.  (Another
    thread takes a FileLock of its own: flock()s of two open files exclude
    each other, in one process too.)"""

    def __init__(self, ctr):
        self.ctr, self.file = ctr, None

    def __enter__(self):
        me = _thread.get_ident()
        if self.ctr.lock_owner == me:
            self.ctr.lock_depth += 1
            return self
        self.file = FileLock(f"{self.ctr.root.path}/locks/{self.ctr.id}.lock").__enter__()
        self.ctr.lock_owner, self.ctr.lock_depth = me, 1
        return self

    def __exit__(self, *exc):
        self.ctr.lock_depth -= 1
        if self.file is not None:
            self.ctr.lock_owner = None  # (before the unlock: the next holder sets its own)
            file, self.file = self.file, None
            file.__exit__(*exc)


def cgroup_fields(cgroup):
    """How a record names an opened cgroup (control_group() reads it back)."""
    return {"version": cgroup.version,
            "paths": cgroup.paths if cgroup.version == 1 else {"": cgroup.path}}


def creator_fields():
    """The state of a record just made.  Who is creating it: a --rm container
    whose creator died before starting it is garbage, not a container
    someone will start."""
    return {"status": "created", "creator": os.getpid(),
            "creator_start": process_start_time(os.getpid())}


def write_new(root, record, *, taken, alternative_name=None, group=None, fill=None):
    """Record a new container: reserve its name, make its directory in tmp/
    (searchable by `group` if given: a user namespace's root), fill(staging)
    with the files that sit beside the record, write the record and rename
    the directory into place.  A name in use raises Conflict(taken), unless
    alternative_name is free (it then becomes record["name"]).  When it
    fails, nothing is left: the name is released, the staging dir removed."""
    cid, name = record["id"], record["name"]
    if not reserve_name(root, name, cid):
        if alternative_name is None or not reserve_name(root, alternative_name, cid):
            raise Conflict(taken)
        name = record["name"] = alternative_name
    staging = f"{root.tmp}/ctr-{os.getpid()}-{cid[:12]}"
    try:
        os.mkdir(staging, 0o700)
        if group is not None:
            os.chown(staging, -1, group)
            os.chmod(staging, 0o710)
        if fill is not None:
            fill(staging)
        write_json(f"{staging}/container.json", record, durable=not record["auto_remove"])
        os.rename(staging, root.container_dir(cid))
    except BaseException:
        release_name(root, name, cid)
        remove_tree(staging)
        raise


# -- processes ----------------------------------------------------------------

def waitpid(pid):
    """os.waitpid(pid, 0), retried on EINTR; a pid that is not our child
    (reaped already) reads as exit code 255."""
    while True:
        try:
            return os.waitpid(pid, 0)
        except ChildProcessError:
            return pid, 255 << 8
        except InterruptedError:
            continue


def kill_and_reap(pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    waitpid(pid)


def exit_code_of(status):
    """A wait status as docker reports it: the exit code, or 128+N for a
    process killed by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def wait_gone(pid, start_time, timeout=10.0):
    """Wait for a process that may not be our child to be gone (a zombie
    counts as gone)."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid, start_time) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.005)


def exec_error(child, reap, pid=None, ready=False, released=True):
    """None once `child` (a _native.Child) has reached its program - with
    ready, once it holds before execve - else the exception for what it
    reported.  An init that died without a word (a signal, the OOM killer)
    shows as such; one that dies after its last report (a seccomp KILL of
    execve itself) as a zombie still named INIT_COMM: execve renames it.
    Its fds close a moment before either, so we look until one shows.
    released=False: our release never reached it (EPIPE).
    reap: we are its parent, its wait status says how it ended.  pid: the
    process that execs, when it is not the child (exec's second clone)."""
    pid = pid or child.pid
    try:
        child.wait_ready() if ready else child.wait_exec()
    except _native.InitFailure as e:
        failure = (e.step, e.errno, e.detail)
    else:
        if ready:
            return None
        deadline = time.monotonic() + 1.0
        while True:
            st = process_status(pid)
            if not st or st[0] != _native.INIT_COMM:
                return None  # exec'd (or gone already: nothing tells)
            if st[1] in ("Z", "X"):
                failure = (_native.INIT_DIED, 0, "")
                break
            if time.monotonic() > deadline:
                return None
            time.sleep(0.0001)
    if failure[0] != _native.INIT_DIED:
        return init_error(*failure)
    if reap:
        status = waitpid(pid)[1]
    else:
        st = process_status(pid)
        status = st[2] if st else None
    if status is None:
        how = "died"
    elif os.WIFSIGNALED(status):
        import signal
        sig = os.WTERMSIG(status)
        try:
            how = f"was killed by {signal.Signals(sig).name}"
        except ValueError:
            how = f"was killed by signal {sig}"
    else:
        how = f"exited with {os.waitstatus_to_exitcode(status)}"
    if failure[1] or not released:  # ECONNRESET, EPIPE: our release (a pool's process) unread
        return init_error("release", failure[1] or errno.EPIPE,
                          f"the container's init {how} before its release")
    return init_error("init", 0, f"the container's init {how} before execve")
