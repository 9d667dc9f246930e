"""Elections and stations: the catalogue page, an election's page, its stations and regions.

Pages: ``/`` (the stored elections and the import forms), ``/elections/{id}`` (summary,
checks, histograms, the Klimek fingerprint, the methods table, the region table, the ranked
stations), ``/elections/{id}/quarantine`` and ``/elections/{id}/stations/{station}``. API:
``/api/elections``, ``/api/elections/{id}`` (overview), ``.../quarantine``, ``.../stations``
(pages of stations), ``.../stations/{station}`` and ``.../regions``; the lists also as CSV
with ``format=csv``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from pollwatch.forensics.base import method_names
from pollwatch.forensics.sections import FingerprintCells, RegionTable
from pollwatch.results.datasets import DATASETS

from . import views
from .catalogue import Catalogue
from .dependencies import CatalogueDep
from .pages import charts_json, csv_file, page, safe_name
from .responses import CSV, errors

__all__ = ["catalogue_page", "router"]

Format = Literal["json", "csv"]

router = APIRouter()


def catalogue_page(
    request: Request, catalogue: Catalogue, message: str | None = None, status_code: int = 200
) -> HTMLResponse:
    """The stored elections with the import forms; ``message`` is an import's error."""
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


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request, catalogue: CatalogueDep) -> HTMLResponse:
    return catalogue_page(request, catalogue)


# --- pages -------------------------------------------------------------------------------------
@router.get("/elections/{election_id}", response_class=HTMLResponse, include_in_schema=False)
def election_page(
    request: Request,
    election_id: str,
    catalogue: CatalogueDep,
    page_number: Annotated[int, Query(alias="page", ge=1)] = 1,
) -> HTMLResponse:
    loaded = catalogue.get(election_id)
    election = loaded.election
    data = loaded.overview()
    hist = loaded.histograms()
    charts = {
        "turnout-histogram": views.histogram_spec(
            hist["turnout"], title="Turnout (0.1 pp bins)", x_title="turnout, %"
        ),
        "share-histogram": views.histogram_spec(
            hist["leader_share"],
            title=f"{data['summary']['leader'] or 'leader'}'s vote share (0.1 pp bins)",
            x_title="leader's vote share, %",
        ),
        "fingerprint": views.fingerprint_chart(
            election.id,
            loaded.provider(FingerprintCells),
            loaded.skip_reason(loaded.provider_name(FingerprintCells)),
            loaded.provider_name(FingerprintCells),
        ),
    }
    regions = loaded.provider(RegionTable)
    return page(
        request,
        "election.html",
        {
            "election": election,
            "meta": election.meta,
            "summary": data["summary"],
            "quality": loaded.quality,
            "methods": loaded.methods_rows(),
            "skipped": loaded.skipped,
            "regions": loaded.regions(),
            "regions_filters": regions.definitions.get("filters") if regions else None,
            "regions_method": loaded.provider_name(RegionTable),
            "regions_missing": None
            if regions
            else loaded.skip_reason(loaded.provider_name(RegionTable)),
            "listing": loaded.stations(page_number, 50, "-score", None),
            "charts_json": charts_json(charts),
            "fast_only": loaded.fast_only(),
            "fast_methods": ", ".join(method_names("fast")),
            "verdict_html": loaded.verdict().html(),
        },
    )


@router.get(
    "/elections/{election_id}/quarantine",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def quarantine_page(request: Request, election_id: str, catalogue: CatalogueDep) -> HTMLResponse:
    election = catalogue.get(election_id).election
    return page(
        request,
        "quarantine.html",
        {"election": election, "meta": election.meta, "quarantine": election.quarantine},
    )


@router.get(
    "/elections/{election_id}/stations/{station_id:path}",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def station_page(
    request: Request, election_id: str, station_id: str, catalogue: CatalogueDep
) -> HTMLResponse:
    loaded = catalogue.get(election_id)
    detail = loaded.station(station_id)
    return page(
        request,
        "station.html",
        {"election": loaded.election, "d": detail, "station_id": station_id},
    )


# --- JSON API ----------------------------------------------------------------------------------
@router.get("/api/elections", tags=["elections"], responses={**CSV, **errors(400, 422)})
def api_elections(catalogue: CatalogueDep, format: Format = "json") -> Any:
    """The stored elections."""
    rows = [e.to_dict() for e in catalogue.store.list()]
    return csv_file(rows, "elections") if format == "csv" else {"elections": rows}


@router.get("/api/elections/{election_id}", tags=["elections"], responses=errors(400, 404, 422))
def api_election(election_id: str, catalogue: CatalogueDep) -> Any:
    """Metadata, summary and protocol-check counts of one election."""
    return catalogue.get(election_id).overview()


@router.get(
    "/api/elections/{election_id}/quarantine",
    tags=["elections"],
    responses=errors(400, 404, 422),
)
def api_quarantine(election_id: str, catalogue: CatalogueDep) -> Any:
    """The source rows the import set aside: line, column, reason, raw cells."""
    return catalogue.get(election_id).election.quarantine.to_dict()


@router.get(
    "/api/elections/{election_id}/stations",
    tags=["stations"],
    responses={**CSV, **errors(400, 404, 422)},
)
def api_stations(
    election_id: str,
    catalogue: CatalogueDep,
    page: Annotated[int, Query(ge=1, description="page number, from 1")] = 1,
    size: Annotated[int, Query(ge=1, le=views.MAX_PAGE_SIZE, description="stations per page")] = 50,
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
    data = catalogue.get(election_id).stations(page, size, sort, region)
    if format == "csv":
        return csv_file(data["stations"], f"{election_id}-stations-{page}")
    return data


@router.get(
    "/api/elections/{election_id}/stations/{station_id:path}",
    tags=["stations"],
    responses={**CSV, **errors(400, 404, 422)},
)
def api_station(
    election_id: str, station_id: str, catalogue: CatalogueDep, format: Format = "json"
) -> Any:
    """One station: protocol, derived numbers, checks, reasons, neighbours."""
    detail = catalogue.get(election_id).station(station_id)
    if format == "csv":
        return csv_file([views.station_csv_row(detail)], f"{election_id}-{safe_name(station_id)}")
    return detail


@router.get(
    "/api/elections/{election_id}/regions",
    tags=["elections"],
    responses={**CSV, **errors(400, 404, 422)},
)
def api_regions(election_id: str, catalogue: CatalogueDep, format: Format = "json") -> Any:
    """One row per region."""
    loaded = catalogue.get(election_id)
    rows = loaded.regions()
    if format == "csv":
        return csv_file(rows, f"{election_id}-regions")
    return {"simulation": loaded.election.meta.simulation_notice, "regions": rows}
