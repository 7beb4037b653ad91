"""`diyc-runc run --bundle B ID` against `crun run` and `runc run` on the
same bundle (`runc spec`'s default: pid, network, ipc, uts and mount
namespaces, a read-only root, a cgroup mount; `/bin/true`).

Group "oci-run".  The peers run under a PeerServer helper (crun needs a
private mount namespace on this hybrid-cgroup host); diyc-runc is spawned
from this process and timed from spawn to exit, so it also pays the
interpreter's start.  Every run uses a fresh container id and is deleted
at exit (the foreground `run` semantics of all three).
"""

import itertools
import os
from pathlib import Path

import pytest

from benchmarks import peers
from benchmarks.conftest import REPO
from benchmarks.peers import ROUNDS, WARMUP_ROUNDS


@pytest.fixture(scope="session")
def diyc_runc(bench_dir):
    path = Path(os.environ.get("DIYC_RUNC_BIN") or REPO / ".venv" / "bin" / "diyc-runc")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"diyc-runc not found at {path} (install diyc into {REPO}/.venv)")
    return path, bench_dir / "diyc-runc-root"


test_crun_oci_run = pytest.mark.benchmark(group="oci-run")(peers.peer_run_benchmark("crun"))
test_runc_oci_run = pytest.mark.benchmark(group="oci-run")(peers.peer_run_benchmark("runc"))


@pytest.mark.benchmark(group="oci-run")
def test_diyc_front_end_oci_run(benchmark, peer_env, diyc_runc):
    path, root = diyc_runc
    ids = (f"{peer_env.id_prefix}diyc-{n}" for n in itertools.count())

    def run_once():
        peers.run_command([str(path), "--root", str(root), "run", "--bundle", str(peer_env.bundle),
                           next(ids)])
    run_once()  # fails here, with diyc-runc's own message, if it cannot run at all
    benchmark.pedantic(run_once, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)
    left = os.listdir(root / "names") if (root / "names").is_dir() else []
    assert not left, f"diyc-runc left containers behind: {left}"
