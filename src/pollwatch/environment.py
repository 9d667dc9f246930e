"""The software a number was computed with: pollwatch's version and its numeric dependencies.

Every forensic result and calibration table records :func:`numeric_versions`, so a reader can
rebuild the environment of any published figure from ``requirements.lock`` (or pin the same
releases by hand) and get the same numbers: a random stream, a kernel density or a solver can
change between releases of numpy, scipy or polars even when pollwatch does not.

Core module: imports nothing from pollwatch but the version.
"""

from __future__ import annotations

import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from pollwatch import __version__

#: The packages whose releases can move a computed figure.
NUMERIC_PACKAGES = ("numpy", "scipy", "polars", "pyarrow")


def numeric_versions() -> dict[str, str]:
    """``{"pollwatch": ..., "python": ..., "numpy": ..., ...}`` for this process (a new dict).

    A package that is not installed is recorded as ``"absent"``.
    """
    return dict(_versions())


@cache
def _versions() -> tuple[tuple[str, str], ...]:
    versions = [("pollwatch", __version__), ("python", platform.python_version())]
    for name in NUMERIC_PACKAGES:
        try:
            versions.append((name, version(name)))
        except PackageNotFoundError:
            versions.append((name, "absent"))
    return tuple(versions)


__all__ = ["NUMERIC_PACKAGES", "numeric_versions"]
