"""`rm -f` racing the end of foreground `run --rm` containers, and commands
on several containers when one of them fails (issue #17, item 13).

The network test here runs in a network namespace it creates (netns_util),
deleted at the end.
"""

import json
import os

import pytest

from conftest import container_records, wait_for
from netns_util import NsCli, netns

SUBNET = "10.253.13.0/24"


@pytest.fixture(scope="module")
def racy(diyc_root):
    with netns() as ns:
        cli = NsCli(ns, diyc_root)
        name = f"race{os.urandom(3).hex()}"
        cli("network", "create", name, "--subnet", SUBNET, check=True)
        cli.network = name
        try:
            yield cli
        finally:
            cli("network", "rm", name, check=True)


def _address(cli, name):
    proc = cli("inspect", name)
    if proc.returncode:
        return None
    rec = json.loads(proc.stdout)[0]
    ip = next(iter(rec["NetworkSettings"]["Networks"].values()))["IPAddress"]
    return rec if rec["State"]["Status"] == "running" and ip else None


def test_rm_f_races_the_end_of_foreground_runs(racy, diyc_root):
    """rm -f kills each container's init; its foreground `run --rm` wakes at
    once and tears the container down while rm goes on to remove it too.
    Who takes the container's lock first varies from round to round (both
    happen within these rounds); the order of the names alternates.  The
    second one must find the work done: rm exits 0, both runs end, nothing
    of either container is left."""
    locks = f"{diyc_root}/locks"
    for i in range(10):
        s1 = racy.popen("run", "--rm", "--name", "s1", "--network", racy.network,
                        "-p", f"127.0.0.1:{8700 + i}:80", "busybox", "httpd", "-f", "-p", "80")
        s2 = racy.popen("run", "--rm", "--name", "s2", "--network", racy.network, "busybox", "sleep", "60")
        try:
            recs = [wait_for(lambda n=n: _address(racy, n), timeout=30, what=f"{n} to run")
                    for n in ("s1", "s2")]
            ids = [r["Id"] for r in recs]
            cgroups = [p for r in recs for p in r["CgroupPaths"].values()]
            assert all(os.path.isdir(p) for p in cgroups)
            order = ["s1", "s2"] if i % 2 == 0 else ["s2", "s1"]
            rm = racy("rm", "-f", *order)
            assert rm.returncode == 0, rm.stderr
            assert rm.stdout.split() == order
            assert rm.stderr == ""
        finally:
            outs = [p.communicate(timeout=30) for p in (s1, s2)]
        for p, (_, err) in zip((s1, s2), outs):
            assert p.returncode == 137, err   # killed by rm -f: 128 + SIGKILL
            assert "Traceback" not in err
        assert container_records(diyc_root) == []
        assert os.listdir(f"{diyc_root}/names") == []
        assert os.listdir(f"{diyc_root}/networks/{racy.network}/leases") == []
        assert os.listdir(f"{diyc_root}/ports") == []
        assert not [f for f in os.listdir(locks) if f.split(".")[0] in ids]
        # the kernel deletes the host end with the container's network
        # namespace, asynchronously (diyc does not wait for it, by design)
        wait_for(lambda: "veth" not in racy.sh("ip", "-br", "link").stdout, timeout=10,
                 what="the veth pairs to go with the containers' namespaces")
        assert not [p for p in cgroups if os.path.exists(p)]
        # (mounts: a --rm container has none on the host; the autouse
        # fixture checks the root for them after the test)


def test_rm_of_several_goes_on_after_a_failure(run_cli, diyc_root):
    for name in ("m1", "m2"):
        run_cli("run", "--network", "none", "--name", name, "busybox", "true", check=True)
    proc = run_cli("rm", "m1", "nosuch", "m2")
    assert proc.returncode == 1
    assert proc.stdout.split() == ["m1", "m2"]
    assert proc.stderr.splitlines() == ["diyc: no such container: nosuch"]
    assert container_records(diyc_root) == []


def test_stop_and_kill_of_several_go_on_after_a_failure(run_cli, diyc_root):
    for name in ("k1", "k2", "k3"):
        run_cli("run", "--network", "none", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    try:
        proc = run_cli("stop", "-t", "0", "k1", "nosuch", "k2")
        assert proc.returncode == 1
        assert proc.stdout.split() == ["k1", "k2"]
        assert proc.stderr.splitlines() == ["diyc: no such container: nosuch"]
        proc = run_cli("kill", "k1", "k3")   # k1 is not running any more
        assert proc.returncode == 1
        assert proc.stdout.split() == ["k3"]
        assert proc.stderr.splitlines() == ["diyc: kill k1: container k1 is not running"]
        proc = run_cli("wait", "k3", "nosuch")
        assert proc.returncode == 1
        assert proc.stdout.split() == ["137"]
        assert proc.stderr.splitlines() == ["diyc: no such container: nosuch"]
        states = {r["name"]: r["state"]["status"] for r in container_records(diyc_root)}
        assert states == {"k1": "exited", "k2": "exited", "k3": "exited"}
    finally:
        run_cli("rm", "-f", "k1", "k2", "k3", check=True)
    assert container_records(diyc_root) == []


def test_a_containers_lock_excludes_another_thread_using_the_same_object(diyc_root):
    """lock() is re-entrant for the thread that holds it, not for every
    user of the Container object: a second thread (arun's cancellation
    removing what a start in a worker thread still builds) waits."""
    import threading
    from diyc.runtime import Container
    ctr = Container.create("busybox", ["true"], network="none", root=str(diyc_root))
    try:
        entered = threading.Event()

        def other():
            with ctr.lock():
                entered.set()
        with ctr.lock():
            with ctr.lock():  # (re-entrant here)
                thread = threading.Thread(target=other)
                thread.start()
                assert not entered.wait(0.3)  # (held: it waits)
            assert not entered.is_set()
        assert entered.wait(10)
        thread.join()
        assert ctr.lock_owner is None and ctr.lock_depth == 0
    finally:
        ctr.remove(force=True)


def test_discard_reaps_what_a_start_in_another_thread_made_meanwhile(diyc_root):
    """arun's cancellation: discard() in one thread while the start it
    cancelled still runs in another (holding the container's lock): the
    start finishes first, and discard kills, reaps and removes what it
    made - no zombie of ours is left."""
    import threading
    from conftest import child_pids
    from diyc.runtime import Container
    ctr = Container.create("busybox", ["sleep", "60"], network="none", root=str(diyc_root),
                           auto_remove=True)
    started = threading.Event()

    def start_holding_the_lock():
        with ctr.lock():
            started.set()
            ctr.start()
    thread = threading.Thread(target=start_holding_the_lock)
    thread.start()
    assert started.wait(10)
    ctr.discard()  # (waits for the start's lock)
    thread.join()
    assert child_pids() == [] and container_records(diyc_root) == []
