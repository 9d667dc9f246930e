"""The Python entry points for notebooks and scripts: list, load and analyse, as the CLI does.

::

    import pollwatch

    pollwatch.elections()                      # the store's catalogue (a table in notebooks)
    pollwatch.methods()                        # every registered method and its parameters
    election = pollwatch.load("russia-2018")   # an Election: summary table and fingerprint
    report = pollwatch.analyze(election)       # a SuiteReport: one row per method, the charts
    report.verdict()                           # what the reliable methods find, in words

:func:`analyze` runs :func:`~pollwatch.forensics.suite.run_suite` with the store's result
cache (``Settings.analysis_dir``), the same cache ``pollwatch analyze`` reads and writes under
the same keys (the election's content digest, the method and its parameters): a result the CLI
computed is served to Python instantly, and the other way round. Settings come from
:func:`~pollwatch.settings.load_settings` (``POLLWATCH_HOME``, the config file) unless given.

Everything here returns frozen objects that render themselves (``_repr_html_`` and Vega-Lite
charts in Jupyter, ``__rich__`` in the terminal); nothing prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pollwatch._notebook import html_section, html_table
from pollwatch.errors import InputError
from pollwatch.forensics.base import Method, _jsonable, all_methods
from pollwatch.forensics.calibration import calibration_summary
from pollwatch.forensics.suite import SuiteReport, _calibration_text, run_suite
from pollwatch.results.model import Election
from pollwatch.results.store import CatalogueEntry, ElectionStore
from pollwatch.settings import Settings, load_settings

__all__ = [
    "ElectionCatalogue",
    "MethodCatalogue",
    "MethodInfo",
    "MethodParameter",
    "analyze",
    "elections",
    "load",
    "methods",
]


@dataclass(frozen=True)
class MethodParameter:
    """One constructor parameter of a method.

    ``default`` is the value the method uses when the parameter is not given (JSON-able; None
    with ``required`` when there is none); ``accepts`` says in words what values it takes (the
    method's ``parameter_constraints``, "" where it declares none).
    """

    name: str
    default: Any
    required: bool = False
    accepts: str = ""


@dataclass(frozen=True)
class MethodInfo:
    """What one registered method is: name, title, source, parameters and calibration.

    ``suite_parameters`` are the values the default suite (``analyze`` without ``methods``)
    runs it with instead of its own defaults; ``calibration`` is its measured calibration in
    words (false-positive rates on clean elections).
    """

    name: str
    title: str
    reference: str
    parameters: tuple[MethodParameter, ...]
    suite_parameters: Mapping[str, Any]
    in_default_suite: bool
    stochastic: bool
    calibration: str

    @property
    def defaults(self) -> dict[str, Any]:
        """Parameter name -> default value."""
        return {p.name: p.default for p in self.parameters}

    def _parameter_rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (
                p.name,
                "(required)" if p.required else repr(p.default),
                repr(self.suite_parameters[p.name]) if p.name in self.suite_parameters else "",
                p.accepts,
            )
            for p in self.parameters
        ]

    _parameter_header = ("parameter", "default", "in the default suite", "accepts")

    def _repr_html_(self) -> str:
        about = [
            ("title", self.title),
            ("calibration", self.calibration),
            ("source", self.reference),
        ]
        return html_section(
            [
                html_table(about, caption=f"Method {self.name}", row_header=True),
                html_table(
                    self._parameter_rows(), header=self._parameter_header, caption="Parameters"
                ),
            ]
        )

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"{escape(self.name)}: {escape(self.title)}", title_justify="left")
        for header in self._parameter_header:
            table.add_column(header, overflow="fold", no_wrap=header == "parameter")
        for row in self._parameter_rows():
            table.add_row(*(escape(cell) for cell in row))
        return Group(
            table,
            f"calibration: {escape(self.calibration)}",
            f"[dim]{escape(self.reference)}[/]",
        )

    @classmethod
    def of(cls, method: type[Method]) -> MethodInfo:
        """The record of a method class."""
        constraints = getattr(method, "parameter_constraints", {})
        parameters = []
        declared: tuple[dataclasses.Field[Any], ...] = (
            dataclasses.fields(method) if dataclasses.is_dataclass(method) else ()
        )
        for item in declared:
            if item.default is not dataclasses.MISSING:
                default, required = item.default, False
            elif item.default_factory is not dataclasses.MISSING:
                default, required = item.default_factory(), False
            else:
                default, required = None, True
            constraint = constraints.get(item.name)
            parameters.append(
                MethodParameter(
                    name=item.name,
                    default=_jsonable(default),
                    required=required,
                    accepts=constraint.describe() if constraint is not None else "",
                )
            )
        return cls(
            name=method.name,
            title=method.title,
            reference=method.reference,
            parameters=tuple(parameters),
            suite_parameters=dict(method.suite_parameters),
            in_default_suite=bool(method.in_default_suite),
            stochastic=bool(method.stochastic),
            calibration=_calibration_text(calibration_summary(method.name)),
        )


def _parameter_words(info: MethodInfo) -> str:
    words = []
    for parameter in info.parameters:
        text = f"{parameter.name}=" + (
            "(required)" if parameter.required else repr(parameter.default)
        )
        if parameter.name in info.suite_parameters:
            text += f" (suite: {info.suite_parameters[parameter.name]!r})"
        words.append(text)
    return ", ".join(words) or "none"


class MethodCatalogue(tuple[MethodInfo, ...]):
    """The registered methods, in name order: a tuple that renders as a table."""

    def get(self, name: str) -> MethodInfo | None:
        """The method called ``name``, or None."""
        return next((info for info in self if info.name == name), None)

    def names(self) -> tuple[str, ...]:
        return tuple(info.name for info in self)

    def _repr_html_(self) -> str:
        rows = [
            (info.name, info.title, _parameter_words(info), info.calibration, info.reference)
            for info in self
        ]
        header = ("method", "what", "parameters (default)", "on clean elections", "source")
        return html_section([html_table(rows, header=header, caption="Methods")])

    def __rich__(self) -> Any:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="Methods", title_justify="left", show_lines=True)
        table.add_column("method", no_wrap=True)
        table.add_column("what, parameters (default), on clean elections, source", overflow="fold")
        for info in self:
            unreliable = info.calibration.startswith("UNRELIABLE")
            calibration = escape(info.calibration)
            table.add_row(
                escape(info.name),
                f"[bold]{escape(info.title)}[/]\n"
                f"parameters: {escape(_parameter_words(info))}\n"
                f"calibration: {f'[bold red]{calibration}[/]' if unreliable else calibration}\n"
                f"[dim]{escape(info.reference)}[/]",
            )
        return table


class ElectionCatalogue(tuple[CatalogueEntry, ...]):
    """The store's elections, in id order: a tuple that renders as a table."""

    _header = ("id", "country", "date", "kind", "contest", "stations", "importer")

    def _rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for entry in self:
            kind = "SIMULATED" if entry.simulation else entry.kind
            rows.append(
                (
                    entry.id,
                    entry.country,
                    entry.date,
                    kind,
                    entry.contest,
                    f"{entry.stations:,}",
                    entry.importer,
                )
            )
        return rows

    def _repr_html_(self) -> str:
        caption = "Imported elections" if self else "No elections imported yet"
        table = html_table(self._rows(), header=self._header, caption=caption, numeric=(5,))
        return html_section([table])

    def __rich__(self) -> Any:
        from rich.markup import escape
        from rich.table import Table

        # as `pollwatch list`: ids whole, the contest left to the HTML rendering (it is prose)
        shown = [i for i, header in enumerate(self._header) if header != "contest"]
        table = Table(title="Imported elections", title_justify="left")
        for i in shown:
            table.add_column(
                self._header[i],
                no_wrap=self._header[i] == "id",
                justify="right" if self._header[i] == "stations" else "left",
                overflow="fold",
            )
        for row in self._rows():
            table.add_row(*(escape(row[i]) for i in shown))
        return table


def methods() -> MethodCatalogue:
    """Every registered method (built-in and plug-in), with its parameters and calibration."""
    return MethodCatalogue(MethodInfo.of(cls) for _, cls in sorted(all_methods()))


def _settings(settings: Settings | None) -> Settings:
    return load_settings() if settings is None else settings


def elections(settings: Settings | None = None) -> ElectionCatalogue:
    """The elections in the store (``Settings.elections_dir``), as ``pollwatch list`` shows."""
    return ElectionCatalogue(ElectionStore(_settings(settings).elections_dir).list())


def load(election_id: str, settings: Settings | None = None) -> Election:
    """The stored election ``election_id`` (a StoreError naming the stored ones if unknown)."""
    return ElectionStore(_settings(settings).elections_dir).load(election_id)


def analyze(
    election_or_id: Election | str,
    methods: Sequence[str] | str | None = None,
    *,
    seed: int = 0,
    by_region: bool = False,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    settings: Settings | None = None,
) -> SuiteReport:
    """Run forensic methods on an election, with the CLI's result cache.

    ``election_or_id`` is an :class:`~pollwatch.results.model.Election` or the id of a stored
    one; ``methods`` names the methods (one name or several; default: the default suite, as
    ``pollwatch analyze`` without ``-m``); ``seed`` seeds every random draw; ``by_region``
    adds per-region results where a method has them; ``parameters`` maps a method's name to
    values of its constructor parameters (``{"klimek-fraud-model": {"replicates": 50}}``, as
    ``-p replicates=50``), validated before anything runs. Results are read from and written
    to ``settings.analysis_dir``, keyed like the CLI's, so each method runs once per election
    content and parameters. Methods the election cannot support are in ``skipped`` with why.
    """
    chosen = _settings(settings)
    election = (
        election_or_id if isinstance(election_or_id, Election) else load(election_or_id, chosen)
    )
    names = [methods] if isinstance(methods, str) else methods
    if by_region and election.stations["region"].drop_nulls().n_unique() == 0:
        raise InputError(
            f"election {election.id!r} has no regions (its region column is empty), so "
            "by_region has nothing to split",
            hint="run without by_region for the national results, or re-import with a "
            "mapping that names the region column",
        )
    return run_suite(
        election,
        names,
        parameters=parameters,
        seed=seed,
        by_region=by_region,
        cache_dir=chosen.analysis_dir,
    )
