"""Every result carries its method's calibration; unreliable methods are marked everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from pollwatch.forensics import calibration as calibration_module
from pollwatch.forensics.base import MethodResult, get_method
from pollwatch.forensics.calibration import (
    TABLE_FORMAT,
    calibration_summary,
    calibration_table,
    calibration_words,
)
from pollwatch.forensics.simulate import simulate_clean
from pollwatch.forensics.suite import run_suite
from pollwatch.reports.compare import method_calibration, render_comparison
from pollwatch.reports.html import render_report
from pollwatch.results.checks import check_protocols


def _rate(k: int, n: int) -> dict[str, Any]:
    return {"rejections": k, "tests": n, "rate": k / n, "interval": [0.0, 1.0]}


TABLE: dict[str, Any] = {
    "format": TABLE_FORMAT,
    "generated": {"command": "pollwatch calibrate --test", "date": "2026-11-28"},
    "methods": {
        "integer-percentages": {
            "decision": "p-value",
            "parameters": {"null": "exact", "replicates": 1000},
            "simulated": {"0.05": _rate(3, 100), "0.01": _rate(1, 100)},
            "references": {"0.05": _rate(2, 40), "0.01": _rate(0, 40)},
            "unreliable": False,
            "unreliable_reason": "",
        },
        "eft-correlation": {
            "decision": "p-value",
            "parameters": {},
            "simulated": {"0.05": _rate(64, 100), "0.01": _rate(55, 100)},
            "references": {"0.05": _rate(30, 40), "0.01": _rate(25, 40)},
            "unreliable": True,
            "unreliable_reason": "flags 64% of clean simulations at α = 0.05",
        },
    },
}


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(calibration_module, "calibration_table", lambda: TABLE)
    return TABLE


def test_summary_reads_rates_test_counts_and_marks() -> None:
    summary = calibration_summary("eft-correlation", {}, TABLE)
    assert summary["false_positive_rate"] == pytest.approx(0.64)
    assert summary["simulated_tests"] == 100
    assert summary["reference_rate"] == pytest.approx(0.75)
    assert summary["reference_tests"] == 40
    assert summary["unreliable"] is True
    assert "UNRELIABLE" in calibration_words(summary)
    assert calibration_summary("no-such-method", {}, TABLE) == {}
    assert calibration_words({}) == "not calibrated"


def test_other_parameters_are_said() -> None:
    same = calibration_summary("integer-percentages", {"null": "exact", "replicates": 1000}, TABLE)
    other = calibration_summary("integer-percentages", {"null": "monte-carlo"}, TABLE)
    assert same["same_parameters"] and not other["same_parameters"]
    assert "other parameters" in calibration_words(other)
    assert "3% of 100 clean simulations" in calibration_words(same)


def test_results_carry_the_calibration(table: dict[str, Any]) -> None:
    election = simulate_clean(stations=800, seed=3)
    result = get_method("eft-correlation").run(election)
    assert result.calibration["unreliable"] is True
    assert "UNRELIABLE" in result.headline()
    again = MethodResult.from_json(result.to_json())
    assert again.calibration["false_positive_rate"] == pytest.approx(0.64)
    assert "UNRELIABLE" in result._repr_html_()


def test_cached_results_get_the_current_calibration(table: dict[str, Any], tmp_path: Any) -> None:
    election = simulate_clean(stations=800, seed=4)
    run_suite(election, ["eft-correlation"], cache_dir=tmp_path)
    table["methods"]["eft-correlation"]["unreliable"] = False
    try:
        suite = run_suite(election, ["eft-correlation"], cache_dir=tmp_path)
        result = suite.result("eft-correlation")
        assert result is not None and result.calibration["unreliable"] is False
    finally:
        table["methods"]["eft-correlation"]["unreliable"] = True


def test_reports_mark_unreliable_methods(table: dict[str, Any]) -> None:
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


def test_shipped_table_is_well_formed_when_present() -> None:
    shipped = calibration_table()
    if not shipped:
        pytest.skip("no calibration table has been written yet (pollwatch calibrate)")
    assert shipped["format"] == TABLE_FORMAT
    assert "command" in shipped["generated"]
    from pollwatch.forensics.base import all_methods

    for name, _ in all_methods():
        assert name in shipped["methods"], f"{name} is not in the calibration table"


def test_methods_command_shows_each_calibration(
    table: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from pollwatch.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "UNRELIABLE" in out and "not calibrated" in out
    assert out.count("UNRELIABLE") == 1  # only eft-correlation is unreliable in TABLE
