"""`diyc stats`: resource use of running containers, from their cgroups
(CPU, memory, pids) and the counters of their veths (bytes in and out,
through pyroute2: imported once per `diyc stats`, only when a container
has a veth)."""

import os
import time

from .errors import DiycError


def _read_int(path, default=0):
    try:
        with open(path) as f:
            value = f.read().split()[0]
    except (OSError, IndexError):
        return default
    return default if value == "max" else int(value)


def _cpu_ns(cg):
    if cg.version == 1:
        return _read_int(f"{cg.paths.get('cpuacct', '')}/cpuacct.usage")
    try:
        with open(f"{cg.path}/cpu.stat") as f:
            usage = dict(line.split() for line in f)
        return int(usage.get("usage_usec", 0)) * 1000
    except OSError:
        return 0


def _memory(cg):
    if cg.version == 1:
        m = cg.paths.get("memory", "")
        return _read_int(f"{m}/memory.usage_in_bytes"), _read_int(f"{m}/memory.limit_in_bytes")
    return _read_int(f"{cg.path}/memory.current"), _read_int(f"{cg.path}/memory.max")


def _pids(cg):
    p = cg.paths.get("pids", "") if cg.version == 1 else cg.path
    return _read_int(f"{p}/pids.current")


def _veths(container):
    """The host ends of a container's veths: its network's, then those of
    the networks it joined with `diyc network connect`; with --network
    container:NAME, NAME's (the traffic of the namespace they share)."""
    record = container.record
    if (record.get("network") or "").startswith("container:"):
        from .record import ContainerRecord
        try:
            record = ContainerRecord.load(record["network"].partition(":")[2], container.root).record
        except DiycError:
            return []  # that container is gone
    own = record.get("network_settings") or {}
    joined = record.get("networks_connected") or {}
    return [s["veth"] for s in [own, *joined.values()] if s.get("veth")]


def _net(rtnl, container):
    """(bytes received, bytes sent) by the container over its veths, read
    from their host ends (what the host end sends, the container receives).
    A container on network none or host has none: 0, 0, as docker shows."""
    rx = tx = 0
    for veth in _veths(container):
        link = rtnl.link(veth)
        if link:
            rx += link["tx_bytes"]
            tx += link["rx_bytes"]
    return rx, tx


def sample(containers, interval=0.5):
    """One stats dict per container; CPU % over `interval` seconds (100% =
    one CPU busy, as in docker)."""
    groups = [c.control_group() for c in containers]
    before = [_cpu_ns(g) for g in groups]
    t0 = time.monotonic()
    time.sleep(interval)
    elapsed = time.monotonic() - t0
    out = []
    for c, g, b, (rx, tx) in zip(containers, groups, before, _net_counters(containers)):
        used, limit = _memory(g)
        host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        out.append({"cpu_percent": 100.0 * (_cpu_ns(g) - b) / (elapsed * 1e9),
                    "memory": used, "memory_limit": min(limit, host_mem) if limit else host_mem,
                    "pids": _pids(g), "net_rx": rx, "net_tx": tx})
    return out


def _net_counters(containers):
    """[(rx, tx)] of each container; pyroute2 is imported (and one netlink
    socket opened) only when some container has a veth to read."""
    if not any(_veths(c) for c in containers):
        return [(0, 0)] * len(containers)
    from .net.management import Rtnl
    with Rtnl() as rtnl:
        return [_net(rtnl, c) for c in containers]


def oci_stats(cg):
    """runc's `events --stats` data for one cgroup (the fields its clients read)."""
    used, limit = _memory(cg)
    return {"cpu": {"usage": {"total": _cpu_ns(cg)}},
            "memory": {"usage": {"usage": used, "limit": limit}},
            "pids": {"current": _pids(cg)}}
