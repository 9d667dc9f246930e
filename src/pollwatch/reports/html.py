"""A self-contained HTML report of one election and the methods run on it.

Each method's part is its result's sections (``Method.sections``, see
:mod:`pollwatch.forensics.sections`): the headline's numbers with the caveats (calibration,
notes), the charts and the method's own tables, long ones cut to ``table_rows`` rows.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pollwatch import __version__
from pollwatch.forensics.base import MethodResult
from pollwatch.forensics.sections import Caveat, Chart, Table
from pollwatch.forensics.suite import SuiteReport
from pollwatch.forensics.verdict import verdict
from pollwatch.results.checks import QualityReport
from pollwatch.results.model import Election

__all__ = ["render_report", "vendored_script"]

_SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right}
.note{color:#555;font-size:.9rem}.unreliable{color:#a00;font-weight:bold}.chart{margin:1rem 0}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}
.simulated{background:#fff4d6;border:2px solid #c98a00;padding:.5rem .8rem;font-weight:bold}
.verdict{border:2px solid #999;padding:.2rem 1rem;margin:1rem 0}
.verdict.anomalous{border-color:#a00}.verdict .anomaly{color:#a00;font-weight:bold}
.verdict .none{color:#276b2b}
"""


def vendored_script(name: str) -> str:
    """The text of a vendored JavaScript file (``vega.min.js``, ...)."""
    return resources.files("pollwatch.reports").joinpath("static", name).read_text("utf-8")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _environment_words(environment: Mapping[str, str]) -> str:
    """``numpy 2.4.6, scipy 1.17.1, ...; `` or nothing when the result did not record them."""
    words = ", ".join(f"{k} {v}" for k, v in environment.items() if k != "pollwatch")
    return f"{words}; " if words else ""


def _table(headers: list[str] | None, rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers or [])
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_number(c)}</td>'
            if isinstance(c, int | float)
            else f"<td>{_e(c)}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _section_table(table: Table) -> str:
    note = f"<p class=note>{_e(table.note)}</p>" if table.note else ""
    rows = [["—" if value is None else value for value in row] for row in table.rows]
    body = _table(list(table.columns), rows)
    return f"<h4>{_e(table.title)}</h4>{body}{note}"


def _method_section(
    result: MethodResult, charts: list[tuple[str, Any]], table_rows: int = 25
) -> str:
    sections = result.sections()
    rows: list[list[Any]] = [[result.statistic_name, result.statistic]]
    if result.p_value is not None:
        rows.append(["p-value", result.p_value_text()])
        if result.alpha is not None:
            below = "below" if result.significant else "not below"
            rows.append(["level", f"{below} α = {result.alpha}"])
    if result.effect_name:
        rows.append([result.effect_name, result.effect])
    if result.interval is not None:
        level = (
            f"{100 * result.interval_level:g}% interval"
            if result.interval_level is not None
            else "range"
        )
        rows.append([level, f"{_number(result.interval[0])} to {_number(result.interval[1])}"])
    rows.append(["stations used", result.sample_size])
    caveats = [s for s in sections if isinstance(s, Caveat)]
    rows += [["note", c.text] for c in caveats if c.kind != "calibration"]
    rows += [
        ["on clean elections (calibration)", c.text] for c in caveats if c.kind == "calibration"
    ]
    if result.flagged:
        rows.append(["stations flagged", len(result.flagged)])
    definitions = "".join(
        f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in result.definitions.items()
    )
    chart_divs = ""
    for chart in (s for s in sections if isinstance(s, Chart)):
        element = f"chart-{len(charts)}"
        charts.append((element, chart.spec))
        chart_divs += f'<div class="chart" id="{element}" title="{_e(chart.name)}"></div>'
    own_tables = "".join(
        _section_table(s.head(table_rows)) for s in sections if isinstance(s, Table)
    )
    mark = (
        ' <span class="unreliable">unreliable on clean elections</span>'
        if any(c.serious for c in caveats)
        else ""
    )
    return (
        f"<section><h3>{_e(result.title)} <small>({_e(result.method)})</small>{mark}</h3>"
        f"{_table(['quantity', 'value'], rows)}{chart_divs}{own_tables}"
        f"<details><summary>definitions and parameters</summary><ul>{definitions}</ul>"
        f"<p class=note>parameters: {_e(json.dumps(dict(result.parameters)))}; "
        f"pollwatch {_e(result.version)}; {_e(_environment_words(result.environment))}"
        f"input digest {_e(result.input_digest[:16])}</p>"
        "</details></section>"
    )


def render_report(
    election: Election, quality: QualityReport, suite: SuiteReport, *, triage_rows: int = 25
) -> str:
    """The whole report as one HTML string, scripts and data inlined.

    ``triage_rows``: the most rows a method's table shows (the station ranking's first).
    """
    summary = election.summary()
    meta = election.meta
    charts: list[tuple[str, Any]] = []
    overview = _table(
        None,
        [
            ["election", f"{meta.id}: {meta.contest}"],
            ["country, date, kind", f"{meta.country}, {meta.date}, {meta.kind}"],
            ["source", meta.source],
            ["license", meta.license],
            ["stations", summary.stations],
            ["registered", summary.registered],
            ["ballots cast", summary.ballots_cast],
            ["turnout", None if summary.turnout is None else f"{100 * summary.turnout:.2f}%"],
        ],
    )
    totals = _table(
        ["candidate", "votes"],
        [[name, votes] for name, votes in sorted(summary.totals.items(), key=lambda x: -x[1])],
    )
    checks = _table(
        ["rule", "checked", "failed"],
        [[c.description, c.checked, c.failed] for c in quality.counts],
    )
    sections = "".join(_method_section(r, charts, triage_rows) for r in suite.results)
    skipped = "".join(f"<li><b>{_e(m)}</b>: {_e(r)}</li>" for m, r in suite.skipped)
    scripts = "".join(f"<script>{vendored_script(name)}</script>" for name in _SCRIPTS)
    embed = "".join(
        f"vegaEmbed('#{element}', {json.dumps(spec)}, {{actions: false}});"
        for element, spec in charts
    )
    definitions = "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in meta.definitions.items())
    notice = meta.simulation_notice
    simulated = f'<p id="simulated" class="simulated">{_e(notice)}</p>' if notice else ""
    judged = verdict(suite, simulation=notice).html()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>pollwatch report: {_e(meta.id)}</title><style>{_STYLE}</style>{scripts}</head>
<body>
<h1>pollwatch report: {_e(meta.id)}</h1>
{simulated}
<p class=note>Statistical anomalies are reasons to look closer, not findings of fraud. Every
method states its definitions; clean elections also show some anomalies.</p>
{judged}
<h2>Election</h2>{overview}<h2>Votes</h2>{totals}
<h2>Protocol arithmetic</h2>{checks}
<h2>Methods</h2>{sections}
{f"<h2>Skipped</h2><ul>{skipped}</ul>" if skipped else ""}
<h2>Definitions of the data</h2><ul>{definitions}</ul>
<p class=note>Generated by pollwatch {_e(__version__)}.</p>
<script>{embed}</script>
</body></html>
"""
