"""The `diyc` command: a thin layer over the library.

The option parser is our own, small and docker-shaped (options stop at the
image name, `-it` combines, `--name=x` and `--name x` both work): argparse
costs ~7 ms to import here, half of a whole container start."""

import os
import sys
import time

from .errors import DiycError, InvalidArgument
from .options import FLAG, LIST, VALUE, option_table, parse, print_table, signal_number

START_NS = time.perf_counter_ns()

RUN_OPTIONS = option_table(
    ("--rm", "rm", FLAG),
    ("--rm-tmpfs-size", "rm_tmpfs_size", VALUE),
    ("-d --detach", "detach", FLAG),
    ("-i --interactive", "interactive", FLAG),
    ("-t --tty", "tty", FLAG),
    ("--restart", "restart", VALUE),
    ("--log-opt", "log_opts", LIST),
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
    ("-p --publish", "publish", LIST),
    ("--ip", "ip", VALUE),
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
    ("-v --volume", "volumes", LIST),
    ("--init", "init", FLAG),
    ("--userns", "userns", VALUE),
    ("--trace", "trace", FLAG),
    ("--help", "help", FLAG),
)

USAGE = """Usage: diyc [--root DIR] COMMAND [OPTIONS]

Commands:
  run [OPTIONS] IMAGE [COMMAND...]   run a command in a new container
  ps [-a] [-q]                       list containers
  rm [-f] CONTAINER...               remove containers
  start [-a] CONTAINER...            start stopped containers (in the background)
  stop [-t SECS] CONTAINER...        SIGTERM, then SIGKILL after SECS (10)
  restart [-t SECS] CONTAINER...     stop, then start
  kill [-s SIGNAL] CONTAINER...      send a signal (default KILL)
  wait CONTAINER...                  wait for the end, print the exit codes
  logs [-f] [--tail N] [-t] CONTAINER  a container's output
  exec [-itd] [-e K=V] [-w DIR] [-u USER] CONTAINER CMD...  run a command in a container
  attach CONTAINER                   attach to a running container's terminal
  container prune                    remove every stopped container
  stats [--no-stream] [CONTAINER...] CPU, memory, pids and network use
  volume create NAME | ls | rm NAME  named volumes (-v NAME:/path)
  import TARBALL NAME[:TAG]          import a flat rootfs tarball as an image
  pull [--platform OS/ARCH] [--insecure] [REGISTRY/]NAME[:TAG|@DIGEST]
                                     pull an image from a registry (v2 API)
  login [-u USER] [-p PASS|--password-stdin] [--insecure] REGISTRY
                                     store registry credentials (0600)
  load -i FILE                       load a docker-save or OCI archive
  save -o FILE IMAGE...              write images as an OCI archive
  image inspect IMAGE...             show an image record as JSON
  images [-q]                        list images
  rmi IMAGE...                       remove images
  tag IMAGE NAME[:TAG]               add a name to an image
  inspect CONTAINER|IMAGE            show the record as JSON
  cleanup                            remove what crashed runs left behind
  build [-t NAME:TAG] [-f FILE] [--build-arg K=V] [--target STAGE] [--no-cache]
        [--network MODE] [--progress plain|tty] CONTEXT|-   build an image from a Dockerfile
  history IMAGE                      the steps an image was built with
  network create|ls|rm|prune|inspect manage networks (create NAME [--subnet CIDR])
  server start|stop|status           the server that runs diyc commands without a
                                     Python start each (DIYC_SERVER=off: none)

run options:
  --rm                  remove the container when it exits
  --rm-tmpfs-size SIZE  with --rm: keep its writes on a tmpfs of at most SIZE
                        (RAM, counted in -m; default: on disk, like without --rm)
  -d, --detach          run in the background, print the container id
  -t, --tty             give the container a terminal (Ctrl-p Ctrl-q detaches)
  -i, --interactive     with -t: send our stdin to the container
  --restart POLICY      no, on-failure[:N], always, unless-stopped (with -d)
  --log-opt max-size=S  rotate the container's log at this size
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
  --network MODE        none (default: loopback only), host, bridge (the
                        default network: bridge diyc0, diyc0-<id> for a root
                        other than /var/lib/diyc) or a network's name
  -p, --publish [IP:]HOSTPORT:PORT[/tcp|udp]   publish a port (repeatable)
  --ip ADDR             the container's address on its network
  --cgroup-parent PATH  parent cgroup (default: diyc's own cgroup)
  --read-only           mount the root filesystem read-only
  --privileged          keep every capability, no masked paths
  --cap-add CAP         add a capability (repeatable; ALL for every one)
  --cap-drop CAP        drop a capability (repeatable; ALL for every one)
  --security-opt OPT    no-new-privileges, seccomp=unconfined|PROFILE.json
  --ulimit NAME=S[:H]   resource limit (e.g. nofile=1024:2048)
  --sysctl KEY=VALUE    namespaced sysctl (net.*, kernel.shm*, kernel.msg*, ...)
  --oom-score-adj N     the container's OOM score adjustment
  --device HOST[:CTR][:rwm]  give the container a host device
  --tmpfs PATH[:OPTS]   mount a tmpfs (e.g. with --read-only)
  -v, --volume SRC:DST[:ro]  bind a host path, or a named volume, into the container
  --init                run a tiny init as PID 1 (signals forwarded, zombies reaped)
  --userns auto         a user namespace: container root is an unprivileged host uid
  --trace               print the time of each start phase to stderr
"""


def _no_arguments(command, positional):
    if positional:
        raise InvalidArgument(f'"diyc {command}" accepts no arguments (got {positional[0]!r})')


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
        ip=opts.get("ip"), publish=opts.get("publish"),
        auto_remove=opts.get("rm", False), rm_tmpfs_size=opts.get("rm_tmpfs_size"),
        cgroup_parent=opts.get("cgroup_parent"),
        read_only=opts.get("read_only", False), privileged=opts.get("privileged", False),
        cap_add=opts.get("cap_add"), cap_drop=opts.get("cap_drop"),
        security_opt=opts.get("security_opt"), ulimits=opts.get("ulimits"),
        sysctls=opts.get("sysctls"), oom_score_adj=opts.get("oom_score_adj"),
        devices=opts.get("devices"), tmpfs=opts.get("tmpfs"), restart=opts.get("restart"),
        log_opts=opts.get("log_opts"), volumes=opts.get("volumes"), init=opts.get("init", False),
        tty=opts.get("tty", False), userns=opts.get("userns"), root=root, trace=trace)
    if opts.get("tty") and not opts.get("detach"):
        return _start_attached(ctr, send_input=opts.get("interactive", False))
    if opts.get("detach"):
        try:
            ctr.start(detach=True)
        except BaseException:
            ctr.remove(force=True)
            raise
        trace.report()
        print(ctr.id)
        return 0
    restore = _forward_signals(ctr)
    try:
        ctr.start()
        result = ctr.wait()
    except BaseException:
        ctr.discard()
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


def _start_attached(ctr, send_input=True, new=True):
    """Start a terminal container and attach to it: held before execve
    until we are attached, so not a byte of its output is missed."""
    from .attach import attach, connect
    try:
        ctr.start(detach=True, hold_before_exec=True)
        sock = connect(ctr)
        ctr.exec_held()
    except BaseException:
        if new:
            ctr.remove(force=True)
        raise
    with sock:
        code = attach(sock, send_input=send_input)
    if code is None:
        print(f"\r\ndiyc: detached from {ctr.name} (diyc attach {ctr.name} to come back)",
              file=sys.stderr)
        return 0
    return code


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
    opts, pos = parse(args, option_table(("-a --all", "all", FLAG), ("-q --quiet", "quiet", FLAG),
                                     ("--no-trunc", "no_trunc", FLAG), ("--format", "format", VALUE)),
                      stop_at_positional=False)
    _no_arguments("ps", pos)
    if opts.get("format") not in (None, "json", "table"):
        raise InvalidArgument(f"invalid --format {opts['format']!r}: json or table")
    from .runtime import Container
    rows = []
    listed = []
    for c in Container.list(root, all=True):
        status = c.status
        if status != "running" and not opts.get("all"):
            continue
        listed.append(c)
        if opts.get("format") == "json":
            continue
        if opts.get("quiet"):
            print(c.id if opts.get("no_trunc") else c.id[:12])
            continue
        rows.append((c.id if opts.get("no_trunc") else c.id[:12], c.record["image"],
                     _quote_cmd(c.record["spec"]["process"]["args"]),
                     _ago(c.record["created"]), _status_text(c), _ports_text(c), c.name))
    if opts.get("format") == "json":
        import json
        print(json.dumps([{"Id": c.id, "Names": c.name, "Image": c.record["image"],
                           "Command": " ".join(c.record["spec"]["process"]["args"]),
                           "Created": c.record["created"], "State": c.status,
                           "Status": _status_text(c), "Ports": _ports_text(c),
                           "ExitCode": c.record["state"].get("exit_code")} for c in listed], indent=2))
        return 0
    if not opts.get("quiet"):
        print_table(("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"), rows)
    return 0


def _ports_text(c):
    ports = (c.record.get("network_settings") or {}).get("ports") or []
    return ", ".join(f"{p.get('host_ip', '0.0.0.0')}:{p['host_port']}->{p['container_port']}/{p['proto']}"
                     for p in ports if isinstance(p, dict) and "host_port" in p)


def cmd_rm(root, args):
    opts, pos = parse(args, option_table(("-f --force", "force", FLAG)), stop_at_positional=False)
    return _each_container(root, pos, lambda ctr: ctr.remove(force=opts.get("force", False)), "rm",
                           echo_ref=True)


def cmd_import(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if len(pos) != 2:
        raise InvalidArgument('"diyc import" requires TARBALL and NAME[:TAG]')
    from .images.store import ImageStore
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
    opts, pos = parse(args, option_table(("-q --quiet", "quiet", FLAG)), stop_at_positional=False)
    _no_arguments("images", pos)
    from .images.store import ImageStore
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
        print_table(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"), rows)
    return 0


def cmd_rmi(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if not pos:
        raise InvalidArgument('"diyc rmi" requires at least one image')
    from .images.store import ImageStore
    for ref in pos:
        for line in ImageStore(root).remove(ref):
            print(line)
    return 0


def cmd_tag(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if len(pos) != 2:
        raise InvalidArgument('"diyc tag" requires SOURCE and TARGET')
    from .images.store import ImageStore
    ImageStore(root).tag(pos[0], pos[1])
    return 0


def cmd_inspect(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if not pos:
        raise InvalidArgument('"diyc inspect" requires a container or image')
    import json
    from .errors import NotFound
    from .images.store import ImageStore
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
    _no_arguments("cleanup", parse(args, {}, stop_at_positional=False)[1])
    from .runtime import cleanup
    for line in cleanup(root):
        print(line)
    return 0


def cmd_pull(root, args):
    opts, pos = parse(args, option_table(("--platform", "platform", VALUE), ("--insecure", "insecure", FLAG),
                                     ("-q --quiet", "quiet", FLAG)), stop_at_positional=False)
    if len(pos) != 1:
        raise InvalidArgument('"diyc pull" requires one image: diyc pull [REGISTRY/]NAME[:TAG|@DIGEST]')
    from .images.store import ImageStore
    from .images.puller import Progress, pull
    from .images.reference import parse_reference
    ref = parse_reference(pos[0])
    pull(ImageStore(root), ref, platform=opts.get("platform"), insecure=opts.get("insecure", False),
         progress=Progress(sys.stdout, quiet=opts.get("quiet", False)))
    print(ref)
    return 0


def cmd_login(root, args):
    opts, pos = parse(args, option_table(("-u --username", "user", VALUE), ("-p --password", "password", VALUE),
                                     ("--password-stdin", "password_stdin", FLAG),
                                     ("--insecure", "insecure", FLAG)), stop_at_positional=False)
    if len(pos) != 1:
        raise InvalidArgument('"diyc login" requires a registry: diyc login [-u USER] REGISTRY')
    from .images.registry import login
    user = opts.get("user")
    if user is None:
        user = input("Username: ")
    password = opts.get("password")
    if opts.get("password_stdin"):
        password = sys.stdin.readline().rstrip("\n")
    elif password is None:
        import getpass
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise InvalidArgument('"diyc login" requires a username and a password')
    login(root, pos[0], user, password, insecure=opts.get("insecure", False))
    print("Login Succeeded")
    return 0


def cmd_logout(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    if len(pos) != 1:
        raise InvalidArgument('"diyc logout" requires a registry')
    from .images.registry import remove_credentials
    print(f"Removed login credentials for {pos[0]}" if remove_credentials(root, pos[0])
          else f"Not logged in to {pos[0]}")
    return 0


def cmd_load(root, args):
    opts, pos = parse(args, option_table(("-i --input", "input", VALUE), ("-q --quiet", "quiet", FLAG)),
                      stop_at_positional=False)
    if pos:
        raise InvalidArgument('"diyc load" takes no arguments: diyc load -i FILE')
    from .images.archive import load
    from .images.store import ImageStore
    store = ImageStore(root)
    log = (lambda line: None) if opts.get("quiet") else print
    path = opts.get("input", "-")
    if path != "-":
        load(store, path, log)
        return 0
    # stdin: spool it (the archive is read out of order)
    tmp = f"{root.ensure().tmp}/load-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        with open(tmp, "wb") as f:
            while chunk := sys.stdin.buffer.read(1 << 20):
                f.write(chunk)
        load(store, tmp, log)
    finally:
        os.unlink(tmp)
    return 0


def cmd_save(root, args):
    opts, pos = parse(args, option_table(("-o --output", "output", VALUE)), stop_at_positional=False)
    if not pos:
        raise InvalidArgument('"diyc save" requires at least one image: diyc save -o FILE IMAGE...')
    from .images.archive import save
    from .images.store import ImageStore
    out = opts.get("output")
    if out is None or out == "-":
        if sys.stdout.isatty():
            raise InvalidArgument('"diyc save" refuses to write an archive to a terminal: use -o FILE')
        save(ImageStore(root), pos, sys.stdout.buffer)
    else:
        try:
            save(ImageStore(root), pos, out)
        except OSError as e:  # the output's directory is missing, not writable, full
            if not str(e.filename or "").startswith(out):
                raise
            raise InvalidArgument(f"cannot write {out}: {e.strerror}") from None
    return 0


def cmd_image(root, args):
    if not args or args[0] != "inspect":
        raise InvalidArgument('usage: diyc image inspect IMAGE...')
    opts, pos = parse(args[1:], {}, stop_at_positional=False)
    if not pos:
        raise InvalidArgument('"diyc image inspect" requires at least one image')
    import json
    from .images.store import ImageStore
    store = ImageStore(root)
    print(json.dumps([store.resolve(ref) for ref in pos], indent=2))
    return 0


def cmd_network(root, args):
    sub, rest = (args[0], args[1:]) if args else ("", [])
    from .net import network as networking
    if sub == "create":
        opts, pos = parse(rest, option_table(("--subnet", "subnet", VALUE), ("-d --driver", "driver", VALUE)),
                          stop_at_positional=False)
        if len(pos) != 1:
            raise InvalidArgument('"diyc network create" requires exactly one network name')
        if opts.get("driver", "bridge") != "bridge":
            raise InvalidArgument(f"unknown network driver {opts['driver']!r}: only bridge is supported")
        print(networking.create(root, pos[0], subnet=opts.get("subnet"))["id"])
    elif sub in ("ls", "list"):
        opts, pos = parse(rest, option_table(("-q --quiet", "quiet", FLAG)), stop_at_positional=False)
        _no_arguments("network ls", pos)
        nets = networking.list_networks(root)
        if opts.get("quiet"):
            for n in nets:
                print(n["name"])
        else:
            print_table(("NETWORK ID", "NAME", "BRIDGE", "SUBNET", "GATEWAY"),
                   [(n["id"][:12], n["name"], n["bridge"], n["subnet"], n["gateway"]) for n in nets])
    elif sub in ("rm", "remove"):
        opts, pos = parse(rest, {}, stop_at_positional=False)
        if not pos:
            raise InvalidArgument('"diyc network rm" requires at least one network')
        for name in pos:
            networking.remove(root, name)
            print(name)
    elif sub == "prune":
        _no_arguments("network prune", parse(rest, {}, stop_at_positional=False)[1])
        for line in networking.prune(root):
            print(line)
    elif sub == "inspect":
        opts, pos = parse(rest, {}, stop_at_positional=False)
        if not pos:
            raise InvalidArgument('"diyc network inspect" requires at least one network')
        import json
        from .errors import NotFound
        out = []
        for name in pos:
            rec = networking.load(root, name)
            if rec is None:
                raise NotFound(f"no such network: {name}")
            out.append(rec)
        print(json.dumps(out, indent=2))
    else:
        raise InvalidArgument("usage: diyc network create NAME [--subnet CIDR] | ls | rm NAME... | prune | inspect NAME...")
    return 0


def _each_container(root, refs, action, verb, echo_ref=False):
    """Apply action(container) to each ref, as docker does: a failure is
    reported (one line, `diyc: VERB REF: reason`) and the others are still
    done; the exit code is 1 if any failed.  echo_ref: print each ref
    done (as `docker rm` does)."""
    from .runtime import Container
    if not refs:
        raise InvalidArgument(f'"diyc {verb}" requires at least one container')
    code = 0
    for ref in refs:
        try:
            action(Container.load(ref, root))
            if echo_ref:
                print(ref)
        except (DiycError, OSError) as e:
            print(f"diyc: {verb} {ref}: {_reason(e)}", file=sys.stderr)
            code = 1
    return code


def _reason(e):
    """An exception as the end of a one-line message."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e)


def cmd_start(root, args):
    opts, pos = parse(args, option_table(("-a --attach", "attach", FLAG)), stop_at_positional=False)
    from .logs import print_logs
    exit_codes = []

    def start(ctr):
        if ctr.status == "running":
            raise DiycError(f"container {ctr.name} is already running")
        if ctr.record["auto_remove"] and ctr.status != "created":
            raise DiycError(f"container {ctr.name} was started with --rm and cannot be restarted")
        ctr.record["state"].pop("stopped_by_user", None)
        if opts.get("attach") and ctr.record.get("tty"):
            exit_codes.append(_start_attached(ctr, new=False))
            return
        ctr.start(detach=True)
        if opts.get("attach"):
            print_logs(ctr, follow=True)
        else:
            print(ctr.name)
    code = _each_container(root, pos, start, "start")
    if exit_codes:
        return exit_codes[0]
    if opts.get("attach") and len(pos) == 1 and code == 0:
        from .runtime import Container
        return Container.load(pos[0], root).record["state"].get("exit_code") or 0
    return code


def cmd_stop(root, args, restart=False):
    opts, pos = parse(args, option_table(("-t --time", "time", VALUE)), stop_at_positional=False)
    from .numbers import decimal
    timeout = decimal(opts.get("time", "10"), "-t (seconds)", 0, MAX_STOP_TIMEOUT)
    from .supervisor import stop

    def stop_one(ctr):
        stop(ctr, timeout)
        if restart:
            ctr.reload()
            ctr.record["state"].pop("stopped_by_user", None)
            ctr.start(detach=True)
        print(ctr.name)
    return _each_container(root, pos, stop_one, "restart" if restart else "stop")


MAX_STOP_TIMEOUT = 366 * 86400  # finite: the SIGKILL comes, however late


def cmd_kill(root, args):
    opts, pos = parse(args, option_table(("-s --signal", "signal", VALUE)), stop_at_positional=False)
    sig = signal_number(opts.get("signal", "KILL"))

    def kill(ctr):
        if ctr.status != "running":
            raise DiycError(f"container {ctr.name} is not running")
        ctr.kill(sig)
        print(ctr.name)
    return _each_container(root, pos, kill, "kill")


def cmd_wait(root, args):
    opts, pos = parse(args, {}, stop_at_positional=False)
    return _each_container(root, pos, lambda ctr: print(ctr.wait().exit_code), "wait")


def cmd_logs(root, args):
    opts, pos = parse(args, option_table(("-f --follow", "follow", FLAG), ("--tail -n", "tail", VALUE),
                                     ("-t --timestamps", "timestamps", FLAG)), stop_at_positional=False)
    if len(pos) != 1:
        raise InvalidArgument('"diyc logs" requires exactly one container')
    tail = opts.get("tail")
    if tail in (None, "all"):
        tail = None
    else:
        from .numbers import INT64_MAX, integer
        tail = integer(tail, "--tail value", 0, INT64_MAX)
    from .logs import print_logs
    from .runtime import Container
    print_logs(Container.load(pos[0], root), follow=opts.get("follow", False),
               tail=tail, timestamps=opts.get("timestamps", False))
    return 0


EXEC_OPTIONS = option_table(
    ("-e --env", "env", LIST),
    ("-w --workdir", "workdir", VALUE),
    ("-u --user", "user", VALUE),
    ("-i --interactive", "interactive", FLAG),
    ("-t --tty", "tty", FLAG),
    ("-d --detach", "detach", FLAG),
)


def cmd_exec(root, args):
    opts, pos = parse(args, EXEC_OPTIONS)
    if len(pos) < 2:
        raise InvalidArgument('"diyc exec" requires a container and a command')
    from .exec import exec_in
    from .runtime import Container
    ctr = Container.load(pos[0], root)
    if opts.get("detach"):
        exec_in(ctr, pos[1:], env=opts.get("env"), workdir=opts.get("workdir"),
                user=opts.get("user"), detach=True)
        return 0
    if not opts.get("tty"):
        return exec_in(ctr, pos[1:], env=opts.get("env"), workdir=opts.get("workdir"),
                       user=opts.get("user"))
    from .attach import relay_pty
    return exec_in(ctr, pos[1:], env=opts.get("env"), workdir=opts.get("workdir"),
                   user=opts.get("user"), terminal=True,
                   on_started=lambda pid, master: relay_pty(master, pid,
                                                            send_input=opts.get("interactive")))


def cmd_volume(root, args):
    from . import volumes
    sub, rest = (args[0], args[1:]) if args else ("", [])
    opts, pos = parse(rest, {}, stop_at_positional=False)
    if sub == "create" and len(pos) == 1:
        volumes.create_volume(root.ensure(), pos[0])
        print(pos[0])
    elif sub == "ls" and not pos:
        print("VOLUME NAME")
        for name in volumes.list_volumes(root):
            print(name)
    elif sub == "rm" and pos:
        from .runtime import Container
        used = {m.get("volume") for c in Container.list(root, all=True) for m in c.record["spec"]["mounts"]}
        for name in pos:
            volumes.remove_volume(root, name, used)
            print(name)
    else:
        raise InvalidArgument("usage: diyc volume create NAME | ls | rm NAME...")
    return 0


def cmd_stats(root, args):
    opts, pos = parse(args, option_table(("--no-stream", "no_stream", FLAG)), stop_at_positional=False)
    from .runtime import Container
    from .stats import sample
    containers = [Container.load(r, root) for r in pos] if pos else \
        [c for c in Container.list(root, all=True) if c.status == "running"]
    while True:
        rows = []
        for c, s in zip(containers, sample(containers)):
            rows.append((c.id[:12], c.name, f"{s['cpu_percent']:.2f}%",
                         f"{_human_size(s['memory'])} / {_human_size(s['memory_limit'])}",
                         str(s["pids"]), f"{_human_size(s['net_rx'])} / {_human_size(s['net_tx'])}"))
        print_table(("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS", "NET I/O"), rows)
        if opts.get("no_stream"):
            return 0


def cmd_attach(root, args):
    opts, pos = parse(args, option_table(("--no-stdin", "no_stdin", FLAG)), stop_at_positional=False)
    if len(pos) != 1:
        raise InvalidArgument('"diyc attach" requires exactly one container')
    from .runtime import Container
    ctr = Container.load(pos[0], root)
    if ctr.status != "running":
        raise DiycError(f"container {ctr.name} is not running")
    if not ctr.record.get("tty"):
        from .logs import print_logs
        print_logs(ctr, follow=True, tail=0)
        return ctr.reload().record["state"].get("exit_code") or 0
    from .attach import attach, connect
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


def cmd_finish(root, args):
    """Internal: the supervisor of a detached container calls this at its end."""
    from .supervisor import finish
    from .runtime import Container
    finish(Container.load(args[0], root))
    return 0


BUILD_OPTIONS = option_table(
    ("-t --tag", "tags", LIST), ("-f --file", "file", VALUE), ("--build-arg", "build_args", LIST),
    ("--target", "target", VALUE), ("--no-cache", "no_cache", FLAG), ("--network", "network", VALUE),
    ("--progress", "progress", VALUE), ("-q --quiet", "quiet", FLAG))


def cmd_build(root, args):
    opts, pos = parse(args, BUILD_OPTIONS, stop_at_positional=False)
    if len(pos) != 1:
        raise InvalidArgument('"diyc build" requires exactly one argument: diyc build [OPTIONS] CONTEXT|-')
    build_args = {}
    for item in opts.get("build_args", []):
        k, eq, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid --build-arg {item!r}: expected KEY=VALUE")
        if eq:
            build_args[k] = v
        elif k in os.environ:  # a bare KEY takes the value from our environment, as docker
            build_args[k] = os.environ[k]
    mode = opts.get("progress", "auto")
    if mode not in ("auto", "plain", "tty", "quiet"):
        raise InvalidArgument(f"invalid --progress {mode!r}: expected plain, tty or auto")
    from .builder import build, stdin_context
    from .build_progress import Printer
    # progress on stdout, as docker's classic builder and podman; the last
    # line is the image id (the only one with -q); errors are one line on stderr
    printer = Printer(sys.stdout, quiet=opts.get("quiet") or mode == "quiet",
                      tty=mode == "tty" or (mode == "auto" and sys.stdout.isatty()))
    context = pos[0]
    dockerfile = opts.get("file")
    if context == "-":
        context, dockerfile = stdin_context(sys.stdin.buffer, dockerfile)
    elif not os.path.isdir(context):
        raise InvalidArgument(f"unable to prepare context: {context} is not a directory")
    elif dockerfile not in (None, "-"):
        dockerfile = os.path.abspath(dockerfile)  # -f is relative to here, as docker's
    if dockerfile == "-":
        dockerfile = sys.stdin.buffer.read()
    image_id = build(context, tags=opts.get("tags", []), dockerfile=dockerfile, build_args=build_args,
                     target=opts.get("target"), no_cache=opts.get("no_cache", False),
                     network=opts.get("network", "none"), progress=printer, root=root)
    print(image_id)
    return 0


def cmd_history(root, args):
    opts, pos = parse(args, option_table(("-q --quiet", "quiet", FLAG), ("--no-trunc", "no_trunc", FLAG)),
                      stop_at_positional=False)
    if len(pos) != 1:
        raise InvalidArgument('"diyc history" requires one image')
    from .build_progress import history_rows
    from .images.store import ImageStore
    rows = history_rows(ImageStore(root), pos[0], no_trunc=opts.get("no_trunc", False))
    if opts.get("quiet"):
        for r in rows:
            print(r[0])
        return 0
    print_table(("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"), rows)
    return 0


def cmd_container(root, args):
    if args[:1] == ["prune"]:
        _no_arguments("container prune", parse(args[1:], {}, stop_at_positional=False)[1])
        from .runtime import Container
        for c in Container.list(root, all=True):
            if c.status in ("exited", "created", "dead"):
                c.remove(force=True)
                print(c.id)
        return 0
    if args[:1] and args[0] in COMMANDS and args[0] != "container":
        return COMMANDS[args[0]](root, args[1:])
    raise InvalidArgument("usage: diyc container prune | diyc container COMMAND ...")


COMMANDS = {
    "run": cmd_run, "ps": cmd_ps, "rm": cmd_rm, "import": cmd_import, "images": cmd_images,
    "rmi": cmd_rmi, "tag": cmd_tag, "inspect": cmd_inspect, "cleanup": cmd_cleanup,
    "start": cmd_start, "stop": cmd_stop, "restart": lambda r, a: cmd_stop(r, a, restart=True),
    "kill": cmd_kill, "wait": cmd_wait, "logs": cmd_logs, "_finish": cmd_finish,
    "exec": cmd_exec, "volume": cmd_volume, "stats": cmd_stats, "attach": cmd_attach,
    "container": cmd_container,
}
COMMANDS["network"] = cmd_network
COMMANDS.update(build=cmd_build, history=cmd_history)


def cmd_server(root, args):
    from .server import command
    return command(root, args, {"diyc": _served, "diyc-runc": _served_runc})


def _served(argv, accepted_ns):
    """`diyc` as a server's worker runs it."""
    global START_NS
    START_NS = accepted_ns  # --trace: the command's own start
    return main(argv)


def _served_runc(argv, accepted_ns):
    """`diyc-runc` as a server's worker runs it."""
    from .oci.runc_cli import main as runc_main
    return runc_main(argv)


COMMANDS["server"] = cmd_server
COMMANDS.update(pull=cmd_pull, login=cmd_login, logout=cmd_logout, load=cmd_load, save=cmd_save,
                image=cmd_image)


# -- formatting -------------------------------------------------------------

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
            if opt == "--root" or opt.startswith("--root="):
                root = opt.partition("=")[2] if "=" in opt else argv.pop(0) if argv else ""
                if not root:  # (Root("") would be the default root: not what was meant)
                    raise InvalidArgument("--root needs a directory")
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
        # one line, whatever the message quotes (a library's multi-line text)
        print("diyc: " + " ".join(str(e).split("\n")), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
    except OSError as e:
        from .errors import environment_error
        error = environment_error(e)  # a full disk, say: one line, not a traceback
        if error is None:
            raise
        print(f"diyc: {error}", file=sys.stderr)
        return error.exit_code
