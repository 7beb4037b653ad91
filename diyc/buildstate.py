"""What a build step starts from and is keyed by: the build's platform
(its automatic ARGs), the step cache under build-cache/, stages and the
state of a stage as its steps go (layers, config, cache key)."""

import os
import time

from . import _json
from .buildfs import RootfsView, small_sha256
from .state import read_json, write_json

PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY",
              "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def platform_args():
    machine = os.uname().machine
    os_, arch = "linux", _ARCH.get(machine, machine)
    variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine)
    plat = f"{os_}/{arch}" + (f"/{variant}" if variant else "")
    out = {}
    for prefix in ("TARGET", "BUILD"):
        out.update({f"{prefix}PLATFORM": plat, f"{prefix}OS": os_, f"{prefix}ARCH": arch,
                    f"{prefix}VARIANT": variant or ""})
    return out


























# -- the cache ------------------------------------------------------------------

class Cache:
    def __init__(self, root, store, enabled=True):
        self.dir = f"{root.path}/build-cache"
        self.store, self.enabled = store, enabled

    def get(self, key):
        if not self.enabled:
            return None
        try:
            entry = read_json(f"{self.dir}/{key}.json")
        except (FileNotFoundError, ValueError):
            return None
        layer = entry.get("layer")
        if layer and not self.store.has_layer(layer):
            return None  # collected since: build it again
        return entry

    def put(self, key, entry):
        os.makedirs(self.dir, 0o700, exist_ok=True)
        write_json(f"{self.dir}/{key}.json", entry)


def digest(obj):
    return small_sha256(_json.dumps(obj).encode()).hexdigest()




def timestamp():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


# -- stages ------------------------------------------------------------------

class Stage:
    def __init__(self, index, base, name, from_ins):
        self.index, self.base, self.name, self.from_ins = index, base, name, from_ins
        self.instructions = []
        self.platform = from_ins.flags.get("platform")
        self.base_stage = None   # index of the stage it builds on, if any
        self.result = None       # State once built


class State:
    """Where a stage is: its layers, image config, history, cache key, ARGs."""

    def __init__(self, layers, config, key):
        self.layers = list(layers)
        self.config = config
        self.key = key
        self.args = {}  # ARGs declared in this stage, with their values
        self.cmd_set = False  # a CMD of this stage (an ENTRYPOINT keeps it)

    @property
    def cfg(self):
        return self.config.setdefault("config", {})

    def env_dict(self):
        env = {}
        for item in self.cfg.get("Env") or ():
            k, _, v = item.partition("=")
            env[k] = v
        return env

    def expand_env(self):
        """Variables for substitution: the stage's ARGs, then ENV over them."""
        out = dict(self.args)
        out.update(self.env_dict())
        return out

    def view(self, store):
        return RootfsView(store.layer_dirs({"layers": self.layers}))


def base_history(record_config, layers):
    """The history of a base image, one entry per layer at least (an image
    without it breaks other tools' COPY onto it)."""
    history = list(record_config.get("history") or [])
    if sum(1 for h in history if not h.get("empty_layer")) != len(layers):
        created = record_config.get("created") or "1970-01-01T00:00:00Z"
        history = [{"created": created, "created_by": "diyc import (a flat rootfs tarball)"}
                   for _ in layers]
    return history
