"""Terminals: `run -it`, `attach`, `exec -it`.

A container with a terminal has a pty whose master its supervisor holds;
`diyc attach` talks to the supervisor over containers/<id>/attach.sock
(SOCK_SEQPACKET): 'd'+bytes both ways, 'w'+rows+cols to resize, and 'x'+
the exit code at the end.  The local terminal is put in raw mode (and
restored on every way out), its size follows SIGWINCH, and Ctrl-p Ctrl-q
detaches, leaving the container running."""

import errno
import os
import select
import socket
import struct
import time

DETACH_KEYS = b"\x10\x11"  # Ctrl-p Ctrl-q


def _winsize(fd):
    import fcntl
    import termios
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


class RawTerminal:
    """The local terminal in raw mode for the duration of a with block."""

    def __init__(self, fd=0):
        self.fd = fd
        self.saved = None

    def __enter__(self):
        if os.isatty(self.fd):
            import termios
            import tty
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


class _Winch:
    """Notices SIGWINCH (with _signal: `signal` imports enum)."""

    def __init__(self):
        self.changed = True

    def __enter__(self):
        import _signal
        self.old = _signal.signal(_signal.SIGWINCH, self._handler)
        return self

    def _handler(self, sig, frame):
        self.changed = True

    def __exit__(self, *exc):
        import _signal
        _signal.signal(_signal.SIGWINCH, self.old)


def connect(ctr, timeout=5.0):
    """Connect to a container's attach socket (waiting for the supervisor
    to listen)."""
    dirfd = os.open(ctr.dir, os.O_PATH | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                sock.connect(f"/proc/self/fd/{dirfd}/attach.sock")
                return sock
            except OSError as e:
                sock.close()
                if e.errno not in (errno.ENOENT, errno.ECONNREFUSED) or time.monotonic() > deadline:
                    from .errors import DiycError
                    raise DiycError(f"cannot attach to {ctr.name}: {e.strerror}") from None
                time.sleep(0.01)
    finally:
        os.close(dirfd)


class _Detector:
    """Spots the detach key sequence in what the user types."""

    def __init__(self, keys=DETACH_KEYS):
        self.keys = keys
        self.matched = 0

    def feed(self, data):
        """-> (data to pass on, detached?)"""
        out = bytearray()
        for b in data:
            if b == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    return bytes(out), True
                continue
            if self.matched:
                out += self.keys[:self.matched]
                self.matched = 0
            out.append(b)
        return bytes(out), False


_GO_ON = object()


def _relay(remote, stdin, send_input, resize, receive, send):
    """The terminal loop of attach and exec -it: our terminal raw, its size
    passed on at start and on SIGWINCH (resize(rows, cols)); what `remote`
    has is handled by receive(), which returns _GO_ON or the value to end
    with; what we type goes to send(), which returns True to end (detach)."""
    poller = select.poll()
    poller.register(remote, select.POLLIN)
    if send_input:
        poller.register(stdin, select.POLLIN)
    with RawTerminal(stdin), _Winch() as winch:
        while True:
            if winch.changed:
                winch.changed = False
                size = _winsize(stdin)
                if size:
                    resize(*size)
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd == remote:
                    result = receive()
                    if result is not _GO_ON:
                        return result
                    continue
                data = os.read(stdin, 4096)
                if not data:
                    poller.unregister(stdin)
                elif send(data):
                    return None


def attach(sock, stdin=0, stdout=1, send_input=True):
    """Relay between the local terminal and an attach socket.  Returns the
    container's exit code, or None when the user detached."""
    detector = _Detector()

    def receive():
        msg = sock.recv(1 << 16)
        if not msg:  # the supervisor let us go (another client attached)
            return None
        if msg[:1] == b"x":
            return struct.unpack("i", msg[1:5])[0]
        if msg[:1] == b"d":
            os.write(stdout, msg[1:])
        return _GO_ON

    def send(data):
        data, detached = detector.feed(data)
        if data:
            sock.send(b"d" + data)
        return detached

    return _relay(sock.fileno(), stdin, send_input,
                  lambda rows, cols: sock.send(b"w" + struct.pack("HH", rows, cols)),
                  receive, send)


def relay_pty(master, pid, stdin=0, stdout=1, send_input=True):
    """`exec -it`: we hold the pty master ourselves.  Returns once the
    process has closed the terminal."""
    import fcntl
    import termios

    def receive():
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the last slave is closed
            data = b""
        if not data:
            return None
        os.write(stdout, data)
        return _GO_ON

    def send(data):
        os.write(master, data)
        return False

    _relay(master, stdin, send_input,
           lambda rows, cols: fcntl.ioctl(master, termios.TIOCSWINSZ,
                                          struct.pack("HHHH", rows, cols, 0, 0)),
           receive, send)
