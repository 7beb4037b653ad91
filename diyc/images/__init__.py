"""Images: the store, layers, docker/OCI archives and registries."""
