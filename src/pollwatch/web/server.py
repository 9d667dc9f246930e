"""How ``pollwatch serve`` runs the app: one uvicorn configuration, safe by default.

uvicorn's defaults rewrite the client address from ``X-Forwarded-For`` for every connection
from 127.0.0.1 before the app sees the request, so any local client (or anything behind a
local port forward) could choose the address the playback policy judges and the custody log
records. Here uvicorn never reads forwarded headers; the app alone decides whom to believe,
from the policy's ``[proxy] trusted`` ranges (:func:`pollwatch.video.playback.client_address`),
which are empty by default.

:func:`configure_access_log` sends the access log (:mod:`pollwatch.web.access_log`, one line
per request) to ``<home>/logs/access.log``, rotated at :data:`ACCESS_LOG_BYTES` with
:data:`ACCESS_LOG_BACKUPS` older files kept (``access.log.1`` the newest); the folder is 0700
and the files 0600, since they name users and addresses.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any

from .access_log import ACCESS_LOGGER

__all__ = ["ACCESS_LOG_BACKUPS", "ACCESS_LOG_BYTES", "configure_access_log", "server_config"]

#: Size at which the access log is rotated, and how many rotated files are kept.
ACCESS_LOG_BYTES = 10 * 1024 * 1024
ACCESS_LOG_BACKUPS = 10


def server_config(app: Any, *, host: str, port: int, log_level: str = "warning") -> Any:
    """A ``uvicorn.Config`` for ``app`` that ignores forwarded headers and names no server."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        proxy_headers=False,
        forwarded_allow_ips="",
        server_header=False,
    )


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file is created 0600, the first and each after a rotation."""

    def _open(self) -> Any:
        os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        return super()._open()


def configure_access_log(home: Path) -> Path:
    """Write the access log to a rotating ``<home>/logs/access.log``; returns its path."""
    folder = Path(home) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / "access.log"
    handler = _PrivateRotatingFile(
        path, maxBytes=ACCESS_LOG_BYTES, backupCount=ACCESS_LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(ACCESS_LOGGER)
    for old in [h for h in logger.handlers if getattr(h, "pollwatch_access", False)]:
        logger.removeHandler(old)
        old.close()
    handler.pollwatch_access = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return path
