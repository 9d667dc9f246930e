"""The recorder against a real ffmpeg camera: segments, chain, outages, kills, bad input."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pollwatch.cli import main
from pollwatch.errors import VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.video.manifest import CameraSource, load_manifest
from pollwatch.video.recorder import SEGMENT_FORMAT_OPTIONS, Recorder, RecorderNotice
from pollwatch.video.segments import GAP_TOLERANCE, VideoIndex
from pollwatch.video.simulator import SimulatedCamera

# The test clip has a keyframe every second, so 1 s segments keep the tests short.
SEGMENT = 1.0


def _wait(condition: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class Notices:
    """Collects a recorder's notices; lets a test wait for one."""

    def __init__(self) -> None:
        self.items: list[RecorderNotice] = []
        self.lock = threading.Lock()

    def __call__(self, notice: RecorderNotice) -> None:
        with self.lock:
            self.items.append(notice)

    def count(self, kind: str, text: str | None = None) -> int:
        with self.lock:
            return sum(1 for n in self.items if n.kind == kind and (text is None or n.text == text))


@contextmanager
def recording(
    archive: EvidenceArchive, url: str, spool: Path, **options: object
) -> Iterator[tuple[Recorder, Notices]]:
    """Run a recorder of station S1 / camera cam1 in a thread; stop it on leaving."""
    notices = Notices()
    recorder = Recorder(
        archive,
        [CameraSource("S1", "cam1", url)],
        spool=spool,
        segment_seconds=SEGMENT,
        on_notice=notices,
        retry_initial=0.2,
        retry_max=1.0,
        **options,  # type: ignore[arg-type]
    )
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(recorder.run()), daemon=True)
    thread.start()
    try:
        yield recorder, notices
    finally:
        recorder.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()


def _check_segments_match_objects(archive: EvidenceArchive) -> int:
    index = VideoIndex.from_archive(archive)
    segments = index.segments("S1", "cam1")
    for segment in segments:
        data = archive.objects.read_verified(segment.sha256, limit=1 << 26)
        assert hashlib.sha256(data).hexdigest() == segment.sha256
        assert len(data) == segment.size
    return len(segments)


def _video_stream(archive: EvidenceArchive, sha256: str, folder: Path) -> dict[str, object]:
    path = folder / f"{sha256}.mp4"
    path.write_bytes(archive.objects.read_verified(sha256, limit=1 << 26))
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    streams: list[dict[str, object]] = json.loads(done.stdout)["streams"]
    return streams[0]


def test_records_chained_segments_into_the_archive(
    archive: EvidenceArchive, camera: SimulatedCamera, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    with recording(archive, camera.url, spool) as (_, notices):
        _wait(lambda: notices.count("segment") >= 3)
    index = VideoIndex.from_archive(archive)
    first_run = index.segments("S1", "cam1")
    assert len(first_run) >= 3
    assert [s.sequence for s in first_run] == list(range(len(first_run)))
    assert first_run[0].previous is None
    for before, after in itertools.pairwise(first_run):
        assert after.previous == before.sha256
        assert after.start == before.end  # one clock: segments meet end to start
    assert all(abs(s.duration - SEGMENT) < 0.01 for s in first_run[:-1])
    assert index.verify_chain("S1", "cam1") == []
    assert _video_stream(archive, first_run[0].sha256, tmp_path) == {
        "codec_name": "h264",
        "width": 640,
        "height": 360,
    }
    events = [e.event for e in index.events("S1", "cam1")]
    assert events == ["recorder-start", "recorder-stop"]
    assert index.events("S1", "cam1")[1].details["reason"] == "stopped"
    item = archive.item(first_run[0].sha256)
    assert (item.station, item.device, item.media_type) == ("S1", "cam1", "video/mp4")
    assert item.clock_source == "recorder-utc+stream-offset"

    assert _check_segments_match_objects(archive) == len(first_run)
    assert archive.verify()[1] == len(first_run)
    assert list(spool.glob("S1/cam1/*.mp4")) == [] and list(spool.glob("S1/cam1/*.json")) == []


def test_outage_and_reconnect_are_logged_and_the_chain_goes_on(
    archive: EvidenceArchive, camera: SimulatedCamera, tmp_path: Path
) -> None:
    with recording(archive, camera.url, tmp_path / "spool") as (_, notices):
        _wait(lambda: notices.count("segment") >= 2)
        camera.drop()
        _wait(lambda: notices.count("event", "outage") == 1)
        _wait(lambda: notices.count("retry") >= 1)  # a retry met a refused connection
        camera.restore()
        _wait(lambda: notices.count("event", "reconnect") == 1)
        before = notices.count("segment")
        _wait(lambda: notices.count("segment") >= before + 2)
    index = VideoIndex.from_archive(archive)
    events = [e.event for e in index.events("S1", "cam1")]
    assert events == ["recorder-start", "outage", "reconnect", "gap", "recorder-stop"]
    outage, reconnect, gap_event = index.events("S1", "cam1")[1:4]
    assert outage.details["error"]
    assert reconnect.details["attempts"] >= 2  # at least one refused retry
    segments = index.segments("S1", "cam1")
    [gap] = index.gaps("S1", "cam1")
    assert gap.reason == "outage, reconnect, gap"
    assert gap_event.span() == (gap.start, gap.end)
    assert gap.seconds > GAP_TOLERANCE
    assert index.verify_chain("S1", "cam1") == []
    assert [s.sequence for s in segments] == list(range(len(segments)))
    assert _check_segments_match_objects(archive) == len(segments)


def test_a_second_recorder_of_the_same_camera_is_refused(
    archive: EvidenceArchive, camera: SimulatedCamera, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    with recording(archive, camera.url, spool) as (_, notices):
        _wait(lambda: notices.count("event", "recorder-start") == 1)
        other = Recorder(
            archive, [CameraSource("S1", "cam1", camera.url)], spool=spool, probe=False
        )
        with pytest.raises(VideoError, match="already being recorded"):
            other.run(duration=1)


def _recorder_process(home: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pollwatch", "--home", str(home), "video", "record",
         "--station", "S1", "--camera", "cam1", url, "--segment-seconds", str(SEGMENT)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_loses_at_most_the_open_segment(
    home: Path, camera: SimulatedCamera, tmp_path: Path
) -> None:
    archive = EvidenceArchive.init(home / "evidence", "test/kill")
    process = _recorder_process(home, camera.url)
    try:
        _wait(lambda: len(VideoIndex.from_archive(archive).segments()) >= 2)
        children = _children(process.pid)
        assert children, "the recorder runs ffmpeg as a child"
        time.sleep(0.6)  # into the open segment
    finally:
        process.kill()
        process.communicate(timeout=30)
    # The ffmpeg children die with the recorder rather than writing on as orphans.
    _wait(lambda: not any(_alive(pid) for pid in children), timeout=10)
    spool = home / "video" / "spool" / "S1" / "cam1"
    left = list(spool.glob("*.mp4"))
    assert left, "the open segment is left in the spool"
    archived = VideoIndex.from_archive(archive).segments("S1", "cam1")

    # The next start archives the leftover (partial) or logs it lost, continues the chain
    # where the killed run left it, and logs the gap.
    notices = Notices()
    recorder = Recorder(
        archive,
        [CameraSource("S1", "cam1", camera.url)],
        spool=home / "video" / "spool",
        segment_seconds=SEGMENT,
        on_notice=notices,
    )
    thread = threading.Thread(target=recorder.run, daemon=True)
    thread.start()
    _wait(lambda: notices.count("event", "gap") == 1)  # logged once it connects again
    recorder.stop()
    thread.join(timeout=60)
    index = VideoIndex.from_archive(archive)
    segments = index.segments("S1", "cam1")
    assert [s.sha256 for s in segments[: len(archived)]] == [s.sha256 for s in archived]
    recovered = segments[len(archived)]
    lost = [e for e in index.events("S1", "cam1") if e.event == "segment-lost"]
    if recovered.partial:  # the open segment had a complete fragment: archived, marked partial
        assert recovered.start == archived[-1].end
        assert 0 < recovered.duration < SEGMENT + 0.5
        assert not lost
    else:  # nothing readable yet: logged as lost, with its span
        [event] = lost
        assert event.span()[0] == archived[-1].end and event.details["file"] == left[0].name
    assert index.verify_chain("S1", "cam1") == []
    gap_events = [e for e in index.events("S1", "cam1") if e.event == "gap"]
    assert len(gap_events) == 1 and gap_events[0].details["reason"] == "recorder-restart"
    [gap] = index.gaps("S1", "cam1")
    assert "gap" in gap.reason
    assert _check_segments_match_objects(archive) == len(segments)
    size, objects = archive.verify()
    assert objects == len(segments) and size == archive.log.size
    assert list(spool.glob("*.mp4")) == [] and list(spool.glob("*.json")) == []


def test_segments_of_a_looping_clip_are_never_byte_identical(
    test_clip: Path, tmp_path: Path
) -> None:
    """Identical files would collapse into one object and read as a repeated segment."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-stream_loop", "2", "-i", str(test_clip), "-c", "copy",
         "-f", "segment", "-segment_time", "2", "-segment_format", "mp4",
         "-segment_format_options", SEGMENT_FORMAT_OPTIONS, str(tmp_path / "%03d.mp4")],
        check=True,
    )  # fmt: skip
    files = sorted(tmp_path.glob("*.mp4"))
    assert len(files) == 9  # three loops of the 6 s clip, 2 s each
    assert len({hashlib.sha256(f.read_bytes()).hexdigest() for f in files}) == 9


def test_leftovers_are_archived_as_partial_or_logged_lost(
    archive: EvidenceArchive, test_clip: Path, tmp_path: Path
) -> None:
    """What a killed recorder leaves: a closed segment, a cut-short one and an empty one."""
    folder = tmp_path / "spool" / "S1" / "cam1"
    folder.mkdir(parents=True)
    run = "20261128T080000000Z"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(test_clip), "-c", "copy", "-f", "segment",
         "-segment_time", "3", "-segment_format", "mp4", "-segment_format_options",
         SEGMENT_FORMAT_OPTIONS, str(folder / f"{run}-%06d.mp4")],
        check=True,
    )  # fmt: skip
    closed, cut = folder / f"{run}-000000.mp4", folder / f"{run}-000001.mp4"
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # killed while writing: the tail is missing
    (folder / f"{run}-000002.mp4").write_bytes(b"")  # opened, nothing written yet
    (folder / f"{run}.json").write_text(
        json.dumps({"run": run, "closed": {closed.name: [0.0, 3.0]}, "open_start": 3.0})
    )
    notices = Notices()
    recorder = Recorder(
        archive,
        [CameraSource("S1", "cam1", "http://127.0.0.1:9/stream.ts")],
        spool=tmp_path / "spool",
        probe=False,
        on_notice=notices,
    )
    thread = threading.Thread(target=recorder.run, daemon=True)
    thread.start()
    _wait(lambda: notices.count("event", "recorder-start") == 1)
    recorder.stop()
    thread.join(timeout=30)
    index = VideoIndex.from_archive(archive)
    first, partial = index.segments("S1", "cam1")
    assert (first.sequence, first.partial, first.duration) == (0, False, 3.0)
    assert first.start.isoformat() == "2026-11-28T08:00:00+00:00"
    assert (partial.sequence, partial.partial, partial.previous) == (1, True, first.sha256)
    assert partial.start == first.end and 0.5 < partial.duration < 3.0
    assert (
        archive.objects.read_verified(partial.sha256, limit=1 << 26) == data[: len(data) * 2 // 3]
    )
    [lost] = [e for e in index.events("S1", "cam1") if e.event == "segment-lost"]
    assert lost.details["file"] == f"{run}-000002.mp4" and lost.span()[0] == partial.start
    assert index.verify_chain("S1", "cam1") == []
    assert not any(folder.glob("*.mp4")) and not any(folder.glob("*.json"))


def test_sigterm_closes_the_open_segment(
    home: Path, camera: SimulatedCamera, tmp_path: Path
) -> None:
    archive = EvidenceArchive.init(home / "evidence", "test/term")
    process = _recorder_process(home, camera.url)
    try:
        _wait(lambda: len(VideoIndex.from_archive(archive).segments()) >= 1)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    index = VideoIndex.from_archive(archive)
    segments = index.segments("S1", "cam1")
    assert len(segments) >= 2  # the one before the signal and the one it closed
    assert not any(s.partial for s in segments)
    stop = index.events("S1", "cam1")[-1]
    assert (stop.event, stop.details["reason"]) == ("recorder-stop", "signal")
    assert stop.details["segments"] == len(segments)
    assert index.verify_chain("S1", "cam1") == []
    spool = home / "video" / "spool" / "S1" / "cam1"
    assert list(spool.glob("*.mp4")) == [] and list(spool.glob("*.json")) == []


# --- manifests and bad input --------------------------------------------------------------------
def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_is_read(tmp_path: Path) -> None:
    manifest = load_manifest(
        _write(
            tmp_path / "s.toml",
            '[station]\nid = "PS-42"\nname = "School 5"\n\n'
            '[[cameras]]\nid = "door"\nurl = "http://10.0.0.2/stream.ts"\n'
            'description = "entrance"\n\n'
            '[[cameras]]\nid = "box"\nurl = "rtsp://10.0.0.3/live"\n',
        )
    )
    assert (manifest.station, manifest.name) == ("PS-42", "School 5")
    assert [(c.station, c.camera, c.url) for c in manifest.cameras] == [
        ("PS-42", "door", "http://10.0.0.2/stream.ts"),
        ("PS-42", "box", "rtsp://10.0.0.3/live"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not valid TOML"),
        ('[[cameras]]\nid = "a"\nurl = "http://x/s.ts"\n', "no \\[station\\] table"),
        ('[station]\nid = "S"\n', "no \\[\\[cameras\\]\\] entries"),
        ('[station]\nid = "S"\nsite = "x"\n[[cameras]]\nid="a"\nurl="http://x/a"\n', "'site'"),
        ('[station]\nid = "S 1"\n[[cameras]]\nid="a"\nurl="http://x/a"\n', "station id"),
        ('[station]\nid = "S"\n[[cameras]]\nid="a"\n', "missing key 'url'"),
        ('[station]\nid = "S"\n[[cameras]]\nid="a"\nurl="www.x.org"\n', "not a stream URL"),
        (
            '[station]\nid = "S"\n[[cameras]]\nid="a"\nurl="http://x/a"\n'
            '[[cameras]]\nid="a"\nurl="http://x/b"\n',
            "used twice",
        ),
        ('[station]\nid = 5\n[[cameras]]\nid="a"\nurl="http://x/a"\n', "must be a string"),
    ],
)
def test_bad_manifests_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(VideoError, match=message):
        load_manifest(_write(tmp_path / "bad.toml", text))


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.err


def test_bad_input_gets_one_clear_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], camera: SimulatedCamera
) -> None:
    record = ["video", "record", "--station", "S1", "--camera", "cam1"]
    code, err = _cli(capsys, *record, camera.url)
    assert code == 2 and "no evidence archive" in err and len(err.strip().splitlines()) == 1
    EvidenceArchive.init(home / "evidence", "test/cli").close()
    code, err = _cli(capsys, *record, "http://127.0.0.1:9/stream.ts")
    assert code == 2 and "cannot reach http://127.0.0.1:9/stream.ts" in err
    assert len(err.strip().splitlines()) == 1

    # A web page where a stream should be.
    html = tmp_path / "www"
    html.mkdir()
    (html / "index.html").write_text("<html><body>camera login</body></html>")
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(html)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split("port ")[1].split()[0])
        code, err = _cli(capsys, *record, f"http://127.0.0.1:{port}/index.html")
        assert code == 2 and "is not a video stream" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        server.terminate()
        server.wait(timeout=10)

    manifest = _write(
        tmp_path / "s.toml",
        f'[station]\nid = "PS-1"\n[[cameras]]\nid = "a"\nurl = "{camera.url}"\n',
    )
    code, err = _cli(capsys, "video", "record", "--manifest", str(manifest), "--station", "PS-9")
    assert code == 2 and "unknown station 'PS-9': the manifest declares PS-1" in err
    code, err = _cli(capsys, "video", "record", "--manifest", str(tmp_path / "none.toml"))
    assert code == 2 and "no manifest at" in err
    code, err = _cli(capsys, "video", "record", "--station", "S1", camera.url)
    assert code == 2 and "give --station, --camera and the camera's URL" in err
    code, err = _cli(capsys, "video", "timeline", "PS-9")
    assert code == 2 and "unknown station 'PS-9'" in err
    code, err = _cli(capsys, "video", "segments", "--station", "PS-9")
    assert code == 2 and "unknown station 'PS-9'" in err


def test_manifest_recording_and_the_index_commands(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    camera_factory: Callable[..., SimulatedCamera],
) -> None:
    cameras = [camera_factory(), camera_factory()]
    archive = EvidenceArchive.init(home / "evidence", "test/manifest")
    manifest = _write(
        tmp_path / "s.toml",
        '[station]\nid = "PS-1"\n'
        + "".join(f'[[cameras]]\nid = "c{n}"\nurl = "{c.url}"\n' for n, c in enumerate(cameras)),
    )
    code = main(
        ["video", "record", "--manifest", str(manifest), "--station", "PS-1",
         "--segment-seconds", str(SEGMENT), "--duration", "3.5", "--quiet"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    index = VideoIndex.from_archive(archive)
    assert index.cameras("PS-1") == ["c0", "c1"]
    for name in ("c0", "c1"):
        assert len(index.segments("PS-1", name)) >= 2
        assert index.verify_chain("PS-1", name) == []
    code = main(["video", "verify-chain", "PS-1", "--objects"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("chain intact") == 2 and "objects re-hashed" in out
    code = main(["video", "segments", "--station", "PS-1", "--camera", "c1", "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sequence"] for r in rows] == list(range(len(rows)))
    assert {r["camera"] for r in rows} == {"c1"}
    code = main(["video", "timeline", "PS-1"])
    out = capsys.readouterr().out
    assert code == 0 and "recorded" in out and "recorder-start" in out

    # A forged segment breaks the chain: verify-chain says so and exits 1.
    forged = tmp_path / "forged.mp4"
    forged.write_bytes(os.urandom(64))
    last = index.segments("PS-1", "c0")[-1]
    archive.add(
        forged, submitter="x", station="PS-1", device="c0",
        extra={"video": {"camera": "c0", "sequence": last.sequence, "previous": None,
                         "start": last.to_dict()["end"], "end": last.to_dict()["end"],
                         "duration": 0.0, "copy": "original"}},
    )  # fmt: skip
    code = main(["video", "verify-chain", "PS-1", "--camera", "c0"])
    out = capsys.readouterr().out
    assert code == 1 and "chain BROKEN" in out and "reordered or inserted" in out
