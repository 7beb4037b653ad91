"""The container operations a docker user reaches for (issue #12): top,
port, rename, pause/unpause and update, on real containers through the
`diyc` command; update and pause on cgroup v2 on the fake tree of
test_cgroup_v2_fake.py (this machine's controllers are v1)."""

import json
import os

import pytest

from conftest import assert_one_line_error, wait_for
from test_cgroup_v2_fake import make_fake_v2

# PID 1 of these containers ends with 7 on SIGTERM: a stop that exits 7 was
# handled by the program, not ended by the SIGKILL after the timeout.
TRAPPING = ["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.05; done"]


def inspect(run_cli, name):
    return json.loads(run_cli("inspect", name, check=True).stdout)[0]


def state_of(info):
    """State (docker's shape) or the record's state."""
    return info.get("State") or info["state"]


def exit_code(info):
    state = state_of(info)
    return state["ExitCode"] if "ExitCode" in state else state["exit_code"]


def record(run_cli, diyc_root, name):
    """The container's own record (what its cgroup is, what it was given)."""
    cid = os.readlink(f"{diyc_root}/names/{name}")
    with open(f"{diyc_root}/containers/{cid}/container.json") as f:
        return json.load(f)


def read(path):
    with open(path) as f:
        return f.read().strip()


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def sleeper(run_cli):
    """A detached container that runs until removed: its name."""
    name = f"ops-{os.urandom(3).hex()}"
    run_cli("run", "-d", "--network", "none", "--name", name, "busybox", *TRAPPING, check=True)
    yield name
    run_cli("rm", "-f", name)


# -- top ---------------------------------------------------------------------------

def test_top_lists_the_containers_processes_as_ps_ef(run_cli, diyc_root, sleeper):
    run_cli("exec", "-d", sleeper, "sleep", "301", check=True)
    pid1 = record(run_cli, diyc_root, sleeper)["state"]["pid"]

    def rows():
        lines = run_cli("top", sleeper, check=True).stdout.splitlines()
        return lines if any("sleep 301" in line for line in lines) else None
    lines = wait_for(rows, what="the exec'd sleep in top")
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    first = lines[1].split()
    assert first[0] == "root" and first[1] == str(pid1) and first[5] == "?"
    assert lines[1].endswith(" ".join(TRAPPING))
    # with ps options: the host's ps, its rows for the container's pids only
    custom = run_cli("top", sleeper, "-o", "pid,comm", check=True).stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    listed = {line.split()[0] for line in custom[1:]}
    assert str(pid1) in listed
    cid = record(run_cli, diyc_root, sleeper)["id"]
    for pid in listed:  # not one host process (the loop's short sleeps may be gone already)
        try:
            assert f"diyc-{cid}" in read(f"/proc/{pid}/cgroup")
        except FileNotFoundError:
            pass


def test_top_of_a_stopped_container_and_bad_ps_options(run_cli, sleeper):
    assert_one_line_error(run_cli("top", sleeper, "-o", "comm"), contains="no PID column")
    run_cli("stop", sleeper, check=True)
    assert_one_line_error(run_cli("top", sleeper), contains="is not running")
    assert_one_line_error(run_cli("top", "no-such-ctr"), code=1, contains="no such container")


# -- port ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def net(diyc_root):
    """The diyc command in a network namespace of this module's own (see
    netns_util): the bridge, its rules and ip_forward are made and undone there."""
    from netns_util import NsCli, netns
    with netns() as ns:
        cli = NsCli(ns, diyc_root)
        yield cli
        cli("network", "prune", "-f", check=True)
        cli("network", "rm", "bridge", check=True)


def test_port_lists_the_published_ports(net):
    name = f"ops-p-{os.urandom(3).hex()}"
    net("run", "-d", "--network", "bridge", "--name", name, "-p", "18080:80", "-p",
        "127.0.0.1:15353:53/udp", "busybox", "sleep", "60", check=True)
    try:
        assert net("port", name, check=True).stdout == \
            "53/udp -> 127.0.0.1:15353\n80/tcp -> 0.0.0.0:18080\n"
        assert net("port", name, "80", check=True).stdout == "0.0.0.0:18080\n"
        assert net("port", name, "53/udp", check=True).stdout == "127.0.0.1:15353\n"
        assert_one_line_error(net("port", name, "53"), contains="no public port '53/tcp'")
        net("stop", "-t", "0", name, check=True)
        assert net("port", name, check=True).stdout == ""  # not running: nothing bound
    finally:
        net("rm", "-f", name, check=True)


def test_rename_reaches_the_peers_on_its_network(net):
    network, a, b = f"t{os.urandom(3).hex()}", f"ops-a-{os.urandom(2).hex()}", f"ops-b-{os.urandom(2).hex()}"
    net("network", "create", network, "--subnet", "10.251.7.0/24", check=True)
    try:
        for n in (a, b):
            net("run", "-d", "--network", network, "--name", n, "busybox", "sleep", "60", check=True)
        net("rename", a, a + "-new", check=True)
        for viewer in (a + "-new", b):  # its own hosts file and its peer's
            hosts = net("exec", viewer, "cat", "/etc/hosts", check=True).stdout
            assert f" {a}-new\n" in hosts and f" {a}\n" not in hosts
        assert net("exec", b, "ping", "-c", "1", "-W", "5", a + "-new", check=True).returncode == 0
    finally:
        net("rm", "-f", a, a + "-new", b)
        net("network", "rm", network, check=True)


# -- rename ------------------------------------------------------------------------

def test_rename_a_running_container(run_cli, diyc_root, sleeper):
    new = sleeper + "-new"
    assert run_cli("rename", sleeper, new, check=True).stdout == ""
    assert not os.path.lexists(f"{diyc_root}/names/{sleeper}")
    assert run_cli("exec", new, "echo", "still here", check=True).stdout == "still here\n"
    ps = run_cli("ps", check=True).stdout
    assert new in ps and f"{sleeper} " not in ps.replace(new, "")
    assert_one_line_error(run_cli("exec", sleeper, "true"), code=1, contains="no such container")
    # it keeps working: its supervisor records its end under the new name
    assert run_cli("stop", new, check=True).stdout == f"{new}\n"
    assert exit_code(inspect(run_cli, new)) == 7
    run_cli("rename", new, sleeper, check=True)  # back, for the fixture to remove


def test_rename_refuses_bad_and_taken_names(run_cli, diyc_root, sleeper):
    other = sleeper + "-other"
    run_cli("run", "-d", "--network", "none", "--name", other, "busybox", "sleep", "60", check=True)
    try:
        assert_one_line_error(run_cli("rename", sleeper, other), contains="already in use")
        assert_one_line_error(run_cli("rename", sleeper, "bad/name"), contains="invalid container name")
        assert_one_line_error(run_cli("rename", sleeper, sleeper), contains="already named")
        assert_one_line_error(run_cli("rename", sleeper), contains="2 arguments")
        # nothing changed: both names still lead to their containers
        assert os.readlink(f"{diyc_root}/names/{sleeper}") != os.readlink(f"{diyc_root}/names/{other}")
        assert record(run_cli, diyc_root, sleeper)["name"] == sleeper
    finally:
        run_cli("rm", "-f", other, check=True)


# -- pause / unpause ---------------------------------------------------------------

def test_pause_freezes_and_unpause_thaws(run_cli, diyc_root, sleeper):
    run_cli("exec", "-d", sleeper, "sleep", "301", check=True)
    rec = record(run_cli, diyc_root, sleeper)
    assert "freezer" not in rec["cgroup"]["paths"]  # none on the start path: the first pause makes it
    assert run_cli("pause", sleeper, check=True).stdout == f"{sleeper}\n"
    rec = record(run_cli, diyc_root, sleeper)
    freezer = rec["cgroup"]["paths"]["freezer"]
    assert read(f"{freezer}/freezer.state") == "FROZEN"
    # every process of the container is in it (the exec'd sleep too), frozen
    assert set(read(f"{rec['cgroup']['paths']['memory']}/cgroup.procs").split()) == \
        set(read(f"{freezer}/cgroup.procs").split())
    assert proc_state(rec["state"]["pid"]) == "D"  # in the refrigerator
    line = [ln for ln in run_cli("ps", check=True).stdout.splitlines() if sleeper in ln][0]
    assert "(Paused)" in line
    listed = [json.loads(line) for line in  # docker's: one object a line
              run_cli("ps", "--format", "json", check=True).stdout.splitlines()]
    assert [c["State"] for c in listed if c["Names"] == sleeper] == ["paused"]
    state = inspect(run_cli, sleeper)["State"]
    assert (state["Status"], state["Paused"], state["Running"]) == ("paused", True, True)
    assert run_cli("inspect", "-f", "{{.State.Status}}", sleeper, check=True).stdout == "paused\n"
    assert_one_line_error(run_cli("exec", sleeper, "true"), contains="is paused")
    assert_one_line_error(run_cli("pause", sleeper), code=1, contains="already paused")
    assert run_cli("unpause", sleeper, check=True).stdout == f"{sleeper}\n"
    assert read(f"{freezer}/freezer.state") == "THAWED"
    assert run_cli("exec", sleeper, "echo", "thawed", check=True).stdout == "thawed\n"
    assert_one_line_error(run_cli("unpause", sleeper), code=1, contains="not paused")
    # an exec from now on joins the freezer cgroup too; the container's end removes it
    run_cli("exec", "-d", sleeper, "sleep", "302", check=True)
    def sleep_302_frozen_in():
        for pid in read(f"{freezer}/cgroup.procs").split():
            try:
                if read(f"/proc/{pid}/cmdline").startswith("sleep\x00302"):
                    return True
            except FileNotFoundError:
                pass  # one of the loop's short sleeps, ended
        return False
    wait_for(sleep_302_frozen_in, what="the exec'd sleep in the freezer cgroup")
    run_cli("pause", sleeper, check=True)  # the second pause: the same cgroup
    assert record(run_cli, diyc_root, sleeper)["cgroup"]["paths"]["freezer"] == freezer
    run_cli("rm", "-f", sleeper, check=True)
    assert not os.path.exists(freezer)


def test_stop_of_a_paused_container_thaws_then_signals(run_cli, sleeper):
    run_cli("pause", sleeper, check=True)
    run_cli("stop", "-t", "60", sleeper, check=True)
    # 7: its TERM trap ran (thawed, then signalled), no SIGKILL was needed
    assert exit_code(inspect(run_cli, sleeper)) == 7
    assert_one_line_error(run_cli("pause", sleeper), code=1, contains="is not running")


def test_kill_of_a_paused_container(run_cli, sleeper):
    run_cli("pause", sleeper, check=True)
    run_cli("kill", sleeper, check=True)
    assert run_cli("wait", sleeper, check=True).stdout == "137\n"


# -- update ------------------------------------------------------------------------

def test_update_a_running_containers_limits(run_cli, diyc_root, sleeper):
    proc = run_cli("update", "--memory", "64m", "--memory-swap", "96m", "--cpus", "0.5",
                   "--cpu-shares", "512", "--pids-limit", "32", sleeper, check=True)
    assert proc.stdout == f"{sleeper}\n"
    rec = record(run_cli, diyc_root, sleeper)
    paths = rec["cgroup"]["paths"]
    assert read(f"{paths['memory']}/memory.limit_in_bytes") == str(64 << 20)
    if os.path.exists(f"{paths['memory']}/memory.memsw.limit_in_bytes"):
        assert read(f"{paths['memory']}/memory.memsw.limit_in_bytes") == str(96 << 20)
    assert read(f"{paths['cpu']}/cpu.cfs_quota_us") == "50000"
    assert read(f"{paths['cpu']}/cpu.shares") == "512"
    assert read(f"{paths['pids']}/pids.max") == "32"
    res = rec["spec"]["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 96 << 20}
    assert res["cpu"]["quota"] == 50000 and res["cpu"]["shares"] == 512
    assert res["pids"] == {"limit": 32}
    info = inspect(run_cli, sleeper)
    if "HostConfig" in info:  # docker's shape
        assert info["HostConfig"]["Memory"] == 64 << 20 and info["HostConfig"]["PidsLimit"] == 32
    # the new limit is enforced: a 33rd process cannot be forked
    fork = run_cli("exec", sleeper, "sh", "-c", "for i in $(seq 40); do sleep 30 >/dev/null 2>&1 & done")
    assert "can't fork" in fork.stderr
    # growing memory past the old memory+swap: swap first (the v1 order)
    run_cli("update", "-m", "256m", "--memory-swap", "512m", sleeper, check=True)
    assert read(f"{paths['memory']}/memory.limit_in_bytes") == str(256 << 20)
    run_cli("update", "--pids-limit", "-1", sleeper, check=True)
    assert read(f"{paths['pids']}/pids.max") == "max"


@pytest.mark.parametrize("args, message", [
    (["--memory", "1k"], "the minimum is 6m"),
    (["--cpus", "abc"], "--cpus value"),
    (["--pids-limit", "0"], "--pids-limit"),
    (["--cpu-shares", "1"], "--cpu-shares"),
    (["--restart", "sometimes"], "invalid --restart"),
    (["--memory-swap", "lots"], "memory-swap"),
    ([], "needs at least one"),
])
def test_update_refuses_bad_values_and_changes_nothing(run_cli, diyc_root, sleeper, args, message):
    before = record(run_cli, diyc_root, sleeper)
    assert_one_line_error(run_cli("update", *args, sleeper), contains=message)
    after = record(run_cli, diyc_root, sleeper)
    assert after["spec"]["linux"]["resources"] == before["spec"]["linux"]["resources"]
    assert after["restart"] == before["restart"]


def test_update_past_the_swap_limit_set_needs_memory_swap(run_cli, diyc_root, sleeper):
    run_cli("update", "-m", "64m", sleeper, check=True)  # memory+swap: 128m, docker's default
    proc = run_cli("update", "-m", "1g", sleeper)
    assert proc.returncode == 1 and proc.stderr.startswith(f"diyc: update {sleeper}: ")
    assert "memory+swap" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert record(run_cli, diyc_root, sleeper)["spec"]["linux"]["resources"]["memory"] == \
        {"limit": 64 << 20, "swap": 128 << 20}


def test_updated_restart_policy_is_honoured_by_the_supervisor(run_cli, diyc_root):
    name = f"ops-r-{os.urandom(3).hex()}"
    run_cli("run", "-d", "--network", "none", "--name", name, "busybox", "sh", "-c",
            "while [ ! -f /tmp/go ]; do sleep 0.05; done; exit 3", check=True)
    try:
        assert record(run_cli, diyc_root, name)["restart"]["name"] == "no"
        run_cli("update", "--restart", "on-failure:2", name, check=True)
        assert record(run_cli, diyc_root, name)["restart"] == {"name": "on-failure", "max_retries": 2}
        run_cli("exec", name, "touch", "/tmp/go", check=True)  # kept across restarts: exits at once

        def ended_after_retries():
            rec = record(run_cli, diyc_root, name)
            st = rec["state"]
            return st if st["status"] == "exited" and st.get("restart_count") == 2 else None
        st = wait_for(ended_after_retries, timeout=30, what="two restarts, then the end")
        assert st["exit_code"] == 3
    finally:
        run_cli("rm", "-f", name, check=True)


def test_update_of_a_rm_container_refuses_a_restart_policy(run_cli):
    name = f"ops-rm-{os.urandom(3).hex()}"
    run_cli("run", "-d", "--rm", "--network", "none", "--name", name, "busybox", "sleep", "60",
            check=True)
    try:
        proc = run_cli("update", "--restart", "always", name)
        assert proc.returncode == 1 and "conflicting options: --restart and --rm" in proc.stderr
    finally:
        run_cli("rm", "-f", name, check=True)


# -- cgroup v2, on the fake tree ---------------------------------------------------

def test_v2_update_writes_the_unified_files(tmp_path):
    from diyc.cgroups import CgroupV2
    _, parent, _ = make_fake_v2(tmp_path)
    cg = CgroupV2(f"{parent}/diyc-upd")
    os.mkdir(cg.path)
    cg.update_limits({"memory": {"limit": 64 << 20, "swap": 96 << 20},
                      "cpu": {"quota": 50000, "period": 100000, "shares": 1024},
                      "pids": {"limit": -1}})
    assert read(f"{cg.path}/memory.max") == str(64 << 20)
    assert read(f"{cg.path}/memory.swap.max") == str(32 << 20)  # swap alone on v2
    assert read(f"{cg.path}/cpu.max") == "50000 100000"
    assert read(f"{cg.path}/cpu.weight") == "39"  # runc's conversion of 1024 shares
    assert read(f"{cg.path}/pids.max") == "max"


def test_v2_pause_writes_cgroup_freeze_and_waits_for_the_kernel(tmp_path):
    from diyc.cgroups import CgroupV2
    _, parent, _ = make_fake_v2(tmp_path)
    cg = CgroupV2(f"{parent}/diyc-frz")
    os.mkdir(cg.path)
    events = f"{cg.path}/cgroup.events"
    with open(events, "w") as f:
        f.write("populated 1\nfrozen 1\n")  # what the kernel says once every task stopped
    assert cg.frozen()
    cg.freeze()
    assert read(f"{cg.path}/cgroup.freeze") == "1"
    with open(events, "w") as f:
        f.write("populated 1\nfrozen 0\n")
    cg.thaw()
    assert read(f"{cg.path}/cgroup.freeze") == "0" and not cg.frozen()


# -- logs --since / --until ------------------------------------------------------------

def test_logs_since_and_until(run_cli):
    name = f"ops-l-{os.urandom(3).hex()}"
    run_cli("run", "-d", "--network", "none", "--name", name, "busybox", "sh", "-c",
            "echo one; while [ ! -f /tmp/go ]; do sleep 0.05; done; echo two; sleep 300", check=True)
    try:
        wait_for(lambda: run_cli("logs", name, check=True).stdout == "one\n", what="the first line")
        import time
        between = time.time()  # after "one" was logged, before "two" is
        run_cli("exec", name, "touch", "/tmp/go", check=True)
        wait_for(lambda: run_cli("logs", name, check=True).stdout == "one\ntwo\n", what="the second")
        rfc3339 = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(between)) + \
            f".{int(between % 1 * 1e9):09d}Z"
        assert run_cli("logs", "--since", f"{between:.9f}", name, check=True).stdout == "two\n"
        assert run_cli("logs", "--since", rfc3339, name, check=True).stdout == "two\n"
        assert run_cli("logs", "--until", f"{between:.9f}", name, check=True).stdout == "one\n"
        assert run_cli("logs", "--since", "1h", name, check=True).stdout == "one\ntwo\n"
        assert run_cli("logs", "--until", "1h", name, check=True).stdout == ""
        # a follow with an --until in the past ends at once, with what came before it
        assert run_cli("logs", "-f", "--until", f"{between:.9f}", name, check=True).stdout == "one\n"
        assert_one_line_error(run_cli("logs", "--since", "last tuesday", name), contains="--since")
    finally:
        run_cli("rm", "-f", name, check=True)


def test_library_operations_as_docker_py(diyc_root):
    import diyc
    with diyc.Container.create("busybox", ["sleep", "60"], network="none",
                               root=str(diyc_root)) as c:
        c.start(detach=True)
        c.pause()
        assert c.paused and c.state_name == "paused"
        with pytest.raises(diyc.Conflict, match="paused"):
            c.exec_run(["true"])
        c.unpause()
        assert not c.paused
        c.update(mem_limit="64m", memswap_limit="128m", restart_policy={"Name": "always"})
        assert c.record["spec"]["linux"]["resources"]["memory"] == {"limit": 64 << 20,
                                                                    "swap": 128 << 20}
        assert c.record["restart"] == {"name": "always", "max_retries": 0}
        new = f"lib-{os.urandom(3).hex()}"
        c.rename(new)
        assert diyc.Container.load(new, str(diyc_root)).id == c.id
        assert c.top()["Processes"][0][7] == "sleep 60"
        with pytest.raises(diyc.InvalidArgument):
            c.update(cpus="lots")


def test_the_commands_through_the_server(cli_path, run_cli, sleeper):
    """The same output, the same exit codes, whether a diyc server runs them or not."""
    import time
    since = time.time()
    assert run_cli("pause", sleeper, check=True).stdout == f"{sleeper}\n"
    assert_one_line_error(run_cli("exec", sleeper, "true"), contains="is paused")
    assert run_cli("unpause", sleeper, check=True).stdout == f"{sleeper}\n"
    assert run_cli("update", "--pids-limit", "50", sleeper, check=True).stdout == f"{sleeper}\n"
    assert run_cli("top", sleeper, check=True).stdout.split()[:8] == \
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    out = run_cli("events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}",
                  "--filter", f"container={sleeper}", check=True).stdout
    assert [line.split()[2] for line in out.splitlines()] == ["pause", "unpause", "update"]


def test_a_signal_that_ends_nothing_leaves_a_paused_container_paused(run_cli, diyc_root, sleeper):
    run_cli("pause", sleeper, check=True)
    run_cli("kill", "-s", "WINCH", sleeper, check=True)
    freezer = record(run_cli, diyc_root, sleeper)["cgroup"]["paths"]["freezer"]
    assert read(f"{freezer}/freezer.state") == "FROZEN"
    # HUP ends a process by default: thawed, then signalled (PID 1 without a handler ignores it)
    run_cli("kill", "-s", "HUP", sleeper, check=True)
    assert read(f"{freezer}/freezer.state") == "THAWED"
