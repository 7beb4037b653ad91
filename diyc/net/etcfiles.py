"""The container's /etc/resolv.conf and /etc/hosts as docker writes them,
from --dns, --dns-search, --dns-option and --add-host.

Files of the container's directory, bind-mounted over the image's (never
written into it): on a bridge network always (network.py writes them,
adding the addresses connect() hands out), on `none` and `host` only when
one of these flags asks for them (the image's own files otherwise, and no
file to write on the fast path).

    resolv.conf   the host's (on a bridge: without its loopback
                  nameservers, which the container cannot reach), each
                  kind of line replaced by its flag when given
    hosts         localhost, then --add-host lines (HOST:IP; IP may be
                  `host-gateway`: the host's address on the container's
                  bridge, or 127.0.0.1 with --network host)
"""

from ..errors import InvalidArgument

HOSTS_HEADER = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
HOST_GATEWAY = "host-gateway"
LOOPBACK_GATEWAY = "127.0.0.1"  # --network host: the host is this namespace


def check_ip(text, what):
    """An IPv4 or IPv6 address -> text."""
    import _socket
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, text)
            return text
        except (OSError, ValueError):
            continue
    raise InvalidArgument(f"invalid {what} {text!r}: not an IP address")


def parse_extra_host(value):
    """--add-host HOST:IP (or HOST=IP; an IPv6 address may be in
    brackets) -> (host, ip or HOST_GATEWAY)."""
    sep = "=" if "=" in value else ":"
    host, found, ip = value.partition(sep)
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not found or not host or not ip:
        raise InvalidArgument(f"invalid --add-host {value!r}: expected HOST:IP")
    if not host.isascii() or not all(c.isalnum() or c in "-._" for c in host):
        raise InvalidArgument(f"invalid --add-host {value!r}: {host!r} is not a host name")
    return host, ip if ip == HOST_GATEWAY else check_ip(ip, f"--add-host address in {value!r}")


def check_dns_option(value):
    if not value or any(c.isspace() for c in value):
        raise InvalidArgument(f"invalid --dns-option {value!r}: one option, such as ndots:2")
    return value


def check_search_domain(value):
    if value != "." and (not value or not value.isascii() or
                         not all(c.isalnum() or c in "-._" for c in value)):
        raise InvalidArgument(f"invalid --dns-search {value!r}: not a domain name")
    return value


def resolv_conf(base, dns=(), search=(), options=()):
    """The container's resolv.conf: `base` (the host's text) with its
    nameserver, search and options lines replaced by those given.  A
    --dns-search of "." alone means no search line (docker's)."""
    given = {"nameserver": list(dns or ()), "search": list(search or ()), "options": list(options or ())}
    kept = []
    for line in base.splitlines():
        fields = line.split()
        if fields and fields[0] in ("domain", "search") and given["search"]:
            continue
        if fields and fields[0] in given and given[fields[0]]:
            continue
        kept.append(line)
    if given["search"] and given["search"] != ["."]:
        kept.append("search " + " ".join(s for s in given["search"] if s != "."))
    kept += [f"nameserver {ip}" for ip in given["nameserver"]]
    if given["options"]:
        kept.append("options " + " ".join(given["options"]))
    return "\n".join(kept) + "\n"


def extra_hosts_text(extra_hosts, gateway):
    """The --add-host lines; `gateway`: the address host-gateway stands for
    (None: the container has none to give)."""
    lines = []
    for host, ip in extra_hosts or ():
        if ip == HOST_GATEWAY:
            if gateway is None:
                raise InvalidArgument("--add-host ...:host-gateway needs a bridge network or "
                                      "--network host (with --network none the host is unreachable)")
            ip = gateway
        lines.append(f"{ip}\t{host}\n")
    return "".join(lines)


def read_host_file(path):
    try:
        with open(path) as f:
            return f.read(1 << 20)
    except OSError:
        return ""
