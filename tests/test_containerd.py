"""containerd (Debian's 1.6) driving diyc-runc through its runc shim, as a
Kubernetes node would: `ctr run --runc-binary .venv/bin/diyc-runc`.  The
test starts its own containerd (root, state and socket in a temp dir) and
imports the busybox image from a `diyc save` archive."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import REPO, wait_for

DIYC_RUNC = os.environ.get("DIYC_RUNC") or str(REPO / ".venv" / "bin" / "diyc-runc")


@pytest.fixture(scope="module")
def ctr(run_cli):
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        pytest.skip("containerd is not installed (apt-get install containerd)")
    if not os.access(DIYC_RUNC, os.X_OK):
        pytest.skip(f"{DIYC_RUNC} not installed")
    d = tempfile.mkdtemp(prefix="diyc-ctrd-")
    sock = f"{d}/containerd.sock"
    with open(f"{d}/config.toml", "w") as f:
        f.write(f'version = 2\nroot = "{d}/root"\nstate = "{d}/state"\n'
                f'[grpc]\n  address = "{sock}"\n')
    # started through a shell that exits at once: containerd is not our child
    # (the suite checks that no child process outlives a test)
    out = subprocess.run(["sh", "-c", 'containerd --config "$1" >"$2" 2>&1 </dev/null & echo $!',
                          "sh", f"{d}/config.toml", f"{d}/containerd.log"],
                         capture_output=True, text=True, check=True)
    pid = int(out.stdout)

    def run(*args, check=True, timeout=60):
        proc = subprocess.run(["ctr", "--address", sock, *args], capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
        return proc
    try:
        wait_for(lambda: run("version", check=False).returncode == 0, timeout=30,
                 what=f"containerd (log: {d}/containerd.log)")
        run_cli("save", "-o", f"{d}/busybox.tar", "busybox:latest", check=True)
        run("image", "import", f"{d}/busybox.tar")
        yield run
    finally:
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
            if d in line.split()[4]:
                subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def test_ctr_run_exit_code(ctr):
    proc = ctr("run", "--rm", "--runc-binary", DIYC_RUNC, "busybox:latest", "c1",
               "sh", "-c", "echo hello from containerd; exit 3", check=False)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "hello from containerd\n"


def test_ctr_detached_exec_and_kill(ctr):
    ctr("run", "-d", "--runc-binary", DIYC_RUNC, "busybox:latest", "c2",
        "sh", "-c", "trap 'exit 9' TERM; while true; do sleep 0.1; done")
    try:
        wait_for(lambda: "RUNNING" in ctr("task", "ls").stdout, what="the task to run")
        proc = ctr("task", "exec", "--exec-id", "e1", "c2", "sh", "-c", "echo in-exec; exit 4",
                   check=False)
        assert proc.returncode == 4 and proc.stdout == "in-exec\n"
        ctr("task", "kill", "c2")
        wait_for(lambda: "STOPPED" in ctr("task", "ls").stdout, what="the task to stop")
    finally:
        ctr("task", "delete", "-f", "c2", check=False)
        ctr("container", "rm", "c2", check=False)
    assert "c2" not in ctr("task", "ls").stdout
