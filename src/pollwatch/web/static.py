"""Static files and the API documentation: vendored Vega, the dashboard's scripts, ReDoc.

The Vega scripts are the copies shipped in :mod:`pollwatch.reports` (``/static/vega/``); the
dashboard's own script and styles are in this package (``/static/``). Swagger UI (``/docs``)
and its files come from ``fastapi-offline`` (:func:`pollwatch.web.app.create_app`); ``/redoc``
is here, from the same package's copy of ReDoc, with no web font and no CDN logo. Nothing here
loads anything from a CDN.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response

from .responses import NotFound

__all__ = ["DOCS_STATIC", "router"]

_VEGA = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
_WEB_STATIC = ("dashboard.js", "dashboard.css", "video.js")
#: Where Swagger UI's and ReDoc's scripts and styles (from ``fastapi-offline``) are served.
DOCS_STATIC = "/static/docs"
#: ReDoc's bundle hard-codes its logo on a CDN (the "API docs by Redocly" link): the /redoc page
#: lets images come from this site only, so the browser never asks for it (the link stays).
_REDOC_POLICY = "img-src 'self' data: blob:"

router = APIRouter()


@router.get("/static/vega/{name}", include_in_schema=False)
def vega_script(name: str) -> Response:
    if name not in _VEGA and name != "LICENSES-vega.txt":
        raise NotFound(f"no static file {name!r}")
    text = resources.files("pollwatch.reports").joinpath("static", name).read_bytes()
    kind = "text/plain" if name.endswith(".txt") else "text/javascript"
    return Response(text, media_type=kind, headers={"Cache-Control": "max-age=86400"})


@router.get("/redoc", include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over the OpenAPI schema, from fastapi-offline's copy: no web font, no CDN logo."""
    app = request.app
    answer = get_redoc_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
        with_google_fonts=False,
    )
    answer.headers["Content-Security-Policy"] = _REDOC_POLICY
    return answer


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/static/{name}", include_in_schema=False)
def web_static(name: str) -> Response:
    if name not in _WEB_STATIC:
        raise NotFound(f"no static file {name!r}")
    path = resources.files("pollwatch.web").joinpath("static", name)
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return Response(path.read_bytes(), media_type=kind)
