"""Election Forensics Toolkit tests: definitions, calibration, detection and real elections."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pollwatch.errors import PollwatchError
from pollwatch.forensics._shared import shared_work
from pollwatch.forensics.base import MethodNotApplicable, MethodResult
from pollwatch.forensics.eft import (
    EFTCorrelation,
    EFTDip,
    EFTKurtosis,
    EFTLastDigit,
    EFTPercent05,
    EFTSecondDigit,
    EFTSkewness,
    EFTSobyanin,
    EFTZeroFive,
)
from pollwatch.forensics.eft import _base as eft
from pollwatch.forensics.eft.digit_tests import _DigitSeries, _ratio_test
from pollwatch.results.model import Election, make_election
from pollwatch.synthetic.simulator import simulate_clean

R = 100  # bootstrap resamples in these tests


@pytest.fixture(scope="module")
def clean() -> Election:
    return simulate_clean(stations=3000, regions=1, seed=11)


def p_value(result: MethodResult) -> float:
    assert result.p_value is not None
    return result.p_value


def _replace(election: Election, **columns: np.ndarray) -> Election:
    frame = election.stations.with_columns([pl.Series(k, v) for k, v in columns.items()])
    return make_election(election.meta, frame)


# --- definitions ------------------------------------------------------------------------------
def test_benford_second_digit_mean_is_4_187() -> None:
    # Benford's second-digit law, P(d) = sum_{k=1..9} log10(1 + 1/(10k + d)) (Mebane 2006,
    # "Election Forensics: Vote Counts and Benford's Law"), computed here from scratch.
    mean = sum(d * math.log10(1 + 1 / (10 * k + d)) for d in range(10) for k in range(1, 10))
    assert round(mean, 3) == 4.187
    assert EFTSecondDigit.expected == pytest.approx(mean, abs=1e-12)


def test_second_digit_mean_of_benford_counts(clean: Election) -> None:
    rng = np.random.default_rng(2)
    counts = np.floor(10 ** rng.uniform(1, 6, clean.stations.height)).astype(np.int64)
    # counts of 10 to 10^6 make Candidate A the leader (the tested candidate) in any stream
    result = EFTSecondDigit(replicates=R).run(_replace(clean, **{"Candidate A": counts}))
    # over 101 streams (no salt, salts 1-100): mean 4.193, sd 0.049 (4.085-4.289); 4 sd
    assert result.statistic == pytest.approx(4.187, abs=0.2)
    # 2BL reports no p-value (Benford is not the law of honest counts), the z-test is a detail
    assert result.p_value is None and result.significant is None
    # the counts are exactly Benford: the z-test's p is uniform (101 streams: 0.050-0.974);
    # below 1e-4 with probability 1e-4
    assert result.details["p_value_against_expectation"] > 1e-4
    # The bootstrap interval (of the mean minus 4.187) holds the estimate, and its width is
    # that of the clustered z interval: width / (2 * 1.96 se) over 101 streams mean 0.962, sd
    # 0.094 (0.777-1.209); 4 sd. (Whether it covers 0 is a 95 % event, not asserted.)
    assert result.interval is not None and result.effect is not None
    assert result.interval[0] < result.effect < result.interval[1]
    width = (result.interval[1] - result.interval[0]) / (
        2 * 1.96 * result.details["standard_error"]
    )
    assert 0.6 < width < 1.35


def test_digit_z_test_is_calibrated() -> None:
    rng = np.random.default_rng(4)
    p_values = []
    for _ in range(1000):
        digits = rng.integers(0, 10, 1000)
        series = _DigitSeries("x", digits, np.ones(1000, dtype=np.int64))
        p_values.append(_ratio_test(series, 4.5, 0.95)["p_value"])
    # rejections at 5 % of 1000 tests: over 101 streams mean 0.051, sd 0.0072 (0.035-0.071);
    # for a calibrated test, Binomial(1000, 0.05) leaves (0.025, 0.078) with probability < 2e-4
    assert 0.025 < np.mean(np.array(p_values) < 0.05) < 0.078


def test_clustered_standard_error_reduces_to_the_sample_sd() -> None:
    rng = np.random.default_rng(5)
    digits = rng.integers(0, 10, 500)
    test = _ratio_test(_DigitSeries("x", digits, np.ones(500, dtype=np.int64)), 4.5, 0.95)
    assert test["mean"] == pytest.approx(digits.mean())
    assert test["standard_error"] == pytest.approx(digits.std(ddof=1) / math.sqrt(500))


# --- detection ----------------------------------------------------------------------------
def _leader(election: Election) -> str:
    """The leader's column: which candidate leads a simulation depends on the stream."""
    leader = election.leader()
    assert leader is not None
    return leader.column


def test_rounded_counts_are_detected(clean: Election) -> None:
    column = _leader(clean)
    votes = clean.stations[column].to_numpy().copy()
    votes[::3] = np.round(votes[::3] / 5) * 5  # a third of the counts rounded to 0 or 5
    rigged = _replace(clean, **{column: votes})
    c05s = EFTZeroFive(replicates=R).run(rigged)
    # over 101 streams: mean 0.4673, sd 0.0057 (0.4557-0.4806); 0.03 is 5 sd
    assert c05s.statistic == pytest.approx(0.2 + 0.8 / 3, abs=0.03)
    # over 101 streams: log10 p at most -172
    assert c05s.p_value is not None and c05s.p_value < 1e-10
    # clean: uniform p-values (101 streams: C05s 0.028-1, LastC 0.0048-0.997); a calibrated
    # p-value is below 1e-4 with probability 1e-4
    assert p_value(EFTZeroFive(replicates=R).run(clean)) > 1e-4
    assert p_value(EFTLastDigit(replicates=R).run(clean)) > 1e-4


def test_round_percentages_are_detected_in_the_right_region() -> None:
    election = simulate_clean(stations=4000, regions=8, seed=3)
    frame = election.stations
    column = _leader(election)
    in_region = (frame["region"] == "Region 03").to_numpy()
    valid = frame["valid"].to_numpy()
    votes = frame[column].to_numpy().copy()
    # in one region, half the stations report the leader at a round 5% step
    target = np.round(votes / valid * 20) / 20
    rewrite = in_region & (np.arange(frame.height) % 2 == 0)
    votes[rewrite] = np.round(target[rewrite] * valid[rewrite]).astype(np.int64)
    result = EFTPercent05(by_region=True, replicates=R).run(_replace(election, **{column: votes}))
    # national (1/16 of the stations rewritten): log10 p over 101 streams mean -12.3, sd 2.9
    # (-22.7 to -4.8); z about 7.1 with sd 0.95, so p < 1e-3 (z > 3.3) is 4 sd out
    assert result.p_value is not None and result.p_value < 1e-3
    rows = {row["region"]: row for row in result.details["regions"]}
    # Region 03: log10 q over 101 streams mean -70, sd 8 (-90 to -49)
    assert "Region 03" in result.details["flagged_regions"]
    assert rows["Region 03"]["q_value"] < 1e-6
    # The seven clean regions are not flagged at q < 0.05 in 9 % of streams (smallest clean q
    # over 101 streams 0.016-0.97), as BH allows; a clean q below 1e-5 has probability < 1e-4.
    assert all(row["q_value"] > 1e-5 for name, row in rows.items() if name != "Region 03")
    assert "turnout" in result.details["series"]


def test_ballot_stuffing_raises_the_sobyanin_slope(clean: Election) -> None:
    frame = clean.stations
    registered = frame["registered"].to_numpy()
    ballots = frame["ballots_cast"].to_numpy().copy()
    column = _leader(clean)
    votes = frame[column].to_numpy().copy()
    valid = frame["valid"].to_numpy().copy()
    stuffed = np.arange(frame.height) % 5 == 0
    extra = np.minimum(((registered - ballots) * 0.6).astype(np.int64), registered)
    extra[~stuffed] = 0
    rigged = _replace(
        clean,
        ballots_cast=ballots + extra,
        valid=valid + extra,
        **{column: votes + extra},
    )
    honest = EFTSobyanin(replicates=R).run(clean)
    stuffed_result = EFTSobyanin(replicates=R).run(rigged)
    # honest: p over 101 streams mean 0.49, sd 0.29 (0.0059-0.99), uniform; z uses a bootstrap
    # standard error of 100 resamples (about t with 99 df): P(p < 1e-5) is about 3e-5
    assert honest.p_value is not None and honest.p_value > 1e-5
    # stuffed: effect over 101 streams mean 0.435, sd 0.041 (0.302-0.533), 0.2 is 5.7 sd below;
    # log10 p at most -220
    assert stuffed_result.effect is not None and stuffed_result.effect > 0.2
    assert stuffed_result.p_value is not None and stuffed_result.p_value < 1e-10
    correlation = EFTCorrelation(replicates=R).run(rigged)
    # over 101 streams: mean 0.749, sd 0.065 (0.512-0.870); 0.4 is 5 sd below
    assert correlation.statistic is not None and correlation.statistic > 0.4


# --- agreement with reference implementations -------------------------------------------------
def test_moments_match_scipy(clean: Election) -> None:
    turnout = clean.turnout().to_numpy()
    skew = EFTSkewness(replicates=R).run(clean)
    kurt = EFTKurtosis(replicates=R).run(clean)
    # R moments::skewness / kurtosis are the biased moment ratios, kurtosis 3 for a normal
    assert skew.statistic == pytest.approx(stats.skew(turnout, bias=True), rel=1e-9)
    assert kurt.statistic == pytest.approx(stats.kurtosis(turnout, fisher=False), rel=1e-9)
    assert skew.p_value is None
    low, high = kurt.interval or (math.nan, math.nan)
    # the bootstrap interval holds the estimate in 101 of 101 streams
    assert low < (kurt.statistic or math.nan) < high
    share = EFTSkewness(variable="leader", replicates=R).run(clean)
    leader_share = clean.leader_share().to_numpy()
    assert share.statistic == pytest.approx(stats.skew(leader_share, bias=True), rel=1e-9)
    assert "turnout" in share.details["others"]


def test_slope_and_correlation_match_numpy(clean: Election) -> None:
    frame = clean.stations
    registered = frame["registered"].to_numpy().astype(float)
    turnout = frame["ballots_cast"].to_numpy() / registered
    # the methods use the leader, Candidate A in 84 of 101 streams (not under --seed-salt 5)
    column = _leader(clean)
    electorate = frame[column].to_numpy() / registered
    share = frame[column].to_numpy() / frame["valid"].to_numpy()
    sobyanin = EFTSobyanin(replicates=R).run(clean)
    assert sobyanin.statistic == pytest.approx(np.polyfit(turnout, electorate, 1)[0], rel=1e-9)
    correlation = EFTCorrelation(replicates=R).run(clean)
    reference = stats.pearsonr(turnout, share)
    assert correlation.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert correlation.p_value == pytest.approx(reference.pvalue, rel=1e-6)


def test_dip_test_sees_two_modes(clean: Election) -> None:
    frame = clean.stations
    registered = frame["registered"].to_numpy()
    high = np.arange(frame.height) % 3 == 0
    ballots = np.where(high, (registered * 0.95).astype(np.int64), frame["ballots_cast"])
    bimodal = _replace(clean, ballots_cast=ballots)
    # over 101 streams: the bimodal p is 0 every time; the clean p (the dip test is
    # conservative for a unimodal non-uniform law) mean 0.979, sd 0.045, min 0.675
    assert p_value(EFTDip().run(bimodal)) < 0.001
    assert p_value(EFTDip().run(clean)) > 0.05


def test_bootstrap_is_seeded(clean: Election) -> None:
    first = EFTLastDigit(seed=1, replicates=R).run(clean)
    again = EFTLastDigit(seed=1, replicates=R).run(clean)
    other = EFTLastDigit(seed=2, replicates=R).run(clean)
    assert first.interval == again.interval
    assert first.interval != other.interval
    assert first.statistic == other.statistic


@pytest.mark.parametrize("nibble", [15, 1])
@pytest.mark.parametrize("stations", [1, 2, 7, 1000])
def test_bootstrap_weights_are_kept_exactly(
    stations: int, nibble: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inside a suite the multiplicities are kept (two to a byte, or one to an element when a
    # count exceeds four bits: forced here with nibble = 1) and shared: the sums must be
    # those computed on the fly, bit for bit, however many times they are read.
    monkeypatch.setattr(eft, "_NIBBLE", nibble)
    columns = np.random.default_rng(0).random((stations, 3))
    alone = eft._resampled_sums(columns, 37, 3, 1)
    with shared_work():
        first = eft._resampled_sums(columns, 37, 3, 1)
        again = eft._resampled_sums(columns * 2, 37, 3, 1)
    assert np.array_equal(alone, first)
    assert np.array_equal(again, eft._resampled_sums(columns * 2, 37, 3, 1))
    kept = eft._resample_weights(stations, 37, 3, 1)
    assert kept.packed == (nibble == 15 or stations == 1)  # one station: every count is 1
    drawn = np.concatenate([w for _, w in eft._weight_chunks(stations, 37, 3, 1)])
    assert drawn.sum(axis=1).tolist() == [stations] * 37  # each resample has n stations
    assert np.array_equal(eft._unpack(kept, 0, 37, stations), drawn)


def test_parameters_are_checked() -> None:
    with pytest.raises(PollwatchError, match="replicates"):
        EFTLastDigit(replicates=1)
    with pytest.raises(PollwatchError, match="level"):
        EFTSkewness(level=1.0)
    with pytest.raises(PollwatchError, match="minimum_count"):
        EFTZeroFive(minimum_count=-1)
    with pytest.raises(PollwatchError, match="by_region"):
        EFTDip(by_region="yes")  # type: ignore[arg-type]
    with pytest.raises(PollwatchError, match="one candidate"):
        EFTCorrelation(candidate="all", replicates=R).run(simulate_clean(stations=100, seed=1))


# --- real elections ---------------------------------------------------------------------------
def test_russia_2011(russia_2011: Election) -> None:
    # pollwatch's figures, docs/methods/eft.md. Round vote-share percentages in excess
    # (Kobak, Shpilkin & Pshenichnikov 2016 find the same integer-percentage excess) and a
    # strong turnout-share relation; the leader's counts' last digits are close to uniform.
    p05s = EFTPercent05(by_region=True, replicates=R).run(russia_2011)
    assert p05s.statistic == pytest.approx(0.2091, abs=1e-4)
    assert p05s.p_value is not None and p05s.p_value < 1e-9
    flagged = set(p05s.details["flagged_regions"])
    assert {"Чеченская Республика", "Республика Дагестан", "Республика Башкортостан"} <= flagged
    assert len(flagged) < 12
    lastc = EFTLastDigit(replicates=R).run(russia_2011)
    assert lastc.statistic == pytest.approx(4.477, abs=1e-3)
    sobyanin = EFTSobyanin(replicates=R).run(russia_2011)
    assert sobyanin.statistic == pytest.approx(1.134, abs=1e-3)
    correlation = EFTCorrelation(replicates=R).run(russia_2011)
    assert correlation.statistic == pytest.approx(0.7133, abs=1e-4)
    assert p_value(EFTDip().run(russia_2011)) < 1e-6


def test_poland_2020_first_round(poland: Election) -> None:
    p05s = EFTPercent05(replicates=R).run(poland)
    assert p05s.statistic == pytest.approx(0.2, abs=5e-4)
    assert p05s.p_value is not None and p05s.p_value > 0.5
    dip = EFTDip().run(poland)
    assert dip.p_value is not None and dip.p_value > 0.5
    # honest heterogeneity: towns vote more and for Duda less, a negative correlation
    correlation = EFTCorrelation(replicates=R).run(poland)
    assert correlation.statistic == pytest.approx(-0.2937, abs=1e-4)


@pytest.mark.parametrize("cls", [EFTSkewness, EFTKurtosis, EFTDip, EFTSobyanin, EFTCorrelation])
def test_us_2016_turnout_tests_refuse(us_2016: Election, cls: type) -> None:
    with pytest.raises(MethodNotApplicable, match="registered"):
        cls().run(us_2016)


def test_us_2016_digit_tests_run(us_2016: Election) -> None:
    lastc: MethodResult = EFTLastDigit(replicates=R).run(us_2016)
    assert lastc.details["candidates_tested"] == ["Donald Trump"]
    assert lastc.details["counts"] == 110_187
    assert lastc.statistic == pytest.approx(4.4814, abs=1e-4)
    p05s = EFTPercent05(replicates=R).run(us_2016)
    assert "turnout" not in p05s.details["series"]
    assert p05s.statistic == pytest.approx(0.2023, abs=1e-4)
