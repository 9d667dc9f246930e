"""Data for the dashboard's pages and the JSON API: pure functions over results.

Everything here takes an :class:`~pollwatch.results.model.Election`, a
:class:`~pollwatch.results.checks.QualityReport` and method results, and returns small
JSON-able structures (lists of dicts, Vega-Lite specs). Large elections are aggregated here:
histograms are binned counts, station lists are pages. What a method computes is read from its
result's typed details (:mod:`pollwatch.forensics.sections`), never recomputed from the stations
and never looked up by a method's name: the station ranking is a :class:`StationRanking`, the
region table a :class:`RegionTable` (:func:`region_table`), the fingerprint
:class:`FingerprintCells` (:func:`fingerprint_cells`), whichever method provides them.
Nothing here reads files except :func:`cached_results`, which reads the suite's result cache.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import METHODS, MethodResult, get_method
from pollwatch.forensics.calibration import calibration_words
from pollwatch.forensics.sections import (
    Chart,
    FingerprintCells,
    RegionTable,
    StationRanking,
    detail_of,
    section_dict,
    tables,
)
from pollwatch.results.checks import RULES, QualityReport
from pollwatch.results.model import COUNT_COLUMNS, HIERARCHY_COLUMNS, Election
from pollwatch.results.special import special_stations
from pollwatch.spreadsheet import neutralise_row

__all__ = [
    "SORT_KEYS",
    "cached_results",
    "compare_rows",
    "fingerprint_cells",
    "fingerprint_chart",
    "fingerprint_spec",
    "histogram_counts",
    "histogram_spec",
    "method_sections",
    "methods_rows",
    "neighbours",
    "overview",
    "region_table",
    "reliable",
    "station_detail",
    "stations_page",
    "triage_summary",
]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"

#: Sort keys of the station list (prefix ``-`` for descending); ``score`` is the triage rank.
SORT_KEYS: tuple[str, ...] = ("score", "station_id", "region", "registered", "turnout", "share")

MAX_PAGE_SIZE = 1000


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- analysis cache ---------------------------------------------------------------------------
def cached_results(analysis_dir: Path, election_id: str, digest: str) -> dict[str, MethodResult]:
    """Results the suite cached for this election's current numbers, one per method.

    Only runs with the method's default parameters count (its own defaults or the default
    suite's, whatever the seed and ``by_region``): a run with other parameters, from
    ``pollwatch analyze -p`` or the parameters API, never replaces what the dashboard shows.
    Where a method is cached with several such runs, the one run ``by_region`` is kept (it
    carries the per-region numbers the region table shows).
    """
    folder = analysis_dir / election_id
    found: dict[str, MethodResult] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            result = MethodResult.from_json(path.read_text("utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if result.input_digest != digest or not _default_run(result):
            continue
        previous = found.get(result.method)
        if previous is None or (
            result.parameters.get("by_region") and not previous.parameters.get("by_region")
        ):
            found[result.method] = result
    return found


#: Parameters that do not make a run other than the default one: the seed, and ``by_region``
#: (it only adds per-region numbers).
_RUN_OPTIONS = ("seed", "by_region")


def _comparable(parameters: Mapping[str, Any]) -> str:
    chosen = {k: v for k, v in parameters.items() if k not in _RUN_OPTIONS}
    return json.dumps(chosen, sort_keys=True, default=str)


def _default_run(result: MethodResult) -> bool:
    """Whether a result was run with its method's own or the default suite's parameters."""
    try:
        defaults = {_comparable(get_method(result.method).parameters())}
        cls = METHODS.get(result.method)
        defaults.add(_comparable(get_method(result.method, **cls.suite_parameters).parameters()))
    except PollwatchError:
        return True  # a method no longer installed: its result is shown as it was
    return _comparable(result.parameters) in defaults


# --- summary ----------------------------------------------------------------------------------
def overview(election: Election, quality: QualityReport) -> dict[str, Any]:
    """Summary and protocol-check counts of an election (the API's election object)."""
    summary = election.summary()
    return {
        "meta": election.meta.to_dict(),
        "simulation": election.meta.simulation_notice,
        "summary": summary.to_dict(),
        "quality": quality.to_dict(),
        "quarantine": quarantine_overview(election),
    }


def quarantine_overview(election: Election) -> dict[str, Any]:
    """How many source rows the import set aside, why, and where to read them."""
    quarantine = election.quarantine
    return {
        "count": len(quarantine),
        "rows_checked": quarantine.rows_checked,
        "reasons": quarantine.reasons(),
        "summary": quarantine.one_line(),
        "url": f"/api/elections/{election.id}/quarantine",
    }


def method_sections(result: MethodResult) -> dict[str, Any]:
    """What the dashboard's method page shows: the result's sections (``Method.sections``),
    as JSON (``sections``), with its tables and Vega-Lite charts apart (``tables``,
    ``charts``: name -> spec) for the template."""
    sections = result.sections()
    return {
        "method": result.method,
        "title": result.title,
        "sections": [section_dict(section) for section in sections],
        "tables": [section_dict(table) for table in tables(sections)],
        "charts": {s.name: dict(s.spec) for s in sections if isinstance(s, Chart)},
    }


def methods_rows(results: Iterable[MethodResult]) -> list[dict[str, Any]]:
    """One row per method result: the numbers of the methods table."""
    rows = []
    for r in results:
        rows.append(
            {
                "method": r.method,
                "title": r.title,
                "statistic_name": r.statistic_name,
                "statistic": _finite(r.statistic),
                "p_value": _finite(r.p_value),
                "p_value_floor": r.p_value_floor,
                "p_value_text": r.p_value_text(),
                "significant": r.significant,
                "effect_name": r.effect_name,
                "effect": _finite(r.effect),
                "interval": list(r.interval) if r.interval else None,
                "n": r.sample_size,
                "flagged": len(r.flagged),
                "calibration": _finite(r.calibration.to_dict() if r.calibration else {}),
                "calibration_words": calibration_words(r.calibration),
                "unreliable": r.calibration is not None and r.calibration.unreliable,
                "notes": list(r.notes),
            }
        )
    return rows


# --- derived station table ----------------------------------------------------------------------
def _derived(election: Election) -> pl.DataFrame:
    """Stations with ``turnout`` and ``share`` (the leader's vote share) columns."""
    leader = election.leader()
    share = (
        Election.vote_share_expr(leader.column).alias("share")
        if leader is not None
        else pl.lit(None, dtype=pl.Float64).alias("share")
    )
    return election.stations.with_columns(Election.turnout_expr(), share)


def _scores(triage: MethodResult | None) -> pl.DataFrame:
    ranking = detail_of(triage, StationRanking)
    ranked = ranking.stations if ranking is not None else ()
    flagged = set(triage.flagged) if triage is not None else set()
    rows: list[tuple[str, float | None, int]] = [
        (r.station_id, r.score, i) for i, r in enumerate(ranked)
    ]
    listed = {r[0] for r in rows}
    # Flagged stations beyond the listed top come after it, unscored.
    rows += [(s, None, len(ranked) + i) for i, s in enumerate(sorted(flagged - listed))]
    return pl.DataFrame(
        rows,
        schema={"station_id": pl.String, "score": pl.Float64, "rank": pl.Int64},
        orient="row",
    )


def stations_page(
    election: Election,
    triage: MethodResult | None,
    *,
    page: int = 1,
    size: int = 50,
    sort: str = "-score",
    region: str | None = None,
) -> dict[str, Any]:
    """One page of the station list, ranked by triage score by default.

    ``triage`` is the result that provides the :class:`StationRanking` (or None). ``sort`` is
    one of :data:`SORT_KEYS`, prefixed with ``-`` for descending; ``-score`` puts
    the triage ranking first (its listed stations, then other flagged stations, then the rest
    by id). Each row says ``special``: why the station is a likely special station
    (:func:`pollwatch.results.special.special_stations`), or None; ``triage`` says what the
    ranking is worth (:func:`triage_summary`). Raises :class:`PollwatchError` for a bad page,
    size or sort key.
    """
    if page < 1:
        raise PollwatchError(f"page={page} must be at least 1")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise PollwatchError(f"size={size} must be between 1 and {MAX_PAGE_SIZE}")
    key = sort.removeprefix("-")
    descending = sort.startswith("-")
    if key not in SORT_KEYS:
        raise PollwatchError(
            f"sort={sort!r} is not a sort key", hint=f"use one of {', '.join(SORT_KEYS)}"
        )
    frame = _derived(election).select(
        "station_id", "region", "district", "registered", "ballots_cast", "turnout", "share"
    )
    if region:
        frame = frame.filter(pl.col("region") == region)
    frame = frame.join(_scores(triage), on="station_id", how="left")
    flagged = set(triage.flagged) if triage is not None else set()
    if key == "score":
        # Ranked stations first in rank order (or last, ascending), then the rest by id.
        frame = frame.sort([pl.col("rank").is_null(), "rank", "station_id"])
        if not descending:
            frame = frame.reverse()
    else:
        frame = frame.sort([key, "station_id"], descending=[descending, False], nulls_last=True)
    total = frame.height
    offset = (page - 1) * size
    # A page past the last is empty (polars cannot slice from an offset beyond 64 bits).
    rows = frame.slice(offset, size).to_dicts() if offset < total else []
    special = special_stations(election).reasons()
    for row in rows:
        row["flagged"] = row["station_id"] in flagged
        row["special"] = special.get(row["station_id"])
        row.pop("rank", None)
        for name in ("turnout", "share", "score"):
            row[name] = _finite(row[name])
    return {
        "election_id": election.id,
        "simulation": election.meta.simulation_notice,
        "page": page,
        "size": size,
        "sort": sort,
        "region": region,
        "total": total,
        "pages": max(1, math.ceil(total / size)),
        "stations": rows,
        "triage": triage_summary(triage),
    }


def triage_summary(triage: MethodResult | None) -> dict[str, Any]:
    """What the triage ranking is worth, for the words around its list.

    ``calibration_words`` and ``unreliable`` come from the calibration table; ``heading`` is
    "Stations to check first" with "(a list to check, not a finding)" while the triage is not
    reliable (:func:`reliable`); ``special`` is the triage's count of likely special stations
    left out (:attr:`StationRanking.special`), or None for results from before that count.
    """
    calibration = triage.calibration if triage is not None else None
    trusted = triage is not None and reliable(triage)
    return {
        "run": triage is not None,
        "reliable": trusted,
        "unreliable": calibration is not None and calibration.unreliable,
        "calibration_words": calibration_words(calibration),
        "heading": "Stations to check first"
        + ("" if trusted else " (a list to check, not a finding)"),
        "special": ranking.special.to_dict()
        if (ranking := detail_of(triage, StationRanking)) is not None
        and ranking.special is not None
        else None,
    }


def reliable(result: MethodResult) -> bool:
    """Whether the calibration table measured the method and did not mark it unreliable.

    "Unreliable" is :mod:`pollwatch.forensics.calibration`'s: a false-positive rate on clean
    simulations or clean references above α beyond sampling error. A method that was never
    calibrated is not counted as reliable either: nothing says how often it flags clean data.
    """
    calibration = result.calibration
    return calibration is not None and calibration.calibrated and not calibration.unreliable


# --- regions ----------------------------------------------------------------------------------
def region_table(
    shpilkin: MethodResult | None,
    triage: MethodResult | None = None,
    election: Election | None = None,
) -> list[dict[str, Any]]:
    """One row per region, from Shpilkin's ``by_region`` result; empty without one.

    Stations, registered, turnout (``Σ ballots_cast / Σ registered``), the leader's share
    (leader votes over all candidates' votes) and the estimate of anomalous votes are the
    method's own per-region numbers (its :class:`RegionTable`), over the stations it uses (its
    filters are in its ``definitions``); ``flagged`` counts the stations of the region that the
    triage flags (0 without ``triage`` or ``election``). Nothing is recomputed from the stations.
    """
    table = detail_of(shpilkin, RegionTable)
    if table is None:
        return []
    flagged = _flagged_by_region(election, triage)
    return [
        {
            "region": entry.region,
            "stations": entry.stations,
            "registered": entry.registered,
            "turnout": _finite(entry.turnout),
            "leader_share": _finite(entry.leader_share),
            "shpilkin_estimate": entry.anomalous_votes,
            "flagged": flagged.get(entry.region, 0),
        }
        for entry in sorted(table.regions, key=lambda entry: entry.region)
    ]


def _flagged_by_region(election: Election | None, triage: MethodResult | None) -> dict[str, int]:
    """How many stations the triage flags per region (a missing region is "(none)")."""
    if election is None or triage is None or not triage.flagged:
        return {}
    counts = (
        election.stations.filter(pl.col("station_id").is_in(list(triage.flagged)))
        .select(pl.col("region").fill_null("(none)"))
        .group_by("region")
        .len()
    )
    return {str(region): int(n) for region, n in counts.iter_rows()}


# --- histograms -------------------------------------------------------------------------------
def histogram_counts(values: pl.Series, *, bins: int = 1000) -> list[dict[str, Any]]:
    """Non-empty bins of a [0, 1] quantity in percent; 1000 bins are 0.1 percentage point.

    Values above 1 go to the last bin; nulls are left out. Each row: ``start`` and ``end``
    (percent) and ``stations``.
    """
    width = 100 / bins
    clean = values.drop_nulls().drop_nans() if values.dtype.is_float() else values.drop_nulls()
    frame = (
        pl.DataFrame({"v": clean.cast(pl.Float64)})
        .with_columns((pl.col("v") * bins).floor().clip(0, bins - 1).cast(pl.Int64).alias("bin"))
        .group_by("bin")
        .len()
        .sort("bin")
    )
    return [
        {
            "start": round(b * width, 4),
            "end": round((b + 1) * width, 4),
            "stations": n,
        }
        for b, n in frame.iter_rows()
    ]


def histogram_spec(counts: list[dict[str, Any]], *, title: str, x_title: str) -> dict[str, Any]:
    """A Vega-Lite bar chart of binned counts with a rule at every whole percent."""
    return {
        "$schema": _SCHEMA,
        "title": title,
        "width": "container",
        "height": 260,
        "layer": [
            {
                "data": {"sequence": {"start": 0, "stop": 101, "as": "percent"}},
                "mark": {"type": "rule", "color": "#d33", "opacity": 0.18, "strokeWidth": 0.5},
                "encoding": {"x": {"field": "percent", "type": "quantitative"}},
            },
            {
                "data": {"values": counts},
                "mark": {"type": "rect", "color": "#2a6cb0"},
                "encoding": {
                    "x": {
                        "field": "start",
                        "type": "quantitative",
                        "title": x_title,
                        "scale": {"domain": [0, 100]},
                        "axis": {"values": list(range(0, 101, 5))},
                    },
                    "x2": {"field": "end"},
                    "y": {"field": "stations", "type": "quantitative", "title": "stations"},
                    "tooltip": [
                        {"field": "start", "title": "from %"},
                        {"field": "stations"},
                    ],
                },
            },
        ],
    }


def histograms(election: Election) -> dict[str, list[dict[str, Any]]]:
    """Turnout and leader-share histograms (0.1 percentage-point bins)."""
    frame = _derived(election)
    return {
        "turnout": histogram_counts(frame["turnout"]),
        "leader_share": histogram_counts(frame["share"]),
    }


# --- fingerprint ------------------------------------------------------------------------------
def fingerprint_cells(klimek: MethodResult | None) -> list[dict[str, Any]]:
    """The non-empty cells of the Klimek fingerprint result's turnout x leader-share chart.

    Each cell: ``x0``, ``x1`` (turnout bin), ``y0``, ``y1`` (share bin) on [0, 1] and
    ``count`` (stations), as ``klimek-fingerprint`` binned them over the stations it uses;
    empty without the result (its :class:`FingerprintCells`).
    """
    cells = detail_of(klimek, FingerprintCells)
    return cells.cell_dicts() if cells is not None else []


def fingerprint_chart(
    election_id: str, klimek: MethodResult | None, missing: str = "", method: str = ""
) -> dict[str, Any]:
    """The election page's fingerprint: the Klimek result's own chart, else an empty one
    whose title says why there is none (``missing``; ``method`` names the method that
    provides fingerprints)."""
    cells = detail_of(klimek, FingerprintCells)
    if cells is not None:
        return cells.to_chart()
    name = method or (klimek.method if klimek is not None else "fingerprint")
    return fingerprint_spec(
        [], title=f"{election_id}: no fingerprint ({name}: {missing or 'not run'})"
    )


def fingerprint_spec(
    cells: list[dict[str, Any]], *, title: str, size: int = 400, max_count: float | None = None
) -> dict[str, Any]:
    """A Vega-Lite heatmap of :func:`fingerprint_cells` on fixed [0, 1] axes."""
    color: dict[str, Any] = {"field": "count", "type": "quantitative", "title": "stations"}
    scale: dict[str, Any] = {"type": "symlog", "scheme": "viridis"}
    if max_count is not None:
        scale["domain"] = [0, max_count]
    color["scale"] = scale
    return {
        "$schema": _SCHEMA,
        "title": title,
        "width": size,
        "height": size,
        "data": {"values": cells},
        "mark": {"type": "rect"},
        "encoding": {
            "x": _percent_axis("x0", "turnout"),
            "x2": {"field": "x1"},
            "y": _percent_axis("y0", "leader's vote share"),
            "y2": {"field": "y1"},
            "color": color,
        },
    }


# --- station page -------------------------------------------------------------------------------
def _percent_axis(field: str, title: str) -> dict[str, Any]:
    """A quantitative axis of a share on a fixed [0, 1] scale, labelled in percent."""
    return {
        "field": field,
        "type": "quantitative",
        "title": title,
        "scale": {"domain": [0, 1]},
        "axis": {"format": "%"},
    }


def _find_station(election: Election, station_id: str) -> dict[str, Any]:
    rows = _derived(election).filter(pl.col("station_id") == station_id).head(1).to_dicts()
    if not rows:
        raise KeyError(station_id)
    return rows[0]


def neighbours(
    election: Election, station: Mapping[str, Any], *, limit: int = 20
) -> dict[str, Any]:
    """Other stations in the station's lowest shared unit (district, else region), up to
    ``limit`` nearest by station id, with their turnout and leader share, plus the unit's
    median turnout and share."""
    level = next(
        (c for c in ("municipality", "district", "constituency", "region") if station.get(c)),
        None,
    )
    if level is None:
        return {"level": None, "unit": None, "stations": [], "median_turnout": None}
    frame = _derived(election).filter(pl.col(level) == station[level])
    medians = frame.select(pl.col("turnout").median(), pl.col("share").median()).row(0)
    others = (
        frame.filter(pl.col("station_id") != station["station_id"])
        .select("station_id", "station_name", "registered", "ballots_cast", "turnout", "share")
        .sort("station_id")
    )
    # The stations nearest by id: numbering usually follows geography within a unit.
    ids = others["station_id"].to_list()
    position = sum(1 for s in ids if s < station["station_id"])
    start = max(0, min(position - limit // 2, len(ids) - limit))
    return {
        "level": level,
        "unit": station[level],
        "stations_in_unit": frame.height,
        "median_turnout": _finite(medians[0]),
        "median_share": _finite(medians[1]),
        "stations": others.slice(start, limit).to_dicts(),
    }


def station_detail(
    election: Election,
    station_id: str,
    quality: QualityReport,
    results: Sequence[MethodResult] = (),
) -> dict[str, Any]:
    """Everything the station page shows; raises ``KeyError`` for an unknown station."""
    row = _find_station(election, station_id)
    protocol = {c: row[c] for c in (*HIERARCHY_COLUMNS, "station_name", "station_kind")}
    protocol.update({c: row[c] for c in COUNT_COLUMNS})
    votes = {c.name: row[c.column] for c in election.meta.candidates}
    valid = row["valid"]
    shares = {
        c.name: (row[c.column] / valid if valid and row[c.column] is not None else None)
        for c in election.meta.candidates
    }
    checks_row = quality.table.filter(pl.col("station_id") == station_id).head(1).to_dicts()
    checks = [
        {
            "rule": rule,
            "description": description,
            "status": (
                "not checked"
                if not checks_row or checks_row[0].get(rule) is None
                else ("fails" if checks_row[0][rule] else "passes")
            ),
        }
        for rule, description in RULES.items()
    ]
    reasons: list[str] = []
    flagged_by: list[str] = []
    listed_by: list[dict[str, str]] = []
    score = None
    scored_by = None  # the method whose station ranking gave the score
    special = special_stations(election).reason(station_id)
    if special is not None:
        reasons.append(f"likely special station: {special}")
    for result in results:
        if station_id in result.flagged:
            if reliable(result):
                flagged_by.append(result.method)
            else:
                listed_by.append(
                    {"method": result.method, "calibration": calibration_words(result.calibration)}
                )
        ranking = detail_of(result, StationRanking)
        entry = ranking.entry(station_id) if ranking is not None else None
        if entry is not None:
            reasons.extend(entry.reasons)
            score, scored_by = entry.score, result.method
    reasons.extend(f"protocol: {c['description']} fails" for c in checks if c["status"] == "fails")
    reasons.extend(f"flagged by {m}" for m in flagged_by if m != scored_by or not score)
    reasons.extend(
        f"listed by {entry['method']} (not a finding: {entry['calibration']})"
        for entry in listed_by
    )
    flags = {c: row[c] for c in row if c.startswith("is_")}
    return {
        "election_id": election.id,
        "simulation": election.meta.simulation_notice,
        "station_id": station_id,
        "protocol": protocol,
        "votes": votes,
        "flags": flags,
        "derived": {
            "turnout": _finite(row["turnout"]),
            "leader": (leader.name if (leader := election.leader()) else None),
            "leader_share": _finite(row["share"]),
            "shares": shares,
        },
        "checks": checks,
        "triage_score": score,
        "special": special,
        "flagged_by": flagged_by,
        "listed_by": listed_by,
        "reasons": reasons,
        "neighbours": neighbours(election, row),
    }


def station_csv_row(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The station's protocol, votes and derived numbers as one flat row."""
    row: dict[str, Any] = {"station_id": detail["station_id"]}
    row.update(detail["protocol"])
    row.update({f"votes:{k}": v for k, v in detail["votes"].items()})
    row["turnout"] = detail["derived"]["turnout"]
    row["leader_share"] = detail["derived"]["leader_share"]
    row["reasons"] = "; ".join(detail["reasons"])
    return row


# --- compare ----------------------------------------------------------------------------------
def compare_rows(overviews: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per election with the headline numbers, for a side-by-side table."""
    rows = []
    for item in overviews:
        s = item["summary"]
        leader = s.get("leader")
        totals = s.get("totals", {})
        valid = s.get("valid")
        rows.append(
            {
                "election_id": s["election_id"],
                "simulation": item.get("simulation"),
                "date": item["meta"].get("date"),
                "stations": s["stations"],
                "registered": s["registered"],
                "ballots_cast": s["ballots_cast"],
                "turnout": s["turnout"],
                "leader": leader,
                "leader_share": (totals.get(leader, 0) / valid if leader and valid else None),
            }
        )
    return rows


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of scalars (lists and dicts as JSON text) as CSV; no text cell reads as a formula.

    Text starting with = + - @ TAB or CR gets a leading ``'`` (:mod:`pollwatch.spreadsheet`).
    """
    if not rows:
        return ""
    flat = [
        neutralise_row(
            {
                k: (json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict | tuple) else v)
                for k, v in r.items()
            }
        )
        for r in rows
    ]
    return pl.DataFrame(flat, infer_schema_length=None).write_csv()
