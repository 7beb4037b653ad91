"""`diyc inspect` in docker's shape, as a docker user reads it: the JSON
array, `-f/--format` templates, `--type`, images, volumes and networks,
and the library's Container.attrs / diyc.images.inspect giving the same."""

import json
import os
import re

import pytest

from conftest import assert_one_line_error

RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
ZERO_TIME = "0001-01-01T00:00:00Z"


@pytest.fixture
def labelled_image(run_cli, tmp_path):
    """An image with labels (a container inherits them, as in docker)."""
    (tmp_path / "Dockerfile").write_text('FROM busybox\nLABEL team=infra "com.example.tier"=web\n')
    run_cli("build", "-q", "-t", "labelled:1", str(tmp_path), check=True)
    yield "labelled:1"
    run_cli("rmi", "labelled:1")


def inspect(run_cli, *args):
    return json.loads(run_cli("inspect", *args, check=True).stdout)


def test_a_running_container_in_dockers_shape(run_cli, tmp_path, labelled_image):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    cid = run_cli("run", "-d", "--name", "shape", "--network", "none", "-m", "64m", "--cpus", "0.5",
                  "--pids-limit", "50", "-e", "GREETING=hi", "-w", "/tmp", "--restart", "on-failure:3",
                  "-v", "inspectvol:/data", "-v", f"{host_dir}:/host:ro", labelled_image,
                  "sleep", "60", check=True).stdout.strip()
    try:
        (info,) = inspect(run_cli, "shape")
        assert info["Id"] == cid and info["Name"] == "/shape"
        assert RFC3339_NANO.match(info["Created"])
        assert (info["Path"], info["Args"]) == ("sleep", ["60"])
        assert info["Image"].startswith("sha256:")
        state = info["State"]
        assert (state["Status"], state["Running"], state["Paused"], state["Dead"]) == \
            ("running", True, False, False)
        assert state["Pid"] > 0 and os.path.exists(f"/proc/{state['Pid']}")
        assert RFC3339_NANO.match(state["StartedAt"]) and state["FinishedAt"] == ZERO_TIME
        assert (state["ExitCode"], state["OOMKilled"], state["Error"]) == (0, False, "")
        config = info["Config"]
        assert config["Image"] == labelled_image and config["Cmd"] == ["sleep", "60"]
        assert config["Entrypoint"] is None and config["WorkingDir"] == "/tmp"
        assert "GREETING=hi" in config["Env"] and config["Tty"] is False
        assert config["Labels"] == {"team": "infra", "com.example.tier": "web"}
        assert config["Hostname"] == cid[:12]
        host = info["HostConfig"]
        assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (64 << 20, 500_000_000, 50)
        assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        assert host["NetworkMode"] == "none" and host["AutoRemove"] is False
        assert host["Privileged"] is False
        assert sorted(host["Binds"]) == sorted(["inspectvol:/data", f"{host_dir}:/host:ro"])
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == "inspectvol"
        assert mounts["/data"]["RW"] is True
        assert mounts["/host"]["Type"] == "bind" and mounts["/host"]["Source"] == str(host_dir)
        assert (mounts["/host"]["RW"], mounts["/host"]["Mode"]) == (False, "ro")
        assert "none" in info["NetworkSettings"]["Networks"]
        assert info["NetworkSettings"]["IPAddress"] == ""

        # the templates docker users type
        def fmt(template):
            return run_cli("inspect", "-f", template, "shape", check=True).stdout
        assert fmt("{{.State.Pid}}") == f"{state['Pid']}\n"
        assert fmt("{{.Name}} {{.State.Status}}") == "/shape running\n"
        assert json.loads(fmt("{{json .Config}}")) == config
        assert fmt('{{index .Config.Labels "com.example.tier"}}') == "web\n"
        assert fmt("{{range .Mounts}}{{.Destination}},{{end}}") in ("/data,/host,\n", "/host,/data,\n")
        assert fmt("{{if .State.Running}}up{{else}}down{{end}}") == "up\n"
        assert run_cli("inspect", "--format", "{{.HostConfig.Memory}}", "shape", check=True).stdout == \
            f"{64 << 20}\n"
        # ps sees the same labels
        rows = run_cli("ps", "--format", '{{.Names}} {{.Label "team"}} {{.Labels}}', check=True).stdout
        assert "shape infra com.example.tier=web,team=infra" in rows.splitlines()
        # the library's attrs: the same dict
        import diyc
        ctr = diyc.Container.load("shape", root=run_cli.root)
        assert ctr.attrs == info

        run_cli("stop", "-t", "0", "shape", check=True)
        (after,) = inspect(run_cli, "shape")
        assert (after["State"]["Status"], after["State"]["Running"], after["State"]["Pid"]) == \
            ("exited", False, 0)
        assert after["State"]["ExitCode"] == 137 and after["State"]["FinishedAt"] != ZERO_TIME
        assert RFC3339_NANO.match(after["State"]["FinishedAt"])
    finally:
        run_cli("rm", "-f", "shape")
        run_cli("volume", "rm", "inspectvol")


def test_an_exited_container_and_its_exit_code(run_cli):
    assert run_cli("run", "--name", "exited7", "--network", "none", "busybox", "sh", "-c", "exit 7").returncode == 7
    try:
        out = run_cli("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}",
                      "exited7", check=True).stdout
        assert out == "exited 7 false\n"
    finally:
        run_cli("rm", "exited7", check=True)


def test_image_inspect_in_dockers_shape(run_cli, labelled_image):
    (img,) = json.loads(run_cli("image", "inspect", "busybox", check=True).stdout)
    assert img["Id"].startswith("sha256:") and len(img["Id"]) == 71
    assert "busybox:latest" in img["RepoTags"] and img["RepoDigests"] == []
    assert (img["Os"], img["Architecture"]) == ("linux", "amd64")
    assert img["RootFS"]["Type"] == "layers" and len(img["RootFS"]["Layers"]) == 1
    assert img["Config"]["Cmd"] == ["sh"] and img["Size"] > 1_000_000
    # the built-in image has a real date: its busybox binary's
    assert RFC3339_NANO.match(img["Created"]) and not img["Created"].startswith("1970")
    assert inspect(run_cli, "--type", "image", "busybox") == [img]
    assert run_cli("inspect", "-f", "{{index .Config.Labels \"team\"}} {{len .RootFS.Layers}}",
                   labelled_image, check=True).stdout == "infra 1\n"
    import diyc
    assert diyc.images.inspect("busybox", root=run_cli.root) == img


def test_inspect_type_volume_network_and_the_wrong_type(run_cli):
    run_cli("volume", "create", "typedvol", check=True)
    run_cli("network", "create", "typednet", check=True)  # (a definition: no bridge until a run)
    try:
        (vol,) = inspect(run_cli, "--type", "volume", "typedvol")
        assert vol["Name"] == "typedvol" and vol["Driver"] == "local"
        assert vol["Mountpoint"].endswith("/volumes/typedvol/_data") and os.path.isdir(vol["Mountpoint"])
        (net,) = inspect(run_cli, "--type", "network", "typednet")
        assert net["Name"] == "typednet" and net["Driver"] == "bridge"
        subnet = run_cli("network", "ls", "--format", "{{if eq .Name \"typednet\"}}{{.Subnet}}{{end}}",
                         check=True).stdout.strip()
        gateway = subnet.split("/")[0].rsplit(".", 1)[0] + ".1"
        assert net["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gateway}]
        assert run_cli("inspect", "--type", "volume", "-f", "{{.Name}}", "typedvol",
                       check=True).stdout == "typedvol\n"
        # an image is no container: docker's exit 1 for a missing object
        assert_one_line_error(run_cli("inspect", "--type", "container", "busybox"), 1,
                              contains="no such container: busybox")
        assert_one_line_error(run_cli("inspect", "--type", "bogus", "busybox"), 125, contains="bogus")
    finally:
        run_cli("network", "rm", "typednet")
        run_cli("volume", "rm", "typedvol")


@pytest.mark.parametrize("template, message", [
    ("{{.Nope}}", "can't evaluate field Nope"),
    ("{{.State.Pid", "unclosed action"),
    ("{{nosuch .Name}}", 'function "nosuch" not defined'),
])
def test_a_bad_template_is_one_line(run_cli, template, message):
    proc = run_cli("inspect", "-f", template, "busybox")
    line = assert_one_line_error(proc, 125, contains=message)
    assert line.startswith("diyc: template: ") and proc.stdout == ""


def test_network_settings_ports_and_network_inspect(diyc_root):
    """A container on a user network, in a network namespace of the test's
    own (netns_util): its address, gateway, published port, and the
    network's inspect listing it."""
    from netns_util import NsCli, Server, netns
    with netns() as ns:
        net = NsCli(ns, diyc_root)
        network_id = net("network", "create", "inspnet", "--subnet", "10.215.0.0/24", check=True).stdout.strip()
        try:
            with Server(net, "inspweb", "--network", "inspnet", "-p", "127.0.0.1:8611:80") as srv:
                (info,) = json.loads(net("inspect", "inspweb", check=True).stdout)
                settings = info["NetworkSettings"]
                endpoint = settings["Networks"]["inspnet"]
                assert (endpoint["IPAddress"], endpoint["Gateway"], endpoint["IPPrefixLen"]) == \
                    (srv.ip, "10.215.0.1", 24)
                assert endpoint["NetworkID"] == network_id
                assert settings["IPAddress"] == ""  # docker fills it for the default network only
                ports = {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8611"}]}
                assert settings["Ports"] == ports and info["HostConfig"]["PortBindings"] == ports
                assert info["HostConfig"]["NetworkMode"] == "inspnet"
                assert net("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                           "inspweb", check=True).stdout == f"{srv.ip}\n"
                row = net("ps", "--format", "{{.Names}} {{.Ports}} {{.Networks}}", check=True).stdout
                assert "inspweb 127.0.0.1:8611->80/tcp inspnet" in row.splitlines()
                (network,) = json.loads(net("network", "inspect", "inspnet", check=True).stdout)
                assert network["Id"] == network_id and network["Name"] == "inspnet"
                attached = network["Containers"][info["Id"]]
                assert attached["Name"] == "inspweb" and attached["IPv4Address"] == f"{srv.ip}/24"
        finally:
            net("network", "rm", "inspnet")
            net("network", "prune", "-f")
