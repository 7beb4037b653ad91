"""`diyc network ...` and `diyc volume ...`."""

from ..errors import InvalidArgument
from ..options import FLAG, VALUE, Option
from .common import FORCE, FORMAT, INSPECT_FORMAT, confirm, print_formatted, print_inspected
from .registry import command


@command("network create", usage="[OPTIONS] NETWORK",
         nargs=1, needs="exactly one network name", help="Create a bridge network", options=(
    Option("--subnet", "subnet", VALUE, "CIDR", "Subnet of the network (default: a free /24)"),
    Option("-d --driver", "driver", VALUE, "DRIVER", "Driver of the network (bridge only)")))
def cmd_network_create(root, opts, args):
    if opts.get("driver", "bridge") != "bridge":
        raise InvalidArgument(f"unknown network driver {opts['driver']!r}: only bridge is supported")
    from ..net import network as networking
    print(networking.create(root, args[0], subnet=opts.get("subnet"))["id"])
    return 0


@command("network ls", "network list", usage="[OPTIONS]", nargs=0, help="List networks", options=(
    Option("-q --quiet", "quiet", FLAG, help="Only display network IDs"),
    Option("--no-trunc", "no_trunc", FLAG, help="Do not truncate the output"), FORMAT))
def cmd_network_ls(root, opts, args):
    from ..listing import NETWORKS_HEADERS, NETWORKS_TABLE, network_row
    from ..net import network as networking
    rows = [network_row(n, no_trunc=opts.get("no_trunc", False)) for n in networking.list_networks(root)]
    return print_formatted(opts, rows, NETWORKS_TABLE, NETWORKS_HEADERS, quiet_format="{{.ID}}")


@command("network rm", "network remove", usage="NETWORK [NETWORK...]",
         nargs=(1, None), needs="at least one network",
         help="Remove one or more networks")
def cmd_network_rm(root, opts, args):
    from ..net import network as networking
    from ..pool_keeper import end_warm_containers
    end_warm_containers(root, lambda record: record.get("network") in args)
    for name in args:
        networking.remove(root, name)
        print(name)
    return 0


@command("network prune", usage="[OPTIONS]", nargs=0, help="Remove all unused networks", options=(FORCE,))
def cmd_network_prune(root, opts, args):
    if confirm("network prune", "This will remove all custom networks not used by at least one "
               "container.", opts):
        from ..net import network as networking
        for line in networking.prune(root):
            print(line)
    return 0


@command("network inspect", usage="[OPTIONS] NETWORK [NETWORK...]", nargs=(1, None), needs="at least one network",
         help="Show networks in docker's shape, with their containers", options=(INSPECT_FORMAT,))
def cmd_network_inspect(root, opts, args):
    from ..inspect_view import lookup
    return print_inspected(opts, [lookup(root, name, "network") for name in args])


@command("network connect", usage="[OPTIONS] NETWORK CONTAINER", nargs=2,
         help="Connect a running container to a network", options=(
             Option("--ip", "ip", VALUE, "ADDRESS", "Its IPv4 address on the network (default: the first free one)"),))
def cmd_network_connect(root, opts, args):
    from ..net import attach
    attach.connect(root, args[0], args[1], ip=opts.get("ip"))
    return 0


@command("network disconnect", usage="NETWORK CONTAINER", nargs=2,
         help="Disconnect a running container from a network it joined with connect")
def cmd_network_disconnect(root, opts, args):
    from ..net import attach
    attach.disconnect(root, args[0], args[1])
    return 0


@command("volume create", usage="NAME",
         nargs=1, needs="exactly one volume name", help="Create a named volume (-v NAME:/path)")
def cmd_volume_create(root, opts, args):
    from .. import volumes
    volumes.create_volume(root.ensure(), args[0])
    print(args[0])
    return 0


@command("volume ls", "volume list", usage="[OPTIONS]", nargs=0, help="List volumes", options=(
    Option("-q --quiet", "quiet", FLAG, help="Only display volume names"), FORMAT))
def cmd_volume_ls(root, opts, args):
    from .. import volumes
    from ..listing import VOLUMES_HEADERS, VOLUMES_TABLE, volume_row
    rows = [volume_row(root, name) for name in volumes.list_volumes(root)]
    return print_formatted(opts, rows, VOLUMES_TABLE, VOLUMES_HEADERS, quiet_format="{{.Name}}")


@command("volume inspect", usage="VOLUME [VOLUME...]",
         nargs=(1, None), needs="at least one volume", help="Display detailed information on volumes")
def cmd_volume_inspect(root, opts, args):
    import json
    from .. import volumes
    print(json.dumps([volumes.inspect_volume(root, name) for name in args], indent=4))
    return 0


@command("volume rm", "volume remove", usage="VOLUME [VOLUME...]",
         nargs=(1, None), needs="at least one volume", help="Remove one or more volumes")
def cmd_volume_rm(root, opts, args):
    from .. import volumes
    for name in args:
        volumes.remove_volume(root, name)
        print(name)
    return 0


@command("volume prune", usage="[OPTIONS]", nargs=0, help="Remove unused volumes (named ones with -a)", options=(
    FORCE, Option("-a --all", "all", FLAG, help="Remove all unused volumes, not just anonymous ones")))
def cmd_volume_prune(root, opts, args):
    """As docker 23+: without -a only anonymous volumes go (-v /path, an
    image's VOLUME); a named volume's data needs -a."""
    which = "all local volumes" if opts.get("all") else "anonymous local volumes"
    if confirm("volume prune", f"This will remove {which} not used by at least one container.", opts):
        from ..volumes import prune_volumes
        for name in prune_volumes(root, anonymous_only=not opts.get("all")):
            print(name)
    return 0
