"""Folders of ``<home>/video``: private to the account that runs pollwatch (mode 0700).

The video folder holds the account store, the playback policy and the recorder's spool of
footage not yet archived, so whichever command creates it first (``pollwatch video record``,
``simulate-camera``, ``user add``, ``serve``) creates it, and every missing folder on the way,
with mode 0700. :func:`Path.mkdir` would not: with ``parents=True`` it makes the missing parents
with the default mode (0755 under the usual umask), whatever ``mode`` says.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_folder"]


def private_folder(folder: Path, *, tighten: bool = False) -> Path:
    """Create ``folder`` and its missing parents with mode 0700; OSError if that fails.

    Folders that already exist keep their mode, unless ``tighten`` is set: then ``folder``
    itself loses any group and other permissions.
    """
    folder = Path(folder)
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process made it in the meantime
        os.chmod(path, 0o700)  # exactly 0700, whatever the umask
    if tighten and not missing and folder.stat().st_mode & 0o077:
        os.chmod(folder, folder.stat().st_mode & 0o700)
    return folder
