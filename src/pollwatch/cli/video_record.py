"""``pollwatch video record|simulate-camera|segments|timeline|verify-chain``.

Recording cameras into the evidence archive, simulated cameras for tests and demos, and the
segment index (segments, gaps, events, per-camera hash chains) on the terminal.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pollwatch.errors import EvidenceError, VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.fileio import atomic_write_text
from pollwatch.video.folders import private_folder
from pollwatch.video.manifest import (
    CameraSource,
    StationManifest,
    check_id,
    check_url,
    load_manifest,
)
from pollwatch.video.recorder import Recorder, RecorderNotice
from pollwatch.video.segments import GAP_TOLERANCE, Segment, VideoIndex, format_time
from pollwatch.video.simulator import SimulatedCamera, generate_clip

from .state import settings as _settings
from .state import unfolded_console as console
from .state import unfolded_err_console as err_console

__all__ = ["register"]


def register(video_app: typer.Typer) -> None:
    """Add this module's commands to ``pollwatch video``."""
    video_app.command("record")(record_command)
    video_app.command("simulate-camera")(simulate_camera_command)
    video_app.command("segments")(segments_command)
    video_app.command("timeline")(timeline_command)
    video_app.command("verify-chain")(verify_chain_command)


def _short_time(moment: datetime) -> str:
    return format_time(moment).replace("T", " ")


# --- record --------------------------------------------------------------------------------
def _sources(
    url: str | None, station: str | None, camera: str | None, manifests: list[Path]
) -> list[CameraSource]:
    """The cameras to record, from the arguments or the manifests (rules in the docs)."""
    if manifests:
        if url is not None or camera is not None:
            raise VideoError(
                "give either --manifest or --camera with a URL, not both",
                hint="a manifest lists the station's cameras and their URLs",
            )
        loaded: list[StationManifest] = [load_manifest(path) for path in manifests]
        stations = [m.station for m in loaded]
        duplicated = sorted({s for s in stations if stations.count(s) > 1})
        if duplicated:
            raise VideoError(f"station {duplicated[0]!r} is declared by two manifests")
        if station is not None:
            chosen = [m for m in loaded if m.station == station]
            if not chosen:
                raise VideoError(
                    f"unknown station {station!r}: the manifest declares {', '.join(stations)}",
                    hint="--station must be a station declared by --manifest (or leave it out)",
                )
            loaded = chosen
        return [source for m in loaded for source in m.cameras]
    if station is None or camera is None or url is None:
        raise VideoError(
            "give --station, --camera and the camera's URL (or --manifest FILE)",
            hint="e.g. pollwatch video record --station PS-1 --camera door http://HOST/stream.ts",
        )
    return [
        CameraSource(
            station=check_id(station, "station"),
            camera=check_id(camera, "camera"),
            url=check_url(url),
        )
    ]


def record_command(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Argument(help="The camera's stream URL (HTTP MPEG-TS, HLS or RTSP).")
    ] = None,
    station: Annotated[
        str | None,
        typer.Option(help="Station id (with --manifest: record only this declared station)."),
    ] = None,
    camera: Annotated[str | None, typer.Option(help="Camera id (with a URL).")] = None,
    manifest: Annotated[
        list[Path] | None,
        typer.Option(help="Station manifest (TOML); repeat to record several stations."),
    ] = None,
    segment_seconds: Annotated[
        float, typer.Option(help="Segment length in seconds (cut at the next keyframe).")
    ] = 60.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until stopped).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Print only events and errors.")] = False,
) -> None:
    """Record cameras into the evidence archive, one segment at a time, until stopped.

    Ctrl-C or SIGTERM closes the open segments cleanly; a killed recorder loses at most its
    open segments, which the next start archives as partial or logs as lost.
    """
    settings = _settings(ctx)
    sources = _sources(url, station, camera, manifest or [])
    archive = EvidenceArchive(settings.evidence_dir)

    def show(notice: RecorderNotice) -> None:
        if quiet and notice.kind == "segment":
            return
        style = {"event": "yellow", "retry": "yellow", "error": "red"}.get(notice.kind, "")
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        text = escape(f"{notice.station}/{notice.camera} {notice.text}")
        if notice.kind == "event" and notice.details:
            text += escape(" " + json.dumps(notice.details, sort_keys=True))
        console.print(f"[dim]{stamp}[/] [{style}]{text}[/]" if style else f"[dim]{stamp}[/] {text}")

    recorder = Recorder(
        archive,
        sources,
        spool=settings.video_dir / "spool",
        segment_seconds=segment_seconds,
        submitter=settings.actor or "recorder",
        on_notice=show,
    )

    def on_signal(number: int, frame: FrameType | None) -> None:
        recorder.stop("signal")

    recorder.check_streams()  # one clear line for an unreachable or non-video URL
    recorder.probe = False
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        err_console.print(
            f"recording {len(sources)} camera(s), {segment_seconds:g} s segments, into "
            f"{archive.folder}; Ctrl-C stops cleanly"
        )
        summaries = recorder.run(duration=duration)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        archive.close()
    table = Table(title="Recorded", title_justify="left")
    for column in ("station", "camera", "segments", "recovered", "lost", "outages", "error"):
        table.add_column(column)
    for summary in summaries:
        table.add_row(
            summary.station,
            summary.camera,
            str(summary.segments),
            str(summary.recovered),
            str(summary.lost),
            str(summary.outages),
            escape(summary.error or ""),
        )
    console.print(table)
    if any(s.error for s in summaries):
        raise typer.Exit(1)


# --- simulate-camera -----------------------------------------------------------------------
def simulate_camera_command(
    ctx: typer.Context,
    clip: Annotated[
        Path | None,
        typer.Option(help="An H.264 MPEG-TS clip to play (default: generate a test pattern)."),
    ] = None,
    cameras: Annotated[int, typer.Option(help="How many cameras (consecutive ports).")] = 1,
    port: Annotated[int, typer.Option(help="First port (0: any free ports).")] = 8554,
    width: Annotated[int, typer.Option(help="Generated clip width.")] = 1280,
    height: Annotated[int, typer.Option(help="Generated clip height.")] = 720,
    fps: Annotated[int, typer.Option(help="Generated clip frame rate.")] = 25,
    bitrate: Annotated[str, typer.Option(help="Generated clip bitrate (ffmpeg syntax).")] = "1M",
    keyframe: Annotated[float, typer.Option(help="Seconds between keyframes.")] = 2.0,
    seconds: Annotated[float, typer.Option(help="Generated clip length (it loops).")] = 10.0,
    manifest_out: Annotated[
        Path | None, typer.Option(help="Write a station manifest for these cameras here.")
    ] = None,
    station: Annotated[str, typer.Option(help="Station id written in --manifest-out.")] = "SIM-1",
    duration: Annotated[
        float | None, typer.Option(help="Serve this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Serve a clip as live HTTP MPEG-TS camera streams on 127.0.0.1 (tests and demos)."""
    settings = _settings(ctx)
    if cameras < 1:
        raise VideoError(f"--cameras must be at least 1, got {cameras}")
    check_id(station, "station")
    if clip is None:
        name = f"testsrc2-{width}x{height}-{fps}fps-{bitrate}-kf{keyframe:g}-{seconds:g}s.ts"
        clip = settings.video_dir / "clips" / name
        if not clip.is_file():
            private_folder(clip.parent)  # <home>/video is 0700 whoever makes it first
            err_console.print(f"encoding the test clip {clip} (once)")
            generate_clip(
                clip,
                seconds=seconds,
                width=width,
                height=height,
                fps=fps,
                bitrate=bitrate,
                keyframe=keyframe,
            )
    running = [
        SimulatedCamera(clip, port=0 if port == 0 else port + number).start()
        for number in range(cameras)
    ]
    try:
        if manifest_out is not None:
            lines = [f'[station]\nid = "{station}"\nname = "simulated"\n']
            for number, camera in enumerate(running, start=1):
                lines.append(f'[[cameras]]\nid = "cam{number:03d}"\nurl = "{camera.url}"\n')
            atomic_write_text(manifest_out, "\n".join(lines))
            err_console.print(f"manifest written to {manifest_out}")
        for camera in running:
            console.print(camera.url)
        stop = threading.Event()
        handlers = {
            sig: signal.signal(sig, lambda number, frame: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            stop.wait(duration)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    finally:
        for camera in running:
            camera.stop()


# --- segments, timeline, verify-chain ------------------------------------------------------
@contextlib.contextmanager
def _index(ctx: typer.Context) -> Iterator[VideoIndex]:
    with EvidenceArchive(_settings(ctx).evidence_dir) as archive:
        yield VideoIndex.from_archive(archive)


def _segment_row(segment: Segment) -> list[str]:
    flags = [segment.copy] if segment.copy != "original" else []
    if segment.partial:
        flags.append("partial")
    return [
        str(segment.sequence),
        escape(segment.station),
        escape(segment.camera),
        _short_time(segment.start),
        f"{segment.duration:.1f}",
        f"{segment.size:,}",
        segment.sha256[:16],
        (segment.previous or "-")[:12],
        " ".join(flags),
    ]


def segments_command(
    ctx: typer.Context,
    station: Annotated[str | None, typer.Option(help="Only this station.")] = None,
    camera: Annotated[str | None, typer.Option(help="Only this camera (with --station).")] = None,
    copy: Annotated[str, typer.Option(help="original, blurred or all.")] = "original",
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List recorded segments (sequence, capture time, size, hash, chain link)."""
    with _index(ctx) as index:
        chosen = index.segments(station, camera, copy=None if copy == "all" else copy)
        if as_json:
            for segment in chosen:
                console.print(json.dumps(segment.to_dict(), sort_keys=True), markup=False)
            return
        table = Table(title=f"{len(chosen)} segment(s)", title_justify="left")
        for column in ("seq", "station", "camera", "start (UTC)", "s", "bytes", "sha256",
                       "previous", ""):  # fmt: skip
            table.add_column(column)
        for segment in chosen:
            table.add_row(*_segment_row(segment))
        console.print(table)


def _runs(segments: list[Segment]) -> Iterator[list[Segment]]:
    """Consecutive segments that meet end to start (within :data:`GAP_TOLERANCE`)."""
    run: list[Segment] = []
    for segment in sorted(segments, key=lambda s: (s.start, s.index)):
        if run and (segment.start - run[-1].end).total_seconds() > GAP_TOLERANCE:
            yield run
            run = []
        run.append(segment)
    if run:
        yield run


def timeline_command(
    ctx: typer.Context,
    station: Annotated[str, typer.Argument(help="Station id.")],
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
) -> None:
    """A station's footage over time: recorded spans, gaps and recorder events, per camera."""
    with _index(ctx) as index:
        cameras = [camera] if camera is not None else index.cameras(station)
        for name in cameras:
            rows: list[tuple[datetime, int, list[str]]] = []
            segments = index.segments(station, name)
            for run in _runs(segments):
                rows.append((run[0].start, 0, [
                    _short_time(run[0].start), _short_time(run[-1].end), "recorded",
                    f"{len(run)} segment(s), seq {run[0].sequence}-{run[-1].sequence}"
                    + (", partial" if any(s.partial for s in run) else ""),
                ]))  # fmt: skip
            for gap in index.gaps(station, name):
                rows.append((gap.start, 1, [
                    _short_time(gap.start), _short_time(gap.end), "[red]gap[/]",
                    escape(f"{gap.seconds:.1f} s; {gap.reason}"),
                ]))  # fmt: skip
            for event in index.events(station, name):
                low, high = event.span()
                details = {k: v for k, v in event.details.items() if k not in ("start", "end")}
                rows.append((low, 2, [
                    _short_time(low), _short_time(high) if high != low else "",
                    f"[yellow]{escape(event.event)}[/]",
                    escape(json.dumps(details, sort_keys=True)) if details else "",
                ]))  # fmt: skip
            table = Table(title=f"{escape(station)} / {escape(name)}", title_justify="left")
            for column in ("from (UTC)", "to (UTC)", "what", "details"):
                table.add_column(column)
            for _, _, row in sorted(rows, key=lambda r: (r[0], r[1])):
                table.add_row(*row)
            console.print(table)


def verify_chain_command(
    ctx: typer.Context,
    station: Annotated[str, typer.Argument(help="Station id.")],
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    objects: Annotated[
        bool, typer.Option(help="Also re-hash every segment's stored bytes.")
    ] = False,
) -> None:
    """Check each camera's chain of segments (missing, inserted, reordered); exit 1 if broken."""
    broken = False
    with _index(ctx) as index:
        cameras = [camera] if camera is not None else index.cameras(station)
        for name in cameras:
            segments = index.segments(station, name)
            problems = index.verify_chain(station, name)
            if objects:
                for segment in segments:
                    try:
                        index.archive.objects.verify(segment.sha256)
                    except EvidenceError as error:
                        problems.append(f"segment {segment.sequence}: {error.one_line()}")
            gaps = index.gaps(station, name)
            unexplained = [g for g in gaps if g.reason == "unexplained"]
            label = f"{escape(station)}/{escape(name)}"
            if problems:
                broken = True
                console.print(f"[red]{label}: chain BROKEN[/] ({len(segments)} segments)")
                for problem in problems:
                    console.print(f"  [red]-[/] {escape(problem)}")
            else:
                span = (
                    f", {_short_time(segments[0].start)} to {_short_time(segments[-1].end)}"
                    if segments
                    else ""
                )
                console.print(
                    f"[green]{label}: chain intact[/], {len(segments)} segment(s){span}, "
                    f"{len(gaps)} gap(s) ({len(unexplained)} unexplained)"
                    + (", objects re-hashed" if objects else "")
                )
    if broken:
        raise typer.Exit(1)
