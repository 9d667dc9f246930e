"""Shared reading helpers: header quoting, count parsing (fast and careful paths agree)."""

from __future__ import annotations

import polars as pl
import pytest

from pollwatch.errors import ColumnError, CountError
from pollwatch.results.importers._tables import parse_counts, read_csv_table


def test_quoted_header_with_doubled_quotes_is_unescaped() -> None:
    frame = read_csv_table('a,"6. ""ЕДИНАЯ РОССИЯ"""\n1,2\n'.encode(), where="t.csv")
    assert frame.columns == ["a", '6. "ЕДИНАЯ РОССИЯ"']


def test_repeated_header_is_an_error() -> None:
    with pytest.raises(ColumnError, match="appears twice"):
        read_csv_table(b"a,b,a\n1,2,3\n", where="t.csv")


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["1", "20", "0"], [1, 20, 0]),  # plain digits: the one-step path
        (["1", None, "3"], [1, None, 3]),
        ([" 12", "1 000", "7.0"], [12, 1000, 7]),  # spaces and integral decimals
        (["nan", "", "4"], [None, None, 4]),
        (["1.234", "-", "5"], [1234, None, 5]),  # thousands separator and a marker
    ],
)
def test_counts_are_parsed(cells: list[str | None], expected: list[int | None]) -> None:
    frame = pl.DataFrame({"a": cells}, schema={"a": pl.String})
    thousands = "." if "1.234" in cells else None
    parsed = parse_counts(frame, ["a"], where="t.csv", na_values=("nan", "-"), thousands=thousands)
    assert parsed["a"].to_list() == expected
    assert parsed.schema["a"] == pl.Int64


@pytest.mark.parametrize(("cell", "message"), [("abc", "not a whole number"), ("-3", "negative")])
def test_bad_counts_name_row_and_column(cell: str, message: str) -> None:
    frame = pl.DataFrame({"votes": ["1", "2", cell]})
    with pytest.raises(CountError, match=message) as info:
        parse_counts(frame, ["votes"], where="t.csv")
    assert info.value.row == 4  # header is line 1, the bad cell is on line 4
    assert info.value.column == "votes"


def test_count_too_large_for_64_bits_is_a_clean_error() -> None:
    frame = pl.DataFrame({"votes": ["1", "999999999999999999999"]})
    with pytest.raises(CountError) as info:
        parse_counts(frame, ["votes"], where="t.csv")
    assert info.value.row == 3
