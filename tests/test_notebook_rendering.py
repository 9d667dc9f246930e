"""Notebook and rich renderings of elections, summaries, protocol checks and suite reports.

The HTML must escape every user string (a candidate may be called ``<script>...``), the
Vega-Lite bundle must be a v5 specification with its data inline (JupyterLab draws it with its
own Vega, no CDN), and every rich rendering must hold at 80 columns with the key numbers in it.
"""

from __future__ import annotations

import html
import json
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import polars as pl
import pytest
from rich.console import Console

from pollwatch._notebook import VEGA_LITE_MIME, VEGA_LITE_SCHEMA, concat_charts
from pollwatch.forensics.suite import SuiteReport, run_suite
from pollwatch.results.checks import check_protocols
from pollwatch.results.model import Candidate, Election, make_election
from pollwatch.synthetic.simulator import simulate_clean
from tests.helpers import small_election

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
#: cheap methods with charts, one that needs registered voters (skipped without them)
METHODS = ["integer-percentages", "klimek-fingerprint", "eft-correlation", "triage"]


def _hostile_election() -> Election:
    """A simulated election whose candidates are called ``<script>alert(1)</script> A`` etc."""
    election = simulate_clean(stations=300, seed=4, election_id="hostile")
    meta = election.meta
    candidates = tuple(
        Candidate(f"{HOSTILE} {c.name[-1]}", c.column, c.party) for c in meta.candidates
    )
    hostile = replace(meta, candidates=candidates, contest=f"contest {HOSTILE}")
    return make_election(hostile, election.stations)


@pytest.fixture(scope="module")
def hostile() -> Election:
    return _hostile_election()


@pytest.fixture(scope="module")
def report(hostile: Election) -> SuiteReport:
    return run_suite(hostile, METHODS)


def _text(renderable: Any, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    return text


def _walk(spec: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(spec, Mapping):
        for key, value in spec.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(spec, list):
        for item in spec:
            yield from _walk(item)


def _assert_inline_v5(spec: Mapping[str, Any]) -> None:
    """A top-level Vega-Lite v5 specification whose data is all inline and valid JSON."""
    assert spec["$schema"] == VEGA_LITE_SCHEMA
    json.dumps(spec, allow_nan=False)  # NaN is not JSON: a front end would refuse it
    data = [value for key, value in _walk(spec) if key == "data"]
    assert data, "the chart has no data"
    for block in data:
        assert "url" not in block, "chart data must be inline (no network in a notebook)"
        assert isinstance(block.get("values"), list) or "name" in block
    names = {block["name"] for block in data if "name" in block}
    assert names <= set(spec.get("datasets", {})), "a named data source is not in datasets"
    parts = spec.get("vconcat", [spec])
    for part in parts:
        assert "mark" in part or "layer" in part, part.keys()
    for part in spec.get("vconcat", []):
        assert "$schema" not in part  # only the top level may carry it


def test_election_bundle_has_the_table_text_and_an_inline_v5_fingerprint(
    hostile: Election,
) -> None:
    bundle = hostile._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", VEGA_LITE_MIME}
    spec = bundle[VEGA_LITE_MIME]
    _assert_inline_v5(spec)
    cells = spec["data"]["values"]
    stations = hostile.stations.filter(
        ~pl.col("is_pseudo_station") & ~pl.col("is_cancelled") & ~pl.col("is_unpublished")
    )
    usable = stations.filter((pl.col("registered") > 0) & (pl.col("valid") > 0)).height
    assert sum(cell["stations"] for cell in cells) == usable
    assert all(0 <= cell["turnout"] < cell["turnout_end"] <= 1 for cell in cells)
    # the simulated label travels with the chart too
    assert hostile.meta.simulation_notice in spec["title"]["subtitle"]
    assert hostile._repr_mimebundle_(include=["text/html"]).keys() == {"text/html"}
    assert VEGA_LITE_MIME not in hostile._repr_mimebundle_(exclude=[VEGA_LITE_MIME])


def test_every_html_rendering_escapes_user_strings(hostile: Election, report: SuiteReport) -> None:
    pages = {
        "election": hostile._repr_html_(),
        "summary": hostile.summary()._repr_html_(),
        "suite": report._repr_html_(),
    }
    for name, page in pages.items():
        assert "<script" not in page, name
        assert ESCAPED in page, name  # the name is shown, as text
    checks = check_protocols(hostile.replace_meta(id=f"id {HOSTILE}"))._repr_html_()
    assert "<script" not in checks and ESCAPED in checks


def test_rich_markup_in_names_is_shown_as_it_is() -> None:
    election = small_election("markup")
    meta = election.meta
    named = election.replace_meta(
        candidates=(Candidate("[red]Alpha[/red]", "Alpha"), *meta.candidates[1:])
    )
    assert "[red]Alpha[/red]" in _text(named)
    assert "[red]Alpha[/red]" in _text(named.summary())


def test_election_renderings_carry_the_key_numbers() -> None:
    election = small_election("demo-x")
    summary = election.summary()
    assert (summary.regions, summary.simulation) == (2, None)
    for text in (_text(election), _text(summary), election._repr_html_()):
        assert "57.39%" in text  # turnout 1320 / 2300
        assert "900" in text and "Alpha" in text and "69.07%" in text  # 900 / 1303 valid
        assert "2,300" in text  # registered
    assert "SIMULATED" not in election._repr_html_()
    page = election._repr_html_()
    assert page.index("Alpha") < page.index("Beta")  # most votes first


def test_evoting_and_simulation_are_shown_apart() -> None:
    base = small_election("evote", is_evoting=[False, False, True])
    election = base.replace_meta(kind="simulated")
    summary = election.summary()
    assert summary.evoting_stations == 1 and summary.simulation
    for text in (_text(election), election._repr_html_(), summary._repr_html_()):
        assert "SIMULATED election, not real results" in text
        # station c (500 registered, 320 ballots) is the e-voting one
        assert "1 pseudo-stations, 500 registered, 320 ballots" in text
        assert "1,800 registered, 1,000 ballots" in text


def test_quality_report_lists_every_rule_with_its_counts() -> None:
    report = check_protocols(small_election("checks", station_id=["a", "a", "c"]))
    page = report._repr_html_()
    for count in report.counts:
        assert f"<td>{count.rule}</td>" in page
        assert html.escape(count.description) in page
    unique = report.count("unique_station_id")
    assert unique.failed == 2
    row = (
        "<td>unique_station_id</td><td>station id appears once</td>"
        f'<td class="number">{unique.checked:,}</td><td class="number">2</td>'
    )
    assert row in page
    assert "2 of 3 stations break at least one rule" in page
    assert "station id appears once" in _text(report)


def test_suite_report_renders_one_row_per_method_and_the_skipped(report: SuiteReport) -> None:
    without = _hostile_election()
    frame = without.stations.with_columns(pl.lit(None, dtype=pl.Int64).alias("registered"))
    lacking = run_suite(make_election(without.meta, frame), METHODS)
    assert lacking.skipped, "a method that needs registered voters should be skipped"
    page = lacking._repr_html_()
    for method, reason in lacking.skipped:
        assert f"<td>{method}</td>" in page
        assert reason.split(" (")[0].replace("'", "&#x27;") in page
    page = report._repr_html_()
    assert page.count("<tr>") == 1 + len(report.results)  # header + one per method
    text = _text(report)
    for result in report.results:
        assert f"<td>{result.method}</td>" in page
        assert result.p_value_text() in page
        assert result.method in text  # ids are never cut
        assert f"{result.sample_size:,}" in text
    assert "Verdict: " in page and "Verdict: " in text
    assert report.simulation is not None and report.simulation in page


def test_suite_bundle_concatenates_every_result_chart(report: SuiteReport) -> None:
    bundle = report._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", VEGA_LITE_MIME}
    spec = bundle[VEGA_LITE_MIME]
    _assert_inline_v5(spec)
    charts = [(r.method, name) for r in report.results for name in r.charts]
    assert len(charts) > 1 and len(spec["vconcat"]) == len(charts)
    # the specifications are the results' own, less the top-level $schema
    original = next(iter(report.results[0].charts.values()))
    assert spec["vconcat"][0] == {k: v for k, v in original.items() if k != "$schema"}
    again = SuiteReport.from_dict(report.to_dict())
    assert again.to_dict() == report.to_dict() and again.simulation == report.simulation


def test_concatenation_lifts_named_datasets_and_keeps_one_chart_whole() -> None:
    bar = {"$schema": VEGA_LITE_SCHEMA, "mark": "bar", "data": {"values": [{"x": 1}]}}
    named = {
        "$schema": VEGA_LITE_SCHEMA,
        "datasets": {"points": [{"x": 2}]},
        "config": {"view": {"stroke": None}},
        "layer": [{"mark": "point", "data": {"name": "points"}}],
    }
    single = concat_charts([("a", bar)])
    assert single == {**bar, "title": "a"}
    both = concat_charts([("a", bar), ("b", named)])
    assert both is not None
    assert both["datasets"] == {"b/points": [{"x": 2}]}
    lifted = {"layer": [{"mark": "point", "data": {"name": "b/points"}}], "title": "b"}
    assert both["vconcat"] == [
        {"mark": "bar", "data": {"values": [{"x": 1}]}, "title": "a"},
        lifted,
    ]
    _assert_inline_v5(both)
    assert concat_charts([]) is None


def test_ipython_shows_the_table_and_the_chart_as_two_outputs(
    hostile: Election, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JupyterLab shows one MIME type per output and ranks HTML first: two outputs."""
    shown: list[dict[str, Any]] = []

    def display(data: dict[str, Any], raw: bool = False) -> None:
        assert raw
        shown.append(data)

    package = types.ModuleType("IPython")
    module = types.ModuleType("IPython.display")
    module.display = display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", package)
    monkeypatch.setitem(sys.modules, "IPython.display", module)
    hostile._ipython_display_()
    table, chart = shown
    assert "text/html" in table and VEGA_LITE_MIME not in table
    assert chart.keys() == {VEGA_LITE_MIME, "text/plain"}
    assert chart[VEGA_LITE_MIME] == hostile.fingerprint_chart()
