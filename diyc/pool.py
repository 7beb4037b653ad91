"""diyc.Pool: warm containers, for a service that starts many short ones.

    with diyc.Pool("busybox", size=4, memory="64m", network="none") as pool:
        r = pool.run(["sh", "-c", "echo hi"], capture_output=True)
        r.returncode, r.stdout                    # 0, b'hi\\n'

A Pool keeps `size` containers of one image, with one set of `diyc.run`
options, started up to their release: namespaces, cgroup with its limits,
root filesystem mounted, network configured - every step of the start
story (runtime.py) before the process; the first container is created as
create() does, the others from a copy of its record (create.copied_record).
Its init then holds (C, _native/pooled.c) as diyc-held, a small static
program it has exec'd (_native/held.c: the run's execve tears down next to
nothing, not a copy of the caller's process), with the bounding set
dropped and the seccomp filter on (when it allows what is left: its
install is a BPF compile of ~1 ms), until pool.run() hands it the process:
arguments, environment, working directory, user and the fds that become
stdin, stdout and stderr, in one PROCESS message on the init's channel.
A call pays the end of the start (identity, capabilities, execve), the
program and waitpid: the removal (mount namespace, cgroup, writable layer,
record) happens afterwards in the pool's background threads, which also
start the next container (woken once the call has its result, so as not
to take the GIL from it).  Each container runs one process, once:
nothing carries from one run to the next.

pool.run() validates what it can before taking a container (the command,
the environment's shape, the user against the image's /etc/passwd); a
failure in the container's init (ENOENT from execve, a missing workdir on a
read-only root) is the exception diyc.run raises, naming the step
(CommandNotFound: `executable file not found: nosuch`; InitError).

The lower-level entry point, for a caller that brings its own fds (the diyc
server hands over its client's stdin, stdout and stderr) or relays signals:

    held = pool.take()          # a held container, ours now (the pool refills)
    try:
        pid = held.start(["sh"], env={"K": "V"}, cwd="/", user="nobody",
                         stdio=(fd0, fd1, fd2))  # returns once it has exec'd;
                                                 # None in stdio: our own fd
        held.kill(signal.SIGTERM)                # (relaying a signal)
        result = held.wait(timeout=None)         # a Result; removed in the background
    finally:
        held.close()            # not started or not waited for: killed, then removed

held.start's fds are ours still: it dups them into the container (close
yours when you no longer need them).  take(timeout=) waits for a warm
container (diyc.DiycError when none came in time); what a refill failed
with (a full disk, the image removed) is raised by the next take().

Closing: `with` (or close()) kills and removes every container of the
pool - held, or taken and not ended yet (its taker's wait() then raises
Conflict) - and finishes the removals in flight.  A pool that is garbage-collected, or still open at
interpreter exit, is closed the same way (weakref.finalize).  If the
process forks, the child's copy of the pool is closed without touching
the containers (they are the parent's): using it there raises DiycError.
Threads may share one pool: take() and run() are thread-safe.
"""

import os
import threading
import time
import weakref

from . import config
from .cgroups import oom_killed_in
from .errors import Conflict, DiycError, InitError, InvalidArgument
from .pool_process import describe, key_of
from .record import POOL_HELD_ARGS, exec_error, exit_code_of, waitpid  # (a run's path: imported once)
from .result import Result
from .stdio import Plumbing

# Run options a pool cannot take: its containers are removed after their
# one run, nameless (N of them), without a terminal.
REFUSED_OPTIONS = ("name", "auto_remove", "restart", "tty", "log_opts")

WORKERS = 3  # background threads per pool: refills and removals
REFILL_DELAY = 0.05  # s: a taken container's replacement starts at the latest then
_POOLS = set()  # the live pools of this process (fork: their copies are closed in the child)


class Pool:
    """`size` warm containers of `image` with the options of diyc.run (all
    but name, auto_remove, restart, tty, log_opts).  A context manager;
    see the module's docstring."""

    def __init__(self, image, size=4, *, root=None, **options):
        from .numbers import integer
        size = integer(size, "pool size", 1, 1024)
        from .create import CREATE_OPTIONS
        unknown = sorted(options.keys() - CREATE_OPTIONS.keys())
        if unknown:
            raise TypeError(f"diyc.Pool() got an unexpected keyword argument {unknown[0]!r}")
        for key in REFUSED_OPTIONS:
            if key in options:
                raise InvalidArgument(f"diyc.Pool takes no {key}=: its containers are nameless "
                                      "and removed after one run, without a terminal")
        self._warm = _Warm(image, size, root, options)
        self._close = weakref.finalize(self, self._warm.close)
        try:
            self._warm.fill_one()  # in this thread: bad options raise here, nothing left
        except BaseException:
            self._close()
            raise
        self._warm.start_refilling()

    def take(self, timeout=None):
        """A held container (HeldContainer), ours from now on."""
        return self._warm.take(timeout)

    def run(self, cmd, *, env=None, cwd=None, user=None, stdin=None, stdout=None, stderr=None,
            capture_output=False, input=None, text=False, encoding=None, errors=None,
            check=False, timeout=None):
        """Run `cmd` (a list, or a str split as a shell would) in a warm
        container and return a Result, as diyc.run: env ({"K": "V"} or
        ["K=V"], over the pool's and the image's), cwd, user ("name",
        "uid[:gid]"), and subprocess's stdin/stdout/stderr, capture_output,
        input, text, check, timeout (then the container is killed and
        diyc.ContainerTimeout raised)."""
        if timeout is not None:
            from .numbers import decimal
            timeout = decimal(timeout, "timeout (seconds)")
        process = self._warm.describe(cmd, env, cwd, user)
        plumbing = Plumbing(stdin, stdout, stderr, capture_output, input, text, encoding, errors)
        try:
            for attempt in range(self._warm.size + 1):
                try:
                    with self.take() as held:
                        result = _run_held(held, process, plumbing, timeout)
                    break
                except InitError as e:
                    # gone before it read the process (killed while held): not
                    # the process's failure - the next container runs it
                    if e.step != "release" or attempt == self._warm.size:
                        raise
        finally:
            plumbing.close()
            self._warm.wake()  # (its removal and refill: not before our result)
        if check:
            result.check_returncode()
        return result

    def close(self):
        """Kill and remove every held container; wait for the removals
        in flight (idempotent)."""
        self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        w = self._warm
        return f"<diyc.Pool {w.image!r} size={w.size} ready={len(w.ready)}>"


def _run_held(held, process, plumbing, timeout):
    """Release `held` with `process` and plumbing's fds, feed and drain the
    pipes, wait: -> Result.  (The caller's `with` removes what did not end.)"""
    held.release(process, plumbing.child_stdio())
    plumbing.started()  # (not before: a retry hands the same fds to another)
    deadline = None if timeout is None else time.monotonic() + timeout
    out, err, timed_out = plumbing.communicate(deadline)
    if not timed_out:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if left is None or held.ends_within(left):
            result = held.reap()
            result.stdout, result.stderr = out, err
            return result
    from .process_errors import ContainerTimeout
    raise ContainerTimeout(list(process.args), timeout, out, err, held.id)


class HeldContainer:
    """One of a pool's containers, held at its release and taken from the
    pool (Pool.take()): start() it once, wait() for it, close() it always
    (a context manager).  id, pid, container (its runtime.Container)."""

    def __init__(self, warm, container):
        self._warm = warm
        self.container = container
        self._child = container.held_child
        self.pid = container.pid
        self._state = "held"  # -> started -> ended -> closed (dead: died while held)
        # signals and waits by pidfd: never another process that got its pid
        self._pidfd = os.pidfd_open(self.pid)
        # Its mount namespace, held open by us: when its process ends, the
        # kernel then has no mounts to take down (an RCU grace period, ms)
        # before waitpid returns; closing this, off the caller's path,
        # does it (remove()).
        try:
            self._mount_ns = os.open(f"/proc/{self.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            os.close(self._pidfd)
            raise
        try:  # its OOM count, read by wait() with one pread
            self._oom = os.open(container.control_group().oom_file, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._oom = -1  # (no memory controller: wait() finds nothing either)
        self._closing = threading.Lock()

    @property
    def id(self):
        return self.container.id

    def start(self, cmd, *, env=None, cwd=None, user=None, stdio=(None, None, None)):
        """Run `cmd` (as Pool.run takes it) with `stdio`: three fds (or
        None: ours) that become its 0, 1, 2.  Returns its pid once it has
        exec'd; raises what its init reported (CommandNotFound, InitError)."""
        process = self._warm.describe(cmd, env, cwd, user)
        self.release(process, tuple(-1 if fd is None else fd for fd in stdio))
        return self.pid

    def release(self, process, stdio):
        """start(), for a described process; stdio: fds, -1 for ours."""
        self._warm.check_owner()
        if self._state != "held":
            raise Conflict(f"pool container {self.id[:12]} was started already")
        fds, mask = [], 0
        for i, fd in enumerate(stdio):
            if fd >= 0:
                os.fstat(fd)  # a closed fd given: EBADF here, not a closed stdio there
            elif _is_open(i):  # ours (a closed one stays closed, as diyc.run's)
                fd = i
            else:
                continue
            fds.append(fd)
            mask |= 1 << i
        self._state = "started"
        spec = self.container.record["spec"]
        spec["process"]["args"] = list(process.args)  # (ours: the Process is reused)
        description = os.memfd_create("diyc-process", os.MFD_CLOEXEC)
        try:
            data = memoryview(process.description(mask, spec.get("hostname", "")))
            while data:
                data = data[os.write(description, data):]
            delivered = self._child.send_process(description, fds)
        finally:
            os.close(description)
        error = exec_error(self._child, reap=False, released=delivered)
        if error:
            self.kill(9, force=True)
            waitpid(self.pid)
            self._state = "ended"
            self._warm.remove_later(self)
            raise error

    def ends_within(self, timeout):
        """True once its process has ended, False after `timeout` seconds."""
        import select
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not poller.poll(max(0, int((deadline - time.monotonic()) * 1000) + 1)):
            if time.monotonic() >= deadline:
                return False
        return True

    def kill(self, sig=9, force=False):
        """Send signal `sig` to its process, if it was started and runs
        (force: held too)."""
        if (self._state == "started" or force) and self._pidfd >= 0:
            import signal
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass  # ended (not reaped yet): nothing to signal

    def wait(self, timeout=None):
        """Wait for its end -> a Result; the container is removed in the
        pool's background threads.  timeout: seconds, then
        diyc.ContainerTimeout (it runs on)."""
        try:
            return self.reap(timeout)
        finally:
            self._warm.wake()

    def reap(self, timeout=None):
        """wait(), the pool's threads not woken yet (Pool.run wakes them
        once it has its result: they would compete with it for the GIL)."""
        if self._state != "started":
            raise Conflict(f"pool container {self.id[:12]} is not running")
        args = self.container.record["spec"]["process"]["args"]
        if timeout is not None and not self.ends_within(timeout):
            from .process_errors import ContainerTimeout
            raise ContainerTimeout(args, timeout, None, None, self.id)
        _, status = waitpid(self.pid)
        self._state = "ended"
        oom = self.oom_killed()
        self._warm.remove_later(self, wake=False)
        return Result(exit_code_of(status), oom_killed=oom, container_id=self.id, args=args)

    def oom_killed(self):
        cgroup = self.container.control_group()
        if self._oom < 0:
            return cgroup.oom_killed()
        try:
            return oom_killed_in(cgroup.oom_file, os.pread(self._oom, 4096, 0).decode())
        except OSError:
            return False

    def close(self):
        """Kill it if it was not waited for, and have it removed (idempotent;
        the pool's close() may race its taker's)."""
        with self._closing:
            if self._state == "closed" or not self._warm.is_ours():
                return
            if self._state in ("held", "started", "dead"):
                self._child.close()
                if self._state != "dead":  # (reaped: its pid may be another's by now)
                    self.kill(9, force=True)
                    waitpid(self.pid)
                self._warm.remove_later(self)
            self._child.close()
            self._state = "closed"

    def died_while_held(self):
        """True if its init is gone before it was started (killed by
        someone, by the OOM killer): it is reaped then, and only to be
        removed."""
        if self._state != "held":
            return False
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid = self.pid
        if pid:
            self._state = "dead"
        return bool(pid)

    def remove(self):
        """The end of its life, as the end of `run --rm` (after its end:
        the pool's thread, or close())."""
        self.drop_fds()
        with self.container.lock():
            if self.container.reload_if_present():
                self.container.remove_under_lock()

    def drop_fds(self):
        """Our fds on it: its channel, its mount namespace (closing the
        last reference unmounts its tree), its pidfd (idempotent)."""
        self._child.close()
        for name in ("_mount_ns", "_pidfd", "_oom"):
            if getattr(self, name) >= 0:
                os.close(getattr(self, name))
                setattr(self, name, -1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


class _Warm:
    """A pool's state, shared by its Pool, its HeldContainers and its
    background threads (which must not keep the Pool alive: its finalizer
    closes this).  Under `cond`: ready (held containers not taken),
    doomed (HeldContainers to remove), creating (starts in flight), error
    (a refill's failure, for the next take), closed."""

    def __init__(self, image, size, root, options):
        from . import create as create_steps
        from .arguments import env as env_list
        from .state import Root
        self.owner = os.getpid()
        self.image, self.size = image, size
        self.root = root if isinstance(root, Root) else Root(root)
        self.options = dict(options, auto_remove=True)
        self.cond = threading.Condition()
        self.ready, self.doomed = [], []
        self.creating = 0
        self.taken = {}  # HeldContainer taken -> when its replacement is due at the latest
        self.waiting = 0  # callers waiting in take()
        self.error = None
        self.failures = []  # removals that failed in the thread: close() raises the first
        self.closed = False
        self.threads = []
        self.users = {}  # the user as given -> (uid, gid, groups, home)
        self.described = {}  # describe()'s arguments -> its Process
        self.template = None  # our first container's record as created (False: not copied)
        _, self.image_config, self.layer_dirs = create_steps.resolve_image(self.root, image)
        # the pool's environment over the image's (--env-file's, then env's),
        # as build_spec makes it at create
        from .keyvalue_files import env_file_entries
        env_files = options.get("env_file") or ()
        self.env = env_file_entries([env_files] if isinstance(env_files, str) else list(env_files),
                                    os.environ) + \
            config.check_text_list(env_list(options.get("env") or []), "env")
        _POOLS.add(self)

    # -- what to run ----------------------------------------------------------------

    def describe(self, cmd, env, cwd, user):
        """Validate a process (before any container is taken) -> a
        pool_process.Process; the same arguments again: the same one."""
        self.check_owner()
        try:
            key = (key_of(cmd), key_of(env), cwd, user)
            process = self.described.get(key)
        except TypeError:  # (unhashable: not kept)
            key = process = None
        if process is None:
            from .arguments import env as env_list
            process = describe(self, cmd, env, cwd, user)
            # not one that takes a bare "K" from our environment, which may change
            if key is not None and all("=" in e for e in [*self.env, *env_list(env or [])]):
                if len(self.described) >= 64:
                    self.described.clear()
                self.described[key] = process
        return process

    def resolve_user(self, user):
        config.check_text(user, "user")
        if user not in self.users:
            from .users import resolve_user
            self.users[user] = resolve_user(user, self.layer_dirs)
        return self.users[user]

    def caps_for(self, uid):
        """(effective, permitted) for `uid`: the bounding set for root,
        nothing for another user (security.process_capabilities)."""
        bounding = self.bounding
        return (bounding, bounding) if uid == 0 else (0, 0)

    # -- filling ------------------------------------------------------------------------

    def fill_one(self):
        """Create and start one held container -> into `ready`."""
        from .runtime import Container
        # the first as create() makes it, the others copies of its record as created
        ctr = self.template and Container.create_like(self.root, self.template)
        if not ctr:
            ctr = Container.create(self.image, POOL_HELD_ARGS, root=self.root, **self.options)
            from . import _json  # (a copy: the start changes the record)
            self.template = _json.loads(_json.dumps(ctr.record)) if self.template is None else False
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        try:
            ctr.start((null, null, null), hold_for_process=True)
            held = HeldContainer(self, ctr)
        except BaseException:
            if ctr.held_child is not None:
                ctr.held_child.close()
            ctr.discard()
            raise
        finally:
            os.close(null)
        if not hasattr(self, "bounding"):
            from .security import capability_masks
            caps = ctr.record["spec"]["process"].get("capabilities")
            self.bounding = capability_masks(caps)["bounding"] if caps else 0
        with self.cond:
            if not self.closed:
                self.ready.append(held)
                self.cond.notify_all()
                return
        held.close()  # closed meanwhile (by a finalizer GC ran in this very thread, say)

    def start_refilling(self):
        # Several: a removal waits in the kernel (rmdir of cgroups and of
        # the writable layer waits for RCU and the journal) and a start for
        # its init's mounts, each without holding the GIL; one thread would
        # make the next start wait for the last removal.
        self.threads = [threading.Thread(target=self.work, name=f"diyc-pool-{i}", daemon=True)
                        for i in range(WORKERS)]
        for thread in self.threads:
            thread.start()

    def next_job(self):
        """Under cond: "create", a container to remove, or None (closed).
        An empty pool is refilled first; else removals come first.

        The container a caller has just taken is replaced only once its
        run has ended, or REFILL_DELAY after the take, or at once when a
        taker is waiting: a start in the background holds the GIL for
        milliseconds, which the caller's run would otherwise wait for."""
        while True:
            if self.closed:
                return None
            now = time.monotonic()
            deferred = [t for t in self.taken.values() if t > now]
            have = len(self.ready) + self.creating
            short = self.error is None and (have + len(deferred) < self.size or
                                            have < min(self.waiting, self.size))
            if short and not self.ready:
                return "create"
            if self.doomed:
                return self.doomed.pop(0)
            if short:
                return "create"
            self.cond.wait(min(deferred) - now if deferred else None)

    def work(self):
        """A background thread: refill, remove."""
        while True:
            with self.cond:
                job = self.next_job()
                if job is None:
                    return
                if job == "create":
                    self.creating += 1
            try:
                if job == "create":
                    self.fill_one()
                else:
                    job.remove()
            except BaseException as e:  # kept for the next take(); a removal's for close()
                with self.cond:
                    if job == "create":
                        self.error = e
                    else:
                        self.failures.append(e)
                    self.cond.notify_all()
            finally:
                if job == "create":
                    with self.cond:
                        self.creating -= 1

    # -- taking and giving back -------------------------------------------------------------

    def take(self, timeout=None):
        self.check_owner()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while not self.ready:
                if self.closed:
                    raise DiycError("the pool is closed")
                if self.error is not None:
                    error, self.error = self.error, None
                    self.cond.notify_all()  # the threads try again
                    raise error
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise DiycError(f"no warm container within {timeout} s")
                self.waiting += 1
                self.cond.notify_all()  # (a taker waits: refill now)
                try:
                    self.cond.wait(left)
                finally:
                    self.waiting -= 1
            held = self.ready.pop(0)
            self.taken[held] = time.monotonic() + REFILL_DELAY
        if held.died_while_held():  # not the caller's problem: the next one
            held.close()
            return self.take(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return held

    def remove_later(self, held, wake=True):
        """Off the caller's path: the thread removes it (or we do, closed).
        wake=False: the caller calls wake() once it has its result."""
        with self.cond:
            self.taken.pop(held, None)
            if not self.closed:
                self.doomed.append(held)
                if wake:
                    self.cond.notify_all()
                return
        held.remove()

    def wake(self):
        with self.cond:
            if self.doomed:
                self.cond.notify_all()

    # -- the end -------------------------------------------------------------------------

    def close(self):
        """Stop the thread, then kill and remove what is left (every step
        here, so nothing depends on the thread having done its part)."""
        if not self.is_ours():
            return self.forget()
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join()
        with self.cond:
            ready, self.ready = self.ready, []
            doomed, self.doomed = self.doomed, []
            taken = list(self.taken)  # taken and not ended: a caller's, killed too
        failures, self.failures = self.failures, []
        for held in ready + taken:
            _guarded(held.close, failures)
        for held in doomed:
            _guarded(held.remove, failures)
        _POOLS.discard(self)
        if failures:
            raise failures[0]

    def is_ours(self):
        return os.getpid() == self.owner

    def check_owner(self):
        if not self.is_ours():
            raise DiycError(f"this diyc.Pool belongs to process {self.owner}: "
                            "a forked process cannot use it")

    def forget(self):
        """In a forked child: drop our copies of the channels (the held
        inits are the parent's), touch nothing else."""
        self.cond = threading.Condition()  # another thread may have held the old one
        self.closed = True
        for held in self.ready + self.doomed + list(self.taken):
            held.drop_fds()
        self.ready, self.doomed, self.taken = [], [], {}
        _POOLS.discard(self)


def _guarded(step, failures):
    try:
        step()
    except Exception as e:
        failures.append(e)


def _forget_in_child():
    for warm in list(_POOLS):
        warm.forget()


os.register_at_fork(after_in_child=_forget_in_child)
