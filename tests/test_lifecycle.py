"""Detached containers and everything around them: the supervisor, logs,
stop/kill/start/restart/wait, restart policies, exec, terminals, volumes,
--init, stats, inspect."""

import json
import os
import pty
import signal
import struct
import time

import pytest

from conftest import assert_one_line_error, read_pty, wait_for, wait_pid_gone


def record(diyc_root, name):
    target = os.readlink(f"{diyc_root}/names/{name}")
    with open(f"{diyc_root}/containers/{target}/container.json") as f:
        return json.load(f)


def run_d(run_cli, *args):
    proc = run_cli("run", "--network", "none", "-d", *args, check=True)
    cid = proc.stdout.strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    return cid


def status(run_cli, name):
    out = run_cli("ps", "-a", "--format", "json", check=True).stdout  # docker's: an object a line
    return {c["Names"]: c for c in map(json.loads, out.splitlines())}[name]


def test_detached_container_survives_the_cli(cli_path, run_cli, diyc_root):
    run_d(run_cli, "--name", "bg", "busybox", "sh", "-c", "echo started; sleep 30")
    rec = record(diyc_root, "bg")
    shim = rec["state"]["supervisor"]
    # the CLI is gone; the supervisor is in a session of its own, not ours
    assert os.getsid(shim) == shim
    assert status(run_cli, "bg")["State"] == "running"
    wait_for(lambda: "started" in run_cli("logs", "bg").stdout, what="the log line")
    run_cli("rm", "-f", "bg", check=True)
    wait_pid_gone(shim)
    assert not os.path.exists(f"/proc/{rec['state']['pid']}")


def test_supervisor_is_small(run_cli, diyc_root):
    run_d(run_cli, "--name", "small", "busybox", "sleep", "30")
    shim = record(diyc_root, "small")["state"]["supervisor"]
    with open(f"/proc/{shim}/status") as f:
        rss_kb = int([l for l in f if l.startswith("VmRSS")][0].split()[1])
    run_cli("rm", "-f", "small", check=True)
    assert rss_kb <= 2048, f"supervisor RSS {rss_kb} kB"


def test_logs_streams_tail_timestamps(run_cli):
    run_d(run_cli, "--name", "lg", "busybox", "sh", "-c",
          "for i in 1 2 3 4 5; do echo out$i; done; echo err1 >&2")
    assert run_cli("wait", "lg", check=True).stdout.strip() == "0"
    proc = run_cli("logs", "lg", check=True)
    assert proc.stdout.split() == ["out1", "out2", "out3", "out4", "out5"]
    assert proc.stderr.split() == ["err1"]
    assert run_cli("logs", "--tail", "2", "lg").stdout.split() == ["out5"] or \
        run_cli("logs", "--tail", "2", "lg").stdout.split() == ["out4", "out5"]
    stamped = run_cli("logs", "-t", "lg").stdout.splitlines()[0]
    assert stamped.split()[1] == "out1" and stamped[:4].isdigit() and stamped.split()[0].endswith("Z")
    run_cli("rm", "lg", check=True)


def test_logs_follow_ends_with_the_container(cli_path, run_cli):
    run_d(run_cli, "--name", "fl", "busybox", "sh", "-c",
          "echo one; sleep 0.5; echo two; sleep 0.5; echo three")
    proc = run_cli("logs", "-f", "fl", timeout=20)
    assert proc.stdout.split() == ["one", "two", "three"]
    run_cli("rm", "fl", check=True)


def test_log_rotation(run_cli, diyc_root):
    run_d(run_cli, "--name", "rot", "--log-opt", "max-size=2k", "busybox", "sh", "-c",
          "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done")
    run_cli("wait", "rot", check=True)
    cdir = f"{diyc_root}/containers/{record(diyc_root, 'rot')['id']}"
    assert os.path.getsize(f"{cdir}/container.log") <= 2048 + 200
    assert os.path.exists(f"{cdir}/container.log.1")
    assert run_cli("logs", "rot").stdout.split()[-1] == "line-299"
    run_cli("rm", "rot", check=True)


def test_stop_escalates_to_sigkill(run_cli):
    run_d(run_cli, "--name", "stubborn", "busybox", "sh", "-c",
          "trap '' TERM; while true; do sleep 0.1; done")
    run_cli("stop", "-t", "1", "stubborn", check=True)
    st = status(run_cli, "stubborn")
    assert st["State"] == "exited" and st["Status"].startswith("Exited (137) ")
    run_cli("rm", "stubborn", check=True)


def test_stop_graceful_and_start_again_keeps_filesystem(run_cli):
    run_d(run_cli, "--name", "again", "busybox", "sh", "-c",
          "trap 'exit 0' TERM; echo x >> /count; while true; do sleep 0.1; done")
    run_cli("stop", "-t", "5", "again", check=True)
    assert status(run_cli, "again")["Status"].startswith("Exited (0) ")
    run_cli("start", "again", check=True)
    assert status(run_cli, "again")["State"] == "running"
    out = run_cli("exec", "again", "cat", "/count", check=True).stdout
    assert out.split() == ["x", "x"]
    run_cli("restart", "-t", "5", "again", check=True)
    assert run_cli("exec", "again", "cat", "/count", check=True).stdout.split() == ["x"] * 3
    run_cli("rm", "-f", "again", check=True)


def test_kill_with_signal_and_wait(cli_path, run_cli):
    run_d(run_cli, "--name", "kl", "busybox", "sh", "-c",
          "trap 'exit 42' USR1; while true; do sleep 0.1; done")
    time.sleep(0.3)
    run_cli("kill", "-s", "USR1", "kl", check=True)
    assert run_cli("wait", "kl", check=True).stdout.strip() == "42"
    assert_one_line_error(run_cli("kill", "-s", "NOPE", "kl"))
    run_cli("rm", "kl", check=True)


def test_restart_policy_on_failure(run_cli, diyc_root):
    run_d(run_cli, "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c",
          "echo try; exit 1")
    wait_for(lambda: status(run_cli, "flaky")["State"] == "exited"
             and record(diyc_root, "flaky")["state"].get("restart_count") == 2
             and not record(diyc_root, "flaky")["state"].get("supervisor"),
             timeout=20, what="two restarts")
    time.sleep(0.5)
    assert run_cli("logs", "flaky").stdout.split() == ["try"] * 3
    run_cli("rm", "flaky", check=True)
    assert_one_line_error(run_cli("run", "--network", "none", "-d", "--restart", "sometimes", "busybox", "true"))


def test_killed_supervisor_is_detected(run_cli, diyc_root):
    run_d(run_cli, "--name", "orphan", "busybox", "sleep", "30")
    rec = record(diyc_root, "orphan")
    os.kill(rec["state"]["supervisor"], signal.SIGKILL)
    wait_pid_gone(rec["state"]["supervisor"])
    assert status(run_cli, "orphan")["State"] == "dead"
    run_cli("rm", "-f", "orphan", check=True)
    wait_pid_gone(rec["state"]["pid"])


def test_exec_sees_the_container(cli_path, run_cli):
    run_d(run_cli, "--name", "ex", "--hostname", "exhost", "-e", "A=1", "busybox", "sh", "-c",
          "echo data > /tmp/f; sleep 30")
    wait_for(lambda: run_cli("exec", "ex", "cat", "/tmp/f").stdout == "data\n", what="the file")
    out = run_cli("exec", "-e", "B=2", "-w", "/tmp", "ex", "sh", "-c",
                  "hostname; echo $A$B; pwd; ps -o pid,comm | grep -c sleep; exit 5")
    assert out.returncode == 5
    assert out.stdout.split() == ["exhost", "12", "/tmp", "1"]
    assert run_cli("exec", "-u", "nobody", "ex", "id", "-u").stdout.strip() == "65534"
    proc = run_cli("exec", "ex", "nosuchcmd")
    assert proc.returncode == 127 and "executable file not found" in proc.stderr
    run_cli("rm", "-f", "ex", check=True)


def test_exec_detached(cli_path, run_cli):
    run_d(run_cli, "--name", "exd", "busybox", "sleep", "30")
    proc = run_cli("exec", "-d", "exd", "sh", "-c", "sleep 0.2; echo later > /tmp/mark")
    assert proc.returncode == 0 and proc.stdout == ""
    wait_for(lambda: run_cli("exec", "exd", "cat", "/tmp/mark").stdout == "later\n",
             what="the detached exec to finish")
    run_cli("rm", "-f", "exd", check=True)


def test_exec_failure_names_the_step_and_detail(run_cli):
    # the failing step's report comes back over the channel from exec's
    # second process, while its first reports the pid: neither is lost
    run_d(run_cli, "--name", "exf", "busybox", "sleep", "30")
    for _ in range(3):
        line = assert_one_line_error(run_cli("exec", "-w", "/etc/passwd", "exf", "true"))
        assert line == "diyc: chdir: Not a directory (/etc/passwd)"
    assert run_cli("exec", "exf", "true").returncode == 0
    run_cli("rm", "-f", "exf", check=True)


def test_exec_into_stopped_container_is_an_error(run_cli):
    run_d(run_cli, "--name", "done", "busybox", "true")
    run_cli("wait", "done", check=True)
    assert_one_line_error(run_cli("exec", "done", "true"), contains="not running")
    run_cli("rm", "done", check=True)


def test_rm_force_leaves_nothing(run_cli, diyc_root):
    run_d(run_cli, "--name", "gone", "-m", "32m", "busybox", "sleep", "30")
    rec = record(diyc_root, "gone")
    run_cli("rm", "-f", "gone", check=True)
    wait_pid_gone(rec["state"]["pid"])
    wait_pid_gone(rec["state"]["supervisor"])
    for path in rec["cgroup"]["paths"].values():
        assert not os.path.exists(path)
    assert not os.path.exists(f"{diyc_root}/containers/{rec['id']}")
    # (the autouse fixture checks names, locks, mounts and processes too)


def test_rm_refuses_running_container(run_cli):
    run_d(run_cli, "--name", "busy", "busybox", "sleep", "30")
    assert_one_line_error(run_cli("rm", "busy"), code=1, contains="running")
    run_cli("rm", "-f", "busy", check=True)


def test_fifty_detached_containers(run_cli, diyc_root):
    names = [f"many{i}" for i in range(50)]
    for n in names:
        run_d(run_cli, "--name", n, "busybox", "sleep", "60")
    out = [json.loads(line) for line in run_cli("ps", "--format", "json", check=True).stdout.splitlines()]
    assert {c["Names"] for c in out if c["State"] == "running"} >= set(names)
    proc = run_cli("rm", "-f", *names, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert run_cli("ps", "-aq").stdout == ""


def test_volumes_bind_and_named(run_cli, tmp_path):
    (tmp_path / "in.txt").write_text("from host\n")
    out = run_cli("run", "--network", "none", "--rm", "-v", f"{tmp_path}:/data:ro", "busybox", "sh", "-c",
                  "cat /data/in.txt; echo x > /data/new 2>/dev/null || echo read-only",
                  check=True).stdout
    assert out.split("\n")[:2] == ["from host", "read-only"]
    run_cli("run", "--network", "none", "--rm", "-v", "testvol:/v", "busybox", "sh", "-c", "echo kept > /v/f", check=True)
    assert run_cli("run", "--network", "none", "--rm", "-v", "testvol:/v", "busybox", "cat", "/v/f").stdout == "kept\n"
    assert "testvol" in run_cli("volume", "ls").stdout.split()
    run_cli("volume", "rm", "testvol", check=True)
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "-v", "/a:rel", "busybox", "true"))
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "-v", "x:/y:rx", "busybox", "true"))


def test_init_reaps_and_forwards(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "--init", "busybox", "sh", "-c",
                   "echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' '); kill -TERM 1; sleep 5")
    assert proc.stdout.startswith("pid1=/dev/init -- sh")
    assert proc.returncode == 128 + signal.SIGTERM


def test_stats_and_inspect(run_cli, diyc_root):
    run_d(run_cli, "--name", "st", "-m", "64m", "busybox", "sh", "-c", "while true; do :; done")
    out = run_cli("stats", "--no-stream", "st", check=True).stdout.splitlines()
    fields = out[1].split()
    assert fields[1] == "st" and float(fields[2].rstrip("%")) > 10
    assert "/ 64MiB" in out[1]  # the 64m limit, as docker shows it
    info = json.loads(run_cli("inspect", "st", check=True).stdout)[0]
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] > 0
    assert info["CgroupPaths"]["memory"].endswith(info["Id"])
    run_cli("rm", "-f", "st", check=True)


# -- terminals ------------------------------------------------------------------

def _spawn_tty(run_cli, *args):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(run_cli.env())
        os.execv(run_cli.command[0], run_cli.command + list(args))
    import fcntl
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    return pid, fd


def _exit_code(pid):
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st)


def test_run_it_shell_resize_detach_attach(cli_path, run_cli):
    pid, fd = _spawn_tty(run_cli, "run", "--network", "none", "-it", "--name", "tty", "busybox", "sh")
    assert b"# " in read_pty(fd, b"# ", timeout=10)
    os.write(fd, b"tty; stty size\r")
    out = read_pty(fd, b"100", timeout=10)
    assert b"/dev/pts/0" in out and b"30 100" in out
    os.write(fd, b"\x10\x11")  # Ctrl-p Ctrl-q
    assert b"detached" in read_pty(fd, b"detached", timeout=10)
    assert _exit_code(pid) == 0
    assert status(run_cli, "tty")["State"] == "running"

    pid, fd = _spawn_tty(run_cli, "attach", "tty")
    time.sleep(0.5)
    os.write(fd, b"echo back$((40+2))\r")
    assert b"back42" in read_pty(fd, b"back42", timeout=10)
    os.write(fd, b"exit 4\r")
    read_pty(fd, b"never", timeout=2)
    assert _exit_code(pid) == 4
    run_cli("rm", "tty", check=True)


def test_exec_it(cli_path, run_cli):
    run_d(run_cli, "--name", "exit", "busybox", "sleep", "30")
    pid, fd = _spawn_tty(run_cli, "exec", "-it", "exit", "sh")
    assert b"# " in read_pty(fd, b"# ", timeout=10)
    os.write(fd, b"tty; exit 6\r")
    assert b"/dev/pts/" in read_pty(fd, b"/dev/pts/", timeout=10)
    read_pty(fd, b"never", timeout=1)
    assert _exit_code(pid) == 6
    run_cli("rm", "-f", "exit", check=True)
