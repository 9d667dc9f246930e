"""The demo's store in a real browser: the simulated election ``pollwatch demo`` makes without
mirror or network is labelled as simulated on every page that shows it, next to its analysis.

The store is made by ``pollwatch demo --no-serve`` itself (no mirror; the first dataset's
download pointed at a closed loopback port, the second is mirror-only), then served by the
shared ``base_url`` fixture; the browser is Debian's chromium (skips without it). Needs neither
the data mirror nor the internet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import pollwatch.cli
from pollwatch.forensics.suite import run_suite
from pollwatch.results.datasets import DATASETS
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings
from pollwatch.synthetic.planted import DEMO_ELECTION_ID, INJECTIONS_FILE

from .conftest import FAST_METHODS, WebStore

pytestmark = pytest.mark.network

ELECTION_PATH = f"/elections/{DEMO_ELECTION_ID}"
LABEL = "SIMULATED election, not real results"


@pytest.fixture(scope="module")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStore]:
    """The store ``pollwatch demo --no-serve`` leaves on a machine without mirror or network."""
    home = tmp_path_factory.mktemp("demo-home")
    offline = replace(DATASETS.get("russia-2018"), url="http://127.0.0.1:9/2018.csv.zip")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("POLLWATCH_DATA_MIRROR", raising=False)
        patch.delenv("POLLWATCH_CONFIG", raising=False)
        patch.setenv("POLLWATCH_HOME", str(home))
        patch.setattr(pollwatch.cli, "DEMO_DATASETS", (offline, "us-2016-president-medsl"))
        assert pollwatch.cli.main(["demo", "--no-serve"]) == 0
        settings = Settings(home=home, download=False)
        election = ElectionStore(settings.elections_dir).load(DEMO_ELECTION_ID)
        suite = run_suite(election, FAST_METHODS, cache_dir=settings.analysis_dir)
        yield WebStore(settings=settings, election=election, suite=suite)


def _planted(web_store: WebStore) -> list[set[str]]:
    path = web_store.settings.elections_dir / DEMO_ELECTION_ID / INJECTIONS_FILE
    return [set(i["stations"]) for i in json.loads(path.read_text())["injections"]]


def _banner(page: Any) -> str:
    banner = page.locator("#simulated")
    assert banner.count() == 1 and banner.is_visible(), page.content()[:2000]
    text = str(banner.inner_text())
    assert text.startswith(LABEL), text
    assert "extreme ballot stuffing at 1,000 stations" in text, text
    return text


def test_election_page_shows_the_label_and_the_analysis(
    page: Any, web_store: WebStore, screenshots: Path
) -> None:
    page.goto("/")
    row = page.locator("#elections tr", has=page.locator(f'a[href="{ELECTION_PATH}"]'))
    assert row.locator(".badge.simulated").inner_text() == "SIMULATED"
    assert LABEL in page.locator("main").inner_text()

    row.locator("a.election-link").click()
    page.wait_for_url(f"**{ELECTION_PATH}")
    assert "SIMULATED" in page.title()
    assert _banner(page) == web_store.election.meta.simulation_notice
    # The banner is the first thing under the heading, above the numbers.
    heading = page.locator("h1").bounding_box()
    banner = page.locator("#simulated").bounding_box()
    summary = page.locator("#summary").bounding_box()
    assert heading["y"] < banner["y"] < summary["y"]

    # The analysis: the whole suite's table, whole-percent excess found, the fingerprint drawn.
    methods = page.locator("#methods tbody tr")
    names = [methods.nth(i).locator("td").first.inner_text() for i in range(methods.count())]
    assert {"integer-percentages", "klimek-fingerprint", "shpilkin", "triage"} <= set(names)
    assert "beber-scacco" in names  # cached by the demo's full analysis, not the fast subset
    integer = page.locator("#methods tbody tr", has_text="integer-percentages").first
    p_value = float(integer.locator("td").nth(2).inner_text())
    assert p_value < 1e-10, p_value
    page.wait_for_selector("#fingerprint svg, #fingerprint canvas", state="visible")
    page.screenshot(path=str(screenshots / "demo-simulated-election.png"), full_page=True)

    # The stations ranked first are the stuffed ones.
    stuffed, _ = _planted(web_store)
    links = page.locator("#stations a.station-link")
    first = [links.nth(i).inner_text() for i in range(min(20, links.count()))]
    assert len(first) == 20 and set(first) <= stuffed, first


def test_station_report_and_api_carry_the_label(page: Any, web_store: WebStore) -> None:
    stuffed, _ = _planted(web_store)
    station = sorted(stuffed)[0]
    page.goto(f"{ELECTION_PATH}/stations/{station}")
    _banner(page)
    assert re.search(r"turnout\s+100\.00%", page.locator("#derived").inner_text())

    page.goto(f"{ELECTION_PATH}/report")
    _banner(page)

    notice = web_store.election.meta.simulation_notice
    for path in (
        f"/api/elections/{DEMO_ELECTION_ID}",
        f"/api/elections/{DEMO_ELECTION_ID}/stations",
        f"/api/elections/{DEMO_ELECTION_ID}/stations/{station}",
        f"/api/elections/{DEMO_ELECTION_ID}/methods",
        f"/api/elections/{DEMO_ELECTION_ID}/regions",
        f"/api/elections/{DEMO_ELECTION_ID}/histograms",
        f"/api/compare?ids={DEMO_ELECTION_ID}",
    ):
        answer = page.request.get(path)
        assert answer.ok, path
        data = answer.json()
        found = data["elections"][0]["simulation"] if "compare" in path else data["simulation"]
        assert found == notice, path
    listing = page.request.get("/api/elections").json()["elections"]
    assert [e["simulation"] for e in listing] == [notice]
