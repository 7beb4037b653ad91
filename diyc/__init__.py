"""diyc: a Linux container runtime - namespaces, cgroups, overlayfs, from the
kernel up.

    import diyc
    r = diyc.run("busybox", ["echo", "hi"], memory="64m", capture_output=True)
    r.returncode, r.stdout                      # 0, b'hi\\n'

    with diyc.Container.create("busybox", "sleep 60") as c:
        c.start()
        c.exec_run("ps").stdout                 # removed at the end of the block

    result = await diyc.arun("busybox", "true")  # asyncio (diyc.aio)

    with diyc.Pool("busybox", size=4, memory="64m", network="none") as pool:   # warm containers
        pool.run(["echo", "hi"], capture_output=True)           # (diyc.pool)

help(diyc.run) documents every option; docs/library.md has examples.
Attributes are imported lazily, so `import diyc` costs next to nothing."""

from .errors import (ArgumentTypeError, CommandNotExecutable, CommandNotFound, Conflict,
                     ContainerNotFound, DiycError, ImageNotFound, InitError, InvalidArgument,
                     NotFound)

__version__ = "0.1.0"

# name -> the module defining it, imported on first use
_LAZY = {
    "run": "api", "Container": "runtime", "Result": "result",
    "ContainerError": "process_errors", "ContainerTimeout": "process_errors",
    "PIPE": "stdio", "STDOUT": "stdio", "DEVNULL": "stdio",
    "arun": "aio", "AsyncContainer": "aio",
    "ImageStore": "images.store", "Root": "state", "build": "builder", "Pool": "pool",
}
_SUBMODULES = ("images", "aio", "events")

__all__ = sorted([
    "ArgumentTypeError", "CommandNotExecutable", "CommandNotFound", "Conflict",
    "ContainerNotFound", "DiycError", "ImageNotFound", "InitError", "InvalidArgument", "NotFound",
    *_LAZY, *_SUBMODULES, "__version__"])


def __getattr__(name):
    module = name if name in _SUBMODULES else _LAZY.get(name)
    if module is None:  # (before any import: `from . import x` asks here first)
        raise AttributeError(f"module 'diyc' has no attribute {name!r}")
    import importlib
    loaded = importlib.import_module(f".{module}", __name__)
    return loaded if name in _SUBMODULES else getattr(loaded, name)


def __dir__():
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__")})
