"""`diyc pull` from a deliberately malicious registry: a real HTTP server on
127.0.0.1 (tests/hostile_server.py) that serves one small, valid image -
except for what each case changes: a 200 MB manifest, 200k headers, bad
framing, wrongly typed manifests and configs, a blob that stalls or ends
early.

Every case: exit 125, one `diyc: ...` line naming the problem, no
traceback, the store unchanged (no tmp file left either) and the peak
memory of the diyc process small (its ru_maxrss, from wait4)."""

import copy
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile_server as hs  # noqa: E402
import registry_util as ru  # noqa: E402
from conftest import DIYC, assert_one_line_error  # noqa: E402

REPO, TAG = "evil/image", "v1"
MANIFEST_PATH = f"/v2/{REPO}/manifests/{TAG}"
MAX_RSS_KB = 100 * 1024
TIMEOUT = "1"  # DIYC_REGISTRY_TIMEOUT of the stall cases, seconds

LAYER = ru.make_tar([("hello", "file", b"hello from a hostile registry\n", 0o644)])
LAYER_DIGEST = ru.sha256(LAYER)
BLOB_PATH = f"/v2/{REPO}/blobs/{LAYER_DIGEST}"
CONFIG = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
          "rootfs": {"type": "layers", "diff_ids": [LAYER_DIGEST]}}


def manifest_for(config_bytes):
    return {"schemaVersion": 2, "mediaType": ru.MT_OCI_MANIFEST,
            "config": {"mediaType": ru.MT_OCI_CONFIG, "digest": ru.sha256(config_bytes),
                       "size": len(config_bytes)},
            "layers": [{"mediaType": ru.LAYER_TYPES[(True, None)], "digest": LAYER_DIGEST,
                        "size": len(LAYER)}]}


def image(manifest=None, config=None, manifest_route=None, layer_route=None, config_route=None,
          framing="length", connection=None, version="HTTP/1.1"):
    """The routes of the image, with what a case changes: `manifest` and
    `config` are functions that edit (or replace) the documents."""
    cfg = copy.deepcopy(CONFIG)
    if config:
        cfg = config(cfg) or cfg
    config_bytes = cfg if isinstance(cfg, bytes) else json.dumps(cfg).encode()
    man = manifest_for(config_bytes)
    if manifest:
        man = manifest(man) or man
    manifest_bytes = man if isinstance(man, bytes) else json.dumps(man).encode()

    def answer(body, content_type="application/octet-stream"):
        return hs.respond(body, content_type=content_type, framing=framing, connection=connection,
                          version=version)
    return {
        "/v2/": answer(b"{}", "application/json"),
        MANIFEST_PATH: manifest_route or answer(manifest_bytes, ru.MT_OCI_MANIFEST),
        f"/v2/{REPO}/blobs/{ru.sha256(config_bytes)}": config_route or answer(config_bytes),
        BLOB_PATH: layer_route or answer(LAYER),
    }


def edit(fn):
    """A manifest/config editor from a function that changes it in place."""
    def editor(doc):
        fn(doc)
        return doc
    return editor


def manifest_head(headers, body=b""):
    return hs.raw(hs.head(headers=[("Content-Type", ru.MT_OCI_MANIFEST), *headers]) + body)


def layer_head(headers, body=b""):
    return hs.head(headers=[("Content-Type", "application/octet-stream"), *headers]) + body


def bearer(server):
    """401 with a Bearer challenge whose realm, on the same server, answers
    with 200 MB."""
    server.routes["/token"] = hs.stream(hs.head(headers=[("Content-Type", "application/json")],
                                                version="HTTP/1.0") + b'{"token": "')
    challenge = f'Bearer realm="http://{server.host}/token",service="evil"'
    return hs.raw(hs.head("401 Unauthorized", [("WWW-Authenticate", challenge), ("Content-Length", "0")]),
                  then=None)


MB200 = str(200 << 20)

# (id, routes(server), what the error line says, extra environment)
CASES = [
    # -- item 7: sizes are capped ------------------------------------------
    ("manifest-200MB-announced", lambda s: image(manifest_route=hs.stream(
        hs.head(headers=[("Content-Type", ru.MT_OCI_MANIFEST), ("Content-Length", MB200)]))),
     "is too large: 209715200 bytes announced, the limit is 4194304", None),
    ("manifest-200MB-chunked", lambda s: image(manifest_route=hs.stream(
        hs.head(headers=[("Content-Type", ru.MT_OCI_MANIFEST), ("Transfer-Encoding", "chunked")]),
        piece=b"100000\r\n" + b" " * (1 << 20) + b"\r\n")),
     "manifest 127.0.0.1", None),
    ("manifest-200MB-until-close", lambda s: image(manifest_route=hs.stream(
        hs.head(headers=[("Content-Type", ru.MT_OCI_MANIFEST)], version="HTTP/1.0"))),
     "is too large: more than 4194304 bytes", None),
    ("index-200MB", lambda s: image(manifest_route=hs.stream(
        hs.head(headers=[("Content-Type", ru.MT_OCI_INDEX)], version="HTTP/1.0"),
        piece=b'{"schemaVersion": 2, "manifests": [' + b"{}, " * (1 << 18))),
     "is too large: more than 4194304 bytes", None),
    ("config-declared-200MB", lambda s: image(manifest=edit(lambda m: m["config"].update(size=200 << 20))),
     "image config sha256:", None),
    ("config-sends-200MB", lambda s: image(config_route=hs.stream(hs.head(version="HTTP/1.0"))),
     "is too large: more than 4194304 bytes", None),
    ("headers-200k", lambda s: image(manifest_route=hs.stream(
        b"HTTP/1.1 200 OK\r\n", piece=b"".join(b"X-Header-%d: value\r\n" % i for i in range(1000)))),
     "more than 100 header fields", None),
    ("headers-total-size", lambda s: image(manifest_route=manifest_head(
        [(f"X-H{i}", "v" * 1000) for i in range(99)])),
     "headers larger than 65536 bytes", None),
    ("header-line-200MB", lambda s: image(manifest_route=hs.stream(b"HTTP/1.1 200 OK\r\nX-Long: ")),
     "header line longer than 65536 bytes", None),
    ("status-line-200MB", lambda s: image(manifest_route=hs.stream(b"HTTP/1.1 200 ")),
     "status line longer than 65536 bytes", None),
    ("chunk-size-line-200MB", lambda s: image(manifest_route=hs.stream(
        hs.head(headers=[("Transfer-Encoding", "chunked")]) + b"10;ext=")),
     "chunk-size line longer than 4096 bytes", None),
    ("chunk-size-2^64", lambda s: image(manifest_route=manifest_head(
        [("Transfer-Encoding", "chunked")], b"ffffffffffffffff\r\n")),
     "chunk of 18446744073709551615 bytes, more than the limit", None),
    ("layer-announces-200MB", lambda s: image(layer_route=hs.stream(layer_head([("Content-Length", MB200)]))),
     f"layer {LAYER_DIGEST}: the registry announces 209715200 bytes, its manifest declares {len(LAYER)}",
     None),
    ("layer-sends-200MB-until-close", lambda s: image(layer_route=hs.stream(
        hs.head(version="HTTP/1.0") + LAYER)),
     f"layer {LAYER_DIGEST}: the registry sends more than the {len(LAYER)} bytes its manifest declares",
     None),
    ("layer-sends-200MB-chunked", lambda s: image(layer_route=hs.stream(
        layer_head([("Transfer-Encoding", "chunked")], b"%x\r\n%s\r\n" % (len(LAYER), LAYER)),
        piece=b"100000\r\n" + b"\0" * (1 << 20) + b"\r\n")),
     f"the registry sends more than the {len(LAYER)} bytes its manifest declares", None),
    ("token-200MB", lambda s: image(manifest_route=bearer(s)),
     "the answer of token server 127.0.0.1", None),
    ("trailers-endless", lambda s: image(manifest_route=hs.stream(
        layer_head([("Transfer-Encoding", "chunked")], b"0\r\n"), piece=b"X-Trailer: v\r\n" * 1000)),
     "more than 100 trailer fields", None),

    # -- item 8: malformed manifests and configs -----------------------------
    ("manifest-not-json", lambda s: image(manifest=lambda m: b"<html>not json</html>"),
     "malformed manifest for evil/image:v1", None),
    ("manifest-deeply-nested", lambda s: image(manifest=lambda m: b"[" * 100_000),
     "malformed manifest for evil/image:v1", None),
    ("manifest-a-list", lambda s: image(manifest=lambda m: b"[1, 2]"),
     "malformed manifest for evil/image:v1: not a JSON object", None),
    ("manifest-schemaVersion-3", lambda s: image(manifest=edit(lambda m: m.update(schemaVersion=3))),
     "schemaVersion is 3, expected 2", None),
    ("manifest-mediaType-number", lambda s: image(manifest=edit(lambda m: m.update(mediaType=5))),
     "mediaType is 5", None),
    ("manifest-mediaType-unknown", lambda s: image(manifest=edit(
        lambda m: m.update(mediaType="application/vnd.evil+json"))),
     "unsupported manifest type 'application/vnd.evil+json'", None),
    ("config-without-digest", lambda s: image(manifest=edit(lambda m: m["config"].pop("digest"))),
     "config has an invalid digest None", None),
    ("layers-not-a-list", lambda s: image(manifest=edit(lambda m: m.update(layers={"a": 1}))),
     "layers is not a list: {'a': 1}", None),
    ("layers-missing", lambda s: image(manifest=edit(lambda m: m.pop("layers"))),
     "layers is not a list: None", None),
    ("layer-not-an-object", lambda s: image(manifest=edit(lambda m: m.update(layers=["sha256:00"]))),
     "layer 0 is not a JSON object", None),
    ("layer-without-digest", lambda s: image(manifest=edit(lambda m: m["layers"][0].pop("digest"))),
     "layer 0 has an invalid digest None", None),
    ("layer-digest-a-number", lambda s: image(manifest=edit(lambda m: m["layers"][0].update(digest=12))),
     "layer 0 has an invalid digest 12", None),
    ("layer-digest-huge", lambda s: image(manifest=edit(lambda m: m["layers"][0].update(digest="x" * 1000000))),
     "layer 0 has an invalid digest 'xxxx", None),
    ("layer-size-negative", lambda s: image(manifest=edit(lambda m: m["layers"][0].update(size=-5))),
     "layer 0 has an invalid size -5", None),
    ("layer-size-a-string", lambda s: image(manifest=edit(lambda m: m["layers"][0].update(size="10240"))),
     "layer 0 has an invalid size '10240'", None),
    ("layer-size-a-bool", lambda s: image(manifest=edit(lambda m: m["layers"][0].update(size=True))),
     "layer 0 has an invalid size True", None),
    ("layer-size-missing", lambda s: image(manifest=edit(lambda m: m["layers"][0].pop("size"))),
     "layer 0 has an invalid size None", None),
    ("layer-mediaType-unknown", lambda s: image(manifest=edit(
        lambda m: m["layers"][0].update(mediaType="application/x-evil"))),
     "layer 0 has an unsupported mediaType 'application/x-evil'", None),
    ("layer-mediaType-missing", lambda s: image(manifest=edit(lambda m: m["layers"][0].pop("mediaType"))),
     "layer 0 has no mediaType", None),
    ("config-not-an-object", lambda s: image(manifest=edit(lambda m: m.update(config=[1]))),
     "config is not a JSON object", None),
    ("config-mediaType-unknown", lambda s: image(manifest=edit(
        lambda m: m["config"].update(mediaType="application/vnd.cncf.helm.config.v1+json"))),
     "config has an unsupported mediaType", None),
    ("image-config-not-json", lambda s: image(config=lambda c: b"\xff\xfe garbage"),
     "malformed image config", None),
    ("image-config-a-list", lambda s: image(config=lambda c: b"[]"),
     "is not a JSON object", None),
    ("diff-ids-a-string", lambda s: image(config=edit(lambda c: c["rootfs"].update(diff_ids=LAYER_DIGEST))),
     "rootfs.diff_ids is not a list", None),
    ("rootfs-a-string", lambda s: image(config=edit(lambda c: c.update(rootfs="layers"))),
     "rootfs.diff_ids is not a list", None),
    ("diff-ids-too-many", lambda s: image(config=edit(lambda c: c["rootfs"]["diff_ids"].append(LAYER_DIGEST))),
     "the manifest lists 1 layers, the config 2 diff-ids", None),
    ("diff-id-not-a-digest", lambda s: image(config=edit(lambda c: c["rootfs"].update(diff_ids=[7]))),
     "invalid diff-id 7", None),
    ("image-config-config-a-string", lambda s: image(config=edit(lambda c: c.update(config="sh"))),
     "image config: config must be a JSON object", None),
    ("image-config-env-a-string", lambda s: image(config=edit(lambda c: c["config"].update(Env="PATH=/"))),
     "image config: Env must be a list of strings", None),
    ("image-config-cmd-a-number", lambda s: image(config=edit(lambda c: c["config"].update(Cmd=5))),
     "image config: Cmd must be a list of strings", None),
    ("image-config-entrypoint-numbers", lambda s: image(config=edit(lambda c: c["config"].update(Entrypoint=[1]))),
     "image config: Entrypoint must be a list of strings", None),
    ("image-config-workdir-a-number", lambda s: image(config=edit(lambda c: c["config"].update(WorkingDir=5))),
     "image config: WorkingDir must be a string", None),
    ("image-config-user-a-list", lambda s: image(config=edit(lambda c: c["config"].update(User=["x"]))),
     "image config: User must be a string", None),
    ("index-manifests-not-a-list", lambda s: image(manifest=lambda m: {
        "schemaVersion": 2, "mediaType": ru.MT_OCI_INDEX, "manifests": "all of them"}),
     "manifests is not a list", None),
    ("index-platform-a-string", lambda s: image(manifest=lambda m: {
        "schemaVersion": 2, "mediaType": ru.MT_OCI_INDEX,
        "manifests": [{"mediaType": ru.MT_OCI_MANIFEST, "digest": LAYER_DIGEST, "size": 1,
                       "platform": "linux/amd64"}]}),
     "entry 0 has a malformed platform 'linux/amd64'", None),

    # -- item 8: bad framing ---------------------------------------------------
    ("content-length-abc", lambda s: image(manifest_route=manifest_head([("Content-Length", "abc")], b"{}")),
     "bad Content-Length 'abc'", None),
    ("content-length-12abc", lambda s: image(manifest_route=manifest_head([("Content-Length", "12abc")], b"{}")),
     "bad Content-Length '12abc'", None),
    ("content-length-two-values", lambda s: image(manifest_route=manifest_head([("Content-Length", "2, 3")],
                                                                               b"{}")),
     "bad Content-Length '2, 3': different values", None),
    ("content-length-negative", lambda s: image(manifest_route=manifest_head([("Content-Length", "-5")], b"{}")),
     "bad Content-Length '-5'", None),
    ("manifest-shorter-than-content-length", lambda s: image(manifest_route=manifest_head(
        [("Content-Length", "1000")], b'{"schemaVersion": 2}')),
     "closed the connection with 980 of 1000 bytes of the body not sent", None),
    ("transfer-encoding-gzip", lambda s: image(manifest_route=manifest_head(
        [("Transfer-Encoding", "gzip, chunked")], b"0\r\n\r\n")),
     "unsupported Transfer-Encoding", None),
    ("redirect-to-garbage", lambda s: image(manifest_route=hs.raw(
        hs.head("307 Temporary Redirect", [("Location", "http://[::1"), ("Content-Length", "0")]))),
     "bad redirect to 'http://[::1'", None),
    ("error-body-json-of-wrong-type", lambda s: image(manifest_route=hs.respond(
        b'{"errors": "nope"}', status="500 Internal Server Error")),
     "HTTP 500", None),

    # -- item 10: stalls and early ends are reported as such -----------------
    ("layer-stalls", lambda s: image(layer_route=hs.raw(
        layer_head([("Content-Length", str(len(LAYER)))], LAYER[:10]), then="stall")),
     f"pull 127.0.0.1:PORT/evil/image:v1: layer {LAYER_DIGEST}: timed out after 1 s with 10 of "
     f"{len(LAYER)} bytes", {"DIYC_REGISTRY_TIMEOUT": TIMEOUT}),
    ("layer-closes-early", lambda s: image(layer_route=hs.raw(
        layer_head([("Content-Length", str(len(LAYER)))], LAYER[:10]))),
     f"layer {LAYER_DIGEST}: connection closed after 10 of {len(LAYER)} bytes", None),
    ("layer-closes-early-until-close", lambda s: image(layer_route=hs.raw(
        hs.head(version="HTTP/1.0") + LAYER[:10])),
     f"layer {LAYER_DIGEST}: connection closed after 10 of {len(LAYER)} bytes", None),
    ("layer-closes-early-chunked", lambda s: image(layer_route=hs.raw(
        layer_head([("Transfer-Encoding", "chunked")], b"%x\r\n%s" % (len(LAYER), LAYER[:10])))),
     f"layer {LAYER_DIGEST}: connection closed after 10 of {len(LAYER)} bytes", None),
    ("manifest-stalls", lambda s: image(manifest_route=hs.raw(b"HTTP/1.1 200 OK\r\n", then="stall")),
     "registry 127.0.0.1:PORT: no response after 1 s", {"DIYC_REGISTRY_TIMEOUT": TIMEOUT}),
    ("manifest-body-stalls", lambda s: image(manifest_route=hs.raw(
        hs.head(headers=[("Content-Length", "100")]) + b"{", then="stall")),
     "manifest 127.0.0.1:PORT/evil/image:v1: timed out after 1 s", {"DIYC_REGISTRY_TIMEOUT": TIMEOUT}),
    ("timeout-setting-invalid", lambda s: image(),
     "invalid DIYC_REGISTRY_TIMEOUT 'soon'", {"DIYC_REGISTRY_TIMEOUT": "soon"}),
]


@pytest.fixture
def server():
    s = hs.HostileServer()
    yield s
    s.close()


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    assert run_diyc(root, "images").returncode == 0  # the store's layout
    return root


class Run:
    def __init__(self, returncode, stdout, stderr, maxrss_kb):
        self.returncode, self.stdout, self.stderr, self.maxrss_kb = returncode, stdout, stderr, maxrss_kb


def run_diyc(root, *args, env=None, timeout=60):
    """The diyc command, reaped with wait4 for its peak RSS."""
    full_env = dict(os.environ, DIYC_ROOT=str(root))
    full_env.pop("DIYC_REGISTRY_TIMEOUT", None)
    full_env.update(env or {})
    return run_reaped(DIYC + list(args), full_env, timeout)


def inherited_rss_kb():
    """The peak RSS wait4 reports for a program that does nothing: a child
    forked from this (large) test process starts with its pages counted, so
    that much of any child's figure is ours, not its own."""
    return run_reaped(["true"], dict(os.environ), 10).maxrss_kb


def run_reaped(argv, full_env, timeout):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=full_env)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(proc.returncode, out.read().decode(), err.read().decode(), usage.ru_maxrss)


def store_state(root):
    return ru.store_snapshot(root), sorted(os.listdir(root / "tmp"))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_registry(server, root, case):
    _, routes, message, env = case
    server.routes.update(routes(server))
    before = store_state(root)
    p = run_diyc(root, "pull", "--insecure", f"{server.host}/{REPO}:{TAG}", env=env)
    assert_one_line_error(p, 125, contains=message.replace("PORT", str(server.port)))
    assert store_state(root) == before
    assert not os.listdir(root / "tmp")
    own_kb = p.maxrss_kb - inherited_rss_kb()
    assert own_kb < MAX_RSS_KB, f"peak RSS {p.maxrss_kb} kB, {own_kb} kB of it diyc's own"


# -- framing an honest registry may use: the pull works ------------------------

def test_framing_variants_pull_fine(server, root):
    """Chunked bodies (extensions, trailers), HTTP/1.0 bodies that end with
    the connection, a repeated equal Content-Length: the image arrives."""
    image_id = ru.sha256(json.dumps(CONFIG).encode())
    ref = f"{server.host}/{REPO}:{TAG}"
    for variant in (dict(framing="chunked"), dict(framing="close", version="HTTP/1.0")):
        server.routes.update(image(**variant))
        p = run_diyc(root, "pull", "--insecure", ref)
        assert p.returncode == 0, (variant, p.stderr)
        assert json.loads(run_diyc(root, "image", "inspect", ref).stdout)[0]["Id"] == image_id
        assert run_diyc(root, "rmi", ref).returncode == 0
    config_bytes = json.dumps(CONFIG).encode()
    server.routes.update(image(
        config_route=hs.raw(b"HTTP/1.1 200 OK\r\nContent-Length: %d, %d\r\n\r\n%s"
                            % (len(config_bytes), len(config_bytes), config_bytes), then=None),
        layer_route=hs.raw(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\ncontent-length: %d\r\n\r\n%s"
                           % (len(LAYER), len(LAYER), LAYER), then=None)))
    p = run_diyc(root, "pull", "--insecure", ref)
    assert p.returncode == 0, p.stderr
    assert run_diyc(root, "rmi", ref).returncode == 0


def test_keep_alive_and_connection_close(server, root):
    """One connection for the whole pull; with `Connection: close` (the
    server then leaves its end open) one per request, no stale reuse."""
    ref = f"{server.host}/{REPO}:{TAG}"
    server.routes.update(image())
    assert run_diyc(root, "pull", "--insecure", ref).returncode == 0
    assert server.connections == 1 and len(server.requests) == 3
    assert run_diyc(root, "rmi", ref).returncode == 0

    def keep_open(route):
        def wrapped(sock, srv):
            route(sock, srv)
            srv.release.wait(120)
            return hs.CLOSE
        return wrapped
    server.routes.update({path: keep_open(route) for path, route in image(connection="close").items()})
    server.connections, server.requests[:] = 0, []
    p = run_diyc(root, "pull", "--insecure", ref, env={"DIYC_REGISTRY_TIMEOUT": "20"})
    assert p.returncode == 0, p.stderr
    assert server.connections == 3 and len(server.requests) == 3
    assert run_diyc(root, "rmi", ref).returncode == 0
