"""The playback service without HTTP: who asks, what the policy allows, custody, the bytes.

:class:`pollwatch.video.playback.PlaybackService` is what the web's footage routes call; here
it is driven directly over a real evidence archive (segments written the way the recorder
writes them), the test policy and real accounts. The same rules over HTTP are in
``test_playback.py`` and ``tests/web/test_security.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pollwatch.evidence.archive import EvidenceArchive, ItemRecord
from pollwatch.settings import Settings
from pollwatch.video.accounts import ANONYMOUS, AccountStore
from pollwatch.video.playback import (
    Credentials,
    FootageRequest,
    Origin,
    PlaybackRefused,
    PlaybackService,
    Unauthenticated,
    claimed_identity,
    client_address,
)
from pollwatch.video.policy import Policy

from .conftest import (
    ABROAD,
    NATIONAL,
    PASSWORD,
    POLICY,
    USERS,
    SegmentWriter,
    playback_custody,
)

PROXY = "10.9.9.9"  # the policy's one trusted proxy


@dataclass
class Service:
    playback: PlaybackService
    archive: EvidenceArchive
    originals: dict[str, ItemRecord]
    blurred: ItemRecord
    tokens: dict[str, str]

    def ask(
        self,
        name: str,
        user: str | None = None,
        *,
        copy: Any = None,
        peer: str = NATIONAL,
        range: str = "",
    ) -> FootageRequest:
        record = self.blurred if name == "n1a-blurred" else self.originals[name]
        token = f"Bearer {self.tokens[user]}" if user else None
        return FootageRequest(
            sha256=record.sha256,
            copy=copy,
            credentials=Credentials(authorization=token),
            origin=Origin(peer=peer),
            range=range,
        )

    def custody(self, action: str | None = None) -> list[dict[str, Any]]:
        return playback_custody(self.archive, action)


@pytest.fixture
def service(tmp_path: Path, archive: EvidenceArchive, segment_writer: SegmentWriter) -> Service:
    settings = Settings(home=tmp_path, download=False)
    assert settings.evidence_dir == archive.folder
    settings.video_dir.mkdir(parents=True, exist_ok=True)
    (settings.video_dir / "policy.toml").write_text(POLICY, encoding="utf-8")
    originals = {
        "n1a": segment_writer.segment("N-1", "cam1", content=b"N-1 first " * 50),
        "n1b": segment_writer.segment("N-1", "cam1", content=b"N-1 second " * 50),
        "s1a": segment_writer.segment("S-1", "cam1", content=b"S-1 only " * 50),
    }
    blurred = segment_writer.blurred(originals["n1a"], content=b"N-1 blurred " * 50)
    accounts = AccountStore(settings.video_dir)
    tokens = {}
    for name, role in USERS.items():
        accounts.add_user(name, role, PASSWORD, regions=["north"] if role == "observer" else [])
        tokens[name] = accounts.create_token(name, "test")[1]
    return Service(PlaybackService(settings), archive, originals, blurred, tokens)


# --- who asks ----------------------------------------------------------------------------------
def test_a_token_a_session_or_nobody(service: Service) -> None:
    playback = service.playback
    token = service.tokens["lena"]
    viewer = playback.identify(Credentials(authorization=f"Bearer {token}"))
    assert viewer.user.name == "lena" and viewer.user.role == "lawyer"
    assert viewer.key.startswith("token:") and token not in viewer.key
    cookie = playback.accounts.create_session("olga")
    session = playback.identify(Credentials(session=cookie))
    assert session.user.name == "olga" and session.key.startswith("session:")
    assert cookie not in session.key
    # an unknown session is a visitor without one; nothing at all is anonymous
    assert playback.identify(Credentials(session="stale")).user == ANONYMOUS
    assert playback.identify(Credentials()).key == "anonymous"


@pytest.mark.parametrize(
    ("header", "claimed"),
    [
        ("Bearer pwv_not-a-token", "token:" + hashlib.sha256(b"pwv_not-a-token").hexdigest()[:12]),
        ("Basic bGVuYTpwdw==", "authorization:Basic"),
        ("Bearer ", "authorization:Bearer"),
        ("<script>", "authorization:_script_"),
    ],
)
def test_bad_credentials_are_refused_never_downgraded(
    service: Service, header: str, claimed: str
) -> None:
    with pytest.raises(Unauthenticated) as refused:
        service.playback.identify(Credentials(authorization=header))
    assert refused.value.status == 401 and refused.value.claimed == claimed
    assert claimed_identity(header) == claimed


def test_a_revoked_token_stops_at_once(service: Service) -> None:
    accounts = service.playback.accounts
    (record,) = [t for t in accounts.tokens("ana")]
    accounts.revoke_token(record.id)
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        service.playback.identify(Credentials(authorization=f"Bearer {service.tokens['ana']}"))


# --- from where --------------------------------------------------------------------------------
def test_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    policy = Policy.parse(POLICY)
    forged = Origin(peer=ABROAD, forwarded_for=(NATIONAL,))
    assert client_address(forged, policy) == ABROAD
    assert client_address(Origin(PROXY, (f"{ABROAD}, {NATIONAL}",)), policy) == NATIONAL
    # right to left, past trusted hops; text that is not an address ends the walk
    assert client_address(Origin(PROXY, (ABROAD, PROXY)), policy) == ABROAD
    assert client_address(Origin(PROXY, ("<b>nobody</b>",)), policy) == PROXY
    assert client_address(Origin(PROXY, (NATIONAL,)), None) == PROXY  # no policy: no proxy


# --- what the policy allows, and the custody entries -------------------------------------------
def test_a_lawyer_at_home_gets_the_original_and_one_access_entry(service: Service) -> None:
    playback = service.playback
    grant = playback.authorise(service.ask("n1a", "lena", copy="original", range="bytes=0-9"))
    assert grant.copy == "original" and grant.rule == "court-national"
    assert grant.segment.sha256 == service.originals["n1a"].sha256
    assert grant.address == NATIONAL and grant.viewer.user.name == "lena"
    assert service.custody() == []  # nothing is logged before the viewing is recorded
    assert playback.record_viewing(grant) is True
    (entry,) = service.custody("access")
    assert entry["actor"] == "lena" and entry["address"] == NATIONAL
    assert entry["item"] == grant.segment.sha256
    assert entry["details"] == {
        "role": "lawyer",
        "copy": "original",
        "station": "N-1",
        "camera": "cam1",
        "range": "bytes=0-9",
        "rule": "court-national",
    }
    # the player's next range request within the window is the same viewing
    again = playback.authorise(service.ask("n1a", "lena", copy="original", range="bytes=10-"))
    assert playback.record_viewing(again) is False
    assert len(service.custody("access")) == 1
    with playback.open(grant) as stream:
        assert stream.read() == b"N-1 first " * 50


def test_the_public_gets_the_blurred_copy_and_never_the_original(service: Service) -> None:
    playback = service.playback
    grant = playback.authorise(service.ask("n1a"))
    assert grant.copy == "blurred" and grant.segment.sha256 == service.blurred.sha256
    assert grant.viewer.user == ANONYMOUS and grant.viewer.key == "anonymous"
    with playback.open(grant) as stream:
        assert stream.read().startswith(b"N-1 blurred ")
    with pytest.raises(PlaybackRefused) as refused:
        playback.authorise(service.ask("n1a", copy="original"))
    assert refused.value.status == 403 and refused.value.actor == "anonymous"
    (denied,) = service.custody("denied")
    assert denied["reason"] == "public-blurred" and denied["details"]["status"] == 403
    assert denied["item"] == service.originals["n1a"].sha256


def test_no_blurred_copy_yet_is_a_409_and_nothing_is_served(service: Service) -> None:
    with pytest.raises(PlaybackRefused, match="no blurred copy yet") as refused:
        service.playback.authorise(service.ask("s1a", "ana"))
    assert refused.value.status == 409
    (denied,) = service.custody("denied")
    assert denied["reason"] == "no-blurred-copy" and denied["actor"] == "ana"
    assert denied["details"]["rule"] == "public-blurred"


def test_an_observer_sees_her_region_only(service: Service) -> None:
    playback = service.playback
    assert playback.authorise(service.ask("n1a", "olga")).rule == "observers-assigned"
    with pytest.raises(PlaybackRefused) as refused:
        playback.authorise(service.ask("s1a", "olga"))
    assert refused.value.status == 403
    olga = playback.identify(Credentials(authorization=f"Bearer {service.tokens['olga']}")).user
    assert playback.station_access(olga, "N-1", NATIONAL).allowed
    assert not playback.station_access(olga, "S-1", NATIONAL).allowed


def test_a_forged_forwarded_for_does_not_bring_the_lawyer_home(service: Service) -> None:
    request = service.ask("n1a", "lena", copy="original", peer=ABROAD)
    forged = FootageRequest(
        sha256=request.sha256,
        copy="original",
        credentials=request.credentials,
        origin=Origin(peer=ABROAD, forwarded_for=(NATIONAL,)),
    )
    with pytest.raises(PlaybackRefused) as refused:
        service.playback.authorise(forged)
    assert refused.value.status == 403 and refused.value.address == ABROAD
    (denied,) = service.custody("denied")
    assert denied["address"] == ABROAD and denied["reason"] == "court-abroad-blurred"


def test_an_unknown_token_on_a_known_segment_is_logged_as_unauthenticated(
    service: Service,
) -> None:
    request = service.ask("n1a")
    bad = FootageRequest(
        sha256=request.sha256,
        copy=None,
        credentials=Credentials(authorization="Bearer pwv_guess"),
        origin=Origin(peer=NATIONAL),
        range="bytes=0-",
    )
    with pytest.raises(Unauthenticated) as refused:
        service.playback.authorise(bad)
    assert refused.value.address == NATIONAL
    (denied,) = service.custody("denied")
    assert denied["reason"] == "unauthenticated" and denied["details"]["status"] == 401
    assert denied["actor"] == claimed_identity("Bearer pwv_guess")
    assert denied["details"]["range"] == "bytes=0-"


def test_an_unknown_segment_is_a_404_with_no_entry(service: Service) -> None:
    unknown = FootageRequest(
        sha256="0" * 64, copy=None, credentials=Credentials(), origin=Origin(peer=NATIONAL)
    )
    with pytest.raises(PlaybackRefused) as refused:
        service.playback.authorise(unknown)
    assert refused.value.status == 404 and refused.value.actor == "anonymous"
    with pytest.raises(Unauthenticated):
        service.playback.authorise(
            FootageRequest(
                sha256="0" * 64,
                copy=None,
                credentials=Credentials(authorization="Bearer pwv_guess"),
                origin=Origin(peer=NATIONAL),
            )
        )
    assert service.custody() == []


def test_a_malformed_policy_denies_everything(service: Service) -> None:
    policy = service.playback.settings.video_dir / "policy.toml"
    policy.write_text("version = 1\n[[rules]]\nname = 'x'\neffect = 'maybe'\n", encoding="utf-8")
    with pytest.raises(PlaybackRefused, match="the policy is invalid") as refused:
        service.playback.authorise(service.ask("n1a", "lena", copy="original"))
    assert refused.value.status == 403
    (denied,) = service.custody("denied")
    assert denied["reason"] == "policy-invalid"
    lena = service.playback.identify(Credentials(authorization=f"Bearer {service.tokens['lena']}"))
    assert service.playback.station_access(lena.user, "N-1", NATIONAL).rule == "policy-invalid"


def test_no_archive_yet_is_a_404(tmp_path: Path) -> None:
    playback = PlaybackService(Settings(home=tmp_path / "empty", download=False))
    assert not playback.has_archive()
    with pytest.raises(PlaybackRefused, match="no video") as refused:
        playback.authorise(
            FootageRequest(
                sha256="0" * 64, copy=None, credentials=Credentials(), origin=Origin("127.0.0.1")
            )
        )
    assert refused.value.status == 404 and refused.value.actor == "anonymous"
