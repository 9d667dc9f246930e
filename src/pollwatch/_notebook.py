"""Notebook renderings shared by the result objects: escaped HTML tables and Vega-Lite bundles.

``Election``, ``ElectionSummary``, ``QualityReport`` and ``SuiteReport`` render in Jupyter
through the IPython display protocol: ``_repr_html_`` gives a table, ``_repr_mimebundle_`` the
same table (``text/html``), a plain-text rendering (``text/plain``, rich at 80 columns) and,
where the object has charts, one Vega-Lite v5 specification with its data inline under
:data:`VEGA_LITE_MIME`, which JupyterLab, Notebook 7 and VS Code draw with their own bundled
Vega (no CDN, no script in the output).

A front end shows one MIME type per output, and JupyterLab ranks ``text/html`` above Vega-Lite;
so objects with charts also define ``_ipython_display_`` (:func:`display_bundle`), which shows
the table and the chart as two outputs. Every string that reaches HTML goes through
:func:`html.escape` here: callers pass plain text, never markup.

Imports nothing from the rest of pollwatch (every layer may use it); rich and IPython are
imported only when a rendering is asked for.
"""

from __future__ import annotations

import html
import importlib
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "VEGA_LITE_MIME",
    "VEGA_LITE_SCHEMA",
    "concat_charts",
    "display_bundle",
    "html_section",
    "html_table",
    "mimebundle",
    "plain_text",
]

#: the MIME type Jupyter front ends render Vega-Lite 5 specifications from
VEGA_LITE_MIME = "application/vnd.vegalite.v5+json"
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"

#: properties Vega-Lite allows only on a top-level specification (dropped from the parts of a
#: concatenation; ``datasets`` is lifted to the top instead)
_TOP_LEVEL_ONLY = ("$schema", "config", "autosize", "background", "padding", "usermeta")

#: the style of every table; scoped to the class so that it leaves the notebook's own alone
_STYLE = (
    "<style>.pollwatch table{border-collapse:collapse;margin:0.3em 0 0.8em}"
    ".pollwatch th,.pollwatch td{padding:0.15em 0.6em;text-align:left;vertical-align:top}"
    ".pollwatch .number{text-align:right;font-variant-numeric:tabular-nums}"
    ".pollwatch caption{text-align:left;font-weight:bold;padding-bottom:0.2em}"
    ".pollwatch .simulated{font-weight:bold;color:#8a6d00}"
    ".pollwatch .warning{font-weight:bold;color:#b00020}</style>"
)


def _cell(tag: str, value: Any, numeric: bool) -> str:
    css = ' class="number"' if numeric else ""
    return f"<{tag}{css}>{html.escape(str(value))}</{tag}>"


def html_table(
    rows: Iterable[Sequence[Any]],
    *,
    header: Sequence[str] | None = None,
    caption: str | None = None,
    numeric: Iterable[int] = (),
    row_header: bool = False,
) -> str:
    """A ``<table>`` with every cell escaped (``str(value)``).

    ``numeric`` are the column positions set right-aligned; with ``row_header`` the first cell
    of each row is a ``<th>`` (a two-column table of labels and values).
    """
    right = set(numeric)
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    if header is not None:
        cells = "".join(_cell("th", name, i in right) for i, name in enumerate(header))
        out.append(f"<thead><tr>{cells}</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = "".join(
            _cell("th" if row_header and i == 0 else "td", value, i in right)
            for i, value in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def html_section(
    parts: Iterable[str], *, simulation: str | None = None, lines: Iterable[str] = ()
) -> str:
    """Tables (already built by :func:`html_table`) in one block, the simulation label first.

    ``lines`` are plain-text paragraphs after the tables (escaped here).
    """
    out = ['<div class="pollwatch">', _STYLE]
    if simulation:
        out.append(f'<p class="simulated">{html.escape(simulation)}</p>')
    out += list(parts)
    out += [f"<p>{html.escape(line)}</p>" for line in lines]
    out.append("</div>")
    return "".join(out)


def plain_text(renderable: Any, *, width: int = 80) -> str:
    """A rich renderable as plain text at ``width`` columns (no colour, no markup)."""
    from rich.console import Console

    console = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, record=True
    )
    console.print(renderable)
    return console.export_text().rstrip("\n")


def _rename_data(spec: Any, names: Mapping[str, str]) -> Any:
    """``spec`` with every named data source ``{"name": old}`` pointing at ``names[old]``."""
    if isinstance(spec, Mapping):
        out = {}
        for key, value in spec.items():
            if key == "data" and isinstance(value, Mapping) and value.get("name") in names:
                value = {**value, "name": names[value["name"]]}
            out[key] = _rename_data(value, names)
        return out
    if isinstance(spec, list):
        return [_rename_data(item, names) for item in spec]
    return spec


def concat_charts(charts: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any] | None:
    """One Vega-Lite v5 specification showing ``charts`` one under another (``vconcat``).

    ``charts`` are (label, specification) pairs; a part without a title gets its label as
    title. A single chart is returned as it is (with the v5 ``$schema``). Properties Vega-Lite
    allows only at the top are dropped from the parts, and their named ``datasets`` are lifted
    to the top under ``<label>/<name>``. None when there is no chart.
    """
    if not charts:
        return None
    if len(charts) == 1:
        label, spec = charts[0]
        single = dict(spec)
        single["$schema"] = VEGA_LITE_SCHEMA
        single.setdefault("title", label)
        return single
    datasets: dict[str, Any] = {}
    parts = []
    for label, spec in charts:
        own = spec.get("datasets")
        names = {}
        if isinstance(own, Mapping):
            names = {str(name): f"{label}/{name}" for name in own}
            datasets.update({names[str(name)]: values for name, values in own.items()})
        part = {
            key: value
            for key, value in _rename_data(spec, names).items()
            if key not in _TOP_LEVEL_ONLY and key != "datasets"
        }
        part.setdefault("title", label)
        parts.append(part)
    combined: dict[str, Any] = {"$schema": VEGA_LITE_SCHEMA, "vconcat": parts}
    if datasets:
        combined["datasets"] = datasets
    return combined


def mimebundle(
    html_text: str,
    plain: str,
    chart: Mapping[str, Any] | None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The ``_repr_mimebundle_`` answer: HTML, plain text and the chart where there is one.

    ``include`` and ``exclude`` are IPython's: MIME types to keep only, or to leave out.
    """
    bundle: dict[str, Any] = {"text/plain": plain, "text/html": html_text}
    if chart is not None:
        bundle[VEGA_LITE_MIME] = dict(chart)
    if include is not None:
        wanted = set(include)
        bundle = {key: value for key, value in bundle.items() if key in wanted}
    if exclude is not None:
        unwanted = set(exclude)
        bundle = {key: value for key, value in bundle.items() if key not in unwanted}
    return bundle


def display_bundle(bundle: Mapping[str, Any]) -> None:
    """Show a bundle in IPython as two outputs: the table, then the chart (if any).

    Called by IPython through ``_ipython_display_``; a front end shows one MIME type per
    output and would otherwise pick the table and hide the chart.
    """
    display = importlib.import_module("IPython.display").display
    chart = bundle.get(VEGA_LITE_MIME)
    display({k: v for k, v in bundle.items() if k != VEGA_LITE_MIME}, raw=True)
    if isinstance(chart, Mapping):
        title = chart.get("title")
        if isinstance(title, Mapping):
            title = title.get("text")
        label = title if isinstance(title, str) else "charts"
        display({VEGA_LITE_MIME: chart, "text/plain": f"<Vega-Lite chart: {label}>"}, raw=True)
