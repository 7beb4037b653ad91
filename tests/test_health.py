"""Health checks (issue #12): docker's --health-* run flags, the image's
HEALTHCHECK, the library's healthcheck={...}; `ps` shows the verdict,
inspect State.Health, run by the container's monitor through exec."""

import json
import os
import time

import pytest

import diyc
from conftest import assert_one_line_error, wait_for

FAST = ["--health-interval", "100ms", "--health-retries", "2"]


def health(run_cli, name):
    """State.Health (docker's shape) or the record's state.health."""
    info = json.loads(run_cli("inspect", name, check=True).stdout)[0]
    state = info.get("State") or info["state"]
    return state.get("Health") or state.get("health")


def ps_status(run_cli, name):
    for line in run_cli("ps", check=True).stdout.splitlines():
        if line.endswith(" " + name):
            return line
    return ""


class Names:
    """New container names, each removed with remove_all()."""

    def __init__(self, run_cli):
        self.run_cli, self.made = run_cli, []

    def __call__(self):
        self.made.append(f"hc-{os.urandom(3).hex()}")
        return self.made[-1]

    def remove_all(self):
        for n in self.made:
            self.run_cli("rm", "-f", n)
        self.made = []


@pytest.fixture
def names(run_cli):
    made = Names(run_cli)
    yield made
    made.remove_all()


def test_unhealthy_then_healthy(run_cli, names):
    n = names()
    run_cli("run", "-d", "--network", "none", "--name", n, "--health-cmd", "cat /tmp/ok", *FAST,
            "busybox", "sleep", "300", check=True)
    h = wait_for(lambda: (h := health(run_cli, n)) and h["Status"] == "unhealthy" and h,
                 what="unhealthy")
    assert h["FailingStreak"] >= 2
    assert h["Log"][-1]["ExitCode"] == 1 and "No such file" in h["Log"][-1]["Output"]
    assert "(unhealthy)" in ps_status(run_cli, n)
    run_cli("exec", n, "sh", "-c", "echo fine > /tmp/ok", check=True)
    h = wait_for(lambda: (h := health(run_cli, n)) and h["Status"] == "healthy" and h,
                 what="healthy")
    assert h["FailingStreak"] == 0 and h["Log"][-1] == dict(h["Log"][-1], ExitCode=0, Output="fine\n")
    assert len(h["Log"]) <= 5
    assert run_cli("inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}} "
                   "{{json .Config.Healthcheck.Test}}", n, check=True).stdout == \
        'healthy 0 ["CMD-SHELL","cat /tmp/ok"]\n'
    assert "(healthy)" in ps_status(run_cli, n)


def test_a_check_that_outlives_its_timeout_fails(run_cli, names):
    n = names()
    run_cli("run", "-d", "--network", "none", "--name", n, "--health-cmd", "sleep 30",
            "--health-timeout", "200ms", *FAST, "busybox", "sleep", "300", check=True)
    h = wait_for(lambda: (h := health(run_cli, n)) and h["Status"] == "unhealthy" and h,
                 timeout=20, what="unhealthy after timeouts")
    assert h["Log"][-1]["ExitCode"] == -1 and "exceeded timeout" in h["Log"][-1]["Output"]


def test_failures_in_the_start_period_do_not_count(run_cli, names):
    n = names()
    run_cli("run", "-d", "--network", "none", "--name", n, "--health-cmd", "false",
            "--health-start-period", "1h", *FAST, "busybox", "sleep", "300", check=True)
    assert "(health: starting)" in ps_status(run_cli, n)
    h = wait_for(lambda: (h := health(run_cli, n)) and len(h["Log"]) >= 3 and h, what="3 checks")
    assert h["Status"] == "starting" and h["FailingStreak"] == 0


def test_the_images_healthcheck_and_no_healthcheck(run_cli, names, tmp_path):
    tag = f"hcimg:{os.urandom(2).hex()}"
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nHEALTHCHECK --interval=100ms --retries=1 CMD test -e /bin/sh\n")
    run_cli("build", "-q", "-t", tag, str(tmp_path), check=True)
    try:
        with_check, without = names(), names()
        run_cli("run", "-d", "--network", "none", "--name", with_check, tag, "sleep", "300", check=True)
        run_cli("run", "-d", "--network", "none", "--name", without, "--no-healthcheck", tag,
                "sleep", "300", check=True)
        wait_for(lambda: (h := health(run_cli, with_check)) and h["Status"] == "healthy",
                 what="the image's check to pass")
        assert health(run_cli, without) is None
        assert ps_status(run_cli, without).split()[-1] == without and "health" not in \
            ps_status(run_cli, without)
        # a run flag overrides one field of the image's check, the rest stays
        override = names()
        run_cli("run", "-d", "--network", "none", "--name", override, "--health-retries", "3", tag,
                "sleep", "300", check=True)
        rec = json.loads(run_cli("inspect", override, check=True).stdout)[0]
        check = rec.get("healthcheck") or rec["Config"]["Healthcheck"]
        assert (check.get("test") or check.get("Test")) == ["CMD-SHELL", "test -e /bin/sh"]
        assert (check.get("retries") or check.get("Retries")) == 3
    finally:
        names.remove_all()
        run_cli("rmi", tag, check=True)


def test_health_status_events(run_cli, names):
    n, since = names(), time.time()
    run_cli("run", "-d", "--network", "none", "--name", n, "--health-cmd", "true", *FAST,
            "busybox", "sleep", "300", check=True)

    def healthy_event():
        out = run_cli("events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}",
                      "--filter", f"container={n}", "--filter", "event=health_status").stdout
        return out if "health_status: healthy" in out else None
    assert wait_for(healthy_event, what="the health_status event").count("\n") == 1


def test_library_healthcheck(diyc_root):
    with diyc.Container.create("busybox", ["sleep", "300"], network="none", root=str(diyc_root),
                               healthcheck={"test": ["CMD", "true"], "interval": 100_000_000}) as c:
        c.start(detach=True)
        wait_for(lambda: c.reload().health_status == "healthy", what="healthy")
        assert c.record["healthcheck"]["retries"] == 3  # docker's default
    with pytest.raises(diyc.InvalidArgument, match="test"):
        diyc.Container.create("busybox", "true", network="none", root=str(diyc_root),
                              healthcheck={"test": ["RUN"]})


@pytest.mark.parametrize("args, message", [
    (["--health-cmd", "true", "--health-interval", "soon"], "invalid --health-interval"),
    (["--health-cmd", "true", "--health-retries", "-1"], "--health-retries"),
    (["--health-cmd", "true", "--no-healthcheck"], "conflicts"),
    (["--health-cmd", "true", "--health-timeout", "10us"], "the minimum is 1ms"),
])
def test_bad_health_flags(run_cli, args, message):
    assert_one_line_error(run_cli("run", "--rm", "--network", "none", *args, "busybox", "true"),
                          contains=message)


def test_list_filters_health_and_paused(diyc_root):
    with diyc.Container.create("busybox", ["sleep", "60"], network="none", root=str(diyc_root),
                               healthcheck={"test": "true", "interval": "100ms"}) as c, \
            diyc.Container.create("busybox", ["sleep", "60"], network="none",
                                  root=str(diyc_root)) as plain:
        c.start(detach=True)
        plain.start(detach=True)
        wait_for(lambda: c.reload().health_status == "healthy", what="healthy")
        ids = {x.id for x in diyc.Container.list(str(diyc_root), filters={"health": "healthy"})}
        assert c.id in ids and plain.id not in ids
        assert plain.id in {x.id for x in diyc.Container.list(str(diyc_root),
                                                             filters={"health": "none"})}
        plain.pause()
        assert [x.id for x in diyc.Container.list(str(diyc_root), filters={"status": "paused"})] \
            == [plain.id]
        plain.unpause()


def test_a_pulled_images_healthcheck_is_untrusted_input(run_cli, names, tmp_path):
    import registry_util as ru
    registry = ru.Registry(tmp_path / "registry")
    good, bad = f"{registry.host}/hcgood:1", f"{registry.host}/hcbad:1"
    try:
        for repo, check in (("hcgood", {"Test": ["CMD", "true"], "Interval": 100_000_000}),
                            ("hcbad", {"Test": ["CMD-SHELL", "true\u0000rm"]})):
            registry.push_image(repo, "1", [(ru.busybox_layer(), "gzip")],
                                config={"Cmd": ["sleep", "300"], "Healthcheck": check})
            run_cli("pull", "-q", "--insecure", f"{registry.host}/{repo}:1", check=True)
    finally:
        registry.stop()
    try:
        n = names()
        run_cli("run", "-d", "--network", "none", "--name", n, good, check=True)
        wait_for(lambda: (h := health(run_cli, n)) and h["Status"] == "healthy", what="healthy")
        assert_one_line_error(run_cli("run", "--rm", "--network", "none", bad),
                              contains="image config: Healthcheck")
    finally:
        names.remove_all()
        run_cli("rmi", good, bad, check=True)
