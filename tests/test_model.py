"""The election data model: normalisation, invariants and the derived quantities."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pollwatch.errors import ColumnError, CountError, InputError
from pollwatch.results.model import (
    COUNT_COLUMNS,
    FLAG_COLUMNS,
    Candidate,
    ElectionMeta,
    make_election,
)
from tests.helpers import small_election


def test_missing_optional_columns_are_added_with_defaults() -> None:
    election = small_election()
    for name in COUNT_COLUMNS:
        assert election.stations.schema[name] == pl.Int64
    for name in FLAG_COLUMNS:
        assert election.stations[name].to_list() == [False, False, False]
    assert election.stations["station_kind"].to_list() == ["ordinary"] * 3
    assert election.stations["ballots_received"].null_count() == 3


def test_turnout_and_shares_follow_their_definitions() -> None:
    election = small_election()
    assert election.turnout().to_list() == pytest.approx([0.6, 0.5, 0.64])
    assert election.vote_share("Beta").to_list() == pytest.approx([190 / 590, 195 / 395, 18 / 318])
    assert election.leader() == Candidate("Alpha", "Alpha")
    assert election.leader_share().to_list() == pytest.approx([400 / 590, 200 / 395, 300 / 318])


def test_turnout_is_null_where_registered_is_zero_or_missing() -> None:
    election = small_election(registered=[0, None, 500])
    assert election.turnout().to_list()[:2] == [None, None]


def test_summary_totals() -> None:
    summary = small_election().summary()
    assert summary.stations == 3
    assert summary.registered == 2300
    assert summary.ballots_cast == 1320
    assert summary.totals == {"Alpha": 900, "Beta": 403}
    assert summary.leader == "Alpha"
    assert summary.turnout == pytest.approx(1320 / 2300)


def test_summary_turnout_ignores_stations_without_registered() -> None:
    summary = small_election(registered=[1000, None, 500]).summary()
    assert summary.turnout == pytest.approx((600 + 320) / 1500)


def test_unknown_candidate_names_the_candidates() -> None:
    with pytest.raises(ColumnError, match="Alpha, Beta"):
        small_election().vote_share("Gamma")


def test_negative_count_is_refused_with_row_and_column() -> None:
    with pytest.raises(CountError) as info:
        small_election(valid=[590, -1, 318])
    assert info.value.row == 2
    assert info.value.column == "valid"


def test_null_station_id_is_refused() -> None:
    with pytest.raises(InputError, match="station_id is empty"):
        small_election(station_id=["a", None, "c"])


def test_candidate_column_clashing_with_protocol_column_is_refused() -> None:
    meta = small_election().meta
    bad = ElectionMeta(**{**meta.__dict__, "candidates": (Candidate("valid", "valid"),)})
    with pytest.raises(ColumnError, match="clash"):
        make_election(bad, pl.DataFrame({"station_id": ["a"], "valid": [1]}))


def test_meta_round_trips_through_dict() -> None:
    meta = small_election().meta
    assert ElectionMeta.from_dict(meta.to_dict()) == meta
    assert meta.definitions["turnout"].startswith("ballots_cast / registered")


@settings(max_examples=30, deadline=None)
@given(st.permutations([0, 1, 2]))
def test_content_digest_ignores_row_order(order: list[int]) -> None:
    election = small_election()
    shuffled = election.stations[order]
    assert make_election(election.meta, shuffled).content_digest() == election.content_digest()


def test_content_digest_changes_with_a_number() -> None:
    assert (
        small_election().content_digest() != small_election(valid=[590, 395, 317]).content_digest()
    )


def test_docs_page_lists_every_column() -> None:
    from pathlib import Path

    from pollwatch.results.model import RESERVED_COLUMNS, STATION_KINDS

    text = (Path(__file__).resolve().parents[1] / "docs" / "data-model.md").read_text("utf-8")
    for column in RESERVED_COLUMNS:
        assert f"`{column}`" in text, column
    for kind in STATION_KINDS:
        assert f"`{kind}`" in text, kind


def test_negative_counts_are_accepted_on_pseudo_stations_only() -> None:
    election = small_election(
        Alpha=[400, 200, -3], valid=[590, 395, 15], is_pseudo_station=[False, False, True]
    )
    assert election.totals()["Alpha"] == 597
    with pytest.raises(CountError):
        small_election(Alpha=[400, 200, -3], valid=[590, 395, 15])


def test_summary_says_unknown_for_numbers_never_reported() -> None:
    summary = small_election(
        registered=[None] * 3, ballots_cast=[None] * 3, invalid=[None] * 3
    ).summary()
    assert summary.registered is None
    assert summary.ballots_cast is None
    assert summary.invalid is None
    assert summary.valid == 1303
    assert summary.turnout is None
