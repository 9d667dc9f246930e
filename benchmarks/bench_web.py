"""The dashboard on a national election: server time of the election page, and ``pollwatch report``.

Targets (web issue): ``GET /elections/<id>`` under 300 ms with the analysis cached, and
``pollwatch report`` under 10 s. The election is imported into a throwaway store and the whole
default suite is run once to fill the analysis cache (reported as set-up). Then, in one process
with FastAPI's TestClient:

* the first page request (loads the Parquet file, checks protocols, reads the cached results,
  computes the per-region Shpilkin run the region table needs, and caches all of it);
* the median of 20 further page requests (what a user sees once the server is warm);
* references in the same run: the median of 20 ``GET /api/elections/<id>`` (JSON summary) and
  of 20 ``polars.read_parquet`` of the stored stations table.

``pollwatch report`` is timed as a fresh process (imports included), median of 3, with the
cache filled.

Usage: ``python benchmarks/bench_web.py [--dataset russia-2018] [--requests 20]`` (needs
``POLLWATCH_DATA_MIRROR`` or a downloaded dataset). Results go to ``benchmarks/results/web.json``
and standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import polars as pl

from _common import write_results

REPORT_CHILD = r"""
import sys, typer
from pollwatch.cli import app
if not any(c.name == "report" for c in app.registered_commands):
    from pollwatch.cli.web import register
    register(app)
sys.exit(app(["--home", sys.argv[1], "report", sys.argv[2], "-o", sys.argv[3]],
             standalone_mode=False) or 0)
"""


def _median_ms(times: list[float]) -> float:
    return round(1000 * statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="russia-2018")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--reports", type=int, default=3)
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from pollwatch.forensics.suite import run_suite
    from pollwatch.results.datasets import import_dataset
    from pollwatch.results.store import ElectionStore
    from pollwatch.settings import load_settings
    from pollwatch.web.app import create_app

    with tempfile.TemporaryDirectory(prefix="pollwatch-bench-web-") as folder:
        home = Path(folder)
        settings = load_settings({"home": home})
        start = time.perf_counter()
        election = import_dataset(args.dataset, settings)
        ElectionStore(settings.elections_dir).save(election)
        imported = time.perf_counter() - start
        start = time.perf_counter()
        suite = run_suite(election, cache_dir=settings.analysis_dir)
        analysed = time.perf_counter() - start
        print(
            f"set-up: import {imported:.1f} s, suite {analysed:.1f} s "
            f"({len(suite.results)} methods cached)",
            flush=True,
        )

        client = TestClient(create_app(settings))
        page_url = f"/elections/{args.dataset}"
        start = time.perf_counter()
        first = client.get(page_url)
        first_s = time.perf_counter() - start
        assert first.status_code == 200, first.text[:300]

        def timed(url: str) -> list[float]:
            times = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - t0)
                assert response.status_code == 200
            return times

        page_times = timed(page_url)
        api_times = timed(f"/api/elections/{args.dataset}")
        parquet = settings.elections_dir / args.dataset / "stations.parquet"
        parquet_times = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            pl.read_parquet(parquet)
            parquet_times.append(time.perf_counter() - t0)

        report_times = []
        env = dict(os.environ)
        for i in range(args.reports):
            out = home / f"report-{i}.html"
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", REPORT_CHILD, str(home), args.dataset, str(out)],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            report_times.append(time.perf_counter() - t0)
        report_size = (home / "report-0.html").stat().st_size

        result = {
            "dataset": args.dataset,
            "stations": len(election),
            "setup_seconds": {"import": round(imported, 2), "suite": round(analysed, 2)},
            "page_first_request_ms": round(1000 * first_s, 1),
            "page_median_ms": _median_ms(page_times),
            "page_bytes": len(first.content),
            "api_summary_median_ms": _median_ms(api_times),
            "parquet_read_median_ms": _median_ms(parquet_times),
            "ratio_page_over_parquet_read": round(
                statistics.median(page_times) / statistics.median(parquet_times), 2
            ),
            "report_median_seconds": round(statistics.median(report_times), 2),
            "report_bytes": report_size,
            "requests": args.requests,
            "targets": {"page_median_ms": 300, "report_median_seconds": 10},
        }
    print(json.dumps(result, indent=2))
    write_results("web", result)


if __name__ == "__main__":
    main()
