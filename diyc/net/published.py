"""Published ports (-p): their reservations under the root, checked
against this root's, the host's sockets and other roots' in the same
namespace, and the nftables table (firewall.py) that DNATs them."""

import errno
import os

from ..errors import Conflict, InvalidArgument
from ..state import listdir
from . import firewall
from .roots import (firewall_table, host_lock, list_networks, ports_dir, published_here_by_other_roots,
                    root_id, same_host_port)


def port_key(p):
    return f"{p['proto']}-{p['host_port']}-{p['host_ip']}"


def reserve(root, cid, ip, ports):
    """Reserve `ports` for container `cid` at `ip` and DNAT them to it.
    A port with "random" gets a free host port here (its host_port set)."""
    pdir = ports_dir(root)
    os.makedirs(pdir, exist_ok=True)
    fixed = [p for p in ports if not p.get("random")]
    with root.lock("ports"):
        existing = listdir(pdir)
        for p in fixed:
            for entry in existing:
                if same_host_port(entry, p):
                    owner = os.readlink(f"{pdir}/{entry}").split(" ")[0]
                    raise Conflict(f"port {p['host_ip']}:{p['host_port']}/{p['proto']} is already "
                                   f"published by container {owner[:12]}")
            _check_port_free(p)
        with host_lock():  # checked and claimed as one step against other roots too
            clash = published_here_by_other_roots(root_id(root), fixed)
            if clash:
                p, what = clash
                raise Conflict(f"port {p['host_ip']}:{p['host_port']}/{p['proto']} is already published by {what}")
            for p in fixed + [p for p in ports if p.get("random")]:  # (a random one never takes a fixed one's)
                if p.get("random"):
                    p["host_port"] = _free_port(root, p, existing)
                os.symlink(f"{cid} {ip}:{p['container_port']}", f"{pdir}/{port_key(p)}")
                existing.append(port_key(p))
        if not firewall.add_ports(firewall_table(root), ip, ports):
            apply_firewall(root)  # the table is gone (pruned?): rebuild it, ports included


def _free_port(root, p, existing):
    """A host port for `p` (its proto and host_ip) that no socket holds
    and no reservation of any root takes, as docker's: the first free one
    of its host_range, else one of the kernel's ephemeral range
    (ip_local_port_range), through bind(port 0).  The caller holds lock
    "ports" and the host lock."""
    import _socket
    kind = _socket.SOCK_STREAM if p["proto"] == "tcp" else _socket.SOCK_DGRAM
    low, high = p.get("host_range") or (0, 0)
    for wanted in range(low, high + 1) if low else [0] * 100:
        s = _socket.socket(_socket.AF_INET, kind)
        try:
            s.bind((p["host_ip"], wanted))
            port = s.getsockname()[1]
        except OSError as e:
            if e.errno == errno.EADDRINUSE and wanted:
                continue
            if e.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"cannot publish on {p['host_ip']}: not an address of this host") from None
            raise
        finally:
            s.close()
        candidate = dict(p, host_port=port)
        if not any(same_host_port(entry, candidate) for entry in existing) and \
                not published_here_by_other_roots(root_id(root), [candidate]):
            return port
    where = f"{low}-{high}" if low else ""
    raise Conflict(f"no free host port for {p['host_ip']}:{where}:{p['container_port']}/{p['proto']}")


def with_picked(pdir, cid, ports):
    """`ports` as a release sees them: with a "random" one, whatever `cid`
    holds (a start cut short may not have noted its pick)."""
    if not any(p.get("random") for p in ports):
        return ports
    out = []
    for entry in listdir(pdir):
        try:
            owner = os.readlink(f"{pdir}/{entry}").split(" ")[0]
            proto, port, host_ip = entry.split("-", 2)
        except (OSError, ValueError):
            continue
        if owner == cid:
            out.append({"proto": proto, "host_port": int(port), "host_ip": host_ip})
    return out


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


def apply_firewall(root, only_if_present=False):
    """(Re)write this root's table (`ip diyc`, `ip diyc-<root id>`) from
    its network records and port reservations, in one transaction (see
    firewall.py).  The caller holds lock "ports"."""
    table = firewall_table(root)
    if only_if_present and not firewall.table_exists(table):
        return
    published = []
    pdir = ports_dir(root)
    for entry in listdir(pdir):
        try:
            proto, port, host_ip = entry.split("-", 2)
            cip, cport = os.readlink(f"{pdir}/{entry}").split(" ")[1].split(":")
            published.append(({"proto": proto, "host_port": int(port), "host_ip": host_ip}, cip, int(cport)))
        except (OSError, ValueError, IndexError):
            continue
    firewall.write_table(table, [(rec["subnet"], rec["bridge"]) for rec in list_networks(root)], published)
