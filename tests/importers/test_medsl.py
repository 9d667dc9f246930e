"""The MEDSL precinct-returns importer: the real 2016 presidential file and synthetic files."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from pollwatch.errors import ColumnError, CountError, InputError, PollwatchError
from pollwatch.results.checks import check_protocols
from pollwatch.results.importers import _long, get_importer
from pollwatch.results.importers.medsl import MedslImporter
from tests.conftest import mirror_file

MIRROR_FILE = "us_2016_president_precinct_medsl/us_2016_president_precinct_medsl.csv.gz"
# PROVENANCE.md of the mirror folder.
PROVENANCE_TOTALS = {
    "Donald Trump": 48_325_359,
    "Hillary Clinton": 44_865_096,
    "Gary Johnson": 3_319_498,
    "Jill Stein": 930_459,
    "Evan McMullin": 624_780,
}
STATES = {
    *("AK", "AL", "AR", "AZ", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA", "ID", "IN", "KS"),
    *("KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "ND", "NE", "NH", "NJ", "NM"),
    *("NV", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV"),
    "WY",
}
# Michigan's Huron County "Statistical Adjustments" row: Clinton -2, Trump -1.
CLIPPED = {"Hillary Clinton": -2, "Donald Trump": -1}

HEADER_2016 = (
    "state_postal,county_fips,county_name,jurisdiction,precinct,candidate,candidate_normalized,"
    "party,writein,mode,votes"
)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the real file ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(mirror: Path):
    path = mirror_file(mirror, MIRROR_FILE)
    return path, MedslImporter().read(path)


@pytest.mark.data
def test_real_totals_match_provenance(real) -> None:
    _, election = real
    totals = election.totals()
    for name, expected in PROVENANCE_TOTALS.items():
        assert totals[name] == expected, name
    # PROVENANCE.md of the mirror: Trump 48,325,359; Clinton 44,865,096.
    assert totals["Donald Trump"] == 48_325_359
    assert totals["Hillary Clinton"] == 44_865_096
    assert election.leader() is not None and election.leader().name == "Donald Trump"
    # The signed adjustment row is kept, on a flagged pseudo-precinct.
    adjustments = election.stations.filter(pl.col("Hillary Clinton") < 0)
    assert adjustments["station_name"].to_list() == ["Statistical Adjustments"]
    assert adjustments["is_pseudo_station"].to_list() == [True]


@pytest.mark.data
def test_real_negative_clip_reports_what_it_removed(real) -> None:
    path, _ = real
    election = MedslImporter().read(path, options={"negative": "clip"})
    clipped = dict(
        pair.rsplit(" ", 1)
        for pair in election.meta.definitions["negative_votes"].split(": ")[-1].split(", ")
    )
    assert {k: int(v) for k, v in clipped.items()} == CLIPPED
    for name, expected in PROVENANCE_TOTALS.items():
        assert election.totals()[name] + CLIPPED.get(name, 0) == expected, name


@pytest.mark.data
def test_real_candidate_columns_hold_every_vote(real) -> None:
    path, election = real
    file_total = pl.read_csv(path, columns=["votes"], schema_overrides={"votes": pl.Int64})[
        "votes"
    ].sum()
    assert file_total == 99_123_366
    assert sum(election.totals().values()) == file_total
    assert election.candidate_columns == [
        "Donald Trump",
        "Hillary Clinton",
        "Gary Johnson",
        "Jill Stein",
        "Evan McMullin",
        "Darrell Castle",
        "Other",
        "Write-ins",
    ]
    parties = {c.name: c.party for c in election.meta.candidates}
    assert parties["Donald Trump"] == "republican"
    assert parties["Hillary Clinton"] == "democratic"


@pytest.mark.data
def test_real_stations(real) -> None:
    _, election = real
    stations = election.stations
    # PROVENANCE: 118,806 distinct state x county x jurisdiction x precinct keys.
    assert len(election) == 118_806
    assert stations["station_id"].n_unique() == 118_806
    assert set(stations["region"].unique().to_list()) == STATES
    assert len(STATES) == 46
    summed = stations.select(
        pl.sum_horizontal([pl.col(c) for c in election.candidate_columns]).alias("s"), "valid"
    )
    assert (summed["s"] == summed["valid"]).all()
    assert stations["registered"].null_count() == len(election)
    assert stations["ballots_cast"].null_count() == len(election)
    assert stations["invalid"].null_count() == len(election)
    assert stations["is_unpublished"].sum() == 0
    report = check_protocols(election)
    assert report.count("unique_station_id").failed == 0
    assert report.count("no_negative_counts").failed == 1  # the adjustment row, a finding


@pytest.mark.data
def test_real_pseudo_stations(real) -> None:
    _, election = real
    stations = election.stations
    pseudo = stations.filter(pl.col("is_pseudo_station"))
    assert pseudo.height == 2_745
    assert (pseudo["station_kind"] == "catch_all").all()
    assert stations.filter(~pl.col("is_pseudo_station"))["station_kind"].unique().to_list() == [
        "ordinary"
    ]
    maryland = pseudo.filter(pl.col("region") == "MD")
    assert maryland.height == 24
    assert set(maryland["station_name"].to_list()) == {"Total"}
    per_state = dict(pseudo.group_by("region").len().iter_rows())
    assert per_state["LA"] == 128  # "Early Voting" and "Provisional Votes" per parish
    assert per_state["TX"] == 254  # "[Jurisdiction-wide]" per county
    assert stations["is_abroad"].sum() == 120
    assert "2745 stations" in election.meta.definitions["is_pseudo_station"]


@pytest.mark.data
def test_real_meta(real) -> None:
    path, election = real
    meta = election.meta
    assert meta.id == "us-2016-president-medsl"
    assert meta.country == "US"
    assert meta.date == "2016-11-08"
    assert meta.kind == "presidential"
    assert meta.license == "MIT"
    assert meta.importer == "medsl"
    assert meta.source_files == (path.name,)
    assert len(meta.source_sha256) == 64
    assert "turnout is undefined" in meta.definitions["turnout_note"]


@pytest.mark.data
def test_real_negative_error_names_the_row(mirror: Path) -> None:
    path = mirror_file(mirror, MIRROR_FILE)
    with pytest.raises(CountError) as info:
        MedslImporter().read(path, options={"negative": "error"})
    assert info.value.row == 707_874
    assert info.value.column == "votes"
    assert path.name in str(info.value)


@pytest.mark.data
def test_detect_real_file(mirror: Path) -> None:
    path = mirror_file(mirror, MIRROR_FILE)
    assert MedslImporter().detect(path) >= 0.9
    assert get_importer("openelections").detect(path) == 0.0


# --- synthetic files ----------------------------------------------------------------------

FULL_HEADER = (
    "year,state,state_postal,state_fips,county_name,county_fips,jurisdiction,precinct,office,"
    "district,stage,special,candidate,candidate_last,candidate_normalized,writein,party,mode,votes"
)


def full_medsl(folder: Path) -> Path:
    """A 'full' MEDSL file: several offices, a primary stage, a special election."""
    rows = [
        "2018,Vermont,VT,50,Addison County,50001,Bristol,Bristol,US President,,gen,FALSE,"
        "Hillary Clinton,Clinton,clinton,FALSE,democratic,total,700",
        "2018,Vermont,VT,50,Addison County,50001,Bristol,Bristol,US President,,gen,FALSE,"
        "Donald Trump,Trump,trump,FALSE,republican,total,400",
        "2018,Vermont,VT,50,Addison County,50001,Bristol,Bristol,US Senate,,gen,FALSE,"
        "Bernard Sanders,Sanders,sanders,FALSE,independent,total,900",
        "2018,Vermont,VT,50,Addison County,50001,Bristol,Bristol,US Senate,,gen,FALSE,"
        "Lawrence Zupan,Zupan,zupan,FALSE,republican,total,250",
        "2018,Vermont,VT,50,Addison County,50001,Bristol,Bristol,US President,,pri,FALSE,"
        "Bernie Sanders,Sanders,sanders,FALSE,democratic,total,999",
        "2018,Vermont,VT,50,Addison County,50001,Bristol,Bristol,US President,,gen,TRUE,"
        "Someone Special,Special,special,FALSE,independent,total,5",
        "2018,Vermont,VT,50,Addison County,50001,Lincoln,Lincoln,US President,,gen,FALSE,"
        "Hillary Clinton,Clinton,clinton,FALSE,democratic,total,300",
        "2018,Vermont,VT,50,Addison County,50001,Lincoln,Lincoln,US President,,gen,FALSE,"
        "Donald Trump,Trump,trump,FALSE,republican,total,200",
        "2018,Vermont,VT,50,Addison County,50001,Lincoln,Lincoln,State House,Addison-1,gen,FALSE,"
        "Jane Doe,Doe,doe,FALSE,democratic,total,450",
    ]
    return write(folder, "vt_full.csv", "\n".join([FULL_HEADER, *rows]) + "\n")


def test_full_file_keeps_only_the_chosen_office(tmp_path: Path) -> None:
    election = MedslImporter().read(full_medsl(tmp_path))
    assert election.totals() == {"Hillary Clinton": 1000, "Donald Trump": 600}
    assert len(election) == 2
    assert election.meta.id == "us-vt-2018-president-medsl"
    assert election.meta.date == "2018-11-06"
    assert "office = 'US President'" in election.meta.definitions["filters"]
    assert "stage = 'gen'" in election.meta.definitions["filters"]
    assert election.stations["station_id"].to_list() == [
        "VT|50001|Bristol|Bristol",
        "VT|50001|Lincoln|Lincoln",
    ]


def test_full_file_other_office_stage_and_special(tmp_path: Path) -> None:
    path = full_medsl(tmp_path)
    senate = MedslImporter().read(path, options={"office": "US Senate"})
    assert senate.totals() == {"Bernard Sanders": 900, "Lawrence Zupan": 250}
    assert senate.meta.kind == "legislative"
    assert senate.meta.id == "us-vt-2018-us-senate-medsl"
    primary = MedslImporter().read(path, options={"stage": "pri"})
    assert primary.totals() == {"Bernie Sanders": 999}
    assert primary.meta.date == ""
    assert primary.meta.id.endswith("-primary-medsl")
    special = MedslImporter().read(path, options={"special": "true"})
    assert special.totals() == {"Someone Special": 5}
    house = MedslImporter().read(path, options={"office": "State House"})
    assert house.totals() == {"Jane Doe": 450}


def test_unknown_office_lists_offices(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        MedslImporter().read(full_medsl(tmp_path), options={"office": "Governor"})
    message = str(info.value)
    assert "'US President' (6)" in message
    assert "'US Senate' (2)" in message
    assert "--option office=" in message
    assert info.value.column == "office"


def test_2020_style_columns(tmp_path: Path) -> None:
    header = (
        "precinct,office,party_detailed,party_simplified,mode,votes,county_name,county_fips,"
        "jurisdiction_name,jurisdiction_fips,candidate,district,dataverse,year,stage,state,special,"
        "writein,state_po,state_fips,date"
    )
    rows = [
        "P1,US PRESIDENT,DEMOCRAT,DEMOCRAT,ELECTION DAY,500,ADAMS,55001,ADAMS,55001,JOSEPH R BIDEN,"
        "STATEWIDE,PRESIDENT,2020,GEN,WISCONSIN,FALSE,FALSE,WI,55,2020-11-03",
        "P1,US PRESIDENT,DEMOCRAT,DEMOCRAT,ABSENTEE,120,ADAMS,55001,ADAMS,55001,JOSEPH R BIDEN,"
        "STATEWIDE,PRESIDENT,2020,GEN,WISCONSIN,FALSE,FALSE,WI,55,2020-11-03",
        "P1,US PRESIDENT,REPUBLICAN,REPUBLICAN,ELECTION DAY,610,ADAMS,55001,ADAMS,55001,"
        "DONALD J TRUMP,STATEWIDE,PRESIDENT,2020,GEN,WISCONSIN,FALSE,FALSE,WI,55,2020-11-03",
        "P1,US PRESIDENT,,,ELECTION DAY,7,ADAMS,55001,ADAMS,55001,OVERVOTES,STATEWIDE,PRESIDENT,"
        "2020,GEN,WISCONSIN,FALSE,FALSE,WI,55,2020-11-03",
        "P1,US PRESIDENT,,,ELECTION DAY,3,ADAMS,55001,ADAMS,55001,UNDERVOTES,STATEWIDE,PRESIDENT,"
        "2020,GEN,WISCONSIN,FALSE,FALSE,WI,55,2020-11-03",
        "P1,US PRESIDENT,,,ELECTION DAY,4,ADAMS,55001,ADAMS,55001,WRITEIN,STATEWIDE,PRESIDENT,"
        "2020,GEN,WISCONSIN,FALSE,TRUE,WI,55,2020-11-03",
        "P2,US PRESIDENT,REPUBLICAN,REPUBLICAN,TOTAL,90,ADAMS,55001,ADAMS,55001,"
        "Donald J Trump,STATEWIDE,PRESIDENT,2020,GEN,WISCONSIN,FALSE,FALSE,WI,55,2020-11-03",
    ]
    path = write(tmp_path, "2020-wi-precinct-general.csv", "\n".join([header, *rows]) + "\n")
    assert MedslImporter().detect(path) >= 0.9
    election = MedslImporter().read(path)
    assert election.totals() == {"DONALD J TRUMP": 700, "JOSEPH R BIDEN": 620, "Write-ins": 4}
    assert election.meta.date == "2020-11-03"
    assert election.meta.id == "us-wi-2020-president-medsl"
    first = election.stations.row(0, named=True)
    assert first["station_id"] == "WI|55001|ADAMS|P1"
    assert first["invalid"] == 10  # 7 over votes + 3 under votes
    assert first["valid"] == 500 + 120 + 610 + 4
    assert election.stations.row(1, named=True)["invalid"] is None
    parties = {c.name: c.party for c in election.meta.candidates}
    assert parties["JOSEPH R BIDEN"] == "DEMOCRAT"


def synthetic(folder: Path, rows: list[str], name: str = "us_2016_test.csv") -> Path:
    return write(folder, name, "\n".join([HEADER_2016, *rows]) + "\n")


def test_modes_are_summed_and_small_candidates_pooled(tmp_path: Path) -> None:
    rows = [
        "ZZ,1,A County,A,P1,Ann Alpha,alpha,red,FALSE,election day,6000",
        "ZZ,1,A County,A,P1,Ann Alpha,alpha,red,FALSE,absentee,1000",
        "ZZ,1,A County,A,P1,Bob Beta,beta,blue,FALSE,election day,2990",
        "ZZ,1,A County,A,P1,Cy Tiny,tiny,green,FALSE,election day,1",
        "ZZ,1,A County,A,P1,Dee Written,written,,TRUE,election day,2",
        "ZZ,1,A County,A,P1,[Write-in],in,,TRUE,election day,5",
        "ZZ,1,A County,A,Absentee,Ann Alpha,alpha,red,FALSE,absentee,400",
        "ZZ,1,A County,A,Absentee,,,,TRUE,absentee,3",
    ]
    path = synthetic(tmp_path, rows)
    election = MedslImporter().read(path)
    # 1 and 2 votes are below 0.1 % of 10,401: pooled into Other / Write-ins.
    assert election.totals() == {"Ann Alpha": 7400, "Bob Beta": 2990, "Other": 1, "Write-ins": 10}
    assert sum(election.totals().values()) == 10_401
    station = election.stations.row(0, named=True)
    assert station["valid"] == 6000 + 1000 + 2990 + 1 + 2 + 5
    catch_all = election.stations.row(1, named=True)
    assert catch_all["is_pseudo_station"] and catch_all["station_kind"] == "catch_all"
    assert catch_all["Bob Beta"] is None  # no row in the source: null, not 0
    everyone = MedslImporter().read(path, options={"min_share": "0"})
    assert everyone.totals() == {
        "Ann Alpha": 7400,
        "Bob Beta": 2990,
        "Dee Written": 2,
        "Cy Tiny": 1,
        "Write-ins": 8,
    }
    high = MedslImporter().read(path, options={"min_votes": "3000"})
    assert high.totals() == {"Ann Alpha": 7400, "Other": 2991, "Write-ins": 10}


def test_display_name_and_party_are_the_most_frequent(tmp_path: Path) -> None:
    rows = [
        "ZZ,1,A County,A,P1,Donald Trump,trump,republican,FALSE,total,10",
        "ZZ,1,A County,A,P2,Donald J. Trump,trump,republican,FALSE,total,10",
        "ZZ,1,A County,A,P3,Donald Trump,trump,constitution,FALSE,total,10",
        "ZZ,1,A County,A,P4,Donald Trump,trump,republican,FALSE,total,10",
    ]
    election = MedslImporter().read(synthetic(tmp_path, rows))
    assert election.meta.candidates[0].name == "Donald Trump"
    assert election.meta.candidates[0].party == "republican"
    assert election.totals() == {"Donald Trump": 40}


def test_negative_net_counts(tmp_path: Path) -> None:
    rows = [
        "ZZ,1,A County,A,P1,Ann Alpha,alpha,red,FALSE,total,100",
        "ZZ,1,A County,A,Statistical Adjustments,Ann Alpha,alpha,red,FALSE,total,-3",
        "ZZ,1,A County,A,P2,Ann Alpha,alpha,red,FALSE,election day,50",
        "ZZ,1,A County,A,P2,Ann Alpha,alpha,red,FALSE,absentee,-2",
    ]
    path = synthetic(tmp_path, rows)
    election = MedslImporter().read(path)
    assert election.totals() == {"Ann Alpha": 145}  # kept: the adjustment row is a pseudo-precinct
    clipped = MedslImporter().read(path, options={"negative": "clip"})
    assert clipped.totals() == {"Ann Alpha": 148}  # 150 - 2; the -3 cell is set to 0
    assert "Ann Alpha -3" in clipped.meta.definitions["negative_votes"]
    with pytest.raises(CountError) as info:
        MedslImporter().read(path, options={"negative": "error"})
    assert info.value.row == 3
    assert info.value.column == "votes"


def test_both_summing_strategies_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        f"ZZ,1,A County,A,P{p},Name {c},n{c},party {c % 3},{'TRUE' if c > 5 else 'FALSE'},"
        f"{mode},{(p * 7 + c * 3) % 50}"
        for p in range(6)
        for c in range(9)
        for mode in ("election day", "absentee")
    ]
    rows.append("ZZ,1,A County,A,Empty,Name 1,n1,party 1,FALSE,total,")
    path = synthetic(tmp_path, rows)
    one_hot = MedslImporter().read(path, options={"min_share": "0"})
    monkeypatch.setattr(_long, "ONE_HOT_LIMIT", 0)
    scattered = MedslImporter().read(path, options={"min_share": "0"})
    assert one_hot.stations.equals(scattered.stations)
    assert one_hot.content_digest() == scattered.content_digest()
    empty = one_hot.stations.filter(pl.col("station_name") == "Empty").row(0, named=True)
    assert empty["is_unpublished"] and empty["valid"] is None


def test_primary_with_several_parties_needs_party(tmp_path: Path) -> None:
    header = "state_po,precinct,office,stage,candidate,party,votes"
    rows = [
        "VT,P1,US PRESIDENT,PRI,BERNIE SANDERS,DEMOCRAT,10",
        "VT,P1,US PRESIDENT,PRI,DONALD TRUMP,REPUBLICAN,8",
    ]
    path = write(tmp_path, "2016-vt-primary.csv", "\n".join([header, *rows]) + "\n")
    with pytest.raises(InputError, match="--option party="):
        MedslImporter().read(path, options={"stage": "pri"})
    election = MedslImporter().read(path, options={"stage": "pri", "party": "republican"})
    assert election.totals() == {"DONALD TRUMP": 8}


def test_missing_candidate_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", "state_postal,precinct,mode,votes\nVT,P1,total,5\n")
    with pytest.raises(ColumnError) as info:
        MedslImporter().read(path)
    assert "candidate" in str(info.value) and "bad.csv" in str(info.value)


def test_non_numeric_votes(tmp_path: Path) -> None:
    rows = [
        "ZZ,1,A County,A,P1,Ann Alpha,alpha,red,FALSE,total,100",
        "ZZ,1,A County,A,P1,Bob Beta,beta,blue,FALSE,total,12x",
    ]
    with pytest.raises(CountError) as info:
        MedslImporter().read(synthetic(tmp_path, rows))
    assert info.value.row == 3
    assert info.value.column == "votes"
    assert "us_2016_test.csv" in str(info.value)


def test_bad_options(tmp_path: Path) -> None:
    path = synthetic(tmp_path, ["ZZ,1,A County,A,P1,Ann Alpha,alpha,red,FALSE,total,1"])
    with pytest.raises(PollwatchError, match="no option"):
        MedslImporter().read(path, options={"ofice": "x"})
    with pytest.raises(PollwatchError, match="min_share"):
        MedslImporter().read(path, options={"min_share": "lots"})
    with pytest.raises(PollwatchError, match="negative"):
        MedslImporter().read(path, options={"negative": "sometimes"})
    with pytest.raises(PollwatchError, match="year"):
        MedslImporter().read(path, options={"year": "20x6"})


def test_year_from_option_and_name(tmp_path: Path) -> None:
    row = ["ZZ,1,A County,A,P1,Ann Alpha,alpha,red,FALSE,total,1"]
    unnamed = MedslImporter().read(synthetic(tmp_path, row, name="precincts.csv"))
    assert unnamed.meta.id == "us-zz-president-medsl" and unnamed.meta.date == ""
    chosen = MedslImporter().read(
        synthetic(tmp_path, row, name="precincts.csv"), options={"year": "2012"}
    )
    assert chosen.meta.id == "us-zz-2012-president-medsl"
    assert chosen.meta.date == "2012-11-06"


def test_gzip_and_detect(tmp_path: Path) -> None:
    text = HEADER_2016 + "\nZZ,1,A County,A,P1,Ann Alpha,alpha,red,FALSE,total,4\n"
    path = tmp_path / "us_2016.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert MedslImporter().detect(path) >= 0.9
    assert get_importer("openelections").detect(path) == 0.0
    assert MedslImporter().read(path).totals() == {"Ann Alpha": 4}
    other = write(tmp_path, "oe.csv", "county,precinct,office,district,party,candidate,votes\n")
    assert MedslImporter().detect(other) == 0.0


@pytest.mark.parametrize(
    ("precinct", "pseudo"),
    [
        ("Total", True),
        ("ABSENTEE", True),
        ("# AB - Central Absentee Precinct", True),
        ("AB", True),
        ("[Jurisdiction-wide]", True),
        ("[County-wide]", True),
        ("Early Voting", True),
        ("District 12 - Early Voting", True),
        ("Provisional Votes", True),
        ("Failsafe Provisional", True),
        ("Statistical Adjustments", True),
        ("Write-ins", True),
        ("559999", True),
        ("Wayne Over/Fed - Overseas", True),
        ("Cranston Presidential; 733", True),
        ("Middletown Limited; 1906", True),
        ("FED 30-3097", True),
        ("Atlantic City hand", True),
        ("District 10 - Question", True),
        ("One Stop", True),
        ("2070 - CENTRAL PARK RECR", False),
        ("Federal Building", False),
        ("FEDERAL DAM|105", False),
        ("Early Branch", False),
        ("NORTHWEST EARLY CHILDHOOD CTR", False),
        ("HOLLIS HAND", False),
        ("TUCANNON - VB MAIL", False),
        ("FORESTVILLE MILITARY ACADEMY|pplaceid: 10853", False),
        ("3703 - COUNTY", False),
        ("Ward 2", False),
    ],
)
def test_pseudo_precinct_rule(precinct: str, pseudo: bool) -> None:
    frame = pl.DataFrame({"p": [precinct]})
    assert frame.select(_long.pseudo_precinct_expr("p")).item() is pseudo
