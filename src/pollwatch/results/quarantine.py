"""The quarantine: rows of a source an import set aside instead of failing on them.

Real tables carry oddities: an empty station identifier, a stray total row, a cell that is not
a number, a negative count. One such row used to abort a national import. Now an importer's
row-level check calls :func:`set_aside` on the frame it is checking:

* while a quarantine is being collected (``with collecting() as collector:``, which
  :func:`~pollwatch.results.importers.base.import_file` opens unless ``strict=True``), the rows
  where the check fails are recorded as :class:`QuarantinedRow` objects (source line, column,
  reason, the raw cells) and the frame comes back without them;
* otherwise (strict imports, or an importer called directly) it raises the one-line
  :class:`~pollwatch.errors.InputError` importers raised before (file, row, column, hint), so
  ``strict`` is all-or-nothing: nothing is stored.

Nothing is dropped silently: the election carries its :class:`Quarantine`, the store keeps it,
``pollwatch import`` prints one line (:meth:`Quarantine.one_line`) and ``pollwatch show ID
--quarantine``, the dashboard and the JSON API list it. File-level problems (a missing column,
a wrong encoding, a limit exceeded) stay errors.

Source line numbers are the lines of the file with the header as line 1 (a header of several
lines, or rows skipped before it, move the first data row down). After earlier rows were set
aside, a frame's row ``i`` is no longer line ``first_row + i``: an importer that sets rows aside
in more than one step carries a column of line numbers through them and names it
(``line_column``); :func:`number_lines` adds one. ``first_row`` alone is right only for a frame
nothing was taken out of yet.

This module imports nothing from the rest of pollwatch but :mod:`pollwatch.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from pollwatch.errors import CountError, InputError

__all__ = [
    "EMPTY_IDENTIFIER",
    "INTERNAL_PREFIX",
    "LINE_COLUMN",
    "MAX_CELLS",
    "MAX_CELL_CHARACTERS",
    "NEGATIVE_COUNT",
    "NOT_WHOLE_NUMBER",
    "TOTAL_ROW",
    "Collector",
    "Quarantine",
    "QuarantinedRow",
    "collecting",
    "is_collecting",
    "number_lines",
    "set_aside",
    "set_aside_objects",
    "strict",
]

#: Reasons shared by importers, so that the one-line summary groups them.
NOT_WHOLE_NUMBER = "not a whole number"
NEGATIVE_COUNT = "negative count"
EMPTY_IDENTIFIER = "empty station identifier"
TOTAL_ROW = "total row, not a station"

#: Columns an importer adds for itself start with this; they are not cells of the source.
INTERNAL_PREFIX = "__pollwatch"
#: The default name of a column of source line numbers (see :func:`number_lines`).
LINE_COLUMN = "__pollwatch_line__"
#: At most this many raw cells are kept of a set-aside row (the first ones) ...
MAX_CELLS = 40
#: ... each cut to this many characters (an ellipsis marks a cut).
MAX_CELL_CHARACTERS = 120


@dataclass(frozen=True)
class QuarantinedRow:
    """One source row set aside: where it is, why, and what it held.

    ``line`` is the line in the source file (header = line 1); ``column`` the column whose
    check failed (``None`` when the row as a whole failed, e.g. a total row); ``reason`` a short
    groupable phrase (``"not a whole number"``); ``detail`` the one-line message a strict import
    raises for it; ``cells`` the row's raw cells, bounded (:data:`MAX_CELLS` cells of at most
    :data:`MAX_CELL_CHARACTERS` characters); ``source`` the file (or zip member) it came from.
    A source without lines (an NIST JSON report) names the object set aside by ``pointer``, a
    JSON pointer (RFC 6901, e.g. ``/Election/0/Contest/0/ContestSelection/1/VoteCounts/7``);
    its ``line`` is 0 and ``column`` the member whose check failed.
    """

    line: int
    column: str | None
    reason: str
    cells: tuple[str, ...] = ()
    detail: str = ""
    source: str = ""
    pointer: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (round trips through :meth:`from_dict`); ``pointer`` only
        when there is one, so rows of tables are stored as they always were."""
        data: dict[str, Any] = {
            "line": self.line,
            "column": self.column,
            "reason": self.reason,
            "detail": self.detail,
            "cells": list(self.cells),
            "source": self.source,
        }
        if self.pointer:
            data["pointer"] = self.pointer
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuarantinedRow:
        """Inverse of :meth:`to_dict`."""
        column = data.get("column")
        return cls(
            line=int(data["line"]),
            column=None if column is None else str(column),
            reason=str(data.get("reason", "")),
            cells=tuple(str(c) for c in data.get("cells", ())),
            detail=str(data.get("detail", "")),
            source=str(data.get("source", "")),
            pointer=str(data.get("pointer", "")),
        )


@dataclass(frozen=True)
class Quarantine:
    """The rows an import set aside, in source order, and how many rows were checked.

    ``rows_checked`` counts the data rows that reached the row-level checks (the largest
    frame each source file showed them), so that "3 of 1,204" can be said.
    """

    rows: tuple[QuarantinedRow, ...] = ()
    rows_checked: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[QuarantinedRow]:
        return iter(self.rows)

    def reasons(self) -> dict[str, int]:
        """How many rows were set aside for each reason, most frequent first."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.reason] = counts.get(row.reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def one_line(self, election_id: str | None = None) -> str:
        """``set aside 3 rows of 1,204 (2 not a whole number, 1 empty station identifier)``.

        With ``election_id`` it ends with where to read them; empty when nothing was set aside.
        """
        if not self.rows:
            return ""
        count = len(self.rows)
        total = max(self.rows_checked, count)
        why = ", ".join(f"{n:,} {reason}" for reason, n in self.reasons().items())
        text = f"set aside {count:,} row{'s' if count != 1 else ''} of {total:,} ({why})"
        if election_id is not None:
            text += f"; see `pollwatch show {election_id} --quarantine`"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (round trips through :meth:`from_dict`)."""
        return {
            "count": len(self.rows),
            "rows_checked": self.rows_checked,
            "reasons": self.reasons(),
            "rows": [row.to_dict() for row in self.rows],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Quarantine:
        """Inverse of :meth:`to_dict` (``None`` or ``{}``: an empty quarantine)."""
        if not data:
            return cls()
        return cls(
            rows=tuple(QuarantinedRow.from_dict(row) for row in data.get("rows", ())),
            rows_checked=int(data.get("rows_checked", 0)),
        )


@dataclass
class Collector:
    """Collects set-aside rows while a quarantine is open (see :func:`collecting`)."""

    rows: list[QuarantinedRow] = field(default_factory=list)
    _checked: dict[str, int] = field(default_factory=dict)
    _removed: dict[str, int] = field(default_factory=dict)

    def note(self, where: str, height: int, removed: int) -> None:
        """Record that a check on ``where`` saw ``height`` rows and took ``removed`` out."""
        seen = height + self._removed.get(where, 0)
        self._checked[where] = max(self._checked.get(where, 0), seen)
        self._removed[where] = self._removed.get(where, 0) + removed

    def quarantine(self) -> Quarantine:
        """What was collected so far, rows in source order."""
        ordered = sorted(self.rows, key=lambda row: (row.source, row.line))
        return Quarantine(rows=tuple(ordered), rows_checked=sum(self._checked.values()))


_ACTIVE: ContextVar[Collector | None] = ContextVar("pollwatch_quarantine", default=None)


@contextmanager
def collecting() -> Iterator[Collector]:
    """Collect set-aside rows inside the ``with`` block instead of raising on them."""
    collector = Collector()
    token = _ACTIVE.set(collector)
    try:
        yield collector
    finally:
        _ACTIVE.reset(token)


def is_collecting() -> bool:
    """Whether :func:`set_aside` collects rows now (else it raises on the first bad one)."""
    return _ACTIVE.get() is not None


@contextmanager
def strict() -> Iterator[None]:
    """Inside the block, :func:`set_aside` raises even when an outer quarantine is open."""
    token = _ACTIVE.set(None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def number_lines(frame: pl.DataFrame, first_row: int = 2, name: str = LINE_COLUMN) -> pl.DataFrame:
    """``frame`` with a first column ``name`` holding each row's source line (Int64)."""
    return frame.with_row_index(name, offset=first_row).with_columns(pl.col(name).cast(pl.Int64))


def set_aside(
    frame: pl.DataFrame,
    bad: pl.Expr | pl.Series,
    *,
    reason: str,
    where: str,
    column: str | None = None,
    message: str | Callable[[Mapping[str, Any]], str] | None = None,
    hint: str | None = None,
    line_column: str | None = None,
    first_row: int = 2,
    error: type[InputError] = CountError,
    error_path: str | None = None,
) -> pl.DataFrame:
    """Take the rows of ``frame`` where ``bad`` holds into the quarantine, or raise on the first.

    ``bad`` is a boolean expression on ``frame`` or a series as long as it (nulls count as
    good). Each row's source line comes from ``line_column`` when given, else it is
    ``first_row + index`` (right only while nothing was taken out of ``frame`` before). The
    raw cells kept are those of every column but ``line_column`` and the importer's own
    (named ``__pollwatch...``, :data:`INTERNAL_PREFIX`).
    ``message`` (a string, or a function of the first bad row as a dict) is the one-line
    error's text, ``reason`` by default; the error is ``error(message, path=where, row=line,
    column=column, hint=hint)``, raised when no quarantine is being collected (``error_path``,
    when given, is the path it names instead of ``where``: a mapping file's key, say).

    Returns ``frame`` without the bad rows (the same frame when none is bad).
    """
    if isinstance(bad, pl.Series):
        mask = bad.fill_null(False).alias("bad")
    else:
        mask = frame.select(bad.fill_null(False).alias("bad")).to_series()
    if len(mask) != frame.height:
        raise ValueError(f"mask of {len(mask)} rows for a frame of {frame.height}")
    collector = _ACTIVE.get()
    if not mask.any():
        if collector is not None:
            collector.note(where, frame.height, 0)
        return frame
    if line_column is not None:
        lines = frame[line_column].cast(pl.Int64)
    else:
        lines = pl.int_range(first_row, first_row + frame.height, eager=True, dtype=pl.Int64)
    cell_columns = [
        name
        for name in frame.columns
        if name != line_column and not name.startswith(INTERNAL_PREFIX)
    ]
    picked = frame.filter(mask)
    picked_lines = lines.filter(mask).to_list()

    def text_of(row: Mapping[str, Any]) -> str:
        if message is None:
            return reason
        return message if isinstance(message, str) else message(row)

    if collector is None:
        first = picked.row(0, named=True)
        raise error(
            text_of(first),
            path=error_path or where,
            row=int(picked_lines[0]),
            column=column,
            hint=hint,
        )
    for line, row in zip(picked_lines, picked.iter_rows(named=True), strict=True):
        collector.rows.append(
            QuarantinedRow(
                line=int(line),
                column=column,
                reason=reason,
                cells=_bounded_cells(row[name] for name in cell_columns),
                detail=text_of(row),
                source=where,
            )
        )
    collector.note(where, frame.height, picked.height)
    return frame.filter(~mask)


def set_aside_objects(records: Sequence[QuarantinedRow], *, where: str, checked: int) -> None:
    """Add objects of a source without lines (a JSON report's units) to the open quarantine.

    The counterpart of :func:`set_aside` for documents: the importer finds the bad objects
    itself and describes each as a :class:`QuarantinedRow` with its ``pointer``; their cells are
    bounded like a row's. ``checked`` is how many objects the check saw, the bad ones included.
    Only while a quarantine is being collected (:func:`is_collecting`): a strict import raises
    the first bad object's one-line error in the importer instead, so calling this without a
    quarantine is a programming error (``RuntimeError``).
    """
    collector = _ACTIVE.get()
    if collector is None:
        raise RuntimeError("set_aside_objects needs an open quarantine (see is_collecting)")
    for record in records:
        cells = _bounded_cells(record.cells)
        collector.rows.append(replace(record, source=record.source or where, cells=cells))
    collector.note(where, max(checked, len(records)), len(records))


def _bounded_cells(values: Iterator[Any] | Any) -> tuple[str, ...]:
    cells: list[str] = []
    for value in values:
        if len(cells) == MAX_CELLS:
            cells.append("…")
            break
        text = "" if value is None else str(value)
        if len(text) > MAX_CELL_CHARACTERS:
            text = text[: MAX_CELL_CHARACTERS - 1] + "…"
        cells.append(text)
    return tuple(cells)
