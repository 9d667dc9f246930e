"""Protocol arithmetic checks: each station's numbers against the rules a protocol must obey.

An inconsistent protocol is a finding shown to the user, never a crash. :func:`check_protocols`
returns a :class:`QualityReport`: one row per station with one boolean column per rule (``True``
means the station breaks it, null means the rule cannot be checked there because a number is
missing), and counts per rule.

Rules (names are stable; docs/protocol-checks.md):

* ``votes_sum_to_valid``: the candidate columns sum to ``valid``.
* ``valid_plus_invalid_equals_ballots_in_boxes``: ``valid + invalid`` equals the ballots found
  in the boxes (stationary + mobile where the source has them, else ``ballots_cast``).
* ``ballots_in_boxes_within_issued``: ballots found in boxes do not exceed ballots issued
  (early + on the day + outside).
* ``turnout_at_most_100``: ``ballots_cast <= registered``.
* ``no_negative_counts``: no count is negative.
* ``unique_station_id``: no other station has the same ``station_id``.
* ``derived_matches_source``: where a mapping both reads a count from the source and derives it
  by a formula (``[derived]`` of a mapping file), the two agree. The source value is kept; the
  importer records each disagreeing station in ``meta.definitions["derived_check:<column>"]``
  (:func:`derived_check_text`), which this rule reads back. Not checked on elections without
  such a record, nor where the source value or the formula's value is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from pollwatch._notebook import html_section, html_table
from pollwatch.results.model import COUNT_COLUMNS, Election

__all__ = [
    "DERIVED_CHECK_PREFIX",
    "RULES",
    "QualityReport",
    "RuleCount",
    "check_protocols",
    "derived_check_text",
]

RULES: dict[str, str] = {
    "votes_sum_to_valid": "candidate votes sum to the valid ballots",
    "valid_plus_invalid_equals_ballots_in_boxes": "valid + invalid = ballots found in the boxes",
    "ballots_in_boxes_within_issued": "ballots in the boxes <= ballots issued",
    "turnout_at_most_100": "ballots cast <= registered voters (turnout <= 100%)",
    "no_negative_counts": "no count is negative",
    "unique_station_id": "station id appears once",
    "derived_matches_source": "a derived column agrees with the source's own",
}

#: ``meta.definitions`` key prefix of the record of a derived column checked against the source
DERIVED_CHECK_PREFIX = "derived_check:"
_STATION_IDS = "; station ids: "


@dataclass(frozen=True)
class RuleCount:
    """How many stations a rule was checked on and how many broke it."""

    rule: str
    description: str
    checked: int
    failed: int


@dataclass(frozen=True)
class QualityReport:
    """Per-station findings and counts per rule for one election."""

    election_id: str
    table: pl.DataFrame
    counts: tuple[RuleCount, ...]

    @property
    def failing_stations(self) -> pl.DataFrame:
        """Rows of :attr:`table` that break at least one rule."""
        return self.table.filter(pl.col("rules_failed") > 0)

    def count(self, rule: str) -> RuleCount:
        return next(c for c in self.counts if c.rule == rule)

    def to_dict(self) -> dict[str, Any]:
        return {
            "election_id": self.election_id,
            "stations": self.table.height,
            "rules": [
                {
                    "rule": c.rule,
                    "description": c.description,
                    "checked": c.checked,
                    "failed": c.failed,
                }
                for c in self.counts
            ],
        }

    def __rich__(self) -> Any:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"Protocol checks: {escape(self.election_id)}")
        table.add_column("rule")
        table.add_column("checked", justify="right")
        table.add_column("failed", justify="right")
        for c in self.counts:
            style = "red" if c.failed else ""
            table.add_row(
                c.description,
                f"{c.checked:,}",
                f"[{style}]{c.failed:,}[/]" if style else f"{c.failed:,}",
            )
        return table

    def _repr_html_(self) -> str:
        """The rules as a table: what each checks, on how many stations, how many break it."""
        rows = [(c.rule, c.description, f"{c.checked:,}", f"{c.failed:,}") for c in self.counts]
        failing = self.failing_stations.height
        return html_section(
            [
                html_table(
                    rows,
                    header=("rule", "what it checks", "checked", "failed"),
                    caption=f"Protocol checks: {self.election_id}",
                    numeric=(2, 3),
                )
            ],
            lines=[
                f"{failing:,} of {self.table.height:,} stations break at least one rule "
                "(checked: stations where every number the rule needs is known)"
            ],
        )


def _sum_or_null(columns: list[str]) -> pl.Expr:
    """Sum of columns, null if any is null."""
    expr: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for name in columns:
        expr = expr + pl.col(name)
    return expr


def derived_check_text(
    target: str,
    formula: str,
    source: str,
    *,
    checked: int,
    disagree: Sequence[str],
    not_computable: Sequence[str] = (),
) -> str:
    """The ``derived_check:<target>`` definition: the finding in words, then the station ids.

    ``checked`` stations have both the source value and the formula's value; ``disagree`` are
    the ids where they differ, ``not_computable`` those where the source has a value and the
    formula has none (a part is missing). The ids follow as JSON, read back by
    :func:`check_protocols`.
    """
    text = (
        f"the source's {target} ({source}) is kept; the mapping's formula {target} = {formula} "
        f"disagrees with it at {len(disagree)} of {checked} stations where both are known"
    )
    if not_computable:
        text += (
            f", and cannot be computed at {len(not_computable)} stations where the source "
            "has a value"
        )
    ids = {"disagree": list(disagree), "not_computable": list(not_computable)}
    return text + _STATION_IDS + json.dumps(ids, ensure_ascii=False)


def _derived_check_ids(text: str) -> tuple[list[str], list[str]] | None:
    """(disagreeing ids, not computable ids) of a :func:`derived_check_text`, or None."""
    start = text.find(_STATION_IDS)
    while start != -1:
        try:
            data = json.loads(text[start + len(_STATION_IDS) :])
        except ValueError:  # the marker was part of a column name: try the next one
            start = text.find(_STATION_IDS, start + 1)
            continue
        if not isinstance(data, dict):
            return None
        return (
            [str(i) for i in data.get("disagree", [])],
            [str(i) for i in data.get("not_computable", [])],
        )
    return None


def _derived_matches_source(election: Election) -> pl.Expr:
    """True where a derived check disagrees, null where none could be checked."""
    parts: list[pl.Expr] = []
    station = pl.col("station_id")
    for key, text in election.meta.definitions.items():
        target = key[len(DERIVED_CHECK_PREFIX) :]
        if not key.startswith(DERIVED_CHECK_PREFIX) or target not in election.stations.columns:
            continue
        ids = _derived_check_ids(str(text))
        if ids is None:
            continue
        disagree, not_computable = ids
        parts.append(
            pl.when(station.is_in(disagree))
            .then(pl.lit(True))
            .when(pl.col(target).is_null() | station.is_in(not_computable))
            .then(pl.lit(None, dtype=pl.Boolean))
            .otherwise(pl.lit(False))
        )
    if not parts:
        return pl.lit(None, dtype=pl.Boolean)
    failed = pl.any_horizontal([p.fill_null(False) for p in parts])
    checked = pl.any_horizontal([p.is_not_null() for p in parts])
    return (
        pl.when(failed)
        .then(pl.lit(True))
        .when(checked)
        .then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def check_protocols(election: Election) -> QualityReport:
    """Check every station's protocol arithmetic; see the module docstring for the rules."""
    frame = election.stations
    candidates = election.candidate_columns
    boxes = (
        pl.when(
            pl.col("ballots_in_stationary_boxes").is_not_null()
            | pl.col("ballots_in_mobile_boxes").is_not_null()
        )
        .then(
            pl.col("ballots_in_stationary_boxes").fill_null(0)
            + pl.col("ballots_in_mobile_boxes").fill_null(0)
        )
        .otherwise(pl.col("ballots_cast"))
    )
    issued_parts = ["ballots_issued_early", "ballots_issued_on_day", "ballots_issued_outside"]
    issued = pl.when(pl.any_horizontal([pl.col(c).is_not_null() for c in issued_parts])).then(
        pl.sum_horizontal([pl.col(c).fill_null(0) for c in issued_parts])
    )
    all_counts = [*COUNT_COLUMNS, *candidates]
    rules: dict[str, pl.Expr] = {
        "votes_sum_to_valid": (
            (_sum_or_null(candidates) != pl.col("valid")) if candidates else pl.lit(None)
        ),
        "valid_plus_invalid_equals_ballots_in_boxes": (
            pl.col("valid") + pl.col("invalid") != boxes
        ),
        "ballots_in_boxes_within_issued": boxes > issued,
        "turnout_at_most_100": pl.col("ballots_cast") > pl.col("registered"),
        "no_negative_counts": pl.any_horizontal(
            [(pl.col(c) < 0).fill_null(False) for c in all_counts]
        ),
        "unique_station_id": pl.col("station_id").is_duplicated(),
        "derived_matches_source": _derived_matches_source(election),
    }
    table = frame.select(
        "station_id",
        *[expr.cast(pl.Boolean).alias(name) for name, expr in rules.items()],
    ).with_columns(
        pl.sum_horizontal([pl.col(r).fill_null(False).cast(pl.Int32) for r in rules]).alias(
            "rules_failed"
        )
    )
    stats = table.select(
        *[pl.col(r).is_not_null().sum().alias(f"{r}:checked") for r in rules],
        *[pl.col(r).fill_null(False).sum().alias(f"{r}:failed") for r in rules],
    ).row(0, named=True)
    counts = tuple(
        RuleCount(
            rule=r,
            description=RULES[r],
            checked=int(stats[f"{r}:checked"]),
            failed=int(stats[f"{r}:failed"]),
        )
        for r in rules
    )
    return QualityReport(election_id=election.id, table=table, counts=counts)


def rule_descriptions() -> Mapping[str, str]:
    """Rule name -> one-line description."""
    return dict(RULES)
