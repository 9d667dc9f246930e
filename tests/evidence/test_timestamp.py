"""RFC 3161 time-stamps against a real local TSA (OpenSSL ``ts -reply`` over HTTP on 127.0.0.1).

Interoperability is checked both ways: OpenSSL's ``ts -query -text`` reads our requests, and
``openssl ts -verify`` accepts the tokens our client received, which our offline verifier
accepts too; then every damage we can think of must be rejected by our verifier.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.checkpoint import Checkpoint, Signer, generate_signer, sign_checkpoint
from pollwatch.evidence.timestamp import (
    TimestampToken,
    _check_timestamping_certificate,
    _trust_anchor,
    build_request,
    parse_response,
    request_timestamp,
    verify_timestamp,
)
from tests.evidence.tsa import POLICY, LocalTSA, local_tsa, make_ca, make_leaf, openssl_path

pytestmark = pytest.mark.network

DATA = b"protocol of polling station 42: 1234 ballots\n"
DIGEST = hashlib.sha256(DATA).digest()


@pytest.fixture(scope="module")
def token(tsa: LocalTSA) -> TimestampToken:
    """One token for DATA from the session TSA."""
    return request_timestamp(tsa.url, DIGEST)


# --------------------------------------------------------------------------- requests


def test_request_is_der_that_openssl_reads(tmp_path: Path) -> None:
    query = build_request(DIGEST, nonce=0x1234ABCD, policy="1.2.3.4.5")
    request = tsp.TimeStampReq.load(query, strict=True)
    assert request["version"].native == "v1"
    assert request["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert request["message_imprint"]["hashed_message"].native == DIGEST
    assert request["nonce"].native == 0x1234ABCD
    assert request["cert_req"].native is True
    assert request["req_policy"].dotted == "1.2.3.4.5"
    assert tsp.TimeStampReq.load(build_request(DIGEST))["nonce"].native is None
    openssl = openssl_path()
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    path = tmp_path / "query.tsq"
    path.write_bytes(query)
    text = subprocess.run(
        [openssl, "ts", "-query", "-in", str(path), "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Hash Algorithm: sha256" in text
    assert "Policy OID: 1.2.3.4.5" in text
    assert "Nonce: 0x1234ABCD" in text
    assert "Certificate required: yes" in text
    assert DIGEST[:8].hex(" ") in text  # the first line of OpenSSL's hex dump of the imprint


def test_request_refuses_bad_arguments() -> None:
    with pytest.raises(EvidenceError, match="32-byte SHA-256 digest, got 20"):
        build_request(hashlib.sha1(DATA).digest())
    with pytest.raises(EvidenceError, match="positive"):
        build_request(DIGEST, nonce=0)
    with pytest.raises(EvidenceError, match="not http"):
        request_timestamp("file:///etc/passwd", DIGEST)


# --------------------------------------------------------------------------- the happy path


def test_token_from_local_tsa_verifies_offline(tsa: LocalTSA, token: TimestampToken) -> None:
    now = dt.datetime.now(dt.UTC)
    assert abs((token.gen_time - now).total_seconds()) < 120
    assert token.policy == POLICY
    assert token.tsa_name == "CN=pollwatch test TSA"
    assert token.digest == DIGEST
    assert token.hash_algorithm == "sha256"
    assert token.nonce is not None and token.nonce > 0
    info = verify_timestamp(token.der, DIGEST, trusted_certs=[tsa.ca_cert_pem])
    assert info.gen_time == token.gen_time
    assert info.serial == token.serial
    assert info.policy == POLICY
    assert info.accuracy_seconds == pytest.approx(1.5001)
    assert info.signer_subject == "CN=pollwatch test TSA"
    assert info.trust_anchor == "CN=pollwatch test CA"
    tsa_der = x509.load_pem_x509_certificate(tsa.tsa_cert_path.read_bytes()).public_bytes(
        Encoding.DER
    )
    assert info.signer_certificate_sha256 == hashlib.sha256(tsa_der).hexdigest()
    # DER trust anchors work as well as PEM, and the TSA certificate itself can be the anchor
    ca_der = tsa.ca.certificate.public_bytes(Encoding.DER)
    assert verify_timestamp(token.der, DIGEST, trusted_certs=[ca_der]).serial == token.serial
    direct = verify_timestamp(token.der, DIGEST, trusted_certs=[tsa.tsa_cert_path.read_bytes()])
    assert direct.trust_anchor == "CN=pollwatch test TSA"


def test_openssl_accepts_the_token_our_client_received(
    tsa: LocalTSA, token: TimestampToken, tmp_path: Path
) -> None:
    data, token_file = tmp_path / "data.bin", tmp_path / "token.der"
    data.write_bytes(DATA)
    token_file.write_bytes(token.der)
    command = [tsa.openssl, "ts", "-verify", "-data", str(data), "-in", str(token_file)]
    command += ["-token_in", "-CAfile", str(tsa.ca_cert_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Verification: OK" in done.stdout
    data.write_bytes(DATA + b"!")  # and OpenSSL, like us, refuses other data
    assert subprocess.run(command, capture_output=True, check=False).returncode != 0


def test_request_can_verify_at_once(tsa: LocalTSA) -> None:
    token = request_timestamp(tsa.url, DIGEST, trusted_certs=[tsa.ca_cert_pem], policy=POLICY)
    assert TimestampToken.from_der(token.der) == token
    other = request_timestamp(tsa.url, DIGEST, policy="1.2.3.4.5")
    assert other.policy == "1.2.3.4.5"
    assert other.serial != token.serial


def test_token_without_certificate_needs_the_tsa_certificate(tsa: LocalTSA) -> None:
    bare = request_timestamp(tsa.url, DIGEST, cert_req=False)
    tsa_pem = tsa.tsa_cert_path.read_bytes()
    assert verify_timestamp(bare.der, DIGEST, trusted_certs=[tsa_pem]).serial == bare.serial
    assert verify_timestamp(bare.der, DIGEST, trusted_certs=[tsa.ca_cert_pem + tsa_pem])
    with pytest.raises(VerificationError, match="neither in the token nor among the trusted"):
        verify_timestamp(bare.der, DIGEST, trusted_certs=[tsa.ca_cert_pem])


@pytest.mark.parametrize(("key_type", "ess"), [("ec", "sha256"), ("rsa", "sha1")])
def test_ecdsa_tsa_and_ess_v1_attribute_verify(tmp_path: Path, key_type: str, ess: str) -> None:
    if openssl_path() is None:
        pytest.skip("the openssl command is not installed")
    with local_tsa(tmp_path, key_type=key_type, ess_cert_id_alg=ess) as other:
        token = request_timestamp(other.url, DIGEST)
        info = verify_timestamp(token.der, DIGEST, trusted_certs=[other.ca_cert_pem])
        assert info.trust_anchor == "CN=pollwatch test CA"


def test_a_checkpoint_can_be_time_stamped(tsa: LocalTSA) -> None:
    skey, _ = generate_signer("evidence.example.org/log")
    note = sign_checkpoint(
        Checkpoint("evidence.example.org/log", 3, hashlib.sha256(b"r").digest()),
        Signer.from_string(skey),
    )
    digest = hashlib.sha256(note.encode("utf-8")).digest()
    token = request_timestamp(tsa.url, digest, trusted_certs=[tsa.ca_cert_pem])
    assert verify_timestamp(token.der, digest, trusted_certs=[tsa.ca_cert_pem]).digest == digest


# --------------------------------------------------------------------------- rejections


def test_other_data_is_rejected(tsa: LocalTSA, token: TimestampToken) -> None:
    other = hashlib.sha256(DATA + b"!").digest()
    with pytest.raises(VerificationError) as caught:
        verify_timestamp(token.der, other, trusted_certs=[tsa.ca_cert_pem])
    assert caught.value.message == (
        f"time-stamp token does not cover this data: its imprint is {DIGEST.hex()}, the data's "
        f"SHA-256 is {other.hex()}"
    )


def test_untrusted_ca_is_rejected(token: TimestampToken) -> None:
    stranger = make_ca("pollwatch test CA")  # same name, another key
    with pytest.raises(VerificationError) as caught:
        verify_timestamp(token.der, DIGEST, trusted_certs=[stranger.pem])
    assert caught.value.message == (
        "TSA certificate CN=pollwatch test TSA (issued by CN=pollwatch test CA) is not trusted: "
        "CN=pollwatch test CA did not sign it"
    )
    unrelated = make_ca("someone else")
    with pytest.raises(VerificationError, match="no trusted certificate is its issuer"):
        verify_timestamp(token.der, DIGEST, trusted_certs=[unrelated.pem])


def test_every_byte_with_one_flipped_bit_is_rejected(tsa: LocalTSA, token: TimestampToken) -> None:
    """One seeded random bit in each byte of the token (the whole token, header to signature)."""
    chooser = random.Random(3161)
    for position in range(len(token.der)):
        damaged = bytearray(token.der)
        damaged[position] ^= 1 << chooser.randrange(8)
        with pytest.raises(VerificationError):
            verify_timestamp(bytes(damaged), DIGEST, trusted_certs=[tsa.ca_cert_pem])


@settings(max_examples=300, deadline=None)
@given(bit=st.integers(0, 20_000 - 1))
def test_any_flipped_bit_is_rejected(tsa: LocalTSA, token: TimestampToken, bit: int) -> None:
    bit %= len(token.der) * 8
    damaged = bytearray(token.der)
    damaged[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(VerificationError):
        verify_timestamp(bytes(damaged), DIGEST, trusted_certs=[tsa.ca_cert_pem])


@pytest.mark.parametrize("cut", [1, 10, 100, 1000])
def test_truncated_or_extended_token_is_rejected(
    tsa: LocalTSA, token: TimestampToken, cut: int
) -> None:
    with pytest.raises(VerificationError):
        verify_timestamp(token.der[:-cut], DIGEST, trusted_certs=[tsa.ca_cert_pem])
    with pytest.raises(VerificationError):
        verify_timestamp(token.der + b"\x00" * cut, DIGEST, trusted_certs=[tsa.ca_cert_pem])


def test_garbage_tokens_and_trust_lists_are_one_line_errors(tsa: LocalTSA) -> None:
    for garbage in (b"", b"\x30\x03\x02\x01\x01", b"not der at all", build_request(DIGEST)):
        with pytest.raises(VerificationError) as caught:
            verify_timestamp(garbage, DIGEST, trusted_certs=[tsa.ca_cert_pem])
        assert "\n" not in str(caught.value)
        with pytest.raises(VerificationError):
            TimestampToken.from_der(garbage)
    with pytest.raises(EvidenceError, match="a list of certificates"):
        verify_timestamp(b"x", DIGEST, trusted_certs=tsa.ca_cert_pem)  # type: ignore[arg-type]
    with pytest.raises(EvidenceError, match="trusted certificate 0 is not a PEM or DER"):
        verify_timestamp(b"x", DIGEST, trusted_certs=[b"nonsense"])
    with pytest.raises(EvidenceError, match="no trusted certificates"):
        verify_timestamp(b"x", DIGEST, trusted_certs=[])
    with pytest.raises(VerificationError, match="did not send a time-stamp response"):
        parse_response(b"<html>", url="http://tsa.example")


# --------------------------------------------------------------------------- TSA failures


def test_tsa_refusal_is_reported(tsa: LocalTSA) -> None:
    with pytest.raises(EvidenceError) as caught:
        request_timestamp(tsa.path_url("/sha512-only"), DIGEST)
    assert caught.value.message.startswith(
        f"{tsa.path_url('/sha512-only')} refused the time-stamp request (rejection): "
    )
    assert "unrecognised or unsupported algorithm" in caught.value.message


def test_http_failures_name_the_url(tsa: LocalTSA) -> None:
    with pytest.raises(EvidenceError) as caught:
        request_timestamp(tsa.path_url("/broken"), DIGEST)
    assert caught.value.message == (
        f"time-stamp authority {tsa.path_url('/broken')} answered HTTP 500 Internal Server Error"
    )
    with pytest.raises(VerificationError, match="media type 'text/plain'"):
        request_timestamp(tsa.path_url("/garbage"), DIGEST)
    with pytest.raises(EvidenceError, match=r"did not answer within 0\.5 s"):
        request_timestamp(tsa.path_url("/slow"), DIGEST, timeout=0.5)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    yield port


def test_unreachable_tsa_is_one_line_naming_the_url(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/tsr"
    with pytest.raises(EvidenceError) as caught:
        request_timestamp(url, DIGEST, timeout=2)
    text = str(caught.value)
    assert text.startswith(f"cannot reach time-stamp authority {url}: ")
    assert "refused" in text.lower()
    assert "\n" not in text


# --------------------------------------------------------------------------- certificate rules


def _when(certificate: x509.Certificate) -> dt.datetime:
    return certificate.not_valid_before_utc + dt.timedelta(hours=1)


def test_tsa_certificate_needs_exactly_a_critical_timestamping_usage() -> None:
    ca = make_ca("rules CA", key_type="ec")
    _, good = make_leaf(ca, "good", key_type="ec")
    _check_timestamping_certificate(good, _when(good))
    _, soft = make_leaf(ca, "soft", key_type="ec", usage_critical=False)
    with pytest.raises(VerificationError, match="not marked critical"):
        _check_timestamping_certificate(soft, _when(soft))
    _, extra = make_leaf(
        ca,
        "extra",
        key_type="ec",
        usages=(ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING),
    )
    with pytest.raises(VerificationError, match="must be exactly timeStamping"):
        _check_timestamping_certificate(extra, _when(extra))
    _, none = make_leaf(ca, "none", key_type="ec", usages=())
    with pytest.raises(VerificationError, match="has no extended key usage"):
        _check_timestamping_certificate(none, _when(none))
    with pytest.raises(VerificationError, match="was not valid at the time-stamp time"):
        _check_timestamping_certificate(good, good.not_valid_after_utc + dt.timedelta(seconds=1))


def test_only_a_ca_certificate_can_vouch_for_a_tsa() -> None:
    ca = make_ca("rules CA", key_type="ec")
    _, tsa_cert = make_leaf(ca, "tsa", key_type="ec")
    assert _trust_anchor(tsa_cert, [ca.certificate], _when(tsa_cert)) == ca.certificate
    # a leaf that happens to carry the CA's name and key is not a CA
    _, impostor = make_leaf(ca, "rules CA", key_type="ec")
    with pytest.raises(VerificationError, match="is not a CA certificate"):
        _trust_anchor(tsa_cert, [impostor], _when(tsa_cert))
