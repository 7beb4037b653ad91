"""diyc-runc's commands for containerd's shim beyond the lifecycle: update
(what CRI's UpdateContainerResources sends), events --stats, ps, kill of a
stopped container in runc's words, and checkpoint refused (and said so in
features)."""

import json

from conftest import wait_for
from test_oci import bundle, rootfs, runc  # noqa: F401  (fixtures)


def assert_one_line_error(proc, contains):
    """diyc-runc refused something: exit 1, one `diyc-runc: ...` line."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1, (proc.returncode, proc.stderr)
    assert lines[0].startswith("diyc-runc: ") and contains in lines[0], lines[0]


def _limit(runc, cid):  # noqa: F811
    out = runc("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").stdout
    return int(out)


def test_update_events_and_ps(runc, bundle):  # noqa: F811
    def edit(spec):
        spec["linux"]["resources"]["memory"] = {"limit": 64 << 20, "swap": 64 << 20}
    runc("run", "-d", "--bundle", bundle(["sleep", "60"], edit), "up1")
    try:
        assert _limit(runc, "up1") == 64 << 20
        # raised (swap first) and lowered again (limit first), as containerd sends it
        for limit in (128 << 20, 32 << 20):
            data = json.dumps({"memory": {"limit": limit, "swap": limit},
                               "cpu": {"shares": 512, "quota": 0, "cpus": ""},
                               "devices": [{"allow": False, "access": "rwm"}]})
            runc("update", "--resources", "-", "up1", input=data)
            assert _limit(runc, "up1") == limit
        runc("update", "--pids-limit", "50", "up1")
        assert runc("exec", "up1", "cat", "/sys/fs/cgroup/pids/pids.max").stdout.strip() == "50"
        stats = json.loads(runc("events", "--stats", "up1").stdout)
        assert stats["type"] == "stats" and stats["id"] == "up1"
        assert stats["data"]["memory"]["usage"]["limit"] == 32 << 20
        assert stats["data"]["pids"]["current"] >= 1
        pid = runc.state("up1")["pid"]
        assert pid in json.loads(runc("ps", "--format", "json", "up1").stdout)
        assert_one_line_error(runc("update", "--memory", "lots", "up1", check=False), "--memory")
        rdma = '{"rdma": {"x": {"hcaHandles": 1}}}'
        assert_one_line_error(runc("update", "-r", "-", "up1", input=rdma, check=False),
                              "linux.resources.rdma")
        runc("kill", "up1", "KILL")
        wait_for(lambda: runc.status("up1") == "stopped", what="the container to stop")
        proc = runc("kill", "up1", check=False)
        assert proc.returncode == 1 and "container not running" in proc.stderr
        proc = runc("events", "--stats", "up1", check=False)
        assert proc.returncode == 1 and "container not running" in proc.stderr
    finally:
        runc("delete", "--force", "up1", check=False)


def test_checkpoint_is_refused_and_features_say_so(runc):  # noqa: F811
    features = json.loads(runc("features").stdout)
    assert "not supported" in features["annotations"]["org.diyc.checkpoint"]
    assert_one_line_error(runc("checkpoint", "x", check=False), "checkpoint")
