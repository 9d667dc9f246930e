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
    ``t > corner`` and ``v > corner`` (0.95 by default), beside what a bivariate normal centred
    on the clean peak (:func:`clean_peak`, never the corner) expects there; the effect is the
    excess ``max(0, observed - expected)``; the details give the excess kurtosis of
    the standardised logarithmic vote and turnout rates, the paper's data-collapse measure.

``klimek-fraud-model``
    The parametric model of the same PNAS paper. A clean station draws its turnout and the
    leader's share from normal distributions (truncated to (0, 1)) whose centres and widths are
    those of the main peak of the fingerprint. A fraction ``f_i`` of stations has *incremental*
    anomalies: a fraction ``x`` of the non-voters and a fraction ``x ** alpha`` of the other
    candidates' votes are added to the leader, ``x = |N(0, theta)|`` (truncated below 1);
    a fraction ``f_e`` has *extreme* anomalies: the same with ``x = 1 - |N(0, 0.075)|``, almost
    everything to the leader. α (the deviation parameter, ``alpha``) weighs ballot stuffing
    (non-voters) against vote transfers (other candidates).

Estimation (exactly, see docs/methods/klimek.md):

1. Clean peak (:func:`clean_peak`). ``a`` and ``v`` are the first prominent local maxima above
   0.3 and at most 0.95 of the kernel densities of turnout and of the leader's share (Kobak's
   port of Klimek's fitter, github dkobak/elections), never the capped corner, so that an
   election where most stations are manipulated (the corner is the highest mode) keeps its
   clean peak. The widths are left half-widths, ``sigma_a = rms(t_i - a | t_i < a, v_i < v)``
   and ``sigma_v = rms(v_i - v | v_i < v)`` (the sides the anomalies never reach), and
   ``theta = sqrt(rms(v_i - v | v_i > v))``, as in Klimek's ElectionFitter code (converted to
   R by Mebane & Egami in EFToolkit's ``ComputeKlimekModel``).
2. Components. With every station's own ``registered`` (sorted by station id, so the draws do
   not depend on row order), ``simulation_copies`` copies of the election are simulated as
   counts, once clean and, from the same clean draws and the same ``x`` draws, with
   incremental and with extreme anomalies for each α; each component's fingerprint is
   normalised to a probability histogram ``p_c``, ``p_i``, ``p_e``. Assigning stations to
   components at random with probabilities ``(1 - f_i - f_e, f_i, f_e)``, as Klimek's
   simulation does, gives the expected fingerprint ``n ((1 - f_i - f_e) p_c + f_i p_i + f_e
   p_e)``; pollwatch uses this expectation directly (the grid search becomes a quadratic form).
3. Fit. ``(f_i, f_e, α)`` minimise the sum over bins of the squared difference between the
   observed and the expected fingerprint on the grid ``f_i`` in ``0, f_i_step, ..., 1``,
   ``f_e`` in ``0, f_e_step, ..., f_e_max`` (``f_i + f_e <= 1``) and α in ``alphas``, the
   α grid widened while the optimum is on its edge (``alpha_interior`` says whether it ended
   inside). Goodness of fit: the total-variation distance between the observed and fitted
   fingerprints, beside that of the fair model and the floor from sampling alone.
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
from scipy import ndimage, signal, special, stats

from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    Selection,
    eligible_stations,
    leader_of,
)
from pollwatch.forensics.parameters import (
    Boolean,
    Constraint,
    Interval,
    NoneOr,
    Options,
    Text,
    TupleOf,
    parameter_error,
)
from pollwatch.forensics.sections import FingerprintCells, Section, Table
from pollwatch.results.model import Election

__all__ = [
    "PEAK_CAP",
    "PEAK_LOWER",
    "PUBLISHED_FITS",
    "CleanPeak",
    "KlimekFingerprint",
    "KlimekFraudModel",
    "clean_peak",
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

#: Published fits of the same model, for the details and the docs: ``f_i``, ``f_e``, ``alpha``
#: and, where published, the clean peak (``turnout``, ``share``: the model's tau and nu).
#: Klimek et al. 2012 (PNAS 109(41):16469, SI): as transcribed in Kobak & Pshenichnikov's
#: notebook (github dkobak/elections, meduza2018/meduza.ipynb, "values taken from the paper").
#: Mebane & Kalinin's refit: the table Mebane gave Kobak (same repository,
#: meduza2018/mebane-kalinin.txt), rounded to 4 significant digits.
PUBLISHED_FITS: dict[str, dict[str, dict[str, float]]] = {
    "Klimek et al. 2012 (PNAS)": {
        "russia-2007": {"f_i": 0.636, "f_e": 0.038, "alpha": 2.2},
        "russia-2011": {"f_i": 0.64, "f_e": 0.033, "alpha": 2.3},
        "russia-2012": {"f_i": 0.39, "f_e": 0.021, "alpha": 1.5},
    },
    "Mebane & Kalinin refit": {
        "russia-2004": {
            "f_i": 0.04930,
            "f_e": 0.0000870,
            "alpha": 1.668,
            "turnout": 0.6923,
            "share": 0.7154,
        },
        "russia-2007": {
            "f_i": 0.03989,
            "f_e": 0.0001596,
            "alpha": 1.668,
            "turnout": 0.6711,
            "share": 0.6606,
        },
        "russia-2008": {
            "f_i": 0.01302,
            "f_e": 0.00000165,
            "alpha": 1.668,
            "turnout": 0.7553,
            "share": 0.7019,
        },
        "russia-2011": {
            "f_i": 0.1209,
            "f_e": 0.003226,
            "alpha": 1.756,
            "turnout": 0.6058,
            "share": 0.4815,
        },
        "russia-2012": {
            "f_i": 0.08440,
            "f_e": 0.002042,
            "alpha": 3.411,
            "turnout": 0.6529,
            "share": 0.6513,
        },
        "russia-2016": {
            "f_i": 0.2216,
            "f_e": 0.02192,
            "alpha": 1.668,
            "turnout": 0.4788,
            "share": 0.4913,
        },
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

    def definitions(self, **more: str) -> dict[str, str]:
        """What turnout, share and the filters mean here, then the method's own ``more``."""
        return {
            "turnout": "ballots_cast / registered",
            "share": f"votes({self.leader}) / valid",
            "filters": self.selection.describe(),
            **more,
        }


def _prepare(election: Election, candidate: str | None, group_column: str | None) -> _Stations:
    if candidate is None:
        leader = leader_of(election, hint="import vote counts first")
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
            "x": _binned_axis("x0", x_title, x_range),
            "x2": {"field": "x1"},
            "y": _binned_axis("y0", y_title, y_range),
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


def _binned_axis(field: str, title: str, domain: tuple[float, float]) -> dict[str, Any]:
    """A quantitative heatmap axis over the bins' lower edges, fixed to ``domain``."""
    return {
        "field": field,
        "type": "quantitative",
        "title": title,
        "scale": {"domain": list(domain)},
    }


def _corner_expectation(
    turnout: FloatArray, share: FloatArray, corner: float, peak: CleanPeak
) -> tuple[float, float]:
    """P(t > corner, v > corner) under a bivariate normal centred on the clean peak.

    The normal is truncated to the unit square (turnout and share cannot pass 100 %).
    Centre: the clean peak ``(a, v)`` (:func:`clean_peak`, never the capped corner); scales:
    its left half-widths; correlation: Pearson correlation of the stations within two
    half-widths of the peak in both coordinates (the clean core), 0 when fewer than 10.
    Returns the probability and the correlation. A reference for the eye, not a null.
    """
    centre = np.array([peak.turnout, peak.share])
    scale = np.array([peak.turnout_width, peak.share_width])
    z_t = (turnout - centre[0]) / scale[0]
    z_v = (share - centre[1]) / scale[1]
    core = (np.abs(z_t) < 2.0) & (np.abs(z_v) < 2.0)
    rho = float(np.corrcoef(z_t[core], z_v[core])[0, 1]) if core.sum() >= 10 else 0.0
    if not np.isfinite(rho):
        rho = 0.0
    rho = float(np.clip(rho, -0.99, 0.99))
    normal = stats.multivariate_normal(mean=[0.0, 0.0], cov=[[1.0, rho], [rho, 1.0]])

    def box(low: float, high: float) -> float:
        """P(low < t <= high and low < v <= high), by inclusion-exclusion of the CDF."""
        lo = (np.array([low, low]) - centre) / scale
        hi = (np.array([high, high]) - centre) / scale
        value = (
            normal.cdf(hi)
            - normal.cdf([lo[0], hi[1]])
            - normal.cdf([hi[0], lo[1]])
            + normal.cdf(lo)
        )
        return max(0.0, float(value))

    # truncated to the unit square, as the model's clean stations are: the mass a normal puts
    # above 100 % turnout is not corner stations
    inside = box(0.0, 1.0)
    return (box(corner, 1.0) / inside if inside > 0 else 0.0), rho


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
    fast: ClassVar[bool] = True
    in_comparison: ClassVar[bool] = True
    title: ClassVar[str] = "Election fingerprint (turnout vs leader's share)"
    reference: ClassVar[str] = f"{_PNAS}; {_SCIADV}"
    needs: ClassVar[tuple[str, ...]] = ("registered", "ballots_cast", "valid")
    stochastic: ClassVar[bool] = False
    conformance_parameters: ClassVar[Mapping[str, Any]] = {"bins": 50, "sef_bins": 20}
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "bins": Interval(int, 10, 1000),
        "corner": Interval(float, 0.5, 1, closed="neither"),
        "standardise_within": Options("region", "constituency", "district", "municipality"),
        "sef_bins": Interval(int, 4, 500),
        "sef_range": Interval(float, 0, 50, closed="right"),
        # a standard deviation needs two stations
        "min_group": Interval(int, 2, None),
        "candidate": NoneOr(Text()),
    }

    bins: int = 100
    corner: float = 0.95
    standardise_within: str = "district"
    sef_bins: int = 50
    sef_range: float = 5.0
    min_group: int = 10
    candidate: str | None = None

    def run(self, election: Election) -> MethodResult:
        data = _prepare(election, self.candidate, self.standardise_within)
        n = data.turnout.size
        counts = fingerprint_counts(data.turnout, data.share, self.bins)
        in_corner = (data.turnout > self.corner) & (data.share > self.corner)
        corner_count = int(in_corner.sum())
        corner_share = corner_count / n
        peak = clean_peak(data.turnout, data.share)
        expected_share, rho = _corner_expectation(data.turnout, data.share, self.corner, peak)
        expected_count = expected_share * n
        # Excess is clipped at 0: fewer corner stations than the normal expects is no anomaly
        # of this kind, and a negative "excess" reads as a contradiction.
        excess = max(0.0, corner_count - expected_count)

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
            effect_name=(
                "excess corner stations: max(0, observed − expected under the normal centred "
                "on the clean peak)"
            ),
            effect=excess,
            details={
                "leader": data.leader,
                "corner": self.corner,
                "corner_stations": corner_count,
                "corner_share": corner_share,
                "corner_expected_stations": expected_count,
                "corner_expected_share": expected_share,
                "corner_excess_stations": excess,
                "corner_ratio": corner_count / expected_count if expected_count > 0 else None,
                "clean_peak": peak.to_dict(),
                "reference_correlation": rho,
                "excess_kurtosis_log_vote_rate": kurt_nu,
                "excess_kurtosis_log_turnout_rate": kurt_t,
                "median_turnout": float(np.median(data.turnout)),
                "median_share": float(np.median(data.share)),
                "sef_stations": int(usable.sum()),
                "sef_left_out_small_groups": int(n - usable.sum()),
                "bins": self.bins,
            },
            charts=charts,
            definitions=data.definitions(
                corner_expectation=(
                    "bivariate normal centred on the clean peak (first local maxima above 0.3 "
                    "and at most 0.95 of the turnout and share densities), its left "
                    "half-widths as scales and the correlation of the stations within two "
                    "half-widths of it; excess = max(0, observed − expected)"
                ),
                log_vote_rate=(
                    "nu = ln((valid - W + 1/2) / (W + 1/2)), W the leader's votes (Klimek et "
                    "al. 2012, with a continuity correction for 0% and 100%), rescaled to mean "
                    "0 and standard deviation 1 over the election; kurtosis is Fisher's excess"
                ),
                standardised_fingerprint=(
                    f"logit turnout and logit share (continuity-corrected) standardised by the "
                    f"mean and standard deviation of their {level} (Jimenez, Hidalgo & Klimek "
                    f"2017); groups under {self.min_group} stations are left out"
                ),
            ),
        )

    #: the fingerprint chart's cells are what the dashboard and the comparison draw
    detail_type: ClassVar[type[FingerprintCells]] = FingerprintCells

    @classmethod
    def sections(cls, result: MethodResult) -> tuple[Section, ...]:
        """The default sections, then the corner's observed and expected stations."""
        details = result.details
        if "corner_stations" not in details:
            return super().sections(result)
        corner = Table(
            f"Stations in the corner (turnout and leader share above {details.get('corner')})",
            ("quantity", "stations"),
            (
                ("observed", details.get("corner_stations")),
                (
                    "expected (normal centred on the clean peak)",
                    details.get("corner_expected_stations"),
                ),
                ("excess", details.get("corner_excess_stations")),
            ),
            note="descriptive: no test; the expectation is a choice stated in the definitions",
        )
        return (*super().sections(result), corner)


# --- the clean peak (shared by both methods) ----------------------------------------------
#: Kobak's port of Klimek's fitter (github dkobak/elections, meduza2018) takes the first local
#: maximum above 30 %: lower modes are places where the candidate hardly stood, not the vote.
PEAK_LOWER = 0.3
#: Modes above this are the capped corner (turnout or share near 100 %), never the clean vote.
PEAK_CAP = 0.95
#: points of the grid over [0, 1] on which the 1-D densities are evaluated
_DENSITY_GRID = 1000
#: a local maximum counts as a peak when its prominence is at least this share of the highest
#: density and at least ``_PEAK_NOISE`` kernel-density standard errors
_PEAK_PROMINENCE = 0.03
_PEAK_NOISE = 4.0


@dataclass(frozen=True)
class CleanPeak:
    """The clean peak of an election's fingerprint: where honest stations sit, and how wide.

    ``turnout`` and ``share`` are the centre ``(a, v)``; ``turnout_width`` is the root mean
    square of ``t_i - a`` over the stations below the peak in both coordinates, ``share_width``
    that of ``v_i - v`` over the stations with ``v_i < v`` (the sides the model's anomalies
    never reach); ``theta = sqrt(rms(v_i - v | v_i > v))``, the spread of the incremental
    anomalies in Klimek's fitter. ``turnout_rule`` / ``share_rule`` say how each centre was
    found (:func:`clean_peak`); ``found`` is False when a coordinate fell back to its mode
    below the cap because it has no clean peak of its own.
    """

    turnout: float
    turnout_width: float
    share: float
    share_width: float
    theta: float
    turnout_rule: str
    share_rule: str

    @property
    def found(self) -> bool:
        return not any(r.startswith("fallback") for r in (self.turnout_rule, self.share_rule))

    def to_dict(self) -> dict[str, Any]:
        return {
            "turnout": self.turnout,
            "turnout_width": self.turnout_width,
            "share": self.share,
            "share_width": self.share_width,
            "theta": self.theta,
            "turnout_rule": self.turnout_rule,
            "share_rule": self.share_rule,
            "found": self.found,
        }


def _density(values: FloatArray) -> tuple[FloatArray, float]:
    """Gaussian kernel density of ``values`` on ``_DENSITY_GRID`` points over [0, 1].

    A binned kernel estimate (histogram of 0.1-point bins, then a gaussian filter), with
    Silverman's bandwidth ``1.06 min(sd, IQR / 1.349) n^(-1/5)``, at least 0.01: whole-percent
    spikes one point apart (Kobak et al. 2016) are smoothed away rather than taken for peaks.
    """
    n = values.size
    counts = np.bincount(_bin_index(values, _DENSITY_GRID), minlength=_DENSITY_GRID)
    low, high = np.percentile(values, [25, 75])
    spread = float(np.std(values))
    if high > low:
        spread = min(spread, float(high - low) / 1.349)
    bandwidth = max(1.06 * spread * n**-0.2, 0.01)
    density = ndimage.gaussian_filter1d(
        counts * (_DENSITY_GRID / n), bandwidth * _DENSITY_GRID, mode="constant"
    )
    return np.asarray(density, dtype=np.float64), bandwidth


def _first_peak(values: FloatArray) -> tuple[float | None, str]:
    """The first prominent local maximum of the density in [PEAK_LOWER, PEAK_CAP].

    None when there is none: then, if there is a prominent maximum below ``PEAK_LOWER`` (a
    candidate of a many-party election), the highest of those.
    """
    if values.size < 5:
        return None, "fallback: too few stations"
    density, bandwidth = _density(values)
    centres = (np.arange(_DENSITY_GRID) + 0.5) / _DENSITY_GRID
    peaks, properties = signal.find_peaks(density, prominence=0.0)
    if peaks.size == 0:
        return None, "fallback: no local maximum"
    # standard error of a kernel density estimate: sqrt(f / (n h 2 sqrt(pi)))
    noise = np.sqrt(density[peaks] / (values.size * bandwidth * 2 * np.sqrt(np.pi)))
    prominence = properties["prominences"]
    real = (prominence >= _PEAK_PROMINENCE * density.max()) & (prominence >= _PEAK_NOISE * noise)
    located = centres[peaks]
    above = real & (located >= PEAK_LOWER) & (located <= PEAK_CAP)
    if above.any():
        return float(located[above][0]), f"first local maximum above {PEAK_LOWER:g}"
    below = real & (located < PEAK_LOWER)
    if below.any():
        best = int(np.argmax(np.where(below, density[peaks], -1.0)))
        return float(located[best]), f"highest local maximum below {PEAK_LOWER:g}"
    return None, f"fallback: no local maximum below {PEAK_CAP:g}"


def _mode_below_cap(values: FloatArray) -> float:
    density, _ = _density(values)
    centres = (np.arange(_DENSITY_GRID) + 0.5) / _DENSITY_GRID
    return float(centres[int(np.argmax(np.where(centres <= PEAK_CAP, density, -1.0)))])


def clean_peak(turnout: FloatArray, share: FloatArray) -> CleanPeak:
    """Locate the clean peak of a fingerprint, away from the capped corner.

    Each centre is the first local maximum above 30 % of the kernel density of turnout, and of
    the leader's share (Kobak's port of Klimek's fitter, github dkobak/elections), ignoring
    maxima that are not prominent (see ``_first_peak``) and maxima above 95 %: where most
    stations are manipulated the highest mode *is* the corner, and a global mode would take the
    fraud for the clean vote. A coordinate without such a peak (Russia 2024's turnout rises
    to the corner) is located among the stations within 0.05 of the other coordinate's peak;
    failing that, it is its mode below 95 % and the peak is reported as not ``found``.
    Widths and ``theta`` as in :class:`CleanPeak` (Klimek et al. 2012, SI; Kobak's port).
    """
    a, turnout_rule = _first_peak(turnout)
    v, share_rule = _first_peak(share)
    if a is None and v is not None:
        near = np.abs(share - v) <= 0.05
        a, rule = _first_peak(turnout[near])
        turnout_rule = f"{rule}, among stations within 0.05 of the share peak"
    elif v is None and a is not None:
        near = np.abs(turnout - a) <= 0.05
        v, rule = _first_peak(share[near])
        share_rule = f"{rule}, among stations within 0.05 of the turnout peak"
    if a is None:
        a = _mode_below_cap(turnout)
        turnout_rule = f"fallback: mode below {PEAK_CAP:g} (no clean turnout peak)"
    if v is None:
        v = _mode_below_cap(share)
        share_rule = f"fallback: mode below {PEAK_CAP:g} (no clean share peak)"
    floor = 0.01
    quadrant = (turnout < a) & (share < v)
    lower_share = share < v
    sigma_a = (
        float(np.sqrt(np.mean((turnout[quadrant] - a) ** 2)))
        if quadrant.sum() >= 5
        else float(np.std(turnout))
    )
    sigma_v = (
        float(np.sqrt(np.mean((share[lower_share] - v) ** 2)))
        if lower_share.sum() >= 5
        else float(np.std(share))
    )
    above = share > v
    spread = float(np.sqrt(np.mean((share[above] - v) ** 2))) if above.any() else floor
    return CleanPeak(
        turnout=a,
        turnout_width=max(sigma_a, floor),
        share=v,
        share_width=max(sigma_v, floor),
        theta=max(float(np.sqrt(spread)), floor),
        turnout_rule=turnout_rule,
        share_rule=share_rule,
    )


# --- the fraud model ------------------------------------------------------------------------
def _truncated_normal(
    rng: np.random.Generator, mean: float, sd: float, low: float, high: float, size: int
) -> FloatArray:
    """Inverse-CDF draws from N(mean, sd) truncated to (low, high)."""
    lo = float(special.ndtr((low - mean) / sd))
    hi = float(special.ndtr((high - mean) / sd))
    u = rng.uniform(max(lo, 1e-15), min(hi, 1 - 1e-15), size)
    out: FloatArray = mean + sd * special.ndtri(u)
    return out


def _probability(voters: IntArray, leader: IntArray, registered: IntArray, bins: int) -> FloatArray:
    ok = voters > 0
    counts = fingerprint_counts(voters[ok] / registered[ok], leader[ok] / voters[ok], bins).ravel()
    total = counts.sum()
    return counts / total if total > 0 else counts


class _Components:
    """The model's components for one clean peak, simulated once, fingerprints by ``alpha``.

    Every station is simulated clean once; the incremental and the extreme components reuse
    those clean draws and one draw of ``x`` each, for every ``alpha`` (common random numbers:
    the differences between components and between values of ``alpha`` are not blurred by
    independent noise). Fingerprints are flattened probability histograms, cached by ``alpha``.

    What does not depend on ``alpha`` (the stuffed ballots, hence every station's turnout and
    its turnout bin) is computed once per kind (:class:`_Kind`); an evaluation of ``alpha``
    only recomputes the votes taken from the other candidates and the share bins.
    """

    def __init__(
        self, rng: np.random.Generator, registered: IntArray, peak: CleanPeak, bins: int
    ) -> None:
        n = registered.size
        turnout = _truncated_normal(rng, peak.turnout, peak.turnout_width, 0.0, 1.0, n)
        share = _truncated_normal(rng, peak.share, peak.share_width, 0.0, 1.0, n)
        self.registered = registered
        self.voters = np.rint(registered * turnout).astype(np.int64)
        self.leader = np.rint(self.voters * share).astype(np.int64)
        self.bins = bins
        self.clean = _probability(self.voters, self.leader, registered, bins)
        x_incremental = np.minimum(_truncated_normal(rng, 0.0, peak.theta, 0.0, 1.0, n), 1.0)
        x_extreme = 1.0 - np.minimum(_truncated_normal(rng, 0.0, _EXTREME_WIDTH, 0.0, 1.0, n), 1.0)
        self.x = {"incremental": x_incremental, "extreme": x_extreme}
        self._kinds: dict[str, _Kind] = {}
        self._cache: dict[tuple[str, float], tuple[FloatArray, float]] = {}

    def _kind(self, kind: str) -> _Kind:
        if kind not in self._kinds:
            self._kinds[kind] = _Kind(
                self.x[kind], self.registered, self.voters, self.leader, self.bins
            )
        return self._kinds[kind]

    def anomalous(self, kind: str, alpha: float) -> tuple[FloatArray, float]:
        """Fingerprint of every station with ``kind`` anomalies, and the mean votes moved."""
        key = (kind, float(alpha))
        if key not in self._cache:
            self._cache[key] = self._kind(kind).fingerprint(alpha)
        return self._cache[key]


class _Kind:
    """One kind of anomaly (one draw of ``x``) with what does not depend on ``alpha``.

    Every station gets ``stuffed = floor(x (registered - voters))`` ballots for the leader
    and ``taken = rint(x^alpha (voters - leader))`` votes from the other candidates; the
    fingerprint bins its turnout ``(voters + stuffed) / registered`` and its share ``(leader +
    stuffed + taken) / (voters + stuffed)``, over the stations with a voter. Only ``taken``
    and the share depend on ``alpha``: the rest is kept here, restricted to those stations
    (a station without a voter has no leader votes to add to and none to take: it moves
    nothing). The numbers are those of :func:`_probability` on the same stations, exactly.
    """

    def __init__(
        self, x: FloatArray, registered: IntArray, voters: IntArray, leader: IntArray, bins: int
    ) -> None:
        stuffed = np.floor(x * (registered - voters)).astype(np.int64)
        total = voters + stuffed
        ok = total > 0
        every = bool(ok.all())
        self.size = x.size
        self.bins = bins
        self.stuffed = int(stuffed.sum())
        self.x = x if every else x[ok]
        # Counts are below 2**53, so as floats they add and divide exactly as the integers do
        # (numpy divides integers as floats): the shares are bit for bit those of the counts.
        self.others = (voters - leader if every else (voters - leader)[ok]).astype(np.float64)
        self.base = (leader + stuffed if every else (leader + stuffed)[ok]).astype(np.float64)
        self.total = (total if every else total[ok]).astype(np.float64)
        turnout_bin = _bin_index(self.total / (registered if every else registered[ok]), bins)
        self.turnout_bin = (turnout_bin * bins).astype(np.float64)

    def fingerprint(self, alpha: float) -> tuple[FloatArray, float]:
        """The flattened probability fingerprint for ``alpha`` and the mean votes moved.

        In place on one buffer: ``taken = rint(x^alpha (voters - leader))``, then the share
        ``(leader + stuffed + taken) / (voters + stuffed)`` and its bin as :func:`_bin_index`.
        """
        work: FloatArray = self.x**alpha
        np.multiply(work, self.others, out=work)
        np.rint(work, out=work)  # the votes taken, whole numbers
        taken = int(work.sum())
        np.add(work, self.base, out=work)
        np.divide(work, self.total, out=work)  # the share
        np.multiply(work, self.bins, out=work)
        np.floor(work, out=work)
        np.clip(work, 0, self.bins - 1, out=work)
        np.add(work, self.turnout_bin, out=work)
        flat = work.astype(np.int64)
        counts = np.bincount(flat, minlength=self.bins * self.bins).astype(np.float64)
        total = counts.sum()
        probability = counts / total if total > 0 else counts
        moved = np.float64(self.stuffed + taken) / self.size
        return probability, float(moved)


@dataclass(frozen=True)
class _Fit:
    f_i: float
    f_e: float
    alpha: float
    alpha_interior: bool
    alphas_tried: tuple[float, ...]
    loss: float
    loss_fair: float
    moved_votes: float
    peak: CleanPeak
    observed: FloatArray
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


def _widened(alphas: Sequence[float], best: float, low: float, high: float) -> float | None:
    """The next value of ``alpha`` to try when ``best`` lies on the grid's edge, else None.

    Upwards by factors of 1.5 (up to ``high``), downwards by halves (down to ``low``).
    """
    top, bottom = max(alphas), min(alphas)
    if best >= top and top < high:
        return float(min(round(top * 1.5, 4), high))
    if best <= bottom and bottom > low:
        return float(max(round(bottom / 2, 4), low))
    return None


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
    peak = clean_peak(turnout, share)
    sizes = np.tile(registered, method.simulation_copies)
    components = _Components(rng, sizes, peak, bins)
    clean = components.clean
    residual = observed - clean
    losses: dict[float, tuple[float, float, float, FloatArray, float]] = {}

    def evaluate(alpha: float) -> None:
        incremental, moved_i = components.anomalous("incremental", alpha)
        extreme, moved_e = components.anomalous("extreme", alpha)
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
        f_i, f_e = float(grid.f_i[k]), float(grid.f_e[k])
        losses[alpha] = (
            float(loss[k]) * n * n,
            f_i,
            f_e,
            clean + f_i * d_i + f_e * d_e,
            f_i * moved_i + f_e * moved_e,
        )

    def best_alpha() -> float:
        # ties (a flat loss) go to the alpha tried first, so the grid's order decides them
        return min(losses, key=lambda a: losses[a][0])

    for alpha in method.alphas:
        evaluate(float(alpha))
    while method.widen_alphas:
        extra = _widened(list(losses), best_alpha(), method.alpha_min, method.alpha_max)
        if extra is None or extra in losses:
            break
        evaluate(extra)
    best = best_alpha()
    interior = min(losses) < best < max(losses)
    value, f_i, f_e, model, moved = losses[best]
    return _Fit(
        f_i=f_i,
        f_e=f_e,
        alpha=best,
        alpha_interior=interior,
        alphas_tried=tuple(sorted(losses)),
        loss=value,
        loss_fair=float(residual @ residual) * n * n,
        moved_votes=moved * n,
        peak=peak,
        observed=(observed * n).reshape(bins, bins),
        model=(model * n).reshape(bins, bins),
        fair=(clean * n).reshape(bins, bins),
    )


def _total_variation(first: FloatArray, second: FloatArray) -> float:
    """``1/2 sum |p - q|`` of two histograms normalised to probabilities."""
    p = first / max(float(first.sum()), 1e-300)
    q = second / max(float(second.sum()), 1e-300)
    return 0.5 * float(np.abs(p - q).sum())


def _sampling_distance(rng: np.random.Generator, model: FloatArray, n: int, draws: int) -> float:
    """Mean total-variation distance between ``n`` stations drawn from ``model`` and ``model``.

    The distance a perfect model still shows, from the sampling of ``n`` stations alone.
    """
    p = np.clip(model.ravel(), 0.0, None)
    p = p / p.sum()
    samples = rng.multinomial(n, p, size=draws).astype(np.float64)
    return float(np.mean([_total_variation(s, p) for s in samples]))


@METHODS.register("klimek-fraud-model")
@dataclass(frozen=True)
class KlimekFraudModel(Method):
    """Fit of the Klimek et al. (2012) model: shares ``f_i`` and ``f_e`` of anomalous stations.

    Parameters:
        bins: bins per axis of the fingerprints compared in the fit (over [0, 1]).
        alphas: starting grid of the deviation parameter α.
        widen_alphas: while the best α is the grid's largest (smallest) value, try 1.5 times
            it (half of it), up to ``alpha_max`` (down to ``alpha_min``); the result says
            whether the optimum ended inside the grid (``alpha_interior``).
        alpha_min, alpha_max: how far the grid may be widened.
        f_i_step: grid step of the incremental fraction ``f_i`` over [0, 1].
        f_e_step, f_e_max: grid step and upper end of the extreme fraction ``f_e``.
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
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "bins": Interval(int, 10, 500),
        "alphas": TupleOf(Interval(float, 0, 100, closed="right")),
        "widen_alphas": Boolean(),
        "alpha_min": Interval(float, 0, 100, closed="right"),
        "alpha_max": Interval(float, 0, 100, closed="right"),
        "f_i_step": Interval(float, 0, 1, closed="neither"),
        "f_e_step": Interval(float, 0, 1, closed="neither"),
        "f_e_max": Interval(float, 0, 1, closed="right"),
        "simulation_copies": Interval(int, 1, 50),
        "replicates": Interval(int, 0, 10_000),
        "interval_level": Interval(float, 0, 1, closed="neither"),
        "candidate": NoneOr(Text()),
        "seed": Interval(int, 0, None),
    }

    bins: int = 50
    alphas: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
    widen_alphas: bool = True
    alpha_min: float = 0.1
    alpha_max: float = 10.0
    f_i_step: float = 0.005
    f_e_step: float = 0.0005
    f_e_max: float = 1.0
    simulation_copies: int = 2
    replicates: int = 20
    interval_level: float = 0.95
    candidate: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        # rules that tie parameters together; each one's own range is in parameter_constraints
        if self.alpha_max < self.alpha_min:
            raise parameter_error(
                self.name, "alpha_max", f"at least alpha_min={self.alpha_min:g}", self.alpha_max
            )
        if any(not (self.alpha_min <= a <= self.alpha_max) for a in self.alphas):
            raise parameter_error(
                self.name,
                "alphas",
                f"values from alpha_min={self.alpha_min:g} to alpha_max={self.alpha_max:g}",
                self.alphas,
            )
        if self.f_e_max < self.f_e_step:
            raise parameter_error(
                self.name, "f_e_max", f"at least f_e_step={self.f_e_step:g}", self.f_e_max
            )

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
        observed = fit.observed
        distance = _total_variation(observed, fit.model)
        distance_fair = _total_variation(observed, fit.fair)
        floor = _sampling_distance(rng, fit.model, n, draws=5)
        notes: list[str] = []
        if not fit.alpha_interior:
            notes.append(
                f"the best α ({fit.alpha:g}) is on the edge of the grid tried "
                f"({fit.alphas_tried[0]:g} to {fit.alphas_tried[-1]:g}) and could not be "
                "widened further: α is not identified"
                + (
                    " (ballot stuffing without vote transfers fits best)"
                    if fit.alpha == fit.alphas_tried[-1]
                    else " (vote transfers without ballot stuffing fit best)"
                )
            )
        if not peak.found:
            notes.append(
                "no clean peak below 95 % in "
                + " and ".join(
                    name
                    for name, rule in (("turnout", peak.turnout_rule), ("share", peak.share_rule))
                    if rule.startswith("fallback")
                )
                + ": the clean model is centred on the mode below the cap, read the fit with care"
            )
        charts = {
            "observed": _heatmap(observed, title=f"{election.id}: observed fingerprint"),
            "fitted": _heatmap(
                fit.model,
                title=(
                    f"{election.id}: fitted model (f_i={fit.f_i:g}, f_e={fit.f_e:g}, "
                    f"α={fit.alpha:g})"
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
                "alpha_interior": fit.alpha_interior,
                "fit_distance": distance,
                "fit_distance_without_anomalies": distance_fair,
                "fit_distance_sampling": floor,
                "clean_peak": peak.to_dict(),
                "grid": {
                    "f_i_step": self.f_i_step,
                    "f_e_step": self.f_e_step,
                    "f_e_max": self.f_e_max,
                    "alphas": [float(a) for a in fit.alphas_tried],
                },
                "notes": notes,
                "published_fits": published,
            },
            charts=charts,
            definitions=data.definitions(
                clean_model=(
                    "turnout ~ N(a, σ_a) and share ~ N(v, σ_v), truncated to (0, 1); a and v "
                    "the first prominent local maxima above 0.3 and at most 0.95 of the "
                    "kernel densities of turnout and share (never the capped corner); σ the "
                    "left half-widths"
                ),
                anomalies=(
                    "incremental: x ~ |N(0, θ)| of non-voters and x^α of the other votes to "
                    "the leader; extreme: x = 1 - |N(0, 0.075)|"
                ),
                fit=(
                    "least squares between observed and expected fingerprints "
                    f"({self.bins}x{self.bins} bins) over the (f_i, f_e, α) grid, α's grid "
                    f"widened until the optimum is interior; {self.replicates} bootstrap "
                    "replicates of the stations"
                ),
                fit_distance=(
                    "total-variation distance ½ Σ|p_observed − p_fitted| between the observed "
                    "and fitted fingerprints (share of stations in the wrong bins); "
                    "fit_distance_sampling is that of n stations drawn from the fitted model "
                    "itself (the floor a perfect model reaches)"
                ),
            ),
        )
