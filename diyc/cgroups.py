"""cgroups: the resource limits of a container, v1 and v2.

The driver is chosen at run time: a cgroup2 filesystem at the cgroup root
(it has `cgroup.controllers`) means the unified hierarchy; anything else is
v1 or hybrid, where the limits go to the per-controller v1 hierarchies.

A container's cgroup nests under the cgroup of the calling process, per
controller, so diyc never moves anything out of the subtree it was started
in (`cgroup_parent` overrides: absolute = from the hierarchy root, relative
= under the caller's cgroup).  Limits follow the OCI `linux.resources`
schema: {"memory": {"limit", "swap"}, "cpu": {"quota", "period", "shares"},
"pids": {"limit"}}, where memory.swap is memory+swap, as in docker.
"""

import errno
import os
import time

from .errors import DiycError

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "devices")


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


def open_cgroup(name, parent=None, root=CGROUP_ROOT, proc_file="/proc/self/cgroup"):
    """The cgroup a container named `name` will get (not created yet)."""
    own = self_cgroups(proc_file)
    if is_v2(root):
        return CgroupV2(root + _child_path(own.get("", "/"), parent, name))
    paths = {}
    for controller in V1_CONTROLLERS:
        mount = f"{root}/{controller}"
        if os.path.isdir(mount):
            paths[controller] = mount + _child_path(own.get(controller, "/"), parent, name)
    if not paths:
        raise CgroupError(f"no cgroup hierarchy found under {root}")
    return CgroupV1(paths)


def _rmdir_when_empty(path, procs_file, kill_file=None, timeout=2.0):
    """rmdir a cgroup, killing what is left in it.  A pid namespace dies
    with its init, but the kernel reaps those processes asynchronously."""
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
        return self

    def set_limits(self, resources):
        memory = resources.get("memory") or {}
        if "memory" in self.paths:
            m = self.paths["memory"]
            if memory.get("limit") is not None:
                _write(f"{m}/memory.limit_in_bytes", memory["limit"])
            if memory.get("swap") is not None:
                # memsw exists only with swap accounting: then swap is limited too.
                _write_optional(f"{m}/memory.memsw.limit_in_bytes", memory["swap"])
        elif memory:
            raise CgroupError("memory limit requested, but the memory controller is not mounted")
        cpu = resources.get("cpu") or {}
        if cpu and "cpu" not in self.paths:
            raise CgroupError("cpu limit requested, but the cpu controller is not mounted")
        if cpu.get("period") is not None:
            _write(f"{self.paths['cpu']}/cpu.cfs_period_us", cpu["period"])
        if cpu.get("quota") is not None:
            _write(f"{self.paths['cpu']}/cpu.cfs_quota_us", cpu["quota"])
        if cpu.get("shares") is not None:
            _write(f"{self.paths['cpu']}/cpu.shares", cpu["shares"])
        if resources.get("devices") and "devices" in self.paths:
            self._set_device_rules(resources["devices"])
        pids = resources.get("pids") or {}
        if pids.get("limit") is not None:
            if "pids" not in self.paths:
                raise CgroupError("pids limit requested, but the pids controller is not mounted")
            _write(f"{self.paths['pids']}/pids.max", pids["limit"] if pids["limit"] > 0 else "max")

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

    def add_process(self, pid):
        for path in self.created:
            _write(f"{path}/cgroup.procs", pid)

    def join_files(self):
        """Files a single-threaded process writes "0" to, to move itself in
        (see join_cgroup in _native/process.c for why not cgroup.procs)."""
        return [f"{path}/tasks" for path in self.created]

    def oom_killed(self):
        m = self.paths.get("memory")
        try:
            return int(_flat_keyed(_read(f"{m}/memory.oom_control")).get("oom_kill", 0)) > 0
        except (OSError, TypeError, ValueError):
            return False

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

    def set_limits(self, resources):
        p = self.path
        memory = resources.get("memory") or {}
        if memory.get("limit") is not None:
            _write(f"{p}/memory.max", memory["limit"] if memory["limit"] > 0 else "max")
            if memory.get("swap") is not None:
                swap = memory["swap"]
                # OCI/docker count memory+swap; v2 limits swap alone.
                _write_optional(f"{p}/memory.swap.max",
                                "max" if swap < 0 else max(swap - memory["limit"], 0))
        cpu = resources.get("cpu") or {}
        if cpu.get("quota") is not None:
            quota = cpu["quota"]
            _write(f"{p}/cpu.max", f"{quota if quota > 0 else 'max'} {cpu.get('period') or 100000}")
        if cpu.get("shares") is not None:
            # the conversion runc and crun use: shares [2, 262144] -> weight [1, 10000]
            _write(f"{p}/cpu.weight", 1 + ((cpu["shares"] - 2) * 9999) // 262142)
        pids = resources.get("pids") or {}
        if pids.get("limit") is not None:
            _write(f"{p}/pids.max", pids["limit"] if pids["limit"] > 0 else "max")
        if resources.get("devices"):
            self._attach_device_filter(resources["devices"])

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

    def add_process(self, pid):
        _write(f"{self.path}/cgroup.procs", pid)

    def join_files(self):
        return [f"{self.path}/cgroup.procs"]

    def oom_killed(self):
        try:
            return int(_flat_keyed(_read(f"{self.path}/memory.events")).get("oom_kill", 0)) > 0
        except (OSError, ValueError):
            return False

    def pids(self):
        return _pids(self.path)

    def remove(self):
        if self.created:
            _rmdir_when_empty(self.path, f"{self.path}/cgroup.procs", f"{self.path}/cgroup.kill")
            self.created = False
