"""`diyc events` (issue #12): the journal the lifecycle appends to, read
back in docker's line format, filtered, followed; concurrent writers and
the size cap on the journal itself."""

import json
import multiprocessing
import os
import re
import time

import pytest

from conftest import assert_one_line_error, wait_for

# 2026-11-29T21:00:00.000000000Z container start ID (image=..., name=...)
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (\w+) ([\w: ]+?) (\S+)(?: \((.*)\))?$")


def parse(stdout):
    """[(type, action, id, {attribute: value})] of docker's event lines."""
    out = []
    for line in stdout.splitlines():
        m = LINE.match(line)
        assert m, f"not docker's event line: {line!r}"
        attrs = dict(kv.split("=", 1) for kv in m.group(5).split(", ")) if m.group(5) else {}
        out.append((m.group(2), m.group(3), m.group(4), attrs))
    return out


def events(run_cli, since, *args):
    return parse(run_cli("events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}",
                         *args, check=True).stdout)


def name():
    return f"ev-{os.urandom(3).hex()}"


def test_a_runs_lifecycle(run_cli):
    n, since = name(), time.time()
    cid = run_cli("run", "-d", "--network", "none", "--name", n, "busybox", "sh", "-c", "exit 3",
                  check=True).stdout.strip()
    assert run_cli("wait", n, check=True).stdout == "3\n"
    run_cli("rm", n, check=True)
    got = events(run_cli, since, "--filter", f"container={n}")
    assert [(t, a) for t, a, _, _ in got] == [("container", "create"), ("container", "start"),
                                              ("container", "die"), ("container", "destroy")]
    assert {i for _, _, i, _ in got} == {cid}
    assert all(attrs["name"] == n and attrs["image"] == "busybox" for _, _, _, attrs in got)
    assert got[2][3]["exitCode"] == "3"


def test_stop_kill_pause_rename_and_filters(run_cli):
    n, since = name(), time.time()
    run_cli("run", "-d", "--network", "none", "--name", n, "busybox", "sleep", "60", check=True)
    run_cli("pause", n, check=True)
    run_cli("unpause", n, check=True)
    run_cli("rename", n, n + "x", check=True)
    run_cli("kill", "-s", "HUP", n + "x", check=True)  # sleep dies of it... as PID 1 it ignores it
    run_cli("stop", "-t", "1", n + "x", check=True)
    run_cli("rm", n + "x", check=True)
    got = events(run_cli, since, "--filter", f"container={n}", "--filter", f"container={n}x")
    actions = [a for _, a, _, _ in got]
    assert actions[:4] == ["create", "start", "pause", "unpause"]
    assert actions[4] == "rename" and got[4][3] == dict(got[4][3], name=n + "x", oldName=n)
    signals = [attrs["signal"] for _, a, _, attrs in got if a == "kill"]
    assert signals[:2] == ["1", "15"]  # HUP, then stop's TERM (then its KILL: sleep ignores TERM)
    assert actions[-3:] == ["die", "stop", "destroy"]
    only = events(run_cli, since, "--filter", f"container={n}x", "--filter", "event=kill")
    assert {a for _, a, _, _ in only} == {"kill"} and len(only) == len(signals)
    assert events(run_cli, since, "--filter", "type=network", "--filter", f"container={n}") == []


def test_oom_then_die(run_cli):
    n, since = name(), time.time()
    proc = run_cli("run", "--rm", "--network", "none", "--name", n, "-m", "16m", "busybox", "sh", "-c",
                   "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived")
    assert proc.returncode == 137, proc.stderr
    got = events(run_cli, since, "--filter", f"container={n}")
    assert [a for _, a, _, _ in got] == ["create", "start", "oom", "die", "destroy"]
    assert got[3][3]["exitCode"] == "137"


def test_image_and_network_events(run_cli):
    since, tag, net = time.time(), f"evimg:{os.urandom(2).hex()}", name()
    run_cli("tag", "busybox", tag, check=True)
    run_cli("rmi", tag, check=True)
    run_cli("network", "create", net, "--subnet", "10.253.9.0/24", check=True)
    run_cli("network", "rm", net, check=True)
    got = events(run_cli, since, "--filter", "type=image")
    assert [(a, attrs["name"]) for _, a, _, attrs in got] == [("tag", tag), ("untag", tag)]
    nets = events(run_cli, since, "--filter", "type=network")
    assert [(a, attrs["name"]) for _, a, _, attrs in nets] == [("create", net), ("destroy", net)]


def test_events_follows_until_interrupted(run_cli):
    n, since = name(), time.time()
    follower = run_cli.popen("events", "--since", f"{since:.6f}", "--filter", f"container={n}")
    try:
        run_cli("run", "--rm", "--network", "none", "--name", n, "busybox", "true", check=True)
        lines = []
        while len(lines) < 4:  # create, start, die, destroy, as they come
            lines.append(follower.stdout.readline())
            assert lines[-1], f"events ended: {follower.stderr.read()}"
        assert [a for _, a, _, _ in parse("".join(lines))] == ["create", "start", "die", "destroy"]
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait()


def test_json_format_is_dockers_event(run_cli):
    n, since = name(), time.time()
    run_cli("run", "--rm", "--network", "none", "--name", n, "busybox", "true", check=True)
    out = run_cli("events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}", "--filter",
                  f"container={n}", "--format", "{{json .}}", check=True).stdout
    first = json.loads(out.splitlines()[0])
    assert first["Type"] == "container" and first["Action"] == "create"
    assert first["Actor"]["Attributes"]["name"] == n and first["status"] == "create"
    assert first["time"] == first["timeNano"] // 10**9


def test_go_template_format(run_cli):
    n, since = name(), time.time()
    assert run_cli("run", "--rm", "--network", "none", "--name", n, "busybox", "sh", "-c",
                   "exit 5").returncode == 5
    out = run_cli("events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}", "--filter",
                  f"container={n}", "--filter", "event=die", "--format",
                  "{{.Type}}|{{.Action}}|{{.Actor.Attributes.exitCode}}|{{.Actor.Attributes.name}}|"
                  "{{.Status}}", check=True).stdout
    assert out == f"container|die|5|{n}|die\n"
    assert_one_line_error(run_cli("events", "--since", f"{since:.6f}", "--until",
                                  f"{time.time():.6f}", "--format", "{{.Nope}}"), contains="Nope")


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "invalid --since"),
    (["--until", "1h2x"], "invalid --until"),
    (["--filter", "colour=red"], "invalid filter 'colour'"),
    (["--filter", "event"], "expected KEY=VALUE"),
    (["stray"], "accepts no arguments"),
])
def test_bad_events_input(run_cli, args, message):
    assert_one_line_error(run_cli("events", *args), contains=message)


# -- the journal itself (the library) ------------------------------------------------

def _write_many(root_path, tag, count):
    from diyc import events as journal
    from diyc.state import Root
    root = Root(root_path)
    for i in range(count):
        journal.emit(root, "container", "start", f"{tag}-{i}", {"pad": tag * 2000})


def test_concurrent_writers_never_interleave(tmp_path):
    (tmp_path / "locks").mkdir()
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_write_many, args=(str(tmp_path), t, 200)) for t in "abcd"]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
        assert w.exitcode == 0
    # (1.6 MB: the journal was rotated once on the way)
    lines = b"".join((tmp_path / f).read_bytes() for f in ("events.log.1", "events.log")).splitlines()
    assert len(lines) == 800
    ids = [json.loads(line)["Actor"]["ID"] for line in lines]  # every line whole
    for t in "abcd":
        assert [i for i in ids if i.startswith(t)] == [f"{t}-{i}" for i in range(200)]


def test_journal_is_capped_and_rotated(tmp_path, monkeypatch):
    from diyc import events as journal
    from diyc.state import Root
    (tmp_path / "locks").mkdir()
    monkeypatch.setattr(journal, "MAX_SIZE", 4096)
    root = Root(str(tmp_path))
    for i in range(100):
        journal.emit(root, "network", "create", f"n{i}", {"name": f"n{i}"})
    current = tmp_path / "events.log"  # (gone for a moment if the last write rotated it)
    assert (current.stat().st_size if current.exists() else 0) <= 4096
    assert os.path.getsize(tmp_path / "events.log.1") <= 4096 + 200
    kept = [e["Actor"]["ID"] for e in journal.read(root)]
    assert kept == [f"n{i}" for i in range(100 - len(kept), 100)]  # the newest, in order
    assert 20 < len(kept) < 100


def test_a_journal_that_cannot_be_written_does_not_fail_a_run(run_cli, diyc_root):
    """A full disk or the like: the container still runs, one warning says it."""
    journal = f"{diyc_root}/events.log"
    os.rename(journal, journal + ".saved")
    os.mkdir(journal)  # EISDIR for every writer
    try:
        proc = run_cli("run", "--rm", "--network", "none", "busybox", "echo", "ran")
        assert proc.returncode == 0 and proc.stdout == "ran\n"
        assert proc.stderr.count("diyc: warning: the events journal cannot be written") == 1
    finally:
        os.rmdir(journal)
        os.rename(journal + ".saved", journal)
    wait_for(lambda: os.path.isfile(journal))


def test_library_events_as_docker_py(diyc_root):
    import diyc
    since = time.time()
    with diyc.Container.create("busybox", ["sleep", "60"], network="none",
                               root=str(diyc_root)) as c:
        c.start(detach=True)
        c.pause()
        c.unpause()
    got = list(diyc.events.events(root=str(diyc_root), since=since, until=time.time(), decode=True,
                                  filters={"container": c.id}))
    assert [e["Action"] for e in got][:4] == ["create", "start", "pause", "unpause"]
    assert got[-1]["Action"] == "destroy" and got[0]["Actor"]["ID"] == c.id
    raw = next(diyc.events.events(root=str(diyc_root), since=since, until=time.time(),
                                  filters={"container": c.id}))
    assert json.loads(raw) == got[0]


def test_pull_and_delete_events(run_cli, tmp_path):
    import registry_util as ru
    registry = ru.Registry(tmp_path / "registry")
    try:
        registry.push_image("evpull", "1", [(ru.busybox_layer(), "gzip")])
        ref, since = f"{registry.host}/evpull:1", time.time()
        run_cli("pull", "-q", "--insecure", ref, check=True)
        run_cli("rmi", ref, check=True)
    finally:
        registry.stop()
    got = events(run_cli, since, "--filter", "type=image")
    assert [(a, attrs["name"]) for _, a, _, attrs in got] == [("pull", ref), ("untag", ref),
                                                              ("delete", ref)]
    assert got[1][2] == got[2][2] and got[2][2].startswith("sha256:")
