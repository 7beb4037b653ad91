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
import subprocess
from pathlib import Path

import pytest

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


def _run(argv, env=None):
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}: {p.stdout[-2000:]} {p.stderr[-2000:]}")
    return p


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
        return _run([DIYC, "--root", str(root), *map(str, args)], env=env)
    diyc("run", "--network", "none", "--rm", "busybox", "true")  # the built-in image
    diyc("tag", "busybox", "localhost/bbox")
    return diyc


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    from diyc.images.store import busybox_rootfs_tar
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="diyc-pbb-", dir="/tmp"))  # podman: runroot < 50 chars
    (d / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    (d / "busybox.tar").write_bytes(busybox_rootfs_tar())
    env = dict(os.environ, CONTAINERS_CONF=str(d / "containers.conf"))
    base = ["podman", "--root", str(d / "storage"), "--runroot", str(d / "runroot"),
            "--tmpdir", str(d / "tmp"), "--runtime", shutil.which("runc")]

    def run(*args):
        return _run(base + [str(a) for a in args], env=env)
    run("import", "-q", str(d / "busybox.tar"), "localhost/bbox")
    try:
        yield run
    finally:
        subprocess.run(base + ["rm", "-af"], env=env, capture_output=True)
        subprocess.run(base + ["rmi", "-af"], env=env, capture_output=True)
        for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
            if str(d) in line.split()[4]:
                subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


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
