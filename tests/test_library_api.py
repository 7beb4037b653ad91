"""The library's API as a Python user meets it (issue #14): signatures and
docstrings, subprocess's conventions, docker-py's input shapes, Container
as a context manager with wait/logs/exec_run/stats/top/list, images,
asyncio.  Real containers, as everywhere in this suite."""

import asyncio
import inspect
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import diyc
from diyc.runtime import Container

from conftest import PKG_DIR, child_pids, container_records

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry_util as ru  # noqa: E402


@pytest.fixture
def root(diyc_root):
    return str(diyc_root)


def gone(root):
    return container_records(root) == [] and os.listdir(f"{root}/names") == []


# -- the API surface ------------------------------------------------------------------

RUN_ONLY = {"stdin", "stdout", "stderr", "capture_output", "input", "text", "encoding", "errors",
            "check", "timeout"}


def test_run_and_create_take_explicit_keyword_only_options():
    run, create = inspect.signature(diyc.run), inspect.signature(diyc.Container.create)
    for sig in (run, create):
        params = list(sig.parameters.values())
        assert [p.name for p in params[:2]] == ["image", "command"]
        for p in params[2:]:
            assert p.kind is inspect.Parameter.KEYWORD_ONLY, p.name
        for p in params:
            assert p.annotation is not inspect.Parameter.empty, p.name
        assert sig.return_annotation is not inspect.Signature.empty
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    create_options = set(create.parameters) - {"trace"}
    assert create_options <= set(run.parameters)
    assert set(run.parameters) - set(create.parameters) == RUN_ONLY


def test_help_documents_every_option():
    """`python -c "import diyc; help(diyc.run)"`, as a user types it."""
    code = f"import sys; sys.path.insert(0, {PKG_DIR!r}); import diyc; help(diyc.run)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PAGER="cat", TERM="dumb"), timeout=60).stdout
    for name in inspect.signature(diyc.run).parameters:
        assert f"\n      {name}" in out or f"\n    {name}:" in out or f", {name}:" in out or \
            f"\n      {name}," in out, f"{name} is not documented"
    create_doc = diyc.Container.create.__doc__
    for name in set(inspect.signature(diyc.Container.create).parameters) - {"image", "command"}:
        assert f"{name}:" in create_doc or f"{name}," in create_doc, name


def test_unknown_keywords_name_the_function(root):
    with pytest.raises(TypeError) as info:
        diyc.run("busybox", ["true"], network="none", memroy="64m", root=root)
    assert "diyc.run()" in str(info.value) and "memroy" in str(info.value)
    with pytest.raises(TypeError) as info:
        diyc.Container.create("busybox", ["true"], network="none", bogus=1, root=root)
    assert "Container.create()" in str(info.value)
    assert gone(root)


def test_dir_all_and_py_typed():
    names = dir(diyc)
    for name in ("run", "arun", "Container", "AsyncContainer", "Result", "ContainerError",
                 "ContainerTimeout", "images", "PIPE", "DEVNULL", "STDOUT", "InvalidArgument",
                 "ArgumentTypeError"):
        assert name in names and name in diyc.__all__, name
    assert not [n for n in names if n.startswith("_") and not n.startswith("__")]
    for name in diyc.__all__:
        assert getattr(diyc, name) is not None
    assert (Path(diyc.__file__).parent / "py.typed").exists()
    assert (diyc.PIPE, diyc.STDOUT, diyc.DEVNULL) == (subprocess.PIPE, subprocess.STDOUT,
                                                      subprocess.DEVNULL)


def test_public_classes_and_methods_have_docstrings():
    objects = [diyc.run, diyc.arun, diyc.Result, diyc.ContainerError, diyc.ContainerTimeout,
               diyc.AsyncContainer, diyc.images.list, diyc.images.pull, diyc.images.remove,
               diyc.ArgumentTypeError]
    for cls in (diyc.Container, diyc.Result, diyc.AsyncContainer):
        objects += [m for n, m in vars(cls).items() if not n.startswith("_") and callable(
            getattr(m, "__func__", m))]
    undocumented = [getattr(o, "__qualname__", o) for o in objects
                    if not (getattr(o, "__func__", o).__doc__ or "").strip()]
    assert undocumented == []


# -- subprocess's conventions ----------------------------------------------------------------

def test_result_is_shaped_like_completed_process(root):
    r = diyc.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 3"],
                 network="none", stdout=subprocess.PIPE, stderr=subprocess.PIPE, root=root)
    assert (r.args, r.returncode, r.stdout, r.stderr) == (
        ["sh", "-c", "echo out; echo err >&2; exit 3"], 3, b"out\n", b"err\n")
    with pytest.raises(subprocess.CalledProcessError) as info:
        r.check_returncode()
    assert isinstance(info.value, diyc.ContainerError)
    assert "returncode=3" in repr(r) and "args=" in repr(r)


def test_stderr_to_stdout_and_devnull(root):
    r = diyc.run("busybox", ["sh", "-c", "echo out; echo err >&2"], network="none", stdout=diyc.PIPE,
                 stderr=diyc.STDOUT, root=root)
    assert sorted(r.stdout.splitlines()) == [b"err", b"out"]
    assert r.stderr is None
    r = diyc.run("busybox", ["sh", "-c", "echo out; echo err >&2"], network="none", stdout=subprocess.DEVNULL,
                 stderr=subprocess.PIPE, root=root)
    assert (r.stdout, r.stderr) == (None, b"err\n")


def test_file_objects_and_fds(root, tmp_path):
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        diyc.run("busybox", ["sh", "-c", "echo o; echo e >&2"], network="none", stdout=out, stderr=err.fileno(),
                 root=root)
    assert (tmp_path / "out").read_bytes() == b"o\n"
    assert (tmp_path / "err").read_bytes() == b"e\n"
    with open(tmp_path / "out", "rb") as f:
        r = diyc.run("busybox", ["cat"], network="none", stdin=f, capture_output=True, root=root)
    assert r.stdout == b"o\n"
    with pytest.raises(TypeError):
        diyc.run("busybox", ["true"], network="none", stdout="out.txt", root=root)
    with pytest.raises(io.UnsupportedOperation):  # as subprocess: no fileno()
        diyc.run("busybox", ["true"], network="none", stdout=io.BytesIO(), root=root)
    assert gone(root)


def test_text_encoding_and_input(root):
    r = diyc.run("busybox", ["sh", "-c", "cat; printf 'a\\r\\nb\\n'"], network="none", input="é\n", text=True,
                 capture_output=True, root=root)
    assert r.stdout == "é\na\nb\n"
    r = diyc.run("busybox", ["cat"], network="none", input="é".encode("latin-1"), encoding="latin-1",
                 capture_output=True, root=root)
    assert r.stdout == "é"
    r = diyc.run("busybox", ["cat"], network="none", input=b"\xff", text=True, errors="replace",
                 capture_output=True, root=root)
    assert r.stdout == "\ufffd"
    with pytest.raises(TypeError):
        diyc.run("busybox", ["cat"], network="none", input="no text=True", root=root)
    with pytest.raises(ValueError):
        diyc.run("busybox", ["true"], network="none", capture_output=True, stdout=diyc.PIPE, root=root)
    assert gone(root)


def test_check_raises_container_error(root):
    with pytest.raises(diyc.ContainerError) as info:
        diyc.run("busybox", "sh -c 'echo out; echo err >&2; exit 7'", network="none", check=True,
                 capture_output=True, root=root)
    e = info.value
    assert isinstance(e, subprocess.CalledProcessError)
    assert (e.returncode, e.stdout, e.stderr, e.cmd) == (7, b"out\n", b"err\n",
                                                         ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert len(e.id) == 64 and e.id[:12] in str(e)
    assert gone(root)
    assert diyc.run("busybox", ["true"], network="none", check=True, root=root).returncode == 0


@pytest.mark.parametrize("capture", [True, False])
def test_timeout_kills_and_removes(root, capture):
    with pytest.raises(subprocess.TimeoutExpired) as info:
        diyc.run("busybox", ["sh", "-c", "echo started; exec sleep 60"], network="none", timeout=0.5,
                 capture_output=capture, stdout=None if capture else subprocess.DEVNULL, root=root)
    e = info.value
    assert isinstance(e, diyc.ContainerTimeout)
    assert e.timeout == 0.5 and e.cmd == ["sh", "-c", "echo started; exec sleep 60"]
    if capture:
        assert e.stdout == b"started\n"
    assert gone(root)
    assert child_pids() == []


# -- inputs in docker-py's shapes -------------------------------------------------------------

def test_env_as_a_mapping(root, monkeypatch):
    monkeypatch.setenv("FROM_HOST", "host-value")
    r = diyc.run("busybox", ["sh", "-c", "echo $A-$B-$FROM_HOST"],
                 network="none", env={"A": "1", "B": 2, "FROM_HOST": None}, capture_output=True, root=root)
    assert r.stdout == b"1-2-host-value\n"


def test_command_string_split_with_shlex(root):
    r = diyc.run("busybox", "sh -c 'echo \"a  b\"; echo c'", network="none", capture_output=True, root=root)
    assert r.stdout == b"a  b\nc\n"
    assert r.args == ["sh", "-c", 'echo "a  b"; echo c']
    assert diyc.run("busybox", "echo hi", network="none", capture_output=True, root=root).stdout == b"hi\n"


def test_volumes_ulimits_devices_sysctls_tmpfs_as_dicts(root, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("from host\n")
    r = diyc.run("busybox", ["sh", "-c", "cat /in/f; touch /in/x 2>/dev/null || echo ro; "
                             "ulimit -Sn; ulimit -Hn; test -c /dev/mynull && echo dev; "
                             "cat /proc/sys/net/ipv4/ip_forward; grep ' /scratch ' /proc/mounts"],
                 network="none", volumes={str(tmp_path / "data"): {"bind": "/in", "mode": "ro"}},
                 ulimits=[{"Name": "nofile", "Soft": 512, "Hard": 1024}],
                 devices=[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                           "CgroupPermissions": "rwm"}],
                 sysctls={"net.ipv4.ip_forward": 1}, tmpfs={"/scratch": "size=1m"},
                 capture_output=True, root=root)
    lines = r.stdout.decode().splitlines()
    assert lines[:6] == ["from host", "ro", "512", "1024", "dev", "1"], r.stderr
    assert lines[6].startswith("tmpfs /scratch tmpfs") and "size=1024k" in lines[6]
    r = diyc.run("busybox", ["cat", "/in/f"], network="none", volumes={str(tmp_path / "data"): "/in"},
                 capture_output=True, root=root)
    assert r.stdout == b"from host\n"


def test_ports_in_docker_py_shape():
    from diyc.arguments import publish
    assert publish({"80/tcp": 8080, "53/udp": [("127.0.0.1", 5353), 5354], 22: 2222}) == [
        "8080:80/tcp", "127.0.0.1:5353:53/udp", "5354:53/udp", "2222:22"]
    assert publish(["8080:80"]) == ["8080:80"]
    # None: a random free host port, as docker-py's
    assert publish({"80/tcp": None, "81": ("127.0.0.1", None)}) == ["80/tcp", "127.0.0.1::81"]


def test_anonymous_volumes_and_remove_v(root):
    """volumes=["/path"] is an anonymous volume; remove(v=True) removes it,
    as docker-py's container.remove(v=True)."""
    from diyc.volumes import list_volumes
    from diyc.state import Root
    before = set(list_volumes(Root(root)))
    kept = Container.create("busybox", "true", network="none", root=root, volumes=["/a"])
    dropped = Container.create("busybox", "true", network="none", root=root, volumes=["/b"],
                               mounts=[{"Type": "volume", "Target": "/c"}])
    made = set(list_volumes(Root(root))) - before
    assert len(made) == 3
    dropped.remove(v=True)
    (left,) = set(list_volumes(Root(root))) - before
    assert kept.attrs["Mounts"][0]["Name"] == left
    kept.remove()
    assert set(list_volumes(Root(root))) - before == {left}
    from diyc.volumes import remove_volume
    remove_volume(Root(root), left)


@pytest.mark.parametrize("options", [
    {"env": {"A": ["1"]}}, {"env": {1: "x"}}, {"env": "A=1"}, {"volumes": {"/x": 5}},
    {"volumes": "/a:/b"}, {"ulimits": [{"name": 5, "soft": 1}]}, {"ulimits": [{"name": "nofile"}]},
    {"devices": [{"PathOnHost": 5}]}, {"cap_add": "ALL"}, {"sysctls": {"a.b": [1]}},
    {"publish": {"80": 1.5}}, {"memory": [64]}, {"hostname": 5}, {"command": 5},
], ids=repr)
def test_wrong_types_are_type_errors(root, options):
    command = options.pop("command", ["true"])
    with pytest.raises(TypeError) as info:
        diyc.run("busybox", command, network="none", root=root, **options)
    assert isinstance(info.value, diyc.InvalidArgument)  # one `diyc:` line in the CLI
    assert gone(root)


@pytest.mark.parametrize("options", [
    {"ulimits": [{"name": "nofile", "soft": "lots"}]}, {"ulimits": [{"name": "bogus", "soft": 1}]},
    {"volumes": {"/x": {"bind": "relative"}}}, {"expose": ["80/sctp"]},
    {"devices": [{"PathOnHost": "/dev/nosuchdevice"}]}, {"tmpfs": {"relative": ""}},
    {"restart": {"Name": "sometimes"}}, {"memory": "lots"},
], ids=repr)
def test_bad_values_are_invalid_arguments(root, options):
    with pytest.raises(diyc.InvalidArgument) as info:
        diyc.run("busybox", ["true"], network="none", root=root, **options)
    assert not isinstance(info.value, TypeError)
    assert gone(root)


# -- containers -----------------------------------------------------------------------------

def test_container_is_a_context_manager(root):
    with diyc.Container.create("busybox", ["sleep", "60"], network="none", name="ctx", root=root) as c:
        c.start()
        assert c.status == "running"
    assert gone(root)
    with pytest.raises(RuntimeError):
        with diyc.Container.create("busybox", ["sleep", "60"], network="none", root=root) as c:
            c.start(detach=True)
            raise RuntimeError("boom")
    assert gone(root)
    with diyc.Container.create("busybox", ["true"], network="none", root=root) as c:
        pass  # never started
    assert gone(root)
    assert child_pids() == []


def test_wait_timeout(root):
    with diyc.Container.create("busybox", ["sleep", "60"], network="none", root=root) as c:
        c.start()
        with pytest.raises(subprocess.TimeoutExpired) as info:
            c.wait(timeout=0.2)
        assert isinstance(info.value, diyc.ContainerTimeout) and info.value.id == c.id
        assert c.status == "running"  # it runs on
        c.kill(9)
        assert c.wait(timeout=30).returncode == 137
    with diyc.Container.create("busybox", ["sleep", "60"], network="none", root=root) as c:
        c.start(detach=True)
        with pytest.raises(diyc.ContainerTimeout):
            c.wait(timeout=0.2)
        c.kill(9)
        assert c.wait(timeout=30).returncode == 137
    assert gone(root)


def test_logs(root):
    with diyc.Container.create("busybox", ["sh", "-c", "echo one; echo two >&2; echo three"],
                               network="none", root=root) as c:
        c.start(detach=True)
        assert c.wait(timeout=30).returncode == 0
        assert sorted(c.logs().splitlines()) == [b"one", b"three", b"two"]
        assert c.logs(stderr=False) == b"one\nthree\n"
        assert c.logs(stdout=False) == b"two\n"
        assert c.logs(stderr=False, tail=1) == b"three\n"
        lines = c.logs(stream=True)
        assert not isinstance(lines, bytes)
        assert sorted(lines) == [b"one\n", b"three\n", b"two\n"]
        assert c.logs(since=4102444800) == b""  # 2100-01-01
        assert len(c.logs(since=0).splitlines()) == 3
        stamped = c.logs(stderr=False, timestamps=True).splitlines()
        assert stamped[0].endswith(b"Z one") and stamped[0][:2] == b"20"
        import datetime
        assert c.logs(since=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc),
                      stderr=False) == b"one\nthree\n"


def test_logs_follow_and_attach(root):
    with diyc.Container.create("busybox", ["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done"],
                               network="none", root=root) as c:
        c.start(detach=True)
        assert list(c.attach(logs=True)) == [b"1\n", b"2\n", b"3\n"]  # ends with the container
        assert c.logs(follow=True) == b"1\n2\n3\n"


def test_concurrent_execs_leave_us_dumpable_and_never_show_our_memory(root, tmp_path):
    """An exec's process shares our memory until its execve, inside the
    container's pid namespace: while any does, our memory is not dumpable
    (the container cannot read its /proc/PID/environ - ours), and once the
    last is out it is as before, whatever the threads' order.  (In a
    process of its own: its environment, from its start, has the secret.)"""
    script = tmp_path / "execs.py"
    script.write_text(f"""
import ctypes, sys
sys.path.insert(0, {str(PKG_DIR)!r})
from concurrent.futures import ThreadPoolExecutor
import diyc
prctl = ctypes.CDLL(None).prctl
before = prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
look = "for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null; done | grep -c DIYC_TEST_SECRET"
with diyc.Container.create("busybox", ["sleep", "60"], network="none", root={root!r}) as c:
    c.start(detach=True)
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: c.exec_run(["sh", "-c", look]).stdout, range(40)))
print(before, prctl(3, 0, 0, 0, 0), sorted(set(seen)))
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, DIYC_TEST_SECRET="1"))
    assert proc.stdout == "1 1 [b'0\\n']\n", proc.stdout + proc.stderr


def test_exec_run(root):
    with diyc.Container.create("busybox", ["sleep", "60"], network="none", root=root) as c:
        c.start(detach=True)
        r = c.exec_run("sh -c 'echo $X; pwd; echo err >&2'", env={"X": "x"}, workdir="/tmp")
        assert (r.returncode, r.stdout, r.stderr) == (0, b"x\n/tmp\n", b"err\n")
        assert r.args == ["sh", "-c", "echo $X; pwd; echo err >&2"]
        assert c.exec_run(["cat"], input="in", text=True).stdout == "in"
        assert c.exec_run(["id", "-u"], user="65534").stdout == b"65534\n"
        with pytest.raises(diyc.ContainerError) as info:
            c.exec_run(["sh", "-c", "exit 4"], check=True)
        assert info.value.returncode == 4 and info.value.id == c.id
        with pytest.raises(diyc.ContainerTimeout):
            c.exec_run(["sleep", "60"], timeout=0.3)
        top = c.top()
        assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        assert [p[7] for p in top["Processes"]] == ["sleep 60"]  # the exec'd sleep is gone
        stats = c.stats(interval=0.1)
        assert stats["pids"] == 1 and stats["memory"] > 0 and stats["id"] == c.id
        assert set(stats) >= {"cpu_percent", "memory", "memory_limit", "net_rx", "net_tx"}
    assert gone(root)



def test_exec_leaves_the_caller_dumpable(root):
    """exec's first process shares our memory and makes it undumpable, so
    that the process it clones into the container is undumpable from its
    start; once it is gone, our memory is dumpable again."""
    import ctypes
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    get_dumpable = 3  # PR_GET_DUMPABLE
    with diyc.Container.create("busybox", ["sleep", "60"], network="none", root=root) as c:
        c.start(detach=True)
        assert prctl(get_dumpable, 0, 0, 0, 0) == 1
        assert c.exec_run(["true"]).returncode == 0
        assert prctl(get_dumpable, 0, 0, 0, 0) == 1
    assert gone(root)

def test_list_all_and_filters(root):
    with diyc.Container.create("busybox", ["sleep", "60"], network="none", name="lst-run", root=root) as a, \
            diyc.Container.create("busybox", ["sh", "-c", "exit 3"], network="none", name="lst-done", root=root) as b:
        a.start()
        b.start()
        b.wait()
        names = lambda **kw: sorted(c.name for c in Container.list(root, **kw))  # noqa: E731
        assert names() == ["lst-run"]
        assert names(all=True) == ["lst-done", "lst-run"]
        assert names(filters={"status": "exited"}) == ["lst-done"]
        assert names(filters={"exited": 3}) == ["lst-done"]
        assert names(all=True, filters={"name": ["done", "nothing"]}) == ["lst-done"]
        assert names(all=True, filters={"id": a.id[:10]}) == ["lst-run"]
        assert names(all=True, filters={"ancestor": "busybox"}) == ["lst-done", "lst-run"]
        assert names(all=True, filters={"label": "x"}) == []  # (labels are kept since --label)
        with pytest.raises(diyc.InvalidArgument):
            Container.list(root, filters={"bogus": "x"})
        a.kill(9)
        a.wait()
    assert gone(root)


# -- images ---------------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists(ru.REGISTRY_BIN), reason="needs docker-registry")
def test_images_list_pull_remove(tmp_path):
    reg = ru.Registry(tmp_path / "registry")
    root = str(tmp_path / "root")
    try:
        pushed = reg.push_image("lib/tools", "1.0", ru.layered_image_layers()[:1],
                                config={"Cmd": ["sh"]})
        record = diyc.images.pull(f"{reg.host}/lib/tools:1.0", insecure=True, root=root)
        assert record["id"] == pushed["config"]
        assert [i["repo_tags"] for i in diyc.images.list(root=root)] == [[f"{reg.host}/lib/tools:1.0"]]
        # docker-py's images.list(name, filters): globs on the name, dangling, label
        diyc.images.pull(f"{reg.host}/lib/tools:1.0", insecure=True, root=root)
        from diyc.images.store import ImageStore
        ImageStore(root).tag(f"{reg.host}/lib/tools:1.0", "other:2")
        assert [i["repo_tags"] for i in diyc.images.list("other", root=root)] == [["other:2"]]
        assert [i["repo_tags"] for i in diyc.images.list(filters={"reference": "*/*/tools"}, root=root)] == \
            [[f"{reg.host}/lib/tools:1.0"]]
        assert diyc.images.list(filters={"dangling": True}, root=root) == []
        assert diyc.images.list("nothing*", root=root) == []
        with pytest.raises(diyc.InvalidArgument):
            diyc.images.list(filters={"before": "x"}, root=root)
        diyc.images.remove("other:2", root=root)
        assert diyc.run(f"{reg.host}/lib/tools:1.0", ["true"], network="none", root=root).returncode == 0
        lines = diyc.images.remove(f"{reg.host}/lib/tools:1.0", root=root)
        assert f"Untagged: {reg.host}/lib/tools:1.0" in lines and f"Deleted: {pushed['config']}" in lines
        assert diyc.images.list(root=root) == []
        with pytest.raises(diyc.ImageNotFound):
            diyc.images.remove("lib/tools:1.0", root=root)
    finally:
        reg.stop()


# -- asyncio --------------------------------------------------------------------------------

def test_arun_many_at_once(root):
    async def main():
        return await asyncio.gather(*(diyc.arun("busybox", f"sh -c 'echo {i}'", network="none", capture_output=True,
                                                root=root) for i in range(8)))
    results = asyncio.run(main())
    assert [(r.returncode, r.stdout) for r in results] == [(0, f"{i}\n".encode()) for i in range(8)]
    assert gone(root)


def test_arun_many_at_once_in_a_fresh_root(tmp_path):
    """Every run at once makes the built-in image the first time: threads
    of one process writing the same state files (their temp names differ)."""
    root = str(tmp_path / "fresh")

    async def main():
        return await asyncio.gather(*(diyc.arun("busybox", ["echo", str(i)], network="none", capture_output=True,
                                                root=root) for i in range(6)))
    results = asyncio.run(main())
    assert [r.stdout for r in results] == [f"{i}\n".encode() for i in range(6)]
    assert gone(root)


def test_arun_conventions_timeout_and_cancel(root):
    async def main():
        r = await diyc.arun("busybox", ["cat"], network="none", input="x", text=True, capture_output=True, root=root)
        assert r.stdout == "x"
        with pytest.raises(diyc.ContainerError):
            await diyc.arun("busybox", ["false"], network="none", check=True, root=root)
        with pytest.raises(subprocess.TimeoutExpired) as info:
            await diyc.arun("busybox", ["sh", "-c", "echo started; exec sleep 60"], network="none", timeout=0.3,
                            capture_output=True, root=root)
        assert info.value.stdout == b"started\n"
        task = asyncio.ensure_future(diyc.arun("busybox", ["sleep", "60"], network="none", root=root))
        while not container_records(root):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(TypeError) as info:
            await diyc.arun("busybox", ["true"], network="none", bogus=1, root=root)
        assert "diyc.arun()" in str(info.value)
    asyncio.run(main())
    assert gone(root)
    assert child_pids() == []


def test_async_with_container(root):
    async def main():
        async with diyc.Container.create("busybox", ["sleep", "60"], network="none", root=root) as c:
            c.start()
        assert gone(root)
        async with await diyc.AsyncContainer.create("busybox", ["sleep", "60"], network="none", root=root) as c:
            await c.start()
            assert (await c.exec_run("echo hi")).stdout == b"hi\n"
            with pytest.raises(diyc.ContainerTimeout):
                await c.wait(timeout=0.2)
            await c.kill(9)
            assert (await c.wait()).returncode == 137
    asyncio.run(main())
    assert gone(root)


# -- what the CLI does not pay for -------------------------------------------------------------

def test_cli_start_path_imports_none_of_the_library_extras(diyc_root):
    code = (f"import sys; sys.path.insert(0, {PKG_DIR!r}); from diyc.cli import main; "
            f"rc = main(['--root', {str(diyc_root)!r}, 'run', '--network', 'none', '--rm', 'busybox', 'true']); "
            "print(rc, sorted(m for m in sys.modules if m in {'asyncio', 'shlex', 'subprocess', "
            "'typing', 'inspect', '__future__', 'importlib', 'diyc.api', 'diyc.aio', 'diyc.stdio', "
            "'diyc.arguments', 'diyc.container_api', 'diyc.process_errors'}))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split("\n")[0] == "0 []", (out.stdout, out.stderr)
