"""Synthetic elections: the clean simulator, manipulation injectors and planted labels.

Imports results (the model and the store) and the core utilities only; forensics never imports
it, calibration and the interfaces build on it.

* :mod:`pollwatch.synthetic.simulator`: clean elections, synthetic (:func:`simulate_clean`) or
  a real election's clean twin (:func:`simulate_like`), reproducible from a seed;
* :mod:`pollwatch.synthetic.injectors`: known manipulations planted in an election, one seam
  (:data:`INJECTORS`, entry-point group ``pollwatch.injectors``), each saying where
  (:class:`Labels`);
* :mod:`pollwatch.synthetic.planted`: injectors applied to a clean election and saved in the
  store with their labels (``pollwatch simulate --inject``, ``pollwatch demo``);
* :mod:`pollwatch.synthetic.labels`: the labels file format (``injections.json`` beside the
  election), written and read through the store.
"""

from pollwatch.synthetic.injectors import INJECTORS, Injector, Labels, compose
from pollwatch.synthetic.labels import INJECTIONS_FILE, LabelsFile, read_labels, write_labels
from pollwatch.synthetic.planted import (
    PlantedElection,
    demo_election,
    injectors_of,
    plant,
    plant_injections,
    save_planted,
)
from pollwatch.synthetic.simulator import simulate_clean, simulate_like

__all__ = [
    "INJECTIONS_FILE",
    "INJECTORS",
    "Injector",
    "Labels",
    "LabelsFile",
    "PlantedElection",
    "compose",
    "demo_election",
    "injectors_of",
    "plant",
    "plant_injections",
    "read_labels",
    "save_planted",
    "simulate_clean",
    "simulate_like",
    "write_labels",
]
