"""Containers: create, start, wait, remove.

A start, top to bottom:

    config    validate the input, resolve the image, build the OCI spec,
              reserve the name, write the record (so a crash is cleanable)
    cgroup    create the container's cgroup and set its limits; open the
              files the child writes to join it
    rootfs    the overlay of the image's layers (upper on disk, or with
              --rm-tmpfs-size on a capped tmpfs private to the container)
              and the init's description (init_description.InitDescription)
    clone     _native.spawn -> a Child: new namespaces; the child joins its
              cgroup and builds its root filesystem in C while we go on
    userns    (--userns: its id maps and idmapped layers)
    network   (bridge networking hooks in here, while the child mounts)
    release   let the child go on to execve
    exec      wait until execve succeeded, or raise the child's error

Container.create() reads as the config step's functions (create.py),
Container.start() as the others' (start.py), each a function of its own.
A pool's container (pool.py) stops after `network`: its init holds at the
release until it is handed the process it runs.
"""

import os
import time

from . import _native, cgroups, config, removal
from . import create as create_steps
from . import start as steps
from .container_files import ContainerFiles
from .errors import Conflict, ContainerNotFound
from .events import container_event
from .images.store import ImageStore
from .result import Result  # (re-exported: diyc.runtime.Result)
from .record import (ContainerRecord, exec_error, cgroup_fields, creator_fields, exit_code_of, kill_and_reap,
                     now, wait_gone, waitpid, write_new)
from .state import Root, listdir, pid_alive, read_json, release_name, remove_tree
from .trace import Trace

# Type hints are strings: nothing is imported or evaluated for them at run time.
TYPE_CHECKING = False  # (typing's costs an import; type checkers know this name)
if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping, Sequence


class Container(ContainerRecord, ContainerFiles):
    """A container in a diyc root: create() or load() one, then start(),
    wait(), logs(), exec_run(), kill(), remove().  A context manager:
    `with Container.create(...) as c:` removes it at the end of the block,
    stopping it first if needed, also when the block raises."""

    def __init__(self, root, record, trace=None):
        super().__init__(root, record)
        self.trace = trace or Trace()
        self.pid = None  # set only while we are the parent of its init
        self.supervisor = None  # set while we are the parent of its supervisor (detached)
        self.limit_warnings = []  # limits the kernel took but does not enforce
        self.held_child = None  # start(hold_for_process=True): the held init's _native.Child

    # -- create -------------------------------------------------------------

    @classmethod
    def create(cls, image: "str", command: "str | Sequence[str] | None" = None, *,
               name: "str | None" = None, hostname: "str | None" = None,
               env: "Mapping[str, str | int | None] | Sequence[str] | None" = None,
               workdir: "str | None" = None, user: "str | None" = None,
               entrypoint: "str | Sequence[str] | None" = None,
               memory: "int | str | None" = None, memory_swap: "int | str | None" = None,
               cpus: "float | str | None" = None, pids_limit: "int | str | None" = None,
               network: "str" = "bridge", ip: "str | None" = None,
               publish: "Mapping[str, object] | Sequence[str] | None" = None,
               publish_all_ports: "bool" = False,
               expose: "Sequence[str | int] | str | int | None" = None,
               auto_remove: "bool" = False, rm_tmpfs_size: "int | str | None" = None,
               cgroup_parent: "str | None" = None, read_only: "bool" = False,
               privileged: "bool" = False, cap_add: "Sequence[str] | None" = None,
               cap_drop: "Sequence[str] | None" = None, security_opt: "Sequence[str] | None" = None,
               ulimits: "Sequence[str | Mapping[str, object]] | None" = None,
               sysctls: "Mapping[str, str | int] | Sequence[str] | None" = None,
               oom_score_adj: "int | str | None" = None,
               devices: "Sequence[str | Mapping[str, str]] | None" = None,
               tmpfs: "Mapping[str, str] | Sequence[str] | None" = None,
               restart: "str | Mapping[str, object] | None" = None,
               log_opts: "Mapping[str, str] | Sequence[str] | None" = None,
               volumes: "Mapping[str, object] | Sequence[str] | None" = None,
               init: "bool" = False, tty: "bool" = False, userns: "str | None" = None,
               env_file: "str | Sequence[str] | None" = None,
               labels: "Mapping[str, str] | Sequence[str] | None" = None,
               label_file: "str | Sequence[str] | None" = None,
               extra_hosts: "Mapping[str, str] | Sequence[str] | None" = None,
               dns: "Sequence[str] | None" = None, dns_search: "Sequence[str] | None" = None,
               dns_opt: "Sequence[str] | None" = None,
               mounts: "Sequence[str | Mapping[str, object]] | None" = None,
               stop_signal: "str | int | None" = None, stop_timeout: "int | None" = None,
               healthcheck: "Mapping[str, object] | None" = None,
               pull: "str | None" = None, platform: "str | None" = None,
               root: "str | os.PathLike | Root | None" = None, trace: "Trace | None" = None,
               ) -> "Container":
        """Create a container (state `created`; start() runs it), as `diyc
        create`/`diyc run` do: every input is checked first, so a refused
        one (ArgumentTypeError for a wrong type - also a TypeError -,
        InvalidArgument for a bad value, ImageNotFound, Conflict) leaves
        nothing behind.  From resolving the image until the record exists,
        the image is held in use: `rmi` waits, then sees the record and
        refuses.  A Container is a context manager: leaving the `with`
        block removes it (killing it if it still runs).

        image: an image name or id in the store ("busybox", "app:1").
        command: the program and its arguments (["sh", "-c", "echo hi"]), or
            one str split as a shell splits words ("sh -c 'echo hi'");
            None: the image's Cmd.

        """
        # every keyword but root: Container.create's options (create.CREATE_OPTIONS) and trace
        options = {key: value for key, value in locals().items()
                   if key not in ("cls", "image", "command", "root")}
        if isinstance(command, str) or _library_shapes(options):  # (the CLI passes neither)
            from .arguments import command as split_command, normalize
            normalize(options)
            command = split_command(command)
        # None is every option's "not given": create.CREATE_OPTIONS has the defaults
        options = {key: value for key, value in options.items() if value is not None}
        root = root if isinstance(root, Root) else Root(root)
        with ImageStore(root).using():
            return cls._create(image, command, root=root, **options)

    # the options' docs live beside their defaults (create.py); help() shows them here
    create.__func__.__doc__ = create.__func__.__doc__.rstrip(" ") + create_steps.OPTIONS_DOC

    @classmethod
    def _create(cls, image, command=None, *, root=None, trace=None, **options):
        """The `config` step of the module docstring: validate the input,
        resolve the image, build the OCI spec, reserve the name and write
        the record."""
        o = create_steps.CreateOptions(options)
        config.check_run_arguments(dict(
            {"image": None if isinstance(image, dict) else image, "command": command},
            **{key: getattr(o, key) for key in create_steps.CHECKED_OPTIONS}))
        trace = trace or Trace()
        root = root if isinstance(root, Root) else Root(root)
        create_steps.validate(root, o)
        image_record, image_config, layer_dirs = create_steps.resolve_image(root, image, o.pull, o.platform)
        healthcheck = create_steps.healthcheck(o, image_record)
        cid = os.urandom(32).hex()
        try:
            spec, ids = create_steps.build_spec(root, cid, o, command, image_config, layer_dirs)
            cgroup = cgroups.open_cgroup(f"diyc-{cid}", o.cgroup_parent)
        except BaseException:
            create_steps.discard_volumes(root, o)
            raise
        record = {
            "id": cid,
            "name": o.name,
            "image": image_record["id"] if isinstance(image, dict) else image,
            "image_id": image_record["id"],
            "layers": layer_dirs,
            "created": now(),
            "auto_remove": o.auto_remove,
            "rm_tmpfs_size": o.scratch_size,  # None: the writable layer is on disk
            "tty": o.tty,
            "restart": o.restart_policy,
            "healthcheck": healthcheck,
            "log": o.log,
            "network": o.network,
            "network_settings": o.netplan,
            **o.record_fields,  # labels, stop_signal, stop_timeout
            "userns": ids,
            "cgroup": cgroup_fields(cgroup),
            "spec": spec,
            "config": create_steps.run_config(image_config, command, o),
            "state": creator_fields(),
        }
        try:
            create_steps.write_record(root, record, o)
        except BaseException:
            if ids:
                from . import userns as user_namespaces
                user_namespaces.release(root, cid, ids)
            create_steps.discard_volumes(root, o)
            raise
        trace.mark("config")
        ctr = cls(root, record, trace)
        container_event(ctr, "create")
        return ctr

    @classmethod
    def create_like(cls, root, template):
        """Another container as create() made `template` (a nameless one's
        record as created, before its start: a pool's), from a copy of that
        record (create.copied_record) -> a Container, or None where only
        create() will do (a user namespace, a network address, /etc files;
        the image gone)."""
        record = create_steps.copied_record(root, template)
        if record is None:
            return None
        store = ImageStore(root)
        with store.using():  # (as create(): rmi waits, then sees the record)
            if not store.has(record["image_id"]):
                return None
            write_new(root, record, taken=f"the container name {record['name']!r} is already in use",
                      alternative_name=f"{record['name']}_{record['id'][:6]}")
        ctr = cls(root, record)
        container_event(ctr, "create")
        return ctr

    @classmethod
    def list(cls, root: "str | os.PathLike | Root | None" = None, *, all: "bool" = False,
             filters: "Mapping[str, str | Sequence[str]] | None" = None,
             held: "bool" = False) -> "builtins.list[Container]":
        """Containers, newest first, as `diyc ps`: the running ones, every
        one with all=True.  filters: {"status": "exited", "name": "web",
        "id": PREFIX, "ancestor": IMAGE, "exited": CODE, "label": "K[=V]",
        "network": NAME, "health": "healthy"} (status "paused" included), each a
        value or a list of values (any of which matches), as docker's.
        held: with pools' warm containers too (diyc.Pool; hidden else)."""
        listed = super().list(root)
        if not held:
            listed = [c for c in listed if not c.held_in_pool]
        if all and not filters:
            return listed
        from .container_api import checked_filters, matches
        filters = checked_filters(filters)
        return [c for c in listed if matches(c, all, filters)]

    # -- start --------------------------------------------------------------

    def start(self, stdio=(-1, -1, -1), detach=False, hold_before_exec=False, console_fd=None,
              preserve_fds=0, hold_for_process=False):
        """Start the container's process; returns once it has exec'd.
        detach: a supervisor (diyc-shim) becomes the container's parent,
        keeps its output in a log and records its end; we may exit.
        hold_before_exec: the OCI create/start split - return once the init
        is ready and blocked just before execve; exec_held() lets it go.
        console_fd: a unix socket; the init gets a terminal made in the
        container's devpts and sends its master there (OCI console socket).
        preserve_fds: our fds 3 .. 3+N-1 stay open in the container.
        hold_for_process: a pool's container (diyc.pool) - return once the
        init holds at the release, every step before it done; the process
        it runs comes later, on the channel (self.held_child).

        The steps, as the module's docstring tells them: cgroup, rootfs
        (the init's description), clone, userns, network, release, exec."""
        with self.lock():  # a stopped container's cp, a stop, an rm wait (and we for them)
            # the record as it is now: ours is saved back at the end
            if not self.reload_if_present():
                raise ContainerNotFound(f"no such container: {self.name} (removed meanwhile)")
            if self.status == "running":
                raise Conflict(f"container {self.name} is already running")
            return self._start_locked(stdio, detach, hold_before_exec, console_fd, preserve_fds,
                                      hold_for_process)

    def _start_locked(self, stdio, detach, hold_before_exec, console_fd, preserve_fds, hold_for_process):
        t = self.trace
        held = steps.StartHeld()
        try:
            held.cgroup_fds = steps.create_cgroup(self)
            t.mark("cgroup")
            init = steps.describe_init(self, held, stdio, console_fd, preserve_fds)
            if hold_before_exec:
                steps.make_start_fifos(self, init, held)
            if hold_for_process:
                steps.hold_for_process(self, init, held)
            if detach:
                from .supervisor import supervisor_setup
                supervisor_setup(self, init, held.for_child)
            t.mark("rootfs")
            child = held.child = steps.clone(self, init, held)
            self.pid = child.pid
            if init.userns:
                steps.map_user_namespace(self, child)
            t.mark("clone")
            if self.record.get("network_settings"):  # the child is paused before execve
                from .net import network as networking
                networking.connect(self, child.pid)
                t.mark("network")
            if hold_for_process:
                steps.wait_held(child)
                held.child, self.held_child = None, child  # its channel: the pool's now
            else:
                steps.release_and_wait(child, hold_before_exec, t)
                t.mark("exec")
        except BaseException:
            held.undo()
            self.pid = None
            self.release_resources()
            raise
        finally:
            held.close()
        steps.record_started(self, child, hold_before_exec or hold_for_process, pooled=hold_for_process)
        if not (hold_before_exec or hold_for_process):
            self._started()
        return child.pid

    # -- run-time ---------------------------------------------------------------

    def exec_held(self):
        """Let an init held by start(hold_before_exec=True) go on to execve.
        Under the container's lock, on its record as it is now: its
        supervisor records a quick end only after we recorded the start."""
        with self.lock():
            if not self.reload_if_present():
                raise ContainerNotFound(f"no such container: {self.name} (removed meanwhile)")
            self._exec_held_locked()

    def _exec_held_locked(self):
        state = self.record["state"]
        if state["status"] != "created" or not state.get("pid"):
            raise Conflict(f"container {self.name} is not created and waiting to start")
        fifo = f"{self.dir}/start.fifo"
        # what the init says from now on (a failed step, or its death: EOF
        # before EXEC_NEXT), read until its last fd on the FIFO closes
        report = os.open(f"{self.dir}/report.fifo", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:  # ENXIO: nobody reads it any more, the init is gone
                raise Conflict(f"container {self.name} cannot be started: {e.strerror}") from None
            try:
                _native.start_held(fd)
            finally:
                os.close(fd)
            os.unlink(fifo)
            os.set_blocking(report, True)
            init = _native.Child.adopt(state["pid"], report)
            report = -1
            error = exec_error(init, reap=self.pid == state["pid"])
        finally:
            if report >= 0:
                os.close(report)
        os.unlink(f"{self.dir}/report.fifo")
        if error:
            # the state tells the truth: it never ran
            wait_gone(state["pid"], state.get("pid_start"))
            state.update(status="exited", exit_code=125, error=str(error), finished=now())
            self.save()
            raise error
        state.update(status="running", started=now(), **steps.health_fields(self.record))
        self.save()
        self._started()

    def _started(self):
        """After the program is running: its event, and (with a health
        check) the health monitor, off the start's path."""
        container_event(self, "start")
        if self.record.get("healthcheck"):
            from .health import spawn_monitor
            spawn_monitor(self)

    def kill(self, sig: int = 15) -> None:
        """Send signal `sig` (a number; default SIGTERM) to its process 1,
        if it runs.  A paused container is thawed first when the signal's
        default is to end the process (as docker's stop and kill do)."""
        from .numbers import integer
        sig = integer(sig, "signal", 0, 64)  # 0 probes; above 64 is no Linux signal
        state = self.record["state"]
        pid = self.pid or state.get("pid")
        if pid and pid_alive(pid, state.get("pid_start")):
            from .operations import signal
            signal(self, pid, sig)

    def wait(self, timeout: "float | None" = None) -> "Result":
        """Wait for the container to end and return a Result.  If we started
        it in the foreground we are its parent: reap it and record the end;
        a detached one's supervisor does that, we watch the record.
        timeout: seconds, then diyc.ContainerTimeout (a
        subprocess.TimeoutExpired); the container runs on."""
        if timeout is not None:
            from .container_api import wait_for_end
            wait_for_end(self, timeout)
        if not self.pid:
            from .supervisor import wait_until_exited
            ended = wait_until_exited(self)
            if self.supervisor:  # started detached by this object: ours to reap
                from .container_api import reap_supervisor
                reap_supervisor(self)
            if ended == "removed":
                raise ContainerNotFound(f"container {self.name} was removed before its end was read")
            state = self.record["state"]
            return Result(state.get("exit_code"), oom_killed=state.get("oom_killed", False),
                          container_id=self.id, args=self.record["spec"]["process"]["args"])
        _, status = waitpid(self.pid)
        exit_code = exit_code_of(status)
        oom = self.control_group().oom_killed()
        self.pid = None
        # Under the container's lock, like `rm -f`, which may be tearing the
        # same container down right now: whoever comes second finds it done.
        with self.lock():
            if self.reload_if_present():
                self.record["state"].update(status="exited", exit_code=exit_code, oom_killed=oom,
                                            finished=now())
                self.died(exit_code, oom)
                if self.record["auto_remove"]:
                    self.remove_under_lock()
                else:
                    self.release_resources()
                    self.save()
        return Result(exit_code, oom_killed=oom, container_id=self.id,
                      args=self.record["spec"]["process"]["args"])

    # -- teardown -------------------------------------------------------------

    def release_resources(self):
        """What a stopped container no longer needs: its cgroup, its address.
        Each step is idempotent (a second call finds the work done); callers
        hold the container's lock, except a start undoing its own steps."""
        self._release_network()
        removal.remove_cgroup(self.control_group())

    def _release_network(self):
        if self.record.get("network_settings"):
            from .net import network as networking
            networking.release(self)

    def discard(self):
        """After a failure, a timeout or a cancellation: kill and reap the
        init if we are its parent, then remove the container."""
        self._reap_own()
        self.remove(force=True)
        self._reap_own()  # what a start in another thread (it held the lock) made meanwhile

    def _reap_own(self):
        if self.pid:
            kill_and_reap(self.pid)
            self.pid = None

    def remove(self, force=False, v=False):
        """Remove the container (force: kill it first if it runs; v: its
        anonymous volumes too, as `rm -v` and docker-py's v=True; a --rm
        container's always go).  Racing another remover (the end of its own
        `run --rm`, its supervisor, another `rm`) is fine: the second one
        finds it gone and returns.  A start under way (it holds the lock)
        finishes first: its container is then ended like one that ran."""
        from .supervisor import wait_for_supervisor
        state = self.record["state"]
        # running, or created and held before execve (the OCI split)
        live = self.status in ("running", "created") and bool(state.get("pid"))
        if live:
            if not force and self.status == "running":
                raise Conflict(f"container {self.name} is running: stop it first or use force")
            if state.get("supervisor"):
                with self.lock():
                    if not self.reload_if_present():
                        return
                    self.record["state"]["removing"] = True
                    self.save()
            self.kill(9)
            wait_gone(self.record["state"]["pid"], self.record["state"].get("pid_start"))
            wait_for_supervisor(self)
        with self.lock():
            present = self.reload_if_present()
            # (once: one we killed and that lives on is removed as before)
            started = present and not live and self.status in ("running", "created") and \
                bool(self.record["state"].get("pid"))
            if present and not started:
                self.remove_under_lock(volumes=v)
        if started:  # a start that held the lock came first: end it too
            return self.remove(force, v)
        if self.supervisor:  # started detached by this object: ours to reap
            from .container_api import reap_supervisor
            reap_supervisor(self)

    def remove_under_lock(self, volumes=False):
        """Every step idempotent: a remove interrupted half-way (or raced)
        is finished by the next one.  What others see goes now (lease, name,
        ids, the record, the anonymous volumes with `volumes` or --rm); the
        cgroup and the writable layer follow, in a served `run --rm` after
        the reply (diyc.removal)."""
        self._release_network()
        release_name(self.root, self.name, self.id)
        if self.record.get("userns"):
            from . import userns
            userns.release(self.root, self.id, self.record["userns"])
        mounts = self.record["spec"].get("mounts") or ()
        if (volumes or self.record.get("auto_remove")) and any(m.get("anonymous") for m in mounts):
            from .volumes import remove_anonymous
            remove_anonymous(self.root, mounts, but=self.id)
        staged = removal.stage(self.root, self.dir, self.id)
        container_event(self, "destroy")
        # The lock file once the record is out of containers/: a newcomer's
        # open() makes a new one that our flock does not exclude, so it must
        # find the record gone already.
        self.unlink_lock()
        removal.finish_staged(staged, self.dir, self.control_group())


    # -- the library's conveniences (diyc.container_api does the work) ------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        from .container_api import remove_at_exit
        remove_at_exit(self)
        return False

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        import asyncio
        from .container_api import remove_at_exit
        # in a worker thread, and to the end even if the task is cancelled
        await asyncio.shield(asyncio.to_thread(remove_at_exit, self))
        return False

    def logs(self, *, stdout: "bool" = True, stderr: "bool" = True, stream: "bool" = False,
             follow: "bool" = False, since: "float | None" = None, until: "float | None" = None,
             tail: "int | None" = None, timestamps: "bool" = False):
        """The output a detached container logged (`diyc logs`): bytes, or
        with stream=True an iterator of lines (bytes, each ending in \\n).
        follow: until the container ends (with stream=False: all of it,
        once it has ended).  since, until: a Unix time (float), a datetime
        or docker's text ("2026-11-29T21:00:00Z", "10m" ago); only the
        lines from since and before until.  tail: only the last N lines.
        timestamps: each line starts with its RFC 3339 time."""
        from .container_api import logs
        lines = logs(self, stdout=stdout, stderr=stderr, follow=follow, since=since, until=until,
                     tail=tail, timestamps=timestamps)
        return lines if stream else b"".join(lines)

    def attach(self, *, stdout: "bool" = True, stderr: "bool" = True, logs: "bool" = False):
        """Stream a detached container's output from now on (with logs=True
        from its start): an iterator of lines (bytes) that ends when the
        container does."""
        from .container_api import logs as log_lines
        return log_lines(self, stdout=stdout, stderr=stderr, follow=True,
                         tail=None if logs else 0)

    def exec_run(self, cmd: "str | Sequence[str]", *,
                 env: "Mapping[str, str | int | None] | Sequence[str] | None" = None,
                 workdir: "str | None" = None, user: "str | None" = None, stdin=None,
                 stdout=None, stderr=None, capture_output: "bool" = True,
                 input: "bytes | str | None" = None, text: "bool" = False,
                 encoding: "str | None" = None, errors: "str | None" = None, check: "bool" = False,
                 timeout: "float | None" = None, detach: "bool" = False) -> "Result":
        """Run a command in this running container (`diyc exec`) and return
        a Result.  Output is captured unless capture_output=False or
        stdout/stderr say otherwise (the conventions of diyc.run, which are
        subprocess's).  timeout: the command is killed, then
        diyc.ContainerTimeout.  detach: do not wait (Result.returncode None)."""
        from .container_api import exec_run
        return exec_run(self, cmd, env=env, workdir=workdir, user=user, stdin=stdin,
                        stdout=stdout, stderr=stderr, capture_output=capture_output, input=input,
                        text=text, encoding=encoding, errors=errors, check=check,
                        timeout=timeout, detach=detach)

    def stop(self, timeout: "float | None" = None) -> "bool":
        """As `diyc stop`: its stop signal (SIGTERM unless stop_signal= or
        the image said otherwise), then SIGKILL after `timeout` seconds
        (None: its stop_timeout, else 10).  -> False if it was not running."""
        from .container_api import reap_supervisor
        from .supervisor import stop
        stopped = stop(self, timeout)
        reap_supervisor(self)
        return stopped

    def stats(self, interval: "float" = 0.5) -> "dict":
        """One sample of its resource use, as `diyc stats --no-stream`:
        {"cpu_percent" (over `interval` seconds; 100 = one CPU), "memory",
        "memory_limit" (bytes), "memory_percent", "pids", "net_rx", "net_tx",
        "block_read", "block_write" (bytes)}."""
        from .stats import sample
        return dict(sample([self], interval)[0], id=self.id, name=self.name)

    @property
    def attrs(self) -> "dict":
        """docker's inspect of it, as docker-py's container.attrs and `diyc
        inspect`: {"Id", "Name": "/NAME", "State": {"Status", "Running",
        "Pid", "ExitCode", ...}, "Config", "HostConfig", "NetworkSettings",
        "Mounts", ...}, read afresh each time."""
        from .container_api import attrs
        return attrs(self)

    def top(self, ps_args: "str | Sequence[str] | None" = None) -> "dict":
        """docker-py's top(): {"Titles": ps -ef's ["UID", "PID", ... "CMD"],
        "Processes": [[...], ...]}; ps_args: the host's ps with these options."""
        from .container_api import top
        return top(self, ps_args)


def cleanup(root=None):
    """Remove what crashed runs left: records of dead --rm containers, the
    cgroups of dead containers, staging dirs, dangling names.  Lines out."""
    root = root if isinstance(root, Root) else Root(root)
    out = []
    for c in Container.list(root, all=True, held=True):
        if c.status != "dead":
            continue
        if c.record["auto_remove"]:
            c.remove(force=True)
            out.append(f"removed dead container {c.id[:12]} ({c.name})")
            continue
        with c.lock():
            if not c.reload_if_present() or c.status != "dead":
                continue  # removed or restarted meanwhile
            c.release_resources()
            c.record["state"].update(status="exited", exit_code=255, finished=now())
            c.save()
        out.append(f"marked dead container {c.id[:12]} ({c.name}) as exited")
    for cid in listdir(root.containers):
        d = root.container_dir(cid)
        if time.time() - os.stat(d).st_mtime <= 60:
            continue  # maybe one being created now
        try:
            read_json(f"{d}/container.json")
            continue
        except FileNotFoundError:
            pass
        except ValueError:
            # a --rm container's record (written without fsync) that a power
            # cut left empty; a directory with changes in it stays
            if os.path.isdir(f"{d}/upper"):
                out.append(f"kept container dir {cid[:12]}: its record is corrupt, and upper/ holds its changes")
                continue
        remove_tree(d)
        out.append(f"removed incomplete container dir {cid[:12]}")
    for name in listdir(root.names):
        target = os.readlink(f"{root.names}/{name}")
        if not os.path.exists(root.container_dir(target)):
            release_name(root, name, target)
            out.append(f"released name {name}")
    for entry in listdir(root.tmp):
        # staging dirs are named <kind>-<pid>-<random>: keep live writers' ones
        parts = entry.split("-")
        if len(parts) >= 3 and parts[1].isdigit() and os.path.exists(f"/proc/{parts[1]}"):
            continue
        if entry.startswith(removal.STAGING_PREFIX + "-"):
            removal.finish_abandoned(root, entry)  # its cgroups too
        else:
            remove_tree(f"{root.tmp}/{entry}")
        out.append(f"removed staging {entry}")
    from .net import network as networking
    out += networking.cleanup(root)  # leases and ports of containers that are gone
    return out


def _library_shapes(options):
    """Any option in a shape only a library caller gives (a mapping, a list
    of other than str, one str for a list), for diyc.arguments to turn
    into the CLI's."""
    if isinstance(options.get("stop_signal"), int):
        return True
    for name, value in options.items():
        if isinstance(value, (str, int)) and not isinstance(value, bool) and \
                isinstance(create_steps.CREATE_OPTIONS.get(name), tuple):
            return True
        if hasattr(value, "items") or (isinstance(value, (list, tuple)) and
                                       not all(isinstance(v, str) for v in value)):
            return True
    return False
