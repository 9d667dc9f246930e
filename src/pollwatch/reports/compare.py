"""Several elections side by side under identical methods: a table and a self-contained page.

The page shows each method's own tables (its result's :class:`~pollwatch.forensics.sections.Table`
sections, first rows) election by election, and the fingerprints of the method that provides
:class:`~pollwatch.forensics.sections.FingerprintCells`, on the same axes.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

from pollwatch import __version__
from pollwatch.forensics.calibration import calibration_words
from pollwatch.forensics.sections import FingerprintCells, Table, detail_of, provider, tables
from pollwatch.forensics.suite import SuiteReport
from pollwatch.reports.html import vendored_script
from pollwatch.results.model import Election

__all__ = [
    "comparison_rows",
    "method_calibration",
    "method_tables",
    "render_comparison",
    "short_number",
]


def short_number(value: float | None) -> str:
    """A statistic for a table cell: 4 significant digits, scientific when tiny or huge."""
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def comparison_rows(
    methods: Sequence[str], suites: Sequence[SuiteReport]
) -> list[tuple[str, list[str]]]:
    """One row per method, one cell per election: value, p-value, or why it was skipped."""
    rows = []
    for method in methods:
        cells = []
        for suite in suites:
            result = suite.result(method)
            if result is None:
                reason = dict(suite.skipped).get(method, "not run")
                # "election 'x' has no registered numbers (hint)" -> "no registered numbers"
                reason = re.sub(r"^election '[^']*':? ", "", reason.split(" (")[0])
                cells.append(f"skipped: {reason}")
                continue
            text = f"{short_number(result.statistic)}"
            if result.effect_name:
                text += f"; effect {short_number(result.effect)}"
            if result.p_value is not None:
                text += f"; p {result.p_value_text()}"
            cells.append(text)
        rows.append((method, cells))
    return rows


def method_calibration(method: str, suites: Sequence[SuiteReport]) -> tuple[str, bool]:
    """What the method does on clean elections (one line) and whether it is unreliable.

    The calibration belongs to the method, not to an election, so the first result that
    carries it speaks for all.
    """
    for suite in suites:
        result = suite.result(method)
        if result is not None:
            unreliable = result.calibration is not None and result.calibration.unreliable
            return calibration_words(result.calibration), unreliable
    return "not run", False


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return short_number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if value is None else str(value)


def _html_table(table: Table, caption: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.rows
    )
    note = f"<p class=note>{html.escape(table.note)}</p>" if table.note else ""
    return (
        f"<div><table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{body}</table>"
        f"{note}</div>"
    )


def method_tables(
    elections: Sequence[Election],
    suites: Sequence[SuiteReport],
    methods: Sequence[str],
    rows: int = 10,
) -> str:
    """Each method's own tables (its sections' :class:`Table` s), one per election, side by
    side; the first ``rows`` rows of each."""
    parts = []
    for method in methods:
        found = [
            (election, table.head(rows))
            for election, suite in zip(elections, suites, strict=True)
            if (result := suite.result(method)) is not None
            for table in tables(result.sections())
        ]
        for title in dict.fromkeys(table.title for _, table in found):
            cells = "".join(
                _html_table(table, election.id) for election, table in found if table.title == title
            )
            parts.append(
                f"<h3>{html.escape(title)} <small>({html.escape(method)})</small></h3>"
                f'<div class="charts">{cells}</div>'
            )
    return "".join(parts)


def render_comparison(
    elections: Sequence[Election], suites: Sequence[SuiteReport], methods: Sequence[str]
) -> str:
    """A self-contained HTML page: summaries, the method table, fingerprints on the same axes."""
    head = "".join(f"<th>{html.escape(e.id)}</th>" for e in elections)
    summaries = [e.summary() for e in elections]
    summary_rows = []
    for label, values in (
        ("stations", [f"{s.stations:,}" for s in summaries]),
        ("registered", [short_number(s.registered) for s in summaries]),
        ("turnout", ["—" if s.turnout is None else f"{100 * s.turnout:.2f}%" for s in summaries]),
        ("leader", [html.escape(s.leader or "—") for s in summaries]),
    ):
        summary_rows.append(
            f"<tr><th>{label}</th>" + "".join(f"<td>{v}</td>" for v in values) + "</tr>"
        )
    method_rows = ""
    for method, cells in comparison_rows(methods, suites):
        words, unreliable = method_calibration(method, suites)
        method_rows += (
            f"<tr><th>{html.escape(method)}</th>"
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
            + f"<td{' class=unreliable' if unreliable else ''}>{html.escape(words)}</td></tr>"
        )
    charts: list[tuple[str, Any]] = []
    figures = ""
    for index, suite in enumerate(suites):
        fingerprint = detail_of(provider(suite.results, FingerprintCells), FingerprintCells)
        if fingerprint is None:
            continue
        spec = fingerprint.to_chart()
        spec["width"] = spec["height"] = 300
        element = f"fingerprint-{index}"
        charts.append((element, spec))
        figures += f'<div class="chart" id="{element}"></div>'
    scripts = "".join(
        f"<script>{vendored_script(n)}</script>"
        for n in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
    )
    embed = "".join(
        f"vegaEmbed('#{element}', {json.dumps(spec)}, {{actions: false}});"
        for element, spec in charts
    )
    title = " vs ".join(html.escape(e.id) for e in elections)
    simulated = "".join(
        f'<p class="simulated"><b>{html.escape(e.id)}</b>: '
        f"{html.escape(e.meta.simulation_notice)}</p>"
        for e in elections
        if e.meta.simulation_notice
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pollwatch comparison: {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;
text-align:left;vertical-align:top}}.charts{{display:flex;flex-wrap:wrap;gap:1rem}}
.note{{color:#555}}.unreliable{{color:#a00;font-weight:bold}}
.simulated{{background:#fff4d6;border:2px solid #c98a00;padding:.5rem .8rem}}</style>{scripts}
</head><body>
<h1>Comparison: {title}</h1>{simulated}
<p class=note>The same methods with the same definitions and parameters on every election.
Anomalies are reasons to look closer, not findings of fraud.</p>
<table id="summary"><tr><th></th>{head}</tr>{"".join(summary_rows)}</table>
<h2>Methods</h2><table id="methods"><tr><th>method</th>{head}
<th>on clean elections (calibration)</th></tr>{method_rows}</table>
{method_tables(elections, suites, methods)}
<h2>Fingerprints on the same axes (turnout × leader's share)</h2>
<div class="charts">{figures}</div>
<p class=note>pollwatch {html.escape(__version__)}</p>
<script>{embed}</script></body></html>
"""
