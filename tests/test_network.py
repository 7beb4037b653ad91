"""Bridge networking (issue #3), for real: bridges, veth pairs, addresses,
/etc/hosts, nftables NAT and published ports.

Every diyc command here runs inside a network namespace this module creates
as its "host" (`ip netns add`, then `nsenter --net`: unlike `ip netns exec`
it keeps the machine's /sys, so cgroups stay visible), so the machine's own
links, routes and firewall are never touched, and all traffic stays between
that namespace and its containers.  The namespace is deleted at the end,
which takes the bridges and the nftables table with it; `network prune` is
checked before that.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import PKG_DIR, assert_one_line_error, built_image, container_records, wait_for
from netns_util import NsCli, Server, host_get, netns, network_info, try_get

SUBNET_A = "10.251.1.0/24"
SUBNET_B = "10.251.2.0/24"


@pytest.fixture(scope="module")
def host_ns(diyc_root):
    with netns() as name:
        yield name


@pytest.fixture(scope="module")
def net(host_ns, diyc_root):
    cli = NsCli(host_ns, diyc_root)
    yield cli
    # What `prune` must remove: the bridges, the firewall table, ip_forward.
    table = cli.table()
    out = cli("network", "prune", "-f", check=True).stdout
    assert f"removed nftables table ip {table}" in out
    assert cli.sh("nft", "list", "table", "ip", table).returncode != 0
    assert "diyc" not in cli.sh("ip", "-br", "link").stdout
    assert cli.sh("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    # the default network's definition was made for this namespace's routes
    cli("network", "rm", "bridge", check=True)
    assert [f for f in os.listdir(f"{diyc_root}/networks") if f.endswith(".json")] == []


@pytest.fixture
def network_ab(net):
    """Two user-defined networks on test subnets, removed after the test."""
    names = [f"t{os.urandom(3).hex()}a", f"t{os.urandom(3).hex()}b"]
    net("network", "create", names[0], "--subnet", SUBNET_A, check=True)
    net("network", "create", names[1], "--subnet", SUBNET_B, check=True)
    yield names
    for n in names:
        net("network", "rm", n, check=True)


def leases(root, network):
    d = f"{root}/networks/{network}/leases"
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# -- the default network --------------------------------------------------------

def test_bridge_network_is_ready_at_the_first_instruction(net, diyc_root, busybox_layer):
    # `ip route` is the command's first instruction: the address and the
    # default route must already be there.
    proc = net("run", "--rm", "--network", "bridge", "--hostname", "web1", "busybox", "sh", "-c",
               "ip route; ip -4 -o addr show eth0; echo ===; cat /etc/hostname /etc/hosts "
               "/etc/resolv.conf; ping -c1 -W2 $(ip route | awk '/default/ {print $3}') >/dev/null "
               "&& echo gateway-reachable", check=True)
    routes, _, files = proc.stdout.partition("===\n")
    gateway = re.search(r"default via (\S+) dev eth0", routes).group(1)
    address = re.search(r"inet (\S+)/16", routes).group(1)
    assert address.rsplit(".", 2)[0] == gateway.rsplit(".", 2)[0]
    assert files.startswith("web1\n")
    assert re.search(rf"^{re.escape(address)}\tweb1 ", files, re.M)
    assert "nameserver 127." not in files
    assert "gateway-reachable" in proc.stdout
    # The bridge exists with the gateway address; the container's lease is gone.
    bridge = network_info(net, "bridge")["bridge"]
    assert f"inet {gateway}/16" in net.sh("ip", "-4", "addr", "show", bridge).stdout
    assert leases(diyc_root, "bridge") == []
    # The files were bind-mounted: nothing written into the image.
    assert not (busybox_layer / "etc" / "hosts").exists()
    assert not (busybox_layer / "etc" / "resolv.conf").exists()


def test_outbound_nat_and_forwarding_installed(net):
    net("run", "--rm", "--network", "bridge", "busybox", "true", check=True)
    rules = net.sh("nft", "list", "table", "ip", net.table()).stdout
    subnet = network_info(net, "bridge")["subnet"]
    assert f"ip saddr {subnet} oifname != \"diyc*\" masquerade" in rules
    assert net.sh("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"


def test_specific_ip_and_taken_ip(net, network_ab, diyc_root):
    a, _ = network_ab
    proc = net("run", "--rm", "--network", a, "--ip", "10.251.1.77", "busybox", "ip", "-4", "-o", "addr",
               "show", "eth0", check=True)
    assert "inet 10.251.1.77/24" in proc.stdout
    with Server(net, "fixed", "--network", a, "--ip", "10.251.1.66") as srv:
        assert srv.ip == "10.251.1.66"
        taken = net("run", "--rm", "--network", a, "--ip", "10.251.1.66", "busybox", "true")
        assert_one_line_error(taken, contains="10.251.1.66 is already in use")
    assert leases(diyc_root, a) == []


# -- between containers ---------------------------------------------------------

def test_containers_reach_each_other_by_ip_and_name(net, network_ab):
    a, _ = network_ab
    with Server(net, "srv1", "--network", a) as srv:
        proc = net("run", "--rm", "--name", "client1", "--network", a, "busybox", "sh", "-c",
                   f"ping -c1 -W2 srv1 >/dev/null && echo ping-ok; timeout 5 wget -q -O- http://srv1/i; "
                   f"timeout 5 wget -q -O- http://{srv.ip}/i; "
                   f"echo hi | nc -w 2 {srv.ip} 80 >/dev/null && echo tcp-ok")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["ping-ok", "srv1", "srv1", "tcp-ok"], proc.stderr


def test_networks_are_isolated(net, network_ab):
    a, b = network_ab
    with Server(net, "srv2", "--network", a) as srv:
        same = net("run", "--rm", "--network", a, "busybox", "timeout", "3", "wget", "-q", "-O-", f"http://{srv.ip}/i")
        assert same.stdout.strip() == "srv2"
        other = net("run", "--rm", "--network", b, "busybox", "sh", "-c",
                    f"timeout 1 wget -q -O- http://{srv.ip}/i 2>/dev/null || echo wget-failed; "
                    f"ping -c1 -W1 {srv.ip} >/dev/null || echo ping-failed; "
                    f"grep -q srv2 /etc/hosts || echo not-in-hosts")
        assert other.stdout.split() == ["wget-failed", "ping-failed", "not-in-hosts"], other


# -- published ports -----------------------------------------------------------------

def test_published_port(net, diyc_root):
    with Server(net, "pub", "--network", "bridge", "-p", "8080:80") as srv:
        assert "pub" in host_get(net.ns, "127.0.0.1", 8080)
        gateway = network_info(net, "bridge")["gateway"]
        assert "pub" in host_get(net.ns, gateway, 8080)
        # from another container, through the host's port
        other = net("run", "--rm", "--network", "bridge", "busybox", "timeout", "3", "wget", "-q", "-O-",
                    f"http://{gateway}:8080/i")
        assert other.stdout.strip() == "pub", other.stderr
        conflict = net("run", "--rm", "--network", "bridge", "-p", "8080:81", "busybox", "true")
        assert_one_line_error(conflict, contains="8080/tcp is already published")
        assert "tcp . 8080" in net.sh("nft", "list", "map", "ip", net.table(), "ports_any").stdout
    # removed with the container
    assert "8080" not in net.sh("nft", "list", "map", "ip", net.table(), "ports_any").stdout
    assert os.listdir(f"{diyc_root}/ports") == []
    with pytest.raises(OSError):
        host_get(net.ns, "127.0.0.1", 8080, timeout=1)


def test_publish_on_a_host_address_and_udp(net, diyc_root):
    proc = net("run", "--rm", "--network", "bridge", "-p", "127.0.0.1:5353:53/udp", "-p", "9090:90",
               "busybox", "true", check=True)
    assert proc.returncode == 0
    assert os.listdir(f"{diyc_root}/ports") == []


def _port_lines(net, name):
    """`diyc port NAME` -> {"80/tcp": (host ip, host port)}."""
    out = {}
    for line in net("port", name, check=True).stdout.splitlines():
        key, _, binding = line.partition(" -> ")
        host_ip, _, port = binding.rpartition(":")
        out[key] = (host_ip, int(port))
    return out


def _ephemeral_range(net):
    low, high = net.sh("cat", "/proc/sys/net/ipv4/ip_local_port_range").stdout.split()
    return int(low), int(high)


def test_random_host_ports(net, diyc_root):
    """-p 80 and -p IP::PORT: a free host port of the kernel's ephemeral
    range, as docker's; shown by port, ps and inspect; released at the end."""
    low, high = _ephemeral_range(net)
    with Server(net, "rnd", "--network", "bridge", "-p", "80", "-p", "127.0.0.1::80/udp"):
        ports = _port_lines(net, "rnd")
        assert set(ports) == {"80/tcp", "80/udp"}
        (tcp_ip, tcp_port), (udp_ip, udp_port) = ports["80/tcp"], ports["80/udp"]
        assert (tcp_ip, udp_ip) == ("0.0.0.0", "127.0.0.1")
        assert low <= tcp_port <= high and low <= udp_port <= high
        assert "rnd" in host_get(net.ns, "127.0.0.1", tcp_port)
        assert net("port", "rnd", "80", check=True).stdout.strip() == f"0.0.0.0:{tcp_port}"
        ps = net("ps", "--filter", "name=rnd", "--format", "{{.Ports}}", check=True).stdout
        assert f"0.0.0.0:{tcp_port}->80/tcp" in ps and f"127.0.0.1:{udp_port}->80/udp" in ps
        doc = json.loads(net("inspect", "rnd", check=True).stdout)[0]
        assert doc["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(tcp_port)}]
        assert doc["HostConfig"]["PortBindings"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": ""}]
        assert set(doc["Config"]["ExposedPorts"]) == {"80/tcp", "80/udp"}
        assert sorted(os.listdir(f"{diyc_root}/ports")) == \
            sorted([f"tcp-{tcp_port}-0.0.0.0", f"udp-{udp_port}-127.0.0.1"])
        # a host range for one port: its first free port (8686 is taken)
        with Server(net, "rng", "--network", "bridge", "-p", "8686-8688:81", "-p", "8686:80"):
            assert _port_lines(net, "rng")["81/tcp"] == ("0.0.0.0", 8687)
            doc = json.loads(net("inspect", "rng", check=True).stdout)[0]
            assert doc["HostConfig"]["PortBindings"]["81/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "8686-8688"}]
        # a second container gets other ports, and a fixed -p of a taken random one is refused
        other = net("run", "--rm", "--network", "bridge", "-p", "80", "busybox", "true")
        assert other.returncode == 0, other.stderr
        taken = net("run", "--rm", "--network", "bridge", "-p", f"{tcp_port}:80", "busybox", "true")
        assert_one_line_error(taken, contains=f"{tcp_port}/tcp is already published")
    assert os.listdir(f"{diyc_root}/ports") == []
    assert str(tcp_port) not in net.sh("nft", "list", "map", "ip", net.table(), "ports_any").stdout


def test_random_port_picked_again_at_each_start(net, diyc_root):
    net("run", "-d", "--name", "again", "--network", "bridge", "-p", "8", "-p", "8383:9", "busybox",
        "sleep", "60", check=True)
    try:
        first = _port_lines(net, "again")["8/tcp"][1]
        net("stop", "-t", "0", "again", check=True)
        assert os.listdir(f"{diyc_root}/ports") == []
        # stopped: no stale random port in ps, the fixed one stays as docker's record has it
        ps = net("ps", "-a", "--filter", "name=again", "--format", "{{.Ports}}", check=True).stdout
        assert ps.strip() == "0.0.0.0:8383->9/tcp"
        net("start", "again", check=True)
        ports = _port_lines(net, "again")
        assert ports["9/tcp"] == ("0.0.0.0", 8383)
        again = ports["8/tcp"][1]
        assert sorted(os.listdir(f"{diyc_root}/ports")) == sorted([f"tcp-{again}-0.0.0.0", "tcp-8383-0.0.0.0"])
        assert first > 0
    finally:
        net("rm", "-f", "again", check=True)
    assert os.listdir(f"{diyc_root}/ports") == []


@pytest.fixture(scope="module")
def exposing_image(net, tmp_path_factory):
    with built_image(net, tmp_path_factory, "exposing:1", "FROM busybox\nEXPOSE 80 90/udp\n") as tag:
        yield tag


def test_publish_all_publishes_every_exposed_port(net, diyc_root, exposing_image):
    """-P: the image's EXPOSE'd ports and --expose's, each on a random host
    port; a port also given to -p keeps its -p binding."""
    script = "echo allp > /tmp/i; httpd -p 80 -h /tmp; sleep 60"
    net("run", "-d", "--name", "allp", "--network", "bridge", "-P", "--expose", "81-82",
        "-p", "8484:90/udp", exposing_image, "sh", "-c", script, check=True)
    try:
        ports = _port_lines(net, "allp")
        assert set(ports) == {"80/tcp", "81/tcp", "82/tcp", "90/udp"}
        assert ports["90/udp"] == ("0.0.0.0", 8484)
        randoms = [ports[k][1] for k in ("80/tcp", "81/tcp", "82/tcp")]
        low, high = _ephemeral_range(net)
        assert len(set(randoms)) == 3 and all(low <= p <= high for p in randoms)
        assert wait_for(lambda: "allp" in (try_get(net.ns, "127.0.0.1", ports["80/tcp"][1]) or ""),
                        timeout=30, what="httpd through the random port")
        doc = json.loads(net("inspect", "allp", check=True).stdout)[0]
        assert set(doc["Config"]["ExposedPorts"]) == {"80/tcp", "81/tcp", "82/tcp", "90/udp"}
    finally:
        net("rm", "-f", "allp", check=True)
    assert os.listdir(f"{diyc_root}/ports") == []
    # --expose without -P publishes nothing; -P without EXPOSE'd ports neither
    out = net("run", "--rm", "--network", "bridge", "--expose", "80", "-P", "busybox", "true")
    assert out.returncode == 0, out.stderr
    net("run", "-d", "--name", "exponly", "--network", "bridge", "--expose", "7/udp", "-p", "8585:80",
        exposing_image, "sleep", "60", check=True)
    try:
        doc = json.loads(net("inspect", "exponly", check=True).stdout)[0]
        assert set(doc["Config"]["ExposedPorts"]) == {"7/udp", "80/tcp", "90/udp"}
        assert doc["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8585"}]}
        # exposed, not published: null in NetworkSettings.Ports, `90/udp` in ps, as docker's
        assert doc["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8585"}],
                                                   "7/udp": None, "90/udp": None}
        ps = net("ps", "--filter", "name=exponly", "--format", "{{.Ports}}", check=True).stdout.strip()
        assert sorted(ps.split(", ")) == ["0.0.0.0:8585->80/tcp", "7/udp", "90/udp"]
    finally:
        net("rm", "-f", "exponly", check=True)


def test_library_random_ports_and_publish_all(net, diyc_root, exposing_image):
    """docker-py's shapes: ports={"80/tcp": None}, (IP, None); publish_all_ports, expose=[int]."""
    from diyc import Container
    from netns_util import in_netns
    ctr = in_netns(net.ns, lambda: Container.create(
        exposing_image, "true", root=str(diyc_root), publish={"8/tcp": None, "9/udp": ("127.0.0.1", None)},
        publish_all_ports=True, expose=[70]))
    try:
        bindings = ctr.attrs["HostConfig"]["PortBindings"]
        assert bindings == {"8/tcp": [{"HostIp": "0.0.0.0", "HostPort": ""}],
                            "9/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                            "70/tcp": [{"HostIp": "0.0.0.0", "HostPort": ""}],
                            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": ""}],
                            "90/udp": [{"HostIp": "0.0.0.0", "HostPort": ""}]}
    finally:
        ctr.remove()


def test_mac_address_in_inspect(net, network_ab):
    """NetworkSettings.MacAddress and Networks.*.MacAddress: eth0's (and
    eth1's after `network connect`), 02:42 and the IPv4 address's bytes as
    docker's made them."""
    a, b = network_ab
    net("run", "-d", "--name", "macs", "--network", "bridge", "busybox", "sleep", "60", check=True)
    try:
        net("network", "connect", b, "macs", check=True)
        doc = json.loads(net("inspect", "macs", check=True).stdout)[0]["NetworkSettings"]
        inside = net("exec", "macs", "cat", "/sys/class/net/eth0/address", "/sys/class/net/eth1/address",
                     check=True).stdout.split()
        for (name, endpoint), mac in zip(sorted(doc["Networks"].items(), key=lambda kv: kv[0] != "bridge"),
                                         inside):
            ip = endpoint["IPAddress"]
            assert endpoint["MacAddress"] == mac == "02:42:" + ":".join(f"{int(x):02x}" for x in ip.split("."))
        assert doc["MacAddress"] == inside[0]
    finally:
        net("rm", "-f", "macs", check=True)
    # on a created network the top-level fields stay empty, as docker's
    net("run", "-d", "--name", "macs2", "--network", a, "busybox", "sleep", "60", check=True)
    try:
        doc = json.loads(net("inspect", "macs2", check=True).stdout)[0]["NetworkSettings"]
        assert doc["MacAddress"] == "" and doc["Networks"][a]["MacAddress"].startswith("02:42:0a:fb:01:")
    finally:
        net("rm", "-f", "macs2", check=True)


# -- allocation ----------------------------------------------------------------------

def test_concurrent_starts_get_distinct_addresses(net, network_ab, diyc_root, tmp_path):
    a, _ = network_ab
    # every container holds its address until all 20 have one (a barrier
    # file, not a sleep: under load a sleep ends before the last start)
    procs = [net.popen("run", "--rm", "--network", a, "-v", f"{tmp_path}:/b", "busybox", "sh", "-c",
                       "ip -4 -o addr show eth0; touch /b/$(hostname); "
                       "while [ ! -e /b/go ]; do sleep 0.02; done") for _ in range(20)]
    try:
        wait_for(lambda: len(os.listdir(tmp_path)) >= 20 or any(p.poll() is not None for p in procs),
                 timeout=60, what="20 containers to start")
    finally:
        (tmp_path / "go").touch()
    addresses = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        addresses.append(re.search(r"inet (\S+)/24", out).group(1))
    assert len(set(addresses)) == 20
    assert all(ip.startswith("10.251.1.") for ip in addresses)
    assert leases(diyc_root, a) == []


def test_killed_diyc_leaves_what_cleanup_removes(net, diyc_root):
    srv = Server(net, "victim", "--network", "bridge", "-p", "8181:80")
    assert leases(diyc_root, "bridge") == [srv.ip]
    init_pid = json.loads(net("inspect", "victim", check=True).stdout)[0]["State"]["Pid"]
    srv.proc.kill()  # SIGKILL to diyc: nobody releases anything
    srv.proc.wait()
    os.kill(init_pid, 9)  # (it holds diyc's stdout: kill it before reading that)
    srv.proc.communicate()
    wait_for(lambda: not os.path.exists(f"/proc/{init_pid}"), what="the container's init to exit")
    out = net("cleanup", check=True).stdout
    assert "victim" in out
    assert leases(diyc_root, "bridge") == []
    assert os.listdir(f"{diyc_root}/ports") == []
    assert "8181" not in net.sh("nft", "list", "map", "ip", net.table(), "ports_any").stdout


def test_diyc_killed_at_any_point_of_the_start(net, diyc_root):
    """SIGKILL diyc at 25 moments of a bridge start with a published port:
    `diyc cleanup` then leaves no record, lease, port, veth or cgroup."""
    import random
    rng = random.Random(7)
    for i in range(25):
        p = net.popen("run", "--rm", "--network", "bridge", "-p", f"{8300 + i}:80",
                      "busybox", "true")
        time.sleep(rng.uniform(0, 0.04))
        p.kill()
        p.communicate()
    # an orphaned init either ran `true` or found its channel closed: both end
    wait_for(lambda: all(not os.path.exists(f"/proc/{r['state'].get('pid')}")
                         for r in container_records(diyc_root) if r["state"].get("pid")),
             what="orphaned inits to end")
    net("cleanup", check=True)
    assert container_records(diyc_root) == []
    assert leases(diyc_root, "bridge") == []
    assert os.listdir(f"{diyc_root}/ports") == []
    links = net.sh("ip", "-br", "link").stdout
    assert "veth" not in links, links
    assert os.listdir(f"{diyc_root}/names") == []


# -- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["-p", "x"], "invalid -p value 'x'"),
    (["-p", "1.2.3.4:5:6:80"], "invalid -p value"),
    (["--expose", "80/sctp"], "invalid --expose '80/sctp': the protocol must be tcp or udp"),
    (["--expose", "90-80"], "is not a port range"),
    (["--network", "none", "-P"], "need a bridge network"),
    (["-p", "8080:70000"], "'70000' is not a port number"),
    (["-p", "8080:80/sctp"], "the protocol must be tcp or udp"),
    (["-p", "1.2.3:8080:80"], "invalid host IP"),
    (["--ip", "10.0.0.300"], "invalid --ip address"),
    (["--ip", "192.0.2.9"], "is outside the subnet"),
    (["--network", "nosuchnet"], "network nosuchnet not found"),
    (["--network", "none", "--ip", "10.1.1.1"], "need a bridge network"),
    (["--network", "none", "-p", "80:80"], "need a bridge network"),
])
def test_bad_run_values(net, args, message):
    if "--network" not in args:
        args = ["--network", "bridge"] + args
    assert_one_line_error(net("run", "--rm", *args, "busybox", "true"), contains=message)


def test_bad_gateway_ip(net):
    gateway = network_info(net, "bridge")["gateway"]
    assert_one_line_error(net("run", "--rm", "--network", "bridge", "--ip", gateway, "busybox", "true"),
                          contains="gateway")


@pytest.mark.parametrize("subnet, message", [
    ("10.251.3.0", "expected CIDR notation"),
    ("10.251.3.1/24", "host bits are set"),
    ("10.251.3.0/31", "prefix length must be between"),
    ("300.1.1.0/24", "invalid subnet address"),
    (SUBNET_A, "overlaps network"),
])
def test_bad_subnets(net, network_ab, subnet, message):
    assert_one_line_error(net("network", "create", "tbad", "--subnet", subnet), contains=message)


def test_network_ls_rm_and_in_use(net, network_ab):
    a, b = network_ab
    ls = net("network", "ls", "--format", "{{.Name}} {{.Subnet}}", check=True).stdout.splitlines()
    assert f"{a} {SUBNET_A}" in ls and any(line.startswith(f"{b} ") for line in ls)
    assert_one_line_error(net("network", "create", a), contains="already exists")
    with Server(net, "user", "--network", a):
        assert_one_line_error(net("network", "rm", a), contains="in use by container(s): user")
    assert_one_line_error(net("network", "rm", "nosuchnet"), contains="no such network")


def test_network_container_joins_another_containers_namespace(net, network_ab):
    a, _ = network_ab
    with Server(net, "owner", "--network", a) as srv:
        proc = net("run", "--rm", "--network", "container:owner", "busybox", "sh", "-c",
                   "timeout 5 wget -q -O- http://127.0.0.1/i; ip -4 -o addr show eth0; "
                   "grep -c owner /etc/hosts", check=True)
        lines = proc.stdout.splitlines()
        assert lines[0] == "owner"           # its httpd, on the shared loopback
        assert f"inet {srv.ip}/24" in lines[1]
        assert lines[2] == "1"               # its /etc/hosts
    assert_one_line_error(net("run", "--rm", "--network", "container:nosuch", "busybox", "true"),
                          contains="no such container: nosuch")
    assert_one_line_error(net("run", "--rm", "--network", "container:owner", "-p", "80:80", "busybox", "true"),
                          contains="cannot be used with --network container:")


def test_detached_container_releases_its_network_when_it_ends(net, network_ab, diyc_root):
    a, _ = network_ab
    net("run", "-d", "--name", "det1", "--network", a, "-p", "8282:80", "busybox", "sh", "-c",
        "echo det1 > /tmp/i; httpd -f -p 80 -h /tmp", check=True)
    net("run", "-d", "--name", "det2", "--network", a, "busybox", "sleep", "0.2", check=True)
    try:
        assert wait_for(lambda: try_get(net.ns, "127.0.0.1", 8282), what="det1 to answer").strip() \
            .endswith("det1")
        # det2 ended by itself: its supervisor released its address and its
        # line in det1's /etc/hosts
        wait_for(lambda: len(leases(diyc_root, a)) == 1, what="det2's lease to be released")
        hosts = net("run", "--rm", "--network", "container:det1", "busybox", "cat", "/etc/hosts",
                    check=True).stdout
        assert "det1" in hosts and "det2" not in hosts
    finally:
        net("rm", "-f", "det1", "det2", check=True)
    assert leases(diyc_root, a) == []
    assert os.listdir(f"{diyc_root}/ports") == []



# -- pyroute2 stays off the start path --------------------------------------------

def test_run_on_a_bridge_never_imports_pyroute2(net, network_ab, diyc_root):
    # the start path speaks netlink through diyc.net.netlink: pyroute2's
    # import alone (~250 ms) would be twenty starts.  The first start on a
    # network makes its bridge; -p takes the published-ports path too; no
    # --network is the default bridge.
    from conftest import PKG_DIR
    a, _ = network_ab
    for args in (["--network", a, "-p", "127.0.0.1:8292:80"], ["--network", a], ["--network", "bridge"], []):
        code = (f"import sys; sys.path.insert(0, {PKG_DIR!r}); from diyc.cli import main; "
                f"rc = main(['--root', {str(diyc_root)!r}, 'run', '--rm', *{args!r}, 'busybox', 'true']); "
                "print(rc, sorted(m for m in sys.modules if m.split('.')[0] == 'pyroute2'))")
        out = subprocess.run(["nsenter", f"--net=/run/netns/{net.ns}", sys.executable, "-I", "-c", code],
                             capture_output=True, text=True, timeout=60)
        assert out.stdout.splitlines()[:1] == ["0 []"], (args, out.stdout, out.stderr)
    # ... while the management plane uses it: `network rm` deletes a bridge
    name = f"t{os.urandom(3).hex()}c"
    net("network", "create", name, check=True)
    code = (f"import sys; sys.path.insert(0, {PKG_DIR!r}); from diyc.cli import main; "
            f"rc = main(['--root', {str(diyc_root)!r}, 'network', 'rm', {name!r}]); "
            "print(rc, 'pyroute2' in sys.modules)")
    out = subprocess.run(["nsenter", f"--net=/run/netns/{net.ns}", sys.executable, "-I", "-c", code],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[-1] == "0 True", (out.stdout, out.stderr)


def test_stats_counts_the_bytes_of_a_containers_veth(net, network_ab, diyc_root):
    from conftest import PKG_DIR
    a, _ = network_ab

    def counters(name):
        code = (f"import sys; sys.path.insert(0, {PKG_DIR!r}); import diyc; "
                f"s = diyc.Container.load({name!r}, root={str(diyc_root)!r}).stats(interval=0.05); "
                "print(s['net_rx'], s['net_tx'])")
        out = net.sh(sys.executable, "-I", "-c", code)
        assert out.returncode == 0, out.stderr
        return [int(n) for n in out.stdout.split()]

    with Server(net, "counted", "--network", a) as srv:
        rx0, tx0 = counters("counted")
        body = host_get(net.ns, srv.ip, 80, path="/big")  # 404, a few hundred bytes each way
        assert "404" in body
        rx1, tx1 = counters("counted")
        assert rx1 - rx0 >= 60 and tx1 - tx0 >= len(body)
        # a container in its network namespace counts the same interface
        net("run", "-d", "--name", "sharer", "--network", "container:counted", "busybox", "sleep", "30",
            check=True)
        try:
            rx2, tx2 = counters("sharer")
            assert rx2 >= rx1 and tx2 >= tx1
        finally:
            net("rm", "-f", "sharer", check=True)


# -- network connect / disconnect / inspect -----------------------------------------

MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def test_connect_and_disconnect_a_running_container(net, network_ab, diyc_root):
    a, b = network_ab
    with Server(net, "peer-b", "--network", b) as peer, Server(net, "roamer", "--network", a) as roamer:
        net("network", "connect", b, "roamer", check=True)
        info = network_info(net, b)
        assert info["subnet"] == SUBNET_B and info["doc"]["Driver"] == "bridge" and info["doc"]["Scope"] == "local"
        mine, theirs = info["containers"][roamer.id], info["containers"][peer.id]
        assert (mine["Name"], theirs["Name"]) == ("roamer", "peer-b")
        assert MAC.fullmatch(mine["MacAddress"]) and theirs["IPv4Address"] == f"{peer.ip}/24"
        ip_b = mine["IPv4Address"].removesuffix("/24")
        assert ip_b in leases(diyc_root, b)
        networks = json.loads(net("inspect", "roamer", check=True).stdout)[0]["NetworkSettings"]["Networks"]
        assert (networks[a]["IPAddress"], networks[b]["IPAddress"]) == (roamer.ip, ip_b)
        # inside: a second interface with that address, and peer-b by name
        out = net("exec", "roamer", "sh", "-c", "ip -4 -o addr show eth1; ip link show eth1; "
                  "timeout 5 wget -q -O- http://peer-b/i", check=True).stdout
        assert f"inet {ip_b}/24" in out and mine["MacAddress"] in out and out.strip().endswith("peer-b")
        assert re.search(rf"^{re.escape(ip_b)}\t\S+ roamer$", net("exec", "peer-b", "cat", "/etc/hosts").stdout, re.M)
        assert "roamer" in host_get(net.ns, ip_b, 80)   # its httpd, on its new address
        assert_one_line_error(net("network", "connect", b, "roamer"), contains="already connected")
        assert_one_line_error(net("network", "disconnect", a, "roamer"), contains="started on")
        assert_one_line_error(net("network", "rm", b), contains="in use by container(s): peer-b, roamer")

        net("network", "disconnect", b, "roamer", check=True)
        assert roamer.id not in network_info(net, b)["containers"]
        assert list(json.loads(net("inspect", "roamer", check=True).stdout)[0]["NetworkSettings"]["Networks"]) == [a]
        assert "eth1" not in net("exec", "roamer", "ip", "-o", "link", check=True).stdout
        assert ip_b not in net("exec", "peer-b", "cat", "/etc/hosts", check=True).stdout
        assert peer.ip not in net("exec", "roamer", "cat", "/etc/hosts", check=True).stdout
        assert try_get(net.ns, ip_b, 80) is None and leases(diyc_root, b) == [peer.ip]
        assert_one_line_error(net("network", "disconnect", b, "roamer"), contains="not connected")
        # connected again (at a chosen address), then the container ends:
        # its end releases that network too
        net("network", "connect", "--ip", "10.251.2.77", b, "roamer", check=True)
        assert "10.251.2.77" in leases(diyc_root, b)
    assert leases(diyc_root, a) == [] and leases(diyc_root, b) == []
    # docker's events for each, on the network
    events = net("events", "--since", "0", "--until", f"{time.time():.6f}", "--filter", "type=network",
                 "--format", "{{.Action}} {{.Actor.Attributes.container}} {{.Actor.Attributes.name}}",
                 check=True).stdout.splitlines()
    assert events.count(f"connect {roamer.id} {b}") == 2 and events.count(f"disconnect {roamer.id} {b}") == 1


# A library process holding a Container object loaded while the container
# was stopped: told to start it after someone else did (and connected it)
STALE_START = """
import sys
sys.path.insert(0, sys.argv[1])
from diyc.errors import Conflict
from diyc.runtime import Container
c = Container.load(sys.argv[3], sys.argv[2])
print("loaded", flush=True)
sys.stdin.readline()
try:
    c.start(detach=True)
except Conflict as e:
    print("conflict:", e)
"""


def test_a_stale_record_never_overwrites_a_connection(net, network_ab):
    """A start from a record read before the container was started and
    connected elsewhere re-reads it under the container's lock: it finds
    the container running, and the record keeps listing the connection
    (saving its old copy dropped it from inspect)."""
    a, b = network_ab
    net("create", "--name", "stale", "--network", a, "busybox", "sleep", "600", check=True)
    stale = subprocess.Popen(["nsenter", f"--net=/run/netns/{net.ns}", sys.executable, "-I", "-c", STALE_START,
                              PKG_DIR, net.root, "stale"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=net.env())
    try:
        assert stale.stdout.readline() == "loaded\n", stale.communicate()
        net("start", "stale", check=True)
        net("network", "connect", b, "stale", check=True)
        out, err = stale.communicate("go\n", timeout=60)
        assert out.startswith("conflict: container stale is already running"), (out, err)
        networks = json.loads(net("inspect", "stale", check=True).stdout)[0]["NetworkSettings"]["Networks"]
        assert sorted(networks) == sorted([a, b])
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.communicate()
        net("rm", "-f", "stale", check=True)

def test_connect_refuses_what_it_cannot_do(net, network_ab):
    a, b = network_ab
    net("run", "-d", "--name", "loner", "--network", "none", "busybox", "sleep", "30", check=True)
    try:
        assert_one_line_error(net("network", "connect", b, "loner"), contains="bridge network")
        net("kill", "loner", check=True)
        net("wait", "loner")
        assert_one_line_error(net("network", "connect", b, "loner"), contains="not running")
    finally:
        net("rm", "-f", "loner", check=True)
    assert_one_line_error(net("network", "connect", "nosuchnet", "loner"), contains="no such network")
    assert_one_line_error(net("network", "connect", b), contains="requires exactly 2 arguments")
