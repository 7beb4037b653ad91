"""rootfsPropagation rshared with an rshared bind: what Kubernetes'
Bidirectional mountPropagation asks of a runtime (containerd's CRI sets
both), as runc does it: a mount made inside the container appears on the
host, and the container's start unmounts nothing of the host's."""

import os
import subprocess

from test_oci import bundle, rootfs, runc  # noqa: F401  (fixtures)


def test_rootfs_propagation_rshared(runc, bundle, tmp_path):  # noqa: F811
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", shared], check=True)
    try:
        subprocess.run(["mount", "--make-shared", shared], check=True)
        (shared / "host-side").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", shared / "host-side"], check=True)

        def edit(spec):
            spec["mounts"].append({"destination": "/home", "type": "bind", "source": str(shared),
                                   "options": ["rbind", "rshared"]})
            spec["linux"]["rootfsPropagation"] = "rshared"
            caps = spec["process"]["capabilities"]
            for kind in ("bounding", "effective", "permitted"):
                caps[kind] = caps.get(kind, []) + ["CAP_SYS_ADMIN"]
        runc("run", "-d", "--bundle", bundle(["sleep", "60"], edit), "rs1")
        try:
            runc("exec", "rs1", "sh", "-c", "mkdir /home/inner && mount -t tmpfs tmpfs /home/inner"
                                            " && touch /home/inner/made-inside")
            assert (shared / "inner" / "made-inside").exists()
            assert os.path.ismount(shared / "host-side")
        finally:
            subprocess.run(["umount", shared / "inner"], capture_output=True)
            runc("delete", "--force", "rs1")
        assert os.path.ismount(shared) and os.path.ismount(shared / "host-side")
    finally:
        subprocess.run(["umount", "-R", "-l", shared], check=True)
