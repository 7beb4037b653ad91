"""How `diyc pull` reaches a registry: plain HTTP for loopback ones (see
test_registry.py), TLS anywhere else, through the proxy the environment
names (HTTPS_PROXY: a CONNECT tunnel; HTTP_PROXY: absolute-URI requests;
NO_PROXY), and TLS failures said in one line that suggests --insecure.

A registry that is not on loopback, without touching the machine's network
or /etc/hosts: diyc runs in a network namespace this module creates (only
`lo`, no route anywhere), and the registry's name is an address of a
documentation range (198.51.100.0/24) that nobody can reach from there.
Only the proxy can: it listens on the namespace's loopback and carries
each connection to the real registry (Debian's docker-registry on the
host's 127.0.0.1), through a TLS front with a self-signed certificate for
198.51.100.7:443.  So a pull that succeeds went through the proxy, and a
pull that bypasses it (NO_PROXY) cannot connect.  The proxy counts what
it carries."""

import base64
import os
import socket
import ssl
import subprocess
import threading

import pytest

import registry_util as ru
from conftest import assert_one_line_error
from netns_util import NsCli, in_netns, netns

TLS_NAME = "198.51.100.7"       # served with TLS (the self-signed certificate's address)
PLAIN_NAME = "198.51.100.8:5000"  # served in plain HTTP


def _pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _splice(a, b):
    threading.Thread(target=_pipe, args=(a, b), daemon=True).start()
    threading.Thread(target=_pipe, args=(b, a), daemon=True).start()


def _listen_in(ns):
    """A listening socket on 127.0.0.1 of network namespace `ns` (None: ours)."""
    def make():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        return s
    return in_netns(ns, make) if ns else make()


class Listener:
    """Accepts in a thread; each connection goes to self.handle."""

    def __init__(self, sock):
        self.sock = sock
        self.port = sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            self.handle(conn)
        except OSError:
            conn.close()

    def close(self):
        self.sock.close()


class TLSFront(Listener):
    """TLS with `cert`/`key` in front of the plain registry at `upstream`."""

    def __init__(self, cert, key, upstream):
        super().__init__(_listen_in(None))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.upstream = upstream

    def handle(self, conn):
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()  # the client refused our certificate
            return
        _splice(tls, socket.create_connection(self.upstream))


class CountingProxy(Listener):
    """An HTTP proxy on the loopback of namespace `ns`: CONNECT tunnels and
    absolute-URI requests, each to the address `routes` maps its target
    to (an unknown target: 502).  It records what it carried."""

    def __init__(self, ns, routes):
        super().__init__(_listen_in(ns))
        self.routes = routes
        self.tunnels, self.forwarded, self.credentials = [], [], []

    def handle(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                conn.close()
                return
            head += data
        first, _, rest = head.partition(b"\r\n")
        method, target, _ = first.decode().split(" ", 2)
        auth = [line.split(b":", 1)[1].strip().decode() for line in rest.split(b"\r\n")
                if line.lower().startswith(b"proxy-authorization:")]
        self.credentials += auth
        if method == "CONNECT":
            self.tunnels.append(target)
        else:
            self.forwarded.append(first.decode())
            target = target.split("/")[2]  # http://HOST[:PORT]/...
        if target not in self.routes:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        upstream = socket.create_connection(self.routes[target])
        if method == "CONNECT":
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            upstream.sendall(head.partition(b"\r\n\r\n")[2])
        else:
            upstream.sendall(head)  # the registry takes absolute-form targets
        _splice(conn, upstream)

    def count(self):
        return len(self.tunnels) + len(self.forwarded)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = ru.Registry(tmp_path_factory.mktemp("transport-registry"))
    try:
        r.push_image("test/small", "v1", ru.layered_image_layers()[:2])
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem", "-subj", "/CN=diyc-test",
                    "-addext", f"subjectAltName=IP:{TLS_NAME}"], check=True, capture_output=True)
    return f"{d}/cert.pem", f"{d}/key.pem"


@pytest.fixture(scope="module")
def world(registry, certificate, diyc_root):
    """(the diyc command in the namespace, the proxy, the TLS front)."""
    upstream = ("127.0.0.1", registry.port)
    front = TLSFront(*certificate, upstream)
    with netns("diyctls") as ns:
        proxy = CountingProxy(ns, {f"{TLS_NAME}:443": ("127.0.0.1", front.port),
                                   PLAIN_NAME: upstream})
        try:
            yield NsCli(ns, diyc_root), proxy, front
        finally:
            proxy.close()
            front.close()


def pull(cli, root, *args, **env):
    base = {k: v for k, v in cli.env().items() if "proxy" not in k.lower() and k != "SSL_CERT_FILE"}
    return subprocess.run(cli.argv("--root", root, "pull", "-q", *args), capture_output=True, text=True,
                          env=dict(base, **env), timeout=60)


def test_https_through_a_connect_proxy(world, certificate, tmp_path):
    cli, proxy, _ = world
    url = f"http://127.0.0.1:{proxy.port}"
    for i, variable in enumerate(("HTTPS_PROXY", "https_proxy")):
        before = len(proxy.tunnels)
        p = pull(cli, tmp_path / f"r{i}", f"{TLS_NAME}/test/small:v1", **{variable: url},
                 SSL_CERT_FILE=certificate[0])
        assert p.returncode == 0, p.stderr
        assert proxy.tunnels[before:] and set(proxy.tunnels[before:]) == {f"{TLS_NAME}:443"}
    assert proxy.forwarded == []


def test_a_tls_failure_is_one_line_that_suggests_insecure(world, tmp_path):
    cli, proxy, _ = world
    env = {"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}
    # the system's trust store does not know the self-signed certificate
    line = assert_one_line_error(pull(cli, tmp_path / "r", f"{TLS_NAME}/test/small:v1", **env),
                                 contains="--insecure")
    assert "TLS" in line and "certificate" in line and "_ssl.c" not in line and "[SSL" not in line
    # --insecure: TLS without verification
    p = pull(cli, tmp_path / "r", "--insecure", f"{TLS_NAME}/test/small:v1", **env)
    assert p.returncode == 0, p.stderr


def test_plain_http_through_a_forward_proxy_with_credentials(world, tmp_path):
    cli, proxy, _ = world
    before = len(proxy.forwarded)
    # --insecure on a registry without TLS: the TLS attempt fails, plain HTTP follows
    p = pull(cli, tmp_path / "r", "--insecure", f"{PLAIN_NAME}/test/small:v1",
             HTTP_PROXY=f"http://us%40er:p%3Ass@127.0.0.1:{proxy.port}",
             HTTPS_PROXY=f"http://us%40er:p%3Ass@127.0.0.1:{proxy.port}")
    assert p.returncode == 0, p.stderr
    carried = proxy.forwarded[before:]
    assert carried and all(line.startswith(f"GET http://{PLAIN_NAME}/v2/") for line in carried)
    assert "Basic " + base64.b64encode(b"us@er:p:ss").decode() in proxy.credentials


@pytest.mark.parametrize("no_proxy", ["198.51.100.0/24", f".example.org, {TLS_NAME}", "*",
                                      f"{TLS_NAME}:443", "51.100.7,100.7"])
def test_no_proxy_bypasses_the_proxy(world, tmp_path, no_proxy):
    cli, proxy, _ = world
    before = proxy.count()
    p = pull(cli, tmp_path / "r", f"{TLS_NAME}/test/small:v1", HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}",
             NO_PROXY=no_proxy)
    if no_proxy == "51.100.7,100.7":  # not a suffix at a dot: the proxy still carries it
        assert proxy.count() > before
        return
    # direct: this namespace has no route to the registry's address
    assert_one_line_error(p, contains="cannot connect to registry")
    assert proxy.count() == before


def test_loopback_registries_bypass_the_proxy(registry, tmp_path):
    # a proxy on this namespace's loopback that would carry anything: a
    # loopback registry is reached directly, as docker does
    proxy = CountingProxy(None, {registry.host: ("127.0.0.1", registry.port)})
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        from conftest import DIYC
        env = dict(os.environ, HTTP_PROXY=url, HTTPS_PROXY=url, http_proxy=url, https_proxy=url)
        env.pop("NO_PROXY", None)
        env.pop("no_proxy", None)
        p = subprocess.run(DIYC + ["--root", str(tmp_path / "r"), "pull", "-q", f"{registry.host}/test/small:v1"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        assert proxy.count() == 0
    finally:
        proxy.close()
