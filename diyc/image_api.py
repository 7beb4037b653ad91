"""diyc.images.list / pull / push / remove: the image commands of the CLI
(`diyc images`, `diyc pull`, `diyc push`, `diyc rmi`) for a Python caller, on the same store.
(diyc.images reaches these through its module __getattr__: a function
named `list` in the store's own module would hide the builtin there.)"""

from __future__ import annotations  # (type hints as text: nothing imported for them)

TYPE_CHECKING = False  # (typing's costs an import; type checkers know this name)
if TYPE_CHECKING:
    import os

    from .state import Root


def _store(root):
    from .images.store import ImageStore
    from .state import Root
    return ImageStore(root if isinstance(root, Root) else Root(root))


def list_images(name: str | None = None, *, all: bool = False,
                filters: dict | None = None, root: str | os.PathLike | Root | None = None) -> list[dict]:
    """The images in the store, as `diyc images [NAME]`: one record (a dict)
    each, with "id" (sha256:...), "repo_tags" (["busybox:latest"]),
    "created", "size" and the image "config".  As docker-py's
    images.list: name, a repository[:tag] (a glob); filters, {"dangling":
    True, "reference": "app:*", "label": "k=v"} (only the names matching
    a reference filter in repo_tags); all: every image (diyc keeps no
    intermediate ones)."""
    from .listing import filtered_images
    filters = dict(filters or {})
    if name is not None:
        given = filters.get("reference") or []
        filters["reference"] = ([given] if isinstance(given, str) else list(given)) + [name]
    return [dict(img, repo_tags=tags) for img, tags, _ in filtered_images(_store(root), filters)]


def pull(reference: str, *, platform: str | None = None, insecure: bool = False,
         progress=None, root: str | os.PathLike | Root | None = None) -> dict:
    """Pull an image from a registry (v2 API), as `diyc pull`, and return
    its record.  reference: [REGISTRY/]NAME[:TAG|@sha256:DIGEST].
    platform: "linux/amd64" (default: this machine's).  insecure: TLS
    without verification, or plain HTTP if the registry does not speak TLS
    (a loopback registry, localhost or 127.0.0.0/8, is plain HTTP anyway).  progress: a diyc.images.puller.Progress (default:
    silent).  A registry's answers are checked and capped as the CLI's."""
    from .config import check_text
    from .images.puller import Progress, pull as pull_reference
    from .images.reference import parse_reference
    check_text(reference, "reference")
    store = _store(root)
    ref = parse_reference(reference)
    return pull_reference(store, ref, platform=platform, insecure=insecure,
                          progress=progress or Progress(quiet=True))


def push(repository: str, tag: str | None = None, *, all_tags: bool = False, insecure: bool = False,
         progress=None, root: str | os.PathLike | Root | None = None) -> dict | list[dict]:
    """Push a stored image to a registry (v2 API), as `diyc push`, with the
    credentials `diyc login` stored.  repository: [REGISTRY/]NAME, or
    NAME:TAG when `tag` is None (docker-py's form; default tag latest).
    -> {"digest": the manifest's sha256:..., "size": its bytes, "tag": ...};
    all_tags: every tag of the name, as `diyc push -a` -> a list of those.
    insecure: unverified TLS, or plain HTTP (loopback registries are plain
    HTTP anyway); progress as pull's."""
    from .config import check_text
    from .images.puller import Progress
    from .images.pusher import local_tags, push as push_reference
    from .images.reference import parse_reference
    check_text(repository, "repository")
    if tag is not None:
        check_text(tag, "tag")
        repository = f"{repository}:{tag}"
    store, ref = _store(root), parse_reference(repository)
    progress = progress or Progress(quiet=True)
    if not all_tags:
        return push_reference(store, ref, insecure=insecure, progress=progress)
    return [push_reference(store, parse_reference(f"{ref.given}:{t}"), insecure=insecure, progress=progress)
            for t in local_tags(store, ref)]


def remove(reference: str, *, force: bool = False,
           root: str | os.PathLike | Root | None = None) -> list[str]:
    """Remove an image (or one of its tags), as `diyc rmi`: -> the lines
    the CLI prints ("Untagged: NAME", "Deleted: sha256:...").  Conflict if
    a container uses it; force=True (`rmi -f`): a stopped container's image
    goes all the same, a running one's name is only untagged."""
    from .config import check_text
    check_text(reference, "reference")
    return _store(root).remove(reference, force=bool(force))


def inspect(reference: str, *, root: str | os.PathLike | Root | None = None) -> dict:
    """An image as `diyc image inspect` shows it, in docker's shape: {"Id",
    "RepoTags", "RepoDigests", "Created", "Config": {"Env", "Cmd", ...},
    "RootFS": {"Type", "Layers"}, "Size", "Architecture", "Os"}."""
    from .config import check_text
    from .inspect_view import image
    check_text(reference, "reference")
    store = _store(root)
    return image(store, store.resolve(reference))


# diyc.images.<name> -> the function here
FUNCTIONS = {"list": list_images, "pull": pull, "push": push, "remove": remove, "inspect": inspect}
