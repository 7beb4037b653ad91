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

Container.start() reads as these steps, each a method of its own.
"""

import os
import time

from . import _native, cgroups, config
from .errors import Conflict, ContainerNotFound, DiycError, InvalidArgument, init_error
from .images import ImageStore
from .rootfs import SECCOMP_ANNOTATION, init_config, overlay_options, remove_writable_layer, spawn_in
from .state import Root, pid_alive, process_start_time, process_status, read_json, release_name, remove_tree, reserve_name, write_json
from .trace import Trace


def _now():
    return time.time()


class Result:
    """What a finished container leaves: exit code, output if captured."""

    def __init__(self, exit_code, stdout=None, stderr=None, oom_killed=False, container_id=None, timings=None):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.oom_killed = oom_killed
        self.id = container_id
        self.timings = timings or {}

    @property
    def returncode(self):
        return self.exit_code

    def __repr__(self):
        return f"Result(exit_code={self.exit_code}, oom_killed={self.oom_killed})"


class Container:
    def __init__(self, root, record, trace=None):
        self.root = root
        self.record = record
        self.trace = trace or Trace()
        self.pid = None  # set only while we are the parent of its init
        self.cgroup = None
        self.limit_warnings = []  # limits the kernel took but does not enforce

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
            # held before execve (create/start split): gone means stopped
            return "created" if pid_alive(state["pid"], state.get("pid_start")) else "stopped"
        if state["status"] == "created" and self.record["auto_remove"] and \
                not pid_alive(state.get("creator"), state.get("creator_start")):
            return "dead"
        return state["status"]

    def _save(self):
        # a --rm container's record dies with it: no fsync on its start path
        write_json(f"{self.dir}/container.json", self.record, durable=not self.record["auto_remove"])

    # -- create -------------------------------------------------------------

    @classmethod
    def create(cls, image, command=None, *, root=None, **options):
        """Validate everything, then record a container in state `created`.
        From resolving the image until the record exists, the image is held
        in use: `rmi` waits, then sees the record and refuses."""
        root = root if isinstance(root, Root) else Root(root)
        with ImageStore(root).using():
            return cls._create(image, command, root=root, **options)

    @classmethod
    def _create(cls, image, command=None, *, name=None, hostname=None, env=(), workdir=None,
               user=None, entrypoint=None, memory=None, memory_swap=None, cpus=None,
               pids_limit=None, network="none", ip=None, publish=(), auto_remove=False,
               rm_tmpfs_size=None, cgroup_parent=None,
               read_only=False, privileged=False, cap_add=(), cap_drop=(), security_opt=(),
               ulimits=(), sysctls=(), oom_score_adj=None, devices=(), tmpfs=(),
               restart=None, log_opts=(), volumes=(), init=False, tty=False, userns=None,
               root=None, trace=None):
        config.check_run_arguments({
            "image": None if isinstance(image, dict) else image, "command": command, "name": name, "hostname": hostname, "env": env,
            "workdir": workdir, "user": user, "entrypoint": entrypoint, "network": network,
            "ip": ip, "publish": publish, "cgroup_parent": cgroup_parent, "cap_add": cap_add,
            "cap_drop": cap_drop, "security_opt": security_opt, "ulimits": ulimits,
            "sysctls": sysctls, "devices": devices, "tmpfs": tmpfs, "restart": restart,
            "log_opts": log_opts, "volumes": volumes, "userns": userns})
        trace = trace or Trace()
        root = root if isinstance(root, Root) else Root(root)
        netplan = None
        if network not in ("none", "host"):
            from . import network as networking
            netplan = networking.plan(root, network, ip=ip, publish=publish)
        elif ip is not None or publish:
            raise InvalidArgument(f"--ip and -p/--publish need a bridge network, not --network {network}")
        if userns not in (None, "", "host", "auto"):
            raise InvalidArgument(f"invalid --userns {userns!r}: expected auto or host")
        mem = config.parse_memory(memory) if memory is not None else None
        swap = config.parse_memory_swap(memory_swap, mem) if memory_swap is not None else None
        res = config.resources(
            memory=mem, memory_swap=swap,
            cpus=config.parse_cpus(cpus) if cpus is not None else None,
            pids_limit=config.parse_pids_limit(pids_limit) if pids_limit is not None else None)
        if name is not None:
            config.check_name(name)
        if hostname is not None:
            config.check_hostname(hostname)
        if workdir is not None and not workdir.startswith("/"):
            raise InvalidArgument(f"invalid working directory {workdir!r}: must be absolute")
        from . import security
        sec = security.SecurityOptions(privileged, cap_add, cap_drop, security_opt, ulimits,
                                       sysctls, oom_score_adj, devices, network)
        res["devices"] = sec.device_rules
        mounts = [config.parse_tmpfs(t) for t in tmpfs or ()]
        from .lifecycle import parse_log_opts, parse_restart_policy
        restart_policy = parse_restart_policy(restart)
        if auto_remove and restart_policy["name"] != "no":
            raise InvalidArgument("--restart and --rm cannot be combined")
        scratch_size = _rm_tmpfs_size(rm_tmpfs_size, auto_remove)
        log = parse_log_opts(log_opts)

        store = ImageStore(root.ensure())
        # `image`: a reference, or an image record (a build step's layers and
        # config, which need no name in the store)
        image_record = image if isinstance(image, dict) else store.get(image)
        image = image_record["id"] if isinstance(image, dict) else image
        image_config = config.image_run_config(image_record["config"])
        layer_dirs = store.layer_dirs(image_record)

        args = _command(image_config, command, entrypoint)
        if init:
            args = ["/dev/init", "--"] + args
        from .users import resolve_user
        uid, gid, groups, home = resolve_user(user or image_config["User"] or "0", layer_dirs)
        env = config.merge_env(image_config["Env"], env, os.environ)
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={home}")
        if volumes:  # after the checks: this makes named volumes and missing host dirs
            from .volumes import parse_volume
            mounts += [parse_volume(root, v) for v in volumes]
        if init:
            from .lifecycle import INIT_BINARY
            mounts.append({"destination": "/dev/init", "type": "bind", "source": INIT_BINARY,
                           "options": ["bind", "ro"]})

        cid = os.urandom(32).hex()
        generated = name is None
        name = name or _generated_name(root, cid)
        hostname = hostname or cid[:12]
        if not any(e.startswith("HOSTNAME=") for e in env):
            env.insert(0, f"HOSTNAME={hostname}")
        cdir = root.container_dir(cid)
        # The overlay's mount point.  A --rm container mounts it on the
        # scratch dir, in its own mount namespace: on the empty dir itself,
        # or on a dir in the tmpfs it mounts there (--rm-tmpfs-size; the
        # idmapped layers of --userns have a scratch dir of their own).  A
        # kept one has its own.  (_prepare_rootfs decides the same at start.)
        if not auto_remove:
            rootfs = f"{cdir}/merged"
        elif userns == "auto":
            rootfs = f"{cdir}/scratch/merged"
        elif scratch_size:
            rootfs = f"{root.scratch}/merged"
        else:
            rootfs = root.scratch
        if netplan:
            mounts += networking.etc_mounts(cdir)
        elif network.startswith("container:"):
            mounts += networking.joined_mounts(root, network)
        spec = config.make_spec(
            args, env=env, cwd=workdir or image_config["WorkingDir"] or "/",
            uid=uid, gid=gid, groups=groups, hostname=hostname, rootfs=rootfs,
            readonly=read_only, network=network, res=res, mounts=mounts, **sec.spec_fields(uid))
        spec["process"]["terminal"] = tty
        ids = None
        if userns == "auto":
            from . import userns as user_namespaces
            ids = user_namespaces.allocate(root, cid)
            spec["linux"]["namespaces"].append({"type": "user"})
            spec["linux"]["uidMappings"], spec["linux"]["gidMappings"] = user_namespaces.mappings(ids)
            if network == "host":  # a fresh sysfs needs a network namespace of our own
                for m in spec["mounts"]:
                    if m["type"] == "sysfs":
                        m.update(type="bind", source="/sys",
                                 options=["rbind", "ro", "nosuid", "noexec", "nodev"])
        spec["annotations"] = {SECCOMP_ANNOTATION: sec.seccomp}
        if sec.seccomp_profile is not None:
            spec["linux"]["seccomp"] = sec.seccomp_profile
        cgroup = cgroups.open_cgroup(f"diyc-{cid}", cgroup_parent)
        record = {
            "id": cid,
            "name": name,
            "image": image,
            "image_id": image_record["id"],
            "layers": layer_dirs,
            "created": _now(),
            "auto_remove": auto_remove,
            "rm_tmpfs_size": scratch_size,  # None: the writable layer is on disk
            "tty": tty,
            "restart": restart_policy,
            "log": log,
            "network": network,
            "network_settings": netplan,
            "userns": ids,
            "cgroup": {"version": cgroup.version,
                       "paths": cgroup.paths if cgroup.version == 1 else {"": cgroup.path}},
            "spec": spec,
            # who is creating it: a --rm container whose creator died before
            # starting it is garbage, not a container someone will start
            "state": {"status": "created", "creator": os.getpid(),
                      "creator_start": process_start_time(os.getpid())},
        }
        if not reserve_name(root, name, cid) and not (
                generated and reserve_name(root, name := f"{name}_{cid[:6]}", cid)):
            if ids:
                user_namespaces.release(root, cid, ids)
            raise Conflict(f"the container name {name!r} is already in use")
        record["name"] = name  # (a generated name may have needed its suffix)
        # The directory is filled in tmp/ and renamed into place: a container
        # dir without its record never exists, whenever diyc is killed.
        staging = f"{root.tmp}/ctr-{os.getpid()}-{cid[:12]}"
        try:
            os.mkdir(staging, 0o700)
            if ids:  # searched by its root's gid, through an fd (userns.ContainerPaths)
                os.chown(staging, -1, ids["gid"])
                os.chmod(staging, 0o710)
            if netplan:
                networking.write_etc_files(staging, hostname)
            write_json(f"{staging}/container.json", record, durable=not auto_remove)
            os.rename(staging, cdir)
        except BaseException:
            release_name(root, name, cid)
            if ids:
                user_namespaces.release(root, cid, ids)
            remove_tree(staging)
            raise
        trace.mark("config")
        return cls(root, record, trace)

    @classmethod
    def load(cls, ref, root=None):
        """A container by name, id or unique id prefix."""
        root = root if isinstance(root, Root) else Root(root)
        cid = None
        try:
            cid = os.readlink(f"{root.names}/{ref}")
        except OSError:
            if len(ref) >= 3 and all(c in "0123456789abcdef" for c in ref):
                matches = [c for c in _listdir(root.containers) if c.startswith(ref)]
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
    def list(cls, root=None):
        root = root if isinstance(root, Root) else Root(root)
        out = []
        for cid in _listdir(root.containers):
            try:
                out.append(cls(root, read_json(f"{root.container_dir(cid)}/container.json")))
            except (FileNotFoundError, NotADirectoryError, ValueError):
                continue  # being created or removed right now
        return sorted(out, key=lambda c: c.record["created"], reverse=True)

    # -- start --------------------------------------------------------------

    def _cgroup(self):
        if self.cgroup is None:
            cg = self.record["cgroup"]
            self.cgroup = cgroups.CgroupV1(dict(cg["paths"])) if cg["version"] == 1 \
                else cgroups.CgroupV2(cg["paths"][""])
        return self.cgroup

    def _prepare_rootfs(self, place=None):
        """-> (overlay options, scratch dir or None, its size cap or None,
        root path or None).  The scratch dir gets a tmpfs of the init's own:
        for the idmapped copies of the layers (--userns) and for upper and
        work (--rm-tmpfs-size).  place(path): the path the init resolves for
        a host path (a user namespace's: see userns.ContainerPaths)."""
        if (self.record.get("rootfs") or {}).get("bind"):
            return None, None, None, None  # an OCI bundle's rootfs: used as it is, no overlay
        place = place or (lambda path: path)
        lowers = self.record["layers"]
        userns = self.record.get("userns")
        scratch_size = self.record.get("rm_tmpfs_size")
        scratch = None
        if userns:
            # on a directory of its own, which the container's root may reach
            scratch = f"{self.dir}/scratch"
            try:
                os.mkdir(scratch, 0o755)
            except FileExistsError:
                pass
            lowers = [place(f"{scratch}/lower{i}") for i in range(len(lowers))]
        elif scratch_size:
            scratch = self.root.scratch
        if scratch_size:  # --rm-tmpfs-size: upper and work on the capped tmpfs
            return (overlay_options(lowers, place(f"{scratch}/upper"), place(f"{scratch}/work")),
                    place(scratch), scratch_size, place(f"{scratch}/merged"))
        # On disk, in the container's directory (--rm too: on a tmpfs all it
        # writes would stay in RAM, charged to its memory limit); removing
        # the container removes them.  A --rm container's mount point is the
        # empty scratch dir (or the scratch tmpfs's merged/), its overlay
        # volatile: never synced.
        for d in ("upper", "work") if self.record["auto_remove"] else ("upper", "work", "merged"):
            try:
                os.mkdir(f"{self.dir}/{d}", 0o755)
                if userns and d != "merged":  # written by the container's root
                    os.chown(f"{self.dir}/{d}", userns["uid"], userns["gid"])
            except FileExistsError:
                pass  # a restart keeps the container's changes
        if not self.record["auto_remove"]:
            rootfs = place(f"{self.dir}/merged")
        elif scratch:
            rootfs = place(f"{scratch}/merged")
        else:
            rootfs = self.root.scratch
        return (overlay_options(lowers, place(f"{self.dir}/upper"), place(f"{self.dir}/work"),
                                volatile=self.record["auto_remove"]),
                place(scratch) if scratch else None, None, rootfs)

    def start(self, stdio=(-1, -1, -1), detach=False, hold_before_exec=False, console_fd=None,
              preserve_fds=0):
        """Start the container's process; returns once it has exec'd.
        detach: a supervisor (diyc-shim) becomes the container's parent,
        keeps its output in a log and records its end; we may exit.
        hold_before_exec: the OCI create/start split - return once the init
        is ready and blocked just before execve; exec_held() lets it go.
        console_fd: a unix socket; the init gets a terminal made in the
        container's devpts and sends its master there (OCI console socket).
        preserve_fds: our fds 3 .. 3+N-1 stay open in the container.

        The steps, as the module's docstring tells them: cgroup, rootfs
        (the init's description), clone, userns, network, release, exec."""
        if self.record["state"]["status"] == "running" and self.status == "running":
            raise Conflict(f"container {self.name} is already running")
        t = self.trace
        held = _StartHeld()
        try:
            held.cgroup_fds = self._create_cgroup()
            t.mark("cgroup")
            init = self._describe_init(held, stdio, console_fd, preserve_fds)
            if hold_before_exec:
                self._make_start_fifos(init, held)
            if detach:
                from .lifecycle import supervisor_setup
                supervisor_setup(self, init, held.for_child)
            t.mark("rootfs")
            child = held.child = self._clone(init, held)
            self.pid = child.pid
            if init.userns:
                self._map_user_namespace(child)
            t.mark("clone")
            if self.record.get("network_settings"):  # the child is paused before execve
                from . import network as networking
                networking.connect(self, child.pid)
                t.mark("network")
            self._release_and_wait(child, hold_before_exec, t)
            t.mark("exec")
        except BaseException:
            held.undo()
            self.pid = None
            self._release_resources()
            raise
        finally:
            held.close()
        self._record_started(child, hold_before_exec)
        return child.pid

    def _create_cgroup(self):
        """The container's cgroup with its limits -> the open files the
        init writes to join it."""
        cgroup = self._cgroup()
        resources = self.record["spec"]["linux"]["resources"]
        cgroup.create(resources) if cgroup.version == 2 else cgroup.create()
        self.limit_warnings = cgroup.set_limits(resources) or []
        return [os.open(f, os.O_WRONLY | os.O_CLOEXEC) for f in cgroup.join_files()]

    def _describe_init(self, held, stdio, console_fd, preserve_fds):
        """The init's description: the spec's, with the root filesystem we
        prepare, the cgroup to join and (--userns) the paths it must
        reopen and how many idmapped layers it gets."""
        spec = self.record["spec"]
        if self.record.get("userns"):  # its uid may not search the diyc root
            from .userns import ContainerPaths
            held.place = ContainerPaths(self.root.path, self.dir)
        place = held.place
        overlay, scratch, scratch_size, rootfs = self._prepare_rootfs(place)
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
            oci = self.record.get("oci") or {}
            init.hook_state = hook_state(spec.get("ociVersion", ""), self.name,
                                         oci.get("bundle", ""), oci.get("annotations") or {})
        if init.userns:
            init.n_layers = len(self.record["layers"])
        if console_fd is not None:
            init.console_fd = console_fd
        init.preserve_fds = preserve_fds
        return init

    def _make_start_fifos(self, init, held):
        """The create/start split: the init holds on start.fifo until
        `start` writes to it, then reports to report.fifo.  Opened here,
        O_RDWR, for the init: a mapped root could not."""
        for name in ("start", "report"):
            fifo = f"{self.dir}/{name}.fifo"
            if os.path.lexists(fifo):
                os.unlink(fifo)
            os.mkfifo(fifo, 0o600)
            held.for_child.append(os.open(fifo, os.O_RDWR | os.O_CLOEXEC))
        init.start_fifo_fd, init.report_fifo_fd = held.for_child[-2:]

    def _clone(self, init, held):
        """_native.spawn, in the network namespace of the container we
        share it with (--network container:NAME) -> a _native.Child."""
        try:
            if self.record.get("network", "").startswith("container:"):
                from . import network as networking
                return networking.spawn_joined(self, init)
            return spawn_in(init)
        except OSError as e:
            raise init_error(getattr(e, "step", "clone"), e.errno, getattr(e, "detail", "")) from None
        finally:
            held.close_for_child()  # the container's and the supervisor's now

    def _map_user_namespace(self, child):
        """The child waits in its new user namespace: give it id maps, then
        let it go on with its idmapped layers."""
        from . import userns
        linux = self.record["spec"]["linux"]
        userns.write_maps(child.pid, linux["uidMappings"], linux["gidMappings"])
        layers = userns.idmapped_layers(child.pid, self.record["layers"])
        try:
            child.id_maps_done(layers)
        finally:
            for fd in layers:
                os.close(fd)

    @staticmethod
    def _release_and_wait(child, hold_before_exec, t):
        """Let the child go on to execve (or to hold before it) and raise
        what it reports instead."""
        try:
            child.release()
            t.mark("release")
        finally:
            error = exec_error(child, reap=not child.supervisor, ready=hold_before_exec)
        if error:
            raise error

    def _record_started(self, child, hold_before_exec):
        state = self.record["state"]
        self.record["state"] = {"status": "created" if hold_before_exec else "running", "pid": child.pid,
                                "pid_start": process_start_time(child.pid), "started": _now(),
                                "restart_count": state.get("restart_count", 0)}
        if child.supervisor:
            self.pid = None  # the supervisor is its parent, not us
            self.record["state"].update(supervisor=child.supervisor,
                                        supervisor_start=process_start_time(child.supervisor))
        self._save()

    # -- run-time ---------------------------------------------------------------

    def exec_held(self):
        """Let an init held by start(hold_before_exec=True) go on to execve."""
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
            _wait_gone(state["pid"], state.get("pid_start"))
            state.update(status="exited", exit_code=125, error=str(error), finished=_now())
            self._save()
            raise error
        state["status"] = "running"
        state["started"] = _now()
        self._save()

    def reload(self):
        self.record = read_json(f"{self.dir}/container.json")
        return self

    def kill(self, sig=15):
        from .numbers import integer
        sig = integer(sig, "signal", 0, 64)  # 0 probes; above 64 is no Linux signal
        state = self.record["state"]
        pid = self.pid or state.get("pid")
        if pid and pid_alive(pid, state.get("pid_start")):
            os.kill(pid, sig)

    def wait(self):
        """Wait for the container to end and return a Result.  If we started
        it in the foreground we are its parent: reap it and record the end;
        a detached one's supervisor does that, we watch the record."""
        from .lifecycle import container_lock, reload_if_present, wait_until_exited
        if not self.pid:
            if wait_until_exited(self) == "removed":
                raise ContainerNotFound(f"container {self.name} was removed before its end was read")
            state = self.record["state"]
            return Result(state.get("exit_code"), oom_killed=state.get("oom_killed", False),
                          container_id=self.id)
        _, status = _waitpid(self.pid)
        code = os.waitstatus_to_exitcode(status)
        exit_code = 128 - code if code < 0 else code
        oom = self._cgroup().oom_killed()
        self.pid = None
        # Under the container's lock, like `rm -f`, which may be tearing the
        # same container down right now: whoever comes second finds it done.
        with container_lock(self):
            if reload_if_present(self):
                self.record["state"].update(status="exited", exit_code=exit_code, oom_killed=oom,
                                            finished=_now())
                self._release_resources()
                if self.record["auto_remove"]:
                    self._remove_unlocked()
                else:
                    self._save()
        return Result(exit_code, oom_killed=oom, container_id=self.id)

    # -- teardown -------------------------------------------------------------

    def _release_resources(self):
        """What a stopped container no longer needs: its cgroup, its address.
        Each step is idempotent (a second call finds the work done); callers
        hold the container's lock, except a start undoing its own steps."""
        if self.record.get("network_settings"):
            from . import network as networking
            networking.release(self)
        cgroup = self._cgroup()
        if cgroup.version == 1:
            cgroup.created = [p for p in cgroup.paths.values() if os.path.isdir(p)]
        else:
            cgroup.created = os.path.isdir(cgroup.path)
        cgroup.remove()

    def remove(self, force=False):
        """Remove the container (force: kill it first if it runs).  Racing
        another remover (the end of its own `run --rm`, its supervisor,
        another `rm`) is fine: the second one finds it gone and returns."""
        from .lifecycle import _wait_for_supervisor, container_lock, reload_if_present
        state = self.record["state"]
        # running, or created and held before execve (the OCI split)
        if self.status in ("running", "created") and state.get("pid"):
            if not force and self.status == "running":
                raise Conflict(f"container {self.name} is running: stop it first or use force")
            if state.get("supervisor"):
                with container_lock(self):
                    if not reload_if_present(self):
                        return
                    self.record["state"]["removing"] = True
                    self._save()
            self.kill(9)
            _wait_gone(self.record["state"]["pid"], self.record["state"].get("pid_start"))
            _wait_for_supervisor(self)
        with container_lock(self):
            if reload_if_present(self):
                self._remove_unlocked()

    def _remove_unlocked(self):
        """Every step idempotent: a remove interrupted half-way (or raced)
        is finished by the next one."""
        self._release_resources()
        release_name(self.root, self.name, self.id)
        if self.record.get("userns"):
            from . import userns
            userns.release(self.root, self.id, self.record["userns"])
        # the writable layer first, the record next: a diyc killed in between
        # leaves a record `diyc cleanup` finds, and removes again
        remove_writable_layer(self.dir)
        try:
            os.unlink(f"{self.dir}/container.json")
            os.rmdir(self.dir)
        except OSError:
            remove_tree(self.dir)
        # The lock file last: once it is unlinked, a newcomer's open()
        # makes a new one that our flock does not exclude, so it must
        # find the record gone already.
        try:
            os.unlink(f"{self.root.path}/locks/{self.id}.lock")
        except FileNotFoundError:
            pass


def cleanup(root=None):
    """Remove what crashed runs left: records of dead --rm containers, the
    cgroups of dead containers, staging dirs, dangling names.  Lines out."""
    root = root if isinstance(root, Root) else Root(root)
    out = []
    from .lifecycle import container_lock, reload_if_present
    for c in Container.list(root):
        if c.status != "dead":
            continue
        if c.record["auto_remove"]:
            c.remove(force=True)
            out.append(f"removed dead container {c.id[:12]} ({c.name})")
            continue
        with container_lock(c):
            if not reload_if_present(c) or c.status != "dead":
                continue  # removed or restarted meanwhile
            c._release_resources()
            c.record["state"].update(status="exited", exit_code=255, finished=_now())
            c._save()
        out.append(f"marked dead container {c.id[:12]} ({c.name}) as exited")
    for cid in _listdir(root.containers):
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
    for name in _listdir(root.names):
        target = os.readlink(f"{root.names}/{name}")
        if not os.path.exists(root.container_dir(target)):
            release_name(root, name, target)
            out.append(f"released name {name}")
    for entry in _listdir(root.tmp):
        # staging dirs are named <kind>-<pid>-<random>: keep live writers' ones
        parts = entry.split("-")
        if len(parts) >= 3 and parts[1].isdigit() and os.path.exists(f"/proc/{parts[1]}"):
            continue
        remove_tree(f"{root.tmp}/{entry}")
        out.append(f"removed staging {entry}")
    from . import network as networking
    out += networking.cleanup(root)  # leases and ports of containers that are gone
    return out


_ADJECTIVES = ("brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nimble", "proud", "quiet", "sharp", "swift", "tidy", "vivid", "witty")
_NAMES = ("babbage", "curie", "dijkstra", "hopper", "knuth", "lamport", "liskov", "lovelace",
          "noether", "pike", "ritchie", "shannon", "thompson", "torvalds", "turing", "wirth")


def _generated_name(root, cid):
    """A docker-style name (`swift_hopper`), made unique with the id when taken."""
    n = int(cid[:8], 16)
    name = f"{_ADJECTIVES[n % len(_ADJECTIVES)]}_{_NAMES[(n >> 8) % len(_NAMES)]}"
    if os.path.lexists(f"{root.names}/{name}"):
        name = f"{name}_{cid[:6]}"
    return name


def _rm_tmpfs_size(value, auto_remove):
    """--rm-tmpfs-size SIZE -> bytes, or None (the default: on disk)."""
    if value is None:
        return None
    if not auto_remove:
        raise InvalidArgument("--rm-tmpfs-size needs --rm: a kept container's changes live on disk")
    n = config.parse_size(value, "--rm-tmpfs-size")
    if n < 1 << 20:  # (and tmpfs reads size=0 as no limit at all)
        raise InvalidArgument(f"invalid --rm-tmpfs-size {value!r}: the minimum is 1m")
    return n


def _command(image_config, command, entrypoint):
    """image_config: as config.image_run_config() returns it."""
    entry = [entrypoint] if isinstance(entrypoint, str) else list(entrypoint or image_config["Entrypoint"] or [])
    if entrypoint == "":
        entry = []
    cmd = list(command) if command else list(image_config["Cmd"] or []) if entrypoint is None else []
    args = entry + cmd
    if not args:
        raise InvalidArgument("no command given and the image has neither Cmd nor Entrypoint")
    return args


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _waitpid(pid):
    while True:
        try:
            return os.waitpid(pid, 0)
        except ChildProcessError:
            return pid, 255 << 8
        except InterruptedError:
            continue


class _StartHeld:
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


def _kill_and_reap(pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    _waitpid(pid)


def exec_error(child, reap, pid=None, ready=False):
    """None once `child` (a _native.Child) has reached its program - with
    ready, once it holds before execve - else the exception for what it
    reported.  An init that died without a word (a signal, the OOM killer)
    shows as such; one that dies after its last report (a seccomp KILL of
    execve itself) as a zombie still named INIT_COMM: execve renames it.
    Its fds close a moment before either, so we look until one shows.
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
        status = _waitpid(pid)[1]
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
    return init_error("init", 0, f"the container's init {how} before execve")


def _wait_gone(pid, start_time, timeout=10.0):
    """Wait for a process that may not be our child to be gone (a zombie
    counts as gone)."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid, start_time) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.005)


def run(image, command=None, *, capture_output=False, stdin=None, stdout=None, stderr=None,
        input=None, root=None, trace=False, **options):
    """Run a container to completion, like `diyc run --rm`, and return a
    Result (exit code, output if captured, OOM flag, phase timings).

        diyc.run("busybox", ["echo", "hi"], memory="64m", capture_output=True)
    """
    options.setdefault("auto_remove", True)
    tr = trace if isinstance(trace, Trace) else Trace(enabled=bool(trace))
    ctr = Container.create(image, command, root=root, trace=tr, **options)
    pipes = []
    try:
        stdio = [-1, -1, -1]
        if input is not None:
            r, w = os.pipe()
            stdio[0] = r
            pipes.append(["in", w, r])
        elif stdin is not None:
            stdio[0] = stdin if isinstance(stdin, int) else stdin.fileno()
        for i, (want, given) in enumerate(((capture_output, stdout), (capture_output, stderr)), 1):
            if want:
                r, w = os.pipe()
                stdio[i] = w
                pipes.append(["out" if i == 1 else "err", r, w])
            elif given is not None:
                stdio[i] = given if isinstance(given, int) else given.fileno()
        try:
            ctr.start(tuple(stdio))
        finally:
            for _, _, child_end in pipes:
                os.close(child_end)
        out = _communicate(pipes, input)
        result = ctr.wait()
    except BaseException:
        if ctr.pid:
            _kill_and_reap(ctr.pid)
            ctr.pid = None
        try:
            ctr.remove(force=True)
        except DiycError:
            pass
        raise
    finally:
        for _, fd, _ in pipes:
            if fd >= 0:
                os.close(fd)
    result.stdout, result.stderr = out.get("out"), out.get("err")
    tr.mark("wait")
    result.timings = tr.as_dict()
    return result


def _communicate(pipes, input):
    """Feed stdin and collect stdout/stderr until the container closes them."""
    if not pipes:
        return {}
    import select
    chunks = {kind: [] for kind, _, _ in pipes if kind != "in"}
    fds = {p[1]: p for p in pipes}
    pending = memoryview(input or b"")
    poller = select.poll()
    for fd, pipe in fds.items():
        poller.register(fd, select.POLLOUT if pipe[0] == "in" else select.POLLIN)
    while fds:
        for fd, _ in poller.poll():
            pipe = fds[fd]
            kind = pipe[0]
            if kind == "in":
                try:
                    n = os.write(fd, pending[:65536]) if pending else 0
                except BrokenPipeError:
                    n, pending = 0, pending[:0]
                pending = pending[n:]
                if not pending:
                    poller.unregister(fd)
                    os.close(fd)  # EOF for the container's stdin
                    pipe[1] = -1
                    del fds[fd]
                continue
            data = os.read(fd, 65536)
            if data:
                chunks[kind].append(data)
            else:
                poller.unregister(fd)
                del fds[fd]
    return {kind: b"".join(c) for kind, c in chunks.items()}
