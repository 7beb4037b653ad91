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


def _memory_stat(cg):
    """memory.stat as {key: int} ({} when unreadable)."""
    path = f"{cg.paths.get('memory', '')}/memory.stat" if cg.version == 1 else f"{cg.path}/memory.stat"
    try:
        with open(path) as f:
            return {k: int(v) for k, v in (line.split()[:2] for line in f if len(line.split()) >= 2)
                    if v.isdigit()}
    except OSError:
        return {}


def memory_used(cg):
    """What docker's MEM USAGE shows: the usage without the inactive page
    cache (v1: total_inactive_file, v2: inactive_file), which the kernel
    drops before it would OOM."""
    used, _ = _memory(cg)
    inactive = _memory_stat(cg).get("total_inactive_file" if cg.version == 1 else "inactive_file", 0)
    return used - inactive if inactive < used else used


def parse_io_stat(text):
    """cgroup v2 io.stat ("8:0 rbytes=N wbytes=N rios=N ...", a line a
    device) -> (bytes read, bytes written), over every device."""
    read = written = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes" and value.isdigit():
                read += int(value)
            elif key == "wbytes" and value.isdigit():
                written += int(value)
    return read, written


def parse_blkio_service_bytes(text):
    """cgroup v1 blkio.throttle.io_service_bytes ("8:0 Read N", "8:0
    Write N", ..., "Total N") -> (bytes read, bytes written)."""
    read = written = 0
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].isdigit():
            if fields[1] == "Read":
                read += int(fields[2])
            elif fields[1] == "Write":
                written += int(fields[2])
    return read, written


def block_io(cg):
    """(bytes read, bytes written) by the cgroup's processes, from the
    block layer: v2 io.stat; v1 blkio.throttle.io_service_bytes when the
    container has a blkio cgroup, else the sum of its processes'
    /proc/PID/io, which count their reaped children's too (diyc puts a
    container in a blkio cgroup only for blkio limits)."""
    try:
        if cg.version == 2:
            with open(f"{cg.path}/io.stat") as f:
                return parse_io_stat(f.read())
        if "blkio" in cg.paths:
            for name in ("io_service_bytes_recursive", "io_service_bytes"):
                try:
                    with open(f"{cg.paths['blkio']}/blkio.throttle.{name}") as f:
                        return parse_blkio_service_bytes(f.read())
                except FileNotFoundError:
                    continue
    except OSError:
        return 0, 0
    return _processes_io(cg)


def _processes_io(cg):
    read = written = 0
    try:
        pids = cg.pids()
    except OSError:
        return 0, 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            read += int(fields.get("read_bytes", 0))
            written += int(fields.get("write_bytes", 0))
        except (OSError, ValueError):
            continue  # ended meanwhile
    return read, written


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
    return [dict(s, **_docker_columns(g, s)) for g, s in zip(groups, out)]


def _docker_columns(cg, s):
    """What docker's stats shows besides: MEM USAGE without the inactive
    page cache, MEM %, BLOCK I/O."""
    used = memory_used(cg)
    read, written = block_io(cg)
    return {"memory": used, "memory_percent": 100.0 * used / s["memory_limit"] if s["memory_limit"] else 0.0,
            "block_read": read, "block_write": written}


CLEAR_SCREEN = "\x1b[2J\x1b[H"  # docker stats' redraw: erase the screen, cursor home


def watch(containers, render, out, stream=True, tty=False, interval=0.5):
    """`diyc stats`: sample containers() (a callable: the set may change
    between rounds), write render([(container, sample), ...]) to `out`;
    with stream, again and again until interrupted.  On a terminal each
    table replaces the one before, as docker's does."""
    while True:
        current = containers()
        pairs = list(zip(current, sample(current, interval))) if current else []
        if not current:
            time.sleep(interval)
        text = render(pairs)
        out.write((CLEAR_SCREEN if stream and tty else "") + text)
        out.flush()
        if not stream:
            return


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
