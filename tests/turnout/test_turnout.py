"""Turnout series and threshold scenarios on small elections built in code (numbers by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from rich.console import Console

from pollwatch.errors import MappingError, PollwatchError
from pollwatch.forensics.base import MethodResult
from pollwatch.forensics.calibration import Calibration
from pollwatch.results.model import Candidate, Election, ElectionMeta, make_election
from pollwatch.turnout import (
    RegionMapping,
    load_region_mapping,
    normalise_region,
    shipped_region_mapping,
    threshold_scenario,
    turnout_series,
)


def election(election_id: str, date: str, rows: list[dict[str, Any]], **meta: Any) -> Election:
    """Stations from rows with station_id, region, registered, ballots_cast, A, B (+ flags)."""
    frame = pl.DataFrame(rows)
    if "valid" not in frame.columns:
        frame = frame.with_columns((pl.col("A") + pl.col("B")).alias("valid"))
    values: dict[str, Any] = {
        "id": election_id,
        "country": "XX",
        "date": date,
        "kind": "presidential",
        "contest": "President",
        "source": "test",
        "license": "CC0",
        "importer": "test",
        "candidates": (Candidate("A", "A"), Candidate("B", "B")),
    }
    values.update(meta)
    return make_election(ElectionMeta(**values), frame)


def station(
    sid: str, region: str, registered: int, cast: int, a: int, **flags: Any
) -> dict[str, Any]:
    return {
        "station_id": sid,
        "region": region,
        "registered": registered,
        "ballots_cast": cast,
        "A": a,
        "B": cast - a,
        **flags,
    }


FIRST = [
    station("n1", "North", 1000, 600, 400),
    station("n2", "North", 1000, 400, 200),
    station("s1", "South", 2000, 500, 300),
    station("x1", "Abroad", 100, 100, 90, is_abroad=True),
    station("e1", "North", 5000, 4000, 3900, is_pseudo_station=True, is_evoting=True),
]
SECOND = [
    station("n1", "NORTH ", 1000, 300, 100),
    station("n3", "North", 1000, 500, 400),
    station("s1", "Southland", 2000, 1200, 700),
    station("s2", "Southland", 1000, 1000, 800),
]


def test_series_turnout_counts_only_the_stations_it_says() -> None:
    series = turnout_series(
        [election("b", "2021-01-01", SECOND), election("a", "2020-01-01", FIRST)]
    )
    assert series.election_ids == ["a", "b"]  # sorted by date
    first, second = series.elections
    # abroad and the e-voting pseudo-station are left out: (600 + 400 + 500) / 4000
    assert (first.stations, first.registered, first.ballots_cast) == (3, 4000, 1500)
    assert first.turnout == pytest.approx(0.375)
    assert (first.excluded.abroad, first.excluded.pseudo_stations) == (1, 1)
    assert first.excluded.abroad_registered == 100
    assert second.turnout == pytest.approx(3000 / 5000)
    # s2 has 100 % turnout (above 95 %); n3 is at 50 %, n1 at 30 %, s1 at 60 % (whole percents,
    # 100 % is not counted as one)
    assert second.above_95_share == pytest.approx(0.25)
    assert second.whole_percent_share == pytest.approx(0.75)


def test_series_counts_abroad_when_asked() -> None:
    series = turnout_series([election("a", "2020-01-01", FIRST)], abroad=True)
    assert series.elections[0].registered == 4100 and series.elections[0].excluded.abroad == 0


def test_link_rate_and_regions_by_normalised_name() -> None:
    series = turnout_series(
        [election("a", "2020-01-01", FIRST), election("b", "2021-01-01", SECOND)]
    )
    (link,) = series.links
    assert link.key == "station_id"
    # n1 and s1 of the second election were in the first; n3 and s2 were not
    assert (link.linked, link.stations_later, link.rate) == (2, 4, 0.5)
    # "NORTH " is North; "Southland" is a new name, so South does not link without a mapping
    assert link.regions_linked == 1 and link.regions_later == 2
    assert link.region_rates[normalise_region("North")] == pytest.approx(0.5)
    assert series.station_turnout("n1") == {"a": pytest.approx(0.6), "b": pytest.approx(0.3)}
    assert series.station_turnout("n3") == {"a": None, "b": pytest.approx(0.5)}
    assert series.linked_in_all() == 2


def test_renamed_region_mapping_links_the_series() -> None:
    mapping = RegionMapping(title="test", regions={"South": "Southland"})
    series = turnout_series(
        [election("a", "2020-01-01", FIRST), election("b", "2021-01-01", SECOND)], mapping=mapping
    )
    assert series.links[0].regions_linked == 2
    south = series.region("South")
    assert [r.region for r in south] == ["Southland", "Southland"]
    assert [r.turnout for r in south] == [pytest.approx(0.25), pytest.approx(2200 / 3000)]


def test_merged_regions_are_summed(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text('title = "merger"\n[regions]\n"North" = "Big"\n"South" = "Big"\n', "utf-8")
    series = turnout_series([election("a", "2020-01-01", FIRST)], mapping=load_region_mapping(path))
    (big,) = series.regions
    assert (big.region, big.registered, big.ballots_cast) == ("Big", 4000, 1500)
    assert big.names == ("North", "South")


def test_bad_mapping_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[regions]\n"North" = 3\n', "utf-8")
    with pytest.raises(MappingError, match=r"bad\.toml"):
        load_region_mapping(path)
    path.write_text('[region]\n"North" = "x"\n', "utf-8")
    with pytest.raises(MappingError, match="unknown key"):
        load_region_mapping(path)


def test_shipped_russian_mapping_covers_the_mergers() -> None:
    mapping = shipped_region_mapping("RU")
    assert mapping is not None
    for part, whole in [
        ("Пермская область", "Пермский край"),
        ("Коми-Пермяцкий автономный округ", "Пермский край"),
        ("Читинская область", "Забайкальский край"),
        ("Агинский Бурятский автономный округ", "Забайкальский край"),
        ("Камчатская область", "Камчатский край"),
        ("Корякский автономный округ", "Камчатский край"),
        ("Усть-Ордынский Бурятский автономный округ", "Иркутская область"),
        ("Таймырский (Долгано-Ненецкий) автономный округ", "Красноярский край"),
        ("Эвенкийский автономный округ", "Красноярский край"),
    ]:
        assert mapping.canonical(part) == mapping.canonical(whole)
    assert mapping.canonical("99 Территория за пределами РФ") == mapping.canonical(
        "Зарубежная территория"
    )
    assert normalise_region("Город Москва") == normalise_region("город  Москва")
    assert shipped_region_mapping("XX") is None


def test_threshold_by_region_lists_failing_units_and_registered_voters() -> None:
    scenario = threshold_scenario(election("a", "2020-01-01", FIRST), 0.4, level="region")
    assert [u.unit for u in scenario.failing] == ["South"]  # 25 % < 40 %; North is at 50 %
    assert scenario.registered_in_failing == 2000 and scenario.registered_total == 4000
    # without South's votes A still leads: unchanged
    assert scenario.official.leader == "A" and scenario.scenario.leader == "A"
    assert not scenario.outcome_changes


def test_threshold_changes_the_leader_when_a_region_is_annulled() -> None:
    rows = [
        station("n1", "North", 1000, 600, 100),  # B wins North by far, at 60 %
        station("s1", "South", 4000, 1000, 900),  # A wins South, at 25 %
    ]
    scenario = threshold_scenario(election("a", "2020-01-01", rows), 0.5, level="region")
    assert scenario.official.leader == "A"  # 1000 v 600
    assert scenario.scenario.leader == "B"
    assert scenario.outcome_changes


def test_majority_rule_flips_when_the_majority_rests_on_a_failing_unit() -> None:
    rows = [
        station("n1", "North", 1000, 600, 250),  # 250 of 600 for A
        station("s1", "South", 4000, 1000, 900),
    ]
    made = election("a", "2020-01-01", rows)
    with_majority = threshold_scenario(made, 0.5, level="region", majority=True)
    assert with_majority.official.majority is True  # 1150 of 1600 ballots
    assert with_majority.scenario.leader == "B" and with_majority.scenario.majority is True
    national = threshold_scenario(made, 0.5, level="national", majority=True)
    assert national.failing[0].turnout == pytest.approx(1600 / 5000)
    assert national.scenario.annulled and national.outcome_changes
    passing = threshold_scenario(made, 0.3, level="national", majority=True)
    assert not passing.failing and not passing.outcome_changes


def _estimate(
    made: Election, national: float, regions: dict[str, int | None], unreliable: bool
) -> MethodResult:
    return MethodResult(
        method="shpilkin",
        title="Shpilkin's estimate",
        election_id=made.id,
        input_digest=made.content_digest(),
        statistic_name="share",
        statistic=None,
        sample_size=made.stations.height,
        effect=national,
        details={"regions": {k: {"anomalous_votes": v} for k, v in regions.items()}},
        calibration=Calibration.from_dict(
            {
                "calibrated": True,
                "unreliable": unreliable,
                "unreliable_reason": "flags too many clean units",
            }
        ),
    )


def test_clean_turnout_shows_which_units_pass_on_anomalous_ballots() -> None:
    made = election("a", "2020-01-01", FIRST)
    estimate = _estimate(made, 300.0, {"North": 300, "South": None}, unreliable=True)
    scenario = threshold_scenario(made, 0.4, level="region", estimate=estimate)
    north = next(u for u in scenario.units if u.unit == "North")
    assert north.clean_turnout == pytest.approx((1000 - 300) / 2000)  # 35 % < 40 %
    assert north.passes and north.passes_on_anomalous_ballots
    south = next(u for u in scenario.units if u.unit == "South")
    assert south.clean_turnout is None and south.passes_clean is None  # no estimate of its own
    assert scenario.forensic["reliable"] is False
    assert scenario.forensic["calibration_words"].startswith("UNRELIABLE")
    assert scenario.clean_scenario is not None and scenario.clean_scenario.annulled
    text = _render(scenario)
    assert "UNRELIABLE" in text and "1 pass only on anomalous ballots" in text
    national = threshold_scenario(made, 0.3, level="national", estimate=estimate)
    assert national.units[0].clean_turnout == pytest.approx(1200 / 4000)
    district = threshold_scenario(made, 0.3, level="station", estimate=estimate)
    assert not district.forensic["available"] and district.units[0].clean_turnout is None


def test_estimate_of_other_numbers_is_refused() -> None:
    made = election("a", "2020-01-01", FIRST)
    other = election("b", "2020-01-01", SECOND)
    with pytest.raises(PollwatchError, match="computed on 'b'"):
        threshold_scenario(made, 0.4, estimate=_estimate(other, 1.0, {}, unreliable=False))


def test_bad_threshold_and_level_are_one_line_errors() -> None:
    made = election("a", "2020-01-01", FIRST)
    with pytest.raises(PollwatchError, match="not a turnout"):
        threshold_scenario(made, 1.5)
    with pytest.raises(PollwatchError, match="unknown level"):
        threshold_scenario(made, 0.5, level="county")  # type: ignore[arg-type]
    with pytest.raises(PollwatchError, match="constituency"):
        threshold_scenario(made, 0.5, level="constituency")


def _render(renderable: Any) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(renderable)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    return text


def test_renderings_fit_80_columns_and_state_definitions() -> None:
    series = turnout_series(
        [election("a", "2020-01-01", FIRST), election("b", "2021-01-01", SECOND)]
    )
    text = _render(series)
    assert "37.5%" in text and "50%" in text and "counted:" in text
    data = series.to_dict()
    assert data["elections"][0]["excluded"]["abroad"] == 1
    assert "turnout" in data["definitions"]
    scenario = threshold_scenario(election("a", "2020-01-01", FIRST), 0.4, level="region")
    assert "South" in _render(scenario) and scenario.to_dict()["failing"] == ["South"]
