"""The one grammar of numbers in user input, as strict as docker's (Go's
strconv and go-units): ASCII digits only, no sign but a leading '-' where
negatives make sense, no underscores, no surrounding whitespace, no
exponent, nan or inf.  Python's int() and float() take '５' (full-width),
'1_0', ' 5', '1e400' and 'nan'; every numeric flag, option and field goes
through here instead, so none of those slips through anywhere.

Library callers may pass int (and float, where fractions make sense)
values; bools and other types are refused (ArgumentTypeError: a
TypeError as well as an InvalidArgument)."""

from .errors import ArgumentTypeError, InvalidArgument

_MAX_DIGITS = 40  # more is out of every range here (and int() of >4300 digits raises)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1


def is_digits(text):
    """A non-empty run of ASCII 0-9 (str.isdigit() also takes '５' and '²')."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def shown(value):
    """repr() of a value for a message, cut short: one readable line."""
    text = repr(value)
    return text if len(text) <= 42 else f"{text[:30]}...({len(str(value))} characters)"


def _range_error(what, value, minimum, maximum):
    if minimum is not None and maximum is not None:
        bounds = f"must be between {minimum} and {maximum}"
    elif minimum is not None:
        bounds = f"must be at least {minimum}"
    else:
        bounds = f"must be at most {maximum}"
    return InvalidArgument(f"invalid {what} {shown(value)}: {bounds}")


def _check_range(n, what, value, minimum, maximum):
    if (minimum is not None and n < minimum) or (maximum is not None and n > maximum):
        raise _range_error(what, value, minimum, maximum)
    return n


def integer(value, what, minimum=None, maximum=None):
    """A base-10 integer: '-'? ASCII digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_range(value, what, value, minimum, maximum)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"invalid {what} {shown(value)}: expected an integer")
    digits = value[1:] if value.startswith("-") else value
    if not is_digits(digits):
        raise InvalidArgument(f"invalid {what} {shown(value)}: expected an integer")
    if len(digits.lstrip("0")) > _MAX_DIGITS:
        raise _range_error(what, value, minimum, maximum)
    return _check_range(int(value), what, value, minimum, maximum)


def _decimal_text(text):
    """'1', '1.5', '.5', '5.' -> float, or None if not that shape."""
    whole, dot, frac = text.partition(".")
    if not (whole or frac) or (whole and not is_digits(whole)) or (frac and not is_digits(frac)):
        return None
    if not dot and not whole:
        return None
    return float(text)


def decimal(value, what, minimum=None, maximum=None):
    """A non-negative decimal number: ASCII digits with at most one '.'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        n = float(value)
        if n != n or n in (float("inf"), float("-inf")):
            raise InvalidArgument(f"invalid {what} {shown(value)}: expected a finite number")
    elif not isinstance(value, str):
        raise ArgumentTypeError(f"invalid {what} {shown(value)}: expected a number such as 1.5")
    else:
        n = _decimal_text(value)
        if n is None:
            raise InvalidArgument(f"invalid {what} {shown(value)}: expected a number such as 1.5")
        if n == float("inf"):  # hundreds of digits
            raise _range_error(what, value, minimum, maximum)
    return _check_range(n, what, value, minimum, maximum)


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def size(value, what="size", maximum=INT64_MAX):
    """A size in bytes, docker's binary units: '512', '64m', '1.5g', '2GiB',
    '10kb', '100b' -> int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_range(value, what, value, 0, maximum)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"invalid {what} {shown(value)}: expected a size such as 64m")
    text = value.lower()
    number = text.rstrip("kmgtpib")
    suffix = text[len(number):]
    unit = suffix[:1] if suffix[:1] in _SIZE_UNITS else ""
    if suffix[len(unit):] not in (("", "b", "ib") if unit else ("", "b")):
        number = None
    n = _decimal_text(number) if number else None
    if n is None:
        raise InvalidArgument(f"invalid {what} {shown(value)}: expected a number with an optional unit "
                              "b, k, m, g, t or p (such as 64m)")
    total = n * _SIZE_UNITS[unit]
    if total >= maximum + 1:
        raise _range_error(what, value, 0, maximum)
    return int(total)


_DURATION_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9}


def duration_ns(value, what="duration"):
    """A Go duration ('30s', '1m30s', '500ms', '1.5h'; '0') -> nanoseconds;
    a library caller's int is taken as nanoseconds already (docker-py's
    convention)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_range(value, what, value, 0, INT64_MAX)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"invalid {what} {shown(value)}: expected a duration such as 30s")
    bad = InvalidArgument(f"invalid {what} {shown(value)}: expected a duration such as 30s, 1m30s "
                          "or 500ms")
    if value == "0":
        return 0
    total, i = 0, 0
    while i < len(value):
        j = i
        while j < len(value) and (value[j] in "0123456789."):
            j += 1
        k = j
        while k < len(value) and value[k] not in "0123456789.":
            k += 1
        number = _decimal_text(value[i:j]) if j > i else None
        if number is None or value[j:k] not in _DURATION_UNITS:
            raise bad
        total += int(number * _DURATION_UNITS[value[j:k]])
        i = k
    if not value or total > INT64_MAX:
        raise bad
    return total


def point_in_time(value, what="time", now=None):
    """docker's --since/--until: a Unix time ('1700000000', '1700000000.5'),
    RFC 3339 ('2026-11-29T21:00:00Z', with a fraction or a +01:00 offset;
    without a zone: local time, as docker), a date ('2026-11-29', local),
    or a duration before now ('10m', '1h30m') -> Unix time (float).
    Library callers may pass a number or a datetime."""
    import time
    if hasattr(value, "timestamp"):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"invalid {what} {shown(value)}: expected a time")
    now = time.time() if now is None else now
    n = _decimal_text(value)
    if n is not None:
        return n
    if value and value[-1] in "smhu" and "-" not in value and ":" not in value:  # 10m: ago
        return now - duration_ns(value, what) / 1e9
    parsed = _rfc3339(value)
    if parsed is None:
        raise InvalidArgument(f"invalid {what} {shown(value)}: expected RFC 3339 "
                              "(2026-11-29T21:00:00Z), a Unix time or a duration such as 10m")
    return parsed


def _rfc3339(text):
    """'YYYY-MM-DD[THH:MM[:SS[.frac]]][Z|±HH:MM]' -> Unix time, or None."""
    import time
    date, _, clock = text.partition("T")
    parts = date.split("-")
    if len(parts) != 3 or not all(is_digits(p) for p in parts) or len(parts[0]) != 4:
        return None
    year, month, day = (int(p) for p in parts)
    offset = None
    if clock.endswith("Z"):
        clock, offset = clock[:-1], 0
    elif len(clock) > 6 and clock[-6] in "+-" and clock[-3] == ":":
        hh, mm = clock[-5:-3], clock[-2:]
        if not (is_digits(hh) and is_digits(mm)):
            return None
        offset = (int(hh) * 60 + int(mm)) * 60 * (-1 if clock[-6] == "-" else 1)
        clock = clock[:-6]
    hms, _, frac = clock.partition(".")
    fields = hms.split(":") if hms else ["00", "00"]
    if not 2 <= len(fields) <= 3 or not all(is_digits(f) and len(f) == 2 for f in fields) or \
            (frac and not is_digits(frac)) or not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    hour, minute, second = (int(f) for f in fields + ["0"] * (3 - len(fields)))
    fraction = float(f"0.{frac}") if frac else 0.0
    if offset is None:  # local time, as docker takes it
        return time.mktime((year, month, day, hour, minute, second, 0, 0, -1)) + fraction
    days = _days_from_civil(year, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + second - offset + fraction


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
