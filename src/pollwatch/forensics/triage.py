"""Station-level triage: which stations to check first, and why.

Not a test: a ranking that helps observers decide where to look (and, later, which footage to
review). Each station gets an anomaly score from three kinds of evidence:

* **distance from its region's core** in the turnout x leader-share plane: robust z-scores
  ``z = (x - median) / (1.4826 * MAD)`` of turnout and of leader share within the station's
  region (falling back to the whole election for regions with fewer than ``min_region``
  stations); the distance is ``sqrt(z_turnout² + z_share²)``, counted only where both turnout
  and share lie above the regional median (the direction ballot stuffing moves a station; a
  station far below its region is unusual but not the pattern looked for);
* **integer-percentage hits**: turnout or leader share within 0.05 percentage points of a whole
  percent at a station with at least 100 registered voters (Kobak, Shpilkin & Pshenichnikov
  2016 show such hits pile up where results were written rather than counted);
* **protocol inconsistencies**: the number of arithmetic rules the protocol breaks
  (:func:`pollwatch.results.checks.check_protocols`).

``score = distance + integer_weight * hit + protocol_weight * rules_broken``. Stations with a
score of at least ``threshold`` are flagged, and the ``top`` highest are listed with their
reasons. The weights are choices, stated in every result; a high score is a reason to look,
never a finding of manipulation.

**Likely special stations** (hospitals, pre-trial detention, temporary stations:
:func:`pollwatch.results.special.special_stations`) have near-complete turnout by the way their
lists are made, and would otherwise fill the top of the list (43 of the old top 50 in Russia
2018). They are left out of the list and the flags unless ``include_special=True``; the result
says how many were left out, and how many of them reach the threshold
(``details["special"]``). Listed stations carry ``special``: the reason, or None.

The calibration table marks triage **unreliable** (it flags about 30 % of clean reference
units at α = 0.05): its list is a list of stations to check, with its calibration shown beside
it, never a finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import METHODS, Method, MethodResult, eligible_stations
from pollwatch.forensics.parameters import Boolean, Constraint, Interval
from pollwatch.forensics.sections import Section, StationRanking, detail_of
from pollwatch.results.checks import check_protocols
from pollwatch.results.model import Election
from pollwatch.results.special import special_stations

__all__ = ["Triage"]

_MAD_SCALE = 1.4826  # makes the MAD a consistent estimate of the SD for normal data


def _robust_z(column: str, by: str) -> pl.Expr:
    median = pl.col(column).median().over(by)
    mad = (pl.col(column) - median).abs().median().over(by) * _MAD_SCALE
    return pl.when(mad > 0).then((pl.col(column) - median) / mad).otherwise(0.0)


@METHODS.register("triage")
@dataclass(frozen=True)
class Triage(Method):
    """Rank stations by an anomaly score with reasons; see the module docstring."""

    threshold: float = 6.0
    top: int = 100
    min_region: int = 30
    integer_weight: float = 1.0
    protocol_weight: float = 3.0
    include_special: bool = False

    name: ClassVar[str] = "triage"
    fast: ClassVar[bool] = True
    scores_stations: ClassVar[bool] = True
    title: ClassVar[str] = "Station triage: a list of stations to check (not a finding)"
    reference: ClassVar[str] = (
        "pollwatch's ranking heuristic, combining regional robust z-scores in the turnout x "
        "leader-share plane (cf. Klimek et al. 2012, PNAS 109(41)), integer-percentage hits "
        "(Kobak, Shpilkin & Pshenichnikov 2016, AoAS 10(1)) and protocol arithmetic checks"
    )
    needs: ClassVar[tuple[str, ...]] = ("registered", "ballots_cast")
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "threshold": Interval(float, 0, None, closed="neither"),
        "top": Interval(int, 1, None),
        # a robust z-score within a region needs a median and a spread
        "min_region": Interval(int, 3, None),
        "integer_weight": Interval(float, 0, None),
        "protocol_weight": Interval(float, 0, None),
        "include_special": Boolean(),
    }
    detail_type: ClassVar[type[StationRanking]] = StationRanking

    def run(self, election: Election) -> MethodResult:
        leader = election.leader()
        if leader is None:
            raise PollwatchError(f"election {election.id!r} has no candidates")
        selection = eligible_stations(
            election,
            require=self.needs,
            extra={"registered 0": pl.col("registered") > 0},
        )
        report = check_protocols(election).table.select("station_id", "rules_failed")
        frame = (
            selection.stations.select(
                "station_id",
                "region",
                "registered",
                election.turnout_expr(),
                election.vote_share_expr(leader.column).alias("share"),
            )
            .join(report.unique("station_id"), on="station_id", how="left")
            .with_columns(pl.col("region").fill_null("(none)"))
        )
        sizes = frame.group_by("region").len()
        small = set(sizes.filter(pl.col("len") < self.min_region)["region"].to_list())
        frame = frame.with_columns(
            pl.when(pl.col("region").is_in(list(small)))
            .then(pl.lit("(all)"))
            .otherwise(pl.col("region"))
            .alias("_group")
        )
        whole = frame.with_columns(pl.lit("(all)").alias("_group"))
        z = pl.concat(
            [
                frame.filter(pl.col("_group") != "(all)").with_columns(
                    _robust_z("turnout", "_group").alias("z_turnout"),
                    _robust_z("share", "_group").alias("z_share"),
                ),
                whole.with_columns(
                    _robust_z("turnout", "_group").alias("z_turnout"),
                    _robust_z("share", "_group").alias("z_share"),
                ).filter(pl.col("region").is_in(list(small))),
            ]
        )
        percent_t = pl.col("turnout") * 100
        percent_s = pl.col("share") * 100
        near = (
            ((percent_t - percent_t.round()).abs() <= 0.05)
            | ((percent_s - percent_s.round()).abs() <= 0.05)
        ) & (pl.col("registered") >= 100)
        scored = z.with_columns(
            pl.when((pl.col("z_turnout") > 0) & (pl.col("z_share") > 0))
            .then((pl.col("z_turnout") ** 2 + pl.col("z_share") ** 2).sqrt())
            .otherwise(0.0)
            .fill_null(0.0)
            .alias("distance"),
            near.fill_null(False).alias("integer_hit"),
            pl.col("rules_failed").fill_null(0).alias("rules_failed"),
        ).with_columns(
            (
                pl.col("distance")
                + self.integer_weight * pl.col("integer_hit").cast(pl.Float64)
                + self.protocol_weight * pl.col("rules_failed").cast(pl.Float64)
            ).alias("score")
        )
        special = special_stations(election)
        special_reasons = special.reasons()
        scored = scored.with_columns(
            pl.col("station_id")
            .replace_strict(special_reasons, default=None, return_dtype=pl.String)
            .alias("special")
        )
        ranked = scored.sort(["score", "station_id"], descending=[True, False])
        above = pl.col("score") >= self.threshold
        special_above = ranked.filter(above & pl.col("special").is_not_null()).height
        special_scored = ranked.filter(pl.col("special").is_not_null()).height
        if not self.include_special:
            ranked = ranked.filter(pl.col("special").is_null())
        flagged = sorted(ranked.filter(above)["station_id"].to_list())
        listing = [
            {
                "station_id": row["station_id"],
                "region": row["region"],
                "score": round(float(row["score"]), 3),
                "turnout": None if row["turnout"] is None else round(float(row["turnout"]), 4),
                "leader_share": None if row["share"] is None else round(float(row["share"]), 4),
                "reasons": _reasons(row),
                "special": row["special"],
            }
            for row in ranked.head(self.top).iter_rows(named=True)
        ]
        histogram = (
            scored.with_columns((pl.col("score").clip(0, 30)).floor().alias("bin"))
            .group_by("bin")
            .len()
            .sort("bin")
        )
        chart: dict[str, Any] = {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": "Stations by triage score",
            "data": {"values": histogram.rename({"len": "stations"}).to_dicts()},
            "mark": "bar",
            "encoding": {
                "x": {"field": "bin", "type": "quantitative", "title": "score (capped at 30)"},
                "y": {"field": "stations", "type": "quantitative", "scale": {"type": "symlog"}},
            },
        }
        return self.result(
            election,
            statistic_name="stations at or above the threshold",
            statistic=float(len(flagged)),
            sample_size=ranked.height,
            effect_name="share of stations flagged",
            effect=len(flagged) / ranked.height if ranked.height else 0.0,
            flagged=tuple(flagged),
            details={
                "ranked": listing,
                "regions_pooled": sorted(small),
                "special": {
                    "included": self.include_special,
                    "stations": special_scored,
                    "at_or_above_threshold": special_above,
                    "definition": special.definition,
                },
            },
            charts={"scores": chart},
            definitions={
                "turnout": "ballots_cast / registered",
                "share": f"votes for the election's leader ({leader.name}) / valid",
                "distance": "sqrt(z_turnout² + z_share²) where both robust regional z-scores are "
                "positive, else 0; regions under min_region stations are pooled",
                "integer_hit": "turnout or leader share within 0.05 pp of a whole percent, "
                "registered >= 100",
                "score": f"distance + {self.integer_weight} x integer_hit + "
                f"{self.protocol_weight} x protocol rules broken",
                "filters": selection.describe(),
                "special stations": (
                    "likely special stations ("
                    + special.definition
                    + ") are "
                    + (
                        "ranked with the others"
                        if self.include_special
                        else f"left out of the list and the flags ({special_scored:,} stations)"
                    )
                ),
            },
        )

    @classmethod
    def sections(cls, result: MethodResult) -> tuple[Section, ...]:
        """The default sections, then the ranked stations (:class:`StationRanking`)."""
        ranking = detail_of(result, StationRanking)
        extra = (ranking.table(),) if ranking is not None else ()
        return (*super().sections(result), *extra)


def _reasons(row: dict[str, Any]) -> list[str]:
    reasons = []
    if row["distance"] > 0:
        reasons.append(
            f"turnout and leader share above its region (robust z {row['z_turnout']:.1f}, "
            f"{row['z_share']:.1f})"
        )
    if row["integer_hit"]:
        reasons.append("turnout or leader share at a whole percent")
    if row["rules_failed"]:
        reasons.append(f"{row['rules_failed']} protocol rule(s) broken")
    if row.get("special"):
        reasons.append(f"likely special station ({row['special']})")
    return reasons
