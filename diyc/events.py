"""The events journal: what happened to containers, images and networks,
for `diyc events` and the library's events().

ROOT/events.log holds one JSON object a line, in docker's event shape
({"Type", "Action", "Actor": {"ID", "Attributes"}, "time", "timeNano",
...}).  There is no daemon to ask, so the lifecycle appends to the file
itself: each event is one write() on an O_APPEND descriptor, which the
kernel makes atomic against other appenders, so lines of concurrent
writers (a run, a supervisor's _finish, an rm) never interleave.  An
event costs an open, a write and a close (~20 us), no lock and no fsync:
it is a record of what happened, not state anything depends on.

The journal is capped: past MAX_SIZE the writer that notices renames it to
events.log.1 (under a lock, and only if the file is still the one it
wrote to, so two writers never rotate twice), and readers read .1 first.

    emit(root, type, action, actor_id, attributes)    append one event
    read(root, since, until, filters)                  the events kept
    follow(root, since, until, filters)                and the new ones
    line(event)      docker's text format of one event
"""

import os
import time

from . import _json

MAX_SIZE = 1 << 20  # ~4000 events kept, plus the rotated file's as many
TYPES = ("container", "image", "network", "volume")
FILTER_KEYS = ("container", "event", "type", "image", "network", "label")


def journal_path(root):
    return f"{root.path}/events.log"


def emit(root, type, action, actor_id, attributes=None, *, container_image=None):
    """Append one event.  A journal that cannot be written (a full disk,
    a root not made yet) never fails the operation it records: it is
    said once on stderr instead.  container_image: a container event's
    `from` (docker's field, the image name)."""
    ns = time.time_ns()
    event = {"Type": type, "Action": action, "Actor": {"ID": actor_id, "Attributes": attributes or {}},
             "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns}
    if type == "container":  # docker's older fields, still what docker-py users read
        event.update(status=action, id=actor_id, **({"from": container_image} if container_image else {}))
    data = (_json.dumps(event) + "\n").encode()
    path = journal_path(root)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        _warn(e)
        return
    try:
        os.write(fd, data)
        if os.fstat(fd).st_size > MAX_SIZE:
            _rotate(root, path, fd)
    except OSError as e:
        _warn(e)
    finally:
        os.close(fd)


def container_event(ctr, action, **extra):
    """A container's event, with docker's attributes: its image and name
    (and `extra`: exitCode, signal, ...)."""
    image = ctr.record.get("image") or ""
    attributes = {"image": image, "name": ctr.record.get("name", "")}
    attributes.update({k: str(v) for k, v in extra.items()})
    emit(ctr.root, "container", action, ctr.id, attributes, container_image=image)


_warned = []


def _warn(error):
    """Once a process: the first failure says it, the others would repeat it."""
    if _warned:
        return
    _warned.append(error)
    import sys
    print(f"diyc: warning: the events journal cannot be written: {error.strerror or error}",
          file=sys.stderr)


def _rotate(root, path, fd):
    """Rename the journal to .1, once: the writer that holds the lock and
    still finds `path` to be the file it wrote (same inode) does it."""
    from .state import FileLock
    with FileLock(f"{root.path}/locks/events.lock"):
        try:
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return
        mine = os.fstat(fd)
        if (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev) and \
                current.st_size > MAX_SIZE:
            os.rename(path, f"{path}.1")


# -- reading -------------------------------------------------------------------------

def parse_filters(items):
    """docker's --filter KEY=VALUE list (or a {key: value|[values]} dict)
    -> {key: [values]}; values of one key are alternatives, keys all
    apply."""
    from .errors import InvalidArgument
    out = {}
    pairs = items.items() if hasattr(items, "items") else [_split_filter(i) for i in items or ()]
    for key, value in pairs:
        if key not in FILTER_KEYS:
            raise InvalidArgument(f"invalid filter {key!r}: use one of {', '.join(FILTER_KEYS)}")
        values = [value] if isinstance(value, str) else list(value)
        out.setdefault(key, []).extend(str(v) for v in values)
    return out


def _split_filter(item):
    from .errors import InvalidArgument
    key, eq, value = item.partition("=")
    if not eq or not key:
        raise InvalidArgument(f"invalid filter {item!r}: expected KEY=VALUE")
    return key, value


def matches(event, filters):
    """docker's event filters: container= its id (or a prefix) or name,
    event= the action (`health_status` matches `health_status: healthy`),
    type=, image=, network=, label=K or K=V."""
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    ident = actor.get("ID") or ""
    for key, values in filters.items():
        if key == "container":
            ok = event.get("Type") == "container" and any(
                v == attrs.get("name") or (len(v) >= 3 and ident.startswith(v)) for v in values)
        elif key == "event":
            action = event.get("Action") or ""
            ok = any(action == v or action.split(":")[0] == v for v in values)
        elif key == "type":
            ok = event.get("Type") in values
        elif key == "image":
            ok = any(v in (attrs.get("image"), attrs.get("name")) and event.get("Type") in
                     ("container", "image") for v in values)
        elif key == "network":
            ok = event.get("Type") == "network" and any(v in (ident, attrs.get("name")) for v in values)
        else:  # label
            ok = any(attrs.get(v.partition("=")[0]) == v.partition("=")[2] if "=" in v
                     else v in attrs for v in values)
        if not ok:
            return False
    return True


def _lines(path, offset=0):
    """(complete lines from `offset`, the offset after the last of them)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1  # a line being written is read next time
    return data[:end].splitlines(), offset + end


def _decode(raw):
    try:
        event = _json.loads(raw.decode())
    except (ValueError, UnicodeDecodeError):
        return None  # a line cut by a crash (or a full disk): skipped
    return event if isinstance(event, dict) and isinstance(event.get("timeNano"), int) else None


def _selected(raw_lines, since_ns, until_ns, filters):
    for raw in raw_lines:
        event = _decode(raw)
        if event is None or (since_ns is not None and event["timeNano"] < since_ns):
            continue
        if until_ns is not None and event["timeNano"] > until_ns:
            continue
        if matches(event, filters):
            yield event


def read(root, since=None, until=None, filters=None):
    """The journal's events (oldest first) between `since` and `until`
    (Unix times, float seconds; None: no bound) that match `filters`."""
    since_ns, until_ns = _ns(since), _ns(until)
    path = journal_path(root)
    for p in (f"{path}.1", path):
        yield from _selected(_lines(p)[0], since_ns, until_ns, filters or {})


def follow(root, since=None, until=None, filters=None, poll=0.1):
    """read(), then the events appended from then on, as they come, until
    `until` passes (forever without it: the caller stops iterating).  A
    rotation (the journal renamed to .1) is noticed by its inode."""
    since_ns, until_ns = _ns(since), _ns(until)
    filters = filters or {}
    path = journal_path(root)
    yield from _selected(_lines(f"{path}.1")[0], since_ns, until_ns, filters)
    identity, offset = _identity(path), 0
    while True:
        raw_lines, offset = _lines(path, offset)
        yield from _selected(raw_lines, since_ns, until_ns, filters)
        if until_ns is not None and time.time_ns() > until_ns:
            return
        time.sleep(poll)
        now = _identity(path)
        if now != identity:  # rotated: what is left of the old file is in .1
            if identity is not None:
                rest, _ = _lines(f"{path}.1", offset)
                yield from _selected(rest, since_ns, until_ns, filters)
            identity, offset = now, 0


def _identity(path):
    try:
        st = os.stat(path)
        return st.st_dev, st.st_ino
    except FileNotFoundError:
        return None


def _ns(t):
    return None if t is None else int(t * 1_000_000_000)


# -- docker's text format ------------------------------------------------------------

def timestamp(ns):
    """RFC 3339 with nanoseconds, UTC: 2026-11-29T21:00:00.000000000Z."""
    secs, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def line(event):
    """`2026-11-29T21:00:00.000000000Z container start ID (image=..., name=...)`"""
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()))
    return (f"{timestamp(event['timeNano'])} {event.get('Type')} {event.get('Action')} "
            f"{actor.get('ID', '')}" + (f" ({shown})" if shown else ""))


# -- the library's entry point, docker-py's client.events() -------------------------

def events(root=None, since=None, until=None, filters=None, decode=False):
    """docker-py's client.events(): the journal's events from `since`
    (default: now) as they come - until `until`, or for as long as the
    caller iterates.  since/until: a Unix time, a datetime or docker's
    text ("2026-11-29T21:00:00Z", "10m" ago).  filters: {"container":
    NAME, "event": "die", "type": "container", ...}.  Each event as JSON
    bytes, or with decode=True as a dict."""
    import time as _time
    from .numbers import point_in_time
    from .state import Root
    root = root if isinstance(root, Root) else Root(root)
    since = _time.time() if since is None and until is None else \
        None if since is None else point_in_time(since, "since")
    until = None if until is None else point_in_time(until, "until")
    for event in follow(root, since, until, parse_filters(filters or {})):
        yield event if decode else _json.dumps(event).encode()
