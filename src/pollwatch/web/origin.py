"""Cross-site request forgery: a state-changing request must come from this site's own pages.

Every route of the app depends on :func:`require_same_origin` (set once in
:func:`pollwatch.web.app.create_app`). GET, HEAD and OPTIONS change nothing and pass. Any
other method (the ``POST`` of ``/login``, ``/logout``, the import forms and the import API) is
refused with 403 when the browser says it comes from elsewhere, the rule of Go's
``net/http.CrossOriginProtection`` (after Filippo Valsorda's analysis of CSRF defences):

1. ``Sec-Fetch-Site`` (sent by every current browser): only ``same-origin`` or ``none`` (the
   user typed it) pass; ``same-site`` and ``cross-site`` are refused;
2. else ``Origin``: it must name this host (scheme ignored, default ports dropped); ``null``
   (a sandboxed frame, a ``file:`` page) is refused;
3. else ``Referer``: the same test, for old browsers that send neither;
4. none of the three: not a browser (curl, scripts, the CLI's HTTP clients): it passes, since a
   forged request needs a victim's browser to carry the victim's cookie.

"This host" is the request's ``Host`` header: a reverse proxy in front of pollwatch must pass
the browser's ``Host`` on (nginx: ``proxy_set_header Host $host``). The session cookie is also
``SameSite=Strict``; this check holds where SameSite does not (same-site subdomains, login
CSRF, the cookieless import forms).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from fastapi import Request
from starlette.exceptions import HTTPException

__all__ = ["SAFE_METHODS", "cross_origin_refusal", "require_same_origin"]

#: Methods that change nothing and are never refused.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host(netloc: str, scheme: str) -> str:
    """``host[:port]`` lower-cased, without the scheme's default port."""
    host = netloc.lower()
    port = _DEFAULT_PORTS.get(scheme)
    if port is not None and host.endswith(f":{port}"):
        host = host[: -len(f":{port}")]
    return host


def _same_host(url: str, host: str, scheme: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return False
    return _host(parts.netloc, parts.scheme) == _host(host, scheme)


def cross_origin_refusal(method: str, headers: Mapping[str, str], scheme: str) -> str | None:
    """Why a request is refused as cross-origin (one line), or None when it may go on.

    ``headers`` are the request's, with lower-case names; ``scheme`` is the request's own.
    """
    if method.upper() in SAFE_METHODS:
        return None
    host = headers.get("host", "")
    site = headers.get("sec-fetch-site")
    if site is not None:
        if site.strip().lower() in ("same-origin", "none"):
            return None
        return f"cross-origin {method} refused (Sec-Fetch-Site: {site[:20]}): use this site's forms"
    origin = headers.get("origin")
    if origin is not None:
        if origin.strip().lower() != "null" and _same_host(origin.strip(), host, scheme):
            return None
        return f"cross-origin {method} refused (Origin {origin[:100]!r} is not {host[:100]!r})"
    referer = headers.get("referer")
    if referer is not None:
        if _same_host(referer.strip(), host, scheme):
            return None
        return f"cross-origin {method} refused (the Referer is not on {host[:100]!r})"
    return None


def require_same_origin(request: Request) -> None:
    """A FastAPI dependency: 403 for a cross-origin state-changing request."""
    refusal = cross_origin_refusal(request.method, request.headers, request.url.scheme)
    if refusal is not None:
        raise HTTPException(403, refusal)
