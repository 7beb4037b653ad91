"""Where a --rm container's writes go: on disk by default, like a kept
container's (issue #17, item 6: a tmpfs upper took host RAM, and with -m a
write of 100 MB was OOM-killed), or with --rm-tmpfs-size on a tmpfs capped
to that size.  Either way nothing is left after the container, nor after a
killed diyc once `diyc cleanup` ran."""

import os
import signal
import subprocess

import pytest

import diyc
from diyc.errors import InvalidArgument
from diyc.rootfs import remove_tree_at

from conftest import (assert_one_line_error, container_records, parent_of, proc_state,
                      running_record, subreaper, wait_for)

MB = 1 << 20


def shmem_bytes():
    """The host's Shmem (tmpfs and shared memory pages) from /proc/meminfo."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no Shmem line in /proc/meminfo")


def hold_after(run_cli, diyc_root, script, *run_args):
    """Start `diyc run --rm ... sh -c SCRIPT; read` and return once SCRIPT
    printed its last line: the container then waits for a line on its stdin
    (ours, inherited through diyc).  -> (process, record, lines printed)"""
    p = run_cli.popen("run", "--network", "none", "--rm", *run_args, "busybox", "sh", "-c", f"{script} && echo held && read x",
                      stdin=subprocess.PIPE)
    lines = []
    try:
        while not lines or lines[-1] != "held":
            line = p.stdout.readline()
            assert line, f"the container ended early: {lines} {p.stderr.read()}"
            lines.append(line.rstrip("\n"))
        (rec,) = container_records(diyc_root)
    except BaseException:
        p.kill()
        p.communicate()
        raise
    return p, rec, lines


def let_go(p):
    out, err = p.communicate("\n", timeout=60)
    return p.returncode, out, err


def test_default_write_past_the_memory_limit_succeeds(run_cli, diyc_root):
    """The upper dir is on disk: its page cache can be written back, where
    tmpfs pages stay charged to the container's memory cgroup (OOM kill)."""
    proc = run_cli("run", "--network", "none", "--rm", "-m", "64m", "busybox", "sh", "-c",
                   "dd if=/dev/zero of=/big bs=1M count=100 && echo ok")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"
    assert "out of memory" not in proc.stderr


def test_default_upper_is_on_disk_not_in_host_memory(run_cli, diyc_root):
    before = shmem_bytes()
    p, rec, _ = hold_after(run_cli, diyc_root, "dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null")
    held = shmem_bytes()
    upper = f"{diyc_root}/containers/{rec['id']}/upper"
    try:
        assert os.stat(f"{upper}/big").st_size == 100 * MB   # in the container's dir, on disk
        assert held - before < 40 * MB, (before, held)
    finally:
        code, _, err = let_go(p)
    assert code == 0, err
    assert not os.path.exists(upper)
    assert not os.path.exists(f"{diyc_root}/containers/{rec['id']}")


def test_tmpfs_option_holds_the_writes_in_memory(run_cli, diyc_root):
    """The control of the measurement above: the same write on the tmpfs
    option does show in Shmem (and nothing of it is on disk)."""
    before = shmem_bytes()
    p, rec, _ = hold_after(run_cli, diyc_root, "dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null",
                           "--rm-tmpfs-size", "200m")
    held = shmem_bytes()
    try:
        assert held - before > 80 * MB, (before, held)
        assert not os.path.exists(f"{diyc_root}/containers/{rec['id']}/upper")
        assert rec["rm_tmpfs_size"] == 200 * MB
    finally:
        code, _, err = let_go(p)
    assert code == 0, err
    # the tmpfs goes with the container's mount namespace
    wait_for(lambda: shmem_bytes() - before < 40 * MB, what="the tmpfs pages to be freed")


def test_tmpfs_option_past_its_size_is_enospc(run_cli, diyc_root):
    """Capped: a write past the cap fails with ENOSPC inside the container,
    below the memory limit, so the container is not OOM-killed either."""
    proc = run_cli("run", "--network", "none", "--rm", "-m", "64m", "--rm-tmpfs-size", "16m", "busybox", "sh", "-c",
                   "df -k / | tail -n 1; dd if=/dev/zero of=/big bs=1M count=40")
    assert proc.returncode == 1, proc.stderr
    assert "No space left on device" in proc.stderr
    assert "out of memory" not in proc.stderr
    assert proc.stdout.split()[1] == str(16 * 1024)  # the size df reports for /, in KiB
    (out,) = [line.split()[0] for line in proc.stderr.splitlines() if line.endswith("records out")]
    full, partial = map(int, out.split("+"))   # 1 MiB blocks written, whole + partial
    assert 14 <= full and full + partial <= 16, proc.stderr


@pytest.mark.parametrize("args, message", [
    (("--rm-tmpfs-size", "64m"), "--rm-tmpfs-size needs --rm"),
    (("--rm", "--rm-tmpfs-size", "0"), "the minimum is 1m"),
    (("--rm", "--rm-tmpfs-size", "100k"), "the minimum is 1m"),
    (("--rm", "--rm-tmpfs-size", "lots"), "invalid --rm-tmpfs-size"),
])
def test_tmpfs_option_bad_input(run_cli, diyc_root, args, message):
    proc = run_cli("run", "--network", "none", *args, "busybox", "true")
    assert_one_line_error(proc, contains=message)


def test_everything_the_container_wrote_is_removed_and_nothing_else(run_cli, diyc_root, tmp_path):
    """A tree a container made is removed without following its symlinks
    (they name host paths that exist here too), however deep it is."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("host data\n")
    deep = "/".join(["d"] * 300)
    script = (f"mkdir -p {canary} /{deep} && echo x > /{deep}/f && ln -s {canary} /link && "
              f"ln -s {canary}/keep /filelink && ln -s {canary} /{deep}/link && mkfifo /fifo && "
              "mkdir /locked && echo y > /locked/f && chmod 000 /locked && "
              f"mkdir -p /{canary} && ln -s / /{canary}/root")
    p, rec, _ = hold_after(run_cli, diyc_root, script)
    cdir = f"{diyc_root}/containers/{rec['id']}"
    try:
        assert os.path.islink(f"{cdir}/upper/link")
        assert os.path.isfile(f"{cdir}/upper/{deep}/f")
    finally:
        code, _, err = let_go(p)
    assert code == 0, err
    assert not os.path.exists(cdir)
    assert (canary / "keep").read_text() == "host data\n"
    assert os.listdir(canary) == ["keep"]


def test_remove_tree_at_deep_tree_and_symlinks(tmp_path):
    """The removal itself, on a tree built here: deeper than the fds it
    keeps open, with symlinks to a directory outside and an empty dir
    named like the ones it moves deep subtrees to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("keep")
    top = tmp_path / "tree"
    d = top
    for i in range(200):
        d = d / f"{i}"
        d.mkdir(parents=True)
        (d / "file").write_text(str(i))
        (d / "link").symlink_to(outside)
    (top / ".diyc-deep-1").mkdir()
    (top / ".diyc-deep-2").write_text("a file where a moved dir would go")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fds_before = len(os.listdir("/proc/self/fd"))
    try:
        remove_tree_at(fd, "tree")
        remove_tree_at(fd, "tree")        # idempotent: gone is fine
        remove_tree_at(fd, "missing")
        assert len(os.listdir("/proc/self/fd")) == fds_before
    finally:
        os.close(fd)
    assert not top.exists()
    assert sorted(os.listdir(tmp_path)) == ["outside"]
    assert (outside / "f").read_text() == "keep"


def test_killed_diyc_leaves_an_upper_dir_that_cleanup_removes(run_cli, diyc_root):
    """SIGKILL the diyc of a --rm container: its container (and its upper
    dir on disk) outlives it; once the container is dead too, `diyc
    cleanup` removes the upper dir with the rest."""
    with subreaper():
        p = run_cli.popen("run", "--network", "none", "--rm", "busybox", "sh", "-c", "echo data > /file; sleep 30")
        try:
            rec = running_record(diyc_root)
            pid = rec["state"]["pid"]
            upper = f"{diyc_root}/containers/{rec['id']}/upper"
            wait_for(lambda: os.path.exists(f"{upper}/file"), what="the container's write")
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            assert parent_of(pid) == os.getpid()   # the container lives on, ours now
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert proc_state(pid) is None
    with open(f"{upper}/file") as f:
        assert f.read() == "data\n"                # left behind by the killed diyc
    proc = run_cli("cleanup", check=True)
    assert rec["id"][:12] in proc.stdout
    assert not os.path.exists(upper)
    assert os.listdir(f"{diyc_root}/containers") == []
    assert run_cli("cleanup", check=True).stdout == ""


def test_library_default_is_on_disk(diyc_root):
    r = diyc.run("busybox", ["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null && echo ok"],
                 network="none", memory="64m", capture_output=True, root=str(diyc_root))
    assert (r.exit_code, r.stdout, r.oom_killed) == (0, b"ok\n", False)


def test_library_tmpfs_size(diyc_root):
    r = diyc.run("busybox", ["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=10"],
                 network="none", rm_tmpfs_size="4m", capture_output=True, root=str(diyc_root))
    assert r.exit_code == 1
    assert b"No space left on device" in r.stderr
    with pytest.raises(InvalidArgument, match="needs --rm"):
        diyc.run("busybox", ["true"], network="none", auto_remove=False, rm_tmpfs_size="4m", root=str(diyc_root))


@pytest.fixture
def open_root():
    """A diyc root whose parents others may search (--userns auto: the
    container's root is an unprivileged host uid)."""
    import shutil
    import tempfile
    path = tempfile.mkdtemp(prefix="diyc-rm-userns-", dir="/tmp")
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        assert os.listdir(f"{path}/containers") == []
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("tmpfs", [(), ("--rm-tmpfs-size", "8m")], ids=["disk", "tmpfs"])
def test_user_namespace(run_cli, open_root, tmpfs):
    """--userns auto: the container's root writes its upper dir, on disk
    (owned by its host uid) or on the capped tmpfs."""
    env = {"DIYC_ROOT": open_root}
    p = run_cli.popen("run", "--network", "none", "--rm", "--userns", "auto", *tmpfs, "busybox", "sh", "-c",
                      "echo data > /f && cat /f && df -k / | tail -n 1 && read x",
                      stdin=subprocess.PIPE, env=env)
    try:
        assert p.stdout.readline() == "data\n"
        size = p.stdout.readline().split()[1]
        (rec,) = container_records(open_root)
        upper = f"{open_root}/containers/{rec['id']}/upper"
        if tmpfs:
            assert size == str(8 * 1024)
            assert not os.path.exists(upper)
        else:
            assert os.stat(f"{upper}/f").st_uid == rec["userns"]["uid"] >= 65536
    finally:
        out, err = p.communicate("\n", timeout=60)
    assert p.returncode == 0, err
    assert not os.path.exists(f"{open_root}/containers/{rec['id']}")
