"""The quarantine: bad rows are set aside with their source line and reason, or strict fails.

The property tests take each importer's own example file (``Importer.example``), mix copies of
its rows holding a bad count cell in at random places, and check that every good row still
arrives (same stations, same totals), that every bad row is in the quarantine with its line in
the file and its reason, and that a strict import fails with the one-line error of the first
bad row and stores nothing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch.errors import CountError, InputError
from pollwatch.results.importers import import_file
from pollwatch.results.importers._tables import parse_counts
from pollwatch.results.importers.base import get_importer
from pollwatch.results.quarantine import (
    EMPTY_IDENTIFIER,
    MAX_CELL_CHARACTERS,
    MAX_CELLS,
    NEGATIVE_COUNT,
    NOT_WHOLE_NUMBER,
    Quarantine,
    QuarantinedRow,
    collecting,
    number_lines,
    set_aside,
)
from pollwatch.results.store import ElectionStore
from tests.helpers import run_cli as _run

# --- set_aside ---------------------------------------------------------------------------------


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"id": ["a", "b", "c", "d", "e"], "votes": ["1", "x", "3", "-4", "y"]})


def test_without_a_collector_set_aside_raises_the_one_line_error() -> None:
    with pytest.raises(CountError) as caught:
        set_aside(
            _frame(),
            pl.col("votes") == "x",
            reason=NOT_WHOLE_NUMBER,
            where="f.csv",
            column="votes",
            message=lambda row: f"{row['votes']!r} is not a whole number",
            hint="fix it",
        )
    assert caught.value.row == 3
    assert str(caught.value) == "f.csv, row 3, column 'votes': 'x' is not a whole number (fix it)"


def test_collected_rows_keep_their_lines_across_steps() -> None:
    frame = number_lines(_frame(), first_row=4)  # a title line and two header lines
    with collecting() as collector:
        frame = set_aside(
            frame, pl.col("votes") == "x", reason="r1", where="f.csv", line_column=frame.columns[0]
        )
        frame = set_aside(
            frame, pl.col("votes") == "y", reason="r2", where="f.csv", line_column=frame.columns[0]
        )
    assert frame["id"].to_list() == ["a", "c", "d"]
    quarantine = collector.quarantine()
    assert [(r.line, r.reason, r.cells) for r in quarantine] == [
        (5, "r1", ("b", "x")),
        (8, "r2", ("e", "y")),
    ]
    assert quarantine.rows_checked == 5
    assert quarantine.one_line("e") == (
        "set aside 2 rows of 5 (1 r1, 1 r2); see `pollwatch show e --quarantine`"
    )


def test_cells_are_bounded() -> None:
    wide = pl.DataFrame({f"c{i}": ["x" * 500] for i in range(MAX_CELLS + 10)})
    with collecting() as collector:
        set_aside(wide, pl.lit(True), reason="r", where="w")
    (row,) = collector.quarantine().rows
    assert len(row.cells) == MAX_CELLS + 1 and row.cells[-1] == "…"
    assert all(len(cell) <= MAX_CELL_CHARACTERS for cell in row.cells)


def test_parse_counts_sets_aside_each_bad_row_once() -> None:
    frame = pl.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "x": ["1", "2.5", "-3", "4"],
            "y": ["1 000", "oops", "5", "12.0"],
        }
    )
    with collecting() as collector:
        parsed = parse_counts(frame, ["x", "y"], where="f.csv", thousands=" ", first_row=3)
    assert parsed["id"].to_list() == ["a", "d"]
    assert parsed["y"].to_list() == [1000, 12]
    assert [(r.line, r.column, r.reason, r.detail) for r in collector.quarantine()] == [
        (4, "x", NOT_WHOLE_NUMBER, "'2.5' is not a whole number"),
        (5, "x", NEGATIVE_COUNT, "negative count -3"),
    ]
    with pytest.raises(CountError, match=r"row 4, column 'x': '2.5' is not a whole number"):
        parse_counts(frame, ["x", "y"], where="f.csv", thousands=" ", first_row=3)


def test_quarantine_round_trips_through_json() -> None:
    quarantine = Quarantine(
        rows=(QuarantinedRow(7, "votes", NOT_WHOLE_NUMBER, ("a", "x"), "'x' ...", "f.csv"),),
        rows_checked=9,
    )
    assert Quarantine.from_dict(json.loads(json.dumps(quarantine.to_dict()))) == quarantine
    assert Quarantine.from_dict(None) == Quarantine()


# --- the importers: bad rows mixed into their example files --------------------------------------


@dataclass(frozen=True)
class Case:
    importer: str
    #: the header (count) name of the column that gets the bad cells; None: the last column
    column: str | None
    #: which data row to copy as a bad row (any row would do; this one is a station's)
    template: int


CASES = [
    Case("russia-cec", "Петрова Мария Сергеевна", 0),
    Case("mapping", "Firefly", 0),
    Case("openelections", "votes", 2),
    Case("medsl", "votes", 0),
]
BAD_CELLS = {"abc": NOT_WHOLE_NUMBER, "12.5": NOT_WHOLE_NUMBER, "x1": NOT_WHOLE_NUMBER}
BAD_CELLS["-7"] = NEGATIVE_COUNT
BAD_CELLS["2,5"] = NOT_WHOLE_NUMBER


def _bad_cells(case: Case) -> list[str]:
    # Freedonia writes "." between thousands: its "12.5" is 125 votes, a good cell. MEDSL
    # rows may be signed (adjustment rows; the tally's negative option decides about them).
    good = {"mapping": {"12.5"}, "medsl": {"-7"}}.get(case.importer, set())
    return sorted(c for c in BAD_CELLS if c not in good)


@dataclass
class Source:
    """An example file taken apart: container, encoding, lines before the data, data rows."""

    kind: str  # plain, gzip or zip
    member: str
    encoding: str
    separator: str
    head: list[str]
    rows: list[list[str]]


def _read_source(path: Path, separator: str, head_lines: int) -> Source:
    data = path.read_bytes()
    kind, member = "plain", path.name
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            (member,) = archive.namelist()
            data = archive.read(member)
        kind = "zip"
    elif data[:2] == b"\x1f\x8b":
        data, kind = gzip.decompress(data), "gzip"
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("cp1251"), "cp1251"
    lines = text.splitlines()
    rows = list(csv.reader(io.StringIO("\n".join(lines[head_lines:])), delimiter=separator))
    return Source(kind, member, encoding, separator, lines[:head_lines], rows)


def _write_source(source: Source, rows: list[list[str]], path: Path) -> None:
    body = io.StringIO()
    csv.writer(body, delimiter=source.separator, lineterminator="\n").writerows(rows)
    data = ("\n".join(source.head) + "\n" + body.getvalue()).encode(source.encoding)
    if source.kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(source.member, data)
    elif source.kind == "gzip":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def _example(case: Case, folder: Path) -> tuple[object, Source, int]:
    example = get_importer(case.importer).example(folder)
    separator = ";" if case.importer == "mapping" else ","
    head_lines = 2 if case.importer == "mapping" else 1  # Freedonia has a title line
    source = _read_source(example.path, separator, head_lines)
    header = next(csv.reader([source.head[-1]], delimiter=separator))
    index = len(header) - 1 if case.column is None else header.index(case.column)
    return example, source, index


@pytest.mark.parametrize("case", CASES, ids=[c.importer for c in CASES])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bad_rows_are_set_aside_and_good_rows_kept(case: Case, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        example, source, index = _example(case, folder)
        good = source.rows
        inserts = data.draw(
            st.lists(
                st.tuples(st.integers(0, len(good)), st.sampled_from(_bad_cells(case))),
                min_size=1,
                max_size=4,
            )
        )
        rows: list[tuple[list[str], str | None]] = [(row, None) for row in good]
        for position, cell in inserts:
            bad = list(good[case.template])
            bad[index] = cell
            rows.insert(position, (bad, cell))
        target = folder / f"mixed-{example.path.name}"  # type: ignore[attr-defined]
        _write_source(source, [row for row, _ in rows], target)
        first_line = len(source.head) + 1
        expected = [(first_line + i, BAD_CELLS[cell]) for i, (_, cell) in enumerate(rows) if cell]
        mapping = example.mapping  # type: ignore[attr-defined]
        options = dict(example.options) or None  # type: ignore[attr-defined]

        election = import_file(target, importer=case.importer, mapping=mapping, options=options)
        assert len(election) == example.stations  # type: ignore[attr-defined]
        assert election.totals() == dict(example.totals)  # type: ignore[attr-defined]
        found = [(row.line, row.reason) for row in election.quarantine]
        assert found == expected
        header = next(csv.reader([source.head[-1]], delimiter=source.separator))
        assert {row.column for row in election.quarantine} == {header[index].strip()}
        assert election.quarantine.rows_checked >= len(rows) - len(expected)
        assert election.summary().set_aside == len(expected)

        with pytest.raises(CountError) as caught:
            import_file(
                target, importer=case.importer, mapping=mapping, options=options, strict=True
            )
        assert caught.value.row == expected[0][0]
        assert "\n" not in str(caught.value)


def test_mapping_sets_aside_an_empty_station_identifier(tmp_path: Path) -> None:
    example = get_importer("mapping").example(tmp_path)
    lines = example.path.read_text(encoding="utf-8").splitlines()
    # Line 5 of the file (title, header, two rows before it) loses its key columns.
    lines.insert(4, ";;;regular;10;5;0;5;3;2;")
    target = tmp_path / "empty-id.csv"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    election = import_file(target, mapping=example.mapping)
    assert len(election) == example.stations
    assert [(r.line, r.column, r.reason) for r in election.quarantine] == [
        (5, "station_id", EMPTY_IDENTIFIER)
    ]
    with pytest.raises(InputError, match=r"empty id .* row 5"):
        import_file(target, mapping=example.mapping, strict=True)


# --- store, CLI ----------------------------------------------------------------------------------


def _bad_mapping_file(folder: Path) -> tuple[Path, Path]:
    example = get_importer("mapping").example(folder)
    lines = example.path.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "North;Alpha;9;regular;10;5;0;5;three;2;")  # line 4
    lines.insert(5, "North;Alpha;8;regular;10;5;0;5;-3;2;")  # line 6
    target = folder / "bad.csv"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert example.mapping is not None
    return target, example.mapping


def test_store_round_trips_the_quarantine(tmp_path: Path) -> None:
    target, mapping = _bad_mapping_file(tmp_path)
    election = import_file(target, mapping=mapping)
    store = ElectionStore(tmp_path / "store")
    assert store.save(election) == "created"
    assert store.save(election) == "unchanged"
    loaded = store.load(election.id)
    assert loaded.quarantine == election.quarantine
    assert store.quarantine(election.id) == election.quarantine
    assert [e.set_aside for e in store.list()] == [2]
    assert store.load(election.id).replace_meta(notes="x").quarantine == election.quarantine
    clean = import_file(get_importer("mapping").example(tmp_path / "c").path, mapping=mapping)
    assert store.save(clean, replace=True) == "replaced"
    assert len(store.load(election.id).quarantine) == 0
    store.delete(election.id)
    assert store.list() == []


def test_cli_import_reports_one_line_and_show_lists_the_rows(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, mapping = _bad_mapping_file(tmp_path)
    code, out, err = _run(capsys, "import", str(target), "--mapping", str(mapping))
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("set aside")]
    assert lines == [
        "set aside 2 rows of 8 (1 negative count, 1 not a whole number); "
        "see `pollwatch show freedonia-2031 --quarantine`"
    ]
    code, out, _ = _run(capsys, "show", "freedonia-2031", "--quarantine")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    body = [line.strip("│ ") for line in out.splitlines() if line.strip("│ ")[:1].isdigit()]
    assert [line.split()[0] for line in body] == ["4", "6"]
    assert "not a whole" in body[0] and "Firefly" in body[0]
    code, out, _ = _run(capsys, "show", "freedonia-2031", "--quarantine", "--json")
    data = json.loads(out)
    assert [row["line"] for row in data["rows"]] == [4, 6]
    code, out, _ = _run(capsys, "show", "freedonia-2031", "--json")
    assert json.loads(out)["summary"]["set_aside"] == 2


def test_cli_strict_fails_with_one_line_and_stores_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, mapping = _bad_mapping_file(tmp_path)
    code, _, err = _run(capsys, "import", str(target), "--mapping", str(mapping), "--strict")
    assert code != 0
    message = " ".join(err.split())
    assert "row 4, column 'Firefly': 'three' is not a whole number" in message
    assert "Traceback" not in err
    assert ElectionStore(home / "elections").list() == []
