"""End-to-end playback in a real headless browser (Debian chromium via Playwright).

An evidence archive with two real 2 s H.264 MP4 segments of one camera (made by ffmpeg), the
default playback policy, one lawyer account, and the app served by uvicorn on a loopback port.
The browser logs in, opens the station page, plays the first segment (the player must advance
and move on to the next segment by itself), and the audit page then shows that viewing. Skips
without ffmpeg or chromium; needs no data mirror.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.settings import Settings
from pollwatch.video.accounts import AccountStore

from .conftest import archive_segment, serve_on_loopback

pytestmark = [pytest.mark.network]

STATION = "N-1"
PASSWORD = "correct horse battery"


def _clip(path: Path, offset: int) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size=320x240:rate=10,trim=start={offset}", "-t", "2", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10", "-movflags", "+faststart",
         str(path)],
        check=True,
        timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def video_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[str]]:
    """A pollwatch home with an archive of two chained segments and a lawyer account."""
    home = tmp_path_factory.mktemp("video-home")
    settings = Settings(home=home, download=False)
    archive = EvidenceArchive.init(settings.evidence_dir, "test/video-e2e")
    start = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    shas: list[str] = []
    for number in range(2):
        path = home / f"segment-{number}.mp4"
        _clip(path, offset=number * 2)
        begin = start + timedelta(seconds=2 * number)
        shas.append(
            archive_segment(archive, path, STATION, number, begin, shas[-1] if shas else None)
        )
    archive.close()
    AccountStore(settings.video_dir).add_user("lena", "lawyer", PASSWORD)
    return settings, shas


@pytest.fixture(scope="module")
def base_url(video_home: tuple[Settings, list[str]]) -> Iterator[str]:
    """This module's app on 127.0.0.1 (overrides the election store's server of conftest)."""
    from pollwatch.web.app import create_app

    with serve_on_loopback(create_app(video_home[0]), probe="/login") as url:
        yield url


def test_login_play_and_audit(
    page: object, video_home: tuple[Settings, list[str]], screenshots: Path
) -> None:
    from typing import Any

    browser_page: Any = page
    settings, shas = video_home
    browser_page.goto(f"/login?next=/video/{STATION}")
    browser_page.fill("#login-name", "lena")
    browser_page.fill("#login-password", PASSWORD)
    browser_page.click("#login-submit")
    browser_page.wait_for_url(f"**/video/{STATION}")
    assert browser_page.inner_text("#whoami-name") == "lena"
    assert browser_page.get_attribute("#access", "data-copy") == "original"
    assert browser_page.locator(".timeline .seg").count() == 2

    browser_page.click(f'.timeline .seg[data-sha256="{shas[0]}"]')
    browser_page.wait_for_function(
        "() => { const v = document.getElementById('player');"
        " return v.readyState >= 2 && v.currentTime > 0.2; }"
    )
    # the player moves on to the camera's next segment when the first ends
    browser_page.wait_for_function(
        f"() => document.getElementById('player').dataset.sha256 === '{shas[1]}'"
        " && document.getElementById('player').currentTime > 0.1"
    )
    browser_page.screenshot(path=str(screenshots / "video-station.png"), full_page=True)

    browser_page.goto(f"/audit/watched?station={STATION}")
    rows = browser_page.locator("#audit-rows tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    titles = browser_page.eval_on_selector_all(
        "#audit-rows code", "els => els.map(e => e.getAttribute('title'))"
    )
    assert set(titles) == set(shas)  # both segments were served, each logged (once per 60 s)
    assert len(texts) == 2
    assert all(
        "lena" in t and "lawyer" in t and "127.0.0.1" in t and "original" in t for t in texts
    )
    with EvidenceArchive(settings.evidence_dir) as archive:
        logged = [
            e["item"]
            for _, e in archive.entries()
            if e["kind"] == "custody" and e.get("reason") == "playback"
        ]
    assert logged == shas
