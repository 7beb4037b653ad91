"""IPv4 addresses, subnets and published ports as diyc's networks take
them: the parsing and arithmetic, nothing else."""

from ..errors import InvalidArgument
from ..numbers import is_digits


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


def mac_for(ip):
    """A container's MAC address on a bridge, from its IPv4 address as
    docker's (before 26.0) made it: 02:42 and the address's four bytes (a
    locally administered, unicast address, unique where the address is)."""
    n = ip_to_int(ip)
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255))


def overlaps(a, alen, b, blen):
    plen = min(alen, blen)
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
    return (a & mask) == (b & mask)


def expand_publish(spec):
    """docker's -p with port ranges, [HOSTIP:][HOSTPORTS:]PORTS[/tcp|udp]
    where each side is a port or a range of as many (8000-8002:80-82)
    -> [dict as parse_publish gives it], one per port.  No host port
    (`80`, `80-82`, `127.0.0.1::80`): each gets a random free one at start
    (host_port 0, "random"); a host range for one port (8000-8010:80): a
    free one of the range ("host_range": [8000, 8010])."""
    text, slash, proto = str(spec).partition("/")
    head, _, ports = text.rpartition(":")
    host_ip, sep, host_ports = head.rpartition(":")
    # no range or a bad protocol: parse_publish's error names the value given
    if proto not in ("", "tcp", "udp") or ("-" not in host_ports and "-" not in ports):
        return [parse_publish(spec)]
    ctr_range = _port_range(ports, spec)
    if not host_ports:  # random host ports for a range of container ports
        return [parse_publish(f"{head}{':' if head else ''}{c}{slash}{proto}") for c in ctr_range]
    host_range = _port_range(host_ports, spec)
    if len(ctr_range) == 1 and len(host_range) > 1:  # one port, a free one of the range
        p = parse_publish(f"{host_ip}{sep}{host_range[0]}:{ctr_range[0]}{slash}{proto}")
        return [dict(p, host_port=0, random=True, host_range=[int(host_range[0]), int(host_range[-1])])]
    if len(host_range) != len(ctr_range):
        raise InvalidArgument(f"invalid -p value {spec!r}: the host and container port ranges "
                              "must be of the same length")
    return [parse_publish(f"{host_ip}{sep}{h}:{c}{slash}{proto}") for h, c in zip(host_range, ctr_range)]


def _port_range(text, spec):
    first, dash, last = text.partition("-")
    if not dash:
        return [first]
    if not (is_digits(first) and is_digits(last) and len(first) <= 5 and len(last) <= 5) or \
            not 1 <= int(first) <= int(last) <= 65535:
        raise InvalidArgument(f"invalid -p value {spec!r}: {text!r} is not a port range (such as 8000-8002)")
    return [str(n) for n in range(int(first), int(last) + 1)]


def parse_publish(spec):
    """docker's -p [[HOSTIP:][HOSTPORT]:]CONTAINERPORT[/tcp|/udp] -> dict;
    no host port: host_port 0 and "random" (connect picks a free one)."""
    text, _, proto = str(spec).partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid -p value {spec!r}: the protocol must be tcp or udp")
    parts = text.split(":")
    if len(parts) == 1:
        host_ip, host_port, ctr_port = "0.0.0.0", "", parts[0]
    elif len(parts) == 2:
        host_ip, host_port, ctr_port = "0.0.0.0", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host_port, ctr_port = parts
        host_ip = host_ip or "0.0.0.0"
    else:
        raise InvalidArgument(f"invalid -p value {spec!r}: expected "
                              "[[HOSTIP:][HOSTPORT]:]CONTAINERPORT[/tcp|udp]")
    ip_to_int(host_ip, f"host IP in -p {spec!r}")
    host_port = _port_number(host_port or "0", spec, lowest=0)  # 0: any free port, as docker's
    out = {"proto": proto, "host_ip": host_ip, "host_port": host_port,
           "container_port": _port_number(ctr_port, spec)}
    if not host_port:
        out["random"] = True
    return out


def _port_number(text, spec, lowest=1, what="-p value"):
    if not is_digits(text) or len(text) > 5 or not lowest <= int(text) <= 65535:
        raise InvalidArgument(f"invalid {what} {spec!r}: {text!r} is not a port number (1-65535)")
    return int(text)


def parse_expose(text, what="--expose"):
    """docker's --expose PORT[-END][/tcp|udp] (and an image's ExposedPorts
    key, "80/tcp") -> ["80/tcp", ...], one per port."""
    ports, _, proto = str(text).partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid {what} {text!r}: the protocol must be tcp or udp")
    first, dash, last = ports.partition("-")
    for p in (first, last) if dash else (first,):
        _port_number(p, text, what=what)
    if dash and int(last) < int(first):
        raise InvalidArgument(f"invalid {what} {text!r}: {ports!r} is not a port range (such as 8000-8002)")
    return [f"{n}/{proto}" for n in range(int(first), int(last or first) + 1)]
