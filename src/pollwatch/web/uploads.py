"""The upload limit: an import request's body is refused past ``Settings.upload_max_bytes``.

:class:`UploadLimit` is ASGI middleware over the import routes. A request that declares a larger
``Content-Length`` is refused before any of its body is read; one that sends more than it
declared (or declares nothing, chunked) is refused as soon as the bytes received pass the limit.
Either way the form parser stops, the part already spooled to disk is dropped, and the client
gets one line with HTTP 413 that says what the limit is and how to raise it (the app's
``HTTPException`` handler renders it: JSON under ``/api``, the error page elsewhere).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pollwatch.results.importers.limits import human_bytes, limit_error

__all__ = ["UploadLimit", "UploadTooLarge"]


class UploadTooLarge(HTTPException):
    """413: the request body is larger than ``upload_max_bytes``."""

    def __init__(self, max_bytes: int, declared: int | None) -> None:
        size = f"of {human_bytes(declared)} " if declared is not None else ""
        refusal = limit_error(
            f"the upload {size}is larger than {human_bytes(max_bytes)}, the most the dashboard "
            "accepts (upload_max_bytes)",
            "upload_max_bytes",
        )
        super().__init__(status_code=413, detail=refusal.one_line())


class UploadLimit:
    """Refuse request bodies on ``paths`` once they pass ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, paths: frozenset[str], max_bytes: int) -> None:
        self.app = app
        self.paths = paths
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > self.max_bytes:
                raise UploadTooLarge(self.max_bytes, declared)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes, None)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
