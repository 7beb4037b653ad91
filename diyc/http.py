"""A small HTTP/1.1 client for the registry: requests with keep-alive,
Content-Length and chunked bodies, streamed reads, TLS when asked, through
a proxy from the environment (HTTPS_PROXY: a CONNECT tunnel; HTTP_PROXY:
absolute-URI requests; NO_PROXY) as docker's Go client reads it.

http.client imports the email package, ssl and socket (itself enum):
~25 ms, more than all the rest of a `diyc pull` of an image whose layers
are present.  This uses _socket directly; ssl is imported only for https.

The server is not trusted: what it sends before the body is capped (the
limits of http.client: a line, the number and total size of header
fields), the framing of the body is parsed strictly (a Content-Length is
digits, one value; chunk sizes are hex and bounded) and a body that ends
before its framing says it does raises BodyIncomplete.  Reads are only as
large as the caller asks: bounding a body is the caller's business.
"""

import _socket

MAX_LINE = 65536            # a status line or one header field
MAX_HEADERS = 100           # header fields in one response (or its trailers)
MAX_HEADER_BYTES = 65536    # all of them together
MAX_CHUNK_LINE = 4096       # a chunk-size line, extensions included
MAX_CHUNK_SIZE = 1 << 30    # one chunk of a chunked body
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class HTTPException(Exception):
    pass


class RemoteDisconnected(ConnectionResetError, HTTPException):
    pass


class BodyIncomplete(HTTPException):
    """The connection ended before the body its framing announced."""


class ProxyError(HTTPException):
    """The proxy refused the tunnel, or its URL is not one we can use."""


def content_length(value):
    """A Content-Length header -> int.  Digits only; a list of equal values
    (a repeated header) counts once, different ones are an error."""
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1:
        raise HTTPException(f"bad Content-Length {value[:40]!r}: different values")
    number = values.pop()
    if not (number.isascii() and number.isdigit() and len(number) <= 18):
        raise HTTPException(f"bad Content-Length {value[:40]!r}")
    return int(number)


def split_host(host, default_port):
    """"name[:port]" or "[v6]:port" -> (name, port or default_port)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, colon, port = host.rpartition(":")
        if not colon or ":" in name:  # no port, or a bare IPv6 address
            name, port = host, ""
    if not port:
        return name, default_port
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise OSError(f"bad port in {host[:80]!r}")
    return name, int(port)


def _open(host, timeout, default_port):
    """A TCP connection to `host` ("name[:port]")."""
    name, port = split_host(host, default_port)
    try:
        addresses = _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM)
    except (ValueError, OverflowError):  # a NUL, a name IDNA cannot encode
        raise OSError(f"bad host name {name[:80]!r}") from None
    error = None
    for family, kind, proto, _, addr in addresses:
        sock = _socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
        except OSError as e:
            sock.close()
            error = e
            continue
        return sock
    raise error or OSError(f"cannot resolve {name}")


def is_loopback(host):
    """Whether `host` ("name[:port]") is this machine by name or address:
    localhost, 127.0.0.0/8, ::1 (docker's default insecure registries;
    never proxied, as Go's ProxyFromEnvironment does)."""
    name = split_host(host, None)[0].lower().rstrip(".")
    if name == "localhost":  # (not *.localhost: docker decides by the address, we by the name)
        return True
    parts = name.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() for p in parts):
        return parts[0] == "127"
    try:
        return _socket.inet_pton(_socket.AF_INET6, name) == b"\0" * 15 + b"\1"
    except (OSError, ValueError):
        return False


class Proxy:
    """An HTTP proxy: `host` ("name:port") and its credentials if its URL
    had any (sent as Proxy-Authorization: Basic)."""

    def __init__(self, url):
        from urllib.parse import unquote, urlsplit
        if "://" not in url:
            url = f"http://{url}"  # as curl and Go take a bare host:port
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            raise ProxyError(f"bad proxy URL {url[:80]!r}") from None
        if parts.scheme != "http" or not parts.hostname:
            raise ProxyError(f"unsupported proxy URL {url[:80]!r}: expected http://HOST[:PORT]")
        self.host = parts.netloc.rpartition("@")[2]
        if ":" not in self.host.rpartition("]")[2]:
            self.host += ":80"
        self.credentials = None
        if parts.username is not None:
            self.credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"

    def headers(self):
        if self.credentials is None:
            return []
        import base64
        return [f"Proxy-Authorization: Basic {base64.b64encode(self.credentials.encode()).decode()}"]


def proxy_for(scheme, host, environ):
    """The Proxy for a request by `scheme` ("http"/"https") to `host`, from
    `environ` (https_proxy/HTTPS_PROXY, http_proxy/HTTP_PROXY, no_proxy/
    NO_PROXY; lower case first), or None: no proxy set, `host` in
    NO_PROXY, or `host` is loopback."""
    url = environ.get(f"{scheme}_proxy")
    if url is None and not (scheme == "http" and "REQUEST_METHOD" in environ):  # httpoxy: CGI sets HTTP_PROXY
        url = environ.get(f"{scheme.upper()}_PROXY")
    if not url or is_loopback(host):
        return None
    no_proxy = environ.get("no_proxy", environ.get("NO_PROXY", ""))
    if bypassed(host, 443 if scheme == "https" else 80, no_proxy):
        return None
    return Proxy(url)


def bypassed(host, default_port, no_proxy):
    """Whether NO_PROXY's list names `host`, as Go reads it: `*` is every
    host; an IP address or CIDR range matches addresses; a domain matches
    itself and its subdomains (only them with a leading "."); any entry
    may end in :PORT."""
    name, port = split_host(host, default_port)
    name = name.lower().rstrip(".")
    address = _ip_address(name)
    for entry in no_proxy.lower().split(","):
        entry = entry.strip()
        if entry == "*":
            return True
        try:
            entry_name, entry_port = split_host(entry, None) if "/" not in entry else (entry, None)
        except OSError:
            continue
        entry_name = entry_name.rstrip(".")
        if not entry_name or (entry_port is not None and entry_port != port):
            continue
        if address is not None:
            if _matches_address(address, entry_name):
                return True
        elif name == entry_name.lstrip(".") and not entry_name.startswith(".") or \
                name.endswith("." + entry_name.lstrip(".")):
            return True
    return False


def _ip_address(text):
    import ipaddress
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _matches_address(address, entry):
    """An address against a NO_PROXY entry: an address or a CIDR range."""
    import ipaddress
    try:
        return address in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


class Connection:
    """One keep-alive connection to `host` ("name[:port]"), directly or
    through `proxy` (a Proxy)."""

    def __init__(self, host, timeout=60, tls_context=None, proxy=None):
        self.host = host
        self.timeout = timeout
        self.tls_context = tls_context
        self.proxy = proxy
        self.sock = None
        self.buffer = bytearray()

    def _connect(self):
        self.sock = _open(self.proxy.host if self.proxy else self.host, self.timeout,
                          443 if self.tls_context else 80)
        if self.tls_context is None:
            return
        if self.proxy:
            self._tunnel()
        import socket
        self.sock = self.tls_context.wrap_socket(socket.socket(fileno=self.sock.detach()),
                                                 server_hostname=split_host(self.host, 443)[0])

    def _tunnel(self):
        """CONNECT through the proxy: afterwards the socket is a byte pipe
        to self.host, for TLS."""
        target = self.host if split_host(self.host, None)[1] else f"{self.host}:443"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"] + self.proxy.headers()
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            version, status, reason = self._status_line()
            self.read_fields("header")
        except BaseException:
            self.close()
            raise
        if not 200 <= status < 300 or self.buffer:
            self.close()
            raise ProxyError(f"proxy {self.proxy.host} refused the tunnel to {target}: "
                             f"{status} {reason}".rstrip())

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer.clear()

    def request(self, method, path, headers=None, body=None):
        """Send a request; `body`: bytes, or a file read to its end (the
        caller's headers give its Content-Length)."""
        if self.sock is None:
            self._connect()
        forward = self.proxy is not None and self.tls_context is None
        target = f"http://{self.host}{path}" if forward else path  # a proxy's plain-HTTP form
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if forward:
            lines += self.proxy.headers()
        self.method = method
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if body is None or isinstance(body, (bytes, bytearray)):
            self.sock.sendall(head + (body or b""))
            return
        self.sock.sendall(head)
        while chunk := body.read(1 << 20):
            self.sock.sendall(chunk)

    def getresponse(self):
        """The status line and headers of the next response; the body is
        read through the Response.  Any error closes the connection (what
        is left on it cannot be trusted to be where a response starts)."""
        try:
            version, status, _ = self._status_line()
            return Response(self, version, status, self.read_fields("header"))
        except BaseException:
            self.close()
            raise

    def _status_line(self):
        """-> (version, status, reason) of the next response."""
        line = self._readline(MAX_LINE, "status line")
        if not line:
            raise RemoteDisconnected("the server closed the connection")
        parts = line.decode("latin-1").split(None, 2)
        if (len(parts) < 2 or not parts[0].startswith("HTTP/") or len(parts[1]) != 3
                or not (parts[1].isascii() and parts[1].isdigit())):
            raise HTTPException(f"bad status line {line[:80]!r}")
        return parts[0], int(parts[1]), parts[2].strip() if len(parts) > 2 else ""

    def read_fields(self, what):
        """Header (or trailer) fields up to the empty line -> {lowercase
        name: value}; a repeated field's values are joined with ", "."""
        fields, count, total, last = {}, 0, 0, None
        while True:
            line = self._readline(MAX_LINE, f"{what} line")
            if line in (b"\r\n", b"\n"):
                return fields
            if not line.endswith(b"\n"):
                raise BodyIncomplete(f"the server closed the connection in the {what}s")
            count += 1
            total += len(line)
            if count > MAX_HEADERS:
                raise HTTPException(f"more than {MAX_HEADERS} {what} fields")
            if total > MAX_HEADER_BYTES:
                raise HTTPException(f"{what}s larger than {MAX_HEADER_BYTES} bytes")
            text = line.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and last is not None:
                fields[last] += " " + text.strip()  # obsolete line folding
                continue
            name, colon, value = text.partition(":")
            name = name.strip().lower()
            if not colon or not name:
                raise HTTPException(f"malformed {what} line {line[:40]!r}")
            value = value.strip()
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
            last = name

    # -- buffered reads ----------------------------------------------------------

    def _fill(self):
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _readline(self, limit, what):
        """One line, its newline included; at the end of the stream what is
        left (maybe b"").  A line longer than `limit` is an error."""
        searched = 0
        while True:
            i = self.buffer.find(b"\n", searched)
            if i >= 0:
                if i >= limit:
                    break
                line = bytes(self.buffer[:i + 1])
                del self.buffer[:i + 1]
                return line
            if len(self.buffer) >= limit:
                break
            searched = len(self.buffer)
            if not self._fill():
                line = bytes(self.buffer)
                self.buffer.clear()
                return line
        self.close()
        raise HTTPException(f"{what} longer than {limit} bytes")

    def _read(self, n):
        """Up to n bytes (fewer only at end of stream)."""
        while len(self.buffer) < n:
            if not self._fill():
                break
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data


class Response:
    """A response's status and headers; its body through read().

    `length` is the Content-Length (None for a chunked body or one that
    lasts until the server closes).  After a body ends, a connection the
    server said it will close (`Connection: close`, HTTP/1.0) is closed, so
    the next request opens a new one."""

    def __init__(self, conn, version, status, headers):
        self.conn = conn
        self.status = status
        self.headers = headers
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        self.will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
        encoding = headers.get("transfer-encoding")
        self.chunked = False
        self.length = None
        if conn.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.length = 0
        elif encoding is not None:
            # Accept-Encoding: identity is sent; chunked is the only framing.
            if encoding.strip().lower() != "chunked":
                raise HTTPException(f"unsupported Transfer-Encoding {encoding[:40]!r}")
            self.chunked = True
            self.chunk_left = 0
        elif "content-length" in headers:
            self.length = content_length(headers["content-length"])
        else:
            self.will_close = True  # the body lasts until the server closes
        self.remaining = self.length
        self.received = 0   # bytes of the body that arrived
        self.done = False
        if self.remaining == 0:
            self._finished()

    def getheader(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def _finished(self):
        self.done = True
        if self.will_close:
            self.conn.close()

    def read(self, n=-1):
        """Up to n bytes of the body (all of it when n < 0); b"" at its end.
        Raises BodyIncomplete if the connection ends first.  After any
        error the connection is closed, and `received` still counts the
        bytes of the body that did arrive."""
        if self.done:
            return b""
        self._partial = b""
        try:
            if self.chunked:
                data = self._read_chunked(n)
            elif self.remaining is None:
                data = self._read_until_close(n)
            else:
                data = self._read_length(n)
        except BaseException:
            self.received += len(self._partial) + self._buffered_body()
            self.done = True
            self.conn.close()
            raise
        self.received += len(data)
        return data

    def _buffered_body(self):
        """Bytes of the body that arrived but were not returned."""
        buffered = len(self.conn.buffer)
        if self.chunked:
            return min(buffered, self.chunk_left)
        if self.remaining is not None:
            return min(buffered, self.remaining)
        return buffered

    def _read_length(self, n):
        want = self.remaining if n is None or n < 0 else min(n, self.remaining)
        data = self._partial = self.conn._read(want)
        self.remaining -= len(data)
        if len(data) < want:
            raise BodyIncomplete(f"the server closed the connection with {self.remaining} of "
                                 f"{self.length} bytes of the body not sent")
        if self.remaining == 0:
            self._finished()
        return data

    def _read_until_close(self, n):
        out = self._partial = bytearray()
        while n is None or n < 0 or len(out) < n:
            chunk = self.conn._read(65536 if n is None or n < 0 else n - len(out))
            if not chunk:
                self._finished()
                break
            out += chunk
        return bytes(out)

    def _read_chunked(self, n):
        out = self._partial = bytearray()
        while (n is None or n < 0 or len(out) < n) and not self.done:
            if self.chunk_left == 0:
                self.chunk_left = self._chunk_size()
                if self.chunk_left == 0:
                    self.conn.read_fields("trailer")
                    self._finished()
                    break
            want = self.chunk_left if n is None or n < 0 else min(self.chunk_left, n - len(out))
            data = self.conn._read(want)
            out += data
            self.chunk_left -= len(data)
            if len(data) < want:
                raise BodyIncomplete("the server closed the connection inside a chunk")
            if self.chunk_left == 0:
                end = self.conn._readline(MAX_CHUNK_LINE, "line after a chunk")
                if end not in (b"\r\n", b"\n"):
                    raise (BodyIncomplete("the server closed the connection after a chunk") if not end
                           else HTTPException(f"chunk not followed by CRLF: {end[:20]!r}"))
        return bytes(out)

    def _chunk_size(self):
        line = self.conn._readline(MAX_CHUNK_LINE, "chunk-size line")
        if not line.endswith(b"\n"):
            raise BodyIncomplete("the server closed the connection before the end of a chunked body")
        size = line.split(b";")[0].strip()
        if not size or size.strip(_HEX_DIGITS) or len(size) > 16:
            raise HTTPException(f"bad chunk size {size[:20]!r}")
        n = int(size, 16)
        if n > MAX_CHUNK_SIZE:
            raise HTTPException(f"chunk of {n} bytes, more than the limit of {MAX_CHUNK_SIZE}")
        return n

    def close(self):
        """Drop what is left of the body: reading on, if it is short, keeps
        the connection usable; otherwise the connection is closed."""
        if self.done:
            return
        if self.remaining is not None and 0 < self.remaining <= 65536:
            self.read()
        else:
            self.abort()

    def abort(self):
        """Close the connection under this response, whatever is left of
        its body (a body not wanted, or not trusted)."""
        self.done = True
        self.conn.close()
