"""Kubernetes pods on diyc: a private containerd whose CRI plugin has the
RuntimeClass handlers `runc` and `diyc` (containerd-shim-runc-v2 driving
diyc-runc), driven with crictl as the kubelet would drive it.  Pod
networking is CNI's bridge + portmap on a test subnet; the images (a static
pause program, busybox-static) are built here and imported, no registry."""

import json
import os
import subprocess
import urllib.request

import pytest

import cri_util
from conftest import read_pty, wait_for

pytestmark = pytest.mark.skipif(cri_util.missing() is not None,
                                reason=cri_util.missing() or "")


@pytest.fixture(scope="module")
def cri():
    d = cri_util.tempdir()
    ctd = cri_util.Containerd(f"{d}/containerd")
    try:
        os.makedirs(f"{d}/images")
        layout = cri_util.build_images(f"{d}/images")
        ctd.start()
        ctd.import_layout(layout, {"pause": cri_util.PAUSE_IMAGE,
                                   "busybox": cri_util.BUSYBOX_IMAGE,
                                   "webserver": "diyc.test/webserver:1"})
        ctd.configs = f"{d}/configs"
        os.makedirs(ctd.configs)
        yield ctd
    finally:
        ctd.stop()
        import shutil
        shutil.rmtree(d, ignore_errors=True)
    assert cri_util.cgroups_of_pods() == []
    assert not os.path.exists(f"/sys/class/net/{cri_util.BRIDGE}")
    assert cri_util.leftovers(ctd) == []


class Pod:
    """A pod sandbox made with `crictl runp --runtime HANDLER`, removed on exit."""

    def __init__(self, cri, name, handler="diyc", **kw):
        self.cri, self.name = cri, name
        self.config = cri_util.pod_config(f"{cri.configs}/{name}-pod.json", name, **kw)
        self.id = cri.crictl("runp", "--runtime", handler, self.config).stdout.strip()

    def container(self, name, args, image=cri_util.BUSYBOX_IMAGE, start=True, **kw):
        path = cri_util.container_config(f"{self.cri.configs}/{self.name}-{name}.json", name, args,
                                         image, **kw)
        cid = self.cri.crictl("create", self.id, path, self.config).stdout.strip()
        if start:
            self.cri.crictl("start", cid)
        return cid

    def inspect(self, cid):
        return json.loads(self.cri.crictl("inspect", cid).stdout)["status"]

    def ip(self):
        return json.loads(self.cri.crictl("inspectp", self.id).stdout)["status"]["network"]["ip"]

    def remove(self):
        self.cri.crictl("stopp", self.id)
        self.cri.crictl("rmp", self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.cri.crictl("inspectp", self.id, check=False).returncode == 0:
            self.cri.crictl("stopp", self.id, check=False)
            self.cri.crictl("rmp", "-f", self.id, check=False)


def runtime(cri, handler, *args):
    """The handler's binary on the state root the shim gives it."""
    binary = {"runc": "runc", "diyc": cri.diyc_runc}[handler]
    return subprocess.run([binary, "--root", f"{cri.d}/{handler}-root/k8s.io", *args],
                          capture_output=True, text=True, timeout=60)


def runtime_state(cri, handler, cid):
    proc = runtime(cri, handler, "state", cid)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _pod_cgroups(pod_id):
    return [p for p in cri_util.cgroups_of_pods() if os.path.basename(p) == pod_id]


@pytest.mark.parametrize("handler", ["runc", "diyc"])
def test_pod_lifecycle(cri, handler):
    """runp, create, start, exec, logs, pod IP, stop (the exit seen by
    containerd), stop and remove the pod: every step, with either handler."""
    pod = Pod(cri, f"life-{handler}", handler)
    with pod:
        cid = pod.container("main", ["sh", "-c", "echo started; trap 'echo bye; exit 7' TERM; "
                                                 "while true; do sleep 0.1; done"])
        wait_for(lambda: pod.inspect(cid)["state"] == "CONTAINER_RUNNING", what="running")
        out = cri.crictl("exec", cid, "sh", "-c", "echo in-exec $(cat /proc/1/comm); exit 0")
        assert out.stdout == "in-exec sh\n"
        failed = cri.crictl("exec", cid, "sh", "-c", "exit 5", check=False)
        assert failed.returncode != 0 and "exit code 5" in failed.stderr
        ip = pod.ip()
        assert ip.startswith("10.252.7."), ip
        out = cri.crictl("exec", cid, "ip", "-4", "-o", "addr", "show", "eth0")
        assert f"inet {ip}/24" in out.stdout
        wait_for(lambda: "started" in cri.crictl("logs", cid).stdout, what="the log line")
        # the init is the shim's child (a subreaper's): the shim reaps it
        pid = json.loads(cri.crictl("inspect", cid).stdout)["info"]["pid"]
        with open(f"/proc/{pid}/status") as f:
            ppid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
        with open(f"/proc/{ppid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[0].endswith(b"containerd-shim-runc-v2")
        assert runtime_state(cri, handler, cid)["status"] == "running"
        cri.crictl("stop", "--timeout", "20", cid)
        status = pod.inspect(cid)
        assert status["state"] == "CONTAINER_EXITED"
        assert status["exitCode"] == 7
        # containerd saw the exit and had the runtime delete the container
        gone = runtime(cri, handler, "state", cid)
        assert gone.returncode != 0 and "does not exist" in gone.stderr
        assert cri.crictl("logs", cid).stdout == "started\nbye\n"
        pod.remove()
    assert cri.crictl("inspectp", pod.id, check=False).returncode != 0
    assert _pod_cgroups(pod.id) == []


def test_pod_stop_with_container_running(cri):
    """StopPodSandbox kills what still runs (kill of a container that ended
    meanwhile must read as 'not running' to the shim), then the pod goes."""
    with Pod(cri, "stopall") as pod:
        cid = pod.container("sleeper", ["sleep", "1000"])
        quick = pod.container("quick", ["true"])
        wait_for(lambda: pod.inspect(quick)["state"] == "CONTAINER_EXITED", what="quick's exit")
        assert pod.inspect(quick)["exitCode"] == 0
        pod.remove()
        assert cri.crictl("inspect", cid, check=False).returncode != 0


def test_exec_with_terminal(cri):
    """crictl exec -t: exec --process with process.terminal and a console socket."""
    with Pod(cri, "tty") as pod:
        cid = pod.container("main", ["sleep", "1000"])
        # crictl wants a terminal on its side too: give it a pty of ours
        master, slave = os.openpty()
        try:
            proc = subprocess.run([cri_util.CRICTL, "--runtime-endpoint", f"unix://{cri.sock}",
                                   "exec", "-it", cid, "sh", "-c", "tty; exit 3"],
                                  stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True,
                                  timeout=60)
            os.close(slave)
            seen = read_pty(master, timeout=30)  # (to EIO: every slave end is closed)
        finally:
            os.close(master)
        assert seen.replace(b"\r", b"").startswith(b"/dev/pts/"), (seen, proc.stderr)
        assert "exit code 3" in proc.stderr
        out = cri.crictl("exec", "-i", cid, "cat", input="through stdin\n")
        assert out.stdout == "through stdin\n"


def test_containers_share_the_pod_network(cri):
    """Two containers of one pod: one serves HTTP on 127.0.0.1, the other
    reaches it (both joined the sandbox's network namespace by path)."""
    with Pod(cri, "shared-net") as pod:
        server = pod.container("server", ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/var/www"])
        wait_for(lambda: cri.crictl("exec", server, "sh", "-c", "netstat -ltn | grep -q :8080",
                                    check=False).returncode == 0, what="the server to listen")
        client = pod.container("client", ["sh", "-c", "wget -qO- http://127.0.0.1:8080/index.html"])
        wait_for(lambda: pod.inspect(client)["state"] == "CONTAINER_EXITED", what="the client")
        assert pod.inspect(client)["exitCode"] == 0
        assert cri.crictl("logs", client).stdout == "hello from diyc\n"
        # and the two share uts and ipc but not the pid namespace (pod default)
        a = [cri.crictl("exec", server, "readlink", f"/proc/self/ns/{ns}").stdout.strip()
             for ns in ("uts", "net")]
        b = cri.crictl("exec", server, "hostname").stdout.strip()
        assert b == "shared-net"
        sandbox_pid = json.loads(cri.crictl("inspectp", pod.id).stdout)["info"]["pid"]
        own = [os.readlink(f"/proc/{sandbox_pid}/ns/{ns}") for ns in ("uts", "net")]
        assert a == own


def test_shared_pid_namespace(cri):
    """namespace_options.pid = POD: the containers join the sandbox's pid
    namespace by path; the pause program is pid 1 there."""
    with Pod(cri, "shared-pid", pid_shared=True) as pod:
        cid = pod.container("main", ["sleep", "1000"], pid_shared=True)
        out = cri.crictl("exec", cid, "cat", "/proc/1/cmdline").stdout
        assert out.startswith("/pause")


def test_port_mapping_from_loopback(cri):
    """portmap: the pod's port 80 published on 127.0.0.1:HOSTPORT only."""
    from registry_util import free_port
    port = free_port()
    with Pod(cri, "ports", port=(80, port)) as pod:
        pod.container("web", ["httpd", "-f", "-p", "80", "-h", "/var/www"],
                      image="diyc.test/webserver:1")

        def fetch():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
                    return r.read()
            except OSError:
                return None
        wait_for(lambda: fetch() is not None, timeout=20, what="the published port")
        assert fetch() == b"hello from diyc\n"


def test_oom_reported_to_cri(cri):
    """A container over its memory limit is OOM-killed, and CRI says so."""
    with Pod(cri, "oom") as pod:
        cid = pod.container("hog", ["sh", "-c", "tail /dev/zero"], memory=32 << 20)
        wait_for(lambda: pod.inspect(cid)["state"] == "CONTAINER_EXITED", timeout=30,
                 what="the OOM kill")
        status = pod.inspect(cid)
        assert status["reason"] == "OOMKilled", status
        assert status["exitCode"] == 137


@pytest.mark.parametrize("handler", [
    "runc",
    "diyc",
])
def test_init_that_cannot_exec_fails_at_create(cri, handler):
    """A program that does not exist: the runtime's `create` (which CRI runs
    in StartContainer) fails and says why; the container never runs."""
    with Pod(cri, f"noexec-{handler}", handler) as pod:
        cid = pod.container("bad", ["/no/such/program"], start=False)
        proc = cri.crictl("start", cid, check=False)
        assert proc.returncode != 0, "a program that does not exist was started"
        assert "/no/such/program" in proc.stderr, proc.stderr
        assert pod.inspect(cid)["state"] != "CONTAINER_RUNNING"

def _memory_limit(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                with open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes") as g:
                    return int(g.read())
    raise AssertionError(f"pid {pid} is in no memory cgroup")


def test_update_resources_and_stats(cri):
    """UpdateContainerResources (diyc-runc update --resources -), and the
    stats and process list containerd reads of a diyc container."""
    with Pod(cri, "update") as pod:
        cid = pod.container("main", ["sleep", "1000"], memory=64 << 20)
        pid = json.loads(cri.crictl("inspect", cid).stdout)["info"]["pid"]
        assert _memory_limit(pid) == 64 << 20
        cri.crictl("update", "--memory", str(96 << 20), cid)
        assert _memory_limit(pid) == 96 << 20
        stats = json.loads(cri.crictl("stats", "-o", "json", "--id", cid).stdout)["stats"]
        assert int(stats[0]["memory"]["workingSetBytes"]["value"]) > 0
        task_pids = cri.ctr("task", "ps", cid).stdout
        assert str(pid) in task_pids.split()
        events = runtime(cri, "diyc", "events", "--stats", cid)
        stats = json.loads(events.stdout)
        assert stats["type"] == "stats" and stats["id"] == cid
        assert stats["data"]["memory"]["usage"]["limit"] == 96 << 20
        assert stats["data"]["pids"]["current"] >= 1
