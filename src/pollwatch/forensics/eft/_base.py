"""What the EFT tests share: constants, the station bootstrap, charts, region tables,
the family's base classes and the per-station values of the shape tests (moments, dip)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl
from scipy import stats

from pollwatch.forensics._shared import shared, sharing
from pollwatch.forensics.base import (
    Method,
    MethodNotApplicable,
    Selection,
    eligible_stations,
)
from pollwatch.forensics.digits import (
    VEGA_LITE,
    benford_second_digit,
    benjamini_hochberg,
    candidate_columns,
)
from pollwatch.forensics.parameters import Boolean, Constraint, Interval
from pollwatch.results.model import Election

MINIMUM_REGION_STATIONS = 10
EFT_REFERENCE = (
    "Mebane, W. R. Jr., Kalinin, K. et al. (2015). Election Forensics Toolkit. USAID / "
    "University of Michigan; R package EFToolkit (Kalinin & Mebane), "
    "github.com/kkalininMI/EFToolkit"
)
BENFORD_SECOND_DIGIT_MEAN = float((np.arange(10) * benford_second_digit()).sum())


# --- shared machinery -----------------------------------------------------------------------
def _resampled_sums(columns: np.ndarray, replicates: int, seed: int, salt: int) -> np.ndarray:
    """Column sums over ``replicates`` bootstrap resamples of the rows (stations).

    ``columns`` is (stations, k); the result is (replicates, k). Every statistic here is a
    function of a few sums, so one resample is a vector of station multiplicities (drawn as
    indices from ``default_rng([seed, salt])`` and counted) times the column matrix. The
    multiplicities depend only on the number of stations and the stream, so inside a suite
    the tests that resample as many stations share them (:mod:`pollwatch.forensics._shared`).
    """
    n = columns.shape[0]
    out = np.empty((replicates, columns.shape[1]))
    if not sharing():
        for start, weights in _weight_chunks(n, replicates, seed, salt):
            out[start : start + weights.shape[0]] = weights.astype(float) @ columns
        return out
    kept = shared(
        lambda: ("eft bootstrap weights", n, replicates, seed, salt),
        lambda: _resample_weights(n, replicates, seed, salt),
    )
    chunk = _chunk(n, replicates)
    for start in range(0, replicates, chunk):
        stop = min(start + chunk, replicates)
        out[start:stop] = _unpack(kept, start, stop, n).astype(float) @ columns
    return out


def _chunk(n: int, replicates: int) -> int:
    """Resamples drawn (and multiplied) at once: about 500,000 multiplicities."""
    return max(1, min(replicates, 500_000 // max(n, 1)))


def _weight_chunks(
    n: int, replicates: int, seed: int, salt: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(first resample, multiplicities) by chunks of resamples: each resample draws ``n``
    station indices uniformly (``integers(0, n)``) and counts them."""
    rng = np.random.default_rng([seed, salt])
    chunk = _chunk(n, replicates)
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        index = rng.integers(0, n, size=(size, n), dtype=np.int32)
        index += (np.arange(size, dtype=np.int32) * n)[:, None]
        yield start, np.bincount(index.ravel(), minlength=size * n).reshape(size, n)


#: the largest multiplicity kept in four bits
_NIBBLE = 15


@dataclass(frozen=True)
class _Weights:
    """Multiplicities of every resample: two to a byte (``packed``, replicates x ceil(n / 2))
    or, should one exceed :data:`_NIBBLE` (about once in 10^14), one to an element."""

    values: np.ndarray
    packed: bool


def _resample_weights(n: int, replicates: int, seed: int, salt: int) -> _Weights:
    """All the multiplicities of :func:`_weight_chunks` (:func:`_unpack` reads them back)."""
    half = (n + 1) // 2
    packed = np.empty((replicates, half), dtype=np.uint8)
    whole: np.ndarray | None = None
    for start, counts in _weight_chunks(n, replicates, seed, salt):
        stop = start + counts.shape[0]
        largest = int(counts.max()) if counts.size else 0
        if whole is None and largest > _NIBBLE:
            whole = np.empty((replicates, n), dtype=np.min_scalar_type(max(largest, 255)))
            whole[:start] = _unpack(_Weights(packed, True), 0, start, n)
        if whole is not None:
            if largest > np.iinfo(whole.dtype).max:
                whole = whole.astype(np.min_scalar_type(largest))
            whole[start:stop] = counts
            continue
        if n % 2:
            counts = np.concatenate([counts, np.zeros((counts.shape[0], 1), counts.dtype)], axis=1)
        pairs = counts.astype(np.uint8).reshape(counts.shape[0], half, 2)
        np.left_shift(pairs[..., 0], 4, out=packed[start:stop])
        packed[start:stop] |= pairs[..., 1]
    return _Weights(whole, False) if whole is not None else _Weights(packed, True)


def _unpack(weights: _Weights, start: int, stop: int, n: int) -> np.ndarray:
    """Resamples ``start:stop`` of ``weights`` (rows x n, unsigned integers)."""
    rows = weights.values[start:stop]
    if not weights.packed:
        return rows
    counts = np.empty((rows.shape[0], rows.shape[1], 2), dtype=np.uint8)
    np.right_shift(rows, 4, out=counts[..., 0])
    np.bitwise_and(rows, 15, out=counts[..., 1])
    return counts.reshape(rows.shape[0], 2 * rows.shape[1])[:, :n]


def _basic_interval(estimate: float, draws: np.ndarray, level: float) -> tuple[float, float]:
    """The bootstrap "basic" interval (2θ - q_high, 2θ - q_low), as EFT's ``boot.ci``."""
    finite = draws[np.isfinite(draws)]
    if finite.size < 2 or not math.isfinite(estimate):
        return (float("nan"), float("nan"))
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return (float(2 * estimate - high), float(2 * estimate - low))


def _two_sided_normal(z: float) -> float:
    return float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else float("nan")


def _turnout_selection(election: Election, extra: Mapping[str, pl.Expr] | None = None) -> Selection:
    return eligible_stations(
        election,
        require=("registered", "ballots_cast"),
        extra={
            "no registered voters": pl.col("registered") > 0,
            "ballots_cast above registered": pl.col("ballots_cast") <= pl.col("registered"),
            **(extra or {}),
        },
    )


def _chart(
    title: str, mark: str, data: list[dict[str, Any]], encoding: dict[str, Any]
) -> dict[str, Any]:
    """A Vega-Lite spec of ``data`` (the stations' bins) drawn as ``mark``."""
    return {
        "$schema": VEGA_LITE,
        "title": title,
        "data": {"values": data},
        "mark": mark,
        "encoding": encoding,
    }


def _histogram(title: str, values: np.ndarray, label: str) -> dict[str, Any]:
    counts, edges = np.histogram(values, bins=100, range=(0.0, 1.0))
    data = [
        {"from": float(edges[i]), "to": float(edges[i + 1]), "stations": int(c)}
        for i, c in enumerate(counts)
    ]
    return _chart(
        title,
        "bar",
        data,
        {
            "x": {"field": "from", "type": "quantitative", "bin": {"binned": True}, "title": label},
            "x2": {"field": "to"},
            "y": {"field": "stations", "type": "quantitative"},
        },
    )


def _heatmap(title: str, x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str) -> dict[str, Any]:
    counts, xedges, yedges = np.histogram2d(x, y, bins=50, range=[[0, 1], [0, 1]])
    data = [
        {
            "x": float(xedges[i]),
            "x2": float(xedges[i + 1]),
            "y": float(yedges[j]),
            "y2": float(yedges[j + 1]),
            "stations": int(counts[i, j]),
        }
        for i, j in zip(*np.nonzero(counts), strict=True)
    ]
    return _chart(
        title,
        "rect",
        data,
        {
            "x": {"field": "x", "type": "quantitative", "title": xlabel},
            "x2": {"field": "x2"},
            "y": {"field": "y", "type": "quantitative", "title": ylabel},
            "y2": {"field": "y2"},
            "color": {"field": "stations", "type": "quantitative", "scale": {"type": "log"}},
        },
    )


def _regions_table(
    rows: list[dict[str, Any]], alpha: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Add BH q-values to per-region rows with a ``p_value``; the regions with q < alpha."""
    tested = [r for r in rows if r.get("p_value") is not None and math.isfinite(r["p_value"])]
    for row, q in zip(tested, benjamini_hochberg([r["p_value"] for r in tested]), strict=True):
        row["q_value"] = q
        row["flagged"] = q < alpha
    return rows, sorted(r["region"] for r in tested if r["flagged"])


class _EFTFamily(Method):
    """The base of every EFT test. A method's code digest covers the modules of its classes
    (``pollwatch.calibration.harness.method_code_digest``), so the helpers here, shared by
    the family, are part of each test's digest, and each test's own module of its own alone.
    """


@dataclass(frozen=True)
class _EFTMethod(_EFTFamily):
    """Parameters every EFT test shares."""

    replicates: int = 1000
    seed: int = 0
    level: float = 0.95
    alpha: float = 0.05
    by_region: bool = False

    reference: ClassVar[str] = EFT_REFERENCE
    stochastic: ClassVar[bool] = True
    conformance_parameters: ClassVar[Mapping[str, Any]] = {"replicates": 100}
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "replicates": Interval(int, 10, None),
        "seed": Interval(int, 0, None),
        "level": Interval(float, 0, 1, closed="neither"),
        "alpha": Interval(float, 0, 1, closed="neither"),
        "by_region": Boolean(),
    }


def _region_groups(frame: pl.DataFrame) -> list[tuple[str, np.ndarray]]:
    """(region, row indices) for every region with enough stations, sorted by name."""
    regions = frame["region"].fill_null("(no region)").to_numpy()
    groups = []
    for region in sorted(set(regions.tolist())):
        index = np.flatnonzero(regions == region)
        if index.size >= MINIMUM_REGION_STATIONS:
            groups.append((str(region), index))
    return groups


def _require_stations(
    election: Election, available: int, minimum: int, which: str, hint: str
) -> None:
    """Refuse an election with fewer than ``minimum`` usable stations (``which`` says which)."""
    if available < minimum:
        raise MethodNotApplicable(
            f"election {election.id!r}: fewer than {minimum} stations {which}", hint=hint
        )


def _variable_values(
    election: Election, variable: str
) -> tuple[np.ndarray, pl.DataFrame, Selection, str]:
    """Per-station values of ``variable`` (turnout, or a candidate's vote share), sorted by id,
    with the stations' regions (the frame) and the selection (its stations are that frame:
    what describes it and splits it by region). Shared by the moment and dip tests of
    one suite."""

    def compute() -> tuple[np.ndarray, pl.DataFrame, Selection, str]:
        values, frame, selection, label = _compute_variable_values(election, variable)
        slim = frame.select("region")
        return values, slim, Selection(stations=slim, removed=selection.removed), label

    return shared(lambda: ("eft variable", election.content_digest(), variable), compute)


def _compute_variable_values(
    election: Election, variable: str
) -> tuple[np.ndarray, pl.DataFrame, Selection, str]:
    if variable == "turnout":
        selection = _turnout_selection(election)
        frame = selection.stations.sort("station_id")
        values = frame.select(Election.turnout_expr()).to_series().to_numpy()
        return values.astype(float), frame, selection, "turnout (ballots_cast / registered)"
    column = candidate_columns(election, variable)[0]
    selection = eligible_stations(
        election,
        require=("valid",),
        extra={
            "no valid ballots": pl.col("valid") > 0,
            f"missing {column}": pl.col(column).is_not_null(),
        },
    )
    frame = selection.stations.sort("station_id")
    values = frame.select(Election.vote_share_expr(column)).to_series().to_numpy()
    name = next(c.name for c in election.meta.candidates if c.column == column)
    return values.astype(float), frame, selection, f"vote share of {name} (votes / valid)"


def _other_variables(election: Election, variable: str) -> list[tuple[str, np.ndarray]]:
    """Turnout and every candidate's share, for the details (those the election has)."""
    out: list[tuple[str, np.ndarray]] = []
    for label in ["turnout", *(c.name for c in election.meta.candidates)]:
        if label == variable:
            continue
        try:
            values, _, _, _ = _variable_values(election, label)
        except MethodNotApplicable:
            continue
        out.append((label, values))
    return out
