"""``pollwatch video blur | storage | export``: public copies, storage per day, court bundles.

See :mod:`pollwatch.video.privacy` and :mod:`pollwatch.video.retention`; this module only
composes those calls and renders their results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pollwatch.errors import VideoError
from pollwatch.evidence.archive import EvidenceArchive, local_address

from .state import console
from .state import settings as _settings

__all__ = ["register"]


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{count} B"


def blur_command(
    ctx: typer.Context,
    segment: Annotated[
        str | None, typer.Argument(help="An original segment's SHA-256 (8+ hex digits).")
    ] = None,
    station: Annotated[str | None, typer.Option(help="Blur this station's segments.")] = None,
    camera: Annotated[str | None, typer.Option(help="Only this camera (with --station).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only segments overlapping from this time (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only segments overlapping up to this time (ISO 8601).")
    ] = None,
    detections_per_second: Annotated[
        float, typer.Option(min=0.1, help="Face detector runs per second of video.")
    ] = 5.0,
    threshold: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Face detector score threshold.")
    ] = 0.2,
    preset: Annotated[
        str, typer.Option(help="libx264 preset: superfast, or veryfast for smaller files.")
    ] = "superfast",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per segment.")] = False,
) -> None:
    """Make blurred public copies of original segments (skips those already blurred)."""
    from pollwatch.video.privacy import FaceDetector, blur_segment, parse_derivation
    from pollwatch.video.retention import parse_window
    from pollwatch.video.segments import VideoIndex

    if (segment is None) == (station is None):
        raise VideoError(
            "name one segment or a --station, not both or neither",
            hint="e.g. 'pollwatch video blur --station 77-1234 --since ... --until ...'",
        )
    if (since is None) != (until is None):
        raise VideoError("give --since and --until together", hint="or neither, for all footage")
    settings = _settings(ctx)
    with EvidenceArchive(settings.evidence_dir) as archive:
        index = VideoIndex.from_archive(archive)
        if segment is not None:
            segments = [index.segment(segment)]
        else:
            assert station is not None
            window = parse_window(since, until) if since and until else (None, None)
            segments = index.segments(station, camera, window[0], window[1])
            if not segments:
                raise VideoError(
                    f"no original segment of station {station!r} in that window",
                    hint="see 'pollwatch video segments --station " + station + "'",
                )
        detector = FaceDetector(threshold=threshold)
        for original in segments:
            existing = index.blurred_copy(original.sha256)
            made_by = parse_derivation(existing.derivation if existing else None)
            if existing is not None and made_by.get("detector") == detector.version:
                if not as_json:
                    console.print(
                        f"{original.sha256[:12]}  already blurred -> {existing.sha256[:12]}"
                    )
                continue
            copy = blur_segment(
                archive,
                original.sha256,
                actor=settings.actor,
                address=local_address(),
                detector=detector,
                detections_per_second=detections_per_second,
                preset=preset,
            )
            custody = archive.custody_of(original.sha256)
            details = custody[-1].details if custody else {}
            if as_json:
                typer.echo(
                    json.dumps(
                        {"original": original.to_dict(), "blurred": copy.to_dict(), **details}
                    )
                )
            else:
                console.print(
                    f"{original.sha256[:12]}  {escape(original.station)}/{escape(original.camera)}"
                    f"  -> {copy.sha256[:12]}  {details.get('frames_blurred', '?')} of "
                    f"{details.get('frames', '?')} frames with faces blurred",
                    soft_wrap=True,
                )


def storage_command(
    ctx: typer.Context,
    station: Annotated[str | None, typer.Option(help="Only this station.")] = None,
    by_camera: Annotated[
        bool, typer.Option("--by-camera/--by-day", help="One row per camera, or per day.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Rows as JSON.")] = False,
) -> None:
    """Bytes and hours of footage stored per station and day (originals kept without end)."""
    from pollwatch.video.retention import storage_report
    from pollwatch.video.segments import VideoIndex

    with EvidenceArchive(_settings(ctx).evidence_dir) as archive:
        rows = storage_report(
            VideoIndex.from_archive(archive), station=station, by_camera=by_camera
        )
    if as_json:
        console.print_json(json.dumps([row.to_dict() for row in rows]))
        return
    table = Table(title="Video storage (originals are kept without end)")
    for column in ("station", "day (UTC)", "camera", "originals", "hours", "blurred", "hours"):
        table.add_column(column, justify="left" if column in ("station", "camera") else "right")
    for row in rows:
        table.add_row(
            escape(row.station),
            row.day,
            escape(row.camera),
            f"{_size(row.original_bytes)} ({row.original_segments})",
            f"{row.original_hours:.2f}",
            f"{_size(row.blurred_bytes)} ({row.blurred_segments})",
            f"{row.blurred_hours:.2f}",
        )
    console.print(table)
    total = sum(row.total_bytes for row in rows)
    console.print(f"total {_size(total)} in {len(rows)} rows")


def export_command(
    ctx: typer.Context,
    station: Annotated[str, typer.Option(help="The polling station.")],
    since: Annotated[str, typer.Option(help="Window start (ISO 8601; no zone means UTC).")],
    until: Annotated[str, typer.Option(help="Window end (ISO 8601), after --since.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle (.zip).")],
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    blurred: Annotated[
        bool, typer.Option("--blurred", help="Export the blurred copies instead of originals.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why it is exported (recorded; default names the window).")
    ] = None,
    witness_dir: Annotated[
        list[Path] | None,
        typer.Option(help="A witness folder whose witness cosigns the bundle's checkpoint."),
    ] = None,
) -> None:
    """Write a court bundle of a station's segments overlapping a time window."""
    from pollwatch.video.retention import export_window

    from .evidence import _load_witness

    settings = _settings(ctx)
    witnesses = [_load_witness(folder) for folder in witness_dir or []]
    with EvidenceArchive(settings.evidence_dir) as archive:
        result = export_window(
            archive,
            output,
            station=station,
            since=since,
            until=until,
            camera=camera,
            blurred=blurred,
            actor=settings.actor,
            address=local_address(),
            reason=reason,
            timestamp_authorities=settings.timestamp_authorities,
            witnesses=witnesses,
        )
    hours = sum(s.duration for s in result.segments) / 3600
    console.print(
        f"wrote {escape(str(output))}: {len(result.segments)} {result.copy} segment(s), "
        f"{hours:.2f} h of footage, {len(result.bundle.checks)} checks passed; verify it with "
        f"'pollwatch evidence verify {escape(str(output))} --trust KEYS'",
        soft_wrap=True,
    )


def register(video_app: typer.Typer) -> None:
    """Add this module's commands to ``pollwatch video``."""
    video_app.command("blur")(blur_command)
    video_app.command("storage")(storage_command)
    video_app.command("export")(export_command)
