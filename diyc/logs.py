"""Container logs: the CRI-format file a detached container's supervisor
writes (containers/<id>/container.log, rotated to .1 at --log-opt
max-size), read back for `diyc logs`."""

import sys
import time

from .errors import InvalidArgument

DEFAULT_LOG_MAX_SIZE = 10 << 20


def parse_log_opts(opts):
    out = {"max_size": DEFAULT_LOG_MAX_SIZE}
    for opt in opts or ():
        key, sep, value = opt.partition("=")
        if key == "max-size" and sep:
            from .config import parse_size
            out["max_size"] = parse_size(value, "log max-size")
        else:
            raise InvalidArgument(f"invalid --log-opt {opt!r}: only max-size=SIZE is supported")
    return out


def read_log(path):
    """Records of a CRI-format log: (timestamp, stream, text) with partial
    lines joined."""
    records = []
    partial = {}
    for p in (f"{path}.1", path):
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        for line in data.split(b"\n"):
            rec = _parse_log_line(line)
            if rec is None:
                continue
            ts, stream, tag, text = rec
            if tag == b"P":
                partial[stream] = partial.get(stream, b"") + text
                continue
            records.append((ts, stream, partial.pop(stream, b"") + text))
    return records


def _parse_log_line(line):
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[:3]
    return ts.decode(), stream.decode(), tag, parts[3] if len(parts) == 4 else b""


class TimeWindow:
    """docker's logs --since/--until on the log's timestamps (RFC 3339,
    UTC, 9 digits: they sort as text): since inclusive, until exclusive."""

    def __init__(self, since=None, until=None):
        self.until_time = until
        self.after = None if since is None else log_time(since)
        self.before = None if until is None else log_time(until)

    def __call__(self, ts):
        return (self.after is None or ts >= self.after) and (self.before is None or ts < self.before)

    def passed(self):
        """Whether `until` is past: a follow stops there."""
        return self.until_time is not None and time.time() >= self.until_time


def time_window(since=None, until=None):
    """since/until: a Unix time, a datetime, or docker's text (RFC 3339,
    a Unix time, `10m` ago: numbers.point_in_time)."""
    from .numbers import point_in_time
    return TimeWindow(None if since is None else point_in_time(since, "since"),
                      None if until is None else point_in_time(until, "until"))


def log_time(t):
    """A Unix time -> the log's timestamp format."""
    secs = int(t // 1)
    nanos = min(int(round((t - secs) * 1e9)), 999_999_999)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def print_logs(ctr, follow=False, tail=None, timestamps=False, out=None, err=None, ended=None,
               since=None, until=None, skip=0):
    """Print the container's log; with follow, until it is not running
    (or, given, until ended(ctr) says so: its first exit, say) or `until`
    passes.  since/until as time_window() takes them; skip: records not
    to print (those of its runs before a `start -a`)."""
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    path = f"{ctr.dir}/container.log"
    within = time_window(since, until)
    records = read_log(path)
    shown = skip if skip <= len(records) else 0  # fewer: rotated since
    if tail is not None:
        shown = max(0, len(records) - tail)

    def emit(recs):
        for ts, stream, text in recs:
            if not within(ts):
                continue
            f = err if stream == "stderr" else out
            f.write((ts.encode() + b" " if timestamps else b"") + text + b"\n")
        out.flush()
        err.flush()

    emit(records[shown:])
    shown = len(records)
    while follow:
        try:
            ctr.reload()
            running = ctr.status == "running" if ended is None else not ended(ctr)
        except FileNotFoundError:  # a --rm container, ended and removed
            running = False
        records = read_log(path)
        if len(records) < shown:   # rotated: start over in the new file
            shown = 0
        emit(records[shown:])
        shown = len(records)
        if not running or within.passed():
            return
        time.sleep(0.1)
