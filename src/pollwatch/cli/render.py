"""Rich renderings of results objects for the terminal (the library itself never prints).

Every table here reads at 80 columns (``tests/test_cli_width.py`` renders them at that width
against the golden files in ``tests/golden/``): identifiers (election ids, method and format
names) are never truncated, long prose folds, and the calibration of a method is a compact
cell (:func:`calibration_compact`) whose full wording is one option away (``analyze --wide``,
``pollwatch methods``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.table import Table

from pollwatch.forensics.base import Method, MethodResult
from pollwatch.forensics.calibration import Calibration, calibration_words
from pollwatch.forensics.sections import RegionTable, detail_of
from pollwatch.forensics.sections import Table as SectionTable
from pollwatch.forensics.sections import tables as section_tables
from pollwatch.forensics.suite import SuiteReport, regional_rows
from pollwatch.reports.compare import short_number
from pollwatch.results.checks import QualityReport
from pollwatch.results.importers import Importer
from pollwatch.results.model import Election, ElectionSummary
from pollwatch.results.store import CatalogueEntry

__all__ = [
    "calibration_compact",
    "catalogue_table",
    "failing_stations_table",
    "formats_help",
    "importers_table",
    "method_catalogue",
    "method_parameters",
    "method_sections",
    "methods_table",
    "regional_tables",
    "summary_renderable",
]


def _int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def summary_renderable(election: Election, summary: ElectionSummary) -> RenderableType:
    """Headline numbers, totals per candidate and flag counts of one election."""
    meta = election.meta
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    if meta.simulation_notice:
        head.add_row(
            "[bold yellow]SIMULATED[/]", f"[bold yellow]{escape(meta.simulation_notice)}[/]"
        )
    head.add_row("election", f"{meta.id}: {meta.contest}")
    head.add_row("country, date", f"{meta.country}, {meta.date or 'unknown'} ({meta.kind})")
    head.add_row("source", meta.source)
    head.add_row("stations", _int(summary.stations))
    head.add_row("registered", _int(summary.registered))
    head.add_row("ballots cast", _int(summary.ballots_cast))
    head.add_row("valid / invalid", f"{_int(summary.valid)} / {_int(summary.invalid)}")
    head.add_row("turnout", _percent(summary.turnout))
    if summary.evoting_stations:
        # E-voting pseudo-stations are in the totals above; the methods leave them out.
        head.add_row(
            "e-voting (ДЭГ)",
            f"{summary.evoting_stations:,} pseudo-stations, "
            f"{_int(summary.evoting_registered)} registered, "
            f"{_int(summary.evoting_ballots_cast)} ballots",
        )
        head.add_row(
            "without e-voting",
            f"{_int(summary.registered_without_evoting)} registered, "
            f"{_int(summary.ballots_cast_without_evoting)} ballots",
        )
    flagged = ", ".join(
        f"{name.removeprefix('is_')} {n:,}" for name, n in summary.flags.items() if n
    )
    head.add_row("flagged stations", flagged or "none")

    totals = Table(title="Votes per candidate", title_justify="left")
    totals.add_column("candidate")
    totals.add_column("votes", justify="right")
    totals.add_column("share of valid", justify="right")
    valid = summary.valid or sum(summary.totals.values())
    for name, votes in sorted(summary.totals.items(), key=lambda item: -item[1]):
        share = votes / valid if valid else None
        style = "bold" if name == summary.leader else ""
        totals.add_row(f"[{style}]{name}[/]" if style else name, f"{votes:,}", _percent(share))
    return Group(head, "", totals)


def failing_stations_table(report: QualityReport, election: Election, limit: int) -> Table:
    """The first ``limit`` stations that break a protocol rule, with the rules they break."""
    failing = report.failing_stations.head(limit)
    rules = [c.rule for c in report.counts]
    table = Table(title=f"Stations with protocol findings (first {limit})", title_justify="left")
    table.add_column("station")
    table.add_column("rules broken")
    for row in failing.iter_rows(named=True):
        broken = [rule for rule in rules if row[rule]]
        table.add_row(str(row["station_id"]), ", ".join(broken))
    return table


class _Catalogue:
    """The catalogue laid out for the console's width: ids whole, the other columns fold."""

    headers = ("id", "country", "date", "kind", "stations", "importer")

    def __init__(self, entries: Sequence[CatalogueEntry]) -> None:
        self.entries = entries

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def table(self, width: int) -> Table:
        cells = [
            (e.id, e.country, e.date, "SIMULATED" if e.simulation else e.kind,
             f"{e.stations:,}", e.importer)
            for e in self.entries
        ]  # fmt: skip
        natural = [
            max([len(header), *(cell_len(row[i]) for row in cells)])
            for i, header in enumerate(self.headers)
        ]
        # ids are what users type: the id column keeps its full width and the others give way
        # (the widest first), folding their words; only an id wider than the console folds
        room = width - natural[0] - (len(self.headers) - 1)
        widths = natural[1:]
        fits = room >= len(widths)
        floors = [len(header) for header in self.headers[1:]]
        for floor in (floors, [1] * len(widths)):  # headers stay whole while they can
            while fits and sum(widths) > room and any(map(int.__gt__, widths, floor)):
                spare = [w if w > f else 0 for w, f in zip(widths, floor, strict=True)]
                widths[spare.index(max(spare))] -= 1
        table = _compact_table("Imported elections")
        if fits:
            table.add_column("id", no_wrap=True, width=natural[0])
        else:
            table.add_column("id", overflow="fold")
        for header, column_width in zip(self.headers[1:], widths, strict=True):
            table.add_column(
                header,
                justify="right" if header == "stations" else "left",
                overflow="fold",
                width=column_width if fits else None,
            )
        for entry, row in zip(self.entries, cells, strict=True):
            kind = "[bold yellow]SIMULATED[/]" if entry.simulation else escape(row[3])
            table.add_row(escape(row[0]), escape(row[1]), escape(row[2]), kind, row[4],
                          escape(row[5]))  # fmt: skip
        return table


def catalogue_table(entries: list[CatalogueEntry]) -> RenderableType:
    """The store's catalogue: one row per election, its id never cut (see :class:`_Catalogue`)."""
    return _Catalogue(entries)


def _rate(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.0f}%"


def calibration_compact(calibration: Calibration | None) -> str:
    """The calibration in a table cell: ``fp 2%/7%``, ``fp 8%/16% UNRELIABLE``, ``descriptive``.

    ``fp A/B``: the share of clean simulations (A) and of clean reference units (B) the method
    flags at the calibration's level (α = 0.05), "—" where not measured; ``*`` marks a
    calibration measured with other parameters. The full sentence is
    :meth:`~pollwatch.forensics.calibration.Calibration.words`.
    """
    if calibration is None:
        return "not calibrated"
    if calibration.decision == "none":
        return "descriptive"
    simulated = calibration.false_positive_rate
    reference = calibration.reference_rate
    words = f"fp {_rate(simulated)}/{_rate(reference)}"
    if simulated is None and reference is None:
        words = "not measured"
    if not calibration.same_parameters:
        words += "*"
    if calibration.unreliable:
        words += " UNRELIABLE"  # last, so that a narrow column breaks before it
    return words


def _calibration_cell(result: MethodResult, *, compact: bool = False) -> str:
    if compact:
        words = escape(calibration_compact(result.calibration))
    else:
        words = escape(calibration_words(result.calibration))
    unreliable = result.calibration is not None and result.calibration.unreliable
    return f"[bold red]{words}[/]" if unreliable else words


def _compact_table(title: str) -> Table:
    """A table without vertical rules or padding (one space between columns): seven columns
    of numbers fit in 80."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0),
    )


def _calibration_legend(suite: SuiteReport) -> str:
    alpha = next((r.calibration.alpha for r in suite.results if r.calibration), 0.05)
    words = (
        f"calibration: fp A/B = share of clean simulations / clean reference units the "
        f"method flags at α = {alpha:g}"
    )
    if any(r.calibration and not r.calibration.same_parameters for r in suite.results):
        words += "; * measured with other parameters"
    return words + " (full wording: --wide or 'pollwatch methods')"


def methods_table(suite: SuiteReport, *, wide: bool = False) -> RenderableType:
    """One row per method (values only), then what each statistic and effect is.

    The calibration column is compact (:func:`calibration_compact`); ``wide`` adds the full
    calibration sentence under each method's legend entry.
    """
    table = _compact_table(f"Methods: {suite.election_id}")
    table.add_column("method", no_wrap=True)
    for column in ("statistic", "p-value", "effect", "stations", "flagged"):
        table.add_column(column, justify="right")
    table.add_column("calibration", min_width=len("calibration"))
    legend = Table.grid(padding=(0, 1))
    legend.add_column(style="bold", no_wrap=True)
    legend.add_column(style="dim")
    for result in suite.results:
        p_value = result.p_value_text()
        if result.significant:
            p_value = f"[bold]{p_value}[/]"
        table.add_row(
            result.method,
            short_number(result.statistic),
            p_value,
            short_number(result.effect) if result.effect_name else "—",
            f"{result.sample_size:,}",
            f"{len(result.flagged):,}" if result.flagged else "",
            _calibration_cell(result, compact=True),
        )
        words = f"statistic: {escape(result.statistic_name)}"
        if result.effect_name:
            words += f"; effect: {escape(result.effect_name)}"
        if wide:
            words += f"\non clean elections: {_calibration_cell(result)}"
        words += "".join(f"\nnote: {escape(note)}" for note in result.notes)
        legend.add_row(result.method, words)
    if not suite.results:
        return Group(table)
    return Group(table, f"[dim]{escape(_calibration_legend(suite))}[/]", legend)


def regional_tables(suite: SuiteReport, *, regions: int | None = None) -> RenderableType:
    """Per method run by region: one row per region, most notable first.

    Columns: region, stations, the region's effect (or statistic), p-value and q-value
    (Benjamini-Hochberg across the regions tested), sorted by q-value then p-value
    (:func:`~pollwatch.forensics.suite.regional_rows`); methods that estimate without a test
    (Shpilkin's) list their regions largest estimate first, with the range over definition
    choices. ``regions`` (the election's region count) says how many regions had too few
    stations for a row of their own.
    """
    parts: list[RenderableType] = []
    without = []
    for result in suite.results:
        rows = regional_rows(result)
        if not rows:
            without.append(result.method)
            continue
        value_name = result.effect_name or result.statistic_name
        tested = any(row.p_value is not None for row in rows)
        table = _compact_table(f"{result.method} by region: {len(rows):,} regions")
        table.add_column("region", overflow="fold", ratio=1)
        table.add_column("stations", justify="right")
        table.add_column("value", justify="right")
        interval = "interval" if result.interval_level is not None else "range"
        if tested:
            table.add_column("p-value", justify="right")
            table.add_column("q-value", justify="right")
            table.add_column("flagged")
        else:
            table.add_column(interval, justify="right")
        for row in rows:
            cells = [
                escape(row.region),
                _int(row.stations),
                short_number(row.value),
            ]
            if tested:
                q_value = short_number(row.q_value)
                cells += [
                    short_number(row.p_value),
                    f"[bold]{q_value}[/]" if row.flagged else q_value,
                    "[bold]yes[/]" if row.flagged else "",
                ]
            else:
                span = (
                    f"{short_number(row.low)} to {short_number(row.high)}"
                    if row.low is not None and row.high is not None
                    else "—"
                )
                cells.append(span)
            table.add_row(*cells)
        notes = [f"value: {escape(value_name)}"]
        if tested:
            flagged = sum(row.flagged for row in rows)
            alpha = result.alpha if result.alpha is not None else 0.05
            notes.append(
                f"q-value: Benjamini-Hochberg across the regions tested; flagged: q < "
                f"{alpha:g} ({flagged:,} regions)"
            )
        elif result.interval_level is not None:
            notes.append(
                f"no test: largest first; interval: {100 * result.interval_level:g}% interval"
            )
        else:
            region_table = detail_of(result, RegionTable)
            meaning = region_table.range if region_table is not None else None
            what = meaning or "lowest to highest estimate"
            notes.append(f"no test: largest first; range: {escape(what)}")
        estimated = [row for row in rows if row.value is not None or row.p_value is not None]
        if regions is not None and regions > len(estimated):
            small = regions - len(estimated)
            notes.append(
                f"{small:,} {'region' if small == 1 else 'regions'} too small for an "
                "estimate of their own"
            )
        parts += [table, f"[dim]{'; '.join(notes)}[/]", ""]
    if without:
        parts.append(f"no regional breakdown: {escape(', '.join(without))}")
    return Group(*parts)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return short_number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if value is None else escape(str(value))


def _section_table(method: str, section: SectionTable) -> RenderableType:
    """A section's table under a heading of its own (a table's title would fold to its width);
    columns of numbers align right."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for index, column in enumerate(section.columns):
        values = [row[index] for row in section.rows if row[index] is not None]
        numeric = bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        table.add_column(escape(column), overflow="fold", justify="right" if numeric else "left")
    for row in section.rows:
        table.add_row(*(_cell(value) for value in row))
    heading = f"[bold]{escape(method)}: {escape(section.title)}[/]"
    if not section.note:
        return Group(heading, table)
    return Group(heading, table, f"[dim]{escape(section.note)}[/]")


def method_sections(suite: SuiteReport, *, rows: int = 10) -> RenderableType:
    """Each result's own tables (its sections' tables, ``Method.sections``), first ``rows``
    rows of each; nothing for results without tables."""
    parts: list[RenderableType] = []
    for result in suite.results:
        for section in section_tables(result.sections()):
            parts += [_section_table(result.method, section.head(rows)), ""]
    return Group(*parts)


def method_catalogue(methods: Sequence[tuple[str, type[Method]]]) -> RenderableType:
    """Every registered method: what it measures, its full calibration wording, its source."""
    from pollwatch.forensics.calibration import calibration_summary

    table = Table(title="Methods", title_justify="left", show_lines=True)
    table.add_column("method", no_wrap=True)
    table.add_column("what, on clean elections (calibration), source", overflow="fold")
    for name, cls in methods:
        calibration = calibration_summary(name)
        words = escape(calibration_words(calibration))
        if calibration is not None and calibration.unreliable:
            words = f"[bold red]{words}[/]"
        table.add_row(
            name,
            f"[bold]{escape(cls.title)}[/]\ncalibration: {words}\n[dim]{escape(cls.reference)}[/]",
        )
    return table


def _parameter_text(value: Any) -> str:
    """A parameter value as ``-p KEY=VALUE`` takes it (true, none, 0.005,0.01)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ", ".join(_parameter_text(v) for v in value)
    return str(value)


def method_parameters(name: str, cls: type[Method]) -> RenderableType:
    """One method: its title and source, then each parameter, its default, what it accepts."""
    from dataclasses import MISSING, Field, fields, is_dataclass

    table = Table(
        title=f"{name}: parameters (set with -p KEY=VALUE)", title_justify="left", show_lines=True
    )
    table.add_column("parameter", no_wrap=True)
    table.add_column("default", overflow="fold")
    table.add_column("accepts", overflow="fold")
    constraints = cls.parameter_constraints
    parameters: list[Field[Any]] = list(fields(cls)) if is_dataclass(cls) else []
    for field in parameters:
        default = "(required)" if field.default is MISSING else _parameter_text(field.default)
        constraint = constraints.get(field.name)
        accepts = constraint.describe() if constraint is not None else "(not declared)"
        table.add_row(field.name, escape(default), escape(accepts))
    lines: list[RenderableType] = [
        f"[bold]{escape(cls.title)}[/] ({escape(name)})",
        f"[dim]{escape(cls.reference)}[/]",
        table,
    ]
    if cls.suite_parameters:
        chosen = ", ".join(f"{k}={_parameter_text(v)}" for k, v in cls.suite_parameters.items())
        lines.append(f"the default suite (plain pollwatch analyze) runs it with {escape(chosen)}")
    elif cls.in_default_suite:
        lines.append("the default suite (plain pollwatch analyze) runs it with the defaults above")
    else:
        lines.append(f"not in the default suite: run it with pollwatch analyze -m {escape(name)}")
    return Group(*lines)


def importers_table(importers: Sequence[Importer]) -> Table:
    """The registered importers: name and what each reads."""
    table = Table(title="Importers", title_justify="left")
    table.add_column("format", no_wrap=True)
    table.add_column("reads", overflow="fold")
    for importer in importers:
        suffix = " (needs --mapping)" if importer.needs_mapping else ""
        table.add_row(escape(importer.name), escape(importer.description + suffix))
    return table


def formats_help(importers: Sequence[Importer]) -> str:
    """The importers as paragraphs of a command's help text (Typer rich markup)."""
    lines = ["[bold]Formats[/] (--format NAME; default: detected; also 'pollwatch formats'):"]
    for importer in importers:
        suffix = " (needs --mapping)" if importer.needs_mapping else ""
        lines.append(f"  [bold]{escape(importer.name)}[/]: {escape(importer.description + suffix)}")
    return "\n\n".join(lines)
