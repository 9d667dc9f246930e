"""Simulated clean elections, for the method conformance suite and calibration.

A clean election here has no manipulation: each station's turnout and vote shares are drawn
around its region's values, and the counts are binomial (turnout) and multinomial (votes)
draws from them, so that every pattern in the result is sampling noise plus honest
heterogeneity. Two generators:

* :func:`simulate_clean`: a synthetic election. Station sizes follow a log-normal distribution
  like national station-size distributions (median about 1,500 registered), with 5 % small
  stations; optional special stations (hospitals, abroad) in configurable shares.
* :func:`simulate_like`: a *clean twin* of a real election: the real regions with their station
  counts, station sizes resampled from the real ones, and turnout and vote-share levels and
  spreads estimated region by region from the real numbers (see its docstring for what is and
  is not reproduced).

Both are reproducible from ``seed``: the same arguments give identical stations tables (and
content digests). The draws are vectorised (Dirichlet rows as normalised gamma variates,
:meth:`numpy.random.Generator.multinomial` on arrays), so 100,000 stations take well under a
second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import polars.selectors as cs

from pollwatch.errors import InputError, PollwatchError
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election

__all__ = ["simulate_clean", "simulate_like"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: 1.4826 x MAD estimates the standard deviation of a normal distribution.
_MAD_TO_SD = 1.4826
#: The smallest latent (between-station) standard deviation the twin uses, so that a group
#: whose spread is all binomial noise still gets a proper Beta / Dirichlet distribution.
_MIN_LATENT_SD = 0.005
#: Station kinds modelled like the ordinary stations of their region; every other kind
#: (hospital, abroad, prison, ...) is modelled nationally, kind by kind.
_ORDINARY_KINDS = frozenset({"ordinary", "unknown"})


def _dirichlet_rows(rng: np.random.Generator, alpha: FloatArray) -> FloatArray:
    """One Dirichlet draw per row of ``alpha`` (rows of concentration parameters).

    A Dirichlet(alpha) vector is a vector of independent Gamma(alpha_k, 1) variates divided by
    their sum; a row whose gammas are all zero (all alphas tiny) is given equal shares.
    """
    gammas = rng.standard_gamma(np.maximum(alpha, 0.0))
    totals = gammas.sum(axis=1, keepdims=True)
    empty = totals[:, 0] <= 0
    if empty.any():
        gammas[empty] = 1.0
        totals[empty] = gammas.shape[1]
    shares: FloatArray = gammas / totals
    return shares


def _multinomial_rows(rng: np.random.Generator, counts: IntArray, shares: FloatArray) -> IntArray:
    """One multinomial draw per station: ``counts[i]`` votes split with ``shares[i]``."""
    # Rounding can leave a row summing to 1 + 1e-16, which numpy refuses; the last share
    # only absorbs the remainder, so renormalising the others is enough.
    shares = shares / shares.sum(axis=1, keepdims=True)
    shares[:, :-1] *= 1.0 - 1e-12
    votes: IntArray = rng.multinomial(counts, shares).astype(np.int64)
    return votes


def _beta_parameters(mean: FloatArray, sd: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Beta(a, b) with the given mean and standard deviation (sd capped so that a, b > 0)."""
    mean = np.clip(mean, 1e-4, 1 - 1e-4)
    variance = np.minimum(sd**2, 0.9 * mean * (1 - mean))
    concentration = mean * (1 - mean) / variance - 1
    return mean * concentration, (1 - mean) * concentration


def simulate_clean(
    *,
    stations: int = 5000,
    candidates: int = 4,
    regions: int = 20,
    seed: int = 0,
    turnout_mean: float = 0.6,
    election_id: str | None = None,
    hospital_share: float = 0.0,
    abroad_share: float = 0.0,
) -> Election:
    """A clean simulated election, reproducible from ``seed``.

    ``regions`` regions with turnout levels Normal(``turnout_mean``, 0.06) and vote-share
    vectors Dirichlet(20 x (2.0 ... 0.5)); stations draw their turnout Normal(region, 0.05) and
    their shares Dirichlet(200 x region shares); ballots are Binomial(registered, turnout),
    invalid ballots Binomial(ballots, 1.5 %), votes Multinomial(valid, shares).

    Special stations, each a share of all stations (default none):

    * ``hospital_share``: hospitals and care homes (``station_kind="hospital"``), 10 to 99
      registered voters with turnout Beta(38, 2) (mean 95 %, almost everyone on the list votes);
    * ``abroad_share``: stations abroad (``station_kind="abroad"``, ``is_abroad``, region
      ``"Abroad"``): voters are added to the list when they come to vote, so
      ``registered = ballots_cast`` (turnout 100 % by construction), about 400 voters
      (log-normal), with preferences of their own (one more Dirichlet region).
    """
    if stations < 1 or candidates < 2 or regions < 1:
        raise PollwatchError(
            f"simulate_clean: stations={stations}, candidates={candidates}, regions={regions}",
            hint="at least 1 station, 2 candidates and 1 region",
        )
    if min(hospital_share, abroad_share) < 0.0 or hospital_share + abroad_share > 1.0:
        raise PollwatchError(
            f"simulate_clean: hospital_share={hospital_share}, abroad_share={abroad_share}",
            hint="shares are fractions of all stations, from 0 to 1, summing to at most 1",
        )
    rng = np.random.default_rng(seed)
    region = rng.integers(0, regions, stations)
    registered = np.maximum(20, rng.lognormal(np.log(1500), 0.6, stations)).astype(np.int64)
    small = rng.random(stations) < 0.05
    registered[small] = rng.integers(20, 200, int(small.sum()))
    # Regional heterogeneity, then station-level heterogeneity around it.
    region_turnout = np.clip(rng.normal(turnout_mean, 0.06, regions), 0.2, 0.9)
    station_turnout = np.clip(rng.normal(region_turnout[region], 0.05), 0.05, 0.97)
    # Special stations: always drawn, so that a seed gives the same ordinary stations whatever
    # the shares.
    kind_draw = rng.random(stations)
    hospital = kind_draw < hospital_share
    abroad = (kind_draw >= hospital_share) & (kind_draw < hospital_share + abroad_share)
    hospital_size = rng.integers(10, 100, stations)
    hospital_turnout = rng.beta(38.0, 2.0, stations)
    abroad_size = np.maximum(20, rng.lognormal(np.log(400), 0.8, stations)).astype(np.int64)
    registered = np.where(hospital, hospital_size, np.where(abroad, abroad_size, registered))
    station_turnout = np.where(hospital, hospital_turnout, np.where(abroad, 1.0, station_turnout))
    ballots = rng.binomial(registered, station_turnout).astype(np.int64)
    invalid = rng.binomial(ballots, 0.015).astype(np.int64)
    valid = ballots - invalid
    base = np.linspace(2.0, 0.5, candidates)
    region_shares = rng.dirichlet(base * 20, regions + 1)  # the last row: abroad
    share_row = np.where(abroad, regions, region)
    shares = _dirichlet_rows(rng, region_shares[share_row] * 200)
    votes = _multinomial_rows(rng, valid, shares)
    names = [f"Candidate {chr(65 + k)}" for k in range(candidates)]
    region_names = np.array([f"Region {r:02d}" for r in range(regions)] + ["Abroad"])
    data: dict[str, object] = {
        "station_id": [f"S{i:06d}" for i in range(stations)],
        "region": region_names[share_row],
        "station_kind": np.where(hospital, "hospital", np.where(abroad, "abroad", "ordinary")),
        "registered": registered,
        "ballots_received": registered + 50,
        "ballots_issued_on_day": ballots,
        "ballots_in_stationary_boxes": ballots,
        "ballots_in_mobile_boxes": np.zeros(stations, dtype=np.int64),
        "ballots_cast": ballots,
        "valid": valid,
        "invalid": invalid,
        "is_abroad": abroad,
    }
    for k, name in enumerate(names):
        data[name] = votes[:, k]
    specials = ""
    if hospital_share or abroad_share:
        specials = f", hospital_share={hospital_share:g}, abroad_share={abroad_share:g}"
    meta = ElectionMeta(
        id=election_id or f"simulated-clean-{seed}",
        country="XX",
        date="2000-01-01",
        kind="simulated",
        contest="Simulated clean election",
        source=f"pollwatch.synthetic.simulator.simulate_clean(seed={seed}{specials})",
        license="CC0-1.0",
        importer="simulation",
        candidates=tuple(Candidate(n, n) for n in names),
        definitions={"simulation": "clean: binomial turnout, multinomial votes, no manipulation"},
    )
    return make_election(meta, pl.DataFrame(data))


# --- the clean twin of a real election ---------------------------------------------------------
@dataclass(frozen=True)
class _Groups:
    """Per-group parameters fitted on the real stations (one group per row of each array)."""

    turnout_a: FloatArray
    turnout_b: FloatArray
    full_share: FloatArray  # stations with ballots_cast = registered (special kinds only)
    invalid_share: FloatArray
    alpha: FloatArray  # (groups, candidates) Dirichlet parameters


def _spread_expr(column: str) -> pl.Expr:
    """1.4826 x the median absolute deviation of ``column`` (within each group)."""
    return _MAD_TO_SD * (pl.col(column) - pl.col(column).median()).abs().median()


def _latent_sd(observed_sd: FloatArray, level: FloatArray, inverse_size: FloatArray) -> FloatArray:
    """Between-station sd: the observed spread less the binomial noise p(1-p) mean(1/n)."""
    variance = observed_sd**2 - level * (1 - level) * inverse_size
    result: FloatArray = np.sqrt(np.maximum(variance, _MIN_LATENT_SD**2))
    return result


def _size_column(frame: pl.DataFrame) -> str:
    """The station size the twin resamples: registered, else ballots cast, else valid votes."""
    half = 0.5 * frame.height
    with_turnout = (pl.col("registered") > 0) & pl.col("ballots_cast").is_not_null()
    if frame.filter(with_turnout).height >= half:
        return "registered"
    if frame.filter(pl.col("ballots_cast") > 0).height >= half:
        return "ballots_cast"
    return "valid"


def _fit_groups(
    real: pl.DataFrame,
    group_names: Sequence[str],
    columns: Sequence[str],
    leader: str,
    has_turnout: bool,
) -> _Groups:
    """Levels (medians) and latent spreads (MAD less binomial noise) per group."""
    share = [(pl.col(c) / pl.col("valid")).alias(f"share:{c}") for c in columns]
    frame = real.with_columns(*share, (pl.col(leader) / pl.col("valid")).alias("leader_share"))
    if has_turnout:
        # Special stations whose list is made of the voters who came (abroad, ships): a share
        # of them is full by construction; the rest are fitted as usual.
        frame = frame.with_columns(
            (pl.col("ballots_cast") == pl.col("registered")).alias("full")
        ).with_columns(
            pl.col("full").mean().over("group").alias("full_share"),
            (~pl.col("full")).sum().over("group").alias("not_full"),
        )
        fitted_by_full = pl.col("special") & (pl.col("full_share") >= 0.05)
        frame = frame.with_columns(
            pl.when(fitted_by_full).then(pl.col("full_share")).otherwise(0.0).alias("full_share"),
            pl.when(fitted_by_full & (pl.col("not_full") >= 2) & pl.col("full"))
            .then(None)
            .otherwise(pl.col("turnout"))
            .alias("fit_turnout"),
        ).with_columns(
            pl.when(pl.col("fit_turnout").is_not_null())
            .then(1.0 / pl.col("registered"))
            .alias("fit_inverse_size")
        )
        turnout_aggregates = [
            pl.col("fit_turnout").median().alias("turnout_level"),
            _spread_expr("fit_turnout").alias("turnout_sd"),
            pl.col("fit_inverse_size").mean().alias("turnout_inverse_size"),
            pl.col("full_share").first(),
            (pl.col("invalid").fill_null(0).sum() / pl.col("ballots_cast").sum()).alias(
                "invalid_share"
            ),
        ]
    else:
        cast = pl.col("valid") + pl.col("invalid").fill_null(0)
        turnout_aggregates = [
            (pl.col("invalid").fill_null(0).sum() / cast.sum()).alias("invalid_share")
        ]
    stats = frame.group_by("group").agg(
        *turnout_aggregates,
        pl.col("leader_share").median().alias("leader_level"),
        _spread_expr("leader_share").alias("leader_sd"),
        (1.0 / pl.col("valid")).mean().alias("leader_inverse_size"),
        *[pl.col(f"share:{c}").mean() for c in columns],
    )
    order = pl.DataFrame({"group": list(group_names), "position": range(len(group_names))})
    stats = (
        order.join(stats, on="group", how="left")
        .sort("position")
        .with_columns(cs.float().fill_nan(0.0).fill_null(0.0))
    )
    groups = stats.height
    if has_turnout:
        level = stats["turnout_level"].to_numpy()
        sd = _latent_sd(
            stats["turnout_sd"].to_numpy(), level, stats["turnout_inverse_size"].to_numpy()
        )
        turnout_a, turnout_b = _beta_parameters(level, sd)
        full_share = stats["full_share"].to_numpy()
    else:
        turnout_a, turnout_b, full_share = np.ones(groups), np.ones(groups), np.zeros(groups)
    lead = stats["leader_level"].to_numpy()
    mean_shares = stats.select([f"share:{c}" for c in columns]).to_numpy()
    leader_index = list(columns).index(leader)
    others = mean_shares.copy()
    others[:, leader_index] = 0.0
    total = others.sum(axis=1, keepdims=True)
    center = np.where(total > 0, others * (1 - lead[:, None]) / np.where(total > 0, total, 1), 0)
    center[:, leader_index] = lead
    empty = center.sum(axis=1) <= 0
    center[empty] = 1.0 / len(columns)
    spread = _latent_sd(
        stats["leader_sd"].to_numpy(), lead, stats["leader_inverse_size"].to_numpy()
    )
    level = np.clip(lead, 1e-4, 1 - 1e-4)
    concentration = np.maximum(level * (1 - level) / spread**2 - 1, 1.0)
    return _Groups(
        turnout_a=turnout_a,
        turnout_b=turnout_b,
        full_share=full_share,
        invalid_share=stats["invalid_share"].to_numpy(),
        alpha=center * concentration[:, None],
    )


def _restore_nulls(values: npt.NDArray[np.object_], placeholder: str) -> list[str | None]:
    return [None if v == placeholder else v for v in values.tolist()]


def _allocate(counts: IntArray, total: int) -> IntArray:
    """Split ``total`` stations over groups in proportion to ``counts`` (largest remainder)."""
    exact = counts * total / counts.sum()
    out: IntArray = np.floor(exact).astype(np.int64)
    remainder = total - int(out.sum())
    if remainder:
        # Ties broken by group order, so the allocation is deterministic.
        order = np.argsort(-(exact - out), kind="stable")
        out[order[:remainder]] += 1
    return out


def simulate_like(
    election: Election,
    *,
    seed: int = 0,
    stations: int | None = None,
    election_id: str | None = None,
    by: str = "region",
) -> Election:
    """A clean twin of a real election, reproducible from ``seed``.

    Fitted on the real election's stations that are not pseudo, cancelled or unpublished and
    report valid votes (> 0); a candidate without a number at a station counts 0 votes there
    (not on that ballot):

    * **regions**: the real region names, each with its real station count (scaled, largest
      remainder, when ``stations`` is given);
    * **station sizes**: resampled with replacement, region by region, from the real
      ``registered`` (or ``ballots_cast`` where most stations lack registered voters, or
      ``valid`` where both are absent, as in US precinct files); a resampled station keeps its
      ``station_kind`` and ``is_abroad``;
    * **turnout**: per region, Beta around the region's median station turnout with the
      between-station spread 1.4826 x MAD less the binomial part (floor 0.5 points); ballots
      are Binomial(registered, turnout);
    * **votes**: per region, Dirichlet centred on the leader's median share (the other
      candidates share the rest in proportion to their mean shares), with a concentration
      that gives the leader's share the region's robust spread less the binomial part; votes
      are Multinomial(valid, shares), with the real candidate names and columns;
    * **invalid ballots**: Binomial(ballots, the region's invalid share);
    * ``by="district"`` does all of the above per district (the level below the region: TIK,
      powiat, county) instead of per region, which keeps more of the honest heterogeneity
      (urban and rural districts) and also more of any manipulation that differs between
      districts; stations without a district form one group per region;
    * **special stations** (any kind other than ordinary/unknown: hospital, abroad, prison,
      ...) are fitted nationally, kind by kind, instead of by region; where at least 5 % of a
      kind's real stations have ``ballots_cast = registered`` (lists made of the voters who
      came: abroad, ships), that share of the twin's stations of the kind is full by
      construction.

    What is reproduced: the station-size distribution (per region), region-level turnout and
    vote-share levels, their within-region spreads, regional turnout-share correlation (the
    regions keep their real pairs of levels), the invalid share and the special stations.
    What is not: any manipulation; the within-region correlation of turnout and vote shares
    (zero by construction: the two are drawn independently), the dependence of turnout or
    shares on station size within a region, the shape of the within-region distributions
    beyond their median and spread (bimodal regions become unimodal), integer-percentage
    peaks, stations with 100 % turnout among ordinary stations, and every column other than
    registered, ballots_cast, valid, invalid and the votes (the hierarchy below the region,
    ballot-paper accounting, mobile boxes).
    """
    if by not in ("region", "district"):
        raise PollwatchError(f"simulate_like: by={by!r}", hint="by is 'region' or 'district'")
    columns = election.candidate_columns
    leader = election.leader()
    if leader is None or len(columns) < 2:
        raise InputError(
            f"election {election.id!r} has fewer than two candidates",
            hint="a clean twin needs the votes of at least two candidates",
        )
    # A candidate with no number at a station was not on its ballot (US states): 0 votes.
    real = election.stations.filter(
        ~pl.col("is_pseudo_station")
        & ~pl.col("is_cancelled")
        & ~pl.col("is_unpublished")
        & (pl.col("valid") > 0)
    ).with_columns(pl.col(c).fill_null(0) for c in columns)
    if real.height == 0:
        raise InputError(
            f"election {election.id!r} has no station with valid votes to fit a twin to",
            hint="check that the election reports valid votes and candidates' votes",
        )
    size_column = _size_column(real)
    has_turnout = size_column == "registered"
    if has_turnout:
        real = real.filter((pl.col("registered") > 0) & pl.col("ballots_cast").is_not_null())
    else:
        real = real.filter(pl.col(size_column) > 0)
    has_invalid = real["invalid"].null_count() < 0.5 * real.height
    special = ~pl.col("station_kind").is_in(list(_ORDINARY_KINDS))
    real = real.with_columns(
        pl.col("region").fill_null("(no region)"),
        pl.col("district").fill_null("(no district)"),
    )
    unit = pl.col("region")
    if by == "district":
        unit = pl.col("region") + pl.lit("\x1f") + pl.col("district")
    real = real.with_columns(
        unit.alias("unit"),
        special.alias("special"),
        pl.when(special)
        .then(pl.lit("kind:") + pl.col("station_kind"))
        .otherwise(pl.lit("unit:") + unit)
        .alias("group"),
    )
    if has_turnout:
        real = real.with_columns(
            (pl.col("ballots_cast") / pl.col("registered")).clip(0.0, 1.0).alias("turnout")
        )
    # Row order must not matter: everything below follows (unit, station_id) order.
    real = real.sort("unit", "station_id")
    unit_names = real["unit"].unique(maintain_order=True).to_list()
    unit_of_row = real["unit"].cast(pl.Enum(unit_names)).to_physical().to_numpy()
    group_names = sorted(real["group"].unique().to_list())
    group_of_row = real["group"].cast(pl.Enum(group_names)).to_physical().to_numpy()
    fitted = _fit_groups(real, group_names, columns, leader.column, has_turnout)

    rng = np.random.default_rng(seed)
    real_counts = np.bincount(unit_of_row, minlength=len(unit_names)).astype(np.int64)
    total = real.height if stations is None else int(stations)
    if total < 1:
        raise PollwatchError(f"simulate_like: stations={stations}", hint="at least 1 station")
    counts = real_counts if stations is None else _allocate(real_counts, total)
    starts = np.concatenate([[0], np.cumsum(real_counts)[:-1]])
    twin_unit = np.repeat(np.arange(len(unit_names)), counts)
    offset = np.floor(rng.random(total) * real_counts[twin_unit]).astype(np.int64)
    picked = starts[twin_unit] + offset
    group = group_of_row[picked]
    size = real[size_column].to_numpy().astype(np.int64)[picked]

    registered: IntArray | None = None
    ballots: IntArray | None = None
    invalid: IntArray | None = None
    if has_turnout:
        registered = size
        turnout = rng.beta(fitted.turnout_a[group], fitted.turnout_b[group])
        full = rng.random(total) < fitted.full_share[group]
        ballots = np.where(full, registered, rng.binomial(registered, turnout)).astype(np.int64)
    elif size_column == "ballots_cast":
        ballots = size
    if ballots is not None:
        invalid_draw = rng.binomial(ballots, fitted.invalid_share[group]).astype(np.int64)
        invalid = invalid_draw if has_invalid else None
        valid = ballots - invalid_draw if has_invalid else ballots
    else:
        valid = size
    shares = _dirichlet_rows(rng, fitted.alpha[group])
    votes = _multinomial_rows(rng, valid, shares)

    width = max(6, len(str(total)))
    data: dict[str, object] = {
        "station_id": [f"T{i:0{width}d}" for i in range(total)],
        "region": _restore_nulls(real["region"].to_numpy()[picked], "(no region)"),
        "district": (
            _restore_nulls(real["district"].to_numpy()[picked], "(no district)")
            if by == "district"
            else None
        ),
        "station_kind": real["station_kind"].to_numpy()[picked],
        "registered": registered,
        "ballots_cast": ballots,
        "valid": valid,
        "invalid": invalid,
        "is_abroad": real["is_abroad"].to_numpy()[picked],
    }
    for k, column in enumerate(columns):
        data[column] = votes[:, k]
    frame = pl.DataFrame({k: v for k, v in data.items() if v is not None})
    meta = ElectionMeta(
        id=election_id
        or f"{election.id}-twin-{seed}" + ("-by-district" if by == "district" else ""),
        country=election.meta.country,
        date=election.meta.date,
        kind="simulated",
        contest=f"Clean twin of {election.meta.contest}",
        source=f"pollwatch.synthetic.simulator.simulate_like({election.id!r}, seed={seed}, "
        f"stations={stations}, by={by!r})",
        license=election.meta.license,
        importer="simulation",
        candidates=election.meta.candidates,
        round=election.meta.round,
        hierarchy_labels={
            k: v
            for k, v in election.meta.hierarchy_labels.items()
            if k == "region" or (k == "district" and by == "district")
        },
        definitions={
            "simulation": "clean twin: resampled station sizes, Beta-binomial turnout and "
            f"Dirichlet-multinomial votes around {by} medians with MAD spreads; "
            f"no manipulation, no within-{by} turnout-share correlation",
            "twin_of": election.id,
            "station_size": f"resampled per {by} from the real {size_column}",
        },
        notes=f"clean twin of {election.id}, seed {seed}",
    )
    return make_election(meta, frame)
