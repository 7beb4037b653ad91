"""The server's warm containers for `diyc run --rm` (#10; diyc/server_pool.py,
diyc/pool_keeper.py): a repeated run with the same settings runs in a held
container, and says and does what the direct way does."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import container_records, stop_keepers, wait_for
from diyc.pool_keeper import keepers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_server import PrivateServer, _processes_of  # noqa: E402

NONE = ("--network", "none")


@pytest.fixture
def warm(tmp_path):
    server = PrivateServer(tmp_path)
    server.start()
    yield server
    from conftest import stop_process
    stop_process(server.pid())
    assert container_records(server.root) == []  # the keepers removed their pools first
    wait_for(lambda: not _processes_of(server.bin), timeout=5, what="the server's processes gone")


def warm_runs(server):
    return server.log().count(" warm (")


def keep_warm(server, *flags, env=None):
    """Run `run --rm FLAGS busybox true` until its settings have a keeper
    (the worker of their second direct run becomes it)."""
    # (a setting is kept warm from its second direct run on; the first run
    # of a root makes the built-in image)
    for _ in range(3):
        proc = server("run", "--rm", *flags, "busybox", "true", env=env)
        assert proc.returncode == 0, proc.stderr
        if glob.glob(f"{server.root}/server/pools/*.sock"):
            break
    wait_for(lambda: any(map(listening, glob.glob(f"{server.root}/server/pools/*.sock"))),
             timeout=30, what=f"a keeper listening; the server's log:\n{server.log()}")


def listening(path):
    import socket
    directory = os.open(os.path.dirname(path), os.O_PATH)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            # (a keeper drops a connection that sends nothing; the short path:
            # sun_path's 108 bytes)
            name = os.path.basename(path)
            return sock.connect_ex(f"/proc/self/fd/{directory}/{name}") == 0
    finally:
        os.close(directory)


def held_records(server):
    return [r for r in container_records(server.root)
            if r["spec"]["process"]["args"] == ["diyc-pool-held"]]


def test_a_repeated_run_rm_runs_warm_and_held_containers_are_hidden(warm):
    keep_warm(warm, *NONE)
    for i in range(5):
        proc = warm("run", "--rm", *NONE, "busybox", "sh", "-c", f"echo run {i}; exit {i}")
        assert (proc.returncode, proc.stdout, proc.stderr) == (i, f"run {i}\n", "")
    assert warm_runs(warm) >= 4  # (one may find the refill not done: the direct way)
    assert not warm.fallbacks()
    # held containers are not the user's: ps -a does not list them
    wait_for(lambda: len(held_records(warm)) == 2, what="a full pool")
    assert warm("ps", "-aq").stdout == ""
    assert warm.python_cli("ps", "-a", "--format", "{{.ID}}").stdout == ""


def test_warm_and_direct_runs_say_the_same(warm):
    """stdout, stderr and the exit code of each case, warm and with
    DIYC_SERVER_POOL=off (the same server, the direct way)."""
    # (settings flags: the pool's; process flags: each run's)
    cases = [
        ([], ["-i"], ["cat"], "from stdin\n"),
        ([], ["-e", "FROM_CALLER", "-e", "X=1", "-w", "/tmp", "-u", "nobody"],
         ["sh", "-c", "echo $FROM_CALLER $X $(pwd) $(id -u); echo to stderr >&2; exit 3"], None),
        ([], [], ["nosuchcommand"], None),
        ([], [], ["/etc/passwd"], None),
        ([], ["-u", "nosuchuser"], ["true"], None),
        (["-m", "8m"], [], ["sh", "-c", "x=$(head -c 30000000 /dev/zero | tr '\\0' a); echo $x"], None),
    ]
    env = {"FROM_CALLER": "caller's value"}
    for settings, flags, command, stdin in cases:
        keep_warm(warm, *NONE, *settings)
        before = warm_runs(warm)
        args = ["run", "--rm", *NONE, *settings, *flags, "busybox", *command]
        served = warm(*args, input=stdin, env=env)
        assert warm_runs(warm) == before + 1, (flags, command)
        direct = warm(*args, input=stdin, env=dict(env, DIYC_SERVER_POOL="off"))
        assert warm_runs(warm) == before + 1
        # (the container's name differs: the OOM line names it)
        assert (served.returncode, served.stdout, unnamed(served.stderr)) == \
            (direct.returncode, direct.stdout, unnamed(direct.stderr))
        stop_keepers(warm.root)  # (MAX_KEEPERS settings at once)
    assert not warm.fallbacks()


def unnamed(text):
    return re.sub(r"container [a-z0-9_]+:", "container NAME:", text)


def test_signals_reach_a_warm_container(warm):
    keep_warm(warm, *NONE)
    before = warm_runs(warm)
    client = subprocess.Popen([str(warm.bin / "diyc"), "run", "--rm", *NONE, "busybox", "sh", "-c",
                               "trap 'echo got TERM; exit 7' TERM; echo up; sleep 30 & wait"],
                              env=warm.env, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline() == "up\n"
        # a long run shows in ps, with its command
        wait_for(lambda: "sleep 30" in warm("ps", "--no-trunc").stdout, what="the run in ps")
        client.send_signal(signal.SIGTERM)
        assert client.wait(timeout=30) == 7
        assert client.stdout.read() == "got TERM\n"
    finally:
        client.stdout.close()
    assert warm_runs(warm) == before + 1


def test_a_killed_launcher_kills_its_warm_container(warm):
    keep_warm(warm, *NONE)
    client = subprocess.Popen([str(warm.bin / "diyc"), "run", "--rm", *NONE, "busybox", "sh", "-c",
                               "echo up; sleep 60"], env=warm.env, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline() == "up\n"
        client.kill()
        client.wait(timeout=30)
    finally:
        client.stdout.close()
    # (its worker killed with it: the keeper kills the container, and its removal follows)
    wait_for(lambda: not [r for r in container_records(warm.root)
                          if "sleep 60" in r["spec"]["process"]["args"]], timeout=30,
             what="the container gone")


def test_warm_containers_nest_under_the_callers_cgroup(warm):
    with open("/proc/self/cgroup") as f:
        mine = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    caller = f"/sys/fs/cgroup/memory{mine['memory'].rstrip('/')}/diyc-test-warm-{os.getpid()}"
    os.mkdir(caller)

    def enter():
        with open(f"{caller}/cgroup.procs", "w") as f:
            f.write("0")
    try:
        script = "cat /proc/self/cgroup >/dev/null; echo ok"
        for _ in range(5):  # (image, seen, then the keeper, in the caller's cgroup, and warm runs)
            proc = subprocess.run([str(warm.bin / "diyc"), "run", "--rm", *NONE, "busybox", "sh",
                                   "-c", script], env=warm.env, capture_output=True, text=True,
                                  preexec_fn=enter, timeout=60)
            assert proc.stdout == "ok\n", proc.stderr
            time.sleep(0.2)
        assert warm_runs(warm) >= 1
        wait_for(lambda: held_records(warm), what="a held container")
        for record in held_records(warm):
            with open(f"/proc/{record['state']['pid']}/cgroup") as f:
                memory = next(line.split(":", 2)[2] for line in f.read().splitlines()
                              if line.split(":", 2)[1] == "memory")
            assert memory.startswith(caller[len("/sys/fs/cgroup/memory"):] + "/"), memory
    finally:
        stop_keepers(warm.root)
        os.rmdir(caller)


def test_what_depends_on_more_than_its_value_runs_the_direct_way(warm, tmp_path):
    """A name, a bind mount, an env file, no command: never warm."""
    env_file = tmp_path / "env"
    env_file.write_text("K=from file\n")
    (tmp_path / "data").mkdir()
    for flags, command in ((["--name", "named"], ["true"]),
                           (["-v", f"{tmp_path / 'data'}:/data"], ["true"]),
                           (["--env-file", str(env_file)], ["sh", "-c", "test \"$K\" = 'from file'"]),
                           (["--entrypoint", "true"], [])):
        for _ in range(3):
            proc = warm("run", "--rm", *NONE, *flags, "busybox", *command)
            assert proc.returncode == 0, proc.stderr
    assert warm_runs(warm) == 0
    assert glob.glob(f"{warm.root}/server/pools/*.sock") == []


def test_server_stop_and_a_killed_keeper_leave_nothing(warm):
    keep_warm(warm, *NONE)
    wait_for(lambda: len(held_records(warm)) == 2, what="a full pool")
    status = warm.python_cli("server", "status").stdout
    ((keeper, image),) = keepers(f"{warm.root}/server/pools")
    assert image == "busybox" and f"of busybox: kept by pid {keeper}" in status, status
    os.kill(keeper, signal.SIGKILL)
    # its held containers die with it; the next run finds no keeper, runs
    # the direct way and keeps the settings warm again
    wait_for(lambda: not os.path.exists(f"/proc/{keeper}/ns"), what="the keeper gone")
    keep_warm(warm, *NONE)
    before = warm_runs(warm)
    assert warm("run", "--rm", *NONE, "busybox", "true").returncode == 0
    assert warm_runs(warm) == before + 1
    # what the killed keeper held: dead, and `cleanup` removes it
    proc = warm.python_cli("cleanup")
    assert proc.returncode == 0 and proc.stdout.count("removed dead container") == 2, proc.stdout
    # system reset ends the new keeper first: nothing refills what it removes
    wait_for(lambda: len(held_records(warm)) == 2, what="a full pool again")
    assert warm("system", "reset", "-f").returncode == 0
    time.sleep(0.3)  # (a keeper left running would have refilled by now)
    assert container_records(warm.root) == [] and keepers(f"{warm.root}/server/pools") == []


class NetnsServer(PrivateServer):
    """A private server, and its callers, in a test network namespace (its
    bridges are there, not in the machine's)."""

    def __init__(self, tmp_path, ns):
        super().__init__(tmp_path)
        self.enter = ["nsenter", f"--net=/run/netns/{ns}"]

    def __call__(self, *args, env=None, **kwargs):
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 60)
        return subprocess.run([*self.enter, str(self.bin / "diyc"), *map(str, args)],
                              env={**self.env, **(env or {})}, **kwargs)

    def python_cli(self, *args, env=None):
        return subprocess.run([*self.enter, str(self.bin / "diyc-py"), *map(str, args)],
                              capture_output=True, text=True, env={**self.env, **(env or {})},
                              timeout=60)


def test_warm_containers_give_way_to_network_rm(tmp_path):
    """They hold their network, but they are a cache: network rm ends
    their keeper first, as `ps -a` shows nothing using it."""
    from conftest import stop_process
    from netns_util import netns
    with netns() as ns:
        server = NetnsServer(tmp_path, ns)
        server.start()
        try:
            assert server("network", "create", "warmnet").returncode == 0
            keep_warm(server, "--network", "warmnet")
            proc = server("network", "rm", "warmnet")
            assert (proc.returncode, proc.stdout) == (0, "warmnet\n"), proc.stderr
            assert held_records(server) == [] and keepers(f"{server.root}/server/pools") == []
        finally:
            stop_process(server.pid())
            server.python_cli("system", "reset", "-f")
        assert container_records(server.root) == []


def test_warm_containers_give_way_to_rmi(warm):
    """They hold their image: rmi ends their keeper first."""
    keep_warm(warm, *NONE)
    assert warm("tag", "busybox", "warm:copy").returncode == 0
    assert warm("rmi", "busybox").returncode == 0  # (untagged only: warm:copy names it too)
    proc = warm("rmi", "warm:copy")
    assert proc.returncode == 0 and "Deleted: sha256:" in proc.stdout, proc.stderr
    assert held_records(warm) == [] and keepers(f"{warm.root}/server/pools") == []


def test_a_connection_that_is_not_a_server_worker_gets_nothing(warm):
    """Only the server's own workers (which checked their caller) may hand
    a process to a keeper: another process of the same uid is refused."""
    import socket
    import struct
    keep_warm(warm, *NONE)
    (path,) = glob.glob(f"{warm.root}/server/pools/*.sock")
    directory = os.open(os.path.dirname(path), os.O_PATH)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.connect(f"/proc/self/fd/{directory}/{os.path.basename(path)}")
            request = {"cmd": ["sh", "-c", "echo escaped"], "env": [], "cwd": None, "user": None}
            sock.sendmsg([json.dumps(request).encode()],
                          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("3i", 0, 1, 2))])
            sock.settimeout(10)
            try:
                reply = sock.recv(4096)
            except ConnectionResetError:  # (closed with our request unread)
                reply = b""
            assert reply == b""  # nothing started
    finally:
        os.close(directory)
    assert "not a server worker" in warm.log()
    assert "escaped" not in warm.log()
