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
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import polars as pl

from pollwatch.errors import ColumnError, FormatError
from pollwatch.results.importers.limits import (
    RATIO_GRACE_BYTES,
    current_limits,
    human_bytes,
    limit_error,
    report_progress,
)
from pollwatch.results.quarantine import (
    NEGATIVE_COUNT,
    NOT_WHOLE_NUMBER,
    is_collecting,
    set_aside,
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
    """SHA-256 of a file, streamed."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


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
    integer_columns: Callable[[Sequence[str]], Collection[str]] | None = None,
) -> pl.DataFrame:
    """Read CSV bytes into a frame of strings (types are parsed later, with row numbers).

    Blank lines at the end are dropped (they hold no rows). Refused before parsing: a file with
    no data rows ("no stations in ..."), a header wider than ``import_max_columns``, and a table
    whose lines are too short to hold the header's fields (see the module docstring); while
    parsing, more than ``import_max_rows`` rows or ``import_max_cells`` cells (polars stops
    reading one row past the limit, so the refusal costs no more than the limit).

    UTF-8 is not decoded here: polars checks it as it parses, and only a file it refuses is
    decoded, to name the line of the first bad byte (the preamble and header are checked here).
    Other encodings are decoded strictly and handed to polars as UTF-8.

    ``integer_columns``, called with the header's trimmed names, may name columns to parse as
    ``Int64`` in the same pass (a national table's counts, without a string column per count).
    They come back as ``Int64`` only when every cell of every one of them is an integer or
    empty (negative ones included: the caller checks); otherwise the whole table is read again
    as strings, so that :func:`parse_counts` names the bad cell as before.
    """
    utf8 = _is_utf8(encoding)
    if utf8:
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    else:
        body = decode_text(data, encoding, where).encode("utf-8")

    def refuse(error: FormatError) -> FormatError:
        # A UTF-8 file that is not valid UTF-8 is refused as such first, as a decoded one is.
        if utf8:
            decode_text(data, encoding, where)
        return error

    end = _content_end(body)
    if end == 0:
        lines = body.count(b"\n")
        blank = f" ({lines:,} blank lines)" if body else ""
        raise FormatError(
            f"no stations in {where}: the file is empty{blank}",
            hint="check you exported the right file",
        )
    if b"\x00" in body[:4096]:
        raise refuse(
            FormatError("binary content, not a text table", path=where, hint="give a CSV file")
        )
    # The header as the CSV standard reads it (the csv module), from the lines after skip_rows.
    header_start = _after_lines(body, 0, skip_rows, end)
    header_stop = _after_lines(body, header_start, 50, end)
    try:
        body[:header_start].decode("utf-8")
        header_text = body[header_start:header_stop].decode("utf-8")
    except UnicodeDecodeError:
        decode_text(data, encoding, where)
        header_text = body[header_start:header_stop].decode("utf-8", errors="replace")
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
    data_start = _after_lines(body, header_start, header_lines, end)
    if data_start >= end:
        after = body.count(b"\n", end) - 1  # the first ends the header line
        blank = f", only {after:,} blank lines" if after > 0 else ""
        raise refuse(
            FormatError(
                f"no stations in {where}: the header is followed by no data rows{blank}",
                hint="check you exported the whole table; with a mapping, check source.skip_rows",
            )
        )
    short = _short_lines_error(body, data_start, end, len(header), where)
    if short is not None:
        raise refuse(short)
    row_budget = table_row_budget(len(header))
    # A last line end alone is what polars expects; more (blank lines) would be null rows.
    payload = body if len(body) - end <= 2 and b"\n" not in body[end:-1] else body[:end]
    del body
    names = [name.strip() for name in header]
    overrides: list[pl.DataType] | None = None
    if integer_columns is not None:
        wanted = set(integer_columns(names))
        if wanted:
            overrides = [pl.Int64() if name in wanted else pl.String() for name in names]

    def parse(source: bytes, schema: list[pl.DataType] | None) -> pl.DataFrame:
        return pl.read_csv(
            source,
            separator=separator,
            quote_char=quote_char,
            infer_schema=False,
            schema_overrides=schema,
            skip_rows=skip_rows,
            truncate_ragged_lines=False,
            raise_if_empty=True,
            n_rows=row_budget,
        )

    failures = (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError)
    try:
        try:
            frame = parse(payload, overrides)
        except failures:
            if overrides is None:
                raise
            # A count that is not a plain integer: read strings, parse_counts names the cell.
            frame = parse(payload, None)
    except failures as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if utf8 and "utf-8" in first.lower():
            decode_text(data, encoding, where)
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
        names = [name.strip() for name in frame.columns]
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


_BLANK = b" \t\r\n\x0b\x0c"


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in {"utf8", "utf8sig"}


def _content_end(text: bytes) -> int:
    """The offset just after the last byte that is not ASCII whitespace (0: none)."""
    end = len(text)
    while end > 0:
        start = max(0, end - _CHUNK)
        kept = len(text[start:end].rstrip(_BLANK))
        if kept:
            return start + kept
        end = start
    return 0


def _after_lines(text: bytes, start: int, count: int, stop: int) -> int:
    """The offset after ``count`` lines (ending in newline) from ``start``, at most ``stop``."""
    position = start
    for _ in range(count):
        found = text.find(b"\n", position, stop)
        if found < 0:
            return stop
        position = found + 1
    return min(position, stop)


def _short_lines_error(
    text: bytes, start: int, end: int, columns: int, where: str
) -> FormatError | None:
    """The refusal of a table whose lines are too short, on average, for ``columns`` fields.

    A complete row of C fields has C - 1 separators and a line end: at least C bytes. When the
    bytes between ``start`` and ``end`` cannot hold that, most lines are blank or short, and
    polars would pad each to a full row of nulls: cells the file does not contain. (Counting
    bytes, not characters, bounds what matters: cells per byte read.)
    """
    if columns < 2:
        return None  # one column: the separator is wrong, which the parse reports
    lines = text.count(b"\n", start, end) + 1
    size = end - start + 1
    if lines * columns <= size:
        return None
    blank = re.subn(rb"\n(?=[ \t\r]*(?:\n|\Z))", b"", text[start:end])[1]
    return FormatError(
        f"{lines:,} data lines ({blank:,} of them blank) in {size:,} bytes cannot each hold "
        f"the header's {columns} fields: the table is mostly blank lines or rows missing fields",
        path=where,
        hint="delete the blank lines and incomplete rows, or check the separator",
    )


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
    line_column: str | None = None,
    names: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Turn string count columns into ``Int64``; empty cells and ``na_values`` become null.

    A row with a cell that is not a whole number, or is negative, is set aside
    (:func:`~pollwatch.results.quarantine.set_aside`): into the quarantine when one is being
    collected, else as a :class:`CountError` with its line number. Lines come from
    ``line_column`` when given, else ``first_row`` is the line of the first data row (2 when
    there is one header line and nothing was set aside before). Integral decimals such as
    ``"12.0"`` are accepted. The result may have fewer rows than ``frame``. ``names`` maps a
    parsed column to the source column that errors name (for a column derived from another).
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
    slow = [name for name in columns if not plain[name]]
    if slow:
        frame = _set_aside_bad_counts(
            frame, slow, where, thousands, markers, first_row, line_column, names or {}
        )
    converted = [pl.col(name).cast(pl.String).cast(pl.Int64) for name in fast]
    converted += [_count_value(name, thousands, markers).alias(name) for name in slow]
    return frame.with_columns(converted) if converted else frame


_COUNT_LINE = "__pollwatch_count_line__"


def _cleaned_count(name: str, thousands: str | None, markers: Sequence[str]) -> pl.Expr:
    """A count cell as text without spaces or thousands separators; null when empty or NA."""
    text = pl.col(name).cast(pl.String).str.strip_chars()
    if thousands:
        text = text.str.replace_all(thousands, "", literal=True)
    text = text.str.replace_all("\u00a0", "", literal=True).str.replace_all(" ", "", literal=True)
    return pl.when(text.is_in(list(markers)) | (text == "")).then(None).otherwise(text)


def _count_value(name: str, thousands: str | None, markers: Sequence[str]) -> pl.Expr:
    """A count cell as Int64: a whole number, or an integral decimal ("12.0"); else null."""
    cleaned = _cleaned_count(name, thousands, markers)
    as_float = cleaned.cast(pl.Float64, strict=False)
    integral = pl.when(as_float.is_not_null() & (as_float == as_float.floor())).then(
        as_float.cast(pl.Int64, strict=False)
    )
    return pl.coalesce(cleaned.cast(pl.Int64, strict=False), integral)


def _bad_count(name: str, thousands: str | None, markers: Sequence[str]) -> pl.Expr:
    """Whether a count cell is not a whole number or is negative (empty and NA cells: no)."""
    value = _count_value(name, thousands, markers)
    return (value.is_null() & _cleaned_count(name, thousands, markers).is_not_null()) | (value < 0)


def _clean_count_text(value: object, thousands: str | None) -> str:
    """The Python twin of :func:`_cleaned_count`, for messages."""
    text = str(value).strip()
    if thousands:
        text = text.replace(thousands, "")
    return text.replace("\u00a0", "").replace(" ", "")


def _set_aside_bad_counts(
    frame: pl.DataFrame,
    columns: Sequence[str],
    where: str,
    thousands: str | None,
    markers: Sequence[str],
    first_row: int,
    line_column: str | None,
    names: Mapping[str, str],
) -> pl.DataFrame:
    """Set aside the rows whose cell in one of ``columns`` is not a whole number or negative.

    Column by column, in order; a row bad in two columns is set aside once, for the first. A
    strict import (no quarantine collected) fails on the file's first bad row.
    """
    # One pass finds the few columns (if any) that hold a bad cell.
    flags = frame.select([_bad_count(c, thousands, markers).any().alias(c) for c in columns])
    flagged = [c for c in columns if flags[c][0]]
    if not flagged:
        return frame
    temporary = line_column is None
    if line_column is None:
        frame = frame.with_row_index(_COUNT_LINE, offset=first_row)
        line_column = _COUNT_LINE
    if not is_collecting():
        # Strict: the error names the file's first bad row (checked below, so it raises).
        bad = pl.any_horizontal([_bad_count(c, thousands, markers) for c in flagged])
        frame = frame.filter(bad).head(1)
    for name in flagged:
        value = _count_value(name, thousands, markers)
        cleaned = _cleaned_count(name, thousands, markers)
        frame = set_aside(
            frame,
            value.is_null() & cleaned.is_not_null(),
            reason=NOT_WHOLE_NUMBER,
            where=where,
            column=names.get(name, name),
            message=_count_message(name, thousands, negative=False),
            hint="counts must be whole numbers; mark missing values as empty "
            "(or list the marker in na_values)",
            line_column=line_column,
        )
        frame = set_aside(
            frame,
            value < 0,
            reason=NEGATIVE_COUNT,
            where=where,
            column=names.get(name, name),
            message=_count_message(name, thousands, negative=True),
            hint="counts must be zero or more",
            line_column=line_column,
        )
    return frame.drop(_COUNT_LINE) if temporary else frame


def _count_message(
    name: str, thousands: str | None, *, negative: bool
) -> Callable[[Mapping[str, Any]], str]:
    """The one-line error text for a bad cell of column ``name``, from its row."""

    def message(row: Mapping[str, Any]) -> str:
        text = _clean_count_text(row[name], thousands)
        if not negative:
            return f"{text!r} is not a whole number"
        try:
            return f"negative count {int(text) if text.lstrip('-').isdigit() else int(float(text))}"
        except ValueError:
            return f"negative count {text}"

    return message


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
