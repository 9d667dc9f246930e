"""The calibration tables: one file per method, the user's folder over the shipped one.

``pollwatch calibrate -m NAME --write-table`` must add or refresh NAME's file alone (every
other file byte for byte as it was), into ``<home>/calibration/tables/`` by default or
``--table-dir``; results read a file written in the same process; a user's file replaces the
shipped one of its method; a damaged file is left out and named. Toy methods stand in for
the built-ins (tests/calibration/test_harness.py's ``toys``), on tiny plans with the serial
executor.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pollwatch.calibration.docs import render_markdown
from pollwatch.calibration.harness import (
    CalibrationPlan,
    build_tables,
    plan_differences,
    run_calibration,
    write_tables,
)
from pollwatch.calibration.references import ReferenceUnit
from pollwatch.forensics.calibration import (
    CalibrationTable,
    calibration_summary,
    calibration_table,
    clear_calibration_cache,
    read_tables,
    shipped_tables_folder,
    user_tables_folder,
)
from pollwatch.synthetic.simulator import simulate_clean
from tests.calibration.test_harness import SMALL, LeaderVotes, region_units, toys  # noqa: F401
from tests.helpers import run_cli as cli

PLAN = ["--elections", "2", "--stations", "300", "--replicates", "0", "--no-references"]
RUN = ["--executor", "serial", "--workers", "1", "--seed", "3", "--write-table"]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of ``folder``: its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_write_table_adds_one_method_and_touches_no_other_file(
    toys: None,  # noqa: F811
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    for name in ("eft-dip", "triage"):
        shutil.copy(shipped_tables_folder() / f"{name}.json", folder)
    args = ["calibrate", *PLAN, "--method", "toy-never-rejects", *RUN, "--table-dir", str(folder)]
    code, _, stderr = cli(capsys, *args)
    assert code == 0, stderr
    before = snapshot(folder)
    assert sorted(before) == ["eft-dip.json", "toy-never-rejects.json", "triage.json"]
    args = ["calibrate", *PLAN, "--method", "toy-leader-share", *RUN, "--table-dir", str(folder)]
    code, stdout, stderr = cli(capsys, *args)
    assert code == 0, stderr
    assert f"wrote 1 table file(s) to {folder}: toy-leader-share.json" in stdout
    after = snapshot(folder)
    assert sorted(after) == sorted([*before, "toy-leader-share.json"])
    for name, content in before.items():
        assert after[name] == content, f"{name} was touched"
    # refreshing a method rewrites its own file alone
    code, _, stderr = cli(capsys, *args, "--elections", "3")
    assert code == 0, stderr
    again = snapshot(folder)
    assert again["toy-leader-share.json"] != after["toy-leader-share.json"]
    assert {n: c for n, c in again.items() if n != "toy-leader-share.json"} == before
    document = json.loads((folder / "toy-leader-share.json").read_text("utf-8"))
    assert document["plan"]["elections"] == 3
    assert document["entry"]["simulated"]["0.05"]["tests"] == 3
    assert "--method toy-leader-share" in document["measured"]["command"]


def test_write_table_goes_to_the_user_folder_and_is_read_at_once(
    toys: None,  # noqa: F811
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert calibration_summary("toy-leader-share") is None  # read (and cached) before
    election = simulate_clean(stations=300, seed=2)
    assert LeaderVotes().run(election).calibration is None
    code, stdout, stderr = cli(capsys, "calibrate", *PLAN, "--method", "toy-leader-share", *RUN)
    assert code == 0, stderr
    folder = home / "calibration" / "tables"
    assert user_tables_folder() == folder
    assert [p.name for p in folder.iterdir()] == ["toy-leader-share.json"]
    # the shipped tables' plan is another one: said, not refused
    assert "note: toy-leader-share was measured with elections=2" in stdout
    calibration = calibration_summary("toy-leader-share")
    assert calibration is not None and calibration.calibrated
    assert calibration.decision == "empirical" and calibration.simulated_tests == 2
    assert "--method toy-leader-share" in calibration.source
    result = LeaderVotes().run(election)
    assert result.calibration == calibration
    assert "calibration: " in result.headline()
    # the shipped methods are still calibrated from the shipped files
    shipped = calibration_summary("eft-dip")
    assert shipped is not None and "2026-11-28" in shipped.source
    table = calibration_table()
    assert table.origins["toy-leader-share"] == str(folder / "toy-leader-share.json")
    assert table.origins["eft-dip"] == str(shipped_tables_folder() / "eft-dip.json")


def test_tables_written_under_home_option_are_read_back_from_there(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--home X calibrate --write-table`` writes X's table, ``--home X analyze`` reads it,
    though the settings' home (POLLWATCH_HOME) is another folder."""
    other = tmp_path / "other-home"
    plan = [*PLAN, "--method", "triage", *RUN]
    code, _, stderr = cli(capsys, "--home", str(other), "calibrate", *plan)
    assert code == 0, stderr
    written = other / "calibration" / "tables" / "triage.json"
    assert [p.name for p in written.parent.iterdir()] == ["triage.json"]
    assert not (home / "calibration" / "tables").exists()
    code, _, stderr = cli(capsys, "--home", str(other), "simulate", "--stations", "300")
    assert code == 0, stderr
    out = tmp_path / "results.json"
    args = ["--home", str(other), "analyze", "simulated-0", "-m", "triage", "--json", str(out)]
    code, _, stderr = cli(capsys, *args)
    assert code == 0, stderr
    (result,) = json.loads(out.read_text("utf-8"))["results"]
    calibration = result["calibration"]
    assert calibration["simulated_tests"] == 2 and calibration["reference_tests"] == 0
    assert "--method triage" in calibration["source"]
    # outside the command, the settings' home is in force again: the shipped table
    shipped = calibration_summary("triage")
    assert shipped is not None and shipped.simulated_tests == 200
    assert user_tables_folder() == home / "calibration" / "tables"


def test_a_user_file_replaces_the_shipped_one_of_its_method(home: Path) -> None:
    folder = home / "calibration" / "tables"
    folder.mkdir(parents=True)
    document = json.loads((shipped_tables_folder() / "eft-dip.json").read_text("utf-8"))
    document["entry"]["unreliable"] = True
    document["entry"]["unreliable_reason"] = "flags 40% of 10 clean reference units"
    document["measured"]["command"] = "pollwatch calibrate -m eft-dip --write-table"
    (folder / "eft-dip.json").write_text(json.dumps(document), encoding="utf-8")
    mine = calibration_summary("eft-dip")
    assert mine is not None and mine.unreliable
    assert mine.words() == "UNRELIABLE: flags 40% of 10 clean reference units"
    assert mine.source.startswith("pollwatch calibrate -m eft-dip --write-table")
    other = calibration_summary("eft-c05s")
    shipped = read_tables(shipped_tables_folder()).summary("eft-c05s")
    assert other == shipped and other is not None
    # the run behind most entries is still the shipped one
    assert calibration_table().source() == read_tables(shipped_tables_folder()).source()


def test_a_damaged_file_is_left_out_and_named(home: Path) -> None:
    folder = home / "calibration" / "tables"
    folder.mkdir(parents=True)
    (folder / "eft-dip.json").write_text('{"format": "pollwatch-calib', encoding="utf-8")
    shipped = json.loads((shipped_tables_folder() / "eft-skew.json").read_text("utf-8"))
    (folder / "renamed.json").write_text(json.dumps(shipped), encoding="utf-8")
    table = calibration_table()
    assert table.origins["eft-dip"] == str(shipped_tables_folder() / "eft-dip.json")
    assert table.origins["eft-skew"] == str(shipped_tables_folder() / "eft-skew.json")
    assert "renamed" not in table
    assert len(table.problems) == 2
    assert any("eft-dip.json: the calibration table cannot be read" in p for p in table.problems)
    assert any("not 'renamed'" in p for p in table.problems)


def test_tables_are_reread_when_a_folder_changes(toys: None, tmp_path: Path) -> None:  # noqa: F811
    plan = CalibrationPlan(elections=2, replicates=0, references=(), methods=None, **SMALL)
    documents = build_tables(run_calibration(plan, cache_dir=tmp_path / "cells"), command="x")
    folder = tmp_path / "tables"
    write_tables(documents, folder, ["toy-never-rejects"])
    first = read_tables(folder)
    assert first.names() == ("toy-never-rejects",)
    assert read_tables(folder) is first  # cached while nothing changed
    write_tables(documents, folder, ["toy-always-rejects"])
    assert read_tables(folder).names() == ("toy-always-rejects", "toy-never-rejects")
    clear_calibration_cache()
    again = read_tables(folder)
    assert again == read_tables(folder) and again.names() == (
        "toy-always-rejects",
        "toy-never-rejects",
    )


def test_plan_differences_name_the_settings() -> None:
    plan = CalibrationPlan(elections=2, replicates=1, references=(), **SMALL)
    other = CalibrationPlan(**{**plan.__dict__, "elections": 3, "seed": 4})
    assert plan_differences(plan, other) == ("elections=2, seed=0", "elections=3, seed=4")
    assert plan_differences(plan, plan) == ("", "")


def test_whole_reference_numbers_are_shown_and_not_counted(toys: None, tmp_path: Path) -> None:  # noqa: F811
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
    documents = build_tables(run, command="test", date="2000-01-01")
    entry = documents["toy-always-rejects"]["entry"]["references"]
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
    share = float(election.stations[leader.column].sum()) / float(election.stations["valid"].sum())
    shown = documents["toy-leader-share"]["entry"]["references"]["whole"]["toy"]
    assert shown["statistic"] == pytest.approx(share)
    assert shown["p_value"] is None
    page = render_markdown(CalibrationTable.from_documents(documents.values()))
    assert "### The whole reference elections (not tests)" in page
    assert f"`toy` ({len(election):,} stations)" in page
    assert "| `toy-always-rejects` | 1; p = 0 |" in page


def test_the_docs_page_is_the_shipped_tables_rendered() -> None:
    """docs/calibration.md and its heat map are what the generator makes of the shipped files."""
    from pollwatch.calibration.docs import render_power_svg

    docs = Path(__file__).resolve().parents[2] / "docs"
    table = read_tables(shipped_tables_folder())
    assert table.problems == ()
    page = render_markdown(table, power_svg="calibration-power.svg")
    assert (docs / "calibration.md").read_text("utf-8") == page
    assert (docs / "calibration-power.svg").read_text("utf-8") == render_power_svg(table)
