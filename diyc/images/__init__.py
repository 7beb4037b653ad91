"""Images: the store, layers, docker/OCI archives and registries."""


def __getattr__(name):
    """diyc.images.list / pull / push / remove / inspect: the library's image
    functions (diyc.image_api), offered by this package.  (No submodule of it may
    take one of these names: an imported submodule would shadow it.)"""
    if name in ("list", "pull", "push", "remove", "inspect"):
        from ..image_api import FUNCTIONS
        return FUNCTIONS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
