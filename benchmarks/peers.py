"""Run the peer OCI runtimes (runc, crun) so diyc can be compared with them.

Library code only: no pytest dependency, so it can be used from a REPL or a
script as well as from the benchmark suite.

Timing model
------------
Each container start is one ``<runtime> run --bundle B ID`` process, timed
from spawn to exit with ``time.perf_counter``.  The loop that spawns them runs
in a long-lived helper process (``PeerServer``), because on hybrid-cgroup
hosts crun only works inside a private mount namespace with the cgroup2
"unified" mount removed, and creating that namespace must not be part of the
measurement.  The client asks for one run per line on the helper's stdin and
waits for a one-line JSON reply, so a client-side measurement of a request is
the runtime's wall time plus one pipe round trip (tens of microseconds, and
reported separately by the benchmarks so it can be checked).

This file is also the helper's program: ``python peers.py serve ...``.  It
must therefore keep to the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSYBOX = "/bin/busybox"
CGROUP_ROOT = Path("/sys/fs/cgroup")
UNIFIED_MOUNT = CGROUP_ROOT / "unified"

# Used if `busybox --list-full` is unavailable; enough for the benchmarks and
# for poking around in a container by hand.
FALLBACK_APPLETS = ("sh", "true", "false", "echo", "cat", "ls", "id",
                    "hostname", "sleep", "ps", "mount", "env")

# The start benchmarks' rounds (start-none, server-run, oci-run)
ROUNDS = 30
WARMUP_ROUNDS = 3

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class PeerError(RuntimeError):
    """A peer runtime (or its helper process) failed."""


# --------------------------------------------------------------------------
# Image and bundle


def build_busybox_rootfs(dest: str | os.PathLike, busybox: str = BUSYBOX) -> Path:
    """Create a minimal busybox root filesystem in ``dest`` and return its path.

    ``busybox`` must be statically linked: nothing else (no libc) is copied.
    """
    root = Path(dest)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "etc", "root", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(busybox, root / "bin" / "busybox")

    for rel in _applet_paths(busybox):
        link = root / rel
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        # Absolute target: it resolves against the container's root, not ours.
        link.symlink_to("/bin/busybox")

    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


def _applet_paths(busybox: str) -> list[str]:
    try:
        out = subprocess.run([busybox, "--list-full"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return [f"bin/{name}" for name in FALLBACK_APPLETS]
    paths = [line.strip().lstrip("/") for line in out.splitlines() if line.strip()]
    # Guard against odd output ever producing a path outside the rootfs.
    return [p for p in paths if ".." not in Path(p).parts]


def write_bundle(bundle: str | os.PathLike, rootfs: str | os.PathLike, *,
                 args: list[str] | None = None, network_namespace: bool = True) -> Path:
    """Write an OCI bundle (``config.json``) in ``bundle`` that runs ``args``.

    The config comes from ``runc spec`` so that it is exactly the default a
    runc user gets; only the fields the benchmarks depend on are changed.
    The root path is absolute, so several bundles can share one rootfs (it is
    mounted read-only, as in the ``runc spec`` default).
    """
    bundle = Path(bundle)
    bundle.mkdir(parents=True, exist_ok=True)
    config_path = bundle / "config.json"
    config_path.unlink(missing_ok=True)  # `runc spec` refuses to overwrite
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True,
                   capture_output=True)

    config = json.loads(config_path.read_text())
    config["root"]["path"] = str(Path(rootfs).resolve())
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args or ["/bin/true"])
    if not network_namespace:
        namespaces = config["linux"]["namespaces"]
        config["linux"]["namespaces"] = [ns for ns in namespaces if ns["type"] != "network"]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return bundle


# --------------------------------------------------------------------------
# Generic command timing (used for diyc itself)


def run_command(argv: list[str], env: dict[str, str] | None = None,
                timeout: float = 60) -> None:
    """Run ``argv`` to completion; raise PeerError with its stderr if it fails.

    Output handling mirrors the peer helper (stdout discarded, stderr
    captured) so that diyc and the peers pay the same I/O costs.
    """
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise PeerError(f"{shlex.join(argv)} exited with {proc.returncode}: "
                        f"{proc.stderr.decode(errors='replace').strip()}")


def check_output(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` to completion, its output captured as text; raise
    PeerError with the end of both if it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise PeerError(f"{shlex.join(argv)} exited with {proc.returncode}: "
                        f"{proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    return proc


def time_command(argv: list[str], n: int, env: dict[str, str] | None = None) -> list[float]:
    """Run ``argv`` ``n`` times; return each run's wall time in seconds."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run_command(argv, env=env)
        times.append(time.perf_counter() - t0)
    return times


# --------------------------------------------------------------------------
# Peer runtimes


def unified_cgroup_is_hybrid() -> bool:
    """True if cgroup v1 controllers coexist with a cgroup2 mount at .../unified.

    That is the layout crun 1.8 rejects ("cgroups in hybrid mode not
    supported"); on pure v1 or pure v2 hosts crun needs no workaround.
    """
    if not os.path.ismount(UNIFIED_MOUNT):
        return False
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1] == str(UNIFIED_MOUNT) and fields[2] == "cgroup2":
                return True
    return False


class PeerServer:
    """A helper process that runs ``<runtime> run`` once per request.

    Use as a context manager.  Container IDs are ``<id_prefix><runtime>-<token>-<n>``
    so that leftovers of a session can be found by prefix.
    """

    def __init__(self, runtime: str, bundle: str | os.PathLike, id_prefix: str):
        if runtime not in ("runc", "crun"):
            raise ValueError(f"unsupported runtime {runtime!r}")
        self.runtime = runtime
        self.bundle = Path(bundle).resolve()
        self.id_prefix = f"{id_prefix}{runtime}-{secrets.token_hex(2)}-"
        # Per-run wall times measured inside the helper, without the pipe.
        self.timings: list[float] = []
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    def _argv(self) -> list[str]:
        serve = [sys.executable, "-I", "-S", str(Path(__file__).resolve()), "serve",
                 "--runtime", self.runtime, "--bundle", str(self.bundle),
                 "--id-prefix", self.id_prefix]
        if self.runtime == "crun" and unified_cgroup_is_hybrid():
            # The namespace is private, so the umount is invisible to the host.
            script = f"umount {shlex.quote(str(UNIFIED_MOUNT))} && exec \"$@\""
            return ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                    "sh", *serve, "--scrub-unified"]
        return serve

    def start(self) -> "PeerServer":
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(self._argv(), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr)
        # Wait for the helper to be ready, so that its start-up (and any
        # failure to set up the namespace) is not attributed to the first run.
        self._read_reply()
        return self

    def run_once(self) -> float:
        """Start one container; return the runtime's wall time in seconds."""
        if self._proc is None:
            raise PeerError("PeerServer not started")
        self._proc.stdin.write(b"run\n")
        self._proc.stdin.flush()
        reply = self._read_reply()
        if reply["rc"] != 0:
            raise PeerError(f"{self.runtime} run {reply['id']} exited with {reply['rc']}: "
                            f"{reply['stderr'].strip()}")
        self.timings.append(reply["elapsed"])
        return reply["elapsed"]

    def start_sleeper(self, bundle) -> None:
        """Start a long-running container (from `bundle`) for exec_once."""
        self._proc.stdin.write(f"sleeper {Path(bundle).resolve()}\n".encode())
        self._proc.stdin.flush()
        reply = self._read_reply()
        if reply["rc"] != 0:
            raise PeerError(f"{self.runtime} run --detach: {reply['stderr'].strip()}")

    def exec_once(self) -> float:
        """`<runtime> exec SLEEPER /bin/true`; the runtime's wall time."""
        self._proc.stdin.write(b"exec\n")
        self._proc.stdin.flush()
        reply = self._read_reply()
        if reply["rc"] != 0:
            raise PeerError(f"{self.runtime} exec exited with {reply['rc']}: {reply['stderr'].strip()}")
        self.timings.append(reply["elapsed"])
        return reply["elapsed"]

    def _read_reply(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=10)
            raise PeerError(f"{self.runtime} helper exited with {self._proc.returncode}: "
                            f"{self._helper_stderr()}")
        return json.loads(line)

    def _helper_stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def close(self) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        proc.stdin.close()  # EOF tells the helper to clean up and exit
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise PeerError(f"{self.runtime} helper did not exit")
        finally:
            proc.stdout.close()
        stderr = self._helper_stderr()
        self._stderr.close()
        if rc != 0:
            raise PeerError(f"{self.runtime} helper exited with {rc}: {stderr}")

    def __enter__(self) -> "PeerServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def time_peer(runtime: str, bundle: str | os.PathLike, n: int,
              id_prefix: str = "diycbench-") -> list[float]:
    """Start ``n`` containers with ``runtime``; return each run's wall time in seconds."""
    with PeerServer(runtime, bundle, id_prefix) as server:
        for _ in range(n):
            server.run_once()
    return server.timings


def time_runc(bundle: str | os.PathLike, n: int, id_prefix: str = "diycbench-") -> list[float]:
    return time_peer("runc", bundle, n, id_prefix)


def time_crun(bundle: str | os.PathLike, n: int, id_prefix: str = "diycbench-") -> list[float]:
    return time_peer("crun", bundle, n, id_prefix)


def bench_peer(benchmark, server: PeerServer) -> None:
    """Time ``server.run_once`` with a pytest-benchmark fixture; the
    runtime's own median (inside the helper: without the pipe) and the ids'
    prefix go to its extra_info."""
    benchmark.pedantic(server.run_once, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP_ROUNDS)
    runtime_times = server.timings[-ROUNDS:]  # the timed rounds come after the warm-up
    benchmark.extra_info["runtime_median_s"] = statistics.median(runtime_times)
    benchmark.extra_info["id_prefix"] = server.id_prefix


def peer_run_benchmark(runtime: str):
    """The benchmark of ``<runtime> run`` on the session's bundle (the
    peer_env and peer_server fixtures of benchmarks/conftest.py), for a test
    module to name and mark:
    ``test_crun_run_true = pytest.mark.benchmark(group="start-none")(peer_run_benchmark("crun"))``."""
    def bench(benchmark, peer_env, peer_server):
        bench_peer(benchmark, peer_server(runtime, peer_env.bundle))
    return bench


# --------------------------------------------------------------------------
# podman (the peer of builds and of bridge networking)

PODMAN_CONF = ('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
               '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')


@contextlib.contextmanager
def podman(image_tar: bytes, image: str = "localhost/bbox"):
    """podman (Debian's, with runc and cgroupfs, as shared/PEERS.md sets it
    up) with all its state in a fresh directory under /tmp (its runroot's
    path must stay under 50 characters), the flat rootfs tarball
    ``image_tar`` imported as ``image``.  Yields ``run(*args)`` ->
    CompletedProcess (PeerError if podman fails); at the end its containers,
    images, mounts and directory are removed."""
    d = Path(tempfile.mkdtemp(prefix="diyc-pbb-", dir="/tmp"))
    (d / "containers.conf").write_text(PODMAN_CONF)
    (d / "busybox.tar").write_bytes(image_tar)
    env = dict(os.environ, CONTAINERS_CONF=str(d / "containers.conf"))
    base = ["podman", "--root", str(d / "storage"), "--runroot", str(d / "runroot"),
            "--tmpdir", str(d / "tmp"), "--runtime", shutil.which("runc")]

    def run(*args):
        return check_output(base + [str(a) for a in args], env=env)
    try:
        run("import", "-q", str(d / "busybox.tar"), image)
        yield run
    finally:
        subprocess.run(base + ["rm", "-af"], env=env, capture_output=True)
        subprocess.run(base + ["rmi", "-af"], env=env, capture_output=True)
        with open("/proc/self/mountinfo") as mountinfo:
            mounts = [line.split()[4] for line in mountinfo]
        for mount in reversed(mounts):
            if str(d) in mount:
                subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------
# Leftover detection


def leftovers(id_prefix: str) -> list[str]:
    """Describe anything left behind by containers whose ID starts with ``id_prefix``."""
    found = []
    for runtime in ("runc", "crun"):
        if shutil.which(runtime) is None:
            continue
        proc = subprocess.run([runtime, "list", "-q"], capture_output=True, text=True)
        found += [f"{runtime} container {cid}" for cid in proc.stdout.split()
                  if cid.startswith(id_prefix)]
        state_dir = Path("/run") / runtime
        if state_dir.is_dir():
            found += [f"state dir {p}" for p in state_dir.glob(f"{id_prefix}*")]

    for dirpath, dirnames, _ in os.walk(CGROUP_ROOT):
        found += [f"cgroup {dirpath}/{d}" for d in dirnames if d.startswith(id_prefix)]

    with open("/proc/self/mountinfo") as mountinfo:
        found += [f"mount {line.strip()}" for line in mountinfo if id_prefix in line]

    found += [f"hidden crun cgroup dir {p}" for p in _hidden_unified_entries(id_prefix)]
    return found


def _hidden_unified_entries(id_prefix: str) -> list[str]:
    """Entries under the unified mount point on the underlying tmpfs.

    crun run in the unshared namespace creates ``unified/<id>/cgroup.procs`` in
    the tmpfs below the (unmounted there) cgroup2 mount; on the host they are
    hidden by the mount, so they can only be seen from such a namespace.
    """
    if not unified_cgroup_is_hybrid() or shutil.which("unshare") is None:
        return []
    script = f"umount {shlex.quote(str(UNIFIED_MOUNT))} && ls -A {shlex.quote(str(UNIFIED_MOUNT))}"
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True)
    return [str(UNIFIED_MOUNT / name) for name in proc.stdout.split() if name.startswith(id_prefix)]


# --------------------------------------------------------------------------
# Helper process


def _serve(runtime: str, bundle: str, id_prefix: str, scrub_unified: bool) -> int:
    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    used_ids = []
    sleeper = None
    try:
        reply({"ready": True})
        n = 0
        while line := sys.stdin.readline():
            request = line.split()
            if request[:1] == ["sleeper"]:
                # a long-running container to exec into: `sleeper BUNDLE`
                sleeper = f"{id_prefix}sleeper"
                used_ids.append(sleeper)
                # the container inherits stdio: a pipe would never see EOF
                with tempfile.TemporaryFile() as err:
                    proc = subprocess.run([runtime, "run", "--detach", "--bundle", request[1],
                                           sleeper], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=err)
                    err.seek(0)
                    reply({"id": sleeper, "rc": proc.returncode, "elapsed": 0.0,
                           "stderr": err.read().decode(errors="replace")[-4000:]})
                continue
            if request[:1] == ["exec"]:
                t0 = time.perf_counter()
                proc = subprocess.run([runtime, "exec", sleeper, "/bin/true"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
                reply({"id": sleeper, "rc": proc.returncode, "elapsed": time.perf_counter() - t0,
                       "stderr": proc.stderr.decode(errors="replace")[-4000:]})
                continue
            cid = f"{id_prefix}{n}"
            n += 1
            used_ids.append(cid)
            t0 = time.perf_counter()
            proc = subprocess.run([runtime, "run", "--bundle", bundle, cid],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
            elapsed = time.perf_counter() - t0
            reply({"id": cid, "rc": proc.returncode, "elapsed": elapsed,
                   "stderr": proc.stderr.decode(errors="replace")[-4000:]})
    finally:
        if sleeper:
            subprocess.run([runtime, "delete", "--force", sleeper], capture_output=True)
        if scrub_unified:
            _scrub_unified(used_ids)
    return 0


def _scrub_unified(ids: list[str]) -> None:
    # Only ever delete from the bare tmpfs: if the cgroup2 filesystem is
    # mounted here, we are not in the namespace we think we are in.
    if os.path.ismount(UNIFIED_MOUNT):
        print(f"not scrubbing {UNIFIED_MOUNT}: still a mount point", file=sys.stderr)
        return
    for cid in ids:
        shutil.rmtree(UNIFIED_MOUNT / cid, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="helper process: one container run per stdin line")
    serve.add_argument("--runtime", required=True, choices=("runc", "crun"))
    serve.add_argument("--bundle", required=True)
    serve.add_argument("--id-prefix", required=True)
    serve.add_argument("--scrub-unified", action="store_true",
                       help="remove crun's stray dirs under the unmounted unified cgroup on exit")

    bench = sub.add_parser("bench", help="quick stand-alone comparison of runc and crun")
    bench.add_argument("-n", type=int, default=20)
    bench.add_argument("--no-netns", action="store_true")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args.runtime, args.bundle, args.id_prefix, args.scrub_unified)

    with tempfile.TemporaryDirectory(prefix="diyc-peers-") as tmp:
        rootfs = build_busybox_rootfs(Path(tmp) / "rootfs")
        bundle = write_bundle(Path(tmp) / "bundle", rootfs, network_namespace=not args.no_netns)
        for runtime in ("crun", "runc"):
            times = time_peer(runtime, bundle, args.n)
            print(f"{runtime}: median {statistics.median(times) * 1e3:.2f} ms "
                  f"(min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f}, n={args.n})")
    left = leftovers("diycbench-")
    for item in left:
        print(f"left behind: {item}", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
