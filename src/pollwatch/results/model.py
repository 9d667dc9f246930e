"""The election data model: metadata plus one row per polling station, defined once.

An :class:`Election` is an :class:`ElectionMeta` (who, what, when, where from, which definitions)
and a polars ``DataFrame`` ``stations`` with the columns below. Importers build it through
:func:`make_election`, which adds absent optional columns as nulls, coerces types and checks the
invariants, so every election in pollwatch has exactly this shape.

Columns of ``stations`` (see ``docs/data-model.md``):

============================  ========  ===========================================================
column                        type      meaning
============================  ========  ===========================================================
station_id                    str       stable identifier, unique within the election
region                        str       top administrative level (Russian subject, US state, ...)
constituency                  str       electoral district where the election has one (OIK, OKW)
district                      str       next level (territorial commission TIK, county, powiat)
municipality                  str       lower level (town, gmina, Gemeinde, sub-county)
station_name                  str       the station's own label, number or address
station_kind                  str       ordinary, hospital, care_home, prison, abroad, ship,
                                        dormitory, postal, evoting, catch_all, special, unknown
registered                    Int64     voters on the station's list at the close of voting
ballots_received              Int64     ballot papers the station received
ballots_issued_early          Int64     ballots issued to early voters
ballots_issued_on_day         Int64     ballots issued inside the station on election day
ballots_issued_outside        Int64     ballots issued outside the station (mobile / home voting)
ballots_cancelled             Int64     unused ballots cancelled at the count
ballots_in_mobile_boxes       Int64     ballots found in mobile (portable) boxes
ballots_in_stationary_boxes   Int64     ballots found in stationary boxes
ballots_cast                  Int64     ballots found in all boxes (the turnout numerator; its
                                        source definition is in ``meta.definitions``)
valid                         Int64     valid ballots
invalid                       Int64     invalid ballots
<candidate columns>           Int64     votes per candidate or party (see ``meta.candidates``)
is_pseudo_station             bool      not a physical station (aggregates, e-voting, catch-alls)
is_evoting                    bool      remote electronic voting
is_abroad                     bool      station outside the country
is_cancelled                  bool      results later cancelled by the commission
is_unpublished                bool      the source row has no numbers (nothing was published)
============================  ========  ===========================================================

Derived quantities, one definition each:

* ``turnout = ballots_cast / registered`` (null where registered is null or 0);
* ``vote_share(c) = votes(c) / valid`` (null where valid is null or 0);
* the election's ``leader`` is the candidate with the most votes in the whole election
  (ties: the first in ``meta.candidates``); ``leader_share`` is ``vote_share(leader)``.

Simulated elections (``kind = "simulated"``, importer ``simulation``, or any ``injection:*``
definition: numbers changed by a manipulation injector) are not real results; every rendering
of one (CLI, dashboard, report, API) shows :attr:`ElectionMeta.simulation_notice`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import polars as pl

from pollwatch._notebook import (
    VEGA_LITE_SCHEMA,
    display_bundle,
    html_section,
    html_table,
    mimebundle,
    plain_text,
)
from pollwatch.errors import ColumnError, CountError, InputError
from pollwatch.results.quarantine import Quarantine

__all__ = [
    "COUNT_COLUMNS",
    "FLAG_COLUMNS",
    "HIERARCHY_COLUMNS",
    "RESERVED_COLUMNS",
    "STATION_KINDS",
    "Candidate",
    "Election",
    "ElectionMeta",
    "make_election",
    "simulation_notice",
]

HIERARCHY_COLUMNS: tuple[str, ...] = ("region", "constituency", "district", "municipality")
TEXT_COLUMNS: tuple[str, ...] = ("station_id", *HIERARCHY_COLUMNS, "station_name", "station_kind")
COUNT_COLUMNS: tuple[str, ...] = (
    "registered",
    "ballots_received",
    "ballots_issued_early",
    "ballots_issued_on_day",
    "ballots_issued_outside",
    "ballots_cancelled",
    "ballots_in_mobile_boxes",
    "ballots_in_stationary_boxes",
    "ballots_cast",
    "valid",
    "invalid",
)
FLAG_COLUMNS: tuple[str, ...] = (
    "is_pseudo_station",
    "is_evoting",
    "is_abroad",
    "is_cancelled",
    "is_unpublished",
)
RESERVED_COLUMNS: frozenset[str] = frozenset(TEXT_COLUMNS + COUNT_COLUMNS + FLAG_COLUMNS)
STATION_KINDS: tuple[str, ...] = (
    "ordinary",
    "hospital",
    "care_home",
    "prison",
    "abroad",
    "ship",
    "dormitory",
    "postal",
    "evoting",
    "catch_all",
    "special",
    "unknown",
)

#: The one definition of each derived quantity, recorded in every election's metadata.
DERIVED_DEFINITIONS: dict[str, str] = {
    "turnout": "ballots_cast / registered; null where registered is null or 0",
    "vote_share": "votes for the candidate / valid; null where valid is null or 0",
    "leader": "candidate with the most votes in the whole election (ties: first listed)",
    "leader_share": "vote_share(leader)",
}

#: The ``definitions`` key of a simulated election's one-line account of its planted
#: manipulation (what, at how many stations, how strong), written where it is planted.
PLANTED_DEFINITION = "planted_manipulation"


def simulation_notice(kind: str, importer: str, definitions: Mapping[str, str]) -> str | None:
    """The label of a simulated election (``None`` for real results), from its metadata alone.

    Simulated: ``kind == "simulated"``, ``importer == "simulation"`` or any ``injection:*``
    definition. The label names the planted manipulation: the ``planted_manipulation``
    definition where present, else the injectors' titles (the text of each ``injection:*``
    definition before its first colon), else "no planted manipulation".
    """
    injected = [v for k, v in definitions.items() if k.startswith("injection:")]
    if kind != "simulated" and importer != "simulation" and not injected:
        return None
    planted = definitions.get(PLANTED_DEFINITION)
    if not planted:
        titles = [str(text).split(":", 1)[0] for text in injected]
        planted = "planted manipulation: " + "; ".join(titles) if titles else ""
    what = planted or "no planted manipulation (a clean simulation)"
    return f"SIMULATED election, not real results: {what}"


@dataclass(frozen=True)
class Candidate:
    """A candidate or party list: ``column`` is its vote column in ``stations``."""

    name: str
    column: str
    party: str | None = None


@dataclass(frozen=True)
class ElectionMeta:
    """What an election is and where its numbers come from.

    ``definitions`` records the source-specific choices (what ``ballots_cast`` is made of, which
    rows are flagged and why) next to the derived-quantity definitions shared by all elections.
    """

    id: str
    country: str
    date: str
    kind: str
    contest: str
    source: str
    license: str
    importer: str
    candidates: tuple[Candidate, ...]
    data_version: str = ""
    round: int | None = None
    hierarchy_labels: Mapping[str, str] = field(default_factory=dict)
    definitions: Mapping[str, str] = field(default_factory=dict)
    source_files: tuple[str, ...] = ()
    source_sha256: str = ""
    notes: str = ""

    @property
    def is_simulated(self) -> bool:
        """Whether the numbers are simulated or manipulated, not real results."""
        return self.simulation_notice is not None

    @property
    def simulation_notice(self) -> str | None:
        """The label every rendering of a simulated election shows (see
        :func:`simulation_notice`); ``None`` for real results."""
        return simulation_notice(self.kind, self.importer, self.definitions)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (round trips through :meth:`from_dict`)."""
        data = asdict(self)
        data["candidates"] = [asdict(c) for c in self.candidates]
        data["hierarchy_labels"] = dict(self.hierarchy_labels)
        data["definitions"] = dict(self.definitions)
        data["source_files"] = list(self.source_files)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ElectionMeta:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["candidates"] = tuple(Candidate(**c) for c in values.get("candidates", ()))
        values["source_files"] = tuple(values.get("source_files", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class Election:
    """One election: metadata and the stations table. Build it with :func:`make_election`.

    ``quarantine`` holds the source rows the import set aside instead of failing on them
    (:mod:`pollwatch.results.quarantine`); empty for a clean file or a strict import.
    """

    meta: ElectionMeta
    stations: pl.DataFrame
    quarantine: Quarantine = field(default_factory=Quarantine)

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def candidate_columns(self) -> list[str]:
        return [c.column for c in self.meta.candidates]

    def __len__(self) -> int:
        return self.stations.height

    # --- derived quantities -------------------------------------------------------------
    @staticmethod
    def turnout_expr() -> pl.Expr:
        """``ballots_cast / registered``, null where registered is null or 0."""
        registered = pl.col("registered")
        return (
            pl.when(registered > 0)
            .then(pl.col("ballots_cast") / registered)
            .otherwise(None)
            .alias("turnout")
        )

    @staticmethod
    def vote_share_expr(column: str) -> pl.Expr:
        """``votes(column) / valid``, null where valid is null or 0."""
        valid = pl.col("valid")
        return (
            pl.when(valid > 0).then(pl.col(column) / valid).otherwise(None).alias(f"share:{column}")
        )

    def turnout(self) -> pl.Series:
        """Per-station turnout, as defined in the module docstring."""
        return self.stations.select(self.turnout_expr()).to_series()

    def vote_share(self, candidate: str) -> pl.Series:
        """Per-station vote share of ``candidate`` (its name or column)."""
        return self.stations.select(self.vote_share_expr(self.column_of(candidate))).to_series()

    def column_of(self, candidate: str) -> str:
        """The vote column of a candidate given by name or column."""
        for c in self.meta.candidates:
            if candidate in (c.name, c.column):
                return c.column
        raise ColumnError(
            f"election {self.id!r} has no candidate {candidate!r}",
            hint=f"candidates: {', '.join(c.name for c in self.meta.candidates)}",
        )

    def totals(self) -> dict[str, int]:
        """Votes per candidate summed over all stations (nulls count as 0)."""
        if not self.meta.candidates:
            return {}
        row = self.stations.select(
            [pl.col(c.column).sum().alias(c.name) for c in self.meta.candidates]
        ).row(0, named=True)
        return {name: int(value or 0) for name, value in row.items()}

    def leader(self) -> Candidate | None:
        """The candidate with the most votes in the whole election (ties: first listed)."""
        totals = self.totals()
        if not totals:
            return None
        best = max(totals.values())
        return next(c for c in self.meta.candidates if totals[c.name] == best)

    def leader_share(self) -> pl.Series:
        """Per-station ``vote_share(leader)``."""
        leader = self.leader()
        if leader is None:
            return pl.Series("leader_share", [None] * len(self), dtype=pl.Float64)
        return self.vote_share(leader.column).alias("leader_share")

    def with_derived(self) -> pl.DataFrame:
        """The stations table with ``turnout`` and ``leader_share`` columns added."""
        return self.stations.with_columns(self.turnout(), self.leader_share())

    def summary(self) -> ElectionSummary:
        """Station count, registered voters, ballots, turnout and totals per candidate."""
        frame = self.stations
        reported = ("registered", "ballots_cast", "valid", "invalid")
        evoting = pl.col("is_evoting")
        row = frame.select(
            *[pl.col(c).sum().alias(c) for c in reported],
            *[pl.col(c).is_not_null().sum().alias(f"{c}:n") for c in reported],
            *[pl.col(c).filter(evoting).sum().alias(f"{c}:e") for c in reported[:2]],
            *[pl.col(c).filter(evoting).is_not_null().sum().alias(f"{c}:en") for c in reported[:2]],
        ).row(0, named=True)
        # A total over stations that never report the number is unknown, not zero.
        sums = {c: int(row[c] or 0) if row[f"{c}:n"] else None for c in reported}
        flags = {name: int(frame[name].sum()) for name in FLAG_COLUMNS}
        # E-voting pseudo-stations that report no numbers leave their total unknown.
        evoting_sums = {
            c: int(row[f"{c}:e"] or 0) if row[f"{c}:en"] or not flags["is_evoting"] else None
            for c in reported[:2]
        }
        # Turnout over stations that report both numbers, so that missing registered counts
        # (US precinct files) do not deflate it.
        both = frame.filter(
            pl.col("registered").is_not_null() & pl.col("ballots_cast").is_not_null()
        )
        both_registered = int(both["registered"].sum() or 0)
        turnout = (
            int(both["ballots_cast"].sum() or 0) / both_registered if both_registered else None
        )
        leader = self.leader()
        return ElectionSummary(
            election_id=self.id,
            regions=frame["region"].drop_nulls().n_unique(),
            simulation=self.meta.simulation_notice,
            stations=len(self),
            registered=sums["registered"],
            ballots_cast=sums["ballots_cast"],
            valid=sums["valid"],
            invalid=sums["invalid"],
            turnout=turnout,
            totals=self.totals(),
            leader=leader.name if leader else None,
            flags=flags,
            set_aside=len(self.quarantine),
            evoting_stations=flags["is_evoting"],
            evoting_registered=evoting_sums["registered"],
            evoting_ballots_cast=evoting_sums["ballots_cast"],
        )

    def content_digest(self) -> str:
        """SHA-256 of the stations table in a canonical form (sorted by station id, CSV).

        Two elections with the same numbers have the same digest, whatever row order or file
        they came from; results of analyses are keyed by it.
        """
        cached: str | None = self.__dict__.get("_content_digest")
        if cached is not None:
            return cached
        canonical = self.stations.sort("station_id").write_csv()
        digest = hashlib.sha256(canonical.encode("utf-8"))
        digest.update(json.dumps([c.column for c in self.meta.candidates]).encode("utf-8"))
        value = digest.hexdigest()
        # The election is immutable, so the digest is computed once (it costs about a second
        # on a national election and every method result records it).
        object.__setattr__(self, "_content_digest", value)
        return value

    def replace_meta(self, **changes: Any) -> Election:
        """A copy with metadata fields replaced."""
        return Election(
            meta=replace(self.meta, **changes), stations=self.stations, quarantine=self.quarantine
        )

    def with_quarantine(self, quarantine: Quarantine) -> Election:
        """A copy carrying ``quarantine`` (the rows its import set aside)."""
        return Election(meta=self.meta, stations=self.stations, quarantine=quarantine)

    # --- renderings (notebooks and rich; see pollwatch._notebook) -----------------------
    def fingerprint_chart(self, *, bins: int = 100) -> dict[str, Any] | None:
        """The turnout x leader's-share fingerprint as a Vega-Lite v5 heatmap, data inline.

        One cell per ``1 / bins`` of turnout and of the leader's vote share (the data model's
        definitions, above) holding its count of stations; the stations are those the methods
        use (no pseudo-stations, cancelled or unpublished ones) with both numbers known,
        turnout above 100 % counted in the last column (Klimek et al. 2012, PNAS 109(41),
        16469-16473). None when no station has both numbers.
        """
        leader = self.leader()
        if leader is None:
            return None
        cells = (
            self.stations.filter(
                ~pl.col("is_pseudo_station") & ~pl.col("is_cancelled") & ~pl.col("is_unpublished")
            )
            .select(self.turnout_expr(), self.vote_share_expr(leader.column).alias("share"))
            .drop_nulls()
            .filter(pl.col("turnout").is_finite() & pl.col("share").is_finite())
            .select(
                (pl.col("turnout") * bins).floor().clip(0, bins - 1).cast(pl.Int64).alias("i"),
                (pl.col("share") * bins).floor().clip(0, bins - 1).cast(pl.Int64).alias("j"),
            )
            .group_by("i", "j")
            .len()
            .sort("i", "j")
        )
        if cells.height == 0:
            return None
        values = [
            {
                "turnout": i / bins,
                "turnout_end": (i + 1) / bins,
                "share": j / bins,
                "share_end": (j + 1) / bins,
                "stations": n,
            }
            for i, j, n in cells.iter_rows()
        ]
        subtitle = [f"{int(cells['len'].sum()):,} stations; leader: {leader.name}"]
        if self.meta.simulation_notice:
            subtitle.insert(0, self.meta.simulation_notice)
        axis = {"type": "quantitative", "scale": {"domain": [0, 1]}, "axis": {"format": "%"}}
        return {
            "$schema": VEGA_LITE_SCHEMA,
            "title": {"text": f"{self.id}: turnout x leader's vote share", "subtitle": subtitle},
            "width": 360,
            "height": 360,
            "data": {"values": values},
            "mark": {"type": "rect"},
            "encoding": {
                "x": {"field": "turnout", "title": "turnout", **axis},
                "x2": {"field": "turnout_end"},
                "y": {"field": "share", "title": f"vote share of {leader.name}", **axis},
                "y2": {"field": "share_end"},
                "color": {
                    "field": "stations",
                    "type": "quantitative",
                    "title": "stations",
                    "scale": {"type": "symlog", "scheme": "viridis"},
                },
                "tooltip": [
                    {"field": "turnout", "type": "quantitative", "format": ".0%"},
                    {"field": "share", "type": "quantitative", "format": ".0%"},
                    {"field": "stations", "type": "quantitative"},
                ],
            },
        }

    def __rich__(self) -> Any:
        meta = self.meta
        return _rich_summary(
            self.summary(),
            [
                ("election", f"{meta.id}: {meta.contest}"),
                ("country, date", f"{meta.country}, {meta.date or 'unknown'} ({meta.kind})"),
                ("source", meta.source),
            ],
        )

    def _repr_html_(self) -> str:
        meta = self.meta
        summary = self.summary()
        rows = [
            ("election", f"{meta.id}: {meta.contest}"),
            ("country, date", f"{meta.country}, {meta.date or 'unknown'} ({meta.kind})"),
            ("source", meta.source),
            *_summary_rows(summary),
        ]
        parties = {c.name: c.party or "" for c in meta.candidates}
        return html_section(
            [
                html_table(rows, caption=f"Election {meta.id}", row_header=True),
                _candidates_html(summary, parties if any(parties.values()) else None),
            ],
            simulation=summary.simulation,
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Table (``text/html``), text (``text/plain``) and the fingerprint (Vega-Lite v5)."""
        return mimebundle(
            self._repr_html_(), plain_text(self), self.fingerprint_chart(), include, exclude
        )

    def _ipython_display_(self) -> None:
        display_bundle(self._repr_mimebundle_())


@dataclass(frozen=True)
class ElectionSummary:
    """The numbers ``pollwatch show`` prints first."""

    election_id: str
    stations: int
    registered: int | None
    ballots_cast: int | None
    valid: int | None
    invalid: int | None
    turnout: float | None
    totals: Mapping[str, int]
    leader: str | None
    flags: Mapping[str, int]
    #: source rows the import set aside (see :mod:`pollwatch.results.quarantine`)
    set_aside: int = 0
    #: remote e-voting pseudo-stations (``is_evoting``), reported apart: how many, and their
    #: registered voters and ballots (included in ``registered`` and ``ballots_cast``)
    evoting_stations: int = 0
    evoting_registered: int | None = None
    evoting_ballots_cast: int | None = None
    #: distinct regions named (the ``region`` column's non-null values)
    regions: int = 0
    #: the label of a simulated election (:attr:`ElectionMeta.simulation_notice`); None when real
    simulation: str | None = None

    @property
    def registered_without_evoting(self) -> int | None:
        """``registered`` less the e-voting pseudo-stations' registered voters."""
        return _less(self.registered, self.evoting_registered)

    @property
    def ballots_cast_without_evoting(self) -> int | None:
        """``ballots_cast`` less the e-voting pseudo-stations' ballots."""
        return _less(self.ballots_cast, self.evoting_ballots_cast)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["totals"] = dict(self.totals)
        data["flags"] = dict(self.flags)
        data["registered_without_evoting"] = self.registered_without_evoting
        data["ballots_cast_without_evoting"] = self.ballots_cast_without_evoting
        return data

    def __rich__(self) -> Any:
        return _rich_summary(self, [("election", self.election_id)])

    def _repr_html_(self) -> str:
        return html_section(
            [
                html_table(
                    _summary_rows(self), caption=f"Summary: {self.election_id}", row_header=True
                ),
                _candidates_html(self, None),
            ],
            simulation=self.simulation,
        )


def _less(total: int | None, part: int | None) -> int | None:
    return total if total is None or part is None else total - part


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _summary_rows(summary: ElectionSummary) -> list[tuple[str, str]]:
    """The headline numbers as (label, value) rows, e-voting apart (the methods leave it out)."""
    rows = [
        ("stations", _count(summary.stations)),
        ("regions", _count(summary.regions)),
        ("registered", _count(summary.registered)),
        ("ballots cast", _count(summary.ballots_cast)),
        ("valid / invalid", f"{_count(summary.valid)} / {_count(summary.invalid)}"),
        ("turnout", _percent(summary.turnout)),
    ]
    if summary.evoting_stations:
        rows += [
            (
                "e-voting",
                f"{summary.evoting_stations:,} pseudo-stations, "
                f"{_count(summary.evoting_registered)} registered, "
                f"{_count(summary.evoting_ballots_cast)} ballots (in the totals above)",
            ),
            (
                "without e-voting",
                f"{_count(summary.registered_without_evoting)} registered, "
                f"{_count(summary.ballots_cast_without_evoting)} ballots",
            ),
        ]
    flagged = ", ".join(
        f"{name.removeprefix('is_')} {n:,}" for name, n in summary.flags.items() if n
    )
    rows.append(("flagged stations", flagged or "none"))
    if summary.set_aside:
        rows.append(("rows set aside at import", f"{summary.set_aside:,}"))
    return rows


def _candidate_rows(summary: ElectionSummary) -> list[tuple[str, str, str]]:
    """(candidate, votes, share of valid) rows, most votes first."""
    valid = summary.valid or sum(summary.totals.values())
    return [
        (name, f"{votes:,}", _percent(votes / valid if valid else None))
        for name, votes in sorted(summary.totals.items(), key=lambda item: -item[1])
    ]


def _candidates_html(summary: ElectionSummary, parties: Mapping[str, str] | None) -> str:
    header = ["candidate", "votes", "share of valid"]
    rows = [list(row) for row in _candidate_rows(summary)]
    if parties:
        header.insert(1, "party")
        for row in rows:
            row.insert(1, parties.get(row[0], ""))
    return html_table(
        rows,
        header=header,
        caption="Votes per candidate",
        numeric=(len(header) - 2, len(header) - 1),
    )


def _rich_summary(summary: ElectionSummary, rows: list[tuple[str, str]]) -> Any:
    """The summary for the terminal: the simulation label, ``rows``, the numbers, the votes."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")
    if summary.simulation:
        head.add_row("[bold yellow]SIMULATED[/]", f"[bold yellow]{escape(summary.simulation)}[/]")
    for label, value in [*rows, *_summary_rows(summary)]:
        head.add_row(escape(label), escape(value))
    totals = Table(title="Votes per candidate", title_justify="left")
    totals.add_column("candidate", overflow="fold")
    totals.add_column("votes", justify="right")
    totals.add_column("share of valid", justify="right")
    for name, votes, share in _candidate_rows(summary):
        label = escape(name)
        totals.add_row(f"[bold]{label}[/]" if name == summary.leader else label, votes, share)
    return Group(head, "", totals)


def _schema_for(candidate_columns: Sequence[str]) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {}
    for name in TEXT_COLUMNS:
        schema[name] = pl.String()
    for name in COUNT_COLUMNS:
        schema[name] = pl.Int64()
    for name in candidate_columns:
        schema[name] = pl.Int64()
    for name in FLAG_COLUMNS:
        schema[name] = pl.Boolean()
    return schema


def make_election(
    meta: ElectionMeta,
    stations: pl.DataFrame,
    *,
    where: str = "",
    quarantine: Quarantine | None = None,
) -> Election:
    """Normalise an importer's table into the data model and check its invariants.

    Absent optional columns are added as nulls (flags as ``False``, ``station_kind`` as
    ``"ordinary"``), columns are put in canonical order and types, and the function refuses
    a table whose ``station_id`` is missing or null, whose candidate columns are absent or whose
    counts are negative. ``where`` names the source in error messages; ``quarantine`` (the rows
    set aside on the way) is kept.
    """
    candidate_columns = [c.column for c in meta.candidates]
    if len(set(candidate_columns)) != len(candidate_columns):
        raise ColumnError("two candidates share one vote column", path=where or None)
    clash = RESERVED_COLUMNS.intersection(candidate_columns)
    if clash:
        raise ColumnError(
            f"candidate column(s) {sorted(clash)} clash with protocol columns",
            path=where or None,
            hint="rename the candidate columns",
        )
    if "station_id" not in stations.columns:
        raise ColumnError("no station_id column", path=where or None)
    missing = [c for c in candidate_columns if c not in stations.columns]
    if missing:
        raise ColumnError(f"candidate column(s) missing: {missing}", path=where or None)
    schema = _schema_for(candidate_columns)
    columns: list[pl.Expr] = []
    for name, dtype in schema.items():
        if name in stations.columns:
            try:
                columns.append(pl.col(name).cast(dtype, strict=True))
            except Exception:  # pragma: no cover - cast errors surface at collect time
                columns.append(pl.col(name))
        elif name in FLAG_COLUMNS:
            columns.append(pl.lit(False).alias(name))
        elif name == "station_kind":
            columns.append(pl.lit("ordinary").alias(name))
        else:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    try:
        table = stations.select(columns)
    except pl.exceptions.InvalidOperationError as exc:
        raise CountError(
            f"a column cannot be read as a whole number ({str(exc).splitlines()[0]})",
            path=where or None,
            hint="check the counts are integers",
        ) from None
    table = table.with_columns([pl.col(f).fill_null(False) for f in FLAG_COLUMNS])
    table = table.with_columns(pl.col("station_kind").fill_null("unknown"))
    if table["station_id"].null_count():
        row = int(table["station_id"].is_null().arg_max() or 0)
        raise InputError("station_id is empty", path=where or None, row=row + 1)
    unknown_kinds = set(table["station_kind"].unique().to_list()) - set(STATION_KINDS)
    if unknown_kinds:
        raise InputError(
            f"unknown station_kind value(s) {sorted(unknown_kinds)}",
            path=where or None,
            hint=f"use one of {', '.join(STATION_KINDS)}",
        )
    # Signed counts are accepted only on pseudo-stations: some sources publish adjustment
    # rows ("Statistical Adjustments") whose negative numbers make the totals add up.
    count_columns = [*COUNT_COLUMNS, *candidate_columns]
    real = ~pl.col("is_pseudo_station")
    negative = table.select([((pl.col(c) < 0) & real).any().alias(c) for c in count_columns]).row(
        0, named=True
    )
    bad = [c for c, is_bad in negative.items() if is_bad]
    if bad:
        column = bad[0]
        mask = table.select(((pl.col(column) < 0) & real).fill_null(False)).to_series()
        row = int(mask.arg_max() or 0)
        raise CountError(
            "negative count",
            path=where or None,
            row=row + 1,
            column=column,
            hint="counts must be zero or more (signed adjustment rows must be flagged "
            "is_pseudo_station); fix the source or its mapping",
        )
    definitions = {**DERIVED_DEFINITIONS, **dict(meta.definitions)}
    return Election(
        meta=replace(meta, definitions=definitions),
        stations=table,
        quarantine=quarantine or Quarantine(),
    )
