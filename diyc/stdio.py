"""subprocess's conventions for the stdin, stdout and stderr of what the
library runs (diyc.run, Container.exec_run): None (ours), PIPE, DEVNULL,
STDOUT (stderr only), a file object or an fd; capture_output, input, and
text/encoding/errors to decode what was captured.  The values are
subprocess's own (-1, -2, -3), without importing it (milliseconds of
imports a container start does not need)."""

import os

PIPE = -1
STDOUT = -2
DEVNULL = -3


def _fd_of(value, what):
    if isinstance(value, bool):
        raise TypeError(f"{what} must be None, PIPE, DEVNULL, a file object or an fd, not bool")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid {what} {value}: PIPE, DEVNULL or an fd >= 0")
        return value
    try:
        return value.fileno()
    except AttributeError:
        raise TypeError(f"{what} must be None, PIPE, DEVNULL, a file object or an fd, "
                        f"not {type(value).__name__}") from None


class Plumbing:
    """The fds one process gets, and our ends of its pipes.

        p = Plumbing(stdin, stdout, stderr, capture_output, input, text, encoding, errors)
        start(p.child_stdio()); p.started()
        out, err, timed_out = p.communicate(deadline)
        ... p.close() (always)"""

    def __init__(self, stdin=None, stdout=None, stderr=None, capture_output=False, input=None,
                 text=False, encoding=None, errors=None):
        if capture_output:
            if stdout is not None or stderr is not None:
                raise ValueError("stdout and stderr arguments may not be used with capture_output")
            stdout = stderr = PIPE
        if input is not None and stdin is not None:
            raise ValueError("stdin and input arguments may not both be used")
        if stdout == STDOUT:
            raise ValueError("STDOUT is for stderr only")
        self.text = bool(text or encoding or errors)
        self.encoding, self.errors = encoding, errors or "strict"
        if input is not None:
            if isinstance(input, str):
                if not self.text:
                    raise TypeError("input must be bytes (or text=True for a str)")
                input = input.encode(self._encoding(), self.errors)
            elif not isinstance(input, (bytes, bytearray, memoryview)):
                raise TypeError(f"input must be bytes, not {type(input).__name__}")
            stdin = PIPE
        self.input = input
        self.stdio = [-1, -1, -1]
        self.pipes = []        # [kind, our end (-1 once closed)]
        self.child_fds = []    # the child's ends and /dev/null: closed once it has them
        try:
            for i, (value, kind) in enumerate(((stdin, "in"), (stdout, "out"), (stderr, "err"))):
                if value is None:
                    continue
                if value == PIPE:
                    r, w = os.pipe2(os.O_CLOEXEC)
                    ours, child = (w, r) if kind == "in" else (r, w)
                    self.pipes.append([kind, ours])
                    self.child_fds.append(child)
                    self.stdio[i] = child
                elif value == DEVNULL:
                    null = os.open("/dev/null", (os.O_RDONLY if kind == "in" else os.O_WRONLY)
                                   | os.O_CLOEXEC)
                    self.child_fds.append(null)
                    self.stdio[i] = null
                elif value == STDOUT and kind == "err":
                    self.stdio[2] = self.stdio[1] if self.stdio[1] >= 0 else 1
                else:
                    self.stdio[i] = _fd_of(value, {"in": "stdin", "out": "stdout",
                                                   "err": "stderr"}[kind])
        except BaseException:
            self.close()
            raise

    def _encoding(self):
        if self.encoding:
            return self.encoding
        import locale  # as subprocess in text mode: the locale's encoding
        return locale.getpreferredencoding(False)

    def child_stdio(self):
        return tuple(self.stdio)

    def started(self):
        """The child has its fds: close our copies of its ends (EOF then
        comes when it, and whatever it passed them to, close them)."""
        for fd in self.child_fds:
            os.close(fd)
        self.child_fds = []

    def communicate(self, deadline=None):
        """Feed input, collect output until the child closes its ends, or
        until `deadline` (time.monotonic()).  -> (stdout, stderr,
        timed_out): bytes for the captured streams (what came so far when
        timed out), else None."""
        chunks = {p[0]: [] for p in self.pipes if p[0] != "in"}
        open_fds = {p[1]: p for p in self.pipes}
        timed_out = False
        if open_fds:
            import select
            pending = memoryview(self.input or b"")
            poller = select.poll()
            for fd, pipe in open_fds.items():
                poller.register(fd, select.POLLOUT if pipe[0] == "in" else select.POLLIN)
            while open_fds:
                timeout_ms = None
                if deadline is not None:
                    import time
                    timeout_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
                events = poller.poll(timeout_ms)
                if not events and deadline is not None:
                    timed_out = True
                    break
                for fd, _ in events:
                    pipe = open_fds[fd]
                    if pipe[0] == "in":
                        try:
                            n = os.write(fd, pending[:65536]) if pending else 0
                        except BrokenPipeError:
                            n, pending = 0, pending[:0]
                        pending = pending[n:]
                        if pending:
                            continue
                    else:
                        data = os.read(fd, 65536)
                        if data:
                            chunks[pipe[0]].append(data)
                            continue
                    poller.unregister(fd)  # EOF (or all input written: EOF for the child)
                    del open_fds[fd]
                    os.close(fd)
                    pipe[1] = -1
        out = b"".join(chunks["out"]) if "out" in chunks else None
        err = b"".join(chunks["err"]) if "err" in chunks else None
        return self.decode(out), self.decode(err), timed_out

    def decode(self, data):
        """bytes -> str in text mode, newlines translated as subprocess does."""
        if data is None or not self.text:
            return data
        return data.decode(self._encoding(), self.errors).replace("\r\n", "\n").replace("\r", "\n")

    def close(self):
        for fd in self.child_fds:
            os.close(fd)
        self.child_fds = []
        for p in self.pipes:
            if p[1] >= 0:
                os.close(p[1])
                p[1] = -1
