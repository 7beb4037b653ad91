"""`diyc network connect/disconnect` on a running container, and the
containers of a network for `diyc network inspect` (inspect_view.network).

A container on a bridge network can join more networks while it runs: a
veth pair whose peer is its next free `ethN`, an address from the
network's leases, its /etc/hosts and its new peers' updated, as at start
(network.connect).  What a connection holds is written to
containers/<id>/network-<name>.json before any of it is made, so the end
of the container (network.release) or a failure half-way releases it like
the network it started with; the record lists it under
"networks_connected" (saved under the container's lock).  A connection
lasts as long as the container runs: a container started again has its
own network only.  Its veth needs no deleting at the end (the kernel takes
it with the netns); disconnect deletes it through pyroute2.
"""

import os

from ..errors import Conflict, InvalidArgument, NotFound
from ..events import emit
from ..state import read_json, write_json
from .addresses import parse_subnet
from .network import announce, lease, leases, plumb, release_file
from .roots import load

def _network(root, name):
    rec = load(root, name)
    if rec is None:
        raise NotFound(f"no such network: {name}")
    return rec


def _attachment(ctr, name):
    return f"{ctr.dir}/network-{name}.json"


def _load_container(root, ref):
    from ..record import ContainerRecord
    return ContainerRecord.load(ref, root)


def connect(root, network, container, ip=None):
    """Connect running `container` to `network` -> the connection's
    settings (ip, prefixlen, gateway, bridge, veth, ifname)."""
    rec = _network(root, network)
    ctr = _load_container(root, container)
    with ctr.lock():
        ctr.reload()
        _check_can_connect(ctr, network)
        settings = {"network": network, "ports": []}
        try:
            _lease_and_announce(ctr, rec, settings, ip)
            plumb(root, rec, settings, ctr.record["state"]["pid"], default_route=False)
        except BaseException:
            _undo(ctr, settings)
            raise
        ctr.record.setdefault("networks_connected", {})[network] = settings
        ctr.save()
    emit(root, "network", "connect", rec["id"], {"container": ctr.id, "name": network, "type": "bridge"})
    return settings


def _check_can_connect(ctr, network):
    if ctr.status != "running":
        raise Conflict(f"container {ctr.name} is not running")
    own = ctr.record.get("network_settings")
    if not own:
        raise InvalidArgument(f"container {ctr.name} runs with --network {ctr.record.get('network')}: "
                              "only a container on a bridge network can join another")
    if own["network"] == network or os.path.exists(_attachment(ctr, network)):
        raise Conflict(f"container {ctr.name} is already connected to network {network}")


def _lease_and_announce(ctr, rec, settings, requested):
    """Its address (recorded in the connection's file at once, so that a
    failure from here on releases it), the peers' /etc/hosts and its own."""
    root, cid, name = ctr.root, ctr.id, rec["name"]
    hostname = ctr.record["spec"].get("hostname") or cid[:12]
    ifname = _free_ifname(ctr.record["state"]["pid"])
    with root.lock(f"network-{name}"):
        ip = lease(root, rec, f"{cid} {ctr.name} {hostname}", requested)
        settings.update(ip=ip, prefixlen=parse_subnet(rec["subnet"])[1], gateway=rec["gateway"],
                        bridge=rec["bridge"], veth=f"veth{os.urandom(5).hex()}", ifname=ifname)
        write_json(_attachment(ctr, name), settings)
        line = f"{ip}\t{hostname} {ctr.name}\n"
        peers = announce(root, name, cid, line)
        with open(f"{ctr.dir}/hosts", "a") as f:  # in place: it is bind-mounted
            f.write(line + peers)


def _free_ifname(pid):
    """The first ethN not taken in the netns of `pid`."""
    from .management import Rtnl
    with Rtnl(f"/proc/{pid}/ns/net") as nl:
        taken = set(nl.links())
    n = 0
    while f"eth{n}" in taken:
        n += 1
    return f"eth{n}"


def _undo(ctr, settings):
    """A connection's veth (if made), its lease, its /etc/hosts lines."""
    pid = ctr.record["state"].get("pid")
    if settings.get("veth") and pid and ctr.status == "running":
        # its end in the container: found wherever this diyc runs (the
        # host end is where the bridge is); the pair goes with it
        from .management import Rtnl
        with Rtnl(f"/proc/{pid}/ns/net") as nl:
            nl.delete_link(settings["ifname"])
    release_file(ctr.root, ctr.id, _attachment(ctr, settings["network"]))
    _drop_own_hosts_lines(ctr, settings)


def disconnect(root, network, container):
    """Undo connect(): the veth, the lease, the /etc/hosts lines."""
    rec = _network(root, network)
    ctr = _load_container(root, container)
    with ctr.lock():
        ctr.reload()
        path = _attachment(ctr, network)
        try:
            settings = read_json(path)
        except FileNotFoundError:
            if (ctr.record.get("network_settings") or {}).get("network") == network:
                raise InvalidArgument(f"network {network} is the one container {ctr.name} was started on "
                                      "(--network): only networks joined with `diyc network connect` "
                                      "can be disconnected") from None
            raise NotFound(f"container {ctr.name} is not connected to network {network}") from None
        _undo(ctr, settings)
        ctr.record.get("networks_connected", {}).pop(network, None)
        ctr.save()
    emit(root, "network", "disconnect", rec["id"], {"container": ctr.id, "name": network, "type": "bridge"})


def _drop_own_hosts_lines(ctr, settings):
    """The container's /etc/hosts lines for its address and its peers' on
    that network (those still there: the lease is already gone)."""
    if not settings.get("ip"):
        return
    addresses = {settings["ip"]} | set(leases(ctr.root, settings["network"]))
    path = f"{ctr.dir}/hosts"
    try:
        with open(path) as f:
            lines = f.read().splitlines(True)
    except FileNotFoundError:
        return
    kept = [line for line in lines if line.split("\t", 1)[0] not in addresses]
    if len(kept) != len(lines):
        with open(path, "r+") as f:  # in place: it is bind-mounted
            f.write("".join(kept))
            f.truncate()


# -- the containers of a network, for its inspect ------------------------------------

def endpoints(root, name):
    """{container id: docker's endpoint (Name, EndpointID, MacAddress,
    IPv4Address, IPv6Address)} of every container with an address on
    network `name`: those started on it and those connected to it.  The
    MAC address is read from the container's namespace (pyroute2)."""
    plen = parse_subnet(_network(root, name)["subnet"])[1]
    out = {}
    for ip, (cid, cname, _) in sorted(leases(root, name).items()):
        settings, pid = _connection_of(root, cid, name)
        out[cid] = {"Name": cname, "EndpointID": settings.get("veth", ""),
                    "MacAddress": _mac(pid, settings.get("ifname")),
                    "IPv4Address": f"{ip}/{plen}", "IPv6Address": ""}
    return out


def _connection_of(root, cid, name):
    """(settings of container `cid` on network `name`, its pid or None)."""
    from ..record import ContainerRecord
    cdir = root.container_dir(cid)
    for path in (f"{cdir}/network-{name}.json", f"{cdir}/network.json"):
        try:
            settings = read_json(path)
        except (FileNotFoundError, ValueError):
            continue
        if settings.get("network") == name:
            break
    else:
        return {}, None
    try:
        ctr = ContainerRecord.load_id(root, cid)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return settings, None
    return settings, ctr.record["state"].get("pid") if ctr.status == "running" else None


def _mac(pid, ifname):
    """The MAC address of `ifname` in the netns of `pid` ("" if unknown)."""
    if not pid or not ifname:
        return ""
    from .management import Rtnl
    try:
        with Rtnl(f"/proc/{pid}/ns/net") as nl:
            link = nl.link(ifname)
    except OSError:
        return ""  # it ended meanwhile
    return link["mac"] if link else ""
