"""Rozenas' resampled kernel density (RKD) test for spikes of coarse vote shares.

Source: Arturas Rozenas (2017), "Detecting Election Fraud from Irregularities in Vote-Share
Distributions", *Political Analysis* 25(1):41-56, and his R package ``spikes`` (version 1.1,
CRAN 2016; functions ``spikes``, ``est.density``, ``em.update``, ``resample``, ``fraud``,
``confInt``). Coarse vote shares (1/2, 2/3, 3/4, 0.9, ...) are frequent by simple number
theory in small stations, so their frequency alone is no evidence; RKD asks whether they are
more frequent than a smooth, manipulation-free model of the same stations says.

Definition, for the vote share ``y_i = v_i / t_i`` of one candidate at station ``i``:

1. Fit two mixtures of beta-binomials by maximum likelihood (L components, L = 1..5, L
   increased until the latent beta-mixture densities of L and L - 1 components correlate at
   0.99 or more, the rule of the package's ``est.density``):
   ``t_i ~ sum_k w_k BetaBinomial(N_i, a_k, b_k)`` (the denominator out of registered voters)
   and ``v_i ~ sum_k w'_k BetaBinomial(t_i, a'_k, b'_k)``. Shape parameters are bounded to
   ``[e^-3, e^6]`` as in the package.
2. Resample ``B`` manipulation-free elections from the fitted model, station by station, given
   the station's numbers: draw the component from its posterior weight given ``(t_i, N_i)``,
   ``p ~ Beta(t_i + a_k, N_i - t_i + b_k)``, ``t*_i ~ Binomial(N_i, p)``; likewise for the
   vote, ``v*_i ~ Binomial(t*_i, q)``; ``y*_i = v*_i / t*_i`` (0 where ``t*_i = 0``).
3. Smooth the observed and each resampled set of shares with R's ``density()`` (Gaussian
   kernel, bandwidth ``bw = 1e-4``, ``grid = 1001`` points on [0, 1], FFT on a linear-binned
   grid, reproduced here exactly) and take the upper envelope ``ymax(x) = max_r f*_r(x)``.
4. With ``W(x)`` the share of stations in the bin of width ``1/(grid - 1)`` centred on ``x``,
   the excess is ``w(x) = max(0, W_obs(x) - mean_r W*_r(x))`` and the estimate of the fraction
   of stations with anomalous (spiked) shares is ``F = sum_{x: f_obs(x) > ymax(x)} w(x)``.
   The package prints ``100 F`` (per cent).

pollwatch additions (not in the package): a Monte Carlo p-value, the rank of ``F`` among
the leave-one-out estimates ``F*_r`` of the resamples (each resample compared with the
envelope and mean of the others, as if it were the observed election), and an interval for
``F`` that redraws the station counts at the spike points as Poisson around the observed ones
(spike points and null held fixed, so it omits the uncertainty of which points spike). The
package's own interval (``confInt``: posterior draws of the mixture, each re-running all
``B`` resamples) costs ``boots x B`` resamples; it is not implemented. (A station bootstrap
was tried and rejected: it roughens the observed density and inflates ``F`` tenfold.)

The mixture is fitted by direct maximum likelihood (L-BFGS-B on all parameters with the
analytic gradient) rather than the package's EM; both aim at the same maximum, and ours is
deterministic (the package starts from random values).

Definition choices: the share is pollwatch's ``vote_share = votes / valid`` of the election's
leader (or ``candidate``), so the first stage models ``valid`` out of ``registered`` (the
package models ballots cast; in its data and the QSS files valid = ballots cast). Stations
with no valid ballots or with more valid ballots than registered voters are dropped (the
package fails on them). Stations are sorted by ``station_id`` before any random draw.

Known pitfalls: the bandwidth 1e-4 is a tenth of the grid step, so the "kernel density" is
in effect a linear-binned histogram at resolution 1/1000, and ``F`` depends on ``B`` (a larger
``B`` raises the envelope); ``F`` is positive on clean elections too (a few grid points
exceed any finite envelope by chance), so it is an estimate, not a test; a poor mixture fit
(a turnout or share distribution with more structure than five beta components) shows up as
excess away from coarse fractions; the detail ``coarse_excess`` says how much of ``F`` sits
on fractions with small denominators. Anomalous spikes are not proof of manipulation.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, special

from pollwatch.errors import InputError, PollwatchError
from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    eligible_stations,
)
from pollwatch.forensics.parameters import Constraint, Interval, NoneOr, Text
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election

__all__ = [
    "BetaBinomialMixture",
    "RozenasSpikes",
    "fit_beta_binomial_mixture",
    "r_density",
    "read_qss_reference",
]

Float = NDArray[np.float64]
Int = NDArray[np.int64]

#: bounds of log(alpha), log(beta) in the package's optimiser (``lower = -3, upper = 6``)
LOG_SHAPE_BOUNDS = (-3.0, 6.0)
_VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"


# --- the beta-binomial mixture ---------------------------------------------------------------
@dataclass(frozen=True)
class BetaBinomialMixture:
    """``sum_k weights[k] BetaBinomial(n, alpha[k], beta[k])``, components ordered by mean."""

    alpha: Float
    beta: Float
    weights: Float
    log_likelihood: float
    iterations: int

    @property
    def components(self) -> int:
        return int(self.weights.size)

    def log_joint(self, y: Int, n: Int) -> Float:
        """``log w_k + log BetaBinomial(y | n, a_k, b_k)`` without the binomial coefficient
        (it is the same for every component), one column per component."""
        columns = [
            math.log(max(w, 1e-300)) + _beta_binomial_kernel(y, n, a, b)
            for a, b, w in zip(self.alpha, self.beta, self.weights, strict=True)
        ]
        return np.column_stack(columns)

    def responsibilities(self, y: Int, n: Int) -> Float:
        """Posterior probability of each component for each unit."""
        joint = self.log_joint(y, n)
        joint -= joint.max(axis=1, keepdims=True)
        prob = np.exp(joint)
        prob /= prob.sum(axis=1, keepdims=True)
        return prob

    def beta_density(self, x: Float) -> Float:
        """The mixture of beta densities (the latent proportion's density), as ``dmbeta``."""
        out = np.zeros_like(x)
        for a, b, w in zip(self.alpha, self.beta, self.weights, strict=True):
            out += w * np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - special.betaln(a, b))
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "components": self.components,
            "alpha": [float(a) for a in self.alpha],
            "beta": [float(b) for b in self.beta],
            "weights": [float(w) for w in self.weights],
            "log_likelihood": float(self.log_likelihood),
            "optimizer_iterations": self.iterations,
        }


def _beta_binomial_kernel(y: Int, n: Int, a: float, b: float) -> Float:
    """``log BetaBinomial(y | n, a, b)`` less ``log C(n, y)``."""
    result: Float = special.betaln(y + a, n - y + b) - special.betaln(a, b)
    return result


def _moment_start(p: Float) -> tuple[float, float]:
    mean = float(np.clip(p.mean(), 0.02, 0.98)) if p.size else 0.5
    var = float(p.var()) if p.size > 1 else 0.0
    var = max(var, 1e-4)
    size = max(mean * (1 - mean) / var - 1, 0.1)
    return mean * size, (1 - mean) * size


def _maximum_likelihood(
    y: Int, n: Int, components: int, *, max_iterations: int, tolerance: float
) -> BetaBinomialMixture:
    """Direct maximum likelihood of a ``components``-mixture of beta-binomials.

    Parameters ``(log a_k, log b_k, softmax logits of w_k)``, L-BFGS-B with the analytic
    gradient, shapes bounded as in the package; started from moment fits to quantile groups
    of ``y / n``. (The package runs EM with L-BFGS-B M steps to the same maximum.)
    """
    p = y / n
    order = np.argsort(p, kind="stable")
    starts = [_moment_start(p[g]) for g in np.array_split(order, components)]
    lo, hi = LOG_SHAPE_BOUNDS
    x0 = np.concatenate(
        [
            np.clip(np.log([s[0] for s in starts]), lo, hi),
            np.clip(np.log([s[1] for s in starts]), lo, hi),
            np.zeros(components - 1),
        ]
    )
    units = float(y.size)
    complement = n - y

    def unpack(x: Float) -> tuple[Float, Float, Float]:
        logits = np.concatenate([[0.0], x[2 * components :]])
        weights = np.exp(logits - logits.max())
        return (
            np.exp(x[:components]),
            np.exp(x[components : 2 * components]),
            weights / weights.sum(),
        )

    # Counts are integers up to max(n): log-gamma and digamma of (count + shape) are read
    # from tables of that length, not evaluated once per unit.
    support = np.arange(int(n.max()) + 1, dtype=np.float64)

    def objective(x: Float) -> tuple[float, Float]:
        a, b, w = unpack(x)
        joint = np.empty((components, y.size))
        tables = []
        for k in range(components):
            lg_a, lg_b = special.gammaln(support + a[k]), special.gammaln(support + b[k])
            lg_ab = special.gammaln(support + (a[k] + b[k]))
            joint[k] = (
                math.log(w[k])
                + lg_a[y]
                + lg_b[complement]
                - lg_ab[n]
                - float(special.betaln(a[k], b[k]))
            )
            tables.append(
                (
                    special.digamma(support + a[k]),
                    special.digamma(support + b[k]),
                    special.digamma(support + (a[k] + b[k])),
                )
            )
        top = joint.max(axis=0)
        resp = np.exp(joint - top)
        total = resp.sum(axis=0)
        ll = float((top + np.log(total)).sum())
        resp /= total
        grad = np.empty_like(x)
        for k in range(components):
            r = resp[k]
            psi_a, psi_b, psi_ab_n = tables[k]
            psi_ab = float(special.digamma(a[k] + b[k]))
            rk = float(r.sum())
            da = float((r * (psi_a[y] - psi_ab_n[n])).sum()) - rk * (
                float(special.digamma(a[k])) - psi_ab
            )
            db = float((r * (psi_b[complement] - psi_ab_n[n])).sum()) - rk * (
                float(special.digamma(b[k])) - psi_ab
            )
            grad[k] = a[k] * da
            grad[components + k] = b[k] * db
        mass = resp.sum(axis=1)
        grad[2 * components :] = mass[1:] - units * w[1:]
        return -ll / units, -grad / units

    bounds = [(lo, hi)] * (2 * components) + [(-30.0, 30.0)] * (components - 1)
    found = optimize.minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iterations, "ftol": tolerance},
    )
    a, b, w = unpack(found.x)
    order_k = np.argsort(a / (a + b), kind="stable")
    return BetaBinomialMixture(
        a[order_k], b[order_k], w[order_k], -float(found.fun) * units, int(found.nit)
    )


def fit_beta_binomial_mixture(
    y: Sequence[int] | Int,
    n: Sequence[int] | Int,
    *,
    max_components: int = 5,
    max_iterations: int = 500,
    tolerance: float = 1e-10,
) -> BetaBinomialMixture:
    """Fit ``y_i ~ sum_k w_k BetaBinomial(n_i, a_k, b_k)`` as the package's ``est.density``.

    L = 1, 2, ... components, each fitted by maximum likelihood (L-BFGS-B, stopped when the
    mean log-likelihood changes by less than ``tolerance`` relative), until the beta-mixture
    densities of L and L - 1 components on ``[0.01, 0.99]`` correlate at 0.99 or more (the
    package's rule), or L reaches ``max_components``; the last fit is returned. Its
    ``log_likelihood`` leaves out the binomial coefficients (constant in the parameters).
    """
    y_arr = np.asarray(y, dtype=np.int64)
    n_arr = np.asarray(n, dtype=np.int64)
    x = np.linspace(0.01, 0.99, 1001)
    best: BetaBinomialMixture | None = None
    for components in range(1, max_components + 1):
        fit = _maximum_likelihood(
            y_arr, n_arr, components, max_iterations=max_iterations, tolerance=tolerance
        )
        if best is not None:
            old, new = best.beta_density(x), fit.beta_density(x)
            agreement = float(np.corrcoef(old, new)[0, 1]) if old.std() and new.std() else 1.0
            best = fit
            if agreement >= 0.99:
                break
        else:
            best = fit
    assert best is not None
    return best


# --- R's density() ---------------------------------------------------------------------------
def _r_fft_size(grid: int) -> int:
    size = max(grid, 512)
    return 2 ** math.ceil(math.log2(size)) if size > 512 else size


def _linear_bin(
    values: Float, lo: float, hi: float, size: int, rows: Int | None = None, n_rows: int = 1
) -> Float:
    """R's ``BinDist``: linear binning of ``values`` on ``size`` points spanning [lo, hi]
    into a zero-padded array of ``2 * size`` columns (one row per ``rows`` label)."""
    delta = (hi - lo) / (size - 1)
    position = (values - lo) / delta
    index = np.floor(position).astype(np.int64)
    frac = position - index
    inside = (index >= 0) & (index <= size - 2)
    flat_index = index + rows * (2 * size) if rows is not None else index
    length = n_rows * 2 * size
    if inside.all():  # shares in [0, 1] always are: no copies of the selection
        flat = np.bincount(flat_index, weights=1 - frac, minlength=length)
        flat += np.bincount(flat_index + 1, weights=frac, minlength=length)
    else:
        kept = flat_index[inside]
        flat = np.bincount(kept, weights=(1 - frac)[inside], minlength=length)
        flat += np.bincount(kept + 1, weights=frac[inside], minlength=length)
    edge = index == size - 1
    if edge.any():
        flat += np.bincount(flat_index[edge], weights=(1 - frac)[edge], minlength=length)
    return np.asarray(flat, dtype=np.float64).reshape(n_rows, 2 * size)


class _RDensity:
    """``density(x, from = 0, to = 1, n = grid, bw = bw, kernel = "gaussian")`` of R."""

    def __init__(self, bandwidth: float, grid: int) -> None:
        self.grid = grid
        self.size = _r_fft_size(grid)
        self.lo, self.hi = -4 * bandwidth, 1 + 4 * bandwidth
        size = self.size
        kords = np.linspace(0, 2 * (self.hi - self.lo), 2 * size)
        kords[size + 1 :] = -kords[size - 1 : 0 : -1]
        kernel = np.exp(-0.5 * (kords / bandwidth) ** 2) / (bandwidth * math.sqrt(2 * math.pi))
        self.kernel_fft = np.conj(np.fft.rfft(kernel))
        self.fine = np.linspace(self.lo, self.hi, size)
        self.x = np.linspace(0.0, 1.0, grid)

    def __call__(
        self, values: Float, rows: Int | None = None, n_rows: int = 1, counts: Float | None = None
    ) -> Float:
        """Densities, one row per label in ``rows`` (each row's values weigh 1/count)."""
        binned = _linear_bin(values, self.lo, self.hi, self.size, rows, n_rows)
        if counts is None:
            counts = binned.sum(axis=1)
        binned /= np.maximum(counts, 1e-300)[:, None]
        smooth = np.fft.irfft(np.fft.rfft(binned, axis=1) * self.kernel_fft, 2 * self.size)
        smooth = np.maximum(smooth[:, : self.size], 0.0)
        return np.stack([np.interp(self.x, self.fine, row) for row in smooth])


def r_density(
    values: Sequence[float] | Float, *, bandwidth: float = 1e-4, grid: int = 1001
) -> tuple[Float, Float]:
    """R's ``density(values, from = 0, to = 1, n = grid, bw = bandwidth)``: ``(x, y)``."""
    density = _RDensity(bandwidth, grid)
    return density.x, density(np.asarray(values, dtype=np.float64))[0]


def _bin_index(values: Float, grid: int) -> Int:
    """Bin of each value in ``cut(values, seq(-h/2, 1 + h/2, by = h), include.lowest = TRUE)``,
    ``h = 1 / (grid - 1)``: right-closed bins centred on the grid points.

    The bin is ``searchsorted(edges, values, side="left") - 1`` (clipped to the grid), found by
    arithmetic and then corrected against the edges themselves, so it is exactly that.
    """
    step = 1.0 / (grid - 1)
    edges = -step / 2 + step * np.arange(grid + 1)
    if values.size < 1000 or not np.isfinite(values).all():
        index = np.searchsorted(edges, values, side="left") - 1
        return np.clip(index, 0, grid - 1).astype(np.int64)
    # position = number of edges below the value, as searchsorted counts them; padded[p] is
    # edges[p - 1], so that edges[position - 1] < value <= edges[position] reads
    # padded[position] < value <= padded[position + 1].
    padded = np.concatenate([[-np.inf], edges, [np.inf, np.inf]])
    guess = np.floor((values - edges[0]) * (grid - 1)) + 1.0
    np.clip(guess, 0, grid + 1, out=guess)
    position: Int = guess.astype(np.int64)
    while True:
        low = padded[position] >= values  # too far right
        high = padded[position + 1] < values  # too far left
        if not (low.any() or high.any()):
            break
        position -= low
        position += high
    np.clip(position - 1, 0, grid - 1, out=position)
    return position


# --- resampling ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Model:
    registered: Int
    denominator: Int
    votes: Int
    turnout_fit: BetaBinomialMixture
    share_fit: BetaBinomialMixture
    turnout_cumulative: Float
    share_cumulative: Float


def _cumulative(mixture: BetaBinomialMixture, y: Int, n: Int) -> Float:
    cumulative = np.cumsum(mixture.responsibilities(y, n), axis=1)
    cumulative[:, -1] = 1.0
    return cumulative


def _draw_component(rng: np.random.Generator, cumulative: Float, rows: int) -> Int:
    u = rng.random((rows, cumulative.shape[0]))
    component = np.zeros(u.shape, dtype=np.int64)
    for k in range(cumulative.shape[1] - 1):
        component += u > cumulative[:, k]
    return component


def _resample_shares(model: _Model, rng: np.random.Generator, rows: int) -> Float:
    """``rows`` manipulation-free sets of shares (the package's ``resample``)."""
    n_reg, t_obs, v_obs = model.registered, model.denominator, model.votes
    k = _draw_component(rng, model.turnout_cumulative, rows)
    p = rng.beta(t_obs + model.turnout_fit.alpha[k], n_reg - t_obs + model.turnout_fit.beta[k])
    t_new = rng.binomial(n_reg, p)
    k = _draw_component(rng, model.share_cumulative, rows)
    q = rng.beta(v_obs + model.share_fit.alpha[k], t_obs - v_obs + model.share_fit.beta[k])
    v_new = rng.binomial(t_new, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(t_new > 0, v_new / np.maximum(t_new, 1), 0.0)
    return np.asarray(share, dtype=np.float64)


@dataclass(frozen=True)
class _Envelope:
    observed_density: Float
    observed_bins: Float
    densities: Float  # replicates x grid
    bins: Float  # replicates x grid


def _simulate(
    model: _Model, density: _RDensity, replicates: int, seed: int, chunk: int = 25
) -> tuple[Float, Float]:
    """Densities and bin proportions of ``replicates`` resamples (vectorised by chunks)."""
    units = model.votes.size
    grid = density.grid
    densities = np.empty((replicates, grid))
    bins = np.empty((replicates, grid))
    children = np.random.SeedSequence(seed).spawn(math.ceil(replicates / chunk))

    def one_chunk(c: int) -> None:
        start = c * chunk
        rows = min(chunk, replicates - start)
        rng = np.random.default_rng(children[c])
        share = _resample_shares(model, rng, rows).ravel()
        labels = np.repeat(np.arange(rows, dtype=np.int64), units)
        counts = np.full(rows, float(units))
        densities[start : start + rows] = density(share, labels, rows, counts)
        index = labels * grid + _bin_index(share, grid)
        bins[start : start + rows] = (
            np.bincount(index, minlength=rows * grid).reshape(rows, grid) / units
        )

    # Each chunk has its own generator, so the result does not depend on the thread count;
    # numpy's samplers release the GIL.
    workers = max(1, min(len(children), os.cpu_count() or 1, 8))
    if workers == 1:
        for c in range(len(children)):
            one_chunk(c)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one_chunk, range(len(children))))
    return densities, bins


def _excess_fraction(
    observed_density: Float, observed_bins: Float, envelope: Float, mean_bins: Float
) -> tuple[float, NDArray[np.bool_], Float]:
    excess = np.maximum(observed_bins - mean_bins, 0.0)
    spikes = envelope < observed_density
    return float(excess[spikes].sum()), spikes, excess


# --- the method ------------------------------------------------------------------------------
def _coarse_label(x: float, step: float, max_denominator: int) -> str | None:
    fraction = Fraction(x).limit_denominator(max_denominator)
    if abs(float(fraction) - x) <= step / 2 + 1e-12:
        return f"{fraction.numerator}/{fraction.denominator}"
    return None


@METHODS.register("rozenas-spikes")
@dataclass(frozen=True)
class RozenasSpikes(Method):
    """Rozenas' resampled kernel density estimate of the share of stations with spiked shares.

    Parameters:
        candidate: the candidate whose share is tested (name or column); default the leader.
        replicates: resamples of the manipulation-free model (the package's ``resamples``).
        bandwidth: kernel bandwidth (the package's ``bw``).
        grid: points on [0, 1] where densities are compared (the package's ``grid``).
        max_components: most beta-binomial components per mixture (the package's 5).
        interval_draws: Poisson draws for the interval of ``F`` (0: no interval).
        interval_level: level of that interval.
        coarse_denominator: fractions p/q with q up to this count as "coarse" in the details.
        alpha: level for ``significant`` (the Monte Carlo p-value is a pollwatch addition).
        seed: seed of the random draws.
    """

    name: ClassVar[str] = "rozenas-spikes"
    #: the default suite runs fewer resamples, to keep a national election under half a minute
    suite_parameters: ClassVar[Mapping[str, Any]] = {"replicates": 200, "interval_draws": 200}
    title: ClassVar[str] = "Rozenas resampled kernel density test for coarse vote-share spikes"
    reference: ClassVar[str] = (
        "Arturas Rozenas (2017), 'Detecting Election Fraud from Irregularities in Vote-Share "
        "Distributions', Political Analysis 25(1):41-56, doi:10.1017/pan.2016.9; "
        "R package spikes 1.1 (CRAN, 2016)."
    )
    needs: ClassVar[tuple[str, ...]] = ("registered", "valid")
    stochastic: ClassVar[bool] = True
    conformance_parameters: ClassVar[dict[str, Any]] = {
        "replicates": 40,
        "interval_draws": 20,
        "max_components": 2,
    }
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "candidate": NoneOr(Text()),
        "replicates": Interval(int, 2, 100_000),
        "bandwidth": Interval(float, 0, 0.1, closed="right"),
        "grid": Interval(int, 11, 100_001),
        "max_components": Interval(int, 1, 10),
        "interval_draws": Interval(int, 0, 100_000),
        "interval_level": Interval(float, 0, 1, closed="neither"),
        "coarse_denominator": Interval(int, 1, 1000),
        "alpha": Interval(float, 0, 1, closed="neither"),
        "seed": Interval(int, 0, None),
    }

    candidate: str | None = None
    replicates: int = 1000
    bandwidth: float = 1e-4
    grid: int = 1001
    max_components: int = 5
    interval_draws: int = 1000
    interval_level: float = 0.95
    coarse_denominator: int = 20
    alpha: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (
                isinstance(self.replicates, int) and 2 <= self.replicates <= 100_000,
                "replicates must be an integer from 2 to 100000",
            ),
            (
                isinstance(self.bandwidth, int | float) and 0 < self.bandwidth <= 0.1,
                "bandwidth must be a number above 0 and at most 0.1",
            ),
            (
                isinstance(self.grid, int) and 11 <= self.grid <= 100_001,
                "grid must be an integer from 11 to 100001",
            ),
            (
                isinstance(self.max_components, int) and 1 <= self.max_components <= 10,
                "max_components must be an integer from 1 to 10",
            ),
            (
                isinstance(self.interval_draws, int) and 0 <= self.interval_draws <= 100_000,
                "interval_draws must be an integer from 0 to 100000",
            ),
            (
                isinstance(self.interval_level, float) and 0 < self.interval_level < 1,
                "interval_level must be a number strictly between 0 and 1",
            ),
            (
                isinstance(self.coarse_denominator, int) and 1 <= self.coarse_denominator <= 1000,
                "coarse_denominator must be an integer from 1 to 1000",
            ),
            (
                isinstance(self.alpha, float) and 0 < self.alpha < 1,
                "alpha must be a number strictly between 0 and 1",
            ),
            (isinstance(self.seed, int) and self.seed >= 0, "seed must be an integer >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise PollwatchError(f"rozenas-spikes: {message}")

    def run(self, election: Election) -> MethodResult:
        candidate = self._candidate(election)
        column = candidate.column
        selection = eligible_stations(
            election,
            require=("registered", "valid", column),
            extra={
                "no valid ballots": pl.col("valid") > 0,
                "valid ballots above registered": pl.col("valid") <= pl.col("registered"),
                f"votes for {candidate.name} above valid": pl.col(column) <= pl.col("valid"),
            },
        )
        frame = selection.stations.sort("station_id")
        if frame.height < 30:
            raise MethodNotApplicable(
                f"election {election.id!r}: {frame.height} stations left, the mixture fit "
                "needs at least 30",
                hint="use a larger election or fewer filters",
            )
        registered = frame["registered"].to_numpy().astype(np.int64)
        valid = frame["valid"].to_numpy().astype(np.int64)
        votes = frame[column].to_numpy().astype(np.int64)
        station_ids = frame["station_id"].to_list()

        turnout_fit = fit_beta_binomial_mixture(
            valid, registered, max_components=self.max_components
        )
        share_fit = fit_beta_binomial_mixture(votes, valid, max_components=self.max_components)
        model = _Model(
            registered=registered,
            denominator=valid,
            votes=votes,
            turnout_fit=turnout_fit,
            share_fit=share_fit,
            turnout_cumulative=_cumulative(turnout_fit, valid, registered),
            share_cumulative=_cumulative(share_fit, votes, valid),
        )
        density = _RDensity(self.bandwidth, self.grid)
        share = votes / valid
        observed_density = density(share)[0]
        observed_index = _bin_index(share, self.grid)
        observed_bins = np.bincount(observed_index, minlength=self.grid) / share.size

        seeds = np.random.SeedSequence(self.seed).spawn(2)
        densities, bins = _simulate(
            model, density, self.replicates, int(seeds[0].generate_state(1)[0])
        )
        envelope = densities.max(axis=0)
        mean_bins = bins.mean(axis=0)
        fraction, spikes, excess = _excess_fraction(
            observed_density, observed_bins, envelope, mean_bins
        )

        # Leave-one-out: each resample judged against the envelope and mean of the others.
        order = np.argsort(densities, axis=0)
        top, second = order[-1], order[-2]
        columns = np.arange(self.grid)
        loo_fractions = np.empty(self.replicates)
        b = self.replicates
        for r in range(b):
            others_max = np.where(top == r, densities[second, columns], envelope)
            others_mean = (mean_bins * b - bins[r]) / (b - 1)
            loo_fractions[r] = _excess_fraction(densities[r], bins[r], others_max, others_mean)[0]
        p_value = float((1 + np.sum(loo_fractions >= fraction)) / (b + 1))

        interval = self._interval(observed_bins, mean_bins, spikes, share.size, seeds[1])

        spike_bins = spikes & (excess > 0)
        flagged = tuple(sorted(station_ids[i] for i in np.flatnonzero(spike_bins[observed_index])))
        step = 1.0 / (self.grid - 1)
        spike_points: list[dict[str, Any]] = []
        coarse_excess = 0.0
        for j in np.flatnonzero(spike_bins):
            x = float(density.x[j])
            label = _coarse_label(x, step, self.coarse_denominator)
            if label is not None:
                coarse_excess += float(excess[j])
            spike_points.append(
                {
                    "share": round(x, 6),
                    "excess": float(excess[j]),
                    "observed": float(observed_bins[j]),
                    "expected": float(mean_bins[j]),
                    "coarse_fraction": label,
                }
            )
        spike_points.sort(key=lambda row: -float(row["excess"]))

        return self.result(
            election,
            statistic_name="F (fraction of stations with spiked shares)",
            statistic=fraction,
            sample_size=int(share.size),
            p_value=p_value,
            p_value_floor=1 / (b + 1),
            alpha=self.alpha,
            significant=p_value < self.alpha,
            effect_name="estimated fraction of stations with anomalous (spiked) shares",
            effect=fraction,
            interval=interval,
            interval_level=self.interval_level if interval is not None else None,
            flagged=flagged,
            details={
                "candidate": candidate.name,
                "F_percent": 100 * fraction,
                "coarse_excess": coarse_excess,
                "spike_points": spike_points[:100],
                "spike_point_count": len(spike_points),
                "loo_F_quantiles": {
                    str(q): float(np.quantile(loo_fractions, q)) for q in (0.5, 0.9, 0.95, 0.99)
                },
                "turnout_mixture": turnout_fit.describe(),
                "share_mixture": share_fit.describe(),
            },
            charts={"density": self._chart(density.x, observed_density, envelope, spike_bins)},
            definitions={
                "share": f"votes for {candidate.name} / valid ballots (pollwatch vote_share)",
                "turnout": "valid ballots / registered (the first stage of the null model)",
                "F": "sum of the excess share of stations over grid points where the observed "
                "density exceeds the upper envelope of the resampled densities",
                "p_value": "pollwatch addition: rank of F among leave-one-out F of the resamples",
                "interval": "pollwatch addition: station counts at the spike points redrawn "
                "as Poisson, spike points and null held fixed (not the package's confInt)",
                "filters": selection.describe(),
            },
        )

    def _candidate(self, election: Election) -> Candidate:
        if self.candidate is None:
            leader = election.leader()
            if leader is None:
                raise MethodNotApplicable(f"election {election.id!r} has no candidates")
            return leader
        column = election.column_of(self.candidate)
        return next(c for c in election.meta.candidates if c.column == column)

    def _interval(
        self,
        observed_bins: Float,
        mean_bins: Float,
        spikes: NDArray[np.bool_],
        units: int,
        seed: np.random.SeedSequence,
    ) -> tuple[float, float] | None:
        """Percentile interval of ``F`` with the station counts at the spike points redrawn
        as Poisson around the observed counts (the spike points and the null held fixed)."""
        if self.interval_draws == 0:
            return None
        rng = np.random.default_rng(seed)
        observed = observed_bins[spikes] * units
        expected = mean_bins[spikes] * units
        draws = rng.poisson(observed, size=(self.interval_draws, observed.size))
        values = np.maximum(draws - expected, 0.0).sum(axis=1) / units
        tail = (1 - self.interval_level) / 2
        low, high = np.quantile(values, [tail, 1 - tail])
        return float(low), float(high)

    @staticmethod
    def _chart(
        x: Float, observed: Float, envelope: Float, spikes: NDArray[np.bool_]
    ) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        for j in range(x.size):
            rows.append(
                {
                    "share": round(float(x[j]), 6),
                    "series": "observed",
                    "density": round(float(observed[j]), 4),
                    "spike": bool(spikes[j]),
                }
            )
            rows.append(
                {
                    "share": round(float(x[j]), 6),
                    "series": "resampled envelope",
                    "density": round(float(envelope[j]), 4),
                    "spike": bool(spikes[j]),
                }
            )
        return {
            "$schema": _VEGA_LITE,
            "description": "Observed density of vote shares and the upper envelope of the "
            "manipulation-free resampled densities (Rozenas RKD)",
            "data": {"values": rows},
            "mark": {"type": "line", "strokeWidth": 1},
            "encoding": {
                "x": {"field": "share", "type": "quantitative", "title": "vote share"},
                "y": {"field": "density", "type": "quantitative", "title": "density"},
                "color": {"field": "series", "type": "nominal"},
            },
        }


# --- the QSS reference files -----------------------------------------------------------------
def read_qss_reference(path: str | Path) -> Election:
    """An election from a QSS/Rozenas reference file (columns ``N``, ``turnout``, ``votes``).

    The files (``qss_rozenas_fraud_refs/*.csv.gz``: Canada 2011, Russia 2003/2011/2012) hold
    registered voters, the number who voted and the winner's votes per station, nothing else:
    the row number (from 1) is the station id, ``votes`` is candidate "winner", ``turnout -
    votes`` candidate "others", and ``valid = ballots_cast = turnout``.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                frame = pl.read_csv(handle.read())
        else:
            frame = pl.read_csv(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"cannot read the file ({exc})", path=path) from None
    missing = [c for c in ("N", "turnout", "votes") if c not in frame.columns]
    if missing:
        raise InputError(
            f"columns {missing} missing", path=path, hint="expected columns N, turnout, votes"
        )
    width = len(str(frame.height))
    stations = frame.select(
        pl.format("{}", (pl.int_range(pl.len()) + 1).cast(pl.String).str.zfill(width)).alias(
            "station_id"
        ),
        pl.col("N").alias("registered"),
        pl.col("turnout").alias("ballots_cast"),
        pl.col("turnout").alias("valid"),
        pl.col("votes").alias("winner"),
        (pl.col("turnout") - pl.col("votes")).alias("others"),
    )
    name = path.name.split(".")[0]
    meta = ElectionMeta(
        id=f"qss-{name}",
        country={"canada": "CA", "russia": "RU"}.get(name.rstrip("0123456789"), ""),
        date=name[-4:],
        kind="reference",
        contest=f"QSS / Rozenas reference set {name}",
        source="kosukeimai/qss-package data (Imai 2017, QSS ch. 6), from Rozenas (2017)",
        license="GPL-2",
        importer="pollwatch.forensics.spikes.read_qss_reference",
        candidates=(Candidate("winner", "winner"), Candidate("others", "others")),
        definitions={
            "ballots_cast": "QSS column turnout (number who voted)",
            "valid": "QSS column turnout (no invalid ballots are given)",
            "station_id": "row number in the file, from 1",
        },
        source_files=(path.name,),
    )
    return make_election(meta, stations, where=str(path))
