"""`diyc ps` (`container ls`): docker's listing, filters and columns."""

import os

from ..errors import InvalidArgument
from ..options import FLAG, LIST, VALUE, Option, print_table
from .common import ago, human_size, no_arguments, ports_text, quote_cmd, status_text
from .registry import command

HEADER = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")


@command("ps", "container ls", "container list", "container ps", usage="[OPTIONS]",
         help="List containers", options=(
             Option("-a --all", "all", FLAG, help="Show all containers (default shows just running)"),
             Option("-f --filter", "filters", LIST, "KEY=VALUE",
                    "Filter output (status, name, label, id, ancestor, network, exited; repeatable)"),
             Option("-n --last", "last", VALUE, "N", "Show n last created containers (includes all states)"),
             Option("-l --latest", "latest", FLAG,
                    help="Show the latest created container (includes all states)"),
             Option("-q --quiet", "quiet", FLAG, help="Only display container IDs"),
             Option("-s --size", "size", FLAG, help="Display total file sizes"),
             Option("--no-trunc", "no_trunc", FLAG, help="Don't truncate output"),
             Option("--format", "format", VALUE, "json|table", "Format output")))
def cmd_ps(root, opts, args):
    no_arguments("ps", args)
    if opts.get("format") not in (None, "json", "table"):
        raise InvalidArgument(f"invalid --format {opts['format']!r}: json or table")
    listed = listed_containers(root, opts)
    if opts.get("format") == "json":
        import json
        print(json.dumps([as_json(c) for c in listed], indent=2))
    elif opts.get("quiet"):
        for c in listed:
            print(c.id if opts.get("no_trunc") else c.id[:12])
    else:
        rows = [row(c, opts.get("no_trunc"), opts.get("size"), root) for c in listed]
        print_table(HEADER + (("SIZE",) if opts.get("size") else ()), rows)
    return 0


def listed_containers(root, opts):
    """The containers -a, --filter, -n and -l select, newest first."""
    from ..numbers import INT64_MAX, integer
    from ..runtime import Container
    last = opts.get("last")
    last = 1 if opts.get("latest") else None if last is None else integer(last, "-n/--last", -1, INT64_MAX)
    if last == -1:  # docker's default value: no limit
        last = None
    filters = {}
    for item in opts.get("filters", []):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"bad format of filter {item!r} (expected name=value)")
        filters.setdefault(key, []).append(value)
    listed = Container.list(root, all=opts.get("all", False) or last is not None, filters=filters)
    return listed if last is None else listed[:last]


def row(c, no_trunc, size, root):
    cells = (c.id if no_trunc else c.id[:12], c.record["image"],
             quote_cmd(c.record["spec"]["process"]["args"]),
             ago(c.record["created"]), status_text(c), ports_text(c), c.name)
    if not size:
        return cells
    writable = tree_size(f"{root.container_dir(c.id)}/upper")
    image = image_size(root, c.record.get("image_id"))
    return cells + (f"{human_size(writable)} (virtual {human_size(writable + image)})",)


def as_json(c):
    return {"Id": c.id, "Names": c.name, "Image": c.record["image"],
            "Command": " ".join(c.record["spec"]["process"]["args"]),
            "Created": c.record["created"], "State": c.status,
            "Status": status_text(c), "Ports": ports_text(c),
            "ExitCode": c.record["state"].get("exit_code")}


def tree_size(path):
    """Bytes of the files under path (a container's writable layer: its
    own content, so no link is followed)."""
    total = 0
    for top, _dirs, files in os.walk(path):  # (os.walk enters no symlinked directory)
        for name in files:
            try:
                total += os.stat(f"{top}/{name}", follow_symlinks=False).st_size
            except OSError:
                continue  # changed under us
    return total


def image_size(root, image_id):
    from ..errors import NotFound
    from ..images.store import ImageStore
    try:
        return ImageStore(root).resolve(image_id).get("size", 0) if image_id else 0
    except NotFound:
        return 0
