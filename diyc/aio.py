"""asyncio for services that start many sandboxes at once, on the same
engine as diyc.run:

    result = await diyc.arun("busybox", "sh -c 'echo hi'", capture_output=True)
    results = await asyncio.gather(*(diyc.arun("busybox", ["true"]) for _ in range(50)))

    async with await diyc.AsyncContainer.create("busybox", "sleep 60") as c:
        await c.start()
        r = await c.exec_run("echo hi")

What takes milliseconds of system calls (create, start, the teardown)
runs in a worker thread; what takes the container's time (its output, its
end) is waited for on the event loop: a pidfd and the pipes are readers
of the loop, so a running container holds no thread.  Cancelling arun()
(or a timeout) kills the container and removes it.

Only the library imports this module: the CLI never pays for asyncio."""

import asyncio
import functools
import inspect
import os

from .api import run
from .errors import DiycError
from .runtime import Container
from .stdio import Plumbing
from .trace import Trace

_RUN_KEYWORDS = frozenset(inspect.signature(run).parameters) - {"image", "command"}
_MAX_THREADS = 32  # create/start/teardown at once; running containers hold none
_executor = None


def _pool():
    global _executor
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor
        _executor = ThreadPoolExecutor(_MAX_THREADS, thread_name_prefix="diyc-aio")
    return _executor


async def _in_thread(fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(
        _pool(), functools.partial(fn, *args, **kwargs))


async def _exited(pid):
    """Until process `pid` (our child) has ended: its pidfd, readable then."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    ended = loop.create_future()
    loop.add_reader(fd, lambda: ended.done() or ended.set_result(None))
    try:
        await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def _communicate(plumbing, chunks):
    """Plumbing.communicate on the event loop: -> (stdout, stderr).  What
    came is in `chunks` ({"out": [bytes...], "err": [...]}) as it comes."""
    loop = asyncio.get_running_loop()
    chunks.update({p[0]: [] for p in plumbing.pipes if p[0] != "in"})
    if not plumbing.pipes:
        return None, None
    done = loop.create_future()
    pending = [memoryview(plumbing.input or b"")]
    open_pipes = list(plumbing.pipes)

    def finish(pipe, watcher):
        watcher(pipe[1])
        os.close(pipe[1])
        pipe[1] = -1
        open_pipes.remove(pipe)
        if not open_pipes and not done.done():
            done.set_result(None)

    def readable(pipe):
        try:
            data = os.read(pipe[1], 65536)
        except BlockingIOError:
            return
        if data:
            chunks[pipe[0]].append(data)
        else:
            finish(pipe, loop.remove_reader)

    def writable(pipe):
        try:
            n = os.write(pipe[1], pending[0][:65536]) if pending[0] else 0
        except BlockingIOError:
            return
        except BrokenPipeError:
            n, pending[0] = 0, pending[0][:0]
        pending[0] = pending[0][n:]
        if not pending[0]:
            finish(pipe, loop.remove_writer)

    for pipe in plumbing.pipes:
        os.set_blocking(pipe[1], False)
        if pipe[0] == "in":
            loop.add_writer(pipe[1], writable, pipe)
        else:
            loop.add_reader(pipe[1], readable, pipe)
    try:
        await done
    finally:
        for pipe in list(open_pipes):  # cancelled or timed out: stop watching
            (loop.remove_writer if pipe[0] == "in" else loop.remove_reader)(pipe[1])
    return _output(plumbing, chunks)


def _output(plumbing, chunks):
    out = b"".join(chunks["out"]) if "out" in chunks else None
    err = b"".join(chunks["err"]) if "err" in chunks else None
    return plumbing.decode(out), plumbing.decode(err)


def _kill_and_remove(ctr):
    """After a timeout or a cancellation: the container goes."""
    try:
        ctr.discard()
    except DiycError:
        pass


async def arun(image, command=None, *, stdin=None, stdout=None, stderr=None,
               capture_output=False, input=None, text=False, encoding=None, errors=None,
               check=False, timeout=None, trace=False, **options):
    unknown = set(options) - _RUN_KEYWORDS
    if unknown:  # as Python's own message, naming this function
        raise TypeError(f"diyc.arun() got an unexpected keyword argument {min(unknown)!r}")
    tr = trace if isinstance(trace, Trace) else Trace(enabled=bool(trace))
    if timeout is not None:
        from .numbers import decimal
        timeout = decimal(timeout, "timeout (seconds)")
    options.setdefault("auto_remove", True)
    plumbing = Plumbing(stdin, stdout, stderr, capture_output, input, text, encoding, errors)
    try:
        ctr = await _in_thread(Container.create, image, command, trace=tr, **options)
        try:
            await _in_thread(ctr.start, plumbing.child_stdio())
        except BaseException:
            await asyncio.shield(_in_thread(_kill_and_remove, ctr))
            raise
        finally:
            plumbing.started()

        chunks = {}

        async def to_the_end():
            got = await _communicate(plumbing, chunks)
            await _exited(ctr.pid)
            return got

        try:
            out, err = await asyncio.wait_for(to_the_end(), timeout)
        except asyncio.TimeoutError:
            await asyncio.shield(_in_thread(_kill_and_remove, ctr))
            from .process_errors import ContainerTimeout
            raise ContainerTimeout(ctr.record["spec"]["process"]["args"], timeout,
                                   *_output(plumbing, chunks), ctr.id) from None
        except BaseException:  # cancelled
            await asyncio.shield(_in_thread(_kill_and_remove, ctr))
            raise
        result = await asyncio.shield(_in_thread(ctr.wait))  # reaps, records, removes
    finally:
        plumbing.close()
    result.stdout, result.stderr = out, err
    tr.mark("wait")
    result.timings = tr.as_dict()
    if check:
        result.check_returncode()
    return result


arun.__doc__ = """`await diyc.arun(...)`: diyc.run for asyncio, with the same
    arguments and Result (see help(diyc.run)); a timeout or a cancellation
    kills and removes the container."""
arun.__signature__ = inspect.signature(run)
arun.__qualname__ = "diyc.arun"  # unknown keywords: "diyc.arun() got an unexpected keyword"
arun.__module__ = "diyc"


async def remove_at_exit(ctr):
    """The end of `async with Container...`: as `with`, in a worker thread."""
    from .container_api import remove_at_exit as remove_now
    await asyncio.shield(_in_thread(remove_now, ctr))


class AsyncContainer:
    """A diyc.Container for asyncio: each method awaits the Container's,
    waiting on the event loop (wait) or running in a worker thread (the
    rest).  `async with` removes it at the end, as `with Container` does.
    The Container itself: .container."""

    def __init__(self, container):
        self.container = container

    @classmethod
    async def create(cls, image, command=None, **options):
        """Container.create in a worker thread (same arguments)."""
        return cls(await _in_thread(Container.create, image, command, **options))

    @classmethod
    async def load(cls, ref, root=None):
        """Container.load in a worker thread."""
        return cls(await _in_thread(Container.load, ref, root))

    @property
    def id(self):
        return self.container.id

    @property
    def name(self):
        return self.container.name

    @property
    def status(self):
        return self.container.status

    async def start(self, **kwargs):
        """Container.start (same arguments)."""
        return await _in_thread(self.container.start, **kwargs)

    async def wait(self, timeout=None):
        """Until it ends -> Result; ContainerTimeout after `timeout` seconds
        (it runs on)."""
        ctr = self.container
        if ctr.pid:
            try:
                await asyncio.wait_for(_exited(ctr.pid), timeout)
            except asyncio.TimeoutError:
                from .process_errors import ContainerTimeout
                raise ContainerTimeout(ctr.record["spec"]["process"]["args"], timeout,
                                       container_id=ctr.id) from None
            return await _in_thread(ctr.wait)
        return await _in_thread(ctr.wait, timeout)

    async def exec_run(self, cmd, **kwargs):
        """Container.exec_run (same arguments) -> Result."""
        return await _in_thread(self.container.exec_run, cmd, **kwargs)

    async def logs(self, **kwargs):
        """Container.logs (same arguments; stream=True gives a list)."""
        out = await _in_thread(self.container.logs, **kwargs)
        return out if isinstance(out, bytes) else await _in_thread(list, out)

    async def kill(self, sig=15):
        """Container.kill."""
        return await _in_thread(self.container.kill, sig)

    async def stop(self, timeout=None):
        """Container.stop (its stop signal, SIGKILL after `timeout`)."""
        return await _in_thread(self.container.stop, timeout)

    async def remove(self, force=False):
        """Container.remove."""
        return await _in_thread(self.container.remove, force)

    async def stats(self, interval=0.5):
        """Container.stats (one sample over `interval` seconds)."""
        return await _in_thread(self.container.stats, interval)

    async def top(self):
        """Container.top."""
        return await _in_thread(self.container.top)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await remove_at_exit(self.container)
        return False
