"""Integer percentages (Kobak, Shpilkin & Pshenichnikov 2016): arithmetic, nulls, published figures.

Published excess of stations with integer turnout or leader result, from the authors'
repository github.com/dkobak/elections (the integer-anomalies analysis behind "Putin's peaks:
Russian election data revisited", Significance 15(3), 2018, and its later updates): the observed
count minus the mean of the binomial Monte Carlo null, stations with R > 0, V >= 100, turnout and
result <= 99 %. turnout = ballots issued / registered and result = leader / (valid + invalid) are
the ``given`` and ``received`` of the notebooks' ``loaddata``; the procedure is confirmed by
reproducing every year to within 5 stations (ballots in the boxes instead of ballots issued
misses 2018 by 87).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import binom

from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import MethodNotApplicable, MethodResult, get_method
from pollwatch.forensics.integer_peaks import (
    IntegerPercentages,
    IntegerShares,
    hits_whole_percent,
    poisson_binomial_pmf,
    saddlepoint_upper_tail,
    window_probability,
)
from pollwatch.results.importers import import_file
from pollwatch.results.model import Election, make_election
from pollwatch.synthetic.simulator import simulate_clean
from tests.conftest import mirror_file

#: excess stations (turnout or result), from the authors' repository (see module docstring)
PUBLISHED = {
    "2004": 934,
    "2007": 723,
    "2008": 1723,
    "2011": 1003,
    "2012": 1160,
    "2016": 1502,
    "2018": 1709,
}


# --- the arithmetic ---------------------------------------------------------------------------
def test_hits_are_decided_exactly_at_the_window_edge() -> None:
    # n = 2000: 201 / 2000 = 10.05 % sits exactly on the edge (not strictly inside)
    counts = np.array([200, 201, 199, 1999, 137, 0, 2000, 3, 5])
    totals = np.array([2000, 2000, 2000, 2000, 1370, 500, 2000, 7, 7])
    expected = [True, False, False, False, True, True, True, False, False]
    assert hits_whole_percent(counts, totals).tolist() == expected
    # 1 / 7 = 14.2857 %: outside 0.05 but inside 0.3
    assert hits_whole_percent([1], [7], window=0.3).tolist() == [True]


@pytest.mark.parametrize(
    ("n", "p"),
    [
        (100, 0.5),
        (137, 0.73),
        (1000, 0.61),
        (2000, 0.5),
        (2345, 0.883),
        (150, 0.2),
        (4000, 0.37),
        (100, 0.99),
        (311, 0.05),
    ],
)
def test_window_probability_matches_brute_force(n: int, p: float) -> None:
    k = np.arange(n + 1)
    brute = binom.pmf(k, n, p)[hits_whole_percent(k, np.full(k.size, n))].sum()
    assert window_probability([n], [p])[0] == pytest.approx(brute, abs=1e-6)


def test_window_probability_of_certain_fractions_is_one() -> None:
    assert window_probability([150, 150], [0.0, 1.0]).tolist() == [1.0, 1.0]


def test_poisson_binomial_matches_dynamic_programming() -> None:
    q = np.random.default_rng(5).uniform(0, 0.3, 301)
    dp = np.zeros(q.size + 1)
    dp[0] = 1.0
    for value in q:
        dp[1:] = dp[1:] * (1 - value) + dp[:-1] * value
        dp[0] *= 1 - value
    pmf = poisson_binomial_pmf(q)
    assert np.abs(pmf - dp).max() < 1e-12
    assert pmf @ np.arange(pmf.size) == pytest.approx(q.sum())


def test_saddlepoint_tail_matches_exact_tail() -> None:
    q = np.random.default_rng(6).uniform(0.05, 0.2, 5000)
    pmf = poisson_binomial_pmf(q)
    mean = q.sum()
    for observed in (int(mean + 30), int(mean + 80), int(mean + 120)):
        exact = pmf[observed:].sum()
        # largest relative error of the three over 101 streams: 4.19e-6 to 4.41e-6
        assert saddlepoint_upper_tail(q, observed) == pytest.approx(exact, rel=1e-4)


# --- parameters -------------------------------------------------------------------------------
def test_registered_under_its_name() -> None:
    method = get_method("integer-percentages", window=0.1)
    assert isinstance(method, IntegerPercentages)
    assert method.parameters()["window"] == 0.1


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"window": 0}, "window"),
        ({"window": 0.7}, "window"),
        ({"min_registered": 0}, "min_registered"),
        ({"max_turnout": 1.5}, "max_turnout"),
        ({"max_share": 0}, "max_share"),
        ({"turnout_numerator": "given"}, "turnout_numerator"),
        ({"null": "bootstrap"}, "null"),
        ({"replicates": 5}, "replicates"),
        ({"draws": "normal"}, "draws"),
        ({"alpha": 0.7}, "alpha"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(
    parameters: dict[str, object], named: str
) -> None:
    with pytest.raises(PollwatchError, match=named):
        IntegerPercentages(**parameters)  # type: ignore[arg-type]


# --- simulated elections ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean() -> Election:
    return simulate_clean(stations=4000, seed=11, regions=5)


def with_integer_turnout(election: Election, stations: int) -> Election:
    """Give the first ``stations`` stations (by id) 2,400 voters and a whole-percent turnout."""
    frame = election.stations.sort("station_id")
    heaped = pl.int_range(pl.len()) < stations
    percent = (pl.col("ballots_cast") * 100 / pl.col("registered")).round().clip(1, 98)
    ballots = pl.when(heaped).then((percent * 24).cast(pl.Int64)).otherwise(pl.col("ballots_cast"))
    frame = frame.with_columns(
        pl.when(heaped).then(2400).otherwise(pl.col("registered")).alias("registered"),
        ballots.alias("ballots_issued_on_day"),
    )
    return make_election(election.meta, frame)


def test_clean_election_shows_no_excess(clean: Election) -> None:
    result = IntegerPercentages().run(clean)
    # z = effect / null sd over 101 streams (no salt, salts 1-100): mean -0.15, sd 0.91
    # (-2.6 to 1.9), p 0.032-0.996. "Not significant" at alpha = 0.001 would fail about 2e-4
    # of streams; p < 1e-5 needs z > 4.3 (4.8 sd). Significance is p < alpha either way.
    assert result.p_value is not None and result.p_value > 1e-5
    assert result.significant == (result.p_value < result.alpha)
    assert abs(result.effect or 0) < 4 * result.details["components"]["either"]["sd"]
    assert result.sample_size == clean.stations.filter(pl.col("registered") >= 100).height


def test_heaped_turnout_is_detected(clean: Election) -> None:
    heaped = with_integer_turnout(clean, 300)
    result = IntegerPercentages().run(heaped)
    assert result.significant
    # 300 stations forced onto whole percents; at 2,400 voters about 12 % of their turnouts (and
    # about a fifth of turnout-or-share) would hit by chance anyway
    # over 101 streams: effect mean 233, sd 21 (179-288), 140 is 4.4 sd below; turnout excess
    # mean 264, sd 15.8 (229-304): 4 sd either side
    assert result.effect is not None and result.effect > 140
    assert 200 < result.details["excess"]["turnout"] < 330


def test_monte_carlo_agrees_with_the_exact_null(clean: Election) -> None:
    exact = IntegerPercentages().run(clean)
    binomial = IntegerPercentages(null="monte-carlo", replicates=400, draws="binomial", seed=3).run(
        clean
    )
    hits = IntegerPercentages(null="monte-carlo", replicates=400, draws="hits", seed=3).run(clean)
    sd = exact.details["null"]["exact"]["sd"]
    for result in (binomial, hits):
        # Monte Carlo sd / exact sd over 16 streams: binomial mean 1.005, sd 0.032 (0.963-1.086),
        # hits 0.984, sd 0.033 (0.921-1.033); 0.15 is 4.5 sd
        assert result.details["null"]["monte_carlo"]["sd"] == pytest.approx(sd, rel=0.15)
        # the mean of 400 replicates is within 4 standard errors of the exact mean (measured
        # over 16 streams, in standard errors: sd 0.89 binomial, 0.82 hits; -1.1 to 2.4)
        assert abs((result.effect or 0) - (exact.effect or 0)) < 4 * sd / 20
        assert result.statistic == exact.statistic


def test_exact_null_ignores_row_order_and_seed(clean: Election) -> None:
    shuffled = make_election(clean.meta, clean.stations.sample(fraction=1.0, shuffle=True, seed=9))
    first = IntegerPercentages(seed=1).run(clean).to_dict()
    second = IntegerPercentages(seed=1).run(shuffled).to_dict()
    first.pop("input_digest")
    second.pop("input_digest")
    assert first == second
    assert list(first["flagged"]) == sorted(first["flagged"])


def test_turnout_numerator_falls_back_to_ballots_cast(clean: Election) -> None:
    frame = clean.stations.with_columns(ballots_issued_on_day=pl.lit(None, dtype=pl.Int64))
    election = make_election(clean.meta, frame)
    result = IntegerPercentages().run(election)
    assert result.details["turnout_numerator"] == "cast"
    assert result.definitions["turnout"].startswith("ballots_cast")
    with pytest.raises(MethodNotApplicable, match="ballots-issued"):
        IntegerPercentages(turnout_numerator="issued").run(election)


# --- the published figures --------------------------------------------------------------------
@pytest.fixture(scope="module")
def russia(mirror: Path) -> dict[str, Election]:
    return {}


def russian(russia: dict[str, Election], mirror: Path, year: str) -> Election:
    if year not in russia:
        russia[year] = import_file(mirror_file(mirror, f"russia_cec/{year}.csv.zip"))
    return russia[year]


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_published_excess_is_reproduced(
    russia: dict[str, Election], mirror: Path, year: str
) -> None:
    result = IntegerPercentages().run(russian(russia, mirror, year))
    assert result.effect is not None
    assert abs(result.effect - PUBLISHED[year]) <= 15, (year, result.effect)
    assert result.significant
    assert result.p_value is not None and result.p_value < 1e-9
    low, high = result.interval or (0.0, 0.0)
    assert low < result.effect < high
    # a count test: no station is singled out by it
    assert result.flagged == ()
    assert result.details["stations_hitting"] == result.statistic


def test_ballots_in_the_boxes_do_not_reproduce_2018(
    russia: dict[str, Election], mirror: Path
) -> None:
    # The authors' turnout numerator is ballots issued; ballots found in the boxes (pollwatch's
    # ballots_cast) gives about 1,620 for 2018, not 1,709.
    result = IntegerPercentages(turnout_numerator="cast").run(russian(russia, mirror, "2018"))
    assert result.effect is not None
    assert abs(result.effect - PUBLISHED["2018"]) > 50
    assert result.definitions["turnout"].startswith("ballots_cast")


# --- the share alone --------------------------------------------------------------------------
def test_integer_shares_is_quiet_on_a_clean_election(clean: Election) -> None:
    result = IntegerShares().run(clean)
    # z over 101 streams mean -0.24, sd 0.94 (-2.4 to 1.9), p 0.032-0.994; p < 1e-5 would
    # need z > 4.3 (4.8 sd). Significance is p < alpha (0.001, a 2e-4 event here).
    assert result.p_value is not None and result.p_value > 1e-5
    assert result.significant == (result.p_value < result.alpha)
    assert result.details["share"]["observed"] == result.statistic
    assert result.flagged == ()


def test_integer_shares_needs_no_registered_voters(clean: Election) -> None:
    votes_only = make_election(
        clean.meta, clean.stations.with_columns(pl.lit(None, dtype=pl.Int64).alias("registered"))
    )
    result = IntegerShares().run(votes_only)
    assert result.statistic == IntegerShares().run(clean).statistic
    with pytest.raises(MethodNotApplicable):
        IntegerPercentages().run(votes_only)


def test_integer_shares_detects_rounded_results(clean: Election) -> None:
    from pollwatch.synthetic.injectors import RoundPercentages

    rounded, labels = RoundPercentages(share=0.1, magnitude=1.0).apply(
        clean, np.random.default_rng(0)
    )
    result = IntegerShares().run(rounded)
    assert result.significant
    # effect / rounded stations over 101 streams: mean 0.843, sd 0.042 (0.749-0.936)
    assert result.effect is not None and result.effect > 0.5 * len(labels.stations)


@pytest.mark.data
def test_integer_shares_separates_russia_2018_from_us_2016(
    russia: dict[str, Election], mirror: Path, us_2016: Election
) -> None:
    # measured here: Russia 2018 excess 874 (p 3e-22), US 2016 excess 34 (p 0.37)
    russian_result = IntegerShares().run(russian(russia, mirror, "2018"))
    assert russian_result.significant and (russian_result.effect or 0) > 500
    us_result = IntegerShares().run(us_2016)
    assert not us_result.significant
    assert us_result.p_value is not None and us_result.p_value > 0.01


# --- p-values as printed ----------------------------------------------------------------------
def test_p_values_print_with_their_floor() -> None:
    from pollwatch.forensics.base import format_p_value

    assert format_p_value(0.0) == "< 1e-300"
    assert format_p_value(1e-320) == "< 1e-300"
    assert format_p_value(3.2e-22) == "3.2e-22"
    assert format_p_value(0.04567) == "0.0457"
    assert format_p_value(1 / 1000, 1 / 1000) == "< 0.001"
    assert format_p_value(2 / 1000, 1 / 1000) == "0.002"
    assert format_p_value(None) == "—"
    assert format_p_value(1.0) == "1"


def test_monte_carlo_p_value_carries_its_floor(clean: Election) -> None:
    heaped = with_integer_turnout(clean, 400)
    result = IntegerPercentages(null="monte-carlo", replicates=199, seed=3).run(heaped)
    assert result.p_value_floor == pytest.approx(1 / 200)
    # 400 planted whole-percent stations lie far beyond every replicate: p at its floor
    assert result.p_value == pytest.approx(1 / 200)
    assert result.p_value_text() == "< 0.005"
    assert "p < 0.005" in result.headline()
    exact = IntegerPercentages().run(heaped)
    assert exact.p_value_floor is None and exact.p_value_text() != "0"
    assert MethodResult.from_json(result.to_json()).p_value_floor == result.p_value_floor
