"""The docker-shaped command-line grammar both front ends speak (`diyc`
and `diyc-runc`): option tables, the parser (-dit, --flag=value, -m64m,
--), signals by name or number, and plain tables out."""

from .errors import InvalidArgument

FLAG, VALUE, LIST = "flag", "value", "list"


def option_table(*specs):
    table = {}
    for names, dest, kind in specs:
        for n in names.split():
            table[n] = (dest, kind)
    return table


def parse(args, table, stop_at_positional=True):
    """-> (options dict, positional list)."""
    opts, positional = {}, []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional += args[i:]
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if stop_at_positional:
                positional += args[i:]
                break
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            shorts = [(name, value if eq else None)]
        else:
            # -it, -eK=V, -m64m: single letters, the first taking a value ends it
            shorts = []
            for j, ch in enumerate(arg[1:], 1):
                dest = table.get(f"-{ch}")
                if dest and dest[1] != FLAG:
                    rest = arg[j + 1:]
                    if rest.startswith("="):  # -m=64m, as docker takes it
                        rest = rest[1:]
                    shorts.append((f"-{ch}", rest or None))
                    break
                shorts.append((f"-{ch}", None))
        for name, value in shorts:
            if name not in table:
                raise InvalidArgument(f"unknown flag: {name}")
            dest, kind = table[name]
            if kind == FLAG:
                if value is not None and value not in ("true", "false"):
                    raise InvalidArgument(f"flag {name} takes no value")
                opts[dest] = value != "false"
                continue
            if value is None:
                if i >= len(args):
                    raise InvalidArgument(f"flag needs an argument: {name}")
                value = args[i]
                i += 1
            if kind == LIST:
                opts.setdefault(dest, []).append(value)
            else:
                opts[dest] = value
    return opts, positional


def signal_number(name):
    """A signal by number (1 to SIGRTMAX) or name (KILL, SIGHUP, hup)."""
    import _signal
    from .numbers import is_digits, integer
    if is_digits(name):
        return integer(name, "signal", 1, _signal.SIGRTMAX)
    n = name.upper()
    n = n if n.startswith("SIG") else f"SIG{n}"
    # (not SIG_DFL, SIG_IGN, SIG_BLOCK...: handler and mask constants, 0-2)
    num = getattr(_signal, n, None) if n[3:].isalnum() and n.isascii() else None
    if not isinstance(num, int):
        raise InvalidArgument(f"invalid signal: {name}")
    return num


def print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("   ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
