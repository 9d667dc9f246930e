"""Import speed and memory against the reference approach, in the same run, as ratios.

Reference: ``pandas.read_csv`` of the same CSV (from the same zip), which parses the table and
nothing more. pollwatch's import also matches protocol lines, parses and checks every count,
flags special stations and normalises the table into the data model.

Each approach runs in a fresh subprocess (so peak memory is its own), ``--repeat`` times; the
median wall time and the peak resident memory are reported, with pollwatch / reference ratios.
Results go to ``benchmarks/results/import.json`` (ignored by git) and to standard output.

Usage: ``python benchmarks/bench_import.py [--dataset russia-2018] [--repeat 5]``
(needs ``POLLWATCH_DATA_MIRROR`` or a downloaded dataset).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

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
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{elapsed} {peak_kib} {rows}")
"""


def measure(mode: str, path: Path, importer: str) -> tuple[float, float, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), importer],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), int(out[1]) / 1024, int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="russia-2018")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from pollwatch.results.datasets import DATASETS, fetch
    from pollwatch.settings import load_settings

    dataset = DATASETS.get(args.dataset)
    path = fetch(dataset, load_settings())
    results = {}
    for mode in ("pandas", "pollwatch"):
        runs = [measure(mode, path, dataset.importer) for _ in range(args.repeat)]
        results[mode] = {
            "median_seconds": statistics.median(r[0] for r in runs),
            "peak_memory_mib": max(r[1] for r in runs),
            "rows": runs[0][2],
            "runs_seconds": [r[0] for r in runs],
        }
    ratio_time = results["pollwatch"]["median_seconds"] / results["pandas"]["median_seconds"]
    ratio_memory = results["pollwatch"]["peak_memory_mib"] / results["pandas"]["peak_memory_mib"]
    report = {
        "dataset": dataset.name,
        "repeat": args.repeat,
        "results": results,
        "ratio_time_pollwatch_over_pandas": ratio_time,
        "ratio_memory_pollwatch_over_pandas": ratio_memory,
    }
    target = Path(__file__).parent / "results" / "import.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(report, indent=2))
    for mode, r in results.items():
        print(
            f"{mode:10s} median {r['median_seconds']:.2f} s  peak {r['peak_memory_mib']:.0f} MiB"
            f"  rows {r['rows']:,}"
        )
    print(f"ratio pollwatch/pandas: time {ratio_time:.2f}x, memory {ratio_memory:.2f}x")


if __name__ == "__main__":
    main()
