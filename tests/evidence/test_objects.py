"""The object store: a conformance suite every registered backend passes, and filesystem details.

The suite is parametrised over ``BACKENDS``, so a backend registered later (S3 with object lock)
runs it automatically; it gets a fresh store from ``Backend.for_conformance_tests(folder)``.
Damaging a stored object needs a backend-specific hook (``TAMPER``); a backend without one
skips only those tests, saying so.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.objects import (
    BACKENDS,
    CHUNK_SIZE,
    FilesystemBackend,
    ObjectBackend,
    ObjectInfo,
    check_sha256,
)


def _flip_file_bit(backend: ObjectBackend, sha256: str, position: int) -> None:
    assert isinstance(backend, FilesystemBackend)
    path = backend.path_of(sha256)
    path.chmod(0o644)  # the store made it read-only; a test (or an attacker) may undo that
    with path.open("r+b") as handle:
        handle.seek(position)
        byte = handle.read(1)
        handle.seek(position)
        handle.write(bytes([byte[0] ^ 0x10]))
    path.chmod(0o444)


TAMPER: dict[str, Callable[[ObjectBackend, str, int], None]] = {"filesystem": _flip_file_bit}


@pytest.fixture(params=BACKENDS.names())
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectBackend:
    return BACKENDS.get(request.param).for_conformance_tests(tmp_path / "store")


def _tamper(backend: ObjectBackend, sha256: str, position: int) -> None:
    hook = TAMPER.get(backend.name)
    if hook is None:
        pytest.skip(f"no way to damage an object in the {backend.name!r} backend from a test")
    hook(backend, sha256, position)


class GeneratedStream(io.RawIOBase):
    """``size`` pseudo-random bytes, produced on demand (never held whole in memory)."""

    def __init__(self, size: int, seed: int = 1) -> None:
        self.remaining = size
        self.counter = seed

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.remaining)
        block = hashlib.sha256(self.counter.to_bytes(8, "big")).digest() * 2048  # 64 KiB
        done = 0
        while done < count:
            take = min(len(block), count - done)
            buffer[done : done + take] = block[:take]
            done += take
        self.counter += 1
        self.remaining -= count
        return count


def _digest_of_generated(size: int, seed: int = 1) -> str:
    stream = GeneratedStream(size, seed)
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    while count := stream.readinto(memoryview(buffer)):
        digest.update(buffer[:count])
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Conformance suite.
# --------------------------------------------------------------------------------------------


def test_round_trip(backend: ObjectBackend) -> None:
    data = b"polling station 17, protocol photo\n" * 100
    info = backend.put(io.BytesIO(data))
    assert info == ObjectInfo(hashlib.sha256(data).hexdigest(), len(data))
    assert backend.exists(info.sha256)
    assert backend.stat(info.sha256) == info
    with backend.open(info.sha256) as handle:
        assert handle.read() == data
    assert backend.read_verified(info.sha256) == data
    assert list(backend.iter_hashes()) == [info.sha256]
    backend.verify(info.sha256)


def test_empty_object(backend: ObjectBackend) -> None:
    info = backend.put(io.BytesIO(b""))
    assert info == ObjectInfo(hashlib.sha256(b"").hexdigest(), 0)
    assert backend.read_verified(info.sha256) == b""


def test_same_content_stored_once(backend: ObjectBackend) -> None:
    first = backend.put(io.BytesIO(b"same bytes"))
    second = backend.put(io.BytesIO(b"same bytes"))
    other = backend.put_bytes(b"other bytes")
    assert first == second
    assert sorted([first.sha256, other.sha256]) == list(backend.iter_hashes())


def test_concurrent_puts_of_the_same_bytes(backend: ObjectBackend) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 5)
    results: list[ObjectInfo] = []
    threads = [
        threading.Thread(target=lambda: results.append(backend.put(io.BytesIO(data))))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert list(backend.iter_hashes()) == [hashlib.sha256(data).hexdigest()]
    assert backend.read_verified(results[0].sha256) == data


def test_large_file_is_streamed_with_bounded_memory(backend: ObjectBackend) -> None:
    size = 50 * 1000 * 1000
    expected = _digest_of_generated(size)
    tracemalloc.start()
    try:
        info = backend.put(GeneratedStream(size))  # type: ignore[arg-type]
        _, peak_put = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sink = hashlib.sha256()

        class Sink(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, data: object) -> int:
                sink.update(data)  # type: ignore[arg-type]
                return len(data)  # type: ignore[arg-type]

        backend.copy_verified(info.sha256, Sink())  # type: ignore[arg-type]
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info == ObjectInfo(expected, size)
    assert sink.hexdigest() == expected
    # A few chunks at most, against 50 MB of content.
    assert peak_put < 8 * CHUNK_SIZE, peak_put
    assert peak_read < 8 * CHUNK_SIZE, peak_read
    with pytest.raises(EvidenceError, match="more than"):
        backend.read_verified(info.sha256, limit=10 * CHUNK_SIZE)


@pytest.mark.parametrize("position", [0, 1, 4096, 3 * CHUNK_SIZE - 1])
def test_bit_flip_is_detected(backend: ObjectBackend, position: int) -> None:
    data = bytes(range(256)) * (3 * CHUNK_SIZE // 256)
    info = backend.put_bytes(data)
    backend.verify(info.sha256)
    _tamper(backend, info.sha256, position)
    with pytest.raises(VerificationError) as caught:
        backend.verify(info.sha256)
    assert info.sha256 in caught.value.message
    assert "damaged" in caught.value.message
    assert caught.value.hint
    with pytest.raises(VerificationError):
        backend.read_verified(info.sha256)
    with pytest.raises(VerificationError):
        backend.copy_verified(info.sha256, io.BytesIO())
    # The store never repairs or replaces an object behind the user's back.
    assert backend.put_bytes(data) == info
    with pytest.raises(VerificationError):
        backend.verify(info.sha256)


def test_unknown_hash(backend: ObjectBackend) -> None:
    unknown = hashlib.sha256(b"never stored").hexdigest()
    assert not backend.exists(unknown)
    calls: list[Callable[[], object]] = [
        lambda: backend.open(unknown),
        lambda: backend.stat(unknown),
        lambda: backend.verify(unknown),
        lambda: backend.read_verified(unknown),
    ]
    for call in calls:
        with pytest.raises(EvidenceError) as caught:
            call()
        assert not isinstance(caught.value, VerificationError)
        assert unknown in caught.value.message
        assert caught.value.hint


@pytest.mark.parametrize(
    "bad", ["", "abc", "g" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, None, 12, b"a" * 64]
)
def test_malformed_hash(backend: ObjectBackend, bad: object) -> None:
    for method in (backend.open, backend.stat, backend.exists, backend.verify):
        with pytest.raises(EvidenceError) as caught:
            method(bad)  # type: ignore[arg-type]
        assert "not a SHA-256 object hash" in caught.value.message
        assert caught.value.hint


def test_interface_has_no_way_to_delete_or_overwrite(backend: ObjectBackend) -> None:
    public = {name for name in dir(backend) if not name.startswith("_")}
    assert public.isdisjoint({"delete", "remove", "unlink", "overwrite", "replace", "update"})
    abstract = set(ObjectBackend.__abstractmethods__)
    assert abstract == {"put", "open", "stat", "exists", "iter_hashes"}


# --------------------------------------------------------------------------------------------
# Filesystem backend details.
# --------------------------------------------------------------------------------------------


def test_registry_has_filesystem() -> None:
    assert BACKENDS.get("filesystem") is FilesystemBackend
    assert BACKENDS.kind == "object backend"
    assert BACKENDS.group == "pollwatch.evidence_backends"


def test_filesystem_layout_and_permissions(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path)
    info = backend.put_bytes(b"ballot box 3")
    path = tmp_path / info.sha256[:2] / info.sha256[2:4] / info.sha256
    assert backend.path_of(info.sha256) == path
    assert path.read_bytes() == b"ballot box 3"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert list((tmp_path / ".incoming").iterdir()) == []
    # Hashes are case-insensitive on the way in, canonical (lower case) on the way out.
    assert backend.stat(info.sha256.upper()) == info
    assert check_sha256(" " + info.sha256.upper()) == info.sha256


def test_failed_put_leaves_nothing(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path)

    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            self.calls += 1
            if self.calls > 2:
                raise OSError("camera upload interrupted")
            buffer[:10] = b"x" * 10
            return 10

    with pytest.raises(OSError, match="interrupted"):
        backend.put(Broken())  # type: ignore[arg-type]
    assert list(backend.iter_hashes()) == []
    assert list((tmp_path / ".incoming").iterdir()) == []


def test_text_stream_is_refused(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path)
    with pytest.raises(EvidenceError, match="binary stream"):
        backend.put(io.StringIO("text"))  # type: ignore[arg-type]
    assert list((tmp_path / ".incoming").iterdir()) == []


def test_stray_files_are_not_objects(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path)
    info = backend.put_bytes(b"kept")
    (tmp_path / "notes.txt").write_text("not an object")
    (tmp_path / info.sha256[:2] / info.sha256[2:4] / ("0" * 64)).write_text("misplaced")
    (tmp_path / ".incoming" / "put-x.part").write_text("left by a crash")
    assert list(backend.iter_hashes()) == [info.sha256]


def test_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the store should be")
    with pytest.raises(EvidenceError, match="cannot create the object store"):
        FilesystemBackend(blocker / "store")
