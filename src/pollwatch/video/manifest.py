"""A station's cameras, declared in a TOML manifest.

Format (one station per file; unknown keys are refused so a typo never passes silently)::

    [station]
    id = "PS-0042"                        # letters, digits, '.', '_', '-' (1-64 characters)
    name = "School No. 5, room 2"         # optional

    [[cameras]]
    id = "entrance"                       # unique within the station, same characters as ids
    url = "http://10.0.0.21/stream.ts"    # http(s) MPEG-TS, HLS (.m3u8) or rtsp://
    description = "ballot box, wide"      # optional

Station and camera ids name folders in the recorder's spool and appear in every log entry,
hence the restricted alphabet (:func:`check_id`).
"""

from __future__ import annotations

import re
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pollwatch.errors import VideoError

__all__ = [
    "CameraSource",
    "StationManifest",
    "check_id",
    "check_url",
    "load_manifest",
    "redact_url",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
URL_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "udp", "tcp", "srt", "file")


def check_id(value: str, what: str, *, where: str = "") -> str:
    """``value`` if it is a valid station or camera id, else VideoError naming ``what``."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        place = f"{where}: " if where else ""
        raise VideoError(
            f"{place}{what} id {value!r} is not valid",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return value


#: Query parameters that carry a secret in camera URLs (``?user=admin&password=...``).
_SECRET_PARAMETER = re.compile(
    r"pass|pwd|secret|token|key|auth|sig|credential|session", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***``, for anything shown or logged.

    The password of the user-info part (``rtsp://admin:***@host/``) and the values of query
    parameters whose names suggest a secret (password, token, key, auth, signature ...) are
    masked; the scheme, host, port and path stay, so the camera can still be identified. The
    full URL lives only in the manifest (or the command line) and is handed to ffmpeg alone.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        hostname_part = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(unreadable camera URL)"
    netloc = parts.netloc
    if "@" in netloc:
        user_info = netloc.rpartition("@")[0]
        user = urllib.parse.unquote(user_info.partition(":")[0])
        netloc = (
            f"{urllib.parse.quote(user, safe='')}:***@{hostname_part}"
            if user
            else (f"***@{hostname_part}")
        )
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = urllib.parse.urlencode(
            [(k, "***" if _SECRET_PARAMETER.search(k) else v) for k, v in pairs], safe="*"
        )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def check_url(value: str, *, where: str = "") -> str:
    """``value`` if it looks like a stream URL ffmpeg can open, else VideoError."""
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in URL_SCHEMES:
        place = f"{where}: " if where else ""
        raise VideoError(
            f"{place}{redact_url(value)!r} is not a stream URL",
            hint="give e.g. http://HOST/stream.ts, http://HOST/live.m3u8 or rtsp://HOST/stream",
        )
    return value


@dataclass(frozen=True)
class CameraSource:
    """One camera to record: where it is (station, camera id) and its stream URL."""

    station: str
    camera: str
    url: str
    description: str = ""

    @property
    def shown_url(self) -> str:
        """The URL with its credentials masked (:func:`redact_url`): what logs and pages show."""
        return redact_url(self.url)


@dataclass(frozen=True)
class StationManifest:
    """A station and its cameras, as declared in a manifest file."""

    station: str
    name: str
    cameras: tuple[CameraSource, ...]
    path: Path | None = None


def _keys(table: dict[str, Any], allowed: set[str], required: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise VideoError(
            f"{where}: unknown key {unknown[0]!r}",
            hint=f"allowed keys: {', '.join(sorted(allowed))}",
        )
    missing = sorted(required - set(table))
    if missing:
        raise VideoError(f"{where}: missing key {missing[0]!r}", hint="see docs/video-recording.md")
    for key in table:
        if not isinstance(table[key], str):
            raise VideoError(f"{where}: {key} must be a string, not {type(table[key]).__name__}")


def load_manifest(path: Path) -> StationManifest:
    """Read and check a station manifest (format in the module docstring)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise VideoError(
            f"no manifest at {path}", hint="give the path of a station's TOML manifest"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise VideoError(f"cannot read the manifest {path} ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise VideoError(
            f"{path}: not valid TOML ({error})", hint="see docs/video-recording.md"
        ) from None
    unknown = sorted(set(data) - {"station", "cameras"})
    if unknown:
        raise VideoError(
            f"{path}: unknown top-level key {unknown[0]!r}",
            hint="a manifest has a [station] table and [[cameras]] entries",
        )
    station = data.get("station")
    if not isinstance(station, dict):
        raise VideoError(f"{path}: no [station] table", hint='add [station] with id = "..."')
    _keys(station, {"id", "name"}, {"id"}, f"{path} [station]")
    station_id = check_id(station["id"], "station", where=str(path))
    cameras = data.get("cameras")
    if not isinstance(cameras, list) or not cameras:
        raise VideoError(
            f"{path}: no [[cameras]] entries", hint="add one [[cameras]] with id and url per camera"
        )
    sources = []
    seen: set[str] = set()
    for number, camera in enumerate(cameras, start=1):
        where = f"{path} camera {number}"
        if not isinstance(camera, dict):
            raise VideoError(f"{where}: not a table", hint="use [[cameras]] entries")
        _keys(camera, {"id", "url", "description"}, {"id", "url"}, where)
        camera_id = check_id(camera["id"], "camera", where=where)
        if camera_id in seen:
            raise VideoError(f"{where}: camera id {camera_id!r} is used twice")
        seen.add(camera_id)
        sources.append(
            CameraSource(
                station=station_id,
                camera=camera_id,
                url=check_url(camera["url"], where=where),
                description=camera.get("description", ""),
            )
        )
    return StationManifest(
        station=station_id, name=station.get("name", ""), cameras=tuple(sources), path=path
    )
