"""Fixtures for the browser tests: a store with Russia 2018, the web app on a loopback port, and
Debian's chromium driven by Playwright.

Everything is module-scoped, so the store is built, the analysis cached and the server and the
browser started once per test module. Nothing is downloaded: the election comes from the data
mirror (``POLLWATCH_DATA_MIRROR``) and the browser is the system's chromium (never
``playwright install``). Each fixture skips with the reason when what it needs is absent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.forensics.base import method_names
from pollwatch.forensics.suite import SuiteReport, run_suite
from pollwatch.results.datasets import DATASETS, import_dataset
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings
from pollwatch.video.segments import format_time

#: The election the browser tests open.
ELECTION_ID = "russia-2018"
#: The fast subset of the suite that the election page falls back to; cached up front.
FAST_METHODS = method_names("fast")
#: Where screenshots go (ignored by git).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_executable() -> str | None:
    """Debian's chromium (``apt-get install chromium``), or None when it is not installed."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(frozen=True)
class WebStore:
    """The store the app serves, and what the tests know about its one election."""

    settings: Settings
    election: Election
    suite: SuiteReport


@pytest.fixture(scope="module")
def web_store(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStore]:
    """A fresh POLLWATCH_HOME holding Russia 2018 from the mirror, its fast analysis cached."""
    dataset = DATASETS.get(ELECTION_ID)
    if not (mirror / dataset.folder / dataset.filename).is_file():
        pytest.skip(f"{dataset.folder}/{dataset.filename} is not in the data mirror {mirror}")
    home = tmp_path_factory.mktemp("web-home")
    settings = Settings(home=home, data_mirror=mirror, download=False)
    election = import_dataset(ELECTION_ID, settings)
    ElectionStore(settings.elections_dir).save(election)
    suite = run_suite(election, FAST_METHODS, cache_dir=settings.analysis_dir)
    # The app is given the settings; the environment says the same in case anything reads it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLLWATCH_HOME", str(home))
        patch.setenv("POLLWATCH_DATA_MIRROR", str(mirror))
        patch.delenv("POLLWATCH_CONFIG", raising=False)
        yield WebStore(settings=settings, election=election, suite=suite)


def _wait_until_answering(url: str, server: Any, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"the web server thread exited before answering {url}")
        if server.started:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    response.read()
                return
            except urllib.error.HTTPError:
                return  # it answers, whatever the status; the tests judge the status
            except OSError as exc:
                last = exc
        time.sleep(0.05)
    raise RuntimeError(f"the web server did not answer {url} within {timeout:.0f} s ({last})")


@contextlib.contextmanager
def serve_on_loopback(app: Any, *, probe: str = "/") -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 with ``pollwatch serve``'s own uvicorn configuration.

    The kernel picks a free port (no race with other tests); yields the base URL once ``probe``
    answers, and stops the server on exit.
    """
    pytest.importorskip("uvicorn")
    import uvicorn

    from pollwatch.web.server import server_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="pollwatch-web", daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(f"{url}{probe}", server, thread, timeout=30)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def base_url(web_store: WebStore) -> Iterator[str]:
    """The app (``create_app(settings)``) served by uvicorn on 127.0.0.1, on a free port."""
    try:
        from pollwatch.web.app import create_app
    except ImportError as exc:
        pytest.fail(f"cannot import create_app from pollwatch.web.app: {exc}")
    with serve_on_loopback(create_app(web_store.settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium through Playwright's sync API."""
    executable = chromium_executable()
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class PageProblems:
    """What went wrong in the page while a test drove it."""

    errors: list[str]
    external: list[str]
    failed: list[str]


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    """A fresh page (own context, downloads allowed) that may reach only the app's origin.

    Requests anywhere else are aborted and recorded: the app must never need a CDN. JavaScript
    errors, requests that fail and HTTP error responses are recorded too; the test sees them on
    ``page.problems`` and the fixture fails the test if any were left unchecked.
    """
    context = browser.new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 900}, base_url=base_url
    )
    context.set_default_timeout(15_000)
    problems = PageProblems(errors=[], external=[], failed=[])

    def route(route: Any) -> None:
        if route.request.url.startswith(base_url + "/"):
            route.continue_()
        else:
            problems.external.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    new_page = context.new_page()
    new_page.on("pageerror", lambda error: problems.errors.append(str(error)))

    def response(resp: Any) -> None:
        if resp.status >= 400 and not resp.url.endswith("/favicon.ico"):
            problems.failed.append(f"{resp.status} {resp.url}")

    new_page.on("response", response)
    new_page.problems = problems
    try:
        yield new_page
    finally:
        context.close()
    assert not problems.external, f"the page requested other origins: {problems.external}"
    assert not problems.errors, f"JavaScript errors in the page: {problems.errors}"
    assert not problems.failed, f"requests that failed: {problems.failed}"


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """The screenshot folder at the repository root (``screenshots/``, ignored by git)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


def archive_segment(
    archive: EvidenceArchive,
    path: Path,
    station: str,
    sequence: int,
    start: datetime,
    previous: str | None = None,
) -> str:
    """Archive ``path`` as camera cam1's 2-second original segment ``sequence`` of ``station``,
    as the recorder files one (chained to ``previous``); its SHA-256."""
    record = archive.add(
        path,
        submitter="recorder",
        media_type="video/mp4",
        station=station,
        device="cam1",
        capture_time=format_time(start),
        clock_source="recorder-utc",
        extra={
            "video": {
                "camera": "cam1",
                "sequence": sequence,
                "start": format_time(start),
                "end": format_time(start + timedelta(seconds=2)),
                "duration": 2.0,
                "previous": previous,
                "copy": "original",
            }
        },
    )
    return record.sha256
