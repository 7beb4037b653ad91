"""The end of a removed container, in two parts.

What others can observe goes at once: the lease, the name, the user
namespace ids and the record (the container's directory is renamed out of
containers/ into the root's tmp/ as `removing-PID-ID`).  What nobody can
observe - the cgroup's rmdir, the writable layer's removal - follows: at
once, or, in a command the diyc server runs, after the server's worker has
sent the exit code (`later()`), so `diyc run --rm` returns without waiting
for it.  A crash in between leaves the staging dir, with the record inside:
`diyc cleanup` finishes it (its cgroups too) once its pid is gone."""

import os

from .rootfs import remove_writable_layer
from .state import remove_tree

STAGING_PREFIX = "removing"

_deferred = None  # None: finish at once; a list: steps run after the reply


def stage(root, container_dir, cid):
    """Move the container's directory (record, writable layer) out of
    containers/ -> its new path; None if it is already gone; the directory
    itself if it cannot move (a mount point: EBUSY), to be finished now."""
    staged = f"{root.tmp}/{STAGING_PREFIX}-{os.getpid()}-{cid}"
    try:
        try:
            os.rename(container_dir, staged)
        except FileNotFoundError:
            if not os.path.isdir(container_dir):
                return None
            os.makedirs(root.tmp, 0o700, exist_ok=True)  # (a root from before tmp/)
            os.rename(container_dir, staged)
    except OSError:
        return container_dir
    return staged


def finish_staged(staged, container_dir, cgroup):
    """After stage(): the rest, now or after the reply."""
    if staged is None:  # (a second remover was quicker)
        remove_cgroup(cgroup)
    elif staged == container_dir:  # (it could not move: the record goes last, now)
        finish(staged, cgroup)
    else:
        later(lambda: finish(staged, cgroup))


def finish(staged, cgroup):
    """The unobservable part: the cgroup, then the staged directory (the
    record last, so a crash in between leaves what cleanup finishes)."""
    remove_cgroup(cgroup)
    remove_writable_layer(staged)
    try:
        os.unlink(f"{staged}/container.json")
        os.rmdir(staged)
    except OSError:
        remove_tree(staged)


def remove_cgroup(cgroup):
    """rmdir the cgroup dirs that exist (idempotent: a second call, or one
    after a crash, finds fewer or none)."""
    # (remove() takes a missing one as removed: no stat first)
    cgroup.created = list(cgroup.paths.values()) if cgroup.version == 1 else True
    cgroup.remove()


def finish_abandoned(root, entry):
    """`diyc cleanup` on a staging dir whose process is gone."""
    from .record import ContainerRecord
    from .state import read_json
    staged = f"{root.tmp}/{entry}"
    try:
        record = read_json(f"{staged}/container.json")
    except (OSError, ValueError):
        remove_tree(staged)
        return
    finish(staged, ContainerRecord(root, record).control_group())


def later(step):
    """Run step() now, or after the reply in a served command."""
    if _deferred is None:
        step()
    else:
        _deferred.append(step)


def defer_until_replied():
    """For a server worker: later() collects its steps from now on."""
    global _deferred
    _deferred = []


def run_deferred():
    """The collected steps, in order -> the errors (the caller has its
    answer already: they go to the server's log, and cleanup finishes)."""
    global _deferred
    steps, _deferred = _deferred or [], None
    errors = []
    for step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - reported by the caller, never raised
            errors.append(e)
    return errors
