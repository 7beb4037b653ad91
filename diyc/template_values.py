"""Go's side of a template, in Python: how values print (fmt's %v), which
are true, the functions a template can call (text/template's and
docker's), printf's verbs, and the data shapes a template walks (Map,
Context, Method)."""

from . import _json
from .errors import InvalidArgument


class TemplateError(InvalidArgument):
    """A template that does not parse, or fails on the data given."""


class Map(dict):
    """A Go map: `.key` of a missing key is `<no value>`, not an error
    (plain dicts are Go structs)."""


class Method:
    """A formatter's field that takes arguments: `{{.Label "com.x"}}`."""

    def __init__(self, fn, arity=1):
        self.fn, self.arity = fn, arity


class Context:
    """A formatter's row (docker's ContainerContext, ImageContext, ...):
    fields by name, each a value, a callable (computed when a template
    uses it) or a Method.  type_name names it in errors."""

    def __init__(self, type_name, fields):
        self.type_name, self.fields = type_name, fields

    def json_value(self):
        """`{{json .}}`: every field without arguments, as strings, as docker's MarshalJSON."""
        return {name: value() if callable(value) else value
                for name, value in self.fields.items() if not isinstance(value, Method)}


class _NoValue:
    """What a missing map key gives (Go's invalid reflect.Value)."""

    def __repr__(self):
        return "<no value>"


NO_VALUE = _NoValue()


# -- printing -----------------------------------------------------------------------

def go_str(value):
    """fmt's %v of a value, as a template prints it."""
    if isinstance(value, str):
        return value
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, Map):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, dict):
        return "{" + " ".join(go_str(v) for v in value.values()) + "}"
    if isinstance(value, Context):
        return go_str(value.json_value())
    return str(value)


def go_float(f):
    """strconv.FormatFloat(f, 'g', -1, 64) as %v prints it: the shortest
    form, an exponent below 1e-4 or from 1e21 on."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    text = repr(f)
    mantissa, e, exponent = text.partition("e")
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    if not e:
        return text
    exp = int(exponent)
    if -4 <= exp < 21:
        digits = mantissa.replace(".", "").lstrip("-")
        sign = "-" if f < 0 else ""
        if exp < 0:
            return f"{sign}0.{'0' * (-exp - 1)}{digits.rstrip('0')}"
        return f"{sign}{digits.ljust(exp + 1, '0')}"
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def truth(value):
    """Go's truth: false, 0, nil, an empty string, list or map are false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def to_json(value):
    """docker's `json`: compact, no HTML escaping, no trailing newline."""
    return _json.compact(value, _json_default)


def _json_default(value):
    if isinstance(value, Context):
        return value.json_value()
    if value is NO_VALUE:
        return None
    raise TypeError(f"json: unsupported type: {type(value).__name__}")


# -- printf ----------------------------------------------------------------------------

def go_sprintf(fmt, *args):
    """fmt.Sprintf for the verbs templates use: %v %s %d %q %f %e %g %x %X %o %b %t %c %%,
    with flags, width and precision."""
    out, i, n = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "+-# 0":
            j += 1
        while j < len(fmt) and (fmt[j].isdigit() or fmt[j] == "."):
            j += 1
        if j >= len(fmt):
            out.append("%!(NOVERB)")
            break
        spec, verb = fmt[i + 1:j], fmt[j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(spec, verb, args[n]))
        n += 1
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{go_type_name(a)}={go_str(a)}" for a in args[n:]) + ")")
    return "".join(out)


MAX_WIDTH = 1 << 20  # a width, precision or pad count past this is a mistake, not a layout


def _check_width(*counts):
    if any(int(n) > MAX_WIDTH for n in counts if n):
        raise ValueError(f"width larger than {MAX_WIDTH}")


def _format_one(spec, verb, arg):
    _check_width(*"".join(c if c.isdigit() else " " for c in spec).split())
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    if verb in "vs":
        return ("%" + spec.replace("0", "") + "s") % go_str(arg) if spec else go_str(arg)
    if verb == "q" and isinstance(arg, str):
        return ("%" + spec + "s") % _json.compact(arg)
    if verb == "t" and isinstance(arg, bool):
        return ("%" + spec + "s") % go_str(arg)
    if verb in "dxXob" and is_int:
        return ("%" + spec + ("d" if verb == "d" else verb if verb != "b" else "s")) % \
            (arg if verb != "b" else format(arg, "b"))
    if verb in "xX" and isinstance(arg, str):
        return arg.encode().hex() if verb == "x" else arg.encode().hex().upper()
    if verb in "feEgG" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
        return ("%" + spec + verb) % arg
    if verb == "c" and is_int:
        return chr(arg)
    return f"%!{verb}({go_type_name(arg)}={go_str(arg)})"


def go_type_name(value):
    """The Go type a value stands for, as errors name it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}" if isinstance(value, Map) else "struct"
    return "interface {}"


def _sprint(*args):
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    for k, a in enumerate(args):
        if k and not isinstance(a, str) and not isinstance(args[k - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


# -- the functions -------------------------------------------------------------------

def _index(item, *keys):
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, "") if isinstance(item, Map) else item[key]
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise TypeError(f"cannot index slice/array with type {go_type_name(key)}")
            if not 0 <= key < len(item):
                raise IndexError(f"index out of range: {key}")
            item = item[key]
        elif item is None or item is NO_VALUE:
            raise TypeError("index of untyped nil")
        else:
            raise TypeError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(item, *bounds):
    if not isinstance(item, (list, tuple, str)):
        raise TypeError(f"can't slice item of type {go_type_name(item)}")
    if len(bounds) > 2:
        raise TypeError("too many slice indexes")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise IndexError(f"slice index out of range: [{lo}:{hi}]")
    return item[lo:hi]


def _len(item):
    if isinstance(item, (str, list, tuple, dict)):
        return len(item)
    raise TypeError(f"len of type {go_type_name(item)}")


def _comparable(a, b):
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        ok = isinstance(a, bool) and isinstance(b, bool)
    elif isinstance(a, numbers) or isinstance(b, numbers):
        ok = isinstance(a, numbers) and isinstance(b, numbers)
    else:
        ok = type(a) is type(b) or {type(a), type(b)} <= {str, type(None)}
    if not ok:
        raise TypeError("incompatible types for comparison")
    return a, b


def _eq(a, *others):
    if not others:
        raise TypeError("missing arguments for comparison")
    return any(x == y for x, y in (_comparable(a, b) for b in others))


def _ordered(op):
    def compare(a, b):
        a, b = _comparable(a, b)
        if not isinstance(a, (int, float, str)) or isinstance(a, bool):
            raise TypeError("invalid type for comparison")
        return op(a, b)
    return compare


def _and(*args):
    for a in args:
        if not truth(a):
            return a
    return args[-1]


def _or(*args):
    for a in args:
        if truth(a):
            return a
    return args[-1]


def _join(items, sep):
    if isinstance(items, str):
        return items
    return sep.join(go_str(i) for i in items)


def _title(s):
    """strings.Title: each word's first letter upper case, the rest as it was."""
    out, prev = [], " "
    for c in go_str(s):
        out.append(c.upper() if not (prev.isalnum() or prev in "_'") else c)
        prev = c
    return "".join(out)


def _pad(s, left, right):
    _check_width(left, right)
    s = go_str(s)
    return " " * left + s + " " * right if s else s


def _truncate(s, n):
    s = go_str(s)
    return s[:n] if len(s) > n else s


FUNCTIONS = {
    "and": _and, "or": _or, "not": lambda a: not truth(a), "len": _len, "index": _index,
    "slice": _slice, "eq": _eq, "ne": lambda a, b: not _eq(a, b),
    "lt": _ordered(lambda a, b: a < b), "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b), "ge": _ordered(lambda a, b: a >= b),
    "print": _sprint, "printf": go_sprintf, "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    # docker's (cli/templates)
    "json": to_json, "split": lambda s, sep: go_str(s).split(sep), "join": _join,
    "title": _title, "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(), "pad": _pad,
    "truncate": _truncate,
}


def _header_text(*args):
    return go_str(args[-1]) if args else ""


# docker's HeaderFunctions: in a table's header row, these pass the header text through
HEADER_FUNCTIONS = {name: _header_text for name in
                    ("json", "split", "join", "title", "lower", "upper", "pad", "truncate")}
