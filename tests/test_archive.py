"""`diyc load` (docker save, old and Docker 25+; OCI layout archives) and
`diyc save` (OCI archive)."""

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry_util as ru  # noqa: E402
from test_registry import diyc, ok  # noqa: E402

CONFIG = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "WHO=archive"], "Cmd": ["sh", "-c", "echo $WHO; ls /data"],
          "WorkingDir": "/data"}


def image_config(layers, config=CONFIG):
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z", "config": config,
           "rootfs": {"type": "layers", "diff_ids": [ru.sha256(t) for t, _ in layers]}}
    return json.dumps(cfg).encode()


def write_tar(path, files):
    """files: [(name, bytes) or (name, ('symlink', target))]."""
    with tarfile.open(path, "w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def oci_files(layers, config_bytes, ref_name=None, compress=True):
    files, descs = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')], []
    for tar, _ in layers:
        blob = gzip.compress(tar, 1, mtime=0) if compress else tar
        files.append((f"blobs/sha256/{ru.sha256(blob)[7:]}", blob))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else ""),
                      "digest": ru.sha256(blob), "size": len(blob)})
    files.append((f"blobs/sha256/{ru.sha256(config_bytes)[7:]}", config_bytes))
    manifest = json.dumps({"schemaVersion": 2, "config": {"mediaType": ru.MT_OCI_CONFIG,
                           "digest": ru.sha256(config_bytes), "size": len(config_bytes)},
                           "layers": descs}).encode()
    files.append((f"blobs/sha256/{ru.sha256(manifest)[7:]}", manifest))
    desc = {"mediaType": ru.MT_OCI_MANIFEST, "digest": ru.sha256(manifest), "size": len(manifest)}
    if ref_name:
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
    files.append(("index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()))
    return files, descs


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


@pytest.fixture(scope="module")
def layers():
    return ru.layered_image_layers()


def check_runs(root, ref):
    p = ok(root, "run", "--rm", ref)
    assert p.stdout.split() == ["archive", "keep"]


def test_load_old_docker_save_with_symlinked_layer(tmp_path, root, layers):
    config = image_config(layers)
    cfg2 = image_config(layers[:1], {"Cmd": ["sh"], "Env": ["X=2"]})
    files = [(f"{ru.sha256(config)[7:]}.json", config), (f"{ru.sha256(cfg2)[7:]}.json", cfg2)]
    names = []
    for i, (tar, _) in enumerate(layers):
        files.append((f"layer{i}/layer.tar", tar))
        names.append(f"layer{i}/layer.tar")
    files.append(("other/layer.tar", ("symlink", "../layer0/layer.tar")))
    manifest = [{"Config": f"{ru.sha256(config)[7:]}.json", "RepoTags": ["old/save:1"], "Layers": names},
                {"Config": f"{ru.sha256(cfg2)[7:]}.json", "RepoTags": ["old/base:1"],
                 "Layers": ["other/layer.tar"]}]
    files.append(("manifest.json", json.dumps(manifest).encode()))
    write_tar(tmp_path / "old.tar", files)
    p = ok(root, "load", "-i", str(tmp_path / "old.tar"))
    assert "Loaded image: old/save:1" in p.stdout and "already exists" in p.stdout
    img = json.loads(ok(root, "image", "inspect", "old/save:1").stdout)[0]
    assert img["id"] == ru.sha256(config)
    check_runs(root, "old/save:1")
    assert len(os.listdir(root / "layers")) == 3


def test_load_docker25_and_oci_layout(tmp_path, root, layers):
    config = image_config(layers)
    files, descs = oci_files(layers, config)
    manifest = [{"Config": f"blobs/sha256/{ru.sha256(config)[7:]}", "RepoTags": ["new/save:25"],
                 "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in descs]}]
    write_tar(tmp_path / "d25.tar", files + [("manifest.json", json.dumps(manifest).encode())])
    ok(root, "load", "-i", str(tmp_path / "d25.tar"))
    check_runs(root, "new/save:25")
    # a plain OCI layout archive (uncompressed layers), named by its annotation
    root2 = tmp_path / "root2"
    files, _ = oci_files(layers, config, ref_name="example.com/oci/img:v2", compress=False)
    write_tar(tmp_path / "oci.tar", files)
    ok(root2, "load", "-i", str(tmp_path / "oci.tar"))
    check_runs(root2, "example.com/oci/img:v2")


def test_save_then_load_roundtrip_and_skopeo_reads_it(tmp_path, root, layers):
    config = image_config(layers)
    files, _ = oci_files(layers, config, ref_name="example.com/rt/img:1")
    write_tar(tmp_path / "in.tar", files)
    ok(root, "load", "-i", str(tmp_path / "in.tar"))
    ok(root, "tag", "example.com/rt/img:1", "rt:latest")
    ok(root, "save", "-o", str(tmp_path / "out.tar"), "rt:latest")
    with tarfile.open(tmp_path / "out.tar") as tar:
        names = set(tar.getnames())
        index = json.load(tar.extractfile("index.json"))
    assert {"oci-layout", "index.json", "manifest.json"} <= names
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "rt:latest"
    root2 = tmp_path / "root2"
    ok(root2, "load", "-i", str(tmp_path / "out.tar"))
    img = json.loads(ok(root2, "image", "inspect", "rt").stdout)[0]
    assert img["id"] == ru.sha256(config)
    check_runs(root2, "rt")
    if shutil.which("skopeo"):
        out = subprocess.run(["skopeo", "inspect", "--config", f"oci-archive:{tmp_path / 'out.tar'}"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["rootfs"]["diff_ids"] == img["layers"]
    # the built-in busybox image (made by `import`) can be saved too
    ok(root2, "run", "--rm", "busybox", "true")
    ok(root2, "save", "-o", str(tmp_path / "bb.tar"), "busybox")
    root3 = tmp_path / "root3"
    ok(root3, "load", "-i", str(tmp_path / "bb.tar"))
    assert ok(root3, "run", "--rm", "busybox:latest", "echo", "ok").stdout == "ok\n"


def test_load_skopeo_oci_archive(tmp_path, root):
    if not shutil.which("skopeo"):
        pytest.skip("skopeo not installed")
    reg = ru.Registry(tmp_path / "reg")
    try:
        reg.push_image("sk/img", "latest", ru.layered_image_layers(), config=CONFIG)
        out = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{reg.host}/sk/img:latest",
                              f"oci-archive:{tmp_path / 'sk.tar'}:sk/img:latest"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    finally:
        reg.stop()
    ok(root, "load", "-i", str(tmp_path / "sk.tar"))
    check_runs(root, "sk/img:latest")


def _expect_failure(root, args, message):
    ok(root, "images")
    before = ru.store_snapshot(root)
    p = diyc(root, *args)
    assert p.returncode == 125, (p.stdout, p.stderr)
    assert message in p.stderr, p.stderr
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert ru.store_snapshot(root) == before
    assert os.listdir(root / "tmp") == []


def test_load_rejects_dotdot_entry(tmp_path, root, layers):
    config = image_config(layers)
    files, _ = oci_files(layers, config, ref_name="x/y:1")
    write_tar(tmp_path / "evil.tar", files + [("../evil", b"x")])
    _expect_failure(root, ["load", "-i", str(tmp_path / "evil.tar")], "escapes the layer with '..'")
    write_tar(tmp_path / "evil2.tar", files + [("blobs/link", ("symlink", "../../etc/passwd"))])
    _expect_failure(root, ["load", "-i", str(tmp_path / "evil2.tar")], "unsafe link")


def test_load_rejects_bad_blob_and_bad_diff_id(tmp_path, root, layers):
    config = image_config(layers)
    files, descs = oci_files(layers, config, ref_name="x/y:1")
    # the last layer's blob replaced by other content under the same name
    bad = [(n, d) if n != f"blobs/sha256/{descs[-1]['digest'][7:]}" else (n, gzip.compress(b"garbage" * 100))
           for n, d in files]
    write_tar(tmp_path / "bad.tar", bad)
    _expect_failure(root, ["load", "-i", str(tmp_path / "bad.tar")], "digest mismatch")
    # a config whose diff-ids do not match the layers (old format, no blob digests)
    cfg = json.loads(config)
    cfg["rootfs"]["diff_ids"][1] = "sha256:" + "0" * 64
    cfg = json.dumps(cfg).encode()
    files = [("c.json", cfg), ("manifest.json", json.dumps(
        [{"Config": "c.json", "RepoTags": ["x/z:1"], "Layers": [f"l{i}.tar" for i in range(3)]}]).encode())]
    files += [(f"l{i}.tar", t) for i, (t, _) in enumerate(layers)]
    write_tar(tmp_path / "bad2.tar", files)
    _expect_failure(root, ["load", "-i", str(tmp_path / "bad2.tar")], "diff-id mismatch")
    _expect_failure(root, ["load", "-i", str(tmp_path / "missing.tar")], "cannot read")
