"""Container start-to-exit latency of `/bin/true`: diyc against crun and runc.

Group "start-none": the container gets a fresh network namespace with only
loopback, which is what `diyc run --network none` does; the peers' bundle
keeps the `network` namespace entry of `runc spec` for the same reason.

What is timed differs slightly by construction:
* peers: one request to a PeerServer helper, i.e. `<runtime> run` spawned by
  the helper and waited for, plus a pipe round trip to the helper.  The
  runtime's own wall time, measured inside the helper, is stored in
  extra_info so the pipe overhead (expected: tens of microseconds) is visible.
* diyc: the whole `diyc run --rm ...` process, spawned from this process.
Neither includes building the image or bundle.
"""

import pytest

from benchmarks import peers
from benchmarks.peers import ROUNDS, WARMUP_ROUNDS

test_crun_run_true = pytest.mark.benchmark(group="start-none")(peers.peer_run_benchmark("crun"))
test_runc_run_true = pytest.mark.benchmark(group="start-none")(peers.peer_run_benchmark("runc"))


@pytest.mark.benchmark(group="start-none")
def test_diyc_run_true_cli(benchmark, diyc):
    args = ("run", "--rm", "--network", "none", "busybox", "/bin/true")
    # The first run creates the `busybox` image; do it untimed, and fail here
    # with diyc's own error message if diyc cannot run at all.
    diyc.run(*args)
    benchmark.pedantic(diyc.run, args=args, rounds=ROUNDS, iterations=1,
                       warmup_rounds=WARMUP_ROUNDS)
