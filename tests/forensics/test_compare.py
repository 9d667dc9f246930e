"""pollwatch compare: identical methods side by side; missing numbers skip with the reason."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pollwatch.cli import main
from pollwatch.forensics.simulate import simulate_clean
from pollwatch.results.model import make_election
from pollwatch.results.store import ElectionStore


def test_compare_shows_methods_side_by_side(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ElectionStore(home / "elections")
    store.save(simulate_clean(stations=500, seed=1, election_id="alpha"))
    beta = simulate_clean(stations=500, seed=2, election_id="beta")
    no_register = beta.stations.with_columns(registered=pl.lit(None, dtype=pl.Int64))
    store.save(make_election(beta.meta, no_register))
    out = tmp_path / "compare.html"
    code = main(
        ["compare", "alpha", "beta", "-m", "eft-lastc", "-m", "eft-correlation", "--html", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "eft-lastc" in captured.out and "alpha" in captured.out
    page = out.read_text()
    assert "skipped: has no registered numbers" in page  # beta, correlation
    assert "Comparison: alpha vs beta" in page and "<script src=" not in page
    assert main(["compare", "alpha"]) == 2
    assert "two or more" in capsys.readouterr().err
