"""The Election Forensics Toolkit tests (Mebane, Kalinin et al.), one method per test.

Source: Walter R. Mebane, Jr., Kirill Kalinin et al., *Election Forensics Toolkit*
(USAID / University of Michigan, 2015), and its R package EFToolkit
(github.com/kkalininMI/EFToolkit, ``BasicElectionForensics``), which this module follows:

==================  ====================================================================  ========
method              statistic                                                             expected
==================  ====================================================================  ========
``eft-2bl``         mean second significant digit of counts of at least 10 votes          4.187
``eft-lastc``       mean last digit of counts                                             4.5
``eft-c05s``        share of counts whose last digit is 0 or 5                            0.2
``eft-p05s``        share of percentages (rounded to whole percent) ending in 0 or 5      0.2
``eft-skew``        skewness m3 / m2^1.5 of turnout (or a vote share)                     descr.
``eft-kurt``        kurtosis m4 / m2^2 (normal = 3) of turnout (or a vote share)          descr.
``eft-dip``         Hartigan's dip test of unimodality of turnout (or a vote share)       p-value
``eft-sobyanin``    slope of the leader's votes / registered on turnout, minus the        0
                    leader's mean share of ballots (Sobyanin & Sukhovolsky 1995)
``eft-correlation`` Pearson correlation of turnout and the leader's vote share            0
==================  ====================================================================  ========

4.187 is the mean of Benford's second-digit law, P(d) = sum_k log10(1 + 1/(10k + d)).

Inference. EFT reports each statistic with a nonparametric bootstrap "basic" interval
(resampling polling stations) and colours a cell when the interval excludes the expected value.
pollwatch gives the same bootstrap interval (``replicates``, ``seed``, ``level``) and adds a
p-value where a calibrated one exists: for LastC, C05s and P05s a z-test of the mean against
its expectation with the sample standard deviation (station-clustered when several counts per
station are pooled); for the Sobyanin slope a z-test with the bootstrap standard error; for the
correlation Pearson's t-test; for the dip test the tabulated p-value of the ``diptest`` package
(as R's ``dip.test``). 2BL, skewness and kurtosis are descriptive (interval, no p-value; 2BL's
z-test against 4.187 is a detail, see the pitfalls). With ``by_region=True`` each test also
runs in every region, and Benjamini-Hochberg q-values across regions say which regions stand
out at ``alpha`` (``details["regions"]``, ``details["flagged_regions"]``).

Definition choices (pollwatch):

* digit tests use one candidate's counts, the election's leader by default (EFT tabulates every
  candidate; all of them are in ``details["series"]``, with ``ballots_cast`` as EFT's
  "Turnout" row); ``candidate="all"`` pools every candidate's counts;
* LastC and C05s leave out counts below ``minimum_count`` (default 10) because a one-digit
  count's last digit is the count itself; ``minimum_count=0`` reproduces EFT, which keeps all;
* percentages are ``100 * votes / valid`` (pollwatch's vote share; EFT divides by ballots
  cast) and ``100 * turnout``, rounded half to even as R's ``round``;
* turnout is ``ballots_cast / registered``; stations with ``ballots_cast > registered`` are
  left out (EFT caps turnout at 1).

Known pitfalls. The digit tests' expectations hold only for counts spread over many tens of
votes. Benford's law is not a law of vote counts (Deckert, Myagkov & Ordeshook 2011, Political
Analysis 19(3)): binomial counts at stations of similar size miss 4.187 in 7 of the conformance
suite's 12 simulated clean elections, hence no 2BL p-value; Mebane reads 2BL departures as signs
of strategic behaviour as much as of manipulation. Minor candidates' counts and percentages are
small and fail every digit test in honest elections. Skewness, kurtosis, multimodality, slope
and correlation all respond to honest heterogeneity between regions (urban and rural turnout,
regional parties): compare regions (``by_region``) and elections before reading any of them as
an anomaly. With ~100,000 stations every departure, however small, is "significant"; read the
effect and its interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl
from scipy import stats

from pollwatch.errors import PollwatchError
from pollwatch.forensics._shared import shared, sharing
from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    Selection,
    eligible_stations,
)
from pollwatch.forensics.digits import (
    VEGA_LITE,
    benford_second_digit,
    benjamini_hochberg,
    candidate_columns,
    digit_chart,
    last_digits,
    second_digits,
)
from pollwatch.forensics.parameters import Boolean, Constraint, Interval, Text
from pollwatch.results.model import Election

__all__ = [
    "EFTCorrelation",
    "EFTDip",
    "EFTKurtosis",
    "EFTLastDigit",
    "EFTPercent05",
    "EFTSecondDigit",
    "EFTSkewness",
    "EFTSobyanin",
    "EFTZeroFive",
]

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


def _histogram(title: str, values: np.ndarray, label: str) -> dict[str, Any]:
    counts, edges = np.histogram(values, bins=100, range=(0.0, 1.0))
    data = [
        {"from": float(edges[i]), "to": float(edges[i + 1]), "stations": int(c)}
        for i, c in enumerate(counts)
    ]
    return {
        "$schema": VEGA_LITE,
        "title": title,
        "data": {"values": data},
        "mark": "bar",
        "encoding": {
            "x": {"field": "from", "type": "quantitative", "bin": {"binned": True}, "title": label},
            "x2": {"field": "to"},
            "y": {"field": "stations", "type": "quantitative"},
        },
    }


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
    return {
        "$schema": VEGA_LITE,
        "title": title,
        "data": {"values": data},
        "mark": "rect",
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": xlabel},
            "x2": {"field": "x2"},
            "y": {"field": "y", "type": "quantitative", "title": ylabel},
            "y2": {"field": "y2"},
            "color": {"field": "stations", "type": "quantitative", "scale": {"type": "log"}},
        },
    }


def _regions_table(
    rows: list[dict[str, Any]], alpha: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Add BH q-values to per-region rows with a ``p_value``; the regions with q < alpha."""
    tested = [r for r in rows if r.get("p_value") is not None and math.isfinite(r["p_value"])]
    for row, q in zip(tested, benjamini_hochberg([r["p_value"] for r in tested]), strict=True):
        row["q_value"] = q
        row["flagged"] = q < alpha
    return rows, sorted(r["region"] for r in tested if r["flagged"])


@dataclass(frozen=True)
class _EFTMethod(Method):
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


# --- digit tests ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _DigitSeries:
    """Per-station sums of digit values and numbers of counts that enter the test."""

    label: str
    sums: np.ndarray
    counts: np.ndarray


def _ratio_test(series: _DigitSeries, expected: float, level: float) -> dict[str, Any]:
    """Mean over counts, its station-clustered standard error, z and two-sided p."""
    used = series.counts > 0
    s, c = series.sums[used].astype(float), series.counts[used].astype(float)
    n_stations, n_counts = int(used.sum()), int(c.sum())
    if n_counts < 2:
        return {"counts": n_counts, "stations": n_stations, "mean": None, "p_value": None}
    mean = float(s.sum() / n_counts)
    residual = s - mean * c
    variance = n_stations / max(n_stations - 1, 1) * float((residual**2).sum()) / n_counts**2
    se = math.sqrt(variance)
    z = (mean - expected) / se if se > 0 else float("nan")
    half = float(stats.norm.ppf((1 + level) / 2)) * se
    return {
        "counts": n_counts,
        "stations": n_stations,
        "mean": mean,
        "expected": expected,
        "standard_error": se,
        "z": z,
        "p_value": _two_sided_normal(z),
        "interval": [mean - half, mean + half],
    }


@dataclass(frozen=True)
class _DigitMeanMethod(_EFTMethod):
    candidate: str = "leader"

    expected: ClassVar[float]
    statistic_label: ClassVar[str]
    definition: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    #: whether the expectation is a calibrated null for honest counts (p-value reported)
    calibrated: ClassVar[bool] = True
    uncalibrated_note: ClassVar[str] = ""
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        **_EFTMethod.parameter_constraints,
        # "leader", "all" or a candidate's name or column (checked against the election)
        "candidate": Text(),
    }

    # the subclasses say what one count contributes
    def _values(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _chart_digits(self, frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
        """The digits behind the statistic (last digits here), for the chart."""
        counts = np.concatenate(
            [frame[c].drop_nulls().to_numpy().astype(np.int64) for c in columns]
        )
        _, used = self._values(counts)
        return last_digits(counts[used])

    def _count_series(self, frame: pl.DataFrame, column: str, label: str) -> _DigitSeries:
        raw = frame[column].to_numpy()
        known = ~np.isnan(raw.astype(float))
        counts = np.where(known, raw, 0).astype(np.int64)
        sums, used = self._values(counts)
        used = used & known
        return _DigitSeries(label, np.where(used, sums, 0), used.astype(np.int64))

    def _all_series(self, election: Election, frame: pl.DataFrame) -> list[_DigitSeries]:
        series = [self._count_series(frame, c.column, c.name) for c in election.meta.candidates]
        if frame["ballots_cast"].null_count() < frame.height:
            series.append(self._count_series(frame, "ballots_cast", "ballots_cast"))
        return series

    def _main_series(
        self, election: Election, all_series: list[_DigitSeries]
    ) -> tuple[_DigitSeries, list[str]]:
        columns = candidate_columns(election, self.candidate)
        names = [c.name for c in election.meta.candidates if c.column in columns]
        chosen = [s for s in all_series if s.label in names]
        sums = np.sum([s.sums for s in chosen], axis=0)
        counts = np.sum([s.counts for s in chosen], axis=0)
        label = names[0] if len(names) == 1 else "all candidates"
        return _DigitSeries(label, sums, counts), names

    def _selection(self, election: Election) -> Selection:
        return eligible_stations(election)

    def run(self, election: Election) -> MethodResult:
        selection = self._selection(election)
        frame = selection.stations.sort("station_id")
        all_series = self._all_series(election, frame)
        main, names = self._main_series(election, all_series)
        test = _ratio_test(main, self.expected, self.level)
        if test["mean"] is None:
            raise MethodNotApplicable(
                f"election {election.id!r}: fewer than two usable counts for {', '.join(names)}",
                hint="choose another candidate (candidate=...) or lower minimum_count",
            )
        used = main.counts > 0
        sums, counts = main.sums[used].astype(float), main.counts[used].astype(float)
        resampled = _resampled_sums(np.column_stack([sums, counts]), self.replicates, self.seed, 0)
        draws = resampled[:, 0] / np.maximum(resampled[:, 1], 1)
        interval = _basic_interval(test["mean"], draws, self.level)
        details: dict[str, Any] = {
            "expected": self.expected,
            "counts": test["counts"],
            "standard_error": test["standard_error"],
            "z": test["z"],
            "candidates_tested": names,
            "series": {s.label: _ratio_test(s, self.expected, self.level) for s in all_series},
        }
        if self.by_region:
            rows = []
            for region, index in _region_groups(frame):
                sub = _DigitSeries(main.label, main.sums[index], main.counts[index])
                row = _ratio_test(sub, self.expected, self.level)
                rows.append({"region": region, **row})
            details["regions"], details["flagged_regions"] = _regions_table(rows, self.alpha)
        charts: dict[str, Mapping[str, Any]] = {}
        columns = candidate_columns(election, self.candidate)
        shares = _digit_histogram(self._chart_digits(frame, columns))
        charts["digits"] = digit_chart(
            f"{self.title}: {main.label}", shares, self._digit_expected()
        )
        p_value: float | None = float(test["p_value"])
        p_words = (
            "two-sided z-test of the mean against its expectation, station-clustered standard error"
        )
        if not self.calibrated:
            details["p_value_against_expectation"] = p_value
            p_value = None
            p_words = self.uncalibrated_note
        return self.result(
            election,
            statistic_name=self.statistic_label,
            statistic=test["mean"],
            sample_size=int(used.sum()),
            p_value=p_value,
            alpha=self.alpha,
            significant=None if p_value is None else p_value < self.alpha,
            effect_name=f"{self.statistic_label} minus its expectation {self.expected:.4g}",
            effect=test["mean"] - self.expected,
            interval=(interval[0] - self.expected, interval[1] - self.expected),
            interval_level=self.level,
            details=details,
            charts=charts,
            definitions={
                "statistic": self.definition,
                "counts": f"{', '.join(names)} ({test['counts']:,} values)",
                "interval": f"bootstrap basic interval, {self.replicates} resamples of stations",
                "p-value": p_words,
                "filters": selection.describe(),
            },
        )

    def _digit_expected(self) -> list[float]:
        return [0.1] * 10


def _digit_histogram(digits: np.ndarray) -> list[float]:
    frequencies = np.bincount(digits, minlength=10)[:10]
    total = frequencies.sum()
    return [float(f / total) if total else 0.0 for f in frequencies]


@METHODS.register("eft-2bl")
@dataclass(frozen=True)
class EFTSecondDigit(_DigitMeanMethod):
    """2BL: mean second significant digit of vote counts of at least 10 (Benford: 4.187)."""

    name: ClassVar[str] = "eft-2bl"
    title: ClassVar[str] = "Second-digit mean of vote counts (EFT 2BL)"
    expected: ClassVar[float] = BENFORD_SECOND_DIGIT_MEAN
    statistic_label: ClassVar[str] = "mean second digit"
    calibrated: ClassVar[bool] = False
    #: manipulation can move the mean either way from its clean value
    calibration_tail: ClassVar[str] = "two-sided"
    uncalibrated_note: ClassVar[str] = (
        "none: Benford's second-digit law is not the distribution of honest vote counts "
        "(counts concentrated within one order of magnitude depart from it), so, as in EFT, "
        "the result is the mean with its interval; the z-test against 4.187 is in "
        "details['p_value_against_expectation'] and per region"
    )
    definition: ClassVar[str] = (
        "mean second significant digit of counts of at least 10 votes; Benford's second-digit "
        "law gives 4.187"
    )

    def _values(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return second_digits(counts), counts >= 10

    def _chart_digits(self, frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
        counts = np.concatenate(
            [frame[c].drop_nulls().to_numpy().astype(np.int64) for c in columns]
        )
        return second_digits(counts[counts >= 10])

    def _digit_expected(self) -> list[float]:
        return [float(p) for p in benford_second_digit()]


@dataclass(frozen=True)
class _LastDigitBase(_DigitMeanMethod):
    minimum_count: int = 10

    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        **_DigitMeanMethod.parameter_constraints,
        "minimum_count": Interval(int, 0, None),
    }


@METHODS.register("eft-lastc")
@dataclass(frozen=True)
class EFTLastDigit(_LastDigitBase):
    """LastC: mean last digit of vote counts (uniform last digits: 4.5)."""

    name: ClassVar[str] = "eft-lastc"
    in_comparison: ClassVar[bool] = True
    title: ClassVar[str] = "Last-digit mean of vote counts (EFT LastC)"
    expected: ClassVar[float] = 4.5
    statistic_label: ClassVar[str] = "mean last digit"
    definition: ClassVar[str] = "mean last digit of counts; uniform last digits give 4.5"

    def _values(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return last_digits(counts), counts >= self.minimum_count


@METHODS.register("eft-c05s")
@dataclass(frozen=True)
class EFTZeroFive(_LastDigitBase):
    """C05s: share of vote counts whose last digit is 0 or 5 (uniform: 0.2)."""

    name: ClassVar[str] = "eft-c05s"
    in_comparison: ClassVar[bool] = True
    title: ClassVar[str] = "Counts ending in 0 or 5 (EFT C05s)"
    expected: ClassVar[float] = 0.2
    statistic_label: ClassVar[str] = "share of counts ending in 0 or 5"
    definition: ClassVar[str] = "share of counts whose last digit is 0 or 5; uniform gives 0.2"

    def _values(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (counts % 5 == 0).astype(np.int64), counts >= self.minimum_count


def _percent_last_digit_05(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    percent = np.round(100 * np.minimum(numerator / denominator, 1.0)).astype(np.int64)
    hits: np.ndarray = (percent % 5 == 0).astype(np.int64)
    return hits


@METHODS.register("eft-p05s")
@dataclass(frozen=True)
class EFTPercent05(_DigitMeanMethod):
    """P05s: share of whole-number vote-share percentages ending in 0 or 5 (uniform: 0.2)."""

    name: ClassVar[str] = "eft-p05s"
    title: ClassVar[str] = "Percentages ending in 0 or 5 (EFT P05s)"
    expected: ClassVar[float] = 0.2
    statistic_label: ClassVar[str] = "share of percentages ending in 0 or 5"
    definition: ClassVar[str] = (
        "share of stations whose vote share, 100 * votes / valid rounded to a whole percent "
        "(half to even), ends in 0 or 5; uniform gives 0.2"
    )
    needs: ClassVar[tuple[str, ...]] = ("valid",)

    def _selection(self, election: Election) -> Selection:
        return eligible_stations(
            election, require=("valid",), extra={"no valid ballots": pl.col("valid") > 0}
        )

    def _count_series(self, frame: pl.DataFrame, column: str, label: str) -> _DigitSeries:
        votes = frame[column].cast(pl.Float64).to_numpy()
        valid = frame["valid"].cast(pl.Float64).to_numpy()
        known = ~np.isnan(votes)
        hits = _percent_last_digit_05(np.where(known, votes, 0.0), valid)
        return _DigitSeries(label, np.where(known, hits, 0), known.astype(np.int64))

    def _chart_digits(self, frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
        parts = []
        for column in columns:
            known = frame.filter(pl.col(column).is_not_null())
            share = known[column].cast(pl.Float64).to_numpy() / known["valid"].to_numpy()
            parts.append(np.round(100 * np.minimum(share, 1.0)).astype(np.int64) % 10)
        return np.concatenate(parts)

    def _all_series(self, election: Election, frame: pl.DataFrame) -> list[_DigitSeries]:
        series = [self._count_series(frame, c.column, c.name) for c in election.meta.candidates]
        turnout_known = (
            frame["registered"].is_not_null()
            & frame["ballots_cast"].is_not_null()
            & (frame["registered"] > 0)
            & (frame["ballots_cast"] <= frame["registered"])
        ).to_numpy()
        if turnout_known.any():
            ballots = frame["ballots_cast"].cast(pl.Float64).fill_null(0).to_numpy()
            registered = frame["registered"].cast(pl.Float64).fill_null(1).to_numpy()
            hits = _percent_last_digit_05(ballots, np.maximum(registered, 1))
            series.append(
                _DigitSeries("turnout", np.where(turnout_known, hits, 0), turnout_known.astype(int))
            )
        return series


# --- distribution tests: skewness, kurtosis, dip ------------------------------------------------
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


def _central_moments(sums: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m2, m3, m4 from the power sums (columns y, y^2, y^3, y^4) of n values."""
    mean, r2, r3, r4 = (sums[..., k] / n for k in range(4))
    m2 = r2 - mean**2
    m3 = r3 - 3 * mean * r2 + 2 * mean**3
    m4 = r4 - 4 * mean * r3 + 6 * mean**2 * r2 - 3 * mean**4
    return m2, m3, m4


def _skewness(sums: np.ndarray, n: int) -> np.ndarray:
    """m3 / m2^1.5 (R ``moments::skewness``) from power sums."""
    m2, m3, _ = _central_moments(sums, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = m3 / m2**1.5
    return result


def _kurtosis(sums: np.ndarray, n: int) -> np.ndarray:
    """m4 / m2^2, 3 for a normal distribution (R ``moments::kurtosis``), from power sums."""
    m2, _, m4 = _central_moments(sums, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = m4 / m2**2
    return result


def _power_columns(x: np.ndarray) -> np.ndarray:
    """(y, y^2, y^3, y^4) of the values centred at their mean (for numerical accuracy)."""
    y = x - x.mean()
    y2 = y * y
    return np.column_stack([y, y2, y2 * y, y2 * y2])


@dataclass(frozen=True)
class _MomentMethod(_EFTMethod):
    variable: str = "turnout"

    needs: ClassVar[tuple[str, ...]] = ("registered", "ballots_cast")
    statistic_label: ClassVar[str]
    #: manipulation can move a moment either way from its clean value
    calibration_tail: ClassVar[str] = "two-sided"
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        **_EFTMethod.parameter_constraints,
        # "turnout" or a candidate whose vote share is the variable
        "variable": Text(),
    }

    def _moment(self, sums: np.ndarray, n: int) -> np.ndarray:
        raise NotImplementedError

    def _value(self, x: np.ndarray) -> float:
        return float(self._moment(_power_columns(x).sum(axis=0), x.size))

    def _estimate(self, x: np.ndarray, salt: int) -> tuple[float, tuple[float, float]]:
        columns = _power_columns(x)
        estimate = float(self._moment(columns.sum(axis=0), x.size))
        resampled = _resampled_sums(columns, self.replicates, self.seed, salt)
        draws = self._moment(resampled, x.size)
        return estimate, _basic_interval(estimate, draws, self.level)

    def run(self, election: Election) -> MethodResult:
        x, frame, selection, label = _variable_values(election, self.variable)
        if x.size < 3:
            raise MethodNotApplicable(
                f"election {election.id!r}: fewer than 3 stations for {label}",
                hint="the moments need more stations",
            )
        estimate, interval = self._estimate(x, 0)
        function = self._value
        details: dict[str, Any] = {
            "variable": label,
            "others": {
                name: float(function(v)) for name, v in _other_variables(election, self.variable)
            },
        }
        if self.by_region:
            rows = []
            for k, (region, index) in enumerate(_region_groups(frame), start=1):
                value, region_interval = self._estimate(x[index], k)
                rows.append(
                    {
                        "region": region,
                        "stations": int(index.size),
                        "estimate": value,
                        "interval": list(region_interval),
                    }
                )
            details["regions"] = rows
        return self.result(
            election,
            statistic_name=f"{self.statistic_label} of {label}",
            statistic=estimate,
            sample_size=int(x.size),
            effect_name=self.statistic_label,
            effect=estimate,
            interval=interval,
            interval_level=self.level,
            details=details,
            charts={"distribution": _histogram(label, x, label)},
            definitions={
                "variable": label,
                "statistic": self.statistic_label,
                "interval": f"bootstrap basic interval, {self.replicates} resamples of stations",
                "filters": selection.describe(),
            },
        )


@METHODS.register("eft-skew")
@dataclass(frozen=True)
class EFTSkewness(_MomentMethod):
    """Skew: skewness of turnout or of a vote share (descriptive, bootstrap interval)."""

    name: ClassVar[str] = "eft-skew"
    title: ClassVar[str] = "Skewness of turnout or vote share (EFT Skew)"
    statistic_label: ClassVar[str] = "skewness m3 / m2^1.5"

    def _moment(self, sums: np.ndarray, n: int) -> np.ndarray:
        return _skewness(sums, n)


@METHODS.register("eft-kurt")
@dataclass(frozen=True)
class EFTKurtosis(_MomentMethod):
    """Kurt: kurtosis of turnout or of a vote share (normal = 3; descriptive)."""

    name: ClassVar[str] = "eft-kurt"
    title: ClassVar[str] = "Kurtosis of turnout or vote share (EFT Kurt)"
    statistic_label: ClassVar[str] = "kurtosis m4 / m2^2"

    def _moment(self, sums: np.ndarray, n: int) -> np.ndarray:
        return _kurtosis(sums, n)


def dip_test(values: np.ndarray) -> tuple[float, float]:
    """Hartigan's dip statistic and its tabulated p-value (``diptest`` package)."""
    try:
        import diptest
    except ImportError:  # pragma: no cover - depends on the environment
        raise PollwatchError(
            "the dip test needs the 'diptest' package", hint="pip install diptest"
        ) from None
    with warnings.catch_warnings():
        # beyond 72,000 values the package extrapolates its table of critical values and
        # warns; the definitions say so instead (the library never prints)
        warnings.simplefilter("ignore", UserWarning)
        dip, p_value = diptest.diptest(np.sort(values), sort_x=False)
    return float(dip), float(p_value)


@METHODS.register("eft-dip")
@dataclass(frozen=True)
class EFTDip(Method):
    """DipT: Hartigan's dip test of unimodality of turnout or of a vote share."""

    name: ClassVar[str] = "eft-dip"
    title: ClassVar[str] = "Dip test of unimodality (EFT DipT)"
    reference: ClassVar[str] = (
        EFT_REFERENCE + "; Hartigan, J. A. and Hartigan, P. M. (1985). The Dip Test of "
        "Unimodality. Annals of Statistics 13(1): 70-84"
    )
    needs: ClassVar[tuple[str, ...]] = ("registered", "ballots_cast")
    stochastic: ClassVar[bool] = False
    conformance_parameters: ClassVar[Mapping[str, Any]] = {}

    variable: str = "turnout"
    alpha: float = 0.05
    by_region: bool = False

    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        # "turnout" or a candidate whose vote share is the variable
        "variable": Text(),
        "alpha": Interval(float, 0, 1, closed="neither"),
        "by_region": Boolean(),
    }

    def run(self, election: Election) -> MethodResult:
        x, frame, selection, label = _variable_values(election, self.variable)
        if x.size < 4:
            raise MethodNotApplicable(
                f"election {election.id!r}: fewer than 4 stations for {label}",
                hint="the dip test needs more stations",
            )
        dip, p_value = dip_test(x)
        details: dict[str, Any] = {
            "variable": label,
            "others": {
                name: dict(zip(("dip", "p_value"), dip_test(v), strict=True))
                for name, v in _other_variables(election, self.variable)
            },
        }
        if self.by_region:
            rows = []
            for region, index in _region_groups(frame):
                region_dip, region_p = dip_test(x[index])
                rows.append(
                    {
                        "region": region,
                        "stations": int(index.size),
                        "dip": region_dip,
                        "p_value": region_p,
                    }
                )
            details["regions"], details["flagged_regions"] = _regions_table(rows, self.alpha)
        return self.result(
            election,
            statistic_name=f"dip of {label}",
            statistic=dip,
            sample_size=int(x.size),
            p_value=p_value,
            alpha=self.alpha,
            significant=p_value < self.alpha,
            details=details,
            charts={"distribution": _histogram(label, x, label)},
            definitions={
                "variable": label,
                "statistic": "Hartigan's dip: largest distance between the empirical "
                "distribution and the closest unimodal distribution",
                "p-value": "interpolated from the tabulated null (uniform) distribution, as R's "
                "dip.test (beyond 72,000 stations the table is extrapolated); small p means "
                "more than one mode",
                "filters": selection.describe(),
            },
        )


# --- turnout and vote share: Sobyanin-Sukhovolsky slope, correlation ---------------------------
def _turnout_and_votes(
    election: Election, candidate: str
) -> tuple[pl.DataFrame, Selection, list[str]]:
    columns = candidate_columns(election, candidate)
    if len(columns) != 1:
        raise PollwatchError(f"candidate must name one candidate or 'leader', not {candidate!r}")
    selection = _turnout_selection(
        election,
        extra={
            "no valid ballots": pl.col("valid") > 0,
            f"missing {columns[0]}": pl.col(columns[0]).is_not_null(),
        },
    )
    return selection.stations.sort("station_id"), selection, columns


def _pair_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x, y, x^2, y^2, xy) of the values centred at their means."""
    xc, yc = x - x.mean(), y - y.mean()
    return np.column_stack([xc, yc, xc * xc, yc * yc, xc * yc])


def _covariances(sums: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """var(x), var(y), cov(x, y) (divided by n) from the sums of :func:`_pair_columns`."""
    mx, my = sums[..., 0] / n, sums[..., 1] / n
    return (
        sums[..., 2] / n - mx**2,
        sums[..., 3] / n - my**2,
        sums[..., 4] / n - mx * my,
    )


def _slopes(sums: np.ndarray, n: int) -> np.ndarray:
    """Least-squares slopes of y on x from pair sums."""
    vx, _, cxy = _covariances(sums, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = cxy / vx
    return result


def _correlations(sums: np.ndarray, n: int) -> np.ndarray:
    """Pearson correlations from pair sums."""
    vx, vy, cxy = _covariances(sums, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = cxy / np.sqrt(vx * vy)
    return result


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    return float(_slopes(_pair_columns(x, y).sum(axis=0), x.size))


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    return float(_correlations(_pair_columns(x, y).sum(axis=0), x.size))


@dataclass(frozen=True)
class _TurnoutShareMethod(_EFTMethod):
    candidate: str = "leader"

    needs: ClassVar[tuple[str, ...]] = ("registered", "ballots_cast", "valid")
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        **_EFTMethod.parameter_constraints,
        # "leader" or a candidate's name or column (checked against the election)
        "candidate": Text(),
    }

    def _arrays(self, frame: pl.DataFrame, column: str) -> dict[str, np.ndarray]:
        def numbers(name: str) -> np.ndarray:
            return frame[name].cast(pl.Float64).to_numpy()

        registered, ballots = numbers("registered"), numbers("ballots_cast")
        votes, valid = numbers(column), numbers("valid")
        return {
            "turnout": ballots / registered,
            "share": votes / valid,
            "electorate_share": votes / registered,
            "ballot_share": votes / ballots,
        }


@METHODS.register("eft-sobyanin")
@dataclass(frozen=True)
class EFTSobyanin(_TurnoutShareMethod):
    """Sobyanin-Sukhovolsky: slope of the leader's votes / registered on turnout.

    Without any relation between turnout and the leader's share of ballots, the slope equals
    the leader's mean share of ballots; the effect is the slope minus that mean (positive: the
    leader gains more than its share of each extra ballot).
    """

    name: ClassVar[str] = "eft-sobyanin"
    title: ClassVar[str] = "Sobyanin-Sukhovolsky slope of votes on turnout (EFT Sobyanin)"
    reference: ClassVar[str] = (
        EFT_REFERENCE + "; Sobyanin, A. A. and Sukhovolsky, V. G. (1995). Democracy Restricted "
        "by Falsifications. Moscow"
    )

    def _estimate(
        self, a: Mapping[str, np.ndarray], salt: int
    ) -> tuple[float, float, tuple[float, float], float, tuple[float, float]]:
        t, e, b = a["turnout"], a["electorate_share"], a["ballot_share"]
        n = t.size
        columns = np.column_stack([_pair_columns(t, e), b])
        slope = float(_slopes(columns[:, :5].sum(axis=0), n))
        effect = slope - float(b.mean())
        resampled = _resampled_sums(columns, self.replicates, self.seed, salt)
        slopes = _slopes(resampled[:, :5], n)
        draws = np.column_stack([slopes, slopes - resampled[:, 5] / n])
        se = float(np.nanstd(draws[:, 1], ddof=1))
        p_value = _two_sided_normal(effect / se) if se > 0 else float("nan")
        return (
            slope,
            effect,
            _basic_interval(effect, draws[:, 1], self.level),
            p_value,
            _basic_interval(slope, draws[:, 0], self.level),
        )

    def run(self, election: Election) -> MethodResult:
        frame, selection, columns = _turnout_and_votes(election, self.candidate)
        if frame.height < 3:
            raise MethodNotApplicable(
                f"election {election.id!r}: fewer than 3 stations with turnout and votes",
                hint="the regression needs more stations",
            )
        a = self._arrays(frame, columns[0])
        slope, effect, interval, p_value, slope_interval = self._estimate(a, 0)
        others = {}
        for c in election.meta.candidates:
            b = self._arrays(frame, c.column)
            ok = np.isfinite(b["electorate_share"])
            others[c.name] = _slope(b["turnout"][ok], b["electorate_share"][ok])
        eft_variant = _slope(a["turnout"], a["share"]) - float(a["share"].mean())
        details: dict[str, Any] = {
            "slope": slope,
            "slope_interval": list(slope_interval),
            "mean_ballot_share": float(a["ballot_share"].mean()),
            "eft_measure": eft_variant,
            "slopes_of_all_candidates": others,
        }
        if self.by_region:
            rows = []
            for k, (region, index) in enumerate(_region_groups(frame), start=1):
                sub = {name: v[index] for name, v in a.items()}
                r_slope, r_effect, r_interval, r_p, _ = self._estimate(sub, k)
                rows.append(
                    {
                        "region": region,
                        "stations": int(index.size),
                        "slope": r_slope,
                        "estimate": r_effect,
                        "interval": list(r_interval),
                        "p_value": r_p,
                    }
                )
            details["regions"], details["flagged_regions"] = _regions_table(rows, self.alpha)
        name = next(c.name for c in election.meta.candidates if c.column == columns[0])
        return self.result(
            election,
            statistic_name=f"slope of {name}'s votes / registered on turnout",
            statistic=slope,
            sample_size=frame.height,
            p_value=p_value,
            alpha=self.alpha,
            significant=bool(p_value < self.alpha),
            effect_name="slope minus mean share of ballots",
            effect=effect,
            interval=interval,
            interval_level=self.level,
            details=details,
            charts={
                "turnout_share": _heatmap(
                    "Turnout and share of the electorate",
                    a["turnout"],
                    a["electorate_share"],
                    "turnout",
                    f"{name}: votes / registered",
                )
            },
            definitions={
                "turnout": "ballots_cast / registered",
                "share of the electorate": "votes / registered",
                "share of ballots": "votes / ballots_cast",
                "statistic": "least-squares slope of votes / registered on turnout",
                "effect": "slope minus the mean share of ballots (its value when share and "
                "turnout are unrelated); EFT's own measure, the slope of votes / valid on "
                "turnout minus the mean of votes / valid, is in details['eft_measure']",
                "interval": f"bootstrap basic interval, {self.replicates} resamples of stations",
                "p-value": "two-sided z-test of the effect with its bootstrap standard error",
                "filters": selection.describe(),
            },
        )


@METHODS.register("eft-correlation")
@dataclass(frozen=True)
class EFTCorrelation(_TurnoutShareMethod):
    """Correlation: Pearson correlation of turnout and the leader's vote share."""

    name: ClassVar[str] = "eft-correlation"
    in_comparison: ClassVar[bool] = True
    title: ClassVar[str] = "Correlation of turnout and vote share (EFT Correlation)"

    def _estimate(
        self, turnout: np.ndarray, share: np.ndarray, salt: int
    ) -> tuple[float, float, tuple[float, float]]:
        columns = _pair_columns(turnout, share)
        n = turnout.size
        r = float(_correlations(columns.sum(axis=0), n))
        if n > 2 and abs(r) < 1:
            t_statistic = r * math.sqrt((n - 2) / (1 - r**2))
            p_value = float(2 * stats.t.sf(abs(t_statistic), n - 2))
        else:
            p_value = float("nan")
        draws = _correlations(_resampled_sums(columns, self.replicates, self.seed, salt), n)
        return r, p_value, _basic_interval(r, draws, self.level)

    def run(self, election: Election) -> MethodResult:
        frame, selection, columns = _turnout_and_votes(election, self.candidate)
        if frame.height < 4:
            raise MethodNotApplicable(
                f"election {election.id!r}: fewer than 4 stations with turnout and votes",
                hint="the correlation needs more stations",
            )
        a = self._arrays(frame, columns[0])
        r, p_value, interval = self._estimate(a["turnout"], a["share"], 0)
        z = math.atanh(max(min(r, 0.999999), -0.999999))
        half = float(stats.norm.ppf((1 + self.level) / 2)) / math.sqrt(max(frame.height - 3, 1))
        others = {}
        for c in election.meta.candidates:
            b = self._arrays(frame, c.column)
            ok = np.isfinite(b["share"])
            others[c.name] = _correlation(b["turnout"][ok], b["share"][ok])
        details: dict[str, Any] = {
            "fisher_interval": [math.tanh(z - half), math.tanh(z + half)],
            "correlations_of_all_candidates": others,
        }
        if self.by_region:
            rows = []
            for k, (region, index) in enumerate(_region_groups(frame), start=1):
                r_r, r_p, r_interval = self._estimate(a["turnout"][index], a["share"][index], k)
                rows.append(
                    {
                        "region": region,
                        "stations": int(index.size),
                        "estimate": r_r,
                        "interval": list(r_interval),
                        "p_value": r_p,
                    }
                )
            details["regions"], details["flagged_regions"] = _regions_table(rows, self.alpha)
        name = next(c.name for c in election.meta.candidates if c.column == columns[0])
        return self.result(
            election,
            statistic_name=f"correlation of turnout and {name}'s vote share",
            statistic=r,
            sample_size=frame.height,
            p_value=p_value,
            alpha=self.alpha,
            significant=bool(p_value < self.alpha),
            effect_name="Pearson correlation",
            effect=r,
            interval=interval,
            interval_level=self.level,
            details=details,
            charts={
                "turnout_share": _heatmap(
                    "Turnout and vote share",
                    a["turnout"],
                    a["share"],
                    "turnout",
                    f"{name}: votes / valid",
                )
            },
            definitions={
                "turnout": "ballots_cast / registered",
                "share": "votes / valid",
                "statistic": "Pearson correlation over stations",
                "interval": f"bootstrap basic interval, {self.replicates} resamples of stations",
                "p-value": "two-sided t-test of zero correlation",
                "filters": selection.describe(),
            },
        )
