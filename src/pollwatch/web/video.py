"""Regulated playback in the dashboard: login, station pages with a player, segment media, audit.

:func:`register` adds the routes to the app of :func:`pollwatch.web.app.create_app`:

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
* ``/api/video/...``: the same as JSON; ``/audit`` pages and ``/api/audit/...`` (who watched a
  station, viewings by origin network and role, denied requests; CSV with ``format=csv``),
  for the roles in :data:`~pollwatch.video.audit.AUDIT_ROLES`.
* A station's segments, hashes, gaps, events and chain check are given only to a user the
  policy allows there; a denied user sees the camera names and why they are denied.

The client address is ``request.client.host``. Behind a reverse proxy that is the proxy's
address, so the policy's ``[proxy] trusted`` ranges must list the proxies whose
``X-Forwarded-For`` header is believed; nothing else ever reads that header.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse

from pollwatch import __version__
from pollwatch.errors import EvidenceError, PolicyError, VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.settings import Settings
from pollwatch.video.accounts import ANONYMOUS, SESSION_LIFETIME, AccountStore, User
from pollwatch.video.audit import AUDIT_ROLES, AuditLog, Viewing
from pollwatch.video.custody import REPEAT_WINDOW, PlaybackCustody
from pollwatch.video.policy import POLICY_FILE, Decision, PlaybackRequest, Policy, load_policy
from pollwatch.video.segments import Segment, VideoIndex, format_time, parse_time
from pollwatch.video.throttle import LoginThrottle

from . import views
from .access_log import note_address, note_user
from .responses import CSV, MEDIA, errors

__all__ = ["FOOTAGE_ROUTES", "REPEAT_WINDOW", "SESSION_COOKIE", "register"]

#: The name of the session cookie.
SESSION_COOKIE = "pollwatch_session"
#: Routes that serve footage; every one of them goes through the policy and the custody log.
FOOTAGE_ROUTES = frozenset({"/video/segments/{sha256}", "/api/video/segments/{sha256}"})
#: Bytes read from the object store per chunk of a response.
CHUNK = 256 * 1024

_TEMPLATES = Path(str(resources.files("pollwatch.web").joinpath("templates")))
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_LOCAL_PATH = re.compile(r"^/(?![/\\])[^\s\\]*$")
CopyParameter = Literal["original", "blurred"]
Format = Literal["json", "csv"]
_DATE_TIME = {"format": "date-time"}
_RANGE_HEADER = {
    "name": "Range",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "one byte range, e.g. bytes=0-1023 (several or a malformed one: the whole file)",
}
StartQuery = Annotated[
    str | None,
    Query(min_length=1, description="from this time (ISO 8601)", json_schema_extra=_DATE_TIME),
]
EndQuery = Annotated[
    str | None,
    Query(min_length=1, description="before this time (ISO 8601)", json_schema_extra=_DATE_TIME),
]


class VideoService:
    """What the video routes share: accounts, login throttle, policy, archive, custody."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logins = LoginThrottle()
        self._lock = threading.Lock()
        self._archive: EvidenceArchive | None = None
        self._index: VideoIndex | None = None
        self._audit: AuditLog | None = None
        self._custody: PlaybackCustody | None = None
        self._accounts: AccountStore | None = None
        self._policy: tuple[float, Policy] | None = None

    @property
    def accounts(self) -> AccountStore:
        with self._lock:
            if self._accounts is None:
                self._accounts = AccountStore(self.settings.video_dir)
            return self._accounts

    def archive(self) -> EvidenceArchive:
        with self._lock:
            if self._archive is None:
                try:
                    self._archive = EvidenceArchive(self.settings.evidence_dir)
                except EvidenceError as exc:
                    raise HTTPException(404, f"no video: {exc.one_line()}") from None
            return self._archive

    def index(self) -> VideoIndex:
        archive = self.archive()
        with self._lock:
            if self._index is None:
                self._index = VideoIndex.from_archive(archive)
            return self._index

    def audit(self) -> AuditLog:
        """The audit views, after the summaries of closed denial windows are written."""
        self.custody().flush()
        archive = self.archive()
        with self._lock:
            if self._audit is None:
                self._audit = AuditLog(archive)
            return self._audit

    def custody(self) -> PlaybackCustody:
        """The custody writer: access and denied entries, bounded and rate-limited."""
        archive = self.archive()
        with self._lock:
            if self._custody is None:
                self._custody = PlaybackCustody(archive)
            return self._custody

    def close(self) -> None:
        """At shutdown: write the summaries of every open denial window."""
        with self._lock:
            custody = self._custody
        if custody is not None:
            custody.close()

    def policy(self) -> Policy:
        """The policy in force, re-read when ``policy.toml`` changes; PolicyError if malformed."""
        path = self.settings.video_dir / POLICY_FILE
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = -1
        with self._lock:
            if self._policy is not None and self._policy[0] == stamp:
                return self._policy[1]
        policy = load_policy(self.settings)
        with self._lock:
            self._policy = (stamp, policy)
        return policy


# --- identity and address ----------------------------------------------------------------------
def identify(service: VideoService, request: Request) -> tuple[User, str]:
    """The user of a request (bearer token, session cookie, else anonymous) and a key for it.

    A bearer token that is unknown or revoked is a 401, never a silent downgrade to public.
    """
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            note_user(request, claimed_identity(request))
            raise HTTPException(401, "the Authorization header must be 'Bearer <token>'")
        user = service.accounts.token_user(token.strip())
        if user is None:
            note_user(request, claimed_identity(request))
            raise HTTPException(401, "unknown or revoked API token")
        note_user(request, user.name)
        return user, "token:" + _digest(token.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user = service.accounts.session_user(cookie)
        if user is not None:
            note_user(request, user.name)
            return user, "session:" + _digest(cookie)
    note_user(request, ANONYMOUS.name)
    return ANONYMOUS, "anonymous"


def claimed_identity(request: Request) -> str:
    """Who a refused ``Authorization`` header claimed to be, for the logs (never the secret).

    ``token:<id>``: the first 12 hex digits of the token's SHA-256, the id that
    ``pollwatch video token list`` shows, so a revoked token is recognised; else the scheme.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode("utf-8")).hexdigest()[:12]
    return "authorization:" + (re.sub(r"[^A-Za-z0-9._-]", "_", scheme)[:16] or "empty")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:32]


def client_address(request: Request, policy: Policy | None) -> str:
    """``request.client.host``, or the X-Forwarded-For client when it came from a trusted proxy.

    The header is read right to left and the first address that is not a trusted proxy wins,
    so a client cannot forge its address by sending the header itself; an entry that is not
    an IP address ends the walk at the last trusted hop, so no arbitrary text is ever taken for
    an address. Forwarded headers count only from the policy's ``[proxy] trusted`` ranges
    (none by default); ``pollwatch serve`` keeps uvicorn from rewriting the address itself
    (:mod:`pollwatch.web.server`).
    """
    host = request.client.host if request.client is not None else "unknown"
    if policy is None or not policy.trusted_proxies or not _in(host, policy):
        return host
    forwarded = [
        part.strip()
        for value in request.headers.getlist("x-forwarded-for")
        for part in value.split(",")
        if part.strip()
    ]
    for candidate in reversed(forwarded):
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            # Not an address (a port, a name, markup): the chain is unreadable from here on,
            # so the last proxy that can be trusted is the client we know.
            return host
        if not _in(candidate, policy):
            return candidate
        host = candidate
    return host


def _in(address: str, policy: Policy) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in policy.trusted_proxies)


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


# --- registration ------------------------------------------------------------------------------
def register(app: FastAPI, settings: Settings, templates: Jinja2Templates | None = None) -> None:
    """Add the video, login and audit routes to ``app`` (see the module docstring)."""
    service = VideoService(settings)
    app.state.video = service
    app.router.on_shutdown.append(service.close)
    if templates is None:
        templates = Jinja2Templates(directory=str(_TEMPLATES))
        templates.env.globals["version"] = __version__
        templates.env.filters["urlpart"] = lambda v: quote(str(v), safe="")

    def page(
        request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        assert templates is not None
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api")

    # --- login ---------------------------------------------------------------------------
    def safe_next(target: str | None) -> str:
        # only a path on this site: "//host" and "/\\host" would leave it
        if target and _LOCAL_PATH.match(target):
            return target
        return "/video"

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        user, _ = identify(service, request)
        return page(request, "login.html", {"next": safe_next(next), "user": user, "error": None})

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        name: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next: Annotated[str | None, Form()] = None,
    ) -> Response:
        try:
            policy: Policy | None = service.policy()
        except PolicyError:
            policy = None
        address = note_address(request, client_address(request, policy))
        outcome = service.logins.authenticate(service.accounts, name.strip(), password, address)
        if outcome.lockout is not None:
            context = {
                "next": safe_next(next),
                "user": ANONYMOUS,
                "error": outcome.lockout.message(),
            }
            locked = page(request, "login.html", context, 429)
            locked.headers["Retry-After"] = str(outcome.lockout.retry_after)
            return locked
        user = outcome.user
        if user is None:
            context = {
                "next": safe_next(next),
                "user": ANONYMOUS,
                "error": "wrong user name or password",
            }
            return page(request, "login.html", context, 401)
        note_user(request, user.name)
        token = service.accounts.create_session(user.name)
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

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            service.accounts.end_session(cookie)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/api/video/me", tags=["video"], responses=errors(401))
    def api_me(request: Request) -> Any:
        """Who the request is (token, session or anonymous) and the role it plays."""
        user, _ = identify(service, request)
        return user.to_dict()

    # --- footage -------------------------------------------------------------------------
    def segment_or_404(index: VideoIndex, sha256: str) -> Segment:
        try:
            return index.segment(sha256)
        except VideoError as exc:
            raise HTTPException(404, exc.one_line()) from None

    def refuse_unidentified(request: Request, sha256: str, copy: str | None, why: str) -> None:
        """The custody entry of a footage request with an unknown or revoked token (401)."""
        try:
            asked = service.index().segment(sha256)
        except (HTTPException, VideoError):
            return  # no such segment (or no archive): there is no item to record it on
        try:
            policy: Policy | None = service.policy()
        except PolicyError:
            policy = None
        service.custody().denied(
            asked.sha256,
            actor=claimed_identity(request),
            address=note_address(request, client_address(request, policy)),
            reason="unauthenticated",
            status=401,
            details={
                "role": "",
                "copy": copy or "",
                "station": asked.station,
                "camera": asked.camera,
                "range": request.headers.get("range", ""),
                "decision": why,
            },
        )

    def serve(request: Request, sha256: str, copy: CopyParameter | None) -> Response:
        """Decide, log, then stream one segment (see the module docstring)."""
        try:
            user, key = identify(service, request)
        except HTTPException as refused:
            refuse_unidentified(request, sha256, copy, str(refused.detail))
            raise
        index = service.index()
        asked = segment_or_404(index, sha256)
        original = asked
        if asked.copy == "blurred" and asked.source_item:
            original = segment_or_404(index, asked.source_item)
            copy = copy or "blurred"
        try:
            policy: Policy | None = service.policy()
        except PolicyError as exc:
            policy, broken = None, exc.one_line()
        else:
            broken = ""
        address = note_address(request, client_address(request, policy))
        details: dict[str, Any] = {
            "role": user.role,
            "copy": copy or "",
            "station": original.station,
            "camera": original.camera,
            "range": request.headers.get("range", ""),
        }
        if policy is None:
            decision = Decision(False, None, "policy-invalid", f"the policy is invalid: {broken}")
        else:
            decision = policy.decide(
                user, PlaybackRequest(station=original.station, address=address, copy=copy)
            )
        if not decision.allowed or decision.copy is None:
            service.custody().denied(
                asked.sha256,
                actor=user.name,
                address=address,
                reason=decision.rule,
                status=403,
                details={**details, "decision": decision.reason},
            )
            raise HTTPException(403, f"denied: {decision.reason}")
        if decision.copy == "original":
            target: Segment | None = original
        elif asked.copy == "blurred":
            target = asked  # that very copy, even when a newer one exists
        else:
            target = index.blurred_copy(original.sha256)
        if target is None:
            message = (
                f"segment {original.sha256[:16]} has no blurred copy yet and the policy allows "
                f"you only blurred copies (rule {decision.rule!r}); it is not served "
                "(run 'pollwatch video blur' to make one)"
            )
            service.custody().denied(
                asked.sha256,
                actor=user.name,
                address=address,
                reason="no-blurred-copy",
                status=409,
                details={**details, "rule": decision.rule, "decision": message},
            )
            raise HTTPException(409, message)
        size = target.size
        try:
            span = _parse_range(request.headers.get("range"), size)
        except _Unsatisfiable:
            return Response(
                status_code=416,
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
        details["copy"] = decision.copy
        service.custody().access(
            target.sha256,
            key=key,
            copy=decision.copy,
            actor=user.name,
            address=address,
            details={**details, "rule": decision.rule},
        )
        first, last = span if span is not None else (0, size - 1)
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Length": str(max(0, last - first + 1)),
            "Cache-Control": "private, no-store",
            "X-Pollwatch-Copy": decision.copy,
        }
        if span is not None:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        stream = service.archive().objects.open(target.sha256)

        def chunks() -> Iterator[bytes]:
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

        return StreamingResponse(
            chunks(),
            status_code=206 if span is not None else 200,
            media_type=target.media_type or "video/mp4",
            headers=headers,
        )

    @app.get("/video/segments/{sha256}", include_in_schema=False)
    def segment_media(request: Request, sha256: str, copy: CopyParameter | None = None) -> Response:
        return serve(request, sha256, copy)

    @app.get(
        "/api/video/segments/{sha256}",
        tags=["video"],
        response_class=Response,
        responses={**MEDIA, **errors(401, 403, 404, 409, 416, 422)},
        openapi_extra={"parameters": [_RANGE_HEADER]},  # read by serve(), not a parameter
    )
    def api_segment_media(
        request: Request,
        sha256: str,
        copy: Annotated[
            CopyParameter | None,
            Query(description="original or blurred (default: the best the policy allows)"),
        ] = None,
    ) -> Response:
        """A segment's bytes (HTTP range requests), if the policy allows; logged as custody."""
        return serve(request, sha256, copy)

    # --- station data --------------------------------------------------------------------
    def access_for(request: Request, user: User, station: str) -> Decision:
        try:
            policy = service.policy()
        except PolicyError as exc:
            return Decision(False, None, "policy-invalid", exc.one_line())
        address = note_address(request, client_address(request, policy))
        return policy.decide(user, PlaybackRequest(station=station, address=address))

    def station_names() -> list[str]:
        if not (settings.evidence_dir / "archive.json").is_file():
            return []  # no archive yet: nothing recorded
        return service.index().stations()

    def stations_data(request: Request, user: User) -> list[dict[str, Any]]:
        if not station_names():
            return []
        index = service.index()
        try:
            policy: Policy | None = service.policy()
        except PolicyError:
            policy = None
        rows = []
        for station in index.stations():
            segments = index.segments(station)
            decision = access_for(request, user, station)
            rows.append(
                {
                    "station": station,
                    "region": policy.region_of(station) if policy is not None else None,
                    "cameras": index.cameras(station),
                    "segments": len(segments),
                    "first": format_time(min(s.start for s in segments)) if segments else None,
                    "last": format_time(max(s.end for s in segments)) if segments else None,
                    "access": decision.to_dict(),
                }
            )
        return rows

    def station_data(request: Request, user: User, station: str) -> dict[str, Any]:
        index = service.index()
        try:
            cameras = index.cameras(station)
        except VideoError as exc:
            raise HTTPException(404, exc.one_line()) from None
        decision = access_for(request, user, station)
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
        for camera in cameras:
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
            result["cameras"].append(
                {
                    "camera": camera,
                    "segments": rows,
                    "gaps": [gap.to_dict() for gap in index.gaps(station, camera)],
                    "events": [event.to_dict() for event in index.events(station, camera)],
                    "chain_problems": index.verify_chain(station, camera),
                }
            )
        return result

    @app.get("/api/video/stations", tags=["video"], responses=errors(401, 404))
    def api_stations(request: Request) -> Any:
        """Stations with video: cameras, segment counts, and what the policy grants the caller."""
        user, _ = identify(service, request)
        return {"user": user.to_dict(), "stations": stations_data(request, user)}

    @app.get("/api/video/stations/{station:path}", tags=["video"], responses=errors(401, 404, 422))
    def api_station(request: Request, station: str) -> Any:
        """A station's cameras with their segments, gaps, events and chain check."""
        user, _ = identify(service, request)
        return {"user": user.to_dict(), **station_data(request, user, station)}

    @app.get("/video", response_class=HTMLResponse, include_in_schema=False)
    def video_index(request: Request) -> HTMLResponse:
        user, _ = identify(service, request)
        return page(
            request, "video_index.html", {"user": user, "stations": stations_data(request, user)}
        )

    # --- audit ---------------------------------------------------------------------------
    def auditor(request: Request) -> User:
        user, _ = identify(service, request)
        if user.anonymous:
            raise HTTPException(401, "log in to see the audit views")
        if user.role not in AUDIT_ROLES:
            raise HTTPException(
                403, f"the audit views are for the roles {', '.join(AUDIT_ROLES)}, not {user.role}"
            )
        return user

    def window(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
        return (
            parse_time(start) if start else None,
            parse_time(end) if end else None,
        )

    def named_network(address: str) -> str | None:
        try:
            return service.policy().network_name(address)
        except PolicyError:
            return None

    def audit_rows(
        view: str, station: str | None, start: str | None, end: str | None
    ) -> list[dict[str, Any]]:
        low, high = window(start, end)
        audit = service.audit()
        if view == "watched":
            if not station:
                raise HTTPException(400, "name the station: ?station=<id>")
            viewings: list[Viewing] = audit.who_watched(station, start=low, end=high)
            return [v.to_dict() for v in viewings]
        if view == "denied":
            return [v.to_dict() for v in audit.denied(station=station, start=low, end=high)]
        return [r.to_dict() for r in audit.by_origin(named=named_network, start=low, end=high)]

    def audit_response(
        request: Request,
        view: str,
        station: str | None,
        start: str | None,
        end: str | None,
        format: str,
    ) -> Response:
        user = auditor(request)
        rows = audit_rows(view, station, start, end)
        if format == "csv":
            name = f"audit-{view}" + (
                f"-{re.sub(r'[^A-Za-z0-9._-]', '_', station)}" if station else ""
            )
            return Response(
                views.to_csv(rows),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        if is_api(request):
            return JSONResponse({"view": view, "station": station, "rows": rows})
        query = {"station": station or "", "start": start or "", "end": end or ""}
        return page(
            request,
            "audit_view.html",
            {
                "user": user,
                "view": view,
                "rows": rows,
                "query": query,
                "stations": station_names(),
                "csv": f"{request.url.path}?"
                + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items() if v)
                + ("&" if any(query.values()) else "")
                + "format=csv",
            },
        )

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_index(request: Request) -> Response:
        user, _ = identify(service, request)
        if user.anonymous:
            return RedirectResponse("/login?next=/audit", status_code=303)
        auditor(request)
        return page(request, "audit_index.html", {"user": user, "stations": station_names()})

    def add_audit_view(view: str, summary: str) -> None:
        def html_view(
            request: Request,
            station: str | None = None,
            start: str | None = None,
            end: str | None = None,
            format: Format = "json",
        ) -> Response:
            user, _ = identify(service, request)
            if user.anonymous:
                return RedirectResponse(
                    "/login?next=" + quote(str(request.url.path), safe="/"), status_code=303
                )
            return audit_response(request, view, station, start, end, format)

        def api_view(
            request: Request,
            station: Annotated[str | None, Query(description="only this station")] = None,
            start: StartQuery = None,
            end: EndQuery = None,
            format: Format = "json",
        ) -> Response:
            return audit_response(request, view, station, start, end, format)

        def api_watched(
            request: Request,
            station: Annotated[str, Query(min_length=1, description="the station")],
            start: StartQuery = None,
            end: EndQuery = None,
            format: Format = "json",
        ) -> Response:
            return audit_response(request, view, station, start, end, format)

        app.add_api_route(f"/audit/{view}", html_view, methods=["GET"], include_in_schema=False)
        app.add_api_route(
            f"/api/audit/{view}",
            api_watched if view == "watched" else api_view,  # who watched names its station
            methods=["GET"],
            tags=["audit"],
            summary=summary,
            responses={**CSV, **errors(400, 401, 403, 404, 422)},
        )

    add_audit_view("watched", "Who watched a station: user, role, address, time, segment, copy")
    add_audit_view("origins", "Viewings by origin network and role")
    add_audit_view("denied", "Denied playback requests: who, from where, which rule")

    # Registered last: a station id may contain '/', so this route takes the rest of the path.
    @app.get("/video/{station:path}", response_class=HTMLResponse, include_in_schema=False)
    def station_page(request: Request, station: str) -> HTMLResponse:
        user, _ = identify(service, request)
        data = station_data(request, user, station)
        spans = [
            (parse_time(s["start"]), parse_time(s["end"]))
            for camera in data["cameras"]
            for s in camera["segments"]
        ]
        low = min((a for a, _ in spans), default=None)
        high = max((b for _, b in spans), default=None)
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
            for camera in data["cameras"]
        ]
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
