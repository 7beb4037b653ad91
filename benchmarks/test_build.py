"""`diyc build` against `podman build` (buildah inside podman) on the same
Dockerfile and context, in the same run (issue #13).

The Dockerfile has 6 steps on the busybox image: RUN, COPY of 200 files,
ENV, WORKDIR, RUN, CMD.  Group "build-cold": every step built (--no-cache
on both sides; targets: diyc <= 0.5x podman).  Group "build-cached": a
rebuild with nothing changed (target: diyc <= 100 ms).  podman runs with
private state and runc, as shared/PEERS.md describes; both sides build with
--network none.
"""

import os
import shutil
from pathlib import Path

import pytest

from benchmarks import peers

REPO = Path(__file__).resolve().parent.parent
DIYC = os.environ.get("DIYC_BIN") or str(REPO / ".venv" / "bin" / "diyc")
FILES = 200
DOCKERFILE = """\
FROM localhost/bbox
RUN echo step one > /one && mkdir -p /app
COPY files /app/files
ENV APP=/app MODE=bench
WORKDIR /app
RUN ls files | wc -l > /count
CMD ["cat", "/count"]
"""


@pytest.fixture(scope="module")
def build_context(tmp_path_factory):
    ctx = tmp_path_factory.mktemp("build-context")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "files").mkdir()
    for i in range(FILES):
        (ctx / "files" / f"file{i:03d}.txt").write_bytes(os.urandom(512 + i * 16))
    return ctx


@pytest.fixture(scope="module")
def diyc_build(tmp_path_factory, build_context):
    if os.geteuid() != 0:
        pytest.skip("diyc build runs containers: it needs root")
    if not os.access(DIYC, os.X_OK):
        pytest.skip(f"diyc executable not found at {DIYC} (set DIYC_BIN)")
    root = tmp_path_factory.mktemp("diyc-build-root")

    # DIYC_SERVER=off: the build as the Python CLI runs it, and no server
    # left behind in this root
    env = dict(os.environ, DIYC_SERVER="off")

    def diyc(*args):
        return peers.check_output([DIYC, "--root", str(root), *map(str, args)], env=env)
    diyc("run", "--network", "none", "--rm", "busybox", "true")  # the built-in image
    diyc("tag", "busybox", "localhost/bbox")
    return diyc


@pytest.fixture(scope="module")
def podman():
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    from diyc.images.store import busybox_rootfs_tar
    with peers.podman(busybox_rootfs_tar()) as run:
        yield run


@pytest.mark.benchmark(group="build-cold")
def test_diyc_build_cold(benchmark, diyc_build, build_context):
    def cold():
        out = diyc_build("build", "-q", "--no-cache", "--network", "none", "-t", "bench:cold", build_context)
        assert out.stdout.startswith("sha256:")
    benchmark.pedantic(cold, rounds=5, iterations=1, warmup_rounds=1)
    assert diyc_build("run", "--network", "none", "--rm", "bench:cold").stdout == f"{FILES}\n"


@pytest.mark.benchmark(group="build-cold")
def test_podman_build_cold(benchmark, podman, build_context):
    def cold():
        podman("build", "-q", "--no-cache", "--network", "none", "-t", "bench:cold", build_context)
    benchmark.pedantic(cold, rounds=5, iterations=1, warmup_rounds=1)
    assert podman("run", "--rm", "--network", "none", "bench:cold").stdout == f"{FILES}\n"


@pytest.mark.benchmark(group="build-cached")
def test_diyc_build_cached(benchmark, diyc_build, build_context):
    first = diyc_build("build", "-q", "--network", "none", "-t", "bench:cached", build_context).stdout

    def cached():
        out = diyc_build("build", "-q", "--network", "none", "-t", "bench:cached", build_context)
        assert out.stdout == first  # every step from the cache: the same image
    benchmark.pedantic(cached, rounds=20, iterations=1, warmup_rounds=2)
    plain = diyc_build("build", "--progress", "plain", "--network", "none", build_context).stdout
    assert plain.count("CACHED") == 6


@pytest.mark.benchmark(group="build-cached")
def test_podman_build_cached(benchmark, podman, build_context):
    podman("build", "-q", "--network", "none", "-t", "bench:cached", build_context)

    def cached():
        podman("build", "-q", "--network", "none", "-t", "bench:cached", build_context)
    benchmark.pedantic(cached, rounds=5, iterations=1, warmup_rounds=1)
