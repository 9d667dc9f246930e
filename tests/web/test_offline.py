"""Every page of the dashboard works offline: no request leaves the loopback server.

The pages are enumerated from the app's routes (every GET route outside ``/api/`` that is not
a listed asset or media endpoint), so a new page is checked without editing this test; its path
parameters are filled from the store (Russia 2018 from the data mirror, one of its stations, a
video station with one recorded segment). Headless Debian chromium, logged in as a lawyer (who
may see the audit pages), opens each page with every request to another host aborted and
recorded. A page fails when it requested another host (or tried to, and was stopped by its
Content-Security-Policy, unless that attempt is a listed one), answered an error status, raised
a JavaScript error or got an error response for one of its resources; ``/docs`` and ``/redoc``
must also have rendered the API's title and every operation of ``/openapi.json`` (Swagger UI's
operation blocks, ReDoc's operation sections), not merely stayed blank without asking a CDN.
Skips without the mirror or chromium.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from starlette.routing import Route

from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.video.accounts import AccountStore

from .conftest import ELECTION_ID, WebStore, archive_segment

pytestmark = [pytest.mark.data, pytest.mark.network]

VIDEO_STATION = "N-1"
AUDITOR = "lena"
PASSWORD = "correct horse battery"

#: GET routes outside /api/ that are not pages a person opens, and why.
NOT_PAGES = {
    "/openapi.json": "the OpenAPI schema (JSON), loaded by /docs and /redoc",
    "/docs/oauth2-redirect": "Swagger UI's OAuth2 pop-up callback, opened only by /docs",
    "/favicon.ico": "an empty answer for browsers' icon requests",
    "/static/{name}": "the dashboard's script and style sheet, loaded by every page",
    "/static/vega/{name}": "the vendored Vega scripts, loaded by the chart pages",
    "/video/segments/{sha256}": "a segment's bytes, played by /video/{station}",
}

#: Query strings that some pages need to show something rather than a 400.
QUERIES = {
    "/compare": f"ids={ELECTION_ID}",
    "/audit/watched": f"station={VIDEO_STATION}",
}

#: Requests that a page's Content-Security-Policy stops in the browser (they never leave it),
#: and why the page is allowed to try them.
KNOWN_BLOCKED = {
    ("/redoc", "https://cdn.redoc.ly/redoc/logo-mini.svg"): (
        "ReDoc's bundle hard-codes its logo on a CDN; /redoc allows images from the site only"
    ),
}

#: Reports each Content-Security-Policy violation of the page to the test.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", event =>
    window.pollwatchViolation(event.blockedURI, event.effectiveDirective));
"""

_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclass
class Visit:
    """What one page did while it loaded."""

    template: str
    path: str
    status: int | None = None
    external: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_rendered: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = [f"requested {url}" for url in self.external]
        found += [f"tried {url} (blocked by its Content-Security-Policy)" for url in self.blocked]
        if self.status is None or self.status >= 400:
            found.append(f"answered HTTP {self.status}")
        found += [f"JavaScript error: {error}" for error in self.errors]
        found += [f"resource failed: {failure}" for failure in self.failed]
        found += self.not_rendered
        return found


@pytest.fixture(scope="module")
def video_station(web_store: WebStore) -> str:
    """One recorded segment at :data:`VIDEO_STATION` in the store's archive, and a lawyer.

    The segment's bytes are not a video: these pages list segments but play none (the player
    starts on a click; ``test_video_e2e`` plays real ones).
    """
    settings = web_store.settings
    archive = EvidenceArchive.init(settings.evidence_dir, "test/offline")
    clip = settings.home / "segment-0.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video")
    start = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    archive_segment(archive, clip, VIDEO_STATION, 0, start)
    archive.close()
    AccountStore(settings.video_dir).add_user(AUDITOR, "lawyer", PASSWORD)
    return VIDEO_STATION


def page_routes(web_store: WebStore) -> list[str]:
    """The path templates of the app's pages: GET routes outside /api/, less :data:`NOT_PAGES`."""
    from pollwatch.web.app import all_routes, create_app

    app = create_app(web_store.settings)
    gets = sorted(
        {
            route.path
            for route in all_routes(app)
            if isinstance(route, Route) and "GET" in (route.methods or ())
        }
    )
    missing = sorted(set(NOT_PAGES) - set(gets))
    assert not missing, f"NOT_PAGES lists routes the app no longer has: {missing}"
    return [path for path in gets if not path.startswith("/api/") and path not in NOT_PAGES]


def page_url(template: str, values: dict[str, str]) -> str:
    """``template`` with its path parameters filled (URL-encoded) and its query, if any."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise AssertionError(
                f"no value for the path parameter {name!r} of the page {template}: "
                "add one to the values in test_every_page_loads_offline"
            )
        return quote(values[name], safe="")

    path = _PARAMETER.sub(fill, template)
    query = QUERIES.get(template)
    return f"{path}?{query}" if query else path


def check_docs_rendered(page: Any, template: str, operations: int, visit: Visit) -> None:
    """Swagger UI (``/docs``) and ReDoc (``/redoc``) drew the schema's title and operations."""
    if template == "/docs":
        drawn = "#swagger-ui .swagger-ui .opblock"
        title = "#swagger-ui .swagger-ui .info .title"
    elif template == "/redoc":
        drawn = "redoc [data-section-id^='operation/']"
        title = "redoc h1"
    else:
        return
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_selector(title, timeout=15_000)
        page.wait_for_function(
            "([selector, count]) => document.querySelectorAll(selector).length >= count",
            arg=[drawn, operations],
            timeout=15_000,
        )
    except PlaywrightTimeoutError:  # reported with the other pages' problems
        count = page.locator(drawn).count()
        visit.not_rendered.append(f"did not render: {count} of {operations} operations ({drawn})")
        return
    heading = page.locator(title).first.inner_text()
    if "pollwatch" not in heading:
        visit.not_rendered.append(f"did not render the API title: {heading!r}")


def finished_import_job(base_url: str, web_store: WebStore) -> str:
    """The id of an import job (``/jobs/{job_id}``) that has ended: an example file, uploaded."""
    import httpx

    from pollwatch.results.importers import get_importer

    example = get_importer("russia-cec").example(web_store.settings.home / "offline-upload")
    with httpx.Client(base_url=base_url, timeout=120) as client:
        answer = client.post(
            "/api/elections/import",
            files={"file": (example.path.name, example.path.read_bytes())},
            data={"id": "offline-upload"},
        )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["job"])


def test_every_page_loads_offline(
    browser: Any, base_url: str, web_store: WebStore, video_station: str
) -> None:
    station_id = str(web_store.election.stations["station_id"][0])
    values = {"election_id": ELECTION_ID, "station_id": station_id, "station": video_station}
    values["job_id"] = finished_import_job(base_url, web_store)
    values["name"] = "triage"  # a method page with a chart and a table of its own
    templates = page_routes(web_store)
    # the enumeration must find the pages we know of, or it checks nothing
    known = {"/", "/docs", "/redoc", "/elections/{election_id}", "/video", "/video/{station:path}"}
    assert known <= set(templates), f"pages not found among the routes: {known - set(templates)}"

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    context.set_default_timeout(30_000)
    current = Visit(template="/login", path="/login (logging in)")

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(base_url + "/"):
            request_route.continue_()
        else:
            current.external.append(url)
            request_route.abort()

    context.route("**/*", route)

    known_seen: set[tuple[str, str]] = set()

    def violation(_source: Any, url: str, directive: str) -> None:
        if (current.template, url) in KNOWN_BLOCKED:
            known_seen.add((current.template, url))
        else:
            current.blocked.append(f"{url} [{directive}]")

    context.expose_binding("pollwatchViolation", violation)
    context.add_init_script(_REPORT_VIOLATIONS)
    page = context.new_page()
    page.on("pageerror", lambda error: current.errors.append(str(error)))

    def response(resp: Any) -> None:
        document = resp.request.resource_type == "document"  # judged by its status
        if resp.status >= 400 and not document and not resp.url.endswith("/favicon.ico"):
            current.failed.append(f"{resp.status} {resp.url}")

    page.on("response", response)
    visits = [current]
    try:
        answer = page.goto("/login?next=/video")
        current.status = None if answer is None else answer.status
        page.fill("#login-name", AUDITOR)
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url("**/video")
        assert page.inner_text("#whoami-name") == AUDITOR

        schema = page.request.get("/openapi.json").json()
        operations = sum(
            1
            for methods in schema["paths"].values()
            for method in methods
            if method in {"get", "put", "post", "delete", "patch"}
        )
        for template in templates:
            current = Visit(template=template, path=page_url(template, values))
            visits.append(current)
            answer = page.goto(current.path, wait_until="networkidle")
            current.status = None if answer is None else answer.status
            check_docs_rendered(page, template, operations, current)
    finally:
        context.close()

    report = [
        f"{visit.path}: " + "; ".join(visit.problems()) for visit in visits if visit.problems()
    ]
    assert not report, "pages that do not work offline:\n  " + "\n  ".join(report)
    # and the rendering checks ran where they must
    assert {visit.template for visit in visits} >= {"/docs", "/redoc"}
    unseen = sorted(set(KNOWN_BLOCKED) - known_seen)
    assert not unseen, f"KNOWN_BLOCKED lists requests that no page tried any more: {unseen}"
