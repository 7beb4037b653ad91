"""Bridge networking: networks, addresses, veth pairs, /etc/hosts, NAT and
published ports.

A network is a Linux bridge with a gateway address on a private subnet.
The default one, `bridge`, is bridge `diyc0` (`diyc0-<root id>` for a root
other than /var/lib/diyc); `diyc network create NAME` adds others (bridge
`diyc-<id>`).  Per container start, in runtime order:

    create    the network exists (the default one is defined on first use),
              --ip and -p are valid; /etc/hostname, /etc/resolv.conf and an
              /etc/hosts stub are written to the container's dir and listed
              as bind mounts in the spec (never written into the image)
    connect   (after clone, while the child mounts its root)
              a lease: the lowest free address, under the network's lock;
              /etc/hosts of this container and of its peers on the network
              (by name: the other containers of that network, nobody else);
              published ports reserved; a veth pair with the host end on the
              bridge and the peer created directly in the child's netns as
              eth0, then address, link up and default route from inside
    release   (when the container ends) the lease, the peers' /etc/hosts
              lines, the port reservations and their NAT entries.  Never the
              veth: the kernel deletes it with the container's netns, and
              waiting for that would cost 17-29 ms.

State under the diyc root, shared by every diyc process:

    networks/root-id              symlink -> this root's short id (see "several roots")
    networks/<name>.json          the network: subnet, gateway, bridge
    networks/<name>/leases/<ip>   symlink -> "<container id> <name> <hostname>":
                                  one atomic symlink() claims the address
    ports/<proto>-<port>-<hostip> symlink -> "<container id> <ip>:<port>"
    containers/<id>/network.json  what connect() set up, for release()
    containers/<id>/{hosts,hostname,resolv.conf}   the bind-mounted files

The host side (bridge, ip_forward, nftables table `ip diyc`, or
`ip diyc-<root id>`) is created on first use in a network namespace and
removed by `diyc network prune`.  Several roots share a host without
touching each other's: see "several roots on one host" below, and
/run/diyc/ for the little state they share.

Everything on the start path speaks netlink through diyc.netlink (raw
sockets: `import pyroute2` alone costs ~250 ms).  The firewall is the one
exception: nftables rules are installed by running `nft`, once per network
set-up and once per container start/end that publishes ports, because
nf_tables' netlink protocol (expressions, sets, transactions) is far larger
than the handful of messages a rule set this small would justify; the plain
start path with no -p never runs it.
"""

import errno
import os

from .errors import Conflict, DiycError, InvalidArgument, NotFound
from .numbers import is_digits
from .state import DEFAULT_ROOT, FileLock, atomic_write, read_json, write_json

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "diyc0"   # the default root's; other roots' are diyc0-<root id>
BUILTIN = ("none", "host", DEFAULT_NETWORK)
BRIDGE_PATTERN = "diyc*"   # every diyc bridge of every root, for the firewall's wildcards
NFT_TABLE = "diyc"         # the default root's; other roots' are diyc-<root id>
# Host-wide state shared by every diyc root on this machine (a tmpfs: it
# lives as long as the network namespaces and sysctls it describes)
HOST_STATE = "/run/diyc"
# Default subnets to try, first free one wins (checked against the host's routes)
DEFAULT_SUBNETS = [f"172.{n}.0.0/16" for n in range(30, 15, -1)] + \
    [f"10.{n}.0.0/16" for n in range(200, 255)]


class NetworkError(DiycError):
    """The kernel refused a network set-up step."""


# -- addresses ----------------------------------------------------------------

def ip_to_int(text, what="IP address"):
    parts = text.split(".")
    if len(parts) != 4 or not all(is_digits(p) and len(p) <= 3 and int(p) < 256 for p in parts):
        raise InvalidArgument(f"invalid {what} {text!r}: expected a dotted IPv4 address such as 10.1.2.3")
    a, b, c, d = (int(p) for p in parts)
    return a << 24 | b << 16 | c << 8 | d


def int_to_ip(n):
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def parse_subnet(text):
    """'10.1.0.0/16' -> (network as int, prefix length)."""
    addr, slash, plen = str(text).partition("/")
    if not slash or not is_digits(plen) or len(plen) > 3:
        raise InvalidArgument(f"invalid subnet {text!r}: expected CIDR notation such as 10.89.0.0/16")
    prefixlen = int(plen)
    if not 8 <= prefixlen <= 29:
        raise InvalidArgument(f"invalid subnet {text!r}: the prefix length must be between 8 and 29")
    net = ip_to_int(addr, "subnet address")
    mask = (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF
    if net & ~mask:
        raise InvalidArgument(f"invalid subnet {text!r}: host bits are set "
                              f"(did you mean {int_to_ip(net & mask)}/{prefixlen}?)")
    if addr.startswith(("127.", "0.")) or net >= 0xE0000000:
        raise InvalidArgument(f"invalid subnet {text!r}: not a unicast range")
    return net, prefixlen


def _overlaps(a, alen, b, blen):
    plen = min(alen, blen)
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
    return (a & mask) == (b & mask)


def parse_publish(spec):
    """docker's -p [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] -> dict."""
    text, _, proto = str(spec).partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid -p value {spec!r}: the protocol must be tcp or udp")
    parts = text.split(":")
    if len(parts) == 2:
        host_ip, host_port, ctr_port = "0.0.0.0", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host_port, ctr_port = parts
        host_ip = host_ip or "0.0.0.0"
    else:
        raise InvalidArgument(f"invalid -p value {spec!r}: expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]")
    ip_to_int(host_ip, f"host IP in -p {spec!r}")
    ports = []
    for p in (host_port, ctr_port):
        if not is_digits(p) or len(p) > 5 or not 1 <= int(p) <= 65535:
            raise InvalidArgument(f"invalid -p value {spec!r}: {p!r} is not a port number (1-65535)")
        ports.append(int(p))
    return {"proto": proto, "host_ip": host_ip, "host_port": ports[0], "container_port": ports[1]}


# -- network definitions ----------------------------------------------------------

def _networks_dir(root):
    return f"{root.path}/networks"


def _record_path(root, name):
    return f"{_networks_dir(root)}/{name}.json"


def _leases_dir(root, name):
    return f"{_networks_dir(root)}/{name}/leases"


def _ports_dir(root):
    return f"{root.path}/ports"


def check_network_name(name):
    if not name or len(name) > 64 or not name.isascii() or not name[0].isalnum() or \
            not all(c.isalnum() or c in "_.-" for c in name):
        raise InvalidArgument(f"invalid network name {name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    return name


def load(root, name):
    """The record of network `name`, or None."""
    try:
        return read_json(_record_path(root, name))
    except FileNotFoundError:
        return None


def list_networks(root):
    out = []
    for entry in sorted(_listdir(_networks_dir(root))):
        if entry.endswith(".json"):
            rec = load(root, entry[:-5])
            if rec:
                out.append(rec)
    return out


def create(root, name, subnet=None):
    """Define a network (the bridge itself is made on first use)."""
    check_network_name(name)
    if name in ("none", "host") or name.startswith("container"):
        raise InvalidArgument(f"network name {name!r} is reserved")
    if subnet is not None:
        parse_subnet(subnet)  # its syntax, before anything is made
    root.ensure()
    os.makedirs(_networks_dir(root), exist_ok=True)
    rid = root_id(root)
    # lock order, here and everywhere: this root's locks, then the host's
    with root.lock("networks"), _host_lock():
        if load(root, name):
            raise Conflict(f"network {name!r} already exists")
        own = list_networks(root)
        taken = [(parse_subnet(n["subnet"]), f"network {n['name']!r}") for n in own]
        with _netlink() as nl:
            host_routes = _host_routes(nl, {n["bridge"] for n in own})
            links = set(nl.links())
        if subnet is not None:
            # only this root's networks and this namespace's routes: another
            # root's network may live in another network namespace, and if
            # it is here its bridge is a route (checked again at set-up)
            net, plen = parse_subnet(subnet)
            for (other, olen), what in taken + host_routes:
                if _overlaps(net, plen, other, olen):
                    raise Conflict(f"subnet {subnet} overlaps {what} ({int_to_ip(other)}/{olen})")
        else:
            # automatic: also clear of every other root's networks, made on
            # this host but perhaps without a bridge (hence a route) yet
            taken += _other_roots_subnets(rid)
            for candidate in DEFAULT_SUBNETS:
                net, plen = parse_subnet(candidate)
                if not any(_overlaps(net, plen, o, ol) for (o, ol), _ in taken + host_routes):
                    break
            else:
                raise Conflict("no free default subnet left: pass --subnet")
        nid = os.urandom(16).hex()
        while f"diyc-{nid[:8]}" in links:  # another root's network, here
            nid = os.urandom(16).hex()
        record = {
            "name": name, "id": nid,
            "bridge": _default_bridge(root, rid) if name == DEFAULT_NETWORK else f"diyc-{nid[:8]}",
            "subnet": f"{int_to_ip(net)}/{plen}", "gateway": int_to_ip(net + 1),
        }
        os.makedirs(_leases_dir(root, name), exist_ok=True)
        write_json(_record_path(root, name), record)
        _register_root(root, rid)
    return record


def _netlink():
    from .netlink import Netlink
    return Netlink()


def _host_routes(nl, own_bridges):
    """[((dst, plen), description)] of this namespace's IPv4 routes except
    default and loopback routes and those of this root's own bridges
    (`own_bridges`; their networks are checked as networks): what a new
    subnet must not overlap.  Other roots' bridges count like any route."""
    links = nl.links()
    names = {index: name for name, (index, _, _) in links.items()}
    ours = {links[b][0] for b in own_bridges if b in links}
    routes = []
    for dst, plen, oif in nl.ipv4_routes():
        if plen == 0 or dst.startswith("127.") or oif in ours:
            continue
        routes.append(((ip_to_int(dst), plen), f"the route via {names.get(oif, '?')}"))
    return routes


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
    path = f"{_networks_dir(root)}/root-id"
    try:
        return os.readlink(path)
    except FileNotFoundError:
        pass
    os.makedirs(_networks_dir(root), exist_ok=True)
    try:
        os.symlink(os.urandom(4).hex(), path)
    except FileExistsError:
        pass
    return os.readlink(path)


def _is_default_root(root):
    return os.path.realpath(root.path) == os.path.realpath(DEFAULT_ROOT)


def _default_bridge(root, rid):
    return DEFAULT_BRIDGE if _is_default_root(root) else f"{DEFAULT_BRIDGE}-{rid}"


def firewall_table(root):
    """The name of this root's nftables table (family ip)."""
    return NFT_TABLE if _is_default_root(root) else f"{NFT_TABLE}-{root_id(root)}"


def _host_lock():
    os.makedirs(HOST_STATE, mode=0o755, exist_ok=True)
    return FileLock(f"{HOST_STATE}/host.lock")


def _register_root(root, rid):
    """List this root in /run/diyc/roots, for other roots' subnet choices
    (the caller holds the host lock)."""
    d = f"{HOST_STATE}/roots"
    os.makedirs(d, exist_ok=True)
    try:
        os.symlink(os.path.realpath(root.path), f"{d}/{rid}")
    except FileExistsError:
        pass


def _unregister_root(root):
    """A root without networks no longer claims subnets."""
    with _host_lock():
        if not list_networks(root):
            try:
                os.unlink(f"{HOST_STATE}/roots/{root_id(root)}")
            except FileNotFoundError:
                pass


def _other_roots(rid):
    """(id, path) of every other registered root.  Entries of roots that
    are gone (or whose id changed) are dropped.  The caller holds the host
    lock."""
    d = f"{HOST_STATE}/roots"
    for other in _listdir(d):
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


def _other_roots_subnets(rid):
    """[((net, plen), description)] of every other registered root's
    networks (the caller holds the host lock)."""
    from .state import Root
    out = []
    for _, path in _other_roots(rid):
        for rec in list_networks(Root(path)):
            try:
                out.append((parse_subnet(rec["subnet"]), f"network {rec['name']!r} of the diyc root {path}"))
            except (KeyError, DiycError):
                continue
    return out


def _published_here_by_other_roots(rid, ports):
    """The first of `ports` another root publishes in this namespace ->
    (port, description), else None.  Each root keeps its own reservations
    and nftables table, so without this two roots could DNAT one port.
    Another root's reservation counts when its container's bridge is here
    (a root serving another namespace does not clash).  Host lock held."""
    with _netlink() as nl:
        here = set(nl.links())
    for _, path in _other_roots(rid):
        pdir = f"{path}/ports"
        entries = _listdir(pdir)
        for p in ports:
            for entry in entries:
                if not _same_host_port(entry, p):
                    continue
                try:
                    cid = os.readlink(f"{pdir}/{entry}").split(" ")[0]
                    bridge = read_json(f"{path}/containers/{cid}/network.json").get("bridge")
                except (OSError, ValueError):
                    continue  # being released
                if bridge in here:
                    return p, f"container {cid[:12]} of the diyc root {path}"
    return None


def _same_host_port(entry, p):
    """Whether reservation `entry` (<proto>-<port>-<host ip>) takes the
    host port of `p`: same protocol and port, same address or a wildcard."""
    prefix = f"{p['proto']}-{p['host_port']}-"
    if not entry.startswith(prefix):
        return False
    other_ip = entry[len(prefix):]
    return "0.0.0.0" in (other_ip, p["host_ip"]) or other_ip == p["host_ip"]


def _diyc_bridges(nl):
    return [name for name, (_, _, kind) in nl.links().items()
            if kind == "bridge" and name.startswith("diyc")]


def _forward_state_path():
    # per network namespace: roots may serve several (tests, nested hosts)
    ino = os.stat("/proc/thread-self/ns/net").st_ino
    return f"{HOST_STATE}/ip_forward-{ino}"


def _delete_bridge(bridge):
    """Delete one of this root's bridges (if there) -> (deleted, the
    ip_forward value restored or None): with the last diyc bridge of this
    namespace goes the forwarding diyc turned on."""
    with _host_lock(), _netlink() as nl:
        try:
            nl.del_link(bridge)
            deleted = True
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise
            deleted = False
        return deleted, _restore_forwarding(nl)


def _restore_forwarding(nl):
    """(Host lock held.)  No diyc bridge left here: ip_forward back to the
    value the first one found -> that value, or None if nothing to do."""
    if _diyc_bridges(nl):
        return None
    path = _forward_state_path()
    try:
        with open(path) as f:
            original = f.read().strip()
    except FileNotFoundError:
        return None
    changed = _read_sysctl("net/ipv4/ip_forward") != original
    if changed:
        _write_sysctl("net/ipv4/ip_forward", original)
    os.unlink(path)
    return original if changed else None


def remove(root, name):
    """`diyc network rm`: refuses while containers use the network."""
    rec = load(root, name)
    if rec is None:
        raise NotFound(f"no such network: {name}")
    with root.lock(f"network-{name}"):
        _reclaim_orphans(root, name)
        users = _leases(root, name)
        if users:
            names = ", ".join(sorted(u[1] for u in users.values()))
            raise Conflict(f"network {name} is in use by container(s): {names}")
        _delete_bridge(rec["bridge"])
        os.unlink(_record_path(root, name))
        from .state import remove_tree
        remove_tree(f"{_networks_dir(root)}/{name}")
    with root.lock("ports"):
        _apply_firewall(root, only_if_present=True)
    _unregister_root(root)


def prune(root):
    """Remove the host side of every network of this root no container
    uses (bridge), its user-defined networks without containers, and once
    no container of this root uses any network, its firewall table.  The
    last diyc bridge of this namespace (of any root) takes the ip_forward
    setting with it.  Other roots' bridges and tables are never touched."""
    out = []
    in_use = False
    for rec in list_networks(root):
        name = rec["name"]
        with root.lock(f"network-{name}"):
            _reclaim_orphans(root, name)
            if _leases(root, name):
                in_use = True
                continue
            deleted, restored = _delete_bridge(rec["bridge"])
            if deleted:
                out.append(f"removed bridge {rec['bridge']} of network {name}")
            if restored is not None:
                out.append(f"restored net.ipv4.ip_forward={restored}")
        if name != DEFAULT_NETWORK:
            remove(root, name)
            out.append(f"removed network {name}")
    table = firewall_table(root)
    with root.lock("ports"):
        if in_use:
            _apply_firewall(root, only_if_present=True)
        elif _nft(f"delete table ip {table}\n", check=False) == 0:
            out.append(f"removed nftables table ip {table}")
    return out


# -- create time ------------------------------------------------------------------

def plan(root, network, ip=None, publish=()):
    """Validate `--network/--ip/-p` at create time; -> the record's
    network_settings (filled in by connect())."""
    if network.startswith("container:"):
        if ip is not None or publish:
            raise InvalidArgument("--ip and -p/--publish cannot be used with --network container:NAME "
                                  "(the network belongs to that container)")
        _joined_container(root, network)
        return None
    ports = [parse_publish(p) for p in publish or ()]  # before the default network is defined
    if ip is not None:
        ip_to_int(ip, "--ip address")
    rec = load(root, network)
    if rec is None:
        if network != DEFAULT_NETWORK:
            check_network_name(network)
            raise NotFound(f"network {network} not found (see diyc network ls)")
        try:
            rec = create(root, DEFAULT_NETWORK)
        except Conflict:
            rec = load(root, network)  # another diyc defined it just now
    if ip is not None:
        _check_ip_in(rec, ip)
        try:
            os.readlink(f"{_leases_dir(root, network)}/{ip}")
            raise Conflict(f"address {ip} is already in use on network {network}")
        except FileNotFoundError:
            pass
    seen = set()
    for p in ports:
        key = (p["proto"], p["host_port"])
        if key in seen:
            raise InvalidArgument(f"host port {p['host_port']}/{p['proto']} is published twice")
        seen.add(key)
    return {"network": network, "requested_ip": ip, "ports": ports}


def _joined_container(root, network):
    """The running container whose network namespace `container:NAME` names."""
    from .runtime import Container
    ref = network.partition(":")[2]
    if not ref:
        raise InvalidArgument("--network container: needs a container name or id")
    target = Container.load(ref, root)
    if target.status != "running":
        raise Conflict(f"cannot join the network of container {target.name}: it is not running")
    return target


def joined_mounts(root, network):
    """--network container:NAME shares NAME's /etc/hosts and /etc/resolv.conf
    (when it has its own), as it shares its addresses."""
    target = _joined_container(root, network)
    if not target.record.get("network_settings"):
        return []
    return [m for m in etc_mounts(target.dir) if m["destination"] != "/etc/hostname"]


def spawn_joined(ctr, init):
    """_native.spawn() for --network container:NAME: cloned inside NAME's
    network namespace instead of a new one."""
    from .rootfs import spawn_in
    from .state import pid_alive
    target = _joined_container(ctr.root, ctr.record["network"])
    state = target.record["state"]
    if not pid_alive(state["pid"], state.get("pid_start")):
        raise Conflict(f"cannot join the network of container {target.name}: it is not running")
    join = dict(init.join_paths or {}, network=f"/proc/{state['pid']}/ns/net")
    return spawn_in(init.replace(clone_flags=init.clone_flags & ~_native_flag("network"),
                                 loopback_up=False, join_paths=join))


def _native_flag(kind):
    from . import _native
    return _native.NS_FLAGS[kind]


def _check_ip_in(rec, ip):
    n = ip_to_int(ip, "--ip address")
    net, plen = parse_subnet(rec["subnet"])
    size = 1 << (32 - plen)
    if not net <= n < net + size:
        raise InvalidArgument(f"--ip {ip} is outside the subnet {rec['subnet']} of network {rec['name']}")
    if n in (net, net + size - 1, ip_to_int(rec["gateway"])):
        raise InvalidArgument(f"--ip {ip} is the network, broadcast or gateway address of {rec['subnet']}")
    return n


def etc_mounts(cdir):
    """The per-container files, as OCI bind mounts."""
    return [{"destination": f"/etc/{f}", "type": "bind", "source": f"{cdir}/{f}",
             "options": ["rbind", "rprivate"]} for f in ("hostname", "hosts", "resolv.conf")]


def write_etc_files(cdir, hostname):
    """/etc/hostname and /etc/resolv.conf now; /etc/hosts gets its addresses
    when connect() knows them (written in place: it is bind-mounted)."""
    _write(f"{cdir}/hostname", f"{hostname}\n")
    _write(f"{cdir}/resolv.conf", host_resolv_conf())
    _write(f"{cdir}/hosts", _hosts_header())


def host_resolv_conf(path="/etc/resolv.conf"):
    """The host's resolv.conf without loopback nameservers (a resolver on the
    host's 127.0.0.x is not reachable from the container's namespace)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and \
                (fields[1].startswith("127.") or fields[1] == "::1"):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _hosts_header():
    return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _write(path, text, flags=os.O_CREAT | os.O_TRUNC):
    """Write in place (a rename would leave a bind mount on the old file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | flags, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# -- start time -------------------------------------------------------------------

def connect(ctr, pid):
    """Give the container (its init is `pid`, paused before execve) its
    address on its network.  Fills ctr.record["network_settings"]."""
    root, cid = ctr.root, ctr.id
    settings = ctr.record["network_settings"]
    name = settings["network"]
    rec = load(root, name)
    if rec is None:
        raise NotFound(f"network {name} not found (removed after the container was created?)")
    net, plen = parse_subnet(rec["subnet"])
    hostname = ctr.record["spec"].get("hostname") or cid[:12]
    me = f"{cid} {ctr.name} {hostname}"
    leases = _leases_dir(root, name)
    with root.lock(f"network-{name}"):
        ip = _lease(root, rec, me, settings.get("requested_ip"))
        settings.update(ip=ip, prefixlen=plen, gateway=rec["gateway"], bridge=rec["bridge"],
                        veth=f"veth{os.urandom(5).hex()}")
        write_json(f"{ctr.dir}/network.json", settings)
        peers = _leases(root, name, leases)
        line = f"{ip}\t{hostname} {ctr.name}\n"
        _write(f"{ctr.dir}/hosts", _hosts_header() + line + "".join(
            f"{pip}\t{phost} {pname}\n" for pip, (pcid, pname, phost) in sorted(peers.items()) if pcid != cid))
        for pip, (pcid, _, _) in peers.items():
            if pcid != cid:
                try:
                    _write(f"{root.container_dir(pcid)}/hosts", line, flags=os.O_APPEND)
                except FileNotFoundError:
                    pass  # a peer being removed
    if settings["ports"]:
        _publish(root, cid, ip, settings["ports"])

    from .netlink import Netlink
    try:
        with Netlink() as nl:
            try:
                master = nl.link_index(rec["bridge"])
            except OSError as e:
                if e.errno != errno.ENODEV:
                    raise
                master = _setup_bridge(root, rec, nl)
            nl.add_veth(settings["veth"], "eth0", pid, master)
        with Netlink.in_netns(f"/proc/{pid}/ns/net") as inner:
            eth0 = inner.link_index("eth0")
            inner.set_up(eth0)
            inner.add_address(eth0, ip, plen)
            inner.add_default_route(rec["gateway"], eth0)
    except OSError as e:
        raise NetworkError(f"network {name}: {e.strerror}") from None
    return settings


def _lease(root, rec, me, requested):
    """Claim an address (the caller holds the network's lock)."""
    name = rec["name"]
    leases = _leases_dir(root, name)
    os.makedirs(leases, exist_ok=True)
    if requested:
        _check_ip_in(rec, requested)
        try:
            os.symlink(me, f"{leases}/{requested}")
        except FileExistsError:
            raise Conflict(f"address {requested} is already in use on network {name}") from None
        return requested
    net, plen = parse_subnet(rec["subnet"])
    gateway = ip_to_int(rec["gateway"])
    for attempt in (0, 1):
        used = {ip_to_int(ip) for ip in _listdir(leases)}
        for n in range(net + 1, net + (1 << (32 - plen)) - 1):
            if n != gateway and n not in used:
                ip = int_to_ip(n)
                os.symlink(me, f"{leases}/{ip}")
                return ip
        if not attempt:
            _reclaim_orphans(root, name)
    raise Conflict(f"no free address left on network {name} ({rec['subnet']})")


def _leases(root, name, leases=None):
    """{ip: (container id, name, hostname)} of the network's leases."""
    leases = leases or _leases_dir(root, name)
    out = {}
    for ip in _listdir(leases):
        try:
            target = os.readlink(f"{leases}/{ip}")
        except FileNotFoundError:
            continue
        parts = target.split(" ")
        if len(parts) == 3:
            out[ip] = tuple(parts)
    return out


def _setup_bridge(root, rec, nl):
    """First container on this network in this network namespace: the
    bridge, its gateway address, forwarding and the firewall.  -> ifindex."""
    with root.lock(f"network-{rec['name']}"), _host_lock():
        try:
            return nl.link_index(rec["bridge"])
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise
        net, plen = parse_subnet(rec["subnet"])
        for (dst, dlen), what in _host_routes(nl, ()):
            if _overlaps(net, plen, dst, dlen):
                raise NetworkError(f"network {rec['name']}: its subnet {rec['subnet']} overlaps {what} "
                                   f"({int_to_ip(dst)}/{dlen}) in this network namespace")
        if not _diyc_bridges(nl):
            # the first diyc bridge here (of any root): remember ip_forward
            # as it is, for whoever deletes the last one (a file left by a
            # namespace that had the same inode, or a crash, is stale now)
            atomic_write(_forward_state_path(), _read_sysctl("net/ipv4/ip_forward") + "\n")
        nl.add_bridge(rec["bridge"])
        index = nl.link_index(rec["bridge"])
        nl.add_address(index, rec["gateway"], plen)
        # published ports on 127.0.0.1: DNAT to the container makes the packet
        # leave through the bridge with a loopback source, dropped unless allowed
        _write_sysctl(f"net/ipv4/conf/{rec['bridge']}/route_localnet", "1")
        _write_sysctl("net/ipv4/ip_forward", "1")
    with root.lock("ports"):
        _apply_firewall(root)
    return index


def _read_sysctl(name):
    with open(f"/proc/sys/{name}") as f:
        return f.read().strip()


def _write_sysctl(name, value):
    with open(f"/proc/sys/{name}", "w") as f:
        f.write(value)


# -- published ports and the firewall ---------------------------------------------

def _port_key(p):
    return f"{p['proto']}-{p['host_port']}-{p['host_ip']}"


def _publish(root, cid, ip, ports):
    pdir = _ports_dir(root)
    os.makedirs(pdir, exist_ok=True)
    with root.lock("ports"):
        existing = _listdir(pdir)
        for p in ports:
            for entry in existing:
                if _same_host_port(entry, p):
                    owner = os.readlink(f"{pdir}/{entry}").split(" ")[0]
                    raise Conflict(f"port {p['host_ip']}:{p['host_port']}/{p['proto']} is already "
                                   f"published by container {owner[:12]}")
            _check_port_free(p)
        with _host_lock():  # checked and claimed as one step against other roots too
            clash = _published_here_by_other_roots(root_id(root), ports)
            if clash:
                p, what = clash
                raise Conflict(f"port {p['host_ip']}:{p['host_port']}/{p['proto']} is already published by {what}")
            for p in ports:
                os.symlink(f"{cid} {ip}:{p['container_port']}", f"{pdir}/{_port_key(p)}")
        table = firewall_table(root)
        script = "".join(f"add element ip {table} {_map_and_key(p)} : {ip} . {p['container_port']} }}\n"
                         for p in ports)
        if _nft(script, check=False) != 0:
            _apply_firewall(root)  # the table is gone (pruned?): rebuild it, ports included


def _check_port_free(p):
    """A host socket already bound to the port would be shadowed by DNAT:
    refuse, as docker's proxy would."""
    import _socket
    kind = _socket.SOCK_STREAM if p["proto"] == "tcp" else _socket.SOCK_DGRAM
    s = _socket.socket(_socket.AF_INET, kind)
    try:
        s.bind((p["host_ip"], p["host_port"]))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise Conflict(f"port {p['host_ip']}:{p['host_port']}/{p['proto']} is already in use on the host") from None
        if e.errno != errno.EADDRNOTAVAIL:
            raise
        raise InvalidArgument(f"cannot publish on {p['host_ip']}: not an address of this host") from None
    finally:
        s.close()


def _map_and_key(p):
    if p["host_ip"] == "0.0.0.0":
        return f"ports_any {{ {p['proto']} . {p['host_port']}"
    return f"ports_addr {{ {p['host_ip']} . {p['proto']} . {p['host_port']}"


def _nft(script, check=True):
    """Run `nft -f -` on `script` (a subprocess: see the module docstring)."""
    import subprocess
    try:
        proc = subprocess.run(["nft", "-f", "-"], input=script.encode(), capture_output=True)
    except FileNotFoundError:
        raise NetworkError("bridge networking needs the nft command (apt-get install nftables)") from None
    if check and proc.returncode:
        raise NetworkError(f"nft: {proc.stderr.decode(errors='replace').strip()}")
    return proc.returncode


def _apply_firewall(root, only_if_present=False):
    """(Re)write this root's table (`ip diyc`, `ip diyc-<root id>`) from
    its network records and port reservations, in one nft transaction.  The
    caller holds lock "ports".  Other roots' tables are theirs: the
    wildcards below match their bridges too (isolation between roots, no
    masquerading into them), but only their own tables name their ports."""
    table = firewall_table(root)
    if only_if_present and _nft(f"list table ip {table}\n", check=False) != 0:
        return
    nets = list_networks(root)
    post, fwd = [], []
    for rec in nets:
        subnet, br = rec["subnet"], rec["bridge"]
        # outbound: masquerade what leaves for anywhere but a diyc bridge
        post.append(f'ip saddr {subnet} oifname != "{BRIDGE_PATTERN}" masquerade')
        # a published port reached from a container of the same network:
        # the reply must come back through the host to be un-DNATed
        post.append(f'ct status dnat ip saddr {subnet} oifname "{br}" masquerade')
        # isolation: nothing routed from this bridge to another diyc bridge
        fwd.append(f'iifname "{br}" oifname != "{br}" oifname "{BRIDGE_PATTERN}" drop')
    # published ports reached on 127.0.0.1 (route_localnet is on for the bridges)
    post.append(f'ip saddr 127.0.0.0/8 oifname "{BRIDGE_PATTERN}" masquerade')
    elements = {"ports_any": [], "ports_addr": []}
    pdir = _ports_dir(root)
    for entry in _listdir(pdir):
        try:
            proto, port, host_ip = entry.split("-", 2)
            cip, cport = os.readlink(f"{pdir}/{entry}").split(" ")[1].split(":")
        except (OSError, ValueError, IndexError):
            continue
        p = {"proto": proto, "host_port": port, "host_ip": host_ip}
        mapname, key = _map_and_key(p).split(" { ")
        elements[mapname].append(f"{key} : {cip} . {cport}")

    def elems(name):
        return f" elements = {{ {', '.join(elements[name])} }};" if elements[name] else ""
    nl = "\n    "
    script = f"""table ip {table}
delete table ip {table}
table ip {table} {{
  map ports_any {{ type inet_proto . inet_service : ipv4_addr . inet_service;{elems("ports_any")} }}
  map ports_addr {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service;{elems("ports_addr")} }}
  chain ports {{
    dnat ip to ip daddr . meta l4proto . th dport map @ports_addr
    dnat ip to meta l4proto . th dport map @ports_any
  }}
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; fib daddr type local jump ports; }}
  chain output {{ type nat hook output priority -100; policy accept; fib daddr type local jump ports; }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    {nl.join(post)}
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    {nl.join(fwd)}
  }}
}}
"""
    _nft(script)


# -- end of a container -------------------------------------------------------------

def release(ctr):
    """Undo connect(): lease, peers' hosts lines, ports.  Idempotent (each
    step checks that what it removes is still there and still ours), and
    safe on a half-done connect (crash or failure at any step)."""
    path = f"{ctr.dir}/network.json"
    try:
        settings = read_json(path)
    except FileNotFoundError:
        return
    _release(ctr.root, ctr.id, settings)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # a second releaser (not under the container's lock) was quicker
    if ctr.record.get("auto_remove"):
        # about to be removed: an empty dir is one rmdir(), not a tree walk
        for f in ("hostname", "hosts", "resolv.conf"):
            try:
                os.unlink(f"{ctr.dir}/{f}")
            except FileNotFoundError:
                pass


def _release(root, cid, settings):
    name, ip = settings["network"], settings.get("ip")
    if settings.get("ports"):
        pdir = _ports_dir(root)
        table = firewall_table(root)
        with root.lock("ports"):
            script = ""
            for p in settings["ports"]:
                path = f"{pdir}/{_port_key(p)}"
                try:
                    if os.readlink(path).split(" ")[0] != cid:
                        continue  # never ours: the reservation failed on it
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                script += f"delete element ip {table} {_map_and_key(p)} }}\n"
            if script:
                _nft(script, check=False)
    if ip:
        with root.lock(f"network-{name}"):
            lease = f"{_leases_dir(root, name)}/{ip}"
            try:
                if os.readlink(lease).split(" ")[0] == cid:
                    os.unlink(lease)
            except FileNotFoundError:
                pass
            prefix = f"{ip}\t"
            for pcid, _, _ in _leases(root, name).values():
                _drop_hosts_lines(f"{root.container_dir(pcid)}/hosts", prefix)


def _drop_hosts_lines(path, prefix):
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return
    kept = "".join(line for line in text.splitlines(True) if not line.startswith(prefix))
    if kept != text:
        try:
            _write(path, kept, flags=os.O_TRUNC)
        except FileNotFoundError:
            pass  # that peer is being removed


def _reclaim_orphans(root, name):
    """Release the leases of containers that are gone or no longer running
    (their diyc was killed).  The caller holds the network's lock."""
    from .runtime import Container
    out = []
    for ip, (cid, cname, _) in _leases(root, name).items():
        try:
            status = Container(root, read_json(f"{root.container_dir(cid)}/container.json")).status
        except (FileNotFoundError, NotADirectoryError, ValueError):
            status = "gone"
        # an exited container keeps its network.json only while starting
        # again (connect wrote it) or while its release is under way
        if status in ("gone", "dead") or \
                (status == "exited" and not os.path.exists(f"{root.container_dir(cid)}/network.json")):
            try:
                os.unlink(f"{_leases_dir(root, name)}/{ip}")
                out.append(f"released address {ip} of container {cid[:12]} ({cname}) on network {name}")
            except FileNotFoundError:
                pass
    return out


def cleanup(root):
    """For `diyc cleanup`: leases and port reservations whose container is
    gone.  (Dead containers' own resources are released by runtime.cleanup
    through release().)  Lines out."""
    out = []
    for rec in list_networks(root):
        with root.lock(f"network-{rec['name']}"):
            out += _reclaim_orphans(root, rec["name"])
    pdir = _ports_dir(root)
    stale = []
    for entry in _listdir(pdir):
        try:
            cid = os.readlink(f"{pdir}/{entry}").split(" ")[0]
        except OSError:
            continue
        if not os.path.exists(f"{root.container_dir(cid)}/network.json"):
            stale.append(entry)
    if stale:
        with root.lock("ports"):
            for entry in stale:
                try:
                    os.unlink(f"{pdir}/{entry}")
                    out.append(f"released published port {entry}")
                except FileNotFoundError:
                    pass
            _apply_firewall(root, only_if_present=True)
    return out


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
