"""RFC 3161 time-stamps: requests to a time-stamp authority and offline verification of tokens.

Standards followed:

* **RFC 3161** (Internet X.509 PKI Time-Stamp Protocol), updated by **RFC 5816** (ESSCertIDv2):
  a *time-stamp request* (``TimeStampReq``, §2.4.1) carries the *message imprint* (hash algorithm
  and hash of the data), an optional nonce and ``certReq``; it is sent by HTTP POST with media
  type ``application/timestamp-query`` and answered with ``application/timestamp-reply`` (§3.4).
  The answer (``TimeStampResp``, §2.4.2) holds a status and the *time-stamp token*: a CMS
  ``ContentInfo`` of type ``SignedData`` whose encapsulated content is a ``TSTInfo`` (the imprint,
  the TSA's time ``genTime``, serial number, policy, accuracy, nonce, TSA name).
* **RFC 5652** (CMS) §5.4 and §5.6: the TSA signs the DER encoding of the *signed attributes*,
  re-tagged as ``SET OF`` (tag ``0x31``); the ``message-digest`` attribute is the hash of the
  ``TSTInfo`` octets, the ``content-type`` attribute is ``id-ct-TSTInfo``.
* **RFC 2634 / RFC 5035** (ESS ``signingCertificate`` / ``signingCertificateV2``): RFC 3161 §2.4.1
  requires the signed attributes to name the TSA certificate by its hash, so the certificate
  cannot be swapped.
* RFC 3161 §2.3: the TSA certificate holds exactly one extended key usage, ``id-kp-timeStamping``,
  and that extension is critical.

What :func:`verify_timestamp` checks, offline, with ``asn1crypto`` and ``cryptography``: the token
structure, the imprint equals the SHA-256 of the data, the message-digest attribute, the ESS
certificate hash, the signature (RSA PKCS #1 v1.5, RSA-PSS, ECDSA or Ed25519 with SHA-256/384/512),
the timeStamping key usage, the certificate validity at ``genTime``, and that the TSA certificate
is one of the trusted certificates or is issued directly by one of them (one level of CA; longer
chains are not followed). It does not check revocation (no CRL or OCSP lookups).

Nothing here prints; failures are :class:`~pollwatch.errors.EvidenceError` (TSA unreachable, bad
arguments) or :class:`~pollwatch.errors.VerificationError` (a token that does not verify), each
with a one-line reason that names the URL or the field.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms, core, tsp  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from pollwatch.errors import EvidenceError, VerificationError

__all__ = [
    "QUERY_MEDIA_TYPE",
    "REPLY_MEDIA_TYPE",
    "TimestampInfo",
    "TimestampToken",
    "build_request",
    "parse_response",
    "request_timestamp",
    "verify_timestamp",
]

#: Media type of a time-stamp request (RFC 3161 §3.4).
QUERY_MEDIA_TYPE = "application/timestamp-query"
#: Media type of a time-stamp response (RFC 3161 §3.4).
REPLY_MEDIA_TYPE = "application/timestamp-reply"

_SHA256_SIZE = 32
_MAX_REPLY_BYTES = 1 << 20  # a token is a few kB; a bigger answer is not a TSA's
_HASHES: dict[str, tuple[type[hashes.HashAlgorithm], Any]] = {
    "sha256": (hashes.SHA256, hashlib.sha256),
    "sha384": (hashes.SHA384, hashlib.sha384),
    "sha512": (hashes.SHA512, hashlib.sha512),
}
# Signature algorithm OIDs (asn1crypto names) that fix a hash, and the scheme they use.
_SIGNATURE_SCHEMES: dict[str, tuple[str, str | None]] = {
    "rsassa_pkcs1v15": ("rsa", None),
    "sha256_rsa": ("rsa", "sha256"),
    "sha384_rsa": ("rsa", "sha384"),
    "sha512_rsa": ("rsa", "sha512"),
    "rsassa_pss": ("pss", None),
    "ecdsa": ("ecdsa", None),
    "sha256_ecdsa": ("ecdsa", "sha256"),
    "sha384_ecdsa": ("ecdsa", "sha384"),
    "sha512_ecdsa": ("ecdsa", "sha512"),
    "ed25519": ("ed25519", None),
}
_PKI_FAILURES = {
    "bad_alg": "unrecognised or unsupported algorithm",
    "bad_request": "transaction not permitted or supported",
    "bad_data_format": "the data submitted has the wrong format",
    "time_not_available": "the TSA's time source is not available",
    "unaccepted_policy": "the requested TSA policy is not supported",
    "unaccepted_extensions": "the requested extension is not supported",
    "add_info_not_available": "the additional information requested is not available",
    "system_failure": "the request cannot be handled due to system failure",
}


@dataclass(frozen=True)
class _TstInfoFields:
    """What a token's ``TSTInfo`` states (RFC 3161 §2.4.2), read by :func:`_tst_fields`."""

    gen_time: datetime
    serial: int
    tsa_name: str | None
    policy: str
    digest: bytes
    hash_algorithm: str
    nonce: int | None


@dataclass(frozen=True)
class TimestampToken(_TstInfoFields):
    """A time-stamp token as received, read but not verified (use :func:`verify_timestamp`).

    ``der`` is the DER ``ContentInfo`` to store; the other fields are read from its ``TSTInfo``.
    """

    der: bytes

    @classmethod
    def from_der(cls, der: bytes) -> TimestampToken:
        """Read a token (DER ``ContentInfo``); :class:`VerificationError` if it is not one."""
        token = _load_token(der)
        return cls(der=bytes(der), **_tst_fields(token.tst_info))


@dataclass(frozen=True)
class TimestampInfo(_TstInfoFields):
    """What a verified token states: the TSA time for a SHA-256 digest, and who signed it.

    ``accuracy_seconds`` is the TSA's stated accuracy (None when not given).
    ``signer_certificate_sha256`` is the hex SHA-256 of the TSA certificate (DER);
    ``trust_anchor`` is the subject of the trusted certificate that vouched for it.
    """

    accuracy_seconds: float | None
    signer_subject: str
    signer_certificate_sha256: str
    trust_anchor: str


# --------------------------------------------------------------------------- requests


def _check_digest(digest: bytes, what: str) -> bytes:
    if not isinstance(digest, bytes | bytearray) or len(digest) != _SHA256_SIZE:
        size = len(digest) if isinstance(digest, bytes | bytearray) else type(digest).__name__
        raise EvidenceError(
            f"{what}: expected a 32-byte SHA-256 digest, got {size}",
            hint="pass hashlib.sha256(data).digest()",
        )
    return bytes(digest)


def build_request(
    digest: bytes,
    *,
    nonce: int | None = None,
    cert_req: bool = True,
    policy: str | None = None,
) -> bytes:
    """The DER ``TimeStampReq`` (RFC 3161 §2.4.1) for a SHA-256 ``digest``.

    ``nonce`` (a positive int, recommended) lets the client match the answer to the request;
    ``cert_req`` asks the TSA to include its certificate in the token; ``policy`` is an OID in
    dotted form when a specific TSA policy is wanted.
    """
    digest = _check_digest(digest, "time-stamp request")
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": digest,
        },
        "cert_req": cert_req,
    }
    if nonce is not None:
        if nonce <= 0:
            raise EvidenceError(f"time-stamp nonce must be a positive integer, got {nonce}")
        fields["nonce"] = nonce
    if policy is not None:
        fields["req_policy"] = policy
    try:
        return bytes(tsp.TimeStampReq(fields).dump())
    except ValueError as exc:
        raise EvidenceError(f"cannot build the time-stamp request: {exc}") from None


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """``TimeStampResp`` (RFC 3161 §2.4.2) with ``timeStampToken`` OPTIONAL, as the RFC says.

    asn1crypto 1.5 declares the token mandatory, so refusals (which carry none) would not parse.
    """

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def parse_response(reply: bytes, *, url: str = "the TSA") -> TimestampToken:
    """Read a DER ``TimeStampResp``: the token when the status is granted, else an error."""
    try:
        response = _TimeStampResp.load(reply, strict=True)
        status = response["status"]
        code = status["status"].native
        texts = status["status_string"].native or []
        failures = status["fail_info"].native or set()
    except _PARSE_ERRORS as exc:
        raise VerificationError(
            f"{url} did not send a time-stamp response: {_one_line(exc)}",
            hint="check that the URL is an RFC 3161 time-stamp service",
        ) from None
    if code not in ("granted", "granted_with_mods"):
        reasons = [_PKI_FAILURES.get(str(name), str(name)) for name in sorted(failures)]
        detail = "; ".join([*(str(t) for t in texts), *reasons]) or "no reason given"
        raise EvidenceError(f"{url} refused the time-stamp request ({code}): {detail}")
    token = response["time_stamp_token"]
    if isinstance(token, core.Void):
        raise VerificationError(f"{url} granted the request but sent no time-stamp token")
    return TimestampToken.from_der(token.dump())


def request_timestamp(
    url: str,
    data_digest: bytes,
    *,
    timeout: float = 10.0,
    nonce: bool = True,
    cert_req: bool = True,
    policy: str | None = None,
    trusted_certs: Sequence[bytes] | None = None,
) -> TimestampToken:
    """Ask the TSA at ``url`` to time-stamp a SHA-256 digest; return its token.

    POSTs a ``TimeStampReq`` (RFC 3161 §3.4) and checks that the answer is granted, covers
    ``data_digest`` and echoes the random nonce (and the policy, when one was asked). When
    ``trusted_certs`` are given the token is also verified with :func:`verify_timestamp`.
    Network and HTTP failures raise :class:`EvidenceError` naming the URL.
    """
    digest = _check_digest(data_digest, f"time-stamp request to {url}")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise EvidenceError(
            f"time-stamp authority URL {url!r} is not http(s)",
            hint="give the TSA's URL, e.g. https://freetsa.org/tsr",
        )
    sent_nonce = secrets.randbits(63) + 1 if nonce else None
    query = build_request(digest, nonce=sent_nonce, cert_req=cert_req, policy=policy)
    request = urllib.request.Request(
        url,
        data=query,
        method="POST",
        headers={"Content-Type": QUERY_MEDIA_TYPE, "Accept": REPLY_MEDIA_TYPE},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            media_type = answer.headers.get_content_type()
            reply = answer.read(_MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise EvidenceError(
            f"time-stamp authority {url} answered HTTP {exc.code} {exc.reason}",
            hint="check the URL and that the service accepts RFC 3161 requests",
        ) from None
    except urllib.error.URLError as exc:
        raise EvidenceError(
            f"cannot reach time-stamp authority {url}: {_one_line(exc.reason)}",
            hint="check the URL and the network connection",
        ) from None
    except TimeoutError:
        raise EvidenceError(
            f"time-stamp authority {url} did not answer within {timeout:g} s",
            hint="try again later or raise the timeout",
        ) from None
    except OSError as exc:
        raise EvidenceError(
            f"cannot talk to time-stamp authority {url}: {_one_line(exc)}",
            hint="check the URL and the network connection",
        ) from None
    if len(reply) > _MAX_REPLY_BYTES:
        raise VerificationError(f"{url} sent more than {_MAX_REPLY_BYTES} bytes, not a token")
    if media_type != REPLY_MEDIA_TYPE:
        raise VerificationError(
            f"{url} answered with media type {media_type!r}, not {REPLY_MEDIA_TYPE!r}",
            hint="check that the URL is an RFC 3161 time-stamp service",
        )
    token = parse_response(reply, url=url)
    if token.hash_algorithm != "sha256" or token.digest != digest:
        raise VerificationError(
            f"{url} time-stamped other data: imprint {token.hash_algorithm} "
            f"{token.digest.hex()} instead of sha256 {digest.hex()}"
        )
    if token.nonce != sent_nonce:
        raise VerificationError(
            f"{url} answered with nonce {token.nonce}, not the {sent_nonce} sent",
            hint="the answer belongs to another request; try again",
        )
    if policy is not None and token.policy != policy:
        raise VerificationError(f"{url} used policy {token.policy}, not {policy} as asked")
    if trusted_certs is not None:
        verify_timestamp(token.der, digest, trusted_certs=trusted_certs)
    return token


# --------------------------------------------------------------------------- verification


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


@dataclass(frozen=True)
class _Token:
    """A parsed token and the original encodings of the parts that signatures and hashes cover."""

    signed: Any  # asn1crypto SignedData
    tst_info: Any  # asn1crypto TSTInfo
    content: bytes  # the TSTInfo octets, as received
    signer_infos: list[Any]
    signed_attributes: list[bytes | None]  # each SignerInfo's [0] IMPLICIT attributes, as received
    certificates: list[bytes]  # DER of the certificates in the token, as received


_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


def _load_token(der: bytes) -> _Token:
    """Parse a token (DER ``ContentInfo`` of ``SignedData`` holding a ``TSTInfo``)."""
    if not isinstance(der, bytes | bytearray) or not der:
        raise VerificationError("time-stamp token is empty or not bytes")
    try:
        info = cms.ContentInfo.load(bytes(der), strict=True)
        if info["content_type"].native != "signed_data":
            raise VerificationError(
                f"time-stamp token holds {info['content_type'].native}, not CMS SignedData"
            )
        signed = info["content"]
        # Take the original encodings before reading any field: asn1crypto re-encodes a structure
        # once it fills in a default (an omitted ESSCertIDv2 hash algorithm, say), while the
        # signature and the hashes cover the bytes as the TSA wrote them.
        encapsulated = signed["encap_content_info"]
        econtent = encapsulated["content"]
        if isinstance(econtent, core.Void):
            raise VerificationError("time-stamp token has no TSTInfo content")
        content = bytes(econtent.contents)
        signer_infos = list(signed["signer_infos"])
        signed_attributes = [
            None if isinstance(si["signed_attrs"], core.Void) else bytes(si["signed_attrs"].dump())
            for si in signer_infos
        ]
        embedded = signed["certificates"]
        certificates = (
            []
            if isinstance(embedded, core.Void)
            else [bytes(c.chosen.dump()) for c in embedded if c.name == "certificate"]
        )
        if encapsulated["content_type"].native != "tst_info":
            raise VerificationError(
                "time-stamp token encapsulates "
                f"{encapsulated['content_type'].native}, not a TSTInfo"
            )
        tst_info = tsp.TSTInfo.load(content, strict=True)
        _tst_fields(tst_info)  # read the fields now, so that damage shows here
    except VerificationError:
        raise
    except _PARSE_ERRORS as exc:
        raise VerificationError(
            f"time-stamp token is not valid DER CMS: {_one_line(exc)}",
            hint="the token was damaged; use the stored original",
        ) from None
    return _Token(signed, tst_info, content, signer_infos, signed_attributes, certificates)


_NAME_LABELS = {
    "common_name": "CN",
    "country_name": "C",
    "organization_name": "O",
    "organizational_unit_name": "OU",
    "locality_name": "L",
    "state_or_province_name": "ST",
    "serial_number": "serialNumber",
    "email_address": "emailAddress",
}


def _name_text(general_name: Any) -> str | None:
    """A GeneralName as text; directory names in RFC 4514 order and style (``CN=...,O=...``)."""
    if general_name.native is None:
        return None
    if general_name.name != "directory_name":
        return f"{general_name.name}:{general_name.native}"
    parts: list[str] = []
    for relative in reversed(list(general_name.chosen.chosen)):
        for attribute in relative:
            label = _NAME_LABELS.get(str(attribute["type"].native), attribute["type"].dotted)
            value = str(attribute["value"].native).replace("\\", "\\\\").replace(",", "\\,")
            parts.append(f"{label}={value}")
    return ",".join(parts)


def _tst_fields(tst_info: Any) -> dict[str, Any]:
    imprint = tst_info["message_imprint"]
    return {
        "gen_time": tst_info["gen_time"].native,
        "serial": int(tst_info["serial_number"].native),
        "tsa_name": _name_text(tst_info["tsa"]),
        "policy": str(tst_info["policy"].dotted),
        "digest": bytes(imprint["hashed_message"].native),
        "hash_algorithm": str(imprint["hash_algorithm"]["algorithm"].native),
        "nonce": tst_info["nonce"].native,
    }


def _hash_name(algorithm: Any, where: str) -> str:
    """The name of a DigestAlgorithmIdentifier we accept; parameters absent or NULL."""
    name = str(algorithm["algorithm"].native)
    if name not in _HASHES:
        raise VerificationError(
            f"time-stamp token: {where} uses hash {name}; pollwatch accepts sha256, sha384, sha512"
        )
    parameters = algorithm["parameters"]
    if parameters.native is not None or not isinstance(parameters, core.Null | core.Void):
        raise VerificationError(f"time-stamp token: {where} hash has unexpected parameters")
    return name


def _load_certificates(trusted_certs: Sequence[bytes]) -> list[x509.Certificate]:
    if isinstance(trusted_certs, bytes | bytearray | str):
        raise EvidenceError(
            "trusted_certs must be a list of certificates (PEM or DER bytes), not one value",
            hint="wrap it in a list: trusted_certs=[ca_pem]",
        )
    certificates: list[x509.Certificate] = []
    for index, blob in enumerate(trusted_certs):
        data = bytes(blob)
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                certificates.extend(x509.load_pem_x509_certificates(data))
            else:
                certificates.append(x509.load_der_x509_certificate(data))
        except ValueError as exc:
            raise EvidenceError(
                f"trusted certificate {index} is not a PEM or DER X.509 certificate: "
                f"{_one_line(exc)}"
            ) from None
    if not certificates:
        raise EvidenceError(
            "no trusted certificates given",
            hint="pass the TSA's CA certificate (or the TSA certificate) as trusted_certs",
        )
    return certificates


def _find_signer(signer_info: Any, candidates: list[bytes]) -> bytes:
    """The DER of the certificate that the SignerInfo ``sid`` names, among ``candidates``."""
    sid = signer_info["sid"]
    version = signer_info["version"].native
    if sid.name == "issuer_and_serial_number":
        if version != "v1":
            raise VerificationError("time-stamp token: SignerInfo version must be 1 for its sid")
        issuer = sid.chosen["issuer"].dump()
        serial = sid.chosen["serial_number"].native
    else:
        if version != "v3":
            raise VerificationError("time-stamp token: SignerInfo version must be 3 for its sid")
        wanted = sid.chosen.native
    for der in candidates:
        certificate = asn1_x509.Certificate.load(der)
        tbs = certificate["tbs_certificate"]
        if sid.name == "issuer_and_serial_number":
            # Byte equality, not asn1crypto's X.500 matching: that ignores case, and the sid is
            # not signed, so a changed letter must not go unnoticed.
            if tbs["serial_number"].native == serial and tbs["issuer"].dump() == issuer:
                return der
        elif certificate.key_identifier == wanted:
            return der
    raise VerificationError(
        "time-stamp token: the TSA certificate is neither in the token nor among the trusted "
        "certificates",
        hint="request tokens with cert_req=True, or trust the TSA certificate itself",
    )


def _signed_attributes(raw: bytes | None) -> dict[str, Any]:
    if raw is None or raw[:1] != b"\xa0":
        raise VerificationError("time-stamp token: the signature has no signed attributes")
    attributes = cms.CMSAttributes.load(b"\x31" + raw[1:], strict=True)
    if len(attributes) == 0:
        raise VerificationError("time-stamp token: the signed attributes are empty")
    found: dict[str, Any] = {}
    for attribute in attributes:
        name = str(attribute["type"].native)
        if name in found:
            raise VerificationError(f"time-stamp token: signed attribute {name} appears twice")
        values = attribute["values"]
        if len(values) != 1:
            raise VerificationError(
                f"time-stamp token: signed attribute {name} has {len(values)} values, not 1"
            )
        found[name] = values[0]
    return found


def _check_ess(attributes: dict[str, Any], certificate_der: bytes) -> None:
    """RFC 3161 §2.4.1 / RFC 5035: the signed attributes name the TSA certificate by hash."""
    if "signing_certificate_v2" in attributes:
        identifiers = attributes["signing_certificate_v2"]["certs"]
        if len(identifiers) == 0:
            raise VerificationError("time-stamp token: empty signingCertificateV2 attribute")
        first = identifiers[0]
        name = _hash_name(first["hash_algorithm"], "signingCertificateV2")
        expected = _HASHES[name][1](certificate_der).digest()
    elif "signing_certificate" in attributes:
        identifiers = attributes["signing_certificate"]["certs"]
        if len(identifiers) == 0:
            raise VerificationError("time-stamp token: empty signingCertificate attribute")
        first = identifiers[0]
        expected = hashlib.sha1(certificate_der, usedforsecurity=False).digest()
    else:
        raise VerificationError(
            "time-stamp token lacks the ESS signingCertificate attribute that RFC 3161 requires"
        )
    if first["cert_hash"].native != expected:
        raise VerificationError(
            "time-stamp token: the ESS certificate hash does not match the TSA certificate",
            hint="the certificate in the token was swapped or damaged",
        )
    issuer_serial = first["issuer_serial"]
    if not isinstance(issuer_serial, core.Void):
        tbs = asn1_x509.Certificate.load(certificate_der)["tbs_certificate"]
        names = [n.chosen.dump() for n in issuer_serial["issuer"] if n.name == "directory_name"]
        if (
            issuer_serial["serial_number"].native != tbs["serial_number"].native
            or tbs["issuer"].dump() not in names
        ):
            raise VerificationError(
                "time-stamp token: the ESS issuer and serial do not match the TSA certificate"
            )


def _verify_signature(
    signer_info: Any, certificate: x509.Certificate, digest_name: str, data: bytes
) -> None:
    algorithm = signer_info["signature_algorithm"]
    name = str(algorithm["algorithm"].native)
    if name not in _SIGNATURE_SCHEMES:
        raise VerificationError(f"time-stamp token: unsupported signature algorithm {name}")
    scheme, fixed_hash = _SIGNATURE_SCHEMES[name]
    # A signature OID that names its own hash must agree with the SignerInfo digest algorithm,
    # so that the two fields cannot be changed independently.
    if fixed_hash is not None and fixed_hash != digest_name:
        raise VerificationError(
            f"time-stamp token: signature algorithm {name} disagrees with digest {digest_name}"
        )
    if scheme != "pss" and algorithm["parameters"].native is not None:
        raise VerificationError(f"time-stamp token: {name} has unexpected parameters")
    hash_algorithm = _HASHES[digest_name][0]()
    signature = bytes(signer_info["signature"].native)
    key = certificate.public_key()
    try:
        if scheme in ("rsa", "pss"):
            if not isinstance(key, rsa.RSAPublicKey):
                raise VerificationError("time-stamp token: RSA signature but the key is not RSA")
            if scheme == "rsa":
                key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
            else:
                key.verify(signature, data, _pss_padding(algorithm, digest_name), hash_algorithm)
        elif scheme == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise VerificationError("time-stamp token: ECDSA signature but the key is not EC")
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        else:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise VerificationError(
                    "time-stamp token: Ed25519 signature but the key is not Ed25519"
                )
            key.verify(signature, data)
    except InvalidSignature:
        raise VerificationError(
            "time-stamp token: the TSA signature does not verify",
            hint="the token was changed after the TSA signed it",
        ) from None


def _pss_padding(algorithm: Any, digest_name: str) -> padding.PSS:
    parameters = algorithm["parameters"]
    hash_name = str(parameters["hash_algorithm"]["algorithm"].native)
    mask = parameters["mask_gen_algorithm"]
    mask_hash = str(mask["parameters"]["algorithm"].native)
    if mask["algorithm"].native != "mgf1" or hash_name != digest_name or mask_hash != digest_name:
        raise VerificationError("time-stamp token: RSA-PSS parameters disagree with the digest")
    salt = int(parameters["salt_length"].native)
    return padding.PSS(mgf=padding.MGF1(_HASHES[digest_name][0]()), salt_length=salt)


def _check_timestamping_certificate(certificate: x509.Certificate, gen_time: datetime) -> None:
    subject = certificate.subject.rfc4514_string()
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise VerificationError(
            f"TSA certificate {subject} has no extended key usage; RFC 3161 requires timeStamping"
        ) from None
    if list(usage.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise VerificationError(
            f"TSA certificate {subject}: extended key usage must be exactly timeStamping"
        )
    if not usage.critical:
        raise VerificationError(
            f"TSA certificate {subject}: the timeStamping key usage is not marked critical"
        )
    try:
        key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        key_usage = None
    if key_usage is not None and not (key_usage.digital_signature or key_usage.content_commitment):
        raise VerificationError(f"TSA certificate {subject}: key usage forbids signatures")
    _check_validity(certificate, gen_time, "TSA certificate")


def _check_validity(certificate: x509.Certificate, when: datetime, what: str) -> None:
    if not certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc:
        raise VerificationError(
            f"{what} {certificate.subject.rfc4514_string()} was not valid at the time-stamp "
            f"time {when.isoformat()} (valid {certificate.not_valid_before_utc.isoformat()} to "
            f"{certificate.not_valid_after_utc.isoformat()})"
        )


def _trust_anchor(
    certificate: x509.Certificate, trusted: list[x509.Certificate], gen_time: datetime
) -> x509.Certificate:
    """The trusted certificate that is, or directly issued, the TSA certificate."""
    for anchor in trusted:
        if anchor == certificate:
            return anchor
    problems: list[str] = []
    for anchor in trusted:
        if anchor.subject != certificate.issuer:
            continue
        label = anchor.subject.rfc4514_string()
        try:
            constraints = anchor.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            problems.append(f"{label} is not a CA certificate")
            continue
        try:
            key_usage = anchor.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            key_usage = None
        if key_usage is not None and not key_usage.key_cert_sign:
            problems.append(f"{label} may not sign certificates")
            continue
        try:
            certificate.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            problems.append(f"{label} did not sign it")
            continue
        _check_validity(anchor, gen_time, "trusted CA certificate")
        return anchor
    detail = "; ".join(problems) if problems else "no trusted certificate is its issuer"
    raise VerificationError(
        f"TSA certificate {certificate.subject.rfc4514_string()} (issued by "
        f"{certificate.issuer.rfc4514_string()}) is not trusted: {detail}",
        hint="pass the TSA's CA certificate in trusted_certs (one level of CA is followed)",
    )


def _accuracy(tst_info: Any) -> float | None:
    accuracy = tst_info["accuracy"]
    if accuracy.native is None:
        return None
    seconds = accuracy["seconds"].native or 0
    millis = accuracy["millis"].native or 0
    micros = accuracy["micros"].native or 0
    return float(seconds) + millis / 1_000 + micros / 1_000_000


def verify_timestamp(
    token_der: bytes,
    data_digest: bytes,
    *,
    trusted_certs: Sequence[bytes],
) -> TimestampInfo:
    """Verify an RFC 3161 token offline for a SHA-256 ``data_digest``; return what it states.

    ``trusted_certs`` are PEM (one or more certificates each) or DER certificates: the TSA
    certificate itself, or the CA that issued it (one level). Raises
    :class:`VerificationError` with the first check that fails.
    """
    digest = _check_digest(data_digest, "time-stamp verification")
    trusted = _load_certificates(trusted_certs)
    token = _load_token(token_der)
    tst_info = token.tst_info
    fields = _tst_fields(tst_info)

    try:
        if tst_info["version"].native != "v1":
            raise VerificationError("time-stamp token: TSTInfo version is not 1")
        imprint = tst_info["message_imprint"]["hash_algorithm"]
        imprint_hash = _hash_name(imprint, "message imprint")
        if imprint_hash != "sha256":
            raise VerificationError(
                f"time-stamp token imprints {imprint_hash}, not the SHA-256 of the data"
            )
        if fields["digest"] != digest:
            raise VerificationError(
                "time-stamp token does not cover this data: its imprint is "
                f"{fields['digest'].hex()}, the data's SHA-256 is {digest.hex()}",
                hint="the data changed since it was time-stamped, or this is another data's token",
            )
        signed = token.signed
        if signed["version"].native != "v3":
            raise VerificationError("time-stamp token: SignedData version must be 3")
        if len(token.signer_infos) != 1:
            raise VerificationError(
                f"time-stamp token has {len(token.signer_infos)} signers, RFC 3161 requires one"
            )
        signer_info = token.signer_infos[0]
        digest_name = _hash_name(signer_info["digest_algorithm"], "SignerInfo")
        listed = [_hash_name(a, "SignedData digestAlgorithms") for a in signed["digest_algorithms"]]
        if digest_name not in listed:
            raise VerificationError(
                f"time-stamp token: digest {digest_name} is not in SignedData digestAlgorithms"
            )
        if not isinstance(signer_info["unsigned_attrs"], core.Void):
            # Nothing here reads them and the TSA signature does not cover them.
            raise VerificationError("time-stamp token carries unsigned attributes")
        raw_attributes = token.signed_attributes[0]
        attributes = _signed_attributes(raw_attributes)
        content_type = attributes.get("content_type")
        if content_type is None or content_type.native != "tst_info":
            raise VerificationError(
                "time-stamp token: the content-type attribute is missing or not id-ct-TSTInfo"
            )
        expected = _HASHES[digest_name][1](token.content).digest()
        message_digest = attributes.get("message_digest")
        if message_digest is None or message_digest.native != expected:
            raise VerificationError(
                "time-stamp token: the message-digest attribute does not match the TSTInfo",
                hint="the token's content was changed after the TSA signed it",
            )
        candidates = token.certificates + [t.public_bytes(Encoding.DER) for t in trusted]
        signer_der = _find_signer(signer_info, candidates)
        _check_ess(attributes, signer_der)
    except VerificationError:
        raise
    except _PARSE_ERRORS as exc:
        raise VerificationError(
            f"time-stamp token is malformed: {_one_line(exc)}",
            hint="the token was damaged; use the stored original",
        ) from None

    try:
        signer_certificate = x509.load_der_x509_certificate(signer_der)
    except ValueError as exc:
        raise VerificationError(
            f"time-stamp token: the TSA certificate cannot be read: {_one_line(exc)}"
        ) from None
    assert raw_attributes is not None  # _signed_attributes rejected None
    try:
        # RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF (tag 0x31),
        # not their [0] IMPLICIT encoding inside SignerInfo.
        _verify_signature(
            signer_info, signer_certificate, digest_name, b"\x31" + raw_attributes[1:]
        )
    except VerificationError:
        raise
    except _PARSE_ERRORS as exc:
        raise VerificationError(
            f"time-stamp token: the signature algorithm is malformed: {_one_line(exc)}",
            hint="the token was damaged; use the stored original",
        ) from None
    gen_time = fields["gen_time"]
    _check_timestamping_certificate(signer_certificate, gen_time)
    anchor = _trust_anchor(signer_certificate, trusted, gen_time)
    return TimestampInfo(
        **fields,
        accuracy_seconds=_accuracy(tst_info),
        signer_subject=signer_certificate.subject.rfc4514_string(),
        signer_certificate_sha256=hashlib.sha256(signer_der).hexdigest(),
        trust_anchor=anchor.subject.rfc4514_string(),
    )
