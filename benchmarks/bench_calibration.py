"""Calibration throughput: elections per second on Ray against the plain single-process loop.

The same plan (clean simulations only, every registered method with the suite's parameters)
runs twice in this process, each into a fresh cell cache: once with the ``serial`` executor
(the reference: one loop, no Ray) and once with the ``ray`` executor on a local Ray of
``--workers`` CPUs. Both must give identical tables (checked). Reported per cell size:
elections per second of each, their ratio, and Ray's start-up time (shown apart, and folded
into a second ratio), with the machine's CPU count and load average.

Two cell sizes by default: the small plan (``--elections`` x ``--stations``), where Ray's
per-task overhead weighs most, and a larger one (``--large-elections`` x
``--large-stations``) closer to a production cell (~100,000 stations).

Usage: ``python benchmarks/bench_calibration.py [--elections 40] [--stations 20000]
[--large-elections 6] [--large-stations 100000] [--workers 2]``. Results go to
``benchmarks/results/calibration.json`` and standard output.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import write_results
from pollwatch.calibration.executors import ensure_ray
from pollwatch.calibration.harness import CalibrationPlan, build_tables, run_calibration


def measure(elections: int, stations: int, workers: int, work: Path) -> dict[str, Any]:
    """Serial loop, then Ray, on the same plan; elections per second of each and their ratio."""
    plan = CalibrationPlan(elections=elections, stations=stations, replicates=0, references=())
    serial = run_calibration(plan, cache_dir=work / f"serial-{stations}")
    start = time.perf_counter()
    ensure_ray(workers, None)  # started once, after the first serial run (idle Ray costs CPU)
    startup = time.perf_counter() - start
    parallel = run_calibration(
        plan, cache_dir=work / f"ray-{stations}", executor="ray", workers=workers
    )
    same = build_tables(serial, command="bench", date="-") == build_tables(
        parallel, command="bench", date="-"
    )
    serial_rate = serial.elections / serial.seconds
    ray_rate = parallel.elections / parallel.seconds
    return {
        "elections": elections,
        "stations": stations,
        "methods": len(plan.method_specs()),
        "serial_seconds": round(serial.seconds, 2),
        "ray_seconds": round(parallel.seconds, 2),
        "serial_elections_per_second": round(serial_rate, 4),
        "ray_elections_per_second": round(ray_rate, 4),
        "ratio": round(ray_rate / serial_rate, 3),
        "identical_tables": same,
        "ray_start_seconds": round(startup, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elections", type=int, default=40)
    parser.add_argument("--stations", type=int, default=20_000)
    parser.add_argument("--large-elections", type=int, default=6)
    parser.add_argument("--large-stations", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pollwatch-bench-calibration-") as folder:
        sizes = [(args.elections, args.stations)]
        if args.large_elections > 0:
            sizes.append((args.large_elections, args.large_stations))
        for elections, stations in sizes:
            row = measure(elections, stations, args.workers, Path(folder))
            startup = row["ray_start_seconds"] or rows[0]["ray_start_seconds"]
            row["ratio_with_ray_start"] = round(
                row["serial_seconds"] / (row["ray_seconds"] + startup), 3
            )
            rows.append(row)
            print(json.dumps(row))
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "workers": args.workers,
        "runs": rows,
    }
    write_results("calibration", report)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
