"""Local accounts for regulated playback: users with roles, web sessions and API tokens.

Everything lives in one SQLite file, ``<home>/video/accounts.sqlite`` (mode 0600, its folder
0700); every change is one transaction, so a crash never leaves half a change and the web server
and the command line can use the file at the same time.

* Passwords are hashed with scrypt (RFC 7914) through :func:`hashlib.scrypt`: n = 2**14, r = 8,
  p = 1, a 16-byte random salt per password, a 32-byte key, compared in constant time
  (:func:`hmac.compare_digest`). The stored form is ``scrypt$n$r$p$<salt>$<key>`` (base64), so
  the parameters can be raised later without invalidating old hashes.
* A failed login costs the same whether or not the user exists (a dummy hash is checked), and
  says only "wrong user name or password"; the web app throttles failed logins per account
  name and per address (:mod:`.throttle`).
* Web sessions are 32 random bytes (:func:`secrets.token_urlsafe`) handed to the browser as a
  cookie; only their SHA-256 is stored, with an expiry (default 8 hours).
* API tokens are 32 random bytes too, shown once when created, stored as their SHA-256 and
  revocable by their short id (the first 12 hex digits of that hash).

Roles (:data:`ROLES`): ``public`` (what anonymous visitors are), ``observer`` (accredited
observers; assigned regions and stations), ``analyst``, ``lawyer`` (court), ``commission`` and
``admin`` (manages accounts; what it may watch is up to the policy, see :mod:`.policy`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pollwatch.errors import VideoError

from .folders import private_folder

__all__ = [
    "ANONYMOUS",
    "ROLES",
    "AccountStore",
    "ApiToken",
    "User",
    "check_role",
    "check_user_name",
    "hash_password",
    "verify_password",
]

#: Every role a user can hold; anonymous visitors are ``public``.
ROLES = ("public", "observer", "analyst", "lawyer", "commission", "admin")

#: The name of the store file inside ``Settings.video_dir``.
ACCOUNTS_FILE = "accounts.sqlite"

#: scrypt parameters for new hashes (RFC 7914; n = 2**14, r = 8 needs 16 MiB per check).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD_LENGTH = 8

#: How long a web session lasts unless told otherwise.
SESSION_LIFETIME = timedelta(hours=8)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_RESERVED = {"anonymous"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    regions TEXT NOT NULL,
    stations TEXT NOT NULL,
    password TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created TEXT NOT NULL,
    revoked TEXT
);
"""


@dataclass(frozen=True)
class User:
    """An account (or the anonymous visitor): name, role and the observer's assignments."""

    name: str
    role: str
    regions: tuple[str, ...] = ()
    stations: tuple[str, ...] = ()
    created: str = ""

    @property
    def anonymous(self) -> bool:
        return self.name == "anonymous"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role,
            "regions": list(self.regions),
            "stations": list(self.stations),
            "created": self.created,
        }


#: Who a request without a session or token is: role ``public``.
ANONYMOUS = User(name="anonymous", role="public")


@dataclass(frozen=True)
class ApiToken:
    """An API token's record (never the token itself): id, owner, label, when, revoked when."""

    id: str
    user: str
    label: str
    created: str
    revoked: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _secret_hash(secret: str) -> str:
    """SHA-256 of a session or API token: they are 256-bit random, so no slow hash is needed."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form of a password: ``scrypt$n$r$p$<salt b64>$<key b64>`` (RFC 7914)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=KEY_BYTES,
        maxmem=64 * 1024 * 1024,
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a stored :func:`hash_password` value (constant-time compare).

    A malformed stored value never matches.
    """
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash of a password nobody knows: checked when the user does not exist, so that a failed
# login takes as long for an unknown name as for a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_user_name(name: str) -> str:
    """A valid user name, or VideoError saying what is allowed."""
    if not _NAME.match(name) or name.lower() in _RESERVED:
        raise VideoError(
            f"invalid user name {name!r}",
            hint="1-64 characters: letters, digits, '.', '_', '@', '-', starting with a letter "
            "or digit; 'anonymous' is reserved",
        )
    return name


def check_role(role: str) -> str:
    """A known role, or VideoError listing them."""
    if role not in ROLES:
        raise VideoError(f"unknown role {role!r}", hint=f"one of {', '.join(ROLES)}")
    return role


class AccountStore:
    """Users, sessions and API tokens in ``<folder>/accounts.sqlite`` (see the module doc)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / ACCOUNTS_FILE
        try:
            private_folder(self.folder, tighten=True)
            if not self.path.exists():
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
                os.close(descriptor)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise VideoError(
                f"cannot create the account store {self.path} ({exc.strerror})",
                hint="check that the pollwatch home is writable",
            ) from None
        self._lock = threading.Lock()
        try:
            db = sqlite3.connect(self.path, timeout=10)
            try:
                db.executescript(_SCHEMA)  # executescript runs its own transaction
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise VideoError(
                f"the account store {self.path} cannot be used ({exc})",
                hint="check its permissions; restore it from a backup if it is damaged",
            ) from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back on an error."""
        with self._lock:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            try:
                db.execute("PRAGMA foreign_keys = ON")
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise VideoError(
                    f"the account store {self.path} cannot be used ({exc})",
                    hint="check its permissions; restore it from a backup if it is damaged",
                ) from None
            finally:
                db.close()

    # --- users ---------------------------------------------------------------------------
    def add_user(
        self,
        name: str,
        role: str,
        password: str,
        *,
        regions: Sequence[str] = (),
        stations: Sequence[str] = (),
    ) -> User:
        """Create an account; refuses an existing name, an unknown role or a short password."""
        check_user_name(name)
        check_role(role)
        _check_password(password)
        if (regions or stations) and role != "observer":
            raise VideoError(
                f"only observers have assigned regions or stations (role {role!r})",
                hint="drop --region/--station, or use --role observer",
            )
        created = _stamp(_now())
        stored = hash_password(password)
        with self._connect() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise VideoError(
                    f"user {name!r} already exists",
                    hint="remove it first ('pollwatch video user remove') or pick another name",
                )
            db.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
                (
                    name,
                    role,
                    json.dumps(list(regions)),
                    json.dumps(list(stations)),
                    stored,
                    created,
                ),
            )
        return User(name, role, tuple(regions), tuple(stations), created)

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password and end their web sessions."""
        _check_password(password)
        stored = hash_password(password)
        with self._connect() as db:
            if not db.execute(
                "UPDATE users SET password = ? WHERE name = ?", (stored, name)
            ).rowcount:
                raise _unknown_user(name)
            db.execute("DELETE FROM sessions WHERE user = ?", (name,))

    def remove_user(self, name: str) -> None:
        """Delete an account with its sessions and tokens."""
        with self._connect() as db:
            db.execute("DELETE FROM sessions WHERE user = ?", (name,))
            db.execute("DELETE FROM tokens WHERE user = ?", (name,))
            if not db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount:
                raise _unknown_user(name)

    def users(self) -> list[User]:
        """Every account, by name."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT name, role, regions, stations, created FROM users ORDER BY name"
            ).fetchall()
        return [_user(row) for row in rows]

    def user(self, name: str) -> User:
        """One account; VideoError when there is none of that name."""
        with self._connect() as db:
            row = db.execute(
                "SELECT name, role, regions, stations, created FROM users WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise _unknown_user(name)
        return _user(row)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password is right, else None (same cost for an unknown name)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT name, role, regions, stations, created, password FROM users WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            verify_password(password, _DUMMY_HASH)
            return None
        return _user(row[:5]) if verify_password(password, row[5]) else None

    # --- web sessions --------------------------------------------------------------------
    def create_session(self, name: str, lifetime: timedelta = SESSION_LIFETIME) -> str:
        """A new session for a user: the cookie value (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = _now()
        with self._connect() as db:
            if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise _unknown_user(name)
            db.execute("DELETE FROM sessions WHERE expires <= ?", (_stamp(now),))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (_secret_hash(token), name, _stamp(now), _stamp(now + lifetime)),
            )
        return token

    def session_user(self, token: str) -> User | None:
        """The user of a live session cookie, or None (unknown or expired)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT u.name, u.role, u.regions, u.stations, u.created FROM sessions s "
                "JOIN users u ON u.name = s.user WHERE s.token_hash = ? AND s.expires > ?",
                (_secret_hash(token), _stamp(_now())),
            ).fetchone()
        return None if row is None else _user(row)

    def end_session(self, token: str) -> None:
        """Log a session out (nothing happens for an unknown one)."""
        with self._connect() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_secret_hash(token),))

    # --- API tokens ----------------------------------------------------------------------
    def create_token(self, name: str, label: str = "") -> tuple[ApiToken, str]:
        """A new bearer token for a user: its record and the token, which is never shown again."""
        token = "pwv_" + secrets.token_urlsafe(32)
        digest = _secret_hash(token)
        record = ApiToken(
            id=digest[:12], user=name, label=label, created=_stamp(_now()), revoked=None
        )
        with self._connect() as db:
            if not db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise _unknown_user(name)
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
                (record.id, digest, name, label, record.created),
            )
        return record, token

    def token_user(self, token: str) -> User | None:
        """The user of a live (not revoked) API token, or None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT u.name, u.role, u.regions, u.stations, u.created FROM tokens t "
                "JOIN users u ON u.name = t.user WHERE t.token_hash = ? AND t.revoked IS NULL",
                (_secret_hash(token),),
            ).fetchone()
        return None if row is None else _user(row)

    def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke a token by its id (as ``token list`` shows it); it stops working at once."""
        with self._connect() as db:
            row = db.execute(
                "SELECT id, user, label, created, revoked FROM tokens WHERE id = ?", (token_id,)
            ).fetchone()
            if row is None:
                raise VideoError(
                    f"no API token with id {token_id!r}",
                    hint="see the ids with 'pollwatch video token list'",
                )
            revoked = row[4] or _stamp(_now())
            db.execute("UPDATE tokens SET revoked = ? WHERE id = ?", (revoked, token_id))
        return ApiToken(row[0], row[1], row[2], row[3], revoked)

    def tokens(self, name: str | None = None) -> list[ApiToken]:
        """Every API token's record (of one user when named), oldest first."""
        query = "SELECT id, user, label, created, revoked FROM tokens"
        arguments: tuple[str, ...] = ()
        if name is not None:
            query += " WHERE user = ?"
            arguments = (name,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created, id", arguments).fetchall()
        return [ApiToken(*row) for row in rows]


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise VideoError(
            f"the password is too short ({len(password)} characters)",
            hint=f"use at least {MIN_PASSWORD_LENGTH} characters",
        )


def _unknown_user(name: str) -> VideoError:
    return VideoError(f"no user {name!r}", hint="see the accounts with 'pollwatch video user list'")


def _user(row: Sequence[str]) -> User:
    return User(
        name=row[0],
        role=row[1],
        regions=tuple(json.loads(row[2])),
        stations=tuple(json.loads(row[3])),
        created=row[4],
    )
