"""What changes a container while it lives, as docker's commands of the
same names: pause and unpause (the cgroup freezer), update (its limits and
restart policy, in the cgroup and in the record), rename.

Each takes the container's lock, re-reads the record, acts, and writes the
record atomically (state.write_json), so a concurrent stop, rm or _finish
sees the container before or after, never half-way; then it appends its
event to the journal (events.py).  Whether a container is paused is read
from its cgroup (ContainerRecord.paused), never stored: a container a kill
thawed is not paused, whatever was recorded."""

import os
from contextlib import suppress

from . import config
from .errors import Conflict, ContainerNotFound, InvalidArgument
from .events import container_event


def _locked_running(ctr, verb):
    """Under ctr.lock(): the fresh record of a running container."""
    if not ctr.reload_if_present():
        raise ContainerNotFound(f"no such container: {ctr.name} (removed meanwhile)")
    if ctr.status != "running":
        raise Conflict(f"container {ctr.name} is not running: cannot {verb} it")


def pause(ctr):
    """Freeze every process of a running container (`diyc pause`)."""
    with ctr.lock():
        _locked_running(ctr, "pause")
        if ctr.control_group().frozen():
            raise Conflict(f"container {ctr.name} is already paused")
        _freeze(ctr)
    container_event(ctr, "pause")


def _freeze(ctr):
    cgroup = ctr.control_group()
    try:
        cgroup.freeze()
    finally:
        _record_freezer(ctr, cgroup)


def _record_freezer(ctr, cgroup):
    """A v1 freezer cgroup the first pause made (even one that failed half
    way): in the record, so that execs and restarts join it and the
    container's end removes it."""
    paths = ctr.record["cgroup"]["paths"]
    if cgroup.version == 1 and "freezer" in cgroup.paths and "freezer" not in paths:
        paths["freezer"] = cgroup.paths["freezer"]
        ctr.save()


def unpause(ctr):
    """Thaw a paused container (`diyc unpause`)."""
    with ctr.lock():
        _locked_running(ctr, "unpause")
        cgroup = ctr.control_group()
        if not cgroup.frozen():
            raise Conflict(f"container {ctr.name} is not paused")
        cgroup.thaw()
    container_event(ctr, "unpause")


def pause_for_commit(ctr):
    """`diyc commit`'s pause (docker's default): freeze a running container
    while its changes are read, so they are taken at one instant -> True
    when we froze it: the caller thaws it with thaw_after_commit() on
    every path.  One that does not run, or is paused already, is left be."""
    with ctr.lock():
        if not ctr.reload_if_present() or ctr.status != "running" or ctr.control_group().frozen():
            return False
        try:
            _freeze(ctr)
        except BaseException:
            with suppress(Exception):  # half frozen; (no freezer: the freeze's error says it)
                ctr.control_group().thaw()
            raise
    container_event(ctr, "pause")
    return True


def thaw_after_commit(ctr):
    """Undo pause_for_commit(), unless a stop or an unpause did meanwhile."""
    with ctr.lock():
        if ctr.reload_if_present() and ctr.control_group().frozen():
            ctr.control_group().thaw()
            container_event(ctr, "unpause")


# signals whose default action does not end a process (CHLD, CONT, STOP,
# TSTP, TTIN, TTOU, URG, WINCH): a terminal's resize leaves a paused container paused
_NOT_ENDING = frozenset((17, 18, 19, 20, 21, 22, 23, 28))


def signal(ctr, pid, sig):
    """Container.kill's signal to its process 1 (`pid`, alive): thawed
    first if it must be, then its event."""
    if sig:
        thaw_before_signal(ctr, sig)
    os.kill(pid, sig)
    if sig:
        container_event(ctr, "kill", signal=sig)


def thaw_before_signal(ctr, sig):
    """stop, kill and rm of a paused container, as docker: thawed first,
    so the signal is handled at once (a frozen task does not even die of
    SIGKILL on cgroup v1).  Takes no lock: kill may run in a signal
    handler of the process holding it."""
    if sig in _NOT_ENDING:
        return
    cgroup = ctr.control_group()
    if cgroup.frozen():
        cgroup.thaw()
        container_event(ctr, "unpause")


# -- update ------------------------------------------------------------------------

MAX_CPU_SHARES = 262144


def check_update(memory=None, memory_swap=None, cpus=None, cpu_shares=None, pids_limit=None,
                 restart=None):
    """The values of an update, checked before any container is touched ->
    (cgroup changes but memory, {"memory", "memory_swap"} still to merge
    with each container's own limits, restart policy or None)."""
    if all(v is None for v in (memory, memory_swap, cpus, cpu_shares, pids_limit, restart)):
        raise InvalidArgument("update needs at least one of --memory, --memory-swap, --cpus, "
                              "--cpu-shares, --pids-limit, --restart")
    changes = _cpu_and_pids(cpus, cpu_shares, pids_limit)
    if memory is not None:
        memory = config.parse_memory(memory)
    if memory_swap is not None and memory_swap not in ("-1", -1):
        config.parse_size(memory_swap, "memory-swap")
    policy = None if restart is None else config.parse_restart_policy(restart)
    return changes, {"memory": memory, "memory_swap": memory_swap}, policy


def update(ctr, memory=None, memory_swap=None, cpus=None, cpu_shares=None, pids_limit=None,
           restart=None):
    """Change a container's limits and restart policy (`diyc update`): in
    its cgroup if it runs, and in its record (inspect shows them; a
    restart or a later start applies them; its supervisor's _finish reads
    the restart policy when the container ends).  Every value is checked
    before anything is changed."""
    changes, mem, policy = check_update(memory, memory_swap, cpus, cpu_shares, pids_limit, restart)
    with ctr.lock():
        if not ctr.reload_if_present():
            raise ContainerNotFound(f"no such container: {ctr.name} (removed meanwhile)")
        if policy and policy["name"] != "no" and ctr.record["auto_remove"]:
            raise InvalidArgument("conflicting options: --restart and --rm")
        resources = ctr.record["spec"]["linux"]["resources"]
        if mem["memory"] is not None or mem["memory_swap"] is not None:
            changes["memory"] = _memory(resources.get("memory") or {}, mem["memory"],
                                        mem["memory_swap"])
        if ctr.status == "running" and changes:
            ctr.control_group().update_limits(changes)
        for key, values in changes.items():
            resources[key] = dict(resources.get(key) or {}, **values)
        if policy is not None:
            ctr.record["restart"] = policy
        ctr.save()
    container_event(ctr, "update")


def _cpu_and_pids(cpus, cpu_shares, pids_limit):
    """OCI linux.resources fields from --cpus, --cpu-shares, --pids-limit."""
    from . import numbers
    changes = {}
    if cpus is not None:
        changes["cpu"] = {"quota": int(config.parse_cpus(cpus) * config.CPU_PERIOD),
                          "period": config.CPU_PERIOD}
    if cpu_shares is not None:
        changes.setdefault("cpu", {})["shares"] = numbers.integer(
            cpu_shares, "--cpu-shares value", 2, MAX_CPU_SHARES)
    if pids_limit is not None:
        changes["pids"] = {"limit": config.parse_pids_limit(pids_limit)}
    return changes


def _memory(current, memory, memory_swap):
    """The new {limit, swap} (swap: memory+swap, -1 unlimited), as docker
    update: a memory limit above the swap limit set before needs a new
    --memory-swap too; a new limit where there was none gets docker's
    default swap, twice the memory."""
    limit = memory if memory is not None else current.get("limit")
    if limit is None:
        raise InvalidArgument("--memory-swap needs a memory limit: pass --memory as well")
    if memory_swap is not None:
        swap = config.parse_memory_swap(memory_swap, limit)
    elif current.get("limit") is None:
        swap = 2 * limit
    else:
        swap = current.get("swap", -1)
        if swap != -1 and limit > swap:
            raise InvalidArgument("memory limit should be smaller than the memory+swap limit "
                                  f"already set ({swap} bytes): update --memory-swap at the same time")
    return {"limit": limit, "swap": swap}


# -- rename ------------------------------------------------------------------------

def rename(ctr, new_name):
    """Give a container another name (`diyc rename`).  The names index is
    locked, so two renames never cross; the new name is taken (one atomic
    symlink) before the record says it and the old one is let go after:
    a crash leaves the container under one of them at least."""
    from .state import release_name, reserve_name
    config.check_text(new_name, "name")
    config.check_name(new_name)
    with ctr.root.lock("names"), ctr.lock():
        if not ctr.reload_if_present():
            raise ContainerNotFound(f"no such container: {ctr.name} (removed meanwhile)")
        old = ctr.name
        if new_name == old:
            raise InvalidArgument(f"container {old} is already named {new_name}")
        if not reserve_name(ctr.root, new_name, ctr.id):
            raise Conflict(f"the container name {new_name!r} is already in use")
        try:
            ctr.record["name"] = new_name
            ctr.save()
        except BaseException:
            ctr.record["name"] = old
            release_name(ctr.root, new_name, ctr.id)
            raise
        release_name(ctr.root, old, ctr.id)
        if ctr.record.get("network_settings"):
            from .net.renaming import renamed
            renamed(ctr, old)
    container_event(ctr, "rename", oldName=old)
