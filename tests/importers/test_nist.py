"""Tests of the nist-1500-100 importer and exporter (NIST SP 1500-100 v2 JSON).

A small report is written by hand here (precincts, splits of a combined precinct, county and state
units, count types, suppressed counts, ballot and other counts, a second contest) and read back to
exact numbers; schema and JSON errors must name the file and the JSON path; exports must be
schema-valid (checked with ``jsonschema`` itself) and read back to the same election. The fast
schema check (fastjsonschema) is tested against :class:`jsonschema.Draft4Validator` on random
damage.
"""

from __future__ import annotations

import copy
import gzip
import json
import tempfile
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from pollwatch.errors import (
    CountError,
    FormatError,
    InputError,
    PollwatchError,
    SchemaError,
)
from pollwatch.results.importers import get_importer, import_file
from pollwatch.results.importers.nist import (
    SCHEMA_FILE,
    NistImporter,
    export_nist,
    load_schema,
    validate_report,
)
from pollwatch.results.importers.nist.schema import json_path
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election

IMPORTER = get_importer("nist-1500-100")
SHARED_SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "nist-sp-1500-100-v2"

# --- a hand-written report -------------------------------------------------------------------


def _text(content: str) -> dict[str, Any]:
    return {
        "@type": "ElectionResults.InternationalizedText",
        "Text": [
            {"@type": "ElectionResults.LanguageString", "Content": content, "Language": "en"},
            {
                "@type": "ElectionResults.LanguageString",
                "Content": content.upper(),
                "Language": "es",
            },
        ],
    }


def _unit(unit_id: str, kind: str, name: str, **more: Any) -> dict[str, Any]:
    return {
        "@id": unit_id,
        "@type": "ElectionResults.ReportingUnit",
        "Type": kind,
        "Name": _text(name),
        **more,
    }


def _counts(*entries: tuple[str, str, float]) -> list[dict[str, Any]]:
    return [
        {"@type": "ElectionResults.VoteCounts", "GpUnitId": unit, "Type": kind, "Count": count}
        for unit, kind, count in entries
    ]


def report() -> dict[str, Any]:
    """A precinct-level report of a presidential contest and a ballot measure."""
    smith = _counts(
        ("p1", "total", 300),
        ("p1", "election-day", 200),  # a breakdown next to the total: not added again
        ("p1", "absentee", 100),
        ("p2", "election-day", 150),  # no total: the types add up
        ("p2", "absentee", 60),
        ("cp3", "total", 170),  # the combined precinct: an aggregate of p3a + p3b
        ("p3a", "total", 100),
        ("p3b", "election-day", 50),
        ("p3b", "absentee", 20),
        ("p3b", "absentee-mail", 20),  # part of 'absentee' above
        ("p4", "total", 120),
        ("us", "total", 800),  # a country total: not a station
    )
    jones = _counts(
        ("p1", "total", 280),
        ("p2", "total", 270.0),  # an integral float is a count
        ("cp3", "total", 130),
        ("p3a", "total", 90),
        ("p3b", "total", 40),
        ("p4", "total", 0),
    )
    jones[-1]["IsSuppressedForPrivacy"] = True
    return {
        "@type": "ElectionResults.ElectionReport",
        "Format": "precinct-level",
        "GeneratedDate": "2024-11-06T08:00:00-05:00",
        "Issuer": "Test County Board of Elections",
        "IssuerAbbreviation": "TCBE",
        "SequenceStart": 1,
        "SequenceEnd": 1,
        "Status": "unofficial-complete",
        "VendorApplicationId": "handwritten 1.0",
        "GpUnit": [
            _unit(
                "us",
                "country",
                "United States",
                ComposingGpUnitIds=["st-ny"],
                ExternalIdentifier=[
                    {
                        "@type": "ElectionResults.ExternalIdentifier",
                        "Type": "ocd-id",
                        "Value": "ocd-division/country:us",
                    }
                ],
            ),
            _unit("st-ny", "state", "New York", ComposingGpUnitIds=["cty-a", "cty-b"]),
            _unit("cty-a", "county", "Albany", ComposingGpUnitIds=["p1", "p2", "cp3"]),
            _unit("cty-b", "county", "Bronx", ComposingGpUnitIds=["p4", "p5"]),
            _unit("p1", "precinct", "Precinct 1", VotersRegistered=1000, VotersParticipated=600),
            _unit("p2", "precinct", "Precinct 2", VotersRegistered=800, VotersParticipated=500),
            _unit("cp3", "combined-precinct", "Precinct 3", ComposingGpUnitIds=["p3a", "p3b"]),
            _unit(
                "p3a", "split-precinct", "Precinct 3A", VotersRegistered=300, VotersParticipated=200
            ),
            _unit("p3b", "split-precinct", "Precinct 3B", VotersRegistered=200),
            _unit(
                "p4",
                "polling-place",
                "Mail 4",
                IsMailOnly=True,
                VotersRegistered=500,
                VotersParticipated=250,
            ),
            _unit("p5", "precinct", "Precinct 5", VotersRegistered=100),
        ],
        "Party": [
            {"@id": "p-dem", "@type": "ElectionResults.Party", "Name": _text("Democratic")},
            {"@id": "p-rep", "@type": "ElectionResults.Party", "Name": _text("Republican")},
        ],
        "Election": [
            {
                "@type": "ElectionResults.Election",
                "ElectionScopeId": "us",
                "Name": _text("General Election 2024"),
                "StartDate": "2024-11-05",
                "EndDate": "2024-11-05",
                "Type": "general",
                "Candidate": [
                    {
                        "@id": "c-smith",
                        "@type": "ElectionResults.Candidate",
                        "BallotName": _text("Jane Smith"),
                        "PartyId": "p-dem",
                    },
                    {
                        "@id": "c-jones",
                        "@type": "ElectionResults.Candidate",
                        "BallotName": _text("John Jones"),
                        "PartyId": "p-rep",
                    },
                ],
                "BallotCounts": [
                    {
                        "@type": "ElectionResults.BallotCounts",
                        "GpUnitId": "p1",
                        "Type": "total",
                        "BallotsCast": 610,
                    },
                    {
                        "@type": "ElectionResults.BallotCounts",
                        "GpUnitId": "p3b",
                        "Type": "total",
                        "BallotsCast": 120,
                    },
                ],
                "Contest": [
                    {
                        "@id": "k-pres",
                        "@type": "ElectionResults.CandidateContest",
                        "Name": "President",
                        "ElectionDistrictId": "us",
                        "VotesAllowed": 1,
                        "ContestSelection": [
                            {
                                "@id": "s-smith",
                                "@type": "ElectionResults.CandidateSelection",
                                "CandidateIds": ["c-smith"],
                                "VoteCounts": smith,
                            },
                            {
                                "@id": "s-jones",
                                "@type": "ElectionResults.CandidateSelection",
                                "CandidateIds": ["c-jones"],
                                "VoteCounts": jones,
                            },
                            {
                                "@id": "s-write-in",
                                "@type": "ElectionResults.CandidateSelection",
                                "IsWriteIn": True,
                                "VoteCounts": _counts(("p1", "total", 5), ("p2", "total", 3)),
                            },
                        ],
                        "OtherCounts": [
                            {
                                "@type": "ElectionResults.OtherCounts",
                                "GpUnitId": "p1",
                                "Overvotes": 5,
                                "Undervotes": 10,
                            },
                            {
                                "@type": "ElectionResults.OtherCounts",
                                "GpUnitId": "p2",
                                "Overvotes": 2,
                            },
                            {
                                "@type": "ElectionResults.OtherCounts",
                                "GpUnitId": "p4",
                                "WriteIns": 4,
                            },
                        ],
                    },
                    {
                        "@id": "k-measure",
                        "@type": "ElectionResults.BallotMeasureContest",
                        "Name": "Measure 1",
                        "ElectionDistrictId": "us",
                        "ContestSelection": [
                            {
                                "@id": "s-yes",
                                "@type": "ElectionResults.BallotMeasureSelection",
                                "Selection": _text("Yes"),
                                "VoteCounts": _counts(("p1", "total", 400), ("p2", "total", 250)),
                            },
                            {
                                "@id": "s-no",
                                "@type": "ElectionResults.BallotMeasureSelection",
                                "Selection": _text("No"),
                                "VoteCounts": _counts(("p1", "total", 150), ("p2", "total", 200)),
                            },
                        ],
                    },
                ],
            }
        ],
    }


def write(folder: Path, document: Any, name: str = "report.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def column(election: Election, name: str) -> list[Any]:
    return election.stations[name].to_list()


# --- reading ------------------------------------------------------------------------------------


def test_handwritten_report_reads_to_exact_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, report())
    election = IMPORTER.read(path)
    assert election.totals() == {"Jane Smith": 800, "John Jones": 680, "Write-in": 8}
    assert column(election, "station_id") == ["p1", "p2", "p3a", "p3b", "p4", "p5"]
    assert column(election, "Jane Smith") == [300, 210, 100, 70, 120, None]
    assert column(election, "John Jones") == [280, 270, 90, 40, None, None]  # p4 suppressed
    assert column(election, "registered") == [1000, 800, 300, 200, 500, 100]
    assert column(election, "ballots_cast") == [610, 500, 200, 120, 250, None]
    assert column(election, "valid") == [585, 483, 190, 110, 124, None]
    assert column(election, "invalid") == [15, 2, None, None, None, None]
    assert column(election, "region") == ["New York"] * 6
    assert column(election, "district") == ["Albany"] * 4 + ["Bronx"] * 2
    assert column(election, "station_name")[:3] == ["Precinct 1", "Precinct 2", "Precinct 3A"]
    assert column(election, "station_kind") == ["ordinary"] * 4 + ["postal", "ordinary"]
    assert column(election, "is_unpublished") == [False] * 5 + [True]
    meta = election.meta
    assert (meta.id, meta.country, meta.date, meta.kind) == (
        "us-2024-president",
        "US",
        "2024-11-05",
        "general",
    )
    assert meta.contest == "President"
    assert meta.importer == "nist-1500-100"
    assert [(c.name, c.party) for c in meta.candidates] == [
        ("Jane Smith", "Democratic"),
        ("John Jones", "Republican"),
        ("Write-in", None),
    ]
    assert meta.hierarchy_labels == {"region": "state", "district": "county"}
    assert meta.source_files == ("report.json",)
    assert len(meta.source_sha256) == 64
    assert "cp3" in meta.definitions["aggregate_units"]
    assert "combined-precinct, country" in meta.definitions["ignored_counts"]
    assert "(2 stations)" in meta.definitions["ballots_cast"]


def test_language_option_picks_the_names(tmp_path: Path) -> None:
    election = IMPORTER.read(write(tmp_path, report()), options={"language": "es"})
    assert [c.name for c in election.meta.candidates][:2] == ["JANE SMITH", "JOHN JONES"]
    assert column(election, "region")[0] == "NEW YORK"


def test_contest_option_by_name_reads_a_ballot_measure(tmp_path: Path) -> None:
    path = write(tmp_path, report())
    by_name = IMPORTER.read(path, options={"contest": "measure 1"})
    by_id = IMPORTER.read(path, options={"contest": "k-measure"})
    assert by_name.content_digest() == by_id.content_digest()
    assert by_name.totals() == {"Yes": 650, "No": 350}
    assert by_name.meta.kind == "referendum"
    # p1, p2 counted; the lowest precinct-like units of the district without counts are
    # unpublished stations (not cp3, which is made of p3a and p3b)
    assert column(by_name, "station_id") == ["p1", "p2", "p3a", "p3b", "p4", "p5"]
    assert column(by_name, "is_unpublished") == [False, False, True, True, True, True]


def test_station_types_option_reads_another_level(tmp_path: Path) -> None:
    election = IMPORTER.read(
        write(tmp_path, report()), options={"station_types": "combined-precinct,country"}
    )
    # cp3 is below us: us is the aggregate, cp3 the station
    assert column(election, "station_id") == ["cp3"]
    assert election.totals() == {"Jane Smith": 170, "John Jones": 130, "Write-in": 0}


def test_several_candidate_contests_need_the_option(tmp_path: Path) -> None:
    document = report()
    contests = document["Election"][0]["Contest"]
    second = copy.deepcopy(contests[0])
    second["@id"], second["Name"] = "k-senate", "Senator"
    contests.append(second)
    path = write(tmp_path, document)
    with pytest.raises(InputError) as caught:
        IMPORTER.read(path)
    message = str(caught.value)
    assert str(path) in message
    assert "3 contests (2 candidate contests)" in message
    for listed in ("'k-pres' 'President'", "'k-senate' 'Senator'", "'k-measure' 'Measure 1'"):
        assert listed in message
    assert "--option contest=" in message
    assert IMPORTER.read(path, options={"contest": "k-senate"}).meta.contest == "Senator"
    with pytest.raises(InputError, match="no contest 'Mayor'"):
        IMPORTER.read(path, options={"contest": "Mayor"})


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PollwatchError, match="no option 'contset'"):
        IMPORTER.read(write(tmp_path, report()), options={"contset": "k-pres"})
    with pytest.raises(InputError, match="unknown ReportingUnit type"):
        IMPORTER.read(write(tmp_path, report()), options={"station_types": "precint"})


def test_first_round_only(tmp_path: Path) -> None:
    document = report()
    selections = document["Election"][0]["Contest"][0]["ContestSelection"]
    for selection in selections:
        for count in selection["VoteCounts"]:
            count["Round"] = 1
    later = copy.deepcopy(selections[0]["VoteCounts"][0])
    later["Round"], later["Count"] = 2, 999
    selections[0]["VoteCounts"].append(later)
    election = IMPORTER.read(write(tmp_path, document))
    assert election.totals()["Jane Smith"] == 800
    assert "round 1" in election.meta.definitions["rounds"]


def test_gzip_and_zip_sources(tmp_path: Path) -> None:
    text = json.dumps(report()).encode("utf-8")
    gz = tmp_path / "report.json.gz"
    gz.write_bytes(gzip.compress(text))
    assert IMPORTER.detect(gz) == 0.95
    assert IMPORTER.read(gz).totals()["Jane Smith"] == 800


# --- bad input -----------------------------------------------------------------------------------


def test_schema_error_names_file_and_json_path(tmp_path: Path) -> None:
    document = report()
    document["Election"][0]["Contest"][0]["ContestSelection"][1]["VoteCounts"][2]["Count"] = "130"
    path = write(tmp_path, document)
    with pytest.raises(SchemaError) as caught:
        IMPORTER.read(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert "$.Election[0].Contest[0].ContestSelection[1].VoteCounts[2].Count" in message
    assert "'130' is not of type 'number'" in message
    assert "NIST SP 1500-100 v2 JSON schema" in message  # the hint


@pytest.mark.parametrize(
    ("damage", "where", "says"),
    [
        (lambda d: d.pop("Issuer"), "$:", "'Issuer' is a required property"),
        (
            lambda d: d["GpUnit"][4].update(Precinct="1"),
            "$.GpUnit[4]:",
            "Additional properties are not allowed ('Precinct' was unexpected)",
        ),
        (
            lambda d: d["GpUnit"][2].update(Type="shire"),
            "$.GpUnit[2].Type:",
            "'shire' is not one of",
        ),
        (
            lambda d: d["Election"][0]["Contest"][0]["ContestSelection"][0].update(
                {"@type": "ElectionResults.Selection"}
            ),
            "$.Election[0].Contest[0].ContestSelection[0]:",
            "'@type' 'ElectionResults.Selection' is not allowed here",
        ),
        (
            lambda d: d.update(GeneratedDate="yesterday"),
            "$.GeneratedDate:",
            "does not match",
        ),
        (
            lambda d: d["Election"][0]["Candidate"][0]["BallotName"].update(Text=[]),
            "$.Election[0].Candidate[0].BallotName.Text:",
            "[] should be non-empty",
        ),
    ],
)
def test_schema_errors(tmp_path: Path, damage: Any, where: str, says: str) -> None:
    document = report()
    damage(document)
    with pytest.raises(SchemaError) as caught:
        IMPORTER.read(write(tmp_path, document))
    assert f"{where} " in str(caught.value)
    assert says in str(caught.value)


def test_wrong_root_type_is_a_schema_error(tmp_path: Path) -> None:
    document = report()
    document["@type"] = "ElectionResults.Election"
    with pytest.raises(SchemaError, match=r"\$\['@type'\]: not an NIST SP 1500-100 election"):
        IMPORTER.read(write(tmp_path, document))
    with pytest.raises(SchemaError, match="root is a JSON list"):
        IMPORTER.read(write(tmp_path, [report()]))


def test_not_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "@type": "ElectionResults.ElectionReport",\n  "Format" "x"\n}\n')
    with pytest.raises(FormatError) as caught:
        IMPORTER.read(path)
    assert caught.value.row == 3
    assert "not valid JSON: Expecting ':' delimiter at line 3, column 12" in str(caught.value)
    path.write_text('{"@type": "ElectionResults.ElectionReport", "SequenceEnd": NaN}')
    with pytest.raises(FormatError, match="NaN is not a JSON number"):
        IMPORTER.read(path)
    path.write_bytes(b"")
    with pytest.raises(FormatError, match="file is empty"):
        IMPORTER.read(path)
    path.write_bytes('{"a": "é"}'.encode("latin-1"))
    with pytest.raises(FormatError, match="not valid utf-8"):
        IMPORTER.read(path)


def test_broken_references_are_format_errors(tmp_path: Path) -> None:
    document = report()
    document["Election"][0]["Contest"][0]["ContestSelection"][0]["VoteCounts"][3]["GpUnitId"] = "p9"
    with pytest.raises(FormatError) as caught:
        IMPORTER.read(write(tmp_path, document))
    assert "$.Election[0].Contest[0].ContestSelection[0].VoteCounts[3].GpUnitId" in str(
        caught.value
    )
    assert "'p9' is not in the report's GpUnit list" in str(caught.value)

    document = report()
    document["GpUnit"][5]["@id"] = "p1"
    with pytest.raises(FormatError, match=r"\$\.GpUnit\[5\]\['@id'\]: duplicate GpUnit @id 'p1'"):
        IMPORTER.read(write(tmp_path, document))

    document = report()
    document["Election"][0]["Contest"][0]["ContestSelection"][1]["CandidateIds"] = ["c-nobody"]
    with pytest.raises(FormatError, match="candidate 'c-nobody' is not in the Election"):
        IMPORTER.read(write(tmp_path, document))

    document = report()
    document["GpUnit"][3]["ComposingGpUnitIds"].append("p6")
    with pytest.raises(FormatError, match=r"GpUnit\[3\]\.ComposingGpUnitIds\[2\]"):
        IMPORTER.read(write(tmp_path, document))


@pytest.mark.parametrize("bad", [12.5, -3, 1e300])
def test_counts_must_be_whole_and_non_negative(tmp_path: Path, bad: float) -> None:
    document = report()
    document["Election"][0]["Contest"][0]["ContestSelection"][0]["VoteCounts"][6]["Count"] = bad
    with pytest.raises(CountError) as caught:
        IMPORTER.read(write(tmp_path, document))
    assert "$.Election[0].Contest[0].ContestSelection[0].VoteCounts[6].Count" in str(caught.value)


def test_negative_registered_is_a_count_error(tmp_path: Path) -> None:
    document = report()
    document["GpUnit"][4]["VotersRegistered"] = -1
    with pytest.raises(CountError, match=r"\$\.GpUnit\[4\]\.VotersRegistered"):
        IMPORTER.read(write(tmp_path, document))


def test_no_station_level_counts(tmp_path: Path) -> None:
    document = report()
    contest = document["Election"][0]["Contest"][0]
    for selection in contest["ContestSelection"]:
        selection["VoteCounts"] = [c for c in selection["VoteCounts"] if c["GpUnitId"] == "us"]
    document["GpUnit"][0]["ComposingGpUnitIds"] = []
    with pytest.raises(FormatError, match="counts are at: country") as caught:
        IMPORTER.read(write(tmp_path, document))
    assert "station_types" in str(caught.value)


def test_detect(tmp_path: Path) -> None:
    assert IMPORTER.detect(write(tmp_path, report())) == 0.95
    # an ElectionReport whose @type is written last still looks like NIST
    document = report()
    del document["@type"]
    tail_typed = write(tmp_path, {**document, "@type": "ElectionResults.ElectionReport"}, "t.json")
    assert IMPORTER.detect(tail_typed) >= 0.5
    assert IMPORTER.detect(write(tmp_path, {"@type": "Other"}, "other.json")) == 0.0
    csv = tmp_path / "table.csv"
    csv.write_text("station,votes\n1,2\n")
    assert IMPORTER.detect(csv) == 0.0
    assert IMPORTER.detect(tmp_path / "missing.json") == 0.0
    assert IMPORTER.detect(tmp_path) == 0.0


# --- the schema ----------------------------------------------------------------------------------


def test_schema_ships_with_the_package() -> None:
    folder = resources.files("pollwatch.results.importers").joinpath("schemas")
    assert folder.joinpath(SCHEMA_FILE).is_file()
    assert "NIST-developed software" in folder.joinpath("NIST_LICENSE.txt").read_text("latin-1")
    schema = load_schema()
    Draft4Validator.check_schema(schema)
    assert schema["$ref"] == "#/definitions/ElectionResults.ElectionReport"


def test_shipped_schema_is_the_published_one() -> None:
    published = SHARED_SPEC / SCHEMA_FILE
    if not published.is_file():
        pytest.skip(f"the shared specs folder is absent ({published})")
    shipped = resources.files("pollwatch.results.importers").joinpath("schemas", SCHEMA_FILE)
    assert shipped.read_bytes() == published.read_bytes()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, member in value.items():
            found += _paths(member, (*prefix, key))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            found += _paths(member, (*prefix, index))
    return found


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-2, 2, allow_nan=False),
    st.sampled_from(
        [
            "total",
            "precinct",
            "x",
            "",
            "2024-01-01",
            "ElectionResults.VoteCounts",
            "ElectionResults.LanguageString",
            "ElectionResults.CandidateSelection",
        ]
    ),
)
JSON_VALUES = st.one_of(
    JSON_LEAVES,
    st.lists(JSON_LEAVES, max_size=2),
    st.dictionaries(st.sampled_from(["@type", "Text", "a"]), JSON_LEAVES, max_size=2),
)


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


SMALL_DOCUMENT = report()
del SMALL_DOCUMENT["Election"][0]["Contest"][1]  # smaller, so jsonschema checks it faster
SMALL_PATHS = _paths(SMALL_DOCUMENT)[1:]
OBJECT_PATHS = [p for p in _paths(SMALL_DOCUMENT) if isinstance(_at(SMALL_DOCUMENT, p), dict)]


DAMAGE = st.one_of(
    st.tuples(st.just("replace"), st.sampled_from(SMALL_PATHS), JSON_VALUES, st.just("")),
    st.tuples(st.just("delete"), st.sampled_from(SMALL_PATHS), st.none(), st.just("")),
    st.tuples(
        st.just("add"),
        st.sampled_from(OBJECT_PATHS),
        JSON_VALUES,
        st.sampled_from(["@type", "@id", "Count", "Type", "Name", "Extra", "VotesAllowed"]),
    ),
)


COUNT_0 = ("Election", 0, "Contest", 0, "ContestSelection", 0, "VoteCounts", 0)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damage=DAMAGE)
@example(damage=("replace", ("SequenceStart",), True, ""))  # a bool is not an integer
@example(damage=("replace", ("GpUnit", 4, "VotersRegistered"), 1.0, ""))  # nor 1.0 in draft-04
@example(damage=("replace", (*COUNT_0, "Count"), False, ""))  # nor a number
@example(damage=("replace", (*COUNT_0, "Count"), 1.5, ""))  # but 1.5 is a number
@example(damage=("replace", ("GeneratedDate",), "2024-01-01", ""))  # pattern
@example(damage=("replace", ("GeneratedDate",), "x2024-01-01T00:00:00Zx", ""))  # unanchored
@example(damage=("replace", ("GpUnit", 1, "Name", "Text", 0, "@type"), "x", ""))  # enum
@example(damage=("add", ("GpUnit", 4), 1, "Extra"))  # additionalProperties
@example(damage=("delete", ("GpUnit", 0, "@type"), None, ""))  # oneOf without @type
def test_fast_validation_agrees_with_jsonschema(
    damage: tuple[str, tuple[Any, ...], Any, str],
) -> None:
    """Damage one place of a valid report: fastjsonschema's verdict is jsonschema's."""
    operation, path, value, key = damage
    document = copy.deepcopy(SMALL_DOCUMENT)
    if operation == "add":
        _at(document, path)[key] = value
    elif operation == "delete":
        del _at(document, path[:-1])[path[-1]]
    else:
        _at(document, path[:-1])[path[-1]] = value
    first = next(iter(Draft4Validator(load_schema()).iter_errors(document)), None)
    if first is None:
        validate_report(document, "damaged.json")
    else:
        with pytest.raises(SchemaError):
            validate_report(document, "damaged.json")


# --- export and round trips --------------------------------------------------------------------


def synthetic(stations: int, candidates: int, seed: int = 7) -> Election:
    rng = np.random.default_rng(seed)
    registered = rng.integers(200, 3000, stations)
    cast = (registered * rng.uniform(0.3, 0.9, stations)).astype(np.int64)
    invalid = (cast * 0.02).astype(np.int64)
    shares = rng.dirichlet(np.ones(candidates), stations)
    votes = np.floor(shares * (cast - invalid)[:, None]).astype(np.int64)
    data: dict[str, Any] = {
        "station_id": [f"{i // 100}/{i}" for i in range(stations)],
        "region": [f"Region {i % 7}" for i in range(stations)],
        "district": [f"District {i % 40}" for i in range(stations)],
        "registered": registered,
        "ballots_cast": cast,
        "valid": votes.sum(axis=1),
        "invalid": invalid,
    }
    people = []
    for k in range(candidates):
        data[f"c{k}"] = votes[:, k]
        people.append(Candidate(f"Candidate {k}", f"c{k}", f"Party {k % 3}" if k else None))
    meta = ElectionMeta(
        id="synthetic-2024",
        country="RU",
        date="2024-03-17",
        kind="presidential",
        contest="President",
        source="synthetic",
        license="CC0-1.0",
        importer="test",
        candidates=tuple(people),
    )
    return make_election(meta, pl.DataFrame(data))


def test_export_is_schema_valid_by_jsonschema(tmp_path: Path) -> None:
    example = IMPORTER.example(tmp_path)
    document = json.loads(example.path.read_text("utf-8"))
    assert list(Draft4Validator(load_schema()).iter_errors(document)) == []
    assert document["Format"] == "precinct-level"
    ids = [u["@id"] for u in document["GpUnit"]]
    assert len(ids) == len(set(ids))


def test_round_trip_keeps_everything_nist_can_hold(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "station_id": ["12/1", "12/2", "12 3", "abroad-1", "e"],
            "region": ["Москва", "Москва", "Тверь", None, None],
            "district": ["ТИК 1", "ТИК 2", None, None, None],
            "municipality": ["A", None, None, None, None],
            "station_name": ["УИК №1", None, "UIK 3", "Consulate", "E-voting"],
            "station_kind": ["ordinary", "hospital", "ordinary", "abroad", "evoting"],
            "registered": [1000, 50, None, 300, 10000],
            "ballots_cast": [700, 49, 10, 120, 8000],
            "valid": [690, 60, 10, 119, 8000],  # 60 > 48 + 0: the rest travels as write-ins
            "invalid": [10, 1, None, 1, 0],
            "Иванов": [400, 40, 6, 100, 5000],
            "Петров": [290, 8, None, 19, 3000],
            "is_abroad": [False, False, False, True, False],
            "is_evoting": [False, False, False, False, True],
            "is_pseudo_station": [False, False, False, False, True],
        }
    )
    meta = ElectionMeta(
        id="ru-2024-test",
        country="RU",
        date="2024-03-17",
        kind="presidential",
        contest="Выборы Президента",
        source="synthetic",
        license="CC0-1.0",
        importer="test",
        candidates=(Candidate("Иванов", "Иванов", "Партия"), Candidate("Петров", "Петров")),
        round=1,
        hierarchy_labels={"region": "субъект РФ", "district": "ТИК"},
    )
    election = make_election(meta, frame)
    path = tmp_path / "out.json"
    NistImporter().write(election, path)
    back = IMPORTER.read(path)
    same = [
        "station_id",
        "region",
        "district",
        "municipality",
        "station_kind",
        "registered",
        "ballots_cast",
        "invalid",
        "Иванов",
        "Петров",
        "is_abroad",
        "is_evoting",
        "is_pseudo_station",
    ]
    assert back.stations.select(same).equals(election.stations.select(same))
    assert column(back, "valid") == [690, 60, 6, 119, 8000]  # station 3: only the known votes
    assert column(back, "station_name") == ["УИК №1", "12/2", "UIK 3", "Consulate", "E-voting"]
    for name in ("id", "country", "date", "kind", "contest", "source", "license", "round"):
        assert getattr(back.meta, name) == getattr(meta, name), name
    assert back.meta.candidates == meta.candidates
    assert back.meta.importer == "nist-1500-100"


def test_round_trip_mid_size_election(tmp_path: Path) -> None:
    election = synthetic(2000, 5)
    path = tmp_path / "mid.json"
    started = time.perf_counter()
    export_nist(election, path, contest_name="President of Synthetica")
    exported = time.perf_counter() - started
    back = import_file(path)  # detected
    imported = time.perf_counter() - started - exported
    print(f"2,000 stations x 5 candidates: export {exported:.2f} s, import {imported:.2f} s")
    assert back.meta.importer == "nist-1500-100"
    assert back.totals() == election.totals()
    assert back.meta.contest == "President of Synthetica"
    columns = ["station_id", "region", "district", "registered", "ballots_cast", "valid", "invalid"]
    assert back.stations.select(columns).equals(election.stations.select(columns))
    assert back.summary().to_dict()["totals"] == election.summary().to_dict()["totals"]


def test_export_is_deterministic_and_atomic(tmp_path: Path) -> None:
    election = synthetic(20, 3)
    when = datetime(2024, 3, 18, tzinfo=UTC)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    export_nist(election, first, generated=when)
    export_nist(election, second, generated=when)
    assert first.read_bytes() == second.read_bytes()
    before = first.read_bytes()
    with pytest.raises(PollwatchError, match="has no ISO date"):
        export_nist(election.replace_meta(date="2024"), first)
    assert first.read_bytes() == before
    with pytest.raises(PollwatchError, match="cannot write"):
        export_nist(election, tmp_path / "no-such-folder" / "x.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_export_refuses_what_fails_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pollwatch.results.importers.nist import writer

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        document = report()
        del document["Status"]
        return document

    monkeypatch.setattr(writer, "_build_report", broken)
    target = tmp_path / "x.json"
    with pytest.raises(SchemaError, match="'Status' is a required property"):
        export_nist(synthetic(3, 2), target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_validate_report_accepts_the_handwritten_report() -> None:
    validate_report(report(), "memory")
    assert list(Draft4Validator(load_schema()).iter_errors(report())) == []


def test_importer_class_exports() -> None:
    assert isinstance(IMPORTER, NistImporter)
    assert callable(IMPORTER.write)


def test_signed_adjustment_rows_round_trip(tmp_path: Path) -> None:
    """Negative counts pass only on pseudo-stations (adjustment rows), as in the data model."""
    frame = pl.DataFrame(
        {
            "station_id": ["1", "adjustment"],
            "ballots_cast": [100, -3],
            "valid": [100, -3],
            "A": [60, -1],
            "B": [40, -2],
            "is_pseudo_station": [False, True],
        }
    )
    meta = ElectionMeta(
        id="adjusted",
        country="US",
        date="2022-11-08",
        kind="general",
        contest="Governor",
        source="synthetic",
        license="",
        importer="test",
        candidates=(Candidate("A", "A"), Candidate("B", "B")),
    )
    election = make_election(meta, frame)
    path = tmp_path / "adjusted.json"
    export_nist(election, path)
    back = IMPORTER.read(path)
    assert back.totals() == {"A": 59, "B": 38}
    assert column(back, "ballots_cast") == [100, -3]
    assert column(back, "is_pseudo_station") == [False, True]
    document = json.loads(path.read_text("utf-8"))
    for unit in document["GpUnit"]:
        unit.pop("ExternalIdentifier", None)  # without the flag, a negative count is refused
    with pytest.raises(CountError, match="is not a whole count"):
        IMPORTER.read(write(tmp_path, document))


# --- bad units: the quarantine -------------------------------------------------------------------

SMITH = ("Election", 0, "Contest", 0, "ContestSelection", 0, "VoteCounts")
JONES = ("Election", 0, "Contest", 0, "ContestSelection", 1, "VoteCounts")


def _damaged_report() -> dict[str, Any]:
    """The hand-written report with one bad object at each of p2, p3a, p4, p5 and a ghost unit."""
    document = report()
    _at(document, JONES)[1]["Count"] = -5  # p2: negative
    _at(document, SMITH)[6]["Count"] = "100"  # p3a: a string, which the schema refuses
    del _at(document, SMITH)[10]["Count"]  # p4: missing, which the schema refuses too
    document["GpUnit"][10]["VotersRegistered"] = -1  # p5 (unpublished): negative registered
    write_ins = document["Election"][0]["Contest"][0]["ContestSelection"][2]["VoteCounts"]
    write_ins.append(
        {"@type": "ElectionResults.VoteCounts", "GpUnitId": "ghost", "Type": "total", "Count": 3}
    )
    return document


def test_bad_units_are_set_aside_with_pointer_and_reason(tmp_path: Path) -> None:
    from pollwatch.results.importers.nist.reader import MISSING_COUNT, UNKNOWN_UNIT
    from pollwatch.results.quarantine import NEGATIVE_COUNT, NOT_WHOLE_NUMBER

    path = write(tmp_path, _damaged_report())
    election = import_file(path)
    # p3b stays a station: the combined precinct cp3 is still an aggregate of p3a and p3b
    assert column(election, "station_id") == ["p1", "p3b"]
    assert column(election, "Jane Smith") == [300, 70]
    assert column(election, "John Jones") == [280, 40]
    assert column(election, "valid") == [585, 110]
    assert column(election, "ballots_cast") == [610, 120]
    rows = [(r.cells[0], r.pointer, r.column, r.reason, r.line) for r in election.quarantine]
    selection = "/Election/0/Contest/0/ContestSelection"
    assert rows == [
        ("p2", f"{selection}/1/VoteCounts/1", "Count", NEGATIVE_COUNT, 0),
        ("p3a", f"{selection}/0/VoteCounts/6", "Count", NOT_WHOLE_NUMBER, 0),
        ("p4", f"{selection}/0/VoteCounts/10", "Count", MISSING_COUNT, 0),
        ("p5", "/GpUnit/10", "VotersRegistered", NEGATIVE_COUNT, 0),
        ("ghost", f"{selection}/2/VoteCounts/2", "GpUnitId", UNKNOWN_UNIT, 0),
    ]
    p2 = election.quarantine.rows[0]
    assert p2.cells == (
        "p2",
        "Count=-5",
        "Jane Smith election-day=150",
        "Jane Smith absentee=60",
        "John Jones total=-5",
        "Write-in total=3",
    )
    assert p2.detail.startswith("$.Election[0].Contest[0].ContestSelection[1].VoteCounts[1].Count")
    assert p2.source == str(path)
    assert election.quarantine.rows[2].cells[1] == "Count=missing"
    assert election.quarantine.rows_checked >= len(election) + 5
    assert election.summary().set_aside == 5
    assert "2 negative count" in election.quarantine.one_line()


def test_strict_fails_on_the_first_bad_object_as_before(tmp_path: Path) -> None:
    document = report()
    _at(document, JONES)[1]["Count"] = -5
    _at(document, SMITH)[6]["Count"] = 12.5
    path = write(tmp_path, document)
    with pytest.raises(CountError) as caught:
        import_file(path, strict=True)
    message = str(caught.value)
    assert "\n" not in message
    # every bad number is named before a negative one, as pollwatch always did
    assert "$.Election[0].Contest[0].ContestSelection[0].VoteCounts[6].Count: 12.5" in message
    with pytest.raises(SchemaError, match=r"VoteCounts\[6\]\.Count: '100' is not of type"):
        import_file(write(tmp_path, _damaged_report(), "damaged.json"), strict=True)
    assert len(import_file(path).quarantine) == 2


def test_a_selection_naming_an_unknown_candidate_sets_its_units_aside(tmp_path: Path) -> None:
    from pollwatch.results.importers.nist.reader import UNKNOWN_CANDIDATE

    document = report()
    nobody = copy.deepcopy(document["Election"][0]["Contest"][0]["ContestSelection"][2])
    nobody.update({"@id": "s-nobody", "CandidateIds": ["c-nobody"], "IsWriteIn": False})
    nobody["VoteCounts"] = _counts(("p4", "total", 9))
    document["Election"][0]["Contest"][0]["ContestSelection"].append(nobody)
    election = import_file(write(tmp_path, document))
    assert column(election, "station_id") == ["p1", "p2", "p3a", "p3b", "p5"]
    assert [c.name for c in election.meta.candidates] == ["Jane Smith", "John Jones", "Write-in"]
    (row,) = election.quarantine.rows
    assert (row.cells[0], row.reason, row.column) == ("p4", UNKNOWN_CANDIDATE, "CandidateIds")
    assert row.pointer == "/Election/0/Contest/0/ContestSelection/3/CandidateIds/0"
    assert "candidate 'c-nobody' is not in the Election" in row.detail
    with pytest.raises(FormatError, match="candidate 'c-nobody'"):
        import_file(write(tmp_path, document), strict=True)


def test_bad_counts_of_another_contest_are_not_read(tmp_path: Path) -> None:
    document = report()
    measure = document["Election"][0]["Contest"][1]["ContestSelection"][0]["VoteCounts"]
    measure[0]["Count"] = -7
    election = import_file(write(tmp_path, document))
    assert len(election.quarantine) == 0
    assert election.totals() == {"Jane Smith": 800, "John Jones": 680, "Write-in": 8}


def test_a_report_of_the_wrong_shape_still_fails_as_a_whole(tmp_path: Path) -> None:
    document = _damaged_report()
    document["GpUnit"][2]["Type"] = "shire"
    with pytest.raises(SchemaError, match=r"\$\.GpUnit\[2\]\.Type: 'shire' is not one of"):
        import_file(write(tmp_path, document))
    with pytest.raises(SchemaError, match="root is a JSON list"):
        import_file(write(tmp_path, [report()]), importer="nist-1500-100")
    every = report()
    for selection in every["Election"][0]["Contest"][0]["ContestSelection"]:
        for count in selection["VoteCounts"]:
            count["Count"] = -1
    for unit in every["GpUnit"]:
        if "VotersRegistered" in unit:
            unit["VotersRegistered"] = -1
    with pytest.raises(FormatError, match="every row was set aside"):
        import_file(write(tmp_path, every))


def test_the_store_and_the_cli_keep_the_pointers(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pollwatch.cli import main
    from pollwatch.results.store import ElectionStore

    path = write(tmp_path, _damaged_report())
    election = import_file(path)
    store = ElectionStore(tmp_path / "store")
    store.save(election)
    assert store.quarantine(election.id) == election.quarantine
    assert store.quarantine(election.id).rows[3].pointer == "/GpUnit/10"

    assert main(["import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "set aside 5 rows of" in out
    assert main(["show", "us-2024-president", "--quarantine"]) == 0
    out = capsys.readouterr().out
    assert "object" in out and "/GpUnit/10" in out and "negative count" in out
    assert main(["show", "us-2024-president", "--quarantine", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["pointer"] for row in rows][3] == "/GpUnit/10"
    assert main(["import", str(path), "--id", "strict-one", "--strict"]) != 0
    assert "strict-one" not in capsys.readouterr().out


# Each kind of bad unit the property test mixes in, and the reason it must be set aside for.
BAD_KINDS = {
    "negative": "negative count",
    "fraction": "not a whole number",
    "string": "not a whole number",
    "boolean": "not a whole number",
    "huge": "not a whole number",
    "missing": "missing count",
    "unknown-unit": "unknown unit",
    "unknown-candidate": "unknown candidate",
    "registered-negative": "negative count",
    "registered-fraction": "not a whole number",
    "ballots-negative": "negative count",
    "overvotes-negative": "negative count",
}
BAD_VALUES = {"negative": -4, "fraction": 12.5, "string": "12", "boolean": True, "huge": 2.0**60}


def _mix_bad_units(
    document: dict[str, Any], bad: list[tuple[str, int, int]]
) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Add a bad unit per ``(kind, GpUnit position, count position)``; {unit id: (reason,
    path of the object it must be set aside for)} (paths found after all the inserts)."""
    election = document["Election"][0]
    contest = election["Contest"][0]
    selections = contest["ContestSelection"]
    candidates = list(selections)  # the selections of listed candidates, before any is added
    root = document["GpUnit"][0]
    expected: dict[str, tuple[str, str]] = {}
    for number, (kind, unit_position, count_position) in enumerate(bad):
        unit_id = f"bad-{number}"
        if kind != "unknown-unit":
            unit = {
                "@id": unit_id,
                "@type": "ElectionResults.ReportingUnit",
                "Type": "precinct",
                "VotersRegistered": 900,
                "VotersParticipated": 500,
            }
            if kind == "registered-negative":
                unit["VotersRegistered"] = -3
            elif kind == "registered-fraction":
                unit["VotersRegistered"] = 2.5
            document["GpUnit"].insert(1 + unit_position % len(document["GpUnit"]), unit)
            root["ComposingGpUnitIds"].append(unit_id)
        entries: list[dict[str, Any]] = []
        for selection in candidates:
            entry: dict[str, Any] = {
                "@type": "ElectionResults.VoteCounts",
                "GpUnitId": unit_id,
                "Type": "total",
                "Count": 100,
            }
            counts = selection["VoteCounts"]
            counts.insert(count_position % (len(counts) + 1), entry)
            entries.append(entry)
        if kind in BAD_VALUES:
            entries[number % len(entries)]["Count"] = BAD_VALUES[kind]
        elif kind == "missing":
            del entries[number % len(entries)]["Count"]
        elif kind == "unknown-candidate":
            selection = {
                "@id": f"s-nobody-{number}",
                "@type": "ElectionResults.CandidateSelection",
                "CandidateIds": [f"c-nobody-{number}"],
                "VoteCounts": [{**entries[0], "Count": 7}],
            }
            selections.append(selection)
        elif kind == "ballots-negative":
            election.setdefault("BallotCounts", []).append(
                {"@type": "ElectionResults.BallotCounts", "GpUnitId": unit_id, "Type": "total",
                 "BallotsCast": -1}
            )  # fmt: skip
        elif kind == "overvotes-negative":
            contest.setdefault("OtherCounts", []).append(
                {"@type": "ElectionResults.OtherCounts", "GpUnitId": unit_id, "Overvotes": -2}
            )
        expected[unit_id] = (BAD_KINDS[kind], kind)
    return {
        unit_id: (reason, _object_of(document, unit_id, kind))
        for unit_id, (reason, kind) in expected.items()
    }


def _object_of(document: dict[str, Any], unit_id: str, kind: str) -> tuple[Any, ...]:
    """Where the bad object of ``unit_id`` ended up."""
    election = document["Election"][0]
    contest = election["Contest"][0]
    if kind.startswith("registered"):
        (index,) = [i for i, u in enumerate(document["GpUnit"]) if u["@id"] == unit_id]
        return ("GpUnit", index)
    if kind == "ballots-negative":
        (index,) = [i for i, b in enumerate(election["BallotCounts"]) if b["GpUnitId"] == unit_id]
        return ("Election", 0, "BallotCounts", index)
    if kind == "overvotes-negative":
        (index,) = [i for i, o in enumerate(contest["OtherCounts"]) if o["GpUnitId"] == unit_id]
        return ("Election", 0, "Contest", 0, "OtherCounts", index)
    if kind == "unknown-candidate":
        (index,) = [
            i
            for i, s in enumerate(contest["ContestSelection"])
            if s.get("CandidateIds", [""])[0].startswith("c-nobody")
            and s["VoteCounts"][0]["GpUnitId"] == unit_id
        ]
        return ("Election", 0, "Contest", 0, "ContestSelection", index, "CandidateIds", 0)
    for si, selection in enumerate(contest["ContestSelection"]):
        for vi, count in enumerate(selection["VoteCounts"]):
            if count["GpUnitId"] == unit_id and (
                kind == "unknown-unit" or count.get("Count", "missing") != 100
            ):
                return ("Election", 0, "Contest", 0, "ContestSelection", si, "VoteCounts", vi)
    raise AssertionError(f"no bad object of {unit_id}")


def _json_pointer(parts: tuple[Any, ...]) -> str:
    return "".join(f"/{part}" for part in parts)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bad=st.lists(
        st.tuples(st.sampled_from(sorted(BAD_KINDS)), st.integers(0, 60), st.integers(0, 60)),
        min_size=1,
        max_size=5,
    )
)
def test_every_good_unit_arrives_and_every_bad_one_is_in_the_quarantine(
    bad: list[tuple[str, int, int]],
) -> None:
    """Mix bad units into an exported report: the good ones read as before, the bad ones are
    set aside with the pointer of their object and their reason, and strict refuses the file."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        good_path = folder / "good.json"
        export_nist(synthetic(12, 3), good_path, generated=datetime(2024, 3, 18, tzinfo=UTC))
        clean = import_file(good_path)
        document = json.loads(good_path.read_text("utf-8"))
        expected = _mix_bad_units(document, bad)
        mixed = write(folder, document, "mixed.json")

        election = import_file(mixed)
        assert election.stations.equals(clean.stations)
        assert election.totals() == clean.totals()
        found = {row.cells[0]: (row.reason, row.pointer) for row in election.quarantine}
        assert found == {
            unit_id: (reason, _json_pointer(parts)) for unit_id, (reason, parts) in expected.items()
        }
        assert election.quarantine.rows_checked >= len(clean) + len(expected)

        with pytest.raises(InputError) as caught:
            import_file(mixed, strict=True)
        message = str(caught.value)
        assert "\n" not in message
        named = [json_path(parts) for _, parts in expected.values()]
        assert any(path in message for path in named), message
