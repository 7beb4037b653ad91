"""What a container changed, from its overlay upper dir: `diyc diff`
(docker's A/C/D lines), `diyc export` (its whole file system as a tar) and
`diyc commit` (its changes as a new image layer, as a build's RUN step
makes one: buildlayer.upper_to_layer)."""

import os
import stat

from .buildfs import O_DIR, RootfsView
from .buildlayer import is_empty, is_opaque
from .container_fs import ContainerFS, to_container_ids, writable_layer
from .errors import InvalidArgument

# docker's change kinds (docker-py's container.diff(): {"Path", "Kind"})
MODIFIED, ADDED, DELETED = 0, 1, 2
KIND_LETTERS = "CAD"


def mount_points(ctr):
    """Relative paths of the mount points the runtime made in the upper
    dir (empty, not the container's doing)."""
    return {m["destination"].strip("/") for m in ctr.record["spec"].get("mounts", ())}


def diff(ctr):
    """[{"Path": "/etc", "Kind": 0|1|2}], sorted by path, as docker's: a
    whiteout is a deletion (D), an entry the image has a change (C), any
    other an addition (A); an opaque directory deletes what the image had
    in it."""
    upper = writable_layer(ctr)
    try:
        fd = os.open(upper, O_DIR)
    except FileNotFoundError:
        return []  # never started: nothing changed
    out = []
    try:
        _diff_dir(fd, [], RootfsView(list(ctr.record["layers"])), mount_points(ctr), out, True)
    finally:
        os.close(fd)
    return sorted(out, key=lambda c: c["Path"])


def _diff_dir(dfd, parts, lower, skip, out, in_image):
    names = os.listdir(dfd)
    if in_image and parts and is_opaque(dfd):
        for gone in sorted(set(lower.listdir(parts)) - set(names)):
            out.append({"Path": "/" + "/".join(parts + [gone]), "Kind": DELETED})
    for name in names:
        here = parts + [name]
        path = "/" + "/".join(here)
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            out.append({"Path": path, "Kind": DELETED})
            continue
        existed = in_image and lower.lstat(here) is not None
        if "/".join(here) in skip and not existed and is_empty(dfd, name, st):
            continue
        out.append({"Path": path, "Kind": MODIFIED if existed else ADDED})
        if stat.S_ISDIR(st.st_mode):
            cfd = os.open(name, O_DIR, dir_fd=dfd)
            try:
                _diff_dir(cfd, here, lower, skip, out, existed)
            finally:
                os.close(cfd)


def export(ctr, stream):
    """The container's file system (its image and its changes, no volumes)
    as a tar written to `stream`, as `docker export`."""
    from .copy import write_archive
    with ContainerFS.open(ctr, image_only=True) as fs:
        write_archive(stream, fs.root_fd, "", fs.to_container_ids)


def export_to_file(ctr, path):
    """export() into the file `path`, whole or not at all (a temp file beside
    it, renamed over it once complete)."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        # a new file, never one planted there (O_EXCL: nor a symlink's target)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                               | os.O_CLOEXEC, 0o600), "wb") as f:
            export(ctr, f)
        os.rename(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise InvalidArgument(f"cannot write {path}: {e.strerror}") from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def commit(ctr, ref=None, message=None, author=None, changes=(), pause=True):
    """A new image: the container's image, its upper dir as one more layer,
    its command and environment as the image's, then `changes` (Dockerfile
    lines: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME,
    WORKDIR), and a history entry.  -> the image record.  pause: a running
    container is frozen until its layer is stored (docker's default)."""
    from .buildlayer import LayerTar, upper_to_layer
    from .buildstate import base_history, timestamp
    from .images.reference import name_and_tag
    from .images.store import ImageStore
    if ref:
        name_and_tag(ref)  # a local name[:tag], checked before any work
    upper = writable_layer(ctr)
    store = ImageStore(ctr.root)
    image = store.get(ctr.record["image_id"])
    config = _container_config(ctr, image["config"])
    apply_changes(config, changes)
    created = timestamp()
    history = base_history(config, image["layers"])
    entry = {"created": created, "created_by": " ".join(ctr.record["spec"]["process"]["args"])}
    if author:
        entry["author"] = config["author"] = author
    if message:
        entry["comment"] = message
    from .operations import pause_for_commit, thaw_after_commit
    paused = pause and pause_for_commit(ctr)
    try:
        with store.adding():
            layers = list(image["layers"])
            if os.path.isdir(upper):
                userns = ctr.record.get("userns")
                layer = LayerTar(ctr.root.tmp)
                try:
                    upper_to_layer(layer, upper, mount_points(ctr),
                                   ids=lambda uid, gid: to_container_ids(userns, uid, gid))
                    layers.append(layer.store(store))
                except BaseException:
                    layer.discard()
                    raise
            else:
                entry["empty_layer"] = True
            config["history"] = history + [entry]
            config["created"] = created
            size = sum(store.layer_size(d) for d in layers)
            return store.add_image(config, layers, ref, size)
    finally:
        if paused:
            thaw_after_commit(ctr)


def _container_config(ctr, image_config):
    """The image's config with what the container ran: its command (the
    part after the image's entrypoint), environment and working dir."""
    import copy
    config = copy.deepcopy(image_config)
    config.pop("rootfs", None)
    cfg = config.setdefault("config", {})
    process = ctr.record["spec"]["process"]
    entrypoint = list(cfg.get("Entrypoint") or [])
    args = list(process["args"])
    if entrypoint and args[:len(entrypoint)] == entrypoint:
        cfg["Cmd"] = args[len(entrypoint):]
    else:
        cfg["Entrypoint"], cfg["Cmd"] = None, args
    cfg["Env"] = [e for e in process.get("env", ()) if not e.startswith("HOSTNAME=")]
    cfg["WorkingDir"] = process.get("cwd") or cfg.get("WorkingDir") or ""
    return config


COMMIT_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR")


def apply_changes(config, changes):
    """docker commit --change: Dockerfile instructions applied to `config`
    by the builder's own handlers (WORKDIR only sets the directory)."""
    if not changes:
        return
    from . import dockerfile as df
    from .buildconfig import ConfigChanges
    from .buildstate import State
    parsed = df.parse("FROM scratch\n" + "\n".join(changes) + "\n", "--change")
    steps = ConfigChanges()
    state = State([], config, None)
    for ins in parsed.instructions[1:]:
        if ins.cmd not in COMMIT_CHANGES:
            raise InvalidArgument(f"{ins.cmd} is not a valid change command")
        if ins.cmd == "WORKDIR":
            path = df.expand(ins.args, state.expand_env(), steps.escape).strip()
            if not path.startswith("/"):
                path = (state.cfg.get("WorkingDir") or "/").rstrip("/") + "/" + path
            state.cfg["WorkingDir"] = path
        else:
            steps.apply_to_config(state, ins)
