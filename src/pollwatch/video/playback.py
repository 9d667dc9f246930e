"""Regulated playback: who asks, whether the policy lets them watch, the custody entry, the bytes.

:class:`PlaybackService` is what the dashboard (:mod:`pollwatch.web.video`) calls for every
footage request and every station page; it knows nothing of HTTP. The web parses a request
into a :class:`FootageRequest` (the segment, the copy asked for, the :class:`Credentials` and
:class:`Origin` presented, the ``Range`` header as sent) and renders what comes back:

* :meth:`PlaybackService.authorise` identifies the viewer (a bearer token, else a session,
  else :data:`~pollwatch.video.accounts.ANONYMOUS`; an unknown or revoked token is refused,
  never taken for a visitor), finds the segment, judges the client address
  (:func:`client_address`) and asks the policy (:mod:`.policy`). A refusal is a
  :class:`PlaybackRefused` with the HTTP status it stands for (401, 403, 404, 409); every
  refusal of a known segment gets a ``denied`` custody entry first (:mod:`.custody`, bounded
  and rate-limited per client). An allowed request is a :class:`Grant`: the segment to send
  (the original, or the blurred copy when the policy allows only that), the copy, the rule.
* :meth:`PlaybackService.record_viewing` writes the grant's ``access`` custody entry (reason
  ``playback``) before a byte is sent; a repeat by the same session or token from the same
  address within :data:`~pollwatch.video.custody.REPEAT_WINDOW` seconds writes nothing new.
* :meth:`PlaybackService.open` opens the granted segment's bytes in the archive.

Addresses: the client is the connection's peer. ``X-Forwarded-For`` is believed only when the
peer is one of the policy's ``[proxy] trusted`` ranges (none by default), read right to left,
and never for text that is not an IP address (:func:`client_address`), so a client cannot
choose the address the policy judges and the custody log records.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

from pollwatch.errors import EvidenceError, PolicyError, VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.settings import Settings

from .accounts import ANONYMOUS, AccountStore, User
from .audit import AuditLog
from .custody import PlaybackCustody
from .policy import POLICY_FILE, Decision, PlaybackRequest, Policy, load_policy
from .segments import Segment, VideoIndex
from .throttle import LoginThrottle

__all__ = [
    "Copy",
    "Credentials",
    "FootageRequest",
    "Grant",
    "Origin",
    "PlaybackRefused",
    "PlaybackService",
    "Unauthenticated",
    "Viewer",
    "claimed_identity",
    "client_address",
]

#: The two kinds of copy a viewer can be given.
Copy = Literal["original", "blurred"]


@dataclass(frozen=True)
class Credentials:
    """What a request presents: the ``Authorization`` header and the session cookie, as sent."""

    authorization: str | None = None
    session: str | None = None


@dataclass(frozen=True)
class Origin:
    """Where a request comes from: the connection's peer and the ``X-Forwarded-For`` values."""

    peer: str
    forwarded_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class Viewer:
    """The user of a request and the key its repeat window is kept under.

    ``key`` is ``token:<digest>`` or ``session:<digest>`` (a digest of the secret, never the
    secret), or ``anonymous`` for a visitor without either (repeats are then told apart by
    address alone).
    """

    user: User
    key: str


@dataclass(frozen=True)
class FootageRequest:
    """One request for a segment's bytes, as the web parsed it."""

    sha256: str
    copy: Copy | None
    credentials: Credentials
    origin: Origin
    #: the ``Range`` header as sent ("" without one), recorded in custody entries
    range: str = ""


@dataclass(frozen=True)
class Grant:
    """An allowed viewing: what to send, to whom, and the custody entry's details."""

    viewer: Viewer
    address: str
    #: the segment whose bytes are sent: the original, or a blurred copy of it
    segment: Segment
    copy: Copy
    rule: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.segment.size

    @property
    def media_type(self) -> str:
        return self.segment.media_type or "video/mp4"


class PlaybackRefused(VideoError):
    """A refused request, with the HTTP status it stands for and who and where it was.

    ``actor`` is the user (or the identity a refused token claimed) and ``address`` the client
    address as judged, or None when the refusal came before either was known.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        actor: str | None = None,
        address: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.actor = actor
        self.address = address


class Unauthenticated(PlaybackRefused):
    """Credentials that name nobody: a malformed ``Authorization`` header, an unknown or
    revoked token (401). ``actor`` is what they claimed (:func:`claimed_identity`)."""

    def __init__(self, message: str, *, claimed: str) -> None:
        super().__init__(message, status=401, actor=claimed)
        self.claimed = claimed


# --- identity and address ----------------------------------------------------------------------
def claimed_identity(authorization: str | None) -> str:
    """Who a refused ``Authorization`` header claimed to be, for the logs (never the secret).

    ``token:<id>``: the first 12 hex digits of the token's SHA-256, the id that
    ``pollwatch video token list`` shows, so a revoked token is recognised; else the scheme.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode("utf-8")).hexdigest()[:12]
    return "authorization:" + (re.sub(r"[^A-Za-z0-9._-]", "_", scheme)[:16] or "empty")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:32]


def identify(accounts: AccountStore, credentials: Credentials) -> Viewer:
    """The viewer of a request: bearer token, else session cookie, else anonymous.

    A bearer token that is unknown or revoked, or an ``Authorization`` header that is not
    ``Bearer <token>``, raises :class:`Unauthenticated`: never a silent downgrade to public.
    An unknown or expired session cookie is a visitor without one.
    """
    header = credentials.authorization
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "the Authorization header must be 'Bearer <token>'",
                claimed=claimed_identity(header),
            )
        user = accounts.token_user(token.strip())
        if user is None:
            raise Unauthenticated("unknown or revoked API token", claimed=claimed_identity(header))
        return Viewer(user, "token:" + _digest(token.strip()))
    if credentials.session:
        user = accounts.session_user(credentials.session)
        if user is not None:
            return Viewer(user, "session:" + _digest(credentials.session))
    return Viewer(ANONYMOUS, "anonymous")


def client_address(origin: Origin, policy: Policy | None) -> str:
    """The peer, or the ``X-Forwarded-For`` client when the peer is a trusted proxy.

    The header is read right to left and the first address that is not a trusted proxy wins,
    so a client cannot forge its address by sending the header itself; an entry that is not
    an IP address ends the walk at the last trusted hop, so no arbitrary text is ever taken for
    an address. Forwarded headers count only from the policy's ``[proxy] trusted`` ranges
    (none by default); ``pollwatch serve`` keeps uvicorn from rewriting the address itself
    (:mod:`pollwatch.web.server`).
    """
    host = origin.peer
    if policy is None or not policy.trusted_proxies or not _trusted(host, policy):
        return host
    forwarded = [
        part.strip() for value in origin.forwarded_for for part in value.split(",") if part.strip()
    ]
    for candidate in reversed(forwarded):
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            # Not an address (a port, a name, markup): the chain is unreadable from here on,
            # so the last proxy that can be trusted is the client we know.
            return host
        if not _trusted(candidate, policy):
            return candidate
        host = candidate
    return host


def _trusted(address: str, policy: Policy) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in policy.trusted_proxies)


# --- the service -------------------------------------------------------------------------------
class PlaybackService:
    """Accounts, login throttle, policy, archive and custody of one home (module docstring).

    The archive, its index, the audit views and the custody writer are opened on first use;
    the policy is re-read when ``<home>/video/policy.toml`` changes.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logins = LoginThrottle()
        self._lock = threading.Lock()
        self._archive: EvidenceArchive | None = None
        self._index: VideoIndex | None = None
        self._audit: AuditLog | None = None
        self._custody: PlaybackCustody | None = None
        self._accounts: AccountStore | None = None
        self._policy: tuple[int, Policy] | None = None

    # --- what it holds -----------------------------------------------------------------------
    @property
    def accounts(self) -> AccountStore:
        with self._lock:
            if self._accounts is None:
                self._accounts = AccountStore(self.settings.video_dir)
            return self._accounts

    def has_archive(self) -> bool:
        """Whether anything was recorded yet (an archive exists under the home)."""
        return (self.settings.evidence_dir / "archive.json").is_file()

    def archive(self) -> EvidenceArchive:
        """The evidence archive; PlaybackRefused (404) when there is none."""
        with self._lock:
            if self._archive is None:
                try:
                    self._archive = EvidenceArchive(self.settings.evidence_dir)
                except EvidenceError as exc:
                    raise PlaybackRefused(f"no video: {exc.one_line()}", status=404) from None
            return self._archive

    def index(self) -> VideoIndex:
        """The segment index of the archive (read once)."""
        archive = self.archive()
        with self._lock:
            if self._index is None:
                self._index = VideoIndex.from_archive(archive)
            return self._index

    def audit(self) -> AuditLog:
        """The audit views, after the summaries of closed denial windows are written."""
        self.custody().flush()
        archive = self.archive()
        with self._lock:
            if self._audit is None:
                self._audit = AuditLog(archive)
            return self._audit

    def custody(self) -> PlaybackCustody:
        """The custody writer: access and denied entries, bounded and rate-limited."""
        archive = self.archive()
        with self._lock:
            if self._custody is None:
                self._custody = PlaybackCustody(archive)
            return self._custody

    def close(self) -> None:
        """At shutdown: write the summaries of every open denial window."""
        with self._lock:
            custody = self._custody
        if custody is not None:
            custody.close()

    def policy(self) -> Policy:
        """The policy in force, re-read when ``policy.toml`` changes; PolicyError if malformed."""
        path = self.settings.video_dir / POLICY_FILE
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = -1
        with self._lock:
            if self._policy is not None and self._policy[0] == stamp:
                return self._policy[1]
        policy = load_policy(self.settings)
        with self._lock:
            self._policy = (stamp, policy)
        return policy

    def policy_or_none(self) -> Policy | None:
        """The policy in force, or None when it is malformed (everything is then denied)."""
        try:
            return self.policy()
        except PolicyError:
            return None

    # --- questions -----------------------------------------------------------------------
    def identify(self, credentials: Credentials) -> Viewer:
        """The viewer of a request (:func:`identify`); Unauthenticated for a bad token."""
        return identify(self.accounts, credentials)

    def address(self, origin: Origin) -> str:
        """The client address the policy judges (:func:`client_address`)."""
        return client_address(origin, self.policy_or_none())

    def station_access(self, user: User, station: str, address: str) -> Decision:
        """What the policy grants ``user`` at ``station`` from ``address``.

        A malformed policy denies everything (rule ``policy-invalid``).
        """
        try:
            policy = self.policy()
        except PolicyError as exc:
            return Decision(False, None, "policy-invalid", exc.one_line())
        return policy.decide(user, PlaybackRequest(station=station, address=address))

    # --- footage ---------------------------------------------------------------------------
    def authorise(self, request: FootageRequest) -> Grant:
        """Decide one footage request (module docstring); PlaybackRefused when refused.

        Every refusal of a known segment is in the custody log before this returns.
        """
        try:
            viewer = self.identify(request.credentials)
        except Unauthenticated as refused:
            self._refuse_unidentified(request, refused)
            raise
        try:
            index = self.index()
        except PlaybackRefused as refused:
            refused.actor = viewer.user.name
            raise
        asked = self._segment(index, request.sha256, viewer)
        original = asked
        copy = request.copy
        if asked.copy == "blurred" and asked.source_item:
            original = self._segment(index, asked.source_item, viewer)
            copy = copy or "blurred"
        try:
            policy: Policy | None = self.policy()
        except PolicyError as exc:
            policy, broken = None, exc.one_line()
        address = client_address(request.origin, policy)
        details: dict[str, Any] = {
            "role": viewer.user.role,
            "copy": copy or "",
            "station": original.station,
            "camera": original.camera,
            "range": request.range,
        }
        if policy is None:
            decision = Decision(False, None, "policy-invalid", f"the policy is invalid: {broken}")
        else:
            decision = policy.decide(
                viewer.user, PlaybackRequest(station=original.station, address=address, copy=copy)
            )
        actor = viewer.user.name
        if not decision.allowed or decision.copy is None:
            self.custody().denied(
                asked.sha256,
                actor=actor,
                address=address,
                reason=decision.rule,
                status=403,
                details={**details, "decision": decision.reason},
            )
            raise PlaybackRefused(
                f"denied: {decision.reason}", status=403, actor=actor, address=address
            )
        target = self._target(index, asked, original, decision.copy)
        if target is None:
            message = (
                f"segment {original.sha256[:16]} has no blurred copy yet and the policy allows "
                f"you only blurred copies (rule {decision.rule!r}); it is not served "
                "(run 'pollwatch video blur' to make one)"
            )
            self.custody().denied(
                asked.sha256,
                actor=actor,
                address=address,
                reason="no-blurred-copy",
                status=409,
                details={**details, "rule": decision.rule, "decision": message},
            )
            raise PlaybackRefused(message, status=409, actor=actor, address=address)
        return Grant(
            viewer=viewer,
            address=address,
            segment=target,
            copy=decision.copy,
            rule=decision.rule,
            details={**details, "copy": decision.copy, "rule": decision.rule},
        )

    def record_viewing(self, grant: Grant) -> bool:
        """The grant's ``access`` custody entry on the segment sent; False when it is a repeat
        within the window (nothing written)."""
        return self.custody().access(
            grant.segment.sha256,
            key=grant.viewer.key,
            copy=grant.copy,
            actor=grant.viewer.user.name,
            address=grant.address,
            details=grant.details,
        )

    def open(self, grant: Grant) -> BinaryIO:
        """The granted segment's bytes, from the archive's object store (the caller closes)."""
        stream: BinaryIO = self.archive().objects.open(grant.segment.sha256)
        return stream

    # --- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _segment(index: VideoIndex, sha256: str, viewer: Viewer) -> Segment:
        try:
            return index.segment(sha256)
        except VideoError as exc:
            raise PlaybackRefused(exc.one_line(), status=404, actor=viewer.user.name) from None

    @staticmethod
    def _target(index: VideoIndex, asked: Segment, original: Segment, copy: Copy) -> Segment | None:
        if copy == "original":
            return original
        if asked.copy == "blurred":
            return asked  # that very copy, even when a newer one exists
        return index.blurred_copy(original.sha256)

    def _refuse_unidentified(self, request: FootageRequest, refused: Unauthenticated) -> None:
        """The custody entry of a footage request with an unknown or revoked token (401)."""
        try:
            asked = self.index().segment(request.sha256)
        except (PlaybackRefused, VideoError):
            return  # no such segment (or no archive): there is no item to record it on
        address = self.address(request.origin)
        refused.address = address
        self.custody().denied(
            asked.sha256,
            actor=refused.claimed,
            address=address,
            reason="unauthenticated",
            status=401,
            details={
                "role": "",
                "copy": request.copy or "",
                "station": asked.station,
                "camera": asked.camera,
                "range": request.range,
                "decision": str(refused.message),
            },
        )
