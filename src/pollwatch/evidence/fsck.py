"""Checking an evidence archive for damage and crash leftovers; quarantining the leftovers.

:func:`fsck` reads an archive folder and changes nothing. It reports:

* **damage** (``kind="damage"``): the log holds fewer entries than its latest checkpoint
  signed (the missing range), an entry whose bytes do not hash to its leaf hash (its index, its
  offset, the hash it should have), a root that differs from a signed checkpoint's, a
  checkpoint whose signature fails, an item whose object is missing or has another size, a
  data file that is not a log. The log refuses to be used while any of these stand.
* **leftovers** (``kind="leftover"``) of crashes: a torn, never acknowledged tail of the log,
  a partial index entry, intact records never indexed, an index that must be rebuilt,
  ``*.part`` files (``objects/.incoming``, atomic writes of checkpoints and time-stamps),
  ``.staging-*`` and ``.trash-*`` folders, objects no item entry names (a crash between
  storing a file and logging it), empty or stray folders in the object store.
* **notes** (``kind="note"``): entries after the latest checkpoint (acknowledged, not signed
  yet), what recovery set aside in ``log/discarded/`` earlier, earlier quarantines, leftovers
  younger than ``min_age`` (they may belong to a command still running: left alone), and
  pollwatch's stale folders in the system's temporary folder (uploads, blurring jobs), which
  are outside the archive and never moved.

:func:`repair` quarantines the leftovers: it refuses while there is damage (damage inside the
signed range needs a person with a backup, a bundle or the witnesses' copies), lets the log's
own recovery take care of the log's leftovers, appends a ``maintenance`` entry that lists
every path it will move, where to and why (with sizes and SHA-256), signs a checkpoint over
that entry, and only then moves the files into ``quarantine/<time>-<id>/`` under the archive,
keeping their relative paths. Nothing is ever deleted.

It may import ``pollwatch.errors`` and the rest of :mod:`pollwatch.evidence`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pollwatch.errors import EvidenceError, VerificationError
from pollwatch.evidence.checkpoint import Checkpoint, Verifier, verify_checkpoint
from pollwatch.evidence.log import (
    LogInspection,
    inspect_log,
    missing_entries_error,
)
from pollwatch.evidence.merkle import MerkleTree
from pollwatch.fileio import fsync_directory

__all__ = ["Finding", "FsckReport", "RepairResult", "fsck", "repair"]

MIN_AGE = 3600.0
"""Seconds a leftover must be old before it is quarantined: younger ones may be in use."""
QUARANTINE = "quarantine"
"""The folder under the archive that receives quarantined leftovers."""
LISTED_DAMAGE = 20
"""Damaged entries listed one by one; the rest are counted."""

_STANDARD_FOLDERS = {"checkpoints", "timestamps", "keys", "objects", "log", "log/discarded"}
TEMP_PREFIXES = ("pollwatch-upload-", "pollwatch-blur-")
"""Folders pollwatch makes in the system's temporary folder (uploads, blurring) and removes
when done; one that outlives its command was left by a crash."""

Kind = Literal["damage", "leftover", "note"]


@dataclass(frozen=True)
class Finding:
    """One thing fsck found: damage, a crash leftover, or a note."""

    kind: Kind
    what: str
    """A short code: ``missing-entries``, ``entry``, ``root``, ``checkpoint``, ``object``,
    ``data``, ``torn-tail``, ``partial-index``, ``unindexed-records``, ``index``, ``part-file``,
    ``staging``, ``orphan-object``, ``empty-folder``, ``stray``, ``unsigned-entries``,
    ``discarded``, ``quarantined``, ``recent``, ``unnamed-object``, ``temp-folder``,
    ``no-checkpoint``."""
    detail: str
    """One line for a person: what, where, and what to do."""
    path: str | None = None
    """The file or folder, relative to the archive folder."""
    entry: int | None = None
    """The log entry concerned."""
    expected_leaf: str | None = None
    """For a damaged entry: the leaf hash it should have (hex)."""
    size: int | None = None
    """Bytes of the file, or of the torn tail."""
    signed: bool = False
    """For damage: whether it lies inside the range a signed checkpoint covers."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class FsckReport:
    """Everything :func:`fsck` found in one archive."""

    folder: str
    entries: int
    """Entries the log holds as it reads now."""
    checkpoint_size: int | None
    """Size of the latest checkpoint whose signature verifies (None when there is none)."""
    findings: tuple[Finding, ...]

    @property
    def damaged(self) -> bool:
        return any(f.kind == "damage" for f in self.findings)

    @property
    def damage(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == "damage")

    @property
    def leftovers(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == "leftover")

    @property
    def notes(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == "note")

    @property
    def clean(self) -> bool:
        """No damage and no leftovers (notes are fine)."""
        return not self.damage and not self.leftovers

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "entries": self.entries,
            "checkpoint_size": self.checkpoint_size,
            "damaged": self.damaged,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair` did, and the archive's report afterwards."""

    statement_entry: int | None
    """Index of the ``maintenance`` entry that lists the moves (None: nothing to do)."""
    checkpoint_size: int | None
    """Size of the checkpoint signed over that entry."""
    quarantine: str | None
    """The folder the leftovers went to, relative to the archive."""
    moved: tuple[dict[str, Any], ...]
    recovery: dict[str, Any] = field(default_factory=dict)
    """What the log's own recovery did when the archive was opened (empty when nothing)."""
    after: FsckReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "statement_entry": self.statement_entry,
            "checkpoint_size": self.checkpoint_size,
            "quarantine": self.quarantine,
            "moved": list(self.moved),
            "recovery": self.recovery,
            "after": self.after.to_dict() if self.after else None,
        }


# --------------------------------------------------------------------------------------------
# Checking.
# --------------------------------------------------------------------------------------------


def fsck(
    folder: Path | str,
    *,
    min_age: float = MIN_AGE,
    now: float | None = None,
    temp_folder: Path | str | None = None,
) -> FsckReport:
    """Check the archive in ``folder`` for damage and crash leftovers; changes nothing.

    Leftovers modified less than ``min_age`` seconds before ``now`` (default: the current
    time) are reported as notes: a running command may still be writing them. pollwatch's own
    stale folders in ``temp_folder`` (default: the system's, :data:`TEMP_PREFIXES`) are
    reported as notes too.
    """
    folder = Path(folder)
    if not (folder / "archive.json").is_file():
        raise EvidenceError(
            f"no evidence archive in {folder}", hint="create one with 'pollwatch evidence init'"
        )
    moment = time.time() if now is None else now
    findings: list[Finding] = []
    verifier = _verifier(folder)
    checkpoints = _checkpoints(folder, verifier, findings)
    latest = checkpoints[-1] if checkpoints else None
    items: dict[str, list[tuple[int, int]]] = {}

    def visit(index: int, payload: bytes) -> None:
        if b'"kind":"item"' not in payload:  # canonical JSON: parse item entries only
            return
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            entry = json.loads(payload)
            if entry.get("kind") == "item":
                items.setdefault(str(entry["sha256"]), []).append((index, int(entry["size"])))

    inspection = inspect_log(folder / "log", visit)
    findings += _log_findings(folder, inspection, checkpoints)
    unreadable = bool(inspection.damaged) or inspection.missing_from is not None
    findings += _object_findings(folder, items, moment, min_age, unreadable)
    findings += _stray_findings(folder, moment, min_age)
    findings += _temp_findings(
        Path(tempfile.gettempdir() if temp_folder is None else temp_folder), moment, min_age
    )
    if latest is None:
        findings.append(
            Finding(
                "note",
                "no-checkpoint",
                "the archive has no checkpoint yet: nothing binds its log "
                "(run 'pollwatch evidence checkpoint')",
            )
        )
    return FsckReport(
        folder=str(folder),
        entries=inspection.entries + inspection.unindexed_records,
        checkpoint_size=latest.size if latest else None,
        findings=tuple(findings),
    )


def _verifier(folder: Path) -> Verifier:
    path = folder / "keys" / "log.pub"
    try:
        return Verifier.from_string(path.read_text("utf-8").strip())
    except (OSError, UnicodeDecodeError) as error:
        raise EvidenceError(
            f"cannot read the log's verifier key {path} ({error})",
            hint="fsck needs keys/log.pub to check the checkpoints; restore it from a backup "
            "or from what witnesses hold",
        ) from None


def _checkpoints(folder: Path, verifier: Verifier, findings: list[Finding]) -> list[Checkpoint]:
    """The stored checkpoints whose signature verifies, ascending; the others become damage."""
    good = []
    notes = folder / "checkpoints"
    paths = sorted(notes.glob("*.note"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
    for path in paths:
        relative = str(path.relative_to(folder))
        try:
            checkpoint = verify_checkpoint(path.read_text("utf-8"), verifier)
        except (OSError, UnicodeDecodeError, EvidenceError) as error:
            detail = error.one_line() if isinstance(error, EvidenceError) else str(error)
            findings.append(
                Finding("damage", "checkpoint", f"{relative} does not verify: {detail}", relative)
            )
            continue
        if str(checkpoint.size) != path.stem:
            findings.append(
                Finding(
                    "damage",
                    "checkpoint",
                    f"{relative} is signed for size {checkpoint.size}, not {path.stem}",
                    relative,
                )
            )
            continue
        good.append(checkpoint)
    return good


def _log_findings(
    folder: Path, inspection: LogInspection, checkpoints: Sequence[Checkpoint]
) -> list[Finding]:
    found: list[Finding] = []
    log = folder / "log"
    data = "log/entries.bin"
    if inspection.data_problem is not None:
        found.append(
            Finding("damage", "data", f"{inspection.data_problem}: the log cannot be read", data)
        )
        return found
    signed = checkpoints[-1].size if checkpoints else 0
    present = inspection.entries
    if present < signed:
        error = missing_entries_error(log, present, signed)
        found.append(
            Finding("damage", "missing-entries", error.message, data, present, signed=True)
        )
    tree = MerkleTree(inspection.leaves)
    data_tree = (
        tree if inspection.data_leaves == inspection.leaves else MerkleTree(inspection.data_leaves)
    )
    index_matches = (
        bool(checkpoints) and signed <= present and (tree.root(signed) == checkpoints[-1].root_hash)
    )
    data_matches = (
        bool(checkpoints)
        and signed <= present
        and (data_tree.root(signed) == checkpoints[-1].root_hash)
    )
    for number, damage in enumerate(inspection.damaged):
        if number == LISTED_DAMAGE:
            found.append(
                Finding(
                    "damage",
                    "entry",
                    f"and {len(inspection.damaged) - LISTED_DAMAGE} more damaged entries",
                    data,
                    signed=any(d.index < signed for d in inspection.damaged[LISTED_DAMAGE:]),
                )
            )
            break
        inside = damage.index < signed
        if not damage.expected_leaf:  # found without a usable index: no hash to compare with
            should = "without a usable index, the leaf hash stored after it is all there is"
        elif inside and index_matches:
            should = (
                f"it should hash to {damage.expected_leaf.hex()}, as its index entry and the "
                f"checkpoint of size {signed} say"
            )
        elif inside and data_matches:
            should = (
                "its bytes are what the checkpoint signed: the index is what is damaged (move "
                "log/entries.idx aside and any command rebuilds it from entries.bin)"
            )
        else:
            should = f"it should hash to {damage.expected_leaf.hex()} (its index entry)" + (
                "" if inside else f"; it is after the latest checkpoint ({signed} entries)"
            )
        found.append(
            Finding(
                "damage",
                "entry",
                f"entry {damage.index} (byte {damage.offset} of {data}) is damaged: "
                f"{damage.problem}; {should}",
                data,
                damage.index,
                damage.expected_leaf.hex() or None,
                signed=inside,
            )
        )
    for checkpoint in checkpoints:
        if checkpoint.size > present:
            continue
        # A checkpoint the index's or the data's leaf hashes reproduce is not the problem:
        # the damaged entries (or the damaged index) are.
        if checkpoint.root_hash not in (
            tree.root(checkpoint.size),
            data_tree.root(checkpoint.size),
        ):
            damaged_inside = any(d.index < checkpoint.size for d in inspection.damaged)
            found.append(
                Finding(
                    "damage",
                    "root",
                    f"the log's root at size {checkpoint.size} is "
                    f"{tree.root(checkpoint.size).hex()}, its checkpoint "
                    f"checkpoints/{checkpoint.size}.note says {checkpoint.root_hash.hex()}: "
                    + (
                        "see the damaged entries"
                        if damaged_inside
                        else "entries were changed consistently with their hashes, reordered, "
                        "inserted or removed (compare with the witnesses' copies)"
                    ),
                    f"checkpoints/{checkpoint.size}.note",
                    signed=True,
                )
            )
    if inspection.index_problem is not None:
        found.append(
            Finding(
                "leftover",
                "index",
                f"{inspection.index_problem}: opening the log rebuilds it from entries.bin "
                "(the old one is kept in log/discarded/)",
                "log/entries.idx",
            )
        )
    if inspection.index_partial_bytes:
        found.append(
            Finding(
                "leftover",
                "partial-index",
                f"log/entries.idx ends with {inspection.index_partial_bytes} bytes of a partial "
                "index entry (an append that died before it was acknowledged): opening the log "
                "cuts them",
                "log/entries.idx",
                size=inspection.index_partial_bytes,
            )
        )
    if inspection.missing_from is not None and inspection.missing_from >= signed:
        lost = inspection.index_entries - inspection.missing_from
        found.append(
            Finding(
                "leftover",
                "torn-tail",
                f"index entries {inspection.missing_from}-{inspection.index_entries - 1} "
                f"({lost} after the latest checkpoint) have no whole record in {data}, which "
                f"ends at byte {inspection.data_bytes}: opening the log drops them and sets the "
                "torn bytes aside in log/discarded/ (a copy of the index too)",
                data,
                inspection.missing_from,
                size=inspection.data_bytes - inspection.tail_offset,
            )
        )
    if inspection.unindexed_records:
        first = inspection.index_entries
        found.append(
            Finding(
                "leftover",
                "unindexed-records",
                f"{inspection.unindexed_records} intact records after the last index entry "
                f"(entries {first}-{first + inspection.unindexed_records - 1}: an append cut "
                "short by a crash, never acknowledged): opening the log indexes them",
                data,
                first,
            )
        )
    if inspection.tail_bytes:
        found.append(
            Finding(
                "leftover",
                "torn-tail",
                f"{inspection.tail_bytes} bytes at byte {inspection.tail_offset} of {data} are "
                f"a torn, never acknowledged append ({inspection.tail_problem}): opening the "
                "log sets them aside in log/discarded/",
                data,
                size=inspection.tail_bytes,
            )
        )
    total = present + inspection.unindexed_records
    if checkpoints and total > signed:
        span = f"entry {signed} is" if total - signed == 1 else f"entries {signed}-{total - 1} are"
        found.append(
            Finding(
                "note",
                "unsigned-entries",
                f"{span} acknowledged but not covered by a checkpoint yet (run 'pollwatch "
                "evidence checkpoint')",
                data,
                signed,
            )
        )
    for name in inspection.discarded:
        path = log / name
        found.append(
            Finding(
                "note",
                "discarded",
                f"log/{name}: bytes the log's recovery set aside earlier (kept, never deleted)",
                f"log/{name}",
                size=_size(path),
            )
        )
    return found


def _object_findings(
    folder: Path,
    items: dict[str, list[tuple[int, int]]],
    now: float,
    min_age: float,
    unreadable: bool,
) -> list[Finding]:
    found: list[Finding] = []
    root = folder / "objects"
    for sha, entries in sorted(items.items()):
        path = root / sha[:2] / sha[2:4] / sha
        index, size = entries[0]
        relative = f"objects/{sha[:2]}/{sha[2:4]}/{sha}"
        if not path.is_file():
            found.append(
                Finding(
                    "damage",
                    "object",
                    f"item entry {index} names object {sha}, which is not in the store: restore "
                    "it from a replica or an evidence bundle",
                    relative,
                    index,
                )
            )
        elif path.stat().st_size != size:
            found.append(
                Finding(
                    "damage",
                    "object",
                    f"object {sha} has {path.stat().st_size} bytes, item entry {index} says "
                    f"{size}: restore it from a replica or an evidence bundle",
                    relative,
                    index,
                )
            )
    if not root.is_dir():
        return found
    incoming = root / ".incoming"
    for path in sorted(incoming.iterdir()) if incoming.is_dir() else []:
        found.append(
            _leftover(
                folder,
                path,
                "part-file",
                "a temporary copy of a file being stored, left by a crash",
                now,
                min_age,
            )
        )
    for first in sorted(root.iterdir()):
        if first == incoming:
            continue
        if len(first.name) != 2 or not first.is_dir():
            found.append(_stray(folder, first, now, min_age))
            continue
        # Empty shard folders are not leftovers: the store reuses them.
        for second in sorted(first.iterdir()):
            if len(second.name) != 2 or not second.is_dir():
                found.append(_stray(folder, second, now, min_age))
                continue
            for path in sorted(second.iterdir()):
                name = path.name
                if (
                    len(name) != 64
                    or not name.startswith(first.name + second.name)
                    or not path.is_file()
                ):
                    found.append(_stray(folder, path, now, min_age))
                elif name not in items and unreadable:
                    relative = path.relative_to(folder).as_posix()
                    found.append(
                        Finding(
                            "note",
                            "unnamed-object",
                            f"{relative}: no readable item entry names this object, but the "
                            "log is damaged and a damaged or missing entry may name it",
                            relative,
                            size=_size(path),
                        )
                    )
                elif name not in items:
                    found.append(
                        _leftover(
                            folder,
                            path,
                            "orphan-object",
                            "an object no item entry names (stored, then the command died or "
                            "was refused before logging it)",
                            now,
                            min_age,
                        )
                    )
    return found


def _stray_findings(folder: Path, now: float, min_age: float) -> list[Finding]:
    """``*.part`` files, ``.staging-*``/``.trash-*`` folders and empty folders outside objects/."""
    found: list[Finding] = []
    for path in _walk(folder):
        relative = path.relative_to(folder).as_posix()
        name = path.name
        if relative.split("/")[0] in ("objects", QUARANTINE):
            continue
        if name.endswith(".part"):
            found.append(
                _leftover(
                    folder, path, "part-file", "a half-written file left by a crash", now, min_age
                )
            )
        elif name.startswith((".staging-", ".trash-")):
            found.append(
                _leftover(
                    folder,
                    path,
                    "staging",
                    "a staging or trash folder left by an interrupted write",
                    now,
                    min_age,
                )
            )
        elif path.is_dir() and relative not in _STANDARD_FOLDERS and not any(path.iterdir()):
            found.append(_empty(folder, path, now, min_age))
    quarantine = folder / QUARANTINE
    if quarantine.is_dir():
        for batch in sorted(quarantine.iterdir()):
            count = sum(1 for p in batch.rglob("*") if p.is_file()) if batch.is_dir() else 1
            found.append(
                Finding(
                    "note",
                    "quarantined",
                    f"{QUARANTINE}/{batch.name}: {count} file{'' if count == 1 else 's'} "
                    "quarantined by an earlier "
                    "'fsck --repair' (its log entry says what and why)",
                    f"{QUARANTINE}/{batch.name}",
                )
            )
    return found


def _temp_findings(temp: Path, now: float, min_age: float) -> list[Finding]:
    """pollwatch's stale folders in the system's temporary folder: reported, never moved.

    They are not known to belong to this archive (any pollwatch home on the machine makes
    them, and a blurring job's frames are another archive's video), so they stay where they are.
    """
    found = []
    with contextlib.suppress(OSError):
        for path in sorted(temp.iterdir()):
            if not path.name.startswith(TEMP_PREFIXES) or not path.is_dir() or path.is_symlink():
                continue
            with contextlib.suppress(OSError):
                age = now - path.stat().st_mtime
                if age >= min_age:
                    found.append(
                        Finding(
                            "note",
                            "temp-folder",
                            f"{path}: a temporary folder of an upload or a blurring job that "
                            f"outlived it ({int(age // 60)} minutes old); outside the archive, so "
                            "fsck --repair leaves it: remove it once no command uses it",
                            str(path),
                            size=_size(path),
                        )
                    )
    return found


def _walk(folder: Path) -> Iterator[Path]:
    """Every path under ``folder``, not descending into leftover folders themselves."""
    for path in sorted(folder.iterdir()):
        yield path
        if (
            path.is_dir()
            and not path.is_symlink()
            and not path.name.startswith((".staging-", ".trash-"))
        ):
            yield from _walk(path)


def _size(path: Path) -> int | None:
    with contextlib.suppress(OSError):
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None


def _leftover(folder: Path, path: Path, what: str, why: str, now: float, min_age: float) -> Finding:
    relative = path.relative_to(folder).as_posix()
    size = _size(path)
    try:
        age = now - path.lstat().st_mtime
    except OSError:
        age = 0.0
    if age < min_age:
        return Finding(
            "note",
            "recent",
            f"{relative}: {why}, but modified {max(0, int(age))} s ago, less than "
            f"{int(min_age)} s: it may belong to a running command; left alone",
            relative,
            size=size,
        )
    return Finding("leftover", what, f"{relative}: {why}", relative, size=size)


def _empty(folder: Path, path: Path, now: float, min_age: float) -> Finding:
    return _leftover(folder, path, "empty-folder", "an empty folder", now, min_age)


def _stray(folder: Path, path: Path, now: float, min_age: float) -> Finding:
    return _leftover(folder, path, "stray", "not part of the object store's layout", now, min_age)


# --------------------------------------------------------------------------------------------
# Repairing.
# --------------------------------------------------------------------------------------------

_LOG_LEFTOVERS = {"torn-tail", "partial-index", "unindexed-records", "index"}
"""Leftovers the log's own recovery handles when it is opened."""


def repair(
    folder: Path | str,
    *,
    actor: str,
    address: str,
    min_age: float = MIN_AGE,
    timestamp_authorities: Sequence[str] = (),
    now: float | None = None,
    temp_folder: Path | str | None = None,
) -> RepairResult:
    """Quarantine the crash leftovers fsck finds, after logging and signing what moves where.

    Refuses (VerificationError, nothing moved or logged) while fsck finds damage: damage inside
    the range a checkpoint signed needs a person, and nothing is appended to a damaged log.
    """
    from pollwatch.evidence.archive import EvidenceArchive, now_utc

    folder = Path(folder)

    def check() -> FsckReport:
        return fsck(folder, min_age=min_age, now=now, temp_folder=temp_folder)

    report = check()
    if report.damaged:
        first = report.damage[0]
        inside = any(f.signed for f in report.damage)
        raise VerificationError(
            f"fsck --repair refuses to touch a damaged archive: {first.detail}"
            + (f" (and {len(report.damage) - 1} more problems)" if len(report.damage) > 1 else ""),
            hint=(
                "damage inside the checkpointed range needs a person: compare the log with a "
                "backup, an evidence bundle or the witnesses' copies of its checkpoints and "
                "restore it"
                if inside
                else "pollwatch appends nothing to a damaged log: restore the log folder from a "
                "backup"
            )
            + "; nothing was moved or logged",
        )
    movable = [f for f in report.leftovers if f.what not in _LOG_LEFTOVERS and f.path]
    if not report.leftovers:
        return RepairResult(None, None, None, (), after=report)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + f"-{uuid.uuid4().hex[:8]}"
    batch = f"{QUARANTINE}/{stamp}"
    with EvidenceArchive(folder) as archive:
        recovery = archive.log.recovery
        recovered = {} if recovery.clean else _recovery_dict(folder, recovery)
        moves = [
            {
                "path": f.path,
                "to": f"{batch}/{f.path}",
                "what": f.what,
                "why": f.detail,
                **_fingerprint(folder / str(f.path)),
            }
            for f in movable
        ]
        if not moves and not recovered:
            return RepairResult(None, None, None, (), after=check())
        statement = {
            "action": "quarantine",
            "actor": actor,
            "address": address,
            "time": now_utc(),
            "reason": "crash leftovers found by 'pollwatch evidence fsck --repair'",
            "quarantine": batch if moves else None,
            "moved": moves,
            **({"recovery": recovered} if recovered else {}),
        }
        index = archive.append_record("maintenance", statement)
        stored = archive.sign_checkpoint(timestamp_authorities=timestamp_authorities)
        moved = []
        for move in moves:
            source, target = folder / move["path"], folder / move["to"]
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(source, target)
            except FileNotFoundError:
                continue  # gone meanwhile: the statement lists it; the next fsck will not
            fsync_directory(source.parent)
            fsync_directory(target.parent)
            moved.append(move)
        _restore_named_objects(archive, folder, moved)
    return RepairResult(
        statement_entry=index,
        checkpoint_size=stored.checkpoint.size,
        quarantine=batch if moves else None,
        moved=tuple(moved),
        recovery=recovered,
        after=check(),
    )


def _recovery_dict(folder: Path, recovery: Any) -> dict[str, Any]:
    return {
        "index_bytes_dropped": recovery.index_bytes_dropped,
        "index_rebuilt": recovery.index_rebuilt,
        "entries_indexed": recovery.entries_indexed,
        "bytes_discarded": recovery.bytes_discarded,
        "saved": [Path(p).relative_to(folder).as_posix() for p in recovery.saved],
    }


def _fingerprint(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file (streamed); a folder's file count and size."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def _restore_named_objects(archive: Any, folder: Path, moved: list[dict[str, Any]]) -> None:
    """Put back an orphan object that an entry appended during the repair now names."""
    named = {record.sha256 for record in archive.items()}
    for move in moved:
        if move["what"] == "orphan-object" and Path(move["path"]).name in named:
            os.rename(folder / move["to"], folder / move["path"])
            move["restored"] = True
