"""The image store: `diyc import` of flat rootfs tarballs, images, rmi and
layer garbage collection; hostile tarballs; whiteouts and file metadata in
layers; image references."""

import gzip
import io
import json
import os
import signal
import stat
import subprocess
import tarfile

import pytest

from conftest import BUSYBOX, DIYC, assert_one_line_error, wait_for

APPLETS = ("sh", "echo", "cat", "ls", "stat", "id", "test", "true", "touch", "wc", "readlink")


# -- tarballs -------------------------------------------------------------------

def add(tar, name, type_=tarfile.REGTYPE, mode=0o644, data=b"", linkname="", uid=0, gid=0,
        pax=None):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = type_, mode, 1_000_000_000
    info.uid, info.gid = uid, gid
    info.linkname = linkname
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = pax
    tar.addfile(info, io.BytesIO(data) if info.size else None)


def tarball(entries=None, base=True):
    """A flat rootfs tarball (bytes): /bin/busybox and a few applets, a
    minimal /etc, then `entries(tar)` adds more."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if base:
            for d in ("bin", "etc", "proc", "dev", "sys"):
                add(tar, d, tarfile.DIRTYPE, 0o755)
            add(tar, "tmp", tarfile.DIRTYPE, 0o1777)
            with open(BUSYBOX, "rb") as f:
                add(tar, "bin/busybox", mode=0o755, data=f.read())
            for a in APPLETS:
                add(tar, f"bin/{a}", tarfile.SYMTYPE, 0o777, linkname="busybox")
            add(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n")
            add(tar, "etc/group", data=b"root:x:0:\n")
            add(tar, "etc/marker", data=b"imported image\n")
        if entries:
            entries(tar)
    return buf.getvalue()


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def store_state(root):
    def ls(d):
        return sorted(os.listdir(d)) if os.path.isdir(d) else []
    try:
        with open(f"{root}/images/repositories.json") as f:
            repos = json.load(f)
    except FileNotFoundError:
        repos = {}
    return {"layers": ls(f"{root}/layers"), "images": ls(f"{root}/images"), "repos": repos,
            "tmp": ls(f"{root}/tmp")}


@pytest.fixture(autouse=True)
def store_unchanged(diyc_root):
    """Every test here leaves the image store as it found it (the busybox
    image only): what it imports it removes, what it fails to import leaves
    no trace."""
    before = store_state(diyc_root)
    yield
    assert store_state(diyc_root) == before


@pytest.fixture
def imported(run_cli, tmp_path):
    """imported(name, tar bytes) -> image id; removed again after the test."""
    names = []

    def do(name, data):
        p = write(tmp_path, f"{len(names)}.tar", data)
        proc = run_cli("import", p, name, check=True)
        names.append(name)
        return proc.stdout.strip()
    yield do
    for name in names:
        run_cli("rmi", name)


# -- import, images, rmi ----------------------------------------------------------

def test_import_run_images_rmi(run_cli, tmp_path, diyc_root):
    before = store_state(diyc_root)
    p = write(tmp_path, "rootfs.tar", tarball())
    proc = run_cli("import", p, "testimg:v1")
    assert proc.returncode == 0, proc.stderr
    image_id = proc.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    new_layers = set(store_state(diyc_root)["layers"]) - set(before["layers"])
    assert len(new_layers) == 1

    listing = run_cli("images", check=True).stdout.splitlines()
    rows = [l.split() for l in listing[1:]]
    assert ["testimg", "v1", image_id[7:19]] in [r[:3] for r in rows]

    proc = run_cli("run", "--network", "none", "--rm", "testimg:v1", "sh", "-c",
                   "cat /etc/marker; echo $((6 * 7)); ls /bin | wc -l; ls /", check=True)
    lines = proc.stdout.splitlines()
    assert lines[0] == "imported image"
    assert lines[1] == "42"
    assert lines[2] == str(1 + len(APPLETS))  # our image, not the built-in busybox
    assert set(lines[3:]) == {"bin", "dev", "etc", "proc", "sys", "tmp"}
    # the default command is the image's Cmd, sh: it reads stdin
    assert run_cli("run", "--network", "none", "--rm", "testimg:v1", input="echo from-stdin\n",
                   check=True).stdout == "from-stdin\n"

    proc = run_cli("rmi", "testimg:v1", check=True)
    (layer,) = new_layers
    assert proc.stdout.splitlines() == ["Untagged: testimg:v1", f"Deleted: {image_id}",
                                        f"Deleted layer: sha256:{layer}"]
    assert not os.path.exists(f"{diyc_root}/layers/{layer}")
    assert "testimg" not in run_cli("images", check=True).stdout
    proc = run_cli("run", "--network", "none", "--rm", "testimg:v1", "true")
    assert_one_line_error(proc, 125, contains="testimg:v1")


def test_import_gzip_and_from_stdin(run_cli, imported):
    data = tarball()
    imported("gzimg", gzip.compress(data))
    out = run_cli("run", "--network", "none", "--rm", "gzimg", "cat", "/etc/marker", check=True).stdout
    assert out == "imported image\n"
    proc = subprocess.run(DIYC + ["import", "-", "stdinimg"], input=data, capture_output=True,
                          env=run_cli.env())
    assert proc.returncode == 0, proc.stderr
    try:
        # the same layer: the uncompressed stream is the same, so is its diff-id
        a = json.loads(run_cli("inspect", "gzimg", check=True).stdout)[0]
        b = json.loads(run_cli("inspect", "stdinimg", check=True).stdout)[0]
        assert a["RootFS"]["Layers"] == b["RootFS"]["Layers"]
    finally:
        run_cli("rmi", "stdinimg", check=True)


def test_tag_and_untag(run_cli, imported, diyc_root):
    image_id = imported("tagimg", tarball())
    run_cli("tag", "tagimg", "othername:x", check=True)
    rows = [l.split()[:3] for l in run_cli("images", check=True).stdout.splitlines()[1:]]
    assert ["othername", "x", image_id[7:19]] in rows
    # removing one of two names only untags
    proc = run_cli("rmi", "othername:x", check=True)
    assert proc.stdout == "Untagged: othername:x\n"
    assert "tagimg" in run_cli("images", check=True).stdout


def test_rmi_refused_while_a_container_uses_it(run_cli, tmp_path, diyc_root):
    p = write(tmp_path, "rootfs.tar", tarball())
    run_cli("import", p, "usedimg", check=True)
    try:
        run_cli("run", "--network", "none", "--name", "user1", "usedimg", "true", check=True)
        try:
            state = store_state(diyc_root)
            proc = run_cli("rmi", "usedimg")
            assert_one_line_error(proc, 125, contains="being used by stopped container")
            assert store_state(diyc_root) == state
            assert run_cli("run", "--network", "none", "--rm", "usedimg", "true").returncode == 0
        finally:
            run_cli("rm", "user1", check=True)
    finally:
        proc = run_cli("rmi", "usedimg")
    assert proc.returncode == 0, proc.stderr


def test_rmi_force_as_docker(run_cli, tmp_path, diyc_root):
    """rmi -f: a stopped container's image is untagged and deleted (the
    container still starts: its layers stay until it goes); a running
    container's: its name only untagged, by id refused."""
    p = write(tmp_path, "rootfs.tar", tarball())
    image_id = run_cli("import", p, "forced:1", check=True).stdout.strip()
    run_cli("create", "--network", "none", "--name", "stopped1", "forced:1", "cat", "/etc/marker",
            check=True)
    try:
        assert_one_line_error(run_cli("rmi", "forced:1"), 125, contains="being used by")
        out = run_cli("rmi", "-f", "forced:1", check=True).stdout
        assert out.splitlines() == ["Untagged: forced:1", f"Deleted: {image_id}"]  # no layer yet
        assert image_id[7:19] not in run_cli("images", "-q", check=True).stdout
        assert run_cli("start", "-a", "stopped1", check=True).stdout == "imported image\n"
        # its image named by its id now, as docker's ps shows it
        ps = run_cli("ps", "-a", "--filter", "name=stopped1", "--format", "{{.Image}}", check=True).stdout
        assert ps == f"{image_id[7:19]}\n"
    finally:
        run_cli("rm", "stopped1", check=True)
    # running
    image_id = run_cli("import", p, "forced:2", check=True).stdout.strip()
    os.mkfifo(tmp_path / "fifo")  # (the image has no sleep: opening a fifo without a writer blocks)
    run_cli("run", "-d", "--network", "none", "--name", "running1", "-v", f"{tmp_path}:/h", "forced:2",
            "sh", "-c", "read x < /h/fifo", check=True)
    try:
        assert_one_line_error(run_cli("rmi", "-f", image_id[7:19]), 125,
                              contains=f"unable to delete {image_id[7:19]} (cannot be forced) - image is "
                                       "being used by running container")
        assert run_cli("rmi", "-f", "forced:2", check=True).stdout == "Untagged: forced:2\n"
        rows = [l.split()[:3] for l in run_cli("images", "-f", "dangling=true", check=True).stdout.splitlines()[1:]]
        assert ["<none>", "<none>", image_id[7:19]] in rows  # (among any other test left)
    finally:
        run_cli("rm", "-f", "running1", check=True)
    assert run_cli("rmi", image_id, check=True).stdout.startswith(f"Deleted: {image_id}")


def test_rmi_of_an_id_with_names_in_several_repositories_needs_force(run_cli, tmp_path):
    p = write(tmp_path, "rootfs.tar", tarball())
    image_id = run_cli("import", p, "repo1:1", check=True).stdout.strip()
    run_cli("tag", "repo1:1", "repo1:2", check=True)
    out = run_cli("rmi", image_id[7:19], check=True).stdout  # one repository: every name goes
    assert out.splitlines()[:2] == ["Untagged: repo1:1", "Untagged: repo1:2"]
    image_id = run_cli("import", p, "repo1:1", check=True).stdout.strip()
    run_cli("tag", "repo1:1", "repo2:1", check=True)
    assert_one_line_error(run_cli("rmi", image_id[7:19]), 125,
                          contains=f"unable to delete {image_id[7:19]} (must be forced) - image is "
                                   "referenced in multiple repositories")
    out = run_cli("rmi", "-f", image_id[7:19], check=True).stdout
    assert out.splitlines()[:3] == ["Untagged: repo1:1", "Untagged: repo2:1", f"Deleted: {image_id}"]


def test_images_repository_argument_and_filters(run_cli, tmp_path):
    p = write(tmp_path, "rootfs.tar", tarball())
    image_id = run_cli("import", p, "flt:1", check=True).stdout.strip()
    run_cli("tag", "flt:1", "flt:2", check=True)
    run_cli("tag", "flt:1", "lib/flt:1", check=True)
    try:
        def rows(*args):
            return [tuple(l.split()[:2]) for l in run_cli("images", *args, check=True).stdout.splitlines()[1:]]
        assert sorted(rows("flt")) == [("flt", "1"), ("flt", "2")]
        assert rows("flt:2") == [("flt", "2")]
        assert sorted(rows("f*")) == [("flt", "1"), ("flt", "2")]  # `*` stays in a path component
        assert rows("*/flt") == [("lib/flt", "1")]
        assert sorted(rows("--filter", "reference=flt:*", "-f", "reference=lib/*")) == \
            [("flt", "1"), ("flt", "2"), ("lib/flt", "1")]
        assert rows("nosuch") == []
        assert ("flt", "1") in rows("-f", "dangling=false") and ("flt", "1") not in rows("-f", "dangling=true")
        assert run_cli("images", "-q", "flt", check=True).stdout == f"{image_id[7:19]}\n"
        assert rows("-a", "flt:1") == [("flt", "1")]
        for args, message in ((["a", "b"], "requires at most 1 argument"),
                              (["-f", "colour=red"], "invalid filter 'colour'"),
                              (["-f", "dangling=maybe"], "invalid filter 'dangling=maybe'"),
                              (["-f", "dangling"], "bad format of filter")):
            assert_one_line_error(run_cli("images", *args), 125, contains=message)
    finally:
        run_cli("rmi", "flt:2", "lib/flt:1", "flt:1", check=True)


def test_run_by_image_id(run_cli, busybox_image):
    full = busybox_image["id"]
    for ref in (full, full.removeprefix("sha256:"), full[7:19]):
        proc = run_cli("run", "--network", "none", "--rm", ref, "echo", "by-id")
        assert proc.returncode == 0, (ref, proc.stderr)
        assert proc.stdout == "by-id\n"


def test_rmi_of_unknown_image(run_cli):
    assert_one_line_error(run_cli("rmi", "nosuchimage"), 125, contains="nosuchimage")


# -- hostile and broken tarballs --------------------------------------------------

def _dotdot(tar, outside):
    add(tar, "../evil-dotdot", data=b"x")


def _absolute(tar, outside):
    add(tar, f"{outside}/evil-absolute", data=b"x")


def _absolute_root(tar, outside):
    add(tar, "/evil-diyc-test", data=b"x")


def _symlink_escape(tar, outside):
    add(tar, "link", tarfile.SYMTYPE, 0o777, linkname=str(outside))
    add(tar, "link/evil-symlink", data=b"x")


def _symlink_escape_dir(tar, outside):
    add(tar, "a", tarfile.DIRTYPE, 0o755)
    add(tar, "a/link", tarfile.SYMTYPE, 0o777, linkname="../../../../../../../" + str(outside))
    add(tar, "a/link/sub/evil-symlink-dir", data=b"x")


def _hardlink_escape(tar, outside):
    add(tar, "passwd-link", tarfile.LNKTYPE, linkname="../../../../../../etc/passwd")


def _hardlink_absolute(tar, outside):
    add(tar, "passwd-link", tarfile.LNKTYPE, linkname="/etc/passwd")


def _hardlink_through_symlink(tar, outside):
    add(tar, "link", tarfile.SYMTYPE, 0o777, linkname=str(outside))
    add(tar, "hl", tarfile.LNKTYPE, linkname="link/target")


HOSTILE = {
    "dotdot": _dotdot,
    "absolute": _absolute,
    "absolute-root": _absolute_root,
    "symlink-escape": _symlink_escape,
    "symlink-escape-relative": _symlink_escape_dir,
    "hardlink-dotdot": _hardlink_escape,
    "hardlink-absolute": _hardlink_absolute,
    "hardlink-through-symlink": _hardlink_through_symlink,
}


def _broken(kind):
    good = tarball()
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "garbage":
        return b"this is not a tarball\n" * 1000
    if kind == "empty":
        return b""
    if kind == "truncated-gzip":
        z = gzip.compress(good)
        return z[: len(z) // 2]
    raise ValueError(kind)


def _import_fails(run_cli, diyc_root, path):
    before = store_state(diyc_root)
    proc = run_cli("import", path, "hostile")
    line = assert_one_line_error(proc, 125)
    assert store_state(diyc_root) == before  # no layer, no image, no staging left
    assert "hostile" not in run_cli("images", check=True).stdout
    return line


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_tarball_rejected(run_cli, diyc_root, tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_text("outside file")
    before_outside = sorted(os.listdir(outside))
    p = write(tmp_path, "evil.tar", tarball(lambda tar: HOSTILE[kind](tar, outside)))
    _import_fails(run_cli, diyc_root, p)
    assert sorted(os.listdir(outside)) == before_outside
    assert (outside / "target").read_text() == "outside file"
    assert not os.path.exists("/evil-diyc-test")
    assert not os.path.exists(f"{diyc_root}/evil-dotdot")
    assert not os.path.exists(f"{diyc_root}/tmp/evil-dotdot")
    with open("/etc/passwd") as f:
        assert "root" in f.read()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty", "truncated-gzip"])
def test_broken_tarball_rejected(run_cli, diyc_root, tmp_path, kind):
    p = write(tmp_path, "broken.tar", _broken(kind))
    line = _import_fails(run_cli, diyc_root, p)
    assert "layer" in line or "tar" in line


def test_import_of_missing_file(run_cli, diyc_root, tmp_path):
    before = store_state(diyc_root)
    assert_one_line_error(run_cli("import", tmp_path / "nothere.tar", "x"), 125,
                          contains="nothere.tar")
    assert store_state(diyc_root) == before


def test_whiteout_of_dotdot_cannot_escape(tmp_path):
    """'.wh...' is the whiteout of '..': it must not remove the parent of the
    layer directory (in the store: <root>/tmp with every concurrent import's
    staging dir).  Found by this suite, fixed in 99dad48."""
    from diyc.images.layers import LayerError, unpack_layer
    parent = tmp_path / "parent"
    dest = parent / "dest"
    dest.mkdir(parents=True)
    (parent / "canary").write_text("must survive")
    data = tarball(lambda tar: add(tar, ".wh..."), base=False)
    with pytest.raises(LayerError):
        unpack_layer(io.BytesIO(data), str(dest))
    assert (parent / "canary").exists()
    assert (parent / "canary").read_text() == "must survive"


@pytest.mark.parametrize("alone", [True, False], ids=["alone", "after-entries"])
def test_empty_whiteout_name_rejected(run_cli, diyc_root, tmp_path, alone):
    """'.wh.' is the whiteout of '': it used to replace the layer directory
    by a 0/0 char device (found by this suite, fixed in 99dad48)."""
    p = write(tmp_path, "wh.tar", tarball(lambda tar: add(tar, ".wh."), base=not alone))
    try:
        _import_fails(run_cli, diyc_root, p)
    finally:
        run_cli("rmi", "hostile")


@pytest.mark.parametrize("name", [".wh..", "sub/.wh..", "sub/.wh...", "sub/.wh."])
def test_whiteouts_of_dot_names_rejected(tmp_path, name):
    from diyc.images.layers import LayerError, unpack_layer
    parent = tmp_path / "parent"
    dest = parent / "dest"
    dest.mkdir(parents=True)
    (parent / "canary").write_text("must survive")
    data = tarball(lambda tar: (add(tar, "sub", tarfile.DIRTYPE, 0o755),
                                add(tar, "sub/keep", data=b"k"), add(tar, name)), base=False)
    with pytest.raises(LayerError):
        unpack_layer(io.BytesIO(data), str(dest))
    assert (parent / "canary").read_text() == "must survive"
    assert dest.is_dir()
    assert (dest / "sub" / "keep").read_bytes() == b"k"


def test_concurrent_rmi_keeps_a_layer_being_imported(run_cli, diyc_root, tmp_path):
    """Deterministic: hold the images lock, let the import stop on it (after
    its layer is in place), freeze the import, start rmi: it must wait for
    the import to record its image rather than collect the new layer."""
    import fcntl
    other = write(tmp_path, "other.tar", tarball(lambda tar: add(tar, "other", data=b"o")))
    mine = write(tmp_path, "mine.tar", tarball(lambda tar: add(tar, "mine", data=b"m")))
    run_cli("import", other, "raceother", check=True)
    layers_before = set(os.listdir(f"{diyc_root}/layers"))
    lock = os.open(f"{diyc_root}/images.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    p = None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        p = run_cli.popen("import", mine, "raceimg")

        def blocked_on_lock():
            with open(f"/proc/{p.pid}/wchan") as f:
                return "lock" in f.read() and set(os.listdir(f"{diyc_root}/layers")) - layers_before
        wait_for(blocked_on_lock, what="the import to wait for the images lock")
        os.kill(p.pid, signal.SIGSTOP)
        # only once it is stopped may the lock go: woken before it stops, it
        # would take the lock and stop holding it
        wait_for(lambda: proc_state(p.pid) == "T", what="the import to stop")
        os.close(lock)
        lock = -1
        # the collection of unused layers waits for the import in flight
        rmi = run_cli.popen("rmi", "raceother")
        wait_for(lambda: "lock" in open(f"/proc/{rmi.pid}/wchan").read(),
                 what="rmi to wait for the import")
        assert rmi.poll() is None
        os.kill(p.pid, signal.SIGCONT)
        p.communicate(timeout=20)
        assert p.returncode == 0
        rmi.communicate(timeout=20)
        assert rmi.returncode == 0
        proc = run_cli("run", "--network", "none", "--rm", "raceimg", "cat", "/mine")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "m"
    finally:
        if lock >= 0:
            os.close(lock)
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait()
        run_cli("rmi", "raceimg")
        run_cli("rmi", "raceother")


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


# -- references ---------------------------------------------------------------------

@pytest.mark.parametrize("ref", ["Bad:Name", "a::b", "UPPER", "a:", ":tag", "-lead", "a/../b",
                                 "a:b:c", "with space"])
def test_bad_reference_rejected(run_cli, diyc_root, tmp_path, ref):
    p = write(tmp_path, "rootfs.tar", tarball())
    before = store_state(diyc_root)
    assert_one_line_error(run_cli("import", p, ref), 125)
    assert store_state(diyc_root) == before
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", ref, "true"), 125)
    assert_one_line_error(run_cli("tag", "busybox", ref), 125)


@pytest.mark.parametrize("ref", ["lower", "with-dash_underscore.dot:Tag_1", "ns/name:1.0",
                                 "localhost:5000/ns/name:latest"])
def test_good_references_accepted(run_cli, ref):
    run_cli("tag", "busybox", ref, check=True)
    try:
        assert run_cli("run", "--network", "none", "--rm", ref, "true").returncode == 0
    finally:
        run_cli("rmi", ref, check=True)


# -- layer contents: whiteouts, metadata ------------------------------------------

def test_whiteouts_become_overlay_whiteouts(tmp_path):
    """unpack_layer directly: OCI whiteouts -> overlayfs's (0/0 char device,
    trusted.overlay.opaque=y)."""
    from diyc.images.layers import unpack_layer

    def entries(tar):
        add(tar, "dir", tarfile.DIRTYPE, 0o755)
        add(tar, "dir/kept", data=b"k")
        add(tar, "dir/.wh.gone")
        add(tar, ".wh.topgone")
        add(tar, "opq", tarfile.DIRTYPE, 0o755)
        add(tar, "opq/.wh..wh..opq")
        add(tar, "opq/new", data=b"n")
    dest = tmp_path / "layer"
    dest.mkdir()
    diff_id, size = unpack_layer(io.BytesIO(tarball(entries, base=False)), str(dest))
    assert diff_id.startswith("sha256:") and size > 0
    for p in (dest / "dir" / "gone", dest / "topgone"):
        st = os.lstat(p)
        assert stat.S_ISCHR(st.st_mode), p
        assert st.st_rdev == os.makedev(0, 0)
    assert not (dest / "dir" / ".wh.gone").exists()
    assert (dest / "dir" / "kept").read_bytes() == b"k"
    assert os.getxattr(dest / "opq", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(dest / "opq")) == ["new"]


def test_whiteouts_hide_lower_layer_files_in_a_container(run_cli, diyc_root):
    """A two-layer image (library: add_layer twice, add_image): the upper
    layer's whiteouts hide the lower layer's files inside the container."""
    from diyc.images.store import ImageStore
    store = ImageStore(str(diyc_root))

    def lower(tar):
        add(tar, "etc/gone", data=b"old")
        add(tar, "opq", tarfile.DIRTYPE, 0o755)
        add(tar, "opq/old", data=b"old")

    def upper(tar):
        add(tar, "etc/.wh.gone")
        add(tar, "opq", tarfile.DIRTYPE, 0o755)
        add(tar, "opq/.wh..wh..opq")
        add(tar, "opq/new", data=b"new")
        add(tar, "etc/added", data=b"added")
    l1, _ = store.add_layer(io.BytesIO(tarball(lower)))
    l2, _ = store.add_layer(io.BytesIO(tarball(upper, base=False)))
    store.add_image({"config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]}}, [l1, l2], "twolayer")
    try:
        out = run_cli("run", "--network", "none", "--rm", "twolayer", "sh", "-c",
                      "ls /etc; echo --; ls /opq", check=True).stdout
        etc, _, opq = out.partition("--\n")
        assert "gone" not in etc.split()
        assert "added" in etc.split() and "marker" in etc.split()
        assert opq.split() == ["new"]
    finally:
        run_cli("rmi", "twolayer", check=True)


def test_setuid_and_ownership_preserved(run_cli, imported, tmp_path):
    def entries(tar):
        with open(BUSYBOX, "rb") as f:
            add(tar, "bin/suidbox", mode=0o4755, data=f.read(), uid=0, gid=0)
        add(tar, "owned", mode=0o2640, data=b"o", uid=1234, gid=5678)
        add(tar, "sticky", tarfile.DIRTYPE, 0o1777)
        add(tar, "private", tarfile.DIRTYPE, 0o700, uid=42, gid=43)
        add(tar, "private/inner", data=b"i", mode=0o600, uid=42, gid=43)
        add(tar, "sym", tarfile.SYMTYPE, 0o777, linkname="owned", uid=7, gid=8)
        add(tar, "attr", data=b"a", pax={"SCHILY.xattr.user.diyctest": "value"})
    imported("metaimg", tarball(entries))
    out = run_cli("run", "--network", "none", "--rm", "metaimg", "stat", "-c", "%n %a %u %g %F",
                  "/bin/suidbox", "/owned", "/sticky", "/private", "/private/inner", "/sym",
                  check=True).stdout.splitlines()
    assert out == ["/bin/suidbox 4755 0 0 regular file",
                   "/owned 2640 1234 5678 regular file",
                   "/sticky 1777 0 0 directory",
                   "/private 700 42 43 directory",
                   "/private/inner 600 42 43 regular file",
                   "/sym 777 7 8 symbolic link"]
    # and the bit is honoured: the root filesystem is not mounted nosuid
    out = run_cli("run", "--network", "none", "--rm", "metaimg", "cat", "/proc/mounts", check=True).stdout
    (root_line,) = [l for l in out.splitlines() if l.split()[1] == "/"]
    assert "nosuid" not in root_line.split()[3].split(","), root_line


def test_metadata_via_unpack_layer(tmp_path):
    from diyc.images.layers import unpack_layer

    def entries(tar):
        add(tar, "suid", mode=0o4711, data=b"#!/bin/sh\n", uid=1, gid=2)
        add(tar, "dir", tarfile.DIRTYPE, 0o555, uid=3, gid=4)
        add(tar, "dir/file", data=b"f", mode=0o444, uid=5, gid=6)
        add(tar, "fifo", tarfile.FIFOTYPE, 0o640)
    dest = tmp_path / "layer"
    dest.mkdir()
    unpack_layer(io.BytesIO(tarball(entries, base=False)), str(dest))
    st = os.lstat(dest / "suid")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4711, 1, 2)
    st = os.lstat(dest / "dir")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o555, 3, 4)
    assert st.st_mtime == 1_000_000_000
    st = os.lstat(dest / "dir" / "file")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o444, 5, 6)
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)


def test_hard_links_in_a_layer(run_cli, diyc_root, tmp_path):
    def entries(tar):
        add(tar, "owned", mode=0o640, data=b"o", uid=1234, gid=5678)
        add(tar, "hard", tarfile.LNKTYPE, linkname="owned")
        add(tar, "usr/bin/wc", tarfile.LNKTYPE, linkname="bin/busybox")  # parents created
    p = write(tmp_path, "hl.tar", tarball(entries))
    proc = run_cli("import", p, "hardlinkimg")
    try:
        assert proc.returncode == 0, proc.stderr
        out = run_cli("run", "--network", "none", "--rm", "hardlinkimg", "stat", "-c", "%i %h %u %a", "/owned",
                      "/hard", check=True).stdout.splitlines()
        assert out[0] == out[1]  # one inode
        assert out[0].split()[1:] == ["2", "1234", "640"]
        out = run_cli("run", "--network", "none", "--rm", "hardlinkimg", "/usr/bin/wc", "-c", input="12345",
                      check=True).stdout
        assert out.split() == ["5"]
    finally:
        run_cli("rmi", "hardlinkimg")
