"""Volumes: `-v HOST:CONTAINER[:ro]` bind mounts and named volumes
(`-v NAME:CONTAINER`), which live in volumes/<name>/_data under the diyc
root and are created on first use, as in docker."""

import os

from .config import check_name
from .errors import Conflict, InvalidArgument, NotFound
from .state import remove_tree


def _volumes_dir(root):
    return f"{root.path}/volumes"


def create_volume(root, name):
    check_name(name, "volume", max_length=255)  # a directory's name
    data = f"{_volumes_dir(root)}/{name}/_data"
    os.makedirs(data, exist_ok=True)
    return data


def list_volumes(root):
    try:
        return sorted(os.listdir(_volumes_dir(root)))
    except FileNotFoundError:
        return []


def remove_volume(root, name, users=()):
    if name not in list_volumes(root):
        raise NotFound(f"no such volume: {name}")
    if name in users:
        raise Conflict(f"volume {name} is in use by a container")
    remove_tree(f"{_volumes_dir(root)}/{name}")


def parse_volume(root, value):
    """-v SOURCE:DEST[:ro|rw] -> an OCI bind mount (creating a named
    volume, or a missing host directory, as docker does)."""
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume {value!r}: expected SOURCE:DEST[:ro]")
    source, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise InvalidArgument(f"invalid volume mode {mode!r} in {value!r}: use ro or rw")
    if not dest.startswith("/") or ".." in dest.split("/"):
        raise InvalidArgument(f"invalid volume destination {dest!r}: an absolute path without '..'")
    if source.startswith("/"):
        if ".." in source.split("/"):
            raise InvalidArgument(f"invalid volume source {source!r}")
        if not os.path.exists(source):
            os.makedirs(source, exist_ok=True)
        volume = None
    else:
        volume = source
        source = create_volume(root, source)
    options = ["rbind", "ro" if mode == "ro" else "rw"]
    mount = {"destination": dest, "type": "bind", "source": source, "options": options}
    if volume:
        mount["volume"] = volume  # not OCI: lets `volume rm` see who uses it
    return mount
