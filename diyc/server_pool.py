"""The server's warm containers for `diyc run --rm`.

A repeated `diyc run --rm IMAGE CMD` with the same settings should pay
only what a diyc.Pool's run pays: the release of a container held before
its process, the execve, the wait.  The server keeps such pools for the
settings it has recently run:

    settings   what a held container is made with: the image and the run
               flags, minus the command, -e, -w and -u (which a held
               container receives at its release), plus what the caller's
               context gives a container (its cgroups, umask, rlimits,
               DIYC_* environment).  Their hash names the pool.
    keeper     a process that keeps one diyc.Pool of those settings and
               runs requests in it (pool_keeper.py).  The worker that runs
               a setting the direct way for the second time within
               SEEN_SECONDS becomes its keeper, after its reply: it has
               the caller's context already (joined cgroups, umask,
               rlimits), so the pool's containers nest where that
               caller's would.  It listens on ROOT/server/pools/HASH.sock
               (in the server's 0700 dir), serves only the server's own
               workers, and ends when idle, when the server stops
               (SIGTERM) or dies (its pidfd), or gives way to an `rmi`,
               `network rm` or `system reset`.
    WarmRun    the worker's side: it asks the keeper of its settings; when
               one answers with a held container, the command runs there,
               with the caller's stdin, stdout and stderr (the fds
               themselves), its signals relayed, and the exit code, the
               init's error (CommandNotFound...) or the OOM kill comes back
               as from the direct path.  No keeper, or none with a warm
               container ready: the worker runs the command the direct way.

What is pooled is a whitelist (POOLED_KEYWORDS): a flag whose effect
depends on more than its value at create (a bind mount's source, a file
read at create, a port, an address, a name) is run the direct way.  Held
containers are hidden from `ps` (runtime.Container.list); one running a
command becomes visible once it has run for a moment (pool_keeper's
VISIBLE_AFTER).  DIYC_SERVER_POOL=off in the caller's environment runs
every `run --rm` the direct way.

Wire format (SOCK_SEQPACKET, one JSON object per message): the worker
sends {"cmd", "env", "cwd", "user"} with SCM_RIGHTS [stdin, stdout,
stderr], then {"signal": N} for each relayed signal; the keeper answers
{"started": ID} or {"none": true} or {"error": ...}, then {"exit": CODE,
"oom": BOOL, "name": NAME, "limit": BYTES}.
"""

import json
import os
import socket
import struct
import time

from .errors import DiycError, InitError, init_error

MAX_MESSAGE = 1 << 20
SEEN_SECONDS = 600  # a setting run the direct way twice within this is kept warm

# run keywords a pool's containers can be made with, ahead of the request
POOLED_KEYWORDS = frozenset((
    "auto_remove", "rm_tmpfs_size", "hostname", "labels", "entrypoint", "memory", "memory_swap",
    "cpus", "pids_limit", "network", "extra_hosts", "dns", "dns_search", "dns_opt",
    "cgroup_parent", "read_only", "privileged", "cap_add", "cap_drop", "security_opt", "ulimits",
    "sysctls", "oom_score_adj", "tmpfs", "stop_signal", "stop_timeout", "init"))
# what a held container receives at its release
PROCESS_KEYWORDS = ("env", "workdir", "user")

# The settings a served `run --rm` ran the direct way with (keep_warm_later):
# the worker, once it has replied, may keep them warm (take_pending).  State
# of the one request a worker runs.
PENDING = None


class Settings:
    """A poolable `run --rm`'s settings: image, options (for diyc.Pool),
    and the hash naming its pool."""

    def __init__(self, root, image, options, context):
        import hashlib
        self.root, self.image, self.options = root, image, options
        blob = json.dumps([root.path, image, options, context], sort_keys=True, default=str)
        self.hash = hashlib.sha256(blob.encode()).hexdigest()[:24]
        self.dir = pools_dir(root.path)

    @classmethod
    def of(cls, root, image, keywords):
        """-> Settings, or None when the run is not poolable."""
        if os.environ.get("DIYC_SERVER_POOL") == "off" or not keywords.get("auto_remove") or \
                not keywords.keys() <= POOLED_KEYWORDS | set(PROCESS_KEYWORDS):
            return None
        if str(keywords.get("network", "")).startswith("container:") or \
                any(not str(o).startswith(("no-new-privileges", "seccomp=unconfined", "label"))
                    for o in keywords.get("security_opt") or ()):
            return None  # another container's namespace; a profile file read at create
        from .images.store import ImageStore
        from .errors import ImageNotFound
        try:
            image_id = ImageStore(root).resolve(image)["id"]
        except (ImageNotFound, OSError, ValueError):
            return None  # (the direct way pulls it, or says why not)
        options = {k: v for k, v in keywords.items() if k not in PROCESS_KEYWORDS}
        del options["auto_remove"]  # (a pool's containers are)
        if options.get("read_only") and "workdir" in keywords:
            # (made at create: the root is read-only after)
            options["workdir"] = keywords["workdir"]
        return cls(root, image, options, [image_id, _caller_context()])

    def socket_path(self, dir_fd):
        return f"/proc/self/fd/{dir_fd}/{self.hash}.sock"  # (under sun_path's 108 bytes)

    def seen_before(self):
        """Has a run with these settings gone the direct way lately?  (Marks
        this one: a setting is kept warm from its second run on, not for a
        one-off label or size.)"""
        from .state import private_dir
        private_dir(self.dir)
        marker = f"{self.dir}/{self.hash}.seen"
        try:
            seen = time.time() - os.stat(marker, follow_symlinks=False).st_mtime < SEEN_SECONDS
        except FileNotFoundError:
            seen = False
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        os.utime(marker, follow_symlinks=False)
        return seen


def pools_dir(root_path):
    """Where a root's keepers keep their locks and sockets (in the server's dir)."""
    return f"{root_path}/server/pools"


def _caller_context():
    """What the worker took from its caller that a container inherits."""
    import resource
    umask = os.umask(0)
    os.umask(umask)
    rlimits = [resource.getrlimit(getattr(resource, n)) for n in sorted(dir(resource))
               if n.startswith("RLIMIT_")]
    with open("/proc/self/cgroup") as f:
        cgroups = f.read()
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("DIYC_"))
    return [umask, rlimits, cgroups, env]


def process_of(command, keywords):
    """The request's process fields, or None when it cannot be sent as
    such: `-e KEY` is resolved here, from the caller's environment."""
    if not command:
        return None  # (the image's command: the direct way)
    env = []
    for entry in keywords.get("env") or ():
        entry = str(entry)
        if "=" not in entry:
            if entry not in os.environ:
                return None  # (unset: the direct way says what that means)
            entry = f"{entry}={os.environ[entry]}"
        env.append(entry)
    cwd = None if keywords.get("read_only") else keywords.get("workdir")  # (else a setting)
    return {"cmd": [str(a) for a in command], "env": env, "cwd": cwd, "user": keywords.get("user")}


# -- the worker's side -------------------------------------------------------------------

class WarmRun:
    """`run --rm` in a server pool's held container.  connect() -> a
    WarmRun or None (run it the direct way); kill() relays a signal (the
    CLI's forward_signals); start() hands over the process (False: no
    warm container, the direct way); wait() -> (exit code, oom, name,
    memory limit)."""

    def __init__(self, sock, process):
        self.sock, self.process = sock, process
        self.started = False

    @classmethod
    def connect(cls, settings, process):
        """-> a WarmRun connected to the keeper of `settings`, or None (no
        keeper: run it the direct way)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            dir_fd = os.open(settings.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                sock.connect(settings.socket_path(dir_fd))
            finally:
                os.close(dir_fd)
        except OSError:
            sock.close()
            return None
        return cls(sock, process)

    def start(self):
        """Hand the process over -> True once it runs (False: none warm)."""
        try:
            self.sock.sendmsg([json.dumps(self.process).encode()],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("3i", 0, 1, 2))])
            reply = self._receive()
        except (OSError, ValueError):
            reply = {"none": True}  # (a keeper ending now): the direct way
        if "error" in reply:
            self.close()
            raise error_from(reply["error"])
        if "started" not in reply:
            self.close()
            return False
        self.started = True
        return True

    def kill(self, sig):
        if self.started:
            self.sock.send(json.dumps({"signal": int(sig)}).encode())

    def wait(self):
        try:
            reply = self._receive()
        except (OSError, ValueError):
            reply = {}
        finally:
            self.close()
        if "exit" not in reply:
            raise DiycError("the server's warm container ended without an exit code "
                            "(the server stopped?)")
        return reply["exit"], reply.get("oom", False), reply.get("name"), reply.get("limit")

    def _receive(self):
        data = self.sock.recv(MAX_MESSAGE)
        if not data:
            raise ValueError("no reply")
        return json.loads(data)

    def close(self):
        self.started = False
        self.sock.close()


def describe_error(e):
    """An exception from the keeper's side, for error_from() in the worker."""
    if isinstance(e, InitError):
        return {"step": e.step, "errno": e.errno, "detail": e.detail}
    code = getattr(e, "exit_code", 125)
    return {"message": str(e) if isinstance(e, DiycError) else f"{type(e).__name__}: {e}",
            "class": type(e).__name__, "exit_code": code if isinstance(code, int) else 125}


def error_from(described):
    """The worker's exception for describe_error()'s dict: the same class
    and message the direct path raises (DiycError when not one of ours)."""
    if "step" in described:
        return init_error(described["step"], described["errno"], described["detail"])
    from . import errors
    cls = getattr(errors, str(described.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, DiycError)):
        cls = DiycError
    error = cls.__new__(cls)
    Exception.__init__(error, described.get("message", "failed"))
    if error.exit_code != described.get("exit_code", 125):
        error.exit_code = described.get("exit_code", 125)
    return error


def keep_warm_later(settings):
    """The CLI ran these settings the direct way (no keeper answered): the
    worker may keep them warm after its reply."""
    global PENDING
    PENDING = settings


def take_pending():
    """The settings this worker ran the direct way, once (or None)."""
    global PENDING
    settings, PENDING = PENDING, None
    return settings
