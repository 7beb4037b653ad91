"""The command line as a docker user meets it: help everywhere (and help
that does nothing else), errors that name the command, version and info,
bash completion in a real bash, prunes that ask on a terminal (a real pty)
and do nothing without one, ps's filters and aliases."""

import io
import json
import os
import re
import select
import shlex
import subprocess
import sys
import tarfile

import pytest

from conftest import PKG_DIR, Cli, assert_one_line_error, container_records, read_pty


@pytest.fixture
def own(tmp_path):
    """A diyc of its own root (prunes and listings see only this test's
    containers); whatever the test leaves there is removed, and must be."""
    cli = Cli(tmp_path / "root")
    yield cli
    left = container_records(cli.root) if os.path.isdir(f"{cli.root}/containers") else []
    for rec in left:
        cli("rm", "-f", rec["id"])
    cli("network", "prune", "-f")
    assert not left, f"containers left: {[r['name'] for r in left]}"


def on_a_terminal(cli, args, answer):
    """Run diyc with a real pty as its stdin, stdout and stderr; answer
    the [y/N] question -> (exit code, what the terminal showed)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(cli.command + list(args), stdin=slave, stdout=slave, stderr=slave,
                            env=cli.env(), start_new_session=True)
    os.close(slave)
    shown = b""
    try:
        while b"[y/N]" not in shown:
            assert select.select([master], [], [], 30)[0], shown
            shown += os.read(master, 4096)  # (EIO if it exits without asking: a failure)
        os.write(master, answer)
        shown += read_pty(master, timeout=30)
        return proc.wait(timeout=30), shown.decode().replace("\r\n", "\n")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def names(cli, *args):
    """The names `diyc ps ARGS` lists, in its order."""
    return cli("ps", "--format", "{{.Names}}", *args, check=True).stdout.split()


# -- help --------------------------------------------------------------------------

def listed_commands(text):
    """The names under "Commands:" in a help text."""
    block = text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def test_every_command_has_help_by_each_way_of_asking(run_cli):
    main = run_cli("--help", check=True).stdout
    assert main.startswith("Usage:  diyc [OPTIONS] COMMAND")
    assert run_cli("-h", check=True).stdout == main
    assert run_cli("help", check=True).stdout == main
    groups = ["container", "image", "network", "volume", "system"]
    for group in groups:
        assert re.search(rf"^  {group} +Manage ", main, re.M), group
    commands = listed_commands(main)
    assert {"run", "exec", "ps", "rm", "images", "pull", "build", "version", "info",
            "completion"} <= set(commands)
    for group in groups:
        text = run_cli(group, "--help", check=True).stdout
        assert text.startswith(f"Usage:  diyc {group} COMMAND")
        commands += [f"{group} {sub}" for sub in listed_commands(text)]
    assert {"container prune", "container ls", "image prune", "image ls", "network prune",
            "volume prune", "system prune", "system info"} <= set(commands)
    for name in commands:
        text = run_cli(*name.split(), "--help", check=True).stdout
        assert text.startswith(f"Usage:  diyc {name}"), (name, text)
        assert "\nOptions:\n" in text and "--help" in text, name
        assert run_cli("help", *name.split(), check=True).stdout == text, name
        # run's and create's -h is --hostname, as docker's
        if name not in ("run", "container run", "create", "container create"):
            assert run_cli(*name.split(), "-h", check=True).stdout == text, name


def test_command_help_lists_its_options_and_aliases(run_cli):
    text = run_cli("ps", "--help", check=True).stdout
    assert "diyc container ls" in text
    for flag in ("-a, --all", "-f, --filter KEY=VALUE", "-n, --last N", "-l, --latest", "-q, --quiet",
                 "-s, --size"):
        assert flag in text, flag
    text = run_cli("run", "--help", check=True).stdout
    assert re.search(r"^  -m, --memory SIZE +Memory limit", text, re.M)
    assert re.search(r"^  -h, --hostname NAME ", text, re.M)
    assert run_cli("help", "nosuchcommand").returncode == 125


@pytest.mark.parametrize("args", [
    ["container", "prune", "--help"], ["container", "prune", "-f", "--help"],
    ["system", "prune", "-a", "-f", "--volumes", "--help"], ["image", "prune", "-a", "-f", "-h"],
    ["network", "prune", "-f", "--help"], ["volume", "prune", "-f", "--help"],
    ["rm", "-f", "doomed", "--help"], ["stop", "doomed", "--help"], ["kill", "doomed", "-h"],
    ["volume", "rm", "keep", "--help"], ["rmi", "keep:1", "--help"],
])
def test_help_anywhere_prints_help_and_does_nothing(own, args):
    own("run", "--network", "none", "--name", "stopped", "busybox", "true", check=True)
    own("run", "--network", "none", "-d", "--name", "doomed", "busybox", "sleep", "60", check=True)
    own("volume", "create", "keep", check=True)
    own("tag", "busybox", "keep:1", check=True)
    proc = own(*args, check=True)
    assert proc.stdout.startswith("Usage:  diyc ") and proc.stderr == ""
    assert sorted(names(own, "-a")) == ["doomed", "stopped"]
    assert names(own, "--filter", "status=running") == ["doomed"]
    assert "keep" in own("volume", "ls", check=True).stdout
    assert "keep " in own("images", check=True).stdout
    own("rm", "-f", "doomed", "stopped", check=True)


def test_run_help_is_the_containers_after_the_image(own):
    proc = own("run", "--network", "none", "--rm", "busybox", "sh", "-c", 'echo "$@"', "sh", "--help",
               check=True)
    assert proc.stdout == "--help\n"


# -- errors --------------------------------------------------------------------------

@pytest.mark.parametrize("args, line", [
    (["ps", "--foo"], "diyc ps: unknown flag: --foo"),
    (["container", "ls", "--foo"], "diyc container ls: unknown flag: --foo"),
    (["network", "create", "--subnet"], "diyc network create: flag needs an argument: --subnet"),
    (["rm", "--force=maybe", "x"], "diyc rm: flag --force takes no value"),
    (["container", "bogus"], "diyc container: unknown command: bogus"),
    (["container"], "diyc container: a command is needed"),
    (["bogus"], "diyc: unknown command: bogus"),
    (["--bogus", "ps"], "diyc: unknown flag: --bogus"),
])
def test_errors_name_the_command(run_cli, args, line):
    assert assert_one_line_error(run_cli(*args)).startswith(line)


@pytest.mark.parametrize("args, line", [
    (["volume", "create", "a", "b"], '"diyc volume create" requires exactly one volume name'),
    (["network", "connect", "bridge"], '"diyc network connect" requires exactly 2 arguments: NETWORK CONTAINER'),
    (["container", "rename", "x"], '"diyc rename" requires exactly 2 arguments: CONTAINER NEW_NAME'),
    (["volume", "prune", "-f", "-a", "keep"], """"diyc volume prune" accepts no arguments (got 'keep')"""),
    (["volume", "rm"], '"diyc volume rm" requires at least one volume'),
])
def test_a_wrong_number_of_arguments_is_refused_before_anything_is_done(own, args, line):
    """The command table's nargs: checked before the command runs, one line."""
    own("volume", "create", "keep", check=True)
    assert assert_one_line_error(own(*args)) == f"diyc: {line}"
    assert own("volume", "ls", "-q", check=True).stdout.split() == ["keep"]


# -- version, info ---------------------------------------------------------------------

def test_version(run_cli):
    from diyc import __version__
    assert run_cli("--version", check=True).stdout == f"diyc version {__version__}\n"
    text = run_cli("version", check=True).stdout
    assert f"Version: {__version__}\n" in text and f"Kernel: {os.uname().release}\n" in text
    assert json.loads(run_cli("version", "--format", "json", check=True).stdout)["Version"] == __version__


def test_info_says_what_this_machine_and_root_are(own, tmp_path):
    own("run", "--network", "none", "-d", "--name", "up", "busybox", "sleep", "60", check=True)
    own("run", "--network", "none", "--name", "down", "busybox", "true", check=True)
    info = json.loads(own("info", "--format", "json", check=True).stdout)
    assert info["Containers"] == {"Total": 2, "Running": 1, "Stopped": 1}
    assert info["Images"] == 1
    assert info["Root Dir"] == own.root
    assert info["Storage Driver"] == "overlay"
    unified = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    assert info["Cgroup Version"].split()[0] == ("2" if unified else "1")
    assert info["Kernel Version"] == os.uname().release
    assert info["Server"] == "not running"
    text = own("info", check=True).stdout
    assert f"Root Dir: {own.root}\n" in text and " Running: 1\n" in text
    assert own("system", "info", check=True).stdout.startswith("Containers:")
    own("rm", "-f", "up", "down", check=True)
    # a root that does not exist is described, not made
    nowhere = tmp_path / "nowhere"
    info = json.loads(Cli(nowhere)("info", "--format", "json", check=True).stdout)
    assert info["Containers"]["Total"] == 0 and info["Images"] == 0
    assert not nowhere.exists()


# -- completion ---------------------------------------------------------------------------

def test_bash_completion_in_a_real_bash(own, tmp_path):
    own("run", "--network", "none", "-d", "--name", "web-1", "busybox", "sleep", "60", check=True)
    own("network", "create", "compnet", check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "diyc").write_text(f"#!/bin/sh\nexec {shlex.join(own.command)} \"$@\"\n")
    (bin_dir / "diyc").chmod(0o755)
    script = r"""
        source <(diyc completion bash) || exit 9
        complete -p diyc
        t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _diyc
              echo "$*|${COMPREPLY[*]}"; }
        t diyc p
        t diyc ps --la
        t diyc network ""
        t diyc container pr
        t diyc stop w
        t diyc network rm comp
        t diyc run --rm busy
        t diyc run --rm busybox ""
        t diyc run --name ""
        t diyc help vol
        t diyc -
    """
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                          env=dict(own.env(), PATH=f"{bin_dir}:{os.environ['PATH']}"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "complete -F _diyc diyc"
    got = dict(line.split("|", 1) for line in lines[1:])
    assert got["diyc p"].split() == ["ps", "port", "pause", "pull", "push"]
    assert got["diyc ps --la"].split() == ["--last", "--latest"]
    assert got["diyc network "].split() == ["create", "ls", "list", "rm", "remove", "prune", "inspect",
                                          "connect", "disconnect"]
    assert got["diyc container pr"] == "prune"
    assert got["diyc stop w"] == "web-1"
    assert got["diyc network rm comp"] == "compnet"
    assert got["diyc run --rm busy"] == "busybox:latest"
    assert got["diyc run --rm busybox "] == ""  # the container's own command: nothing to offer
    assert got["diyc run --name "] == ""
    assert got["diyc help vol"] == "volume"
    assert got["diyc -"].split() == ["--root", "--help", "--version"]
    own("rm", "-f", "web-1", check=True)
    own("network", "rm", "compnet", check=True)


# -- prunes -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, warning", [
    (["container", "prune"], "This will remove all stopped containers."),
    (["system", "prune"], "This will remove:\n  - all stopped containers\n"),
])
def test_prune_asks_on_a_terminal(own, args, warning):
    own("run", "--network", "none", "--name", "stopped", "busybox", "true", check=True)
    code, shown = on_a_terminal(own, args, b"n\n")
    assert code == 0, shown
    assert f"WARNING! {warning}" in shown and "Are you sure you want to continue? [y/N]" in shown
    assert names(own, "-a") == ["stopped"]
    code, shown = on_a_terminal(own, args, b"y\n")
    assert code == 0, shown
    assert names(own, "-a") == []


@pytest.mark.parametrize("args", [["container", "prune"], ["image", "prune", "-a"], ["network", "prune"],
                                  ["volume", "prune"], ["system", "prune", "-a", "--volumes"]])
def test_prune_without_a_terminal_or_force_does_nothing_and_says_so(own, args):
    own("run", "--network", "none", "--name", "stopped", "-v", "vol:/v", "busybox", "true", check=True)
    own("volume", "create", "unused", check=True)
    own("network", "create", "unusednet", check=True)
    before = own("images", "-q").stdout, own("volume", "ls").stdout, own("network", "ls", "-q").stdout
    proc = own(*args, input="y\n")  # a pipe's bytes are no consent
    line = assert_one_line_error(proc, 1, contains="nothing removed")
    assert line.startswith(f"diyc {' '.join(args[:2])}: ") and "-f" in line
    assert names(own, "-a") == ["stopped"]
    assert (own("images", "-q").stdout, own("volume", "ls").stdout, own("network", "ls", "-q").stdout) \
        == before
    own("rm", "stopped", check=True)
    own("network", "rm", "unusednet", check=True)


def test_prune_with_stdin_closed_says_so(own):
    """No stdin at all (`diyc image prune <&-`): Python's sys.stdin is
    None; still the one line, not a traceback."""
    own("volume", "create", "unused", check=True)
    proc = subprocess.run(own.command + ["volume", "prune"], capture_output=True, text=True,
                          env=own.env(), stdin=subprocess.DEVNULL, timeout=60,
                          preexec_fn=lambda: os.close(0))
    assert_one_line_error(proc, 1, contains="nothing removed")
    assert own("volume", "ls").stdout.split()[-1] == "unused"
    own("volume", "rm", "unused", check=True)


@pytest.mark.parametrize("args", [["import", "-", "closedstdin:1"], ["load"], ["build", "-"],
                                  ["login", "--username", "u", "--password-stdin", "127.0.0.1:9"],
                                  ["cp", "-", "nosuchcontainer:/"]])
def test_commands_reading_a_closed_stdin_say_so(own, args):
    """`<&-` (fd 0 closed: sys.stdin is None) before a command that reads
    stdin: one line naming it, nothing half-made."""
    before = own("images", "-q").stdout
    proc = subprocess.run(own.command + args, capture_output=True, text=True, env=own.env(),
                          stdin=subprocess.DEVNULL, timeout=60, preexec_fn=lambda: os.close(0))
    assert_one_line_error(proc, contains="standard input is closed")
    assert own("images", "-q").stdout == before


def flat_tar(content):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_prunes_with_force_remove_what_nothing_uses(own):
    own("run", "--network", "none", "-d", "--name", "up", "-v", "used:/v", "busybox", "sleep", "60",
        check=True)
    stopped = own("run", "--network", "none", "-d", "--name", "stopped", "busybox", "true",
                  check=True).stdout.strip()
    own("wait", "stopped", check=True)
    own("volume", "create", "unused", check=True)
    # an image without a name: x:1 moves to another image
    first, second = (subprocess.run(own.command + ["import", "-", "x:1"], input=flat_tar(data),
                                    env=own.env(), capture_output=True, check=True).stdout.decode().strip()
                     for data in (b"1", b"2"))
    assert first != second
    assert own("container", "prune", "-f", check=True).stdout == f"{stopped}\n"
    assert names(own, "-a") == ["up"]
    # as docker 23+: named volumes go only with -a
    assert own("volume", "prune", "--force", check=True).stdout == ""
    assert own("volume", "ls", "-q", check=True).stdout.split() == ["unused", "used"]
    assert own("volume", "prune", "-a", "--force", check=True).stdout == "unused\n"
    assert own("volume", "ls", "-q", check=True).stdout == "used\n"
    out = own("image", "prune", "-f", check=True).stdout
    assert f"Deleted: {first}" in out
    images = own("image", "ls", check=True).stdout
    assert "busybox" in images and "x " in images
    out = own("image", "prune", "-a", "-f", check=True).stdout
    assert "Untagged: x:1" in out and "busybox" not in out  # busybox: used by `up`
    own("rm", "-f", "up", check=True)
    out = own("system", "prune", "-a", "-f", "--volumes", check=True).stdout
    assert "Deleted Volumes" not in out and "Untagged: busybox:latest" in out
    assert own("volume", "ls", "-q", check=True).stdout == "used\n"  # named: volume prune -a
    own("volume", "rm", "used", check=True)


# -- ps ----------------------------------------------------------------------------------

def test_ps_filters_last_latest_size_and_aliases(own):
    own("run", "--network", "none", "--name", "ok", "busybox", "true", check=True)
    three = own("run", "--network", "none", "--name", "three", "busybox", "sh", "-c",
                "echo data > /file; exit 3")
    assert three.returncode == 3, three.stderr
    web = own("run", "--network", "none", "-d", "--name", "web-1", "-l", "team=web", "-l", "tier",
              "busybox", "sleep", "60", check=True).stdout.strip()
    assert names(own) == ["web-1"]
    assert names(own, "-a") == ["web-1", "three", "ok"]
    assert names(own, "--filter", "status=exited") == ["three", "ok"]
    assert names(own, "-f", "exited=3") == ["three"]
    assert names(own, "-f", "status=running", "-f", "status=exited") == ["web-1", "three", "ok"]
    assert names(own, "-a", "--filter", "name=web") == ["web-1"]
    assert names(own, "-a", "--filter", "name=web", "--filter", "status=exited") == []
    assert names(own, "-a", "--filter", f"id={web[:6]}") == ["web-1"]
    assert names(own, "-a", "--filter", "ancestor=busybox") == ["web-1", "three", "ok"]
    assert names(own, "-a", "--filter", "network=none") == ["web-1", "three", "ok"]
    assert names(own, "-a", "--filter", "network=bridge") == []
    assert names(own, "-a", "--filter", "label=nosuchlabel") == []
    assert names(own, "-a", "--filter", "label=team") == ["web-1"]
    assert names(own, "-a", "--filter", "label=team=web", "--filter", "label=tier") == ["web-1"]
    assert names(own, "-a", "--filter", "label=team=db") == []
    assert names(own, "-n", "2") == ["web-1", "three"]
    assert names(own, "--last=1") == ["web-1"]
    assert names(own, "-l") == ["web-1"]
    assert own("ps", "-q", "--no-trunc", check=True).stdout == f"{web}\n"
    table = own("ps", "-a", "-s", check=True).stdout.splitlines()
    assert table[0].split()[-1] == "SIZE"
    three_row = next(line for line in table if " three " in line)
    assert re.search(r" 5B \(virtual [\d.]+MB\)$", three_row), three_row  # its /file of 5 bytes
    assert own("container", "ls", "-aq", check=True).stdout == own("ps", "-aq", check=True).stdout
    assert own("container", "list", "-a", "--filter", "exited=3", "-q", check=True).stdout == \
        own("ps", "-a", "--filter", "exited=3", "-q", check=True).stdout != ""
    assert own("image", "ls", check=True).stdout == own("images", check=True).stdout
    assert_one_line_error(own("ps", "--filter", "status=bogus"), 125, contains="status=bogus")
    assert_one_line_error(own("ps", "--filter", "colour=red"), 125, contains="colour")
    assert_one_line_error(own("ps", "--filter", "novalue"), 125, contains="novalue")
    assert_one_line_error(own("ps", "-n", "x"), 125, contains="-n")
    own("rm", "-f", "ok", "three", "web-1", check=True)


# -- start-up cost ------------------------------------------------------------------------

def test_diyc_run_imports_no_other_command_module():
    code = ("import sys; sys.path.insert(0, %r); import diyc.cli; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('diyc.cli'))))" % PKG_DIR)
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["diyc.cli", "diyc.cli.registry", "diyc.cli.run"]


def test_the_readme_lists_every_command():
    """The README's list is the table's (regenerate it with
    `python -m diyc.cli.helptext` when a command is added)."""
    from pathlib import Path
    code = (f"import sys; sys.path.insert(0, {PKG_DIR!r}); import runpy; "
            "runpy.run_module('diyc.cli.helptext', run_name='__main__')")
    listing = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                             check=True).stdout
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- commands: generated from the command table by `python -m diyc.cli.helptext` "
                         "-->\n```\n", 1)[1].split("```\n<!-- end of commands -->", 1)[0]
    assert block == listing, "README's list of commands is stale: paste `python -m diyc.cli.helptext`"
    assert "diyc container prune [OPTIONS]" in block and "diyc completion bash" in block


def test_help_prompt_and_info_through_the_server_too(cli_path, run_cli, request):
    """The same through the C launcher and the diyc server (its worker takes
    the caller's terminal): --help does nothing, the prune asks on the pty,
    and info sees the server."""
    run_cli("run", "--network", "none", "--name", "stopped", "busybox", "true", check=True)
    assert run_cli("container", "prune", "--help", check=True).stdout.startswith(
        "Usage:  diyc container prune")
    assert names(run_cli, "-a") == ["stopped"]
    code, shown = on_a_terminal(run_cli, ["container", "prune"], b"N\n")
    assert code == 0 and "[y/N]" in shown and names(run_cli, "-a") == ["stopped"], shown
    code, shown = on_a_terminal(run_cli, ["container", "prune"], b"y\n")
    assert code == 0 and names(run_cli, "-a") == [], shown
    server = json.loads(run_cli("info", "--format", "json", check=True).stdout)["Server"]
    if cli_path == "server":
        assert server == f"running (pid {request.getfixturevalue('diyc_server').pid()})"
