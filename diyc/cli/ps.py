"""`diyc ps` (`container ls`): docker's listing and filters; its rows,
columns and --format are diyc.listing's."""

from ..options import FLAG, LIST, VALUE, Option
from .common import FORMAT, print_formatted
from .registry import command


@command("ps", "container ls", "container list", "container ps", usage="[OPTIONS]", nargs=0,
         help="List containers", options=(
             Option("-a --all", "all", FLAG, help="Show all containers (default shows just running)"),
             Option("-f --filter", "filters", LIST, "KEY=VALUE",
                    "Filter output (status, name, label, id, ancestor, network, exited; repeatable)"),
             Option("-n --last", "last", VALUE, "N", "Show n last created containers (includes all states)"),
             Option("-l --latest", "latest", FLAG,
                    help="Show the latest created container (includes all states)"),
             Option("-q --quiet", "quiet", FLAG, help="Only display container IDs"),
             Option("-s --size", "size", FLAG, help="Display total file sizes"),
             Option("--no-trunc", "no_trunc", FLAG, help="Don't truncate output"), FORMAT))
def cmd_ps(root, opts, args):
    from ..listing import PS_HEADERS, PS_TABLE, container_row
    rows = [container_row(c, no_trunc=opts.get("no_trunc", False)) for c in listed_containers(root, opts)]
    table = PS_TABLE + "\\t{{.Size}}" if opts.get("size") else PS_TABLE
    return print_formatted(opts, rows, table, PS_HEADERS, quiet_format="{{.ID}}")


def listed_containers(root, opts):
    """The containers -a, --filter, -n and -l select, newest first."""
    from ..numbers import INT64_MAX, integer
    from ..runtime import Container
    last = opts.get("last")
    last = 1 if opts.get("latest") else None if last is None else integer(last, "-n/--last", -1, INT64_MAX)
    if last == -1:  # docker's default value: no limit
        last = None
    from .common import filters_given
    listed = Container.list(root, all=opts.get("all", False) or last is not None, filters=filters_given(opts))
    return listed if last is None else listed[:last]
