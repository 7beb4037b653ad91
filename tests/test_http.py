"""diyc.http, the registry's HTTP/1.1 client, against a real server on
127.0.0.1 that sends what the test says (tests/hostile_server.py): keep-alive,
`Connection: close`, chunked bodies with extensions and trailers, and what a
hostile server sends - bad Content-Length, bad chunks, endless headers."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile_server as hs  # noqa: E402

from diyc import http  # noqa: E402

BODY = b'{"hello": "world", "padding": "' + b"x" * 100 + b'"}'


@pytest.fixture
def server():
    s = hs.HostileServer()
    yield s
    s.close()


def get(server, path="/x", timeout=10):
    conn = http.Connection(server.host, timeout=timeout)
    conn.request("GET", path, {"User-Agent": "test"})
    return conn, conn.getresponse()


# -- framing an honest server uses -------------------------------------------

def test_keep_alive_reuses_the_connection(server):
    server.routes["/a"] = hs.respond(b"first")
    server.routes["/b"] = hs.respond(b"second", framing="chunked")
    conn, resp = get(server, "/a")
    assert (resp.status, resp.length, resp.read()) == (200, 5, b"first")
    assert resp.done and conn.sock is not None
    conn.request("GET", "/b")
    resp = conn.getresponse()
    assert resp.read() == b"second"
    conn.request("GET", "/a")
    assert conn.getresponse().read() == b"first"
    conn.close()
    assert server.connections == 1 and len(server.requests) == 3


def test_chunked_body_with_extensions_and_trailers(server):
    """Chunk extensions are ignored, trailers read past: the next response
    on the connection starts where it should."""
    server.routes["/c"] = hs.respond(BODY, framing="chunked")
    server.routes["/d"] = hs.raw(hs.head(headers=[("Transfer-Encoding", "chunked")])
                                 + b"3;a=1;b=\"x;y\"\r\nabc\r\n0;last\r\nX-One: 1\r\nX-Two: 2\r\n\r\n",
                                 then=None)
    conn, resp = get(server, "/c")
    assert resp.chunked and resp.length is None
    pieces = []
    while True:
        piece = resp.read(10)
        if not piece:
            break
        assert len(piece) <= 10
        pieces.append(piece)
    assert b"".join(pieces) == BODY and len(pieces) > 1
    conn.request("GET", "/d")
    assert conn.getresponse().read() == b"abc"
    conn.request("GET", "/c")
    assert conn.getresponse().read() == BODY
    conn.close()
    assert server.connections == 1


def test_connection_close_is_honoured(server):
    """The server says `Connection: close` but keeps the socket open: the
    client must not send its next request there (it would wait forever)."""
    def close_but_keep_open(sock, srv):
        sock.sendall(hs.head(headers=[("Content-Length", "2"), ("Connection", "keep-alive, Close")]) + b"ok")
        srv.release.wait(120)
        return hs.CLOSE
    server.routes["/close"] = close_but_keep_open
    conn, resp = get(server, "/close", timeout=30)
    assert resp.will_close and resp.read() == b"ok"
    assert conn.sock is None  # closed once the body was read
    conn.request("GET", "/close")
    assert conn.getresponse().read() == b"ok"
    conn.close()
    assert server.connections == 2


def test_http10_body_until_close(server):
    server.routes["/old"] = hs.respond(BODY, version="HTTP/1.0", framing="close")
    conn, resp = get(server, "/old")
    assert resp.length is None and resp.will_close
    assert resp.read(7) == BODY[:7]
    assert resp.read() == BODY[7:]
    assert resp.done and conn.sock is None


def test_head_and_no_content_have_no_body(server):
    server.routes["/h"] = hs.raw(hs.head(headers=[("Content-Length", "1000")]), then=None)
    server.routes["/n"] = hs.raw(hs.head("204 No Content"), then=None)
    conn = http.Connection(server.host, timeout=10)
    conn.request("HEAD", "/h")
    resp = conn.getresponse()
    assert resp.done and resp.read() == b""
    conn.request("GET", "/n")
    assert conn.getresponse().read() == b""
    conn.close()


def test_folded_and_repeated_headers(server):
    server.routes["/f"] = hs.raw(b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n  two\r\nX-Rep: a\r\nx-rep: b\r\n"
                                 b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok", then=None)
    conn, resp = get(server, "/f")
    assert resp.getheader("X-Folded") == "one two"
    assert resp.getheader("X-Rep") == "a, b"
    assert resp.read() == b"ok"
    conn.close()


# -- Content-Length -------------------------------------------------------------

@pytest.mark.parametrize("value", ["5, 5", "5,5", " 5 "])
def test_repeated_equal_content_length_is_one(server, value):
    server.routes["/x"] = hs.raw(hs.head(headers=[("Content-Length", value)]) + b"hello")
    conn, resp = get(server)
    assert resp.length == 5 and resp.read() == b"hello"
    conn.close()


@pytest.mark.parametrize("value", ["abc", "12abc", "5, 6", "-5", "+5", "", "0x10", "1e3", "1_0",
                                   "\u00b2", "9" * 19])
def test_bad_content_length(server, value):
    server.routes["/x"] = hs.raw(hs.head(headers=[("Content-Length", value)]) + b"hello")
    with pytest.raises(http.HTTPException, match="bad Content-Length"):
        get(server)


def test_two_different_content_length_headers(server):
    server.routes["/x"] = hs.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello")
    with pytest.raises(http.HTTPException, match="different values"):
        get(server)


def test_body_shorter_than_content_length(server):
    server.routes["/x"] = hs.raw(hs.head(headers=[("Content-Length", "1000")]) + b"only ten b")
    conn, resp = get(server)
    with pytest.raises(http.BodyIncomplete, match="990 of 1000 bytes"):
        resp.read()
    assert conn.sock is None and resp.done


def test_unsupported_transfer_encoding(server):
    server.routes["/x"] = hs.raw(hs.head(headers=[("Transfer-Encoding", "gzip, chunked")]) + b"0\r\n\r\n")
    with pytest.raises(http.HTTPException, match="unsupported Transfer-Encoding"):
        get(server)


# -- chunked bodies a server should not send -----------------------------------

@pytest.mark.parametrize("body, message", [
    (b"zz\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"0x3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"+3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"-1\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"1" * 17 + b"\r\n", "bad chunk size"),
    (b"ffffffffffffffff\r\n", "more than the limit"),
    (b"%x\r\n" % (http.MAX_CHUNK_SIZE + 1), "more than the limit"),
    (b"1;" + b"x" * 10000 + b"\r\na\r\n0\r\n\r\n", "chunk-size line longer than"),
    (b"3\r\nabcdef\r\n0\r\n\r\n", "chunk not followed by CRLF"),
    (b"3\r\nabc\r\n0\r\n" + b"X-T: 1\r\n" * 200 + b"\r\n", "more than 100 trailer fields"),
    (b"3\r\nab", "inside a chunk"),
    (b"3\r\nabc\r\n", "before the end of a chunked body"),
    (b"3\r\nabc", "after a chunk"),
])
def test_bad_chunked_body(server, body, message):
    server.routes["/x"] = hs.raw(hs.head(headers=[("Transfer-Encoding", "chunked")]) + body)
    conn, resp = get(server)
    with pytest.raises(http.HTTPException, match=message):
        while resp.read(2):
            pass
    assert conn.sock is None


# -- what comes before the body: capped ------------------------------------------

@pytest.mark.parametrize("answer, message", [
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200_000)),
     "more than 100 header fields"),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(99)) + b"\r\n",
     "headers larger than 65536 bytes"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * 200_000 + b"\r\n\r\n", "header line longer than 65536"),
    (b"HTTP/1.1 200 " + b"O" * 200_000 + b"\r\n\r\n", "status line longer than 65536"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 20 OK\r\n\r\n", "bad status line"),
    (b"ICY 200 OK\r\n\r\n", "bad status line"),
    (b"HTTP/1.1 200 OK\r\nX-Cut: v", "closed the connection in the headers"),
])
def test_bad_head(server, answer, message):
    server.routes["/x"] = hs.raw(answer)
    conn = http.Connection(server.host, timeout=10)
    conn.request("GET", "/x")
    with pytest.raises(http.HTTPException, match=message):
        conn.getresponse()
    assert conn.sock is None


def test_hundred_headers_are_fine(server):
    server.routes["/x"] = hs.raw(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(99))
                                 + b"Content-Length: 2\r\n\r\nok")
    conn, resp = get(server)
    assert len(resp.headers) == 100 and resp.read() == b"ok"
    conn.close()


def test_closed_before_a_response(server):
    server.routes["/x"] = hs.raw(b"")
    conn = http.Connection(server.host, timeout=10)
    conn.request("GET", "/x")
    with pytest.raises(http.RemoteDisconnected):
        conn.getresponse()


def test_stalled_body_times_out(server):
    server.routes["/x"] = hs.raw(hs.head(headers=[("Content-Length", "1000")]) + b"ten bytes!", then="stall")
    conn, resp = get(server, timeout=0.5)
    assert resp.read(10) == b"ten bytes!"
    with pytest.raises(TimeoutError):
        resp.read(10)
    conn.close()


# -- proxies from the environment (the real tunnel: test_registry_transport.py) --

@pytest.mark.parametrize("host, no_proxy, bypassed", [
    ("198.51.100.7", "198.51.100.0/24", True),
    ("198.51.100.7", "51.100.7,100.7", False),       # an address is not a domain
    ("198.51.100.7:443", "198.51.100.7:443", True),
    ("198.51.100.7:5000", "198.51.100.7:443", False),
    ("reg.example.org", "example.org", True),         # a domain and its subdomains
    ("badexample.org", "example.org", False),
    ("example.org", ".example.org", False),           # a leading dot: subdomains only
    ("a.example.org", " .example.org ", True),
    ("[2001:db8::2]:5000", "2001:db8::/64", True),
    ("anything", "*", True),
    ("anything", "", False),
])
def test_no_proxy_matching(host, no_proxy, bypassed):
    assert http.bypassed(host, 443, no_proxy) is bypassed


def test_proxy_for_reads_the_environment_as_go_does():
    url = "http://proxy.example:3128"
    assert http.proxy_for("https", "reg.example", {"HTTPS_PROXY": url}).host == "proxy.example:3128"
    assert http.proxy_for("https", "reg.example", {"https_proxy": "p1:1", "HTTPS_PROXY": "p2:2"}).host == "p1:1"
    assert http.proxy_for("http", "reg.example", {"HTTPS_PROXY": url}) is None     # per scheme
    assert http.proxy_for("https", "reg.example", {"HTTPS_PROXY": url, "NO_PROXY": "reg.example"}) is None
    assert http.proxy_for("http", "reg.example", {"HTTP_PROXY": url, "REQUEST_METHOD": "GET"}) is None  # httpoxy
    for loopback in ("localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"):
        assert http.is_loopback(loopback)
        assert http.proxy_for("https", loopback, {"HTTPS_PROXY": url}) is None
    assert not http.is_loopback("128.0.0.1") and not http.is_loopback("localhost.example") \
        and not http.is_loopback("registry.localhost")  # a name: may resolve anywhere
    proxy = http.proxy_for("https", "reg.example", {"HTTPS_PROXY": "http://a%40b:c%3Ad@[2001:db8::1]:8080"})
    assert proxy.host == "[2001:db8::1]:8080" and proxy.credentials == "a@b:c:d"
    assert http.proxy_for("https", "reg.example", {"HTTPS_PROXY": "proxy.example"}).host == "proxy.example:80"
    for bad in ("socks5://p:1080", "https://p:443", "http://p:notaport", "http://"):
        with pytest.raises(http.ProxyError):
            http.proxy_for("https", "reg.example", {"HTTPS_PROXY": bad})


@pytest.mark.parametrize("answer, message", [
    (hs.head("407 Proxy Authentication Required"), "refused the tunnel to reg.example:443: 407"),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200_000)),
     "more than 100 header fields"),
    (b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01early", "refused the tunnel"),   # bytes before our TLS hello
])
def test_a_hostile_proxy_answer_to_connect(server, answer, message):
    import ssl
    server.routes["reg.example:443"] = hs.raw(answer)
    conn = http.Connection("reg.example", timeout=10, tls_context=ssl.create_default_context(),
                           proxy=http.Proxy(f"http://bob:pw@{server.host}"))
    with pytest.raises(http.HTTPException, match=message):
        conn.request("GET", "/v2/")
    assert conn.sock is None
    assert server.requests[0][1:3] == ("CONNECT", "reg.example:443")
    assert server.requests[0][3]["proxy-authorization"] == "Basic Ym9iOnB3"
