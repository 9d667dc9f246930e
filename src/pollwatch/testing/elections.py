"""The elections the checks run on, simulated by pollwatch's own simulator.

Every one is reproducible (same arguments, same stations table) and cached for the process,
so a suite of checks simulates each once.
"""

from __future__ import annotations

from functools import cache

import polars as pl

from pollwatch.results.model import Election, make_election
from pollwatch.synthetic.simulator import simulate_clean

__all__ = ["clean_election", "edge_case_election", "election_without_registered"]


@cache
def clean_election(seed: int, stations: int = 1500, regions: int = 20) -> Election:
    """A clean simulated election (:func:`~pollwatch.synthetic.simulator.simulate_clean`)."""
    return simulate_clean(stations=stations, seed=seed, regions=regions)


#: every 50th station has 3 registered voters, every 97th no ballots and no votes, and every
#: 89th (from the second) no count for the last candidate
TINY_EVERY, ZERO_EVERY, MISSING_EVERY = 50, 97, 89


@cache
def edge_case_election() -> Election:
    """600 clean stations, with tiny stations, zero turnout and missing candidate counts.

    Every 50th station has 3 registered voters (ballots cast capped at 3), every 97th has no
    ballots and no votes, and at every 89th (from the second) the last candidate's count is
    missing. Every column is still known at most stations, so a method has no reason to refuse.
    """
    election = clean_election(4, stations=600)
    columns = election.candidate_columns
    row = pl.int_range(pl.len())
    zero = row % ZERO_EVERY == 0
    counts = [
        "ballots_cast",
        "valid",
        "invalid",
        "ballots_in_stationary_boxes",
        "ballots_issued_on_day",
        *columns,
    ]
    frame = election.stations.with_columns(
        pl.when(row % TINY_EVERY == 0).then(3).otherwise(pl.col("registered")).alias("registered")
    )
    frame = frame.with_columns(pl.when(zero).then(0).otherwise(pl.col(c)).alias(c) for c in counts)
    frame = frame.with_columns(
        pl.when(row % MISSING_EVERY == 1).then(None).otherwise(pl.col(columns[-1]))
        .alias(columns[-1]),
        pl.min_horizontal("ballots_cast", "registered").alias("ballots_cast"),
    )  # fmt: skip
    return make_election(election.meta, frame)


@cache
def election_without_registered() -> Election:
    """600 clean stations without registered voters or ballots cast (as US precinct files)."""
    election = clean_election(5, stations=600)
    frame = election.stations.with_columns(
        registered=pl.lit(None, dtype=pl.Int64), ballots_cast=pl.lit(None, dtype=pl.Int64)
    )
    return make_election(election.meta, frame)
