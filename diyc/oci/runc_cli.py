"""`diyc-runc`: diyc behind runc's command line, for the OCI clients
(podman, containerd, CRI-O) that drive a runtime binary.

    diyc-runc [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...

State lives in --root (default /run/diyc-runc): a diyc state root whose
container names are the OCI container ids.  Errors go to stderr, and to
--log in runc's format (clients such as conmon read the error from there);
the exit code is 1, or the container's own for `run`.

Like `diyc`, this runs once per container: no json, argparse or re here."""

import os
import sys

from ..options import FLAG, LIST, VALUE, option_table, parse, signal_number
from ..errors import Conflict, DiycError, InvalidArgument

VERSION = "0.1.0"

USAGE = """Usage: diyc-runc [GLOBAL OPTIONS] COMMAND [OPTIONS] ID

Commands:
  create [-b BUNDLE] [--pid-file F] [--console-socket S] ID   set a container up, held before exec
  start ID                        let a created container run its process
  state ID                        the container's state as runtime-spec JSON
  kill [--all] ID [SIGNAL]        send a signal (default TERM; names or numbers)
  delete [--force] ID             remove a stopped (or created) container
  run [-b BUNDLE] [-d] [--pid-file F] [--keep] ID   create and start; in the foreground
                                  by default, with our stdio and its exit code
  exec [--process F | -e K=V --cwd D -u UID[:GID] ID CMD...] [-d] [--pid-file F] ID
  list [--format table|json] [-q] containers of this root
  ps [--format table|json] ID     the container's processes
  update [-r FILE|-] [--memory N --cpu-share N --cpu-quota N --cpu-period N --pids-limit N] ID
                                  change a running container's resources
  events [--stats] [--interval 5s] ID   its cgroup stats as JSON (one with --stats)
  features                        what this runtime supports, as JSON
  spec [-b BUNDLE]                write a default config.json

Global options:
  --root DIR          state directory (default /run/diyc-runc)
  --log FILE          also write errors to FILE
  --log-format FMT    text or json
  --systemd-cgroup    accepted: cgroupsPath slice:prefix:name is laid out on cgroupfs
"""

GLOBAL_OPTIONS = option_table(
    ("--root", "root", VALUE),
    ("--log", "log", VALUE),
    ("--log-format", "log_format", VALUE),
    ("--systemd-cgroup", "systemd_cgroup", FLAG),
    ("--debug", "debug", FLAG),
    ("--rootless", "rootless", VALUE),
    ("-h --help", "help", FLAG),
    ("-v --version", "version", FLAG),
)

CREATE_OPTIONS = option_table(
    ("-b --bundle", "bundle", VALUE),
    ("--pid-file", "pid_file", VALUE),
    ("--console-socket", "console_socket", VALUE),
    ("--no-pivot", "no_pivot", FLAG),          # pivot_root is always used: it is the safe way
    ("--no-new-keyring", "no_new_keyring", FLAG),  # diyc never makes a session keyring
    ("--preserve-fds", "preserve_fds", VALUE),
)
RUN_OPTIONS = dict(CREATE_OPTIONS, **option_table(("-d --detach", "detach", FLAG),
                                              ("--keep", "keep", FLAG)))
EXEC_OPTIONS = option_table(
    ("-p --process", "process", VALUE),
    ("--pid-file", "pid_file", VALUE),
    ("-d --detach", "detach", FLAG),
    ("-t --tty", "tty", FLAG),
    ("--console-socket", "console_socket", VALUE),
    ("--cwd", "cwd", VALUE),
    ("-e --env", "env", LIST),
    ("-u --user", "user", VALUE),
    ("--additional-gids -g", "groups", LIST),
    ("--no-new-privs", "no_new_privs", FLAG),
    ("--preserve-fds", "preserve_fds", VALUE),
)


def _one_id(pos, command, extra=0):
    if not pos or len(pos) > 1 + extra:
        raise InvalidArgument(f'"{command}" requires a container id')
    from .spec import check_id
    return check_id(pos[0])


def _write_pid_file(path, pid):
    if path:
        from ..state import atomic_write
        atomic_write(os.path.abspath(path), str(pid))


def _check_common(opts):
    n = opts.get("preserve_fds")
    if n is not None:
        from ..numbers import integer
        integer(n, "--preserve-fds", 0, 1023)


def _load_bundle(opts):
    from . import spec as oci
    _check_common(opts)
    bundle, spec = oci.load_bundle(opts.get("bundle"))
    if spec["process"].get("terminal") and not opts.get("console_socket"):
        raise InvalidArgument("process.terminal is true: --console-socket is required")
    return oci, bundle, spec


def _start_for_caller(ctr, preserve_fds=0):
    """As runc does: no supervisor.  The init is our child until we exit,
    then the caller's subreaper's (conmon, containerd-shim), which reaps it
    and reads its exit status; `state` reads liveness from the pid."""
    console = None
    if ctr.record["spec"]["process"].get("terminal"):
        console = _console_socket(ctr.console_socket)
    try:
        return ctr.start(stdio=(0, 1, 2), hold_before_exec=True, preserve_fds=preserve_fds,
                         console_fd=None if console is None else console.fileno())
    finally:
        if console is not None:
            console.close()


def _console_socket(path):
    """--console-socket: the init sends the pty master (made in the
    container's own devpts) straight to the caller over this socket."""
    import socket
    if not path:
        raise InvalidArgument("process.terminal is true: --console-socket is required")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise InvalidArgument(f"--console-socket {path}: {e.strerror}") from None
    return s


def _create(root, cid, opts, start=False):
    """`create`: the init set up and held before execve, the createRuntime
    hooks run; with start, the prestart hooks and the release too
    (`run --detach`).
    Anything failing removes the container again."""
    oci, bundle, spec = _load_bundle(opts)
    ctr = oci.create(root, cid, bundle, spec)
    ctr.console_socket = opts.get("console_socket")
    try:
        pid = _start_for_caller(ctr, int(opts.get("preserve_fds") or 0))
        for warning in ctr.limit_warnings:
            print(f"diyc-runc: warning: {warning}", file=sys.stderr)
        oci.run_hooks(ctr, "createRuntime", oci.state(ctr))
        if start:
            oci.start(ctr)
        _write_pid_file(opts.get("pid_file"), pid)
    except BaseException:
        oci.discard(ctr)
        raise
    return oci, ctr


def cmd_create(root, args):
    opts, pos = parse(args, CREATE_OPTIONS)
    _create(root, _one_id(pos, "create"), opts)
    return 0


def cmd_start(root, args):
    from . import spec as oci
    opts, pos = parse(args, {})
    ctr = oci.load(root, _one_id(pos, "start"))
    oci.start(ctr)
    oci.run_hooks(ctr, "poststart", oci.started_state(ctr), fatal=False)
    return 0


def cmd_state(root, args):
    from .. import _json; from . import spec as oci
    opts, pos = parse(args, {})
    print(_json.dumps(oci.state(oci.load(root, _one_id(pos, "state")))))
    return 0


def cmd_kill(root, args):
    from . import spec as oci
    opts, pos = parse(args, option_table(("-a --all", "all", FLAG)))
    cid = _one_id(pos, "kill", extra=1)
    sig = signal_number(pos[1] if len(pos) > 1 else "TERM")
    oci.kill(oci.load(root, cid), sig, opts.get("all", False))
    return 0


def cmd_delete(root, args):
    from . import spec as oci
    opts, pos = parse(args, option_table(("-f --force", "force", FLAG)))
    oci.delete(oci.load(root, _one_id(pos, "delete")), opts.get("force", False))
    return 0


_FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


def cmd_run(root, args):
    opts, pos = parse(args, RUN_OPTIONS)
    cid = _one_id(pos, "run")
    if opts.get("detach"):
        oci, ctr = _create(root, cid, opts, start=True)
        oci.run_hooks(ctr, "poststart", oci.started_state(ctr), fatal=False)
        return 0
    oci, bundle, spec = _load_bundle(opts)
    if spec["process"].get("terminal"):
        raise InvalidArgument("process.terminal is true: use run --detach with --console-socket")
    # The foreground: we are the init's parent, no supervisor; the container
    # is deleted when it ends, as `runc run` does (unless --keep).
    hooks = spec.get("hooks") or {}
    hold = bool(hooks.get("prestart") or hooks.get("createRuntime"))
    ctr = oci.create(root, cid, bundle, spec, auto_remove=not opts.get("keep"))
    try:
        pid = ctr.start(stdio=(0, 1, 2), hold_before_exec=hold,
                        preserve_fds=int(opts.get("preserve_fds") or 0))
        if hold:
            oci.run_hooks(ctr, "createRuntime", oci.state(ctr))
            oci.run_hooks(ctr, "prestart", oci.state(ctr))
            ctr.exec_held()
        _write_pid_file(opts.get("pid_file"), pid)
        if hooks.get("poststart"):
            oci.run_hooks(ctr, "poststart", oci.started_state(ctr), fatal=False)
        import _signal

        def forward(signum, frame):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        for sig in _FORWARDED:
            _signal.signal(sig, forward)
        result = ctr.wait()
        if not opts.get("keep"):
            oci.release_host_mounts(ctr)
    except BaseException:
        if ctr.pid:
            from ..record import kill_and_reap
            kill_and_reap(ctr.pid)
            ctr.pid = None
        oci.discard(ctr)
        raise
    if hooks.get("poststop"):
        oci.run_hooks(ctr, "poststop", oci.state(ctr) | {"status": "stopped", "pid": 0},
                      fatal=False)
    return result.exit_code


def cmd_exec(root, args):
    from .. import _json; from . import spec as oci
    opts, pos = parse(args, EXEC_OPTIONS)
    _check_common(opts)
    if not pos:
        raise InvalidArgument('"exec" requires a container id')
    ctr = oci.load(root, oci.check_id(pos[0]))
    if opts.get("process"):
        if len(pos) > 1:
            raise InvalidArgument("exec: give either --process or a command, not both")
        with open(opts["process"], "rb") as f:
            try:
                process = _json.loads(f.read())
            except ValueError as e:
                raise InvalidArgument(f"--process {opts['process']}: {e}") from None
    else:
        if len(pos) < 2:
            raise InvalidArgument('"exec" requires a command (or --process FILE)')
        base = ctr.record["spec"]["process"]
        process = {k: v for k, v in base.items() if k not in ("terminal", "consoleSize")}
        process["args"] = pos[1:]
        process["env"] = list(base.get("env") or ()) + list(opts.get("env") or ())
        if opts.get("cwd"):
            process["cwd"] = opts["cwd"]
        if opts.get("user") or opts.get("groups"):
            from ..numbers import integer
            uid, _, gid = (opts.get("user") or "0").partition(":")
            ids = [integer(i, "exec --user/--additional-gids id", 0, 0xFFFFFFFE)
                   for i in [uid, gid or "0"] + list(opts.get("groups") or ())]
            process["user"] = {"uid": ids[0], "gid": ids[1], "additionalGids": ids[2:]}
        if opts.get("no_new_privs"):
            process["noNewPrivileges"] = True
    if opts.get("tty"):
        process["terminal"] = True
    console = _console_socket(opts.get("console_socket")) if process.get("terminal") else None
    try:
        pid, code = oci.exec_process(ctr, process, detach=opts.get("detach", False),
                                     console_fd=None if console is None else console.fileno())
    finally:
        if console is not None:
            console.close()
    _write_pid_file(opts.get("pid_file"), pid)
    return 0 if code is None else code


def cmd_list(root, args):
    from .. import _json; from . import spec as oci
    opts, pos = parse(args, option_table(("-f --format", "format", VALUE), ("-q --quiet", "quiet", FLAG)))
    rows = []
    for cid in oci.list_ids(root):
        try:
            ctr = oci.load(root, cid)
        except DiycError:
            continue  # removed meanwhile
        st = oci.state(ctr)
        st["created"] = ctr.record["created"]
        rows.append(st)
    if opts.get("quiet"):
        for r in rows:
            print(r["id"])
    elif opts.get("format", "table") == "json":
        print(_json.dumps([{"id": r["id"], "pid": r["pid"], "status": r["status"],
                            "bundle": r["bundle"], "annotations": r["annotations"],
                            "created": _rfc3339(r["created"]), "owner": "root"} for r in rows]))
    elif opts.get("format", "table") == "table":
        from ..options import print_table
        print_table(("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"),
               [(r["id"], r["pid"], r["status"], r["bundle"], _rfc3339(r["created"]), "root")
                for r in rows])
    else:
        raise InvalidArgument(f"invalid --format {opts['format']!r}: table or json")
    return 0


def _rfc3339(t):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def cmd_ps(root, args):
    from .. import _json; from . import spec as oci
    opts, pos = parse(args, option_table(("-f --format", "format", VALUE)))
    if not pos:
        raise InvalidArgument('"ps" requires a container id')
    ctr = oci.load(root, oci.check_id(pos[0]))
    if oci.status(ctr) == "stopped":
        raise InvalidArgument(f"container {ctr.name} is not running")
    pids = sorted(ctr.control_group().pids())
    if opts.get("format", "table") == "json":
        print(_json.dumps(pids))
        return 0
    import subprocess
    out = subprocess.run(["ps"] + (pos[1:] or ["-ef"]), capture_output=True, text=True,
                         check=False).stdout.splitlines()
    if not out:
        return 0
    header = out[0].split()
    if "PID" not in header:
        raise InvalidArgument("ps: its output has no PID column")
    column = header.index("PID")
    print(out[0])
    for line in out[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
            print(line)
    return 0


UPDATE_OPTIONS = option_table(
    ("-r --resources", "resources", VALUE),
    ("--memory", "memory", VALUE),
    ("--memory-swap", "memory_swap", VALUE),
    ("--cpu-share", "cpu_share", VALUE),
    ("--cpu-quota", "cpu_quota", VALUE),
    ("--cpu-period", "cpu_period", VALUE),
    ("--pids-limit", "pids_limit", VALUE),
)
_UPDATE_FIELDS = {"memory": ("memory", "limit"), "memory_swap": ("memory", "swap"),
                  "cpu_share": ("cpu", "shares"), "cpu_quota": ("cpu", "quota"),
                  "cpu_period": ("cpu", "period"), "pids_limit": ("pids", "limit")}


def cmd_update(root, args):
    """`update [-r FILE|-] [--memory N ...] ID`: a running container's
    resources (what containerd's UpdateContainerResources sends on stdin)."""
    from .. import _json, numbers; from . import spec as oci
    opts, pos = parse(args, UPDATE_OPTIONS)
    ctr = oci.load(root, _one_id(pos, "update"))
    resources = {}
    if opts.get("resources"):
        path = opts["resources"]
        try:
            data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
            resources = _json.loads(data)
        except ValueError as e:
            raise InvalidArgument(f"--resources {path}: {e}") from None
    for key, (field, name) in _UPDATE_FIELDS.items():
        if opts.get(key) is not None:
            value = opts[key]
            if key in ("memory", "memory_swap"):
                from ..config import parse_size
                number = -1 if value == "-1" else parse_size(value, f"--{key.replace('_', '-')}")
            else:
                number = numbers.integer(value, f"--{key.replace('_', '-')}")
            resources.setdefault(field, {})[name] = number
    oci.update(ctr, resources)
    return 0


def cmd_events(root, args):
    """`events [--stats] [--interval S] ID`: the container's cgroup stats as
    runc's JSON events; --stats prints one, else one per interval until it stops."""
    from .. import _json, numbers; from . import spec as oci
    from ..stats import oci_stats
    opts, pos = parse(args, option_table(("--stats", "stats", FLAG), ("--interval", "interval", VALUE)))
    ctr = oci.load(root, _one_id(pos, "events"))
    interval = opts.get("interval") or "5s"
    seconds = numbers.decimal(interval.removesuffix("s"), "--interval", minimum=0.001)
    import time
    while True:
        if oci.status(ctr) == "stopped":
            raise Conflict("container not running")
        print(_json.dumps({"type": "stats", "id": ctr.name, "data": oci_stats(ctr.control_group())}))
        sys.stdout.flush()
        if opts.get("stats"):
            return 0
        time.sleep(seconds)


def features():
    from .. import _native
    from .spec import HOOKS, NAMESPACES, OCI_VERSION
    from ..security import CAPABILITIES
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": sorted(set(_native.MOUNT_FLAGS) | set(_native.PROPAGATION_FLAGS) | {"defaults"}),
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": [f"CAP_{c}" for c in CAPABILITIES],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.diyc.seccomp": "default or unconfined: diyc's built-in filter",
                        "org.diyc.checkpoint": "not supported: no checkpoint/restore (CRIU)"},
    }


def cmd_checkpoint(root, args):
    raise InvalidArgument("checkpoint is not supported: diyc has no checkpoint/restore (CRIU)")


def cmd_features(root, args):
    from .. import _json
    parse(args, {})
    print(_json.dumps(features()))
    return 0


def default_spec():
    """`runc spec`'s shape, with diyc's defaults: no terminal (pass-through
    stdio), docker's capability set, masked paths, a read-only root."""
    from .. import config, security
    caps = [f"CAP_{c}" for c in security.DEFAULT_CAPS]
    spec = config.make_spec(
        ["sh"], env=[f"PATH={config.DEFAULT_ENV_PATH}", "TERM=xterm"], rootfs="rootfs",
        readonly=True, hostname="diyc", res={"devices": [{"allow": False, "access": "rwm"}]},
        capabilities=security.process_capabilities(caps, 0), no_new_privileges=True,
        masked_paths=security.MASKED_PATHS, readonly_paths=security.READONLY_PATHS,
        rlimits=[{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}])
    spec["process"]["user"] = {"uid": 0, "gid": 0}
    spec["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                           "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    del spec["linux"]["sysctl"], spec["linux"]["devices"]
    return spec


def cmd_spec(root, args):
    from .. import _json
    opts, pos = parse(args, option_table(("-b --bundle", "bundle", VALUE), ("--rootless", "rootless", FLAG)))
    if opts.get("rootless"):
        raise InvalidArgument("spec --rootless is not supported (no user namespaces in diyc)")
    path = f"{opts.get('bundle') or '.'}/config.json"
    if os.path.exists(path):
        raise InvalidArgument(f"{path} already exists: remove it first")
    with open(path, "x") as f:
        f.write(_json.dumps(default_spec()) + "\n")
    return 0


COMMANDS = {
    "create": cmd_create, "start": cmd_start, "state": cmd_state, "kill": cmd_kill,
    "delete": cmd_delete, "run": cmd_run, "exec": cmd_exec, "list": cmd_list, "ps": cmd_ps,
    "features": cmd_features, "spec": cmd_spec, "update": cmd_update, "events": cmd_events,
    "checkpoint": cmd_checkpoint, "restore": cmd_checkpoint,
}


def _log_error(opts, message):
    path = opts.get("log")
    if not path:
        return
    import time
    now = _rfc3339(time.time())
    if opts.get("log_format") == "json":
        from .. import _json
        line = _json.dumps({"level": "error", "msg": message, "time": now})
    else:
        line = f'time="{now}" level=error msg="{message}"'
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = {}
    try:
        opts, rest = parse(argv, GLOBAL_OPTIONS)
        if opts.get("help"):
            print(USAGE)
            return 0
        if opts.get("version"):
            from .spec import OCI_VERSION
            print(f"diyc-runc version {VERSION}\nspec: {OCI_VERSION}")
            return 0
        if opts.get("log_format") not in (None, "text", "json"):
            raise InvalidArgument(f"invalid --log-format {opts['log_format']!r}: text or json")
        if opts.get("rootless") not in (None, "false", "auto"):
            raise InvalidArgument("--rootless is not supported")
        if not rest:
            print(USAGE, file=sys.stderr)
            return 1
        cmd = COMMANDS.get(rest[0])
        if cmd is None:
            raise InvalidArgument(f"unknown command: {rest[0]}")
        from .spec import DEFAULT_ROOT
        from ..state import Root
        code = cmd(Root(opts.get("root") or DEFAULT_ROOT), rest[1:])
        sys.stdout.flush()
        return code
    except DiycError as e:
        _log_error(opts, str(e))
        print(f"diyc-runc: {e}", file=sys.stderr)
        run = "run" in argv and e.exit_code in (126, 127)
        return e.exit_code if run else 1
    except OSError as e:  # a file given on the command line (--process, --pid-file, ...)
        message = f"{e.filename}: {e.strerror}" if e.filename else str(e)
        _log_error(opts, message)
        print(f"diyc-runc: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
