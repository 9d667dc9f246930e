"""Report sections and typed details (pollwatch.forensics.sections).

The saved results in ``tests/forensics/saved/`` were written by the code before the typed
details existed (``triage-*``, ``shpilkin-*``, ``klimek-fingerprint-*`` and
``rozenas-spikes-*`` on a clean simulation of 400 stations in 4 regions, seed 5; Shpilkin's
and Rozenas' charts left out for size): each loads, re-dumps unchanged, and its typed view
writes back exactly the keys it owns.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import METHODS, MethodResult, method_names
from pollwatch.forensics.calibration import calibration_words
from pollwatch.forensics.sections import (
    Caveat,
    Chart,
    FingerprintCells,
    Headline,
    MethodDetails,
    RegionTable,
    SpikePoints,
    StationRanking,
    Table,
    default_sections,
    detail_of,
    provider,
    section_dict,
    tables,
)

SAVED = Path(__file__).resolve().parent / "saved"
SAVED_FILES = sorted(p.name for p in SAVED.glob("*.json"))

TYPED: dict[str, type[MethodDetails]] = {
    "triage": StationRanking,
    "shpilkin": RegionTable,
    "klimek-fingerprint": FingerprintCells,
    "rozenas-spikes": SpikePoints,
}


def load(name: str) -> MethodResult:
    return MethodResult.from_json((SAVED / name).read_text("utf-8"))


def saved(method: str) -> MethodResult:
    return load(next(n for n in SAVED_FILES if n.rsplit("-", 1)[0] == method))


# --- sections ------------------------------------------------------------------------------
def test_a_table_refuses_rows_of_the_wrong_length() -> None:
    with pytest.raises(PollwatchError, match="row 1 has 1 cells for 2 columns"):
        Table("t", ("a", "b"), ((1, 2), (3,)))


def test_a_table_head_cuts_and_says_so() -> None:
    table = Table("t", ("a",), tuple((i,) for i in range(30)), note="n")
    head = table.head(5)
    assert head.rows == tuple((i,) for i in range(5))
    assert head.note == "n; first 5 of 30 rows"
    assert table.head(30) is table


@pytest.mark.parametrize("name", SAVED_FILES)
def test_the_default_sections_carry_headline_caveats_and_charts(name: str) -> None:
    result = load(name)
    sections = default_sections(result)
    headline = sections[0]
    assert isinstance(headline, Headline) and headline.method == result.method
    assert headline.text.startswith(f"{result.statistic_name} = ")
    assert "calibration:" not in headline.text and "note:" not in headline.text
    caveats = [s for s in sections if isinstance(s, Caveat)]
    assert caveats[0].kind == "calibration"
    assert caveats[0].text == calibration_words(result.calibration)
    assert caveats[0].serious == (result.calibration is not None and result.calibration.unreliable)
    assert [c.text for c in caveats[1:]] == list(result.notes)
    charts = [s for s in sections if isinstance(s, Chart)]
    assert [c.name for c in charts] == list(result.charts)
    assert [section_dict(s)["kind"] for s in sections[:2]] == ["headline", "caveat"]


def test_a_result_of_a_method_not_installed_gets_the_default_sections() -> None:
    result = replace(saved("triage"), method="not-installed")
    assert result.method_class() is None and result.detail() is None
    assert result.sections() == default_sections(result)
    assert provider([result], StationRanking) is None


# --- typed details: saved JSON unchanged ---------------------------------------------------
@pytest.mark.parametrize("name", SAVED_FILES)
def test_every_saved_result_loads_and_dumps_unchanged(name: str) -> None:
    text = (SAVED / name).read_text("utf-8")
    result = MethodResult.from_json(text)
    assert json.loads(result.to_json()) == json.loads(text)
    detail = result.detail()
    kind = TYPED.get(result.method)
    assert (detail is None) == (kind is None), (result.method, detail)
    if detail is None or kind is None:
        return
    assert isinstance(detail, kind)
    if isinstance(detail, FingerprintCells):
        assert detail.to_chart() == result.charts["fingerprint"]
        return
    owned = {k: result.details[k] for k in detail.keys if k in result.details}
    assert json.dumps(detail.to_details(), sort_keys=True) == json.dumps(owned, sort_keys=True)
    # and from the dictionary alone, as the JSON holds it
    again = type(detail).from_details(json.loads(text)["details"])
    assert again == detail


def test_the_station_ranking_reads_triage_rows() -> None:
    result = saved("triage")
    ranking = detail_of(result, StationRanking)
    assert ranking is not None and len(ranking.stations) == len(result.details["ranked"]) == 20
    first = result.details["ranked"][0]
    entry = ranking.entry(first["station_id"])
    assert entry is not None and entry.score == first["score"]
    assert entry.reasons == tuple(first["reasons"])
    assert ranking.special is not None
    assert ranking.special.to_dict() == result.details["special"]
    assert ranking.entry("no such station") is None
    scores = [row.score for row in ranking.stations]
    assert scores == sorted(scores, reverse=True)


def test_a_ranking_from_before_the_special_count_reads_none() -> None:
    details = dict(saved("triage").details)
    del details["special"]
    ranking = StationRanking.from_details(details)
    assert ranking.special is None and "special" not in ranking.to_details()


def test_the_region_table_reads_shpilkins_regions() -> None:
    result = saved("shpilkin")
    table = detail_of(result, RegionTable)
    assert table is not None
    assert {r.region for r in table.regions} == set(result.details["regions"])
    assert table.total == result.details["regions_total"]
    assert table.range == result.details["range"]
    for region in table.regions:
        entry = result.details["regions"][region.region]
        assert (region.stations, region.anomalous_votes, region.turnout) == (
            entry["stations"],
            entry["anomalous_votes"],
            entry["turnout"],
        )
    # a national run has no region table
    national = replace(result, details={k: v for k, v in result.details.items() if k != "regions"})
    assert national.detail() is None


def test_the_fingerprint_cells_are_the_chart_cells() -> None:
    result = saved("klimek-fingerprint")
    cells = detail_of(result, FingerprintCells)
    assert cells is not None
    values = result.charts["fingerprint"]["data"]["values"]
    assert len(cells.cells) == len(values) > 0
    assert cells.cell_dicts() == values
    assert sum(c.count for c in cells.cells) == pytest.approx(sum(v["count"] for v in values))


def test_spike_points_keep_their_order_and_count() -> None:
    result = saved("rozenas-spikes")
    points = detail_of(result, SpikePoints)
    assert points is not None
    assert points.count == result.details["spike_point_count"]
    assert [p.share for p in points.points] == [p["share"] for p in result.details["spike_points"]]


# --- who provides what ---------------------------------------------------------------------
def test_each_kind_is_declared_by_its_method_class() -> None:
    for method, kind in TYPED.items():
        assert METHODS.get(method).detail_type is kind
        assert method_names(provides=kind) == (method,)
    assert set(method_names(provides=MethodDetails)) == set(TYPED)


def test_the_provider_is_found_by_class_not_name() -> None:
    results = [load(name) for name in SAVED_FILES]
    for method, kind in TYPED.items():
        found = provider(results, kind)
        assert found is not None and found.method == method
    assert provider([saved("eft-skew")], StationRanking) is None
    assert detail_of(None, StationRanking) is None
    assert detail_of(saved("shpilkin"), StationRanking) is None


@pytest.mark.parametrize(
    ("method", "title"),
    [
        ("triage", "Stations to check first"),
        ("shpilkin", "Estimate by region"),
        ("klimek-fingerprint", "Stations in the corner (turnout and leader share above 0.95)"),
        ("rozenas-spikes", "Spike points (largest excess first)"),
    ],
)
def test_built_in_methods_add_their_tables(method: str, title: str) -> None:
    result = saved(method)
    sections = result.sections()
    assert sections[: len(default_sections(result))] == default_sections(result)
    own = tables(sections)
    assert [t.title for t in own] == [title]
    if method == "triage":
        assert [row[0] for row in own[0].rows] == [
            r["station_id"] for r in result.details["ranked"]
        ]
    if method == "shpilkin":
        estimates = {row[0]: row[4] for row in own[0].rows}
        assert estimates == {
            name: entry["anomalous_votes"] for name, entry in result.details["regions"].items()
        }
    if method == "klimek-fingerprint":
        assert own[0].rows[0][1] == result.details["corner_stations"]
