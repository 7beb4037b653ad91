"""The commands that act on a live container - top, port, rename, pause,
unpause, update - and events: thin layers over diyc.operations,
diyc.container_api and diyc.events."""

from ..errors import DiycError
from ..options import LIST, VALUE, Option, print_table
from .common import each_container
from .registry import command
from .run import CPUS, MEMORY, MEMORY_SWAP, PIDS_LIMIT, RESTART


@command("top", "container top", usage="CONTAINER [ps OPTIONS]", nargs=(1, None), needs="a container",
         help="Display the running processes of a container", stop_at_positional=True)
def cmd_top(root, opts, args):
    from ..runtime import Container
    table = Container.load(args[0], root).top(args[1:] or None)
    print_table(table["Titles"], table["Processes"])
    return 0


@command("port", "container port", usage="CONTAINER [PRIVATE_PORT[/PROTO]]",
         nargs=(1, 2), needs="a container and at most one port",
         help="List port mappings or a specific mapping for the container")
def cmd_port(root, opts, args):
    from ..runtime import Container
    ctr = Container.load(args[0], root)
    ports = ctr.ports
    if len(args) == 1:
        for key, bindings in sorted(ports.items(), key=lambda kv: _port_order(kv[0])):
            for b in bindings:
                print(f"{key} -> {b['HostIp']}:{b['HostPort']}")
        return 0
    port, _, proto = args[1].partition("/")
    key = f"{port}/{proto or 'tcp'}"
    if not ports.get(key):
        raise DiycError(f"no public port {key!r} published for {ctr.name}")
    for b in ports[key]:
        print(f"{b['HostIp']}:{b['HostPort']}")
    return 0


def _port_order(key):
    port, _, proto = key.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


@command("rename", "container rename", usage="CONTAINER NEW_NAME", nargs=2, help="Rename a container")
def cmd_rename(root, opts, args):
    from ..runtime import Container
    Container.load(args[0], root).rename(args[1])
    return 0


@command("pause", "container pause", usage="CONTAINER [CONTAINER...]",
         help="Pause all processes within one or more containers")
def cmd_pause(root, opts, args):
    return each_container(root, args, lambda ctr: ctr.pause(), "pause", echo_ref=True)


@command("unpause", "container unpause", usage="CONTAINER [CONTAINER...]",
         help="Unpause all processes within one or more containers")
def cmd_unpause(root, opts, args):
    return each_container(root, args, lambda ctr: ctr.unpause(), "unpause", echo_ref=True)


UPDATE_OPTIONS = (MEMORY, MEMORY_SWAP, CPUS,
                  Option("-c --cpu-shares", "cpu_shares", VALUE, "N", "CPU shares (relative weight)",
                         keyword="cpu_shares"),
                  PIDS_LIMIT, RESTART)


@command("update", "container update", usage="[OPTIONS] CONTAINER [CONTAINER...]",
         help="Update configuration of one or more containers", options=UPDATE_OPTIONS)
def cmd_update(root, opts, args):
    changes = {o.keyword: opts[o.dest] for o in UPDATE_OPTIONS if o.dest in opts}
    from ..operations import check_update
    check_update(**changes)  # bad values: one line, exit 125, before any container
    return each_container(root, args, lambda ctr: ctr.update(**changes), "update", echo_ref=True)


@command("events", "system events", usage="[OPTIONS]", nargs=0, help="Get real time events from diyc",
         options=(Option("--since", "since", VALUE, "string", "Show all events created since timestamp"),
                  Option("--until", "until", VALUE, "string", "Stream events until this timestamp"),
                  Option("-f --filter", "filters", LIST, "filter",
                         "Filter output based on conditions provided (container=, event=, type=, "
                         "image=, network=, label=)"),
                  Option("--format", "format", VALUE, "string",
                         "Format the output using the given Go template")))
def cmd_events(root, opts, args):
    from .. import events
    from ..numbers import point_in_time
    since = point_in_time(opts["since"], "--since") if "since" in opts else None
    until = point_in_time(opts["until"], "--until") if "until" in opts else None
    filters = events.parse_filters(opts.get("filters", []))
    show = _event_formatter(opts.get("format"))
    if since is None and until is None:
        since = _now()  # docker's default: what happens from now on
    # until a past --until, or forever (as `tail -f`): the caller interrupts
    stream = events.follow(root, since, until, filters)
    for event in stream:
        print(show(event), flush=True)
    return 0


def _now():
    import time
    return time.time()


def _event_formatter(fmt):
    """docker's events --format: `json` (or `{{json .}}`) the event as its
    JSON line, else a Go template over docker's events.Message fields
    (.Type, .Action, .Actor.ID, .Actor.Attributes, .ID, .Status, .From,
    .Time, .TimeNano, .Scope)."""
    from .. import events
    if fmt is None:
        return events.line
    if fmt.strip() in ("json", "{{json .}}"):
        from .. import _json
        return _json.dumps
    from ..formatting import format_each
    from ..template_values import Map
    format_each(fmt, [])  # a bad template: refused before anything is printed

    def show(event):
        actor = event.get("Actor") or {}
        message = {"Status": event.get("status", ""), "ID": event.get("id", ""),
                   "From": event.get("from", ""), "Type": event.get("Type", ""),
                   "Action": event.get("Action", ""), "Scope": event.get("scope", ""),
                   "Actor": {"ID": actor.get("ID", ""), "Attributes": Map(actor.get("Attributes") or {})},
                   "Time": event.get("time", 0), "TimeNano": event.get("timeNano", 0)}
        return format_each(fmt, [message]).rstrip("\n")
    return show
