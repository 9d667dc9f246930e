"""The FastAPI application: HTML pages and the JSON API over the local store.

:func:`create_app` builds it from :class:`~pollwatch.settings.Settings`. Pages are Jinja2
templates rendered on the server; charts are Vega-Lite specs built in :mod:`.views` and drawn by
the vendored Vega scripts served under ``/static/vega/``. The API documentation (``/docs``,
Swagger UI; ``/redoc``, ReDoc) loads its scripts and styles from the copies shipped in the
``fastapi-offline`` package, served under ``/static/docs/``. No page loads anything from a CDN,
so the dashboard works offline (``tests/web/test_offline.py`` checks every page). Loaded
elections, their protocol checks and their analysis are kept in memory per process, keyed by
the stored election's ``meta.json`` modification time, so a re-import is picked up on the next
request.

Errors: every :class:`~pollwatch.errors.PollwatchError`, unknown election or station and bad
query parameter becomes a 4xx response with ``{"error": "<one line>"}`` under ``/api`` (an
HTML page with ``#error`` elsewhere); an unexpected error becomes a 500 with one line, never a
traceback.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from pollwatch import __version__
from pollwatch.errors import LimitError, PollwatchError, StoreError
from pollwatch.forensics.base import MethodResult, method_names
from pollwatch.forensics.suite import SuiteReport, run_suite
from pollwatch.forensics.verdict import Verdict, verdict
from pollwatch.reports.html import render_report
from pollwatch.results.checks import QualityReport, check_protocols
from pollwatch.results.datasets import DATASETS, import_dataset
from pollwatch.results.importers import ImportLimits
from pollwatch.results.importers.mapping import shipped_mappings
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore, check_election_id
from pollwatch.settings import Settings, load_settings

from . import turnout as turnout_routes
from . import video as video_routes
from . import views
from .access_log import AccessLog
from .jobs import ImportJobs, ImportOrder, JobsBusy
from .origin import require_same_origin
from .responses import CSV, BadRequest, NotFound, errors
from .uploads import UploadLimit

__all__ = ["create_app"]

_VEGA = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
_WEB_STATIC = ("dashboard.js", "dashboard.css", "video.js")
#: Where Swagger UI's and ReDoc's scripts and styles (from ``fastapi-offline``) are served.
_DOCS_STATIC = "/static/docs"
#: ReDoc's bundle hard-codes its logo on a CDN (the "API docs by Redocly" link): the /redoc page
#: lets images come from this site only, so the browser never asks for it (the link stays).
_REDOC_POLICY = "img-src 'self' data: blob:"
_TEMPLATES = Path(str(resources.files("pollwatch.web").joinpath("templates")))

Format = Literal["json", "csv"]

#: The routes that take uploads (capped at ``Settings.upload_max_bytes`` as they arrive).
_IMPORT_PATHS = frozenset({"/elections/import", "/api/elections/import"})
#: How long the browser form waits for an import before showing the job's progress page.
_FORM_WAIT_SECONDS = 3.0
#: The API's answer for an import still running when the wait is over.
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "the import is still running: poll the job (GET /api/jobs/{job})"}
}


@dataclass
class Loaded:
    """One stored election with what the pages need, computed once per process."""

    election: Election
    quality: QualityReport
    stamp: int
    results: dict[str, MethodResult] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict)

    def memoised(self, key: str, make: Any) -> Any:
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]


class Catalogue:
    """The store, with loaded elections and their analysis kept in memory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ElectionStore(settings.elections_dir)
        self._loaded: dict[str, Loaded] = {}
        self._lock = threading.Lock()

    def _stamp(self, election_id: str) -> int:
        try:
            check_election_id(election_id)
        except StoreError:
            raise NotFound(f"no election {election_id!r} in the store") from None
        path = self.settings.elections_dir / election_id / "meta.json"
        try:
            return path.stat().st_mtime_ns
        except OSError:
            raise NotFound(f"no election {election_id!r} in the store") from None

    def get(self, election_id: str) -> Loaded:
        """The election with its checks and analysis; 404 when it is not stored."""
        stamp = self._stamp(election_id)
        with self._lock:
            loaded = self._loaded.get(election_id)
            if loaded is not None and loaded.stamp == stamp:
                return loaded
            election = self.store.load(election_id)
            loaded = Loaded(election=election, quality=check_protocols(election), stamp=stamp)
            self._analyse(loaded)
            self._loaded[election_id] = loaded
            return loaded

    def _analyse(self, loaded: Loaded) -> None:
        """Cached suite results, plus the fast subset computed (and cached) where missing."""
        election = loaded.election
        cache = self.settings.analysis_dir
        digest = election.content_digest()
        loaded.results = views.cached_results(cache, election.id, digest)
        shpilkin = loaded.results.get("shpilkin")
        # the methods whose class says ``fast``: the others appear once ``pollwatch analyze``
        # has cached them
        missing = [m for m in method_names("fast") if m not in loaded.results]
        if shpilkin is not None and "regions" not in shpilkin.details:
            missing.append("shpilkin")
        if missing:
            report = run_suite(election, missing, by_region=True, cache_dir=cache)
            for result in report.results:
                loaded.results[result.method] = result
            loaded.skipped = list(report.skipped)

    def forget(self, election_id: str) -> None:
        with self._lock:
            self._loaded.pop(election_id, None)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api") or "application/json" in request.headers.get(
        "accept", ""
    )


def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    return Response(
        views.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _safe_name(name: str) -> str:
    """A file name to save an upload under: no folders, no leading dots ("." and ".." too)."""
    base = Path(name or "upload").name
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:100]
    return re.sub(r"^\.+", lambda dots: "_" * len(dots.group()), safe) or "upload"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The dashboard and API over the store of ``settings`` (default: :func:`load_settings`)."""
    settings = settings or load_settings()
    catalogue = Catalogue(settings)
    templates = Jinja2Templates(directory=str(_TEMPLATES))
    templates.env.filters["pct"] = lambda v, d=2: "" if v is None else f"{100 * v:.{d}f}%"
    templates.env.filters["num"] = _number
    templates.env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    templates.env.globals["version"] = __version__
    # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN (blank offline);
    # FastAPIOffline serves the copies shipped in its wheel instead (/redoc is below).
    app = FastAPIOffline(
        title="pollwatch",
        version=__version__,
        description="Election forensics dashboard and JSON API over the local store.",
        static_url=_DOCS_STATIC,
        redoc_url=None,
        # Every POST a browser form can send must come from this site (pollwatch.web.origin).
        dependencies=[Depends(require_same_origin)],
    )
    app.add_middleware(AccessLog)  # one line per request (pollwatch.web.access_log)
    app.state.catalogue = catalogue
    # Imports run in worker processes (pollwatch.web.jobs); uploads are capped as they arrive.
    jobs = ImportJobs(settings.import_workers, on_stored=catalogue.forget)
    app.state.jobs = jobs
    app.add_middleware(UploadLimit, paths=_IMPORT_PATHS, max_bytes=settings.upload_max_bytes)

    def page(
        request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def error(
        request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        if _is_api(request):
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        answer = page(request, "error.html", {"message": message, "status": status}, status)
        answer.headers.update(headers or {})
        return answer

    # --- errors -----------------------------------------------------------------------------
    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return error(request, 404, str(exc))

    @app.exception_handler(BadRequest)
    async def _bad(request: Request, exc: BadRequest) -> Response:
        return error(request, 400, str(exc))

    @app.exception_handler(PollwatchError)
    async def _pollwatch(request: Request, exc: PollwatchError) -> Response:
        return error(request, 413 if isinstance(exc, LimitError) else 400, exc.one_line())

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for item in exc.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {item.get('msg', 'invalid')}")
        return error(request, 422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no page at {request.url.path}"
        return error(request, exc.status_code, message, exc.headers)  # e.g. Allow with a 405

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        line = str(exc).splitlines()[0] if str(exc) else ""
        return error(request, 500, f"internal error: {type(exc).__name__}: {line}")

    # --- helpers ----------------------------------------------------------------------------
    def station_or_404(loaded: Loaded, station_id: str) -> dict[str, Any]:
        try:
            detail: dict[str, Any] = views.station_detail(
                loaded.election, station_id, loaded.quality, list(loaded.results.values())
            )
        except KeyError:
            raise NotFound(
                f"no station {station_id!r} in election {loaded.election.id!r}"
            ) from None
        return detail

    def overview(loaded: Loaded) -> dict[str, Any]:
        data: dict[str, Any] = loaded.memoised(
            "overview", lambda: views.overview(loaded.election, loaded.quality)
        )
        return data

    def regions(loaded: Loaded) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = loaded.memoised(
            "regions",
            lambda: views.region_table(
                loaded.election, loaded.results.get("shpilkin"), loaded.results.get("triage")
            ),
        )
        return rows

    def histograms(loaded: Loaded) -> dict[str, list[dict[str, Any]]]:
        data: dict[str, list[dict[str, Any]]] = loaded.memoised(
            "histograms", lambda: views.histograms(loaded.election)
        )
        return data

    def grid(loaded: Loaded) -> list[dict[str, Any]]:
        cells: list[dict[str, Any]] = loaded.memoised(
            "grid", lambda: views.fingerprint_grid(loaded.election)
        )
        return cells

    def stations(loaded: Loaded, page: int, size: int, sort: str, region: str | None) -> Any:
        return views.stations_page(
            loaded.election,
            loaded.results.get("triage"),
            page=page,
            size=size,
            sort=sort,
            region=region or None,
        )

    def judged(loaded: Loaded) -> Verdict:
        """The verdict over the results shown (pollwatch.forensics.verdict decides it)."""

        def make() -> Verdict:
            suite = SuiteReport(
                election_id=loaded.election.id,
                input_digest=loaded.election.content_digest(),
                results=tuple(loaded.results[name] for name in sorted(loaded.results)),
                skipped=tuple(loaded.skipped),
            )
            return verdict(suite, simulation=loaded.election.meta.simulation_notice)

        made: Verdict = loaded.memoised("verdict", make)
        return made

    def methods(loaded: Loaded) -> list[dict[str, Any]]:
        order = sorted(loaded.results.values(), key=lambda r: r.method)
        return views.methods_rows(order)

    # --- static -----------------------------------------------------------------------------
    @app.get("/static/vega/{name}", include_in_schema=False)
    def vega_script(name: str) -> Response:
        if name not in _VEGA and name != "LICENSES-vega.txt":
            raise NotFound(f"no static file {name!r}")
        text = resources.files("pollwatch.reports").joinpath("static", name).read_bytes()
        kind = "text/plain" if name.endswith(".txt") else "text/javascript"
        return Response(text, media_type=kind, headers={"Cache-Control": "max-age=86400"})

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        """ReDoc over the OpenAPI schema, from fastapi-offline's copy: no web font, no CDN logo."""
        answer = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{_DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{_DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )
        answer.headers["Content-Security-Policy"] = _REDOC_POLICY
        return answer

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name}", include_in_schema=False)
    def web_static(name: str) -> Response:
        if name not in _WEB_STATIC:
            raise NotFound(f"no static file {name!r}")
        path = resources.files("pollwatch.web").joinpath("static", name)
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return Response(path.read_bytes(), media_type=kind)

    # --- HTML pages -------------------------------------------------------------------------
    def catalogue_page(
        request: Request, message: str | None = None, status_code: int = 200
    ) -> HTMLResponse:
        return page(
            request,
            "index.html",
            {
                "entries": catalogue.store.list(),
                "datasets": sorted(name for name, _ in DATASETS.items()),
                "error": message,
            },
            status_code,
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        return catalogue_page(request)

    def store_election(election: Election) -> str:
        catalogue.store.save(election)
        catalogue.forget(election.id)
        return election.id

    def save_upload(
        file: UploadFile,
        format: str | None,
        mapping: UploadFile | str | None,
        election_id: str | None,
        strict: bool = False,
    ) -> ImportOrder:
        """Copy the upload (spooled by the form parser) into a private folder for its job."""
        folder = Path(tempfile.mkdtemp(prefix="pollwatch-upload-"))
        try:
            target = folder / _safe_name(file.filename or "upload")
            with target.open("wb") as out:
                shutil.copyfileobj(file.file, out)
            mapping_path: Path | None = None
            if isinstance(mapping, str) and mapping.strip():
                name = mapping.strip()
                if name not in shipped_mappings():
                    raise PollwatchError(
                        f"no shipped mapping {name!r}",
                        hint=f"shipped: {', '.join(sorted(shipped_mappings()))}; "
                        "or upload a mapping file",
                    )
                mapping_path = Path(name)
            elif mapping is not None and not isinstance(mapping, str) and mapping.filename:
                mapping_path = folder / ("mapping-" + _safe_name(mapping.filename))
                with mapping_path.open("wb") as out:
                    shutil.copyfileobj(mapping.file, out)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return ImportOrder(
            folder=folder,
            upload=target,
            upload_name=target.name,
            importer=format or None,
            mapping=mapping_path,
            election_id=election_id or None,
            elections_dir=settings.elections_dir,
            limits=ImportLimits.from_settings(settings),
            strict=strict,
        )

    def upload_failed(
        request: Request, message: str, json_only: bool, status: int = 400
    ) -> Response:
        if json_only or _is_api(request):
            return JSONResponse({"error": message}, status_code=status)
        return catalogue_page(request, message, status)

    async def handle_import(
        request: Request,
        file: UploadFile,
        format: str | None,
        mapping: UploadFile | str | None,
        election_id: str | None,
        json_only: bool,
        wait: float,
        strict: bool = False,
    ) -> Response:
        """Start an import job; answer with its outcome if it ends within ``wait`` seconds."""
        try:
            order = await run_in_threadpool(save_upload, file, format, mapping, election_id, strict)
            job_id = jobs.submit(order)
        except PollwatchError as exc:
            return upload_failed(request, exc.one_line(), json_only)
        except JobsBusy as exc:
            return upload_failed(request, str(exc), json_only, status=503)
        await jobs.wait(job_id, wait)
        job = jobs.snapshot(job_id)
        api = json_only or _is_api(request)
        if job["state"] == "failed":
            return upload_failed(request, job["error"], json_only, status=job["status"])
        if job["state"] == "done":
            result = job["result"]
            if api:
                answer = {"id": result["id"], "url": result["url"], "job": job_id}
                return JSONResponse(answer, status_code=201)
            return RedirectResponse(result["url"], status_code=303)
        if api:
            return JSONResponse(job, status_code=202, headers={"Location": job["poll"]})
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)

    @app.get("/api/jobs/{job_id}", tags=["elections"], responses=errors(404, 422))
    def api_job(job_id: str) -> Any:
        """An import job: state (queued, running, done, failed), stage, progress (0 to 1),
        ``result`` (the election's id and url) or ``error`` and ``status`` (400, 413, 500)."""
        if not jobs.known(job_id):
            raise NotFound(f"no import job {job_id!r} (finished jobs are kept a while only)")
        return jobs.snapshot(job_id)

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: str) -> HTMLResponse:
        if not jobs.known(job_id):
            raise NotFound(f"no import job {job_id!r} (finished jobs are kept a while only)")
        return page(request, "job.html", {"job": jobs.snapshot(job_id)})

    @app.post("/elections/import", include_in_schema=False)
    async def import_form(
        request: Request,
        file: Annotated[UploadFile, File()],
        format: Annotated[str | None, Form()] = None,
        mapping: Annotated[UploadFile | str | None, Form()] = None,
        id: Annotated[str | None, Form()] = None,
        strict: Annotated[bool, Form()] = False,
    ) -> Response:
        wait = min(settings.import_wait_seconds, _FORM_WAIT_SECONDS)
        return await handle_import(request, file, format, mapping, id, False, wait, strict)

    @app.post(
        "/api/elections/import",
        status_code=201,
        tags=["elections"],
        responses={**_ACCEPTED, **errors(400, 403, 413, 422, 503)},
    )
    async def api_import(
        request: Request,
        file: Annotated[UploadFile, File(description="the results file")],
        format: Annotated[str | None, Form(description="importer name (default: detect)")] = None,
        mapping: Annotated[
            UploadFile | str | None,
            Form(description="mapping file (TOML) or the name of a shipped mapping"),
        ] = None,
        id: Annotated[str | None, Form(description="election id in the store")] = None,
        strict: Annotated[
            bool,
            Form(description="fail on the first bad row (default: set bad rows aside)"),
        ] = False,
        wait: Annotated[
            float | None,
            Query(
                ge=0,
                description="seconds to wait for the import (default and most: the "
                "import_wait_seconds setting); 0 answers 202 with the job at once",
            ),
        ] = None,
    ) -> Response:
        """Import an uploaded file into the store, in a worker process.

        201 with the election's ``id`` and ``url`` when the import ends within ``wait`` seconds;
        else 202 with the job to poll (``GET /api/jobs/{job}``, also in ``Location``). 400 with
        the one-line error for a file that cannot be imported, 413 for one over a limit.
        """
        limit = settings.import_wait_seconds
        patience = limit if wait is None else min(wait, limit)
        return await handle_import(request, file, format, mapping, id, True, patience, strict)

    @app.post("/elections/import-dataset", include_in_schema=False)
    def import_dataset_form(request: Request, dataset: Annotated[str, Form()]) -> Response:
        try:
            election = import_dataset(DATASETS.get(dataset), settings)
            new_id = store_election(election)
        except PollwatchError as exc:
            return upload_failed(request, exc.one_line(), json_only=False)
        if _is_api(request):
            return JSONResponse({"id": new_id, "url": f"/elections/{new_id}"}, status_code=201)
        return RedirectResponse(f"/elections/{new_id}", status_code=303)

    @app.get("/elections/{election_id}", response_class=HTMLResponse, include_in_schema=False)
    def election_page(
        request: Request,
        election_id: str,
        page_number: Annotated[int, Query(alias="page", ge=1)] = 1,
    ) -> HTMLResponse:
        loaded = catalogue.get(election_id)
        election = loaded.election
        data = overview(loaded)
        listing = stations(loaded, page_number, 50, "-score", None)
        hist = histograms(loaded)
        klimek = loaded.results.get("klimek-fingerprint")
        fingerprint = (
            dict(klimek.charts["fingerprint"])
            if klimek is not None and "fingerprint" in klimek.charts
            else views.fingerprint_spec(grid(loaded), title=f"{election.id}: fingerprint")
        )
        charts = {
            "turnout-histogram": views.histogram_spec(
                hist["turnout"], title="Turnout (0.1 pp bins)", x_title="turnout, %"
            ),
            "share-histogram": views.histogram_spec(
                hist["leader_share"],
                title=f"{data['summary']['leader'] or 'leader'}'s vote share (0.1 pp bins)",
                x_title="leader's vote share, %",
            ),
            "fingerprint": fingerprint,
        }
        return page(
            request,
            "election.html",
            {
                "election": election,
                "meta": election.meta,
                "summary": data["summary"],
                "quality": loaded.quality,
                "methods": methods(loaded),
                "skipped": loaded.skipped,
                "regions": regions(loaded),
                "listing": listing,
                "charts_json": json.dumps(charts, ensure_ascii=False).replace("</", "<\\/"),
                "fast_only": all(m in method_names("fast") for m in loaded.results),
                "verdict_html": judged(loaded).html(),
            },
        )

    @app.get(
        "/elections/{election_id}/quarantine",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    def quarantine_page(request: Request, election_id: str) -> HTMLResponse:
        election = catalogue.get(election_id).election
        return page(
            request,
            "quarantine.html",
            {"election": election, "meta": election.meta, "quarantine": election.quarantine},
        )

    @app.get(
        "/elections/{election_id}/report", response_class=HTMLResponse, include_in_schema=False
    )
    def election_report(election_id: str) -> HTMLResponse:
        """The same self-contained report as ``pollwatch report``, over the results shown."""
        loaded = catalogue.get(election_id)
        suite = SuiteReport(
            election_id=loaded.election.id,
            input_digest=loaded.election.content_digest(),
            results=tuple(loaded.results[name] for name in sorted(loaded.results)),
            skipped=tuple(loaded.skipped),
        )
        return HTMLResponse(render_report(loaded.election, loaded.quality, suite))

    @app.get(
        "/elections/{election_id}/stations/{station_id:path}",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    def station_page(request: Request, election_id: str, station_id: str) -> HTMLResponse:
        loaded = catalogue.get(election_id)
        detail = station_or_404(loaded, station_id)
        return page(
            request,
            "station.html",
            {"election": loaded.election, "d": detail, "station_id": station_id},
        )

    def compare_data(ids: list[str]) -> dict[str, Any]:
        if not 1 <= len(ids) <= 6:
            raise BadRequest("compare takes 1 to 6 election ids (?ids=a&ids=b)")
        loaded = [catalogue.get(i) for i in ids]
        overviews = [overview(item) for item in loaded]
        grids = [grid(item) for item in loaded]
        top = max((c["count"] for cells in grids for c in cells), default=1)
        return {
            "rows": views.compare_rows(overviews),
            "fingerprints": [
                views.fingerprint_spec(cells, title=item.election.id, size=300, max_count=top)
                for item, cells in zip(loaded, grids, strict=True)
            ],
        }

    @app.get("/compare", response_class=HTMLResponse, include_in_schema=False)
    def compare_page(
        request: Request, ids: Annotated[list[str] | None, Query()] = None
    ) -> HTMLResponse:
        data = compare_data(ids or [])
        return page(
            request,
            "compare.html",
            {
                "rows": data["rows"],
                "charts_json": json.dumps(
                    {f"fp-{i}": spec for i, spec in enumerate(data["fingerprints"])}
                ).replace("</", "<\\/"),
                "count": len(data["fingerprints"]),
            },
        )

    # --- JSON API ---------------------------------------------------------------------------
    @app.get("/api/elections", tags=["elections"], responses={**CSV, **errors(400, 422)})
    def api_elections(format: Format = "json") -> Any:
        """The stored elections."""
        rows = [e.to_dict() for e in catalogue.store.list()]
        return _csv(rows, "elections") if format == "csv" else {"elections": rows}

    @app.get("/api/elections/{election_id}", tags=["elections"], responses=errors(400, 404, 422))
    def api_election(election_id: str) -> Any:
        """Metadata, summary and protocol-check counts of one election."""
        return overview(catalogue.get(election_id))

    @app.get(
        "/api/elections/{election_id}/quarantine",
        tags=["elections"],
        responses=errors(400, 404, 422),
    )
    def api_quarantine(election_id: str) -> Any:
        """The source rows the import set aside: line, column, reason, raw cells."""
        return catalogue.get(election_id).election.quarantine.to_dict()

    @app.get(
        "/api/elections/{election_id}/stations",
        tags=["stations"],
        responses={**CSV, **errors(400, 404, 422)},
    )
    def api_stations(
        election_id: str,
        page: Annotated[int, Query(ge=1, description="page number, from 1")] = 1,
        size: Annotated[
            int, Query(ge=1, le=views.MAX_PAGE_SIZE, description="stations per page")
        ] = 50,
        sort: Annotated[
            str,
            Query(
                pattern=r"^-?(" + "|".join(views.SORT_KEYS) + ")$",
                description="sort key, '-' prefix for descending; -score is the triage rank",
            ),
        ] = "-score",
        region: Annotated[str | None, Query(description="only this region")] = None,
        format: Format = "json",
    ) -> Any:
        """One page of stations with turnout, leader share, triage score and flag."""
        data = stations(catalogue.get(election_id), page, size, sort, region)
        if format == "csv":
            return _csv(data["stations"], f"{election_id}-stations-{page}")
        return data

    @app.get(
        "/api/elections/{election_id}/stations/{station_id:path}",
        tags=["stations"],
        responses={**CSV, **errors(400, 404, 422)},
    )
    def api_station(election_id: str, station_id: str, format: Format = "json") -> Any:
        """One station: protocol, derived numbers, checks, reasons, neighbours."""
        detail = station_or_404(catalogue.get(election_id), station_id)
        if format == "csv":
            safe = _safe_name(station_id)
            return _csv([views.station_csv_row(detail)], f"{election_id}-{safe}")
        return detail

    @app.get(
        "/api/elections/{election_id}/regions",
        tags=["elections"],
        responses={**CSV, **errors(400, 404, 422)},
    )
    def api_regions(election_id: str, format: Format = "json") -> Any:
        """One row per region."""
        loaded = catalogue.get(election_id)
        rows = regions(loaded)
        if format == "csv":
            return _csv(rows, f"{election_id}-regions")
        return {"simulation": loaded.election.meta.simulation_notice, "regions": rows}

    @app.get(
        "/api/elections/{election_id}/methods",
        tags=["analysis"],
        responses={**CSV, **errors(400, 404, 422)},
    )
    def api_methods(election_id: str, format: Format = "json") -> Any:
        """Method results: cached suite results plus the fast subset."""
        loaded = catalogue.get(election_id)
        rows = methods(loaded)
        if format == "csv":
            return _csv(rows, f"{election_id}-methods")
        return {
            "simulation": loaded.election.meta.simulation_notice,
            "methods": rows,
            "skipped": [{"method": m, "reason": r} for m, r in loaded.skipped],
            "results": [r.to_dict() for r in loaded.results.values()],
        }

    @app.get(
        "/api/elections/{election_id}/verdict",
        tags=["analysis"],
        responses=errors(400, 404, 422),
    )
    def api_verdict(election_id: str) -> Any:
        """The verdict over the results shown: headline, findings of the methods reliable on
        clean elections (with their calibration), the methods not cited and why (format
        ``pollwatch-verdict/1``, docs/verdict.md)."""
        return judged(catalogue.get(election_id)).to_dict()

    @app.get(
        "/api/elections/{election_id}/histograms",
        tags=["analysis"],
        responses={**CSV, **errors(400, 404, 422)},
    )
    def api_histograms(election_id: str, format: Format = "json") -> Any:
        """Turnout and leader-share histograms: counts in 0.1 percentage-point bins."""
        loaded = catalogue.get(election_id)
        data = histograms(loaded)
        if format == "csv":
            rows = [{"quantity": q, **row} for q, counts in data.items() for row in counts]
            return _csv(rows, f"{election_id}-histograms")
        return {
            "simulation": loaded.election.meta.simulation_notice,
            "bin_width_percent": 0.1,
            **data,
        }

    @app.get("/api/compare", tags=["elections"], responses={**CSV, **errors(400, 404, 422)})
    def api_compare(
        ids: Annotated[
            list[str], Query(min_length=1, max_length=6, description="1 to 6 election ids")
        ],
        format: Format = "json",
    ) -> Any:
        """Headline numbers of several elections side by side."""
        data = compare_data(ids)
        return _csv(data["rows"], "compare") if format == "csv" else {"elections": data["rows"]}

    # --- video: login, regulated playback, audit (pollwatch.web.video) ------------------------
    video_routes.register(app, settings, templates)
    # --- turnout over time and threshold scenarios (pollwatch.web.turnout) ------------------
    turnout_routes.register(app, settings, templates)
    return app


def _number(value: Any, digits: int = 4) -> str:
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
