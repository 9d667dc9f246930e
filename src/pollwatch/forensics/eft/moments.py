"""The EFT distribution-shape tests by moments: skewness and kurtosis of turnout (or a vote
share), with bootstrap intervals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pollwatch.forensics.base import (
    METHODS,
    MethodResult,
)
from pollwatch.forensics.eft._base import (
    _basic_interval,
    _EFTMethod,
    _histogram,
    _other_variables,
    _region_groups,
    _require_stations,
    _resampled_sums,
    _variable_values,
)
from pollwatch.forensics.parameters import Constraint, Text
from pollwatch.results.model import Election


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
        _require_stations(election, x.size, 3, f"for {label}", "the moments need more stations")
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
