"""Injectors: the shared contract for every registered one, then each injector's own effect.

The contract's checks live in :mod:`pollwatch.testing.injectors` (shipped for plug-in
authors); a new injector registered in INJECTORS is picked up by them automatically.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pollwatch.calibration import INJECTORS, Injector, Labels, compose
from pollwatch.errors import PollwatchError
from pollwatch.forensics.integer_peaks import IntegerPercentages
from pollwatch.forensics.triage import Triage
from pollwatch.results.checks import check_protocols
from pollwatch.results.model import Election, make_election
from pollwatch.synthetic.injectors import (
    Carousel,
    ExtremeStuffing,
    IncrementalStuffing,
    InvalidateOpponents,
    RoundPercentages,
    VoteTransfer,
)
from pollwatch.synthetic.simulator import simulate_clean
from pollwatch.testing import Check, parametrize_with_checks
from pollwatch.testing.elections import clean_election
from pollwatch.testing.injectors import changed_station_ids

NAMES = INJECTORS.names()


@pytest.fixture(scope="module")
def clean() -> Election:
    return clean_election(3)  # the election the shared checks use


@pytest.fixture(scope="module")
def large_clean() -> Election:
    return simulate_clean(stations=5000, seed=11)


def failures(election: Election) -> dict[str, int]:
    return {c.rule: c.failed for c in check_protocols(election).counts}


def test_registry_holds_the_six_builtins() -> None:
    assert set(NAMES) >= {
        "incremental-stuffing",
        "extreme-stuffing",
        "round-percentages",
        "carousel",
        "vote-transfer",
        "invalidate-opponents",
    }


@parametrize_with_checks([cls for _, cls in INJECTORS.items()])
def test_injector_conformance(check: Check) -> None:
    check()


def test_round_percentages_magnitude_is_whole() -> None:
    with pytest.raises(PollwatchError, match="magnitude"):
        RoundPercentages(magnitude=2.5)


# --- totals move in the documented direction ---------------------------------------------


def totals(election: Election) -> dict[str, int]:
    row = election.stations.select(
        pl.col("ballots_cast").sum(), pl.col("valid").sum(), pl.col("invalid").sum()
    ).row(0, named=True)
    leader = election.leader()
    assert leader is not None
    return {**{k: int(v) for k, v in row.items()}, "leader": election.totals()[leader.name]}


def run(injector: Injector, election: Election) -> tuple[dict[str, int], dict[str, int], Labels]:
    after, labels = injector.apply(election, np.random.default_rng(7))
    return totals(election), totals(after), labels


def test_incremental_stuffing_raises_leader_and_turnout(clean: Election) -> None:
    before, after, labels = run(IncrementalStuffing(share=0.2, magnitude=0.3), clean)
    assert labels.ballots_added > 0 and labels.votes_moved == 0
    assert after["ballots_cast"] - before["ballots_cast"] == labels.ballots_added
    assert after["leader"] - before["leader"] == labels.ballots_added
    assert after["invalid"] == before["invalid"]


def test_extreme_stuffing_gives_full_turnout(clean: Election) -> None:
    injector = ExtremeStuffing(share=0.1, magnitude=0.8)
    after, labels = injector.apply(clean, np.random.default_rng(8))
    hit = after.with_derived().filter(pl.col("station_id").is_in(list(labels.stations)))
    assert (hit["ballots_cast"] == hit["registered"]).all()
    # over 101 streams: 0.833-0.911 (mean 0.893, sd 0.011)
    assert hit["leader_share"].min() > 0.8  # type: ignore[operator]
    gain = totals(after)["leader"] - totals(clean)["leader"]
    assert gain == labels.ballots_added + labels.votes_moved


def test_round_percentages_lands_on_whole_percent(clean: Election) -> None:
    for step in (1, 5):
        after, labels = RoundPercentages(share=0.2, magnitude=step).apply(
            clean, np.random.default_rng(9)
        )
        leader = clean.leader()
        assert leader is not None
        rows = after.stations.filter(pl.col("station_id").is_in(list(labels.stations)))
        before = clean.stations.filter(pl.col("station_id").is_in(list(labels.stations)))
        share = 100 * rows[leader.column] / (rows["valid"] + rows["invalid"])
        honest = 100 * before[leader.column] / (before["valid"] + before["invalid"])
        nearest = (share / step).round() * step
        landed = (share - nearest).abs() < 0.05
        # over 101 streams: at least 0.9967 (step 1) and 0.9933 (step 5)
        assert landed.mean() > 0.95  # type: ignore[operator]
        assert ((share - honest) >= -1e-12).all()
        assert (rows["ballots_cast"] <= rows["registered"]).all()
        assert labels.votes_moved == 0 and labels.ballots_added > 0


def test_carousel_adds_a_share_of_registered(clean: Election) -> None:
    before, after, labels = run(Carousel(share=0.1, magnitude=0.05), clean)
    assert after["leader"] - before["leader"] == labels.ballots_added > 0
    assert after["ballots_cast"] - before["ballots_cast"] == labels.ballots_added


def test_carousel_caps_turnout_at_registered(clean: Election) -> None:
    after, labels = Carousel(share=0.3, magnitude=1.0).apply(clean, np.random.default_rng(1))
    rows = after.stations.filter(pl.col("station_id").is_in(list(labels.stations)))
    assert (rows["ballots_cast"] == rows["registered"]).all()


def test_vote_transfer_keeps_ballots_cast(clean: Election) -> None:
    before, after, labels = run(VoteTransfer(share=0.3, magnitude=0.25), clean)
    assert after["ballots_cast"] == before["ballots_cast"]
    assert after["valid"] == before["valid"]
    assert labels.ballots_added == 0
    assert after["leader"] - before["leader"] == labels.votes_moved > 0


def test_invalidate_opponents_moves_votes_to_invalid(clean: Election) -> None:
    before, after, labels = run(InvalidateOpponents(share=0.3, magnitude=0.25), clean)
    assert after["ballots_cast"] == before["ballots_cast"]
    assert after["leader"] == before["leader"]
    assert after["invalid"] - before["invalid"] == labels.votes_invalidated > 0
    assert before["valid"] - after["valid"] == labels.votes_moved == labels.votes_invalidated


def test_protocol_bookkeeping_columns_follow_added_ballots() -> None:
    election = simulate_clean(stations=200, seed=5)
    frame = election.stations.with_columns(
        pl.col("ballots_received").alias("ballots_received"),
        (pl.col("ballots_received") - pl.col("ballots_issued_on_day")).alias("ballots_cancelled"),
    )
    election = make_election(election.meta, frame)
    after, labels = IncrementalStuffing(share=0.5, magnitude=0.5).apply(
        election, np.random.default_rng(0)
    )
    rows = after.stations.filter(pl.col("station_id").is_in(list(labels.stations)))
    issued = rows["ballots_issued_on_day"]
    assert (rows["ballots_in_stationary_boxes"] == rows["ballots_cast"]).all()
    assert (issued == rows["ballots_cast"]).all()
    assert (rows["ballots_cancelled"] + issued == rows["ballots_received"]).all()
    assert failures(after) == failures(election)


def test_ineligible_stations_are_never_touched(clean: Election) -> None:
    flagged = clean.stations.with_columns(
        (pl.col("station_id") < pl.lit("S000100")).alias("is_pseudo_station"),
        pl.when(pl.col("station_id").is_between(pl.lit("S000100"), pl.lit("S000199")))
        .then(None)
        .otherwise(pl.col("valid"))
        .alias("valid"),
    )
    election = make_election(clean.meta, flagged)
    injector = VoteTransfer(share=1.0, magnitude=0.5)
    assert len(injector.eligible_station_ids(election)) == clean.stations.height - 200
    after, labels = injector.apply(election, np.random.default_rng(0))
    assert all(s >= "S000200" for s in changed_station_ids(election, after))
    assert len(labels.stations) == clean.stations.height - 200


def test_compose_applies_in_order(clean: Election) -> None:
    injectors = [VoteTransfer(share=0.1, magnitude=0.1), Carousel(share=0.1, magnitude=0.05)]
    after, labels = compose(clean, injectors, np.random.default_rng(10))
    assert [label.injector for label in labels] == ["vote-transfer", "carousel"]
    assert after.id == f"{clean.id}+vote-transfer+carousel"
    assert changed_station_ids(clean, after) <= set(labels[0].stations) | set(labels[1].stations)
    again, _ = compose(clean, injectors, np.random.default_rng(10))
    assert again.stations.equals(after.stations)
    assert failures(after) == failures(clean)


# --- sensitivity: the methods see what was planted ----------------------------------------


def test_integer_percentages_flags_round_percentages(large_clean: Election) -> None:
    method = IntegerPercentages()
    honest = method.run(large_clean)
    # honest p over 101 streams 0.010-0.998 (mean 0.55): calibrated, so "not significant" at
    # alpha = 0.001 would fail up to 1e-3 of streams; p < 1e-5 at most 1e-5 of them
    assert honest.p_value is not None and honest.p_value > 1e-5
    assert honest.significant == (honest.p_value < method.alpha)
    after, _ = RoundPercentages(share=0.1).apply(large_clean, np.random.default_rng(12))
    result = method.run(after)
    # over 101 streams: log10 p mean -41, sd 5, at most -30
    assert result.p_value is not None and result.p_value < 0.001
    assert result.significant


def test_triage_ranks_extreme_stuffing_first(large_clean: Election) -> None:
    after, labels = ExtremeStuffing(share=0.01, magnitude=0.5).apply(
        large_clean, np.random.default_rng(13)
    )
    top = len(labels.stations)
    assert top == 50
    result = Triage(top=top).run(after)
    ranked = [row["station_id"] for row in result.details["ranked"]]
    precision = len(set(ranked) & set(labels.stations)) / top
    # over 101 streams: 1 in all but two, at least 0.98
    assert precision >= 0.8
