"""Simulated clean elections, for the method conformance suite and calibration.

A clean election here has no manipulation: each station's turnout and vote shares are drawn
around its region's values, and the counts are binomial (turnout) and multinomial (votes)
draws from them, so that every pattern in the result is sampling noise plus honest
heterogeneity. Station sizes follow a log-normal distribution like national station-size
distributions (median about 1,500 registered), with a share of small stations.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election

__all__ = ["simulate_clean"]


def simulate_clean(
    *,
    stations: int = 5000,
    candidates: int = 4,
    regions: int = 20,
    seed: int = 0,
    turnout_mean: float = 0.6,
    election_id: str | None = None,
) -> Election:
    """A clean simulated election, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    region = rng.integers(0, regions, stations)
    registered = np.maximum(20, rng.lognormal(np.log(1500), 0.6, stations)).astype(np.int64)
    small = rng.random(stations) < 0.05
    registered[small] = rng.integers(20, 200, int(small.sum()))
    # Regional heterogeneity, then station-level heterogeneity around it.
    region_turnout = np.clip(rng.normal(turnout_mean, 0.06, regions), 0.2, 0.9)
    station_turnout = np.clip(rng.normal(region_turnout[region], 0.05), 0.05, 0.97)
    ballots = rng.binomial(registered, station_turnout)
    invalid = rng.binomial(ballots, 0.015)
    valid = ballots - invalid
    base = np.linspace(2.0, 0.5, candidates)
    region_shares = rng.dirichlet(base * 20, regions)
    votes = np.zeros((stations, candidates), dtype=np.int64)
    for i in range(stations):
        shares = rng.dirichlet(region_shares[region[i]] * 200)
        votes[i] = rng.multinomial(valid[i], shares)
    names = [f"Candidate {chr(65 + k)}" for k in range(candidates)]
    data: dict[str, object] = {
        "station_id": [f"S{i:06d}" for i in range(stations)],
        "region": [f"Region {r:02d}" for r in region],
        "registered": registered,
        "ballots_received": registered + 50,
        "ballots_issued_on_day": ballots,
        "ballots_in_stationary_boxes": ballots,
        "ballots_in_mobile_boxes": np.zeros(stations, dtype=np.int64),
        "ballots_cast": ballots,
        "valid": valid,
        "invalid": invalid,
    }
    for k, name in enumerate(names):
        data[name] = votes[:, k]
    meta = ElectionMeta(
        id=election_id or f"simulated-clean-{seed}",
        country="XX",
        date="2000-01-01",
        kind="simulated",
        contest="Simulated clean election",
        source=f"pollwatch.forensics.simulate.simulate_clean(seed={seed})",
        license="CC0-1.0",
        importer="simulation",
        candidates=tuple(Candidate(n, n) for n in names),
        definitions={"simulation": "clean: binomial turnout, multinomial votes, no manipulation"},
    )
    return make_election(meta, pl.DataFrame(data))
