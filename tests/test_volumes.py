"""Named volumes against the containers being created with them: `volume
prune -a` and `volume rm` never remove a volume a creation under way has
just made for its container (`run -v NAME:...` makes the volume before the
container's record exists)."""

import fcntl
import os
import uuid

import pytest

from conftest import assert_one_line_error, wait_blocked_on_flock


@pytest.mark.parametrize("removal", [["volume", "prune", "-a", "-f"], ["volume", "rm"]])
def test_a_volume_made_for_a_container_being_created_is_kept(run_cli, diyc_root, removal):
    """A creation holds the image store's lock (shared) from its first step
    until its record exists; the test holds it as such a creation would,
    right after that creation made its volume: the removal waits, then
    finds the container's record and keeps the volume."""
    volume, name = f"vol-{uuid.uuid4().hex[:10]}", f"volc-{uuid.uuid4().hex[:10]}"
    in_flight = os.open(f"{diyc_root}/layers-gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    remover = None
    try:
        fcntl.flock(in_flight, fcntl.LOCK_SH)
        run_cli("volume", "create", volume, check=True)  # the creation's first step
        remover = run_cli.popen(*removal, *([volume] if removal[1] == "rm" else []))
        wait_blocked_on_flock(remover, "the removal to wait for the creation under way")
        run_cli("create", "--name", name, "--network", "none", "-v", f"{volume}:/data", "busybox", "true",
                check=True)  # its record
        os.close(in_flight)
        in_flight = -1
        out, err = remover.communicate(timeout=60)
        if removal[1] == "rm":
            assert remover.returncode == 125 and f"volume {volume} is in use" in err, (out, err)
        else:
            assert remover.returncode == 0 and volume not in out.split(), (out, err)
        assert volume in run_cli("volume", "ls", "-q", check=True).stdout.split()
        run_cli("start", "-a", name, check=True)  # its volume is still there to mount
    finally:
        if in_flight >= 0:
            os.close(in_flight)
        if remover is not None and remover.poll() is None:
            remover.kill()
            remover.wait()
        run_cli("rm", "-f", name)
        run_cli("volume", "rm", volume)
    assert_one_line_error(run_cli("volume", "rm", volume), contains="no such volume")
