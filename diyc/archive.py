"""`diyc load` and `diyc save`: images as tar archives.

load reads
* docker save archives: manifest.json -> [{Config, RepoTags, Layers}], with
  either `<id>/layer.tar` entries (Docker < 25; entries may be symlinks to
  another layer.tar) or paths into an OCI `blobs/sha256/` (Docker 25+);
* OCI image layout archives: index.json -> manifest (or nested index: the
  host's platform) -> config + layer blobs.
Every entry name is checked first (no absolute paths, no `..`), every blob is
verified against its digest and every layer against the config's diff-id
before anything is visible in the store.  A failure undoes the layers the
load added.

save writes an OCI image layout archive (oci-layout, index.json,
blobs/sha256/...) plus a docker-style manifest.json, as Docker 25+ does, so
both `docker load` and OCI tools read it.
"""

import hashlib
import io
import os
import tarfile

from . import _json
from .errors import InvalidArgument, NotFound
from .layers import LayerError, clean_name

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_OCI_LAYER = {
    "application/vnd.oci.image.layer.v1.tar": "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


class ArchiveError(InvalidArgument):
    pass


# -- load -------------------------------------------------------------------

class _Archive:
    def __init__(self, path):
        try:
            self.tar = tarfile.open(path, "r:*")
            members = self.tar.getmembers()
        except (tarfile.TarError, EOFError) as e:
            raise ArchiveError(f"{path}: not a tar archive ({e})") from None
        except OSError as e:
            raise ArchiveError(f"cannot read {path}: {e.strerror or e}") from None
        self.members = {}
        for m in members:
            try:
                name = clean_name(m.name)
            except LayerError as e:
                raise ArchiveError(f"unsafe entry in image archive: {e}") from None
            if m.issym() or m.islnk():
                # resolved by tarfile inside the archive; refuse ones that leave it
                base = name.rpartition("/")[0] if m.issym() else ""
                target = m.linkname if m.islnk() or m.linkname.startswith("/") else f"{base}/{m.linkname}"
                try:
                    clean_name(_normpath(target))
                except LayerError:
                    raise ArchiveError(f"unsafe link in image archive: {m.name} -> {m.linkname}") from None
            self.members[name] = m

    def has(self, name):
        return clean_name(name) in self.members

    def open(self, name):
        try:
            m = self.members[clean_name(name)]
        except (KeyError, LayerError):
            raise ArchiveError(f"image archive lacks {name}") from None
        f = self.tar.extractfile(m)
        if f is None:
            raise ArchiveError(f"image archive entry {name} is not a file")
        return f

    def read(self, name, limit=64 << 20):
        data = self.open(name).read(limit + 1)
        if len(data) > limit:
            raise ArchiveError(f"image archive entry {name} is too large")
        return data

    def json(self, name):
        try:
            return _json.loads(self.read(name))
        except ValueError as e:
            raise ArchiveError(f"malformed {name} in image archive: {e}") from None

    def blob(self, digest, limit=64 << 20):
        from .registry import check_digest
        check_digest(digest)
        data = self.read(f"blobs/sha256/{digest[7:]}", limit)
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ArchiveError(f"blob digest mismatch in image archive: expected {digest}, got {got}")
        return data


def _normpath(path):
    parts = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                return "../"
            parts.pop()
        else:
            parts.append(p)
    return "/".join(parts)


def load(store, path, log=print):
    """Load an archive into `store` (see _load), safe from concurrent GC."""
    with store.adding():
        return _load(store, path, log)


def _load(store, path, log=print):
    """Load every image of a docker-save or OCI archive; -> list of records."""
    archive = _Archive(path)
    added = []
    try:
        if archive.has("manifest.json"):
            records = _load_docker(store, archive, added, log)
        elif archive.has("index.json"):
            records = _load_oci(store, archive, added, log)
        else:
            raise ArchiveError(f"{path}: neither a docker save archive (manifest.json) "
                               "nor an OCI image layout (index.json)")
    except BaseException:
        store.discard_layers(added)
        raise
    finally:
        archive.tar.close()
    return records


def _add_layers(store, archive, layers, diff_ids, added, log):
    """layers: [(archive path, expected blob digest or None, media type)]."""
    if len(layers) != len(diff_ids):
        raise ArchiveError(f"the image lists {len(layers)} layers but its config {len(diff_ids)} diff-ids")
    for (name, digest, media), diff_id in zip(layers, diff_ids):
        if store.has_layer(diff_id):
            log(f"{diff_id[7:19]}: already exists")
            continue
        _, _, new = store.add_layer_blob(archive.open(name), digest, diff_id, media_type=media)
        if new:
            added.append(diff_id)
        log(f"{diff_id[7:19]}: loaded")


def _finish(store, config_bytes, diff_ids, tags, log):
    try:
        config = _json.loads(config_bytes)
    except ValueError as e:
        raise ArchiveError(f"malformed image config in archive: {e}") from None
    size = sum(store.layer_size(d) for d in diff_ids)
    record = store.add_pulled_image(config_bytes, config, diff_ids, size=size)
    for tag in tags:
        store.tag(record["id"], tag)
        log(f"Loaded image: {tag}")
    if not tags:
        log(f"Loaded image ID: {record['id']}")
    return record


def _diff_ids(config_bytes):
    from .registry import check_digest
    try:
        ids = list(_json.loads(config_bytes)["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError):
        raise ArchiveError("image config in archive has no rootfs.diff_ids") from None
    for d in ids:
        check_digest(d, "diff-id")
    return ids


def _load_docker(store, archive, added, log):
    manifest = archive.json("manifest.json")
    if not isinstance(manifest, list):
        raise ArchiveError("malformed manifest.json in image archive: expected a list")
    records = []
    for entry in manifest:
        config_name = entry.get("Config") or ""
        config_bytes = archive.read(config_name)
        expected = _digest_of_name(config_name)
        got = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        if expected and expected != got:
            raise ArchiveError(f"image config {config_name} hashes to {got}")
        diff_ids = _diff_ids(config_bytes)
        layers = [(name, _digest_of_name(name) if name.startswith("blobs/") else None, None)
                  for name in entry.get("Layers") or []]
        tags = list(entry.get("RepoTags") or [])
        for t in tags:
            from .images import parse_reference
            parse_reference(t)
        _add_layers(store, archive, layers, diff_ids, added, log)
        records.append(_finish(store, config_bytes, diff_ids, tags, log))
    return records


def _digest_of_name(name):
    """`blobs/sha256/<hex>` or `<hex>.json` -> sha256:<hex>, else None."""
    base = name.rpartition("/")[2].removesuffix(".json")
    if len(base) == 64 and all(c in "0123456789abcdef" for c in base):
        return f"sha256:{base}"
    return None


def _load_oci(store, archive, added, log):
    from .registry import choose_manifest, host_platform
    index = archive.json("index.json")
    records = []
    for desc in index.get("manifests") or []:
        media = desc.get("mediaType")
        data = archive.blob(desc.get("digest"))
        doc = _json.loads(data)
        media = media or doc.get("mediaType") or (MT_OCI_INDEX if "manifests" in doc else MT_OCI_MANIFEST)
        if media in (MT_OCI_INDEX, MT_DOCKER_LIST):
            inner = choose_manifest(doc, host_platform())
            doc = _json.loads(archive.blob(inner["digest"]))
        elif media not in (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST):
            continue  # attestations, artifacts
        config_bytes = archive.blob(doc["config"]["digest"])
        diff_ids = _diff_ids(config_bytes)
        layers = [(f"blobs/sha256/{d['digest'][7:]}", d["digest"], _OCI_LAYER.get(d.get("mediaType")))
                  for d in doc.get("layers") or []]
        for _, digest, _ in layers:
            from .registry import check_digest
            check_digest(digest, "layer digest")
        annotations = desc.get("annotations") or {}
        tags = []
        full = annotations.get("io.containerd.image.name")
        ref_name = annotations.get("org.opencontainers.image.ref.name")
        if full:
            tags.append(_local_name(full))
        elif ref_name and ("/" in ref_name or ":" in ref_name):
            tags.append(_local_name(ref_name))
        _add_layers(store, archive, layers, diff_ids, added, log)
        records.append(_finish(store, config_bytes, diff_ids, tags, log))
    if not records:
        raise ArchiveError("the OCI layout has no image manifest")
    return records


def _local_name(ref):
    from .registry import parse_reference
    r = parse_reference(ref)
    return f"{r.name}:{r.tag or 'latest'}"


# -- save -------------------------------------------------------------------

def save(store, refs, out_path):
    """Write the images `refs` to `out_path` (or a binary file object) as an
    OCI layout archive with a docker manifest.json."""
    from .images import _looks_like_id
    images = []
    for ref in refs:
        record = store.resolve(ref)
        tags = [ref] if "@" not in ref and (":" in ref or not _looks_like_id(ref)) \
            and not ref.startswith("sha256:") else []
        images.append((record, tags))
    if isinstance(out_path, str):
        tmp = f"{out_path}.tmp{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                _write(store, images, f)
            os.rename(tmp, out_path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    else:
        _write(store, images, out_path)


def _write(store, images, fileobj):
    from .images import parse_reference
    written = set()
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []}
    docker_manifest = []
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        def add_bytes(name, data):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))

        def add_blob_bytes(data):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if digest not in written:
                written.add(digest)
                add_bytes(f"blobs/sha256/{digest[7:]}", data)
            return digest

        def add_blob_file(path, digest, size):
            if digest not in written:
                written.add(digest)
                info = tarfile.TarInfo(f"blobs/sha256/{digest[7:]}")
                info.size, info.mode, info.mtime = size, 0o644, 0
                with open(path, "rb") as f:
                    tar.addfile(info, f)

        add_bytes("oci-layout", _json.dumps(OCI_LAYOUT).encode())
        for record, tags in images:
            config_bytes = _config_bytes(store, record)
            config_digest = add_blob_bytes(config_bytes)
            layer_descs = []
            for diff_id in record["layers"]:
                meta = store.layer_meta(diff_id)
                path = store.blob_path(meta["blob"]) if meta and meta.get("blob") else None
                if not path or not os.path.exists(path):
                    raise NotFound(f"cannot save {record['id'][7:19]}: layer {diff_id} has no stored "
                                   "blob (stored by an older diyc); pull or import the image again")
                media = _OCI_LAYER.get(meta.get("media_type"))
                if media is None:
                    # xz/bzip2 are not OCI layer types: write the plain tar,
                    # whose digest is the diff-id itself
                    media = "application/vnd.oci.image.layer.v1.tar"
                    data = _decompressed_bytes(path)
                    digest, size = add_blob_bytes(data), len(data)
                else:
                    digest, size = meta["blob"], os.path.getsize(path)
                    add_blob_file(path, digest, size)
                layer_descs.append({"mediaType": media, "digest": digest, "size": size})
            manifest = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                        "config": {"mediaType": MT_OCI_CONFIG, "digest": config_digest,
                                   "size": len(config_bytes)},
                        "layers": layer_descs}
            manifest_bytes = _json.dumps(manifest).encode()
            manifest_digest = add_blob_bytes(manifest_bytes)
            repo_tags = []
            for t in tags:
                name, tag = parse_reference(t)
                repo_tags.append(f"{name}:{tag}")
            descs = [{"mediaType": MT_OCI_MANIFEST, "digest": manifest_digest,
                      "size": len(manifest_bytes)}]
            if repo_tags:
                descs = [dict(descs[0], annotations={"io.containerd.image.name": t,
                                                     "org.opencontainers.image.ref.name": t.rpartition(":")[2]})
                         for t in repo_tags]
            index["manifests"] += descs
            docker_manifest.append({"Config": f"blobs/sha256/{config_digest[7:]}",
                                    "RepoTags": repo_tags,
                                    "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in layer_descs]})
        add_bytes("index.json", _json.dumps(index).encode())
        add_bytes("manifest.json", _json.dumps(docker_manifest).encode())


def _config_bytes(store, record):
    """The config exactly as its digest (the image id) names it."""
    path = store.blob_path(record["id"])
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    data = _json.dumps(record["config"]).encode()  # how add_image serialized it
    if "sha256:" + hashlib.sha256(data).hexdigest() != record["id"]:
        raise NotFound(f"cannot save {record['id']}: its config blob is missing")
    return data


def _decompressed_bytes(path):
    from .layers import decompressed
    with open(path, "rb") as f:
        return decompressed(f).read()
