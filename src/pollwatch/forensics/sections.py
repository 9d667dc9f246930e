"""What a method shows: report sections, and typed views of the details other layers read.

Rendering protocol (rich's ``__rich_console__`` is the model): a method yields the sections of
its result, ``Method.sections(result)``, reached as :meth:`MethodResult.sections()
<pollwatch.forensics.base.MethodResult.sections>`. The sections are data only (no terminal or
HTML code here): a :class:`Headline`, :class:`Caveat` lines (the calibration and the result's
notes), :class:`Chart` specifications and :class:`Table` s of plain values. The CLI
(``pollwatch analyze -m NAME``), the HTML report, the comparison page and the dashboard's
method page render them, so no layer needs to know a method by name. :func:`default_sections`
is what every method gets for free; a method overrides ``sections`` to add its own tables.

Typed details (in the style of scipy's result classes): where other layers read a method's
numbers they read a frozen :class:`MethodDetails` object, never ``details`` keys. A method
class declares its type (``Method.detail_type``); ``result.detail()`` builds it from the
result, and :func:`provider` finds the result whose method provides a kind (the station
ranking, the per-region table, the fingerprint) among several. Each type reads the keys it
owns (``keys``) with ``from_details`` and writes the same JSON back with ``to_details``, so
saved results are unchanged: :class:`StationRanking` (triage), :class:`RegionTable`
(Shpilkin's ``by_region`` estimates), :class:`SpikePoints` (Rozenas et al.'s spike points)
and :class:`FingerprintCells` (the Klimek fingerprint's chart cells).

This module imports nothing above the forensics layer and nothing of it at run time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pollwatch.errors import PollwatchError
from pollwatch.forensics.calibration import calibration_words

if TYPE_CHECKING:
    from pollwatch.forensics.base import MethodResult

__all__ = [
    "Caveat",
    "Chart",
    "FingerprintCell",
    "FingerprintCells",
    "Headline",
    "MethodDetails",
    "RankedStation",
    "RegionEstimate",
    "RegionTable",
    "Section",
    "SpecialStations",
    "SpikePoint",
    "SpikePoints",
    "StationRanking",
    "Table",
    "default_sections",
    "detail_of",
    "provider",
    "section_dict",
    "tables",
]


# --- sections ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Headline:
    """The one line of a result: statistic, p-value, effect and sample size (no caveats)."""

    method: str
    title: str
    text: str


@dataclass(frozen=True)
class Table:
    """A small table of plain values (str, int, float or None), one tuple per row.

    ``note`` says what the reader must know about it (where the rows come from, what a
    column means). Raises PollwatchError when a row's length is not the number of columns.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

    def __post_init__(self) -> None:
        for index, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise PollwatchError(
                    f"table {self.title!r}: row {index} has {len(row)} cells for "
                    f"{len(self.columns)} columns",
                    hint="give every row one value per column name",
                )

    def head(self, limit: int) -> Table:
        """The first ``limit`` rows; the note says how many were left out."""
        if len(self.rows) <= limit:
            return self
        shown = f"first {limit:,} of {len(self.rows):,} rows"
        return replace(
            self, rows=self.rows[:limit], note=f"{self.note}; {shown}" if self.note else shown
        )


@dataclass(frozen=True)
class Chart:
    """A Vega-Lite v5 specification, by the name the result gives it."""

    name: str
    title: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class Caveat:
    """What a reader of the headline must see: the calibration (``kind="calibration"``;
    ``serious`` when the method is unreliable on clean elections) or a note."""

    text: str
    kind: str = "note"
    serious: bool = False


Section = Headline | Table | Chart | Caveat


def default_sections(result: MethodResult) -> tuple[Section, ...]:
    """Headline, the calibration's words, the notes and the charts of any result."""
    bare = replace(result, calibration=None, notes=())
    calibration = result.calibration
    sections: list[Section] = [Headline(result.method, result.title, bare.headline())]
    sections.append(
        Caveat(
            calibration_words(calibration),
            kind="calibration",
            serious=calibration is not None and calibration.unreliable,
        )
    )
    sections += [Caveat(note) for note in result.notes]
    for name, spec in result.charts.items():
        title = spec.get("title")
        sections.append(Chart(name, title if isinstance(title, str) else name, spec))
    return tuple(sections)


def section_dict(section: Section) -> dict[str, Any]:
    """A section as JSON (``kind`` says which), for the API."""
    if isinstance(section, Table):
        return {
            "kind": "table",
            "title": section.title,
            "columns": list(section.columns),
            "rows": [list(row) for row in section.rows],
            "note": section.note,
        }
    if isinstance(section, Chart):
        return {"kind": "chart", "name": section.name, "title": section.title}
    if isinstance(section, Caveat):
        return {"kind": "caveat", "text": section.text, "caveat": section.kind,
                "serious": section.serious}  # fmt: skip
    return {"kind": "headline", "method": section.method, "title": section.title,
            "text": section.text}  # fmt: skip


# --- typed details -----------------------------------------------------------------------
D = TypeVar("D", bound="MethodDetails")


class MethodDetails:
    """Base of the typed detail views: the ``keys`` of ``details`` a type owns, read and
    written back unchanged."""

    #: the keys of ``MethodResult.details`` this type reads and writes
    keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_details(cls: type[D], details: Mapping[str, Any]) -> D:
        raise NotImplementedError

    def to_details(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_result(cls: type[D], result: MethodResult) -> D | None:
        """The view of ``result``, or None when it lacks what the type needs."""
        if not all(key in result.details for key in cls.required()):
            return None
        return cls.from_details(result.details)

    @classmethod
    def required(cls) -> tuple[str, ...]:
        return cls.keys[:1]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class RankedStation:
    """One listed station of a ranking: its score and the reasons for it."""

    station_id: str
    region: str | None
    score: float
    turnout: float | None
    leader_share: float | None
    reasons: tuple[str, ...]
    special: str | None = None

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> RankedStation:
        return cls(
            station_id=str(row["station_id"]),
            region=row.get("region"),
            score=float(row["score"]),
            turnout=_float(row.get("turnout")),
            leader_share=_float(row.get("leader_share")),
            reasons=tuple(row.get("reasons", ())),
            special=row.get("special"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "station_id": self.station_id,
            "region": self.region,
            "score": self.score,
            "turnout": self.turnout,
            "leader_share": self.leader_share,
            "reasons": list(self.reasons),
            "special": self.special,
        }


@dataclass(frozen=True)
class SpecialStations:
    """How many likely special stations a ranking left out (or included), and how many of
    them reach its threshold."""

    included: bool
    stations: int
    at_or_above_threshold: int
    definition: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "included": self.included,
            "stations": self.stations,
            "at_or_above_threshold": self.at_or_above_threshold,
            "definition": self.definition,
        }


@dataclass(frozen=True)
class StationRanking(MethodDetails):
    """Stations to check first, highest score first (triage's ``ranked``), with the count of
    special stations (``special``, None for results from before it) and the regions pooled
    with the whole election (``regions_pooled``)."""

    stations: tuple[RankedStation, ...]
    special: SpecialStations | None = None
    regions_pooled: tuple[str, ...] | None = None

    keys: ClassVar[tuple[str, ...]] = ("ranked", "special", "regions_pooled")

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> StationRanking:
        special = details.get("special")
        pooled = details.get("regions_pooled")
        return cls(
            stations=tuple(RankedStation.from_dict(row) for row in details.get("ranked", ())),
            special=SpecialStations(**special) if isinstance(special, Mapping) else None,
            regions_pooled=None if pooled is None else tuple(pooled),
        )

    def to_details(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ranked": [row.to_dict() for row in self.stations]}
        if self.special is not None:
            data["special"] = self.special.to_dict()
        if self.regions_pooled is not None:
            data["regions_pooled"] = list(self.regions_pooled)
        return data

    def entry(self, station_id: str) -> RankedStation | None:
        """The listed station ``station_id``, or None when it is not listed."""
        return next((row for row in self.stations if row.station_id == station_id), None)

    def table(self, title: str = "Stations to check first") -> Table:
        return Table(
            title,
            ("station", "region", "score", "turnout", "leader share", "reasons"),
            tuple(
                (r.station_id, r.region, r.score, r.turnout, r.leader_share, "; ".join(r.reasons))
                for r in self.stations
            ),
            note="a list of stations to check, highest score first; a high score is a reason "
            "to look, never a finding",
        )


@dataclass(frozen=True)
class RegionEstimate:
    """One region's totals over the stations a method uses, and its own estimate."""

    region: str
    stations: int | None
    registered: int | None
    turnout: float | None
    leader_share: float | None
    anomalous_votes: int | None
    ballots_cast: int | None = None
    leader_votes: int | None = None
    low: int | None = None
    high: int | None = None
    clean_turnout: float | None = None

    _fields: ClassVar[tuple[str, ...]] = (
        "stations", "registered", "ballots_cast", "turnout", "leader_share", "leader_votes",
        "anomalous_votes", "low", "high", "clean_turnout",
    )  # fmt: skip

    @classmethod
    def from_dict(cls, region: str, entry: Mapping[str, Any]) -> RegionEstimate:
        return cls(
            region=region,
            stations=_int(entry.get("stations")),
            registered=_int(entry.get("registered")),
            turnout=_float(entry.get("turnout")),
            leader_share=_float(entry.get("leader_share")),
            anomalous_votes=_int(entry.get("anomalous_votes")),
            ballots_cast=_int(entry.get("ballots_cast")),
            leader_votes=_int(entry.get("leader_votes")),
            low=_int(entry.get("low")),
            high=_int(entry.get("high")),
            clean_turnout=_float(entry.get("clean_turnout")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}


@dataclass(frozen=True)
class RegionTable(MethodDetails):
    """Per-region estimates by region name (Shpilkin's ``regions``), their total
    (``regions_total``) and what the low-high range of an estimate means (``range``)."""

    regions: tuple[RegionEstimate, ...]
    total: int | None = None
    range: str | None = None

    keys: ClassVar[tuple[str, ...]] = ("regions", "regions_total", "range")

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> RegionTable:
        regions = details.get("regions") or {}
        meaning = details.get("range")
        return cls(
            regions=tuple(
                RegionEstimate.from_dict(str(name), entry)
                for name, entry in regions.items()
                if isinstance(entry, Mapping)
            ),
            total=_int(details.get("regions_total")),
            range=meaning if isinstance(meaning, str) else None,
        )

    @classmethod
    def from_result(cls, result: MethodResult) -> RegionTable | None:
        if not isinstance(result.details.get("regions"), Mapping):
            return None
        return cls.from_details(result.details)

    def to_details(self) -> dict[str, Any]:
        data: dict[str, Any] = {"regions": {r.region: r.to_dict() for r in self.regions}}
        if self.total is not None:
            data["regions_total"] = self.total
        if self.range is not None:
            data["range"] = self.range
        return data

    def table(self, title: str = "Estimate by region") -> Table:
        return Table(
            title,
            ("region", "stations", "turnout", "leader share", "estimate", "low", "high"),
            tuple(
                (r.region, r.stations, r.turnout, r.leader_share, r.anomalous_votes, r.low, r.high)
                for r in sorted(self.regions, key=lambda r: r.region)
            ),
            note=f"low to high: {self.range}" if self.range else "",
        )


@dataclass(frozen=True)
class SpikePoint:
    """A grid point of the vote share where the observed density exceeds the envelope."""

    share: float
    excess: float
    observed: float
    expected: float
    coarse_fraction: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "excess": self.excess,
            "observed": self.observed,
            "expected": self.expected,
            "coarse_fraction": self.coarse_fraction,
        }


@dataclass(frozen=True)
class SpikePoints(MethodDetails):
    """Spike points, largest excess first (at most 100 kept, ``spike_points``), and how many
    there were in all (``spike_point_count``)."""

    points: tuple[SpikePoint, ...]
    count: int | None = None

    keys: ClassVar[tuple[str, ...]] = ("spike_points", "spike_point_count")

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> SpikePoints:
        return cls(
            points=tuple(
                SpikePoint(
                    share=float(p["share"]),
                    excess=float(p["excess"]),
                    observed=float(p["observed"]),
                    expected=float(p["expected"]),
                    coarse_fraction=p.get("coarse_fraction"),
                )
                for p in details.get("spike_points", ())
            ),
            count=_int(details.get("spike_point_count")),
        )

    def to_details(self) -> dict[str, Any]:
        data: dict[str, Any] = {"spike_points": [p.to_dict() for p in self.points]}
        if self.count is not None:
            data["spike_point_count"] = self.count
        return data

    def table(self, limit: int = 10) -> Table:
        shown = self.points[:limit]
        total = self.count if self.count is not None else len(self.points)
        return Table(
            "Spike points (largest excess first)",
            ("share", "excess", "observed", "expected", "coarse fraction"),
            tuple((p.share, p.excess, p.observed, p.expected, p.coarse_fraction) for p in shown),
            note=f"{len(shown):,} of {total:,} spike points",
        )


@dataclass(frozen=True)
class FingerprintCell:
    """One non-empty cell of a turnout x leader-share fingerprint: its bin edges on [0, 1]
    and its station count."""

    x0: float
    x1: float
    y0: float
    y1: float
    count: float


@dataclass(frozen=True)
class FingerprintCells(MethodDetails):
    """The fingerprint chart of a result (``charts["fingerprint"]``) and its cells.

    The cells live in the chart's data, not in ``details``: ``from_chart`` reads them and
    ``chart`` is the specification as the method wrote it (``to_chart`` returns it whole).
    """

    cells: tuple[FingerprintCell, ...]
    chart: Mapping[str, Any]

    chart_name: ClassVar[str] = "fingerprint"

    @classmethod
    def from_chart(cls, chart: Mapping[str, Any]) -> FingerprintCells:
        data = chart.get("data")
        values = data.get("values") if isinstance(data, Mapping) else None
        cells = tuple(
            FingerprintCell(*(float(cell[k]) for k in ("x0", "x1", "y0", "y1", "count")))
            for cell in (values if isinstance(values, list) else [])
            if isinstance(cell, Mapping)
        )
        return cls(cells=cells, chart=chart)

    @classmethod
    def from_result(cls, result: MethodResult) -> FingerprintCells | None:
        chart = result.charts.get(cls.chart_name)
        return cls.from_chart(chart) if isinstance(chart, Mapping) else None

    def to_chart(self) -> dict[str, Any]:
        return dict(self.chart)

    def cell_dicts(self) -> list[dict[str, Any]]:
        """The cells as the chart's data lists them (``x0``, ``x1``, ``y0``, ``y1``, ``count``)."""
        data = self.chart.get("data")
        values = data.get("values") if isinstance(data, Mapping) else None
        return [dict(cell) for cell in values or [] if isinstance(cell, Mapping)]


# --- finding what a method provides ------------------------------------------------------
def provider(results: Iterable[MethodResult], kind: type[MethodDetails]) -> MethodResult | None:
    """The result (first by method name) whose method class declares details of ``kind``.

    The result is returned even when it lacks them (a Shpilkin run without ``by_region``
    has no region table): ``detail_of`` says whether it has them.
    """
    for result in sorted(results, key=lambda r: r.method):
        cls = result.method_class()
        declared = getattr(cls, "detail_type", None)
        if isinstance(declared, type) and issubclass(declared, kind):
            return result
    return None


def detail_of(result: MethodResult | None, kind: type[D]) -> D | None:
    """``result.detail()`` when it is of ``kind``, else None (also for no result)."""
    detail = result.detail() if result is not None else None
    return detail if isinstance(detail, kind) else None


def tables(sections: Sequence[Section]) -> tuple[Table, ...]:
    """The tables among ``sections``, in order."""
    return tuple(s for s in sections if isinstance(s, Table))
