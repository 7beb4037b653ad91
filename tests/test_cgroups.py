"""Resource limits on this machine's real cgroup v1 hierarchies: memory
(OOM kill reported), pids, cpu quota; where a container's cgroup lives, and
that it is gone once the container is."""

import os
import subprocess

import pytest

from conftest import CGROUP_ROOT, V1_CONTROLLERS, container_records, own_cgroups, running_record

MIB = 1 << 20
ALLOC_100MB = 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'


def read(path):
    with open(path) as f:
        return f.read().strip()


def host_cgroups_of(pid):
    """{controller: path} of a process, seen from the host."""
    paths = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                paths[c] = path
    return paths


@pytest.fixture
def container(diyc_root):
    """Containers made with the library; killed, waited for and removed at
    the end whatever the test did."""
    from diyc.runtime import Container
    made = []

    def create(command, **options):
        options.setdefault("network", "none")
        c = Container.create("busybox", command, root=str(diyc_root), **options)
        made.append(c)
        return c
    yield create
    for c in made:
        if c.pid:
            c.kill(9)
            c.wait()
        try:
            c.remove(force=True)
        except Exception:
            pass


# -- memory ----------------------------------------------------------------

def test_oom_kill_of_pid_1_is_reported(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-m", "16m", "busybox", "sh", "-c", ALLOC_100MB)
    assert "survived" not in proc.stdout
    assert proc.returncode == 137, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if "memory limit" in l]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("diyc: ")


def test_oom_kill_of_a_child_is_reported(run_cli):
    """PID 1 survives and exits 0; diyc still says the limit killed something."""
    inner = ALLOC_100MB.replace('"', '\\"').replace("$", "\\$")
    proc = run_cli("run", "--network", "none", "--rm", "-m", "16m", "busybox", "sh", "-c",
                   f'sh -c "{inner}"; echo child=$?')
    assert any("memory limit" in l for l in proc.stderr.splitlines()), proc.stderr
    # the child was the victim; rarely the kernel has to take PID 1 as well
    if proc.stdout:
        assert proc.stdout == "child=137\n"
        assert proc.returncode == 0
    else:
        assert proc.returncode == 137


def test_allocation_below_the_limit_works(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-m", "64m", "busybox", "sh", "-c",
                   'x=$(head -c 10000000 /dev/zero | tr "\\0" a); echo ${#x}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "10000000\n"
    assert "memory limit" not in proc.stderr


def test_no_oom_report_without_oom(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-m", "16m", "busybox", "true")
    assert proc.returncode == 0
    assert proc.stderr == ""


def test_library_reports_oom(diyc_root):
    import diyc
    r = diyc.run("busybox", ["sh", "-c", ALLOC_100MB], network="none", memory="16m", capture_output=True,
                 root=str(diyc_root))
    assert r.oom_killed is True
    assert r.exit_code == 137
    assert b"survived" not in r.stdout


# -- pids -------------------------------------------------------------------

def test_pids_limit_stops_a_fork_bomb(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "--pids-limit", "20", "busybox", "sh", "-c",
                   "for i in $(seq 1 50); do sleep 5 & done; wait; echo all-started",
                   timeout=30)
    assert "all-started" not in proc.stdout
    assert proc.returncode != 0
    assert "can't fork" in proc.stderr or "Resource temporarily unavailable" in proc.stderr, \
        proc.stderr


def test_pids_limit_allows_fewer(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "--pids-limit", "20", "busybox", "sh", "-c",
                   "for i in 1 2 3 4 5; do true & done; wait; echo ok")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"


# -- the cgroup files --------------------------------------------------------------

def test_limits_are_written_to_the_cgroup(container):
    c = container(["sleep", "30"], cpus=0.5, memory="64m", pids_limit=50)
    paths = c.record["cgroup"]["paths"]
    assert c.record["cgroup"]["version"] == 1
    assert set(paths) == {ctl for ctl in V1_CONTROLLERS if os.path.isdir(f"{CGROUP_ROOT}/{ctl}")}
    assert not any(os.path.exists(p) for p in paths.values())  # not before start
    pid = c.start()
    assert read(f"{paths['cpu']}/cpu.cfs_quota_us") == "50000"
    assert read(f"{paths['cpu']}/cpu.cfs_period_us") == "100000"
    assert int(read(f"{paths['memory']}/memory.limit_in_bytes")) == 64 * MIB
    if os.path.exists(f"{paths['memory']}/memory.memsw.limit_in_bytes"):
        # docker's default: as much swap as memory
        assert int(read(f"{paths['memory']}/memory.memsw.limit_in_bytes")) == 128 * MIB
    assert read(f"{paths['pids']}/pids.max") == "50"
    # and the container's process is in every one of them
    for ctl, path in paths.items():
        assert str(pid) in read(f"{path}/cgroup.procs").split(), ctl
        assert host_cgroups_of(pid)[ctl] == path[len(f"{CGROUP_ROOT}/{ctl}"):]
    c.kill(9)
    result = c.wait()
    assert result.exit_code == 137
    assert not any(os.path.exists(p) for p in paths.values())


def test_memory_swap_option(container):
    c = container(["sleep", "30"], memory="32m", memory_swap="48m")
    c.start()
    memsw = f"{c.record['cgroup']['paths']['memory']}/memory.memsw.limit_in_bytes"
    if not os.path.exists(memsw):
        pytest.skip("no swap accounting on this kernel")
    assert int(read(memsw)) == 48 * MIB
    assert int(read(memsw.replace("memsw.", ""))) == 32 * MIB


def test_no_limits_means_unlimited(container):
    c = container(["sleep", "30"])
    c.start()
    paths = c.record["cgroup"]["paths"]
    assert read(f"{paths['cpu']}/cpu.cfs_quota_us") == "-1"
    assert read(f"{paths['pids']}/pids.max") == "max"
    assert int(read(f"{paths['memory']}/memory.limit_in_bytes")) > 1 << 50


def test_cgroup_nests_under_the_callers_cgroup(run_cli, diyc_root):
    run_cli("run", "--network", "none", "--name", "nest", "busybox", "true", check=True)
    try:
        (rec,) = container_records(diyc_root)
        own = own_cgroups()
        name = f"diyc-{rec['id']}"
        for ctl, path in rec["cgroup"]["paths"].items():
            assert path == f"{CGROUP_ROOT}/{ctl}{own[ctl].rstrip('/')}/{name}", path
        assert own["memory"] in rec["cgroup"]["paths"]["memory"]
        # removed once the container ended, while its record stays
        assert not any(os.path.exists(p) for p in rec["cgroup"]["paths"].values())
    finally:
        run_cli("rm", "nest", check=True)


def test_cgroup_nests_while_running(container):
    c = container(["sleep", "30"])
    pid = c.start()
    own = own_cgroups()
    for ctl in c.record["cgroup"]["paths"]:
        assert host_cgroups_of(pid)[ctl] == f"{own[ctl].rstrip('/')}/diyc-{c.id}"


@pytest.fixture
def parent_cgroups():
    """Parent cgroups, absolute (from each hierarchy's root) and relative
    (under this process's cgroup), created for the test and removed after.
    Request it before `container`, so the containers go first."""
    made = []
    own = own_cgroups()
    absolute = f"/diyctest-parent-{os.getpid()}"
    relative = f"diyctest-sub-{os.getpid()}"
    for ctl in V1_CONTROLLERS:
        if os.path.isdir(f"{CGROUP_ROOT}/{ctl}"):
            for p in (f"{CGROUP_ROOT}/{ctl}{absolute}",
                      f"{CGROUP_ROOT}/{ctl}{own[ctl].rstrip('/')}/{relative}"):
                os.mkdir(p)
                made.append(p)
    yield absolute, relative, own
    errors = []
    for p in reversed(made):
        try:
            os.rmdir(p)
        except OSError as e:
            errors.append(f"{p}: {e}")
    assert not errors, errors


def test_cgroup_parent_absolute(parent_cgroups, container):
    absolute, _, _ = parent_cgroups
    c = container(["sleep", "30"], cgroup_parent=absolute, pids_limit=10)
    pid = c.start()
    for ctl, path in c.record["cgroup"]["paths"].items():
        assert path == f"{CGROUP_ROOT}/{ctl}{absolute}/diyc-{c.id}"
        assert host_cgroups_of(pid)[ctl] == f"{absolute}/diyc-{c.id}"
    assert read(f"{c.record['cgroup']['paths']['pids']}/pids.max") == "10"


def test_cgroup_parent_relative(parent_cgroups, container):
    _, relative, own = parent_cgroups
    c = container(["sleep", "30"], cgroup_parent=relative)
    pid = c.start()
    for ctl in c.record["cgroup"]["paths"]:
        assert host_cgroups_of(pid)[ctl] == f"{own[ctl].rstrip('/')}/{relative}/diyc-{c.id}"


def test_cgroup_parent_cli(parent_cgroups, run_cli, diyc_root):
    absolute, _, _ = parent_cgroups
    run_cli("run", "--network", "none", "--name", "cgp", "--cgroup-parent", absolute, "busybox", "true", check=True)
    try:
        (rec,) = container_records(diyc_root)
        assert rec["cgroup"]["paths"]["memory"] == \
            f"{CGROUP_ROOT}/memory{absolute}/diyc-{rec['id']}"
    finally:
        run_cli("rm", "cgp", check=True)
    # the parent itself is left alone
    assert os.path.isdir(f"{CGROUP_ROOT}/memory{absolute}")


def test_cgroups_removed_after_rm_container(run_cli, diyc_root):
    """A --rm container: its cgroups are gone when diyc returns (the autouse
    fixture checks this for every test; here we look for its own paths)."""
    p = run_cli.popen("run", "--network", "none", "--rm", "busybox", "sh", "-c", "echo ready; read x; exit 4",
                      stdin=subprocess.PIPE)
    try:
        assert p.stdout.readline() == "ready\n"
        rec = running_record(diyc_root)
        paths = list(rec["cgroup"]["paths"].values())
        assert paths and all(os.path.isdir(x) for x in paths)
    finally:
        p.communicate(timeout=20)  # EOF on stdin: the container exits
    assert p.returncode == 4
    assert not any(os.path.exists(x) for x in paths)


def test_open_cgroup_picks_v1_on_this_hybrid_host():
    """The real /sys/fs/cgroup: v1 hierarchies plus a controller-less
    cgroup2 at unified/ - the driver must be v1."""
    from diyc import cgroups
    assert not os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers")
    cg = cgroups.open_cgroup("diyc-probe")
    assert cg.version == 1
    assert "memory" in cg.paths and "pids" in cg.paths
    assert not any(os.path.exists(p) for p in cg.paths.values())
