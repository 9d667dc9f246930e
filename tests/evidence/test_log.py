"""The append-only log: entries, roots and proofs, recovery rules, and tamper detection.

The property tests damage a closed log's data file in every way the issue names (bit flip,
truncation, reordering, insertion, deletion) and require that opening and verifying it against
the trusted size and root either raises VerificationError or reads back exactly the original
log (damage that only added bytes after the last record: an append that was never made).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.log import (
    DATA_MAGIC,
    INDEX_MAGIC,
    MAX_ENTRY_SIZE,
    EvidenceLog,
    canonical_json,
)
from pollwatch.evidence.merkle import (
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.evidence.records import HEADER, make_log, record, record_spans, sample_entries

# --------------------------------------------------------------------------------------------
# Basics.
# --------------------------------------------------------------------------------------------


def test_canonical_json() -> None:
    value = {"b": 1, "a": ["é", None, True], "c": {"z": 0, "y": "x"}}
    assert canonical_json(value) == '{"a":["é",null,true],"b":1,"c":{"y":"x","z":0}}'.encode()
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1})
    for bad in (math.nan, {"when": object()}, {"x": math.inf}):
        with pytest.raises(EvidenceError, match="canonical JSON"):
            canonical_json(bad)


def test_append_read_roots_and_proofs(tmp_path: Path) -> None:
    entries = sample_entries(23)
    with EvidenceLog(tmp_path / "log") as log:
        assert log.size == 0
        assert log.root() == root_hash([])
        assert log.append(entries[:10]) == list(range(10))
        first_root = log.root()
        assert log.append(entries[10:]) == list(range(10, 23))
        assert log.size == len(log) == 23
        assert list(log) == entries
        leaves = [leaf_hash(entry) for entry in entries]
        assert [log.leaf_hash(i) for i in range(23)] == leaves
        assert log.root() == root_hash(leaves)
        assert log.root(10) == first_root == root_hash(leaves[:10])
        for index in (0, 9, 22):
            verify_inclusion(leaves[index], index, 23, log.inclusion_proof(index), log.root())
            verify_inclusion(leaves[3], 3, 10, log.inclusion_proof(3, 10), first_root)
        verify_consistency(10, 23, first_root, log.root(), log.consistency_proof(10))
        assert log.verify() == 23
        assert log.verify(23, root_hash(leaves)) == 23
        assert log.verify(10, first_root, allow_growth=True) == 23
        assert log.append([]) == []
    with EvidenceLog(tmp_path / "log", create=False) as again:
        assert again.recovery.clean
        assert again.size == 23
        assert again.root() == root_hash(leaves)
        assert again.entry(22) == entries[22]


def test_empty_entries_and_largesample_entries(tmp_path: Path) -> None:
    big = b"x" * (1 << 20)
    with EvidenceLog(tmp_path) as log:
        log.append([b"", big])
        assert log.entry(0) == b""
        assert log.entry(1) == big
        assert log.verify(2, root_hash([leaf_hash(b""), leaf_hash(big)])) == 2


def test_two_instances_see_each_other(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path) as first, EvidenceLog(tmp_path) as second:
        assert first.append([b"a", b"b"]) == [0, 1]
        assert second.append([b"c"]) == [2]
        assert first.append([b"d"]) == [3]
        assert second.size == 4
        assert second.entry(3) == b"d"
        expected = root_hash([leaf_hash(item) for item in (b"a", b"b", b"c", b"d")])
        assert first.root() == second.root() == expected
        assert first.verify(4) == second.verify(4) == 4


def test_threads_share_one_instance(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path) as log:
        given: dict[int, bytes] = {}

        def work(name: int) -> None:
            for number in range(40):
                entry = f"{name}:{number}".encode()
                (index,) = log.append([entry])
                given[index] = entry

        threads = [threading.Thread(target=work, args=(name,)) for name in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(given) == list(range(160))
        assert all(log.entry(index) == entry for index, entry in given.items())
        assert log.verify(160) == 160


def test_verify_against_a_wrong_checkpoint(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path) as log:
        log.append(sample_entries(5))
        with pytest.raises(VerificationError, match="has 5 entries, the trusted checkpoint says 4"):
            log.verify(4)
        with pytest.raises(VerificationError, match="has 5 entries, the trusted checkpoint says 6"):
            log.verify(6, allow_growth=True)
        with pytest.raises(VerificationError, match="root at size 5"):
            log.verify(5, b"\x00" * 32)
        with pytest.raises(VerificationError, match="root at size 3"):
            log.verify(3, log.root(), allow_growth=True)


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path / "log") as log:
        log.append([b"one"])
        cases: list[tuple[Callable[[], object], str]] = [
            (lambda: log.append(b"not a list"), "not one entry"),  # type: ignore[arg-type]
            (lambda: log.append(["text"]), "is str, not bytes"),  # type: ignore[list-item]
            (lambda: log.append([b"x" * (MAX_ENTRY_SIZE + 1)]), "more than"),
            (lambda: log.entry(1), "entry 1 does not exist"),
            (lambda: log.entry(-1), "entry -1 does not exist"),
            (lambda: log.leaf_hash(5), "does not exist"),
            (lambda: log.root(2), "outside 0 .. 1"),
            (lambda: log.inclusion_proof(1), "outside"),
            (lambda: log.consistency_proof(2), "outside"),
        ]
        for call, message in cases:
            with pytest.raises(EvidenceError, match=message) as caught:
                call()
            assert not isinstance(caught.value, VerificationError)
        assert log.size == 1
    with pytest.raises(EvidenceError, match="no evidence log"):
        EvidenceLog(tmp_path / "missing", create=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvidenceError, match="holds no evidence log"):
        EvidenceLog(tmp_path / "empty", create=False)
    with pytest.raises(EvidenceError, match="closed"):
        log.append([b"late"])


# --------------------------------------------------------------------------------------------
# Recovery.
# --------------------------------------------------------------------------------------------


def test_torn_record_is_discarded_and_kept_aside(tmp_path: Path) -> None:
    _, root = make_log(tmp_path, 6)
    torn = record(b"never acknowledged")[:-7]
    with (tmp_path / "entries.bin").open("ab") as handle:
        handle.write(torn)
    with EvidenceLog(tmp_path) as log:
        assert log.recovery.bytes_discarded == len(torn)
        assert log.recovery.entries_indexed == 0
        assert [Path(p).read_bytes() for p in log.recovery.saved] == [torn]
        assert log.verify(6, root) == 6
        assert log.append([b"next"]) == [6]
    with EvidenceLog(tmp_path) as log:
        assert log.recovery.clean
        assert log.entry(6) == b"next"


def test_records_written_but_not_indexed_are_recovered(tmp_path: Path) -> None:
    entries, _ = make_log(tmp_path, 6)
    extra = [b"written", b"before the crash"]
    with (tmp_path / "entries.bin").open("ab") as handle:
        handle.write(b"".join(record(item) for item in extra) + b"\x00\x00")
    with EvidenceLog(tmp_path) as log:
        assert log.recovery.entries_indexed == 2
        assert log.recovery.bytes_discarded == 2
        assert list(log) == entries + extra
        assert log.verify() == 8


def test_partial_index_entry_is_cut(tmp_path: Path) -> None:
    _, root = make_log(tmp_path, 6)
    index = tmp_path / "entries.idx"
    whole = index.read_bytes()
    index.write_bytes(whole[:-13])  # the last entry half written
    with EvidenceLog(tmp_path) as log:
        assert log.recovery.index_bytes_dropped == 40 - 13
        assert log.recovery.entries_indexed == 1
        assert not log.recovery.index_rebuilt
        assert log.verify(6, root) == 6
    assert index.read_bytes() == whole


@pytest.mark.parametrize("damage", ["delete", "empty", "magic", "long", "wrong offset"])
def test_inconsistent_index_is_rebuilt_and_kept_aside(tmp_path: Path, damage: str) -> None:
    entries, root = make_log(tmp_path, 6)
    index = tmp_path / "entries.idx"
    whole = index.read_bytes()
    if damage == "delete":
        index.unlink()
    elif damage == "empty":
        index.write_bytes(b"")
    elif damage == "magic":
        index.write_bytes(b"X" + whole[1:])
    elif damage == "long":
        index.write_bytes(whole + (10**6).to_bytes(8, "big") + b"\x07" * 32)
    else:
        index.write_bytes(whole[:-40] + (9).to_bytes(8, "big") + whole[-32:])
    with EvidenceLog(tmp_path) as log:
        assert log.recovery.index_rebuilt
        assert log.recovery.entries_indexed == 6
        assert log.verify(6, root) == 6
        assert list(log) == entries
    assert index.read_bytes() == whole
    if damage not in ("delete", "empty"):
        assert any(Path(p).name.startswith("index-") for p in log.recovery.saved)


def test_damaged_data_with_disagreeing_index_is_refused_untouched(tmp_path: Path) -> None:
    make_log(tmp_path, 6)
    data_path, index_path = tmp_path / "entries.bin", tmp_path / "entries.idx"
    data = bytearray(data_path.read_bytes())
    data[record_spans(bytes(data))[2][0] + HEADER + 3] ^= 1  # inside entry 2
    data_path.write_bytes(bytes(data))
    index_path.unlink()
    with pytest.raises(VerificationError, match=r"damaged: record at byte \d+ does not match"):
        EvidenceLog(tmp_path)
    assert data_path.read_bytes() == bytes(data)
    assert not (tmp_path / "discarded").exists()


def test_not_a_log(tmp_path: Path) -> None:
    (tmp_path / "entries.bin").write_bytes(b"hello world, not a log")
    with pytest.raises(VerificationError, match="not an evidence log data file"):
        EvidenceLog(tmp_path)


def test_new_log_files(tmp_path: Path) -> None:
    with EvidenceLog(tmp_path) as log:
        assert log.recovery.clean
    assert (tmp_path / "entries.bin").read_bytes() == DATA_MAGIC
    assert (tmp_path / "entries.idx").read_bytes() == INDEX_MAGIC


# --------------------------------------------------------------------------------------------
# Tamper detection: properties over a small log.
# --------------------------------------------------------------------------------------------

ORIGINAL = tempfile.mkdtemp(prefix="pollwatch-log-original-")
ORIGINAL_ENTRIES = [b"", b"a", *sample_entries(7), b"z" * 300]
with EvidenceLog(ORIGINAL) as _log:
    _log.append(ORIGINAL_ENTRIES[:4])
    _log.append(ORIGINAL_ENTRIES[4:])
    ORIGINAL_ROOT = _log.root()
ORIGINAL_SIZE = len(ORIGINAL_ENTRIES)
ORIGINAL_DATA = (Path(ORIGINAL) / "entries.bin").read_bytes()
ORIGINAL_INDEX = (Path(ORIGINAL) / "entries.idx").read_bytes()
SPANS = record_spans(ORIGINAL_DATA)
shutil.rmtree(ORIGINAL)
# These properties are about logic, not durability: a RAM-backed folder, where there is one,
# keeps the many fsyncs of the examples from dominating the run time.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _outcome(data: bytes, index: bytes = ORIGINAL_INDEX) -> str:
    """'refused' if opening or verifying raises VerificationError, 'identical' if the log
    reads back exactly as it was; anything else fails the test."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        (Path(folder) / "entries.bin").write_bytes(data)
        (Path(folder) / "entries.idx").write_bytes(index)
        try:
            with EvidenceLog(folder) as log:
                log.verify(ORIGINAL_SIZE, ORIGINAL_ROOT)
                assert list(log) == ORIGINAL_ENTRIES
                assert log.root() == ORIGINAL_ROOT
        except VerificationError:
            return "refused"
    return "identical"


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(bit=st.integers(0, len(ORIGINAL_DATA) * 8 - 1))
def test_any_bit_flip_in_the_data_is_detected(bit: int) -> None:
    data = bytearray(ORIGINAL_DATA)
    data[bit // 8] ^= 1 << (bit % 8)
    assert _outcome(bytes(data)) == "refused"


@PROPERTY
@given(length=st.integers(0, len(ORIGINAL_DATA) - 1))
def test_any_truncation_is_detected(length: int) -> None:
    assert _outcome(ORIGINAL_DATA[:length]) == "refused"


@PROPERTY
@given(first=st.integers(0, len(SPANS) - 1), second=st.integers(0, len(SPANS) - 1))
def test_any_reordering_is_detected(first: int, second: int) -> None:
    records = [ORIGINAL_DATA[start:end] for start, end in SPANS]
    records[first], records[second] = records[second], records[first]
    data = DATA_MAGIC + b"".join(records)
    expected = "identical" if data == ORIGINAL_DATA else "refused"
    assert _outcome(data) == expected


@PROPERTY
@given(
    position=st.integers(0, len(ORIGINAL_DATA)),
    inserted=st.one_of(
        st.binary(min_size=1, max_size=80),
        st.binary(max_size=40).map(record),  # a well-formed record, hash and all
    ),
)
def test_any_insertion_is_detected(position: int, inserted: bytes) -> None:
    data = ORIGINAL_DATA[:position] + inserted + ORIGINAL_DATA[position:]
    outcome = _outcome(data)
    if outcome == "identical":
        # Bytes after the last record are an append that was never acknowledged: recovery
        # sets them aside and the log is unchanged. Anything else must be refused.
        assert position == len(ORIGINAL_DATA)
        assert data[position:] == inserted


@PROPERTY
@given(start=st.integers(0, len(ORIGINAL_DATA) - 1), length=st.integers(1, 120))
def test_any_deletion_is_detected(start: int, length: int) -> None:
    data = ORIGINAL_DATA[:start] + ORIGINAL_DATA[start + length :]
    assert _outcome(data) == "refused"


@PROPERTY
@given(which=st.integers(0, len(SPANS) - 1))
def test_deleting_a_whole_record_is_detected(which: int) -> None:
    start, end = SPANS[which]
    assert _outcome(ORIGINAL_DATA[:start] + ORIGINAL_DATA[end:]) == "refused"


@PROPERTY
@given(bit=st.integers(0, len(ORIGINAL_INDEX) * 8 - 1))
def test_a_bit_flip_in_the_index_is_repaired_or_refused(bit: int) -> None:
    # The index is derived from the data: damage to it is either rebuilt away (the log is
    # exactly the original) or reported; it can never change what the log says.
    index = bytearray(ORIGINAL_INDEX)
    index[bit // 8] ^= 1 << (bit % 8)
    assert _outcome(ORIGINAL_DATA, bytes(index)) in ("refused", "identical")


def test_the_property_harness_can_fail() -> None:
    # The unchanged files read back as identical; a changed entry is refused.
    assert _outcome(ORIGINAL_DATA) == "identical"
    start, _ = SPANS[3]
    changed = bytearray(ORIGINAL_DATA)
    changed[start + HEADER] ^= 0xFF
    assert _outcome(bytes(changed)) == "refused"
