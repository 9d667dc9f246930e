"""The turnout pages in headless chromium: the series page and a threshold scenario.

The web store (Russia 2018, tests/web/conftest.py) gets Russia 2016 too; every request to
another origin is aborted and fails the test (the ``page`` fixture). Skips without the mirror
or chromium.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pollwatch.results.datasets import DATASETS, import_dataset
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore

from .conftest import WebStore

pytestmark = [pytest.mark.data, pytest.mark.network]


@pytest.fixture(scope="module")
def duma(web_store: WebStore, mirror: Path) -> Election:
    dataset = DATASETS.get("russia-2016")
    if not (mirror / dataset.folder / dataset.filename).is_file():
        pytest.skip(f"{dataset.folder}/{dataset.filename} is not in the data mirror {mirror}")
    election = import_dataset(dataset, web_store.settings)
    ElectionStore(web_store.settings.elections_dir).save(election)
    return election


def test_series_page_and_a_scenario(page: Any, duma: Election, screenshots: Path) -> None:
    page.goto("/turnout?ids=russia-2016&ids=russia-2018")
    rows = page.locator("#series tbody tr")
    assert rows.count() == 2
    assert "russia-2016" in rows.nth(0).inner_text()
    page.wait_for_selector("#national-turnout svg")
    page.wait_for_selector("#regions-turnout svg")
    assert page.locator("#links tbody tr").count() == 1
    assert "Definitions" in page.locator("#definitions").inner_text()
    page.screenshot(path=str(screenshots / "turnout-series.png"), full_page=True)
    # the scenario form: Russia 2016 at 50 % by region
    page.select_option("#scenario-form select[name=id]", "russia-2016")
    page.fill("#scenario-form input[name=threshold]", "50")
    page.click("#run-scenario")
    page.wait_for_selector("#scenario-chart svg")
    counted = duma.stations.filter(
        ~pl.col("is_pseudo_station")
        & ~pl.col("is_cancelled")
        & ~pl.col("is_abroad")
        & (pl.col("registered") > 0)
    )
    regions = counted.group_by("region").agg(
        pl.col("registered").sum(), pl.col("ballots_cast").sum()
    )
    failing = regions.filter(pl.col("ballots_cast") / pl.col("registered") < 0.5)
    summary = page.locator("#failing-count").inner_text()
    assert summary.startswith(f"{failing.height} of {regions.height} units fail")
    assert page.locator("#registered-failing").inner_text() == f"{failing['registered'].sum():,}"
    assert page.locator("#units tbody tr.fails").count() == failing.height
    assert "calibration" in page.locator("#forensic").inner_text()
    page.screenshot(path=str(screenshots / "turnout-scenario.png"), full_page=True)
