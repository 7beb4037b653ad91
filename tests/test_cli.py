"""The `diyc` command: input rejected before anything is created, the
container lifecycle (ps, rm, inspect), kept filesystem changes, cleanup of
what a killed diyc leaves."""

import json
import os
import re
import signal
import stat
import subprocess

import pytest

from conftest import (assert_one_line_error, container_records, parent_of, proc_state,
                      running_record, subreaper, wait_for)


def root_state(root):
    return {d: sorted(os.listdir(f"{root}/{d}")) for d in ("containers", "names", "images",
                                                           "layers", "tmp")}


# -- rejected input ---------------------------------------------------------------

BAD_RUN_ARGS = {
    "memory-unit": ["-m", "10q", "busybox", "true"],
    "memory-too-small": ["-m", "1m", "busybox", "true"],
    "memory-negative": ["--memory=-64m", "busybox", "true"],
    "cpus-negative": ["--cpus", "-1", "busybox", "true"],
    "cpus-zero": ["--cpus", "0", "busybox", "true"],
    "cpus-text": ["--cpus", "abc", "busybox", "true"],
    "pids-zero": ["--pids-limit", "0", "busybox", "true"],
    "pids-negative": ["--pids-limit", "-5", "busybox", "true"],
    "pids-text": ["--pids-limit", "many", "busybox", "true"],
    "swap-without-memory": ["--memory-swap", "64m", "busybox", "true"],
    "swap-below-memory": ["-m", "64m", "--memory-swap", "32m", "busybox", "true"],
    "name-with-slash": ["--name", "a/b", "busybox", "true"],
    "name-leading-dash": ["--name=-x", "busybox", "true"],
    "hostname-bad": ["--hostname", "bad_host!", "busybox", "true"],
    "workdir-relative": ["-w", "relative/dir", "busybox", "true"],
    "env-empty-key": ["-e", "=x", "busybox", "true"],
    "unknown-user": ["-u", "nosuchuser", "busybox", "true"],
    "unknown-group": ["-u", "0:nosuchgroup", "busybox", "true"],
    "unknown-flag": ["--bogus", "busybox", "true"],
    "unknown-short-flag": ["-Z", "busybox", "true"],
    "flag-takes-no-value": ["--rm=yes", "busybox", "true"],
    "missing-flag-value": ["--name"],
    "network-bogus": ["--network", "bogus", "busybox", "true"],
    "missing-image": [],
    "missing-image-after-flags": ["--rm"],
    "nonexistent-image": ["nosuchimage", "true"],
    "nonexistent-image-tag": ["busybox:nosuchtag", "true"],
    "bad-image-reference": ["Bad:Name", "true"],
}


@pytest.mark.parametrize("rm", [True, False], ids=["rm", "keep"])
@pytest.mark.parametrize("case", sorted(BAD_RUN_ARGS))
def test_bad_run_input_rejected_before_anything_is_created(cli_path, run_cli, diyc_root, case, rm):
    """(No cgroup left either: the autouse fixture checks that after every
    test, telling ours from other diyc sessions' on this machine.)"""
    before = root_state(diyc_root)
    args = ["run", "--network", "none"] + (["--rm"] if rm else []) + BAD_RUN_ARGS[case]
    proc = run_cli(*args)
    assert_one_line_error(proc, 125)
    assert proc.stdout == ""
    assert root_state(diyc_root) == before


@pytest.mark.parametrize("flags", [("--cpus", "0.001"), ("--cpus", "1e-9"),
                                   ("--pids-limit", "99999999999999999999")],
                         ids=["cpus-0.001", "cpus-1e-9", "pids-huge"])
def test_out_of_kernel_range_values_rejected(run_cli, diyc_root, flags):
    before = root_state(diyc_root)
    proc = run_cli("run", "--network", "none", "--rm", *flags, "busybox", "true")
    assert "Traceback" not in proc.stderr, proc.stderr[-300:]
    assert_one_line_error(proc, 125)
    assert root_state(diyc_root) == before


@pytest.mark.parametrize("rm", [True, False], ids=["rm", "keep"])
@pytest.mark.parametrize("flags,message", [
    (("-w", "/etc/passwd"), "chdir: Not a directory (/etc/passwd)"),
    (("-u", "1000", "-w", "/root"), "chdir: Permission denied (/root)"),
], ids=["workdir-is-a-file", "workdir-not-accessible"])
def test_failed_container_init_leaves_nothing(run_cli, diyc_root, flags, message, rm):
    """A step of container init fails inside the child: one line naming the
    step, 125, and no record, name, cgroup or mount left."""
    before = root_state(diyc_root)
    proc = run_cli("run", "--network", "none", *(["--rm"] if rm else []), *flags, "busybox", "true")
    assert assert_one_line_error(proc, 125) == f"diyc: {message}"
    assert root_state(diyc_root) == before


@pytest.mark.parametrize("flags", [("-m", "inf"), ("-m", "1e400"),
                                   ("-m", "64m", "--memory-swap", "inf")],
                         ids=["inf", "1e400", "swap-inf"])
def test_infinite_sizes_rejected(run_cli, diyc_root, flags):
    before = root_state(diyc_root)
    proc = run_cli("run", "--network", "none", "--rm", *flags, "busybox", "true")
    assert "Traceback" not in proc.stderr, proc.stderr[-300:]
    assert_one_line_error(proc, 125)
    assert root_state(diyc_root) == before


def test_short_flag_with_equals(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-m=64m", "-e=K=V", "busybox", "sh", "-c", "echo $K")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "V\n"


def test_error_messages_name_the_problem(cli_path, run_cli):
    cases = {("-m", "10q"): "10q", ("--cpus", "abc"): "abc", ("--pids-limit", "0"): "pids",
             ("--bogus",): "--bogus", ("--network", "bogus"): "bogus",
             ("--name", "a/b"): "a/b"}
    for flags, word in cases.items():
        line = assert_one_line_error(run_cli("run", "--network", "none", "--rm", *flags, "busybox", "true"))
        assert word in line, line
    line = assert_one_line_error(run_cli("run", "--network", "none", "--rm", "nosuchimage", "true"))
    assert "nosuchimage" in line


def test_unknown_command_and_global_flag(cli_path, run_cli):
    assert_one_line_error(run_cli("bogus"), 125, contains="bogus")
    assert_one_line_error(run_cli("--bogus", "ps"), 125, contains="--bogus")
    proc = run_cli()
    assert proc.returncode == 125
    assert "Usage" in proc.stderr


def test_help(run_cli):
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage:  diyc [OPTIONS] COMMAND")
    assert re.search(r"^  run +Run a command in a new container$", proc.stdout, re.M)
    proc = run_cli("run", "--help")
    assert proc.returncode == 0
    assert "--memory" in proc.stdout


def test_root_option_overrides_env(run_cli, diyc_root, tmp_path):
    other = tmp_path / "other-root"
    proc = run_cli("--root", other, "run", "--network", "none", "--rm", "busybox", "echo", "hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hi\n"
    assert (other / "layers").is_dir()
    assert os.listdir(other / "containers") == []
    assert run_cli(f"--root={other}", "images", check=True).stdout.count("busybox") == 1


def test_name_already_in_use(cli_path, run_cli, diyc_root):
    run_cli("run", "--network", "none", "--name", "x", "busybox", "true", check=True)
    try:
        before = root_state(diyc_root)
        proc = run_cli("run", "--network", "none", "--name", "x", "busybox", "true")
        assert_one_line_error(proc, 125, contains="already in use")
        proc = run_cli("run", "--network", "none", "--rm", "--name", "x", "busybox", "true")
        assert_one_line_error(proc, 125, contains="already in use")
        assert root_state(diyc_root) == before
        assert len(container_records(diyc_root)) == 1
    finally:
        run_cli("rm", "x", check=True)
    # free again
    run_cli("run", "--network", "none", "--rm", "--name", "x", "busybox", "true", check=True)


# -- lifecycle ----------------------------------------------------------------------

def test_ps_rm_of_an_exited_container(run_cli, diyc_root):
    assert run_cli("run", "--network", "none", "--name", "exited3", "busybox", "sh", "-c", "exit 3").returncode == 3
    (rec,) = container_records(diyc_root)
    short = rec["id"][:12]
    try:
        lines = run_cli("ps", "-a", check=True).stdout.splitlines()
        header = lines[0]
        for column in ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"):
            assert column in header, header
        (row,) = [l for l in lines[1:] if "exited3" in l]
        assert row.startswith(short)
        assert "Exited (3)" in row
        assert "busybox" in row
        assert "exited3" not in run_cli("ps", check=True).stdout      # not running
        assert run_cli("ps", "-a", "-q", check=True).stdout.split() == [short]
        assert run_cli("ps", "-aq", "--no-trunc", check=True).stdout.split() == [rec["id"]]

        info = json.loads(run_cli("inspect", "exited3", check=True).stdout)[0]
        assert info["Id"] == rec["id"]
        assert info["State"]["Status"] == "exited"
        assert info["State"]["ExitCode"] == 3

        # by id prefix too
        proc = run_cli("rm", short[:6])
        assert proc.returncode == 0, proc.stderr
    finally:
        run_cli("rm", "-f", "exited3")
    assert container_records(diyc_root) == []
    assert not os.path.exists(f"{diyc_root}/containers/{rec['id']}")
    assert not os.path.lexists(f"{diyc_root}/names/exited3")
    assert "exited3" not in run_cli("ps", "-a", check=True).stdout


def test_rm_unknown_container(run_cli):
    proc = run_cli("rm", "nosuchcontainer")
    assert proc.returncode != 0
    assert_one_line_error(proc, proc.returncode, contains="nosuchcontainer")


def test_rm_of_a_running_container_needs_force(run_cli, diyc_root):
    p = run_cli.popen("run", "--network", "none", "--name", "runner", "busybox", "sleep", "30")
    try:
        rec = running_record(diyc_root)
        row = [l for l in run_cli("ps", check=True).stdout.splitlines() if "runner" in l]
        assert len(row) == 1 and "Up " in row[0]
        proc = run_cli("rm", "runner")
        assert proc.returncode != 0
        assert "running" in proc.stderr
        assert os.path.exists(f"/proc/{rec['state']['pid']}")
        proc = run_cli("rm", "-f", "runner")
        assert proc.returncode == 0, proc.stderr
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 137
    assert "Traceback" not in err
    assert container_records(diyc_root) == []
    assert not any(os.path.exists(x) for x in rec["cgroup"]["paths"].values())


def test_kept_container_keeps_its_changes_until_rm(run_cli, diyc_root):
    run_cli("run", "--network", "none", "--name", "keep", "busybox", "sh", "-c",
            "echo data > /newfile && rm /etc/group && mkdir -p /var/lib/x", check=True)
    try:
        (rec,) = container_records(diyc_root)
        cdir = f"{diyc_root}/containers/{rec['id']}"
        upper = f"{cdir}/upper"
        with open(f"{upper}/newfile") as f:
            assert f.read() == "data\n"
        st = os.lstat(f"{upper}/etc/group")              # the deletion: a whiteout
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.path.isdir(f"{upper}/var/lib/x")
        # nothing mounted on the host for it once it has exited
        with open("/proc/self/mountinfo") as f:
            assert cdir not in f.read()
    finally:
        run_cli("rm", "keep", check=True)
    assert not os.path.exists(cdir)


def test_rm_container_leaves_no_trace_on_disk(run_cli, diyc_root):
    run_cli("run", "--network", "none", "--rm", "busybox", "sh", "-c", "echo data > /newfile", check=True)
    assert os.listdir(f"{diyc_root}/containers") == []
    # the writable layer went with the container dir; scratch is only a mount point
    assert os.listdir(f"{diyc_root}/scratch") == []


# -- cleanup after a killed diyc ---------------------------------------------------

def _orphan_then_kill(run_cli, diyc_root, *run_args, reap=True):
    """Start a container, SIGKILL its diyc (nobody records the end), then
    kill the container's init.  We are the subreaper: the init becomes our
    child, and we reap it (or leave it a zombie: reap=False).  -> record"""
    p = run_cli.popen("run", "--network", "none", *run_args)
    try:
        rec = running_record(diyc_root)
        pid = rec["state"]["pid"]
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert proc_state(pid) not in (None, "Z")  # the container lives on...
        assert parent_of(pid) == os.getpid()        # ...reparented to us
        os.kill(pid, signal.SIGKILL)
        if reap:
            os.waitpid(pid, 0)
        else:
            wait_for(lambda: proc_state(pid) == "Z", what="the init to die")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return rec


def test_cleanup_removes_a_dead_rm_container(run_cli, diyc_root):
    with subreaper():
        rec = _orphan_then_kill(run_cli, diyc_root, "--rm", "busybox", "sleep", "30")
    assert os.listdir(f"{diyc_root}/containers") == [rec["id"]]
    assert any(os.path.isdir(x) for x in rec["cgroup"]["paths"].values())

    row = [l for l in run_cli("ps", "-a", check=True).stdout.splitlines() if rec["id"][:12] in l]
    assert len(row) == 1 and "Dead" in row[0], row
    assert rec["id"][:12] not in run_cli("ps", check=True).stdout

    proc = run_cli("cleanup", check=True)
    assert rec["id"][:12] in proc.stdout
    assert os.listdir(f"{diyc_root}/containers") == []
    assert os.listdir(f"{diyc_root}/names") == []
    assert not any(os.path.exists(x) for x in rec["cgroup"]["paths"].values())
    # idempotent
    assert run_cli("cleanup", check=True).stdout == ""


def test_zombie_init_counts_as_dead(run_cli, diyc_root):
    """A dead init nobody has reaped yet (this machine's PID 1 reaps lazily)
    is dead, not running.  Found by this suite, fixed in d5ec04b."""
    with subreaper():
        rec = _orphan_then_kill(run_cli, diyc_root, "--rm", "busybox", "sleep", "30",
                                reap=False)
        try:
            row = [l for l in run_cli("ps", "-a", check=True).stdout.splitlines()
                   if rec["id"][:12] in l]
            assert len(row) == 1 and "Dead" in row[0], row
        finally:
            os.waitpid(rec["state"]["pid"], 0)
            run_cli("cleanup", check=True)


def test_cleanup_leaves_a_running_container_alone(run_cli, diyc_root):
    p = run_cli.popen("run", "--network", "none", "--rm", "busybox", "sleep", "30")
    try:
        rec = running_record(diyc_root)
        proc = run_cli("cleanup", check=True)
        assert proc.stdout == ""
        assert container_records(diyc_root)[0]["id"] == rec["id"]
        assert os.path.exists(f"/proc/{rec['state']['pid']}")
        os.kill(p.pid, signal.SIGTERM)  # forwarded: sleep as PID 1 ignores it
        os.kill(rec["state"]["pid"], signal.SIGKILL)
        p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 137


def test_cleanup_marks_a_dead_kept_container_exited(run_cli, diyc_root):
    with subreaper():
        rec = _orphan_then_kill(run_cli, diyc_root, "--name", "deadkeep", "busybox", "sleep", "30")
    try:
        proc = run_cli("cleanup", check=True)
        assert "deadkeep" in proc.stdout
        (after,) = container_records(diyc_root)       # kept: it was not --rm
        assert after["state"]["status"] == "exited"
        assert not any(os.path.exists(x) for x in rec["cgroup"]["paths"].values())
        assert "Exited" in [l for l in run_cli("ps", "-a", check=True).stdout.splitlines()
                            if "deadkeep" in l][0]
    finally:
        run_cli("rm", "-f", "deadkeep")


def test_cleanup_after_a_killed_load_from_stdin(run_cli, diyc_root):
    p = run_cli.popen("load", stdin=subprocess.PIPE)
    try:
        p.stdin.write("x" * 4096)   # a partial archive: load waits for the rest
        p.stdin.flush()
        wait_for(lambda: [e for e in os.listdir(f"{diyc_root}/tmp") if e.startswith("load-")],
                 what="the spool file of diyc load")
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
        p.stdout.close()
        p.stderr.close()
    try:
        proc = run_cli("cleanup")
        assert "Traceback" not in proc.stderr, proc.stderr[-300:]
        assert proc.returncode == 0
        assert os.listdir(f"{diyc_root}/tmp") == []
    finally:
        for entry in os.listdir(f"{diyc_root}/tmp"):   # with the bug: by hand
            os.unlink(f"{diyc_root}/tmp/{entry}")


# -- concurrency ------------------------------------------------------------------

def test_concurrent_runs(run_cli, diyc_root):
    procs = [run_cli.popen("run", "--network", "none", "--rm", "-m", "32m", "busybox", "sh", "-c",
                           f"echo $HOSTNAME {i}; sleep 0.2") for i in range(10)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(out.split())
    assert [o[1] for o in outs] == [str(i) for i in range(10)]
    assert len({o[0] for o in outs}) == 10   # ten containers, ten hostnames


def test_concurrent_first_use_builds_the_image_once(run_cli, tmp_path):
    """A fresh root: every concurrent run builds the built-in image; all
    succeed and the store ends with one layer, one image, no staging."""
    root = tmp_path / "fresh-root"
    procs = [run_cli.popen("--root", root, "run", "--network", "none", "--rm", "busybox", "echo", f"hi{i}")
             for i in range(6)]
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out == f"hi{i}\n"
    assert len(os.listdir(root / "layers")) == 1
    assert os.listdir(root / "tmp") == []
    assert os.listdir(root / "containers") == []
    images = [f for f in os.listdir(root / "images") if f != "repositories.json"]
    assert len(images) == 1


@pytest.mark.parametrize("args", [
    ["stop", "nosuch"], ["wait", "nosuch"], ["logs", "nosuch"], ["kill", "nosuch"], ["rm", "nosuch"],
    ["start", "nosuch"], ["restart", "nosuch"], ["attach", "nosuch"], ["exec", "nosuch", "true"],
    ["stats", "--no-stream", "nosuch"], ["container", "logs", "nosuch"], ["logs", "-f", "nosuch"],
])
def test_a_missing_container_is_one_line_and_exit_1_in_every_command(run_cli, args):
    """As docker's commands: `No such container: x`, exit 1, whichever asks."""
    assert assert_one_line_error(run_cli(*args), 1) == "diyc: no such container: nosuch"


def test_a_missing_container_among_others_does_not_stop_the_rest(run_cli):
    run_cli("run", "--network", "none", "-d", "--name", "alive", "busybox", "sleep", "60", check=True)
    proc = run_cli("rm", "-f", "nosuch", "alive")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "alive\n", "diyc: no such container: nosuch\n")
    assert_one_line_error(run_cli("inspect", "nosuch"), 1, contains="no such object: nosuch")
    assert_one_line_error(run_cli("run", "--rm", "nosuchimage"), 125, contains="nosuchimage")
