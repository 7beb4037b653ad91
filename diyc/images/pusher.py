"""`diyc push`: a stored image to a registry, by the OCI distribution API
(v2), on registry.py's client (its connections, auth and errors):

    each layer    HEAD /v2/NAME/blobs/DIGEST: there already, or
                  POST /v2/NAME/blobs/uploads/ -> Location,
                  PATCH Location (the blob), PUT Location?digest=DIGEST
    the config    the same, as a blob
    the manifest  PUT /v2/NAME/manifests/TAG; the digest the registry
                  answers must be the one of the bytes sent

diyc keeps what a push needs byte for byte: each layer's blob as it came
(pulled, loaded, imported or built: ImageStore.add_layer_blob keeps the
stream it unpacked) and the image config its id is the digest of.  It does
not keep a pulled image's manifest, so one is written: Docker schema2
when every layer came with a Docker media type (a pulled schema2 image:
docker's own formatting, so often the same digest as the source), OCI
otherwise.  A layer kept xz- or bzip2-compressed (no registry media type
has them) is sent as its plain tar, whose digest must be its diff-id; a
layer whose blob is missing, or a plain tar that does not hash to its
diff-id, stops the push before the manifest: a manifest never names a blob
that was not sent as it names it.
"""

import hashlib
import os

from .. import _json
from ..errors import ImageNotFound, InvalidArgument, NotFound
from .reference import parse_reference
from .registry import Client, RegistryError, load_credentials

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"

# a stored layer's media type -> what a Docker schema2 manifest calls it
DOCKER_LAYER = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        "application/vnd.docker.image.rootfs.diff.tar.gzip",  # its blob is here: pushed as any layer
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.docker.image.rootfs.diff.tar",
}
# ... and what an OCI manifest calls it (a type not here, xz or bzip2: sent as the plain tar)
OCI_GZIP, OCI_ZSTD = OCI_TAR + "+gzip", OCI_TAR + "+zstd"
OCI_LAYER = {
    OCI_TAR: OCI_TAR, OCI_GZIP: OCI_GZIP, OCI_ZSTD: OCI_ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": OCI_TAR,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": OCI_GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": OCI_ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": OCI_TAR,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": OCI_GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": OCI_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": OCI_ZSTD,
}


class Layer:
    """A layer as it is pushed: the file holding its blob, the blob's
    digest and size, its stored media type; `temporary`: a plain tar made
    for the push (removed after it)."""

    def __init__(self, diff_id, path, digest, size, stored_media, temporary=False):
        self.diff_id, self.path, self.digest, self.size = diff_id, path, digest, size
        self.stored_media, self.temporary = stored_media, temporary

    @property
    def short(self):
        return self.diff_id[7:19]  # docker's push lines name a layer by its diff-id


def push(store, ref, insecure=False, progress=None, max_workers=4):
    """Push the stored image `ref` ("[REGISTRY/]NAME[:TAG]", a Reference of
    the registry module), its layers on up to max_workers threads ->
    {"digest": manifest digest, "size": its bytes, "tag": tag}."""
    from .puller import Progress
    r = parse_reference(ref) if isinstance(ref, str) else ref
    if r.digest:
        raise InvalidArgument(f"cannot push a digest reference: {r}; push NAME[:TAG]")
    tag = r.tag or "latest"
    record = local_image(store, r, tag)
    progress = progress or Progress()
    config_bytes = store.config_bytes(record)
    layers = []
    client = Client(r.registry, r.repository, insecure=insecure,
                    credentials=load_credentials(store.root, r.registry))
    try:
        for diff_id in record["layers"]:
            layers.append(_layer(store, record, diff_id))
        progress.log(f"The push refers to repository [{r.name}]")
        for layer in layers:
            progress.update(layer.short, "Preparing")
        config_digest = _push_blobs(store, client, r, record, layers, config_bytes, progress, max_workers)
        manifest, media = manifest_bytes(config_bytes, config_digest, layers)
        digest = _put_manifest(client, tag, manifest, media)
        store.tag_pulled(record["id"], None, f"{r.name}@{digest}")  # docker's RepoDigests after a push
    finally:
        client.close()
        for layer in layers:
            if layer.temporary:
                _unlink(layer.path)
    progress.log(f"{tag}: digest: {digest} size: {len(manifest)}")
    return {"digest": digest, "size": len(manifest), "tag": tag}


def local_image(store, r, tag):
    """The stored image `r` names with `tag`: by its name as written, or as
    a pull stores it (`alpine` for docker.io/library/alpine)."""
    for name in dict.fromkeys((r.given or r.name, r.name)):
        try:
            return store.resolve(f"{name}:{tag}")
        except ImageNotFound:
            continue
    raise ImageNotFound(f"An image does not exist locally with the tag: {r.given or r.name}:{tag}")


def local_tags(store, r):
    """The tags the store has for the name of `r`, sorted (`push -a`)."""
    names = {r.given or r.name, r.name}
    return sorted({ref.rpartition(":")[2] for ref in store.references()
                   if "@" not in ref and ref.rpartition(":")[0] in names})


def _layer(store, record, diff_id):
    """The Layer of `diff_id`: its stored blob, or (stored xz/bzip2) its
    plain tar in a temp file, checked to hash to the diff-id."""
    path, digest, media = store.layer_blob(diff_id, record["id"])
    if media in OCI_LAYER:
        return Layer(diff_id, path, digest, os.path.getsize(path), media)
    from .layers import decompressed
    tmp = f"{store.root.ensure().tmp}/push-{os.getpid()}-{os.urandom(4).hex()}"
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as src, \
                open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            plain = decompressed(src)
            while chunk := plain.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
        if "sha256:" + sha.hexdigest() != diff_id:
            raise NotFound(f"image {record['id'][7:19]}: layer {diff_id} cannot be reproduced: its "
                           f"stored {media or 'blob'} unpacks to sha256:{sha.hexdigest()}; "
                           "pull, load or import the image again")
        return Layer(diff_id, tmp, diff_id, os.path.getsize(tmp), OCI_TAR, temporary=True)
    except BaseException:
        _unlink(tmp)
        raise


def manifest_bytes(config_bytes, config_digest, layers):
    """The image manifest naming the config and layers as they are pushed
    -> (bytes, media type).  Docker schema2 when every layer has a Docker
    media type, formatted as docker writes it (3-space indent, descriptor
    fields in distribution's order); OCI otherwise."""
    docker = all(layer.stored_media in DOCKER_LAYER for layer in layers)
    names = DOCKER_LAYER if docker else OCI_LAYER
    media = MT_DOCKER_MANIFEST if docker else MT_OCI_MANIFEST
    manifest = {"schemaVersion": 2, "mediaType": media,
                "config": {"mediaType": MT_DOCKER_CONFIG if docker else MT_OCI_CONFIG,
                           "size": len(config_bytes), "digest": config_digest},
                "layers": [{"mediaType": names[layer.stored_media], "size": layer.size,
                            "digest": layer.digest} for layer in layers]}
    return indented(manifest).encode(), media


def indented(value, depth=0):
    """JSON as Go's json.MarshalIndent(v, "", "   ") writes it (docker's
    manifests), without the json package (it imports re: ~10 ms)."""
    pad, inner = "   " * depth, "   " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{_json.dumps(k)}: {indented(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(inner + indented(v, depth + 1) for v in value) + f"\n{pad}]"
    return _json.dumps(value)


def _push_blobs(store, client, r, record, layers, config_bytes, progress, max_workers):
    """Each layer and the config the registry lacks, mounted from another
    repository that has it when one is known, else sent -> the config's
    digest.  The blobs are asked for on one connection first: a push of
    what is there starts no thread."""
    from .puller import in_threads
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    missing = []
    for layer in layers:
        if layer.digest in (m.digest for m in missing) or _blob_exists(client, layer.digest):
            progress.update(layer.short, "Layer already exists")
        else:
            missing.append(layer)
    config_missing = not _blob_exists(client, config_digest)
    known = known_repositories(store, r.registry, r.repository) if missing or config_missing else {}
    mounts = {layer.digest: [] if layer.temporary else known.get(layer.diff_id, [])[:1] for layer in missing}
    mounts[config_digest] = known.get(record["id"], [])[:1]
    # a token server is asked for pull where blobs mount from, as docker asks
    client.extra_scopes = sorted({f"repository:{source}:pull"
                                  for sources in mounts.values() for source in sources})
    in_threads([(layer, mounts[layer.digest]) for layer in missing], max_workers,
               lambda layer, mount_from: _push_layer(client, layer, mount_from, progress))
    if config_missing:
        _upload(client, config_digest, len(config_bytes), config_bytes, mounts[config_digest])
    return config_digest


def known_repositories(store, registry, repository):
    """{diff-id or image id: [repository]}: the other repositories of
    `registry` that hold a layer as stored, or an image's config (an image
    was pulled from or pushed there): where a push mounts them from
    instead of sending them, as docker."""
    by_image = {}
    for ref, image_id in store.references().items():
        if "@" not in ref:
            continue
        try:
            where = parse_reference(ref)
        except InvalidArgument:
            continue
        if where.registry == registry and where.repository != repository:
            by_image.setdefault(image_id, []).append(where.repository)
    known = dict(by_image)
    for image_id, repositories in by_image.items():
        record = store.existing_image(image_id)
        for diff_id in record["layers"] if record else ():
            known.setdefault(diff_id, []).extend(repositories)
    return known


def _push_layer(client, layer, mount_from, progress):
    progress.update(layer.short, "Pushing")
    with open(layer.path, "rb") as f:
        body = _CountingReader(f, lambda n: progress.update(
            layer.short, f"Pushing {n / 1e6:.1f}MB/{layer.size / 1e6:.1f}MB", force=False))
        source = _upload(client, layer.digest, layer.size, body, mount_from[:1])
    progress.update(layer.short, f"Mounted from {source}" if source else "Pushed")


def _blob_exists(client, digest):
    try:
        resp = client.request("HEAD", f"/v2/{client.repository}/blobs/{digest}")
    except NotFound:
        return False
    client.discard(resp)
    return True


def _upload(client, digest, size, body, mount_from=()):
    """Start an upload session, send the blob in one PATCH, close it with
    PUT ?digest= (docker's sequence; the registry checks the digest).
    mount_from: a repository of the registry that has the blob: asked to
    mount it (201: done, -> that repository; 202: a session, the upload
    goes on).  -> None when the blob was sent."""
    from urllib.parse import urlencode
    query = f"?{urlencode({'mount': digest, 'from': mount_from[0]})}" if mount_from else ""
    resp = client.request("POST", f"/v2/{client.repository}/blobs/uploads/{query}",
                          headers={"Content-Length": "0"})
    if mount_from and resp.status == 201:
        client.discard(resp)
        return mount_from[0]
    location = _location(client, resp, "POST blobs/uploads/")
    resp = client.request("PATCH", location, body=body,
                          headers={"Content-Type": "application/octet-stream",
                                   "Content-Length": str(size)})
    location = _location(client, resp, f"PATCH of blob {digest}")
    sep = "&" if "?" in location else "?"
    resp = client.request("PUT", f"{location}{sep}digest={digest}", headers={"Content-Length": "0"})
    announced = resp.getheader("Docker-Content-Digest")
    client.discard(resp)
    if announced and announced != digest:
        raise RegistryError(f"registry {client.registry} stored blob {digest} as {announced}")
    return None


def _location(client, resp, what):
    location = resp.getheader("Location")
    client.discard(resp)
    if not location:
        raise RegistryError(f"registry {client.registry}: no Location in its answer to {what}")
    return location


def _put_manifest(client, tag, manifest, media):
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    resp = client.request("PUT", f"/v2/{client.repository}/manifests/{tag}", body=manifest,
                          headers={"Content-Type": media, "Content-Length": str(len(manifest))})
    announced = resp.getheader("Docker-Content-Digest")
    client.discard(resp)
    if announced and announced != digest:
        raise RegistryError(f"registry {client.registry} stored the manifest of {client.repository}:"
                            f"{tag} as {announced}, not as the {digest} sent")
    return digest


class _CountingReader:
    """A file's reads, their running total told to `callback`; seek(0)
    starts the count again (a body sent again after an auth challenge)."""

    def __init__(self, f, callback):
        self.f, self.callback, self.count = f, callback, 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.count += len(data)
        self.callback(self.count)
        return data

    def seek(self, offset):
        self.count = offset
        return self.f.seek(offset)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
