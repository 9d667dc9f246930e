"""Shpilkin's estimate of anomalous votes for the leader, from votes binned by turnout.

Definition (Shpilkin 2009, 2011; described in Kobak, Shpilkin & Pshenichnikov 2016). Bin the
stations by turnout ``t = ballots_cast / registered`` (bins of width ``w``) and sum, in each
bin ``b``, the leader's votes ``L_b`` and the other candidates' votes ``O_b``. In an election
without manipulation the other candidates' votes over turnout form one bell, and the leader's
votes have roughly the same shape: the ratio ``L_b / O_b`` barely moves with turnout. Added
ballots and votes moved to the leader push stations to higher turnout *and* a higher leader
share, so the leader's curve grows a right tail the others' curve does not have.

* The clean turnout ``t0`` is the position of the low-turnout peak of the distribution of votes
  over turnout: the histogram (of the others' votes, or of all candidate votes) is smoothed with
  a Gaussian kernel of ``smoothing`` turnout points and ``t0`` is its leftmost local maximum
  that is at least ``peak_height`` times as high as the highest one, searched only among
  turnouts below ``peak_turnout_max`` (never at the high-turnout end, where stuffed stations
  pile up against 100 %).
* The clean ratio ``k`` of leader votes to others' votes is taken at the peak: in the peak bin,
  in all bins up to and including it, in a window of ``± window`` around it, or on its left
  flank (the bins below where the smoothed histogram falls under half the peak; ``A`` is then
  counted from there up).
* Anomalous votes ``A = Σ_{b: t_b > t0} max(0, L_b − k·O_b)``: the leader's votes above the
  turnout peak in excess of what the clean ratio predicts from the others' votes there; a
  count, clipped at zero per bin in every variant.

The 2-D "robust core" variant estimates the clean region in the turnout × leader-share plane
instead of on the turnout axis: a 1 % × 1 % histogram of candidate votes over (turnout, leader
share), smoothed with a Gaussian kernel of ``core_bandwidth``, and its highest-density region
holding ``core_mass`` of the votes is the core ``C`` (a kernel-density contour). Then
``k_C = Σ_C L / Σ_C O``, ``t_C`` is the vote-weighted median turnout of the core, and
``A = Σ_b max(0, Σ_{i ∈ b, i ∉ C, t_i > t_C} (L_i − k_C·O_i))`` over the stations outside the
core on its high-turnout side, per 1 % turnout bin ``b``, clipped at zero per bin.

Because the choice of the clean peak dominates the answer, the method reports a range: every
combination of bin width (``bin_widths``), peak source (others' votes, all votes) and ratio
window (peak bin, bins up to the peak, window around the peak, left flank), plus the 2-D core
variant, is computed and the interval is their (min, max). The effect (central estimate) is
the median over the choices at the peak of the *others'* votes only (Shpilkin's definition:
ballots added for the leader cannot move it, while the all-votes peak and the densest core
land on the manipulated cluster when stuffing dominates); when those disagree by more than a
factor :data:`DISAGREEMENT` and :data:`CONTAMINATED_SHARE` of the leader's votes, the peak
holds manipulated stations and the median is over the left-flank choices only. Where the
election has regions, that contamination check is made within regions (each region's turnouts
shifted to the national vote-weighted median and its leader votes scaled to the national
leader-to-others ratio before the others'-peak choices are recomputed), so honest regional
differences in turnout and support do not fire it while stuffing within regions does.
Disagreeing choices are explained in ``MethodResult.notes``. It is an estimate, not a test:
there is no p-value.

Definition choices: turnout is ballots_cast / registered (turnouts above 100 % go to the last
bin, counted in the details); "others" are the other candidate columns summed (missing counts
as 0), not ``valid − leader``; votes are weighted sums within bins, not station counts;
stations abroad are left out by default (their lists are made on the day, so turnout is about
100 % by construction); stations without registered voters or ballots cast, pseudo-stations,
cancelled and unpublished stations are left out.

Known pitfalls: the estimate assumes the leader's clean share does not change with turnout;
honest correlation between turnout and support (e.g. rural areas that both vote more and favour
the leader) is counted as anomalous, and the opposite correlation hides anomalies (only
positive bin excesses are counted, so it cannot go far below zero). A region (or country) where
nearly all stations are manipulated has no clean peak, its "peak" sits at the manipulated
turnout and the estimate is far too low. The estimate says nothing about which stations are
anomalous; it flags none.

References: S. Shpilkin, "Statistical study of the results of Russian elections in 2007-2009",
Troitsky Variant 21(40), 2009, and blog posts (podmoskovnik.livejournal.com, 2011-2018);
D. Kobak, S. Shpilkin & M. S. Pshenichnikov, "Integer percentages as electoral falsification
fingerprints", Annals of Applied Statistics 10(1), 54-73, 2016.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    eligible_stations,
    leader_of,
)
from pollwatch.forensics.parameters import (
    Boolean,
    Constraint,
    Interval,
    TupleOf,
    parameter_error,
)
from pollwatch.forensics.sections import RegionTable, Section, detail_of
from pollwatch.results.model import Election

__all__ = ["ShpilkinEstimate"]

Array = npt.NDArray[np.float64]

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"
#: grid step of the 2-D (turnout × leader share) histogram of the robust-core variant
CORE_GRID = 0.01
PEAK_SOURCES = ("others", "all")
RATIO_WINDOWS = ("peak bin", "up to peak", "window", "left flank")
#: choices "disagree" (a note on the result) when the highest is more than this times the lowest
DISAGREEMENT = 2.0
#: ... and the gap between them exceeds this share of the leader's votes
MATERIAL_SHARE = 0.01
#: the others'-peak choices disagreeing by DISAGREEMENT and this share of the leader's votes
#: mark the peak as contaminated (the central estimate then uses the left flank only)
CONTAMINATED_SHARE = 0.01


@dataclass(frozen=True)
class _Choice:
    """One definition choice and the estimate it gives."""

    clean_region: str
    bin_width: float | None
    peak_from: str | None
    ratio_from: str
    clean_turnout: float
    clean_ratio: float
    anomalous_votes: float
    #: the histogram still rose at the end of the search range, so the "peak" is its edge
    peak_at_search_limit: bool = False

    @property
    def at_others_peak(self) -> bool:
        """Whether the clean turnout is the peak of the other candidates' votes."""
        return self.bin_width is not None and self.peak_from == "others"

    def label(self) -> str:
        if self.bin_width is None:
            return self.clean_region
        return f"{100 * self.bin_width:g}% bins, peak of {self.peak_from}, ratio {self.ratio_from}"

    def to_dict(self, *, central: bool) -> dict[str, Any]:
        return {
            "clean_region": self.clean_region,
            "bin_width": self.bin_width,
            "peak_from": self.peak_from,
            "ratio_from": self.ratio_from,
            "clean_turnout": round(self.clean_turnout, 6),
            "clean_ratio": round(self.clean_ratio, 6),
            "clean_leader_share": round(self.clean_ratio / (1 + self.clean_ratio), 6),
            "anomalous_votes": round(self.anomalous_votes),
            "central": central,
            "peak_at_search_limit": self.peak_at_search_limit,
        }


@METHODS.register("shpilkin")
@dataclass(frozen=True)
class ShpilkinEstimate(Method):
    """Shpilkin's estimate of the leader's anomalous votes, as a range over definition choices.

    ``A = Σ_{bins above the clean turnout} max(0, L_b − k·O_b)``, with the clean turnout at the
    low-turnout peak of the votes-over-turnout distribution and ``k`` the leader-to-others ratio
    there; see the module docstring for the choices and the 2-D core variant.

    Parameters:
        bin_widths: turnout bin widths tried (fractions; 1 / width must be a whole number).
        smoothing: Gaussian kernel (turnout fraction) smoothing the histogram before the peak
            is located; it keeps integer-percentage spikes from being taken as the peak.
        peak_height: the clean peak is the leftmost local maximum at least this fraction of
            the highest one in the search range.
        peak_turnout_max: the clean peak is searched among the turnout bins below this
            turnout, never at the high-turnout end where stuffed stations pile up against
            100 %; raise it for an election whose honest turnout is that high (compulsory
            voting), which the result's notes then point out.
        window: half-width (turnout fraction) of the window around the peak for the ratio.
        core_mass: share of the votes held by the 2-D core (highest-density region).
        core_bandwidth: Gaussian kernel (fraction, both axes) of the 2-D density.
        exclude_abroad: leave out stations abroad.
        by_region: also estimate each region separately (details["regions"]).
        min_region_stations: regions with fewer stations get no estimate of their own.
    """

    name: ClassVar[str] = "shpilkin"
    fast: ClassVar[bool] = True
    in_comparison: ClassVar[bool] = True
    title: ClassVar[str] = "Shpilkin's estimate of anomalous votes for the leader"
    reference: ClassVar[str] = (
        "S. Shpilkin (2009), Statistical study of the results of Russian elections in "
        "2007-2009, Troitsky Variant 21(40), and blog analyses 2011-2018; D. Kobak, "
        "S. Shpilkin & M. S. Pshenichnikov (2016), Integer percentages as electoral "
        "falsification fingerprints, Annals of Applied Statistics 10(1), 54-73"
    )
    needs: ClassVar[tuple[str, ...]] = ("registered",)
    stochastic: ClassVar[bool] = False
    conformance_parameters: ClassVar[Mapping[str, Any]] = {"by_region": True}
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "bin_widths": TupleOf(Interval(float, 0, 0.05, closed="right")),
        "smoothing": Interval(float, 0, 0.1),
        "peak_height": Interval(float, 0, 1, closed="right"),
        "peak_turnout_max": Interval(float, 0.1, 1, closed="right"),
        "window": Interval(float, 0, 0.2, closed="right"),
        "core_mass": Interval(float, 0, 0.95, closed="right"),
        "core_bandwidth": Interval(float, 0, 0.1, closed="right"),
        "exclude_abroad": Boolean(),
        "by_region": Boolean(),
        "min_region_stations": Interval(int, 1, None),
    }

    bin_widths: tuple[float, ...] = (0.005, 0.01)
    smoothing: float = 0.02
    peak_height: float = 0.5
    peak_turnout_max: float = 0.9
    window: float = 0.025
    core_mass: float = 0.25
    core_bandwidth: float = 0.02
    exclude_abroad: bool = True
    by_region: bool = False
    min_region_stations: int = 30

    def __post_init__(self) -> None:
        super().__post_init__()
        for width in self.bin_widths:
            if abs(round(1 / width) * width - 1) > 1e-9:
                raise parameter_error(
                    self.name,
                    "bin_widths",
                    "widths that divide 1 (e.g. 0.005, 0.01)",
                    self.bin_widths,
                )

    # --------------------------------------------------------------------------------------
    def run(self, election: Election) -> MethodResult:
        leader = leader_of(election)
        extra: dict[str, pl.Expr] = {
            "no registered voters (0)": pl.col("registered") > 0,
            f"missing votes for the leader ({leader.name})": pl.col(leader.column).is_not_null(),
        }
        if self.exclude_abroad:
            extra["abroad"] = ~pl.col("is_abroad")
        selection = eligible_stations(election, require=("registered", "ballots_cast"), extra=extra)
        frame = selection.stations.sort("station_id")
        others = [c for c in election.candidate_columns if c != leader.column]
        data = frame.select(
            pl.col("region").fill_null("(none)"),
            pl.col("registered").cast(pl.Int64),
            pl.col("ballots_cast").cast(pl.Int64),
            (pl.col("ballots_cast") / pl.col("registered")).alias("turnout"),
            pl.col(leader.column).cast(pl.Float64).alias("leader"),
            pl.sum_horizontal([pl.col(c).fill_null(0) for c in others] or [pl.lit(0)])
            .cast(pl.Float64)
            .alias("others"),
        )
        turnout = data["turnout"].to_numpy().astype(np.float64)
        leader_votes = data["leader"].to_numpy().astype(np.float64)
        other_votes = data["others"].to_numpy().astype(np.float64)
        if leader_votes.sum() + other_votes.sum() <= 0:
            raise MethodNotApplicable(
                f"election {election.id!r}: no votes in the stations used",
                hint="the method needs candidate votes",
            )
        choices = self._choices(turnout, leader_votes, other_votes)
        if not choices:
            raise MethodNotApplicable(
                f"election {election.id!r}: no clean ratio can be estimated "
                "(the other candidates have no votes near the turnout peak)",
                hint="the method needs more than one candidate with votes",
            )
        leader_total = float(leader_votes.sum())
        regions = data["region"].to_numpy()
        contaminated, check = self._contaminated(regions, turnout, leader_votes, other_votes)
        used = _central_choices(choices, contaminated=contaminated)
        central, low, high = _summary(choices, used)
        reference = _reference_choice(used)
        notes = self._notes(choices, used, leader_total, contaminated=contaminated, check=check)
        details: dict[str, Any] = {
            "leader": leader.name,
            "leader_votes": round(leader_total),
            "others_votes": round(float(other_votes.sum())),
            "anomalous_votes": {"central": round(central), "low": round(low), "high": round(high)},
            "anomalous_share_of_leader_votes": central / leader_total if leader_total else None,
            "choices": [c.to_dict(central=c in used) for c in choices],
            "peak_contaminated": contaminated,
            "contamination_check": check,
            "stations_turnout_above_one": int((turnout > 1).sum()),
            "range": "min and max over the definition choices, not a confidence interval",
        }
        if self.by_region:
            details["regions"] = self._regions(data)
            details["regions_total"] = round(
                sum(r["anomalous_votes"] or 0 for r in details["regions"].values())
            )
        charts = {
            "votes_by_turnout": _votes_chart(turnout, leader_votes, other_votes, reference),
            "choices": _choices_chart(choices, used),
        }
        return self.result(
            election,
            statistic_name="anomalous share of the leader's votes (central estimate)",
            statistic=central / leader_total if leader_total else None,
            sample_size=frame.height,
            p_value=None,
            alpha=None,
            significant=None,
            effect_name="anomalous votes for the leader",
            effect=central,
            interval=(low, high),
            interval_level=None,
            flagged=(),
            details=details,
            charts=charts,
            notes=notes,
            definitions={
                "turnout": "ballots_cast / registered per station; above 100 % goes to the last "
                "bin",
                "share": "leader votes / (leader + other candidates' votes)",
                "leader": f"{leader.name} (most votes in the whole election)",
                "others": "sum of the other candidate columns (missing counts as 0)",
                "clean turnout": "leftmost local maximum, at least "
                f"{self.peak_height:g} of the highest, among turnouts below "
                f"{100 * self.peak_turnout_max:g} %, of the others' (or all) votes-over-turnout "
                f"histogram smoothed with a {100 * self.smoothing:g}-point Gaussian kernel",
                "clean ratio": "leader votes / others' votes in the peak bin, in the bins up to "
                f"the peak, or within ±{100 * self.window:g} points of it",
                "anomalous votes": "sum over turnout bins above the clean turnout of "
                "max(0, leader votes - clean ratio × others' votes): a count, never below zero",
                "robust core": f"highest-density region holding {100 * self.core_mass:g}% of "
                "the votes in the turnout × share plane; leader votes above the core's ratio "
                "in stations outside it with turnout above its median, summed per 1 % turnout "
                "bin and clipped at zero per bin",
                "effect": "median over the choices with the clean turnout at the peak of the "
                "other candidates' votes (Shpilkin's definition, which stuffed ballots for the "
                "leader cannot move), the left-flank choices only when that peak is contaminated "
                "(its choices disagree, checked within regions where there are regions); "
                "interval = (min, max) over every choice",
                "filters": selection.describe(),
            },
        )

    # --------------------------------------------------------------------------------------
    def _contaminated(
        self, regions: npt.NDArray[Any], turnout: Array, leader: Array, others: Array
    ) -> tuple[bool, str]:
        """Whether the others' turnout peak holds manipulated stations, and how it was checked.

        The choices at the others' peak disagreeing (:func:`_material` with
        :data:`CONTAMINATED_SHARE`) marks the peak as contaminated. Where the election has
        regions (at least two with ``min_region_stations`` stations), the check is made within
        regions: each such region's turnouts are shifted so that its vote-weighted median
        turnout is the whole election's, and its leader votes scaled so that its
        leader-to-others ratio is the whole election's. Honest differences between regions in
        turnout and support (which make the leader's share change with turnout across the
        country, and the ratio windows disagree) are then gone, while stuffing, which moves
        stations to higher turnout and a higher leader share within their region, is kept.
        """
        adjusted = _within_regions(regions, turnout, leader, others, self.min_region_stations)
        check = "whole election"
        if adjusted is not None:
            turnout, leader = adjusted
            check = "within regions (turnout and leader ratio centred per region)"
        peaks = [c for c in self._choices(turnout, leader, others, core=False) if c.at_others_peak]
        if not peaks:
            return False, check
        estimates = [c.anomalous_votes for c in peaks]
        material = _material(
            min(estimates), max(estimates), float(leader.sum()), CONTAMINATED_SHARE
        )
        return material, check

    def _choices(
        self, turnout: Array, leader: Array, others: Array, *, core: bool = True
    ) -> list[_Choice]:
        """Every 1-D choice, then the 2-D core variant; choices without a ratio are dropped."""
        choices: list[_Choice] = []
        for width in self.bin_widths:
            bins = round(1 / width)
            index = _bin_index(turnout, width, bins)
            hist_leader = _sums(index, leader, bins)
            hist_others = _sums(index, others, bins)
            # bins whose upper edge lies at or below peak_turnout_max
            searched = max(1, math.floor(self.peak_turnout_max / width + 1e-9))
            for source in PEAK_SOURCES:
                histogram = hist_others if source == "others" else hist_leader + hist_others
                peak, at_limit = _low_turnout_peak(
                    histogram, self.smoothing / width, self.peak_height, searched
                )
                radius = round(self.window / width)
                flank = _left_flank(histogram, self.smoothing / width, peak)
                spans = {
                    "peak bin": (peak, peak + 1),
                    "up to peak": (0, peak + 1),
                    "window": (max(0, peak - radius), peak + radius + 1),
                    "left flank": (0, flank + 1),
                }
                for ratio_from in RATIO_WINDOWS:
                    start, stop = spans[ratio_from]
                    denominator = float(hist_others[start:stop].sum())
                    if denominator <= 0:
                        continue
                    ratio = float(hist_leader[start:stop].sum()) / denominator
                    first = (flank if ratio_from == "left flank" else peak) + 1
                    excess = hist_leader[first:] - ratio * hist_others[first:]
                    choices.append(
                        _Choice(
                            clean_region="turnout peak",
                            bin_width=width,
                            peak_from=source,
                            ratio_from=ratio_from,
                            clean_turnout=(peak + 0.5) * width,
                            clean_ratio=ratio,
                            anomalous_votes=float(np.maximum(excess, 0.0).sum()),
                            peak_at_search_limit=at_limit,
                        )
                    )
        found = self._core(turnout, leader, others) if core else None
        if found is not None:
            choices.append(found)
        return choices

    def _core(self, turnout: Array, leader: Array, others: Array) -> _Choice | None:
        """The 2-D robust-core variant (see the module docstring)."""
        votes = leader + others
        share = np.divide(leader, votes, out=np.zeros_like(votes), where=votes > 0)
        bins = round(1 / CORE_GRID)
        row = _bin_index(turnout, CORE_GRID, bins)
        column = _bin_index(share, CORE_GRID, bins)
        cell = row * bins + column
        density = _sums(cell, votes, bins * bins).reshape(bins, bins)
        sigma = self.core_bandwidth / CORE_GRID
        density = _smooth(_smooth(density, sigma, axis=0), sigma, axis=1)
        total = float(density.sum())
        if total <= 0:
            return None
        ordered = np.sort(density, axis=None)[::-1]
        cumulative = np.cumsum(ordered) / total
        threshold = ordered[min(int(np.searchsorted(cumulative, self.core_mass)), ordered.size - 1)]
        in_core = (density.ravel()[cell] >= threshold) & (votes > 0)
        core_others = float(others[in_core].sum())
        if core_others <= 0:
            return None
        ratio = float(leader[in_core].sum()) / core_others
        core_turnout = _weighted_median(turnout[in_core], votes[in_core])
        beyond = ~in_core & (turnout > core_turnout)
        # per 1 % turnout bin, clipped at zero as a count must be (stations below the core's
        # ratio do not cancel anomalous votes elsewhere, and honest noise does not add up)
        excess_by_bin = _sums(row[beyond], leader[beyond] - ratio * others[beyond], bins)
        excess = float(np.maximum(excess_by_bin, 0.0).sum())
        return _Choice(
            clean_region="densest core (2-D)",
            bin_width=None,
            peak_from=None,
            ratio_from=f"core holding {100 * self.core_mass:g}% of the votes",
            clean_turnout=core_turnout,
            clean_ratio=ratio,
            anomalous_votes=excess,
        )

    def _notes(
        self,
        choices: list[_Choice],
        used: list[_Choice],
        leader_votes: float,
        *,
        contaminated: bool,
        check: str,
    ) -> tuple[str, ...]:
        """What a reader of the central estimate must know: disagreeing choices, and why.

        Choices disagree when the highest estimate is more than :data:`DISAGREEMENT` times the
        lowest and the gap exceeds :data:`MATERIAL_SHARE` of the leader's votes (below that, a
        factor between two small numbers is noise, not a finding).
        """
        notes: list[str] = []
        central, low, high = _summary(choices, used)
        peaks = [c for c in choices if c.at_others_peak]
        if _material(low, high, leader_votes):
            reasons = []
            every = [c for c in choices if c.peak_from == "all"]
            if peaks and every:
                own = float(np.median([c.clean_turnout for c in peaks]))
                there = float(np.median([c.clean_turnout for c in every]))
                estimates = [c.anomalous_votes for c in every]
                if abs(there - own) > self.smoothing:
                    why = (
                        "the leader's added votes form a peak of their own when many stations "
                        "are stuffed"
                        if there > own
                        else "the two histograms have different low-turnout peaks"
                    )
                    reasons.append(
                        f"the peak of all votes lies at {100 * there:.3g} % turnout, against "
                        f"{100 * own:.3g} % for the others' votes ({why}), and gives "
                        f"{_words(min(estimates))} to {_words(max(estimates))}"
                    )
            core = [c for c in choices if c.bin_width is None]
            if core and _material(
                min(core[0].anomalous_votes, central),
                max(core[0].anomalous_votes, central),
                leader_votes,
            ):
                share = core[0].clean_ratio / (1 + core[0].clean_ratio)
                reasons.append(
                    f"the 2-D densest core (turnout {100 * core[0].clean_turnout:.3g} %, leader "
                    f"share {100 * share:.3g} %) gives {_words(core[0].anomalous_votes)}: where "
                    "most stations are manipulated the densest region is the manipulated one, "
                    "and where support is bimodal it is one of the modes"
                )
            windows = [c.anomalous_votes for c in peaks]
            if windows and _material(min(windows), max(windows), leader_votes):
                within = check.startswith("within")
                if contaminated:
                    outcome = (
                        "the peak holds stuffed stations"
                        + (" (the windows disagree within regions too)" if within else "")
                        + ", so the central estimate takes the clean ratio from the peak's "
                        "left flank only, where stuffing, which only raises turnout, moves "
                        "no station"
                    )
                else:
                    outcome = (
                        "within regions they agree, so the disagreement comes from honest "
                        "differences between regions in turnout and support and the central "
                        "estimate keeps every ratio window"
                        if within
                        else "not enough to mark the peak as contaminated"
                    )
                reasons.append(
                    f"the ratio windows at the others' peak give {_words(min(windows))} to "
                    f"{_words(max(windows))}: the leader's share changes with turnout around "
                    "the peak, as it does when the peak itself holds stuffed stations or when "
                    f"honest support changes with turnout; {outcome}"
                )
            notes.append(
                f"the definition choices disagree by more than a factor of {DISAGREEMENT:g} "
                f"({_words(low)} to {_words(high)}): "
                + ("; ".join(reasons) if reasons else "see details['choices']")
                + "; the central estimate follows the peak of the other candidates' votes "
                "(Shpilkin's definition), which ballots added for the leader do not move"
            )
        if any(c.peak_at_search_limit for c in peaks):
            notes.append(
                "the other candidates' votes still rise at the end of the peak search "
                f"({100 * self.peak_turnout_max:g} % turnout), so the clean turnout is not "
                "identified: either most stations are shifted to high turnout (the estimate "
                "is then too low) or honest turnout is that high (raise peak_turnout_max)"
            )
        return tuple(notes)

    def _regions(self, data: pl.DataFrame) -> dict[str, dict[str, Any]]:
        """Each region's own estimate (own clean peak and ratio), by region name.

        Every region also gets its totals over the stations used: registered, ballots cast,
        turnout (``Σ ballots_cast / Σ registered``) and the leader's share (leader votes over
        leader plus other candidates' votes), the numbers the dashboard's region table shows.
        """
        regions: dict[str, dict[str, Any]] = {}
        for (region,), part in data.sort("region").group_by(["region"], maintain_order=True):
            leader = part["leader"].to_numpy().astype(np.float64)
            others = part["others"].to_numpy().astype(np.float64)
            registered = int(part["registered"].sum())
            ballots_cast = int(part["ballots_cast"].sum())
            votes = float(leader.sum() + others.sum())
            entry: dict[str, Any] = {
                "stations": part.height,
                "registered": registered,
                "ballots_cast": ballots_cast,
                "turnout": ballots_cast / registered if registered else None,
                "leader_share": float(leader.sum()) / votes if votes else None,
                "leader_votes": round(float(leader.sum())),
                "anomalous_votes": None,
                "low": None,
                "high": None,
                "clean_turnout": None,
            }
            if part.height >= self.min_region_stations:
                turnout = part["turnout"].to_numpy().astype(np.float64)
                choices = self._choices(turnout, leader, others)
                if choices:
                    # one region: the check on its own stations (no regions within it)
                    contaminated, _ = self._contaminated(
                        np.zeros(part.height, dtype=np.intp), turnout, leader, others
                    )
                    used = _central_choices(choices, contaminated=contaminated)
                    central, low, high = _summary(choices, used)
                    entry["anomalous_votes"] = round(central)
                    entry["low"] = round(low)
                    entry["high"] = round(high)
                    entry["clean_turnout"] = round(_reference_choice(used).clean_turnout, 4)
            regions[str(region)] = entry
        return regions

    #: the per-region estimates (``by_region``) are what the dashboard's region table shows
    detail_type: ClassVar[type[RegionTable]] = RegionTable

    @classmethod
    def sections(cls, result: MethodResult) -> tuple[Section, ...]:
        """The default sections, then the per-region estimates when run ``by_region``."""
        regions = detail_of(result, RegionTable)
        extra = (regions.table(),) if regions is not None else ()
        return (*super().sections(result), *extra)


# ------------------------------------------------------------------------------------------
def _bin_index(values: Array, width: float, bins: int) -> npt.NDArray[np.intp]:
    """Bin of each value in [0, 1] (values above 1 go to the last bin, below 0 to the first)."""
    index = np.floor(np.clip(values, 0.0, 1.0) / width + 1e-9).astype(np.intp)
    return np.minimum(index, bins - 1)


def _low_turnout_peak(
    histogram: Array, sigma_bins: float, height: float, searched: int
) -> tuple[int, bool]:
    """Leftmost local maximum of the smoothed histogram among the first ``searched`` bins.

    The maximum must be at least ``height`` × the highest smoothed value among those bins;
    local means against the smoothed neighbours over the *whole* range, so a histogram still
    rising at the end of the search has no peak there. Without one, the highest searched bin
    is returned with ``True`` (the peak lies at the search limit, not identified).
    """
    smooth = _smooth(histogram, sigma_bins)
    searched = min(searched, smooth.size)
    top = float(smooth[:searched].max())
    if top <= 0:
        return int(np.argmax(histogram[:searched])), False
    left = np.concatenate(([-np.inf], smooth[:-1]))
    right = np.concatenate((smooth[1:], [-np.inf]))
    local = (smooth >= left) & (smooth >= right) & (smooth >= height * top)
    candidates = np.flatnonzero(local[:searched])
    if candidates.size:
        return int(candidates[0]), False
    return int(np.argmax(smooth[:searched])), True


def _left_flank(histogram: Array, sigma_bins: float, peak: int) -> int:
    """Last bin below ``peak`` where the smoothed histogram is under half the peak's height."""
    smooth = _smooth(histogram, sigma_bins)
    below = np.flatnonzero(smooth[:peak] < 0.5 * smooth[peak])
    return int(below[-1]) if below.size else max(peak - 1, 0)


def _sums(index: npt.NDArray[np.intp], weights: Array, size: int) -> Array:
    """Sum of ``weights`` per index value ``0 .. size - 1``."""
    return np.bincount(index, weights=weights, minlength=size).astype(np.float64)


def _smooth(values: Array, sigma_bins: float, axis: int = 0) -> Array:
    """Gaussian smoothing along ``axis`` (kernel cut at 4 sigma, zeros outside the range).

    Written as a sum of shifted copies rather than a library filter: it is exact, order-free
    and needs no BLAS (matrix products were slower here than the whole method).
    """
    if sigma_bins <= 0:
        return values.astype(np.float64)
    radius = int(4 * sigma_bins + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma_bins) ** 2)
    weights /= weights.sum()
    moved = np.moveaxis(values.astype(np.float64), axis, 0)
    size = moved.shape[0]
    result = np.zeros_like(moved)
    for offset, weight in zip(offsets.tolist(), weights.tolist(), strict=True):
        # result[i] += weight * values[i + offset] where i + offset is inside the range
        low, high = max(0, -offset), min(size, size - offset)
        if low < high:
            result[low:high] += weight * moved[low + offset : high + offset]
    return np.moveaxis(result, 0, axis)


def _weighted_median(values: Array, weights: Array) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    position = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    return float(values[order][min(position, values.size - 1)])


def _within_regions(
    regions: npt.NDArray[Any], turnout: Array, leader: Array, others: Array, min_stations: int
) -> tuple[Array, Array] | None:
    """Turnout and leader votes with each region centred on the whole election.

    Each region with at least ``min_stations`` stations (and votes for the leader and the
    others) has its turnouts shifted by (whole election's − region's) vote-weighted median
    turnout and its leader votes scaled by (whole election's / region's) leader-to-others
    ratio; other regions are left as they are. None when fewer than two regions qualify.
    """
    votes = leader + others
    names, index = np.unique(regions, return_inverse=True)
    if names.size < 2 or float(others.sum()) <= 0 or float(votes.sum()) <= 0:
        return None
    centre = _weighted_median(turnout, votes)
    ratio = float(leader.sum()) / float(others.sum())
    shifted, scaled = turnout.copy(), leader.copy()
    adjusted = 0
    for region in range(names.size):
        members = index == region
        region_leader, region_others = float(leader[members].sum()), float(others[members].sum())
        if members.sum() < min_stations or region_leader <= 0 or region_others <= 0:
            continue
        shifted[members] = (
            turnout[members] - _weighted_median(turnout[members], votes[members]) + centre
        )
        scaled[members] = leader[members] * ratio * region_others / region_leader
        adjusted += 1
    return (shifted, scaled) if adjusted >= 2 else None


def _central_choices(choices: list[_Choice], *, contaminated: bool) -> list[_Choice]:
    """The choices the central estimate is the median of (see the module docstring).

    The choices at the peak of the others' votes; when the peak is ``contaminated``
    (:meth:`ShpilkinEstimate._contaminated`), only the left-flank ones remain.
    """
    peaks = [c for c in choices if c.at_others_peak]
    if not peaks:
        return choices
    if contaminated:
        return [c for c in peaks if c.ratio_from == "left flank"] or peaks
    return peaks


def _material(low: float, high: float, leader_votes: float, share: float = MATERIAL_SHARE) -> bool:
    """Whether two estimates disagree: a factor above :data:`DISAGREEMENT` and a gap above
    ``share`` of the leader's votes (below that, a factor between small numbers is noise)."""
    return high > DISAGREEMENT * low and high - low > share * leader_votes


def _summary(choices: list[_Choice], used: list[_Choice]) -> tuple[float, float, float]:
    """Central estimate (median over the ``used`` choices), low and high (over all)."""
    estimates = np.array([c.anomalous_votes for c in choices])
    central = float(np.median([c.anomalous_votes for c in used]))
    return central, float(estimates.min()), float(estimates.max())


def _reference_choice(used: list[_Choice]) -> _Choice:
    """The central choice whose estimate is the (lower) median: the one the chart draws."""
    estimates = np.array([c.anomalous_votes for c in used])
    return used[int(np.argsort(estimates, kind="stable")[(len(used) - 1) // 2])]


def _words(votes: float) -> str:
    """A vote count for a sentence: ``1.46 million``, ``87,900``, ``0``."""
    if abs(votes) >= 1e6:
        return f"{votes / 1e6:.3g} million"
    return f"{float(f'{votes:.3g}'):,.0f}"


def _votes_chart(
    turnout: Array, leader: Array, others: Array, reference: _Choice
) -> dict[str, Any]:
    """Votes per 1 % turnout bin: leader, others, and the clean expectation k × others."""
    bins = 100
    index = _bin_index(turnout, 0.01, bins)
    hist_leader = _sums(index, leader, bins)
    hist_others = _sums(index, others, bins)
    rows: list[dict[str, Any]] = []
    for b in range(bins):
        centre = b + 0.5
        rows.append({"turnout": centre, "series": "leader", "votes": round(hist_leader[b])})
        rows.append({"turnout": centre, "series": "others", "votes": round(hist_others[b])})
        rows.append(
            {
                "turnout": centre,
                "series": "clean expectation (k × others)",
                "votes": round(reference.clean_ratio * hist_others[b]),
            }
        )
    return {
        "$schema": VEGA_LITE,
        "title": "Votes by turnout (1 % bins) and the clean expectation",
        "layer": [
            {
                "data": {"values": rows},
                "mark": "line",
                "encoding": {
                    "x": {"field": "turnout", "type": "quantitative", "title": "turnout (%)"},
                    "y": {"field": "votes", "type": "quantitative", "title": "votes"},
                    "color": {"field": "series", "type": "nominal"},
                },
            },
            {
                "data": {"values": [{"clean_turnout": round(100 * reference.clean_turnout, 2)}]},
                "mark": {"type": "rule", "strokeDash": [4, 4]},
                "encoding": {"x": {"field": "clean_turnout", "type": "quantitative"}},
            },
        ],
    }


def _choices_chart(choices: list[_Choice], used: list[_Choice]) -> dict[str, Any]:
    rows = [
        {
            "choice": c.label(),
            "anomalous_votes": round(c.anomalous_votes),
            "central": "central estimate" if c in used else "range only",
        }
        for c in choices
    ]
    return {
        "$schema": VEGA_LITE,
        "title": "Anomalous votes under each definition choice",
        "data": {"values": rows},
        "mark": "bar",
        "encoding": {
            "y": {"field": "choice", "type": "nominal", "sort": None, "title": None},
            "x": {"field": "anomalous_votes", "type": "quantitative", "title": "anomalous votes"},
            "color": {"field": "central", "type": "nominal", "title": None},
        },
    }
