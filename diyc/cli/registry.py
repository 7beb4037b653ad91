"""The table of diyc's commands: each registered once, by the @command
decorator on its function, with its names ("ps", "container ls"), usage,
one-line help and options.  Dispatch, --help, `diyc help`, the errors that
name a command and bash completion all read this table."""

import time

START_NS = time.perf_counter_ns()  # --trace counts from here (the server resets it)
SERVED = False  # a server's worker runs us (then `run --rm` may find a warm container)

from ..errors import InvalidArgument  # noqa: E402
from ..options import FLAG, Option, option_table  # noqa: E402

HELP = Option("-h --help", "help", FLAG, help="Print usage")

# the management commands: `diyc GROUP SUB`
GROUPS = {
    "container": "Manage containers",
    "image": "Manage images",
    "network": "Manage networks",
    "volume": "Manage volumes",
    "system": "Manage diyc",
    "server": "Manage the server that runs diyc commands without a Python start each",
}

# The modules that register commands, in the order of the help; imported
# only until the command asked for is found (`diyc run`: run only).
MODULES = ("run", "ps", "containers", "ops", "files", "images", "networks", "system", "completion")


class UsageError(InvalidArgument):
    """A command line diyc cannot take, reported as `diyc COMMAND: ...`."""

    def __init__(self, command, message):
        super().__init__(message)
        self.command = command


class NotConfirmed(UsageError):
    """A prune without -f and without a terminal to ask on: nothing done."""
    exit_code = 1


COMMANDS = {}  # every name ("ps", "container ls") -> its Command
ORDER = []     # the Commands, in the order they were registered


class Command:
    __slots__ = ("names", "handler", "options", "usage", "help", "stop_at_positional", "hidden",
                 "missing_exit", "nargs", "needs")

    def __init__(self, names, handler, options, usage, help, stop_at_positional, hidden, missing_exit,
                 nargs, needs):
        self.names, self.handler, self.usage, self.help = names, handler, usage, help
        self.options = option_table(*options).add_where_free(HELP)
        self.stop_at_positional, self.hidden, self.missing_exit = stop_at_positional, hidden, missing_exit
        self.nargs = (nargs, nargs) if isinstance(nargs, int) else nargs
        self.needs = needs

    @property
    def name(self):
        return self.names[0]

    def check_nargs(self, positional):
        """The number of positional arguments against the table's nargs:
        a wrong one is InvalidArgument, `"diyc NAME" requires NEEDS` (or
        its words made of the count and the usage line)."""
        if self.nargs is None:
            return
        least, most = self.nargs
        if least <= len(positional) and (most is None or len(positional) <= most):
            return
        if most == 0:
            raise InvalidArgument(f'"diyc {self.name}" accepts no arguments (got {positional[0]!r})')
        needs = self.needs
        if needs is None:
            count = (f"exactly {least}" if least == most else f"at least {least}" if most is None
                     else f"{least} to {most}")
            plural = "" if least == 1 and most in (1, None) else "s"
            needs = f"{count} argument{plural}: {self.usage.replace('[OPTIONS]', '').strip()}"
        raise InvalidArgument(f'"diyc {self.name}" requires {needs}')


def command(*names, usage="", help="", options=(), stop_at_positional=False, hidden=False,
            missing_exit=1, nargs=None, needs=None):
    """Register the decorated handler(root, opts, args) -> exit code under
    each name ("rm", "container rm").  usage: what follows the name in the
    usage line ("[OPTIONS] CONTAINER..."); help: one line; options: Options
    (or (names, dest, kind) tuples), parsed into opts by dest;
    stop_at_positional: options end at the first argument (run, exec);
    missing_exit: the exit code when a container it names does not exist
    (docker's 1; run's 125, as for anything that stops a container from
    starting); nargs: how many arguments it takes, N or (LEAST, MOST)
    (MOST None: no limit; None: the handler checks them), checked before
    the handler runs; needs: what the error for another number says after
    "requires" (default: the count and the usage line's arguments; none for
    nargs=0: `accepts no arguments`)."""
    def register(handler):
        cmd = Command(names, handler, options, usage, help, stop_at_positional, hidden, missing_exit,
                      nargs, needs)
        for name in names:
            group = name.partition(" ")[0]
            if " " in name and group not in GROUPS:
                raise ValueError(f"command {name!r}: no group {group!r}")
            if name in COMMANDS:
                raise ValueError(f"command {name!r} registered twice")
            COMMANDS[name] = cmd
        ORDER.append(cmd)
        return handler
    return register


def find(name):
    """The Command of a name ("ps", "network ls"), or None."""
    for module in MODULES:
        if name in COMMANDS:
            break
        __import__(f"{__package__}.{module}")
    return COMMANDS.get(name)


def load_all():
    for module in MODULES:
        __import__(f"{__package__}.{module}")


def group_commands(group):
    """{sub: Command} of a group, in registration order."""
    prefix = group + " "
    return {n[len(prefix):]: c for c in ORDER for n in c.names
            if n.startswith(prefix) and not c.hidden}


def top_level():
    """The commands named without a group, visible, in registration order."""
    return [c for c in ORDER if " " not in c.name and not c.hidden and c.name not in GROUPS]
