"""The segment index: recorded video segments, recorder events, gaps and hash chains, from the log.

Definitions (the log entries are written by :mod:`.recorder`; this module only reads them):

* A *segment* is an evidence item whose entry carries a ``video`` object::

      {"camera": str, "sequence": int, "start": time, "end": time, "duration": float,
       "previous": sha256 | null, "copy": "original" | "blurred"}

  plus ``"partial": true`` when the recorder archived what a killed recorder left behind.
  ``sequence`` counts a camera's archived original segments from 0 and is never reused;
  ``previous`` is the SHA-256 of the same camera's previous archived original (null for the
  first). A blurred copy is a derived item (``source_item`` = the original) with the same
  ``video`` object except ``copy: "blurred"`` and ``previous: null``; chains run over originals.
* A *video event* is a log entry of kind ``video-event`` with ``event`` one of
  :data:`EVENTS`, ``station``, ``camera``, ``time`` and ``details``.
* Times are ISO 8601 UTC with milliseconds and a ``Z`` (:func:`format_time`); this module
  gives them as timezone-aware :class:`~datetime.datetime` values.
* A *gap* is a hole of more than :data:`GAP_TOLERANCE` seconds between the end of one original
  segment and the start of the next segment of the same camera. Its ``reason`` names the events
  logged inside it (e.g. ``"outage, reconnect, gap"``), or ``"unexplained"`` when none were.
* The *chain* of a camera is intact when, in log order, its originals have sequences 0, 1, 2,
  ... with no repeat or hole, each ``previous`` is the hash of the one before (null for the
  first), and start times do not go backwards. :meth:`VideoIndex.verify_chain` lists every
  departure in words, so a missing, inserted or reordered segment is detected.

The log itself is protected by :mod:`pollwatch.evidence` (Merkle tree, signed checkpoints);
the chain adds a per-camera order that a reader can check without the whole log.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pollwatch.errors import VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.video.manifest import redact_url

__all__ = [
    "EVENTS",
    "GAP_TOLERANCE",
    "Gap",
    "Segment",
    "VideoEvent",
    "VideoIndex",
    "format_time",
    "parse_time",
]

EVENTS = ("recorder-start", "recorder-stop", "outage", "reconnect", "gap", "segment-lost")
EVENT_KIND = "video-event"
COPIES = ("original", "blurred")
# Within one recorder run a segment starts exactly where the previous one ended (one clock,
# stream offsets), so any hole beyond millisecond rounding is footage that is missing; the
# tolerance only absorbs rounding and other recorders' clocks.
GAP_TOLERANCE = 0.25


def format_time(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC with milliseconds and ``Z`` (``2026-11-28T16:20:00.000Z``)."""
    if moment.tzinfo is None:
        raise VideoError(f"time {moment!r} has no time zone", hint="use an aware UTC datetime")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str | datetime) -> datetime:
    """An ISO 8601 time (``Z`` or an offset; naive means UTC) as an aware UTC datetime."""
    if isinstance(text, datetime):
        return text.replace(tzinfo=UTC) if text.tzinfo is None else text.astimezone(UTC)
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise VideoError(
            f"{text!r} is not an ISO 8601 time", hint="e.g. 2026-11-28T16:20:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Segment:
    """One archived video segment (an original or a blurred copy) and where it sits in the log."""

    index: int
    sha256: str
    size: int
    station: str
    camera: str
    sequence: int
    start: datetime
    end: datetime
    duration: float
    previous: str | None
    copy: str
    source_item: str | None
    derivation: str | None
    media_type: str
    partial: bool = False

    def overlaps(self, start: datetime | None, end: datetime | None) -> bool:
        """True when the segment shares time with [start, end) (open ends are unbounded)."""
        return (start is None or self.end > start) and (end is None or self.start < end)

    def to_dict(self) -> dict[str, Any]:
        """The segment as JSON-ready values (times in :func:`format_time`)."""
        return {
            "index": self.index,
            "sha256": self.sha256,
            "size": self.size,
            "station": self.station,
            "camera": self.camera,
            "sequence": self.sequence,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "duration": self.duration,
            "previous": self.previous,
            "copy": self.copy,
            "source_item": self.source_item,
            "derivation": self.derivation,
            "media_type": self.media_type,
            "partial": self.partial,
        }


@dataclass(frozen=True)
class VideoEvent:
    """A recorder event from the log: start, stop, outage, reconnect, gap or segment-lost."""

    index: int
    event: str
    station: str
    camera: str
    time: datetime
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def span(self) -> tuple[datetime, datetime]:
        """The time the event covers: ``details`` start/end for gap and segment-lost, else time."""
        start = self.details.get("start")
        end = self.details.get("end")
        if isinstance(start, str) and isinstance(end, str):
            try:
                return parse_time(start), parse_time(end)
            except VideoError:
                pass
        return self.time, self.time

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values."""
        return {
            "index": self.index,
            "event": self.event,
            "station": self.station,
            "camera": self.camera,
            "time": format_time(self.time),
            # Logs written before URLs were masked at the source may hold a camera password:
            # mask on the way out too (the log itself is append-only and keeps its bytes).
            "details": {
                key: redact_url(value) if key == "url" and isinstance(value, str) else value
                for key, value in self.details.items()
            },
        }


@dataclass(frozen=True)
class Gap:
    """Missing footage of one camera: from ``start`` to ``end``, and the events that explain it."""

    station: str
    camera: str
    start: datetime
    end: datetime
    reason: str

    @property
    def seconds(self) -> float:
        """The gap's length in seconds."""
        return (self.end - self.start).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """The gap as JSON-ready values."""
        return {
            "station": self.station,
            "camera": self.camera,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
        }


def _segment_from_entry(index: int, entry: dict[str, Any]) -> Segment | None:
    video = entry.get("video")
    if entry.get("kind") != "item" or not isinstance(video, dict):
        return None
    try:
        return Segment(
            index=index,
            sha256=str(entry["sha256"]),
            size=int(entry["size"]),
            station=str(entry.get("station") or ""),
            camera=str(video.get("camera") or entry.get("device") or ""),
            sequence=int(video["sequence"]),
            start=parse_time(video["start"]),
            end=parse_time(video["end"]),
            duration=float(video.get("duration", 0.0)),
            previous=video.get("previous"),
            copy=str(video.get("copy", "original")),
            source_item=entry.get("source_item"),
            derivation=entry.get("derivation"),
            media_type=str(entry.get("media_type", "video/mp4")),
            partial=bool(video.get("partial", False)),
        )
    except (KeyError, TypeError, ValueError, VideoError):
        # A malformed video object is not a segment; verify_chain cannot vouch for it.
        return None


def _event_from_entry(index: int, entry: dict[str, Any]) -> VideoEvent | None:
    if entry.get("kind") != EVENT_KIND:
        return None
    try:
        return VideoEvent(
            index=index,
            event=str(entry["event"]),
            station=str(entry.get("station") or ""),
            camera=str(entry.get("camera") or ""),
            time=parse_time(entry["time"]),
            details=dict(entry.get("details") or {}),
        )
    except (KeyError, TypeError, ValueError, VideoError):
        return None


class VideoIndex:
    """Segments and recorder events of an archive, indexed by station and camera.

    Build it with :meth:`from_archive`; :meth:`refresh` reads only the entries appended since
    (by this process or another), so a long-running reader stays current cheaply.
    """

    def __init__(self, archive: EvidenceArchive) -> None:
        self.archive = archive
        self._lock = threading.RLock()
        self._next = 0
        self._segments: list[Segment] = []
        self._by_sha: dict[str, Segment] = {}
        self._blurred: dict[str, Segment] = {}
        self._events: list[VideoEvent] = []
        self._cameras: dict[str, set[str]] = {}

    @classmethod
    def from_archive(cls, archive: EvidenceArchive) -> VideoIndex:
        """The index of every segment and video event in ``archive``'s log."""
        index = cls(archive)
        index.refresh()
        return index

    def refresh(self) -> int:
        """Read entries appended since the last refresh; returns the log size read up to."""
        with self._lock:
            for position, entry in self.archive.entries(self._next):
                self._add(position, entry)
                self._next = position + 1
            return self._next

    def _add(self, position: int, entry: dict[str, Any]) -> None:
        segment = _segment_from_entry(position, entry)
        if segment is not None:
            self._segments.append(segment)
            self._by_sha.setdefault(segment.sha256, segment)
            if segment.copy == "blurred" and segment.source_item:
                self._blurred[segment.source_item] = segment  # the newest wins
            self._cameras.setdefault(segment.station, set()).add(segment.camera)
            return
        event = _event_from_entry(position, entry)
        if event is not None:
            self._events.append(event)
            if event.camera:
                self._cameras.setdefault(event.station, set()).add(event.camera)
            else:
                self._cameras.setdefault(event.station, set())

    # --- lookups ---------------------------------------------------------------------------
    def stations(self) -> list[str]:
        """Every station with a segment or an event, sorted."""
        self.refresh()
        return sorted(self._cameras)

    def cameras(self, station: str) -> list[str]:
        """The cameras of a station (VideoError when the station is unknown)."""
        self.refresh()
        self._check_station(station)
        return sorted(self._cameras[station])

    def _check_station(self, station: str) -> None:
        if station not in self._cameras:
            known = ", ".join(sorted(self._cameras)[:10]) or "none yet"
            raise VideoError(
                f"unknown station {station!r}: no video recorded for it",
                hint=f"known stations: {known}; see 'pollwatch video segments'",
            )

    def _check_camera(self, station: str, camera: str) -> None:
        self._check_station(station)
        if camera not in self._cameras[station]:
            known = ", ".join(sorted(self._cameras[station])) or "none yet"
            raise VideoError(
                f"unknown camera {camera!r} at station {station!r}",
                hint=f"cameras there: {known}; see 'pollwatch video segments --station {station}'",
            )

    def segments(
        self,
        station: str | None = None,
        camera: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        copy: str | None = "original",
    ) -> list[Segment]:
        """Segments in log order, filtered by station, camera, time window [start, end) and copy.

        ``copy`` is ``"original"`` (default), ``"blurred"``, or None for both. An unknown
        station or camera raises VideoError.
        """
        self.refresh()
        if copy is not None and copy not in COPIES:
            raise VideoError(f"unknown copy {copy!r}", hint="use 'original' or 'blurred'")
        if camera is not None and station is None:
            raise VideoError("a camera is named without its station", hint="give the station too")
        if station is not None:
            if camera is None:
                self._check_station(station)
            else:
                self._check_camera(station, camera)
        low = parse_time(start) if start is not None else None
        high = parse_time(end) if end is not None else None
        return [
            s
            for s in self._segments
            if (station is None or s.station == station)
            and (camera is None or s.camera == camera)
            and (copy is None or s.copy == copy)
            and s.overlaps(low, high)
        ]

    def segment(self, sha256: str) -> Segment:
        """The segment with this hash (a unique prefix of 8+ hex digits is enough)."""
        self.refresh()
        wanted = sha256.strip().lower()
        found = self._by_sha.get(wanted)
        if found is not None:
            return found
        matches = {s for k, s in self._by_sha.items() if k.startswith(wanted)}
        if len(wanted) >= 8 and len(matches) == 1:
            return matches.pop()
        if len(wanted) >= 8 and len(matches) > 1:
            raise VideoError(f"segment prefix {sha256!r} is ambiguous", hint="give more digits")
        raise VideoError(
            f"{sha256!r} is not a video segment in the archive",
            hint="see 'pollwatch video segments' for the segments (8 or more hex digits)",
        )

    def blurred_copy(self, sha256: str) -> Segment | None:
        """The newest blurred copy of an original segment, or None when there is none."""
        original = self.segment(sha256)
        return self._blurred.get(original.sha256)

    def events(self, station: str | None = None, camera: str | None = None) -> list[VideoEvent]:
        """Recorder events in log order, filtered by station and camera.

        Events without a camera (a whole station's) are included in a camera's list.
        """
        self.refresh()
        if station is not None:
            if camera is None:
                self._check_station(station)
            else:
                self._check_camera(station, camera)
        return [
            e
            for e in self._events
            if (station is None or e.station == station)
            and (camera is None or e.camera in (camera, ""))
        ]

    def gaps(self, station: str, camera: str) -> list[Gap]:
        """Holes of more than :data:`GAP_TOLERANCE` s between a camera's consecutive originals.

        Segments are taken in capture-time order; the reason lists the distinct events logged
        for the camera whose time or span falls between the start of the segment before the
        hole and the start of the one after it, in log order.
        """
        segments = sorted(self.segments(station, camera), key=lambda s: (s.start, s.index))
        events = self.events(station, camera)
        slack = timedelta(seconds=GAP_TOLERANCE)
        found = []
        for before, after in itertools.pairwise(segments):
            if (after.start - before.end).total_seconds() <= GAP_TOLERANCE:
                continue
            names: list[str] = []
            for event in events:
                low, high = event.span()
                # From the start of the segment before: an outage is often noticed as that
                # segment closes, a fraction of a second before its (estimated) end.
                inside = high > before.start and low <= after.start + slack
                if inside and event.event not in names:
                    names.append(event.event)
            found.append(
                Gap(
                    station=station,
                    camera=camera,
                    start=before.end,
                    end=after.start,
                    reason=", ".join(names) if names else "unexplained",
                )
            )
        return found

    def verify_chain(self, station: str, camera: str) -> list[str]:
        """Every break in a camera's chain of originals, in words; ``[]`` when it is intact.

        Checks, in log order: sequences run 0, 1, 2, ... (a hole is a missing segment, a repeat
        an inserted one, a step back a reordering); each ``previous`` is the hash of the segment
        before it (null for the first); start times never go backwards; no segment is
        recorded twice.
        """
        segments = self.segments(station, camera)
        return _chain_problems(segments)


def _chain_problems(segments: Iterable[Segment]) -> list[str]:
    problems: list[str] = []
    expected_sequence = 0
    previous: Segment | None = None
    seen: dict[str, Segment] = {}
    for segment in segments:
        where = f"segment {segment.sequence} (entry {segment.index}, {segment.sha256[:12]})"
        if segment.sha256 in seen:
            problems.append(
                f"{where} repeats the segment of entry {seen[segment.sha256].index} "
                "(inserted twice)"
            )
        seen.setdefault(segment.sha256, segment)
        if segment.sequence > expected_sequence:
            missing = (
                f"{expected_sequence}"
                if segment.sequence == expected_sequence + 1
                else f"{expected_sequence}-{segment.sequence - 1}"
            )
            problems.append(f"{where}: segment(s) {missing} missing before it")
        elif segment.sequence < expected_sequence:
            problems.append(
                f"{where} comes after segment {expected_sequence - 1} in the log "
                "(reordered or inserted)"
            )
        wanted_previous = previous.sha256 if previous is not None else None
        if segment.previous != wanted_previous:
            if wanted_previous is None:
                problems.append(
                    f"{where} names a previous segment "
                    f"{str(segment.previous)[:12]} but is the camera's first"
                )
            elif segment.previous is None:
                problems.append(
                    f"{where} names no previous segment but follows "
                    f"{wanted_previous[:12]} (chain restarted)"
                )
            else:
                problems.append(
                    f"{where} names previous {segment.previous[:12]}, but the segment before "
                    f"it in the log is {wanted_previous[:12]}"
                )
        if previous is not None and segment.start < previous.start:
            problems.append(
                f"{where} starts at {format_time(segment.start)}, before the segment before it "
                f"({format_time(previous.start)})"
            )
        expected_sequence = max(expected_sequence, segment.sequence + 1)
        previous = segment
    return problems
