"""Simulated elections with planted manipulation, saved in the store with their ground truth.

One code path for ``pollwatch simulate --inject`` and ``pollwatch demo``:

* :func:`plant` applies injectors, in order, to a clean election (synthetic or a twin) with the
  generator ``numpy.random.default_rng([seed, 1])``, so that the clean part stays that of
  ``seed``; the result gets its store id, a contest that says it was manipulated, and a
  ``planted_manipulation`` definition naming what was planted at how many stations, which
  every rendering shows as the election's label
  (:attr:`~pollwatch.results.model.ElectionMeta.simulation_notice`);
* :func:`plant_injections` names the result after what was planted, with injectors made by
  :func:`injectors_of` from ``NAME:SHARE:MAGNITUDE`` texts (what ``--inject`` takes);
* :func:`save_planted` saves it in the store with its labels (affected stations, ballots
  added, votes moved) beside it, ``<store>/<id>/injections.json``
  (:mod:`pollwatch.synthetic.labels`), both through the store;
* :func:`demo_election` is the demo's recipe: a clean synthetic election with extreme ballot
  stuffing and whole-percent results planted at a tenth of the stations each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pollwatch.errors import PollwatchError
from pollwatch.results.model import PLANTED_DEFINITION, Election
from pollwatch.results.store import ElectionStore, check_election_id
from pollwatch.synthetic.injectors import INJECTORS, Injector, Labels, compose
from pollwatch.synthetic.labels import INJECTIONS_FILE, LabelsFile, write_labels
from pollwatch.synthetic.simulator import simulate_clean

__all__ = [
    "DEMO_ELECTION_ID",
    "DEMO_INJECTIONS",
    "INJECTIONS_FILE",
    "PlantedElection",
    "demo_election",
    "injectors_of",
    "parse_injection",
    "plant",
    "plant_injections",
    "planted_summary",
    "save_planted",
]

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

    def labels_file(self) -> LabelsFile:
        """The content of ``injections.json`` (:mod:`pollwatch.synthetic.labels`)."""
        return LabelsFile(
            election=self.election.id, clean=self.clean_id, seed=self.seed, injections=self.labels
        )


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


def parse_injection(text: str) -> tuple[str, float, float]:
    """``NAME:SHARE:MAGNITUDE`` -> (name, share, magnitude); a bad value is one clear error."""
    parts = text.rsplit(":", 2)
    hint = "e.g. --inject incremental-stuffing:0.1:0.5 (see docs/calibration-injectors.md)"
    if len(parts) != 3 or not parts[0]:
        raise PollwatchError(f"--inject {text!r} is not NAME:SHARE:MAGNITUDE", hint=hint)
    values = []
    for label, part in (("SHARE", parts[1]), ("MAGNITUDE", parts[2])):
        try:
            values.append(float(part))
        except ValueError:
            raise PollwatchError(
                f"--inject {parts[0]}: {label} {part!r} is not a number", hint=hint
            ) from None
    return parts[0], values[0], values[1]


def injectors_of(injections: Sequence[str]) -> list[Injector]:
    """The injectors of ``NAME:SHARE:MAGNITUDE`` texts, in order, their parameters checked."""
    specs = [parse_injection(text) for text in injections]
    return [INJECTORS.get(name)(share=share, magnitude=mag) for name, share, mag in specs]


def plant_injections(
    base: Election, injectors: Sequence[Injector], *, seed: int, election_id: str | None = None
) -> PlantedElection:
    """:func:`plant`, the id defaulting to ``base``'s suffixed with the injectors' names
    (``simulated-3-carousel``)."""
    names = [injector.name for injector in injectors]
    default_id = "-".join([base.id, *names])
    return plant(base, injectors, seed=seed, election_id=election_id or default_id)


def save_planted(
    store: ElectionStore, planted: PlantedElection, *, replace: bool = False
) -> tuple[Literal["created", "unchanged", "replaced"], Path | None]:
    """Save the election in ``store`` and its labels beside it; the labels' path, if any."""
    outcome = store.save(planted.election, replace=replace)
    if not planted.labels:
        return outcome, None
    return outcome, write_labels(store, planted.labels_file())


def demo_election(*, stations: int = 10_000, seed: int = 2018) -> PlantedElection:
    """The demo's simulated election: clean, then :data:`DEMO_INJECTIONS` planted.

    The clean part is :func:`~pollwatch.synthetic.simulator.simulate_clean` with 25 regions, 5
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
