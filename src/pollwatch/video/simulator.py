"""A simulated polling-station camera: a real ffmpeg process serving a clip as a live stream.

* :func:`generate_clip` encodes a test clip ONCE (ffmpeg's ``testsrc2`` pattern with a running
  clock drawn on it when the ``drawtext`` filter is available; H.264 in MPEG-TS, constant
  bitrate, a keyframe every ``keyframe`` seconds, no B-frames).
* :class:`SimulatedCamera` listens on ``http://127.0.0.1:<port>/stream.ts``. Each client that
  connects gets its own ``ffmpeg -re -stream_loop -1 -i clip -c copy -f mpegts`` whose standard
  output *is* the client's socket: the clip is played in real time, looping, with no
  re-encoding and no byte passing through Python, so fifty cameras cost little CPU; packets
  are flushed as they are muxed, so data arrives as evenly as from a camera. Like an
  IP camera's HTTP stream, every connection starts at a keyframe and runs until the client
  hangs up; a probe (``ffprobe``) and a recorder can connect at once.
* :meth:`SimulatedCamera.drop` kills the streams in progress (clients see the stream end) and
  closes the port (new connections are refused); :meth:`SimulatedCamera.restore` listens
  again on the same port. That is a camera outage, as the recorder sees it.

ffmpeg is the Debian package (``apt-get install ffmpeg``); :func:`ffmpeg_path` finds it
(``POLLWATCH_FFMPEG`` overrides).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from types import TracebackType

from pollwatch.errors import VideoError

__all__ = ["SimulatedCamera", "ffmpeg_path", "ffprobe_path", "generate_clip"]

STREAM_PATH = "/stream.ts"


def _tool(name: str, variable: str) -> str:
    found = os.environ.get(variable) or shutil.which(name)
    if not found:
        raise VideoError(
            f"the {name} command is not installed",
            hint=f"apt-get install ffmpeg (or set {variable} to its path)",
        )
    return found


def ffmpeg_path() -> str:
    """The ffmpeg executable (``POLLWATCH_FFMPEG`` or the one on PATH); VideoError if absent."""
    return _tool("ffmpeg", "POLLWATCH_FFMPEG")


def ffprobe_path() -> str:
    """The ffprobe executable (``POLLWATCH_FFPROBE`` or the one on PATH); VideoError if absent."""
    return _tool("ffprobe", "POLLWATCH_FFPROBE")


def _has_drawtext(ffmpeg: str) -> bool:
    listing = subprocess.run(
        [ffmpeg, "-hide_banner", "-filters"], capture_output=True, text=True, check=False
    )
    return " drawtext " in listing.stdout


def generate_clip(
    target: Path,
    *,
    seconds: float = 10.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    bitrate: str = "1M",
    keyframe: float = 2.0,
    clock: bool = True,
) -> Path:
    """Encode a test clip (``testsrc2`` + a clock) as H.264 MPEG-TS at ``target``; returns it.

    Constant bitrate ``bitrate`` (ffmpeg syntax, e.g. ``1M``), a keyframe every ``keyframe``
    seconds (GOP of ``fps * keyframe`` frames, no B-frames) so a recorder can cut segments
    at that granularity. The clock is the clip's own time (``hh:mm:ss.mmm``).
    """
    if seconds <= 0 or width <= 0 or height <= 0 or fps <= 0 or keyframe <= 0:
        raise VideoError(
            f"clip parameters must be positive (seconds={seconds}, {width}x{height}, fps={fps}, "
            f"keyframe={keyframe})",
            hint="e.g. --seconds 10 --width 1280 --height 720 --fps 25",
        )
    ffmpeg = ffmpeg_path()
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = f"testsrc2=size={width}x{height}:rate={fps}"
    if clock and _has_drawtext(ffmpeg):
        size = max(16, height // 12)
        source += (
            f",drawtext=text='%{{pts\\:hms}}':x=20:y=20:fontsize={size}"
            ":fontcolor=white:box=1:boxcolor=black@0.6"
        )
    gop = max(1, round(fps * keyframe))
    command = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", source, "-t", f"{seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", "0",
        "-f", "mpegts", str(target),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise VideoError(
            f"ffmpeg could not encode the test clip {target}: {last}",
            hint="check that ffmpeg has libx264 (the Debian package does)",
        )
    return target


class SimulatedCamera:
    """A live HTTP MPEG-TS camera on 127.0.0.1 playing ``clip`` in real time, looping.

    Use as a context manager (or :meth:`start` / :meth:`stop`). ``port=0`` picks a free port,
    kept across :meth:`drop` and :meth:`restore`.
    """

    def __init__(self, clip: Path, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.clip = Path(clip)
        if not self.clip.is_file():
            raise VideoError(
                f"no clip at {self.clip}", hint="make one with generate_clip() or --clip"
            )
        self.host = host
        self.port = port
        self._ffmpeg = ffmpeg_path()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._streams: list[subprocess.Popen[bytes]] = []
        self.connections = 0

    @property
    def url(self) -> str:
        """The stream's URL, e.g. ``http://127.0.0.1:8554/stream.ts``."""
        return f"http://{self.host}:{self.port}{STREAM_PATH}"

    @property
    def live(self) -> bool:
        """True while the camera accepts connections (not dropped, not stopped)."""
        return self._listener is not None

    def start(self) -> SimulatedCamera:
        """Listen for clients (the port is bound when this returns)."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((self.host, self.port))
            except OSError as error:
                listener.close()
                raise VideoError(
                    f"cannot listen on {self.host}:{self.port} ({error.strerror})",
                    hint="choose another --port, or stop what is using it",
                ) from None
            listener.listen(16)
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._acceptor = threading.Thread(
                target=self._accept_loop, args=(listener,), name=f"camera-{self.port}", daemon=True
            )
            self._acceptor.start()
        return self

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: dropped or stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(10)
            request = b""
            try:
                while b"\r\n\r\n" not in request and len(request) < 16384:
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    request += chunk
            except OSError:
                return
            line = request.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0] not in ("GET", "HEAD") or line[1] != STREAM_PATH:
                with contextlib.suppress(OSError):
                    client.sendall(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                return
            header = (
                b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n"
                b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
            )
            try:
                client.settimeout(None)
                client.sendall(header)
            except OSError:
                return
            if line[0] == "HEAD":
                return
            with self._lock:
                if self._listener is None:
                    return  # dropped while this client was connecting
                stream = subprocess.Popen(
                    [
                        self._ffmpeg, "-hide_banner", "-loglevel", "quiet", "-nostdin",
                        "-re", "-stream_loop", "-1", "-i", str(self.clip),
                        "-map", "0", "-c", "copy", "-flush_packets", "1",
                        "-f", "mpegts", "pipe:1",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=client.fileno(),
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
                self._streams.append(stream)
                self.connections += 1
        # The child holds its own copy of the socket; ours closes on leaving the block.
        stream.wait()
        with self._lock:
            if stream in self._streams:
                self._streams.remove(stream)

    def drop(self) -> None:
        """An outage: end every stream in progress and refuse new connections."""
        with self._lock:
            listener, self._listener = self._listener, None
            streams, self._streams = list(self._streams), []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for stream in streams:
            with contextlib.suppress(ProcessLookupError):
                stream.send_signal(signal.SIGKILL)
        for stream in streams:
            stream.wait()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None

    def restore(self) -> SimulatedCamera:
        """Come back after :meth:`drop`, on the same port."""
        return self.start()

    def stop(self) -> None:
        """Stop serving (same as :meth:`drop`)."""
        self.drop()

    @property
    def streams(self) -> int:
        """How many clients are being served now."""
        with self._lock:
            return len(self._streams)

    def __enter__(self) -> SimulatedCamera:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
