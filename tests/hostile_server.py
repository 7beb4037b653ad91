"""A deliberately malicious HTTP server for the tests of diyc's HTTP client
and registry client: a real server on 127.0.0.1 (a free port, one thread
per connection) whose answers are written byte for byte by the test, so it
can send what no honest server sends - huge bodies, endless headers, bad
framing - or stall.  Not a mock: diyc's client talks HTTP to it over TCP."""

import socketserver
import threading

CLOSE = "close"   # a route returns it to end the connection after its answer


class HostileServer:
    """`routes`: path (without the query) -> function(sock, server) that
    writes the whole answer; it returns CLOSE to close the connection.
    `requests` lists (connection number, method, path, headers) as they
    arrive.  A stalled route waits on `release` (set by close())."""

    def __init__(self, routes=None):
        self.routes = dict(routes or {})
        self.requests = []
        self.connections = 0
        self.release = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                server.connections += 1
                number = server.connections
                f = self.request.makefile("rb")
                try:
                    while True:
                        line = f.readline(65537)
                        if not line:
                            return
                        method, target, _ = line.decode("latin-1").split(" ", 2)
                        headers = {}
                        while True:
                            h = f.readline(65537)
                            if h in (b"\r\n", b"\n", b""):
                                break
                            key, _, value = h.decode("latin-1").partition(":")
                            headers[key.strip().lower()] = value.strip()
                        path = target.split("?")[0]
                        server.requests.append((number, method, target, headers))
                        route = server.routes.get(path) or respond(b"not found", status="404 Not Found")
                        if route(self.request, server) == CLOSE:
                            return
                except OSError:
                    return  # the client went away (as it should, mid-body)
                finally:
                    f.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# -- answers ------------------------------------------------------------------

def head(status="200 OK", headers=(), version="HTTP/1.1"):
    lines = [f"{version} {status}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(body, size=7, extension=b"", trailers=b""):
    """`body` in chunks of `size` bytes (with `extension` after each size),
    the last chunk and `trailers` (b"Name: value\\r\\n" lines)."""
    out = bytearray()
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x%s\r\n%s\r\n" % (len(piece), extension, piece)
    return bytes(out) + b"0\r\n" + trailers + b"\r\n"


def respond(body, status="200 OK", headers=(), content_type="application/octet-stream",
            framing="length", version="HTTP/1.1", connection=None):
    """An answer with `body`, framed by Content-Length ("length"), chunked
    ("chunked", in 7-byte chunks with an extension, and a trailer) or the end
    of the connection ("close").  `connection`: a Connection header value."""
    hdrs = [("Content-Type", content_type), *headers]
    if connection:
        hdrs.append(("Connection", connection))
    if framing == "length":
        hdrs.append(("Content-Length", str(len(body))))
        data = body
    elif framing == "chunked":
        hdrs.append(("Transfer-Encoding", "chunked"))
        data = chunked(body, extension=b';name="value"', trailers=b"X-Trailer: yes\r\n")
    else:
        data = body
    answer = head(status, hdrs, version) + data

    def route(sock, server):
        sock.sendall(answer)
        return CLOSE if framing == "close" else None
    return route


def raw(data, then=CLOSE):
    """Exactly `data`; then close (CLOSE), stall ("stall") or go on (None)."""
    def route(sock, server):
        sock.sendall(data)
        if then == "stall":
            server.release.wait(120)
            return CLOSE
        return then
    return route


def stream(prefix, piece=b" " * (1 << 20), count=200, end=b""):
    """`prefix`, then `count` times `piece` (200 MiB by default), `end`:
    sent as the client reads, never held in memory."""
    def route(sock, server):
        sock.sendall(prefix)
        for _ in range(count):
            sock.sendall(piece)
        sock.sendall(end)
        return CLOSE
    return route

