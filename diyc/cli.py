"""The `diyc` command: a thin layer over the library.

The option parser is our own, small and docker-shaped (options stop at the
image name, `-it` combines, `--name=x` and `--name x` both work): argparse
costs ~7 ms to import here, half of a whole container start."""

import os
import sys
import time

from .errors import DiycError, InvalidArgument

START_NS = time.perf_counter_ns()

FLAG, VALUE, LIST = "flag", "value", "list"


def _options(*specs):
    table = {}
    for names, dest, kind in specs:
        for n in names.split():
            table[n] = (dest, kind)
    return table


RUN_OPTIONS = _options(
    ("--rm", "rm", FLAG),
    ("--name", "name", VALUE),
    ("-h --hostname", "hostname", VALUE),
    ("-e --env", "env", LIST),
    ("-w --workdir", "workdir", VALUE),
    ("-u --user", "user", VALUE),
    ("--entrypoint", "entrypoint", VALUE),
    ("-m --memory", "memory", VALUE),
    ("--memory-swap", "memory_swap", VALUE),
    ("--cpus", "cpus", VALUE),
    ("--pids-limit", "pids_limit", VALUE),
    ("--network --net", "network", VALUE),
    ("--cgroup-parent", "cgroup_parent", VALUE),
    ("--read-only", "read_only", FLAG),
    ("--privileged", "privileged", FLAG),
    ("--cap-add", "cap_add", LIST),
    ("--cap-drop", "cap_drop", LIST),
    ("--security-opt", "security_opt", LIST),
    ("--ulimit", "ulimits", LIST),
    ("--sysctl", "sysctls", LIST),
    ("--oom-score-adj", "oom_score_adj", VALUE),
    ("--device", "devices", LIST),
    ("--tmpfs", "tmpfs", LIST),
    ("--trace", "trace", FLAG),
    ("--help", "help", FLAG),
)

USAGE = """Usage: diyc [--root DIR] COMMAND [OPTIONS]

Commands:
  run [OPTIONS] IMAGE [COMMAND...]   run a command in a new container
  ps [-a] [-q]                       list containers
  rm [-f] CONTAINER...               remove containers
  import TARBALL NAME[:TAG]          import a flat rootfs tarball as an image
  images [-q]                        list images
  rmi IMAGE...                       remove images
  tag IMAGE NAME[:TAG]               add a name to an image
  inspect CONTAINER|IMAGE            show the record as JSON
  cleanup                            remove what crashed runs left behind

run options:
  --rm                  remove the container when it exits
  --name NAME           container name
  -h, --hostname NAME   hostname inside the container
  -e, --env K=V         set an environment variable (repeatable)
  -w, --workdir DIR     working directory inside the container
  -u, --user U[:G]      user name or uid (and group) to run as
  --entrypoint CMD      override the image's entrypoint
  -m, --memory SIZE     memory limit (e.g. 64m)
  --memory-swap SIZE    memory+swap limit (-1: unlimited swap)
  --cpus N              CPU quota in CPUs (e.g. 0.5)
  --pids-limit N        maximum number of processes (-1: unlimited)
  --network MODE        none (default: loopback only) or host
  --cgroup-parent PATH  parent cgroup (default: diyc's own cgroup)
  --read-only           mount the root filesystem read-only
  --privileged          keep every capability, no masked paths
  --cap-add CAP         add a capability (repeatable; ALL for every one)
  --cap-drop CAP        drop a capability (repeatable; ALL for every one)
  --security-opt OPT    no-new-privileges, seccomp=unconfined
  --ulimit NAME=S[:H]   resource limit (e.g. nofile=1024:2048)
  --sysctl KEY=VALUE    namespaced sysctl (net.*, kernel.shm*, kernel.msg*, ...)
  --oom-score-adj N     the container's OOM score adjustment
  --device HOST[:CTR][:rwm]  give the container a host device
  --tmpfs PATH[:OPTS]   mount a tmpfs (e.g. with --read-only)
  --trace               print the time of each start phase to stderr
"""


def parse(args, table, stop_at_positional=True):
    """-> (options dict, positional list)."""
    opts, positional = {}, []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional += args[i:]
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if stop_at_positional:
                positional += args[i:]
                break
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            shorts = [(name, value if eq else None)]
        else:
            # -it, -eK=V, -m64m: single letters, the first taking a value ends it
            shorts = []
            for j, ch in enumerate(arg[1:], 1):
                dest = table.get(f"-{ch}")
                if dest and dest[1] != FLAG:
                    rest = arg[j + 1:]
                    shorts.append((f"-{ch}", rest or None))
                    break
                shorts.append((f"-{ch}", None))
        for name, value in shorts:
            if name not in table:
                raise InvalidArgument(f"unknown flag: {name}")
            dest, kind = table[name]
            if kind == FLAG:
                if value is not None and value not in ("true", "false"):
                    raise InvalidArgument(f"flag {name} takes no value")
                opts[dest] = value != "false"
                continue
            if value is None:
                if i >= len(args):
                    raise InvalidArgument(f"flag needs an argument: {name}")
                value = args[i]
                i += 1
            if kind == LIST:
                opts.setdefault(dest, []).append(value)
            else:
                opts[dest] = value
    return opts, positional


# -- commands ---------------------------------------------------------------

def cmd_run(root, args):
    opts, pos = parse(args, RUN_OPTIONS)
    if opts.get("help"):
        print(USAGE)
        return 0
    if not pos:
        raise InvalidArgument('"diyc run" requires an image: diyc run [OPTIONS] IMAGE [COMMAND...]')
    from .runtime import Container
    from .trace import Trace
    trace = Trace(enabled=opts.get("trace") or os.environ.get("DIYC_TRACE") == "1", start_ns=START_NS)
    trace.mark("cli")
    ctr = Container.create(
        pos[0], pos[1:], name=opts.get("name"), hostname=opts.get("hostname"),
        env=opts.get("env"), workdir=opts.get("workdir"), user=opts.get("user"),
        entrypoint=opts.get("entrypoint"), memory=opts.get("memory"),
        memory_swap=opts.get("memory_swap"), cpus=opts.get("cpus"),
        pids_limit=opts.get("pids_limit"), network=opts.get("network", "none"),
        auto_remove=opts.get("rm", False), cgroup_parent=opts.get("cgroup_parent"),
        read_only=opts.get("read_only", False), privileged=opts.get("privileged", False),
        cap_add=opts.get("cap_add"), cap_drop=opts.get("cap_drop"),
        security_opt=opts.get("security_opt"), ulimits=opts.get("ulimits"),
        sysctls=opts.get("sysctls"), oom_score_adj=opts.get("oom_score_adj"),
        devices=opts.get("devices"), tmpfs=opts.get("tmpfs"), root=root, trace=trace)
    restore = _forward_signals(ctr)
    try:
        ctr.start()
        result = ctr.wait()
    except BaseException:
        if ctr.pid:
            ctr.kill(9)
            try:
                os.waitpid(ctr.pid, 0)
            except ChildProcessError:
                pass
            ctr.pid = None
        ctr.remove(force=True)
        raise
    finally:
        restore()
    trace.mark("wait")
    trace.report()
    if result.oom_killed:
        limit = ctr.record["spec"]["linux"]["resources"].get("memory", {}).get("limit")
        print(f"diyc: container {ctr.name}: a process was killed by the memory limit "
              f"({_human_size(limit)}): out of memory", file=sys.stderr)
    return result.exit_code


def _forward_signals(ctr):
    """SIGINT/SIGTERM/... sent to diyc go to the container's PID 1.
    (_signal, not signal: the latter imports enum, ~5 ms.)"""
    import _signal
    sigs = [_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
            _signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGWINCH]
    old = {}

    def forward(sig, frame):
        try:
            ctr.kill(sig)
        except OSError:
            pass

    for s in sigs:
        old[s] = _signal.signal(s, forward)

    def restore():
        for s, h in old.items():
            _signal.signal(s, h)
    return restore


def cmd_ps(root, args):
    opts, pos = parse(args, _options(("-a --all", "all", FLAG), ("-q --quiet", "quiet", FLAG),
                                     ("--no-trunc", "no_trunc", FLAG)), stop_at_positional=False)
    from .runtime import Container
    rows = []
    for c in Container.list(root):
        status = c.status
        if status != "running" and not opts.get("all"):
            continue
        if opts.get("quiet"):
            print(c.id if opts.get("no_trunc") else c.id[:12])
            continue
        rows.append((c.id if opts.get("no_trunc") else c.id[:12], c.record["image"],
                     _quote_cmd(c.record["spec"]["process"]["args"]),
                     _ago(c.record["created"]), _status_text(c), c.name))
    if not opts.get("quiet"):
        _table(("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"), rows)
    return 0


def cmd_rm(root, args):
    opts, pos = parse(args, _options(("-f --force", "force", FLAG)), stop_at_positional=False)
    if not pos:
        raise InvalidArgument('"diyc rm" requires at least one container')
    from .runtime import Container
    code = 0
    for ref in pos:
        try:
            Container.load(ref, root).remove(force=opts.get("force", False))
            print(ref)
        except DiycError as e:
            print(f"diyc: {e}", file=sys.stderr)
            code = 1
    return code


def cmd_import(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if len(pos) != 2:
        raise InvalidArgument('"diyc import" requires TARBALL and NAME[:TAG]')
    from .images import ImageStore
    store = ImageStore(root)
    if pos[0] == "-":
        record = store.import_tarball(sys.stdin.buffer, pos[1])
    else:
        try:
            f = open(pos[0], "rb")
        except OSError as e:
            raise InvalidArgument(f"cannot open {pos[0]}: {e.strerror}") from None
        with f:
            record = store.import_tarball(f, pos[1])
    print(record["id"])
    return 0


def cmd_images(root, args):
    opts, pos = parse(args, _options(("-q --quiet", "quiet", FLAG)), stop_at_positional=False)
    from .images import ImageStore
    rows = []
    for img in ImageStore(root).list():
        short = img["id"].removeprefix("sha256:")[:12]
        if opts.get("quiet"):
            print(short)
            continue
        for ref in img["repo_tags"] or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            rows.append((repo, tag, short, img.get("created", ""), _human_size(img.get("size", 0))))
    if not opts.get("quiet"):
        _table(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"), rows)
    return 0


def cmd_rmi(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if not pos:
        raise InvalidArgument('"diyc rmi" requires at least one image')
    from .images import ImageStore
    from .runtime import Container
    used = {c.record["image_id"] for c in Container.list(root)}
    for ref in pos:
        for line in ImageStore(root).remove(ref, users=used):
            print(line)
    return 0


def cmd_tag(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if len(pos) != 2:
        raise InvalidArgument('"diyc tag" requires SOURCE and TARGET')
    from .images import ImageStore
    ImageStore(root).tag(pos[0], pos[1])
    return 0


def cmd_inspect(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if not pos:
        raise InvalidArgument('"diyc inspect" requires a container or image')
    import json
    from .errors import NotFound
    from .images import ImageStore
    from .runtime import Container
    out = []
    for ref in pos:
        try:
            c = Container.load(ref, root)
            rec = dict(c.record)
            rec["state"] = dict(rec["state"], status=c.status)
            out.append(rec)
        except NotFound:
            out.append(ImageStore(root).resolve(ref))
    print(json.dumps(out, indent=2))
    return 0


def cmd_cleanup(root, args):
    parse(args, {}, stop_at_positional=False)
    from .runtime import cleanup
    for line in cleanup(root):
        print(line)
    return 0


COMMANDS = {
    "run": cmd_run, "ps": cmd_ps, "rm": cmd_rm, "import": cmd_import, "images": cmd_images,
    "rmi": cmd_rmi, "tag": cmd_tag, "inspect": cmd_inspect, "cleanup": cmd_cleanup,
}


# -- formatting -------------------------------------------------------------

def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("   ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


def _human_size(n):
    if n is None:
        return "unlimited"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)


def _ago(t):
    secs = max(0, time.time() - t)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = int(secs // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return f"{int(secs)} seconds ago"


def _status_text(c):
    status = c.status
    state = c.record["state"]
    if status == "running":
        return "Up " + _ago(state.get("started", c.record["created"]))[:-4]
    if status == "exited":
        return f"Exited ({state.get('exit_code')}) {_ago(state.get('finished', c.record['created']))}"
    if status == "dead":
        return "Dead (its diyc process is gone)"
    return status.capitalize()


def _quote_cmd(args):
    s = " ".join(args)
    return f'"{s[:20]}…"' if len(s) > 20 else f'"{s}"'


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    root = None
    try:
        while argv and argv[0].startswith("-"):
            opt = argv.pop(0)
            if opt in ("-h", "--help"):
                print(USAGE)
                return 0
            if opt == "--root" and argv:
                root = argv.pop(0)
            elif opt.startswith("--root="):
                root = opt.partition("=")[2]
            else:
                raise InvalidArgument(f"unknown flag: {opt}")
        if not argv:
            print(USAGE, file=sys.stderr)
            return 125
        cmd = COMMANDS.get(argv[0])
        if cmd is None:
            raise InvalidArgument(f"unknown command: {argv[0]} (see diyc --help)")
        from .state import Root
        return cmd(Root(root), argv[1:])
    except DiycError as e:
        print(f"diyc: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
