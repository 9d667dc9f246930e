"""The command line: commands render, and every user error is one line with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pollwatch.results.store import ElectionStore
from tests.helpers import run_cli as run
from tests.helpers import small_election


@pytest.fixture
def stored(home: Path) -> ElectionStore:
    store = ElectionStore(home / "elections")
    store.save(small_election("demo-x"))
    return store


def test_list_and_show(stored: ElectionStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0 and "demo-x" in out
    code, out, _ = run(capsys, "show", "demo-x")
    assert code == 0
    assert "1,320" in out  # ballots cast
    assert "57.39%" in out  # turnout 1320 / 2300
    assert "Alpha" in out and "900" in out
    assert "station id appears once" in out


def test_show_json(stored: ElectionStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "demo-x", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["summary"]["totals"] == {"Alpha": 900, "Beta": 403}
    assert data["meta"]["definitions"]["turnout"].startswith("ballots_cast / registered")


def test_export_csv_and_parquet(
    stored: ElectionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = tmp_path / "out" / "x.csv"
    code, _, _ = run(capsys, "export", "demo-x", "-o", str(out_csv))
    assert code == 0
    frame = pl.read_csv(out_csv)
    assert frame["Alpha"].sum() == 900
    assert "turnout" in frame.columns
    out_parquet = tmp_path / "x.parquet"
    assert run(capsys, "export", "demo-x", "-o", str(out_parquet))[0] == 0
    assert pl.read_parquet(out_parquet).height == 3
    assert sorted(p.name for p in out_csv.parent.iterdir()) == ["x.csv"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "no election 'nope'"),
        (("export", "demo-x", "-o", "x.weird"), "cannot tell the export format"),
        (("import",), "give either a FILE or --dataset NAME"),
        (("import", "--dataset", "russia-2081"), "did you mean 'russia-2018'"),
        (("import", "missing.csv"), "file not found"),
        (("import", "x.csv", "--option", "novalue"), "is not KEY=VALUE"),
    ],
)
def test_user_errors_are_one_line(
    stored: ElectionStore,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0


def test_usage_error_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "import", "--bogus")
    assert code == 2
    assert "No such option" in err


def test_import_file_then_reimport_is_idempotent(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pollwatch.results.importers import get_importer

    example = get_importer("russia-cec").example(tmp_path / "src")
    code, out, _ = run(capsys, "import", str(example.path), "--id", "example-1")
    assert code == 0 and "imported" in out
    code, out, _ = run(capsys, "import", str(example.path), "--id", "example-1")
    assert code == 0 and "unchanged" in out
    assert [e.id for e in ElectionStore(home / "elections").list()] == ["example-1"]


def test_failed_import_leaves_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "2018.csv"
    bad.write_text(
        "region,tik,uik,Число избирателей, внесенных в список\nA,B,1,abc\n", encoding="utf-8"
    )
    code, _, err = run(capsys, "import", str(bad), "--format", "russia-cec")
    assert code == 2
    assert "2018.csv" in err
    assert not (home / "elections").exists() or list((home / "elections").iterdir()) == []


def test_export_nist_round_trips(
    stored: ElectionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.json"
    assert run(capsys, "export", "demo-x", "-o", str(target))[0] == 0
    code, out, _ = run(capsys, "import", str(target), "--id", "demo-back")
    assert code == 0, out
    assert stored.load("demo-back").totals() == {"Alpha": 900, "Beta": 403}


def test_import_dataset_from_mirror(
    home: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--mirror", str(mirror), "import", "--dataset", "poland-2020-r2")
    assert code == 0, err
    code, out, _ = run(capsys, "show", "poland-2020-r2", "--json")
    data = json.loads(out)
    assert data["summary"]["registered"] == 30_267_989  # PROVENANCE.md of the PKW files
    assert data["summary"]["totals"]["Andrzej Sebastian DUDA"] == 10_440_388
