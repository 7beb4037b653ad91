"""Push of a ~100 MB, 5-layer image to a local registry (Debian's
docker-registry on 127.0.0.1): `diyc push` from its store against `skopeo
copy` from an OCI layout of the same image, in the same run.  Each round
pushes to a new repository.

Group "push": every blob sent.  diyc from a root that loaded the image
(`diyc save | diyc load`: it knows no repository holding its layers);
skopeo with an empty blob-info cache (a tmpfs over it, in a mount
namespace of its own).  Throughput (MB of compressed blobs per second) is
in extra_info.

Group "push-mount": the image was pulled from another repository of the
same registry; both clients ask the registry to mount the blobs from
there (diyc from the digests it recorded, skopeo from its cache).

Group "push-present": a second push to the same repository (a HEAD per
blob, the manifest put again).
"""

import itertools
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
DIYC = os.environ.get("DIYC_BIN") or str(REPO / ".venv" / "bin" / "diyc")
_repos = itertools.count()


def _run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}: {p.stderr}")


@pytest.fixture(scope="module")
def pushed_from(tmp_path_factory):
    """A registry holding the image, a diyc root that pulled it and an OCI
    layout skopeo copied it into."""
    for tool in ("skopeo",):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not os.path.exists(ru.REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    work = tmp_path_factory.mktemp("push-bench")
    r = ru.Registry(work / "registry")
    try:
        img = r.push_image("bench/big", "latest", ru.random_layers(LAYERS, LAYER_MB))
        r.blob_mb = sum(os.path.getsize(r.blob_data(d)) for d in img["blobs"]) / 1e6
        r.root, r.layout = work / "root", work / "oci"
        src = f"{r.host}/bench/big:latest"
        _run([DIYC, "--root", str(r.root), "pull", "-q", "--insecure", src])
        _run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{src}", f"oci:{r.layout}:big"])
        r.loaded_root = work / "loaded-root"
        _run([DIYC, "--root", str(r.root), "save", "-o", str(work / "big.tar"), src])
        _run([DIYC, "--root", str(r.loaded_root), "load", "-q", "-i", str(work / "big.tar")])
        yield r
    finally:
        r.stop()


def _diyc_tag(r, repo, root=None):
    """-> the push's arguments (tagging is not timed)."""
    ref = f"{r.host}/{repo}:latest"
    _run([DIYC, "--root", str(root or r.root), "tag", f"{r.host}/bench/big:latest", ref])
    return (ref, root), {}


def _diyc_push(r, ref, root=None):
    _run([DIYC, "--root", str(root or r.root), "push", "-q", "--insecure", ref])


SKOPEO_CACHE = "/var/lib/containers/cache"


def _skopeo_push(r, repo, cache=True):
    copy = ["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{r.layout}:big",
            f"docker://{r.host}/{repo}:latest"]
    if not cache:  # an empty cache of its own, the host's untouched
        copy = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f'mkdir -p {SKOPEO_CACHE} && mount -t tmpfs none {SKOPEO_CACHE} && exec "$@"', "sh", *copy]
    _run(copy)


def _throughput(benchmark, r):
    benchmark.extra_info["MB"] = round(r.blob_mb, 1)
    benchmark.extra_info["MB_per_s"] = round(r.blob_mb / benchmark.stats.stats.median, 1)


@pytest.mark.benchmark(group="push")
def test_diyc_push(benchmark, pushed_from, tmp_path):
    root = tmp_path / "root"

    def setup():  # a root that knows no repository with the layers (a push records one)
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(pushed_from.loaded_root, root, symlinks=True)
        return _diyc_tag(pushed_from, f"diyc/new{next(_repos)}", root)

    benchmark.pedantic(lambda ref, root: _diyc_push(pushed_from, ref, root), setup=setup,
                       rounds=ROUNDS, iterations=1)
    _throughput(benchmark, pushed_from)


@pytest.mark.benchmark(group="push")
def test_skopeo_push(benchmark, pushed_from):
    benchmark.pedantic(lambda: _skopeo_push(pushed_from, f"skopeo/new{next(_repos)}", cache=False),
                       rounds=ROUNDS, iterations=1)
    _throughput(benchmark, pushed_from)


@pytest.mark.benchmark(group="push-mount")
def test_diyc_push_mount(benchmark, pushed_from):
    benchmark.pedantic(lambda ref, root: _diyc_push(pushed_from, ref, root),
                       setup=lambda: _diyc_tag(pushed_from, f"diyc/mount{next(_repos)}"),
                       rounds=ROUNDS, iterations=1)


@pytest.mark.benchmark(group="push-mount")
def test_skopeo_push_mount(benchmark, pushed_from):
    benchmark.pedantic(lambda: _skopeo_push(pushed_from, f"skopeo/mount{next(_repos)}"),
                       rounds=ROUNDS, iterations=1)


@pytest.mark.benchmark(group="push-present")
def test_diyc_push_present(benchmark, pushed_from):
    (ref, _), _ = _diyc_tag(pushed_from, "diyc/present")
    _diyc_push(pushed_from, ref)
    benchmark.pedantic(lambda: _diyc_push(pushed_from, ref), rounds=10, iterations=1)


@pytest.mark.benchmark(group="push-present")
def test_skopeo_push_present(benchmark, pushed_from):
    _skopeo_push(pushed_from, "skopeo/present")
    benchmark.pedantic(lambda: _skopeo_push(pushed_from, "skopeo/present"), rounds=10, iterations=1)
