"""Running methods together: cache, skips with reasons, the analyze command and its report."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pollwatch.cli import main
from pollwatch.errors import RegistryError
from pollwatch.forensics.simulate import simulate_clean
from pollwatch.forensics.suite import SuiteReport, run_suite
from pollwatch.results.model import make_election
from pollwatch.results.store import ElectionStore


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
