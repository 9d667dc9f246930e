"""Content-addressed, write-once object store: every file is kept once, under its SHA-256.

Definitions:

* An object's name is the lower-case hex SHA-256 (FIPS 180-4) of its bytes, 64 characters.
  Storing the same bytes twice stores them once and returns the same :class:`ObjectInfo`.
* Write-once: a stored object is never modified or deleted by pollwatch. The interface has no
  delete or overwrite operation at all; derived copies (redacted, transcoded) are new objects
  that name their source in the log.
* Streaming: :meth:`ObjectBackend.put` reads its input in 1 MiB chunks, hashing while it writes,
  so memory stays bounded whatever the file size.

Backends implement :class:`ObjectBackend` and register in :data:`BACKENDS` (entry-point group
``pollwatch.evidence_backends``); the shared conformance suite in
``tests/evidence/test_objects.py`` runs against every registered backend. The built-in
:class:`FilesystemBackend` lays objects out as ``<root>/ab/cd/<hash>``: it writes to a temporary
file, fsyncs it, makes it read-only (0o444) and links it into place, so a crash leaves either
no object or a complete one, never a partial file under an object name.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat as stat_module
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.fileio import fsync_directory
from pollwatch.registry import Registry

__all__ = [
    "BACKENDS",
    "CHUNK_SIZE",
    "FilesystemBackend",
    "ObjectBackend",
    "ObjectInfo",
    "check_sha256",
]

CHUNK_SIZE = 1 << 20
"""Bytes read, hashed and written at a time: large files never sit whole in memory."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


def check_sha256(value: object) -> str:
    """``value`` as a canonical object name (lower-case hex SHA-256), or EvidenceError."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if _HEX64.fullmatch(lowered):
            return lowered
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    raise EvidenceError(
        f"{shown} is not a SHA-256 object hash",
        hint="an object hash is 64 hexadecimal characters, as printed by sha256sum",
    )


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object: its SHA-256 (hex) and its size in bytes."""

    sha256: str
    size: int


class ObjectBackend(ABC):
    """Where objects live. Write-once by construction: there is no delete or overwrite.

    Subclasses implement :meth:`put`, :meth:`open`, :meth:`stat`, :meth:`exists` and
    :meth:`iter_hashes`; :meth:`verify`, :meth:`read_verified` and :meth:`copy_verified` work
    on top of :meth:`open` (a backend may override them with something faster).
    """

    name: str = "abstract"

    @classmethod
    def for_conformance_tests(cls, folder: Path) -> ObjectBackend:
        """A fresh, empty store for the shared conformance suite, using ``folder`` if useful.

        The default calls ``cls(folder)``; a backend that needs a service (an S3 endpoint)
        overrides this to start or point at one.
        """
        return cls(folder)  # type: ignore[call-arg]

    @abstractmethod
    def put(self, stream: BinaryIO) -> ObjectInfo:
        """Store everything ``stream`` yields (read in :data:`CHUNK_SIZE` chunks) once.

        If an object with the same hash exists, the new copy is discarded and the existing
        object's info is returned.
        """

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """A binary file object reading the stored bytes; EvidenceError if unknown."""

    @abstractmethod
    def stat(self, sha256: str) -> ObjectInfo:
        """The object's hash and size, without reading it; EvidenceError if unknown."""

    @abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether the object is stored (a malformed hash raises EvidenceError)."""

    @abstractmethod
    def iter_hashes(self) -> Iterator[str]:
        """Every stored object's hash, in ascending order."""

    def put_bytes(self, data: bytes) -> ObjectInfo:
        """Store a small in-memory value (convenience around :meth:`put`)."""
        return self.put(io.BytesIO(data))

    def iter_verified(self, sha256: str) -> Iterator[bytes]:
        """Yield the object's bytes in chunks, then check the hash.

        VerificationError is raised after the last chunk if the bytes do not hash to the
        name, so act on the data only once the iteration has finished.
        """
        sha256 = check_sha256(sha256)
        digest = hashlib.sha256()
        size = 0
        with self.open(sha256) as handle:
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
        actual = digest.hexdigest()
        if actual != sha256:
            raise VerificationError(
                f"object {sha256} in the {self.name} store is damaged: its {size} bytes hash to "
                f"{actual}",
                hint="restore this object from a backup or an evidence bundle; pollwatch never "
                "rewrites stored objects",
            )

    def verify(self, sha256: str) -> None:
        """Re-hash the stored bytes (streaming); VerificationError names a damaged object."""
        for _ in self.iter_verified(sha256):
            pass

    def read_verified(self, sha256: str, *, limit: int = 64 * CHUNK_SIZE) -> bytes:
        """The whole object as bytes, after checking its hash; for objects up to ``limit``.

        Use :meth:`copy_verified` or :meth:`iter_verified` for large objects.
        """
        info = self.stat(sha256)
        if info.size > limit:
            raise EvidenceError(
                f"object {info.sha256} has {info.size} bytes, more than the {limit} that "
                "read_verified returns in memory",
                hint="stream it with copy_verified(sha256, destination) instead",
            )
        return b"".join(self.iter_verified(info.sha256))

    def copy_verified(self, sha256: str, destination: BinaryIO) -> ObjectInfo:
        """Stream the object into ``destination``, then check its hash (raises if damaged)."""
        size = 0
        for chunk in self.iter_verified(sha256):
            destination.write(chunk)
            size += len(chunk)
        return ObjectInfo(check_sha256(sha256), size)


BACKENDS: Registry[type[ObjectBackend]] = Registry("object backend", "pollwatch.evidence_backends")
"""Object store backends by name; ``filesystem`` is built in."""


def _read_into(stream: BinaryIO, buffer: bytearray) -> int:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        count = readinto(buffer)
        return 0 if count is None else int(count)
    chunk = stream.read(len(buffer))
    if not isinstance(chunk, bytes | bytearray):
        raise EvidenceError(
            f"put() needs a binary stream, got {type(stream).__name__} yielding "
            f"{type(chunk).__name__}",
            hint="open the file with open(path, 'rb')",
        )
    buffer[: len(chunk)] = chunk
    return len(chunk)


@BACKENDS.register("filesystem")
class FilesystemBackend(ObjectBackend):
    """Objects as read-only files ``<root>/ab/cd/<sha256>`` on a local filesystem.

    Temporary files live in ``<root>/.incoming`` (same filesystem, so the final link is
    atomic); one left behind by a crash is never mistaken for an object.
    """

    name = "filesystem"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._incoming = self.root / ".incoming"
        try:
            self._incoming.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EvidenceError(
                f"cannot create the object store at {self.root}: {error.strerror}",
                hint="choose a writable folder for the evidence store",
            ) from None

    def __repr__(self) -> str:
        return f"FilesystemBackend({str(self.root)!r})"

    def path_of(self, sha256: str) -> Path:
        """Where the object with this hash lives (whether or not it exists)."""
        sha256 = check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, stream: BinaryIO) -> ObjectInfo:
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        fd, temporary = tempfile.mkstemp(dir=self._incoming, prefix="put-", suffix=".part")
        temporary_path = Path(temporary)
        try:
            try:
                while count := _read_into(stream, buffer):
                    chunk = view[:count]
                    digest.update(chunk)
                    written = 0
                    while written < count:
                        written += os.write(fd, chunk[written:])
                    size += count
                os.fsync(fd)
                os.fchmod(fd, 0o444)
            finally:
                os.close(fd)
            sha256 = digest.hexdigest()
            final = self.path_of(sha256)
            if not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                try:
                    # link() never replaces an existing name, unlike rename(): two writers
                    # storing the same bytes at once both succeed, and the first one stays.
                    os.link(temporary_path, final)
                except FileExistsError:
                    pass
                except OSError:
                    if not final.exists():  # a filesystem without hard links
                        os.replace(temporary_path, final)
                # a link is durable only once its directory entry is on disk
                fsync_directory(final.parent)
                fsync_directory(final.parent.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary_path.unlink()
        return self.stat(sha256)

    def _existing(self, sha256: str) -> Path:
        path = self.path_of(sha256)
        if not path.is_file():
            raise EvidenceError(
                f"no object {check_sha256(sha256)} in the store at {self.root}",
                hint="check the hash (pollwatch evidence list shows stored items), or store "
                "the file first",
            )
        return path

    def open(self, sha256: str) -> BinaryIO:
        return self._existing(sha256).open("rb")

    def stat(self, sha256: str) -> ObjectInfo:
        path = self._existing(sha256)
        return ObjectInfo(check_sha256(sha256), path.stat().st_size)

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def iter_hashes(self) -> Iterator[str]:
        for first in sorted(self.root.iterdir()):
            if len(first.name) != 2 or not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                if len(second.name) != 2 or not second.is_dir():
                    continue
                for item in sorted(second.iterdir()):
                    name = item.name
                    if (
                        _HEX64.fullmatch(name)
                        and name.startswith(first.name + second.name)
                        and stat_module.S_ISREG(item.stat().st_mode)
                    ):
                        yield name
