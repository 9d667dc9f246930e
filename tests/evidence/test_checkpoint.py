"""Signed notes, checkpoints and witness cosignatures against the C2SP specs and known answers.

Known answers come from golang.org/x/mod/sumdb/note (note_test.go: the PeterNeumann and EnochRoot
keys and notes), transparency-dev/formats (note/note_cosigv1_test.go: cosignature/v1 verifier
keys and a timestamp) and the C2SP spec examples (signed-note, tlog-checkpoint,
tlog-cosignature). The witness tests build small RFC 6962 trees with a local helper, so they do
not depend on pollwatch.evidence.merkle (which is used when it imports).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.checkpoint import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    Checkpoint,
    NoteSignature,
    Signer,
    Verifier,
    Witness,
    _split_note,
    add_cosignatures,
    generate_cosigner,
    generate_signer,
    key_id,
    open_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_cosigned,
)

# --------------------------------------------------------------------------- known answers

# golang.org/x/mod/sumdb/note, note_test.go (BSD-style licence), TestSign / TestOpen.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb"
    "6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33W"
    "Wd1RvMc+QQ=\n"
)

# transparency-dev/formats note/note_cosigv1_test.go (Apache-2.0), TestCoSigV1NewVerifier and
# TestCoSigV1Timestamp.
REMORA_COSIGNATURE_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TEST_ED25519_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
COSIGNATURE_WITH_TIME_1727964367 = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJ"
    "XORmnFBOBA=="
)

# c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature examples.
SOFA_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_WITNESS_LINE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SOFA_LOG_LINE = (
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv"
    "2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
# c2sp.org/signed-note example: the text holds a blank line of its own.
QUASIMODO_NOTE = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    "\n— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouF"
    "SQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)


def test_golang_signer_key_reproduces_the_golang_signed_note_byte_for_byte() -> None:
    signer = Signer.from_string(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == 0xC74F20A3
    assert sign_note(PETER_TEXT, signer) == PETER_TEXT + "\n" + PETER_SIG
    assert signer.verifier().to_string() == PETER_VKEY
    assert signer.to_string() == PETER_SKEY
    assert "AYEKFALV" not in repr(signer)


def test_key_id_is_sha256_of_name_newline_type_and_key() -> None:
    verifier = Verifier.from_string(PETER_VKEY)
    preimage = b"PeterNeumann\n\x01" + verifier.public_key
    assert hashlib.sha256(preimage).digest()[:4] == bytes.fromhex("c74f20a3")
    assert key_id("PeterNeumann", KEY_TYPE_ED25519, verifier.public_key) == 0xC74F20A3
    assert verifier.key_id == 0xC74F20A3
    assert str(verifier) == PETER_VKEY


def test_golang_open_verifies_known_and_ignores_unknown_signatures() -> None:
    peter, enoch = Verifier.from_string(PETER_VKEY), Verifier.from_string(ENOCH_VKEY)
    message = PETER_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    note = open_note(message, [peter])
    assert note.text == PETER_TEXT
    assert [s.key_label for s in note.signatures] == ["PeterNeumann+c74f20a3"]
    assert [s.key_label for s in note.unverified] == ["EnochRoot+af0cfe78"]
    both = open_note(message, [peter, enoch], required=2)
    assert [s.name for s in both.signatures] == ["PeterNeumann", "EnochRoot"]
    assert both.unverified == ()
    with pytest.raises(VerificationError) as caught:
        open_note(message, [])
    assert caught.value.message.startswith("no signature from a trusted key")
    assert "EnochRoot+af0cfe78, PeterNeumann+c74f20a3" in caught.value.message
    with pytest.raises(VerificationError, match="3 trusted signatures required, 2 valid"):
        open_note(message, [peter, enoch], required=3)


def test_golang_open_rejects_an_invalid_signature_from_a_known_key() -> None:
    peter = Verifier.from_string(PETER_VKEY)
    damaged = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(VerificationError) as caught:
        open_note(PETER_TEXT + "\n" + damaged, [peter])
    assert caught.value.message == "invalid signature for key PeterNeumann+c74f20a3"


def test_golang_open_drops_repeated_signatures() -> None:
    peter = Verifier.from_string(PETER_VKEY)
    enoch_damaged = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    message = PETER_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_damaged
    note = open_note(message, [peter])
    assert len(note.signatures) == 1
    assert len(note.unverified) == 2  # the identical Enoch lines count once


@pytest.mark.parametrize(
    "message",
    [
        PETER_TEXT,
        PETER_TEXT + "\n",
        PETER_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + PETER_TEXT + "\n" + PETER_SIG,
        PETER_TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FF"
        "YC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        PETER_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        PETER_TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_golang_malformed_notes_are_rejected(message: str) -> None:
    with pytest.raises(VerificationError, match="malformed note"):
        open_note(message, [Verifier.from_string(PETER_VKEY)])


def test_invalid_utf8_bytes_are_rejected() -> None:
    message = b"\xff" + PETER_TEXT.encode() + b"\n" + PETER_SIG.encode()
    with pytest.raises(VerificationError, match="not valid UTF-8"):
        open_note(message, [Verifier.from_string(PETER_VKEY)])


def _manglings(key: str) -> list[str]:
    """golang TestNewVerifier: every proper substring, and every one-character increment."""
    variants = {key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)}
    variants.discard(key)
    for index in range(len(key)):
        variants.add(key[:index] + chr(ord(key[index]) + 1) + key[index + 1 :])
    return sorted(variants)


def test_every_mangled_verifier_key_is_rejected() -> None:
    for variant in _manglings(PETER_VKEY):
        with pytest.raises(EvidenceError):
            Verifier.from_string(variant)
    # golang: wrong key length and unknown algorithm, each with a matching key ID
    for variant in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(EvidenceError):
            Verifier.from_string(variant)


def test_every_mangled_signer_key_is_rejected_without_quoting_it() -> None:
    secret = PETER_SKEY.rsplit("+", 1)[1]
    for variant in _manglings(PETER_SKEY):
        with pytest.raises(EvidenceError) as caught:
            Signer.from_string(variant)
        assert secret not in str(caught.value)
        assert "\n" not in str(caught.value)


def test_verifier_key_errors_say_what_is_wrong() -> None:
    with pytest.raises(EvidenceError, match="key ID c74f20a4 does not match the key"):
        Verifier.from_string(PETER_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(EvidenceError, match="expected 3 parts"):
        Verifier.from_string("PeterNeumann")
    with pytest.raises(EvidenceError, match="unsupported key type 0x65"):
        Verifier.from_string("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_cosignature_verifier_keys_from_transparency_dev() -> None:
    remora = Verifier.from_string(REMORA_COSIGNATURE_VKEY)
    assert remora.key_type == KEY_TYPE_COSIGNATURE_V1
    assert remora.key_id == 0xDA77ADE7
    assert str(remora) == REMORA_COSIGNATURE_VKEY
    plain = Verifier.from_string(TEST_ED25519_VKEY)
    assert plain.key_type == KEY_TYPE_ED25519
    assert plain.key_id == 0x7997405C
    # the same public key as a cosigner has a key ID computed with type 0x04
    converted = plain.for_cosignature()
    assert converted.key_id == int.from_bytes(
        hashlib.sha256(b"TEST\n\x04" + plain.public_key).digest()[:4], "big"
    )
    assert converted.key_id != plain.key_id


def test_cosignature_timestamps_from_known_answers() -> None:
    raw = base64.b64decode(COSIGNATURE_WITH_TIME_1727964367)
    assert NoteSignature("x", int.from_bytes(raw[:4], "big"), raw[4:]).timestamp == 1727964367
    spec = NoteSignature.from_line(SOFA_WITNESS_LINE)
    assert spec.name == "witness.example.com/w1"
    assert spec.key_id == 0x8D66CF3F
    assert len(spec.signature) == 8 + 64
    assert spec.timestamp == 1679315147  # the "time 1679315147" of the spec's signed message
    assert spec.line() == SOFA_WITNESS_LINE


def test_spec_checkpoint_example_parses_and_round_trips() -> None:
    checkpoint = Checkpoint.parse(SOFA_BODY)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.body() == SOFA_BODY
    body, signatures = _split_note(SOFA_BODY + "\n" + SOFA_LOG_LINE + SOFA_WITNESS_LINE)
    assert body == SOFA_BODY
    assert [s.name for s in signatures] == ["example.com/behind-the-sofa", "witness.example.com/w1"]


def test_spec_note_text_may_hold_blank_lines() -> None:
    body, signatures = _split_note(QUASIMODO_NOTE)
    assert body == (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed è subito sera.\n"
    )
    assert [(s.name, len(s.signature)) for s in signatures] == [("quasimodo.example/salvatore", 64)]


# --------------------------------------------------------------------------- own round trips

LOG = "evidence.example.org/log"
ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture(scope="module")
def log_keys() -> tuple[Signer, Verifier]:
    skey, vkey = generate_signer(LOG)
    return Signer.from_string(skey), Verifier.from_string(vkey)


def test_generated_keys_round_trip(log_keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = log_keys
    assert signer.verifier() == verifier
    assert Signer.from_string(signer.to_string()).public_key == verifier.public_key
    skey, vkey = generate_cosigner("witness.example.org/w1")
    cosigner = Verifier.from_string(vkey)
    assert cosigner.key_type == KEY_TYPE_COSIGNATURE_V1
    assert Signer.from_string(skey).key_id == cosigner.key_id
    with pytest.raises(EvidenceError, match="invalid key name"):
        generate_signer("has space")
    with pytest.raises(EvidenceError, match="invalid key name"):
        generate_signer("a+b")


def test_checkpoint_sign_verify_round_trip(log_keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = log_keys
    checkpoint = Checkpoint(LOG, 42, ROOT, ("ext one", "ext two"))
    note = sign_checkpoint(checkpoint, signer)
    assert note.startswith(f"{LOG}\n42\n{base64.b64encode(ROOT).decode()}\next one\next two\n\n— ")
    assert verify_checkpoint(note, verifier) == checkpoint
    assert verify_checkpoint(note.encode(), [verifier]) == checkpoint
    empty = Checkpoint(LOG, 0, hashlib.sha256(b"").digest())
    assert verify_checkpoint(sign_checkpoint(empty, signer), verifier) == empty


def test_wrong_key_and_other_logs_are_rejected(log_keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = log_keys
    other_skey, other_vkey = generate_signer(LOG)  # same name, another key
    note = sign_checkpoint(Checkpoint(LOG, 5, ROOT), Signer.from_string(other_skey))
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        verify_checkpoint(note, verifier)
    # another log's checkpoint, signed with the same key: the origin gives it away
    foreign = sign_checkpoint(Checkpoint("other.example/log", 5, ROOT), signer)
    with pytest.raises(VerificationError) as caught:
        verify_checkpoint(foreign, verifier)
    assert caught.value.message == (
        "checkpoint origin 'other.example/log' is not the expected log 'evidence.example.org/log'"
    )
    assert verify_checkpoint(foreign, verifier, origin="other.example/log").size == 5
    with pytest.raises(EvidenceError, match="cosignature key, not a log key"):
        verify_checkpoint(note, Verifier.from_string(other_vkey).for_cosignature())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("log\n5\n" + base64.b64encode(ROOT).decode(), "does not end in a newline"),
        ("log\n5\n", "2 lines"),
        ("\n5\n" + base64.b64encode(ROOT).decode() + "\n", "empty origin"),
        ("log\n05\n" + base64.b64encode(ROOT).decode() + "\n", "tree size '05'"),
        ("log\n+5\n" + base64.b64encode(ROOT).decode() + "\n", "tree size '+5'"),
        ("log\n٣\n" + base64.b64encode(ROOT).decode() + "\n", "tree size '٣'"),
        ("log\n5_0\n" + base64.b64encode(ROOT).decode() + "\n", "tree size '5_0'"),
        ("log\n18446744073709551616\n" + base64.b64encode(ROOT).decode() + "\n", "tree size"),
        ("log\n5\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "root hash"),
        ("log\n5\nnot base64\n", "root hash"),
        ("log\n5\n" + base64.b64encode(ROOT).decode() + "\n\n", "line 4"),
    ],
)
def test_malformed_checkpoints_are_rejected(body: str, reason: str) -> None:
    with pytest.raises(VerificationError, match="malformed checkpoint") as caught:
        Checkpoint.parse(body)
    assert reason in caught.value.message


def test_invalid_checkpoint_values_are_refused() -> None:
    with pytest.raises(EvidenceError, match="origin"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(EvidenceError, match="origin"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(EvidenceError, match="size"):
        Checkpoint("log", -1, ROOT)
    with pytest.raises(EvidenceError, match="32 bytes"):
        Checkpoint("log", 1, b"short")
    with pytest.raises(EvidenceError, match="extension"):
        Checkpoint("log", 1, ROOT, ("",))


def test_sign_note_refuses_bad_text(log_keys: tuple[Signer, Verifier]) -> None:
    signer, _ = log_keys
    with pytest.raises(EvidenceError, match="does not end in a newline"):
        sign_note("abc", signer)
    with pytest.raises(EvidenceError, match="control character"):
        sign_note("a\tb\n", signer)
    with pytest.raises(EvidenceError, match="no signer"):
        sign_note("abc\n", [])


def _one_character_changes(draw: st.DrawFn, text: str) -> str:
    position = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["replace", "insert", "delete"]))
    alphabet = st.sampled_from([*"aA0+/=\n —\t", chr(0x2028), "é"]) | st.characters()
    if kind == "insert":
        return text[:position] + draw(alphabet) + text[position:]
    position = min(position, len(text) - 1)
    if kind == "delete":
        return text[:position] + text[position + 1 :]
    replacement = draw(alphabet.filter(lambda ch: ch != text[position]))
    return text[:position] + replacement + text[position + 1 :]


@st.composite
def _changed(draw: st.DrawFn, text: str) -> str:
    return _one_character_changes(draw, text)


_SIGNER = Signer.from_string(PETER_SKEY)
_CHECKPOINT_NOTE = sign_checkpoint(
    Checkpoint("PeterNeumann", 123456, ROOT, ("extension",)), _SIGNER
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_changed(_CHECKPOINT_NOTE))
def test_any_single_character_change_of_a_signed_checkpoint_fails(changed: str) -> None:
    with pytest.raises(VerificationError):
        verify_checkpoint(changed, _SIGNER.verifier())


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(_CHECKPOINT_NOTE.encode()) * 8 - 1))
def test_any_bit_flip_of_a_signed_checkpoint_fails(bit: int) -> None:
    raw = bytearray(_CHECKPOINT_NOTE.encode())
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(VerificationError):
        verify_checkpoint(bytes(raw), _SIGNER.verifier())


# --------------------------------------------------------------------------- a tiny RFC 6962 tree
# Written from RFC 6962 §2.1 / RFC 9162 §2.1.4 so that these tests do not depend on merkle.py.


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def _consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return _subproof(m, leaves, True)


def _verify_consistency_local(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2, raising VerificationError."""
    if not 0 < old_size <= new_size:
        raise VerificationError(f"bad sizes {old_size} -> {new_size}")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise VerificationError("equal sizes need an empty proof and equal roots")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        raise VerificationError("empty proof")
    first, second = old_size - 1, new_size - 1
    while first & 1:
        first, second = first >> 1, second >> 1
    old_hash = new_hash = path[0]
    for sibling in path[1:]:
        if second == 0:
            raise VerificationError("proof too long")
        if first & 1 or first == second:
            old_hash, new_hash = _node(sibling, old_hash), _node(sibling, new_hash)
            if not first & 1:
                while first and not first & 1:
                    first, second = first >> 1, second >> 1
        else:
            new_hash = _node(new_hash, sibling)
        first, second = first >> 1, second >> 1
    if second != 0 or old_hash != old_root or new_hash != new_root:
        raise VerificationError("consistency proof does not verify")


def _consistency_checker() -> Callable[[int, int, bytes, bytes, Sequence[bytes]], object]:
    try:
        from pollwatch.evidence.merkle import verify_consistency
    except ImportError:
        return _verify_consistency_local
    return verify_consistency


def test_local_tree_helper_is_self_consistent() -> None:
    leaves = [_leaf(bytes([i])) for i in range(13)]
    for old in range(1, 14):
        for new in range(old, 14):
            proof = _consistency_proof(old, leaves[:new])
            _verify_consistency_local(old, new, _mth(leaves[:old]), _mth(leaves[:new]), proof)
            _consistency_checker()(old, new, _mth(leaves[:old]), _mth(leaves[:new]), proof)
    with pytest.raises(VerificationError):
        _verify_consistency_local(3, 7, _mth(leaves[:3]), _mth(leaves[1:8]), [])


# --------------------------------------------------------------------------- witnesses


class Log:
    """A test log: leaves, its key, and signed checkpoints of any prefix."""

    def __init__(self, origin: str = LOG, salt: bytes = b"") -> None:
        skey, _ = generate_signer(origin)
        self.signer = Signer.from_string(skey)
        self.origin = origin
        self.leaves = [_leaf(salt + i.to_bytes(4, "big")) for i in range(64)]

    def checkpoint(self, size: int) -> str:
        return sign_checkpoint(Checkpoint(self.origin, size, _mth(self.leaves[:size])), self.signer)

    def proof(self, old: int, new: int) -> list[bytes]:
        return _consistency_proof(old, self.leaves[:new])


def _witness(
    name: str,
    log: Log,
    *,
    state: Path | None = None,
    clock: Callable[[], float] = time.time,
    skey: str | None = None,
) -> Witness:
    signer = Signer.from_string(skey or generate_cosigner(name)[0])
    return Witness(
        signer,
        [log.signer.verifier()],
        state=state,
        verify_consistency=_consistency_checker(),
        clock=clock,
    )


def test_witness_cosigns_a_growing_log_and_records_it() -> None:
    log = Log()
    witness = _witness("witness.example/a", log, clock=lambda: 1_700_000_000.9)
    first = witness.cosign(log.checkpoint(3))
    assert witness.last_cosigned(LOG) == (3, _mth(log.leaves[:3]))
    second = witness.cosign(log.checkpoint(7), log.proof(3, 7), old_size=3)
    assert witness.last_cosigned(LOG) == (7, _mth(log.leaves[:7]))
    for note, size in ((first, 3), (second, 7)):
        checkpoint = verify_cosigned(note, log.signer.verifier(), [witness.verifier()])
        assert checkpoint.size == size
    # the same checkpoint again is cosigned again (a fresh statement), state unchanged
    again = witness.cosign(log.checkpoint(7))
    assert verify_cosigned(again, log.signer.verifier(), [witness.verifier()]).size == 7


def test_cosignature_line_follows_tlog_cosignature_v1_exactly() -> None:
    """Checked with hashlib and cryptography directly, not with the module's own verifier."""
    log = Log()
    witness = _witness("witness.example/a", log, clock=lambda: 1_679_315_147.5)
    note = witness.cosign(log.checkpoint(5))
    body = log.checkpoint(5).split("\n\n")[0] + "\n"
    last_line = note.rstrip("\n").split("\n")[-1]
    name, payload64 = last_line.removeprefix("— ").split(" ")
    payload = base64.b64decode(payload64)
    public = witness.verifier().public_key
    assert name == "witness.example/a"
    assert payload[:4] == hashlib.sha256(b"witness.example/a\n\x04" + public).digest()[:4]
    assert int.from_bytes(payload[4:12], "big") == 1_679_315_147
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(payload[12:], message)  # raises if wrong
    assert len(payload) == 4 + 8 + 64


def test_witness_refuses_rollback() -> None:
    log = Log()
    witness = _witness("witness.example/a", log)
    witness.cosign(log.checkpoint(7))
    with pytest.raises(VerificationError) as caught:
        witness.cosign(log.checkpoint(5))
    assert caught.value.message == (
        "witness witness.example/a: rollback of evidence.example.org/log: size 5 is smaller "
        "than size 7 cosigned before"
    )
    assert witness.last_cosigned(LOG) == (7, _mth(log.leaves[:7]))


def test_witness_refuses_a_fork_of_the_same_size() -> None:
    log = Log()
    witness = _witness("witness.example/a", log)
    witness.cosign(log.checkpoint(7))
    forked = Log()
    forked.signer = log.signer  # the same log key signs another tree
    forked.leaves = [_leaf(b"fork" + bytes([i])) for i in range(64)]
    with pytest.raises(VerificationError, match=r"fork of evidence\.example\.org/log: size 7"):
        witness.cosign(forked.checkpoint(7))


def test_witness_refuses_a_fork_at_a_larger_size() -> None:
    log = Log()
    witness = _witness("witness.example/a", log)
    witness.cosign(log.checkpoint(7))
    forked = Log()
    forked.signer = log.signer
    forked.leaves = log.leaves[:3] + [_leaf(b"fork" + bytes([i])) for i in range(61)]
    with pytest.raises(VerificationError, match="not proven consistent with size 7"):
        witness.cosign(forked.checkpoint(9), forked.proof(7, 9))
    with pytest.raises(VerificationError, match="not proven consistent with size 7"):
        witness.cosign(forked.checkpoint(9), log.proof(7, 9))
    assert witness.last_cosigned(LOG) == (7, _mth(log.leaves[:7]))


def test_witness_needs_the_right_proof() -> None:
    log = Log()
    witness = _witness("witness.example/a", log)
    with pytest.raises(VerificationError, match="must be empty"):
        witness.cosign(log.checkpoint(4), log.proof(2, 4))  # first contact: no proof
    witness.cosign(log.checkpoint(4))
    with pytest.raises(VerificationError, match=r"missing consistency proof .* from size 4 to 9"):
        witness.cosign(log.checkpoint(9))
    with pytest.raises(VerificationError, match="not proven consistent"):
        witness.cosign(log.checkpoint(9), log.proof(3, 9))  # a proof from the wrong size
    with pytest.raises(VerificationError, match="says old size 3, but the last"):
        witness.cosign(log.checkpoint(9), log.proof(4, 9), old_size=3)
    with pytest.raises(VerificationError, match="node 0 is 5 bytes"):
        witness.cosign(log.checkpoint(9), [b"short"])
    assert witness.cosign(log.checkpoint(9), log.proof(4, 9), old_size=4)


def test_witness_refuses_unknown_logs_and_bad_signatures() -> None:
    log, stranger = Log(), Log("stranger.example/log")
    witness = _witness("witness.example/a", log)
    with pytest.raises(VerificationError, match=r"unknown log origin 'stranger\.example/log'"):
        witness.cosign(stranger.checkpoint(3))
    impostor = Log()  # same origin, another key
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        witness.cosign(impostor.checkpoint(3))
    assert witness.last_cosigned(LOG) is None


def test_witness_uses_merkle_module_by_default() -> None:
    pytest.importorskip("pollwatch.evidence.merkle")
    log = Log()
    skey, _ = generate_cosigner("witness.example/a")
    witness = Witness(Signer.from_string(skey), {LOG: log.signer.verifier()})
    witness.cosign(log.checkpoint(6))
    witness.cosign(log.checkpoint(11), log.proof(6, 11))
    with pytest.raises(VerificationError, match="not proven consistent"):
        witness.cosign(log.checkpoint(12), log.proof(10, 12))


def test_witness_state_file_survives_restarts_and_refuses_corruption(tmp_path: Path) -> None:
    log = Log()
    state = tmp_path / "witness" / "state.json"
    skey, _ = generate_cosigner("witness.example/a")
    _witness("witness.example/a", log, state=state, skey=skey).cosign(log.checkpoint(8))
    saved = json.loads(state.read_text())
    assert saved["logs"][LOG] == {
        "size": 8,
        "root_hash": base64.b64encode(_mth(log.leaves[:8])).decode(),
    }
    restarted = _witness("witness.example/a", log, state=state, skey=skey)
    with pytest.raises(VerificationError, match="rollback"):
        restarted.cosign(log.checkpoint(6))
    restarted.cosign(log.checkpoint(10), log.proof(8, 10))
    assert json.loads(state.read_text())["logs"][LOG]["size"] == 10
    state.write_text("{not json")
    with pytest.raises(EvidenceError, match="cannot be read"):
        Witness(Signer.from_string(skey), [log.signer.verifier()], state=state)


def test_witness_serialises_concurrent_cosigning(tmp_path: Path) -> None:
    log = Log()
    witness = _witness("witness.example/a", log, state=tmp_path / "state.json")
    witness.cosign(log.checkpoint(1))
    errors: list[VerificationError] = []

    def grow(size: int) -> None:
        last = witness.last_cosigned(LOG)
        assert last is not None
        proof = log.proof(last[0], size) if last[0] <= size else []
        try:
            witness.cosign(log.checkpoint(size), proof)
        except VerificationError as exc:  # lost the race: the proof is from a stale size
            errors.append(exc)

    threads = [threading.Thread(target=grow, args=(size,)) for size in range(2, 12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    size, root = witness.last_cosigned(LOG) or (0, b"")
    assert root == _mth(log.leaves[:size])  # never a torn or rolled-back state
    assert all("rollback" in e.message or "consistent" in e.message for e in errors)


def test_k_of_n_policy_reports_each_witness() -> None:
    log = Log()
    witnesses = [_witness(f"witness-{x}", log) for x in "abc"]
    verifiers = [w.verifier() for w in witnesses]
    checkpoint = log.checkpoint(5)
    by_a = witnesses[0].cosign(checkpoint)
    by_b = witnesses[1].cosign(checkpoint)
    line_b = by_b.rstrip("\n").split("\n")[-1]
    name, payload = line_b.split(" ")[1:]
    raw = bytearray(base64.b64decode(payload))
    raw[-1] ^= 1
    damaged_b = f"— {name} {base64.b64encode(bytes(raw)).decode()}\n"
    note = add_cosignatures(by_a, [damaged_b])
    assert verify_cosigned(note, log.signer.verifier(), verifiers, required_witnesses=1).size == 5
    with pytest.raises(VerificationError) as caught:
        verify_cosigned(note, log.signer.verifier(), verifiers, required_witnesses=2)
    assert caught.value.message == (
        "2 of 3 witness cosignatures required, 1 valid: witness-b signature invalid, "
        "witness-c missing"
    )
    with_c = add_cosignatures(note, witnesses[2].cosign(checkpoint).rstrip("\n").split("\n")[-1])
    assert verify_cosigned(with_c, log.signer.verifier(), verifiers, required_witnesses=2)
    with pytest.raises(VerificationError) as caught:
        verify_cosigned(with_c, log.signer.verifier(), verifiers)  # default: all of them
    assert caught.value.message == (
        "3 of 3 witness cosignatures required, 2 valid: witness-b signature invalid"
    )
    with pytest.raises(EvidenceError, match=r"outside 1\.\.3"):
        verify_cosigned(with_c, log.signer.verifier(), verifiers, required_witnesses=4)


def test_cosigned_checkpoint_still_needs_the_log_signature() -> None:
    log = Log()
    witness = _witness("witness-a", log)
    note = witness.cosign(log.checkpoint(5))
    other = Log()
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        verify_cosigned(note, other.signer.verifier(), [witness.verifier()])
    # a witness key given as a plain Ed25519 vkey is read as its cosignature/v1 key
    plain = Verifier(witness.verifier().name, witness.verifier().public_key, KEY_TYPE_ED25519)
    assert verify_cosigned(note, log.signer.verifier(), [plain]).size == 5


def test_add_cosignatures_replaces_lines_of_the_same_key() -> None:
    log = Log()
    clock = iter([100.0, 200.0])
    witness = _witness("witness-a", log, clock=lambda: next(clock))
    first = witness.cosign(log.checkpoint(5))
    second = witness.cosign(log.checkpoint(5))
    merged = add_cosignatures(first, second.split("\n\n")[1])
    _, signatures = _split_note(merged)
    assert [(s.name, s.timestamp) for s in signatures] == [(LOG, None), ("witness-a", 200)]
    assert add_cosignatures(merged, []) == merged
    with pytest.raises(VerificationError, match="malformed note"):
        add_cosignatures(merged, ["not a signature line"])


_LOG_FOR_PROPERTIES = Log("PeterNeumann")
_LOG_FOR_PROPERTIES.signer = _SIGNER
_WITNESS_FOR_PROPERTIES = _witness("witness-a", _LOG_FOR_PROPERTIES, clock=lambda: 1e9)
_COSIGNED_NOTE = _WITNESS_FOR_PROPERTIES.cosign(_LOG_FOR_PROPERTIES.checkpoint(9))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_changed(_COSIGNED_NOTE))
def test_any_single_character_change_of_a_cosigned_checkpoint_fails(changed: str) -> None:
    with pytest.raises(VerificationError):
        verify_cosigned(changed, _SIGNER.verifier(), [_WITNESS_FOR_PROPERTIES.verifier()])


# --------------------------------------------------------------------------- the docs example

DOCS = Path(__file__).resolve().parents[2] / "docs" / "evidence-checkpoints.md"


def _docs_block(name: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```\n", text.index(f"<!-- example: {name} -->")) + 4
    return text[start : text.index("```", start)]


def test_docs_examples_are_what_the_code_produces() -> None:
    """docs/evidence-checkpoints.md shows real output: rebuild it from the same fixed seeds."""
    if not DOCS.exists():
        pytest.skip("docs/evidence-checkpoints.md is not in this checkout")
    origin = "evidence.example.org/log"
    log = Log(origin)
    log.signer = Signer(origin, hashlib.sha256(b"pollwatch docs: log key").digest())
    log.leaves = [_leaf(b"item %d" % i) for i in range(7)]
    seed = hashlib.sha256(b"pollwatch docs: witness key 1").digest()
    cosigner = Signer("witness.example.net/w1", seed, KEY_TYPE_COSIGNATURE_V1)
    witness = _witness("w", log, clock=lambda: 1767225600, skey=cosigner.to_string())
    witness.cosign(log.checkpoint(4))
    assert log.proof(4, 7) == [base64.b64decode("z9sjLreuAlMq5TNhWoSm/Ag7r6kz8jy0jnMvjtBY8U0=")]
    cosigned = witness.cosign(log.checkpoint(7), log.proof(4, 7), old_size=4)
    assert _docs_block("signed-checkpoint") == log.checkpoint(7)
    assert _docs_block("cosigned-checkpoint") == cosigned
    text = DOCS.read_text(encoding="utf-8")
    for key in (log.signer.to_string(), str(log.signer.verifier()), cosigner.to_string()):
        assert key in text
    assert str(witness.verifier()) in text
