"""Retention, storage per station and day, and court bundles for a station and time window.

Retention: original segments are kept without end, and so are blurred copies. pollwatch has no
API, command or setting that deletes an archived item: objects are content-addressed and
write-once (:mod:`pollwatch.evidence.objects`), and the log that names them is append-only, so a
deletion would show as an object missing from storage when the archive is verified. Removing
footage at the end of a legal retention period is an operator's decision taken outside
pollwatch (and leaves the log entries, which hold hashes and times, not images).

:func:`storage_report` adds up bytes and hours of footage per station, day (UTC date of a
segment's start) and camera, originals and blurred copies apart. :func:`export_window` writes a
court bundle (:func:`pollwatch.evidence.bundle.export_bundle`) holding exactly the segments of a
station that overlap a time window, so that ``pollwatch evidence verify`` checks it offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pollwatch.errors import VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.evidence.bundle import BundleReport, export_bundle
from pollwatch.evidence.checkpoint import Witness
from pollwatch.video.segments import Segment, VideoEvent, VideoIndex, format_time, parse_time

__all__ = [
    "StorageRow",
    "WindowExport",
    "export_window",
    "parse_window",
    "storage_report",
    "window_segments",
]


@dataclass(frozen=True)
class StorageRow:
    """Footage stored for one station, day and camera (``"*"``: all cameras of that day).

    ``day`` is the UTC date on which segments start (a segment crossing midnight counts for the
    day it starts). Bytes are those of distinct archived files; hours are the segments' stated
    durations.
    """

    station: str
    day: str
    camera: str
    original_segments: int
    original_bytes: int
    original_hours: float
    blurred_segments: int
    blurred_bytes: int
    blurred_hours: float

    @property
    def total_bytes(self) -> int:
        """Originals and blurred copies together."""
        return self.original_bytes + self.blurred_bytes

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (with ``total_bytes``)."""
        return {**asdict(self), "total_bytes": self.total_bytes}


def storage_report(
    index: VideoIndex, *, station: str | None = None, by_camera: bool = True
) -> list[StorageRow]:
    """Rows of stored bytes and footage hours per station, day and camera, sorted.

    With ``by_camera=False`` each station and day is one row (camera ``"*"``). An unknown
    ``station`` raises :class:`~pollwatch.errors.VideoError`.
    """
    totals: dict[tuple[str, str, str], dict[str, float]] = {}
    seen: set[tuple[str, str, str, str]] = set()
    for segment in index.segments(station, copy=None):
        day = segment.start.date().isoformat()
        camera = segment.camera if by_camera else "*"
        key = (segment.station, day, camera)
        if (*key, segment.sha256) in seen:
            continue  # the same file entered twice is stored once
        seen.add((*key, segment.sha256))
        row = totals.setdefault(key, {})
        kind = "blurred" if segment.copy == "blurred" else "original"
        row[f"{kind}_segments"] = row.get(f"{kind}_segments", 0) + 1
        row[f"{kind}_bytes"] = row.get(f"{kind}_bytes", 0) + segment.size
        row[f"{kind}_hours"] = row.get(f"{kind}_hours", 0.0) + segment.duration / 3600.0
    return [
        StorageRow(
            station=key[0],
            day=key[1],
            camera=key[2],
            original_segments=int(values.get("original_segments", 0)),
            original_bytes=int(values.get("original_bytes", 0)),
            original_hours=round(values.get("original_hours", 0.0), 6),
            blurred_segments=int(values.get("blurred_segments", 0)),
            blurred_bytes=int(values.get("blurred_bytes", 0)),
            blurred_hours=round(values.get("blurred_hours", 0.0), 6),
        )
        for key, values in sorted(totals.items())
    ]


def parse_window(since: str | datetime, until: str | datetime) -> tuple[datetime, datetime]:
    """``(since, until)`` as aware UTC datetimes; VideoError naming the bad one, or an empty
    or reversed window."""
    bounds = []
    for name, value in (("since", since), ("until", until)):
        try:
            bounds.append(parse_time(value))
        except VideoError:
            raise VideoError(
                f"--{name} {value!r} is not an ISO 8601 time",
                hint="e.g. 2026-11-28T08:00:00Z (a time without zone is taken as UTC)",
            ) from None
    low, high = bounds
    if high <= low:
        raise VideoError(
            f"the window is empty: --until {format_time(high)} is not after "
            f"--since {format_time(low)}",
            hint="give an --until later than --since",
        )
    return low, high


@dataclass(frozen=True)
class WindowExport:
    """A written court bundle and the segments it holds."""

    bundle: BundleReport
    segments: tuple[Segment, ...]
    station: str
    since: datetime
    until: datetime
    copy: str
    events: tuple[VideoEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: bundle path, window, copy and the segments' hashes."""
        return {
            "bundle": self.bundle.path,
            "station": self.station,
            "since": format_time(self.since),
            "until": format_time(self.until),
            "copy": self.copy,
            "segments": [s.to_dict() for s in self.segments],
            "events": [
                {
                    "index": e.index,
                    "event": e.event,
                    "camera": e.camera,
                    "time": format_time(e.time),
                }
                for e in self.events
            ],
            "checks": len(self.bundle.checks),
        }


def window_segments(
    index: VideoIndex,
    *,
    station: str,
    since: datetime,
    until: datetime,
    camera: str | None = None,
    blurred: bool = False,
) -> list[Segment]:
    """The original segments of a station (or one camera) that overlap [since, until), or
    their blurred copies (VideoError when one is missing); VideoError when there are none."""
    originals = index.segments(station, camera, since, until, copy="original")
    if not originals:
        every = index.segments(station, camera, copy="original")
        recorded = (
            f"footage of {station} runs from {format_time(min(s.start for s in every))} to "
            f"{format_time(max(s.end for s in every))}"
            if every
            else f"no original segment of {station} is archived"
        )
        raise VideoError(
            f"no segment of station {station!r}"
            + (f" camera {camera!r}" if camera else "")
            + f" overlaps {format_time(since)} to {format_time(until)}",
            hint=recorded,
        )
    if not blurred:
        return originals
    copies = []
    for original in originals:
        copy = index.blurred_copy(original.sha256)
        if copy is None:
            raise VideoError(
                f"segment {original.sha256[:12]} ({original.camera}, "
                f"{format_time(original.start)}) has no blurred copy",
                hint=f"run 'pollwatch video blur --station {station} --since "
                f"{format_time(since)} --until {format_time(until)}' first",
            )
        copies.append(copy)
    return copies


def export_window(
    archive: EvidenceArchive,
    output: Path,
    *,
    station: str,
    since: str | datetime,
    until: str | datetime,
    actor: str,
    address: str,
    camera: str | None = None,
    blurred: bool = False,
    reason: str | None = None,
    timestamp_authorities: Sequence[str] = (),
    witnesses: Sequence[Witness] = (),
) -> WindowExport:
    """Write a court bundle of exactly the segments of ``station`` overlapping [since, until).

    Originals by default; with ``blurred`` their blurred copies instead (each names its
    original as ``source_item``). The bundle is the evidence archive's
    (:func:`~pollwatch.evidence.bundle.export_bundle`): it records one ``export`` custody entry
    per segment, signs a checkpoint over them, and verifies offline with
    ``pollwatch evidence verify``. The recorder events of the station (or camera) whose time
    overlaps the window (outages, reconnects, gaps, lost segments, recorder start and stop) are
    proven in the bundle too, so a court sees where footage is missing and why.
    """
    low, high = parse_window(since, until)
    index = VideoIndex.from_archive(archive)
    segments = window_segments(
        index, station=station, since=low, until=high, camera=camera, blurred=blurred
    )
    copy = "blurred" if blurred else "original"
    events = [
        event
        for event in index.events(station, camera)
        if event.span()[0] < high and event.span()[1] >= low
    ]
    report = export_bundle(
        archive,
        [s.sha256 for s in segments],
        Path(output),
        actor=actor,
        address=address,
        reason=reason
        or f"court export: station {station}, {format_time(low)} to {format_time(high)}, {copy}",
        timestamp_authorities=timestamp_authorities,
        witnesses=witnesses,
        entries=[event.index for event in events],
    )
    return WindowExport(
        bundle=report,
        segments=tuple(segments),
        station=station,
        since=low,
        until=high,
        copy=copy,
        events=tuple(events),
    )
