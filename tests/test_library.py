"""The Python API: diyc.run() and diyc.Container, in this process."""

import os
import time

import pytest

import diyc
from diyc.runtime import Container

from conftest import child_pids, container_records


@pytest.fixture
def root(diyc_root):
    return str(diyc_root)


def open_fds():
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))


def test_run_captures_stdout(root):
    r = diyc.run("busybox", ["echo", "hi"], network="none", capture_output=True, root=root)
    assert r.exit_code == 0
    assert r.returncode == 0
    assert r.stdout == b"hi\n"
    assert r.stderr == b""
    assert r.oom_killed is False
    assert len(r.id) == 64


def test_run_captures_stderr_separately(root):
    r = diyc.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 5"],
                 network="none", capture_output=True, root=root)
    assert r.exit_code == 5
    assert r.stdout == b"out\n"
    assert r.stderr == b"err\n"


def test_run_feeds_input(root):
    r = diyc.run("busybox", ["sh", "-c", "cat; echo done"], network="none", input=b"from python\n",
                 capture_output=True, root=root)
    assert r.stdout == b"from python\ndone\n"


def test_run_large_input_and_output(root):
    data = os.urandom(3 << 20)
    r = diyc.run("busybox", ["cat"], network="none", input=data, capture_output=True, root=root)
    assert r.exit_code == 0
    assert r.stdout == data


def test_input_without_capture(root, tmp_path):
    out = tmp_path / "out"
    with open(out, "wb") as f:
        r = diyc.run("busybox", ["wc", "-c"], network="none", input=b"12345", stdout=f, root=root)
    assert r.exit_code == 0
    assert r.stdout is None
    assert out.read_text().split() == ["5"]


def test_container_that_ignores_its_input(root):
    r = diyc.run("busybox", ["true"], network="none", input=os.urandom(1 << 20), capture_output=True, root=root)
    assert r.exit_code == 0


def test_run_with_memory_limit(root):
    r = diyc.run("busybox", ["sh", "-c", "echo ok"], network="none", memory="64m", capture_output=True,
                 root=root)
    assert r.exit_code == 0
    assert r.stdout == b"ok\n"
    assert r.oom_killed is False


def test_run_options(root):
    r = diyc.run("busybox", ["sh", "-c", "hostname; pwd; id -u; echo $FOO"],
                 network="none", hostname="lib-box", workdir="/tmp/w", user="65534", env=["FOO=bar"],
                 capture_output=True, root=root)
    assert r.stdout.decode().split() == ["lib-box", "/tmp/w", "65534", "bar"]


def test_timings(root):
    r = diyc.run("busybox", ["true"], network="none", capture_output=True, root=root)
    assert set(r.timings) >= {"config", "cgroup", "rootfs", "clone", "exec", "wait"}
    assert all(isinstance(v, float) and v >= 0 for v in r.timings.values())


def test_container_lifecycle(root):
    c = Container.create("busybox", ["sh", "-c", "exit 4"], network="none", name="libcycle", root=root)
    try:
        assert c.name == "libcycle"
        assert c.status == "created"
        assert len(container_records(root)) == 1
        assert Container.load("libcycle", root).id == c.id
        assert Container.load(c.id[:8], root).id == c.id
        pid = c.start()
        assert pid > 0
        result = c.wait()
        assert result.exit_code == 4
        assert c.status == "exited"
        again = Container.load("libcycle", root)
        assert again.status == "exited"
        assert again.record["state"]["exit_code"] == 4
        assert [x.id for x in Container.list(root, all=True)] == [c.id]
    finally:
        c.remove()
    assert container_records(root) == []
    with pytest.raises(diyc.ContainerNotFound):
        Container.load("libcycle", root)


def test_container_kill_and_auto_remove(root):
    c = Container.create("busybox", ["sleep", "30"], network="none", auto_remove=True, root=root)
    c.start()
    assert c.status == "running"
    with pytest.raises(diyc.Conflict):
        c.remove()  # running, no force
    c.kill(9)
    result = c.wait()
    assert result.exit_code == 137
    assert container_records(root) == []  # auto_remove: gone after wait


def test_start_twice_refused(root):
    c = Container.create("busybox", ["sleep", "30"], network="none", root=root)
    try:
        c.start()
        with pytest.raises(diyc.Conflict):
            c.start()
    finally:
        c.kill(9)
        c.wait()
        c.remove()


def test_many_sequential_runs_leave_nothing_behind(root):
    fds = open_fds()
    for i in range(50):
        r = diyc.run("busybox", ["sh", "-c", f"echo {i}"], network="none", capture_output=True, root=root)
        assert r.exit_code == 0
        assert r.stdout == f"{i}\n".encode()
    assert open_fds() == fds
    assert child_pids() == []
    assert os.listdir(f"{root}/containers") == []
    assert os.listdir(f"{root}/names") == []


def test_errors_leave_no_fd_behind(root):
    fds = open_fds()
    for _ in range(5):
        with pytest.raises(diyc.CommandNotFound):
            diyc.run("busybox", ["nosuchcmd"], network="none", capture_output=True, root=root)
        with pytest.raises(diyc.CommandNotExecutable):
            diyc.run("busybox", ["/etc/passwd"], network="none", input=b"x", capture_output=True, root=root)
    assert open_fds() == fds


@pytest.mark.parametrize("userns", [None, "auto"])
def test_init_failure_carries_step_errno_and_detail(root, userns):
    # with --userns the init first waits for ID_MAPS_DONE and its idmapped
    # layers on the channel: a failure after that leaves nothing open either
    import errno
    fds = open_fds()
    for _ in range(3):
        with pytest.raises(diyc.InitError) as info:
            diyc.run("busybox", ["true"], network="none", workdir="/etc/passwd", userns=userns, root=root)
        e = info.value
        assert (e.step, e.errno, e.detail) == ("chdir", errno.ENOTDIR, "/etc/passwd")
        assert str(e) == "chdir: Not a directory (/etc/passwd)"
        assert e.exit_code == 125
    assert open_fds() == fds
    assert child_pids() == []
    assert container_records(root) == []


def test_init_description_is_typed():
    from diyc.init_description import InitDescription
    from diyc.rootfs import init_config
    with pytest.raises(TypeError):
        InitDescription(no_such_field=1)
    init = init_config({"process": {"args": ["true"]}, "root": {"path": "/nonexistent"}})
    with pytest.raises(AttributeError):
        init.no_such_field = 1
    # the defaults, from the one place they live
    assert (init.cwd, init.uid, init.gid, init.umask, init.stdio) == ("/", 0, 0, 0o022, (-1, -1, -1))
    assert init.capabilities is None and init.supervisor_argv is None and init.console_fd == -1
    assert init.scratch_options == "mode=0755"
    joined = init.replace(join_paths={"network": "/proc/1/ns/net"}, loopback_up=False)
    assert joined.join_paths == {"network": "/proc/1/ns/net"} and init.join_paths == {}
    assert joined.argv == ["true"]


def test_image_not_found(root):
    with pytest.raises(diyc.ImageNotFound) as info:
        diyc.run("nosuchimage", ["true"], network="none", root=root)
    assert isinstance(info.value, diyc.NotFound)
    assert isinstance(info.value, diyc.DiycError)
    assert info.value.exit_code == 125


@pytest.mark.parametrize("options", [{"memory": "10q"}, {"cpus": -1}, {"pids_limit": 0},
                                     {"name": "a/b"},
                                     {"workdir": "relative"}, {"user": "nosuchuser"}])
def test_invalid_argument(root, options):
    with pytest.raises(diyc.InvalidArgument) as info:
        diyc.run("busybox", ["true"], network="none", root=root, **options)
    assert info.value.exit_code == 125
    assert container_records(root) == []


def test_unknown_network(root):
    with pytest.raises(diyc.DiycError) as info:
        diyc.run("busybox", ["true"], network="bogus", root=root)
    assert info.value.exit_code == 125
    assert "bogus" in str(info.value)
    assert container_records(root) == []


def test_command_not_found(root):
    with pytest.raises(diyc.CommandNotFound) as info:
        diyc.run("busybox", ["nosuchcmd"], network="none", root=root)
    e = info.value
    assert isinstance(e, diyc.InitError)
    assert e.step == "exec"
    assert e.errno == 2
    assert e.exit_code == 127
    assert str(e) == "executable file not found: nosuchcmd"


def test_command_not_executable(root):
    with pytest.raises(diyc.CommandNotExecutable) as info:
        diyc.run("busybox", ["/etc/passwd"], network="none", root=root)
    assert info.value.step == "exec"
    assert info.value.exit_code == 126


def test_name_conflict(root):
    c = Container.create("busybox", ["true"], network="none", name="libdup", root=root)
    try:
        with pytest.raises(diyc.Conflict):
            diyc.run("busybox", ["true"], network="none", name="libdup", root=root)
    finally:
        c.remove()


def _stuck_inits():
    """Our children still running this interpreter: container inits that
    never reached execve (after exec their exe is the container's)."""
    me = os.readlink("/proc/self/exe")
    stuck = []
    for pid in child_pids():
        try:
            if os.readlink(f"/proc/{pid}/exe") == me:
                with open(f"/proc/{pid}/wchan") as f:
                    stuck.append((pid, f.read()))
        except OSError:
            pass
    return stuck


def test_run_while_other_threads_start(root):
    """Containers started from a thread while 4 other threads keep creating
    threads (pthread_create/pthread_join through ctypes, in a loop).  Each
    run gets 3 s (100 times what it takes); one not done by then is examined:
    an init still running this interpreter (not exec'd), asleep on a futex,
    is the deadlock.  It is killed, which unblocks run(), and the test
    fails.  (Not a timing assert: a slow run without such an init just gets
    more time.)"""
    import ctypes
    import threading
    libc = ctypes.CDLL(None)
    routine = ctypes.cast(libc.getpid, ctypes.c_void_p)  # a harmless thread body
    stop = threading.Event()

    def churn():
        tid = ctypes.c_ulong()
        while not stop.is_set():
            if libc.pthread_create(ctypes.byref(tid), None, routine, None) == 0:
                libc.pthread_join(tid, None)
    churners = [threading.Thread(target=churn, daemon=True) for _ in range(4)]
    for th in churners:
        th.start()
    stuck = []
    try:
        for i in range(10):
            box = {}

            def work():
                try:
                    box["r"] = diyc.run("busybox", ["echo", str(i)], network="none", capture_output=True,
                                        root=root)
                except Exception as e:
                    box["e"] = e
            w = threading.Thread(target=work, daemon=True)
            w.start()
            w.join(3)
            while w.is_alive():
                stuck = [(pid, wchan) for pid, wchan in _stuck_inits() if "futex" in wchan]
                for pid, _ in stuck:
                    os.kill(pid, 9)
                w.join(3)
            if stuck:
                break
            assert "e" not in box, box
            assert (box["r"].exit_code, box["r"].stdout) == (0, f"{i}\n".encode())
    finally:
        stop.set()
        for th in churners:
            th.join(10)
    assert not stuck, f"container inits stuck before execve (pid, wchan): {stuck}"
    assert container_records(root) == []


def test_runs_from_several_threads(root):
    """Correct results from concurrent runs.  No thread is created or exits
    while containers start (barriers before and after): that is the deadlock
    of the test above, not what this one is about."""
    import threading
    start, end = threading.Barrier(4), threading.Barrier(4)
    results, errors = {}, []

    def work(t):
        start.wait()
        try:
            for i in range(3):
                r = diyc.run("busybox", ["sh", "-c", f"echo {t}-{i}"], network="none", capture_output=True,
                             root=root)
                results[(t, i)] = (r.exit_code, r.stdout)
        except Exception as e:
            errors.append(f"thread {t}: {e!r}")
        end.wait()
    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    assert results == {(t, i): (0, f"{t}-{i}\n".encode()) for t in range(4) for i in range(3)}
    assert container_records(root) == []
