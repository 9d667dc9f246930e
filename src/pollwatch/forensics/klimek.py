"""Election fingerprints and the Klimek et al. (2012) two-component anomaly model.

Two methods:

``klimek-fingerprint``
    The *election fingerprint* of Klimek, Yegorov, Hanel & Thurner (2012, "Statistical
    detection of systematic election irregularities", PNAS 109(41):16469-16473): the 2-D
    histogram of polling stations over turnout ``t = ballots_cast / registered`` and the
    leader's vote share ``v = votes(leader) / valid`` (``bins`` x ``bins`` bins over [0, 1]^2).
    Beside it, the *standardised election fingerprint* (SEF) of Jimenez, Hidalgo & Klimek (2017,
    "Testing for voter rigging in small polling stations", Science Advances 3(6):e1602363): each
    station's logit turnout and logit leader share, ``ln(t / (1 - t))`` and ``ln(v / (1 - v))``
    (Klimek's logarithmic vote rate is ``nu = ln((1 - v) / v) = -logit(v)``), standardised
    within its geographic unit (``standardise_within``, the district by default) so that honest
    differences between places (the bimodality of a country with two political cultures) do
    not show. Descriptive (no p-value). The statistic is the share of stations in the corner
    ``t > corner`` and ``v > corner`` (0.95 by default), beside what a bivariate normal fitted
    robustly to the bulk of the stations expects there; the details give the excess kurtosis of
    the standardised logarithmic vote and turnout rates, the paper's data-collapse measure.

``klimek-fraud-model``
    The parametric model of the same PNAS paper. A clean station draws its turnout and the
    leader's share from normal distributions (truncated to (0, 1)) whose centres and widths are
    those of the main peak of the fingerprint. A fraction ``f_i`` of stations has *incremental*
    anomalies: a fraction ``x`` of the non-voters and a fraction ``x ** alpha`` of the other
    candidates' votes are added to the leader, ``x = |N(0, theta)|`` (truncated below 1);
    a fraction ``f_e`` has *extreme* anomalies: the same with ``x = 1 - |N(0, 0.075)|``, almost
    everything to the leader. ``alpha`` (the deviation parameter) weighs ballot stuffing
    (non-voters) against vote transfers (other candidates).

Estimation (exactly, see docs/methods/klimek.md):

1. Clean peak. ``(a, v)`` is the maximum of the fingerprint smoothed with a gaussian kernel of
   ``smoothing`` bins, searched outside the corner ``t > 0.95 or v > 0.95``. The widths are
   left half-widths, ``sigma_a = sqrt(mean((t_i - a)^2))`` and ``sigma_v = sqrt(mean((v_i -
   v)^2))`` over the stations with ``t_i < a`` and ``v_i < v`` (the quadrant that the model's
   anomalies never reach, since they only push stations up and right), and
   ``theta = sqrt(sqrt(mean((v_i - v)^2 | v_i > v)))``, as in Klimek's ElectionFitter code
   (converted to R by Mebane & Egami in EFToolkit's ``ComputeKlimekModel``).
2. Components. With every station's own ``registered`` (sorted by station id, so the draws do
   not depend on row order), ``simulation_copies`` copies of the election are simulated as
   counts, once clean and, from the same clean draws and the same ``x`` draws, with
   incremental and with extreme anomalies for each ``alpha``; each component's fingerprint is
   normalised to a probability histogram ``p_c``, ``p_i``, ``p_e``.
   Assigning stations to components at random with probabilities ``(1 - f_i - f_e, f_i, f_e)``,
   as Klimek's simulation does, gives the expected fingerprint
   ``n * ((1 - f_i - f_e) p_c + f_i p_i + f_e p_e)``; pollwatch uses this expectation
   directly instead of one random assignment per grid point (less Monte Carlo noise, and the
   grid search becomes a quadratic form, which is what makes a 95,000-station fit take seconds).
3. Fit. ``(f_i, f_e, alpha)`` minimise the sum over bins of the squared difference between the
   observed and the expected fingerprint on the grid ``f_i`` in ``0, f_i_step, ..., 1``,
   ``f_e`` in ``0, f_e_step, ..., f_e_max`` (``f_i + f_e <= 1``) and ``alpha`` in ``alphas``.
4. Uncertainty. ``replicates`` bootstrap replicates resample stations with replacement and
   repeat steps 1-3 (fresh simulations); percentile intervals at ``interval_level``.

Pitfalls: the model's clean distribution is a single peak with independent turnout and share;
countries with two political cultures, correlated turnout and share, or many special stations
(hospitals, prisons, abroad: near 100% turnout and unusual shares) get non-zero ``f_i`` and
``f_e`` without any manipulation, so the fit is compared with clean references, never read
alone. ``f_i`` is sensitive to the loss and the binning (Mebane & Kalinin's refit of the same
model gives Russia 2011 ``f_i = 0.121`` where the paper has 0.64). Stations with turnout above
1 (voters added on the day, absentee certificates) are dropped, as are regions where the leader
received no vote at all (did not stand there, e.g. the CDU in Bavaria).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import ndimage, special, stats

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    Selection,
    eligible_stations,
)
from pollwatch.results.model import Election

__all__ = [
    "PUBLISHED_FITS",
    "KlimekFingerprint",
    "KlimekFraudModel",
    "fingerprint_counts",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_PNAS = (
    "Klimek, P., Yegorov, Y., Hanel, R. & Thurner, S. (2012). Statistical detection of "
    "systematic election irregularities. PNAS 109(41):16469-16473. doi:10.1073/pnas.1210722109"
)
_SCIADV = (
    "Jimenez, R., Hidalgo, M. & Klimek, P. (2017). Testing for voter rigging in small polling "
    "stations. Science Advances 3(6):e1602363. doi:10.1126/sciadv.1602363"
)
#: width of the extreme-anomaly draw ``1 - |N(0, 0.075)|`` in Klimek's ElectionFitter code
_EXTREME_WIDTH = 0.075

#: Published fits of the same model (f_i, f_e), for the details and the docs.
PUBLISHED_FITS: dict[str, dict[str, dict[str, float]]] = {
    "Klimek et al. 2012 (PNAS)": {
        "russia-2011": {"f_i": 0.64, "f_e": 0.033},
        "russia-2012": {"f_i": 0.39, "f_e": 0.021},
    },
    "Mebane & Kalinin refit": {
        "russia-2011": {"f_i": 0.121, "f_e": 0.0032},
        "russia-2012": {"f_i": 0.084, "f_e": 0.0020},
    },
}


# --- shared preparation ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Stations:
    """The stations a Klimek method uses, sorted by station id."""

    selection: Selection
    leader: str
    station_id: list[str]
    registered: IntArray
    turnout: FloatArray
    share: FloatArray
    leader_votes: IntArray
    valid: IntArray
    groups: IntArray


def _prepare(election: Election, candidate: str | None, group_column: str | None) -> _Stations:
    if candidate is None:
        leader = election.leader()
        if leader is None:
            raise MethodNotApplicable(
                f"election {election.id!r} has no candidates", hint="import vote counts first"
            )
        column = leader.column
    else:
        column = election.column_of(candidate)
    region_votes = pl.col(column).fill_null(0).sum().over(pl.col("region").fill_null(""))
    selection = eligible_stations(
        election,
        require=("registered", "ballots_cast", "valid"),
        extra={
            "no registered voters": pl.col("registered") > 0,
            "no valid votes": pl.col("valid") > 0,
            f"missing {column} votes": pl.col(column).is_not_null(),
            "turnout above 1": pl.col("ballots_cast") <= pl.col("registered"),
            f"regions where {column} received no vote": region_votes > 0,
        },
    )
    frame = selection.stations.sort("station_id")
    registered = frame["registered"].to_numpy().astype(np.int64)
    ballots = frame["ballots_cast"].to_numpy().astype(np.int64)
    valid = frame["valid"].to_numpy().astype(np.int64)
    votes = np.minimum(frame[column].to_numpy().astype(np.int64), valid)
    # group codes (missing names form one group of their own)
    groups: IntArray = (
        frame[group_column].cast(pl.Utf8).fill_null("").rank("dense").to_numpy().astype(np.int64)
        - 1
        if group_column is not None and group_column in frame.columns
        else np.zeros(frame.height, dtype=np.int64)
    )
    return _Stations(
        selection=selection,
        leader=column,
        station_id=frame["station_id"].to_list(),
        registered=registered,
        turnout=ballots / registered,
        share=votes / valid,
        leader_votes=votes,
        valid=valid,
        groups=groups,
    )


def _bin_index(values: FloatArray, bins: int) -> IntArray:
    index: IntArray = np.clip(np.floor(values * bins), 0, bins - 1).astype(np.int64)
    return index


def fingerprint_counts(turnout: FloatArray, share: FloatArray, bins: int) -> FloatArray:
    """Stations per (turnout, share) bin: ``bins`` x ``bins`` equal bins over [0, 1]^2.

    Row ``i`` is turnout bin ``[i / bins, (i + 1) / bins)``, column ``j`` share bin; 1.0 falls
    in the last bin. Vectorised (``bincount``), so it costs milliseconds for 100,000 stations.
    """
    flat = _bin_index(turnout, bins) * bins + _bin_index(share, bins)
    counts = np.bincount(flat, minlength=bins * bins).astype(np.float64)
    return counts.reshape(bins, bins)


def _heatmap(
    counts: FloatArray,
    *,
    title: str,
    x_range: tuple[float, float] = (0.0, 1.0),
    y_range: tuple[float, float] = (0.0, 1.0),
    x_title: str = "turnout",
    y_title: str = "leader's vote share",
    count_title: str = "stations",
) -> dict[str, Any]:
    """A Vega-Lite heatmap of a binned 2-D histogram; only non-empty bins are sent."""
    bins_x, bins_y = counts.shape
    x_edges = np.linspace(*x_range, bins_x + 1)
    y_edges = np.linspace(*y_range, bins_y + 1)
    rows, cols = np.nonzero(counts > 0.005)
    values = [
        {
            "x0": round(float(x_edges[i]), 4),
            "x1": round(float(x_edges[i + 1]), 4),
            "y0": round(float(y_edges[j]), 4),
            "y1": round(float(y_edges[j + 1]), 4),
            "count": round(float(counts[i, j]), 2),
        }
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True)
    ]
    return {
        "$schema": _SCHEMA,
        "title": title,
        "width": 400,
        "height": 400,
        "data": {"values": values},
        "mark": {"type": "rect"},
        "encoding": {
            "x": {
                "field": "x0",
                "type": "quantitative",
                "title": x_title,
                "scale": {"domain": list(x_range)},
            },
            "x2": {"field": "x1"},
            "y": {
                "field": "y0",
                "type": "quantitative",
                "title": y_title,
                "scale": {"domain": list(y_range)},
            },
            "y2": {"field": "y1"},
            "color": {
                "field": "count",
                "type": "quantitative",
                "title": count_title,
                "scale": {"type": "symlog", "scheme": "viridis"},
            },
            "tooltip": [
                {"field": "x0", "title": f"{x_title} from"},
                {"field": "y0", "title": f"{y_title} from"},
                {"field": "count", "title": count_title},
            ],
        },
    }


def _check_fraction(name: str, value: float, low: float, high: float) -> None:
    if not (low < value < high):
        raise PollwatchError(
            f"parameter {name}={value!r} is out of range",
            hint=f"{name} must lie strictly between {low} and {high}",
        )


def _robust_corner_expectation(turnout: FloatArray, share: FloatArray, corner: float) -> float:
    """P(t > corner, v > corner) under a bivariate normal fitted robustly to the bulk.

    Centre: medians; scales: 1.4826 * MAD; correlation: Pearson correlation of the stations
    within 2.5 robust scales of the centre in both coordinates (the core that anomalies do not
    reach), corrected for the truncation only approximately (it is a reference, not a test).
    """
    centre = np.array([np.median(turnout), np.median(share)])
    scale = 1.4826 * np.array(
        [np.median(np.abs(turnout - centre[0])), np.median(np.abs(share - centre[1]))]
    )
    if np.any(scale <= 0):
        return float("nan")
    z_t = (turnout - centre[0]) / scale[0]
    z_v = (share - centre[1]) / scale[1]
    core = (np.abs(z_t) < 2.5) & (np.abs(z_v) < 2.5)
    rho = float(np.corrcoef(z_t[core], z_v[core])[0, 1]) if core.sum() > 10 else 0.0
    if not np.isfinite(rho):
        rho = 0.0
    rho = float(np.clip(rho, -0.99, 0.99))
    limit = (np.array([corner, corner]) - centre) / scale
    cov = np.array([[1.0, rho], [rho, 1.0]])
    both_below = float(stats.multivariate_normal(mean=[0.0, 0.0], cov=cov).cdf(limit))
    p_t = float(special.ndtr(limit[0]))
    p_v = float(special.ndtr(limit[1]))
    return max(0.0, 1.0 - p_t - p_v + both_below)


def _excess_kurtosis(values: FloatArray) -> float | None:
    if values.size < 4 or float(np.std(values)) == 0.0:
        return None
    return float(stats.kurtosis(values, fisher=True, bias=False))


def _logit_counts(part: IntArray, whole: IntArray) -> FloatArray:
    """Empirical logit ``ln((k + 1/2) / (n - k + 1/2))``: finite at 0% and 100%."""
    return np.asarray(np.log((part + 0.5) / (whole - part + 0.5)), dtype=np.float64)


def _standardise_within(
    values: FloatArray, groups: IntArray, minimum: int
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Subtract each group's mean and divide by its standard deviation.

    Returns the standardised values and a mask of stations whose group is usable (at least
    ``minimum`` stations and a positive standard deviation); ``groups`` are codes 0, 1, ...
    """
    inverse = groups
    size = np.bincount(inverse).astype(np.float64)
    mean = np.bincount(inverse, weights=values) / size
    second = np.bincount(inverse, weights=values * values) / size
    std = np.sqrt(np.maximum(second - mean * mean, 0.0) * size / np.maximum(size - 1.0, 1.0))
    usable = (size[inverse] >= minimum) & (std[inverse] > 1e-12)
    out = np.where(usable, (values - mean[inverse]) / np.where(std > 0, std, 1.0)[inverse], 0.0)
    return out.astype(np.float64), usable


# --- the fingerprint ----------------------------------------------------------------------
@METHODS.register("klimek-fingerprint")
@dataclass(frozen=True)
class KlimekFingerprint(Method):
    """Turnout-vs-leader-share fingerprint and its standardised variant (descriptive).

    Parameters:
        bins: bins per axis of the fingerprint over [0, 1] (100: one percentage point).
        corner: the corner ``turnout > corner and share > corner`` whose stations are counted.
        standardise_within: hierarchy column within which the SEF standardises the logit
            rates (Jimenez et al. 2017 standardise against neighbouring stations).
        sef_bins: bins per axis of the SEF over [-sef_range, sef_range].
        sef_range: half-width of the SEF axes, in standard deviations.
        min_group: smallest group that is standardised on its own; stations of smaller groups
            are left out of the SEF (counted in the details).
        candidate: the candidate whose share is used (name or column); default the leader.
    """

    name: ClassVar[str] = "klimek-fingerprint"
    title: ClassVar[str] = "Election fingerprint (turnout vs leader's share)"
    reference: ClassVar[str] = f"{_PNAS}; {_SCIADV}"
    needs: ClassVar[tuple[str, ...]] = ("registered", "ballots_cast", "valid")
    stochastic: ClassVar[bool] = False
    conformance_parameters: ClassVar[Mapping[str, Any]] = {"bins": 50, "sef_bins": 20}

    bins: int = 100
    corner: float = 0.95
    standardise_within: str = "district"
    sef_bins: int = 50
    sef_range: float = 5.0
    min_group: int = 10
    candidate: str | None = None

    def __post_init__(self) -> None:
        if not (10 <= self.bins <= 1000):
            raise PollwatchError(
                f"parameter bins={self.bins!r} is out of range", hint="bins must be 10 to 1000"
            )
        if not (4 <= self.sef_bins <= 500):
            raise PollwatchError(
                f"parameter sef_bins={self.sef_bins!r} is out of range",
                hint="sef_bins must be 4 to 500",
            )
        _check_fraction("corner", self.corner, 0.5, 1.0)
        if not (0 < self.sef_range <= 50):
            raise PollwatchError(
                f"parameter sef_range={self.sef_range!r} is out of range",
                hint="sef_range must be above 0 and at most 50 (standard deviations)",
            )
        if self.min_group < 2:
            raise PollwatchError(
                f"parameter min_group={self.min_group!r} is out of range",
                hint="min_group must be at least 2 (a standard deviation needs two stations)",
            )
        if self.standardise_within not in ("region", "constituency", "district", "municipality"):
            raise PollwatchError(
                f"parameter standardise_within={self.standardise_within!r} is not a level",
                hint="use one of region, constituency, district, municipality",
            )

    def run(self, election: Election) -> MethodResult:
        data = _prepare(election, self.candidate, self.standardise_within)
        n = data.turnout.size
        counts = fingerprint_counts(data.turnout, data.share, self.bins)
        in_corner = (data.turnout > self.corner) & (data.share > self.corner)
        corner_count = int(in_corner.sum())
        corner_share = corner_count / n
        expected_share = _robust_corner_expectation(data.turnout, data.share, self.corner)
        expected_count = expected_share * n if np.isfinite(expected_share) else float("nan")

        ballots = np.rint(data.turnout * data.registered).astype(np.int64)
        log_turnout = _logit_counts(ballots, data.registered)
        log_share = _logit_counts(data.leader_votes, data.valid)
        # Klimek's logarithmic vote rate nu = ln((N - W) / W) = -logit(share), rescaled to mean
        # 0 and variance 1 over the whole election (the paper's data collapse).
        nu = -log_share
        kurt_nu = _excess_kurtosis((nu - nu.mean()) / nu.std()) if nu.std() > 0 else None
        kurt_t = (
            _excess_kurtosis((log_turnout - log_turnout.mean()) / log_turnout.std())
            if log_turnout.std() > 0
            else None
        )
        z_t, ok_t = _standardise_within(log_turnout, data.groups, self.min_group)
        z_v, ok_v = _standardise_within(log_share, data.groups, self.min_group)
        usable = ok_t & ok_v
        r = self.sef_range
        sef = fingerprint_counts(
            (np.clip(z_t[usable], -r, r) + r) / (2 * r),
            (np.clip(z_v[usable], -r, r) + r) / (2 * r),
            self.sef_bins,
        )
        level = self.standardise_within
        charts = {
            "fingerprint": _heatmap(
                counts, title=f"{election.id}: stations by turnout and {data.leader} share"
            ),
            "standardised_fingerprint": _heatmap(
                sef,
                title=f"{election.id}: standardised fingerprint (within {level})",
                x_range=(-r, r),
                y_range=(-r, r),
                x_title=f"logit turnout, standardised within {level}",
                y_title=f"logit {data.leader} share, standardised within {level}",
            ),
        }
        return self.result(
            election,
            statistic_name=f"share of stations with turnout and leader share above {self.corner}",
            statistic=corner_share,
            sample_size=n,
            effect_name="excess corner stations over the robust bivariate normal",
            effect=(corner_count - expected_count) if np.isfinite(expected_count) else None,
            details={
                "leader": data.leader,
                "corner": self.corner,
                "corner_stations": corner_count,
                "corner_share": corner_share,
                "corner_expected_stations": expected_count,
                "corner_expected_share": expected_share,
                "excess_kurtosis_log_vote_rate": kurt_nu,
                "excess_kurtosis_log_turnout_rate": kurt_t,
                "median_turnout": float(np.median(data.turnout)),
                "median_share": float(np.median(data.share)),
                "sef_stations": int(usable.sum()),
                "sef_left_out_small_groups": int(n - usable.sum()),
                "bins": self.bins,
            },
            charts=charts,
            definitions={
                "turnout": "ballots_cast / registered",
                "share": f"votes({data.leader}) / valid",
                "filters": data.selection.describe(),
                "corner_expectation": (
                    "bivariate normal with median centre, 1.4826 * MAD scales and the "
                    "correlation of the stations within 2.5 robust scales of the centre"
                ),
                "log_vote_rate": (
                    "nu = ln((valid - W + 1/2) / (W + 1/2)), W the leader's votes (Klimek et "
                    "al. 2012, with a continuity correction for 0% and 100%), rescaled to mean "
                    "0 and standard deviation 1 over the election; kurtosis is Fisher's excess"
                ),
                "standardised_fingerprint": (
                    f"logit turnout and logit share (continuity-corrected) standardised by the "
                    f"mean and standard deviation of their {level} (Jimenez, Hidalgo & Klimek "
                    f"2017); groups under {self.min_group} stations are left out"
                ),
            },
        )


# --- the fraud model ------------------------------------------------------------------------
@dataclass(frozen=True)
class _CleanPeak:
    turnout: float
    turnout_width: float
    share: float
    share_width: float
    theta: float


def _estimate_peak(
    turnout: FloatArray, share: FloatArray, bins: int, smoothing: float
) -> _CleanPeak:
    counts = fingerprint_counts(turnout, share, bins)
    smooth = ndimage.gaussian_filter(counts, smoothing, mode="constant")
    centres = (np.arange(bins) + 0.5) / bins
    allowed = centres <= 0.95
    smooth[~allowed, :] = -1.0
    smooth[:, ~allowed] = -1.0
    i, j = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    a, v = float(centres[i]), float(centres[j])
    quadrant = (turnout < a) & (share < v)
    floor = 1.0 / bins
    if quadrant.sum() >= 5:
        sigma_a = float(np.sqrt(np.mean((turnout[quadrant] - a) ** 2)))
        sigma_v = float(np.sqrt(np.mean((share[quadrant] - v) ** 2)))
    else:
        sigma_a = float(np.std(turnout))
        sigma_v = float(np.std(share))
    above = share > v
    spread = float(np.sqrt(np.mean((share[above] - v) ** 2))) if above.any() else floor
    return _CleanPeak(
        turnout=a,
        turnout_width=max(sigma_a, floor),
        share=v,
        share_width=max(sigma_v, floor),
        theta=max(float(np.sqrt(spread)), floor),
    )


def _truncated_normal(
    rng: np.random.Generator, mean: float, sd: float, low: float, high: float, size: int
) -> FloatArray:
    """Inverse-CDF draws from N(mean, sd) truncated to (low, high)."""
    lo = float(special.ndtr((low - mean) / sd))
    hi = float(special.ndtr((high - mean) / sd))
    u = rng.uniform(max(lo, 1e-15), min(hi, 1 - 1e-15), size)
    out: FloatArray = mean + sd * special.ndtri(u)
    return out


@dataclass(frozen=True)
class _Components:
    """Probability fingerprints of the model's components, flattened, and votes moved."""

    clean: FloatArray
    incremental: dict[float, tuple[FloatArray, float]]
    extreme: dict[float, tuple[FloatArray, float]]


def _probability(voters: IntArray, leader: IntArray, registered: IntArray, bins: int) -> FloatArray:
    ok = voters > 0
    counts = fingerprint_counts(voters[ok] / registered[ok], leader[ok] / voters[ok], bins).ravel()
    total = counts.sum()
    return counts / total if total > 0 else counts


def _simulate_components(
    rng: np.random.Generator,
    registered: IntArray,
    peak: _CleanPeak,
    alphas: Sequence[float],
    bins: int,
) -> _Components:
    """Simulate every station clean, then with incremental and with extreme anomalies.

    The three components share the clean draws and, across ``alpha``, the draws of ``x``
    (common random numbers): the differences between components are then not blurred by
    independent noise, and a fit costs one set of draws.
    """
    n = registered.size
    turnout = _truncated_normal(rng, peak.turnout, peak.turnout_width, 0.0, 1.0, n)
    share = _truncated_normal(rng, peak.share, peak.share_width, 0.0, 1.0, n)
    voters = np.rint(registered * turnout).astype(np.int64)
    leader = np.rint(voters * share).astype(np.int64)
    others = voters - leader
    non_voters = registered - voters
    clean = _probability(voters, leader, registered, bins)
    x_incremental = np.minimum(_truncated_normal(rng, 0.0, peak.theta, 0.0, 1.0, n), 1.0)
    x_extreme = 1.0 - np.minimum(_truncated_normal(rng, 0.0, _EXTREME_WIDTH, 0.0, 1.0, n), 1.0)
    result: dict[str, dict[float, tuple[FloatArray, float]]] = {"incremental": {}, "extreme": {}}
    for kind, x in (("incremental", x_incremental), ("extreme", x_extreme)):
        stuffed = np.floor(x * non_voters).astype(np.int64)
        for alpha in alphas:
            taken = np.rint(x**alpha * others).astype(np.int64)
            probability = _probability(voters + stuffed, leader + stuffed + taken, registered, bins)
            result[kind][float(alpha)] = (probability, float((stuffed + taken).mean()))
    return _Components(clean=clean, incremental=result["incremental"], extreme=result["extreme"])


@dataclass(frozen=True)
class _Fit:
    f_i: float
    f_e: float
    alpha: float
    loss: float
    loss_fair: float
    moved_votes: float
    peak: _CleanPeak
    model: FloatArray
    fair: FloatArray


class _Grid:
    """The (f_i, f_e) grid, flattened, with f_i + f_e <= 1."""

    def __init__(self, f_i_step: float, f_e_step: float, f_e_max: float) -> None:
        f_i = np.round(np.arange(0.0, 1.0 + f_i_step / 2, f_i_step), 10)
        f_e = np.round(np.arange(0.0, f_e_max + f_e_step / 2, f_e_step), 10)
        grid_i, grid_e = np.meshgrid(f_i, f_e, indexing="ij")
        keep = grid_i + grid_e <= 1.0 + 1e-12
        self.f_i: FloatArray = grid_i[keep]
        self.f_e: FloatArray = grid_e[keep]


def _fit(
    rng: np.random.Generator,
    turnout: FloatArray,
    share: FloatArray,
    registered: IntArray,
    method: KlimekFraudModel,
    grid: _Grid,
) -> _Fit:
    n = turnout.size
    bins = method.bins
    observed = fingerprint_counts(turnout, share, bins).ravel() / n
    peak = _estimate_peak(turnout, share, bins, method.smoothing)
    sizes = np.tile(registered, method.simulation_copies)
    components = _simulate_components(rng, sizes, peak, method.alphas, bins)
    clean = components.clean
    residual = observed - clean
    best: tuple[float, float, float, float, FloatArray, float] | None = None
    for alpha in method.alphas:
        incremental, moved_i = components.incremental[float(alpha)]
        extreme, moved_e = components.extreme[float(alpha)]
        d_i = incremental - clean
        d_e = extreme - clean
        g_ii, g_ie, g_ee = d_i @ d_i, d_i @ d_e, d_e @ d_e
        b_i, b_e = residual @ d_i, residual @ d_e
        loss = (
            residual @ residual
            - 2 * (grid.f_i * b_i + grid.f_e * b_e)
            + grid.f_i**2 * g_ii
            + 2 * grid.f_i * grid.f_e * g_ie
            + grid.f_e**2 * g_ee
        )
        k = int(np.argmin(loss))
        value = float(loss[k]) * n * n
        if best is None or value < best[3] - 1e-9:
            f_i, f_e = float(grid.f_i[k]), float(grid.f_e[k])
            model = clean + f_i * d_i + f_e * d_e
            moved = f_i * moved_i + f_e * moved_e
            best = (f_i, f_e, float(alpha), value, model, moved)
    assert best is not None
    f_i, f_e, alpha, value, model, moved = best
    return _Fit(
        f_i=f_i,
        f_e=f_e,
        alpha=alpha,
        loss=value,
        loss_fair=float(residual @ residual) * n * n,
        moved_votes=moved * n,
        peak=peak,
        model=(model * n).reshape(bins, bins),
        fair=(clean * n).reshape(bins, bins),
    )


@METHODS.register("klimek-fraud-model")
@dataclass(frozen=True)
class KlimekFraudModel(Method):
    """Fit of the Klimek et al. (2012) model: shares ``f_i`` and ``f_e`` of anomalous stations.

    Parameters:
        bins: bins per axis of the fingerprints compared in the fit (over [0, 1]).
        alphas: values of the deviation parameter ``alpha`` tried.
        f_i_step: grid step of the incremental fraction ``f_i`` over [0, 1].
        f_e_step, f_e_max: grid step and upper end of the extreme fraction ``f_e``.
        smoothing: gaussian smoothing (in bins) of the fingerprint when locating its peak.
        simulation_copies: copies of the election simulated per component (more: less noise).
        replicates: bootstrap replicates (stations resampled) for the intervals; 0 for none.
        interval_level: level of the percentile intervals.
        candidate: the candidate whose share is used (name or column); default the leader.
        seed: seed of the simulations and the bootstrap.
    """

    name: ClassVar[str] = "klimek-fraud-model"
    title: ClassVar[str] = "Klimek et al. anomaly model (incremental and extreme)"
    reference: ClassVar[str] = _PNAS
    needs: ClassVar[tuple[str, ...]] = ("registered", "ballots_cast", "valid")
    stochastic: ClassVar[bool] = True
    conformance_parameters: ClassVar[Mapping[str, Any]] = {
        "bins": 50,
        "alphas": (1.0,),
        "f_i_step": 0.05,
        "f_e_step": 0.01,
        "f_e_max": 0.1,
        "simulation_copies": 1,
        "replicates": 4,
    }

    bins: int = 100
    alphas: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    f_i_step: float = 0.005
    f_e_step: float = 0.0005
    f_e_max: float = 0.2
    smoothing: float = 2.0
    simulation_copies: int = 2
    replicates: int = 20
    interval_level: float = 0.95
    candidate: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not (10 <= self.bins <= 500):
            raise PollwatchError(
                f"parameter bins={self.bins!r} is out of range", hint="bins must be 10 to 500"
            )
        if not self.alphas or any(not (0 < a <= 10) for a in self.alphas):
            raise PollwatchError(
                f"parameter alphas={self.alphas!r} is out of range",
                hint="give at least one alpha, each above 0 and at most 10",
            )
        _check_fraction("f_i_step", self.f_i_step, 0.0, 1.0)
        _check_fraction("f_e_step", self.f_e_step, 0.0, 1.0)
        if not (self.f_e_step <= self.f_e_max <= 1.0):
            raise PollwatchError(
                f"parameter f_e_max={self.f_e_max!r} is out of range",
                hint="f_e_max must be at least f_e_step and at most 1",
            )
        if not (0 < self.smoothing <= 20):
            raise PollwatchError(
                f"parameter smoothing={self.smoothing!r} is out of range",
                hint="smoothing must be above 0 and at most 20 (bins)",
            )
        if not (1 <= self.simulation_copies <= 50):
            raise PollwatchError(
                f"parameter simulation_copies={self.simulation_copies!r} is out of range",
                hint="simulation_copies must be 1 to 50",
            )
        if not (0 <= self.replicates <= 10_000):
            raise PollwatchError(
                f"parameter replicates={self.replicates!r} is out of range",
                hint="replicates must be 0 to 10000",
            )
        _check_fraction("interval_level", self.interval_level, 0.0, 1.0)

    def parameters(self) -> dict[str, Any]:
        values = super().parameters()
        values["alphas"] = [float(a) for a in self.alphas]
        return values

    def run(self, election: Election) -> MethodResult:
        data = _prepare(election, self.candidate, None)
        n = data.turnout.size
        if n < 20:
            raise MethodNotApplicable(
                f"election {election.id!r}: {n} usable stations, too few for a 2-D fit",
                hint="the model needs at least 20 stations with turnout and vote counts",
            )
        grid = _Grid(self.f_i_step, self.f_e_step, self.f_e_max)
        rng = np.random.default_rng(self.seed)
        fit = _fit(rng, data.turnout, data.share, data.registered, self, grid)
        boot: list[tuple[float, float, float, float]] = []
        for _ in range(self.replicates):
            index = rng.integers(0, n, n)
            again = _fit(
                rng,
                data.turnout[index],
                data.share[index],
                data.registered[index],
                self,
                grid,
            )
            boot.append((again.f_i, again.f_e, again.alpha, again.moved_votes))
        tail = (1 - self.interval_level) / 2

        def interval(k: int) -> list[float] | None:
            if not boot:
                return None
            column = np.array([b[k] for b in boot])
            return [float(np.quantile(column, tail)), float(np.quantile(column, 1 - tail))]

        moved_interval = interval(3)
        peak = fit.peak
        published = {
            source: fits[election.id]
            for source, fits in PUBLISHED_FITS.items()
            if election.id in fits
        }
        observed = fingerprint_counts(data.turnout, data.share, self.bins)
        charts = {
            "observed": _heatmap(observed, title=f"{election.id}: observed fingerprint"),
            "fitted": _heatmap(
                fit.model,
                title=(
                    f"{election.id}: fitted model (f_i={fit.f_i:g}, f_e={fit.f_e:g}, "
                    f"alpha={fit.alpha:g})"
                ),
                count_title="expected stations",
            ),
            "fair": _heatmap(
                fit.fair,
                title=f"{election.id}: model without anomalies (f_i = f_e = 0)",
                count_title="expected stations",
            ),
        }
        return self.result(
            election,
            statistic_name="f_i + f_e (share of stations in the anomalous components)",
            statistic=fit.f_i + fit.f_e,
            sample_size=n,
            effect_name="votes the fitted model moves to the leader (estimate of anomalous votes)",
            effect=fit.moved_votes,
            interval=tuple(moved_interval) if moved_interval is not None else None,
            interval_level=self.interval_level if moved_interval is not None else None,
            details={
                "leader": data.leader,
                "f_i": fit.f_i,
                "f_e": fit.f_e,
                "alpha": fit.alpha,
                "f_i_interval": interval(0),
                "f_e_interval": interval(1),
                "alpha_interval": interval(2),
                "bootstrap": [
                    {"f_i": b[0], "f_e": b[1], "alpha": b[2], "moved_votes": b[3]} for b in boot
                ],
                "loss": fit.loss,
                "loss_without_anomalies": fit.loss_fair,
                "loss_reduction": (1 - fit.loss / fit.loss_fair) if fit.loss_fair > 0 else 0.0,
                "clean_peak": {
                    "turnout": peak.turnout,
                    "turnout_width": peak.turnout_width,
                    "share": peak.share,
                    "share_width": peak.share_width,
                    "theta": peak.theta,
                },
                "grid": {
                    "f_i_step": self.f_i_step,
                    "f_e_step": self.f_e_step,
                    "f_e_max": self.f_e_max,
                    "alphas": [float(a) for a in self.alphas],
                },
                "published_fits": published,
            },
            charts=charts,
            definitions={
                "turnout": "ballots_cast / registered",
                "share": f"votes({data.leader}) / valid",
                "filters": data.selection.describe(),
                "clean_model": (
                    "turnout ~ N(a, sigma_a) and share ~ N(v, sigma_v), truncated to (0, 1); "
                    "(a, v) the smoothed fingerprint's maximum outside the 95% corner, sigma "
                    "the left half-widths over stations below both"
                ),
                "anomalies": (
                    "incremental: x ~ |N(0, theta)| of non-voters and x**alpha of the other "
                    "votes to the leader; extreme: x = 1 - |N(0, 0.075)|"
                ),
                "fit": (
                    "least squares between observed and expected fingerprints "
                    f"({self.bins}x{self.bins} bins) over the (f_i, f_e, alpha) grid; "
                    f"{self.replicates} bootstrap replicates of the stations"
                ),
            },
        )
