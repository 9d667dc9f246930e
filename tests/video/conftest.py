"""Shared fixtures of the video tests.

* ``archive``: an empty evidence archive in a temporary folder.
* ``segment_writer``: appends segments and video events to an archive through the archive API,
  exactly as the recorder lays them out (for building logs by hand, including broken chains).
* ``test_clip``: a short generated H.264 MPEG-TS clip (640x360, 10 fps, keyframe every second),
  encoded once per session by the simulator's clip generator.
* ``camera``: a running :class:`~pollwatch.video.simulator.SimulatedCamera` playing ``test_clip``
  as a live HTTP MPEG-TS stream on 127.0.0.1.

The ffmpeg fixtures skip with a reason when ffmpeg is not installed (CI installs it with apt).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pollwatch.evidence.archive import EvidenceArchive, ItemRecord
from pollwatch.settings import Settings
from pollwatch.video.accounts import AccountStore
from pollwatch.video.segments import format_time
from pollwatch.web.app import create_app


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[EvidenceArchive]:
    """An empty evidence archive in ``tmp_path / "evidence"``."""
    with EvidenceArchive.init(tmp_path / "evidence", "test/video") as opened:
        yield opened


@dataclass
class SegmentWriter:
    """Writes segment items and video events the way the recorder does (see segments.py)."""

    archive: EvidenceArchive
    folder: Path
    start: datetime = field(default_factory=lambda: datetime(2026, 11, 28, 8, 0, tzinfo=UTC))
    seconds: float = 2.0
    _counter: int = 0
    _last: dict[tuple[str, str], str] = field(default_factory=dict)
    _next_sequence: dict[tuple[str, str], int] = field(default_factory=dict)

    def segment(
        self,
        station: str = "S1",
        camera: str = "cam1",
        *,
        sequence: int | None = None,
        start: datetime | None = None,
        previous: str | bool | None = True,
        content: bytes | None = None,
        partial: bool = False,
    ) -> ItemRecord:
        """Archive one original segment; ``previous=True`` chains it to the camera's last one.

        Pass ``sequence``, ``start`` or ``previous`` explicitly to build broken chains.
        """
        key = (station, camera)
        number = self._next_sequence.get(key, 0) if sequence is None else sequence
        begin = start if start is not None else self.start + timedelta(seconds=number * 2.0)
        end = begin + timedelta(seconds=self.seconds)
        self._counter += 1
        path = self.folder / f"{station}-{camera}-{self._counter:05d}.mp4"
        path.write_bytes(content or f"{station}/{camera}/{self._counter}".encode() * 64)
        video: dict[str, Any] = {
            "camera": camera,
            "sequence": number,
            "start": format_time(begin),
            "end": format_time(end),
            "duration": self.seconds,
            "previous": self._last.get(key) if previous is True else previous or None,
            "copy": "original",
        }
        if partial:
            video["partial"] = True
        record = self.archive.add(
            path,
            submitter="test",
            media_type="video/mp4",
            station=station,
            device=camera,
            capture_time=format_time(begin),
            clock_source="recorder-utc",
            extra={"video": video},
        )
        self._last[key] = record.sha256
        self._next_sequence[key] = max(self._next_sequence.get(key, 0), number + 1)
        return record

    def blurred(self, original: ItemRecord, content: bytes = b"blurred") -> ItemRecord:
        """Archive a blurred copy of an original segment."""
        assert original.extra is not None
        video = dict(original.extra["video"], copy="blurred", previous=None)
        self._counter += 1
        path = self.folder / f"blurred-{self._counter:05d}.mp4"
        path.write_bytes(content + original.sha256.encode())
        return self.archive.add(
            path,
            submitter="test",
            media_type="video/mp4",
            station=original.station,
            device=original.device,
            capture_time=original.capture_time,
            clock_source=original.clock_source,
            source_item=original.sha256,
            derivation="blur:test/1",
            extra={"video": video},
        )

    def event(
        self,
        event: str,
        station: str = "S1",
        camera: str = "cam1",
        *,
        time: datetime,
        **details: Any,
    ) -> int:
        """Append a ``video-event`` entry."""
        return self.archive.append_record(
            "video-event",
            {
                "event": event,
                "station": station,
                "camera": camera,
                "time": format_time(time),
                "details": details,
            },
        )


@pytest.fixture
def segment_writer(archive: EvidenceArchive, tmp_path: Path) -> SegmentWriter:
    """A :class:`SegmentWriter` on the ``archive`` fixture (2 s segments from 08:00 UTC)."""
    folder = tmp_path / "segment-files"
    folder.mkdir()
    return SegmentWriter(archive, folder)


def _require_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg; CI installs it)")


@pytest.fixture(scope="session")
def test_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s 640x360 10 fps H.264 MPEG-TS clip with a keyframe every second (made once)."""
    _require_ffmpeg()
    from pollwatch.video.simulator import generate_clip

    folder = tmp_path_factory.mktemp("clip")
    return generate_clip(
        folder / "clip.ts", seconds=6, width=640, height=360, fps=10, bitrate="300k", keyframe=1.0
    )


@pytest.fixture
def camera(test_clip: Path) -> Iterator[Any]:
    """A simulated camera serving ``test_clip`` live (looping) on 127.0.0.1."""
    from pollwatch.video.simulator import SimulatedCamera

    with SimulatedCamera(test_clip) as running:
        yield running


@pytest.fixture
def camera_factory(test_clip: Path) -> Iterator[Callable[..., Any]]:
    """Start extra simulated cameras (all stopped at teardown): ``camera_factory(**options)``."""
    from pollwatch.video.simulator import SimulatedCamera

    started: list[SimulatedCamera] = []

    def start(**options: Any) -> SimulatedCamera:
        running = SimulatedCamera(options.pop("clip", test_clip), **options)
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# --- a playback site: the app over real MP4 segments, users and tokens ----------------------
NATIONAL = "192.0.2.10"
ABROAD = "203.0.113.9"
PASSWORD = "correct horse battery"

POLICY = """\
version = 1

[networks]
national = ["192.0.2.0/24", "2001:db8::/32"]

[regions]
north = ["N-*"]
south = ["S-*"]

[proxy]
trusted = ["10.9.9.9/32"]

[[rules]]
name = "court-national"
roles = ["lawyer", "commission"]
networks = ["national"]
effect = "allow"
copies = ["original", "blurred"]

[[rules]]
name = "court-abroad-blurred"
roles = ["lawyer", "commission"]
effect = "allow"
copies = ["blurred"]

[[rules]]
name = "observers-assigned"
roles = ["observer"]
assigned = true
effect = "allow"
copies = ["blurred"]

[[rules]]
name = "observers-elsewhere"
roles = ["observer"]
effect = "deny"

[[rules]]
name = "foreign-denied"
roles = ["*"]
outside = ["national"]
effect = "deny"

[[rules]]
name = "public-blurred"
roles = ["public", "analyst", "admin"]
effect = "allow"
copies = ["blurred"]
"""

USERS = {
    "lena": "lawyer",
    "carl": "commission",
    "olga": "observer",
    "ana": "analyst",
    "root": "admin",
}


def make_clip(path: Path, offset: int, seconds: float = 2.0) -> Path:
    """A small real H.264 MP4 (testsrc2 320x240, 10 fps), the moov atom first for streaming."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size=320x240:rate=10,trim=start={offset}", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10",
         "-movflags", "+faststart", str(path)],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three distinct 2 s MP4 clips, made once per session."""
    folder = tmp_path_factory.mktemp("playback-clips")
    return [make_clip(folder / f"clip{n}.mp4", offset=n * 3) for n in range(3)]


def playback_custody(archive: EvidenceArchive, action: str | None = None) -> list[dict[str, Any]]:
    """Playback custody entries (access/playback and denied) read straight from the log."""
    return [
        entry
        for _, entry in archive.entries()
        if entry["kind"] == "custody"
        and (entry["action"] == "denied" or entry.get("reason") == "playback")
        and (action is None or entry["action"] == action)
    ]


@dataclass
class Site:
    """The app over an archive with stations N-1 (north) and S-1 (south), users and tokens."""

    settings: Settings
    archive: EvidenceArchive
    app: Any
    originals: dict[str, ItemRecord]
    blurred: dict[str, ItemRecord]
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, address: str = NATIONAL, user: str | None = None) -> TestClient:
        """A client from ``address``; with ``user``, carrying that user's bearer token."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return TestClient(self.app, client=(address, 50000), headers=headers)

    def data(self, record: ItemRecord) -> bytes:
        with self.archive.objects.open(record.sha256) as handle:
            return handle.read()

    def custody(self, action: str | None = None) -> list[dict[str, Any]]:
        return playback_custody(self.archive, action)


@pytest.fixture
def site(
    tmp_path: Path, segment_writer: SegmentWriter, archive: EvidenceArchive, clips: list[Path]
) -> Iterator[Site]:
    settings = Settings(home=tmp_path, download=False)
    assert settings.evidence_dir == archive.folder
    settings.video_dir.mkdir(parents=True, exist_ok=True)
    (settings.video_dir / "policy.toml").write_text(POLICY, encoding="utf-8")
    originals = {
        "n1a": segment_writer.segment("N-1", "cam1", content=clips[0].read_bytes()),
        "n1b": segment_writer.segment("N-1", "cam1", content=clips[1].read_bytes()),
        "s1a": segment_writer.segment("S-1", "cam1", content=clips[2].read_bytes()),
    }
    blurred = {
        # a blurred copy is a real MP4 too (here simply another clip), distinct from its original
        "n1a": segment_writer.blurred(originals["n1a"], content=clips[1].read_bytes()),
        "s1a": segment_writer.blurred(originals["s1a"], content=clips[0].read_bytes()),
    }
    accounts = AccountStore(settings.video_dir)
    tokens = {}
    for name, role in USERS.items():
        regions = ["north"] if role == "observer" else []
        accounts.add_user(name, role, PASSWORD, regions=regions)
        tokens[name] = accounts.create_token(name, "test")[1]
    yield Site(settings, archive, create_app(settings), originals, blurred, tokens)
