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

import statistics

import pytest

ROUNDS = 30
WARMUP_ROUNDS = 3


def _bench_peer(benchmark, server):
    benchmark.pedantic(server.run_once, rounds=ROUNDS, iterations=1,
                       warmup_rounds=WARMUP_ROUNDS)
    runtime_times = server.timings[-ROUNDS:]  # the timed rounds come after the warm-up
    benchmark.extra_info["runtime_median_s"] = statistics.median(runtime_times)
    benchmark.extra_info["id_prefix"] = server.id_prefix


@pytest.mark.benchmark(group="start-none")
def test_crun_run_true(benchmark, peer_env, peer_server):
    _bench_peer(benchmark, peer_server("crun", peer_env.bundle))


@pytest.mark.benchmark(group="start-none")
def test_runc_run_true(benchmark, peer_env, peer_server):
    _bench_peer(benchmark, peer_server("runc", peer_env.bundle))


@pytest.mark.benchmark(group="start-none")
def test_diyc_run_true_cli(benchmark, diyc):
    args = ("run", "--rm", "--network", "none", "busybox", "/bin/true")
    # The first run creates the `busybox` image; do it untimed, and fail here
    # with diyc's own error message if diyc cannot run at all.
    diyc.run(*args)
    benchmark.pedantic(diyc.run, args=args, rounds=ROUNDS, iterations=1,
                       warmup_rounds=WARMUP_ROUNDS)
