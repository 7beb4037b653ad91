"""`diyc system reset`: undo what running containers did to a root and to
the host.  Bridge networking (the default network, since `--network
bridge` became the default) changes the host once: a bridge per network,
an nftables table (`ip diyc`, `ip diyc-<root id>`) and
net.ipv4.ip_forward=1.  reset() removes every container of the root (as
`rm -f`), then every network's host side and the root's user-defined
networks and firewall table (as `network prune`, which restores
ip_forward when the last diyc bridge of the namespace goes).  Images and
volumes stay (`diyc rmi`, `diyc volume rm`).  Other roots' containers,
bridges and tables are never touched."""

from .errors import DiycError


def reset(root):
    """-> (lines saying what was done, [(container name, error)] of the
    containers that could not be removed)."""
    from .net import network as networking
    from .pool_keeper import stop_keepers
    from .server_pool import pools_dir
    from .runtime import Container
    out, failed = [], []
    stop_keepers(pools_dir(root.path))  # (they would refill what goes below)
    for ctr in Container.list(root, all=True, held=True):
        try:
            ctr.remove(force=True)
            out.append(f"removed container {ctr.id[:12]} ({ctr.name})")
        except (DiycError, OSError) as e:
            failed.append((ctr.name, e))
    out += networking.cleanup(root)
    out += networking.prune(root)
    return out, failed
