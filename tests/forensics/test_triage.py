"""Station triage: stuffed stations rise to the top, with their reasons."""

from __future__ import annotations

import polars as pl
import pytest

from pollwatch.errors import PollwatchError
from pollwatch.forensics.simulate import simulate_clean
from pollwatch.forensics.triage import Triage
from pollwatch.results.model import make_election


def stuffed(count: int = 10):
    election = simulate_clean(stations=3000, seed=7)
    frame = election.stations
    targets = frame["station_id"].sort().head(count).to_list()
    hit = pl.col("station_id").is_in(targets)
    leader = election.leader()
    assert leader is not None
    others = [c for c in election.candidate_columns if c != leader.column]
    # Ballot stuffing: turnout to about 97%, all added ballots for the leader.
    added = (pl.col("registered") * 0.97).cast(pl.Int64) - pl.col("ballots_cast")
    frame = frame.with_columns(
        pl.when(hit).then(pl.col(leader.column) + added).otherwise(pl.col(leader.column)),
        *[pl.col(c) for c in others],
        pl.when(hit).then(pl.col("valid") + added).otherwise(pl.col("valid")).alias("valid"),
        pl.when(hit)
        .then(pl.col("ballots_cast") + added)
        .otherwise(pl.col("ballots_cast"))
        .alias("ballots_cast"),
    ).with_columns(
        pl.col("ballots_cast").alias("ballots_in_stationary_boxes"),
        pl.col("ballots_cast").alias("ballots_issued_on_day"),
    )
    return make_election(election.meta, frame), targets


def test_stuffed_stations_rank_first_with_reasons() -> None:
    election, targets = stuffed()
    result = Triage(top=20).run(election)
    ranked = [row["station_id"] for row in result.details["ranked"]]
    # A stuffed station whose honest turnout was already high moves less, and now and then a
    # clean station outranks it. Over 201 streams (no salt, salts 1-200): all ten targets in
    # the top 10 in 169, nine in 32; in the top 20 all ten in 200, nine in 1; flagged (score
    # at least 6) all ten in 179, nine in 18, eight in 3, seven in 1.
    assert len(set(ranked[:10]) & set(targets)) >= 7
    assert len(set(ranked[:20]) & set(targets)) >= 9
    assert len(set(result.flagged) & set(targets)) >= 6
    # the top station's first reason, in 101 of 101 streams
    assert "above its region" in result.details["ranked"][0]["reasons"][0]
    # clean stations seldom reach the threshold: 0-3 of them over 201 streams (7-13 flagged)
    assert len(result.flagged) < 60


def test_protocol_findings_add_to_the_score() -> None:
    election = simulate_clean(stations=800, seed=3)
    station = election.stations["station_id"][5]
    frame = election.stations.with_columns(
        pl.when(pl.col("station_id") == station)
        .then(pl.col("valid") + 7)
        .otherwise(pl.col("valid"))
        .alias("valid")
    )
    result = Triage(threshold=2.5).run(make_election(election.meta, frame))
    row = next(r for r in result.details["ranked"] if r["station_id"] == station)
    assert any("protocol" in reason for reason in row["reasons"])
    assert station in result.flagged


@pytest.mark.parametrize("bad", [{"threshold": 0}, {"top": 0}, {"min_region": 1}])
def test_bad_parameters(bad: dict[str, float]) -> None:
    with pytest.raises(PollwatchError):
        Triage(**bad)  # type: ignore[arg-type]
