"""The cgroup v2 driver, on a FAKE cgroupfs tree.

This machine has no cgroup v2 controllers (its cgroup2 mount at
/sys/fs/cgroup/unified has none; memory, cpu and pids are v1), so a real v2
container cannot be run here.  These tests exercise the v2 driver's file
logic - which driver is picked, which files it reads and writes, with what
values - on a fake tree: a plain directory in tmp_path, NOT the kernel.
A plain directory does not behave like cgroupfs (writing "+memory" to
cgroup.subtree_control replaces the file instead of enabling anything, no
interface files appear in a new directory), so nothing here says the kernel
accepts what the driver writes; only that the driver writes what it should.
"""

import pytest

from diyc import cgroups
from diyc.cgroups import CgroupError, CgroupV1, CgroupV2, open_cgroup

MIB = 1 << 20


def make_fake_v2(tmp_path, own="/user.slice/app", controllers="cpuset cpu io memory pids",
                 parent_controllers=None, parent_subtree=""):
    """A fake unified hierarchy: root/cgroup.controllers marks it v2; the
    caller's cgroup `own`; a fake /proc/self/cgroup naming it."""
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    parent = root / own.strip("/")
    parent.mkdir(parents=True)
    (parent / "cgroup.controllers").write_text(
        (controllers if parent_controllers is None else parent_controllers) + "\n")
    (parent / "cgroup.subtree_control").write_text(parent_subtree)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{own}\n")
    return root, parent, proc


def test_open_cgroup_picks_v2_when_the_root_has_cgroup_controllers(tmp_path):
    root, parent, proc = make_fake_v2(tmp_path)
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    assert isinstance(cg, CgroupV2)
    assert cg.version == 2
    assert cg.path == f"{parent}/diyc-abc"
    assert not (parent / "diyc-abc").exists()  # opened, not created


def test_cgroup_parent_absolute_and_relative_v2(tmp_path):
    root, parent, proc = make_fake_v2(tmp_path)
    cg = open_cgroup("diyc-abc", "/custom/parent", root=str(root), proc_file=str(proc))
    assert cg.path == f"{root}/custom/parent/diyc-abc"
    cg = open_cgroup("diyc-abc", "sub", root=str(root), proc_file=str(proc))
    assert cg.path == f"{parent}/sub/diyc-abc"


def test_v1_when_the_root_has_no_cgroup_controllers(tmp_path):
    """Hybrid/v1 layout: per-controller directories, a controller-less
    cgroup2 at unified/ does not count."""
    root = tmp_path / "cgroup"
    for d in ("memory", "cpu", "pids", "unified"):
        (root / d).mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text("")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("4:memory:/user/me\n2:cpu,cpuacct:/\n1:pids:/p\n0::/\n")
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    assert isinstance(cg, CgroupV1)
    assert cg.version == 1
    assert cg.paths == {"memory": f"{root}/memory/user/me/diyc-abc",
                        "cpu": f"{root}/cpu/diyc-abc",
                        "pids": f"{root}/pids/p/diyc-abc"}


def test_no_hierarchy_at_all_is_a_clear_error(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/\n")
    with pytest.raises(CgroupError, match="no cgroup hierarchy"):
        open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))


def test_create_enables_controllers_in_the_parent(tmp_path):
    root, parent, proc = make_fake_v2(tmp_path, parent_subtree="cpu\n")
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    resources = {"memory": {"limit": 64 * MIB, "swap": 128 * MIB},
                 "cpu": {"quota": 50000, "period": 100000},
                 "pids": {"limit": 20}}
    cg.create(resources)
    assert (parent / "diyc-abc").is_dir()
    # cpu was already enabled: only the missing ones are asked for
    assert sorted((parent / "cgroup.subtree_control").read_text().split()) == ["+memory", "+pids"]
    assert cg.join_files() == [f"{parent}/diyc-abc/cgroup.procs"]


def test_create_without_limits_touches_no_controller(tmp_path):
    root, parent, proc = make_fake_v2(tmp_path, parent_controllers="", parent_subtree="")
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    cg.create({})
    assert (parent / "diyc-abc").is_dir()
    assert (parent / "cgroup.subtree_control").read_text() == ""


def test_create_with_everything_enabled_writes_nothing(tmp_path):
    root, parent, proc = make_fake_v2(tmp_path, parent_subtree="cpu memory pids\n")
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    cg.create({"memory": {"limit": 64 * MIB}, "cpu": {"quota": 1000}, "pids": {"limit": 5}})
    assert (parent / "cgroup.subtree_control").read_text() == "cpu memory pids\n"


def test_missing_controller_is_a_clear_error(tmp_path):
    root, parent, proc = make_fake_v2(tmp_path, parent_controllers="cpu pids")
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    with pytest.raises(CgroupError) as info:
        cg.create({"memory": {"limit": 64 * MIB}})
    msg = str(info.value)
    assert "memory" in msg
    assert str(parent) in msg
    assert "--cgroup-parent" in msg
    assert "\n" not in msg
    assert not (parent / "diyc-abc").exists()  # nothing created
    assert (parent / "cgroup.subtree_control").read_text() == ""


def test_existing_cgroup_is_an_error(tmp_path):
    root, parent, proc = make_fake_v2(tmp_path)
    (parent / "diyc-abc").mkdir()
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    with pytest.raises(CgroupError, match="already exists"):
        cg.create({})


def limits_of(tmp_path, resources):
    root, parent, proc = make_fake_v2(tmp_path, controllers="cpuset cpu io memory pids hugetlb")
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    cg.create(resources)
    cg.set_limits(resources)
    d = parent / "diyc-abc"
    return {f.name: f.read_text() for f in d.iterdir()}


def test_set_limits_writes_the_v2_files(tmp_path):
    files = limits_of(tmp_path, {"memory": {"limit": 64 * MIB, "swap": 128 * MIB},
                                 "cpu": {"quota": 50000, "period": 100000},
                                 "pids": {"limit": 20}})
    assert files == {"memory.max": str(64 * MIB),
                     "memory.swap.max": str(64 * MIB),  # memory+swap 128m - memory 64m
                     "cpu.max": "50000 100000",
                     "pids.max": "20"}


def test_set_limits_unlimited_values(tmp_path):
    files = limits_of(tmp_path, {"memory": {"limit": 64 * MIB, "swap": -1},
                                 "pids": {"limit": -1}})
    assert files == {"memory.max": str(64 * MIB), "memory.swap.max": "max", "pids.max": "max"}


def test_set_limits_swap_equal_to_memory_means_no_swap(tmp_path):
    files = limits_of(tmp_path, {"memory": {"limit": 32 * MIB, "swap": 32 * MIB}})
    assert files["memory.swap.max"] == "0"


def test_set_limits_cpu_default_period_and_shares(tmp_path):
    files = limits_of(tmp_path, {"cpu": {"quota": 150000, "shares": 1024}})
    assert files["cpu.max"] == "150000 100000"
    assert files["cpu.weight"] == str(1 + ((1024 - 2) * 9999) // 262142)  # 39, as runc


def test_nothing_written_without_limits(tmp_path):
    assert limits_of(tmp_path, {}) == {}


def test_oom_killed_reads_memory_events(tmp_path):
    d = tmp_path / "cg"
    d.mkdir()
    cg = CgroupV2(str(d))
    assert cg.oom_killed() is False  # no file: not an OOM
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert cg.oom_killed() is False
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert cg.oom_killed() is True


def test_the_real_driver_is_chosen_by_cgroup_root():
    """Not fake: this host's /sys/fs/cgroup is not a cgroup2 root."""
    assert cgroups.is_v2() is False


def test_set_limits_the_rest_of_the_oci_resources(tmp_path):
    """cpuset, memory.low, burst, io weights and throttles, hugetlb and
    unified keys: the files runc and crun write on v2."""
    files = limits_of(tmp_path, {
        "cpu": {"cpus": "0-1", "mems": "0", "burst": 1000, "idle": 1},
        "memory": {"reservation": 32 * MIB, "useHierarchy": True},
        "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}],
        "unified": {"memory.high": "50000000"}})
    assert files == {"cpuset.cpus": "0-1", "cpuset.mems": "0", "cpu.max.burst": "1000",
                     "cpu.idle": "1", "memory.low": str(32 * MIB), "io.weight": "500",
                     "io.max": "8:0 wiops=300", "hugetlb.2MB.max": str(4 * MIB),
                     "memory.high": "50000000"}


def test_create_enables_the_controllers_of_the_other_resources(tmp_path):
    root, parent, proc = make_fake_v2(tmp_path, controllers="cpuset cpu io memory pids hugetlb")
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    cg.create({"cpu": {"cpus": "0"}, "blockIO": {"weight": 10},
               "hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})
    assert sorted((parent / "cgroup.subtree_control").read_text().split()) == [
        "+cpu", "+cpuset", "+hugetlb", "+io"]


@pytest.mark.parametrize("resources, field", [
    ({"memory": {"swappiness": 10}}, "memory.swappiness"),
    ({"memory": {"kernelTCP": MIB}}, "memory.kernelTCP"),
    ({"memory": {"disableOOMKiller": True}}, "memory.disableOOMKiller"),
    ({"cpu": {"realtimeRuntime": 1000}}, "cpu.realtimeRuntime"),
    ({"blockIO": {"leafWeight": 10}}, "blockIO.leafWeight"),
    ({"network": {"classID": 1}}, "linux.resources.network"),
    ({"unified": {"../escape": "1"}}, "linux.resources.unified"),
])
def test_what_v2_cannot_do_is_refused_by_field(tmp_path, resources, field):
    with pytest.raises(CgroupError, match=field.replace(".", r"\.")) as e:
        limits_of(tmp_path, resources)
    assert "\n" not in str(e.value)


def test_stats_read_block_io_and_memory_from_v2_files(tmp_path):
    """`diyc stats`' BLOCK I/O (io.stat, every device) and MEM USAGE
    (memory.current less inactive_file, as docker) on a v2 cgroup; and the
    v1 blkio file's format, parsed the same way."""
    from diyc import stats
    root, parent, proc = make_fake_v2(tmp_path)
    cg = open_cgroup("diyc-abc", None, root=str(root), proc_file=str(proc))
    path = parent / "diyc-abc"
    path.mkdir()
    (path / "io.stat").write_text("8:0 rbytes=4096 wbytes=1048576 rios=1 wios=8 dbytes=0 dios=0\n"
                                  "253:1 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")
    (path / "memory.current").write_text(f"{10 * MIB}\n")
    (path / "memory.max").write_text("max\n")
    (path / "memory.stat").write_text(f"anon {4 * MIB}\nfile {6 * MIB}\ninactive_file {2 * MIB}\n")
    assert stats.block_io(cg) == (4096 + 512, 1048576)
    assert stats.memory_used(cg) == 8 * MIB
    v1 = "8:0 Read 1024\n8:0 Write 2048\n8:0 Sync 3072\n8:0 Async 0\n8:0 Total 3072\nTotal 3072\n"
    assert stats.parse_blkio_service_bytes(v1) == (1024, 2048)
    (path / "io.stat").write_text("")  # no I/O yet: an empty file
    assert stats.block_io(cg) == (0, 0)
