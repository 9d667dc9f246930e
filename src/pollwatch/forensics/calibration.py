"""Each method's measured calibration, carried by every result it produces.

``pollwatch calibrate`` measures, per method, how often it flags clean elections (simulated
ones and real clean references split into regions and subsamples) and how often it flags
elections with planted manipulation, and writes one **table file per method** (format
``pollwatch-calibration/2``, described in ``docs/calibration.md``). The tables shipped with
pollwatch live in the calibration data folder, ``pollwatch/calibration/tables/<method>.json``
(:func:`shipped_tables_folder`); a user's own, written by ``pollwatch calibrate -m NAME
--write-table``, in ``<home>/calibration/tables/`` (:func:`user_tables_folder`), where a file
replaces the shipped one of the same method; ``pollwatch --home X`` makes X that home for the
whole command (:func:`tables_home`), so tables written there are read back from there.
:func:`calibration_table` reads both into a :class:`CalibrationTable`;
:func:`calibration_summary` turns a method's entry into the :class:`Calibration` that
:meth:`~pollwatch.forensics.base.Method.result` puts in
:attr:`MethodResult.calibration <pollwatch.forensics.base.MethodResult.calibration>`, so that a
p-value is always shown beside "this method flags X % of clean elections". A method without a
table file is "not calibrated" (its results say so); that is not an error.

A method is **unreliable** when its false-positive rate at the nominal level on clean
simulations or on the clean references is above that level beyond sampling error (the lower end
of the 95 % Wilson interval exceeds it). Unreliable methods are marked, never hidden.

A table file (one JSON object)::

    format            "pollwatch-calibration/2"
    method            the method's registry name (the file is <method>.json)
    measured          the run behind the entry: command, date, pollwatch version, environment
                      (numeric package versions), code (digest of the method's own code) and
                      plan_digest (its cell cache)
    plan              the plan settings it was measured with (elections, stations, regions,
                      candidates, replicates, power_stations, share, magnitudes per injector,
                      references, subsamples, subsample_fraction, seed, alphas)
    injectors         injector name -> what its magnitude means
    reference_units   reference id -> units, kinds of unit, whole-election stations, description
    entry             decision, tail and thresholds (empirical methods), parameters, simulated,
                      references (pooled, by_reference, by_kind, whole), power, skipped,
                      skipped_reasons, unreliable, unreliable_reason
    precision_recall  methods that score stations only: injector -> magnitude -> precision,
                      recall, elections, flagged, labelled, true_positives

Layer: imports settings and errors only; reads the calibration data folder as package data.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pollwatch.errors import PollwatchError, SettingsError
from pollwatch.settings import load_settings

__all__ = [
    "ALPHA",
    "NOT_CALIBRATED",
    "TABLE_FORMAT",
    "Calibration",
    "CalibrationTable",
    "MeasuredRun",
    "calibration_summary",
    "calibration_table",
    "calibration_words",
    "clean_rate_words",
    "clear_calibration_cache",
    "read_table_document",
    "read_tables",
    "shipped_tables_folder",
    "table_file",
    "tables_home",
    "user_tables_folder",
]

TABLE_FORMAT = "pollwatch-calibration/2"
#: the level the summary reports (the tables also have 0.01)
ALPHA = "0.05"
#: what every rendering says of a method without a table
NOT_CALIBRATED = "not calibrated"


@dataclass(frozen=True)
class Calibration:
    """A method's calibration as one result carries it (rates at :data:`ALPHA`).

    Attributes:
        calibrated: whether a table has an entry for the method.
        decision: "p-value" (flags when p < alpha), "empirical" (statistic beyond the clean
            simulations' quantile) or "none" (descriptive).
        alpha: the level of the rates (0.05).
        false_positive_rate: rate at alpha on clean simulations (None when not measured);
            ``simulated_tests`` is how many simulated elections it rests on.
        reference_rate: rate at alpha over the clean reference units (None when not
            measured); ``reference_tests`` is how many units (regions, states, subsamples).
        unreliable: whether a clean rate is above alpha beyond sampling error;
            ``unreliable_reason`` says where, in one line ("" when reliable).
        threshold: the empirical threshold at alpha (a pair for two-sided tails; None for
            p-value decisions).
        same_parameters: whether the result's parameters are those the table was measured
            with (seeds aside; true when no parameters are given: the method in general).
        source: the command and date that measured the method's entry.
    """

    calibrated: bool
    decision: str
    alpha: float
    false_positive_rate: float | None
    simulated_tests: int
    reference_rate: float | None
    reference_tests: int
    unreliable: bool
    unreliable_reason: str
    threshold: float | tuple[float, float] | None
    same_parameters: bool
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the dictionary results carried before this class existed)."""
        threshold = self.threshold
        return {
            "calibrated": self.calibrated,
            "decision": self.decision,
            "alpha": self.alpha,
            "false_positive_rate": self.false_positive_rate,
            "simulated_tests": self.simulated_tests,
            "reference_rate": self.reference_rate,
            "reference_tests": self.reference_tests,
            "unreliable": self.unreliable,
            "unreliable_reason": self.unreliable_reason,
            "threshold": list(threshold) if isinstance(threshold, tuple) else threshold,
            "same_parameters": self.same_parameters,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Calibration | None:
        """Inverts :meth:`to_dict`; an empty mapping (a method not calibrated) gives None.

        Keys a saved dictionary lacks take the values its readers assumed for them.
        """
        if not data:
            return None
        return cls(
            calibrated=bool(data.get("calibrated", False)),
            decision=str(data.get("decision", "p-value")),
            alpha=float(data.get("alpha", float(ALPHA))),
            false_positive_rate=_float_or_none(data.get("false_positive_rate")),
            simulated_tests=int(data.get("simulated_tests") or 0),
            reference_rate=_float_or_none(data.get("reference_rate")),
            reference_tests=int(data.get("reference_tests") or 0),
            unreliable=bool(data.get("unreliable", False)),
            unreliable_reason=str(data.get("unreliable_reason") or ""),
            threshold=_threshold(data.get("threshold")),
            same_parameters=bool(data.get("same_parameters", True)),
            source=str(data.get("source", "")),
        )

    @property
    def reliable(self) -> bool:
        """Calibrated, a test (not descriptive), not unreliable, with the measured parameters."""
        return (
            self.calibrated
            and self.decision != "none"
            and not self.unreliable
            and self.same_parameters
        )

    def words(self) -> str:
        """One line for tables and reports: what the method does on clean elections."""
        if self.decision == "none":
            return "descriptive (not a test)"
        parts = clean_rate_words(
            self.false_positive_rate,
            self.simulated_tests,
            self.reference_rate,
            self.reference_tests,
        )
        if self.false_positive_rate is not None:
            parts[0] = f"flags {parts[0]}"
        words = ", ".join(parts) + f" at α = {self.alpha:g}" if parts else ""
        if self.unreliable:
            # tables written before the reasons said "α" spell it "alpha"; one symbol in what
            # users read
            reason = self.unreliable_reason.replace("alpha = ", "α = ")
            words = "UNRELIABLE: " + (reason or words)
        if not self.same_parameters:
            words += " (measured with other parameters)"
        return words or NOT_CALIBRATED


def clean_rate_words(
    false_positive_rate: float | None,
    simulated_tests: int,
    reference_rate: float | None,
    reference_tests: int,
) -> list[str]:
    """``2% of 200 clean simulations`` and ``7% of 88 clean reference units``: the rates
    measured of the two (a method's table and the verdict say them alike)."""
    parts = []
    if false_positive_rate is not None:
        parts.append(f"{100 * false_positive_rate:.0f}% of {simulated_tests:,} clean simulations")
    if reference_rate is not None:
        parts.append(f"{100 * reference_rate:.0f}% of {reference_tests:,} clean reference units")
    return parts


def calibration_words(calibration: Calibration | None) -> str:
    """:meth:`Calibration.words`, or "not calibrated" for a method without a table."""
    return NOT_CALIBRATED if calibration is None else calibration.words()


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _threshold(value: Any) -> float | tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        low, high = value
        return float(low), float(high)
    return float(value)


# --- the tables ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeasuredRun:
    """One calibration run behind some entries of a table.

    Attributes:
        command, date, pollwatch: the run's ``measured`` record.
        plan: the plan settings it was measured with.
        methods: the entries of the table it measured, sorted.
    """

    command: str
    date: str
    pollwatch: str
    plan: Mapping[str, Any]
    methods: tuple[str, ...]

    @property
    def source(self) -> str:
        """``command (date)``, as the verdict and the results cite it."""
        return f"{self.command or 'pollwatch calibrate'} ({self.date or 'undated'})"


@dataclass(frozen=True)
class CalibrationTable:
    """The calibration tables in force: one ``pollwatch-calibration/2`` document per method.

    Attributes:
        documents: method name -> its table document (see the module docstring).
        origins: method name -> the file it was read from ("" for documents given in memory).
        problems: files that could not be read, one line each (they are left out).
    """

    documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @classmethod
    def from_documents(cls, documents: Iterable[Mapping[str, Any]]) -> CalibrationTable:
        """A table from documents in memory (later ones replace earlier ones of a method)."""
        by_method: dict[str, Mapping[str, Any]] = {}
        for document in documents:
            problem = _problem(document)
            if problem:
                raise PollwatchError(
                    f"calibration table document: {problem}",
                    hint=f"a document has format {TABLE_FORMAT!r}, a method and an entry",
                )
            by_method[str(document["method"])] = document
        return cls(documents=dict(sorted(by_method.items())))

    def __bool__(self) -> bool:
        return bool(self.documents)

    def __contains__(self, method: object) -> bool:
        return method in self.documents

    def names(self) -> tuple[str, ...]:
        """The calibrated methods, sorted."""
        return tuple(sorted(self.documents))

    def document(self, method: str) -> Mapping[str, Any] | None:
        """The whole table document of ``method``, or None when it is not calibrated."""
        return self.documents.get(method)

    def entry(self, method: str) -> Mapping[str, Any] | None:
        """The measured numbers of ``method`` (the document's ``entry``), or None."""
        document = self.documents.get(method)
        return None if document is None else document["entry"]

    def entries(self) -> dict[str, Mapping[str, Any]]:
        """Every method's entry, by name (sorted)."""
        return {name: self.documents[name]["entry"] for name in self.names()}

    def measured(self, method: str) -> Mapping[str, Any]:
        """The ``measured`` record of ``method``'s entry (empty when it has none)."""
        document = self.documents.get(method) or {}
        measured = document.get("measured")
        return measured if isinstance(measured, Mapping) else {}

    def plan(self, method: str) -> Mapping[str, Any]:
        """The plan settings ``method``'s entry was measured with (empty when unknown)."""
        document = self.documents.get(method) or {}
        plan = document.get("plan")
        return plan if isinstance(plan, Mapping) else {}

    def power_settings(self, method: str) -> dict[str, Any]:
        """What ``method``'s power was measured at: share, magnitudes and their meanings."""
        document = self.documents.get(method) or {}
        plan = self.plan(method)
        meanings = document.get("injectors")
        return {
            "share": plan.get("share"),
            "magnitudes": dict(plan.get("magnitudes") or {}),
            "meanings": dict(meanings) if isinstance(meanings, Mapping) else {},
        }

    def runs(self) -> tuple[MeasuredRun, ...]:
        """The runs behind the entries: the one behind most entries first (ties: the latest)."""
        groups: dict[tuple[str, str, str], list[str]] = {}
        for name in self.names():
            measured = self.measured(name)
            key = (
                str(measured.get("command", "")),
                str(measured.get("date", "")),
                json.dumps(self.plan(name), sort_keys=True, default=str),
            )
            groups.setdefault(key, []).append(name)
        runs = [
            MeasuredRun(
                command=command,
                date=date,
                pollwatch=str(self.measured(names[0]).get("pollwatch", "")),
                plan=self.plan(names[0]),
                methods=tuple(names),
            )
            for (command, date, _), names in groups.items()
        ]
        runs.sort(key=lambda r: r.command)
        runs.sort(key=lambda r: r.date, reverse=True)
        runs.sort(key=lambda r: len(r.methods), reverse=True)
        return tuple(runs)

    def main_run(self) -> MeasuredRun | None:
        """The run behind most entries (see :meth:`runs`), or None for an empty table."""
        runs = self.runs()
        return runs[0] if runs else None

    def source(self) -> str:
        """The table's source as the verdict cites it: the run behind most entries."""
        main = self.main_run()
        return main.source if main is not None else "no calibration table"

    def summary(
        self, method: str, parameters: Mapping[str, Any] | None = None
    ) -> Calibration | None:
        """The :class:`Calibration` of ``method`` (None when it is not calibrated).

        ``parameters`` are the result's; None means the method in general.
        """
        entry = self.entry(method)
        if entry is None:
            return None
        simulated, simulated_tests = _rate(entry.get("simulated"))
        reference, reference_tests = _rate(entry.get("references"))
        measured = self.measured(method)
        return Calibration(
            calibrated=True,
            decision=str(entry.get("decision", "p-value")),
            alpha=float(ALPHA),
            false_positive_rate=simulated,
            simulated_tests=simulated_tests,
            reference_rate=reference,
            reference_tests=reference_tests,
            unreliable=bool(entry.get("unreliable", False)),
            unreliable_reason=str(entry.get("unreliable_reason", "")),
            threshold=_threshold((entry.get("thresholds") or {}).get(ALPHA)),
            same_parameters=parameters is None or _same(entry.get("parameters", {}), parameters),
            source=f"{measured.get('command', 'pollwatch calibrate')} "
            f"({measured.get('date', 'undated')})",
        )


def _problem(document: Any) -> str:
    """What is wrong with a table document, or "" when it is well formed."""
    if not isinstance(document, Mapping):
        return "not a JSON object"
    if document.get("format") != TABLE_FORMAT:
        return f"format {document.get('format')!r} is not {TABLE_FORMAT!r}"
    if not isinstance(document.get("method"), str) or not document["method"]:
        return "no method name"
    if not isinstance(document.get("entry"), Mapping):
        return "no entry"
    return ""


def table_file(folder: Path, method: str) -> Path:
    """Where ``method``'s table lives in ``folder``: ``<folder>/<method>.json``."""
    if not method or "/" in method or "\\" in method or method.startswith("."):
        raise PollwatchError(
            f"method name {method!r} cannot name a calibration table file",
            hint="method names are like 'integer-percentages'",
        )
    return folder / f"{method}.json"


def read_table_document(path: Path) -> dict[str, Any]:
    """One table file, checked (a one-line PollwatchError when it is not a format-2 table)."""
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise PollwatchError(
            f"{path}: the calibration table cannot be read ({exc})",
            hint="rewrite it with `pollwatch calibrate -m METHOD --write-table`",
        ) from None
    problem = _problem(document)
    if problem:
        raise PollwatchError(
            f"{path}: not a calibration table ({problem})",
            hint="rewrite it with `pollwatch calibrate -m METHOD --write-table`",
        )
    if path.stem != document["method"]:
        raise PollwatchError(
            f"{path}: the table is of method {document['method']!r}, not {path.stem!r}",
            hint=f"rename it to {document['method']}.json",
        )
    return dict(document)


def shipped_tables_folder() -> Path:
    """The tables shipped with pollwatch: ``pollwatch/calibration/tables/``."""
    return Path(str(resources.files("pollwatch"))) / "calibration" / "tables"


#: the home set by :func:`tables_home` (None: the settings' home)
_home_in_force: Path | None = None


@contextlib.contextmanager
def tables_home(home: Path) -> Iterator[Path]:
    """Within the block, user tables are read from ``<home>/calibration/tables/``.

    For readers that are given no home (every result's calibration, the verdict): the command
    line's ``--home`` holds for the whole command, threads included, as the settings do. The
    previous home is restored on leaving.
    """
    global _home_in_force
    previous, _home_in_force = _home_in_force, Path(home)
    try:
        yield Path(home)
    finally:
        _home_in_force = previous


def user_tables_folder(home: Path | None = None) -> Path | None:
    """``<home>/calibration/tables/`` (home: :func:`tables_home`'s, else the settings' one).

    The settings come from the environment and the config file; when they cannot be read,
    there is no user folder here (the command line reports the settings error itself).
    """
    if home is None:
        home = _home_in_force
    if home is None:
        try:
            return load_settings().calibration_dir / "tables"
        except SettingsError:
            return None
    return home / "calibration" / "tables"


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, modification times and sizes of a folder's table files (the cache key)."""
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return ()
    stamp = []
    for path in paths:
        try:
            status = path.stat()
        except OSError:
            continue
        stamp.append((path.name, status.st_mtime_ns, status.st_size))
    return tuple(stamp)


@functools.lru_cache(maxsize=16)
def _read(
    folders: tuple[Path, ...], stamps: tuple[tuple[tuple[str, int, int], ...], ...]
) -> CalibrationTable:
    documents: dict[str, Mapping[str, Any]] = {}
    origins: dict[str, str] = {}
    problems: list[str] = []
    for folder, stamp in zip(folders, stamps, strict=True):
        for name, _, _ in stamp:
            path = folder / name
            try:
                document = read_table_document(path)
            except PollwatchError as exc:
                problems.append(exc.one_line())
                continue
            documents[document["method"]] = document
            origins[document["method"]] = str(path)
    names = sorted(documents)
    return CalibrationTable(
        documents={n: documents[n] for n in names},
        origins={n: origins[n] for n in names},
        problems=tuple(problems),
    )


def read_tables(*folders: Path | None) -> CalibrationTable:
    """The tables of ``folders``, a later folder's file replacing an earlier one's per method.

    Cached on the folders' contents (names, times, sizes), so a file written since is read
    the next time; :func:`clear_calibration_cache` empties the cache.
    """
    present = tuple(f for f in folders if f is not None)
    return _read(present, tuple(_stamp(f) for f in present))


def calibration_table(home: Path | None = None) -> CalibrationTable:
    """The tables in force: the shipped ones, each replaced by the user's file of its method.

    ``home`` is the pollwatch home whose ``calibration/tables/`` overlays the shipped tables
    (default: :func:`tables_home`'s, else the settings' home).
    """
    return read_tables(shipped_tables_folder(), user_tables_folder(home))


def clear_calibration_cache() -> None:
    """Forget the tables read so far (:func:`read_tables` rereads changed folders anyway)."""
    _read.cache_clear()


def _rate(block: Any) -> tuple[float | None, int]:
    if not isinstance(block, Mapping):
        return None, 0
    entry = block.get(ALPHA)
    if not isinstance(entry, Mapping):
        return None, 0
    rate = entry.get("rate")
    return (float(rate) if rate is not None else None), int(entry.get("tests") or 0)


def _same(calibrated: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    """Whether the parameters that change a method's behaviour match (seeds do not)."""
    ignore = {"seed"}
    keys = (set(calibrated) | set(parameters)) - ignore
    return all(calibrated.get(k) == parameters.get(k) for k in keys)


def calibration_summary(
    method: str,
    parameters: Mapping[str, Any] | None = None,
    table: CalibrationTable | None = None,
) -> Calibration | None:
    """The :class:`Calibration` of ``method``; None when it is not calibrated.

    ``table`` defaults to the tables in force (:func:`calibration_table`); tests pass their
    own.
    """
    table = calibration_table() if table is None else table
    return table.summary(method, parameters)
