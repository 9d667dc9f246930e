"""Analysis and verdict: method results, one method with chosen parameters, the verdict, the report.

``/api/elections/{id}/methods`` lists the results shown on the election's page (the suite's
cached results plus the fast methods); ``/api/elections/{id}/methods/{name}?p=KEY=VALUE``
runs one method with validated parameters (:func:`pollwatch.forensics.parameters.parse_assignments`,
through :func:`pollwatch.forensics.suite.run_suite`, cached like every run): a bad parameter is
a 422 with the one-line :class:`~pollwatch.forensics.parameters.ParameterError`, an unknown
method a 404. Such a run is answered only here: the election's page keeps showing the default
runs (:func:`pollwatch.web.views.cached_results`). ``/api/elections/{id}/verdict`` is the
verdict over the results shown and ``/elections/{id}/report`` the self-contained HTML report of
the same results (``pollwatch report``); ``/api/elections/{id}/histograms`` the turnout and
leader-share histograms the page draws. ``/elections/{id}/methods/{name}`` is one method's
page: its result's report sections (``Method.sections``: headline, caveats, charts, tables).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from pollwatch.reports.html import render_report

from . import views
from .dependencies import CatalogueDep
from .pages import charts_json, csv_file, page
from .responses import CSV, NotFound, errors

__all__ = ["router"]

Format = Literal["json", "csv"]

router = APIRouter()


@router.get("/elections/{election_id}/report", response_class=HTMLResponse, include_in_schema=False)
def election_report(election_id: str, catalogue: CatalogueDep) -> HTMLResponse:
    """The same self-contained report as ``pollwatch report``, over the results shown."""
    loaded = catalogue.get(election_id)
    return HTMLResponse(render_report(loaded.election, loaded.quality, loaded.suite()))


@router.get(
    "/elections/{election_id}/methods/{name}", response_class=HTMLResponse, include_in_schema=False
)
def method_page(
    request: Request, election_id: str, name: str, catalogue: CatalogueDep
) -> HTMLResponse:
    """One method's result on the election, as its sections; 404 when it has none here."""
    loaded = catalogue.get(election_id)
    result = loaded.results.get(name)
    if result is None:
        raise NotFound(
            f"method {name!r} has no result on {election_id!r}: {loaded.skip_reason(name)}"
        )
    shown = views.method_sections(result)
    charts = {f"chart-{chart}": spec for chart, spec in shown["charts"].items()}
    return page(
        request,
        "method.html",
        {"election": loaded.election, "s": shown, "charts_json": charts_json(charts)},
    )


@router.get(
    "/api/elections/{election_id}/methods",
    tags=["analysis"],
    responses={**CSV, **errors(400, 404, 422)},
)
def api_methods(election_id: str, catalogue: CatalogueDep, format: Format = "json") -> Any:
    """Method results: cached suite results plus the fast subset."""
    loaded = catalogue.get(election_id)
    rows = loaded.methods_rows()
    if format == "csv":
        return csv_file(rows, f"{election_id}-methods")
    return {
        "simulation": loaded.election.meta.simulation_notice,
        "methods": rows,
        "skipped": [{"method": m, "reason": r} for m, r in loaded.skipped],
        "results": [r.to_dict() for r in loaded.results.values()],
    }


@router.get(
    "/api/elections/{election_id}/methods/{name}",
    tags=["analysis"],
    responses=errors(400, 404, 422),
)
def api_method(
    election_id: str,
    name: str,
    catalogue: CatalogueDep,
    p: Annotated[
        list[str] | None,
        Query(
            description="a parameter of the method as KEY=VALUE, e.g. p=replicates=50 "
            "(repeat for several; `pollwatch methods NAME` lists them)"
        ),
    ] = None,
) -> Any:
    """Run one method with the parameters given (validated; cached like every run).

    ``result`` is the method's result (null when the election cannot support the method:
    ``skipped`` says why); ``parameters`` are the values set, as the method reads them. 422
    with the one-line error for a parameter the method does not take or a value it refuses,
    404 for an unknown method.
    """
    loaded = catalogue.get(election_id)
    values, report = catalogue.run_method(loaded, name, p or [])
    result = report.result(name)
    return {
        "simulation": loaded.election.meta.simulation_notice,
        "method": name,
        "parameters": values,
        "result": result.to_dict() if result is not None else None,
        "sections": views.method_sections(result)["sections"] if result is not None else [],
        "skipped": next((reason for m, reason in report.skipped if m == name), None),
    }


@router.get(
    "/api/elections/{election_id}/verdict",
    tags=["analysis"],
    responses=errors(400, 404, 422),
)
def api_verdict(election_id: str, catalogue: CatalogueDep) -> Any:
    """The verdict over the results shown: headline, findings of the methods reliable on
    clean elections (with their calibration), the methods not cited and why (format
    ``pollwatch-verdict/1``, docs/verdict.md)."""
    return catalogue.get(election_id).verdict().to_dict()


@router.get(
    "/api/elections/{election_id}/histograms",
    tags=["analysis"],
    responses={**CSV, **errors(400, 404, 422)},
)
def api_histograms(election_id: str, catalogue: CatalogueDep, format: Format = "json") -> Any:
    """Turnout and leader-share histograms: counts in 0.1 percentage-point bins."""
    loaded = catalogue.get(election_id)
    data = loaded.histograms()
    if format == "csv":
        rows = [{"quantity": q, **row} for q, counts in data.items() for row in counts]
        return csv_file(rows, f"{election_id}-histograms")
    return {
        "simulation": loaded.election.meta.simulation_notice,
        "bin_width_percent": 0.1,
        **data,
    }
