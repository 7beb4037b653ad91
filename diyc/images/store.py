"""The image store: named references -> image records -> layers.

An image record (images/<id>.json) holds the image config (Env, Cmd,
Entrypoint, WorkingDir, User, ...) and its layers, bottom first, by diff-id
(the sha256 of the uncompressed layer tar).  Each layer is unpacked once
into layers/<hex>/ and shared by every image that uses it; a container's
root is an overlay of those directories.  The id of an image is the sha256
of its config JSON, as in docker.

Next to them, for pull/load/save:

    blobs/sha256/<hex>   content-addressed blobs: image configs as received
                         (a pulled image's id is its config digest) and each
                         layer's tar as it came (compressed or not)
    layerdb/<hex>.json   per layer (by diff-id): its blob digest, media type
                         and unpacked size

A layer becomes visible by one rename() of its directory into layers/, after
its blob and layerdb entry are in place and every digest has been checked.
"""

import os
import time

from .. import _json
from ..record import ContainerRecord
from ..errors import Conflict, ImageNotFound, InvalidArgument, NotFound, StateWriteError
from ..state import Root, listdir, read_json, remove_tree, write_json
from .reference import name_and_tag

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILTIN_IMAGE = "busybox:latest"
BUSYBOX_BINARY = "/bin/busybox"

class ImageStore:
    def __init__(self, root=None):
        self.root = root if isinstance(root, Root) else Root(root)

    @property
    def _repositories(self):
        return f"{self.root.images}/repositories.json"

    def _read_repositories(self):
        try:
            return read_json(self._repositories)
        except FileNotFoundError:
            return {}

    def _record_path(self, image_id):
        return f"{self.root.images}/{image_id.removeprefix('sha256:')}.json"

    # -- lookup -------------------------------------------------------------

    def has(self, image_id):
        """Whether the image of that (full) id is in the store."""
        return os.path.exists(self._record_path(image_id))

    def resolve(self, ref):
        """An image record by name[:tag], id or unique id prefix."""
        repos = self._read_repositories()
        if "@" in ref:
            image_id = repos.get(_normalize_digest_ref(ref))
            if image_id:
                return read_json(self._record_path(image_id))
            raise ImageNotFound(f"No such image: {ref}")
        if ":" in ref or not looks_like_id(ref):
            name, tag = name_and_tag(ref)
            image_id = repos.get(f"{name}:{tag}")
            if image_id:
                return read_json(self._record_path(image_id))
        if looks_like_id(ref):
            hexid = ref.removeprefix("sha256:")
            matches = [f for f in os.listdir(self.root.images)
                       if f.startswith(hexid) and f.endswith(".json") and f != "repositories.json"]
            if len(matches) == 1:
                return read_json(f"{self.root.images}/{matches[0]}")
            if len(matches) > 1:
                raise InvalidArgument(f"image id prefix {ref!r} is ambiguous")
        raise ImageNotFound(f"No such image: {ref}")

    def references(self):
        """{reference: image id}: every tag (name:tag) and digest
        (name@sha256:...) the store knows."""
        return self._read_repositories()

    def get(self, ref):
        """resolve(), creating the built-in busybox image on first use."""
        try:
            return self.resolve(ref)
        except ImageNotFound:
            if ref in ("busybox", BUILTIN_IMAGE) and os.path.exists(BUSYBOX_BINARY):
                # one maker at a time (processes, or a library's threads):
                # the others wait, then find it made
                with self.root.ensure().lock("builtin-image"):
                    try:
                        return self.resolve(ref)
                    except ImageNotFound:
                        return build_busybox_image(self)
            raise

    def list(self):
        self.root.ensure()
        repos = self._read_repositories()
        tags = {}
        for ref, image_id in repos.items():
            if "@" not in ref:
                tags.setdefault(image_id, []).append(ref)
        images = []
        for f in sorted(os.listdir(self.root.images)):
            if f.endswith(".json") and f != "repositories.json":
                record = read_json(f"{self.root.images}/{f}")
                record["repo_tags"] = sorted(tags.get(record["id"], []))
                images.append(record)
        return images

    def names_of(self, image_id):
        """(its name:tag references, its name@digest references), sorted."""
        tags, digests = [], []
        for ref, target in self._read_repositories().items():
            if target == image_id:
                (digests if "@" in ref else tags).append(ref)
        return sorted(tags), sorted(digests)

    def layer_dirs(self, record):
        """The unpacked layer directories of an image, top layer first (the
        order overlayfs wants its lowerdirs in)."""
        return [f"{self.root.layers}/{d.removeprefix('sha256:')}" for d in reversed(record["layers"])]

    # -- changes ------------------------------------------------------------

    def add_layer(self, fileobj):
        """Unpack a layer tar stream into the store; returns its diff-id.
        The layer is unpacked in tmp/ and renamed into place when complete,
        so a half-unpacked layer is never visible under layers/.  The stream
        as given is kept in blobs/ (for `diyc save`)."""
        diff_id, size, _ = self.add_layer_blob(fileobj)
        return diff_id, size

    def add_image(self, config, layers, ref=None, size=0):
        """Record an image (OCI image config + diff-ids) and tag it."""
        config = dict(config)
        config.setdefault("architecture", "amd64")
        config.setdefault("os", "linux")
        config["rootfs"] = {"type": "layers", "diff_ids": list(layers)}
        import hashlib
        config_bytes = _json.dumps(config).encode()
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        record = _image_record(image_id, config, layers, size)
        with self.root.ensure().lock("images"):
            write_json(self._record_path(image_id), record)
            if ref:
                self._tag_locked(image_id, ref)
        return record

    def _tag_locked(self, image_id, ref):
        name, tag = name_and_tag(ref)
        repos = self._read_repositories()
        repos[f"{name}:{tag}"] = image_id
        write_json(self._repositories, repos)

    def tag(self, source, ref):
        record = self.resolve(source)
        with self.root.lock("images"):
            self._tag_locked(record["id"], ref)
        from ..events import emit
        emit(self.root, "image", "tag", record["id"], {"name": ref})

    def remove(self, ref, force=False, every_name=False):
        """Untag `ref`; when no tag is left, delete the image and every layer
        no other image (nor container) uses.  Refused while a container uses
        the image: one recorded, or one being created (it holds using() from
        resolving the image until its record exists, and we wait for it).
        force, as docker's rmi -f: a stopped container's image is untagged
        and deleted all the same (the container keeps its layers); with a
        running one, a name given is untagged (the image stays, unnamed),
        an id refused.  An id whose image has names in several repositories
        needs force (or every_name: prune's), as docker's."""
        with self.no_creation(), self.root.lock("images"):
            record = self.resolve(ref)
            image_id = record["id"]
            repos = self._read_repositories()
            names = [r for r, i in repos.items() if i == image_id and "@" not in r]
            digests = [r for r, i in repos.items() if i == image_id and "@" in r]
            by_name = ref if ref in repos and "@" not in ref else None
            if by_name is None and ":" not in ref and not looks_like_id(ref):
                by_name = f"{ref}:latest" if f"{ref}:latest" in repos else None
            if by_name is None and "@" not in ref and not (force or every_name) and \
                    len({n.rpartition(":")[0] for n in names}) > 1:
                raise Conflict(f"conflict: unable to delete {image_id[7:19]} (must be forced) - image is "
                               "referenced in multiple repositories")
            if by_name and len(names) > 1:
                return self._untag(repos, image_id, by_name)
            user = self._container_using(image_id)
            if user and force and user[1] == "running" and by_name:
                return self._untag(repos, image_id, by_name)
            if user and (not force or user[1] in ("running", "held")):
                cid, status = user
                if status == "held":
                    raise Conflict(f"conflict: unable to delete {ref} ({image_id[7:19]}) - image is "
                                   f"being used by a warm container of a diyc.Pool ({cid[:12]}): "
                                   "closing the pool releases it")
                if force:
                    raise Conflict(f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - "
                                   f"image is being used by running container {cid[:12]}")
                kind = status if status in ("running", "created") else "stopped"
                raise Conflict(f"conflict: unable to delete {ref} ({image_id[7:19]}) - image is "
                               f"being used by {kind} container {cid[:12]}: remove the container first")
            for name in names + digests:
                del repos[name]
            write_json(self._repositories, repos)
            os.unlink(self._record_path(image_id))
            out = [f"Untagged: {n}" for n in names] + [f"Deleted: {image_id}"]
            out += self._collect_layers()
        _removal_events(self.root, image_id, names, deleted=True)
        return out

    def _untag(self, repos, image_id, name):
        """Remove the name `name` of image `image_id` only (the caller holds
        the images lock) -> remove()'s lines."""
        del repos[name]
        write_json(self._repositories, repos)
        _removal_events(self.root, image_id, [name], deleted=False)
        return [f"Untagged: {name}"]

    def prune(self, all=False):
        """`docker image prune [-a]`: remove the images without a name (all:
        every image) that no container uses; -> remove()'s lines."""
        out = []
        for record in self.list():
            if record["repo_tags"] and not all:
                continue
            try:
                out += self.remove(record["id"], every_name=True)
            except (Conflict, ImageNotFound):  # in use, or removed meanwhile
                continue
        return out

    def using(self):
        """Held (shared) by a container's creation from resolving its image
        until its record exists: remove() waits for it, then sees the record.
        One flock(), no walk: the start path stays cheap."""
        return self.root.ensure().lock("layers-gc", shared=True)

    def no_creation(self):
        """Held (exclusive): no container is being created (using()) - those
        under way finish first - so every container, and what it uses (its
        image, a named volume its creation made), is in a record."""
        return self.root.ensure().lock("layers-gc")

    def _container_using(self, image_id):
        """(container id, recorded status) of a container whose record names
        `image_id` - "held" for a pool's warm one, "running" for one that
        runs or is held before its execve, preferred to a stopped one -, or
        None."""
        found = None
        for cid, record in self._container_records():
            if record.get("image_id") == image_id:
                if ContainerRecord(self.root, record).held_in_pool:
                    return cid, "held"
                state = record.get("state") or {}
                if state.get("status") == "running" or (state.get("status") == "created" and state.get("pid")):
                    return cid, "running"
                found = found or (cid, state.get("status"))
        return found

    def _container_records(self):
        for cid in listdir(self.root.containers):
            try:
                yield cid, read_json(f"{self.root.container_dir(cid)}/container.json")
            except (FileNotFoundError, NotADirectoryError):
                continue  # being removed
            except ValueError:
                continue  # unreadable: says nothing about images

    def _collect_layers(self):
        """Delete layers no image references, and blobs nothing references
        (called under the images lock)."""
        used = self._used_layers()
        removed = []
        for layer in os.listdir(self.root.layers):
            if layer not in used:
                self._remove_layer(layer)
                removed.append(f"Deleted layer: sha256:{layer}")
        self._collect_blobs(used)
        return removed

    def _used_layers(self):
        """The layers of every image, and of every container (whose image
        `rmi -f` may have deleted)."""
        used = set()
        for f in os.listdir(self.root.images):
            if f.endswith(".json") and f != "repositories.json":
                used.update(d.removeprefix("sha256:") for d in read_json(f"{self.root.images}/{f}")["layers"])
        for _, record in self._container_records():
            used.update(os.path.basename(d) for d in record.get("layers") or () if isinstance(d, str))
        return used

    def _remove_layer(self, hexid):
        """Layer dir first (it is what makes a layer exist), then its metadata
        and blob."""
        remove_tree(f"{self.root.layers}/{hexid}")
        meta = self.layer_meta(hexid)
        _unlink(f"{self.layerdb}/{hexid}.json")
        if meta and meta.get("blob"):
            _unlink(f"{self.blobs}/{meta['blob'].removeprefix('sha256:')}")

    def _collect_blobs(self, used_layers):
        if not os.path.isdir(self.blobs):
            return
        keep = {f[:-5] for f in os.listdir(self.root.images)
                if f.endswith(".json") and f != "repositories.json"}
        for f in os.listdir(self.layerdb):
            hexid = f.removesuffix(".json")
            if hexid not in used_layers:
                _unlink(f"{self.layerdb}/{f}")
                continue
            meta = self.layer_meta(hexid)
            if meta and meta.get("blob"):
                keep.add(meta["blob"].removeprefix("sha256:"))
        for f in os.listdir(self.blobs):
            if f not in keep:
                _unlink(f"{self.blobs}/{f}")

    # -- content-addressed blobs and layer metadata -------------------------

    @property
    def blobs(self):
        return f"{self.root.path}/blobs/sha256"

    @property
    def layerdb(self):
        return f"{self.root.path}/layerdb"

    def _ensure_store(self):
        self.root.ensure()
        if not os.path.isdir(self.layerdb):
            os.makedirs(self.blobs, 0o700, exist_ok=True)
            os.makedirs(self.layerdb, 0o700, exist_ok=True)
        return self.root

    def has_layer(self, diff_id):
        return os.path.isdir(f"{self.root.layers}/{diff_id.removeprefix('sha256:')}")

    def layer_meta(self, diff_id):
        try:
            return read_json(f"{self.layerdb}/{diff_id.removeprefix('sha256:')}.json")
        except (FileNotFoundError, ValueError):
            return None

    def layer_size(self, diff_id):
        meta = self.layer_meta(diff_id)
        return meta.get("size", 0) if meta else 0

    def blob_path(self, digest):
        return f"{self.blobs}/{digest.removeprefix('sha256:')}"

    def config_bytes(self, record):
        """An image's config exactly as its digest (the image id) names it:
        the blob as received (pull, load), else the JSON add_image made the
        id of (import, build).  NotFound when neither hashes to the id."""
        import hashlib
        try:
            with open(self.blob_path(record["id"]), "rb") as f:
                return f.read()
        except FileNotFoundError:
            pass
        data = _json.dumps(record["config"]).encode()
        if "sha256:" + hashlib.sha256(data).hexdigest() != record["id"]:
            raise NotFound(f"image {record['id'][7:19]}: its config blob is missing and "
                           "its record does not reproduce it")
        return data

    def layer_blob(self, diff_id, image_id):
        """The blob a layer came as -> (path, digest, media type as stored).
        NotFound when it was not kept (a layer stored by an older diyc)."""
        meta = self.layer_meta(diff_id)
        path = self.blob_path(meta["blob"]) if meta and meta.get("blob") else None
        if not path or not os.path.exists(path):
            raise NotFound(f"image {image_id[7:19]}: layer {diff_id} has no stored blob (stored by "
                           "an older diyc); pull, load or import the image again")
        return path, meta["blob"], meta.get("media_type")

    def add_blob(self, data, digest=None):
        """Store bytes as a blob (verified against `digest` if given)."""
        import hashlib
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest and got != digest:
            raise InvalidArgument(f"blob digest mismatch: expected {digest}, content hashes to {got}")
        self._ensure_store()
        path = self.blob_path(got)
        if not os.path.exists(path):
            from ..state import atomic_write
            atomic_write(path, data)
        return got

    def add_layer_blob(self, fileobj, digest=None, diff_id=None, media_type=None, size=None):
        """Unpack a layer blob (compressed or not) while keeping it in blobs/.
        `digest`, `diff_id` and `size`, when given, are checked before the
        layer becomes visible.  -> (diff_id, unpacked size, newly added)."""
        from .layers import LayerError, unpack_layer
        root = self._ensure_store()
        suffix = f"{os.getpid()}-{os.urandom(4).hex()}"
        staging = f"{root.tmp}/layer-{suffix}"
        blob_tmp = f"{root.tmp}/blob-{suffix}"
        os.mkdir(staging, 0o755)
        tee = None
        try:
            tee = _TeeReader(fileobj, blob_tmp)
            try:
                got_diff, usize = unpack_layer(tee, staging)
                tee.drain()
            except LayerError:
                # A truncated or corrupt download shows up as a broken tar or
                # gzip stream first: name the real cause when it is one.
                if digest:
                    try:
                        tee.drain()
                    except Exception:
                        pass
                    if tee.digest() != digest:
                        raise LayerError(f"blob digest mismatch for {digest}: received {tee.size} bytes "
                                         f"hashing to {tee.digest()} (truncated or corrupt download)") from None
                raise
            tee.close()
            got = tee.digest()
            if digest and got != digest:
                raise LayerError(f"blob digest mismatch: expected {digest}, received {tee.size} bytes "
                                 f"hashing to {got}")
            if size is not None and tee.size != size:
                raise LayerError(f"blob {got}: expected {size} bytes, received {tee.size}")
            if diff_id and got_diff != diff_id:
                raise LayerError(f"layer diff-id mismatch: the image config says {diff_id}, "
                                 f"the layer's tar hashes to {got_diff}")
            hexid = got_diff.removeprefix("sha256:")
            final = f"{root.layers}/{hexid}"
            if os.path.isdir(final):
                return got_diff, usize, False  # already stored (shared by another image)
            os.rename(blob_tmp, self.blob_path(got))
            write_json(f"{self.layerdb}/{hexid}.json", {
                "diff_id": got_diff, "blob": got, "media_type": media_type or tee.media_type(),
                "blob_size": tee.size, "size": usize})
            try:
                os.rename(staging, final)
            except OSError:
                if not os.path.isdir(final):
                    raise
                return got_diff, usize, False
            return got_diff, usize, True
        finally:
            if tee is not None:
                tee.discard()
            _unlink(blob_tmp)
            if os.path.isdir(staging) and not os.path.islink(staging):
                remove_tree(staging)
            else:  # a hostile layer may have replaced the staging dir itself
                _unlink(staging)

    def existing_image(self, image_id):
        """The record of image `image_id` if it and all its layers are stored."""
        try:
            record = read_json(self._record_path(image_id))
        except FileNotFoundError:
            return None
        if all(self.has_layer(d) for d in record["layers"]):
            return record
        return None

    def tag_pulled(self, image_id, tag_ref, repo_digest=None):
        with self.root.ensure().lock("images"):
            self._tag_pulled_locked(image_id, tag_ref, repo_digest)

    def _tag_pulled_locked(self, image_id, tag_ref, repo_digest):
        repos = self._read_repositories()
        if tag_ref:
            name, tag = name_and_tag(tag_ref)
            repos[f"{name}:{tag}"] = image_id
        if repo_digest:
            repos[_normalize_digest_ref(repo_digest)] = image_id
        write_json(self._repositories, repos)

    def add_pulled_image(self, config_bytes, config, diff_ids, tag_ref=None, repo_digest=None, size=0):
        """Record an image whose id is the digest of its config as received
        (pull, load): the config blob is kept byte for byte."""
        if list((config.get("rootfs") or {}).get("diff_ids") or []) != list(diff_ids):
            raise InvalidArgument("image config's rootfs.diff_ids do not match its layers")
        import hashlib
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        record = _image_record(image_id, config, diff_ids, size)
        with self.root.ensure().lock("images"):
            missing = [d for d in diff_ids if not self.has_layer(d)]
            if missing:
                raise InvalidArgument(f"layer {missing[0]} vanished while the image was being "
                                      "added (removed concurrently?): try again")
            self.add_blob(config_bytes, image_id)
            write_json(self._record_path(image_id), record)
            self._tag_pulled_locked(image_id, tag_ref, repo_digest)
        return record

    def discard_layers(self, diff_ids):
        """Undo a failed pull/load: remove the layers it added that no image
        references (and their blobs), leaving everything else alone."""
        if not diff_ids:
            return
        with self.root.ensure().lock("images"):
            used = self._used_layers()
            for d in diff_ids:
                hexid = d.removeprefix("sha256:")
                if hexid not in used:
                    self._remove_layer(hexid)

    def adding(self):
        """Held (shared) by whoever adds layers and then the image that uses
        them; garbage collection takes it exclusively, so a layer is never
        collected between its arrival and its image's record."""
        return self.root.ensure().lock("layers-gc", shared=True)

    def import_tarball(self, fileobj, ref, config=None):
        """`diyc import`: a flat rootfs tarball (docker export) as an image."""
        name_and_tag(ref)  # reject a bad name before unpacking anything
        with self.adding():
            diff_id, size = self.add_layer(fileobj)
            config = config or {"config": {"Env": [DEFAULT_PATH_ENV], "Cmd": ["sh"]}}
            config.setdefault("created", _now())
            try:
                return self.add_image(config, [diff_id], ref, size)
            except BaseException:
                self.discard_layers([diff_id])
                raise


def _normalize_digest_ref(ref):
    name, _, digest = ref.partition("@")
    name = name.rpartition(":")[0] if name.rfind(":") > name.rfind("/") else name
    return f"{name}@{digest}"


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _TeeReader:
    """Reads `f`, hashing every byte and copying it to the file `path`."""

    def __init__(self, f, path):
        import hashlib
        self.f = f
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.path = path
        self.out = open(path, "wb")

    def read(self, n=-1):
        data = self.f.read(n)
        if data:
            self.hash.update(data)
            self.size += len(data)
            if len(self.head) < 8:
                self.head += data[:8]
            self.out.write(data)
        return data

    def drain(self):
        while self.read(1 << 20):
            pass

    def close(self):
        """Flushed and fsync()ed: the blob is renamed into the store next."""
        if self.out.closed:
            return
        try:
            self.out.flush()
            os.fsync(self.out.fileno())
        except OSError as e:
            raise StateWriteError(self.path, e) from None
        finally:
            self.discard()

    def discard(self):
        try:
            self.out.close()
        except OSError:
            pass  # a flush that failed again: the file is removed anyway

    def digest(self):
        return "sha256:" + self.hash.hexdigest()

    def media_type(self):
        h = self.head
        if h.startswith(b"\x1f\x8b"):
            return "application/vnd.oci.image.layer.v1.tar+gzip"
        if h.startswith(b"\x28\xb5\x2f\xfd"):
            return "application/vnd.oci.image.layer.v1.tar+zstd"
        if h.startswith(b"\xfd7zXZ"):
            return "application/x-xz"
        if h.startswith(b"BZh"):
            return "application/x-bzip2"
        return "application/vnd.oci.image.layer.v1.tar"


def _image_record(image_id, config, layers, size):
    return {"id": image_id, "config": config, "layers": list(layers), "size": size,
            "created": config.get("created") or _now()}


def looks_like_id(ref):
    hexid = ref.removeprefix("sha256:")
    return 4 <= len(hexid) <= 64 and all(c in "0123456789abcdef" for c in hexid)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def busybox_applets(binary=BUSYBOX_BINARY):
    """The applets a busybox binary provides, with their install paths."""
    import subprocess
    out = subprocess.run([binary, "--list-full"], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def busybox_rootfs_tar(binary=BUSYBOX_BINARY):
    """A flat rootfs tarball (bytes) of a static busybox with every applet
    linked, a minimal /etc and the usual empty directories.  Deterministic:
    the same binary always gives the same layer digest."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, type_, mode, data=b"", linkname=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = type_, mode, 0
            info.linkname = linkname
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys",
                  "root", "home", "var", "var/run", "run"):
            add(d, tarfile.DIRTYPE, 0o700 if d == "root" else 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        with open(binary, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        for path in busybox_applets(binary):
            if path != "bin/busybox":
                add(path, tarfile.SYMTYPE, 0o777, linkname="/bin/busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644,
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("etc/group", tarfile.REGTYPE, 0o644,
            b"root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nnogroup:x:65534:\n")
    return buf.getvalue()


def build_busybox_image(store):
    """Create the built-in `busybox` image from the host's static busybox."""
    import io
    import sys
    print(f"diyc: creating the built-in image {BUILTIN_IMAGE} from {BUSYBOX_BINARY}", file=sys.stderr)
    # Its date is the binary's (its package's build, as installed): a real
    # date, and the same binary still gives the same image id.
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(os.stat(BUSYBOX_BINARY).st_mtime)))
    config = {
        "created": created,
        "config": {"Env": [DEFAULT_PATH_ENV], "Cmd": ["sh"]},
        "history": [{"created": created, "created_by": f"diyc: the host's {BUSYBOX_BINARY}",
                     "comment": "diyc's built-in image"}],
    }
    return store.import_tarball(io.BytesIO(busybox_rootfs_tar()), BUILTIN_IMAGE, config)


def _removal_events(root, image_id, names, deleted):
    """docker's events of an rmi: untag for each name, then delete."""
    from ..events import emit
    for name in names:
        emit(root, "image", "untag", image_id, {"name": name})
    if deleted:
        emit(root, "image", "delete", image_id, {"name": names[0] if names else image_id})
