"""Rozenas' resampled kernel density (RKD) spike test: golden numbers and building blocks.

Golden numbers:
* R package ``spikes`` 1.1 (CRAN, Rozenas 2016), its example object ``data(output)``, a run of
  ``spikes(data, resamples = 1000)`` on the 2011 Canadian polls (Conservative votes): the
  package prints F = 0.04 and ``output$fraud`` is 0.039 (per cent), i.e. F = 0.00039.
* The QSS extract of the same election (kosukeimai/qss-package ``canada2011``), row counts and
  sums from ``shared/data/qss_rozenas_fraud_refs/PROVENANCE.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import optimize, stats

from pollwatch.errors import PollwatchError
from pollwatch.forensics import spikes
from pollwatch.forensics.base import MethodNotApplicable, MethodResult, get_method
from pollwatch.forensics.spikes import (
    RozenasSpikes,
    fit_beta_binomial_mixture,
    r_density,
    read_qss_reference,
)
from pollwatch.results.model import Election, make_election
from pollwatch.synthetic.simulator import simulate_clean
from tests.conftest import mirror_file

QSS = "qss_rozenas_fraud_refs"


# --- building blocks ---------------------------------------------------------------------------
def test_r_density_matches_a_direct_gaussian_kernel_density() -> None:
    # With a bandwidth much wider than the FFT grid step, R's binned FFT estimate agrees with
    # the exact kernel sum to about 1e-3 relative.
    rng = np.random.default_rng(1)
    values = rng.beta(5, 4, 2000)
    x, y = r_density(values, bandwidth=0.02, grid=201)
    exact = np.exp(-0.5 * ((x[:, None] - values[None, :]) / 0.02) ** 2).sum(axis=1) / (
        values.size * 0.02 * np.sqrt(2 * np.pi)
    )
    assert x[0] == 0.0 and x[-1] == 1.0 and x.size == 201
    # over 61 streams (no salt, salts 1-60): mean 1.11e-3, sd 8e-5 (0.92e-3 to 1.35e-3) of
    # the maximum
    assert np.max(np.abs(y - exact)) < 2e-3 * exact.max()


def test_r_density_at_the_package_bandwidth_is_a_binned_spike() -> None:
    # bw = 1e-4 is a tenth of the grid step: a point mass at 1/2 shows as a spike at x = 0.5
    # of height about dnorm(0, sd = 1e-4) = 3989 times its mass, and nothing 0.01 away.
    x, y = r_density(np.array([0.5, 0.5, 0.25, 0.75]), bandwidth=1e-4, grid=1001)
    j = int(np.argmin(np.abs(x - 0.5)))
    assert y[j] == pytest.approx(0.5 * 3989.42 / 2, rel=0.3)
    assert y[j + 10] < 1e-9
    # ... and the curve does not integrate to 1 (R's density() behaves so): each point mass
    # is a spike of height 3989 on the FFT grid of step 1.0008/1023, so the sum is 3.90.
    assert y.sum() * (x[1] - x[0]) == pytest.approx(3989.42 * 1.0008 / 1023, rel=0.02)


def test_mixture_fit_recovers_known_parameters() -> None:
    rng = np.random.default_rng(7)
    n = rng.integers(200, 1500, 6000)
    first = rng.random(6000) < 0.7
    p = np.where(first, rng.beta(30, 20, 6000), rng.beta(8, 32, 6000))
    y = rng.binomial(n, p)
    fit = fit_beta_binomial_mixture(y, n, max_components=2)
    means = fit.alpha / (fit.alpha + fit.beta)
    # Over 61 streams (no salt, salts 1-60): means off by sd 0.0014 and 0.0011 (at most
    # 0.0041); the first weight by sd 0.0053 (at most 0.0136); alpha + beta relative sd 0.041
    # (-0.074 to 0.120) and 0.023 (at most 0.052). Tolerances 4.5 sd or more.
    assert fit.components == 2
    assert means == pytest.approx([0.2, 0.6], abs=0.01)
    assert fit.weights == pytest.approx([0.3, 0.7], abs=0.025)
    assert fit.alpha + fit.beta == pytest.approx([40, 50], rel=0.2)
    # With the package's rule for the number of components, the fitted latent density is the
    # true one (whatever the number of components it settles on).
    free = fit_beta_binomial_mixture(y, n)
    x = np.linspace(0.01, 0.99, 500)
    true = 0.7 * stats.beta.pdf(x, 30, 20) + 0.3 * stats.beta.pdf(x, 8, 32)
    # 1 - correlation over 61 streams: mean 5e-4, sd 4e-4, at most 2.5e-3
    assert np.corrcoef(free.beta_density(x), true)[0, 1] > 0.99


@pytest.mark.parametrize(
    ("parameter", "value"),
    [("replicates", 1), ("bandwidth", 0.0), ("grid", 5), ("max_components", 0),
     ("interval_level", 1.0), ("alpha", 0.0), ("seed", -1)],
)  # fmt: skip
def test_parameters_are_validated(parameter: str, value: object) -> None:
    with pytest.raises(PollwatchError, match=parameter):
        RozenasSpikes(**{parameter: value})  # type: ignore[arg-type]


def test_registered_and_constructible_by_name() -> None:
    method = get_method("rozenas-spikes", replicates=10)
    assert isinstance(method, RozenasSpikes)


# --- simulated elections -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean() -> Election:
    return simulate_clean(stations=3000, seed=11, regions=1)


def _with_coarse_shares(election: Election, fraction: float, seed: int) -> Election:
    """Give the leader exactly 1/2, 2/3, 3/4, 4/5 or 9/10 of valid at ``fraction`` of stations
    (valid rounded down to a multiple of the denominator; one other candidate takes the rest)."""
    rng = np.random.default_rng(seed)
    frame = election.stations
    leader = election.leader()
    assert leader is not None
    others = [c for c in election.candidate_columns if c != leader.column]
    hit = rng.random(frame.height) < fraction
    choice = rng.integers(0, 5, frame.height)
    numerator = np.array([1, 2, 3, 4, 9])[choice]
    denominator = np.array([2, 3, 4, 5, 10])[choice]
    valid = frame["valid"].to_numpy()
    new_valid = np.where(hit, valid - valid % denominator, valid)
    new_leader = np.where(hit, new_valid // denominator * numerator, frame[leader.column])
    updates = {
        "valid": new_valid,
        "ballots_cast": new_valid + frame["invalid"].to_numpy(),
        leader.column: new_leader,
        others[0]: np.where(hit, new_valid - new_leader, frame[others[0]]),
    }
    for column in others[1:]:
        updates[column] = np.where(hit, 0, frame[column])
    frame = frame.with_columns(**{k: pl.Series(v, dtype=pl.Int64) for k, v in updates.items()})
    return make_election(election.meta, frame)


def test_injected_coarse_shares_are_found_and_clean_is_near_zero(clean: Election) -> None:
    method = RozenasSpikes(replicates=100, max_components=2, seed=3)
    base = method.run(clean)
    spiked = method.run(_with_coarse_shares(clean, 0.05, seed=5))
    assert base.effect is not None and spiked.effect is not None
    # Over 101 streams (no salt, salts 1-100). Clean: F mean 0.0069, sd 0.0047 (0 to 0.018;
    # above 0.01 in a quarter of them, F being biased up at 100 resamples), its coarse excess
    # mean 0.0012, sd 0.0017, at most 0.0077.
    assert base.effect < 0.03
    assert base.details["coarse_excess"] < 0.01
    # about 5% of stations were moved to coarse shares; most of it shows as excess there:
    # F minus the clean F mean 0.047, sd 0.0055 (0.031-0.060); coarse excess mean 0.049, sd
    # 0.0042 (0.038-0.062); p at its floor 1/101 every time
    assert spiked.effect > base.effect + 0.02
    assert spiked.details["coarse_excess"] > 0.02
    assert spiked.p_value is not None and spiked.p_value < 0.05
    # flagged share mean 0.067, sd 0.014 (0.040-0.114); the clean run flags up to 0.055
    assert spiked.flagged and len(spiked.flagged) > 0.01 * clean.stations.height
    assert base.interval is not None and base.interval[0] <= base.effect <= base.interval[1]


def test_no_registered_voters_is_not_applicable(clean: Election) -> None:
    frame = clean.stations.with_columns(registered=pl.lit(None, dtype=pl.Int64))
    with pytest.raises(MethodNotApplicable, match="registered"):
        RozenasSpikes(replicates=10).run(make_election(clean.meta, frame))


# --- the QSS reference files (Rozenas' Canada 2011 and Russia 2011) -----------------------------
def _qss(mirror: Path, name: str) -> Election:
    return read_qss_reference(mirror_file(mirror, f"{QSS}/{name}.csv.gz"))


@pytest.mark.data
def test_read_qss_reference_matches_provenance(mirror: Path) -> None:
    # PROVENANCE.md: canada2011 66,060 rows, sum N 24,090,963, turnout 12,325,714, votes 4,871,244
    election = _qss(mirror, "canada2011")
    summary = election.summary()
    assert summary.stations == 66_060
    assert summary.registered == 24_090_963
    assert summary.ballots_cast == 12_325_714
    assert summary.totals == {"winner": 4_871_244, "others": 12_325_714 - 4_871_244}
    assert election.stations["station_id"][0] == "00001"


@pytest.fixture(scope="module")
def canada(mirror: Path) -> MethodResult:
    # The package's own settings: resamples = 1000, bw = 1e-4, grid = 1001.
    return RozenasSpikes(candidate="winner", replicates=1000, seed=0).run(
        _qss(mirror, "canada2011")
    )


@pytest.mark.data
def test_canada_2011_matches_the_package_example(canada: MethodResult) -> None:
    # spikes 1.1 data(output): F = 0.039% (0.00039). F is a Monte Carlo quantity with a wide
    # spread: over 12 seeds (0-11, B = 1000, requirements.lock) pollwatch gives F = 0 to
    # 0.00123 (mean 0.00067, sd 0.00032, median 0.00069: the package's 0.00039 is inside the
    # spread), coarse excess 0 every time, p = 0.023 to 1 (the resampler before the
    # denominators' tables, on the same seeds: F 0 to 0.00164, mean 0.00061, sd 0.00042; p
    # 0.008 to 1). Tolerances from that spread: F below 0.002 (mean + 4 sd; Russia 2011 gives
    # ~0.0096, see below), coarse excess below 0.0005, p above 0.01 (a clean election is not
    # flagged).
    assert canada.effect is not None
    assert 0 <= canada.effect < 0.002
    assert canada.details["coarse_excess"] < 0.0005
    assert canada.p_value is not None and canada.p_value > 0.01
    assert canada.sample_size == 66_060


@pytest.mark.data
def test_russia_2011_has_far_more_spikes_than_canada(mirror: Path, canada: MethodResult) -> None:
    # 100 resamples to keep the suite fast (F grows as B shrinks: 1.43% here, 0.885% at the
    # package's B = 1000); p is then at its floor 1/101.
    result = RozenasSpikes(candidate="winner", replicates=100, seed=0).run(
        _qss(mirror, "russia2011")
    )
    assert result.effect is not None and canada.effect is not None
    # Over 13 streams (no salt, salts 1-12): F mean 1.36 %, sd 0.068 % (1.25 %-1.46 %), so
    # more than 1.1 % (4 sd down); Canada's F is 0 to 0.106 % over 12 seeds (bounded by 0.2 %
    # above), so Russia's is more than 5 times Canada's on any pair of streams; coarse excess
    # mean 0.0043, sd 0.0004 (0.0037-0.0049); p at its floor and all four fractions below
    # among the spike points every time.
    assert result.effect > 0.011
    assert result.effect > 5 * canada.effect
    assert result.details["coarse_excess"] > 0.002
    assert result.p_value is not None and result.p_value < 0.02
    shares = {row["coarse_fraction"] for row in result.details["spike_points"]}
    assert {"3/4", "19/20", "13/20", "17/20"} <= shares


# --- the resampler ------------------------------------------------------------------------------
def _turnout_model(registered: list[int], valid: list[int], weights: np.ndarray) -> spikes._Model:
    """A resampling model with a fixed three-component turnout mixture (Russia 2018's fit)."""
    mixture = spikes.BetaBinomialMixture(
        alpha=np.array([40.31, 21.35, 5.584]),
        beta=np.array([26.67, 9.071, 1.101]),
        weights=np.array([0.455, 0.152, 0.393]),
        log_likelihood=0.0,
        iterations=0,
    )
    n, t = np.array(registered), np.array(valid)
    return spikes._Model(
        registered=n,
        denominator=t,
        votes=t // 2,
        turnout_fit=mixture,
        share_fit=mixture,
        turnout_weights=weights,
        share_cumulative=np.cumsum(weights, axis=1),
    )


#: stations that reach every branch of the table's window: a typical one, a tiny turnout, full
#: turnout (a shape below 1: the whole support), tiny stations, a big one, a component of
#: weight 1e-30 and one of weight 0
REGISTERED = [1000, 1000, 20, 5, 3000, 2000, 400, 1, 50]
VALID = [600, 1, 20, 5, 2999, 1000, 399, 1, 25]


def _weights() -> np.ndarray:
    weights = np.random.default_rng(3).dirichlet([1, 1, 1], len(REGISTERED))
    weights[0] = [1, 0, 0]
    weights[5] = [1e-30, 1 - 1e-30, 0]
    return weights


def test_predictive_tables_are_the_beta_binomial_mixture() -> None:
    # t* = Binomial(N, p), p ~ Beta(t + a_k, N - t + b_k), k ~ weights: its distribution is the
    # mixture of beta-binomials, which the tables must hold to double precision (the windows
    # leave out at most 1e-17 per component and edge; scipy's own pmf is accurate to ~1e-13).
    weights = _weights()
    model = _turnout_model(REGISTERED, VALID, weights)
    counts = spikes._PredictiveCounts(model)
    table = counts.table(np.arange(len(REGISTERED)))
    cdf = table.cdf.reshape(table.size, table.width)
    for i, (n, t) in enumerate(zip(REGISTERED, VALID, strict=True)):
        x = np.arange(n + 1)
        expected = sum(
            weights[i, k]
            * stats.betabinom.pmf(
                x, n, t + model.turnout_fit.alpha[k], n - t + model.turnout_fit.beta[k]
            )
            for k in range(3)
        )
        mine = np.zeros(n + 1)
        span = counts.high[i] - counts.low[i] + 1
        mine[counts.low[i] : counts.high[i] + 1] = np.diff(cdf[i, :span], prepend=0.0)
        assert np.abs(mine - expected).sum() < 1e-10, (n, t)
        assert cdf[i, span - 1 :].min() == 1.0


def test_table_draws_invert_the_cumulative_probabilities() -> None:
    # each draw is the first count whose cumulative probability exceeds its uniform: exactly
    # what searchsorted finds (the guide table and the bisection only make it faster)
    model = _turnout_model(REGISTERED, VALID, _weights())
    counts = spikes._PredictiveCounts(model)
    table = counts.table(np.arange(len(REGISTERED)))
    drawn = table.draw(np.random.default_rng(1), 20_000)
    u = np.random.default_rng(1).random((20_000, table.size))
    cdf = table.cdf.reshape(table.size, table.width)
    for i in range(table.size):
        expected = counts.low[i] + np.searchsorted(cdf[i], u[:, i], side="right")
        assert np.array_equal(drawn[:, i], expected)


def test_table_draws_follow_the_package_two_step_draws() -> None:
    # the package's resample: component from its weight, a beta, then a binomial; the table
    # draws must have the same distribution (two-sample chi-square on the pooled counts; over
    # 20 streams the smallest p-value of the 9 stations was 0.004 to 0.40, median 0.11; the
    # minimum of 9 uniform p-values is below 1e-4 once in 1,100 streams)
    weights = _weights()
    model = _turnout_model(REGISTERED, VALID, weights)
    table = spikes._PredictiveCounts(model).table(np.arange(len(REGISTERED)))
    draws = 40_000
    ours = table.draw(np.random.default_rng(5), draws)
    rng = np.random.default_rng(6)
    n, t = model.registered, model.denominator
    k = spikes._draw_component(rng, np.cumsum(weights, axis=1), draws)
    p = rng.beta(t + model.turnout_fit.alpha[k], n - t + model.turnout_fit.beta[k])
    theirs = rng.binomial(n, p)
    for i in range(len(REGISTERED)):
        values = np.union1d(ours[:, i], theirs[:, i])
        table_counts = np.array(
            [[np.sum(ours[:, i] == v) for v in values], [np.sum(theirs[:, i] == v) for v in values]]
        )
        # pool sparse tails so that every expected count is at least 5
        order = np.argsort(values)
        pooled, current = [], np.zeros(2)
        for j in order:
            current += table_counts[:, j]
            if current.sum() >= 10:
                pooled.append(current)
                current = np.zeros(2)
        if len(pooled) < 2:
            continue
        pooled[-1] = pooled[-1] + current
        p_value = stats.chi2_contingency(np.array(pooled).T)[1]
        assert p_value > 1e-4, (REGISTERED[i], VALID[i], p_value)


def test_resampling_does_not_depend_on_the_threads(
    clean: Election, monkeypatch: pytest.MonkeyPatch
) -> None:
    method = RozenasSpikes(replicates=30, interval_draws=20, max_components=2, seed=2)
    results = []
    for cpus in (1, 2, 5):
        monkeypatch.setattr(os, "cpu_count", lambda cpus=cpus: cpus)
        result = method.run(clean).to_dict()
        result.pop("environment")
        results.append(result)
    assert results[0] == results[1] == results[2]


def test_the_fits_run_with_openblas_on_one_thread_and_restore_it() -> None:
    """The mixture fit runs its optimiser with OpenBLAS on one thread (its threads only spin on
    L-BFGS-B's tiny calls); the count comes back when the last of the blocks open at once ends."""
    from pollwatch.forensics import _shared

    setters = _shared._openblas_thread_setters()
    if not setters:
        pytest.skip("no OpenBLAS loaded (or not Linux): one_blas_thread does nothing here")

    def current() -> list[int]:
        counts = [setter(1) for setter in setters]  # the setter returns the previous count
        for setter, count in zip(setters, counts, strict=True):
            setter(count)
        return counts

    before = [setter(3) for setter in setters]
    try:
        seen: list[list[int]] = []
        original = optimize.minimize

        def spy(*args: object, **kwargs: object) -> object:
            seen.append(current())
            return original(*args, **kwargs)

        y, n = np.array([3, 5, 8, 2, 9] * 8), np.array([10, 12, 15, 9, 20] * 8)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(optimize, "minimize", spy)
            fit_beta_binomial_mixture(y, n, max_components=2)
        assert seen and all(counts == [1] * len(setters) for counts in seen)
        assert current() == [3] * len(setters)
        with _shared.one_blas_thread():
            with _shared.one_blas_thread():  # nested (or on another thread): still one
                assert current() == [1] * len(setters)
            assert current() == [1] * len(setters)
        assert current() == [3] * len(setters)
    finally:
        for setter, count in zip(setters, before, strict=True):
            setter(count)
