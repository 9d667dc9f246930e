"""The verdict in a real browser: the first section of the election page, under the heading.

A simulated election with whole-percent leader shares planted at a tenth of its stations is
analysed with the whole default suite (cached, so the page shows every method), then served by
the shared ``base_url`` fixture and opened in Debian's chromium (skips without it). The verdict
must sit above the summary, say SIMULATED, cite a reliable method (one the calibration table
finds reliable) and list the unreliable ones as not cited; the API gives the same verdict.
Needs neither the data mirror nor the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pollwatch.forensics.suite import run_suite
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings
from pollwatch.synthetic.injectors import INJECTORS
from pollwatch.synthetic.planted import plant
from pollwatch.synthetic.simulator import simulate_clean

from .conftest import WebStore

pytestmark = pytest.mark.network

ELECTION_ID = "simulated-rounded"
ELECTION_PATH = f"/elections/{ELECTION_ID}"


@pytest.fixture(scope="module")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStore]:
    """A store with one planted simulated election, the whole default suite cached."""
    home = tmp_path_factory.mktemp("verdict-home")
    base = simulate_clean(stations=5000, seed=11, election_id="clean")
    injector = INJECTORS.get("round-percentages")(share=0.1, magnitude=1.0)
    election = plant(base, [injector], seed=11, election_id=ELECTION_ID).election
    settings = Settings(home=home, download=False)
    ElectionStore(settings.elections_dir).save(election)
    suite = run_suite(election, cache_dir=settings.analysis_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("POLLWATCH_DATA_MIRROR", raising=False)
        patch.delenv("POLLWATCH_CONFIG", raising=False)
        patch.setenv("POLLWATCH_HOME", str(home))
        yield WebStore(settings=settings, election=election, suite=suite)


def test_the_verdict_is_the_first_section_of_the_election_page(
    page: Any, web_store: WebStore, screenshots: Path
) -> None:
    page.goto(ELECTION_PATH)
    section = page.locator("#verdict")
    assert section.count() == 1 and section.is_visible(), page.content()[:2000]
    # under the heading and the simulation banner, above every other section
    heading = page.locator("h1").bounding_box()
    banner = page.locator("#simulated").bounding_box()
    box = section.bounding_box()
    assert heading["y"] < banner["y"] < box["y"]
    first_section = page.locator("main section").first
    assert first_section.get_attribute("id") == "verdict"
    for other in ("#summary", "#quality", "#methods", "#regions", "#stations"):
        assert box["y"] < page.locator(other).bounding_box()["y"], other

    headline = page.locator("#verdict-headline").inner_text()
    assert headline.startswith("SIMULATED election: "), headline
    assert "find an anomaly at α = 0.05" in headline, headline
    anomalous = page.locator("#verdict-findings > li", has=page.locator(".anomaly"))
    cited = {anomalous.nth(i).get_attribute("data-method") for i in range(anomalous.count())}
    assert "integer-percentages" in cited or "integer-shares" in cited, cited
    for method in cited:
        result = web_store.suite.result(str(method))
        assert result is not None
        assert result.calibration is None or not result.calibration.unreliable

    # unreliable methods are listed with their reason, never cited
    unreliable = {
        r.method for r in web_store.suite.results if r.calibration and r.calibration.unreliable
    }
    assert unreliable, "the calibration table marks no method unreliable"
    items = page.locator("#not-cited > li")
    listed = {items.nth(i).get_attribute("data-method") for i in range(items.count())}
    assert unreliable <= listed
    assert not unreliable & cited
    assert "unreliable: flags" in page.locator("#not-cited").inner_text()
    section.screenshot(path=str(screenshots / "verdict.png"))

    answer = page.request.get(f"/api/elections/{ELECTION_ID}/verdict")
    assert answer.ok
    data = answer.json()
    assert data["format"] == "pollwatch-verdict/1" and data["headline"] == headline
    assert data["simulation"] == web_store.election.meta.simulation_notice
