"""The calibration harness on small runs: rates, power, triage, resuming, seeds, Ray, the CLI.

Cells are one method on one election, keyed by the method's own code, so the tests also check
that a changed method re-runs only its cells, that an added method runs only its own and that
a changed injector re-runs only its power elections. Toy methods (always reject, never reject,
a statistic without a p-value, a triage with known flags) are registered by swapping the
METHODS registry table for the test's duration, as tests/test_registry.py does, so the
built-in methods stay untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from pollwatch.calibration import harness
from pollwatch.calibration.harness import (
    CalibrationPlan,
    CalibrationRun,
    Cell,
    build_tables,
    cell_seed,
    method_code_digest,
    plan_cells,
    run_calibration,
    run_cell,
    wilson_interval,
)
from pollwatch.calibration.references import ReferenceUnit, sub_election
from pollwatch.forensics.base import METHODS, Method, MethodResult, all_methods
from pollwatch.forensics.calibration import CalibrationTable
from pollwatch.results.model import Election
from pollwatch.synthetic.injectors import INJECTORS
from pollwatch.synthetic.simulator import simulate_clean
from tests.conftest import seed_salted
from tests.helpers import run_cli as cli

SMALL: dict[str, Any] = {"stations": 300, "regions": 4, "candidates": 3}


@dataclass(frozen=True)
class AlwaysRejects(Method):
    name: ClassVar[str] = "toy-always-rejects"
    title: ClassVar[str] = "Always rejects"
    reference: ClassVar[str] = "test"

    def run(self, election: Election) -> MethodResult:
        return self.result(election, statistic_name="s", statistic=1.0, sample_size=1, p_value=0.0)


@dataclass(frozen=True)
class NeverRejects(Method):
    name: ClassVar[str] = "toy-never-rejects"
    title: ClassVar[str] = "Never rejects"
    reference: ClassVar[str] = "test"

    def run(self, election: Election) -> MethodResult:
        return self.result(election, statistic_name="s", statistic=0.0, sample_size=1, p_value=1.0)


@dataclass(frozen=True)
class LeaderVotes(Method):
    """No p-value: the leader's share of all valid votes (empirical, upper tail)."""

    name: ClassVar[str] = "toy-leader-share"
    title: ClassVar[str] = "Leader share"
    reference: ClassVar[str] = "test"

    def run(self, election: Election) -> MethodResult:
        leader = election.leader()
        assert leader is not None
        share = election.stations[leader.column].sum() / election.stations["valid"].sum()
        return self.result(election, statistic_name="share", statistic=share, sample_size=1)


@dataclass(frozen=True)
class FirstTenTriage(Method):
    """Flags the ten stations with the smallest ids, whatever the election."""

    name: ClassVar[str] = "toy-triage"
    title: ClassVar[str] = "Toy triage"
    scores_stations: ClassVar[bool] = True
    reference: ClassVar[str] = "test"

    def run(self, election: Election) -> MethodResult:
        ids = tuple(sorted(election.stations["station_id"].to_list())[:10])
        return self.result(
            election, statistic_name="n", statistic=10.0, sample_size=len(election), flagged=ids
        )


@pytest.fixture
def toys(monkeypatch: pytest.MonkeyPatch) -> None:
    """METHODS holds only the toy methods while the test runs."""
    all_methods()  # the built-ins register on first import: do that before the swap
    table = {cls.name: cls for cls in (AlwaysRejects, NeverRejects, LeaderVotes, FirstTenTriage)}
    monkeypatch.setattr(METHODS, "_items", table)
    monkeypatch.setattr(METHODS, "_loaded_entry_points", True)


def region_units(seed: int = 5) -> list[ReferenceUnit]:
    """A simulated election cut into its regions, standing in for a real clean reference."""
    election = simulate_clean(stations=400, regions=3, seed=seed, election_id="toy-reference")
    regions = sorted(set(election.stations["region"].to_list()))
    return [
        ReferenceUnit(
            reference="toy",
            kind="region",
            name=region,
            election=sub_election(election, pl.col("region") == region, suffix=region),
        )
        for region in regions
    ]


def strip(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records without their timings (the only field allowed to differ between runs)."""
    return {k: {f: v for f, v in r.items() if f != "timings"} for k, r in records.items()}


def entry(run: CalibrationRun, method: str) -> dict[str, Any]:
    """One method's measured numbers (its table document's ``entry``)."""
    result: dict[str, Any] = build_tables(run, command="test")[method]["entry"]
    return result


# --- rates ------------------------------------------------------------------------------------
def test_always_rejecting_method_has_false_positive_rate_one(toys: None, tmp_path: Path) -> None:
    plan = CalibrationPlan(
        elections=3, replicates=0, references=("toy",), methods=("toy-always-rejects",), **SMALL
    )
    run = run_calibration(plan, cache_dir=tmp_path, units=region_units())
    measured = entry(run, "toy-always-rejects")
    for level in ("0.05", "0.01"):
        assert measured["simulated"][level]["rate"] == 1.0
        assert measured["simulated"][level]["tests"] == 3
        assert measured["references"][level]["rate"] == 1.0
        assert measured["references"][level]["tests"] == 3
        assert measured["references"]["by_reference"]["toy"][level]["rejections"] == 3
        assert measured["references"]["by_kind"]["region"][level]["tests"] == 3
    assert measured["decision"] == "p-value"
    assert measured["unreliable"] is True
    assert "3 clean simulations" in measured["unreliable_reason"]


def test_never_rejecting_method_has_power_zero_everywhere(toys: None, tmp_path: Path) -> None:
    plan = CalibrationPlan(
        elections=1, replicates=2, references=(), methods=("toy-never-rejects",), **SMALL
    )
    run = run_calibration(plan, cache_dir=tmp_path)
    power = entry(run, "toy-never-rejects")["power"]
    assert sorted(power) == INJECTORS.names()
    for by_magnitude in power.values():
        assert len(by_magnitude) == 3
        for levels in by_magnitude.values():
            for rate in levels.values():
                assert rate["tests"] == 2 and rate["rejections"] == 0 and rate["rate"] == 0.0


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17, 857-872, table I: 0/10 and 81/263.
    low, high = wilson_interval(0, 10) or (0, 0)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=5e-5)
    low, high = wilson_interval(81, 263) or (0, 0)
    assert (low, high) == (pytest.approx(0.2553, abs=5e-5), pytest.approx(0.3662, abs=5e-5))
    assert wilson_interval(0, 0) is None


def fake_run(records: list[dict[str, Any]], plan: CalibrationPlan) -> CalibrationRun:
    return CalibrationRun(
        plan=plan,
        records={r["key"]: r for r in records},
        computed=len(records),
        cached=0,
        seconds=1.0,
        executor="serial",
        workers=1,
    )


def test_empirical_threshold_and_leave_one_out_rate(toys: None) -> None:
    plan = CalibrationPlan(
        elections=100, replicates=0, references=(), methods=("toy-leader-share",), **SMALL
    )
    records = [
        {
            "key": f"clean-{i:06d}",
            "kind": "clean",
            "methods": {
                "toy-leader-share": {
                    "p_value": None,
                    "statistic": float(i),
                    "flagged": 0,
                    "skipped": None,
                }
            },
        }
        for i in range(1, 101)
    ]
    measured = entry(fake_run(records, plan), "toy-leader-share")
    assert measured["decision"] == "empirical" and measured["tail"] == "upper"
    # 95th percentile of 1..100, rounded up to an observed value: 96 (5 values above it).
    assert measured["thresholds"]["0.05"] == 96.0
    assert measured["thresholds"]["0.01"] == 100.0
    # Each of 96..100 lies above the others' 95th percentile (95 without it); 1..95 do not.
    assert measured["simulated"]["0.05"]["rejections"] == 5
    assert measured["simulated"]["0.05"]["tests"] == 100


def test_triage_precision_and_recall_on_known_counts(toys: None) -> None:
    plan = CalibrationPlan(
        elections=1,
        replicates=2,
        references=(),
        methods=("toy-triage",),
        injectors=("carousel",),
        **SMALL,
    )
    records: list[dict[str, Any]] = []
    tallies = [(4, 10, 3), (6, 10, 5)]  # flagged, labelled, true positives per replicate
    for r, (flagged, labelled, hits) in enumerate(tallies):
        records.append(
            {
                "key": f"power-carousel-low-{r:04d}",
                "kind": "power",
                "injector": "carousel",
                "level": "low",
                "magnitude": 0.01,
                "methods": {
                    "toy-triage": {
                        "p_value": None,
                        "statistic": 10.0,
                        "flagged": flagged,
                        "skipped": None,
                        "scored": {
                            "flagged": flagged,
                            "labelled": labelled,
                            "true_positives": hits,
                        },
                    }
                },
            }
        )
    documents = build_tables(fake_run(records, plan), command="test")
    cell = documents["toy-triage"]["precision_recall"]["carousel"]["0.01"]
    assert cell["precision"] == pytest.approx(8 / 10)
    assert cell["recall"] == pytest.approx(8 / 20)
    assert (cell["elections"], cell["flagged"], cell["labelled"]) == (2, 10, 20)


def test_only_methods_that_score_stations_get_precision_and_recall(
    toys: None, tmp_path: Path
) -> None:
    plan = CalibrationPlan(
        elections=1,
        replicates=1,
        references=(),
        methods=("toy-triage", "toy-never-rejects"),
        injectors=("carousel",),
        **SMALL,
    )
    documents = build_tables(run_calibration(plan, cache_dir=tmp_path), command="test")
    assert "precision_recall" not in documents["toy-never-rejects"]
    scored = documents["toy-triage"]["precision_recall"]["carousel"]
    assert [cell["flagged"] for cell in scored.values()] == [10, 10, 10]  # ten flags each


def test_triage_is_scored_against_the_injectors_labels(toys: None) -> None:
    plan = CalibrationPlan(
        elections=1, replicates=1, references=(), methods=("toy-triage",), share=0.5, **SMALL
    )
    cell = Cell("power", 0, injector="vote-transfer", level="high", magnitude=0.5)
    record = run_cell(plan, cell, plan.method_specs())
    # The labels, rebuilt independently from the cell's documented seeds.
    base = simulate_clean(
        stations=300,
        regions=4,
        candidates=3,
        seed=cell_seed(cell, plan.seed, 0),
        election_id="x",
    )
    _, labels = INJECTORS.get("vote-transfer")(share=0.5, magnitude=0.5).apply(
        base, np.random.default_rng(cell_seed(cell, plan.seed, 1))
    )
    first_ten = set(sorted(base.stations["station_id"].to_list())[:10])
    scored = record["methods"]["toy-triage"]["scored"]
    assert scored == {
        "flagged": 10,
        "labelled": len(labels.stations),
        "true_positives": len(first_ten & set(labels.stations)),
    }
    assert scored["labelled"] == 150


def test_real_references_are_units_of_one_test_each(
    toys: None, mirror: Path, home: Path, tmp_path: Path
) -> None:
    from pollwatch.settings import load_settings

    plan = CalibrationPlan(
        elections=1,
        replicates=0,
        references=("canada-2011",),
        subsamples=3,
        methods=("toy-always-rejects",),
        **SMALL,
    )
    run = run_calibration(plan, settings=load_settings(), cache_dir=tmp_path)
    document = build_tables(run, command="test")["toy-always-rejects"]
    references = document["entry"]["references"]
    assert references["0.05"]["tests"] == 3 and references["0.05"]["rate"] == 1.0
    assert document["reference_units"]["canada-2011"]["units"] == 3
    # the whole election is run once too, and is not a test: the rates rest on the 3 subsamples
    assert [u["kind"] for u in run.reference_units.values()] == ["whole"] + ["subsample"] * 3
    assert set(references["by_kind"]) == {"subsample"}
    # 66,060 polls in the QSS file (see tests/calibration/test_references.py)
    assert references["whole"] == {
        "canada-2011": {
            "statistic": 1.0,
            "effect": None,
            "p_value": 0.0,
            "stations": 66_060,
            "sample_size": 1,
        }
    }
    assert document["reference_units"]["canada-2011"]["whole_stations"] == 66_060


# --- caching, seeds ---------------------------------------------------------------------------
def test_rerun_reuses_cached_cells_and_recomputes_a_damaged_one(toys: None, tmp_path: Path) -> None:
    plan = CalibrationPlan(
        elections=3,
        replicates=1,
        injectors=("carousel",),
        references=(),
        methods=("toy-leader-share", "toy-never-rejects"),
        **SMALL,
    )
    first = run_calibration(plan, cache_dir=tmp_path)
    # 6 elections (3 clean, 3 power) x 2 methods
    assert (first.computed, first.cached, first.elections) == (12, 0, 6)
    second = run_calibration(plan, cache_dir=tmp_path)
    assert (second.computed, second.cached, second.elections) == (0, 12, 0)
    assert second.records == first.records
    damaged = list((tmp_path / "cells" / "toy-leader-share").glob("*/clean-000001.json"))
    assert len(damaged) == 1
    damaged[0].write_text('{"key": "clean-0', encoding="utf-8")
    seen: list[tuple[str, bool]] = []
    third = run_calibration(
        plan, cache_dir=tmp_path, progress=lambda done, total, key, fresh: seen.append((key, fresh))
    )
    assert (third.computed, third.cached, third.elections) == (1, 11, 1)
    assert ("clean-000001", True) in seen
    assert seen[-1] == ("clean-000001", True)
    assert strip(third.records) == strip(first.records)
    # More elections reuse the smaller run's cells: same digest, only the new ones computed.
    larger = CalibrationPlan(**{**plan.__dict__, "elections": 4})
    assert larger.digest() == plan.digest()
    assert run_calibration(larger, cache_dir=tmp_path).computed == 2


def test_an_added_method_runs_only_its_own_cells(toys: None, tmp_path: Path) -> None:
    one = CalibrationPlan(
        elections=3,
        replicates=1,
        injectors=("carousel",),
        references=(),
        methods=("toy-leader-share",),
        **SMALL,
    )
    first = run_calibration(one, cache_dir=tmp_path)
    two = CalibrationPlan(**{**one.__dict__, "methods": ("toy-leader-share", "toy-never-rejects")})
    assert two.digest() == one.digest()  # the methods are not part of the plan digest
    second = run_calibration(two, cache_dir=tmp_path)
    # each election is built once, for the new method alone; the old method's cells are reused
    assert (second.computed, second.cached, second.elections) == (6, 6, 6)
    for key, record in second.records.items():
        assert (
            record["methods"]["toy-leader-share"]
            == first.records[key]["methods"]["toy-leader-share"]
        )
        assert set(record["methods"]) == {"toy-leader-share", "toy-never-rejects"}
    alone = run_calibration(
        CalibrationPlan(**{**one.__dict__, "methods": ("toy-never-rejects",)}),
        cache_dir=tmp_path / "alone",
    )
    assert strip(
        {k: {**r, "methods": {"toy-never-rejects": r["methods"]["toy-never-rejects"]}}
         for k, r in second.records.items()}
    ) == strip(alone.records)  # fmt: skip


def test_a_changed_method_invalidates_only_its_own_cells(
    toys: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = CalibrationPlan(
        elections=2,
        replicates=1,
        injectors=("carousel",),
        references=(),
        methods=("toy-leader-share", "toy-never-rejects"),
        **SMALL,
    )
    run_calibration(plan, cache_dir=tmp_path)
    digest = harness.method_code_digest

    def edited(cls: type[Method]) -> str:
        return "edited" if cls is NeverRejects else digest(cls)

    monkeypatch.setattr(harness, "method_code_digest", edited)
    again = run_calibration(plan, cache_dir=tmp_path)
    assert (again.computed, again.cached, again.elections) == (5, 5, 5)
    keys = {p.parent.name for p in (tmp_path / "cells" / "toy-never-rejects").rglob("*.json")}
    assert len(keys) == 2  # the old key's cells stay; the edited method has a key of its own


def test_a_method_code_digest_covers_its_module_and_base_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dip = METHODS.get("eft-dip")
    percentages = METHODS.get("integer-percentages")
    before = {cls: method_code_digest(cls) for cls in (dip, percentages)}
    assert before[dip] != before[percentages]
    source = harness._module_source

    def changed(name: str) -> Any:
        def read(module: Any) -> bytes:
            extra = b"# edited" if module.__name__ == name else b""
            return source(module) + extra

        return read

    monkeypatch.setattr(harness, "_module_source", changed(dip.__module__))
    assert method_code_digest(dip) != before[dip]
    assert method_code_digest(percentages) == before[percentages]
    plan = CalibrationPlan(elections=1, replicates=0, references=(), **SMALL)
    digest = plan.digest()
    monkeypatch.setattr(harness, "_module_source", changed("pollwatch.forensics.base"))
    assert method_code_digest(dip) != before[dip]
    assert method_code_digest(percentages) != before[percentages]
    assert plan.digest() == digest  # no method's code is part of the plan digest
    monkeypatch.setattr(harness, "_module_source", changed("pollwatch.synthetic.simulator"))
    assert plan.digest() != digest  # the simulator's is


def test_an_eft_kind_change_invalidates_only_that_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The EFT family is one package, a module per kind: editing one kind's module changes
    the digests of its tests alone; editing the shared ``_base`` changes every EFT test's."""
    names = ("eft-dip", "eft-skew", "eft-kurt", "eft-2bl", "eft-sobyanin")
    classes = {name: METHODS.get(name) for name in names}
    before = {name: method_code_digest(cls) for name, cls in classes.items()}
    source = harness._module_source

    def changed(module_name: str) -> Any:
        def read(module: Any) -> bytes:
            return source(module) + (b"# edited" if module.__name__ == module_name else b"")

        return read

    edits = {
        "pollwatch.forensics.eft.dip": {"eft-dip"},
        "pollwatch.forensics.eft.moments": {"eft-skew", "eft-kurt"},
        "pollwatch.forensics.eft.digit_tests": {"eft-2bl"},
        "pollwatch.forensics.eft.turnout_share": {"eft-sobyanin"},
        "pollwatch.forensics.eft._base": set(names),
    }
    for module_name, affected in edits.items():
        monkeypatch.setattr(harness, "_module_source", changed(module_name))
        now = {name: method_code_digest(cls) for name, cls in classes.items()}
        assert {name for name in names if now[name] != before[name]} == affected, module_name


def test_a_changed_injector_reruns_only_its_power_elections(toys: None, tmp_path: Path) -> None:
    plan = CalibrationPlan(
        elections=1,
        replicates=1,
        injectors=("carousel", "vote-transfer"),
        references=(),
        methods=("toy-never-rejects",),
        **SMALL,
    )
    assert run_calibration(plan, cache_dir=tmp_path).computed == 1 + 2 * 3
    moved = CalibrationPlan(**{**plan.__dict__, "magnitudes": {"carousel": (0.02, 0.05, 0.15)}})
    assert moved.digest() == plan.digest()
    again = run_calibration(moved, cache_dir=tmp_path)
    assert (again.computed, again.cached) == (1, 6)  # carousel's low magnitude only
    assert {k for k, r in again.records.items() if r.get("magnitude") == 0.02} == {
        "power-carousel-low-0000"
    }


def test_cells_are_seed_reproducible_alone_and_differ_across_seeds() -> None:
    plan = CalibrationPlan(elections=2, replicates=1, references=(), **SMALL)
    specs = [s for s in plan.method_specs() if s.name in ("eft-skew", "eft-c05s")]
    cells = plan_cells(plan)
    power = next(c for c in cells if c.kind == "power")
    for cell in (cells[1], power):
        once = run_cell(plan, cell, specs)
        again = run_cell(plan, cell, specs)
        assert strip({"x": once}) == strip({"x": again})
    other = CalibrationPlan(**{**plan.__dict__, "seed": 1})
    a = run_cell(plan, cells[1], specs)["methods"]["eft-skew"]["statistic"]
    b = run_cell(other, cells[1], specs)["methods"]["eft-skew"]["statistic"]
    assert a != b
    keys = [c.key for c in cells]
    assert len(set(keys)) == len(keys)
    seeds = {cell_seed(c, 0, 0) for c in cells}
    assert len(seeds) == len(cells)


# --- Ray ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    pytest.importorskip("ray", reason="the Ray executor needs the extra pollwatch[scale]")
    from pollwatch.calibration.executors import ensure_ray

    ray = ensure_ray(2, None)
    yield
    ray.shutdown()


def test_ray_and_serial_give_identical_tables(local_ray: None, tmp_path: Path) -> None:
    if seed_salted():
        pytest.skip("Ray workers are other processes, which --seed-salt does not reach")
    plan = CalibrationPlan(
        elections=2,
        replicates=1,
        injectors=("incremental-stuffing",),
        references=("toy",),
        methods=("beber-scacco", "eft-c05s", "eft-skew", "triage"),
        **SMALL,
    )
    units = region_units()
    serial = run_calibration(plan, cache_dir=tmp_path / "serial", units=units)
    finished: list[str] = []
    parallel = run_calibration(
        plan,
        cache_dir=tmp_path / "ray",
        units=units,
        executor="ray",
        workers=2,
        progress=lambda done, total, key, fresh: finished.append(key) if fresh else None,
    )
    assert parallel.computed == serial.computed == (2 + 3 + 3) * 4
    assert sorted(finished) == sorted(serial.records)
    assert strip(parallel.records) == strip(serial.records)
    tables = [build_tables(r, command="test", date="2000-01-01") for r in (serial, parallel)]
    assert tables[0] == tables[1]


# --- the command line --------------------------------------------------------------------------
def test_calibrate_command_writes_tables_and_docs(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "tables"
    docs = tmp_path / "docs" / "calibration.md"
    out = tmp_path / "tables.json"
    args = [
        "calibrate", "--elections", "2", "--stations", "300", "--replicates", "1",
        "--no-references", "--method", "eft-dip", "--method", "eft-skew",
        "--executor", "serial", "--workers", "1", "--write-table", "--table-dir", str(folder),
        "--json", str(out), "--docs", str(docs),
    ]  # fmt: skip
    code, stdout, stderr = cli(capsys, *args)
    assert code == 0, stderr
    documents = json.loads(out.read_text("utf-8"))
    assert sorted(p.name for p in folder.iterdir()) == ["eft-dip.json", "eft-skew.json"]
    for name in ("eft-dip", "eft-skew"):
        assert json.loads((folder / f"{name}.json").read_text("utf-8")) == documents[name]
    skew = documents["eft-skew"]
    assert skew["format"] == "pollwatch-calibration/2" and skew["method"] == "eft-skew"
    assert skew["entry"]["decision"] == "empirical"
    assert skew["entry"]["tail"] == "two-sided"
    assert skew["plan"]["elections"] == 2
    assert skew["measured"]["code"] == method_code_digest(METHODS.get("eft-skew"))
    assert "--elections 2" in skew["measured"]["command"]
    assert f"--table-dir {folder.as_posix()}" in skew["measured"]["command"]
    page = docs.read_text("utf-8")
    # the page shows the shipped tables with these two files in place of the shipped ones
    assert skew["measured"]["command"] in page
    assert "`eft-dip`" in page and "incremental-stuffing" in page and "`beber-scacco`" in page
    assert (docs.parent / "calibration-power.svg").read_text("utf-8").startswith("<svg")
    assert "40 cells (2 methods x 20 elections): 40 computed" in stdout
    assert "note: eft-dip was measured with elections=2" in stdout
    code, stdout, _ = cli(capsys, *args)
    assert code == 0 and "40 cells (2 methods x 20 elections): 0 computed, 40 from" in stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--method", "no-such-method"], "unknown method 'no-such-method'"),
        (["--elections", "0"], "elections=0 is out of range"),
        (["--executor", "ray", "--address", "127.0.0.1:9"], "cannot reach the Ray cluster"),
        (["--executor", "threads"], "unknown executor 'threads'"),
        (["--table-dir", "x"], "--table-dir without --write-table"),
    ],
)
def test_calibrate_bad_input_is_one_line(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    base = ["calibrate", "--elections", "1", "--stations", "300", "--replicates", "0"]
    code, _, stderr = cli(capsys, *base, "--no-references", *args)
    assert code == 2
    assert words in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr


def test_docs_page_shows_rates_power_and_unreliable_reasons(toys: None, tmp_path: Path) -> None:
    from pollwatch.calibration.docs import render_markdown, render_power_svg

    plan = CalibrationPlan(
        elections=3,
        replicates=1,
        injectors=("carousel",),
        references=("toy",),
        methods=("toy-always-rejects", "toy-never-rejects"),
        **SMALL,
    )
    run = run_calibration(plan, cache_dir=tmp_path, units=region_units())
    documents = build_tables(run, command="pollwatch calibrate --elections 3", date="2000-01-01")
    table = CalibrationTable.from_documents(documents.values())
    page = render_markdown(table, power_svg="calibration-power.svg")
    assert "pollwatch calibrate --elections 3" in page
    row = next(line for line in page.splitlines() if line.startswith("| `toy-always-rejects`"))
    assert "100.0% (3/3)" in row and "**unreliable**" in row
    reason = documents["toy-always-rejects"]["entry"]["unreliable_reason"]
    assert f"* `toy-always-rejects`: {reason}" in page
    assert "These entries were measured by other runs" not in page  # one run measured both
    assert "| method | low (0.01) | medium (0.05) | high (0.15) |" in page
    power_row = next(
        line for line in page.splitlines() if line.startswith("| `toy-never-rejects` | 0.0% (0/1)")
    )
    assert power_row.count("0.0% (0/1)") == 3
    assert "![Power at α = 0.05](calibration-power.svg)" in page
    svg = render_power_svg(table)
    assert svg.count("<rect") == 2 * 3 and ">100<" in svg and ">0<" in svg
