"""Audit views of playback, built only from the custody log of the evidence archive.

A *viewing* is a custody entry with action ``access`` and reason ``playback`` (written by the
web app before it serves a segment's bytes); a *denial* is a custody entry with action
``denied`` (reason: the policy rule that denied). Both carry ``actor``, ``address``, ``time``,
``item`` and ``details`` (role, copy, station, camera, range). Since every entry sits in the
signed Merkle log, the answers below are evidence, not a separate database that could drift.

Three views:

* :meth:`AuditLog.who_watched`: the viewings of one station (user, role, address, time,
  segment, copy);
* :meth:`AuditLog.by_origin`: viewings counted by origin network and role; an address is
  grouped under the policy's first named network that holds it, else its /24 (IPv4) or /48
  (IPv6) prefix; addresses that are not IP addresses (``local:<host>``) stay as they are;
* :meth:`AuditLog.denied`: the denials (who, from where, which rule). A row with reason
  ``rate-limited`` stands for the denials of one client that were counted but not written in
  full (:mod:`.custody`): ``suppressed`` says how many; it matches a station filter when any
  of them was for that station.

Who may see them: :data:`AUDIT_ROLES`. Each takes an optional time window ``[start, end)``
over the entry's ``time``.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pollwatch.evidence.archive import EvidenceArchive

from .custody import RATE_LIMITED

__all__ = ["AUDIT_ROLES", "AuditLog", "OriginRow", "Viewing", "origin_network"]

#: Roles that may see the audit views: the admin (runs the system and answers for it), the
#: commission (oversees the election) and lawyers (court proceedings need the record).
AUDIT_ROLES = ("admin", "commission", "lawyer")


@dataclass(frozen=True)
class Viewing:
    """One playback custody entry: a served segment (``access``) or a denial (``denied``)."""

    index: int
    action: str
    time: str
    actor: str
    role: str
    address: str
    segment: str
    station: str
    camera: str
    copy: str
    range: str
    reason: str
    #: Denials this row stands for beyond itself (a ``rate-limited`` summary), else 0.
    suppressed: int = 0
    #: The stations a summary row covers (empty for a single entry: see ``station``).
    stations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "action": self.action,
            "time": self.time,
            "user": self.actor,
            "role": self.role,
            "address": self.address,
            "segment": self.segment,
            "station": self.station,
            "camera": self.camera,
            "copy": self.copy,
            "range": self.range,
            "reason": self.reason,
            "suppressed": self.suppressed,
        }


@dataclass(frozen=True)
class OriginRow:
    """Viewings from one origin network by one role: how many, by how many users, of what."""

    network: str
    role: str
    viewings: int
    users: int
    segments: int
    stations: int
    first: str
    last: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "role": self.role,
            "viewings": self.viewings,
            "users": self.users,
            "segments": self.segments,
            "stations": self.stations,
            "first": self.first,
            "last": self.last,
        }


def origin_network(address: str, named: Callable[[str], str | None] | None = None) -> str:
    """The group an address is counted under: a named network, else its /24 or /48 prefix."""
    if named is not None:
        name = named(address)
        if name is not None:
            return name
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address or "unknown"
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def _moment(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AuditLog:
    """The playback custody entries of an archive, read incrementally (new entries only)."""

    def __init__(self, archive: EvidenceArchive) -> None:
        self.archive = archive
        self._lock = threading.Lock()
        self._next = 0
        self._entries: list[Viewing] = []

    def refresh(self) -> None:
        """Read the entries appended since the last call (by this process or another)."""
        with self._lock:
            for index, entry in self.archive.entries(self._next):
                self._next = index + 1
                if entry.get("kind") != "custody":
                    continue
                action = entry.get("action")
                reason = str(entry.get("reason", ""))
                if not (action == "denied" or (action == "access" and reason == "playback")):
                    continue
                details = entry.get("details") or {}
                summarised = details.get("stations") if reason == RATE_LIMITED else None
                self._entries.append(
                    Viewing(
                        index=index,
                        action=str(action),
                        time=str(entry.get("time", "")),
                        actor=str(entry.get("actor", "")),
                        role=str(details.get("role", "")),
                        address=str(entry.get("address", "")),
                        segment=str(entry.get("item", "")),
                        station=str(details.get("station", "")),
                        camera=str(details.get("camera", "")),
                        copy=str(details.get("copy", "")),
                        range=str(details.get("range", "")),
                        reason=reason,
                        suppressed=int(details.get("suppressed", 0) or 0),
                        stations=tuple(summarised) if isinstance(summarised, dict) else (),
                    )
                )

    def entries(
        self,
        *,
        action: str | None = None,
        station: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Viewing]:
        """Playback custody entries in log order, filtered by action, station and [start, end)."""
        self.refresh()
        result = []
        for viewing in self._entries:
            if action is not None and viewing.action != action:
                continue
            if station is not None and station not in (viewing.stations or (viewing.station,)):
                continue
            if start is not None or end is not None:
                moment = _moment(viewing.time)
                if moment is None:
                    continue
                if (start is not None and moment < start) or (end is not None and moment >= end):
                    continue
            result.append(viewing)
        return result

    def who_watched(
        self, station: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[Viewing]:
        """Every served segment of ``station``: user, role, address, time, segment, copy."""
        return self.entries(action="access", station=station, start=start, end=end)

    def denied(
        self,
        *,
        station: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Viewing]:
        """Every denied playback request: who, from where, which segment, which rule."""
        return self.entries(action="denied", station=station, start=start, end=end)

    def by_origin(
        self,
        *,
        named: Callable[[str], str | None] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[OriginRow]:
        """Viewings grouped by origin network (see :func:`origin_network`) and role.

        Sorted by the number of viewings, most first.
        """
        groups: dict[tuple[str, str], list[Viewing]] = {}
        for viewing in self.entries(action="access", start=start, end=end):
            key = (origin_network(viewing.address, named), viewing.role)
            groups.setdefault(key, []).append(viewing)
        rows = [
            OriginRow(
                network=network,
                role=role,
                viewings=len(items),
                users=len({v.actor for v in items}),
                segments=len({v.segment for v in items}),
                stations=len({v.station for v in items}),
                first=min(v.time for v in items),
                last=max(v.time for v in items),
            )
            for (network, role), items in groups.items()
        ]
        return sorted(rows, key=lambda r: (-r.viewings, r.network, r.role))
