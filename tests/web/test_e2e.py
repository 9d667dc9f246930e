"""End-to-end tests of the web app in a real headless browser (Debian chromium via Playwright).

One store with Russia 2018 from the data mirror (analysis cached), the app served by uvicorn on
a loopback port, and the pages driven as a user would: the catalogue, the election page (the
fingerprint chart renders, the regions table sorts and filters, the ranked stations link to
station pages), the station page and its CSV download. Screenshots go to ``screenshots/`` at the
repository root (ignored by git). Skips without the mirror or without chromium.
"""

from __future__ import annotations

import csv
import io
import re
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from .conftest import ELECTION_ID, WebStore

pytestmark = [pytest.mark.data, pytest.mark.network]

ELECTION_PATH = f"/elections/{ELECTION_ID}"
CHART_SELECTOR = "#fingerprint svg, #fingerprint canvas"


def _number(text: str) -> float | None:
    """A table cell as a number: '1,234', '67.5%', '0.675', '1 234'; None for blanks and dashes."""
    cleaned = re.sub(r"[\s,%\u00a0\u2009\u202f]", "", text).replace("\u2212", "-")
    if cleaned in {"", "-", "—", "–", "n/a", "NA", "nan"}:
        return None
    try:
        return float(cleaned)
    except ValueError:
        return None


def _header_index(page: Any, word: str) -> int:
    """The position of the sortable ``#regions`` column whose label or key mentions ``word``."""
    headers = page.locator("#regions th[data-sort]")
    for position in range(headers.count()):
        header = headers.nth(position)
        label = f"{header.get_attribute('data-sort')} {header.inner_text()}".lower()
        if word in label:
            # the column index among all header cells of that row, sortable or not
            index = header.evaluate("th => th.cellIndex")
            assert isinstance(index, int)
            return index
    raise AssertionError(f"no th[data-sort] in #regions mentions {word!r}")


def _column(page: Any, index: int) -> list[float | None]:
    """The visible ``#regions`` body cells of one column, as numbers (data-value when given)."""
    values = page.eval_on_selector_all(
        "#regions tbody tr",
        """(rows, index) => rows
            .filter(row => row.offsetParent !== null)
            .map(row => row.cells[index])
            .filter(cell => cell !== undefined)
            .map(cell => cell.dataset.value ?? cell.innerText)""",
        index,
    )
    return [_number(str(value)) for value in values]


def _visible_region_names(page: Any) -> list[str]:
    names = page.eval_on_selector_all(
        "#regions tbody tr",
        """rows => rows
            .filter(row => row.offsetParent !== null)
            .map(row => row.cells[0].innerText.trim())""",
    )
    return [str(name) for name in names]


def _is_ordered(values: list[float | None]) -> bool:
    present = [v for v in values if v is not None]
    ascending = all(a <= b for a, b in pairwise(present))
    descending = all(a >= b for a, b in pairwise(present))
    return ascending or descending


def _wait_for_chart(page: Any) -> None:
    """Wait until the fingerprint heatmap has drawn an svg or canvas of non-zero size."""
    page.wait_for_function(
        """selector => [...document.querySelectorAll(selector)].some(el => {
            const box = el.getBoundingClientRect();
            return box.width > 0 && box.height > 0;
        })""",
        arg=CHART_SELECTOR,
        timeout=20_000,
    )
    box = page.locator(CHART_SELECTOR).first.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 50, box


def test_catalogue_to_election_page(page: Any, screenshots: Path) -> None:
    page.goto("/")
    assert page.locator("#elections").is_visible()
    assert page.locator("#import-form").count() == 1
    assert page.locator("#dataset-form").count() == 1
    link = page.locator(f'#elections a.election-link[href="{ELECTION_PATH}"]')
    assert link.count() == 1, page.locator("#elections").inner_html()
    page.screenshot(path=str(screenshots / "catalogue.png"), full_page=True)

    link.click()
    page.wait_for_url(f"**{ELECTION_PATH}")
    for section in ("#summary", "#quality", "#methods", "#regions", "#stations"):
        assert page.locator(section).count() == 1, f"{section} missing from the election page"
    _wait_for_chart(page)
    page.locator("#fingerprint").screenshot(path=str(screenshots / "fingerprint.png"))
    # the other charts render too (they share the vendored Vega scripts)
    for chart in ("#turnout-histogram", "#share-histogram"):
        page.wait_for_selector(f"{chart} svg, {chart} canvas", state="visible")
    summary = page.locator("#summary").inner_text()
    assert re.search(r"97[,\s\u00a0\u202f]?699", summary), summary  # stations in the summary
    methods = page.locator("#methods").inner_text()
    for method in ("triage", "shpilkin"):
        assert method in methods.lower(), methods
    page.screenshot(path=str(screenshots / "election.png"), full_page=True)


def test_regions_sort_and_filter(page: Any, web_store: WebStore, screenshots: Path) -> None:
    page.goto(ELECTION_PATH)
    rows = page.locator("#regions tbody tr")
    regions = set(web_store.election.stations["region"].drop_nulls().unique().to_list())
    total = rows.count()
    assert total >= len(regions) * 0.9, (total, len(regions))

    turnout = _header_index(page, "turnout")
    page.locator("#regions tr th").nth(turnout).click()
    values = _column(page, turnout)
    assert len(values) == total
    assert len({v for v in values if v is not None}) > 10, values[:10]
    assert _is_ordered(values), f"turnout not ordered after sorting: {values[:10]}"
    first_order = values

    stations = _header_index(page, "station")
    page.locator("#regions tr th").nth(stations).click()
    by_stations = _column(page, stations)
    assert _is_ordered(by_stations), f"stations not ordered after sorting: {by_stations[:10]}"
    assert _column(page, turnout) != first_order, "sorting by stations left the turnout order"

    # filtering by a region-name fragment shows exactly the regions containing it
    fragment = "область"
    expected = sorted(name for name in regions if fragment in name)
    assert 0 < len(expected) < len(regions)
    page.locator("#region-filter").fill(fragment)
    page.wait_for_function(
        """count => [...document.querySelectorAll('#regions tbody tr')]
            .filter(row => row.offsetParent !== null).length === count""",
        arg=len(expected),
        timeout=5_000,
    )
    shown = _visible_region_names(page)
    assert sorted(shown) == expected
    page.screenshot(path=str(screenshots / "election-regions-filtered.png"), full_page=False)

    page.locator("#region-filter").fill("Ингуш")
    page.wait_for_function(
        """() => [...document.querySelectorAll('#regions tbody tr')]
            .filter(row => row.offsetParent !== null).length === 1""",
        timeout=5_000,
    )
    assert _visible_region_names(page) == ["Республика Ингушетия"]

    page.locator("#region-filter").fill("")
    page.wait_for_function(
        """count => [...document.querySelectorAll('#regions tbody tr')]
            .filter(row => row.offsetParent !== null).length === count""",
        arg=total,
        timeout=5_000,
    )


def test_station_list_is_ranked_and_paginated(page: Any, web_store: WebStore) -> None:
    triage = web_store.suite.result("triage")
    assert triage is not None
    ranked = [row["station_id"] for row in triage.details["ranked"]]
    page.goto(ELECTION_PATH)
    links = page.locator("#stations a.station-link")
    assert links.count() > 0
    first_page = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert _station_id(first_page[0]) == ranked[0], first_page[0]

    page.goto(f"{ELECTION_PATH}?page=2")
    links = page.locator("#stations a.station-link")
    assert links.count() > 0
    second_page = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert not set(first_page) & set(second_page), "page 2 repeats stations of page 1"
    assert _station_id(second_page[0]) == ranked[len(first_page)]


def _station_id(href: str) -> str:
    path = urlsplit(href).path
    prefix = f"{ELECTION_PATH}/stations/"
    assert path.startswith(prefix), href
    return unquote(path[len(prefix) :])


def test_station_page_and_csv_download(page: Any, web_store: WebStore, screenshots: Path) -> None:
    triage = web_store.suite.result("triage")
    assert triage is not None
    top = triage.details["ranked"][0]["station_id"]
    page.goto(ELECTION_PATH)
    link = page.locator("#stations a.station-link").first
    station_id = _station_id(link.get_attribute("href") or "")
    assert station_id == top
    link.click()
    page.wait_for_url(f"**{ELECTION_PATH}/stations/**")
    assert _station_id(page.url) == station_id
    for section in ("#protocol", "#derived", "#checks", "#reasons", "#neighbours"):
        assert page.locator(section).count() == 1, f"{section} missing from the station page"
    assert page.locator("#reasons").inner_text().strip(), "a flagged station without reasons"
    row = web_store.election.stations.filter(station_id=station_id).row(0, named=True)
    protocol = page.locator("#protocol").inner_text()
    # digits grouped by ',' or a (thin, no-break) space count as one number
    joined = re.sub(r"(?<=\d)[,\s\u00a0\u2009\u202f](?=\d{3}\b)", "", protocol)
    assert re.search(rf"(?<![\d.]){row['registered']}(?![\d.])", joined), protocol
    page.screenshot(path=str(screenshots / "station.png"), full_page=True)

    csv_link = page.locator("a#station-csv")
    href = csv_link.get_attribute("href") or ""
    expected_path = f"/api/elections/{ELECTION_ID}/stations/{quote(station_id, safe='')}"
    assert unquote(urlsplit(href).path) == unquote(expected_path), href
    assert "format=csv" in urlsplit(href).query, href
    with page.expect_download(timeout=10_000) as info:
        csv_link.click()
    download = info.value
    assert download.failure() is None, download.failure()
    text = Path(download.path()).read_text("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert len(table) >= 2, text[:500]
    header = table[0]
    assert len(header) > 1 and all(cell.strip() for cell in header), header
    assert any(station_id in cells for cells in table[1:]), text[:500]
