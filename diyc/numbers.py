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
