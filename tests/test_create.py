"""`diyc create` (run's options, no start) and `diyc start [-a] [-i]` of
what it made, as docker's create/start split."""

import json
import os

from conftest import assert_one_line_error, container_records, wait_for


def create(run_cli, *args):
    proc = run_cli("create", "--network", "none", *args, check=True)
    cid = proc.stdout.strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid), proc.stdout
    return cid


def ids(root):
    return {r["id"] for r in container_records(root)}


def ps(run_cli):
    out = run_cli("ps", "-a", "--format", "json", check=True).stdout  # docker's: an object a line
    return {c["Names"]: c for c in map(json.loads, out.splitlines())}


def test_create_then_start_attached(run_cli):
    cid = create(run_cli, "--name", "made", "-e", "FOO=bar", "-w", "/tmp", "-l", "team=x",
                 "busybox", "sh", "-c", "echo $FOO; pwd; exit 3")
    made = ps(run_cli)["made"]
    assert made["ID"] == cid[:12] and made["State"] == "created"  # nothing ran
    assert run_cli("logs", "made", check=True).stdout == ""
    p = run_cli("start", "-a", "made")
    assert p.returncode == 3 and p.stdout == "bar\n/tmp\n", p.stderr
    assert ps(run_cli)["made"]["Status"].startswith("Exited (3)")
    # a created container is a container like any: it starts again
    p = run_cli("start", "-a", "made")
    assert p.returncode == 3 and p.stdout == "bar\n/tmp\n"
    run_cli("rm", "made", check=True)


def test_container_create_and_detached_start(run_cli):
    create(run_cli, "--name", "made_bg", "busybox", "sh", "-c", "echo in the log")
    assert run_cli("container", "start", "made_bg", check=True).stdout == "made_bg\n"
    wait_for(lambda: ps(run_cli)["made_bg"]["State"] == "exited", what="the container's end")
    assert run_cli("logs", "made_bg", check=True).stdout == "in the log\n"
    run_cli("rm", "made_bg", check=True)


def test_start_of_a_running_container_is_no_error(run_cli):
    """docker start of a running container: its name, exit 0, nothing
    restarted; attaching to it that way is refused in one line."""
    run_cli("run", "--network", "none", "-d", "--name", "up", "busybox", "sleep", "60", check=True)
    try:
        def pid():
            return run_cli("inspect", "-f", "{{.State.Pid}}", "up", check=True).stdout
        before = pid()
        assert run_cli("start", "up", check=True).stdout == "up\n"
        assert ps(run_cli)["up"]["State"] == "running" and pid() == before
        assert_one_line_error(run_cli("start", "-a", "up"), 1, contains="already running")
    finally:
        run_cli("rm", "-f", "up", check=True)


def test_start_interactive_sends_stdin(run_cli):
    create(run_cli, "--name", "made_i", "busybox", "sh", "-c", "read line; echo got $line; exit 4")
    p = run_cli("start", "-i", "made_i", input="hello\n")
    assert p.returncode == 4 and p.stdout == "got hello\n", p.stderr
    # -a alone: not our stdin (read gets end of file)
    p = run_cli("start", "-a", "made_i", input="hello\n")
    assert p.returncode == 4 and p.stdout == "got\n", p.stderr
    run_cli("rm", "made_i", check=True)


def test_create_rm_outlives_its_creator_and_goes_at_its_end(run_cli, diyc_root):
    """--rm: the container waits for its start (diyc cleanup does not take
    it for one whose `run --rm` died), and is removed when it ends."""
    cid = create(run_cli, "--rm", "--name", "made_rm", "busybox", "sh", "-c", "echo bye; exit 5")
    run_cli("cleanup", check=True)
    assert ps(run_cli)["made_rm"]["State"] == "created"
    p = run_cli("start", "-a", "made_rm")
    assert p.returncode == 5 and p.stdout == "bye\n", p.stderr
    assert "made_rm" not in ps(run_cli) and cid not in ids(diyc_root)

    create(run_cli, "--rm", "--name", "made_rm_bg", "busybox", "true")
    run_cli("start", "made_rm_bg", check=True)
    wait_for(lambda: "made_rm_bg" not in ps(run_cli), what="the --rm container's removal")
    p = run_cli("start", "made_rm_bg")
    assert p.returncode == 1 and "made_rm_bg" in p.stderr


def test_create_with_a_terminal(run_cli):
    create(run_cli, "-t", "--name", "made_t", "busybox", "sh", "-c", "tty; exit 2")
    p = run_cli("start", "-a", "made_t", input="")
    assert p.returncode == 2 and p.stdout.strip().startswith("/dev/pts/"), (p.stdout, p.stderr)
    run_cli("rm", "made_t", check=True)


def test_create_bad_input_is_one_line_and_makes_nothing(run_cli, diyc_root):
    before = ids(diyc_root)
    assert_one_line_error(run_cli("create"), contains="requires an image")
    assert_one_line_error(run_cli("create", "-d", "busybox", "true"), contains="unknown flag: -d")
    assert_one_line_error(run_cli("create", "--network", "none", "no-such-image:1", "true"),
                          contains="no-such-image")
    assert_one_line_error(run_cli("create", "--network", "none", "-m", "lots", "busybox", "true"))
    assert ids(diyc_root) == before
    create(run_cli, "--name", "made_twice", "busybox", "true")
    assert_one_line_error(run_cli("create", "--network", "none", "--name", "made_twice", "busybox", "true"),
                          contains="made_twice")
    assert_one_line_error(run_cli("start", "-a", "made_twice", "made_twice"), contains="one container")
    run_cli("rm", "made_twice", check=True)
    assert ids(diyc_root) == before
    assert os.path.isdir(diyc_root)
