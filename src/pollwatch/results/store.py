"""The local store: imported elections as Parquet plus a JSON metadata file, one folder each.

Layout: ``<home>/elections/<id>/stations.parquet``, ``meta.json`` and, when the import set rows
aside, ``quarantine.json`` (:mod:`pollwatch.results.quarantine`). The catalogue is the set of
``meta.json`` files (no second index that could drift). Writes go to a staging folder that is
fsync'd and renamed into place in one step, so a failed or interrupted import leaves nothing
behind (and a finished one survives a power cut: :mod:`pollwatch.fileio`), and
re-importing the same numbers under the same id changes nothing.

A replacement takes two renames: the old folder to ``.trash-<id>-<token>``, then the staging
folder ``.staging-<id>-<token>`` to ``<id>``. If the process dies between them, the next use of
the store (listing, loading, saving) renames the old folder back, so an election never vanishes
from the catalogue: the replacement was never acknowledged and did not happen. A trash folder
beside a complete ``<id>`` is the old copy of a finished replacement and is removed, as are
staging folders of dead saves (the one paired with a rolled-back trash folder at once, others
once they are :data:`STALE_STAGING` seconds old, so a save in progress is left alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from pollwatch import __version__
from pollwatch.errors import StoreError
from pollwatch.fileio import atomic_write_text, fsync_directory, fsync_tree
from pollwatch.results.model import Election, ElectionMeta, make_election, simulation_notice
from pollwatch.results.quarantine import Quarantine

__all__ = ["CatalogueEntry", "ElectionStore"]

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_STAGING = ".staging-"
_TRASH = ".trash-"
STALE_STAGING = 3600.0
"""Seconds after which a staging folder without a living save is a leftover of a dead one."""
#: the files of the store's own in an election's folder (never attachments)
_OWN_FILES = frozenset({"meta.json", "stations.parquet", "quarantine.json"})


@dataclass(frozen=True)
class CatalogueEntry:
    """One imported election as the catalogue lists it."""

    id: str
    country: str
    date: str
    kind: str
    contest: str
    stations: int
    importer: str
    content_digest: str
    imported_at: str
    source: str
    #: the label of a simulated election (``ElectionMeta.simulation_notice``); None when real
    simulation: str | None = None
    #: source rows the import set aside (``pollwatch show ID --quarantine`` lists them)
    set_aside: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_election_id(election_id: str) -> str:
    """Refuse ids that are not safe folder names."""
    if (
        not election_id
        or not set(election_id) <= _ID_CHARS
        or election_id.startswith(".")
        or len(election_id) > 120
    ):
        raise StoreError(
            f"invalid election id {election_id!r}",
            hint="use lower-case letters, digits, '-', '_' and '.', not starting with '.'",
        )
    return election_id


class ElectionStore:
    """Imported elections under one folder (``Settings.elections_dir``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _folder(self, election_id: str) -> Path:
        return self.root / check_election_id(election_id)

    def recover(self) -> list[str]:
        """Undo replacements killed between their two renames; returns the ids brought back.

        Also removes what dead saves left: the old copy beside a finished replacement, the
        staging folder of a rolled-back one, and staging folders older than
        :data:`STALE_STAGING`. Every public method calls it first.
        """
        restored: list[str] = []
        try:
            names = sorted(path.name for path in self.root.iterdir())
        except OSError:
            return restored
        for name in names:
            if not name.startswith(_TRASH):
                continue
            election_id, _, token = name[len(_TRASH) :].rpartition("-")
            trash, folder = self.root / name, self.root / election_id
            if not election_id or election_id.startswith("."):
                continue
            if (folder / "meta.json").is_file():
                shutil.rmtree(trash, ignore_errors=True)  # the replacement finished
            elif (trash / "meta.json").is_file() and not folder.exists():
                try:
                    os.replace(trash, folder)
                except OSError:
                    continue  # a living save got there first: it owns both folders
                restored.append(election_id)
                shutil.rmtree(self.root / f"{_STAGING}{election_id}-{token}", ignore_errors=True)
        now = time.time()
        for name in names:
            path = self.root / name
            if name.startswith(_STAGING):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > STALE_STAGING:
                        shutil.rmtree(path, ignore_errors=True)
        return restored

    def __contains__(self, election_id: object) -> bool:
        if not isinstance(election_id, str):
            return False
        self.recover()
        return (self.root / election_id / "meta.json").is_file()

    def save(
        self, election: Election, *, replace: bool = False
    ) -> Literal["created", "unchanged", "replaced"]:
        """Store an election atomically; idempotent for the same numbers under the same id."""
        folder = self._folder(election.id)
        digest = election.content_digest()
        self.recover()
        if (folder / "meta.json").is_file():
            existing = self._read_meta_json(election.id)
            same_quarantine = int(existing.get("set_aside", 0)) == len(election.quarantine)
            if existing.get("content_digest") == digest and same_quarantine:
                return "unchanged"
            if not replace:
                raise StoreError(
                    f"the store already holds a different election with id {election.id!r}",
                    hint="import under another id (--id) or pass --replace",
                )
        self.root.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:8]
        staging = self.root / f"{_STAGING}{election.id}-{token}"
        try:
            staging.mkdir()
            election.stations.write_parquet(staging / "stations.parquet", compression="zstd")
            record = {
                "meta": election.meta.to_dict(),
                "stations": len(election),
                "content_digest": digest,
                "set_aside": len(election.quarantine),
                "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "pollwatch_version": __version__,
            }
            if len(election.quarantine):
                (staging / "quarantine.json").write_text(
                    json.dumps(election.quarantine.to_dict(), ensure_ascii=False),
                    encoding="utf-8",
                )
            (staging / "meta.json").write_text(
                json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8"
            )
            fsync_tree(staging)  # the files are on disk before a rename makes them the election
            if folder.exists():
                # The old folder keeps a name recover() knows until the new one is in place.
                trash = self.root / f"{_TRASH}{election.id}-{token}"
                os.replace(folder, trash)
                try:
                    os.replace(staging, folder)
                except BaseException:
                    if not folder.exists():
                        with contextlib.suppress(OSError):
                            os.replace(trash, folder)
                    raise
                fsync_directory(self.root)
                shutil.rmtree(trash, ignore_errors=True)
                return "replaced"
            os.replace(staging, folder)
            fsync_directory(self.root)
            return "created"
        except OSError as exc:
            raise StoreError(
                f"cannot write election {election.id!r} to {self.root} ({exc})",
                hint="check free space and permissions of the store (POLLWATCH_HOME); "
                "nothing was kept",
            ) from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _read_meta_json(self, election_id: str) -> dict[str, Any]:
        path = self._folder(election_id) / "meta.json"
        self.recover()
        if not path.is_file():
            known = ", ".join(e.id for e in self.list()) or "none yet"
            raise StoreError(
                f"no election {election_id!r} in the store ({self.root})",
                hint=f"imported elections: {known}; see 'pollwatch list'",
            )
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(
                f"{path} is damaged ({exc})", hint="re-import the election with --replace"
            ) from None
        return data

    def meta(self, election_id: str) -> ElectionMeta:
        """Metadata of a stored election, without reading its stations."""
        return ElectionMeta.from_dict(self._read_meta_json(election_id)["meta"])

    def load(self, election_id: str) -> Election:
        """A stored election, as saved."""
        meta = self.meta(election_id)
        path = self._folder(election_id) / "stations.parquet"
        try:
            stations = pl.read_parquet(path)
        except (OSError, pl.exceptions.ComputeError) as exc:
            raise StoreError(
                f"{path} cannot be read ({exc})", hint="re-import the election with --replace"
            ) from None
        return make_election(
            meta, stations, where=str(path), quarantine=self.quarantine(election_id)
        )

    def quarantine(self, election_id: str) -> Quarantine:
        """The rows the import of a stored election set aside (empty: none), without stations."""
        self._read_meta_json(election_id)  # an unknown id is a StoreError
        path = self._folder(election_id) / "quarantine.json"
        if not path.is_file():
            return Quarantine()
        try:
            return Quarantine.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{path} is damaged ({exc})", hint="re-import the election with --replace"
            ) from None

    def list(self) -> list[CatalogueEntry]:
        """Every stored election, sorted by id."""
        if not self.root.is_dir():
            return []
        self.recover()
        entries = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not (folder / "meta.json").is_file():
                continue
            try:
                record = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
                meta = record["meta"]
                definitions = meta.get("definitions")
                entries.append(
                    CatalogueEntry(
                        id=meta["id"],
                        country=meta.get("country", ""),
                        date=meta.get("date", ""),
                        kind=meta.get("kind", ""),
                        contest=meta.get("contest", ""),
                        stations=int(record.get("stations", 0)),
                        importer=meta.get("importer", ""),
                        content_digest=record.get("content_digest", ""),
                        imported_at=record.get("imported_at", ""),
                        source=meta.get("source", ""),
                        set_aside=int(record.get("set_aside", 0)),
                        simulation=simulation_notice(
                            meta.get("kind", ""),
                            meta.get("importer", ""),
                            definitions if isinstance(definitions, dict) else {},
                        ),
                    )
                )
            except (OSError, ValueError, KeyError):
                continue  # a damaged entry is reported by load(), not by the listing
        return entries

    def _attachment(self, election_id: str, name: str) -> Path:
        """The path of a file kept beside an election (its own files are not attachments)."""
        if not name or name.startswith(".") or "/" in name or "\\" in name or name in _OWN_FILES:
            raise StoreError(
                f"{name!r} cannot be kept beside an election",
                hint=f"a plain file name other than {', '.join(sorted(_OWN_FILES))}",
            )
        return self._folder(election_id) / name

    def write_attachment(self, election_id: str, name: str, text: str) -> Path:
        """Keep ``text`` as file ``name`` beside a stored election, atomically; its path.

        For what belongs to one election without being its numbers (a simulated election's
        labels); replacing the election removes its attachments with the old folder.
        """
        path = self._attachment(election_id, name)
        self._read_meta_json(election_id)  # an unknown id is a StoreError
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise StoreError(
                f"cannot write {path} ({exc})",
                hint="check free space and permissions of the store (POLLWATCH_HOME)",
            ) from None
        return path

    def read_attachment(self, election_id: str, name: str) -> str | None:
        """The text of file ``name`` kept beside a stored election (None: there is none)."""
        path = self._attachment(election_id, name)
        self._read_meta_json(election_id)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(
                f"{path} cannot be read ({exc})", hint="check its permissions"
            ) from None

    def delete(self, election_id: str) -> None:
        """Remove a stored election."""
        folder = self._folder(election_id)
        self.recover()
        if not folder.exists():
            raise StoreError(
                f"no election {election_id!r} in the store", hint="see 'pollwatch list'"
            )
        shutil.rmtree(folder)
