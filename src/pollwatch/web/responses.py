"""What the OpenAPI schema says about the API's other answers: errors, CSV and footage.

Every API error is ``{"error": "<one line>"}`` (:class:`ErrorBody`) with a 4xx status; routes
declare the statuses they can answer with :func:`errors`, and the CSV (``format=csv``) or
video responses with :data:`CSV` and :data:`MEDIA`, so ``/docs`` and generated clients see
them and the schemathesis run in ``tests/web/test_security.py`` can hold the app to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["CSV", "MEDIA", "BadRequest", "ErrorBody", "NotFound", "errors"]


class NotFound(Exception):
    """An unknown election or station (404)."""


class BadRequest(Exception):
    """A bad query parameter or form value (400)."""


class ErrorBody(BaseModel):
    """An error of the API: one line saying what was wrong and how to fix it."""

    error: str


_WHY = {
    400: "a bad parameter or form value, or a file that cannot be imported (one line why)",
    401: "no valid credentials: an unknown or revoked API token, or not logged in",
    403: "refused: by the playback policy, for the caller's role, or a cross-origin form post",
    404: "no such election, station, segment, or no video archive yet",
    409: "the policy allows only blurred copies and this segment has none yet",
    413: "the upload, or the file in it, is over a configured limit (which, and how to raise it)",
    416: "the requested range starts past the end of the segment",
    422: "a parameter of the wrong type or out of its range",
    429: "too many failed logins: wait the seconds that Retry-After says",
    503: "too many imports are already waiting for a worker: try again shortly",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses (416 has no body, the rest an ErrorBody)."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status == 416:
            declared[status] = {
                "description": _WHY[status],
                "headers": {"Content-Range": {"schema": {"type": "string"}}},
            }
        else:
            declared[status] = {"model": ErrorBody, "description": _WHY[status]}
    return declared


_CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}

#: A 200 that is JSON, or CSV with ``format=csv``.
CSV: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON, or CSV with format=csv", "content": _CSV_CONTENT}
}

_BYTES = {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}
#: A segment's bytes: whole (200) or one range (206).
MEDIA: dict[int | str, dict[str, Any]] = {
    200: {"description": "the whole segment", "content": _BYTES},
    206: {
        "description": "the requested byte range (Content-Range says which)",
        "content": _BYTES,
        "headers": {"Content-Range": {"schema": {"type": "string"}}},
    },
}
