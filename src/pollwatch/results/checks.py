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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from pollwatch.results.model import COUNT_COLUMNS, Election

__all__ = ["RULES", "QualityReport", "RuleCount", "check_protocols"]

RULES: dict[str, str] = {
    "votes_sum_to_valid": "candidate votes sum to the valid ballots",
    "valid_plus_invalid_equals_ballots_in_boxes": "valid + invalid = ballots found in the boxes",
    "ballots_in_boxes_within_issued": "ballots in the boxes <= ballots issued",
    "turnout_at_most_100": "ballots cast <= registered voters (turnout <= 100%)",
    "no_negative_counts": "no count is negative",
    "unique_station_id": "station id appears once",
}


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
        from rich.table import Table

        table = Table(title=f"Protocol checks: {self.election_id}")
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


def _sum_or_null(columns: list[str]) -> pl.Expr:
    """Sum of columns, null if any is null."""
    expr: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for name in columns:
        expr = expr + pl.col(name)
    return expr


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
