"""diyc about itself: help, version, cleanup."""

from ..errors import InvalidArgument
from .common import no_arguments
from .registry import command, load_all


@command("help", usage="[COMMAND [SUBCOMMAND]]", help="Show the help of diyc or of a command")
def cmd_help(root, opts, args):
    from .helptext import help_for
    load_all()
    text = help_for(args)
    if text is None:
        raise InvalidArgument(f"unknown help topic: {' '.join(args)} (see diyc --help)")
    print(text)
    return 0


@command("cleanup", "system cleanup", usage="", help="Remove what crashed runs left behind")
def cmd_cleanup(root, opts, args):
    no_arguments("cleanup", args)
    from ..runtime import cleanup
    for line in cleanup(root):
        print(line)
    return 0
