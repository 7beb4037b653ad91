"""Where networks live: a root's network records, leases and port
reservations, and what several roots on one host share (names, subnets,
ip_forward, the host lock).  network.py builds on it.
"""

import os

from ..errors import DiycError
from ..state import DEFAULT_ROOT, FileLock, listdir, read_json
from .addresses import parse_subnet

DEFAULT_BRIDGE = "diyc0"   # the default root's; other roots' are diyc0-<root id>
NFT_TABLE = "diyc"         # the default root's; other roots' are diyc-<root id>
# Host-wide state shared by every diyc root on this machine (a tmpfs: it
# lives as long as the network namespaces and sysctls it describes)
HOST_STATE = "/run/diyc"

# -- network records ------------------------------------------------------------

def networks_dir(root):
    return f"{root.path}/networks"


def record_path(root, name):
    return f"{networks_dir(root)}/{name}.json"


def leases_dir(root, name):
    return f"{networks_dir(root)}/{name}/leases"


def ports_dir(root):
    return f"{root.path}/ports"


def load(root, name):
    """The record of network `name`, or None."""
    try:
        return read_json(record_path(root, name))
    except FileNotFoundError:
        return None


def list_networks(root):
    out = []
    for entry in sorted(listdir(networks_dir(root))):
        if entry.endswith(".json"):
            rec = load(root, entry[:-5])
            if rec:
                out.append(rec)
    return out


def netlink_socket():
    """The start path's rtnetlink socket (see management.py for the rest)."""
    from .netlink import Netlink
    return Netlink()


# -- several roots on one host ------------------------------------------------------
#
# Each diyc root (--root, DIYC_ROOT) has its own networks, leases and port
# reservations, but bridges, routes, nftables tables and ip_forward belong
# to the network namespace, which several roots may share.  So:
#
#   names     keyed per root by a short random id, made once and kept in
#             networks/root-id (a random id, not a hash of the path: it
#             survives the root being moved or reached through another
#             path).  The default network's bridge is diyc0-<id>, the
#             firewall table `ip diyc-<id>`; user networks' bridges carry a
#             random id of their own (diyc-<8 hex>, unique among the links
#             here).  The default root (/var/lib/diyc) keeps `diyc0` and
#             `ip diyc`: it is the one root of most hosts, its records and
#             any host firewall rules written against them already say so,
#             and no other root ever takes those names.
#   subnets   a new network's subnet must not overlap a route of this
#             namespace (every root's bridges are routes) and, when diyc
#             picks it, nor any other root's networks (listed through
#             /run/diyc/roots/<id> -> root path); a bridge is only set up
#             if its subnet is still free here.
#   forward   net.ipv4.ip_forward is counted across roots by the kernel's
#             own state: it is needed while any diyc bridge (of any root)
#             exists here.  The first bridge of a namespace records the
#             value found in /run/diyc/ip_forward-<netns inode>; whoever
#             deletes the last one restores it.  Both happen under the
#             host-wide lock /run/diyc/host.lock, together with the bridge
#             creation or deletion, so no root sees a half-done change.
#
# A root only ever deletes bridges and the table named in its own records:
# one root's prune or cleanup never touches another's.

def root_id(root):
    """The root's short id (8 hex digits), made on first use: one atomic
    symlink() claims it, a concurrent maker reads the winner's."""
    path = f"{networks_dir(root)}/root-id"
    try:
        return os.readlink(path)
    except FileNotFoundError:
        pass
    os.makedirs(networks_dir(root), exist_ok=True)
    try:
        os.symlink(os.urandom(4).hex(), path)
    except FileExistsError:
        pass
    return os.readlink(path)


def is_default_root(root):
    return os.path.realpath(root.path) == os.path.realpath(DEFAULT_ROOT)


def default_bridge(root, rid):
    return DEFAULT_BRIDGE if is_default_root(root) else f"{DEFAULT_BRIDGE}-{rid}"


def firewall_table(root):
    """The name of this root's nftables table (family ip)."""
    return NFT_TABLE if is_default_root(root) else f"{NFT_TABLE}-{root_id(root)}"


def bridge_firewall_table(bridge):
    """The nftables table of the root whose default bridge is `bridge`
    (diyc0 -> diyc, diyc0-<root id> -> diyc-<root id>), or None for any
    other bridge (a user network's diyc-<8 hex>: its root's table goes
    with the root's default bridge).  For a bridge whose root is gone."""
    if bridge == DEFAULT_BRIDGE:
        return NFT_TABLE
    rid = bridge.removeprefix(f"{DEFAULT_BRIDGE}-")
    return f"{NFT_TABLE}-{rid}" if rid != bridge else None


def host_lock():
    os.makedirs(HOST_STATE, mode=0o755, exist_ok=True)
    return FileLock(f"{HOST_STATE}/host.lock")


def register_root(root, rid):
    """List this root in /run/diyc/roots, for other roots' subnet choices
    (the caller holds the host lock)."""
    d = f"{HOST_STATE}/roots"
    os.makedirs(d, exist_ok=True)
    try:
        os.symlink(os.path.realpath(root.path), f"{d}/{rid}")
    except FileExistsError:
        pass


def unregister_root(root):
    """A root without networks no longer claims subnets."""
    with host_lock():
        if not list_networks(root):
            try:
                os.unlink(f"{HOST_STATE}/roots/{root_id(root)}")
            except FileNotFoundError:
                pass


def other_roots(rid):
    """(id, path) of every other registered root.  Entries of roots that
    are gone (or whose id changed) are dropped.  The caller holds the host
    lock."""
    d = f"{HOST_STATE}/roots"
    for other in listdir(d):
        if other == rid:
            continue
        try:
            path = os.readlink(f"{d}/{other}")
            alive = os.readlink(f"{path}/networks/root-id") == other
        except OSError:
            alive = False
        if alive:
            yield other, path
            continue
        try:
            os.unlink(f"{d}/{other}")
        except FileNotFoundError:
            pass


def other_roots_subnets(rid):
    """[((net, plen), description)] of every other registered root's
    networks (the caller holds the host lock)."""
    from ..state import Root
    out = []
    for _, path in other_roots(rid):
        for rec in list_networks(Root(path)):
            try:
                out.append((parse_subnet(rec["subnet"]), f"network {rec['name']!r} of the diyc root {path}"))
            except (KeyError, DiycError):
                continue
    return out


def published_here_by_other_roots(rid, ports):
    """The first of `ports` another root publishes in this namespace ->
    (port, description), else None.  Each root keeps its own reservations
    and nftables table, so without this two roots could DNAT one port.
    Another root's reservation counts when its container's bridge is here
    (a root serving another namespace does not clash).  Host lock held."""
    with netlink_socket() as nl:
        here = set(nl.links())
    for _, path in other_roots(rid):
        pdir = f"{path}/ports"
        entries = listdir(pdir)
        for p in ports:
            for entry in entries:
                if not same_host_port(entry, p):
                    continue
                try:
                    cid = os.readlink(f"{pdir}/{entry}").split(" ")[0]
                    bridge = read_json(f"{path}/containers/{cid}/network.json").get("bridge")
                except (OSError, ValueError):
                    continue  # being released
                if bridge in here:
                    return p, f"container {cid[:12]} of the diyc root {path}"
    return None


def same_host_port(entry, p):
    """Whether reservation `entry` (<proto>-<port>-<host ip>) takes the
    host port of `p`: same protocol and port, same address or a wildcard."""
    prefix = f"{p['proto']}-{p['host_port']}-"
    if not entry.startswith(prefix):
        return False
    other_ip = entry[len(prefix):]
    return "0.0.0.0" in (other_ip, p["host_ip"]) or other_ip == p["host_ip"]


def diyc_bridges(nl):
    """The diyc bridges (of any root) among the links of `nl`, a
    netlink.Netlink or a management.Rtnl."""
    return [name for name, (_, _, kind) in nl.links().items()
            if kind == "bridge" and name.startswith("diyc")]


def forward_state_path():
    # per network namespace: roots may serve several (tests, nested hosts)
    ino = os.stat("/proc/thread-self/ns/net").st_ino
    return f"{HOST_STATE}/ip_forward-{ino}"


def delete_bridge(bridge):
    """Delete one of this root's bridges (if there) -> (deleted, the
    ip_forward value restored or None): with the last diyc bridge of this
    namespace goes the forwarding diyc turned on.  (Management plane:
    pyroute2.)"""
    from .management import Rtnl
    with host_lock(), Rtnl() as nl:
        return nl.delete_link(bridge), restore_forwarding(nl)


def restore_forwarding(nl):
    """(Host lock held.)  No diyc bridge left here: ip_forward back to the
    value the first one found -> that value, or None if nothing to do."""
    if diyc_bridges(nl):
        return None
    path = forward_state_path()
    try:
        with open(path) as f:
            original = f.read().strip()
    except FileNotFoundError:
        return None
    changed = read_sysctl("net/ipv4/ip_forward") != original
    if changed:
        write_sysctl("net/ipv4/ip_forward", original)
    os.unlink(path)
    return original if changed else None


def read_sysctl(name):
    with open(f"/proc/sys/{name}") as f:
        return f.read().strip()


def write_sysctl(name, value):
    with open(f"/proc/sys/{name}", "w") as f:
        f.write(value)
