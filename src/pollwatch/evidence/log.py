"""The append-only evidence log: entries in an RFC 6962 Merkle tree, on disk, crash safe.

Definitions:

* An entry is a byte string, normally the canonical JSON (:func:`canonical_json`) of an item's
  or a custody event's metadata. Entry ``i``'s leaf hash is ``SHA-256(0x00 || entry)`` and the
  log's root at size n is ``MTH`` of its first n entries (RFC 6962 §2.1, RFC 9162 §2.1; see
  :mod:`pollwatch.evidence.merkle`).
* Files in the log folder::

      entries.bin    magic b"PWLOG01\\n", then one record per entry:
                     4-byte big-endian payload length | payload | 32-byte leaf hash
      entries.idx    magic b"PWIDX01\\n", then 40 bytes per entry:
                     8-byte big-endian offset of its record in entries.bin | 32-byte leaf hash
      lock           fcntl.flock target: exclusive for writers, shared for readers
      verified.json  the seal of the last :meth:`EvidenceLog.check`: a cache, never evidence
      discarded/     bytes that recovery removed from the live files, kept, never deleted

  ``entries.bin`` is the source of truth; ``entries.idx`` is derived from it and lets a log
  open without reading every record.
* Acknowledgement: :meth:`EvidenceLog.append` writes the records, fsyncs ``entries.bin``,
  writes their index entries, fsyncs ``entries.idx``, and only then returns the new indices.
  An entry whose index was returned survives any crash of the process or the machine.
* Recovery (every open, and every append before writing): a partial trailing index entry is
  cut; complete, intact records after the last indexed one (written, but their writer died
  before indexing them) are indexed; whatever follows them (a torn record, an append that was
  never acknowledged) is moved to ``discarded/`` and cut from ``entries.bin``. Recovery never
  touches a record the index lists. If the index disagrees with the data (damaged, deleted,
  longer), a copy goes to ``discarded/`` and it is rebuilt from ``entries.bin``, which must then
  parse cleanly up to at most one torn last record; otherwise opening raises
  VerificationError and changes nothing.
* Signed entries are never recovered away: given ``checkpoint_size`` (the size of the latest
  signed checkpoint), recovery that would leave fewer entries raises VerificationError naming
  the missing range and changes nothing. Only an unacknowledged tail beyond the signed size is
  recoverable; anything a checkpoint covers must be present and match its root.
* Concurrency: writers in any number of processes take an exclusive ``flock`` on ``lock``
  around recovery and append, so they re-read the current size under the lock; readers take
  a shared lock to pick up other processes' appends. Entries never move once indexed.
* :meth:`EvidenceLog.verify` re-reads every record, recomputes every leaf hash, and compares
  them with the stored hashes and the index; given a trusted checkpoint's size and root, it
  checks the size and recomputes the root at that size. A bit flip, truncation, reordering,
  insertion or deletion makes it raise VerificationError (or opening raises first).
* :meth:`EvidenceLog.check` is the same verification made cheap enough for every open: a
  successful check writes a seal (``verified.json``: the entry count, the SHA-256 of the data
  file up to there and of the leaf hashes, and the checkpoint whose root it matched). The next
  check hashes the sealed prefix in one pass (no parsing, no per-record hashing) and verifies
  record by record only what was appended since; any difference falls back to the full walk.
  The seal is a cache anyone with write access can forge: :meth:`verify` never reads it, and a
  checkpoint is signed only after the tree's root at the previous checkpoint is recomputed.
* :func:`inspect_log` reads the files without changing anything and reports every damaged
  entry, what it should hash to, and what recovery would do (``pollwatch evidence fsck``).

Tamper evidence rests on signed checkpoints (:mod:`pollwatch.evidence.checkpoint`) and their
witnesses, not on these files: someone with write access can rewrite the folder into a
different, internally consistent log. What they cannot do is make it match a size and root
that the log signed and witnesses cosigned earlier, which is what ``verify(expected_size,
expected_root)`` and consistency proofs check.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.merkle import HASH_SIZE, MerkleTree, leaf_hash
from pollwatch.fileio import atomic_write_json, fsync_directory

__all__ = [
    "DATA_MAGIC",
    "INDEX_MAGIC",
    "MAX_ENTRY_SIZE",
    "EntryDamage",
    "EvidenceLog",
    "LogInspection",
    "Recovery",
    "canonical_json",
    "inspect_log",
    "missing_entries_error",
]

DATA_MAGIC = b"PWLOG01\n"
"""First bytes of ``entries.bin`` (format version 1)."""
INDEX_MAGIC = b"PWIDX01\n"
"""First bytes of ``entries.idx`` (format version 1)."""
MAX_ENTRY_SIZE = 16 << 20
"""Largest entry accepted, in bytes: entries are metadata; files go to the object store."""

DATA_FILE = "entries.bin"
INDEX_FILE = "entries.idx"
LOCK_FILE = "lock"
DISCARDED_FOLDER = "discarded"
SEAL_FILE = "verified.json"
SEAL_FORMAT = "pollwatch-log-seal/1"

_HEADER = 4
_INDEX_ENTRY = 8 + HASH_SIZE
_START = len(DATA_MAGIC)  # offset of the first record
_READ_CHUNK = 8 << 20
_RESTORE_HINT = (
    "restore the log folder from a backup or an evidence bundle; pollwatch changed nothing"
)


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON bytes: sorted keys, no spaces, UTF-8, non-ASCII kept.

    Equal values always give equal bytes, so equal metadata gives equal leaf hashes. NaN and
    infinities are refused (JSON has none). This is not RFC 8785 (JCS): floats use Python's
    shortest repr, so keep metadata to strings, integers, booleans, null, lists and objects.
    """
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise EvidenceError(
            f"cannot encode the entry as canonical JSON: {error}",
            hint="entries hold strings, integers, booleans, null, lists and string-keyed dicts",
        ) from None
    return text.encode("utf-8")


def _check_size_argument(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EvidenceError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def missing_entries_error(folder: Path, present: int, signed: int) -> VerificationError:
    """The one-line error for a log that holds fewer entries than a signed checkpoint covers."""
    lost = f"entry {present} is" if signed - present == 1 else f"entries {present}-{signed - 1} are"
    return VerificationError(
        f"the log in {folder} holds {present} entries but its latest checkpoint signed {signed}: "
        f"{lost} missing",
        hint="the log was truncated or its files replaced; run 'pollwatch evidence fsck' to "
        "see what is left, and restore the log folder from a backup or an evidence bundle; "
        "pollwatch changed nothing",
    )


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the last recovery did (all zeros and False when the files were clean)."""

    index_bytes_dropped: int = 0
    """Bytes of a partial trailing index entry that were cut."""
    index_rebuilt: bool = False
    """Whether the index disagreed with the data and was rebuilt (the old one is kept)."""
    entries_indexed: int = 0
    """Intact records found after the last indexed one and added to the index."""
    bytes_discarded: int = 0
    """Bytes after the last intact record (never acknowledged) moved out of the data file."""
    saved: tuple[str, ...] = ()
    """Files under ``discarded/`` holding what was moved out."""

    @property
    def clean(self) -> bool:
        """True when recovery had nothing to do."""
        return not (
            self.index_bytes_dropped
            or self.index_rebuilt
            or self.entries_indexed
            or self.bytes_discarded
        )


@dataclass(slots=True)
class _Scan:
    """Records parsed from the data file: offsets and leaf hashes, where and why it stopped."""

    offsets: list[int]
    leaves: list[bytes]
    stop: int
    problem: str | None = None
    torn: bool = False


@dataclass(frozen=True, slots=True)
class _Seal:
    """What the last successful :meth:`EvidenceLog.check` verified (``verified.json``)."""

    entries: int
    data_bytes: int  # end of entry ``entries - 1`` in the data file
    data_sha256: str  # of the data file's bytes [0, data_bytes)
    leaves_sha256: str  # of the first ``entries`` leaf hashes, concatenated
    checkpoint: tuple[int, bytes] | None  # (size, root) the log was found to match


def _hash_range(fd: int, start: int, end: int, digest: Any) -> None:
    """Feed bytes [start, end) of ``fd`` to ``digest`` in large reads."""
    position = start
    while position < end:
        chunk = _pread_exact(fd, min(_READ_CHUNK, end - position), position)
        if not chunk:
            raise VerificationError(f"a log file ended at byte {position}, before byte {end}")
        digest.update(chunk)
        position += len(chunk)


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


class _RecordReader:
    """Sequential reads of records from the data file, in large chunks (bounded memory)."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd = fd
        self._end = end
        self._buffer = b""
        self._base = start  # file offset of _buffer[0]
        self._pos = 0

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _available(self, size: int) -> bool:
        if len(self._buffer) - self._pos >= size:
            return True
        tail = self._buffer[self._pos :]
        self._base += self._pos
        self._pos = 0
        wanted = min(max(size - len(tail), _READ_CHUNK), self._end - self._base - len(tail))
        more = _pread_exact(self._fd, wanted, self._base + len(tail)) if wanted > 0 else b""
        self._buffer = tail + more
        return len(self._buffer) >= size

    def next(self) -> tuple[int, bytes, bytes] | str:
        """(offset, payload, stored leaf hash), or a string saying why no record is here."""
        offset = self.offset
        if not self._available(_HEADER):
            left = self._end - offset
            return f"torn:{left} bytes at byte {offset} are not a whole record header"
        length = int.from_bytes(self._buffer[self._pos : self._pos + _HEADER], "big")
        if length > MAX_ENTRY_SIZE:
            return f"bad:record at byte {offset} claims {length} bytes, over the limit"
        total = _HEADER + length + HASH_SIZE
        if not self._available(total):
            return f"torn:record at byte {offset} claims {length} bytes but the file ends"
        start = self._pos + _HEADER
        payload = self._buffer[start : start + length]
        stored = self._buffer[start + length : start + length + HASH_SIZE]
        self._pos += total
        return offset, payload, stored


class EvidenceLog:
    """An append-only, crash-safe log of entries with RFC 6962 roots and proofs.

    ``EvidenceLog(folder)`` creates the folder and files if needed (``create=False`` refuses
    to) and recovers from any interrupted append. Several processes may hold the same log open
    and append concurrently. Use it as a context manager, or call :meth:`close`.

    ``checkpoint_size`` is the size of the latest signed checkpoint, if the caller knows one:
    recovery never removes an entry below it (it raises VerificationError naming the missing
    entries instead, and changes nothing). Once open, the entries it has read are protected
    anyway: recovery never removes an entry this instance has loaded.
    """

    def __init__(
        self, folder: Path | str, *, create: bool = True, checkpoint_size: int = 0
    ) -> None:
        self.folder = Path(folder)
        self._closed = True
        self._signed = _check_size_argument("checkpoint_size", checkpoint_size)
        if not self.folder.is_dir():
            if not create:
                raise EvidenceError(
                    f"no evidence log at {self.folder}",
                    hint="check the path, or initialise the archive first",
                )
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise EvidenceError(
                    f"cannot create the evidence log folder {self.folder}: {error.strerror}",
                    hint="choose a writable folder",
                ) from None
        elif not create and not (self.folder / DATA_FILE).exists():
            raise EvidenceError(
                f"{self.folder} holds no evidence log ({DATA_FILE} is missing)",
                hint="check the path, or initialise the archive first",
            )
        try:
            self._lock_fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            self._data_fd = os.open(self.folder / DATA_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            self._index_fd = os.open(self.folder / INDEX_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise EvidenceError(
                f"cannot open the evidence log in {self.folder}: {error.strerror}",
                hint="check that the folder and its files are readable and writable",
            ) from None
        self._closed = False
        self._mutex = threading.RLock()
        self._offsets: array[int] = array("Q")
        self._tree = MerkleTree()
        self._end = _START  # end of the last indexed record in the data file
        self._index_end = len(INDEX_MAGIC)
        try:
            with self._flock(exclusive=True):
                self.recovery = self._recover()
        except BaseException:
            self.close()
            raise

    # -- plumbing ------------------------------------------------------------------------

    def __enter__(self) -> EvidenceLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EvidenceLog({str(self.folder)!r}, size={self._tree.size})"

    def close(self) -> None:
        """Release the files. Acknowledged appends are already on disk."""
        if self._closed:
            return
        self._closed = True
        for fd in (self._index_fd, self._data_fd, self._lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _check_open(self) -> None:
        if self._closed:
            raise EvidenceError(f"the evidence log {self.folder} is closed", hint="open it again")

    def _missing(self, present: int) -> VerificationError:
        """The error for a log that holds fewer entries than its latest checkpoint signed."""
        return missing_entries_error(self.folder, present, self._signed)

    @contextlib.contextmanager
    def _flock(self, *, exclusive: bool) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- recovery ------------------------------------------------------------------------

    def _load_index_entries(self, raw: bytes) -> None:
        """Add index entries (40 bytes each) to the in-memory offsets and tree."""
        count = len(raw) // _INDEX_ENTRY
        if not count:
            return
        offsets = array("Q")
        offsets.frombytes(raw)
        if offsets.itemsize != 8:  # pragma: no cover - 'Q' is 8 bytes on every CPython
            raise EvidenceError("this platform has no 8-byte unsigned integer array type")
        if sys.byteorder == "little":
            offsets.byteswap()
        self._offsets.extend(offsets[:: _INDEX_ENTRY // 8])
        # Gather the 32-byte hashes column by column with strided slices: 32 C-level copies
        # instead of a Python loop over a million entries.
        leaves = bytearray(count * HASH_SIZE)
        for column in range(HASH_SIZE):
            leaves[column::HASH_SIZE] = raw[8 + column :: _INDEX_ENTRY]
        self._tree.extend(leaves)

    def _record_at(self, offset: int, data_size: int) -> tuple[bytes, bytes] | None:
        """(payload, stored leaf hash) of the record at ``offset`` if it is whole, else None."""
        if offset < _START or offset + _HEADER > data_size:
            return None
        length = int.from_bytes(_pread_exact(self._data_fd, _HEADER, offset), "big")
        if length > MAX_ENTRY_SIZE or offset + _HEADER + length + HASH_SIZE > data_size:
            return None
        body = _pread_exact(self._data_fd, length + HASH_SIZE, offset + _HEADER)
        return body[:length], body[length:]

    def _indexed_end(self, offset: int, expected_leaf: bytes, data_size: int) -> int | None:
        """End of the indexed record at ``offset`` if it matches its leaf hash, else None."""
        record = self._record_at(offset, data_size)
        if record is None:
            return None
        payload, stored = record
        if stored != expected_leaf or leaf_hash(payload) != expected_leaf:
            return None
        return offset + _HEADER + len(payload) + HASH_SIZE

    def _scan(self, start: int, data_size: int) -> _Scan:
        """Parse intact records from ``start`` until the end or the first bad one."""
        reader = _RecordReader(self._data_fd, start, data_size)
        scan = _Scan([], [], start)
        while reader.offset < data_size:
            item = reader.next()
            if isinstance(item, str):
                kind, _, scan.problem = item.partition(":")
                scan.torn = kind == "torn"
                break
            offset, payload, stored = item
            computed = leaf_hash(payload)
            if stored != computed:
                scan.problem = f"record at byte {offset} does not match its stored leaf hash"
                break
            scan.offsets.append(offset)
            scan.leaves.append(computed)
            scan.stop = reader.offset
        return scan

    def _save_aside(self, name: str, fd: int, start: int, end: int) -> str:
        """Copy bytes [start, end) of ``fd`` into ``discarded/`` durably; returns the path."""
        folder = self.folder / DISCARDED_FOLDER
        folder.mkdir(exist_ok=True)
        target = folder / f"{name}-at-{start}-{time.time_ns()}.bin"
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            position = start
            while position < end:
                chunk = _pread_exact(fd, min(_READ_CHUNK, end - position), position)
                if not chunk:
                    break
                _write_all(out, chunk, position - start)
                position += len(chunk)
            os.fsync(out)
        finally:
            os.close(out)
        fsync_directory(folder)
        return str(target)

    def _recover(self) -> Recovery:
        """Bring the files to a clean state; caller holds the exclusive lock."""
        data_size = os.fstat(self._data_fd).st_size
        index_size = os.fstat(self._index_fd).st_size
        if data_size == 0 and index_size <= len(INDEX_MAGIC) and self._tree.size == 0:
            if self._signed:
                raise self._missing(0)
            # A new log (or one whose creator died before writing anything).
            _write_all(self._data_fd, DATA_MAGIC, 0)
            os.ftruncate(self._data_fd, len(DATA_MAGIC))
            os.fsync(self._data_fd)
            _write_all(self._index_fd, INDEX_MAGIC, 0)
            os.ftruncate(self._index_fd, len(INDEX_MAGIC))
            os.fsync(self._index_fd)
            fsync_directory(self.folder)
            return Recovery()
        if _pread_exact(self._data_fd, len(DATA_MAGIC), 0) != DATA_MAGIC:
            raise VerificationError(
                f"{self.folder / DATA_FILE} is empty or not an evidence log data file (it "
                f"does not start with {DATA_MAGIC!r})",
                hint=_RESTORE_HINT,
            )
        consistent = _pread_exact(self._index_fd, len(INDEX_MAGIC), 0) == INDEX_MAGIC
        # Fast path: nothing changed since this instance last looked.
        if consistent and index_size == self._index_end and data_size == self._end:
            return Recovery()

        if data_size < self._end:
            raise VerificationError(
                f"{self.folder / DATA_FILE} shrank to {data_size} bytes while the log was open "
                f"(its entries end at byte {self._end})",
                hint=_RESTORE_HINT,
            )
        saved: list[str] = []
        dropped = 0
        if consistent:
            whole = self._whole_index_size()
            if whole < self._index_end:
                raise VerificationError(
                    f"{self.folder / INDEX_FILE} shrank from {self._index_end} to {index_size} "
                    "bytes while the log was open",
                    hint="another program changed the log; close and reopen it, then verify",
                )
            if whole < index_size:
                # A writer died while writing index entries: never acknowledged. Cut once
                # nothing below refuses the files (a refusal changes nothing).
                dropped = index_size - whole
                index_size = whole
            if index_size > self._index_end:
                raw = _pread_exact(self._index_fd, index_size - self._index_end, self._index_end)
                last_offset = int.from_bytes(raw[-_INDEX_ENTRY:][:8], "big")
                last_leaf = raw[-HASH_SIZE:]
                first_ok = self._tree.size > 0 or int.from_bytes(raw[:8], "big") == _START
                end = self._indexed_end(last_offset, last_leaf, data_size)
                if first_ok and end is not None and last_offset >= self._end:
                    self._load_index_entries(raw)
                    self._end = end
                    self._index_end = index_size
                else:
                    consistent = False
        if not consistent:
            return self._rebuild_index(dropped)

        scan = self._scan(self._end, data_size)
        indexed = len(scan.offsets)
        if self._tree.size + indexed < self._signed:
            # The records a signed checkpoint covers are not all here: that is damage, never
            # an unacknowledged append. Cut nothing.
            raise self._missing(self._tree.size + indexed)
        if dropped:
            os.ftruncate(self._index_fd, self._index_end)
            os.fsync(self._index_fd)
        discarded = data_size - scan.stop
        if discarded:
            # Bytes after the last intact record were never acknowledged: their index
            # entries were never written. Keep a copy; cut them from the live file.
            saved.append(self._save_aside("data-tail", self._data_fd, scan.stop, data_size))
            os.ftruncate(self._data_fd, scan.stop)
            os.fsync(self._data_fd)
        if indexed:
            self._append_index(scan.offsets, scan.leaves)
            self._end = scan.stop
        return Recovery(
            index_bytes_dropped=dropped,
            entries_indexed=indexed,
            bytes_discarded=discarded,
            saved=tuple(saved),
        )

    def _rebuild_index(self, dropped: int) -> Recovery:
        """Re-derive the index from a data file that must parse cleanly (one torn end at most)."""
        if self._tree.size:
            raise VerificationError(
                f"{self.folder / INDEX_FILE} no longer agrees with the entries this log has "
                "already read",
                hint="another program changed the log; close and reopen it, then verify",
            )
        data_size = os.fstat(self._data_fd).st_size
        scan = self._scan(_START, data_size)
        if scan.problem is not None and not scan.torn:
            raise VerificationError(
                f"{self.folder / DATA_FILE} is damaged: {scan.problem} (entry "
                f"{len(scan.offsets)}), and {INDEX_FILE} disagrees with it",
                hint=_RESTORE_HINT,
            )
        if len(scan.offsets) < self._signed:
            raise self._missing(len(scan.offsets))
        old_index_size = os.fstat(self._index_fd).st_size
        saved = []
        if old_index_size:
            saved.append(self._save_aside("index", self._index_fd, 0, old_index_size))
        discarded = data_size - scan.stop
        if discarded:
            saved.append(self._save_aside("data-tail", self._data_fd, scan.stop, data_size))
            os.ftruncate(self._data_fd, scan.stop)
            os.fsync(self._data_fd)
        os.ftruncate(self._index_fd, 0)
        _write_all(self._index_fd, INDEX_MAGIC, 0)
        self._index_end = len(INDEX_MAGIC)
        self._append_index(scan.offsets, scan.leaves)
        self._end = scan.stop
        return Recovery(
            index_bytes_dropped=dropped,
            index_rebuilt=True,
            entries_indexed=len(scan.offsets),
            bytes_discarded=discarded,
            saved=tuple(saved),
        )

    def _append_index(self, offsets: Sequence[int], leaves: Sequence[bytes]) -> None:
        raw = b"".join(
            offset.to_bytes(8, "big") + leaf for offset, leaf in zip(offsets, leaves, strict=True)
        )
        _write_all(self._index_fd, raw, self._index_end)
        os.fsync(self._index_fd)
        self._index_end += len(raw)
        self._offsets.extend(offsets)
        self._tree.extend(b"".join(leaves))

    def _whole_index_size(self) -> int:
        """Size of the index file without a partial trailing entry."""
        size = os.fstat(self._index_fd).st_size - len(INDEX_MAGIC)
        return len(INDEX_MAGIC) + max(0, size) // _INDEX_ENTRY * _INDEX_ENTRY

    def refresh(self) -> int:
        """Pick up entries appended by other processes; returns the size."""
        with self._mutex:
            self._check_open()
            if self._whole_index_size() > self._index_end:
                with self._flock(exclusive=False):
                    self._load_appended()
            return self._tree.size

    def _load_appended(self) -> None:
        """Load index entries appended by other processes; caller holds a lock."""
        # Indexed entries are final (their data was fsynced first), so a reader may load
        # them without recovering anything.
        whole = self._whole_index_size()
        if whole <= self._index_end:
            return
        raw = _pread_exact(self._index_fd, whole - self._index_end, self._index_end)
        if raw:
            self._load_index_entries(raw)
            last = self._offsets[-1]
            record = self._record_at(last, os.fstat(self._data_fd).st_size)
            if record is None:
                raise VerificationError(
                    f"index entry {len(self._offsets) - 1} points past the end of "
                    f"{self.folder / DATA_FILE}",
                    hint=_RESTORE_HINT,
                )
            self._end = last + _HEADER + len(record[0]) + HASH_SIZE
            self._index_end = whole

    # -- writing -------------------------------------------------------------------------

    def append(self, entries: Sequence[bytes]) -> list[int]:
        """Append a batch of entries durably; returns their indices once they are on disk.

        The records are written and fsynced, then their index entries are written and
        fsynced, all under an exclusive lock shared with other processes. A batch cut short
        by a crash may be kept in part (the intact records) but was never acknowledged.
        """
        if isinstance(entries, bytes | bytearray | str):
            raise EvidenceError(
                "append() takes a sequence of entries, not one entry",
                hint="wrap a single entry in a list: log.append([entry])",
            )
        payloads = []
        for position, entry in enumerate(entries):
            if not isinstance(entry, bytes | bytearray | memoryview):
                raise EvidenceError(
                    f"entry {position} of the batch is {type(entry).__name__}, not bytes",
                    hint="encode metadata with canonical_json(value)",
                )
            payload = bytes(entry)
            if len(payload) > MAX_ENTRY_SIZE:
                raise EvidenceError(
                    f"entry {position} of the batch has {len(payload)} bytes, more than the "
                    f"{MAX_ENTRY_SIZE} a log entry may hold",
                    hint="store large content in the object store and log its hash",
                )
            payloads.append(payload)
        if not payloads:
            return []
        leaves = [leaf_hash(payload) for payload in payloads]
        records = b"".join(
            len(payload).to_bytes(_HEADER, "big") + payload + leaf
            for payload, leaf in zip(payloads, leaves, strict=True)
        )
        with self._mutex:
            self._check_open()
            with self._flock(exclusive=True):
                self._recover()
                first = self._tree.size
                offsets = []
                position = self._end
                for payload in payloads:
                    offsets.append(position)
                    position += _HEADER + len(payload) + HASH_SIZE
                try:
                    _write_all(self._data_fd, records, self._end)
                    os.fsync(self._data_fd)
                    self._append_index(offsets, leaves)
                    self._end = position
                except OSError as error:
                    raise EvidenceError(
                        f"cannot append to the evidence log in {self.folder}: {error.strerror}",
                        hint="free disk space or fix permissions; nothing was acknowledged, "
                        "and the next append recovers the files",
                    ) from None
        return list(range(first, first + len(payloads)))

    # -- reading -------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of entries, including those appended by other processes until now."""
        return self.refresh()

    def _check_index(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise EvidenceError(f"an entry index must be an integer, got {index!r}")
        if index < 0 or (index >= self._tree.size and index >= self.refresh()):
            raise EvidenceError(
                f"entry {index} does not exist: the log in {self.folder} has "
                f"{self._tree.size} entries",
                hint="entry indices start at 0 and are smaller than the log size",
            )

    def entry(self, index: int) -> bytes:
        """Entry ``index``, checked against its leaf hash (VerificationError if damaged)."""
        with self._mutex:
            self._check_open()
            self._check_index(index)
            offset = self._offsets[index]
            expected = self._tree.leaf(index)
            record = self._record_at(offset, os.fstat(self._data_fd).st_size)
            if record is None or record[1] != expected or leaf_hash(record[0]) != expected:
                raise VerificationError(
                    f"entry {index} (byte {offset} of {self.folder / DATA_FILE}) does not match "
                    "its leaf hash",
                    hint=_RESTORE_HINT,
                )
            return record[0]

    def leaf_hash(self, index: int) -> bytes:
        """The RFC 6962 leaf hash of entry ``index``."""
        with self._mutex:
            self._check_open()
            self._check_index(index)
            return self._tree.leaf(index)

    def root(self, size: int | None = None) -> bytes:
        """The Merkle root of the first ``size`` entries (default: all of them)."""
        with self._mutex:
            self._check_open()
            self.refresh()
            return self._tree.root(size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the log at ``size`` (default: now)."""
        with self._mutex:
            self._check_open()
            self.refresh()
            return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: now)."""
        with self._mutex:
            self._check_open()
            self.refresh()
            return self._tree.consistency_proof(old_size, new_size)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        for index in range(self.size):
            yield self.entry(index)

    # -- verification --------------------------------------------------------------------

    def verify(
        self,
        expected_size: int | None = None,
        expected_root: bytes | None = None,
        *,
        allow_growth: bool = False,
    ) -> int:
        """Re-read every record and recompute every leaf hash (and the root); returns the size.

        Checks that each record parses, that its payload hashes to its stored leaf hash and to
        the index's, that the index's offsets match the records, and that this instance's view
        agrees with the files. With ``expected_size`` the log must hold exactly that many
        entries (at least that many with ``allow_growth``, when checking an older
        checkpoint); with ``expected_root`` the root recomputed from the re-read entries at
        that size must match it. Raises VerificationError naming the first problem.
        """
        with self._mutex:
            self._check_open()
            with self._flock(exclusive=False):
                size, leaves = self._verify_files()
            known = self._tree.leaf_hashes()
            if known != leaves[: len(known)]:
                raise VerificationError(
                    f"the files in {self.folder} changed under this open log: the leaf hashes "
                    "read at open differ from those on disk now",
                    hint=_RESTORE_HINT,
                )
        if expected_size is not None:
            if isinstance(expected_size, bool) or not isinstance(expected_size, int):
                raise EvidenceError(f"expected_size must be an integer, got {expected_size!r}")
            if size < expected_size or (size > expected_size and not allow_growth):
                raise VerificationError(
                    f"the log in {self.folder} has {size} entries, the trusted checkpoint says "
                    f"{expected_size}",
                    hint="entries were removed or added outside pollwatch; "
                    + _RESTORE_HINT.split(";")[0],
                )
        if expected_root is not None:
            at = size if expected_size is None else expected_size
            computed = MerkleTree(leaves).root(at)
            if computed != bytes(expected_root):
                raise VerificationError(
                    f"the log's root at size {at} is {computed.hex()}, the trusted checkpoint "
                    f"says {bytes(expected_root).hex()}",
                    hint="entries were changed, reordered, inserted or removed; "
                    + _RESTORE_HINT.split(";")[0],
                )
        return size

    def check(self, checkpoint_size: int = 0, checkpoint_root: bytes | None = None) -> int:
        """Verify the log against a trusted checkpoint as :meth:`verify` does, cheaply.

        The log must hold at least ``checkpoint_size`` entries, every record must match its
        stored leaf hash and the index, and with ``checkpoint_root`` the root at
        ``checkpoint_size`` must be that root. What the last successful check verified (its
        seal, ``verified.json``) is re-checked by one SHA-256 pass over that prefix of the
        data file and over the leaf hashes this instance holds; entries appended since are
        walked record by record; then the seal is renewed. A missing, stale or disagreeing
        seal means a full walk. Returns the size; raises VerificationError naming the first
        problem and changes nothing but the seal.
        """
        signed = _check_size_argument("checkpoint_size", checkpoint_size)
        root = None if checkpoint_root is None else bytes(checkpoint_root)
        with self._mutex:
            self._check_open()
            with self._flock(exclusive=False):
                self._load_appended()
                size = self._tree.size
                if size < signed:
                    raise missing_entries_error(self.folder, size, signed)
                leaves = self._tree.leaf_hashes()
                seal = self._read_seal(size)
                data_digest, leaves_digest = hashlib.sha256(), hashlib.sha256()
                first = 0
                if seal is not None:
                    _hash_range(self._data_fd, 0, seal.data_bytes, data_digest)
                    leaves_digest.update(memoryview(leaves)[: seal.entries * HASH_SIZE])
                    if (data_digest.hexdigest(), leaves_digest.hexdigest()) == (
                        seal.data_sha256,
                        seal.leaves_sha256,
                    ):
                        first = seal.entries
                    else:  # changed since it was sealed: walk everything
                        seal = None
                        data_digest, leaves_digest = hashlib.sha256(), hashlib.sha256()
                count, walked = self._verify_files(first)
                if count != size or walked != leaves[first * HASH_SIZE :]:
                    raise VerificationError(
                        f"the files in {self.folder} changed under this open log: the leaf "
                        "hashes read at open differ from those on disk now",
                        hint=_RESTORE_HINT,
                    )
                anchor = None if root is None else (signed, root)
                if root is not None and (seal is None or seal.checkpoint != anchor):
                    computed = self._tree.root(signed)
                    if computed != root:
                        raise VerificationError(
                            f"the log's root at size {signed} is {computed.hex()}, its latest "
                            f"checkpoint says {root.hex()}: entries were changed, reordered, "
                            "inserted or removed",
                            hint=_RESTORE_HINT.split(";")[0]
                            + "; run 'pollwatch evidence fsck' to see what differs",
                        )
                if anchor is None and seal is not None:
                    anchor = seal.checkpoint
                if seal is None or first < size or seal.checkpoint != anchor:
                    _hash_range(
                        self._data_fd, seal.data_bytes if seal else 0, self._end, data_digest
                    )
                    leaves_digest.update(memoryview(leaves)[first * HASH_SIZE :])
                    digests = (data_digest.hexdigest(), leaves_digest.hexdigest())
                    self._write_seal(_Seal(size, self._end, *digests, anchor))
        return size

    def _read_seal(self, size: int) -> _Seal | None:
        """The seal of the last check if it is well-formed and fits this log, else None."""
        try:
            value = json.loads((self.folder / SEAL_FILE).read_bytes())
            entries, data_bytes = value["entries"], value["data_bytes"]
            checkpoint = value["checkpoint"]
            seal = _Seal(
                entries,
                data_bytes,
                str(value["data_sha256"]),
                str(value["leaves_sha256"]),
                None if checkpoint is None else (checkpoint[0], bytes.fromhex(checkpoint[1])),
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
        if value.get("format") != SEAL_FORMAT or not all(
            isinstance(number, int) and not isinstance(number, bool) and number >= 0
            for number in (entries, data_bytes, *(checkpoint[:1] if checkpoint else ()))
        ):
            return None
        expected_end = self._offsets[entries] if entries < size else self._end
        if entries > size or data_bytes != expected_end:
            return None
        if seal.checkpoint is not None and seal.checkpoint[0] > entries:
            return None
        return seal

    def _write_seal(self, seal: _Seal) -> None:
        """Replace the seal (a cache: a failure to write it only makes the next check slower)."""
        value = {
            "format": SEAL_FORMAT,
            "entries": seal.entries,
            "data_bytes": seal.data_bytes,
            "data_sha256": seal.data_sha256,
            "leaves_sha256": seal.leaves_sha256,
            "checkpoint": None
            if seal.checkpoint is None
            else [seal.checkpoint[0], seal.checkpoint[1].hex()],
            "sealed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with contextlib.suppress(OSError):
            atomic_write_json(self.folder / SEAL_FILE, value, indent=1, trailing_newline=True)

    def _verify_files(self, first: int = 0) -> tuple[int, bytes]:
        """Walk the data file against the index from entry ``first`` (which this instance has
        loaded); returns (size, concatenated leaf hashes of entries ``first`` onwards)."""
        data_path = self.folder / DATA_FILE
        index_start = len(INDEX_MAGIC) + first * _INDEX_ENTRY
        index_size = os.fstat(self._index_fd).st_size
        index_raw = _pread_exact(self._index_fd, max(0, index_size - index_start), index_start)
        data_size = os.fstat(self._data_fd).st_size
        if _pread_exact(self._index_fd, len(INDEX_MAGIC), 0) != INDEX_MAGIC:
            raise VerificationError(
                f"{self.folder / INDEX_FILE} does not start with {INDEX_MAGIC!r}",
                hint="the index is derived from the data: reopen the log to rebuild it",
            )
        if _pread_exact(self._data_fd, len(DATA_MAGIC), 0) != DATA_MAGIC:
            raise VerificationError(
                f"{data_path} does not start with {DATA_MAGIC!r}", hint=_RESTORE_HINT
            )
        # A partial last index entry belongs to an append that died unacknowledged.
        count = first + len(index_raw) // _INDEX_ENTRY
        sha256 = hashlib.sha256
        leaves = []
        # `base` is the file offset of buffer[0]
        start = self._offsets[first] if first < len(self._offsets) else self._end
        buffer, base, position = b"", start if first else _START, 0
        entry_at = 0
        # The loop is written flat (no helper calls per record): it runs a million times.
        for number in range(first, count):
            if position + _HEADER > len(buffer) or (
                position
                + _HEADER
                + int.from_bytes(buffer[position : position + _HEADER], "big")
                + HASH_SIZE
                > len(buffer)
            ):
                base += position
                want = _READ_CHUNK + _HEADER + MAX_ENTRY_SIZE + HASH_SIZE
                more = _pread_exact(
                    self._data_fd,
                    min(want, data_size - base) - (len(buffer) - position),
                    base + len(buffer) - position,
                )
                buffer, position = buffer[position:] + more, 0
            where = base + position
            if position + _HEADER > len(buffer):
                raise VerificationError(
                    f"{data_path} ends at byte {data_size}, inside entry {number}'s header; "
                    f"the index lists {count} entries",
                    hint=_RESTORE_HINT,
                )
            length = int.from_bytes(buffer[position : position + _HEADER], "big")
            start = position + _HEADER
            end = start + length + HASH_SIZE
            if length > MAX_ENTRY_SIZE or end > len(buffer):
                raise VerificationError(
                    f"{data_path} is damaged at entry {number}: the record at byte {where} "
                    f"claims {length} bytes, which "
                    + (
                        "is over the limit"
                        if length > MAX_ENTRY_SIZE
                        else "runs past the end of the file"
                    ),
                    hint=_RESTORE_HINT,
                )
            computed = sha256(b"\x00" + buffer[start : end - HASH_SIZE]).digest()
            if buffer[end - HASH_SIZE : end] != computed:
                raise VerificationError(
                    f"entry {number} at byte {where} of {data_path} does not match its stored "
                    "leaf hash (its content or its hash was changed)",
                    hint=_RESTORE_HINT,
                )
            if index_raw[entry_at : entry_at + _INDEX_ENTRY] != where.to_bytes(8, "big") + computed:
                indexed_offset = int.from_bytes(index_raw[entry_at : entry_at + 8], "big")
                raise VerificationError(
                    f"entry {number} is at byte {where} of {data_path}, the index says "
                    f"byte {indexed_offset}"
                    if indexed_offset != where
                    else f"entry {number} at byte {where} of {data_path} has another leaf "
                    "hash in the index",
                    hint="entries were inserted, removed or reordered; "
                    + _RESTORE_HINT.split(";")[0],
                )
            leaves.append(computed)
            position = end
            entry_at += _INDEX_ENTRY
        return count, b"".join(leaves)


# -- read-only inspection ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryDamage:
    """One indexed entry whose record is not what its index entry says."""

    index: int
    offset: int
    """Byte of its record in ``entries.bin`` (as the index says)."""
    problem: str
    expected_leaf: bytes
    """The leaf hash its index entry holds: what the entry should hash to."""
    actual_leaf: bytes | None
    """What its bytes hash to now (None when the record cannot be read at all)."""


@dataclass(frozen=True, slots=True)
class LogInspection:
    """What :func:`inspect_log` found in a log folder, without changing anything."""

    data_bytes: int
    index_entries: int
    """Whole entries in ``entries.idx``."""
    index_partial_bytes: int
    """Bytes of a partial last index entry (an append that died before it was acknowledged)."""
    leaves: bytes
    """Leaf hashes of the entries present, from the index (or parsed from the data when the
    index cannot be used), 32 bytes each: the tree this log's roots are computed from."""
    data_leaves: bytes
    """What the same entries' bytes hash to now (the index's hash where a record is unreadable)."""
    damaged: tuple[EntryDamage, ...] = ()
    missing_from: int | None = None
    """First index entry whose record is not (wholly) in the data file: truncation."""
    unindexed_records: int = 0
    """Intact records after the last indexed one (written, never indexed: recovery indexes)."""
    tail_offset: int = 0
    tail_bytes: int = 0
    """Bytes after the last intact record (a torn append: recovery sets them aside)."""
    tail_problem: str | None = None
    index_problem: str | None = None
    """Why the index cannot be used as is (recovery rebuilds it from the data), if it cannot."""
    data_problem: str | None = None
    """Why ``entries.bin`` is not a log data file at all, if it is not."""
    discarded: tuple[str, ...] = ()
    """Files under ``discarded/`` (what recovery set aside earlier), as relative paths."""

    @property
    def entries(self) -> int:
        """Entries present (indexed, with their record): the log's size as it reads now."""
        return len(self.leaves) // HASH_SIZE


class _Window:
    """Reads of nearby byte ranges of a file, served from one large buffer."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd, self.size = fd, size
        self._base, self._buffer = 0, b""

    def read(self, offset: int, length: int) -> bytes:
        end = offset + length
        if offset < self._base or end > self._base + len(self._buffer):
            want = max(length, _READ_CHUNK)
            self._base, self._buffer = offset, _pread_exact(self._fd, want, offset)
        start = offset - self._base
        return self._buffer[start : start + length]


def inspect_log(
    folder: Path | str, visit: Callable[[int, bytes], None] | None = None
) -> LogInspection:
    """Read a log folder's files, change nothing, and say what is damaged or left over.

    Walks every index entry against its record (under the shared lock, so no append is half
    seen), then the bytes after the last indexed record as recovery would: intact records are
    ``unindexed_records``, the rest is a torn tail. Without a usable index the data file is
    parsed on its own. Every damaged entry is listed with the hash it should have. ``visit``
    is called with (index, bytes) of every intact entry, unindexed records included.
    """
    folder = Path(folder)
    lock_fd = None
    with contextlib.suppress(OSError):
        lock_fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    try:
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_SH)
        return _inspect(folder, visit or _ignore)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)  # releases the lock


def _ignore(index: int, payload: bytes) -> None:
    pass


def _inspect(folder: Path, visit: Callable[[int, bytes], None]) -> LogInspection:
    discarded = tuple(
        sorted(
            str(path.relative_to(folder))
            for path in (folder / DISCARDED_FOLDER).glob("*")
            if path.is_file()
        )
    )
    try:
        data_fd = os.open(folder / DATA_FILE, os.O_RDONLY)
    except OSError as error:
        return LogInspection(
            0, 0, 0, b"", b"", data_problem=f"{DATA_FILE}: {error.strerror}", discarded=discarded
        )
    try:
        data_size = os.fstat(data_fd).st_size
        if _pread_exact(data_fd, len(DATA_MAGIC), 0) != DATA_MAGIC:
            return LogInspection(
                data_size,
                0,
                0,
                b"",
                b"",
                data_problem=f"{DATA_FILE} does not start with {DATA_MAGIC!r}",
                discarded=discarded,
            )
        index_problem: str | None
        try:
            index_raw = (folder / INDEX_FILE).read_bytes()
        except OSError as error:
            index_raw, index_problem = b"", f"{INDEX_FILE}: {error.strerror}"
        else:
            index_problem = (
                None
                if index_raw[: len(INDEX_MAGIC)] == INDEX_MAGIC
                else f"{INDEX_FILE} does not start with {INDEX_MAGIC!r}"
            )
        window = _Window(data_fd, data_size)
        if index_problem is None:
            inspection = _inspect_indexed(window, index_raw[len(INDEX_MAGIC) :], visit)
        else:
            inspection = _inspect_unindexed(window, index_problem, visit)
        return _with_discarded(inspection, discarded)
    finally:
        os.close(data_fd)


def _with_discarded(inspection: LogInspection, discarded: tuple[str, ...]) -> LogInspection:
    values = {name: getattr(inspection, name) for name in LogInspection.__dataclass_fields__}
    values["discarded"] = discarded
    return LogInspection(**values)


def _inspect_indexed(
    window: _Window, raw: bytes, visit: Callable[[int, bytes], None]
) -> LogInspection:
    count, partial = divmod(len(raw), _INDEX_ENTRY)
    leaves, data_leaves = bytearray(), bytearray()
    damaged: list[EntryDamage] = []
    missing_from = None
    expected_offset = _START
    for number in range(count):
        entry = raw[number * _INDEX_ENTRY : (number + 1) * _INDEX_ENTRY]
        offset, expected = int.from_bytes(entry[:8], "big"), entry[8:]
        following = (
            int.from_bytes(
                raw[(number + 1) * _INDEX_ENTRY : (number + 1) * _INDEX_ENTRY + 8], "big"
            )
            if number + 1 < count
            else None
        )
        problems = []
        if offset != expected_offset:
            problems.append(
                f"its index entry says byte {offset}, but entry {number - 1} ends at byte "
                f"{expected_offset}"
                if number
                else f"its index entry says byte {offset}, not {_START}"
            )
        if offset + _HEADER > window.size:
            missing_from = number
            break
        length = int.from_bytes(window.read(offset, _HEADER), "big")
        spacing = None if following is None else following - offset - _HEADER - HASH_SIZE
        if spacing is not None and spacing != length and 0 <= spacing <= MAX_ENTRY_SIZE:
            problems.append(f"its record header says {length} bytes, the index's spacing {spacing}")
            length = spacing
        end = offset + _HEADER + length + HASH_SIZE
        if length > MAX_ENTRY_SIZE or end > window.size:
            if not problems:
                missing_from = number
                break
            damaged.append(EntryDamage(number, offset, "; ".join(problems), expected, None))
            leaves += expected
            data_leaves += expected
            expected_offset = following if following is not None else window.size
            continue
        body = window.read(offset + _HEADER, length + HASH_SIZE)
        actual = leaf_hash(body[:length])
        stored = body[length:]
        if actual != expected:
            problems.insert(
                0,
                f"its bytes hash to {actual.hex()}, not to the leaf hash its index entry holds",
            )
        elif stored != expected:
            problems.append(
                "the leaf hash stored after its bytes was changed (its bytes are intact)"
            )
        if problems:
            damaged.append(EntryDamage(number, offset, "; ".join(problems), expected, actual))
        if actual == expected:
            visit(number, body[:length])
        leaves += expected
        data_leaves += actual
        expected_offset = end
    tail: dict[str, Any]
    if missing_from is not None:
        tail = {"missing_from": missing_from, "tail_offset": expected_offset}
    else:
        scan = _scan_window(window, expected_offset, visit, count)
        tail = {
            "unindexed_records": len(scan.offsets),
            "tail_offset": scan.stop,
            "tail_bytes": window.size - scan.stop,
            "tail_problem": scan.problem,
        }
    return LogInspection(
        window.size, count, partial, bytes(leaves), bytes(data_leaves),
        damaged=tuple(damaged), **tail,
    )  # fmt: skip


def _inspect_unindexed(
    window: _Window, index_problem: str, visit: Callable[[int, bytes], None]
) -> LogInspection:
    scan = _scan_window(window, _START, visit, 0)
    leaves = b"".join(scan.leaves)
    damaged: tuple[EntryDamage, ...] = ()
    if scan.problem is not None and not scan.torn:
        damaged = (EntryDamage(len(scan.offsets), scan.stop, scan.problem, b"", None),)
    return LogInspection(
        window.size,
        0,
        0,
        leaves,
        leaves,
        damaged=damaged,
        tail_offset=scan.stop,
        tail_bytes=window.size - scan.stop,
        tail_problem=scan.problem,
        index_problem=index_problem,
    )


def _scan_window(
    window: _Window, start: int, visit: Callable[[int, bytes], None], first: int
) -> _Scan:
    """Parse intact records from ``start`` (entry ``first``) until the end or a bad one."""
    scan = _Scan([], [], start)
    position = start
    while position < window.size:
        if position + _HEADER > window.size:
            scan.problem, scan.torn = (
                f"{window.size - position} bytes at byte {position} are not a whole record header",
                True,
            )
            break
        length = int.from_bytes(window.read(position, _HEADER), "big")
        if length > MAX_ENTRY_SIZE:
            scan.problem = f"record at byte {position} claims {length} bytes, over the limit"
            break
        end = position + _HEADER + length + HASH_SIZE
        if end > window.size:
            scan.problem = f"record at byte {position} claims {length} bytes but the file ends"
            scan.torn = True
            break
        body = window.read(position + _HEADER, length + HASH_SIZE)
        computed = leaf_hash(body[:length])
        if body[length:] != computed:
            scan.problem = f"record at byte {position} does not match its stored leaf hash"
            break
        visit(first + len(scan.offsets), body[:length])
        scan.offsets.append(position)
        scan.leaves.append(computed)
        position = scan.stop = end
    return scan
