"""The recorder: camera streams cut into fixed-length segments, each archived as it closes.

One :class:`Recorder` records any number of cameras in one process, one ffmpeg child per
camera, with no re-encoding::

    ffmpeg -i URL -map 0:v:0 -map 0:a:0? -c copy -f segment -segment_time N
           -segment_format mp4 (fragmented: frag_keyframe+empty_moov+default_base_moof,
           timestamps kept: frag_discont, avoid_negative_ts=disabled)
           -segment_list pipe:1 -segment_list_type csv  <spool>/<run>-%06d.mp4

The segment muxer prints ``file,start,end`` (seconds from the stream's start) on ffmpeg's
standard output when a segment closes; the camera's thread then hashes the file into the
evidence archive with a ``video`` object (:mod:`.segments`), chained to the camera's previous
segment, and deletes the spool copy. Fragmented MP4 keeps a segment that was cut short
readable up to its last complete fragment (one per keyframe).

Capture times: the recorder's UTC clock when the run's first packet arrived (the run's
*anchor*: the earliest ``now - out_time`` over ffmpeg's progress reports, fixed when the first
segment closes) plus the segment's start and end offsets in the stream (``clock_source`` =
:data:`CLOCK_SOURCE`). Over an unbroken run the offsets come from the stream's own timestamps,
so segments meet end to start.

What is logged (``video-event`` entries, :mod:`.segments`):

* ``recorder-start`` / ``recorder-stop`` for each camera, with the URL, segment length, run id
  and why it stopped;
* ``outage`` when a stream ends or cannot be reached (then retries with exponential backoff),
  ``reconnect`` when a retry connects, and ``gap`` with the start and end of the footage that
  is missing (from the end of the last archived segment to the new run's anchor). A gap is
  also logged when a camera's recording starts again after a stop or a crash.
* ``segment-lost`` for a spool file that a killed recorder left behind and that holds no
  readable video.

Crash safety: each run keeps a journal (``<run>.json``) in the camera's spool folder with its
anchor, the offsets of the segments that closed and where the open one starts. After a
SIGKILL, the next start archives the leftovers: closed segments normally, the open one as a
segment marked ``"partial": true`` (its end from the last readable packet), or logs it as
``segment-lost``. So a kill loses at most the part of the open segment after its last complete
fragment, and the gap to the new run is in the log. SIGTERM or SIGINT (:meth:`Recorder.stop`)
asks each ffmpeg to finish its segment, which is archived before ``recorder-stop``. ffmpeg
children die with the recorder (``PR_SET_PDEATHSIG`` on Linux), and a lock file per camera
keeps a second recorder from forking the camera's chain.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import ctypes.util
import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pollwatch.errors import VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.fileio import atomic_write_json
from pollwatch.video.folders import private_folder
from pollwatch.video.manifest import CameraSource, check_id, redact_url
from pollwatch.video.segments import GAP_TOLERANCE, VideoIndex, format_time, parse_time
from pollwatch.video.simulator import ffmpeg_path, ffprobe_path

__all__ = [
    "CLOCK_SOURCE",
    "SEGMENT_FORMAT_OPTIONS",
    "CameraSummary",
    "Recorder",
    "RecorderNotice",
    "StreamInfo",
    "probe_stream",
]

CLOCK_SOURCE = "recorder-utc+stream-offset"
# Fragmented MP4, a fragment per keyframe; timestamps kept as in the stream (see _command).
SEGMENT_FORMAT_OPTIONS = (
    "movflags=+frag_keyframe+empty_moov+default_base_moof+frag_discont:avoid_negative_ts=disabled"
)
PROBE_OPTIONS = ("-analyzeduration", "1000000", "-probesize", "1000000")
_UNREACHABLE = (
    "connection refused",
    "connection timed out",
    "timed out",
    "no route to host",
    "network is unreachable",
    "name or service not known",
    "temporary failure in name resolution",
    "server returned 4",
    "server returned 5",
    "host is unreachable",
    "no such file or directory",
    "end of file",
)


# --- probing --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamInfo:
    """What a probe found at a URL (credentials masked): the video codec and size, and audio."""

    url: str
    codec: str
    width: int
    height: int
    audio: bool


def probe_stream(url: str, *, timeout: float = 15.0) -> StreamInfo:
    """Connect to ``url`` with ffprobe and check that it carries video.

    Raises VideoError ``cannot reach URL`` (refused, timed out, HTTP error, unknown host) or
    ``URL is not a video stream`` (it answers with something that is not video).
    """
    command = [
        ffprobe_path(), "-v", "error", *PROBE_OPTIONS, "-rw_timeout", str(int(timeout * 1e6)),
        "-show_entries", "stream=codec_type,codec_name,width,height", "-of", "json", url,
    ]  # fmt: skip
    shown = redact_url(url)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout + 5, check=False
        )
    except subprocess.TimeoutExpired:
        raise VideoError(
            f"cannot reach {shown}: no stream within {timeout:.0f} s",
            hint="check the camera's address and that it is streaming",
        ) from None
    message = _last_line(done.stderr).replace(url, shown)
    if done.returncode != 0:
        if any(marker in message.lower() for marker in _UNREACHABLE):
            raise VideoError(
                f"cannot reach {shown}: {_short(message)}",
                hint="check the camera's address, port and network",
            )
        raise VideoError(
            f"{shown} is not a video stream: {_short(message)}",
            hint="give the camera's stream URL (MPEG-TS over HTTP, HLS or RTSP), not a web page",
        )
    try:
        streams = json.loads(done.stdout or "{}").get("streams", [])
    except ValueError:
        streams = []
    video = [s for s in streams if s.get("codec_type") == "video"]
    if not video:
        raise VideoError(
            f"{shown} is not a video stream: it holds no video track",
            hint="give the camera's stream URL (MPEG-TS over HTTP, HLS or RTSP)",
        )
    return StreamInfo(
        url=shown,
        codec=str(video[0].get("codec_name", "?")),
        width=int(video[0].get("width") or 0),
        height=int(video[0].get("height") or 0),
        audio=any(s.get("codec_type") == "audio" for s in streams),
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no answer"


def _short(message: str) -> str:
    # ffprobe prefixes "<url>: " or "[tcp @ 0x...] "; keep what follows.
    if "] " in message and message.startswith("["):
        message = message.split("] ", 1)[1]
    if ": " in message and "://" in message.split(": ", 1)[0]:
        message = message.split(": ", 1)[1]
    return message.rstrip(".")


# --- child processes --------------------------------------------------------------------------
# ffmpeg children must die with the recorder (PR_SET_PDEATHSIG on Linux), or a killed
# recorder leaves them writing on. util-linux's setpriv sets it and execs ffmpeg; a Python
# preexec_fn does the same but forces a slow fork of the whole (threaded) recorder process.
_PR_SET_PDEATHSIG = 1
_prctl: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError, AttributeError):
        _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl


@functools.cache
def _setpriv() -> str | None:
    found = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if found is None:
        return None
    done = subprocess.run([found, "--help"], capture_output=True, text=True, check=False)
    return found if "--pdeathsig" in done.stdout else None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the child is killed when its parent goes.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn(command: Sequence[str]) -> subprocess.Popen[str]:
    setpriv = _setpriv()
    prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    return subprocess.Popen(
        [*prefix, *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        process_group=0,  # a terminal's Ctrl-C reaches the recorder, which stops children cleanly
        preexec_fn=_die_with_parent if (_prctl is not None and not setpriv) else None,
    )


# --- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecorderNotice:
    """Something the recorder did, for a front end to show (the library never prints)."""

    kind: str  # "segment", "event", "retry" (a failed connection attempt) or "error"
    station: str
    camera: str
    text: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class CameraSummary:
    """What one camera's recording produced."""

    station: str
    camera: str
    segments: int = 0
    recovered: int = 0
    lost: int = 0
    outages: int = 0
    error: str | None = None


def _run_id(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"


def _run_anchor(run: str) -> datetime:
    return datetime.strptime(run[:15], "%Y%m%dT%H%M%S").replace(
        tzinfo=UTC, microsecond=int(run[15:18]) * 1000
    )


def _readable_span(path: Path) -> float | None:
    """Seconds of readable video in a (possibly truncated) segment file, or None if none."""
    command = [
        ffprobe_path(), "-v", "quiet", "-select_streams", "v:0",
        "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", str(path),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return None
    low: float | None = None
    high: float | None = None
    for line in done.stdout.splitlines():
        parts = line.strip().strip(",").split(",")
        try:
            pts = float(parts[0])
            duration = float(parts[1]) if len(parts) > 1 and parts[1] else 0.0
        except ValueError:
            continue
        low = pts if low is None else min(low, pts)
        high = pts + duration if high is None else max(high, pts + duration)
    if low is None or high is None or high <= low:
        return None
    return high - low


# --- one camera ---------------------------------------------------------------------------------
class _CameraWorker:
    """Records one camera: runs ffmpeg, archives segments, logs events, retries outages."""

    def __init__(self, recorder: Recorder, source: CameraSource) -> None:
        self.recorder = recorder
        self.source = source
        self.archive = recorder.archive
        self.folder = recorder.spool / source.station / source.camera
        self.summary = CameraSummary(source.station, source.camera)
        self.next_sequence = 0
        self.previous: str | None = None
        self.last_end: datetime | None = None
        self.process: subprocess.Popen[str] | None = None
        self.thread = threading.Thread(
            target=self._main, name=f"record-{source.station}-{source.camera}", daemon=True
        )
        self._lock_handle: IO[str] | None = None

    # -- helpers
    def notice(self, kind: str, text: str, **details: Any) -> None:
        self.recorder._notify(
            RecorderNotice(kind, self.source.station, self.source.camera, text, details)
        )

    def event(self, event: str, moment: datetime, **details: Any) -> None:
        self.archive.append_record(
            "video-event",
            {
                "event": event,
                "station": self.source.station,
                "camera": self.source.camera,
                "time": format_time(moment),
                "details": details,
            },
        )
        self.notice("event", event, **details)

    def lock(self) -> None:
        private_folder(self.folder)  # <home>/video and the spool: 0700 (.folders)
        handle = (self.folder / ".lock").open("a", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise VideoError(
                f"camera {self.source.camera!r} of station {self.source.station!r} is already "
                "being recorded by another process",
                hint="stop the other recorder first; two recorders would fork the camera's chain",
            ) from None
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def load_chain(self, index: VideoIndex) -> None:
        if self.source.station not in index.stations():
            return
        if self.source.camera not in index.cameras(self.source.station):
            return
        segments = index.segments(self.source.station, self.source.camera)
        if segments:
            self.next_sequence = max(s.sequence for s in segments) + 1
            self.previous = segments[-1].sha256
            self.last_end = max(s.end for s in segments)

    def archive_segment(
        self, path: Path, start: datetime, end: datetime, *, partial: bool = False
    ) -> None:
        video: dict[str, Any] = {
            "camera": self.source.camera,
            "sequence": self.next_sequence,
            "start": format_time(start),
            "end": format_time(end),
            "duration": round((end - start).total_seconds(), 3),
            "previous": self.previous,
            "copy": "original",
        }
        if partial:
            video["partial"] = True
        record = self.archive.add(
            path,
            submitter=self.recorder.submitter,
            media_type="video/mp4",
            station=self.source.station,
            device=self.source.camera,
            capture_time=format_time(start),
            clock_source=CLOCK_SOURCE,
            extra={"video": video},
        )
        self.next_sequence += 1
        self.previous = record.sha256
        self.last_end = end if self.last_end is None else max(self.last_end, end)
        self.summary.segments += 1
        self.notice(
            "segment",
            f"segment {video['sequence']} {video['start']} +{video['duration']:.1f}s "
            f"{record.sha256[:12]}" + (" (partial)" if partial else ""),
            sha256=record.sha256,
            sequence=video["sequence"],
        )

    # -- crash recovery
    def recover(self) -> None:
        """Archive or account for what an earlier run of this camera left in the spool."""
        known = {
            s.sha256 for s in self.recorder.index.segments(self.source.station, self.source.camera)
        } if self.previous is not None else set()  # fmt: skip
        for journal_path in sorted(self.folder.glob("*.json")):
            self.settle(journal_path, known)

    def settle(self, journal_path: Path, known: set[str]) -> None:
        """Archive a run's spool files that were never archived, then drop its journal.

        A closed segment (its offsets are in the journal) is archived as usual; the open one
        is archived as ``partial`` up to its last readable packet, or logged as
        ``segment-lost`` when it holds no readable video.
        """
        try:
            journal = json.loads(journal_path.read_text("utf-8"))
            run = str(journal["run"])
            # Fixed when the run's first segment closed; before that, when ffmpeg started.
            anchor = parse_time(journal["anchor"]) if "anchor" in journal else _run_anchor(run)
        except (OSError, ValueError, KeyError, VideoError):
            return  # not a journal of ours; leave it for a person to look at
        closed: dict[str, list[float]] = journal.get("closed", {})
        for path in sorted(self.folder.glob(f"{run}-*.mp4")):
            if path.stat().st_size and _sha256(path) in known:
                path.unlink()  # archived, then killed before the spool copy was removed
                continue
            if path.name in closed:
                low, high = closed[path.name]
                self.archive_segment(
                    path, anchor + timedelta(seconds=low), anchor + timedelta(seconds=high)
                )
                self.summary.recovered += 1
                path.unlink()
                continue
            start = anchor + timedelta(seconds=float(journal.get("open_start", 0.0)))
            span = _readable_span(path) if path.stat().st_size else None
            if span is not None:
                self.archive_segment(path, start, start + timedelta(seconds=span), partial=True)
                self.summary.recovered += 1
            else:
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                self.event(
                    "segment-lost",
                    datetime.now(UTC),
                    start=format_time(start),
                    end=format_time(max(modified, start)),
                    file=path.name,
                    size=path.stat().st_size,
                    reason="the recorder stopped without closing it; no readable video",
                )
                self.summary.lost += 1
            path.unlink()
        journal_path.unlink()

    # -- the recording loop
    def _main(self) -> None:
        try:
            self._record()
        except Exception as error:
            self.summary.error = f"{type(error).__name__}: {error}"
            self.notice("error", self.summary.error)
            with contextlib.suppress(Exception):
                self.event("recorder-stop", datetime.now(UTC), reason="error", error=str(error))
        finally:
            self.unlock()

    def _record(self) -> None:
        recorder = self.recorder
        self.event(
            "recorder-start",
            datetime.now(UTC),
            url=self.source.shown_url,
            segment_seconds=recorder.segment_seconds,
            pid=os.getpid(),
            recovered=self.summary.recovered,
            lost=self.summary.lost,
        )
        attempts = 0
        outage_since: datetime | None = None
        gap_reason = "recorder-restart"
        while not recorder.stopping.is_set():
            anchor = datetime.now(UTC)
            connected = threading.Event()
            archived = self.summary.segments
            ran = self._run(anchor, connected, outage_since, attempts, gap_reason)
            if recorder.stopping.is_set():
                break
            if ran is None and self.summary.segments > archived:
                # It connected and recorded until the stream ended. (A run that connects but
                # records nothing, e.g. a codec MP4 cannot hold, keeps backing off.)
                attempts = 0
                outage_since = None
            attempts += 1
            if outage_since is None:
                outage_since = datetime.now(UTC)
                self.summary.outages += 1
                self.event(
                    "outage",
                    outage_since,
                    error=self._error or "the stream ended",
                    last_segment_end=format_time(self.last_end) if self.last_end else None,
                )
                gap_reason = "outage"
            delay = min(recorder.retry_max, recorder.retry_initial * 2 ** (attempts - 1))
            if ran is False:
                self.notice(
                    "retry",
                    f"cannot connect ({self._error or 'no stream'}); retry in {delay:.1f} s",
                    attempts=attempts,
                )
            recorder.stopping.wait(delay)
        self.event(
            "recorder-stop",
            datetime.now(UTC),
            reason=recorder.stop_reason,
            segments=self.summary.segments,
        )

    _error: str | None = None

    def _command(self, run: str) -> list[str]:
        rtsp = self.source.url.lower().startswith("rtsp")
        return [
            ffmpeg_path(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
            "-progress", "pipe:2", "-stats_period", "0.5",
            *PROBE_OPTIONS, "-rw_timeout", str(int(self.recorder.stall_timeout * 1e6)),
            *(["-rtsp_transport", "tcp"] if rtsp else []),
            "-i", self.source.url,
            "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy",
            "-f", "segment", "-segment_time", f"{self.recorder.segment_seconds:g}",
            "-segment_format", "mp4",
            "-segment_format_options", SEGMENT_FORMAT_OPTIONS,
            # Timestamps run on across a run's segments (frag_discont, no shift to zero) and
            # each run is named in the file, so no two segments are byte-identical, even when
            # the scene is still or a clip loops.
            "-metadata", f"creation_time={format_time(_run_anchor(run))}",
            "-metadata", f"comment=pollwatch {self.source.station}/{self.source.camera} run {run}",
            "-segment_list", "pipe:1", "-segment_list_type", "csv",
            str(self.folder / f"{run}-%06d.mp4"),
        ]  # fmt: skip

    def _run(
        self,
        spawned: datetime,
        connected: threading.Event,
        outage_since: datetime | None,
        attempts: int,
        gap_reason: str,
    ) -> bool | None:
        """One ffmpeg run; None when it connected (and later ended), False when it never did.

        The run's anchor (UTC of stream time 0) is fixed when its first segment closes: the
        earliest ``now - out_time`` over ffmpeg's progress reports, i.e. when the first packet
        arrived, not when ffmpeg was started (a camera may take seconds to answer).
        """
        run = _run_id(spawned)
        journal_path = self.folder / f"{run}.json"
        journal: dict[str, Any] = {
            "run": run,
            "url": self.source.shown_url,
            "closed": {},
            "open_start": 0.0,
        }
        atomic_write_json(journal_path, journal, sort_keys=True)
        self._error = None
        estimate: list[datetime] = []  # the best anchor estimate so far, from the stderr thread
        process = _spawn(self._command(run))
        self.process = process
        if self.recorder.stopping.is_set():
            self._interrupt()
        errors: deque[str] = deque(maxlen=8)

        def on_connect() -> None:
            if outage_since is not None:
                self.event(
                    "reconnect",
                    spawned,  # when the attempt that worked began
                    attempts=attempts,
                    down_since=format_time(outage_since),
                )

        stderr_thread = threading.Thread(
            target=self._read_stderr,
            args=(process, errors, connected, on_connect, estimate),
            daemon=True,
        )
        stderr_thread.start()
        anchor: datetime | None = None
        assert process.stdout is not None
        try:
            for row in csv.reader(process.stdout):
                if len(row) < 3:
                    continue
                if anchor is None:
                    deadline = time.monotonic() + 2.0
                    while not estimate and time.monotonic() < deadline and process.poll() is None:
                        time.sleep(0.05)  # the next progress report is at most 0.5 s away
                    anchor = max(spawned, estimate[0]) if estimate else spawned
                    if self.last_end is not None and anchor < self.last_end:
                        # The previous run's anchor was estimated late; keep capture times
                        # from going backwards rather than overlap the footage before.
                        anchor = self.last_end
                    journal["anchor"] = format_time(anchor)
                    self._log_gap(anchor, outage_since, gap_reason)
                name, low, high = row[0], float(row[1]), float(row[2])
                path = self.folder / Path(name).name
                journal["closed"][path.name] = [low, high]
                journal["open_start"] = high
                atomic_write_json(journal_path, journal, sort_keys=True)
                if not path.is_file() or path.stat().st_size == 0:
                    continue
                self.archive_segment(
                    path, anchor + timedelta(seconds=low), anchor + timedelta(seconds=high)
                )
                path.unlink()
                del journal["closed"][path.name]
                atomic_write_json(journal_path, journal, sort_keys=True)
        except BaseException:
            # Archiving failed: stop ffmpeg; the journal lets the next start pick up the files.
            self._interrupt()
            process.wait()
            raise
        process.wait()
        stderr_thread.join(timeout=10)
        self.process = None
        # After a clean exit every segment was listed; anything left is from a crashed ffmpeg.
        self.settle(journal_path, set())
        self._error = _short(errors[-1]) if errors else None
        return None if connected.is_set() else False

    def _log_gap(self, anchor: datetime, outage_since: datetime | None, reason: str) -> None:
        """Log the footage missing before this run's first segment, if any."""
        gap_start = self.last_end or outage_since
        if gap_start is not None and (anchor - gap_start).total_seconds() > GAP_TOLERANCE:
            self.event(
                "gap",
                datetime.now(UTC),
                start=format_time(gap_start),
                end=format_time(anchor),
                seconds=round((anchor - gap_start).total_seconds(), 3),
                reason=reason,
            )

    def _read_stderr(
        self,
        process: subprocess.Popen[str],
        errors: deque[str],
        connected: threading.Event,
        on_connect: Callable[[], None],
        estimate: list[datetime],
    ) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("out_time_us="):
                with contextlib.suppress(ValueError):
                    written = int(line[12:])
                    # The report made as the input opens shows ~0 before the probed packets
                    # are muxed; it says nothing about when they arrived.
                    if written >= 200_000:
                        candidate = datetime.now(UTC) - timedelta(microseconds=written)
                        if not estimate:
                            estimate.append(candidate)
                        elif candidate < estimate[0]:
                            estimate[0] = candidate
                continue
            text = line.strip()
            if "=" in text and " " not in text:
                continue  # the rest of a progress report
            if not connected.is_set() and text.startswith("Input #0"):
                connected.set()
                try:
                    on_connect()
                except Exception as error:
                    self.notice("error", f"cannot log the reconnect: {error}")
            elif text and not text.startswith((" ", "Stream", "Output", "Press", "[segment")):
                lowered = text.lower()
                if "error" in lowered or "refused" in lowered or "failed" in lowered:
                    errors.append(text)

    def _interrupt(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)


def _sha256(path: Path) -> str:
    import hashlib

    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# --- the recorder -------------------------------------------------------------------------------
class Recorder:
    """Records cameras into an evidence archive until stopped (see the module docstring).

    ``spool`` is the working folder (``<video_dir>/spool``); ``on_notice`` receives a
    :class:`RecorderNotice` for every segment, event and error (called from camera threads).
    """

    def __init__(
        self,
        archive: EvidenceArchive,
        cameras: Sequence[CameraSource],
        *,
        spool: Path,
        segment_seconds: float = 60.0,
        submitter: str = "recorder",
        on_notice: Callable[[RecorderNotice], None] | None = None,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        stall_timeout: float = 10.0,
        probe: bool = True,
    ) -> None:
        if not cameras:
            raise VideoError("no camera to record", hint="give --camera and a URL, or --manifest")
        if segment_seconds <= 0:
            raise VideoError(
                f"segment length must be positive, got {segment_seconds}",
                hint="e.g. --segment-seconds 60",
            )
        seen: set[tuple[str, str]] = set()
        for source in cameras:
            check_id(source.station, "station")
            check_id(source.camera, "camera")
            key = (source.station, source.camera)
            if key in seen:
                raise VideoError(
                    f"camera {source.camera!r} of station {source.station!r} is listed twice"
                )
            seen.add(key)
        self.archive = archive
        self.cameras = list(cameras)
        self.spool = Path(spool)
        self.segment_seconds = segment_seconds
        self.submitter = submitter
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.stall_timeout = stall_timeout
        self.probe = probe
        self.stopping = threading.Event()
        self.stop_reason = "stopped"
        self._on_notice = on_notice
        self._notice_lock = threading.Lock()
        self._workers: list[_CameraWorker] = []
        self.index = VideoIndex.from_archive(archive)

    def _notify(self, notice: RecorderNotice) -> None:
        if self._on_notice is not None:
            with self._notice_lock:
                self._on_notice(notice)

    def check_streams(self) -> list[StreamInfo]:
        """Probe every camera's URL at once; VideoError names the first that fails."""
        with ThreadPoolExecutor(max_workers=min(16, len(self.cameras))) as pool:
            futures = [(s, pool.submit(probe_stream, s.url)) for s in self.cameras]
            infos = []
            for source, future in futures:
                try:
                    infos.append(future.result())
                except VideoError as error:
                    raise VideoError(
                        f"{error.message} (camera {source.camera} of station {source.station})",
                        hint=error.hint,
                    ) from None
        return infos

    def stop(self, reason: str = "stopped") -> None:
        """Ask every camera to close its open segment and stop (safe from a signal handler)."""
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()
        for worker in self._workers:
            worker._interrupt()

    def run(self, duration: float | None = None) -> list[CameraSummary]:
        """Record until :meth:`stop` (or for ``duration`` seconds); returns each camera's summary.

        Before recording: probes the URLs (unless ``probe=False``), takes each camera's lock,
        reads its chain from the log and archives what an interrupted run left in the spool.
        """
        if self.probe:
            self.check_streams()
        workers = [_CameraWorker(self, source) for source in self.cameras]
        locked: list[_CameraWorker] = []
        try:
            for worker in workers:
                worker.lock()
                locked.append(worker)
            for worker in workers:
                worker.load_chain(self.index)
                worker.recover()
        except BaseException:
            for worker in locked:
                worker.unlock()
            raise
        self._workers = workers
        for worker in workers:
            worker.thread.start()
        if duration is not None:
            if not self.stopping.wait(duration):
                self.stop("duration")
        else:
            while not self.stopping.wait(0.5):
                if not any(w.thread.is_alive() for w in workers):
                    break
        deadline = time.monotonic() + self.stall_timeout + 30
        for worker in workers:
            worker.thread.join(timeout=max(0.1, deadline - time.monotonic()))
        return [w.summary for w in workers]
