"""The container's process: environment, working directory, user, exit
codes, stdin, signals."""

import os
import signal

import pytest

from conftest import container_records, running_record, wait_for

IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines())


# -- environment ------------------------------------------------------------

def test_default_environment(cli_path, run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "--hostname", "envbox", "busybox", "env", check=True,
                   env={"DIYC_TEST_HOST_ONLY": "secret"})
    env = env_of(proc.stdout)
    # exactly the image's PATH, HOSTNAME and HOME: nothing of the host leaks in
    assert env == {"PATH": IMAGE_PATH, "HOSTNAME": "envbox", "HOME": "/root"}


def test_env_flags(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-e", "A=1", "-e", "B=two words", "-e", "FROM_HOST",
                   "-e", "NOT_ON_HOST", "-e", "EMPTY=", "--env=C=x=y", "busybox", "env",
                   check=True, env={"FROM_HOST": "host value"})
    env = env_of(proc.stdout)
    assert env["A"] == "1"
    assert env["B"] == "two words"
    assert env["FROM_HOST"] == "host value"
    assert env["EMPTY"] == ""
    assert env["C"] == "x=y"
    assert "NOT_ON_HOST" not in env
    assert env["PATH"] == IMAGE_PATH


def test_env_overrides_path_and_home(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-e", "PATH=/usr/bin:/bin", "-e", "HOME=/tmp", "busybox", "env",
                   check=True)
    env = env_of(proc.stdout)
    assert env["PATH"] == "/usr/bin:/bin"
    assert env["HOME"] == "/tmp"


def test_env_hostname_override_is_the_only_one(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-e", "HOSTNAME=fromflag", "busybox", "env", check=True)
    entries = [l for l in proc.stdout.splitlines() if l.startswith("HOSTNAME=")]
    assert entries == ["HOSTNAME=fromflag"], proc.stdout


def test_env_duplicate_flags_last_wins(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-e", "A=1", "-e", "A=2", "busybox", "env", check=True)
    assert [l for l in proc.stdout.splitlines() if l.startswith("A=")] == ["A=2"]


def test_home_follows_the_user(run_cli):
    def home(*user):
        return run_cli("run", "--network", "none", "--rm", *user, "busybox", "sh", "-c", "echo $HOME",
                       check=True).stdout.strip()
    assert home() == "/root"
    assert home("-u", "nobody") == "/nonexistent"
    assert home("-u", "1000") == "/"


# -- command ------------------------------------------------------------------

def test_default_command_is_the_images_cmd(run_cli):
    # busybox's Cmd is sh: it runs what arrives on stdin
    proc = run_cli("run", "--network", "none", "--rm", "busybox", input="echo $((1 + 2))\n")
    assert proc.stdout == "3\n"


def test_entrypoint(run_cli):
    assert run_cli("run", "--network", "none", "--rm", "--entrypoint", "echo", "busybox", "a", "b",
                   check=True).stdout == "a b\n"
    assert run_cli("run", "--network", "none", "--rm", "--entrypoint", "", "busybox", "echo", "c",
                   check=True).stdout == "c\n"


def test_arguments_are_passed_verbatim(cli_path, run_cli):
    args = ["with space", "$HOME", "*", "", "'quoted'", "-n", "--", "ünïcode"]
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "sh", "-c", 'for a in "$@"; do echo "[$a]"; done',
                   "sh", *args, check=True)
    assert proc.stdout.splitlines() == [f"[{a}]" for a in args]


# -- working directory --------------------------------------------------------

def test_default_workdir_is_root(run_cli):
    assert run_cli("run", "--network", "none", "--rm", "busybox", "pwd", check=True).stdout == "/\n"


def test_workdir_is_created(cli_path, run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-w", "/tmp/newdir/sub", "busybox", "sh", "-c",
                   "pwd; stat -c '%F' .", check=True)
    assert proc.stdout == "/tmp/newdir/sub\ndirectory\n"


def test_existing_workdir(run_cli):
    assert run_cli("run", "--network", "none", "--rm", "--workdir=/etc", "busybox", "ls", "passwd",
                   check=True).stdout == "passwd\n"


# -- user ---------------------------------------------------------------------

def test_default_user_is_root(run_cli):
    assert run_cli("run", "--network", "none", "--rm", "busybox", "id", "-u", check=True).stdout == "0\n"


def test_user_by_uid(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-u", "65534", "busybox", "id", check=True)
    assert proc.stdout == "uid=65534(nobody) gid=65534(nogroup)\n"


def test_user_by_name(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-u", "nobody", "busybox", "id", check=True)
    assert proc.stdout == "uid=65534(nobody) gid=65534(nogroup)\n"


def test_user_uid_gid_not_in_passwd(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-u", "1000:1000", "busybox", "id", check=True)
    assert proc.stdout == "uid=1000 gid=1000\n"


def test_user_really_lacks_root_rights(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-u", "1000", "busybox", "sh", "-c",
                   "cat /etc/shadow-nothere 2>/dev/null; touch /etc/x; echo rc=$?")
    assert "rc=1" in proc.stdout
    assert "Permission denied" in proc.stderr


def test_unknown_user_name_is_rejected(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert proc.returncode == 125
    assert "nosuchuser" in proc.stderr


# -- exit codes -----------------------------------------------------------------

def test_exit_code_passes_through(cli_path, run_cli):
    assert run_cli("run", "--network", "none", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    assert run_cli("run", "--network", "none", "--rm", "busybox", "true").returncode == 0
    assert run_cli("run", "--network", "none", "--rm", "busybox", "false").returncode == 1


def test_signal_death_is_128_plus_signal(cli_path, run_cli, diyc_root):
    """PID 1 of a pid namespace ignores signals it has no handler for, even
    SIGKILL sent from inside: kill it from the host, as the OOM killer would."""
    p = run_cli.popen("run", "--network", "none", "--rm", "busybox", "sleep", "30")
    try:
        rec = running_record(diyc_root)
        os.kill(rec["state"]["pid"], signal.SIGKILL)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + 9, err


def test_child_killed_by_signal(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "sh", "-c", "sh -c 'kill -9 $$'; exit $?")
    assert proc.returncode == 137


def test_command_not_found(cli_path, run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "nosuchcmd")
    assert proc.returncode == 127
    assert proc.stderr == "diyc: executable file not found: nosuchcmd\n"
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "/no/such/path")
    assert proc.returncode == 127
    assert proc.stderr == "diyc: executable file not found: /no/such/path\n"


def test_command_not_executable(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "/etc/passwd")
    assert proc.returncode == 126
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("diyc: ")
    assert "/etc/passwd" in proc.stderr
    assert "Permission denied" in proc.stderr


# -- stdio ------------------------------------------------------------------------

def test_stdin_passes_through(cli_path, run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "cat", input="hi\n")
    assert proc.returncode == 0
    assert proc.stdout == "hi\n"


def test_stdin_large(run_cli):
    data = "".join(f"line {i}\n" for i in range(100000))
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "wc", "-l", input=data)
    assert proc.stdout.split() == ["100000"]


def test_stdout_and_stderr_are_separate(cli_path, run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert proc.stdout == "out\n"
    assert proc.stderr == "err\n"


def test_no_diyc_fds_leak_into_the_container(cli_path, run_cli):
    fds = run_cli("run", "--network", "none", "--rm", "busybox", "ls", "/proc/self/fd", check=True).stdout.split()
    assert sorted(fds) == ["0", "1", "2", "3"]  # 3: the directory ls is reading


# -- signals ----------------------------------------------------------------------

TRAP = 'trap "echo got {0}; exit {1}" {0}; echo ready; while true; do sleep 0.1; done'


def _signal_reaches_pid_1(run_cli, diyc_root, sig, name, code):
    p = run_cli.popen("run", "--network", "none", "--rm", "busybox", "sh", "-c", TRAP.format(name, code))
    try:
        assert p.stdout.readline() == "ready\n"
        wait_for(lambda: container_records(diyc_root) and
                 container_records(diyc_root)[0]["state"].get("status") == "running",
                 what="the running state")
        os.kill(p.pid, sig)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == code, err
    assert out == f"got {name}\n"


def test_sigterm_reaches_pid_1(cli_path, run_cli, diyc_root):
    _signal_reaches_pid_1(run_cli, diyc_root, signal.SIGTERM, "TERM", 7)


def test_sigint_reaches_pid_1(cli_path, run_cli, diyc_root):
    _signal_reaches_pid_1(run_cli, diyc_root, signal.SIGINT, "INT", 8)


def test_sigusr1_reaches_pid_1(run_cli, diyc_root):
    _signal_reaches_pid_1(run_cli, diyc_root, signal.SIGUSR1, "USR1", 9)
