"""The image store: named references -> image records -> layers.

An image record (images/<id>.json) holds the image config (Env, Cmd,
Entrypoint, WorkingDir, User, ...) and its layers, bottom first, by diff-id
(the sha256 of the uncompressed layer tar).  Each layer is unpacked once
into layers/<hex>/ and shared by every image that uses it; a container's
root is an overlay of those directories.  The id of an image is the sha256
of its config JSON, as in docker.
"""

import os
import time

from . import _json
from .errors import Conflict, ImageNotFound, InvalidArgument
from .state import Root, read_json, remove_tree, write_json

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILTIN_IMAGE = "busybox:latest"
BUSYBOX_BINARY = "/bin/busybox"

_REF_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-/")
_TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def parse_reference(ref):
    """'name[:tag]' -> (name, tag).  Docker's rules, checked by hand (`re`
    is too slow to import on the start path)."""
    if not ref or len(ref) > 255:
        raise InvalidArgument(f"invalid reference format: {ref!r}")
    name, tag = ref, "latest"
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        name, tag = ref[:colon], ref[colon + 1:]
        if not tag or len(tag) > 128 or tag[0] in ".-" or not set(tag) <= _TAG_CHARS:
            raise InvalidArgument(f"invalid reference format: bad tag in {ref!r}")
    first, _, rest = name.partition("/")
    # a registry host may carry a port and upper case
    if rest and ("." in first or ":" in first or first == "localhost"):
        host_ok = all(c.isalnum() or c in ".-:" for c in first)
        path = rest
    else:
        host_ok, path = True, name
    if (not host_ok or not path or not set(path) <= _REF_CHARS
            or any(not part or not part[0].isalnum() or not part[-1].isalnum()
                   for part in path.split("/"))):
        raise InvalidArgument(f"invalid reference format: {ref!r} (names are lower case: a-z 0-9 . _ - /)")
    return name, tag


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

    def resolve(self, ref):
        """An image record by name[:tag], id or unique id prefix."""
        repos = self._read_repositories()
        if ":" in ref or not _looks_like_id(ref):
            name, tag = parse_reference(ref)
            image_id = repos.get(f"{name}:{tag}")
            if image_id:
                return read_json(self._record_path(image_id))
        if _looks_like_id(ref):
            hexid = ref.removeprefix("sha256:")
            matches = [f for f in os.listdir(self.root.images)
                       if f.startswith(hexid) and f.endswith(".json") and f != "repositories.json"]
            if len(matches) == 1:
                return read_json(f"{self.root.images}/{matches[0]}")
            if len(matches) > 1:
                raise InvalidArgument(f"image id prefix {ref!r} is ambiguous")
        raise ImageNotFound(f"image not found: {ref}")

    def get(self, ref):
        """resolve(), creating the built-in busybox image on first use."""
        try:
            return self.resolve(ref)
        except ImageNotFound:
            if ref in ("busybox", BUILTIN_IMAGE) and os.path.exists(BUSYBOX_BINARY):
                return build_busybox_image(self)
            raise

    def list(self):
        repos = self._read_repositories()
        tags = {}
        for ref, image_id in repos.items():
            tags.setdefault(image_id, []).append(ref)
        images = []
        for f in sorted(os.listdir(self.root.images)):
            if f.endswith(".json") and f != "repositories.json":
                record = read_json(f"{self.root.images}/{f}")
                record["repo_tags"] = sorted(tags.get(record["id"], []))
                images.append(record)
        return images

    def layer_dirs(self, record):
        """The unpacked layer directories of an image, top layer first (the
        order overlayfs wants its lowerdirs in)."""
        return [f"{self.root.layers}/{d.removeprefix('sha256:')}" for d in reversed(record["layers"])]

    # -- changes ------------------------------------------------------------

    def add_layer(self, fileobj):
        """Unpack a layer tar stream into the store; returns its diff-id.
        The layer is unpacked in tmp/ and renamed into place when complete,
        so a half-unpacked layer is never visible under layers/."""
        from .layers import unpack_layer
        root = self.root.ensure()
        staging = f"{root.tmp}/layer-{os.getpid()}-{os.urandom(4).hex()}"
        os.mkdir(staging, 0o755)
        try:
            diff_id, size = unpack_layer(fileobj, staging)
            final = f"{root.layers}/{diff_id.removeprefix('sha256:')}"
            try:
                os.rename(staging, final)
            except OSError:
                if not os.path.isdir(final):
                    raise
                # The same layer is already stored (shared by another image).
                remove_tree(staging)
            return diff_id, size
        except BaseException:
            remove_tree(staging)
            raise

    def add_image(self, config, layers, ref=None, size=0):
        """Record an image (OCI image config + diff-ids) and tag it."""
        config = dict(config)
        config.setdefault("architecture", "amd64")
        config.setdefault("os", "linux")
        config["rootfs"] = {"type": "layers", "diff_ids": list(layers)}
        import hashlib
        config_bytes = _json.dumps(config).encode()
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        record = {
            "id": image_id,
            "config": config,
            "layers": list(layers),
            "size": size,
            "created": config.get("created") or _now(),
        }
        with self.root.ensure().lock("images"):
            write_json(self._record_path(image_id), record)
            if ref:
                self._tag_locked(image_id, ref)
        return record

    def _tag_locked(self, image_id, ref):
        name, tag = parse_reference(ref)
        repos = self._read_repositories()
        repos[f"{name}:{tag}"] = image_id
        write_json(self._repositories, repos)

    def tag(self, source, ref):
        record = self.resolve(source)
        with self.root.lock("images"):
            self._tag_locked(record["id"], ref)

    def remove(self, ref, users=()):
        """Untag `ref`; when no tag is left, delete the image and every layer
        no other image uses.  `users`: ids of images containers run on."""
        record = self.resolve(ref)
        image_id = record["id"]
        with self.root.lock("images"):
            repos = self._read_repositories()
            names = [r for r, i in repos.items() if i == image_id]
            by_name = ref if ref in repos else None
            if by_name is None and ":" not in ref and not _looks_like_id(ref):
                by_name = f"{ref}:latest" if f"{ref}:latest" in repos else None
            if by_name and len(names) > 1:
                del repos[by_name]
                write_json(self._repositories, repos)
                return [f"Untagged: {by_name}"]
            if image_id in users:
                raise Conflict(f"image {ref} is in use by a container; remove the container first")
            for name in names:
                del repos[name]
            write_json(self._repositories, repos)
            os.unlink(self._record_path(image_id))
            out = [f"Untagged: {n}" for n in names] + [f"Deleted: {image_id}"]
            out += self._collect_layers()
        return out

    def _collect_layers(self):
        """Delete layers no image references (called under the images lock)."""
        used = set()
        for f in os.listdir(self.root.images):
            if f.endswith(".json") and f != "repositories.json":
                used.update(d.removeprefix("sha256:") for d in read_json(f"{self.root.images}/{f}")["layers"])
        removed = []
        for layer in os.listdir(self.root.layers):
            if layer not in used:
                remove_tree(f"{self.root.layers}/{layer}")
                removed.append(f"Deleted layer: sha256:{layer}")
        return removed

    def import_tarball(self, fileobj, ref, config=None):
        """`diyc import`: a flat rootfs tarball (docker export) as an image."""
        parse_reference(ref)  # reject a bad name before unpacking anything
        diff_id, size = self.add_layer(fileobj)
        config = config or {"config": {"Env": [DEFAULT_PATH_ENV], "Cmd": ["sh"]}}
        config.setdefault("created", _now())
        try:
            return self.add_image(config, [diff_id], ref, size)
        except BaseException:
            with self.root.lock("images"):
                self._collect_layers()
            raise


def _looks_like_id(ref):
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
    config = {
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [DEFAULT_PATH_ENV], "Cmd": ["sh"]},
    }
    return store.import_tarball(io.BytesIO(busybox_rootfs_tar()), BUILTIN_IMAGE, config)
