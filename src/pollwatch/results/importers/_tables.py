"""Shared reading helpers for importers: sources (plain, gzip, zip), text decoding, counts.

Everything here raises :mod:`pollwatch.errors` exceptions that name the file, the row (the line
number in the source file, header included) and the column, never a bare traceback.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from pollwatch.errors import ColumnError, CountError, FormatError

__all__ = [
    "decode_text",
    "parse_counts",
    "peek_header",
    "read_csv_table",
    "read_source_bytes",
    "sha256_file",
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
    ending in one of ``member_suffixes``.
    """
    if not path.exists():
        raise FormatError("file not found", path=path, hint="check the path")
    if path.is_dir():
        raise FormatError("is a folder, not a file", path=path, hint="give a file")
    try:
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
                return archive.read(member), f"{path}:{member}"
        with path.open("rb") as handle:
            head = handle.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as handle:
                return handle.read(), str(path)
        return path.read_bytes(), str(path)
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, OSError) as exc:
        raise FormatError(
            f"cannot unpack ({exc})", path=path, hint="the archive is damaged; fetch it again"
        ) from None


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
    """Read CSV bytes into a frame of strings (types are parsed later, with row numbers)."""
    text = decode_text(data, encoding, where)
    if not text.strip():
        raise FormatError("file is empty", path=where, hint="check you exported the right file")
    if "\x00" in text[:4096]:
        raise FormatError("binary content, not a text table", path=where, hint="give a CSV file")
    try:
        frame = pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            separator=separator,
            quote_char=quote_char,
            infer_schema=False,
            skip_rows=skip_rows,
            truncate_ragged_lines=False,
            raise_if_empty=True,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(
            f"not a readable {separator!r}-separated table ({first[:200]})",
            path=where,
            hint="check the separator, quoting and that every row has the header's columns",
        ) from None
    # polars keeps doubled quotes inside quoted header fields ('"6. ""ЕДИНАЯ РОССИЯ"""'); the
    # csv module reads the header line as the CSV standard says. Names are trimmed, and a
    # repeated name is an error rather than a silent "_duplicated_0" suffix.
    header_text = "\n".join(text.splitlines()[skip_rows : skip_rows + 50])
    try:
        header = next(
            csv.reader(io.StringIO(header_text), delimiter=separator, quotechar=quote_char)
        )
    except (csv.Error, StopIteration):
        header = []
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
