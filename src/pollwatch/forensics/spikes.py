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

from pollwatch.errors import InputError
from pollwatch.forensics._shared import one_blas_thread
from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    eligible_stations,
)
from pollwatch.forensics.parameters import Constraint, Interval, NoneOr, Text
from pollwatch.forensics.sections import Section, SpikePoints, detail_of
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
    # L-BFGS-B's BLAS calls are tiny: OpenBLAS's threads would only spin (six times the CPU
    # time of a 600-station fit on a busy 2-core machine), taking cores from the other work.
    with one_blas_thread():
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
    out = np.zeros((n_rows, 2 * size))
    _add_linear_bins(values, lo, hi, size, out, rows)
    return out


def _add_linear_bins(
    values: Float, lo: float, hi: float, size: int, out: Float, rows: Int | None = None
) -> None:
    """Add the linear binning of ``values`` (R's ``BinDist``) to ``out``, one row of ``out``
    per ``rows`` label (row 0 without labels; ``rows`` may also be a column of labels for a
    2-d ``values``, one per row); ``out`` has at least ``size`` columns.

    A value at ``position = (value - lo) / delta`` puts ``1 - frac`` on point ``floor(position)``
    and ``frac`` on the next; one on the last point puts its weight there; others are dropped.
    """
    width = out.shape[1]
    delta = (hi - lo) / (size - 1)
    position = (values - lo) / delta
    index = np.floor(position).astype(np.int64)
    frac = position - index
    flat_index = index + rows * width if rows is not None else index
    flat_index = flat_index.reshape(-1)
    flat = out.reshape(-1)
    length = flat.size
    if index.size and index.min() >= 0 and index.max() <= size - 2:
        # shares in [0, 1] always are inside: no masks, no copies of the selection
        flat += np.bincount(flat_index, weights=(1 - frac).reshape(-1), minlength=length)
        flat += np.bincount(flat_index + 1, weights=frac.reshape(-1), minlength=length)
        return
    index, frac = index.reshape(-1), frac.reshape(-1)
    inside = (index >= 0) & (index <= size - 2)
    kept = flat_index[inside]
    flat += np.bincount(kept, weights=(1 - frac)[inside], minlength=length)
    flat += np.bincount(kept + 1, weights=frac[inside], minlength=length)
    edge = index == size - 1
    if edge.any():
        flat += np.bincount(flat_index[edge], weights=(1 - frac)[edge], minlength=length)


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
        return self.smooth(binned, counts)

    def add_bins(self, values: Float, out: Float) -> None:
        """Add the linear binning of each row of ``values`` to the same row of ``out``
        (``size`` columns: the fine grid, unpadded)."""
        rows = np.arange(values.shape[0], dtype=np.int64)[:, None]
        _add_linear_bins(values, self.lo, self.hi, self.size, out, rows)

    def smooth(self, binned: Float, counts: Float | None = None) -> Float:
        """Densities from linear bins (one row each, ``size`` columns or zero-padded to
        ``2 * size``), each row divided by its count (default: its total weight)."""
        size = self.size
        if binned.shape[1] != 2 * size:
            padded = np.zeros((binned.shape[0], 2 * size))
            padded[:, : binned.shape[1]] = binned
            binned = padded
        if counts is None:
            counts = binned.sum(axis=1)
        binned /= np.maximum(counts, 1e-300)[:, None]
        smooth = np.fft.irfft(np.fft.rfft(binned, axis=1) * self.kernel_fft, 2 * size)
        smooth = np.maximum(smooth[:, :size], 0.0)
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
#: stations per block of the resampling: a block's tables stay in cache while every replicate
#: of its stations is drawn
_BLOCK_STATIONS = 1024
#: replicates drawn at once for one block
_BLOCK_REPLICATES = 128
#: the blocks are dealt to this many lanes, each adding into its own partial sums, and the
#: lanes are added in order at the end: the result does not depend on the number of threads
_LANES = 4
#: a station's table of resampled denominators spans each component's predictive mean plus or
#: minus this many standard deviations (widened by halves, then to the whole support, where
#: that leaves too much out)
_TABLE_SDS = 9.0
#: the most probability a table may leave out beyond each of its edges, per component (a
#: bound; a tenth of the resolution of the double-precision uniforms that are drawn)
_TABLE_TAIL = 1e-17


@dataclass(frozen=True)
class _Model:
    registered: Int
    denominator: Int
    votes: Int
    turnout_fit: BetaBinomialMixture
    share_fit: BetaBinomialMixture
    turnout_weights: Float  # posterior probability of each turnout component, per station
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


class _PredictiveCounts:
    """Each station's predictive distribution of the resampled denominator, as tables.

    The first stage of the package's ``resample`` draws a component ``k`` with its posterior
    weight ``w_k``, ``p ~ Beta(t + a_k, N - t + b_k)`` and ``t* ~ Binomial(N, p)``: ``t*`` has
    the mixture of beta-binomials ``sum_k w_k BetaBinomial(N, t + a_k, N - t + b_k)`` as its
    distribution (the component and ``p`` are used for nothing else). This class tabulates
    that mixture once per station and draws ``t*`` by inversion (one uniform per draw, a guide
    table, then a short search), instead of a beta and a binomial per draw: the same
    distribution, a fifth of the cost.

    A table covers ``[low, high]``: each component's mean plus or minus ``_TABLE_SDS`` standard
    deviations, widened (by halves up to three times as wide, then to the whole support
    ``[0, N]``) until every
    component's probability beyond each edge is at most ``_TABLE_TAIL`` (bounded by the
    probability at the edge over one minus the ratio to the next count outwards: the
    beta-binomial is log-concave where both shapes are at least 1; a station where one is not
    gets the whole support). Probabilities are ``exp`` of log-gamma sums read from tables
    (counts are integers), accurate to about 1e-12 of each probability.
    """

    def __init__(self, model: _Model) -> None:
        fit = model.turnout_fit
        self.alpha, self.beta = fit.alpha, fit.beta
        self.n = model.registered
        self.t = model.denominator
        with np.errstate(divide="ignore"):
            self.log_weights = np.log(model.turnout_weights)
        top = 2 * int(self.n.max()) + 2
        support = np.arange(top + 1, dtype=np.float64)
        self.log_factorial = special.gammaln(support + 1)
        self.gamma_a = np.stack([special.gammaln(support + a) for a in self.alpha])
        self.gamma_b = np.stack([special.gammaln(support + b) for b in self.beta])
        self.gamma_ab = np.stack(
            [special.gammaln(support + a + b) for a, b in zip(self.alpha, self.beta, strict=True)]
        )
        self.low, self.high = self._windows()

    def _log_constant(self, k: int, n: Int, t: Int, log_weight: Float) -> Float:
        """The terms of ``log w_k + log P_k(x)`` that do not depend on ``x``."""
        constant: Float = (
            self.log_factorial[n]
            - self.gamma_ab[k][2 * n]
            - self.gamma_a[k][t]
            - self.gamma_b[k][n - t]
            + self.gamma_ab[k][n]
            + log_weight
        )
        return constant

    def _log_probability(self, k: int, x: Int, n: Int, t: Int, log_weight: Float) -> Float:
        """``log w_k + log BetaBinomial(x | n, t + a_k, n - t + b_k)``."""
        terms: Float = (
            self._log_constant(k, n, t, log_weight)
            - self.log_factorial[x]
            - self.log_factorial[n - x]
            + self.gamma_a[k][t + x]
            + self.gamma_b[k][2 * n - t - x]
        )
        return terms

    def _windows(self) -> tuple[Int, Int]:
        n_all, t_all = self.n, self.t
        low = np.zeros(n_all.size, dtype=np.int64)
        high = n_all.copy()
        todo = np.arange(n_all.size)
        for scale in (_TABLE_SDS, 1.5 * _TABLE_SDS, 2 * _TABLE_SDS, 3 * _TABLE_SDS):
            n, t = n_all[todo], t_all[todo]
            a = t[:, None] + self.alpha[None, :]
            b = (n - t)[:, None] + self.beta[None, :]
            ab = a + b
            mean = n[:, None] * a / ab
            sd = np.sqrt(n[:, None] * a * b * (ab + n[:, None]) / (ab * ab * (ab + 1)))
            lo = np.clip(np.floor((mean - scale * sd).min(axis=1)) - 1, 0, n).astype(np.int64)
            hi = np.clip(np.ceil((mean + scale * sd).max(axis=1)) + 1, 0, n).astype(np.int64)
            ok = ~((a < 1) | (b < 1)).any(axis=1)
            for k in range(self.alpha.size):
                log_weight = self.log_weights[todo, k]
                ok &= self._tail_ok(k, lo, n, t, log_weight, -1)
                ok &= self._tail_ok(k, hi, n, t, log_weight, +1)
            low[todo[ok]], high[todo[ok]] = lo[ok], hi[ok]
            todo = todo[~ok]
            if todo.size == 0:
                break
        return low, high  # the stations left in todo keep the whole support [0, N]

    def _tail_ok(
        self, k: int, edge: Int, n: Int, t: Int, log_weight: Float, step: int
    ) -> NDArray[np.bool_]:
        """Whether component ``k`` leaves at most ``_TABLE_TAIL`` beyond ``edge`` (``step``
        -1: below it, +1: above it); always true at the end of the support."""
        at_end = edge == 0 if step < 0 else edge == n
        beyond = np.clip(edge + step, 0, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            here = self._log_probability(k, edge, n, t, log_weight)
            ratio = np.exp(self._log_probability(k, beyond, n, t, log_weight) - here)
            bound = here - np.log1p(-np.minimum(ratio, 1.0))
        ok: NDArray[np.bool_] = (
            at_end | (np.isneginf(here)) | ((ratio < 1) & (bound <= math.log(_TABLE_TAIL)))
        )
        return ok

    def table(self, stations: Int) -> _CountTable:
        """The inversion table of ``stations`` (best grouped by similar widths)."""
        return _CountTable(self, stations)


class _CountTable:
    """Cumulative probabilities of ``t*`` for a block of stations, with a guide table.

    ``cdf[i, j]`` is ``P(t* <= low_i + j)`` (1 from the last count of the window on), and
    ``guide[i, m]`` the number of counts whose ``floor(cdf * width) < m``: for a uniform ``u``
    with ``floor(u * width) = m`` the answer (the first count with ``cdf > u``) lies between
    ``guide[i, m]`` and ``guide[i, m + 1]``.
    """

    def __init__(self, counts: _PredictiveCounts, stations: Int) -> None:
        low, high = counts.low[stations], counts.high[stations]
        span = high - low + 1
        width = int(span.max())
        size = stations.size
        cdf = np.empty((size, width))
        # by groups of stations whose temporaries stay in cache
        group = max(1, 65_536 // width)
        for start in range(0, size, group):
            part = slice(start, min(size, start + group))
            cdf[part] = self._cumulative(counts, stations[part], width)
        total = cdf[np.arange(size), span - 1]
        cdf /= total[:, None]
        np.minimum(cdf, 1.0, out=cdf)
        cdf[np.arange(size), span - 1] = 1.0
        key = np.minimum((cdf * width).astype(np.int64), width)
        key += (np.arange(size, dtype=np.int64) * (width + 1))[:, None]
        per_cell = np.bincount(key.ravel(), minlength=size * (width + 1)).reshape(size, width + 1)
        guide = np.zeros((size, width + 1), dtype=np.int64)
        np.cumsum(per_cell[:, :-1], axis=1, out=guide[:, 1:])
        np.minimum(guide, width - 1, out=guide)
        guide += (np.arange(size, dtype=np.int64) * width)[:, None]
        self.low, self.width, self.size = low, width, size
        self.cdf = cdf.ravel()
        self.guide = guide.ravel()

    @staticmethod
    def _cumulative(counts: _PredictiveCounts, stations: Int, width: int) -> Float:
        """Unnormalised cumulative probabilities over each station's window (``width``
        columns; past its window a row repeats its last count, so the sum goes on growing
        there: it is cut to 1 after normalising)."""
        n, t = counts.n[stations], counts.t[stations]
        x = np.minimum(
            counts.low[stations][:, None] + np.arange(width), counts.high[stations][:, None]
        )
        base = counts.log_factorial.take(x)
        base += counts.log_factorial.take(n[:, None] - x)
        up = x + t[:, None]
        down = np.subtract((2 * n - t)[:, None], x, out=x)
        probability = np.zeros(up.shape)
        term = np.empty(up.shape)
        other = np.empty(up.shape)
        for k in range(counts.alpha.size):
            constant = counts._log_constant(k, n, t, counts.log_weights[stations, k])
            if not np.isfinite(constant).any():
                continue  # no station of the group has weight on this component
            np.take(counts.gamma_a[k], up, out=term)
            np.take(counts.gamma_b[k], down, out=other)
            term += other
            term -= base
            term += constant[:, None]
            np.exp(term, out=term)
            probability += term
        cumulative: Float = np.cumsum(probability, axis=1, out=probability)
        return cumulative

    def draw(self, rng: np.random.Generator, rows: int) -> Int:
        """``rows`` draws of ``t*`` for every station of the block (rows x stations)."""
        width, size = self.width, self.size
        u = rng.random((rows, size))
        cell = (u * width).astype(np.int64)
        np.minimum(cell, width - 1, out=cell)
        cell += np.arange(size, dtype=np.int64) * (width + 1)
        cell = cell.ravel()
        position = self.guide[cell]
        flat_u = u.ravel()
        cdf = self.cdf
        # a few steps up from the guide settle almost every draw; a bisection between the
        # guide's bounds settles the rest
        need = np.flatnonzero(cdf[position] <= flat_u)
        for _ in range(3):
            if need.size == 0:
                break
            position[need] += 1
            need = need[cdf[position[need]] <= flat_u[need]]
        if need.size:
            low, high, target = position[need] + 1, self.guide[cell[need] + 1], flat_u[need]
            while True:
                open_ = low < high
                if not open_.any():
                    break
                middle = (low + high) >> 1
                above = cdf[np.minimum(middle, cdf.size - 1)] <= target
                low = np.where(open_ & above, middle + 1, low)
                high = np.where(open_ & ~above, middle, high)
            position[need] = low
        offsets = np.arange(size, dtype=np.int64) * width
        drawn: Int = position.reshape(rows, size) - offsets + self.low
        return drawn


def _resample_block(
    model: _Model,
    counts: _PredictiveCounts,
    stations: Int,
    rng: np.random.Generator,
    density: _RDensity,
    fine: Float,
    bins: Int,
) -> None:
    """Add the resamples of ``stations`` to every replicate's linear bins and bin counts.

    The package's ``resample`` for these stations: ``t*`` from its predictive table (see
    :class:`_PredictiveCounts`), then the share's component from its posterior weight,
    ``q ~ Beta(v + a'_k, t - v + b'_k)``, ``v* ~ Binomial(t*, q)``, ``y* = v* / t*`` (0 where
    ``t* = 0``).
    """
    table = counts.table(stations)
    denominator = model.denominator[stations]
    votes = model.votes[stations]
    cumulative = np.ascontiguousarray(model.share_cumulative[stations])
    alpha, beta = model.share_fit.alpha, model.share_fit.beta
    first = votes.astype(np.float64)
    second = (denominator - votes).astype(np.float64)
    grid = density.grid
    replicates = fine.shape[0]
    for start in range(0, replicates, _BLOCK_REPLICATES):
        rows = min(_BLOCK_REPLICATES, replicates - start)
        drawn = table.draw(rng, rows)
        k = _draw_component(rng, cumulative, rows)
        q = rng.beta(first + alpha[k], second + beta[k])
        votes_new = rng.binomial(drawn, q)
        share = np.zeros(drawn.shape)
        np.divide(votes_new, drawn, out=share, where=drawn > 0)
        density.add_bins(share, fine[start : start + rows])
        index = _bin_index(share.ravel(), grid).reshape(rows, stations.size)
        index += (np.arange(rows, dtype=np.int64) * grid)[:, None]
        counted = np.bincount(index.ravel(), minlength=rows * grid)
        bins[start : start + rows] += counted.reshape(rows, grid)


def _simulate(model: _Model, density: _RDensity, replicates: int, seed: int) -> tuple[Float, Float]:
    """Densities and bin proportions of ``replicates`` resamples (replicates x grid each).

    Stations go in blocks of similar table widths, each block with its own random generator
    (children of ``seed``); the blocks are dealt to ``_LANES`` lanes run on threads (numpy's
    samplers release the GIL), each adding into its own partial sums, added in lane order.
    """
    units = model.votes.size
    counts = _PredictiveCounts(model)
    order = np.argsort(counts.high - counts.low, kind="stable")
    blocks = [order[s : s + _BLOCK_STATIONS] for s in range(0, units, _BLOCK_STATIONS)]
    children = np.random.SeedSequence(seed).spawn(len(blocks))
    lanes = [range(lane, len(blocks), _LANES) for lane in range(min(_LANES, len(blocks)))]

    def run_lane(members: range) -> tuple[Float, Int]:
        fine = np.zeros((replicates, density.size))
        bins = np.zeros((replicates, density.grid), dtype=np.int64)
        for b in members:
            rng = np.random.default_rng(children[b])
            _resample_block(model, counts, blocks[b], rng, density, fine, bins)
        return fine, bins

    workers = max(1, min(len(lanes), os.cpu_count() or 1))
    if workers == 1:
        partial = [run_lane(members) for members in lanes]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            partial = list(pool.map(run_lane, lanes))
    fine, bins = partial[0]
    for more_fine, more_bins in partial[1:]:
        fine += more_fine
        bins += more_bins
    densities = density.smooth(fine, np.full(replicates, float(units)))
    return densities, bins / units


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
    #: the default suite runs the package's own 1,000 resamples (and 1,000 interval draws)
    suite_parameters: ClassVar[Mapping[str, Any]] = {}
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

        # The two mixtures are independent fits: one on a second thread (numpy releases the
        # GIL in the objective's array work).
        with ThreadPoolExecutor(max_workers=2) as pool:
            turnout_job = pool.submit(
                fit_beta_binomial_mixture, valid, registered, max_components=self.max_components
            )
            share_fit = fit_beta_binomial_mixture(votes, valid, max_components=self.max_components)
            turnout_fit = turnout_job.result()
        model = _Model(
            registered=registered,
            denominator=valid,
            votes=votes,
            turnout_fit=turnout_fit,
            share_fit=share_fit,
            turnout_weights=turnout_fit.responsibilities(valid, registered),
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

    #: the spike points (share, excess, observed and expected density) as a typed view
    detail_type: ClassVar[type[SpikePoints]] = SpikePoints

    @classmethod
    def sections(cls, result: MethodResult) -> tuple[Section, ...]:
        """The default sections, then the largest spike points."""
        points = detail_of(result, SpikePoints)
        extra = (points.table(),) if points is not None and points.points else ()
        return (*super().sections(result), *extra)


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
