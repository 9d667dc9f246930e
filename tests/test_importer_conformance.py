"""The shared conformance suite: every registered importer passes it automatically.

It checks the contract of :mod:`pollwatch.results.importers.base`: ``detect`` never raises and
recognises the importer's own example; ``read`` gives the example's totals, is idempotent
(same content digest twice), and answers garbage with a PollwatchError, never a traceback.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch.errors import PollwatchError
from pollwatch.results.checks import check_protocols
from pollwatch.results.importers import all_importers

IMPORTERS = all_importers()
IDS = [i.name for i in IMPORTERS]


def test_builtins_are_registered() -> None:
    assert {"russia-cec", "medsl", "openelections", "nist-1500-100", "mapping"} <= set(IDS)


@pytest.mark.parametrize("importer", IMPORTERS, ids=IDS)
def test_example_reads_to_its_totals(importer, tmp_path: Path) -> None:
    example = importer.example(tmp_path)
    election = importer.read(example.path, mapping=example.mapping, options=example.options)
    assert election.totals() == dict(example.totals)
    assert len(election) == example.stations
    assert election.meta.importer == importer.name
    check_protocols(election)  # findings, never a crash


@pytest.mark.parametrize("importer", IMPORTERS, ids=IDS)
def test_read_is_idempotent(importer, tmp_path: Path) -> None:
    example = importer.example(tmp_path)
    first = importer.read(example.path, mapping=example.mapping, options=example.options)
    second = importer.read(example.path, mapping=example.mapping, options=example.options)
    assert first.content_digest() == second.content_digest()
    assert first.meta == second.meta


@pytest.mark.parametrize("importer", IMPORTERS, ids=IDS)
def test_detect_recognises_own_example(importer, tmp_path: Path) -> None:
    if importer.needs_mapping:
        pytest.skip("a mapping importer is chosen by --mapping, not detected")
    example = importer.example(tmp_path)
    assert importer.detect(example.path) >= 0.5


def _garbage_files(folder: Path) -> list[Path]:
    files = {
        "empty.csv": b"",
        "binary.csv": bytes(range(256)) * 4,
        "one-column.csv": b"a\n1\n2\n",
        "latin1.csv": "région;votes\nÎle;12\n".encode("latin-1"),
        "text.json": b'{"not": "an election"}',
        "broken.json": b'{"@type": "ElectionResults.ElectionReport", ',
    }
    paths = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    png_zip = folder / "image.zip"
    with zipfile.ZipFile(png_zip, "w") as archive:
        archive.writestr("picture.png", b"\x89PNG\r\n\x1a\n" + bytes(64))
    paths.append(png_zip)
    bad_gz = folder / "bad.csv.gz"
    bad_gz.write_bytes(gzip.compress(b"x,y\n1,2\n")[:-6])
    paths.append(bad_gz)
    paths.append(folder / "missing.csv")
    paths.append(folder)
    return paths


@pytest.mark.parametrize("importer", IMPORTERS, ids=IDS)
def test_garbage_gives_clean_errors(importer, tmp_path: Path) -> None:
    example = importer.example(tmp_path / "example")
    for path in _garbage_files(tmp_path):
        score = importer.detect(path)
        assert 0.0 <= score <= 1.0
        assert not (score >= 0.5 and path.name.startswith(("empty", "binary")))
        with pytest.raises(PollwatchError):
            importer.read(path, mapping=example.mapping, options=example.options)


@pytest.mark.parametrize("importer", IMPORTERS, ids=IDS)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=2000), as_text=st.booleans())
def test_random_bytes_never_traceback(importer, tmp_path: Path, data: bytes, as_text: bool) -> None:
    example_dir = tmp_path / "example"
    example = importer.example(example_dir)
    path = tmp_path / ("random.csv" if as_text else "random.bin")
    path.write_bytes(data)
    assert 0.0 <= importer.detect(path) <= 1.0
    with contextlib.suppress(PollwatchError):
        importer.read(path, mapping=example.mapping, options=example.options)


@pytest.mark.parametrize("importer", IMPORTERS, ids=IDS)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cut=st.floats(min_value=0.0, max_value=1.0), junk=st.binary(max_size=40))
def test_damaged_example_never_tracebacks(
    importer, tmp_path: Path, cut: float, junk: bytes
) -> None:
    """Truncate the importer's own valid example and splice junk in: a clean error or a read."""
    example = importer.example(tmp_path / "example")
    raw = example.path.read_bytes()
    if example.path.suffix in {".zip", ".gz"}:
        raw = _unpack_single(example.path)
    position = int(len(raw) * cut)
    damaged = tmp_path / ("damaged" + "".join(example.path.suffixes[:1]) or ".csv")
    damaged.write_bytes(raw[:position] + junk + raw[position + len(junk) :])
    with contextlib.suppress(PollwatchError):
        importer.read(damaged, mapping=example.mapping, options=example.options)


def _unpack_single(path: Path) -> bytes:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        return archive.read(archive.namelist()[0])
