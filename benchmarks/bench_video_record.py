"""Recording many cameras at once: dropped segments and CPU per camera, against plain ffmpeg.

Setup: one generated 720p clip (testsrc2 + clock, H.264, 25 fps, 1 Mbit/s, a keyframe every
2 s), served as N live HTTP MPEG-TS cameras by ``pollwatch video simulate-camera`` in a
separate process (its CPU is not counted on either side).

1. pollwatch: a :class:`~pollwatch.video.recorder.Recorder` of the N cameras in this process for
   ``--seconds`` (fixed-length segments, each hashed into an evidence archive and chained as it
   closes). Counted: this process's CPU (Python: hashing, archiving, bookkeeping) plus its
   reaped children's (the ffmpeg recorders), from ``getrusage``; the start-up probes (one
   ffprobe per camera) are reported apart, as a one-off cost.
2. reference: N plain ``ffmpeg -i URL -c copy -f segment`` processes (same segment muxer and
   fragmented-MP4 options), no hashing, no archive, for the same time. Counted: their CPU.

Reported: segments expected vs archived (expected: the recorded span of each camera divided by
the segment length, rounded up; "no drops" also needs every chain intact, no gap, no outage),
CPU seconds per camera per minute of footage on each side (footage from the segment muxer's
offsets on both sides), and the ratio.

Usage: ``python benchmarks/bench_video_record.py [--cameras 50] [--seconds 75]
[--segment-seconds 10]``. Results go to ``benchmarks/results/video_record.json``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, write_results
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.video.manifest import load_manifest
from pollwatch.video.recorder import SEGMENT_FORMAT_OPTIONS, Recorder
from pollwatch.video.segments import VideoIndex
from pollwatch.video.simulator import ffmpeg_path, generate_clip


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def start_cameras(clip: Path, count: int, work: Path, seconds: float) -> subprocess.Popen[str]:
    manifest = work / "station.toml"
    process = subprocess.Popen(
        [sys.executable, "-m", "pollwatch", "--home", str(work / "sim-home"), "video",
         "simulate-camera", "--clip", str(clip), "--cameras", str(count), "--port", "0",
         "--station", "BENCH", "--manifest-out", str(manifest), "--duration", f"{seconds}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not manifest.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the simulated cameras did not start: {process.stderr}")
        time.sleep(0.1)
    return process


def bench_pollwatch(work: Path, seconds: float, segment: float) -> dict[str, object]:
    station = load_manifest(work / "station.toml")
    archive = EvidenceArchive.init(work / "evidence", "bench/video")
    recorder = Recorder(
        archive, station.cameras, spool=work / "spool", segment_seconds=segment, submitter="bench"
    )
    # Start-up: one ffprobe per camera (a one-off, reported apart from the per-minute cost).
    probe_before = cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN)
    recorder.check_streams()
    probe_cpu = cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN) - probe_before
    recorder.probe = False
    self_before, children_before = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    summaries = recorder.run(duration=seconds)
    wall = time.perf_counter() - wall
    python_cpu = cpu(resource.RUSAGE_SELF) - self_before
    ffmpeg_cpu = cpu(resource.RUSAGE_CHILDREN) - children_before
    index = VideoIndex.from_archive(archive)
    expected = archived = 0
    broken: list[str] = []
    gaps = 0
    footage = 0.0
    for source in station.cameras:
        segments = index.segments(source.station, source.camera)
        archived += len(segments)
        if segments:
            span = (segments[-1].end - segments[0].start).total_seconds()
            expected += math.ceil(span / segment - 1e-6)
            footage += sum(s.duration for s in segments)
        broken += [
            f"{source.camera}: {p}" for p in index.verify_chain(source.station, source.camera)
        ]
        gaps += len(index.gaps(source.station, source.camera))
    outages = sum(s.outages for s in summaries)
    outage_details = [
        f"{e.camera} {e.time:%H:%M:%S} {e.details.get('error')}"
        for e in index.events()
        if e.event == "outage"
    ]
    errors = [s.error for s in summaries if s.error]
    cameras = len(station.cameras)
    minutes = footage / 60.0
    total = python_cpu + ffmpeg_cpu
    return {
        "cameras": cameras,
        "wall_seconds": round(wall, 1),
        "segments_expected": expected,
        "segments_archived": archived,
        "chain_problems": broken[:10],
        "gaps": gaps,
        "outages": outages,
        "outage_details": outage_details[:10],
        "errors": errors,
        "footage_minutes": round(minutes, 2),
        "cpu_seconds_startup_probes": round(probe_cpu, 2),
        "cpu_seconds_python": round(python_cpu, 2),
        "cpu_seconds_ffmpeg": round(ffmpeg_cpu, 2),
        "cpu_seconds_per_camera_minute": round(total / minutes, 4) if minutes else None,
        "python_share": round(python_cpu / total, 3) if total else None,
        "archive_bytes": sum(r.size for r in archive.items()),
    }


def bench_reference(work: Path, seconds: float, segment: float) -> dict[str, object]:
    station = load_manifest(work / "station.toml")
    ffmpeg = ffmpeg_path()
    processes = []
    before = cpu(resource.RUSAGE_CHILDREN)
    for source in station.cameras:
        folder = work / "reference" / source.camera
        folder.mkdir(parents=True)
        command = [
            ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-analyzeduration", "1000000", "-probesize", "1000000", "-i", source.url,
            "-map", "0:v:0", "-c", "copy", "-f", "segment", "-segment_time", f"{segment:g}",
            "-segment_format", "mp4", "-segment_format_options",
            SEGMENT_FORMAT_OPTIONS, "-segment_list", str(folder / "list.csv"),
            "-segment_list_type", "csv", str(folder / "%06d.mp4"),
        ]  # fmt: skip
        processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL))
    time.sleep(seconds)
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        process.wait(timeout=60)
    ffmpeg_cpu = cpu(resource.RUSAGE_CHILDREN) - before
    files = sorted((work / "reference").rglob("*.mp4"))
    # The segment muxer's own list gives each segment's offsets, as the recorder reads them.
    footage = 0.0
    for listing in (work / "reference").rglob("list.csv"):
        for row in csv.reader(listing.read_text().splitlines()):
            footage += float(row[2]) - float(row[1])
    minutes = footage / 60.0
    return {
        "cameras": len(processes),
        "segments": len(files),
        "footage_minutes": round(minutes, 2),
        "cpu_seconds_ffmpeg": round(ffmpeg_cpu, 2),
        "cpu_seconds_per_camera_minute": round(ffmpeg_cpu / minutes, 4) if minutes else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=75.0)
    parser.add_argument("--segment-seconds", type=float, default=10.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-video-", dir=args.workdir or RESULTS))
    try:
        clip = generate_clip(
            work / "clip-720p.ts", seconds=10, width=1280, height=720, fps=25, bitrate="1M"
        )
        serving = args.seconds * 2 + 120
        cameras = start_cameras(clip, args.cameras, work, serving)
        try:
            load_before = os.getloadavg()[0]
            ours = bench_pollwatch(work, args.seconds, args.segment_seconds)
            reference = bench_reference(work, args.seconds, args.segment_seconds)
            load_after = os.getloadavg()[0]
        finally:
            cameras.terminate()
            cameras.wait(timeout=60)
        ratio = None
        if ours["cpu_seconds_per_camera_minute"] and reference["cpu_seconds_per_camera_minute"]:
            ratio = round(
                float(ours["cpu_seconds_per_camera_minute"])  # type: ignore[arg-type]
                / float(reference["cpu_seconds_per_camera_minute"]),  # type: ignore[arg-type]
                2,
            )
        result = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_average_before_after": [round(load_before, 2), round(load_after, 2)],
            "clip": "1280x720 25 fps H.264 1 Mbit/s, keyframe every 2 s",
            "seconds": args.seconds,
            "segment_seconds": args.segment_seconds,
            "pollwatch": ours,
            "reference_plain_ffmpeg": reference,
            "cpu_ratio_pollwatch_to_reference": ratio,
        }
        write_results("video_record", result)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
