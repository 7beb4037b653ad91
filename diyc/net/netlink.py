"""A small rtnetlink client: just the requests a container start makes
(links, veth pairs, bridges, IPv4 addresses and routes), over a raw
AF_NETLINK socket.  Everything else (deleting bridges and veths, counters,
the `diyc network` commands) is management.py's, through pyroute2.

Why not pyroute2 here: importing it costs ~250 ms, twenty times a whole
`diyc run`, and the per-container work is five requests.  This module
imports only `_socket` and `struct` (~0.4 ms together).

Messages are `struct nlmsghdr` + a fixed family header + attributes
(`struct nlattr`: u16 length, u16 type, payload padded to 4 bytes); see
rtnetlink(7) and <linux/rtnetlink.h>, <linux/if_link.h>.
"""

import os
import struct

import _socket

from .. import _native

NETLINK_ROUTE = 0
CLONE_NEWNET = 0x40000000

# <linux/netlink.h>
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_ROOT, NLM_F_MATCH = 0x100, 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLA_F_NESTED = 0x8000
# extended acks: an error carries the kernel's own explanation as a text
# attribute (the one `ip` prints after "Error:"); capped: without an echo of
# our request
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200   # flags of an NLMSG_ERROR
NLMSGERR_ATTR_MSG = 1

# <linux/rtnetlink.h>
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR = 20
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RT_TABLE_MAIN = 254
RTPROT_BOOT, RTPROT_STATIC = 3, 4
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15

# <linux/if_link.h>, <linux/if_addr.h>, <net/if.h>
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID = 1, 3, 10, 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFF_UP = 0x1

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NLATTR = struct.Struct("=HH")


def attr(kind, payload):
    """One attribute; `payload` is bytes, a str (NUL-terminated), an int
    (u32) or a list of attributes (nested)."""
    if isinstance(payload, str):
        payload = payload.encode() + b"\0"
    elif isinstance(payload, int):
        payload = struct.pack("=I", payload)
    elif isinstance(payload, list):
        payload = b"".join(payload)
        kind |= NLA_F_NESTED
    size = _NLATTR.size + len(payload)
    return _NLATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


def parse_attrs(data, offset=0):
    """{type: payload bytes} of the attributes in data[offset:]."""
    out = {}
    while offset + 4 <= len(data):
        size, kind = _NLATTR.unpack_from(data, offset)
        if size < 4:
            break
        out[kind & ~NLA_F_NESTED] = data[offset + 4:offset + size]
        offset += (size + 3) & ~3
    return out


def ifinfomsg(index=0, flags=0, change=0):
    return _IFINFOMSG.pack(0, 0, index, flags, change)


def error_text(errno_, flags, payload):
    """strerror, then what the kernel said (extended ack), if it did."""
    text = os.strerror(errno_)
    if flags & NLM_F_ACK_TLVS:
        # after the error code: the header of our request (all of it unless capped)
        echoed = _NLMSGHDR.size if flags & NLM_F_CAPPED else _NLMSGHDR.unpack_from(payload, 4)[0]
        said = parse_attrs(payload, 4 + ((echoed + 3) & ~3)).get(NLMSGERR_ATTR_MSG, b"").rstrip(b"\0")
        if said:
            text += f" ({said.decode(errors='replace')})"
    return text


class Netlink:
    """One NETLINK_ROUTE socket, bound to the network namespace of the
    thread that made it (it stays there whatever the thread does after)."""

    def __init__(self):
        self.sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                                   NETLINK_ROUTE)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.bind((0, 0))
        self.seq = 0

    @classmethod
    def in_netns(cls, path):
        """A socket in the network namespace at `path` (/proc/PID/ns/net):
        this thread enters it, opens the socket, and comes back."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _native.setns(target, CLONE_NEWNET)
            finally:
                os.close(target)
            try:
                return cls()
            finally:
                _native.setns(own, CLONE_NEWNET)
        finally:
            os.close(own)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, msg_type, body, flags=NLM_F_ACK):
        """Send one request; return the list of (type, payload) replies.
        A kernel error raises OSError with its errno, and the kernel's
        explanation when it gives one."""
        self.seq += 1
        seq = self.seq
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type,
                                      NLM_F_REQUEST | flags, seq, 0) + body)
        replies = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                size, kind, mflags, mseq, _ = _NLMSGHDR.unpack_from(data, offset)
                payload = data[offset + _NLMSGHDR.size:offset + size]
                offset += (size + 3) & ~3
                if mseq != seq:
                    continue  # a late answer to an earlier request
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(-code, error_text(-code, mflags, payload))
                    return replies
                if kind == NLMSG_DONE:
                    return replies
                replies.append((kind, payload))
                if not (mflags & NLM_F_MULTI) and not (flags & NLM_F_ACK):
                    return replies

    # -- links ----------------------------------------------------------------

    def link_index(self, name):
        """The ifindex of `name`; OSError(ENODEV) if there is none."""
        replies = self.request(RTM_GETLINK, ifinfomsg() + attr(IFLA_IFNAME, name), flags=0)
        return _IFINFOMSG.unpack_from(replies[0][1])[2]

    def links(self):
        """{name: (index, master index or 0, kind or None)} of every link."""
        out = {}
        for _, payload in self.request(RTM_GETLINK, ifinfomsg(), flags=NLM_F_DUMP):
            index = _IFINFOMSG.unpack_from(payload)[2]
            attrs = parse_attrs(payload, _IFINFOMSG.size)
            name = attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode()
            master = struct.unpack("=I", attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else 0
            info = parse_attrs(attrs.get(IFLA_LINKINFO, b""))
            kind = info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode() or None
            out[name] = (index, master, kind)
        return out

    def add_bridge(self, name):
        """Create bridge `name`, up.  OSError(EEXIST) if it exists."""
        self.request(RTM_NEWLINK,
                     ifinfomsg(flags=IFF_UP, change=IFF_UP) + attr(IFLA_IFNAME, name) +
                     attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "bridge")]),
                     flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def add_veth(self, name, peer_name, peer_pid, master=0, peer_mac=None):
        """A veth pair: `name` here, up (attached to bridge index `master` if
        given), `peer_name` created directly in the network namespace of
        process `peer_pid`, so it never shows up here, with MAC address
        `peer_mac` ("02:42:...") if given.  The peer stays down (the kernel
        refuses IFF_UP for a peer in another namespace): bring it up from
        inside with set_up()."""
        peer = ifinfomsg() + attr(IFLA_IFNAME, peer_name) + \
            attr(IFLA_NET_NS_PID, peer_pid)
        if peer_mac:
            peer += attr(IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", "")))
        body = ifinfomsg(flags=IFF_UP, change=IFF_UP) + attr(IFLA_IFNAME, name)
        if master:
            body += attr(IFLA_MASTER, master)
        body += attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "veth"),
                                     attr(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer)])])
        self.request(RTM_NEWLINK, body, flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def set_up(self, index):
        self.request(RTM_NEWLINK, ifinfomsg(index, flags=IFF_UP, change=IFF_UP))

    # -- addresses and routes -------------------------------------------------

    def add_address(self, index, address, prefixlen):
        """IPv4 `address` (dotted) / prefixlen on link `index`."""
        raw = _socket.inet_aton(address)
        self.request(RTM_NEWADDR,
                     _IFADDRMSG.pack(_socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index) +
                     attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw),
                     flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway, index):
        self.request(RTM_NEWROUTE,
                     _RTMSG.pack(_socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                                 RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) +
                     attr(RTA_GATEWAY, _socket.inet_aton(gateway)) + attr(RTA_OIF, index),
                     flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def ipv4_routes(self):
        """[(destination, prefixlen, output link index or 0)] of every IPv4
        route in every table (the default route is ("0.0.0.0", 0, ...))."""
        out = []
        for _, payload in self.request(RTM_GETROUTE, _RTMSG.pack(_socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0),
                                       flags=NLM_F_DUMP):
            dst_len = payload[1]
            attrs = parse_attrs(payload, _RTMSG.size)
            dst = _socket.inet_ntoa(attrs[RTA_DST]) if RTA_DST in attrs else "0.0.0.0"
            oif = struct.unpack("=I", attrs[RTA_OIF])[0] if RTA_OIF in attrs else 0
            out.append((dst, dst_len, oif))
        return out
