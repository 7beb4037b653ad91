"""`diyc run` and `diyc exec`: the commands on the start path, so this
module imports nothing it does not need before the container runs."""

import os
import sys

from ..errors import InvalidArgument
from ..options import FLAG, LIST, VALUE, Option
from . import registry
from .registry import command

ENV = Option("-e --env", "env", LIST, "K=V", "Set an environment variable (repeatable)", keyword="env")
WORKDIR = Option("-w --workdir", "workdir", VALUE, "DIR", "Working directory inside the container",
                 keyword="workdir")
USER = Option("-u --user", "user", VALUE, "U[:G]", "User name or uid (and group) to run as",
              keyword="user")

# the limits `diyc update` changes too
MEMORY = Option("-m --memory", "memory", VALUE, "SIZE", "Memory limit (e.g. 64m)", keyword="memory")
MEMORY_SWAP = Option("--memory-swap", "memory_swap", VALUE, "SIZE",
                     "Memory+swap limit (-1: unlimited swap)", keyword="memory_swap")
CPUS = Option("--cpus", "cpus", VALUE, "N", "CPU quota in CPUs (e.g. 0.5)", keyword="cpus")
PIDS_LIMIT = Option("--pids-limit", "pids_limit", VALUE, "N",
                    "Maximum number of processes (-1: unlimited)", keyword="pids_limit")
RESTART = Option("--restart", "restart", VALUE, "POLICY", keyword="restart",
                 help="no, on-failure[:N], always, unless-stopped (foreground: exits at the first end)")

# Each option of `diyc run`: how it is written, and the Container.create
# keyword it is passed as (None: the CLI itself acts on it).
RUN_OPTIONS = (
    Option("--rm", "rm", FLAG, help="Remove the container when it exits", keyword="auto_remove"),
    Option("--rm-tmpfs-size", "rm_tmpfs_size", VALUE, "SIZE", keyword="rm_tmpfs_size",
           help="With --rm: keep its writes on a tmpfs of at most SIZE (RAM, counted in -m)"),
    Option("-d --detach", "detach", FLAG, help="Run in the background, print the container id"),
    Option("-i --interactive", "interactive", FLAG, help="With -t: send our stdin to the container"),
    Option("-t --tty", "tty", FLAG, keyword="tty",
           help="Give the container a terminal (Ctrl-p Ctrl-q detaches)"),
    RESTART,
    Option("--log-opt", "log_opts", LIST, "max-size=S", keyword="log_opts",
           help="Rotate the container's log at this size"),
    Option("--name", "name", VALUE, "NAME", "Container name", keyword="name"),
    Option("-h --hostname", "hostname", VALUE, "NAME", "Hostname inside the container",
           keyword="hostname"),
    ENV,
    Option("--env-file", "env_file", LIST, "FILE",
           "Read environment variables from a file of KEY=VALUE lines", keyword="env_file"),
    Option("-l --label", "labels", LIST, "KEY=VALUE", "Set a label on the container", keyword="labels"),
    Option("--label-file", "label_file", LIST, "FILE", "Read labels from a file of KEY=VALUE lines",
           keyword="label_file"),
    WORKDIR, USER,
    Option("--entrypoint", "entrypoint", VALUE, "CMD", "Override the image's entrypoint",
           keyword="entrypoint"),
    MEMORY, MEMORY_SWAP, CPUS, PIDS_LIMIT,
    Option("--network --net", "network", VALUE, "MODE", keyword="network",
           help="bridge (default), none (loopback only: fastest), host, container:NAME, a network"),
    Option("-p --publish", "publish", LIST, "[[IP:][HOSTPORT[-END]]:]PORT[-END][/tcp|udp]",
           "Publish a port or a range of ports (no host port: a random one; repeatable)",
           keyword="publish"),
    Option("-P --publish-all", "publish_all_ports", FLAG, keyword="publish_all_ports",
           help="Publish every exposed port on a random host port"),
    Option("--expose", "expose", LIST, "PORT[-END][/tcp|udp]", "Expose a port or a range of ports",
           keyword="expose"),
    Option("--add-host", "extra_hosts", LIST, "HOST:IP",
           "Add an /etc/hosts line (IP host-gateway: the host, seen from the bridge)",
           keyword="extra_hosts"),
    Option("--dns", "dns", LIST, "IP", "A nameserver for /etc/resolv.conf (repeatable)", keyword="dns"),
    Option("--dns-search", "dns_search", LIST, "DOMAIN", "A search domain for /etc/resolv.conf",
           keyword="dns_search"),
    Option("--dns-option --dns-opt", "dns_opt", LIST, "OPT", "An /etc/resolv.conf option (ndots:2)",
           keyword="dns_opt"),
    Option("--ip", "ip", VALUE, "ADDR", "The container's address on its network", keyword="ip"),
    Option("--cgroup-parent", "cgroup_parent", VALUE, "PATH",
           "Parent cgroup (default: diyc's own cgroup)", keyword="cgroup_parent"),
    Option("--read-only", "read_only", FLAG, help="Mount the root filesystem read-only",
           keyword="read_only"),
    Option("--privileged", "privileged", FLAG, help="Keep every capability, no masked paths",
           keyword="privileged"),
    Option("--cap-add", "cap_add", LIST, "CAP", "Add a capability (repeatable; ALL for every one)",
           keyword="cap_add"),
    Option("--cap-drop", "cap_drop", LIST, "CAP", "Drop a capability (repeatable; ALL for every one)",
           keyword="cap_drop"),
    Option("--security-opt", "security_opt", LIST, "OPT",
           "no-new-privileges, seccomp=unconfined|PROFILE.json", keyword="security_opt"),
    Option("--ulimit", "ulimits", LIST, "NAME=S[:H]", "Resource limit (e.g. nofile=1024:2048)",
           keyword="ulimits"),
    Option("--sysctl", "sysctls", LIST, "KEY=VALUE",
           "Namespaced sysctl (net.*, kernel.shm*, kernel.msg*, ...)", keyword="sysctls"),
    Option("--oom-score-adj", "oom_score_adj", VALUE, "N", "The container's OOM score adjustment",
           keyword="oom_score_adj"),
    Option("--device", "devices", LIST, "HOST[:CTR][:rwm]", "Give the container a host device",
           keyword="devices"),
    Option("--tmpfs", "tmpfs", LIST, "PATH[:OPTS]", "Mount a tmpfs (e.g. with --read-only)",
           keyword="tmpfs"),
    Option("-v --volume", "volumes", LIST, "SRC:DST[:OPTS]",
           "Bind a host path (./path: under the cwd) or a named volume; OPTS: ro, rw, rslave...",
           keyword="volumes"),
    Option("--mount", "mounts", LIST, "type=bind|volume|tmpfs,...",
           "Attach a mount: source=,target=,readonly,bind-propagation=,tmpfs-size=,tmpfs-mode=",
           keyword="mounts"),
    Option("--stop-signal", "stop_signal", VALUE, "SIGNAL",
           "Signal to stop the container (default: the image's, else SIGTERM)", keyword="stop_signal"),
    Option("--stop-timeout", "stop_timeout", VALUE, "SECONDS",
           "Seconds `diyc stop` waits before SIGKILL (default 10)", keyword="stop_timeout"),
    Option("--init", "init", FLAG, help="Run a tiny init as PID 1 (signals forwarded, zombies reaped)",
           keyword="init"),
    Option("--userns", "userns", VALUE, "auto",
           "A user namespace: container root is an unprivileged host uid", keyword="userns"),
    Option("--pull", "pull", VALUE, "always|missing|never", keyword="pull",
           help="Pull the image before running: always, when missing, or never (the default)"),
    Option("--platform", "platform", VALUE, "OS/ARCH", keyword="platform",
           help="The image's platform, OS/ARCH: this host's only"),
    Option("--trace", "trace", FLAG, help="Print the time of each start phase to stderr"),
)
# docker's health flags: the CLI makes them one healthcheck={...} (health.from_flags)
HEALTH_OPTIONS = (
    Option("--health-cmd", "health_cmd", VALUE, "string", "Command to run to check health"),
    Option("--health-interval", "health_interval", VALUE, "duration",
           "Time between running the check (ms|s|m|h) (default 30s)"),
    Option("--health-timeout", "health_timeout", VALUE, "duration",
           "Maximum time to allow one check to run (ms|s|m|h) (default 30s)"),
    Option("--health-retries", "health_retries", VALUE, "int",
           "Consecutive failures needed to report unhealthy (default 3)"),
    Option("--health-start-period", "health_start_period", VALUE, "duration",
           "Start period for the container to initialize before failures count (ms|s|m|h)"),
    Option("--no-healthcheck", "no_healthcheck", FLAG, help="Disable any container-specified "
           "HEALTHCHECK"),
)
RUN_OPTIONS += HEALTH_OPTIONS


def healthcheck_option(opts):
    """{"healthcheck": ...} of the --health-* flags given (none: nothing
    imported, nothing passed)."""
    if not any(o.dest in opts for o in HEALTH_OPTIONS):
        return {}
    from ..health import from_flags
    return {"healthcheck": from_flags(opts.get("health_cmd"), opts.get("health_interval"),
                                      opts.get("health_timeout"), opts.get("health_retries"),
                                      opts.get("health_start_period"),
                                      opts.get("no_healthcheck", False))}


def library_keywords(opts, options):
    """{keyword: value} of the options given that map to a library keyword."""
    return {o.keyword: opts[o.dest] for o in options if o.keyword and o.dest in opts}


@command("run", "container run", usage="[OPTIONS] IMAGE [COMMAND] [ARG...]",
         help="Run a command in a new container", options=RUN_OPTIONS, stop_at_positional=True,
         missing_exit=125)
def cmd_run(root, opts, args):
    if not args:
        raise InvalidArgument('"diyc run" requires an image: diyc run [OPTIONS] IMAGE [COMMAND...]')
    from ..runtime import Container
    from ..trace import Trace
    trace = Trace(enabled=opts.get("trace") or os.environ.get("DIYC_TRACE") == "1",
                  start_ns=registry.START_NS)
    trace.mark("cli")
    keywords = dict(library_keywords(opts, RUN_OPTIONS), **healthcheck_option(opts))
    if registry.SERVED and not (opts.get("detach") or opts.get("tty") or trace.enabled):
        code = run_warm(root, args, keywords)
        if code is not None:
            return code
    ctr = Container.create(args[0], args[1:], root=root, trace=trace, **keywords)
    if opts.get("tty") and not opts.get("detach"):
        return start_attached(ctr, send_input=opts.get("interactive", False))
    if opts.get("detach"):
        try:
            ctr.start(detach=True)
        except BaseException:
            ctr.remove(force=True)
            raise
        trace.report()
        print(ctr.id)
        return 0
    if ctr.record["restart"]["name"] != "no":
        return start_following(ctr)
    return start_foreground(ctr, trace)


def start_foreground(ctr, trace=None, new=True, send_input=True):
    """Start the container as our child, with our stdout and stderr (and
    stdin; else /dev/null), and wait for its end -> its exit code.  new:
    a failure removes it (a `run`'s own)."""
    restore = forward_signals(ctr)
    stdin = -1 if send_input else os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        ctr.start(stdio=(stdin, -1, -1))
        if stdin >= 0:
            os.close(stdin)
            stdin = -1
        result = ctr.wait()
    except BaseException:
        if new:
            ctr.discard()
        elif ctr.pid:  # ours to end, its end recorded (and with --rm, it removed)
            ctr.kill(9)
            ctr.wait()
        raise
    finally:
        restore()
        if stdin >= 0:
            os.close(stdin)
    if trace is not None:
        trace.mark("wait")
        trace.report()
    if result.oom_killed:
        report_oom(ctr.name, ctr.record["spec"]["linux"]["resources"].get("memory", {}).get("limit"))
    return result.exit_code


def report_oom(name, limit):
    from ..formatting import bytes_size
    print(f"diyc: container {name}: a process was killed by the memory limit "
          f"({bytes_size(limit) if limit else 'unlimited'}): out of memory", file=sys.stderr)


def run_warm(root, args, keywords):
    """`run --rm` in a warm container of the server's (server_pool) ->
    its exit code, or None: none for these settings, run it the direct way."""
    from ..server_pool import Settings, WarmRun, keep_warm_later, process_of
    process = process_of(args[1:], keywords)
    settings = Settings.of(root, args[0], keywords) if process is not None else None
    if settings is None:
        return None  # (not poolable)
    warm = WarmRun.connect(settings, process)
    if warm is None:
        keep_warm_later(settings)
        return None
    restore = forward_signals(warm)
    try:
        if not warm.start():
            return None
        code, oom_killed, name, limit = warm.wait()
    finally:
        restore()
        warm.close()
    if oom_killed:
        report_oom(name, limit)
    return code


def start_attached(ctr, send_input=True, new=True):
    """Start a terminal container and attach to it: held before execve
    until we are attached, so not a byte of its output is missed."""
    from ..attach import attach, connect
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
    if code is not None and ctr.record["restart"]["name"] == "no":
        from ..supervisor import wait_until_exited
        wait_until_exited(ctr, timeout=10)  # its end recorded: a `diyc rm` next finds it exited
    if code is None:
        print(f"\r\ndiyc: detached from {ctr.name} (diyc attach {ctr.name} to come back)",
              file=sys.stderr)
        return 0
    if ctr.record["auto_remove"]:
        from ..supervisor import wait_until_removed
        wait_until_removed(ctr)
    return code


def start_following(ctr):
    """A foreground run with a restart policy, as docker's: the container
    runs under its supervisor (which restarts it as the policy says); we
    print its output until its first exit and exit with that code."""
    from ..logs import print_logs
    from ..supervisor import first_exit
    try:
        ctr.start(detach=True)
    except BaseException:
        ctr.remove(force=True)
        raise
    restore = forward_signals(ctr)
    try:
        print_logs(ctr, follow=True, ended=lambda c: first_exit(c, 0) is not None)
    finally:
        restore()
    return first_exit(ctr.reload(), 0)


def forward_signals(ctr):
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


EXEC_OPTIONS = (
    ENV, WORKDIR, USER,
    Option("-i --interactive", "interactive", FLAG, help="Send our stdin to the command"),
    Option("-t --tty", "tty", FLAG, help="Give the command a terminal"),
    Option("-d --detach", "detach", FLAG, help="Run the command in the background"),
    Option("--trace", "trace", FLAG, help="Print the time of each exec phase to stderr"),
)


@command("exec", "container exec", usage="[OPTIONS] CONTAINER COMMAND [ARG...]",
         help="Run a command in a running container", options=EXEC_OPTIONS, stop_at_positional=True)
def cmd_exec(root, opts, args):
    if len(args) < 2:
        raise InvalidArgument('"diyc exec" requires a container and a command')
    from ..exec import exec_in
    from ..runtime import Container
    from ..trace import Trace
    trace = Trace(enabled=opts.get("trace") or os.environ.get("DIYC_TRACE") == "1",
                  start_ns=registry.START_NS)
    ctr = Container.load(args[0], root)
    trace.mark("load")
    keywords = dict(library_keywords(opts, EXEC_OPTIONS), trace=trace, reload=False)
    if opts.get("detach"):
        exec_in(ctr, args[1:], detach=True, **keywords)
        code = 0
    elif not opts.get("tty"):
        code = exec_in(ctr, args[1:], **keywords)
    else:
        from ..attach import relay_pty
        code = exec_in(ctr, args[1:], terminal=True, **keywords,
                       on_started=lambda pid, master: relay_pty(
                           master, pid, send_input=opts.get("interactive")))
    trace.report()
    return code
