"""The OpenElections importer, on synthetic files in the format's layout (none in the mirror)."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import polars as pl
import pytest

from pollwatch.errors import ColumnError, CountError, InputError, PollwatchError
from pollwatch.results.checks import check_protocols
from pollwatch.results.importers import get_importer
from pollwatch.results.importers._names import name_key
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


# --- national multi-state files -------------------------------------------------------------
# The spellings of one candidate seen across the states of a national file (state and county
# sources each keep their own; issue 12 counted 22-25 per candidate).
SPELLINGS: dict[str, list[str]] = {
    "biden": [
        "Joseph R. Biden",
        "JOSEPH R BIDEN",
        "Biden, Joseph R.",
        "Biden/Harris",
        "JOSEPH R. BIDEN JR.",
        "Joseph R. Biden Jr.",
        "Joe Biden",
        "BIDEN / HARRIS",
        "Joseph Biden",
        "Biden, Joseph R., Jr.",
        "Joseph R Biden",
        "joseph r. biden",
        "Joseph R. Biden / Kamala D. Harris",
        "BIDEN, JOSEPH R",
        "Joseph Robinette Biden Jr.",
        "Biden and Harris",
        "JOE BIDEN",
        "Joseph R. Biden (DEM)",
        "Biden & Harris",
        "J. Biden",
        "Biden, Joe",
        "JOSEPH R. BIDEN / KAMALA D. HARRIS",
    ],
    "trump": [
        "Donald J. Trump",
        "DONALD J TRUMP",
        "Trump, Donald J.",
        "Trump/Pence",
        "Donald J. Trump / Michael R. Pence",
        "TRUMP, DONALD J.",
        "Donald Trump",
        "DONALD J. TRUMP",
        "Trump and Pence",
        "D. Trump",
    ],
    "jorgensen": ["Jo Jorgensen", "JO JORGENSEN", "Jorgensen, Jo", "Jorgensen/Cohen"],
    "hawkins": ["Howie Hawkins", "HOWIE HAWKINS/ANGELA WALKER", "Hawkins, Howie"],
    "brock": ["Brock Pierce"],
    "brook": ["Brook Pierce"],  # one letter off: a typo or another person, not merged
}
STATES = ("PA", "Wisconsin", "GA", "MI", "AZ")  # one state spelled out, as some sources do
COUNTIES = ("Adams", "Jackson")  # counties of the same name in several states


def national(folder: Path, *, seed: int = 3) -> tuple[Path, dict[str, int], dict[str, int]]:
    """A national file, the votes per person and per spelling summed from its rows."""
    rng = random.Random(seed)
    lines = ["state,county,precinct,office,district,party,candidate,votes"]
    per_person: dict[str, int] = dict.fromkeys(SPELLINGS, 0)
    per_spelling: dict[str, int] = {}
    station = 0
    for state in STATES:
        for county in COUNTIES:
            precincts = [f"Precinct {k}" for k in range(1, 5)]
            for precinct in precincts:
                votes = {person: 0 for person in SPELLINGS}
                for person, names in SPELLINGS.items():
                    base = {"biden": 300, "trump": 280, "jorgensen": 12, "hawkins": 4}.get(
                        person, 1
                    )
                    # Each precinct spells a candidate its own way, as the county's source does.
                    name = names[station % len(names)]
                    # The usual spelling comes from the largest sources.
                    count = (
                        base + rng.randrange(0, 40) + (1000 if name == names[0] != names[-1] else 0)
                    )
                    votes[person] = count
                    per_person[person] += count
                    per_spelling[name] = per_spelling.get(name, 0) + count
                    lines.append(f'{state},{county},{precinct},President,,,"{name}",{count}')
                valid = sum(votes.values()) + 5
                lines += [
                    f"{state},{county},{precinct},President,,,Write-ins,5",
                    f"{state},{county},{precinct},President,,,Over Votes,1",
                    f"{state},{county},{precinct},President,,,Under Votes,2",
                    f"{state},{county},{precinct},President,,,Registered Voters,{valid + 400}",
                    f"{state},{county},{precinct},President,,,Times Cast,{valid + 3}",
                    f"{state},{county},{precinct},President,,,Cast Votes,{valid}",
                    f"{state},{county},{precinct},President,,,Total,{valid}",
                    f"{state},{county},{precinct},U.S. Senate,,,Somebody Else,{valid}",
                ]
                station += 1
            lines.append(f"{state},{county},,President,,,Joseph R. Biden,99999")  # county total
    path = folder / "20201103__us__general__precinct.csv"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, per_person, per_spelling


def test_national_file_consolidates_candidates(tmp_path: Path) -> None:
    path, per_person, per_spelling = national(tmp_path)
    election = IMPORTER.read(path)
    totals = election.totals()
    # One column per person; the national totals are the sums of the source rows.
    assert totals == {
        "Joseph R. Biden": per_person["biden"],
        "Donald J. Trump": per_person["trump"],
        "Jo Jorgensen": per_person["jorgensen"],
        "Howie Hawkins": per_person["hawkins"],
        "Write-ins": 5 * 40,
        "Brock Pierce": per_person["brock"],
        "Brook Pierce": per_person["brook"],
    }
    leader = election.leader()
    assert leader is not None and totals[leader.name] == max(per_person.values())
    definitions = election.meta.definitions
    table = json.loads(definitions["candidate_merges_table"])
    by_name = {entry["candidate"]: entry for entry in table}
    biden = by_name["Joseph R. Biden"]
    assert {s["spelling"] for s in biden["spellings"]} == set(SPELLINGS["biden"])
    assert {s["spelling"]: s["votes"] for s in biden["spellings"]} == {
        name: per_spelling[name] for name in SPELLINGS["biden"]
    }
    assert biden["votes"] == per_person["biden"]
    reasons = {s["spelling"]: s["reason"] for s in biden["spellings"]}
    assert reasons["Biden/Harris"] == "surname only"
    assert reasons["JOSEPH R. BIDEN JR."] == "same key"
    assert len(by_name["Donald J. Trump"]["spellings"]) == len(SPELLINGS["trump"])
    report = definitions["candidate_merges"]
    assert f"Joseph R. Biden ({per_person['biden']:,} votes) <- " in report
    assert f"'Biden/Harris' ({per_spelling['Biden/Harris']:,}) [surname only]" in report
    # Fragments that could not be merged confidently are warned about, not merged.
    warning = definitions["candidate_warnings"]
    assert "surname 'pierce'" in warning and "'Brock Pierce'" in warning
    assert "Brook Pierce" in warning


def test_national_file_states_ids_and_counts(tmp_path: Path) -> None:
    path, _, _ = national(tmp_path)
    election = IMPORTER.read(path)
    stations = election.stations
    assert stations.height == len(STATES) * len(COUNTIES) * 4
    assert stations["station_id"].is_unique().all()
    first = stations.row(0, named=True)
    assert first["station_id"] == "2020|PA|Adams|Precinct 1"
    assert first["region"] == "PA"
    assert first["district"] == "Adams"
    assert first["station_name"] == "Precinct 1"
    assert sorted(stations["region"].unique().to_list()) == ["AZ", "GA", "MI", "PA", "WI"]
    wisconsin = stations.filter(pl.col("region") == "WI")
    assert wisconsin["station_id"][0] == "2020|WI|Adams|Precinct 1"
    # The non-candidate rows are the counts they are.
    valid = stations["valid"]
    assert (stations["registered"] == valid + 400).all()
    assert (stations["ballots_cast"] == valid + 3).all()
    assert (stations["invalid"] == 3).all()
    assert (stations["valid"] + stations["invalid"] == stations["ballots_cast"]).all()
    names = {c.name for c in election.meta.candidates}
    assert not names & {"Total", "Cast Votes", "Times Cast", "Registered Voters", "Over Votes"}
    definitions = election.meta.definitions
    assert "'Times Cast'" in definitions["contest_counts"]
    assert "'Cast Votes' (40)" in definitions["total_rows"] or "2 row" not in definitions.get(
        "total_rows", ""
    )
    assert "10 row(s)" in definitions["county_totals"]  # one county total per county, left out
    meta = election.meta
    assert meta.id == "us-2020-president-openelections"
    assert meta.hierarchy_labels["region"] == "state (column)"
    assert meta.date == "2020-11-03"
    report = check_protocols(election)
    assert report.count("valid_plus_invalid_equals_ballots_in_boxes").failed == 0


def test_national_file_one_state(tmp_path: Path) -> None:
    path, _, _ = national(tmp_path)
    georgia = IMPORTER.read(path, options={"state": "ga"})
    assert georgia.stations["region"].unique().to_list() == ["GA"]
    assert georgia.stations.height == len(COUNTIES) * 4
    assert georgia.meta.id == "us-ga-2020-president-openelections"
    with pytest.raises(InputError, match="no rows with state 'TX'") as info:
        IMPORTER.read(path, options={"state": "TX"})
    assert "'PA'" in str(info.value)


def test_merge_overrides(tmp_path: Path) -> None:
    path, per_person, per_spelling = national(tmp_path)
    forced = IMPORTER.read(path, options={"merge": "Brook Pierce=Brock Pierce"})
    assert forced.totals()["Brock Pierce"] == per_person["brock"] + per_person["brook"]
    assert "Brook Pierce" not in forced.totals()
    assert "candidate_warnings" not in forced.meta.definitions
    entry = {
        e["candidate"]: e for e in json.loads(forced.meta.definitions["candidate_merges_table"])
    }
    assert {s["spelling"]: s["reason"] for s in entry["Brock Pierce"]["spellings"]} == {
        "Brock Pierce": "same key",
        "Brook Pierce": "forced into 'Brock Pierce'",
    }
    # A forbidden merge keeps the spelling in its own column.
    apart = IMPORTER.read(path, options={"separate": "Biden/Harris;Joe Biden"})
    totals = apart.totals()
    assert totals["Biden/Harris"] == per_spelling["Biden/Harris"]
    # Spellings are named with case and spacing ignored: 'JOE BIDEN' is 'Joe Biden'.
    joe = per_spelling["Joe Biden"] + per_spelling["JOE BIDEN"]
    assert totals["Joe Biden"] == joe
    assert totals["Joseph R. Biden"] == per_person["biden"] - per_spelling["Biden/Harris"] - joe
    # No merging at all: the old rule, one column per spelling (case and spacing ignored).
    exact = IMPORTER.read(path, options={"separate": "all"})
    assert len(exact.meta.candidates) > 30
    assert "separate=all" in exact.meta.definitions["candidates"]
    # The same choices from a file.
    table = tmp_path / "candidates.csv"
    table.write_text(
        "spelling,candidate\nBrook Pierce,Brock Pierce\nBiden/Harris,\n", encoding="utf-8"
    )
    mapped = IMPORTER.read(path, options={"candidate_map": str(table)})
    assert mapped.totals()["Brock Pierce"] == per_person["brock"] + per_person["brook"]
    assert mapped.totals()["Biden/Harris"] == per_spelling["Biden/Harris"]
    # Overrides that name nothing in the file, or are malformed, are one-line errors.
    with pytest.raises(InputError, match="no candidate spelled 'Bernie Sanders'"):
        IMPORTER.read(path, options={"merge": "Bernie Sanders=Joseph R. Biden"})
    with pytest.raises(PollwatchError, match="SPELLING=CANDIDATE"):
        IMPORTER.read(path, options={"merge": "Brook Pierce"})
    with pytest.raises(InputError, match="candidate map"):
        IMPORTER.read(path, options={"candidate_map": str(tmp_path / "missing.csv")})
    bad = tmp_path / "bad.csv"
    bad.write_text("name,person\nA,B\n", encoding="utf-8")
    with pytest.raises(ColumnError, match="spelling and candidate"):
        IMPORTER.read(path, options={"candidate_map": str(bad)})


def test_single_state_files_merge_spellings_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PA,
        [
            HEADER,
            "Adams,1,President,,REP,Donald J. Trump,50",
            'Adams,1,President,,REP,"TRUMP, DONALD J.",7',
            "Adams,2,President,,DEM,Hillary Clinton,30",
            "Adams,2,President,,DEM,Clinton/Kaine,3",
            'Adams,2,President,,DEM,"Clinton, Hillary",2',
        ],
    )
    election = IMPORTER.read(path)
    assert election.totals() == {"Donald J. Trump": 57, "Hillary Clinton": 35}
    assert election.stations["station_id"].to_list() == ["Adams|1", "Adams|2"]
    assert "3 spellings merged into" not in election.meta.definitions["candidate_merges"]
    assert "5 spellings merged into 2 candidate(s)" in election.meta.definitions["candidate_merges"]


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("Joseph R. Biden", ("joseph biden", False)),
        ("Biden, Joseph R., Jr.", ("joseph biden", False)),
        ("JOSEPH R. BIDEN / KAMALA D. HARRIS", ("joseph biden", False)),
        ("Joe Biden", ("joseph biden", False)),
        ("Biden/Harris", ("biden", True)),
        ("De La Fuente, Rocky", ("rocky fuente", False)),
        ('Roque "Rocky" De La Fuente', ("roque fuente", False)),
        ("Alexandria Ocasio-Cortez", ("alexandria ocasio-cortez", False)),
        ("Beto O'Rourke", ("beto orourke", False)),
        ("John Smith III", ("john smith", False)),
    ],
)
def test_name_keys(spelling: str, key: tuple[str, bool]) -> None:
    assert name_key(spelling) == key
