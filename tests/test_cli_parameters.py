"""``analyze -p KEY=VALUE`` and ``methods NAME``: method parameters on the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import pollwatch.cli
from pollwatch.cli import main
from pollwatch.results.store import ElectionStore
from pollwatch.synthetic.simulator import simulate_clean
from tests.helpers import run_cli as run

ELECTION = "params-cli"
#: klimek-fraud-model at its cheapest (the conformance suite's parameters), as -p arguments
CHEAP_FIT = [
    "-p", "bins=50", "-p", "alphas=1.0", "-p", "f_i_step=0.05", "-p", "f_e_step=0.01",
    "-p", "f_e_max=0.1", "-p", "simulation_copies=1",
]  # fmt: skip


@pytest.fixture
def stored(home: Path) -> ElectionStore:
    store = ElectionStore(home / "elections")
    store.save(simulate_clean(stations=300, regions=3, seed=4, election_id=ELECTION))
    return store


def analyze(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str
) -> tuple[str, dict[str, dict[str, Any]]]:
    """``analyze ELECTION ARGS --json FILE``, asserted to succeed: its output and the results
    of its JSON file by method."""
    out_file = tmp_path / "suite.json"
    code, out, err = run(capsys, "analyze", ELECTION, *args, "--json", str(out_file))
    assert code == 0, err
    results = json.loads(out_file.read_text(encoding="utf-8"))["results"]
    return out, {r["method"]: r for r in results}


def test_a_parameter_reaches_the_result_and_the_json(
    stored: ElectionStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, results = analyze(
        capsys, tmp_path,
        "-m", "klimek-fraud-model", *CHEAP_FIT, "--parameter", "replicates=3", "-p", "seed=11",
    )  # fmt: skip
    assert "klimek-fraud-model" in out
    (result,) = results.values()
    assert result["method"] == "klimek-fraud-model"
    assert result["parameters"]["replicates"] == 3
    assert result["parameters"]["alphas"] == [1.0]
    assert result["parameters"]["seed"] == 11 and result["seed"] == 11
    assert result["parameters"]["interval_level"] == 0.95  # the rest keep their defaults


def test_plain_and_targeted_parameters_with_several_methods(
    stored: ElectionStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, results = analyze(
        capsys, tmp_path,
        "-m", "integer-shares", "-m", "integer-percentages",
        "-p", "window=0.1", "-p", "integer-percentages.window=0.2", "-p", "null=monte-carlo",
        "-p", "replicates=50",
    )  # fmt: skip
    assert results["integer-shares"]["parameters"]["window"] == 0.1
    assert results["integer-percentages"]["parameters"]["window"] == 0.2
    assert results["integer-percentages"]["parameters"]["null"] == "monte-carlo"
    assert results["integer-percentages"]["parameters"]["replicates"] == 50
    assert "null" not in results["integer-shares"]["parameters"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-m", "klimek-fraud-model", "-p", "bootstrap=50"],
            "method 'klimek-fraud-model': unknown parameter 'bootstrap'",
        ),
        (
            ["-m", "klimek-fraud-model", "-p", "replicates=-3"],
            "method 'klimek-fraud-model': parameter 'replicates' must be an integer from 0 to "
            "10000, got -3 (see `pollwatch methods klimek-fraud-model` for its parameters)",
        ),
        (
            ["-m", "klimek-fraud-model", "-p", "replicates=many"],
            "parameter 'replicates' must be an integer from 0 to 10000, got 'many'",
        ),
        (
            ["-m", "klimek-fraud-model", "-p", "alpha_max=0.05"],
            "parameter 'alpha_max' must be at least alpha_min=0.1, got 0.05",
        ),
        (
            ["-m", "shpilkin", "-m", "triage", "-p", "klimek-fraud-model.replicates=5"],
            "method 'klimek-fraud-model' is not among the methods selected (shpilkin, triage)",
        ),
        (
            ["-m", "shpilkin", "-m", "triage", "-p", "replicates=5"],
            "none of the selected methods (shpilkin, triage) has a parameter 'replicates'",
        ),
        (["-m", "shpilkin", "-p", "window"], "'window' is not KEY=VALUE"),
    ],
)
def test_bad_parameters_are_one_line_and_exit_2(
    stored: ElectionStore, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "analyze", ELECTION, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0
    assert "Verdict" not in out  # refused before anything ran


def methods_page(monkeypatch: pytest.MonkeyPatch, name: str, width: int) -> str:
    """What ``pollwatch methods NAME`` prints on a plain console ``width`` columns wide."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, emoji=False, soft_wrap=False)
    monkeypatch.setattr(pollwatch.cli, "console", console)
    assert main(["methods", name]) == 0
    return buffer.getvalue()


def test_methods_name_lists_parameters_defaults_and_constraints(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = methods_page(monkeypatch, "rozenas-spikes", 80)
    lines = [line.rstrip() for line in page.splitlines()]
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    rows = {line.split("│")[1].strip(): line for line in lines if line.count("│") == 4}
    assert set(rows) >= {"candidate", "replicates", "bandwidth", "alpha", "seed"}
    assert "1000" in rows["replicates"] and "an integer from 2 to 100000" in rows["replicates"]
    assert "0.05" in rows["alpha"] and "a number > 0 and < 1" in rows["alpha"]
    assert "none" in rows["candidate"] and "a non-empty text, or none" in rows["candidate"]
    text = " ".join(lines)
    assert "the default suite (plain pollwatch analyze) runs it with the defaults above" in text


def test_methods_name_says_which_parameters_the_default_suite_chooses(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pollwatch.forensics.spikes import RozenasSpikes

    monkeypatch.setattr(RozenasSpikes, "suite_parameters", {"replicates": 200})
    assert "runs it with replicates=200" in methods_page(monkeypatch, "rozenas-spikes", 200)


def test_methods_with_an_unknown_name_is_one_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "methods", "klimek-fraud")
    assert code == 2
    assert "unknown method 'klimek-fraud'" in err and "did you mean" in err
