"""A real local RFC 3161 time-stamp authority for tests: OpenSSL ``ts -reply`` behind HTTP.

:func:`local_tsa` makes a throwaway PKI in a folder (a CA and a TSA certificate whose only
extended key usage is a critical ``timeStamping``, RFC 3161 §2.3), writes an ``openssl ts``
configuration, and serves ``http://127.0.0.1:<port>/`` from a thread. Each POST body is written to
a file and answered by ``openssl ts -reply -queryfile ... -config ...``, with media type
``application/timestamp-reply``. Paths:

* ``/tsr``: the TSA (default policy ``1.2.3.4.1``; accepts sha256, sha384, sha512 imprints).
* ``/sha512-only``: the same TSA configured for sha512 imprints only, so it refuses SHA-256.
* ``/garbage``: answers 200 with text that is not a time-stamp response.
* ``/broken``: answers HTTP 500.
* ``/slow``: waits 3 s before answering (for client time-outs).

Anything else is 404. Needs the ``openssl`` command (1.1 or 3.x); :func:`openssl_path` returns
None when it is missing so that fixtures can skip with a reason (CI installs it with apt).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["POLICY", "LocalTSA", "TestCA", "local_tsa", "make_ca", "make_leaf", "openssl_path"]

#: The default policy OID of the local TSA (an arbitrary test OID).
POLICY = "1.2.3.4.1"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def openssl_path() -> str | None:
    """The ``openssl`` command (``POLLWATCH_OPENSSL`` names another one), or None if absent."""
    return shutil.which(os.environ.get("POLLWATCH_OPENSSL") or "openssl")


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r}")


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """A KeyUsage extension value with only the ``allowed`` usages set."""
    unknown = set(allowed) - set(_KEY_USAGES)
    assert not unknown, f"not key usages: {sorted(unknown)}"
    return x509.KeyUsage(**{usage: usage in allowed for usage in _KEY_USAGES})


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class TestCA:
    """A certificate authority made for a test: its key, certificate and PEM."""

    __test__ = False  # not a pytest test class despite its name

    key: PrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        """The CA certificate in PEM."""
        return _pem(self.certificate)


def make_ca(common_name: str, *, key_type: str = "rsa") -> TestCA:
    """A self-signed CA certificate valid from yesterday for 30 days."""
    key = _new_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage("key_cert_sign", "crl_sign"),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TestCA(key, certificate)


def make_leaf(
    ca: TestCA,
    common_name: str,
    *,
    key_type: str = "rsa",
    usages: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.TIME_STAMPING,),
    usage_critical: bool = True,
    valid_days: tuple[int, int] = (-1, 30),
) -> tuple[PrivateKey, x509.Certificate]:
    """A certificate issued by ``ca``; by default a TSA certificate as RFC 3161 §2.3 wants."""
    key = _new_key(key_type)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=valid_days[0]))
        .not_valid_after(now + dt.timedelta(days=valid_days[1]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage("digital_signature", "content_commitment"),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if usages:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(usages)), critical=usage_critical
        )
    return key, builder.sign(ca.key, hashes.SHA256())


@dataclass(frozen=True)
class LocalTSA:
    """A running local TSA: its URLs, its CA (to trust) and the files OpenSSL uses."""

    base_url: str
    directory: Path
    ca: TestCA
    ca_cert_path: Path
    tsa_cert_path: Path
    openssl: str

    @property
    def url(self) -> str:
        """The URL of the working TSA."""
        return self.base_url + "/tsr"

    @property
    def ca_cert_pem(self) -> bytes:
        """The CA certificate that issued the TSA certificate, in PEM."""
        return self.ca.pem

    def path_url(self, path: str) -> str:
        """The URL of another path of the server (``/sha512-only``, ``/garbage``, ...)."""
        return self.base_url + path


_SECTION = """
[ {name} ]
serial = {serial}
crypto_device = builtin
signer_cert = {cert}
signer_key = {key}
signer_digest = sha256
default_policy = {policy}
other_policies = 1.2.3.4.5
digests = {digests}
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 0
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = {ess_alg}
"""


def _write_config(folder: Path, ess_alg: str) -> Path:
    common = {
        "serial": folder / "serial",
        "cert": folder / "tsa.pem",
        "key": folder / "tsa.key",
        "policy": POLICY,
        "ess_alg": ess_alg,
    }
    text = "[ tsa ]\ndefault_tsa = tsa_main\n"
    text += _SECTION.format(name="tsa_main", digests="sha256, sha384, sha512", **common)
    text += _SECTION.format(name="tsa_sha512_only", digests="sha512", **common)
    config = folder / "ts.cnf"
    config.write_text(text, encoding="utf-8")
    (folder / "serial").write_text("01\n", encoding="ascii")
    return config


def _handler(folder: Path, config: Path, openssl: str) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()  # openssl ts -reply rewrites the serial file: one at a time
    sections = {"/tsr": "tsa_main", "/sha512-only": "tsa_sha512_only"}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

        def _send(self, status: int, media_type: str, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the /slow time-out test does)

        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/garbage":
                self._send(200, "text/plain", b"this is not a time-stamp response\n")
                return
            if self.path == "/broken":
                self._send(500, "text/plain", b"internal error\n")
                return
            if self.path == "/slow":
                time.sleep(3)
                self._send(500, "text/plain", b"too late\n")
                return
            section = sections.get(self.path)
            if section is None:
                self._send(404, "text/plain", b"not found\n")
                return
            with lock, tempfile.TemporaryDirectory(dir=folder) as work:
                query_file, reply_file = Path(work) / "q.tsq", Path(work) / "r.tsr"
                query_file.write_bytes(query)
                command = [openssl, "ts", "-reply", "-config", str(config), "-section", section]
                command += ["-queryfile", str(query_file), "-out", str(reply_file)]
                done = subprocess.run(command, capture_output=True, timeout=30, check=False)
                if done.returncode != 0 or not reply_file.exists():
                    self._send(500, "text/plain", done.stderr[-2000:])
                    return
                self._send(200, "application/timestamp-reply", reply_file.read_bytes())

    return Handler


@contextmanager
def local_tsa(
    directory: Path, *, key_type: str = "rsa", ess_cert_id_alg: str = "sha256"
) -> Iterator[LocalTSA]:
    """Start a local TSA with a fresh PKI in ``directory``; stop it on exit.

    ``key_type`` is ``"rsa"`` (2048-bit) or ``"ec"`` (P-256) for both keys; ``ess_cert_id_alg``
    ``"sha1"`` makes OpenSSL write the ESS signingCertificate (v1) attribute, others v2.
    Raises RuntimeError when ``openssl`` is missing (fixtures check :func:`openssl_path` first).
    """
    openssl = openssl_path()
    if openssl is None:
        raise RuntimeError("the openssl command is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca("pollwatch test CA", key_type=key_type)
    key, certificate = make_leaf(ca, "pollwatch test TSA", key_type=key_type)
    ca_path, tsa_path = directory / "ca.pem", directory / "tsa.pem"
    ca_path.write_bytes(ca.pem)
    tsa_path.write_bytes(_pem(certificate))
    key_path = directory / "tsa.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    config = _write_config(directory, ess_cert_id_alg)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(directory, config, openssl))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="local-tsa", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield LocalTSA(
            base_url=f"http://{host!s}:{port}",
            directory=directory,
            ca=ca,
            ca_cert_path=ca_path,
            tsa_cert_path=tsa_path,
            openssl=openssl,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
