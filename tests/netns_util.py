"""Network namespaces as test "hosts", shared by the network test modules.

A test's diyc commands run inside a network namespace the test creates
(pyroute2's netns.create, as `ip netns add`; then `nsenter --net`: unlike
`ip netns exec` it keeps the machine's /sys, so cgroups stay visible), so the machine's own links,
routes and firewall are never touched and all traffic stays between that
namespace and its containers.  Deleting the namespace takes whatever diyc
left there (bridges, nftables tables) with it.
"""

import contextlib
import json
import os
import socket
import subprocess
import threading

from conftest import DIYC, wait_for

CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def netns(prefix="diyctest"):
    """A fresh network namespace (/run/netns/NAME, as `ip netns add` makes
    it) with its loopback up -> its name."""
    from pyroute2 import IPRoute, netns as namespaces
    name = f"{prefix}-{os.getpid()}-{os.urandom(3).hex()}"
    namespaces.create(name)
    try:
        with IPRoute(netns=name, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        # A new namespace inherits the host's ip_forward (devconf_inherit_init_net=0):
        # start from 0, so what diyc turns on and restores is its own doing.
        in_netns(name, lambda: _write_sysctl("net/ipv4/ip_forward", "0"))
        yield name
    finally:
        namespaces.remove(name)


def _write_sysctl(name, value):
    with open(f"/proc/sys/{name}", "w") as f:  # the calling thread's namespace's
        f.write(value)


class NsCli:
    """The diyc command, run inside the test's "host" namespace."""

    def __init__(self, ns, root):
        self.ns, self.root = ns, str(root)

    def argv(self, *args):
        return ["nsenter", f"--net=/run/netns/{self.ns}"] + DIYC + [str(a) for a in args]

    def env(self):
        env = dict(os.environ, DIYC_ROOT=self.root)
        env.pop("DIYC_TRACE", None)
        return env

    def __call__(self, *args, check=False, timeout=60):
        proc = subprocess.run(self.argv(*args), capture_output=True, text=True, env=self.env(),
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"diyc {' '.join(map(str, args))} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def popen(self, *args):
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.env())

    def sh(self, *cmd):
        """A command of the host namespace itself (nft, ip, cat /proc/...)."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.ns}", *cmd],
                              capture_output=True, text=True, timeout=30)

    def table(self):
        """The name of this root's nftables table."""
        from diyc.net.network import firewall_table
        from diyc.state import Root
        return firewall_table(Root(self.root))


def network_info(cli, name):
    """`diyc network inspect NAME` (docker's shape) -> {"bridge", "subnet",
    "gateway", "containers", "doc": all of it}."""
    doc = json.loads(cli("network", "inspect", name, check=True).stdout)[0]
    ipam = doc["IPAM"]["Config"][0]
    return {"bridge": doc["Options"]["com.docker.network.bridge.name"], "subnet": ipam["Subnet"],
            "gateway": ipam["Gateway"], "containers": doc["Containers"], "doc": doc}


# (busybox 1.35's `wget -T` crashes: timeouts come from `timeout`)
class Server:
    """A container in the background running busybox httpd on port 80 that
    serves /i containing its name; ended with SIGTERM (diyc forwards it)."""

    def __init__(self, cli, name, *run_options):
        self.cli, self.name = cli, name
        script = f"echo {name} > /tmp/i; trap 'exit 0' TERM; httpd -f -p 80 -h /tmp & wait"
        self.proc = cli.popen("run", "--rm", "--name", name, *run_options, "busybox", "sh", "-c", script)
        self.ip = wait_for(self._ip, timeout=30, what=f"container {name} to get an address")
        wait_for(self._serving, timeout=30, what=f"httpd of {name} to answer")

    def _serving(self):
        try:
            return self.name in host_get(self.cli.ns, self.ip, 80, timeout=1)
        except OSError:
            return False

    def _ip(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"server {self.name} exited: {self.proc.communicate()}")
        proc = self.cli("inspect", self.name)
        if proc.returncode:
            return None
        rec = json.loads(proc.stdout)[0]
        if rec["State"]["Status"] != "running":
            return None
        self.id = rec["Id"]
        return next(iter(rec["NetworkSettings"]["Networks"].values()))["IPAddress"]

    def stop(self):
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        assert self.proc.returncode == 0, (self.proc.returncode, out, err)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def in_netns(ns, make):
    """make() run in network namespace `ns` (a thread enters it, calls, and
    leaves): what it returns, e.g. a socket, which stays bound to `ns`."""
    from diyc import _native
    result = {}

    def run():
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            _native.setns(target, CLONE_NEWNET)
            result["value"] = make()
        except OSError as e:
            result["error"] = e
        finally:
            _native.setns(own, CLONE_NEWNET)
            os.close(own)
            os.close(target)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def host_get(ns, address, port, path="/i", timeout=5.0):
    """HTTP GET from the test's host namespace, in this process."""
    sock = in_netns(ns, lambda: socket.create_connection((address, port), timeout=timeout))
    with sock as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.decode(errors="replace")


def try_get(ns, address, port):
    try:
        return host_get(ns, address, port, timeout=1)
    except OSError:
        return None
