"""The calibration harness: false-positive rates, power and station ranking of each method.

A :class:`CalibrationPlan` says what to measure; :func:`plan_cells` lists its **elections**, and
a **cell** is one method on one of them:

* ``clean-<i>``: a clean simulated election
  (:func:`pollwatch.synthetic.simulator.simulate_clean`), for false-positive rates and for the
  empirical thresholds of methods without a p-value;
* ``power-<injector>-<level>-<r>``: a fresh clean simulation with one injector
  (:data:`pollwatch.synthetic.injectors.INJECTORS`) applied to ``share`` of its stations at
  a low, medium or high magnitude, for power and, for methods that score stations, precision
  and recall against the injector's labels;
* ``reference-<id>-<u>``: one unit (a region, state, district or random subsample) of a real
  clean election, from :func:`pollwatch.calibration.references.reference_units`, where each
  unit is one test;
* ``whole-<id>``: the whole reference election, each method run on it once; its statistic,
  effect and p-value are stored (``entry["references"]["whole"][id]``) to show what the
  method says about the real election, and are **not** counted in any rate (one election is
  one sample, and it overlaps every unit of its reference).

Every random draw derives from the plan's seed and the election's key
(``numpy.random.SeedSequence(seed, spawn_key=...)``), so any cell can be recomputed alone and
gives the same numbers whichever executor, worker or order ran it. An election is built once
per run for all the methods that still need it. A cell's output is a small JSON dictionary
(p-value, statistic, stations flagged, or the reason it was skipped), cached under
``<home>/calibration/<plan digest>/cells/<method>/<method key>/<election>.json``:

* the **plan digest** covers the settings that make the elections (sizes, seed, share,
  references, subsamples) and the source of the simulator and the reference reader; it leaves
  out the counts (elections, replicates), so a larger run reuses a smaller one, and the
  methods and injectors, which have keys of their own;
* the **method key** covers the method's name, its parameters and the digest of its own code
  (:func:`method_code_digest`: the modules of its class and of its base classes, which include
  ``forensics/base.py``), so changing one method invalidates only its cells, and adding a
  method runs only its cells;
* a power election's file name carries the **injector key** (the injector, its magnitude and
  the source of its module), so injectors are keyed on their own too.

A rerun of the same plan reuses every cached cell, so an interrupted run resumes where it
stopped.

:func:`build_tables` aggregates the cells into one table document per method
(``pollwatch-calibration/2``, read by :mod:`pollwatch.forensics.calibration`; :func:`write_tables`
writes them, one file per method, touching no other method's file):

* **decision**: a method "rejects" an election when ``p_value < alpha``; a method without a
  p-value is calibrated empirically: it rejects when its statistic lies beyond the clean
  simulations' ``1 - alpha`` quantile (upper tail; ``alpha`` for the lower tail; both
  ``alpha / 2`` quantiles for two-sided; the tail is the class's ``calibration_tail``, "none"
  = descriptive). The simulated false-positive rate of an empirical method is leave-one-out
  (each simulation judged by the thresholds of the others), so it is not 0 or alpha by
  construction; the thresholds shipped are those of all simulations.
* **rates** carry the rejections, the tests and a 95 % Wilson score interval (Wilson 1927,
  "Probable inference, the law of succession, and statistical inference", JASA 22(158));
  elections a method skips (``MethodNotApplicable``) are not tests.
* **unreliable**: the lower end of the Wilson interval of the false-positive rate on the clean
  simulations or on the pooled references exceeds alpha, at 0.05 or at 0.01 (for empirical
  methods the references only: their simulated rate is alpha by construction).
* **precision_recall** (methods whose class says ``scores_stations``): precision = flagged
  stations that were manipulated / flagged stations, recall = manipulated stations flagged /
  manipulated stations, pooled over the replicates, per injector and magnitude.
* **measured**: the command, date, pollwatch version, numeric environment, the method's code
  digest and the plan digest of the run; **plan**: the plan settings (:func:`plan_settings`).

Layer: imports results, forensics, settings, errors and registry; never cli, web or reports.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from pollwatch import __version__
from pollwatch.environment import numeric_versions
from pollwatch.errors import PollwatchError
from pollwatch.fileio import atomic_write_json, atomic_write_text
from pollwatch.forensics.base import METHODS, Method, MethodNotApplicable, method_names
from pollwatch.forensics.calibration import TABLE_FORMAT, table_file
from pollwatch.results.model import Election
from pollwatch.settings import Settings
from pollwatch.synthetic.injectors import INJECTORS, Injector

__all__ = [
    "PLAN_SETTINGS",
    "SIMULATOR",
    "TABLE_FORMAT",
    "CalibrationPlan",
    "CalibrationRun",
    "Cell",
    "MethodSpec",
    "ReferenceUnitLike",
    "build_tables",
    "cell_seed",
    "elections_code_digest",
    "injector_key",
    "method_code_digest",
    "plan_cells",
    "plan_differences",
    "plan_settings",
    "run_calibration",
    "run_cell",
    "table_json",
    "wilson_interval",
    "write_tables",
]


LEVELS = ("low", "medium", "high")

_Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = _Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a binomial proportion (95 % by default); None for 0 trials.

    ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = successes / trials``
    (Wilson 1927, JASA 22(158), 209-212).
    """
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _stable_int(text: str) -> int:
    """A 32-bit integer from a string, the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _magnitudes_of(name: str, cls: type[Injector]) -> tuple[float, float, float]:
    declared = cls.calibration_magnitudes
    if declared is not None:
        low, medium, high = (float(m) for m in declared)
        return low, medium, high
    start, stop = cls.magnitude_range
    low, medium, high = (start + f * (stop - start) for f in (0.05, 0.2, 0.5))
    return low, medium, high


@dataclass(frozen=True)
class MethodSpec:
    """A method as the harness runs it: registry name, class and parameters (seed excluded)."""

    name: str
    cls: type[Method]
    parameters: Mapping[str, Any]

    def build(self, seed: int) -> Method:
        """An instance, seeded with ``seed`` when the method draws random numbers."""
        parameters = dict(self.parameters)
        if self.cls.stochastic and "seed" in getattr(self.cls, "__dataclass_fields__", {}):
            parameters["seed"] = seed
        try:
            return self.cls(**parameters)
        except TypeError as exc:
            raise PollwatchError(
                f"method {self.name!r}: {exc}",
                hint="check the calibration parameters against the method's docs",
            ) from None

    def calibrated_parameters(self) -> dict[str, Any]:
        """The instance's full parameters, seed left out (what the table records)."""
        parameters = self.build(0).parameters()
        parameters.pop("seed", None)
        return parameters

    def key(self) -> str:
        """The method's part of its cells' cache key: name, parameters and code digest."""
        data = {
            "method": self.name,
            "parameters": self.calibrated_parameters(),
            "code": method_code_digest(self.cls),
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CalibrationPlan:
    """What a calibration run measures; ``None`` fields mean "every registered one".

    Attributes:
        elections, stations, regions, candidates: the clean simulations (``stations`` per
            election, stations spread over ``regions``).
        seed: the root of every random draw.
        injectors: injector names for power cells (None: all registered).
        magnitudes: per injector, the low, medium and high magnitude (None: the defaults,
            the injector's ``calibration_magnitudes``).
        share: fraction of eligible stations an injector affects.
        replicates: power cells per injector and magnitude.
        power_stations: stations per power election (None: ``stations``).
        references: reference ids (None: all of
            :data:`pollwatch.calibration.references.REFERENCES`; empty: no references).
        subsamples, subsample_fraction: random subsamples per reference, and their size.
        methods: method names (None: all registered).
        alphas: the levels rates are measured at.
    """

    elections: int = 1000
    stations: int = 100_000
    regions: int = 20
    candidates: int = 4
    seed: int = 0
    injectors: tuple[str, ...] | None = None
    magnitudes: Mapping[str, tuple[float, float, float]] | None = None
    share: float = 0.1
    replicates: int = 20
    power_stations: int | None = None
    references: tuple[str, ...] | None = None
    subsamples: int = 20
    subsample_fraction: float = 0.25
    methods: tuple[str, ...] | None = None
    alphas: tuple[float, ...] = (0.05, 0.01)

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str, str]] = [
            (self.elections >= 1, f"elections={self.elections}", "at least 1"),
            (self.stations >= 10, f"stations={self.stations}", "at least 10"),
            (self.regions >= 1, f"regions={self.regions}", "at least 1"),
            (self.candidates >= 2, f"candidates={self.candidates}", "at least 2"),
            (self.replicates >= 0, f"replicates={self.replicates}", "0 or more"),
            (0.0 < self.share <= 1.0, f"share={self.share}", "above 0, at most 1"),
            (self.subsamples >= 0, f"subsamples={self.subsamples}", "0 or more"),
            (
                0.0 < self.subsample_fraction < 1.0,
                f"subsample_fraction={self.subsample_fraction}",
                "between 0 and 1",
            ),
            (
                bool(self.alphas) and all(0.0 < a < 1.0 for a in self.alphas),
                f"alphas={self.alphas}",
                "levels between 0 and 1",
            ),
        ]
        for ok, what, must in checks:
            if not ok:
                raise PollwatchError(f"calibration plan: {what} is out of range", hint=must)

    # --- resolution ------------------------------------------------------------------------
    def method_specs(self) -> list[MethodSpec]:
        """The planned methods with their parameters (the suite's cheaper ones where set)."""
        registered = list(method_names())
        names = list(self.methods) if self.methods is not None else registered
        if not names:
            raise PollwatchError("calibration plan has no methods", hint="name at least one")
        classes = [(name, METHODS.get(name)) for name in names]
        return [MethodSpec(name, cls, dict(cls.suite_parameters)) for name, cls in classes]

    def injector_magnitudes(self) -> dict[str, tuple[float, float, float]]:
        """Injector name -> (low, medium, high) magnitudes, validated against each injector."""
        names = list(self.injectors) if self.injectors is not None else INJECTORS.names()
        chosen = dict(self.magnitudes or {})
        out: dict[str, tuple[float, float, float]] = {}
        for name in names:
            cls = INJECTORS.get(name)
            levels = tuple(float(m) for m in chosen.get(name, _magnitudes_of(name, cls)))
            if len(levels) != 3:
                raise PollwatchError(
                    f"calibration plan: injector {name!r} needs three magnitudes, got {levels}",
                    hint="give a low, a medium and a high magnitude",
                )
            for magnitude in levels:
                cls(share=self.share, magnitude=magnitude)  # validates the range
            out[name] = (levels[0], levels[1], levels[2])
        return out

    def reference_ids(self) -> tuple[str, ...]:
        """The planned reference ids (all known ones when ``references`` is None)."""
        if self.references is not None:
            return tuple(self.references)
        from pollwatch.calibration.references import REFERENCES

        return tuple(REFERENCES)

    def describe(self) -> dict[str, Any]:
        """Everything that changes the planned elections, resolved (JSON-able).

        The methods and the injectors' magnitudes are not here: cells are keyed by method
        (:meth:`MethodSpec.key`) and power elections by injector (:func:`injector_key`).
        """
        data = {k: v for k, v in asdict(self).items() if k not in ("magnitudes", "methods")}
        data.pop("injectors")
        data["power_stations"] = self.power_stations or self.stations
        data["references"] = list(self.reference_ids())
        data["alphas"] = list(self.alphas)
        return data

    def digest(self) -> str:
        """Identifies the cached cells of this plan; counts are left out, so runs extend.

        The source of the code that builds the elections (the simulator and the reference
        reader, :func:`elections_code_digest`) is part of it; the methods' and injectors'
        code is part of their own keys, so a changed method reuses every other method's cells.
        """
        data = self.describe()
        for count in ("elections", "replicates", "alphas"):
            data.pop(count)
        data["code"] = elections_code_digest()
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _module_source(module: ModuleType) -> bytes:
    """A module's source file as bytes (b"" when it has none, e.g. a module built in memory)."""
    try:
        path = inspect.getsourcefile(module)
    except TypeError:
        return b""
    if path is None:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _classes_digest(cls: type, base: type) -> str:
    """SHA-256 over the source of the modules defining ``cls`` and its ``base`` subclasses."""
    digest = hashlib.sha256()
    modules = sorted({c.__module__ for c in cls.__mro__ if issubclass(c, base)})
    for name in modules:
        module = sys.modules.get(name)
        digest.update(name.encode())
        digest.update(b"\0")
        if module is not None:
            digest.update(_module_source(module))
    return digest.hexdigest()[:16]


def method_code_digest(cls: type[Method]) -> str:
    """The digest of a method's own code: the modules of its class and of its base classes.

    The base classes include :class:`~pollwatch.forensics.base.Method`, so
    ``forensics/base.py`` is always part of it; other methods' modules never are.
    """
    return _classes_digest(cls, Method)


def elections_code_digest() -> str:
    """The digest of the code that builds the planned elections (simulator, reference units)."""
    from pollwatch.calibration import references
    from pollwatch.forensics.spikes import read_qss_reference
    from pollwatch.synthetic import simulator as simulate

    digest = hashlib.sha256()
    for module in (simulate, references):
        digest.update(module.__name__.encode())
        digest.update(_module_source(module))
    # one reference (Canada 2011) is read by a function of a method's module: its source alone
    digest.update(inspect.getsource(read_qss_reference).encode())
    return digest.hexdigest()[:16]


def injector_key(name: str, magnitude: float) -> str:
    """The injector's part of a power election's cache key: name, magnitude, its code."""
    cls = INJECTORS.get(name)
    text = json.dumps([name, float(magnitude), _classes_digest(cls, Injector)])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


#: the simulator of the clean elections, as the docs page names it
SIMULATOR = "pollwatch.synthetic.simulator.simulate_clean"


class ReferenceUnitLike(Protocol):
    """What the harness needs of a reference unit (see ``calibration.references``)."""

    @property
    def reference(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def election(self) -> Election: ...


@dataclass(frozen=True)
class Cell:
    """One election to build and test; ``key`` names it (and its cache file)."""

    kind: str  # "clean" | "power" | "reference" | "whole"
    index: int  # simulation number, replicate, or unit number within its reference
    injector: str = ""
    level: str = ""  # "low" | "medium" | "high"
    magnitude: float = 0.0
    reference: str = ""

    @property
    def key(self) -> str:
        if self.kind == "clean":
            return f"clean-{self.index:06d}"
        if self.kind == "power":
            return f"power-{self.injector}-{self.level}-{self.index:04d}"
        if self.kind == "whole":
            return f"whole-{self.reference}"
        return f"reference-{self.reference}-{self.index:04d}"

    def seed_sequence(self, plan_seed: int) -> np.random.SeedSequence:
        """The cell's own seed sequence, from the plan seed and the cell's identity."""
        parts = (self.kind, self.injector, self.level, self.reference)
        spawn_key = (*(_stable_int(p) for p in parts), self.index)
        return np.random.SeedSequence(plan_seed, spawn_key=spawn_key)


def cell_seed(cell: Cell, plan_seed: int, stream: int) -> int:
    """An integer seed for one of a cell's random streams (0 simulation, 1 injection, 2 methods)."""
    child = cell.seed_sequence(plan_seed).spawn(3)[stream]
    return int(child.generate_state(1, dtype=np.uint64)[0])


def plan_cells(plan: CalibrationPlan, units: Sequence[ReferenceUnitLike] = ()) -> list[Cell]:
    """Every cell of the plan, clean simulations first, then power, then reference units.

    A unit of kind ``"whole"`` (the whole reference election) becomes the ``whole-<id>`` cell;
    the others are numbered within their reference. One cell per unit, in the units' order.
    """
    cells = [Cell("clean", i) for i in range(plan.elections)]
    for name, levels in plan.injector_magnitudes().items():
        for level, magnitude in zip(LEVELS, levels, strict=True):
            cells += [
                Cell("power", r, injector=name, level=level, magnitude=magnitude)
                for r in range(plan.replicates)
            ]
    counters: dict[str, int] = {}
    for unit in units:
        if unit.kind == "whole":
            cells.append(Cell("whole", 0, reference=unit.reference))
            continue
        index = counters.get(unit.reference, 0)
        counters[unit.reference] = index + 1
        cells.append(Cell("reference", index, reference=unit.reference))
    return cells


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _simulate(plan: CalibrationPlan, cell: Cell, stations: int) -> Election:
    from pollwatch.synthetic.simulator import simulate_clean

    return simulate_clean(
        stations=stations,
        candidates=plan.candidates,
        regions=plan.regions,
        seed=cell_seed(cell, plan.seed, 0),
        election_id=f"calibration-{cell.key}",
    )


def run_cell(
    plan: CalibrationPlan,
    cell: Cell,
    methods: Sequence[MethodSpec],
    election: Election | None = None,
) -> dict[str, Any]:
    """Build the cell's election once, run every method of ``methods`` on it, return the record.

    Reference and whole-reference cells take their ``election``; clean and power cells
    simulate theirs. The record has the election's fields and, per method, its result
    (``methods[name]``: p-value, statistic, effect, sample size, stations flagged, skipped;
    on power elections, for methods that score stations, ``scored``: flagged, labelled and
    true positives against the injector's labels) and its run time (``timings[name]``).
    """
    labelled: tuple[str, ...] | None = None
    if cell.kind == "clean":
        election = _simulate(plan, cell, plan.stations)
    elif cell.kind == "power":
        base = _simulate(plan, cell, plan.power_stations or plan.stations)
        injector = INJECTORS.get(cell.injector)(share=plan.share, magnitude=cell.magnitude)
        rng = np.random.default_rng(cell_seed(cell, plan.seed, 1))
        election, labels = injector.apply(base, rng)
        labelled = labels.stations
    elif election is None:
        raise PollwatchError(f"cell {cell.key}: a reference cell needs its election")
    method_seed = cell_seed(cell, plan.seed, 2) % (2**31)
    results: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    for spec in methods:
        start = time.perf_counter()
        record: dict[str, Any] = {
            "p_value": None,
            "statistic": None,
            "effect": None,
            "sample_size": None,
            "flagged": None,
            "skipped": None,
        }
        try:
            result = spec.build(method_seed).run(election)
        except MethodNotApplicable as exc:
            record["skipped"] = exc.one_line()
        except PollwatchError as exc:
            record["skipped"] = f"failed: {exc.one_line()}"
        else:
            record["p_value"] = _finite(result.p_value)
            record["statistic"] = _finite(result.statistic)
            record["effect"] = _finite(result.effect)
            record["sample_size"] = int(result.sample_size)
            record["flagged"] = len(result.flagged)
            if spec.cls.scores_stations and labelled is not None:
                truth = set(labelled)
                record["scored"] = {
                    "flagged": len(result.flagged),
                    "labelled": len(truth),
                    "true_positives": len(truth.intersection(result.flagged)),
                }
        results[spec.name] = record
        timings[spec.name] = round(time.perf_counter() - start, 4)
    output: dict[str, Any] = _election_fields(cell, election)
    output["methods"] = results
    output["timings"] = timings
    return output


def _election_fields(cell: Cell, election: Election) -> dict[str, Any]:
    """What a record says of its election: key, kind, id, size, injector or reference."""
    fields: dict[str, Any] = {
        "key": cell.key,
        "kind": cell.kind,
        "election": election.id,
        "stations": len(election),
    }
    if cell.kind == "power":
        fields.update(injector=cell.injector, level=cell.level, magnitude=cell.magnitude)
    if cell.kind in ("reference", "whole"):
        fields["reference"] = cell.reference
    return fields


# --- the cell cache ---------------------------------------------------------------------------
#: the fields of a cell's result (one method on one election)
_RESULT_FIELDS = ("p_value", "statistic", "effect", "sample_size", "flagged", "skipped")


class CellCache:
    """Finished cells of one plan as JSON files, one per method and election (written
    atomically): ``<folder>/cells/<method>/<method key>/<election>.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, spec: MethodSpec, method_key: str, cell: Cell) -> Path:
        name = cell.key
        if cell.kind == "power":
            name += f"-{injector_key(cell.injector, cell.magnitude)}"
        return self.folder / "cells" / spec.name / method_key / f"{name}.json"

    def load(self, spec: MethodSpec, method_key: str, cell: Cell) -> dict[str, Any] | None:
        """The cached cell, or None when absent or damaged (then it is recomputed)."""
        try:
            data = json.loads(self.path(spec, method_key, cell).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if (
            not isinstance(data, dict)
            or data.get("key") != cell.key
            or data.get("method") != spec.name
            or not isinstance(data.get("result"), dict)
            or not all(f in data["result"] for f in _RESULT_FIELDS)
        ):
            return None
        return data

    def store(self, spec: MethodSpec, method_key: str, cell: Cell, data: Mapping[str, Any]) -> None:
        target = self.path(spec, method_key, cell)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(target, data, sort_keys=True)


def _split(record: Mapping[str, Any], name: str, method_key: str) -> dict[str, Any]:
    """One method's cell out of an election's record (what the cache stores)."""
    data = {k: v for k, v in record.items() if k not in ("methods", "timings")}
    data["method"] = name
    data["method_key"] = method_key
    data["result"] = record["methods"][name]
    data["seconds"] = record.get("timings", {}).get(name)
    return data


def _join(record: dict[str, Any], cached: Mapping[str, Any]) -> None:
    """Put one method's cell into the election's record (made from the cell if empty)."""
    if not record:
        record.update({k: v for k, v in cached.items() if k not in _CELL_ONLY})
        record["methods"] = {}
        record["timings"] = {}
    name = str(cached["method"])
    record["methods"][name] = cached["result"]
    record["timings"][name] = cached.get("seconds")


_CELL_ONLY = ("method", "method_key", "result", "seconds")


#: progress(cells done, cells in total, key of the election just finished, whether computed)
Progress = Callable[[int, int, str, bool], None]


@dataclass
class CalibrationRun:
    """The records of every election of a run, and how the run went.

    ``records`` maps an election's key to its record (:func:`run_cell`'s shape, every planned
    method in ``methods``); ``computed`` and ``cached`` count cells (one method on one
    election); ``elections`` counts the elections built.
    """

    plan: CalibrationPlan
    records: dict[str, dict[str, Any]]
    computed: int
    cached: int
    seconds: float
    executor: str
    workers: int
    reference_units: dict[str, dict[str, Any]] = field(default_factory=dict)
    folder: Path | None = None
    elections: int = 0

    @property
    def elections_per_second(self) -> float | None:
        """Elections built (and tested by the methods that needed them) per second of wall time."""
        if not self.elections or self.seconds <= 0:
            return None
        return self.elections / self.seconds


def _load_units(plan: CalibrationPlan, settings: Settings | None) -> list[ReferenceUnitLike]:
    ids = plan.reference_ids()
    if not ids:
        return []
    from pollwatch.calibration.references import reference_units

    if settings is None:
        from pollwatch.settings import load_settings

        settings = load_settings()
    return list(
        reference_units(
            settings,
            references=ids,
            subsamples=plan.subsamples,
            subsample_fraction=plan.subsample_fraction,
            seed=plan.seed,
            whole=True,
        )
    )


def run_calibration(
    plan: CalibrationPlan,
    *,
    settings: Settings | None = None,
    executor: str = "serial",
    workers: int = 1,
    address: str | None = None,
    cache_dir: Path | None = None,
    units: Iterable[ReferenceUnitLike] | None = None,
    progress: Progress | None = None,
) -> CalibrationRun:
    """Run (or resume) every cell of ``plan`` and return the records of its elections.

    ``executor`` is "serial" (one process, the reference) or "ray" (``workers`` local CPUs, or
    the cluster at ``address``). Cells are cached under ``cache_dir`` (default
    ``<home>/calibration/<plan digest>``; None settings load the usual ones); an election is
    built only when a method still lacks its cell, and then once for all such methods.
    ``units`` replaces the reference units loaded from the data mirror (tests pass their own).
    """
    from pollwatch.calibration.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise PollwatchError(
            f"unknown executor {executor!r}", hint=f"use one of {', '.join(sorted(EXECUTORS))}"
        )
    if workers < 1:
        raise PollwatchError(f"workers={workers} must be at least 1", hint="e.g. --workers 2")
    methods = plan.method_specs()
    method_keys = {spec.name: spec.key() for spec in methods}
    if cache_dir is None:
        if settings is None:
            from pollwatch.settings import load_settings

            settings = load_settings()
        cache_dir = settings.calibration_dir / plan.digest()
    unit_list = list(units) if units is not None else _load_units(plan, settings)
    cells = plan_cells(plan, unit_list)
    unit_cells = cells[len(cells) - len(unit_list) :]
    elections = {cell.key: unit.election for cell, unit in zip(unit_cells, unit_list, strict=True)}
    unit_info: dict[str, dict[str, Any]] = {}
    for cell, unit in zip(unit_cells, unit_list, strict=True):
        unit_info[cell.key] = {
            "reference": unit.reference,
            "kind": unit.kind,
            "name": unit.name,
            "stations": len(unit.election),
        }
    cache = CellCache(cache_dir)
    records: dict[str, dict[str, Any]] = {cell.key: {} for cell in cells}
    by_key = {cell.key: cell for cell in cells}
    # the methods each election still needs, grouped so that one executor call runs a group
    groups: dict[tuple[str, ...], list[Cell]] = {}
    cached_cells = 0
    for cell in cells:
        missing: list[str] = []
        for spec in methods:
            found = cache.load(spec, method_keys[spec.name], cell)
            if found is None:
                missing.append(spec.name)
            else:
                _join(records[cell.key], found)
                cached_cells += 1
        if missing:
            groups.setdefault(tuple(missing), []).append(cell)
    total = len(cells) * len(methods)
    done = cached_cells
    if progress is not None:
        progress(done, total, "", False)
    specs = {spec.name: spec for spec in methods}

    def finished(record: dict[str, Any]) -> None:
        nonlocal done
        key = str(record["key"])
        cell = by_key[key]
        for name in record["methods"]:
            spec = specs[name]
            part = _split(record, name, method_keys[name])
            cache.store(spec, method_keys[name], cell, part)
            _join(records[key], part)
        done += len(record["methods"])
        if progress is not None:
            progress(done, total, key, True)

    start = time.perf_counter()
    built = 0
    for names, pending in groups.items():
        chosen = [specs[name] for name in names]
        EXECUTORS[executor](plan, pending, chosen, elections, finished, workers, address)
        built += len(pending)
    seconds = time.perf_counter() - start
    order = [spec.name for spec in methods]
    for record in records.values():
        record["methods"] = {name: record["methods"][name] for name in order}
        record["timings"] = {name: record["timings"].get(name) for name in order}
    return CalibrationRun(
        plan=plan,
        records={cell.key: records[cell.key] for cell in cells},
        computed=total - cached_cells,
        cached=cached_cells,
        seconds=seconds,
        executor=executor,
        workers=workers,
        reference_units=unit_info,
        folder=cache_dir,
        elections=built,
    )


# --- aggregation ------------------------------------------------------------------------------
def _rate(rejections: int, tests: int) -> dict[str, Any]:
    interval = wilson_interval(rejections, tests)
    return {
        "rejections": rejections,
        "tests": tests,
        "rate": rejections / tests if tests else None,
        "interval": [round(interval[0], 6), round(interval[1], 6)] if interval else None,
    }


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q, method="higher" if q >= 0.5 else "lower"))


def _thresholds(values: np.ndarray, alpha: float, tail: str) -> Any:
    if values.size == 0:
        return None
    if tail == "upper":
        return _quantile(values, 1 - alpha)
    if tail == "lower":
        return _quantile(values, alpha)
    return [_quantile(values, alpha / 2), _quantile(values, 1 - alpha / 2)]


def _beyond(statistic: float, threshold: Any, tail: str) -> bool:
    if tail == "upper":
        return bool(statistic > threshold)
    if tail == "lower":
        return bool(statistic < threshold)
    low, high = threshold
    return bool(statistic < low or statistic > high)


def _decision(name: str, cls: type[Method] | None, clean: list[dict[str, Any]]) -> str:
    tail = getattr(cls, "calibration_tail", "upper")
    ran = [r for r in clean if r["skipped"] is None]
    if any(r["p_value"] is not None for r in ran):
        return "p-value"
    if tail == "none":
        return "none"
    return "empirical"


def build_tables(
    run: CalibrationRun,
    *,
    command: str,
    date: str | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Aggregate a run into one table document per planned method (``pollwatch-calibration/2``).

    ``command`` is the exact command that measured them; ``descriptions`` gives a line per
    reference id (what a unit is and why the election is clean; default: those of
    :data:`pollwatch.calibration.references.REFERENCE_DESCRIPTIONS`). The documents are keyed
    by method name, in the plan's order.
    """
    if descriptions is None:
        from pollwatch.calibration.references import REFERENCE_DESCRIPTIONS

        descriptions = REFERENCE_DESCRIPTIONS
    plan = run.plan
    records = list(run.records.values())
    clean = [r for r in records if r["kind"] == "clean"]
    power = [r for r in records if r["kind"] == "power"]
    reference = [r for r in records if r["kind"] == "reference"]
    whole = [r for r in records if r["kind"] == "whole"]
    alphas = [f"{a:g}" for a in plan.alphas]
    unit_kind = {
        key: str(info["kind"])
        for key, info in run.reference_units.items()
        if info["kind"] != "whole"
    }
    when = date or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    environment = numeric_versions()
    plan_digest = plan.digest()
    settings = _settings_of_plan(plan)
    magnitudes = plan.injector_magnitudes()
    meanings = {k: INJECTORS.get(k).magnitude_meaning for k in magnitudes}
    units = _reference_units(run, reference, descriptions)
    documents: dict[str, dict[str, Any]] = {}
    for spec in plan.method_specs():
        name = spec.name
        cls = spec.cls
        tail = str(getattr(cls, "calibration_tail", "upper"))
        clean_results = [r["methods"][name] for r in clean if name in r["methods"]]
        decision = _decision(name, cls, clean_results)
        entry: dict[str, Any] = {"decision": decision}
        thresholds: dict[str, Any] = {}
        statistics = np.array(
            [
                r["statistic"]
                for r in clean_results
                if r["skipped"] is None and r["statistic"] is not None
            ],
            dtype=float,
        )
        if decision == "empirical":
            entry["tail"] = tail
            thresholds = {
                key: _thresholds(statistics, alpha, tail)
                for key, alpha in zip(alphas, plan.alphas, strict=True)
            }
            entry["thresholds"] = thresholds
        entry["parameters"] = spec.calibrated_parameters()

        judge = _Judge(name, decision, tail, thresholds, alphas, plan.alphas)
        entry["simulated"] = (
            _leave_one_out(clean_results, plan.alphas, alphas, tail)
            if decision == "empirical"
            else judge.rates(clean)
        )
        pooled = judge.rates(reference)
        pooled["by_reference"] = {
            ref: judge.rates([r for r in reference if r["reference"] == ref])
            for ref in sorted({r["reference"] for r in reference})
        }
        # Subsamples of one election overlap, so they are not independent of each other or of
        # its regions: their rates are shown apart.
        pooled["by_kind"] = {
            kind: judge.rates([r for r in reference if unit_kind.get(r["key"]) == kind])
            for kind in sorted(set(unit_kind.values()))
        }
        pooled["whole"] = {
            str(r["reference"]): _whole(r, name)
            for r in sorted(whole, key=lambda r: str(r["reference"]))
            if name in r["methods"]
        }
        entry["references"] = pooled
        entry["power"] = {
            injector: {
                f"{magnitude:g}": judge.rates(
                    [r for r in power if r["injector"] == injector and r["level"] == level]
                )
                for level, magnitude in zip(LEVELS, levels, strict=True)
            }
            for injector, levels in magnitudes.items()
        }
        skipped = [r["methods"][name]["skipped"] for r in records if name in r["methods"]]
        entry["skipped"] = sum(1 for s in skipped if s is not None)
        reasons = sorted({s for s in skipped if s is not None})
        entry["skipped_reasons"] = reasons[:3]
        entry["unreliable"], entry["unreliable_reason"] = _unreliable(entry, alphas, plan.alphas)
        document: dict[str, Any] = {
            "format": TABLE_FORMAT,
            "method": name,
            "measured": {
                "command": command,
                "date": when,
                "pollwatch": __version__,
                "environment": dict(environment),
                "code": method_code_digest(cls),
                "plan_digest": plan_digest,
            },
            "plan": settings,
            "injectors": dict(meanings),
            "reference_units": units,
            "entry": entry,
        }
        if cls.scores_stations:
            document["precision_recall"] = _precision_recall(name, power, magnitudes)
        documents[name] = document
    return documents


def _precision_recall(
    name: str,
    power: Sequence[Mapping[str, Any]],
    magnitudes: Mapping[str, tuple[float, float, float]],
) -> dict[str, Any]:
    """Precision and recall of one method's flagged stations, per injector and magnitude."""
    out: dict[str, Any] = {}
    for injector, levels in magnitudes.items():
        out[injector] = {}
        for level, magnitude in zip(LEVELS, levels, strict=True):
            scored = [
                r["methods"][name]["scored"]
                for r in power
                if r["injector"] == injector
                and r["level"] == level
                and "scored" in r["methods"].get(name, {})
            ]
            flagged = sum(t["flagged"] for t in scored)
            labelled = sum(t["labelled"] for t in scored)
            hits = sum(t["true_positives"] for t in scored)
            out[injector][f"{magnitude:g}"] = {
                "precision": hits / flagged if flagged else None,
                "recall": hits / labelled if labelled else None,
                "elections": len(scored),
                "flagged": flagged,
                "labelled": labelled,
                "true_positives": hits,
            }
    return out


def _reference_units(
    run: CalibrationRun,
    reference: Sequence[Mapping[str, Any]],
    descriptions: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    """Per reference id: its units, their kinds, the whole election's stations, a description."""
    units: dict[str, dict[str, Any]] = {}
    for info in run.reference_units.values():
        block = units.setdefault(
            info["reference"],
            {"units": 0, "description": descriptions.get(info["reference"], "")},
        )
        if info["kind"] == "whole":
            block["whole_stations"] = info["stations"]
            continue
        block["units"] += 1
        block.setdefault("kinds", {})
        block["kinds"][info["kind"]] = block["kinds"].get(info["kind"], 0) + 1
    if not units:
        for r in reference:
            block = units.setdefault(
                r["reference"],
                {"units": 0, "description": descriptions.get(r["reference"], "")},
            )
            block["units"] += 1
    return units


def _whole(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One method's numbers on a whole reference election (see :func:`build_tables`)."""
    result = record["methods"][name]
    out: dict[str, Any] = {
        "statistic": result.get("statistic"),
        "effect": result.get("effect"),
        "p_value": result.get("p_value"),
        "stations": int(record.get("stations") or 0),
        "sample_size": result.get("sample_size"),
    }
    if result.get("skipped") is not None:
        out["skipped"] = result["skipped"]
    return out


# --- plans of tables ----------------------------------------------------------------------------
#: the plan settings a table document records (``plan``) and that :func:`plan_differences` compares
PLAN_SETTINGS = (
    "elections",
    "stations",
    "regions",
    "candidates",
    "replicates",
    "power_stations",
    "share",
    "magnitudes",
    "references",
    "subsamples",
    "subsample_fraction",
    "seed",
    "alphas",
)


def _settings_of_plan(plan: CalibrationPlan) -> dict[str, Any]:
    references = sorted(plan.reference_ids())
    return {
        "elections": plan.elections,
        "stations": plan.stations,
        "regions": plan.regions,
        "candidates": plan.candidates,
        "replicates": plan.replicates,
        "power_stations": plan.power_stations or plan.stations,
        "share": plan.share,
        "magnitudes": {k: list(v) for k, v in sorted(plan.injector_magnitudes().items())},
        "references": references,
        "subsamples": plan.subsamples if references else 0,
        "subsample_fraction": plan.subsample_fraction,
        "seed": plan.seed,
        "alphas": [f"{a:g}" for a in plan.alphas],
    }


def plan_settings(source: Mapping[str, Any] | CalibrationPlan) -> dict[str, Any]:
    """The plan settings (:data:`PLAN_SETTINGS`) of a plan, or those a table document records."""
    if isinstance(source, CalibrationPlan):
        return _settings_of_plan(source)
    recorded = source.get("plan")
    plan: Mapping[str, Any] = recorded if isinstance(recorded, Mapping) else source
    return {key: plan.get(key) for key in PLAN_SETTINGS}


def _word(key: str, value: Any) -> str:
    if key == "references":
        return f"references={','.join(value or []) or 'none'}"
    if key == "magnitudes":
        return "magnitudes=" + ";".join(
            f"{k}:{'/'.join(f'{m:g}' for m in v)}" for k, v in (value or {}).items()
        )
    if key == "alphas":
        return f"alphas={','.join(value or [])}"
    return f"{key}={value}"


def plan_differences(
    have: Mapping[str, Any] | CalibrationPlan, want: Mapping[str, Any] | CalibrationPlan
) -> tuple[str, str]:
    """Where two plans (or table documents) differ: ``("elections=2", "elections=200")``.

    Each side lists its settings that differ from the other's (:data:`PLAN_SETTINGS` order);
    two empty strings when they agree.
    """
    first, second = plan_settings(have), plan_settings(want)
    keys = [key for key in PLAN_SETTINGS if first.get(key) != second.get(key)]
    return (
        ", ".join(_word(key, first.get(key)) for key in keys),
        ", ".join(_word(key, second.get(key)) for key in keys),
    )


@dataclass(frozen=True)
class _Judge:
    """Turns a method's cell records into rejections at each level (see :func:`build_tables`)."""

    name: str
    decision: str
    tail: str
    thresholds: Mapping[str, Any]
    keys: Sequence[str]
    alphas: Sequence[float]

    def rejects(self, result: Mapping[str, Any], key: str, alpha: float) -> bool | None:
        """True or False, or None when the result is not a test at this level."""
        if result["skipped"] is not None:
            return None
        if self.decision == "p-value":
            p = result["p_value"]
            return None if p is None else bool(p < alpha)
        if self.decision == "empirical":
            statistic = result["statistic"]
            threshold = self.thresholds.get(key)
            if statistic is None or threshold is None:
                return None
            return _beyond(statistic, threshold, self.tail)
        return None

    def rates(self, group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """RATE per level over the cells of ``group`` where the method ran."""
        out: dict[str, Any] = {}
        for key, alpha in zip(self.keys, self.alphas, strict=True):
            verdicts = [
                self.rejects(r["methods"][self.name], key, alpha)
                for r in group
                if self.name in r["methods"]
            ]
            tested = [v for v in verdicts if v is not None]
            out[key] = _rate(sum(tested), len(tested))
        return out


def _leave_one_out(
    results: list[dict[str, Any]], alphas: Sequence[float], keys: Sequence[str], tail: str
) -> dict[str, Any]:
    """Simulated false-positive rate of an empirical method, each election judged by the rest."""
    values = np.array(
        [r["statistic"] for r in results if r["skipped"] is None and r["statistic"] is not None],
        dtype=float,
    )
    out: dict[str, Any] = {}
    for key, alpha in zip(keys, alphas, strict=True):
        if values.size < 2:
            out[key] = _rate(0, 0)
            continue
        rejections = 0
        for i in range(values.size):
            others = np.delete(values, i)
            rejections += _beyond(values[i], _thresholds(others, alpha, tail), tail)
        out[key] = _rate(rejections, int(values.size))
    return out


def _unreliable(
    entry: Mapping[str, Any], keys: Sequence[str], alphas: Sequence[float]
) -> tuple[bool, str]:
    """Whether a clean false-positive rate is above its level beyond sampling error, and where.

    An empirical method's thresholds come from the clean simulations, so its simulated rate is
    the level by construction (up to 1/n with few simulations) and only the references count.
    """
    blocks = [("clean reference units", entry["references"])]
    if entry["decision"] == "p-value":
        blocks.insert(0, ("clean simulations", entry["simulated"]))
    for where, block in blocks:
        for key, alpha in zip(keys, alphas, strict=True):
            rate = block.get(key) or {}
            interval = rate.get("interval")
            if interval and interval[0] > alpha:
                low, high = interval
                return True, (
                    f"flags {100 * rate['rate']:.0f}% of {rate['tests']:,} {where} at "
                    f"α = {key} (95% interval {100 * low:.0f}-{100 * high:.0f}%)"
                )
    return False, ""


def table_json(table: Mapping[str, Any]) -> str:
    """The table as JSON text: indented, with each innermost object or list on one line.

    Keeps the shipped file small and its diffs readable (one rate per line).
    """
    import re

    text = json.dumps(table, ensure_ascii=False, indent=1)
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\s*\n\s*", " ", m.group()), text)
    text = re.sub(r"\{[^{}]*\}", lambda m: re.sub(r"\s*\n\s*", " ", m.group()), text)
    return text + "\n"


def write_tables(
    documents: Mapping[str, Mapping[str, Any]],
    folder: Path,
    methods: Iterable[str] | None = None,
) -> list[Path]:
    """Write each method's table document to ``<folder>/<method>.json`` (atomically).

    Only the methods of ``documents`` (or of ``methods``, a subset) are written; every other
    file in ``folder`` is left as it was. Returns the files written.
    """
    chosen = list(documents) if methods is None else list(methods)
    written = []
    for name in chosen:
        document = documents[name]
        if document.get("format") != TABLE_FORMAT or document.get("method") != name:
            raise PollwatchError(
                f"the table document of {name!r} is not a {TABLE_FORMAT} document of it",
                hint="build it with pollwatch.calibration.harness.build_tables",
            )
        target = table_file(folder, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, table_json(document))
        written.append(target)
    return written
