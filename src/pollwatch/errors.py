"""Every error a user can trigger, in one place.

Hierarchy::

    PollwatchError                 base of everything pollwatch raises on purpose
    ├── SettingsError              a setting or config file is wrong
    ├── InputError                 a file given to pollwatch cannot be read as asked
    │   ├── FormatError            wrong encoding, not a table, empty, zip holds something else
    │   ├── ColumnError            a required column is missing or unknown
    │   ├── CountError             a cell holds a non-numeric or negative count
    │   ├── MappingError           a mapping file is invalid (typo, unknown key, bad type)
    │   ├── SchemaError            a document fails its schema (NIST SP 1500-100)
    │   └── LimitError             a file is larger than a configured limit allows (bytes, rows)
    ├── StoreError                 the local store refuses (unknown election, conflict)
    ├── DatasetError               a public dataset cannot be fetched or fails its checksum
    ├── RegistryError              an unknown importer / method / dataset name
    ├── EvidenceError              the evidence archive refuses (unknown item, bad key, not init)
    │   └── VerificationError      a proof, signature, checksum or bundle does not verify
    ├── VideoError                 video refuses (unknown station/camera, bad stream or manifest)
    │   └── PolicyError            the playback policy is invalid or denies an action
    ├── DatabaseError              the application database cannot be opened or migrated
    └── ObserverError              observers refuse (bad form, submission, rule, SMS, protocol copy)

Every message says what was wrong, where (file, row, column, parameter) and how to fix it;
the CLI prints it as one line and exits non-zero, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ColumnError",
    "CountError",
    "DatabaseError",
    "DatasetError",
    "EvidenceError",
    "FormatError",
    "InputError",
    "LimitError",
    "MappingError",
    "ObserverError",
    "PolicyError",
    "PollwatchError",
    "RegistryError",
    "SchemaError",
    "SettingsError",
    "StoreError",
    "VerificationError",
    "VideoError",
]


class PollwatchError(Exception):
    """Base class: a problem a user can fix, with a one-line message and a hint."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message and the hint on one line, as the CLI shows it."""
        text = self.message.replace("\n", " ")
        if self.hint:
            text = f"{text} ({self.hint.replace(chr(10), ' ')})"
        return text


class SettingsError(PollwatchError):
    """A setting, environment variable or config file value is wrong."""


class InputError(PollwatchError):
    """A file cannot be read as asked; names the file, row and column where known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.row = row
        self.column = column
        where = []
        if self.path is not None:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message, hint=hint)


class FormatError(InputError):
    """The file is not what it claims: wrong encoding, empty, not a table, wrong zip content."""


class ColumnError(InputError):
    """A required column is missing, or a named column does not exist."""


class CountError(InputError):
    """A cell holds a value that is not a non-negative count."""


class MappingError(InputError):
    """A mapping file is invalid: unknown key, wrong type, a column it names is absent."""


class SchemaError(InputError):
    """A document fails validation against its published schema."""


class LimitError(InputError):
    """A file is larger than a configured limit allows: upload or unpacked bytes, compression
    ratio, rows or columns. ``setting`` names the limit (a :class:`~pollwatch.settings.Settings`
    field); the hint says how to raise it. The dashboard answers it with HTTP 413.
    """

    def __init__(
        self,
        message: str,
        *,
        setting: str,
        path: str | Path | None = None,
        hint: str | None = None,
    ) -> None:
        self.setting = setting
        super().__init__(message, path=path, hint=hint)


class StoreError(PollwatchError):
    """The local store refuses an operation (unknown election, conflicting re-import)."""


class DatasetError(PollwatchError):
    """A registered public dataset cannot be fetched, or its checksum does not match.

    ``reason`` says why in a few words, without the dataset's name, for one-line lists of the
    datasets skipped (``pollwatch demo``): e.g. ``exists only in a data mirror (set
    POLLWATCH_DATA_MIRROR)``; it defaults to the message and hint.
    """

    def __init__(self, message: str, *, hint: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason or self.one_line()


class RegistryError(PollwatchError):
    """An unknown name was asked of a registry (importer, method, dataset)."""


class EvidenceError(PollwatchError):
    """The evidence archive refuses an operation (not initialised, unknown item, wrong key)."""


class VerificationError(EvidenceError):
    """Something does not verify: a proof, a signature, a checksum, a bundle; says exactly what."""


class VideoError(PollwatchError):
    """Video refuses: unknown station or camera, unusable stream, bad manifest, not a segment."""


class PolicyError(VideoError):
    """The playback policy is malformed, or it denies the action asked for."""


class DatabaseError(PollwatchError):
    """The application database cannot be opened, reached or migrated (names the URL's place)."""


class ObserverError(PollwatchError):
    """Observers refuse: a bad form, submission, rule, coded SMS, plan or protocol copy."""
