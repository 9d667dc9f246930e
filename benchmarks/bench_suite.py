"""The whole default method suite on one national election: wall time and peak memory.

Targets (issue 14): at most 10 s and 1 GB on 2 cores, every method at its suite parameters
(``rozenas-spikes`` at its package's 1,000 resamples and 1,000 interval draws). Each run is a
fresh process with no result cache; suite runs alternate with the reference, one
``pandas.read_csv`` pass over the same file (the least any analysis must do), so the ratio
says how many "reads of the data" the whole suite costs and both sides see the same load.
Wall and CPU times are reported as medians with their range over the repeats.

The suite computes the methods that are not cached on threads, so its progress says nothing of
one method's time: ``--per-method`` adds a last fresh process that runs each method alone, one
after another, and reports its wall and CPU time (CPU time includes a method's own threads).

Usage: ``python benchmarks/bench_suite.py [--dataset russia-2018] [--repeat 3]
[--per-method]`` (needs ``POLLWATCH_DATA_MIRROR`` or a downloaded dataset). Results go to
``benchmarks/results/suite.json`` and standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from _common import write_results

CHILD = r"""
import json, resource, sys, time, zipfile
mode, name = sys.argv[1], sys.argv[2]
from pollwatch.results.datasets import DATASETS, fetch, import_dataset
from pollwatch.settings import load_settings
settings = load_settings()
path = fetch(DATASETS.get(name), settings)
methods = {}
if mode == "pandas":
    import pandas as pd
    start, cpu = time.perf_counter(), time.process_time()
    with zipfile.ZipFile(path) as archive:
        member = [n for n in archive.namelist() if n.endswith(".csv")][0]
        with archive.open(member) as handle:
            pd.read_csv(handle)
    skipped = []
elif mode == "suite":
    from pollwatch.forensics.suite import run_suite
    election = import_dataset(name, settings)
    start, cpu = time.perf_counter(), time.process_time()
    report = run_suite(election)
    skipped = [m for m, _ in report.skipped]
else:  # each method alone, one after another, with its suite parameters
    from pollwatch.forensics.base import METHODS, MethodNotApplicable, get_method, method_names
    election = import_dataset(name, settings)
    election.content_digest()  # the suite computes it once, before any method
    start, cpu = time.perf_counter(), time.process_time()
    skipped = []
    for method in method_names("in_default_suite"):
        one, one_cpu = time.perf_counter(), time.process_time()
        try:
            get_method(method, **dict(METHODS.get(method).suite_parameters)).run(election)
        except MethodNotApplicable:
            skipped.append(method)
        methods[method] = [time.perf_counter() - one, time.process_time() - one_cpu]
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "peak_mib": peak,
                  "methods": methods, "skipped": skipped}))
"""


def measure(mode: str, dataset: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, dataset], check=True, capture_output=True, text=True
    ).stdout
    data: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return data


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="russia-2018")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-method", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, object]]] = {"pandas": [], "suite": []}
    load_before = os.getloadavg()
    for _ in range(args.repeat):  # alternating, so that both see the same load
        for mode in runs:
            runs[mode].append(measure(mode, args.dataset))
    summary: dict[str, dict[str, Any]] = {
        mode: {
            "seconds": spread([float(r["seconds"]) for r in results]),  # type: ignore[arg-type]
            "cpu_seconds": spread([float(r["cpu_seconds"]) for r in results]),  # type: ignore[arg-type]
            "peak_mib": max(float(r["peak_mib"]) for r in results),  # type: ignore[arg-type]
        }
        for mode, results in runs.items()
    }
    suite, reference = summary["suite"], summary["pandas"]
    report: dict[str, object] = {
        "dataset": args.dataset,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "summary": summary,
        "ratio_suite_over_one_read": suite["seconds"]["median"] / reference["seconds"]["median"],
        "skipped": runs["suite"][-1]["skipped"],
    }
    if args.per_method:
        alone = measure("methods", args.dataset)
        report["methods_alone"] = alone["methods"]
    write_results("suite", report)
    wall, cpu = suite["seconds"], suite["cpu_seconds"]
    print(
        f"suite      median {wall['median']:.1f} s ({wall['min']:.1f}-{wall['max']:.1f}), "
        f"CPU {cpu['median']:.1f} s, peak {suite['peak_mib']:.0f} MiB "
        f"(targets 10 s, 1024 MiB; {os.cpu_count()} CPUs)"
    )
    print(f"one read   median {reference['seconds']['median']:.2f} s")
    print(f"ratio suite / one read: {report['ratio_suite_over_one_read']:.1f}x")
    print(f"load average (1, 5, 15 min) before {load_before}, after {report['load_average_after']}")
    methods = report.get("methods_alone")
    if isinstance(methods, dict):
        print("each method alone (wall, CPU):")
        for method, (seconds, cpu_seconds) in sorted(methods.items(), key=lambda m: -m[1][0]):
            print(f"  {method:24s} {seconds:6.2f} s {cpu_seconds:6.2f} s")


if __name__ == "__main__":
    main()
