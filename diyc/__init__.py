"""diyc: a Linux container runtime - namespaces, cgroups, overlayfs, from the
kernel up.

    import diyc
    r = diyc.run("busybox", ["echo", "hi"], memory="64m", capture_output=True)
    r.exit_code, r.stdout

Attributes are imported lazily, so `import diyc` costs next to nothing."""

from .errors import (CommandNotExecutable, CommandNotFound, Conflict, ContainerNotFound,
                     DiycError, ImageNotFound, InitError, InvalidArgument, NotFound)

__version__ = "0.1.0"

_LAZY = {
    "run": "runtime", "Container": "runtime", "Result": "runtime",
    "ImageStore": "images.store", "Root": "state", "build": "builder",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'diyc' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f".{module}", __name__), name)
