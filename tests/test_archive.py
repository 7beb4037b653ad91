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
    p = ok(root, "run", "--network", "none", "--rm", ref)
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
    assert img["Id"] == ru.sha256(config)
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
    assert img["Id"] == ru.sha256(config)
    check_runs(root2, "rt")
    if shutil.which("skopeo"):
        out = subprocess.run(["skopeo", "inspect", "--config", f"oci-archive:{tmp_path / 'out.tar'}"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["rootfs"]["diff_ids"] == img["RootFS"]["Layers"]
    # the built-in busybox image (made by `import`) can be saved too
    ok(root2, "run", "--network", "none", "--rm", "busybox", "true")
    ok(root2, "save", "-o", str(tmp_path / "bb.tar"), "busybox")
    root3 = tmp_path / "root3"
    ok(root3, "load", "-i", str(tmp_path / "bb.tar"))
    assert ok(root3, "run", "--network", "none", "--rm", "busybox:latest", "echo", "ok").stdout == "ok\n"


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


# -- rejected archives (#17 items 8 and 10): one line, exit 125, store unchanged --

SMALL_LAYER = ru.make_tar([("hello", "file", b"hello\n", 0o644)])
SMALL_CONFIG = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": [ru.sha256(SMALL_LAYER)]}}


def write_archive(path, files):
    """files: [(name, bytes | ("symlink"|"hardlink", target) | ("dir",))]."""
    kinds = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}
    with tarfile.open(path, "w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                info.type = kinds[data[0]]
                info.linkname = data[1] if len(data) > 1 else ""
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _j(value):
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def docker_save(manifest=None, config=SMALL_CONFIG, extra=()):
    """A docker-save archive of SMALL_LAYER, with `manifest` or `config` replaced."""
    if manifest is None:
        manifest = [{"Config": "config.json", "RepoTags": ["bad/img:1"], "Layers": ["l/layer.tar"]}]
    return [("config.json", _j(config)), ("l/layer.tar", SMALL_LAYER), *extra,
            ("manifest.json", _j(manifest))]


def oci_layout(index=None, manifest=None, config=SMALL_CONFIG, annotations=None):
    """An OCI layout archive of SMALL_LAYER, with parts replaced."""
    config_bytes = _j(config)
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
             (f"blobs/sha256/{ru.sha256(SMALL_LAYER)[7:]}", SMALL_LAYER),
             (f"blobs/sha256/{ru.sha256(config_bytes)[7:]}", config_bytes)]
    if manifest is None:
        manifest = {"schemaVersion": 2, "mediaType": ru.MT_OCI_MANIFEST,
                    "config": {"mediaType": ru.MT_OCI_CONFIG, "digest": ru.sha256(config_bytes),
                               "size": len(config_bytes)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                "digest": ru.sha256(SMALL_LAYER), "size": len(SMALL_LAYER)}]}
    manifest_bytes = _j(manifest)
    files.append((f"blobs/sha256/{ru.sha256(manifest_bytes)[7:]}", manifest_bytes))
    if index is None:
        desc = {"mediaType": ru.MT_OCI_MANIFEST, "digest": ru.sha256(manifest_bytes),
                "size": len(manifest_bytes),
                "annotations": {"io.containerd.image.name": "bad/oci:1"} if annotations is None else annotations}
        index = {"schemaVersion": 2, "manifests": [desc]}
    files.append(("index.json", _j(index)))
    return files


def _nested_index(manifests):
    """An OCI layout whose index points at an index with `manifests`."""
    inner = _j({"schemaVersion": 2, "mediaType": ru.MT_OCI_INDEX, "manifests": manifests})
    files = oci_layout(index={"schemaVersion": 2, "manifests": [
        {"mediaType": ru.MT_OCI_INDEX, "digest": ru.sha256(inner), "size": len(inner)}]})
    return files + [(f"blobs/sha256/{ru.sha256(inner)[7:]}", inner)]


_GOOD_LAYERS = ["l/layer.tar"]
BAD_ARCHIVES = {
    # docker save: manifest.json
    "manifest-garbage": lambda: docker_save(manifest=b"\x00\xffnot json{"),
    "manifest-object": lambda: docker_save(manifest={"Config": "config.json"}),
    "manifest-empty": lambda: docker_save(manifest=[]),
    "manifest-entry-number": lambda: docker_save(manifest=[1]),
    "manifest-deeply-nested": lambda: docker_save(manifest=b"[" * 200000),
    "manifest-without-config": lambda: docker_save(manifest=[{"Layers": _GOOD_LAYERS}]),
    "manifest-config-number": lambda: docker_save(manifest=[{"Config": 5, "Layers": _GOOD_LAYERS}]),
    "manifest-config-absent": lambda: docker_save(manifest=[{"Config": "nope.json", "Layers": _GOOD_LAYERS}]),
    "manifest-config-absolute": lambda: docker_save(manifest=[{"Config": "/etc/passwd", "Layers": _GOOD_LAYERS}]),
    "manifest-layers-string": lambda: docker_save(manifest=[{"Config": "config.json", "Layers": "l/layer.tar"}]),
    "manifest-layers-numbers": lambda: docker_save(manifest=[{"Config": "config.json", "Layers": [1]}]),
    "manifest-layer-absent": lambda: docker_save(manifest=[{"Config": "config.json", "Layers": ["x.tar"]}]),
    "manifest-layer-is-dir": lambda: docker_save(manifest=[{"Config": "config.json", "Layers": ["d"]}],
                                                 extra=[("d", ("dir",))]),
    "manifest-repotags-string": lambda: docker_save(
        manifest=[{"Config": "config.json", "RepoTags": "a:1", "Layers": _GOOD_LAYERS}]),
    "manifest-repotag-invalid": lambda: docker_save(
        manifest=[{"Config": "config.json", "RepoTags": ["UPPER/Case:1"], "Layers": _GOOD_LAYERS}]),
    "second-image-broken": lambda: docker_save(manifest=[
        {"Config": "config.json", "RepoTags": ["bad/img:1"], "Layers": _GOOD_LAYERS},
        {"Config": "nope.json", "RepoTags": ["bad/img:2"], "Layers": _GOOD_LAYERS}]),
    # docker save: the image config
    "config-garbage": lambda: docker_save(config=b"{{{"),
    "config-list": lambda: docker_save(config=[1, 2]),
    "config-without-rootfs": lambda: docker_save(config={"architecture": "amd64"}),
    "config-rootfs-string": lambda: docker_save(config={"rootfs": "layers"}),
    "config-diff-ids-string": lambda: docker_save(config={"rootfs": {"diff_ids": "sha256:x"}}),
    "config-diff-ids-numbers": lambda: docker_save(config={"rootfs": {"diff_ids": [1]}}),
    # links inside the archive
    "hardlink-absolute": lambda: docker_save()[:-1] + [("manifest.json", ("hardlink", "/etc/passwd"))],
    "hardlink-missing": lambda: docker_save()[:-1] + [("manifest.json", ("hardlink", "nothere.json"))],
    "symlink-loop": lambda: docker_save()[:-1] + [("a", ("symlink", "manifest.json")),
                                                  ("manifest.json", ("symlink", "a"))],
    "symlink-to-dir": lambda: docker_save(extra=[("d", ("dir",)), ("cfg", ("symlink", "d"))],
                                          manifest=[{"Config": "cfg", "Layers": _GOOD_LAYERS}]),
    # OCI layout
    "index-list": lambda: oci_layout(index=[{"digest": "sha256:" + "0" * 64}]),
    "index-garbage": lambda: oci_layout(index=b"\x00"),
    "index-manifests-string": lambda: oci_layout(index={"manifests": "x"}),
    "index-manifest-number": lambda: oci_layout(index={"manifests": [1]}),
    "index-descriptor-without-digest": lambda: oci_layout(index={"manifests": [{"mediaType": ru.MT_OCI_MANIFEST}]}),
    "index-descriptor-media-type-number": lambda: oci_layout(index={"manifests": [{"mediaType": 5}]}),
    "index-descriptor-absent-blob": lambda: oci_layout(index={"manifests": [
        {"mediaType": ru.MT_OCI_MANIFEST, "digest": "sha256:" + "1" * 64}]}),
    "index-no-image": lambda: oci_layout(index={"manifests": []}),
    "manifest-not-json": lambda: oci_layout(manifest=b"not json"),
    "manifest-list": lambda: oci_layout(manifest=[1]),
    "oci-manifest-without-config": lambda: oci_layout(manifest={"schemaVersion": 2, "layers": []}),
    "oci-manifest-config-string": lambda: oci_layout(manifest={"config": "sha256:abc", "layers": []}),
    "oci-manifest-config-without-digest": lambda: oci_layout(manifest={"config": {}, "layers": []}),
    "oci-manifest-layers-object": lambda: oci_layout(manifest={"config": {"digest": ru.sha256(_j(SMALL_CONFIG))},
                                                               "layers": {}}),
    "oci-manifest-layer-without-digest": lambda: oci_layout(
        manifest={"config": {"digest": ru.sha256(_j(SMALL_CONFIG))}, "layers": [{"size": 3}]}),
    "oci-manifest-layer-absent": lambda: oci_layout(
        manifest={"config": {"digest": ru.sha256(_j(SMALL_CONFIG))}, "layers": [{"digest": "sha256:" + "2" * 64}]}),
    "oci-annotations-list": lambda: oci_layout(annotations=["x"]),
    "oci-annotation-number": lambda: oci_layout(annotations={"io.containerd.image.name": 5}),
    "nested-index-manifests-string": lambda: _nested_index("x"),
    "nested-index-platform-string": lambda: _nested_index([{"digest": "sha256:" + "3" * 64, "platform": "linux"}]),
    "nested-index-no-platform-match": lambda: _nested_index([{"digest": "sha256:" + "3" * 64,
                                                              "platform": {"os": "plan9", "architecture": "mips"}}]),
}


def test_the_archives_the_bad_ones_are_made_from_load(tmp_path, root):
    """The table below breaks one thing each in these: they load."""
    ok(root, "load", "-i", str(write_archive(tmp_path / "d.tar", docker_save())))
    ok(root, "load", "-i", str(write_archive(tmp_path / "o.tar", oci_layout())))
    assert {"bad/img:1", "bad/oci:1"} <= {line.split()[0] + ":" + line.split()[1]
                                          for line in ok(root, "images").stdout.splitlines()[1:]}


def _store_files(root):
    """Everything under images/, layers/, blobs/, layerdb/ and tmp/ (all
    depths), with sizes: what a failed load must leave as it was (the
    empty blobs/sha256/ of the layout aside, made on first use)."""
    out = {}
    for sub in ("images", "layers", "blobs", "layerdb", "tmp"):
        for dirpath, dirnames, filenames in os.walk(root / sub):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                if os.path.relpath(p, root) != "blobs/sha256":
                    out[os.path.relpath(p, root)] = os.lstat(p).st_size if name in filenames else None
    return out


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_load_rejects_malformed_archive(tmp_path, root, case):
    ok(root, "load", "-i", str(write_archive(tmp_path / "base.tar", docker_save(
        config=dict(SMALL_CONFIG, created="2020-01-01T00:00:00Z")))))  # a store that is not empty
    before = _store_files(root)
    p = diyc(root, "load", "-i", str(write_archive(tmp_path / "bad.tar", BAD_ARCHIVES[case]())))
    assert p.returncode == 125, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("diyc: "), p.stderr
    assert _store_files(root) == before


def test_load_onto_a_full_disk_says_so(tmp_path):
    """A store on a full filesystem: the load fails naming ENOSPC (it used
    to report a digest mismatch) and leaves no half-made layer or tmp file."""
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    try:
        root = small / "root"
        ok(root, "images")
        before = _store_files(root)
        big = ru.make_tar([("big", "file", os.urandom(3 << 20), 0o644)])
        config = dict(SMALL_CONFIG, rootfs={"type": "layers", "diff_ids": [ru.sha256(big)]})
        files = [("config.json", _j(config)), ("l/layer.tar", big),
                 ("manifest.json", _j([{"Config": "config.json", "RepoTags": ["big/img:1"],
                                        "Layers": ["l/layer.tar"]}]))]
        for compressed in (False, True):  # the blob as given, and gzip (digest-checked: OCI)
            if compressed:
                files = oci_files([(big, "gzip")], _j(config), ref_name="big/img:1")[0]
            p = diyc(root, "load", "-i", str(write_archive(tmp_path / "big.tar", files)))
            assert p.returncode == 125, (p.stdout, p.stderr)
            lines = p.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("diyc: "), p.stderr
            assert "No space left on device" in lines[0], lines[0]
            assert "digest" not in lines[0]
            assert _store_files(root) == before
            assert os.listdir(root / "tmp") == [] and os.listdir(root / "layers") == []
    finally:
        subprocess.run(["umount", str(small)], check=True)
