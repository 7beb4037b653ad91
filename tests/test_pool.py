"""diyc.Pool: warm containers held at their release, each handed one
process (real containers; the autouse fixture checks that nothing is left)."""

import fcntl
import gc
import json
import os
import select
import signal
import subprocess
import sys
import threading

import pytest

import diyc
from diyc.errors import ArgumentTypeError, CommandNotFound, DiycError, InitError, InvalidArgument

from conftest import PKG_DIR, child_pids, container_records, wait_for


@pytest.fixture
def root(diyc_root):
    return str(diyc_root)


@pytest.fixture
def pool(root):
    with diyc.Pool("busybox", network="none", size=2, root=root) as p:
        yield p


def ready(p):
    return len(p._warm.ready)


def test_run_returns_a_result(pool):
    r = pool.run(["sh", "-c", "echo out; echo err >&2; exit 3"], capture_output=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    assert r.args == ["sh", "-c", "echo out; echo err >&2; exit 3"]
    r.args.append("changed")  # (the same call again reuses its description: not this list)
    r = pool.run(["sh", "-c", "echo out; echo err >&2; exit 3"], capture_output=True)
    assert (r.returncode, r.stdout, r.args[-1]) == (3, b"out\n", "echo out; echo err >&2; exit 3")
    assert len(r.id) == 64 and r.oom_killed is False
    assert pool.run("sh -c 'exit 7'").returncode == 7  # a str is split as a shell would


def test_each_warm_container_has_anonymous_volumes_of_its_own(root):
    """-v /path (and an image's VOLUME): a pool's containers are not copies
    of one record there; each volume goes with its container."""
    from diyc.volumes import list_volumes
    from diyc.state import Root
    before = set(list_volumes(Root(root)))
    with diyc.Pool("busybox", network="none", size=2, volumes=["/anon"], root=root) as p:
        outs = [p.run(["sh", "-c", "ls /anon; touch /anon/mine"], capture_output=True).stdout
                for _ in range(3)]
        assert outs == [b"", b"", b""]  # never another's
    assert set(list_volumes(Root(root))) == before


def test_env_cwd_and_user_are_handed_over(root):
    with diyc.Pool("busybox", network="none", size=1, root=root, env={"FROM_POOL": "p", "BOTH": "pool"}) as p:
        r = p.run(["sh", "-c", "echo $FROM_POOL $FROM_RUN $BOTH $HOME; pwd; id -u; id -g; id -G"],
                  env={"FROM_RUN": "r", "BOTH": "run"}, cwd="/made/by/the/init", user="nobody",
                  capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        vars_, cwd, uid, gid, groups = r.stdout.splitlines()
        assert vars_.split() == ["p", "r", "run", "/nonexistent"]  # nobody's HOME in the image
        assert cwd == "/made/by/the/init"
        assert (uid, gid) == ("65534", "65534")
        assert groups == "65534"
        r = p.run(["sh", "-c", "id -u; id -g; id -G"], user="1234:5678", capture_output=True, text=True)
        assert r.stdout.split() == ["1234", "5678", "5678"]


def test_capabilities_follow_the_user(pool):
    def cap_eff(user):
        r = pool.run(["grep", "CapEff", "/proc/self/status"], user=user, capture_output=True, text=True)
        return int(r.stdout.split()[1], 16)
    assert cap_eff("0") != 0
    assert cap_eff("nobody") == 0


def test_stdin_input_and_text(pool):
    r = pool.run(["sh", "-c", "cat; echo done"], input="from python\n", text=True,
                 capture_output=True)
    assert r.stdout == "from python\ndone\n"
    data = os.urandom(1 << 20)
    assert pool.run(["cat"], input=data, capture_output=True).stdout == data


def test_output_to_a_file_without_capture(pool, tmp_path):
    out = tmp_path / "out"
    with open(out, "wb") as f:
        r = pool.run(["echo", "to a file"], stdout=f)
    assert r.stdout is None and r.returncode == 0
    assert out.read_bytes() == b"to a file\n"


def test_each_run_gets_a_fresh_container(pool):
    first = pool.run(["sh", "-c", "echo mark > /left-over; hostname"], capture_output=True)
    second = pool.run(["sh", "-c", "cat /left-over; hostname"], capture_output=True)
    assert b"/left-over': No such file" in second.stderr
    assert first.id != second.id and first.stdout != second.stdout


def test_refused_input_takes_no_container(pool):
    wait_for(lambda: ready(pool) == 2, what="a full pool")
    with pytest.raises(InvalidArgument, match="no command"):
        pool.run([])
    with pytest.raises(ArgumentTypeError, match="env"):
        pool.run(["true"], env=[1, 2])
    with pytest.raises(InvalidArgument, match="must be absolute"):
        pool.run(["true"], cwd="relative")
    with pytest.raises(InvalidArgument, match="unable to find user nosuchuser"):
        pool.run(["true"], user="nosuchuser")
    with pytest.raises(InvalidArgument, match="NUL"):
        pool.run(["echo", "a\0b"])
    assert ready(pool) == 2


def test_a_failure_in_the_init_names_its_step(root):
    with diyc.Pool("busybox", network="none", size=1, root=root, read_only=True) as p:
        with pytest.raises(CommandNotFound, match="executable file not found: nosuch") as e:
            p.run(["nosuch"])
        assert e.value.step == "exec" and e.value.exit_code == 127
        with pytest.raises(InitError, match="workdir: Read-only file system") as e:
            p.run(["true"], cwd="/not/there")
        assert e.value.step == "workdir"
        assert p.run(["true"]).returncode == 0  # the pool goes on


def test_bad_pool_options_raise_at_once(root):
    with pytest.raises(InvalidArgument, match="memory"):
        diyc.Pool("busybox", network="none", size=1, root=root, memory="1k")
    with pytest.raises(InvalidArgument, match="takes no name"):
        diyc.Pool("busybox", network="none", root=root, name="x")
    with pytest.raises(TypeError, match="diyc.Pool.. got an unexpected keyword argument 'nosuch'"):
        diyc.Pool("busybox", network="none", root=root, nosuch=1)
    with pytest.raises(diyc.ImageNotFound):
        diyc.Pool("no-such-image", network="none", root=root)
    assert container_records(root) == []


def test_limits_apply(root):
    with diyc.Pool("busybox", network="none", size=1, root=root, memory="32m") as p:
        with p.take() as held:
            cgroup = held.container.control_group()
            if cgroup.version == 1:
                limit = f"{cgroup.paths['memory']}/memory.limit_in_bytes"
            else:
                limit = f"{cgroup.path}/memory.max"
            with open(limit) as f:
                assert int(f.read()) == 32 << 20
            held.start(["true"])
            assert held.wait().returncode == 0


def test_timeout_kills_and_removes(pool, root):
    with pytest.raises(diyc.ContainerTimeout) as e:
        pool.run(["sh", "-c", "echo started; sleep 30"], timeout=0.5, capture_output=True)
    assert e.value.stdout == b"started\n"
    assert e.value.timeout == 0.5


def test_threads_share_a_pool(pool):
    results, errors = {}, []

    def worker(n):
        try:
            for i in range(4):
                r = pool.run(["echo", f"{n}-{i}"], capture_output=True)
                results[(n, i)] = r.stdout
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {(n, i): f"{n}-{i}\n".encode() for n in range(4) for i in range(4)}


def test_take_start_wait_with_our_fds(pool):
    r, w = os.pipe()
    try:
        with pool.take() as held:
            pid = held.start(["sh", "-c", "echo $0 $K; exec sleep 30", "arg0"], env={"K": "V"},
                             stdio=(None, w, None))
            os.close(w)
            w = -1
            assert os.read(r, 100) == b"arg0 V\n"
            held.kill(signal.SIGKILL)
            result = held.wait()
        assert pid == held.pid and result.returncode == 128 + signal.SIGKILL
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_a_held_container_keeps_none_of_our_fds(root):
    """Clone copies every fd (close-on-exec acts at execve): a held init
    that kept a pipe's write end would stop its reader from seeing EOF."""
    r, w = os.pipe()
    try:
        with diyc.Pool("busybox", network="none", size=2, root=root):
            os.close(w)
            w = -1
            assert select.select([r], [], [], 5)[0], "a held container keeps the pipe open"
            assert os.read(r, 1) == b""
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_close_removes_held_containers(root):
    p = diyc.Pool("busybox", network="none", size=3, root=root)
    wait_for(lambda: ready(p) == 3, what="a full pool")
    held = [h.pid for h in p._warm.ready]
    assert len(container_records(root)) == 3
    p.close()
    p.close()  # idempotent
    assert container_records(root) == []
    assert not set(held) & set(child_pids())
    with pytest.raises(DiycError, match="closed"):
        p.run(["true"])


def test_garbage_collected_pool_is_closed(root):
    p = diyc.Pool("busybox", network="none", size=2, root=root)
    wait_for(lambda: ready(p) == 2, what="a full pool")
    del p
    gc.collect()
    assert container_records(root) == []


def test_keyboard_interrupt_in_run_leaves_nothing(pool, root):
    def interrupt(*_):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            pool.run(["sleep", "30"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert pool.run(["true"]).returncode == 0
    wait_for(lambda: len(container_records(root)) == 2, what="the interrupted container removed")


def test_a_forked_child_cannot_use_the_pool(pool):
    wait_for(lambda: ready(pool) == 2, what="a full pool")
    pid = os.fork()
    if pid == 0:  # the child: refused, and its close() touches nothing of the parent's
        code = 1
        try:
            pool.run(["true"])
        except DiycError as e:
            code = 0 if "forked process" in str(e) else 2
        pool.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert ready(pool) == 2
    assert pool.run(["echo", "still mine"], capture_output=True).stdout == b"still mine\n"


def test_interpreter_exit_closes_an_open_pool(root):
    script = (f"import sys; sys.path.insert(0, {PKG_DIR!r}); import diyc, time\n"
              f"p = diyc.Pool('busybox', network='none', size=2, root={root!r})\n"
              "while len(p._warm.ready) < 2: time.sleep(0.01)\n"
              "print(p.run(['echo', 'ran'], capture_output=True).stdout.decode(), end='')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, "ran\n", "")
    assert container_records(root) == []


def test_cleanup_removes_what_a_killed_owner_held(root, run_cli):
    script = (f"import sys; sys.path.insert(0, {PKG_DIR!r}); import diyc, time\n"
              f"p = diyc.Pool('busybox', network='none', size=2, root={root!r})\n"
              "while len(p._warm.ready) < 2: time.sleep(0.01)\n"
              "print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    records = container_records(root)
    assert len(records) == 2
    # the held inits saw their channel close and exited
    wait_for(lambda: all(not os.path.exists(f"/proc/{r['state']['pid']}") or
                         open(f"/proc/{r['state']['pid']}/stat").read().split()[2] == "Z"
                         for r in records), what="the held inits gone")
    out = run_cli("cleanup", check=True)
    assert out.stdout.count("removed dead container") == 2
    assert container_records(root) == []


def test_a_held_container_that_died_is_skipped(pool):
    wait_for(lambda: ready(pool) == 2, what="a full pool")
    for held in list(pool._warm.ready):
        os.kill(held.pid, signal.SIGKILL)  # as the OOM killer, or a `diyc rm -f`, might
    r = pool.run(["echo", "from a live one"], capture_output=True)
    assert (r.returncode, r.stdout) == (0, b"from a live one\n")


def test_check_and_init(root):
    with diyc.Pool("busybox", network="none", size=1, root=root, init=True) as p:
        with pytest.raises(diyc.ContainerError) as e:
            p.run(["sh", "-c", "echo $$; exit 4"], capture_output=True, check=True)
        assert e.value.returncode == 4
        assert int(e.value.stdout) != 1  # /dev/init is PID 1, the command its child
        assert e.value.cmd == ["/dev/init", "--", "sh", "-c", "echo $$; exit 4"]


def test_security_settings_cross_the_hold(root):
    """The held init waits as diyc-held: rlimits, no_new_privs, the
    capability sets and the seccomp filter it hands over still apply."""
    with diyc.Pool("busybox", network="none", size=1, root=root, security_opt=["no-new-privileges"],
                   ulimits=["nofile=100"], cap_drop=["ALL"], rm_tmpfs_size="16m") as p:
        r = p.run(["sh", "-c", "ulimit -n; grep -E '^(NoNewPrivs|CapBnd|Seccomp):' /proc/self/status;"
                   " ls /proc/self/fd"], capture_output=True, text=True)
        lines = r.stdout.splitlines()
        assert lines[0] == "100"
        status = dict(line.split(":\t") for line in lines[1:4])
        assert status == {"CapBnd": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}
        assert lines[4:] == ["0", "1", "2", "3"]  # (3: ls's own directory)


def test_the_seccomp_filter_goes_on_while_held_only_if_it_lets_the_start_end(root, tmp_path):
    """The filter is installed while the init waits (off the run's path)
    when it allows every call the init makes after; a profile that denies
    one of those (setgroups here) is installed just before execve, as in
    a start without a pool, and the container still starts."""
    from diyc.seccomp import HELD_CALLS, allows_all
    caps = {"CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"}
    assert allows_all(None, caps, HELD_CALLS)
    denying = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["setgroups"], "action": "SCMP_ACT_ERRNO"}]}
    assert not allows_all(denying, caps, HELD_CALLS)
    conditional = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": list(HELD_CALLS), "action": "SCMP_ACT_ALLOW"},
        {"names": ["prctl"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
    assert allows_all(conditional, caps, HELD_CALLS)  # (an unconditional rule catches the rest)
    conditional["syscalls"][0]["names"].remove("prctl")
    assert not allows_all(conditional, caps, HELD_CALLS)  # prctl(2, ...) would get the default
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(denying))
    check = ["grep", "-E", "^(Seccomp|Seccomp_filters):", "/proc/self/status"]
    for opts in ({}, {"security_opt": [f"seccomp={profile}"]}):
        with diyc.Pool("busybox", network="none", size=1, root=root, **opts) as p:
            r = p.run(check, capture_output=True, text=True)
            assert r.stdout.split() == ["Seccomp:", "2", "Seccomp_filters:", "1"], opts


def _as_made(record):
    """A record without what is each container's own."""
    text = json.dumps(record).replace(record["id"], "ID").replace(record["id"][:12], "HOST")
    made = json.loads(text.replace(json.dumps(record["name"]), '"NAME"'))
    del made["created"], made["state"]
    return made


def test_a_pools_containers_are_copies_of_its_first_record(root):
    """After the first, a pool's containers are created from a copy of
    its record (Container.create_like): the same record create() writes,
    but for the id, name, hostname, cgroup and times; one whose record
    has /etc files of its own is created by create() each time."""
    from diyc.runtime import Container
    with diyc.Pool("busybox", network="none", size=1, root=root, memory="64m",
                   env={"A": "1"}) as p:
        w = p._warm
        made = Container.create(w.image, ["diyc-pool-held"], root=w.root, **w.options)
        copy = Container.create_like(w.root, w.template)
        try:
            assert copy.id != made.id and copy.name != made.name
            assert copy.record["spec"]["hostname"] == copy.id[:12]
            assert copy.control_group().paths["memory"].endswith(f"diyc-{copy.id}")
            assert _as_made(copy.record) == _as_made(made.record)
            assert Container.load(copy.name, root).id == copy.id  # its name is reserved
        finally:
            made.remove(force=True)
            copy.remove(force=True)
        assert p.run(["true"]).returncode == 0
    with diyc.Pool("busybox", network="none", size=1, root=root, extra_hosts=["db:10.0.0.5"]) as p:
        assert Container.create_like(p._warm.root, p._warm.template) is None
        for _ in range(2):
            r = p.run(["grep", "db", "/etc/hosts"], capture_output=True, text=True)
            assert r.stdout.split() == ["10.0.0.5", "db"]


def test_a_closed_fd_given_as_stdio_is_refused(pool):
    # a high number: the pool's threads open fds meanwhile, and take the
    # lowest free ones (a just-closed low one could be theirs by now)
    r, w = os.pipe()
    high = fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 900)
    for fd in (r, w, high):
        os.close(fd)
    w = high
    with pool.take() as held:
        with pytest.raises(OSError) as e:
            held.start(["true"], stdio=(None, w, None))
        assert e.value.errno == 9  # EBADF
        held.start(["true"])  # still held: the refused start took nothing
        assert held.wait().returncode == 0


def test_the_held_init_checks_the_description(pool):
    """The memfd is read by the init, which trusts nothing in it: a
    stdio mask beyond bits 0-2 (here the sign bit, which would read as
    a failure with no error) is refused as a protocol error."""
    from diyc.pool_process import Process

    class BadMask(Process):
        def description(self, stdio_mask, hostname):
            return super().description(stdio_mask | 1 << 31, hostname)

    with pool.take() as held:
        with pytest.raises(InitError, match="bad description") as e:
            held.release(BadMask(["true"], [], "/", 0, 0, [], (0, 0)), (-1, -1, -1))
        assert e.value.step == "process"
    assert pool.run(["true"]).returncode == 0  # the pool goes on


def test_a_held_container_killed_during_the_take_is_replaced(pool):
    """Killed after the take, before its release: gone with the process
    unread (ECONNRESET), so pool.run hands the same process and pipes to
    the next container."""
    wait_for(lambda: ready(pool) == 2, what="a full pool")
    take = pool._warm.take

    def take_and_kill(timeout=None):
        held = take(timeout)
        if not getattr(take_and_kill, "done", False):
            take_and_kill.done = True
            os.kill(held.pid, signal.SIGKILL)
            os.waitid(os.P_PID, held.pid, os.WEXITED | os.WNOWAIT)
        return held
    pool._warm.take = take_and_kill
    try:
        r = pool.run(["cat"], input=b"to the second one", capture_output=True)
    finally:
        pool._warm.take = take
    assert take_and_kill.done
    assert (r.returncode, r.stdout) == (0, b"to the second one")


def test_close_kills_what_a_caller_took_and_did_not_end(root):
    p = diyc.Pool("busybox", network="none", size=1, root=root)
    held = p.take()
    held.start(["sleep", "30"], stdio=(None, None, None))
    p.close()
    assert container_records(root) == []
    assert held.pid not in child_pids()
    with pytest.raises(diyc.Conflict, match="not running"):
        held.wait()
    held.close()  # (idempotent, after the pool's)


def test_prunes_and_rm_leave_a_pools_containers_alone(root, run_cli):
    """A pool's held containers are in use (its init alive, the pool's):
    `container prune -f` and `system prune -f` leave them, `rm` without -f
    refuses; `ps -a` does not list them (they are not the user's)."""
    with diyc.Pool("busybox", network="none", size=2, root=root) as p:
        wait_for(lambda: ready(p) == 2, what="a full pool")
        held = sorted(r["id"] for r in container_records(root))
        assert len(held) == 2
        run_cli("container", "prune", "-f", check=True)
        run_cli("system", "prune", "-f", check=True)
        assert sorted(r["id"] for r in container_records(root)) == held
        proc = run_cli("rm", held[0])
        assert proc.returncode == 1 and "is running" in proc.stderr
        assert run_cli("ps", "-aq", "--no-trunc", check=True).stdout == ""
        assert p.run(["echo", "still warm"], capture_output=True).stdout == b"still warm\n"
    assert container_records(root) == []
