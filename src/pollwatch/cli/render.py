"""Rich renderings of results objects for the terminal (the library itself never prints)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from pollwatch.forensics.base import MethodResult
from pollwatch.forensics.calibration import calibration_words
from pollwatch.forensics.suite import SuiteReport
from pollwatch.reports.compare import short_number
from pollwatch.results.checks import QualityReport
from pollwatch.results.model import Election, ElectionSummary
from pollwatch.results.store import CatalogueEntry

__all__ = ["catalogue_table", "failing_stations_table", "methods_table", "summary_renderable"]


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


def catalogue_table(entries: list[CatalogueEntry]) -> Table:
    """The store's catalogue."""
    table = Table(title="Imported elections", title_justify="left")
    for column in ("id", "country", "date", "kind", "stations", "importer"):
        table.add_column(column, justify="right" if column == "stations" else "left")
    for entry in entries:
        kind = "[bold yellow]SIMULATED[/]" if entry.simulation else entry.kind
        table.add_row(
            entry.id, entry.country, entry.date, kind, f"{entry.stations:,}", entry.importer
        )
    return table


def _calibration_cell(result: MethodResult) -> str:
    words = escape(calibration_words(result.calibration))
    return f"[bold red]{words}[/]" if result.calibration.get("unreliable") else words


def methods_table(suite: SuiteReport) -> RenderableType:
    """One row per method (values only), then what each statistic and effect is."""
    table = Table(title=f"Methods: {suite.election_id}", title_justify="left")
    for column in ("method", "statistic", "p-value", "effect", "stations", "flagged"):
        table.add_column(column, justify="left" if column == "method" else "right")
    table.add_column("on clean elections (calibration)", overflow="fold")
    legend = Table.grid(padding=(0, 1))
    legend.add_column(style="bold")
    legend.add_column(style="dim")
    for result in suite.results:
        p_value = short_number(result.p_value)
        if result.significant:
            p_value = f"[bold]{p_value}[/]"
        table.add_row(
            result.method,
            short_number(result.statistic),
            p_value,
            short_number(result.effect) if result.effect_name else "—",
            f"{result.sample_size:,}",
            f"{len(result.flagged):,}" if result.flagged else "",
            _calibration_cell(result),
        )
        words = f"statistic: {result.statistic_name}"
        if result.effect_name:
            words += f"; effect: {result.effect_name}"
        legend.add_row(result.method, words)
    return Group(table, legend)
