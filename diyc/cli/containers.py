"""The commands on containers: create, rm, start, stop, restart, kill,
wait, logs, stats, attach, inspect, container prune."""

import sys
import time

from ..errors import DiycError, InvalidArgument
from ..options import FLAG, VALUE, Option, signal_number
from .common import FORCE, FORMAT, INSPECT_FORMAT, confirm, each_container, print_inspected
from .registry import command
from .run import RUN_OPTIONS, library_keywords, start_foreground

MAX_STOP_TIMEOUT = 366 * 86400  # finite: the SIGKILL comes, however late


@command("rm", "container rm", "container remove", usage="[OPTIONS] CONTAINER [CONTAINER...]",
         help="Remove one or more containers", options=(
             Option("-f --force", "force", FLAG, help="Force the removal of a running container"),
             Option("-v --volumes", "volumes", FLAG, help="Remove the anonymous volumes of the container")))
def cmd_rm(root, opts, args):
    return each_container(root, args, lambda ctr: ctr.remove(force=opts.get("force", False),
                                                              v=opts.get("volumes", False)),
                          "rm", echo_ref=True)


# `diyc create` takes run's options, less those about the start itself
CREATE_OPTIONS = tuple(o for o in RUN_OPTIONS if o.dest not in ("detach", "trace"))


@command("create", "container create", usage="[OPTIONS] IMAGE [COMMAND] [ARG...]",
         nargs=(1, None), needs="an image: diyc create [OPTIONS] IMAGE [COMMAND...]",
         help="Create a new container; `diyc start` runs it", options=CREATE_OPTIONS,
         stop_at_positional=True)
def cmd_create(root, opts, args):
    from ..runtime import Container
    ctr = Container.create(args[0], args[1:], root=root, **library_keywords(opts, CREATE_OPTIONS))
    ctr.keep_created()
    print(ctr.id)
    return 0


@command("start", "container start", usage="[OPTIONS] CONTAINER [CONTAINER...]",
         help="Start one or more created or stopped containers", options=(
             Option("-a --attach", "attach", FLAG, help="Attach to the container's output"),
             Option("-i --interactive", "interactive", FLAG,
                    help="Attach, and send our stdin to the container")))
def cmd_start(root, opts, args):
    from ..logs import print_logs, read_log
    from .run import start_attached
    attach, interactive = opts.get("attach") or opts.get("interactive"), opts.get("interactive")
    if attach and len(args) != 1:
        raise InvalidArgument('"diyc start" can attach to one container only')
    exit_codes = []

    def start(ctr):
        if ctr.status == "running" and not attach:  # nothing to do, as docker: not an error
            print(ctr.name)
            return
        if ctr.status == "running":
            raise DiycError(f"container {ctr.name} is already running: diyc attach {ctr.name}")
        if ctr.record["auto_remove"] and ctr.status != "created":
            raise DiycError(f"container {ctr.name} was started with --rm and cannot be restarted")
        ctr.record["state"].pop("stopped_by_user", None)
        if attach and ctr.record.get("tty"):
            exit_codes.append(start_attached(ctr, send_input=interactive or opts.get("attach"), new=False))
            return
        if (interactive or (attach and ctr.record["auto_remove"])) and ctr.record["restart"]["name"] == "no":
            # as `diyc run`: our child (-i: our stdin is its stdin); its exit
            # code known when --rm removes it at its end
            exit_codes.append(start_foreground(ctr, new=False, send_input=interactive))
            return
        earlier = len(read_log(f"{ctr.dir}/container.log")) if attach else 0
        ctr.start(detach=True)
        if attach:
            print_logs(ctr, follow=True, skip=earlier)  # this run's output, as docker attaches
        else:
            print(ctr.name)
    code = each_container(root, args, start, "start")
    if exit_codes:
        return exit_codes[0]
    if attach and code == 0:
        from ..runtime import Container
        return Container.load(args[0], root).record["state"].get("exit_code") or 0
    return code


STOP_OPTIONS = (Option("-t --time", "time", VALUE, "SECONDS",
                       "Seconds to wait before killing the container (default: its --stop-timeout, "
                       "else 10)"),)


@command("stop", "container stop", usage="[OPTIONS] CONTAINER [CONTAINER...]",
         help="Stop one or more running containers (its stop signal, then SIGKILL)", options=STOP_OPTIONS)
def cmd_stop(root, opts, args, restart=False):
    from ..numbers import decimal
    timeout = None if opts.get("time") is None else \
        decimal(opts["time"], "-t (seconds)", 0, MAX_STOP_TIMEOUT)  # None: its --stop-timeout
    from ..supervisor import stop

    def stop_one(ctr):
        stop(ctr, timeout)
        if restart:
            ctr.reload()
            ctr.record["state"].pop("stopped_by_user", None)
            ctr.start(detach=True)
        print(ctr.name)
    return each_container(root, args, stop_one, "restart" if restart else "stop")


@command("restart", "container restart", usage="[OPTIONS] CONTAINER [CONTAINER...]",
         help="Restart one or more containers", options=STOP_OPTIONS)
def cmd_restart(root, opts, args):
    return cmd_stop(root, opts, args, restart=True)


@command("kill", "container kill", usage="[OPTIONS] CONTAINER [CONTAINER...]",
         help="Send a signal to one or more running containers", options=(
             Option("-s --signal", "signal", VALUE, "SIGNAL", "Signal to send (default KILL)"),))
def cmd_kill(root, opts, args):
    sig = signal_number(opts.get("signal", "KILL"))

    def kill(ctr):
        if ctr.status != "running":
            raise DiycError(f"container {ctr.name} is not running")
        ctr.kill(sig)
        print(ctr.name)
    return each_container(root, args, kill, "kill")


@command("wait", "container wait", usage="CONTAINER [CONTAINER...]",
         help="Block until containers stop, then print their exit codes")
def cmd_wait(root, opts, args):
    return each_container(root, args, lambda ctr: print(ctr.wait().exit_code), "wait")


@command("logs", "container logs", usage="[OPTIONS] CONTAINER",
         nargs=1, needs="exactly one container", help="Fetch the logs of a container",
         options=(Option("-f --follow", "follow", FLAG, help="Follow log output"),
                  Option("-n --tail", "tail", VALUE, "N",
                         'Number of lines to show from the end of the logs (default "all")'),
                  Option("-t --timestamps", "timestamps", FLAG, help="Show timestamps"),
                  Option("--since", "since", VALUE, "string", "Show logs since timestamp (e.g. "
                         '"2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
                  Option("--until", "until", VALUE, "string", "Show logs before a timestamp (e.g. "
                         '"2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)')))
def cmd_logs(root, opts, args):
    tail = opts.get("tail")
    if tail in (None, "all"):
        tail = None
    else:
        from ..numbers import INT64_MAX, integer
        tail = integer(tail, "--tail value", 0, INT64_MAX)
    from ..logs import print_logs
    from ..numbers import point_in_time
    from ..runtime import Container
    window = {key: point_in_time(opts[key], f"--{key}") for key in ("since", "until") if key in opts}
    print_logs(Container.load(args[0], root), follow=opts.get("follow", False),
               tail=tail, timestamps=opts.get("timestamps", False), **window)
    return 0


@command("stats", "container stats", usage="[OPTIONS] [CONTAINER...]",
         help="Display a live stream of containers' CPU, memory, pids, network and block I/O use",
         options=(Option("-a --all", "all", FLAG, help="Show all containers (default shows just running)"),
                  Option("--no-stream", "no_stream", FLAG,
                         help="Disable streaming stats and only pull the first result"),
                  Option("--no-trunc", "no_trunc", FLAG, help="Don't truncate output"), FORMAT))
def cmd_stats(root, opts, args):
    from ..formatting import format_rows, resolve
    from ..listing import STATS_HEADERS, STATS_TABLE, stats_row
    from ..runtime import Container
    from ..stats import watch
    fmt = resolve(opts.get("format"), STATS_TABLE)
    named = [(Container.load(ref, root), ref) for ref in args]

    def containers():
        if named:
            return [c for c, _ in named]
        return Container.list(root, all=opts.get("all", False))

    def render(pairs):
        given = {id(c): ref for c, ref in named}
        return format_rows(fmt, [stats_row(c, s, given.get(id(c)), opts.get("no_trunc", False))
                                 for c, s in pairs], STATS_HEADERS)
    watch(containers, render, sys.stdout, stream=not opts.get("no_stream"), tty=sys.stdout.isatty())
    return 0


@command("attach", "container attach", usage="[OPTIONS] CONTAINER", nargs=1, needs="exactly one container",
         help="Attach to a running container's terminal or output", options=(
             Option("--no-stdin", "no_stdin", FLAG, help="Do not attach STDIN"),))
def cmd_attach(root, opts, args):
    from ..runtime import Container
    ctr = Container.load(args[0], root)
    if ctr.status != "running":
        raise DiycError(f"container {ctr.name} is not running")
    if not ctr.record.get("tty"):
        from ..logs import print_logs
        print_logs(ctr, follow=True, tail=0)
        return ctr.reload().record["state"].get("exit_code") or 0
    from ..attach import attach, connect
    with connect(ctr) as sock:
        code = attach(sock, send_input=not opts.get("no_stdin"))
    if code is None:
        print(f"\r\ndiyc: detached from {ctr.name}", file=sys.stderr)
        return 0
    # The supervisor sends the code, then records the end: wait for that, so
    # that a command after this one (`diyc rm`) sees the container exited.
    deadline = time.monotonic() + 10
    while ctr.reload().status == "running" and time.monotonic() < deadline:
        time.sleep(0.005)
    return code


@command("inspect", "container inspect", usage="[OPTIONS] NAME|ID [NAME|ID...]",
         nargs=(1, None), needs="at least one container, image, volume or network",
         help="Show low-level information on containers, images, volumes or networks", options=(
             INSPECT_FORMAT,
             Option("--type", "type", VALUE, "string", "Only inspect objects of this type "
                    "(container, image, volume or network)")))
def cmd_inspect(root, opts, args):
    from ..inspect_view import lookup
    return print_inspected(opts, [lookup(root, ref, opts.get("type")) for ref in args])


@command("container prune", usage="[OPTIONS]", nargs=0, help="Remove all stopped containers",
         options=(FORCE,))
def cmd_container_prune(root, opts, args):
    if confirm("container prune", "This will remove all stopped containers.", opts):
        for line in prune_containers(root):
            print(line)
    return 0


def prune_containers(root):
    """Remove every stopped container; -> their ids."""
    from ..runtime import Container
    out = []
    for c in Container.list(root, all=True):
        if c.status in ("exited", "created", "dead"):
            c.remove(force=True)
            out.append(c.id)
    return out


@command("_finish", usage="CONTAINER", hidden=True)
def cmd_finish(root, opts, args):
    """Internal: the supervisor of a detached container calls this at its end."""
    from ..runtime import Container
    from ..supervisor import finish
    finish(Container.load(args[0], root))
    return 0
