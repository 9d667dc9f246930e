"""Imports and jobs: uploads and datasets into the store, run in worker processes.

``POST /elections/import`` (the browser form) and ``POST /api/elections/import`` copy the
upload (capped as it arrives, :mod:`.uploads`) into a private folder and start an import job
(:mod:`.jobs`); the answer waits for the job a while: the election when it is done (201, or a
redirect to its page), else the job to poll (202 with ``Location``, or its progress page).
``GET /api/jobs/{job}`` and ``/jobs/{job}`` show a job; ``POST /elections/import-dataset``
imports a public dataset. Every POST here is CSRF-checked like every other
(:mod:`.origin`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pollwatch.errors import PollwatchError
from pollwatch.results.datasets import DATASETS, import_dataset
from pollwatch.results.importers import ImportLimits
from pollwatch.results.importers.mapping import shipped_mappings
from pollwatch.settings import Settings

from .catalogue import Catalogue
from .dependencies import CatalogueDep, JobsDep, SettingsDep
from .elections import catalogue_page
from .jobs import ImportJobs, ImportOrder, JobsBusy
from .pages import is_api, page, safe_name
from .responses import NotFound, errors

__all__ = ["IMPORT_PATHS", "router"]

#: The routes that take uploads (capped at ``Settings.upload_max_bytes`` as they arrive).
IMPORT_PATHS = frozenset({"/elections/import", "/api/elections/import"})
#: How long the browser form waits for an import before showing the job's progress page.
_FORM_WAIT_SECONDS = 3.0
#: The API's answer for an import still running when the wait is over.
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "the import is still running: poll the job (GET /api/jobs/{job})"}
}

router = APIRouter()


def _mapping_path(folder: Path, mapping: UploadFile | str | None) -> Path | None:
    """A shipped mapping's name, or the uploaded mapping copied into ``folder``."""
    if isinstance(mapping, str) and mapping.strip():
        name = mapping.strip()
        if name not in shipped_mappings():
            raise PollwatchError(
                f"no shipped mapping {name!r}",
                hint=f"shipped: {', '.join(sorted(shipped_mappings()))}; or upload a mapping file",
            )
        return Path(name)
    if mapping is not None and not isinstance(mapping, str) and mapping.filename:
        path = folder / ("mapping-" + safe_name(mapping.filename))
        with path.open("wb") as out:
            shutil.copyfileobj(mapping.file, out)
        return path
    return None


def save_upload(
    settings: Settings,
    file: UploadFile,
    format: str | None,
    mapping: UploadFile | str | None,
    election_id: str | None,
    strict: bool = False,
) -> ImportOrder:
    """Copy the upload (spooled by the form parser) into a private folder for its job."""
    folder = Path(tempfile.mkdtemp(prefix="pollwatch-upload-"))
    try:
        target = folder / safe_name(file.filename or "upload")
        with target.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        mapping_path = _mapping_path(folder, mapping)
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
    request: Request, catalogue: Catalogue, message: str, json_only: bool, status: int = 400
) -> Response:
    """The error of an import: JSON for the API, else the catalogue page with the message."""
    if json_only or is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    return catalogue_page(request, catalogue, message, status)


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
    state = request.app.state
    catalogue: Catalogue = state.catalogue
    jobs: ImportJobs = state.jobs
    try:
        order = await run_in_threadpool(
            save_upload, state.settings, file, format, mapping, election_id, strict
        )
        job_id = jobs.submit(order)
    except PollwatchError as exc:
        return upload_failed(request, catalogue, exc.one_line(), json_only)
    except JobsBusy as exc:
        return upload_failed(request, catalogue, str(exc), json_only, status=503)
    await jobs.wait(job_id, wait)
    job = jobs.snapshot(job_id)
    api = json_only or is_api(request)
    if job["state"] == "failed":
        return upload_failed(request, catalogue, job["error"], json_only, status=job["status"])
    if job["state"] == "done":
        result = job["result"]
        if api:
            answer = {"id": result["id"], "url": result["url"], "job": job_id}
            return JSONResponse(answer, status_code=201)
        return RedirectResponse(result["url"], status_code=303)
    if api:
        return JSONResponse(job, status_code=202, headers={"Location": job["poll"]})
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


def _known_job(jobs: ImportJobs, job_id: str) -> dict[str, Any]:
    if not jobs.known(job_id):
        raise NotFound(f"no import job {job_id!r} (finished jobs are kept a while only)")
    snapshot: dict[str, Any] = jobs.snapshot(job_id)
    return snapshot


@router.get("/api/jobs/{job_id}", tags=["elections"], responses=errors(404, 422))
def api_job(job_id: str, jobs: JobsDep) -> Any:
    """An import job: state (queued, running, done, failed), stage, progress (0 to 1),
    ``result`` (the election's id and url) or ``error`` and ``status`` (400, 413, 500)."""
    return _known_job(jobs, job_id)


@router.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
def job_page(request: Request, job_id: str, jobs: JobsDep) -> HTMLResponse:
    return page(request, "job.html", {"job": _known_job(jobs, job_id)})


@router.post("/elections/import", include_in_schema=False)
async def import_form(
    request: Request,
    file: Annotated[UploadFile, File()],
    settings: SettingsDep,
    format: Annotated[str | None, Form()] = None,
    mapping: Annotated[UploadFile | str | None, Form()] = None,
    id: Annotated[str | None, Form()] = None,
    strict: Annotated[bool, Form()] = False,
) -> Response:
    wait = min(settings.import_wait_seconds, _FORM_WAIT_SECONDS)
    return await handle_import(request, file, format, mapping, id, False, wait, strict)


@router.post(
    "/api/elections/import",
    status_code=201,
    tags=["elections"],
    responses={**_ACCEPTED, **errors(400, 403, 413, 422, 503)},
)
async def api_import(
    request: Request,
    file: Annotated[UploadFile, File(description="the results file")],
    settings: SettingsDep,
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


@router.post("/elections/import-dataset", include_in_schema=False)
def import_dataset_form(
    request: Request,
    dataset: Annotated[str, Form()],
    catalogue: CatalogueDep,
    settings: SettingsDep,
) -> Response:
    try:
        election = import_dataset(DATASETS.get(dataset), settings)
        catalogue.store.save(election)
        catalogue.forget(election.id)
    except PollwatchError as exc:
        return upload_failed(request, catalogue, exc.one_line(), json_only=False)
    if is_api(request):
        return JSONResponse(
            {"id": election.id, "url": f"/elections/{election.id}"}, status_code=201
        )
    return RedirectResponse(f"/elections/{election.id}", status_code=303)
