"""benchmarks/report.py on a real pytest-benchmark JSON: a small benchmark
file run by pytest-benchmark with the raw timings saved, then the report
(matplotlib draws the PNG for real)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parent.parent

BENCHMARKS = '''
import time
import pytest

@pytest.mark.benchmark(group="server-run")
def test_crun_server_run(benchmark):
    benchmark.pedantic(time.sleep, args=(0.004,), rounds=12, iterations=1)

@pytest.mark.benchmark(group="server-run")
def test_diyc_warm_run(benchmark):
    benchmark.pedantic(time.sleep, args=(0.002,), rounds=12, iterations=1)
    benchmark.extra_info["ratio_to_crun"] = 0.875

@pytest.mark.benchmark(group="server-run")
def test_diyc_warm_run_bridge(benchmark):
    benchmark.pedantic(time.sleep, args=(0.003,), rounds=12, iterations=1)

@pytest.mark.benchmark(group="other")
def test_not_charted(benchmark):
    benchmark.pedantic(time.sleep, args=(0.001,), rounds=5, iterations=1)
'''


def test_report_from_a_real_benchmark_json(tmp_path):
    (tmp_path / "test_tiny.py").write_text(BENCHMARKS)
    results = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path / "test_tiny.py"), f"--benchmark-json={results}",
                          "--benchmark-save-data"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(json.loads(results.read_text())["benchmarks"][0]["stats"]["data"]) == 12

    out = tmp_path / "out"
    report = subprocess.run([sys.executable, "-m", "benchmarks.report", str(results), "--out",
                             str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    png = (out / "start-latency.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    text = (out / "report.md").read_text()
    assert "![start latency](start-latency.png)" in text and "Caveat" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()
            if line.startswith("| test_")}
    assert set(rows) == {"test_crun_server_run", "test_diyc_warm_run",
                         "test_diyc_warm_run_bridge", "test_not_charted"}
    # the ratio to crun's median in the same group, and p10-p90 from the raw data
    stats = {b["name"]: b["stats"] for b in json.loads(results.read_text())["benchmarks"]}
    ratio = stats["test_diyc_warm_run"]["median"] / stats["test_crun_server_run"]["median"]
    cells = [c.strip() for c in rows["test_diyc_warm_run"].split("|")]
    assert cells[5] == f"{ratio:.2f}x" and rows["test_not_charted"].split("|")[5].strip() == "-"
    data = sorted(stats["test_diyc_warm_run"]["data"])
    low, high = cells[3].split(" ")[0].split("-")
    # (within the table's rounding to 0.01 ms)
    assert data[0] * 1e3 - 0.005 <= float(low) <= float(high) <= data[-1] * 1e3 + 0.005
    assert "(p10-p90)" in cells[3]
    assert "test_diyc_warm_run, with its peers run in turn: 0.88x crun." in text


def test_report_without_a_json_says_so(tmp_path):
    report = subprocess.run([sys.executable, "-m", "benchmarks.report",
                             str(tmp_path / "missing.json")], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert report.returncode != 0 and report.stderr.startswith("report: ")
    assert "Traceback" not in report.stderr
