"""The audit views: who watched a station, viewings by origin network and role, denied requests.

``/audit`` and ``/audit/{view}`` (pages) and ``/api/audit/{view}`` (JSON, or CSV with
``format=csv``) read the custody log (:class:`pollwatch.video.audit.AuditLog`, through the
playback service); they are for the roles in :data:`~pollwatch.video.audit.AUDIT_ROLES`: a
visitor who is not logged in is sent to the login page (pages) or gets a 401 (API), any other
role a 403.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from pollwatch.video.accounts import User
from pollwatch.video.audit import AUDIT_ROLES, Viewing
from pollwatch.video.playback import PlaybackService
from pollwatch.video.segments import parse_time

from .dependencies import PlaybackDep
from .pages import page
from .responses import CSV, errors
from .video import identify, station_names
from .views import to_csv

__all__ = ["router"]

Format = Literal["json", "csv"]
_DATE_TIME = {"format": "date-time"}
StartQuery = Annotated[
    str | None,
    Query(min_length=1, description="from this time (ISO 8601)", json_schema_extra=_DATE_TIME),
]
EndQuery = Annotated[
    str | None,
    Query(min_length=1, description="before this time (ISO 8601)", json_schema_extra=_DATE_TIME),
]

router = APIRouter()


def auditor(playback: PlaybackService, request: Request) -> User:
    """The user, when the audit views are for their role: 401 anonymous, 403 another role."""
    user = identify(playback, request).user
    if user.anonymous:
        raise HTTPException(401, "log in to see the audit views")
    if user.role not in AUDIT_ROLES:
        raise HTTPException(
            403, f"the audit views are for the roles {', '.join(AUDIT_ROLES)}, not {user.role}"
        )
    return user


def _window(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    return (
        parse_time(start) if start else None,
        parse_time(end) if end else None,
    )


def audit_rows(
    playback: PlaybackService, view: str, station: str | None, start: str | None, end: str | None
) -> list[dict[str, object]]:
    """The rows of one view over the custody log (``watched`` needs its station: 400)."""
    low, high = _window(start, end)
    audit = playback.audit()
    if view == "watched":
        if not station:
            raise HTTPException(400, "name the station: ?station=<id>")
        viewings: list[Viewing] = audit.who_watched(station, start=low, end=high)
        return [v.to_dict() for v in viewings]
    if view == "denied":
        return [v.to_dict() for v in audit.denied(station=station, start=low, end=high)]
    policy = playback.policy_or_none()

    def named(address: str) -> str | None:
        return policy.network_name(address) if policy is not None else None

    return [r.to_dict() for r in audit.by_origin(named=named, start=low, end=high)]


def _csv_link(path: str, query: dict[str, str]) -> str:
    return (
        f"{path}?"
        + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items() if v)
        + ("&" if any(query.values()) else "")
        + "format=csv"
    )


def audit_response(
    request: Request,
    playback: PlaybackService,
    view: str,
    station: str | None,
    start: str | None,
    end: str | None,
    format: str,
) -> Response:
    """One view as CSV, JSON (under ``/api``) or its page."""
    user = auditor(playback, request)
    rows = audit_rows(playback, view, station, start, end)
    if format == "csv":
        name = f"audit-{view}" + (f"-{re.sub(r'[^A-Za-z0-9._-]', '_', station)}" if station else "")
        return Response(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if request.url.path.startswith("/api"):
        return JSONResponse({"view": view, "station": station, "rows": rows})
    query = {"station": station or "", "start": start or "", "end": end or ""}
    context = {
        "user": user,
        "view": view,
        "rows": rows,
        "query": query,
        "stations": station_names(playback),
        "csv": _csv_link(request.url.path, query),
    }
    return page(request, "audit_view.html", context)


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_index(request: Request, playback: PlaybackDep) -> Response:
    user = identify(playback, request).user
    if user.anonymous:
        return RedirectResponse("/login?next=/audit", status_code=303)
    auditor(playback, request)
    return page(request, "audit_index.html", {"user": user, "stations": station_names(playback)})


def _add_view(view: str, summary: str) -> None:
    """The page ``/audit/{view}`` and the API route ``/api/audit/{view}`` of one view."""

    def html_view(
        request: Request,
        playback: PlaybackDep,
        station: str | None = None,
        start: str | None = None,
        end: str | None = None,
        format: Format = "json",
    ) -> Response:
        user = identify(playback, request).user
        if user.anonymous:
            return RedirectResponse(
                "/login?next=" + quote(str(request.url.path), safe="/"), status_code=303
            )
        return audit_response(request, playback, view, station, start, end, format)

    def api_view(
        request: Request,
        playback: PlaybackDep,
        station: Annotated[str | None, Query(description="only this station")] = None,
        start: StartQuery = None,
        end: EndQuery = None,
        format: Format = "json",
    ) -> Response:
        return audit_response(request, playback, view, station, start, end, format)

    def api_watched(
        request: Request,
        playback: PlaybackDep,
        station: Annotated[str, Query(min_length=1, description="the station")],
        start: StartQuery = None,
        end: EndQuery = None,
        format: Format = "json",
    ) -> Response:
        return audit_response(request, playback, view, station, start, end, format)

    router.add_api_route(f"/audit/{view}", html_view, methods=["GET"], include_in_schema=False)
    router.add_api_route(
        f"/api/audit/{view}",
        api_watched if view == "watched" else api_view,  # who watched names its station
        methods=["GET"],
        tags=["audit"],
        summary=summary,
        responses={**CSV, **errors(400, 401, 403, 404, 422)},
    )


_add_view("watched", "Who watched a station: user, role, address, time, segment, copy")
_add_view("origins", "Viewings by origin network and role")
_add_view("denied", "Denied playback requests: who, from where, which rule")
