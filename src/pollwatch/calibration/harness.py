"""The calibration harness: false-positive rates, power and triage accuracy of every method.

A :class:`CalibrationPlan` says what to measure; :func:`plan_cells` splits it into **cells**, each
one election to build and every planned method run on it:

* ``clean-<i>``: a clean simulated election
  (:func:`pollwatch.forensics.simulate.simulate_clean`), for false-positive rates and for the
  empirical thresholds of methods without a p-value;
* ``power-<injector>-<level>-<r>``: a fresh clean simulation with one injector
  (:data:`pollwatch.calibration.injectors.INJECTORS`) applied to ``share`` of its stations at
  a low, medium or high magnitude, for power and for the triage's precision and recall against
  the injector's labels;
* ``reference-<id>-<u>``: one unit (a region, state, district or random subsample) of a real
  clean election, from :func:`pollwatch.calibration.references.reference_units`, where each
  unit is one test;
* ``whole-<id>``: the whole reference election, each method run on it once; its statistic,
  effect and p-value are stored (``methods[m]["references"]["whole"][id]``) to show what the
  method says about the real election, and are **not** counted in any rate (one election is
  one sample, and it overlaps every unit of its reference).

Every random draw of a cell derives from the plan's seed and the cell's key
(``numpy.random.SeedSequence(seed, spawn_key=...)``), so any cell can be recomputed alone and
gives the same numbers whichever executor, worker or order ran it. A cell's output is a small
JSON dictionary (per method: p-value, statistic, stations flagged, or the reason it was
skipped), cached under ``<home>/calibration/<plan digest>/cells/<key>.json``; a rerun of the
same plan reuses every cached cell, so an interrupted run resumes where it stopped. The plan
digest leaves out the counts (elections, replicates), so a larger run reuses a smaller one.

:func:`build_table` aggregates cells into the calibration table
(``pollwatch-calibration/1``, read by :mod:`pollwatch.forensics.calibration`):

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
* **triage**: precision = flagged stations that were manipulated / flagged stations, recall =
  manipulated stations flagged / manipulated stations, pooled over the replicates.
* **measured**: per method, the command, date, pollwatch version and code fingerprint of the
  run that measured its entry. :func:`merge_tables` puts the entries of a run over a subset of
  the methods into an existing table, only when both were measured under the same plan
  (:func:`plan_settings`; :func:`check_same_plan` names the settings that differ), and lists
  the run in ``generated["reruns"]``.

Layer: imports results, forensics, settings, errors and registry; never cli, web or reports.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pollwatch import __version__
from pollwatch.calibration.injectors import INJECTORS, Injector
from pollwatch.environment import numeric_versions
from pollwatch.errors import PollwatchError
from pollwatch.forensics.base import METHODS, Method, MethodNotApplicable, method_names
from pollwatch.results.model import Election
from pollwatch.settings import Settings

__all__ = [
    "TABLE_FORMAT",
    "CalibrationPlan",
    "CalibrationRun",
    "Cell",
    "MethodSpec",
    "ReferenceUnitLike",
    "build_table",
    "cell_seed",
    "check_same_plan",
    "default_table_path",
    "merge_tables",
    "plan_cells",
    "plan_settings",
    "run_calibration",
    "run_cell",
    "table_json",
    "wilson_interval",
]

TABLE_FORMAT = "pollwatch-calibration/1"

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
        """Everything that changes a cell's numbers, resolved (JSON-able)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("magnitudes", "methods")}
        data["injectors"] = {k: list(v) for k, v in self.injector_magnitudes().items()}
        data["methods"] = {s.name: s.calibrated_parameters() for s in self.method_specs()}
        data["alphas"] = list(self.alphas)
        return data

    def digest(self) -> str:
        """Identifies the cached cells of this plan; counts are left out, so runs extend.

        The source of the code that makes a cell's numbers (the forensics package, the
        injectors, the references) is part of it, so a changed method never reuses old cells.
        """
        data = self.describe()
        for count in ("elections", "replicates", "alphas"):
            data.pop(count)
        data["code"] = _code_fingerprint()
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _code_fingerprint() -> str:
    """SHA-256 over the sources that decide a cell's numbers (methods, simulator, injectors)."""
    import pollwatch.calibration
    import pollwatch.forensics

    digest = hashlib.sha256()
    forensics = Path(pollwatch.forensics.__file__).parent
    calibration = Path(pollwatch.calibration.__file__).parent
    files = [p for p in sorted(forensics.glob("*.py")) if p.name != "calibration.py"]
    files += [calibration / "injectors.py", calibration / "references.py"]
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


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
    from pollwatch.forensics.simulate import simulate_clean

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
    """Build the cell's election, run every method on it, and return the cell's JSON record.

    Reference and whole-reference cells take their ``election``; clean and power cells
    simulate theirs.
    """
    start = time.perf_counter()
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
    triage_flagged: tuple[str, ...] | None = None
    for spec in methods:
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
            if spec.cls.scores_stations and triage_flagged is None:
                triage_flagged = result.flagged
        results[spec.name] = record
    output: dict[str, Any] = {
        "key": cell.key,
        "kind": cell.kind,
        "election": election.id,
        "stations": len(election),
        "methods": results,
    }
    if cell.kind == "power":
        output.update(injector=cell.injector, level=cell.level, magnitude=cell.magnitude)
    if cell.kind in ("reference", "whole"):
        output["reference"] = cell.reference
    if labelled is not None:
        scorers = method_names("scores_stations")  # loads the built-ins in a fresh worker too
        if triage_flagged is None and scorers:
            try:
                triage_flagged = METHODS.get(scorers[0])().run(election).flagged
            except PollwatchError:
                triage_flagged = None
        if triage_flagged is not None:
            truth = set(labelled)
            output["triage"] = {
                "flagged": len(triage_flagged),
                "labelled": len(truth),
                "true_positives": len(truth.intersection(triage_flagged)),
            }
    output["seconds"] = round(time.perf_counter() - start, 4)
    return output


# --- the cell cache ---------------------------------------------------------------------------
class CellCache:
    """Finished cells of one plan as JSON files, written atomically (temp file, then rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / "cells" / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The cached record, or None when absent or damaged (then it is recomputed)."""
        try:
            data = json.loads(self.path(key).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key or "methods" not in data:
            return None
        return data

    def store(self, record: Mapping[str, Any]) -> None:
        target = self.path(str(record["key"]))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            partial.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
            os.replace(partial, target)
        finally:
            if partial.exists():
                partial.unlink()


#: progress(cells done, cells in total, key of the cell just finished, whether it was computed)
Progress = Callable[[int, int, str, bool], None]


@dataclass
class CalibrationRun:
    """The records of every cell of a run, and how the run went."""

    plan: CalibrationPlan
    records: dict[str, dict[str, Any]]
    computed: int
    cached: int
    seconds: float
    executor: str
    workers: int
    reference_units: dict[str, dict[str, Any]] = field(default_factory=dict)
    folder: Path | None = None

    @property
    def elections_per_second(self) -> float | None:
        """Computed cells (elections built and tested) per second of wall time."""
        if not self.computed or self.seconds <= 0:
            return None
        return self.computed / self.seconds


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
    """Run (or resume) every cell of ``plan`` and return their records.

    ``executor`` is "serial" (one process, the reference) or "ray" (``workers`` local CPUs, or
    the cluster at ``address``). Cells are cached under ``cache_dir`` (default
    ``<home>/calibration/<plan digest>``; None settings load the usual ones). ``units``
    replaces the reference units loaded from the data mirror (tests pass their own).
    """
    from pollwatch.calibration.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise PollwatchError(
            f"unknown executor {executor!r}", hint=f"use one of {', '.join(sorted(EXECUTORS))}"
        )
    if workers < 1:
        raise PollwatchError(f"workers={workers} must be at least 1", hint="e.g. --workers 2")
    methods = plan.method_specs()
    if cache_dir is None:
        if settings is None:
            from pollwatch.settings import load_settings

            settings = load_settings()
        cache_dir = settings.calibration_dir / plan.digest()
    unit_list = list(units) if units is not None else _load_units(plan, settings)
    cells = plan_cells(plan, unit_list)
    elections = {
        cell.key: unit.election
        for cell, unit in zip(cells[len(cells) - len(unit_list) :], unit_list, strict=True)
    }
    unit_info: dict[str, dict[str, Any]] = {}
    for cell, unit in zip(cells[len(cells) - len(unit_list) :], unit_list, strict=True):
        unit_info[cell.key] = {
            "reference": unit.reference,
            "kind": unit.kind,
            "name": unit.name,
            "stations": len(unit.election),
        }
    cache = CellCache(cache_dir)
    records: dict[str, dict[str, Any]] = {}
    pending: list[Cell] = []
    for cell in cells:
        cached = cache.load(cell.key)
        if cached is None:
            pending.append(cell)
        else:
            records[cell.key] = cached
    total = len(cells)
    done = len(records)
    if progress is not None:
        progress(done, total, "", False)

    def finished(record: dict[str, Any]) -> None:
        nonlocal done
        cache.store(record)
        records[str(record["key"])] = record
        done += 1
        if progress is not None:
            progress(done, total, str(record["key"]), True)

    start = time.perf_counter()
    if pending:
        EXECUTORS[executor](plan, pending, methods, elections, finished, workers, address)
    seconds = time.perf_counter() - start
    return CalibrationRun(
        plan=plan,
        records={cell.key: records[cell.key] for cell in cells},
        computed=len(pending),
        cached=total - len(pending),
        seconds=seconds,
        executor=executor,
        workers=workers,
        reference_units=unit_info,
        folder=cache_dir,
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


def build_table(
    run: CalibrationRun,
    *,
    command: str,
    date: str | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Aggregate a run into the calibration table (``pollwatch-calibration/1``).

    ``command`` is the exact command that regenerates the table; ``descriptions`` gives a line
    per reference id (what a unit is and why the election is clean; default: those of
    :data:`pollwatch.calibration.references.REFERENCE_DESCRIPTIONS`).
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
    code = _code_fingerprint()
    measured = {
        "command": command,
        "date": when,
        "pollwatch": __version__,
        "code": code,
        "plan_digest": plan.digest(),
    }
    specs = plan.method_specs()
    magnitudes = plan.injector_magnitudes()
    methods: dict[str, Any] = {}
    for spec in specs:
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
        entry["measured"] = dict(measured)
        methods[name] = entry
    triage: dict[str, Any] = {}
    for injector, levels in magnitudes.items():
        triage[injector] = {}
        for level, magnitude in zip(LEVELS, levels, strict=True):
            scored = [
                r["triage"]
                for r in power
                if r["injector"] == injector and r["level"] == level and "triage" in r
            ]
            flagged = sum(t["flagged"] for t in scored)
            labelled = sum(t["labelled"] for t in scored)
            hits = sum(t["true_positives"] for t in scored)
            triage[injector][f"{magnitude:g}"] = {
                "precision": hits / flagged if flagged else None,
                "recall": hits / labelled if labelled else None,
                "elections": len(scored),
                "flagged": flagged,
                "labelled": labelled,
                "true_positives": hits,
            }
    units: dict[str, dict[str, Any]] = {}
    for info in run.reference_units.values():
        block = units.setdefault(
            info["reference"],
            {"units": 0, "description": (descriptions or {}).get(info["reference"], "")},
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
                {"units": 0, "description": (descriptions or {}).get(r["reference"], "")},
            )
            block["units"] += 1
    return {
        "format": TABLE_FORMAT,
        "generated": {
            "command": command,
            "date": when,
            "pollwatch": __version__,
            "code": code,
            "environment": numeric_versions(),
            "seed": plan.seed,
            "simulated": {
                "elections": len(clean),
                "stations": plan.stations,
                "regions": plan.regions,
                "candidates": plan.candidates,
                "simulator": "pollwatch.forensics.simulate.simulate_clean",
            },
            "power": {
                "share": plan.share,
                "replicates": plan.replicates,
                "stations": plan.power_stations or plan.stations,
                "magnitudes": {k: list(v) for k, v in magnitudes.items()},
                "meanings": {k: INJECTORS.get(k).magnitude_meaning for k in magnitudes},
            },
            "references": units,
            "alphas": alphas,
            "plan_digest": plan.digest(),
            "plan": _settings_of_plan(plan),
        },
        "methods": methods,
        "triage": triage,
    }


def _whole(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One method's numbers on a whole reference election (see :func:`build_table`)."""
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


# --- plans of tables, and merging a subset run into a table ------------------------------------
#: the plan settings two tables must share before one's entries may replace the other's
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


def plan_settings(table: Mapping[str, Any] | CalibrationPlan) -> dict[str, Any]:
    """The plan settings (:data:`PLAN_SETTINGS`) a table was measured under, or a plan's.

    Tables written since the ``plan`` block existed carry it; for older ones the settings are
    read back from the ``generated`` block (subsamples: the most subsample units of any
    reference; the subsample fraction the command line cannot change, 0.25).
    """
    if isinstance(table, CalibrationPlan):
        return _settings_of_plan(table)
    generated: Mapping[str, Any] = table.get("generated", {})
    recorded = generated.get("plan")
    if isinstance(recorded, Mapping):
        return {key: recorded.get(key) for key in PLAN_SETTINGS}
    simulated = generated.get("simulated", {})
    power = generated.get("power", {})
    references: Mapping[str, Any] = generated.get("references", {})
    subsamples = [
        int((info.get("kinds") or {}).get("subsample", 0)) for info in references.values()
    ]
    return {
        "elections": simulated.get("elections"),
        "stations": simulated.get("stations"),
        "regions": simulated.get("regions"),
        "candidates": simulated.get("candidates"),
        "replicates": power.get("replicates"),
        "power_stations": power.get("stations"),
        "share": power.get("share"),
        "magnitudes": {
            k: [float(m) for m in v] for k, v in sorted((power.get("magnitudes") or {}).items())
        },
        "references": sorted(references),
        "subsamples": max(subsamples, default=0),
        "subsample_fraction": 0.25,
        "seed": generated.get("seed"),
        "alphas": list(generated.get("alphas", [])),
    }


def _word(key: str, value: Any) -> str:
    if key == "references":
        return f"references={','.join(value) or 'none'}"
    if key == "magnitudes":
        return "magnitudes=" + ";".join(
            f"{k}:{'/'.join(f'{m:g}' for m in v)}" for k, v in value.items()
        )
    if key == "alphas":
        return f"alphas={','.join(value)}"
    return f"{key}={value}"


def check_same_plan(
    table: Mapping[str, Any], plan: CalibrationPlan | Mapping[str, Any], *, where: str = "the table"
) -> None:
    """Raise a one-line :class:`PollwatchError` naming the settings where they differ.

    ``plan`` is the plan of a run, or the table that run produced.
    """
    have = plan_settings(table)
    want = plan_settings(plan)
    differ = [key for key in PLAN_SETTINGS if have.get(key) != want.get(key)]
    if not differ:
        return
    shipped = ", ".join(_word(key, have.get(key)) for key in differ)
    this = ", ".join(_word(key, want.get(key)) for key in differ)
    raise PollwatchError(
        f"{where} was measured with {shipped}; this run has {this}, so its entries cannot "
        "replace the table's",
        hint="rerun the methods with the table's settings, or leave out --method to write a "
        "whole new table",
    )


def merge_tables(table: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` with the methods of ``update`` (a run over some methods) put in its place.

    Both must have been measured under the same plan (:func:`check_same_plan` raises
    otherwise). The entries of ``update``'s methods replace the table's (new ones are
    appended), every other entry is kept and keeps (or gains, from the table's ``generated``
    block) its ``measured`` record; the ``triage`` block is replaced when ``update`` measured
    the ``triage`` method; the reference descriptions and whole-election sizes are
    ``update``'s; ``generated["reruns"]`` lists the run (command, date, methods, code). The
    ``generated`` command stays the one that regenerates the whole table.
    """
    import copy

    check_same_plan(table, update)
    merged: dict[str, Any] = copy.deepcopy(dict(table))
    generated: dict[str, Any] = merged.setdefault("generated", {})
    base = {
        "command": generated.get("command", ""),
        "date": generated.get("date", ""),
        "pollwatch": generated.get("pollwatch", ""),
        "code": generated.get("code"),
        "plan_digest": generated.get("plan_digest"),
    }
    methods: dict[str, Any] = merged.setdefault("methods", {})
    for entry in methods.values():
        entry.setdefault("measured", dict(base))
    new_generated: Mapping[str, Any] = update.get("generated", {})
    new_methods: Mapping[str, Any] = update.get("methods", {})
    for name, entry in new_methods.items():
        methods[name] = copy.deepcopy(dict(entry))
    if any(METHODS.get(n).scores_stations for n in new_methods if n in METHODS) and (
        "triage" in update
    ):
        merged["triage"] = copy.deepcopy(dict(update["triage"]))
    if new_generated.get("references"):
        generated["references"] = copy.deepcopy(dict(new_generated["references"]))
    generated["plan"] = plan_settings(table)
    generated.setdefault("reruns", []).append(
        {
            "command": new_generated.get("command", ""),
            "date": new_generated.get("date", ""),
            "pollwatch": new_generated.get("pollwatch", ""),
            "code": new_generated.get("code"),
            "environment": new_generated.get("environment", {}),
            "methods": list(new_methods),
        }
    )
    return merged


@dataclass(frozen=True)
class _Judge:
    """Turns a method's cell records into rejections at each level (see :func:`build_table`)."""

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


def default_table_path() -> Path:
    """The shipped table, ``calibration.json`` beside :mod:`pollwatch.forensics.calibration`."""
    from importlib import resources

    return Path(str(resources.files("pollwatch.forensics").joinpath("calibration.json")))
