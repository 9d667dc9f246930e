"""Every result carries its method's calibration; unreliable methods are marked everywhere.

The calibration is a frozen :class:`~pollwatch.forensics.calibration.Calibration`; results
saved before it existed (a dictionary, ``{}`` for a method not calibrated; the files in
``tests/forensics/saved/`` were written by that code) read back to the same one, and write
the same JSON again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pollwatch.forensics import calibration as calibration_module
from pollwatch.forensics.base import BUILTIN_MODULES, METHODS, MethodResult, get_method
from pollwatch.forensics.calibration import (
    TABLE_FORMAT,
    Calibration,
    CalibrationTable,
    calibration_summary,
    calibration_words,
    read_tables,
    shipped_tables_folder,
)
from pollwatch.forensics.suite import run_suite
from pollwatch.reports.compare import method_calibration, render_comparison
from pollwatch.reports.html import render_report
from pollwatch.results.checks import check_protocols
from pollwatch.synthetic.simulator import simulate_clean

SAVED = Path(__file__).resolve().parent / "saved"


def _rate(k: int, n: int) -> dict[str, Any]:
    return {"rejections": k, "tests": n, "rate": k / n, "interval": [0.0, 1.0]}


def _document(method: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": TABLE_FORMAT,
        "method": method,
        "measured": {"command": "pollwatch calibrate --test", "date": "2026-11-28"},
        "plan": {"elections": 100},
        "entry": entry,
    }


def _table(unreliable_correlation: bool = True) -> CalibrationTable:
    return CalibrationTable.from_documents(
        [
            _document(
                "integer-percentages",
                {
                    "decision": "p-value",
                    "parameters": {"null": "exact", "replicates": 1000},
                    "simulated": {"0.05": _rate(3, 100), "0.01": _rate(1, 100)},
                    "references": {"0.05": _rate(2, 40), "0.01": _rate(0, 40)},
                    "unreliable": False,
                    "unreliable_reason": "",
                },
            ),
            _document(
                "eft-correlation",
                {
                    "decision": "p-value",
                    "parameters": {},
                    "simulated": {"0.05": _rate(64, 100), "0.01": _rate(55, 100)},
                    "references": {"0.05": _rate(30, 40), "0.01": _rate(25, 40)},
                    "unreliable": unreliable_correlation,
                    "unreliable_reason": "flags 64% of clean simulations at α = 0.05",
                },
            ),
            _document(
                "eft-skew",
                {
                    "decision": "empirical",
                    "tail": "two-sided",
                    "thresholds": {"0.05": [-0.35, 0.36], "0.01": [-0.5, 0.5]},
                    "parameters": {},
                    "simulated": {"0.05": _rate(5, 100)},
                    "references": {"0.05": _rate(2, 40)},
                    "unreliable": False,
                    "unreliable_reason": "",
                },
            ),
        ]
    )


TABLE = _table()


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> CalibrationTable:
    monkeypatch.setattr(calibration_module, "calibration_table", lambda: TABLE)
    return TABLE


def test_summary_reads_rates_test_counts_and_marks() -> None:
    summary = calibration_summary("eft-correlation", {}, TABLE)
    assert summary is not None
    assert summary.false_positive_rate == pytest.approx(0.64)
    assert summary.simulated_tests == 100
    assert summary.reference_rate == pytest.approx(0.75)
    assert summary.reference_tests == 40
    assert summary.unreliable is True and not summary.reliable
    assert summary.source == "pollwatch calibrate --test (2026-11-28)"
    assert "UNRELIABLE" in summary.words()
    assert calibration_summary("no-such-method", {}, TABLE) is None
    assert calibration_words(None) == "not calibrated"
    skew = calibration_summary("eft-skew", None, TABLE)
    assert skew is not None and skew.threshold == (-0.35, 0.36) and skew.reliable
    assert skew.to_dict()["threshold"] == [-0.35, 0.36]


def test_the_dictionary_round_trips_exactly() -> None:
    for name in TABLE.names():
        summary = calibration_summary(name, {"seed": 1}, TABLE)
        assert summary is not None
        data = summary.to_dict()
        assert list(data) == [
            "calibrated", "decision", "alpha", "false_positive_rate", "simulated_tests",
            "reference_rate", "reference_tests", "unreliable", "unreliable_reason", "threshold",
            "same_parameters", "source",
        ]  # fmt: skip
        assert Calibration.from_dict(json.loads(json.dumps(data))) == summary
    assert Calibration.from_dict({}) is None


def test_other_parameters_are_said() -> None:
    same = calibration_summary("integer-percentages", {"null": "exact", "replicates": 1000}, TABLE)
    other = calibration_summary("integer-percentages", {"null": "monte-carlo"}, TABLE)
    assert same is not None and other is not None
    assert same.same_parameters and not other.same_parameters
    assert same.reliable and not other.reliable
    assert "other parameters" in other.words()
    assert "3% of 100 clean simulations" in same.words()


def test_results_carry_the_calibration(table: CalibrationTable) -> None:
    election = simulate_clean(stations=800, seed=3)
    result = get_method("eft-correlation").run(election)
    assert result.calibration is not None and result.calibration.unreliable is True
    assert "UNRELIABLE" in result.headline()
    again = MethodResult.from_json(result.to_json())
    assert again.calibration == result.calibration
    assert again.calibration is not None
    assert again.calibration.false_positive_rate == pytest.approx(0.64)
    assert "UNRELIABLE" in result._repr_html_()


def test_an_uncalibrated_method_says_so(table: CalibrationTable) -> None:
    election = simulate_clean(stations=800, seed=3)
    result = get_method("eft-dip").run(election)  # not in TABLE
    assert result.calibration is None
    assert "calibration" not in result.headline()
    data = result.to_dict()
    assert data["calibration"] == {}
    assert MethodResult.from_dict(data).calibration is None
    words, unreliable = method_calibration("eft-dip", [run_suite(election, ["eft-dip"])])
    assert (words, unreliable) == ("not calibrated", False)


@pytest.mark.parametrize(
    "saved",
    sorted(p.name for p in SAVED.glob("*.json")),
)
def test_results_saved_before_the_calibration_object_read_back(saved: str) -> None:
    data = json.loads((SAVED / saved).read_text("utf-8"))
    result = MethodResult.from_json((SAVED / saved).read_text("utf-8"))
    if data["calibration"] == {}:
        assert result.calibration is None
    else:
        assert isinstance(result.calibration, Calibration)
        assert result.calibration == Calibration.from_dict(data["calibration"])
        assert result.calibration.to_dict() == data["calibration"]
    written = result.to_dict()
    for key, value in data.items():  # the JSON is the same, key for key
        assert written[key] == value, key


def test_cached_results_saved_before_read_back_with_the_current_calibration(
    table: CalibrationTable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    election = simulate_clean(stations=800, seed=3)
    fresh = tmp_path / "fresh"
    run_suite(election, ["eft-correlation", "integer-shares"], cache_dir=fresh)
    cache = tmp_path / "cache"
    for path in (fresh / election.id).glob("*.json"):
        name = path.name.rsplit("-", 1)[0]
        saved = next(SAVED.glob(f"{name}-*.json"))
        (cache / election.id).mkdir(parents=True, exist_ok=True)
        shutil.copy(saved, cache / election.id / path.name)  # where the suite looks for it

    def no_run(self: Any, election: Any) -> Any:
        raise AssertionError("the cached result should have been read")

    for name in ("eft-correlation", "integer-shares"):
        monkeypatch.setattr(METHODS.get(name), "run", no_run)
    suite = run_suite(election, ["eft-correlation", "integer-shares"], cache_dir=cache)
    correlation = suite.result("eft-correlation")
    assert correlation is not None and correlation.calibration is not None
    # the saved dictionary said what the shipped table said then; the current table wins
    assert correlation.calibration.false_positive_rate == pytest.approx(0.64)
    assert correlation.calibration.source == "pollwatch calibrate --test (2026-11-28)"
    shares = suite.result("integer-shares")
    assert shares is not None and shares.calibration is None  # not in TABLE


def test_cached_results_get_the_current_calibration(
    table: CalibrationTable, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    election = simulate_clean(stations=800, seed=4)
    run_suite(election, ["eft-correlation"], cache_dir=tmp_path)
    monkeypatch.setattr(calibration_module, "calibration_table", lambda: _table(False))
    suite = run_suite(election, ["eft-correlation"], cache_dir=tmp_path)
    result = suite.result("eft-correlation")
    assert result is not None and result.calibration is not None
    assert result.calibration.unreliable is False


def test_reports_mark_unreliable_methods(table: CalibrationTable) -> None:
    election = simulate_clean(stations=800, seed=5)
    suite = run_suite(election, ["eft-correlation", "integer-percentages"])
    page = render_report(election, check_protocols(election), suite)
    assert "unreliable on clean elections" in page
    words, unreliable = method_calibration("eft-correlation", [suite])
    assert unreliable and "UNRELIABLE" in words
    comparison = render_comparison(
        [election, election], [suite, suite], ["eft-correlation", "integer-percentages"]
    )
    assert "class=unreliable" in comparison
    calm = replace(suite.results[0], calibration=None)
    assert "unreliable on clean elections" not in render_report(
        election, check_protocols(election), replace(suite, results=(calm,))
    )


def test_every_built_in_method_is_in_the_shipped_tables() -> None:
    """Built-in methods ship calibrated; a plug-in need not be (its results say so)."""
    from pollwatch.calibration.harness import PLAN_SETTINGS

    shipped = read_tables(shipped_tables_folder())
    assert shipped.problems == ()
    modules = {f"pollwatch.forensics.{module}" for module in BUILTIN_MODULES}
    built_in = [name for name, cls in METHODS.items() if cls.__module__ in modules]
    assert built_in
    for name in built_in:
        document = shipped.document(name)
        assert document is not None, f"{name} has no table in {shipped_tables_folder()}"
        assert document["format"] == TABLE_FORMAT
        for key in ("command", "date", "pollwatch", "environment", "code"):
            assert key in document["measured"], (name, key)
        assert set(PLAN_SETTINGS) <= set(document["plan"])
        assert ("precision_recall" in document) is METHODS.get(name).scores_stations
        summary = shipped.summary(name)
        assert summary is not None and summary.calibrated


def test_methods_command_shows_each_calibration(
    table: CalibrationTable, capsys: pytest.CaptureFixture[str]
) -> None:
    from pollwatch.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "UNRELIABLE" in out and "not calibrated" in out
    assert out.count("UNRELIABLE") == 1  # only eft-correlation is unreliable in TABLE
