"""Import limits in the readers every importer shares (issue 17, finding 3).

The attack shapes (blank lines, zipped and plain) are imported in a fresh process and their peak
memory asserted; decompression bombs, oversize files, and tables past the row, column and cell
limits are refused with one line naming the limit; blank lines no longer become rows; the CLI is
held to the same limits.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import polars as pl
import pytest

from pollwatch.errors import FormatError, LimitError
from pollwatch.results.importers import ImportLimits, get_importer, import_file
from pollwatch.results.importers._tables import check_archive_members, read_csv_table

from ..attack_files import (
    MEDSL_HEADER,
    csv_of_blank_lines,
    import_in_fresh_process,
    russian_table,
    zip_of_blank_lines,
)

#: Peak memory an import of an attack file may reach, interpreter and libraries included.
PEAK_MIB = 300
NO_RATIO = {"max_compression_ratio": 1e9}


def _shape(kind: str, folder: Path) -> Path:
    if kind == "csv-32m":
        return csv_of_blank_lines(folder, 32)
    return zip_of_blank_lines(folder, int(kind.removeprefix("zip-").removesuffix("k")))


# --- the attack shapes, each in a fresh process ---------------------------------------------------
@pytest.mark.parametrize("kind", ["zip-8k", "zip-32k", "zip-64k"])
def test_a_zip_of_blank_lines_is_refused_as_a_bomb_in_bounded_memory(
    kind: str, tmp_path: Path
) -> None:
    """Was: 2.2 GB (8 kB), 7.9 GB and 26 s (32 kB), over 12 GB (64 kB); a one-station election."""
    answer = import_in_fresh_process(_shape(kind, tmp_path))
    assert answer["error"] == "LimitError", answer
    assert "import_max_compression_ratio" in answer["message"]
    assert "POLLWATCH_IMPORT_MAX_COMPRESSION_RATIO" in answer["message"]
    assert "\n" not in answer["message"]
    assert answer["peak_mib"] < PEAK_MIB, answer


@pytest.mark.parametrize("kind", ["zip-8k", "zip-32k", "zip-64k", "csv-32m"])
def test_blank_lines_cost_nothing_even_past_the_ratio_limit(kind: str, tmp_path: Path) -> None:
    """With the ratio limit out of the way the reader itself refuses, without parsing a row."""
    answer = import_in_fresh_process(_shape(kind, tmp_path), **NO_RATIO)
    assert answer["error"] == "FormatError", answer
    assert answer["message"].startswith("no stations in "), answer
    assert "the header is followed by no data rows, only " in answer["message"]
    assert answer["peak_mib"] < PEAK_MIB, answer


def test_a_file_of_nothing_but_blank_lines_says_so(tmp_path: Path) -> None:
    path = csv_of_blank_lines(tmp_path, 32, header=False)
    with pytest.raises(FormatError, match=r"no stations in .*: the file is empty \(33,554,432 "):
        import_file(path, importer="medsl")


def test_a_genuine_table_of_the_same_size_imports(tmp_path: Path) -> None:
    """The limits leave genuine files alone: 32 MiB of stations, as large as Russia 2018."""
    path = tmp_path / "big-2018.csv"
    stations = russian_table(path, 32)
    answer = import_in_fresh_process(path)
    assert answer.get("stations") == stations, answer


# --- decompression limits ---------------------------------------------------------------------
def test_a_gzip_bomb_is_stopped_while_it_unpacks(tmp_path: Path) -> None:
    """gzip declares no size: the stream is counted as it unpacks and cut off past the ratio."""
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress(MEDSL_HEADER + b"\n" * 50_000_000, compresslevel=9))
    with pytest.raises(LimitError, match=r"gave over [0-9,]+\): a likely decompression bomb") as e:
        import_file(path, importer="medsl")
    assert e.value.setting == "import_max_compression_ratio"


def test_unpacked_bytes_are_capped(tmp_path: Path) -> None:
    example = get_importer("russia-cec").example(tmp_path / "example")
    limits = ImportLimits(max_unpacked_bytes=200)
    with pytest.raises(LimitError, match=r"declares it unpacks to .*import_max_unpacked_bytes"):
        import_file(example.path, limits=limits)
    plain = tmp_path / "plain.csv"
    plain.write_bytes(MEDSL_HEADER * 10)
    with pytest.raises(LimitError, match=r"plain.csv: is 1.12 KiB, more than 200 bytes"):
        import_file(plain, importer="medsl", limits=limits)
    gz = tmp_path / "stream.csv.gz"
    gz.write_bytes(gzip.compress(MEDSL_HEADER * 50_000))  # ISIZE says the truth; it is not read
    with pytest.raises(LimitError, match=r"unpacks to more than 1 MiB, the most an import"):
        import_file(gz, importer="medsl", limits=ImportLimits(max_unpacked_bytes=1024 * 1024))


def test_a_workbook_is_checked_against_what_its_parts_declare() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b" " * 20_000_000)
    with pytest.raises(LimitError, match="import_max_compression_ratio"):
        check_archive_members(buffer.getvalue(), "book.xlsx")


# --- table limits -----------------------------------------------------------------------------
def _table(rows: int, columns: int) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    return (header + "\n" + (",".join("1" for _ in range(columns)) + "\n") * rows).encode()


@pytest.mark.parametrize(
    ("limits", "rows", "columns", "setting"),
    [
        (ImportLimits(max_rows=100), 101, 3, "import_max_rows"),
        (ImportLimits(max_columns=10), 5, 11, "import_max_columns"),
        (ImportLimits(max_cells=1000), 101, 10, "import_max_cells"),
    ],
)
def test_tables_past_a_limit_are_refused_with_the_setting_named(
    limits: ImportLimits, rows: int, columns: int, setting: str
) -> None:
    from pollwatch.results.importers.limits import applied

    with applied(limits), pytest.raises(LimitError) as refused:
        read_csv_table(_table(rows, columns), where="t.csv")
    assert refused.value.setting == setting
    assert f"({setting})" in refused.value.message and "POLLWATCH_" in str(refused.value)
    with applied(limits):  # one row fewer is fine
        frame = read_csv_table(_table(rows - 1, min(columns, 10)), where="t.csv")
    assert frame.height == rows - 1


def test_lines_too_short_for_the_header_are_refused_before_parsing() -> None:
    """A line of 'x' under an 11-column header used to cost 11 cells: the class of the bug."""
    data = MEDSL_HEADER + b"VT,1,a,b,c,d,e,f,FALSE,total,1\n" + b"x\n" * 100_000
    with pytest.raises(FormatError, match=r"100,001 data lines \(0 of them blank\) in .* fields"):
        read_csv_table(data, where="short.csv")
    interior = MEDSL_HEADER + b"VT,1,a,b,c,d,e,f,FALSE,total,1\n" * 2 + b"\n" * 1000 + b"VT\n"
    with pytest.raises(FormatError, match=r"\(1,000 of them blank\)"):
        read_csv_table(interior, where="gaps.csv")


def test_trailing_blank_lines_are_dropped_not_read_as_rows(tmp_path: Path) -> None:
    """Was: each trailing blank line was a row of nulls ('empty station identifier')."""
    example = get_importer("russia-cec").example(tmp_path / "example")
    with zipfile.ZipFile(example.path) as archive:
        name = archive.namelist()[0]
        text = archive.read(name)
    padded = tmp_path / "padded-2018.csv"
    padded.write_bytes(text + b"\n\n  \r\n\n")
    election = import_file(padded, importer="russia-cec")
    assert len(election) == example.stations
    frame = read_csv_table(b"a,b\n1,2\n\n\n", where="t.csv")
    assert frame.to_dicts() == [{"a": "1", "b": "2"}]


def test_a_header_without_rows_has_no_stations() -> None:
    with pytest.raises(FormatError, match=r"^no stations in t.csv: the header is followed by no"):
        read_csv_table(b"a,b,c\n", where="t.csv")


def test_utf8_payload_is_reused_and_other_encodings_still_read() -> None:
    text = "регион,число\nМосква,12\n"
    for encoding in ("utf-8", "utf-8-sig", "cp1251"):
        data = text.encode(encoding)
        frame = read_csv_table(data, where="t.csv", encoding=encoding)
        assert frame.columns == ["регион", "число"]
        assert frame.row(0) == ("Москва", "12")


# --- the CLI is held to the same limits -----------------------------------------------------------
def test_pollwatch_import_refuses_the_bomb_and_takes_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pollwatch.cli import main

    bomb = zip_of_blank_lines(tmp_path, 8)
    home = tmp_path / "home"
    monkeypatch.setenv("POLLWATCH_HOME", str(home))
    monkeypatch.delenv("POLLWATCH_CONFIG", raising=False)
    assert main(["import", str(bomb)]) == 2
    refused = capsys.readouterr().err
    assert "import_max_compression_ratio" in refused and "POLLWATCH_IMPORT_MAX_" in refused
    monkeypatch.setenv("POLLWATCH_IMPORT_MAX_COMPRESSION_RATIO", "1e9")
    assert main(["import", str(bomb)]) == 2
    assert "no stations in" in capsys.readouterr().err
    assert not (home / "elections").is_dir() or not any((home / "elections").iterdir())


def test_parquet_and_excel_sources_are_held_to_the_table_limits(tmp_path: Path) -> None:
    """The mapping importer's own readers: a Parquet footer is checked before any page."""
    mapping = tmp_path / "tiny.toml"
    mapping.write_text(
        '[source]\nformat = "{format}"\n[election]\nid = "tiny"\ncountry = "XX"\n'
        '[columns]\nstation_id = "station"\nregistered = "registered"\n'
        '[candidates]\nfrom = "A"\nto = "B"\n'
    )
    table = pl.DataFrame(
        {
            "station": [f"s{i}" for i in range(50)],
            "registered": [100] * 50,
            "A": [40] * 50,
            "B": [30] * 50,
        }
    )
    parquet, workbook = tmp_path / "t.parquet", tmp_path / "t.xlsx"
    table.write_parquet(parquet)
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(table.columns)
    for row in table.iter_rows():
        sheet.append(list(row))
    book.save(workbook)
    for path, kind in ((parquet, "parquet"), (workbook, "excel")):
        mapping.write_text(mapping.read_text().replace("{format}", kind))
        assert len(import_file(path, mapping=mapping)) == 50
        with pytest.raises(LimitError, match=r"more than 49 data rows \(import_max_rows\)"):
            import_file(path, mapping=mapping, limits=ImportLimits(max_rows=49))
        with pytest.raises(LimitError, match=r"import_max_columns"):
            import_file(path, mapping=mapping, limits=ImportLimits(max_columns=3))
        mapping.write_text(mapping.read_text().replace(kind, "{format}"))
