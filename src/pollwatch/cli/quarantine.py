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

    Long values are cut with an ellipsis rather than wrapped, one source row a table line.
    """
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    table.add_column("line", justify="right", no_wrap=True, max_width=9)
    table.add_column("column", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("reason", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("cells", no_wrap=True, overflow="ellipsis", max_width=36)
    for row in quarantine.rows:
        table.add_row(
            f"{row.line:,}",
            row.column or "",
            row.reason,
            CELL_SEPARATOR.join(row.cells),
        )
    return table
