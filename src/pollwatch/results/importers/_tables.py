"""Shared reading helpers for importers: sources (plain, gzip, zip), text decoding, counts.

Everything here raises :mod:`pollwatch.errors` exceptions that name the file, the row (the line
number in the source file, header included) and the column, never a bare traceback.

Sources are read within the limits in force (:mod:`.limits`): a zip or gzip member is unpacked
in chunks and refused as soon as it passes ``import_max_unpacked_bytes`` or grows more than
``import_max_compression_ratio`` times its compressed size; a table is refused past
``import_max_columns`` columns or ``import_max_rows`` rows. A table whose lines are too short to
hold the header's fields (blank lines, mostly) is refused before it is parsed: polars pads every
short line out to the header's width with nulls, so such a line costs a full row of cells (16
bytes a cell in every column, copied at each step of an import) whatever its length; a few bytes
of blank lines used to cost gigabytes.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

import polars as pl

from pollwatch.errors import ColumnError, CountError, FormatError
from pollwatch.results.importers.limits import (
    RATIO_GRACE_BYTES,
    current_limits,
    human_bytes,
    limit_error,
    report_progress,
)

__all__ = [
    "check_archive_members",
    "check_table_shape",
    "decode_text",
    "parse_counts",
    "peek_header",
    "read_csv_table",
    "read_source_bytes",
    "sha256_file",
    "table_row_budget",
]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_source_bytes(
    path: Path,
    *,
    member: str | None = None,
    member_suffixes: Sequence[str] = (".csv", ".txt", ".tsv"),
) -> tuple[bytes, str]:
    """The bytes of a source file, unpacking ``.gz`` and ``.zip``; returns (data, display name).

    In a zip, ``member`` names the file to read; without it the zip must hold exactly one file
    ending in one of ``member_suffixes``. Reading stays within the limits in force
    (:func:`~pollwatch.results.importers.limits.current_limits`): a
    :class:`~pollwatch.errors.LimitError` past ``import_max_unpacked_bytes`` or
    ``import_max_compression_ratio``, raised while unpacking, before the rest is read.
    """
    if not path.exists():
        raise FormatError("file not found", path=path, hint="check the path")
    if path.is_dir():
        raise FormatError("is a folder, not a file", path=path, hint="give a file")
    try:
        size = path.stat().st_size
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                if member is None:
                    fitting = [n for n in names if n.lower().endswith(tuple(member_suffixes))]
                    if len(fitting) != 1:
                        raise FormatError(
                            f"zip holds {names[:5]}{'...' if len(names) > 5 else ''}, "
                            f"not exactly one {'/'.join(member_suffixes)} file",
                            path=path,
                            hint="name the member to read (mapping 'member' key) or unpack it",
                        )
                    member = fitting[0]
                elif member not in names:
                    raise FormatError(
                        f"zip has no member {member!r} (it holds {names[:5]})",
                        path=path,
                        hint="fix the member name",
                    )
                info = archive.getinfo(member)
                where = f"{path}:{member}"
                packed = min(info.compress_size, size)
                _check_unpacked(info.file_size, packed, where, declared=True)
                with archive.open(info) as handle:
                    return _read_within_limits(handle, where, packed, info.file_size), where
        expected = size
        with path.open("rb") as handle:
            head = handle.read(2)
            if head == b"\x1f\x8b" and size >= 4:
                handle.seek(-4, 2)
                # ISIZE: the unpacked size modulo 2**32, for progress only (it can lie).
                expected = int.from_bytes(handle.read(4), "little")
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as unpacked:
                return _read_within_limits(unpacked, str(path), size, expected), str(path)
        _check_unpacked(size, None, str(path), declared=True)
        with path.open("rb") as handle:
            return _read_within_limits(handle, str(path), None, size), str(path)
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise FormatError(
            f"cannot unpack ({exc})", path=path, hint="the archive is damaged; fetch it again"
        ) from None


def _check_unpacked(unpacked: int, packed: int | None, where: str, *, declared: bool) -> None:
    """Refuse ``unpacked`` bytes past the size limit or, from ``packed`` ones, the ratio limit."""
    limits = current_limits()
    if unpacked > limits.max_unpacked_bytes:
        if packed is None:
            what = f"is {human_bytes(unpacked)}, more than"
        elif declared:
            what = f"declares it unpacks to {human_bytes(unpacked)}, more than"
        else:
            what = "unpacks to more than"
        raise limit_error(
            f"{what} {human_bytes(limits.max_unpacked_bytes)}, the most an import reads "
            "(import_max_unpacked_bytes)",
            "import_max_unpacked_bytes",
            path=where,
        )
    if (
        packed is not None
        and unpacked > RATIO_GRACE_BYTES
        and unpacked > limits.max_compression_ratio * max(packed, 1)
    ):
        raise limit_error(
            f"unpacks to more than {limits.max_compression_ratio:g} times its compressed size "
            f"({packed:,} bytes {'declare' if declared else 'gave over'} {unpacked:,}): "
            "a likely decompression bomb (import_max_compression_ratio)",
            "import_max_compression_ratio",
            path=where,
        )


def _read_within_limits(
    handle: IO[bytes] | io.BufferedIOBase, where: str, packed: int | None, expected: int
) -> bytes:
    """Read ``handle`` to the end in chunks, refusing as soon as a limit is passed."""
    buffer = io.BytesIO()
    total = 0
    while chunk := handle.read(_CHUNK):
        total += len(chunk)
        _check_unpacked(total, packed, where, declared=False)
        buffer.write(chunk)
        report_progress("reading", total / max(expected, total, 1))
    return buffer.getvalue()


def decode_text(data: bytes, encoding: str, where: str) -> str:
    """Decode bytes strictly; a wrong encoding names the line where it first fails."""
    if encoding.lower().replace("-", "") in {"utf8", "utf8sig"} and data.startswith(
        b"\xef\xbb\xbf"
    ):
        data = data[3:]
    try:
        return data.decode(encoding)
    except LookupError:
        raise FormatError(
            f"unknown encoding {encoding!r}", path=where, hint="use e.g. utf-8, cp1251, latin-1"
        ) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError(
            f"not valid {encoding} at byte {exc.start}",
            path=where,
            row=line,
            hint="give the file's real encoding (e.g. cp1251 or latin-1)",
        ) from None


def read_csv_table(
    data: bytes,
    *,
    where: str,
    encoding: str = "utf-8",
    separator: str = ",",
    skip_rows: int = 0,
    quote_char: str | None = '"',
) -> pl.DataFrame:
    """Read CSV bytes into a frame of strings (types are parsed later, with row numbers).

    Blank lines at the end are dropped (they hold no rows). Refused before parsing: a file with
    no data rows ("no stations in ..."), a header wider than ``import_max_columns``, and a table
    whose lines are too short to hold the header's fields (see the module docstring); while
    parsing, more than ``import_max_rows`` rows or ``import_max_cells`` cells (polars stops
    reading one row past the limit, so the refusal costs no more than the limit).
    """
    text = decode_text(data, encoding, where)
    end = _content_end(text)
    if end == 0:
        blank = f" ({text.count(chr(10)):,} blank lines)" if text else ""
        raise FormatError(
            f"no stations in {where}: the file is empty{blank}",
            hint="check you exported the right file",
        )
    if "\x00" in text[:4096]:
        raise FormatError("binary content, not a text table", path=where, hint="give a CSV file")
    # The header as the CSV standard reads it (the csv module), from the lines after skip_rows.
    header_start = _after_lines(text, 0, skip_rows, end)
    header_text = text[header_start : _after_lines(text, header_start, 50, end)]
    try:
        reader = csv.reader(
            io.StringIO(header_text),
            delimiter=separator,
            quotechar=quote_char,
            quoting=csv.QUOTE_MINIMAL if quote_char else csv.QUOTE_NONE,
        )
        header = next(reader)
        header_lines = max(reader.line_num, 1)
    except (csv.Error, StopIteration):
        header, header_lines = [], 1
    check_table_shape(0, len(header), where)
    data_start = _after_lines(text, header_start, header_lines, end)
    if data_start >= end:
        after = text.count("\n", end) - 1  # the first ends the header line
        blank = f", only {after:,} blank lines" if after > 0 else ""
        raise FormatError(
            f"no stations in {where}: the header is followed by no data rows{blank}",
            hint="check you exported the whole table; with a mapping, check source.skip_rows",
        )
    _check_line_lengths(text, data_start, end, len(header), where)
    row_budget = table_row_budget(len(header))
    payload = _parse_payload(data, text, encoding, end)
    del text  # polars gets its own copy; the decoded text is not needed any more
    try:
        frame = pl.read_csv(
            io.BytesIO(payload),
            separator=separator,
            quote_char=quote_char,
            infer_schema=False,
            skip_rows=skip_rows,
            truncate_ragged_lines=False,
            raise_if_empty=True,
            n_rows=row_budget,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(
            f"not a readable {separator!r}-separated table ({first[:200]})",
            path=where,
            hint="check the separator, quoting and that every row has the header's columns",
        ) from None
    del payload
    check_table_shape(frame.height, frame.width, where)
    # polars keeps doubled quotes inside quoted header fields ('"6. ""ЕДИНАЯ РОССИЯ"""'); the
    # csv module read the header line above as the CSV standard says. Names are trimmed, and a
    # repeated name is an error rather than a silent "_duplicated_0" suffix.
    if len(header) != frame.width:
        header = list(frame.columns)
    names = [name.strip() for name in header]
    seen: set[str] = set()
    for name in names:
        if name in seen and name:
            raise ColumnError(
                f"header {name!r} appears twice",
                path=where,
                column=name,
                hint="every column needs its own header",
            )
        seen.add(name)
    if names != frame.columns and len(set(names)) == len(names):
        frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    if frame.width < 2:
        raise FormatError(
            f"found {frame.width} column with separator {separator!r}",
            path=where,
            hint="check the separator (',' ';' or tab)",
        )
    return frame


def check_table_shape(rows: int, columns: int, where: str) -> None:
    """Refuse a table past ``import_max_columns``, ``import_max_rows`` or ``import_max_cells``."""
    limits = current_limits()
    if columns > limits.max_columns:
        raise limit_error(
            f"the table has {columns:,} columns, more than {limits.max_columns:,} "
            "(import_max_columns)",
            "import_max_columns",
            path=where,
        )
    if rows > limits.max_rows:
        raise limit_error(
            f"the table has more than {limits.max_rows:,} data rows (import_max_rows)",
            "import_max_rows",
            path=where,
        )
    if rows * columns > limits.max_cells:
        raise limit_error(
            f"the table has more than {limits.max_cells:,} cells: {columns} columns by more "
            f"than {limits.max_cells // max(columns, 1):,} rows (import_max_cells)",
            "import_max_cells",
            path=where,
        )


def table_row_budget(columns: int) -> int:
    """How many rows a reader may read: one past the row or cell limit, whichever is nearer."""
    limits = current_limits()
    return min(limits.max_rows, limits.max_cells // max(columns, 1)) + 1


def check_archive_members(data: bytes, where: str) -> None:
    """Refuse a zip held in memory (a workbook) whose members, as declared, unpack too far.

    For readers that unpack by themselves (calamine reading a workbook): the sizes the archive
    declares are checked against ``import_max_unpacked_bytes`` and the compression ratio.
    """
    _check_unpacked(len(data), None, where, declared=True)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # not a zip (an old .xls): the reader says what it is
    unpacked = sum(info.file_size for info in infos)
    packed = min(sum(info.compress_size for info in infos), len(data))
    _check_unpacked(unpacked, packed, where, declared=True)


_BLANK = " \t\r\n\x0b\x0c"


def _content_end(text: str) -> int:
    """The offset just after the last character that is not ASCII whitespace (0: none)."""
    end = len(text)
    while end > 0:
        start = max(0, end - _CHUNK)
        kept = len(text[start:end].rstrip(_BLANK))
        if kept:
            return start + kept
        end = start
    return 0


def _after_lines(text: str, start: int, count: int, stop: int) -> int:
    """The offset after ``count`` lines (ending in newline) from ``start``, at most ``stop``."""
    position = start
    for _ in range(count):
        found = text.find("\n", position, stop)
        if found < 0:
            return stop
        position = found + 1
    return min(position, stop)


def _check_line_lengths(text: str, start: int, end: int, columns: int, where: str) -> None:
    """Refuse a table whose lines are too short, on average, to hold ``columns`` fields each.

    A complete row of C fields has C - 1 separators and a line end: at least C characters. When
    the lines between ``start`` and ``end`` cannot hold that, most of them are blank or short,
    and polars would pad each to a full row of nulls: cells the text does not contain.
    """
    if columns < 2:
        return  # one column: the separator is wrong, which the parse reports
    lines = text.count("\n", start, end) + 1
    characters = end - start + 1
    if lines * columns <= characters:
        return
    blank = re.subn(r"\n(?=[ \t\r]*(?:\n|\Z))", "", text[start:end])[1]
    raise FormatError(
        f"{lines:,} data lines ({blank:,} of them blank) in {characters:,} characters cannot "
        f"each hold the header's {columns} fields: the table is mostly blank lines or rows "
        "missing fields",
        path=where,
        hint="delete the blank lines and incomplete rows, or check the separator",
    )


def _parse_payload(data: bytes, text: str, encoding: str, end: int) -> bytes:
    """UTF-8 bytes of ``text[:end]`` for polars, reusing ``data`` when it already is UTF-8."""
    if encoding.lower().replace("-", "").replace("_", "") in {"utf8", "utf8sig"}:
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        # What follows ``end`` is ASCII whitespace: one byte a character.
        cut = len(body) - (len(text) - end)
        # A last line end alone is what polars expects; more (blank lines) would be null rows.
        return body if len(body) - cut <= 2 and b"\n" not in body[cut:-1] else body[:cut]
    return text[:end].encode("utf-8")


def require_columns(frame: pl.DataFrame, columns: Iterable[str], where: str) -> None:
    """Raise :class:`ColumnError` naming the first missing column and the ones present."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"missing column(s) {missing}",
            path=where,
            hint=f"columns present: {', '.join(frame.columns[:12])}"
            f"{'...' if frame.width > 12 else ''}",
        )


def parse_counts(
    frame: pl.DataFrame,
    columns: Sequence[str],
    *,
    where: str,
    thousands: str | None = None,
    na_values: Sequence[str] = (),
    first_row: int = 2,
) -> pl.DataFrame:
    """Turn string count columns into ``Int64``; empty cells and ``na_values`` become null.

    A cell that is not a whole number, or is negative, raises :class:`CountError` with its line
    number (``first_row`` is the line of the first data row, 2 when there is one header line).
    Integral decimals such as ``"12.0"`` are accepted.
    """
    markers = [m for m in na_values if m != ""]
    # Fast path: columns holding only plain non-negative integers (or nothing) convert in one step.
    plain = (
        frame.select(
            [
                pl.col(name)
                .cast(pl.String)
                .str.contains(r"^[0-9]{1,18}$")
                .fill_null(True)
                .all()
                .alias(name)
                for name in columns
            ]
        ).row(0, named=True)
        if columns
        else {}
    )
    fast = [name for name in columns if plain[name]]
    if fast:
        frame = frame.with_columns([pl.col(name).cast(pl.String).cast(pl.Int64) for name in fast])
        columns = [name for name in columns if name not in plain or not plain[name]]
        if not columns:
            return frame
    exprs = []
    for name in columns:
        text = pl.col(name).cast(pl.String).str.strip_chars()
        if thousands:
            text = text.str.replace_all(thousands, "", literal=True)
        text = text.str.replace_all("\u00a0", "", literal=True).str.replace_all(
            " ", "", literal=True
        )
        cleaned = pl.when(text.is_in(markers) | (text == "")).then(None).otherwise(text)
        exprs.append(cleaned.alias(name))
    cleaned_frame = frame.select(exprs)
    as_int_frame = cleaned_frame.select(pl.all().cast(pl.Int64, strict=False))
    # One pass over all columns finds the few (if any) that need a closer look.
    flags = as_int_frame.select(
        [
            ((pl.col(c).is_null() & cleaned_frame[c].is_not_null()) | (pl.col(c) < 0))
            .any()
            .alias(c)
            for c in columns
        ]
    ).row(0, named=True)
    parsed = [as_int_frame[c] for c in columns if not flags[c]]
    for name in [c for c in columns if flags[c]]:
        column = cleaned_frame[name]
        as_int = as_int_frame[name]
        bad = as_int.is_null() & column.is_not_null()
        if bad.any():
            as_float = column.cast(pl.Float64, strict=False)
            integral = as_float.is_not_null() & (as_float == as_float.floor())
            fixable = bad & integral
            as_int = pl.select(
                pl.when(fixable).then(as_float.cast(pl.Int64, strict=False)).otherwise(as_int)
            ).to_series()
            still_bad = as_int.is_null() & column.is_not_null()
            if still_bad.any():
                index = int(still_bad.arg_max() or 0)
                raise CountError(
                    f"{column[index]!r} is not a whole number",
                    path=where,
                    row=first_row + index,
                    column=name,
                    hint="counts must be whole numbers; mark missing values as empty "
                    "(or list the marker in na_values)",
                )
        negative = as_int.lt(0).fill_null(False)
        if negative.any():
            index = int(negative.arg_max() or 0)
            raise CountError(
                f"negative count {as_int[index]}",
                path=where,
                row=first_row + index,
                column=name,
                hint="counts must be zero or more",
            )
        parsed.append(as_int.alias(name))
    return frame.with_columns(parsed)


def peek_header(
    path: Path, size: int = 65536, encodings: Sequence[str] = ("utf-8", "cp1251", "latin-1")
) -> list[str] | None:
    """The header line of a plain, gzip or zip (one CSV member) file as trimmed fields.

    For ``detect``: reads at most ``size`` bytes, tries ``encodings`` in order, and never
    raises (None when the file is not a readable text table).
    """
    try:
        if not path.is_file():
            return None
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.lower().endswith((".csv", ".txt"))]
                if len(members) != 1:
                    return None
                with archive.open(members[0]) as handle:
                    head = handle.read(size)
        else:
            with path.open("rb") as handle:
                head = handle.read(size)
            if head[:2] == b"\x1f\x8b":
                with gzip.open(path, "rb") as handle:
                    head = handle.read(size)
        if not head or b"\x00" in head:
            return None
        head = head.removeprefix(b"\xef\xbb\xbf")
        text = None
        for encoding in encodings:
            try:
                text = head.decode(encoding)
                break
            except UnicodeDecodeError as exc:
                if exc.start > len(head) - 4:  # the peek cut a multi-byte character in half
                    text = head[: exc.start].decode(encoding, errors="replace")
                    break
        if text is None:
            return None
        line = text.splitlines()[0] if text.strip() else ""
        fields = next(csv.reader(io.StringIO(line)), [])
    except Exception:  # detect must never raise, whatever the file holds
        return None
    return [f.strip() for f in fields]
