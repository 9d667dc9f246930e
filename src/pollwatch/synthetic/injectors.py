"""Manipulation injectors: plant a known manipulation in an election and say where.

An injector is a frozen dataclass with two parameters, ``share`` (the fraction of eligible
stations affected, 0..1) and ``magnitude`` (its meaning is per injector, documented in each
class), and one method::

    apply(election, rng) -> (election, labels)

The returned election is built with :func:`~pollwatch.results.model.make_election`; its id is
the input's suffixed ``+<name>`` and its ``definitions`` gain an ``injection:<name>`` entry
describing what was done. :class:`Labels` names the affected stations and the totals moved.

Contract, shared by every injector (tests/calibration/test_injectors.py checks it for every
registered one):

* **only labelled stations change**: every other row is identical, byte for byte;
* **the protocol stays consistent**: ``valid + invalid = ballots_cast`` (= stationary + mobile
  boxes where the source has them), votes sum to ``valid``, ballots issued are raised by the
  ballots added (unused, cancelled ballots lowered by as many, the ballots received raised
  only if the cancelled ones do not cover them), and turnout never exceeds 100 %: added ballots
  are capped at ``registered - ballots_cast``;
* **eligible stations**: not pseudo, cancelled or unpublished, ``registered > 0`` and
  ``ballots_cast``, ``valid`` and every candidate's votes known (plus the injector's
  ``needs``);
* **how many**: ``round(share * eligible)`` stations, drawn without replacement from the
  eligible ones sorted by ``station_id``, so the result is determined by the generator's
  state and not by row order;
* **the leader** is the input election's leader (most votes overall); an affected station may
  end unchanged where there is nothing to do (no non-voters left, no opponents' votes);
* rounding: fractions of counts are rounded half to even (``numpy.rint``), per station and
  per opponent.

Added ballots go to the stationary boxes (when the source reports boxes) and are issued on
the day; votes moved from opponents are taken from each opponent in proportion to its votes.

The manipulations follow the literature: incremental and extreme ballot stuffing from
Klimek, Yegorov, Hanel & Thurner (2012), "Statistical detection of systematic election
irregularities", PNAS 109(41), 16469-16473; whole-percent results from Kobak, Shpilkin &
Pshenichnikov (2016), "Integer percentages as electoral falsification fingerprints", Annals of
Applied Statistics 10(1), 54-73; the rest (carousel voting, vote transfer, invalidation of
opponents' ballots) are the observer-reported practices those papers discuss.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from pollwatch.errors import PollwatchError
from pollwatch.registry import Registry
from pollwatch.results.model import Election, make_election

__all__ = [
    "INJECTORS",
    "Carousel",
    "Change",
    "ExtremeStuffing",
    "IncrementalStuffing",
    "Injector",
    "InvalidateOpponents",
    "Labels",
    "RoundPercentages",
    "StationCounts",
    "VoteTransfer",
    "compose",
]

IntArray = npt.NDArray[np.int64]

_ISSUED = ("ballots_issued_early", "ballots_issued_on_day", "ballots_issued_outside")


@dataclass(frozen=True)
class Labels:
    """What an injector did: where, with which parameters, and how many votes it moved.

    ``votes_moved`` counts votes taken from the leader's opponents (given to the leader or made
    invalid); ``ballots_added`` counts new ballots put in the boxes (all for the leader);
    ``votes_invalidated`` is the part of ``votes_moved`` that became invalid ballots.
    """

    injector: str
    parameters: Mapping[str, Any]
    stations: tuple[str, ...]
    votes_moved: int
    ballots_added: int
    votes_invalidated: int = 0
    leader: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parameters"] = dict(self.parameters)
        data["stations"] = list(self.stations)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Labels:
        """Inverts :meth:`to_dict` (KeyError, TypeError or ValueError when it is not one)."""
        return cls(
            injector=str(data["injector"]),
            parameters=dict(data["parameters"]),
            stations=tuple(str(s) for s in data["stations"]),
            votes_moved=int(data["votes_moved"]),
            ballots_added=int(data["ballots_added"]),
            votes_invalidated=int(data.get("votes_invalidated", 0)),
            leader=str(data.get("leader", "")),
        )


@dataclass(frozen=True)
class Change:
    """Per affected station: ballots added for the leader, votes moved to it or made invalid.

    ``moved[i, k]`` / ``invalidated[i, k]`` are taken from candidate ``k`` at station ``i``.
    """

    added: IntArray  # (n,)
    moved: IntArray  # (n, k): taken from each candidate, given to the leader
    invalidated: IntArray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))


@dataclass(frozen=True)
class StationCounts:
    """The affected stations' numbers, as arrays (rows in station_id order)."""

    registered: IntArray
    ballots_cast: IntArray
    valid: IntArray
    invalid: IntArray  # 0 where the station reports no invalid count
    has_invalid: npt.NDArray[np.bool_]
    votes: IntArray  # (n, k)
    leader: int  # column index of the leader in ``votes``

    @property
    def headroom(self) -> IntArray:
        """Ballots that can be added before turnout reaches 100 %."""
        out: IntArray = np.maximum(self.registered - self.ballots_cast, 0)
        return out

    @property
    def opponents(self) -> IntArray:
        """Votes matrix with the leader's column zeroed."""
        out = self.votes.copy()
        out[:, self.leader] = 0
        return out


def _fraction(values: IntArray, fraction: float) -> IntArray:
    """``rint(fraction * values)``, kept within ``0..values``."""
    out = np.rint(values * fraction).astype(np.int64)
    clipped: IntArray = np.clip(out, 0, values)
    return clipped


@dataclass(frozen=True)
class Injector(ABC):
    """Base class of manipulation injectors; see the module docstring for the contract."""

    share: float = 0.1
    magnitude: float = 0.5

    #: registry name, e.g. ``"incremental-stuffing"``
    name: ClassVar[str]
    #: one-line title
    title: ClassVar[str]
    #: the source of the manipulation's definition
    reference: ClassVar[str]
    #: allowed range of ``magnitude`` (inclusive) and what it means
    magnitude_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    magnitude_meaning: ClassVar[str] = ""
    #: columns a station must report to be eligible, besides the common ones
    needs: ClassVar[tuple[str, ...]] = ()
    #: the low, medium and high magnitudes the calibration harness plants (with 10 % of
    #: stations affected), chosen so that power runs from small to large; None: 5 %, 20 % and
    #: 50 % of the way through ``magnitude_range``
    calibration_magnitudes: ClassVar[tuple[float, float, float] | None] = None

    def __post_init__(self) -> None:
        share = float(self.share)
        if not (math.isfinite(share) and 0.0 <= share <= 1.0):
            raise PollwatchError(
                f"{self.name}: share={self.share} is out of range",
                hint="share is the fraction of eligible stations affected, from 0 to 1",
            )
        low, high = self.magnitude_range
        magnitude = float(self.magnitude)
        if not (math.isfinite(magnitude) and low <= magnitude <= high):
            raise PollwatchError(
                f"{self.name}: magnitude={self.magnitude} is out of range",
                hint=f"magnitude ({self.magnitude_meaning}) must be from {low:g} to {high:g}",
            )

    def parameters(self) -> dict[str, Any]:
        """The constructor parameters (JSON-able)."""
        return {"share": float(self.share), "magnitude": float(self.magnitude)}

    def describe(self) -> str:
        """One line for the election's ``definitions``."""
        return (
            f"{self.title}: share={self.share:g} of eligible stations, "
            f"magnitude={self.magnitude:g} ({self.magnitude_meaning}); {self.reference}"
        )

    def eligible_station_ids(self, election: Election) -> list[str]:
        """Ids of the stations this injector may touch, sorted."""
        keep = (
            ~pl.col("is_pseudo_station")
            & ~pl.col("is_cancelled")
            & ~pl.col("is_unpublished")
            & (pl.col("registered") > 0)
        )
        for column in ("ballots_cast", "valid", *self.needs, *election.candidate_columns):
            keep = keep & pl.col(column).is_not_null()
        frame = election.stations.filter(keep.fill_null(False))
        return sorted(frame["station_id"].to_list())

    def apply(self, election: Election, rng: np.random.Generator) -> tuple[Election, Labels]:
        """The manipulated election and the labels; see the module docstring."""
        leader = election.leader()
        if leader is None:
            raise PollwatchError(
                f"{self.name}: election {election.id!r} has no candidates",
                hint="injectors need candidate votes",
            )
        eligible = self.eligible_station_ids(election)
        count = round(self.share * len(eligible))
        picks: list[int] = (
            sorted(int(i) for i in rng.choice(len(eligible), size=count, replace=False))
            if count
            else []
        )
        chosen = [eligible[int(i)] for i in picks]
        frame = election.stations
        candidates = election.candidate_columns
        rows = (
            frame.with_row_index("_row")
            .filter(pl.col("station_id").is_in(chosen))
            .sort("station_id")
        )
        index = rows["_row"].to_numpy().astype(np.int64)
        counts = StationCounts(
            registered=rows["registered"].to_numpy().astype(np.int64),
            ballots_cast=rows["ballots_cast"].to_numpy().astype(np.int64),
            valid=rows["valid"].to_numpy().astype(np.int64),
            invalid=rows["invalid"].fill_null(0).to_numpy().astype(np.int64),
            has_invalid=rows["invalid"].is_not_null().to_numpy(),
            votes=rows.select(candidates)
            .to_numpy()
            .astype(np.int64)
            .reshape(len(chosen), len(candidates)),
            leader=candidates.index(leader.column),
        )
        change = self.change(counts, rng) if chosen else None
        added = np.zeros(0, dtype=np.int64)
        moved = np.zeros((0, len(candidates)), dtype=np.int64)
        invalidated = np.zeros((0, len(candidates)), dtype=np.int64)
        if change is not None:
            added = np.minimum(np.maximum(change.added, 0), counts.headroom)
            moved = change.moved
            invalidated = change.invalidated if change.invalidated.size else np.zeros_like(moved)
            taken = moved + invalidated
            if (moved < 0).any() or (invalidated < 0).any() or (taken > counts.opponents).any():
                raise PollwatchError(
                    f"{self.name}: the change takes more votes than the opponents have",
                    hint="an injector may move only opponents' votes, each at most all of them",
                )
            frame = _write(frame, rows, index, added, moved, invalidated, counts, candidates)
        labels = Labels(
            injector=self.name,
            parameters=self.parameters(),
            stations=tuple(chosen),
            votes_moved=int(moved.sum() + invalidated.sum()),
            ballots_added=int(added.sum()),
            votes_invalidated=int(invalidated.sum()),
            leader=leader.name,
        )
        key = f"injection:{self.name}"
        suffix = 2
        while key in election.meta.definitions:
            key = f"injection:{self.name}:{suffix}"
            suffix += 1
        definitions = {
            **dict(election.meta.definitions),
            key: f"{self.describe()}; {len(chosen)} stations, {labels.ballots_added} ballots "
            f"added, {labels.votes_moved} opponents' votes moved ({labels.votes_invalidated} "
            f"made invalid)",
        }
        meta = replace(election.meta, id=f"{election.id}+{self.name}", definitions=definitions)
        return make_election(meta, frame), labels

    @abstractmethod
    def change(self, counts: StationCounts, rng: np.random.Generator) -> Change:
        """The change at each affected station (added ballots are capped afterwards)."""


def _write(
    frame: pl.DataFrame,
    rows: pl.DataFrame,
    index: IntArray,
    added: IntArray,
    moved: IntArray,
    invalidated: IntArray,
    counts: StationCounts,
    candidates: Sequence[str],
) -> pl.DataFrame:
    """Write the change into the affected rows only, keeping the protocol identities."""
    taken = moved + invalidated
    voided = invalidated.sum(axis=1)
    votes = counts.votes - taken
    votes[:, counts.leader] += added + moved.sum(axis=1)
    new: dict[str, tuple[IntArray, npt.NDArray[np.bool_]]] = {}
    everywhere = np.ones(len(index), dtype=bool)
    for k, column in enumerate(candidates):
        new[column] = (votes[:, k], everywhere)
    new["valid"] = (counts.valid + added - voided, everywhere)
    new["ballots_cast"] = (counts.ballots_cast + added, everywhere)
    new["invalid"] = (counts.invalid + voided, counts.has_invalid)

    def known(column: str) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        series = rows[column]
        mask = series.is_not_null().to_numpy()
        return series.fill_null(0).to_numpy().astype(np.int64), mask

    stationary, has_stationary = known("ballots_in_stationary_boxes")
    _, has_mobile = known("ballots_in_mobile_boxes")
    boxes = has_stationary | has_mobile
    new["ballots_in_stationary_boxes"] = (stationary + added, boxes)
    issued_known = np.zeros(len(index), dtype=bool)
    for column in _ISSUED:
        issued_known |= known(column)[1]
    on_day, _ = known("ballots_issued_on_day")
    new["ballots_issued_on_day"] = (on_day + added, issued_known)
    cancelled, has_cancelled = known("ballots_cancelled")
    covered = np.where(has_cancelled, np.minimum(cancelled, added), 0)
    new["ballots_cancelled"] = (cancelled - covered, has_cancelled)
    received, has_received = known("ballots_received")
    # Only where cancelled ballots do not cover the added ones must more have been received.
    shortfall = np.where(issued_known, added - covered, 0)
    new["ballots_received"] = (received + shortfall, has_received & (shortfall > 0))
    columns = []
    for column, (values, where) in new.items():
        series = frame[column].clone()
        if where.any():
            series.scatter(index[where], pl.Series(values[where], dtype=pl.Int64))
        columns.append(series)
    return frame.with_columns(columns)


INJECTORS: Registry[type[Injector]] = Registry("injector", "pollwatch.injectors")


@INJECTORS.register("incremental-stuffing")
@dataclass(frozen=True)
class IncrementalStuffing(Injector):
    """Incremental ballot stuffing: a fraction of the non-voters become ballots for the leader.

    At each affected station ``rint(magnitude * (registered - ballots_cast))`` ballots for the
    leader are added, so turnout and the leader's share rise together along the line Klimek et
    al. (2012) describe (their "incremental fraud", their fraction ``x_i``; here fixed rather
    than drawn per station). ``magnitude`` 0..1.
    """

    magnitude: float = 0.3

    name: ClassVar[str] = "incremental-stuffing"
    calibration_magnitudes: ClassVar[tuple[float, float, float] | None] = (0.05, 0.2, 0.5)
    title: ClassVar[str] = "Incremental ballot stuffing"
    reference: ClassVar[str] = (
        "Klimek, Yegorov, Hanel & Thurner (2012), Statistical detection of systematic election "
        "irregularities, PNAS 109(41), 16469-16473 (incremental fraud)"
    )
    magnitude_meaning: ClassVar[str] = "fraction of the non-voters turned into leader ballots"

    def change(self, counts: StationCounts, rng: np.random.Generator) -> Change:
        return Change(
            added=_fraction(counts.headroom, self.magnitude),
            moved=np.zeros_like(counts.votes),
        )


@INJECTORS.register("extreme-stuffing")
@dataclass(frozen=True)
class ExtremeStuffing(Injector):
    """Extreme ballot stuffing: turnout and the leader's share pushed to near 100 %.

    Every non-voter becomes a ballot for the leader (turnout 100 %) and a fraction
    ``magnitude`` of each opponent's votes moves to the leader (Klimek et al. 2012, "extreme
    fraud": nearly all votes for the leader at nearly full turnout). ``magnitude`` 0..1.
    """

    magnitude: float = 0.5

    name: ClassVar[str] = "extreme-stuffing"
    calibration_magnitudes: ClassVar[tuple[float, float, float] | None] = (0.1, 0.5, 0.9)
    title: ClassVar[str] = "Extreme ballot stuffing"
    reference: ClassVar[str] = (
        "Klimek, Yegorov, Hanel & Thurner (2012), Statistical detection of systematic election "
        "irregularities, PNAS 109(41), 16469-16473 (extreme fraud)"
    )
    magnitude_meaning: ClassVar[str] = "fraction of the opponents' votes moved to the leader"

    def change(self, counts: StationCounts, rng: np.random.Generator) -> Change:
        return Change(
            added=counts.headroom.copy(),
            moved=_fraction(counts.opponents, self.magnitude),
        )


@INJECTORS.register("round-percentages")
@dataclass(frozen=True)
class RoundPercentages(Injector):
    """Whole-percent results: leader ballots added until the leader's share is a round number.

    The leader's share is taken as Kobak et al. (2016) define it, ``leader / (valid + invalid)``
    (``/ valid`` where the station reports no invalid count). At each affected station the
    smallest number ``x >= 0`` of ballots for the leader is added such that the new share
    ``(L + x) / (R + x)`` lies strictly within 0.05 percentage points of a multiple of
    ``magnitude`` percent (1: any whole percent; 5: 5 %, 10 %, ...), i.e. reads as
    ``p.0 %`` to one decimal; as ``x`` only raises the share, this is the nearest such value at
    or above the honest one that the station can reach. Turnout rises by the same ballots and
    never passes 100 %; a station where no ``x`` within that headroom hits is left unchanged
    (it stays labelled). ``magnitude``: a whole number of percent, 1..50.
    """

    magnitude: float = 1.0

    name: ClassVar[str] = "round-percentages"
    calibration_magnitudes: ClassVar[tuple[float, float, float] | None] = (1.0, 5.0, 10.0)
    title: ClassVar[str] = "Leader's share written as a whole percent"
    reference: ClassVar[str] = (
        "Kobak, Shpilkin & Pshenichnikov (2016), Integer percentages as electoral falsification "
        "fingerprints, Annals of Applied Statistics 10(1), 54-73"
    )
    magnitude_range: ClassVar[tuple[float, float]] = (1.0, 50.0)
    magnitude_meaning: ClassVar[str] = "step in percent the leader's share is rounded up to"

    def __post_init__(self) -> None:
        super().__post_init__()
        if float(self.magnitude) != int(self.magnitude):
            raise PollwatchError(
                f"{self.name}: magnitude={self.magnitude} is not a whole number",
                hint="magnitude is a step in whole percent, from 1 to 50",
            )

    def change(self, counts: StationCounts, rng: np.random.Generator) -> Change:
        step = int(self.magnitude)
        leader = counts.votes[:, counts.leader]
        boxes = counts.valid + counts.invalid
        added = np.zeros(len(leader), dtype=np.int64)
        for i in range(len(leader)):
            trial = np.arange(int(counts.headroom[i]) + 1, dtype=np.int64)
            numerator = leader[i] + trial
            denominator = boxes[i] + trial
            # Nearest multiple of ``step`` percent, then the exact-integer 0.05 pp window test
            # (20 |100 k - m n| < n) that the integer-percentages method uses.
            with np.errstate(divide="ignore", invalid="ignore"):
                percent = np.where(denominator > 0, 100 * numerator / denominator, np.nan)
            target = np.rint(np.nan_to_num(percent) / step).astype(np.int64) * step
            hits = (denominator > 0) & (
                20 * np.abs(100 * numerator - target * denominator) < denominator
            )
            if hits.any():
                added[i] = int(trial[int(np.argmax(hits))])
        return Change(added=added, moved=np.zeros_like(counts.votes))


@INJECTORS.register("carousel")
@dataclass(frozen=True)
class Carousel(Injector):
    """Carousel voting: extra voters vote at the affected stations, all for the leader.

    ``rint(magnitude * registered)`` extra ballots for the leader are added at each affected
    station, capped so that turnout does not pass 100 %. ``magnitude`` 0..1 (a fraction of the
    registered voters).
    """

    magnitude: float = 0.1

    name: ClassVar[str] = "carousel"
    calibration_magnitudes: ClassVar[tuple[float, float, float] | None] = (0.01, 0.05, 0.15)
    title: ClassVar[str] = "Carousel voting"
    reference: ClassVar[str] = (
        "multiple voting by bussed voters as reported by observers (e.g. GOLOS, OSCE/ODIHR "
        "Russian Federation State Duma Elections 2011 Final Report); turnout effect as in "
        "Klimek et al. (2012), PNAS 109(41)"
    )
    magnitude_meaning: ClassVar[str] = "extra leader ballots as a fraction of registered voters"

    def change(self, counts: StationCounts, rng: np.random.Generator) -> Change:
        return Change(
            added=np.rint(counts.registered * self.magnitude).astype(np.int64),
            moved=np.zeros_like(counts.votes),
        )


@INJECTORS.register("vote-transfer")
@dataclass(frozen=True)
class VoteTransfer(Injector):
    """Vote transfer at the count: a fraction of each opponent's votes is written to the leader.

    ``rint(magnitude * votes)`` of each opponent's votes move to the leader; ballots cast,
    valid and invalid are unchanged (turnout unchanged). ``magnitude`` 0..1.
    """

    magnitude: float = 0.2

    name: ClassVar[str] = "vote-transfer"
    calibration_magnitudes: ClassVar[tuple[float, float, float] | None] = (0.05, 0.2, 0.5)
    title: ClassVar[str] = "Opponents' votes transferred to the leader"
    reference: ClassVar[str] = (
        "rewriting of the count as discussed by Klimek et al. (2012), PNAS 109(41) and Kobak, "
        "Shpilkin & Pshenichnikov (2016), AoAS 10(1): shares move, turnout does not"
    )
    magnitude_meaning: ClassVar[str] = "fraction of the opponents' votes moved to the leader"

    def change(self, counts: StationCounts, rng: np.random.Generator) -> Change:
        return Change(
            added=np.zeros(len(counts.valid), dtype=np.int64),
            moved=_fraction(counts.opponents, self.magnitude),
        )


@INJECTORS.register("invalidate-opponents")
@dataclass(frozen=True)
class InvalidateOpponents(Injector):
    """Opponents' ballots spoiled at the count: a fraction of their votes become invalid.

    ``rint(magnitude * votes)`` of each opponent's votes are declared invalid: ``valid`` falls
    and ``invalid`` rises by as many, ballots cast are unchanged. Needs stations that report an
    invalid count. ``magnitude`` 0..1.
    """

    magnitude: float = 0.2

    name: ClassVar[str] = "invalidate-opponents"
    calibration_magnitudes: ClassVar[tuple[float, float, float] | None] = (0.05, 0.2, 0.5)
    title: ClassVar[str] = "Opponents' ballots declared invalid"
    reference: ClassVar[str] = (
        "invalidation of ballots at the count as reported by observers (e.g. OSCE/ODIHR "
        "election observation reports); raises the leader's share of valid votes"
    )
    magnitude_meaning: ClassVar[str] = "fraction of the opponents' votes made invalid"
    needs: ClassVar[tuple[str, ...]] = ("invalid",)

    def change(self, counts: StationCounts, rng: np.random.Generator) -> Change:
        return Change(
            added=np.zeros(len(counts.valid), dtype=np.int64),
            moved=np.zeros_like(counts.votes),
            invalidated=_fraction(counts.opponents, self.magnitude),
        )


def compose(
    election: Election, injectors: Sequence[Injector], rng: np.random.Generator
) -> tuple[Election, list[Labels]]:
    """Apply ``injectors`` in order with one generator; the labels of each, in order."""
    labels: list[Labels] = []
    for injector in injectors:
        election, label = injector.apply(election, rng)
        labels.append(label)
    return election, labels
