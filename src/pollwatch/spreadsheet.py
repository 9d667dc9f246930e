"""CSV cells that a spreadsheet opens as text, never as a formula (CSV injection).

Excel, LibreOffice and Google Sheets evaluate a cell that starts with ``=``, ``+``, ``-`` or
``@`` (and, through their import heuristics, a tab or carriage return) as a formula, so text
that came from a visitor (a ``Range`` header in the custody log, a station name in an uploaded
file) could run ``=HYPERLINK(...)`` or DDE commands on the machine of whoever opens an export.
Every CSV export passes its text cells through :func:`neutralise`: the OWASP rule, a single
quote in front of such a cell (OWASP, "CSV Injection"). Numbers are written as numbers (a
negative count is data, not a formula). Nothing here imports the rest of pollwatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FORMULA_STARTS", "neutralise", "neutralise_row"]

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value``, with a ``'`` in front when it is text that starts like a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with every text cell passed through :func:`neutralise` (keys too: the header)."""
    return {neutralise(key): neutralise(value) for key, value in row.items()}
