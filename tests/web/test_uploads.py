"""Uploads to the dashboard (issue 17, finding 3): limits, jobs, and a server that keeps answering.

The attack shapes go through the real import API; each import runs in its own worker process,
whose peak memory the job reports (``peak_memory_mib``) and these tests bound. Oversize uploads
are refused as they arrive; nothing refused is stored; an import runs as a job the API and the
page can poll; and over a real loopback server, other requests are answered while an import
runs.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from pollwatch.results.importers import get_importer
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings
from pollwatch.web.app import create_app

from ..attack_files import csv_of_blank_lines, russian_table, zip_of_blank_lines
from .conftest import serve_on_loopback

#: Peak memory an import worker may reach on an attack file, interpreter and libraries included.
PEAK_MIB = 300


def _client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.jobs.shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    yield from _client(settings)


def _stored(settings: Settings) -> list[str]:
    folder = settings.elections_dir
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _error(response: Any) -> str:
    data = response.json()
    assert set(data) == {"error"}, data
    message = str(data["error"])
    assert "\n" not in message and "Traceback" not in message
    assert "pollwatch-upload-" not in message and "/tmp" not in message
    return message


def _upload(client: TestClient, path: Path, query: str = "", **data: str) -> Any:
    with path.open("rb") as handle:
        return client.post(
            f"/api/elections/import{query}", files={"file": (path.name, handle)}, data=data
        )


def _last_job(client: TestClient) -> dict[str, Any]:
    jobs = client.app.state.jobs  # type: ignore[attr-defined]
    return dict(jobs.snapshot(next(reversed(jobs._jobs))))


# --- the attack shapes through the API ------------------------------------------------------------
@pytest.mark.parametrize("kilobytes", [8, 32, 64])
def test_zip_of_blank_lines_is_413_in_bounded_memory(
    kilobytes: int, client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    """Was: 2.2 GB / 7.9 GB / over 12 GB, the server frozen, a one-station election stored."""
    response = _upload(client, zip_of_blank_lines(tmp_path, kilobytes))
    assert response.status_code == 413, response.text
    message = _error(response)
    assert message.startswith(f"blank-{kilobytes}k.zip:results.csv: unpacks to more than 100 ")
    assert "POLLWATCH_IMPORT_MAX_COMPRESSION_RATIO" in message
    job = _last_job(client)
    assert job["state"] == "failed" and job["status"] == 413
    assert job["peak_memory_mib"] < PEAK_MIB, job
    assert _stored(settings) == []


def test_csv_of_blank_lines_has_no_stations_in_bounded_memory(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    """Was: a 32 MB CSV of blank lines cost 7.9 GB."""
    response = _upload(client, csv_of_blank_lines(tmp_path, 32))
    assert response.status_code == 400, response.text
    assert _error(response).startswith(
        "no stations in blank-32m.csv: the header is followed by no data rows, only 33,554,432"
    )
    assert _last_job(client)["peak_memory_mib"] < PEAK_MIB
    assert _stored(settings) == []


def test_with_the_ratio_limit_raised_blank_lines_still_cost_nothing(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", import_max_compression_ratio=1e9)
    for client in _client(settings):
        response = _upload(client, zip_of_blank_lines(tmp_path, 64))
        assert response.status_code == 400, response.text
        assert _error(response).startswith("no stations in blank-64k.zip:results.csv")
        assert _last_job(client)["peak_memory_mib"] < PEAK_MIB
    assert _stored(settings) == []


def test_an_empty_file_is_400_no_stations(client: TestClient, settings: Settings) -> None:
    for body in (b"", b"\n\n\n"):
        response = client.post(
            "/api/elections/import", files={"file": ("empty.csv", body)}, data={"format": "medsl"}
        )
        assert response.status_code == 400, response.text
        assert _error(response).startswith("no stations in empty.csv: the file is empty")
    assert _stored(settings) == []


# --- the upload limit ---------------------------------------------------------------------------
def test_an_oversize_upload_is_413_before_it_is_read(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", upload_max_bytes=1024 * 1024)
    big = b"x" * (2 * 1024 * 1024)
    for client in _client(settings):
        declared = client.post("/api/elections/import", files={"file": ("big.csv", big)})
        assert declared.status_code == 413
        message = _error(declared)
        assert message.startswith("the upload of 2 MiB is larger than 1 MiB, the most the ")
        assert "POLLWATCH_UPLOAD_MAX_BYTES" in message

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
            for _ in range(4):
                yield b"x" * (512 * 1024)
            yield b"\r\n--b--\r\n"

        chunked = client.post(
            "/api/elections/import",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert chunked.status_code == 413
        assert _error(chunked).startswith("the upload is larger than 1 MiB")
        form = client.post("/elections/import", files={"file": ("big.csv", big)})
        assert form.status_code == 413 and 'id="error"' in form.text
        # under the limit, the same route still imports
        example = get_importer("russia-cec").example(tmp_path / "example")
        assert _upload(client, example.path).status_code == 201
    assert _stored(settings) == ["russia-2018"]


# --- jobs -----------------------------------------------------------------------------------------
def test_an_import_is_a_job_the_api_and_the_page_follow(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    example = get_importer("russia-cec").example(tmp_path / "example")
    with example.path.open("rb") as handle:
        accepted = client.post(
            "/api/elections/import?wait=0",
            files={"file": (example.path.name, handle)},
            data={"id": "as-a-job"},
        )
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert accepted.headers["location"] == job["poll"] == f"/api/jobs/{job['job']}"
    assert job["state"] in ("queued", "running") and job["result"] is None
    page = client.get(f"/jobs/{job['job']}")
    assert page.status_code == 200 and 'id="job"' in page.text and 'id="job-progress"' in page.text
    seen = {job["state"]}
    deadline = time.monotonic() + 120
    while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(job["poll"]).json()
        seen.add(job["state"])
        assert 0.0 <= job["progress"] <= 1.0
    assert job["state"] == "done", job
    assert job["result"] == {"id": "as-a-job", "url": "/elections/as-a-job", "stations": 4}
    assert job["status"] == 201 and job["error"] is None and job["peak_memory_mib"] > 0
    assert client.get("/elections/as-a-job").status_code == 200
    assert "/elections/as-a-job" in client.get(f"/jobs/{job['job']}").text
    missing = client.get("/api/jobs/nope")
    assert missing.status_code == 404 and "no import job" in _error(missing)
    assert _stored(settings) == ["as-a-job"]
    assert not any(p.name.startswith(".staging") for p in settings.elections_dir.iterdir())


def test_a_slow_import_sends_the_browser_to_its_job_page(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", import_wait_seconds=0)
    example = get_importer("russia-cec").example(tmp_path / "example")
    for client in _client(settings):
        with example.path.open("rb") as handle:
            form = client.post(
                "/elections/import",
                files={"file": (example.path.name, handle)},
                follow_redirects=False,
            )
        assert form.status_code == 303 and form.headers["location"].startswith("/jobs/")
        api = _upload(client, example.path, id="second")
        assert api.status_code == 202  # import_wait_seconds = 0: no waiting at all


def test_a_worker_killed_mid_import_fails_its_job_and_the_server_goes_on(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    """As when the kernel kills a worker for its memory: a 500 for the job, nothing stored."""
    big = tmp_path / "big-2018.csv"
    russian_table(big, 24)
    job = _upload(client, big, "?wait=0").json()
    jobs = client.app.state.jobs  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while not jobs._running and time.monotonic() < deadline:
        time.sleep(0.01)
    for process in list(jobs._running.values()):
        process.kill()
    while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(job["poll"]).json()
    assert job["state"] == "failed" and job["status"] == 500, job
    assert "stopped unexpectedly" in job["error"]
    assert _stored(settings) == []
    example = get_importer("russia-cec").example(tmp_path / "example")
    assert _upload(client, example.path).status_code == 201  # the next worker is fresh


# --- a real server keeps answering while an import runs -----------------------------------------
def test_the_server_answers_while_an_import_runs(settings: Settings, tmp_path: Path) -> None:
    """Was: the import ran on the event loop; every other request waited for it."""
    httpx = pytest.importorskip("httpx")
    big = tmp_path / "big-2018.csv"
    stations = russian_table(big, 24)
    app = create_app(settings)
    outcome: dict[str, Any] = {}
    answered_during: list[float] = []
    try:
        with serve_on_loopback(app) as url:

            def upload() -> None:
                with big.open("rb") as handle, httpx.Client(timeout=300) as http:
                    response = http.post(
                        f"{url}/api/elections/import", files={"file": (big.name, handle)}
                    )
                outcome["status"], outcome["body"] = response.status_code, response.json()
                outcome["finished"] = time.monotonic()

            worker = threading.Thread(target=upload)
            worker.start()
            with httpx.Client(timeout=60) as http:
                while worker.is_alive():
                    started = time.monotonic()
                    page = http.get(f"{url}/")
                    if worker.is_alive():  # the import request is still waiting for its job
                        assert page.status_code == 200
                        answered_during.append(time.monotonic() - started)
                    time.sleep(0.05)
            worker.join()
    finally:
        app.state.jobs.shutdown()
    assert outcome["status"] == 201, outcome
    assert outcome["body"]["id"] == "russia-2018"
    assert ElectionStore(settings.elections_dir).load("russia-2018").stations.height == stations
    # several pages were served while the import ran, not one after it
    assert len(answered_during) >= 3, answered_during
