"""Integer percentages: too many stations report a turnout or leader share that is a whole percent.

Definition (Kobak, Shpilkin & Pshenichnikov 2016, code in github.com/dkobak/elections). For each
polling station with ``V`` registered voters:

* turnout ``t = I / V`` where ``I`` is the number of ballots *issued* to voters (early + on
  the day inside the station + outside it), the authors' ``given``;
* leader share ``r = L / R`` where ``L`` is the leader's votes and ``R = valid + invalid`` the
  ballots found in the boxes, the authors' ``received``.

A value *hits* when it lies strictly within ``window`` (0.05) percentage points of a whole
percent: ``|100 k / n - m| < 0.05`` for some integer ``m``, decided in exact integer arithmetic
(``20 · |100 k - m n| < n``), so that no floating-point rounding moves a station in or out.
The statistic is the number of stations whose turnout *or* leader share hits (also turnout
alone, share alone and the registered voters of the hitting stations).

Null: each station keeps its own denominators and its own observed fractions, and the counts
are redrawn as ``I* ~ Binomial(V, t)`` and ``L* ~ Binomial(R, r)`` independently, the
authors' Monte Carlo. Then station ``i`` hits with probability ``q_i = 1 - (1 - a_i)(1 - b_i)``
where ``a_i = P(100 I*/V within the window)`` and ``b_i`` likewise for the share; these are
sums of binomial probabilities over the window's vote counts (computed exactly, over ±6
standard deviations, by a log-gamma table). The null count is a sum of independent Bernoullis
(Poisson-binomial): mean ``Σ q_i``, variance ``Σ q_i (1 - q_i)``; its whole distribution comes
from multiplying the stations' generating polynomials ``(1 - q_i) + q_i z`` with FFTs (a
product tree), which gives the p-value ``P(X >= observed)`` and the null interval exactly;
where that tail is below ``1e-12`` (beyond what double-precision FFTs resolve) the p-value is
the lattice Lugannani-Rice saddlepoint approximation, whose relative error there is tiny.
``null="monte-carlo"`` instead draws ``replicates`` seeded replicates and reports the
empirical mean, interval and ``(1 + #{sim >= observed}) / (replicates + 1)``: by default each
station's hit is drawn directly with its exact probability (``draws="hits"``, the same
distribution as redrawing the counts, which only matter through whether they hit);
``draws="binomial"`` redraws the counts as the authors did.

Effect: the excess ``observed - null mean`` (stations); interval: the excess minus the central
``1 - alpha`` interval of the null (``observed - q_hi``, ``observed - q_lo``); p-value one-sided
(upper tail); significant when ``p < α`` (0.001 by default, the 99.9 % level). The Monte
Carlo null's p-value is never below ``1 / (replicates + 1)``, its ``p_value_floor``.

Flagged: none. The test is about the count: in Russia 2018 about 19,300 stations sit at a whole
percent where about 17,600 are expected by chance, so the excess (about 1,700 stations) is the
finding, and no single station at a whole percent is singled out by it. ``details`` report the
stations at a whole percent (``stations_hitting``), not their ids.

Definition choices (the authors' ones, reproduced to within 5 stations of their published
excesses for 2004-2018): the turnout numerator is ballots issued, not ballots in the boxes
(pollwatch's ``ballots_cast``), which moves the 2018 excess by about 90 stations; the share
denominator is valid + invalid, not valid; stations are kept when ``R > 0``, ``V >= 100``,
``t <= 0.99`` and ``r <= 0.99`` (100 % is a whole percent by construction). Where an election
has no ballots-issued numbers, ``turnout_numerator="auto"`` uses ``ballots_cast``; where it has
no invalid counts, the share denominator is ``valid``.

Known pitfalls: small denominators make some whole percents reachable and others not
(``n = 150`` reaches every 2 %), which is why the null keeps each station's own ``n`` and
``t``: comparing against a flat 10 % would be wrong. Honest heaping exists where lists are
tiny or where stations report estimated numbers; 100 % turnout (closed institutions, lists made
on the day) is excluded by the 99 % cut. The null uses the observed fractions, which already
contain any manipulation, so it is conservative for the manipulated stations themselves.

Reference: D. Kobak, S. Shpilkin & M. S. Pshenichnikov, "Integer percentages as electoral
falsification fingerprints", Annals of Applied Statistics 10(1), 54-73, 2016; "Putin's peaks:
Russian election data revisited", Significance 15(3), 8-9, 2018.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import gammaln, log_ndtr, ndtr

from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    eligible_stations,
    leader_of,
)
from pollwatch.forensics.parameters import Constraint, Interval, Options
from pollwatch.results.model import Election

__all__ = [
    "IntegerPercentages",
    "IntegerShares",
    "hits_whole_percent",
    "poisson_binomial_pmf",
    "window_probability",
]

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"
#: standard deviations of the binomial covered when summing window probabilities
TAIL_SDS = 6.0
#: below this the FFT tail is numerical noise and the saddlepoint approximation is used
FFT_TAIL_FLOOR = 1e-12
#: stations × replicates drawn at once by the Monte Carlo null
CHUNK_DRAWS = 4_000_000
NULLS = ("exact", "monte-carlo")
DRAWS = ("binomial", "hits")
NUMERATORS = ("auto", "issued", "cast")
ISSUED = ("ballots_issued_early", "ballots_issued_on_day", "ballots_issued_outside")


# --- the arithmetic ---------------------------------------------------------------------------
def hits_whole_percent(
    count: npt.ArrayLike, total: npt.ArrayLike, window: float = 0.05
) -> npt.NDArray[np.bool_]:
    """Whether ``100 · count / total`` lies strictly within ``window`` points of a whole percent.

    Exact for counts below 2**46: ``|100 k - m n| · (1 / window) < n`` is tested on integers
    held in doubles (``1 / window`` is 20 for the default), with ``m`` the nearest whole percent
    (a tie gives the same distance either way).
    """
    k = np.asarray(count, dtype=np.float64)
    n = np.asarray(total, dtype=np.float64)
    scaled = 100.0 * k
    with np.errstate(divide="ignore", invalid="ignore"):
        nearest = np.rint(scaled / n)
    distance = np.abs(scaled - nearest * n)
    result: npt.NDArray[np.bool_] = (distance * _window_scale(window) < n) & (n > 0)
    return result


def _window_scale(window: float) -> float:
    """``1 / window``, snapped to a whole number when it is one (0.05 -> 20), for exactness."""
    scale = 1.0 / window
    return float(round(scale)) if abs(scale - round(scale)) < 1e-9 else scale


def window_probability(
    total: npt.ArrayLike, fraction: npt.ArrayLike, window: float = 0.05
) -> Array:
    """``P(100 · X / n within window points of a whole percent)`` for ``X ~ Binomial(n, p)``.

    Vectorised over stations: for each whole percent ``m`` within ±6 standard deviations of
    ``100 p`` the vote counts ``k`` with ``|100 k / n - m| < window`` are enumerated and their
    binomial probabilities (from a log-gamma table) summed. ``p`` of 0 or 1 gives 1 (0 % and
    100 % are whole percents).
    """
    n_all = np.asarray(total, dtype=np.int64)
    p_all = np.asarray(fraction, dtype=np.float64)
    result = np.ones(n_all.size, dtype=np.float64)
    inner = np.flatnonzero((p_all > 0) & (p_all < 1) & (n_all > 0))
    if inner.size == 0:
        return result
    n = n_all[inner]
    p = p_all[inner]
    nf = n.astype(np.float64)
    half = TAIL_SDS * 100.0 * np.sqrt(p * (1.0 - p) / nf) + 1.0
    low = np.maximum(np.floor(100.0 * p - half), 0.0).astype(np.int64)
    high = np.minimum(np.ceil(100.0 * p + half), 100.0).astype(np.int64)
    per_station = high - low + 1
    station = np.repeat(np.arange(inner.size), per_station)
    start = np.cumsum(per_station) - per_station
    percent = np.arange(station.size, dtype=np.float64) - np.repeat(
        (start - low).astype(np.float64), per_station
    )
    n_pair = nf[station]
    # k strictly inside (n (m - w) / 100, n (m + w) / 100); products are exact integers in
    # doubles when the window is a multiple of 0.05, and far from integers otherwise.
    scale = _window_scale(window)
    k_min = np.maximum(np.floor(n_pair * (scale * percent - 1.0) / (100.0 * scale)) + 1.0, 0.0)
    k_max = np.minimum(np.ceil(n_pair * (scale * percent + 1.0) / (100.0 * scale)) - 1.0, n_pair)
    per_pair = np.maximum(k_max - k_min + 1.0, 0.0).astype(np.int64)
    owner = np.repeat(station, per_pair)
    first = np.cumsum(per_pair) - per_pair
    k = np.arange(owner.size, dtype=np.int64) - np.repeat(first - k_min.astype(np.int64), per_pair)
    table = gammaln(np.arange(int(n.max()) + 2, dtype=np.float64) + 1.0)
    log_q = np.log1p(-p)
    base = table[n] + n * log_q
    slope = np.log(p) - log_q
    log_pmf = base[owner] + k * slope[owner] - table[k] - table[n[owner] - k]
    result[inner] = np.minimum(
        np.bincount(owner, weights=np.exp(log_pmf), minlength=inner.size), 1.0
    )
    return result


def poisson_binomial_pmf(probabilities: npt.ArrayLike) -> Array:
    """The distribution of a sum of independent Bernoullis, by an FFT product tree.

    ``pmf[j] = P(Σ B_i = j)`` for ``B_i ~ Bernoulli(q_i)``: the polynomials
    ``(1 - q_i) + q_i z`` are multiplied pairwise, level by level, with batched real FFTs
    (``O(N log² N)``); absolute error about 1e-15.
    """
    q = np.asarray(probabilities, dtype=np.float64)
    if q.size == 0:
        return np.ones(1)
    polys = np.stack([1.0 - q, q], axis=1)
    while polys.shape[0] > 1:
        if polys.shape[0] % 2:
            identity = np.zeros((1, polys.shape[1]))
            identity[0, 0] = 1.0
            polys = np.vstack([polys, identity])
        length = 2 * polys.shape[1]
        spectra = np.fft.rfft(polys[0::2], n=length) * np.fft.rfft(polys[1::2], n=length)
        polys = np.fft.irfft(spectra, n=length)
    pmf = np.clip(polys[0][: q.size + 1], 0.0, None)
    total = pmf.sum()
    result: Array = pmf / total if total > 0 else pmf
    return result


def saddlepoint_upper_tail(probabilities: Array, observed: int) -> float:
    """``P(Σ B_i >= observed)`` by the lattice Lugannani-Rice saddlepoint approximation.

    Daniels' (1987) continuity-corrected form for an integer variable above its mean:
    solve ``K'(s) = observed - 1/2`` for the cumulant generating function
    ``K(s) = Σ log(1 - q_i + q_i e^s)``, then
    ``P ≈ 1 - Φ(w) - φ(w) (1/w - 1/u)`` with ``w = sign(s) √(2 (s x - K(s)))`` and
    ``u = 2 sinh(s/2) √K''(s)``.
    """
    q = probabilities[(probabilities > 0) & (probabilities < 1)]
    certain = int((probabilities >= 1).sum())
    x = observed - 0.5 - certain
    if x <= 0:
        return 1.0
    if x >= q.size:
        return 0.0
    mean = float(q.sum())
    if x <= mean:
        variance = float((q * (1 - q)).sum())
        return float(ndtr(-(x - mean) / math.sqrt(variance))) if variance > 0 else 1.0
    s = 0.0
    for _ in range(200):
        e = q * np.exp(s)
        mu = e / (1 - q + e)
        first = float(mu.sum())
        second = float((mu * (1 - mu)).sum())
        step = (x - first) / second if second > 0 else 0.0
        s += float(np.clip(step, -5.0, 5.0))
        if abs(step) < 1e-12:
            break
    cumulant = float(np.log1p(q * np.expm1(s)).sum())
    e = q * np.exp(s)
    mu = e / (1 - q + e)
    second = float((mu * (1 - mu)).sum())
    w = math.copysign(math.sqrt(max(2.0 * (s * x - cumulant), 0.0)), s)
    u = 2.0 * math.sinh(s / 2.0) * math.sqrt(second)
    if w == 0 or u == 0:
        return 0.5
    # 1 - Φ(w) - φ(w) (1/w - 1/u), in logs so that very small tails do not underflow early
    log_tail = float(log_ndtr(-w))
    log_density = -0.5 * w * w - 0.5 * math.log(2 * math.pi)
    correction = math.exp(log_density - log_tail) * (1.0 / w - 1.0 / u)
    value = math.exp(log_tail) * max(1.0 - correction, 0.0)
    return min(max(value, 0.0), 1.0)


def _pmf_quantile(pmf: Array, level: float) -> int:
    return int(np.searchsorted(np.cumsum(pmf), level, side="left"))


# --- the method -------------------------------------------------------------------------------
def exact_null(q: Array, observed: int, alpha: float) -> dict[str, Any]:
    """Mean, sd, central ``1 - alpha`` interval and upper-tail p-value of the Poisson-binomial.

    ``q`` are the stations' hit probabilities; the distribution is the FFT product of their
    generating polynomials, with the saddlepoint tail where the FFT tail is below 1e-12.
    """
    pmf = poisson_binomial_pmf(q)
    mean = float(q.sum())
    sd = math.sqrt(float((q * (1 - q)).sum()))
    low = _pmf_quantile(pmf, alpha / 2)
    high = _pmf_quantile(pmf, 1 - alpha / 2)
    tail = float(pmf[observed:].sum()) if observed < pmf.size else 0.0
    if tail < FFT_TAIL_FLOOR:
        p_value = saddlepoint_upper_tail(q, observed)
        how = "saddlepoint (Lugannani-Rice, lattice); the FFT tail is below 1e-12"
    else:
        p_value = min(tail, 1.0)
        how = "exact (FFT product of the stations' generating polynomials)"
    return {
        "mean": mean,
        "sd": sd,
        "interval": (float(low), float(high)),
        "p_value": p_value,
        "p_value_method": how,
        "z": (observed - mean) / sd if sd > 0 else None,
    }


def _excess_fields(
    observed: int,
    null: Mapping[str, Any],
    alpha: float,
    sample_size: int,
) -> dict[str, Any]:
    """The result fields both integer tests fill alike from the count and its null.

    Statistic the observed count, effect its excess over the null mean, interval the excess
    against the null's central ``1 - alpha`` interval; no station flagged (the test is about
    the count, not about any one station at a whole percent).
    """
    low, high = null["interval"]
    p_value = float(null["p_value"])
    return {
        "statistic": float(observed),
        "sample_size": sample_size,
        "p_value": p_value,
        "alpha": alpha,
        "significant": bool(p_value < alpha),
        "effect_name": "excess stations over the null mean",
        "effect": float(observed - null["mean"]),
        "interval": (float(observed - high), float(observed - low)),
        "interval_level": 1.0 - alpha,
        "p_value_floor": null.get("p_value_floor"),
    }


#: the window, share cut and level both integer tests take
_COMMON_CONSTRAINTS: Mapping[str, Constraint] = {
    "window": Interval(float, 0, 0.5, closed="right"),
    "max_share": Interval(float, 0, 1, closed="right"),
    "alpha": Interval(float, 0, 0.5, closed="neither"),
}


@METHODS.register("integer-percentages")
@dataclass(frozen=True)
class IntegerPercentages(Method):
    """Excess of stations whose turnout or leader share is a whole percent (Kobak et al. 2016).

    Statistic: stations with turnout or leader share within ``window`` points of a whole
    percent; null: each station's counts redrawn as binomials with its own denominators and
    fractions (exact Poisson-binomial distribution, or a seeded Monte Carlo); effect: the
    excess over the null mean. See the module docstring for the definitions.

    Parameters:
        window: half-width in percentage points of the window around each whole percent.
        min_registered: stations with fewer registered voters are left out.
        max_turnout, max_share: stations above these fractions are left out (100 % is whole).
        turnout_numerator: ``"issued"`` (ballots issued: early + on the day + outside, the
            authors' definition), ``"cast"`` (ballots in the boxes) or ``"auto"`` (issued when
            the election has those numbers, else cast).
        null: ``"exact"`` (Poisson-binomial, no sampling) or ``"monte-carlo"``.
        replicates: Monte Carlo replicates (``null="monte-carlo"``).
        draws: ``"hits"`` draws each station's hit directly, Bernoulli with its exact window
            probability: the distribution of the authors' procedure without drawing the counts
            (about ten times faster); ``"binomial"`` redraws every station's counts as the
            authors did (an independent check of the window probabilities).
        seed: seed of the Monte Carlo draws.
        alpha: significance level (one-sided); the null interval is its central ``1 - alpha``.
    """

    name: ClassVar[str] = "integer-percentages"
    fast: ClassVar[bool] = True
    in_comparison: ClassVar[bool] = True
    title: ClassVar[str] = "Integer percentages of turnout and leader share"
    reference: ClassVar[str] = (
        "D. Kobak, S. Shpilkin & M. S. Pshenichnikov (2016), Integer percentages as electoral "
        "falsification fingerprints, Annals of Applied Statistics 10(1), 54-73; "
        "Putin's peaks: Russian election data revisited, Significance 15(3), 8-9 (2018)"
    )
    needs: ClassVar[tuple[str, ...]] = ("registered",)
    stochastic: ClassVar[bool] = True
    conformance_parameters: ClassVar[Mapping[str, Any]] = {
        "null": "monte-carlo",
        "replicates": 200,
    }
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        **_COMMON_CONSTRAINTS,
        "min_registered": Interval(int, 1, None),
        "max_turnout": Interval(float, 0, 1, closed="right"),
        "turnout_numerator": Options(*NUMERATORS),
        "null": Options(*NULLS),
        "replicates": Interval(int, 10, 1_000_000),
        "draws": Options(*DRAWS),
        "seed": Interval(int, 0, None),
    }

    window: float = 0.05
    min_registered: int = 100
    max_turnout: float = 0.99
    max_share: float = 0.99
    turnout_numerator: str = "auto"
    null: str = "exact"
    replicates: int = 1000
    draws: str = "hits"
    seed: int = 0
    alpha: float = 0.001

    # ------------------------------------------------------------------------------------------
    def run(self, election: Election) -> MethodResult:
        leader = leader_of(election)
        frame = election.stations
        numerator_kind = self._numerator_kind(frame)
        numerator_expr: pl.Expr
        if numerator_kind == "issued":
            reported = pl.any_horizontal([pl.col(c).is_not_null() for c in ISSUED])
            issued = pl.sum_horizontal([pl.col(c).fill_null(0) for c in ISSUED])
            numerator_expr = pl.when(reported).then(issued).otherwise(None)
            numerator_words = "ballots issued (early + on the day + outside the station)"
        else:
            numerator_expr = pl.col("ballots_cast")
            numerator_words = "ballots_cast (ballots found in the boxes)"
        has_invalid = frame["invalid"].null_count() < frame.height
        if has_invalid:
            denominator_expr = pl.col("valid") + pl.col("invalid")
            denominator_words = "valid + invalid ballots"
        else:
            denominator_expr = pl.col("valid")
            denominator_words = "valid ballots (the election has no invalid counts)"
        turnout = numerator_expr / pl.col("registered")
        share = pl.col(leader.column) / denominator_expr
        extra: dict[str, pl.Expr] = {
            f"missing {numerator_kind} ballots": numerator_expr.is_not_null(),
            "missing valid/invalid": denominator_expr.is_not_null(),
            f"missing votes for the leader ({leader.name})": pl.col(leader.column).is_not_null(),
            "no ballots in the boxes": denominator_expr > 0,
            f"fewer than {self.min_registered} registered": pl.col("registered")
            >= self.min_registered,
            f"turnout above {100 * self.max_turnout:g} %": turnout <= self.max_turnout,
            f"leader share above {100 * self.max_share:g} %": share <= self.max_share,
        }
        selection = eligible_stations(election, require=("registered",), extra=extra)
        data = selection.stations.sort("station_id").select(
            pl.col("station_id"),
            pl.col("registered").cast(pl.Int64).alias("n_turnout"),
            numerator_expr.cast(pl.Int64).alias("k_turnout"),
            denominator_expr.cast(pl.Int64).alias("n_share"),
            pl.col(leader.column).cast(pl.Int64).alias("k_share"),
        )
        ids = data["station_id"].to_list()
        n_t = data["n_turnout"].to_numpy().astype(np.int64)
        k_t = data["k_turnout"].to_numpy().astype(np.int64)
        n_s = data["n_share"].to_numpy().astype(np.int64)
        k_s = data["k_share"].to_numpy().astype(np.int64)
        hit_t = hits_whole_percent(k_t, n_t, self.window)
        hit_s = hits_whole_percent(k_s, n_s, self.window)
        hit = hit_t | hit_s
        observed = int(hit.sum())
        p_t = k_t / n_t
        p_s = k_s / n_s
        a = window_probability(n_t, p_t, self.window)
        b = window_probability(n_s, p_s, self.window)
        q = 1.0 - (1.0 - a) * (1.0 - b)
        weights = n_t.astype(np.float64)
        exact = exact_null(q, observed, self.alpha)
        components = {
            "either": _component(observed, q, weights, hit),
            "turnout": _component(int(hit_t.sum()), a, weights, hit_t),
            "share": _component(int(hit_s.sum()), b, weights, hit_s),
        }
        null_summary: dict[str, Any] = {"method": self.null, "exact": exact}
        if self.null == "monte-carlo":
            monte_carlo = self._monte_carlo(n_t, p_t, n_s, p_s, (a, b), observed, weights, hit)
            null_summary["monte_carlo"] = monte_carlo
            chosen = monte_carlo
        else:
            chosen = exact
        details: dict[str, Any] = {
            "leader": leader.name,
            "turnout_numerator": numerator_kind,
            "observed": {key: c["observed"] for key, c in components.items()},
            "expected": {key: c["expected"] for key, c in components.items()},
            "excess": {key: c["excess"] for key, c in components.items()},
            "components": components,
            "null": null_summary,
            "stations_hitting": observed,
            "window_pp": self.window,
        }
        charts = {
            "turnout": _histogram_chart(k_t, n_t, "turnout"),
            "leader_share": _histogram_chart(k_s, n_s, "leader share"),
        }
        return self.result(
            election,
            statistic_name="stations with turnout or leader share at a whole percent",
            **_excess_fields(observed, chosen, self.alpha, len(ids)),
            details=details,
            charts=charts,
            definitions={
                "turnout": f"{numerator_words} / registered",
                "share": f"leader votes / ({denominator_words})",
                "leader": f"{leader.name} (most votes in the whole election)",
                "whole percent": f"strictly within {self.window:g} percentage points of an "
                "integer percent, decided in integer arithmetic",
                "statistic": "stations whose turnout or leader share hits a whole percent",
                "null": "each station's counts redrawn as Binomial(registered, turnout) and "
                "Binomial(ballots in the boxes, share), independently; "
                + (
                    "exact Poisson-binomial distribution of the count"
                    if self.null == "exact"
                    else f"{self.replicates} Monte Carlo replicates ({self.draws} draws), "
                    f"seed {self.seed}"
                ),
                "effect": "observed count minus the null mean",
                "interval": f"observed minus the central {100 * (1 - self.alpha):g} % interval "
                "of the null count",
                "p_value": "one-sided, P(null count >= observed)",
                "flagged": "none: the excess is a count; a station at a whole percent is not "
                "singled out by it",
                "filters": selection.describe(),
            },
        )

    # ------------------------------------------------------------------------------------------
    def _numerator_kind(self, frame: pl.DataFrame) -> str:
        has_issued = any(frame[c].null_count() < frame.height for c in ISSUED)
        if self.turnout_numerator == "issued" and not has_issued:
            raise MethodNotApplicable(
                "the election has no ballots-issued numbers",
                hint="use turnout_numerator='cast' (ballots in the boxes) or 'auto'",
            )
        if self.turnout_numerator == "auto":
            return "issued" if has_issued else "cast"
        return self.turnout_numerator

    def _monte_carlo(
        self,
        n_t: IntArray,
        p_t: Array,
        n_s: IntArray,
        p_s: Array,
        window_probabilities: tuple[Array, Array],
        observed: int,
        weights: Array,
        hit: npt.NDArray[np.bool_],
    ) -> dict[str, Any]:
        """Redraws of every station, ``replicates`` times, in chunks of replicates × stations.

        ``draws="binomial"``: ``I* ~ Binomial(V, t)``, ``L* ~ Binomial(R, r)`` and the hit test;
        ``draws="hits"``: the hits themselves, Bernoulli with the exact window probabilities.
        """
        a, b = window_probabilities
        rng = np.random.default_rng(self.seed)
        stations = n_t.size
        per_chunk = max(1, CHUNK_DRAWS // max(stations, 1))
        counts = np.empty(self.replicates, dtype=np.int64)
        voters = np.empty(self.replicates, dtype=np.float64)
        done = 0
        while done < self.replicates:
            size = min(per_chunk, self.replicates - done)
            if self.draws == "binomial":
                draws_t = rng.binomial(n_t, p_t, size=(size, stations))
                hits = hits_whole_percent(draws_t, n_t, self.window)
                draws_s = rng.binomial(n_s, p_s, size=(size, stations))
                hits |= hits_whole_percent(draws_s, n_s, self.window)
            else:
                hits = rng.random((size, stations)) < a
                hits |= rng.random((size, stations)) < b
            counts[done : done + size] = hits.sum(axis=1)
            voters[done : done + size] = hits @ weights
            done += size
        low, high = np.quantile(counts, [self.alpha / 2, 1 - self.alpha / 2])
        observed_voters = float(weights[hit].sum())
        return {
            "replicates": self.replicates,
            "draws": self.draws,
            "seed": self.seed,
            "mean": float(counts.mean()),
            "sd": float(counts.std(ddof=1)),
            "interval": (float(low), float(high)),
            "p_value": float((1 + int((counts >= observed).sum())) / (self.replicates + 1)),
            "voters_mean": float(voters.mean()),
            "voters_excess": observed_voters - float(voters.mean()),
            "p_value_floor": 1 / (self.replicates + 1),
        }


def _component(
    observed: int, probabilities: Array, weights: Array, hit: npt.NDArray[np.bool_]
) -> dict[str, Any]:
    """Observed, expected, excess and a normal z for one count (and its voter-weighted twin)."""
    expected = float(probabilities.sum())
    sd = math.sqrt(float((probabilities * (1 - probabilities)).sum()))
    voters = float(weights[hit].sum())
    voters_expected = float((weights * probabilities).sum())
    voters_sd = math.sqrt(float((weights**2 * probabilities * (1 - probabilities)).sum()))
    return {
        "observed": observed,
        "expected": expected,
        "excess": observed - expected,
        "sd": sd,
        "z": (observed - expected) / sd if sd > 0 else None,
        "voters_observed": voters,
        "voters_expected": voters_expected,
        "voters_excess": voters - voters_expected,
        "voters_z": (voters - voters_expected) / voters_sd if voters_sd > 0 else None,
    }


def _histogram_chart(counts: IntArray, totals: IntArray, label: str) -> dict[str, Any]:
    """Stations per 0.1-point bin of the percentage, the integer peaks' picture."""
    percent = 100.0 * counts / totals
    index = np.clip(np.floor(percent * 10 + 1e-9).astype(np.int64), 0, 999)
    histogram = np.bincount(index, minlength=1000)
    rows = [
        {"percent": round(b / 10, 1), "stations": int(histogram[b])}
        for b in range(1000)
        if histogram[b]
    ]
    return {
        "$schema": VEGA_LITE,
        "title": f"Stations by {label} (0.1-point bins); whole percents stand out as peaks",
        "data": {"values": rows},
        "mark": "bar",
        "encoding": {
            "x": {"field": "percent", "type": "quantitative", "title": f"{label} (%)"},
            "y": {"field": "stations", "type": "quantitative", "title": "stations"},
        },
    }


@METHODS.register("integer-shares")
@dataclass(frozen=True)
class IntegerShares(Method):
    """Excess of stations whose leader share alone is a whole percent (no registered voters needed).

    The share half of :class:`IntegerPercentages` (Kobak et al. 2016 test turnout and share
    separately as well as together): statistic, the stations whose leader share
    ``L / (valid + invalid)`` (or ``L / valid`` where the election has no invalid counts) lies
    strictly within ``window`` points of a whole percent; null, each station's leader votes
    redrawn as ``Binomial(ballots, share)`` with its own ballots and share, so the count is
    Poisson-binomial and its distribution exact; effect, the excess over the null mean; p-value
    one-sided. Stations with fewer than ``min_ballots`` ballots or a share above ``max_share``
    are left out. Because it needs no registered voters, it runs on elections that report only
    votes (US precinct returns) and so compares them with the others on the same definition.

    Parameters: ``window`` (0.05 points), ``min_ballots`` (100, the authors' size cut applied to
    the share's own denominator), ``max_share`` (0.99), ``alpha`` (0.001, the 99.9 % level).
    """

    name: ClassVar[str] = "integer-shares"
    in_comparison: ClassVar[bool] = True
    title: ClassVar[str] = "Integer percentages of the leader's share alone"
    reference: ClassVar[str] = IntegerPercentages.reference
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        **_COMMON_CONSTRAINTS,
        "min_ballots": Interval(int, 1, None),
    }

    window: float = 0.05
    min_ballots: int = 100
    max_share: float = 0.99
    alpha: float = 0.001

    def run(self, election: Election) -> MethodResult:
        leader = leader_of(election)
        frame = election.stations
        if frame["invalid"].null_count() < frame.height:
            denominator = pl.col("valid") + pl.col("invalid")
            denominator_words = "valid + invalid ballots"
        else:
            denominator = pl.col("valid")
            denominator_words = "valid ballots (the election has no invalid counts)"
        share = pl.col(leader.column) / denominator
        extra: dict[str, pl.Expr] = {
            "missing valid/invalid": denominator.is_not_null(),
            f"missing votes for the leader ({leader.name})": pl.col(leader.column).is_not_null(),
            f"fewer than {self.min_ballots} ballots": denominator >= self.min_ballots,
            f"leader share above {100 * self.max_share:g} %": share <= self.max_share,
        }
        selection = eligible_stations(election, extra=extra)
        data = selection.stations.sort("station_id").select(
            pl.col("station_id"),
            denominator.cast(pl.Int64).alias("n"),
            pl.col(leader.column).cast(pl.Int64).alias("k"),
        )
        ids = data["station_id"].to_list()
        n = data["n"].to_numpy().astype(np.int64)
        k = data["k"].to_numpy().astype(np.int64)
        hit = hits_whole_percent(k, n, self.window)
        observed = int(hit.sum())
        b = window_probability(n, k / n, self.window)
        null = exact_null(b, observed, self.alpha)
        component = _component(observed, b, n.astype(np.float64), hit)
        return self.result(
            election,
            statistic_name="stations with the leader's share at a whole percent",
            **_excess_fields(observed, null, self.alpha, len(ids)),
            details={
                "leader": leader.name,
                "share": component,
                "stations_hitting": observed,
                "window_pp": self.window,
            },
            charts={"leader_share": _histogram_chart(k, n, "leader share")},
            definitions={
                "share": f"leader votes / ({denominator_words})",
                "leader": f"{leader.name} (most votes in the whole election)",
                "whole percent": f"strictly within {self.window:g} percentage points of an "
                "integer percent, decided in integer arithmetic",
                "null": "each station's leader votes redrawn as Binomial(ballots, share); "
                "exact Poisson-binomial distribution of the count",
                "effect": "observed count minus the null mean",
                "p_value": "one-sided, P(null count >= observed)",
                "flagged": "none: the excess is a count; a station at a whole percent is not "
                "singled out by it",
                "filters": selection.describe(),
            },
        )
