"""What a container must not see or touch of the host: names, processes,
mounts, the image, devices, /sys, the network, cgroups."""

import os
import re
import socket
import subprocess

from conftest import container_records, tree_snapshot


def out(run_cli, *args):
    """stdout of a `diyc run --rm busybox ...` that must succeed."""
    proc = run_cli("run", "--network", "none", "--rm", *args, check=True)
    return proc.stdout


def host_hostname():
    with open("/proc/sys/kernel/hostname") as f:
        return f.read().strip()


# -- UTS --------------------------------------------------------------------

def test_hostname_option(run_cli):
    before = host_hostname()
    assert out(run_cli, "--hostname", "box-1.test", "busybox", "hostname") == "box-1.test\n"
    assert host_hostname() == before
    assert socket.gethostname() == before


def test_default_hostname_is_12_hex_and_in_env(run_cli):
    before = host_hostname()
    name, env_name = out(run_cli, "busybox", "sh", "-c", "hostname; echo $HOSTNAME").split()
    assert re.fullmatch(r"[0-9a-f]{12}", name), name
    assert env_name == name
    assert name != before
    assert host_hostname() == before


def test_hostname_of_named_container_matches_id(run_cli, diyc_root):
    proc = run_cli("run", "--network", "none", "--name", "hn2", "busybox", "hostname", check=True)
    try:
        (rec,) = container_records(diyc_root)
        assert proc.stdout.strip() == rec["id"][:12]
    finally:
        run_cli("rm", "hn2", check=True)


# -- PID --------------------------------------------------------------------

def test_command_is_pid_1(run_cli):
    assert out(run_cli, "busybox", "sh", "-c", "echo $$") == "1\n"


def test_ps_shows_only_the_containers_processes(run_cli):
    text = out(run_cli, "busybox", "sh", "-c", "ps -o pid,comm; true")
    rows = [line.split() for line in text.splitlines()[1:]]
    assert len(rows) == 2, text                     # sh and ps, nothing of the host
    assert ["1", "sh"] in rows, text
    assert {r[1] for r in rows} == {"sh", "ps"}, text
    # and /proc has exactly those pids
    pids = out(run_cli, "busybox", "sh", "-c", "ls /proc | grep -E '^[0-9]+$' | wc -l; true")
    assert int(pids) <= 4  # sh, ls, grep, wc
    assert str(os.getpid()) not in out(run_cli, "busybox", "ls", "/proc").split()


# -- mounts -----------------------------------------------------------------

def test_host_mount_is_invisible(run_cli, tmp_path):
    target = tmp_path / "hostmnt"
    target.mkdir()
    marker = f"diyctestmark{os.getpid()}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", marker, str(target)], check=True)
    try:
        with open("/proc/self/mounts") as f:
            assert marker in f.read()  # the host sees it
        inside = out(run_cli, "busybox", "cat", "/proc/mounts")
        assert marker not in inside
        assert str(target) not in inside
        # the container's root is its overlay, and nothing of the host is mounted
        mountpoints = [line.split()[1] for line in inside.splitlines()]
        assert mountpoints[0] == "/"
        assert all(m == "/" or m.startswith(("/proc", "/dev", "/sys")) for m in mountpoints), inside
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_writes_do_not_touch_the_image(run_cli, busybox_layer):
    before = tree_snapshot(busybox_layer)
    out(run_cli, "busybox", "sh", "-c",
        "echo x > /etc/written-by-test && echo y >> /etc/passwd && rm /bin/ls && mkdir /newdir")
    seen = out(run_cli, "busybox", "sh", "-c",
               "ls /etc/written-by-test /newdir 2>&1; test -e /bin/ls && echo ls-present; "
               "grep -c . /etc/passwd")
    assert "ls-present" in seen
    assert seen.count("No such file or directory") == 2, seen
    assert seen.splitlines()[-1] == "3"  # passwd has its 3 lines, not 4
    assert tree_snapshot(busybox_layer) == before


def test_dev_has_only_the_default_devices(run_cli):
    names = set(out(run_cli, "busybox", "ls", "-A", "/dev").split())
    assert names == {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
                     "mqueue", "fd", "stdin", "stdout", "stderr", "core"}
    assert not {"sda", "vda", "xvda", "nvme0n1", "mem", "kmsg", "loop0"} & names
    kinds = out(run_cli, "busybox", "stat", "-c", "%n %F %t %T", "/dev/null", "/dev/zero",
                "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty").splitlines()
    assert kinds == ["/dev/null character special file 1 3",
                     "/dev/zero character special file 1 5",
                     "/dev/full character special file 1 7",
                     "/dev/random character special file 1 8",
                     "/dev/urandom character special file 1 9",
                     "/dev/tty character special file 5 0"]
    # and they work
    assert out(run_cli, "busybox", "sh", "-c",
               "echo gone > /dev/null && head -c 4 /dev/zero | wc -c") == "4\n"


def test_sys_is_read_only(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "busybox", "sh", "-c",
                   "touch /sys/diyc-test; echo rc=$?; grep ' /sys ' /proc/mounts")
    assert "rc=1" in proc.stdout
    assert "Read-only file system" in proc.stderr
    (line,) = [l for l in proc.stdout.splitlines() if " /sys " in l]
    assert "ro" in line.split()[3].split(","), line


# -- network ----------------------------------------------------------------

def interfaces(proc_net_dev):
    return {line.split(":")[0].strip() for line in proc_net_dev.splitlines()[2:]}


def test_network_none_has_only_loopback_and_it_is_up(run_cli):
    text = out(run_cli, "busybox", "sh", "-c",
               "cat /proc/net/dev; echo FLAGS $(cat /sys/class/net/lo/flags); ifconfig lo")
    dev, _, rest = text.partition("FLAGS ")
    assert interfaces(dev) == {"lo"}
    flags = int(rest.split()[0], 16)
    assert flags & 0x1, rest   # IFF_UP
    assert "UP" in rest.split("\n", 1)[1]
    assert "127.0.0.1" in rest


def test_network_host_sees_host_interfaces(run_cli):
    with open("/proc/net/dev") as f:
        host = interfaces(f.read())
    assert len(host) > 1, "the host has only lo: this test means nothing here"
    inside = interfaces(out(run_cli, "--network", "host", "busybox", "cat", "/proc/net/dev"))
    assert inside == host


# -- cgroup -----------------------------------------------------------------

def test_cgroup_namespace_hides_the_host_path(run_cli):
    lines = out(run_cli, "-m", "64m", "busybox", "cat", "/proc/self/cgroup").splitlines()
    assert any(":memory:" in line for line in lines), lines
    assert all(line.endswith(":/") for line in lines), lines
    assert all("diyc-" not in line for line in lines), lines


def test_read_only_root(run_cli):
    proc = run_cli("run", "--network", "none", "--rm", "--read-only", "busybox", "sh", "-c",
                   "touch /x; echo rc=$?; echo shm > /dev/shm/f && cat /dev/shm/f")
    assert proc.stdout == "rc=1\nshm\n"
    assert "Read-only file system" in proc.stderr
    # and without --read-only the root is writable
    assert run_cli("run", "--network", "none", "--rm", "busybox", "touch", "/x").returncode == 0
