"""`diyc cp`, as a docker user runs it: both directions, running and
stopped containers, docker's rules for where a copy lands, -a, -L and tar
streams (-), and a container whose symlinks point at the host's /etc or
climb out with ../.. (the container's files are its owner's, never the
host's to follow)."""

import io
import json
import os
import subprocess
import tarfile
import uuid

import pytest

from conftest import assert_one_line_error, wait_blocked_on_flock, wait_for

# busybox's image: /etc/passwd is this file, never the host's
CONTAINER_PASSWD_HEAD = "root:x:0:0:root:/root:/bin/sh"


def cli_bytes(run_cli, *args, input=None):
    return subprocess.run(run_cli.command + [str(a) for a in args], input=input, capture_output=True,
                          env=run_cli.env(), timeout=60)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def stopped(run_cli):
    """A stopped container: /data/f ("hello"), /data/sub/g, a symlink
    /data/link -> f, /data/owned (1234:5678)."""
    name = unique("cp-stopped")
    run_cli("run", "--name", name, "--network", "none", "busybox", "sh", "-c",
            "mkdir -p /data/sub && echo hello > /data/f && echo g > /data/sub/g && ln -s f /data/link"
            " && echo o > /data/owned && chown 1234:5678 /data/owned", check=True)
    yield name
    run_cli("rm", "-f", name, check=True)


@pytest.fixture
def running(run_cli):
    """A running container with the same files as `stopped`."""
    name = unique("cp-running")
    run_cli("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c",
            "mkdir -p /data/sub && echo hello > /data/f && echo g > /data/sub/g && ln -s f /data/link"
            " && echo o > /data/owned && chown 1234:5678 /data/owned && touch /ready && sleep 600",
            check=True)
    for _ in range(200):
        if run_cli("exec", name, "test", "-e", "/ready").returncode == 0:
            break
    yield name
    run_cli("rm", "-f", name, check=True)


@pytest.fixture(params=["running", "stopped"])
def container(request):
    return request.getfixturevalue(request.param)


def read_back(run_cli, name, path, tmp_path):
    """A container file's content, copied out again."""
    out = tmp_path / unique("back")
    run_cli("cp", f"{name}:{path}", out, check=True)
    return out.read_text()


def test_file_out_and_in(run_cli, container, tmp_path):
    run_cli("cp", f"{container}:/data/f", tmp_path / "f", check=True)
    assert (tmp_path / "f").read_text() == "hello\n"
    # into an existing directory: by its own name
    run_cli("cp", f"{container}:/data/f", tmp_path, check=True)
    (tmp_path / "new").write_text("from the host\n")
    run_cli("cp", tmp_path / "new", f"{container}:/data/", check=True)
    assert read_back(run_cli, container, "/data/new", tmp_path) == "from the host\n"
    # a file over a file; a new name
    run_cli("cp", tmp_path / "new", f"{container}:/data/f", check=True)
    run_cli("cp", tmp_path / "new", f"{container}:/data/renamed", check=True)
    assert read_back(run_cli, container, "/data/f", tmp_path) == "from the host\n"
    assert read_back(run_cli, container, "/data/renamed", tmp_path) == "from the host\n"


def test_changes_are_the_containers(run_cli, running, tmp_path):
    (tmp_path / "new").write_text("seen inside\n")
    run_cli("cp", tmp_path / "new", f"{running}:/tmp/new", check=True)
    assert run_cli("exec", running, "cat", "/tmp/new", check=True).stdout == "seen inside\n"
    assert run_cli("exec", running, "stat", "-c", "%u:%g", "/tmp/new", check=True).stdout == "0:0\n"


def test_into_stopped_container_then_started(run_cli, stopped, tmp_path):
    (tmp_path / "new").write_text("there at start\n")
    run_cli("cp", tmp_path / "new", f"{stopped}:/new", check=True)
    run_cli("start", stopped, check=True)
    run_cli("wait", stopped, check=True)
    diff = run_cli("diff", stopped, check=True).stdout.splitlines()
    assert "A /new" in diff


def test_directory_rules(run_cli, container, tmp_path):
    # a directory into an existing one: dest/NAME
    run_cli("cp", f"{container}:/data", tmp_path, check=True)
    assert (tmp_path / "data" / "sub" / "g").read_text() == "g\n"
    # to a new name: the directory itself under that name
    run_cli("cp", f"{container}:/data", tmp_path / "renamed", check=True)
    assert (tmp_path / "renamed" / "f").read_text() == "hello\n"
    # SRC/. : its entries, into an existing directory
    (tmp_path / "merged").mkdir()
    run_cli("cp", f"{container}:/data/.", tmp_path / "merged", check=True)
    assert sorted(os.listdir(tmp_path / "merged")) == ["f", "link", "owned", "sub"]
    # refused, as docker does
    (tmp_path / "f-file").write_text("x")
    assert_one_line_error(run_cli("cp", f"{container}:/data", tmp_path / "f-file"),
                          contains="cannot copy a directory to a file")
    assert_one_line_error(run_cli("cp", f"{container}:/data/f", f"{tmp_path}/missing/"),
                          contains="does not exist")
    assert_one_line_error(run_cli("cp", f"{container}:/nothing", tmp_path),
                          contains="Could not find the file /nothing")
    # and into the container
    (tmp_path / "tree" / "a").mkdir(parents=True)
    (tmp_path / "tree" / "a" / "b").write_text("b\n")
    run_cli("cp", tmp_path / "tree", f"{container}:/data/", check=True)
    run_cli("cp", tmp_path / "tree", f"{container}:/data/tree2", check=True)
    run_cli("cp", f"{tmp_path / 'tree'}/.", f"{container}:/data/sub", check=True)
    for path in ("/data/tree/a/b", "/data/tree2/a/b", "/data/sub/a/b"):
        assert read_back(run_cli, container, path, tmp_path) == "b\n"
    assert_one_line_error(run_cli("cp", tmp_path / "tree", f"{container}:/data/f"),
                          contains="cannot copy a directory to a file")


def test_bad_arguments(run_cli, stopped, tmp_path):
    assert_one_line_error(run_cli("cp", tmp_path, tmp_path), contains="at least one container")
    assert_one_line_error(run_cli("cp", f"{stopped}:/data", f"{stopped}:/x"), contains="between containers")
    assert_one_line_error(run_cli("cp", f"{stopped}:/data"), contains="requires 2 arguments")
    assert_one_line_error(run_cli("cp", tmp_path, "no-such-container-x:/tmp"), code=1,
                          contains="no such container")


def test_archive_keeps_owners(run_cli, container, tmp_path):
    run_cli("cp", f"{container}:/data/owned", tmp_path / "plain", check=True)
    run_cli("cp", "-a", f"{container}:/data/owned", tmp_path / "kept", check=True)
    plain = os.stat(tmp_path / "plain")
    assert (plain.st_uid, plain.st_gid) == (os.getuid(), os.getgid())
    assert (os.stat(tmp_path / "kept").st_uid, os.stat(tmp_path / "kept").st_gid) == (1234, 5678)
    os.chown(tmp_path / "kept", 4321, 8765)
    run_cli("cp", tmp_path / "kept", f"{container}:/data/in-plain", check=True)
    run_cli("cp", "-a", tmp_path / "kept", f"{container}:/data/in-kept", check=True)
    stream = cli_bytes(run_cli, "cp", f"{container}:/data", "-").stdout
    owners = {m.name: (m.uid, m.gid) for m in tarfile.open(fileobj=io.BytesIO(stream))}
    assert owners["data/in-plain"] == (0, 0)
    assert owners["data/in-kept"] == (4321, 8765)
    assert owners["data/owned"] == (1234, 5678)


def test_follow_link(run_cli, container, tmp_path):
    run_cli("cp", f"{container}:/data/link", tmp_path / "asis", check=True)
    assert os.readlink(tmp_path / "asis") == "f"
    run_cli("cp", "-L", f"{container}:/data/link", tmp_path / "followed", check=True)
    assert (tmp_path / "followed").read_text() == "hello\n"
    # -L is for SRC's last component only: a link inside a directory stays one
    run_cli("cp", "-L", f"{container}:/data", tmp_path / "dir", check=True)
    assert os.readlink(tmp_path / "dir" / "link") == "f"
    # host side: the same rule
    os.symlink("/etc/hostname", tmp_path / "hostlink")
    run_cli("cp", tmp_path / "hostlink", f"{container}:/data/hl", check=True)
    run_cli("cp", "-L", tmp_path / "hostlink", f"{container}:/data/hl-followed", check=True)
    names = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(
        cli_bytes(run_cli, "cp", f"{container}:/data", "-").stdout))}
    assert names["data/hl"].issym() and names["data/hl"].linkname == "/etc/hostname"
    assert names["data/hl-followed"].isreg()


def test_tar_streams(run_cli, cli_path, container, tmp_path):
    out = cli_bytes(run_cli, "cp", f"{container}:/data", "-")
    assert out.returncode == 0, out.stderr
    tar = tarfile.open(fileobj=io.BytesIO(out.stdout))
    assert {"data", "data/f", "data/sub/g", "data/link"} <= set(tar.getnames())
    assert tar.extractfile("data/f").read() == b"hello\n"
    entries = tarfile.open(fileobj=io.BytesIO(cli_bytes(run_cli, "cp", f"{container}:/data/.", "-").stdout))
    assert "f" in entries.getnames() and "data/f" not in entries.getnames()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("streamed/x")
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))
    r = cli_bytes(run_cli, "cp", "-", f"{container}:/data", input=buf.getvalue())
    assert r.returncode == 0, r.stderr
    assert read_back(run_cli, container, "/data/streamed/x", tmp_path) == "abc"
    assert_one_line_error(run_cli("cp", "-", f"{container}:/data/f", input=""),
                          contains="Not a directory")


# -- hostile containers ----------------------------------------------------------

PLANT = ("ln -s /etc /abs-etc && ln -s ../../../../../../../.. /climb && mkdir -p /d"
         " && ln -s /etc/passwd /d/pw && ln -s ../../../../etc /d/rel-etc && ln -s /proc/1/root /hostroot")


@pytest.fixture(params=["running", "stopped"])
def hostile(request, run_cli):
    name = unique("cp-hostile")
    if request.param == "running":
        run_cli("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c",
                PLANT + " && touch /ready && sleep 600", check=True)
        for _ in range(200):
            if run_cli("exec", name, "test", "-e", "/ready").returncode == 0:
                break
    else:
        run_cli("run", "--name", name, "--network", "none", "busybox", "sh", "-c", PLANT, check=True)
    yield name
    run_cli("rm", "-f", name, check=True)


def test_symlinks_out_resolve_in_the_container(run_cli, hostile, tmp_path):
    for src in ("/abs-etc/passwd", "/climb/etc/passwd", "/d/rel-etc/passwd", "/climb/../../etc/passwd"):
        run_cli("cp", f"{hostile}:{src}", tmp_path / "p", check=True)
        assert (tmp_path / "p").read_text().startswith(CONTAINER_PASSWD_HEAD), src
        (tmp_path / "p").unlink()
    run_cli("cp", "-L", f"{hostile}:/d/pw", tmp_path / "p", check=True)
    assert (tmp_path / "p").read_text().startswith(CONTAINER_PASSWD_HEAD)
    # a symlink copied out is a symlink, never the host file it names
    run_cli("cp", f"{hostile}:/d", tmp_path, check=True)
    assert os.readlink(tmp_path / "d" / "pw") == "/etc/passwd"
    # /proc/1/root is a magic link to whichever root: refused
    assert_one_line_error(run_cli("cp", f"{hostile}:/hostroot/etc/passwd", tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_symlinks_in_resolve_in_the_container(run_cli, hostile, tmp_path):
    marker = unique("diyc-cp-escape")
    (tmp_path / marker).write_text("must stay inside\n")
    targets = [f"{hostile}:/abs-etc/",                  # a symlink, last component
               f"{hostile}:/climb/tmp/{marker}",       # ../.. in a parent component
               f"{hostile}:/d/rel-etc/{marker}",       # relative ../ climbing
               f"{hostile}:/abs-etc/../../../tmp/"]
    for dest in targets:
        run_cli("cp", tmp_path / marker, dest, check=True)
    assert not os.path.exists(f"/etc/{marker}")
    assert not os.path.exists(f"/tmp/{marker}")
    for path in (f"/etc/{marker}", f"/tmp/{marker}"):
        assert read_back(run_cli, hostile, path, tmp_path) == "must stay inside\n"
    # a symlink as DEST's last component: followed inside the container
    host_target = f"/tmp/{unique('diyc-cp-target')}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        link = tarfile.TarInfo("to-host")
        link.type, link.linkname = tarfile.SYMTYPE, host_target
        t.addfile(link)
    cli_bytes(run_cli, "cp", "-", f"{hostile}:/d", input=buf.getvalue())
    run_cli("cp", tmp_path / marker, f"{hostile}:/d/to-host", check=True)
    assert not os.path.exists(host_target)
    assert read_back(run_cli, hostile, host_target, tmp_path) == "must stay inside\n"
    assert_one_line_error(run_cli("cp", tmp_path / marker, f"{hostile}:/hostroot/tmp/"))


def test_hostile_archive_in(run_cli, hostile, tmp_path):
    """A tar on stdin that plants a symlink and writes through it, or climbs
    with ..: refused, nothing written outside."""
    marker = unique("diyc-tar-escape")
    for entries in ([("l", tarfile.SYMTYPE, "/tmp"), (f"l/{marker}", tarfile.REGTYPE, "")],
                    [(f"../../../../tmp/{marker}", tarfile.REGTYPE, "")],
                    [(f"/tmp/{marker}", tarfile.REGTYPE, "")],
                    [("h", tarfile.LNKTYPE, "../../../etc/passwd")]):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name, kind, link in entries:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, link
                t.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
        r = cli_bytes(run_cli, "cp", "-", f"{hostile}:/d", input=buf.getvalue())
        assert r.returncode == 125, (entries, r.stderr)
        assert r.stderr.decode().startswith("diyc: ") and len(r.stderr.splitlines()) == 1
        assert not os.path.exists(f"/tmp/{marker}")


def test_dir_swapped_for_a_symlink(run_cli, tmp_path):
    """The container swaps /race between a directory and a symlink to the
    host's /tmp while files are copied into /race/: each copy lands in the
    container (or fails), never in the host's /tmp."""
    name = unique("cp-race")
    marker = unique("diyc-race")
    run_cli("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c",
            "while :; do rm -rf /race; mkdir /race; rm -rf /race; ln -s /tmp /race; done", check=True)
    try:
        (tmp_path / marker).write_text("x")
        for _ in range(40):
            run_cli("cp", tmp_path / marker, f"{name}:/race/")
            assert not os.path.exists(f"/tmp/{marker}")
    finally:
        run_cli("rm", "-f", name, check=True)


def test_file_swapped_for_a_symlink_while_copied_out(run_cli, tmp_path):
    """The container swaps /race/f between a file and a symlink to a host
    file while /race is copied out: each copy has the container's file, a
    symlink, or fails; never the host file's content."""
    name = unique("cp-race-out")
    secret = tmp_path / "host-secret"
    secret.write_text("HOST SECRET\n")
    run_cli("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c",
            f"mkdir /race; while :; do echo inside > /race/f.new; mv /race/f.new /race/f;"
            f" ln -s {secret} /race/f.l; mv /race/f.l /race/f; done", check=True)
    try:
        for i in range(40):
            out = tmp_path / f"out{i}"
            run_cli("cp", f"{name}:/race", out)
            run_cli("cp", "-L", f"{name}:/race/f", tmp_path / f"f{i}")
            for copied in (out / "f", tmp_path / f"f{i}"):
                if copied.exists() and not copied.is_symlink():
                    assert copied.read_text() == "inside\n"
    finally:
        run_cli("rm", "-f", name, check=True)


def test_kernel_file_systems_are_not_copied(run_cli, tmp_path):
    """What a running container has mounted is copied when it is its files
    (a volume, a --tmpfs), not when it is the kernel's (/proc, /sys, /dev)
    nor what it mounted itself (a proc at /myproc: /myproc/kcore would be
    read for ever)."""
    name = unique("cp-mounts")
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "in-volume").write_text("v")
    run_cli("run", "-d", "--name", name, "--network", "none", "--privileged",
            "-v", f"{tmp_path / 'vol'}:/vol",
            "--tmpfs", "/scratch", "busybox", "sh", "-c",
            "echo t > /scratch/in-tmpfs && mkdir /myproc && mount -t proc proc /myproc && touch /ready"
            " && sleep 600", check=True)
    try:
        for _ in range(200):
            if run_cli("exec", name, "test", "-e", "/ready").returncode == 0:
                break
        for path in ("/proc/cpuinfo", "/myproc/1/environ", "/sys/kernel", "/dev/null"):
            assert_one_line_error(run_cli("cp", f"{name}:{path}", tmp_path / "x"),
                                  contains="not part of the container's file system")
        names = tarfile.open(fileobj=io.BytesIO(cli_bytes(run_cli, "cp", f"{name}:/", "-").stdout)).getnames()
        expected = {"proc", "myproc", "sys", "dev", "bin/busybox", "vol/in-volume", "scratch/in-tmpfs"}
        assert expected <= set(names)
        assert not [n for n in names if n.startswith(("proc/", "sys/", "myproc/", "dev/"))]
        run_cli("cp", tmp_path / "vol" / "in-volume", f"{name}:/vol/from-cp", check=True)
        assert (tmp_path / "vol" / "from-cp").read_text() == "v"
    finally:
        run_cli("rm", "-f", name, check=True)


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_user_namespace_container(run_cli, state, tmp_path):
    """--userns auto: files land owned by the container's root (or, with
    -a, by the same ids as the container sees them), and come out with
    the container's ids."""
    name = unique("cp-userns")
    run_cli("run", "-d", "--name", name, "--userns", "auto", "--network", "none", "busybox", "sh", "-c",
            "echo a > /a && chown 7:8 /a && touch /ready && sleep 600", check=True)
    try:
        for _ in range(200):
            if run_cli("exec", name, "test", "-e", "/ready").returncode == 0:
                break
        if state == "stopped":
            run_cli("stop", "-t", "1", name, check=True)
        (tmp_path / "plain").write_text("p")
        (tmp_path / "kept").write_text("k")
        os.chown(tmp_path / "kept", 5, 6)
        run_cli("cp", tmp_path / "plain", f"{name}:/plain", check=True)
        run_cli("cp", "-a", tmp_path / "kept", f"{name}:/kept", check=True)
        os.chown(tmp_path / "kept", 70000, 0)
        assert_one_line_error(run_cli("cp", "-a", tmp_path / "kept", f"{name}:/outside"),
                              contains="outside the container's user namespace")
        owners = {m.name: (m.uid, m.gid) for m in tarfile.open(fileobj=io.BytesIO(
            cli_bytes(run_cli, "cp", f"{name}:/", "-").stdout))}
        assert owners["plain"] == (0, 0) and owners["kept"] == (5, 6) and owners["a"] == (7, 8)
        assert owners["bin/busybox"] == (0, 0) and "outside" not in owners
        if state == "stopped":
            run_cli("start", name, check=True)
        seen = run_cli("exec", name, "stat", "-c", "%u:%g %n", "/plain", "/kept", "/a", check=True).stdout
        assert seen.splitlines() == ["0:0 /plain", "5:6 /kept", "7:8 /a"]
    finally:
        run_cli("rm", "-f", name, check=True)


def _tree(path):
    """{relative path: kind} of a host tree."""
    out = {}
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(top, name)
            kind = "l" if os.path.islink(full) else "d" if os.path.isdir(full) else "f"
            out[os.path.relpath(full, path)] = kind
    return out


def test_rules_match_podman(run_cli, stopped, tmp_path):
    """The same copies, out of and into a stopped container with the same
    files, with diyc and with podman: the same trees, the same refusals.
    Where podman parts from docker, docker is the reference and the case is
    not compared: podman's `FILE/.` copies the file (docker refuses it),
    and podman copies a symlink SRC's target without -L (docker, and
    test_follow_link, copy the link)."""
    from podman_util import private_podman
    image = tmp_path / "image.tar"
    run_cli("export", "-o", image, stopped, check=True)
    out_cases = [("/data", "EX"), ("/data", "EX/new"), ("/data/.", "EX"), ("/data/.", "EX/new"),
                 ("/data/f", "EX"), ("/data/f", "EX/g"), ("/data/f", "EX/missing/"), ("/data", "EX/file"),
                 ("/nothing", "EX"), ("/data/sub/../f", "EX/h")]
    in_cases = [("HOST", "/data/"), ("HOST", "/data/newname"), ("HOST/.", "/data/sub"), ("HOST/x", "/data/"),
                ("HOST/x", "/data/nodir/"), ("HOST", "/data/f")]
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "x").write_text("x")
    (tmp_path / "host" / "d").mkdir()

    def copy_out(cp, ctr):
        seen = []
        for src, dest in out_cases:
            ex = tmp_path / unique("ex")
            ex.mkdir()
            (ex / "file").write_text("x")
            r = cp(f"{ctr}:{src}", dest.replace("EX", str(ex)))
            seen.append((src, dest, r.returncode == 0, _tree(ex)))
        return seen

    def copy_in(cp, ctr):
        seen = []
        for src, dest in in_cases:
            r = cp(src.replace("HOST", str(tmp_path / "host")), f"{ctr}:{dest}")
            seen.append((src, dest, r.returncode == 0))
        return seen

    with private_podman("/usr/bin/runc") as podman:
        assert podman("import", image, "localhost/diyc-export").returncode == 0
        r = podman("run", "--name", "pc", "--network", "none", "localhost/diyc-export", "true")
        assert r.returncode == 0, r.stderr
        podman_out = copy_out(lambda *a: podman("cp", *a), "pc")
        podman_in = copy_in(lambda *a: podman("cp", *a), "pc")
        assert podman("cp", "pc:/data", tmp_path / "podman-data").returncode == 0
    diyc_out = copy_out(lambda *a: run_cli("cp", *a), stopped)
    diyc_in = copy_in(lambda *a: run_cli("cp", *a), stopped)
    run_cli("cp", f"{stopped}:/data", tmp_path / "diyc-data", check=True)
    assert diyc_out == podman_out
    assert diyc_in == podman_in
    assert _tree(tmp_path / "diyc-data") == _tree(tmp_path / "podman-data")


def test_volumes_of_a_stopped_container(run_cli, tmp_path):
    """A stopped container's volumes are where docker's cp finds them: a
    copy into /vol lands in the volume, a :ro bind refuses writes; no mount
    is left behind (the overlay and its binds are mounted nowhere)."""
    name = unique("cp-stopped-vol")
    volume = unique("cpvol")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "kept").write_text("k")
    run_cli("run", "--name", name, "--network", "none", "-v", f"{volume}:/vol",
            "-v", f"{tmp_path / 'ro'}:/ro:ro",
            "busybox", "sh", "-c", "echo inside > /vol/x", check=True)
    try:
        run_cli("cp", f"{name}:/vol/x", tmp_path / "x", check=True)
        assert (tmp_path / "x").read_text() == "inside\n"
        run_cli("cp", tmp_path / "x", f"{name}:/vol/y", check=True)
        (info,) = json.loads(run_cli("volume", "inspect", volume, check=True).stdout)
        assert sorted(os.listdir(info["Mountpoint"])) == ["x", "y"]
        assert_one_line_error(run_cli("cp", tmp_path / "x", f"{name}:/ro/"), contains="Read-only file system")
        assert os.listdir(tmp_path / "ro") == ["kept"]
        with open("/proc/self/mountinfo") as f:
            assert str(tmp_path) not in f.read()
    finally:
        run_cli("rm", "-f", name, check=True)
        run_cli("volume", "rm", volume, check=True)


def test_setuid_files_capabilities_and_devices_never_reach_the_host(run_cli, diyc_root, tmp_path):
    """What a container made must not become a privilege on the host: its
    setuid shell is copied out without the setuid bits, its file
    capabilities (security.capability) are not set, its device node is
    refused - with -a too, which keeps only the owners."""
    name = unique("cp-setid")
    cap = bytes.fromhex("01000002" "80000000" "00000000" "00000000" "00000000")  # v2: cap_setuid+ep
    run_cli("run", "--name", name, "--network", "none", "busybox", "sh", "-c",
            "mkdir /s /dv && cp /bin/busybox /s/sh && chmod 6755 /s/sh && cp /bin/busybox /s/capped "
            "&& mknod /dv/disk b 8 0", check=True)
    try:
        # file capabilities set from the host side, as a container with CAP_SETFCAP would
        cid = run_cli("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
        upper = diyc_root / "containers" / cid / "upper"  # the stopped container's writes
        os.setxattr(f"{upper}/s/capped", "security.capability", cap, follow_symlinks=False)
        assert os.getxattr(f"{upper}/s/capped", "security.capability") == cap
        for flags, dest in (([], "plain"), (["-a"], "kept")):
            run_cli("cp", *flags, f"{name}:/s", tmp_path / dest, check=True)
            assert os.stat(tmp_path / dest / "sh").st_mode & 0o7777 == 0o755
            assert "security.capability" not in os.listxattr(tmp_path / dest / "capped")
            proc = run_cli("cp", *flags, f"{name}:/dv", tmp_path / f"dv{dest}")
            assert_one_line_error(proc, contains="device node")
            assert not (tmp_path / f"dv{dest}").exists()  # no half copy under a new name
    finally:
        run_cli("rm", "-f", name, check=True)


def test_stopped_user_namespace_container_can_write_where_cp_wrote(run_cli, tmp_path):
    """A copy into a stopped --userns container copies the image's
    directory it writes into (/etc) up owned by the container's root, as
    the container's own writes do: started, its root still writes there."""
    name = unique("cp-userns-up")
    run_cli("create", "--name", name, "--userns", "auto", "--network", "none", "busybox", "sh", "-c",
            "touch /etc/mine && stat -c %u:%g /etc", check=True)
    try:
        (tmp_path / "f").write_text("f")
        run_cli("cp", tmp_path / "f", f"{name}:/etc/f", check=True)
        started = run_cli("start", "-a", name)
        assert (started.returncode, started.stdout) == (0, "0:0\n"), started
    finally:
        run_cli("rm", "-f", name, check=True)


def test_start_waits_for_a_copy_into_the_stopped_container(run_cli, diyc_root):
    """cp into a stopped container writes through an overlay of its own
    upper dir, under the container's lock: a start meanwhile (which would
    mount that upper dir a second time) waits for it.  The copy is kept
    going by a tar on its stdin that the test finishes only later."""
    name = unique("cp-start")
    cid = run_cli("create", "--name", name, "--network", "none", "busybox", "sleep", "600",
                  check=True).stdout.strip()
    data = b"x" * 100000
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        entry = tarfile.TarInfo("copied")
        entry.size = len(data)
        t.addfile(entry, io.BytesIO(data))
    tar = tar.getvalue()
    cp = run_cli.popen("cp", "-", f"{name}:/tmp", stdin=subprocess.PIPE, text=False)
    start = None
    try:
        cp.stdin.write(tar[:50000])
        cp.stdin.flush()
        wait_for(lambda: _holds_flock(cp.pid, f"{diyc_root}/locks/{cid}.lock"),
                 what="cp to hold the container's lock")
        start = run_cli.popen("start", name)
        wait_blocked_on_flock(start, "the start to wait for the copy")
        assert json.loads(run_cli("inspect", name, check=True).stdout)[0]["State"]["Status"] == "created"
        cp.stdin.write(tar[50000:])
        cp.stdin.close()
        assert cp.wait(timeout=60) == 0, cp.stderr.read()
        assert start.wait(timeout=60) == 0, start.communicate()
        assert run_cli("exec", name, "wc", "-c", "/tmp/copied", check=True).stdout.split()[0] == "100000"
    finally:
        for proc in (cp, start):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        run_cli("rm", "-f", name, check=True)


def _holds_flock(pid, path):
    """Whether process `pid` holds a flock() on `path` (granted, in /proc/locks)."""
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:
        return False
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if fields[1] != "->" and fields[4] == str(pid) and fields[5].endswith(f":{inode}"):
                return True
    return False
