"""Running several methods on one election, with cached results.

:func:`run_suite` runs the named methods (default: every registered method) with identical
definitions and the same seed, skipping with a reason those the election cannot support (no
registered voters, say). Results are cached as JSON under ``<home>/analysis/<election>/``, keyed
by the election's content digest and the method's parameters, so a second run is instant and a
changed election or parameter is never served a stale result.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import (
    METHODS,
    MethodNotApplicable,
    MethodResult,
    all_methods,
    get_method,
)
from pollwatch.forensics.calibration import calibration_summary
from pollwatch.results.model import Election

__all__ = ["SuiteReport", "run_suite"]

#: progress(method name, index, total), called before each method runs
Progress = Callable[[str, int, int], None]

#: Parameters the default suite uses instead of a method's own defaults, to keep a national
#: election under half a minute; name the method to run it with its own defaults.
SUITE_PARAMETERS: dict[str, dict[str, Any]] = {
    "rozenas-spikes": {"replicates": 200, "interval_draws": 200},
}


@dataclass(frozen=True)
class SuiteReport:
    """The results of several methods on one election, and the methods skipped with why."""

    election_id: str
    input_digest: str
    results: tuple[MethodResult, ...]
    skipped: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "election_id": self.election_id,
            "input_digest": self.input_digest,
            "results": [r.to_dict() for r in self.results],
            "skipped": [{"method": m, "reason": r} for m, r in self.skipped],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteReport:
        return cls(
            election_id=data["election_id"],
            input_digest=data["input_digest"],
            results=tuple(MethodResult.from_dict(r) for r in data["results"]),
            skipped=tuple((s["method"], s["reason"]) for s in data["skipped"]),
        )

    def result(self, method: str) -> MethodResult | None:
        return next((r for r in self.results if r.method == method), None)


def _parameters(name: str, seed: int, by_region: bool, default_suite: bool) -> dict[str, Any]:
    cls = METHODS.get(name)
    fields = getattr(cls, "__dataclass_fields__", {})
    parameters: dict[str, Any] = dict(SUITE_PARAMETERS.get(name, {})) if default_suite else {}
    if cls.stochastic and "seed" in fields:
        parameters["seed"] = seed
    if by_region and "by_region" in fields:
        parameters["by_region"] = True
    return parameters


def run_suite(
    election: Election,
    methods: Sequence[str] | None = None,
    *,
    seed: int = 0,
    by_region: bool = False,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> SuiteReport:
    """Run methods on one election (see the module docstring).

    Without ``methods`` every registered method runs, with :data:`SUITE_PARAMETERS`.
    """
    registered = [name for name, _ in all_methods()]  # loads the built-ins
    names = list(methods) if methods else registered
    for name in names:
        METHODS.get(name)  # an unknown name fails before anything runs
    digest = election.content_digest()
    results: list[MethodResult] = []
    skipped: list[tuple[str, str]] = []
    for position, name in enumerate(names):
        if progress is not None:
            progress(name, position, len(names))
        parameters = _parameters(name, seed, by_region, default_suite=not methods)
        method = get_method(name, **parameters)
        key = hashlib.sha256(
            json.dumps([digest, name, method.parameters()], sort_keys=True).encode()
        ).hexdigest()[:20]
        cached = cache_dir / election.id / f"{name}-{key}.json" if cache_dir else None
        if cached is not None and cached.is_file():
            try:
                stored = MethodResult.from_json(cached.read_text("utf-8"))
                # the calibration table may be newer than the cached result
                calibration = calibration_summary(name, stored.parameters)
                results.append(replace(stored, calibration=calibration))
                continue
            except (ValueError, KeyError, TypeError):
                pass  # a damaged cache entry is recomputed
        try:
            result = method.run(election)
        except MethodNotApplicable as exc:
            skipped.append((name, exc.one_line()))
            continue
        except PollwatchError as exc:
            skipped.append((name, f"failed: {exc.one_line()}"))
            continue
        results.append(result)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f".{cached.name}.part")
            partial.write_text(result.to_json(), encoding="utf-8")
            os.replace(partial, cached)
    if progress is not None:
        progress("", len(names), len(names))
    return SuiteReport(
        election_id=election.id,
        input_digest=digest,
        results=tuple(results),
        skipped=tuple(skipped),
    )
