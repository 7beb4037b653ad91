"""`diyc pull` against a real registry (Debian's docker-registry) on 127.0.0.1."""

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry_util as ru  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not os.path.exists(ru.REGISTRY_BIN) or not os.path.exists("/bin/busybox"),
                                reason="needs docker-registry and busybox-static")


def diyc(root, *args, input=None):
    return subprocess.run([sys.executable, "-m", "diyc", "--root", str(root), *args],
                          capture_output=True, text=True, cwd=REPO, input=input, timeout=120)


def ok(root, *args, **kw):
    p = diyc(root, *args, **kw)
    assert p.returncode == 0, (p.stdout, p.stderr)
    return p


CONFIG = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "FOO=bar"],
          "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo default cmd; pwd; id -u; echo FOO=$FOO"],
          "WorkingDir": "/data", "User": "nobody", "Labels": {"x": "y"}}


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    r = ru.Registry(tmp_path_factory.mktemp("registry"))
    try:
        layers = ru.layered_image_layers()
        # OCI manifest without a mediaType field (allowed; go by Content-Type)
        r.images = {
            "oci": r.push_image("test/layered", "latest", layers, config=CONFIG, media_type_field=False),
            "docker": r.push_image("test/layered", "schema2", layers, config=dict(CONFIG, Labels={"x": "docker"}),
                                   oci=False),
        }
        arm = r.push_image("test/multi", None, layers[:2],
                           config={"Env": ["ARCH=arm64"], "Cmd": ["sh"]}, architecture="arm64")
        amd = r.push_image("test/multi", None, layers,
                           config={"Env": ["ARCH=amd64"], "Cmd": ["sh"]})
        r.push_index("test/multi", "latest", [(arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
                                              (amd, {"os": "linux", "architecture": "amd64"})])
        r.push_index("test/multi", "dockerlist", [(amd, {"os": "linux", "architecture": "amd64"})], oci=False)
        r.images["arm"], r.images["amd"] = arm, amd
        yield r
    finally:
        r.stop()


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


# -- unit: references and challenges ---------------------------------------

def test_reference_rules():
    from diyc.images.reference import parse_reference
    from diyc.images.registry import parse_challenge
    r = parse_reference("alpine")
    assert (r.registry, r.repository, r.tag, r.name) == ("docker.io", "library/alpine", "latest", "alpine")
    r = parse_reference("user/app:1.2")
    assert (r.registry, r.repository, r.tag) == ("docker.io", "user/app", "1.2")
    r = parse_reference("localhost:5000/a/b@sha256:" + "a" * 64)
    assert (r.registry, r.repository, r.tag, r.digest) == ("localhost:5000", "a/b", None, "sha256:" + "a" * 64)
    assert parse_reference("docker.io/library/busybox:1").name == "busybox"
    for bad in ("UPPER/x", "x@sha256:12", "x:", "a//b"):
        with pytest.raises(Exception):
            parse_reference(bad)
    # the same parser gives the store its local name and tag
    from diyc.errors import InvalidArgument
    from diyc.images.reference import name_and_tag
    assert name_and_tag("busybox") == ("busybox", "latest")
    assert name_and_tag("Reg.Example:5000/a/b:v1.0") == ("Reg.Example:5000/a/b", "v1.0")
    for bad in ("x@sha256:" + "a" * 64, "a/B", "x:-1", "a" * 256):
        with pytest.raises(InvalidArgument):
            name_and_tag(bad)
    scheme, p = parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"')
    assert scheme == "bearer" and p["scope"] == "repository:a/b:pull,push" and p["service"] == "reg"


# -- pulls -------------------------------------------------------------------

def test_pull_oci_layered_and_run(reg, root):
    ref = f"{reg.host}/test/layered"
    p = ok(root, "pull", "--insecure", ref)
    assert "Downloaded newer image" in p.stdout
    img = json.loads(ok(root, "image", "inspect", ref).stdout)[0]
    assert img["Id"] == reg.images["oci"]["config"]          # id = config digest
    assert img["RootFS"]["Layers"] == reg.images["oci"]["diff_ids"]
    assert img["Config"]["Labels"] == {"x": "y"}
    # every blob kept, verified by name
    for d in reg.images["oci"]["blobs"] + [img["Id"]]:
        assert (root / "blobs/sha256" / d[7:]).exists()
    # whiteout + opaque dir as overlayfs sees them
    l3 = root / "layers" / img["RootFS"]["Layers"][2][7:]
    st = os.lstat(l3 / "data/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(l3 / "olddir", "trusted.overlay.opaque") == b"y"

    # config honoured: Entrypoint + Cmd, Env, WorkingDir, User
    p = ok(root, "run", "--network", "none", "--rm", ref)
    assert p.stdout.split("\n")[:4] == ["default cmd", "/data", "65534", "FOO=bar"]
    # the container sees the upper layer's deletion and directory replacement
    p = ok(root, "run", "--network", "none", "--rm", "--entrypoint", "", "-u", "0", ref, "sh", "-c",
           "ls /data; test -e /data/gone && echo GONE-STILL-THERE; ls -a /olddir; cat /etc/motd; hello")
    assert p.stdout.split() == ["keep", ".", "..", "new", "layer", "3", "hello", "from", "layer", "2"]


def test_pull_zstd_layer(reg, root):
    """An OCI image whose top layer is zstd-compressed."""
    pytest.importorskip("zstandard", reason="zstd layers need the zstandard package")
    top = ru.make_tar([("etc", "dir", None, 0o755), ("etc/zstd-was-here", "file", b"yes\n", 0o644)])
    pushed = reg.push_image("test/zstd", "1", [(ru.busybox_layer(), "gzip"), (top, "zstd")])
    ref = f"{reg.host}/test/zstd:1"
    ok(root, "pull", "--insecure", ref)
    img = json.loads(ok(root, "image", "inspect", ref).stdout)[0]
    assert img["RootFS"]["Layers"] == pushed["diff_ids"]
    assert ok(root, "run", "--network", "none", "--rm", ref, "cat", "/etc/zstd-was-here").stdout == "yes\n"
    ok(root, "rmi", ref)


def test_pull_schema2_second_pull_fast_and_shared_layers(reg, root):
    ok(root, "pull", "--insecure", f"{reg.host}/test/layered")
    before = ru.store_snapshot(root)
    p = ok(root, "pull", "--insecure", f"{reg.host}/test/layered:schema2")
    assert p.stdout.count("already exists") == 3
    after = ru.store_snapshot(root)
    new = {f for f in after - before}
    # only the new config (blob + record) appears; no layer blob
    assert len([f for f in new if f.startswith("blobs/")]) == 1, new
    # second pull of the same image: nothing downloaded
    t0 = time.monotonic()
    p = ok(root, "pull", "--insecure", f"{reg.host}/test/layered:schema2")
    elapsed = time.monotonic() - t0
    assert "Image is up to date" in p.stdout
    assert ru.store_snapshot(root) == after
    assert elapsed < 5
    p = ok(root, "images")
    assert "test/layered" in p.stdout and "schema2" in p.stdout


def test_pull_index_platform_and_digest(reg, root):
    ref = f"{reg.host}/test/multi"
    ok(root, "pull", "--insecure", ref)
    img = json.loads(ok(root, "image", "inspect", ref).stdout)[0]
    assert img["Id"] == reg.images["amd"]["config"]
    ok(root, "pull", "--insecure", "--platform", "linux/arm64", f"{ref}:latest")
    img = json.loads(ok(root, "image", "inspect", ref).stdout)[0]
    assert img["Id"] == reg.images["arm"]["config"] and len(img["RootFS"]["Layers"]) == 2
    p = diyc(root, "pull", "--insecure", "--platform", "linux/s390x", ref)
    assert p.returncode == 125 and "no image for platform linux/s390x" in p.stderr
    ok(root, "pull", "--insecure", f"{ref}:dockerlist")
    assert json.loads(ok(root, "image", "inspect", f"{ref}:dockerlist").stdout)[0]["Id"] == reg.images["amd"]["config"]
    # by digest, and runnable by that digest
    by_digest = f"{reg.host}/test/layered@{reg.images['docker']['digest']}"
    ok(root, "pull", "--insecure", by_digest)
    assert ok(root, "run", "--network", "none", "--rm", "-u", "0", by_digest, "cat /etc/motd").stdout.endswith("layer 3\n")


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the test images are linux/amd64")
def test_run_pull_policies_and_platform(reg, root):
    """run --pull never|missing|always and --platform (this host's only), as docker's."""
    ref = f"{reg.host}/test/layered"
    p = diyc(root, "run", "--network", "none", "--rm", "--pull", "never", ref)
    assert (p.returncode, p.stderr) == (125, f"diyc: No such image: {ref}\n")
    p = ok(root, "run", "--network", "none", "--rm", "--pull", "missing", ref)
    assert p.stdout.split("\n")[0] == "default cmd"
    assert f"Unable to find image '{ref}' locally" in p.stderr and "Downloaded newer image" in p.stderr
    p = ok(root, "run", "--network", "none", "--rm", "--pull", "missing", ref)
    assert p.stderr == ""  # present: not pulled
    p = ok(root, "run", "--network", "none", "--rm", "--pull", "always", ref)
    assert "Image is up to date" in p.stderr and p.stdout.split("\n")[0] == "default cmd"
    multi = f"{reg.host}/test/multi"
    p = ok(root, "run", "--network", "none", "--rm", "--pull", "missing", "--platform", "linux/amd64", multi,
           "sh", "-c", "echo $ARCH")
    assert p.stdout == "amd64\n"
    p = diyc(root, "run", "--network", "none", "--rm", "--pull", "always", "--platform", "linux/arm64", multi, "true")
    assert p.returncode == 125 and p.stderr == "diyc: --platform linux/arm64: diyc runs only this host's " \
        "platform, linux/amd64\n"
    # a local image of another platform (pulled by `pull --platform`) is refused with --platform
    ok(root, "pull", "--platform", "linux/arm64", multi)
    p = diyc(root, "run", "--network", "none", "--rm", "--platform", "linux/amd64", multi, "true")
    assert p.returncode == 125 and "image " + multi + " is linux/arm64: it does not match" in p.stderr
    assert ok(root, "ps", "-aq").stdout == ""  # refused before a container was made


def test_loopback_registries_speak_plain_http_without_insecure(reg, root):
    # docker's default insecure registries: localhost and 127.0.0.0/8
    port = reg.host.rpartition(":")[2]
    for host in (reg.host, f"localhost:{port}"):
        ref = f"{host}/test/layered"
        ok(root, "pull", ref)
        assert ok(root, "run", "--network", "none", "--rm", "-u", "0", ref, "cat /etc/motd").stdout \
            .endswith("layer 3\n")
    # any other host is TLS (the suite's network safety: a name that does
    # not resolve, so nothing leaves the machine)
    p = diyc(root, "pull", "registry.invalid/test/layered")
    assert p.returncode == 125 and "cannot connect" in p.stderr and "(https)" in p.stderr


# -- malformed input: clear error, exit 125, unchanged store ----------------

def _expect_failure(root, args, message):
    ok(root, "images")  # creates the layout
    before = ru.store_snapshot(root)
    p = diyc(root, *args)
    assert p.returncode == 125, (p.stdout, p.stderr)
    assert message in p.stderr, p.stderr
    assert ru.store_snapshot(root) == before
    assert os.listdir(root / "tmp") == []
    return p


def test_404_tag(reg, root):
    _expect_failure(root, ["pull", "--insecure", f"{reg.host}/test/layered:nope"], "manifest unknown")
    _expect_failure(root, ["pull", "--insecure", f"{reg.host}/no/such"], "not found")


def test_connection_refused(root):
    port = ru.free_port()
    _expect_failure(root, ["pull", "--insecure", f"127.0.0.1:{port}/x"], "Connection refused")


def test_manifest_digest_mismatch(reg, root):
    img = reg.push_image("test/badmanifest", "latest", [(ru.make_tar([("m", "file", b"m\n", 0o644)]), None)],
                         config={"Env": ["UNIQUE=manifest"], "Cmd": ["sh"]})
    path = reg.blob_data(img["digest"])
    with open(path, "ab") as f:
        f.write(b"\n ")  # still valid JSON, other bytes
    _expect_failure(root, ["pull", "--insecure", f"{reg.host}/test/badmanifest"], "manifest digest mismatch")
    _expect_failure(root, ["pull", "--insecure", f"{reg.host}/test/badmanifest@{img['digest']}"],
                    "manifest digest mismatch")


def test_truncated_layer(reg, root):
    big = os.urandom(300_000)
    layers = ru.layered_image_layers()[:1] + [(ru.make_tar([("big", "file", big, 0o644)]), "gzip")]
    img = reg.push_image("test/truncated", "latest", layers, config={"Env": ["UNIQUE=trunc"], "Cmd": ["sh"]})
    path = reg.blob_data(img["blobs"][1])
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    p = _expect_failure(root, ["pull", "--insecure", f"{reg.host}/test/truncated"], "digest mismatch")
    # the busybox layer that did download fine is not left behind either
    assert not os.listdir(root / "layers")
    del p


def test_layer_digest_mismatch_same_size(reg, root):
    layers = [(ru.make_tar([("f", "file", b"original\n", 0o644)]), None)]
    img = reg.push_image("test/flipped", "latest", layers, config={"Env": ["UNIQUE=flip"], "Cmd": ["sh"]})
    path = reg.blob_data(img["blobs"][0])
    data = bytearray(open(path, "rb").read())
    i = data.index(b"original")
    data[i:i + 8] = b"ORIGINAL"
    open(path, "wb").write(bytes(data))
    _expect_failure(root, ["pull", "--insecure", f"{reg.host}/test/flipped"], "blob digest mismatch")


# -- basic auth ---------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_reg(tmp_path_factory):
    r = ru.Registry(tmp_path_factory.mktemp("authreg"), users={"alice": "s3cret"})
    try:
        r.images = {"img": r.push_image("private/img", "v1", ru.layered_image_layers()[:2])}
        yield r
    finally:
        r.stop()


def test_basic_auth(auth_reg, root):
    ref = f"{auth_reg.host}/private/img:v1"
    p = diyc(root, "pull", "--insecure", ref)
    assert p.returncode == 125 and f"diyc login {auth_reg.host}" in p.stderr
    p = diyc(root, "login", "--insecure", "-u", "alice", "-p", "wrong", auth_reg.host)
    assert p.returncode == 125 and "authentication" in p.stderr
    assert not (root / "auth.json").exists()
    # loopback: plain HTTP without --insecure, for login as for pull
    ok(root, "login", "-u", "alice", "--password-stdin", auth_reg.host, input="s3cret\n")
    assert stat.S_IMODE(os.stat(root / "auth.json").st_mode) == 0o600
    ok(root, "pull", ref)
    assert json.loads(ok(root, "image", "inspect", ref).stdout)[0]["Id"] == auth_reg.images["img"]["config"]
    ok(root, "logout", auth_reg.host)
    ok(root, "rmi", ref)
    assert diyc(root, "pull", "--insecure", ref).returncode == 125


# -- Bearer tokens: a token server and an auth proxy in front of the registry -

class BearerProxy:
    """Answers 401 `Bearer realm=...` unless the request carries a token its
    realm issued; blobs are redirected (307) to a second listener on another
    host name, which refuses any Authorization header (as S3 would)."""

    def __init__(self, upstream, require_user=None):
        import http.server
        import urllib.request
        self.upstream, self.require_user = upstream, require_user
        self.token = "tok-" + os.urandom(8).hex()
        self.log = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                host = self.headers.get("Host", "")
                auth = self.headers.get("Authorization")
                proxy.log.append((host, self.path, auth))
                if self.path.startswith("/token"):
                    if proxy.require_user:
                        import base64
                        want = "Basic " + base64.b64encode(proxy.require_user.encode()).decode()
                        if auth != want:
                            return self._send(401, b'{"details":"bad credentials"}')
                    assert "scope=repository%3A" in self.path and "service=diyc-test" in self.path
                    return self._send(200, json.dumps({"token": proxy.token}).encode())
                if self.path.startswith("/direct/"):
                    if auth:
                        return self._send(400, b"Authorization must not follow a redirect")
                    return self._forward(self.path[len("/direct"):])
                if auth != f"Bearer {proxy.token}":
                    realm = f"http://127.0.0.1:{proxy.port}/token"
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}',
                                      {"WWW-Authenticate": f'Bearer realm="{realm}",service="diyc-test",'
                                                           f'scope="repository:test/layered:pull"'})
                if "/blobs/" in self.path:
                    return self._send(307, b"", {"Location": f"http://localhost:{proxy.port}/direct{self.path}"})
                return self._forward(self.path)

            def _forward(self, path):
                req = urllib.request.Request(f"http://{proxy.upstream}{path}",
                                             headers={"Accept": self.headers.get("Accept", "*/*")})
                try:
                    with urllib.request.urlopen(req) as r:
                        body = r.read()
                        headers = {k: v for k, v in r.headers.items()
                                   if k in ("Content-Type", "Docker-Content-Digest")}
                        return self._send(r.status, body, headers)
                except urllib.error.HTTPError as e:
                    return self._send(e.code, e.read())

            def _send(self, code, body, headers=None):
                ru.reply(self, code, body, headers)

        self.server, self.port = ru.serve(Handler)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_bearer_token_flow_and_redirect(reg, root):
    proxy = BearerProxy(reg.host)
    try:
        ref = f"127.0.0.1:{proxy.port}/test/layered"
        ok(root, "pull", "--insecure", ref)
        img = json.loads(ok(root, "image", "inspect", ref).stdout)[0]
        assert img["Id"] == reg.images["oci"]["config"]
        token_requests = [entry for entry in proxy.log if entry[1].startswith("/token")]
        assert token_requests and token_requests[0][2] is None  # anonymous
        redirected = [entry for entry in proxy.log if entry[1].startswith("/direct/")]
        assert len(redirected) == 4 and all(a is None for _, _, a in redirected)  # config + 3 layers
    finally:
        proxy.close()


def test_bearer_token_with_credentials(reg, root):
    proxy = BearerProxy(reg.host, require_user="bob:pw")
    try:
        ref = f"127.0.0.1:{proxy.port}/test/layered"
        p = diyc(root, "pull", "--insecure", ref)
        assert p.returncode == 125 and "token server" in p.stderr and "refused" in p.stderr
        ok(root, "login", "--insecure", "-u", "bob", "-p", "pw", f"127.0.0.1:{proxy.port}")
        ok(root, "pull", "--insecure", ref)
    finally:
        proxy.close()


def test_credentials_never_go_in_clear_text_to_another_host(root):
    """A plain-HTTP (loopback) registry whose token realm is a plain-HTTP
    URL on another host: refused before any connection, so `diyc login`'s
    password is not sent in clear text across the network."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ru.reply(self, 401, b"{}", {"WWW-Authenticate": 'Bearer realm="http://auth.example/token",'
                                                          'service="x"'})

        def log_message(self, *args):
            pass
    server, port = ru.serve(Handler)
    try:
        for args in (["login", "-u", "bob", "-p", "pw", f"127.0.0.1:{port}"],
                     ["pull", f"127.0.0.1:{port}/test/image"]):
            p = diyc(root, *args)
            assert p.returncode == 125 and "refusing a plain-HTTP token realm" in p.stderr, p.stderr
            assert len(p.stderr.splitlines()) == 1
    finally:
        server.shutdown()
        server.server_close()


# -- sizes a registry sends are capped (issue #17, item 7) --------------------

def test_config_over_4MiB_refused(reg, root):
    """An image config of 5 MiB (a huge label), served by the real registry:
    refused from its declared size, before it is downloaded."""
    layers = [(ru.make_tar([("f", "file", b"big config\n", 0o644)]), None)]
    img = reg.push_image("test/bigconfig", "latest", layers,
                         config={"Labels": {"junk": "x" * (5 << 20)}, "Cmd": ["sh"]})
    p = _expect_failure(root, ["pull", "--insecure", f"{reg.host}/test/bigconfig"],
                        f"image config {img['config']} is too large")
    assert "the limit is 4194304" in p.stderr and len(p.stderr.splitlines()) == 1


def _push_with_layer_size(reg, repo, layer_size_delta):
    """An image whose manifest declares its layer `layer_size_delta` bytes
    off the blob's real size (the registry does not check it)."""
    tar = ru.make_tar([("f", "file", os.urandom(50_000), 0o644)])
    blob_digest = reg.push_blob(repo, tar)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                      "rootfs": {"type": "layers", "diff_ids": [ru.sha256(tar)]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": ru.MT_OCI_MANIFEST,
                "config": {"mediaType": ru.MT_OCI_CONFIG, "digest": reg.push_blob(repo, cfg), "size": len(cfg)},
                "layers": [{"mediaType": ru.LAYER_TYPES[(True, None)], "digest": blob_digest,
                            "size": len(tar) + layer_size_delta}]}
    reg.push_manifest(repo, "latest", json.dumps(manifest).encode(), ru.MT_OCI_MANIFEST)
    return blob_digest, len(tar)


def test_layer_larger_than_declared_refused(reg, root):
    digest, size = _push_with_layer_size(reg, "test/understated", -100)
    _expect_failure(root, ["pull", "--insecure", f"{reg.host}/test/understated"],
                    f"layer {digest}: the registry announces {size} bytes, its manifest declares {size - 100}")


def test_layer_smaller_than_declared_refused(reg, root):
    digest, size = _push_with_layer_size(reg, "test/overstated", 100)
    _expect_failure(root, ["pull", "--insecure", f"{reg.host}/test/overstated"],
                    f"expected {size + 100} bytes, received {size}")


def test_registry_timeout_setting(reg, root):
    """DIYC_REGISTRY_TIMEOUT: a real pull works with a short one; a bad
    value is refused before anything is fetched."""
    env = dict(os.environ, DIYC_REGISTRY_TIMEOUT="5")
    p = subprocess.run([sys.executable, "-m", "diyc", "--root", str(root), "pull", "--insecure",
                        f"{reg.host}/test/layered"], capture_output=True, text=True, cwd=REPO, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    for bad in ("0", "-1", "soon", "nan", "inf"):
        env["DIYC_REGISTRY_TIMEOUT"] = bad
        p = subprocess.run([sys.executable, "-m", "diyc", "--root", str(root), "pull", "--insecure",
                            f"{reg.host}/test/layered"], capture_output=True, text=True, cwd=REPO, env=env,
                           timeout=120)
        assert p.returncode == 125 and p.stderr.startswith("diyc: invalid DIYC_REGISTRY_TIMEOUT"), p.stderr
        assert len(p.stderr.splitlines()) == 1
