"""The segment index and the archive additions it rests on (extra keys, append_record, index)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pollwatch.errors import EvidenceError, VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.video.segments import VideoIndex, format_time, parse_time
from tests.video.conftest import SegmentWriter

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


# --- archive additions --------------------------------------------------------------------
def test_add_extra_keys_are_stored_and_returned(archive: EvidenceArchive, tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    record = archive.add(path, submitter="t", extra={"video": {"camera": "c", "sequence": 0}})
    assert record.extra == {"video": {"camera": "c", "sequence": 0}}
    assert archive.item(record.sha256).extra == {"video": {"camera": "c", "sequence": 0}}
    [(_, entry)] = list(archive.entries())
    assert entry["video"] == {"camera": "c", "sequence": 0}
    plain = tmp_path / "b.bin"
    plain.write_bytes(b"def")
    assert archive.add(plain, submitter="t").extra is None


@pytest.mark.parametrize("key", ["sha256", "station", "kind", "submitter", "capture_time"])
def test_add_refuses_extra_keys_that_clash(
    archive: EvidenceArchive, tmp_path: Path, key: str
) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    with pytest.raises(EvidenceError, match=key):
        archive.add(path, submitter="t", extra={key: "x"})
    assert archive.log.size == 0


def test_append_record_writes_other_kinds_and_refuses_items(archive: EvidenceArchive) -> None:
    index = archive.append_record("video-event", {"event": "gap", "details": {"n": 1}})
    assert list(archive.entries()) == [
        (index, {"kind": "video-event", "event": "gap", "details": {"n": 1}})
    ]
    for kind in ("item", "custody", ""):
        with pytest.raises(EvidenceError):
            archive.append_record(kind, {"x": 1})
    with pytest.raises(EvidenceError, match="kind"):
        archive.append_record("video-event", {"kind": "item"})
    assert archive.log.size == 1
    # Other kinds are not items: verify() still checks objects of items only.
    assert archive.verify() == (1, 0)


def test_index_sees_entries_appended_by_another_process(
    archive: EvidenceArchive, tmp_path: Path
) -> None:
    path = tmp_path / "first.bin"
    path.write_bytes(b"first")
    first = archive.add(path, submitter="t")
    assert [r.sha256 for r in archive.items()] == [first.sha256]
    other = tmp_path / "second.bin"
    other.write_bytes(b"second")
    code = (
        "import sys; from pathlib import Path;"
        "from pollwatch.evidence.archive import EvidenceArchive;"
        "a = EvidenceArchive(Path(sys.argv[1]));"
        "r = a.add(Path(sys.argv[2]), submitter='other');"
        "a.record_custody('note', [r.sha256], actor='o', address='x', reason='r');"
        "print(r.sha256)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(archive.folder), str(other)],
        capture_output=True,
        text=True,
        check=True,
    )
    second = done.stdout.strip()
    assert [r.sha256 for r in archive.items()] == [first.sha256, second]
    assert archive.item(second[:10]).submitter == "other"
    assert [e.action for e in archive.custody_of(second)] == ["note"]
    with pytest.raises(EvidenceError, match="no item"):
        archive.item("0" * 64)


# --- times --------------------------------------------------------------------------------
def test_time_format_round_trips_with_milliseconds() -> None:
    moment = datetime(2026, 11, 28, 16, 20, 0, 123456, tzinfo=UTC)
    assert format_time(moment) == "2026-11-28T16:20:00.123Z"
    assert parse_time("2026-11-28T16:20:00.123Z") == moment.replace(microsecond=123000)
    assert parse_time("2026-11-28T17:20:00+01:00") == datetime(2026, 11, 28, 16, 20, tzinfo=UTC)
    with pytest.raises(VideoError, match="ISO 8601"):
        parse_time("yesterday")
    with pytest.raises(VideoError, match="time zone"):
        format_time(datetime(2026, 1, 1))


# --- the index ------------------------------------------------------------------------------
def test_segments_cameras_and_lookup(segment_writer: SegmentWriter) -> None:
    a0 = segment_writer.segment("S1", "cam1")
    b0 = segment_writer.segment("S1", "cam2")
    a1 = segment_writer.segment("S1", "cam1")
    c0 = segment_writer.segment("S2", "door")
    index = VideoIndex.from_archive(segment_writer.archive)
    assert index.stations() == ["S1", "S2"]
    assert index.cameras("S1") == ["cam1", "cam2"]
    cam1 = index.segments("S1", "cam1")
    assert [s.sha256 for s in cam1] == [a0.sha256, a1.sha256]
    assert [s.sequence for s in cam1] == [0, 1]
    assert cam1[1].previous == a0.sha256 and cam1[0].previous is None
    assert cam1[1].start == T0 + timedelta(seconds=2) and cam1[1].duration == 2.0
    assert {s.sha256 for s in index.segments("S1")} == {a0.sha256, a1.sha256, b0.sha256}
    assert len(index.segments()) == 4
    assert index.segment(c0.sha256[:9]).camera == "door"
    assert index.segment(a1.sha256).to_dict()["start"] == "2026-11-28T08:00:02.000Z"
    # Time window [start, end): the first cam1 segment covers 08:00:00-08:00:02.
    window = index.segments("S1", "cam1", start=T0 + timedelta(seconds=2.5))
    assert [s.sha256 for s in window] == [a1.sha256]
    window = index.segments("S1", "cam1", end="2026-11-28T08:00:02Z")
    assert [s.sha256 for s in window] == [a0.sha256]


def test_unknown_ids_raise_with_a_hint(segment_writer: SegmentWriter) -> None:
    plain = segment_writer.folder / "plain.txt"
    plain.write_text("not video")
    not_video = segment_writer.archive.add(plain, submitter="t")
    segment_writer.segment("S1", "cam1")
    index = VideoIndex.from_archive(segment_writer.archive)
    with pytest.raises(VideoError, match="unknown station 'S9'") as error:
        index.segments("S9")
    assert error.value.hint is not None and "S1" in error.value.hint
    with pytest.raises(VideoError, match="unknown camera 'cam9'"):
        index.segments("S1", "cam9")
    with pytest.raises(VideoError, match="unknown station"):
        index.cameras("S9")
    with pytest.raises(VideoError, match="not a video segment"):
        index.segment(not_video.sha256)
    with pytest.raises(VideoError, match="copy"):
        index.segments(copy="sepia")


def test_blurred_copies_are_separate_and_newest_wins(segment_writer: SegmentWriter) -> None:
    original = segment_writer.segment()
    first = segment_writer.blurred(original, b"one")
    second = segment_writer.blurred(original, b"two")
    index = VideoIndex.from_archive(segment_writer.archive)
    assert [s.sha256 for s in index.segments("S1", "cam1")] == [original.sha256]
    assert [s.sha256 for s in index.segments("S1", "cam1", copy="blurred")] == [
        first.sha256,
        second.sha256,
    ]
    newest = index.blurred_copy(original.sha256)
    assert newest is not None and newest.sha256 == second.sha256
    assert newest.source_item == original.sha256 and newest.previous is None
    assert index.verify_chain("S1", "cam1") == []


def test_refresh_reads_new_entries(segment_writer: SegmentWriter) -> None:
    index = VideoIndex.from_archive(segment_writer.archive)
    assert index.stations() == []
    segment_writer.segment()
    segment_writer.event("outage", time=T0)
    assert index.stations() == ["S1"]
    assert [e.event for e in index.events("S1", "cam1")] == ["outage"]


# --- chains ---------------------------------------------------------------------------------
def test_intact_chain_has_no_problems(segment_writer: SegmentWriter) -> None:
    for _ in range(5):
        segment_writer.segment()
    segment_writer.segment("S1", "cam2")
    index = VideoIndex.from_archive(segment_writer.archive)
    assert index.verify_chain("S1", "cam1") == []
    assert index.verify_chain("S1", "cam2") == []


def test_chain_detects_a_missing_segment(segment_writer: SegmentWriter) -> None:
    segment_writer.segment()
    segment_writer.segment()
    # Sequence 2 was never archived; 3 chains to 1 as if 2 had vanished from the log.
    segment_writer.segment(sequence=3)
    problems = VideoIndex.from_archive(segment_writer.archive).verify_chain("S1", "cam1")
    assert len(problems) == 1 and "segment(s) 2 missing" in problems[0]


def test_chain_detects_a_reordered_segment(segment_writer: SegmentWriter) -> None:
    writer = segment_writer
    s0 = writer.segment(sequence=0)
    s2 = writer.segment(sequence=2, previous="f" * 64, start=T0 + timedelta(seconds=4))
    writer.segment(sequence=1, previous=s0.sha256, start=T0 + timedelta(seconds=2))
    problems = VideoIndex.from_archive(writer.archive).verify_chain("S1", "cam1")
    text = " | ".join(problems)
    assert "missing before it" in text  # 2 came when 1 was expected
    assert "reordered" in text  # then 1 came after 2
    assert "starts at" in text  # and its start time goes backwards
    assert s2.sha256[:12] in text


def test_chain_detects_an_inserted_segment_and_a_wrong_link(
    segment_writer: SegmentWriter,
) -> None:
    writer = segment_writer
    s0 = writer.segment()
    s1 = writer.segment()
    # An inserted segment claiming sequence 1 again, linked to segment 0.
    writer.segment(sequence=1, previous=s0.sha256, content=b"forged")
    problems = VideoIndex.from_archive(writer.archive).verify_chain("S1", "cam1")
    assert any("reordered or inserted" in p for p in problems)
    assert any(f"the segment before it in the log is {s1.sha256[:12]}" in p for p in problems)


def test_chain_detects_a_first_segment_with_a_previous(segment_writer: SegmentWriter) -> None:
    segment_writer.segment(previous="a" * 64)
    problems = VideoIndex.from_archive(segment_writer.archive).verify_chain("S1", "cam1")
    assert len(problems) == 1 and "but is the camera's first" in problems[0]


def test_chain_detects_a_duplicate(segment_writer: SegmentWriter) -> None:
    segment_writer.segment(content=b"same")
    segment_writer.segment(content=b"same")
    problems = VideoIndex.from_archive(segment_writer.archive).verify_chain("S1", "cam1")
    assert any("inserted twice" in p for p in problems)


# --- gaps -----------------------------------------------------------------------------------
def test_gaps_are_found_and_explained_by_events(segment_writer: SegmentWriter) -> None:
    writer = segment_writer
    writer.segment(start=T0)  # 08:00:00-08:00:02
    writer.segment(start=T0 + timedelta(seconds=2))  # contiguous: no gap
    writer.event("outage", time=T0 + timedelta(seconds=4.2), error="connection refused")
    writer.event("reconnect", time=T0 + timedelta(seconds=9))
    writer.event(
        "gap",
        time=T0 + timedelta(seconds=9),
        start=format_time(T0 + timedelta(seconds=4)),
        end=format_time(T0 + timedelta(seconds=9)),
    )
    writer.segment(start=T0 + timedelta(seconds=9))  # 5 s hole, explained
    writer.segment(start=T0 + timedelta(seconds=20))  # 9 s hole, nothing logged
    writer.event("outage", "S1", "cam2", time=T0 + timedelta(seconds=15))  # other camera
    index = VideoIndex.from_archive(writer.archive)
    gaps = index.gaps("S1", "cam1")
    assert [(g.start, g.end) for g in gaps] == [
        (T0 + timedelta(seconds=4), T0 + timedelta(seconds=9)),
        (T0 + timedelta(seconds=11), T0 + timedelta(seconds=20)),
    ]
    assert gaps[0].reason == "outage, reconnect, gap"
    assert gaps[1].reason == "unexplained"
    assert gaps[0].seconds == 5.0
    assert index.verify_chain("S1", "cam1") == []
