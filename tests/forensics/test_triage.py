"""Station triage: stuffed stations rise to the top, with their reasons."""

from __future__ import annotations

import polars as pl
import pytest

from pollwatch.errors import PollwatchError
from pollwatch.forensics.triage import Triage
from pollwatch.results.model import make_election
from pollwatch.results.special import special_stations
from pollwatch.synthetic.simulator import simulate_clean


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
    # The score itself, special stations included: a stuffed small station (turnout 97 %, a
    # list far below its region's median) looks like a hospital and is left out by default.
    result = Triage(top=20, include_special=True).run(election)
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
    # By default every target is either listed or labelled "likely special" with its reason.
    # Targets recognised as special over 60 streams (salts 0-59): none in 34, one in 20, two in
    # 5, four in 1 (the price of keeping hospitals out of the list; include_special lists them).
    default = Triage(top=20).run(election)
    listed = [row["station_id"] for row in default.details["ranked"]]
    special = special_stations(election)
    hidden = {t for t in targets if t in special}
    assert len(hidden) <= 5
    assert len((set(listed) | hidden) & set(targets)) >= 9
    assert not hidden & set(listed)


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


def test_special_stations_are_left_out_unless_asked_for() -> None:
    # Hospitals the source does not mark: small, near-complete turnout (station_kind ordinary).
    election = simulate_clean(stations=3000, seed=11, hospital_share=0.03)
    frame = election.stations.with_columns(pl.lit("ordinary").alias("station_kind"))
    unmarked = make_election(election.meta, frame)
    with_special = Triage(top=3000, include_special=True).run(unmarked)
    special_rows = [r for r in with_special.details["ranked"] if r["special"]]
    assert special_rows, "the simulated hospitals are recognised as likely special"
    assert all(any("likely special" in x for x in r["reasons"]) for r in special_rows)
    without = Triage(top=3000).run(unmarked)
    assert not any(r["special"] for r in without.details["ranked"])
    assert without.details["special"]["stations"] == len(special_rows)
    left_out = {r["station_id"] for r in special_rows}
    assert not left_out & set(without.flagged)
    assert (
        without.statistic
        == with_special.statistic - (without.details["special"]["at_or_above_threshold"])
    )
    assert "not a finding" in without.title
    assert without.parameters["include_special"] is False


def test_include_special_must_be_a_bool() -> None:
    with pytest.raises(PollwatchError, match="include_special"):
        Triage(include_special="yes")  # type: ignore[arg-type]
