"""`diyc system df`: what the state root holds, by kind, as docker's:
images (their layers, a layer shared by several counted once), containers
(their writable layers), local volumes and the build cache (layers only
cached build steps use).  `reclaimable`: what prune would free - images no
container uses, stopped containers, unused volumes, the whole cache."""

import os
import stat

KINDS = ("Images", "Containers", "Local Volumes", "Build Cache")


def tree_size(path):
    """Bytes of the regular files below `path` (each inode once), never
    following a symlink (a container's or a volume's tree is untrusted)."""
    total, seen = 0, set()
    # fwalk: each directory by an fd opened O_NOFOLLOW from its parent's, so a
    # directory swapped for a symlink meanwhile is not followed (os.walk is
    # fooled by that race)
    for _, _, files, dir_fd in os.fwalk(path, follow_symlinks=False):
        for name in files:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def disk_usage(root):
    """{kind: {"total", "active", "size", "reclaimable"}} for KINDS."""
    from .images.store import ImageStore
    from .record import ContainerRecord
    from .volumes import list_volumes, volume_path
    store = ImageStore(root)
    images = store.list() if os.path.isdir(root.images) else []
    containers = ContainerRecord.list(root)
    running = [c for c in containers if c.status in ("running", "paused")]
    used_images = {c.record.get("image_id") for c in containers}
    layer_users = {}  # diff-id -> used by an image some container uses
    for image in images:
        for d in image["layers"]:
            layer_users[d] = layer_users.get(d, False) or image["id"] in used_images
    out = {"Images": _usage(len(images), sum(1 for i in images if i["id"] in used_images),
                            sum(store.layer_size(d) for d in layer_users),
                            sum(store.layer_size(d) for d, used in layer_users.items() if not used))}
    sizes = {c.id: tree_size(f"{c.dir}/upper") for c in containers}
    out["Containers"] = _usage(len(containers), len(running), sum(sizes.values()),
                               sum(sizes[c.id] for c in containers if c not in running))
    volume_users = {m.get("volume") for c in containers for m in c.record["spec"].get("mounts", ())}
    volumes = {name: tree_size(volume_path(root, name)) for name in list_volumes(root)}
    out["Local Volumes"] = _usage(len(volumes), sum(1 for v in volumes if v in volume_users),
                                  sum(volumes.values()),
                                  sum(s for v, s in volumes.items() if v not in volume_users))
    cached = _cached_layers(root) - set(layer_users)
    cache_size = sum(store.layer_size(d) for d in cached)
    out["Build Cache"] = _usage(_count(f"{root.path}/build-cache"), 0, cache_size, cache_size)
    return out


def _usage(total, active, size, reclaimable):
    return {"total": total, "active": active, "size": size, "reclaimable": reclaimable}


def _count(path):
    try:
        return sum(1 for f in os.listdir(path) if f.endswith(".json"))
    except FileNotFoundError:
        return 0


def _cached_layers(root):
    from .state import read_json
    layers = set()
    path = f"{root.path}/build-cache"
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return layers
    for name in names:
        try:
            layer = read_json(f"{path}/{name}").get("layer")
        except (OSError, ValueError, AttributeError):
            continue
        if layer:
            layers.add(layer)
    return layers


def table_rows(usage, human_size):
    """`diyc system df`'s rows: TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE
    (sizes as human_size(bytes) writes them)."""
    rows = []
    for kind in KINDS:
        u = usage[kind]
        share = f" ({100 * u['reclaimable'] // u['size']}%)" if u["size"] else ""
        rows.append((kind, u["total"], u["active"], human_size(u["size"]),
                     human_size(u["reclaimable"]) + share))
    return rows
