"""A series of elections: turnout nationally, per region and per linked station, over time.

:func:`turnout_series` takes elections (the same country, any order: they are sorted by date)
and returns a :class:`TurnoutSeries`:

* per election, the turnout of the stations counted (:mod:`pollwatch.turnout.counting`), the
  share of stations at a whole-percent turnout and the share above 95 %;
* per region and election, the same, regions linked by normalised name after the
  :class:`~pollwatch.turnout.regions.RegionMapping` (the shipped one for the country unless
  another is given);
* per pair of consecutive elections, the station link rate: stations are linked by a key, the
  station id (``key="station_id"``) or, where a region's station numbers are stable but the
  ids carry names of lower commissions that change (Russian ids are ``region|tik|uik``), the
  region and the last part of the id (``key="region_number"``, the default for the russia-cec
  importer). A key held by two stations of one election links neither. The rate is
  ``linked / stations in the later election``, overall and per region, reported beside the
  exact-id rate, never assumed.

Turnout of a linked station over time is :meth:`TurnoutSeries.station_turnout`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any, Literal

import polars as pl

from pollwatch.errors import PollwatchError
from pollwatch.results.model import Election
from pollwatch.turnout.counting import DEFINITIONS, Exclusions, counted_stations, group_turnout
from pollwatch.turnout.regions import RegionMapping, shipped_region_mapping

__all__ = [
    "ElectionTurnout",
    "RegionTurnout",
    "StationLink",
    "TurnoutSeries",
    "turnout_series",
]

LinkKey = Literal["auto", "station_id", "region_number"]
#: importers whose station ids end in a station number unique within the region
_NUMBERED = {"russia-cec"}


@dataclass(frozen=True)
class ElectionTurnout:
    """One election of the series: the turnout of its counted stations."""

    election_id: str
    date: str
    kind: str
    stations: int
    registered: int
    ballots_cast: int
    turnout: float | None
    whole_percent_share: float | None
    above_95_share: float | None
    excluded: Exclusions
    simulation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["excluded"] = self.excluded.to_dict()
        return data


@dataclass(frozen=True)
class RegionTurnout:
    """One region in one election (``region`` is the linked name; ``names`` the source ones)."""

    region: str
    election_id: str
    stations: int
    registered: int
    ballots_cast: int
    turnout: float | None
    whole_percent_share: float | None
    above_95_share: float | None
    names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["names"] = list(self.names)
        return data


@dataclass(frozen=True)
class StationLink:
    """How many stations of ``later`` are found in ``earlier`` (by ``key``)."""

    earlier: str
    later: str
    key: str
    stations_later: int
    linked: int
    rate: float | None
    exact_id_rate: float | None
    regions_later: int
    regions_linked: int
    region_rates: Mapping[str, float | None] = field(default_factory=dict)
    median_turnout_change: float | None = None

    @property
    def region_rate(self) -> float | None:
        return self.regions_linked / self.regions_later if self.regions_later else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["region_rates"] = dict(self.region_rates)
        data["region_rate"] = self.region_rate
        return data


@dataclass(frozen=True, eq=False)
class TurnoutSeries:
    """Turnout over a series of elections (see the module docstring)."""

    elections: tuple[ElectionTurnout, ...]
    regions: tuple[RegionTurnout, ...]
    links: tuple[StationLink, ...]
    key: str
    mapping: RegionMapping
    abroad: bool
    definitions: Mapping[str, str]
    #: counted stations in long form: election_id, station_key, region, turnout
    stations: pl.DataFrame = field(repr=False, default_factory=pl.DataFrame)

    @property
    def election_ids(self) -> list[str]:
        return [e.election_id for e in self.elections]

    def region_names(self) -> list[str]:
        return sorted({r.region for r in self.regions})

    def region(self, name: str) -> list[RegionTurnout]:
        """The series of one region (linked name, or any source name of it)."""
        key = self.mapping.canonical(name)
        found = [r for r in self.regions if self.mapping.canonical(r.region) == key]
        if not found:
            raise PollwatchError(
                f"no region {name!r} in the series",
                hint=f"regions: {', '.join(self.region_names()[:8])}, ...",
            )
        return found

    def station_turnout(self, station_key: str) -> dict[str, float | None]:
        """A linked station's turnout in each election of the series (None where absent)."""
        rows = self.stations.filter(pl.col("station_key") == station_key)
        found = dict(zip(rows["election_id"].to_list(), rows["turnout"].to_list(), strict=True))
        return {e: found.get(e) for e in self.election_ids}

    def linked_in_all(self) -> int:
        """How many station keys are counted in every election of the series."""
        if not self.elections or self.stations.is_empty():
            return 0
        counts = self.stations.group_by("station_key").len()
        return int((counts["len"] == len(self.elections)).sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "elections": [e.to_dict() for e in self.elections],
            "regions": [r.to_dict() for r in self.regions],
            "links": [link.to_dict() for link in self.links],
            "linked_in_all": self.linked_in_all(),
            "key": self.key,
            "mapping": self.mapping.to_dict(),
            "abroad": self.abroad,
            "definitions": dict(self.definitions),
        }

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title="Turnout over the series", title_justify="left")
        for name, justify in (
            ("election", "left"),
            ("stations", "right"),
            ("registered", "right"),
            ("turnout", "right"),
            ("whole %", "right"),
            (">95 %", "right"),
            ("linked", "right"),
        ):
            table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        rates = {link.later: link.rate for link in self.links}
        for e in self.elections:
            table.add_row(
                e.election_id,
                f"{e.stations:,}",
                f"{e.registered:,}",
                _pct(e.turnout),
                _pct(e.whole_percent_share),
                _pct(e.above_95_share),
                _pct(rates.get(e.election_id), 0) if e.election_id in rates else "",
            )
        notes = [
            Text(
                f"stations linked by {self.key}; linked = share of an election's stations "
                "found in the one before",
                style="dim",
            ),
            Text(f"turnout: {self.definitions['turnout']}", style="dim"),
            Text(f"counted: {self.definitions['stations counted']}", style="dim"),
        ]
        for e in self.elections:
            if e.simulation:
                notes.append(Text(f"{e.election_id}: {e.simulation}", style="bold red"))
        return Group(table, *notes)


def _pct(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{100 * value:.{digits}f}%"


def _key_of(elections: Sequence[Election], key: LinkKey) -> str:
    if key != "auto":
        return key
    numbered = all(e.meta.importer in _NUMBERED for e in elections)
    return "region_number" if numbered else "station_id"


def turnout_series(
    elections: Sequence[Election],
    *,
    mapping: RegionMapping | None = None,
    key: LinkKey = "auto",
    abroad: bool = False,
) -> TurnoutSeries:
    """The turnout series of ``elections`` (sorted by date; see the module docstring).

    ``mapping`` defaults to the one shipped for the elections' country (none: names only);
    ``abroad`` counts stations abroad (left out by default, and stated).
    """
    if not elections:
        raise PollwatchError("a turnout series needs at least one election", hint="give ids")
    ids = [e.id for e in elections]
    if len(set(ids)) != len(ids):
        raise PollwatchError(f"an election is given twice in the series: {ids}")
    ordered = sorted(elections, key=lambda e: (e.meta.date, e.id))
    if mapping is None:
        mapping = shipped_region_mapping(ordered[-1].meta.country) or RegionMapping()
    link_key = _key_of(ordered, key)
    summaries: list[ElectionTurnout] = []
    regions: list[RegionTurnout] = []
    frames: list[pl.DataFrame] = []
    for election in ordered:
        counted, excluded = counted_stations(election, abroad=abroad)
        counted = counted.with_columns(pl.col("region").fill_null("(none)"))
        names = counted["region"].unique().to_list()
        canonical = {n: mapping.canonical(n) for n in names}
        counted = counted.with_columns(
            pl.col("region").replace_strict(canonical, return_dtype=pl.String).alias("link_region")
        )
        whole = group_turnout(counted).row(0, named=True)
        summaries.append(
            ElectionTurnout(
                election_id=election.id,
                date=election.meta.date,
                kind=election.meta.kind,
                stations=int(whole["stations"]),
                registered=int(whole["registered"] or 0),
                ballots_cast=int(whole["ballots_cast"] or 0),
                turnout=whole["turnout"],
                whole_percent_share=whole["whole_percent_share"],
                above_95_share=whole["above_95_share"],
                excluded=excluded,
                simulation=election.meta.simulation_notice,
            )
        )
        sources: dict[str, list[str]] = {}
        for name, link in canonical.items():
            sources.setdefault(link, []).append(name)
        for row in group_turnout(counted, ["link_region"]).iter_rows(named=True):
            link = row["link_region"]
            members = sorted(sources[link])
            shown = mapping.target(members[0]) or _display(members)
            regions.append(
                RegionTurnout(
                    region=shown,
                    election_id=election.id,
                    stations=int(row["stations"]),
                    registered=int(row["registered"] or 0),
                    ballots_cast=int(row["ballots_cast"] or 0),
                    turnout=row["turnout"],
                    whole_percent_share=row["whole_percent_share"],
                    above_95_share=row["above_95_share"],
                    names=tuple(members),
                )
            )
        frames.append(_keyed(counted, election.id, link_key))
    regions = _one_display_name(regions, mapping)
    links = tuple(_link(a, b, link_key) for a, b in pairwise(frames))
    definitions = {
        **DEFINITIONS,
        "regions": f"linked by normalised name after the mapping {mapping.title!r}",
        "station link": {
            "station_id": "stations linked by their station_id",
            "region_number": "stations linked by region (normalised, mapped) and station number "
            "(the last part of the id), since the ids' commission names change between elections",
        }[link_key],
        "link rate": "stations of an election found in the previous one / its stations",
    }
    stations = (
        pl.concat(frames).select("election_id", "station_key", "region", "turnout")
        if frames
        else pl.DataFrame()
    )
    return TurnoutSeries(
        elections=tuple(summaries),
        regions=tuple(regions),
        links=links,
        key=link_key,
        mapping=mapping,
        abroad=abroad,
        definitions=definitions,
        stations=stations,
    )


def _display(members: list[str]) -> str:
    return members[0].strip()


def _one_display_name(regions: list[RegionTurnout], mapping: RegionMapping) -> list[RegionTurnout]:
    """Each linked region under one name: its mapping target, else its name in the latest
    election ("Город Москва" in 2004-2012, "город Москва" since 2016: shown as the latter)."""
    latest: dict[str, str] = {}
    for r in regions:
        latest[mapping.canonical(r.region)] = r.region
    return [
        RegionTurnout(**{**r.__dict__, "region": latest[mapping.canonical(r.region)]})
        for r in regions
    ]


def _keyed(counted: pl.DataFrame, election_id: str, key: str) -> pl.DataFrame:
    if key == "station_id":
        station_key = pl.col("station_id")
    else:
        station_key = (
            pl.col("link_region") + pl.lit("|") + pl.col("station_id").str.split("|").list.last()
        )
    return counted.select(
        pl.lit(election_id).alias("election_id"),
        station_key.alias("station_key"),
        pl.col("station_id"),
        pl.col("link_region").alias("region"),
        (pl.col("ballots_cast") / pl.col("registered")).alias("turnout"),
    )


def _unique_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows whose key occurs once (a key held by two stations links neither)."""
    return frame.filter(pl.col("station_key").is_unique())


def _link(earlier: pl.DataFrame, later: pl.DataFrame, key: str) -> StationLink:
    joined = later.join(
        _unique_keys(earlier).select("station_key", pl.col("turnout").alias("before")),
        on="station_key",
        how="left",
    ).with_columns(
        pl.when(pl.col("station_key").is_unique()).then(pl.col("before")).alias("before")
    )
    linked_mask = joined["before"].is_not_null()
    per_region = (
        joined.group_by("region")
        .agg(pl.len().alias("n"), pl.col("before").is_not_null().sum().alias("linked"))
        .sort("region")
    )
    earlier_regions = set(earlier["region"].unique().to_list())
    later_regions = set(later["region"].unique().to_list())
    exact = int(later["station_id"].is_in(earlier["station_id"].implode()).sum())
    change = (joined["turnout"] - joined["before"]).drop_nulls()
    return StationLink(
        earlier=str(earlier["election_id"][0]) if earlier.height else "",
        later=str(later["election_id"][0]) if later.height else "",
        key=key,
        stations_later=later.height,
        linked=int(linked_mask.sum()),
        rate=float(linked_mask.mean()) if later.height else None,  # type: ignore[arg-type]
        exact_id_rate=exact / later.height if later.height else None,
        regions_later=len(later_regions),
        regions_linked=len(later_regions & earlier_regions),
        region_rates={
            r: (linked / n if n else None)
            for r, n, linked in per_region.select("region", "n", "linked").iter_rows()
        },
        median_turnout_change=float(change.median()) if change.len() else None,  # type: ignore[arg-type]
    )
