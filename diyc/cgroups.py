"""cgroups: the resource limits of a container, v1 and v2.

The driver is chosen at run time: a cgroup2 filesystem at the cgroup root
(it has `cgroup.controllers`) means the unified hierarchy; anything else is
v1 or hybrid, where the limits go to the per-controller v1 hierarchies.

A container's cgroup nests under the cgroup of the calling process, per
controller, so diyc never moves anything out of the subtree it was started
in (`cgroup_parent` overrides: absolute = from the hierarchy root, relative
= under the caller's cgroup).  Limits follow the OCI `linux.resources`
schema (memory, cpu, pids, blockIO, hugepageLimits, network, devices and
v2's unified), where memory.swap is memory+swap, as in docker.  A limit the
host cannot apply is a CgroupError naming the field and the reason.
"""

import errno
import os
import time

from .errors import DiycError

CGROUP_ROOT = "/sys/fs/cgroup"
# (not freezer: `diyc pause` makes that one when it is first needed, off the start path)
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "devices")
# An OCI container joins every hierarchy, as with runc (clients read its
# cgroups from /proc/PID/cgroup); the mounted ones of these.
V1_ALL_CONTROLLERS = V1_CONTROLLERS + ("cpuset", "blkio", "freezer", "hugetlb", "net_cls",
                                       "net_prio", "perf_event")
# linux.resources.cpu's keys and their cgroup v1 files, in the order they
# are written: each period before the quota or runtime that must fit in it
V1_CPU_FILES = (("period", "cpu.cfs_period_us"), ("quota", "cpu.cfs_quota_us"),
                ("burst", "cpu.cfs_burst_us"), ("shares", "cpu.shares"), ("idle", "cpu.idle"),
                ("realtimePeriod", "cpu.rt_period_us"), ("realtimeRuntime", "cpu.rt_runtime_us"))
FREEZE_TIMEOUT = 10.0  # seconds for every task to reach the freezer (or leave it)


class CgroupError(DiycError):
    pass


def _write(path, value):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _write_optional(path, value):
    """Write a file the kernel may not offer (swap accounting off, ...)."""
    try:
        _write(path, value)
        return True
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
            return False
        raise


def _read(path):
    with open(path) as f:
        return f.read()


def oom_killed_in(oom_file, text=None):  # did it OOM-kill? (that file's text, or read here)
    try:
        return int(_flat_keyed(_read(oom_file) if text is None else text).get("oom_kill", 0)) > 0
    except (OSError, ValueError):
        return False


def _flat_keyed(text):
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        out[key] = value
    return out


def self_cgroups(proc_file="/proc/self/cgroup"):
    """{controller: path} of the calling process; the v2 path under key ''."""
    paths = {}
    for line in _read(proc_file).splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            paths[c] = path
    return paths


def _child_path(base, parent, name):
    if parent is None:
        return f"{base.rstrip('/')}/{name}"
    if parent.startswith("/"):
        return f"{parent.rstrip('/')}/{name}"
    return f"{base.rstrip('/')}/{parent.strip('/')}/{name}"


def is_v2(root=CGROUP_ROOT):
    return os.path.exists(f"{root}/cgroup.controllers")


def open_cgroup(name, parent=None, root=CGROUP_ROOT, proc_file="/proc/self/cgroup",
                controllers=V1_CONTROLLERS):
    """The cgroup a container named `name` will get (not created yet);
    `controllers`: the v1 hierarchies it joins, of those mounted."""
    own = self_cgroups(proc_file)
    if is_v2(root):
        return CgroupV2(root + _child_path(own.get("", "/"), parent, name))
    paths = {}
    for controller in controllers:
        mount = f"{root}/{controller}"
        if os.path.isdir(mount):
            paths[controller] = mount + _child_path(own.get(controller, "/"), parent, name)
    if not paths:
        raise CgroupError(f"no cgroup hierarchy found under {root}")
    return CgroupV1(paths)


def _rmdir_when_empty(path, procs_file, kill_file=None, timeout=2.0):
    """rmdir a cgroup, killing what is left in it.  A pid namespace dies
    with its init, but the kernel reaps those processes asynchronously.
    A frozen cgroup (v1's freezer) is thawed first: its tasks cannot die."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cannot remove cgroup {path}: {e.strerror}") from None
        if os.path.exists(f"{path}/freezer.state"):
            _write_optional(f"{path}/freezer.state", "THAWED")
        if kill_file and os.path.exists(kill_file):
            _write_optional(kill_file, 1)
        else:
            try:
                for pid in _read(procs_file).split():
                    try:
                        os.kill(int(pid), 9)
                    except ProcessLookupError:
                        pass
            except FileNotFoundError:
                return
        time.sleep(0.002)


def _set(directory, file, value, field):
    """Write one limit; a failure names the OCI field and the reason.  (A
    file the kernel does not offer cannot be created: O_CREAT is only for
    the plain directories of the fake-v2 tests.)"""
    try:
        _write(f"{directory}/{file}", value)
    except OSError as e:
        missing = e.errno == errno.ENOENT or not os.path.exists(f"{directory}/{file}")
        why = "this host's kernel does not offer it" if missing else e.strerror
        raise CgroupError(f"linux.resources.{field}: cannot write {value!r} to {file}: {why}") from None


def _read_int(path):
    try:
        return int(_read(path).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _inherit_cpuset(path):
    """A new v1 cpuset starts empty (cgroup.clone_children is 0) and takes
    no task until it has cpus and mems: its parent's."""
    parent = os.path.dirname(path)
    for f in ("cpuset.cpus", "cpuset.mems"):
        if not _read(f"{path}/{f}").strip():
            _write(f"{path}/{f}", _read(f"{parent}/{f}").strip())


def _pids(path):
    """The processes in a cgroup (those of its own, not of children)."""
    try:
        return [int(p) for p in _read(f"{path}/cgroup.procs").split()]
    except FileNotFoundError:
        return []


def device_rule_line(rule):
    """An OCI device rule as a v1 devices.allow/deny line: "c 1:3 rwm"."""
    kind = rule.get("type") or "a"
    if kind == "a":
        return "a"
    major = "*" if rule.get("major") is None else rule["major"]
    minor = "*" if rule.get("minor") is None else rule["minor"]
    return f"{kind} {major}:{minor} {rule.get('access') or 'rwm'}"


class CgroupV1:
    version = 1

    def __init__(self, paths):
        self.paths = paths            # controller -> directory
        self.created = []
        self.oom_file = f"{paths.get('memory')}/memory.oom_control"  # (oom_killed_in)

    @property
    def path(self):
        return self.paths.get("memory") or next(iter(self.paths.values()))

    def create(self):
        for path in self.paths.values():
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                raise CgroupError(f"cgroup already exists: {path}") from None
            except OSError as e:
                self.remove()
                raise CgroupError(f"cannot create cgroup {path}: {e.strerror}") from None
            self.created.append(path)
            if path == self.paths.get("cpuset"):
                _inherit_cpuset(path)
        return self

    def make_parents(self):
        """Create missing ancestors (a cgroupsPath may name parents nobody
        made yet); a new cpuset gets its parent's cpus and mems, without
        which nothing can join it."""
        for controller, path in self.paths.items():
            mount = f"{CGROUP_ROOT}/{controller}"
            if not path.startswith(mount + "/"):
                continue
            parts = path[len(mount):].strip("/").split("/")[:-1]
            current = mount
            for part in parts:
                current = f"{current}/{part}"
                try:
                    os.mkdir(current, 0o755)
                except FileExistsError:
                    continue
                if controller == "cpuset":
                    _inherit_cpuset(current)

    def set_limits(self, resources):
        """Write the limits; -> warnings: what the kernel accepted but does
        not enforce."""
        warnings = []
        memory = resources.get("memory") or {}
        if memory and "memory" not in self.paths:
            raise CgroupError("memory limit requested, but the memory controller is not mounted")
        m = self.paths.get("memory")
        if memory.get("limit") is not None:
            _set(m, "memory.limit_in_bytes", memory["limit"], "memory.limit")
        if memory.get("swap") is not None:
            # memsw exists only with swap accounting: then swap is limited too.
            if os.path.exists(f"{m}/memory.memsw.limit_in_bytes"):
                _set(m, "memory.memsw.limit_in_bytes", memory["swap"], "memory.swap")
        if memory.get("reservation") is not None:
            _set(m, "memory.soft_limit_in_bytes", memory["reservation"], "memory.reservation")
        if memory.get("kernel") is not None:
            _set(m, "memory.kmem.limit_in_bytes", memory["kernel"], "memory.kernel")
            if _read_int(f"{m}/memory.kmem.limit_in_bytes") != memory["kernel"]:
                warnings.append("linux.resources.memory.kernel: this kernel does not enforce "
                                "kernel memory limits (deprecated in cgroup v1)")
        if memory.get("kernelTCP") is not None:
            _set(m, "memory.kmem.tcp.limit_in_bytes", memory["kernelTCP"], "memory.kernelTCP")
        if memory.get("swappiness") is not None:
            _set(m, "memory.swappiness", memory["swappiness"], "memory.swappiness")
        if memory.get("disableOOMKiller"):
            _set(m, "memory.oom_control", 1, "memory.disableOOMKiller")
        if memory.get("useHierarchy") is not None:
            _set(m, "memory.use_hierarchy", int(bool(memory["useHierarchy"])), "memory.useHierarchy")
        cpu = resources.get("cpu") or {}
        if any(cpu.get(k) is not None for k, _ in V1_CPU_FILES) and "cpu" not in self.paths:
            raise CgroupError("cpu limit requested, but the cpu controller is not mounted")
        for key, file in V1_CPU_FILES:
            if cpu.get(key) is not None:
                _set(self.paths["cpu"], file, cpu[key], f"cpu.{key}")
        for key, file in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            if cpu.get(key):
                if "cpuset" not in self.paths:
                    raise CgroupError(f"linux.resources.cpu.{key}: the cpuset controller is not "
                                      "mounted")
                _set(self.paths["cpuset"], file, cpu[key], f"cpu.{key}")
        if resources.get("devices") and "devices" in self.paths:
            self._set_device_rules(resources["devices"])
        pids = resources.get("pids") or {}
        if pids.get("limit") is not None:
            if "pids" not in self.paths:
                raise CgroupError("pids limit requested, but the pids controller is not mounted")
            _set(self.paths["pids"], "pids.max", pids["limit"] if pids["limit"] > 0 else "max",
                 "pids.limit")
        self._set_block_io(resources.get("blockIO") or {})
        for limit in resources.get("hugepageLimits") or ():
            if "hugetlb" not in self.paths:
                raise CgroupError("linux.resources.hugepageLimits: the hugetlb controller is not "
                                  "mounted as a cgroup v1 hierarchy on this host")
            _set(self.paths["hugetlb"], f"hugetlb.{limit['pageSize']}.limit_in_bytes",
                 limit["limit"], "hugepageLimits")
        network = resources.get("network") or {}
        if network.get("classID") is not None:
            if "net_cls" not in self.paths:
                raise CgroupError("linux.resources.network.classID: the net_cls controller is "
                                  "not mounted on this host")
            _set(self.paths["net_cls"], "net_cls.classid", network["classID"], "network.classID")
        for prio in network.get("priorities") or ():
            if "net_prio" not in self.paths:
                raise CgroupError("linux.resources.network.priorities: the net_prio controller "
                                  "is not mounted on this host")
            _set(self.paths["net_prio"], "net_prio.ifpriomap",
                 f"{prio['name']} {prio['priority']}", "network.priorities")
        if resources.get("unified"):
            raise CgroupError("linux.resources.unified: this host's cgroups are v1, not the "
                              "unified hierarchy")
        return warnings

    def _set_block_io(self, bio):
        if not bio:
            return
        if "blkio" not in self.paths:
            raise CgroupError("linux.resources.blockIO: the blkio controller is not mounted")
        d = self.paths["blkio"]

        def weight_file(name):
            # CFQ's blkio.weight, or BFQ's; neither when no scheduler offers weights
            for f in (f"blkio.{name}", f"blkio.bfq.{name}"):
                if os.path.exists(f"{d}/{f}"):
                    return f
            raise CgroupError(f"linux.resources.blockIO: this host's block devices have no "
                              f"I/O scheduler with weights (no blkio.{name} file)")
        if bio.get("weight") is not None:
            _set(d, weight_file("weight"), bio["weight"], "blockIO.weight")
        if bio.get("leafWeight") is not None:
            _set(d, weight_file("leaf_weight"), bio["leafWeight"], "blockIO.leafWeight")
        for dev in bio.get("weightDevice") or ():
            if dev.get("weight") is not None:
                _set(d, weight_file("weight_device"), f"{dev['major']}:{dev['minor']} {dev['weight']}",
                     "blockIO.weightDevice")
            if dev.get("leafWeight") is not None:
                _set(d, weight_file("leaf_weight_device"),
                     f"{dev['major']}:{dev['minor']} {dev['leafWeight']}", "blockIO.weightDevice")
        for key, file in (("throttleReadBpsDevice", "read_bps_device"),
                          ("throttleWriteBpsDevice", "write_bps_device"),
                          ("throttleReadIOPSDevice", "read_iops_device"),
                          ("throttleWriteIOPSDevice", "write_iops_device")):
            for dev in bio.get(key) or ():
                _set(d, f"blkio.throttle.{file}", f"{dev['major']}:{dev['minor']} {dev['rate']}",
                     f"blockIO.{key}")

    def _set_device_rules(self, rules):
        """In order (a deny-all comes before the allows); the kernel takes one
        rule per write(), so each file is opened once and written many times."""
        d = self.paths["devices"]
        fds = {f: os.open(f"{d}/{f}", os.O_WRONLY | os.O_CLOEXEC) for f in ("devices.allow", "devices.deny")}
        try:
            for rule in rules:
                os.write(fds["devices.allow" if rule.get("allow") else "devices.deny"],
                         device_rule_line(rule).encode())
        finally:
            for fd in fds.values():
                os.close(fd)

    def update_limits(self, resources):
        """set_limits() on a live cgroup (`diyc update`): the memory limit
        may never exceed memory+swap, so a memsw limit that grows is
        written before the memory limit, one that shrinks after it."""
        memory = resources.get("memory") or {}
        m = self.paths.get("memory")
        if m and memory.get("swap") is not None and os.path.exists(f"{m}/memory.memsw.limit_in_bytes"):
            current = _read_int(f"{m}/memory.memsw.limit_in_bytes")
            if memory["swap"] < 0 or current is None or memory["swap"] > current:
                _set(m, "memory.memsw.limit_in_bytes", memory["swap"], "memory.swap")
        return self.set_limits(resources)

    def freeze(self):
        """Stop every task (`diyc pause`): the v1 freezer, until it reads
        FROZEN.  A container starts without a freezer cgroup (one mkdir,
        join and rmdir less on every start): the first pause makes it,
        frozen and empty, and moves the container's processes in, each
        frozen as it arrives, until none is left outside (a fork racing
        the move is caught by the next round).  The caller records
        paths["freezer"]: later execs and starts join it, remove() removes it."""
        if "freezer" not in self.paths:
            self._make_freezer()
        self._freezer_state("FROZEN")

    def _make_freezer(self):
        path = open_cgroup(os.path.basename(self.path), controllers=("freezer",)).paths["freezer"]
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass
        self.paths["freezer"] = path
        self._freezer_state("FROZEN")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while time.monotonic() < deadline:
            outside = set(self.pids()) - set(_pids(path))
            if not outside:
                return
            for pid in outside:
                try:
                    _write(f"{path}/cgroup.procs", pid)
                except ProcessLookupError:
                    pass  # ended meanwhile
        raise CgroupError(f"cannot move the container's processes into {path}")

    def thaw(self):
        self._freezer_state("THAWED")

    def frozen(self):
        d = self.paths.get("freezer")
        try:
            return bool(d) and _read(f"{d}/freezer.state").strip() == "FROZEN"
        except OSError:
            return False

    def _freezer_state(self, wanted):
        d = self.paths.get("freezer")
        if d is None:
            raise CgroupError("this container has no freezer cgroup")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while True:
            # FREEZING means a task has not stopped yet: writing again retries it
            _set(d, "freezer.state", wanted, "freezer")
            now = _read(f"{d}/freezer.state").strip()
            if now == wanted:
                return
            if time.monotonic() > deadline:
                raise CgroupError(f"cannot set {d}/freezer.state to {wanted}: it stays {now}")
            time.sleep(0.001)

    def add_process(self, pid):
        for path in self.created:
            _write(f"{path}/cgroup.procs", pid)

    def join_files(self):
        """Files a single-threaded process writes "0" to, to move itself in
        (see join_cgroup in _native/process.c for why not cgroup.procs)."""
        return [f"{path}/tasks" for path in self.created]

    def oom_killed(self):
        return oom_killed_in(self.oom_file)

    def pids(self):
        return _pids(self.path)

    def remove(self):
        for path in reversed(self.created):
            _rmdir_when_empty(path, f"{path}/cgroup.procs")
        self.created = []


class CgroupV2:
    version = 2

    def __init__(self, path):
        self.path = path
        self.created = False
        self.oom_file = f"{path}/memory.events"  # its oom_kill count (oom_killed_in)

    def _enable_controllers(self, wanted):
        """A v2 child gets a controller only if its parent delegates it."""
        parent = os.path.dirname(self.path)
        available = _read(f"{parent}/cgroup.controllers").split()
        missing = [c for c in wanted if c not in available]
        if missing:
            raise CgroupError(
                f"cgroup v2 controller(s) {', '.join(missing)} not available in {parent}; "
                "use --cgroup-parent with a cgroup that delegates them")
        enabled = _read(f"{parent}/cgroup.subtree_control").split()
        todo = " ".join(f"+{c}" for c in wanted if c not in enabled)
        if todo:
            try:
                _write(f"{parent}/cgroup.subtree_control", todo)
            except OSError as e:
                hint = (" (it has processes of its own: the 'no internal processes' rule; "
                        "use --cgroup-parent)") if e.errno == errno.EBUSY else ""
                raise CgroupError(f"cannot enable {todo} in {parent}: {e.strerror}{hint}") from None

    def create(self, resources=None):
        wanted = [c for c in ("memory", "cpu", "pids") if (resources or {}).get(c)]
        cpu = (resources or {}).get("cpu") or {}
        if cpu.get("cpus") or cpu.get("mems"):
            wanted.append("cpuset")
        if (resources or {}).get("blockIO"):
            wanted.append("io")
        if (resources or {}).get("hugepageLimits"):
            wanted.append("hugetlb")
        if wanted:
            self._enable_controllers(wanted)
        try:
            os.mkdir(self.path, 0o755)
        except FileExistsError:
            raise CgroupError(f"cgroup already exists: {self.path}") from None
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {self.path}: {e.strerror}") from None
        self.created = True
        return self

    def make_parents(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)

    def set_limits(self, resources):
        """Write the limits (the OCI v1-shaped ones converted as runc and
        crun do); -> warnings, none on v2."""
        p = self.path
        memory = resources.get("memory") or {}
        if memory.get("limit") is not None:
            _set(p, "memory.max", memory["limit"] if memory["limit"] > 0 else "max", "memory.limit")
            if memory.get("swap") is not None:
                swap = memory["swap"]
                # OCI/docker count memory+swap; v2 limits swap alone.
                _write_optional(f"{p}/memory.swap.max",
                                "max" if swap < 0 else max(swap - memory["limit"], 0))
        if memory.get("reservation") is not None:
            _set(p, "memory.low", memory["reservation"] if memory["reservation"] >= 0 else 0,
                 "memory.reservation")
        for key, why in (("kernel", "kernel memory is not limited separately on cgroup v2"),
                         ("kernelTCP", "TCP buffer memory is not limited separately on cgroup v2"),
                         ("swappiness", "cgroup v2 has no per-cgroup swappiness")):
            if memory.get(key) is not None:
                raise CgroupError(f"linux.resources.memory.{key}: {why}")
        if memory.get("disableOOMKiller"):
            raise CgroupError("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable "
                              "the OOM killer")
        if memory.get("useHierarchy") is False:
            raise CgroupError("linux.resources.memory.useHierarchy: cgroup v2 is always "
                              "hierarchical")
        cpu = resources.get("cpu") or {}
        if cpu.get("quota") is not None or cpu.get("period") is not None:
            quota = cpu.get("quota")
            _set(p, "cpu.max", f"{quota if quota and quota > 0 else 'max'} {cpu.get('period') or 100000}",
                 "cpu.quota")
        if cpu.get("burst") is not None:
            _set(p, "cpu.max.burst", cpu["burst"], "cpu.burst")
        if cpu.get("shares") is not None:
            # the conversion runc and crun use: shares [2, 262144] -> weight [1, 10000]
            _set(p, "cpu.weight", 1 + ((cpu["shares"] - 2) * 9999) // 262142, "cpu.shares")
        if cpu.get("idle") is not None:
            _set(p, "cpu.idle", cpu["idle"], "cpu.idle")
        if cpu.get("realtimeRuntime") is not None or cpu.get("realtimePeriod") is not None:
            raise CgroupError("linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has "
                              "no realtime CPU controller")
        if cpu.get("cpus"):
            _set(p, "cpuset.cpus", cpu["cpus"], "cpu.cpus")
        if cpu.get("mems"):
            _set(p, "cpuset.mems", cpu["mems"], "cpu.mems")
        pids = resources.get("pids") or {}
        if pids.get("limit") is not None:
            _set(p, "pids.max", pids["limit"] if pids["limit"] > 0 else "max", "pids.limit")
        self._set_io(resources.get("blockIO") or {})
        for limit in resources.get("hugepageLimits") or ():
            _set(p, f"hugetlb.{limit['pageSize']}.max", limit["limit"], "hugepageLimits")
        if resources.get("network"):
            raise CgroupError("linux.resources.network: cgroup v2 has no net_cls/net_prio "
                              "controllers")
        for key, value in (resources.get("unified") or {}).items():
            if "/" in key or key.startswith(".") or "." not in key:
                raise CgroupError(f"linux.resources.unified: invalid key {key!r}")
            _set(p, key, value, f"unified[{key}]")
        if resources.get("devices"):
            self._attach_device_filter(resources["devices"])
        return []

    def _set_io(self, bio):
        """blockIO on v2's io controller: weights to io.weight (BFQ's
        io.bfq.weight when that is the one offered), throttles to io.max."""
        if not bio:
            return
        p = self.path
        weight_file = "io.bfq.weight" if os.path.exists(f"{p}/io.bfq.weight") else "io.weight"
        if bio.get("leafWeight") is not None:
            raise CgroupError("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights")
        if bio.get("weight") is not None:
            _set(p, weight_file, bio["weight"], "blockIO.weight")
        for dev in bio.get("weightDevice") or ():
            if dev.get("weight") is not None:
                _set(p, weight_file, f"{dev['major']}:{dev['minor']} {dev['weight']}",
                     "blockIO.weightDevice")
        for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                          ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
            for dev in bio.get(key) or ():
                _set(p, "io.max", f"{dev['major']}:{dev['minor']} {name}={dev['rate']}",
                     f"blockIO.{key}")

    def _attach_device_filter(self, rules):
        """v2 has no devices.allow: the rules become an eBPF program
        attached to the cgroup (built in _native/devices.c)."""
        from . import _native
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _native.attach_device_filter(fd, [
                (bool(r.get("allow")), r.get("type") or "a",
                 -1 if r.get("major") is None else r["major"],
                 -1 if r.get("minor") is None else r["minor"], r.get("access") or "rwm")
                for r in rules])
        except OSError as e:
            raise CgroupError(f"cannot set the device rules of {self.path}: {e}") from None
        finally:
            os.close(fd)

    def update_limits(self, resources):
        """set_limits() on a live cgroup: v2's memory.max and memory.swap.max
        are independent of each other, no order to keep."""
        return self.set_limits(resources)

    def freeze(self):
        """Stop every task (`diyc pause`): cgroup.freeze, until cgroup.events
        says frozen."""
        self._freeze(1)

    def thaw(self):
        self._freeze(0)

    def frozen(self):
        try:
            return _flat_keyed(_read(f"{self.path}/cgroup.events")).get("frozen") == "1"
        except OSError:
            return False

    def _freeze(self, wanted):
        _set(self.path, "cgroup.freeze", wanted, "freezer")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while self.frozen() != bool(wanted):
            if time.monotonic() > deadline:
                raise CgroupError(f"{self.path}: cgroup.events does not say frozen {wanted}")
            time.sleep(0.001)

    def add_process(self, pid):
        _write(f"{self.path}/cgroup.procs", pid)

    def join_files(self):
        return [f"{self.path}/cgroup.procs"]

    def oom_killed(self):
        return oom_killed_in(self.oom_file)

    def pids(self):
        return _pids(self.path)

    def remove(self):
        if self.created:
            _rmdir_when_empty(self.path, f"{self.path}/cgroup.procs", f"{self.path}/cgroup.kill")
            self.created = False
