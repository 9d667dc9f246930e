"""pollwatch compare: identical methods side by side; missing numbers skip with the reason."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pollwatch.cli import main
from pollwatch.results.model import make_election
from pollwatch.results.store import ElectionStore
from pollwatch.synthetic.simulator import simulate_clean


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


@pytest.mark.data
def test_compare_the_four_elections_of_the_worked_example(
    mirror: Path, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/compare.md: Russia 2018 vs US 2016 vs Poland 2020 vs Germany 2024, default methods
    import json
    import re

    from pollwatch.forensics.suite import run_suite

    names = ["russia-2018", "us-2016-president-medsl", "poland-2020-r1", "germany-ew2024"]
    for name in names:
        assert main(["--mirror", str(mirror), "import", "--dataset", name]) == 0
    out = tmp_path / "compare.html"
    code = main(["--mirror", str(mirror), "compare", *names, "--html", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    page = out.read_text("utf-8")
    assert "<script src=" not in page and "vegaEmbed" in page
    # fingerprints for the three elections with registered voters, none for the US
    assert re.findall(r'id="fingerprint-(\d)"', page) == ["0", "2", "3"]
    assert page.count("skipped: has no registered numbers") >= 4  # US: turnout methods
    assert "on clean elections (calibration)" in page
    # the measured contrast of the worked example, from the cached results
    store = ElectionStore(home / "elections")
    shares = {
        name: run_suite(store.load(name), ["integer-shares"], cache_dir=home / "analysis")
        for name in names
    }
    russia = shares["russia-2018"].result("integer-shares")
    us = shares["us-2016-president-medsl"].result("integer-shares")
    assert russia is not None and russia.significant
    assert us is not None and not us.significant
    assert json.loads(us.to_json())["election_id"] == "us-2016-president-medsl"
