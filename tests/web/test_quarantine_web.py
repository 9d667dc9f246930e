"""The quarantine on the dashboard: the election page's count and link, its page, the JSON API."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from pollwatch.results.importers import get_importer, import_file
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings, load_settings
from pollwatch.web.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("quarantine-home")
    settings: Settings = load_settings({"home": home})
    folder = tmp_path_factory.mktemp("source")
    example = get_importer("mapping").example(folder)
    lines = example.path.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "North;Alpha;9;regular;10;5;0;5;<b>three</b>;2;")  # line 4
    target = folder / "bad.csv"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ElectionStore(settings.elections_dir).save(import_file(target, mapping=example.mapping))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_api_lists_the_set_aside_rows(client: TestClient) -> None:
    election = client.get("/api/elections/freedonia-2031").json()
    assert election["summary"]["set_aside"] == 1
    assert election["quarantine"]["count"] == 1
    assert election["quarantine"]["reasons"] == {"not a whole number": 1}
    data = client.get(election["quarantine"]["url"]).json()
    assert [(r["line"], r["column"], r["reason"]) for r in data["rows"]] == [
        (4, "Firefly", "not a whole number")
    ]
    assert data["rows"][0]["cells"][8] == "<b>three</b>"
    assert client.get("/api/elections/nope/quarantine").status_code == 404


def test_election_page_links_to_the_quarantine_page(client: TestClient) -> None:
    page = client.get("/elections/freedonia-2031").text
    assert 'href="/elections/freedonia-2031/quarantine"' in page
    table = client.get("/elections/freedonia-2031/quarantine")
    assert table.status_code == 200
    assert "set aside 1 row of 7 (1 not a whole number)" in table.text
    assert "&lt;b&gt;three&lt;/b&gt;" in table.text and "<b>three</b>" not in table.text


@pytest.mark.parametrize("strict", [False, True])
def test_an_upload_sets_bad_rows_aside_unless_strict(
    tmp_path_factory: pytest.TempPathFactory, strict: bool
) -> None:
    home = tmp_path_factory.mktemp("upload-home")
    settings: Settings = load_settings({"home": home})
    folder = tmp_path_factory.mktemp("upload-source")
    example = get_importer("mapping").example(folder)
    assert example.mapping is not None
    lines = example.path.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "North;Alpha;9;regular;10;5;0;5;three;2;")  # line 4
    target = folder / "bad.csv"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        with target.open("rb") as data, example.mapping.open("rb") as mapping:
            answer = client.post(
                "/api/elections/import",
                files={"file": (target.name, data), "mapping": (example.mapping.name, mapping)},
                data={"strict": "true"} if strict else {},
            )
        if strict:
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"].startswith(
                "bad.csv, row 4, column 'Firefly': 'three' is not a whole number"
            )
            assert ElectionStore(settings.elections_dir).list() == []
        else:
            assert answer.status_code == 201, answer.text
            election = client.get(answer.json()["url"].replace("/elections/", "/api/elections/"))
            assert election.json()["summary"]["set_aside"] == 1
