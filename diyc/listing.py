"""The rows of docker's listings, with the field names its `--format`
templates use, and each listing's default table:

    ps            container_row(ctr)   .ID .Image .Command .CreatedAt .RunningFor
                                       .Ports .State .Status .Size .Names .Labels
                                       .Label "k" .Mounts .Networks .LocalVolumes
    images        image_rows(store)    .ID .Repository .Tag .Digest .CreatedSince
                                       .CreatedAt .Size .Containers
    stats         stats_row(ctr, s)    .Container .Name .ID .CPUPerc .MemUsage
                                       .MemPerc .NetIO .BlockIO .PIDs
    network ls    network_row(rec)     .ID .Name .Driver .Scope .IPv6 .Internal
                                       .Labels .Label "k" .CreatedAt (+ .Bridge .Subnet .Gateway)
    volume ls     volume_row(root, n)  .Driver .Name .Scope .Mountpoint .Labels .Label "k"

Each row is a template_values.Context: a field is computed when a template
uses it (`ps` sizes a container's writable layer only for `.Size`)."""

import os
import time

from . import _json
from .errors import DiycError, InvalidArgument
from .formatting import ago, bytes_size, go_time, human_duration, human_size, parse_rfc3339
from .inspect_view import labels_of, user_binds
from .template_values import Context, Method

PS_TABLE = "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}"
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
              "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Label": "LABEL",
              "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES"}

IMAGES_TABLE = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
IMAGES_DIGESTS_TABLE = "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
IMAGES_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Containers": "CONTAINERS", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
                  "UniqueSize": "UNIQUE SIZE"}

STATS_TABLE = ("table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}"
               "\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}")
STATS_HEADERS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
                 "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}

NETWORKS_TABLE = "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}"
NETWORKS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                    "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "Label": "LABEL",
                    "CreatedAt": "CREATED AT", "Bridge": "BRIDGE", "Subnet": "SUBNET",
                    "Gateway": "GATEWAY"}

VOLUMES_TABLE = "table {{.Driver}}\\t{{.Name}}"
VOLUMES_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE",
                   "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Label": "LABEL"}


def ellipsis(text, width):
    """docker's Ellipsis: at most `width` characters, the last one `…` when cut."""
    return text if len(text) <= width else text[:width - 1] + "…"


def _labels_text(labels):
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def _go_quote(text):
    """strconv.Quote, for the printable text a command line is."""
    return _json.compact(text)


# -- ps --------------------------------------------------------------------------------

def container_row(ctr, no_trunc=False):
    rec = ctr.record
    status = ctr.status
    args = list(rec["spec"]["process"]["args"])
    if args[:2] == ["/dev/init", "--"]:
        args = args[2:]
    labels = labels_of(rec)
    command = " ".join(args)
    return Context("ContainerContext", {
        "ID": rec["id"] if no_trunc else rec["id"][:12],
        "Image": lambda: image_text(ctr),
        "Command": _go_quote(command if no_trunc else ellipsis(command, 20)),
        "CreatedAt": lambda: go_time(rec["created"]),
        "RunningFor": lambda: ago(rec["created"]),
        "Ports": lambda: ports_text(rec),
        "State": "exited" if status == "stopped" else ctr.state_name if status == "running" else status,
        "Status": lambda: status_text(ctr, status),
        "Size": lambda: _size_text(ctr),
        "Names": ctr.name,
        "Labels": lambda: _labels_text(labels),
        "Label": Method(lambda key: labels.get(key, "")),
        "Mounts": lambda: ",".join(_mount_names(ctr, no_trunc)),
        "Networks": rec.get("network") or "none",
        "LocalVolumes": lambda: str(sum(1 for m in rec["spec"].get("mounts") or [] if m.get("volume"))),
    })


def image_text(ctr):
    """docker's IMAGE: the name the container was made from while it still
    names its image, else that image's short id (`rmi -f`, a re-tag)."""
    rec = ctr.record
    given, image_id = rec.get("image") or "", rec.get("image_id") or ""
    from .images.reference import name_and_tag
    from .images.store import ImageStore, looks_like_id
    if not image_id or looks_like_id(given):
        return given
    try:
        name, tag = name_and_tag(given)
    except DiycError:
        return given
    if ImageStore(ctr.root).references().get(f"{name}:{tag}") == image_id:
        return given
    return image_id.removeprefix("sha256:")[:12]


def ports_text(rec):
    """docker's PORTS: a random host port only while it runs (the next
    start picks another); an exposed port not published as `80/tcp`."""
    ports = [p for p in (rec.get("network_settings") or {}).get("ports") or []
             if isinstance(p, dict) and "host_port" in p]
    running = rec["state"].get("status") == "running"
    out = [f"{p.get('host_ip', '0.0.0.0')}:{p['host_port']}->{p['container_port']}/{p['proto']}"
           for p in ports if running or not p.get("random")]
    if running:
        published = {f"{p['container_port']}/{p['proto']}" for p in ports}
        out += [key for key in (rec.get("config") or {}).get("ExposedPorts") or () if key not in published]
    return ", ".join(out)


def status_text(ctr, status=None):
    """docker's STATUS column: `Up 5 minutes`, `Exited (3) 2 hours ago`, `Created`."""
    status = status or ctr.status
    state = ctr.record["state"]
    if status == "running":  # docker's notes: `Up 5 seconds (Paused)`, `(healthy)`, `(health: starting)`
        up = "Up " + human_duration(time.time() - state.get("started", ctr.record["created"]))
        health = ctr.health_status
        note = "Paused" if ctr.paused else f"health: {health}" if health == "starting" else health
        return f"{up} ({note})" if note else up
    if status in ("exited", "stopped"):
        return f"Exited ({state.get('exit_code', 0)}) {ago(state.get('finished', ctr.record['created']))}"
    if status == "dead":
        return "Dead (its diyc process is gone)"
    return status.capitalize()


def _mount_names(ctr, no_trunc):
    for m in user_binds(ctr):
        name = m.get("volume") or m["source"]
        yield name if no_trunc else ellipsis(name, 15)


def _size_text(ctr):
    """`0B (virtual 2.14MB)`: its writable layer, and that with its image's."""
    rw = tree_size(f"{ctr.dir}/upper")
    image_size = 0
    try:
        from .images.store import ImageStore
        image_size = ImageStore(ctr.root).resolve(ctr.record["image_id"]).get("size") or 0
    except (DiycError, OSError, ValueError):  # gone (a build step's image): its size is unknown
        image_size = 0
    return f"{human_size(rw)} (virtual {human_size(rw + image_size)})" if image_size else human_size(rw)


def tree_size(path):
    """The bytes of the files under `path` (a container's writable layer:
    untrusted, walked through directory fds, no symlink followed)."""
    total = 0
    try:
        for _, _, files, dirfd in os.fwalk(path, follow_symlinks=False):
            for name in files:
                try:
                    total += os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_size
                except OSError:
                    pass
    except OSError:
        pass
    return total


# -- images ------------------------------------------------------------------------------

IMAGE_FILTERS = ("dangling", "reference", "label")


def filtered_images(store, filters=None):
    """[(image record, its name:tags, its name@digests)] that docker's
    filters ({key: value or [values]}) keep: dangling=true|false (without
    names, or with), reference=PATTERN (the names matching a glob, on the
    name or the name:tag: only those), label=KEY[=VALUE] (all of them)."""
    filters = _image_filters(filters)
    out = []
    for img in store.list():
        tags, repo_digests = store.names_of(img["id"])
        if "reference" in filters:  # only the matching names; an image with none is left out
            tags = [t for t in tags if any(_reference_match(p, t) for p in filters["reference"])]
            if not tags:
                continue
        if filters.get("dangling") in (None, bool(not tags)) and \
                _labels_match(img, filters.get("label", ())):
            out.append((img, tags, repo_digests))
    return out


def image_rows(store, no_trunc=False, digests=False, filters=None):
    """One row per name:tag of each image (one `<none>` row for an untagged
    one), of the images filtered_images keeps."""
    rows = []
    for img, tags, repo_digests in filtered_images(store, filters):
        created = parse_rfc3339((img.get("config") or {}).get("created") or img.get("created"))
        for ref in tags or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            digest = next((d.partition("@")[2] for d in repo_digests if d.partition("@")[0] == repo),
                          "<none>")
            rows.append(_image_row(img, repo, tag, digest, created, no_trunc))
    return rows


def _image_filters(filters):
    out = {}
    for key, values in (filters or {}).items():
        if key not in IMAGE_FILTERS:
            raise InvalidArgument(f"invalid filter {key!r}: use one of {', '.join(IMAGE_FILTERS)}")
        out[key] = [str(v) for v in ([values] if isinstance(values, (str, bool)) else values)]
    for value in out.pop("dangling", ()):
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={value}': use true or false")
        out["dangling"] = value.lower() in ("true", "1")
    return out


def _reference_match(pattern, ref):
    """docker's reference filter: a glob (`*` within a path component) on
    the name, or on name:tag."""
    import re
    regex = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pattern)
    name = ref.rpartition(":")[0]
    return any(re.fullmatch(regex, text) for text in (name, ref))


def _labels_match(img, wanted):
    labels = ((img.get("config") or {}).get("config") or {}).get("Labels") or {}
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _image_row(img, repo, tag, digest, created, no_trunc):
    size = img.get("size") or 0
    return Context("ImageContext", {
        "ID": img["id"] if no_trunc else img["id"].removeprefix("sha256:")[:12],
        "Repository": repo, "Tag": tag, "Digest": digest,
        "CreatedSince": lambda: ago(created) if created is not None else "N/A",
        "CreatedAt": lambda: go_time(created) if created is not None else "N/A",
        "Size": human_size(size), "VirtualSize": human_size(size),
        "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
    })


HISTORY_TABLE = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


def history_rows(store, ref, no_trunc=False, human=True):
    """One row per history entry of an image, newest first (docker
    history): the image id on the newest, `<missing>` on the others."""
    record = store.resolve(ref)
    config = record["config"]
    layers = list(record["layers"])
    history = list(config.get("history") or [])
    if sum(1 for h in history if not h.get("empty_layer")) != len(layers):
        history = [{"created": config.get("created", ""), "created_by": ""} for _ in layers]
    rows, layer_index = [], 0
    for h in history:
        size = 0
        if not h.get("empty_layer"):
            size = store.layer_size(layers[layer_index])
            layer_index += 1
        rows.append(_history_row(h, size, no_trunc, human))
    rows.reverse()
    if rows:
        rows[0].fields["ID"] = record["id"] if no_trunc else record["id"][7:19]
    return rows


def _history_row(h, size, no_trunc, human):
    created = parse_rfc3339(h.get("created"))
    by = str(h.get("created_by") or "").replace("\t", " ")
    created_at = go_time(created) if created is not None else "N/A"
    return Context("historyContext", {
        "ID": "<missing>",
        "CreatedSince": (ago(created) if human else h.get("created")) if created is not None else "N/A",
        "CreatedAt": created_at,
        "CreatedBy": by if no_trunc else ellipsis(by, 45),
        "Size": human_size(size) if human else str(size),
        "Comment": str(h.get("comment") or ""),
    })


# -- stats -------------------------------------------------------------------------------

def stats_row(ctr, s, name_given=None, no_trunc=False):
    """s: a stats.sample() dict of the container."""
    return Context("statsContext", {
        "Container": name_given or (ctr.id if no_trunc else ctr.id[:12]),
        "Name": ctr.name,
        "ID": ctr.id if no_trunc else ctr.id[:12],
        "CPUPerc": f"{s['cpu_percent']:.2f}%",
        "MemUsage": f"{bytes_size(s['memory'])} / {bytes_size(s['memory_limit'])}",
        "MemPerc": f"{s['memory_percent']:.2f}%",
        "NetIO": f"{human_size(s['net_rx'])} / {human_size(s['net_tx'])}",
        "BlockIO": f"{human_size(s['block_read'])} / {human_size(s['block_write'])}",
        "PIDs": str(s["pids"]),
    })


# -- network ls, volume ls ---------------------------------------------------------------------

def network_row(rec, no_trunc=False):
    labels = rec.get("labels") or {}
    return Context("networkContext", {
        "ID": rec["id"] if no_trunc else rec["id"][:12], "Name": rec["name"],
        "Driver": "bridge", "Scope": "local", "IPv6": "false", "Internal": "false",
        "Labels": _labels_text(labels), "Label": Method(lambda key: labels.get(key, "")),
        "CreatedAt": lambda: go_time(rec["created"]) if rec.get("created") else "",
        "Bridge": rec.get("bridge", ""), "Subnet": rec.get("subnet", ""),
        "Gateway": rec.get("gateway", ""),
    })


def volume_row(root, name):
    return Context("volumeContext", {
        "Driver": "local", "Name": name, "Scope": "local",
        "Mountpoint": f"{root.path}/volumes/{name}/_data",
        "Labels": "", "Label": Method(lambda key: ""),
    })
