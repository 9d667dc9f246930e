"""The dashboard's words: reliable methods flag, unreliable ones list, special stations say so."""

from __future__ import annotations

import polars as pl
import pytest

from pollwatch.forensics.base import MethodResult
from pollwatch.forensics.calibration import Calibration
from pollwatch.forensics.triage import Triage
from pollwatch.results.checks import check_protocols
from pollwatch.results.model import Election, make_election
from pollwatch.synthetic.simulator import simulate_clean
from pollwatch.web import views


@pytest.fixture(scope="module")
def unmarked() -> Election:
    """A clean election with 3 % hospitals the source calls "ordinary"."""
    election = simulate_clean(stations=1500, regions=4, seed=8, hospital_share=0.03)
    frame = election.stations.with_columns(pl.lit("ordinary").alias("station_kind"))
    return make_election(election.meta, frame)


def with_calibration(result: MethodResult, unreliable: bool) -> MethodResult:
    from dataclasses import replace

    calibration = {
        "calibrated": True,
        "decision": "empirical",
        "alpha": 0.05,
        "false_positive_rate": 0.04,
        "simulated_tests": 200,
        "reference_rate": 0.3 if unreliable else 0.04,
        "reference_tests": 88,
        "unreliable": unreliable,
        "unreliable_reason": "flags 30% of 88 clean reference units at alpha = 0.05"
        if unreliable
        else "",
        "same_parameters": True,
    }
    return replace(result, calibration=Calibration.from_dict(calibration))


def test_station_page_names_only_reliable_methods_as_flagging(unmarked: Election) -> None:
    triage = Triage(threshold=2.0).run(unmarked)
    station = triage.flagged[0]
    quality = check_protocols(unmarked)
    listed = views.station_detail(unmarked, station, quality, [with_calibration(triage, True)])
    assert listed["flagged_by"] == []
    assert [entry["method"] for entry in listed["listed_by"]] == ["triage"]
    assert any(
        r.startswith("listed by triage (not a finding: UNRELIABLE") for r in listed["reasons"]
    )
    # one symbol for alpha in what users read, whatever the table spells
    assert all("alpha" not in r for r in listed["reasons"])
    trusted = views.station_detail(unmarked, station, quality, [with_calibration(triage, False)])
    assert trusted["flagged_by"] == ["triage"] and trusted["listed_by"] == []


def test_station_page_and_list_say_likely_special(unmarked: Election) -> None:
    from pollwatch.results.special import special_stations

    special = special_stations(unmarked)
    station = sorted(special.ids())[0]
    detail = views.station_detail(unmarked, station, check_protocols(unmarked))
    assert detail["special"] == special.reason(station)
    assert detail["reasons"][0].startswith("likely special station: small station")
    triage = with_calibration(Triage().run(unmarked), True)
    page = views.stations_page(unmarked, triage, size=1000, sort="registered")
    marked = {s["station_id"]: s["special"] for s in page["stations"] if s["special"]}
    assert set(marked) == special.ids() & {s["station_id"] for s in page["stations"]}
    summary = page["triage"]
    assert summary["heading"] == "Stations to check first (a list to check, not a finding)"
    assert summary["unreliable"] and summary["calibration_words"].startswith("UNRELIABLE")
    assert summary["special"]["stations"] == len(special)


def test_methods_rows_print_p_values_with_their_floor(unmarked: Election) -> None:
    from dataclasses import replace

    triage = Triage().run(unmarked)
    rows = views.methods_rows([replace(triage, p_value=1 / 1000, p_value_floor=1 / 1000)])
    assert rows[0]["p_value_text"] == "< 0.001"
    rows = views.methods_rows([replace(triage, p_value=0.0)])
    assert rows[0]["p_value_text"] == "< 1e-300"
