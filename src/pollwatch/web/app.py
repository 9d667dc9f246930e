"""The FastAPI application: HTML pages and the JSON API over the local store.

:func:`create_app` builds it from :class:`~pollwatch.settings.Settings`: the middleware, the
error handlers, what the routes share (on ``app.state``, handed to them by
:mod:`.dependencies`) and one router per area:

* :mod:`.static`: the vendored Vega scripts, the dashboard's scripts and styles, ReDoc;
* :mod:`.elections`: the catalogue, an election's page, its stations and regions;
* :mod:`.imports`: uploads and datasets into the store, import jobs;
* :mod:`.analysis`: method results, one method with chosen parameters, the verdict, the report;
* :mod:`.compare`: several elections side by side;
* :mod:`.video` and :mod:`.audit`: login, regulated playback, the audit views;
* :mod:`.turnout`: turnout over time and minimum-turnout scenarios.

Pages are Jinja2 templates rendered on the server; charts are Vega-Lite specs built in
:mod:`.views` and drawn by the vendored Vega scripts served under ``/static/vega/``. The API
documentation (``/docs``, Swagger UI; ``/redoc``, ReDoc) loads its scripts and styles from the
copies shipped in the ``fastapi-offline`` package, served under ``/static/docs/``. No page
loads anything from a CDN, so the dashboard works offline (``tests/web/test_offline.py``
checks every page). Loaded elections, their protocol checks and their analysis are kept in
memory per process (:mod:`.catalogue`), keyed by the stored election's ``meta.json``
modification time, so a re-import is picked up on the next request.

Errors: every :class:`~pollwatch.errors.PollwatchError`, unknown election or station and bad
query parameter becomes a 4xx response with ``{"error": "<one line>"}`` under ``/api`` (an
HTML page with ``#error`` elsewhere); a refused playback request has the status the playback
service gives it; an unexpected error becomes a 500 with one line, never a traceback.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from pollwatch import __version__
from pollwatch.errors import LimitError, PollwatchError
from pollwatch.forensics.parameters import ParameterError
from pollwatch.settings import Settings, load_settings
from pollwatch.video.playback import PlaybackRefused, PlaybackService

from . import analysis, audit, compare, elections, imports, static, turnout, video
from .access_log import AccessLog
from .catalogue import Catalogue
from .jobs import ImportJobs
from .origin import require_same_origin
from .pages import error, make_templates
from .responses import BadRequest, NotFound
from .uploads import UploadLimit

__all__ = ["ROUTERS", "all_routes", "create_app"]

#: The routers in the order their routes are matched (and listed in the OpenAPI schema). The
#: first route whose path matches decides a 405's ``Allow``, so ``imports`` (``POST
#: /api/elections/import``) comes before ``elections`` (``GET /api/elections/{election_id}``);
#: ``video`` ends with ``/video/{station:path}``, which takes the rest of the path, so no router
#: after it has a ``/video`` route.
ROUTERS = (
    static.router,
    imports.router,
    elections.router,
    analysis.router,
    compare.router,
    video.router,
    audit.router,
    turnout.router,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The dashboard and API over the store of ``settings`` (default: :func:`load_settings`)."""
    settings = settings or load_settings()
    # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN (blank offline);
    # FastAPIOffline serves the copies shipped in its wheel instead (/redoc is in .static).
    app = FastAPIOffline(
        title="pollwatch",
        version=__version__,
        description="Election forensics dashboard and JSON API over the local store.",
        static_url=static.DOCS_STATIC,
        redoc_url=None,
        # Every POST a browser form can send must come from this site (pollwatch.web.origin).
        dependencies=[Depends(require_same_origin)],
    )
    app.add_middleware(AccessLog)  # one line per request (pollwatch.web.access_log)
    state = app.state
    state.settings = settings
    state.templates = make_templates()
    state.catalogue = catalogue = Catalogue(settings)
    # Imports run in worker processes (pollwatch.web.jobs); uploads are capped as they arrive.
    state.jobs = ImportJobs(settings.import_workers, on_stored=catalogue.forget)
    app.add_middleware(UploadLimit, paths=imports.IMPORT_PATHS, max_bytes=settings.upload_max_bytes)
    state.video = playback = PlaybackService(settings)
    app.router.on_shutdown.append(playback.close)
    state.turnout = turnout.TurnoutElections(settings)
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def all_routes(app: FastAPI) -> list[BaseRoute]:
    """Every route of ``app``, its routers' routes flattened in, in the order they are matched.

    FastAPI keeps an included router as one entry of ``app.routes`` (since 0.137); this is the
    list of path operations, mounts and plain routes behind those entries.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before 0.137.2 copies included routes into app.routes
        return list(app.routes)
    return [context.original_route for context in iter_route_contexts(app.routes)]


# --- errors --------------------------------------------------------------------------------------
async def _not_found(request: Request, exc: Exception) -> Response:
    return error(request, 404, str(exc))


async def _bad(request: Request, exc: Exception) -> Response:
    return error(request, 400, str(exc))


async def _bad_parameter(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ParameterError)
    return error(request, 422, exc.one_line())


async def _pollwatch(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PollwatchError)
    return error(request, 413 if isinstance(exc, LimitError) else 400, exc.one_line())


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PlaybackRefused)
    return await video.refused(request, exc)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return error(request, 422, "invalid request: " + "; ".join(parts))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no page at {request.url.path}"
    return error(request, exc.status_code, message, exc.headers)  # e.g. Allow with a 405


async def _unexpected(request: Request, exc: Exception) -> Response:
    line = str(exc).splitlines()[0] if str(exc) else ""
    return error(request, 500, f"internal error: {type(exc).__name__}: {line}")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as one line (:func:`pollwatch.web.pages.error`), never a traceback."""
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(BadRequest, _bad)
    app.add_exception_handler(ParameterError, _bad_parameter)
    app.add_exception_handler(PlaybackRefused, _refused)
    app.add_exception_handler(PollwatchError, _pollwatch)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
