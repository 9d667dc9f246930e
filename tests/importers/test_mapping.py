"""Tests of the generic mapping importer and of the mappings shipped with pollwatch.

Synthetic tables (CSV, Excel, Parquet, zip, gzip) written here exercise every part of a mapping
file and every error; the shipped mappings are checked against the real files of the data mirror
(Poland 2020, Germany EP 2024, Uganda 2006-2021) with the totals of their PROVENANCE.md.
"""

from __future__ import annotations

import gzip
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest

from pollwatch import import_file
from pollwatch.errors import CountError, FormatError, MappingError, PollwatchError
from pollwatch.results.checks import check_protocols
from pollwatch.results.importers import get_importer
from pollwatch.results.importers.mapping import load_mapping, shipped_mappings
from pollwatch.results.model import Election
from tests.conftest import mirror_file
from tests.importers.mapping_docs import docs_example

IMPORTER = get_importer("mapping")

HEADER = "Province;Commune;Station;Type;Electors;Voters;Invalid;Valid;Firefly;Sylvania First;Status"
ROWS = [
    "North;Alpha;1;regular;1.250;800;10;790;500;290;",
    "North;Alpha;2;hospital;120;100;2;98;60;38;",
    "South;Gamma;1;abroad;300;150;0;150;50;100;annulled",
]

BASE_TOML = """\
[source]
separator = ";"
thousands = "."
na_values = ["-"]

[election]
country = "XF"
date = "2031-04-01"
kind = "general"

[columns]
station_id = ["Province", "Commune", "Station"]
region = "Province"
municipality = "Commune"
station_kind = { column = "Type", values = { regular = "ordinary", hospital = "hospital", \
abroad = "abroad" } }
registered = "Electors"
ballots_cast = "Voters"
invalid = "Invalid"
valid = "Valid"

[candidates]
from = "Firefly"
to = "Sylvania First"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def table(folder: Path, rows: list[str] | None = None, header: str = HEADER) -> Path:
    return write(folder, "results.csv", "\n".join([header, *(ROWS if rows is None else rows)]))


def read(data: Path, mapping_text: str, folder: Path | None = None) -> Election:
    mapping = write(folder or data.parent, "mapping.toml", mapping_text)
    return IMPORTER.read(data, mapping=mapping)


# --- the example and the basics ---


def test_example_is_a_country_without_code(tmp_path: Path) -> None:
    example = IMPORTER.example(tmp_path)
    assert example.mapping is not None and example.mapping.suffix == ".toml"
    # Through the public API, as a user would: only a data file and a mapping file.
    election = import_file(example.path, mapping=example.mapping)
    assert election.meta.importer == "mapping"
    assert election.totals() == {"Firefly": 910, "Sylvania First": 808}
    assert len(election) == 5
    meta = election.meta
    assert meta.id == "freedonia-2031" and meta.country == "XF" and meta.date == "2031-04-01"
    assert meta.source_files == ("freedonia-2031.csv",)
    assert len(meta.source_sha256) == 64
    # The TOTAL line is dropped, but never silently.
    assert meta.definitions["excluded_rows"].startswith("1 source rows dropped")
    assert "1 source rows dropped" in meta.notes
    assert meta.definitions["ballots_cast"] == "voters who signed the list (column Voters)"
    assert meta.hierarchy_labels == {
        "region": "Province",
        "municipality": "Commune",
        "station_name": "Station",
    }
    stations = election.stations.sort("station_id")
    assert stations["station_id"].to_list() == [
        "North|Alpha|1",
        "North|Alpha|2",
        "North|Beta|1",
        "South|Gamma|1",
        "South|Gamma|2",
    ]
    assert stations["station_kind"].to_list() == [
        "ordinary",
        "hospital",
        "ordinary",
        "abroad",
        "ordinary",
    ]
    assert stations["registered"].to_list() == [1250, 120, 900, 300, 1100]
    assert stations["is_abroad"].to_list() == [False, False, False, True, False]
    assert stations["is_cancelled"].to_list() == [False, False, False, False, True]
    # "-" marks missing numbers: that station published nothing.
    assert stations["is_unpublished"].to_list() == [False, False, True, False, False]
    assert stations.row(2, named=True)["valid"] is None
    assert check_protocols(election).table.height == 5


def test_importer_is_never_detected(tmp_path: Path) -> None:
    example = IMPORTER.example(tmp_path)
    assert IMPORTER.needs_mapping
    assert IMPORTER.detect(example.path) == 0.0


def test_read_without_mapping_or_with_options_is_refused(tmp_path: Path) -> None:
    example = IMPORTER.example(tmp_path)
    with pytest.raises(PollwatchError, match="needs a mapping"):
        IMPORTER.read(example.path)
    with pytest.raises(PollwatchError, match="no option 'sheet'"):
        IMPORTER.read(example.path, mapping=example.mapping, options={"sheet": "1"})


def test_shipped_mappings_are_listed_and_valid() -> None:
    shipped = shipped_mappings()
    assert {
        "poland-2020-r1",
        "poland-2020-r2",
        "germany-ew2024",
        "uganda-2006",
        "uganda-2011",
        "uganda-2016",
        "uganda-2021",
    } <= set(shipped)
    for name in shipped:
        mapping = load_mapping(name)
        assert mapping.name == name
        assert mapping.election["id"] == name
        assert mapping.description


def test_unknown_shipped_name_suggests_a_close_one(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="did you mean 'poland-2020-r2'"):
        load_mapping("poland-2020-r3")
    with pytest.raises(MappingError, match="is a folder"):
        load_mapping(tmp_path)


def test_annotated_example_of_the_docs_reads_as_described(tmp_path: Path) -> None:
    data, mapping, _ = docs_example(tmp_path)
    election = IMPORTER.read(data, mapping=mapping)
    assert len(election) == 5
    assert election.totals() == {"Firefly": 910, "Sylvania First": 808}
    stations = election.stations.sort("station_id")
    assert stations["is_unpublished"].to_list() == [False, False, True, False, False]
    assert stations["is_abroad"].to_list() == [False, False, False, True, False]
    assert stations["is_cancelled"].to_list() == [False, False, False, False, True]
    assert election.meta.definitions["excluded_rows"].startswith("1 source rows dropped")
    assert election.meta.hierarchy_labels["region"] == "Province"
    assert election.meta.data_version == "final, 2031-04-20"


# --- mapping-file validation ---


def test_typo_in_a_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    text = BASE_TOML.replace('separator = ";"', 'seperator = ";"')
    mapping = write(tmp_path, "typo.toml", text)
    with pytest.raises(MappingError) as caught:
        load_mapping(mapping)
    message = str(caught.value)
    assert "did you mean 'separator'" in message
    assert "source.seperator" in message
    assert f"{mapping}:2:" in message  # the file and the line of the typo


#: (text replaced in BASE_TOML, what the error says): a misspelt key is named with its fix
UNKNOWN_KEYS = [
    (("[candidates]", "[candidate]"), "did you mean 'candidates'"),
    (('kind = "general"', 'knd = "general"'), "did you mean 'kind'"),
    (('invalid = "Invalid"', 'invalids = "Invalid"'), "did you mean 'invalid'"),
    (('from = "Firefly"', 'form = "Firefly"'), "did you mean 'from'"),
    (('abroad = "abroad" }', 'abroad = "abroad" }, defualt = "unknown"'), "'default'"),
]

#: (text replaced in BASE_TOML, what the error says): wrong types and values
WRONG_VALUES = [
    (('separator = ";"', "separator = 59"), "source.separator: expected a string"),
    (('separator = ";"', 'separator = ";;"'), "expected one character"),
    (('na_values = ["-"]', 'na_values = "-"'), "expected a list of strings"),
    (('country = "XF"', 'country = "Freedonia"'), "not an ISO 3166-1 alpha-2 code"),
    (('date = "2031-04-01"', 'date = "1 April 2031"'), "is not a date"),
    (('kind = "general"', 'kind = "general"\nround = "one"'), "expected a whole number"),
    (('regular = "ordinary"', 'regular = "normal"'), "'normal' is not a station kind"),
    (('station_id = ["Province", "Commune", "Station"]', "station_id = 3"), "got a number"),
    (('from = "Firefly"', 'from = "Firefly"\nmatches = "F"'), "exactly one of"),
    (('to = "Sylvania First"', ""), "'from' needs 'to'"),
    (("[source]", '[source]\nformat = "xlsx"'), "unknown format 'xlsx'"),
    (("[source]", '[source]\nencoding = "klingon"'), "unknown encoding"),
    (("[source]", '[source]\nformat = "excel"'), "applies to csv sources"),
    (("[source]", '[source]\nsheet = "Results"'), "applies to excel sources"),
    (("[candidates]", '[rows]\nexclude = { column = "X" }\n[candidates]'), "exactly one of"),
    (
        ("[candidates]", '[rows]\nexclude = { column = "X", matches = "(" }\n[candidates]'),
        "not a valid regular expression",
    ),
    (('country = "XF"\n', ""), "missing key country"),
    (('station_id = ["Province", "Commune", "Station"]\n', ""), "missing key station_id"),
    (
        ('region = "Province"', 'region = { column = "Province", default = "x" }'),
        "only applies with values",
    ),
    (("[election]", "[election]\nstation_id = 1"), "unknown key 'station_id'"),
    (("[columns]", "[columns"), "not valid TOML"),
]


@pytest.mark.parametrize(("change", "expected"), UNKNOWN_KEYS + WRONG_VALUES)
def test_unknown_keys_and_wrong_values_are_refused(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = BASE_TOML.replace(*change)
    assert text != BASE_TOML
    with pytest.raises(MappingError, match=expected):
        load_mapping(write(tmp_path, "m.toml", text))


def test_mapping_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_bytes(BASE_TOML.replace("XF", "ÉÉ").encode("latin-1"))
    with pytest.raises(MappingError, match="not UTF-8"):
        load_mapping(path)


# --- mapping against the data ---


def test_column_absent_from_the_file_names_key_file_and_close_names(tmp_path: Path) -> None:
    data = table(tmp_path)
    text = BASE_TOML.replace('registered = "Electors"', 'registered = "Electorate"')
    with pytest.raises(MappingError) as caught:
        read(data, text)
    message = str(caught.value)
    assert "columns.registered" in message
    assert "'Electorate'" in message
    assert "results.csv" in message
    assert "close: 'Electors'" in message
    assert "mapping.toml:" in message


def test_absent_candidate_and_rule_columns(tmp_path: Path) -> None:
    data = table(tmp_path)
    with pytest.raises(MappingError, match=r"candidates\.to names column 'Sylvania'"):
        read(data, BASE_TOML.replace('to = "Sylvania First"', 'to = "Sylvania"'))
    text = BASE_TOML + '\n[flags]\nis_cancelled = { column = "State", equals = "annulled" }\n'
    with pytest.raises(MappingError, match=r"flags\.is_cancelled names column 'State'"):
        read(data, text)


def test_non_numeric_cell_names_row_and_column(tmp_path: Path) -> None:
    rows = [*ROWS]
    rows[1] = "North;Alpha;2;hospital;120;1OO;2;98;60;38;"
    data = table(tmp_path, rows)
    with pytest.raises(CountError) as caught:
        read(data, BASE_TOML)
    error = caught.value
    assert error.row == 3  # line 3 of the file: header, first row, this row
    assert error.column == "Voters"
    assert "'1OO' is not a whole number" in str(error)
    assert "results.csv" in str(error)


def test_negative_count_is_refused(tmp_path: Path) -> None:
    rows = [*ROWS]
    rows[0] = "North;Alpha;1;regular;1.250;800;10;790;-500;290;"
    with pytest.raises(CountError, match="negative count"):
        read(table(tmp_path, rows), BASE_TOML.replace('na_values = ["-"]', "na_values = []"))


def test_unmapped_station_kind_names_value_and_row(tmp_path: Path) -> None:
    rows = [*ROWS, "South;Gamma;2;prison;50;40;0;40;20;20;"]
    data = table(tmp_path, rows)
    with pytest.raises(MappingError) as caught:
        read(data, BASE_TOML)
    assert "'prison'" in str(caught.value) and "row 5" in str(caught.value)
    with_default = BASE_TOML.replace(
        'abroad = "abroad" }', 'abroad = "abroad" }, default = "special"'
    )
    election = read(data, with_default)
    assert election.stations["station_kind"].to_list()[-1] == "special"


def test_garbage_and_empty_files_give_clean_errors(tmp_path: Path) -> None:
    mapping = write(tmp_path, "m.toml", BASE_TOML)
    empty = write(tmp_path, "empty.csv", "")
    with pytest.raises(FormatError, match="empty"):
        IMPORTER.read(empty, mapping=mapping)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("Région;x\nÎle;1\n".encode("latin-1"))
    with pytest.raises(FormatError, match="not valid utf-8"):
        IMPORTER.read(latin, mapping=mapping)
    with pytest.raises(FormatError, match="file not found"):
        IMPORTER.read(tmp_path / "missing.csv", mapping=mapping)


# --- station ids ---


def test_duplicate_ids_error_number_or_keep(tmp_path: Path) -> None:
    rows = [*ROWS, "North;Alpha;1;regular;10;5;0;5;3;2;"]
    data = table(tmp_path, rows)
    with pytest.raises(MappingError) as caught:
        read(data, BASE_TOML)
    assert "'North|Alpha|1'" in str(caught.value) and "[2, 5]" in str(caught.value)
    assert "duplicates = 'number'" in str(caught.value)

    numbered = BASE_TOML.replace(
        'station_id = ["Province", "Commune", "Station"]',
        'station_id = { columns = ["Province", "Commune", "Station"], duplicates = "number" }',
    )
    election = read(data, numbered)
    assert election.stations["station_id"].to_list() == [
        "North|Alpha|1",
        "North|Alpha|2",
        "South|Gamma|1",
        "North|Alpha|1#2",
    ]
    assert election.meta.definitions["duplicate_station_ids"].startswith("1 rows repeat")

    kept = election = read(data, numbered.replace('"number"', '"keep"'))
    assert kept.stations["station_id"].to_list()[-1] == "North|Alpha|1"
    assert "kept as they are" in kept.meta.definitions["duplicate_station_ids"]


def test_template_and_joined_ids_and_value_maps(tmp_path: Path) -> None:
    data = table(tmp_path)
    text = BASE_TOML.replace(
        'station_id = ["Province", "Commune", "Station"]',
        'station_id = { template = "{Province}-{Commune} no. {Station}" }',
    ).replace(
        'region = "Province"',
        'region = { column = "Province", values = { North = "Nord" } }\n'
        'district = { columns = ["Province", "Commune"], join = " / " }',
    )
    election = read(data, text)
    stations = election.stations
    assert stations["station_id"].to_list() == [
        "North-Alpha no. 1",
        "North-Alpha no. 2",
        "South-Gamma no. 1",
    ]
    assert stations["region"].to_list() == ["Nord", "Nord", "South"]  # unlisted: unchanged
    assert stations["district"].to_list() == ["North / Alpha", "North / Alpha", "South / Gamma"]
    assert election.meta.hierarchy_labels["district"] == "Province / Commune"


def test_empty_station_id_is_refused(tmp_path: Path) -> None:
    rows = [*ROWS, ";;;regular;10;5;0;5;3;2;"]
    with pytest.raises(MappingError, match=r"empty id .* row 5"):
        read(table(tmp_path, rows), BASE_TOML)


# --- candidates ---


def test_candidates_as_an_explicit_list_with_names_and_parties(tmp_path: Path) -> None:
    text = BASE_TOML.replace(
        'from = "Firefly"\nto = "Sylvania First"',
        'columns = [{ column = "Sylvania First", name = "Trentino", party = "SF" }, "Firefly"]',
    )
    election = read(table(tmp_path), text)
    candidates = [(c.name, c.column, c.party) for c in election.meta.candidates]
    assert candidates == [("Trentino", "Trentino", "SF"), ("Firefly", "Firefly", None)]
    assert election.totals() == {"Trentino": 428, "Firefly": 610}


def test_candidates_by_regex_with_exclude_names_and_party_lists(tmp_path: Path) -> None:
    text = BASE_TOML.replace(
        'from = "Firefly"\nto = "Sylvania First"',
        'matches = "^[A-Z][a-z]+( First)?$"\n'
        'exclude = ["Province", "Commune", "Station", "Type", "Electors", "Voters", '
        '"Invalid", "Valid", "Status"]\n'
        'names = { "Sylvania First" = "Sylvania" }\n'
        "party_lists = true",
    )
    election = read(table(tmp_path), text)
    assert [(c.name, c.party) for c in election.meta.candidates] == [
        ("Firefly", "Firefly"),
        ("Sylvania", "Sylvania"),
    ]


def test_candidate_selection_errors(tmp_path: Path) -> None:
    data = table(tmp_path)
    swapped = BASE_TOML.replace('from = "Firefly"', 'from = "Sylvania First"').replace(
        'to = "Sylvania First"', 'to = "Firefly"'
    )
    with pytest.raises(MappingError, match="comes before"):
        read(data, swapped)
    with pytest.raises(MappingError, match="exclude names 'Fireflies'"):
        read(
            data,
            BASE_TOML.replace(
                'to = "Sylvania First"', 'to = "Sylvania First"\nexclude = ["Fireflies"]'
            ),
        )
    with pytest.raises(MappingError, match="matches no column"):
        read(data, BASE_TOML.replace('from = "Firefly"\nto = "Sylvania First"', 'matches = "^Z"'))
    overlap = BASE_TOML.replace('from = "Firefly"', 'from = "Valid"')
    with pytest.raises(MappingError, match="both a candidate and a count"):
        read(data, overlap)
    clash = BASE_TOML.replace(
        'to = "Sylvania First"', 'to = "Sylvania First"\nnames = { Firefly = "valid" }'
    )
    with pytest.raises(MappingError, match="column name of the data model"):
        read(data, clash)


# --- rows, flags, sums ---


def test_rules_flags_no_results_null_when_and_sums(tmp_path: Path) -> None:
    header = HEADER + ";Spoilt;Kind;NR"
    rows = [
        "North;Alpha;1;regular;1.250;800;4;790;500;290;;6;0;0",
        "North;Alpha;2;regular;0;100;2;98;60;38;;0;5;0",
        "North;Beta;1;regular;900;0;0;0;0;0;;0;0;1",
        "South;Gamma;1;regular;300;150;0;150;50;100;;0;7;0",
        "Total;;;regular;2.450;1.050;6;1.038;610;428;;6;;0",
    ]
    data = table(tmp_path, rows, header)
    text = BASE_TOML.replace(
        'registered = "Electors"',
        'registered = { column = "Electors", null_when = { column = "Kind", equals = [5] } }',
    ).replace('invalid = "Invalid"', 'invalid = ["Invalid", "Spoilt"]')
    text += """
[flags]
is_pseudo_station = { column = "Kind", equals = ["5", "7"] }
is_evoting = { all = [{ column = "Kind", equals = "7" }, { column = "Station", matches = "^1$" }] }
is_cancelled = [{ column = "Status", not_equals = "" }, { column = "Kind", empty = true }]

[rows]
exclude = { column = "Province", matches = "(?i)^total$" }
no_results = { column = "NR", equals = "1" }

[definitions]
note = "free text"
"""
    election = read(data, text)
    stations = election.stations
    assert len(election) == 4
    assert stations["registered"].to_list() == [1250, None, 900, 300]
    assert stations["invalid"].to_list() == [10, 2, None, 0]
    assert stations["valid"].to_list() == [790, 98, None, 150]
    assert stations["is_pseudo_station"].to_list() == [False, True, False, True]
    assert stations["is_evoting"].to_list() == [False, False, False, True]
    assert stations["is_cancelled"].to_list() == [False, False, False, False]
    assert stations["is_unpublished"].to_list() == [False, False, True, False]
    definitions = election.meta.definitions
    assert definitions["note"] == "free text"
    assert definitions["invalid"] == "sum of source columns 'Invalid' + 'Spoilt'"
    assert "null where 'Kind' is '5'" in definitions["registered"]
    assert definitions["no_results"].startswith("1 rows where 'NR' is '1'")
    assert definitions["excluded_rows"].startswith("1 source rows dropped")
    assert definitions["is_pseudo_station"] == (
        "true where station_kind is 'postal', 'evoting' or 'catch_all'; "
        "also true where 'Kind' is '5' or '7'"
    )
    # Cells of the excluded line are never parsed: a label there is no error.
    rows[-1] = "Total;;;regular;n/a;1.050;6;1.038;610;428;;6;;0"
    assert len(read(table(tmp_path, rows, header), text)) == 4


def test_quote_decimal_and_skip_rows(tmp_path: Path) -> None:
    text = "title line\n" + "\n".join(
        [
            "Province;Commune;Station;Type;Electors;Voters;Invalid;Valid;Firefly;Sylvania First",
            "'North;East';Alpha;1;regular;1.250,0;800;10;790;500;290",
            "South;Gamma;1;regular;300;150,00;0;150;50;100",
        ]
    )
    data = write(tmp_path, "q.csv", text)
    mapping = BASE_TOML.replace(
        'na_values = ["-"]', 'na_values = []\ndecimal = ","\nquote = "\'"\nskip_rows = 1'
    )
    election = read(data, mapping)
    assert election.stations["region"].to_list() == ["North;East", "South"]
    assert election.stations["registered"].to_list() == [1250, 300]
    assert election.stations["ballots_cast"].to_list() == [800, 150]
    with pytest.raises(CountError) as caught:
        read(write(tmp_path, "q.csv", text.replace("150,00", "150,5")), mapping)
    assert caught.value.row == 4 and caught.value.column == "Voters"


def test_zip_member_and_gzip(tmp_path: Path) -> None:
    data = table(tmp_path)
    archive = tmp_path / "results.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(data, "inner/results.csv")
        handle.writestr("readme.csv", "a;b\n1;2\n")
    text = BASE_TOML.replace("[source]\n", '[source]\nmember = "inner/results.csv"\n')
    assert read(archive, text).totals() == {"Firefly": 610, "Sylvania First": 428}
    with pytest.raises(FormatError, match="no member"):
        read(archive, text.replace("inner/results.csv", "results.csv"))
    packed = tmp_path / "results.csv.gz"
    packed.write_bytes(gzip.compress(data.read_bytes()))
    assert len(read(packed, BASE_TOML)) == 3


def test_bom_is_ignored(tmp_path: Path) -> None:
    data = tmp_path / "bom.csv"
    data.write_bytes(b"\xef\xbb\xbf" + "\n".join([HEADER, *ROWS]).encode("utf-8"))
    election = read(data, BASE_TOML.replace("[source]\n", '[source]\nencoding = "utf-8-sig"\n'))
    assert election.stations["region"].to_list() == ["North", "North", "South"]


# --- Excel and Parquet ---


def test_excel_source(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    sheet = book.create_sheet("Results")
    sheet.append(["Official results"])
    sheet.append(HEADER.split(";")[:10])
    sheet.append(["North", "Alpha", 1, "regular", 1250, 800, 10, 790, 500, 290])
    sheet.append(["North", "Alpha", 2, "hospital", "120", 100.0, 2, 98, 60, 38])
    sheet.append(["South", "Gamma", 1, "abroad", 300, 150, 0, 150, 50, None])
    path = tmp_path / "results.xlsx"
    book.save(path)
    text = BASE_TOML.replace(
        '[source]\nseparator = ";"\nthousands = "."',
        '[source]\nformat = "excel"\nsheet = "Results"\nskip_rows = 1',
    )
    election = read(path, text)
    assert election.totals() == {"Firefly": 610, "Sylvania First": 328}
    assert election.stations["registered"].to_list() == [1250, 120, 300]
    assert election.stations["Sylvania First"].to_list() == [290, 38, None]
    with pytest.raises(FormatError, match="not a readable Excel sheet"):
        read(path, text.replace('sheet = "Results"', 'sheet = "Resultz"'))
    by_position = read(path, text.replace('sheet = "Results"', "sheet = 2"))
    assert len(by_position) == 3
    # A cell that is not a number names its Excel row.
    sheet.cell(row=4, column=6).value = "many"
    book.save(path)
    with pytest.raises(CountError) as caught:
        read(path, text)
    assert caught.value.row == 4 and caught.value.column == "Voters"
    with pytest.raises(FormatError):
        read(table(tmp_path), text)  # a CSV is not a workbook


def test_parquet_source(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "Province": ["North", "South"],
            "Commune": ["Alpha", "Gamma"],
            "Station": [1, 1],
            "Type": ["regular", "abroad"],
            "Electors": [1250, 300],
            "Voters": [800, 150],
            "Invalid": [10, 0],
            "Valid": [790.0, 150.0],
            "Firefly": [500, 50],
            "Sylvania First": [290, None],
        }
    )
    path = tmp_path / "results.parquet"
    frame.write_parquet(path)
    text = BASE_TOML.replace(
        '[source]\nseparator = ";"\nthousands = "."', '[source]\nformat = "parquet"'
    )
    election = read(path, text)
    assert election.totals() == {"Firefly": 550, "Sylvania First": 290}
    assert election.stations["valid"].to_list() == [790, 150]
    assert election.stations["station_id"].to_list() == ["North|Alpha|1", "South|Gamma|1"]
    with pytest.raises(FormatError, match="not a readable Parquet"):
        read(table(tmp_path), text)


# --- the shipped mappings on the real files ---

REAL = {
    "poland-2020-r1": (
        "poland_2020_president_obwody_pkw/round1_wyniki_gl_na_kand_po_obwodach_csv.zip",
        27_229,
        30_204_241,
        {"Andrzej Sebastian DUDA": 8_450_341, "Rafał Kazimierz TRZASKOWSKI": 5_917_256},
    ),
    "poland-2020-r2": (
        "poland_2020_president_obwody_pkw/round2_wyniki_gl_na_kand_po_obwodach_csv.zip",
        27_231,
        30_267_989,
        {"Andrzej Sebastian DUDA": 10_440_388, "Rafał Kazimierz TRZASKOWSKI": 10_018_092},
    ),
    "germany-ew2024": (
        "germany_ew2024_wahlbezirke/ew24_wbz.zip",
        91_753,
        61_963_020,
        {
            "CDU": 9_435_636,
            "SPD": 5_551_545,
            "AfD": 6_325_890,
            "GRÜNE": 4_738_227,
            "CSU": 2_513_481,
            "BSW": 2_456_460,
        },
    ),
    "uganda-2006": (
        "uganda_president_2006_2021_uedp/UEDP_2006_Dataset.csv.gz",
        19_786,
        10_450_788,
        {"Yoweri Museveni": 4_111_955, "Kizza Besigye": 2_596_463},
    ),
    "uganda-2011": (
        "uganda_president_2006_2021_uedp/UEDP_2011_Dataset.csv.gz",
        23_968,
        13_954_129,
        {"Yoweri Museveni": 5_436_639, "Kizza Besigye": 2_071_397},
    ),
    "uganda-2016": (
        "uganda_president_2006_2021_uedp/UEDP_2016_Dataset.csv.gz",
        28_010,
        15_277_198,
        {"Yoweri Museveni": 5_971_872, "Kizza Besigye": 3_508_687},
    ),
    "uganda-2021": (
        "uganda_president_2006_2021_uedp/UEDP_2021_AllStations.csv.gz",
        34_767,
        18_157_960,
        {"Yoweri Museveni": 6_042_898, "Robert Kyagulanyi": 3_631_437},
    ),
}

_CACHE: dict[str, Election] = {}


def real(mirror: Path, name: str) -> Election:
    if name not in _CACHE:
        path = mirror_file(mirror, REAL[name][0])
        # The shipped mapping is given by name, as `pollwatch import FILE --mapping NAME` does.
        _CACHE[name] = import_file(path, mapping=Path(name))
    return _CACHE[name]


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(REAL))
def test_shipped_mapping_reads_real_file_to_published_totals(mirror: Path, name: str) -> None:
    _, rows, registered, totals = REAL[name]
    election = real(mirror, name)
    assert len(election) == rows
    assert election.stations["registered"].sum() == registered
    got = election.totals()
    for candidate, votes in totals.items():
        assert got[candidate] == votes, candidate
    assert election.meta.id == name
    assert election.meta.importer == "mapping"
    assert election.stations["station_id"].n_unique() == rows
    assert election.meta.source_files == (Path(REAL[name][0]).name,)
    report = check_protocols(election)
    counts = {c.rule: c.failed for c in report.counts}
    assert counts["votes_sum_to_valid"] == 0
    assert counts["valid_plus_invalid_equals_ballots_in_boxes"] == 0
    assert counts["unique_station_id"] == 0


@pytest.mark.data
@pytest.mark.parametrize("name", ["poland-2020-r1", "poland-2020-r2"])
def test_poland_kinds_and_flags(mirror: Path, name: str) -> None:
    election = real(mirror, name)
    stations = election.stations
    kinds = dict(stations["station_kind"].value_counts().iter_rows())
    abroad = 169 if name.endswith("r1") else 171
    assert kinds["ordinary"] == 25_433
    assert kinds["hospital"] == 799
    assert kinds["abroad"] == abroad
    assert kinds["prison"] == 45 + 94 + 15 + 18
    assert kinds["dormitory"] == 3
    assert "unknown" not in kinds
    assert int(stations["is_abroad"].sum()) == abroad
    # Four military stations abroad published "-" everywhere: kept, with null numbers.
    unpublished = stations.filter(pl.col("is_unpublished"))
    assert unpublished.height == 4
    assert unpublished["valid"].null_count() == 4
    assert unpublished["registered"].null_count() == 4
    assert unpublished["station_id"].to_list()[0].startswith("|")
    assert stations.filter(pl.col("station_id") == "020101|1")["region"][0] == "dolnośląskie"


@pytest.mark.data
def test_germany_postal_districts_and_speed(mirror: Path) -> None:
    path = mirror_file(mirror, REAL["germany-ew2024"][0])
    started = time.perf_counter()
    election = IMPORTER.read(path, mapping=Path("germany-ew2024"))
    elapsed = time.perf_counter() - started
    stations = election.stations
    assert stations["ballots_cast"].sum() == 40_114_939
    postal = stations.filter(pl.col("station_kind") == "postal")
    assert postal.height == 25_162
    assert postal["is_pseudo_station"].all()
    assert postal["registered"].null_count() == 25_162  # 0 in the file: no electorate
    assert postal["ballots_cast"].sum() == 15_134_522
    assert stations.filter(pl.col("station_kind") == "catch_all").height == 4
    assert stations.filter(pl.col("station_kind") == "special").height == 1
    assert stations["region"].n_unique() == 16
    assert stations.filter(pl.col("station_id").str.contains("#")).height == 6
    assert election.meta.definitions["duplicate_station_ids"].startswith("6 rows")
    assert len(election.meta.candidates) == 35
    assert all(c.party == c.name for c in election.meta.candidates)
    # Generous bound for a loaded CI machine; the report gives the measured time.
    assert elapsed < 30


@pytest.mark.data
@pytest.mark.parametrize(
    ("name", "non_reported"),
    [("uganda-2006", 36), ("uganda-2011", 141), ("uganda-2016", 235), ("uganda-2021", 184)],
)
def test_uganda_non_reported_stations(mirror: Path, name: str, non_reported: int) -> None:
    election = real(mirror, name)
    stations = election.stations
    unpublished = stations.filter(pl.col("is_unpublished"))
    assert unpublished.height == non_reported
    assert unpublished["valid"].null_count() == non_reported  # zeros were placeholders
    assert unpublished["registered"].null_count() == 0
    cancelled = int(stations["is_cancelled"].sum())
    assert cancelled == (non_reported if name == "uganda-2021" else 0)
    assert "no_results" in election.meta.definitions
