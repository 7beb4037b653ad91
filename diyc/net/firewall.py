"""The firewall of a root's networks: one nftables table (family ip) per
diyc root, written as nftables JSON through `nft -j -f -`.

    ports        published ports: DNAT through maps keyed by
                 proto . port (ports_any, a wildcard host address) or
                 host ip . proto . port (ports_addr), to the container's
                 address (the map) and port (the map's *_port twin: the
                 JSON syntax of nft 1.0.6 cannot declare a map to an
                 address . port pair), jumped to from prerouting and output
                 for local destinations
    postrouting  masquerade what leaves a network for anywhere but a diyc
                 bridge; a published port reached from the same network
                 (the reply must come back through the host); published
                 ports reached on 127.0.0.1 (route_localnet is on)
    forward      isolation: nothing routed from one diyc bridge to another

nftables rules are installed by running `nft`, once per network set-up and
once per container start/end that publishes ports: nf_tables' own netlink
protocol (expressions, sets, transactions) is far larger than a rule set
this small would justify, and the plain start path with no -p never runs
it.  JSON rather than nft's text syntax: every value (a subnet, a bridge
name) is a JSON string, never spliced into a script.
"""

from .. import _json
from ..errors import NetworkError

BRIDGE_PATTERN = "diyc*"   # every diyc bridge of every root, for the wildcards


def run(commands, check=True):
    """Run nftables JSON `commands` as one transaction -> nft's exit code.
    (A subprocess: see the module docstring.)"""
    import subprocess
    script = _json.dumps({"nftables": commands})
    try:
        proc = subprocess.run(["nft", "-j", "-f", "-"], input=script.encode(), capture_output=True)
    except FileNotFoundError:
        raise NetworkError("bridge networking needs the nft command (apt-get install nftables)") from None
    if check and proc.returncode:
        raise NetworkError(f"nft: {proc.stderr.decode(errors='replace').strip()}")
    return proc.returncode


def table_exists(table):
    return run([{"list": {"table": _table(table)}}], check=False) == 0


def delete_table(table):
    """-> True when there was one to delete."""
    return run([{"delete": {"table": _table(table)}}], check=False) == 0


def add_ports(table, ip, ports):
    """DNAT `ports` (as network.parse_publish gives them) to container `ip`
    -> False when the table is missing (the caller rewrites it)."""
    return run([{"add": {"element": e}} for p in ports
                for e in _elements(table, p, ip, p["container_port"])], check=False) == 0


def delete_ports(table, ports):
    """Best effort: an element already gone is no error worth raising."""
    if ports:
        run([{"delete": {"element": e}} for p in ports for e in _elements(table, p)], check=False)


def write_table(table, networks, published):
    """(Re)write `table` whole, in one transaction: networks, [(subnet,
    bridge)]; published, [(port as parse_publish gives it, container ip,
    container port)].  Other roots' tables are theirs: the wildcards match
    their bridges too (isolation between roots, no masquerading into
    them), but only their own tables name their ports."""
    t = _table(table)
    maps = {"ports_any": [], "ports_any_port": [], "ports_addr": [], "ports_addr_port": []}
    for p, ip, port in published:
        maps[_map(p)].append([_key(p), ip])
        maps[_map(p) + "_port"].append([_key(p), int(port)])
    post, fwd = [], []
    for subnet, bridge in networks:
        post.append([_match("==", _saddr(), _prefix(subnet)), _match("!=", _meta("oifname"), BRIDGE_PATTERN),
                     {"masquerade": None}])
        post.append([_match("in", {"ct": {"key": "status"}}, "dnat"), _match("==", _saddr(), _prefix(subnet)),
                     _match("==", _meta("oifname"), bridge), {"masquerade": None}])
        fwd.append([_match("==", _meta("iifname"), bridge), _match("!=", _meta("oifname"), bridge),
                    _match("==", _meta("oifname"), BRIDGE_PATTERN), {"drop": None}])
    post.append([_match("==", _saddr(), _prefix("127.0.0.0/8")),
                 _match("==", _meta("oifname"), BRIDGE_PATTERN), {"masquerade": None}])
    dport = {"payload": {"protocol": "th", "field": "dport"}}
    local = [_match("==", {"fib": {"result": "type", "flags": ["daddr"]}}, "local"),
             {"jump": {"target": "ports"}}]
    rules = [("ports", [_dnat([_daddr(), _meta("l4proto"), dport], "ports_addr")]),
             ("ports", [_dnat([_meta("l4proto"), dport], "ports_any")]),
             ("prerouting", local), ("output", local)]
    rules += [("postrouting", r) for r in post] + [("forward", r) for r in fwd]
    commands = [{"add": {"table": t}}, {"delete": {"table": t}}, {"add": {"table": t}}]
    any_key, addr_key = ["inet_proto", "inet_service"], ["ipv4_addr", "inet_proto", "inet_service"]
    for name, key_type, data_type in (("ports_any", any_key, "ipv4_addr"),
                                      ("ports_any_port", any_key, "inet_service"),
                                      ("ports_addr", addr_key, "ipv4_addr"),
                                      ("ports_addr_port", addr_key, "inet_service")):
        commands.append({"add": {"map": dict(t, table=table, name=name, type=key_type, map=data_type)}})
        if maps[name]:
            commands.append({"add": {"element": dict(t, table=table, name=name, elem=maps[name])}})
    for name, kind, hook, prio in (("ports", None, None, None),
                                   ("prerouting", "nat", "prerouting", -100),
                                   ("output", "nat", "output", -100),
                                   ("postrouting", "nat", "postrouting", 100),
                                   ("forward", "filter", "forward", 0)):
        chain = dict(t, table=table, name=name)
        if kind:
            chain.update(type=kind, hook=hook, prio=prio, policy="accept")
        commands.append({"add": {"chain": chain}})
    commands += [{"add": {"rule": dict(t, table=table, chain=chain, expr=expr)}} for chain, expr in rules]
    run(commands)


# -- JSON pieces ----------------------------------------------------------------

def _table(name):
    return {"family": "ip", "name": name}


def _map(p):
    return "ports_any" if p["host_ip"] == "0.0.0.0" else "ports_addr"


def _key(p):
    key = [p["proto"], int(p["host_port"])]
    return {"concat": key if p["host_ip"] == "0.0.0.0" else [p["host_ip"]] + key}


def _elements(table, p, ip=None, port=None):
    """The two map entries of port `p`: its address and its port (keys only
    without ip and port, to delete them)."""
    key = _key(p)
    return [{"family": "ip", "table": table, "name": _map(p),
             "elem": [[key, ip] if ip else key]},
            {"family": "ip", "table": table, "name": _map(p) + "_port",
             "elem": [[key, int(port)] if ip else key]}]


def _match(op, left, right):
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key):
    return {"meta": {"key": key}}


def _saddr():
    return {"payload": {"protocol": "ip", "field": "saddr"}}


def _daddr():
    return {"payload": {"protocol": "ip", "field": "daddr"}}


def _prefix(subnet):
    addr, _, length = subnet.partition("/")
    return {"prefix": {"addr": addr, "len": int(length)}}


def _dnat(key, maps):
    """DNAT to the address in map `maps`, the port in its *_port twin."""
    key = {"concat": key}
    return {"dnat": {"family": "ip", "addr": {"map": {"key": key, "data": f"@{maps}"}},
                     "port": {"map": {"key": key, "data": f"@{maps}_port"}}}}
