"""docker's output conventions: `--format` (a Go template, `table
TEMPLATE` with column headers, `json`, `table` for the default), the
tabwriter that aligns its columns, and the human units its columns use
(`About an hour ago`, `1.24MB`, `64MiB`).

    format_rows(fmt, rows, header, default)  -> the text docker prints
    format_each(fmt, values)                 -> inspect -f: one line a value
"""

import time

from . import templates
from .template_values import HEADER_FUNCTIONS, Context, Method

TABLE_PREFIX = "table"


def _prepare(fmt):
    """docker's preFormat: strip `table`, trim spaces, `\\t` and `\\n` as typed become tab and newline."""
    is_table = fmt.startswith(TABLE_PREFIX)
    if is_table:
        fmt = fmt[len(TABLE_PREFIX):]
    fmt = fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return is_table, fmt


def resolve(fmt, default, quiet_format=None, quiet=False):
    """The template a listing uses: `json` is `{{json .}}` (one object a
    line), `table` or nothing the default table; -q its quiet template
    (over --format, as docker)."""
    if quiet and quiet_format:
        return quiet_format
    if not fmt or fmt == TABLE_PREFIX:
        return default
    if fmt == "json":
        return "{{json .}}"
    return fmt


def format_rows(fmt, rows, header):
    """Each row (a template_values.Context) through the template `fmt`, a line each;
    with `table ...`, first a header row (from `header`: {field: title})
    and the columns aligned by docker's tabwriter (minwidth 10, padding 3).
    Every row is rendered before anything is returned: a template that
    fails on one row prints nothing."""
    is_table, text = _prepare(fmt)
    template = templates.parse(text)
    body = "".join(template.execute(row) + "\n" for row in rows)
    if not is_table:
        return body
    head = template.execute(header_context(header), HEADER_FUNCTIONS)
    return tabwrite(head + "\n" + body)


def header_context(header):
    """The row that prints column titles: each field its title, a method too."""
    fields = {}
    for name, title in header.items():
        fields[name] = Method(lambda *args, title=title: title, arity=1) if name in METHOD_FIELDS else title
    return Context("header", fields)


METHOD_FIELDS = ("Label",)  # fields that take an argument (`{{.Label "k"}}`)


def format_each(fmt, values):
    """inspect's -f: the template for each value, a line each (docker's
    `json` is the value as one line of JSON)."""
    if fmt == "json":
        fmt = "{{json .}}"
    _, text = _prepare(fmt)
    template = templates.parse(text)
    return "".join(template.execute(v) + "\n" for v in values)


# -- docker's tabwriter (Go's text/tabwriter, minwidth 10, tabwidth 1, padding 3, spaces) --

def tabwrite(text, minwidth=10, padding=3):
    """Align tab-separated cells as Go's text/tabwriter does: a column's
    width is that of its widest cell (plus padding, at least minwidth)
    over the block of consecutive lines that have a cell there; a line's
    last cell (after its last tab) is not part of a column."""
    lines = [line.split("\t") for line in text.split("\n")]
    out = []
    _format_block(lines, 0, len(lines), [], out, minwidth, padding)
    return "\n".join(out)


def _format_block(lines, line0, line1, widths, out, minwidth, padding):
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write_lines(lines, line0, this, widths, out)
        line0 = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _format_block(lines, line0, this, widths + [width], out, minwidth, padding)
        line0 = this
    _write_lines(lines, line0, line1, widths, out)


def _write_lines(lines, line0, line1, widths, out):
    for cells in lines[line0:line1]:
        out.append("".join(cell.ljust(widths[j]) if j < len(widths) and j < len(cells) - 1 else cell
                           for j, cell in enumerate(cells)))


# -- human units (github.com/docker/go-units) ------------------------------------------

def human_duration(seconds):
    """go-units HumanDuration: `Less than a second`, `About a minute`, `3 days`."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{s // 3600 // 24 // 365} years"


def ago(timestamp, now=None):
    """`2 hours ago`, as docker's CREATED columns."""
    return human_duration(max(0.0, (time.time() if now is None else now) - timestamp)) + " ago"


def _custom_size(size, base, units):
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{_g4(size)}{units[i]}"


def _g4(value):
    """Go's %.4g: at most 4 significant digits, no trailing zeros."""
    return f"{value:.4g}"


def human_size(size):
    """go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits (`1.24MB`)."""
    size = float(size)
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{units[i]}"


def bytes_size(size):
    """go-units BytesSize: binary units (`64MiB`, `1.5GiB`)."""
    return _custom_size(float(size), 1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"))


def go_time(timestamp):
    """Go's time.Time.String() of a Unix time, in local time, as docker's
    CreatedAt columns: `2026-11-29 20:48:30 +0000 UTC`."""
    t = time.localtime(timestamp)
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", t)


def rfc3339_nano(timestamp):
    """A Unix time as docker's inspect writes times: RFC 3339, UTC,
    nanoseconds without trailing zeros (`2026-11-29T20:48:30.123456789Z`).
    None (never happened) is Go's zero time, as docker writes it."""
    if timestamp is None:
        return "0001-01-01T00:00:00Z"
    secs = int(timestamp // 1)
    nanos = int(round((timestamp - secs) * 1e9))
    if nanos >= 1_000_000_000:
        secs, nanos = secs + 1, nanos - 1_000_000_000
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + frac + "Z"


def _timegm(year, month, day, hour, minute, second):
    """calendar.timegm without calendar (nor time.strptime, whose _strptime
    imports re and locale: ~15 ms)."""
    y, m = (year - 1, month + 12) if month <= 2 else (year, month)
    era_year = y % 400
    day_of_era = era_year * 365 + era_year // 4 - era_year // 100 + (153 * (m - 3) + 2) // 5 + day - 1
    days = (y // 400) * 146097 + day_of_era - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


def parse_rfc3339(text):
    """An RFC 3339 time (an image's `created`) -> a Unix time, or None."""
    if not isinstance(text, str) or len(text) < 19 or not text.isascii():
        return None
    fields = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
    if text[4] + text[7] + text[10] + text[13] + text[16] not in ("--T::", "--t::", "-- ::") or \
            not all(f.isdigit() for f in fields):
        return None
    year, month, day, hour, minute, second = map(int, fields)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    base = _timegm(year, month, day, hour, minute, second)
    rest = text[19:]
    frac = 0.0
    if rest.startswith("."):
        digits = ""
        for c in rest[1:]:
            if not c.isdigit():
                break
            digits += c
        frac = float("0." + digits) if digits else 0.0
        rest = rest[1 + len(digits):]
    if rest in ("Z", "z", ""):
        return base + frac
    if len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        try:
            offset = int(rest[1:3]) * 3600 + int(rest[4:6]) * 60
        except ValueError:
            return None
        return base + frac - offset if rest[0] == "+" else base + frac + offset
    return None
