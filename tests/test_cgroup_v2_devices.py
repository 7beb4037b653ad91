"""The cgroup v2 device filter (an eBPF program, _native/devices.c) on the
real kernel: this machine's cgroup2 mount at /sys/fs/cgroup/unified has no
controllers, but device programs need none, so a real v2 cgroup is made
there and a forked process tries devices from inside it."""

import os

import pytest

from diyc.cgroups import CgroupV2, CgroupError
from diyc.security import default_device_rules

UNIFIED = "/sys/fs/cgroup/unified"


@pytest.fixture
def v2_cgroup():
    if not os.path.exists(f"{UNIFIED}/cgroup.controllers"):
        pytest.skip(f"no cgroup2 hierarchy at {UNIFIED}")
    cg = CgroupV2(f"{UNIFIED}/diyc-devtest-{os.getpid()}").create()
    yield cg
    cg.remove()


def try_devices(cg, paths):
    """Fork a process into the cgroup; it opens each path (or mknods it
    first, for ('mknod', path, major, minor))."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with open(f"{cg.path}/cgroup.procs", "w") as f:
                f.write("0")
            out = []
            for p in paths:
                try:
                    os.close(os.open(p, os.O_RDONLY))
                    out.append("ok")
                except OSError as e:
                    out.append(e.strerror)
            os.write(w, "|".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    data = os.read(r, 4096).decode()
    os.close(r)
    return data.split("|")


def test_default_rules_allow_only_the_minimal_dev(v2_cgroup):
    v2_cgroup.set_limits({"devices": default_device_rules()})
    assert try_devices(v2_cgroup, ["/dev/null", "/dev/zero", "/dev/urandom"]) == ["ok"] * 3
    # a disk and a device outside the list are refused
    denied = [p for p in ("/dev/vda", "/dev/sda", "/dev/kmsg", "/dev/mem") if os.path.exists(p)]
    assert denied, "no device outside the default list to try"
    assert try_devices(v2_cgroup, denied) == ["Operation not permitted"] * len(denied)


def test_last_matching_rule_wins(v2_cgroup):
    rules = default_device_rules() + [
        {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # /dev/zero
    ]
    v2_cgroup.set_limits({"devices": rules})
    assert try_devices(v2_cgroup, ["/dev/null", "/dev/zero"]) == ["ok", "Operation not permitted"]


def test_allow_all(v2_cgroup):
    v2_cgroup.set_limits({"devices": [{"allow": True, "type": "a", "access": "rwm"}]})
    assert try_devices(v2_cgroup, ["/dev/null", "/dev/zero"]) == ["ok", "ok"]


def test_attach_to_a_non_cgroup_is_a_clear_error(tmp_path):
    cg = CgroupV2(str(tmp_path / "not-a-cgroup"))
    os.mkdir(cg.path)
    with pytest.raises(CgroupError, match="device rules"):
        cg.set_limits({"devices": default_device_rules()})
