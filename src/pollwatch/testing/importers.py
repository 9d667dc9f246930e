"""Checks every importer must pass (the contract of :mod:`pollwatch.results.importers.base`).

``detect`` never raises and recognises the importer's own example; ``read`` gives the
example's totals, is idempotent (same content digest twice), and answers garbage, random bytes
and damaged copies of its example with a PollwatchError, never a traceback. Each check writes
its files into a temporary folder of its own.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np

from pollwatch.errors import PollwatchError
from pollwatch.results.checks import check_protocols
from pollwatch.results.importers.base import IMPORTERS, Example, Importer
from pollwatch.results.model import Election
from pollwatch.testing._checks import Check, Skipped, run_checks

__all__ = ["check_importer", "importer_checks"]

#: random inputs per fuzzing check (each is one read)
FUZZ_EXAMPLES = 40
#: seed of the fuzzing inputs; a run under another numpy stream draws other inputs
FUZZ_SEED = 20240614
#: bytes of text-like random inputs: digits, letters, separators, quotes, brackets, newlines
_TEXT_BYTES = np.frombuffer(b"0123456789abcxyzABC ,;\t\"'{}[]:.-\r\n\n\n", dtype=np.uint8)


def _folder() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="pollwatch-check-")


def _read(importer: Importer, path: Path, example: Example) -> Election:
    return importer.read(path, mapping=example.mapping, options=example.options)


def _describe(data: bytes) -> str:
    head = data[:48]
    return f"{len(data)} bytes, starting {head!r}" if data else "0 bytes"


def _detect(importer: Importer, path: Path, what: str) -> float:
    """``detect(path)``, which must be a confidence in [0, 1] and never raise."""
    try:
        score = importer.detect(path)
    except Exception as exc:
        raise AssertionError(f"detect raised {type(exc).__name__} on {what}: {exc}") from exc
    assert isinstance(score, int | float) and 0.0 <= score <= 1.0, (
        f"detect gave {score!r} on {what}, not a confidence in [0, 1]"
    )
    return float(score)


def _never_tracebacks(importer: Importer, path: Path, example: Example, what: str) -> None:
    """Read ``path``: a clean PollwatchError or an election; anything else fails the check."""
    try:
        _read(importer, path, example)
    except PollwatchError:
        pass
    except Exception as exc:
        raise AssertionError(
            f"read raised {type(exc).__name__}, not a PollwatchError, on {what}: {exc}"
        ) from exc


# --- the checks ----------------------------------------------------------------------------


def check_class_attributes(importer: Importer) -> None:
    """Name and description said, registered under its name, needs_mapping a bool."""
    cls = type(importer)
    for attribute in ("name", "description"):
        value = getattr(cls, attribute, None)
        assert isinstance(value, str) and value.strip(), f"{attribute} is missing or empty"
    assert type(cls.needs_mapping) is bool, f"needs_mapping must be a bool: {cls.needs_mapping!r}"
    registered = [name for name, other in IMPORTERS.items() if other is cls]
    for name in registered:
        assert name == cls.name, f"registered as {name!r} but its name is {cls.name!r}"
    if not registered and cls.name in IMPORTERS:
        raise AssertionError(f"name {cls.name!r} is registered to another importer")


def check_example_reads_to_its_totals(importer: Importer) -> None:
    """The importer's own example reads to the totals and station count it promises."""
    with _folder() as folder:
        example = importer.example(Path(folder))
        election = _read(importer, example.path, example)
    assert election.totals() == dict(example.totals), (
        f"totals {election.totals()} are not the example's {dict(example.totals)}"
    )
    assert len(election) == example.stations, (
        f"{len(election)} stations read, the example has {example.stations}"
    )
    assert election.meta.importer == importer.name, (
        f"meta.importer is {election.meta.importer!r}, not {importer.name!r}"
    )
    check_protocols(election)  # findings, never a crash


def check_read_is_idempotent(importer: Importer) -> None:
    """Reading the same file twice gives the same content digest and metadata."""
    with _folder() as folder:
        example = importer.example(Path(folder))
        first = _read(importer, example.path, example)
        second = _read(importer, example.path, example)
    assert first.content_digest() == second.content_digest(), "two reads differ"
    assert first.meta == second.meta, "two reads give different metadata"


def check_detect_recognises_own_example(importer: Importer) -> None:
    """``detect`` is at least 0.5 on the own example (a mapping importer: within 0..1)."""
    with _folder() as folder:
        example = importer.example(Path(folder))
        score = _detect(importer, example.path, "the importer's own example")
    if not importer.needs_mapping:  # a mapping importer is chosen by --mapping, not detected
        assert score >= 0.5, f"detect gives {score} on the importer's own example"


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


def check_garbage_gives_clean_errors(importer: Importer) -> None:
    """Empty, binary, foreign, truncated, missing files: detect in 0..1, read a PollwatchError."""
    with _folder() as name:
        folder = Path(name)
        example = importer.example(folder / "example")
        garbage = folder / "garbage"
        garbage.mkdir()
        for path in _garbage_files(garbage):
            score = _detect(importer, path, path.name)
            assert not (score >= 0.5 and path.name.startswith(("empty", "binary"))), (
                f"detect claims {path.name} ({score})"
            )
            try:
                _read(importer, path, example)
            except PollwatchError:
                continue
            except Exception as exc:
                raise AssertionError(
                    f"read raised {type(exc).__name__}, not a PollwatchError, on {path.name}: {exc}"
                ) from exc
            raise AssertionError(f"read accepted the garbage file {path.name}")


def _random_inputs(rng: np.random.Generator) -> Iterator[bytes]:
    yield from (b"", b"\n", b"\x00", b"\xef\xbb\xbf", b",;\t\n", b'"', b"{}", b"[]")
    for i in range(FUZZ_EXAMPLES):
        size = int(rng.integers(0, 2001 if i % 2 else 65))
        if i % 4 < 2:
            yield rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        else:
            yield rng.choice(_TEXT_BYTES, size).tobytes()


def check_random_bytes_never_traceback(importer: Importer) -> None:
    """Random bytes (binary and text-like, up to 2,000): detect in 0..1, read never crashes."""
    rng = np.random.default_rng(FUZZ_SEED)
    with _folder() as name:
        folder = Path(name)
        example = importer.example(folder / "example")
        for i, data in enumerate(_random_inputs(rng)):
            path = folder / f"random{i}{('.csv', '.bin', '.json')[i % 3]}"
            path.write_bytes(data)
            _detect(importer, path, f"{path.name} ({_describe(data)})")
            _never_tracebacks(importer, path, example, f"{path.name} ({_describe(data)})")


def _unpack_single(path: Path) -> tuple[bytes, str]:
    """The content of a one-file .gz or .zip, and the suffix of the file inside."""
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()), Path(path.stem).suffix
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        inner = archive.namelist()[0]
        return archive.read(inner), Path(inner).suffix


def check_damaged_example_never_tracebacks(importer: Importer) -> None:
    """The own example truncated at random and spliced with junk: a clean error or a read."""
    rng = np.random.default_rng(FUZZ_SEED + 1)
    with _folder() as name:
        folder = Path(name)
        example = importer.example(folder / "example")
        if example.path.suffix in {".zip", ".gz"}:
            raw, suffix = _unpack_single(example.path)
        else:
            raw, suffix = example.path.read_bytes(), example.path.suffix
        for i in range(FUZZ_EXAMPLES):
            position = int(len(raw) * float(rng.random()))
            junk = rng.integers(0, 256, int(rng.integers(0, 41)), dtype=np.uint8).tobytes()
            damaged = folder / f"damaged{i}{suffix or '.csv'}"
            damaged.write_bytes(raw[:position] + junk + raw[position + len(junk) :])
            what = f"the example cut at byte {position} with {junk!r} spliced in"
            _never_tracebacks(importer, damaged, example, what)


#: every importer check, in the order they run
IMPORTER_CHECKS: tuple[Callable[[Importer], None], ...] = (
    check_class_attributes,
    check_example_reads_to_its_totals,
    check_read_is_idempotent,
    check_detect_recognises_own_example,
    check_garbage_gives_clean_errors,
    check_random_bytes_never_traceback,
    check_damaged_example_never_tracebacks,
)


def importer_checks(importer: Importer | type[Importer]) -> Iterator[Check]:
    """The checks of one importer (an instance, or a class built without arguments)."""
    instance = importer() if isinstance(importer, type) else importer
    subject = str(getattr(instance, "name", type(instance).__name__))
    for function in IMPORTER_CHECKS:
        yield Check(subject, function.__name__.removeprefix("check_"), partial(function, instance))


def check_importer(importer: Importer | type[Importer]) -> tuple[Skipped, ...]:
    """Run every importer check: the skipped ones, or AssertionError naming the failure."""
    return run_checks(importer_checks(importer))
