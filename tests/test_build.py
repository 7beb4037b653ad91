"""`diyc build`: real builds on the built-in busybox image.

The builds use a root of this module's own (its images and build cache do
not change what other tests see); every test checks that no container, no
staging file and no image of its own is left behind."""

import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import Cli, assert_one_line_error
from podman_util import private_podman

@pytest.fixture(scope="module")
def broot(tmp_path_factory, diyc_root):
    root = tmp_path_factory.mktemp("build-root")
    Cli(root)("run", "--network", "none", "--rm", "busybox", "true", check=True)  # the built-in image, once
    yield root


@pytest.fixture
def cli(broot):
    c = Cli(broot)
    images_before = set(os.listdir(broot / "images"))
    yield c
    for sub in ("containers", "names", "tmp"):
        assert os.listdir(broot / sub) == [], f"{sub} left behind"
    for f in set(os.listdir(broot / "images")) - images_before - {"repositories.json"}:
        c("rmi", "-f", f.removesuffix(".json"))  # (-f: names in several repositories too)
    assert set(os.listdir(broot / "images")) <= images_before | {"repositories.json"}


def context(tmp_path, dockerfile, files=None):
    ctx = tmp_path / "ctx"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
    return ctx


def image_config(broot, ref):
    from diyc.images.store import ImageStore
    return ImageStore(str(broot)).resolve(ref)["config"]


def build_lib(broot, ctx, **kwargs):
    import diyc
    events = []
    image_id = diyc.build(str(ctx), root=str(broot), progress=events.append, **kwargs)
    return image_id, events


def done_steps(events):
    steps = {e["step"]: e["instruction"] for e in events if e["event"] == "step"}
    return [(steps[e["step"]], e["cached"]) for e in events if e["event"] == "done"]


# -- the image a build makes ------------------------------------------------------

def test_config_history_and_what_runs(cli, broot, tmp_path):
    ctx = context(tmp_path, """\
# syntax=docker/dockerfile:1
FROM busybox
ARG GREETING=hello
ENV APP_HOME=/srv/app \\
    MESSAGE="two words"
WORKDIR $APP_HOME
RUN echo "$GREETING from $(pwd)" > greeting.txt && \\
    chown daemon greeting.txt
COPY --chown=daemon:daemon app.sh ./bin/
USER daemon
LABEL org.example.name=demo version="1.0"
EXPOSE 8080 53/udp
ENTRYPOINT ["sh", "bin/app.sh"]
CMD ["arg1"]
""", {"app.sh": 'echo "user=$(id -un) pwd=$(pwd) msg=$MESSAGE args=$*"; cat greeting.txt\n'})
    # -f is relative to the current directory, as docker's
    (tmp_path / "elsewhere.Dockerfile").write_text((ctx / "Dockerfile").read_text())
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 1\n")
    proc = subprocess.run(cli_argv(broot, "build", "-t", "demo:1", "--build-arg", "GREETING=hi",
                                   "--build-arg", "NOT_DECLARED=1", "--progress", "plain",
                                   "-f", "elsewhere.Dockerfile", ctx),
                          capture_output=True, text=True, cwd=tmp_path, env=Cli(broot).env())
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: one or more build args were not consumed: NOT_DECLARED" in proc.stdout
    image_id = proc.stdout.splitlines()[-1]
    assert image_id.startswith("sha256:")
    assert "[11/11] CMD" in proc.stdout

    config = image_config(broot, "demo:1")
    c = config["config"]
    assert c["User"] == "daemon"
    assert c["WorkingDir"] == "/srv/app"
    assert "MESSAGE=two words" in c["Env"] and "APP_HOME=/srv/app" in c["Env"]
    assert not any(e.startswith("GREETING=") for e in c["Env"])  # an ARG is not in the image
    assert c["Entrypoint"] == ["sh", "bin/app.sh"] and c["Cmd"] == ["arg1"]
    assert c["Labels"] == {"org.example.name": "demo", "version": "1.0"}
    assert c["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    # docker's shape: one history entry per layer plus the empty ones
    history = config["history"]
    assert len([h for h in history if not h.get("empty_layer")]) == len(config["rootfs"]["diff_ids"])
    by = [h["created_by"] for h in history]
    assert any(b.startswith("RUN ") for b in by) and any(b.startswith("COPY ") for b in by)
    assert [h.get("empty_layer", False) for h in history if h["created_by"].startswith(("ENV", "USER"))] \
        == [True, True]
    # WORKDIR made the directory: a layer; RUN and COPY: one each
    assert len(config["rootfs"]["diff_ids"]) == 1 + 3

    run = cli("run", "--network", "none", "--rm", "demo:1", "x", "y")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "user=daemon pwd=/srv/app msg=two words args=x y\nhi from /srv/app\n"
    ls = cli("run", "--network", "none", "--rm", "--entrypoint", "ls", "demo:1", "-ln", "bin/app.sh", "greeting.txt")
    assert [line.split()[2:4] for line in ls.stdout.splitlines()] == [["1", "1"], ["1", "0"]]

    hist = cli("history", "demo:1")
    assert hist.returncode == 0
    assert hist.stdout.splitlines()[1].split()[0] == image_id[7:19]
    assert "CMD" in hist.stdout.splitlines()[1]
    assert len(hist.stdout.splitlines()) == 1 + len(history)


def test_rebuild_is_cached_and_a_changed_file_rebuilds_from_its_step(cli, broot, tmp_path):
    files = {f"src/f{i}.txt": f"file {i}\n" for i in range(20)}
    ctx = context(tmp_path, """\
FROM busybox
RUN echo base > /base
COPY src /src
ENV A=1
RUN cat /src/f3.txt > /seen
CMD ["cat", "/seen"]
""", files)
    first, events = build_lib(broot, ctx, tags=["cache:1"])
    assert not any(cached for _, cached in done_steps(events)[1:])
    second, events = build_lib(broot, ctx, tags=["cache:1"])
    assert second == first  # same config, same history times: the same image
    assert [cached for _, cached in done_steps(events)[1:]] == [True] * 5
    assert not any(e["event"] == "output" for e in events)
    proc = cli("build", "--progress", "plain", ctx)
    assert proc.stdout.count("CACHED") == 5 and proc.stdout.splitlines()[-1] == first

    (ctx / "src" / "f3.txt").write_text("changed\n")
    third, events = build_lib(broot, ctx, tags=["cache:1"])
    assert third != first
    assert [(ins.split()[0], cached) for ins, cached in done_steps(events)[1:]] == \
        [("RUN", True), ("COPY", False), ("ENV", False), ("RUN", False), ("CMD", False)]
    assert cli("run", "--network", "none", "--rm", "cache:1").stdout == "changed\n"

    # a mode change is a change too; --no-cache ignores the cache
    os.chmod(ctx / "src" / "f3.txt", 0o600)
    _, events = build_lib(broot, ctx, tags=["cache:1"])
    assert [c for _, c in done_steps(events)[1:3]] == [True, False]
    _, events = build_lib(broot, ctx, tags=["cache:1"], no_cache=True)
    assert not any(c for _, c in done_steps(events)[1:])


def test_dockerignore(cli, broot, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nCOPY . /ctx/\n", {
        ".dockerignore": "# comment\n*.log\n!keep.log\nsecret/\n**/*.tmp\nDockerfile\n",
        "a.txt": "a", "debug.log": "x", "keep.log": "k", "secret/key": "s", "sub/b.tmp": "t",
        "sub/c.txt": "c"})
    proc = cli("build", "-t", "ign", ctx)
    assert proc.returncode == 0, proc.stderr
    out = cli("run", "--network", "none", "--rm", "ign", "find", "/ctx").stdout.split()
    assert sorted(out) == ["/ctx", "/ctx/.dockerignore", "/ctx/a.txt", "/ctx/keep.log", "/ctx/sub",
                           "/ctx/sub/c.txt"]
    bad = context(tmp_path / "b", "FROM busybox\nCOPY secret/key /k\n", {
        ".dockerignore": "secret\n", "secret/key": "s"})
    proc = cli("build", bad)
    assert_one_line_error(proc, contains="excluded by .dockerignore")


def test_multi_stage_builds_only_what_the_target_needs(cli, broot, tmp_path):
    ctx = context(tmp_path, """\
ARG BASE=busybox
FROM $BASE AS builder
RUN mkdir /out && echo built > /out/artifact && echo gone > /out/tmpfile && rm /out/tmpfile

FROM busybox AS unused
RUN echo this stage must not run; exit 9

FROM builder AS tester
RUN test -f /out/artifact

FROM busybox
COPY --from=builder /out/ /opt/
COPY --from=0 /out/artifact /opt/again
COPY --from=busybox /etc/group /opt/group-from-an-image
CMD ["cat", "/opt/artifact", "/opt/again"]
""")
    image_id, events = build_lib(broot, ctx, tags=["multi"])
    steps = [ins for ins, _ in done_steps(events)]
    assert not any("this stage must not run" in s for s in steps)
    assert not any("test -f" in s for s in steps)
    assert cli("run", "--network", "none", "--rm", "multi").stdout == "built\nbuilt\n"
    assert cli("run", "--network", "none", "--rm", "multi", "ls", "/opt").stdout.split() == \
        ["again", "artifact", "group-from-an-image"]
    # only the final stage's layers are in the image
    assert len(image_config(broot, "multi")["rootfs"]["diff_ids"]) == 4

    proc = cli("build", "--target", "tester", "-t", "tester", ctx)
    assert proc.returncode == 0, proc.stderr
    assert "exit 9" not in proc.stdout
    assert cli("run", "--network", "none", "--rm", "tester", "cat", "/out/artifact").stdout == "built\n"
    assert_one_line_error(cli("build", "--target", "nope", ctx), contains="nope")
    assert_one_line_error(cli("build", "--network", "nosuchnet", ctx), contains="network nosuchnet not found")


def test_failing_run_leaves_nothing(cli, broot, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN echo before\nRUN echo some output; exit 7\nCMD true\n")
    images = cli("images", "-q").stdout
    proc = cli("build", "-t", "fails", "--progress", "plain", ctx)
    assert proc.returncode == 7, proc.stderr
    assert "some output" in proc.stdout
    assert proc.stderr.splitlines()[-1].startswith("diyc: Dockerfile:3: RUN")
    assert "exit code 7" in proc.stderr
    assert cli("images", "-q").stdout == images
    assert "fails" not in cli("images").stdout
    # the library raises, with the command's exit code
    import diyc
    from diyc.builder import BuildError
    with pytest.raises(BuildError) as e:
        diyc.build(str(ctx), root=str(broot))
    assert e.value.exit_code == 7


@pytest.mark.parametrize("dockerfile,message", [
    ("FROM busybox\nRUN true\nFROOM busybox\n", "Dockerfile:3: unknown instruction: FROOM"),
    ("RUN true\n", "Dockerfile:1: RUN before the first FROM"),
    ("FROM busybox\nCOPY --bogus=1 a /b\n", "Dockerfile:2: unknown flag for COPY: --bogus"),
    ("FROM busybox\nRUN <<EOF\necho never ends\n", "Dockerfile:2: unterminated heredoc"),
    ("FROM busybox\nENV\n", "Dockerfile:2: ENV requires at least one argument"),
    ("FROM --platform=linux/s390x busybox\n", "Dockerfile:1: FROM --platform=linux/s390x: only"),
    ("FROM busybox\nCOPY --from=nosuchimage /x /y\n", "No such image: nosuchimage"),
    ("FROM busybox\nRUN true\nCOPY missing /x\n", "Dockerfile:3: COPY failed: file not found"),
    ("FROM busybox\nENV A=${B:?required}\n", "Dockerfile:2: B: required"),
])
def test_bad_dockerfile_one_line_error_and_nothing_made(cli, broot, tmp_path, dockerfile, message):
    ctx = context(tmp_path, dockerfile)
    images = cli("images", "-q").stdout
    proc = cli("build", "-t", "bad", ctx)
    assert_one_line_error(proc, contains=message)
    assert cli("images", "-q").stdout == images


def test_copy_never_follows_a_symlink_out_of_the_context(cli, broot, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("HOST SECRET\n")
    (tmp_path / "hostdir").mkdir()
    (tmp_path / "hostdir" / "inner").write_text("HOST INNER\n")
    ctx = context(tmp_path, "FROM busybox\nCOPY . /ctx/\n", {"real.txt": "real\n"})
    os.symlink(str(secret), ctx / "abs-link")
    os.symlink("../host-secret", ctx / "rel-link")
    os.symlink(str(tmp_path / "hostdir"), ctx / "dir-link")
    os.symlink("real.txt", ctx / "inside-link")
    proc = cli("build", "-t", "links", ctx)
    assert proc.returncode == 0, proc.stderr
    out = cli("run", "--network", "none", "--rm", "links", "sh", "-c",
              "cd /ctx; for f in *; do echo $f $(readlink $f); done; cat inside-link").stdout
    assert out.splitlines() == [
        "Dockerfile", f"abs-link {secret}", f"dir-link {tmp_path}/hostdir", "inside-link real.txt",
        "real.txt", "rel-link ../host-secret", "real"]
    # a named source resolves links inside the context: out of it is not found
    for src in ("abs-link", "rel-link", "dir-link/inner"):
        (ctx / "Dockerfile").write_text(f"FROM busybox\nCOPY {src} /x\n")
        proc = cli("build", ctx)
        assert_one_line_error(proc, contains="file not found")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY inside-link /x\n")
    assert cli("build", "-t", "links", ctx).returncode == 0
    assert cli("run", "--network", "none", "--rm", "links", "cat", "/x").stdout == "real\n"


def test_run_deletions_are_whiteouts_and_opaque_dirs(cli, broot, tmp_path):
    ctx = context(tmp_path, """\
FROM busybox
RUN mkdir -p /d/sub && echo 1 > /d/a && echo 2 > /d/sub/b && echo keep > /keep
RUN rm /d/a /bin/vi && rm -rf /d/sub && mkdir /d/sub && echo new > /d/sub/c && ln /keep /keep2
""")
    assert cli("build", "-t", "wh", ctx).returncode == 0
    out = cli("run", "--network", "none", "--rm", "wh", "sh", "-c", "find /d | sort; ls /bin/vi; stat -c %h /keep").stdout
    assert out.split() == ["/d", "/d/sub", "/d/sub/c", "2"]
    from diyc.images.store import ImageStore
    store = ImageStore(str(broot))
    top = store.resolve("wh")["layers"][-1]
    with tarfile.open(store.blob_path(store.layer_meta(top)["blob"])) as tar:
        names = tar.getnames()
    assert "d/.wh.a" in names and "bin/.wh.vi" in names
    assert "d/sub/.wh..wh..opq" in names


def test_add_tar_heredocs_and_stdin_context(cli, broot, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("pkg/one", b"1\n"), ("pkg/two", b"2\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ctx = context(tmp_path, """\
FROM busybox
ADD pkg.tar.gz /opt/
ARG WHO=world
RUN <<EOF
echo "hello $WHO" > /hello
echo second line >> /hello
EOF
COPY <<-EOT /etc/motd
	welcome $WHO
	EOT
RUN cat <<'X' > /literal
$WHO stays
X
CMD cat /opt/pkg/one /opt/pkg/two /hello /etc/motd /literal
""", {"pkg.tar.gz": buf.getvalue()})
    assert cli("build", "-t", "adds", ctx).returncode == 0
    assert cli("run", "--network", "none", "--rm", "adds").stdout == \
        "1\n2\nhello world\nsecond line\nwelcome world\n$WHO stays\n"
    # the context as a tar on stdin
    tar_bytes = subprocess.run(["tar", "-C", ctx, "-cf", "-", "."], capture_output=True, check=True).stdout
    proc = subprocess.run(cli_argv(broot, "build", "-t", "adds-stdin", "-"), input=tar_bytes,
                          capture_output=True, env=Cli(broot).env())
    assert proc.returncode == 0, proc.stderr
    assert cli("run", "--network", "none", "--rm", "adds-stdin").stdout.startswith("1\n2\nhello world")


def cli_argv(root, *args):
    from conftest import DIYC
    return DIYC + [str(a) for a in args]


def test_onbuild_shell_healthcheck_and_scratch(cli, broot, tmp_path):
    ctx = context(tmp_path, """\
FROM busybox
ONBUILD RUN echo triggered > /onbuild
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=30s --retries=2 CMD wget -q localhost || exit 1
STOPSIGNAL SIGINT
VOLUME /data
""")
    assert cli("build", "-t", "parent", ctx).returncode == 0
    c = image_config(broot, "parent")["config"]
    assert c["OnBuild"] == ["RUN echo triggered > /onbuild"]
    assert c["Shell"] == ["/bin/sh", "-ec"]
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                "Interval": 30 * 10**9, "Retries": 2}
    assert c["StopSignal"] == "SIGINT" and c["Volumes"] == {"/data": {}}
    (ctx / "Dockerfile").write_text("FROM parent\nRUN cat /onbuild\n")
    proc = cli("build", "-t", "child", "--progress", "plain", ctx)
    assert proc.returncode == 0, proc.stderr
    assert "triggered" in proc.stdout
    assert "OnBuild" not in image_config(broot, "child")["config"]
    # docker: an ENTRYPOINT resets the CMD the base image had, unless the stage sets one
    (ctx / "Dockerfile").write_text('FROM busybox\nENTRYPOINT ["echo"]\n')
    assert cli("build", "-t", "entry", ctx).returncode == 0
    c = image_config(broot, "entry")["config"]
    assert c["Entrypoint"] == ["echo"] and not c.get("Cmd")
    assert cli("run", "--network", "none", "--rm", "entry", "only", "args").stdout == "only args\n"
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    assert cli("build", "-t", "scratchy", ctx).returncode == 0
    assert len(image_config(broot, "scratchy")["rootfs"]["diff_ids"]) == 1


# -- podman reads what diyc builds, and builds on it ---------------------------------

@pytest.fixture
def podman():
    with private_podman(shutil.which("runc") or "runc", prefix="diyc-pb-", timeout=120) as run:
        yield run


def test_podman_loads_the_image_and_builds_on_it(cli, broot, tmp_path, podman):
    ctx = context(tmp_path, """\
FROM busybox
RUN echo from-diyc > /made-by
COPY note.txt /note.txt
ENV STAGE=diyc
CMD ["cat", "/made-by"]
""", {"note.txt": "note\n"})
    assert cli("build", "-t", "localhost/diycbuilt:1", ctx).returncode == 0
    archive = tmp_path / "img.tar"
    assert cli("save", "-o", archive, "localhost/diycbuilt:1").returncode == 0
    proc = podman("load", "-i", archive)
    assert proc.returncode == 0, proc.stderr
    run = podman("run", "--rm", "--network", "none", "localhost/diycbuilt:1")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "from-diyc\n"
    history = json.loads(podman("image", "inspect", "localhost/diycbuilt:1").stdout)[0]["History"]
    assert any("COPY note.txt" in h.get("created_by", "") for h in history)

    pctx = tmp_path / "pctx"
    pctx.mkdir()
    (pctx / "extra.txt").write_text("extra\n")
    (pctx / "Containerfile").write_text("FROM localhost/diycbuilt:1\nCOPY extra.txt /extra.txt\n"
                                        "RUN cat /note.txt /extra.txt > /both\nCMD [\"cat\", \"/both\"]\n")
    proc = podman("build", "--network", "none", "-t", "localhost/onpodman", pctx)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = podman("run", "--rm", "--network", "none", "localhost/onpodman")
    assert run.stdout == "note\nextra\n", run.stderr
    env = json.loads(podman("image", "inspect", "localhost/onpodman").stdout)[0]["Config"]["Env"]
    assert "STAGE=diyc" in env


def test_arg_scopes_and_predefined_args(cli, broot, tmp_path):
    ctx = context(tmp_path, """\
ARG V=global
ARG BASE=busybox
FROM $BASE
RUN test -z "$V" && echo "outside: unset"
ARG V
ARG TARGETARCH
ARG LOCAL=dflt
RUN echo "redeclared: $V $LOCAL arch=$TARGETARCH proxy=$HTTP_PROXY"
ENV FROM_ARG=$LOCAL
""")
    proc = cli("build", "-t", "args", "--progress", "plain", "--build-arg", "LOCAL=given",
               "--build-arg", "HTTP_PROXY=http://127.0.0.1:9", ctx)
    assert proc.returncode == 0, proc.stderr
    assert "outside: unset" in proc.stdout
    import platform
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    assert f"redeclared: global given arch={arch} proxy=http://127.0.0.1:9" in proc.stdout
    env = image_config(broot, "args")["config"]["Env"]
    assert "FROM_ARG=given" in env
    assert not any(e.startswith(("V=", "LOCAL=", "HTTP_PROXY=")) for e in env)
    assert not any("127.0.0.1:9" in h["created_by"]  # proxies stay out of the image
                   for h in image_config(broot, "args")["history"])
