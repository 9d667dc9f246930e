"""What the benchmarks share: median timings and the results folder they write to."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: Where each benchmark writes its ``<name>.json`` (ignored by git).
RESULTS = Path(__file__).resolve().parent / "results"


def median_time(
    action: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median time of ``repeat`` runs of ``action`` on ``clock`` (wall time by default)."""
    times = []
    for _ in range(repeat):
        start = clock()
        action()
        times.append(clock() - start)
    return statistics.median(times)


def write_results(name: str, report: Mapping[str, Any]) -> Path:
    """Write ``report`` to ``results/<name>.json`` (indented JSON) and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{name}.json"
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return target
