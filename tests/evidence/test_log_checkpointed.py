"""The log against its signed checkpoint: protected recovery, the cheap check, inspection.

* Recovery never removes an entry a checkpoint signed (``checkpoint_size``): a truncated log is
  refused untouched with the missing range named, while a torn, unacknowledged tail beyond the
  checkpoint is still set aside as before.
* ``check`` verifies like ``verify`` and seals what it verified; the next check re-hashes the
  sealed prefix in one pass and walks only new entries. Any change to the sealed bytes (a bit
  flip anywhere, checked as a property) falls back to the full walk and is refused.
* ``inspect_log`` changes nothing and names each damaged entry with the hash it should have.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch.errors import VerificationError
from pollwatch.evidence.log import SEAL_FILE, EvidenceLog, inspect_log
from pollwatch.evidence.merkle import leaf_hash
from tests.evidence.records import HEADER, make_log, record, record_spans


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------------------------
# Recovery never removes signed entries.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", ["kept", "truncated too", "cut mid-entry"])
def test_truncation_inside_the_signed_range_is_refused_untouched(
    tmp_path: Path, index: str
) -> None:
    make_log(tmp_path, 20)
    data = (tmp_path / "entries.bin").read_bytes()
    end_of_11 = record_spans(data)[11][1]
    (tmp_path / "entries.bin").write_bytes(data[: end_of_11 + 9])  # entry 12 torn, 13-19 gone
    if index != "kept":
        raw = (tmp_path / "entries.idx").read_bytes()
        (tmp_path / "entries.idx").write_bytes(raw[: 8 + 12 * 40 + (17 if "mid" in index else 0)])
    before = _snapshot(tmp_path)
    with pytest.raises(VerificationError) as raised:
        EvidenceLog(tmp_path, checkpoint_size=20)
    assert "holds 12 entries but its latest checkpoint signed 20: entries 12-19 are missing" in (
        str(raised.value)
    )
    assert "pollwatch evidence fsck" in str(raised.value)
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "discarded").exists()
    # Without the checkpoint's size, the old recovery still runs (what a bare log can know).
    with EvidenceLog(tmp_path) as log:
        assert log.size == 12


def test_one_missing_entry_is_named_alone(tmp_path: Path) -> None:
    make_log(tmp_path, 4)
    data = (tmp_path / "entries.bin").read_bytes()
    (tmp_path / "entries.bin").write_bytes(data[: record_spans(data)[2][1]])
    with pytest.raises(VerificationError, match="signed 4: entry 3 is missing"):
        EvidenceLog(tmp_path, checkpoint_size=4)


def test_emptied_files_are_not_a_new_log_when_a_checkpoint_exists(tmp_path: Path) -> None:
    make_log(tmp_path, 3)
    (tmp_path / "entries.bin").write_bytes(b"")
    (tmp_path / "entries.idx").write_bytes(b"")
    with pytest.raises(VerificationError, match=r"holds 0 entries .* entries 0-2 are missing"):
        EvidenceLog(tmp_path, checkpoint_size=3)
    assert (tmp_path / "entries.bin").read_bytes() == b""


def test_a_torn_tail_beyond_the_checkpoint_is_still_recovered(tmp_path: Path) -> None:
    _, root = make_log(tmp_path, 6)
    torn = record(b"never acknowledged")[:-5]
    with (tmp_path / "entries.bin").open("ab") as handle:
        handle.write(torn)
    with EvidenceLog(tmp_path, checkpoint_size=6) as log:
        assert log.recovery.bytes_discarded == len(torn)
        assert [Path(p).read_bytes() for p in log.recovery.saved] == [torn]
        assert log.check(6, root) == 6
        assert log.append([b"next"]) == [6]


def test_records_never_indexed_may_complete_a_signed_range(tmp_path: Path) -> None:
    # The index lost its last entries (a writer died between data and index, or someone cut
    # it): the records are whole, so recovery indexes them and the signed range is complete.
    entries, root = make_log(tmp_path, 8)
    raw = (tmp_path / "entries.idx").read_bytes()
    (tmp_path / "entries.idx").write_bytes(raw[: 8 + 5 * 40])
    with EvidenceLog(tmp_path, checkpoint_size=8) as log:
        assert log.recovery.entries_indexed == 3
        assert log.check(8, root) == 8
        assert list(log) == entries


# --------------------------------------------------------------------------------------------
# The cheap check and its seal.
# --------------------------------------------------------------------------------------------


def test_check_seals_and_rechecks_only_what_is_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = make_log(tmp_path, 10)
    with EvidenceLog(tmp_path) as log:
        assert log.check(10, root) == 10
    seal = json.loads((tmp_path / SEAL_FILE).read_text())
    assert (seal["entries"], seal["checkpoint"]) == (10, [10, root.hex()])
    data = (tmp_path / "entries.bin").read_bytes()
    assert seal["data_sha256"] == hashlib.sha256(data).hexdigest()

    walked: list[int] = []
    original = EvidenceLog._verify_files

    def spy(self: EvidenceLog, first: int = 0) -> tuple[int, bytes]:
        walked.append(first)
        return original(self, first)

    monkeypatch.setattr(EvidenceLog, "_verify_files", spy)
    with EvidenceLog(tmp_path) as log:
        assert log.check(10, root) == 10  # sealed: nothing walked record by record
        log.append([b"eleven", b"twelve"])
        assert log.check(10, root) == 12  # only the two new entries are walked
    assert walked == [10, 10]
    assert json.loads((tmp_path / SEAL_FILE).read_text())["entries"] == 12
    (tmp_path / SEAL_FILE).write_text("{not json")
    with EvidenceLog(tmp_path) as log:
        assert log.check(10, root) == 12  # a broken seal only costs a full walk
    assert walked[-1] == 0


def test_check_refuses_a_wrong_root_and_a_short_log(tmp_path: Path) -> None:
    _, root = make_log(tmp_path, 5)
    with EvidenceLog(tmp_path) as log:
        with pytest.raises(VerificationError, match=r"root at size 5 is .* checkpoint says 00"):
            log.check(5, bytes(32))
        with pytest.raises(VerificationError, match=r"holds 5 entries .* signed 7: entries 5-6"):
            log.check(7, root)
        assert log.check(5, root) == 5


def test_a_flip_after_the_seal_is_found_by_the_next_check(tmp_path: Path) -> None:
    _, root = make_log(tmp_path, 10)
    with EvidenceLog(tmp_path) as log:
        log.check(10, root)
    path = tmp_path / "entries.bin"
    data = bytearray(path.read_bytes())
    data[record_spans(bytes(data))[4][0] + HEADER + 2] ^= 0x01
    path.write_bytes(bytes(data))
    with (
        EvidenceLog(tmp_path, checkpoint_size=10) as log,  # opening alone does not see it
        pytest.raises(VerificationError, match=r"entry 4 at byte \d+ .* does not match"),
    ):
        log.check(10, root)


# Any bit flipped anywhere in a sealed log's data file is refused by the check (the property
# the cheap path must keep: it may never trust bytes that changed since they were verified).
SEALED = tempfile.mkdtemp(prefix="pollwatch-sealed-")
SEALED_ENTRIES, SEALED_ROOT = make_log(Path(SEALED), 9)
with EvidenceLog(SEALED) as _log:
    _log.check(9, SEALED_ROOT)
SEALED_FILES = _snapshot(Path(SEALED))
shutil.rmtree(SEALED)
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bit=st.integers(0, len(SEALED_FILES["entries.bin"]) * 8 - 1))
def test_any_bit_flip_in_a_sealed_log_is_refused(bit: int) -> None:
    data = bytearray(SEALED_FILES["entries.bin"])
    data[bit // 8] ^= 1 << (bit % 8)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        for name, content in SEALED_FILES.items():
            (Path(folder) / name).write_bytes(content)
        (Path(folder) / "entries.bin").write_bytes(bytes(data))
        with pytest.raises(VerificationError), EvidenceLog(folder, checkpoint_size=9) as log:
            log.check(9, SEALED_ROOT)


# --------------------------------------------------------------------------------------------
# Inspection: read-only, every damaged entry named.
# --------------------------------------------------------------------------------------------


def test_inspection_names_a_flipped_entry_and_what_it_should_hash_to(tmp_path: Path) -> None:
    entries, _ = make_log(tmp_path, 8)
    path = tmp_path / "entries.bin"
    data = bytearray(path.read_bytes())
    start, _ = record_spans(bytes(data))[5]
    data[start + HEADER + 1] ^= 0x20
    path.write_bytes(bytes(data))
    before = _snapshot(tmp_path)
    seen: dict[int, bytes] = {}
    inspection = inspect_log(tmp_path, lambda index, payload: seen.setdefault(index, payload))
    assert _snapshot(tmp_path) == before
    [damage] = inspection.damaged
    assert (damage.index, damage.offset) == (5, start)
    assert damage.expected_leaf == leaf_hash(entries[5])
    assert damage.actual_leaf == leaf_hash(
        bytes(data[start + HEADER : start + HEADER + len(entries[5])])
    )
    assert inspection.entries == 8 and inspection.missing_from is None
    assert sorted(seen) == [0, 1, 2, 3, 4, 6, 7] and seen[6] == entries[6]


def test_inspection_reports_truncation_and_leftovers(tmp_path: Path) -> None:
    make_log(tmp_path, 6)
    data = (tmp_path / "entries.bin").read_bytes()
    (tmp_path / "entries.bin").write_bytes(data[: record_spans(data)[3][1] + 7])
    inspection = inspect_log(tmp_path)
    assert (inspection.entries, inspection.index_entries, inspection.missing_from) == (4, 6, 4)

    other = tmp_path / "other"
    make_log(other, 3)
    with (other / "entries.bin").open("ab") as handle:
        handle.write(record(b"whole, never indexed") + b"\x00\x00\x01")
    with (other / "entries.idx").open("ab") as handle:
        handle.write(b"\x00" * 11)
    inspection = inspect_log(other)
    assert inspection.unindexed_records == 1
    assert (inspection.tail_bytes, inspection.index_partial_bytes) == (3, 11)
    assert not inspection.damaged
