"""Running methods together: cache, skips with reasons, the analyze command and its report."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from pollwatch.cli import main
from pollwatch.errors import RegistryError
from pollwatch.forensics import suite as suite_module
from pollwatch.forensics._shared import shared, shared_work
from pollwatch.forensics.base import get_method, method_names
from pollwatch.forensics.suite import SuiteReport, run_suite
from pollwatch.results.model import make_election
from pollwatch.results.store import ElectionStore
from pollwatch.synthetic.simulator import simulate_clean


def test_results_are_cached_by_digest_and_parameters(tmp_path: Path) -> None:
    election = simulate_clean(stations=500, seed=1)
    first = run_suite(election, ["triage"], cache_dir=tmp_path)
    cached = list((tmp_path / election.id).glob("triage-*.json"))
    assert len(cached) == 1
    second = run_suite(election, ["triage"], cache_dir=tmp_path)
    assert second.to_dict() == first.to_dict()
    changed = make_election(
        election.meta, election.stations.with_columns(pl.col("valid") + 0)
    )  # same numbers: same digest, same cache entry
    run_suite(changed, ["triage"], cache_dir=tmp_path)
    assert len(list((tmp_path / election.id).glob("*.json"))) == 1
    assert SuiteReport.from_dict(first.to_dict()) == first


def test_unknown_method_fails_before_running() -> None:
    with pytest.raises(RegistryError, match="unknown method"):
        run_suite(simulate_clean(stations=100), ["triage", "no-such-method"])


def test_methods_needing_registered_voters_are_skipped_with_a_reason() -> None:
    election = simulate_clean(stations=300, seed=2)
    frame = election.stations.with_columns(registered=pl.lit(None, dtype=pl.Int64))
    report = run_suite(make_election(election.meta, frame), ["triage"])
    assert report.results == ()
    assert report.skipped[0][0] == "triage"
    assert "registered" in report.skipped[0][1]


def test_analyze_command_writes_json_and_a_self_contained_report(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ElectionStore(home / "elections").save(simulate_clean(stations=400, seed=4, election_id="sim"))
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    code = main(
        ["analyze", "sim", "-m", "triage", "--json", str(out_json), "--html", str(out_html)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "triage" in captured.out
    data = json.loads(out_json.read_text())
    assert data["results"][0]["method"] == "triage"
    page = out_html.read_text()
    assert "vegaEmbed(" in page
    assert "<script src=" not in page and 'href="http' not in page  # nothing loaded from outside
    assert main(["analyze", "sim", "--by", "county"]) == 2
    assert "--by region" in capsys.readouterr().err


# --- methods on threads, work shared ------------------------------------------------------------
SHARING = [
    "eft-2bl", "eft-lastc", "eft-c05s", "eft-p05s", "eft-skew", "eft-kurt", "eft-dip",
    "eft-sobyanin", "eft-correlation", "integer-percentages", "klimek-fingerprint",
]  # fmt: skip


def _without_environment(report: SuiteReport) -> list[dict[str, Any]]:
    out = []
    for result in report.results:
        data = result.to_dict()
        data.pop("environment")
        out.append(data)
    return out


def test_results_do_not_depend_on_threads_or_shared_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite runs its methods on threads and shares work between them (the EFT tests'
    # bootstrap weights and variables); each method alone, outside any suite, must give the
    # same numbers, bit for bit, and so must a suite on one thread.
    election = simulate_clean(stations=2000, seed=8, regions=3)
    assert set(SHARING) <= set(method_names())  # loads the built-in methods
    monkeypatch.setattr(suite_module, "SUITE_THREADS", 4)
    threaded = run_suite(election, SHARING)
    monkeypatch.setattr(suite_module, "SUITE_THREADS", 1)
    single = run_suite(election, SHARING)
    alone = [get_method(name).run(election) for name in SHARING]
    assert _without_environment(threaded) == _without_environment(single)
    assert [r.method for r in threaded.results] == SHARING  # in the order asked for
    for result, own in zip(threaded.results, alone, strict=True):
        ours, theirs = result.to_dict(), own.to_dict()
        ours.pop("environment"), theirs.pop("environment")
        assert ours == theirs, result.method


def test_shared_work_computes_once_and_forgets_outside_its_scope() -> None:
    calls: list[str] = []

    def compute(name: str, size: int) -> np.ndarray:
        calls.append(name)
        time.sleep(0.05)  # long enough for the second thread to ask while it runs
        return np.zeros(size, dtype=np.uint8)

    assert shared(lambda: "a", lambda: compute("a", 10)) is not None
    assert shared(lambda: "a", lambda: compute("a", 10)) is not None
    assert calls == ["a", "a"]  # no scope: nothing kept
    calls.clear()
    with shared_work(limit=100):
        with ThreadPoolExecutor(max_workers=2) as pool:
            # as run_suite submits its methods: each in a copy of the context (the scope)
            jobs = [
                pool.submit(copy_context().run, shared, lambda: "b", lambda: compute("b", 10))
                for _ in range(2)
            ]
            found = [job.result() for job in jobs]
        assert found[0] is found[1] and calls == ["b"]  # asked at once, computed once
        with shared_work():  # a nested scope uses the outer one
            assert shared(lambda: "b", lambda: compute("b", 10)) is found[0]
        shared(lambda: "c", lambda: compute("c", 60))
        shared(lambda: "d", lambda: compute("d", 60))  # 130 bytes: "b" goes, then "c"
        shared(lambda: "d", lambda: compute("d", 60))
        shared(lambda: "b", lambda: compute("b", 10))
        shared(lambda: "e", lambda: compute("e", 500))  # above the limit: computed, not kept
        shared(lambda: "e", lambda: compute("e", 500))
    assert calls == ["b", "c", "d", "b", "e", "e"]
    calls.clear()
    shared(lambda: "d", lambda: compute("d", 60))
    assert calls == ["d"]
