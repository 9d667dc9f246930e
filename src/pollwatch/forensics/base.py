"""The method seam: one contract for every forensic method, one registry, one result type.

A method is configured by its constructor (keyword parameters, validated there against the
class's ``parameter_constraints``, see :mod:`pollwatch.forensics.parameters`) and run on an
election::

    result = IntegerPercentages(replicates=1000, seed=1).run(election)

``run`` returns a frozen :class:`MethodResult` carrying the statistic, p-value or interval,
effect size, sample size, per-station flags where the method has them, the definitions used
(turnout, share, filters), the parameters, seed, input digest and pollwatch version. Results
serialise to JSON and back, render in the terminal (``__rich__``), in notebooks
(``_repr_html_``) and as Vega-Lite chart specifications (``charts``). The library never prints.

Methods register in :data:`METHODS`: the built-in modules (:data:`BUILTIN_MODULES`) with
``@METHODS.register(name)`` when first used, outside packages through the entry-point group
``pollwatch.methods``; both go through the same :meth:`~pollwatch.registry.Registry.add` and
its check (a :class:`Method` subclass whose ``name`` is the registered name). The conformance
suite ``tests/forensics/test_method_conformance.py`` runs against every registered method.
A method that needs numbers an election lacks (US precinct files have no registered voters)
raises :class:`MethodNotApplicable`, which suites report as "skipped, because ..." rather
than an error.

Station selection is shared: :func:`eligible_stations` drops pseudo-stations, cancelled and
unpublished stations and applies the method's own filters, and says what it dropped.
"""

from __future__ import annotations

import html
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

import polars as pl

from pollwatch import __version__
from pollwatch.environment import numeric_versions
from pollwatch.errors import PollwatchError, RegistryError
from pollwatch.forensics.calibration import Calibration, calibration_summary
from pollwatch.forensics.parameters import Constraint, validate_parameters
from pollwatch.forensics.sections import MethodDetails, Section, default_sections
from pollwatch.registry import Registry
from pollwatch.results.model import Candidate, Election

__all__ = [
    "METHODS",
    "P_VALUE_FLOOR",
    "Method",
    "MethodNotApplicable",
    "MethodResult",
    "Selection",
    "eligible_stations",
    "format_p_value",
    "get_method",
    "leader_of",
    "method_names",
]


class MethodNotApplicable(PollwatchError):
    """The election lacks what the method needs (say which numbers, and why it matters)."""


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars, tuples and non-finite floats into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


@dataclass(frozen=True)
class MethodResult:
    """What a method found on one election; see the module docstring.

    Attributes:
        method: registry name of the method.
        title: one-line human title.
        election_id: the election it ran on; ``input_digest`` is its content digest.
        statistic_name, statistic: the test statistic and what it is.
        p_value: one-sided or two-sided as the method's docs say; None for descriptive methods.
        p_value_floor: the smallest p-value the method can report, where it has one: a
            Monte Carlo p-value ``(1 + #{sim >= observed}) / (B + 1)`` is never below
            ``1 / (B + 1)``; None for analytic p-values (their floor is the floating-point
            one, :data:`P_VALUE_FLOOR`). :func:`format_p_value` prints a p-value at its floor
            as "< floor".
        interval: a confidence or plausible interval for the effect, with ``interval_level``.
        effect_name, effect: the effect size (e.g. excess stations, anomalous votes).
        sample_size: stations (or units) the statistic rests on.
        alpha, significant: the method's level and whether ``p_value < alpha``.
        flagged: station ids the method flags (empty when it flags none or has no flags).
        details: further numbers and small tables (JSON-able).
        charts: Vega-Lite v5 specifications, by name.
        definitions: the definitions used (turnout, share, filters) in words.
        parameters, seed, version: how to reproduce the result.
        environment: the releases of pollwatch, Python and the numeric packages (numpy,
            scipy, polars, pyarrow) the result was computed with
            (:func:`pollwatch.environment.numeric_versions`).
        calibration: the method's measured calibration (false-positive rates on clean
            simulations and clean references, whether it is unreliable), from the table
            ``pollwatch calibrate`` writes (a frozen
            :class:`~pollwatch.forensics.calibration.Calibration`); None when the method has
            not been calibrated (JSON writes ``{}`` then, and reads ``{}`` back as None).
        notes: caveats a reader of the headline must see, one sentence each (e.g. that the
            definition choices behind a range disagree, and why); every rendering shows them.
    """

    method: str
    title: str
    election_id: str
    input_digest: str
    statistic_name: str
    statistic: float | None
    sample_size: int
    p_value: float | None = None
    p_value_floor: float | None = None
    alpha: float | None = None
    significant: bool | None = None
    effect_name: str = ""
    effect: float | None = None
    interval: tuple[float, float] | None = None
    interval_level: float | None = None
    flagged: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    charts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    definitions: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    version: str = __version__
    calibration: Calibration | None = None
    environment: Mapping[str, str] = field(default_factory=numeric_versions)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; :meth:`from_dict` inverts it."""
        data: dict[str, Any] = _jsonable(asdict(self))
        data["calibration"] = {} if self.calibration is None else self.calibration.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MethodResult:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if values.get("interval") is not None:
            values["interval"] = tuple(values["interval"])
        values["flagged"] = tuple(values.get("flagged", ()))
        values["notes"] = tuple(values.get("notes", ()))
        saved = values.get("calibration")
        if not isinstance(saved, Calibration):
            values["calibration"] = Calibration.from_dict(saved)
        # A result saved before environments were recorded says nothing of its releases; it
        # must not borrow this process's.
        values.setdefault("environment", {})
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> MethodResult:
        return cls.from_dict(json.loads(text))

    # --- what the method provides ---------------------------------------------------------
    def method_class(self) -> type[Method] | None:
        """The registered class of :attr:`method`, or None when it is not installed."""
        try:
            return METHODS.get(self.method)
        except PollwatchError:
            return None

    def detail(self) -> MethodDetails | None:
        """The typed view of the details its method declares (``Method.detail_type``), or
        None when the method declares none or this result lacks them."""
        cls = self.method_class()
        kind = cls.detail_type if cls is not None else None
        return kind.from_result(self) if kind is not None else None

    def sections(self) -> tuple[Section, ...]:
        """The report sections of this result (``Method.sections``; the default ones when
        the method is not installed)."""
        cls = self.method_class()
        return cls.sections(self) if cls is not None else default_sections(self)

    # --- renderings ------------------------------------------------------------------------
    def p_value_text(self) -> str:
        """The p-value as every rendering prints it (:func:`format_p_value`, with the floor)."""
        return format_p_value(self.p_value, self.p_value_floor)

    def headline(self) -> str:
        """One line: statistic, p-value, effect; the words of a finding, never an accusation."""
        parts = [f"{self.statistic_name} = {_fmt(self.statistic)}"]
        if self.p_value is not None:
            p_text = self.p_value_text()
            parts.append(f"p {p_text}" if p_text.startswith("<") else f"p = {p_text}")
        if self.effect_name:
            effect = f"{self.effect_name} = {_fmt(self.effect)}"
            if self.interval is not None and self.interval_level is not None:
                low, high = self.interval
                effect += f" ({100 * self.interval_level:g}% interval {_fmt(low)} to {_fmt(high)})"
            elif self.interval is not None:
                effect += f" (range {_fmt(self.interval[0])} to {_fmt(self.interval[1])})"
            parts.append(effect)
        parts.append(f"n = {self.sample_size:,}")
        if self.calibration is not None:
            parts.append(f"calibration: {self.calibration.words()}")
        parts += [f"note: {note}" for note in self.notes]
        return "; ".join(parts)

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(
            title=f"{self.title} ({self.method})", title_justify="left", show_header=False
        )
        table.add_column(style="bold")
        table.add_column()
        table.add_row(self.statistic_name, _fmt(self.statistic))
        if self.p_value is not None:
            verdict = ""
            if self.significant is not None and self.alpha is not None:
                verdict = f" ({'below' if self.significant else 'not below'} α = {self.alpha})"
            table.add_row("p-value", self.p_value_text() + verdict)
        if self.effect_name:
            table.add_row(self.effect_name, _fmt(self.effect))
        if self.interval is not None:
            level = (
                f"{100 * self.interval_level:g}% interval"
                if self.interval_level is not None
                else "range"
            )
            table.add_row(level, f"{_fmt(self.interval[0])} to {_fmt(self.interval[1])}")
        table.add_row("stations", f"{self.sample_size:,}")
        if self.flagged:
            table.add_row("stations flagged", f"{len(self.flagged):,}")
        if self.calibration is not None:
            words = self.calibration.words()
            table.add_row(
                "calibration", f"[bold red]{words}[/]" if self.calibration.unreliable else words
            )
        for note in self.notes:
            table.add_row("note", note)
        return table

    def _repr_html_(self) -> str:
        rows = [("statistic", f"{self.statistic_name} = {_fmt(self.statistic)}")]
        if self.p_value is not None:
            rows.append(("p-value", self.p_value_text()))
        if self.effect_name:
            rows.append((self.effect_name, _fmt(self.effect)))
        rows.append(("stations", f"{self.sample_size:,}"))
        if self.calibration is not None:
            rows.append(("calibration", self.calibration.words()))
        rows += [("note", note) for note in self.notes]
        body = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
        )
        return (
            f"<table><caption>{html.escape(self.title)} ({html.escape(self.method)}), "
            f"{html.escape(self.election_id)}</caption>{body}</table>"
        )


#: below this a double-precision p-value is not resolved (the smallest normal double is 2.2e-308)
P_VALUE_FLOOR = 1e-300


def format_p_value(p_value: float | None, floor: float | None = None) -> str:
    """A p-value as every rendering prints it: never "0".

    At or below the method's Monte Carlo floor ``1 / (B + 1)`` (``floor``) it prints
    "< floor" (``"< 0.001"`` for 999 replicates); below the floating-point floor
    :data:`P_VALUE_FLOOR` it prints "< 1e-300"; otherwise 3 significant digits, scientific
    below 0.001. None prints as "—".
    """
    if p_value is None or (isinstance(p_value, float) and math.isnan(p_value)):
        return "—"
    if floor is not None and floor > 0 and p_value <= floor * (1 + 1e-9):
        return f"< {floor:.3g}"
    if p_value < P_VALUE_FLOOR:
        return f"< {P_VALUE_FLOOR:g}"
    return f"{p_value:.3g}" if p_value < 1 else "1"


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}"


@dataclass(frozen=True)
class Selection:
    """The stations a method uses, and how many each filter removed (for the definitions)."""

    stations: pl.DataFrame
    removed: Mapping[str, int]

    def describe(self) -> str:
        removed = ", ".join(f"{reason}: {n:,}" for reason, n in self.removed.items() if n)
        return f"{self.stations.height:,} stations used" + (
            f"; removed {removed}" if removed else ""
        )


def eligible_stations(
    election: Election,
    *,
    require: Sequence[str] = (),
    extra: Mapping[str, pl.Expr] | None = None,
) -> Selection:
    """Stations a method may use: not pseudo, cancelled or unpublished, with ``require`` known.

    ``extra`` maps a reason to a polars filter expression (true = keep), applied in order.
    Raises :class:`MethodNotApplicable` when a required column is empty in the whole election.
    """
    frame = election.stations
    for column in require:
        if frame[column].null_count() == frame.height:
            raise MethodNotApplicable(
                f"election {election.id!r} has no {column} numbers",
                hint="this method needs them; methods that use only vote counts still run",
            )
    removed: dict[str, int] = {}
    steps: list[tuple[str, pl.Expr]] = [
        ("pseudo-stations", ~pl.col("is_pseudo_station")),
        ("cancelled", ~pl.col("is_cancelled")),
        ("unpublished", ~pl.col("is_unpublished")),
    ]
    steps += [(f"missing {c}", pl.col(c).is_not_null()) for c in require]
    steps += list((extra or {}).items())
    for reason, keep in steps:
        before = frame.height
        frame = frame.filter(keep.fill_null(False))
        removed[reason] = before - frame.height
    if frame.height == 0:
        raise MethodNotApplicable(
            f"election {election.id!r}: no station is left after the filters "
            f"({', '.join(f'{r} {n:,}' for r, n in removed.items() if n)})",
            hint="check the election's flags or relax the method's filters",
        )
    return Selection(stations=frame, removed=removed)


def leader_of(election: Election, hint: str = "import candidate votes") -> Candidate:
    """The election's leader (most votes overall); :class:`MethodNotApplicable` without one."""
    leader = election.leader()
    if leader is None:
        raise MethodNotApplicable(f"election {election.id!r} has no candidates", hint=hint)
    return leader


class Method(ABC):
    """Base class of forensic methods: parameters in the constructor, ``run`` gives a result."""

    #: registry name, e.g. ``"integer-percentages"``
    name: ClassVar[str]
    #: one-line title
    title: ClassVar[str]
    #: the source paper(s), for the docs and reports
    reference: ClassVar[str]
    #: columns the method cannot do without (besides candidate votes)
    needs: ClassVar[tuple[str, ...]] = ()
    #: whether the method uses random numbers (then it takes ``seed``)
    stochastic: ClassVar[bool] = False
    #: cheaper parameters for the conformance suite (fewer replicates), same semantics
    conformance_parameters: ClassVar[Mapping[str, Any]] = {}
    #: for methods without a p-value, which tail of ``statistic`` the calibration harness
    #: treats as flagging the election when it lies beyond the clean simulations' quantile:
    #: "upper", "lower", "two-sided", or "none" (descriptive, not calibrated)
    calibration_tail: ClassVar[str] = "upper"
    #: whether a plain ``pollwatch analyze`` (the default suite) runs the method
    in_default_suite: ClassVar[bool] = True
    #: parameters the default suite and the calibration harness use instead of the method's
    #: own defaults (cheaper, same semantics); naming the method runs it with its own defaults
    suite_parameters: ClassVar[Mapping[str, Any]] = {}
    #: cheap enough (seconds on a national election) for the dashboard to compute on an
    #: election's first view, before ``pollwatch analyze`` has cached the rest
    fast: ClassVar[bool] = False
    #: in the side-by-side comparison of elections by default (``pollwatch compare``)
    in_comparison: ClassVar[bool] = False
    #: whether the calibration harness scores the stations it flags against the planted
    #: manipulation's labels (precision and recall of the station ranking)
    scores_stations: ClassVar[bool] = False
    #: what each constructor parameter accepts, one entry per dataclass field (``seed``
    #: included); checked on every construction (:meth:`__post_init__`), used to parse
    #: ``-p KEY=VALUE`` and printed by ``pollwatch methods NAME``
    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {}
    #: the typed view of the details other layers read (a station ranking, a per-region
    #: table, ...: :mod:`pollwatch.forensics.sections`); ``result.detail()`` builds it
    detail_type: ClassVar[type[MethodDetails] | None] = None

    @classmethod
    def sections(cls, result: MethodResult) -> tuple[Section, ...]:
        """The report sections of ``result``: headline, caveats, charts (and tables).

        Every renderer (CLI, HTML report, comparison, dashboard) shows these. The default
        (:func:`~pollwatch.forensics.sections.default_sections`) serves any method; override
        it to add tables of the method's own, after ``super().sections(result)``.
        """
        return default_sections(result)

    def __post_init__(self) -> None:
        """Check the parameters against :attr:`parameter_constraints` (ParameterError if not).

        Values are stored as the constraints normalise them (a list given for a tuple becomes a
        tuple). Subclasses with rules of their own call ``super().__post_init__()`` first.
        """
        if not is_dataclass(self):
            return
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in validate_parameters(type(self), given).items():
            if value is not given[name]:
                object.__setattr__(self, name, value)

    def parameters(self) -> dict[str, Any]:
        """The constructor parameters, as given or defaulted (JSON-able).

        Methods are frozen dataclasses, so this is their fields; override it otherwise.
        """
        if is_dataclass(self):
            data: dict[str, Any] = _jsonable(asdict(self))
            return data
        raise NotImplementedError(f"{type(self).__name__} must define parameters()")

    @abstractmethod
    def run(self, election: Election) -> MethodResult:
        """Run on one election; raises MethodNotApplicable when it cannot."""

    def result(self, election: Election, **values: Any) -> MethodResult:
        """Build the result with the fields every method fills the same way."""
        parameters = self.parameters()
        values.setdefault("calibration", calibration_summary(self.name, parameters))
        return MethodResult(
            method=self.name,
            title=self.title,
            election_id=election.id,
            input_digest=election.content_digest(),
            parameters=parameters,
            seed=parameters.get("seed"),
            **values,
        )


#: modules holding the built-in methods (each registers its classes on import)
BUILTIN_MODULES: tuple[str, ...] = (
    "integer_peaks",
    "klimek",
    "shpilkin",
    "eft.digit_tests",
    "eft.moments",
    "eft.dip",
    "eft.turnout_share",
    "digits",
    "spikes",
    "triage",
)


def _check_method(name: str, obj: object) -> None:
    """The registry's check, the same for built-ins and plug-ins."""
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise RegistryError(
            f"method {name!r} is {obj!r}, not a subclass of pollwatch.forensics.base.Method",
            hint="register a Method subclass (see docs/forensics.md)",
        )
    declared = getattr(obj, "name", None)
    if declared != name:
        raise RegistryError(
            f"method {name!r}: its class {obj.__name__} says name = {declared!r}",
            hint="the registered name (or entry-point name) must equal the class's name",
        )


METHODS: Registry[type[Method]] = Registry(
    "method",
    "pollwatch.methods",
    builtins=tuple(f"pollwatch.forensics.{module}" for module in BUILTIN_MODULES),
    check=_check_method,
)


def get_method(name: str, **parameters: Any) -> Method:
    """An instance of the method registered under ``name``, with ``parameters``.

    Raises RegistryError for an unknown method and
    :class:`~pollwatch.forensics.parameters.ParameterError` for an unknown or invalid parameter.
    """
    cls = METHODS.get(name)
    validate_parameters(cls, parameters)
    try:
        return cls(**parameters)
    except TypeError as exc:
        raise PollwatchError(
            f"method {name!r}: {exc}", hint=f"see `pollwatch methods {name}` for its parameters"
        ) from None


def all_methods() -> list[tuple[str, type[Method]]]:
    """Every registered method class, by name."""
    return list(METHODS.items())


def method_names(
    role: str | None = None, *, provides: type[MethodDetails] | None = None
) -> tuple[str, ...]:
    """Registered method names, sorted; with ``role``, those whose class attribute is true.

    ``role`` is one of ``"in_default_suite"``, ``"fast"``, ``"in_comparison"`` and
    ``"scores_stations"`` (see :class:`Method`): the lists the suite, the dashboard, the
    comparison and the calibration harness use are read from the classes, never kept apart.
    With ``provides``, only the methods whose ``detail_type`` is that kind (or a subclass).
    """
    roles = ("in_default_suite", "fast", "in_comparison", "scores_stations")
    if role is not None and role not in roles:
        raise ValueError(f"unknown method role {role!r}; known: {', '.join(roles)}")
    return tuple(
        name
        for name, cls in all_methods()
        if (role is None or bool(getattr(cls, role, False)))
        and (provides is None or _provides(cls, provides))
    )


def _provides(cls: type[Method], kind: type[MethodDetails]) -> bool:
    declared = cls.detail_type
    return declared is not None and issubclass(declared, kind)
