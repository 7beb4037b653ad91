"""Two diyc roots on one host (issue #17, item 5): each has its own bridges,
subnets, addresses and nftables table; neither's prune or cleanup touches
the other's; ip_forward is put back when the last diyc bridge of either
goes.  Both roots live in one network namespace this module creates (see
netns_util), which is deleted at the end.
"""

import os
import re
import shutil

import pytest

from conftest import assert_one_line_error, container_records
from netns_util import NsCli, Server, host_get, netns, network_info, try_get


def forward(cli):
    return cli.sh("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()


def links(cli):
    return cli.sh("ip", "-br", "link").stdout


def tables(cli):
    return re.findall(r"^table ip (\S+)$", cli.sh("nft", "list", "tables").stdout, re.M)


def root_id(root):
    return os.readlink(f"{root}/networks/root-id")


@pytest.fixture
def two_roots(tmp_path):
    with netns() as ns:
        a, b = NsCli(ns, tmp_path / "a"), NsCli(ns, tmp_path / "b")
        # the value diyc must restore; set here, not assumed
        assert a.sh("sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward").returncode == 0
        for cli in (a, b):  # the built-in image, made once per root (one stderr line)
            cli("run", "--network", "none", "--rm", "busybox", "true", check=True)
        try:
            yield a, b
        finally:
            for cli in (a, b):
                for rec in container_records(cli.root):
                    cli("rm", "-f", rec["id"])


def test_two_roots_share_a_namespace_without_touching_each_other(two_roots):
    a, b = two_roots
    # user networks with subnets diyc picks, made before any bridge exists:
    # the second root must not pick the first one's subnet
    a("network", "create", "usr", check=True)
    b("network", "create", "usr", check=True)
    assert network_info(a, "usr")["subnet"] != network_info(b, "usr")["subnet"]

    a_def = Server(a, "web", "--network", "bridge", "-p", "127.0.0.1:8601:80")
    a_usr = Server(a, "web-usr", "--network", "usr", "-p", "127.0.0.1:8603:80")
    assert "web" in host_get(a.ns, "127.0.0.1", 8601)
    # root B's first containers (new bridges, its own table) while A's run;
    # the same container name in both roots is fine
    b_def = Server(b, "web", "--network", "bridge", "-p", "127.0.0.1:8602:80")
    b_usr = Server(b, "web-usr", "--network", "usr", "-p", "127.0.0.1:8604:80")
    try:
        bridges = {cli.root: (network_info(cli, "bridge"), network_info(cli, "usr")) for cli in (a, b)}
        (a_bridge, a_net), (b_bridge, b_net) = bridges[a.root], bridges[b.root]
        assert len({a_bridge["bridge"], a_net["bridge"], b_bridge["bridge"], b_net["bridge"]}) == 4
        assert a_bridge["subnet"] != b_bridge["subnet"]
        assert len({a_def.ip, a_usr.ip, b_def.ip, b_usr.ip}) == 4
        for br in (a_bridge, a_net, b_bridge, b_net):
            assert br["bridge"] in links(a) and len(br["bridge"]) <= 15
        assert sorted(tables(a)) == sorted([a.table(), b.table()]) and a.table() != b.table()
        # a root's table, from its default bridge's name alone (the leak check's way)
        from diyc.net.roots import bridge_firewall_table
        assert [bridge_firewall_table(br["bridge"]) for br in (a_bridge, b_bridge, a_net)] == \
            [a.table(), b.table(), None]
        # every published port answers, with its own root's container
        for port, srv in ((8601, a_def), (8602, b_def), (8603, a_usr), (8604, b_usr)):
            assert srv.name in host_get(a.ns, "127.0.0.1", port)
        assert "web" in host_get(a.ns, b_def.ip, 80) and "web" in host_get(a.ns, a_def.ip, 80)
        # a host port the other root publishes here is refused (two tables
        # would both DNAT it), with nothing left of the refused container
        proc = b("run", "--rm", "--network", "usr", "-p", "8601:80", "busybox", "true")
        assert_one_line_error(proc, contains=f"8601/tcp is already published by container {a_def.id[:12]}")
        assert sorted(r["name"] for r in container_records(b.root)) == ["web", "web-usr"]
        assert "tcp . 8601" not in b.sh("nft", "list", "map", "ip", b.table(), "ports_any").stdout
        # a subnet routed here by the other root's bridge is refused
        assert_one_line_error(b("network", "create", "clash", "--subnet", a_bridge["subnet"]),
                              contains=f"overlaps the route via {a_bridge['bridge']}")
        assert forward(a) == "1"
    finally:
        b_def.stop()
        b_usr.stop()

    # root B cleans up everything of its own, while root A's containers run
    out_b = b("network", "prune", "-f", check=True).stdout + b("cleanup", check=True).stdout
    assert b_bridge["bridge"] in out_b and a_bridge["bridge"] not in out_b
    assert f"removed nftables table ip {b.table()}" in out_b
    assert "ip_forward" not in out_b
    try:
        assert a_def.name in host_get(a.ns, "127.0.0.1", 8601)
        assert a_usr.name in host_get(a.ns, "127.0.0.1", 8603)
        assert "web" in host_get(a.ns, a_def.ip, 80)
        assert try_get(a.ns, "127.0.0.1", 8602) is None
        assert a_bridge["bridge"] in links(a) and a_net["bridge"] in links(a)
        assert b_bridge["bridge"] not in links(a) and b_net["bridge"] not in links(a)
        assert tables(a) == [a.table()]
        assert forward(a) == "1"  # root A's bridges still need it
    finally:
        a_def.stop()
        a_usr.stop()

    # the last root: nothing of diyc is left, ip_forward is what it was
    out_a = a("network", "prune", "-f", check=True).stdout
    assert "restored net.ipv4.ip_forward=0" in out_a
    assert "diyc" not in links(a)
    assert tables(a) == []
    assert forward(a) == "0"
    ids = (root_id(a.root), root_id(b.root))
    for cli in (a, b):
        cli("network", "rm", "bridge", check=True)
        assert container_records(cli.root) == []
        assert os.listdir(f"{cli.root}/names") == []
    # roots without networks no longer claim subnets
    assert not any(os.path.lexists(f"/run/diyc/roots/{i}") for i in ids)


def test_same_explicit_subnet_in_two_roots_is_refused_at_the_second_bridge(two_roots):
    a, b = two_roots
    subnet = "10.253.9.0/24"
    a("network", "create", "dup", "--subnet", subnet, check=True)
    # allowed: root A's network has no bridge (no route) here yet, and
    # another root's network may live in another namespace
    b("network", "create", "dup", "--subnet", subnet, check=True)
    try:
        a("run", "--rm", "--network", "dup", "busybox", "true", check=True)
        bridge_a = network_info(a, "dup")["bridge"]
        proc = b("run", "--rm", "--network", "dup", "busybox", "true")
        assert_one_line_error(proc, contains=f"overlaps the route via {bridge_a}")
        assert container_records(b.root) == []
        assert os.listdir(f"{b.root}/networks/dup/leases") == []
        assert network_info(b, "dup")["bridge"] not in links(b)
    finally:
        for cli in (a, b):
            cli("network", "prune", "-f", check=True)
            cli("network", "rm", "bridge")
    assert "diyc" not in links(a)
    assert tables(a) == []
    assert forward(a) == "0"


def test_a_deleted_root_no_longer_claims_subnets(two_roots, tmp_path):
    a, b = two_roots
    a("network", "create", "first", check=True)
    taken = network_info(a, "first")["subnet"]
    gone = root_id(a.root)
    assert os.path.lexists(f"/run/diyc/roots/{gone}")
    shutil.rmtree(a.root)  # (no bridge was made: nothing of it is in the namespace)
    # root B drops the stale entry and picks that subnet (the first free
    # one again, as it was for root A)
    b("network", "create", "second", check=True)
    assert not os.path.lexists(f"/run/diyc/roots/{gone}")
    assert network_info(b, "second")["subnet"] == taken
    b("network", "rm", "second", check=True)
    assert not os.path.lexists(f"/run/diyc/roots/{root_id(b.root)}")
