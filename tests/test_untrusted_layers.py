"""Hostile layers against the host (issue #17): a layer must not change
anything outside its own directory, whatever the order of its entries -
a directory replaced by a symlink to a host file, a symlink in a parent
component, hard links, whiteouts and ownership through symlinks.  Each
layer goes through the real CLI (`diyc import`, and `diyc load` of a
docker-save archive holding it) into a root of the test's own.

Also: sparse files stay sparse, and file capabilities survive unpacking."""

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from conftest import Cli, assert_one_line_error

MTIME = 1_234_567_890   # the host files' mtime, which no layer may change
EVIL_UID = 4242


def entry(name, kind="file", mode=0o644, data=b"", link="", uid=0, gid=0, mtime=0, pax=None):
    return dict(name=name, kind=kind, mode=mode, data=data, link=link, uid=uid, gid=gid,
                mtime=mtime, pax=pax)


_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
          "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}


def layer_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type, info.mode, info.mtime = _TYPES[e["kind"]], e["mode"], e["mtime"]
            info.uid, info.gid, info.linkname = e["uid"], e["gid"], e["link"]
            info.size = len(e["data"])
            if e["pax"]:
                info.pax_headers = e["pax"]
            tar.addfile(info, io.BytesIO(e["data"]) if info.size else None)
    return buf.getvalue()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_archive(path, layer):
    """A docker-save archive (manifest.json, config, layer.tar) of one layer."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["evil/img:1"],
                            "Layers": ["l/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("config.json", config), ("l/layer.tar", layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


def install(root, tmp_path, layer, how):
    """`diyc import` the layer, or `diyc load` an archive of it."""
    cli = Cli(root)
    if how == "import":
        p = tmp_path / "layer.tar"
        p.write_bytes(layer)
        return cli("import", p, "evil/img:1")
    return cli("load", "-i", docker_archive(tmp_path / "image.tar", layer))


def the_layer(root):
    (layer,) = os.listdir(root / "layers")
    return root / "layers" / layer


def refused_or_safe(proc, root):
    """Either outcome is fine for the host; a refusal must be clean."""
    if proc.returncode != 0:
        assert_one_line_error(proc, 125)
        assert os.listdir(root / "layers") == []
        assert os.listdir(root / "images") == [] or os.listdir(root / "images") == ["repositories.json"]
    assert os.listdir(root / "tmp") == []
    return proc.returncode == 0


def host_state(path):
    st = os.lstat(path)
    return {"mode": stat.S_IMODE(st.st_mode), "mtime": st.st_mtime_ns, "uid": st.st_uid,
            "gid": st.st_gid, "nlink": st.st_nlink, "xattrs": sorted(os.listxattr(path)),
            "entries": sorted(os.listdir(path)) if os.path.isdir(path) else None}


@pytest.fixture
def host(tmp_path):
    """A host file and a host directory (with a file and a subdirectory),
    mode 0644/0755, owned by root, mtime MTIME: what an attack would change."""
    d = tmp_path / "host"
    (d / "sub").mkdir(parents=True)
    (d / "victim").write_text("host data\n")
    f = tmp_path / "host-file"
    f.write_text("host file\n")
    os.chmod(f, 0o644)
    for p in (d / "sub", d / "victim", d, f):
        os.utime(p, (MTIME, MTIME))

    class Host:
        file, dir = f, d
        paths = (f, d, d / "sub", d / "victim")

        def snapshot(self):
            return {str(p): host_state(p) for p in self.paths}
    return Host()


HOW = ["import", "load"]


# -- item 1 of #17: metadata through a replaced entry -----------------------------

@pytest.mark.parametrize("how", HOW)
def test_directory_replaced_by_symlink_leaves_the_host_file_alone(root, tmp_path, host, how):
    """The reported attack: a directory `x` (mode 4777), then a symlink `x`
    to a host file.  The directory's mode and mtime were applied at the end
    through the path `x`, which by then led to the host file."""
    before = host.snapshot()
    layer = layer_tar([entry("x", "dir", 0o4777, uid=EVIL_UID, gid=EVIL_UID),
                       entry("x", "symlink", 0o777, link=str(host.file))])
    proc = install(root, tmp_path, layer, how)
    assert host.snapshot() == before
    if refused_or_safe(proc, root):
        x = the_layer(root) / "x"
        assert os.readlink(x) == str(host.file)  # the later entry wins, as in tar


@pytest.mark.parametrize("how", HOW)
def test_symlink_in_a_parent_component(root, tmp_path, host, how):
    """`a/sub` is a directory of the layer until `a` becomes a symlink to a
    host directory that also has a `sub`."""
    before = host.snapshot()
    layer = layer_tar([entry("a", "dir", 0o755),
                       entry("a/sub", "dir", 0o4777, uid=EVIL_UID, gid=EVIL_UID),
                       entry("a", "symlink", 0o777, link=str(host.dir))])
    proc = install(root, tmp_path, layer, how)
    assert host.snapshot() == before
    if refused_or_safe(proc, root):
        assert os.readlink(the_layer(root) / "a") == str(host.dir)


@pytest.mark.parametrize("kind", ["file", "dir", "fifo", "symlink"])
def test_entry_below_a_symlink_is_refused(root, tmp_path, host, kind):
    before = host.snapshot()
    layer = layer_tar([entry("a", "symlink", 0o777, link=str(host.dir)),
                       entry("a/sub", kind, 0o4777, data=b"x" if kind == "file" else b"",
                             link="/" if kind == "symlink" else "", uid=EVIL_UID, gid=EVIL_UID)])
    proc = install(root, tmp_path, layer, "import")
    assert_one_line_error(proc, 125, contains="through a symlink")
    assert host.snapshot() == before
    assert os.listdir(root / "layers") == [] and os.listdir(root / "tmp") == []


@pytest.mark.parametrize("how", HOW)
def test_hard_link_then_symlink(root, tmp_path, host, how):
    """`x` a directory, then a hard link to the layer's file `f`, then a
    symlink to the host: neither `f` nor the host file gets x's mode."""
    before = host.snapshot()
    layer = layer_tar([entry("x", "dir", 0o4777),
                       entry("f", data=b"layer file\n", mode=0o644),
                       entry("x", "hardlink", link="f"),
                       entry("x", "symlink", 0o777, link=str(host.file))])
    proc = install(root, tmp_path, layer, how)
    assert host.snapshot() == before
    if refused_or_safe(proc, root):
        f = the_layer(root) / "f"
        assert stat.S_IMODE(os.lstat(f).st_mode) == 0o644
        assert os.lstat(f).st_nlink == 1
        assert os.readlink(the_layer(root) / "x") == str(host.file)


@pytest.mark.parametrize("target", ["s", "s/victim", "f"])
def test_hard_link_to_a_symlink_or_through_one_is_refused(root, tmp_path, host, target):
    """A hard link to the layer's own symlink (to a host file), through a
    symlinked directory, or to a file a symlink replaced, would link the
    host file into the layer."""
    before = host.snapshot()
    layer = layer_tar([entry("f", data=b"layer file\n"),
                       entry("s", "symlink", 0o777, link=str(host.dir if "/" in target else host.file)),
                       entry("f", "symlink", 0o777, link=str(host.file)),
                       entry("h", "hardlink", link=target)])
    proc = install(root, tmp_path, layer, "import")
    assert_one_line_error(proc, 125)
    assert host.snapshot() == before   # nlink 1: no link to the host file
    assert os.listdir(root / "layers") == []


@pytest.mark.parametrize("name", ["d/.wh.victim", "d/.wh..wh..opq", "d/sub/.wh.x"])
def test_whiteout_through_a_symlinked_directory_is_refused(root, tmp_path, host, name):
    before = host.snapshot()
    layer = layer_tar([entry("d", "dir"), entry("d", "symlink", 0o777, link=str(host.dir)),
                       entry(name)])
    proc = install(root, tmp_path, layer, "import")
    assert_one_line_error(proc, 125, contains="through a symlink")
    assert host.snapshot() == before          # victim still there, no 0/0 device, no xattr
    assert (host.dir / "victim").read_text() == "host data\n"
    assert os.listdir(root / "layers") == []


def test_whiteout_of_a_symlink_removes_the_symlink_only(root, tmp_path, host):
    before = host.snapshot()
    layer = layer_tar([entry("d", "symlink", 0o777, link=str(host.dir)), entry(".wh.d")])
    install(root, tmp_path, layer, "import").check_returncode()
    assert host.snapshot() == before
    st = os.lstat(the_layer(root) / "d")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0   # the overlayfs whiteout


@pytest.mark.parametrize("how", HOW)
def test_owner_and_xattrs_of_a_symlink_stay_on_the_symlink(root, tmp_path, host, how):
    """A symlink entry's uid/gid and xattrs apply to the link itself (lchown),
    as do those of a directory a symlink later replaces."""
    before = host.snapshot()
    xattr = {"SCHILY.xattr.trusted.diyc-test": "evil"}
    layer = layer_tar([entry("x", "dir", 0o755, uid=EVIL_UID, gid=EVIL_UID, pax=xattr),
                       entry("x", "symlink", 0o777, link=str(host.file)),
                       entry("s", "symlink", 0o777, link=str(host.file), uid=EVIL_UID, gid=EVIL_UID,
                             pax=xattr)])
    proc = install(root, tmp_path, layer, how)
    assert proc.returncode == 0, proc.stderr
    assert host.snapshot() == before
    s = the_layer(root) / "s"
    assert (os.lstat(s).st_uid, os.lstat(s).st_gid) == (EVIL_UID, EVIL_UID)
    assert os.getxattr(s, "trusted.diyc-test", follow_symlinks=False) == b"evil"


def test_layer_cannot_set_overlayfs_xattrs(root, tmp_path):
    """trusted.overlay.* steers overlayfs (redirects, metacopy): only diyc
    sets it (the opaque marker), never a layer's xattr header."""
    layer = layer_tar([entry("d", "dir", pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                              "SCHILY.xattr.trusted.diyc-test": "kept"}),
                       entry("e", "dir"), entry("e/.wh..wh..opq")])
    install(root, tmp_path, layer, "import").check_returncode()
    d, e = the_layer(root) / "d", the_layer(root) / "e"
    assert "trusted.overlay.redirect" not in os.listxattr(d)
    assert os.getxattr(d, "trusted.diyc-test") == b"kept"
    assert os.getxattr(e, "trusted.overlay.opaque") == b"y"


def test_file_capabilities_survive_unpacking(root, tmp_path):
    """security.capability (ping's cap_net_raw) is dropped by the kernel on
    chown: the xattrs go after the owner."""
    # struct vfs_cap_data, revision 2, effective: permitted = CAP_NET_RAW (13)
    caps = (0x02000001).to_bytes(4, "little") + (1 << 13).to_bytes(4, "little") + bytes(12)
    layer = layer_tar([entry("ping", data=b"#!/bin/sh\n", mode=0o755, uid=0, gid=0,
                             pax={"SCHILY.xattr.security.capability": caps.decode("utf-8", "surrogateescape")})])
    install(root, tmp_path, layer, "import").check_returncode()
    assert os.getxattr(the_layer(root) / "ping", "security.capability") == caps


def test_setuid_bits_and_owner_of_a_file(root, tmp_path):
    layer = layer_tar([entry("su", data=b"x", mode=0o4755, uid=EVIL_UID, gid=EVIL_UID, mtime=MTIME)])
    install(root, tmp_path, layer, "import").check_returncode()
    st = os.lstat(the_layer(root) / "su")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o4755, EVIL_UID, EVIL_UID, MTIME)


# -- item 12 of #17: sparse files -------------------------------------------------

GIB = 1 << 30


def check_big_file(path, size, marks):
    st = os.lstat(path)
    assert st.st_size == size
    assert st.st_blocks * 512 < 4 << 20, f"{st.st_blocks * 512} bytes on disk for a sparse {size}"
    with open(path, "rb") as f:
        for at, data in marks:
            f.seek(at)
            assert f.read(len(data)) == data
        f.seek(GIB // 2)
        assert f.read(1 << 16) == bytes(1 << 16)


def test_a_gigabyte_of_zeros_is_unpacked_sparse(root, tmp_path):
    """A 1 GiB file of zeros (a 1 MB gzip layer) used to take 1 GiB of disk.
    The layer is one tar stream, gzipped as a series of gzip members (as
    `cat a.gz b.gz` makes): the 1 MiB of zeros in the middle is compressed
    once and repeated."""
    mib = 1 << 20
    marks = [(0, b"head"), (12345, b"unaligned"), (GIB - 4, b"tail")]
    info = tarfile.TarInfo("big")
    info.size, info.mode = GIB, 0o644
    first, last = bytearray(mib), bytearray(mib)
    first[0:4], first[12345:12354], last[-4:] = b"head", b"unaligned", b"tail"
    zeros = gzip.compress(bytes(mib), 9, mtime=0)
    path = tmp_path / "zeros.tar.gz"
    with open(path, "wb") as f:
        f.write(gzip.compress(info.tobuf(tarfile.PAX_FORMAT) + first, 9, mtime=0))
        for _ in range(GIB // mib - 2):
            f.write(zeros)
        f.write(gzip.compress(bytes(last) + bytes(1024), 9, mtime=0))  # + the end-of-archive blocks
    assert path.stat().st_size < 2 * mib
    Cli(root)("import", path, "sparse:1", check=True)
    check_big_file(the_layer(root) / "big", GIB, marks)


def gnu_sparse_1_0(name, realsize, regions):
    """A tar (bytes) with one GNU sparse 1.0 entry (the format of GNU tar
    --sparse --format=pax), written with tarfile: a PAX header naming the
    real size, then the map and the data regions as the entry's data."""
    sparse_map = f"{len(regions)}\n" + "".join(f"{off}\n{len(d)}\n" for off, d in regions)
    data = sparse_map.encode().ljust(-(-len(sparse_map) // 512) * 512, b"\0")
    data += b"".join(d for _, d in regions)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
        info.size, info.mode = len(data), 0o644
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                            "GNU.sparse.name": name, "GNU.sparse.realsize": str(realsize)}
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("how", HOW)
def test_gnu_sparse_map_is_honoured(root, tmp_path, how):
    """A 10 KB layer holding a 1 GiB sparse file: the map's data regions
    are written where they belong, the holes are never materialized."""
    regions = [(4096 * 1000, b"region one" * 100), (GIB // 3, b"\x01" * 5000), (GIB - 3, b"end")]
    layer = gnu_sparse_1_0("big", GIB, regions)
    assert len(layer) < 20 << 10
    install(root, tmp_path, layer, how).check_returncode()
    check_big_file(the_layer(root) / "big", GIB, regions)


@pytest.mark.parametrize("sparse_map", ["0\n", "1\n999\n", "1\n-5\n10\n", "x\n", "1\n0\n"],
                         ids=["empty-map-with-data", "short-map", "negative", "garbage", "past-the-data"])
def test_malformed_sparse_map_is_refused(root, tmp_path, sparse_map):
    data = sparse_map.encode().ljust(512, b"\0") + b"d" * 10
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("GNUSparseFile.0/big")
        info.size = len(data)
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                            "GNU.sparse.name": "big", "GNU.sparse.realsize": "100"}
        tar.addfile(info, io.BytesIO(data))
    proc = install(root, tmp_path, buf.getvalue(), "import")
    if proc.returncode == 0:   # a map tarfile reads as fine: then the content is right
        big = the_layer(root) / "big"
        assert os.lstat(big).st_size == 100
    else:
        assert_one_line_error(proc, 125)
        assert os.listdir(root / "layers") == []
    assert os.listdir(root / "tmp") == []


def test_zero_runs_anywhere_keep_the_content(tmp_path):
    """Holes are cut only where whole file blocks are zero: runs of zeros
    of every length and alignment, at the start, middle and end, come back
    byte for byte."""
    from diyc.images.layers import unpack_layer
    rnd = hashlib.sha256
    data = bytearray()
    for i, zeros in enumerate([0, 1, 4095, 4096, 4097, 8192 + 17, 1 << 20, 3 * 4096 - 1, (1 << 20) + 4096]):
        data += bytes(zeros)
        data += b"".join(rnd(f"{i}-{j}".encode()).digest() for j in range(1 + i * 37))
    data += bytes(2 * 4096 + 5)   # a hole at the end: the size must still be right
    layer = layer_tar([entry("f", data=bytes(data)), entry("zeros", data=bytes(3 << 20))])
    dest = tmp_path / "dest"
    dest.mkdir()
    diff_id, size = unpack_layer(io.BytesIO(layer), str(dest))
    assert diff_id == sha256(layer) and size == len(layer)
    assert (dest / "f").read_bytes() == bytes(data)
    assert (dest / "zeros").read_bytes() == bytes(3 << 20)
    assert os.lstat(dest / "zeros").st_blocks == 0


# -- the image's /etc/passwd, read on the host by `run --user` ----------------------

@pytest.mark.parametrize("link", ["host-passwd", "/dev/zero", "fifo"])
def test_run_user_never_reads_host_files_through_the_image(root, tmp_path, link):
    """`--user NAME` looks NAME up in the image's /etc/passwd, read on the
    host: a symlink there to a host file (or /dev/zero, or a fifo) must
    resolve inside the image, never on the host."""
    from conftest import BUSYBOX
    host_passwd = tmp_path / "host-passwd"
    host_passwd.write_text(f"evil:x:{EVIL_UID}:{EVIL_UID}::/:/bin/sh\n")
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    entries = [entry("bin", "dir", 0o755), entry("bin/busybox", data=busybox, mode=0o755),
               entry("bin/sh", "symlink", link="busybox"), entry("bin/id", "symlink", link="busybox"),
               entry("etc", "dir", 0o755)]
    if link == "fifo":
        entries.append(entry("etc/passwd", "fifo"))
    else:
        entries.append(entry("etc/passwd", "symlink",
                             link=str(host_passwd) if link == "host-passwd" else link))
    cli = Cli(root)
    p = tmp_path / "img.tar"
    p.write_bytes(layer_tar(entries))
    cli("import", p, "passwd/img:1", check=True)
    proc = cli("run", "--network", "none", "--rm", "--user", "evil", "passwd/img:1", "id", "-u", timeout=30)
    line = assert_one_line_error(proc, 125)
    assert "evil" in line or "passwd" in line, line
    assert str(EVIL_UID) not in proc.stdout


# -- the unpacked layer, as the host's other users see it ---------------------------

@pytest.fixture
def open_root():
    """A diyc root every user of the host can walk to (pytest's tmp dirs
    are root's alone), as /var/lib/diyc is."""
    import shutil
    import tempfile
    top = tempfile.mkdtemp(prefix="diyc-test-open-", dir="/tmp")
    os.chmod(top, 0o755)
    yield Path(top) / "root"
    shutil.rmtree(top)


def as_nobody(command):
    import subprocess
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "/bin/sh", "-c", command], capture_output=True, text=True)


def test_host_users_cannot_reach_a_layers_setuid_programs(open_root, tmp_path):
    """A setuid-root program of an image ran as root for any user of the
    host, straight from layers/<id>/ of a diyc root searchable by all (as
    roots were, for --userns).  Whatever guards the way there, the layer's
    own root directory is root's and 0700, whatever the tar's "./" entry
    says; containers (as any user) are unaffected."""
    from conftest import BUSYBOX
    root = open_root
    with open("/usr/bin/id", "rb") as f:
        id_binary = f.read()
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    layer = layer_tar([entry(".", "dir", 0o755, uid=1000, gid=1000),
                       entry("suid-id", data=id_binary, mode=0o4755),
                       entry("hello", data=b"hello from the layer\n", mode=0o644),
                       entry("bin", "dir", 0o755), entry("bin/busybox", data=busybox, mode=0o755),
                       entry("bin/cat", "symlink", link="busybox")])
    cli = Cli(root)
    p = tmp_path / "suid.tar"
    p.write_bytes(layer)
    cli("import", p, "suid/img:1", check=True)
    st = os.lstat(the_layer(root))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, 0, 0)
    suid = the_layer(root) / "suid-id"
    assert os.lstat(suid).st_mode & stat.S_ISUID  # kept, for the containers
    os.chmod(root, 0o711)             # the way there open, as a root made
    os.chmod(root / "layers", 0o755)  # by an older diyc had it ...
    reach = as_nobody(f"ls {root}/layers")
    assert reach.returncode == 0 and the_layer(root).name in reach.stdout, reach.stderr
    out = as_nobody(f"exec {suid} -u")     # ... the layer is not
    assert out.returncode != 0 and "Permission denied" in out.stderr, (out.stdout, out.stderr)
    run = cli("run", "--network", "none", "--rm", "--user", "65534", "suid/img:1", "cat", "/hello", timeout=30)
    assert (run.returncode, run.stdout) == (0, "hello from the layer\n"), run.stderr
    cli("rmi", "suid/img:1", check=True)


def test_devices_fifos_and_symlinks_keep_their_metadata(tmp_path):
    """Set by name in the parent's fd, without following (no fd of their own)."""
    from diyc.images.layers import unpack_layer
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, type_, mode, uid in (("null", tarfile.CHRTYPE, 0o620, 5), ("loop", tarfile.BLKTYPE, 0o600, 6),
                                       ("fifo", tarfile.FIFOTYPE, 0o640, 7), ("link", tarfile.SYMTYPE, 0o777, 8)):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = type_, mode, uid, uid + 100, MTIME
            info.devmajor, info.devminor = (1, 3) if name == "null" else (7, 0)
            info.linkname = "null" if name == "link" else ""
            tar.addfile(info)
    dest = tmp_path / "layer"
    dest.mkdir()
    unpack_layer(io.BytesIO(buf.getvalue()), str(dest))
    for name, kind, mode, uid in (("null", stat.S_IFCHR, 0o620, 5), ("loop", stat.S_IFBLK, 0o600, 6),
                                  ("fifo", stat.S_IFIFO, 0o640, 7), ("link", stat.S_IFLNK, 0o777, 8)):
        st = os.lstat(dest / name)
        assert (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == \
            (kind, mode, uid, uid + 100, MTIME), name
    assert os.lstat(dest / "null").st_rdev == os.makedev(1, 3)
    assert (stat.S_IMODE(os.lstat(dest).st_mode), os.lstat(dest).st_uid) == (0o700, 0)
