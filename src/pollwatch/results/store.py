"""The local store: imported elections as Parquet plus a JSON metadata file, one folder each.

Layout: ``<home>/elections/<id>/stations.parquet`` and ``meta.json``. The catalogue is the set of
``meta.json`` files (no second index that could drift). Writes go to a staging folder that is
renamed into place in one step, so a failed or interrupted import leaves nothing behind, and
re-importing the same numbers under the same id changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from pollwatch import __version__
from pollwatch.errors import StoreError
from pollwatch.results.model import Election, ElectionMeta, make_election, simulation_notice

__all__ = ["CatalogueEntry", "ElectionStore"]

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


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

    def __contains__(self, election_id: object) -> bool:
        return isinstance(election_id, str) and (self.root / election_id / "meta.json").is_file()

    def save(
        self, election: Election, *, replace: bool = False
    ) -> Literal["created", "unchanged", "replaced"]:
        """Store an election atomically; idempotent for the same numbers under the same id."""
        folder = self._folder(election.id)
        digest = election.content_digest()
        if (folder / "meta.json").is_file():
            existing = self._read_meta_json(election.id)
            if existing.get("content_digest") == digest:
                return "unchanged"
            if not replace:
                raise StoreError(
                    f"the store already holds a different election with id {election.id!r}",
                    hint="import under another id (--id) or pass --replace",
                )
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".staging-{election.id}-{uuid.uuid4().hex[:8]}"
        try:
            staging.mkdir()
            election.stations.write_parquet(staging / "stations.parquet", compression="zstd")
            record = {
                "meta": election.meta.to_dict(),
                "stations": len(election),
                "content_digest": digest,
                "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "pollwatch_version": __version__,
            }
            (staging / "meta.json").write_text(
                json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8"
            )
            if folder.exists():
                trash = self.root / f".trash-{election.id}-{uuid.uuid4().hex[:8]}"
                os.replace(folder, trash)
                os.replace(staging, folder)
                shutil.rmtree(trash, ignore_errors=True)
                return "replaced"
            os.replace(staging, folder)
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
        return make_election(meta, stations, where=str(path))

    def list(self) -> list[CatalogueEntry]:
        """Every stored election, sorted by id."""
        if not self.root.is_dir():
            return []
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

    def delete(self, election_id: str) -> None:
        """Remove a stored election."""
        folder = self._folder(election_id)
        if not folder.exists():
            raise StoreError(
                f"no election {election_id!r} in the store", hint="see 'pollwatch list'"
            )
        shutil.rmtree(folder)
