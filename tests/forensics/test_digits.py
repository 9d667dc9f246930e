"""Beber & Scacco (2012) last-digit tests and the shared digit helpers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pollwatch.errors import ColumnError, PollwatchError
from pollwatch.forensics.base import MethodNotApplicable
from pollwatch.forensics.digits import (
    BeberScacco,
    benford_second_digit,
    benjamini_hochberg,
    digit_test,
    last_digits,
    second_digits,
)
from pollwatch.results.model import Election, make_election
from pollwatch.synthetic.simulator import simulate_clean


def test_digit_helpers() -> None:
    counts = np.array([10, 19, 123, 9876543, 100, 45])
    assert last_digits(counts).tolist() == [0, 9, 3, 3, 0, 5]
    assert second_digits(counts).tolist() == [0, 9, 2, 8, 0, 5]


def test_benford_second_digit_law() -> None:
    # Nigrini (2012), Benford's Law, table 5.1: second-digit probabilities 0.11968 (0) and
    # 0.08500 (9); their mean 4.187 is the EFT 2BL expectation (Mebane 2006).
    p = benford_second_digit()
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(0.11968, abs=1e-5)
    assert p[9] == pytest.approx(0.08500, abs=1e-5)
    assert (np.arange(10) * p).sum() == pytest.approx(4.187, abs=5e-4)


def test_benjamini_hochberg_matches_scipy() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5, 0.2]
    expected = stats.false_discovery_control(p, method="bh")
    assert benjamini_hochberg(p) == pytest.approx(list(expected))
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([]) == []


def test_pair_expectations_are_exact_on_a_full_cycle() -> None:
    # 100..199 holds every (penultimate, last) pair once: 10 repeated, 20 adjacent (0-9
    # included), 70 distinct non-adjacent, and every last digit ten times.
    result = digit_test(np.arange(100, 200))
    assert result["chi_square"] == 0.0
    assert result["pairs"]["repeated"]["share"] == 0.1
    assert result["pairs"]["adjacent"]["share"] == 0.2
    assert result["pairs"]["distinct_non_adjacent"]["share"] == 0.7


def test_uniform_last_digits_give_uniform_p_values() -> None:
    rng = np.random.default_rng(7)
    p_values = np.array([digit_test(rng.integers(10, 5000, 2000))["p_value"] for _ in range(400)])
    # rejections at 5 % of 400: over 26 streams (no salt, salts 1-25) mean 0.052, sd 0.012
    # (0.028-0.085); Binomial(400, 0.05) leaves (5, 39) / 400 with probability < 2e-4
    assert 0.0125 < (p_values < 0.05).mean() < 0.0975
    # KS p over 26 streams 0.037-0.995 (uniform); below 1e-4 with probability 1e-4
    assert stats.kstest(p_values, "uniform").pvalue > 1e-4
    pairs = [digit_test(rng.integers(100, 5000, 2000))["pairs"]["adjacent"]["p_value"]
             for _ in range(200)]  # fmt: skip
    # exact binomial p (at most nominal): over 26 streams mean 0.048, sd 0.015 (0.02-0.08);
    # Binomial(200, 0.05) reaches 24 / 200 with probability < 1e-4
    assert (np.array(pairs) < 0.05).mean() < 0.12


def test_invented_sevens_are_detected() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(50, 900, 3000)
    invented = rng.random(3000) < 0.1
    counts[invented] = counts[invented] // 10 * 10 + 7
    result = digit_test(counts)
    # over 26 streams: log10 p at most -39; share of 7s mean 0.190, sd 0.0074 (0.177-0.205)
    assert result["p_value"] < 1e-6
    assert result["shares"][7] > 0.15


def _with_votes(election: Election, column: str, votes: np.ndarray) -> Election:
    return make_election(election.meta, election.stations.with_columns(pl.Series(column, votes)))


def test_method_on_a_clean_and_a_manipulated_election() -> None:
    election = simulate_clean(stations=3000, regions=1, seed=5)
    # which candidate leads depends on the stream (Candidate A in 24 of 26 streams)
    leader = election.leader()
    assert leader is not None
    clean = BeberScacco().run(election)
    # over 26 streams p 0.0083-0.98 (uniform); below 1e-4 with probability 1e-4
    assert clean.p_value is not None and clean.p_value > 1e-4
    assert clean.details["candidates_tested"] == [leader.name]
    assert set(clean.details["candidates"]) == set(
        election.meta.candidates[i].name for i in range(4)
    )
    votes = election.stations[leader.column].to_numpy().copy()
    votes[::4] = votes[::4] // 10 * 10 + 7  # a quarter of the counts rewritten to end in 7
    rigged = BeberScacco().run(_with_votes(election, leader.column, votes))
    # over 26 streams p below 1e-300 every time
    assert rigged.p_value is not None and rigged.p_value < 1e-10
    assert rigged.significant is True
    pooled = BeberScacco(candidate="all").run(election)
    # four candidates' counts against one: over 26 streams ratio mean 3.944, sd 0.014
    # (3.919-3.978)
    assert pooled.details["counts"] > clean.details["counts"] * 3.85


def test_parameters_are_checked() -> None:
    with pytest.raises(PollwatchError, match="minimum_count"):
        BeberScacco(minimum_count=5)
    with pytest.raises(PollwatchError, match="alpha"):
        BeberScacco(alpha=1.5)
    with pytest.raises(PollwatchError, match="candidate"):
        BeberScacco(candidate="")
    with pytest.raises(ColumnError):
        BeberScacco(candidate="Nobody").run(simulate_clean(stations=100, seed=1))
    with pytest.raises(MethodNotApplicable):
        BeberScacco(minimum_count=10**9).run(simulate_clean(stations=100, seed=1))


def test_poland_2020_first_round(poland: Election) -> None:
    # pollwatch's own figures (docs/methods/beber-scacco.md): Duda's 26,949 counts of 10 or more
    result = BeberScacco().run(poland)
    assert result.details["counts"] == 26_949
    assert result.statistic == pytest.approx(9.431, abs=1e-3)
    assert result.p_value == pytest.approx(0.3985, abs=1e-3)


def test_russia_2011_leader_counts(russia_2011: Election) -> None:
    # United Russia's counts pass the last-digit test: the Russian anomalies are in the
    # percentages (eft-p05s, integer peaks), not in the last digits of counts.
    result = BeberScacco().run(russia_2011)
    assert result.details["counts"] == 94_632
    assert result.statistic == pytest.approx(14.01, abs=0.01)
    assert result.p_value is not None and result.p_value > 0.05
    # small parties' counts pile up just above 10: their last digits are far from uniform
    patriots = result.details["candidates"]['3. Политическая партия "ПАТРИОТЫ РОССИИ"']
    assert patriots["p_value"] < 1e-10
