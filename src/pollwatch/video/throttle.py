"""Login throttling for the playback site: failed passwords lock an account and an address.

:class:`LoginThrottle` wraps :meth:`.accounts.AccountStore.authenticate`. It counts failed
logins per account name and per client address within :data:`FAILURE_WINDOW` seconds:

* after :data:`ACCOUNT_FAILURES` failures for one name (from anywhere), or
  :data:`ADDRESS_FAILURES` failures from one address (for any names), that name or address is
  locked for :data:`LOCKOUT` seconds, doubled for every further failure once it is unlocked,
  up to :data:`MAX_LOCKOUT` (the back-off of OWASP's Authentication Cheat Sheet);
* while a lock holds, every login for that name or from that address is refused with the
  seconds left (the web answers 429 with ``Retry-After``) *without checking the password*: a
  correct password is refused too until the lock ends, so guessing during a lock learns
  nothing and costs the server no scrypt;
* a successful login clears the name's count, not the address's (an attacker with one
  account of their own cannot reset their address by logging in);
* unknown names are counted like real ones, so a lock says nothing about whether an account
  exists.

IPv6 addresses are counted per /64 (one host usually holds a whole /64). The counts live in
memory, per server process, bounded to :data:`MAX_TRACKED` names and addresses; a restart
clears them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .accounts import AccountStore, User

__all__ = [
    "ACCOUNT_FAILURES",
    "ADDRESS_FAILURES",
    "FAILURE_WINDOW",
    "LOCKOUT",
    "MAX_LOCKOUT",
    "Lockout",
    "LoginOutcome",
    "LoginThrottle",
    "client_key",
]

#: Failed logins for one account name within the window before it is locked.
ACCOUNT_FAILURES = 5
#: Failed logins from one address (any names) within the window before it is locked.
ADDRESS_FAILURES = 20
#: Seconds over which failures are counted.
FAILURE_WINDOW = 15 * 60.0
#: Seconds of the first lock; each further failure past the limit doubles it.
LOCKOUT = 60.0
#: The longest lock, in seconds.
MAX_LOCKOUT = 15 * 60.0
#: Names and addresses tracked at most (the oldest idle ones are forgotten first).
MAX_TRACKED = 100_000

_LONGEST_KEY = 64


def client_key(address: str) -> str:
    """The key a client address is counted under: the address, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return _bounded(address or "unknown")
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _bounded(text: str) -> str:
    if len(text) <= _LONGEST_KEY:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


Scope = Literal["account", "address"]


@dataclass(frozen=True)
class Lockout:
    """A refused login: what is locked (the account name or the address) and for how long."""

    scope: Scope
    retry_after: int

    def message(self) -> str:
        """One line for the login page."""
        what = "this account" if self.scope == "account" else "your address"
        return (
            f"too many failed logins for {what}: try again in {self.retry_after} seconds "
            "(the password is not checked until then)"
        )


@dataclass(frozen=True)
class LoginOutcome:
    """What a login attempt came to: the user when it succeeded, the lock when refused."""

    user: User | None
    lockout: Lockout | None = None


@dataclass
class _Failures:
    times: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    pending: int = 0  # attempts whose password is being checked right now


class LoginThrottle:
    """Failed-login counts and locks per account name and per address (see the module doc)."""

    def __init__(
        self,
        *,
        account_failures: int = ACCOUNT_FAILURES,
        address_failures: int = ADDRESS_FAILURES,
        window: float = FAILURE_WINDOW,
        lockout: float = LOCKOUT,
        max_lockout: float = MAX_LOCKOUT,
        max_tracked: int = MAX_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits: dict[Scope, int] = {"account": account_failures, "address": address_failures}
        self.window = window
        self.lockout = lockout
        self.max_lockout = max_lockout
        self.max_tracked = max_tracked
        self.clock = clock
        self._lock = threading.Lock()
        self._records: OrderedDict[tuple[Scope, str], _Failures] = OrderedDict()

    def authenticate(
        self, accounts: AccountStore, name: str, password: str, address: str
    ) -> LoginOutcome:
        """Check the locks, then the password; count a failure or clear the name's count.

        An attempt whose password is being checked counts against the limit until it is
        decided, so parallel guesses cannot slip past the limit while the first ones run.
        """
        keys = self._keys(name, address)
        with self._lock:
            refused = self._refusal(keys, self.clock())
            if refused is not None:
                return LoginOutcome(None, refused)
            for key in keys:
                self._record(key).pending += 1
        user: User | None = None
        try:
            user = accounts.authenticate(name, password)
        finally:
            now = self.clock()
            with self._lock:
                for key in keys:
                    record = self._record(key)
                    record.pending = max(0, record.pending - 1)
                    if user is None:
                        self._fail(key, record, now)
                if user is not None:
                    account = self._records[keys[0]]
                    account.times.clear()
                    account.locked_until = 0.0
                self._forget_oldest()
        return LoginOutcome(user)

    def check(self, name: str, address: str) -> Lockout | None:
        """The lock that would refuse a login for ``name`` from ``address`` now, if any."""
        with self._lock:
            return self._refusal(self._keys(name, address), self.clock())

    def _keys(self, name: str, address: str) -> tuple[tuple[Scope, str], tuple[Scope, str]]:
        return ("account", _bounded(name)), ("address", client_key(address))

    def _record(self, key: tuple[Scope, str]) -> _Failures:
        record = self._records.pop(key, None) or _Failures()
        self._records[key] = record  # most recently used last
        return record

    def _refusal(self, keys: tuple[tuple[Scope, str], ...], now: float) -> Lockout | None:
        locks = []
        for key in keys:
            record = self._records.get(key)
            if record is None:
                continue
            while record.times and now - record.times[0] >= self.window:
                record.times.popleft()
            if record.locked_until > now:
                locks.append(Lockout(key[0], max(1, math.ceil(record.locked_until - now))))
            elif record.pending and len(record.times) + record.pending >= self.limits[key[0]]:
                locks.append(Lockout(key[0], 1))  # the attempt in flight may lock it
        return max(locks, key=lambda lock: lock.retry_after) if locks else None

    def _fail(self, key: tuple[Scope, str], record: _Failures, now: float) -> None:
        while record.times and now - record.times[0] >= self.window:
            record.times.popleft()
        record.times.append(now)
        over = len(record.times) - self.limits[key[0]]
        if over >= 0:
            seconds = min(self.max_lockout, self.lockout * 2.0 ** min(over, 32))
            record.locked_until = max(record.locked_until, now + seconds)

    def _forget_oldest(self) -> None:
        while len(self._records) > self.max_tracked:
            self._records.popitem(last=False)
