"""Fixtures for the benchmarks, and a summary of median ratios against the peers.

Conventions:
* Comparable benchmarks share a pytest-benchmark ``group``.
* A benchmark whose name has ``crun`` or ``runc`` as a ``_``-separated word
  (``test_crun_run_true``) measures that peer; at the end of the session every
  benchmark in a group is divided by each peer's median in the same group.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks import peers

REPO = Path(__file__).resolve().parent.parent
PEER_RUNTIMES = ("crun", "runc", "skopeo", "podman")  # skopeo: skopeo copy + umoci unpack (pulls)

_BENCHMARKS_KEY = pytest.StashKey[list]()

try:
    import pytest_benchmark  # noqa: F401
except ImportError:
    # Lets a plain `pytest` in an environment without pytest-benchmark (say,
    # the unit-test venv) pass over this directory instead of failing on it.
    collect_ignore_glob = ["test_*.py"]


# --------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory):
    """Session scratch dir: rootfs, bundles and diyc's state all live here."""
    path = tmp_path_factory.mktemp("diyc-bench")
    yield path
    left = [line for line in _mountinfo() if str(path) in line]
    assert not left, "mounts left under the bench dir:\n" + "\n".join(left)


@dataclass(frozen=True)
class PeerEnv:
    rootfs: Path
    # Has its own (empty) network namespace, like `diyc run --network none`.
    bundle: Path
    # Shares the host network namespace.
    bundle_host_net: Path
    # Every peer container of this session has an ID starting with this.
    id_prefix: str


@pytest.fixture(scope="session")
def peer_env(bench_dir):
    if os.geteuid() != 0:
        pytest.skip("peer benchmarks need root: runc/crun run rootful containers here")
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed (needed as a peer and for `runc spec`)")
    if not os.path.exists(peers.BUSYBOX):
        pytest.skip(f"{peers.BUSYBOX} not found (apt-get install busybox-static)")

    rootfs = peers.build_busybox_rootfs(bench_dir / "rootfs")
    env = PeerEnv(
        rootfs=rootfs,
        bundle=peers.write_bundle(bench_dir / "bundle-netns", rootfs),
        bundle_host_net=peers.write_bundle(bench_dir / "bundle-hostnet", rootfs,
                                           network_namespace=False),
        id_prefix=f"diycbench-{os.getpid()}-",
    )
    yield env
    left = peers.leftovers(env.id_prefix)
    assert not left, "peer runs left these behind:\n" + "\n".join(left)


@pytest.fixture
def peer_server(peer_env):
    """Factory: ``peer_server("crun", bundle)`` returns a started PeerServer."""
    servers = []

    def start(runtime: str, bundle: Path) -> peers.PeerServer:
        if shutil.which(runtime) is None:
            pytest.skip(f"{runtime} is not installed")
        server = peers.PeerServer(runtime, bundle, peer_env.id_prefix)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.close()


@dataclass(frozen=True)
class DiycCli:
    path: Path
    env: dict

    def argv(self, *args: str) -> list[str]:
        return [str(self.path), *args]

    def run(self, *args: str) -> None:
        peers.run_command(self.argv(*args), env=self.env)


@pytest.fixture(scope="session")
def diyc(bench_dir):
    """The diyc console script, with its state confined to the session dir."""
    path = Path(os.environ.get("DIYC_BIN") or REPO / ".venv" / "bin" / "diyc")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"diyc executable not found at {path} (install diyc into {REPO}/.venv "
                    "or set DIYC_BIN)")
    # DIYC_SERVER=off: these time the command without a diyc server (and
    # start none); benchmarks/test_server.py times it with one.
    return DiycCli(path, {**os.environ, "DIYC_ROOT": str(bench_dir / "diyc-root"),
                          "DIYC_SERVER": "off"})


def _mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.rstrip("\n") for line in f]


# --------------------------------------------------------------------------
# Ratio summary


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_benchmark_group_stats(config, benchmarks, group_by):
    # Called once, when pytest-benchmark finishes the session; keep the flat
    # result dicts for the summary.  Results loaded for --benchmark-compare
    # carry the path of their JSON file; only this run's have path None.
    config.stash[_BENCHMARKS_KEY] = [b for b in benchmarks if b.get("path") is None]
    return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    # how busy the machine was (for benchmarks/report.md's caveat)
    machine_info["loadavg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, config):
    results = config.stash.get(_BENCHMARKS_KEY, [])
    lines = ratio_table(results)
    if not lines:
        return
    terminalreporter.write_sep("-", "median ratios against peers (<1.00x: faster than the peer)")
    for line in lines:
        terminalreporter.write_line(line)


def peer_of(name: str) -> str | None:
    words = re.split(r"[^a-z0-9]+", name.lower())
    return next((peer for peer in PEER_RUNTIMES if peer in words), None)


def ratio_table(results: list[dict]) -> list[str]:
    """Format each benchmark's median relative to the peers' in its group."""
    groups = defaultdict(list)
    for bench in results:
        if bench.get("median"):  # benchmarks that errored have no stats
            groups[bench.get("group") or "(no group)"].append(bench)

    lines = []
    for group in sorted(groups):
        benches = sorted(groups[group], key=lambda b: b["median"])
        refs = [b for b in benches if peer_of(b["name"])]
        ref_labels = [peer_of(b["name"]) for b in refs]
        if len(set(ref_labels)) != len(ref_labels):
            ref_labels = [b["name"] for b in refs]  # same peer twice: be explicit

        width = max(len(b["name"]) for b in benches) + 2
        header = f"{'group ' + group:<{width}}{'median':>11}"
        header += "".join(f"{'vs ' + label:>{max(12, len(label) + 5)}}" for label in ref_labels)
        lines.append(header)
        for bench in benches:
            row = f"  {bench['name']:<{width - 2}}{bench['median'] * 1e3:>8.2f} ms"
            for ref, label in zip(refs, ref_labels):
                cell = "-" if ref is bench else f"{bench['median'] / ref['median']:.2f}x"
                row += f"{cell:>{max(12, len(label) + 5)}}"
            lines.append(row)
        if not refs:
            lines.append("  (no crun/runc result in this group to compare with)")
    return lines
