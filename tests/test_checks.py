"""Protocol arithmetic checks: each rule fires exactly where it should."""

from __future__ import annotations

from pollwatch.results.checks import RULES, check_protocols
from tests.helpers import small_election


def failed(report, rule: str) -> list[str]:
    table = report.table
    return table.filter(table[rule].fill_null(False))["station_id"].to_list()


def test_consistent_protocols_have_no_findings() -> None:
    report = check_protocols(small_election())
    assert [c.failed for c in report.counts] == [0] * len(RULES)
    assert report.count("votes_sum_to_valid").checked == 3
    assert report.failing_stations.height == 0


def test_each_rule_fires_on_the_station_that_breaks_it() -> None:
    election = small_election(
        station_id=["a", "b", "b"],
        Alpha=[401, 200, 300],  # a: votes 591 != valid 590
        valid=[590, 390, 318],  # b: valid + invalid 395 != boxes 400 ; b also votes 395 != 390
        registered=[1000, 800, 300],  # c: 320 cast > 300 registered
        ballots_issued_on_day=[560, 390, 300],  # b: 400 in boxes > 390 issued
    )
    report = check_protocols(election)
    assert failed(report, "votes_sum_to_valid") == ["a", "b"]
    assert failed(report, "valid_plus_invalid_equals_ballots_in_boxes") == ["b"]
    assert failed(report, "ballots_in_boxes_within_issued") == ["b"]
    assert failed(report, "turnout_at_most_100") == ["b"]
    assert failed(report, "unique_station_id") == ["b", "b"]
    assert report.count("unique_station_id").failed == 2
    assert report.failing_stations["station_id"].to_list() == ["a", "b", "b"]


def test_rules_without_numbers_are_not_checked() -> None:
    election = small_election(
        registered=[None, None, None],
        ballots_issued_on_day=[None] * 3,
        ballots_issued_outside=[None] * 3,
    )
    report = check_protocols(election)
    assert report.count("turnout_at_most_100").checked == 0
    assert report.count("ballots_in_boxes_within_issued").checked == 0
    assert report.count("no_negative_counts").checked == 3


def test_report_serialises_and_renders() -> None:
    from rich.console import Console

    report = check_protocols(small_election())
    data = report.to_dict()
    assert data["stations"] == 3
    assert {r["rule"] for r in data["rules"]} == set(RULES)
    console = Console(width=100, record=True)
    console.print(report)
    assert "station id appears once" in console.export_text()
