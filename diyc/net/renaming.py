"""A renamed container's name on its network: peers reach a container by
the name in their /etc/hosts (written at each start from the network's
leases), so `diyc rename` of a connected container rewrites its lease and
the hosts line naming it in every container of the network, its own
included, under the network's lock (the one connect and release take)."""

import os

from ..state import read_json
from .roots import leases_dir


def renamed(ctr, old_name):
    """After `diyc rename`: the lease and hosts lines say the new name.  A
    container not connected now (stopped) has nothing to change: its next
    start writes the new name."""
    try:
        settings = read_json(f"{ctr.dir}/network.json")
    except FileNotFoundError:
        return
    network, ip, root = settings["network"], settings.get("ip"), ctr.root
    leases = leases_dir(root, network)
    with root.lock(f"network-{network}"):
        try:
            cid, _, hostname = os.readlink(f"{leases}/{ip}").split(" ")
        except (OSError, ValueError):
            return  # released meanwhile (it ended)
        if cid != ctr.id:
            return
        staged = f"{root.tmp}/lease-{os.getpid()}-{cid[:12]}"
        os.symlink(f"{cid} {ctr.name} {hostname}", staged)
        os.rename(staged, f"{leases}/{ip}")  # the lease changes in one step
        line = f"{ip}\t{hostname} {{}}\n"
        for entry in os.listdir(leases):
            try:
                peer = os.readlink(f"{leases}/{entry}").partition(" ")[0]
            except OSError:
                continue
            _replace(f"{root.container_dir(peer)}/hosts", line.format(old_name), line.format(ctr.name))


def _replace(path, before, after):
    """Rewrite a container's hosts file in place (it is bind-mounted: a
    rename would leave the container the old file)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return  # a peer being removed
    if before not in text:
        return
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, text.replace(before, after).encode())
    finally:
        os.close(fd)
