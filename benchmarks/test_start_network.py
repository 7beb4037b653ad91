"""What bridge networking costs at start (issue #3): `diyc run --rm busybox
true` with `--network bridge` (veth pair, address, route, lease, /etc files)
against `--network none` (loopback only), in the same run; the CLI as a user
runs it, and the library from a warm process.  Target: bridge <= 1.3x none.

Everything runs inside a network namespace made for this module (its
"host"), so the machine's own links and firewall are untouched: the main
thread enters it for the module's duration, and the diyc processes it
spawns inherit it.  Deleting the namespace at the end removes the bridge.
"""

import os
import subprocess

import pytest

from benchmarks import peers

ROUNDS = 30
WARMUP_ROUNDS = 3
LIBRARY_ROUNDS = 100
CLONE_NEWNET = 0x40000000


@pytest.fixture(scope="module")
def in_test_netns():
    if os.geteuid() != 0:
        pytest.skip("network benchmarks need root")
    from diyc import _native
    name = f"diycbench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _native.setns(target, CLONE_NEWNET)
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            yield name
        finally:
            _native.setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)
        subprocess.run(["ip", "netns", "del", name], check=True)


def _bench_cli(benchmark, diyc, network):
    args = ("run", "--rm", "--network", network, "busybox", "/bin/true")
    diyc.run(*args)  # creates the image and, for bridge, the bridge: untimed
    benchmark.pedantic(diyc.run, args=args, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)


@pytest.mark.benchmark(group="start-network-cli")
def test_diyc_run_true_network_none(benchmark, diyc, in_test_netns):
    _bench_cli(benchmark, diyc, "none")


@pytest.mark.benchmark(group="start-network-cli")
def test_diyc_run_true_network_bridge(benchmark, diyc, in_test_netns):
    _bench_cli(benchmark, diyc, "bridge")


def _bench_library(benchmark, bench_dir, network):
    diyc = pytest.importorskip("diyc")
    root = str(bench_dir / "diyc-root")

    def run_true():
        assert diyc.run("busybox", ["/bin/true"], network=network, root=root).exit_code == 0

    run_true()
    benchmark.pedantic(run_true, rounds=LIBRARY_ROUNDS, iterations=1, warmup_rounds=5)


@pytest.mark.benchmark(group="start-network-library")
def test_diyc_library_network_none(benchmark, bench_dir, in_test_netns):
    _bench_library(benchmark, bench_dir, "none")


@pytest.mark.benchmark(group="start-network-library")
def test_diyc_library_network_bridge(benchmark, bench_dir, in_test_netns):
    _bench_library(benchmark, bench_dir, "bridge")


@pytest.fixture(scope="module")
def podman(in_test_netns):
    """podman (Debian's, with runc and cgroupfs; see shared/PEERS.md) with
    all its state in a temp dir, running in the test namespace too."""
    import shutil
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    from diyc.images.store import busybox_rootfs_tar
    with peers.podman(busybox_rootfs_tar()) as run:
        yield run


@pytest.mark.benchmark(group="start-network-cli")
def test_podman_run_true_network_bridge(benchmark, podman):
    """The peer of issue #3: podman's own bridge (netavark), same image."""
    args = ("run", "--rm", "--network", "bridge", "localhost/bbox", "/bin/true")
    podman(*args)
    benchmark.pedantic(podman, args=args, rounds=10, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="start-network-cli")
def test_podman_run_true_network_none(benchmark, podman):
    """podman without a network (its own netns with loopback only)."""
    args = ("run", "--rm", "--network", "none", "localhost/bbox", "/bin/true")
    podman(*args)
    benchmark.pedantic(podman, args=args, rounds=10, iterations=1, warmup_rounds=1)
