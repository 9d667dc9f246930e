"""Derived columns of mapping files (``[derived]``): sources that lack ``valid`` or ``registered``.

Each shape below is a small synthetic table written by the test with the column names of a
real source as far as we know them (the source is named in a comment; none of these files is
in the data mirror). The stations' numbers come from a seeded generator, and every total is
checked against the sum computed here from the generated rows, not against the importer. The
last test derives ``valid`` on a real file of the mirror (Uganda 2021) and compares it with the
published column.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import pytest

from pollwatch import import_file
from pollwatch.errors import CountError, MappingError
from pollwatch.forensics.suite import run_suite
from pollwatch.results.checks import DERIVED_CHECK_PREFIX, check_protocols
from pollwatch.results.importers import get_importer
from pollwatch.results.importers.mapping import load_mapping
from pollwatch.results.model import Election
from tests.conftest import mirror_file
from tests.importers.mapping_docs import docs_example

IMPORTER = get_importer("mapping")

#: methods that need ``valid`` (each is skipped with "no valid numbers" or "missing valid"
#: without it) and that run in well under a second on a few dozen stations
NEED_VALID = ("eft-p05s", "integer-shares")
#: ... and those that also need ``registered`` and ``ballots_cast`` (turnout)
NEED_VALID_AND_TURNOUT = (
    "eft-sobyanin",
    "eft-correlation",
    "klimek-fingerprint",
    "integer-percentages",
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def read(folder: Path, rows: Sequence[Sequence[object]], mapping: str) -> Election:
    lines = [",".join(_cell(c) for c in row) for row in rows]
    data = write(folder, "results.csv", "\n".join(lines) + "\n")
    return IMPORTER.read(data, mapping=write(folder, "mapping.toml", mapping))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f'"{text}"' if "," in text else text


def ran(election: Election, methods: Sequence[str]) -> set[str]:
    """The methods of ``methods`` that ran (were not skipped) on ``election``."""
    report = run_suite(election, list(methods))
    return {result.method for result in report.results}


def number(cell: object) -> int:
    """A cell of a generated row as a whole number."""
    return int(str(cell))


def column_sum(rows: Sequence[Sequence[object]], name: str) -> int:
    index = list(rows[0]).index(name)
    return sum(number(row[index]) for row in rows[1:])


# --- Georgia, parliamentary 26 October 2024 ---------------------------------------------------
# Shape of the precinct results of the Central Election Commission of Georgia
# (results.cec.gov.ge, per საარჩევნო უბანი): district and precinct numbers, voters on the list,
# voters who took part, invalid ballots and one column per party list ("number - name"), and no
# column of valid ballots.

GEORGIA_PARTIES = (
    "4 - კოალიცია ცვლილებისთვის",
    "5 - ერთიანობა - ნაციონალური მოძრაობა",
    "9 - გახარია - საქართველოსთვის",
    "25 - ძლიერი საქართველო",
    "41 - ქართული ოცნება",
)


def georgia_rows(stations: int = 40) -> list[list[object]]:
    rng = random.Random(2024)
    rows: list[list[object]] = [
        ["ოლქი", "უბანი", "ამომრჩეველთა რაოდენობა", "მონაწილეობა", "ბათილი", *GEORGIA_PARTIES]
    ]
    for index in range(stations):
        votes = [rng.randint(20, 400) for _ in GEORGIA_PARTIES]
        invalid = rng.randint(0, 25)
        cast = sum(votes) + invalid
        rows.append([1 + index // 8, 1 + index % 8, cast + rng.randint(50, 700), cast, invalid])
        rows[-1].extend(votes)
    return rows


GEORGIA_TOML = """\
[election]
country = "GE"
date = 2024-10-26
kind = "parliamentary"

[columns]
station_id = ["ოლქი", "უბანი"]
constituency = "ოლქი"
registered = "ამომრჩეველთა რაოდენობა"
ballots_cast = "მონაწილეობა"
invalid = "ბათილი"

[candidates]
from = "4 - კოალიცია ცვლილებისთვის"
to = "41 - ქართული ოცნება"
party_lists = true

[derived]
valid = "sum of the candidates"
"""


def test_georgia_2024_valid_is_the_sum_of_the_party_lists(tmp_path: Path) -> None:
    rows = georgia_rows()
    election = read(tmp_path, rows, GEORGIA_TOML)
    party_totals = {party: column_sum(rows, party) for party in GEORGIA_PARTIES}
    assert election.totals() == party_totals
    assert election.stations["valid"].null_count() == 0
    assert election.stations["valid"].sum() == sum(party_totals.values())
    first = rows[1]
    assert election.stations.row(0, named=True)["valid"] == sum(number(v) for v in first[5:])
    definition = election.meta.definitions["valid"]
    assert definition.startswith("derived by the mapping: valid = the sum of the candidates (")
    assert "'41 - ქართული ოცნება'" in definition and "null where any part is empty" in definition
    report = check_protocols(election)
    assert report.count("valid_plus_invalid_equals_ballots_in_boxes").checked == 40
    assert report.count("valid_plus_invalid_equals_ballots_in_boxes").failed == 0
    assert report.count("derived_matches_source").checked == 0
    # The methods that need valid ballots run now; without [derived] they are skipped.
    methods = (*NEED_VALID, *NEED_VALID_AND_TURNOUT)
    assert ran(election, methods) == set(methods)
    without = read(tmp_path, rows, GEORGIA_TOML.split("[derived]")[0])
    assert without.stations["valid"].null_count() == 40
    assert ran(without, methods) == set()


# --- Venezuela, presidential 28 July 2024 ------------------------------------------------------
# Shape of the actas (tally sheets) collected by the opposition and published by
# resultadosconvzla.com (RESULTADOS_2024_CSV_V1.csv): state, municipality and parish, the voting
# centre code and table (mesa), one column per ballot candidate by initials (NM Nicolás Maduro,
# EG Edmundo González, ...), null votes, and, in the file as published, VOTOS_VALIDOS. An acta
# read from its QR code has no valid total, hence the shape without it first.

VENEZUELA_CANDIDATES = ("NM", "LM", "JABE", "JOBR", "AE", "CF", "DC", "EG", "EM", "BERA")


def venezuela_rows(stations: int = 36, with_valid: bool = False) -> list[list[object]]:
    rng = random.Random(728)
    header: list[object] = ["EDO", "MUN", "PAR", "CENTRO", "MESA"]
    header += ["VOTOS_VALIDOS"] if with_valid else []
    rows: list[list[object]] = [[*header, "VOTOS_NULOS", *VENEZUELA_CANDIDATES]]
    for index in range(stations):
        votes = [rng.randint(150, 400), *(rng.randint(0, 12) for _ in range(6))]
        votes += [rng.randint(200, 500), rng.randint(0, 9), rng.randint(0, 9)]
        row: list[object] = ["EDO. MIRANDA", "MP. SUCRE", "PQ. PETARE", 130101001 + index // 3]
        row += [1 + index % 3, *([sum(votes)] if with_valid else []), rng.randint(0, 10), *votes]
        rows.append(row)
    return rows


VENEZUELA_TOML = """\
[election]
country = "VE"
date = 2024-07-28
kind = "presidential"

[columns]
station_id = ["CENTRO", "MESA"]
region = "EDO"
municipality = "MUN"
invalid = "VOTOS_NULOS"

[candidates]
columns = ["NM", "LM", "JABE", "JOBR", "AE", "CF", "DC", "EG", "EM", "BERA"]
names = { NM = "Nicolás Maduro", EG = "Edmundo González" }

[derived]
# ballots_cast is computed after valid, which it uses
ballots_cast = "valid + invalid"
valid = "sum of candidates"
"""


def test_venezuela_2024_actas_derive_valid_and_ballots_cast(tmp_path: Path) -> None:
    rows = venezuela_rows()
    election = read(tmp_path, rows, VENEZUELA_TOML)
    candidate_votes = sum(column_sum(rows, c) for c in VENEZUELA_CANDIDATES)
    null_votes = column_sum(rows, "VOTOS_NULOS")
    totals = election.totals()
    assert totals["Edmundo González"] == column_sum(rows, "EG")
    assert totals["Nicolás Maduro"] == column_sum(rows, "NM")
    stations = election.stations
    assert stations["valid"].sum() == candidate_votes
    assert stations["invalid"].sum() == null_votes
    assert stations["ballots_cast"].sum() == candidate_votes + null_votes
    assert (stations["ballots_cast"] == stations["valid"] + stations["invalid"]).all()
    definitions = election.meta.definitions
    assert definitions["ballots_cast"] == (
        "derived by the mapping: ballots_cast = valid + invalid; null where any part is empty"
    )
    assert "'Nicolás Maduro' + 'LM'" in definitions["valid"]
    assert definitions["invalid"] == "source column 'VOTOS_NULOS'"
    # No register in the actas: the methods needing only valid run.
    assert ran(election, NEED_VALID) == set(NEED_VALID)


def test_venezuela_valid_from_the_file_is_kept_and_disagreements_are_findings(
    tmp_path: Path,
) -> None:
    rows = venezuela_rows(with_valid=True)
    valid_at = rows[0].index("VOTOS_VALIDOS")
    rows[4][valid_at] = number(rows[4][valid_at]) + 10  # a typo
    rows[9][valid_at] = number(rows[9][valid_at]) - 1
    rows[12][valid_at] = ""  # no valid total: nothing to compare
    rows[15][rows[0].index("EM")] = ""  # a candidate missing: the formula has no value
    mapping = VENEZUELA_TOML.replace(
        'invalid = "VOTOS_NULOS"', 'invalid = "VOTOS_NULOS"\nvalid = "VOTOS_VALIDOS"'
    )
    election = read(tmp_path, rows, mapping)
    stations = election.stations
    ids = stations["station_id"].to_list()
    typo, minus_one = ids[3], ids[8]
    # The source's number is kept, not the formula's.
    assert stations["valid"].to_list()[3] == rows[4][valid_at]
    assert stations["valid"].sum() == sum(
        number(r[valid_at]) for r in rows[1:] if r[valid_at] != ""
    )
    assert stations["valid"].null_count() == 1
    report = check_protocols(election)
    count = report.count("derived_matches_source")
    assert (count.checked, count.failed) == (34, 2)
    table = report.table
    assert table.filter(table["derived_matches_source"])["station_id"].to_list() == [
        typo,
        minus_one,
    ]
    unchecked = table.filter(table["derived_matches_source"].is_null())["station_id"]
    assert unchecked.to_list() == [ids[11], ids[14]]
    # The same stations fail the arithmetic rule: the finding is consistent with it.
    assert report.count("votes_sum_to_valid").failed == 2
    definitions = election.meta.definitions
    assert definitions["valid"].startswith("source column 'VOTOS_VALIDOS'; checked against the ")
    record = definitions[DERIVED_CHECK_PREFIX + "valid"]
    assert "disagrees with it at 2 of 34 stations where both are known" in record
    assert "cannot be computed at 1 stations" in record
    # ballots_cast uses the valid column as read from the file.
    assert stations["ballots_cast"][3] == rows[4][valid_at] + stations["invalid"][3]


# --- Chile, presidential first round 21 November 2021 -----------------------------------------
# Shape of SERVEL's results per mesa (Resultados por mesa, presidential 1st round), spread to
# one column per candidate: region, comuna, electoral circumscription, local, mesa, electors,
# the seven candidates, "VOTOS NULOS" and "VOTOS EN BLANCO"; no valid or total column. Blank
# votes are not valid votes in Chile (votos válidamente emitidos exclude them).

CHILE_CANDIDATES = (
    "GABRIEL BORIC FONT",
    "JOSE ANTONIO KAST RIST",
    "YASNA PROVOSTE CAMPILLAY",
    "SEBASTIAN SICHEL RAMIREZ",
    "EDUARDO ARTES BRICHETTI",
    "MARCO ENRIQUEZ-OMINAMI GUMUCIO",
    "FRANCO PARISI FERNANDEZ",
)


def chile_rows(stations: int = 40) -> list[list[object]]:
    rng = random.Random(2021)
    header: list[object] = ["Región", "Comuna", "Circunscripción Electoral", "Local", "Mesa"]
    rows: list[list[object]] = [
        [*header, "Electores", *CHILE_CANDIDATES, "VOTOS NULOS", "VOTOS EN BLANCO"]
    ]
    for index in range(stations):
        votes = [rng.randint(0, 120) for _ in CHILE_CANDIDATES]
        spoilt = [rng.randint(0, 6), rng.randint(0, 4)]
        electors = sum(votes) + sum(spoilt) + rng.randint(30, 200)
        local = f"LICEO {index // 4}"
        row: list[object] = ["DE VALPARAISO", "VIÑA DEL MAR", "VIÑA DEL MAR", local]
        row += [f"{index % 4 + 1}M", electors, *votes, *spoilt]
        rows.append(row)
    return rows


CHILE_TOML = """\
[election]
country = "CL"
date = 2021-11-21
kind = "presidential"
round = 1

[columns]
station_id = ["Comuna", "Local", "Mesa"]
region = "Región"
municipality = "Comuna"
registered = "Electores"

[candidates]
from = "GABRIEL BORIC FONT"
to = "FRANCO PARISI FERNANDEZ"

[derived]
valid = "sum of the candidates"
invalid = "'VOTOS NULOS' + 'VOTOS EN BLANCO'"
ballots_cast = "valid + invalid"
"""


def test_chile_2021_mesas_derive_valid_invalid_and_ballots_cast(tmp_path: Path) -> None:
    rows = chile_rows()
    election = read(tmp_path, rows, CHILE_TOML)
    valid = sum(column_sum(rows, c) for c in CHILE_CANDIDATES)
    invalid = column_sum(rows, "VOTOS NULOS") + column_sum(rows, "VOTOS EN BLANCO")
    stations = election.stations
    assert election.totals() == {c: column_sum(rows, c) for c in CHILE_CANDIDATES}
    assert (stations["valid"].sum(), stations["invalid"].sum()) == (valid, invalid)
    assert stations["ballots_cast"].sum() == valid + invalid
    assert stations["registered"].sum() == column_sum(rows, "Electores")
    definitions = election.meta.definitions
    assert definitions["invalid"] == (
        "derived by the mapping: invalid = source column 'VOTOS NULOS' + source column "
        "'VOTOS EN BLANCO'; null where any part is empty"
    )
    assert "'MARCO ENRIQUEZ-OMINAMI GUMUCIO'" in definitions["valid"]
    report = check_protocols(election)
    assert report.count("turnout_at_most_100").checked == 40
    assert report.count("turnout_at_most_100").failed == 0
    methods = (*NEED_VALID, *NEED_VALID_AND_TURNOUT)
    assert ran(election, methods) == set(methods)


# --- Albania, parliamentary 23 June 2013 ------------------------------------------------------
# Shape of the KQZ (Komisioni Qendror i Zgjedhjeve) results per voting centre (QV) with the
# result-table fields numbered f_01, f_02, ...: f_01 voters on the voter list and f_03 voters
# added on the day (by court decision), whose sum is the register; f_04 ballots cast, f_05
# invalid, f_06 valid; then one column per party. (The meaning of f_02 is not used here; the
# field numbers follow the form as we know it, not a published codebook.)

ALBANIA_PARTIES = ("PS", "PD", "LSI", "PDIU", "PR", "PSD")


def albania_rows(stations: int = 40) -> list[list[object]]:
    rng = random.Random(2013)
    header: list[object] = ["Qarku", "KZAZ", "QV", "f_01", "f_02", "f_03", "f_04", "f_05", "f_06"]
    rows: list[list[object]] = [[*header, *ALBANIA_PARTIES]]
    for index in range(stations):
        votes = [rng.randint(0, 300) for _ in ALBANIA_PARTIES]
        invalid = rng.randint(0, 15)
        listed, added = sum(votes) + invalid + rng.randint(50, 500), rng.randint(0, 8)
        row: list[object] = ["Tiranë", 30 + index // 10, 3000 + index, listed, listed - 3]
        row += [added, sum(votes) + invalid, invalid, sum(votes), *votes]
        rows.append(row)
    return rows


ALBANIA_TOML = """\
[election]
country = "AL"
date = 2013-06-23
kind = "parliamentary"

[columns]
station_id = "QV"
region = "Qarku"
district = "KZAZ"
ballots_cast = "f_04"
invalid = "f_05"
valid = "f_06"

[candidates]
from = "PS"
to = "PSD"
party_lists = true

[derived]
registered = "f_01 + f_03"
"""


def test_albania_2013_registered_is_the_sum_of_two_list_fields(tmp_path: Path) -> None:
    rows = albania_rows()
    election = read(tmp_path, rows, ALBANIA_TOML)
    stations = election.stations
    assert stations["registered"].sum() == column_sum(rows, "f_01") + column_sum(rows, "f_03")
    assert stations["registered"][0] == number(rows[1][3]) + number(rows[1][5])
    assert election.totals() == {p: column_sum(rows, p) for p in ALBANIA_PARTIES}
    assert election.meta.definitions["registered"] == (
        "derived by the mapping: registered = source column 'f_01' + source column 'f_03'; "
        "null where any part is empty"
    )
    # The turnout methods need registered; the station's turnout is ballots / (f_01 + f_03).
    turnout = election.turnout()
    assert turnout[0] == pytest.approx(
        number(rows[1][6]) / (number(rows[1][3]) + number(rows[1][5]))
    )
    assert ran(election, NEED_VALID_AND_TURNOUT) == set(NEED_VALID_AND_TURNOUT)
    without = read(tmp_path, rows, ALBANIA_TOML.split("[derived]")[0])
    assert without.stations["registered"].null_count() == 40
    assert ran(without, NEED_VALID_AND_TURNOUT) == set()


# --- the grammar and its errors ----------------------------------------------------------------

SMALL_ROWS: list[list[object]] = [
    ["Station", "Voters", "Nulos", "Blank votes", "Reg.-Bezirk", "A", "B"],
    ["1", 100, 3, 2, 7, 60, 35],
    ["2", 80, 0, 1, 4, 50, 29],
]

SMALL_TOML = """\
[election]
country = "XF"

[columns]
station_id = "Station"
ballots_cast = "Voters"

[candidates]
columns = ["A", "B"]

[derived]
"""


def test_differences_quoted_names_and_chains(tmp_path: Path) -> None:
    mapping = SMALL_TOML + (
        "invalid = \"Nulos + 'Blank votes'\"\n"
        'valid = "ballots_cast - invalid"\n'
        "registered = \"Voters + 'Reg.-Bezirk' - Nulos\"\n"
    )
    election = read(tmp_path, SMALL_ROWS, mapping)
    stations = election.stations
    assert stations["invalid"].to_list() == [5, 1]
    assert stations["valid"].to_list() == [95, 79]
    assert stations["registered"].to_list() == [104, 84]
    assert election.meta.definitions["valid"] == (
        "derived by the mapping: valid = ballots_cast - invalid; null where any part is empty"
    )
    assert election.meta.definitions["registered"].startswith(
        "derived by the mapping: registered = source column 'Voters' + source column "
        "'Reg.-Bezirk' - source column 'Nulos'"
    )
    # valid was derived, so the arithmetic rule is checked, and it holds
    assert check_protocols(election).count("votes_sum_to_valid").failed == 0


def test_a_part_missing_makes_the_derived_count_null(tmp_path: Path) -> None:
    rows = [list(r) for r in SMALL_ROWS]
    rows[2][2] = ""
    election = read(tmp_path, rows, SMALL_TOML + "invalid = \"Nulos + 'Blank votes'\"\n")
    assert election.stations["invalid"].to_list() == [5, None]


def test_a_negative_derived_count_names_the_row(tmp_path: Path) -> None:
    mapping = SMALL_TOML + 'valid = "Nulos - Voters"\n'
    with pytest.raises(CountError) as caught:
        read(tmp_path, SMALL_ROWS, mapping)
    message = str(caught.value)
    assert "row 2" in message and "'valid'" in message and "negative count (-97)" in message


def test_a_derivation_naming_a_missing_column_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as caught:
        read(tmp_path, SMALL_ROWS, SMALL_TOML + "invalid = \"Nulo + 'Blank votes'\"\n")
    message = str(caught.value)
    assert "\n" not in message
    assert "mapping.toml:12" in message
    assert "derived.invalid names column 'Nulo'" in message
    assert "close: 'Nulos'" in message
    assert "columns present: 'Station', 'Voters', 'Nulos', 'Blank votes'" in message
    # A model column that is neither read nor derived, and no source column of that name.
    with pytest.raises(MappingError) as caught:
        read(tmp_path, SMALL_ROWS, SMALL_TOML + 'valid = "ballots_cast - invalid"\n')
    message = str(caught.value)
    assert "\n" not in message
    assert "derived.valid = 'ballots_cast - invalid' uses 'invalid'" in message
    assert "neither reads in [columns] nor derives" in message
    assert "columns present: 'Station'" in message


@pytest.mark.parametrize(
    ("derived", "expected"),
    [
        (
            'valid = "ballots_cast - invalid"\ninvalid = "ballots_cast - valid"\n',
            "valid -> invalid -> valid",
        ),
        ('valid = "valid + A"\n', "valid -> valid"),
        (
            'registered = "ballots_cast + invalid"\n'
            'invalid = "valid - A"\n'
            'valid = "registered - B"\n',
            "registered -> invalid -> valid -> registered",
        ),
    ],
)
def test_a_cycle_is_an_error(tmp_path: Path, derived: str, expected: str) -> None:
    path = write(tmp_path, "cycle.toml", SMALL_TOML + derived)
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert f"derived columns refer to each other in a cycle: {expected}" in message
    assert "cycle.toml:12: derived." in message


def test_a_column_read_from_the_source_breaks_the_cycle(tmp_path: Path) -> None:
    rows = [[*SMALL_ROWS[0], "Valid"], [*SMALL_ROWS[1], 95], [*SMALL_ROWS[2], 70]]
    mapping = SMALL_TOML.replace(
        'ballots_cast = "Voters"', 'ballots_cast = "Voters"\nvalid = "Valid"'
    )
    mapping += 'valid = "ballots_cast - invalid"\ninvalid = "ballots_cast - valid"\n'
    election = read(tmp_path, rows, mapping)
    # invalid uses valid as read, so valid's formula gives back the source value and agrees
    assert election.stations["invalid"].to_list() == [5, 10]
    report = check_protocols(election)
    assert report.count("derived_matches_source").checked == 2
    assert report.count("derived_matches_source").failed == 0
    assert report.count("votes_sum_to_valid").failed == 1  # station 2: 50 + 29 != 70


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ('"valid +"', "a column is missing at the end"),
        ('"Blank votes + Nulos"', "expected + or - before 'votes + Nulos'"),
        ('"\'Blank votes + Nulos"', "unclosed quote"),
        ('"Nulos * 2"', "expected + or - before '* 2'"),
        ('"+ Nulos"', "cannot read '+ Nulos'"),
        ("\"'' + Nulos\"", "empty column name"),
        ('""', "must not be empty"),
        ("3", "expected a string, got a number"),
    ],
)
def test_formula_syntax_errors_name_key_and_line(
    tmp_path: Path, formula: str, expected: str
) -> None:
    path = write(tmp_path, "bad.toml", SMALL_TOML + f"invalid = {formula}\n")
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:12: derived.invalid: ")
    assert expected in message


def test_unknown_derived_column_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.toml", SMALL_TOML + 'vaild = "sum of candidates"\n')
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert "derived.vaild: unknown key 'vaild' in [derived]" in str(caught.value)
    assert "did you mean 'valid'?" in str(caught.value)


def test_quoted_model_name_means_the_source_column(tmp_path: Path) -> None:
    rows: list[list[object]] = [["Station", "Voters", "invalid", "A", "B"], ["1", 100, 5, 60, 35]]
    mapping = SMALL_TOML + "valid = \"Voters - 'invalid'\"\n"
    election = read(tmp_path, rows, mapping)
    assert election.stations["valid"].to_list() == [95]
    assert election.stations["invalid"].to_list() == [None]  # not mapped: the model has none


def test_annotated_example_of_the_docs_checks_valid_against_its_formula(tmp_path: Path) -> None:
    data, mapping, mapping_text = docs_example(tmp_path)
    assert 'valid = "sum of the candidates"' in mapping_text.split("\n[derived]")[1]
    election = IMPORTER.read(data, mapping=mapping)
    record = election.meta.definitions[DERIVED_CHECK_PREFIX + "valid"]
    # 5 stations, one without numbers: the 4 others agree with Firefly + Sylvania First
    assert "disagrees with it at 0 of 4 stations where both are known" in record
    assert election.stations["valid"].sum() == 1718
    report = check_protocols(election)
    assert (
        report.count("derived_matches_source").checked,
        report.count("derived_matches_source").failed,
    ) == (4, 0)


# --- a real file: Uganda 2021 (UEDP, IRI), whose V.Votes column the shipped mapping reads ------


@pytest.mark.data
def test_uganda_2021_valid_derived_from_candidates_equals_the_published_column(
    mirror: Path, tmp_path: Path
) -> None:
    path = mirror_file(mirror, "uganda_president_2006_2021_uedp/UEDP_2021_AllStations.csv.gz")
    shipped = (
        resources.files("pollwatch.results.importers")
        .joinpath("mappings/uganda-2021.toml")
        .read_text(encoding="utf-8")
    )
    assert 'valid = "V.Votes"\n' in shipped
    published = import_file(path, mapping=Path("uganda-2021"))
    # Without the V.Votes column: derived from the candidates, and so is T.Votes' equivalent.
    derived_text = shipped.replace('valid = "V.Votes"\n', "").replace(
        'ballots_cast = "T.Votes"\n', ""
    )
    derived_text += (
        '\n[derived]\nvalid = "sum of the candidates"\nballots_cast = "valid + invalid"\n'
    )
    derived = import_file(path, mapping=write(tmp_path, "derived.toml", derived_text))
    for column in ("valid", "ballots_cast"):
        assert derived.stations[column].to_list() == published.stations[column].to_list(), column
    assert derived.stations["valid"].null_count() == 184  # the NON_REP (no_results) stations
    # With the column read as well, the formula is a check: it agrees at every station.
    checked = import_file(
        path,
        mapping=write(
            tmp_path, "checked.toml", shipped + '\n[derived]\nvalid = "sum of candidates"\n'
        ),
    )
    report = check_protocols(checked)
    count = report.count("derived_matches_source")
    assert (count.checked, count.failed) == (34_767 - 184, 0)
    assert report.count("votes_sum_to_valid").checked == count.checked
