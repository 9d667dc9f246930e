"""Tests of the russia-cec importer: the real Kobak/Shpilkin tables and synthetic later-year files.

The files of 2020, 2021 and 2024 are not in the data mirror; their quirks (text station ids,
e-voting pseudo-stations, unpublished regions, float counts, the 2020 protocol) are tested on
small synthetic CSVs written here, shaped as the source README describes them.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import random
import zipfile
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest

from pollwatch.errors import ColumnError, CountError, FormatError, PollwatchError
from pollwatch.results.checks import check_protocols
from pollwatch.results.importers import get_importer, import_file
from pollwatch.results.importers.russia_cec import (
    CANCELLED_STATIONS,
    HEADER_RULES,
    classify_headers,
    normalise_header,
)
from pollwatch.results.model import Election
from tests.conftest import mirror_file

IMPORTER = get_importer("russia-cec")

# --- synthetic files ------------------------------------------------------------------------

REGISTERED = "Число избирателей, включенных в список избирателей"
RECEIVED = "Число избирательных бюллетеней, полученных участковой избирательной комиссией"
EARLY = "Число избирательных бюллетеней, выданных избирателям, проголосовавшим досрочно"
ON_DAY = "Число избирательных бюллетеней, выданных в помещении для голосования в день голосования"
OUTSIDE = (
    "Число избирательных бюллетеней, выданных вне помещения для голосования в день голосования"
)
CANCELLED = "Число погашенных избирательных бюллетеней"
MOBILE = "Число избирательных бюллетеней в переносных ящиках для голосования"
STATIONARY = "Число бюллетеней в стационарных ящиках для голосования"
INVALID = "Число недействительных избирательных бюллетеней"
VALID = "Число действительных избирательных бюллетеней"
LOST = "Число утраченных избирательных бюллетеней"
NOT_ACCOUNTED = "Число избирательных бюллетеней, не учтенных при получении"
PROTOCOL = [
    REGISTERED,
    RECEIVED,
    EARLY,
    ON_DAY,
    OUTSIDE,
    CANCELLED,
    MOBILE,
    STATIONARY,
    INVALID,
    VALID,
    LOST,
    NOT_ACCOUNTED,
]


def _protocol(registered: int, on_day: int, outside: int, invalid: int) -> list[object]:
    """Consistent protocol numbers: boxes = issued, valid = boxes - invalid."""
    received = registered
    return [
        registered,
        received,
        0,
        on_day,
        outside,
        received - on_day - outside,
        outside,
        on_day,
        invalid,
        on_day + outside - invalid,
        0,
        0,
    ]


def _csv(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode(encoding)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(path.name.removesuffix(".zip"), data)
    elif path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def _file_2018(folder: Path, name: str = "2018.csv", *, shuffle: bool = False) -> Path:
    """A 2018-layout table with one station of the cancellation table among others."""
    header = ["region", "tik", "uik", *PROTOCOL, "Иванов И.И.", "Петров П.П.", "url"]
    rows: list[list[object]] = []
    for uik in (570, 571, 572, 573):
        numbers = _protocol(1000 + uik, 600, 20, 10)
        valid = int(str(numbers[9]))
        rows.append(
            ["Калининградская область", "22 Советская", uik, *numbers, valid - 100, 100, "u"]
        )
    if shuffle:
        random.Random(4).shuffle(rows)
    return _write(folder / name, _csv(header, rows))


# --- header rules ---------------------------------------------------------------------------


def test_normalise_header() -> None:
    assert normalise_header("  Число  Учтённых\u00a0бюллетеней ") == "число учтенных бюллетеней"


@pytest.mark.parametrize(
    ("header", "meaning"),
    [
        ("Число избирателей, внесенных в список", "registered"),
        ("Число избирателей, внесенных в списки избирателей", "registered"),
        ("Число избирателей, включенных в список избирателей", "registered"),
        (
            "Число избирателей, внесенных в список избирателей на момент окончания голосования",
            "registered",
        ),
        (
            "Число участников голосования, включенных в список участников голосования на "
            "момент окончания голосования",
            "registered",
        ),
        ("Число полученных избирательных бюллетеней", "ballots_received"),
        (RECEIVED, "ballots_received"),
        ("Число избирательных бюллетеней, выданных  досрочно", "ballots_issued_early"),
        (EARLY, "ballots_issued_early"),
        ("Число избирательных бюллетеней, выданных в день голосования", "ballots_issued_on_day"),
        (
            "Число избирательных бюллетеней, выданных избирателям в помещениях для голосования",
            "ballots_issued_on_day",
        ),
        (ON_DAY, "ballots_issued_on_day"),
        ("Число избирательных бюллетеней, выданных вне помещения", "ballots_issued_outside"),
        (OUTSIDE, "ballots_issued_outside"),
        (CANCELLED, "ballots_cancelled"),
        ("Число погашенных неиспользованных открепительных удостоверений", "absentee_certificates"),
        ("Число избирательных бюллетеней в переносных ящиках", "ballots_in_mobile_boxes"),
        (
            "Число избирательных бюллетеней, содержащихся в переносных ящиках для голосования",
            "ballots_in_mobile_boxes",
        ),
        (STATIONARY, "ballots_in_stationary_boxes"),
        (
            "Число избирательных бюллетеней, содержащихся в стационарных ящиках для голосования",
            "ballots_in_stationary_boxes",
        ),
        ("Число бюллетеней, содержащихся в ящиках для голосования", "ballots_in_boxes"),
        (INVALID, "invalid"),
        (VALID, "valid"),
        ("Число недействительных бюллетеней", "invalid"),
        ("Число выданных открепительных удостоверений", "absentee_certificates"),
        (
            "Число избирателей, проголосовавших по открепительным удостоверениям",
            "absentee_certificates",
        ),
        (LOST, "ballots_lost"),
        ("Число утраченных открепительных удостоверений", "absentee_certificates"),
        (NOT_ACCOUNTED, "ballots_not_accounted"),
        ("Число не учтенных при получении избирательных бюллетеней", "ballots_not_accounted"),
        ("Число бюллетеней, выданных участникам голосования", "ballots_issued_total"),
        ("Число электронных бюллетеней, что-то новое", "other_protocol_line"),
    ],
)
def test_header_rules_match_by_meaning(header: str, meaning: str) -> None:
    normalised = normalise_header(header)
    rule = next(r for r in HEADER_RULES if r.matches(normalised))
    assert rule.meaning == meaning


def test_classify_headers_separates_candidates() -> None:
    headers = ["region", "tik", "uik", "okrug", *PROTOCOL, "Число чего-то нового", "А", "Б", "url"]
    plan = classify_headers(headers, "x.csv")
    assert plan.candidates == ("А", "Б")
    assert plan.extra_ids == ("okrug",)
    assert plan.model["registered"] == REGISTERED
    assert ("other_protocol_line", "Число чего-то нового") in plan.unmodelled
    assert ("ballots_lost", LOST) in plan.unmodelled


def test_two_headers_for_one_line_is_an_error() -> None:
    headers = ["region", "tik", "uik", *PROTOCOL, "Число избирателей, внесенных в список", "А"]
    with pytest.raises(ColumnError, match="registered"):
        classify_headers(headers, "x.csv")


# --- reading synthetic files ----------------------------------------------------------------


def test_example_and_metadata(tmp_path: Path) -> None:
    example = IMPORTER.example(tmp_path)
    election = IMPORTER.read(example.path)
    meta = election.meta
    assert meta.id == "russia-2018"
    assert (meta.country, meta.kind, meta.date) == ("RU", "presidential", "2018-03-18")
    assert meta.source_files == ("example-2018.csv.zip",)
    assert len(meta.source_sha256) == 64
    assert (
        "ballots_in_stationary_boxes + ballots_in_mobile_boxes" in meta.definitions["ballots_cast"]
    )
    assert meta.license == "public CEC protocol data; redistribution terms not stated"
    assert "dkobak/elections" in meta.source
    stations = election.stations
    kinds = dict(zip(stations["station_name"], stations["station_kind"], strict=True))
    assert kinds == {"1": "ordinary", "2": "ordinary", "8001": "ordinary", "8100": "abroad"}
    assert stations["is_abroad"].sum() == 1  # Baikonur is not abroad
    assert stations["ballots_cast"].to_list() == [600, 400, 900, 200]
    assert stations["station_id"][0] == "Республика Адыгея (Адыгея)|1 Адыгейская|1"


def test_cancelled_stations_found_by_identity_not_row(tmp_path: Path) -> None:
    key = "Калининградская область|22 Советская|572"
    assert key in CANCELLED_STATIONS[2018]
    for shuffle in (False, True):
        election = IMPORTER.read(_file_2018(tmp_path / str(shuffle), shuffle=shuffle))
        flagged = election.stations.filter(pl.col("is_cancelled"))["station_id"].to_list()
        assert flagged == [key]
    # The same station in another election is not cancelled.
    other = IMPORTER.read(_file_2018(tmp_path, "2012.csv"))
    assert other.stations["is_cancelled"].sum() == 0
    assert other.meta.id == "russia-2012"


def test_2021_text_ids_and_evoting(tmp_path: Path) -> None:
    header = [
        "region",
        "oik",
        "tik",
        "uik",
        "level",
        *PROTOCOL,
        "1. Партия А",
        "2. Партия Б",
        "url",
    ]
    rows: list[list[object]] = [
        [
            "Город Москва",
            "ОИК №196",
            "ТИК Басманного района",
            "УИК №12",
            "ЦИК России",
            *_protocol(1500, 700, 30, 5),
            500,
            225,
            "u",
        ],
        [
            "Город Москва",
            "ОИК №196",
            "ТИК Басманного района",
            "УИК №13",
            "ЦИК России",
            *_protocol(1200, 500, 10, 10),
            300,
            200,
            "u",
        ],
        [
            "Город Москва",
            "ОИК №196",
            "Территориальная избирательная комиссия ДЭГ",
            "УИК №5001",
            "ЦИК России",
            *_protocol(90000, 60000, 0, 0),
            40000,
            20000,
            "u",
        ],
        [
            "Курская область",
            "ОИК №109",
            "ТИК дистанционного электронного голосования",
            "УИК №5002",
            "ЦИК России",
            *_protocol(9000, 6000, 0, 0),
            4000,
            2000,
            "u",
        ],
    ]
    election = IMPORTER.read(_write(tmp_path / "2021.csv.zip", _csv(header, rows)))
    s = election.stations
    assert election.meta.kind == "parliamentary"
    assert election.meta.date == "2021-09-19"
    assert s["station_name"].to_list() == ["УИК №12", "УИК №13", "УИК №5001", "УИК №5002"]
    assert s["station_id"][0] == "Город Москва|ТИК Басманного района|12"
    assert s["constituency"][0] == "ОИК №196"
    assert s["is_evoting"].to_list() == [False, False, True, True]
    assert s["is_pseudo_station"].to_list() == [False, False, True, True]
    assert s["station_kind"].to_list() == ["ordinary", "ordinary", "evoting", "evoting"]
    assert [c.party for c in election.meta.candidates] == ["Партия А", "Партия Б"]
    assert election.meta.hierarchy_labels["constituency"].startswith("oik")
    report = check_protocols(election)
    assert all(c.failed == 0 for c in report.counts)


def test_2020_referendum_layout(tmp_path: Path) -> None:
    header = [
        "region",
        "tik",
        "uik",
        "name",
        "Число участников голосования, включенных в список участников голосования на момент "
        "окончания голосования",
        "Число бюллетеней, выданных участникам голосования",
        "Число бюллетеней, содержащихся в ящиках для голосования",
        "Число недействительных бюллетеней",
        "ДА",
        "НЕТ",
        "url",
    ]
    rows: list[list[object]] = [
        [
            "Республика Адыгея (Адыгея)",
            "Адыгейская",
            "УИК №1",
            "УИК №1",
            1000,
            700,
            700,
            10,
            500,
            190,
            "u",
        ],
        [
            "Республика Адыгея (Адыгея)",
            "Адыгейская",
            "УИК №2",
            "УИК №2",
            900,
            600,
            598,
            8,
            400,
            190,
            "u",
        ],
    ]
    election = IMPORTER.read(_write(tmp_path / "2020.csv", _csv(header, rows)))
    assert election.meta.kind == "referendum"
    assert election.meta.date == "2020-07-01"
    assert election.totals() == {"ДА": 900, "НЕТ": 380}
    s = election.stations
    assert s["ballots_cast"].to_list() == [700, 598]
    assert s["valid"].to_list() == [690, 590]
    assert "valid" in election.meta.definitions
    assert "ballots_issued_total" in election.meta.definitions["protocol_lines_not_in_model"]
    assert check_protocols(election).count("votes_sum_to_valid").failed == 0


def test_2024_floats_unpublished_and_abroad(tmp_path: Path) -> None:
    header = ["region", "tik", "uik", *PROTOCOL, "Даванков В.А.", "Путин В.В."]

    def floats(values: list[object]) -> list[object]:
        return [f"{v}.0" for v in values]

    rows: list[list[object]] = [
        [
            "Республика Адыгея (Адыгея)",
            "Адыгейская",
            "УИК №1",
            *floats([*_protocol(1000, 700, 20, 20), 100, 600]),
        ],
        ["Херсонская область", "Каховская", "УИК №1101", *([None] * 14)],
        [
            "Территория за пределами Российской Федерации",
            "Германия",
            "УИК №8001",
            *floats([*_protocol(500, 300, 0, 0), 50, 250]),
        ],
        [
            "Город Байконур",
            "Байконурская",
            "УИК №9001",
            *floats([*_protocol(500, 300, 0, 0), 50, 250]),
        ],
    ]
    election = IMPORTER.read(_write(tmp_path / "2024.csv.zip", _csv(header, rows)))
    s = election.stations
    assert len(election) == 4  # nothing dropped
    assert s["is_unpublished"].to_list() == [False, True, False, False]
    assert s["registered"].to_list() == [1000, None, 500, 500]
    assert s["ballots_cast"][1] is None
    assert s["is_pseudo_station"].sum() == 0
    assert s["is_abroad"].to_list() == [False, False, True, False]
    assert s["station_kind"].to_list() == ["ordinary", "ordinary", "abroad", "ordinary"]
    assert election.totals() == {"Даванков В.А.": 200, "Путин В.В.": 1100}
    assert election.meta.kind == "presidential"


def test_repeated_ids_get_oik_then_a_suffix(tmp_path: Path) -> None:
    header = ["region", "oik", "tik", "uik", *PROTOCOL, "А", "url"]
    numbers = _protocol(100, 50, 0, 0)
    rows: list[list[object]] = [
        ["Р", "ОИК №1", "Т", 1, *numbers, 50, "u"],
        ["Р", "ОИК №2", "Т", 1, *numbers, 50, "u"],
        ["Р", "ОИК №2", "Т", 1, *numbers, 50, "u"],
        ["Р", "ОИК №2", "Т", 2, *numbers, 50, "u"],
    ]
    election = IMPORTER.read(_write(tmp_path / "2016.csv", _csv(header, rows)))
    assert election.stations["station_id"].to_list() == [
        "Р|ОИК №1|Т|1",
        "Р|ОИК №2|Т|1",
        "Р|ОИК №2|Т|1#2",
        "Р|Т|2",
    ]


def test_year_option_and_names_without_year(tmp_path: Path) -> None:
    path = _file_2018(tmp_path, "duma.csv")
    plain = IMPORTER.read(path)
    assert (plain.meta.id, plain.meta.date) == ("duma", "")
    assert plain.meta.kind == "presidential"  # guessed: the candidates are not parties
    assert plain.stations["is_cancelled"].sum() == 0
    dated = IMPORTER.read(path, options={"year": "2018"})
    assert (dated.meta.id, dated.meta.date) == ("russia-2018", "2018-03-18")
    assert dated.stations["is_cancelled"].sum() == 1
    with pytest.raises(PollwatchError, match="year"):
        IMPORTER.read(path, options={"year": "18"})
    with pytest.raises(PollwatchError, match="no option"):
        IMPORTER.read(path, options={"colour": "red"})


def test_detect(tmp_path: Path) -> None:
    plain = _file_2018(tmp_path, "a.csv")
    text = plain.read_text(encoding="utf-8")
    zipped = _write(tmp_path / "b.csv.zip", text)
    gzipped = _write(tmp_path / "c.csv.gz", text)
    for path in (plain, zipped, gzipped):
        assert IMPORTER.detect(path) >= 0.9
    assert IMPORTER.detect(_write(tmp_path / "d.csv", "a,b\n1,2\n")) == 0.0
    assert IMPORTER.detect(tmp_path / "absent.csv") == 0.0
    assert IMPORTER.detect(tmp_path) == 0.0


def test_detect_reads_only_the_head(tmp_path: Path) -> None:
    # A huge body after a valid header: detect must answer from the first bytes.
    header = _csv(["region", "tik", "uik", REGISTERED, "А"], [])
    path = tmp_path / "big.csv.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.csv", header + "р,т,1,5,5\n" * 2_000_000)
    assert IMPORTER.detect(path) >= 0.9


def test_import_file_detects_the_format(tmp_path: Path) -> None:
    election = import_file(_file_2018(tmp_path, "2018.csv"))
    assert election.meta.importer == "russia-cec"


# --- bad input ------------------------------------------------------------------------------


def test_missing_registered_line(tmp_path: Path) -> None:
    header = ["region", "tik", "uik", *[h for h in PROTOCOL if h != REGISTERED], "А", "url"]
    rows: list[list[object]] = [["Р", "Т", 1, *_protocol(100, 50, 0, 0)[1:], 50, "u"]]
    path = _write(tmp_path / "2018.csv", _csv(header, rows))
    with pytest.raises(ColumnError, match="registered") as info:
        IMPORTER.read(path)
    assert "2018.csv" in str(info.value)
    assert "headers seen" in str(info.value)


def test_missing_box_lines(tmp_path: Path) -> None:
    header = ["region", "tik", "uik", *[h for h in PROTOCOL if h not in (MOBILE, STATIONARY)], "А"]
    rows: list[list[object]] = [["Р", "Т", 1, *([1] * (len(header) - 3))]]
    path = _write(tmp_path / "x.csv", _csv(header, rows))
    with pytest.raises(ColumnError, match="ballots_in_mobile_boxes, ballots_in_stationary_boxes"):
        IMPORTER.read(path)


def test_missing_id_column(tmp_path: Path) -> None:
    header = ["region", "uik", *PROTOCOL, "А"]
    rows: list[list[object]] = [["Р", 1, *_protocol(100, 50, 0, 0), 50]]
    with pytest.raises(ColumnError, match="tik"):
        IMPORTER.read(_write(tmp_path / "x.csv", _csv(header, rows)))


def _with_cell(tmp_path: Path, value: str) -> Path:
    path = _file_2018(tmp_path, "2018.csv")
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[3].split(",")
    cells[3 + PROTOCOL.index(INVALID)] = value
    lines[3] = ",".join(cells)
    return _write(tmp_path / "bad.csv", "\n".join(lines) + "\n")


def test_non_numeric_count(tmp_path: Path) -> None:
    with pytest.raises(CountError) as info:
        IMPORTER.read(_with_cell(tmp_path, "abc"))
    assert info.value.row == 4
    assert info.value.column == INVALID
    assert "abc" in str(info.value)


def test_negative_count(tmp_path: Path) -> None:
    with pytest.raises(CountError) as info:
        IMPORTER.read(_with_cell(tmp_path, "-3"))
    assert (info.value.row, info.value.column) == (4, INVALID)


def test_zip_with_a_picture(tmp_path: Path) -> None:
    path = tmp_path / "2018.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cover.png", b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(FormatError):
        IMPORTER.read(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "2018.csv"
    path.write_bytes(b"")
    with pytest.raises(FormatError, match="empty"):
        IMPORTER.read(path)


def test_repeated_header(tmp_path: Path) -> None:
    header = ["region", "tik", "uik", *PROTOCOL, "А", "А"]
    rows: list[list[object]] = [["Р", "Т", 1, *_protocol(100, 50, 0, 0), 25, 25]]
    with pytest.raises(ColumnError, match="twice"):
        IMPORTER.read(_write(tmp_path / "x.csv", _csv(header, rows)))


def test_cp1251_is_refused_with_advice_and_read_with_the_option(tmp_path: Path) -> None:
    text = _file_2018(tmp_path, "2018.csv").read_text(encoding="utf-8")
    path = _write(tmp_path / "win" / "2018.csv", text, encoding="cp1251")
    with pytest.raises(FormatError, match="cp1251") as info:
        IMPORTER.read(path)
    assert "encoding=cp1251" in (info.value.hint or "")
    election = IMPORTER.read(path, options={"encoding": "cp1251"})
    assert len(election) == 4
    assert election.stations["region"][0] == "Калининградская область"
    with pytest.raises(FormatError, match="encoding"):
        IMPORTER.read(path, options={"encoding": "no-such-codec"})


# --- e-voting (2021 rows, Moscow's numbered stations, the 2024 regional table) ---------------

DUMA_2021 = ["region", "oik", "tik", "uik", "level", *PROTOCOL, "1. Партия А", "2. Партия Б", "url"]
DEG = "Дистанционное электронное голосование"


def _duma_2021_rows() -> list[list[object]]:
    """A 2021-layout table: ordinary stations, Moscow's e-voting UIKs, ДЭГ rows without uik."""

    def row(
        region: str, oik: str, tik: str, uik: str, numbers: list[object], a: int, b: int
    ) -> list[object]:
        return [region, oik, tik, uik, "ЦИК России", *numbers, a, b, "u"]

    moscow, kursk = "город Москва", "Курская область"
    return [
        row(
            moscow,
            "ОИК №196",
            "ТИК Басманного района",
            "УИК №12",
            _protocol(1500, 700, 30, 5),
            500,
            225,
        ),
        row(
            moscow,
            "ОИК №196",
            "ТИК Басманного района",
            "УИК №5016",
            _protocol(2000, 1000, 0, 0),
            600,
            400,
        ),
        # Moscow's e-voting stations: district names, nothing says e-voting but number and size.
        row(
            moscow,
            "ОИК №196",
            "Басманный",
            "УИК №5001",
            _protocol(150000, 100000, 0, 0),
            60000,
            40000,
        ),
        row(
            moscow,
            "ОИК №208",
            "Тверской",
            "УИК №5015",
            _protocol(120000, 90000, 0, 0),
            50000,
            40000,
        ),
        # In the range but the size of a physical station: ordinary.
        row(
            moscow,
            "ОИК №208",
            "ТИК Тверского района",
            "УИК №5002",
            _protocol(800, 400, 0, 0),
            200,
            200,
        ),
        # ДЭГ pseudo-stations without uik, two in one district.
        row(kursk, "ОИК №109", DEG, "", _protocol(20000, 15000, 0, 100), 10000, 4900),
        row(kursk, "ОИК №110", DEG, "", _protocol(18000, 12000, 0, 0), 7000, 5000),
        row(kursk, "ОИК №110", DEG, "", _protocol(1000, 500, 0, 0), 300, 200),
        row(kursk, "ОИК №109", "ТИК Курская", "УИК №1", _protocol(1000, 600, 20, 10), 400, 210),
    ]


def _duma_2021(
    folder: Path, name: str = "2021.csv.zip", extra: Sequence[list[object]] = ()
) -> Path:
    return _write(folder / name, _csv(DUMA_2021, [*_duma_2021_rows(), *extra]))


def test_2021_evoting_rows_without_uik_and_moscow_numbered_stations(tmp_path: Path) -> None:
    election = IMPORTER.read(_duma_2021(tmp_path))
    s = election.stations
    assert len(election) == 9  # nothing dropped
    evoting = s.filter(pl.col("is_evoting"))
    assert evoting["station_name"].to_list() == ["УИК №5001", "УИК №5015", "ДЭГ", "ДЭГ", "ДЭГ"]
    assert evoting["station_id"].to_list() == [
        "город Москва|Басманный|5001",
        "город Москва|Тверской|5015",
        f"Курская область|ОИК №109|{DEG}|ДЭГ",
        f"Курская область|ОИК №110|{DEG}|ДЭГ",
        f"Курская область|ОИК №110|{DEG}|ДЭГ#2",
    ]
    assert evoting["is_pseudo_station"].all()
    assert set(evoting["station_kind"]) == {"evoting"}
    assert s["station_id"].is_unique().all()
    ordinary = s.filter(~pl.col("is_evoting"))
    assert ordinary["station_name"].to_list() == ["УИК №12", "УИК №5016", "УИК №5002", "УИК №1"]
    assert not ordinary["is_pseudo_station"].any()
    # National totals per column and per candidate (sums of the rows written above).
    assert s["registered"].sum() == 314_300
    assert s["ballots_cast"].sum() == 220_250
    assert s["valid"].sum() == 220_135
    assert s["invalid"].sum() == 115
    assert election.totals() == {"1. Партия А": 129_000, "2. Партия Б": 91_135}
    assert evoting["registered"].sum() == 309_000
    assert evoting["ballots_cast"].sum() == 217_500
    assert "Moscow station numbered 5001-5015" in election.meta.definitions["is_evoting"]
    assert "ДЭГ" in election.meta.definitions["station_id"]
    report = check_protocols(election)
    assert report.count("votes_sum_to_valid").failed == 0


def test_evoting_is_reported_apart_and_left_out_of_the_methods(tmp_path: Path) -> None:
    from rich.console import Console

    from pollwatch.cli.render import summary_renderable
    from pollwatch.forensics.base import eligible_stations

    election = IMPORTER.read(_duma_2021(tmp_path))
    summary = election.summary()
    assert (summary.stations, summary.registered, summary.ballots_cast) == (9, 314_300, 220_250)
    assert summary.evoting_stations == 5
    assert (summary.evoting_registered, summary.evoting_ballots_cast) == (309_000, 217_500)
    assert summary.registered_without_evoting == 5_300
    assert summary.ballots_cast_without_evoting == 2_750
    data = summary.to_dict()
    assert (data["evoting_stations"], data["registered_without_evoting"]) == (5, 5_300)
    console = Console(width=80, record=True, color_system=None)
    console.print(summary_renderable(election, summary))
    text = console.export_text()
    assert "5 pseudo-stations, 309,000 registered, 217,500 ballots" in text
    assert "5,300 registered, 2,750 ballots" in text
    selection = eligible_stations(election)
    assert selection.removed["pseudo-stations"] == 5
    assert not selection.stations["is_evoting"].any()
    # An election without e-voting says nothing of it.
    plain = IMPORTER.read(_file_2018(tmp_path))
    assert plain.summary().evoting_stations == 0
    assert plain.summary().evoting_registered == 0
    console = Console(width=80, record=True, color_system=None)
    console.print(summary_renderable(plain, plain.summary()))
    assert "e-voting" not in console.export_text()


def test_moscow_numbering_applies_in_2021_and_unknown_years_only(tmp_path: Path) -> None:
    numbered = IMPORTER.read(_duma_2021(tmp_path, "duma.csv"))  # no year: the rule applies
    assert numbered.stations["is_evoting"].sum() == 5
    assert "unknown year" in numbered.meta.definitions["is_evoting"]
    other = IMPORTER.read(_duma_2021(tmp_path, "duma.csv"), options={"year": "2016"})
    # 2016: no numbering rule; the ДЭГ rows are still e-voting by their tik.
    assert other.stations["is_evoting"].sum() == 3
    assert other.stations.filter(pl.col("station_name") == "УИК №5001")["station_kind"][0] == (
        "ordinary"
    )
    assert "Moscow" not in other.meta.definitions["is_evoting"]


def test_an_empty_identifier_that_is_not_evoting_is_set_aside(tmp_path: Path) -> None:
    from pollwatch.errors import InputError
    from pollwatch.results.quarantine import EMPTY_IDENTIFIER

    bad = [
        "Курская область",
        "ОИК №109",
        "ТИК Курская",
        "",
        "ЦИК России",
        *_protocol(900, 500, 0, 0),
        300,
        200,
        "u",
    ]
    path = _duma_2021(tmp_path, extra=[bad])
    with pytest.raises(InputError, match="empty station identifier") as refused:
        IMPORTER.read(path)  # no quarantine open: today's error
    assert (refused.value.row, refused.value.column) == (11, "uik")
    with pytest.raises(InputError) as strict:
        import_file(path, strict=True)
    assert strict.value.row == 11
    election = import_file(path)
    assert len(election) == 9
    assert [(r.line, r.column, r.reason) for r in election.quarantine] == [
        (11, "uik", EMPTY_IDENTIFIER)
    ]
    assert election.stations["registered"].sum() == 314_300  # the good rows, all of them
    # A row without region is bad even when it is e-voting.
    no_region = ["", "ОИК №1", DEG, "", "ЦИК России", *_protocol(900, 500, 0, 0), 300, 200, "u"]
    election = import_file(_duma_2021(tmp_path / "r", extra=[no_region]))
    assert [(r.line, r.column) for r in election.quarantine] == [(11, "region")]


def test_integer_cells_and_float_cells_read_the_same(tmp_path: Path) -> None:
    """The reader parses plain integers in one pass; "12.0" cells take the text path."""
    rows = _duma_2021_rows()
    floats = [[*r[:5], *(f"{v}.0" for v in r[5:-1]), r[-1]] for r in rows]
    as_int = IMPORTER.read(_write(tmp_path / "a" / "2021.csv", _csv(DUMA_2021, rows)))
    as_float = IMPORTER.read(_write(tmp_path / "b" / "2021.csv", _csv(DUMA_2021, floats)))
    assert as_int.content_digest() == as_float.content_digest()
    assert as_int.stations.equals(as_float.stations)


EVOTING = get_importer("russia-cec-evoting")
EVOTING_HEADER = [
    "region",
    "Число избирателей, включенных в список избирателей",
    "Число избирательных бюллетеней в переносных ящиках для голосования",
    "Число бюллетеней в стационарных ящиках для голосования",
    "Число недействительных избирательных бюллетеней",
    "Число действительных избирательных бюллетеней",
    "Даванков Владислав Андреевич",
    "Путин Владимир Владимирович",
    "Слуцкий Леонид Эдуардович",
    "Харитонов Николай Михайлович",
]


def _evoting_2024(folder: Path) -> Path:
    rows: list[list[object]] = [
        [
            "город Москва",
            5_000_000,
            0,
            4_000_000,
            0,
            4_000_000,
            200_000,
            3_500_000,
            150_000,
            150_000,
        ],
        ["Курская область", 300_000, 0, 250_000, 1_000, 249_000, 10_000, 230_000, 5_000, 4_000],
        ["Нижегородская область", 400_000, 0, 300_000, 0, 300_000, 20_000, 260_000, 10_000, 10_000],
        ["Херсонская область", *([None] * 9)],
    ]
    floats = [[r[0], *(None if v is None else f"{v}.0" for v in r[1:])] for r in rows]
    return _write(folder / "2024-electronic-voting.csv", _csv(EVOTING_HEADER, floats))


def test_2024_regional_evoting_table(tmp_path: Path) -> None:
    path = _evoting_2024(tmp_path)
    assert EVOTING.detect(path) >= 0.9
    assert IMPORTER.detect(path) < 0.5
    election = import_file(path)  # detected
    assert election.meta.importer == "russia-cec-evoting"
    assert election.meta.id == "russia-2024-evoting"
    assert (election.meta.kind, election.meta.date) == ("presidential", "2024-03-17")
    s = election.stations
    assert len(election) == 4  # one e-voting pseudo-station per region
    assert s["is_evoting"].all() and s["is_pseudo_station"].all()
    assert set(s["station_kind"]) == {"evoting"}
    assert s["station_id"][0] == f"город Москва|{DEG}|ДЭГ"
    assert s["is_unpublished"].to_list() == [False, False, False, True]
    assert s["registered"].sum() == 5_700_000
    assert s["ballots_cast"].sum() == 4_550_000
    assert s["valid"].sum() == 4_549_000
    assert s["invalid"].sum() == 1_000
    assert election.totals() == {
        "Даванков Владислав Андреевич": 230_000,
        "Путин Владимир Владимирович": 3_990_000,
        "Слуцкий Леонид Эдуардович": 165_000,
        "Харитонов Николай Михайлович": 164_000,
    }
    summary = election.summary()
    assert (summary.evoting_stations, summary.evoting_registered) == (4, 5_700_000)
    assert summary.registered_without_evoting == 0
    assert check_protocols(election).count("votes_sum_to_valid").failed == 0
    # The polling-station table of the same year is not taken for the regional one.
    assert EVOTING.detect(_duma_2021(tmp_path)) == 0.0


def test_regional_evoting_table_refuses_a_station_table(tmp_path: Path) -> None:
    with pytest.raises(ColumnError, match="not a regional e-voting table"):
        EVOTING.read(_duma_2021(tmp_path))
    no_region = _write(
        tmp_path / "x-2024.csv", _csv(EVOTING_HEADER[1:], [[1, 0, 1, 0, 1, 1, 0, 0, 0]])
    )
    with pytest.raises(ColumnError, match="region"):
        EVOTING.read(no_region)


# --- real data (the mirror) -----------------------------------------------------------------

REAL = {
    # year: (stations, registered voters, candidate columns)
    2004: (95_779, 108_064_342, 7),
    2007: (96_193, 109_148_196, 11),
    2008: (96_612, 107_222_016, 4),
    2011: (95_225, 109_229_337, 7),
    2012: (95_415, 109_860_331, 5),
    2016: (96_871, 110_061_200, 14),
    2018: (97_699, 109_008_428, 8),
}
KINDS = {2004: "presidential", 2007: "parliamentary", 2011: "parliamentary", 2018: "presidential"}


@pytest.fixture(scope="module")
def real_elections() -> dict[int, Election]:
    """Elections read once per test module, by year."""
    return {}


def _real(mirror: Path, year: int, cache: dict[int, Election]) -> Election:
    if year not in cache:
        cache[year] = IMPORTER.read(mirror_file(mirror, f"russia_cec/{year}.csv.zip"))
    return cache[year]


@pytest.mark.data
@pytest.mark.parametrize("year", sorted(REAL))
def test_real_files(mirror: Path, real_elections: dict[int, Election], year: int) -> None:
    path = mirror_file(mirror, f"russia_cec/{year}.csv.zip")
    assert IMPORTER.detect(path) >= 0.9
    election = _real(mirror, year, real_elections)
    stations, registered, candidates = REAL[year]
    assert len(election) == stations
    assert election.stations["registered"].sum() == registered
    assert election.stations["station_id"].is_unique().all()
    assert election.stations["station_id"].null_count() == 0
    names = [c.name for c in election.meta.candidates]
    assert len(names) == candidates
    assert not any(normalise_header(n).startswith("число") for n in names)
    assert not {"url", "region", "tik", "uik", "oik"} & set(names)
    assert election.meta.id == f"russia-{year}"
    if year in KINDS:
        assert election.meta.kind == KINDS[year]
    assert election.stations["is_unpublished"].sum() == 0
    assert election.stations["is_evoting"].sum() == 0
    # Every station's protocol adds up: candidates sum to valid, valid + invalid = boxes.
    report = check_protocols(election)
    assert report.count("votes_sum_to_valid").failed == 0
    assert report.count("valid_plus_invalid_equals_ballots_in_boxes").failed == 0
    assert report.count("ballots_in_boxes_within_issued").failed < stations // 100
    assert report.count("unique_station_id").failed == 0


@pytest.mark.data
def test_real_2004_candidates(mirror: Path, real_elections: dict[int, Election]) -> None:
    election = _real(mirror, 2004, real_elections)
    assert [c.name for c in election.meta.candidates][-1] == "Против всех"


@pytest.mark.data
def test_real_2011_parties_unquoted(mirror: Path, real_elections: dict[int, Election]) -> None:
    election = _real(mirror, 2011, real_elections)
    names = [c.name for c in election.meta.candidates]
    assert names[5] == '6. Всероссийская политическая партия "ЕДИНАЯ РОССИЯ"'
    assert election.meta.candidates[5].party == 'Всероссийская политическая партия "ЕДИНАЯ РОССИЯ"'
    # Abroad and Baikonur both sit in the region "Зарубежная территория": only the first is abroad.
    s = election.stations
    assert s["is_abroad"].sum() == 369
    baikonur = s.filter(pl.col("district").str.contains("Байконур"))
    assert baikonur.height == 7
    assert not baikonur["is_abroad"].any()


@pytest.mark.data
def test_real_2018(mirror: Path, real_elections: dict[int, Election]) -> None:
    path = mirror_file(mirror, "russia_cec/2018.csv.zip")
    election = _real(mirror, 2018, real_elections)
    totals = election.totals()
    putin = "Путин Владимир Владимирович"
    assert totals[putin] == 56_430_712
    with zipfile.ZipFile(path) as archive:
        raw = pl.read_csv(io.BytesIO(archive.read("2018.csv")))
    assert raw[putin].sum() == totals[putin]
    # Every protocol line and candidate, parsed in the reader's one pass, sums as the source.
    lines = {
        column: header
        for column, header in election.meta.hierarchy_labels.items()
        if header in raw.columns and raw[header].dtype.is_integer()
    }
    assert len(lines) == 10  # registered ... valid: the protocol lines of the data model
    for column, header in lines.items():
        assert election.stations[column].sum() == raw[header].sum(), column
    for candidate in election.meta.candidates:
        assert totals[candidate.name] == raw[candidate.column].sum(), candidate.name
    boxes = raw.select(pl.col(MOBILE).sum() + pl.col(STATIONARY).sum()).item()
    assert election.stations["ballots_cast"].sum() == boxes
    assert election.stations["valid"].sum() == raw[VALID].sum()
    s = election.stations
    cancelled = s.filter(pl.col("is_cancelled"))
    assert set(cancelled["station_id"]) == CANCELLED_STATIONS[2018]
    # The cancelled stations are the rows the source README names (header = row 1) ...
    rows = s.with_row_index("row", offset=2).filter(pl.col("is_cancelled"))["row"].to_list()
    assert rows == [45559, 45563, 92554, 92561]
    # ... and their voters are the gap to the CEC's final 109,001,306.
    assert int(s["registered"].sum()) - int(cancelled["registered"].sum()) == 109_001_306
    assert s["is_abroad"].sum() == 393
    assert s.filter(pl.col("region").str.contains("Байконур"))[
        "station_kind"
    ].unique().to_list() == ["ordinary"]
    assert election.meta.date == "2018-03-18"
    assert election.meta.definitions["ballots_cast"].startswith("ballots found in the boxes")
    report = check_protocols(election)
    assert report.count("votes_sum_to_valid").failed < len(election) // 100
    assert report.count("turnout_at_most_100").failed == 0


def test_docs_list_every_header_rule() -> None:
    page = Path(__file__).parents[2] / "docs" / "importers" / "russia-cec.md"
    if not page.is_file():
        pytest.skip("docs are not in this checkout")
    text = page.read_text(encoding="utf-8")
    for rule in HEADER_RULES:
        assert f"`{rule.pattern.replace('|', chr(92) + '|')}`" in text, rule.meaning


def test_naming_an_importer_imports_its_module_only() -> None:
    """``get_importer("russia-cec")`` leaves the other importers (jsonschema...) unimported."""
    import subprocess
    import sys

    from pollwatch.results.importers import IMPORTERS, all_importers
    from pollwatch.results.importers.base import _BUILTIN_MODULES

    all_importers()
    for name, cls in IMPORTERS.items():
        if cls.__module__.startswith("pollwatch.results.importers."):
            assert cls.__module__ == f"pollwatch.results.importers.{_BUILTIN_MODULES[name]}"
    code = (
        "import sys; from pollwatch.results.importers import get_importer; "
        "get_importer('russia-cec'); get_importer('russia-cec-evoting'); "
        "print(sorted(m for m in sys.modules if m.startswith('pollwatch.results.importers.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    modules = {name.rsplit(".", 1)[-1] for name in ast.literal_eval(loaded)}
    assert "russia_cec" in modules
    assert not {"nist", "mapping", "medsl", "openelections"} & modules
