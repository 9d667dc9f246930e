"""Shared fixtures: the real-data mirror (skips when absent) and a throwaway store home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _mirror() -> Path | None:
    value = os.environ.get("POLLWATCH_DATA_MIRROR")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real-data mirror (``POLLWATCH_DATA_MIRROR``); skips the test when it is absent."""
    path = _mirror()
    if path is None:
        pytest.skip(
            "real-data mirror absent: set POLLWATCH_DATA_MIRROR to a folder laid out like "
            "shared/data (CI sets it to ../shared/data)"
        )
    return path


def mirror_file(mirror: Path, relative: str) -> Path:
    """A file in the mirror, skipping the test when that one file is missing."""
    path = mirror / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the data mirror {mirror}")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty pollwatch home, set through POLLWATCH_HOME for the test's duration."""
    folder = tmp_path / "home"
    monkeypatch.setenv("POLLWATCH_HOME", str(folder))
    monkeypatch.delenv("POLLWATCH_CONFIG", raising=False)
    return folder
