"""The `run` flags docker users type without thinking (issue #12), driven
as a docker user drives them: --env-file, -l/--label, --label-file,
--add-host, --dns*, --mount, -v ./relative, -p ranges, --stop-signal,
--stop-timeout, -t's TERM, --restart in the foreground, the bridge as the
default network and `diyc system reset`.

Containers that need no network say --network none; what needs a bridge
runs inside a test network namespace (netns_util), reached on its
loopback only."""

import json
import os

import pytest

from conftest import assert_one_line_error, built_image, wait_for
from netns_util import NsCli, host_get, netns

NONE = ("--network", "none")


def inspect(run_cli, name):
    return json.loads(run_cli("inspect", name, check=True).stdout)[0]


# -- --env-file --------------------------------------------------------------------

def test_env_file_as_docker_reads_it(run_cli, tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text("# a comment\n\nA=1\n   B=two words\nQUOTED=\"kept\"\nFROM_CALLER\n"
                        "NOT_IN_CALLER\nC=from-file\n")
    second = tmp_path / "more.env"
    second.write_text("D=4\nA=second-file\n")
    proc = run_cli("run", *NONE, "--rm", "--env-file", env_file, "--env-file", second, "-e", "C=from-e",
                   "busybox", "env", env={"FROM_CALLER": "caller's"}, check=True)
    env = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert env["A"] == "second-file"          # files in order, the later one wins
    assert env["B"] == "two words"            # leading whitespace dropped, the rest kept
    assert env["QUOTED"] == '"kept"'          # no shell unquoting
    assert env["FROM_CALLER"] == "caller's"   # a bare KEY takes the caller's value
    assert "NOT_IN_CALLER" not in env         # ... and is left out when the caller has none
    assert env["C"] == "from-e"               # -e comes after the files
    assert env["D"] == "4"


def test_a_bare_key_the_caller_lacks_unsets_it(run_cli, tmp_path):
    """docker's -e KEY / an env file's KEY line: the caller's value, or
    when the caller has none, KEY unset in the container (the image's,
    or an earlier entry's, goes)."""
    env_file = tmp_path / "app.env"
    env_file.write_text("FROM_FILE=1\nFROM_FILE\nKEPT=2\n")
    assert not {"FROM_E", "FROM_FILE", "KEPT"} & set(os.environ)
    proc = run_cli("run", *NONE, "--rm", "--env-file", env_file, "-e", "FROM_E=1", "-e", "FROM_E",
                   "busybox", "sh", "-c", 'echo "${FROM_E-unset} ${FROM_FILE-unset} ${KEPT-unset}"',
                   check=True)
    assert proc.stdout.split() == ["unset", "unset", "2"]


def test_env_file_lines_end_at_newlines_only(run_cli, tmp_path):
    """docker reads lines as bufio.ScanLines does: split at \\n, a
    trailing \\r dropped; a form feed or U+2028 inside a value is the
    value's (str.splitlines would cut the line there)."""
    env_file = tmp_path / "app.env"
    env_file.write_bytes("FF=a\fb\r\nLS=c\u2028d\nCR=e\rf\n".encode())
    proc = run_cli("run", *NONE, "--rm", "--env-file", env_file, "busybox", "sh", "-c",
                   'echo "${#CR}"; env -0', check=True)
    length, _, entries = proc.stdout.partition("\n")  # (text mode: a \r would read as \n)
    env = dict(entry.split("=", 1) for entry in entries.split("\0") if entry)
    assert (env["FF"], env["LS"], length) == ("a\fb", "c\u2028d", "3")  # CR: e, \r, f
    assert "b" not in env and "d" not in env


@pytest.mark.parametrize("content, message", [
    ("GOOD=1\nBAD KEY=2\n", ":2: invalid name 'BAD KEY'"),
    ("=value\n", ":1: no variable name"),
])
def test_bad_env_file_is_one_line(run_cli, tmp_path, content, message):
    path = tmp_path / "bad.env"
    path.write_text(content)
    assert_one_line_error(run_cli("run", *NONE, "--rm", "--env-file", path, "busybox", "true"),
                          contains=message)


def test_missing_env_file_is_one_line(run_cli, tmp_path):
    assert_one_line_error(run_cli("run", *NONE, "--rm", "--env-file", tmp_path / "nope", "busybox", "true"),
                          contains="No such file or directory")


# -- labels ------------------------------------------------------------------------

def test_labels_and_label_file_go_into_the_record(run_cli, tmp_path):
    label_file = tmp_path / "labels"
    label_file.write_text("# team labels\ntier=backend\nowner=ops\nempty\n")
    run_cli("run", *NONE, "--name", "labelled", "-l", "app=web", "--label", "owner=dev",
            "--label-file", label_file, "busybox", "true", check=True)
    try:
        rec = inspect(run_cli, "labelled")
        # the file first, then --label; a bare key is an empty label
        assert rec["Config"]["Labels"] == {"tier": "backend", "owner": "dev", "empty": "", "app": "web"}
    finally:
        run_cli("rm", "labelled", check=True)


# -- /etc/hosts and /etc/resolv.conf ------------------------------------------------

def test_add_host_and_dns_flags_without_a_network(run_cli):
    proc = run_cli("run", *NONE, "--rm", "--add-host", "db:10.1.2.3", "--add-host", "six:::1",
                   "--add-host", "other=192.0.2.7", "--dns", "9.9.9.9", "--dns", "2001:db8::53",
                   "--dns-search", "corp.example", "--dns-option", "ndots:2",
                   "--dns-option", "timeout:1", "busybox", "sh", "-c",
                   "cat /etc/hosts; echo ---; cat /etc/resolv.conf", check=True)
    hosts, resolv = proc.stdout.split("---\n")
    assert "10.1.2.3\tdb\n" in hosts and "::1\tsix\n" in hosts and "192.0.2.7\tother\n" in hosts
    assert hosts.startswith("127.0.0.1\tlocalhost\n")
    lines = resolv.splitlines()
    assert [line for line in lines if line.startswith("nameserver")] == \
        ["nameserver 9.9.9.9", "nameserver 2001:db8::53"]
    assert "search corp.example" in lines
    assert "options ndots:2 timeout:1" in lines


@pytest.mark.parametrize("flags, message", [
    (["--pull", "sometimes"], "invalid --pull 'sometimes': expected always, missing or never"),
    (["--platform", "linux"], "invalid --platform 'linux': expected OS/ARCH[/VARIANT]"),
    (["--platform", "windows/amd64"], "diyc runs only this host's platform"),
    (["--platform", "linux/s390x" if os.uname().machine != "s390x" else "linux/amd64"],
     "diyc runs only this host's platform"),
    (["--pull", "never", "--platform", "HOST"], None),
])
def test_pull_and_platform_flags(run_cli, diyc_root, flags, message):
    """--pull and --platform checked before anything is made; this host's
    platform runs (busybox, the built-in image, is the host's)."""
    from diyc.images.puller import host_platform
    flags = [f.replace("HOST", "/".join(filter(None, host_platform()))) for f in flags]
    proc = run_cli("run", *NONE, "--rm", *flags, "busybox", "echo", "ran")
    if message is None:
        assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr
    else:
        assert_one_line_error(proc, contains=message)
    assert os.listdir(diyc_root / "containers") == []


def test_no_flags_no_files_of_our_own_without_a_network(run_cli):
    """The fast path: --network none without these flags keeps the image's
    /etc (nothing is bind-mounted over it)."""
    proc = run_cli("run", *NONE, "--rm", "busybox", "sh", "-c", "grep -c ' /etc/' /proc/mounts || true",
                   check=True)
    assert proc.stdout.strip() == "0"


@pytest.mark.parametrize("flags, message", [
    (["--add-host", "db"], "invalid --add-host 'db'"),
    (["--add-host", "db:10.1.2"], "not an IP address"),
    (["--add-host", "bad host:10.1.2.3"], "is not a host name"),
    (["--add-host", "gw:host-gateway"], "host-gateway needs a bridge network"),
    (["--dns", "nine"], "invalid --dns address 'nine'"),
    (["--dns-option", "a b"], "invalid --dns-option"),
    (["--dns-search", "bad domain"], "invalid --dns-search"),
])
def test_bad_hosts_and_dns_flags(run_cli, flags, message):
    assert_one_line_error(run_cli("run", *NONE, "--rm", *flags, "busybox", "true"), contains=message)


# -- --mount and -v ----------------------------------------------------------------

def test_mount_bind_readonly_and_propagation(run_cli, tmp_path):
    (tmp_path / "f").write_text("host file\n")
    proc = run_cli("run", *NONE, "--name", "bound", "--mount",
                   f"type=bind,source={tmp_path},target=/data,readonly,bind-propagation=rslave",
                   "busybox", "sh", "-c",
                   "cat /data/f; touch /data/x 2>/dev/null && echo writable || echo read-only; "
                   "grep ' /data ' /proc/self/mountinfo", check=True)
    try:
        out = proc.stdout.splitlines()
        assert out[:2] == ["host file", "read-only"]
        assert " ro," in out[2], out[2]
        assert not (tmp_path / "x").exists()
        # (a slave of the host's mount only shows as one where that is shared)
        (mount,) = [m for m in inspect(run_cli, "bound")["Mounts"] if m["Destination"] == "/data"]
        assert (mount["Type"], mount["Source"], mount["RW"], mount["Propagation"]) == \
            ("bind", str(tmp_path), False, "rslave")
    finally:
        run_cli("rm", "bound", check=True)


def test_mount_tmpfs_with_size_and_mode(run_cli):
    proc = run_cli("run", *NONE, "--rm", "--mount", "type=tmpfs,destination=/cache,tmpfs-size=1m,tmpfs-mode=1770",
                   "busybox", "sh", "-c", "grep ' /cache ' /proc/mounts; stat -c %a /cache", check=True)
    mount, mode = proc.stdout.splitlines()
    assert "tmpfs" in mount and "size=1024k" in mount
    assert mode == "1770"


def test_mount_volume_is_a_named_volume(run_cli):
    run_cli("run", *NONE, "--rm", "--mount", "type=volume,src=rfvol,dst=/v", "busybox", "sh", "-c",
            "echo kept > /v/f", check=True)
    try:
        proc = run_cli("run", *NONE, "--rm", "-v", "rfvol:/w:ro", "busybox", "cat", "/w/f", check=True)
        assert proc.stdout == "kept\n"
        assert "rfvol" in run_cli("volume", "ls", check=True).stdout.split()
    finally:
        run_cli("volume", "rm", "rfvol", check=True)


@pytest.mark.parametrize("spec, message", [
    ("type=bind,source=/nonexistent-rf,target=/x", "bind source path does not exist"),
    ("type=bind,target=/x", "source= is required"),
    ("type=tmpfs,source=/tmp,target=/x", "a tmpfs has no source"),
    ("type=tmpfs,target=/x,bind-propagation=rslave", "bind-propagation is not for type=tmpfs"),
    ("type=nfs,source=a,target=/x", "type must be bind, volume or tmpfs"),
    ("type=volume,source=v", "target= is required"),
    ("type=bind,source=/tmp,target=relative", "invalid --mount destination"),
    ("type=bind,source=/tmp,target=/x,colour=red", "unknown field 'colour'"),
    ("type=tmpfs,target=/x,tmpfs-size=lots", "--tmpfs size"),
])
def test_bad_mount_is_one_line_and_makes_nothing(run_cli, diyc_root, spec, message):
    before = sorted(os.listdir(diyc_root / "volumes")) if (diyc_root / "volumes").exists() else []
    assert_one_line_error(run_cli("run", *NONE, "--rm", "--mount", spec, "busybox", "true"), contains=message)
    after = sorted(os.listdir(diyc_root / "volumes")) if (diyc_root / "volumes").exists() else []
    assert after == before


def _volumes(run_cli):
    return set(run_cli("volume", "ls", "-q", check=True).stdout.split())


@pytest.fixture(scope="module")
def volume_image(run_cli, tmp_path_factory):
    with built_image(run_cli, tmp_path_factory, "withvol:1", "FROM busybox\nVOLUME /data /cache/\n") as tag:
        yield tag


def test_anonymous_volumes_and_rm_v(run_cli, volume_image):
    """-v /path, --mount type=volume without a source and the image's
    VOLUMEs are anonymous volumes, as docker's: kept by `rm`, removed by
    `rm -v` (a named one stays), by `volume prune` without -a."""
    before = _volumes(run_cli)
    script = "echo a > /anon/f; echo m > /m/f; echo d > /data/f; echo n > /named/f; " \
             "grep -c -E ' /(anon|m|data|cache|named) ' /proc/mounts"
    for name in ("av1", "av2"):
        proc = run_cli("run", *NONE, "--name", name, "-v", "/anon", "--mount", "type=volume,target=/m",
                       "-v", "avnamed:/named", "-v", "/cache", volume_image, "sh", "-c", script, check=True)
        assert proc.stdout == "5\n"  # /cache: one mount, -v's (the image's is covered)
    try:
        mounts = {m["Destination"]: m for m in inspect(run_cli, "av1")["Mounts"]}
        assert set(mounts) == {"/anon", "/m", "/data", "/cache", "/named"}
        anonymous = {mounts[d]["Name"] for d in ("/anon", "/m", "/data", "/cache")}
        assert all(m["Type"] == "volume" for m in mounts.values())
        assert all(len(n) == 64 and int(n, 16) >= 0 for n in anonymous)
        assert _volumes(run_cli) - before == anonymous | {"avnamed"} | \
            {m["Name"] for m in inspect(run_cli, "av2")["Mounts"] if m["Destination"] != "/named"}
        with open(f"{mounts['/data']['Source']}/f") as f:
            assert f.read() == "d\n"
        run_cli("rm", "-v", "av1", check=True)
        left = _volumes(run_cli) - before
        assert not left & anonymous and "avnamed" in left and len(left) == 5
        run_cli("rm", "av2", check=True)  # without -v: kept, until a prune
        assert len(_volumes(run_cli) - before) == 5
        pruned = run_cli("volume", "prune", "-f", check=True).stdout.split()
        assert len(pruned) == 4 and "avnamed" not in pruned
        assert _volumes(run_cli) - before == {"avnamed"}
    finally:
        run_cli("rm", "-f", "av1", "av2")
        run_cli("volume", "rm", "avnamed", check=True)


def test_new_volumes_get_the_image_files(run_cli, tmp_path_factory):
    """As docker's: a volume made for a container (the image's VOLUME, -v
    /path, a new named one) starts with the image's files there, owners
    and mode kept (a non-root USER can write its VOLUME); an existing
    volume is left as it is."""
    dockerfile = ("FROM busybox\nRUN mkdir -p /data/sub && echo seeded > /data/sub/f && "
                  "ln -s /etc/passwd /data/link && chown -R 1000:1000 /data && chmod 0750 /data\n"
                  "USER 1000\nVOLUME /data\n")
    with built_image(run_cli, tmp_path_factory, "seeded:1", dockerfile) as image:
        out = run_cli("run", *NONE, "--rm", image, "sh", "-c", "stat -c '%u %g %a' /data; cat /data/sub/f; "
                      "readlink /data/link; echo mine > /data/new && cat /data/new", check=True).stdout
        assert out.splitlines() == ["1000 1000 750", "seeded", "/etc/passwd", "mine"]
        out = run_cli("run", *NONE, "--rm", "-u", "0", "-v", "/v", "-v", "seedvol:/data", image, "sh", "-c",
                      "ls /v | wc -l; echo changed > /data/sub/f", check=True).stdout
        assert out == "0\n"  # nothing at /v in the image
        try:
            out = run_cli("run", *NONE, "--rm", "-v", "seedvol:/data", image, "cat", "/data/sub/f",
                          check=True).stdout
            assert out == "changed\n"  # an existing volume: not filled again
        finally:
            run_cli("volume", "rm", "seedvol", check=True)
        # with --userns auto, owned as the container sees them (its root's where the image has nothing)
        out = run_cli("run", *NONE, "--rm", "--userns", "auto", "-v", "/empty", image, "sh", "-c",
                      "stat -c '%u %g' /data /data/sub/f /empty; echo w > /data/w && echo wrote", check=True)
        assert out.stdout.splitlines() == ["1000 1000", "1000 1000", "0 0", "wrote"]
        # a build's RUN mounts no volume at a VOLUME (as BuildKit's): its writes there are kept
        before = _volumes(run_cli)
        with built_image(run_cli, tmp_path_factory, "seeded:2",
                         f"FROM {image}\nUSER 0\nRUN echo built > /data/built\n") as derived:
            assert _volumes(run_cli) == before
            out = run_cli("run", *NONE, "--rm", derived, "ls", "/data", check=True).stdout
            assert out.split() == ["built", "link", "sub"]


def test_rm_flag_removes_anonymous_volumes(run_cli, diyc_root, volume_image):
    """--rm: the anonymous volumes go with the container, foreground or
    detached (docker does the same); a failed create leaves none."""
    before = _volumes(run_cli)
    run_cli("run", *NONE, "--rm", "-v", "/anon", volume_image, "sh", "-c", "touch /anon/f /data/f",
            check=True)
    assert _volumes(run_cli) == before
    run_cli("run", *NONE, "-d", "--rm", "-v", "/anon", volume_image, "sh", "-c", "touch /anon/f",
            check=True)
    wait_for(lambda: not os.listdir(diyc_root / "containers"), what="the --rm container to go")
    assert _volumes(run_cli) == before  # (gone before its record)
    run_cli("create", *NONE, "--name", "avtaken", volume_image, "true", check=True)
    try:
        made = _volumes(run_cli) - before
        assert len(made) == 2
        taken = run_cli("create", *NONE, "--name", "avtaken", "-v", "/x", volume_image, "true")
        assert_one_line_error(taken, contains="already in use")
        assert _volumes(run_cli) - before == made
    finally:
        run_cli("rm", "-v", "avtaken", check=True)
    assert _volumes(run_cli) == before


def test_volume_relative_to_the_current_directory(run_cli, tmp_path):
    """docker 23+: `-v ./dir:/path` is a bind of a directory under the cwd
    (a bare name stays a named volume)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("relative\n")
    proc = run_cli.popen("run", *NONE, "--rm", "-v", "./data:/data:ro", "-v", "./made:/made",
                         "busybox", "sh", "-c", "cat /data/f; echo new > /made/g", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "relative\n"
    assert (tmp_path / "made" / "g").read_text() == "new\n"  # made, as -v makes a missing host dir


# -- -t, --stop-signal, --stop-timeout, --restart ------------------------------------------

def test_tty_sets_term_unless_given(run_cli):
    proc = run_cli("run", *NONE, "--rm", "-t", "busybox", "sh", "-c", "echo TERM=$TERM")
    assert proc.returncode == 0, proc.stderr
    assert "TERM=xterm" in proc.stdout
    proc = run_cli("run", *NONE, "--rm", "-t", "-e", "TERM=vt100", "busybox", "sh", "-c", "echo TERM=$TERM")
    assert "TERM=vt100" in proc.stdout
    proc = run_cli("run", *NONE, "--rm", "busybox", "sh", "-c", "echo TERM=${TERM-unset}", check=True)
    assert proc.stdout == "TERM=unset\n"


def test_rm_with_a_terminal_is_gone_when_run_returns(run_cli):
    """docker run --rm waits for the removal: a script's next command
    may reuse the name (a terminal's run is the supervisor's to remove)."""
    for _ in range(3):
        proc = run_cli("run", *NONE, "--rm", "-t", "--name", "rmtty", "busybox", "true")
        assert proc.returncode == 0, proc.stderr
        assert not os.listdir(f"{run_cli.root}/containers")


def test_stop_signal_and_stop_timeout(run_cli):
    script = "trap 'echo got USR1; exit 7' USR1; echo ready; while :; do sleep 0.05; done"
    run_cli("run", *NONE, "-d", "--name", "stopsig", "--stop-signal", "SIGUSR1", "busybox", "sh", "-c",
            script, check=True)
    try:
        wait_for(lambda: "ready" in run_cli("logs", "stopsig").stdout, what="the trap")
        run_cli("stop", "stopsig", check=True)
        rec = inspect(run_cli, "stopsig")
        assert rec["Config"]["StopSignal"] == "SIGUSR1"
        assert rec["State"]["ExitCode"] == 7
        assert "got USR1" in run_cli("logs", "stopsig", check=True).stdout
    finally:
        run_cli("rm", "-f", "stopsig")
    # a container that ignores the signal is killed after --stop-timeout
    run_cli("run", *NONE, "-d", "--name", "stoptime", "--stop-timeout", "1", "busybox", "sh", "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.05; done", check=True)
    try:
        wait_for(lambda: "ready" in run_cli("logs", "stoptime").stdout, what="the trap")
        assert inspect(run_cli, "stoptime")["Config"]["StopTimeout"] == 1
        run_cli("stop", "stoptime", check=True)
        assert inspect(run_cli, "stoptime")["State"]["ExitCode"] == 137
    finally:
        run_cli("rm", "-f", "stoptime")


@pytest.mark.parametrize("flags, message", [
    (["--stop-signal", "SIGNOPE"], "invalid signal: SIGNOPE"),
    (["--stop-timeout", "soon"], "--stop-timeout"),
    (["--rm", "--restart", "always"], "conflicting options: --restart and --rm"),
])
def test_bad_stop_and_restart_flags(run_cli, flags, message):
    assert_one_line_error(run_cli("run", *NONE, *flags, "busybox", "true"), contains=message)


def test_foreground_run_with_restart_returns_the_first_exit(run_cli):
    """As docker: `docker run --restart on-failure:2 IMAGE` prints the
    container's output and exits with its first exit code; the policy
    restarts it meanwhile, in the background."""
    proc = run_cli("run", *NONE, "--name", "fgrestart", "--restart", "on-failure:2", "busybox", "sh", "-c",
                   "echo run; exit 3")
    try:
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout.startswith("run\n")

        def given_up():  # three runs logged, and the end of the last recorded
            if run_cli("logs", "fgrestart", check=True).stdout != "run\n" * 3:
                return None
            rec = inspect(run_cli, "fgrestart")
            return rec["State"]["Status"] == "exited" and rec
        rec = wait_for(given_up, timeout=30, what="the two restarts")
        assert (rec["State"]["ExitCode"], rec["RestartCount"]) == (3, 2)
    finally:
        run_cli("rm", "-f", "fgrestart")


# -- the library's keywords, as docker-py's -------------------------------------------------

def test_library_takes_docker_py_shapes(diyc_root, tmp_path):
    import diyc
    r = diyc.run("busybox", ["sh", "-c", "cat /etc/hosts; grep ' /t ' /proc/mounts; echo $TERM"],
                 network="none", extra_hosts={"db": "10.0.0.5"}, dns=["9.9.9.9"], dns_search="corp",
                 labels={"a": "b"}, stop_signal=2, stop_timeout=3, root=str(diyc_root),
                 mounts=[{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}],
                 capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "10.0.0.5\tdb" in r.stdout and "size=1024k" in r.stdout
    c = diyc.Container.create("busybox", ["true"], network="none", labels=["x=1"], stop_signal="HUP",
                              root=str(diyc_root))
    try:
        assert (c.record["labels"], c.record["stop_signal"], c.record["stop_timeout"]) == ({"x": "1"}, 1, None)
    finally:
        c.remove()


# -- the default network: a bridge, in a test namespace ------------------------------------

@pytest.fixture(scope="module")
def ns_cli(diyc_root):
    with netns("diycrf") as name:
        yield NsCli(name, diyc_root)


@pytest.mark.parametrize("value, message", [
    ("80-", "'80-' is not a port range"),  # (`80-82`, no host port: random ones, as docker's)
    ("8000-8002:80-82/sctp", "'8000-8002:80-82/sctp': the protocol must be tcp or udp"),
])
def test_bad_port_range_names_what_was_typed(run_cli, value, message):
    proc = run_cli("run", "--rm", "--network", "bridge", "-p", value, "busybox", "true")
    assert message in assert_one_line_error(proc, 125)


def test_bridge_is_the_default_and_ranges_publish(ns_cli):
    script = ("trap 'exit 0' TERM; for p in 80 81; do mkdir -p /w$p; echo port$p > /w$p/i; "
              "httpd -p $p -h /w$p; done; ip -4 -o addr show eth0; cat /etc/hosts /etc/resolv.conf; echo ready; "
              "sleep 60 & wait")
    proc = ns_cli.popen("run", "--rm", "--name", "ranged", "--hostname", "web", "--add-host", "gw:host-gateway",
                        "--dns", "192.0.2.53", "--dns-search", "corp.example",
                        "-p", "127.0.0.1:18080-18081:80-81", "busybox", "sh", "-c", script)
    try:
        lines = []
        while "ready" not in lines:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line.strip())
        assert "inet 172." in lines[0] or "inet 10." in lines[0], lines  # eth0 without --network
        gateway = next(line.split()[0] for line in lines if line.endswith("\tgw") or line.endswith(" gw"))
        assert gateway == ns_cli("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge",
                                 check=True).stdout.strip()
        assert any(line.endswith("\tweb ranged") for line in lines)  # its own address, as before
        assert [line for line in lines if line.startswith("nameserver")] == ["nameserver 192.0.2.53"]
        assert "search corp.example" in lines
        assert "port80" in host_get(ns_cli.ns, "127.0.0.1", 18080)
        assert "port81" in host_get(ns_cli.ns, "127.0.0.1", 18081)
    finally:
        proc.terminate()  # diyc forwards it to the container
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_system_reset_undoes_the_host_changes(ns_cli):
    ns_cli("run", "-d", "--name", "resetme", "busybox", "sleep", "60", check=True)
    assert ns_cli.sh("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    refused = ns_cli("system", "reset")  # no terminal, no -f: nothing done
    assert refused.returncode != 0
    assert "resetme" in ns_cli("ps", "-a", check=True).stdout
    out = ns_cli("system", "reset", "-f", check=True).stdout
    assert "resetme" in out
    assert "resetme" not in ns_cli("ps", "-a", check=True).stdout
    assert ns_cli.sh("nft", "list", "table", "ip", ns_cli.table()).returncode != 0
    assert "diyc" not in ns_cli.sh("ip", "-br", "link").stdout
    assert ns_cli.sh("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    ns_cli("network", "rm", "bridge")  # the definition, made for this namespace's routes


def test_image_labels_and_stop_signal_are_the_defaults(run_cli, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nLABEL from.image=yes team=image\nSTOPSIGNAL SIGUSR2\n")
    run_cli("build", "-q", "-t", "rf-stopsig:1", tmp_path, check=True)
    try:
        run_cli("run", *NONE, "--name", "imgdefaults", "-l", "team=run", "rf-stopsig:1", "true", check=True)
        run_cli("run", *NONE, "--name", "overridden", "--stop-signal", "9", "rf-stopsig:1", "true", check=True)
        try:
            rec = inspect(run_cli, "imgdefaults")
            assert rec["Config"]["Labels"] == {"from.image": "yes", "team": "run"}  # --label over the image's
            assert rec["Config"]["StopSignal"] == "SIGUSR2"
            assert inspect(run_cli, "overridden")["Config"]["StopSignal"] == "SIGKILL"
        finally:
            run_cli("rm", "imgdefaults", "overridden", check=True)
    finally:
        run_cli("rmi", "rf-stopsig:1", check=True)
