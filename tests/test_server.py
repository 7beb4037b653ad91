"""The diyc server (#10): the C launcher hands commands to it; it declines
what it must not run, leaks nothing into workers, and costs nothing when it
crashes (the launcher falls back to the Python CLI)."""

import ctypes
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PKG_DIR, assert_one_line_error, make_launcher_dir, read_pty, stop_process, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry_util as ru  # noqa: E402


class PrivateServer:
    """A launcher dir and a root of its own (server started on demand)."""

    def __init__(self, tmp_path):
        self.root = tmp_path / "root"
        self.bin = make_launcher_dir(tmp_path / "bin")
        self.env = dict(os.environ, DIYC_ROOT=str(self.root), DIYC_SERVER="nostart")

    def __call__(self, *args, env=None, **kwargs):
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 60)
        return subprocess.run([str(self.bin / "diyc"), *map(str, args)],
                              env={**self.env, **(env or {})}, **kwargs)

    def python_cli(self, *args, env=None):
        return subprocess.run([str(self.bin / "diyc-py"), *map(str, args)], capture_output=True,
                              text=True, env={**self.env, **(env or {})}, timeout=60)

    def start(self, *flags, env=None):
        proc = self.python_cli("server", "start", *flags, env=env)
        assert proc.returncode == 0, proc.stderr
        return self.pid()

    def pid(self):
        return int((self.root / "server" / "pid").read_text())

    def fallbacks(self):
        """The commands the Python CLI ran (the server's own commands aside)."""
        log = self.bin / "fallbacks"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line for line in lines if " server " not in f" {line} "]

    def log(self):
        return (self.root / "server" / "log").read_text()


@pytest.fixture
def private(tmp_path):
    server = PrivateServer(tmp_path)
    yield server
    try:
        pid = server.pid()
    except FileNotFoundError:
        return
    stop_process(pid)
    containers = server.root / "containers"
    assert not (containers.is_dir() and os.listdir(containers))
    # no worker of the server is left either (a spare exits with it)
    deadline = time.monotonic() + 5
    while _processes_of(server.bin) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _processes_of(server.bin)


def _processes_of(bin_dir):
    """Pids whose command line runs something in bin_dir (the server, its workers)."""
    out = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if os.fsencode(str(bin_dir)) in f.read():
                    out.append(int(entry))
        except (OSError, ValueError):
            continue
    return out


def ended(pid):
    """Exited: gone, or a zombie its reaper has not waited for yet (the
    server is not our child: pid 1 or a subreaper reaps it, when it does)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _request(sock_path, argv=("ps",), root=None):
    """A launcher request made by hand (the C launcher's wire format)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sock_path)
    fields = [b"diyc", os.fsencode(root), b"18", str(len(argv)).encode(),
              *map(os.fsencode, argv), b"0"]
    body = b"".join(f + b"\0" for f in fields)
    data = b"DIYC1\0" + struct.pack("=I", len(body)) + body
    cwd = os.open("/", os.O_PATH)
    null = os.open("/dev/null", os.O_RDWR)
    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                           struct.pack("4i", cwd, null, null, null))])
    os.close(cwd)
    os.close(null)
    sock.settimeout(10)
    reply = sock.recv(8)
    sock.close()
    return struct.unpack("=Ii", reply) if len(reply) == 8 else None


# -- the command and its files ----------------------------------------------------

def test_start_status_stop_and_private_socket(private):
    assert private.python_cli("server", "status").returncode == 1
    pid = private.start()
    status = private.python_cli("server", "status")
    assert status.returncode == 0 and f"pid {pid}" in status.stdout
    d = private.root / "server"
    st = os.lstat(d)
    assert stat.S_ISDIR(st.st_mode) and st.st_mode & 0o7777 == 0o700 and st.st_uid == 0
    st = os.lstat(d / "socket")
    assert stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 == 0o600
    # the server is detached: its own session, not our child
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[1]) != os.getpid() and int(fields[3]) != os.getsid(0)  # ppid, session
    assert private.python_cli("server", "stop").returncode == 0
    assert ended(pid) and not (d / "socket").exists()


def test_first_use_starts_the_server_and_off_means_off(private):
    proc = private("run", "--network", "none", "--rm", "busybox", "echo", "first", env={"DIYC_SERVER": "on"})
    assert proc.returncode == 0 and proc.stdout == "first\n"
    assert len(private.fallbacks()) == 1  # this call went the direct way ...
    deadline = time.monotonic() + 20
    while not (private.root / "server" / "socket").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (private.root / "server" / "socket").exists()  # ... and started the server
    assert private("run", "--network", "none", "--rm", "busybox", "true").returncode == 0
    assert len(private.fallbacks()) == 1
    assert private("run", "--network", "none", "--rm", "busybox", "true", env={"DIYC_SERVER": "off"}).returncode == 0
    assert len(private.fallbacks()) == 2


def test_idle_server_exits(private):
    pid = private.start("--idle", "0.3")
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    assert not (private.root / "server" / "socket").exists()
    assert "stopped" in private.log()


@pytest.mark.parametrize("started_as", ["absolute", "relative"])
def test_restarts_when_the_installed_diyc_changes(private, tmp_path, started_as):
    """...and finds its command again (started as `bin2/diyc-py server
    start`: the restart runs from /)."""
    # a copy of the package, so that touching it changes no other server's
    pkg = tmp_path / "pkg"
    shutil.copytree(Path(PKG_DIR) / "diyc", pkg / "diyc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    private.bin = make_launcher_dir(tmp_path / "bin2", pkg_dir=str(pkg))
    if started_as == "absolute":
        pid = private.start()
    else:
        started = subprocess.run(["bin2/diyc-py", "server", "start"], cwd=tmp_path,
                                 env=private.env, capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stderr
        pid = private.pid()
    assert private("ps").returncode == 0 and not private.fallbacks()
    later = time.time() + 5
    os.utime(pkg / "diyc" / "errors.py", (later, later))
    assert private("ps").returncode == 0
    assert len(private.fallbacks()) == 1  # declined: the new code ran directly
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = private.python_cli("server", "status")
        if status.returncode == 0 and f"pid {pid})" not in status.stdout:
            break
        time.sleep(0.05)
    assert "diyc changed" in private.log()
    assert private.python_cli("server", "status").returncode == 0, private.log()
    assert private("ps").returncode == 0 and len(private.fallbacks()) == 1


# -- what it declines -------------------------------------------------------------

def _as_other_ids(uid, gid, sock_path, root):
    """In a child: keep root's capabilities (SECBIT_NO_SETUID_FIXUP) under
    another uid/gid, so the socket's directory lets it in and only
    SO_PEERCRED tells it apart.  Returns the server's reply."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.prctl(28, 1 << 2, 0, 0, 0) == 0  # PR_SET_SECUREBITS, NO_SETUID_FIXUP
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            os.write(w, json.dumps(_request(sock_path, root=root)).encode())
        finally:
            os._exit(0)
    os.close(w)
    reply = json.loads(os.read(r, 100) or "null")
    os.close(r)
    os.waitpid(pid, 0)
    return reply


@pytest.mark.parametrize("uid, gid", [(65534, 0), (0, 65534)], ids=["other-uid", "other-gid"])
def test_a_caller_of_another_uid_or_gid_is_declined(private, uid, gid):
    private.start()
    sock = str(private.root / "server" / "socket")
    assert _request(sock, root=str(private.root)) == (1, 0)  # ACCEPT for us
    assert _as_other_ids(uid, gid, sock, str(private.root)) == [2, 0]  # DECLINE
    assert "declined: caller uid" in private.log()


def test_a_caller_without_access_to_the_socket_falls_back(private):
    private.start()
    proc = subprocess.run(
        [sys.executable, "-c", "import os, socket, sys; os.setgid(65534); os.setuid(65534); "
         "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
         str(private.root / "server" / "socket")], capture_output=True, text=True)
    assert "PermissionError" in proc.stderr  # 0700 directory: the launcher falls back


def test_a_caller_in_another_namespace_is_declined(private):
    private.start()
    proc = subprocess.run(["unshare", "--net", str(private.bin / "diyc"), "ps"],
                          capture_output=True, text=True, env=private.env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(private.fallbacks()) == 1
    assert "declined: caller in other namespaces" in private.log()


def test_another_root_is_declined(private):
    private.start()
    other = private.root.parent / "other-root"
    assert _request(str(private.root / "server" / "socket"), root=str(other)) == (2, 0)
    assert not other.exists()


# -- nothing leaks, a crash costs nothing ------------------------------------------

def test_no_server_fds_or_environment_in_workers(private):
    private.start(env={"DIYC_SERVER_SECRET": "leak"})
    # the worker runs the command with the caller's environment only:
    # `diyc run -e NAME` takes NAME's value from the environment diyc sees
    proc = private("run", "--network", "none", "--rm", "-e", "DIYC_SERVER_SECRET", "-e", "CALLER_VAR", "busybox",
                   "sh", "-c", "echo secret=$DIYC_SERVER_SECRET caller=$CALLER_VAR; ls /proc/self/fd",
                   env={"CALLER_VAR": "mine"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[:2] == ["secret=", "caller=mine"]
    assert sorted(lines[2:]) == ["0", "1", "2", "3"]  # 3: ls's own directory
    assert not private.fallbacks()
    # a detached container's supervisor holds none of the server's fds either
    assert private("run", "--network", "none", "-d", "--name", "leak", "busybox", "sleep", "30").returncode == 0
    try:
        shim = json.loads(private("inspect", "leak").stdout)
        shim = shim[0] if isinstance(shim, list) else shim
        supervisor = shim["State"]["SupervisorPid"]
        targets = {os.readlink(f"/proc/{supervisor}/fd/{fd}")
                   for fd in os.listdir(f"/proc/{supervisor}/fd")}
        assert not any("/server/" in t for t in targets), targets
    finally:
        private("rm", "-f", "leak")


def test_sigkill_of_the_server_mid_request_costs_nothing(private):
    pid = private.start()
    client = subprocess.Popen([str(private.bin / "diyc"), "run", "--network", "none", "--rm", "busybox", "sh", "-c",
                               "echo started; sleep 1; echo done"],
                              env=private.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    assert client.stdout.readline() == "started\n"
    os.kill(pid, signal.SIGKILL)
    out, err = client.communicate(timeout=30)
    # the worker outlives the server and reports the exit code itself
    assert (client.returncode, out) == (0, "done\n"), err
    assert not private.fallbacks()
    assert os.listdir(private.root / "containers") == []
    # with the server gone (its socket stale), the launcher falls back
    proc = private("run", "--network", "none", "--rm", "busybox", "echo", "direct")
    assert (proc.returncode, proc.stdout) == (0, "direct\n")
    assert len(private.fallbacks()) == 1


# -- the same behaviour on both paths -----------------------------------------------

def test_runc_cli_through_the_server(private, tmp_path):
    private.start()
    runc = str(private.bin / "diyc-runc")
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    from diyc.images.store import busybox_rootfs_tar
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        tar.extractall(bundle / "rootfs")
    from diyc.oci.runc_cli import default_spec
    spec = default_spec()
    spec["root"]["path"] = "rootfs"
    spec["process"]["args"] = ["sh", "-c", "echo out; exit 3"]
    spec["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    runc_root = tmp_path / "runc-root"

    def call(*args):
        # files, not pipes: a created container keeps the stdio it was given
        with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
            proc = subprocess.run([runc, "--root", str(runc_root), *args], stdout=out,
                                  stderr=err, text=True, env=private.env, timeout=60)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        return proc
    run = call("run", "--bundle", str(bundle), "c1")
    assert (run.returncode, run.stdout) == (3, "out\n"), run.stderr
    create = call("create", "--bundle", str(bundle), "c2")
    assert create.returncode == 0, create.stderr
    assert json.loads(call("state", "c2").stdout)["status"] == "created"
    assert call("start", "c2").returncode == 0
    assert call("delete", "--force", "c2").returncode == 0
    missing = call("state", "c2")
    assert missing.returncode == 1 and missing.stderr.startswith("diyc-runc: ")
    # create (and run -d, exec -d, --preserve-fds) is declined: what it leaves
    # must be its caller's child (conmon, containerd's shim), with its fds
    assert private.fallbacks() == [f"--root {runc_root} create --bundle {bundle} c2"]
    detached = call("run", "-d", "--bundle", str(bundle), "c3")
    assert detached.returncode == 0, detached.stderr
    assert call("delete", "--force", "c3").returncode == 0
    assert private.fallbacks()[-1] == f"--root {runc_root} run -d --bundle {bundle} c3"


@pytest.mark.skipif(not os.path.exists(ru.REGISTRY_BIN), reason="needs docker-registry")
def test_pull_with_progress_through_the_server(private, tmp_path):
    reg = ru.Registry(tmp_path / "registry")
    try:
        reg.push_image("test/layered", "latest", ru.layered_image_layers())
        private.start()
        # a terminal on stdout: the progress display is the terminal one
        import pty
        pid, fd = pty.fork()
        if pid == 0:
            os.environ.update(private.env)
            os.execv(str(private.bin / "diyc"),
                     ["diyc", "pull", "--insecure", f"{reg.host}/test/layered"])
        out = read_pty(fd)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, out
        assert b"Downloaded newer image" in out
        assert not private.fallbacks()
        bad = private("pull", "--insecure", f"{reg.host}/test/missing")
        assert_one_line_error(bad, 125)
    finally:
        reg.stop()


def test_containers_nest_under_the_callers_cgroup(private):
    """A caller in another cgroup than the server's: the worker joins it, so
    the container nests where the direct path would put it."""
    private.start()
    with open("/proc/self/cgroup") as f:
        mine = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    base = f"/sys/fs/cgroup/memory{mine['memory'].rstrip('/')}"
    caller = f"{base}/diyc-test-caller-{os.getpid()}"
    os.mkdir(caller)
    try:
        def enter():
            with open(f"{caller}/cgroup.procs", "w") as f:
                f.write("0")
        proc = subprocess.run([str(private.bin / "diyc"), "run", "--network", "none", "-d", "--name", "nested",
                               "busybox", "sleep", "30"], env=private.env, capture_output=True,
                              text=True, preexec_fn=enter, timeout=60)
        assert proc.returncode == 0, proc.stderr
        try:
            record = json.loads(private("inspect", "nested").stdout)
            record = record[0] if isinstance(record, list) else record
            with open(f"/proc/{record['State']['Pid']}/cgroup") as f:
                memory = next(line.split(":", 2)[2] for line in f.read().splitlines()
                              if line.split(":", 2)[1] == "memory")
            assert memory.startswith(caller[len("/sys/fs/cgroup/memory"):] + "/"), memory
        finally:
            private("rm", "-f", "nested")
        assert not private.fallbacks()
    finally:
        os.rmdir(caller)


def test_the_launcher_dies_by_the_signal_that_killed_its_worker(private):
    private.start()
    client = subprocess.Popen([str(private.bin / "diyc"), "run", "--network", "none", "--rm", "--name", "victim",
                               "busybox", "sh", "-c", "echo up; sleep 30"],
                              env=private.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert client.stdout.readline() == "up\n"
        record = json.loads(private("inspect", "victim").stdout)
        record = record[0] if isinstance(record, list) else record
        with open(f"/proc/{record['State']['Pid']}/stat") as f:
            worker = int(f.read().rsplit(")", 1)[1].split()[1])
        assert worker != client.pid and os.getpgid(worker) != os.getpgid(client.pid)
        os.kill(worker, signal.SIGKILL)  # (the others it forwards to the container)
        # (its pipes stay open: the container, orphaned, still holds them)
        assert client.wait(timeout=30) == -signal.SIGKILL
    finally:
        # as after a diyc killed on the direct path: `rm -f` removes what it left
        assert private("rm", "-f", "victim").returncode == 0
        client.stdout.close()
        client.stderr.close()
    assert not private.fallbacks()


def test_the_callers_rlimits_reach_the_container(private):
    private.start()
    script = "ulimit -S -s 4096; ulimit -S -c 1000; exec \"$0\" \"$@\""
    outs = []
    for mode in ("off", "nostart"):
        proc = subprocess.run(["sh", "-c", script, str(private.bin / "diyc"), "run", "--network", "none", "--rm",
                               "busybox", "sh", "-c", "ulimit -s; ulimit -c"],
                              env={**private.env, "DIYC_SERVER": mode}, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1] == "4096\n1000\n"
    assert len(private.fallbacks()) == 1  # the "off" one


def test_the_callers_cwd_and_umask_hold_for_files_diyc_writes(private, tmp_path):
    private.start()
    assert private("run", "--network", "none", "--rm", "busybox", "true").returncode == 0  # the built-in image
    modes = []
    for mode in ("off", "nostart"):
        out = tmp_path / f"out-{mode}"
        out.mkdir()
        proc = subprocess.run(["sh", "-c", "umask 077; exec \"$0\" \"$@\"", str(private.bin / "diyc"),
                               "save", "-o", "busybox.tar", "busybox"],
                              env={**private.env, "DIYC_SERVER": mode}, capture_output=True,
                              text=True, timeout=60, cwd=out)
        assert proc.returncode == 0, proc.stderr
        modes.append(stat.S_IMODE(os.stat(out / "busybox.tar").st_mode))
    assert modes[0] == modes[1] and modes[0] & 0o077 == 0
    assert len(private.fallbacks()) == 1


# -- the reply before the teardown --------------------------------------------------

def test_a_removed_containers_name_is_free_when_the_command_returns(private):
    """The name, lease and record go before the reply (the cgroup and the
    writable layer after it): the next command never finds them taken."""
    private.start()
    for _ in range(25):
        first = private("run", "--network", "none", "--rm", "--name", "x", "busybox", "true")
        assert first.returncode == 0, first.stderr
        second = private("run", "--network", "none", "--name", "x", "busybox", "true")
        assert second.returncode == 0, second.stderr
        assert private("rm", "x").returncode == 0
    assert private("run", "--rm", "--network", "bridge", "--name", "x", "busybox",
                   "true").returncode == 0
    assert private("run", "--rm", "--network", "bridge", "--name", "x", "busybox",
                   "true").returncode == 0
    assert not private.fallbacks()
    assert private.python_cli("network", "prune", "-f").returncode == 0  # the bridge of this root goes
    # the rest follows: nothing of the 52 containers stays behind
    deadline = time.monotonic() + 10
    while os.listdir(private.root / "tmp") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.listdir(private.root / "tmp") == []
    assert os.listdir(private.root / "containers") == []


def test_a_crash_after_the_reply_leaves_what_cleanup_finishes(private):
    """A worker killed between its reply and the end of the teardown: the
    container's directory waits in tmp/ with its record, and `diyc cleanup`
    removes it and the container's cgroups."""
    assert private.python_cli("run", "--network", "none", "--rm", "busybox",
                              "true").returncode == 0
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); "
            "from diyc import removal; from diyc.runtime import Container; "
            "removal.defer_until_replied(); "
            "c = Container.create('busybox', ['true'], auto_remove=True, network='none'); "
            "c.start(); c.wait(); "
            "print(c.record['cgroup']['paths'][next(iter(c.record['cgroup']['paths']))]); "
            "sys.stdout.flush(); os._exit(0)")
    proc = subprocess.run([sys.executable, "-c", code, PKG_DIR], capture_output=True, text=True,
                          env=private.env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    cgroup = proc.stdout.strip()
    (staged,) = os.listdir(private.root / "tmp")
    assert staged.startswith("removing-") and os.path.isdir(cgroup)
    assert (private.root / "tmp" / staged / "container.json").exists()
    assert os.listdir(private.root / "containers") == []
    out = private.python_cli("cleanup")
    assert out.returncode == 0 and f"removed staging {staged}" in out.stdout, out
    assert os.listdir(private.root / "tmp") == [] and not os.path.exists(cgroup)


# -- terminals: the same through the server as direct --------------------------------

@pytest.mark.parametrize("mode", ["off", "nostart"], ids=["direct", "server"])
def test_a_terminal_resizes_and_detaches_through_the_launcher(private, mode):
    """A real pty as the launcher's controlling terminal: raw mode, a resize
    mid-session (the kernel's SIGWINCH, relayed), Ctrl-p Ctrl-q."""
    import fcntl
    import pty
    import termios
    private.start()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(private.env, DIYC_SERVER=mode)
        os.execv(str(private.bin / "diyc"), ["diyc", "run", "--network", "none", "-it", "--name", "t",
                                                 "busybox", "sh"])

    def read_until(token):
        return read_pty(fd, token, timeout=15)

    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        assert b"# " in read_until(b"# ")
        # raw mode on the launcher's terminal while attached (the master
        # reads the pty's settings)
        assert not termios.tcgetattr(fd)[3] & termios.ICANON
        os.write(fd, b"echo size=$(stty size)\r")
        assert b"size=30 100" in read_until(b"size=30 100")
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 132, 0, 0))
        time.sleep(0.3)  # (the SIGWINCH on its way: launcher, worker, supervisor)
        os.write(fd, b"echo size=$(stty size)\r")
        out = read_until(b"size=41 132")
        assert b"size=41 132" in out, out
        os.write(fd, b"\x10\x11")  # Ctrl-p Ctrl-q
        assert b"detached" in read_until(b"detached")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # raw mode was for the session only: the terminal is back to canonical
        assert termios.tcgetattr(fd)[3] & termios.ICANON
        assert private("inspect", "t").returncode == 0
    finally:
        os.close(fd)
        private("rm", "-f", "t")
    assert len([f for f in private.fallbacks() if f.startswith("run")]) == (mode == "off")


def test_a_caller_with_fewer_privileges_is_not_served(private):
    """A root caller under no_new_privs (or a smaller bounding set, or
    seccomp) gets nothing more through the server: declined, it runs the
    direct path, confined as it is."""
    private.start()
    assert private("ps", "-q").returncode == 0
    assert private.fallbacks() == []
    confined = subprocess.run(["setpriv", "--no-new-privs", str(private.bin / "diyc"), "ps", "-q"],
                              capture_output=True, text=True, env=private.env, timeout=60)
    assert confined.returncode == 0, confined.stderr
    assert private.fallbacks() == ["ps -q"]
    assert "no_new_privs" in private.log()


def test_a_server_started_on_first_use_keeps_none_of_its_callers_fds(tmp_path):
    """The first `diyc` starts the server: an fd it had open (a lock, the
    write end of a pipe a CI runner waits on) is not held by the server."""
    own = PrivateServer(tmp_path)
    env = dict(own.env, DIYC_SERVER="on")
    r, w = os.pipe()
    try:
        proc = subprocess.run([str(own.bin / "diyc"), "ps", "-q"], env=env, capture_output=True,
                              text=True, timeout=60, pass_fds=(w,))
        assert proc.returncode == 0, proc.stderr
        os.close(w)
        w = -1
        wait_for(lambda: (own.root / "server" / "pid").exists(), what="the server")
        pid = own.pid()
        held = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert not any(f"pipe:[{os.fstat(r).st_ino}]" == h for h in held)
        # so the pipe's reader gets its EOF now, not when the server idles out
        import select
        assert select.select([r], [], [], 10)[0] and os.read(r, 1) == b""
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
        own.python_cli("server", "stop")
