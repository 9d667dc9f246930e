"""The local store: atomic, idempotent saves and a catalogue read from the saved metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from pollwatch.errors import StoreError
from pollwatch.results.store import ElectionStore
from tests.helpers import small_election


def test_save_load_round_trip(tmp_path: Path) -> None:
    store = ElectionStore(tmp_path)
    election = small_election()
    assert store.save(election) == "created"
    loaded = store.load("test")
    assert loaded.meta == election.meta
    assert loaded.stations.equals(election.stations)
    assert [e.id for e in store.list()] == ["test"]
    assert store.list()[0].stations == 3


def test_reimport_of_same_numbers_is_a_no_op(tmp_path: Path) -> None:
    store = ElectionStore(tmp_path)
    store.save(small_election())
    before = (tmp_path / "test" / "meta.json").read_text()
    assert store.save(small_election()) == "unchanged"
    assert (tmp_path / "test" / "meta.json").read_text() == before


def test_different_numbers_under_same_id_need_replace(tmp_path: Path) -> None:
    store = ElectionStore(tmp_path)
    store.save(small_election())
    changed = small_election(valid=[590, 395, 317])
    with pytest.raises(StoreError, match="--replace"):
        store.save(changed)
    assert store.load("test").stations["valid"].to_list() == [590, 395, 318]
    assert store.save(changed, replace=True) == "replaced"
    assert store.load("test").stations["valid"].to_list() == [590, 395, 317]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test"]


def test_failed_save_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ElectionStore(tmp_path)
    import polars as pl

    def broken(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken)
    with pytest.raises(StoreError, match="disk full"):
        store.save(small_election())
    assert list(tmp_path.iterdir()) == []
    assert store.list() == []


def test_unknown_election_lists_known_ones(tmp_path: Path) -> None:
    store = ElectionStore(tmp_path)
    store.save(small_election())
    with pytest.raises(StoreError, match="imported elections: test"):
        store.load("nope")


@pytest.mark.parametrize("bad", ["", "../x", "A B", ".hidden", "x/y"])
def test_unsafe_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(StoreError, match="invalid election id"):
        ElectionStore(tmp_path).save(small_election(bad))


def test_delete(tmp_path: Path) -> None:
    store = ElectionStore(tmp_path)
    store.save(small_election())
    store.delete("test")
    assert "test" not in store
    with pytest.raises(StoreError):
        store.delete("test")
