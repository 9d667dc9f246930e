"""The turnout pages and API: a series of elections and a minimum-turnout scenario.

``/turnout?ids=a&ids=b`` shows the series (:func:`pollwatch.turnout.turnout_series`): national
turnout, the shares of stations at a whole percent and above 95 %, and per-region small
multiples on shared axes; without ``ids``, every stored election of the country with the most.
``/turnout/scenario?id=...&threshold=50&level=region`` shows which units a minimum turnout
would fail (:func:`pollwatch.turnout.threshold_scenario`), also with Shpilkin's anomalous
ballots taken out, labelled with that method's calibration. ``/api/turnout/series`` and
``/api/turnout/scenario`` answer the same in JSON. Charts are Vega-Lite specs drawn by the
vendored Vega scripts (no external request). Definitions are stated on every page.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from pollwatch.errors import PollwatchError
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore, check_election_id
from pollwatch.settings import Settings
from pollwatch.turnout import (
    LEVELS,
    ThresholdScenario,
    TurnoutSeries,
    shpilkin_estimate,
    threshold_scenario,
    turnout_series,
)
from pollwatch.turnout.scenario import Level

from .pages import charts_json, page
from .responses import NotFound, errors

__all__ = ["TurnoutElections", "router", "scenario_chart", "series_charts"]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
#: at most this many elections in one series page
MAX_SERIES = 12


_X = {"field": "date", "type": "temporal", "title": None}
_PERCENT = {"format": ".0%"}
_TOOLTIP = [{"field": "election"}, {"field": "turnout", "format": ".1%"}]


def series_charts(series: TurnoutSeries) -> dict[str, Any]:
    """Vega-Lite specs: national turnout, the two station shares, per-region small multiples."""
    national = [
        {
            "election": e.election_id,
            "date": e.date,
            "turnout": e.turnout,
            "whole percent": e.whole_percent_share,
            "above 95 %": e.above_95_share,
        }
        for e in series.elections
    ]
    dates = {e.election_id: e.date for e in series.elections}
    shares = [
        {"election": row["election"], "date": row["date"], "share": row[name], "of stations": name}
        for row in national
        for name in ("whole percent", "above 95 %")
    ]
    regional = [
        {
            "region": r.region,
            "election": r.election_id,
            "date": dates[r.election_id],
            "turnout": r.turnout,
            "registered": r.registered,
        }
        for r in series.regions
    ]
    return {
        "national-turnout": _national_chart(national),
        "station-shares": _shares_chart(shares),
        "regions-turnout": _regions_chart(regional),
    }


def _series_chart(
    title: str, values: list[dict[str, Any]], encoding: dict[str, Any]
) -> dict[str, Any]:
    """A container-wide line chart over the elections' dates (``encoding`` adds y and the rest)."""
    return {
        "$schema": _SCHEMA,
        "title": title,
        "width": "container",
        "height": 220,
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {"x": _X, **encoding},
    }


def _national_chart(national: list[dict[str, Any]]) -> dict[str, Any]:
    return _series_chart(
        "Turnout (stations counted)",
        national,
        {
            "y": {
                "field": "turnout",
                "type": "quantitative",
                "scale": {"domain": [0, 1]},
                "axis": _PERCENT,
            },
            "tooltip": _TOOLTIP,
        },
    )


def _shares_chart(shares: list[dict[str, Any]]) -> dict[str, Any]:
    return _series_chart(
        "Share of stations at a whole-percent turnout and above 95 %",
        shares,
        {
            "y": {"field": "share", "type": "quantitative", "axis": _PERCENT},
            "color": {"field": "of stations", "type": "nominal"},
            "tooltip": [
                {"field": "election"},
                {"field": "of stations"},
                {"field": "share", "format": ".1%"},
            ],
        },
    )


def _regions_chart(regional: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": _SCHEMA,
        "title": "Turnout per region (shared axes)",
        "data": {"values": regional},
        "facet": {
            "field": "region",
            "type": "nominal",
            "title": None,
            "header": {"labelFontSize": 9, "labelLimit": 110},
        },
        "columns": 8,
        "spec": {
            "width": 110,
            "height": 60,
            "mark": {"type": "line", "point": {"size": 12}},
            "encoding": {
                "x": {**_X, "axis": {"format": "%Y", "labelFontSize": 8, "tickCount": 4}},
                "y": {
                    "field": "turnout",
                    "type": "quantitative",
                    "title": None,
                    "scale": {"domain": [0, 1]},
                    "axis": {**_PERCENT, "labelFontSize": 8, "tickCount": 3},
                },
                "tooltip": [{"field": "region"}, *_TOOLTIP, {"field": "registered"}],
            },
        },
        "resolve": {"scale": {"x": "shared", "y": "shared"}},
    }


def scenario_chart(scenario: ThresholdScenario) -> dict[str, Any]:
    """Units' turnout (bars, coloured by pass/fail), their clean turnout (ticks), the threshold."""
    rows = [
        {
            "unit": u.unit,
            "turnout": u.turnout,
            "clean turnout": u.clean_turnout,
            "registered": u.registered,
            "result": "passes" if u.passes else "fails",
        }
        for u in sorted(scenario.units, key=lambda u: u.turnout or 0.0)[:120]
    ]
    y = {
        "field": "unit",
        "type": "nominal",
        "sort": None,
        "title": None,
        "axis": {"labelFontSize": 9, "labelLimit": 180},
    }
    percent = {"format": ".0%"}
    layers: list[dict[str, Any]] = [
        {
            "mark": "bar",
            "encoding": {
                "y": y,
                "x": {
                    "field": "turnout",
                    "type": "quantitative",
                    "scale": {"domain": [0, 1]},
                    "axis": percent,
                },
                "color": {
                    "field": "result",
                    "type": "nominal",
                    "scale": {"domain": ["passes", "fails"], "range": ["#2a6cb0", "#d33"]},
                },
                "tooltip": [
                    {"field": "unit"},
                    {"field": "turnout", "format": ".1%"},
                    {"field": "clean turnout", "format": ".1%"},
                    {"field": "registered"},
                ],
            },
        },
        {
            "mark": {"type": "rule", "color": "black", "strokeDash": [4, 3]},
            "encoding": {"x": {"datum": scenario.threshold, "type": "quantitative"}},
        },
    ]
    if scenario.forensic.get("available"):
        layers.insert(
            1,
            {
                "mark": {"type": "tick", "color": "#f90", "thickness": 2},
                "encoding": {"y": y, "x": {"field": "clean turnout", "type": "quantitative"}},
            },
        )
    return {
        "$schema": _SCHEMA,
        "title": f"Turnout by {scenario.level} against {100 * scenario.threshold:g} %"
        + (" (orange: anomalous ballots taken out)" if scenario.forensic.get("available") else ""),
        "width": "container",
        "height": {"step": 11},
        "data": {"values": rows},
        "layer": layers,
    }


class TurnoutElections:
    """Stored elections as the turnout pages load them (no analysis), kept per ``meta.json``
    modification time; one per app, on ``app.state.turnout``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ElectionStore(settings.elections_dir)
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[int, Election]] = {}

    def load(self, election_id: str) -> Election:
        """The stored election; 404 when there is none."""
        try:
            check_election_id(election_id)
        except PollwatchError as exc:
            raise NotFound(exc.one_line()) from None
        stamp_path = self.settings.elections_dir / election_id / "meta.json"
        with self._lock:
            try:
                stamp = stamp_path.stat().st_mtime_ns
            except OSError:
                raise NotFound(
                    f"no election {election_id!r} in the store (see /api/elections)"
                ) from None
            cached = self._loaded.get(election_id)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            election = self.store.load(election_id)
            self._loaded[election_id] = (stamp, election)
            return election

    def default_ids(self) -> list[str]:
        """The stored series: every election of the country with the most, oldest first."""
        entries = [e for e in self.store.list() if e.simulation is None] or self.store.list()
        if not entries:
            return []
        country = Counter(e.country for e in entries).most_common(1)[0][0]
        chosen = sorted((e for e in entries if e.country == country), key=lambda e: e.date)
        return [e.id for e in chosen][-MAX_SERIES:]

    def series(self, ids: list[str] | None) -> TurnoutSeries:
        """The turnout series of ``ids`` (default: :meth:`default_ids`)."""
        chosen = ids or self.default_ids()
        if not chosen:
            raise PollwatchError("no election in the store", hint="import one first")
        if len(chosen) > MAX_SERIES:
            raise PollwatchError(f"a series page takes at most {MAX_SERIES} elections")
        return turnout_series([self.load(i) for i in chosen])

    def scenario(
        self, election_id: str | None, threshold: float, level: str, majority: bool, forensic: bool
    ) -> ThresholdScenario:
        """The minimum-turnout scenario (threshold in percent) of one election."""
        chosen = election_id or (self.default_ids()[-1:] or [""])[0]
        if not chosen:
            raise PollwatchError("no election in the store", hint="import one first")
        if level not in LEVELS:
            raise PollwatchError(f"unknown level {level!r}", hint=f"use one of {', '.join(LEVELS)}")
        election = self.load(chosen)
        estimate = shpilkin_estimate(election, self.settings.analysis_dir) if forensic else None
        return threshold_scenario(
            election,
            threshold / 100,
            level=level,  # type: ignore[arg-type]
            majority=majority,
            estimate=estimate,
        )


def _turnout_elections(request: Request) -> TurnoutElections:
    elections: TurnoutElections = request.app.state.turnout
    return elections


TurnoutDep = Annotated[TurnoutElections, Depends(_turnout_elections)]

router = APIRouter()


@router.get("/turnout", response_class=HTMLResponse, include_in_schema=False)
def series_page(
    request: Request, elections: TurnoutDep, ids: Annotated[list[str] | None, Query()] = None
) -> HTMLResponse:
    series = elections.series(ids)
    return page(
        request,
        "turnout.html",
        {
            "series": series,
            "links": {link.later: link for link in series.links},
            "charts_json": charts_json(series_charts(series)),
            "levels": LEVELS,
        },
    )


@router.get("/turnout/scenario", response_class=HTMLResponse, include_in_schema=False)
def scenario_page(
    request: Request,
    elections: TurnoutDep,
    id: str | None = None,
    threshold: Annotated[float, Query(ge=0.01, le=100)] = 50.0,
    level: str = "region",
    majority: bool = False,
    forensic: bool = True,
) -> HTMLResponse:
    scenario = elections.scenario(id, threshold, level, majority, forensic)
    return page(
        request,
        "turnout_scenario.html",
        {
            "s": scenario,
            "levels": LEVELS,
            "threshold_percent": threshold,
            "charts_json": charts_json({"scenario-chart": scenario_chart(scenario)}),
        },
    )


@router.get("/api/turnout/series", tags=["turnout"], responses=errors(400, 404, 422))
def api_series(
    elections: TurnoutDep,
    ids: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_SERIES,
            description=f"up to {MAX_SERIES} election ids (default: the stored series)",
        ),
    ] = None,
) -> Any:
    """Turnout over a series of elections: national, per region, station link rates."""
    return elections.series(ids).to_dict()


@router.get("/api/turnout/scenario", tags=["turnout"], responses=errors(400, 404, 422))
def api_scenario(
    elections: TurnoutDep,
    id: Annotated[str | None, Query(description="election id")] = None,
    threshold: Annotated[
        float, Query(ge=0.01, le=100, description="minimum turnout, % (0.01 to 100)")
    ] = 50.0,
    level: Annotated[Level, Query(description="units: " + ", ".join(LEVELS))] = "region",
    majority: bool = False,
    forensic: Annotated[bool, Query(description="take out Shpilkin's estimate")] = True,
) -> Any:
    """Which units a minimum turnout would fail, their registered voters, the outcome."""
    return elections.scenario(id, threshold, level, majority, forensic).to_dict()
