"""Bundles: export, offline verification with trusted keys, and detection of any change."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch.cli import main
from pollwatch.errors import EvidenceError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.evidence.bundle import TrustStore, export_bundle, verify_bundle
from pollwatch.evidence.checkpoint import (
    Signer,
    Verifier,
    Witness,
    generate_cosigner,
    generate_signer,
)
from tests.evidence.tsa import LocalTSA


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, tsa: LocalTSA) -> dict[str, object]:
    """An archive with two items, a witness and a TSA, and a bundle of one item."""
    folder = tmp_path_factory.mktemp("bundle")
    archive = EvidenceArchive.init(folder / "evidence", "observers.example/log")
    (folder / "clip.mp4").write_bytes(b"\x00\x01video" * 500)
    (folder / "protocol.jpg").write_bytes(b"\xff\xd8photo")
    clip = archive.add(folder / "clip.mp4", submitter="observer-1", station="77-12")
    archive.add(folder / "protocol.jpg", submitter="observer-2")
    archive.record_custody(
        "analysis", [clip.sha256], actor="analyst", address="local:test", reason="count voters"
    )
    skey, _ = generate_cosigner("witness.example/w1")
    witness = Witness(Signer.from_string(skey), [archive.verifier])
    archive.sign_checkpoint()
    archive.witness(witness)
    # The export signs a newer checkpoint, which the witness cosigns (checking consistency).
    bundle = folder / "bundle.zip"
    export_bundle(
        archive,
        [clip.sha256[:12]],
        bundle,
        actor="lawyer",
        address="local:test",
        reason="court",
        timestamp_authorities=[tsa.url],
        tsa_trusted_certs=[tsa.ca_cert_pem],
        witnesses=[witness],
    )
    trust = TrustStore(
        log_keys=(archive.verifier,),
        witness_keys=(witness.verifier(),),
        tsa_certificates=(tsa.ca_cert_pem,),
    )
    return {"archive": archive, "bundle": bundle, "trust": trust, "clip": clip, "folder": folder}


def test_bundle_verifies_with_trusted_keys(made: dict[str, object]) -> None:
    report = verify_bundle(made["bundle"], made["trust"])  # type: ignore[arg-type]
    assert report.ok, report.failure
    names = [c.name for c in report.checks]
    assert names == [
        "bundle signature",
        "manifest",
        "contents",
        "checkpoint signature",
        "timestamps",
        "inclusion proofs",
        "files",
        "custody",
        "layout",
    ]
    assert report.warnings == ()


def test_bundle_holds_the_item_its_custody_and_a_statement(made: dict[str, object]) -> None:
    clip = made["clip"]
    with zipfile.ZipFile(made["bundle"]) as bundle:  # type: ignore[arg-type]
        names = bundle.namelist()
        assert f"items/{clip.sha256}" in names  # type: ignore[attr-defined]
        assert bundle.read(f"items/{clip.sha256}") == b"\x00\x01video" * 500  # type: ignore[attr-defined]
        statement = bundle.read("STATEMENT.md").decode()
    assert "902(13)" in statement and clip.sha256 in statement  # type: ignore[attr-defined]
    entries = [n for n in names if n.startswith("entries/")]
    assert len(entries) == 3  # the item, the analysis and the export custody entries
    assert not any("protocol" in n for n in names)


def test_wrong_trusted_key_fails(made: dict[str, object]) -> None:
    _, other = generate_signer("observers.example/log")
    report = verify_bundle(made["bundle"], TrustStore(log_keys=(Verifier.from_string(other),)))  # type: ignore[arg-type]
    assert not report.ok
    assert report.failure is not None and report.failure.name == "bundle signature"


def test_witness_requirement(made: dict[str, object]) -> None:
    trust: TrustStore = made["trust"]  # type: ignore[assignment]
    assert verify_bundle(made["bundle"], trust, required_witnesses=1).ok  # type: ignore[arg-type]
    _, stranger = generate_cosigner("witness.example/w2")
    report = verify_bundle(
        made["bundle"],  # type: ignore[arg-type]
        TrustStore(trust.log_keys, (*trust.witness_keys, Verifier.from_string(stranger))),
        required_witnesses=2,
    )
    assert not report.ok
    assert report.failure is not None and "2 of 2" in report.failure.detail


def _rewrite(source: Path, target: Path, change: str, name: str, position: int) -> None:
    """Copy a bundle, changing one member (flip a bit, drop it, or add a stranger)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == name:
                if change == "drop":
                    continue
                if change == "flip" and data:
                    index = position % (len(data) * 8)
                    buffer = bytearray(data)
                    buffer[index // 8] ^= 1 << (index % 8)
                    data = bytes(buffer)
            new.writestr(info, data)
        if change == "add":
            new.writestr("items/extra", b"planted")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    change=st.sampled_from(["flip", "drop", "add"]),
    member=st.integers(min_value=0, max_value=1000),
    position=st.integers(min_value=0, max_value=10**6),
)
def test_any_change_to_a_member_is_detected(
    made: dict[str, object], tmp_path: Path, change: str, member: int, position: int
) -> None:
    bundle: Path = made["bundle"]  # type: ignore[assignment]
    with zipfile.ZipFile(bundle) as zipped:
        names = zipped.namelist()
    target = tmp_path / "changed.zip"
    _rewrite(bundle, target, change, names[member % len(names)], position)
    assert not verify_bundle(target, made["trust"]).ok  # type: ignore[arg-type]


def test_a_log_key_that_is_not_text_is_a_failed_check(
    made: dict[str, object], tmp_path: Path
) -> None:
    # found by the property test above: a flipped first byte of keys/log.pub is not UTF-8
    bundle: Path = made["bundle"]  # type: ignore[assignment]
    target = tmp_path / "changed.zip"
    _rewrite(bundle, target, "flip", "keys/log.pub", 7)
    report = verify_bundle(target, made["trust"])  # type: ignore[arg-type]
    assert not report.ok


@pytest.mark.parametrize("method", [1, 9, 12, 99])
def test_a_member_with_an_unknown_compression_method_is_a_failed_check(
    made: dict[str, object], tmp_path: Path, method: int
) -> None:
    # found by the property test below: a flipped bit in the compression method of a central
    # directory entry (offset 10 of the entry) made the zip module raise NotImplementedError
    bundle: Path = made["bundle"]  # type: ignore[assignment]
    data = bytearray(bundle.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first member's central directory entry
    data[entry + 10 : entry + 12] = method.to_bytes(2, "little")
    target = tmp_path / "damaged.zip"
    target.write_bytes(bytes(data))
    report = verify_bundle(target, made["trust"])  # type: ignore[arg-type]
    assert not report.ok


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=0, max_value=10**9), truncate=st.booleans())
def test_any_bit_flip_or_truncation_of_the_file_is_detected(
    made: dict[str, object], tmp_path: Path, position: int, truncate: bool
) -> None:
    bundle: Path = made["bundle"]  # type: ignore[assignment]
    data = bytearray(bundle.read_bytes())
    if truncate:
        data = data[: position % len(data)]
    else:
        bit = position % (len(data) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
    target = tmp_path / "damaged.zip"
    target.write_bytes(bytes(data))
    assert not verify_bundle(target, made["trust"]).ok  # type: ignore[arg-type]


def test_cli_verify_reports_each_check_and_fails_cleanly(
    made: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust: TrustStore = made["trust"]  # type: ignore[assignment]
    trust_file = tmp_path / "trust.txt"
    trust_file.write_text(
        f"# keys obtained from the organisation\nlog {trust.log_keys[0]}\n"
        f"witness {trust.witness_keys[0]}\n" + trust.tsa_certificates[0].decode()
    )
    code = main(
        ["evidence", "verify", str(made["bundle"]), "--trust", str(trust_file), "--witnesses", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("ok ") == 10  # nine checks plus the witness check
    damaged = tmp_path / "damaged.zip"
    _rewrite(made["bundle"], damaged, "drop", "checkpoint.note", 0)  # type: ignore[arg-type]
    code = main(["evidence", "verify", str(damaged), "--trust", str(trust_file)])
    captured = capsys.readouterr()
    assert code == 2
    assert "checkpoint.note" in captured.err and "Traceback" not in captured.err
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip at all")
    assert main(["evidence", "verify", str(garbage)]) == 2
    assert "not a readable zip" in capsys.readouterr().err


def test_trust_file_errors_name_the_line(tmp_path: Path) -> None:
    trust_file = tmp_path / "trust.txt"
    trust_file.write_text("log not-a-key\n")
    with pytest.raises(EvidenceError, match="line 1"):
        TrustStore.from_file(trust_file)


def test_export_of_unknown_item_writes_nothing(made: dict[str, object], tmp_path: Path) -> None:
    archive: EvidenceArchive = made["archive"]  # type: ignore[assignment]
    target = tmp_path / "x.zip"
    with pytest.raises(EvidenceError, match="no item"):
        export_bundle(archive, ["ffffffffffffffff"], target, actor="a", address="b", reason="c")
    assert not target.exists()
