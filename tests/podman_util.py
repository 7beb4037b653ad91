"""podman with state of its own (storage, runroot, tmp under one short temp
dir) and the settings this machine needs (see ../shared/PEERS.md), for the
tests that check diyc against it."""

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

PODMAN_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


@contextlib.contextmanager
def private_podman(runtime, prefix="diyc-pm-", timeout=60):
    """-> run(*args, **subprocess.run kwargs): podman with its own state and
    `runtime` as its OCI runtime.  Everything it made is removed at the end
    (containers, images, its mounts, the temp dir)."""
    exe = shutil.which("podman")
    if exe is None:
        pytest.skip("podman is not installed (apt-get install -y podman)")
    short = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # podman: runroot < 50 chars
    conf = short / "containers.conf"
    conf.write_text(PODMAN_CONF)
    base = [exe, "--root", short / "storage", "--runroot", short / "runroot",
            "--tmpdir", short / "tmp", "--runtime", runtime]
    env = dict(os.environ, CONTAINERS_CONF=str(conf))

    def run(*args, **kwargs):
        return subprocess.run([*map(str, base), *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=timeout, **kwargs)
    try:
        yield run
    finally:
        run("rm", "-af")
        run("rmi", "-af")
        for mount in ("storage/overlay", "runroot", "storage"):
            subprocess.run(["umount", "-R", short / mount], capture_output=True)
        shutil.rmtree(short, ignore_errors=True)
