"""The benchmark report: `benchmarks/report.md` and one chart,
`benchmarks/start-latency.png`, from the JSON pytest-benchmark saved.

Run the benchmarks with the raw timings kept (p10 and p90 need them), then
the report:

    .venv/bin/python -m pytest benchmarks/test_server.py benchmarks/test_start_peers.py \\
        benchmarks/test_start_library.py benchmarks/test_start_network.py \\
        --benchmark-json=benchmarks/results.json --benchmark-save-data
    .venv/bin/python -m benchmarks.report [benchmarks/results.json] [--out DIR]

The chart shows start latency (`/bin/true` in busybox, start to exit):
medians, with whiskers from p10 to p90 (the interquartile range when a
JSON has no raw timings), on a log scale (podman is 30x the others).
Only the benchmarks it knows are charted (SERIES); the tables list every
benchmark of the JSON, with its ratio to crun's median in the same group.
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (benchmark name, label, panel): the chart's bars, top to bottom
SERIES = (
    ("test_crun_server_run", "crun run", "none"),
    ("test_runc_server_run", "runc run", "none"),
    ("test_podman_run_true_network_none", "podman run", "none"),
    ("test_diyc_warm_run", "diyc run (warm server)", "none"),
    ("test_diyc_warm_run_no_pool", "diyc run (warm server, DIYC_SERVER_POOL=off)", "none"),
    ("test_diyc_cold_run", "diyc run (no server: the launcher execs Python)", "none"),
    ("test_diyc_first_call_run", "diyc run (first call: starts the server)", "none"),
    ("test_diyc_library_run_true", "diyc.run() (library, warm process)", "none"),
    ("test_diyc_pool_run_true_warm", "pool.run() (library, warm pool of 4)", "none"),
    ("test_diyc_warm_run_bridge", "diyc run (warm server)", "bridge"),
    ("test_diyc_library_network_bridge", "diyc.run() (library)", "bridge"),
    ("test_podman_run_true_network_bridge", "podman run", "bridge"),
)
PANELS = {"none": "--network none", "bridge": "--network bridge"}
CAVEAT = ("Numbers from one run on a shared 2-core VM where other jobs run at the same time: "
          "absolute times vary by 2x from one machine (or minute) to the next, so compare "
          "the ratios between runtimes measured in the same run, not the milliseconds.  The "
          "chart puts benchmarks of several groups side by side, measured minutes apart under "
          "a load that changes; the tables compare each benchmark with crun measured in its "
          "own group, next to it.")


def load(path):
    with open(path) as f:
        doc = json.load(f)
    return doc, [summary(b) for b in doc.get("benchmarks", [])]


def summary(bench):
    """-> {name, group, median, low, high, whiskers, rounds} in ms."""
    stats = bench["stats"]
    data = stats.get("data")
    if data:
        cuts = statistics.quantiles(data, n=10, method="inclusive")
        low, high, whiskers = cuts[0], cuts[-1], "p10-p90"
    else:
        low, high, whiskers = stats["q1"], stats["q3"], "q1-q3"
    return {"name": bench["name"].split("[")[0], "fullname": bench["name"],
            "group": bench.get("group") or "", "median": stats["median"] * 1e3,
            "low": low * 1e3, "high": high * 1e3, "whiskers": whiskers,
            "rounds": stats["rounds"],
            "ratios": {k[len("ratio_to_"):]: v for k, v in (bench.get("extra_info") or {}).items()
                       if k.startswith("ratio_to_")}}


def charted(results):
    """-> {panel: [(label, result)]}, in SERIES order; a missing benchmark
    is left out."""
    by_name = {}
    for r in results:
        by_name.setdefault(r["name"], r)
    panels = {}
    for name, label, panel in SERIES:
        if name in by_name:
            panels.setdefault(panel, []).append((label, by_name[name]))
    return panels


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = charted(results)
    if not panels:
        raise SystemExit("report: none of the charted benchmarks is in the JSON")
    heights = [len(rows) for rows in panels.values()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.2 + 0.42 * sum(heights)),
                             gridspec_kw={"height_ratios": heights}, sharex=True, squeeze=False)
    for ax, (panel, rows) in zip(axes[:, 0], panels.items()):
        labels = [label for label, _ in rows]
        medians = [r["median"] for _, r in rows]
        errors = [[r["median"] - r["low"] for _, r in rows],
                  [r["high"] - r["median"] for _, r in rows]]
        colors = ["#1f77b4" if label.startswith(("diyc", "pool")) else "#999999"
                  for label in labels]
        y = range(len(rows))
        ax.barh(y, medians, xerr=errors, color=colors, capsize=3)
        ax.set_yticks(list(y), labels)
        ax.invert_yaxis()
        ax.set_title(f"start to exit of busybox true, {PANELS[panel]}", fontsize=10, loc="left")
        for i, (_, r) in enumerate(rows):  # right of the whisker
            ax.text(r["high"] * 1.06, i, f"{r['median']:.1f} ms", va="center", fontsize=8)
    ax = axes[-1, 0]
    ax.set_xscale("log")
    ax.set_xlim(right=max(r["high"] for rows in panels.values() for _, r in rows) * 2.2)
    ax.set_xlabel("milliseconds (median; whiskers p10-p90), log scale")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(doc, results, chart_name):
    lines = ["# Benchmark report", "",
             f"From `{doc.get('_source', 'a pytest-benchmark JSON')}`, "
             f"run {doc.get('datetime', '?')} (pytest-benchmark {doc.get('version', '?')}).", "",
             f"![start latency]({chart_name})", "", f"**Caveat.** {CAVEAT}"]
    machine = doc.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw") or machine.get("processor") or "?"
    lines.append(f"Machine: {machine.get('node', '?')}, {cpu}, "
                 f"{machine.get('cpu', {}).get('count', '?')} CPUs, "
                 f"load average {machine.get('loadavg', '?')} at the end of the run.")
    groups = {}
    for r in results:
        groups.setdefault(r["group"], []).append(r)
    for group in sorted(groups):
        rows = sorted(groups[group], key=lambda r: r["median"])
        crun = next((r for r in rows if "crun" in r["name"].split("_")), None)
        lines += ["", f"## {group or '(no group)'}", "",
                  "| benchmark | median ms | whiskers ms | rounds | vs crun |",
                  "|---|---:|---:|---:|---:|"]
        for r in rows:
            ratio = f"{r['median'] / crun['median']:.2f}x" if crun and r is not crun else "-"
            lines.append(f"| {r['fullname']} | {r['median']:.2f} | {r['low']:.2f}-{r['high']:.2f}"
                         f" ({r['whiskers']}) | {r['rounds']} | {ratio} |")
        for r in rows:  # peers run in turn with it, round by round: steadier under load
            if r["ratios"]:
                said = ", ".join(f"{v:.2f}x {k}" for k, v in r["ratios"].items())
                lines += ["", f"{r['fullname']}, with its peers run in turn: {said}."]
    return "\n".join(lines) + "\n"


def newest_json():
    candidates = [HERE / "results.json"] if (HERE / "results.json").exists() else \
        sorted((HERE.parent / ".benchmarks").glob("*/*.json"), key=os.path.getmtime)
    if not candidates:
        raise SystemExit("report: no JSON given, and neither benchmarks/results.json nor "
                         ".benchmarks/*/*.json exists")
    return candidates[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                     description="report.md and a chart from pytest-benchmark's JSON")
    parser.add_argument("json", nargs="?", help="default: benchmarks/results.json, else the "
                                                "newest .benchmarks/*/*.json")
    parser.add_argument("--out", default=str(HERE), help="directory for report.md and the PNG")
    args = parser.parse_args(argv)
    source = Path(args.json) if args.json else newest_json()
    if not source.is_file():
        raise SystemExit(f"report: {source} not found")
    doc, results = load(source)
    doc["_source"] = source.name
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chart(results, out / "start-latency.png")
    (out / "report.md").write_text(markdown(doc, results, "start-latency.png"))
    print(f"wrote {out / 'report.md'} and {out / 'start-latency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
