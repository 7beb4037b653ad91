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

from .. import _json
from ..errors import InvalidArgument
from .layers import LayerError, StorageError, clean_name

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

_MAX_LINK_HOPS = 16


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
                self._link_target(name, m)  # refuse links that leave the archive now
            self.members[name] = m

    @staticmethod
    def _link_target(name, m):
        """The archive name a link entry points to.  A symlink is relative to
        its directory (absolute: to the archive's top), a hard link names
        another entry of the archive, never an absolute path."""
        if m.islnk():
            target = "../" if m.linkname.startswith("/") else m.linkname
        elif m.linkname.startswith("/"):
            target = m.linkname
        else:
            target = f"{name.rpartition('/')[0]}/{m.linkname}"
        try:
            return clean_name(_normpath(target))
        except LayerError:
            raise ArchiveError(f"unsafe link in image archive: {m.name} -> {m.linkname}") from None

    def has(self, name):
        return clean_name(name) in self.members

    def member(self, name):
        """The regular file entry `name` stands for, its links resolved here
        (not by tarfile: a symlink loop would recurse without end)."""
        try:
            key = clean_name(name)
        except LayerError:
            raise ArchiveError(f"image archive lacks {name}") from None
        for _ in range(_MAX_LINK_HOPS):
            m = self.members.get(key)
            if m is None:
                raise ArchiveError(f"image archive lacks {name}" if key == clean_name(name) else
                                   f"image archive entry {name} is a link to a missing entry")
            if not (m.issym() or m.islnk()):
                if not m.isreg():
                    raise ArchiveError(f"image archive entry {name} is not a file")
                return m
            key = self._link_target(key, m)
        raise ArchiveError(f"image archive entry {name}: too many levels of links")

    def open(self, name):
        return self.tar.extractfile(self.member(name))

    def read(self, name, limit=64 << 20):
        data = self.open(name).read(limit + 1)
        if len(data) > limit:
            raise ArchiveError(f"image archive entry {name} is too large")
        return data

    def json(self, name, kind=dict):
        return _parse_json(self.read(name), name, kind)

    def blob(self, digest, limit=64 << 20):
        from .reference import check_digest
        check_digest(digest)
        data = self.read(f"blobs/sha256/{digest[7:]}", limit)
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ArchiveError(f"blob digest mismatch in image archive: expected {digest}, got {got}")
        return data


def _parse_json(data, what, kind=dict):
    try:
        value = _json.loads(data)
    except (ValueError, RecursionError) as e:
        raise ArchiveError(f"malformed {what} in image archive: {e}") from None
    return _expect(value, kind, what)


_KIND_NAMES = {dict: "an object", list: "a list", str: "a string"}


def _expect(value, kind, what, optional=False):
    """`value` if it is of JSON type `kind` (None too when optional), else
    ArchiveError naming `what`."""
    if (optional and value is None) or isinstance(value, kind):
        return value
    raise ArchiveError(f"malformed image archive: {what} is not {_KIND_NAMES[kind]}")


def _expect_list_of(value, kind, what, optional=False):
    for i, item in enumerate(_expect(value, list, what, optional) or ()):
        _expect(item, kind, f"{what}[{i}]")
    return value or []


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


class _Image:
    """One image of an archive, every field checked, nothing stored yet."""

    def __init__(self, config_bytes, layers, tags):
        self.config_bytes = config_bytes
        self.config = _parse_json(config_bytes, "image config")
        rootfs = _expect(self.config.get("rootfs"), dict, "the image config's rootfs")
        self.diff_ids = _expect_list_of(rootfs.get("diff_ids"), str, "the image config's rootfs.diff_ids")
        from .reference import check_digest
        for d in self.diff_ids:
            check_digest(d, "diff-id")
        self.layers = layers      # [(archive name, expected blob digest or None, media type)]
        if len(layers) != len(self.diff_ids):
            raise ArchiveError(f"the image lists {len(layers)} layers but its config "
                               f"{len(self.diff_ids)} diff-ids")
        self.tags = tags


def load(store, path, log=print):
    """Load an archive into `store` (see _load), safe from concurrent GC."""
    try:
        with store.adding():
            return _load(store, path, log)
    except BrokenPipeError:
        raise
    except OSError as e:
        # the host's fault (a full disk, say): say so, not "digest mismatch"
        raise StorageError(f"cannot load {path}: {e.strerror or e}") from None


def _load(store, path, log=print):
    """Load every image of a docker-save or OCI archive; -> list of records.
    Every image's metadata is checked before anything is stored; a failure
    undoes the layers the load added."""
    archive = _Archive(path)
    added = []
    try:
        if archive.has("manifest.json"):
            images = _docker_images(archive)
        elif archive.has("index.json"):
            images = _oci_images(archive)
        else:
            raise ArchiveError(f"{path}: neither a docker save archive (manifest.json) "
                               "nor an OCI image layout (index.json)")
        for image in images:
            _add_layers(store, archive, image, added, log)
        return [_finish(store, image, log) for image in images]
    except BaseException:
        store.discard_layers(added)
        raise
    finally:
        archive.tar.close()


def _add_layers(store, archive, image, added, log):
    for (name, digest, media), diff_id in zip(image.layers, image.diff_ids):
        if store.has_layer(diff_id):
            log(f"{diff_id[7:19]}: already exists")
            continue
        _, _, new = store.add_layer_blob(archive.open(name), digest, diff_id, media_type=media)
        if new:
            added.append(diff_id)
        log(f"{diff_id[7:19]}: loaded")


def _finish(store, image, log):
    size = sum(store.layer_size(d) for d in image.diff_ids)
    record = store.add_pulled_image(image.config_bytes, image.config, image.diff_ids, size=size)
    for tag in image.tags:
        store.tag(record["id"], tag)
        log(f"Loaded image: {tag}")
    if not image.tags:
        log(f"Loaded image ID: {record['id']}")
    return record


def _docker_images(archive):
    from .reference import name_and_tag
    manifest = archive.json("manifest.json", list)
    if not manifest:
        raise ArchiveError("manifest.json in image archive lists no image")
    images = []
    for i, entry in enumerate(manifest):
        what = f"manifest.json[{i}]"
        _expect(entry, dict, what)
        config_name = _expect(entry.get("Config"), str, f"{what}.Config")
        config_bytes = archive.read(config_name)
        expected = _digest_of_name(config_name)
        got = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        if expected and expected != got:
            raise ArchiveError(f"image config {config_name} hashes to {got}")
        names = _expect_list_of(entry.get("Layers"), str, f"{what}.Layers", optional=True)
        for name in names:
            archive.member(name)  # present (and a file) before any layer is stored
        layers = [(name, _digest_of_name(name) if name.startswith("blobs/") else None, None)
                  for name in names]
        tags = _expect_list_of(entry.get("RepoTags"), str, f"{what}.RepoTags", optional=True)
        for t in tags:
            name_and_tag(t)
        images.append(_Image(config_bytes, layers, list(tags)))
    return images


def _digest_of_name(name):
    """`blobs/sha256/<hex>` or `<hex>.json` -> sha256:<hex>, else None."""
    base = name.rpartition("/")[2].removesuffix(".json")
    if len(base) == 64 and all(c in "0123456789abcdef" for c in base):
        return f"sha256:{base}"
    return None


def _oci_images(archive):
    from .puller import choose_manifest, host_platform
    from .reference import check_digest
    index = archive.json("index.json")
    descs = _expect_list_of(index.get("manifests"), dict, "index.json's manifests", optional=True)
    images = []
    for i, desc in enumerate(descs):
        what = f"index.json's manifests[{i}]"
        media = _expect(desc.get("mediaType"), str, f"{what}.mediaType", optional=True)
        doc = _parse_json(archive.blob(desc.get("digest")), f"manifest {desc.get('digest')}")
        media = media or doc.get("mediaType") or (MT_OCI_INDEX if "manifests" in doc else MT_OCI_MANIFEST)
        if media in (MT_OCI_INDEX, MT_DOCKER_LIST):
            inner = _expect_list_of(doc.get("manifests"), dict, f"index {desc['digest']}'s manifests")
            for d in inner:
                _expect(d.get("platform"), dict, f"a platform in index {desc['digest']}", optional=True)
            chosen = choose_manifest(doc, host_platform())
            doc = _parse_json(archive.blob(chosen.get("digest")), f"manifest {chosen.get('digest')}")
        elif media not in (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST):
            continue  # attestations, artifacts
        config = _expect(doc.get("config"), dict, "the manifest's config")
        config_bytes = archive.blob(config.get("digest"))
        layers = []
        for j, d in enumerate(_expect_list_of(doc.get("layers"), dict, "the manifest's layers",
                                              optional=True)):
            digest = check_digest(d.get("digest"), "layer digest")
            media_type = _expect(d.get("mediaType"), str, f"the manifest's layers[{j}].mediaType", optional=True)
            name = f"blobs/sha256/{digest[7:]}"
            archive.member(name)
            layers.append((name, digest, _OCI_LAYER.get(media_type)))
        annotations = _expect(desc.get("annotations"), dict, f"{what}.annotations", optional=True) or {}
        tags = []
        full = _expect(annotations.get("io.containerd.image.name"), str, "an image name annotation",
                       optional=True)
        ref_name = _expect(annotations.get("org.opencontainers.image.ref.name"), str,
                           "a ref.name annotation", optional=True)
        if full:
            tags.append(_local_name(full))
        elif ref_name and ("/" in ref_name or ":" in ref_name):
            tags.append(_local_name(ref_name))
        images.append(_Image(config_bytes, layers, tags))
    if not images:
        raise ArchiveError("the OCI layout has no image manifest")
    return images


def _local_name(ref):
    from .reference import parse_reference
    r = parse_reference(ref)
    return f"{r.name}:{r.tag or 'latest'}"


# -- save -------------------------------------------------------------------

def save(store, refs, out_path):
    """Write the images `refs` to `out_path` (or a binary file object) as an
    OCI layout archive with a docker manifest.json."""
    from .store import looks_like_id
    images = []
    for ref in refs:
        record = store.resolve(ref)
        tags = [ref] if "@" not in ref and (":" in ref or not looks_like_id(ref)) \
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
    from .reference import name_and_tag
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
            config_bytes = store.config_bytes(record)
            config_digest = add_blob_bytes(config_bytes)
            layer_descs = []
            for diff_id in record["layers"]:
                path, digest, stored_media = store.layer_blob(diff_id, record["id"])
                media = _OCI_LAYER.get(stored_media)
                if media is None:
                    # xz/bzip2 are not OCI layer types: write the plain tar,
                    # whose digest is the diff-id itself
                    media = "application/vnd.oci.image.layer.v1.tar"
                    data = _decompressed_bytes(path)
                    digest, size = add_blob_bytes(data), len(data)
                else:
                    size = os.path.getsize(path)
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
                name, tag = name_and_tag(t)
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


def _decompressed_bytes(path):
    from .layers import decompressed
    with open(path, "rb") as f:
        return decompressed(f).read()
