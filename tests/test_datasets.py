"""Datasets: mirror first, then cache, then a verified download (from a loopback server)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pollwatch.errors import DatasetError
from pollwatch.results.datasets import DATASETS, Dataset, fetch, locate
from pollwatch.settings import Settings
from tests.loopback import serve_folder

PAYLOAD = b"region,tik,uik\n" * 5000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "data.csv").write_bytes(PAYLOAD)
    with serve_folder(www) as url:
        yield url


def dataset(url: str | None, sha256: str | None = None) -> Dataset:
    return Dataset(
        name="test-data",
        title="test",
        folder="test_folder",
        filename="data.csv",
        sha256=sha256 or hashlib.sha256(PAYLOAD).hexdigest(),
        size=len(PAYLOAD),
        importer="mapping",
        license="CC0",
        url=url,
    )


def test_download_is_verified_cached_and_reported(tmp_path: Path, server: str) -> None:
    settings = Settings(home=tmp_path / "home")
    seen: list[int] = []
    path = fetch(dataset(f"{server}/data.csv"), settings, progress=lambda d, t: seen.append(d))
    assert path == settings.datasets_cache / "test_folder" / "data.csv"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == len(PAYLOAD)
    # a second fetch uses the cache: the server is not needed any more
    assert fetch(dataset("http://127.0.0.1:9/unreachable"), settings) == path


def test_checksum_mismatch_keeps_nothing(tmp_path: Path, server: str) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(DatasetError, match="checksum"):
        fetch(dataset(f"{server}/data.csv", sha256="0" * 64), settings)
    assert list((settings.datasets_cache / "test_folder").iterdir()) == []


def test_unreachable_source_says_to_use_a_mirror(tmp_path: Path, server: str) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(DatasetError, match="POLLWATCH_DATA_MIRROR"):
        fetch(dataset(f"{server}/missing.csv"), settings)


def test_mirror_is_used_and_never_downloads(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "test_folder").mkdir(parents=True)
    (mirror / "test_folder" / "data.csv").write_bytes(PAYLOAD)
    settings = Settings(home=tmp_path / "home", data_mirror=mirror)
    assert fetch(dataset("http://127.0.0.1:9/x"), settings) == mirror / "test_folder" / "data.csv"
    (mirror / "test_folder" / "data.csv").write_bytes(PAYLOAD + b"x")
    with pytest.raises(DatasetError, match="checksum mismatch"):
        fetch(dataset("http://127.0.0.1:9/x"), settings)


def test_missing_from_mirror_is_an_error_not_a_download(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", data_mirror=tmp_path)
    with pytest.raises(DatasetError, match="not in the data mirror"):
        fetch(dataset("http://127.0.0.1:9/x"), settings)


def test_mirror_only_dataset_without_mirror(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="only from a pollwatch data mirror"):
        fetch(dataset(None), Settings(home=tmp_path))


def test_downloads_can_be_disabled(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="downloads are disabled"):
        fetch(dataset("http://127.0.0.1:9/x"), Settings(home=tmp_path, download=False))


def test_registry_has_the_reference_elections() -> None:
    names = set(DATASETS.names())
    assert {"russia-2011", "russia-2012", "russia-2018", "us-2016-president-medsl"} <= names
    assert {"poland-2020-r1", "poland-2020-r2", "germany-ew2024", "uganda-2011"} <= names
    for _, entry in DATASETS.items():
        assert len(entry.sha256) == 64
        assert entry.url is None or entry.url.startswith("https://")


def test_every_registered_checksum_matches_the_mirror(mirror: Path) -> None:
    settings = Settings(home=Path("unused"), data_mirror=mirror)
    for name, entry in DATASETS.items():
        if not (mirror / entry.folder / entry.filename).is_file():
            continue
        assert locate(entry, settings) == mirror / entry.folder / entry.filename, name
