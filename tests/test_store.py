"""The state directory itself (issue #17): private to root, so no host user
reaches an image's setuid binaries or device nodes; complete and atomic
writes, so a full disk fails a command cleanly and never corrupts the image
index; corrupt state files named in one line; `rmi` never pulls an image
from under a container being started."""

import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import BUSYBOX, DIYC, Cli, assert_one_line_error, container_records
from test_images import add, tarball

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
PAGE = os.sysconf("SC_PAGE_SIZE")


def _import(cli, tmp_path, name, entries=None):
    path = tmp_path / f"{name.replace(':', '_').replace('/', '_')}.tar"
    path.write_bytes(tarball(entries))
    return cli("import", path, name, check=True).stdout.strip()


def _mode(path):
    return os.lstat(path).st_mode & 0o7777


# -- item 2: nobody but root reaches into the store --------------------------------

def _setuid_and_device(tar):
    with open(BUSYBOX, "rb") as f:
        data = f.read()
    info = tarfile.TarInfo("bin/suid-busybox")
    info.mode, info.uid, info.gid, info.size = 0o4755, 0, 0, len(data)
    tar.addfile(info, io.BytesIO(data))
    dev = tarfile.TarInfo("etc/null0")
    dev.type, dev.mode, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 0o666, 1, 3
    tar.addfile(dev)


# Run as uid 65534: what each attempt on the store gives (errno name or ok).
PROBE = r"""
import errno, os, sys
root, suid, dev = sys.argv[1:4]
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
print(attempt(lambda: os.listdir("/")))
print(attempt(lambda: os.listdir(root)))
print(attempt(lambda: os.chdir(root)))
print(attempt(lambda: os.stat(suid)))
print(attempt(lambda: os.close(os.open(dev, os.O_RDWR))), flush=True)
try:
    os.execv(suid, ["sh", "-c", "echo euid=$(id -u)"])
except OSError as e:
    print(errno.errorcode[e.errno])
"""


@pytest.fixture
def open_parent():
    """A directory any user may search, as /var/lib is (pytest's own temp
    dirs are 0700: a root below one would be out of reach anyway)."""
    path = tempfile.mkdtemp(prefix="diyc-private-", dir="/tmp")
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_host_users_cannot_reach_setuid_files_or_devices_of_images(open_parent, tmp_path):
    diyc_root = f"{open_parent}/diyc"
    run_cli = Cli(diyc_root)
    _import(run_cli, tmp_path, "suidimg", _setuid_and_device)
    try:
        record = json.loads(run_cli("image", "inspect", "suidimg", check=True).stdout)[0]
        layer = f"{diyc_root}/layers/{record['RootFS']['Layers'][0].removeprefix('sha256:')}"
        suid, dev = f"{layer}/bin/suid-busybox", f"{layer}/etc/null0"
        st = os.lstat(suid)
        assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o4755)  # the store keeps the bit
        assert _mode(dev) == 0o666
        proc = subprocess.run(NOBODY + ["/usr/bin/python3", "-I", "-c", PROBE,
                                        str(diyc_root), suid, dev],
                              capture_output=True, text=True, timeout=30)
        assert proc.stdout.split() == ["ok"] + ["EACCES"] * 5, (proc.stdout, proc.stderr)
        # inside a container the image is what it was
        out = run_cli("run", "--network", "none", "--rm", "suidimg", "sh", "-c",
                      "stat -c %a /bin/suid-busybox; stat -c %t,%T /etc/null0", check=True).stdout
        assert out.split() == ["4755", "1,3"]
    finally:
        run_cli("rmi", "suidimg", check=True)


def _layout_modes(root):
    out = {".": _mode(root)}
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            out[entry.name] = _mode(entry.path)
    return out


def test_root_is_private_from_the_first_mkdir_and_an_open_one_is_repaired(tmp_path):
    root = tmp_path / "fresh" / "diyc"
    cli = Cli(root)
    # even under umask 000, every directory is created 0700
    proc = subprocess.run(["sh", "-c", 'umask 000; exec "$@"', "sh"] + DIYC + ["images"],
                          env=cli.env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    modes = _layout_modes(root)
    assert set(modes) >= {".", "images", "layers", "containers", "names", "tmp", "locks", "scratch"}
    assert set(modes.values()) == {0o700}, modes

    # a root as an older diyc left it: searchable root, 0755 directories
    os.chmod(root, 0o711)
    for d in ("images", "layers", "containers", "tmp", "scratch"):
        os.chmod(root / d, 0o755)
    os.mkdir(root / "volumes", 0o755)
    cli("images", check=True)
    assert set(_layout_modes(root).values()) == {0o700}, _layout_modes(root)

    # a layout left incomplete (killed before scratch/, made last): completed
    os.rmdir(root / "scratch")
    os.chmod(root / "layers", 0o755)
    cli("images", check=True)
    assert set(_layout_modes(root).values()) == {0o700} and (root / "scratch").is_dir()

    # a planted symlink where the layout wants a directory is refused
    os.rmdir(root / "scratch")
    os.symlink("/tmp", root / "scratch")
    assert_one_line_error(cli("images"), contains="not a directory of ours")
    assert _mode("/tmp") == 0o1777


# -- item 3: a full disk, corrupt state files ------------------------------------------

@pytest.fixture
def small_root():
    """A diyc root on a tmpfs of its own, which the test can fill up."""
    d = tempfile.mkdtemp(prefix="diyc-full-", dir="/tmp")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", d], check=True)
    try:
        yield d
    finally:
        try:
            for rec in container_records(d):
                Cli(d)("rm", "-f", rec["id"])
        finally:
            subprocess.run(["umount", "-l", d], check=True)
            os.rmdir(d)


class Filler:
    """A file that takes all free space of a file system but `pages` pages."""

    def __init__(self, root):
        self.path = f"{root}/filler"

    def leave(self, pages):
        self.free()
        st = os.statvfs(os.path.dirname(self.path))
        size = st.f_bavail * st.f_frsize - pages * PAGE
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
        st = os.statvfs(os.path.dirname(self.path))
        assert st.f_bavail * st.f_frsize == pages * PAGE

    def free(self):
        if os.path.exists(self.path):
            os.unlink(self.path)


@pytest.fixture
def netns():
    name = f"diyctest-{os.getpid()}-{os.urandom(3).hex()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield ["nsenter", f"--net=/run/netns/{name}"]
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def _temp_files(root):
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if ".tmp" in f]


def _repositories(root):
    with open(f"{root}/images/repositories.json") as f:
        return json.load(f)


def test_a_full_disk_fails_commands_cleanly_and_keeps_the_index(small_root, tmp_path, netns):
    cli = Cli(small_root)
    image_id = _import(cli, tmp_path, "full:1")
    # enough tags that the index no longer fits in the one page left
    from diyc.images.store import ImageStore
    store = ImageStore(small_root)
    for i in range(80):
        store.tag("full:1", f"registry.example/some/long/repository-name-{i:02d}:tag-{i:02d}")
    tags = _repositories(small_root)
    assert len(json.dumps(tags)) > PAGE and len(tags) == 81

    def net(*args):
        return subprocess.run(netns + DIYC + list(args), capture_output=True, text=True,
                              env=cli.env(), timeout=60)

    filler = Filler(small_root)
    try:
        filler.leave(1)  # the index is written short: then ENOSPC
        failures = [cli("tag", "full:1", "full:2")]
        filler.leave(0)  # (a record may fit in one page)
        failures += [cli("run", "--network", "none", "--rm", "full:1", "true"),
                     cli("run", "--network", "none", "-d", "full:1", "busybox", "sleep", "10"),
                     net("network", "create", "fullnet", "--subnet", "10.252.9.0/24")]
        for proc in failures:
            line = assert_one_line_error(proc)
            assert "No space left on device" in line, line
        assert _temp_files(small_root) == []
        assert _repositories(small_root) == tags
        assert container_records(small_root) == []
        for d in ("containers", "names", "tmp"):
            assert os.listdir(f"{small_root}/{d}") == [], d
        assert "full" in cli("images", check=True).stdout  # the index reads
    finally:
        filler.free()

    # with room again, all of it works, and nothing was lost
    cli("tag", "full:1", "full:2", check=True)
    assert _repositories(small_root) == dict(tags, **{"full:2": image_id})
    assert cli("run", "--network", "none", "--rm", "full:1", "cat", "/etc/marker", check=True).stdout == "imported image\n"
    cid = cli("run", "--network", "none", "-d", "full:1", "busybox", "sleep", "10", check=True).stdout.strip()
    cli("rm", "-f", cid, check=True)
    proc = net("network", "create", "fullnet", "--subnet", "10.252.9.0/24")
    assert proc.returncode == 0, proc.stderr
    proc = net("network", "rm", "fullnet")
    assert proc.returncode == 0, proc.stderr
    assert _temp_files(small_root) == []


def test_corrupt_state_files_are_named_in_one_line(tmp_path, netns):
    root = tmp_path / "corrupt"
    cli = Cli(root)
    image_id = _import(cli, tmp_path, "corrupt:1")
    cli("run", "--network", "none", "--name", "keeper", "corrupt:1", "true", check=True)
    proc = subprocess.run(netns + DIYC + ["network", "create", "cnet", "--subnet", "10.252.8.0/24"],
                          capture_output=True, text=True, env=cli.env())
    assert proc.returncode == 0, proc.stderr
    try:
        index = root / "images" / "repositories.json"
        good = index.read_bytes()
        for bad in (good[:len(good) // 2], b"", b"[]", b"\xff\xfe{"):
            index.write_bytes(bad)  # truncated, as the old writer left it on a full disk
            for args in (("images",), ("run", "--network", "none", "--rm", "corrupt:1", "true"), ("tag", "corrupt:1", "x")):
                line = assert_one_line_error(cli(*args))
                assert f"{index}: corrupt state file" in line, line
        index.write_bytes(good)

        record = root / "images" / f"{image_id.removeprefix('sha256:')}.json"
        saved = record.read_bytes()
        record.write_bytes(saved[:40])
        line = assert_one_line_error(cli("images"))
        assert f"{record}: corrupt state file" in line, line
        record.write_bytes(saved)

        (ctr,) = container_records(root)
        cjson = root / "containers" / ctr["id"] / "container.json"
        saved = cjson.read_bytes()
        cjson.write_bytes(saved[:-30])
        line = assert_one_line_error(cli("rm", "keeper"), code=1)
        assert f"{cjson}: corrupt state file" in line, line
        cjson.write_bytes(saved)

        nrec = root / "networks" / "cnet.json"
        saved = nrec.read_bytes()
        nrec.write_bytes(b'{"name": "cnet", "subnet": ')
        line = assert_one_line_error(cli("network", "ls"))
        assert f"{nrec}: corrupt state file" in line, line
        nrec.write_bytes(saved)
    finally:
        cli("rm", "keeper", check=True)
        subprocess.run(netns + DIYC + ["network", "rm", "cnet"], env=cli.env(), check=True,
                       capture_output=True)
        cli("rmi", "corrupt:1", check=True)


def test_json_parser_raises_value_error_for_malformed_input():
    from diyc import _json
    for bad in ('{"a": 1', '{"a', "{", "[1,", '"abc', '{"a": tru}', "", "nul", '{"a": 1} x'):
        with pytest.raises(ValueError, match="invalid JSON"):
            _json.loads(bad)
    assert _json.loads(' {"a": [1, "x", null]} ') == {"a": [1, "x", None]}


def test_atomic_write_leaves_the_old_file_on_error(tmp_path):
    from diyc.errors import DiycError
    from diyc.state import atomic_write
    target = tmp_path / "state.json"
    atomic_write(str(target), "old\n")
    with pytest.raises(DiycError, match=f"{tmp_path}/missing/x.json: cannot write: No such file"):
        atomic_write(str(tmp_path / "missing" / "x.json"), "new\n")
    big = "x" * (4 << 20)
    atomic_write(str(target), big)
    assert target.read_text() == big and os.listdir(tmp_path) == ["state.json"]


# -- item 4: rmi racing run -----------------------------------------------------------------

def test_rmi_racing_run_never_leaves_a_container_without_its_image(run_cli, diyc_root, tmp_path):
    """Each round: `run --rm IMG` and, 0-8 ms later, `rmi IMG`.  Either the
    run had the image (its container sees its files and rmi is refused while
    it exists, or comes after it), or rmi came first and the run finds no
    image.  Never a container with an empty / (or, as before, no layers at
    all: "mount_overlay: No such file or directory")."""
    path = tmp_path / "race.tar"
    # a long /etc/group, as big images have: the run reads it between
    # resolving the image and recording its container
    groups = b"".join(b"group%d:x:%d:\n" % (i, i) for i in range(1000, 120000))
    path.write_bytes(tarball(lambda tar: add(tar, "etc/group", data=b"root:x:0:\n" + groups)))
    rng = random.Random(17)
    try:
        for _ in range(20):
            run_cli("import", path, "race:1", check=True)
            runner = run_cli.popen("run", "--network", "none", "--rm", "race:1", "sh", "-c", "ls /bin/busybox")
            time.sleep(rng.uniform(0, 0.008))
            rmi = run_cli("rmi", "race:1")
            out, err = runner.communicate(timeout=60)
            if runner.returncode == 0:  # it had the image, all of it
                assert out == "/bin/busybox\n", (out, err)
                if rmi.returncode != 0:  # (else it came after the container was gone)
                    assert_one_line_error(rmi, contains="image is being used by")
            else:
                assert (runner.returncode, err) == (125, "diyc: No such image: race:1\n"), (out, err)
                assert rmi.returncode == 0, rmi.stderr
            run_cli("rmi", "race:1")  # whichever is left
            assert not container_records(diyc_root)
    finally:
        run_cli("rmi", "race:1")


def test_cleanup_removes_a_record_a_power_cut_left_empty(tmp_path):
    """A --rm container's record is written without fsync (it dies with the
    container): after a power cut it may be empty.  `cleanup` removes such a
    directory, but keeps one whose upper/ holds a container's changes."""
    root = tmp_path / "powercut"
    cli = Cli(root)
    cli("images", check=True)  # the layout
    old = time.time() - 3600
    for cid, changes in (("a" * 64, False), ("b" * 64, True)):
        d = root / "containers" / cid
        d.mkdir()
        (d / "container.json").write_bytes(b"")
        if changes:
            (d / "upper").mkdir()
            (d / "upper" / "data").write_text("precious\n")
        os.utime(d, (old, old))
    out = cli("cleanup", check=True).stdout
    assert f"removed incomplete container dir {'a' * 12}" in out
    assert f"kept container dir {'b' * 12}" in out
    assert os.listdir(root / "containers") == ["b" * 64]
    assert (root / "containers" / ("b" * 64) / "upper" / "data").read_text() == "precious\n"
