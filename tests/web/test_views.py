"""The dashboard's data preparation: pure functions over elections and method results."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import MethodResult
from pollwatch.forensics.suite import run_suite
from pollwatch.results.checks import check_protocols
from pollwatch.results.model import Election
from pollwatch.synthetic.simulator import simulate_clean
from pollwatch.web import views
from tests.helpers import small_election


@pytest.fixture(scope="module")
def election() -> Election:
    return simulate_clean(stations=300, regions=4, seed=3, election_id="sim-v")


@pytest.fixture(scope="module")
def triage(election: Election) -> MethodResult:
    result = run_suite(election, ["triage"]).result("triage")
    assert result is not None
    return result


def test_histogram_counts_bins_are_a_tenth_of_a_percent() -> None:
    values = pl.Series([0.5, 0.5004, 0.5012, 1.0, 1.3, None])
    counts = views.histogram_counts(values)
    assert counts == [
        {"start": 50.0, "end": 50.1, "stations": 2},
        {"start": 50.1, "end": 50.2, "stations": 1},
        {"start": 99.9, "end": 100.0, "stations": 2},  # 100% and above go to the last bin
    ]


def test_histogram_spec_has_whole_percent_rules() -> None:
    spec = views.histogram_spec([{"start": 1.0, "end": 1.1, "stations": 3}], title="t", x_title="x")
    rules, bars = spec["layer"]
    assert rules["mark"]["type"] == "rule"
    assert rules["data"]["sequence"] == {"start": 0, "stop": 101, "as": "percent"}
    assert bars["data"]["values"][0]["stations"] == 3


@pytest.fixture(scope="module")
def shpilkin(election: Election) -> MethodResult:
    result = run_suite(election, ["shpilkin"], by_region=True).result("shpilkin")
    assert result is not None
    return result


@pytest.fixture(scope="module")
def klimek(election: Election) -> MethodResult:
    result = run_suite(election, ["klimek-fingerprint"]).result("klimek-fingerprint")
    assert result is not None
    return result


def test_fingerprint_cells_are_the_klimek_results(election: Election, klimek: MethodResult) -> None:
    cells = views.fingerprint_cells(klimek)
    assert cells == klimek.charts["fingerprint"]["data"]["values"]
    # every station the method used is in one cell of the 100 x 100 grid on [0, 1]
    assert sum(c["count"] for c in cells) == klimek.sample_size == len(election)
    assert all(0 <= c["x0"] < c["x1"] <= 1 and 0 <= c["y0"] < c["y1"] <= 1 for c in cells)
    assert all(c["x1"] - c["x0"] == pytest.approx(0.01) for c in cells)
    assert views.fingerprint_cells(None) == []
    spec = views.fingerprint_spec(cells, title="f", max_count=10)
    assert spec["encoding"]["color"]["scale"]["domain"] == [0, 10]
    assert views.fingerprint_chart("sim-v", klimek) == klimek.charts["fingerprint"]
    missing = views.fingerprint_chart("sim-v", None, "no valid votes")
    assert missing["data"]["values"] == [] and "no valid votes" in missing["title"]


def test_region_table_is_shpilkins_per_region_result(
    election: Election, shpilkin: MethodResult, triage: MethodResult
) -> None:
    rows = views.region_table(shpilkin, triage, election)
    estimates = shpilkin.details["regions"]
    assert [r["region"] for r in rows] == sorted(estimates)
    assert sum(r["stations"] for r in rows) == shpilkin.sample_size == len(election)
    assert sum(r["flagged"] for r in rows) == len(triage.flagged)
    for row in rows:
        assert row["shpilkin_estimate"] == estimates[row["region"]]["anomalous_votes"]
    # the method's own totals: turnout over the stations it used, the leader's share of votes
    stations = election.stations
    leader = election.leader()
    assert leader is not None
    votes = pl.sum_horizontal(election.candidate_columns)
    expected = (
        stations.group_by("region")
        .agg(
            pl.col("registered").sum(),
            (pl.col("ballots_cast").sum() / pl.col("registered").sum()).alias("turnout"),
            (pl.col(leader.column).sum() / votes.sum()).alias("leader_share"),
        )
        .sort("region")
        .to_dicts()
    )
    for row, want in zip(rows, expected, strict=True):
        assert row["region"] == want["region"] and row["registered"] == want["registered"]
        assert row["turnout"] == pytest.approx(want["turnout"])
        assert row["leader_share"] == pytest.approx(want["leader_share"])
    unflagged = views.region_table(shpilkin)
    assert [r["flagged"] for r in unflagged] == [0] * len(rows)
    assert views.region_table(None, triage, election) == []
    national = run_suite(election, ["shpilkin"]).result("shpilkin")
    assert national is not None and views.region_table(national, triage, election) == []


def test_stations_page_validation(election: Election) -> None:
    for bad in ({"page": 0}, {"size": 0}, {"size": 100_000}, {"sort": "nonsense"}):
        with pytest.raises(PollwatchError):
            views.stations_page(election, None, **bad)


def test_stations_page_ranks_by_triage(election: Election, triage: MethodResult) -> None:
    page = views.stations_page(election, triage, size=10)
    ranked = [r["station_id"] for r in triage.details["ranked"][:10]]
    assert [s["station_id"] for s in page["stations"]] == ranked
    reverse = views.stations_page(election, triage, size=300, sort="score")
    assert reverse["stations"][-1]["station_id"] == ranked[0]
    everything = views.stations_page(election, triage, size=1000, sort="station_id")
    assert everything["total"] == len(election) and everything["pages"] == 1
    assert len({s["station_id"] for s in everything["stations"]}) == len(election)


def test_station_detail_and_neighbours(election: Election, triage: MethodResult) -> None:
    quality = check_protocols(election)
    top = triage.details["ranked"][0]["station_id"]
    detail = views.station_detail(election, top, quality, [triage])
    assert detail["triage_score"] == triage.details["ranked"][0]["score"]
    assert (
        detail["reasons"][: len(triage.details["ranked"][0]["reasons"])]
        == (triage.details["ranked"][0]["reasons"])
    )
    assert {c["status"] for c in detail["checks"]} <= {"passes", "fails", "not checked"}
    near = detail["neighbours"]
    assert near["level"] == "region" and 0 < len(near["stations"]) <= 20
    assert top not in {s["station_id"] for s in near["stations"]}
    with pytest.raises(KeyError):
        views.station_detail(election, "nope", quality)
    row = views.station_csv_row(detail)
    assert row["station_id"] == top and "turnout" in row


def test_station_detail_reports_failing_protocol() -> None:
    bad = small_election(valid=[590, 395, 999])
    detail = views.station_detail(bad, "c", check_protocols(bad))
    assert any("protocol" in r for r in detail["reasons"])


def test_cached_results_match_the_digest(election: Election, tmp_path: Path) -> None:
    run_suite(election, ["shpilkin"], cache_dir=tmp_path)
    run_suite(election, ["shpilkin"], by_region=True, cache_dir=tmp_path)
    found = views.cached_results(tmp_path, election.id, election.content_digest())
    assert set(found) == {"shpilkin"} and "regions" in found["shpilkin"].details
    assert views.cached_results(tmp_path, election.id, "other digest") == {}
    assert views.cached_results(tmp_path, "absent", election.content_digest()) == {}


def test_cached_results_show_only_default_runs(election: Election, tmp_path: Path) -> None:
    run_suite(election, ["shpilkin"], parameters={"shpilkin": {"window": 0.03}}, cache_dir=tmp_path)
    assert views.cached_results(tmp_path, election.id, election.content_digest()) == {}
    run_suite(election, ["shpilkin"], seed=5, cache_dir=tmp_path)
    found = views.cached_results(tmp_path, election.id, election.content_digest())
    assert found["shpilkin"].parameters["window"] == 0.025


def test_methods_rows_and_compare(election: Election, triage: MethodResult) -> None:
    (row,) = views.methods_rows([triage])
    assert row["method"] == "triage" and row["n"] == triage.sample_size
    overview = views.overview(election, check_protocols(election))
    (compare,) = views.compare_rows([overview])
    assert compare["stations"] == len(election) and 0 < compare["leader_share"] < 1
    csv = views.to_csv([{"a": 1, "b": [1, 2]}])
    assert csv.splitlines()[0] == "a,b"
