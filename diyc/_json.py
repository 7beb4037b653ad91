"""JSON without `import json`.

The json package imports `re` (and with it `enum`): ~7 ms, half of the
whole budget of a `diyc run`.  The C accelerator `_json` behind it needs
neither, so the hot path talks to it directly.  Same format, same output."""

try:
    import _json as _c
except ImportError:  # pragma: no cover - every CPython has it
    _c = None


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = {}

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


def _whitespace_end(s, i):
    n = len(s)
    while i < n and s[i] in " \t\n\r":
        i += 1
    return i


if _c is not None:
    _scanner = _c.make_scanner(_ScanContext)
    _encoder = _c.make_encoder(None, None, _c.encode_basestring_ascii, None, ": ", ", ",
                               True, False, True)


def loads(s):
    if isinstance(s, (bytes, bytearray)):
        s = s.decode()
    if _c is None:
        import json
        return json.loads(s)
    try:
        obj, end = _scanner(s, _whitespace_end(s, 0))
    except Exception:
        # StopIteration at the start; for an error further in, the C scanner
        # raises json.decoder's JSONDecodeError - or, that module not being
        # imported (we avoid it), a bare SystemError.  Any of them: the input
        # is malformed, and the json module (off the hot path) says where.
        raise ValueError(f"invalid JSON: {_error_detail(s)}") from None
    finally:
        _ScanContext.memo.clear()
    if _whitespace_end(s, end) != len(s):
        raise ValueError("invalid JSON: extra data")
    return obj


def _error_detail(s):
    import json
    try:
        json.loads(s)
    except ValueError as e:
        return str(e)
    return "unreadable"  # pragma: no cover - both parsers read the same format


def dumps(obj):
    if _c is None:
        import json
        return json.dumps(obj, sort_keys=True)
    return "".join(_encoder(obj, 0))


def compact(obj, default=None):
    """As docker's templates write JSON (Go's encoding/json): no spaces,
    keys in their order, non-ASCII as is.  default(o): a JSON value for
    an object that has none."""
    if _c is None:
        import json
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=default)
    encoder = _c.make_encoder({}, default or _no_default, _c.encode_basestring, None, ":", ",",
                              False, False, True)
    return "".join(encoder(obj, 0))


def _no_default(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def load_file(path):
    with open(path, "rb") as f:
        return loads(f.read())
