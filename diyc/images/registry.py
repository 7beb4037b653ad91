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
when the host changes.  Plain HTTP for a loopback registry (localhost,
127.0.0.0/8, ::1: docker's default insecure registries); TLS anywhere else,
without verification (or plain HTTP if it does not speak TLS) with
--insecure.  A proxy from the environment (HTTPS_PROXY, HTTP_PROXY,
NO_PROXY; see diyc.http) carries the traffic to any host but loopback.

A registry is not trusted: manifests, indexes and image configs are capped
at 4 MiB (containerd's limit) and token responses at 1 MiB before they are
parsed, their shape is checked before it is used, and a layer blob is read
to at most the size its manifest declares.  A registry silent for longer
than DIYC_REGISTRY_TIMEOUT seconds (default 60) fails the pull, as does a
connection that closes early; both are reported as what they are.

diyc.http (not http.client: ~25 ms of imports), ssl (https only) and
threads are imported here, off the start path.
"""

import hashlib
import os
import threading

from .. import _json
from ..errors import DiycError, InvalidArgument, NotFound
from .reference import DOCKER_HUB, DOCKER_HUB_API, check_digest, is_digest, shown

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)
# All four: without the OCI types registry 2.8 answers 404 even by digest;
# without any it down-converts schema2 to schema1 (another digest).
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES)

CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json",
                "application/vnd.docker.container.image.v1+json")
LAYER_TYPES = frozenset((
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
))

# Caps on what a registry sends (the http module caps the headers).
MAX_MANIFEST_BYTES = 4 << 20   # a manifest or an index (containerd: 4 MiB)
MAX_CONFIG_BYTES = 4 << 20     # an image config
MAX_TOKEN_BYTES = 1 << 20      # a token server's answer
MAX_ERROR_BYTES = 4096         # the part of an error body shown
DEFAULT_TIMEOUT = 60           # seconds of silence; DIYC_REGISTRY_TIMEOUT



class RegistryError(DiycError):
    pass


class DigestMismatch(RegistryError):
    pass


def registry_timeout():
    """Seconds a registry may stay silent (connecting, or between two
    reads) before a pull gives up: DIYC_REGISTRY_TIMEOUT, default 60."""
    value = os.environ.get("DIYC_REGISTRY_TIMEOUT")
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if not 0 < seconds <= 86400:
        raise InvalidArgument(f"invalid DIYC_REGISTRY_TIMEOUT {shown(value)}: "
                              "expected seconds, more than 0 and at most 86400")
    return seconds


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
    from ..state import atomic_write
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
    from ..state import atomic_write
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

    def __init__(self, registry, repository, insecure=False, credentials=None, timeout=None):
        from ..http import is_loopback
        self.registry = registry
        self.host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        # loopback: plain HTTP, as docker's default insecure registries;
        # --insecure: TLS unverified, or plain HTTP if it does not speak TLS
        self.scheme = "http" if is_loopback(self.host) else "https"
        self.insecure = insecure
        self.repository = repository
        self.credentials = credentials
        self.timeout = registry_timeout() if timeout is None else timeout
        self.authorization = None
        self._auth_lock = threading.Lock()
        self._local = threading.local()
        self.extra_scopes = []  # asked of a token server too (a push: pull where it mounts from)

    def _connection(self, scheme, host, fresh=False):
        from ..http import Connection, HTTPException, proxy_for
        conns = self._local.__dict__.setdefault("conns", {})
        key = (scheme, host)
        if fresh and key in conns:
            conns.pop(key).close()
        if key not in conns:
            context = None
            if scheme == "https":
                context = tls_context(verify=not (self.insecure and host == self.host))
            try:
                proxy = proxy_for(scheme, host, os.environ)
            except HTTPException as e:
                raise RegistryError(f"registry {host}: {e}") from None
            conns[key] = Connection(host, timeout=self.timeout, tls_context=context, proxy=proxy)
        return conns[key]

    def close(self):
        for c in self._local.__dict__.get("conns", {}).values():
            c.close()

    def _send(self, method, scheme, host, path, headers, body=None):
        """The response's status and headers (the body is the caller's).
        `body`: bytes, or a seekable file sent from its start."""
        from ..http import HTTPException, RemoteDisconnected
        for attempt in (0, 1):
            conn = self._connection(scheme, host, fresh=attempt > 0)
            reused = conn.sock is not None
            if hasattr(body, "seek"):
                body.seek(0)
            try:
                conn.request(method, path, headers=headers, body=body)
            except OSError as e:
                conn.close()
                if reused and not attempt and isinstance(e, (BrokenPipeError, ConnectionResetError)):
                    continue  # a stale keep-alive connection gets one retry
                if scheme == "https" and self.insecure and host == self.host and is_tls_error(e):
                    self.scheme = scheme = "http"  # --insecure: a registry without TLS
                    continue
                raise RegistryError(self.connect_error(scheme, host, e)) from None
            except HTTPException as e:  # the proxy's answer to CONNECT
                raise RegistryError(f"cannot connect to registry {host}: {e}") from None
            try:
                return conn.getresponse()
            except (RemoteDisconnected, ConnectionResetError):
                if reused and not attempt:
                    continue
                raise RegistryError(f"registry {host} closed the connection without a response") from None
            except TimeoutError:
                raise RegistryError(f"registry {host}: no response after {self.timeout:g} s") from None
            except (OSError, HTTPException) as e:
                raise RegistryError(f"registry {host}: bad response: {self.reason(e)}") from None
        raise RegistryError(f"cannot connect to registry {host} ({scheme})")

    def connect_error(self, scheme, host, e):
        """One line for a failed connection; a TLS failure says what
        failed and what --insecure would do, not OpenSSL's text."""
        if not is_tls_error(e):
            return f"cannot connect to registry {host} ({scheme}): {self.reason(e)}"
        what = getattr(e, "verify_message", None) or getattr(e, "reason", None) or "handshake failed"
        hint = "" if self.insecure or host != self.host else \
            "; if you trust it, use --insecure (TLS without verification, or plain HTTP)"
        return f"registry {host}: TLS error ({what}){hint}"

    def reason(self, e):
        """A network error, as a message says it."""
        if isinstance(e, TimeoutError):
            return f"timed out after {self.timeout:g} s"
        return getattr(e, "strerror", None) or str(e) or type(e).__name__

    def read_body(self, resp, limit, what):
        """All of a response's body, at most `limit` bytes: RegistryError
        naming `what` when it is larger or does not arrive."""
        from ..http import HTTPException
        if resp.length is not None and resp.length > limit:
            resp.abort()
            raise RegistryError(f"{what} is too large: {resp.length} bytes announced, "
                                f"the limit is {limit}")
        try:
            data = resp.read(limit + 1)
        except (OSError, HTTPException) as e:
            resp.abort()
            raise RegistryError(f"{what}: {self.reason(e)}") from None
        if len(data) > limit:
            resp.abort()
            raise RegistryError(f"{what} is too large: more than {limit} bytes")
        return data

    def discard(self, resp):
        """Drop a body nobody reads (a 401's, a redirect's)."""
        from ..http import HTTPException
        try:
            resp.close()
        except (OSError, HTTPException):
            resp.abort()

    def get(self, path, accept=None):
        """GET /v2/<repository>/<path> (None: /v2/), following the auth
        challenge and redirects.  Returns the response (2xx) or raises."""
        return self.request("GET", f"/v2/{self.repository}/{path}" if path is not None else "/v2/",
                            accept=accept)

    def request(self, method, target, accept=None, headers=None, body=None):
        """METHOD `target` (a path on the registry, or a URL it gave: an
        upload's Location), answering the auth challenge (the body, bytes
        or a seekable file, is sent again) and following a GET's or HEAD's
        redirects.  Returns the response (2xx) or raises."""
        scheme, host = self.scheme, self.host
        if not target.startswith("/"):
            scheme, host, target = self.location(target, scheme, host)
        authed_retry = False
        for _ in range(self.MAX_REDIRECTS + 1):
            sent = {"User-Agent": "diyc/0.1", "Accept-Encoding": "identity", **(headers or {})}
            if accept:
                sent["Accept"] = accept
            if self.authorization and host == self.host:
                sent["Authorization"] = self.authorization
            resp = self._send(method, scheme, host, target, sent, body)
            if resp.status == 401 and host == self.host and not authed_retry:
                challenge = resp.getheader("WWW-Authenticate") or ""
                self.discard(resp)
                self.authenticate(challenge)
                authed_retry = True
                continue
            if resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                location = resp.getheader("Location")
                self.discard(resp)
                if not location:
                    raise RegistryError(f"registry {host}: redirect without a Location")
                scheme, host, target = self.location(location, scheme, host)
                continue
            if 200 <= resp.status < 300:
                return resp
            body = self.error_body(resp)
            raise self._http_error(resp.status, body, target)
        raise RegistryError(f"registry {self.host}: too many redirects")

    def location(self, location, scheme, host):
        """A Location the registry sent (a redirect, an upload's URL),
        relative to `scheme`://`host` -> (scheme, host, target); never
        from https down to plain HTTP, never with credentials in it."""
        from urllib.parse import urlsplit
        try:
            url = urlsplit(location)
        except ValueError:
            url = None
        if url is None or url.scheme not in ("", "http", "https") or "@" in url.netloc:
            raise RegistryError(f"registry {host}: bad redirect to {shown(location)}")
        if url.scheme == "http" and scheme == "https":
            raise RegistryError(f"registry {host}: refusing a redirect from https to "
                                f"plain HTTP ({shown(location)})")
        if url.netloc:
            scheme, host = url.scheme or scheme, url.netloc
        return scheme, host, (url.path or "/") + (f"?{url.query}" if url.query else "")

    def error_body(self, resp):
        """The start of an error response's body (b"" if it does not come)."""
        from ..http import HTTPException
        try:
            body = resp.read(MAX_ERROR_BYTES)
        except (OSError, HTTPException):
            body = b""
        self.discard(resp)
        return body

    def _http_error(self, status, body, target):
        detail = ""
        try:
            errors = _json.loads(body).get("errors") or []
            detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
        except (ValueError, AttributeError, TypeError, RecursionError):
            detail = body[:200].decode(errors="replace")
        detail = " ".join(detail.split())[:300]  # one line, however the registry wrote it
        if status == 401:
            return RegistryError(f"registry {self.registry}: authentication required or refused"
                                 f" ({detail or 'unauthorized'}); try `diyc login {self.registry}`")
        target = target.split("?", 1)[0]  # an upload's query may hold its state or a signature
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
                                    f"challenge {shown(challenge)}")

    def _token(self, params, basic):
        from urllib.parse import urlencode, urlsplit
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry}: Bearer challenge without a realm")
        try:
            url = urlsplit(realm)
        except ValueError:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.netloc or "@" in url.netloc:
            raise RegistryError(f"registry {self.registry}: bad token realm {shown(realm)}")
        # credentials in clear text only to this machine, or to the registry
        # itself when it is plain HTTP already (a loopback one, --insecure)
        from ..http import is_loopback
        if url.scheme == "http" and (self.scheme == "https" or not (
                is_loopback(url.netloc) or url.netloc.lower() == self.host.lower())):
            raise RegistryError(f"registry {self.registry}: refusing a plain-HTTP token realm {shown(realm)}")
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        if self.repository:
            query.setdefault("scope", f"repository:{self.repository}:pull")
        scopes = [("scope", scope) for scope in self.extra_scopes if scope != query.get("scope")]
        path = (url.path or "/") + "?" + (f"{url.query}&" if url.query else "") + \
            urlencode(list(query.items()) + scopes)
        headers = {"User-Agent": "diyc/0.1"}
        if basic:
            headers["Authorization"] = basic
        resp = self._send("GET", url.scheme, url.netloc, path, headers)
        if resp.status != 200:
            body = " ".join(self.error_body(resp)[:200].decode(errors="replace").split())
            raise RegistryError(f"token server {url.netloc} refused ({resp.status}): {body}")
        body = self.read_body(resp, MAX_TOKEN_BYTES, f"the answer of token server {url.netloc}")
        try:
            doc = _json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError, RecursionError):
            token = None
        # It goes into a header line: printable ASCII, no spaces.
        if not (isinstance(token, str) and token and token.isascii() and token.isprintable()
                and " " not in token):
            raise RegistryError(f"token server {url.netloc} sent no token")
        return token

    # -- the API ------------------------------------------------------------

    def ping(self):
        self.discard(self.get(None))

    def manifest(self, reference):
        """-> (media type, parsed manifest, digest, raw bytes).  The digest is
        of the exact bytes received and must match the one asked for (by
        digest) and the one the registry announces."""
        sep = "@" if reference.startswith("sha256:") else ":"
        where = f"{self.repository}{sep}{reference}"
        try:
            resp = self.get(f"manifests/{reference}", accept=ACCEPT)
        except NotFound:
            raise NotFound(f"manifest unknown: {self.registry}/{where} not found") from None
        body = self.read_body(resp, MAX_MANIFEST_BYTES, f"manifest {self.registry}/{where}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise DigestMismatch(f"manifest digest mismatch for {self.repository}@{reference}: "
                                 f"received content hashes to {digest}")
        announced = resp.getheader("Docker-Content-Digest")
        if announced and announced.startswith("sha256:") and announced != digest:
            raise DigestMismatch(f"manifest digest mismatch for {where}: "
                                 f"registry says {shown(announced)}, content hashes to {digest}")
        try:
            doc = _json.loads(body)
        except (ValueError, RecursionError) as e:
            raise RegistryError(f"malformed manifest for {where}: {str(e)[:120]}") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"malformed manifest for {where}: not a JSON object")
        media = doc.get("mediaType")
        if media is not None and not isinstance(media, str):
            raise RegistryError(f"malformed manifest for {where}: mediaType is {shown(media)}")
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        if doc.get("schemaVersion") == 1 or "schema1" in (media or ctype) or "prettyjws" in (media or ctype):
            raise RegistryError(f"{where}: Docker schema1 manifests are not supported")
        if not media:
            media = ctype
            if media not in MANIFEST_TYPES + INDEX_TYPES:
                # no mediaType and a generic Content-Type: tell them apart by shape
                media = MT_OCI_INDEX if "manifests" in doc else MT_OCI_MANIFEST if "config" in doc else media
        if media not in MANIFEST_TYPES + INDEX_TYPES:
            raise RegistryError(f"{where}: unsupported manifest type {shown(media)}")
        if doc.get("schemaVersion") != 2:
            raise RegistryError(f"malformed manifest for {where}: schemaVersion is "
                                f"{shown(doc.get('schemaVersion'))}, expected 2")
        if media in INDEX_TYPES:
            check_index(doc, f"manifest list {where}")
        else:
            check_image_manifest(doc, f"manifest {where}")
        return media, doc, digest, body

    def blob(self, digest):
        """The response for a blob (caller reads and verifies it)."""
        return self.get(f"blobs/{check_digest(digest)}")

    def blob_bytes(self, digest, limit=MAX_CONFIG_BYTES, what=None):
        what = what or f"blob {digest}"
        data = self.read_body(self.blob(digest), limit, what)
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise DigestMismatch(f"blob digest mismatch: expected {digest}, received content hashes to {got}")
        return data


def tls_context(verify=True):
    """The TLS settings of a registry connection: the system's trust store
    (SSL_CERT_FILE/SSL_CERT_DIR change it), or none (--insecure)."""
    import ssl
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def is_tls_error(e):
    import sys
    ssl = sys.modules.get("ssl")  # not imported: no TLS was tried
    return ssl is not None and isinstance(e, ssl.SSLError)


# -- what a registry sends: its shape, checked before use ----------------------

def check_descriptor(desc, what, media_types=None):
    """A content descriptor (mediaType, digest, size) -> desc, or
    RegistryError.  `media_types`: the ones allowed (None: any string)."""
    if not isinstance(desc, dict):
        raise RegistryError(f"{what} is not a JSON object: {shown(desc)}")
    media = desc.get("mediaType")
    if media is None and media_types is not None:
        raise RegistryError(f"{what} has no mediaType")
    if media is not None and (not isinstance(media, str)
                              or (media_types is not None and media not in media_types)):
        raise RegistryError(f"{what} has an unsupported mediaType {shown(media)}")
    digest = desc.get("digest")
    if not is_digest(digest):
        raise RegistryError(f"{what} has an invalid digest {shown(digest)}: expected sha256:<64 hex digits>")
    size = desc.get("size")
    if type(size) is not int or size < 0:
        raise RegistryError(f"{what} has an invalid size {shown(size)}: expected a byte count")
    return desc


def check_image_manifest(doc, where):
    """An image manifest's config and layers descriptors, checked."""
    check_descriptor(doc.get("config"), f"{where}: config", CONFIG_TYPES)
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise RegistryError(f"{where}: layers is not a list: {shown(layers)}")
    for i, desc in enumerate(layers):
        check_descriptor(desc, f"{where}: layer {i}", LAYER_TYPES)


def check_index(doc, where):
    """A manifest list / OCI index: a list of descriptors, each with an
    optional platform object of strings."""
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise RegistryError(f"{where}: manifests is not a list: {shown(manifests)}")
    for i, desc in enumerate(manifests):
        check_descriptor(desc, f"{where}: entry {i}")
        platform = desc.get("platform")
        if platform is None:
            continue
        if not (isinstance(platform, dict)
                and all(isinstance(platform.get(k), (str, type(None)))
                        for k in ("os", "architecture", "variant"))):
            raise RegistryError(f"{where}: entry {i} has a malformed platform {shown(platform)}")


def check_image_config(config, layer_count, where):
    """An image config: rootfs.diff_ids names as many layers as the
    manifest has.  -> the diff-ids."""
    if not isinstance(config, dict):
        raise RegistryError(f"{where} is not a JSON object")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise RegistryError(f"{where}: rootfs.diff_ids is not a list: {shown(diff_ids)}")
    if len(diff_ids) != layer_count:
        raise RegistryError(f"{where}: the manifest lists {layer_count} layers, "
                            f"the config {len(diff_ids)} diff-ids")
    for d in diff_ids:
        if not is_digest(d):
            raise RegistryError(f"{where}: invalid diff-id {shown(d)}: expected sha256:<64 hex digits>")
    # What a container start reads from it, checked as `run` checks it, so
    # an image that cannot run is refused here, before it is stored.
    from ..config import image_run_config
    try:
        image_run_config(config)
    except InvalidArgument as e:
        raise RegistryError(f"{where}: {e}") from None
    return diff_ids


# -- platforms --------------------------------------------------------------

def login(root, registry, user, password, insecure=False):
    """Check the credentials against the registry, then store them (0600)."""
    if registry in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        registry = DOCKER_HUB
    client = Client(registry, "", insecure=insecure, credentials=(user, password))
    try:
        client.ping()
    finally:
        client.close()
    store_credentials(root, registry, user, password)
