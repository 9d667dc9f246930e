"""Regulated playback over HTTP: range requests, the policy on every footage route, custody.

The app is the real dashboard (``create_app``) over a real evidence archive holding real MP4
segments made by ffmpeg; requests go through Starlette's TestClient, whose ``client`` argument
sets the client address the policy sees (``request.client.host``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from pollwatch.settings import Settings
from pollwatch.video.accounts import AccountStore
from pollwatch.web.app import all_routes, create_app
from pollwatch.web.video import FOOTAGE_ROUTES, SESSION_COOKIE

from .conftest import ABROAD, NATIONAL, PASSWORD, POLICY, USERS, SegmentWriter, Site


# --- range requests --------------------------------------------------------------------------
def test_range_requests_return_the_right_bytes(site: Site) -> None:
    record = site.originals["n1a"]
    data = site.data(record)
    size = len(data)
    url = f"/api/video/segments/{record.sha256}?copy=original"
    client = site.client(user="lena")
    whole = client.get(url)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"].startswith("video/mp4")
    assert whole.headers["x-pollwatch-copy"] == "original"
    assert "no-store" in whole.headers["cache-control"]
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-50": (size - 50, size - 1),
        f"bytes=10-{size + 500}": (10, size - 1),
        f"bytes={size - 1}-{size - 1}": (size - 1, size - 1),
    }
    for header, (first, last) in cases.items():
        part = client.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}", header
        assert part.content == data[first : last + 1], header
        assert int(part.headers["content-length"]) == last - first + 1
    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    several = client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == data
    # the HTML player's URL serves the same bytes
    html = site.client(user="lena").get(
        f"/video/segments/{record.sha256}?copy=original", headers={"Range": "bytes=0-9"}
    )
    assert html.status_code == 206 and html.content == data[:10]


# --- every footage route goes through the policy ----------------------------------------------
def _fill(path: str, sha256: str) -> str:
    values = {
        "sha256": sha256,
        "station": "N-1",
        "station_id": "N-1",
        "election_id": "none",
        "name": "none",
        "job_id": "none",
    }
    for key, value in values.items():
        path = path.replace("{" + key + "}", value).replace("{" + key + ":path}", value)
    assert "{" not in path, f"a path parameter this test does not know: {path}"
    return path


def test_footage_routes_are_all_known(site: Site) -> None:
    paths = {r.path for r in all_routes(site.app) if isinstance(r, APIRoute)}
    assert paths >= FOOTAGE_ROUTES, "FOOTAGE_ROUTES names a route the app does not have"
    for route in all_routes(site.app):
        if isinstance(route, APIRoute) and ("{sha256" in route.path or "segment" in route.path):
            assert route.path in FOOTAGE_ROUTES, f"{route.path} looks like footage: list it"


@pytest.mark.parametrize(
    ("address", "user", "query", "rule"),
    [
        (ABROAD, None, "", "foreign-denied"),  # unauthenticated, outside the allow-list
        (NATIONAL, None, "?copy=original", "public-blurred"),  # unauthenticated, asks original
        (NATIONAL, "olga", "", "observers-elsewhere"),  # observer outside her region
        (NATIONAL, "root", "?copy=original", "public-blurred"),  # admin is not entitled
        (ABROAD, "ana", "?copy=blurred", "foreign-denied"),
    ],
)
def test_every_route_denies_without_footage(
    site: Site, address: str, user: str | None, query: str, rule: str
) -> None:
    """Try every GET route of the app; footage routes answer 403 and log 'denied'."""
    station_sha = site.originals["s1a"].sha256 if user == "olga" else site.originals["n1a"].sha256
    footage = [site.data(r) for r in site.originals.values()] + [
        site.data(r) for r in site.blurred.values()
    ]
    client = site.client(address, user)
    tried = 0
    for route in all_routes(site.app):
        if not isinstance(route, APIRoute):
            continue
        path = _fill(route.path, station_sha)
        for method in sorted(route.methods - {"GET"}):
            # other methods with an empty body: refused or harmless, never footage
            other = client.request(method, path + query, follow_redirects=False)
            assert not other.headers.get("content-type", "").startswith("video/"), path
            assert all(data[:4096] not in other.content for data in footage), path
        if "GET" not in route.methods:
            continue
        before = len(site.custody())
        response = client.get(path + query, follow_redirects=False)
        tried += 1
        body = response.content
        assert not response.headers.get("content-type", "").startswith("video/"), path
        for data in footage:
            assert data[:4096] not in body, f"{path} served footage to {user or 'anonymous'}"
        new = site.custody()[before:]
        if route.path in FOOTAGE_ROUTES:
            assert response.status_code == 403, (path, response.status_code, response.text)
            assert [e["action"] for e in new] == ["denied"], path
            entry = new[0]
            assert entry["actor"] == (user or "anonymous")
            assert entry["address"] == address
            assert entry["reason"] == rule
            assert entry["item"] == station_sha
            assert entry["details"]["role"] == (USERS.get(user or "", "public"))
            if path.startswith("/api"):
                assert response.json()["error"].startswith("denied: ")
            else:
                assert 'id="error"' in response.text and "denied: " in response.text
        else:
            assert all(e["action"] != "access" for e in new), path
    assert tried > 20
    assert site.custody("access") == []


# --- who gets what -----------------------------------------------------------------------------
def test_public_gets_only_blurred_copies(site: Site) -> None:
    original = site.originals["n1a"]
    client = site.client(NATIONAL)
    served = client.get(f"/video/segments/{original.sha256}")
    assert served.status_code == 200
    assert served.headers["x-pollwatch-copy"] == "blurred"
    assert served.content == site.data(site.blurred["n1a"])
    assert served.content != site.data(original)
    # asking for the original, directly or through the blurred copy's hash, is denied
    for url in (
        f"/video/segments/{original.sha256}?copy=original",
        f"/video/segments/{site.blurred['n1a'].sha256}?copy=original",
    ):
        denied = client.get(url)
        assert denied.status_code == 403
        assert "only blurred" in denied.text
    # a segment without a blurred copy is not served at all (never the original instead)
    missing = client.get(f"/api/video/segments/{site.originals['n1b'].sha256}")
    assert missing.status_code == 409
    assert "no blurred copy" in missing.json()["error"]
    accesses = site.custody("access")
    assert [e["item"] for e in accesses] == [site.blurred["n1a"].sha256]
    assert accesses[0]["details"]["copy"] == "blurred"
    assert accesses[0]["actor"] == "anonymous"


def test_observer_sees_her_region_only(site: Site) -> None:
    client = site.client(NATIONAL, "olga")
    north = client.get(f"/api/video/segments/{site.originals['n1a'].sha256}")
    assert north.status_code == 200 and north.headers["x-pollwatch-copy"] == "blurred"
    south = client.get(f"/api/video/segments/{site.originals['s1a'].sha256}")
    assert south.status_code == 403
    [denied] = site.custody("denied")
    assert denied["reason"] == "observers-elsewhere"
    assert denied["details"]["station"] == "S-1"
    listing = client.get("/api/video/stations").json()
    access = {row["station"]: row["access"] for row in listing["stations"]}
    assert access["N-1"]["allowed"] and not access["S-1"]["allowed"]


def test_address_outside_allow_list_is_downgraded(site: Site) -> None:
    original = site.originals["n1a"]
    inside = site.client(NATIONAL, "lena").get(f"/api/video/segments/{original.sha256}")
    assert inside.headers["x-pollwatch-copy"] == "original"
    assert inside.content == site.data(original)
    abroad = site.client(ABROAD, "lena")
    downgraded = abroad.get(f"/api/video/segments/{original.sha256}")
    assert downgraded.status_code == 200
    assert downgraded.headers["x-pollwatch-copy"] == "blurred"
    refused = abroad.get(f"/api/video/segments/{original.sha256}?copy=original")
    assert refused.status_code == 403
    assert site.custody("denied")[-1]["reason"] == "court-abroad-blurred"
    # IPv6 inside the national range counts as national
    v6 = site.client("2001:db8::7", "carl").get(f"/api/video/segments/{original.sha256}")
    assert v6.headers["x-pollwatch-copy"] == "original"


def test_custody_entry_per_request_and_repeats(site: Site) -> None:
    original = site.originals["n1a"]
    client = site.client(NATIONAL, "lena")
    url = f"/api/video/segments/{original.sha256}?copy=original"
    client.get(url, headers={"Range": "bytes=0-99"})
    client.get(url, headers={"Range": "bytes=100-"})  # the same player, within 60 s
    [entry] = site.custody("access")
    assert entry["item"] == original.sha256
    assert entry["actor"] == "lena"
    assert entry["address"] == NATIONAL
    assert entry["details"] == {
        "role": "lawyer",
        "copy": "original",
        "station": "N-1",
        "camera": "cam1",
        "range": "bytes=0-99",
        "rule": "court-national",
    }
    # another copy, another address or another user is a new viewing
    client.get(url.replace("original", "blurred"))
    site.client("192.0.2.11", "lena").get(url)
    site.client(NATIONAL, "carl").get(url)
    accesses = site.custody("access")
    assert len(accesses) == 4
    assert accesses[1]["item"] == site.blurred["n1a"].sha256
    assert [e["actor"] for e in accesses] == ["lena", "lena", "lena", "carl"]
    # denials are never deduplicated
    for _ in range(3):
        site.client(ABROAD).get(url)
    assert len(site.custody("denied")) == 3


def test_forwarded_for_only_from_trusted_proxy(site: Site) -> None:
    original = site.originals["n1a"]
    url = f"/api/video/segments/{original.sha256}?copy=original"
    forged = site.client(ABROAD, "lena").get(url, headers={"X-Forwarded-For": NATIONAL})
    assert forged.status_code == 403  # the header is ignored: the client is abroad
    proxied = site.client("10.9.9.9", "lena").get(
        url, headers={"X-Forwarded-For": f"198.18.0.1, {NATIONAL}"}
    )
    assert proxied.status_code == 200
    assert site.custody("access")[-1]["address"] == NATIONAL
    via_proxy_abroad = site.client("10.9.9.9", "lena").get(url, headers={"X-Forwarded-For": ABROAD})
    assert via_proxy_abroad.status_code == 403
    assert site.custody("denied")[-1]["address"] == ABROAD


# --- login, tokens, errors ---------------------------------------------------------------------
def test_login_sessions_and_failures(site: Site) -> None:
    client = site.client(NATIONAL)
    wrong_password = client.post("/login", data={"name": "lena", "password": "nope nope"})
    unknown_user = client.post("/login", data={"name": "nobody", "password": PASSWORD})
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert "wrong user name or password" in wrong_password.text
    assert wrong_password.text.replace("lena", "") == unknown_user.text.replace("nobody", "")
    response = client.post(
        "/login",
        data={"name": "lena", "password": PASSWORD, "next": "/video"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/video"
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    client.cookies.set(SESSION_COOKIE, response.cookies[SESSION_COOKIE])
    assert client.get("/api/video/me").json()["name"] == "lena"
    original = site.originals["n1a"]
    served = client.get(f"/video/segments/{original.sha256}?copy=original")
    assert served.status_code == 200
    client.post("/logout")
    client.cookies.set(SESSION_COOKIE, response.cookies[SESSION_COOKIE])
    assert client.get("/api/video/me").json()["name"] == "anonymous"
    # an open redirect through ?next= is refused
    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        elsewhere = client.post(
            "/login",
            data={"name": "lena", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert elsewhere.headers["location"] == "/video", target


def test_bad_or_revoked_token_is_401(site: Site) -> None:
    client = TestClient(site.app, client=(NATIONAL, 1))
    bad = client.get("/api/video/me", headers={"Authorization": "Bearer pwv_nonsense"})
    assert bad.status_code == 401 and "unknown or revoked" in bad.json()["error"]
    basic = client.get("/api/video/me", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    accounts = AccountStore(site.settings.video_dir)
    [record] = accounts.tokens("lena")
    accounts.revoke_token(record.id)
    url = f"/api/video/segments/{site.originals['n1a'].sha256}"
    revoked = client.get(url, headers={"Authorization": f"Bearer {site.tokens['lena']}"})
    assert revoked.status_code == 401
    assert site.custody("access") == []


def test_unknown_station_and_segment_are_one_line_404(site: Site) -> None:
    client = site.client(NATIONAL)
    api = client.get("/api/video/stations/NOPE-9")
    assert api.status_code == 404
    assert "unknown station 'NOPE-9'" in api.json()["error"]
    assert "known stations: N-1, S-1" in api.json()["error"]
    page = client.get("/video/NOPE-9")
    assert page.status_code == 404 and 'id="error"' in page.text and "Traceback" not in page.text
    segment = client.get("/api/video/segments/" + "ab" * 32)
    assert segment.status_code == 404 and "not a video segment" in segment.json()["error"]


def test_malformed_policy_denies_everything(site: Site) -> None:
    (site.settings.video_dir / "policy.toml").write_text(
        POLICY.replace('"blurred"]', '"blured"]', 1), encoding="utf-8"
    )
    response = site.client(NATIONAL, "lena").get(
        f"/api/video/segments/{site.originals['n1a'].sha256}"
    )
    assert response.status_code == 403
    assert "policy.toml, line" in response.json()["error"]
    [denied] = site.custody("denied")
    assert denied["reason"] == "policy-invalid"
    listing = site.client(NATIONAL).get("/api/video/stations").json()
    assert all(not row["access"]["allowed"] for row in listing["stations"])


def test_station_page_and_timeline(site: Site) -> None:
    page = site.client(NATIONAL, "lena").get("/video/N-1")
    assert page.status_code == 200
    for record in (site.originals["n1a"], site.originals["n1b"]):
        assert f'data-sha256="{record.sha256}"' in page.text
    assert "/static/video.js" in page.text
    assert 'data-copy="original"' in page.text and "You may watch <b>original</b>" in page.text
    listing = site.client(NATIONAL).get("/video")
    assert "blurred copies" in listing.text and "built-in" not in listing.text
    data = site.client(NATIONAL, "lena").get("/api/video/stations/N-1").json()
    [camera] = data["cameras"]
    assert [s["sha256"] for s in camera["segments"]] == [
        site.originals["n1a"].sha256,
        site.originals["n1b"].sha256,
    ]
    assert camera["segments"][0]["url"].endswith("copy=original")
    assert camera["chain_problems"] == []
    public = site.client(NATIONAL).get("/api/video/stations/N-1").json()
    urls = [s["url"] for s in public["cameras"][0]["segments"]]
    assert urls[0].endswith("copy=blurred") and urls[1] is None  # no blurred copy yet
    script = site.client().get("/static/video.js")
    assert script.status_code == 200 and "ended" in script.text
    # listing a station's timeline is not a viewing
    assert site.custody() == []


def test_blurred_copy_by_its_own_hash(site: Site, segment_writer: SegmentWriter) -> None:
    newer = segment_writer.blurred(site.originals["n1a"], content=b"a newer blurred copy ")
    client = site.client(NATIONAL)
    older = client.get(f"/api/video/segments/{site.blurred['n1a'].sha256}")
    assert older.status_code == 200 and older.content == site.data(site.blurred["n1a"])
    best = client.get(f"/api/video/segments/{site.originals['n1a'].sha256}")
    assert best.content == site.data(newer)  # the newest blurred copy of the original
    assert [e["item"] for e in site.custody("access")] == [
        site.blurred["n1a"].sha256,
        newer.sha256,
    ]


def test_no_archive_yet(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "empty", download=False))
    client = TestClient(app, client=(NATIONAL, 1))
    assert client.get("/api/video/stations").json()["stations"] == []
    assert "No video recorded yet" in client.get("/video").text
    missing = client.get("/api/video/segments/" + "ab" * 32)
    assert missing.status_code == 404 and "no evidence archive" in missing.json()["error"]


def test_timeline_shows_gaps_and_events(site: Site, segment_writer: SegmentWriter) -> None:
    from datetime import timedelta

    last = site.originals["n1b"]
    assert last.extra is not None
    resumed = segment_writer.start + timedelta(seconds=60)
    segment_writer.event("outage", "N-1", "cam1", time=segment_writer.start + timedelta(seconds=10))
    segment_writer.event("reconnect", "N-1", "cam1", time=resumed)
    segment_writer.segment("N-1", "cam1", start=resumed)
    data = site.client(NATIONAL).get("/api/video/stations/N-1").json()
    [camera] = data["cameras"]
    [gap] = camera["gaps"]
    assert gap["start"] == last.extra["video"]["end"]
    assert gap["reason"] == "outage, reconnect"
    assert [e["event"] for e in camera["events"]] == ["outage", "reconnect"]
    page = site.client(NATIONAL).get("/video/N-1").text
    assert page.count('class="gap"') == 1 and "gap: outage, reconnect" in page
    assert page.count('class="event"') == 2
    assert page.count('class="seg locked"') == 2  # public: no blurred copy of n1b and the new one
