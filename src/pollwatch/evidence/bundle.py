"""Evidence bundles: a self-contained zip that anyone can verify offline.

Layout of ``bundle.zip``::

    manifest.json             format, origin, checkpoint, items, entries, SHA-256 of every file
    bundle.note               the log key's signature over the manifest's SHA-256 (signed note)
    STATEMENT.md              a human-readable account of the process, a draft for a person to sign
    checkpoint.note           the signed checkpoint (C2SP signed note) with witness cosignatures
    timestamps/<n>.tsr        RFC 3161 tokens over SHA-256 of the checkpoint body
    timestamps/<n>.pem        the certificates that came with each token
    keys/log.pub              the log's verifier key (C2SP vkey)
    keys/witnesses.txt        the witnesses' verifier keys, one per line
    entries/<index>.json      the exact log entries: each item's entry and its custody entries
    proofs/<index>.json       RFC 6962 inclusion proof of each entry in the checkpoint's tree
    items/<sha256>            the files

:func:`verify_bundle` needs only the bundle and the keys it is told to trust. It checks, in
order: the bundle signature over the manifest; every file against the manifest's hashes, none
missing and none added (so a change anywhere in the bundle is detected); the checkpoint's
signature by the log key; the witnesses' cosignatures (k of n); every time-stamp token; every
entry's leaf hash and inclusion proof against the signed root; every file against the hash and
size in its entry; that each custody entry names an item in the bundle; and that the zip is
byte for byte the canonical layout of its members (stored, name order, fixed dates), so that
even a flipped bit in zip metadata is reported. Keys taken from the
bundle itself are reported as not independently trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pollwatch import __version__
from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.archive import EvidenceArchive, now_utc
from pollwatch.evidence.checkpoint import (
    Checkpoint,
    Verifier,
    Witness,
    open_note,
    sign_note,
    verify_checkpoint,
    verify_cosigned,
)
from pollwatch.evidence.merkle import leaf_hash, verify_inclusion
from pollwatch.fileio import atomic_path

__all__ = ["BundleCheck", "BundleReport", "TrustStore", "export_bundle", "verify_bundle"]

#: What reading a damaged member can raise: a bad header or CRC, a truncated stream, a
#: compression method the zip module does not know (a flipped bit in the method field) or an
#: encryption flag; each is a failed check, never a traceback.
_UNREADABLE_MEMBER = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
)

FORMAT = "pollwatch-evidence-bundle/1"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BundleCheck:
    """One verification step and its outcome."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class BundleReport:
    """Every check run on a bundle; ``ok`` when all passed."""

    path: str
    checks: tuple[BundleCheck, ...]
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failure(self) -> BundleCheck | None:
        return next((c for c in self.checks if not c.ok), None)


@dataclass(frozen=True)
class TrustStore:
    """Keys a verifier trusts: log keys, witness keys and time-stamp authority certificates."""

    log_keys: tuple[Verifier, ...] = ()
    witness_keys: tuple[Verifier, ...] = ()
    tsa_certificates: tuple[bytes, ...] = ()

    @classmethod
    def from_file(cls, path: Path) -> TrustStore:
        """Read a trust file: C2SP verifier keys (one per line, ``#`` comments) and PEM certs.

        A key whose name is ``witness:<name>`` or that is a cosignature key is a witness key;
        other keys are log keys.
        """
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise EvidenceError(f"cannot read trust file {path} ({exc})") from None
        logs: list[Verifier] = []
        witnesses: list[Verifier] = []
        certificates: list[bytes] = []
        block: list[str] | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if block is not None:
                block.append(line)
                if line.startswith("-----END CERTIFICATE"):
                    certificates.append(("\n".join(block) + "\n").encode("ascii"))
                    block = None
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("-----BEGIN CERTIFICATE"):
                block = [line]
                continue
            kind, _, key = line.partition(" ")
            if kind in {"log", "witness"} and key:
                line = key.strip()
            else:
                kind = "log"
            try:
                verifier = Verifier.from_string(line)
            except EvidenceError as exc:
                raise EvidenceError(
                    f"trust file {path}, line {number}: {exc.message}",
                    hint="lines are 'log <vkey>', 'witness <vkey>' or PEM certificates",
                ) from None
            (witnesses if kind == "witness" else logs).append(verifier)
        if block is not None:
            raise EvidenceError(f"trust file {path}: a certificate is not closed")
        return cls(tuple(logs), tuple(witnesses), tuple(certificates))


def _entry_name(index: int) -> str:
    return f"entries/{index:012d}.json"


def export_bundle(
    archive: EvidenceArchive,
    items: Sequence[str],
    output: Path,
    *,
    actor: str,
    address: str,
    reason: str,
    timestamp_authorities: Sequence[str] = (),
    tsa_trusted_certs: Sequence[bytes] | None = None,
    witnesses: Sequence[Witness] = (),
    entries: Sequence[int] = (),
) -> BundleReport:
    """Write a bundle of ``items`` to ``output`` and return its verification report.

    The export is itself recorded first (one ``export`` custody entry per item), then a
    checkpoint covering those entries is signed (and time-stamped by the given authorities) and
    cosigned by the given ``witnesses``, so the bundle proves its own custody. Written to a
    temporary file, verified, then renamed.

    What can be checked before the export is logged is checked first (every item's object is
    in the store with its size, the output's folder takes a new file), so a refused export
    logs nothing and signs nothing. A failure after that (a full disk, an object damaged in
    storage, a witness that refuses) is logged too: one ``export-failed`` custody entry per
    item, with the reason, before the error is raised.

    ``entries`` names further log entries (by index) to prove in the bundle beside the items'
    own, e.g. the recorder events (outages, gaps) of an exported stretch of video; they must be
    entries of kinds other than ``item`` and ``custody``, which follow from ``items``.
    """
    if not items:
        raise EvidenceError("no items to export", hint="name one or more item hashes")
    records = [archive.item(s) for s in items]
    shas = list(dict.fromkeys(r.sha256 for r in records))
    output = Path(output)
    for record in {r.sha256: r for r in records}.values():
        _check_object(archive, record, output)
    with contextlib.ExitStack() as writing:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            # the temporary file beside the output is made first: a folder that cannot take it
            # is refused before anything is logged
            partial = writing.enter_context(atomic_path(output))
        except OSError as error:
            raise EvidenceError(
                f"cannot write the bundle {output}: {error.strerror or error}; nothing was "
                "exported, logged or signed",
                hint="choose an output path in a writable folder",
            ) from None
        logged = False
        try:
            archive.record_custody(
                "export",
                shas,
                actor=actor,
                address=address,
                reason=reason,
                details={"bundle": output.name},
            )
            logged = True
            report = _export(
                archive,
                records,
                shas,
                output,
                partial,
                timestamp_authorities=timestamp_authorities,
                tsa_trusted_certs=tsa_trusted_certs,
                witnesses=witnesses,
                entries=entries,
            )
            writing.close()  # the verified bundle replaces the output (fsync'd)
            return report
        except BaseException as error:
            if logged:
                _record_failure(archive, shas, output, error, actor=actor, address=address)
            if isinstance(error, OSError):
                raise EvidenceError(
                    f"cannot write the bundle {output}: {error.strerror or error}; the export "
                    "was logged, and so was its failure",
                    hint="free disk space or choose another output path, then export again",
                ) from None
            raise


def _check_object(archive: EvidenceArchive, record: Any, output: Path) -> None:
    """Refuse, before anything is logged, an item whose object is missing or has another size."""
    try:
        info = archive.objects.stat(record.sha256)
    except EvidenceError:
        raise EvidenceError(
            f"cannot export {output.name}: item {record.sha256} (entry {record.index}) has no "
            "object in the store; nothing was exported, logged or signed",
            hint="run 'pollwatch evidence fsck', and restore the object from a replica or an "
            "evidence bundle",
        ) from None
    if info.size != record.size:
        raise VerificationError(
            f"cannot export {output.name}: object {record.sha256} has {info.size} bytes, its "
            f"entry {record.index} says {record.size}; nothing was exported, logged or signed",
            hint="run 'pollwatch evidence verify', and restore the object from a replica",
        )


def _record_failure(
    archive: EvidenceArchive,
    shas: Sequence[str],
    output: Path,
    error: BaseException,
    *,
    actor: str,
    address: str,
) -> None:
    """Log that a logged export produced no bundle (best effort: the error is raised anyway)."""
    why = error.one_line() if isinstance(error, EvidenceError) else repr(error)
    with contextlib.suppress(Exception):
        archive.record_custody(
            "export-failed",
            shas,
            actor=actor,
            address=address,
            reason=f"no bundle was written: {why}",
            details={"bundle": output.name},
        )


def _export(
    archive: EvidenceArchive,
    records: Sequence[Any],
    shas: Sequence[str],
    output: Path,
    partial: Path,
    *,
    timestamp_authorities: Sequence[str],
    tsa_trusted_certs: Sequence[bytes] | None,
    witnesses: Sequence[Witness],
    entries: Sequence[int],
) -> BundleReport:
    """Sign, prove and write to ``partial`` the bundle of an export that is logged already."""
    stored = archive.sign_checkpoint(
        timestamp_authorities=timestamp_authorities, tsa_trusted_certs=tsa_trusted_certs
    )
    for witness in witnesses:
        stored = archive.witness(witness, size=stored.checkpoint.size)
    size = stored.checkpoint.size
    wanted = set(shas)
    further = set(entries)
    proven: list[tuple[int, bytes]] = []
    for index in range(size):
        raw = archive.log.entry(index)
        entry = json.loads(raw)
        if (
            (entry["kind"] == "item" and entry["sha256"] in wanted)
            or (entry["kind"] == "custody" and entry["item"] in wanted)
            or (index in further and entry["kind"] not in ("item", "custody"))
        ):
            proven.append((index, raw))
    witness_lines = [line for line in stored.note.splitlines() if line.startswith("\u2014 ")]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created": now_utc(),
        "pollwatch_version": __version__,
        "origin": archive.origin,
        "checkpoint": {"size": size, "root_hash": stored.checkpoint.root_hash.hex()},
        "items": [
            {
                "sha256": r.sha256,
                "size": r.size,
                "filename": r.filename,
                "media_type": r.media_type,
                "entry": r.index,
                "path": f"items/{r.sha256}",
            }
            for r in {r.sha256: r for r in records}.values()
        ],
        "entries": [
            {
                "index": index,
                "path": _entry_name(index),
                "leaf_hash": leaf_hash(raw).hex(),
                "proof": f"proofs/{index:012d}.json",
            }
            for index, raw in proven
        ],
        "timestamps": [
            {"token": f"timestamps/{n}.tsr", "certificates": f"timestamps/{n}.pem"}
            for n in range(len(stored.timestamps))
        ],
        "signatures": len(witness_lines),
    }
    small: dict[str, bytes] = {
        "checkpoint.note": stored.note.encode("utf-8"),
        "keys/log.pub": (archive.verifier.to_string() + "\n").encode("utf-8"),
        "keys/witnesses.txt": _witness_keys_text(archive).encode("utf-8"),
        "STATEMENT.md": _statement(archive, manifest, records, stored.note).encode("utf-8"),
    }
    for n, (token, certificates) in enumerate(stored.timestamps):
        small[f"timestamps/{n}.tsr"] = token
        small[f"timestamps/{n}.pem"] = certificates
    for index, raw in proven:
        small[_entry_name(index)] = raw
        proof = archive.inclusion_proof(index, size)
        small[f"proofs/{index:012d}.json"] = json.dumps(
            {"index": index, "size": size, "hashes": [h.hex() for h in proof]}, indent=1
        ).encode("utf-8")
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in small.items()}
    digests.update({f"items/{sha}": sha for sha in shas})
    manifest["files"] = dict(sorted(digests.items()))
    small["manifest.json"] = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
    manifest_digest = hashlib.sha256(small["manifest.json"]).hexdigest()
    body = f"{FORMAT}\n{archive.origin}\nmanifest {manifest_digest}\n"
    small["bundle.note"] = sign_note(body, archive.signer()).encode("utf-8")

    def member(name: str) -> IO[bytes]:
        if name.startswith("items/"):
            return archive.objects.open(name.removeprefix("items/"))
        return io.BytesIO(small[name])

    _write_canonical(partial, [*small, *(f"items/{sha}" for sha in shas)], member)
    report = verify_bundle(partial, TrustStore(log_keys=(archive.verifier,)))
    if not report.ok:
        failure = report.failure
        assert failure is not None
        raise VerificationError(
            f"the bundle written does not verify: {failure.name}: {failure.detail}",
            hint="the archive may be damaged; run 'pollwatch evidence verify'",
        )
    return BundleReport(path=str(output), checks=report.checks, warnings=report.warnings)


def _write_canonical(path: Path, names: Iterable[str], member: Callable[[str], IO[bytes]]) -> None:
    """Write members in name order, stored (not compressed), with fixed dates and modes.

    The layout is a function of the members' names and bytes alone, so a verifier can rebuild
    it and compare byte for byte: a change anywhere in the file, even in zip metadata that holds
    no evidence, is detected.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name in sorted(names):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o444 << 16
            info.create_system = 3
            with member(name) as source, bundle.open(info, "w", force_zip64=True) as target:
                while chunk := source.read(_CHUNK):
                    target.write(chunk)


def _witness_keys_text(archive: EvidenceArchive) -> str:
    path = archive.folder / "keys" / "witnesses.txt"
    return path.read_text("utf-8") if path.is_file() else ""


def _statement(
    archive: EvidenceArchive, manifest: dict[str, Any], records: Sequence[Any], note: str
) -> str:
    lines = [
        "# Statement on the records in this bundle (draft for a person to review and sign)",
        "",
        "This draft describes how the records in this bundle were kept, in the manner of a",
        "certification of records generated by an electronic process or system (compare US",
        "Federal Rules of Evidence 902(13) and 902(14)). It is not a certification until a",
        "qualified person who knows the process reviews it, completes it and signs it.",
        "",
        "## The process",
        "",
        f"1. Each file was stored by pollwatch {manifest['pollwatch_version']} under its SHA-256",
        "   digest, computed while the file was received, and was never modified afterwards.",
        "2. When a file was received, an entry with its digest, size, media type, submitter,",
        "   stated capture time and clock source, and the archive's receipt time was appended",
        f"   to an append-only Merkle log named `{archive.origin}` (RFC 6962 hashing).",
        "3. Every access, export, redaction or analysis of a file was appended to the same",
        "   log as a custody entry (who, when, from where, why).",
        f"4. The log's state at {manifest['checkpoint']['size']} entries was signed with the",
        "   log's Ed25519 key (checkpoint.note), cosigned by the witnesses listed there, and",
        f"   time-stamped by {len(manifest['timestamps'])} RFC 3161 authorities.",
        "5. For each entry, the bundle holds a proof that it is included in that signed log",
        "   state; for each file, its digest matches its entry.",
        "",
        "Anyone can check points 4 and 5 offline: `pollwatch evidence verify bundle.zip",
        "--trust KEYS`, with keys obtained independently of this bundle.",
        "",
        "## The files",
        "",
        "| SHA-256 | size | name | media type | received | submitter |",
        "|---|---:|---|---|---|---|",
    ]
    for record in {r.sha256: r for r in records}.values():
        lines.append(
            f"| `{record.sha256}` | {record.size:,} | {record.filename} | {record.media_type} "
            f"| {record.ingest_time} | {record.submitter} |"
        )
    lines += [
        "",
        "## Signed checkpoint",
        "",
        "```",
        note.rstrip("\n"),
        "```",
        "",
        "## Certification (to be completed)",
        "",
        "I, ____________________, certify that I am qualified by my position with",
        "____________________ to describe the process above, that the records were made and",
        "kept in the course of that regularly conducted activity, and that the process",
        "produces accurate results.",
        "",
        "Signature: ____________________   Date: __________   Place: ____________________",
        "",
    ]
    return "\n".join(lines)


# --- verification ---------------------------------------------------------------------------


class _Failed(Exception):
    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name = name
        self.detail = detail


def verify_bundle(
    path: Path,
    trust: TrustStore | None = None,
    *,
    required_witnesses: int = 0,
) -> BundleReport:
    """Verify a bundle offline; the report lists each check (the first failure stops it).

    Without trusted log keys the bundle's own key is used and a warning says so; with
    ``required_witnesses`` k, at least k trusted witness cosignatures must verify.
    """
    trust = trust or TrustStore()
    checks: list[BundleCheck] = []
    warnings: list[str] = []

    def passed(name: str, detail: str) -> None:
        checks.append(BundleCheck(name, True, detail))

    try:
        _verify(Path(path), trust, required_witnesses, passed, warnings)
    except _Failed as failure:
        checks.append(BundleCheck(failure.name, False, failure.detail))
    return BundleReport(path=str(path), checks=tuple(checks), warnings=tuple(warnings))


def _verify(
    path: Path,
    trust: TrustStore,
    required_witnesses: int,
    passed: Any,
    warnings: list[str],
) -> None:
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise _Failed("bundle", f"{path} is not a readable zip file ({exc})") from None
    with bundle:
        names = {info.filename for info in bundle.infolist() if not info.is_dir()}
        if len(names) != len([i for i in bundle.infolist() if not i.is_dir()]):
            raise _Failed("bundle", "the zip holds two members with the same name")

        def read(name: str) -> bytes:
            if name not in names:
                raise _Failed("contents", f"{name} is missing")
            try:
                return bundle.read(name)
            except _UNREADABLE_MEMBER as exc:
                raise _Failed("contents", f"{name} cannot be read ({exc})") from None

        bundled_key = _bundled_key(read)
        log_keys = list(trust.log_keys)
        if not log_keys:
            log_keys = [bundled_key]
            warnings.append(
                "the log key was taken from the bundle itself, so this shows the bundle is "
                "internally consistent, not who made it: pass --trust with the log key "
                "obtained independently"
            )
        manifest_bytes = read("manifest.json")
        try:
            signed = open_note(read("bundle.note").decode("utf-8", errors="replace"), log_keys)
        except (VerificationError, EvidenceError) as exc:
            raise _Failed("bundle signature", exc.one_line()) from None
        digest = hashlib.sha256(manifest_bytes).hexdigest()
        if f"manifest {digest}" not in signed.text.splitlines():
            raise _Failed(
                "bundle signature",
                f"manifest.json (SHA-256 {digest[:16]}...) is not the one signed",
            )
        passed("bundle signature", f"manifest signed by {log_keys[0].key_label}")
        try:
            manifest = json.loads(manifest_bytes)
            if manifest.get("format") != FORMAT:
                raise _Failed("manifest", f"unknown format {manifest.get('format')!r}")
            origin = str(manifest["origin"])
            size = int(manifest["checkpoint"]["size"])
            root = bytes.fromhex(manifest["checkpoint"]["root_hash"])
            items = list(manifest["items"])
            entries = list(manifest["entries"])
            timestamps = list(manifest["timestamps"])
            files = dict(manifest["files"])
        except (ValueError, KeyError, TypeError) as exc:
            raise _Failed("manifest", f"manifest.json is damaged ({exc})") from None
        passed("manifest", f"{len(items)} items, {len(entries)} log entries, origin {origin}")

        expected = set(files) | {"manifest.json", "bundle.note"}
        missing = sorted(expected - names)
        extra = sorted(names - expected)
        if missing:
            raise _Failed("contents", f"missing from the bundle: {', '.join(missing[:5])}")
        if extra:
            raise _Failed("contents", f"unexpected files in the bundle: {', '.join(extra[:5])}")
        for name, wanted in files.items():
            if _member_sha256(bundle, name) != wanted:
                raise _Failed("contents", f"{name} does not match its SHA-256 in the manifest")
        passed("contents", f"{len(names)} files match the signed manifest, none added")

        note = read("checkpoint.note").decode("utf-8", errors="replace")
        try:
            checkpoint = verify_checkpoint(note, log_keys, origin=origin)
        except (VerificationError, EvidenceError) as exc:
            raise _Failed("checkpoint signature", exc.one_line()) from None
        if checkpoint.size != size or checkpoint.root_hash != root:
            raise _Failed(
                "checkpoint signature",
                f"manifest says size {size} root {root.hex()[:16]}..., the signed checkpoint "
                f"says size {checkpoint.size} root {checkpoint.root_hash.hex()[:16]}...",
            )
        passed("checkpoint signature", f"{origin} size {size} signed by {log_keys[0].key_label}")

        witness_keys = list(trust.witness_keys)
        if not witness_keys:
            text = read("keys/witnesses.txt").decode("utf-8", errors="replace")
            witness_keys = [Verifier.from_string(x.strip()) for x in text.splitlines() if x.strip()]
            if witness_keys and required_witnesses:
                warnings.append("witness keys were taken from the bundle itself")
        if required_witnesses:
            try:
                verify_cosigned(
                    note,
                    log_keys,
                    witness_keys,
                    required_witnesses=required_witnesses,
                    origin=origin,
                )
            except (VerificationError, EvidenceError) as exc:
                raise _Failed("witness cosignatures", exc.one_line()) from None
            passed("witness cosignatures", f"at least {required_witnesses} valid")

        _verify_timestamps(read, checkpoint, timestamps, trust, passed, warnings)

        leaves: dict[int, dict[str, Any]] = {}
        for record in entries:
            index = int(record["index"])
            raw = read(record["path"])
            leaf = leaf_hash(raw)
            if leaf.hex() != record["leaf_hash"]:
                raise _Failed("log entries", f"entry {index} does not match its leaf hash")
            try:
                proof_data = json.loads(read(record["proof"]))
                proof = [bytes.fromhex(h) for h in proof_data["hashes"]]
                if int(proof_data["index"]) != index or int(proof_data["size"]) != size:
                    raise _Failed("inclusion proofs", f"proof of entry {index} is for another tree")
                verify_inclusion(leaf, index, size, proof, checkpoint.root_hash)
                leaves[index] = json.loads(raw)
            except VerificationError as exc:
                raise _Failed("inclusion proofs", f"entry {index}: {exc.one_line()}") from None
            except (ValueError, KeyError, TypeError) as exc:
                raise _Failed("inclusion proofs", f"entry {index}: damaged ({exc})") from None
        passed("inclusion proofs", f"{len(entries)} entries included in the signed tree")

        for item in items:
            entry = leaves.get(int(item["entry"]))
            if (
                entry is None
                or entry.get("kind") != "item"
                or entry.get("sha256") != item["sha256"]
            ):
                raise _Failed("files", f"item {item['sha256'][:16]}... has no proven item entry")
            # The contents check has hashed every member against the manifest already.
            actual = files.get(item["path"])
            length = bundle.getinfo(item["path"]).file_size
            if actual != entry["sha256"] or length != entry["size"]:
                raise _Failed(
                    "files",
                    f"{item['path']} has SHA-256 {str(actual)[:16]}... and {length} bytes; "
                    f"its log entry says {entry['sha256'][:16]}... and {entry['size']} bytes",
                )
        passed("files", f"{len(items)} files match the hashes in their log entries")

        shas = {item["sha256"] for item in items}
        custody = [e for e in leaves.values() if e.get("kind") == "custody"]
        strays = [e for e in custody if e.get("item") not in shas]
        if strays:
            raise _Failed("custody", "a custody entry names an item not in the bundle")
        exports = [e for e in custody if e.get("action") == "export"]
        if not exports:
            raise _Failed("custody", "the bundle does not record its own export")
        passed("custody", f"{len(custody)} custody entries, all about items in the bundle")

        with tempfile.TemporaryDirectory() as scratch:
            rebuilt = Path(scratch) / "rebuilt.zip"
            _write_canonical(rebuilt, names, bundle.open)
            if _file_sha256(rebuilt) != _file_sha256(path):
                raise _Failed(
                    "layout",
                    "the zip's bytes differ from the canonical layout of its own files: "
                    "something outside the files was changed",
                )
        passed("layout", "the zip is byte for byte the canonical layout of its files")


def _bundled_key(read: Any) -> Verifier:
    try:
        return Verifier.from_string(read("keys/log.pub").decode("utf-8").strip())
    except UnicodeDecodeError:
        raise _Failed("bundle signature", "keys/log.pub is not UTF-8 text: damaged") from None
    except EvidenceError as exc:
        raise _Failed("bundle signature", f"keys/log.pub: {exc.one_line()}") from None


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _member_sha256(bundle: zipfile.ZipFile, name: str) -> str:
    digest = hashlib.sha256()
    try:
        with bundle.open(name) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except _UNREADABLE_MEMBER as exc:
        raise _Failed("contents", f"{name} cannot be read ({exc})") from None
    return digest.hexdigest()


def _verify_timestamps(
    read: Any,
    checkpoint: Checkpoint,
    timestamps: list[dict[str, str]],
    trust: TrustStore,
    passed: Any,
    warnings: list[str],
) -> None:
    if not timestamps:
        warnings.append("the checkpoint carries no RFC 3161 time-stamp")
        return
    from pollwatch.evidence.timestamp import verify_timestamp

    digest = hashlib.sha256(checkpoint.body().encode("utf-8")).digest()
    for number, stamp in enumerate(timestamps):
        certificates = list(trust.tsa_certificates)
        if not certificates:
            bundled = read(stamp["certificates"])
            certificates = [bundled] if bundled else []
            warnings.append(
                f"time-stamp {number}: the TSA certificate was taken from the bundle itself"
            )
        try:
            info = verify_timestamp(read(stamp["token"]), digest, trusted_certs=certificates)
        except (VerificationError, EvidenceError) as exc:
            raise _Failed("timestamps", f"time-stamp {number}: {exc.one_line()}") from None
        passed(
            "timestamps",
            f"time-stamp {number}: {info.gen_time.isoformat()} by {info.signer_subject}",
        )
