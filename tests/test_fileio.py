"""atomic_write: the target is the old file or the new one, never a mixture; durable by fsync."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from pollwatch.fileio import (
    atomic_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fsync_directory,
    fsync_tree,
)


class Boom(Exception):
    pass


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Records ("fsync", "file"|"dir") and ("replace", target name) in the order they happen."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file"
        events.append(("fsync", kind))
        real_fsync(descriptor)

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        events.append(("replace", Path(target).name))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    yield events


def test_text_bytes_and_json_arrive_whole(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "Ñandú\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\xff" * 3)
    atomic_write_json(tmp_path / "c.json", {"b": "é", "a": [1]}, indent=1, sort_keys=True)
    atomic_write_json(tmp_path / "d.json", {"é": 1}, ensure_ascii=False, trailing_newline=True)
    assert (tmp_path / "a.txt").read_bytes() == "Ñandú\n".encode()
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff" * 3
    assert (tmp_path / "c.json").read_text("utf-8") == json.dumps(
        {"b": "é", "a": [1]}, indent=1, sort_keys=True
    )
    assert (tmp_path / "d.json").read_text("utf-8") == '{"é": 1}\n'
    assert names(tmp_path) == ["a.txt", "b.bin", "c.json", "d.json"]


def test_a_handle_writes_in_pieces_and_replaces_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with atomic_write(target, "w", newline="") as handle:
        handle.write("a,b\r\n")
        handle.write("1,2\r\n")
        assert target.read_text() == "old\n"  # nothing shows before the block ends
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
    assert names(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("existed", [True, False])
def test_an_error_mid_write_leaves_the_target_untouched_and_no_temporary(
    tmp_path: Path, existed: bool
) -> None:
    target = tmp_path / "report.html"
    if existed:
        target.write_bytes(b"the old report")
    with pytest.raises(Boom), atomic_write(target) as handle:
        handle.write(b"half of the new rep")
        raise Boom
    assert names(tmp_path) == (["report.html"] if existed else [])
    if existed:
        assert target.read_bytes() == b"the old report"


def test_a_json_value_that_cannot_be_written_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "cell.json"
    target.write_text("{}")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"not json": object()})
    assert names(tmp_path) == ["cell.json"] and target.read_text() == "{}"


def test_the_file_is_fsynced_before_the_rename_and_the_folder_after(
    tmp_path: Path, synced: list[tuple[str, str]]
) -> None:
    atomic_write_text(tmp_path / "seal.json", "{}")
    assert synced == [("fsync", "file"), ("replace", "seal.json"), ("fsync", "dir")]
    synced.clear()
    with atomic_path(tmp_path / "video.mp4", suffix=".part.mp4") as partial:
        partial.write_bytes(b"by path")
    assert synced == [("fsync", "file"), ("replace", "video.mp4"), ("fsync", "dir")]


def test_a_failed_write_is_never_renamed(tmp_path: Path, synced: list[tuple[str, str]]) -> None:
    with pytest.raises(Boom), atomic_write(tmp_path / "x", "w") as handle:
        handle.write("partial")
        raise Boom
    assert not any(event == "replace" for event, _ in synced)


def test_fsync_tree_flushes_every_file_and_folder(
    tmp_path: Path, synced: list[tuple[str, str]]
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a").write_text("1")
    (tmp_path / "sub" / "b").write_text("2")
    fsync_tree(tmp_path)
    assert sorted(synced) == [("fsync", "dir")] * 2 + [("fsync", "file")] * 2
    synced.clear()
    fsync_directory(tmp_path / "missing")  # a folder that cannot be opened is not an error
    assert synced == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_modes_match_a_plain_write_unless_permissions_are_given(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic", "x")
    assert stat.S_IMODE((tmp_path / "atomic").stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    previous = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "public", "x", permissions=0o644)
        atomic_write_bytes(tmp_path / "key", b"secret", permissions=0o600)
        with atomic_path(tmp_path / "frozen", permissions=0o444) as partial:
            partial.write_bytes(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "frozen").stat().st_mode) == 0o444


def test_atomic_path_removes_its_temporary_on_error(tmp_path: Path) -> None:
    target = tmp_path / "bundle.zip"
    target.write_bytes(b"old")
    with pytest.raises(Boom), atomic_path(target) as partial:
        assert partial.parent == tmp_path and partial.name.endswith(".part")
        partial.write_bytes(b"new but unverified")
        raise Boom
    assert names(tmp_path) == ["bundle.zip"] and target.read_bytes() == b"old"


def test_temporaries_sit_beside_the_target_and_end_in_part(tmp_path: Path) -> None:
    seen: list[str] = []
    with atomic_write(tmp_path / "verified.json", "w") as handle:
        seen = names(tmp_path)
        handle.write("{}")
    assert len(seen) == 1 and seen[0].startswith(".verified.json.") and seen[0].endswith(".part")


def test_bad_mode_and_missing_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        atomic_write(tmp_path / "x", "a")  # type: ignore[call-overload]
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "no" / "such" / "folder.txt", "x")
    assert names(tmp_path) == []


def _payload(writer: int) -> bytes:
    return bytes([65 + writer]) * 200_000


def _write_many(target: str, writer: int) -> None:
    for _ in range(10):
        with atomic_write(target) as handle:
            data = _payload(writer)
            for start in range(0, len(data), 4096):  # many small writes, so writers interleave
                handle.write(data[start : start + 4096])


def test_concurrent_threads_leave_one_complete_file_and_readers_never_see_a_mixture(
    tmp_path: Path,
) -> None:
    target = tmp_path / "progress.json"
    target.write_bytes(_payload(0))
    wanted = {_payload(n) for n in range(9)}
    stop = threading.Event()
    torn: list[int] = []

    def read() -> None:
        while not stop.is_set():
            data = target.read_bytes()
            if data not in wanted:
                torn.append(len(data))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=_write_many, args=(str(target), n)) for n in range(1, 9)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert torn == []
    assert target.read_bytes() in wanted
    assert names(tmp_path) == ["progress.json"]


def test_concurrent_processes_leave_one_complete_file(tmp_path: Path) -> None:
    target = tmp_path / "cell.json"
    with ProcessPoolExecutor(max_workers=4) as pool:
        list(pool.map(_write_many, [str(target)] * 4, range(1, 5)))
    assert target.read_bytes() in {_payload(n) for n in range(1, 5)}
    assert names(tmp_path) == ["cell.json"]
