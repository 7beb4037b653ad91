"""The diyc server (#10): `diyc` as the C launcher with the server warm,
against crun and runc in the same run; and the paths without it.

Groups:
* "server-run": `run --rm --network none busybox /bin/true`: crun, runc
  (PeerServer helpers; crun in its private mount namespace, so neither side
  pays an unshare), diyc warm (after its first run, in the server's warm
  containers), diyc warm without them (DIYC_SERVER_POOL=off), diyc warm
  with --network bridge, diyc cold
  (the launcher with DIYC_SERVER=off, so it execs the Python CLI), the
  Python CLI alone (the command before the launcher), and the first call
  (no server: the launcher starts one in the background and goes direct).
  test_diyc_warm_run_interleaved runs crun and runc in turn with it (its
  extra_info has the ratios): steadier on a shared machine.
* "server-exec": `exec SLEEPER /bin/true`, crun against diyc warm.
* "server-oci-run": `diyc-runc run --bundle B ID` warm against crun run.

`diyc` must be the launcher with diyc-py next to it (scripts/install.sh
puts both in .venv/bin; DIYC_BIN=/path/to/diyc selects another pair).
"""

import itertools
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks import peers
from benchmarks.peers import ROUNDS, WARMUP_ROUNDS

RUN = ("run", "--rm", "--network", "none", "busybox", "/bin/true")


@dataclass
class Launcher:
    bin_dir: Path
    root: Path
    env: dict

    def argv(self, *args):
        return [str(self.bin_dir / "diyc"), *args]

    def run(self, *args, env=None):
        peers.run_command(self.argv(*args), env={**self.env, **(env or {})})

    def pid(self):
        try:
            return int((self.root / "server" / "pid").read_text())
        except FileNotFoundError:
            return None

    def start_server(self):
        subprocess.run([str(self.bin_dir / "diyc-py"), "server", "start", "--quiet"],
                       env=self.env, check=True)

    def wait_for_server(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not (self.root / "server" / "socket").exists():
            if time.monotonic() > deadline:
                raise AssertionError("the diyc server did not start")
            time.sleep(0.01)

    def stop_server(self):
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        while os.path.exists(f"/proc/{pid}"):
            time.sleep(0.005)


@pytest.fixture(scope="module")
def launcher(diyc):
    bin_dir = diyc.path.parent
    if not (bin_dir / "diyc-py").exists() or diyc.path.read_bytes()[:2] == b"#!":
        pytest.skip(f"{diyc.path} is not the C launcher with diyc-py next to it")
    root = Path(diyc.env["DIYC_ROOT"])
    env = {**diyc.env, "DIYC_SERVER": "nostart"}
    lx = Launcher(bin_dir, root, env)
    lx.run(*RUN, env={"DIYC_SERVER": "off"})  # the built-in image, untimed
    lx.start_server()
    yield lx
    lx.stop_server()
    # the bridge benchmark's bridge, firewall table and ip_forward: undone
    subprocess.run([str(bin_dir / "diyc-py"), "network", "prune", "-f"], env=lx.env, check=True,
                   capture_output=True)


test_crun_server_run = pytest.mark.benchmark(group="server-run")(peers.peer_run_benchmark("crun"))
test_runc_server_run = pytest.mark.benchmark(group="server-run")(peers.peer_run_benchmark("runc"))


@pytest.mark.benchmark(group="server-run")
def test_diyc_warm_run(benchmark, launcher):
    benchmark.pedantic(launcher.run, args=RUN, rounds=ROUNDS, iterations=1,
                       warmup_rounds=WARMUP_ROUNDS)


@pytest.mark.benchmark(group="server-run")
def test_diyc_warm_run_interleaved(benchmark, launcher, peer_env, peer_server):
    """The warm run with crun and runc run in turn before each round
    (untimed here, timed by their helpers): a change of the machine's load
    moves all three alike.  The ratios to their medians are in extra_info."""
    peers_ = {name: peer_server(name, peer_env.bundle) for name in ("crun", "runc")}
    times = {name: [] for name in peers_}

    def setup():
        for name, server in peers_.items():
            times[name].append(server.run_once())
        return RUN, {}
    benchmark.pedantic(launcher.run, setup=setup, rounds=ROUNDS, iterations=1)
    _interleaved_ratios(benchmark, times)


def _interleaved_ratios(benchmark, times):
    """times: {peer: its times, one per round}: their medians and our
    median's ratio to each go to extra_info."""
    median = statistics.median(benchmark.stats.stats.data)
    for name, values in times.items():
        benchmark.extra_info[f"{name}_interleaved_median_s"] = statistics.median(values)
        benchmark.extra_info[f"ratio_to_{name}"] = round(median / statistics.median(values), 3)


@pytest.mark.benchmark(group="server-run")
def test_diyc_warm_run_no_pool(benchmark, launcher):
    """The warm server without its warm containers (DIYC_SERVER_POOL=off):
    each run creates, starts and removes its container in a worker."""
    benchmark.pedantic(launcher.run, args=RUN, kwargs={"env": {"DIYC_SERVER_POOL": "off"}},
                       rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)


@pytest.mark.benchmark(group="server-run")
def test_diyc_warm_run_bridge(benchmark, launcher):
    args = ("run", "--rm", "--network", "bridge", "busybox", "/bin/true")
    benchmark.pedantic(launcher.run, args=args, rounds=ROUNDS, iterations=1,
                       warmup_rounds=WARMUP_ROUNDS)


@pytest.mark.benchmark(group="server-run")
def test_diyc_cold_run(benchmark, launcher):
    benchmark.pedantic(launcher.run, args=RUN, kwargs={"env": {"DIYC_SERVER": "off"}},
                       rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)


@pytest.mark.benchmark(group="server-run")
def test_diyc_python_cli_run(benchmark, launcher):
    """The command as it was before the launcher: the Python CLI itself."""
    argv = [str(launcher.bin_dir / "diyc-py"), *RUN]
    benchmark.pedantic(peers.run_command, args=(argv,), kwargs={"env": launcher.env},
                       rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)


@pytest.mark.benchmark(group="server-run")
def test_diyc_first_call_run(benchmark, launcher):
    """No server: the call starts one (in the background) and runs directly."""
    def setup():
        launcher.stop_server()
        return (), {}

    def first_call():
        launcher.run(*RUN, env={"DIYC_SERVER": "on"})

    try:
        benchmark.pedantic(first_call, setup=setup, rounds=10, iterations=1)
        started = time.monotonic()
        launcher.wait_for_server()
        benchmark.extra_info["server_ready_after_s"] = time.monotonic() - started
    finally:
        launcher.wait_for_server()


@pytest.fixture(scope="module")
def sleeper_bundle(peer_env, bench_dir):
    return peers.write_bundle(bench_dir / "bundle-server-sleeper", peer_env.rootfs,
                              args=["sleep", "1000"])


@pytest.mark.benchmark(group="server-exec")
def test_crun_server_exec(benchmark, peer_server, peer_env, sleeper_bundle):
    server = peer_server("crun", peer_env.bundle)
    server.start_sleeper(sleeper_bundle)
    benchmark.pedantic(server.exec_once, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)


@pytest.mark.benchmark(group="server-exec")
def test_diyc_warm_exec(benchmark, launcher):
    launcher.run("run", "--network", "none", "-d", "--name", "serverexec", "busybox", "sleep", "1000")
    try:
        benchmark.pedantic(launcher.run, args=("exec", "serverexec", "/bin/true"),
                           rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)
    finally:
        launcher.run("rm", "-f", "serverexec")


@pytest.mark.benchmark(group="server-exec")
def test_diyc_warm_exec_interleaved(benchmark, launcher, peer_env, peer_server, sleeper_bundle):
    """The warm exec with crun exec run in turn before each round (like
    test_diyc_warm_run_interleaved: extra_info has the ratio)."""
    crun = peer_server("crun", peer_env.bundle)
    crun.start_sleeper(sleeper_bundle)
    times = {"crun": []}

    def setup():
        times["crun"].append(crun.exec_once())
        return ("exec", "serverexec-interleaved", "/bin/true"), {}
    launcher.run("run", "--network", "none", "-d", "--name", "serverexec-interleaved", "busybox",
                 "sleep", "1000")
    try:
        benchmark.pedantic(launcher.run, setup=setup, rounds=ROUNDS, iterations=1)
    finally:
        launcher.run("rm", "-f", "serverexec-interleaved")
    _interleaved_ratios(benchmark, times)


test_crun_server_oci_run = pytest.mark.benchmark(group="server-oci-run")(peers.peer_run_benchmark("crun"))


@pytest.mark.benchmark(group="server-oci-run")
def test_diyc_front_end_warm_oci_run(benchmark, peer_env, launcher, bench_dir):
    runc = str(launcher.bin_dir / "diyc-runc")
    root = bench_dir / "diyc-runc-server-root"
    ids = (f"{peer_env.id_prefix}diycs-{n}" for n in itertools.count())

    def run_once():
        peers.run_command([runc, "--root", str(root), "run", "--bundle", str(peer_env.bundle),
                           next(ids)], env=launcher.env)
    run_once()
    benchmark.pedantic(run_once, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)
    _assert_no_runc_leftovers(root)


@pytest.mark.benchmark(group="server-oci-run")
def test_diyc_front_end_warm_oci_run_interleaved(benchmark, peer_env, peer_server, launcher,
                                                 bench_dir):
    """diyc-runc run warm with crun run in turn before each round."""
    crun = peer_server("crun", peer_env.bundle)
    runc = str(launcher.bin_dir / "diyc-runc")
    root = bench_dir / "diyc-runc-server-root-interleaved"
    ids = (f"{peer_env.id_prefix}diycsi-{n}" for n in itertools.count())
    times = {"crun": []}

    def setup():
        times["crun"].append(crun.run_once())
        return ([runc, "--root", str(root), "run", "--bundle", str(peer_env.bundle), next(ids)],), \
            {"env": launcher.env}
    benchmark.pedantic(peers.run_command, setup=setup, rounds=ROUNDS, iterations=1)
    _interleaved_ratios(benchmark, times)
    _assert_no_runc_leftovers(root)


def _assert_no_runc_leftovers(root):
    left = os.listdir(root / "names") if (root / "names").is_dir() else []
    assert not left, f"diyc-runc left containers behind: {left}"
