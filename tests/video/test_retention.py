"""Storage per station and day, court bundles for a station and time window, and retention."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from pollwatch.cli import main
from pollwatch.errors import VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.evidence.bundle import TrustStore, verify_bundle
from pollwatch.evidence.objects import FilesystemBackend, ObjectBackend
from pollwatch.video.retention import WindowExport, export_window, parse_window, storage_report
from pollwatch.video.segments import VideoIndex

# (station, camera, sequence, start, end) of the recorded originals
LAYOUT = (
    ("77-1", "cam-1", 0, "2026-11-28T08:00:00.000Z", "2026-11-28T08:01:00.000Z"),
    ("77-1", "cam-1", 1, "2026-11-28T08:01:00.000Z", "2026-11-28T08:02:00.000Z"),
    ("77-1", "cam-1", 2, "2026-11-28T08:02:00.000Z", "2026-11-28T08:03:00.000Z"),
    ("77-1", "cam-2", 0, "2026-11-29T09:00:00.000Z", "2026-11-29T09:01:00.000Z"),
    ("77-9", "cam-1", 0, "2026-11-28T08:00:00.000Z", "2026-11-28T08:01:00.000Z"),
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six small, distinct H.264 clips made by ffmpeg (one spare for a blurred copy)."""
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for number in range(len(LAYOUT) + 1):
        path = folder / f"segment-{number}.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi",
             "-i", "testsrc2=size=160x90:rate=10:duration=1", "-vf", f"hue=h={number * 50}",
             "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
        paths.append(path)
    return paths


def _add(
    archive: EvidenceArchive,
    clip: Path,
    station: str,
    camera: str,
    sequence: int,
    start: str,
    end: str,
    previous: str | None,
    *,
    source_item: str | None = None,
) -> str:
    video = {
        "camera": camera,
        "sequence": sequence,
        "start": start,
        "end": end,
        "duration": 60.0,
        "previous": previous,
        "copy": "blurred" if source_item else "original",
    }
    return archive.add(
        clip,
        submitter="recorder",
        media_type="video/mp4",
        station=station,
        device=camera,
        capture_time=start,
        clock_source="ntp",
        source_item=source_item,
        derivation="face-blur; detector=test" if source_item else None,
        extra={"video": video},
    ).sha256


def _recorded(folder: Path, clips: list[Path]) -> tuple[EvidenceArchive, list[str]]:
    archive = EvidenceArchive.init(folder, "test/retention")
    shas: list[str] = []
    last: dict[tuple[str, str], str] = {}
    for clip, (station, camera, sequence, start, end) in zip(clips, LAYOUT, strict=False):
        sha = _add(
            archive, clip, station, camera, sequence, start, end, last.get((station, camera))
        )
        last[(station, camera)] = sha
        shas.append(sha)
    return archive, shas


@pytest.fixture
def recorded(tmp_path: Path, clips: list[Path]) -> tuple[EvidenceArchive, list[str]]:
    return _recorded(tmp_path / "evidence", clips)


def _bundle_items(bundle: Path) -> set[str]:
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    return {item["sha256"] for item in manifest["items"]}


# --- storage ----------------------------------------------------------------------------------


def test_storage_per_station_day_and_camera(
    recorded: tuple[EvidenceArchive, list[str]], clips: list[Path]
) -> None:
    archive, shas = recorded
    blurred = _add(archive, clips[5], *LAYOUT[0][:2], 0, *LAYOUT[0][3:], None, source_item=shas[0])
    rows = storage_report(VideoIndex.from_archive(archive))
    size = [clip.stat().st_size for clip in clips]
    got = {(r.station, r.day, r.camera): r for r in rows}
    assert list(got) == [
        ("77-1", "2026-11-28", "cam-1"),
        ("77-1", "2026-11-29", "cam-2"),
        ("77-9", "2026-11-28", "cam-1"),
    ]
    first = got[("77-1", "2026-11-28", "cam-1")]
    assert (first.original_segments, first.original_bytes) == (3, sum(size[:3]))
    assert first.original_hours == pytest.approx(3 / 60)
    assert (first.blurred_segments, first.blurred_bytes) == (1, size[5])
    assert first.total_bytes == sum(size[:3]) + size[5]
    assert archive.item(blurred).size == size[5]

    days = storage_report(VideoIndex.from_archive(archive), station="77-1", by_camera=False)
    assert [(r.day, r.camera, r.original_segments) for r in days] == [
        ("2026-11-28", "*", 3),
        ("2026-11-29", "*", 1),
    ]
    with pytest.raises(VideoError, match="unknown station"):
        storage_report(VideoIndex.from_archive(archive), station="nowhere")


def test_storage_command(home: Path, clips: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    _recorded(home / "evidence", clips)
    assert main(["video", "storage", "--station", "77-9", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["station"], r["original_bytes"]) for r in rows] == [
        ("77-9", clips[4].stat().st_size)
    ]
    assert main(["video", "storage", "--station", "nowhere"]) == 2
    assert "unknown station 'nowhere'" in capsys.readouterr().err


# --- court export -----------------------------------------------------------------------------


def _export_minute(archive: EvidenceArchive, bundle: Path) -> WindowExport:
    """Export station 77-1 from 08:00:30 to 08:01:30, which overlaps segments 0 and 1."""
    return export_window(
        archive,
        bundle,
        station="77-1",
        since="2026-11-28T08:00:30Z",
        until="2026-11-28T08:01:30Z",
        actor="clerk",
        address="local:test",
    )


def test_export_holds_exactly_the_overlapping_segments(
    recorded: tuple[EvidenceArchive, list[str]], tmp_path: Path
) -> None:
    archive, shas = recorded
    bundle = tmp_path / "court.zip"
    result = _export_minute(archive, bundle)
    assert [s.sha256 for s in result.segments] == shas[:2]
    assert _bundle_items(bundle) == set(shas[:2])  # not segment 2, not the other station's
    report = verify_bundle(bundle, TrustStore(log_keys=(archive.verifier,)))
    assert report.ok, report.failure
    assert [c.action for c in archive.custody_of(shas[0])] == ["export"]
    assert archive.custody_of(shas[2]) == []

    # the window is half-open: segments that only touch its ends are outside
    touching = export_window(
        archive,
        tmp_path / "touching.zip",
        station="77-1",
        since="2026-11-28T08:01:00Z",
        until="2026-11-28T08:02:00Z",
        actor="clerk",
        address="local:test",
    )
    assert [s.sha256 for s in touching.segments] == [shas[1]]


def test_export_proves_the_recorder_events_of_the_window(
    recorded: tuple[EvidenceArchive, list[str]], tmp_path: Path
) -> None:
    archive, shas = recorded

    def event(name: str, camera: str, start: str, end: str) -> int:
        return archive.append_record(
            "video-event",
            {
                "event": name,
                "station": "77-1",
                "camera": camera,
                "time": end,
                "details": {"start": start, "end": end},
            },
        )

    inside = event("gap", "cam-1", "2026-11-28T08:01:10.000Z", "2026-11-28T08:01:20.000Z")
    outside = event("gap", "cam-1", "2026-11-28T08:05:00.000Z", "2026-11-28T08:06:00.000Z")
    bundle = tmp_path / "court.zip"
    result = _export_minute(archive, bundle)
    assert [s.sha256 for s in result.segments] == shas[:2]
    assert [e.index for e in result.events] == [inside]
    with zipfile.ZipFile(bundle) as handle:
        manifest = json.loads(handle.read("manifest.json"))
        proven = {int(e["index"]): json.loads(handle.read(e["path"])) for e in manifest["entries"]}
    assert proven[inside]["kind"] == "video-event" and outside not in proven
    report = verify_bundle(bundle, TrustStore(log_keys=(archive.verifier,)))
    assert report.ok, report.failure


def test_export_of_blurred_copies_needs_them(
    recorded: tuple[EvidenceArchive, list[str]], tmp_path: Path, clips: list[Path]
) -> None:
    archive, shas = recorded
    window = {"since": "2026-11-28T08:00:00Z", "until": "2026-11-28T08:00:59Z"}
    with pytest.raises(VideoError, match="has no blurred copy"):
        export_window(
            archive, tmp_path / "b.zip", station="77-1", blurred=True, actor="c", address="a",
            **window,
        )  # fmt: skip
    copy = _add(archive, clips[5], *LAYOUT[0][:2], 0, *LAYOUT[0][3:], None, source_item=shas[0])
    result = export_window(
        archive, tmp_path / "b.zip", station="77-1", blurred=True, actor="c", address="a",
        **window,
    )  # fmt: skip
    assert result.copy == "blurred" and _bundle_items(tmp_path / "b.zip") == {copy}


def test_export_command_and_evidence_verify(
    home: Path, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, shas = _recorded(home / "evidence", clips)
    bundle = tmp_path / "bundle.zip"
    code = main(
        ["video", "export", "--station", "77-1", "--since", "2026-11-28T08:00:00Z",
         "--until", "2026-11-28T09:00:00Z", "-o", str(bundle)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3 original segment(s)" in out
    assert _bundle_items(bundle) == set(shas[:3])
    trust = tmp_path / "trust.txt"
    trust.write_text(f"log {archive.verifier.to_string()}\n")
    assert main(["evidence", "verify", str(bundle), "--trust", str(trust)]) == 0
    verified = capsys.readouterr().out
    assert "FAIL" not in verified and verified.count("ok") >= 8


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--station", "nowhere", "--since", "2026-11-28T08:00Z", "--until", "2026-11-28T09:00Z"],
         "unknown station 'nowhere'"),
        (["--station", "77-1", "--since", "2026-11-28T09:00Z", "--until", "2026-11-28T08:00Z"],
         "the window is empty"),
        (["--station", "77-1", "--since", "yesterday", "--until", "2026-11-28T08:00Z"],
         "--since 'yesterday' is not an ISO 8601 time"),
        (["--station", "77-1", "--since", "2026-11-28T10:00Z", "--until", "2026-11-28T11:00Z"],
         "no segment of station '77-1' overlaps"),
        (["--station", "77-1", "--since", "2026-11-28T08:00Z", "--until", "2026-11-28T09:00Z",
          "--blurred"], "has no blurred copy"),
    ],
)  # fmt: skip
def test_export_command_bad_input_is_one_line(
    home: Path,
    clips: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    _recorded(home / "evidence", clips)
    bundle = tmp_path / "x.zip"
    assert main(["video", "export", *arguments, "-o", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not bundle.exists()


def test_parse_window() -> None:
    low, high = parse_window("2026-11-28T08:00:00+03:00", "2026-11-28T05:30:00")
    assert (low.hour, high.hour, high.minute) == (5, 5, 30)
    with pytest.raises(VideoError, match="window is empty"):
        parse_window("2026-11-28T08:00:00Z", "2026-11-28T08:00:00Z")


# --- retention --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [EvidenceArchive, ObjectBackend, FilesystemBackend])
def test_nothing_deletes_archived_footage(kind: type) -> None:
    """Originals are kept without end: neither the archive nor its storage offers a deletion."""
    words = ("delete", "remove", "unlink", "purge", "expire", "prune")
    assert [n for n in dir(kind) if any(w in n.lower() for w in words)] == []
