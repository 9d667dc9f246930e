"""Audit views: who watched a station, viewings by origin and role, denials; from custody only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.video.audit import AuditLog, origin_network

from .conftest import ABROAD, NATIONAL, SegmentWriter, Site


def _watch(site: Site) -> None:
    """A mix of viewings and denials from several users and addresses."""
    n1a = site.originals["n1a"].sha256
    s1a = site.originals["s1a"].sha256
    site.client(NATIONAL, "lena").get(f"/api/video/segments/{n1a}?copy=original")
    site.client("192.0.2.99", "carl").get(f"/api/video/segments/{n1a}")
    site.client("192.0.2.10").get(f"/video/segments/{n1a}")  # anonymous, blurred
    site.client("2001:db8:1:2::5", "olga").get(f"/api/video/segments/{n1a}")
    site.client(NATIONAL, "ana").get(f"/api/video/segments/{s1a}")
    site.client(ABROAD).get(f"/api/video/segments/{n1a}")  # denied: foreign-denied
    site.client(NATIONAL, "olga").get(f"/api/video/segments/{s1a}")  # denied: elsewhere


def _expected(site: Site, action: str, station: str | None = None) -> list[tuple[str, ...]]:
    """The custody entries, read straight from the log, as (user, address, item, copy)."""
    return [
        (e["actor"], e["address"], e["item"], e["details"]["copy"])
        for e in site.custody(action)
        if station is None or e["details"]["station"] == station
    ]


def test_audit_api_shows_exactly_the_logged_viewings(site: Site) -> None:
    _watch(site)
    auditor = site.client(NATIONAL, "carl")
    watched = auditor.get("/api/audit/watched?station=N-1").json()["rows"]
    assert [(r["user"], r["address"], r["segment"], r["copy"]) for r in watched] == _expected(
        site, "access", "N-1"
    )
    assert [r["user"] for r in watched] == ["lena", "carl", "anonymous", "olga"]
    assert [r["role"] for r in watched] == ["lawyer", "commission", "public", "observer"]
    assert [r["copy"] for r in watched] == ["original", "original", "blurred", "blurred"]
    denied = auditor.get("/api/audit/denied").json()["rows"]
    assert [(r["user"], r["address"], r["reason"]) for r in denied] == [
        ("anonymous", ABROAD, "foreign-denied"),
        ("olga", NATIONAL, "observers-elsewhere"),
    ]
    assert len(denied) == len(site.custody("denied"))
    origins = auditor.get("/api/audit/origins").json()["rows"]
    groups = {(r["network"], r["role"]): r["viewings"] for r in origins}
    # named networks of the policy win over prefixes
    assert groups == {
        ("national", "lawyer"): 1,
        ("national", "commission"): 1,
        ("national", "public"): 1,
        ("national", "observer"): 1,
        ("national", "analyst"): 1,
    }
    assert sum(groups.values()) == len(site.custody("access"))


def test_audit_csv_and_html(site: Site) -> None:
    _watch(site)
    auditor = site.client(NATIONAL, "lena")
    response = auditor.get("/api/audit/watched?station=N-1&format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["user"], r["address"], r["segment"], r["copy"]) for r in rows] == _expected(
        site, "access", "N-1"
    )
    page = auditor.get("/audit/watched?station=N-1")
    assert page.status_code == 200
    for user, address, item, _ in _expected(site, "access", "N-1"):
        assert f'title="{item}"' in page.text and address in page.text and user in page.text
    assert page.text.count("<tr>") == len(_expected(site, "access", "N-1")) + 1
    assert 'id="audit-csv"' in page.text
    denied_page = auditor.get("/audit/denied")
    assert "observers-elsewhere" in denied_page.text and ABROAD in denied_page.text


def test_audit_is_for_admin_commission_and_lawyer_only(site: Site) -> None:
    _watch(site)
    anonymous = site.client(NATIONAL)
    assert anonymous.get("/api/audit/denied").status_code == 401
    redirect = anonymous.get("/audit/denied", follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/login")
    for user in ("ana", "olga"):
        refused = site.client(NATIONAL, user).get("/api/audit/watched?station=N-1")
        assert refused.status_code == 403
        assert "audit views are for the roles" in refused.json()["error"]
    for user in ("root", "carl", "lena"):
        assert site.client(NATIONAL, user).get("/api/audit/denied").status_code == 200
    missing = site.client(NATIONAL, "root").get("/api/audit/watched")
    assert missing.status_code == 422 and "station" in missing.json()["error"]


def test_time_filters(site: Site) -> None:
    _watch(site)
    auditor = site.client(NATIONAL, "root")
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    everything = auditor.get(f"/api/audit/watched?station=N-1&start={earlier}").json()["rows"]
    assert len(everything) == 4
    nothing = auditor.get(f"/api/audit/watched?station=N-1&start={later}").json()["rows"]
    assert nothing == []
    before = auditor.get(f"/api/audit/denied?end={earlier}").json()["rows"]
    assert before == []
    bad = auditor.get("/api/audit/denied?start=yesterday")
    assert bad.status_code == 400 and "not an ISO 8601 time" in bad.json()["error"]


def test_origin_grouping_by_prefix(archive: EvidenceArchive, segment_writer: SegmentWriter) -> None:
    record = segment_writer.segment("N-1", "cam1")
    viewers = [
        ("a", "198.51.100.7", "public"),
        ("b", "198.51.100.200", "public"),
        ("c", "198.51.101.1", "public"),
        ("d", "2001:db8:aa:1::1", "analyst"),
        ("e", "2001:db8:aa:ffff::9", "analyst"),
        ("f", "local:host", "admin"),
    ]
    for actor, address, role in viewers:
        archive.record_custody(
            "access",
            [record.sha256],
            actor=actor,
            address=address,
            reason="playback",
            details={"role": role, "copy": "blurred", "station": "N-1", "camera": "cam1"},
        )
    # another custody entry (an export) is not a viewing
    archive.record_custody("export", [record.sha256], actor="x", address="1.2.3.4", reason="court")
    rows = AuditLog(archive).by_origin()
    groups = {(r.network, r.role): (r.viewings, r.users) for r in rows}
    assert groups == {
        ("198.51.100.0/24", "public"): (2, 2),
        ("198.51.101.0/24", "public"): (1, 1),
        ("2001:db8:aa::/48", "analyst"): (2, 2),
        ("local:host", "admin"): (1, 1),
    }
    assert origin_network("198.51.100.7", lambda a: "office") == "office"
    assert len(AuditLog(archive).who_watched("N-1")) == 6


@pytest.mark.parametrize("command", [["watched", "--station", "N-1"], ["origins"], ["denied"]])
def test_cli_audit_csv(
    site: Site,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pollwatch.cli import main

    _watch(site)
    monkeypatch.setenv("POLLWATCH_HOME", str(site.settings.home))
    monkeypatch.delenv("POLLWATCH_CONFIG", raising=False)
    capsys.readouterr()
    assert main(["video", "audit", *command, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    if command[0] == "watched":
        assert [(r["user"], r["address"], r["segment"], r["copy"]) for r in rows] == _expected(
            site, "access", "N-1"
        )
    elif command[0] == "denied":
        assert [r["reason"] for r in rows] == ["foreign-denied", "observers-elsewhere"]
    else:
        assert sum(int(r["viewings"]) for r in rows) == len(site.custody("access"))
