"""Playback custody: the entries the web app writes before it serves or when it refuses footage.

:class:`PlaybackCustody` writes into the evidence archive's custody log (read back by
:mod:`.audit`):

* ``access`` (reason ``playback``) before a segment's first byte is sent. A repeat of the same
  segment and copy by the same session or token from the same address within
  :data:`REPEAT_WINDOW` seconds (a player's successive range requests) writes nothing new.
* ``denied`` for every refused footage request, whatever refused it: an unknown or revoked
  token (401, reason ``unauthenticated``), the policy (403, reason: the deciding rule) or a
  missing blurred copy (409, reason ``no-blurred-copy``); ``details`` say the role, copy,
  station, camera, range, HTTP status and the decision in words.

Two bounds keep a flood of refused requests from filling the log:

* every value the client chose is bounded: the ``Range`` header is kept up to
  :data:`MAX_RANGE` characters, any other text up to :data:`MAX_TEXT`; a longer value is cut
  and its length and SHA-256 are recorded beside it (``range_length``, ``range_sha256``), so
  the entry still identifies exactly what was sent;
* per client (its address; IPv6 per /64, :func:`.throttle.client_key`) at most
  :data:`DENIALS_PER_WINDOW` denials are written in full per :data:`DENIAL_WINDOW` seconds.
  The rest are counted, not dropped: when the window closes, one ``denied`` entry with reason
  ``rate-limited`` records how many were suppressed (``details.suppressed``), when (``first``,
  ``last``), and counts by reason, HTTP status, station and actor. It is written at the next
  custody entry after the window closes, when the audit is read (:meth:`flush`) or when the
  server stops (:meth:`close`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pollwatch.evidence.archive import EvidenceArchive

from .throttle import client_key

__all__ = [
    "DENIALS_PER_WINDOW",
    "DENIAL_WINDOW",
    "MAX_RANGE",
    "MAX_TEXT",
    "RATE_LIMITED",
    "REPEAT_WINDOW",
    "PlaybackCustody",
    "bounded_details",
]

#: Seconds within which a repeat request (same session, address, segment, copy) is not re-logged.
REPEAT_WINDOW = 60.0
#: Denials written in full per client per window; the rest are summarised.
DENIALS_PER_WINDOW = 20
#: Seconds of a client's denial window.
DENIAL_WINDOW = 60.0
#: Characters of the ``Range`` header kept in an entry.
MAX_RANGE = 64
#: Characters of any other text value kept in an entry.
MAX_TEXT = 512
#: The reason of an entry that summarises suppressed denials.
RATE_LIMITED = "rate-limited"

#: Distinct keys kept per count in a summary (the rest are added up under "others").
_SUMMARY_KEYS = 10
#: Clients with an open denial window at most; past it the oldest window is closed early.
_MAX_CLIENTS = 10_000
#: Repeat-memory entries at most before expired ones are swept.
_MAX_RECENT = 10_000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bounded_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """``details`` with every long text value cut, its length and SHA-256 recorded beside it.

    ``range`` keeps :data:`MAX_RANGE` characters, other text :data:`MAX_TEXT`.
    """
    result: dict[str, Any] = {}
    for name, value in details.items():
        limit = MAX_RANGE if name == "range" else MAX_TEXT
        if isinstance(value, str) and len(value) > limit:
            raw = value.encode("utf-8", "surrogateescape")
            result[name] = value[:limit] + "…"
            result[f"{name}_length"] = len(value)
            result[f"{name}_sha256"] = hashlib.sha256(raw).hexdigest()
        else:
            result[name] = value
    return result


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"


def _top(counts: Counter[str]) -> dict[str, int]:
    top = dict(counts.most_common(_SUMMARY_KEYS))
    rest = sum(counts.values()) - sum(top.values())
    if rest:
        top["others"] = top.get("others", 0) + rest
    return top


@dataclass
class _Window:
    """One client's denial window: how many were written, what was suppressed."""

    opened: float
    address: str
    written: int = 0
    suppressed: int = 0
    first: str = ""
    last: str = ""
    item: str = ""
    reasons: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    stations: Counter[str] = field(default_factory=Counter)
    actors: Counter[str] = field(default_factory=Counter)


class PlaybackCustody:
    """Access and denial entries for one archive, bounded and rate-limited (see the module doc).

    ``clock`` (monotonic seconds) drives the windows; tests pass a fake one.
    """

    def __init__(
        self,
        archive: EvidenceArchive,
        *,
        denials_per_window: int = DENIALS_PER_WINDOW,
        denial_window: float = DENIAL_WINDOW,
        repeat_window: float = REPEAT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.archive = archive
        self.denials_per_window = denials_per_window
        self.denial_window = denial_window
        self.repeat_window = repeat_window
        self.clock = clock
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, ...], float] = {}
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def access(
        self,
        item: str,
        *,
        key: str,
        copy: str,
        actor: str,
        address: str,
        details: Mapping[str, Any],
    ) -> bool:
        """An ``access``/``playback`` entry for ``item``; False when it is a repeat (not written).

        ``key`` names the session or token (``anonymous`` for visitors without either).
        """
        now = self.clock()
        with self._lock:
            self._close_windows(now)
            memory = (key, address, item, copy)
            last = self._recent.get(memory)
            if last is not None and now - last < self.repeat_window:
                return False
            if len(self._recent) > _MAX_RECENT:
                self._recent = {
                    k: t for k, t in self._recent.items() if now - t < self.repeat_window
                }
            self._recent[memory] = now
            self.archive.record_custody(
                "access",
                [item],
                actor=_text(actor),
                address=_text(address),
                reason="playback",
                details=bounded_details(details),
            )
            return True

    def denied(
        self,
        item: str,
        *,
        actor: str,
        address: str,
        reason: str,
        status: int,
        details: Mapping[str, Any],
    ) -> bool:
        """A ``denied`` entry for ``item``; False when the client's window is full (counted)."""
        now = self.clock()
        with self._lock:
            self._close_windows(now)
            client = client_key(address)
            window = self._windows.get(client)
            if window is None:
                window = self._windows[client] = _Window(opened=now, address=address)
                while len(self._windows) > _MAX_CLIENTS:
                    self._summarise(self._windows.popitem(last=False)[1])
            if window.written < self.denials_per_window:
                window.written += 1
                self.archive.record_custody(
                    "denied",
                    [item],
                    actor=_text(actor),
                    address=_text(address),
                    reason=_text(reason),
                    details=bounded_details({**details, "status": status}),
                )
                return True
            stamp = _now()
            window.suppressed += 1
            window.first = window.first or stamp
            window.last = stamp
            window.item = window.item or item
            window.reasons[_text(reason)] += 1
            window.statuses[str(status)] += 1
            window.stations[_text(str(details.get("station", "")))] += 1
            window.actors[_text(actor)] += 1
            return False

    def flush(self) -> int:
        """Write the summaries of the windows that have closed; how many were written."""
        with self._lock:
            return self._close_windows(self.clock())

    def close(self) -> int:
        """Write the summaries of every window, closed or not (the server is stopping)."""
        with self._lock:
            written = 0
            while self._windows:
                written += self._summarise(self._windows.popitem(last=False)[1])
            return written

    def _close_windows(self, now: float) -> int:
        written = 0
        while self._windows:
            window = next(iter(self._windows.values()))
            if now - window.opened < self.denial_window:
                break
            self._windows.popitem(last=False)
            written += self._summarise(window)
        return written

    def _summarise(self, window: _Window) -> int:
        if not window.suppressed:
            return 0
        stations = _top(window.stations)
        actors = _top(window.actors)
        self.archive.record_custody(
            "denied",
            [window.item],
            actor=next(iter(actors)) if len(actors) == 1 else "several",
            address=_text(window.address),
            reason=RATE_LIMITED,
            details={
                "suppressed": window.suppressed,
                "first": window.first,
                "last": window.last,
                "window_seconds": self.denial_window,
                "written_in_full": window.written,
                "station": next(iter(stations)) if len(stations) == 1 else "",
                "stations": stations,
                "reasons": _top(window.reasons),
                "statuses": _top(window.statuses),
                "actors": actors,
            },
        )
        return 1
