"""The dashboard's routes and JSON API through FastAPI's TestClient.

Most tests use two small simulated elections in a throwaway store; one uses the real Russia
2018 file from the data mirror (skipped without it).
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import polars as pl
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from pollwatch.results.importers import get_importer
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings, load_settings
from pollwatch.synthetic.simulator import simulate_clean
from pollwatch.web.app import create_app

API_PATHS = [
    "/api/elections",
    "/api/elections/{election_id}",
    "/api/elections/{election_id}/stations",
    "/api/elections/{election_id}/stations/{station_id}",
    "/api/elections/{election_id}/regions",
    "/api/elections/{election_id}/methods",
    "/api/elections/{election_id}/methods/{name}",
    "/api/elections/{election_id}/histograms",
    "/api/compare",
    "/api/elections/import",
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("web-home")
    settings = load_settings({"home": home})
    store = ElectionStore(settings.elections_dir)
    store.save(simulate_clean(stations=600, regions=8, seed=1, election_id="sim-a"))
    store.save(simulate_clean(stations=400, regions=5, seed=2, election_id="sim-b"))
    return settings


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _error(response: object) -> str:
    data = response.json()  # type: ignore[attr-defined]
    assert set(data) == {"error"}
    assert isinstance(data["error"], str) and "\n" not in data["error"]
    assert "Traceback" not in data["error"]
    return str(data["error"])


# --- HTML pages ----------------------------------------------------------------------------------
def test_catalogue_lists_elections_and_forms(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="elections"' in page.text
    assert page.text.count('class="election-link"') == 2
    assert 'href="/elections/sim-a"' in page.text
    assert 'id="import-form"' in page.text and 'id="dataset-form"' in page.text
    assert 'value="russia-2018"' in page.text  # the dataset select


def test_election_page_has_every_section(client: TestClient) -> None:
    page = client.get("/elections/sim-a")
    assert page.status_code == 200
    for element in (
        "summary",
        "quality",
        "turnout-histogram",
        "share-histogram",
        "fingerprint",
        "methods",
        "regions",
        "region-filter",
        "stations",
    ):
        assert f'id="{element}"' in page.text, element
    assert page.text.count("<th data-sort=") == 7
    assert page.text.count('class="station-link"') == 50
    assert "/static/vega/vega-embed.min.js" in page.text
    assert "cdn" not in page.text.lower() and "googleapis" not in page.text
    # the fast subset ran and was cached
    assert "triage" in page.text and "klimek-fingerprint" in page.text


def test_a_method_page_shows_its_sections(client: TestClient) -> None:
    """The page of one method: headline, calibration, charts and its own tables, from
    ``Method.sections``; the election page's methods table links it."""
    election_page = client.get("/elections/sim-a").text
    assert 'href="/elections/sim-a/methods/triage"' in election_page
    page = client.get("/elections/sim-a/methods/triage")
    assert page.status_code == 200
    assert 'id="headline"' in page.text and "stations at or above the threshold = " in page.text
    assert "on clean elections (calibration): " in page.text
    assert "<h2>Stations to check first</h2>" in page.text
    assert 'id="chart-scores"' in page.text and "chart-specs" in page.text
    listed = client.get("/api/elections/sim-a/methods").json()["results"]
    ranked = next(r for r in listed if r["method"] == "triage")["details"]["ranked"]
    assert f"<td>{ranked[0]['station_id']}</td>" in page.text
    regions = client.get("/elections/sim-a/methods/shpilkin").text
    assert "<h2>Estimate by region</h2>" in regions
    assert client.get("/elections/sim-a/methods/no-such-method").status_code == 404
    answer = client.get("/api/elections/sim-a/methods/triage").json()
    kinds = [section["kind"] for section in answer["sections"]]
    assert kinds[:2] == ["headline", "caveat"] and "table" in kinds


def test_election_page_paginates(client: TestClient) -> None:
    first = client.get("/elections/sim-a").text
    second = client.get("/elections/sim-a?page=2").text
    links = re.compile(r'class="station-link" href="([^"]+)"')
    assert set(links.findall(first)).isdisjoint(links.findall(second))
    assert client.get("/elections/sim-a?page=0").status_code == 422


def test_station_page(client: TestClient) -> None:
    page = client.get("/elections/sim-a/stations/S000003")
    assert page.status_code == 200
    for element in ("protocol", "derived", "checks", "reasons", "neighbours"):
        assert f'id="{element}"' in page.text, element
    assert 'id="station-csv" href="/api/elections/sim-a/stations/S000003?format=csv"' in page.text


def test_compare_page(client: TestClient) -> None:
    page = client.get("/compare?ids=sim-a&ids=sim-b")
    assert page.status_code == 200
    assert 'id="compare"' in page.text and 'id="fp-1"' in page.text


def test_unknown_pages_are_html_404(client: TestClient) -> None:
    for url in ("/elections/nope", "/elections/sim-a/stations/nope", "/no/such/page"):
        page = client.get(url)
        assert page.status_code == 404, url
        assert 'id="error"' in page.text and "Traceback" not in page.text


def test_static_files_are_served_from_the_package(client: TestClient) -> None:
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        response = client.get(f"/static/vega/{name}")
        assert response.status_code == 200 and len(response.content) > 10_000
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/dashboard.css").status_code == 200
    assert client.get("/static/vega/../../settings.py").status_code == 404
    assert client.get("/static/nope.js").status_code == 404


# --- JSON API ----------------------------------------------------------------------------------
def test_api_elections(client: TestClient) -> None:
    data = client.get("/api/elections").json()
    assert [e["id"] for e in data["elections"]] == ["sim-a", "sim-b"]
    csv = client.get("/api/elections?format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert pl.read_csv(io.StringIO(csv.text))["id"].to_list() == ["sim-a", "sim-b"]


def test_api_election_summary_and_quality(client: TestClient) -> None:
    data = client.get("/api/elections/sim-a").json()
    assert data["summary"]["stations"] == 600
    assert data["meta"]["id"] == "sim-a"
    assert {r["rule"] for r in data["quality"]["rules"]} >= {"votes_sum_to_valid"}


def test_api_stations_paginates_sorts_filters(client: TestClient) -> None:
    first = client.get("/api/elections/sim-a/stations").json()
    assert first["total"] == 600 and first["size"] == 50 and first["pages"] == 12
    assert len(first["stations"]) == 50
    last = client.get("/api/elections/sim-a/stations?page=12&size=50").json()
    assert len(last["stations"]) == 50
    beyond = client.get("/api/elections/sim-a/stations?page=13").json()
    assert beyond["stations"] == []
    by_turnout = client.get("/api/elections/sim-a/stations?sort=-turnout&size=20").json()
    turnouts = [s["turnout"] for s in by_turnout["stations"]]
    assert turnouts == sorted(turnouts, reverse=True)
    by_id = client.get("/api/elections/sim-a/stations?sort=station_id&size=3").json()
    assert [s["station_id"] for s in by_id["stations"]] == ["S000000", "S000001", "S000002"]
    region = first["stations"][0]["region"]
    only = client.get(f"/api/elections/sim-a/stations?region={quote(region)}&size=1000").json()
    assert only["total"] > 0 and {s["region"] for s in only["stations"]} == {region}
    # ranked by triage: the scored stations come first, highest score first
    scores = [s["score"] for s in first["stations"] if s["score"] is not None]
    assert scores == sorted(scores, reverse=True) and scores
    csv = client.get("/api/elections/sim-a/stations?format=csv&size=7")
    assert pl.read_csv(io.StringIO(csv.text)).height == 7


@pytest.mark.parametrize(
    "query",
    ["page=-1", "page=0", "size=100000", "size=0", "sort=nonsense", "page=abc", "format=xml"],
)
def test_api_stations_bad_parameters(client: TestClient, query: str) -> None:
    response = client.get(f"/api/elections/sim-a/stations?{query}")
    assert 400 <= response.status_code < 500, query
    _error(response)


def test_api_station(client: TestClient) -> None:
    data = client.get("/api/elections/sim-a/stations/S000003").json()
    assert data["station_id"] == "S000003"
    assert data["protocol"]["registered"] > 0
    assert 0 < data["derived"]["turnout"] <= 1
    assert {c["rule"] for c in data["checks"]} >= {"turnout_at_most_100"}
    assert data["neighbours"]["level"] == "region"
    assert all(s["station_id"] != "S000003" for s in data["neighbours"]["stations"])
    csv = client.get("/api/elections/sim-a/stations/S000003?format=csv")
    assert csv.status_code == 200 and "attachment" in csv.headers["content-disposition"]
    row = pl.read_csv(io.StringIO(csv.text))
    assert row["station_id"].to_list() == ["S000003"]


def test_api_regions(client: TestClient) -> None:
    rows = client.get("/api/elections/sim-a/regions").json()["regions"]
    assert sum(r["stations"] for r in rows) == 600
    assert all(0 < r["turnout"] < 1 for r in rows)
    assert any(r["shpilkin_estimate"] is not None for r in rows)
    csv = client.get("/api/elections/sim-a/regions?format=csv")
    assert pl.read_csv(io.StringIO(csv.text)).height == len(rows)


def test_api_methods_are_the_cached_fast_subset(client: TestClient, settings: Settings) -> None:
    data = client.get("/api/elections/sim-a/methods").json()
    names = {m["method"] for m in data["methods"]}
    assert names >= {"triage", "integer-percentages", "klimek-fingerprint", "shpilkin"}
    assert list((settings.analysis_dir / "sim-a").glob("triage-*.json"))
    csv = client.get("/api/elections/sim-a/methods?format=csv")
    assert pl.read_csv(io.StringIO(csv.text)).height == len(data["methods"])


# --- one method with chosen parameters -----------------------------------------------------------
def test_api_method_runs_with_the_parameters_given(client: TestClient, settings: Settings) -> None:
    url = "/api/elections/sim-a/methods/klimek-fingerprint"
    answer = client.get(url, params=[("p", "bins=50"), ("p", "corner=0.9")])
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["method"] == "klimek-fingerprint" and data["skipped"] is None
    assert data["parameters"] == {"bins": 50, "corner": 0.9}
    result = data["result"]
    assert result["parameters"]["bins"] == 50 and result["details"]["corner"] == 0.9
    cells = result["charts"]["fingerprint"]["data"]["values"]
    assert all(c["x1"] - c["x0"] == pytest.approx(1 / 50) for c in cells)
    # cached like every run: the same answer again, from a result file of its own
    assert client.get(url, params=[("p", "bins=50"), ("p", "corner=0.9")]).json() == data
    cached = [
        path
        for path in (settings.analysis_dir / "sim-a").glob("klimek-fingerprint-*.json")
        if '"bins": 50' in path.read_text("utf-8")
    ]
    assert len(cached) == 1
    # the dashboard keeps showing the default run
    shown = client.get("/api/elections/sim-a/methods").json()["results"]
    (klimek,) = [r for r in shown if r["method"] == "klimek-fingerprint"]
    assert klimek["parameters"]["bins"] == 100


def test_api_method_without_parameters_is_the_default_run(client: TestClient) -> None:
    data = client.get("/api/elections/sim-a/methods/integer-percentages").json()
    assert data["parameters"] == {}
    default = client.get("/api/elections/sim-a/methods").json()["results"]
    (shown,) = [r for r in default if r["method"] == "integer-percentages"]
    assert data["result"]["statistic"] == shown["statistic"]
    seeded = client.get("/api/elections/sim-a/methods/integer-percentages?p=seed=7").json()
    assert seeded["result"]["seed"] == 7 and seeded["parameters"] == {"seed": 7}


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("p=bins=5", "method 'klimek-fingerprint': parameter 'bins' must be"),
        ("p=bins=many", "parameter 'bins' must be"),
        ("p=binz=50", "unknown parameter 'binz'"),
        ("p=bins", "is not KEY=VALUE"),
    ],
)
def test_api_method_bad_parameter_is_a_one_line_422(
    client: TestClient, query: str, words: str
) -> None:
    response = client.get(f"/api/elections/sim-a/methods/klimek-fingerprint?{query}")
    assert response.status_code == 422, response.text
    assert words in _error(response)


def test_api_method_unknown_is_404(client: TestClient) -> None:
    response = client.get("/api/elections/sim-a/methods/no-such-method?p=bins=5")
    assert response.status_code == 404
    assert "no method 'no-such-method'" in _error(response)
    assert client.get("/api/elections/nope/methods/shpilkin").status_code == 404


def test_api_method_the_election_cannot_support_is_skipped(tmp_path: Path) -> None:
    settings = load_settings({"home": tmp_path / "home"})
    election = simulate_clean(stations=60, regions=2, seed=4, election_id="sim-n")
    # no registered voters: Shpilkin cannot estimate, and says why
    blank = election.stations.with_columns(pl.lit(None, dtype=pl.Int64).alias("registered"))
    ElectionStore(settings.elections_dir).save(replace(election, stations=blank))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        data = client.get("/api/elections/sim-n/methods/shpilkin").json()
        assert data["result"] is None and "registered" in data["skipped"]
        page = client.get("/elections/sim-n")
        assert page.status_code == 200 and 'id="regions-source"' in page.text
        assert "No region table: shpilkin:" in page.text


def test_api_histograms_are_binned(client: TestClient) -> None:
    data = client.get("/api/elections/sim-a/histograms").json()
    assert data["bin_width_percent"] == 0.1
    assert sum(b["stations"] for b in data["turnout"]) == 600
    assert all(round(b["end"] - b["start"], 4) == 0.1 for b in data["leader_share"])
    csv = client.get("/api/elections/sim-a/histograms?format=csv")
    assert set(pl.read_csv(io.StringIO(csv.text))["quantity"]) == {"turnout", "leader_share"}


def test_api_compare(client: TestClient) -> None:
    data = client.get("/api/compare?ids=sim-a&ids=sim-b").json()
    assert [e["election_id"] for e in data["elections"]] == ["sim-a", "sim-b"]
    assert client.get("/api/compare?ids=sim-a&ids=sim-b&format=csv").status_code == 200
    assert client.get("/api/compare").status_code == 422  # ids: 1 to 6, as the schema says
    assert client.get("/api/compare?ids=sim-a&ids=nope").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/api/elections/nope",
        "/api/elections/nope/stations",
        "/api/elections/nope/regions",
        "/api/elections/nope/methods",
        "/api/elections/nope/histograms",
        "/api/elections/sim-a/stations/nope",
        "/api/elections/..%2F..%2Fetc/stations",
        "/api/elections/NOT%20AN%20ID",
    ],
)
def test_api_unknown_is_404_json(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404, url
    _error(response)


def test_openapi_lists_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in API_PATHS:
        assert path in schema["paths"], path
    assert client.get("/docs").status_code == 200


# --- uploads -----------------------------------------------------------------------------------
def test_garbage_upload_is_400_and_stores_nothing(client: TestClient, settings: Settings) -> None:
    before = sorted(p.name for p in settings.elections_dir.iterdir())
    garbage = {"file": ("junk.bin", b"\x00\x01\x02 not an election \xff" * 50)}
    response = client.post("/api/elections/import", files=garbage)
    assert response.status_code == 400
    message = _error(response)
    assert message.startswith("junk.bin: cannot tell which format") and "/tmp" not in message
    page = client.post("/elections/import", files=garbage)
    assert page.status_code == 400 and 'id="error"' in page.text
    assert message.split(" (")[0].replace("'", "&#39;") in page.text
    bad_format = client.post("/api/elections/import", files=garbage, data={"format": "nope"})
    assert bad_format.status_code == 400
    _error(bad_format)
    bad_mapping = client.post("/api/elections/import", files=garbage, data={"mapping": "../x"})
    assert bad_mapping.status_code == 400
    assert sorted(p.name for p in settings.elections_dir.iterdir()) == before


def test_upload_russian_example(client: TestClient, tmp_path: Path, settings: Settings) -> None:
    example = get_importer("russia-cec").example(tmp_path / "example")
    with example.path.open("rb") as handle:
        response = client.post(
            "/api/elections/import",
            files={"file": (example.path.name, handle.read())},
            data={"id": "uploaded-ru"},
        )
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "uploaded-ru"
    assert ElectionStore(settings.elections_dir).load("uploaded-ru").stations.height == (
        example.stations
    )
    assert client.get("/elections/uploaded-ru").status_code == 200
    # the same upload again is idempotent; a different file under the id is refused
    with example.path.open("rb") as handle:
        again = client.post(
            "/elections/import",
            files={"file": (example.path.name, handle.read())},
            data={"id": "uploaded-ru"},
            follow_redirects=False,
        )
    assert again.status_code == 303 and again.headers["location"] == "/elections/uploaded-ru"


def test_upload_with_mapping_file(client: TestClient, tmp_path: Path) -> None:
    example = get_importer("mapping").example(tmp_path / "mapping")
    assert example.mapping is not None
    response = client.post(
        "/api/elections/import",
        files={
            "file": (example.path.name, example.path.read_bytes()),
            "mapping": (example.mapping.name, example.mapping.read_bytes()),
        },
        data={"id": "uploaded-mapped"},
    )
    assert response.status_code == 201, response.text
    data = client.get("/api/elections/uploaded-mapped").json()
    assert data["summary"]["stations"] == example.stations


# --- the command line --------------------------------------------------------------------------
def test_report_command_writes_html(settings: Settings, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from pollwatch.cli.web import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # pragma: no cover - Typer needs a callback for sub-commands
        pass

    register(app)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        ["report", "sim-b", "-o", str(out)],
        env={"POLLWATCH_HOME": str(settings.home)},
    )
    assert result.exit_code == 0, result.output
    text = out.read_text("utf-8")
    assert "pollwatch report: sim-b" in text and "vegaEmbed" in text


# --- real data ---------------------------------------------------------------------------------
def test_russia_2018_page_and_pagination(mirror: Path, tmp_path: Path) -> None:
    from pollwatch.results.datasets import import_dataset

    settings = load_settings({"home": tmp_path / "home", "data_mirror": mirror})
    election = import_dataset("russia-2018", settings)
    ElectionStore(settings.elections_dir).save(election)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        page = client.get("/elections/russia-2018")
        assert page.status_code == 200
        assert page.text.count('class="station-link"') == 50
        assert len(page.content) < 2_000_000  # aggregated, not raw points
        first = client.get("/api/elections/russia-2018/stations?size=1000").json()
        assert first["total"] == 97_699 and first["pages"] == 98
        last = client.get("/api/elections/russia-2018/stations?size=1000&page=98").json()
        assert len(last["stations"]) == 699
        station = first["stations"][0]["station_id"]
        detail = client.get(f"/elections/russia-2018/stations/{quote(station, safe='')}")
        assert detail.status_code == 200
        api = client.get(f"/api/elections/russia-2018/stations/{quote(station, safe='')}")
        assert api.json()["station_id"] == station
        # the region table is Shpilkin's per-region result: the stations it uses (abroad and
        # stations without registered voters left out), every one in exactly one region
        regions = client.get("/api/elections/russia-2018/regions").json()["regions"]
        results = client.get("/api/elections/russia-2018/methods").json()["results"]
        (shpilkin,) = [r for r in results if r["method"] == "shpilkin"]
        assert sum(r["stations"] for r in regions) == shpilkin["sample_size"] < 97_699
        assert sum(r["shpilkin_estimate"] or 0 for r in regions) == pytest.approx(
            shpilkin["details"]["regions_total"]
        )
        assert all(0 < r["turnout"] <= 1 for r in regions)


def test_election_page_links_to_its_self_contained_report(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from pollwatch.results.store import ElectionStore
    from pollwatch.settings import Settings
    from pollwatch.synthetic.simulator import simulate_clean
    from pollwatch.web.app import create_app

    settings = Settings(home=tmp_path / "home")
    ElectionStore(settings.elections_dir).save(
        simulate_clean(stations=300, seed=9, election_id="linked")
    )
    client = TestClient(create_app(settings))
    page = client.get("/elections/linked")
    assert page.status_code == 200
    assert 'id="report-link" href="/elections/linked/report"' in page.text
    report = client.get("/elections/linked/report")
    assert report.status_code == 200
    assert "pollwatch report: linked" in report.text and "vegaEmbed(" in report.text
    assert client.get("/elections/nope/report").status_code == 404
