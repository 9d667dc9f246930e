"""How ``pollwatch serve`` runs the app: one uvicorn configuration, safe by default.

uvicorn's defaults rewrite the client address from ``X-Forwarded-For`` for every connection
from 127.0.0.1 before the app sees the request, so any local client (or anything behind a
local port forward) could choose the address the playback policy judges and the custody log
records. Here uvicorn never reads forwarded headers; the app alone decides whom to believe,
from the policy's ``[proxy] trusted`` ranges (:func:`pollwatch.web.video.client_address`),
which are empty by default.
"""

from __future__ import annotations

from typing import Any

__all__ = ["server_config"]


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
