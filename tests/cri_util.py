"""Test helpers for the Kubernetes node runtime: a private containerd (Debian's
1.6) whose CRI plugin has two RuntimeClass handlers, `runc` and `diyc`
(containerd-shim-runc-v2 driving diyc-runc), CNI pod networking on a test
subnet, images built here from Debian packages (a static C pause program,
busybox-static), and crictl to drive it.

Everything lives in one work directory; stop() removes what containerd and
CNI made outside it (the bridge, cni-* network namespaces, iptables chains
of the portmap plugin) and restores net.ipv4.ip_forward."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CNI_BIN = "/usr/lib/cni"
# crictl and critest, built from ../shared/conformance/cri-tools-v1.26.1.tar.gz
# by scripts/build-cri-tools.sh
CRI_TOOLS = os.environ.get("DIYC_CRI_TOOLS") or "/var/tmp/diyc-cri-tools"
CRICTL = f"{CRI_TOOLS}/crictl"
CRITEST = f"{CRI_TOOLS}/critest"
BRIDGE = "cricni0"  # (not diyc*: diyc counts its own bridges by that prefix)
SUBNET = "10.252.7.0/24"
PAUSE_IMAGE = "diyc.test/pause:1"
BUSYBOX_IMAGE = "diyc.test/busybox:1"
HANDLERS = ("runc", "diyc")

PAUSE_C = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void done(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGTERM, done);
    signal(SIGINT, done);
    signal(SIGCHLD, reap);   /* the init of a shared-pid pod */
    for (;;) pause();
}
"""


def missing():
    """Why the CRI tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the CRI tests run a containerd: they need root"
    for tool in ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "umoci", "skopeo", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install.sh installs it)"
    if not os.path.exists(f"{CNI_BIN}/bridge"):
        return f"{CNI_BIN}/bridge not found (apt-get install containernetworking-plugins)"
    if not os.access(CRICTL, os.X_OK):
        return f"{CRICTL} not built (scripts/build-cri-tools.sh builds crictl and critest)"
    if not os.path.exists("/bin/busybox"):
        return "/bin/busybox not found (apt-get install busybox-static)"
    return None


def diyc_runc_wrapper(path):
    """A diyc-runc the shim can exec: the tests' package (DIYC_PKG_DIR, else
    this checkout's venv, else this checkout's sources)."""
    pkg = os.environ.get("DIYC_PKG_DIR")
    venv = os.path.join(REPO, ".venv", "bin", "diyc-runc")
    if not pkg and os.access(venv, os.X_OK):
        return venv
    pkg = pkg or REPO
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec {sys.executable} -I -c 'import sys; sys.path.insert(0, "
                f"\"{pkg}\"); from diyc.oci.runc_cli import main; sys.exit(main())' \"$@\"\n")
    os.chmod(path, 0o755)
    return path


# -- images -------------------------------------------------------------------

def _run(*args, **kw):
    proc = subprocess.run(args, capture_output=True, text=True, **kw)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return proc.stdout


def busybox_tree(d):
    """A rootfs like the e2e busybox image: busybox-static and a link per applet."""
    os.makedirs(f"{d}/bin")
    shutil.copy("/bin/busybox", f"{d}/bin/busybox")
    for applet in _run("/bin/busybox", "--list").split():
        if applet != "busybox":
            os.symlink("busybox", f"{d}/bin/{applet}")
    if not os.path.lexists(f"{d}/bin/pgrep"):  # Debian's busybox-static has no pgrep applet
        with open(f"{d}/bin/pgrep", "w") as f:
            f.write("#!/bin/sh\n# pgrep NAME: the pids of the processes called NAME\n"
                    "ps -o pid,comm | awk -v name=\"$1\" "
                    "'NR > 1 && $2 == name { print $1; found = 1 } END { exit !found }'\n")
        os.chmod(f"{d}/bin/pgrep", 0o755)
    for sub in ("etc", "tmp", "proc", "sys", "dev", "var/www", "root"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
    with open(f"{d}/etc/passwd", "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(f"{d}/etc/group", "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    with open(f"{d}/var/www/index.html", "w") as f:
        f.write("hello from diyc\n")


def build_images(workdir):
    """OCI layout `workdir/layout` with tags pause, busybox (and webserver: busybox
    serving /var/www over HTTP on port 80); returns the layout path."""
    layout = f"{workdir}/layout"
    _run("umoci", "init", "--layout", layout)
    pause_dir = f"{workdir}/pause-root"
    os.makedirs(pause_dir)
    with open(f"{workdir}/pause.c", "w") as f:
        f.write(PAUSE_C)
    _run("gcc", "-static", "-Os", "-o", f"{pause_dir}/pause", f"{workdir}/pause.c")
    bb = f"{workdir}/busybox-root"
    busybox_tree(bb)
    for tag, tree, config in (
            ("pause", pause_dir, ["--config.entrypoint", "/pause"]),
            ("busybox", bb, ["--config.cmd", "sh", "--config.env", "PATH=/bin"]),
            ("webserver", bb, ["--config.cmd", "httpd", "--config.cmd", "-f", "--config.cmd", "-p",
                               "--config.cmd", "80", "--config.cmd", "-h", "--config.cmd", "/var/www",
                               "--config.env", "PATH=/bin", "--config.exposedports", "80/tcp"])):
        _run("umoci", "new", "--image", f"{layout}:{tag}")
        _run("umoci", "insert", "--image", f"{layout}:{tag}", tree, "/")
        _run("umoci", "config", "--image", f"{layout}:{tag}", "--os", "linux",
             "--architecture", "amd64", *config)
    return layout


# -- containerd ---------------------------------------------------------------

CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
plugin_dir = ""
oom_score = 0
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{d}/runc-root"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.diyc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.diyc.options]
        BinaryName = "{diyc}"
        Root = "{d}/diyc-root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{d}/cni"
    max_conf_num = 1
{registry}"""

CNI_CONF = {
    "cniVersion": "0.4.0",
    "name": "diyc-cri-test",
    "plugins": [
        {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def _netns_names():
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def _nat_chains():
    proc = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True)
    return {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("-N ")}


class Containerd:
    """`containerd --config` with everything under `workdir`; crictl() and ctr()
    talk to it.  registry: a 127.0.0.1:PORT to pull from over plain HTTP."""

    def __init__(self, workdir, registry=None):
        self.d = str(workdir)
        self.sock = f"{self.d}/containerd.sock"
        self.pid = None
        self.registry = registry
        os.makedirs(f"{self.d}/cni", exist_ok=True)
        self.diyc_runc = diyc_runc_wrapper(f"{self.d}/diyc-runc")
        # what was there before: stop() removes only what came after
        self.netns_before = _netns_names()
        self.chains_before = _nat_chains()
        self.cgroup_parents_before = _k8s_cgroup_parents()
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            self.ip_forward = f.read().strip()

    def start(self):
        conf = dict(CNI_CONF)
        conf["plugins"] = [dict(p) for p in CNI_CONF["plugins"]]
        conf["plugins"][0]["ipam"] = dict(conf["plugins"][0]["ipam"], dataDir=f"{self.d}/cni-ipam")
        with open(f"{self.d}/cni/10-diyc.conflist", "w") as f:
            json.dump(conf, f)
        registry = ""
        if self.registry:
            key = f'plugins."io.containerd.grpc.v1.cri".registry.mirrors."{self.registry}"'
            registry = f'  [{key}]\n    endpoint = ["http://{self.registry}"]\n'
        with open(f"{self.d}/config.toml", "w") as f:
            f.write(CONFIG.format(d=self.d, pause=PAUSE_IMAGE, runc=shutil.which("runc"),
                                  diyc=self.diyc_runc, cni_bin=CNI_BIN, registry=registry))
        # through a shell that exits at once: containerd is nobody's child here
        # (the suite checks that no child process outlives a test)
        out = subprocess.run(
            ["sh", "-c", 'containerd --config "$1" >"$2" 2>&1 </dev/null & echo $!',
             "sh", f"{self.d}/config.toml", f"{self.d}/containerd.log"],
            capture_output=True, text=True, check=True)
        self.pid = int(out.stdout)
        deadline = time.monotonic() + 30
        while self.crictl("info", check=False).returncode != 0:
            if time.monotonic() > deadline or not os.path.exists(f"/proc/{self.pid}"):
                self.stop()
                raise RuntimeError(f"containerd did not come up:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        return self

    def log(self):
        try:
            with open(f"{self.d}/containerd.log") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def ctr(self, *args, check=True, timeout=120):
        proc = subprocess.run(["ctr", "--address", self.sock, "-n", "k8s.io", *args],
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            raise AssertionError(f"ctr {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
        return proc

    def crictl(self, *args, check=True, timeout=120, input=None):
        proc = subprocess.run([CRICTL, "--runtime-endpoint", f"unix://{self.sock}",
                               "--image-endpoint", f"unix://{self.sock}", "--timeout", "60s", *args],
                              capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode:
            raise AssertionError(f"crictl {' '.join(args)}: exit {proc.returncode}\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def import_layout(self, layout, tags):
        """Import tags of an OCI layout as images NAME (tag -> name)."""
        for tag, name in tags.items():
            archive = f"{self.d}/{tag}.tar"
            _run("skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", f"docker-archive:{archive}:{name}")
            self.ctr("images", "import", archive)
            os.unlink(archive)

    def remove_all_pods(self):
        """Stop and remove every pod (and so its containers)."""
        for pod in self.crictl("pods", "-q", check=False).stdout.split():
            self.crictl("stopp", pod, check=False)
            self.crictl("rmp", "-f", pod, check=False)

    def stop(self):
        if self.pid:
            try:
                self.remove_all_pods()
            except (subprocess.SubprocessError, OSError):
                pass
            try:
                os.kill(self.pid, 15)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 15
            while os.path.exists(f"/proc/{self.pid}") and time.monotonic() < deadline:
                time.sleep(0.05)
            self.pid = None
        self._kill_shims()
        for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
            mnt = line.split()[4]
            if mnt.startswith(self.d + "/") or (mnt.startswith("/run/netns/cni-")
                                                and os.path.basename(mnt) not in self.netns_before):
                subprocess.run(["umount", "-l", mnt], capture_output=True)
        for name in _netns_names() - self.netns_before:
            if name.startswith("cni-"):
                subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
        for chain in sorted(_nat_chains() - self.chains_before):
            if chain.startswith("CNI-"):
                subprocess.run(["iptables", "-w", "-t", "nat", "-F", chain], capture_output=True)
        for chain in sorted(_nat_chains() - self.chains_before):
            if chain.startswith("CNI-"):
                for rule in _rules_jumping_to(chain):
                    subprocess.run(["iptables", "-w", "-t", "nat", *rule], capture_output=True)
                subprocess.run(["iptables", "-w", "-t", "nat", "-X", chain], capture_output=True)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(self.ip_forward)
        _remove_cgroups(self.cgroup_parents_before)
        shutil.rmtree(self.d, ignore_errors=True)

    def _kill_shims(self):
        """Shims of this containerd that outlived it (they hold its state dir)."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and \
                    self.sock.encode() in b" ".join(cmd):
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass


def leftovers(ctd):
    """What a stopped Containerd left of its own outside its directory."""
    left = [f"netns {n}" for n in _netns_names() - ctd.netns_before if n.startswith("cni-")]
    left += [f"iptables nat chain {c}" for c in _nat_chains() - ctd.chains_before
             if c.startswith("CNI-")]
    left += [f"cgroup {h}/k8s.io" for h in _k8s_cgroup_parents() - ctd.cgroup_parents_before]
    if os.path.exists(f"/sys/class/net/{BRIDGE}"):
        left.append(f"bridge {BRIDGE}")
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        if f.read().strip() != ctd.ip_forward:
            left.append("net.ipv4.ip_forward changed")
    if os.path.exists(ctd.d):
        left.append(ctd.d)
    return left


def _rules_jumping_to(chain):
    proc = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True)
    out = []
    for line in proc.stdout.splitlines():
        parts = shlex.split(line)  # comments are quoted
        if parts[:1] == ["-A"] and "-j" in parts and parts[parts.index("-j") + 1] == chain:
            out.append(["-D"] + parts[1:])
    return out


def _k8s_cgroup_parents():
    return {h for h in os.listdir("/sys/fs/cgroup") if os.path.isdir(f"/sys/fs/cgroup/{h}/k8s.io")}


def _remove_cgroups(parents_before):
    """containerd's CRI puts pods under /k8s.io/<id> in each v1 hierarchy (empty
    once the pods are gone); nothing of ours may stay, k8s.io itself included
    when we made it."""
    for hierarchy in _k8s_cgroup_parents():
        base = f"/sys/fs/cgroup/{hierarchy}/k8s.io"
        for sub in os.listdir(base):
            p = f"{base}/{sub}"
            if os.path.isdir(p):
                try:
                    os.rmdir(p)
                except OSError:
                    pass
        if hierarchy not in parents_before:
            try:
                os.rmdir(base)
            except OSError:
                pass


def cgroups_of_pods():
    """Every cgroup left under k8s.io (containers' and pods')."""
    out = []
    for hierarchy in ("memory", "pids", "cpu"):
        base = f"/sys/fs/cgroup/{hierarchy}/k8s.io"
        if os.path.isdir(base):
            out += [f"{base}/{s}" for s in os.listdir(base) if os.path.isdir(f"{base}/{s}")]
    return out


def pod_config(path, name, *, uid=None, port=None, pid_shared=False, host_port_ip="127.0.0.1"):
    """A crictl pod sandbox config."""
    cfg = {"metadata": {"name": name, "namespace": "diyc-test", "uid": uid or f"{name}-uid",
                        "attempt": 0},
           "hostname": name,
           "log_directory": os.path.dirname(path) + f"/logs-{name}",
           "linux": {"security_context": {"namespace_options":
                                          {"pid": 0 if pid_shared else 1}}}}
    if port:
        cfg["port_mappings"] = [{"protocol": 0, "container_port": port[0], "host_port": port[1],
                                 "host_ip": host_port_ip}]
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def container_config(path, name, args, image=BUSYBOX_IMAGE, *, tty=False, stdin=False,
                     memory=None, pid_shared=False):
    """A crictl container config; its pid namespace is its own (as the
    kubelet asks) unless pid_shared (then its pod's, with the pod's)."""
    cfg = {"metadata": {"name": name}, "image": {"image": image}, "command": args[:1],
           "args": args[1:], "log_path": f"{name}.log", "tty": tty, "stdin": stdin,
           "linux": {"resources": {}, "security_context": {"namespace_options":
                                                           {"pid": 0 if pid_shared else 1}}}}
    if memory:
        cfg["linux"]["resources"]["memory_limit_in_bytes"] = memory
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def tempdir():
    return tempfile.mkdtemp(prefix="diyc-cri-")
