"""`--format` on ps, images, history, network ls, volume ls and stats, and
their default tables, as a docker user types them; `stats` on a terminal
redraws in place (a real pty).  The template language itself is tested in
test_templates.py."""

import json
import os
import pty
import re
import select
import signal
import time

import pytest

from conftest import DIYC, assert_one_line_error, wait_for

AGO = re.compile(r"^(\d+|About an?|Less than a) \w+ ago$")


@pytest.fixture
def sleeper(run_cli):
    cid = run_cli("run", "-d", "--name", "fmt1", "--network", "none", "busybox",
                  "sleep", "60", check=True).stdout.strip()
    yield cid
    run_cli("rm", "-f", "fmt1")


def test_ps_table_template_has_dockers_headers_and_alignment(run_cli, sleeper):
    out = run_cli("ps", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Image}}", check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "CONTAINER ID   NAMES     IMAGE"
    assert f"{sleeper[:12]}   fmt1      busybox" in lines[1:]
    # no `table`: no header, the template as typed, a line a container
    out = run_cli("ps", "--format", "{{.Names}}|{{.Status}}|{{.State}}|{{.Command}}", check=True).stdout
    (row,) = [line for line in out.splitlines() if line.startswith("fmt1|")]
    name, status, state, command = row.split("|")
    assert status.startswith("Up ") and state == "running" and command == '"sleep 60"'
    assert run_cli("ps", "--format", "{{.ID}}", "--no-trunc", check=True).stdout.split().count(sleeper) == 1


def test_ps_default_table_and_json_lines(run_cli, sleeper):
    lines = run_cli("ps", check=True).stdout.splitlines()
    assert re.match(r"^CONTAINER ID   IMAGE     COMMAND      CREATED +STATUS +PORTS +NAMES$", lines[0]), lines[0]
    (row,) = [line for line in lines if line.startswith(sleeper[:12])]
    assert row.endswith("fmt1") and '"sleep 60"' in row
    created = row.split('"sleep 60"')[1].strip().split("   ")[0]
    assert AGO.match(created), row
    objects = [json.loads(line) for line in run_cli("ps", "--format", "json", check=True).stdout.splitlines()]
    (mine,) = [o for o in objects if o["Names"] == "fmt1"]
    assert mine["ID"] == sleeper[:12] and mine["State"] == "running" and mine["Image"] == "busybox"
    assert {"Command", "CreatedAt", "RunningFor", "Ports", "Status", "Labels", "Mounts",
            "Networks"} <= set(mine)
    assert mine["Networks"] == "none"


def test_ps_size_labels_and_a_bad_field(run_cli, sleeper):
    run_cli("exec", "fmt1", "sh", "-c", "head -c 5000 /dev/zero > /written", check=True)
    size = run_cli("ps", "--format", "{{.Names}} {{.Size}}", check=True).stdout
    (row,) = [line for line in size.splitlines() if line.startswith("fmt1 ")]
    assert re.match(r"^fmt1 5(\.\d+)?kB \(virtual \d+(\.\d+)?MB\)$", row), row
    assert run_cli("ps", "--format", '[{{.Label "nope"}}]{{.Labels}}', check=True).stdout.count("[]") >= 1
    proc = run_cli("ps", "--format", "{{.Bogus}}")
    assert_one_line_error(proc, 125, contains="can't evaluate field Bogus")
    assert proc.stdout == ""


def test_images_history_and_their_created_columns(run_cli):
    lines = run_cli("images", check=True).stdout.splitlines()
    assert re.match(r"^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$", lines[0]), lines[0]
    (row,) = [line for line in lines if line.startswith("busybox ")]
    cells = re.split(r"\s{3,}", row)
    assert cells[:2] == ["busybox", "latest"] and AGO.match(cells[3]), cells
    assert re.match(r"^\d+(\.\d+)?MB$", cells[4]), cells
    out = run_cli("images", "--format", "{{.Repository}}:{{.Tag}} {{.CreatedSince}}", check=True).stdout
    assert any(line.startswith("busybox:latest ") and AGO.match(line.split(" ", 1)[1])
               for line in out.splitlines()), out
    objects = [json.loads(line) for line in run_cli("images", "--format", "json", check=True).stdout.splitlines()]
    assert any(o["Repository"] == "busybox" and o["Tag"] == "latest" and len(o["ID"]) == 12 for o in objects)

    history = run_cli("history", "busybox", check=True).stdout.splitlines()
    assert re.match(r"^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$", history[0]), history[0]
    cells = re.split(r"\s{3,}", history[1])
    assert len(cells[0]) == 12 and AGO.match(cells[1]) and "busybox" in cells[2], cells
    assert run_cli("history", "--format", "{{.Size}}|{{.Comment}}", "busybox", check=True).stdout == \
        f"{cells[3]}|diyc's built-in image\n"


def test_network_and_volume_listings(run_cli):
    run_cli("volume", "create", "fmtvol", check=True)
    run_cli("network", "create", "fmtnet", check=True)  # (a definition: no bridge until a run)
    try:
        lines = run_cli("network", "ls", check=True).stdout.splitlines()
        assert re.match(r"^NETWORK ID +NAME +DRIVER +SCOPE$", lines[0]), lines[0]
        assert any(re.match(r"^[0-9a-f]{12}   fmtnet +bridge +local$", line) for line in lines), lines
        out = run_cli("network", "ls", "--format", "{{.Name}} {{.Subnet}} {{.Driver}}", check=True).stdout
        assert any(re.match(r"^fmtnet \d+\.\d+\.\d+\.\d+/\d+ bridge$", line) for line in out.splitlines()), out
        lines = run_cli("volume", "ls", check=True).stdout.splitlines()
        assert lines[0] == "DRIVER    VOLUME NAME" and "local     fmtvol" in lines
        out = run_cli("volume", "ls", "--format", "{{.Name}}:{{.Driver}}", check=True).stdout
        assert "fmtvol:local" in out.splitlines()
        assert run_cli("volume", "ls", "-q", check=True).stdout.split().count("fmtvol") == 1
    finally:
        run_cli("network", "rm", "fmtnet")
        run_cli("volume", "rm", "fmtvol")


def test_stats_columns_format_and_block_io(run_cli):
    run_cli("run", "-d", "--name", "fmtio", "--network", "none", "-m", "64m", "busybox", "sh", "-c",
            "dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null; sync; echo written; sleep 60", check=True)
    try:
        wait_for(lambda: "written" in run_cli("logs", "fmtio").stdout, timeout=30, what="the write")
        lines = run_cli("stats", "--no-stream", "fmtio", check=True).stdout.splitlines()
        assert re.match(r"^CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$",
                        lines[0]), lines[0]
        assert "fmtio" in lines[1] and "/ 64MiB" in lines[1]
        out = run_cli("stats", "--no-stream", "--format", "{{.Name}}|{{.MemPerc}}|{{.BlockIO}}|{{.PIDs}}",
                      "fmtio", check=True).stdout
        name, mem_perc, block_io, pids = out.strip().split("|")
        assert name == "fmtio" and re.match(r"^\d+\.\d\d%$", mem_perc) and pids in ("1", "2")
        read, written = block_io.split(" / ")
        # dd's 4 MiB (4.19MB), counted for the shell that waited for it (busybox sh then execs sleep)
        assert re.match(r"^\d+(\.\d+)?MB$", written) and float(written[:-2]) >= 4.19, block_io
        assert run_cli("stats", "--no-stream", "--format", "table {{.Container}}\\t{{.CPUPerc}}", "fmtio",
                       check=True).stdout.splitlines()[0] == "CONTAINER   CPU %"
        # -a: the stopped ones too, as docker's
        run_cli("run", "--network", "none", "--name", "fmtdone", "busybox", "true", check=True)
        assert "fmtdone" not in run_cli("stats", "--no-stream", "--format", "{{.Name}}", check=True).stdout
        assert "fmtdone" in run_cli("stats", "-a", "--no-stream", "--format", "{{.Name}}",
                                    check=True).stdout.split()
    finally:
        run_cli("rm", "-f", "fmtio", "fmtdone")


def test_stats_on_a_terminal_redraws_in_place(run_cli, sleeper):
    """docker clears the screen and homes the cursor before each table."""
    pid, master = pty.fork()
    if pid == 0:  # the child: diyc stats on the pty
        os.environ["DIYC_ROOT"] = run_cli.root
        os.environ.update(run_cli.path_env)
        try:
            os.execvp(DIYC[0], DIYC + ["stats", "fmt1"])
        finally:
            os._exit(127)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while out.count(b"\x1b[2J\x1b[H") < 2 and time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
    finally:
        os.kill(pid, signal.SIGINT)
        os.waitpid(pid, 0)
        os.close(master)
    frames = out.split(b"\x1b[2J\x1b[H")
    assert len(frames) >= 3, out
    for frame in frames[1:3]:
        lines = frame.decode().splitlines()
        assert lines[0].startswith("CONTAINER ID") and "BLOCK I/O" in lines[0]
        assert any("fmt1" in line for line in lines[1:]), frame
