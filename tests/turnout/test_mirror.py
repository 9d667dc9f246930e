"""Turnout series and scenarios on the mirror's Russian federal elections (2004, 2007, 2016,
2018), each figure checked against a sum over the imported stations made here independently.
Skips without the data mirror."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from pollwatch.results.datasets import DATASETS, import_dataset
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings
from pollwatch.turnout import (
    shipped_region_mapping,
    shpilkin_estimate,
    threshold_scenario,
    turnout_series,
)

pytestmark = [pytest.mark.data]

YEARS = (2004, 2007, 2016, 2018)


@pytest.fixture(scope="module")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("turnout-home")


@pytest.fixture(scope="module")
def russia(mirror: Path, store_home: Path) -> dict[int, Election]:
    """Four Russian federal elections imported once from the mirror, and saved in a store."""
    home = store_home
    settings = Settings(home=home, data_mirror=mirror, download=False)
    elections = {}
    for year in YEARS:
        dataset = DATASETS.get(f"russia-{year}")
        if not (mirror / dataset.folder / dataset.filename).is_file():
            pytest.skip(f"{dataset.folder}/{dataset.filename} is not in the data mirror {mirror}")
        elections[year] = import_dataset(dataset, settings)
        ElectionStore(settings.elections_dir).save(elections[year])
    return elections


def _counted(election: Election) -> pl.DataFrame:
    """The counted stations, written out again here: the test's own statement of the rule."""
    return election.stations.filter(
        ~pl.col("is_pseudo_station")
        & ~pl.col("is_evoting")
        & ~pl.col("is_cancelled")
        & ~pl.col("is_unpublished")
        & ~pl.col("is_abroad")
        & (pl.col("registered") > 0)
        & pl.col("ballots_cast").is_not_null()
    )


def test_national_turnout_is_the_sum_over_the_imported_stations(
    russia: dict[int, Election],
) -> None:
    series = turnout_series(list(russia.values()))
    assert series.election_ids == [f"russia-{y}" for y in YEARS]
    for point, year in zip(series.elections, YEARS, strict=True):
        election = russia[year]
        counted = _counted(election)
        assert point.stations == counted.height
        assert point.registered == counted["registered"].sum()
        assert point.ballots_cast == counted["ballots_cast"].sum()
        assert point.turnout == pytest.approx(point.ballots_cast / point.registered, rel=1e-12)
        # what was left out adds back up to the election's own totals
        summary = election.summary()
        left = election.stations.filter(pl.col("is_abroad") | pl.col("is_cancelled"))
        assert summary.registered == point.registered + left["registered"].sum()
        assert point.excluded.abroad == int(election.stations["is_abroad"].sum())
    turnouts = {p.election_id: p.turnout for p in series.elections}
    # 2016 is the low point of the series (CEC: 47.88 % with stations abroad; here without them)
    assert min(turnouts, key=lambda k: turnouts[k] or 1) == "russia-2016"
    assert turnouts["russia-2016"] == pytest.approx(0.478, abs=0.002)


def test_station_link_rate_is_reported_not_assumed(russia: dict[int, Election]) -> None:
    series = turnout_series([russia[2004], russia[2007]])
    (link,) = series.links
    assert link.key == "region_number"
    mapping = shipped_region_mapping("RU")
    assert mapping is not None

    def keys(election: Election) -> Counter[tuple[str, str]]:
        counted = _counted(election)
        return Counter(
            (mapping.canonical(region), sid.split("|")[-1])
            for region, sid in counted.select("region", "station_id").iter_rows()
        )

    before, after = keys(russia[2004]), keys(russia[2007])
    # a key two stations share links neither
    linked = sum(1 for k, n in after.items() if n == 1 and before.get(k) == 1)
    assert link.linked == linked and link.stations_later == sum(after.values())
    ids_before = set(_counted(russia[2004])["station_id"].to_list())
    ids_after = _counted(russia[2007])["station_id"].to_list()
    assert link.exact_id_rate == pytest.approx(
        sum(i in ids_before for i in ids_after) / len(ids_after)
    )
    # the territorial-commission names inside the ids change; the region and number mostly do not
    assert link.exact_id_rate is not None and link.rate is not None
    assert link.exact_id_rate < 0.6 < 0.95 < link.rate


def test_merged_regions_run_through_the_series(russia: dict[int, Election]) -> None:
    series = turnout_series([russia[2004], russia[2007]])
    perm = series.region("Пермский край")
    assert [r.election_id for r in perm] == ["russia-2004", "russia-2007"]
    assert set(perm[0].names) == {"Пермская область", "Коми-Пермяцкий автономный округ"}
    counted = _counted(russia[2004]).filter(
        pl.col("region").is_in(["Пермская область", "Коми-Пермяцкий автономный округ"])
    )
    assert perm[0].registered == counted["registered"].sum()
    krasnoyarsk = series.region("Красноярский край")
    assert len(krasnoyarsk[0].names) == 3  # with Taymyr and Evenkia in 2004
    # every region of 2007 links back to 2004 but one: in 2007 the foreign territory holds
    # Baikonur's stations (not abroad, so counted), which 2004 lists as a region of its own
    (link,) = series.links
    assert link.regions_linked == link.regions_later - 1
    names = {
        e: {r.region for r in series.regions if r.election_id == e} for e in series.election_ids
    }
    assert names["russia-2007"] - names["russia-2004"] == {"Территория за пределами РФ"}


def _regions(election: Election) -> pl.DataFrame:
    return (
        _counted(election)
        .group_by("region")
        .agg(pl.col("registered").sum(), pl.col("ballots_cast").sum())
        .with_columns((pl.col("ballots_cast") / pl.col("registered")).alias("turnout"))
    )


def test_failing_regions_at_50_percent(russia: dict[int, Election]) -> None:
    regions = _regions(russia[2018])
    scenario = threshold_scenario(russia[2018], 0.5, level="region")
    # no region of 2018 was below 50 % (the lowest, Irkutsk Oblast, at 55.7 %)
    assert scenario.failing == () and regions["turnout"].min() > 0.5  # type: ignore[operator]
    assert not scenario.outcome_changes
    at_60 = threshold_scenario(russia[2018], 0.6, level="region")
    expected = regions.filter(pl.col("turnout") < 0.6)
    assert sorted(u.unit for u in at_60.failing) == sorted(expected["region"].to_list())
    assert at_60.registered_in_failing == expected["registered"].sum()
    assert "Иркутская область" in {u.unit for u in at_60.failing}
    duma = threshold_scenario(russia[2016], 0.5, level="region")
    expected = _regions(russia[2016]).filter(pl.col("turnout") < 0.5)
    assert {u.unit for u in duma.failing} == set(expected["region"].to_list())
    assert duma.registered_in_failing == expected["registered"].sum()
    assert len(duma.failing) > 40  # most regions, at a national 47.8 %


def test_clean_turnout_with_shpilkins_regional_estimates(russia: dict[int, Election]) -> None:
    election = russia[2018]
    estimate = shpilkin_estimate(election)
    assert estimate is not None
    scenario = threshold_scenario(election, 0.5, level="region", estimate=estimate)
    assert scenario.forensic["available"]
    # the calibration table marks Shpilkin unreliable: the scenario says so, and never "reliable"
    calibration = estimate.calibration
    assert scenario.forensic["reliable"] is (calibration is not None and not calibration.unreliable)
    regional = estimate.details["regions"]
    expected = {}
    for row in _regions(election).iter_rows(named=True):
        votes = regional[row["region"]]["anomalous_votes"]
        if votes is not None and (row["ballots_cast"] - votes) / row["registered"] < 0.5:
            expected[row["region"]] = row["registered"]
    failing = {u.unit: u.registered for u in scenario.failing_clean}
    assert failing == expected and failing  # regions that pass 50 % only on anomalous ballots
    assert {u.unit for u in scenario.passing_on_anomalous_ballots} == set(expected)


def test_cli_lists_the_series_and_the_failing_regions(
    russia: dict[int, Election], store_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pollwatch.cli import main

    home = str(store_home)
    ids = [f"russia-{y}" for y in YEARS]
    assert main(["--home", home, "turnout", *ids]) == 0
    text = capsys.readouterr().out
    assert all(i in text for i in ids) and "47.8%" in text
    assert (
        main(
            [
                "--home",
                home,
                "turnout",
                "--threshold",
                "50",
                "--level",
                "region",
                "--json",
                "--no-forensic",
                "russia-2016",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    expected = _regions(russia[2016]).filter(pl.col("turnout") < 0.5)
    assert sorted(data["failing"]) == sorted(expected["region"].to_list())
    assert data["registered_in_failing"] == expected["registered"].sum()
    assert main(["--home", home, "turnout", "--threshold", "60", "russia-2018"]) == 0
    text = capsys.readouterr().out
    irkutsk = _regions(russia[2018]).filter(pl.col("region") == "Иркутская область")
    assert "Иркутская область" in text and f"{irkutsk['registered'][0]:,}" in text
    assert "calibration" in text or "UNRELIABLE" in text
    assert main(["--home", home, "turnout", "--threshold", "150", "russia-2018"]) == 2
    assert "not a percentage" in capsys.readouterr().err
