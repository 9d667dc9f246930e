"""Limits on what an importer reads, and the progress it reports while reading.

A results file is untrusted input: a few kilobytes of zip can unpack to gigabytes, and a table of
short lines can cost far more memory than its bytes. Every importer reads its source through the
shared helpers in :mod:`._tables` (``read_source_bytes``, ``read_csv_table``; the mapping
importer's workbook and Parquet readers check the same limits), and those helpers consult the
limits in force: :func:`current_limits`. :func:`~pollwatch.results.importers.import_file` puts
limits in force for one read (its ``limits`` argument; the built-in defaults otherwise), so the
CLI, the dashboard and a Python caller are held to the same checks.

Each limit is a :class:`~pollwatch.settings.Settings` field (:meth:`ImportLimits.from_settings`);
a file over a limit raises :class:`~pollwatch.errors.LimitError` naming the file, what was too
large and the environment variable and config key that raise the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from pollwatch.errors import LimitError
from pollwatch.settings import FIELDS, Settings

__all__ = [
    "RATIO_GRACE_BYTES",
    "ImportLimits",
    "Progress",
    "applied",
    "current_limits",
    "human_bytes",
    "limit_error",
    "report_progress",
]

#: The compression ratio is checked only once a member has unpacked past this many bytes: a
#: small, very repetitive table is harmless however well it compresses.
RATIO_GRACE_BYTES = 1024 * 1024

#: ``progress(stage, fraction)``: what the read is doing and how far it is (0 to 1).
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class ImportLimits:
    """The most an importer reads of one source; defaults are the settings' defaults."""

    max_unpacked_bytes: int = Settings.import_max_unpacked_bytes
    max_compression_ratio: float = Settings.import_max_compression_ratio
    max_rows: int = Settings.import_max_rows
    max_columns: int = Settings.import_max_columns
    max_cells: int = Settings.import_max_cells

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        """The limits configured in ``settings`` (``import_max_*``)."""
        return cls(
            max_unpacked_bytes=settings.import_max_unpacked_bytes,
            max_compression_ratio=settings.import_max_compression_ratio,
            max_rows=settings.import_max_rows,
            max_columns=settings.import_max_columns,
            max_cells=settings.import_max_cells,
        )


_DEFAULTS = ImportLimits()
_LIMITS: ContextVar[ImportLimits | None] = ContextVar("pollwatch_import_limits", default=None)
_PROGRESS: ContextVar[Progress | None] = ContextVar("pollwatch_import_progress", default=None)


@contextmanager
def applied(limits: ImportLimits | None, progress: Progress | None = None) -> Iterator[None]:
    """Put ``limits`` (the defaults when None) and a progress callback in force for a read."""
    limits_token = _LIMITS.set(limits)
    progress_token = _PROGRESS.set(progress)
    try:
        yield
    finally:
        _PROGRESS.reset(progress_token)
        _LIMITS.reset(limits_token)


def current_limits() -> ImportLimits:
    """The limits in force (the built-in defaults outside :func:`applied`)."""
    return _LIMITS.get() or _DEFAULTS


def report_progress(stage: str, fraction: float) -> None:
    """Tell the caller of the read how far it is; a failing callback never stops the read."""
    callback = _PROGRESS.get()
    if callback is None:
        return
    with suppress(Exception):  # progress is advisory; the import matters more
        callback(stage, min(1.0, max(0.0, fraction)))


def limit_error(message: str, setting: str, *, path: str | Path | None = None) -> LimitError:
    """A :class:`LimitError` whose hint names the variable and config key that raise it."""
    env, key, _ = FIELDS[setting]
    return LimitError(
        message,
        setting=setting,
        path=path,
        hint=f"if the file is genuine, raise the limit: {env} or {key} in the config file",
    )


def human_bytes(count: float) -> str:
    """``536870912`` -> ``"512 MiB"`` (for messages)."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.3g} {unit}"
        count /= 1024
    return f"{count:,.3g} GiB"  # pragma: no cover - the loop returns
