"""The local store: atomic, idempotent saves and a catalogue read from the saved metadata.

A ``--replace`` killed (SIGKILL, in a real subprocess) between its two renames leaves the old
folder under a name the store recognises: the next listing rolls it back.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pollwatch.errors import StoreError
from pollwatch.results.store import STALE_STAGING, ElectionStore
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


# --------------------------------------------------------------------------------------------
# --replace killed between its two renames never loses the election.
# --------------------------------------------------------------------------------------------

KILLED_REPLACE = r"""
import os, signal, sys
from pathlib import Path
from pollwatch.results.store import ElectionStore
from tests.helpers import small_election

real_replace, calls = os.replace, []

def replace_then_die(source, target):
    calls.append((source, target))
    if len(calls) == 2:  # the old folder is aside, the new one not in place yet
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(source, target)

os.replace = replace_then_die
ElectionStore(Path(sys.argv[1])).save(small_election(valid=[590, 395, 317]), replace=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_replace_killed_between_its_renames_keeps_the_election(tmp_path: Path) -> None:
    store = ElectionStore(tmp_path)
    store.save(small_election())
    root = Path(__file__).resolve().parents[1]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(root / "src"), str(root), os.environ.get("PYTHONPATH", "")]
        ),
    }
    process = subprocess.run(
        [sys.executable, "-c", KILLED_REPLACE, str(tmp_path)],
        env=environment,
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()
    names = sorted(p.name for p in tmp_path.iterdir())
    # The kill came between the renames: the old folder is aside, "test" itself is gone.
    assert "test" not in names and any(n.startswith(".trash-test-") for n in names), names
    assert [e.id for e in ElectionStore(tmp_path).list()] == ["test"]
    assert store.load("test").stations["valid"].to_list() == [590, 395, 318]  # rolled back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test"]
    assert store.save(small_election(valid=[590, 395, 317]), replace=True) == "replaced"
    assert store.load("test").stations["valid"].to_list() == [590, 395, 317]


def test_a_failed_second_rename_puts_the_old_election_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ElectionStore(tmp_path)
    store.save(small_election())
    real_replace, calls = os.replace, []

    def failing(source: object, target: object) -> None:
        calls.append(source)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(StoreError, match="No space left"):
        store.save(small_election(valid=[590, 395, 317]), replace=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test"]
    assert store.load("test").stations["valid"].to_list() == [590, 395, 318]


def test_leftovers_of_dead_saves_are_rolled_back_or_cleared(tmp_path: Path) -> None:
    store = ElectionStore(tmp_path)
    store.save(small_election())
    store.save(small_election("other"))
    # A replacement of "test" that died between its renames, and its staging folder.
    os.replace(tmp_path / "test", tmp_path / ".trash-test-0123abcd")
    shutil.copytree(tmp_path / "other", tmp_path / ".staging-test-0123abcd")
    # A replacement of "other" that died after its second rename: the old copy is left over.
    shutil.copytree(tmp_path / "other", tmp_path / ".trash-other-89abcdef")
    # Staging folders of saves that died long ago, and of one still running.
    for name in (".staging-dead-00000000", ".staging-live-11111111"):
        (tmp_path / name).mkdir()
    old = time.time() - 2 * STALE_STAGING
    os.utime(tmp_path / ".staging-dead-00000000", (old, old))

    assert "test" in store
    assert sorted(e.id for e in store.list()) == ["other", "test"]
    assert store.load("test").stations["valid"].to_list() == [590, 395, 318]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".staging-live-11111111",
        "other",
        "test",
    ]
