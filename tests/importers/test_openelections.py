"""The OpenElections importer, on synthetic files in the format's layout (none in the mirror)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from pollwatch.errors import ColumnError, CountError, InputError, PollwatchError
from pollwatch.results.checks import check_protocols
from pollwatch.results.importers import get_importer
from pollwatch.results.importers.openelections import OpenElectionsImporter, parse_file_name

HEADER = "county,precinct,office,district,party,candidate,votes"
IMPORTER = OpenElectionsImporter()


def write(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PA = "20161108__pa__general__precinct.csv"


def basic(folder: Path, name: str = PA) -> Path:
    return write(
        folder,
        name,
        [
            HEADER,
            "Adams,Abbottstown,Registered Voters,,,,800",
            "Adams,Abbottstown,Ballots Cast,,,,600",
            "Adams,Abbottstown,President,,DEM,Hillary Clinton,200",
            "Adams,Abbottstown,President,,REP,Donald J. Trump,380",
            "Adams,Abbottstown,President,,LIB,Gary Johnson,12",
            "Adams,Abbottstown,President,,,Over Votes,2",
            "Adams,Abbottstown,President,,,Under Votes,6",
            "Adams,Abbottstown,U.S. Senate,,DEM,Katie McGinty,230",
            "Adams,Abbottstown,U.S. Senate,,REP,Pat Toomey,350",
            "Adams,Arendtsville,Registered Voters,,,,900",
            "Adams,Arendtsville,Ballots Cast,,,,640",
            "Adams,Arendtsville,President,,DEM,Hillary Clinton,260",
            "Adams,Arendtsville,President,,REP,Donald J. Trump,360",
            "Adams,Arendtsville,President,,LIB,Gary Johnson,15",
            "Adams,Arendtsville,U.S. Senate,,DEM,Katie McGinty,270",
            "Adams,Arendtsville,U.S. Senate,,REP,Pat Toomey,340",
        ],
    )


def test_basic_file(tmp_path: Path) -> None:
    path = basic(tmp_path)
    assert IMPORTER.detect(path) >= 0.9
    election = IMPORTER.read(path)
    assert election.totals() == {
        "Donald J. Trump": 740,
        "Hillary Clinton": 460,
        "Gary Johnson": 27,
    }
    first = election.stations.row(0, named=True)
    assert first["station_id"] == "Adams|Abbottstown"
    assert first["region"] == "PA"
    assert first["district"] == "Adams"
    assert first["station_name"] == "Abbottstown"
    assert first["registered"] == 800
    assert first["ballots_cast"] == 600
    assert first["valid"] == 592
    assert first["invalid"] == 8  # over votes + under votes
    assert first["valid"] + first["invalid"] == first["ballots_cast"]
    second = election.stations.row(1, named=True)
    assert second["invalid"] is None  # no over/under rows in this precinct
    meta = election.meta
    assert meta.id == "us-pa-2016-president-openelections"
    assert meta.date == "2016-11-08"
    assert meta.country == "US"
    assert meta.kind == "presidential"
    assert meta.contest == "President (general)"
    assert meta.source_files == (PA,)
    assert {c.name: c.party for c in meta.candidates}["Hillary Clinton"] == "DEM"
    report = check_protocols(election)
    assert report.count("valid_plus_invalid_equals_ballots_in_boxes").failed == 0
    assert report.count("turnout_at_most_100").failed == 0


def test_other_office(tmp_path: Path) -> None:
    election = IMPORTER.read(basic(tmp_path), options={"office": "U.S. Senate"})
    assert election.totals() == {"Pat Toomey": 690, "Katie McGinty": 500}
    assert election.meta.kind == "legislative"
    assert election.meta.id == "us-pa-2016-us-senate-openelections"
    # Turnout rows belong to the precinct, whatever the office.
    assert election.stations["registered"].to_list() == [800, 900]
    # The office is matched with dots, case and spacing ignored.
    again = IMPORTER.read(basic(tmp_path), options={"office": "us  SENATE"})
    assert again.totals() == election.totals()


def test_vote_modes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "20201103__ga__general__precinct.csv",
        [
            HEADER + ",election_day,absentee,provisional",
            "Appling,1B,Registered Voters,,,,1500,,,",
            "Appling,1B,Ballots Cast,,,,,700,300,4",
            "Appling,1B,President,,REP,Donald J. Trump,,500,200,1",  # votes empty: modes summed
            "Appling,1B,President,,DEM,Joseph R. Biden,290,190,99,3",  # votes given: it wins
            "Appling,1B,President,,LIB,Jo Jorgensen,,,,",  # nothing published
        ],
    )
    election = IMPORTER.read(path)
    station = election.stations.row(0, named=True)
    assert station["Donald J. Trump"] == 701
    assert station["Joseph R. Biden"] == 290
    assert station["Jo Jorgensen"] is None
    assert station["ballots_cast"] == 1004
    assert station["registered"] == 1500
    assert station["valid"] == 991
    assert "election_day, absentee, provisional" in election.meta.definitions["votes"]


def test_without_mode_columns_and_without_turnout(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "precincts.csv",
        [HEADER, "X,1,President,,A,Ann,5", "X,2,President,,A,Ann,7", "X,2,President,,B,Bo,1"],
    )
    election = IMPORTER.read(path, options={"state": "vt", "date": "2016-11-08"})
    assert election.totals() == {"Ann": 12, "Bo": 1}
    assert election.stations["registered"].null_count() == 2
    assert election.stations["ballots_cast"].null_count() == 2
    assert election.stations["region"].to_list() == ["VT", "VT"]
    assert election.meta.id == "us-vt-2016-president-openelections"
    unnamed = IMPORTER.read(path)
    assert unnamed.meta.id == "us-president-openelections"
    assert unnamed.meta.date == ""
    assert unnamed.stations["region"].null_count() == 2


def test_turnout_variants(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PA,
        [
            HEADER,
            "A,1,Registered Voters,,DEM,,300",  # registration split by party lines: summed
            "A,1,Registered Voters,,REP,,200",
            "A,1,Ballots Cast - Total,,,,410",
            "A,1,Ballots Cast,,,,400",  # the canonical spelling wins over '- Total'
            "A,1,Ballots Cast - Blank,,,,3",
            "A,1,Straight Party,,DEM,Democratic,50",
            "A,1,President,,DEM,Ann,200",
            "A,2,Total Ballots Cast,,,,90",
            "A,2,President,,DEM,Ann,80",
            "A,3,Registered Voters,,,,50",  # a precinct without the contest: not a station
        ],
    )
    election = IMPORTER.read(path)
    rows = election.stations.select("station_id", "registered", "ballots_cast").rows()
    assert rows == [("A|1", 500, 400), ("A|2", None, 90)]
    definitions = election.meta.definitions
    assert "Ballots Cast - Blank" in definitions["pseudo_offices"]
    assert "Straight Party" in definitions["pseudo_offices"]
    assert "1 precinct(s) have turnout rows" in definitions["turnout_outside_contest"]


def test_no_president_lists_offices(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "20181106__pa__general__precinct.csv",
        [
            HEADER,
            "A,1,Registered Voters,,,,500",
            "A,1,Governor,,DEM,Tom Wolf,300",
            "A,1,Governor,,REP,Scott Wagner,200",
            "A,1,U.S. House,7,DEM,Susan Wild,260",
            "A,2,U.S. House,15,REP,Glenn Thompson,150",
        ],
    )
    with pytest.raises(InputError) as info:
        IMPORTER.read(path)
    message = str(info.value)
    assert "'Governor' (2)" in message and "'U.S. House' (2)" in message
    assert "Registered Voters" not in message
    assert "--option office=" in message
    governor = IMPORTER.read(path, options={"office": "Governor"})
    assert governor.totals() == {"Tom Wolf": 300, "Scott Wagner": 200}
    assert governor.meta.kind == "other"
    with pytest.raises(InputError, match="district"):
        IMPORTER.read(path, options={"office": "U.S. House"})
    house = IMPORTER.read(path, options={"office": "U.S. House", "district": "07"})
    assert house.totals() == {"Susan Wild": 260}
    assert house.meta.id == "us-pa-2018-us-house-district-07-openelections"
    assert house.meta.contest.startswith("U.S. House, district 07")
    both = IMPORTER.read(path, options={"office": "U.S. House", "district": "all"})
    assert both.totals() == {"Susan Wild": 260, "Glenn Thompson": 150}
    with pytest.raises(InputError, match="no rows with office"):
        IMPORTER.read(path, options={"office": "Mayor"})


def test_primary_needs_a_party(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "20160426__pa__primary__precinct.csv",
        [
            HEADER,
            "A,1,President,,DEM,Hillary Clinton,100",
            "A,1,President,,DEM,Bernie Sanders,90",
            "A,1,President,,REP,Donald Trump,120",
            "A,1,Registered Voters,,DEM,,400",
            "A,1,Registered Voters,,REP,,300",
        ],
    )
    with pytest.raises(InputError, match="--option party="):
        IMPORTER.read(path)
    dem = IMPORTER.read(path, options={"party": "dem"})
    assert dem.totals() == {"Hillary Clinton": 100, "Bernie Sanders": 90}
    assert dem.stations["registered"].to_list() == [400]  # the party's own registration
    assert dem.meta.id == "us-pa-2016-primary-president-dem-openelections"


def test_fusion_lines_and_spellings_make_one_candidate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "20161108__ny__general__precinct.csv",
        [
            HEADER,
            "Kings,1,President,,REP,Donald J. Trump,50",
            "Kings,1,President,,CON,Donald J. Trump,7",
            "Kings,2,President,,REP,DONALD J.  TRUMP ,20",
            "Kings,2,President,,DEM,Hillary Clinton,300",
            "Kings,2,President,,,Write-ins,4",
            "Kings,2,President,,,Total Votes,324",
        ],
    )
    election = IMPORTER.read(path)
    assert election.totals() == {"Hillary Clinton": 300, "Donald J. Trump": 77, "Write-ins": 4}
    parties = {c.name: c.party for c in election.meta.candidates}
    assert parties["Donald J. Trump"] == "REP"
    assert "1 row(s)" in election.meta.definitions["total_rows"]


def test_county_totals_are_not_counted_twice(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PA,
        [
            HEADER,
            "Adams,1,President,,DEM,Ann,10",
            "Adams,2,President,,DEM,Ann,20",
            "Adams,,President,,DEM,Ann,30",  # county total: dropped
            "Adams,Total,President,,DEM,Ann,30",  # same, spelled out: dropped
            ",,President,,DEM,Ann,999",  # state total: dropped
            "Bedford,,President,,DEM,Ann,5",  # the county's only data: kept
            "Cameron,Absentee,President,,DEM,Ann,2",
        ],
    )
    election = IMPORTER.read(path)
    assert election.totals() == {"Ann": 37}
    stations = election.stations
    assert stations["station_id"].to_list() == [
        "Adams|1",
        "Adams|2",
        "Bedford|",
        "Cameron|Absentee",
    ]
    assert stations["is_pseudo_station"].to_list() == [False, False, True, True]
    assert stations["station_kind"].to_list() == ["ordinary", "ordinary", "catch_all", "catch_all"]
    assert "3 row(s)" in election.meta.definitions["county_totals"]


def test_county_level_file_keeps_counties_not_the_state_total(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "20161108__pa__general__county.csv",
        [
            HEADER,
            "Adams,,President,,DEM,Ann,10",
            "Bedford,,President,,DEM,Ann,20",
            ",,President,,DEM,Ann,30",  # the state total
        ],
    )
    election = IMPORTER.read(path)
    assert election.totals() == {"Ann": 30}
    assert election.stations["station_id"].to_list() == ["Adams|", "Bedford|"]


def test_missing_candidate_column(tmp_path: Path) -> None:
    path = write(
        tmp_path, PA, ["county,precinct,office,district,party,votes", "A,1,President,,D,5"]
    )
    with pytest.raises(ColumnError) as info:
        IMPORTER.read(path)
    assert "candidate" in str(info.value)
    assert PA in str(info.value)


def test_non_numeric_votes(tmp_path: Path) -> None:
    path = write(tmp_path, PA, [HEADER, "A,1,President,,D,Ann,5", "A,2,President,,D,Ann,five"])
    with pytest.raises(CountError) as info:
        IMPORTER.read(path)
    assert info.value.row == 3
    assert info.value.column == "votes"
    assert PA in str(info.value)
    modes = write(
        tmp_path / "m",
        PA,
        [HEADER + ",absentee", "A,1,President,,D,Ann,,4", "A,2,President,,D,Ann,,4.5"],
    )
    with pytest.raises(CountError) as info:
        IMPORTER.read(modes)
    assert (info.value.row, info.value.column) == (3, "absentee")


def test_redaction_markers(tmp_path: Path) -> None:
    path = write(tmp_path, PA, [HEADER, "A,1,President,,D,Ann,5", "A,2,President,,D,Ann,*"])
    with pytest.raises(CountError):
        IMPORTER.read(path)
    election = IMPORTER.read(path, options={"na_values": "*"})
    assert election.stations["Ann"].to_list() == [5, None]
    assert election.stations["is_unpublished"].to_list() == [False, True]


def test_negative_votes_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, PA, [HEADER, "A,1,President,,D,Ann,-5"])
    with pytest.raises(CountError) as info:
        IMPORTER.read(path)
    assert (info.value.row, info.value.column) == (2, "votes")


def test_bad_options_and_garbage(tmp_path: Path) -> None:
    path = basic(tmp_path)
    with pytest.raises(PollwatchError, match="no option"):
        IMPORTER.read(path, options={"offce": "President"})
    with pytest.raises(PollwatchError, match="state"):
        IMPORTER.read(path, options={"state": "Pennsylvania"})
    with pytest.raises(PollwatchError, match="date"):
        IMPORTER.read(path, options={"date": "08/11/2016"})
    with pytest.raises(ColumnError, match="party"):
        IMPORTER.read(
            write(
                tmp_path / "np",
                PA,
                ["county,precinct,office,candidate,votes", "A,1,President,Ann,1"],
            ),
            options={"party": "DEM"},
        )
    header_only = write(tmp_path / "h", PA, [HEADER])
    with pytest.raises(PollwatchError):
        IMPORTER.read(header_only)


def test_zip_and_detect(tmp_path: Path) -> None:
    source = basic(tmp_path / "src")
    archive = tmp_path / "20161108__pa__general__precinct.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(source, source.name)
    assert IMPORTER.detect(archive) >= 0.9
    assert IMPORTER.read(archive).totals()["Donald J. Trump"] == 740
    assert get_importer("medsl").detect(source) == 0.0
    medsl_header = write(
        tmp_path,
        "medsl.csv",
        ["state_po,county_name,precinct,office,party_simplified,candidate,mode,votes"],
    )
    assert IMPORTER.detect(medsl_header) == 0.0
    assert get_importer("medsl").detect(medsl_header) >= 0.9
    unrelated = write(tmp_path, "other.csv", ["region,tik,uik,votes", "a,b,c,1"])
    assert IMPORTER.detect(unrelated) == 0.0
    assert IMPORTER.detect(tmp_path / "missing.csv") == 0.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "20161108__pa__general__precinct.csv",
            {
                "date": "2016-11-08",
                "state": "PA",
                "election": "general",
                "county": "",
                "level": "precinct",
            },
        ),
        (
            "20221108__tx__general__bastrop__precinct.csv",
            {
                "date": "2022-11-08",
                "state": "TX",
                "election": "general",
                "county": "bastrop",
                "level": "precinct",
            },
        ),
        (
            "20170516__pa__special__general__precinct.csv.gz",
            {
                "date": "2017-05-16",
                "state": "PA",
                "election": "special_general",
                "county": "",
                "level": "precinct",
            },
        ),
        ("20161399__pa__general__precinct.csv", {"date": ""}),
        ("results.csv", {}),
    ],
)
def test_parse_file_name(name: str, expected: dict[str, str]) -> None:
    parsed = parse_file_name(name)
    if not expected:
        assert parsed == {}
    for key, value in expected.items():
        assert parsed[key] == value


def test_station_ids_are_unique_and_ordered(tmp_path: Path) -> None:
    election = IMPORTER.read(basic(tmp_path))
    stations = election.stations
    assert stations["station_id"].is_unique().all()
    assert stations.select(pl.col("valid") == pl.sum_horizontal(election.candidate_columns))[
        "valid"
    ].all()
