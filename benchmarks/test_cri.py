"""Pod start through Kubernetes' CRI: `crictl run` (RunPodSandbox +
CreateContainer + StartContainer of busybox `true`) on one private
containerd 1.6, with the RuntimeClass handler `runc` against `diyc`
(containerd-shim-runc-v2 driving diyc-runc).  Both pay the same crictl,
containerd, shim and CNI (bridge on a test subnet) costs; the difference
is the runtime binary's, twice per pod (sandbox and container).

Group "cri-pod-start".  Each round's pod is stopped and removed in the next
round's setup, outside the timed part.  Needs what tests/test_cri.py needs
(containerd, crictl from scripts/build-cri-tools.sh).
"""

import itertools
import os
import sys

import pytest

from benchmarks.conftest import REPO

sys.path.insert(0, str(REPO / "tests"))
import cri_util  # noqa: E402

ROUNDS = 20


@pytest.fixture(scope="module")
def cri(bench_dir):
    why = cri_util.missing()
    if why:
        pytest.skip(why)
    d = bench_dir / "cri"
    ctd = cri_util.Containerd(d / "containerd")
    try:
        os.makedirs(d / "images")
        layout = cri_util.build_images(str(d / "images"))
        ctd.start()
        ctd.import_layout(layout, {"pause": cri_util.PAUSE_IMAGE,
                                   "busybox": cri_util.BUSYBOX_IMAGE})
        ctd.configs = d / "configs"
        os.makedirs(ctd.configs)
        yield ctd
    finally:
        ctd.stop()


def _bench_pod_start(benchmark, cri, handler):
    names = (f"bench-{handler}-{n}" for n in itertools.count())
    container = cri_util.container_config(f"{cri.configs}/{handler}-c.json", "true", ["true"])

    def setup():
        cri.remove_all_pods()
        pod = cri_util.pod_config(f"{cri.configs}/{handler}-pod.json", next(names))
        return (pod,), {}

    def start(pod):
        cri.crictl("run", "--no-pull", "--runtime", handler, container, pod)

    start(*setup()[0])  # fails here, with the runtime's message, if it cannot run at all
    benchmark.pedantic(start, setup=setup, rounds=ROUNDS, iterations=1)
    cri.remove_all_pods()
    assert cri.crictl("pods", "-q").stdout.split() == []


@pytest.mark.benchmark(group="cri-pod-start")
def test_runc_cri_pod_start(benchmark, cri):
    _bench_pod_start(benchmark, cri, "runc")


@pytest.mark.benchmark(group="cri-pod-start")
def test_diyc_cri_pod_start(benchmark, cri):
    _bench_pod_start(benchmark, cri, "diyc")
