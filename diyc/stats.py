"""`diyc stats`: resource use of running containers, from their cgroups
(CPU, memory, pids) and network namespaces (bytes in and out)."""

import os
import time


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


def _net(pid):
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, data = line.split(":", 1)
                if name.strip() == "lo":
                    continue
                fields = data.split()
                rx += int(fields[0])
                tx += int(fields[8])
    except OSError:
        pass
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
    for c, g, b in zip(containers, groups, before):
        used, limit = _memory(g)
        host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        rx, tx = _net(c.record["state"].get("pid"))
        out.append({"cpu_percent": 100.0 * (_cpu_ns(g) - b) / (elapsed * 1e9),
                    "memory": used, "memory_limit": min(limit, host_mem) if limit else host_mem,
                    "pids": _pids(g), "net_rx": rx, "net_tx": tx})
    return out


def oci_stats(cg):
    """runc's `events --stats` data for one cgroup (the fields its clients read)."""
    used, limit = _memory(cg)
    return {"cpu": {"usage": {"total": _cpu_ns(cg)}},
            "memory": {"usage": {"usage": used, "limit": limit}},
            "pids": {"current": _pids(cg)}}
