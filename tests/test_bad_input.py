"""Rejected input, command by command: every command and option of
`diyc --help` fed wrong values (missing, empty, negative, huge, non-ASCII
digits, underscores, spaces, wrong units, unknown flags, wrong number of
arguments), images whose config has wrong types or NUL bytes, and the same
from the library.  Each is one `diyc: ...` line, exit 125, no traceback,
and nothing changed in the store."""

import io
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import assert_one_line_error, container_records  # noqa: E402

HUGE = "99999999999999999999"
VERY_LONG = "9" * 5000  # int() of more than 4300 digits raises in Python 3.11


def store_state(root):
    return {d: sorted(os.listdir(f"{root}/{d}")) if os.path.isdir(f"{root}/{d}") else []
            for d in ("containers", "names", "images", "layers", "tmp", "volumes", "networks")}


def run_rows(prefix, values, suffix=("busybox", "true")):
    """{id: argv} of `run --rm PREFIX VALUE SUFFIX` for each value."""
    return {f"run{prefix}={v!r}"[:60]: ["run", "--network", "none", "--rm", prefix, v, *suffix] for v in values}


# -- the table ----------------------------------------------------------------------

BAD_NUMBERS = ["", " 5", "5 ", "５", "1_0", "0x10", "+5", "nan", "inf", "1e3", HUGE, VERY_LONG, "²"]

ROWS = {}
# `diyc run`: every option with a value
ROWS.update(run_rows("--cpus", BAD_NUMBERS + ["-1", "0", "1.5.5", "2000", "1e400", ".", "0.001"]))
ROWS.update(run_rows("--pids-limit", BAD_NUMBERS + ["0", "-2", "1.5"]))
ROWS.update(run_rows("-m", BAD_NUMBERS + ["-64m", "64x", "１g", "1_000m", "64mm", "64bi", "1.5.3m",
                                          "m", "1e400", "1m", "99999999999p"]))
ROWS.update(run_rows("--oom-score-adj", BAD_NUMBERS + ["1001", "-1001", "1.5", "-"]))
ROWS.update(run_rows("--ulimit", [f"nofile={HUGE}", f"nofile=1:{HUGE}", f"nofile={VERY_LONG}", "nofile=",
                                  "nofile", "=5", "nofile=1:", "nofile=:5", "nofile=１", "nofile=1_0",
                                  "nofile=-2", "nofile=5:1", "nofile= 5", "core=-1:5", "bogus=1"]))
ROWS.update(run_rows("--restart", ["on-failure:x", "on-failure:-1", "on-failure:1_0", "on-failure:５",
                                   f"on-failure:{VERY_LONG}", "always:3", "bogus", "on-failure: 1"]))
ROWS.update(run_rows("--log-opt", ["max-size=1_0", "max-size=", "max-size=-1", "max-size=１m",
                                   "max-size=nan", "bogus=1", "max-size"]))
ROWS.update(run_rows("--tmpfs", ["/t:size=abc", "/t:size=-1", "/t:size=１m", "/t:size=1_0",
                                 "/t:mode=999", "/t:mode=", "/t:mode=１", "relative", "/t:nr_inodes=x"]))
ROWS.update(run_rows("--sysctl", ["kernel.panic=1", "=1", "net.ipv4.ip_forward", "net/../x=1"]))
ROWS.update(run_rows("--cap-add", ["bogus", ""]))
ROWS.update(run_rows("--cap-drop", ["bogus", ""]))
ROWS.update(run_rows("--security-opt", ["bogus", "seccomp=/nonexistent.json", "no-new-privileges=maybe",
                                        "apparmor=x", ""]))
ROWS.update(run_rows("--device", ["/nonexistent", "/dev/null:/x:rwz", "/etc/passwd", "/dev/null:a:b:c"]))
ROWS.update(run_rows("-v", ["/a:rel", "x:/y:rx", ":/x", "/a:", "a:b:c:d", "/a/../b:/c", "",
                            "/tmp:/x:ro,rw", "/tmp:/x:rslave,shared"]))
ROWS.update(run_rows("--userns", ["bogus", "AUTO"]))
ROWS.update(run_rows("--network", ["bogus", "", "container:", "container:nosuch"]))
ROWS.update(run_rows("--name", ["", "a/b", "é", "-x", "x" * 200]))
ROWS.update(run_rows("--hostname", ["", "bad_host!", "x" * 65, "é"]))
ROWS.update(run_rows("-w", ["", "relative"]))
ROWS.update(run_rows("-e", ["", "=x"]))
ROWS.update(run_rows("-u", ["nosuchuser", "0:nosuchgroup", "-1", "４", "1_0", "4294967295", HUGE,
                            VERY_LONG, "0:-1", "0:４", f"0:{HUGE}"]))
ROWS.update(run_rows("--memory-swap", ["64m"]))  # without --memory
ROWS.update({
    f"run-swap={v!r}": ["run", "--network", "none", "--rm", "-m", "64m", "--memory-swap", v, "busybox", "true"]
    for v in ["32m", "x", "-2", "１g", "1_0g", "", "nan"]})
ROWS.update({
    f"run-publish={v!r}": ["run", "--rm", "--network", "bridge", "-p", v, "busybox", "true"]
    for v in ["８０:80", "80:８０", "1_0:80", " 80:80", "80:80 ", "80:0", "65536:80", "80-",
              "80:80/sctp", "a:b:c:d", "", f"{HUGE}:80", f"{VERY_LONG}:80", "１.2.3.4:80:80",
              "80-90:80-85", "90-80:90-80", "+80:80"]})
ROWS.update({
    f"run-ip={v!r}": ["run", "--rm", "--network", "bridge", "--ip", v, "busybox", "true"]
    for v in ["１.2.3.4", "1.2.3.4 ", "1.2.3", "", "1.2.3.256", "1.2.3.4/24", "1_0.0.0.1"]})
ROWS.update({
    "run-ip-without-bridge": ["run", "--network", "none", "--rm", "--ip", "10.1.1.1", "busybox", "true"],
    "run-publish-without-bridge": ["run", "--network", "none", "--rm", "-p", "80:80", "busybox", "true"],
    "run-restart-with-rm": ["run", "--network", "none", "--rm", "-d", "--restart", "always", "busybox", "true"],
    "run-missing-image": ["run"],
    "run-missing-image-after-flags": ["run", "--network", "none", "--rm", "-d"],
    "run-missing-value": ["run", "--name"],
    "run-missing-value-short": ["run", "-m"],
    "run-unknown-flag": ["run", "--bogus", "busybox", "true"],
    "run-unknown-short-flag": ["run", "-itZ", "busybox", "true"],
    "run-fullwidth-flag": ["run", "--ｒｍ", "busybox", "true"],
    "run-flag-with-value": ["run", "--rm=maybe", "busybox", "true"],
    "run-bad-image-reference": ["run", "--network", "none", "--rm", "Bad:Name", "true"],
    "run-empty-image": ["run", "--network", "none", "--rm", "", "true"],
    # a named volume is only made once everything else was checked
    "run-volume-then-missing-image": ["run", "--network", "none", "--rm", "-v", "badrowvol:/x", "nosuchimage", "true"],
    "run-volume-then-unknown-user": ["run", "--network", "none", "--rm", "-v", "badrowvol:/x", "-u", "nosuch", "busybox",
                                     "true"],
})
# the other commands: missing, extra or malformed arguments
ROWS.update({
    "global-unknown-flag": ["--bogus", "ps"],
    "global-root-missing": ["--root"],
    "global-root-empty": ["--root=", "ps"],
    "unknown-command": ["bogus"],
    "ps-format": ["ps", "--format", "{{.Bogus"],
    "ps-format-missing": ["ps", "--format"],
    "ps-unknown-flag": ["ps", "--bogus"],
    "ps-argument": ["ps", "extra"],
    "rm-none": ["rm"],
    "rm-force-none": ["rm", "-f"],
    "rm-unknown-flag": ["rm", "--bogus", "x"],
    "import-none": ["import"],
    "import-one": ["import", "a.tar"],
    "import-three": ["import", "a", "b", "c"],
    "import-missing-file": ["import", "/nonexistent.tar", "x"],
    "images-unknown-flag": ["images", "--bogus"],
    "images-two-arguments": ["images", "busybox", "x"],
    "rmi-none": ["rmi"],
    "rmi-nosuch": ["rmi", "nosuchimage"],
    "tag-none": ["tag"],
    "tag-one": ["tag", "busybox"],
    "tag-three": ["tag", "busybox", "a", "b"],
    "tag-bad-target": ["tag", "busybox", "Bad:Name"],
    "tag-nosuch": ["tag", "nosuchimage", "x"],
    "inspect-none": ["inspect"],
    "inspect-nosuch": ["inspect", "nosuchthing"],
    "cleanup-argument": ["cleanup", "extra"],
    "start-none": ["start"],
    "start-unknown-flag": ["start", "--bogus", "x"],
    "stop-none": ["stop"],
    "stop-t-missing": ["stop", "-t"],
    "restart-none": ["restart"],
    "kill-none": ["kill"],
    "kill-s-missing": ["kill", "-s"],
    "wait-none": ["wait"],
    "wait-unknown-flag": ["wait", "--bogus", "x"],
    "logs-none": ["logs"],
    "logs-two": ["logs", "a", "b"],
    "logs-tail-missing": ["logs", "--tail"],
    "exec-none": ["exec"],
    "exec-no-command": ["exec", "c"],
    "exec-unknown-flag": ["exec", "--bogus", "c", "true"],
    "exec-e-missing": ["exec", "-e"],
    "exec-nosuch": ["exec", "nosuchcontainer", "true"],
    "attach-none": ["attach"],
    "attach-two": ["attach", "a", "b"],
    "attach-unknown-flag": ["attach", "--bogus", "x"],
    "container-none": ["container"],
    "container-bogus": ["container", "bogus"],
    "container-prune-argument": ["container", "prune", "extra"],
    "stats-unknown-flag": ["stats", "--bogus"],
    "stats-nosuch": ["stats", "--no-stream", "nosuchcontainer"],
    "volume-none": ["volume"],
    "volume-bogus": ["volume", "bogus"],
    "volume-create-none": ["volume", "create"],
    "volume-create-two": ["volume", "create", "a", "b"],
    "volume-create-slash": ["volume", "create", "a/b"],
    "volume-create-empty": ["volume", "create", ""],
    "volume-create-dots": ["volume", "create", ".."],
    "volume-rm-none": ["volume", "rm"],
    "volume-rm-nosuch": ["volume", "rm", "nosuchvolume"],
    "volume-ls-argument": ["volume", "ls", "extra"],
    "network-none": ["network"],
    "network-bogus": ["network", "bogus"],
    "network-create-none": ["network", "create"],
    "network-create-two": ["network", "create", "a", "b"],
    "network-create-driver": ["network", "create", "x", "--driver", "overlay"],
    "network-create-subnet-missing": ["network", "create", "x", "--subnet"],
    "network-rm-none": ["network", "rm"],
    "network-rm-nosuch": ["network", "rm", "nosuchnet"],
    "network-inspect-none": ["network", "inspect"],
    "network-inspect-nosuch": ["network", "inspect", "nosuchnet"],
    "network-ls-argument": ["network", "ls", "extra"],
    "network-prune-argument": ["network", "prune", "extra"],
    "pull-none": ["pull"],
    "pull-two": ["pull", "a", "b"],
    "pull-bad-reference": ["pull", "Bad:Name"],
    "pull-platform-missing": ["pull", "--platform"],
    "pull-platform-bad": ["pull", "--platform", "bogus", "127.0.0.1:1/x"],
    "login-none": ["login", "-u", "u", "-p", "p"],
    "login-two": ["login", "-u", "u", "-p", "p", "a", "b"],
    "login-u-missing": ["login", "-u"],
    "login-empty-user": ["login", "-u", "", "-p", "p", "127.0.0.1:1"],
    "logout-none": ["logout"],
    "logout-two": ["logout", "a", "b"],
    "load-missing-file": ["load", "-i", "/nonexistent.tar"],
    "load-argument": ["load", "x"],
    "load-i-missing": ["load", "-i"],
    "load-not-an-archive": ["load", "-i", "/etc/passwd"],
    "load-directory": ["load", "-i", "/"],
    "save-none": ["save"],
    "save-o-missing": ["save", "-o"],
    "save-no-directory": ["save", "-o", "/nonexistent/dir/x.tar", "busybox"],
    "save-nosuch-image": ["save", "-o", "/nonexistent/dir/x.tar", "nosuchimage"],
    "image-none": ["image"],
    "image-bogus": ["image", "bogus"],
    "image-inspect-none": ["image", "inspect"],
    "image-inspect-nosuch": ["image", "inspect", "nosuchimage"],
})
ROWS.update({f"stop-t={v!r}": ["stop", "-t", v, "nosuchcontainer"]
             for v in BAD_NUMBERS + ["-1", "1e400", "-0.5", str(400 * 86400)]})
ROWS.update({f"restart-t={v!r}": ["restart", "-t", v, "nosuchcontainer"] for v in ["nan", "1e400", "５"]})
ROWS.update({f"kill-s={v!r}": ["kill", "-s", v, "nosuchcontainer"]
             for v in ["99999", "65", "0", "-1", "", "SIG_DFL", "_IGN", "SIG_BLOCK", "５", "1_0", "NOPE",
                       HUGE, VERY_LONG, " 9", "SIGRTMIN+1"]})
ROWS.update({f"logs-tail={v!r}": ["logs", "--tail", v, "nosuchcontainer"]
             for v in ["x", "-1", "５", "²", "", "1_0", " 1", "1.5", VERY_LONG]})
ROWS.update({f"network-subnet={v!r}": ["network", "create", "tbadnet", "--subnet", v]
             for v in ["１０.0.0.0/24", "10.0.0.0/2_4", "10.0.0.0/９", "", "10.0.0.0/99999999",
                       f"10.0.0.0/{VERY_LONG}", "10.0.0.0/ 24", "10.0.0.0", "10.0.0.1/24"]})


# A container that does not exist: one line and exit 1, as docker's
# commands (run alone says 125: nothing started).
MISSING = {case: ROWS.pop(case) for case in ("inspect-nosuch", "exec-nosuch", "stats-nosuch")}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_missing_object_is_one_line_exit_1_and_changes_nothing(run_cli, diyc_root, case):
    before = store_state(diyc_root)
    line = assert_one_line_error(run_cli(*MISSING[case], input=""), 1)
    assert "nosuch" in line.lower() and "no such" in line.lower(), line
    assert store_state(diyc_root) == before


@pytest.mark.parametrize("case", sorted(ROWS))
def test_bad_input_is_one_line_and_changes_nothing(run_cli, diyc_root, case):
    before = store_state(diyc_root)
    proc = run_cli(*ROWS[case], input="")
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert_one_line_error(proc, 125)
    assert store_state(diyc_root) == before


# -- images with a wrongly typed config ---------------------------------------------

BAD_CONFIGS = {
    "env-int": {"Env": 5},
    "env-list-of-non-strings": {"Env": [1, None]},
    "env-string": {"Env": "PATH=/bin"},
    "env-object": {"Env": {"PATH": "/bin"}},
    "env-nul": {"Env": ["A=x\u0000y"]},
    "user-int": {"User": 5},
    "user-list": {"User": ["root"]},
    "user-nul": {"User": "ro\u0000ot"},
    "workdir-int": {"WorkingDir": 5},
    "workdir-nul": {"WorkingDir": "/tmp\u0000/x"},
    "cmd-list-of-non-strings": {"Cmd": [1, None]},
    "cmd-int": {"Cmd": 5},
    "cmd-object": {"Cmd": {"a": 1}},
    "cmd-nul": {"Cmd": ["echo", "a\u0000b"]},
    "entrypoint-int": {"Entrypoint": 5},
    "entrypoint-null-item": {"Entrypoint": [None]},
    "entrypoint-nul": {"Entrypoint": ["/bin/echo\u0000x"]},
    "labels-list": {"Labels": ["a"]},
    "labels-int-value": {"Labels": {"a": 1}},
    "exposedports-list": {"ExposedPorts": ["80/tcp"]},
    "exposedports-int-value": {"ExposedPorts": {"80/tcp": 5}},
    "volumes-list": {"Volumes": ["/data"]},
    "volumes-string": {"Volumes": "/data"},
    "stopsignal-int": {"StopSignal": 9},
    "stopsignal-list": {"StopSignal": ["TERM"]},
    "shell-string": {"Shell": "sh"},
    "onbuild-int": {"OnBuild": 5},
    "config-list": ["Cmd", "true"],
    "config-string": "Cmd=true",
    "config-int": 5,
}
GOOD_CONFIGS = {
    # moby's StrSlice: a string Entrypoint or Cmd is a list of one, not split
    "string-entrypoint-and-cmd": {"Entrypoint": "/bin/echo", "Cmd": "hello  world",
                                  "Env": ["PATH=/bin"]},
    "null-fields": {"Entrypoint": None, "Cmd": ["echo", "nulls"], "Env": None, "User": None,
                    "WorkingDir": None, "Labels": None, "ExposedPorts": None, "Volumes": None},
    "string-entrypoint-with-space": {"Entrypoint": "/bin/echo hello"},
    "maps": {"Cmd": ["echo", "maps"], "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}},
             "Volumes": {"/data": {}}, "StopSignal": "SIGTERM"},
}


def _sha256(data):
    import hashlib
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _docker_save_archive(path, configs):
    """One docker-save archive holding an image per {tag: container config},
    all on the busybox layer."""
    from diyc.images.store import busybox_rootfs_tar
    layer = busybox_rootfs_tar()
    files = [("layer/layer.tar", layer)]
    manifest = []
    for tag, cfg in configs.items():
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": cfg,
                             "rootfs": {"type": "layers", "diff_ids": [_sha256(layer)]}}).encode()
        name = f"{_sha256(config)[7:]}.json"
        files.append((name, config))
        manifest.append({"Config": name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]})
    files.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(path, "w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _tag(case):
    return f"badcfg/{case}:1"


@pytest.fixture(scope="module")
def config_images(run_cli, tmp_path_factory):
    path = tmp_path_factory.mktemp("badcfg") / "images.tar"
    configs = {_tag(case): cfg for case, cfg in {**BAD_CONFIGS, **GOOD_CONFIGS}.items()}
    _docker_save_archive(path, configs)
    run_cli("load", "-q", "-i", path, check=True)
    yield
    run_cli("rmi", *configs, check=True)


@pytest.mark.parametrize("with_command", [False, True], ids=["image-cmd", "given-cmd"])
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_image_config_with_wrong_types_is_refused(run_cli, diyc_root, config_images, case,
                                                  with_command):
    before = store_state(diyc_root)
    proc = run_cli("run", "--network", "none", "--rm", _tag(case), *(["true"] if with_command else []))
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = assert_one_line_error(proc, 125, contains="image config")
    if isinstance(BAD_CONFIGS[case], dict):
        (field,) = BAD_CONFIGS[case]
        assert field in line, line
    assert store_state(diyc_root) == before
    # and kept containers are not created either, nor the volume they name
    proc = run_cli("run", "--network", "none", "-v", "badcfgvol:/x", _tag(case), "true")
    assert_one_line_error(proc, 125, contains="image config")
    assert store_state(diyc_root) == before


def test_image_config_strings_taken_as_docker_takes_them(run_cli, config_images):
    proc = run_cli("run", "--network", "none", "--rm", _tag("string-entrypoint-and-cmd"))
    assert (proc.returncode, proc.stdout) == (0, "hello  world\n"), proc.stderr
    for case, word in (("null-fields", "nulls"), ("maps", "maps")):
        proc = run_cli("run", "--network", "none", "--rm", _tag(case))
        assert (proc.returncode, proc.stdout) == (0, f"{word}\n"), proc.stderr
    # one path with a space, as docker runs it (it used to run "/", the first letter)
    proc = run_cli("run", "--network", "none", "--rm", _tag("string-entrypoint-with-space"))
    assert_one_line_error(proc, 127, contains="/bin/echo hello")


# -- stop -t: a timeout that is not finite never sent SIGKILL ---------------------------

def test_stop_with_bad_timeout_refused_then_good_one_kills(run_cli):
    run_cli("run", "--network", "none", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; sleep 60",
            check=True)
    try:
        for value in ("nan", "1e400", "inf", VERY_LONG):
            assert_one_line_error(run_cli("stop", "-t", value, "stubborn", timeout=30), 125)
        assert json.loads(run_cli("inspect", "stubborn", check=True).stdout)[0]["State"]["Status"] == "running"
        proc = run_cli("stop", "-t", "0", "stubborn", timeout=30)
        assert (proc.returncode, proc.stdout) == (0, "stubborn\n"), proc.stderr
        state = json.loads(run_cli("inspect", "stubborn", check=True).stdout)[0]["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    finally:
        run_cli("rm", "-f", "stubborn")


def test_kill_signal_numbers_and_names(run_cli):
    run_cli("run", "--network", "none", "-d", "--name", "killme", "busybox", "sleep", "60", check=True)
    try:
        for bad in ("99999", "SIG_DFL", "_IGN", "５"):
            assert_one_line_error(run_cli("kill", "-s", bad, "killme"), 125)
        proc = run_cli("kill", "-s", "9", "killme")
        assert proc.returncode == 0, proc.stderr
        assert run_cli("wait", "killme", check=True).stdout == "137\n"
    finally:
        run_cli("rm", "-f", "killme")


# -- numbers that are accepted --------------------------------------------------------

@pytest.mark.parametrize("flags", [
    ("--cpus", "0.5"), ("--cpus", ".5"), ("--cpus", "2"), ("--pids-limit", "-1"), ("--pids-limit", "64"),
    ("-m", "64m"), ("-m", "64MiB"), ("-m", "64mb"), ("-m", "0.5g"), ("-m", str(64 << 20)),
    ("--ulimit", "nofile=1024:2048"), ("--ulimit", "core=-1"), ("--oom-score-adj", "500"),
    ("--tmpfs", "/t:size=1m,mode=1777"), ("-u", "1000:1000"),
], ids=lambda f: "=".join(f) if isinstance(f, tuple) else str(f))
def test_good_numbers_still_accepted(run_cli, flags):
    proc = run_cli("run", "--network", "none", "--rm", *flags, "busybox", "true")
    assert proc.returncode == 0, proc.stderr


# -- the library ------------------------------------------------------------------------

@pytest.mark.parametrize("command, options, word", [
    ("echo 'unclosed", {}, "command"),
    (["echo", "a\0b"], {}, "command[1]"),
    (["echo", 5], {}, "command"),
    (["true"], {"env": {"A": ["1"]}}, "env"),
    (["true"], {"env": ["A=\0"]}, "env[0]"),
    (["true"], {"env": "A=1"}, "env"),
    (["true"], {"hostname": 5}, "hostname"),
    (["true"], {"hostname": "a\0b"}, "hostname"),
    (["true"], {"workdir": "/tmp\0/x"}, "workdir"),
    (["true"], {"user": 0}, "user"),
    (["true"], {"user": "root\0"}, "user"),
    (["true"], {"entrypoint": ["/bin/echo\0"]}, "entrypoint[0]"),
    (["true"], {"entrypoint": 5}, "entrypoint"),
    (["true"], {"volumes": "/a:/b"}, "volumes"),
    (["true"], {"tmpfs": ["/t\0x"]}, "tmpfs[0]"),
    (["true"], {"name": b"x"}, "name"),
    (["true"], {"memory": True}, "memory"),
    (["true"], {"memory": [64]}, "memory"),
    (["true"], {"cpus": float("nan")}, "cpus"),
    (["true"], {"cpus": float("inf")}, "cpus"),
    (["true"], {"cpus": "nan"}, "cpus"),
    (["true"], {"pids_limit": 1.5}, "pids-limit"),
    (["true"], {"oom_score_adj": "５"}, "oom-score-adj"),
    (["true"], {"ulimits": ["nofile=1\0"]}, "ulimits[0]"),
    (["true"], {"ulimits": [f"nofile={HUGE}"]}, "ulimit"),
], ids=lambda v: repr(v)[:40])
def test_library_refuses_wrong_types_and_nul_bytes(diyc_root, command, options, word):
    import diyc
    with pytest.raises(diyc.InvalidArgument) as info:
        diyc.run("busybox", command, network="none", root=diyc_root, **options)
    assert word in str(info.value), str(info.value)
    assert container_records(diyc_root) == []


def test_library_takes_numbers_as_numbers(diyc_root):
    import diyc
    r = diyc.run("busybox", ("sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null; ulimit -n"),
                 network="none", memory=64 << 20, memory_swap=-1, cpus=0.5, pids_limit=64, oom_score_adj=0,
                 ulimits=["nofile=1000"], root=diyc_root, capture_output=True)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split()[-1] == b"1000"


@pytest.mark.parametrize("change, field", [
    (lambda s: s["process"]["args"].append("a\0b"), "process.args[1]"),
    (lambda s: s["process"].update(env="PATH=/bin"), "process.env"),
    (lambda s: s["process"].update(env=["A=\0"]), "process.env[0]"),
    (lambda s: s["process"].update(cwd=5), "process.cwd"),
    (lambda s: s.update(hostname="a\0"), "hostname"),
    (lambda s: s["mounts"].append({"destination": "/x\0y", "type": "tmpfs", "source": "tmpfs"}),
     "mounts[0].destination"),
    (lambda s: s["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1 << 64, "hard": 1}]),
     "RLIMIT_NOFILE"),
    (lambda s: s["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": "5", "hard": 5}]),
     "RLIMIT_NOFILE"),
])
def test_oci_spec_nul_bytes_and_wrong_types_refused(change, field):
    from diyc import InvalidArgument
    from diyc.oci.spec import validate
    spec = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "mounts": [],
            "process": {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"]},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}}
    validate(spec)
    change(spec)
    with pytest.raises(InvalidArgument) as info:
        validate(spec)
    assert field in str(info.value), str(info.value)


@pytest.mark.parametrize("args", [
    ["run", "--preserve-fds", "５", "--bundle", "/nonexistent", "x"],
    ["run", "--preserve-fds", "²", "--bundle", "/nonexistent", "x"],
    ["run", "--preserve-fds", "1024", "--bundle", "/nonexistent", "x"],
], ids=["fullwidth", "superscript", "too-many"])
def test_diyc_runc_numbers_are_strict(tmp_path, args):
    """diyc-runc (runc's command line) takes its numbers through the same parser."""
    import subprocess
    runc = [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from diyc.oci.runc_cli import main; sys.exit(main())", str(Path(__file__).resolve().parent.parent)]
    if os.environ.get("DIYC_PKG_DIR"):
        runc[-1] = os.environ["DIYC_PKG_DIR"]
    proc = subprocess.run(runc + ["--root", str(tmp_path), *args], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("diyc-runc: invalid --preserve-fds"), line


def test_oci_exec_process_file_nul_and_types_refused():
    """`diyc-runc exec --process FILE`: the process is checked before the
    container is even looked at."""
    from diyc import InvalidArgument
    from diyc.oci.spec import exec_process
    for process, field in (({"args": ["sh", "a\0"], "cwd": "/"}, "process.args[1]"),
                           ({"args": "sh", "cwd": "/"}, "process.args"),
                           ({"args": ["sh"], "env": "A=1"}, "process.env")):
        with pytest.raises(InvalidArgument) as info:
            exec_process(None, process)
        assert field in str(info.value), str(info.value)


def test_library_kill_refuses_bad_signals(diyc_root):
    import diyc
    c = diyc.Container.create("busybox", ["sleep", "60"], network="none", root=diyc_root)
    try:
        for bad in (99999, -1, "９", 1.5, True):
            with pytest.raises(diyc.InvalidArgument):
                c.kill(bad)
    finally:
        c.remove(force=True)
