"""diyc-runc: runc's command line over OCI bundles the tests generate.

The create/start/state/kill/delete semantics of the runtime-spec, the
config fields honoured (checked from inside the container), the fields
refused, and a real client (podman) when it is installed and usable."""

import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import io

import pytest

from conftest import REPO, assert_one_line_error, wait_for, wait_pid_gone
from podman_util import private_podman

# $DIYC_RUNC: another diyc-runc (a worktree's, through a wrapper script)
RUNC = os.environ.get("DIYC_RUNC") or str(REPO / ".venv" / "bin" / "diyc-runc")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    from diyc.images.store import busybox_rootfs_tar
    path = tmp_path_factory.mktemp("oci-rootfs") / "rootfs"
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        tar.extractall(path)
    return path


class Runc:
    def __init__(self, root):
        self.root = str(root)

    def __call__(self, *args, check=True, stdout=None, **kwargs):
        # Files, not pipes: a detached container keeps the stdio it was
        # given (runc's pass-through), and a pipe would not see EOF.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            kwargs.setdefault("timeout", 30)
            proc = subprocess.run([RUNC, "--root", self.root, *map(str, args)], text=True,
                                  stdout=stdout or out, stderr=err, **kwargs)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        if check and proc.returncode != 0:
            raise AssertionError(f"diyc-runc {args} exited {proc.returncode}: {proc.stderr}")
        return proc

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def status(self, cid):
        return self.state(cid)["status"]


@pytest.fixture
def runc(tmp_path):
    r = Runc(tmp_path / "runc-root")
    yield r
    left = r("list", "-q", check=False).stdout.split()
    for cid in left:
        r("delete", "--force", cid, check=False)
    assert not left, f"containers left: {left}"
    names = tmp_path / "runc-root" / "names"
    assert not (names.is_dir() and os.listdir(names))


def default_config(rootfs, args):
    from diyc.oci.runc_cli import default_spec
    spec = default_spec()
    spec["root"]["path"] = str(rootfs)
    spec["process"]["args"] = list(args)
    return spec


@pytest.fixture
def bundle(tmp_path, rootfs):
    """make(args, edit=None) -> a bundle dir whose config runs args."""
    n = [0]

    def make(args, edit=None, link_rootfs=False):
        n[0] += 1
        d = tmp_path / f"bundle{n[0]}"
        d.mkdir()
        spec = default_config(rootfs, args)
        if link_rootfs:  # the usual layout: root.path "rootfs", relative
            (d / "rootfs").symlink_to(rootfs)
            spec["root"]["path"] = "rootfs"
        if edit:
            edit(spec)
        (d / "config.json").write_text(json.dumps(spec))
        return d
    return make


def _proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


# -- create / start / state / kill / delete -------------------------------------

def test_create_holds_the_process_until_start(runc, bundle, tmp_path):
    out = tmp_path / "out"
    b = bundle(["sh", "-c", "echo started; exec sleep 60"], link_rootfs=True)
    with open(out, "w") as f:
        runc("create", "--bundle", b, "--pid-file", tmp_path / "pid", "c1", stdout=f)
    pid = int((tmp_path / "pid").read_text())
    st = runc.state("c1")
    assert st == {"ociVersion": st["ociVersion"], "id": "c1", "status": "created", "pid": pid,
                  "bundle": str(b), "annotations": {}}
    assert os.path.exists(f"/proc/{pid}")
    assert out.read_text() == ""          # not exec'd: nothing ran yet
    runc("start", "c1")
    wait_for(lambda: out.read_text() == "started\n", what="the container's output")
    st = runc.state("c1")
    assert st["status"] == "running" and st["pid"] == pid
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    assert runc("start", "c1", check=False).returncode == 1   # only once
    runc("kill", "c1", "KILL")
    wait_for(lambda: runc.status("c1") == "stopped", what="stopped")
    assert runc.state("c1")["pid"] == 0
    runc("delete", "c1")
    proc = runc("state", "c1", check=False)
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_state_after_the_process_exits(runc, bundle):
    runc("create", "--bundle", bundle(["true"]), "c2")
    runc("start", "c2")
    wait_for(lambda: runc.status("c2") == "stopped", what="stopped after exit")
    assert runc("list", "--format", "json").stdout.count('"stopped"') == 1
    runc("delete", "c2")


def test_kill_a_created_container_and_signal_names(runc, bundle, tmp_path):
    runc("create", "--bundle", bundle(["sleep", "60"]), "c3")
    pid = runc.state("c3")["pid"]
    runc("kill", "c3", "9")
    wait_pid_gone(pid)
    assert runc.status("c3") == "stopped"
    proc = runc("kill", "c3", "TERM", check=False)  # nothing to signal: runc's words,
    assert (proc.returncode, proc.stderr) == (1, "diyc-runc: container not running\n")  # for containerd
    runc("delete", "c3")

    out = tmp_path / "trap"
    script = "trap 'echo got USR1; exit 7' USR1; echo ready; while :; do sleep 0.05; done"
    with open(out, "w") as f:
        runc("run", "-d", "--bundle", bundle(["sh", "-c", script]), "c4", stdout=f)
    wait_for(lambda: out.read_text() == "ready\n", what="the trap")
    runc("kill", "c4", "SIGUSR1")
    wait_for(lambda: runc.status("c4") == "stopped", what="exit on USR1")
    assert out.read_text() == "ready\ngot USR1\n"
    runc("delete", "c4")


def test_kill_all_and_ps(runc, bundle):
    runc("run", "-d", "--bundle", bundle(["sh", "-c", "sleep 60 & sleep 60; wait"]), "c5")
    pids = wait_for(lambda: (p := json.loads(runc("ps", "--format", "json", "c5").stdout))
                    and len(p) == 3 and p, what="three processes")
    assert runc.state("c5")["pid"] in pids
    table = runc("ps", "c5").stdout.splitlines()
    assert "PID" in table[0] and len(table) == 4
    runc("kill", "--all", "c5", "KILL")
    wait_for(lambda: runc.status("c5") == "stopped", what="stopped")
    for pid in pids:
        wait_pid_gone(pid)
    runc("delete", "c5")


def test_delete_refuses_a_running_container_unless_forced(runc, bundle):
    runc("run", "--detach", "--bundle", bundle(["sleep", "60"]), "c6")
    pid = runc.state("c6")["pid"]
    proc = runc("delete", "c6", check=False)
    assert proc.returncode == 1 and "running" in proc.stderr
    assert runc.status("c6") == "running"
    runc("delete", "--force", "c6")
    wait_pid_gone(pid)
    assert runc("list", "-q").stdout == ""


def test_ids_are_unique_and_checked(runc, bundle):
    b = bundle(["sleep", "60"])
    runc("create", "--bundle", b, "same")
    proc = runc("create", "--bundle", b, "same", check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    assert runc("create", "--bundle", b, "../evil", check=False).returncode == 1
    proc = runc("delete", "same", check=False)  # the spec: only a stopped one, unless forced
    assert proc.returncode == 1 and "that is not stopped: created" in proc.stderr
    assert runc.status("same") == "created"
    runc("delete", "--force", "same")


def test_run_foreground_exit_code_and_stdio(runc, bundle):
    proc = runc("run", "--bundle", bundle(["sh", "-c", "read x; echo got $x; echo err >&2; exit 42"]),
                "f1", input="hello\n", check=False)
    assert proc.returncode == 42
    assert proc.stdout == "got hello\n" and proc.stderr == "err\n"
    assert runc("list", "-q").stdout == ""  # deleted on exit, as runc run


def test_exec_args_and_process_file(runc, bundle, tmp_path):
    runc("run", "-d", "--bundle", bundle(["sleep", "60"]), "e1")
    proc = runc("exec", "-e", "X=1", "--cwd", "/tmp", "-u", "1000:1000", "e1",
                "sh", "-c", 'echo $X $(pwd) $(id -u):$(id -g); exit 5', check=False)
    assert (proc.returncode, proc.stdout) == (5, "1 /tmp 1000:1000\n")
    process = {"args": ["sh", "-c", "echo $Y; sleep 60"], "env": ["Y=from-file", "PATH=/bin"],
               "cwd": "/", "user": {"uid": 0, "gid": 0}}
    (tmp_path / "p.json").write_text(json.dumps(process))
    out = tmp_path / "exec-out"
    with open(out, "w") as f:
        runc("exec", "--process", tmp_path / "p.json", "--detach", "--pid-file", tmp_path / "epid",
             "e1", stdout=f)
    epid = int((tmp_path / "epid").read_text())
    wait_for(lambda: out.read_text() == "from-file\n", what="exec output")
    assert epid in json.loads(runc("ps", "--format", "json", "e1").stdout)
    assert runc("exec", "e1", "nonexistent-cmd", check=False).returncode != 0
    runc("delete", "--force", "e1")
    wait_pid_gone(epid)


# -- config fields honoured -----------------------------------------------------

def test_process_fields_are_honoured(runc, bundle):
    def edit(spec):
        p = spec["process"]
        p["env"] = ["PATH=/bin:/usr/bin", "GREETING=hi there"]
        p["cwd"] = "/tmp"
        p["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001]}
        p["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]
        p["capabilities"] = {k: ["CAP_KILL", "CAP_CHOWN"] for k in ("bounding", "effective", "permitted")}
        p["oomScoreAdj"] = 123
        spec["hostname"] = "oci-host"
        spec["domainname"] = "oci.example"
    script = ('echo "$GREETING"; pwd; id -u; id -g; id -G; hostname; cat /proc/sys/kernel/domainname; ulimit -n; ulimit -Hn; '
              'grep CapBnd /proc/self/status; cat /proc/self/oom_score_adj')
    proc = runc("run", "--bundle", bundle(["sh", "-c", script], edit), "p1")
    lines = proc.stdout.splitlines()
    assert lines[:9] == ["hi there", "/tmp", "1000", "1001", "1001 2000 2001", "oci-host",
                         "oci.example", "321", "654"], lines
    assert int(lines[9].split()[1], 16) == (1 << 0) | (1 << 5)  # CHOWN, KILL
    assert lines[10] == "123"


def test_unknown_capabilities_are_ignored_with_a_warning(runc, bundle):
    """As runc and crun: a config naming a capability this kernel (or diyc)
    does not know runs without it, saying so on stderr."""
    def edit(spec):
        spec["process"]["capabilities"] = {
            k: ["CAP_KILL", "CAP_TEST_UNKNOWN"] for k in ("bounding", "effective", "permitted")}
    proc = runc("run", "--bundle", bundle(["sh", "-c", "grep CapBnd /proc/self/status"], edit), "c1")
    assert int(proc.stdout.split()[1], 16) == 1 << 5  # CAP_KILL alone
    assert "ignoring unknown or unavailable capabilities: CAP_TEST_UNKNOWN" in proc.stderr


def test_root_mounts_and_masked_paths(runc, bundle, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("from the host\n")

    def edit(spec):
        spec["root"]["readonly"] = True
        spec["mounts"] += [
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700"]},
            {"destination": "/host", "type": "bind", "source": str(shared), "options": ["rbind", "ro"]},
            {"destination": "/rw", "type": "bind", "source": str(shared), "options": ["bind"]},
        ]
        spec["linux"]["maskedPaths"] = ["/proc/interrupts", "/etc/not-there"]
    script = ("touch /x 2>/dev/null && echo root-writable || echo root-ro; "
              "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; stat -c %a /scratch; "
              "cat /host/file; touch /host/y 2>/dev/null && echo host-rw || echo host-ro; "
              "echo written > /rw/new; wc -c < /proc/interrupts")
    proc = runc("run", "--bundle", bundle(["sh", "-c", script], edit), "m1")
    assert proc.stdout.splitlines() == ["root-ro", "tmpfs", "700", "from the host", "host-ro", "0"]
    assert (shared / "new").read_text() == "written\n"


def test_resources_memory_and_pids(runc, bundle):
    def edit(spec):
        spec["linux"]["resources"].update(memory={"limit": 64 << 20}, pids={"limit": 42})
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
              "touch /sys/fs/cgroup/memory/x 2>/dev/null && echo cg-rw || echo cg-ro")
    proc = runc("run", "--bundle", bundle(["sh", "-c", script], edit), "r1", check=False)
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("not a cgroup v1 host")
    assert proc.stdout.splitlines() == [str(64 << 20), "42", "cg-ro"], proc.stderr


def test_resources_cpu_cpuset_and_memory_v1(runc, bundle):
    """The rest of linux.resources on a v1 host, read back by the container
    from its own cgroups (bound at /sys/fs/cgroup/<controller>)."""
    if not os.path.isdir("/sys/fs/cgroup/cpuset"):
        pytest.skip("not a cgroup v1 host with cpuset")

    def edit(spec):
        spec["linux"]["resources"].update(
            cpu={"shares": 2048, "period": 200000, "quota": 50000, "cpus": "0", "mems": "0"},
            memory={"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10,
                    "kernelTCP": 16 << 20, "disableOOMKiller": True})
    files = ["cpu/cpu.shares", "cpu/cpu.cfs_period_us", "cpu/cpu.cfs_quota_us",
             "cpuset/cpuset.cpus", "cpuset/cpuset.mems", "memory/memory.soft_limit_in_bytes",
             "memory/memory.swappiness", "memory/memory.kmem.tcp.limit_in_bytes"]
    script = "cd /sys/fs/cgroup; cat " + " ".join(files) + "; grep oom_kill_disable memory/memory.oom_control"
    proc = runc("run", "--bundle", bundle(["sh", "-c", script], edit), "cg1", check=False)
    assert proc.stdout.split() == ["2048", "200000", "50000", "0", "0", str(32 << 20), "10",
                                   str(16 << 20), "oom_kill_disable", "1"], proc.stderr


def test_resources_the_host_cannot_apply_are_one_line(runc, bundle):
    """No blkio leaf weights without CFQ, no net_cls here, no swappiness 1000:
    refused naming the field and why, never a bare errno; nothing left."""
    cases = []
    if not os.path.exists("/sys/fs/cgroup/blkio/blkio.leaf_weight"):  # BFQ has none
        cases.append(({"blockIO": {"leafWeight": 300}}, "linux.resources.blockIO"))
    if not os.path.isdir("/sys/fs/cgroup/net_cls"):
        cases.append(({"network": {"classID": 1}}, "linux.resources.network.classID"))
    cases.append(({"memory": {"swappiness": 1000}}, "linux.resources.memory.swappiness"))
    for resources, field in cases:
        b = bundle(["true"], lambda s: s["linux"]["resources"].update(resources))
        proc = runc("create", "--bundle", b, "cg2", check=False)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 1 and len(lines) == 1 and field in lines[0], proc.stderr
        assert "Errno" not in lines[0]
        assert runc("list", "-q").stdout == ""


def test_devices_cgroup_denies_what_the_spec_denies(runc, bundle, rootfs):
    def edit(spec):
        spec["linux"]["devices"] = [{"path": "/dev/loop-test", "type": "b", "major": 7, "minor": 0,
                                     "fileMode": 0o600}]
    script = "echo ok > /dev/null && echo null-ok; head -c1 /dev/loop-test >/dev/null 2>&1 || echo denied"
    # the deny-all of the default spec wins for the block device (no allow rule for it here)
    def deny(spec):
        edit(spec)
        spec["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
    proc = runc("run", "--bundle", bundle(["sh", "-c", script], deny), "d1")
    assert proc.stdout.splitlines()[0] == "null-ok"


def test_hooks_get_the_state_on_stdin(runc, bundle, tmp_path):
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$1 $(cat)\" >> {log}\n")
    hook.chmod(0o755)

    def edit(spec):
        spec["hooks"] = {k: [{"path": str(hook), "args": ["hook.sh", k]}]
                         for k in ("prestart", "createRuntime", "poststart", "poststop")}
    runc("create", "--bundle", bundle(["true"], edit), "h1")
    kinds = [line.split(" ", 1)[0] for line in log.read_text().splitlines()]
    assert kinds == ["createRuntime"]   # prestart: once start is called (the spec)
    first = json.loads(log.read_text().splitlines()[0].split(" ", 1)[1])
    assert first["id"] == "h1" and first["status"] == "created" and first["pid"] > 0
    runc("start", "h1")
    wait_for(lambda: runc.status("h1") == "stopped", what="stopped")
    runc("delete", "h1")
    lines = log.read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["createRuntime", "prestart", "poststart",
                                                         "poststop"]
    prestart = json.loads(lines[1].split(" ", 1)[1])
    assert prestart["status"] == "created" and prestart["pid"] == first["pid"]


def test_a_failing_prestart_hook_fails_start_and_deletes_the_container(runc, bundle, tmp_path):
    """The spec's lifecycle: an error, the program never runs, the container is gone."""
    b = bundle(["sh", "-c", f"touch {tmp_path}/ran"],
               lambda s: s.update(hooks={"prestart": [{"path": "/bin/false"}]}))
    runc("create", "--bundle", b, "h3")
    pid = runc.state("h3")["pid"]
    proc = runc("start", "h3", check=False)
    assert proc.returncode == 1 and "prestart hook /bin/false exited with 1" in proc.stderr
    wait_pid_gone(pid)
    assert runc("state", "h3", check=False).returncode == 1
    assert not (tmp_path / "ran").exists()


def test_hooks_in_the_container_namespaces(runc, bundle, tmp_path):
    """createContainer runs after the mounts, before pivot_root (the host's
    paths, the container's namespaces); startContainer inside the container
    just before the process.  Both get the state on stdin."""
    out = tmp_path / "create-state.json"

    def hooks(spec):
        spec["hooks"] = {
            "createContainer": [{"path": "/bin/sh", "args": [
                "sh", "-c", f"cat > {out}; readlink /proc/self/ns/mnt >> {out}"]}],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/shm/start.json"]}],
        }
    proc = runc("run", "--bundle", bundle(["cat", "/dev/shm/start.json"], hooks), "hk1")
    start = json.loads(proc.stdout)
    assert start["id"] == "hk1" and start["status"] == "running" and start["pid"] > 1
    state_line, mnt_ns = out.read_text().rsplit("}", 1)
    created = json.loads(state_line + "}")
    assert created["status"] == "created" and created["pid"] == start["pid"]
    assert mnt_ns.strip() != os.readlink("/proc/self/ns/mnt")  # the container's mounts


def test_exec_into_a_container_with_a_start_hook(runc, bundle):
    """A container's startContainer hooks ran at its start, and an exec
    runs them not again (runc and crun do not)."""
    hook = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo x >> /dev/shm/hooked"]}]}
    runc("run", "-d", "--bundle", bundle(["sleep", "60"], lambda s: s.update(hooks=hook)), "hk3")
    proc = runc("exec", "hk3", "sh", "-c", "echo in; exit 7", check=False)
    assert (proc.returncode, proc.stdout) == (7, "in\n"), proc.stderr
    assert runc("exec", "hk3", "cat", "/dev/shm/hooked").stdout == "x\n"  # (the start's only)
    runc("delete", "--force", "hk3")


def test_preserve_fds(runc, bundle, tmp_path):
    """--preserve-fds 1: our fd 3 is the container's fd 3; fd 4 is not passed."""
    (tmp_path / "passed").write_text("through fd 3\n")
    b = bundle(["sh", "-c", "cat <&3; [ -e /proc/$$/fd/4 ] && echo fd4-leaked; true"])
    script = (f'exec 3<{tmp_path}/passed 4<{tmp_path}/passed; '
              f'exec {RUNC} --root {runc.root} run --preserve-fds 1 --bundle {b} pf1')
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "through fd 3\n"


def test_a_failing_start_hook_fails_the_start(runc, bundle):
    b = bundle(["true"], lambda s: s.update(hooks={"startContainer": [{"path": "/bin/false"}]}))
    proc = runc("run", "--bundle", b, "hk2", check=False)
    assert proc.returncode != 0
    assert "startContainer hook" in proc.stderr and "/bin/false exited with 1" in proc.stderr


def test_a_failing_create_hook_fails_create_and_leaves_nothing(runc, bundle):
    b = bundle(["true"], lambda s: s.update(hooks={"createRuntime": [{"path": "/bin/false"}]}))
    proc = runc("create", "--bundle", b, "h2", check=False)
    assert proc.returncode == 1 and "createRuntime hook /bin/false exited with 1" in proc.stderr
    assert runc("list", "-q").stdout == ""


def test_linux_seccomp_profile_is_applied(runc, bundle):
    """A spec's own seccomp profile: allow everything but `mkdir` and
    `mkdirat`, which fail with the profile's errno (EACCES here)."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    b = bundle(["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x || echo denied"],
               lambda s: s["linux"].update(seccomp=profile))
    proc = runc("run", "--bundle", b, "sc1", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Seccomp:\t2" in proc.stdout and "denied" in proc.stdout
    assert "Permission denied" in proc.stderr


# -- the init's own steps and failures ---------------------------------------------

# Denies the calls of the init's own last steps (fds, rlimits, identity,
# capabilities, workdir, umask): the profile is the program's, never the init's.
NOT_FOR_THE_INIT = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["close_range", "fcntl", "prctl", "capset", "setgroups", "setresuid", "setresgid",
               "chdir", "prlimit64", "setrlimit", "umask"], "action": "SCMP_ACT_ERRNO"}]}
# Kills the init at its last call: a death without a word (SIGSYS).
KILL_AT_EXECVE = {"defaultAction": "SCMP_ACT_ALLOW",
                  "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_KILL"}]}


@pytest.mark.parametrize("no_new_privs", [False, True])
def test_a_seccomp_profile_does_not_constrain_the_inits_own_steps(runc, bundle, tmp_path,
                                                                  run_cli, no_new_privs):
    """As in the conformance suite, whose generated allowlist has no
    close_range: the init's fd, identity and capability work happens before
    the filter, so only the program lives under it (with and without
    noNewPrivileges, as root and as another user)."""
    script = "grep -c '^Seccomp:.2' /proc/self/status; id -u"

    def edit(user):
        def apply(spec):
            spec["linux"]["seccomp"] = NOT_FOR_THE_INIT
            spec["process"]["noNewPrivileges"] = no_new_privs
            spec["process"]["user"] = {"uid": user, "gid": user}
        return apply
    for user in (0, 1000):
        proc = runc("run", "--bundle", bundle(["sh", "-c", script], edit(user)), f"sp{user}",
                    check=False)
        assert (proc.returncode, proc.stdout.split()) == (0, ["1", str(user)]), proc.stderr
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(NOT_FOR_THE_INIT))
    flags = ["--security-opt", "no-new-privileges"] if no_new_privs else []
    proc = run_cli("run", "--network", "none", "--rm", "--security-opt", f"seccomp={path}", *flags, "busybox", "sh",
                   "-c", script)
    assert (proc.returncode, proc.stdout.split()) == (0, ["1", "0"]), proc.stderr


def test_an_init_killed_after_start_is_reported_by_every_front_end(runc, bundle, tmp_path,
                                                                    run_cli, diyc_root, busybox_image):
    """An init that dies between create and execve without a word (here a
    seccomp KILL of its execve): start fails with why, on stderr and in
    --log; state says stopped; diyc-runc run, diyc run and the library fail
    the same way."""
    from diyc.errors import InitError
    from diyc.runtime import Container
    import diyc
    why = "the container's init was killed by SIGSYS before execve"
    b = bundle(["echo", "ran"], lambda s: s["linux"].update(seccomp=KILL_AT_EXECVE))
    log = tmp_path / "runc.log"
    with open(tmp_path / "out", "w") as out:
        runc("--log", log, "create", "--bundle", b, "k1", stdout=out)
        assert runc.status("k1") == "created"
        proc = runc("--log", log, "start", "k1", check=False, stdout=out)
    assert proc.returncode == 1
    assert proc.stderr == f"diyc-runc: init: {why}\n"
    assert why in log.read_text()
    assert runc.state("k1")["status"] == "stopped" and runc.state("k1")["pid"] == 0
    runc("delete", "k1")
    assert (tmp_path / "out").read_text() == ""

    proc = runc("run", "--bundle", b, "k2", check=False)
    assert proc.returncode != 0 and proc.stderr == f"diyc-runc: init: {why}\n"

    path = tmp_path / "profile.json"
    path.write_text(json.dumps(KILL_AT_EXECVE))
    assert_one_line_error(run_cli("run", "--network", "none", "--rm", "--security-opt", f"seccomp={path}", "busybox",
                                  "echo", "ran"), contains=why)
    with pytest.raises(InitError, match=why):
        diyc.run("busybox", ["echo", "ran"], network="none", security_opt=[f"seccomp={path}"], root=str(diyc_root))
    c = Container.create("busybox", ["echo", "ran"], network="none", security_opt=[f"seccomp={path}"],
                         root=str(diyc_root))
    try:
        with pytest.raises(InitError, match=why):
            c.start()
    finally:
        c.remove(force=True)


def test_the_inits_failures_are_create_errors_or_start_errors(runc, bundle, rootfs, tmp_path):
    """As with runc, the init's steps (the program's look-up included) run
    before `create` returns: a failing one is create's error, step and
    errno, on stderr and in --log.  What can only fail after `start` (here
    execve of a file that is no program) is start's error the same way."""
    secret = rootfs / f"secret-{os.getpid()}"
    garbage = rootfs / f"garbage-{os.getpid()}"
    secret.mkdir(mode=0o700)
    garbage.write_text("not a program\n")
    garbage.chmod(0o755)
    log = tmp_path / "runc.log"
    try:
        def edit(spec):
            spec["process"].update(cwd=f"/{secret.name}", user={"uid": 1000, "gid": 1000},
                                   capabilities={})  # no CAP_DAC_OVERRIDE
        proc = runc("--log", log, "create", "--bundle", bundle(["true"], edit), "w1", check=False)
        assert proc.returncode == 1
        assert proc.stderr == f"diyc-runc: chdir: Permission denied (/{secret.name})\n"
        assert "chdir: Permission denied" in log.read_text()
        proc = runc("create", "--bundle", bundle(["/nonexistent"]), "w2", check=False)
        assert proc.returncode == 1
        assert proc.stderr == "diyc-runc: executable file not found: /nonexistent\n"
        assert runc("list", "-q").stdout == ""

        runc("--log", log, "create", "--bundle", bundle([f"/{garbage.name}"]), "w3")
        proc = runc("--log", log, "start", "w3", check=False)
        assert proc.returncode == 1
        assert proc.stderr == f"diyc-runc: cannot execute /{garbage.name}: Exec format error\n"
        assert log.read_text().count("Exec format error") == 1
        assert runc.status("w3") == "stopped"
        runc("delete", "w3")
    finally:
        secret.rmdir()
        garbage.unlink()


def test_join_a_network_namespace_by_path(runc, bundle):
    """linux.namespaces[network].path: the container joins an existing netns
    (here one the test makes, with a dummy link to recognise it)."""
    name = f"diyc-oci-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "marker0", "type", "veth", "peer",
                        "name", "marker1"], check=True)

        def join(spec):
            for ns in spec["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = f"/run/netns/{name}"
        out = runc("run", "--bundle", bundle(["ls", "/sys/class/net"], join), "nj1").stdout
        assert "marker0" in out.split()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_join_a_mount_namespace_by_path(runc, bundle):
    """linux.namespaces[mount].path: the init enters it (and sets the
    rootfs up there); here a namespace a helper process holds."""
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "60"])
    try:
        path = f"/proc/{holder.pid}/ns/mnt"
        wait_for(lambda: os.readlink(path) != os.readlink("/proc/self/ns/mnt"), what="unshare")

        def join(spec):
            for ns in spec["linux"]["namespaces"]:
                if ns["type"] == "mount":
                    ns["path"] = path
        out = runc("run", "--bundle", bundle(["readlink", "/proc/self/ns/mnt"], join), "mj1").stdout
        assert out.strip() == os.readlink(path)
    finally:
        holder.kill()
        holder.wait()


def test_no_mount_namespace_mounts_below_the_rootfs_until_delete(runc, bundle, rootfs, tmp_path):
    """Without a mount namespace (the spec's "inherit"), the container's
    mounts are made in ours, all below its rootfs, entered with chroot;
    delete detaches them all."""
    own = tmp_path / "own-rootfs"
    shutil.copytree(rootfs, own, symlinks=True)

    def no_mntns(spec):
        spec["root"]["path"] = str(own)
        spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"]
                                       if ns["type"] != "mount"]
    out = tmp_path / "out"
    with open(out, "w") as f:
        runc("run", "-d", "--bundle", bundle(["sh", "-c", "readlink /proc/1/ns/mnt; sleep 60"],
                                               no_mntns), "nm1", stdout=f)
    wait_for(lambda: out.read_text().strip(), what="the container's output")
    assert out.read_text().strip() == os.readlink("/proc/self/ns/mnt")  # ours, inherited
    below = {m for m in mounts_here() if m == str(own) or m.startswith(f"{own}/")}
    assert {str(own), f"{own}/proc", f"{own}/dev"} <= below
    runc("delete", "--force", "nm1")
    assert not {m for m in mounts_here() if m == str(own) or m.startswith(f"{own}/")}


def mounts_here():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def test_rootfs_propagation_rslave(runc, bundle, tmp_path):
    """rootfsPropagation rslave: a mount the host makes later, below a shared
    mount the container binds, shows up inside (and default private: not)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", shared], check=True)
    try:
        subprocess.run(["mount", "--make-shared", shared], check=True)

        def binds(propagation):
            def edit(spec):
                spec["mounts"].append({"destination": "/home", "type": "bind", "source": str(shared),
                                       "options": ["rbind"] + ([propagation] if propagation else [])})
                if propagation:
                    spec["linux"]["rootfsPropagation"] = propagation
            return edit
        runc("run", "-d", "--bundle", bundle(["sleep", "60"], binds("rslave")), "rp1")
        runc("run", "-d", "--bundle", bundle(["sleep", "60"], binds(None)), "rp2")
        (shared / "later").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", shared / "later"], check=True)
        try:
            seen = [runc("exec", c, "sh", "-c", "grep -c ' /home/later ' /proc/mounts; true").stdout.strip()
                    for c in ("rp1", "rp2")]
        finally:
            subprocess.run(["umount", shared / "later"], check=True)
            runc("delete", "--force", "rp1")
            runc("delete", "--force", "rp2")
        assert seen == ["1", "0"]
    finally:
        subprocess.run(["umount", "-l", shared], check=True)


def test_user_namespace_with_mappings(runc, rootfs):
    """linux.uidMappings/gidMappings: as with runc, the bundle's rootfs is
    already owned by the mapped range; inside, it is root's."""
    import shutil
    base = 2000000000
    d = tempfile.mkdtemp(prefix="diyc-oci-userns-", dir="/tmp")  # searchable by the range
    os.chmod(d, 0o711)
    try:
        shutil.copytree(rootfs, f"{d}/rootfs", symlinks=True)
        subprocess.run(["chown", "-R", "-h", f"{base}:{base}", f"{d}/rootfs"], check=True)
        spec = default_config(f"{d}/rootfs", ["sh", "-c", "id -u; stat -c %u /bin; cat /proc/self/uid_map"])
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
        with open(f"{d}/config.json", "w") as f:
            json.dump(spec, f)
        out = runc("run", "--bundle", d, "us1").stdout.split()
        assert out[:2] == ["0", "0"] and out[2:5] == ["0", str(base), "65536"]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_user_namespace_create_start_with_a_root_owned_bundle(runc, rootfs, tmp_path):
    """The create/start split in a user namespace whose root is mapped to
    an unprivileged host uid, the bundle and its rootfs root's (readable by
    all): the mapped root still gets its start and report FIFOs (opened for
    it by the runtime) and runs its program once started."""
    base = 2100000000
    d = tempfile.mkdtemp(prefix="diyc-oci-userns-", dir="/tmp")
    os.chmod(d, 0o755)
    try:
        shutil.copytree(rootfs, f"{d}/rootfs", symlinks=True)
        spec = default_config(f"{d}/rootfs", ["sh", "-c", "id -u; cat /proc/self/uid_map"])
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": base, "size": 1000}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": base, "size": 1000}]
        with open(f"{d}/config.json", "w") as f:
            json.dump(spec, f)
        with open(tmp_path / "out", "w") as out:
            runc("create", "--bundle", d, "us2", stdout=out)
            runc("start", "us2")
        wait_for(lambda: runc.status("us2") == "stopped", what="stopped")
        assert (tmp_path / "out").read_text().split()[:3] == ["0", "0", str(base)]
        runc("delete", "us2")
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- what is refused ----------------------------------------------------------------

def _ns(spec, entry):
    spec["linux"]["namespaces"].append(entry)


@pytest.mark.parametrize("edit, field", [
    (lambda s: _ns(s, {"type": "user"}), "linux.uidMappings"),
    (lambda s: s["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "linux.uidMappings"),
    (lambda s: s["linux"].update(seccomp={"defaultAction": "SCMP_ACT_NOPE"}), "SCMP_ACT_NOPE"),
    (lambda s: s["linux"]["namespaces"].append({"type": "user", "path": "/proc/self/ns/user"}),
     "linux.namespaces[user].path"),
    (lambda s: [ns.update(path="/nonexistent/ns") for ns in s["linux"]["namespaces"]
                if ns["type"] == "network"], "does not exist"),
    (lambda s: s.update(hooks={"createContainer": [{"path": "true"}]}), "hooks.createContainer[].path"),
    (lambda s: s["process"].update(apparmorProfile="docker-default"), "process.apparmorProfile"),
    (lambda s: s["linux"]["resources"].update(hugepageLimits=[{"pageSize": "2MB", "limit": 1}]),
     "linux.resources.hugepageLimits"),
    (lambda s: s["linux"].update(intelRdt={"closID": "x"}), "linux.intelRdt"),
    (lambda s: s["mounts"].append({"destination": "/x", "type": "nfs", "source": "h:/x"}),
     "mount type 'nfs'"),
    (lambda s: s.update(ociVersion="2.0.0"), "ociVersion"),
    (lambda s: s["linux"].update(sysctl={"kernel.hostname": "x"}), "kernel.hostname"),
])
def test_unsupported_fields_are_refused_by_name(runc, bundle, edit, field):
    proc = runc("create", "--bundle", bundle(["true"], edit), "u1", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("diyc-runc: ") and field in lines[0], proc.stderr
    assert runc("list", "-q").stdout == ""


def test_terminal_needs_a_console_socket(runc, bundle):
    b = bundle(["true"], lambda s: s["process"].update(terminal=True))
    proc = runc("create", "--bundle", b, "t1", check=False)
    assert proc.returncode == 1 and "--console-socket" in proc.stderr


def test_errors_go_to_the_log_file_as_json(runc, tmp_path):
    log = tmp_path / "runc.log"
    proc = subprocess.run([RUNC, "--root", runc.root, "--log", log, "--log-format", "json",
                           "state", "nope"], capture_output=True, text=True)
    assert proc.returncode == 1
    entry = json.loads(log.read_text())
    assert entry["level"] == "error" and "nope does not exist" in entry["msg"]


def test_spec_and_features(runc, tmp_path):
    runc("spec", "--bundle", tmp_path)
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["ociVersion"].startswith("1.") and spec["root"] == {"path": "rootfs", "readonly": True}
    assert runc("spec", "--bundle", tmp_path, check=False).returncode == 1  # no overwrite
    features = json.loads(runc("features").stdout)
    assert "poststop" in features["hooks"] and "user" in features["linux"]["namespaces"]


# -- a real client ------------------------------------------------------------------

@pytest.fixture
def podman(tmp_path, rootfs):
    """podman of its own, driving diyc-runc, with the rootfs imported as localhost/bbox."""
    with private_podman(RUNC) as run:
        tar = tmp_path / "bb.tar"
        subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
        proc = run("import", tar, "localhost/bbox")
        if proc.returncode != 0:
            pytest.skip(f"podman cannot import an image here: {proc.stderr.strip()[-300:]}")
        yield run


def test_podman_run_rm_exit_code_network_none(podman):
    # podman sends its own seccomp profile (linux.seccomp): diyc compiles it
    proc = podman("run", "--rm", "--network", "none",
                  "localhost/bbox", "sh", "-c", "echo hi from podman; hostname; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines()[0] == "hi from podman"
    assert podman("ps", "-aq").stdout == ""


def test_podman_detached_exec_stop_rm_memory(podman):
    proc = podman("run", "-d", "--name", "p1", "--network", "none", "--memory", "64m",
                  "localhost/bbox", "sleep", "60")
    assert proc.returncode == 0, proc.stderr
    try:
        proc = podman("exec", "p1", "sh", "-c", "echo in-exec; cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                      "2>/dev/null; exit 4")
        assert proc.returncode == 4 and proc.stdout.startswith("in-exec"), proc.stderr
        assert podman("inspect", "-f", "{{.State.Status}}", "p1").stdout.strip() == "running"
        assert podman("stop", "-t", "2", "p1").returncode == 0
        assert podman("inspect", "-f", "{{.State.Status}}", "p1").stdout.strip() == "exited"
    finally:
        assert podman("rm", "-f", "p1").returncode == 0
    assert podman("ps", "-aq").stdout == ""


def test_podman_tty(podman):
    """podman -t: the pty comes back over --console-socket."""
    proc = podman("run", "--rm", "-t", "--network", "none", "localhost/bbox", "sh", "-c",
                  "tty; exit 5", stdin=subprocess.DEVNULL)
    assert proc.returncode == 5, proc.stderr
    assert proc.stdout.strip() == "/dev/pts/0"
    # exec -t: diyc-runc exec --tty --console-socket
    assert podman("run", "-d", "--name", "pt", "--network", "none", "localhost/bbox",
                  "sleep", "60").returncode == 0
    try:
        proc = podman("exec", "-t", "pt", "sh", "-c", "tty; exit 6", stdin=subprocess.DEVNULL)
        assert proc.returncode == 6, proc.stderr
        assert proc.stdout.strip().startswith("/dev/pts/")
    finally:
        podman("rm", "-f", "-t", "0", "pt")
