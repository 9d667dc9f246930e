"""Forged forwarded headers over a real server: the client never chooses its own address.

The app runs under ``pollwatch serve``'s own uvicorn configuration on 127.0.0.1 and is called
over real HTTP, so uvicorn's proxy-header handling is part of what is tested (a TestClient
would bypass it). 127.0.0.1 is outside the policy's ``national`` network, so a lawyer here
may see blurred copies only; a forged ``X-Forwarded-For`` naming a national address must not
unlock originals, must not turn an allowed viewing into a denial, and must never be recorded
as the viewer's address.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from pollwatch.web.app import create_app
from tests.web.conftest import serve_on_loopback

from .conftest import NATIONAL, POLICY, Site

FORGED = ["<script>alert(1)</script>", '=HYPERLINK("http://x")', "8.8.8.8, junk"]


def _bearer(site: Site, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {site.tokens[user]}"}


def _logged_text(site: Site) -> str:
    return json.dumps([entry for _, entry in site.archive.entries()])


def test_forged_forwarded_for_is_ignored_without_a_trusted_proxy(site: Site) -> None:
    original, blurred = site.originals["n1a"], site.blurred["n1a"]
    with serve_on_loopback(site.app, probe="/login") as url, httpx.Client(base_url=url) as http:
        forged = http.get(
            f"/api/video/segments/{original.sha256}?copy=original",
            headers={**_bearer(site, "lena"), "X-Forwarded-For": NATIONAL},
        )
        assert forged.status_code == 403
        assert site.custody("denied")[-1]["address"] == "127.0.0.1"
        # A foreign address in the header does not turn an allowed viewing into a denial.
        allowed = http.get(
            f"/api/video/segments/{blurred.sha256}",
            headers={**_bearer(site, "lena"), "X-Forwarded-For": "8.8.8.8"},
        )
        assert allowed.status_code == 200
        assert allowed.content == site.data(blurred)
        assert site.custody("access")[-1]["address"] == "127.0.0.1"
        for text in FORGED:
            http.get(
                f"/api/video/segments/{original.sha256}?copy=original",
                headers={**_bearer(site, "lena"), "X-Forwarded-For": text},
            )
        assert "server" not in {name.lower() for name in allowed.headers}
    logged = _logged_text(site)
    assert NATIONAL not in logged and "8.8.8.8" not in logged
    assert "script" not in logged and "HYPERLINK" not in logged


def test_a_configured_proxy_is_believed_but_never_for_text(site: Site, tmp_path: Path) -> None:
    policy = POLICY.replace('trusted = ["10.9.9.9/32"]', 'trusted = ["127.0.0.1/32"]')
    (site.settings.video_dir / "policy.toml").write_text(policy, encoding="utf-8")
    original = site.originals["n1a"]
    path = f"/api/video/segments/{original.sha256}?copy=original"
    app = create_app(site.settings)
    with serve_on_loopback(app, probe="/login") as url, httpx.Client(base_url=url) as http:
        via_proxy = http.get(path, headers={**_bearer(site, "lena"), "X-Forwarded-For": NATIONAL})
        assert via_proxy.status_code == 200
        assert site.custody("access")[-1]["address"] == NATIONAL
        for text in FORGED[:2]:
            refused = http.get(path, headers={**_bearer(site, "lena"), "X-Forwarded-For": text})
            assert refused.status_code == 403  # judged as the proxy itself: not national
            assert site.custody("denied")[-1]["address"] == "127.0.0.1"
    logged = _logged_text(site)
    assert "script" not in logged and "HYPERLINK" not in logged
