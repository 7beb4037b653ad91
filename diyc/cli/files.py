"""The file-system commands: cp, diff, export, commit (thin over diyc.copy
and diyc.changes)."""

import sys

from ..errors import InvalidArgument
from ..options import FLAG, LIST, VALUE, Option
from .common import standard_input
from .registry import command


@command("cp", "container cp", usage="[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-",
         nargs=2, needs="2 arguments: CONTAINER:SRC DEST or SRC CONTAINER:DEST",
         help="Copy files between a container and the host, either way (SRC_PATH|- CONTAINER:DEST_PATH)",
         options=(
             Option("-a --archive", "archive", FLAG, help="Archive mode (keep the files' uid/gid)"),
             Option("-L --follow-link", "follow", FLAG, help="Always follow a symbolic link in SRC_PATH")))
def cmd_cp(root, opts, args):
    from ..copy import cp
    cp(root, args[0], args[1], archive=opts.get("archive", False), follow=opts.get("follow", False),
       stdin=standard_input().buffer if args[0] == "-" else None, stdout=sys.stdout.buffer)
    return 0


@command("diff", "container diff", usage="CONTAINER", nargs=1, needs="one container",
         help="Show the changes to a container's file system (A added, C changed, D deleted)")
def cmd_diff(root, opts, args):
    from ..changes import KIND_LETTERS
    from ..runtime import Container
    for change in Container.load(args[0], root).diff():
        print(KIND_LETTERS[change["Kind"]], change["Path"])
    return 0


@command("export", "container export", usage="[OPTIONS] CONTAINER", nargs=1, needs="one container",
         help="Export a container's file system as a tar archive", options=(
             Option("-o --output", "output", VALUE, "file", "Write to a file, instead of STDOUT"),))
def cmd_export(root, opts, args):
    from ..changes import export, export_to_file
    from ..runtime import Container
    ctr = Container.load(args[0], root)
    out = opts.get("output")
    if out is not None and out != "-":
        export_to_file(ctr, out)
        return 0
    if sys.stdout.isatty():
        raise InvalidArgument('"diyc export" refuses to write an archive to a terminal: use -o FILE')
    export(ctr, sys.stdout.buffer)
    return 0


@command("commit", "container commit", usage="[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
         nargs=(1, 2), needs="a container: diyc commit [OPTIONS] CONTAINER [REPO[:TAG]]",
         help="Create a new image from a container's changes", options=(
             Option("-m --message", "message", VALUE, "string", "Commit message"),
             Option("-a --author", "author", VALUE, "string", 'Author (e.g. "Ann <ann@example.com>")'),
             Option("-c --change", "changes", LIST, "list", "Apply Dockerfile instruction to the image"),
             Option("-p --pause", "pause", FLAG,
                    help="Pause the container during commit (default true: --pause=false not to)")))
def cmd_commit(root, opts, args):
    from ..changes import commit
    from ..runtime import Container
    record = commit(Container.load(args[0], root), args[1] if len(args) == 2 else None, opts.get("message"),
                    opts.get("author"), opts.get("changes") or (), pause=opts.get("pause", True))
    print(record["id"])
    return 0
