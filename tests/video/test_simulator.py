"""The simulated camera: a real ffmpeg stream on 127.0.0.1 that can drop and come back."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pollwatch.errors import VideoError
from pollwatch.video.manifest import load_manifest
from pollwatch.video.recorder import probe_stream
from pollwatch.video.simulator import SimulatedCamera, generate_clip


def _ffprobe(path: Path | str, *entries: str) -> dict[str, object]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", *entries, "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_generated_clip_has_the_asked_format(test_clip: Path) -> None:
    info = _ffprobe(
        test_clip, "-show_entries", "stream=codec_name,width,height,r_frame_rate:format=duration"
    )
    [stream] = info["streams"]  # type: ignore[misc]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 640, 360)
    assert stream["r_frame_rate"] == "10/1"
    assert abs(float(info["format"]["duration"]) - 6.0) < 0.2  # type: ignore[index]
    # A keyframe every second (10 frames): the recorder cuts segments at keyframes.
    packets = _ffprobe(test_clip, "-show_entries", "packet=pts_time,flags")["packets"]
    keys = [float(p["pts_time"]) for p in packets if "K" in p["flags"]]  # type: ignore[union-attr]
    assert len(keys) == 6
    assert all(abs((b - a) - 1.0) < 0.01 for a, b in itertools.pairwise(keys))


def test_generate_clip_refuses_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="positive"):
        generate_clip(tmp_path / "x.ts", seconds=0)
    with pytest.raises(VideoError, match="no clip"):
        SimulatedCamera(tmp_path / "missing.ts")


def test_camera_streams_live_video_to_several_clients(camera: SimulatedCamera) -> None:
    info = probe_stream(camera.url)
    assert (info.codec, info.width, info.height, info.audio) == ("h264", 640, 360, False)
    # Two clients at once, each for 7 s of stream: more than the 6 s clip, so it loops.
    outputs = [Path(camera.clip).with_name(f"client-{n}-{os.getpid()}.ts") for n in (1, 2)]
    clients = [
        subprocess.Popen(
            ["ffmpeg", "-v", "error", "-y", "-i", camera.url, "-t", "7", "-c", "copy", str(out)]
        )
        for out in outputs
    ]
    assert [c.wait(timeout=60) for c in clients] == [0, 0]
    for out in outputs:
        duration = float(_ffprobe(out, "-show_entries", "format=duration")["format"]["duration"])  # type: ignore[index]
        assert duration > 6.5
        out.unlink()
    assert camera.connections >= 3  # the probe and the two clients


def test_other_paths_get_404(camera: SimulatedCamera) -> None:
    with socket.create_connection(("127.0.0.1", camera.port), timeout=5) as conn:
        conn.sendall(b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(64).startswith(b"HTTP/1.1 404")


def test_drop_ends_streams_and_refuses_then_restore(camera: SimulatedCamera) -> None:
    port = camera.port
    client = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", camera.url, "-c", "copy", "-f", "null", "-"],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while camera.streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert camera.streams == 1
    camera.drop()
    client.wait(timeout=20)  # the stream ended for the connected client
    assert not camera.live and camera.streams == 0
    with pytest.raises(VideoError, match=r"cannot reach .*refused"):
        probe_stream(camera.url, timeout=5)
    camera.restore()
    assert camera.port == port
    assert probe_stream(camera.url).codec == "h264"


def test_simulate_camera_command_serves_and_writes_a_manifest(
    home: Path, tmp_path: Path, test_clip: Path
) -> None:
    manifest = tmp_path / "station.toml"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "pollwatch", "video", "simulate-camera", "--clip",
            str(test_clip), "--cameras", "2", "--port", "0", "--station", "PS-7",
            "--manifest-out", str(manifest), "--duration", "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not manifest.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        station = load_manifest(manifest)
        assert station.station == "PS-7"
        assert [c.camera for c in station.cameras] == ["cam001", "cam002"]
        assert len({c.url for c in station.cameras}) == 2
        for source in station.cameras:
            assert probe_stream(source.url).codec == "h264"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
