"""Signed checkpoints: C2SP signed notes, log checkpoints and witness cosignatures (Ed25519).

Standards followed (text from the C2SP repository, https://c2sp.org):

* **signed-note** (c2sp.org/signed-note): a *note* is a UTF-8 text ending in a newline, a blank
  line, then one or more signature lines ``— <key name> <base64(key ID || signature)>``, each
  ending in a newline (the dash is U+2014 EM DASH). No ASCII control character other than newline
  may appear. The text is separated from the signatures by the *last* blank line, so the text may
  itself hold blank lines. Key names are non-empty and hold no Unicode space and no ``+``.
  The 4-byte key ID is ``SHA-256(key name || 0x0A || signature type || public key)[:4]``;
  the signature type of plain Ed25519 (RFC 8032) signatures is ``0x01``.
  Verifiers ignore signatures from unknown keys, must verify those from known keys, and reject a
  note where no known key signed; this module also rejects a note in which a known key's
  signature fails (the spec allows it, golang.org/x/mod/sumdb/note does it).
* **Verifier and signer keys** (the format of golang.org/x/mod/sumdb/note, referenced by C2SP as
  *vkeys*): ``<name>+<8 hex key ID>+<base64(type || 32-byte public key)>`` and
  ``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(type || 32-byte Ed25519 seed)>``.
* **tlog-checkpoint** (c2sp.org/tlog-checkpoint): the note text of a checkpoint is
  ``<origin>\\n<tree size in decimal, no leading zeroes>\\n<base64 RFC 6962 root hash>\\n`` and then
  optional non-empty extension lines. The log's key name should equal the origin.
* **tlog-cosignature** (c2sp.org/tlog-cosignature, Ed25519 ``cosignature/v1``): a witness signs
  ``cosignature/v1\\ntime <POSIX seconds>\\n`` followed by the checkpoint's note text, with
  Ed25519; the signature line carries ``key ID || u64 big-endian timestamp || 64-byte signature``
  and the key ID is computed with signature type ``0x04``.
* **tlog-witness** (c2sp.org/tlog-witness): before cosigning, a witness checks the log's
  signature, that the new checkpoint is not smaller than the last one it cosigned for the origin,
  that a same-size checkpoint has the same root, and that an RFC 6962 / RFC 9162 consistency proof
  from the last cosigned tree to the new one verifies; it persists the new state before answering.

Definitions used in this module:

* *key ID* (the spec's name; golang calls it *key hash*): the uint32 above, written as 8 hex digits.
* *body* or *note text*: the signed text, with its final newline, without the blank line.
* *k-of-n policy*: a reader trusts a checkpoint when the log signed it and at least ``k`` of the
  ``n`` witnesses it trusts cosigned it.

Differences from golang.org/x/mod/sumdb/note worth knowing: base64 must be canonical here (the
unused low bits of the last character must be zero), so that every single-character change of a
signature line is rejected rather than decoding to the same bytes; at most 100 signatures are read
(the spec requires at least 16).

Nothing here prints; every failure is an :class:`~pollwatch.errors.EvidenceError` (bad keys or
arguments) or a :class:`~pollwatch.errors.VerificationError` (a note, checkpoint or cosignature that
does not verify), each with a one-line reason.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.fileio import atomic_write_json

__all__ = [
    "KEY_TYPE_COSIGNATURE_V1",
    "KEY_TYPE_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Note",
    "NoteSignature",
    "Signer",
    "Verifier",
    "Witness",
    "add_cosignatures",
    "generate_cosigner",
    "generate_signer",
    "key_id",
    "open_note",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_cosigned",
]

#: Signature type byte of plain Ed25519 note signatures (c2sp.org/signed-note).
KEY_TYPE_ED25519 = 0x01
#: Signature type byte of timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature).
KEY_TYPE_COSIGNATURE_V1 = 0x04
#: Most signature lines read from one note (the spec asks for at least 16; golang reads 100).
MAX_SIGNATURES = 100

_KEY_TYPE_NAMES = {KEY_TYPE_ED25519: "Ed25519", KEY_TYPE_COSIGNATURE_V1: "Ed25519 cosignature/v1"}
_SIGNATURE_PREFIX = "\u2014 "
_ED25519_KEY_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_TIMESTAMP_SIZE = 8
_ROOT_HASH_SIZE = 32  # SHA-256, as RFC 6962 trees use
_MAX_TREE_SIZE = 2**64 - 1
_MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: "MUST NOT exceed 2^63 - 1"
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_FORMAT_HINT = "a verifier key looks like '<name>+<8 hex digits>+<base64 key>'"
_SIGNER_FORMAT_HINT = (
    "a signer key looks like 'PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>'; "
    "make one with generate_signer(name) or generate_cosigner(name)"
)


# --------------------------------------------------------------------------- helpers


def _is_valid_name(name: str) -> bool:
    """Key-name rule of signed-note: non-empty, no Unicode space, no ``+``, no control char."""
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)
        and _is_utf8(name)
    )


def _is_utf8(text: str) -> bool:
    # A Python str can hold lone surrogates, which are not valid UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_control(text: str) -> bool:
    """True when ``text`` holds an ASCII control character other than newline."""
    return any(ord(ch) < 0x20 and ch != "\n" for ch in text)


def _b64decode_canonical(text: str) -> bytes | None:
    """Standard base64 (RFC 4648 §4) in its one canonical spelling, or None.

    Canonical means padded and with zero unused bits, so that no two strings decode to the same
    bytes: a changed character in a signature can then never go unnoticed.
    """
    if not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def _key_fields(hex_id: str, key64: str, what: str, material: str, hint: str) -> tuple[int, bytes]:
    """The key type and key bytes of a key string's ``<hex key ID>`` and ``<base64>`` fields.

    Checks the key ID is 8 hex digits (never quoted: in a garbled signer key it may be secret),
    the base64 is canonical, the type supported and the key 32 bytes; ``what`` names the key in
    the messages and ``material`` what the bytes are (``"public key"``, ``"seed"``).
    """
    if not _HEX8.fullmatch(hex_id):
        raise EvidenceError(f"malformed {what}: key ID is not 8 hex digits", hint=hint)
    raw = _b64decode_canonical(key64)
    if raw is None or len(raw) < 2:
        raise EvidenceError(f"malformed {what}: key material is not base64", hint=hint)
    key_type, key = raw[0], raw[1:]
    _check_key_type(key_type, what)
    if len(key) != _ED25519_KEY_SIZE:
        raise EvidenceError(
            f"malformed {what}: {material} is {len(key)} bytes, expected {_ED25519_KEY_SIZE}",
            hint=hint,
        )
    return key_type, key


def key_id(name: str, key_type: int, public_key: bytes) -> int:
    """The 4-byte key ID of a key, as a uint32 (c2sp.org/signed-note, "Signatures").

    ``SHA-256(key name || 0x0A || signature type || public key)[:4]``, read big-endian.
    """
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _cosignature_message(timestamp: int, body: bytes) -> bytes:
    """The message an Ed25519 cosignature/v1 signs (c2sp.org/tlog-cosignature)."""
    return b"cosignature/v1\ntime %d\n" % timestamp + body


def _check_key_type(key_type: int, what: str) -> None:
    if key_type not in _KEY_TYPE_NAMES:
        raise EvidenceError(
            f"{what}: unsupported key type 0x{key_type:02x}",
            hint="pollwatch reads Ed25519 keys (type 0x01) and Ed25519 cosignature/v1 keys "
            "(type 0x04)",
        )


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Verifier:
    """A public key that checks note signatures: a name, a key type and a 32-byte Ed25519 key.

    ``key_type`` is :data:`KEY_TYPE_ED25519` for log signatures or
    :data:`KEY_TYPE_COSIGNATURE_V1` for witness cosignatures. ``str(verifier)`` is the verifier
    key string ``<name>+<hex key ID>+<base64(type || key)>``.
    """

    name: str
    public_key: bytes
    key_type: int = KEY_TYPE_ED25519
    key_id: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _is_valid_name(self.name):
            raise EvidenceError(
                f"invalid key name {self.name!r}",
                hint="a key name is non-empty and holds no spaces, '+' or control characters",
            )
        _check_key_type(self.key_type, f"verifier key {self.name}")
        if len(self.public_key) != _ED25519_KEY_SIZE:
            raise EvidenceError(
                f"verifier key {self.name}: Ed25519 public key is {len(self.public_key)} bytes, "
                f"expected {_ED25519_KEY_SIZE}"
            )
        object.__setattr__(self, "key_id", key_id(self.name, self.key_type, self.public_key))

    @classmethod
    def from_string(cls, vkey: str) -> Verifier:
        """Parse a verifier key string; :class:`EvidenceError` says what is wrong with it."""
        shown = vkey if len(vkey) <= 120 else vkey[:117] + "..."
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise EvidenceError(
                f"malformed verifier key {shown!r}: expected 3 parts separated by '+'",
                hint=_KEY_FORMAT_HINT,
            )
        name, hex_id, key64 = parts
        if not _is_valid_name(name):
            raise EvidenceError(
                f"malformed verifier key {shown!r}: invalid key name {name!r}",
                hint=_KEY_FORMAT_HINT,
            )
        key_type, public_key = _key_fields(
            hex_id, key64, f"verifier key {shown!r}", "public key", _KEY_FORMAT_HINT
        )
        verifier = cls(name, public_key, key_type)
        if int(hex_id, 16) != verifier.key_id:
            raise EvidenceError(
                f"verifier key {shown!r}: key ID {hex_id.lower()} does not match the key "
                f"(computed {verifier.key_id:08x})",
                hint="the key string was altered or copied incompletely",
            )
        return verifier

    def to_string(self) -> str:
        """The verifier key string ``<name>+<hex key ID>+<base64(type || key)>``."""
        material = base64.b64encode(bytes([self.key_type]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{material}"

    def __str__(self) -> str:
        return self.to_string()

    @property
    def key_label(self) -> str:
        """``<name>+<hex key ID>``: how messages name this key."""
        return f"{self.name}+{self.key_id:08x}"

    def for_cosignature(self) -> Verifier:
        """The cosignature/v1 verifier (type 0x04) for the same name and public key."""
        return Verifier(self.name, self.public_key, KEY_TYPE_COSIGNATURE_V1)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key ID) signs ``message`` with this key.

        For cosignature/v1 keys the signature is ``u64 timestamp || Ed25519 signature`` over
        ``cosignature/v1\\ntime <timestamp>\\n`` + ``message``.
        """
        public = Ed25519PublicKey.from_public_bytes(self.public_key)
        if self.key_type == KEY_TYPE_COSIGNATURE_V1:
            if len(signature) != _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE:
                return False
            timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
            if timestamp > _MAX_TIMESTAMP:
                return False
            message = _cosignature_message(timestamp, message)
            signature = signature[_TIMESTAMP_SIZE:]
        elif len(signature) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """A private Ed25519 key that signs notes (type 0x01) or cosigns checkpoints (type 0x04).

    Build one with :meth:`from_string` from a signer key string. The private key never appears in
    ``repr`` or in error messages; :meth:`to_string` gives the secret string back.
    """

    __slots__ = ("_private", "key_id", "key_type", "name", "public_key")

    def __init__(self, name: str, seed: bytes, key_type: int = KEY_TYPE_ED25519) -> None:
        if not _is_valid_name(name):
            raise EvidenceError(
                f"invalid key name {name!r}",
                hint="a key name is non-empty and holds no spaces, '+' or control characters",
            )
        _check_key_type(key_type, f"signer key {name}")
        if len(seed) != _ED25519_KEY_SIZE:
            raise EvidenceError(
                f"signer key {name}: Ed25519 seed is {len(seed)} bytes, expected "
                f"{_ED25519_KEY_SIZE}"
            )
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.name = name
        self.key_type = key_type
        self.public_key = _public_bytes(self._private.public_key())
        self.key_id = key_id(name, key_type, self.public_key)

    @classmethod
    def from_string(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>``.

        The key ID must match the public key derived from the seed. Errors never quote the key.
        """
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise EvidenceError(
                "malformed signer key: expected 'PRIVATE+KEY+' and 3 parts separated by '+'",
                hint=_SIGNER_FORMAT_HINT,
            )
        _, _, name, hex_id, key64 = parts
        if not _is_valid_name(name):
            raise EvidenceError(
                f"malformed signer key: invalid key name {name!r}", hint=_SIGNER_FORMAT_HINT
            )
        key_type, seed = _key_fields(
            hex_id, key64, f"signer key for {name}", "seed", _SIGNER_FORMAT_HINT
        )
        signer = cls(name, seed, key_type)
        if int(hex_id, 16) != signer.key_id:
            raise EvidenceError(
                f"signer key for {name}: key ID {hex_id.lower()} does not match the key",
                hint="the key string was altered or copied incompletely",
            )
        return signer

    def to_string(self) -> str:
        """The secret signer key string; keep it out of logs and repositories."""
        seed = self._private.private_bytes_raw()
        material = base64.b64encode(bytes([self.key_type]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    def __repr__(self) -> str:
        kind = _KEY_TYPE_NAMES[self.key_type]
        return f"Signer({self.name}+{self.key_id:08x}, {kind})"

    def verifier(self) -> Verifier:
        """The public :class:`Verifier` of this key."""
        return Verifier(self.name, self.public_key, self.key_type)

    def for_cosignature(self) -> Signer:
        """The cosignature/v1 signer (type 0x04) with the same name and private key."""
        return Signer(self.name, self._private.private_bytes_raw(), KEY_TYPE_COSIGNATURE_V1)

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """The signature bytes (without the key ID) over ``message``.

        For a cosignature/v1 key, ``message`` is the checkpoint body and the result is
        ``u64 timestamp || Ed25519 signature``; ``timestamp`` defaults to now (POSIX seconds).
        """
        if self.key_type == KEY_TYPE_COSIGNATURE_V1:
            when = int(time.time()) if timestamp is None else timestamp
            if not 0 <= when <= _MAX_TIMESTAMP:
                raise EvidenceError(
                    f"cosignature timestamp {when} is outside 0..2^63-1",
                    hint="give POSIX seconds",
                )
            signed = self._private.sign(_cosignature_message(when, message))
            return when.to_bytes(_TIMESTAMP_SIZE, "big") + signed
        if timestamp is not None:
            raise EvidenceError(
                f"signer {self.name}: a plain Ed25519 signature carries no timestamp",
                hint="use a cosignature/v1 key (generate_cosigner) for timestamped cosignatures",
            )
        return self._private.sign(message)

    def signature_line(self, body: str, *, timestamp: int | None = None) -> str:
        """The note signature line ``— <name> <base64(key ID || signature)>\\n`` over ``body``."""
        raw = self.sign(body.encode("utf-8"), timestamp=timestamp)
        return NoteSignature(self.name, self.key_id, raw).line()


def _generate(name: str, key_type: int) -> tuple[str, str]:
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    signer = Signer(name, seed, key_type)
    return signer.to_string(), signer.verifier().to_string()


def generate_signer(name: str) -> tuple[str, str]:
    """A new Ed25519 note key: ``(signer key string, verifier key string)``.

    Use the origin of the log as ``name`` (c2sp.org/tlog-checkpoint: the key name SHOULD match the
    origin line), for example ``"evidence.example.org/log"``. The signer key is secret.
    """
    return _generate(name, KEY_TYPE_ED25519)


def generate_cosigner(name: str) -> tuple[str, str]:
    """A new witness key for Ed25519 cosignature/v1 (type 0x04): ``(signer key, verifier key)``.

    c2sp.org/tlog-cosignature: a cosigner operator MUST use distinct keys for distinct cosigners.
    """
    return _generate(name, KEY_TYPE_COSIGNATURE_V1)


# --------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: key name, key ID and the signature bytes after the ID."""

    name: str
    key_id: int
    signature: bytes

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Read one ``— <name> <base64>`` line (final newline optional); syntax only."""
        return _parse_signature_line(line.removesuffix("\n"), "signature line")

    def line(self) -> str:
        """The signature line, with its final newline."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIGNATURE_PREFIX}{self.name} {base64.b64encode(raw).decode('ascii')}\n"

    @property
    def key_label(self) -> str:
        """``<name>+<hex key ID>``."""
        return f"{self.name}+{self.key_id:08x}"

    @property
    def timestamp(self) -> int | None:
        """The cosignature/v1 timestamp when the signature has that shape (8 + 64 bytes)."""
        if len(self.signature) != _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE:
            return None
        return int.from_bytes(self.signature[:_TIMESTAMP_SIZE], "big")


@dataclass(frozen=True)
class Note:
    """An opened note: its text (body) and its verified and unverified signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...] = ()


def _as_text(note: str | bytes) -> str:
    if isinstance(note, bytes):
        try:
            return note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError(
                f"malformed note: not valid UTF-8 at byte {exc.start}"
            ) from None
    return note


def _parse_signature_line(line: str, where: str) -> NoteSignature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise VerificationError(
            f"malformed note: {where} does not start with an em dash and a space",
            hint="signature lines read '— <key name> <base64 signature>'",
        )
    name, _, b64 = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not _is_valid_name(name):
        raise VerificationError(f"malformed note: {where} has an invalid key name {name!r}")
    raw = _b64decode_canonical(b64)
    if raw is None:
        raise VerificationError(f"malformed note: {where} ({name}) is not canonical base64")
    if len(raw) < 5:
        raise VerificationError(f"malformed note: {where} ({name}) is too short")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def _split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and its signature lines, checking only the syntax."""
    text = _as_text(note)
    if not _is_utf8(text):
        raise VerificationError("malformed note: not valid UTF-8 (holds a lone surrogate)")
    for position, ch in enumerate(text):
        if ord(ch) < 0x20 and ch != "\n":
            raise VerificationError(
                f"malformed note: control character U+{ord(ch):04X} at character {position}",
                hint="a signed note holds no control character other than newline",
            )
    split = text.rfind("\n\n")
    if split < 0:
        raise VerificationError(
            "malformed note: no blank line before the signatures",
            hint="a signed note is its text, a blank line, then '— <name> <signature>' lines",
        )
    body, block = text[: split + 1], text[split + 2 :]
    if not block:
        raise VerificationError("malformed note: no signature lines after the blank line")
    if not block.endswith("\n"):
        raise VerificationError("malformed note: the last signature line does not end in newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(
            f"malformed note: {len(lines)} signature lines, more than the {MAX_SIGNATURES} read"
        )
    signatures = [
        _parse_signature_line(line, f"signature line {number}")
        for number, line in enumerate(lines, start=1)
    ]
    return body, signatures


def _verifier_map(
    verifiers: Verifier | Iterable[Verifier], what: str
) -> dict[tuple[str, int], Verifier]:
    items = [verifiers] if isinstance(verifiers, Verifier) else list(verifiers)
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in items:
        if not isinstance(verifier, Verifier):
            raise EvidenceError(
                f"{what}: expected Verifier objects, got {type(verifier).__name__}",
                hint="build them with Verifier.from_string(verifier_key)",
            )
        key = (verifier.name, verifier.key_id)
        other = known.get(key)
        if other is not None and other != verifier:
            raise EvidenceError(
                f"{what}: two different keys share the name and key ID {verifier.key_label}",
                hint="remove one of them; a name and key ID must identify one key",
            )
        known[key] = verifier
    return known


def _body_ok_for_signing(body: str) -> None:
    if not body.endswith("\n"):
        raise EvidenceError(
            "cannot sign the note: its text does not end in a newline",
            hint="end the text with '\\n'",
        )
    if not _is_utf8(body):
        raise EvidenceError("cannot sign the note: its text is not valid UTF-8")
    if _has_control(body):
        raise EvidenceError(
            "cannot sign the note: its text holds a control character other than newline"
        )


def sign_note(body: str, signers: Signer | Sequence[Signer]) -> str:
    """Sign ``body`` with each signer: ``body + "\\n" + one signature line per signer``.

    The body must end with a newline and hold no control character other than newline
    (c2sp.org/signed-note). A signer listed twice signs once.
    """
    items = [signers] if isinstance(signers, Signer) else list(signers)
    if not items:
        raise EvidenceError("cannot sign the note: no signer given")
    if len(items) > MAX_SIGNATURES:
        raise EvidenceError(f"cannot sign the note: more than {MAX_SIGNATURES} signers")
    _body_ok_for_signing(body)
    lines: list[str] = []
    seen: set[tuple[str, int]] = set()
    for signer in items:
        if (signer.name, signer.key_id) in seen:
            continue
        seen.add((signer.name, signer.key_id))
        lines.append(signer.signature_line(body))
    return body + "\n" + "".join(lines)


def _describe_keys(signatures: Iterable[NoteSignature]) -> str:
    labels = sorted({signature.key_label for signature in signatures})
    return ", ".join(labels) if labels else "none"


def open_note(
    note: str | bytes, verifiers: Verifier | Iterable[Verifier], *, required: int = 1
) -> Note:
    """Verify a signed note and return its text and signatures (c2sp.org/signed-note).

    Signatures from unknown keys (name and key ID not both matching a verifier) are ignored and
    listed in ``Note.unverified``. A known key's signature that fails raises
    :class:`VerificationError`, as does a note with fewer than ``required`` distinct known keys
    whose signatures verify. Repeated identical signature lines count once.
    """
    if required < 1:
        raise EvidenceError(
            f"required={required}: a note needs at least one verified signature",
            hint="c2sp.org/signed-note: a note no known key signed MUST be rejected",
        )
    known = _verifier_map(verifiers, "open_note")
    body, signatures = _split_note(note)
    message = body.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    seen_keys: set[tuple[str, int]] = set()
    for signature in signatures:
        key = (signature.name, signature.key_id)
        verifier = known.get(key)
        if verifier is None:
            if signature not in unverified:
                unverified.append(signature)
            continue
        if key in seen_keys:
            continue
        seen_keys.add(key)
        if not verifier.verify(message, signature.signature):
            raise VerificationError(
                f"invalid signature for key {verifier.key_label}",
                hint="the note text or the signature was changed after signing",
            )
        verified.append(signature)
    if len(verified) < required:
        trusted = ", ".join(sorted(v.key_label for v in known.values())) or "none"
        if required == 1:
            reason = "no signature from a trusted key"
        else:
            reason = f"{required} trusted signatures required, {len(verified)} valid"
        raise VerificationError(
            f"{reason}: the note is signed by {_describe_keys(signatures)}; trusted keys: "
            f"{trusted}",
            hint="check that the verifier key is the one of the log that signed this note",
        )
    return Note(body, tuple(verified), tuple(unverified))


def add_cosignatures(note: str, lines: Iterable[str] | str) -> str:
    """Append signature lines (for example a witness's answer) to a signed note.

    ``lines`` is an iterable of ``— <name> <signature>`` lines, or one string holding such lines.
    A new line from the same key (name and key ID) as an existing one replaces it; identical lines
    are kept once. Only the syntax is checked here: verify with :func:`verify_cosigned`.
    """
    body, existing = _split_note(note)
    if isinstance(lines, str):
        # split("\n"), not splitlines(): that also splits at U+2028 and friends.
        lines = lines.removesuffix("\n").split("\n") if lines else []
    added = [
        _parse_signature_line(line.removesuffix("\n"), f"added signature line {number}")
        for number, line in enumerate(lines, start=1)
    ]
    new_keys = {(signature.name, signature.key_id) for signature in added}
    kept = [s for s in existing if (s.name, s.key_id) not in new_keys]
    merged: list[NoteSignature] = []
    for signature in kept + added:
        if signature not in merged:
            merged.append(signature)
    if len(merged) > MAX_SIGNATURES:
        raise VerificationError(
            f"cannot add cosignatures: the note would hold {len(merged)} signatures, more than "
            f"{MAX_SIGNATURES}"
        )
    return body + "\n" + "".join(signature.line() for signature in merged)


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size and RFC 6962 root hash (c2sp.org/tlog-checkpoint).

    ``extensions`` are the optional extension lines, kept verbatim (the spec does not recommend
    them: monitors cannot audit them, and witnesses make no statement about them).
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _has_control(self.origin):
            raise EvidenceError(
                f"invalid checkpoint origin {self.origin!r}",
                hint="the origin is one non-empty line, e.g. 'evidence.example.org/log'",
            )
        if not _is_utf8(self.origin):
            raise EvidenceError(f"invalid checkpoint origin {self.origin!r}: not valid UTF-8")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise EvidenceError(f"checkpoint size must be an int, got {type(self.size).__name__}")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise EvidenceError(f"checkpoint size {self.size} is outside 0..2^64-1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _ROOT_HASH_SIZE:
            raise EvidenceError(
                f"checkpoint root hash must be {_ROOT_HASH_SIZE} bytes (SHA-256)",
            )
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            if not line or "\n" in line or _has_control(line) or not _is_utf8(line):
                raise EvidenceError(
                    f"invalid checkpoint extension line {line!r}",
                    hint="extension lines are non-empty single lines without control characters",
                )

    def body(self) -> str:
        """The note text: origin, size, base64 root hash and extension lines, each + newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Read a checkpoint note text. Use it on verified text only (see verify_checkpoint)."""
        if not body.endswith("\n"):
            raise VerificationError("malformed checkpoint: the text does not end in a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise VerificationError(
                f"malformed checkpoint: {len(lines)} lines, expected origin, size and root hash"
            )
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise VerificationError("malformed checkpoint: empty origin line")
        if not _DECIMAL.fullmatch(size_text) or int(size_text) > _MAX_TREE_SIZE:
            raise VerificationError(
                f"malformed checkpoint {origin}: tree size {size_text!r} is not a decimal "
                "number without leading zeroes"
            )
        root = _b64decode_canonical(root_text)
        if root is None or len(root) != _ROOT_HASH_SIZE:
            raise VerificationError(
                f"malformed checkpoint {origin}: root hash {root_text!r} is not the base64 of "
                f"{_ROOT_HASH_SIZE} bytes"
            )
        for number, line in enumerate(extensions, start=4):
            if not line:
                raise VerificationError(
                    f"malformed checkpoint {origin}: line {number} (an extension line) is empty"
                )
        try:
            return cls(origin, int(size_text), root, tuple(extensions))
        except VerificationError:
            raise
        except EvidenceError as exc:
            raise VerificationError(f"malformed checkpoint: {exc.message}") from None


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The signed note of ``checkpoint``, signed by the log's Ed25519 key."""
    if signer.key_type != KEY_TYPE_ED25519:
        raise EvidenceError(
            f"signer {signer.name} is a cosignature key; a log signs with an Ed25519 key",
            hint="make the log key with generate_signer(origin)",
        )
    return sign_note(checkpoint.body(), signer)


def _log_verifiers(log_verifier: Verifier | Iterable[Verifier]) -> list[Verifier]:
    items = [log_verifier] if isinstance(log_verifier, Verifier) else list(log_verifier)
    if not items:
        raise EvidenceError("no log verifier key given")
    for verifier in items:
        if isinstance(verifier, Verifier) and verifier.key_type != KEY_TYPE_ED25519:
            raise EvidenceError(
                f"log verifier {verifier.key_label} is a cosignature key, not a log key",
                hint="pass the log's Ed25519 verifier key (type 0x01)",
            )
    return items


def verify_checkpoint(
    note: str | bytes,
    log_verifier: Verifier | Iterable[Verifier],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint with the log's key(s) and return it.

    The origin line must equal ``origin`` or, when it is not given, the name of the log key that
    signed (c2sp.org/tlog-checkpoint: the key name SHOULD match the origin). This rejects the
    checkpoint of another log signed with a reused key.
    """
    opened = open_note(note, _log_verifiers(log_verifier))
    checkpoint = Checkpoint.parse(opened.text)
    expected = {origin} if origin is not None else {s.name for s in opened.signatures}
    if checkpoint.origin not in expected:
        wanted = " or ".join(repr(name) for name in sorted(expected))
        raise VerificationError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected log {wanted}",
            hint="this checkpoint belongs to another log; pass origin= when a log's key name "
            "differs from its origin",
        )
    return checkpoint


def _witness_verifiers(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    # A plain Ed25519 vkey names a witness key too; as in transparency-dev/formats it is read as
    # the cosignature/v1 key (type 0x04) of the same public key.
    converted = [
        v.for_cosignature() if isinstance(v, Verifier) and v.key_type == KEY_TYPE_ED25519 else v
        for v in ([verifiers] if isinstance(verifiers, Verifier) else verifiers)
    ]
    return _verifier_map(converted, "witness verifiers")


def verify_cosigned(
    note: str | bytes,
    log_verifier: Verifier | Iterable[Verifier],
    witness_verifiers: Iterable[Verifier],
    *,
    required_witnesses: int | None = None,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a checkpoint signed by its log and cosigned by at least k of n witnesses.

    ``required_witnesses`` is k (default: all the witnesses given). Fails with the count and a
    reason per witness, e.g. ``"2 of 3 witness cosignatures required, 1 valid: witness-b
    signature invalid, witness-c missing"``. Witness verifier keys of type 0x01 are read as
    cosignature/v1 keys of the same public key.
    """
    checkpoint = verify_checkpoint(note, log_verifier, origin=origin)
    witnesses = _witness_verifiers(witness_verifiers)
    total = len(witnesses)
    needed = total if required_witnesses is None else required_witnesses
    if total == 0:
        raise EvidenceError(
            "no witness verifier keys given", hint="pass the verifier keys of trusted witnesses"
        )
    if not 1 <= needed <= total:
        raise EvidenceError(
            f"required_witnesses={needed} is outside 1..{total} (the number of witnesses given)"
        )
    body, signatures = _split_note(note)
    message = body.encode("utf-8")
    valid: list[str] = []
    problems: list[str] = []
    for key, verifier in witnesses.items():
        mine = [s for s in signatures if (s.name, s.key_id) == key]
        if not mine:
            problems.append(f"{verifier.name} missing")
        elif any(verifier.verify(message, s.signature) for s in mine):
            valid.append(verifier.name)
        else:
            problems.append(f"{verifier.name} signature invalid")
    if len(valid) < needed:
        raise VerificationError(
            f"{needed} of {total} witness cosignatures required, {len(valid)} valid: "
            + ", ".join(problems),
            hint="ask more witnesses to cosign this checkpoint, or check their verifier keys",
        )
    return checkpoint


# --------------------------------------------------------------------------- witness

ConsistencyVerifier = Callable[[int, int, bytes, bytes, Sequence[bytes]], object]
_EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()  # RFC 6962 §2.1: MTH({}) = SHA-256()


def _default_consistency_verifier() -> ConsistencyVerifier:
    # Imported lazily: merkle.py is a sibling module, and a witness may be handed its own.
    try:
        from pollwatch.evidence.merkle import verify_consistency
    except ImportError as exc:
        raise EvidenceError(
            f"cannot check consistency proofs: pollwatch.evidence.merkle is unavailable ({exc})",
            hint="pass verify_consistency= to Witness",
        ) from None
    return verify_consistency


class _JsonState(MutableMapping[str, tuple[int, bytes]]):
    """Witness state in a JSON file: ``{"version": 1, "logs": {origin: {size, root_hash}}}``.

    Every write replaces the file atomically (temporary file, fsync, rename, fsync of the folder)
    so that a crash leaves the old or the new state, never a torn one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, tuple[int, bytes]] = {}
        self.reload()

    def reload(self) -> None:
        if not self.path.exists():
            self._data = {}
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            logs = raw["logs"]
            if raw.get("version") != 1 or not isinstance(logs, dict):
                raise ValueError("unknown layout")
            data: dict[str, tuple[int, bytes]] = {}
            for origin, entry in logs.items():
                size, root = int(entry["size"]), base64.b64decode(entry["root_hash"], validate=True)
                if size < 0 or len(root) != _ROOT_HASH_SIZE:
                    raise ValueError(f"bad entry for {origin}")
                data[str(origin)] = (size, root)
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            # Never start over silently: an empty state would let a log roll back unnoticed.
            raise EvidenceError(
                f"witness state file {self.path} cannot be read: {exc}",
                hint="restore it from a backup; deleting it makes the witness trust any log anew",
            ) from None
        self._data = data

    def _write(self) -> None:
        payload = {
            "version": 1,
            "logs": {
                origin: {"size": size, "root_hash": base64.b64encode(root).decode("ascii")}
                for origin, (size, root) in sorted(self._data.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.path, payload, indent=2, sort_keys=True, trailing_newline=True, permissions=0o600
        )

    def __getitem__(self, origin: str) -> tuple[int, bytes]:
        return self._data[origin]

    def __setitem__(self, origin: str, value: tuple[int, bytes]) -> None:
        self._data[origin] = value
        self._write()

    def __delitem__(self, origin: str) -> None:
        del self._data[origin]
        self._write()

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes sharing one state file (POSIX ``flock``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the in-process lock still holds
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Witness:
    """A witness: cosigns a log's checkpoints after checking them against the last one it saw.

    ``signer`` is the witness key (cosignature/v1; a plain Ed25519 signer key is used as its
    cosignature/v1 form). ``logs`` are the log verifier keys the witness trusts: a mapping
    ``origin -> verifier(s)``, or verifiers whose names are the origins. ``state`` keeps, per
    origin, the ``(size, root hash)`` last cosigned: a JSON file path (written atomically before
    a cosignature is returned, as c2sp.org/tlog-witness requires), a mutable mapping you keep,
    or nothing (in memory). ``verify_consistency`` checks RFC 9162 consistency proofs and raises
    :class:`VerificationError`; by default :func:`pollwatch.evidence.merkle.verify_consistency`.
    """

    def __init__(
        self,
        signer: Signer,
        logs: Mapping[str, Verifier | Sequence[Verifier]] | Iterable[Verifier],
        *,
        state: str | os.PathLike[str] | MutableMapping[str, tuple[int, bytes]] | None = None,
        verify_consistency: ConsistencyVerifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if signer.key_type != KEY_TYPE_COSIGNATURE_V1:
            signer = signer.for_cosignature()
        self.signer = signer
        self._logs: dict[str, list[Verifier]] = {}
        if isinstance(logs, Mapping):
            for origin, keys in logs.items():
                self._logs[origin] = _log_verifiers(keys)
        else:
            for verifier in _log_verifiers(logs):
                self._logs.setdefault(verifier.name, []).append(verifier)
        if not self._logs:
            raise EvidenceError("a witness needs at least one trusted log key")
        self._state_path: Path | None = None
        self._state: MutableMapping[str, tuple[int, bytes]]
        if state is None:
            self._state = {}
        elif isinstance(state, str | os.PathLike):
            self._state_path = Path(state)
            self._state = _JsonState(self._state_path)
        else:
            self._state = state
        self._verify_consistency = verify_consistency
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The witness key name."""
        return self.signer.name

    def verifier(self) -> Verifier:
        """The witness's cosignature/v1 verifier key, to hand to readers."""
        return self.signer.verifier()

    def last_cosigned(self, origin: str) -> tuple[int, bytes] | None:
        """The ``(size, root hash)`` last cosigned for ``origin``, or None."""
        with self._locked():
            return self._state.get(origin)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if self._state_path is None:
                yield
                return
            with _file_lock(self._state_path.with_name(self._state_path.name + ".lock")):
                assert isinstance(self._state, _JsonState)
                self._state.reload()  # another process may have cosigned meanwhile
                yield

    def cosign(
        self,
        signed_checkpoint: str,
        consistency_proof: Sequence[bytes] = (),
        *,
        old_size: int | None = None,
    ) -> str:
        """Check a signed checkpoint and return it with this witness's cosignature appended.

        Checks, in the order of c2sp.org/tlog-witness ``add-checkpoint``: the origin is a trusted
        log; a trusted log key signed it; ``old_size`` (when given) equals the size last
        cosigned; the size is not smaller than the last cosigned (rollback); at the same size
        the root is the same (fork); otherwise ``consistency_proof`` proves the last cosigned
        tree is a prefix of the new one (RFC 9162 §2.1.4). The proof is empty when the witness
        has not cosigned this log before. The new state is stored before the note is returned.
        """
        body, _ = _split_note(signed_checkpoint)
        claimed = Checkpoint.parse(body)
        keys = self._logs.get(claimed.origin)
        if keys is None:
            raise VerificationError(
                f"witness {self.name}: unknown log origin {claimed.origin!r}",
                hint="add the log's verifier key to the witness's trusted logs",
            )
        checkpoint = verify_checkpoint(signed_checkpoint, keys, origin=claimed.origin)
        proof = [bytes(node) for node in consistency_proof]
        for index, node in enumerate(proof):
            if len(node) != _ROOT_HASH_SIZE:
                raise VerificationError(
                    f"consistency proof node {index} is {len(node)} bytes, expected "
                    f"{_ROOT_HASH_SIZE}"
                )
        with self._locked():
            last = self._state.get(checkpoint.origin)
            self._check_against(checkpoint, last, proof, old_size)
            line = self.signer.signature_line(body, timestamp=int(self._clock()))
            self._state[checkpoint.origin] = (checkpoint.size, checkpoint.root_hash)
        return add_cosignatures(signed_checkpoint, [line])

    def _check_against(
        self,
        checkpoint: Checkpoint,
        last: tuple[int, bytes] | None,
        proof: list[bytes],
        old_size: int | None,
    ) -> None:
        origin, size, root = checkpoint.origin, checkpoint.size, checkpoint.root_hash
        last_size = 0 if last is None else last[0]
        if old_size is not None and old_size != last_size:
            raise VerificationError(
                f"witness {self.name}: request for {origin} says old size {old_size}, but the "
                f"last checkpoint cosigned has size {last_size}",
                hint=f"send a consistency proof from size {last_size}",
            )
        if last is None or last_size == 0:
            # Every tree extends the empty tree; RFC 9162 has no proof from size 0.
            if proof:
                raise VerificationError(
                    f"witness {self.name}: the consistency proof for {origin} must be empty, "
                    "as no earlier non-empty checkpoint was cosigned",
                    hint="send old size 0 and no proof on first contact",
                )
            return
        last_root = last[1]
        if size < last_size:
            raise VerificationError(
                f"witness {self.name}: rollback of {origin}: size {size} is smaller than size "
                f"{last_size} cosigned before",
                hint="a log never shrinks; this checkpoint is stale or the log misbehaves",
            )
        if size == last_size:
            if root != last_root:
                raise VerificationError(
                    f"witness {self.name}: fork of {origin}: size {size} has root "
                    f"{base64.b64encode(root).decode()} but "
                    f"{base64.b64encode(last_root).decode()} was cosigned before",
                    hint="two different trees of one size: keep both checkpoints as evidence",
                )
            if proof:
                raise VerificationError(
                    f"witness {self.name}: the consistency proof for {origin} must be empty "
                    f"between equal sizes ({size})"
                )
            return
        if not proof:
            raise VerificationError(
                f"witness {self.name}: missing consistency proof for {origin} from size "
                f"{last_size} to {size}",
                hint="send the RFC 9162 consistency proof from the size last cosigned",
            )
        check = self._verify_consistency or _default_consistency_verifier()
        try:
            check(last_size, size, last_root, root, proof)
        except EvidenceError as exc:  # VerificationError, or a proof the checker cannot read
            raise VerificationError(
                f"witness {self.name}: {origin} size {size} is not proven consistent with size "
                f"{last_size} cosigned before: {exc.message}",
                hint="a wrong proof, or a fork of the log: keep both checkpoints as evidence",
            ) from None
