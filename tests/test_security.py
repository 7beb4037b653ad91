"""Escape attempts from a default container, and the opt-outs that make
each of them work (so every test here can fail).

A tiny static C program (`probe`), built by the test with gcc, makes the
system calls busybox has no applet for and prints `ok` or the errno name."""

import io
import json
import os
import socket
import subprocess
import tarfile

import pytest

from conftest import assert_one_line_error

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(long r) {
    if (r < 0) { printf("%s\n", strerrorname_np(errno)); return 1; }
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "keyctl"))   /* KEYCTL_GET_KEYRING_ID of the session keyring */
        return report(syscall(SYS_keyctl, 0, -3, 0));
    if (!strcmp(what, "userns"))
        return report(unshare(CLONE_NEWUSER));
    if (!strcmp(what, "mount"))
        return report(mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(what, "module"))   /* a bad fd: EBADF if the call got through */
        return report(syscall(SYS_finit_module, -1, "", 0));
    if (!strcmp(what, "bpf"))
        return report(syscall(SYS_bpf, 0, NULL, 0));
    if (!strcmp(what, "sysadmin")) {  /* raise CAP_SYS_ADMIN into the effective set */
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) < 0) return report(-1);
        d[0].effective |= 1u << CAP_SYS_ADMIN;
        d[0].permitted |= 1u << CAP_SYS_ADMIN;
        return report(syscall(SYS_capset, &h, d));
    }
    if (!strcmp(what, "readblock")) {  /* argv[2]: a block device node */
        char buf[512];
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return report(-1);
        return report(read(fd, buf, sizeof buf));
    }
    printf("unknown probe\n");
    return 2;
}
"""


@pytest.fixture(scope="module")
def probe_image(diyc_root, tmp_path_factory):
    """An image: the built-in busybox rootfs plus /bin/probe."""
    from diyc.images.store import ImageStore, busybox_rootfs_tar
    work = tmp_path_factory.mktemp("probe")
    (work / "probe.c").write_text(PROBE_C)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(work / "probe"), str(work / "probe.c")],
                   check=True, capture_output=True)
    buf = io.BytesIO(busybox_rootfs_tar())
    with tarfile.open(fileobj=buf, mode="a") as tar:
        tar.add(str(work / "probe"), arcname="bin/probe")
    buf.seek(0)
    store = ImageStore(str(diyc_root))
    store.import_tarball(buf, "probe:latest")
    yield "probe:latest"
    store.remove("probe:latest")


def probe(run_cli, image, *args, flags=()):
    proc = run_cli("run", "--network", "none", "--rm", *flags, image, "probe", *args)
    return proc.stdout.strip()


def status_fields(run_cli, *flags):
    out = run_cli("run", "--network", "none", "--rm", *flags, "busybox", "cat", "/proc/self/status", check=True).stdout
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_default_capabilities_match_docker(run_cli):
    f = status_fields(run_cli)
    # docker's 14 default capabilities
    assert f["CapBnd"].strip() == "00000000a80425fb"
    assert f["CapEff"].strip() == "00000000a80425fb"
    assert f["CapPrm"].strip() == "00000000a80425fb"
    assert f["CapInh"].strip() == "0000000000000000"
    assert f["CapAmb"].strip() == "0000000000000000"
    assert f["NoNewPrivs"].strip() == "0"
    assert f["Seccomp"].strip() == "2"


def test_non_root_user_has_no_effective_capabilities(run_cli):
    f = status_fields(run_cli, "-u", "65534")
    assert f["CapEff"].strip() == "0000000000000000"
    assert f["CapBnd"].strip() == "00000000a80425fb"


def test_cap_add_cap_drop_and_no_new_privileges(run_cli):
    f = status_fields(run_cli, "--cap-drop", "ALL", "--cap-add", "NET_ADMIN",
                      "--security-opt", "no-new-privileges")
    assert f["CapBnd"].strip() == "0000000000001000"  # bit 12: CAP_NET_ADMIN
    assert f["NoNewPrivs"].strip() == "1"
    f = status_fields(run_cli, "--cap-drop", "CHOWN")
    assert f["CapBnd"].strip() == "00000000a80425fa"


def test_privileged_keeps_capabilities_and_has_no_seccomp(run_cli):
    f = status_fields(run_cli, "--privileged")
    with open("/proc/self/status") as host:
        host_bnd = [l for l in host if l.startswith("CapBnd")][0].split()[1]
    assert f["CapBnd"].strip() == host_bnd
    assert f["Seccomp"].strip() == "0"


def test_mount_denied_unless_cap_sys_admin(run_cli, probe_image):
    assert probe(run_cli, probe_image, "mount") == "EPERM"
    assert probe(run_cli, probe_image, "mount", flags=["--cap-add", "SYS_ADMIN"]) == "ok"


def test_keyctl_denied_unless_unconfined(run_cli, probe_image):
    assert probe(run_cli, probe_image, "keyctl") == "EPERM"
    assert probe(run_cli, probe_image, "keyctl",
                 flags=["--security-opt", "seccomp=unconfined"]) == "ok"


def test_user_namespace_denied_unless_unconfined(run_cli, probe_image):
    assert probe(run_cli, probe_image, "userns") == "EPERM"
    assert probe(run_cli, probe_image, "userns",
                 flags=["--security-opt", "seccomp=unconfined"]) == "ok"


def test_kernel_module_load_and_bpf_denied(run_cli, probe_image):
    assert probe(run_cli, probe_image, "module") == "EPERM"
    assert probe(run_cli, probe_image, "bpf") == "EPERM"
    # with everything opened up, the call reaches the kernel, which rejects
    # the bad fd (EBADF) - or has no module support at all (ENOSYS)
    assert probe(run_cli, probe_image, "module", flags=["--privileged"]) in ("EBADF", "ENOSYS")


def test_cannot_raise_a_capability(run_cli, probe_image):
    assert probe(run_cli, probe_image, "sysadmin") == "EPERM"
    assert probe(run_cli, probe_image, "sysadmin", flags=["--cap-add", "SYS_ADMIN"]) == "ok"


@pytest.fixture
def loop_device(tmp_path):
    """A block device the host itself can read: a loop device over a file."""
    img = tmp_path / "disk.img"
    img.write_bytes(b"diyc" * 1024)
    proc = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"no loop devices here: {proc.stderr.strip()}")
    dev = proc.stdout.strip()
    yield os.stat(dev).st_rdev
    subprocess.run(["losetup", "-d", dev], check=True)


def test_block_device_node_cannot_be_read(run_cli, probe_image, loop_device):
    major, minor = os.major(loop_device), os.minor(loop_device)
    script = f"mknod /tmp/disk b {major} {minor} && probe readblock /tmp/disk"
    out = run_cli("run", "--network", "none", "--rm", probe_image, "sh", "-c", script).stdout.strip()
    assert out == "EPERM"   # mknod is allowed (as in docker), opening is not
    out = run_cli("run", "--network", "none", "--rm", "--privileged", probe_image, "sh", "-c", script).stdout.strip()
    assert out == "ok"


def test_proc_paths_masked_and_read_only(run_cli):
    # (busybox's `test -w` says yes to root without asking the kernel, so the
    # read-only paths are checked in mountinfo, not by writing to sysrq-trigger)
    script = ("wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
              "awk '$5 ~ /^\\/proc\\/sys/ {print $5, substr($6, 1, 2)}' /proc/self/mountinfo")
    out = run_cli("run", "--network", "none", "--rm", "busybox", "sh", "-c", script, check=True).stdout.splitlines()
    assert out[:2] == ["0", "0"]
    expected = ["/proc/sys ro"] + (["/proc/sysrq-trigger ro"]
                                   if os.path.exists("/proc/sysrq-trigger") else [])
    assert sorted(out[2:]) == expected
    out = run_cli("run", "--network", "none", "--rm", "--privileged", "busybox", "sh", "-c", script).stdout.splitlines()
    assert int(out[0]) > 0
    assert out[2:] == []


def test_host_processes_invisible(run_cli):
    out = run_cli("run", "--network", "none", "--rm", "busybox", "sh", "-c",
                  f"ls -d /proc/{os.getpid()} 2>/dev/null; ls /proc | grep -c '^[0-9]'",
                  check=True).stdout.split()
    assert out[-1] in ("1", "2", "3")  # sh, ls, grep at most
    assert f"/proc/{os.getpid()}" not in out


def test_no_host_fd_leaks_into_the_container(diyc_root):
    import diyc
    fd = os.open("/etc/hostname", os.O_RDONLY)
    os.set_inheritable(fd, True)
    try:
        r = diyc.run("busybox", ["ls", "/proc/self/fd"], network="none", capture_output=True, root=str(diyc_root))
    finally:
        os.close(fd)
    assert r.exit_code == 0
    # 0-2 and the directory ls is reading
    assert sorted(int(x) for x in r.stdout.split()) == [0, 1, 2, 3]


def test_hostname_change_stays_inside(run_cli):
    before = socket.gethostname()
    proc = run_cli("run", "--network", "none", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c",
                   "hostname evil-host && hostname")
    assert proc.stdout.strip() == "evil-host"
    assert socket.gethostname() == before


def test_sysctl_only_namespaced_keys(run_cli):
    out = run_cli("run", "--network", "none", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "busybox",
                  "cat", "/proc/sys/net/ipv4/ip_forward", check=True).stdout
    assert out.strip() == "1"
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--sysctl", "kernel.panic=1", "busybox", "true"),
                          contains="not a namespaced sysctl")
    assert_one_line_error(run_cli("run", "--rm", "--network", "host", "--sysctl",
                                  "net.ipv4.ip_forward=1", "busybox", "true"),
                          contains="--network host")


def test_ulimit_and_oom_score_adj(run_cli):
    out = run_cli("run", "--network", "none", "--rm", "--ulimit", "nofile=100:200", "--oom-score-adj", "500",
                  "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj",
                  check=True).stdout.split()
    assert out == ["100", "200", "500"]
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--ulimit", "nofile=5:1", "busybox", "true"))
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--ulimit", "bogus=1", "busybox", "true"))


def test_read_only_root_with_tmpfs(run_cli):
    out = run_cli("run", "--network", "none", "--rm", "--read-only", "--tmpfs", "/tmp", "busybox", "sh", "-c",
                  "touch /x 2>/dev/null || echo root-ro; touch /tmp/x && echo tmp-rw").stdout.split()
    assert out == ["root-ro", "tmp-rw"]


def test_seccomp_profile_file(run_cli, tmp_path):
    """--security-opt seccomp=FILE (docker's format): an allow-list profile
    with argument conditions, applied instead of the default."""
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            # kill(pid, 0) is allowed, any other signal number is refused
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        ],
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    out = run_cli("run", "--network", "none", "--rm", "--security-opt", f"seccomp={path}", "busybox", "sh", "-c",
                  "mkdir /tmp/d 2>&1; kill -0 1 && echo probe-ok; kill -USR1 1 2>&1; "
                  "grep -c keyctl /proc/self/status; true").stdout
    assert "Operation not permitted" in out       # mkdir: errnoRet 1
    assert "probe-ok" in out                      # kill(1, 0): allowed by the condition
    assert "Permission denied" in out             # kill(1, USR1): errnoRet 13
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"defaultAction": "SCMP_ACT_MAYBE"}))
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--security-opt", f"seccomp={bad}", "busybox",
                                  "true"), contains="SCMP_ACT_MAYBE")
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--security-opt", f"seccomp={tmp_path}/none.json",
                                  "busybox", "true"), contains="No such file")


@pytest.mark.parametrize("op, value, value_two, signals_denied, signals_allowed", [
    ("SCMP_CMP_EQ", 12, 0, [12], [10, 15]),
    ("SCMP_CMP_NE", 12, 0, [10, 15], [12]),
    ("SCMP_CMP_GT", 12, 0, [15, 31], [10, 12]),
    ("SCMP_CMP_GE", 12, 0, [12, 15], [10]),
    ("SCMP_CMP_LT", 12, 0, [10, 2], [12, 15]),
    ("SCMP_CMP_LE", 12, 0, [12, 10], [15]),
    ("SCMP_CMP_MASKED_EQ", 0b11, 0b10, [10, 2, 14], [12, 15]),
])
def test_seccomp_argument_operators(run_cli, tmp_path, op, value, value_two,
                                    signals_denied, signals_allowed):
    """Each comparison of the BPF compiler, on kill()'s signal argument
    (PID 1 ignores the signals it gets: it has no handlers for them)."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    script = "; ".join(f"kill -{n} 1 2>/dev/null && echo {n}:sent || echo {n}:denied"
                       for n in signals_denied + signals_allowed)
    out = run_cli("run", "--network", "none", "--rm", "--security-opt", f"seccomp={path}", "busybox", "sh", "-c",
                  script, check=True).stdout.split()
    assert out == [f"{n}:denied" for n in signals_denied] + [f"{n}:sent" for n in signals_allowed]


@pytest.fixture
def open_root(diyc_root):
    """A diyc root whose parents others may search (the container's root is
    an unprivileged host uid; pytest's own temp dirs are 0700)."""
    import shutil
    import tempfile
    path = tempfile.mkdtemp(prefix="diyc-userns-", dir="/tmp")
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_user_namespace_auto(run_cli, diyc_root, open_root):
    """--userns auto: container root is an unprivileged host uid; the
    image's files (idmapped layers) still look root-owned inside."""
    env = {"DIYC_ROOT": open_root}
    proc = run_cli("run", "--network", "none", "-d", "--name", "uns", "--userns", "auto", "busybox", "sh", "-c",
                   "echo data > /f; sleep 30", check=True, env=env)
    cid = proc.stdout.strip()
    try:
        out = run_cli("exec", "uns", "sh", "-c", "id -u; stat -c %u /bin/busybox; cat /f; "
                      "mknod /tmp/null c 1 3 2>/dev/null || echo no-mknod",
                      check=True, env=env).stdout
        assert out.split() == ["0", "0", "data", "no-mknod"]
        with open(f"{open_root}/containers/{cid}/container.json") as f:
            rec = json.load(f)
        host_uid = rec["userns"]["uid"]
        assert host_uid >= 65536
        with open(f"/proc/{rec['state']['pid']}/status") as f:
            uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
        assert uids == [str(host_uid)] * 4
        assert os.stat(f"{open_root}/containers/{cid}/upper/f").st_uid == host_uid
        assert os.listdir(f"{open_root}/userns") == [str(rec["userns"]["slot"])]
    finally:
        run_cli("rm", "-f", "uns", check=True, env=env)
    assert os.listdir(f"{open_root}/userns") == []
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--userns", "bogus", "busybox", "true"),
                          contains="--userns")
    # the session root lives under pytest's 0700 temp dir: the init reaches
    # its directories through fds, no path from / has to be open to its uid
    assert run_cli("run", "--network", "none", "--rm", "--userns", "auto", "busybox", "sh", "-c", "id -u; ls /bin/sh",
                   check=True).stdout.split() == ["0", "/bin/sh"]


def test_unsupported_security_opts_rejected(run_cli):
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--security-opt", "apparmor=x", "busybox", "true"),
                          contains="not supported")
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"),
                          contains="unknown capability")
