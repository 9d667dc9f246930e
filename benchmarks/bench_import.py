"""Import speed and memory against the reference approach, in the same run, as ratios.

Reference: ``pandas.read_csv`` of the same CSV (from the same zip), which parses the table and
nothing more. pollwatch's import also matches protocol lines, parses and checks every count,
flags special stations and normalises the table into the data model.

Each approach runs in a fresh subprocess (so peak memory is its own: the child's
``getrusage`` maximum resident set, interpreter and libraries included), ``--repeat`` times,
the two approaches alternating so that a change in the machine's load hits both alike. The
median wall time, the median CPU time (user + system; polars uses several threads, pandas one)
and the peak resident memory are reported, with pollwatch / reference ratios. Both timings
include importing the libraries (``import pandas`` is most of the reference's time). Targets
(issue 12, item 6): time ratio at most 1.0, memory ratio at most 1.5. Results go to
``benchmarks/results/import.json`` (ignored by git) and to standard output.

Usage: ``python benchmarks/bench_import.py [--dataset russia-2018] [--repeat 5]``
(needs ``POLLWATCH_DATA_MIRROR`` or a downloaded dataset; says so and exits when absent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import write_results

CHILD = r"""
import resource, sys, time, zipfile
mode, path, importer = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
if mode == "pandas":
    import pandas as pd
    with zipfile.ZipFile(path) as archive:
        name = [n for n in archive.namelist() if n.endswith(".csv")][0]
        with archive.open(name) as handle:
            frame = pd.read_csv(handle)
    rows = len(frame)
else:
    from pollwatch.results.importers import import_file
    election = import_file(__import__("pathlib").Path(path), importer=importer)
    rows = len(election)
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"{elapsed} {usage.ru_maxrss} {rows} {usage.ru_utime + usage.ru_stime}")
"""


def measure(mode: str, path: Path, importer: str) -> tuple[float, float, int, float]:
    """(wall seconds, peak MiB, rows, CPU seconds) of one fresh child process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), importer],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024, int(out[2]), float(out[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="russia-2018")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from pollwatch.errors import PollwatchError
    from pollwatch.results.datasets import DATASETS, fetch
    from pollwatch.settings import load_settings

    dataset = DATASETS.get(args.dataset)
    try:
        path = fetch(dataset, load_settings())
    except PollwatchError as exc:
        print(f"bench_import: skipped, {args.dataset} is not available ({exc.message})")
        return
    modes = ("pandas", "pollwatch")
    runs: dict[str, list[tuple[float, float, int, float]]] = {mode: [] for mode in modes}
    for _ in range(args.repeat):
        for mode in modes:  # alternating, so that the machine's load hits both alike
            runs[mode].append(measure(mode, path, dataset.importer))
    results: dict[str, dict[str, Any]] = {}
    for mode in modes:
        results[mode] = {
            "median_seconds": statistics.median(r[0] for r in runs[mode]),
            "median_cpu_seconds": statistics.median(r[3] for r in runs[mode]),
            "peak_memory_mib": max(r[1] for r in runs[mode]),
            "rows": runs[mode][0][2],
            "runs_seconds": [r[0] for r in runs[mode]],
        }
    ratio_time = results["pollwatch"]["median_seconds"] / results["pandas"]["median_seconds"]
    ratio_cpu = results["pollwatch"]["median_cpu_seconds"] / results["pandas"]["median_cpu_seconds"]
    ratio_memory = results["pollwatch"]["peak_memory_mib"] / results["pandas"]["peak_memory_mib"]
    report = {
        "dataset": dataset.name,
        "repeat": args.repeat,
        "load_average": os.getloadavg()[0],
        "results": results,
        "ratio_time_pollwatch_over_pandas": ratio_time,
        "ratio_cpu_pollwatch_over_pandas": ratio_cpu,
        "ratio_memory_pollwatch_over_pandas": ratio_memory,
    }
    write_results("import", report)
    for mode, r in results.items():
        print(
            f"{mode:10s} median {r['median_seconds']:.2f} s (CPU {r['median_cpu_seconds']:.2f} s)"
            f"  peak {r['peak_memory_mib']:.0f} MiB  rows {r['rows']:,}"
        )
    print(
        f"ratio pollwatch/pandas: time {ratio_time:.2f}x (target 1.0), CPU {ratio_cpu:.2f}x, "
        f"memory {ratio_memory:.2f}x (target 1.5); load average {report['load_average']:.2f}"
    )


if __name__ == "__main__":
    main()
