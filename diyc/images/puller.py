"""`diyc pull`: an image from a registry into the store, its layers
fetched in parallel, each checked against its manifest's size and its
digests as it is unpacked (registry.py speaks the registry's protocol).

    pull              manifest (through an index: the platform's), config,
                      the layers the store lacks; a pull of an image already
                      present only tags it
    choose_manifest   an index's manifest for a platform (host_platform's)
    Progress          docker-like progress lines
"""

import os
import sys
import threading
import time

from .. import _json
from ..errors import InvalidArgument, NotFound
from .reference import check_digest, parse_reference
from .registry import (INDEX_TYPES, MANIFEST_TYPES, MAX_CONFIG_BYTES, Client, RegistryError,
                       check_image_config, load_credentials)

# -- platforms ------------------------------------------------------------------

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
         "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform():
    machine = os.uname().machine
    arch = _ARCH.get(machine, machine)
    variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine)
    return "linux", arch, variant


def parse_platform(spec):
    if spec is None:
        return host_platform()
    parts = spec.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid --platform {spec!r}: expected OS/ARCH[/VARIANT]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def choose_manifest(index, platform):
    """The descriptor in a manifest list / OCI index for (os, arch, variant)."""
    want_os, want_arch, want_variant = platform
    candidates = []
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        if p.get("os") != want_os or p.get("architecture") != want_arch:
            continue
        variant = p.get("variant")
        if want_variant and variant != want_variant and not (want_arch == "arm64" and want_variant == "v8" and not variant):
            continue
        candidates.append((variant is not None and variant != want_variant, desc))
    if not candidates:
        have = ", ".join(sorted({"/".join(filter(None, ((d.get("platform") or {}).get("os"),
                                                          (d.get("platform") or {}).get("architecture"),
                                                          (d.get("platform") or {}).get("variant"))))
                                 for d in index.get("manifests") or []})) or "none"
        raise NotFound(f"no image for platform {'/'.join(filter(None, platform))} (available: {have})")
    candidates.sort(key=lambda c: c[0])
    return candidates[0][1]


# -- progress -------------------------------------------------------------------

class Progress:
    """One line per layer, redrawn in place on a TTY; start/finish lines
    otherwise."""

    def __init__(self, stream=None, quiet=False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.lines = {}   # key -> text
        self.order = []
        self.drawn = 0
        self.last = 0.0
        self.lock = threading.Lock()

    def log(self, text):
        if self.quiet:
            return
        with self.lock:
            if self.tty:
                self._set(None, text)
            else:
                print(text, file=self.stream, flush=True)

    def update(self, key, text, force=True):
        if self.quiet:
            return
        with self.lock:
            if not self.tty:
                if force:
                    print(f"{key}: {text}", file=self.stream, flush=True)
                return
            now = time.monotonic()
            self.lines[key] = f"{key}: {text}"
            if key not in self.order:
                self.order.append(key)
            if force or now - self.last > 0.1:
                self.last = now
                self._redraw()

    def _set(self, key, text):
        key = key or f"_{len(self.order)}"
        self.lines[key] = text
        self.order.append(key)
        self._redraw()

    def _redraw(self):
        out = [f"\x1b[{self.drawn}A"] if self.drawn else []
        for k in self.order:
            out.append("\r\x1b[2K" + self.lines[k][:200] + "\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self.drawn = len(self.order)


def _mb(n):
    return f"{n / 1e6:.1f}MB"


class _LayerReader:
    """A layer blob's body as the store reads it: at most the size its
    manifest declares, the bytes counted for the progress line.  A stall or
    a connection that closes early is reported as such (the store would
    see a short stream and say "digest mismatch"), and once failed it stays
    failed, so the store's cleanup does not wait for the registry again."""

    def __init__(self, resp, client, what, size, callback):
        self.resp, self.client, self.what, self.size, self.callback = resp, client, what, size, callback
        self.failure = None

    def read(self, n=-1):
        from ..http import BodyIncomplete, HTTPException
        if self.failure is not None:
            raise self.failure
        # One byte past the declared size, to see a registry send more.
        want = self.size - self.resp.received + 1
        if n is not None and 0 <= n < want:
            want = n
        try:
            data = self.resp.read(want)
        except (BodyIncomplete, ConnectionError):
            self._fail(f"connection closed after {self._got()}")
        except (OSError, HTTPException) as e:
            self._fail(f"{self.client.reason(e)} with {self._got()}")
        if self.resp.received > self.size:
            self._fail(f"the registry sends more than the {self.size} bytes its manifest declares")
        if not data and want and self.resp.received < self.size and self.resp.length is None \
                and not self.resp.chunked:
            # a body framed by the end of the connection: the end came early
            self._fail(f"connection closed after {self._got()}")
        self.callback(self.resp.received)
        return data

    def _got(self):
        return f"{self.resp.received} of {self.size} bytes"

    def _fail(self, reason):
        self.resp.abort()
        self.failure = RegistryError(f"{self.what}: {reason}")
        raise self.failure


# -- pull -------------------------------------------------------------------

def pull(store, ref, platform=None, insecure=False, progress=None, max_workers=4):
    """Pull `ref` into `store` (see _pull); layers are safe from garbage
    collection until the image that uses them is recorded."""
    with store.adding():
        record = _pull(store, ref, platform, insecure, progress, max_workers)
    from ..events import emit
    emit(store.root, "image", "pull", str(ref), {"name": str(ref)})
    return record


def _pull(store, ref, platform=None, insecure=False, progress=None, max_workers=4):
    """Pull `ref` into `store`; returns the image record."""
    r = parse_reference(ref) if isinstance(ref, str) else ref
    plat = parse_platform(platform)
    progress = progress or Progress()
    client = Client(r.registry, r.repository, insecure=insecure,
                    credentials=load_credentials(store.root, r.registry))
    try:
        progress.log(f"Pulling {r}")
        manifest, digest = _image_manifest(client, r, plat)
        config_digest = manifest["config"]["digest"]
        repo_digest = f"{r.name}@{digest}"
        tag_ref = f"{r.name}:{r.tag}" if r.tag else None

        # Fast path: the same image is already stored, with all its layers.
        existing = store.existing_image(config_digest)
        if existing is not None:
            store.tag_pulled(existing["id"], tag_ref, repo_digest)
            progress.log(f"Digest: {digest}")
            progress.log(f"Status: Image is up to date for {r}")
            return existing

        config_bytes, config = _image_config(client, r, manifest["config"])
        diff_ids = check_image_config(config, len(manifest["layers"]), f"{r}: image config {config_digest}")
        todo, seen = [], set()
        for desc, diff_id in zip(manifest["layers"], diff_ids):
            if store.has_layer(diff_id) or diff_id in seen:
                progress.update(desc["digest"][7:19], "already exists")
                continue
            seen.add(diff_id)
            todo.append((desc, diff_id))
        added = []  # the layers this pull stored: discarded if it fails
        try:
            in_threads(todo, max_workers, lambda desc, diff_id: _fetch_layer(
                store, client, r, desc, diff_id, progress, added))
            size = sum(store.layer_size(d) for d in diff_ids)
            record = store.add_pulled_image(config_bytes, config, diff_ids, tag_ref, repo_digest, size)
        except BaseException:
            store.discard_layers(added)
            raise
        progress.log(f"Digest: {digest}")
        progress.log(f"Status: Downloaded newer image for {r}")
        return record
    finally:
        client.close()


def _image_manifest(client, r, plat):
    """The image manifest of `r` for platform `plat` (through its index,
    if it names one) -> (manifest, its digest)."""
    media, manifest, digest, _ = client.manifest(r.reference)
    if media in INDEX_TYPES:
        desc = choose_manifest(manifest, plat)
        media, manifest, digest, _ = client.manifest(check_digest(desc["digest"]))
        if media not in MANIFEST_TYPES:
            raise RegistryError(f"{r}: a manifest list inside a manifest list is not supported")
    return manifest, digest


def _image_config(client, r, config_desc):
    """The image config the manifest names -> (its bytes, parsed), capped
    at MAX_CONFIG_BYTES."""
    config_digest = config_desc["digest"]
    what = f"image config {config_digest}"
    if config_desc["size"] > MAX_CONFIG_BYTES:
        raise RegistryError(f"{what} is too large: {config_desc['size']} bytes declared, "
                            f"the limit is {MAX_CONFIG_BYTES}")
    config_bytes = client.blob_bytes(config_digest, MAX_CONFIG_BYTES, what)
    try:
        return config_bytes, _json.loads(config_bytes)
    except (ValueError, RecursionError):
        raise RegistryError(f"{r}: malformed image config {config_digest}: not JSON") from None


def in_threads(todo, max_workers, fetch):
    """fetch(a, b) for each pair (a, b) of `todo` (a layer's descriptor and
    diff-id, say), on up to max_workers threads; the first error is raised
    once every fetch has ended."""
    if len(todo) <= 1 or max_workers <= 1:
        for desc, diff_id in todo:
            fetch(desc, diff_id)
        return
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=min(max_workers, len(todo))) as pool:
        futures = [pool.submit(fetch, d, i) for d, i in todo]
        errors = []
        for f in futures:
            try:
                f.result()
            except BaseException as e:
                errors.append(e)
        if errors:
            raise errors[0]


def _fetch_layer(store, client, r, desc, diff_id, progress, added):
    """Download one layer into the store, checked against the size its
    manifest declares and its digests; a layer it stored goes into `added`
    (list.append is atomic: several threads share it)."""
    short = desc["digest"][7:19]
    size = desc["size"]
    what = f"pull {r}: layer {desc['digest']}"
    t0 = time.monotonic()
    progress.update(short, "downloading")
    resp = client.blob(desc["digest"])
    if resp.length is not None and resp.length > size:
        resp.abort()
        raise RegistryError(f"{what}: the registry announces {resp.length} bytes, "
                            f"its manifest declares {size}")
    reader = _LayerReader(resp, client, what, size, lambda n: progress.update(
        short, f"downloading {_mb(n)}/{_mb(size)}", force=False))
    try:
        _, _, new = store.add_layer_blob(reader, desc["digest"], diff_id,
                                         media_type=desc["mediaType"], size=size)
    finally:
        if not resp.done:  # the store gave up on it: no reading on
            resp.abort()
    if new:
        added.append(diff_id)
    dt = time.monotonic() - t0
    progress.update(short, f"pull complete ({_mb(resp.received)} in {dt:.1f}s)")
