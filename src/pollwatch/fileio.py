"""Files written whole or not at all: atomic replacement, made durable with fsync.

Every file pollwatch writes where a reader could find it half-written (an export, a cache entry,
a seal, the witness state, a progress file) goes through :func:`atomic_write`: the bytes go to
a temporary file in the target's own folder (``.<name>.<random>.part``, so a rename never
crosses filesystems and ``pollwatch evidence fsck`` recognises a leftover), which is flushed and
fsync'd, then moved onto the target with :func:`os.replace`, and the folder is fsync'd so the
rename itself survives a crash. On any error the temporary file is removed and the target is
left as it was. Readers see the old file or the new one, never a mixture; of two concurrent
writers one wins whole.

Folder swaps (the election store's staging folders) use :func:`fsync_tree` and
:func:`fsync_directory` for the same durability. Nothing here imports the rest of pollwatch, so
every layer may use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal, overload

__all__ = [
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_directory",
    "fsync_file",
    "fsync_tree",
]

_ATTEMPTS = 100  # names tried before giving up; a clash needs 32 random bits to repeat


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries to disk, so that a rename, link or new file in it is durable.

    Some platforms and filesystems cannot open a folder (Windows) or fsync one; there the call
    does nothing, as the rename is then as durable as the platform makes it.
    """
    with contextlib.suppress(OSError):
        fsync_file(path)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's bytes to disk (a file written by another library, e.g. a video muxer)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: str | os.PathLike[str]) -> None:
    """Flush every file and folder under ``folder`` (and ``folder`` itself) to disk."""
    root = Path(folder)
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_symlink():
            continue
        if path.is_dir():
            fsync_directory(path)
        elif path.is_file():
            fsync_file(path)
    fsync_directory(root)


def _create_temporary(target: Path, permissions: int | None, suffix: str) -> tuple[int, Path]:
    """A new, empty file next to ``target`` that no one else has opened: (descriptor, path).

    Without ``permissions`` the file is created as ``open(..., "w")`` would create it (0o666
    less the umask), so replacing the target keeps the mode a plain write gives; with them it
    is created private (0o600) and set to exactly ``permissions`` before it is moved in place.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    mode = 0o666 if permissions is None else 0o600
    for _ in range(_ATTEMPTS):
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(temporary, flags, mode), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {target}")


def _commit(temporary: Path, target: Path, permissions: int | None) -> None:
    if permissions is not None:
        os.chmod(temporary, permissions)
    os.replace(temporary, target)
    fsync_directory(target.parent)


@overload
def atomic_write(
    target: str | os.PathLike[str],
    mode: Literal["wb"] = "wb",
    *,
    permissions: int | None = None,
    suffix: str = ".part",
) -> contextlib.AbstractContextManager[IO[bytes]]: ...


@overload
def atomic_write(
    target: str | os.PathLike[str],
    mode: Literal["w"],
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    permissions: int | None = None,
    suffix: str = ".part",
) -> contextlib.AbstractContextManager[IO[str]]: ...


def atomic_write(
    target: str | os.PathLike[str],
    mode: Literal["w", "wb"] = "wb",
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    permissions: int | None = None,
    suffix: str = ".part",
) -> contextlib.AbstractContextManager[IO[Any]]:
    """Write ``target`` whole or not at all; yields a handle to a temporary file beside it.

    ``mode`` is ``"wb"`` (a binary handle) or ``"w"`` (text in ``encoding``, with ``newline``
    as :func:`open` takes it). When the block ends normally the handle is flushed and fsync'd,
    the temporary file replaces ``target`` (:func:`os.replace`) and the folder is fsync'd; when
    it raises, the temporary file is removed, ``target`` is untouched and the error propagates.
    ``permissions`` (e.g. ``0o600`` for a key) sets the file's mode exactly, whatever the
    umask; ``suffix`` ends the temporary name (a muxer that picks the container by extension
    needs ``".part.mp4"``). The target's folder must exist.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    return _atomic_write(Path(target), mode, encoding, newline, permissions, suffix)


@contextmanager
def _atomic_write(
    target: Path,
    mode: Literal["w", "wb"],
    encoding: str,
    newline: str | None,
    permissions: int | None,
    suffix: str,
) -> Iterator[IO[Any]]:
    descriptor, temporary = _create_temporary(target, permissions, suffix)
    try:
        handle: IO[Any]
        if mode == "wb":
            handle = os.fdopen(descriptor, "wb")
        else:
            handle = os.fdopen(descriptor, "w", encoding=encoding, newline=newline)
    except BaseException:
        os.close(descriptor)
        temporary.unlink(missing_ok=True)
        raise
    committed = False
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _commit(temporary, target, permissions)
        committed = True
    finally:
        if not committed:
            temporary.unlink(missing_ok=True)


@contextmanager
def atomic_path(
    target: str | os.PathLike[str],
    *,
    permissions: int | None = None,
    suffix: str = ".part",
) -> Iterator[Path]:
    """:func:`atomic_write` for code that writes by path (a zip writer, a video muxer).

    Yields the path of an empty temporary file beside ``target``; the block writes it by name
    (it may replace it, but not leave it elsewhere). When the block ends normally the file is
    fsync'd and moved onto ``target`` and the folder fsync'd; when it raises, the temporary is
    removed and ``target`` is untouched.
    """
    final = Path(target)
    descriptor, temporary = _create_temporary(final, permissions, suffix)
    os.close(descriptor)
    committed = False
    try:
        yield temporary
        fsync_file(temporary)
        _commit(temporary, final, permissions)
        committed = True
    finally:
        if not committed:
            temporary.unlink(missing_ok=True)


def atomic_write_bytes(
    target: str | os.PathLike[str], data: bytes, *, permissions: int | None = None
) -> None:
    """Replace ``target`` with ``data``, atomically and durably (:func:`atomic_write`)."""
    with atomic_write(target, "wb", permissions=permissions) as handle:
        handle.write(data)


def atomic_write_text(
    target: str | os.PathLike[str],
    text: str,
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    permissions: int | None = None,
) -> None:
    """Replace ``target`` with ``text`` in ``encoding``, atomically and durably."""
    with atomic_write(
        target, "w", encoding=encoding, newline=newline, permissions=permissions
    ) as handle:
        handle.write(text)


def atomic_write_json(
    target: str | os.PathLike[str],
    value: Any,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    ensure_ascii: bool = True,
    separators: tuple[str, str] | None = None,
    trailing_newline: bool = False,
    permissions: int | None = None,
) -> None:
    """Replace ``target`` with ``value`` as JSON (:func:`json.dumps` options), in UTF-8.

    The text is made before the file is opened, so a value that cannot be serialised leaves
    no trace.
    """
    text = json.dumps(
        value, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii, separators=separators
    )
    atomic_write_text(target, text + "\n" if trailing_newline else text, permissions=permissions)
