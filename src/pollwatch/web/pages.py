"""Rendering shared by every router: templates, pages, error answers, CSV files, chart JSON.

The Jinja2 environment is built once per app (:func:`make_templates`) and kept on
``app.state.templates``; :func:`page` renders a template with it. :func:`error` is the one
shape of every error: ``{"error": "<one line>"}`` under ``/api`` (or for a client that asks
for JSON), an HTML page with ``#error`` elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from pollwatch import __version__

from . import views

__all__ = ["charts_json", "csv_file", "error", "is_api", "make_templates", "page", "safe_name"]

TEMPLATES = Path(str(resources.files("pollwatch.web").joinpath("templates")))


def make_templates() -> Jinja2Templates:
    """The dashboard's templates with its filters (``pct``, ``num``, ``urlpart``)."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["pct"] = lambda v, d=2: "" if v is None else f"{100 * v:.{d}f}%"
    templates.env.filters["num"] = number
    templates.env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    templates.env.globals["version"] = __version__
    return templates


def page(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """The template ``name`` rendered with ``context`` (the app's templates)."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def is_api(request: Request) -> bool:
    """Whether the caller gets JSON: an ``/api`` path or an ``Accept`` naming JSON."""
    return request.url.path.startswith("/api") or "application/json" in request.headers.get(
        "accept", ""
    )


def error(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error answer: JSON ``{"error": message}`` for the API, else the error page."""
    if is_api(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    answer = page(request, "error.html", {"message": message, "status": status}, status)
    answer.headers.update(headers or {})
    return answer


def csv_file(rows: list[dict[str, Any]], name: str) -> Response:
    """Rows as a CSV attachment named ``name.csv`` (:func:`pollwatch.web.views.to_csv`)."""
    return Response(
        views.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def charts_json(charts: Mapping[str, Any]) -> str:
    """Chart specs as JSON that is safe inside a ``<script>`` element."""
    return json.dumps(charts, ensure_ascii=False).replace("</", "<\\/")


def safe_name(name: str) -> str:
    """A file name to save an upload under: no folders, no leading dots ("." and ".." too)."""
    base = Path(name or "upload").name
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:100]
    return re.sub(r"^\.+", lambda dots: "_" * len(dots.group()), safe) or "upload"


def number(value: Any, digits: int = 4) -> str:
    """A number as the pages show it: thousands separated, 4 significant digits, yes/no."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return ""
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)
