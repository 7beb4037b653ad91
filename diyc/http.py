"""A small HTTP/1.1 client for the registry: requests with keep-alive,
Content-Length and chunked bodies, streamed reads, TLS when asked.

http.client imports the email package, ssl and socket (itself enum):
~25 ms, more than all the rest of a `diyc pull` of an image whose layers
are present.  This uses _socket directly; ssl is imported only for https.
"""

import _socket


class HTTPException(Exception):
    pass


class RemoteDisconnected(ConnectionResetError, HTTPException):
    pass


class Connection:
    """One keep-alive connection to `host` ("name[:port]")."""

    def __init__(self, host, timeout=60, tls_context=None):
        self.host = host
        self.timeout = timeout
        self.tls_context = tls_context
        self.sock = None
        self.buffer = bytearray()

    def _connect(self):
        name, _, port = self.host.rpartition(":")
        if not name or not port.isdigit():
            name, port = self.host, "443" if self.tls_context else "80"
        name = name.strip("[]")
        error = None
        for family, kind, proto, _, addr in _socket.getaddrinfo(name, int(port), 0,
                                                                  _socket.SOCK_STREAM):
            sock = _socket.socket(family, kind, proto)
            sock.settimeout(self.timeout)
            try:
                sock.connect(addr)
            except OSError as e:
                sock.close()
                error = e
                continue
            if self.tls_context is not None:
                import socket
                sock = self.tls_context.wrap_socket(socket.socket(fileno=sock.detach()),
                                                    server_hostname=name)
            self.sock = sock
            return
        raise error or OSError(f"cannot resolve {name}")

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer.clear()

    def request(self, method, path, headers=None):
        if self.sock is None:
            self._connect()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.method = method
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def getresponse(self):
        line = self._readline()
        if not line:
            self.close()
            raise RemoteDisconnected("the server closed the connection")
        parts = line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            self.close()
            raise HTTPException(f"bad status line {line[:80]!r}")
        headers = {}
        while True:
            h = self._readline()
            if h in (b"\r\n", b"\n", b""):
                break
            key, _, value = h.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        return Response(self, int(parts[1]), headers)

    # -- buffered reads ----------------------------------------------------------

    def _fill(self):
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _readline(self, limit=65536):
        while True:
            i = self.buffer.find(b"\n")
            if i >= 0:
                line = bytes(self.buffer[:i + 1])
                del self.buffer[:i + 1]
                return line
            if len(self.buffer) > limit:
                raise HTTPException("header line too long")
            if not self._fill():
                line = bytes(self.buffer)
                self.buffer.clear()
                return line

    def _read(self, n):
        """Up to n bytes (fewer only at end of stream)."""
        while len(self.buffer) < n:
            if not self._fill():
                break
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data


class Response:
    def __init__(self, conn, status, headers):
        self.conn = conn
        self.status = status
        self.headers = headers
        self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        if conn.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.remaining = 0
        elif self.chunked:
            self.remaining = None  # read chunk by chunk
            self.chunk_left = 0
        elif "content-length" in headers:
            self.remaining = int(headers["content-length"])
        else:
            self.remaining = -1    # until the server closes
        self.done = self.remaining == 0

    def getheader(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def read(self, n=-1):
        if self.done:
            return b""
        if self.chunked:
            return self._read_chunked(n)
        if self.remaining == -1:
            data = self._read_until_close(n)
        else:
            want = self.remaining if n is None or n < 0 else min(n, self.remaining)
            data = self.conn._read(want)
            self.remaining -= len(data)
            if len(data) < want:
                self.conn.close()
                raise HTTPException(f"body ended {self.remaining} bytes early")
        if self.remaining == 0:
            self.done = True
        return data

    def _read_until_close(self, n):
        out = bytearray()
        while n is None or n < 0 or len(out) < n:
            chunk = self.conn._read(65536 if n is None or n < 0 else n - len(out))
            if not chunk:
                self.done = True
                self.conn.close()
                break
            out += chunk
        return bytes(out)

    def _read_chunked(self, n):
        out = bytearray()
        while (n is None or n < 0 or len(out) < n) and not self.done:
            if self.chunk_left == 0:
                size = self.conn._readline().split(b";")[0].strip()
                try:
                    self.chunk_left = int(size, 16)
                except ValueError:
                    self.conn.close()
                    raise HTTPException(f"bad chunk size {size[:20]!r}") from None
                if self.chunk_left == 0:
                    while self.conn._readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self.done = True
                    break
            want = self.chunk_left if n is None or n < 0 else min(self.chunk_left, n - len(out))
            data = self.conn._read(want)
            if len(data) < want:
                self.conn.close()
                raise HTTPException("chunked body ended early")
            out += data
            self.chunk_left -= len(data)
            if self.chunk_left == 0:
                self.conn._readline()  # the CRLF after a chunk
        return bytes(out)

    def close(self):
        """Drop what is left of the body: reading on, if it is short, keeps
        the connection usable; otherwise the connection is closed."""
        if self.done:
            return
        if self.remaining is not None and 0 < self.remaining <= 65536:
            self.read()
        else:
            self.conn.close()
            self.done = True
