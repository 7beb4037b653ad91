"""`diyc diff`, `diyc export`, `diyc commit`, `diyc system df` and `diyc
volume inspect`, as a docker user runs them, on real containers; and the
same through the library (docker-py's container.diff/export/commit,
get_archive/put_archive)."""

import io
import json
import os
import subprocess
import tarfile
import time
import uuid

import pytest

from conftest import assert_one_line_error, flock_held, wait_blocked_on_flock

CHANGES = ("mkdir /new && echo content > /new/f && rm /bin/ls && echo extra >> /etc/passwd"
           " && rm -rf /usr && mkdir /usr && touch /usr/only && ln -s /etc /evil")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def cli_bytes(run_cli, *args):
    return subprocess.run(run_cli.command + [str(a) for a in args], capture_output=True,
                          env=run_cli.env(), timeout=60)


@pytest.fixture
def changed(run_cli):
    name = unique("changes")
    run_cli("run", "--name", name, "--network", "none", "busybox", "sh", "-c", CHANGES, check=True)
    yield name
    run_cli("rm", "-f", name, check=True)


def test_diff(run_cli, changed, busybox_layer):
    lines = run_cli("diff", changed, check=True).stdout.splitlines()
    for line in ("A /new", "A /new/f", "C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "A /evil",
                 "C /usr", "A /usr/only"):
        assert line in lines, (line, lines)
    # an opaque directory (rm -rf, then mkdir) deletes what the image had there
    image_usr = sorted(os.listdir(busybox_layer / "usr"))
    assert image_usr and all(f"D /usr/{name}" in lines for name in image_usr)
    assert lines == sorted(lines, key=lambda line: line[2:])
    # the runtime's mount points are not the command's changes
    assert not [line for line in lines if line[2:].startswith(("/proc", "/sys", "/dev"))]


def test_diff_of_a_running_container_and_an_unchanged_one(run_cli):
    name = unique("changes-running")
    run_cli("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c",
            "touch /tmp/made && sleep 600", check=True)
    try:
        for _ in range(200):
            if "A /tmp/made" in run_cli("diff", name, check=True).stdout:
                break
        assert "A /tmp/made" in run_cli("diff", name, check=True).stdout.splitlines()
    finally:
        run_cli("rm", "-f", name, check=True)
    name = unique("changes-none")
    run_cli("run", "--name", name, "--network", "none", "busybox", "true", check=True)
    try:
        assert run_cli("diff", name, check=True).stdout == ""
    finally:
        run_cli("rm", name, check=True)
    assert_one_line_error(run_cli("diff", "no-such-container-x"), code=1, contains="no such container")


def test_export(run_cli, changed, tmp_path):
    out = cli_bytes(run_cli, "export", changed)
    assert out.returncode == 0, out.stderr
    tar = tarfile.open(fileobj=io.BytesIO(out.stdout))
    names = set(tar.getnames())
    assert {"bin/busybox", "new/f", "usr/only", "etc/passwd"} <= names
    assert "bin/ls" not in names and not [n for n in names if n.startswith("usr/bin")]
    assert tar.extractfile("etc/passwd").read().endswith(b"extra\n")
    evil = tar.getmember("evil")
    assert evil.issym() and evil.linkname == "/etc"   # a symlink, never the host's /etc
    run_cli("export", "-o", tmp_path / "out.tar", changed, check=True)
    assert set(tarfile.open(tmp_path / "out.tar").getnames()) == names
    assert os.listdir(tmp_path) == ["out.tar"]  # no temp file left
    assert_one_line_error(run_cli("export", "-o", tmp_path / "missing" / "x.tar", changed),
                          contains="cannot write")


def test_export_of_a_running_container_leaves_out_volumes_and_proc(run_cli, tmp_path):
    name = unique("export-running")
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "host-file").write_text("x")
    run_cli("run", "-d", "--name", name, "--network", "none", "-v", f"{tmp_path / 'vol'}:/vol", "busybox",
            "sh", "-c", "echo r > /running && sleep 600", check=True)
    try:
        for _ in range(200):
            names = tarfile.open(fileobj=io.BytesIO(cli_bytes(run_cli, "export", name).stdout)).getnames()
            if "running" in names:
                break
        assert "running" in names and "bin/busybox" in names
        assert not [n for n in names if n.startswith(("proc/", "sys/", "vol/"))]
    finally:
        run_cli("rm", "-f", name, check=True)


def test_commit(run_cli, changed, tmp_path):
    image = f"{unique('committed')}:v1"
    out = run_cli("commit", "-m", "my message", "-a", "Ann <ann@example.com>",
                  "-c", 'CMD ["cat", "/new/f"]', "-c", "ENV GREETING=hi", changed, image, check=True)
    assert out.stdout.startswith("sha256:")
    try:
        assert run_cli("run", "--rm", "--network", "none", image, check=True).stdout == "content\n"
        seen = run_cli("run", "--rm", "--network", "none", image, "sh", "-c",
                       'test ! -e /bin/ls && test -L /evil && ls /usr && echo "$GREETING"', check=True).stdout
        assert seen == "only\nhi\n"
        history = run_cli("history", "--no-trunc", image, check=True).stdout.splitlines()
        assert "my message" in history[1] and "mkdir /new" in history[1]
        info = json.loads(run_cli("image", "inspect", image, check=True).stdout)[0]
        assert info["Author"] == "Ann <ann@example.com>"
        assert info["Config"]["Cmd"] == ["cat", "/new/f"] and "GREETING=hi" in info["Config"]["Env"]
        # the layer has OCI whiteouts: podman, docker and `diyc load` read it back
        run_cli("save", "-o", tmp_path / "img.tar", image, check=True)
        archive = tarfile.open(tmp_path / "img.tar")
        top = info["RootFS"]["Layers"][-1].removeprefix("sha256:")
        layer = tarfile.open(fileobj=archive.extractfile(f"blobs/sha256/{top}"))
        names = layer.getnames()
        assert "bin/.wh.ls" in names and "usr/.wh..wh..opq" in names and "new/f" in names
    finally:
        run_cli("rmi", image, check=True)


def test_commit_refuses_bad_input(run_cli, changed):
    assert_one_line_error(run_cli("commit", "-c", "RUN echo no", changed), contains="not a valid change")
    assert_one_line_error(run_cli("commit", changed, "Bad Name"))
    assert_one_line_error(run_cli("commit"), contains="requires a container")


def test_commit_pauses_a_running_container(run_cli, diyc_root):
    """docker's default: the container is frozen from before its changes
    are read until its image is stored (held there: the test holds the
    image store's lock), then thawed, also when the commit is interrupted;
    -p=false and --pause=false leave it running."""
    import signal
    name = unique("commit-pause")
    run_cli("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "600", check=True)
    images = []  # one name each: a re-tag would leave the one before dangling in the root

    def status():
        return json.loads(run_cli("inspect", name, check=True).stdout)[0]["State"]["Status"]
    try:
        for options, paused, interrupt in (([], "paused", True), (["-p=false"], "running", False),
                                           (["--pause=false"], "running", False), ([], "paused", False)):
            images.append(f"{unique('paused')}:v1")
            with flock_held(f"{diyc_root}/layers-gc.lock"):
                commit = run_cli.popen("commit", *options, name, images[-1])
                wait_blocked_on_flock(commit, "the commit to wait for the image store")
                assert status() == paused, options
                if interrupt:
                    commit.send_signal(signal.SIGINT)
                    assert commit.wait(timeout=30) == 130
            assert commit.wait(timeout=30) == (130 if interrupt else 0), commit.communicate()
            assert status() == "running"
        events = run_cli("events", "--since", "0", "--until", f"{time.time():.6f}", "--filter",
                         f"container={name}", "--format", "{{.Action}}", check=True).stdout.split()
        assert events.count("pause") == events.count("unpause") == 2, events
    finally:
        run_cli("rm", "-f", name, check=True)
        for image in images:
            run_cli("rmi", image)

def test_system_df_and_volume_inspect(run_cli):
    volume = unique("dfvol")
    run_cli("volume", "create", volume, check=True)
    try:
        rows = run_cli("system", "df", check=True).stdout.splitlines()
        assert rows[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        kinds = [r.split("   ")[0] for r in rows[1:]]
        assert kinds == ["Images", "Containers", "Local Volumes", "Build Cache"]
        assert int(rows[1].split()[1]) >= 1 and int(rows[3].split()[2]) >= 1
        (info,) = json.loads(run_cli("volume", "inspect", volume, check=True).stdout)
        assert info["Name"] == volume and info["Driver"] == "local" and info["Scope"] == "local"
        assert info["Mountpoint"].endswith(f"/volumes/{volume}/_data") and os.path.isdir(info["Mountpoint"])
        assert info["CreatedAt"].endswith("Z") and "Labels" in info
        assert_one_line_error(run_cli("volume", "inspect", "no-such-volume-x"), contains="no such volume")
    finally:
        run_cli("volume", "rm", volume, check=True)


def test_library(diyc_root, tmp_path):
    import diyc
    with diyc.Container.create("busybox", ["sh", "-c", "echo lib > /f"], network="none",
                               root=str(diyc_root)) as c:
        c.start()
        c.wait()
        assert {"Path": "/f", "Kind": 1} in c.diff()
        chunks, info = c.get_archive("/f")
        assert info["name"] == "f" and info["size"] == 4
        assert tarfile.open(fileobj=io.BytesIO(b"".join(chunks))).extractfile("f").read() == b"lib\n"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            entry = tarfile.TarInfo("put")
            entry.size, entry.uid = 2, 42
            t.addfile(entry, io.BytesIO(b"ok"))
        assert c.put_archive("/tmp", buf.getvalue()) is True
        names = tarfile.open(fileobj=io.BytesIO(b"".join(c.export()))).getnames()
        assert "tmp/put" in names and "f" in names
        record = c.commit("libcommit", "v1", message="from python")
        try:
            assert record["config"]["history"][-1]["comment"] == "from python"
        finally:
            diyc.images.remove("libcommit:v1", root=str(diyc_root))


def test_put_archive_before_the_first_start(diyc_root):
    """A created container has no writable layer yet: put_archive makes it,
    and the container's command sees the file."""
    import diyc
    with diyc.Container.create("busybox", ["cat", "/etc/motd"], network="none", root=str(diyc_root)) as c:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            entry = tarfile.TarInfo("motd")
            entry.size = 6
            t.addfile(entry, io.BytesIO(b"hello\n"))
        c.put_archive("/etc", buf.getvalue())
        assert c.diff() == [{"Path": "/etc", "Kind": 0}, {"Path": "/etc/motd", "Kind": 1}]
        r, w = os.pipe()
        c.start((-1, w, w))
        os.close(w)
        with os.fdopen(r, "rb") as out:
            assert out.read() == b"hello\n"
        assert c.wait().returncode == 0
