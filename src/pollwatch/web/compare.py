"""Comparison: several elections side by side (``/compare`` and ``/api/compare``).

The table holds each election's headline numbers (:func:`pollwatch.web.views.compare_rows`);
the page adds each election's fingerprint (the cells of the result that provides
:class:`~pollwatch.forensics.sections.FingerprintCells`, the Klimek fingerprint's:
:func:`pollwatch.web.views.fingerprint_cells`), drawn on shared axes and one colour scale.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from pollwatch.forensics.sections import FingerprintCells

from . import views
from .catalogue import Catalogue
from .dependencies import CatalogueDep
from .pages import charts_json, csv_file, page
from .responses import CSV, BadRequest, errors

__all__ = ["compare_data", "router"]

Format = Literal["json", "csv"]

router = APIRouter()


def compare_data(catalogue: Catalogue, ids: list[str]) -> dict[str, Any]:
    """The rows and the fingerprint specs of 1 to 6 elections (400 otherwise)."""
    if not 1 <= len(ids) <= 6:
        raise BadRequest("compare takes 1 to 6 election ids (?ids=a&ids=b)")
    loaded = [catalogue.get(i) for i in ids]
    grids = [item.fingerprint_cells() for item in loaded]
    top = max((c["count"] for cells in grids for c in cells), default=1)
    return {
        "rows": views.compare_rows([item.overview() for item in loaded]),
        "fingerprints": [
            views.fingerprint_spec(
                cells,
                title=item.election.id
                if cells
                else f"{item.election.id}: no fingerprint "
                f"({item.skip_reason(item.provider_name(FingerprintCells))})",
                size=300,
                max_count=top,
            )
            for item, cells in zip(loaded, grids, strict=True)
        ],
    }


@router.get("/compare", response_class=HTMLResponse, include_in_schema=False)
def compare_page(
    request: Request,
    catalogue: CatalogueDep,
    ids: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    data = compare_data(catalogue, ids or [])
    return page(
        request,
        "compare.html",
        {
            "rows": data["rows"],
            "charts_json": charts_json(
                {f"fp-{i}": spec for i, spec in enumerate(data["fingerprints"])}
            ),
            "count": len(data["fingerprints"]),
        },
    )


@router.get("/api/compare", tags=["elections"], responses={**CSV, **errors(400, 404, 422)})
def api_compare(
    catalogue: CatalogueDep,
    ids: Annotated[list[str], Query(min_length=1, max_length=6, description="1 to 6 election ids")],
    format: Format = "json",
) -> Any:
    """Headline numbers of several elections side by side."""
    data = compare_data(catalogue, ids)
    return csv_file(data["rows"], "compare") if format == "csv" else {"elections": data["rows"]}
