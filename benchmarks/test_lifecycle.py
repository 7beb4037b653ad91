"""Detached containers (issue #5): the `run -d` -> `rm -f` cycle, what an
idle supervisor costs in memory, and `exec` latency next to crun and runc
exec'ing into a container of the same rootfs."""

import subprocess

import pytest

from . import peers


def _cli(diyc, *args):
    return subprocess.run(diyc.argv(*args), env=diyc.env, check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.benchmark(group="detached-cycle")
def test_diyc_run_detached_then_rm_force(benchmark, diyc):
    """One `diyc run -d busybox sleep 60` plus its `diyc rm -f`, 100 times."""
    counter = iter(range(10 ** 6))

    def cycle():
        name = f"cycle{next(counter)}"
        _cli(diyc, "run", "--network", "none", "-d", "--name", name, "busybox", "sleep", "60")
        _cli(diyc, "rm", "-f", name)

    cycle()
    benchmark.pedantic(cycle, rounds=100, iterations=1, warmup_rounds=2)


@pytest.mark.benchmark(group="detached-cycle")
def test_diyc_supervisor_rss(benchmark, diyc):
    """Resident memory of idle supervisors (reported in extra_info; the
    timed part is a `diyc ps` over the 20 detached containers)."""
    names = [f"idle{i}" for i in range(20)]
    for n in names:
        _cli(diyc, "run", "--network", "none", "-d", "--name", n, "busybox", "sleep", "600")
    try:
        import json
        rss = []
        for c in json.loads(_cli(diyc, "inspect", *names)):
            with open(f"/proc/{c['State']['SupervisorPid']}/status") as f:
                rss.append(int([l for l in f if l.startswith("VmRSS")][0].split()[1]))
        benchmark.extra_info["supervisor_rss_kb_max"] = max(rss)
        benchmark.extra_info["supervisor_rss_kb_mean"] = sum(rss) / len(rss)
        print(f"\nsupervisor RSS: mean {sum(rss) / len(rss):.0f} kB, max {max(rss)} kB")
        benchmark.pedantic(_cli, args=(diyc, "ps", "-q"), rounds=10, iterations=1)
    finally:
        _cli(diyc, "rm", "-f", *names)


@pytest.fixture(scope="module")
def sleeper_bundle(peer_env, bench_dir):
    return peers.write_bundle(bench_dir / "bundle-sleeper", peer_env.rootfs, args=["sleep", "1000"])


@pytest.mark.benchmark(group="exec")
def test_diyc_exec_true(benchmark, diyc):
    _cli(diyc, "run", "--network", "none", "-d", "--name", "execbench", "busybox", "sleep", "1000")
    try:
        benchmark.pedantic(_cli, args=(diyc, "exec", "execbench", "/bin/true"),
                           rounds=30, iterations=1, warmup_rounds=3)
    finally:
        _cli(diyc, "rm", "-f", "execbench")


@pytest.mark.benchmark(group="exec")
@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_peer_exec_true(benchmark, peer_server, peer_env, sleeper_bundle, runtime):
    server = peer_server(runtime, peer_env.bundle)
    server.start_sleeper(sleeper_bundle)
    benchmark.name = f"test_{runtime}_exec_true"
    benchmark.pedantic(server.exec_once, rounds=30, iterations=1, warmup_rounds=3)
