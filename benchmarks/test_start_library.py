"""`diyc.run` from a long-lived Python process: the library use case (a
service starting many short-lived sandboxes).  Same container as the CLI
benchmark in group "start-none", without the interpreter start-up.
Target (issue #2): median <= 5 ms, i.e. >= 200 containers/s serially."""

import pytest

diyc = pytest.importorskip("diyc")


@pytest.mark.benchmark(group="start-none")
def test_diyc_library_run_true(benchmark, bench_dir):
    root = str(bench_dir / "diyc-root")

    def run_true():
        result = diyc.run("busybox", ["/bin/true"], network="none", root=root)
        assert result.exit_code == 0

    run_true()  # creates the image, untimed
    benchmark.pedantic(run_true, rounds=100, iterations=1, warmup_rounds=5)
