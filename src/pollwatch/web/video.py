"""Regulated playback in the dashboard: login, station pages with a player, segment media.

The routes parse requests and render what :class:`pollwatch.video.playback.PlaybackService`
decides (it is ``app.state.video``); the decisions and the custody entries are made there.

* ``/login`` and ``/logout``: web sessions (:mod:`pollwatch.video.accounts`); the cookie is
  HttpOnly and SameSite=Strict (Secure over HTTPS). Failed logins lock the account name and the
  address for a while (:mod:`pollwatch.video.throttle`): a locked login is a 429 with
  ``Retry-After``, whatever the password. API clients send ``Authorization: Bearer`` tokens
  instead. Without either the visitor is ``anonymous`` with role ``public``.
* ``/video`` (stations with cameras), ``/video/{station}`` (cameras, a timeline of segments, gaps
  and events per camera, and a player that plays a segment and moves on to the next).
* ``/video/segments/{sha256}`` and ``/api/video/segments/{sha256}`` (:data:`FOOTAGE_ROUTES`):
  the segment's bytes, with HTTP range requests (206, ``Content-Range``, ``Accept-Ranges``),
  streamed from the archive's objects. Each request is decided by the playback policy
  (:mod:`pollwatch.video.policy`): a denial is a 403; an allowed request gets an ``access``
  custody entry (reason ``playback``; details: role, copy, station, camera, range) *before* a
  byte is sent. A repeat of the same segment and copy by the same session or token (anonymous
  visitors: the same address) from the same address within :data:`REPEAT_WINDOW` seconds (a
  player's successive range requests) is served without a new entry. When the policy allows
  only blurred copies and none exists yet, the answer is 409 and nothing is served. Every
  refused request for a known segment (401 for an unknown or revoked token, 403, 409) gets a
  ``denied`` custody entry, bounded and rate-limited per client by
  :class:`pollwatch.video.custody.PlaybackCustody`.
* ``/api/video/...``: the same as JSON; the audit views are in :mod:`.audit`.
* A station's segments, hashes, gaps, events and chain check are given only to a user the
  policy allows there; a denied user sees the camera names and why they are denied.

The client address is ``request.client.host``. Behind a reverse proxy that is the proxy's
address, so the policy's ``[proxy] trusted`` ranges must list the proxies whose
``X-Forwarded-For`` header is believed; nothing else ever reads that header
(:func:`pollwatch.video.playback.client_address`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.responses import StreamingResponse

from pollwatch.errors import VideoError
from pollwatch.video.accounts import ANONYMOUS, SESSION_LIFETIME, User
from pollwatch.video.custody import REPEAT_WINDOW
from pollwatch.video.playback import (
    Credentials,
    FootageRequest,
    Grant,
    Origin,
    PlaybackRefused,
    PlaybackService,
    Viewer,
)
from pollwatch.video.policy import Decision
from pollwatch.video.segments import format_time, parse_time

from .access_log import note_address, note_user
from .dependencies import PlaybackDep
from .pages import error, page
from .responses import MEDIA, errors

__all__ = [
    "FOOTAGE_ROUTES",
    "REPEAT_WINDOW",
    "SESSION_COOKIE",
    "identify",
    "refused",
    "router",
    "station_names",
]

#: The name of the session cookie.
SESSION_COOKIE = "pollwatch_session"
#: Routes that serve footage; every one of them goes through the policy and the custody log.
FOOTAGE_ROUTES = frozenset({"/video/segments/{sha256}", "/api/video/segments/{sha256}"})
#: Bytes read from the object store per chunk of a response.
CHUNK = 256 * 1024

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_LOCAL_PATH = re.compile(r"^/(?![/\\])[^\s\\]*$")
CopyParameter = Literal["original", "blurred"]
_RANGE_HEADER = {
    "name": "Range",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "one byte range, e.g. bytes=0-1023 (several or a malformed one: the whole file)",
}

router = APIRouter()


# --- the request, parsed -----------------------------------------------------------------------
def credentials(request: Request) -> Credentials:
    """The ``Authorization`` header and session cookie the request presents."""
    return Credentials(
        authorization=request.headers.get("authorization"),
        session=request.cookies.get(SESSION_COOKIE),
    )


def origin(request: Request) -> Origin:
    """The connection's peer and the ``X-Forwarded-For`` values, as sent."""
    peer = request.client.host if request.client is not None else "unknown"
    return Origin(peer=peer, forwarded_for=tuple(request.headers.getlist("x-forwarded-for")))


def identify(playback: PlaybackService, request: Request) -> Viewer:
    """The viewer of a request, named in its access-log line; 401 for a bad token."""
    viewer = playback.identify(credentials(request))
    note_user(request, viewer.user.name)
    return viewer


def address(playback: PlaybackService, request: Request) -> str:
    """The client address the policy judges, named in the request's access-log line."""
    return note_address(request, playback.address(origin(request)))


async def refused(request: Request, exc: PlaybackRefused) -> Response:
    """The answer to a refused request: its status and one line; who and where are logged."""
    if exc.actor is not None:
        note_user(request, exc.actor)
    if exc.address is not None:
        note_address(request, exc.address)
    return error(request, exc.status, exc.one_line())


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range asked for, as (first, last) inclusive; None for the whole file.

    Several ranges or a malformed header are answered with the whole file (RFC 9110 lets a
    server ignore Range); a range that starts past the end is a 416.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:
        length = int(last_text)
        if length == 0:
            raise _Unsatisfiable
        return max(0, size - length), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise _Unsatisfiable
    return first, min(last, size - 1)


class _Unsatisfiable(Exception):
    """A range that starts past the end of the file (answered 416)."""


# --- login -------------------------------------------------------------------------------------
def safe_next(target: str | None) -> str:
    """Where to go after logging in: only a path on this site ("//host", "/\\host" would leave)."""
    if target and _LOCAL_PATH.match(target):
        return target
    return "/video"


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, playback: PlaybackDep, next: str | None = None) -> HTMLResponse:
    user = identify(playback, request).user
    return page(request, "login.html", {"next": safe_next(next), "user": user, "error": None})


def _login_refused(request: Request, next: str | None, message: str, status: int) -> HTMLResponse:
    context = {"next": safe_next(next), "user": ANONYMOUS, "error": message}
    return page(request, "login.html", context, status)


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    playback: PlaybackDep,
    next: Annotated[str | None, Form()] = None,
) -> Response:
    client = address(playback, request)
    outcome = playback.logins.authenticate(playback.accounts, name.strip(), password, client)
    if outcome.lockout is not None:
        locked = _login_refused(request, next, outcome.lockout.message(), 429)
        locked.headers["Retry-After"] = str(outcome.lockout.retry_after)
        return locked
    user = outcome.user
    if user is None:
        return _login_refused(request, next, "wrong user name or password", 401)
    note_user(request, user.name)
    token = playback.accounts.create_session(user.name)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, playback: PlaybackDep) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        playback.accounts.end_session(cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/api/video/me", tags=["video"], responses=errors(401))
def api_me(request: Request, playback: PlaybackDep) -> Any:
    """Who the request is (token, session or anonymous) and the role it plays."""
    return identify(playback, request).user.to_dict()


# --- footage -----------------------------------------------------------------------------------
def _chunks(stream: BinaryIO, first: int, last: int) -> Iterator[bytes]:
    try:
        stream.seek(first)
        left = last - first + 1
        while left > 0:
            data = stream.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        stream.close()


def _stream(playback: PlaybackService, grant: Grant, span: tuple[int, int] | None) -> Response:
    first, last = span if span is not None else (0, grant.size - 1)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(max(0, last - first + 1)),
        "Cache-Control": "private, no-store",
        "X-Pollwatch-Copy": grant.copy,
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{grant.size}"
    return StreamingResponse(
        _chunks(playback.open(grant), first, last),
        status_code=206 if span is not None else 200,
        media_type=grant.media_type,
        headers=headers,
    )


def serve(
    request: Request, playback: PlaybackService, sha256: str, copy: CopyParameter | None
) -> Response:
    """Parse the request, let the service decide (and log), then stream the grant."""
    grant = playback.authorise(
        FootageRequest(
            sha256=sha256,
            copy=copy,
            credentials=credentials(request),
            origin=origin(request),
            range=request.headers.get("range", ""),
        )
    )
    note_user(request, grant.viewer.user.name)
    note_address(request, grant.address)
    try:
        span = _parse_range(request.headers.get("range"), grant.size)
    except _Unsatisfiable:
        return Response(
            status_code=416,
            headers={"Content-Range": f"bytes */{grant.size}", "Accept-Ranges": "bytes"},
        )
    playback.record_viewing(grant)
    return _stream(playback, grant, span)


@router.get("/video/segments/{sha256}", include_in_schema=False)
def segment_media(
    request: Request, sha256: str, playback: PlaybackDep, copy: CopyParameter | None = None
) -> Response:
    return serve(request, playback, sha256, copy)


@router.get(
    "/api/video/segments/{sha256}",
    tags=["video"],
    response_class=Response,
    responses={**MEDIA, **errors(401, 403, 404, 409, 416, 422)},
    openapi_extra={"parameters": [_RANGE_HEADER]},  # read by serve(), not a parameter
)
def api_segment_media(
    request: Request,
    sha256: str,
    playback: PlaybackDep,
    copy: Annotated[
        CopyParameter | None,
        Query(description="original or blurred (default: the best the policy allows)"),
    ] = None,
) -> Response:
    """A segment's bytes (HTTP range requests), if the policy allows; logged as custody."""
    return serve(request, playback, sha256, copy)


# --- station data ------------------------------------------------------------------------------
def station_names(playback: PlaybackService) -> list[str]:
    """Stations with recorded video (none before the archive exists)."""
    if not playback.has_archive():
        return []  # no archive yet: nothing recorded
    return playback.index().stations()


def _access(playback: PlaybackService, request: Request, user: User, station: str) -> Decision:
    return playback.station_access(user, station, address(playback, request))


def stations_data(playback: PlaybackService, request: Request, user: User) -> list[dict[str, Any]]:
    """One row per station with video: cameras, segments, span, what the policy grants."""
    if not station_names(playback):
        return []
    index = playback.index()
    policy = playback.policy_or_none()
    rows = []
    for station in index.stations():
        segments = index.segments(station)
        rows.append(
            {
                "station": station,
                "region": policy.region_of(station) if policy is not None else None,
                "cameras": index.cameras(station),
                "segments": len(segments),
                "first": format_time(min(s.start for s in segments)) if segments else None,
                "last": format_time(max(s.end for s in segments)) if segments else None,
                "access": _access(playback, request, user, station).to_dict(),
            }
        )
    return rows


def _camera_rows(
    playback: PlaybackService, station: str, decision: Decision
) -> list[dict[str, Any]]:
    """Each camera's segments (with their player URLs), gaps, events and chain check."""
    index = playback.index()
    cameras = []
    for camera in index.cameras(station):
        rows = []
        for segment in index.segments(station, camera):
            blurred = index.blurred_copy(segment.sha256)
            row = segment.to_dict()
            row["blurred"] = blurred.sha256 if blurred is not None else None
            playable = decision.allowed and (decision.copy == "original" or blurred)
            row["url"] = (
                f"/video/segments/{segment.sha256}?copy={decision.copy}" if playable else None
            )
            rows.append(row)
        cameras.append(
            {
                "camera": camera,
                "segments": rows,
                "gaps": [gap.to_dict() for gap in index.gaps(station, camera)],
                "events": [event.to_dict() for event in index.events(station, camera)],
                "chain_problems": index.verify_chain(station, camera),
            }
        )
    return cameras


def station_data(
    playback: PlaybackService, request: Request, user: User, station: str
) -> dict[str, Any]:
    """A station's cameras, and, only where the policy allows the user, its footage."""
    try:
        cameras = playback.index().cameras(station)
    except VideoError as exc:
        raise PlaybackRefused(exc.one_line(), status=404) from None
    decision = _access(playback, request, user, station)
    result: dict[str, Any] = {"station": station, "access": decision.to_dict(), "cameras": []}
    if not decision.allowed:
        # Denied here: no segment hashes, timeline or chain check, only the camera names.
        result["cameras"] = [
            {"camera": camera, "segments": [], "gaps": [], "events": [], "chain_problems": []}
            for camera in cameras
        ]
        result["withheld"] = True
        return result
    result["withheld"] = False
    result["cameras"] = _camera_rows(playback, station, decision)
    return result


@router.get("/api/video/stations", tags=["video"], responses=errors(401, 404))
def api_stations(request: Request, playback: PlaybackDep) -> Any:
    """Stations with video: cameras, segment counts, and what the policy grants the caller."""
    user = identify(playback, request).user
    return {"user": user.to_dict(), "stations": stations_data(playback, request, user)}


@router.get("/api/video/stations/{station:path}", tags=["video"], responses=errors(401, 404, 422))
def api_station(request: Request, station: str, playback: PlaybackDep) -> Any:
    """A station's cameras with their segments, gaps, events and chain check."""
    user = identify(playback, request).user
    return {"user": user.to_dict(), **station_data(playback, request, user, station)}


@router.get("/video", response_class=HTMLResponse, include_in_schema=False)
def video_index(request: Request, playback: PlaybackDep) -> HTMLResponse:
    user = identify(playback, request).user
    return page(
        request,
        "video_index.html",
        {"user": user, "stations": stations_data(playback, request, user)},
    )


# --- the station page --------------------------------------------------------------------------
def _timelines(cameras: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any, Any]:
    """Each camera's segments, gaps and events placed on one shared time axis (percent)."""
    spans = [
        (parse_time(s["start"]), parse_time(s["end"]))
        for camera in cameras
        for s in camera["segments"]
    ]
    low: datetime | None = min((a for a, _ in spans), default=None)
    high: datetime | None = max((b for _, b in spans), default=None)
    total = (high - low).total_seconds() if low and high and high > low else 1.0

    def place(start: str, end: str | None = None) -> dict[str, float]:
        if low is None:
            return {"left": 0.0, "width": 0.0}
        a = (parse_time(start) - low).total_seconds()
        b = (parse_time(end) - low).total_seconds() if end else a
        return {
            "left": round(max(0.0, 100 * a / total), 3),
            "width": round(max(0.3, 100 * (b - a) / total), 3),
        }

    timelines = [
        {
            "camera": camera["camera"],
            "segments": [{**s, **place(s["start"], s["end"])} for s in camera["segments"]],
            "gaps": [{**g, **place(g["start"], g["end"])} for g in camera["gaps"]],
            "events": [{**e, **place(e["time"])} for e in camera["events"]],
            "chain_problems": camera["chain_problems"],
        }
        for camera in cameras
    ]
    return timelines, low, high


# Registered last: a station id may contain '/', so this route takes the rest of the path (and
# the app includes this router after every other router with /video routes).
@router.get("/video/{station:path}", response_class=HTMLResponse, include_in_schema=False)
def station_page(request: Request, station: str, playback: PlaybackDep) -> HTMLResponse:
    """A station's cameras, timelines and player."""
    user = identify(playback, request).user
    data = station_data(playback, request, user, station)
    timelines, low, high = _timelines(data["cameras"])
    playlist = {
        camera["camera"]: [
            {"sha256": s["sha256"], "url": s["url"], "start": s["start"], "end": s["end"]}
            for s in camera["segments"]
        ]
        for camera in data["cameras"]
    }
    return page(
        request,
        "video_station.html",
        {
            "user": user,
            "station": station,
            "access": data["access"],
            "withheld": data["withheld"],
            "timelines": timelines,
            "low": format_time(low) if low else None,
            "high": format_time(high) if high else None,
            "playlist_json": json.dumps(playlist).replace("</", "<\\/"),
        },
    )
