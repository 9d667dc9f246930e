"""Likely special stations: small stations with near-complete turnout, recognised by rule.

Hospitals, pre-trial detention centres, sanatoria, ships, railway stations and airports get
polling stations of their own. Their voter lists are drawn up on the day from the people who
are there, so almost everyone on the list votes: a few hundred registered and a turnout near
100 % is what such a station looks like when nothing is wrong. Sources seldom mark them (the
Russian CEC tables call every station "ordinary"), and a ranking of stations by turnout then
puts them first. This module recognises them by rule, at analysis time, without changing the
source's ``station_kind``; the triage leaves them out of its list unless asked, and the station
page shows the reason.

Definition. A station the source marks as a special kind (``station_kind`` other than
``"ordinary"`` or unknown: hospital, prison, ship, abroad, ...) is special by the source's word.
A station whose ``station_kind`` is ``"ordinary"`` (or unknown) is a *likely special station*
when either

* **numbering**: its election has a :class:`NumberingRule` and its number (``station_name``
  read as an integer) lies in the rule's range, in the rule's region; or
* **size and turnout**: ``registered < max_registered`` (1,000), turnout
  ``ballots_cast / registered >= min_turnout`` (0.95), and ``registered`` below
  ``size_ratio`` (0.25) of the median registered of the stations of its district (its region
  where it has no district; the whole election where it has neither). The last condition keeps
  out villages: a small rural station among small rural stations is an ordinary station, while
  a station of 200 voters among stations of 2,000 is one set up for an institution.

The rule says "likely": it is a reason to read a station's high turnout differently, never a
verdict. A special station can be manipulated too; ``Triage(include_special=True)`` lists them.

Numbering rules (verified on the mirror's ``russia_cec/2018.csv.zip``, the data of Kobak,
Shpilkin & Pshenichnikov, github.com/dkobak/elections): in Moscow, 2018, stations 1-3449 are
ordinary (median 2,200+ registered, median turnout 59 %); stations 3601-3796 (167 stations,
median 190-262 registered, median turnout 97 %, many with most ballots in mobile boxes, i.e.
patients in bed) are the temporary stations of hospitals, detention centres and similar
institutions; stations 4001-4008 are at railway stations and airports (4007 in Vnukovo). The
source's README (``SOURCE_README_data.md``) does not mark them; Moscow's city commission numbers
temporary stations from 3600 up. Numbering differs between elections, so a rule names its
election (country and date).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pollwatch.errors import PollwatchError
from pollwatch.results.model import Election

__all__ = [
    "NUMBERING_RULES",
    "NumberingRule",
    "SpecialStations",
    "special_stations",
]


@dataclass(frozen=True)
class NumberingRule:
    """Station numbers ``low..high`` in ``region`` of the election (country, date) are special."""

    country: str
    date: str
    region: str
    low: int
    high: int
    reason: str
    source: str


NUMBERING_RULES: tuple[NumberingRule, ...] = (
    NumberingRule(
        country="RU",
        date="2018-03-18",
        region="город Москва",
        low=3600,
        high=3999,
        reason="Moscow 2018 station number 3600-3999 (temporary stations of hospitals, "
        "detention centres and other institutions)",
        source="russia_cec/2018.csv.zip: stations 3601-3796 median 190-262 registered, "
        "median turnout 97 %; ordinary stations 1-3449 median 2,200+ registered",
    ),
    NumberingRule(
        country="RU",
        date="2018-03-18",
        region="город Москва",
        low=4000,
        high=4099,
        reason="Moscow 2018 station number 4000-4099 (temporary stations at railway stations "
        "and airports)",
        source="russia_cec/2018.csv.zip: stations 4001-4008, in the districts of the railway "
        "terminals and Vnukovo",
    ),
)


@dataclass(frozen=True)
class SpecialStations:
    """The likely special stations of one election and why (see the module docstring).

    Attributes:
        election_id: the election.
        table: one row per likely special station: ``station_id``, ``reason``.
        parameters: the thresholds used.
        definition: the rule in words.
    """

    election_id: str
    table: pl.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)
    definition: str = ""

    def ids(self) -> frozenset[str]:
        return frozenset(self.table["station_id"].to_list())

    def reason(self, station_id: str) -> str | None:
        """Why ``station_id`` is likely special, or None when it is not."""
        rows = self.table.filter(pl.col("station_id") == station_id)["reason"]
        return str(rows[0]) if rows.len() else None

    def reasons(self) -> dict[str, str]:
        return dict(zip(self.table["station_id"], self.table["reason"], strict=True))

    def __len__(self) -> int:
        return self.table.height

    def __contains__(self, station_id: object) -> bool:
        return station_id in self.ids()

    def to_dict(self) -> dict[str, Any]:
        return {
            "election_id": self.election_id,
            "parameters": dict(self.parameters),
            "definition": self.definition,
            "stations": self.table.to_dicts(),
        }


def special_stations(
    election: Election,
    *,
    max_registered: int = 1000,
    min_turnout: float = 0.95,
    size_ratio: float = 0.25,
    rules: tuple[NumberingRule, ...] = NUMBERING_RULES,
) -> SpecialStations:
    """The likely special stations of ``election``, by numbering or by size and turnout.

    See the module docstring for the definition. Raises :class:`PollwatchError` for thresholds
    out of range.
    """
    if not (isinstance(max_registered, int) and max_registered >= 1):
        raise PollwatchError(
            f"special stations: max_registered must be a whole number >= 1, got {max_registered!r}",
            hint="1000 keeps ordinary urban stations (median about 2,000 registered) out",
        )
    if not (isinstance(min_turnout, int | float) and 0 < min_turnout <= 1):
        raise PollwatchError(
            f"special stations: min_turnout must lie in (0, 1], got {min_turnout!r}",
            hint="0.95: lists drawn up on the day give a turnout near 100 %",
        )
    if not (isinstance(size_ratio, int | float) and 0 < size_ratio <= 1):
        raise PollwatchError(
            f"special stations: size_ratio must lie in (0, 1], got {size_ratio!r}",
            hint="0.25: a quarter of the district's median station",
        )
    frame = election.stations
    ordinary = pl.col("station_kind").is_null() | (pl.col("station_kind") == "ordinary")
    unit = pl.concat_str(
        [pl.col("region").fill_null("(none)"), pl.col("district").fill_null("(none)")],
        separator="|",
    )
    median_size = pl.col("registered").median().over(unit)
    turnout = pl.col("ballots_cast") / pl.col("registered")
    small = (
        (pl.col("registered") > 0)
        & (pl.col("registered") < max_registered)
        & (turnout >= min_turnout)
        & (pl.col("registered") < size_ratio * median_size)
    ).fill_null(False)
    size_reason = (
        pl.lit("small station with near-complete turnout: ")
        + pl.col("registered").cast(pl.String)
        + pl.lit(" registered (district median ")
        + median_size.round(0).cast(pl.Int64).cast(pl.String)
        + pl.lit("), turnout ")
        + (turnout * 100).round(1).cast(pl.String)
        + pl.lit(" %")
    )
    number = pl.col("station_name").str.strip_chars().cast(pl.Int64, strict=False)
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for rule in reversed(rules):
        if rule.country != election.meta.country or rule.date != election.meta.date:
            continue
        hit = (pl.col("region") == rule.region) & number.is_between(rule.low, rule.high)
        reason = pl.when(hit.fill_null(False)).then(pl.lit(rule.reason)).otherwise(reason)
    reason = pl.when(reason.is_null() & small).then(size_reason).otherwise(reason)
    reason = (
        pl.when(ordinary.fill_null(True))
        .then(reason)
        .otherwise(pl.lit("the source marks it ") + pl.col("station_kind"))
    )
    table = (
        frame.with_columns(reason.alias("reason"))
        .filter(pl.col("reason").is_not_null())
        .select("station_id", "reason")
        .sort("station_id")
    )
    return SpecialStations(
        election_id=election.id,
        table=table,
        parameters={
            "max_registered": max_registered,
            "min_turnout": min_turnout,
            "size_ratio": size_ratio,
        },
        definition=(
            "station the source marks as a special kind, or ordinary station whose number "
            "lies in a special range of its election (numbering rules), or with registered < "
            f"{max_registered:,}, turnout >= {100 * min_turnout:g} % and registered < "
            f"{size_ratio:g} x its district's median"
        ),
    )
