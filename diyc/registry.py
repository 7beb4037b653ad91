"""`diyc pull`: the OCI distribution API (v2), with Docker Hub's naming rules.

    ref -> Reference (registry, repository, tag/digest)
        -> manifest (Docker schema2 or OCI; a list/index picks os/arch)
        -> config blob (its digest is the image id; rootfs.diff_ids name the layers)
        -> layer blobs (in parallel; a layer whose diff-id is stored is skipped)

Every byte is hashed as it arrives and compared with the digest that named
it before anything becomes visible in the store: a blob is unpacked into a
staging dir while it downloads and renamed into place only once both its
compressed digest and its diff-id match.

Auth: a 401 carries a challenge.  `Basic` -> the credentials `diyc login`
stored; `Bearer realm=...,service=...,scope=...` -> a token from the realm
(anonymous, or with those credentials), then `Authorization: Bearer`.
Redirects (blobs often live on another host) drop the Authorization header
when the host changes.  Plain HTTP only with --insecure.

diyc.http (not http.client: ~25 ms of imports), ssl (https only) and
threads are imported here, off the start path.
"""

import hashlib
import os
import sys
import threading
import time

from . import _json
from .errors import DiycError, InvalidArgument, NotFound

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)
# All four: without the OCI types registry 2.8 answers 404 even by digest;
# without any it down-converts schema2 to schema1 (another digest).
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HEX = set("0123456789abcdef")


class RegistryError(DiycError):
    pass


class DigestMismatch(RegistryError):
    pass


# -- references -------------------------------------------------------------

class Reference:
    def __init__(self, registry, repository, tag=None, digest=None):
        self.registry, self.repository, self.tag, self.digest = registry, repository, tag, digest

    @property
    def api_host(self):
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self):
        """The local name, as docker shows it: `alpine`, `user/x`, `host:5000/x`."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self):
        """What goes after /manifests/: the digest if given, else the tag."""
        return self.digest or self.tag

    def __str__(self):
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def check_digest(digest, what="digest"):
    if not (isinstance(digest, str) and digest.startswith("sha256:") and len(digest) == 71
            and set(digest[7:]) <= _HEX):
        raise InvalidArgument(f"invalid {what} {digest!r}: expected sha256:<64 hex digits>")
    return digest


def parse_reference(ref):
    """`[REGISTRY/]NAME[:TAG][@sha256:DIGEST]` -> Reference, Docker Hub rules:
    the first component is a registry when it has a `.` or `:` or is
    `localhost`; otherwise the registry is docker.io and a one-component
    name lives under `library/`."""
    from .images import parse_reference as parse_name
    name, at, digest = ref.partition("@")
    if at:
        check_digest(digest)
    tagged_name, tag = parse_name(name)  # validates characters and the tag
    has_tag = tagged_name != name
    first, slash, rest = tagged_name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, tagged_name
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if repository != repository.lower():
        raise InvalidArgument(f"invalid reference format: repository name must be lowercase: {ref!r}")
    if at and not has_tag:
        tag = None
    return Reference(registry, repository, tag, digest or None)


# -- credentials ------------------------------------------------------------

def _auth_file(root):
    return f"{root.path}/auth.json"


def load_credentials(root, registry):
    import base64
    try:
        auths = _json.load_file(_auth_file(root)).get("auths", {})
    except FileNotFoundError:
        return None
    entry = auths.get(registry)
    if not entry:
        return None
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, password


def store_credentials(root, registry, user, password):
    import base64
    from .state import atomic_write
    root.ensure()
    try:
        data = _json.load_file(_auth_file(root))
    except FileNotFoundError:
        data = {}
    data.setdefault("auths", {})[registry] = {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    atomic_write(_auth_file(root), _json.dumps(data) + "\n", mode=0o600)
    os.chmod(_auth_file(root), 0o600)


def remove_credentials(root, registry):
    from .state import atomic_write
    try:
        data = _json.load_file(_auth_file(root))
    except FileNotFoundError:
        return False
    found = data.get("auths", {}).pop(registry, None) is not None
    atomic_write(_auth_file(root), _json.dumps(data) + "\n", mode=0o600)
    return found


def parse_challenge(header):
    """`Bearer realm="x",service="y"` -> ('bearer', {'realm': 'x', ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params, i, n = {}, 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            value = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(value)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


# -- the HTTP client --------------------------------------------------------

class Client:
    """One registry, one repository.  Each thread keeps its own keep-alive
    connections; the auth header is shared."""

    MAX_REDIRECTS = 5

    def __init__(self, registry, repository, insecure=False, credentials=None, timeout=60):
        self.registry = registry
        self.host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self.scheme = "http" if insecure else "https"
        self.repository = repository
        self.credentials = credentials
        self.timeout = timeout
        self.authorization = None
        self._auth_lock = threading.Lock()
        self._local = threading.local()

    def _connection(self, scheme, host, fresh=False):
        from .http import Connection
        conns = self._local.__dict__.setdefault("conns", {})
        key = (scheme, host)
        if fresh and key in conns:
            conns.pop(key).close()
        if key not in conns:
            context = None
            if scheme == "https":
                import ssl
                context = ssl.create_default_context()
            conns[key] = Connection(host, timeout=self.timeout, tls_context=context)
        return conns[key]

    def close(self):
        for c in self._local.__dict__.get("conns", {}).values():
            c.close()

    def _send(self, method, scheme, host, path, headers):
        from .http import HTTPException, RemoteDisconnected
        for attempt in (0, 1):
            conn = self._connection(scheme, host, fresh=attempt > 0)
            try:
                conn.request(method, path, headers=headers)
                return conn.getresponse()
            except (RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt:  # a stale keep-alive connection gets one retry
                    raise RegistryError(f"registry {host} closed the connection") from None
            except (OSError, HTTPException) as e:
                conn.close()
                self._local.conns.pop((scheme, host), None)
                reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
                raise RegistryError(f"cannot connect to registry {host} ({scheme}): {reason}") from None

    def get(self, path, accept=None):
        """GET /v2/<repository>/<path>, following the auth challenge and
        redirects.  Returns the response (2xx) or raises."""
        from urllib.parse import urlsplit
        scheme, host = self.scheme, self.host
        target = f"/v2/{self.repository}/{path}" if path is not None else "/v2/"
        authed_retry = False
        for _ in range(self.MAX_REDIRECTS + 1):
            headers = {"User-Agent": "diyc/0.1", "Accept-Encoding": "identity"}
            if accept:
                headers["Accept"] = accept
            if self.authorization and host == self.host:
                headers["Authorization"] = self.authorization
            resp = self._send("GET", scheme, host, target, headers)
            if resp.status == 401 and host == self.host and not authed_retry:
                challenge = resp.getheader("WWW-Authenticate") or ""
                resp.read()
                self.authenticate(challenge)
                authed_retry = True
                continue
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.getheader("Location")
                resp.read()
                if not location:
                    raise RegistryError(f"registry {host}: redirect without a Location")
                url = urlsplit(location)
                if url.netloc:
                    scheme, host = url.scheme or scheme, url.netloc
                target = (url.path or "/") + (f"?{url.query}" if url.query else "")
                continue
            if 200 <= resp.status < 300:
                return resp
            body = resp.read(4096)
            raise self._http_error(resp.status, body, target)
        raise RegistryError(f"registry {self.host}: too many redirects")

    def _http_error(self, status, body, target):
        detail = ""
        try:
            errors = _json.loads(body).get("errors") or []
            detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
        except (ValueError, AttributeError):
            detail = body[:200].decode(errors="replace").strip()
        if status == 401:
            return RegistryError(f"registry {self.registry}: authentication required or refused"
                                 f" ({detail or 'unauthorized'}); try `diyc login {self.registry}`")
        if status == 404:
            return NotFound(f"not found in registry {self.registry}: {target} ({detail or '404'})")
        return RegistryError(f"registry {self.registry}: HTTP {status} for {target}"
                             + (f" ({detail})" if detail else ""))

    def authenticate(self, challenge):
        """Answer a 401's challenge; sets self.authorization."""
        import base64
        with self._auth_lock:
            scheme, params = parse_challenge(challenge)
            basic = None
            if self.credentials:
                basic = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if scheme == "basic":
                if not basic:
                    raise RegistryError(f"registry {self.registry} requires a login: "
                                        f"run `diyc login {self.registry}` first")
                self.authorization = basic
            elif scheme == "bearer":
                self.authorization = "Bearer " + self._token(params, basic)
            else:
                raise RegistryError(f"registry {self.registry}: unsupported authentication "
                                    f"challenge {challenge!r}")

    def _token(self, params, basic):
        from urllib.parse import urlencode, urlsplit
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry}: Bearer challenge without a realm")
        url = urlsplit(realm)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise RegistryError(f"registry {self.registry}: bad token realm {realm!r}")
        if url.scheme == "http" and self.scheme == "https":
            raise RegistryError(f"registry {self.registry}: refusing a plain-HTTP token realm {realm!r}")
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        if self.repository:
            query.setdefault("scope", f"repository:{self.repository}:pull")
        path = (url.path or "/") + "?" + (f"{url.query}&" if url.query else "") + urlencode(query)
        headers = {"User-Agent": "diyc/0.1"}
        if basic:
            headers["Authorization"] = basic
        resp = self._send("GET", url.scheme, url.netloc, path, headers)
        body = resp.read()
        if resp.status != 200:
            raise RegistryError(f"token server {url.netloc} refused ({resp.status}): "
                                f"{body[:200].decode(errors='replace').strip()}")
        try:
            doc = _json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"token server {url.netloc} sent no token")
        return token

    # -- the API ------------------------------------------------------------

    def ping(self):
        self.get(None).read()

    def manifest(self, reference):
        """-> (media type, parsed manifest, digest, raw bytes).  The digest is
        of the exact bytes received and must match the one asked for (by
        digest) and the one the registry announces."""
        try:
            resp = self.get(f"manifests/{reference}", accept=ACCEPT)
        except NotFound:
            raise NotFound(f"manifest unknown: {self.registry}/{self.repository}:{reference} "
                           "not found") from None
        body = resp.read()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise DigestMismatch(f"manifest digest mismatch for {self.repository}@{reference}: "
                                 f"received content hashes to {digest}")
        announced = resp.getheader("Docker-Content-Digest")
        if announced and announced.startswith("sha256:") and announced != digest:
            raise DigestMismatch(f"manifest digest mismatch for {self.repository}:{reference}: "
                                 f"registry says {announced}, content hashes to {digest}")
        try:
            doc = _json.loads(body)
        except ValueError as e:
            raise RegistryError(f"malformed manifest for {self.repository}:{reference}: {e}") from None
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        media = doc.get("mediaType") or ctype
        if doc.get("schemaVersion") == 1 or "schema1" in media or "prettyjws" in media:
            raise RegistryError(f"{self.repository}:{reference}: Docker schema1 manifests are not supported")
        if media not in MANIFEST_TYPES + INDEX_TYPES:
            # no mediaType and a generic Content-Type: tell them apart by shape
            media = MT_OCI_INDEX if "manifests" in doc else MT_OCI_MANIFEST if "config" in doc else media
        if media not in MANIFEST_TYPES + INDEX_TYPES:
            raise RegistryError(f"{self.repository}:{reference}: unsupported manifest type {media!r}")
        return media, doc, digest, body

    def blob(self, digest):
        """The response for a blob (caller reads and verifies it)."""
        return self.get(f"blobs/{check_digest(digest)}")

    def blob_bytes(self, digest, limit=16 << 20):
        resp = self.blob(digest)
        data = resp.read(limit + 1)
        if len(data) > limit:
            raise RegistryError(f"blob {digest} is larger than {limit} bytes")
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise DigestMismatch(f"blob digest mismatch: expected {digest}, received content hashes to {got}")
        return data


# -- platforms --------------------------------------------------------------

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


# -- progress ---------------------------------------------------------------

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


class _CountingReader:
    """Reports the bytes read through it to a callback."""

    def __init__(self, f, callback):
        self.f, self.callback, self.n = f, callback, 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.n += len(data)
        self.callback(self.n)
        return data


# -- pull -------------------------------------------------------------------

def pull(store, ref, platform=None, insecure=False, progress=None, max_workers=4):
    """Pull `ref` into `store` (see _pull); layers are safe from garbage
    collection until the image that uses them is recorded."""
    with store.adding():
        return _pull(store, ref, platform, insecure, progress, max_workers)


def _pull(store, ref, platform=None, insecure=False, progress=None, max_workers=4):
    """Pull `ref` into `store`; returns the image record."""
    from .http import HTTPException
    r = parse_reference(ref) if isinstance(ref, str) else ref
    plat = parse_platform(platform)
    progress = progress or Progress()
    root = store.root
    client = Client(r.registry, r.repository, insecure=insecure,
                    credentials=load_credentials(root, r.registry))
    try:
        progress.log(f"Pulling {r}")
        media, manifest, digest, _ = client.manifest(r.reference)
        if media in INDEX_TYPES:
            desc = choose_manifest(manifest, plat)
            media, manifest, digest, _ = client.manifest(check_digest(desc["digest"]))
            if media not in MANIFEST_TYPES:
                raise RegistryError(f"{r}: a manifest list inside a manifest list is not supported")
        config_desc = manifest.get("config") or {}
        config_digest = check_digest(config_desc.get("digest"), "config digest")
        layer_descs = manifest.get("layers") or []
        for d in layer_descs:
            check_digest(d.get("digest"), "layer digest")
        repo_digest = f"{r.name}@{digest}"
        tag_ref = f"{r.name}:{r.tag}" if r.tag else None

        # Fast path: the same image is already stored, with all its layers.
        existing = store.existing_image(config_digest)
        if existing is not None:
            store.tag_pulled(existing["id"], tag_ref, repo_digest)
            progress.log(f"Digest: {digest}")
            progress.log(f"Status: Image is up to date for {r}")
            return existing

        config_bytes = client.blob_bytes(config_digest)
        try:
            config = _json.loads(config_bytes)
            diff_ids = list(config["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"{r}: malformed image config {config_digest}") from None
        if len(diff_ids) != len(layer_descs):
            raise RegistryError(f"{r}: the manifest lists {len(layer_descs)} layers, "
                                f"the config {len(diff_ids)} diff-ids")
        for d in diff_ids:
            check_digest(d, "diff-id")

        todo, seen = [], set()
        for desc, diff_id in zip(layer_descs, diff_ids):
            short = desc["digest"][7:19]
            if store.has_layer(diff_id) or diff_id in seen:
                progress.update(short, "already exists")
                continue
            seen.add(diff_id)
            todo.append((desc, diff_id))

        added = []
        added_lock = threading.Lock()

        def fetch(desc, diff_id):
            short = desc["digest"][7:19]
            size = desc.get("size")
            total = f"/{_mb(size)}" if isinstance(size, int) else ""
            t0 = time.monotonic()
            progress.update(short, "downloading")
            resp = client.blob(desc["digest"])
            reader = _CountingReader(resp, lambda n: progress.update(
                short, f"downloading {_mb(n)}{total}", force=False))
            try:
                _, _, new = store.add_layer_blob(reader, desc["digest"], diff_id,
                                                 media_type=desc.get("mediaType"), size=size)
            except HTTPException as e:
                raise RegistryError(f"download of {desc['digest']} failed: {e}") from None
            finally:
                resp.close()
            if new:
                with added_lock:
                    added.append(diff_id)
            dt = time.monotonic() - t0
            progress.update(short, f"pull complete ({_mb(reader.n)} in {dt:.1f}s)")

        try:
            if len(todo) <= 1 or max_workers <= 1:
                for desc, diff_id in todo:
                    fetch(desc, diff_id)
            else:
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


def login(root, registry, user, password, insecure=False):
    """Check the credentials against the registry, then store them (0600)."""
    if registry in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        registry = DOCKER_HUB
    client = Client(registry, "", insecure=insecure, credentials=(user, password))
    try:
        client.get(None).read()
    finally:
        client.close()
    store_credentials(root, registry, user, password)
