"""Integer-percentages null: pollwatch's vectorised computations against the reference approach.

On the 2018 presidential election (about 91,000 stations after the filters):

* exact null: pollwatch's window probabilities (enumerating only the vote counts inside the
  windows, from a log-gamma table) plus the FFT Poisson-binomial, against a straightforward
  per-station Python loop (``scipy.stats.binom.pmf`` over each station's whole support, keeping
  the counts that land on a whole percent), as one would write it after the authors' notebook;
* Monte Carlo null, 1,000 replicates: pollwatch's chunked draws (replicates × stations at once;
  ``draws="binomial"`` and ``draws="hits"``), against the authors' loop over replicates
  (``np.random.binomial`` over all stations per replicate), run for ``--reference-replicates``
  replicates and scaled to 1,000;
* the whole ``IntegerPercentages().run`` (selection, exact null, result building).

Prints the timings and ratios and writes ``benchmarks/results/integer_peaks.json``.

Usage: ``python benchmarks/bench_integer_peaks.py [--year 2018] [--reference-replicates 100]``
(needs ``POLLWATCH_DATA_MIRROR``, default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import binom

from _common import write_results
from pollwatch.forensics.integer_peaks import (
    IntegerPercentages,
    hits_whole_percent,
    poisson_binomial_pmf,
    window_probability,
)
from pollwatch.results.importers import import_file


def station_counts(path: Path) -> tuple[object, dict[str, np.ndarray]]:
    """The election and its (V, I, R, L) arrays under the authors' filters."""
    election = import_file(path)
    leader = election.leader()
    assert leader is not None
    issued = pl.sum_horizontal(
        pl.col("ballots_issued_early").fill_null(0),
        pl.col("ballots_issued_on_day").fill_null(0),
        pl.col("ballots_issued_outside").fill_null(0),
    )
    frame = (
        election.stations.filter(~pl.col("is_cancelled") & ~pl.col("is_pseudo_station"))
        .select(
            pl.col("registered").alias("V"),
            issued.alias("I"),
            (pl.col("valid") + pl.col("invalid")).alias("R"),
            pl.col(leader.column).alias("L"),
        )
        .drop_nulls()
        .filter(
            (pl.col("R") > 0)
            & (pl.col("V") >= 100)
            & (pl.col("I") <= 0.99 * pl.col("V"))
            & (pl.col("L") <= 0.99 * pl.col("R"))
        )
    )
    return election, {c: frame[c].to_numpy().astype(np.int64) for c in "VIRL"}


def exact_pollwatch(a: dict[str, np.ndarray]) -> float:
    pt = window_probability(a["V"], a["I"] / a["V"])
    ps = window_probability(a["R"], a["L"] / a["R"])
    q = 1 - (1 - pt) * (1 - ps)
    poisson_binomial_pmf(q)
    return float(q.sum())


def exact_reference(a: dict[str, np.ndarray]) -> float:
    total = 0.0
    for n_t, k_t, n_s, k_s in zip(a["V"], a["I"], a["R"], a["L"], strict=True):
        probabilities = []
        for n, k in ((n_t, k_t), (n_s, k_s)):
            support = np.arange(n + 1)
            on_whole = hits_whole_percent(support, np.full(support.size, n))
            probabilities.append(binom.pmf(support[on_whole], n, k / n).sum())
        total += 1 - (1 - probabilities[0]) * (1 - probabilities[1])
    return total


def monte_carlo_reference(a: dict[str, np.ndarray], replicates: int) -> float:
    np.random.seed(0)
    counts = []
    for _ in range(replicates):
        turnout = np.random.binomial(a["V"], a["I"] / a["V"])
        share = np.random.binomial(a["R"], a["L"] / a["R"])
        hits = hits_whole_percent(turnout, a["V"]) | hits_whole_percent(share, a["R"])
        counts.append(int(hits.sum()))
    return float(np.mean(counts))


def timed(function: object, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args)  # type: ignore[operator]
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", default="2018")
    parser.add_argument("--reference-replicates", type=int, default=100)
    args = parser.parse_args()
    mirror = Path(os.environ.get("POLLWATCH_DATA_MIRROR", "../shared/data"))
    election, arrays = station_counts(mirror / "russia_cec" / f"{args.year}.csv.zip")
    exact_pollwatch(arrays)  # warm the caches and the FFT plans
    t_exact, mean_fast = timed(exact_pollwatch, arrays)
    t_exact_ref, mean_ref = timed(exact_reference, arrays)
    t_run, result = timed(IntegerPercentages().run, election)
    t_mc_binomial, mc_binomial = timed(
        IntegerPercentages(null="monte-carlo", replicates=1000, draws="binomial", seed=1).run,
        election,
    )
    t_mc_hits, mc_hits = timed(
        IntegerPercentages(null="monte-carlo", replicates=1000, draws="hits", seed=1).run,
        election,
    )
    t_mc_ref_part, _ = timed(monte_carlo_reference, arrays, args.reference_replicates)
    t_mc_ref = t_mc_ref_part * 1000 / args.reference_replicates
    report = {
        "election": f"russia-{args.year}",
        "stations": int(arrays["V"].size),
        "exact_null_s": t_exact,
        "exact_null_reference_loop_s": t_exact_ref,
        "exact_null_speedup": t_exact_ref / t_exact,
        "exact_null_mean": mean_fast,
        "exact_null_mean_reference": mean_ref,
        "run_exact_s": t_run,
        "monte_carlo_1000_binomial_s": t_mc_binomial,
        "monte_carlo_1000_hits_s": t_mc_hits,
        "monte_carlo_1000_reference_loop_s": t_mc_ref,
        "monte_carlo_reference_replicates_run": args.reference_replicates,
        "monte_carlo_binomial_speedup": t_mc_ref / t_mc_binomial,
        "monte_carlo_hits_speedup": t_mc_ref / t_mc_hits,
        "excess_exact": result.effect,  # type: ignore[attr-defined]
        "excess_monte_carlo_binomial": mc_binomial.effect,  # type: ignore[attr-defined]
        "excess_monte_carlo_hits": mc_hits.effect,  # type: ignore[attr-defined]
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    for key, value in report.items():
        print(f"{key:36} {value:.3f}" if isinstance(value, float) else f"{key:36} {value}")
    write_results("integer_peaks", report)


if __name__ == "__main__":
    main()
