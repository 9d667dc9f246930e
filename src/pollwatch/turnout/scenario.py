"""Minimum-turnout scenarios: which units would have failed a threshold, and what it changes.

:func:`threshold_scenario` takes an election, a threshold (a turnout fraction, e.g. 0.5) and a
level (``national``, ``region``, ``constituency``, ``district`` or ``station``: the units the
threshold applies to) and returns a :class:`ThresholdScenario`: per unit its stations,
registered voters, ballots cast and turnout (:mod:`pollwatch.turnout.counting`), whether it
reaches the threshold (``turnout >= threshold``), and the registered voters living in the
units that fail.

Outcome. The official outcome is the leader (most votes over the counted stations) and, with
``majority=True`` (a vote that needs a turnout *and* a majority, as Russian presidential
elections before 2007 or a referendum), whether the leader has more than half of the ballots
cast. Under the scenario the results of failing units are annulled (dropped) and the outcome is
recomputed over the units that pass; at the national level a failing country annuls the
election. ``outcome_changes`` says whether the leader, or the majority, differs.

Anomalous ballots taken out. Where a forensic estimate of ballots added for the leader is given
(Shpilkin's estimate, :class:`pollwatch.forensics.shpilkin.ShpilkinEstimate` with
``by_region=True``: the national central estimate and each region's own), each unit's *clean*
turnout is ``(ballots_cast − A) / registered``, with ``A`` the unit's anomalous votes; a unit
that passes officially but not clean passes on anomalous ballots. Shpilkin's ``A`` counts votes
added to the leader *or moved* to him, so taking it all out of the ballots is an upper bound of
the ballots added. Only the national and region levels have per-unit estimates. The estimate's
calibration (``MethodResult.calibration``) travels with it: a method marked unreliable is shown
with that label, never hidden and never called reliable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import MethodResult
from pollwatch.forensics.calibration import calibration_words
from pollwatch.forensics.suite import run_suite
from pollwatch.results.model import Election
from pollwatch.turnout.counting import DEFINITIONS, Exclusions, counted_stations

__all__ = [
    "LEVELS",
    "Outcome",
    "ThresholdScenario",
    "UnitResult",
    "shpilkin_estimate",
    "threshold_scenario",
]

Level = Literal["national", "region", "constituency", "district", "station"]
LEVELS: tuple[str, ...] = ("national", "region", "constituency", "district", "station")
#: the levels at which Shpilkin's estimate has one figure per unit
_ESTIMATED_LEVELS = ("national", "region")


@dataclass(frozen=True)
class UnitResult:
    """One unit under the threshold (``clean_*`` None where no estimate covers it)."""

    unit: str
    stations: int
    registered: int
    ballots_cast: int
    turnout: float | None
    passes: bool
    leader_votes: int
    anomalous_votes: int | None = None
    clean_turnout: float | None = None
    passes_clean: bool | None = None

    @property
    def passes_on_anomalous_ballots(self) -> bool:
        """Passes with the official turnout, fails with the anomalous ballots taken out."""
        return self.passes and self.passes_clean is False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passes_on_anomalous_ballots"] = self.passes_on_anomalous_ballots
        return data


@dataclass(frozen=True)
class Outcome:
    """Who wins, and with what, over the units counted."""

    units: int
    leader: str | None
    leader_votes: int
    ballots_cast: int
    majority: bool | None
    annulled: bool

    @property
    def leader_share(self) -> float | None:
        return self.leader_votes / self.ballots_cast if self.ballots_cast else None

    def differs_from(self, other: Outcome) -> bool:
        if self.annulled != other.annulled:
            return True
        return self.leader != other.leader or self.majority != other.majority

    def words(self) -> str:
        if self.annulled:
            return "no valid result (every unit fails the threshold)"
        share = "" if self.leader_share is None else f" ({100 * self.leader_share:.1f}% of ballots)"
        verdict = {True: ", majority reached", False: ", no majority", None: ""}[self.majority]
        return f"{self.leader}{share}{verdict}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["leader_share"] = self.leader_share
        data["words"] = self.words()
        return data


@dataclass(frozen=True)
class ThresholdScenario:
    """What a minimum-turnout threshold would have done to one election (module docstring)."""

    election_id: str
    threshold: float
    level: str
    majority_required: bool
    units: tuple[UnitResult, ...]
    official: Outcome
    scenario: Outcome
    excluded: Exclusions
    definitions: Mapping[str, str]
    #: the forensic estimate used for the clean turnout: method, calibration, its words,
    #: ``reliable`` (False when the calibration marks it unreliable), ``available`` at this level
    forensic: Mapping[str, Any] = field(default_factory=dict)
    clean_scenario: Outcome | None = None
    simulation: str | None = None

    @property
    def failing(self) -> tuple[UnitResult, ...]:
        return tuple(u for u in self.units if not u.passes)

    @property
    def registered_in_failing(self) -> int:
        return sum(u.registered for u in self.failing)

    @property
    def registered_total(self) -> int:
        return sum(u.registered for u in self.units)

    @property
    def outcome_changes(self) -> bool:
        return self.scenario.differs_from(self.official)

    @property
    def failing_clean(self) -> tuple[UnitResult, ...]:
        return tuple(u for u in self.units if u.passes_clean is False)

    @property
    def passing_on_anomalous_ballots(self) -> tuple[UnitResult, ...]:
        return tuple(u for u in self.units if u.passes_on_anomalous_ballots)

    def to_dict(self) -> dict[str, Any]:
        return {
            "election_id": self.election_id,
            "simulation": self.simulation,
            "threshold": self.threshold,
            "level": self.level,
            "majority_required": self.majority_required,
            "units": [u.to_dict() for u in self.units],
            "failing": [u.unit for u in self.failing],
            "registered_in_failing": self.registered_in_failing,
            "registered_total": self.registered_total,
            "official": self.official.to_dict(),
            "scenario": self.scenario.to_dict(),
            "outcome_changes": self.outcome_changes,
            "forensic": dict(self.forensic),
            "failing_clean": [u.unit for u in self.failing_clean],
            "passing_on_anomalous_ballots": [u.unit for u in self.passing_on_anomalous_ballots],
            "clean_scenario": None
            if self.clean_scenario is None
            else self.clean_scenario.to_dict(),
            "excluded": self.excluded.to_dict(),
            "definitions": dict(self.definitions),
        }

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        head = f"{self.election_id}: threshold {100 * self.threshold:g}% by {self.level}" + (
            " (turnout and majority)" if self.majority_required else ""
        )
        lines: list[Any] = []
        if self.simulation:
            lines.append(Text(self.simulation, style="bold red"))
        lines.append(Text(head, style="bold"))
        lines.append(
            Text(
                f"{len(self.failing):,} of {len(self.units):,} units fail, with "
                f"{self.registered_in_failing:,} of {self.registered_total:,} registered voters"
            )
        )
        table = Table(title="Units failing the threshold", title_justify="left")
        table.add_column("unit", overflow="fold", max_width=34)
        table.add_column("registered", justify="right", no_wrap=True)
        table.add_column("turnout", justify="right", no_wrap=True)
        clean = bool(self.forensic.get("available"))
        if clean:
            table.add_column("clean", justify="right", no_wrap=True)
        shown = sorted(self.failing, key=lambda u: u.turnout or 0.0)
        for unit in shown[:40]:
            cells = [unit.unit, f"{unit.registered:,}", _pct(unit.turnout)]
            if clean:
                cells.append(_pct(unit.clean_turnout))
            table.add_row(*cells)
        if len(shown) > 40:
            table.caption = f"... and {len(shown) - 40:,} more (--json lists all)"
        if shown:
            lines.append(table)
        else:
            lines.append(Text("no unit fails the threshold"))
        lines.append(Text(f"official outcome: {self.official.words()}"))
        changed = "CHANGES" if self.outcome_changes else "unchanged"
        lines.append(Text(f"failing units annulled: {self.scenario.words()} ({changed})"))
        if self.forensic:
            words = str(self.forensic.get("calibration_words", ""))
            style = "bold red" if not self.forensic.get("reliable") else ""
            lines.append(
                Text(f"clean turnout: {self.forensic.get('method')}; {words}", style=style)
            )
            if clean:
                lines.append(
                    Text(
                        f"anomalous ballots out: {len(self.failing_clean):,} fail; "
                        f"{len(self.passing_on_anomalous_ballots):,} pass only on anomalous "
                        "ballots"
                    )
                )
                if self.clean_scenario is not None:
                    lines.append(Text(f"clean outcome: {self.clean_scenario.words()}"))
            else:
                lines.append(Text(str(self.forensic.get("why", "")), style="dim"))
        lines.append(Text(f"turnout: {self.definitions['turnout']}", style="dim"))
        lines.append(Text(f"counted: {self.definitions['stations counted']}", style="dim"))
        lines.append(Text(self.excluded.words(), style="dim"))
        return Group(*lines)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _unit_column(level: str) -> str | None:
    if level == "national":
        return None
    return "station_id" if level == "station" else level


def _outcome(
    frame: pl.DataFrame,
    candidates: list[tuple[str, str]],
    majority: bool,
    units: int,
    less: Mapping[str, int] | None = None,
    leader_column: str | None = None,
) -> Outcome:
    """Leader and majority over ``frame``'s stations; ``less`` takes anomalous votes off the
    leader's votes and the ballots (the clean outcome)."""
    if frame.is_empty() or units == 0:
        return Outcome(
            units=0, leader=None, leader_votes=0, ballots_cast=0, majority=None, annulled=True
        )
    totals = frame.select([pl.col(c).fill_null(0).sum().alias(c) for _, c in candidates]).row(
        0, named=True
    )
    ballots = int(frame["ballots_cast"].sum() or 0)
    taken = sum((less or {}).values())
    votes = {column: int(totals[column] or 0) for _, column in candidates}
    if leader_column is not None and taken:
        votes[leader_column] -= taken
        ballots -= taken
    best = max(votes.values()) if votes else 0
    name, column = next(((n, c) for n, c in candidates if votes[c] == best), (None, ""))
    leader_votes = votes.get(column, 0)
    return Outcome(
        units=units,
        leader=name,
        leader_votes=leader_votes,
        ballots_cast=ballots,
        majority=(leader_votes > ballots / 2) if majority else None,
        annulled=False,
    )


def _forensic(
    estimate: MethodResult | None, level: str
) -> tuple[dict[str, Any], dict[str, int | None] | None]:
    """The block describing the estimate, and the anomalous votes per unit (None: none here)."""
    if estimate is None:
        return {}, None
    calibration = estimate.calibration
    info: dict[str, Any] = {
        "method": estimate.method,
        "title": estimate.title,
        "calibration": calibration.to_dict() if calibration is not None else {},
        "calibration_words": calibration_words(calibration),
        "reliable": calibration is not None and not calibration.unreliable,
        "definition": "clean turnout = (ballots_cast - anomalous votes) / registered; "
        "Shpilkin's anomalous votes include votes moved to the leader, so this takes out an "
        "upper bound of the ballots added",
        "available": False,
    }
    if level == "national":
        info["available"] = estimate.effect is not None
        return info, {"": round(estimate.effect)} if estimate.effect is not None else None
    if level == "region":
        regions = estimate.details.get("regions")
        if not isinstance(regions, Mapping):
            info["why"] = "the estimate has no per-region figures (run it with by_region=True)"
            return info, None
        info["available"] = True
        return info, {
            str(name): (
                None if entry.get("anomalous_votes") is None else int(entry["anomalous_votes"])
            )
            for name, entry in regions.items()
        }
    info["why"] = f"{estimate.method} gives no per-unit estimate at the {level} level"
    return info, None


def shpilkin_estimate(election: Election, cache_dir: Path | None = None) -> MethodResult | None:
    """Shpilkin's estimate with per-region figures (cached in ``cache_dir`` as the suite's
    results are), or None where the method does not apply to the election."""
    report = run_suite(election, ["shpilkin"], by_region=True, cache_dir=cache_dir)
    return report.results[0] if report.results else None


def threshold_scenario(
    election: Election,
    threshold: float,
    *,
    level: Level = "region",
    majority: bool = False,
    estimate: MethodResult | None = None,
    abroad: bool = False,
) -> ThresholdScenario:
    """Apply a minimum turnout to ``election``'s units (see the module docstring).

    ``threshold`` is a fraction in (0, 1]; ``estimate`` a Shpilkin result (``by_region=True``
    for the region level) whose anomalous votes give the clean turnout.
    """
    if not 0 < threshold <= 1:
        raise PollwatchError(
            f"threshold {threshold!r} is not a turnout",
            hint="give a percentage between 0 and 100 (e.g. --threshold 50)",
        )
    if level not in LEVELS:
        raise PollwatchError(f"unknown level {level!r}", hint=f"use one of {', '.join(LEVELS)}")
    column = _unit_column(level)
    counted, excluded = counted_stations(election, abroad=abroad)
    if column is not None and counted[column].null_count() == counted.height and counted.height:
        label = election.meta.hierarchy_labels.get(column, column)
        raise PollwatchError(
            f"election {election.id!r} has no {label} (the {column} column is empty)",
            hint="choose another --level (national, region, district, station)",
        )
    leader = election.leader()
    if leader is None:
        raise PollwatchError(f"election {election.id!r} has no candidates", hint="import votes")
    unit_expr = pl.lit("national") if column is None else pl.col(column).fill_null("(none)")
    labelled = counted.with_columns(unit_expr.alias("_unit"))
    grouped = (
        labelled.group_by("_unit")
        .agg(
            pl.len().alias("stations"),
            pl.col("registered").sum().alias("registered"),
            pl.col("ballots_cast").sum().alias("ballots_cast"),
            pl.col(leader.column).fill_null(0).sum().alias("leader_votes"),
        )
        .sort("_unit")
    )
    if estimate is not None and estimate.input_digest != election.content_digest():
        raise PollwatchError(
            f"the {estimate.method} estimate was computed on {estimate.election_id!r}, not on "
            f"the numbers of {election.id!r}",
            hint="run the estimate on this election (shpilkin_estimate)",
        )
    forensic, anomalous = _forensic(estimate, level)
    units: list[UnitResult] = []
    for row in grouped.iter_rows(named=True):
        registered = int(row["registered"] or 0)
        ballots = int(row["ballots_cast"] or 0)
        turnout = ballots / registered if registered else None
        taken = None
        if anomalous is not None:
            taken = anomalous.get("" if column is None else str(row["_unit"]))
        clean = (ballots - taken) / registered if taken is not None and registered else None
        units.append(
            UnitResult(
                unit=str(row["_unit"]),
                stations=int(row["stations"]),
                registered=registered,
                ballots_cast=ballots,
                turnout=turnout,
                passes=turnout is not None and turnout >= threshold,
                leader_votes=int(row["leader_votes"] or 0),
                anomalous_votes=taken,
                clean_turnout=clean,
                passes_clean=None if clean is None else clean >= threshold,
            )
        )
    candidates = [(c.name, c.column) for c in election.meta.candidates]
    official = _outcome(labelled, candidates, majority, len(units))
    passing = {u.unit for u in units if u.passes}
    scenario = _outcome(
        labelled.filter(pl.col("_unit").is_in(list(passing))), candidates, majority, len(passing)
    )
    clean_scenario = None
    if forensic.get("available"):
        # units without an estimate of their own keep their official turnout and votes
        kept = {u.unit for u in units if (u.passes if u.passes_clean is None else u.passes_clean)}
        less = {u.unit: u.anomalous_votes or 0 for u in units if u.unit in kept}
        clean_scenario = _outcome(
            labelled.filter(pl.col("_unit").is_in(list(kept))),
            candidates,
            majority,
            len(kept),
            less=less,
            leader_column=leader.column,
        )
    definitions = {
        **DEFINITIONS,
        "threshold": f"a unit passes when its turnout >= {100 * threshold:g} %",
        "unit": {
            "national": "the whole election",
            "station": "one polling station",
        }.get(level, f"one {election.meta.hierarchy_labels.get(level, level)} ({level} column)"),
        "outcome": "leader = most votes over the counted stations"
        + ("; majority = more than half of the ballots cast" if majority else "")
        + "; under the scenario the failing units' results are annulled (dropped)",
    }
    return ThresholdScenario(
        election_id=election.id,
        threshold=threshold,
        level=level,
        majority_required=majority,
        units=tuple(units),
        official=official,
        scenario=scenario,
        excluded=excluded,
        definitions=definitions,
        forensic=forensic,
        clean_scenario=clean_scenario,
        simulation=election.meta.simulation_notice,
    )
