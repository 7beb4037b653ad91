"""Shared fixtures of the diyc test suite.

The tests are real: real containers on the real kernel, run as root.  The
only fake is the cgroup v2 tree of test_cgroup_v2_fake.py (this machine has
no v2 controllers), and that module says so.

* ``diyc_root``: one state directory for the whole session (DIYC_ROOT of the
  CLI calls, ``root=`` of the library calls).
* ``run_cli(*args, input=None, check=False)``: runs the installed ``diyc``
  command (``$DIYC_BIN`` overrides; ``$DIYC_PKG_DIR`` tests a built package
  elsewhere) and returns a text CompletedProcess.
* An autouse fixture checks after every test that nothing was left behind:
  container records, names, staging dirs, diyc-* cgroups, mounts under the
  root, child processes.  A test that creates a container without --rm
  removes it itself with ``diyc rm``.
"""

import contextlib
import glob
import json
import re
import os
import signal
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# `python -m pytest` puts the repository on sys.path, whose diyc/ may hold no
# (or a stale) in-place build of _native.  Test what the `diyc` command runs:
# the installed package - or, with DIYC_PKG_DIR=DIR, the built package in
# DIR/diyc (library and CLI both), e.g. a frozen copy while the installed
# one is being rebuilt.
PKG_DIR = os.environ.get("DIYC_PKG_DIR") or sysconfig.get_paths()["platlib"]
if glob.glob(f"{PKG_DIR}/diyc/_native*.so"):
    sys.path.insert(0, PKG_DIR)
    for _mod in [m for m in sys.modules if m == "diyc" or m.startswith("diyc.")]:
        del sys.modules[_mod]

from diyc.cgroups import V1_CONTROLLERS as _DIYC_V1  # noqa: E402  (after the sys.path fix)

CGROUP_ROOT = "/sys/fs/cgroup"
# The v1 controllers diyc puts a container in (the driver's own list, which
# grows: memory, cpu, cpuacct, pids at least).
V1_CONTROLLERS = tuple(dict.fromkeys(("memory", "cpu", "cpuacct", "pids") + tuple(_DIYC_V1)))
BUSYBOX = "/bin/busybox"


def diyc_command():
    env_bin = os.environ.get("DIYC_BIN")
    if env_bin:
        return env_bin.split()
    if os.environ.get("DIYC_PKG_DIR"):
        return [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {PKG_DIR!r}); "
                "from diyc.cli import main; sys.exit(main())"]
    venv_bin = REPO / ".venv" / "bin" / "diyc"
    if venv_bin.exists():
        return [str(venv_bin)]
    return [sys.executable, "-m", "diyc"]


DIYC = diyc_command()


def _skip_reason():
    if os.geteuid() != 0:
        return "diyc tests run real containers: they need root"
    if not os.path.exists(BUSYBOX):
        return f"{BUSYBOX} not found (apt-get install busybox-static)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


# -- helpers -------------------------------------------------------------------

# The installed `diyc` starts a diyc server on first use.  Tests run the
# direct path unless they ask for the server (the `cli_path` fixture), so no
# server outlives the session and the leak checks stay meaningful.
os.environ["DIYC_SERVER"] = "off"


class Cli:
    """Runs the diyc command against the session's root."""

    def __init__(self, root):
        self.root = str(root)
        self.command = DIYC
        self.path_env = {}  # DIYC_SERVER for the path under test

    def env(self, extra=None):
        env = dict(os.environ, DIYC_ROOT=self.root)
        env.pop("DIYC_TRACE", None)
        env.update(self.path_env)
        env.update(extra or {})
        return env

    def __call__(self, *args, input=None, check=False, env=None, timeout=60):
        proc = subprocess.run(self.command + [str(a) for a in args], input=input,
                              capture_output=True, text=True, env=self.env(env), timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"diyc {' '.join(map(str, args))} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def popen(self, *args, env=None, **kwargs):
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("text", True)
        return subprocess.Popen(self.command + [str(a) for a in args], env=self.env(env),
                                **kwargs)


def assert_one_line_error(proc, code=125, contains=None):
    """diyc refused something: the exit code, and one `diyc: ...` line
    (`diyc COMMAND: ...` for an error of the command line: `diyc ps:
    unknown flag: --foo`)."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r"diyc( [a-z_]+)*: ", lines[0]), proc.stderr
    assert "Traceback" not in proc.stderr
    if contains:
        assert contains in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def built_image(cli, tmp_path_factory, tag, dockerfile):
    """An image `tag` built by `cli` (a Cli or NsCli) from `dockerfile`'s
    text, removed at the end."""
    ctx = tmp_path_factory.mktemp("image")
    (ctx / "Dockerfile").write_text(dockerfile)
    cli("build", "-q", "-t", tag, str(ctx), check=True)
    yield tag
    cli("rmi", tag, check=True)


def container_records(root):
    out = []
    for path in glob.glob(f"{root}/containers/*/container.json"):
        try:
            with open(path) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass
    return out


def read_pty(fd, token=None, timeout=60):
    """What a pty master reads until token (None: its end - EIO once every
    slave end is closed), or timeout."""
    import select
    out = b""
    deadline = time.monotonic() + timeout
    while (token is None or token not in out) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
    return out


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def pid_running(pid):
    """Whether pid exists and is not a zombie (an orphaned zombie waits for
    init to reap it, which can take a while, but it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_pid_gone(pid, timeout=10.0):
    """Wait until a process that is not our child has stopped running."""
    wait_for(lambda: not pid_running(pid), timeout, what=f"pid {pid} to go away")


@contextlib.contextmanager
def subreaper():
    """Make this process the child subreaper while the block runs: orphans
    of our descendants (a container whose diyc was killed) become our
    children, so a test reaps them itself, deterministically, instead of
    waiting for PID 1 (this machine's init reaps lazily)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def proc_state(pid):
    """The state letter of a process (R, S, Z, ...) or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


@contextlib.contextmanager
def flock_held(path):
    """An exclusive flock() on the diyc lock file `path` while the block
    runs: a diyc command that needs that lock waits for it, at a known step."""
    import fcntl
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def wait_blocked_on_flock(proc, what):
    """Until the process of Popen `proc` waits for a flock() someone holds
    (a "->" line of /proc/locks names it); its end instead fails the test."""
    def blocked():
        with open("/proc/locks") as f:
            return any(line.split()[1:2] == ["->"] and line.split()[5] == str(proc.pid) for line in f)
    wait_for(lambda: blocked() or proc.poll() is not None, timeout=30, what=what)
    assert proc.poll() is None, (f"it did not wait: {what}", proc.communicate())

def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def running_record(root, timeout=10.0):
    """The record of the only container of `root`, once it is running."""
    def find():
        recs = container_records(root)
        if len(recs) == 1 and recs[0]["state"].get("status") == "running":
            return recs[0]
        return None
    return wait_for(find, timeout, what="a running container record")


def own_cgroups():
    """{controller: path} of this process (v1 controllers, v2 under '')."""
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                paths[c] = path
    return paths


def diyc_cgroups():
    """Every directory named diyc-* (or diyctest-*, the parents tests make) in every cgroup hierarchy mounted under
    /sys/fs/cgroup (memory, cpu, cpuacct, pids, ..., unified), 6 levels deep."""
    found = set()
    for controller in sorted(os.listdir(CGROUP_ROOT)):
        base = f"{CGROUP_ROOT}/{controller}"
        if not os.path.isdir(base) or os.path.islink(base):
            continue
        for dirpath, dirnames, _ in os.walk(base):
            depth = dirpath[len(base):].count("/")
            for d in dirnames:
                if d.startswith(("diyc-", "diyctest-")):
                    found.add(f"{dirpath}/{d}")
            if depth >= 6:
                dirnames[:] = []
    return found


def _foreign_cgroup(path, all_diyc_cgroups):
    """A diyc-* cgroup of another diyc session on this machine (another
    user of diyc runs in a memory cgroup of its own), not one of ours.  Ours
    are under our own memory cgroup, or under a diyctest-*-<our pid> parent
    a test of this session made."""
    mem = f"{CGROUP_ROOT}/memory"
    own = own_cgroups().get("memory", "/").rstrip("/")
    mine = f"-{os.getpid()}/"

    def foreign_mem(p):
        rel = p[len(mem):]
        return not (rel.startswith(own + "/") or ("/diyctest-" in rel and mine in rel))
    if path.startswith(mem + "/"):
        return foreign_mem(path)
    name = os.path.basename(path)
    twins = [p for p in all_diyc_cgroups if p.startswith(mem + "/") and os.path.basename(p) == name]
    return bool(twins) and all(foreign_mem(p) for p in twins)


def mounts_under(path):
    path = str(path)
    with open("/proc/self/mountinfo") as f:
        return [line.rstrip("\n") for line in f if path in line]


def child_pids():
    """Processes whose parent is this (pytest) process."""
    me = str(os.getpid())
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[1] == me:
            out.append(int(entry))
    return out


def tree_snapshot(path):
    """{relative path: (mode, uid, gid, size, mtime_ns, link target)} of a tree."""
    snap = {}
    path = str(path)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            link = os.readlink(p) if os.path.islink(p) else None
            snap[os.path.relpath(p, path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                              st.st_mtime_ns, link)
    return snap


# -- fixtures ---------------------------------------------------------------

@pytest.fixture(scope="session")
def diyc_root(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("diyc-root")
    old = os.environ.get("DIYC_ROOT")
    os.environ["DIYC_ROOT"] = str(root)
    # Build the built-in busybox image once, so no test sees its one-time
    # "creating the built-in image" line on stderr.
    Cli(root)("run", "--network", "none", "--rm", "busybox", "true", check=True)
    yield root
    if old is None:
        os.environ.pop("DIYC_ROOT", None)
    else:
        os.environ["DIYC_ROOT"] = old
    left = mounts_under(root)
    assert not left, "mounts left under the diyc root:\n" + "\n".join(left)


@pytest.fixture(scope="session")
def run_cli(diyc_root):
    return Cli(diyc_root)


class DiycServer:
    """A diyc server for the session's root, behind a launcher (the C
    `diyc`) whose Python fallback leaves a line in `fallbacks` when run."""

    def __init__(self, bin_dir, root):
        self.bin_dir = bin_dir
        self.root = root
        self.fallback_log = bin_dir / "fallbacks"
        self.command = [str(bin_dir / "diyc")]
        self.runc = str(bin_dir / "diyc-runc")

    def fallbacks(self):
        return self.fallback_log.read_text().count("\n") if self.fallback_log.exists() else 0

    def pid(self):
        return int((self.root / "server" / "pid").read_text())

    def alive(self):
        return os.path.exists(f"/proc/{self.pid()}")


def make_launcher_dir(bin_dir, pkg_dir=PKG_DIR):
    """The launcher as `diyc` and `diyc-runc`, with Python CLIs next to it
    that run the package under test (PKG_DIR) and log each fallback."""
    launcher = Path(PKG_DIR) / "diyc" / "diyc-launcher"
    if not launcher.exists():
        pytest.skip(f"{launcher} not built")
    bin_dir.mkdir(exist_ok=True)
    for name, module in (("diyc", "cli"), ("diyc-runc", "oci.runc_cli")):
        shutil.copy(launcher, bin_dir / name)
        script = bin_dir / f"{name}-py"
        script.write_text(
            f"#!{sys.executable} -IS\n"
            "import os, sys\n"
            f"with open({str(bin_dir / 'fallbacks')!r}, 'a') as f:\n"
            "    f.write(' '.join(sys.argv[1:]) + '\\n')\n"
            f"sys.path.insert(0, {str(pkg_dir)!r})\n"
            # (-S: no site; diyc's dependencies, pyroute2, are the venv's)
            f"sys.path.append({sysconfig.get_paths()['platlib']!r})\n"
            f"from diyc.{module} import main\n"
            "sys.exit(main())\n")
        script.chmod(0o755)
    return bin_dir


@pytest.fixture(scope="session")
def diyc_server(diyc_root, tmp_path_factory):
    """A running diyc server for the session root, stopped by PID at the end."""
    bin_dir = make_launcher_dir(tmp_path_factory.mktemp("launcher"))
    server = DiycServer(bin_dir, diyc_root)
    subprocess.run([str(bin_dir / "diyc-py"), "server", "start", "--quiet", "--idle", "600"],
                   check=True, env=dict(os.environ, DIYC_ROOT=str(diyc_root)))
    server.fallback_log.unlink()
    pid = server.pid()
    yield server
    stop_process(pid)
    # A server restarts itself when the package under test changes (an
    # edit during a long run): the one its pid file names now goes too.
    with contextlib.suppress(OSError, ValueError):
        if (now := server.pid()) != pid:
            stop_process(now)


def stop_process(pid, timeout=10):
    """SIGTERM a process that is not our child, and wait until it has
    ended (a pidfd: its reaper may leave it a zombie for a while)."""
    import select
    try:
        ended = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, 15)
        if not select.select([ended], [], [], timeout)[0]:
            signal.pidfd_send_signal(ended, 9)
    finally:
        os.close(ended)


def stop_keepers(root):
    """SIGTERM the keepers of a server's warm containers (pool_keeper: pid
    in its locked HASH.lock) and wait until they have removed them."""
    from diyc.pool_keeper import stop_keepers as stop
    from diyc.server_pool import pools_dir
    stop(pools_dir(root))


@pytest.fixture(params=["direct", "server"])
def cli_path(request, run_cli):
    """Runs the test twice: `run_cli` goes the direct way (the Python CLI),
    then through the diyc server (the C launcher; a fallback fails the test)."""
    if request.param == "direct":
        yield "direct"
        return
    server = request.getfixturevalue("diyc_server")
    before = server.fallbacks()
    run_cli.command, run_cli.path_env = server.command, {"DIYC_SERVER": "nostart"}
    try:
        yield "server"
    finally:
        stop_keepers(server.root)  # (a repeated `run --rm` ran warm: its pool goes)
        run_cli.command, run_cli.path_env = DIYC, {}
    assert server.fallbacks() == before, "the launcher fell back to the Python CLI"
    assert server.alive()


@pytest.fixture(scope="session")
def busybox_image(diyc_root):
    from diyc.images.store import ImageStore
    return ImageStore(str(diyc_root)).resolve("busybox")


@pytest.fixture(scope="session")
def busybox_layer(diyc_root, busybox_image):
    (layer,) = busybox_image["layers"]
    return Path(diyc_root) / "layers" / layer.removeprefix("sha256:")


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """After every test: no containers, names, staging dirs, cgroups, mounts
    or child processes left.  On a failure it cleans up, so one leak does not
    fail every later test."""
    if _skip_reason():
        yield
        return
    root = request.getfixturevalue("diyc_root")
    cgroups_before = diyc_cgroups()
    bridges_before = host_bridges()
    yield
    problems = []
    # A served `run --rm` removes its container's cgroup and directory
    # (moved to tmp/removing-PID-ID) after its reply: give it a moment.
    deadline = time.monotonic() + 5.0
    while any(e.startswith("removing-") for e in _entries(root / "tmp")) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    for sub in ("containers", "names", "tmp"):
        d = root / sub
        entries = sorted(os.listdir(d)) if d.is_dir() else []
        if entries:
            problems.append(f"{d} not empty: {entries}")

    def new_cgroups():
        now = diyc_cgroups()
        return {p for p in now - cgroups_before if not _foreign_cgroup(p, now)}
    # Another diyc on this machine (not ours) may own a cgroup for a moment.
    deadline = time.monotonic() + 2.0
    while new_cgroups() and time.monotonic() < deadline:
        time.sleep(0.02)
    # One with no memory twin left may be another session's on its way out
    # (memory goes first): a leak of ours is still there after 10 s more.
    mem = f"{CGROUP_ROOT}/memory/"
    deadline = time.monotonic() + 10.0
    while (left := new_cgroups()) and not any(p.startswith(mem) for p in left) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    leaked_cgroups = new_cgroups()
    if leaked_cgroups:
        problems.append(f"cgroups left: {sorted(leaked_cgroups)}")
    mounts = mounts_under(root)
    if mounts:
        problems.append("mounts left:\n" + "\n".join(mounts))
    children = child_pids()
    if children:
        problems.append(f"child processes left: {children}")
    bridge = _host_bridge(root)
    # Any root's (a test's own temporary root too): bridge is run's default.
    new_bridges = sorted(host_bridges() - bridges_before)
    if bridge or new_bridges:
        problems.append(f"bridges {new_bridges or [bridge]} in the machine's network namespace "
                        "(ip_forward turned on): a container ran on the default network outside "
                        "a test netns; say --network none (network=\"none\")")

    if problems:
        if bridge:
            Cli(root)("network", "prune", "-f")
        _remove_host_bridges(set(new_bridges) - {bridge})
        _force_clean(root, leaked_cgroups, children)
        pytest.fail("left behind by the test:\n" + "\n".join(problems), pytrace=False)


def _entries(d):
    return os.listdir(d) if d.is_dir() else []


def host_bridges():
    """diyc's bridges in the machine's network namespace (any root's)."""
    return {n for n in os.listdir("/sys/class/net") if n.startswith(("diyc0", "diyc-"))
            and os.path.isdir(f"/sys/class/net/{n}/bridge")}


def _remove_host_bridges(names):
    """A leaked bridge of a root the test already deleted: its bridge and
    nft table go the way diyc's own prune takes them (ip_forward restored
    with the last one)."""
    from diyc.net import firewall, roots
    for name in sorted(names):
        roots.delete_bridge(name)
        table = roots.bridge_firewall_table(name)
        if table not in (None, roots.NFT_TABLE) and firewall.table_exists(table):  # (never the default root's)
            firewall.delete_table(table)


def _host_bridge(root):
    """The session root's default bridge, if it exists in our (the
    machine's) network namespace: --network bridge is run's default."""
    try:
        rid = os.readlink(root / "networks" / "root-id")
    except OSError:
        return None
    from diyc.net.roots import default_bridge
    from diyc.state import Root
    name = default_bridge(Root(str(root)), rid)
    return name if os.path.exists(f"/sys/class/net/{name}") else None


def _force_clean(root, cgroups, children):
    cli = Cli(root)
    for rec in container_records(root):
        cli("rm", "-f", rec["id"])
    cli("cleanup")
    for pid in children:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    for path in sorted(cgroups, key=len, reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            pass
    for line in mounts_under(root):
        subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)
    for sub in ("containers", "names", "tmp"):
        d = root / sub
        if d.is_dir():
            for entry in os.listdir(d):
                p = d / entry
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink()
