#!/usr/bin/env python3
"""critest (the CRI validation suite, cri-tools v1.26.1) against both
RuntimeClass handlers of one private containerd: `runc` and `diyc`
(containerd-shim-runc-v2 driving diyc-runc).

    scripts/critest.py [--focus REGEX] [--handlers runc,diyc] [--record]

Images come from Debian's docker-registry on 127.0.0.1 (critest's
--registry-prefix), filled with images built here from Debian packages:
busybox-static as e2e-test-images/busybox, busybox httpd as the nginx and
httpd images.  Image-manager and Windows specs are skipped.  Prints one
line per handler (`HANDLER  N passed  M failed  K skipped`), writes each
handler's log and the specs it passed under $DIYC_CRITEST_LOGS (default
/var/tmp/diyc-critest), and exits 1 when diyc passes fewer specs than the
floor in tests/cri-conformance-floor.tsv (--record rewrites that file from
this run).  Needs crictl/critest from scripts/build-cri-tools.sh; exits 2
when something it needs is missing."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

import cri_util  # noqa: E402
from registry_util import Registry  # noqa: E402

FLOOR = os.path.join(REPO, "tests", "cri-conformance-floor.tsv")
SKIP = r"Image Manager|[Ww]indows|\[Image\]"
# the images the non-image specs run (layout tag -> the reference critest uses)
IMAGES = {"busybox": "registry.k8s.io/e2e-test-images/busybox:1.29-2",
          "nginx": "registry.k8s.io/e2e-test-images/nginx:1.14-2",
          "httpd": "registry.k8s.io/e2e-test-images/httpd:2.4.39-4",
          "hostnet-nginx": "gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:latest"}
RAN = re.compile(r"Ran (\d+) of (\d+) Specs")
COUNTS = re.compile(r"(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped")


def web_image(layout, workdir, tag, port, page, banner=""):
    """busybox httpd serving `page` on `port`, tagged `tag` in the layout.  It
    stands in for nginx and Apache where the specs look: pid 1's command
    line says "master process" and its pid is in /var/run/nginx.pid, the log
    starts with `banner`; pid 1 is a shell that ends on SIGTERM."""
    root = f"{workdir}/{tag}-root"
    os.makedirs(f"{root}/var/www")
    os.makedirs(f"{root}/var/run")
    with open(f"{root}/var/www/index.html", "w") as f:
        f.write(page)
    cri_util._run("umoci", "new", "--image", f"{layout}:{tag}")
    cri_util._run("umoci", "insert", "--image", f"{layout}:{tag}", f"{workdir}/busybox-root", "/")
    cri_util._run("umoci", "insert", "--image", f"{layout}:{tag}", root, "/")
    script = (f"trap 'kill $!; exit 0' TERM; echo $$ >/var/run/nginx.pid; {banner}"
              f"httpd -f -p {port} -h /var/www & wait  # nginx: master process")
    cri_util._run("umoci", "config", "--image", f"{layout}:{tag}", "--os", "linux",
                  "--architecture", "amd64", "--config.env", "PATH=/bin:/usr/bin",
                  *[a for c in ("sh", "-c", script) for a in ("--config.cmd", c)])


def fill_registry(registry, workdir):
    layout = cri_util.build_images(workdir)
    web_image(layout, workdir, "nginx", 80, "<h1>Welcome to nginx!</h1>\n")
    web_image(layout, workdir, "httpd", 80, "<html><body><h1>It works!</h1></body></html>\n",
              banner="echo \"Command line: 'httpd -D FOREGROUND'\"; ")
    web_image(layout, workdir, "hostnet-nginx", 12003, "<h1>Welcome to nginx!</h1>\n")
    for tag, ref in IMAGES.items():
        cri_util._run("skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                      f"oci:{layout}:{tag}", f"docker://{registry.host}/{ref.split('/', 1)[1]}")
    return layout


def pull_images(ctd, registry):
    """critest's --registry-prefix pulls PREFIX/PATH:latest (it drops the tag)
    but then creates containers from the reference it was built with: pull
    both through CRI from the local registry, and give them the names critest
    uses as well."""
    for ref in IMAGES.values():
        local = f"{registry.host}/{ref.split('/', 1)[1]}"
        ctd.crictl("pull", local)
        names = {ref, local.rsplit(":", 1)[0] + ":latest"} - {local}
        for name in sorted(names):
            ctd.ctr("images", "tag", "--force", local, name)


def run_critest(ctd, handler, registry, focus, logdir):
    args = [cri_util.CRITEST, f"--runtime-endpoint=unix://{ctd.sock}",
            f"--image-endpoint=unix://{ctd.sock}", f"--runtime-handler={handler}",
            f"--registry-prefix={registry.host}", "--ginkgo.no-color",
            f"--ginkgo.skip={SKIP}", f"--ginkgo.junit-report={logdir}/{handler}.xml"]
    if focus:
        args.append(f"--ginkgo.focus={focus}")
    with open(f"{logdir}/{handler}.log", "w") as log:
        subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, timeout=3600)
    text = open(f"{logdir}/{handler}.log").read()
    m = COUNTS.search(text)
    if not m:
        return None
    passed, failed, _, skipped = (int(x) for x in m.groups())
    return {"passed": passed, "failed": failed, "skipped": skipped,
            "specs": passed_specs(f"{logdir}/{handler}.xml")}


def passed_specs(junit):
    """Names of the specs that passed, from ginkgo's JUnit report."""
    import xml.etree.ElementTree as ET
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return []
    out = []
    for case in tree.iter("testcase"):
        if case.get("status") == "passed":
            out.append(case.get("name"))
    return sorted(out)


def read_floor():
    floor = {}
    if os.path.exists(FLOOR):
        for line in open(FLOOR).read().splitlines():
            if line and not line.startswith("#"):
                handler, passed, failed = line.split("\t")[:3]
                floor[handler] = (int(passed), int(failed))
    return floor


def write_floor(results, focus):
    with open(FLOOR, "w") as f:
        f.write("# critest v1.26.1 (non-image, non-Windows specs) on one containerd 1.6,\n"
                f"# {time.strftime('%Y-%m-%d')}{', focus ' + focus if focus else ''}: "
                "handler, specs passed, specs failed (scripts/critest.py --record)\n")
        for handler, r in results.items():
            f.write(f"{handler}\t{r['passed']}\t{r['failed']}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--focus", help="only the specs matching this regex")
    p.add_argument("--handlers", default="runc,diyc")
    p.add_argument("--record", action="store_true", help="rewrite the floor from this run")
    opts = p.parse_args()
    why = cri_util.missing()
    if why is None and not os.access(cri_util.CRITEST, os.X_OK):
        why = f"{cri_util.CRITEST} not built (scripts/build-cri-tools.sh)"
    if why is None and not os.path.exists("/usr/bin/docker-registry"):
        why = "docker-registry is not installed (apt-get install docker-registry)"
    if why:
        print(f"critest: {why}", file=sys.stderr)
        return 2
    logdir = os.environ.get("DIYC_CRITEST_LOGS") or "/var/tmp/diyc-critest"
    logdir = f"{logdir}/{time.strftime('%Y%m%d-%H%M%S')}"
    os.makedirs(logdir)
    work = cri_util.tempdir()
    registry = Registry(f"{work}/registry")
    ctd = None
    results = {}
    try:
        os.makedirs(f"{work}/images")
        fill_registry(registry, f"{work}/images")
        ctd = cri_util.Containerd(f"{work}/containerd", registry=registry.host)
        ctd.start()
        ctd.import_layout(f"{work}/images/layout", {"pause": cri_util.PAUSE_IMAGE})
        pull_images(ctd, registry)
        for handler in opts.handlers.split(","):
            r = run_critest(ctd, handler, registry, opts.focus, logdir)
            if r is None:
                print(f"{handler}: critest printed no result (log: {logdir}/{handler}.log)")
                continue
            results[handler] = r
            with open(f"{logdir}/{handler}-passed.txt", "w") as f:
                f.write("\n".join(r["specs"]) + "\n")
            print(f"{handler}\t{r['passed']} passed\t{r['failed']} failed\t{r['skipped']} skipped")
            sys.stdout.flush()
            ctd.remove_all_pods()
        if "runc" in results and "diyc" in results:
            missing = sorted(set(results["runc"]["specs"]) - set(results["diyc"]["specs"]))
            print(f"passed with runc, not with diyc ({len(missing)}):")
            for name in missing:
                print(f"  {name}")
    finally:
        if ctd is not None:
            shutil.copy(f"{ctd.d}/containerd.log", f"{logdir}/containerd.log") \
                if os.path.exists(f"{ctd.d}/containerd.log") else None
            ctd.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"logs: {logdir}")
    if opts.record:
        write_floor(results, opts.focus)
        return 0
    floor = read_floor().get("diyc")
    if floor and "diyc" in results and results["diyc"]["passed"] < floor[0]:
        print(f"diyc passed {results['diyc']['passed']} specs, fewer than the floor {floor[0]}")
        return 1
    return 0 if "diyc" in results or "diyc" not in opts.handlers else 1


if __name__ == "__main__":
    sys.exit(main())
