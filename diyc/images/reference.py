"""Image references, `[REGISTRY/]NAME[:TAG][@sha256:DIGEST]`, parsed once
for the store (a local name and tag) and the registry (registry host,
repository, tag, digest), with Docker Hub's naming rules.  Checked by hand:
`re` is too slow to import on the start path, which resolves `busybox`."""

from ..errors import InvalidArgument

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
MAX_NAME = 255       # a name with its tag, as docker limits it
MAX_TAG = 128
_HEX = set("0123456789abcdef")
_PATH_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-/")
_TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class Reference:
    """A parsed reference.  `given` is the name as written (no tag): the
    store's key; `registry`/`repository` are where a registry has it."""

    def __init__(self, registry, repository, tag=None, digest=None, given=None):
        self.registry, self.repository, self.tag, self.digest = registry, repository, tag, digest
        self.given = given

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


def is_digest(value):
    return (isinstance(value, str) and value.startswith("sha256:") and len(value) == 71
            and set(value[7:]) <= _HEX)


def shown(value, limit=80):
    """`value` as an error message quotes it: repr, cut to `limit` characters
    (what a registry sends can be megabytes, or have newlines)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_digest(digest, what="digest"):
    if not is_digest(digest):
        raise InvalidArgument(f"invalid {what} {shown(digest)}: expected sha256:<64 hex digits>")
    return digest


def parse_reference(ref):
    """`[REGISTRY/]NAME[:TAG][@sha256:DIGEST]` -> Reference (tag `latest`
    when not written, None when only a digest is).  The first component is a registry when it has a `.` or
    `:` or is `localhost` (it may carry a port and upper case); otherwise
    the registry is docker.io and a one-component name lives under
    `library/`."""
    if not isinstance(ref, str):
        raise InvalidArgument(f"invalid reference format: {shown(ref)}")
    tagged, at, digest = ref.partition("@")
    if at:
        check_digest(digest)
    if not tagged or len(tagged) > MAX_NAME:
        raise InvalidArgument(f"invalid reference format: {ref!r}")
    name, tag = tagged, None
    colon = tagged.rfind(":")
    if colon > tagged.rfind("/"):
        name, tag = tagged[:colon], tagged[colon + 1:]
        if not tag or len(tag) > MAX_TAG or tag[0] in ".-" or not set(tag) <= _TAG_CHARS:
            raise InvalidArgument(f"invalid reference format: bad tag in {ref!r}")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
        host_ok = all(c.isalnum() or c in ".-:" for c in first)
    else:
        registry, repository, host_ok = DOCKER_HUB, name, True
    if (not host_ok or not repository or not set(repository) <= _PATH_CHARS
            or any(not part or not part[0].isalnum() or not part[-1].isalnum()
                   for part in repository.split("/"))):
        raise InvalidArgument(f"invalid reference format: {ref!r} (names are lower case: a-z 0-9 . _ - /)")
    if registry in ("index.docker.io", DOCKER_HUB_API):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(registry, repository, tag, digest or None, given=name)


def name_and_tag(ref):
    """A local image's `name[:tag]` -> (name as written, tag, `latest`
    when not written).  A digest names content in a registry, not a local tag."""
    r = parse_reference(ref)
    if r.digest:
        raise InvalidArgument(f"invalid reference format: {ref!r} (a digest, where a name[:tag] is expected)")
    return r.given, r.tag
