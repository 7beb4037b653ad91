"""The `diyc` command: a thin layer over the library, one module per
concern (run, ps, containers, images, networks, system, completion), every
command and option declared once in the table of registry.py.

To add a command, decorate its handler in the module of its concern (or in
a new module, named in registry.MODULES):

    @command("top", "container top", usage="CONTAINER", nargs=1, help="Show its processes",
             options=(Option("-a --all", "all", FLAG, help="Show all"),))
    def cmd_top(root, opts, args):    # opts: {dest: value} parsed; args: the rest
        ...                           # return the exit code

--help, `diyc help top`, `diyc container top --help`, the errors naming the
command or a wrong number of arguments (nargs=, needs=) and bash completion
follow from the declaration; paste the output of `python -m diyc.cli.helptext`
into the README's list of commands.  To add a run flag, add one Option to
run.RUN_OPTIONS with keyword= the Container.create keyword it is passed as
(None: the CLI acts on it itself).

The option parser is our own, small and docker-shaped (options stop at the
image name, `-it` combines, `--name=x` and `--name x` both work): argparse
costs ~7 ms to import here, half of a whole container start."""

import sys

from . import registry  # first: it notes the start time
from ..errors import ContainerNotFound, DiycError, InvalidArgument
from ..options import FLAG, VALUE, Option, parse
from .registry import COMMANDS, GROUPS, UsageError, command, find, load_all
from . import run  # noqa: F401 (the start path: imported with us, the rest on demand)

RUN_OPTIONS = COMMANDS["run"].options  # the parser's table of `diyc run`


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    cmd = None
    try:
        root, argv = _global_options(argv)
        if argv and argv[0] in ("-h", "--help", "-v", "--version"):
            return _print_help_or_version(argv[0])
        if not argv:
            load_all()
            from .helptext import main_help
            print(main_help(), file=sys.stderr)
            return 125
        name, args = _command_name(argv)
        if name is None:  # `diyc GROUP --help`
            load_all()
            from .helptext import group_help
            print(group_help(argv[0]))
            return 0
        cmd = COMMANDS[name]
        return _run_command(root, name, args)
    except DiycError as e:
        # one line, whatever the message quotes (a library's multi-line text)
        prefix = f"diyc {e.command}" if isinstance(e, UsageError) else "diyc"
        print(f"{prefix}: " + " ".join(str(e).split("\n")), file=sys.stderr)
        # no such container: 1, as docker's commands say it; 125 for run
        return cmd.missing_exit if isinstance(e, ContainerNotFound) and cmd else e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
    except OSError as e:
        from ..errors import environment_error
        error = environment_error(e)  # a full disk, say: one line, not a traceback
        if error is None:
            raise
        print(f"diyc: {error}", file=sys.stderr)
        return error.exit_code


def _global_options(argv):
    """-> (--root's value or None, the rest from -h/-v or the command on)."""
    root = None
    while argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "-v", "--version"):
        opt = argv.pop(0)
        if opt == "--root" or opt.startswith("--root="):
            root = opt.partition("=")[2] if "=" in opt else argv.pop(0) if argv else ""
            if not root:  # (Root("") would be the default root: not what was meant)
                raise InvalidArgument("--root needs a directory")
        else:
            raise InvalidArgument(f"unknown flag: {opt}")
    return root, argv


def _print_help_or_version(flag):
    if flag in ("-v", "--version"):
        from .. import __version__
        print(f"diyc version {__version__}")
        return 0
    load_all()
    from .helptext import main_help
    print(main_help())
    return 0


def _command_name(argv):
    """-> (the command's name in the table, its arguments); (None, ...)
    for a group's --help."""
    word = argv[0]
    if word in GROUPS:
        if len(argv) < 2:
            raise UsageError(word, f"a command is needed (see diyc {word} --help)")
        if argv[1] in ("-h", "--help"):
            return None, argv[2:]
        name = f"{word} {argv[1]}"
        if find(name) is None:
            raise UsageError(word, f"unknown command: {argv[1]} (see diyc {word} --help)")
        return name, argv[2:]
    if find(word) is None:
        raise InvalidArgument(f"unknown command: {word} (see diyc --help)")
    return word, argv[1:]


def _run_command(root, name, args):
    cmd = COMMANDS[name]
    try:
        opts, positional = parse(args, cmd.options, cmd.stop_at_positional)
    except InvalidArgument as e:  # named: `diyc ps: unknown flag: --foo`
        raise UsageError(name, str(e)) from None
    if opts.pop("help", False):  # help, and nothing else: not a prune that goes ahead
        load_all()  # (its aliases)
        from .helptext import command_help
        print(command_help(name))
        return 0
    cmd.check_nargs(positional)
    from ..state import Root
    return cmd.handler(Root(root), opts, positional)


# -- the server: its workers run main() -------------------------------------

SERVER_START_OPTIONS = (
    Option("--foreground", "foreground", FLAG, help="Stay in the foreground, log to stderr"),
    Option("--quiet", "quiet", FLAG, help="Print nothing once started"),
    Option("--idle", "idle", VALUE, "SECONDS", "Exit after this long without a request (default 600)"),
)


@command("server start", usage="[OPTIONS]", help="Start the server", options=SERVER_START_OPTIONS)
def cmd_server_start(root, opts, args):
    again = [f"--{o.dest}" for o in SERVER_START_OPTIONS if o.kind == FLAG and opts.get(o.dest)]
    if "idle" in opts:
        again.append(f"--idle={opts['idle']}")
    return _server(root, ["start", *again, *args])


@command("server stop", usage="", help="Stop the server")
def cmd_server_stop(root, opts, args):
    return _server(root, ["stop", *args])


@command("server status", usage="", help="Whether the server runs, its pid and socket")
def cmd_server_status(root, opts, args):
    return _server(root, ["status", *args])


def _server(root, args):
    from ..server import command as server_command
    return server_command(root, args, {"diyc": _served, "diyc-runc": _served_runc})


def _served(argv, accepted_ns):
    """`diyc` as a server's worker runs it."""
    registry.START_NS = accepted_ns  # --trace: the command's own start
    registry.SERVED = True
    return main(argv)


def _served_runc(argv, accepted_ns):
    """`diyc-runc` as a server's worker runs it."""
    from ..oci.runc_cli import main as runc_main
    return runc_main(argv)
