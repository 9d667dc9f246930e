"""Injector conformance suite: every registered injector is checked against the contract.

A new injector registered in INJECTORS is picked up by the parametrised tests automatically.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from pollwatch.calibration import INJECTORS, Injector, Labels, compose
from pollwatch.calibration.injectors import (
    Carousel,
    ExtremeStuffing,
    IncrementalStuffing,
    InvalidateOpponents,
    RoundPercentages,
    VoteTransfer,
)
from pollwatch.errors import PollwatchError
from pollwatch.forensics.integer_peaks import IntegerPercentages
from pollwatch.forensics.simulate import simulate_clean
from pollwatch.forensics.triage import Triage
from pollwatch.results.checks import check_protocols
from pollwatch.results.model import Election, make_election

NAMES = INJECTORS.names()


@pytest.fixture(scope="module")
def clean() -> Election:
    return simulate_clean(stations=1500, seed=3)


@pytest.fixture(scope="module")
def large_clean() -> Election:
    return simulate_clean(stations=5000, seed=11)


def make(name: str, **parameters: Any) -> Injector:
    return INJECTORS.get(name)(**parameters)


def changed_ids(before: Election, after: Election) -> set[str]:
    left = before.stations.sort("station_id")
    right = after.stations.sort("station_id")
    assert left["station_id"].to_list() == right["station_id"].to_list()
    assert left.columns == right.columns
    differs = pl.Series([False] * left.height)
    for column in left.columns:
        a, b = left[column], right[column]
        differs = differs | (a.ne_missing(b))
    return set(left.filter(differs)["station_id"].to_list())


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
    for name, cls in INJECTORS.items():
        assert cls.name == name
        assert cls.title and cls.reference and cls.__doc__


@pytest.mark.parametrize("name", NAMES)
def test_only_labelled_stations_change(name: str, clean: Election) -> None:
    after, labels = make(name, share=0.2).apply(clean, np.random.default_rng(1))
    changed = changed_ids(clean, after)
    assert changed, "the injection changed nothing"
    assert changed <= set(labels.stations)
    # Most labelled stations really change (the exceptions have nothing to change, e.g. a share
    # already at a whole percent). Over 101 streams (no salt, salts 1-100): round-percentages
    # 0.84-0.93 (mean 0.896, sd 0.019), vote-transfer and invalidate-opponents at least 0.993,
    # the others 1 every time.
    assert len(changed) >= 0.8 * len(labels.stations)
    assert list(labels.stations) == sorted(labels.stations)
    assert labels.injector == name
    assert after.id == f"{clean.id}+{name}"
    assert any(key.startswith(f"injection:{name}") for key in after.meta.definitions)


@pytest.mark.parametrize("name", NAMES)
def test_protocol_checks_have_no_new_failures(name: str, clean: Election) -> None:
    before = failures(clean)
    after, _ = make(name, share=0.5).apply(clean, np.random.default_rng(2))
    assert failures(after) == before
    assert sum(before.values()) == 0


@pytest.mark.parametrize("name", NAMES)
def test_station_count_is_rounded_share_of_eligible(name: str, clean: Election) -> None:
    injector = make(name, share=0.137)
    eligible = injector.eligible_station_ids(clean)
    assert len(eligible) == clean.stations.height  # simulated stations are all eligible
    _, labels = injector.apply(clean, np.random.default_rng(3))
    assert len(labels.stations) == round(0.137 * len(eligible)) == 206
    assert set(labels.stations) <= set(eligible)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result_and_row_order_free(name: str, clean: Election) -> None:
    injector = make(name, share=0.1)
    first, labels_a = injector.apply(clean, np.random.default_rng(4))
    second, labels_b = injector.apply(clean, np.random.default_rng(4))
    assert labels_a == labels_b
    assert first.stations.equals(second.stations)
    shuffled = make_election(clean.meta, clean.stations.reverse())
    third, labels_c = injector.apply(shuffled, np.random.default_rng(4))
    assert labels_c == labels_a
    assert third.content_digest() == first.content_digest()
    _, other = injector.apply(clean, np.random.default_rng(5))
    assert other.stations != labels_a.stations


@pytest.mark.parametrize("name", NAMES)
def test_share_zero_changes_nothing(name: str, clean: Election) -> None:
    after, labels = make(name, share=0.0).apply(clean, np.random.default_rng(6))
    assert labels.stations == ()
    assert labels.ballots_added == labels.votes_moved == 0
    assert after.stations.equals(clean.stations)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [-0.1, 1e9, float("nan")])
def test_magnitude_out_of_range_names_the_parameter(name: str, value: float) -> None:
    with pytest.raises(PollwatchError, match="magnitude"):
        make(name, magnitude=value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [-0.01, 1.01])
def test_share_out_of_range_names_the_parameter(name: str, value: float) -> None:
    with pytest.raises(PollwatchError, match="share"):
        make(name, share=value)


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
    assert all(s >= "S000200" for s in changed_ids(election, after))
    assert len(labels.stations) == clean.stations.height - 200


def test_compose_applies_in_order(clean: Election) -> None:
    injectors = [VoteTransfer(share=0.1, magnitude=0.1), Carousel(share=0.1, magnitude=0.05)]
    after, labels = compose(clean, injectors, np.random.default_rng(10))
    assert [label.injector for label in labels] == ["vote-transfer", "carousel"]
    assert after.id == f"{clean.id}+vote-transfer+carousel"
    assert changed_ids(clean, after) <= set(labels[0].stations) | set(labels[1].stations)
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
