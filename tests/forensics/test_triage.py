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
    top = [row["station_id"] for row in result.details["ranked"][:10]]
    assert set(top) == set(targets)
    assert set(targets) <= set(result.flagged)
    assert "above its region" in result.details["ranked"][0]["reasons"][0]
    assert len(result.flagged) < 60  # clean stations seldom reach the threshold


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
