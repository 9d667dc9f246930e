"""Shared fixtures: the real-data mirror (skips when absent) and a throwaway store home.

Random streams. A test that checks a Monte Carlo figure must hold for any random stream, with a
tolerance taken from the figure's spread over seeds (measured, and written next to the
assertion), not from the one stream a seed happens to give under today's numpy. To check that,
run the suite with ``--seed-salt N`` (or ``POLLWATCH_TEST_SEED_SALT=N``): every
``numpy.random.default_rng(seed)`` in pollwatch and in the tests then draws from another stream
(the seed mixed with N, still deterministic, so same-seed comparisons still hold). Tests that
pin one exact stream on purpose (a regression under ``requirements.lock``) carry the marker
``exact_stream`` and are skipped under a salt.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Mixed into salted seeds so that salt 0 still differs from no salt.
_SALT_TAG = 0x5EED5A17


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--seed-salt",
        type=int,
        default=None,
        help="draw every numpy default_rng(seed) from another stream (seed mixed with this "
        "number); tests marked exact_stream are skipped",
    )


def _seed_salt(config: pytest.Config) -> int | None:
    salt = config.getoption("--seed-salt")
    if salt is None and os.environ.get("POLLWATCH_TEST_SEED_SALT"):
        salt = int(os.environ["POLLWATCH_TEST_SEED_SALT"])
    return salt


def _salted_default_rng(salt: int) -> Any:
    original = np.random.default_rng

    def default_rng(seed: Any = None) -> np.random.Generator:
        if seed is None or isinstance(seed, np.random.Generator | np.random.BitGenerator):
            return original(seed)
        if isinstance(seed, np.random.SeedSequence):
            spawn_key = (*seed.spawn_key, _SALT_TAG, salt)
            return original(np.random.SeedSequence(seed.entropy, spawn_key=spawn_key))
        entropy = [int(v) for v in np.atleast_1d(np.asarray(seed)).ravel()]
        return original(np.random.SeedSequence([*entropy, _SALT_TAG, salt]))

    default_rng.salted = True  # type: ignore[attr-defined]
    return default_rng


def seed_salted() -> bool:
    """Whether this run draws salted streams (``--seed-salt``), in this process only."""
    return bool(getattr(np.random.default_rng, "salted", False))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "exact_stream: pins one exact random stream (a regression under requirements.lock); "
        "skipped under --seed-salt",
    )
    salt = _seed_salt(config)
    if salt is not None:
        np.random.default_rng = _salted_default_rng(salt)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    salt = _seed_salt(config)
    if salt is None:
        return
    skip = pytest.mark.skip(
        reason=f"exact-stream regression under requirements.lock; streams moved by --seed-salt "
        f"{salt}"
    )
    for item in items:
        if "exact_stream" in item.keywords:
            item.add_marker(skip)


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
