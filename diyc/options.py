"""The docker-shaped command-line grammar both front ends speak (`diyc`
and `diyc-runc`): option tables (each option declared once, with its help
text and library keyword), the parser (-dit, --flag=value, -m64m, --),
signals by name or number, and plain tables out."""

from .errors import InvalidArgument

FLAG, VALUE, LIST = "flag", "value", "list"


class Option:
    """One option, declared once: its names ("-d --detach"), the key it is
    parsed to (dest), its kind (FLAG, VALUE or LIST: repeatable), the
    metavar and help text its command's --help shows, and the library
    keyword (Container.create's, say) the value is passed as, if any."""

    __slots__ = ("names", "dest", "kind", "metavar", "help", "keyword", "hidden")

    def __init__(self, names, dest, kind=FLAG, metavar=None, help="", keyword=None, hidden=False):
        self.names = tuple(names.split())
        self.dest, self.kind, self.help, self.keyword, self.hidden = dest, kind, help, keyword, hidden
        self.metavar = metavar or ("" if kind == FLAG else dest.upper())

    def label(self):
        """ "-d, --detach" or "    --name string", as docker's help shows them."""
        shorts = [n for n in self.names if not n.startswith("--")]
        longs = [n for n in self.names if n.startswith("--")]
        text = ", ".join(shorts[:1] + longs[:1]) if shorts else "    " + ", ".join(longs[:1])
        return f"{text} {self.metavar}" if self.metavar else text


class OptionTable(dict):
    """{name: Option} for the parser, and the Options in declaration order
    (.options) for help and completion."""

    def __init__(self, options=()):
        super().__init__()
        self.options = []
        for o in options:
            self.add(o)

    def add(self, option):
        self.options.append(option)
        for n in option.names:
            self[n] = option
        return self

    def add_where_free(self, option):
        """Add option (--help, say) under those of its names not taken: a
        name already taken keeps its meaning (run's -h is --hostname)."""
        free = " ".join(n for n in option.names if n not in self)
        if free:
            o = option
            self.add(Option(free, o.dest, o.kind, o.metavar, o.help, o.keyword, o.hidden))
        return self


def option_table(*specs):
    """An OptionTable of Options, or of (names, dest, kind) tuples."""
    return OptionTable(s if isinstance(s, Option) else Option(*s) for s in specs)


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
                option = table.get(f"-{ch}")
                if option and option.kind == FLAG and arg[j + 1:j + 2] == "=":  # -p=false
                    shorts.append((f"-{ch}", arg[j + 2:]))
                    break
                if option and option.kind != FLAG:
                    rest = arg[j + 1:]
                    if rest.startswith("="):  # -m=64m, as docker takes it
                        rest = rest[1:]
                    shorts.append((f"-{ch}", rest or None))
                    break
                shorts.append((f"-{ch}", None))
        for name, value in shorts:
            if name not in table:
                raise InvalidArgument(f"unknown flag: {name}")
            dest, kind = table[name].dest, table[name].kind
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
