"""Rendering of an election's quarantine (``pollwatch show ID --quarantine``) for the terminal.

Rendering only: the rows come from :class:`~pollwatch.results.quarantine.Quarantine`.
"""

from __future__ import annotations

from rich.table import Table

from pollwatch.results.quarantine import Quarantine

__all__ = ["quarantine_table"]

#: Cells are joined with this and cut to fit the table's last column.
CELL_SEPARATOR = " | "


def quarantine_table(quarantine: Quarantine, *, title: str | None = None) -> Table:
    """The set-aside rows as a table (line, column, reason, cells) that fits 80 columns.

    Long values are cut with an ellipsis rather than wrapped, one source row a table line. Rows
    of a source without lines (a JSON report) show their object's JSON pointer instead of the
    line, folded rather than cut: its end says which object it is.
    """
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    located = any(row.pointer for row in quarantine.rows)
    if located:
        table.add_column("object", overflow="fold", min_width=20, max_width=24)
    else:
        table.add_column("line", justify="right", no_wrap=True, max_width=9)
    table.add_column("column", no_wrap=True, overflow="ellipsis", max_width=12 if located else 16)
    table.add_column("reason", no_wrap=True, overflow="ellipsis", max_width=18 if located else 24)
    table.add_column("cells", no_wrap=True, overflow="ellipsis", max_width=18 if located else 36)
    for row in quarantine.rows:
        table.add_row(
            row.pointer or f"{row.line:,}",
            row.column or "",
            row.reason,
            CELL_SEPARATOR.join(row.cells),
        )
    return table
