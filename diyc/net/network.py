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
touching each other's: see roots.py, and
/run/diyc/ for the little state they share.

Everything on the start path speaks netlink through diyc.net.netlink (raw
sockets: `import pyroute2` alone costs ~250 ms); the management plane
(rm, prune, inspect, disconnect, stats) through pyroute2, in
management.py.  `network create` stays on netlink.py: the first `run
--network bridge` defines the default network.  Published ports (published.py) are the one exception:
nftables rules, as JSON, through the `nft` command; the plain start path
with no -p never runs it.  `diyc network connect/disconnect` on a running
container: attach.py.
"""

import errno
import os

from ..config import check_name
from ..errors import Conflict, InvalidArgument, NetworkError, NotFound
from ..events import emit
from ..state import atomic_write, listdir, read_json, write_json
from . import firewall, published
from .addresses import expand_publish, int_to_ip, ip_to_int, mac_for, overlaps, parse_subnet
from .roots import (default_bridge, delete_bridge, diyc_bridges, firewall_table, forward_state_path,
                    host_lock, leases_dir, list_networks, load, netlink_socket, networks_dir,
                    other_roots_subnets,
                    ports_dir, read_sysctl, record_path, register_root, root_id, unregister_root,
                    write_sysctl)

DEFAULT_NETWORK = "bridge"
BUILTIN = ("none", "host", DEFAULT_NETWORK)
# Default subnets to try, first free one wins (checked against the host's routes)
DEFAULT_SUBNETS = [f"172.{n}.0.0/16" for n in range(30, 15, -1)] + \
    [f"10.{n}.0.0/16" for n in range(200, 255)]


# -- network definitions ----------------------------------------------------------

def create(root, name, subnet=None):
    """Define a network (the bridge itself is made on first use)."""
    check_name(name, "network", max_length=64)
    if name in ("none", "host") or name.startswith("container"):
        raise InvalidArgument(f"network name {name!r} is reserved")
    if subnet is not None:
        parse_subnet(subnet)  # its syntax, before anything is made
    root.ensure()
    os.makedirs(networks_dir(root), exist_ok=True)
    rid = root_id(root)
    # lock order, here and everywhere: this root's locks, then the host's
    with root.lock("networks"), host_lock():
        if load(root, name):
            raise Conflict(f"network {name!r} already exists")
        own = list_networks(root)
        taken = [(parse_subnet(n["subnet"]), f"network {n['name']!r}") for n in own]
        # netlink.py, not pyroute2: the first `run --network bridge` defines
        # the default network here, on the start path
        with netlink_socket() as nl:
            host_routes = _host_routes(nl, {n["bridge"] for n in own})
            links = set(nl.links())
        if subnet is not None:
            # only this root's networks and this namespace's routes: another
            # root's network may live in another network namespace, and if
            # it is here its bridge is a route (checked again at set-up)
            net, plen = parse_subnet(subnet)
            for (other, olen), what in taken + host_routes:
                if overlaps(net, plen, other, olen):
                    raise Conflict(f"subnet {subnet} overlaps {what} ({int_to_ip(other)}/{olen})")
        else:
            # automatic: also clear of every other root's networks, made on
            # this host but perhaps without a bridge (hence a route) yet
            taken += other_roots_subnets(rid)
            for candidate in DEFAULT_SUBNETS:
                net, plen = parse_subnet(candidate)
                if not any(overlaps(net, plen, o, ol) for (o, ol), _ in taken + host_routes):
                    break
            else:
                raise Conflict("no free default subnet left: pass --subnet")
        nid = os.urandom(16).hex()
        while f"diyc-{nid[:8]}" in links:  # another root's network, here
            nid = os.urandom(16).hex()
        record = {
            "name": name, "id": nid,
            "bridge": default_bridge(root, rid) if name == DEFAULT_NETWORK else f"diyc-{nid[:8]}",
            "subnet": f"{int_to_ip(net)}/{plen}", "gateway": int_to_ip(net + 1),
        }
        os.makedirs(leases_dir(root, name), exist_ok=True)
        write_json(record_path(root, name), record)
        register_root(root, rid)
    emit(root, "network", "create", nid, {"name": name, "type": "bridge"})
    return record


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


def remove(root, name):
    """`diyc network rm`: refuses while containers use the network."""
    rec = load(root, name)
    if rec is None:
        raise NotFound(f"no such network: {name}")
    with root.lock(f"network-{name}"):
        _reclaim_orphans(root, name)
        users = leases(root, name)
        if users:
            names = ", ".join(sorted(u[1] for u in users.values()))
            raise Conflict(f"network {name} is in use by container(s): {names}")
        delete_bridge(rec["bridge"])
        os.unlink(record_path(root, name))
        from ..state import remove_tree
        remove_tree(f"{networks_dir(root)}/{name}")
    with root.lock("ports"):
        published.apply_firewall(root, only_if_present=True)
    unregister_root(root)
    emit(root, "network", "destroy", rec["id"], {"name": name, "type": "bridge"})


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
            if leases(root, name):
                in_use = True
                continue
            deleted, restored = delete_bridge(rec["bridge"])
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
            published.apply_firewall(root, only_if_present=True)
        elif firewall.delete_table(table):
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
    # before the default network is defined
    ports = [port for spec in publish or () for port in expand_publish(spec)]
    if ip is not None:
        ip_to_int(ip, "--ip address")
    rec = load(root, network)
    if rec is None and network != DEFAULT_NETWORK:
        check_name(network, "network", max_length=64)
        raise NotFound(f"network {network} not found (see diyc network ls)")
    if ip is not None:
        rec = defined(root, network)
        _check_ip_in(rec, ip)
        try:
            os.readlink(f"{leases_dir(root, network)}/{ip}")
            raise Conflict(f"address {ip} is already in use on network {network}")
        except FileNotFoundError:
            pass
    seen = set()
    for p in ports:
        key = (p["proto"], p["host_port"])
        if p.get("random"):
            continue  # each gets a free port of its own at start
        if key in seen:
            raise InvalidArgument(f"host port {p['host_port']}/{p['proto']} is published twice")
        seen.add(key)
    return {"network": network, "requested_ip": ip, "ports": ports}


def defined(root, network):
    """The record of `network`, the default one defined on first use
    (once the container's other checks passed: a refused run leaves no
    network behind)."""
    rec = load(root, network)
    if rec is None and network == DEFAULT_NETWORK:
        try:
            rec = create(root, DEFAULT_NETWORK)
        except Conflict:
            rec = load(root, network)  # another diyc defined it just now
    return rec


def _joined_container(root, network):
    """The running container whose network namespace `container:NAME` names."""
    from ..record import ContainerRecord
    ref = network.partition(":")[2]
    if not ref:
        raise InvalidArgument("--network container: needs a container name or id")
    target = ContainerRecord.load(ref, root)
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
    from ..rootfs import spawn_in
    from ..state import pid_alive
    target = _joined_container(ctr.root, ctr.record["network"])
    state = target.record["state"]
    if not pid_alive(state["pid"], state.get("pid_start")):
        raise Conflict(f"cannot join the network of container {target.name}: it is not running")
    join = dict(init.join_paths or {}, network=f"/proc/{state['pid']}/ns/net")
    return spawn_in(init.replace(clone_flags=init.clone_flags & ~_native_flag("network"),
                                 loopback_up=False, join_paths=join))


def _native_flag(kind):
    from .. import _native
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


def write_etc_files(cdir, hostname, resolv_conf=None):
    """/etc/hostname and /etc/resolv.conf (`resolv_conf`, default the
    host's) now; /etc/hosts gets its addresses when connect() knows them
    (written in place: it is bind-mounted)."""
    _write(f"{cdir}/hostname", f"{hostname}\n")
    _write(f"{cdir}/resolv.conf", host_resolv_conf() if resolv_conf is None else resolv_conf)
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
    hostname = ctr.record["spec"].get("hostname") or cid[:12]
    with root.lock(f"network-{name}"):
        ip = lease(root, rec, f"{cid} {ctr.name} {hostname}", settings.get("requested_ip"))
        settings.update(ip=ip, prefixlen=parse_subnet(rec["subnet"])[1], gateway=rec["gateway"],
                        bridge=rec["bridge"], veth=f"veth{os.urandom(5).hex()}", ifname="eth0")
        write_json(f"{ctr.dir}/network.json", settings)
        line = f"{ip}\t{hostname} {ctr.name}\n"
        _write(f"{ctr.dir}/hosts", _hosts_header() + settings.get("extra_hosts", "") + line +
               announce(root, name, cid, line))
    if settings["ports"]:
        published.reserve(root, cid, ip, settings["ports"])
        if any(p.get("random") for p in settings["ports"]):
            write_json(f"{ctr.dir}/network.json", settings)  # the host ports picked, for release()
    plumb(root, rec, settings, pid, default_route=True)
    return settings


def announce(root, name, cid, line):
    """Append `line` (container `cid`'s address) to the /etc/hosts of its
    peers on network `name` -> their lines, for its own.  The caller holds
    the network's lock."""
    lines = []
    for pip, (pcid, pname, phost) in sorted(leases(root, name).items()):
        if pcid == cid:
            continue
        lines.append(f"{pip}\t{phost} {pname}\n")
        try:
            _write(f"{root.container_dir(pcid)}/hosts", line, flags=os.O_APPEND)
        except FileNotFoundError:
            pass  # a peer being removed
    return "".join(lines)


def plumb(root, rec, settings, pid, default_route):
    """The veth pair of `settings` (its host end `veth` on the network's
    bridge, made first if need be; its peer `ifname` in the netns of
    `pid`), with the leased address, up; the default route through the
    network's gateway if asked."""
    from .netlink import Netlink
    try:
        with Netlink() as nl:
            try:
                master = nl.link_index(rec["bridge"])
            except OSError as e:
                if e.errno != errno.ENODEV:
                    raise
                master = _setup_bridge(root, rec, nl)
            settings["mac"] = mac_for(settings["ip"])  # (docker's MacAddress)
            nl.add_veth(settings["veth"], settings["ifname"], pid, master, peer_mac=settings["mac"])
        with Netlink.in_netns(f"/proc/{pid}/ns/net") as inner:
            index = inner.link_index(settings["ifname"])
            inner.set_up(index)
            inner.add_address(index, settings["ip"], settings["prefixlen"])
            if default_route:
                inner.add_default_route(rec["gateway"], index)
    except OSError as e:
        raise NetworkError(f"network {rec['name']}: {e.strerror}") from None


def lease(root, rec, me, requested):
    """Claim an address (the caller holds the network's lock)."""
    name = rec["name"]
    where = leases_dir(root, name)
    os.makedirs(where, exist_ok=True)
    if requested:
        _check_ip_in(rec, requested)
        try:
            os.symlink(me, f"{where}/{requested}")
        except FileExistsError:
            raise Conflict(f"address {requested} is already in use on network {name}") from None
        return requested
    net, plen = parse_subnet(rec["subnet"])
    gateway = ip_to_int(rec["gateway"])
    for attempt in (0, 1):
        used = {ip_to_int(ip) for ip in listdir(where)}
        for n in range(net + 1, net + (1 << (32 - plen)) - 1):
            if n != gateway and n not in used:
                ip = int_to_ip(n)
                os.symlink(me, f"{where}/{ip}")
                return ip
        if not attempt:
            _reclaim_orphans(root, name)
    raise Conflict(f"no free address left on network {name} ({rec['subnet']})")


def leases(root, name):
    """{ip: (container id, name, hostname)} of the network's leases."""
    where = leases_dir(root, name)
    out = {}
    for ip in listdir(where):
        try:
            target = os.readlink(f"{where}/{ip}")
        except FileNotFoundError:
            continue
        parts = target.split(" ")
        if len(parts) == 3:
            out[ip] = tuple(parts)
    return out


def _setup_bridge(root, rec, nl):
    """First container on this network in this network namespace: the
    bridge, its gateway address, forwarding and the firewall.  -> ifindex."""
    with root.lock(f"network-{rec['name']}"), host_lock():
        try:
            return nl.link_index(rec["bridge"])
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise
        net, plen = parse_subnet(rec["subnet"])
        for (dst, dlen), what in _host_routes(nl, ()):
            if overlaps(net, plen, dst, dlen):
                raise NetworkError(f"network {rec['name']}: its subnet {rec['subnet']} overlaps {what} "
                                   f"({int_to_ip(dst)}/{dlen}) in this network namespace")
        if not diyc_bridges(nl):
            # the first diyc bridge here (of any root): remember ip_forward
            # as it is, for whoever deletes the last one (a file left by a
            # namespace that had the same inode, or a crash, is stale now)
            atomic_write(forward_state_path(), read_sysctl("net/ipv4/ip_forward") + "\n")
        nl.add_bridge(rec["bridge"])
        index = nl.link_index(rec["bridge"])
        nl.add_address(index, rec["gateway"], plen)
        # published ports on 127.0.0.1: DNAT to the container makes the packet
        # leave through the bridge with a loopback source, dropped unless allowed
        write_sysctl(f"net/ipv4/conf/{rec['bridge']}/route_localnet", "1")
        write_sysctl("net/ipv4/ip_forward", "1")
    with root.lock("ports"):
        published.apply_firewall(root)
    return index


# -- end of a container -------------------------------------------------------------

def release(ctr):
    """Undo connect() and any `network connect` (attach.py): leases, peers'
    hosts lines, ports.  Idempotent (each step checks that what it removes
    is still there and still ours), and safe on a half-done connect (crash
    or failure at any step).  The veths go with the container's netns."""
    for entry in listdir(ctr.dir):
        if entry.startswith("network-") and entry.endswith(".json"):
            release_file(ctr.root, ctr.id, f"{ctr.dir}/{entry}")
    release_file(ctr.root, ctr.id, f"{ctr.dir}/network.json")
    ctr.record.pop("networks_connected", None)
    if ctr.record.get("auto_remove"):
        # about to be removed: an empty dir is one rmdir(), not a tree walk
        for f in ("hostname", "hosts", "resolv.conf"):
            try:
                os.unlink(f"{ctr.dir}/{f}")
            except FileNotFoundError:
                pass


def release_file(root, cid, path):
    """Release what the settings at `path` hold, then the file."""
    try:
        settings = read_json(path)
    except FileNotFoundError:
        return
    release_address(root, cid, settings)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # a second releaser (not under the container's lock) was quicker


def release_address(root, cid, settings):
    """A network's lease of container `cid`, its peers' hosts lines for it
    and its published ports."""
    name, ip = settings["network"], settings.get("ip")
    if settings.get("ports"):
        pdir = ports_dir(root)
        table = firewall_table(root)
        with root.lock("ports"):
            released = []
            for p in published.with_picked(pdir, cid, settings["ports"]):
                path = f"{pdir}/{published.port_key(p)}"
                try:
                    if os.readlink(path).split(" ")[0] != cid:
                        continue  # never ours: the reservation failed on it
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                released.append(p)
            firewall.delete_ports(table, released)
    if ip:
        with root.lock(f"network-{name}"):
            lease = f"{leases_dir(root, name)}/{ip}"
            try:
                if os.readlink(lease).split(" ")[0] == cid:
                    os.unlink(lease)
            except FileNotFoundError:
                pass
            prefix = f"{ip}\t"
            for pcid, _, _ in leases(root, name).values():
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
    from ..record import ContainerRecord
    out = []
    for ip, (cid, cname, _) in leases(root, name).items():
        try:
            status = ContainerRecord.load_id(root, cid).status
        except (FileNotFoundError, NotADirectoryError, ValueError):
            status = "gone"
        # an exited container keeps its network.json only while starting
        # again (connect wrote it) or while its release is under way
        cdir = root.container_dir(cid)
        if status in ("gone", "dead") or (status == "exited" and not os.path.exists(f"{cdir}/network.json")
                                          and not os.path.exists(f"{cdir}/network-{name}.json")):
            try:
                os.unlink(f"{leases_dir(root, name)}/{ip}")
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
    pdir = ports_dir(root)
    stale = []
    for entry in listdir(pdir):
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
            published.apply_firewall(root, only_if_present=True)
    return out
