"""The network management plane, through pyroute2: what `diyc network
rm/prune/inspect/connect/disconnect` and `diyc stats` ask of the kernel
(deleting bridges and veths, a link's MAC address and counters, the links
of a container's namespace).

pyroute2 is the project's netlink library, but importing it costs ~250 ms
(twenty times a whole `diyc run`): the per-container start path never
imports this module and speaks through the small netlink.py instead, and
so does all that a start may do (define the default network, make a
bridge, plumb a veth).  An Rtnl answers links() in netlink.Netlink's
shape, so what is decided from it (roots.diyc_bridges) is written once.
"""

import errno

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError


class Rtnl:
    """An rtnetlink socket in this network namespace, or in the one at
    `netns` (a path such as /proc/PID/ns/net; never created if missing).
    Kernel errors come out as OSError with the kernel's errno."""

    def __init__(self, netns=None):
        try:
            self.ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
        except NetlinkError as e:
            raise OSError(e.code, e.args[1] if len(e.args) > 1 else str(e)) from None

    def close(self):
        self.ipr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except NetlinkError as e:
            raise OSError(e.code, e.args[1] if len(e.args) > 1 else str(e)) from None

    def links(self):
        """{name: (index, master index or 0, kind or None)} of every link."""
        return {link.get("ifname"): (link["index"], link.get("master") or 0,
                                     link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"))
                for link in self._call(self.ipr.get_links)}

    def delete_link(self, name):
        """Delete link `name` -> whether it was there."""
        try:
            self._call(self.ipr.link, "del", ifname=name)
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise
            return False
        return True

    def link(self, name):
        """{"mac", "rx_bytes", "tx_bytes"} of link `name`, or None."""
        try:
            found = self._call(self.ipr.get_links, ifname=name)
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise
            return None
        if not found:
            return None
        stats = found[0].get("stats64") or {}
        return {"mac": found[0].get("address"),
                "rx_bytes": stats.get("rx_bytes", 0), "tx_bytes": stats.get("tx_bytes", 0)}
