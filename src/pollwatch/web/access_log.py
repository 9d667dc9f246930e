"""The access log: one line per HTTP request, written to the logger ``pollwatch.access``.

:class:`AccessLog` is ASGI middleware (added by :func:`pollwatch.web.app.create_app`); each
line, written when the response has been sent, says::

    2026-11-29T20:00:01Z 192.0.2.10 lena GET /api/video/segments/ab12...?copy=original 206 65536

the time (UTC), the client address (as the playback policy judged it: a trusted proxy's
forwarded client, else the connection's address), the user (the account or ``anonymous`` on
routes that identify the caller, ``token:<id>`` for a refused bearer token, ``-`` on routes
that do not ask), the method, the path with its query exactly as sent (percent-encoded;
anything unprintable escaped, cut at :data:`MAX_TARGET` characters), the status and the bytes
of the body sent. Routes name the user and address with :func:`note_user` and
:func:`note_address`.

Where the lines go is the server's business: ``pollwatch serve`` writes them to a rotating
file under the home (:func:`pollwatch.web.server.configure_access_log`); an app embedded
elsewhere gets them through the standard :mod:`logging` module like any other logger.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ACCESS_LOGGER", "MAX_TARGET", "AccessLog", "note_address", "note_user"]

#: The name of the logger the lines go to.
ACCESS_LOGGER = "pollwatch.access"
#: Characters of the request target (path and query) kept in a line.
MAX_TARGET = 2000

_USER = "pollwatch_user"
_ADDRESS = "pollwatch_address"
logger = logging.getLogger(ACCESS_LOGGER)


def note_user(request: Request, name: str) -> str:
    """Name the user of this request in its access-log line; returns ``name``."""
    request.state.pollwatch_user = name
    return name


def note_address(request: Request, address: str) -> str:
    """Name the client address of this request in its access-log line; returns ``address``."""
    request.state.pollwatch_address = address
    return address


def _printable(text: str, limit: int) -> str:
    """One field of a line: no spaces, quotes or control characters, at most ``limit`` long."""
    safe = "".join(
        c if c.isprintable() and not c.isspace() and c != '"' else f"\\x{ord(c):02x}"
        for c in text[: limit + 1]
    )
    return safe if len(safe) <= limit else safe[:limit] + "..."


def format_line(scope: Scope, status: int, sent: int, moment: datetime) -> str:
    """The access-log line of one request (see the module docstring)."""
    state: dict[str, Any] = scope.get("state") or {}
    client = scope.get("client")
    address = state.get(_ADDRESS) or (client[0] if client else "-")
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "replace")
    target = raw.decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    return " ".join(
        (
            moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            _printable(str(address), 100),
            _printable(str(state.get(_USER) or "-"), 100),
            _printable(str(scope.get("method", "-")), 20),
            _printable(target, MAX_TARGET),
            str(status),
            str(sent),
        )
    )


class AccessLog:
    """ASGI middleware writing one :data:`ACCESS_LOGGER` line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        status = 500  # what the server answers when the app fails before it starts a response
        sent = 0

        async def counting(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            logger.info(format_line(scope, status, sent, datetime.now(UTC)))
