"""The dashboard while an import runs: election-page latency during a 50 MB import vs idle.

Issue 17 (finding 3): imports ran on the server's event loop, so while one ran every other
request waited. Target: the election page's median latency while a 50 MB import runs within 2x
of its idle median, measured in the same run.

The server is ``pollwatch serve``'s own configuration (uvicorn, ``server_config``) in a child
process, over a throwaway store holding a simulated election (``--stations``, default 20,000) whose
page is warmed (fast analysis cached) first. The load comes from this process: ``--requests``
(2,000) ``GET /elections/<id>`` at concurrency ``--concurrency`` (20), with httpx.

1. idle: the requests with nothing else running (the reference);
2. during import: a generated 50 MB Kobak/Shpilkin CSV (``--megabytes``) is uploaded with
   ``POST /api/elections/import?wait=0`` and the same requests are sent while it runs; when an
   import ends before the requests do, the next one starts (a new election id each time), so an
   import runs throughout. A request counts as "during" when its life overlapped an import.
   An older server that imports inside the request (no job, 201 after the import) is measured
   the same way: its import runs while the upload request is open.

Reported: medians, 95th percentiles, maxima and the longest silence (the longest time between
two answers) of both phases, the ratio of the medians, the imports run and how long each took.
Nothing is asserted. The load is closed-loop, as the issue asks (2,000 requests at concurrency
20): a server that stalls delays only the 20 requests in flight, so the median can look fine for
a server that stops answering during each import; the maximum and the longest silence show it.
``--pythonpath DIR`` runs the server from another checkout's ``src`` (e.g. an older commit, for a
before/after).

Usage: ``python benchmarks/bench_uploads.py [--requests 2000] [--concurrency 20]
[--megabytes 50]``. Results go to ``benchmarks/results/uploads.json`` and standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.attack_files import russian_table

from _common import write_results

SERVER_CHILD = r"""
import sys, uvicorn
from pathlib import Path
from pollwatch.settings import load_settings
from pollwatch.web.app import create_app
from pollwatch.web.server import server_config
settings = load_settings({"home": Path(sys.argv[1])})
uvicorn.Server(server_config(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]))).run()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summary(spans: list[tuple[float, float]]) -> dict[str, float]:
    """Latency median, 95th percentile and maximum, and the longest silence: the longest time
    between two consecutive answers (closed-loop clients hide a stalled server in the median:
    only the ``concurrency`` requests in flight wait out the stall)."""
    ordered = sorted(end - start for start, end in spans)
    ends = sorted(end for _, end in spans)
    return {
        "requests": len(ordered),
        "median_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max_ms": round(1000 * ordered[-1], 2),
        "longest_silence_ms": round(1000 * max(b - a for a, b in itertools.pairwise(ends)), 2),
    }


async def load(
    client: httpx.AsyncClient, url: str, requests: int, concurrency: int
) -> list[tuple[float, float]]:
    """``requests`` GETs of ``url`` from ``concurrency`` workers: (start, end) of each."""
    remaining = requests
    spans: list[tuple[float, float]] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.monotonic()
            response = await client.get(url)
            spans.append((start, time.monotonic()))
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return spans


async def imports_until(
    client: httpx.AsyncClient, table: Path, stop: asyncio.Event
) -> list[dict[str, Any]]:
    """Keep one import running until ``stop``; each import's (start, end) and how it ended."""
    body = table.read_bytes()
    runs: list[dict[str, Any]] = []
    number = 0
    while not stop.is_set():
        number += 1
        start = time.monotonic()
        response = await client.post(
            "/api/elections/import?wait=0",
            files={"file": (table.name, body)},
            data={"id": f"bench-import-{number}"},
            timeout=600,
        )
        status = response.status_code
        if status == 202:  # a job: poll it
            poll = response.json()["poll"]
            while True:
                job = (await client.get(poll)).json()
                if job["state"] in ("done", "failed"):
                    status = job["status"]
                    break
                await asyncio.sleep(0.05)
        runs.append({"start": start, "end": time.monotonic(), "status": status})
        if status != 201:
            raise RuntimeError(f"import {number} ended with {status}: {response.text[:300]}")
    return runs


async def run(args: argparse.Namespace, base: str, page: str, table: Path) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        idle_spans = await load(client, page, args.requests, args.concurrency)
        stop = asyncio.Event()
        importing = asyncio.create_task(imports_until(client, table, stop))
        await asyncio.sleep(0.2)  # the upload is under way
        spans = await load(client, page, args.requests, args.concurrency)
        stop.set()
        runs = await importing
    windows = [(r["start"], r["end"]) for r in runs]
    # "during": the request's life overlapped an import (an older server answers nothing while
    # it imports, so its requests end just after the import: overlap, not end, is what counts)
    during = [
        (start, end) for start, end in spans if any(start < b and end > a for a, b in windows)
    ]
    return {
        "idle": summary(idle_spans),
        "during_import": summary(during) if during else None,
        "imports": [round(r["end"] - r["start"], 2) for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--megabytes", type=float, default=50)
    parser.add_argument("--stations", type=int, default=20_000)
    parser.add_argument("--pythonpath", help="run the server from this src folder")
    args = parser.parse_args()

    from pollwatch.results.store import ElectionStore
    from pollwatch.synthetic.simulator import simulate_clean

    with tempfile.TemporaryDirectory(prefix="pollwatch-bench-uploads-") as folder:
        home = Path(folder) / "home"
        election = simulate_clean(stations=args.stations, seed=1, election_id="bench-page")
        ElectionStore(home / "elections").save(election)
        table = Path(folder) / "bench-2018.csv"
        stations = russian_table(table, args.megabytes)
        table_mib = round(table.stat().st_size / 2**20, 1)
        port = free_port()
        env = dict(os.environ)
        if args.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [args.pythonpath, env.get("PYTHONPATH")])
            )
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER_CHILD, str(home), str(port)], env=env
        )
        base, page = f"http://127.0.0.1:{port}", "/elections/bench-page"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    first = httpx.get(base + page, timeout=120)  # warms the page's analysis
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.2)
            assert first.status_code == 200, first.text[:300]
            measured = asyncio.run(run(args, base, page, table))
        finally:
            server.terminate()
            server.wait(timeout=30)
    during = measured["during_import"]
    result = {
        "page_stations": args.stations,
        "import_file_mib": table_mib,
        "import_stations": stations,
        "requests_per_phase": args.requests,
        "concurrency": args.concurrency,
        **measured,
        "ratio_median_during_over_idle": (
            round(during["median_ms"] / measured["idle"]["median_ms"], 2) if during else None
        ),
        "target_ratio": 2.0,
        "server_from": args.pythonpath or "this checkout",
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    write_results("uploads", result)


if __name__ == "__main__":
    main()
