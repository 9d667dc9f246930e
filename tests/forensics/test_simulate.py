"""The clean-election simulator, its special stations, the clean twin and ``pollwatch simulate``.

Real-data checks (mirror): the twin of Poland 2020 round 1 matches the real station-size,
turnout and leader-share quantiles; the twin of Russia 2018 does not reproduce the real
integer-percentage excess nor the within-region turnout-share correlation (Kobak, Shpilkin &
Pshenichnikov 2016, Annals of Applied Statistics 10(1); Klimek et al. 2012, PNAS 109(41)).
The tolerances are set from each figure's spread over random streams (the unsalted stream and
``--seed-salt`` 1-40 for the real elections, 1-200 for the simulated ones), written next to the
assertions; quantiles in a station-size transition or near the special stations move most.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pollwatch.errors import PollwatchError, StoreError
from pollwatch.forensics.integer_peaks import IntegerPercentages
from pollwatch.results.datasets import import_dataset
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings
from pollwatch.synthetic.labels import LabelsFile, read_labels
from pollwatch.synthetic.planted import (
    INJECTIONS_FILE,
    injectors_of,
    parse_injection,
    plant,
    plant_injections,
    save_planted,
)
from pollwatch.synthetic.simulator import simulate_clean, simulate_like
from tests.helpers import run_cli as run

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def quantiles(series: pl.Series) -> np.ndarray:
    return np.array([series.quantile(q) for q in QUANTILES], dtype=float)


def relative_gaps(twin: pl.Series, real: pl.Series) -> np.ndarray:
    """|twin / real - 1| at each of QUANTILES."""
    return np.abs(quantiles(twin) / quantiles(real) - 1)


def gaps(twin: pl.Series, real: pl.Series) -> np.ndarray:
    """|twin - real| at each of QUANTILES."""
    return np.abs(quantiles(twin) - quantiles(real))


def usable(election: Election) -> pl.DataFrame:
    return election.with_derived().filter(
        ~pl.col("is_pseudo_station")
        & ~pl.col("is_cancelled")
        & ~pl.col("is_unpublished")
        & (pl.col("valid") > 0)
    )


def check_protocol(election: Election) -> None:
    frame = election.stations
    votes = frame.select(pl.sum_horizontal(election.candidate_columns)).to_series()
    assert (votes == frame["valid"]).all()
    if frame["invalid"].null_count() == 0:
        assert (frame["valid"] + frame["invalid"] == frame["ballots_cast"]).all()
    if frame["registered"].null_count() == 0:
        assert (frame["ballots_cast"] <= frame["registered"]).all()


# --- simulate_clean ----------------------------------------------------------------------------
def test_same_seed_same_election_and_different_seed_differs() -> None:
    first = simulate_clean(stations=2000, seed=4, hospital_share=0.05, abroad_share=0.02)
    again = simulate_clean(stations=2000, seed=4, hospital_share=0.05, abroad_share=0.02)
    other = simulate_clean(stations=2000, seed=5, hospital_share=0.05, abroad_share=0.02)
    assert first.stations.equals(again.stations)
    assert first.content_digest() == again.content_digest()
    assert first.content_digest() != other.content_digest()
    assert not first.stations["Candidate A"].equals(other.stations["Candidate A"])


def test_clean_election_is_consistent_and_heterogeneous() -> None:
    election = simulate_clean(stations=3000, regions=5, seed=2)
    check_protocol(election)
    frame = usable(election)
    # Station-level Dirichlet draws: shares vary well beyond the binomial noise of one vector
    # (about 0.016 here). Over 101 streams (no salt, salts 1-100): 0.044-0.089 (mean 0.061);
    # the within-region Dirichlet spread alone gives about 0.038, a floor under the sd.
    assert frame["leader_share"].std() > 0.03
    assert frame["region"].n_unique() == 5
    assert set(frame["station_kind"].unique()) == {"ordinary"}


@pytest.mark.parametrize(("hospital_share", "abroad_share"), [(0.05, 0.02), (0.2, 0.1)])
def test_special_stations_come_in_the_requested_shares(
    hospital_share: float, abroad_share: float
) -> None:
    n = 6000
    election = simulate_clean(
        stations=n, seed=8, hospital_share=hospital_share, abroad_share=abroad_share
    )
    check_protocol(election)
    frame = usable(election)
    kinds = election.stations["station_kind"].value_counts()
    counts = dict(zip(kinds["station_kind"], kinds["count"], strict=True))
    for kind, share in (("hospital", hospital_share), ("abroad", abroad_share)):
        # Each station is special with probability `share`: within 4 binomial sd (over 101
        # streams, no salt and salts 1-100, |z| at most 2.6).
        assert abs(counts[kind] - n * share) < 4 * np.sqrt(n * share * (1 - share))
    hospitals = frame.filter(pl.col("station_kind") == "hospital")
    assert hospitals["registered"].max() < 100
    # over 101 streams: mean 0.950, sd 0.003 (0.943-0.957) at a 5 % share, sd 0.0014 at 20 %
    assert 0.9 < hospitals["turnout"].mean() < 0.99
    abroad = election.stations.filter(pl.col("station_kind") == "abroad")
    assert (abroad["registered"] == abroad["ballots_cast"]).all()
    assert abroad["is_abroad"].all() and (abroad["region"] == "Abroad").all()
    assert not election.stations.filter(pl.col("station_kind") == "ordinary")["is_abroad"].any()


def test_special_shares_do_not_change_the_other_draws_of_a_seed() -> None:
    plain = simulate_clean(stations=500, seed=3)
    with_specials = simulate_clean(stations=500, seed=3, hospital_share=0.1)
    # Regions are drawn first, from the same stream: identical.
    assert plain.stations["region"].equals(with_specials.stations["region"])


@pytest.mark.parametrize(
    "kwargs",
    [{"hospital_share": -0.1}, {"hospital_share": 0.7, "abroad_share": 0.5}, {"candidates": 1}],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(PollwatchError):
        simulate_clean(stations=100, **kwargs)  # type: ignore[arg-type]


# --- the clean twin, on a simulated "real" election --------------------------------------------
@pytest.fixture(scope="module")
def base() -> Election:
    return simulate_clean(stations=4000, regions=6, seed=21, hospital_share=0.05, abroad_share=0.03)


def test_twin_keeps_regions_candidates_and_special_stations(base: Election) -> None:
    twin = simulate_like(base, seed=1)
    check_protocol(twin)
    assert twin.meta.candidates == base.meta.candidates
    assert twin.meta.kind == "simulated" and twin.id == f"{base.id}-twin-1"
    real_regions = base.stations.group_by("region").len().sort("region")
    twin_regions = twin.stations.group_by("region").len().sort("region")
    assert twin_regions.equals(real_regions)
    abroad = twin.stations.filter(pl.col("station_kind") == "abroad")
    base_abroad = base.stations.filter(pl.col("station_kind") == "abroad")
    assert abroad.height == base_abroad.height
    # Full by construction in the base, so in the twin too.
    assert (abroad["registered"] == abroad["ballots_cast"]).all()
    hospitals = twin.stations.filter(pl.col("station_kind") == "hospital")
    assert hospitals["registered"].max() < 100


#: Tolerances at QUANTILES for a twin of 4,000 stations, base and twin both random: over 201
#: streams (no salt, salts 1-200), twin / base - 1 of registered has sd 0.064, 0.019, 0.014,
#: 0.013, 0.020 (the 5 % quantile sits where the small stations end: -0.22 to 0.19); valid
#: votes (no registered numbers) 0.059, 0.020, 0.014, 0.014, 0.020; about 4 sd each.
SIZE_RELATIVE = np.array([0.26, 0.08, 0.06, 0.06, 0.09])
#: Turnout, twin - base: sd 0.0030, 0.0019, 0.0016, 0.0025, 0.0087 (the 95 % quantile, among
#: hospitals and stations abroad, also 0.008 high on average; largest 0.034); 4 sd or more.
TURNOUT_ABSOLUTE = np.array([0.015, 0.01, 0.01, 0.015, 0.05])


def test_twin_matches_size_and_level_quantiles(base: Election) -> None:
    real, twin = usable(base), usable(simulate_like(base, seed=2))
    assert (relative_gaps(twin["registered"], real["registered"]) < SIZE_RELATIVE).all()
    assert (gaps(twin["turnout"], real["turnout"]) < TURNOUT_ABSOLUTE).all()
    # leader share over 201 streams: sd at most 0.0026, bias at most 0.0034, largest gap 0.011
    assert (gaps(twin["leader_share"], real["leader_share"]) < 0.02).all()
    invalid_share = real["invalid"].sum() / real["ballots_cast"].sum()
    # over 101 streams: relative gap mean 0.0031, sd 0.0025, at most 0.010
    assert twin["invalid"].sum() / twin["ballots_cast"].sum() == pytest.approx(
        invalid_share, rel=0.02
    )


def test_twin_is_reproducible_and_row_order_free(base: Election) -> None:
    twin = simulate_like(base, seed=3)
    shuffled = Election(base.meta, base.stations.sample(fraction=1.0, shuffle=True, seed=9))
    assert simulate_like(shuffled, seed=3).stations.equals(twin.stations)
    assert simulate_like(base, seed=4).content_digest() != twin.content_digest()


def test_twin_with_a_station_count_scales_the_regions(base: Election) -> None:
    twin = simulate_like(base, seed=5, stations=10_000)
    assert len(twin) == 10_000
    real = base.stations["region"].value_counts(normalize=True).sort("region")
    scaled = twin.stations["region"].value_counts(normalize=True).sort("region")
    # rounding only: at most 5e-5 over 101 streams
    assert scaled["proportion"].to_numpy() == pytest.approx(real["proportion"].to_numpy(), abs=1e-3)


def test_twin_without_registered_voters_resamples_valid_votes(base: Election) -> None:
    frame = base.stations.with_columns(
        pl.lit(None, dtype=pl.Int64).alias(c) for c in ("registered", "ballots_cast", "invalid")
    )
    no_turnout = Election(base.meta, frame)
    twin = simulate_like(no_turnout, seed=6)
    assert twin.stations["registered"].null_count() == len(twin)
    assert twin.stations["ballots_cast"].null_count() == len(twin)
    assert (relative_gaps(twin.stations["valid"], base.stations["valid"]) < SIZE_RELATIVE).all()


def test_twin_by_district_keeps_the_districts_levels() -> None:
    clean = simulate_clean(stations=3000, regions=1, seed=12)
    columns = clean.candidate_columns
    # District B: half the votes of every candidate and half the invalid ballots, so its
    # turnout is about half of district A's (about 30 % against 60 %).
    frame = clean.stations.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 1)
        .then(pl.lit("B"))
        .otherwise(pl.lit("A"))
        .alias("district")
    )
    half = pl.col("district") == "B"
    frame = frame.with_columns(
        [pl.when(half).then(pl.col(c) // 2).otherwise(pl.col(c)).alias(c) for c in columns]
        + [pl.when(half).then(pl.col("invalid") // 2).otherwise(pl.col("invalid")).alias("invalid")]
    ).with_columns(pl.sum_horizontal(columns).alias("valid"))
    frame = frame.with_columns((pl.col("valid") + pl.col("invalid")).alias("ballots_cast"))
    real = Election(clean.meta, frame)

    def medians(election: Election) -> dict[str, float]:
        rows = usable(election).group_by("district").agg(pl.col("turnout").median())
        return dict(zip(rows["district"], rows["turnout"], strict=True))

    by_district = simulate_like(real, seed=1, by="district")
    assert by_district.id.endswith("-by-district")
    # over 101 streams: largest gap mean 0.0016, sd 0.0009, at most 0.0043
    assert medians(by_district) == pytest.approx(medians(real), abs=0.01)
    # over 101 streams: 0.21-0.37 (mean 0.294, sd 0.030)
    assert abs(medians(real)["A"] - medians(real)["B"]) > 0.15
    # Per region, the two districts are one population: the twin has no district column.
    by_region = simulate_like(real, seed=1)
    assert by_region.stations["district"].null_count() == len(by_region)
    with pytest.raises(PollwatchError, match="by"):
        simulate_like(real, by="county")


# --- the clean twin of real elections (mirror) -------------------------------------------------
@pytest.fixture(scope="module")
def settings(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), data_mirror=mirror, download=False)


def test_poland_twin_matches_the_real_distributions(settings: Settings) -> None:
    real = import_dataset("poland-2020-r1", settings)
    a, b = usable(real), usable(simulate_like(real, seed=1))
    # Registered, twin / real - 1 over 41 streams (no salt, salts 1-40): the 5 % quantile, where
    # the small stations end, mean 0.033, sd 0.066 (-0.083 to 0.194); the others sd 0.0073 or
    # less, at most 0.025. About 4 sd each.
    size_tolerance = np.array([0.3, 0.05, 0.05, 0.05, 0.05])
    assert (relative_gaps(b["registered"], a["registered"]) < size_tolerance).all()
    # turnout, twin - real over 41 streams: the 5 % quantile mean -0.0035, sd 0.0021, the 95 %
    # 0.0047, sd 0.0012 (largest gap 0.0074); 0.013 is 4 sd out
    assert (gaps(b["turnout"], a["turnout"]) < 0.013).all()
    # The leader's share: the middle matches; the MAD-based spread makes the tails a little
    # wider than the real ones (measured 0.203 / 0.828 vs 0.248 / 0.781 at 5 % / 95 %). Over
    # 41 streams the middle gaps are at most 0.016 (25 %: -0.0136, sd 0.0012), the tails'
    # -0.046, sd 0.0023 and 0.044, sd 0.0021.
    assert (gaps(b["leader_share"], a["leader_share"])[1:4] < 0.02).all()
    assert (gaps(b["leader_share"], a["leader_share"])[[0, 4]] < 0.06).all()
    # Fitted per powiat, the tails come closer (measured .238 / .803 vs .248 / .781); over 41
    # streams share gaps at most 0.024 (95 %: 0.0205, sd 0.0013), turnout at most 0.0079 (95 %:
    # 0.0055, sd 0.0012).
    c = usable(simulate_like(real, seed=1, by="district"))
    assert (gaps(c["leader_share"], a["leader_share"]) < 0.03).all()
    assert (gaps(c["turnout"], a["turnout"]) < 0.013).all()


def _within_region_correlation(frame: pl.DataFrame) -> float:
    per_region = (
        frame.group_by("region")
        .agg(pl.corr("turnout", "leader_share", method="spearman").alias("r"), pl.len())
        .filter(pl.col("len") >= 50)
    )
    return float(per_region["r"].median())


def test_russia_twin_loses_the_fingerprints_of_manipulation(settings: Settings) -> None:
    real = import_dataset("russia-2018", settings)
    twin = simulate_like(real, seed=1)
    a, b = usable(real), usable(twin)
    # over 41 streams (no salt, salts 1-40): registered gaps at most 0.018 (sd 0.008 at 5 %),
    # share gaps at most 0.0095 (sd 0.0007 or less)
    assert (relative_gaps(b["registered"], a["registered"]) < 0.05).all()
    assert (gaps(b["leader_share"], a["leader_share"]) < 0.02).all()
    # Measured: real within-region Spearman median 0.34; twin over 41 streams mean -0.002,
    # sd 0.0044 (-0.014 to 0.009).
    assert _within_region_correlation(a) > 0.25
    assert abs(_within_region_correlation(b)) < 0.05
    # Measured: real excess of whole percents 1,709 stations (p ~ 1e-47). The twin's is null
    # noise: over 41 streams mean -18, sd 127 stations (-289 to 223; 0.074 of the real one),
    # p 0.028-0.99 (uniform). 0.4 of the real excess is 5.5 sd out; a uniform p is below 1e-5
    # with probability 1e-5.
    peaks_real = IntegerPercentages().run(real)
    peaks_twin = IntegerPercentages().run(twin)
    assert peaks_real.p_value is not None and peaks_real.p_value < 1e-20
    assert peaks_real.effect is not None and peaks_twin.effect is not None
    assert peaks_twin.effect < 0.4 * peaks_real.effect
    assert peaks_twin.p_value is not None and peaks_twin.p_value > 1e-5


# --- pollwatch simulate --------------------------------------------------------------------------
def test_parse_injection() -> None:
    assert parse_injection("incremental-stuffing:0.1:0.5") == ("incremental-stuffing", 0.1, 0.5)
    for bad in ("carousel", "carousel:0.1", ":0.1:0.2", "carousel:a:0.2"):
        with pytest.raises(PollwatchError):
            parse_injection(bad)


def test_simulate_saves_the_election_and_the_labels(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "simulate", "--stations", "1500", "--seed", "7",
        "--inject", "incremental-stuffing:0.1:0.5", "--id", "sim-stuffed",
    )  # fmt: skip
    assert code == 0, out
    store = ElectionStore(home / "elections")
    stuffed = store.load("sim-stuffed")
    record = json.loads((home / "elections" / "sim-stuffed" / INJECTIONS_FILE).read_text())
    assert record["election"] == "sim-stuffed" and record["seed"] == 7
    (labels,) = record["injections"]
    assert labels["injector"] == "incremental-stuffing" and len(labels["stations"]) == 150
    # Only the labelled stations differ from the clean election of the same seed.
    clean = simulate_clean(stations=1500, seed=7).stations.sort("station_id")
    changed = stuffed.stations.sort("station_id").select(clean.columns) != clean
    differs = clean.filter(changed.select(pl.any_horizontal(pl.all())).to_series())
    assert set(differs["station_id"]) <= set(labels["stations"])
    # all 150 in 51 of 51 streams (no salt, salts 1-50)
    assert differs.height > 100
    assert "sim-stuffed" in out and "150 stations" in out


def test_the_labels_file_is_written_and_read_through_the_store(home: Path) -> None:
    store = ElectionStore(home / "elections")
    base = simulate_clean(stations=600, seed=4)
    injectors = injectors_of(["carousel:0.1:0.05", "round-percentages:0.05:5"])
    planted = plant_injections(base, injectors, seed=4)
    assert planted.election.id == "simulated-clean-4-carousel-round-percentages"
    outcome, path = save_planted(store, planted)
    assert outcome == "created" and path == store.root / planted.election.id / INJECTIONS_FILE
    labels = read_labels(store, planted.election.id)
    assert labels == planted.labels_file() and labels is not None
    assert [label.injector for label in labels.injections] == ["carousel", "round-percentages"]
    assert labels.injections[0].stations == planted.labels[0].stations
    assert len(labels.injections[0].stations) == 60
    assert LabelsFile.from_dict(json.loads(path.read_text("utf-8"))) == labels
    # a clean election has no labels; a replacement drops the old ones with the old folder
    store.save(base)
    assert read_labels(store, base.id) is None
    clean_again = plant(base, [], seed=4, election_id=planted.election.id)
    assert save_planted(store, clean_again, replace=True) == ("replaced", None)
    assert read_labels(store, planted.election.id) is None
    # a damaged file is one StoreError naming it; the store's own files are no attachments
    store.write_attachment(base.id, INJECTIONS_FILE, '{"format": "pollwatch-injections/9"}')
    with pytest.raises(StoreError, match=r"injections\.json is damaged"):
        read_labels(store, base.id)
    for name in ("meta.json", "stations.parquet", "../x.json", ".hidden", ""):
        with pytest.raises(StoreError, match="cannot be kept beside an election"):
            store.write_attachment(base.id, name, "{}")
    with pytest.raises(StoreError, match="no election"):
        store.write_attachment("no-such-election", INJECTIONS_FILE, "{}")


def test_simulate_like_a_stored_election(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ElectionStore(home / "elections")
    store.save(simulate_clean(stations=800, regions=3, seed=1, election_id="real-one"))
    code, out, _ = run(capsys, "simulate", "--like", "real-one", "--seed", "2")
    assert code == 0, out
    twin = store.load("real-one-twin-2")
    assert len(twin) == 800
    assert not (home / "elections" / "real-one-twin-2" / INJECTIONS_FILE).exists()
    # Same command again: the same numbers, nothing replaced.
    code, out, _ = run(capsys, "simulate", "--like", "real-one", "--seed", "2")
    assert code == 0 and "unchanged" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--like", "no-such-election"), "no such election"),
        (("--inject", "no-such-injector:0.1:0.5"), "unknown injector"),
        (("--inject", "carousel:0.1"), "NAME:SHARE:MAGNITUDE"),
        (("--like", "x", "--regions", "3"), "synthetic elections only"),
        (("--id", "Bad Id"), "invalid election id"),
        (("--by", "district"), "--by applies to a twin only"),
    ],
)
def test_user_errors_are_one_line(
    home: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, "simulate", "--stations", "50", *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.strip().count("\n") == 0
