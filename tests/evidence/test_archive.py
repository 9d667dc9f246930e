"""The evidence archive: items, custody, checkpoints, witnesses, time-stamps, local verification."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.evidence.checkpoint import (
    Signer,
    Witness,
    generate_cosigner,
    verify_cosigned,
)
from pollwatch.evidence.timestamp import verify_timestamp
from tests.evidence.tsa import LocalTSA


@pytest.fixture
def archive(tmp_path: Path) -> EvidenceArchive:
    return EvidenceArchive.init(tmp_path / "evidence", "observers.example/log")


def sample(folder: Path, name: str = "clip.mp4", data: bytes = b"\x00video" * 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def test_add_records_the_metadata(archive: EvidenceArchive, tmp_path: Path) -> None:
    record = archive.add(
        sample(tmp_path),
        submitter="observer-17",
        station="77-1234",
        device="cam-2",
        capture_time="2024-03-17T08:00:00+03:00",
        clock_source="ntp",
    )
    assert record.index == 0
    assert record.media_type == "video/mp4"
    assert record.size == 6000
    assert archive.item(record.sha256[:12]) == record
    again = archive.add(sample(tmp_path), submitter="observer-18")
    assert again.sha256 == record.sha256 and again.index == 1  # stored once, logged twice
    assert len(list(archive.objects.iter_hashes())) == 1


def test_access_is_logged_before_reading(archive: EvidenceArchive, tmp_path: Path) -> None:
    record = archive.add(sample(tmp_path), submitter="a")
    with archive.open_item(
        record.sha256, actor="lawyer-1", address="10.0.0.9", reason="case 12"
    ) as s:
        assert [e.action for e in archive.custody_of(record.sha256)] == ["access"]
        assert s.read() == b"\x00video" * 1000
    event = archive.custody_of(record.sha256)[0]
    assert (event.actor, event.address, event.reason) == ("lawyer-1", "10.0.0.9", "case 12")


def test_derived_copy_names_its_source(archive: EvidenceArchive, tmp_path: Path) -> None:
    original = archive.add(sample(tmp_path), submitter="a")
    blurred = archive.add(
        sample(tmp_path, "blurred.mp4", b"blurred"),
        submitter="b",
        source_item=original.sha256[:10],
        derivation="redacted",
    )
    assert blurred.source_item == original.sha256
    with pytest.raises(EvidenceError, match="no item"):
        archive.add(sample(tmp_path), submitter="c", source_item="deadbeefdeadbeef")


def test_unknown_item_and_reinit_are_refused(archive: EvidenceArchive, tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no item"):
        archive.item("0123456789abcdef")
    with pytest.raises(EvidenceError, match="already holds"):
        EvidenceArchive.init(archive.folder, "other")
    with pytest.raises(EvidenceError, match="pollwatch evidence init"):
        EvidenceArchive(tmp_path / "nowhere")


def test_checkpoint_timestamped_by_a_real_tsa(
    archive: EvidenceArchive, tmp_path: Path, tsa: LocalTSA
) -> None:
    archive.add(sample(tmp_path), submitter="a")
    stored = archive.sign_checkpoint(timestamp_authorities=[tsa.url])
    assert stored.checkpoint.size == 1
    assert len(stored.timestamps) == 1
    import hashlib

    digest = hashlib.sha256(stored.checkpoint.body().encode()).digest()
    info = verify_timestamp(stored.timestamps[0][0], digest, trusted_certs=[tsa.ca_cert_pem])
    assert info.digest == digest


def test_witness_cosigns_and_checks_consistency(archive: EvidenceArchive, tmp_path: Path) -> None:
    skey, _ = generate_cosigner("witness.example/w1")
    witness = Witness(Signer.from_string(skey), [archive.verifier], state=tmp_path / "w.json")
    archive.add(sample(tmp_path), submitter="a")
    archive.sign_checkpoint()
    archive.witness(witness)
    archive.add(sample(tmp_path, "b.jpg", b"photo"), submitter="a")
    archive.sign_checkpoint()
    stored = archive.witness(witness)  # needs the consistency proof from size 1 to 2
    checkpoint = verify_cosigned(
        stored.note, archive.verifier, [witness.verifier()], required_witnesses=1
    )
    assert checkpoint.size == 2
    assert witness.last_cosigned(archive.origin) == (2, archive.log.root(2))


def test_verify_detects_a_changed_object(archive: EvidenceArchive, tmp_path: Path) -> None:
    record = archive.add(sample(tmp_path), submitter="a")
    archive.sign_checkpoint()
    assert archive.verify() == (1, 1)
    stored = archive.folder / "objects" / record.sha256[:2] / record.sha256[2:4] / record.sha256
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[3] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(VerificationError):
        archive.verify()


def test_verify_detects_a_rewritten_history(archive: EvidenceArchive, tmp_path: Path) -> None:
    archive.add(sample(tmp_path), submitter="a")
    archive.sign_checkpoint()
    archive.add(sample(tmp_path, "b.jpg", b"b"), submitter="a")
    archive.sign_checkpoint()
    # Someone with the signing key forges the size-1 checkpoint for a different first entry.
    from pollwatch.evidence.checkpoint import Checkpoint, sign_checkpoint

    forged = sign_checkpoint(Checkpoint(archive.origin, 1, bytes(32)), archive.signer())
    (archive.folder / "checkpoints" / "1.note").write_text(forged)
    with pytest.raises(VerificationError, match="rewritten"):
        archive.verify()
