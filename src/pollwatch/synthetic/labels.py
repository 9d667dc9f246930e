"""The labels file: what was planted in a simulated election, kept beside it in the store.

``<store>/<id>/injections.json`` (:data:`INJECTIONS_FILE`, format :data:`LABELS_FORMAT`), one
JSON object::

    format      "pollwatch-injections/1"
    election    the manipulated election's store id
    clean       the id of the clean election it was made from
    seed        the seed of the clean election; the injections drew from default_rng([seed, 1])
    generator   how the injections drew, in words
    injections  one object per injector, in the order applied (:class:`~.injectors.Labels`):
                injector, parameters, stations, votes_moved, ballots_added,
                votes_invalidated, leader

It is written and read through the :class:`~pollwatch.results.store.ElectionStore`
(:meth:`~pollwatch.results.store.ElectionStore.write_attachment`), so replacing the election
removes its old labels with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pollwatch.errors import StoreError
from pollwatch.results.store import ElectionStore
from pollwatch.synthetic.injectors import Labels

__all__ = [
    "GENERATOR",
    "INJECTIONS_FILE",
    "LABELS_FORMAT",
    "LabelsFile",
    "read_labels",
    "write_labels",
]

#: The labels file's name in the simulated election's store folder.
INJECTIONS_FILE = "injections.json"
#: The format the file declares.
LABELS_FORMAT = "pollwatch-injections/1"
#: How the injections draw, as the file says it.
GENERATOR = "numpy default_rng([seed, 1]), injectors applied in order"


@dataclass(frozen=True)
class LabelsFile:
    """The content of a labels file: the planted manipulations of one simulated election."""

    election: str
    clean: str
    seed: int
    injections: tuple[Labels, ...]
    generator: str = GENERATOR

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object (keys in the order of the format)."""
        return {
            "format": LABELS_FORMAT,
            "election": self.election,
            "clean": self.clean,
            "seed": self.seed,
            "generator": self.generator,
            "injections": [label.to_dict() for label in self.injections],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelsFile:
        """Inverts :meth:`to_dict` (ValueError when ``data`` is not a labels file)."""
        if data.get("format") != LABELS_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, want {LABELS_FORMAT!r}")
        try:
            return cls(
                election=str(data["election"]),
                clean=str(data["clean"]),
                seed=int(data["seed"]),
                generator=str(data.get("generator", GENERATOR)),
                injections=tuple(Labels.from_dict(item) for item in data["injections"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or malformed {exc}") from None


def write_labels(store: ElectionStore, labels: LabelsFile) -> Path:
    """Keep ``labels`` beside its (stored) election; the file's path."""
    text = json.dumps(labels.to_dict(), ensure_ascii=False, indent=2)
    return store.write_attachment(labels.election, INJECTIONS_FILE, text)


def read_labels(store: ElectionStore, election_id: str) -> LabelsFile | None:
    """The labels kept beside a stored election (None: nothing was planted in it)."""
    text = store.read_attachment(election_id, INJECTIONS_FILE)
    if text is None:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return LabelsFile.from_dict(data)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise StoreError(
            f"{store.root / election_id / INJECTIONS_FILE} is damaged ({exc})",
            hint="simulate the election again with --replace",
        ) from None
