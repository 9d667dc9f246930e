"""Simulated elections with planted manipulation, saved in the store with their ground truth.

One code path for ``pollwatch simulate --inject`` and ``pollwatch demo``:

* :func:`plant` applies injectors, in order, to a clean election (synthetic or a twin) with the
  generator ``numpy.random.default_rng([seed, 1])``, so that the clean part stays that of
  ``seed``; the result gets its store id, a contest that says it was manipulated, and a
  ``planted_manipulation`` definition naming what was planted at how many stations, which
  every rendering shows as the election's label
  (:attr:`~pollwatch.results.model.ElectionMeta.simulation_notice`);
* :func:`save_planted` saves it in the store and writes the labels (affected stations, ballots
  added, votes moved) to ``<store>/<id>/injections.json`` next to it;
* :func:`demo_election` is the demo's recipe: a clean synthetic election with extreme ballot
  stuffing and whole-percent results planted at a tenth of the stations each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pollwatch.calibration.injectors import INJECTORS, Injector, Labels, compose
from pollwatch.fileio import atomic_write_json
from pollwatch.forensics.simulate import simulate_clean
from pollwatch.results.model import PLANTED_DEFINITION, Election
from pollwatch.results.store import ElectionStore, check_election_id

__all__ = [
    "DEMO_ELECTION_ID",
    "DEMO_INJECTIONS",
    "INJECTIONS_FILE",
    "PlantedElection",
    "demo_election",
    "plant",
    "planted_summary",
    "save_planted",
]

#: The labels of the planted manipulations, in the simulated election's store folder.
INJECTIONS_FILE = "injections.json"
#: The store id of the demo's simulated election.
DEMO_ELECTION_ID = "simulated-demo"
#: The demo's planted manipulations, ``(injector, share, magnitude)``, applied in order: the
#: extreme stuffing of Klimek et al. (2012) (turnout 100 %, 95 % of the opponents' votes to the
#: leader) and whole-percent leader shares at multiples of 5 % (Kobak et al. 2016).
DEMO_INJECTIONS: tuple[tuple[str, float, float], ...] = (
    ("extreme-stuffing", 0.1, 0.95),
    ("round-percentages", 0.1, 5.0),
)


@dataclass(frozen=True)
class PlantedElection:
    """A simulated election with its planted manipulations and their labels."""

    election: Election
    clean_id: str
    seed: int
    labels: tuple[Labels, ...]

    def record(self) -> dict[str, Any]:
        """The content of ``injections.json`` (format ``pollwatch-injections/1``)."""
        return {
            "format": "pollwatch-injections/1",
            "election": self.election.id,
            "clean": self.clean_id,
            "seed": self.seed,
            "generator": "numpy default_rng([seed, 1]), injectors applied in order",
            "injections": [label.to_dict() for label in self.labels],
        }


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.3g} %"


def planted_summary(injectors: Sequence[Injector], labels: Sequence[Labels], stations: int) -> str:
    """One line naming each planted manipulation, its stations and its magnitude.

    e.g. ``planted manipulation: extreme ballot stuffing at 1,000 stations (10 % of 10,000;
    magnitude 0.8: fraction of the opponents' votes moved to the leader); ...``
    """
    parts = []
    for injector, label in zip(injectors, labels, strict=True):
        title = injector.title[:1].lower() + injector.title[1:]
        count = len(label.stations)
        share = _percent(count / stations) if stations else "0 %"
        parts.append(
            f"{title} at {count:,} stations ({share} of {stations:,}; magnitude "
            f"{injector.magnitude:g}: {injector.magnitude_meaning})"
        )
    return "planted manipulation: " + "; ".join(parts)


def plant(
    base: Election, injectors: Sequence[Injector], *, seed: int, election_id: str
) -> PlantedElection:
    """``base`` with ``injectors`` applied in order (generator ``default_rng([seed, 1])``).

    Without injectors the election is ``base`` under ``election_id``, with no labels.
    """
    target_id = check_election_id(election_id)
    election = base
    labels: list[Labels] = []
    if injectors:
        # The injections draw from their own stream, so the clean part stays that of ``seed``.
        election, labels = compose(base, injectors, np.random.default_rng([seed, 1]))
        names = ", ".join(injector.name for injector in injectors)
        election = election.replace_meta(
            contest=f"{base.meta.contest}, then manipulated ({names})",
            definitions={
                **dict(election.meta.definitions),
                PLANTED_DEFINITION: planted_summary(injectors, labels, len(base)),
            },
        )
    return PlantedElection(
        election=election.replace_meta(id=target_id),
        clean_id=base.id,
        seed=seed,
        labels=tuple(labels),
    )


def save_planted(
    store: ElectionStore, planted: PlantedElection, *, replace: bool = False
) -> tuple[Literal["created", "unchanged", "replaced"], Path | None]:
    """Save the election in ``store`` and its labels next to it; the labels' path, if any."""
    outcome = store.save(planted.election, replace=replace)
    if not planted.labels:
        return outcome, None
    folder = store.root / planted.election.id
    target = folder / INJECTIONS_FILE
    atomic_write_json(target, planted.record(), ensure_ascii=False, indent=2)
    return outcome, target


def demo_election(*, stations: int = 10_000, seed: int = 2018) -> PlantedElection:
    """The demo's simulated election: clean, then :data:`DEMO_INJECTIONS` planted.

    The clean part is :func:`~pollwatch.forensics.simulate.simulate_clean` with 25 regions, 5
    candidates, 1 % hospital and 0.5 % abroad stations; about 2 seconds in all.
    """
    base = simulate_clean(
        stations=stations,
        candidates=5,
        regions=25,
        seed=seed,
        hospital_share=0.01,
        abroad_share=0.005,
        election_id=f"simulated-clean-{seed}",
    )
    injectors = [INJECTORS.get(name)(share=s, magnitude=m) for name, s, m in DEMO_INJECTIONS]
    return plant(base, injectors, seed=seed, election_id=DEMO_ELECTION_ID)
