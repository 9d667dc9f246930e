"""The evidence archive: files, their log entries, custody, checkpoints, witnesses, timestamps.

One folder (``<home>/evidence``) holds::

    objects/ab/cd/<sha256>          the files, content-addressed and write-once (:mod:`.objects`)
    log/                            the append-only Merkle log of entries (:mod:`.log`)
    keys/log.key, keys/log.pub      the log's Ed25519 signer (mode 0600) and verifier key
    checkpoints/<size>.note         signed checkpoints, with witness cosignatures appended
    timestamps/<size>-<n>.tsr       RFC 3161 tokens over each checkpoint's body
    timestamps/<size>-<n>.tsa.pem   the certificates that came with each token
    archive.json                    the log's origin (its name in checkpoints)

Every entry in the log is canonical JSON (:func:`.log.canonical_json`) with a ``kind``:

* ``item``: a file entered the archive: ``sha256``, ``size``, ``media_type``, ``filename``,
  ``station``, ``device`` (camera or phone), ``capture_time`` and ``clock_source`` as given by
  the submitter, ``submitter``, ``ingest_time`` (the archive's clock, UTC), and for derived copies
  (redacted, transcoded) ``source_item`` and ``derivation``;
* ``custody``: something was done to an item: ``action`` (``access``, ``export``,
  ``redaction``, ``analysis``, ...), ``item``, ``actor``, ``address``, ``reason``, ``time``;
  an export that was logged but produced no bundle is followed by ``export-failed`` entries
  that say why;
* ``maintenance``: what ``pollwatch evidence fsck --repair`` quarantined, where, and why
  (:mod:`.fsck`);
* any other kind, appended by :meth:`EvidenceArchive.append_record` for a capability that
  logs its own facts (``video-event``: a recorder's start, stop, outage, reconnect or gap).

An item entry may carry extra keys beyond the standard ones (``add(..., extra=...)``), e.g. the
``video`` object of a recorded segment (:mod:`pollwatch.video.segments`).

The archive keeps an in-memory index of the parsed log (items by hash, custody by item) and
brings it up to date on each query by parsing only the entries appended since the last one,
by this process or another.

Nothing proceeds on a log that does not verify against its latest signed checkpoint: opening
the archive hands the checkpoint's size to the log (recovery may never remove a signed entry)
and checks the log against its size and root (:meth:`.log.EvidenceLog.check`, cheap after the
first time); any damage raises VerificationError, whose hint names ``pollwatch evidence fsck``
(:mod:`.fsck`). Signing a checkpoint checks again, entries appended since included.

Nothing that touches an item bypasses the log: :meth:`EvidenceArchive.open_item` records the
access before it returns the stream; exports record one custody entry per item before the
bundle's checkpoint is signed, so the bundle proves its own custody entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import os
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.checkpoint import (
    Checkpoint,
    Signer,
    Verifier,
    Witness,
    generate_signer,
    sign_checkpoint,
    verify_checkpoint,
)
from pollwatch.evidence.log import EvidenceLog, canonical_json
from pollwatch.evidence.objects import FilesystemBackend, ObjectBackend
from pollwatch.fileio import atomic_write_bytes

__all__ = ["CustodyEvent", "EvidenceArchive", "ItemRecord", "StoredCheckpoint", "now_utc"]

CUSTODY_ACTIONS = (
    "access",
    "denied",
    "export",
    "export-failed",
    "redaction",
    "transcode",
    "analysis",
    "witness",
    "note",
)


def now_utc() -> str:
    """The current UTC time, ISO 8601 with seconds and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_address() -> str:
    """Where a command-line action comes from: ``local:<hostname>``."""
    return f"local:{socket.gethostname()}"


@dataclass(frozen=True)
class ItemRecord:
    """An item's log entry, as stored, with its index in the log."""

    index: int
    sha256: str
    size: int
    media_type: str
    filename: str
    submitter: str
    ingest_time: str
    station: str | None = None
    device: str | None = None
    capture_time: str | None = None
    clock_source: str | None = None
    source_item: str | None = None
    derivation: str | None = None
    note: str | None = None
    # Keys beyond the standard ones (e.g. a segment's ``video`` object); None when there are none.
    extra: dict[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def from_entry(cls, index: int, entry: dict[str, Any]) -> ItemRecord:
        known = set(cls.__dataclass_fields__) - {"index", "extra"}
        extra = {k: v for k, v in entry.items() if k not in known and k != "kind"}
        return cls(
            index=index,
            extra=extra or None,
            **{k: v for k, v in entry.items() if k in known},
        )


@dataclass(frozen=True)
class CustodyEvent:
    """A custody entry: who did what to which item, when, from where, and why."""

    index: int
    action: str
    item: str
    actor: str
    address: str
    reason: str
    time: str
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, index: int, entry: dict[str, Any]) -> CustodyEvent:
        return cls(
            index=index,
            action=entry["action"],
            item=entry["item"],
            actor=entry["actor"],
            address=entry["address"],
            reason=entry.get("reason", ""),
            time=entry["time"],
            details=dict(entry.get("details", {})),
        )


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint of this archive, with its cosignatures and timestamp tokens."""

    checkpoint: Checkpoint
    note: str
    timestamps: tuple[tuple[bytes, bytes], ...]  # (token DER, certificates PEM)


class EvidenceArchive:
    """A tamper-evident archive in one folder; see the module docstring for the layout."""

    def __init__(self, folder: Path, *, backend: ObjectBackend | None = None) -> None:
        """Open the archive in ``folder`` and check its log against the latest checkpoint.

        A damaged archive is refused (VerificationError); :mod:`.fsck` inspects one without
        opening it.
        """
        self.folder = Path(folder)
        config = self.folder / "archive.json"
        if not config.is_file():
            raise EvidenceError(
                f"no evidence archive in {self.folder}",
                hint="create one with 'pollwatch evidence init'",
            )
        try:
            self.origin: str = json.loads(config.read_text("utf-8"))["origin"]
        except (OSError, ValueError, KeyError) as exc:
            raise EvidenceError(f"{config} is damaged ({exc})") from None
        self.objects = backend or FilesystemBackend(self.folder / "objects")
        self.verifier = Verifier.from_string(
            (self.folder / "keys" / "log.pub").read_text("utf-8").strip()
        )
        latest = self.latest_checkpoint()
        try:
            self.log = EvidenceLog(
                self.folder / "log",
                create=False,
                checkpoint_size=latest.size if latest is not None else 0,
            )
        except VerificationError as error:
            raise _refusal(error) from None
        # The in-memory index of the parsed log, extended by _sync() with new entries only.
        self._index_lock = threading.Lock()
        self._parsed: list[dict[str, Any]] = []
        self._items: list[ItemRecord] = []
        self._first_item: dict[str, ItemRecord] = {}
        self._custody: dict[str, list[CustodyEvent]] = {}
        try:
            self.check(latest)
        except BaseException:
            self.log.close()
            raise

    def latest_checkpoint(self) -> Checkpoint | None:
        """The latest stored checkpoint, its signature verified (None before the first one)."""
        sizes = self.checkpoint_sizes()
        if not sizes:
            return None
        path = self.folder / "checkpoints" / f"{sizes[-1]}.note"
        try:
            return verify_checkpoint(path.read_text("utf-8"), self.verifier)
        except (OSError, UnicodeDecodeError, EvidenceError) as error:
            detail = error.one_line() if isinstance(error, EvidenceError) else str(error)
            raise VerificationError(
                f"the latest checkpoint {path} does not verify: {detail}",
                hint=_FSCK_HINT,
            ) from None

    def check(self, latest: Checkpoint | None = None) -> int:
        """Check the log against ``latest`` (default: the latest stored checkpoint); its size.

        Every entry must match its leaf hash, and the log must hold every entry the checkpoint
        signed, with the signed root (:meth:`.log.EvidenceLog.check`). Raises
        VerificationError naming the damage, with ``pollwatch evidence fsck`` in the hint.
        """
        if latest is None:
            latest = self.latest_checkpoint()
        try:
            if latest is None:
                return self.log.check()
            return self.log.check(latest.size, latest.root_hash)
        except VerificationError as error:
            raise _refusal(error) from None

    # --- creation ------------------------------------------------------------------------
    @classmethod
    def init(cls, folder: Path, origin: str) -> EvidenceArchive:
        """Create an archive with a new Ed25519 log key; refuses to overwrite one."""
        folder = Path(folder)
        if (folder / "archive.json").exists():
            raise EvidenceError(
                f"{folder} already holds an evidence archive",
                hint="an archive is never re-initialised; use another folder",
            )
        skey, vkey = generate_signer(origin)
        (folder / "keys").mkdir(parents=True, exist_ok=True)
        (folder / "checkpoints").mkdir(exist_ok=True)
        (folder / "timestamps").mkdir(exist_ok=True)
        key_path = folder / "keys" / "log.key"
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(skey + "\n")
        (folder / "keys" / "log.pub").write_text(vkey + "\n", encoding="utf-8")
        EvidenceLog(folder / "log", create=True).close()
        (folder / "archive.json").write_text(
            json.dumps({"origin": origin, "format": "pollwatch-evidence/1"}, indent=2) + "\n",
            encoding="utf-8",
        )
        return cls(folder)

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> EvidenceArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def signer(self) -> Signer:
        path = self.folder / "keys" / "log.key"
        try:
            return Signer.from_string(path.read_text("utf-8").strip())
        except OSError as exc:
            raise EvidenceError(
                f"cannot read the log's signer key {path} ({exc.strerror})",
                hint="only the archive's operator can sign checkpoints",
            ) from None

    # --- entries -------------------------------------------------------------------------
    def _sync(self) -> int:
        """Parse the entries appended since the last call (by any process); returns the size."""
        with self._index_lock:
            size = self.log.size
            for index in range(len(self._parsed), size):
                entry = json.loads(self.log.entry(index))
                self._parsed.append(entry)
                kind = entry.get("kind")
                if kind == "item":
                    record = ItemRecord.from_entry(index, entry)
                    self._items.append(record)
                    self._first_item.setdefault(record.sha256, record)
                elif kind == "custody":
                    event = CustodyEvent.from_entry(index, entry)
                    self._custody.setdefault(event.item, []).append(event)
            return size

    def entries(self, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, entry) for every log entry from ``start`` (each a fresh copy)."""
        size = self._sync()
        for index in range(start, size):
            yield index, json.loads(canonical_json(self._parsed[index]))

    def items(self) -> list[ItemRecord]:
        """Every item entry, in log order."""
        self._sync()
        return list(self._items)

    def item(self, sha256: str) -> ItemRecord:
        """The (first) item entry of a file, by its SHA-256 (a unique prefix of 8+ is enough)."""
        wanted = sha256.strip().lower()
        self._sync()
        exact = self._first_item.get(wanted)
        if exact is not None:
            return exact
        matches = (
            [r for s, r in self._first_item.items() if s.startswith(wanted)]
            if len(wanted) >= 8
            else []
        )
        shas = {r.sha256 for r in matches}
        if len(shas) == 1:
            return matches[0]
        if len(shas) > 1:
            raise EvidenceError(f"item prefix {sha256!r} is ambiguous", hint="give more digits")
        raise EvidenceError(
            f"no item {sha256!r} in the archive",
            hint="see 'pollwatch evidence log' for the items (give 8 or more hex digits)",
        )

    def custody_of(self, sha256: str) -> list[CustodyEvent]:
        """Every custody entry about an item, in log order."""
        self._sync()
        return list(self._custody.get(sha256, []))

    def _append(self, entries: Sequence[dict[str, Any]]) -> list[int]:
        return self.log.append([canonical_json(e) for e in entries])

    # --- adding and touching items -------------------------------------------------------
    def add(
        self,
        path: Path,
        *,
        submitter: str,
        media_type: str | None = None,
        station: str | None = None,
        device: str | None = None,
        capture_time: str | None = None,
        clock_source: str | None = None,
        source_item: str | None = None,
        derivation: str | None = None,
        note: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ItemRecord:
        """Store a file (streamed) and enter it in the log; returns its item record.

        A derived copy names its ``source_item`` (which must be in the archive) and how it was
        derived; the original is never changed. ``extra`` adds keys to the entry (JSON values,
        e.g. a segment's ``video`` object); a key that is a standard one is refused.
        """
        path = Path(path)
        if not path.is_file():
            raise EvidenceError(f"{path}: not a file", hint="give the path of a file to archive")
        clashes = sorted(set(extra or {}) & _ITEM_KEYS)
        if clashes:
            raise EvidenceError(
                f"extra item keys {', '.join(clashes)} clash with standard item fields",
                hint="pass standard fields as add() arguments; use other names for extra keys",
            )
        if source_item is not None:
            source_item = self.item(source_item).sha256
        with path.open("rb") as stream:
            info = self.objects.put(stream)
        entry: dict[str, Any] = {
            "kind": "item",
            "sha256": info.sha256,
            "size": info.size,
            "media_type": media_type
            or mimetypes.guess_type(path.name)[0]
            or "application/octet-stream",
            "filename": path.name,
            "submitter": submitter,
            "ingest_time": now_utc(),
        }
        optional = {
            "station": station,
            "device": device,
            "capture_time": capture_time,
            "clock_source": clock_source,
            "source_item": source_item,
            "derivation": derivation,
            "note": note,
        }
        entry.update({k: v for k, v in optional.items() if v is not None})
        entry.update(extra or {})
        [index] = self._append([entry])
        return ItemRecord.from_entry(index, entry)

    def append_record(self, kind: str, fields: Mapping[str, Any]) -> int:
        """Append one entry of a kind other than ``item`` or ``custody``; returns its index.

        The entry is ``{"kind": kind, **fields}`` in canonical JSON; it is durable when this
        returns (:meth:`.log.EvidenceLog.append`).
        """
        if kind in ("item", "custody") or not kind:
            raise EvidenceError(
                f"append_record cannot write entries of kind {kind!r}",
                hint="items go through add(), custody through record_custody()",
            )
        if "kind" in fields:
            raise EvidenceError(
                "append_record fields must not contain 'kind'", hint="pass the kind separately"
            )
        [index] = self._append([{"kind": kind, **fields}])
        return index

    def record_custody(
        self,
        action: str,
        items: Sequence[str],
        *,
        actor: str,
        address: str,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> list[CustodyEvent]:
        """Append one custody entry per item (one durable batch)."""
        if action not in CUSTODY_ACTIONS:
            raise EvidenceError(
                f"unknown custody action {action!r}", hint=f"one of {', '.join(CUSTODY_ACTIONS)}"
            )
        shas = [self.item(s).sha256 for s in items]
        time = now_utc()
        entries = [
            {
                "kind": "custody",
                "action": action,
                "item": sha,
                "actor": actor,
                "address": address,
                "reason": reason,
                "time": time,
                **({"details": details} if details else {}),
            }
            for sha in shas
        ]
        indices = self._append(entries)
        return [CustodyEvent.from_entry(i, e) for i, e in zip(indices, entries, strict=True)]

    @contextlib.contextmanager
    def open_item(
        self, sha256: str, *, actor: str, address: str, reason: str
    ) -> Iterator[BinaryIO]:
        """Record an ``access`` custody entry, then give the item's bytes (verified on close).

        The access is in the log before a byte is read.
        """
        record = self.item(sha256)
        self.record_custody("access", [record.sha256], actor=actor, address=address, reason=reason)
        stream = self.objects.open(record.sha256)
        digest = hashlib.sha256()

        class _Checked:
            def read(self, size: int = -1) -> bytes:
                data = stream.read(size)
                digest.update(data)
                return data

        try:
            yield _Checked()  # type: ignore[misc]
            rest = stream.read()
            digest.update(rest)
        finally:
            stream.close()
        if digest.hexdigest() != record.sha256:
            raise VerificationError(
                f"item {record.sha256[:16]}... changed in storage (read back "
                f"{digest.hexdigest()[:16]}...)",
                hint="restore the object from a replica; the log entry proves the original hash",
            )

    # --- checkpoints ---------------------------------------------------------------------
    def sign_checkpoint(
        self,
        *,
        timestamp_authorities: Sequence[str] = (),
        tsa_trusted_certs: Sequence[bytes] | None = None,
        timeout: float = 10.0,
    ) -> StoredCheckpoint:
        """Sign the current tree head, ask each TSA to time-stamp its body, and store both."""
        from pollwatch.evidence.timestamp import request_timestamp

        # Never sign over damage: the log, entries appended since it was opened included, must
        # verify against the latest checkpoint; the size signed is the size just verified.
        latest = self.latest_checkpoint()
        size = self.check(latest)
        root = self.log.root(size)
        # The check may have trusted its seal for the old root; recomputing it costs nothing
        # now that the tree's nodes are hashed, and a forged seal cannot pass it.
        if latest is not None and self.log.root(latest.size) != latest.root_hash:
            raise _refusal(
                VerificationError(
                    f"the log's root at size {latest.size} is not the one its latest checkpoint "
                    "signed: entries were changed, reordered, inserted or removed"
                )
            )
        checkpoint = Checkpoint(origin=self.origin, size=size, root_hash=root)
        note = sign_checkpoint(checkpoint, self.signer())
        target = self.folder / "checkpoints" / f"{size}.note"
        if target.is_file():
            existing = target.read_text("utf-8")
            if verify_checkpoint(existing, self.verifier) != checkpoint:
                raise VerificationError(
                    f"stored checkpoint {target.name} disagrees with the log at size {size}",
                    hint="the log or the checkpoint was altered; run 'pollwatch evidence verify'",
                )
            note = existing
        else:
            atomic_write_bytes(target, note.encode("utf-8"))
        self.log.check(size, root)  # seals the log at the new checkpoint: the next open is cheap
        digest = hashlib.sha256(checkpoint.body().encode("utf-8")).digest()
        for url in timestamp_authorities:
            token = request_timestamp(url, digest, timeout=timeout, trusted_certs=tsa_trusted_certs)
            number = len(list((self.folder / "timestamps").glob(f"{size}-*.tsr")))
            atomic_write_bytes(self.folder / "timestamps" / f"{size}-{number}.tsr", token.der)
            certificates = _certificates_pem(token.der)
            if certificates:
                atomic_write_bytes(
                    self.folder / "timestamps" / f"{size}-{number}.tsa.pem", certificates
                )
        return self.checkpoint(size)

    def checkpoint_sizes(self) -> list[int]:
        """Sizes of the stored checkpoints, ascending."""
        return sorted(int(p.stem) for p in (self.folder / "checkpoints").glob("*.note"))

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint:
        """A stored checkpoint (default: the latest), verified against the log key."""
        sizes = self.checkpoint_sizes()
        if not sizes:
            raise EvidenceError(
                "the archive has no checkpoint yet", hint="run 'pollwatch evidence checkpoint'"
            )
        size = sizes[-1] if size is None else size
        path = self.folder / "checkpoints" / f"{size}.note"
        if not path.is_file():
            raise EvidenceError(f"no checkpoint of size {size}", hint=f"sizes: {sizes}")
        note = path.read_text("utf-8")
        checkpoint = verify_checkpoint(note, self.verifier)
        tokens = []
        for token_path in sorted((self.folder / "timestamps").glob(f"{size}-*.tsr")):
            pem = token_path.with_suffix(".tsa.pem")
            tokens.append((token_path.read_bytes(), pem.read_bytes() if pem.is_file() else b""))
        return StoredCheckpoint(checkpoint=checkpoint, note=note, timestamps=tuple(tokens))

    def witness(self, witness: Witness, *, size: int | None = None) -> StoredCheckpoint:
        """Have ``witness`` cosign a checkpoint (default: the latest) and store the cosignature.

        The witness checks the consistency proof from the last checkpoint it cosigned.
        """
        stored = self.checkpoint(size)
        last = witness.last_cosigned(self.origin)
        proof: list[bytes] = []
        if last is not None and 0 < last[0] < stored.checkpoint.size:
            proof = self.log.consistency_proof(last[0], stored.checkpoint.size)
        note = witness.cosign(stored.note, proof)
        keys = self.folder / "keys" / "witnesses.txt"
        known = keys.read_text("utf-8").splitlines() if keys.is_file() else []
        key = witness.verifier().to_string()
        if key not in known:
            atomic_write_bytes(keys, "".join(f"{k}\n" for k in [*known, key]).encode("utf-8"))
        atomic_write_bytes(
            self.folder / "checkpoints" / f"{stored.checkpoint.size}.note", note.encode("utf-8")
        )
        return self.checkpoint(stored.checkpoint.size)

    # --- proofs and verification -----------------------------------------------------------
    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        return self.log.inclusion_proof(index, size)

    def verify(self) -> tuple[int, int]:
        """Check the log against the latest checkpoint and every object against its hash.

        Returns (log size, objects checked); raises :class:`VerificationError` on any damage.
        """
        sizes = self.checkpoint_sizes()
        if sizes:
            stored = self.checkpoint(sizes[-1])
            self.log.verify(
                expected_size=stored.checkpoint.size,
                expected_root=stored.checkpoint.root_hash,
                allow_growth=True,
            )
            # The log's leaves are now bound to the latest signed root; every older signed
            # checkpoint must be a prefix of that same log (no rewritten history).
            for older in sizes[:-1]:
                if self.checkpoint(older).checkpoint.root_hash != self.log.root(older):
                    raise VerificationError(
                        f"checkpoint of size {older} does not match the log's first {older} "
                        "entries: the history was rewritten",
                        hint="compare with copies of the checkpoint held by witnesses",
                    )
        else:
            self.log.verify()
        checked = 0
        for record in self.items():
            self.objects.verify(record.sha256)
            checked += 1
        return self.log.size, checked


_FSCK_HINT = (
    "pollwatch uses no archive whose log does not verify against its latest checkpoint; "
    "run 'pollwatch evidence fsck' to see what is damaged, then restore the log folder from a "
    "backup or an evidence bundle; pollwatch changed nothing"
)


def _refusal(error: VerificationError) -> VerificationError:
    """``error`` with the hint every refusal to use a damaged archive gives."""
    return VerificationError(error.message, hint=_FSCK_HINT)


_ITEM_KEYS = frozenset(
    {"kind", "index", "extra"} | (set(ItemRecord.__dataclass_fields__) - {"index", "extra"})
)


def _certificates_pem(token_der: bytes) -> bytes:
    """The certificates embedded in a time-stamp token, as PEM (empty when there are none)."""
    from asn1crypto import cms, pem  # type: ignore[import-untyped]

    info = cms.ContentInfo.load(token_der)
    certificates = info["content"]["certificates"]
    if not certificates:
        return b""
    return b"".join(pem.armor("CERTIFICATE", choice.chosen.dump()) for choice in certificates)
