"""The EFT digit tests: 2BL (second digit), LastC and C05s (last digits of counts), P05s
(last digits of percentages)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl
from scipy import stats

from pollwatch.forensics.base import (
    METHODS,
    MethodNotApplicable,
    MethodResult,
    Selection,
    eligible_stations,
)
from pollwatch.forensics.digits import (
    benford_second_digit,
    candidate_columns,
    digit_chart,
    last_digits,
    second_digits,
)
from pollwatch.forensics.eft._base import (
    BENFORD_SECOND_DIGIT_MEAN,
    _basic_interval,
    _EFTMethod,
    _region_groups,
    _regions_table,
    _resampled_sums,
    _two_sided_normal,
)
from pollwatch.forensics.parameters import Constraint, Interval, Text
from pollwatch.results.model import Election


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
