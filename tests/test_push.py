"""`diyc push` (and diyc.images.push) against a real registry (Debian's
docker-registry on 127.0.0.1): what was pushed is read back by skopeo, an
independent client, and pulled into a second diyc root and run there."""

import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry_util as ru  # noqa: E402
from conftest import Cli, assert_one_line_error  # noqa: E402

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(p) for p in (ru.REGISTRY_BIN, "/bin/busybox", "/usr/bin/skopeo")),
    reason="needs docker-registry, skopeo and busybox-static")


def skopeo(*args):
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)
    return p


def remote(ref, raw=False):
    """What skopeo sees at docker://ref: the inspect record, or the raw manifest."""
    p = skopeo("inspect", "--tls-verify=false", *(["--raw"] if raw else []), f"docker://{ref}")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def image_id(cli, ref):
    return json.loads(cli("image", "inspect", ref, check=True).stdout)[0]["Id"]


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    r = ru.Registry(tmp_path_factory.mktemp("pushreg"))
    try:
        layers = ru.layered_image_layers()
        r.images = {"oci": r.push_image("src/layered", "oci", layers),
                    "docker": r.push_image("src/layered", "schema2", layers, oci=False)}
        yield r
    finally:
        r.stop()


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path / "root")


@pytest.fixture
def cli2(tmp_path):
    """A second root: the images pushed are pulled back into it."""
    return Cli(tmp_path / "root2")


def import_image(cli, ref, data):
    p = subprocess.run(cli.command + ["import", "-", ref], input=data, capture_output=True,
                       env=cli.env(), timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


def test_push_imported_image_then_pull_it_elsewhere_and_run(reg, cli, cli2):
    ref = f"{reg.host}/pushed/bb:1"
    image = import_image(cli, ref, ru.busybox_layer())
    # a loopback registry speaks plain HTTP without --insecure, as docker's
    p = cli("push", ref, check=True)
    lines = p.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{reg.host}/pushed/bb]"
    diff_id = json.loads(cli("image", "inspect", ref, check=True).stdout)[0]["RootFS"]["Layers"][0]
    assert f"{diff_id[7:19]}: Pushed" in lines
    tag, _, rest = lines[-1].partition(": digest: ")
    digest, _, size = rest.partition(" size: ")
    assert tag == "1" and digest.startswith("sha256:") and int(size) > 0

    # skopeo: the manifest at the tag is the one announced, naming the image's layer
    raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}").stdout.encode()
    assert ru.sha256(raw) == digest and len(raw) == int(size)
    seen = remote(ref)
    assert seen["Digest"] == digest and seen["Layers"] == [diff_id]  # imported: stored as a plain tar
    assert json.loads(raw)["config"]["digest"] == image
    assert image_id(cli, f"{reg.host}/pushed/bb@{digest}") == image  # the push is known by digest

    # again: nothing to send, the same manifest
    again = cli("push", ref, check=True).stdout.splitlines()
    assert f"{diff_id[7:19]}: Layer already exists" in again and again[-1] == lines[-1]

    cli2("pull", ref, check=True)
    assert image_id(cli2, ref) == image
    p = cli2("run", "--rm", "--network", "none", ref, "sh", "-c", "echo pulled back; ls /bin/busybox")
    assert p.returncode == 0 and p.stdout.split() == ["pulled", "back", "/bin/busybox"], p.stderr


@pytest.mark.parametrize("kind, media", [("docker", ru.MT_DOCKER_MANIFEST), ("oci", ru.MT_OCI_MANIFEST)])
def test_push_pulled_image_sends_the_blobs_it_came_as(reg, cli, cli2, kind, media):
    src = f"{reg.host}/src/layered:{'schema2' if kind == 'docker' else 'oci'}"
    cli("pull", "--insecure", src, check=True)
    dest = f"{reg.host}/copy/{kind}:v1"
    cli("tag", src, dest, check=True)
    out = cli("push", "--insecure", dest, check=True).stdout.splitlines()
    # the registry has them in the repository they came from: mounted, not sent
    diff_ids = reg.images[kind]["diff_ids"]
    assert sorted(f"{d[7:19]}: Mounted from src/layered" for d in diff_ids) == \
        sorted(line for line in out if "Mounted" in line or "Pushed" in line)  # (in parallel: any order)
    manifest = remote(dest, raw=True)
    # the schema of the source, its config and its compressed layers byte for byte
    assert manifest["mediaType"] == media
    assert manifest["config"]["digest"] == reg.images[kind]["config"]
    assert [layer["digest"] for layer in manifest["layers"]] == reg.images[kind]["blobs"]
    cli2("pull", "--insecure", dest, check=True)
    assert image_id(cli2, dest) == reg.images[kind]["config"]
    p = cli2("run", "--rm", "--network", "none", dest, "sh", "-c", "cat /etc/motd; ls /olddir; ls /data")
    assert p.returncode == 0 and p.stdout.split() == ["layer", "3", "new", "keep"], p.stderr


def test_push_built_image(reg, cli, cli2, tmp_path):
    import_image(cli, "base:1", ru.busybox_layer())
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM base:1\nRUN echo built by diyc > /built\n'
                                    'COPY note /note\nCMD ["cat", "/built", "/note"]\n')
    (ctx / "note").write_text("copied\n")
    ref = f"{reg.host}/built/app:2"
    image = cli("build", "-q", "-t", ref, str(ctx), check=True).stdout.strip()
    assert cli("push", "--insecure", "-q", ref, check=True).stdout == f"{ref}\n"  # -q: the name only
    assert len(remote(ref)["Layers"]) == 3
    cli2("pull", "--insecure", ref, check=True)
    assert image_id(cli2, ref) == image
    p = cli2("run", "--rm", "--network", "none", ref)
    assert p.returncode == 0 and p.stdout == "built by diyc\ncopied\n", p.stderr


def test_push_xz_layer_as_its_plain_tar(reg, cli, cli2):
    """No registry media type has xz: the layer goes as its plain tar,
    whose digest is its diff-id."""
    ref = f"{reg.host}/xz/bb:1"
    image = import_image(cli, ref, lzma.compress(ru.busybox_layer()))
    cli("push", "--insecure", ref, check=True)
    diff_id = ru.sha256(ru.busybox_layer())
    manifest = remote(ref, raw=True)
    assert [(x["mediaType"], x["digest"]) for x in manifest["layers"]] == \
        [("application/vnd.oci.image.layer.v1.tar", diff_id)]
    cli2("pull", "--insecure", ref, check=True)
    assert image_id(cli2, ref) == image
    assert not any(f.startswith("push-") for f in os.listdir(Path(cli.root) / "tmp"))


def test_push_refuses_a_layer_whose_blob_is_gone(reg, cli):
    ref = f"{reg.host}/broken/bb:1"
    import_image(cli, ref, ru.busybox_layer())
    diff_id = json.loads(cli("image", "inspect", ref, check=True).stdout)[0]["RootFS"]["Layers"][0]
    meta = json.loads((Path(cli.root) / "layerdb" / f"{diff_id[7:]}.json").read_text())
    os.unlink(Path(cli.root) / "blobs" / "sha256" / meta["blob"][7:])
    assert_one_line_error(cli("push", "--insecure", ref), contains="has no stored blob")
    p = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}")
    assert p.returncode != 0 and "manifest unknown" in p.stderr  # no manifest was pushed


def test_push_refuses_an_xz_layer_that_does_not_unpack_to_its_diff_id(reg, cli):
    ref = f"{reg.host}/broken/xz:1"
    import_image(cli, ref, lzma.compress(ru.busybox_layer()))
    diff_id = json.loads(cli("image", "inspect", ref, check=True).stdout)[0]["RootFS"]["Layers"][0]
    meta = json.loads((Path(cli.root) / "layerdb" / f"{diff_id[7:]}.json").read_text())
    blob = Path(cli.root) / "blobs" / "sha256" / meta["blob"][7:]
    blob.write_bytes(lzma.compress(ru.make_tar([("other", "file", b"not the layer\n", 0o644)])))
    assert_one_line_error(cli("push", ref), contains="cannot be reproduced")
    assert not any(f.startswith("push-") for f in os.listdir(Path(cli.root) / "tmp"))
    p = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}")
    assert p.returncode != 0 and "manifest unknown" in p.stderr


def test_push_errors_are_one_line(reg, cli):
    assert_one_line_error(cli("push", "--insecure", f"{reg.host}/nothing/here:1"),
                          contains="does not exist locally")
    import_image(cli, "127.0.0.1:1/bb:1", ru.busybox_layer())
    assert_one_line_error(cli("push", "--insecure", "127.0.0.1:1/bb:1"), contains="cannot connect")
    assert_one_line_error(cli("push", f"{reg.host}/x@sha256:" + "0" * 64), contains="digest")
    assert_one_line_error(cli("push"))


def test_library_push(reg, tmp_path):
    import diyc
    root = tmp_path / "libroot"
    image = import_image(Cli(root), f"{reg.host}/lib/bb:7", ru.busybox_layer())
    result = diyc.images.push(f"{reg.host}/lib/bb", tag="7", root=root)
    assert result["tag"] == "7" and remote(f"{reg.host}/lib/bb:7")["Digest"] == result["digest"]
    assert remote(f"{reg.host}/lib/bb:7", raw=True)["config"]["digest"] == image
    Cli(root)("tag", f"{reg.host}/lib/bb:7", f"{reg.host}/lib/bb:8", check=True)
    assert [r["tag"] for r in diyc.images.push(f"{reg.host}/lib/bb", all_tags=True, root=root)] == ["7", "8"]


def test_push_all_tags(reg, cli):
    first = import_image(cli, f"{reg.host}/all/bb:one", ru.busybox_layer())
    second = import_image(cli, f"{reg.host}/all/bb:two", lzma.compress(ru.busybox_layer()))
    cli("tag", f"{reg.host}/all/bb:two", f"{reg.host}/other/bb:three", check=True)  # another name
    out = cli("push", "-a", "-q", f"{reg.host}/all/bb", check=True).stdout
    assert out == f"{reg.host}/all/bb:one\n{reg.host}/all/bb:two\n"
    assert remote(f"{reg.host}/all/bb:one", raw=True)["config"]["digest"] == first
    assert remote(f"{reg.host}/all/bb:two", raw=True)["config"]["digest"] == second
    assert sorted(remote(f"{reg.host}/all/bb:one")["RepoTags"]) == ["one", "two"]
    assert_one_line_error(cli("push", "-a", f"{reg.host}/all/bb:one"), contains="--all-tags")
    assert_one_line_error(cli("push", "-a", f"{reg.host}/none/bb"), contains="does not exist locally")


# -- a registry that asks for credentials ------------------------------------

@pytest.fixture(scope="module")
def auth_reg(tmp_path_factory):
    r = ru.Registry(tmp_path_factory.mktemp("pushauthreg"), users={"alice": "s3cret"})
    try:
        yield r
    finally:
        r.stop()


def test_push_with_basic_auth(auth_reg, cli, cli2):
    ref = f"{auth_reg.host}/private/bb:1"
    image = import_image(cli, ref, ru.busybox_layer())
    assert_one_line_error(cli("push", "--insecure", ref), contains=f"diyc login {auth_reg.host}")
    # credentials the registry refuses (stored as `diyc login` stores them)
    from diyc.images.registry import store_credentials
    from diyc.state import Root
    store_credentials(Root(cli.root), auth_reg.host, "alice", "wrong")
    assert_one_line_error(cli("push", "--insecure", ref), contains="authentication required or refused")
    cli("login", "--insecure", "-u", "alice", "-p", "s3cret", auth_reg.host, check=True)
    cli("push", "--insecure", ref, check=True)
    cli2("login", "--insecure", "-u", "alice", "-p", "s3cret", auth_reg.host, check=True)
    cli2("pull", "--insecure", ref, check=True)
    assert image_id(cli2, ref) == image


# -- a token registry: Bearer challenges, a token per scope ------------------

class TokenProxy:
    """In front of the registry: answers 401 `Bearer realm=...,scope=...`
    (pull for GET/HEAD, pull,push for the rest, as distribution's token
    auth) unless the request's token grants that scope; the token server
    grants every scope asked (the token lists them).  A mount (POST
    ?mount=&from=) goes through only if the token grants pull on its
    source, else it is an upload, as distribution does; upload Locations
    are rewritten to point here."""

    def __init__(self, upstream):
        import http.server
        import urllib.error
        import urllib.parse
        import urllib.request
        self.upstream, self.log = upstream, []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def handle_any(self):
                auth = self.headers.get("Authorization") or ""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                proxy.log.append((self.command, self.path, auth))
                if url.path == "/token":
                    return self.send(200, json.dumps({"token": "tok:" + "|".join(query["scope"])}).encode())
                granted = set(auth.removeprefix("Bearer tok:").split("|")) if auth.startswith("Bearer tok:") \
                    else set()
                repo = "/".join(url.path.split("/")[2:4])
                need = f"repository:{repo}:{'pull' if self.command in ('GET', 'HEAD') else 'pull,push'}"
                if need not in granted and f"repository:{repo}:pull,push" not in granted:
                    realm = f"http://127.0.0.1:{proxy.port}/token"
                    return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}',
                                     {"WWW-Authenticate": f'Bearer realm="{realm}",service="diyc-test",'
                                                          f'scope="{need}"'})
                path = self.path
                if "mount" in query and f"repository:{query['from'][0]}:pull" not in granted:
                    path = url.path  # no right to read the source: an upload session instead
                headers = {k: v for k, v in self.headers.items()
                           if k in ("Content-Type", "Content-Length", "Accept")}
                req = urllib.request.Request(f"http://{proxy.upstream}{path}", data=body or None,
                                             method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(req) as r:
                        status, answer, got = r.status, r.read(), r.headers
                except urllib.error.HTTPError as e:
                    status, answer, got = e.code, e.read(), e.headers
                keep = {k: v for k, v in got.items()
                        if k in ("Content-Type", "Docker-Content-Digest", "Location", "Range")}
                if "Location" in keep:
                    keep["Location"] = keep["Location"].replace(proxy.upstream, f"127.0.0.1:{proxy.port}")
                return self.send(status, answer, keep, head=self.command == "HEAD")

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = handle_any

            def send(self, code, body, headers=None, head=False):
                ru.reply(self, code, body, headers, head)

        self.server, self.port = ru.serve(Handler)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_push_with_bearer_tokens_and_a_mount(reg, cli, cli2):
    proxy = TokenProxy(reg.host)
    try:
        ref = f"127.0.0.1:{proxy.port}/tok/src:1"
        image = import_image(cli, ref, ru.busybox_layer())
        cli("push", ref, check=True)
        writes = [a for m, p, a in proxy.log if m in ("POST", "PATCH", "PUT")]
        assert writes and all(a == "Bearer tok:repository:tok/src:pull,push" for a in writes[1:])
        cli2("pull", ref, check=True)
        assert image_id(cli2, ref) == image

        # to another repository: its blob mounted from the first, with a
        # token that grants pull there (asked for as docker asks for it)
        dest = f"127.0.0.1:{proxy.port}/tok/dst:1"
        cli("tag", ref, dest, check=True)
        diff_id = json.loads(cli("image", "inspect", ref, check=True).stdout)[0]["RootFS"]["Layers"][0]
        assert f"{diff_id[7:19]}: Mounted from tok/src" in cli("push", dest, check=True).stdout
        assert not [p for m, p, a in proxy.log if m == "PATCH" and "/tok/dst/" in p]  # nor its config
        assert remote(f"{reg.host}/tok/dst:1", raw=True)["config"]["digest"] == image
    finally:
        proxy.close()


def test_pushed_schema2_manifest_is_the_one_docker_wrote(reg, cli):
    """A schema2 manifest as docker formats it (3-space indent, descriptor
    fields mediaType, size, digest): pulled and pushed again, it comes out
    byte for byte, so its digest is the source's."""
    source = remote(f"{reg.host}/src/layered:schema2", raw=True)
    docker = {"schemaVersion": 2, "mediaType": ru.MT_DOCKER_MANIFEST,
              "config": {k: source["config"][k] for k in ("mediaType", "size", "digest")},
              "layers": [{k: x[k] for k in ("mediaType", "size", "digest")} for x in source["layers"]]}
    body = json.dumps(docker, indent=3).encode()
    for desc in [source["config"]] + source["layers"]:
        with open(reg.blob_data(desc["digest"]), "rb") as f:
            reg.push_blob("src/dockerfmt", f.read())
    digest = reg.push_manifest("src/dockerfmt", "v1", body, ru.MT_DOCKER_MANIFEST)
    cli("pull", "--insecure", f"{reg.host}/src/dockerfmt:v1", check=True)
    cli("tag", f"{reg.host}/src/dockerfmt:v1", f"{reg.host}/again/dockerfmt:v1", check=True)
    out = cli("push", "--insecure", f"{reg.host}/again/dockerfmt:v1", check=True).stdout
    assert out.splitlines()[-1] == f"v1: digest: {digest} size: {len(body)}"
