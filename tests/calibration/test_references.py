"""Reference units: regions and seeded subsamples of the clean real elections.

Expected unit counts come from the data (mirror, ``shared/data``):

* Poland 2020, both rounds (PKW): 16 voivodeships, each with 720 (lubuskie) to 3,630
  (mazowieckie) stations; the 4 unpublished rows have no region;
* Germany EP 2024 (Bundeswahlleiterin): 16 Länder, the smallest Bremen with 595 rows;
* Canada 2011 (QSS): no region column, 66,060 polls -> subsamples only;
* US 2016 (MEDSL extract, 45 states + DC): 46 regions, of which DC (143 precincts), HI (247)
  and VT (275) have fewer than 300 -> 43 states.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pollwatch.calibration.references import (
    REFERENCE_DESCRIPTIONS,
    REFERENCES,
    ReferenceUnit,
    eligible,
    load_reference,
    reference_units,
    sub_election,
)
from pollwatch.errors import DatasetError, PollwatchError
from pollwatch.results.model import Election, make_election
from pollwatch.settings import Settings
from pollwatch.synthetic.simulator import simulate_clean

EXPECTED_REGIONS = {
    "poland-2020-r1": 16,
    "poland-2020-r2": 16,
    "germany-ew2024": 16,
    "canada-2011": 0,
    "us-2016": 43,
}


# --- sub-elections (no data needed) ------------------------------------------------------------
def test_sub_election_of_station_ids_has_the_right_totals() -> None:
    election = simulate_clean(stations=400, seed=3, election_id="sim")
    ids = election.stations["station_id"].to_list()[::7]
    part = sub_election(election, ids, suffix="every 7th", description="every seventh station")
    assert len(part) == len(ids)
    assert part.id == "sim.every-7th"
    assert part.meta.candidates == election.meta.candidates
    assert part.meta.source == election.meta.source
    assert part.meta.definitions["subset"] == "every seventh station"
    chosen = election.stations.filter(pl.col("station_id").is_in(ids))
    for candidate in election.meta.candidates:
        assert part.totals()[candidate.name] == chosen[candidate.column].sum()
    assert part.summary().registered == chosen["registered"].sum()
    assert part.summary().ballots_cast == chosen["ballots_cast"].sum()


def test_sub_election_by_expression_and_refusals() -> None:
    election = simulate_clean(stations=300, regions=3, seed=1, election_id="sim")
    part = sub_election(election, pl.col("region") == "Region 01", suffix="Région 01")
    assert part.id == "sim.region-01"
    assert set(part.stations["region"]) == {"Region 01"}
    assert len(part) == (election.stations["region"] == "Region 01").sum()
    with pytest.raises(PollwatchError, match="do not exist"):
        sub_election(election, ["S000001", "nope"], suffix="x")
    with pytest.raises(PollwatchError, match="has no station"):
        sub_election(election, pl.col("region") == "Nowhere", suffix="x")


def test_references_are_described() -> None:
    assert tuple(EXPECTED_REGIONS) == REFERENCES
    assert all(REFERENCE_DESCRIPTIONS[r] for r in REFERENCES)


def test_unknown_reference_and_bad_parameters(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, data_mirror=tmp_path, download=False)
    with pytest.raises(PollwatchError, match="unknown reference"):
        next(reference_units(settings, references=["atlantis-1999"]))
    with pytest.raises(PollwatchError, match="subsample_fraction"):
        next(reference_units(settings, subsample_fraction=0.0))


@pytest.mark.parametrize("reference", ["canada-2011", "us-2016", "poland-2020-r1"])
def test_missing_files_name_the_mirror_setting(tmp_path: Path, reference: str) -> None:
    empty = tmp_path / "mirror"
    empty.mkdir()
    settings = Settings(home=tmp_path / "home", data_mirror=empty, download=False)
    with pytest.raises(DatasetError, match="POLLWATCH_DATA_MIRROR"):
        next(reference_units(settings, references=[reference]))


def test_canada_without_any_mirror_names_the_setting(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, data_mirror=None, download=False)
    with pytest.raises(DatasetError, match="POLLWATCH_DATA_MIRROR"):
        load_reference(settings, "canada-2011")


# --- the real references (mirror) --------------------------------------------------------------
@pytest.fixture(scope="module")
def settings(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), data_mirror=mirror, download=False)


@pytest.fixture(scope="module")
def units(settings: Settings) -> list[ReferenceUnit]:
    return list(reference_units(settings, subsamples=5, seed=0))


def _usable(election: Election) -> pl.DataFrame:
    return election.stations.filter(eligible())


def test_unit_counts_per_reference(units: list[ReferenceUnit]) -> None:
    for reference, regions in EXPECTED_REGIONS.items():
        mine = [u for u in units if u.reference == reference]
        assert sum(u.kind == "region" for u in mine) == regions, reference
        assert sum(u.kind == "subsample" for u in mine) == 5, reference
        assert {u.kind for u in mine} <= {"region", "subsample"}


def test_each_unit_is_a_valid_election(units: list[ReferenceUnit]) -> None:
    ids = [u.election.id for u in units]
    assert len(set(ids)) == len(ids)
    for unit in units:
        election = unit.election
        again = make_election(election.meta, election.stations)
        assert again.content_digest() == election.content_digest()
        assert election.id.startswith(f"{unit.reference}.")
        assert _usable(election).height >= 300
        assert election.meta.candidates


def test_region_units_partition_the_big_regions(
    settings: Settings, units: list[ReferenceUnit]
) -> None:
    whole = load_reference(settings, "poland-2020-r1")
    regions = [u for u in units if u.reference == "poland-2020-r1" and u.kind == "region"]
    assert sum(len(u.election) for u in regions) == whole.stations["region"].is_not_null().sum()
    mazowieckie = next(u for u in regions if u.name == "mazowieckie")
    assert len(mazowieckie.election) == 3630
    total = sum(u.election.totals()["Andrzej Sebastian DUDA"] for u in regions)
    assert total == whole.totals()["Andrzej Sebastian DUDA"]


def test_subsamples_are_a_quarter_and_seeded(
    settings: Settings, units: list[ReferenceUnit]
) -> None:
    whole = load_reference(settings, "germany-ew2024")
    eligible_count = _usable(whole).height
    subsamples = [u for u in units if u.reference == "germany-ew2024" and u.kind == "subsample"]
    assert subsamples[0].name == "subsample 01 (25% of stations)"
    for unit in subsamples:
        assert len(unit.election) == round(0.25 * eligible_count)
        assert _usable(unit.election).height == len(unit.election)
    first = set(subsamples[0].election.stations["station_id"])
    assert first != set(subsamples[1].election.stations["station_id"])
    again = next(
        u
        for u in reference_units(settings, references=["germany-ew2024"], subsamples=1)
        if u.kind == "subsample"
    )
    assert set(again.election.stations["station_id"]) == first
    other = next(
        u
        for u in reference_units(settings, references=["germany-ew2024"], subsamples=1, seed=1)
        if u.kind == "subsample"
    )
    assert set(other.election.stations["station_id"]) != first
