"""Camera credentials never leave the server: not in the evidence log, the spool, or any page.

A real recorder records a simulated camera through a URL that carries a user name, a password
afterwards every GET route of the dashboard (pages and API, anonymous and as an
admin) is fetched and searched for the secrets, and so are the archive's log entries and the
recorder's spool files. The events keep the camera identifiable (scheme, host, port, path).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.settings import Settings
from pollwatch.video.accounts import AccountStore
from pollwatch.video.manifest import redact_url
from pollwatch.video.segments import VideoIndex
from pollwatch.video.simulator import SimulatedCamera
from pollwatch.web.app import all_routes, create_app

from .test_recorder import _wait, recording

PASSWORD = "Sesame-0f-the-Camera"


def _with_credentials(url: str) -> str:
    # The simulated camera answers 404 to any other path, so the secret is the password of
    # the user-info part here; secret query parameters are covered by the test above.
    scheme, rest = url.split("://", 1)
    return f"{scheme}://operator:{PASSWORD}@{rest}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:pw@10.0.0.1:554/live", "rtsp://admin:***@10.0.0.1:554/live"),
        ("http://10.0.0.21/stream.ts", "http://10.0.0.21/stream.ts"),
        ("http://h/s.ts?user=admin&password=x&ch=2", "http://h/s.ts?user=admin&password=***&ch=2"),
        ("http://:only-a-password@h/s.ts", "http://***@h/s.ts"),
        ("http://h/s.ts?api_key=1&Sig=2&auth=3", "http://h/s.ts?api_key=***&Sig=***&auth=***"),
    ],
)
def test_redact_url_masks_passwords_and_secret_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_no_response_log_entry_or_spool_file_holds_the_credentials(
    archive: EvidenceArchive, camera: SimulatedCamera, tmp_path: Path
) -> None:
    url = _with_credentials(camera.url)
    spool = tmp_path / "spool"
    with recording(archive, url, spool) as (_, notices):
        _wait(lambda: notices.count("segment") >= 2)
    for notice in notices.items:
        assert PASSWORD not in str(notice)
    logged = json.dumps([entry for _, entry in archive.entries()])
    assert PASSWORD not in logged
    for path in spool.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    start = VideoIndex.from_archive(archive).events("S1", "cam1")[0]
    assert start.event == "recorder-start"
    assert start.details["url"] == redact_url(url)
    assert start.details["url"].startswith(f"http://operator:***@{camera.url.split('://')[1]}")

    settings = Settings(home=tmp_path, download=False)
    assert settings.evidence_dir == archive.folder
    accounts = AccountStore(settings.video_dir)
    accounts.add_user("root", "admin", "a long admin password")
    admin_token = accounts.create_token("root", "test")[1]
    app = create_app(settings)
    segment = VideoIndex.from_archive(archive).segments("S1", "cam1")[0].sha256
    values = {"station": "S1", "camera": "cam1", "sha256": segment}
    anonymous = TestClient(app, client=("192.0.2.10", 50000))
    admin = TestClient(
        app, client=("192.0.2.10", 50000), headers={"Authorization": f"Bearer {admin_token}"}
    )
    fetched = 0
    for route in all_routes(app):
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        names = re.findall(r"{(\w+)(?::\w+)?}", route.path)
        if any(name not in values for name in names):
            continue  # election pages: no election in this store
        path = route.path
        for name in names:
            path = re.sub(r"{" + name + r"(?::\w+)?}", values[name], path)
        for client in (anonymous, admin):
            response = client.get(path)
            body = response.content
            assert PASSWORD.encode() not in body, path
            fetched += 1
    assert fetched >= 20  # the station page, its JSON, the timeline, audit views, ...
