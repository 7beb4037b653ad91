"""Pull + unpack of a ~100 MB, 5-layer image from a local registry (Debian's
docker-registry on 127.0.0.1): diyc against `skopeo copy` + `umoci unpack`
of the same image, in the same run (group "pull").  Each round starts from
an empty store / empty directories; throughput (MB of compressed blobs per
second) is in extra_info.

Group "pull-present": a second `diyc pull` of an image whose layers are all
stored (one manifest request, nothing downloaded).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import registry_util as ru  # noqa: E402

ROUNDS = 3
LAYERS, LAYER_MB = 5, 20


def _run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}: {p.stderr}")


DIYC = os.environ.get("DIYC_BIN") or str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "diyc")


def _diyc(root, *args):
    # the `diyc` command a user runs (python -IS), as in the other benchmarks
    _run([DIYC, "--root", str(root), *args])


@pytest.fixture(scope="module")
def bench_registry(tmp_path_factory):
    if not os.path.exists(ru.REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    r = ru.Registry(tmp_path_factory.mktemp("pull-registry"))
    try:
        img = r.push_image("bench/big", "latest", ru.random_layers(LAYERS, LAYER_MB))
        img["blob_bytes"] = sum(os.path.getsize(r.blob_data(d)) for d in img["blobs"])
        r.bench_image = img
        yield r
    finally:
        r.stop()


def _fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    return path


@pytest.mark.benchmark(group="pull")
def test_diyc_pull(benchmark, bench_registry, tmp_path):
    ref = f"{bench_registry.host}/bench/big:latest"
    root = tmp_path / "root"

    def setup():
        if root.exists():
            _diyc(root, "rmi", ref)  # also exercises the layer GC
        return (), {}

    benchmark.pedantic(lambda: _diyc(root, "pull", "-q", "--insecure", ref), setup=setup,
                       rounds=ROUNDS, iterations=1)
    mb = bench_registry.bench_image["blob_bytes"] / 1e6
    benchmark.extra_info["MB"] = round(mb, 1)
    benchmark.extra_info["MB_per_s"] = round(mb / benchmark.stats.stats.median, 1)


@pytest.mark.benchmark(group="pull")
def test_skopeo_umoci_pull(benchmark, bench_registry, tmp_path):
    for tool in ("skopeo", "umoci"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    ref = f"{bench_registry.host}/bench/big:latest"
    layout, bundle = tmp_path / "oci", tmp_path / "bundle"

    def setup():
        _fresh(layout)
        _fresh(bundle)
        return (), {}

    def pull():
        _run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:big"])
        _run(["umoci", "unpack", "--image", f"{layout}:big", str(bundle)])

    benchmark.pedantic(pull, setup=setup, rounds=ROUNDS, iterations=1)
    mb = bench_registry.bench_image["blob_bytes"] / 1e6
    benchmark.extra_info["MB"] = round(mb, 1)
    benchmark.extra_info["MB_per_s"] = round(mb / benchmark.stats.stats.median, 1)


@pytest.mark.benchmark(group="pull-present")
def test_diyc_pull_present(benchmark, bench_registry, tmp_path):
    ref = f"{bench_registry.host}/bench/big:latest"
    root = tmp_path / "root"
    _diyc(root, "pull", "-q", "--insecure", ref)
    benchmark.pedantic(lambda: _diyc(root, "pull", "-q", "--insecure", ref), rounds=10, iterations=1,
                       warmup_rounds=1)
