"""The CLI reads well at 80 columns: golden outputs, whole identifiers, the regional tables.

The commands ``list``, ``show``, ``analyze``, ``analyze --by region``, ``methods`` and
``formats`` are rendered at width 80 (a ``rich`` console of width 80, no colour) on a small
simulated election and compared with the files in ``tests/golden/``. Regenerate them after an
intended change of wording or layout with::

    POLLWATCH_UPDATE_GOLDENS=1 .venv/bin/pytest -q tests/test_cli_width.py

and read the diff (``git diff tests/golden``) before committing it. The goldens hold no
absolute paths, timings or changing dates: the store lives in a temporary folder that is never
printed, and the simulated election's date is fixed. The goldens of the simulated election pin
one random stream (``exact_stream``: skipped under ``--seed-salt``); the width and ordering
checks hold for any stream.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

import pollwatch.cli
from pollwatch.cli import main
from pollwatch.forensics.base import MethodResult, all_methods
from pollwatch.forensics.digits import benjamini_hochberg
from pollwatch.forensics.suite import SuiteReport, regional_rows, run_suite
from pollwatch.results.importers import all_importers
from pollwatch.results.model import make_election
from pollwatch.results.store import ElectionStore
from pollwatch.synthetic.simulator import simulate_clean
from tests.helpers import mask_optimiser_figures, small_election

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("POLLWATCH_UPDATE_GOLDENS") == "1"
WIDTH = 80
SIMULATED = "golden-sim"
#: a real dataset's id, cut by the list table at 80 columns before
MEDSL_ID = "us-2016-president-medsl"
#: an id so long that the other columns of the list must fold for it to stay whole
LONG_ID = "a-rather-long-election-identifier-2024-r1"


@pytest.fixture(scope="module")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    store = ElectionStore(home / "elections")
    store.save(simulate_clean(stations=600, regions=4, candidates=3, seed=7, election_id=SIMULATED))
    store.save(small_election(MEDSL_ID))
    no_regions = small_election("no-regions")
    frame = no_regions.stations.with_columns(pl.lit(None, dtype=pl.String).alias("region"))
    store.save(make_election(no_regions.meta, frame.select(no_regions.stations.columns)))
    return home


def run_at_80(
    monkeypatch: pytest.MonkeyPatch, home: Path, *args: str
) -> tuple[int, str, list[str]]:
    """Run the CLI with its console at width 80; (exit code, stdout, stdout lines stripped)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=WIDTH, color_system=None, emoji=False, soft_wrap=False)
    monkeypatch.setattr(pollwatch.cli, "console", console)
    code = main(["--home", str(home), *args])
    text = buffer.getvalue()
    return code, text, [line.rstrip() for line in text.splitlines()]


def too_wide(lines: list[str]) -> list[str]:
    """Lines wider than 80, but for the simulation notice, one line on purpose (test_demo)."""
    return [
        line
        for line in lines
        if len(line) > WIDTH and not line.startswith("SIMULATED election, not real results")
    ]


def check_golden(name: str, lines: list[str]) -> None:
    path = GOLDEN / f"{name}.txt"
    text = "\n".join(mask_optimiser_figures(lines)).rstrip("\n") + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run with POLLWATCH_UPDATE_GOLDENS=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"{name} output differs from {path}; if the change is intended, regenerate with "
        "POLLWATCH_UPDATE_GOLDENS=1 (see this module's docstring)"
    )


COMMANDS: dict[str, tuple[str, ...]] = {
    "list": ("list",),
    "show": ("show", SIMULATED, "--stations", "3"),
    "analyze": ("analyze", SIMULATED),
    "analyze-by-region": ("analyze", SIMULATED, "--by", "region"),
    "methods": ("methods",),
    "formats": ("formats",),
}
#: goldens that depend on the simulated election's random stream
STREAM_DEPENDENT = {"list", "show", "analyze", "analyze-by-region"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[pytest.mark.exact_stream] if n in STREAM_DEPENDENT else [])
        for n in COMMANDS
    ],
)
def test_golden_output_at_80_columns(
    name: str, store_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, lines = run_at_80(monkeypatch, store_home, *COMMANDS[name])
    assert code == 0
    check_golden(name, lines)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_table_fits_80_columns(
    name: str, store_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, lines = run_at_80(monkeypatch, store_home, *COMMANDS[name])
    assert code == 0
    assert lines, "no output"
    assert too_wide(lines) == []


@pytest.fixture(scope="module")
def long_id_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("long")
    store = ElectionStore(home / "elections")
    for election_id in (LONG_ID, MEDSL_ID, "x"):
        store.save(small_election(election_id))
    return home


def test_list_shows_whole_ids(
    store_home: Path, long_id_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, text, lines = run_at_80(monkeypatch, store_home, "list")
    for election_id in (SIMULATED, MEDSL_ID, "no-regions"):
        assert any(election_id in line for line in lines), f"{election_id} cut in:\n{text}"
    assert "…" not in text
    _, text, lines = run_at_80(monkeypatch, long_id_home, "list")
    for election_id in (LONG_ID, MEDSL_ID):
        assert any(election_id in line for line in lines), f"{election_id} cut in:\n{text}"
    assert "…" not in text and too_wide(lines) == []
    assert "presidential" not in text  # the kind column folded to make room for the id


def test_list_at_80_columns_in_a_real_terminal_width(long_id_home: Path) -> None:
    """The installed command, with COLUMNS=80 as a user's terminal sets it."""
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pollwatch", "--home", str(long_id_home), "list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= WIDTH
    assert any(LONG_ID in line for line in lines)


def test_analyze_names_every_method_whole_and_compact_calibration(
    store_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, lines = run_at_80(monkeypatch, store_home, "analyze", SIMULATED)
    assert code == 0
    # the verdict comes first (docs/verdict.md); the methods table starts at its title
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("Methods: ")) :]
    suite = run_suite(ElectionStore(store_home / "elections").load(SIMULATED))
    table = lines[: next(i for i, line in enumerate(lines) if line.startswith("calibration:"))]
    rows = [line for line in table if line and line.split()[0] in {r.method for r in suite.results}]
    assert {line.split()[0] for line in rows} == {r.method for r in suite.results}
    # the compact calibration: at most two lines per method (was 10-15 at 80 columns)
    body = table[table.index(next(line for line in table if line.startswith("──"))) + 1 :]
    assert len(body) <= 2 * len(suite.results)
    assert "clean simulations" not in "\n".join(table)  # the long wording is not in the table
    _, wide, _ = run_at_80(monkeypatch, store_home, "analyze", SIMULATED, "--wide")
    assert "on clean elections: " in wide and "clean simulations" in wide


def test_methods_lists_every_method_with_its_full_calibration(
    store_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, text, lines = run_at_80(monkeypatch, store_home, "methods")
    names = [name for name, _ in all_methods()]
    for name in names:
        assert any(line.startswith(f"│ {name} ") for line in lines), name
    assert text.count("calibration: ") >= len(names)


def test_import_help_lists_the_registered_importers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code = main(["import", "--help"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Formats" in out
    for importer in all_importers():
        assert f"{importer.name}: " in out, importer.name
        first_words = " ".join(importer.description.split()[:3])
        assert first_words in " ".join(out.split()), importer.name


def test_by_region_without_regions_is_one_line_and_non_zero(
    store_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_at_80(monkeypatch, store_home, "analyze", "no-regions", "--by", "region")
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""  # nothing ran, no national table
    assert len(err.strip().splitlines()) == 1
    assert "'no-regions' has no regions" in err and "run without --by region" in err


def need(suite: SuiteReport, method: str) -> MethodResult:
    result = suite.result(method)
    assert result is not None, f"{method} did not run: {suite.skipped}"
    return result


@pytest.fixture(scope="module")
def regional_suite(store_home: Path) -> Iterator[tuple[SuiteReport, SuiteReport]]:
    election = ElectionStore(store_home / "elections").load(SIMULATED)
    methods = ["eft-2bl", "eft-correlation", "eft-kurt", "shpilkin", "integer-percentages"]
    national = run_suite(election, methods)
    regional = run_suite(election, methods, by_region=True)
    yield national, regional


def test_regional_rows_sorted_by_q_then_p_with_bh_q_values(
    regional_suite: tuple[SuiteReport, SuiteReport],
) -> None:
    _, regional = regional_suite
    for method in ("eft-2bl", "eft-correlation"):
        result = need(regional, method)
        rows = regional_rows(result)
        assert len(rows) == 4  # one per region (150 stations each)
        keys = [(row.q_value, row.p_value) for row in rows]
        assert keys == sorted(keys)
        p_values = [row.p_value for row in rows]
        assert all(p is not None for p in p_values)
        expected = benjamini_hochberg([float(p) for p in p_values if p is not None])
        assert [row.q_value for row in rows] == pytest.approx(expected)
        assert all(row.flagged == (row.q_value is not None and row.q_value < 0.05) for row in rows)
    digits = {r["region"]: r for r in need(regional, "eft-2bl").details["regions"]}
    for row in regional_rows(need(regional, "eft-2bl")):
        assert row.value == pytest.approx(
            digits[row.region]["mean"] - digits[row.region]["expected"]
        )
    shpilkin = regional_rows(need(regional, "shpilkin"))
    values = [row.value for row in shpilkin if row.value is not None]
    assert values == sorted(values, reverse=True) and len(values) == 4
    assert regional_rows(need(regional, "integer-percentages")) == ()


def test_by_region_keeps_the_national_numbers_and_their_calibration(
    regional_suite: tuple[SuiteReport, SuiteReport],
) -> None:
    national, regional = regional_suite
    for result in national.results:
        twin = need(regional, result.method)
        assert (twin.statistic, twin.p_value, twin.effect) == (
            result.statistic,
            result.p_value,
            result.effect,
        )
        # a by_region run is calibrated like the national one, not "other parameters"
        assert twin.calibration == result.calibration


def test_analyze_by_region_prints_a_table_per_regional_method(
    store_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, text, lines = run_at_80(monkeypatch, store_home, "analyze", SIMULATED, "--by", "region")
    assert code == 0
    assert "Methods: golden-sim" in text
    assert "eft-2bl by region: 4 regions" in text
    assert "shpilkin by region: 4 regions" in text
    assert "no regional breakdown: " in text
    start = lines.index("eft-2bl by region: 4 regions")
    assert lines[start + 1].split() == [
        "region",
        "stations",
        "value",
        "p-value",
        "q-value",
        "flagged",
    ]
    rows = [line.split() for line in lines[start + 3 : start + 7]]
    assert [" ".join(row[:2]) for row in rows] == [
        row.region for row in regional_rows(run_regional(store_home, "eft-2bl"))
    ]
    q_values = [float(row[5]) for row in rows]  # region is two words: "Region 00"
    assert q_values == sorted(q_values)


def run_regional(home: Path, method: str) -> MethodResult:
    election = ElectionStore(home / "elections").load(SIMULATED)
    result = run_suite(election, [method], by_region=True).result(method)
    assert result is not None
    return result
