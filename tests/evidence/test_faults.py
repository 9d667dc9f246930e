"""The archive's fault handling (issue 17), each finding reproduced as an attacker would.

* A truncated, checkpointed log: ``log``/``show`` exit 2 naming the lost entries, ``add`` is
  refused, nothing is moved aside, and the next ``add`` cannot reuse a signed index.
* A flipped byte: ``add`` and ``checkpoint`` are refused (no root is signed over altered data),
  ``fsck`` names the entry and the hash it should have; a consistent rewrite (hashes and index
  recomputed) is refused by the signed root, even when the attacker also forges the seal.
* Crash leftovers are reported by ``fsck``, then quarantined by ``fsck --repair`` after a
  signed ``maintenance`` entry lists them; the log still verifies, nothing is deleted.
* ``fsck --repair`` refuses to touch damage inside the signed range.
* A failed export logs no export and signs no checkpoint; a failure after logging is logged.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from pollwatch.cli import main
from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence import bundle as bundle_module
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.evidence.bundle import export_bundle
from pollwatch.evidence.fsck import fsck, repair
from pollwatch.evidence.log import SEAL_FILE, canonical_json
from pollwatch.evidence.merkle import leaf_hash
from tests.evidence.records import HASH, HEADER, record_spans

HOUR = 3600.0


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def cli_archive(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A CLI archive with 20 entries (items), signed at 20; returns its folder."""
    monkeypatch.delenv("POLLWATCH_TSA_URLS", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(_own_temp(tmp_path)))
    assert run(capsys, "evidence", "init", "--origin", "observers.example/log")[0] == 0
    files = []
    for number in range(20):
        path = tmp_path / "files" / f"scan-{number:02}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"protocol scan {number}".encode())
        files.append(str(path))
    assert run(capsys, "evidence", "add", *files)[0] == 0
    assert run(capsys, "evidence", "checkpoint")[0] == 0
    return home / "evidence"


def _own_temp(tmp_path: Path) -> Path:
    folder = tmp_path / "system-tmp"
    folder.mkdir(exist_ok=True)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != SEAL_FILE
    }


def _flip(evidence: Path, entry: int, at: int = 3) -> tuple[int, bytes]:
    """Flip one byte inside ``entry``'s payload; returns (its offset, its original bytes)."""
    path = evidence / "log" / "entries.bin"
    data = bytearray(path.read_bytes())
    start, end = record_spans(bytes(data))[entry]
    original = bytes(data[start + HEADER : end - HASH])
    data[start + HEADER + at] ^= 0x04
    path.write_bytes(bytes(data))
    return start, original


# --------------------------------------------------------------------------------------------
# Truncation.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", ["kept", "truncated too"])
def test_a_truncated_checkpointed_log_is_damage_not_a_crash(
    cli_archive: Path, capsys: pytest.CaptureFixture[str], index: str
) -> None:
    log = cli_archive / "log"
    data = (log / "entries.bin").read_bytes()
    # 12 whole entries left
    (log / "entries.bin").write_bytes(data[: record_spans(data)[11][1] + 10])
    if index == "truncated too":
        raw = (log / "entries.idx").read_bytes()
        (log / "entries.idx").write_bytes(raw[: 8 + 12 * 40])
    before = _snapshot(cli_archive)
    lost = "holds 12 entries but its latest checkpoint signed 20: entries 12-19 are missing"

    code, out, err = run(capsys, "evidence", "log")
    assert code == 2 and lost in err and "pollwatch evidence fsck" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    item = hashlib.sha256(b"protocol scan 3").hexdigest()
    code, _, err = run(capsys, "evidence", "show", item[:12])
    assert code == 2 and lost in err
    extra = cli_archive.parent / "late.jpg"
    extra.write_bytes(b"late scan")
    code, out, err = run(capsys, "evidence", "add", str(extra))
    assert code == 2 and lost in err and "entry" not in out
    code, _, err = run(capsys, "evidence", "checkpoint")
    assert code == 2 and lost in err
    # Nothing was moved aside, cut, indexed or signed: the files are exactly as damaged.
    assert not (log / "discarded").exists()
    assert _snapshot(cli_archive) == before

    code, out, err = run(capsys, "evidence", "fsck")
    assert code == 2 and lost in out and "needs a person" in err
    code, out, err = run(capsys, "evidence", "fsck", "--repair")
    assert code == 2 and "moved nothing" in err
    assert _snapshot(cli_archive) == before


def test_a_torn_unacknowledged_tail_beyond_the_checkpoint_is_still_recovered(
    cli_archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torn = (7).to_bytes(HEADER, "big") + b"half"  # a record whose writer died mid-write
    with (cli_archive / "log" / "entries.bin").open("ab") as handle:
        handle.write(torn)
    code, out, _ = run(capsys, "evidence", "log", "--json")
    assert code == 0 and out.count('"index"') == 20
    [saved] = (cli_archive / "log" / "discarded").iterdir()
    assert saved.read_bytes() == torn
    extra = cli_archive.parent / "next.jpg"
    extra.write_bytes(b"next scan")
    code, out, _ = run(capsys, "evidence", "add", str(extra))
    assert code == 0 and "entry 20" in out


# --------------------------------------------------------------------------------------------
# A flipped byte, and a consistent rewrite.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", [4, 21])  # inside the signed range, and after it
def test_a_flipped_byte_stops_add_and_checkpoint(
    cli_archive: Path, capsys: pytest.CaptureFixture[str], entry: int
) -> None:
    extra = cli_archive.parent / "extra"
    extra.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (extra / name).write_bytes(name.encode())
    assert run(capsys, "evidence", "add", str(extra / "a.jpg"), str(extra / "b.jpg"))[0] == 0
    assert (cli_archive / "log" / SEAL_FILE).is_file()  # the seal does not hide what follows
    offset, original = _flip(cli_archive, entry)
    before = _snapshot(cli_archive)

    (extra / "c.jpg").write_bytes(b"c")
    code, out, err = run(capsys, "evidence", "add", str(extra / "c.jpg"))
    # The last entry is caught by recovery's own check of it, any other by the open's check.
    assert code == 2 and f"entry {entry}" in err and f"byte {offset}" in err and "fsck" in err
    code, _, err = run(capsys, "evidence", "checkpoint")
    assert code == 2 and f"entry {entry}" in err
    assert sorted(p.name for p in (cli_archive / "checkpoints").iterdir()) == ["20.note"]
    assert _snapshot(cli_archive) == before

    code, out, _ = run(capsys, "evidence", "fsck")
    assert code == 2
    expected = leaf_hash(original).hex()
    [line] = [line for line in out.splitlines() if f"entry {entry} (byte {offset}" in line]
    assert expected in line
    report = fsck(cli_archive)
    [damage] = [f for f in report.damage if f.what == "entry"]
    assert (damage.entry, damage.expected_leaf, damage.signed) == (entry, expected, entry < 20)


def test_a_damaged_index_is_told_apart_from_damaged_entries(cli_archive: Path) -> None:
    index = cli_archive / "log" / "entries.idx"
    raw = bytearray(index.read_bytes())
    raw[8 + 6 * 40 + 8 + 5] ^= 0x01  # entry 6's leaf hash in the index; its record is intact
    index.write_bytes(bytes(raw))
    with pytest.raises(VerificationError, match=r"entry 6 .* has another leaf hash in the index"):
        EvidenceArchive(cli_archive)
    [damage] = fsck(cli_archive).damage
    assert damage.entry == 6 and "the index is what is damaged" in damage.detail
    # The advice works: the index is derived from the data, so moving it aside rebuilds it.
    index.rename(cli_archive.parent / "entries.idx.damaged")
    with EvidenceArchive(cli_archive) as archive:
        assert archive.log.recovery.index_rebuilt
        assert archive.verify() == (20, 20)


def test_a_consistent_rewrite_is_refused_by_the_signed_root(cli_archive: Path) -> None:
    """The attacker changes entry 2 and recomputes its stored hash and its index entry."""
    log = cli_archive / "log"
    data = bytearray((log / "entries.bin").read_bytes())
    start, end = record_spans(bytes(data))[2]
    payload = bytearray(data[start + HEADER : end - HASH])
    payload[payload.index(b"scan-02")] = ord("X")
    new_leaf = leaf_hash(bytes(payload))
    data[start + HEADER : end] = bytes(payload) + new_leaf
    (log / "entries.bin").write_bytes(bytes(data))
    index = bytearray((log / "entries.idx").read_bytes())
    index[8 + 2 * 40 + 8 : 8 + 3 * 40] = new_leaf
    (log / "entries.idx").write_bytes(bytes(index))
    with pytest.raises(VerificationError, match=r"root at size 20 .* latest checkpoint says"):
        EvidenceArchive(cli_archive)
    assert [f.what for f in fsck(cli_archive).damage] == ["root"]

    # Forging the seal too gets the attacker past the cheap open check, not past signing.
    leaves = b"".join(index[8 + 8 + 40 * n : 8 + 40 * (n + 1)] for n in range(20))
    seal = json.loads((log / SEAL_FILE).read_text())
    seal.update(
        data_sha256=hashlib.sha256(bytes(data)).hexdigest(),
        leaves_sha256=hashlib.sha256(leaves).hexdigest(),
    )
    (log / SEAL_FILE).write_text(json.dumps(seal))
    with EvidenceArchive(cli_archive) as archive:
        with pytest.raises(VerificationError, match="not the one its latest checkpoint signed"):
            archive.sign_checkpoint()
        assert archive.checkpoint_sizes() == [20]
        with pytest.raises(VerificationError, match="root at size 20"):
            archive.verify()


# --------------------------------------------------------------------------------------------
# Leftovers: reported, then quarantined after a signed statement.
# --------------------------------------------------------------------------------------------


def _age(path: Path, seconds: float = 2 * HOUR) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment), follow_symlinks=False)


def test_leftovers_are_reported_then_quarantined_with_a_signed_statement(
    cli_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EvidenceArchive(cli_archive) as archive:
        orphan = archive.objects.put_bytes(b"stored, then the add died").sha256
        named = archive.add(tmp_path / "files" / "scan-00.jpg", submitter="late").sha256
    orphan_path = cli_archive / "objects" / orphan[:2] / orphan[2:4] / orphan
    incoming = cli_archive / "objects" / ".incoming" / "put-dead.part"
    incoming.write_bytes(b"half a video")
    note_part = cli_archive / "checkpoints" / ".21.note.part"
    note_part.write_text("half a checkpoint")
    staging = cli_archive / ".staging-upload-1234"
    staging.mkdir()
    (staging / "photo.jpg").write_bytes(b"staged photo")
    stray = cli_archive / "timestamps" / "tmp-empty"
    stray.mkdir()
    young = cli_archive / "keys" / ".witnesses.txt.part"
    young.write_text("being written right now")
    torn = (9).to_bytes(HEADER, "big") + b"torn"
    with (cli_archive / "log" / "entries.bin").open("ab") as handle:
        handle.write(torn)
    old_upload = _own_temp(tmp_path) / "pollwatch-upload-dead"
    old_upload.mkdir()
    for path in (orphan_path, incoming, note_part, staging / "photo.jpg", staging, stray):
        _age(path)
    _age(old_upload)
    moved_bytes = {
        p.relative_to(cli_archive).as_posix(): p.read_bytes()
        for p in (orphan_path, incoming, note_part, staging / "photo.jpg")
    }

    code, out, _ = run(capsys, "evidence", "fsck")
    assert code == 0, out  # leftovers are not damage
    report = fsck(cli_archive)
    found = {(f.kind, f.what, f.path) for f in report.findings}
    assert {
        ("leftover", "orphan-object", f"objects/{orphan[:2]}/{orphan[2:4]}/{orphan}"),
        ("leftover", "part-file", "objects/.incoming/put-dead.part"),
        ("leftover", "part-file", "checkpoints/.21.note.part"),
        ("leftover", "staging", ".staging-upload-1234"),
        ("leftover", "empty-folder", "timestamps/tmp-empty"),
        ("leftover", "torn-tail", "log/entries.bin"),
        ("note", "recent", "keys/.witnesses.txt.part"),
        ("note", "unsigned-entries", "log/entries.bin"),
        ("note", "temp-folder", str(old_upload)),
    } <= found
    assert not report.damaged and not any(f.path and named in f.path for f in report.findings)
    assert "fsck --repair" in out

    code, out, err = run(capsys, "evidence", "fsck", "--repair")
    assert code == 0, out + err
    assert "statement logged as entry 21" in out
    with EvidenceArchive(cli_archive) as archive:
        assert archive.verify() == (22, 21)  # 21 items; the statement is entry 21, signed
        entries = dict(archive.entries())
        statement = entries[21]
        assert statement["kind"] == "maintenance" and statement["action"] == "quarantine"
        assert archive.checkpoint_sizes() == [20, 22]
    moves = {move["path"]: move for move in statement["moved"]}
    assert set(moves) == {*moved_bytes, ".staging-upload-1234", "timestamps/tmp-empty"} - {
        ".staging-upload-1234/photo.jpg"
    }
    for path, content in moved_bytes.items():
        top = path if path in moves else ".staging-upload-1234"
        target = cli_archive / moves[top]["to"] / Path(path).relative_to(top)
        assert target.read_bytes() == content  # moved, byte for byte, never deleted
        assert not (cli_archive / path).exists()
        if "sha256" in moves[top]:
            assert moves[top]["sha256"] == hashlib.sha256(content).hexdigest()
    assert all(move["to"].startswith(statement["quarantine"] + "/") for move in moves.values())
    assert statement["recovery"]["bytes_discarded"] == len(torn)
    [saved] = statement["recovery"]["saved"]
    assert (cli_archive / saved).read_bytes() == torn
    assert young.exists() and old_upload.exists()  # too young, and outside the archive

    after = fsck(cli_archive)
    assert after.clean and not after.damaged
    assert {f.what for f in after.notes} >= {"recent", "quarantined", "discarded"}
    code, out, _ = run(capsys, "evidence", "log", "--json")
    assert code == 0 and '"kind":"maintenance"' in out.replace(" ", "")
    assert run(capsys, "evidence", "log")[0] == 0  # the table shows entries of any kind


def test_repair_refuses_damage_inside_the_signed_range(cli_archive: Path) -> None:
    incoming = cli_archive / "objects" / ".incoming" / "put-dead.part"
    incoming.write_bytes(b"half")
    _age(incoming)
    _flip(cli_archive, 7)
    before = _snapshot(cli_archive)
    with pytest.raises(VerificationError, match="needs a person") as raised:
        repair(cli_archive, actor="operator", address="local:test")
    assert "entry 7" in str(raised.value) and "nothing was moved or logged" in str(raised.value)
    assert _snapshot(cli_archive) == before


def test_repair_with_nothing_to_do_logs_nothing(cli_archive: Path) -> None:
    result = repair(cli_archive, actor="operator", address="local:test")
    assert result.statement_entry is None and result.moved == ()
    with EvidenceArchive(cli_archive) as archive:
        assert archive.log.size == 20


# --------------------------------------------------------------------------------------------
# Exports that fail.
# --------------------------------------------------------------------------------------------


@pytest.fixture
def archive(tmp_path: Path) -> EvidenceArchive:
    folder = tmp_path / "evidence"
    archive = EvidenceArchive.init(folder, "observers.example/log")
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(name.encode() * 10)
        archive.add(tmp_path / name, submitter="observer")
    archive.sign_checkpoint()
    return archive


def _state(archive: EvidenceArchive) -> tuple[int, list[int]]:
    return archive.log.size, archive.checkpoint_sizes()


def test_an_export_to_an_unwritable_place_logs_and_signs_nothing(
    archive: EvidenceArchive, tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [first, _] = archive.items()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the bundle's folder should be")
    before = _state(archive)
    with pytest.raises(EvidenceError, match=r"cannot write the bundle .* nothing was exported"):
        export_bundle(
            archive, [first.sha256], blocker / "bundle.zip", actor="a", address="b", reason="c"
        )
    assert _state(archive) == before
    assert [e.action for e in archive.custody_of(first.sha256)] == []

    archive.close()
    home.mkdir(parents=True, exist_ok=True)
    os.symlink(archive.folder, home / "evidence")
    code, _, err = run(
        capsys, "evidence", "export", first.sha256[:12], "-o", str(blocker / "b.zip"),
        "--reason", "court",
    )  # fmt: skip
    assert code == 2 and "nothing was exported" in err
    with EvidenceArchive(archive.folder) as again:
        assert _state(again) == before


def test_an_export_of_an_item_whose_object_is_missing_logs_and_signs_nothing(
    archive: EvidenceArchive, tmp_path: Path
) -> None:
    [first, second] = archive.items()
    stored = archive.objects.path_of(second.sha256)  # type: ignore[attr-defined]
    stored.unlink()
    before = _state(archive)
    with pytest.raises(EvidenceError, match="has no object in the store; nothing was exported"):
        export_bundle(
            archive,
            [first.sha256, second.sha256],
            tmp_path / "out" / "bundle.zip",
            actor="a",
            address="b",
            reason="c",
        )
    assert _state(archive) == before
    assert not (tmp_path / "out").exists()
    assert any(f.what == "object" for f in fsck(archive.folder).damage)


def test_an_export_that_fails_after_logging_logs_the_failure(
    archive: EvidenceArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [first, _] = archive.items()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle_module, "_write_canonical", disk_full)
    with pytest.raises(EvidenceError, match="No space left on device; the export was logged"):
        export_bundle(
            archive, [first.sha256], tmp_path / "bundle.zip", actor="a", address="b", reason="c"
        )
    actions = [(e.action, e.reason) for e in archive.custody_of(first.sha256)]
    assert actions[0] == ("export", "c")
    assert actions[1][0] == "export-failed" and "No space left" in actions[1][1]
    assert list(tmp_path.glob("*bundle.zip*")) == []
    assert archive.verify()[0] == archive.log.size


def test_entries_are_canonical_json_in_the_statement_too(cli_archive: Path) -> None:
    incoming = cli_archive / "objects" / ".incoming" / "put-x.part"
    incoming.write_bytes(b"x")
    _age(incoming)
    result = repair(cli_archive, actor="operator", address="local:test")
    assert result.statement_entry == 20
    with EvidenceArchive(cli_archive) as archive:
        raw = archive.log.entry(20)
        assert raw == canonical_json(json.loads(raw))
