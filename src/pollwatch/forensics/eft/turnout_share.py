"""The EFT turnout and vote-share tests: the Sobyanin-Sukhovolsky slope and the correlation
of turnout and the leader's vote share."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl
from scipy import stats

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import (
    METHODS,
    MethodResult,
    Selection,
)
from pollwatch.forensics.digits import (
    candidate_columns,
)
from pollwatch.forensics.eft._base import (
    EFT_REFERENCE,
    _basic_interval,
    _EFTMethod,
    _heatmap,
    _region_groups,
    _regions_table,
    _require_stations,
    _resampled_sums,
    _turnout_selection,
    _two_sided_normal,
)
from pollwatch.forensics.parameters import Constraint, Text
from pollwatch.results.model import Election


def _turnout_and_votes(
    election: Election, candidate: str, minimum: int, hint: str
) -> tuple[pl.DataFrame, Selection, list[str]]:
    """The stations with turnout and the candidate's votes, sorted by id; at least ``minimum``
    of them (``hint`` says why)."""
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
    _require_stations(election, selection.stations.height, minimum, "with turnout and votes", hint)
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

    def _by_region(
        self, frame: pl.DataFrame, estimate: Callable[[np.ndarray, int], dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Per-region rows (region, stations, then ``estimate(index, salt)``) with q-values."""
        rows = [
            {"region": region, "stations": int(index.size), **estimate(index, k)}
            for k, (region, index) in enumerate(_region_groups(frame), start=1)
        ]
        return _regions_table(rows, self.alpha)

    def _tested_result(
        self,
        election: Election,
        selection: Selection,
        *,
        p_value: float,
        p_value_definition: str,
        chart: dict[str, Any],
        definitions: Mapping[str, str],
        **values: Any,
    ) -> MethodResult:
        """The result fields both tests fill alike: a test at ``alpha`` over the selected
        stations with a bootstrap interval at ``level``, and one turnout-share heatmap."""
        return self.result(
            election,
            sample_size=selection.stations.height,
            p_value=p_value,
            alpha=self.alpha,
            significant=bool(p_value < self.alpha),
            interval_level=self.level,
            charts={"turnout_share": chart},
            definitions={
                "turnout": "ballots_cast / registered",
                **definitions,
                "interval": f"bootstrap basic interval, {self.replicates} resamples of stations",
                "p-value": p_value_definition,
                "filters": selection.describe(),
            },
            **values,
        )


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
        frame, selection, columns = _turnout_and_votes(
            election, self.candidate, 3, "the regression needs more stations"
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

            def region_row(index: np.ndarray, salt: int) -> dict[str, Any]:
                r_slope, r_effect, r_interval, r_p, _ = self._estimate(
                    {name: v[index] for name, v in a.items()}, salt
                )
                return {
                    "slope": r_slope,
                    "estimate": r_effect,
                    "interval": list(r_interval),
                    "p_value": r_p,
                }

            details["regions"], details["flagged_regions"] = self._by_region(frame, region_row)
        name = next(c.name for c in election.meta.candidates if c.column == columns[0])
        return self._tested_result(
            election,
            selection,
            statistic_name=f"slope of {name}'s votes / registered on turnout",
            statistic=slope,
            p_value=p_value,
            p_value_definition="two-sided z-test of the effect with its bootstrap standard error",
            effect_name="slope minus mean share of ballots",
            effect=effect,
            interval=interval,
            details=details,
            chart=_heatmap(
                "Turnout and share of the electorate",
                a["turnout"],
                a["electorate_share"],
                "turnout",
                f"{name}: votes / registered",
            ),
            definitions={
                "share of the electorate": "votes / registered",
                "share of ballots": "votes / ballots_cast",
                "statistic": "least-squares slope of votes / registered on turnout",
                "effect": "slope minus the mean share of ballots (its value when share and "
                "turnout are unrelated); EFT's own measure, the slope of votes / valid on "
                "turnout minus the mean of votes / valid, is in details['eft_measure']",
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
        frame, selection, columns = _turnout_and_votes(
            election, self.candidate, 4, "the correlation needs more stations"
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

            def region_row(index: np.ndarray, salt: int) -> dict[str, Any]:
                r_r, r_p, r_interval = self._estimate(a["turnout"][index], a["share"][index], salt)
                return {"estimate": r_r, "interval": list(r_interval), "p_value": r_p}

            details["regions"], details["flagged_regions"] = self._by_region(frame, region_row)
        name = next(c.name for c in election.meta.candidates if c.column == columns[0])
        return self._tested_result(
            election,
            selection,
            statistic_name=f"correlation of turnout and {name}'s vote share",
            statistic=r,
            p_value=p_value,
            p_value_definition="two-sided t-test of zero correlation",
            effect_name="Pearson correlation",
            effect=r,
            interval=interval,
            details=details,
            chart=_heatmap(
                "Turnout and vote share",
                a["turnout"],
                a["share"],
                "turnout",
                f"{name}: votes / valid",
            ),
            definitions={
                "share": "votes / valid",
                "statistic": "Pearson correlation over stations",
            },
        )
