"""The whole default method suite on one national election: wall time and peak memory.

Targets (forensics issue): under 30 s on 2 cores and under 2 GB. Each run is a fresh process
with no result cache. The reference in the same run is one ``pandas.read_csv`` pass over the
same file, the least any analysis must do, so the ratio says how many "reads of the data" the
whole suite costs. Per-method times are reported too.

Usage: ``python benchmarks/bench_suite.py [--dataset russia-2018] [--repeat 2]``
(needs ``POLLWATCH_DATA_MIRROR`` or a downloaded dataset). Results go to
``benchmarks/results/suite.json`` and standard output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, zipfile
mode, name = sys.argv[1], sys.argv[2]
from pollwatch.results.datasets import DATASETS, fetch, import_dataset
from pollwatch.settings import load_settings
settings = load_settings()
path = fetch(DATASETS.get(name), settings)
if mode == "pandas":
    import pandas as pd
    start = time.perf_counter()
    with zipfile.ZipFile(path) as archive:
        member = [n for n in archive.namelist() if n.endswith(".csv")][0]
        with archive.open(member) as handle:
            pd.read_csv(handle)
    timings = {}
else:
    from pollwatch.forensics.suite import run_suite
    election = import_dataset(name, settings)
    marks = {}
    def progress(method, index, total):
        marks[method] = time.perf_counter()
    start = time.perf_counter()
    report = run_suite(election, progress=progress)
    names = [n for n in marks]
    timings = {a: marks[b] - marks[a] for a, b in zip(names, names[1:]) if a}
    timings["skipped"] = [m for m, _ in report.skipped]
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "peak_mib": peak, "methods": timings}))
"""


def measure(mode: str, dataset: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, dataset], check=True, capture_output=True, text=True
    ).stdout
    data: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="russia-2018")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    runs = {m: [measure(m, args.dataset) for _ in range(args.repeat)] for m in ("pandas", "suite")}
    summary = {
        mode: {
            "median_seconds": statistics.median(float(r["seconds"]) for r in results),  # type: ignore[arg-type]
            "peak_mib": max(float(r["peak_mib"]) for r in results),  # type: ignore[arg-type]
        }
        for mode, results in runs.items()
    }
    report = {
        "dataset": args.dataset,
        "summary": summary,
        "ratio_suite_over_one_read": summary["suite"]["median_seconds"]
        / summary["pandas"]["median_seconds"],
        "methods_seconds_last_run": runs["suite"][-1]["methods"],
    }
    target = Path(__file__).parent / "results" / "suite.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(report, indent=2))
    suite, reference = summary["suite"], summary["pandas"]
    print(f"suite      median {suite['median_seconds']:.1f} s, peak {suite['peak_mib']:.0f} MiB")
    print(f"one read   median {reference['median_seconds']:.2f} s")
    print(f"ratio suite / one read: {report['ratio_suite_over_one_read']:.1f}x")
    for method, seconds in dict(runs["suite"][-1]["methods"]).items():  # type: ignore[call-overload]
        if method != "skipped":
            print(f"  {method:24s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
