"""Accounts: scrypt password hashes, users and roles, web sessions, API tokens, the CLI."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from pollwatch.cli import main
from pollwatch.errors import VideoError
from pollwatch.video.accounts import (
    ROLES,
    AccountStore,
    hash_password,
    verify_password,
)

PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> AccountStore:
    return AccountStore(tmp_path / "video")


def test_hash_is_scrypt_rfc7914_with_random_salt() -> None:
    stored = hash_password(PASSWORD)
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    # The key is exactly hashlib.scrypt over the stored salt: nothing home-made.
    import base64

    raw_salt = base64.b64decode(salt)
    assert len(raw_salt) == 16
    expected = hashlib.scrypt(
        PASSWORD.encode(), salt=raw_salt, n=2**14, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024
    )
    assert base64.b64decode(key) == expected
    assert hash_password(PASSWORD) != stored  # a fresh salt each time
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "x", stored)
    assert not verify_password(PASSWORD, "scrypt$garbage")
    assert not verify_password(PASSWORD, stored.replace("scrypt", "md5", 1))


def test_known_vector_rfc7914() -> None:
    # RFC 7914 section 12, second vector: P="password", S="NaCl", N=1024, r=8, p=16, dkLen=64.
    import base64

    key = bytes.fromhex(
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
        "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
    )
    stored = (
        f"scrypt$1024$8$16${base64.b64encode(b'NaCl').decode()}${base64.b64encode(key).decode()}"
    )
    assert verify_password("password", stored)
    assert not verify_password("Password", stored)


def test_store_file_is_private_and_holds_no_secret(store: AccountStore) -> None:
    store.add_user("alice", "lawyer", PASSWORD)
    session = store.create_session("alice")
    _, token = store.create_token("alice", "script")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    raw = store.path.read_bytes()
    for secret in (PASSWORD, session, token):
        assert secret.encode() not in raw
    with sqlite3.connect(store.path) as db:
        hashes = {row[0] for row in db.execute("SELECT token_hash FROM sessions")}
    assert hashes == {hashlib.sha256(session.encode()).hexdigest()}


def test_users_roles_and_assignments(store: AccountStore) -> None:
    for number, role in enumerate(ROLES):
        if role != "observer":
            store.add_user(f"user{number}", role, PASSWORD)
    observer = store.add_user("obs", "observer", PASSWORD, regions=["north"], stations=["S9"])
    assert observer.regions == ("north",) and observer.stations == ("S9",)
    assert store.user("obs") == observer
    assert sorted(u.role for u in store.users()) == sorted(ROLES)
    with pytest.raises(VideoError, match="already exists"):
        store.add_user("obs", "observer", PASSWORD)
    with pytest.raises(VideoError, match="unknown role 'king'"):
        store.add_user("bob", "king", PASSWORD)
    with pytest.raises(VideoError, match="too short"):
        store.add_user("bob", "analyst", "short")
    with pytest.raises(VideoError, match="invalid user name"):
        store.add_user("anonymous", "analyst", PASSWORD)
    with pytest.raises(VideoError, match="only observers"):
        store.add_user("bob", "analyst", PASSWORD, regions=["north"])
    store.remove_user("obs")
    with pytest.raises(VideoError, match="no user 'obs'"):
        store.user("obs")


def test_authentication_does_not_reveal_users(store: AccountStore) -> None:
    store.add_user("alice", "lawyer", PASSWORD)
    user = store.authenticate("alice", PASSWORD)
    assert user is not None and user.role == "lawyer"
    assert store.authenticate("alice", "wrong password") is None
    assert store.authenticate("nobody", PASSWORD) is None


def test_sessions_expire_and_end(store: AccountStore) -> None:
    store.add_user("alice", "lawyer", PASSWORD)
    token = store.create_session("alice")
    assert len(token) >= 43  # 32 random bytes, base64url
    user = store.session_user(token)
    assert user is not None and user.name == "alice"
    assert store.session_user(token + "x") is None
    store.end_session(token)
    assert store.session_user(token) is None
    expired = store.create_session("alice", lifetime=timedelta(seconds=-1))
    assert store.session_user(expired) is None
    live = store.create_session("alice")
    store.set_password("alice", "another password")
    assert store.session_user(live) is None  # a new password ends the sessions
    assert store.authenticate("alice", "another password") is not None


def test_tokens_are_revocable_and_die_with_the_user(store: AccountStore) -> None:
    store.add_user("alice", "commission", PASSWORD)
    record, token = store.create_token("alice", "bot")
    assert record.id == hashlib.sha256(token.encode()).hexdigest()[:12]
    user = store.token_user(token)
    assert user is not None and user.role == "commission"
    assert store.revoke_token(record.id).revoked is not None
    assert store.token_user(token) is None
    with pytest.raises(VideoError, match="no API token"):
        store.revoke_token("000000000000")
    _, second = store.create_token("alice")
    store.remove_user("alice")
    assert store.token_user(second) is None
    assert store.tokens() == []


def test_cli_users_and_tokens(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code = main(
        [
            "video",
            "user",
            "add",
            "obs",
            "--role",
            "observer",
            "--region",
            "north",
            "--password-stdin",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert main(["video", "user", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"regions": [\n      "north"' in out or '"north"' in out
    assert main(["video", "token", "create", "obs", "--label", "ci"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    store = AccountStore(home / "video")
    user = store.token_user(token)
    assert user is not None and user.name == "obs"
    [record] = store.tokens()
    assert main(["video", "token", "revoke", record.id]) == 0
    assert store.token_user(token) is None
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["video", "user", "add", "bob", "--role", "king", "--password-stdin"]) == 2
    err = capsys.readouterr().err
    assert "unknown role 'king'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main(["video", "user", "remove", "obs"]) == 0
    assert main(["video", "user", "remove", "obs"]) == 2
