"""Test helpers: a real registry (Debian's docker-registry, distribution 2.x)
on 127.0.0.1, and multi-layer images built from /bin/busybox with tarfile,
pushed through the registry's own push API (urllib, monolithic uploads)."""

import base64
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request

REGISTRY_BIN = "/usr/bin/docker-registry"

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TYPES = {
    (True, "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    (True, None): "application/vnd.oci.image.layer.v1.tar",
    (True, "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    (False, "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    (False, None): "application/vnd.docker.image.rootfs.diff.tar",
}


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """`docker-registry serve CONFIG` with filesystem storage in `workdir`."""

    def __init__(self, workdir, users=None):
        self.workdir = str(workdir)
        self.storage = f"{self.workdir}/storage"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.users = users or {}
        os.makedirs(self.storage, exist_ok=True)
        auth = ""
        if self.users:
            htpasswd = f"{self.workdir}/htpasswd"
            open(htpasswd, "w").close()
            for user, password in self.users.items():
                subprocess.run(["htpasswd", "-bB", htpasswd, user, password], check=True,
                               capture_output=True)
            auth = f"auth:\n  htpasswd:\n    realm: diyc-test\n    path: {htpasswd}\n"
        self.config = f"{self.workdir}/config.yml"
        with open(self.config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                    f"  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n{auth}")
        # Started through a shell that exits at once: the registry is not a
        # child of the test process (the suite checks none is left behind);
        # it is stopped by its pid.
        self.logfile = f"{self.workdir}/registry.log"
        out = subprocess.run(["sh", "-c", f'{REGISTRY_BIN} serve "$1" >"$2" 2>&1 </dev/null & echo $!',
                              "sh", self.config, self.logfile],
                             capture_output=True, text=True, check=True)
        self.pid = int(out.stdout.strip())
        self._wait()
        self.push_auth = None
        if self.users:
            user, password = next(iter(self.users.items()))
            self.push_auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    def _wait(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"docker-registry exited: {open(self.logfile).read()}")
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).read()
                return
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not answer GET /v2/")

    def stop(self):
        for sig, wait in ((15, 10), (9, 5)):
            if not self.alive():
                return
            os.kill(self.pid, sig)
            deadline = time.monotonic() + wait
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.02)

    # -- the push API -------------------------------------------------------

    def _request(self, method, path, data=None, headers=None):
        url = path if path.startswith("http") else f"http://{self.host}{path}"
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        if self.push_auth:
            req.add_header("Authorization", self.push_auth)
        return urllib.request.urlopen(req, timeout=60)

    def push_blob(self, repo, data):
        digest = sha256(data)
        try:
            self._request("HEAD", f"/v2/{repo}/blobs/{digest}")
            return digest
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        resp = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        location = resp.headers["Location"]
        if not location.startswith("http"):
            location = f"http://{self.host}{location}"
        sep = "&" if "?" in location else "?"
        self._request("PUT", f"{location}{sep}digest={digest}", data=data,
                      headers={"Content-Type": "application/octet-stream",
                               "Content-Length": str(len(data))})
        return digest

    def push_manifest(self, repo, ref, body, media_type):
        self._request("PUT", f"/v2/{repo}/manifests/{ref}", data=body,
                      headers={"Content-Type": media_type})
        return sha256(body)

    def push_image(self, repo, tag, layers, config=None, oci=True, media_type_field=True,
                   architecture="amd64"):
        """layers: [(tar bytes, 'gzip', 'zstd' or None)].  -> dict with digests."""
        blobs, diff_ids = [], []
        for tar, compression in layers:
            diff_ids.append(sha256(tar))
            if compression == "gzip":
                blob = gzip.compress(tar, 1, mtime=0)
            elif compression == "zstd":
                import zstandard
                blob = zstandard.ZstdCompressor().compress(tar)
            else:
                blob = tar
            blobs.append((self.push_blob(repo, blob), len(blob), LAYER_TYPES[(oci, compression)]))
        cfg = {"architecture": architecture, "os": "linux", "created": "2024-01-02T03:04:05Z",
               "config": config or {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
               "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        cfg_bytes = json.dumps(cfg).encode()
        cfg_digest = self.push_blob(repo, cfg_bytes)
        manifest = {"schemaVersion": 2,
                    "config": {"mediaType": MT_OCI_CONFIG if oci else MT_DOCKER_CONFIG,
                               "digest": cfg_digest, "size": len(cfg_bytes)},
                    "layers": [{"mediaType": mt, "digest": d, "size": n} for d, n, mt in blobs]}
        mt = MT_OCI_MANIFEST if oci else MT_DOCKER_MANIFEST
        if media_type_field:
            manifest["mediaType"] = mt
        body = json.dumps(manifest, indent=1).encode()
        digest = self.push_manifest(repo, tag or sha256(body), body, mt)
        return {"digest": digest, "config": cfg_digest, "diff_ids": diff_ids,
                "blobs": [b[0] for b in blobs], "size": len(body), "media_type": mt}

    def push_index(self, repo, tag, entries, oci=True):
        """entries: [(push_image result, {"os":..., "architecture":..., ...})]."""
        mt = MT_OCI_INDEX if oci else MT_DOCKER_LIST
        index = {"schemaVersion": 2, "mediaType": mt,
                 "manifests": [{"mediaType": img["media_type"], "digest": img["digest"],
                                "size": img["size"], "platform": plat} for img, plat in entries]}
        body = json.dumps(index).encode()
        return self.push_manifest(repo, tag, body, mt)

    # -- storage internals (to corrupt things on purpose) --------------------

    def blob_data(self, digest):
        hexd = digest.removeprefix("sha256:")
        return f"{self.storage}/docker/registry/v2/blobs/sha256/{hexd[:2]}/{hexd}/data"


# -- fake fronts for a registry (auth proxies) ------------------------------

def reply(handler, code, body, headers=None, head=False):
    """An http.server handler's answer, with its Content-Length (and no
    body for a HEAD)."""
    handler.send_response(code)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if not head:
        handler.wfile.write(body)


def serve(handler_class):
    """A threaded HTTP server on 127.0.0.1 for `handler_class`, serving in
    a thread -> (server, port); stop it with server.shutdown(), server_close()."""
    import http.server
    import threading
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


# -- layers -----------------------------------------------------------------

def make_tar(entries):
    """entries: (name, kind, payload, mode) with kind in file/dir/symlink;
    payload is bytes (file) or the link target (symlink)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 0, mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
            else:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def busybox_layer():
    from diyc.images.store import busybox_rootfs_tar
    return busybox_rootfs_tar()


def layered_image_layers():
    """Three layers: busybox (gzip); files and a directory (gzip); a layer
    that deletes a file, replaces a directory (opaque) and adds one, shipped
    uncompressed."""
    l2 = make_tar([
        ("data", "dir", None, 0o755),
        ("data/keep", "file", b"keep\n", 0o644),
        ("data/gone", "file", b"to be deleted\n", 0o644),
        ("olddir", "dir", None, 0o755),
        ("olddir/a", "file", b"a\n", 0o644),
        ("olddir/sub", "dir", None, 0o755),
        ("olddir/sub/b", "file", b"b\n", 0o644),
        ("usr/local/bin/hello", "file", b"#!/bin/sh\necho hello from layer 2\n", 0o755),
    ])
    l3 = make_tar([
        ("data/.wh.gone", "file", b"", 0o644),
        ("olddir", "dir", None, 0o755),
        ("olddir/.wh..wh..opq", "file", b"", 0o644),
        ("olddir/new", "file", b"new\n", 0o644),
        ("etc/motd", "file", b"layer 3\n", 0o644),
    ])
    return [(busybox_layer(), "gzip"), (l2, "gzip"), (l3, None)]


def random_layers(n_layers, layer_mb, files_per_layer=64, seed=0):
    """Big layers for the benchmark: half random (incompressible), half text."""
    import random
    rng = random.Random(seed)
    layers = []
    per_file = layer_mb * (1 << 20) // files_per_layer
    for i in range(n_layers):
        entries = [(f"bench{i}", "dir", None, 0o755)]
        for j in range(files_per_layer):
            if j % 2:
                data = rng.randbytes(per_file)
            else:
                line = f"layer {i} file {j} lorem ipsum dolor sit amet {rng.random()}\n".encode()
                data = (line * (per_file // len(line) + 1))[:per_file]
            entries.append((f"bench{i}/f{j}", "file", data, 0o644))
        layers.append((make_tar(entries), "gzip"))
    return layers


def store_snapshot(root):
    """The files and layer dirs under a diyc root, except locks and the
    layout's own directories: to check that a failure left it unchanged."""
    layout = {"tmp", "images", "layers", "containers", "names", "scratch", "blobs",
              "blobs/sha256", "layerdb"}
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel + "/"
        if rel.startswith(("layers/", "containers/")):
            dirnames[:] = []
        for f in filenames:
            if not f.endswith(".lock"):
                out.add(rel + f)
        for d in dirnames:
            if rel + d not in layout:
                out.add(rel + d + "/")
    return out
