"""diyc about itself: help, version, cleanup, system reset."""

import sys

from ..errors import InvalidArgument
from ..options import FLAG, Option
from .common import no_arguments, reason
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


@command("system reset", usage="[OPTIONS]",
         help="Remove every container and network of this root, its bridges and firewall table; "
              "restore ip_forward", options=(
             Option("-f --force", "force", FLAG, help="Do not prompt for confirmation"),))
def cmd_system_reset(root, opts, args):
    no_arguments("system reset", args)
    if not opts.get("force"):
        if not sys.stdin.isatty():
            raise InvalidArgument("system reset: nothing done: no terminal to confirm on (use -f)")
        answer = input("WARNING! This removes every container and network of this diyc root,\n"
                       "its bridges and nftables table, and restores net.ipv4.ip_forward.\n"
                       "Images and volumes stay.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing done.")
            return 0
    from ..reset import reset
    lines, failed = reset(root)
    for line in lines:
        print(line)
    for name, e in failed:
        print(f"diyc: system reset {name}: {reason(e)}", file=sys.stderr)
    return 1 if failed else 0
