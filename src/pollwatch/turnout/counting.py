"""Which stations a turnout figure counts, and the turnout of a group of them.

Turnout is the data model's one definition, ``ballots_cast / registered``
(:meth:`pollwatch.results.model.Election.turnout_expr`), summed over the stations counted:
``Σ ballots_cast / Σ registered``. Counted are the stations that report both numbers with
``registered > 0``, that are not pseudo-stations (e-voting, aggregates, catch-alls), not
cancelled by the commission and not unpublished. Stations abroad are left out by default: their
lists are made on the day, so their turnout is about 100 % by construction and says nothing
about the country; ``abroad=True`` counts them. What was left out is counted in
:class:`Exclusions`, and every result states it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from pollwatch.forensics.integer_peaks import hits_whole_percent
from pollwatch.results.model import Election

__all__ = ["DEFINITIONS", "Exclusions", "counted_stations", "group_turnout"]

#: stations above this turnout are counted in ``above_95_share``
HIGH_TURNOUT = 0.95

DEFINITIONS: dict[str, str] = {
    "turnout": "sum of ballots_cast / sum of registered over the stations counted (the data "
    "model's ballots_cast / registered, ballots found in all boxes)",
    "stations counted": "registered > 0 and ballots_cast reported; not pseudo-stations "
    "(e-voting, aggregates), not cancelled, not unpublished; stations abroad left out unless "
    "asked for (their lists are made on the day)",
    "whole percent": "share of counted stations whose turnout lies within 0.05 points of a whole "
    "percent, at most 99 % (Kobak, Shpilkin & Pshenichnikov 2016; "
    "pollwatch.forensics.integer_peaks)",
    "above 95 %": "share of counted stations with turnout above 95 %",
}


@dataclass(frozen=True)
class Exclusions:
    """Stations left out of a turnout figure, by reason (a station counts under its first)."""

    pseudo_stations: int = 0
    cancelled: int = 0
    unpublished: int = 0
    no_numbers: int = 0
    abroad: int = 0
    abroad_registered: int = 0
    abroad_ballots_cast: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def words(self) -> str:
        parts = [
            f"{n:,} {what}"
            for n, what in (
                (self.pseudo_stations, "pseudo-stations"),
                (self.cancelled, "cancelled"),
                (self.unpublished, "unpublished"),
                (self.no_numbers, "without registered voters or ballots"),
                (self.abroad, "abroad"),
            )
            if n
        ]
        return "left out: " + (", ".join(parts) if parts else "none")


def counted_stations(
    election: Election, *, abroad: bool = False
) -> tuple[pl.DataFrame, Exclusions]:
    """The stations a turnout figure counts (module docstring), and what was left out."""
    frame = election.stations
    pseudo = pl.col("is_pseudo_station") | pl.col("is_evoting")
    cancelled = ~pseudo & pl.col("is_cancelled")
    unpublished = ~pseudo & ~pl.col("is_cancelled") & pl.col("is_unpublished")
    usable = ~pseudo & ~pl.col("is_cancelled") & ~pl.col("is_unpublished")
    numbers = (pl.col("registered") > 0).fill_null(False) & pl.col("ballots_cast").is_not_null()
    no_numbers = usable & ~numbers
    away = usable & numbers & pl.col("is_abroad")
    counts = frame.select(
        pseudo.sum().alias("pseudo"),
        cancelled.sum().alias("cancelled"),
        unpublished.sum().alias("unpublished"),
        no_numbers.sum().alias("no_numbers"),
        away.sum().alias("abroad"),
        pl.col("registered").filter(away).sum().alias("abroad_registered"),
        pl.col("ballots_cast").filter(away).sum().alias("abroad_ballots_cast"),
    ).row(0, named=True)
    keep = usable & numbers if abroad else usable & numbers & ~pl.col("is_abroad")
    exclusions = Exclusions(
        pseudo_stations=int(counts["pseudo"] or 0),
        cancelled=int(counts["cancelled"] or 0),
        unpublished=int(counts["unpublished"] or 0),
        no_numbers=int(counts["no_numbers"] or 0),
        abroad=0 if abroad else int(counts["abroad"] or 0),
        abroad_registered=0 if abroad else int(counts["abroad_registered"] or 0),
        abroad_ballots_cast=0 if abroad else int(counts["abroad_ballots_cast"] or 0),
    )
    return frame.filter(keep), exclusions


def group_turnout(frame: pl.DataFrame, by: list[str] | None = None) -> pl.DataFrame:
    """Stations, registered, ballots_cast, turnout, whole-percent and above-95 % shares per group.

    ``frame`` holds counted stations (:func:`counted_stations`); without ``by``, one row.
    """
    hits = hits_whole_percent(
        frame["ballots_cast"].to_numpy().astype(np.float64),
        frame["registered"].to_numpy().astype(np.float64),
    )
    station_turnout = frame["ballots_cast"] / frame["registered"]
    marked = frame.with_columns(
        pl.Series("whole", hits & (station_turnout <= 0.99).to_numpy()),
        (station_turnout > HIGH_TURNOUT).alias("high"),
    )
    aggregations = [
        pl.len().alias("stations"),
        pl.col("registered").sum().alias("registered"),
        pl.col("ballots_cast").sum().alias("ballots_cast"),
        pl.col("whole").mean().alias("whole_percent_share"),
        pl.col("high").mean().alias("above_95_share"),
    ]
    if by:
        grouped = marked.group_by(by, maintain_order=True).agg(aggregations).sort(by)
    else:
        grouped = marked.select(aggregations)
    return grouped.with_columns(
        pl.when(pl.col("registered") > 0)
        .then(pl.col("ballots_cast") / pl.col("registered"))
        .otherwise(None)
        .alias("turnout")
    )
