"""Method-subset runs merged into the shipped table, and the whole-reference statistics.

``pollwatch calibrate --method A --write-table`` must replace only A's entry of the shipped
table when the plan is the table's, and refuse (one line, naming the settings) when it is not.
Toy methods stand in for the built-ins (tests/calibration/test_harness.py's ``toys``), on tiny
plans with the serial executor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pollwatch.calibration import harness
from pollwatch.calibration.docs import render_markdown
from pollwatch.calibration.harness import (
    CalibrationPlan,
    build_table,
    check_same_plan,
    merge_tables,
    plan_settings,
    run_calibration,
)
from pollwatch.cli import main
from pollwatch.errors import PollwatchError
from tests.calibration.test_harness import SMALL, region_units, toys  # noqa: F401

PLAN = ["--elections", "2", "--stations", "300", "--replicates", "1", "--no-references"]
RUN = ["--executor", "serial", "--workers", "1", "--seed", "3", "--write-table"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped table's path, moved into the test's folder."""
    path = tmp_path / "shipped" / "calibration.json"
    monkeypatch.setattr(harness, "default_table_path", lambda: path)
    return path


def test_subset_run_replaces_only_its_methods(
    toys: None,  # noqa: F811
    home: Path,
    shipped: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    both = ["--method", "toy-always-rejects", "--method", "toy-leader-share"]
    code, _, stderr = cli(capsys, "calibrate", *PLAN, *both, *RUN)
    assert code == 0, stderr
    before = json.loads(shipped.read_text("utf-8"))
    assert (
        before["methods"]["toy-leader-share"]["measured"]["command"]
        == (before["generated"]["command"])
    )
    docs = tmp_path / "docs" / "calibration.md"
    args = ["calibrate", *PLAN, "--method", "toy-always-rejects", *RUN, "--docs", str(docs)]
    code, stdout, stderr = cli(capsys, *args)
    assert code == 0, stderr
    assert "merged 1 method(s) into the shipped table (2 in all)" in stdout
    after = json.loads(shipped.read_text("utf-8"))
    assert list(after["methods"]) == ["toy-always-rejects", "toy-leader-share"]
    # the other method's entry is kept as it was, number for number
    assert after["methods"]["toy-leader-share"] == before["methods"]["toy-leader-share"]
    rerun = after["methods"]["toy-always-rejects"]
    assert rerun["simulated"]["0.05"]["tests"] == 2 and rerun["simulated"]["0.05"]["rate"] == 1.0
    assert "--method toy-always-rejects" in rerun["measured"]["command"]
    assert "toy-leader-share" not in rerun["measured"]["command"]
    assert rerun["measured"]["code"] == harness._code_fingerprint()
    # the table's command still regenerates everything; the rerun is listed beside it
    assert after["generated"]["command"] == before["generated"]["command"]
    assert [r["methods"] for r in after["generated"]["reruns"]] == [["toy-always-rejects"]]
    page = docs.read_text("utf-8")
    assert before["generated"]["command"] in page
    assert f"`toy-always-rejects`, by `{rerun['measured']['command']}`" in page
    assert "`toy-leader-share`" in page  # the page shows the merged table, not the subset


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (["--elections", "3"], "elections=2; this run has elections=3"),
        (["--seed", "4"], "seed=3; this run has seed=4"),
        (["--stations", "400"], "stations=300, power_stations=300; this run has stations=400"),
    ],
)
def test_subset_run_with_another_plan_is_refused_before_running(
    toys: None,  # noqa: F811
    home: Path,
    shipped: Path,
    capsys: pytest.CaptureFixture[str],
    change: list[str],
    words: str,
) -> None:
    code, _, stderr = cli(capsys, "calibrate", *PLAN, "--method", "toy-leader-share", *RUN)
    assert code == 0, stderr
    before = shipped.read_bytes()
    # later options win in the command line, so the changed setting comes last
    args = ["calibrate", *PLAN, "--method", "toy-always-rejects", *RUN, *change]
    code, stdout, stderr = cli(capsys, *args)
    assert code == 2
    assert words in stderr and "cannot replace the table's" in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert "cells" not in stdout  # nothing ran
    assert shipped.read_bytes() == before


def test_a_whole_run_still_rewrites_the_table(
    toys: None,  # noqa: F811
    home: Path,
    shipped: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, _ = cli(capsys, "calibrate", *PLAN, "--method", "toy-leader-share", *RUN)
    assert code == 0
    # no --method: every registered (toy) method, and a new plan is fine
    code, _, stderr = cli(capsys, "calibrate", *PLAN, *RUN, "--elections", "3")
    assert code == 0, stderr
    table = json.loads(shipped.read_text("utf-8"))
    assert table["generated"]["simulated"]["elections"] == 3
    assert "reruns" not in table["generated"]
    assert set(table["methods"]) == {
        "toy-always-rejects",
        "toy-never-rejects",
        "toy-leader-share",
        "triage",
    }


def small_table(methods: tuple[str, ...], tmp_path: Path, seed: int = 0) -> dict[str, Any]:
    plan = CalibrationPlan(
        elections=2,
        replicates=1,
        injectors=("carousel",),
        references=("toy",),
        subsamples=0,  # the toy units are regions only, as an old table would show
        methods=methods,
        seed=seed,
        **SMALL,
    )
    run = run_calibration(plan, cache_dir=tmp_path / "-".join(methods), units=region_units())
    return build_table(run, command="pollwatch calibrate " + " ".join(methods), date="2000-01-01")


def test_merge_keeps_old_entries_and_replaces_triage_only_with_it(
    toys: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    full = small_table(("toy-never-rejects", "toy-leader-share"), tmp_path)
    full["triage"] = {"marker": "the shipped triage block"}
    full["generated"].pop("plan")  # as in tables written before the plan block existed
    del full["methods"]["toy-leader-share"]["measured"]
    merged = merge_tables(full, small_table(("toy-never-rejects",), tmp_path))
    assert merged["triage"] == {"marker": "the shipped triage block"}
    # an old entry gains the measured record of the table it came from
    assert merged["methods"]["toy-leader-share"]["measured"]["command"] == (
        "pollwatch calibrate toy-never-rejects toy-leader-share"
    )
    merged = merge_tables(merged, small_table(("triage",), tmp_path))
    assert merged["triage"]["carousel"]["0.01"]["flagged"] == 10  # FirstTenTriage: 10 flags
    assert list(merged["methods"]) == ["toy-never-rejects", "toy-leader-share", "triage"]
    assert [r["methods"] for r in merged["generated"]["reruns"]] == [
        ["toy-never-rejects"],
        ["triage"],
    ]
    with pytest.raises(PollwatchError, match=r"seed=0; this run has seed=1"):
        merge_tables(merged, small_table(("triage",), tmp_path, seed=1))


def test_plan_settings_of_an_old_table_are_read_back(toys: None, tmp_path: Path) -> None:  # noqa: F811
    table = small_table(("toy-never-rejects",), tmp_path)
    recorded = plan_settings(table)
    table["generated"].pop("plan")
    # subsample_fraction cannot be read back; the command line never changes it from 0.25
    assert plan_settings(table) == recorded
    plan = CalibrationPlan(
        elections=2,
        replicates=1,
        injectors=("carousel",),
        references=("toy",),
        subsamples=0,
        **SMALL,
    )
    check_same_plan(table, plan)
    with pytest.raises(PollwatchError, match=r"references=toy; this run has references=none"):
        check_same_plan(table, CalibrationPlan(**{**plan.__dict__, "references": ()}))


def test_whole_reference_numbers_are_shown_and_not_counted(toys: None, tmp_path: Path) -> None:  # noqa: F811
    from pollwatch.calibration.references import ReferenceUnit

    units = region_units()
    election = units[0].election
    whole = ReferenceUnit(reference="toy", kind="whole", name="whole election", election=election)
    plan = CalibrationPlan(
        elections=2,
        replicates=0,
        references=("toy",),
        methods=("toy-always-rejects", "toy-leader-share"),
        **SMALL,
    )
    run = run_calibration(plan, cache_dir=tmp_path, units=[whole, *units])
    assert "whole-toy" in run.records
    table = build_table(run, command="test", date="2000-01-01")
    entry = table["methods"]["toy-always-rejects"]["references"]
    assert entry["0.05"]["tests"] == len(units)  # the whole election is not a test
    assert set(entry["by_kind"]) == {"region"}
    assert entry["whole"]["toy"] == {
        "statistic": 1.0,
        "effect": None,
        "p_value": 0.0,
        "stations": len(election),
        "sample_size": 1,
    }
    leader = election.leader()
    assert leader is not None
    share = election.stations[leader.column].sum() / election.stations["valid"].sum()
    shown = table["methods"]["toy-leader-share"]["references"]["whole"]["toy"]
    assert shown["statistic"] == pytest.approx(share)
    assert shown["p_value"] is None
    page = render_markdown(table)
    assert "### The whole reference elections (not tests)" in page
    assert f"`toy` ({len(election):,} stations)" in page
    assert "| `toy-always-rejects` | 1; p = 0 |" in page
