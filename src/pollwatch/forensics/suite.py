"""Running several methods on one election, with cached results.

:func:`run_suite` runs the named methods (default: every registered method) with identical
definitions and the same seed, skipping with a reason those the election cannot support (no
registered voters, say); per-method ``parameters`` override the defaults (validated against
each method's constraints before anything runs). Results are cached as JSON under
``<home>/analysis/<election>/``, keyed by the election's content digest and the method's
parameters, so a second run is instant and a changed election or parameter is never served a
stale result.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pollwatch._notebook import (
    concat_charts,
    display_bundle,
    html_section,
    html_table,
    mimebundle,
    plain_text,
)
from pollwatch.errors import PollwatchError
from pollwatch.fileio import atomic_write_text
from pollwatch.forensics._shared import shared_work
from pollwatch.forensics.base import (
    METHODS,
    Method,
    MethodNotApplicable,
    MethodResult,
    get_method,
    method_names,
)
from pollwatch.forensics.base import _fmt as format_number
from pollwatch.forensics.calibration import calibration_summary, calibration_words
from pollwatch.forensics.digits import benjamini_hochberg
from pollwatch.forensics.parameters import ParameterError, validate_parameters
from pollwatch.results.model import Election

if TYPE_CHECKING:
    from pollwatch.forensics.verdict import Verdict

__all__ = ["RegionalRow", "SuiteReport", "cached_report", "regional_rows", "run_suite"]

#: progress(method name, index, total), called in order as each method's result is taken (the
#: methods not cached run meanwhile on threads)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SuiteReport:
    """The results of several methods on one election, and the methods skipped with why.

    ``simulation`` is the election's simulation label
    (:attr:`~pollwatch.results.model.ElectionMeta.simulation_notice`; None for real results),
    which every rendering and the verdict show first; JSON carries it only when set.

    Renders in notebooks (``_repr_html_``: one row per method, then the methods skipped; the
    charts of every result as one Vega-Lite v5 specification in ``_repr_mimebundle_``) and in
    rich (``__rich__``), the verdict's headline first (:meth:`verdict`).
    """

    election_id: str
    input_digest: str
    results: tuple[MethodResult, ...]
    skipped: tuple[tuple[str, str], ...]
    simulation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "election_id": self.election_id,
            "input_digest": self.input_digest,
            "results": [r.to_dict() for r in self.results],
            "skipped": [{"method": m, "reason": r} for m, r in self.skipped],
        }
        if self.simulation is not None:
            data["simulation"] = self.simulation
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteReport:
        return cls(
            election_id=data["election_id"],
            input_digest=data["input_digest"],
            results=tuple(MethodResult.from_dict(r) for r in data["results"]),
            skipped=tuple((s["method"], s["reason"]) for s in data["skipped"]),
            simulation=data.get("simulation"),
        )

    def result(self, method: str) -> MethodResult | None:
        return next((r for r in self.results if r.method == method), None)

    # --- renderings (notebooks and rich; see pollwatch._notebook) ------------------------
    def verdict(self) -> Verdict:
        """The verdict on these results (:func:`pollwatch.forensics.verdict.verdict`)."""
        from pollwatch.forensics.verdict import verdict

        return verdict(self, simulation=self.simulation)

    def _rows(self) -> list[tuple[str, ...]]:
        """Per method: name, statistic, p-value, effect, stations, flagged, calibration,
        verdict, notes (plain text)."""
        judged = self.verdict()
        standing = {
            f.method: "cited: ANOMALY" if f.anomalous else "cited: no anomaly"
            for f in judged.findings
        }
        standing.update({n.method: f"not cited: {n.reason}" for n in judged.not_cited})
        rows: list[tuple[str, ...]] = []
        for result in self.results:
            effect = "—"
            if result.effect_name:
                effect = f"{result.effect_name} = {format_number(result.effect)}"
                if result.interval is not None:
                    low, high = (format_number(v) for v in result.interval)
                    level = result.interval_level
                    span = f"{100 * level:g}% interval" if level is not None else "range"
                    effect += f" ({span} {low} to {high})"
            rows.append(
                (
                    result.method,
                    f"{result.statistic_name} = {format_number(result.statistic)}",
                    result.p_value_text(),
                    effect,
                    f"{result.sample_size:,}",
                    f"{len(result.flagged):,}",
                    _calibration_text(result.calibration),
                    standing.get(result.method, ""),
                    " ".join(result.notes),
                )
            )
        return rows

    def _charts(self) -> list[tuple[str, Mapping[str, Any]]]:
        return [
            (f"{result.method}: {name}", spec)
            for result in self.results
            for name, spec in result.charts.items()
        ]

    def __rich__(self) -> Any:
        from rich import box
        from rich.console import Group
        from rich.markup import escape
        from rich.table import Table
        from rich.text import Text

        judged = self.verdict()
        standing = {
            f.method: "cited: ANOMALY" if f.anomalous else "cited: no anomaly"
            for f in judged.findings
        }
        standing.update({n.method: "not cited" for n in judged.not_cited})
        parts: list[Any] = []
        if self.simulation:
            parts.append(Text(self.simulation, style="bold yellow"))
        parts.append(Text(f"Verdict: {judged.headline}", style="bold"))
        table = Table(
            title=f"Methods: {escape(self.election_id)}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 0),  # the box puts one space between columns: seven fit in 80
        )
        flagging = any(result.flagged for result in self.results)
        table.add_column("method", no_wrap=True)  # names are what users type: never cut
        for column in ("statistic", "p-value", "effect", "stations", "flagged"):
            if column != "flagged" or flagging:
                table.add_column(column, justify="right")
        table.add_column("calibration", overflow="fold", min_width=len("calibration"))
        legend = Table.grid(padding=(0, 1))
        legend.add_column(style="bold", overflow="fold")
        legend.add_column(style="dim", overflow="fold")
        for result in self.results:
            effect = format_number(result.effect) if result.effect_name else "—"
            if result.effect_name and result.interval is not None:
                low, high = (format_number(v) for v in result.interval)
                effect += f"\n{low} to {high}"
            calibration = _calibration_short(result.calibration)
            cells = [
                escape(result.method),
                format_number(result.statistic),
                escape(result.p_value_text()),
                effect,
                f"{result.sample_size:,}",
            ]
            if flagging:
                cells.append(f"{len(result.flagged):,}" if result.flagged else "")
            unreliable = "UNRELIABLE" in calibration
            table.add_row(*cells, f"[bold red]{calibration}[/]" if unreliable else calibration)
            words = [f"statistic: {result.statistic_name}"]
            if result.effect_name:
                words.append(f"effect: {result.effect_name}")
            words.append(standing.get(result.method, ""))
            lines = "; ".join(w for w in words if w) + "".join(f"\nnote: {n}" for n in result.notes)
            legend.add_row(escape(result.method), escape(lines))
        parts += [table, legend] if self.results else [table]
        parts += [Text(f"skipped {m}: {reason}", style="yellow") for m, reason in self.skipped]
        parts.append(
            Text(
                "calibration: fp A/B = share of clean simulations / clean reference units the "
                "method flags at α = 0.05 (full wording: the HTML rendering or "
                "'pollwatch methods')",
                style="dim",
            )
        )
        return Group(*parts)

    def _repr_html_(self) -> str:
        tables = [
            html_table(
                self._rows(),
                header=(
                    "method",
                    "statistic",
                    "p-value",
                    "effect",
                    "stations",
                    "flagged",
                    "calibration on clean elections",
                    "verdict",
                    "notes",
                ),
                caption=f"Methods: {self.election_id}",
                numeric=(2, 4, 5),
            )
        ]
        if self.skipped:
            tables.append(html_table(self.skipped, header=("method", "reason"), caption="Skipped"))
        judged = self.verdict()
        return html_section(
            tables,
            simulation=self.simulation,
            lines=[
                f"Verdict: {judged.headline}",
                f"{judged.rule}; calibration: {judged.calibration_source}",
            ],
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Table (``text/html``), text (``text/plain``) and every result's charts (Vega-Lite)."""
        return mimebundle(
            self._repr_html_(), plain_text(self), concat_charts(self._charts()), include, exclude
        )

    def _ipython_display_(self) -> None:
        display_bundle(self._repr_mimebundle_())


def _calibration_field(calibration: Any, name: str, default: Any = None) -> Any:
    if isinstance(calibration, Mapping):
        return calibration.get(name, default)
    return getattr(calibration, name, default)


def _calibration_text(calibration: Any) -> str:
    """A result's calibration in words; "not calibrated" when it has none."""
    if not calibration:
        return "not calibrated"
    words = getattr(calibration, "words", None)
    return str(words()) if callable(words) else calibration_words(calibration)


def _calibration_short(calibration: Any) -> str:
    """The calibration in a table cell: ``fp 6%/7%``, ``fp 8%/16% UNRELIABLE``, ``descriptive``
    (A/B: the false-positive rates at α on clean simulations and on clean reference units)."""
    if not calibration:
        return "not calibrated"
    if _calibration_field(calibration, "decision") == "none":
        return "descriptive"
    rates = [
        _calibration_field(calibration, name) for name in ("false_positive_rate", "reference_rate")
    ]
    words = "fp " + "/".join("—" if r is None else f"{100 * float(r):.0f}%" for r in rates)
    if not _calibration_field(calibration, "same_parameters", True):
        words += "*"
    if _calibration_field(calibration, "unreliable", False):
        words += " UNRELIABLE"
    return words


def _parameters(name: str, seed: int, by_region: bool, default_suite: bool) -> dict[str, Any]:
    cls = METHODS.get(name)
    fields = getattr(cls, "__dataclass_fields__", {})
    parameters: dict[str, Any] = dict(cls.suite_parameters) if default_suite else {}
    if cls.stochastic and "seed" in fields:
        parameters["seed"] = seed
    if by_region and "by_region" in fields:
        parameters["by_region"] = True
    return parameters


def _calibrated_as(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters to look the calibration up with: ``by_region`` only adds per-region
    details (the national statistic, p-value and effect are the same), so a ``by_region`` run
    is as calibrated as the national one."""
    return {**parameters, "by_region": False} if "by_region" in parameters else dict(parameters)


#: most methods of one suite computed at once (each on a thread)
SUITE_THREADS = 4


def _cache_path(
    cache_dir: Path | None, election: Election, digest: str, method: Method
) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.sha256(
        json.dumps([digest, method.name, method.parameters()], sort_keys=True).encode()
    ).hexdigest()[:20]
    return cache_dir / election.id / f"{method.name}-{key}.json"


def _read_cached(path: Path | None, name: str) -> MethodResult | None:
    """The cached result at ``path``, with the current calibration; None if absent or damaged
    (then it is recomputed)."""
    if path is None or not path.is_file():
        return None
    try:
        stored = MethodResult.from_json(path.read_text("utf-8"))
    except (ValueError, KeyError, TypeError):
        return None
    # the calibration table may be newer than the cached result
    return replace(stored, calibration=calibration_summary(name, _calibrated_as(stored.parameters)))


def _family(method: Method) -> tuple[str, ...]:
    """The order methods start in: by their class's ancestry, so that methods of one family
    (sharing base classes, and the work the cache keeps for them) run one after another."""
    return tuple(cls.__qualname__ for cls in reversed(type(method).__mro__))


def _outcome(method: Method, election: Election) -> MethodResult | str:
    """The method's result, or why it was skipped."""
    try:
        return method.run(election)
    except MethodNotApplicable as exc:
        return exc.one_line()
    except PollwatchError as exc:
        return f"failed: {exc.one_line()}"


def run_suite(
    election: Election,
    methods: Sequence[str] | None = None,
    *,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    by_region: bool = False,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> SuiteReport:
    """Run methods on one election (see the module docstring).

    Without ``methods`` the default suite runs: every registered method whose class says
    ``in_default_suite``, with its ``suite_parameters``. ``parameters`` maps a method's name to
    values of its constructor parameters, applied over those (and over ``seed`` and
    ``by_region``); a name that is not run, or a parameter the method does not take or
    refuses, raises :class:`~pollwatch.forensics.parameters.ParameterError` before anything
    runs.
    """
    names = list(methods) if methods else list(method_names("in_default_suite"))
    for name in names:
        METHODS.get(name)  # an unknown name fails before anything runs
    overrides: dict[str, dict[str, Any]] = {}
    for name, values in (parameters or {}).items():
        if name not in names:
            raise ParameterError(
                f"parameters for method {name!r}, which is not run ({', '.join(names)})",
                method=name,
                hint=f"add {name!r} to the methods, or drop its parameters",
            )
        overrides[name] = validate_parameters(METHODS.get(name), values)
    # every method is built before any runs, so a rule between parameters fails at once too
    built = [
        get_method(
            name,
            **{
                **_parameters(name, seed, by_region, default_suite=not methods),
                **overrides.get(name, {}),
            },
        )
        for name in names
    ]
    digest = election.content_digest()
    results: list[MethodResult] = []
    skipped: list[tuple[str, str]] = []
    paths = [_cache_path(cache_dir, election, digest, m) for m in built]
    stored = [_read_cached(path, m.name) for path, m in zip(paths, built, strict=True)]
    missing = [position for position, found in enumerate(stored) if found is None]
    # The methods not cached run on threads (their array work releases the GIL) and share
    # per-election work (pollwatch.forensics._shared); results are taken in order. Each method
    # draws from its own generator, so the results do not depend on the threads.
    workers = max(1, min(len(missing), os.cpu_count() or 1, SUITE_THREADS))
    with shared_work(), ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = {
            position: pool.submit(copy_context().run, _outcome, built[position], election)
            for position in sorted(missing, key=lambda p: _family(built[p]))
        }
        try:
            for position, name in enumerate(names):
                if progress is not None:
                    progress(name, position, len(names))
                found = stored[position]
                if found is not None:
                    results.append(found)
                    continue
                outcome = jobs[position].result()
                if isinstance(outcome, str):
                    skipped.append((name, outcome))
                    continue
                result = outcome
                if result.parameters.get("by_region"):
                    calibration = calibration_summary(name, _calibrated_as(result.parameters))
                    result = replace(result, calibration=calibration)
                results.append(result)
                cached = paths[position]
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_text(cached, result.to_json())
        except BaseException:
            for job in jobs.values():
                job.cancel()
            raise
    if progress is not None:
        progress("", len(names), len(names))
    return SuiteReport(
        election_id=election.id,
        input_digest=digest,
        results=tuple(results),
        skipped=tuple(skipped),
        simulation=election.meta.simulation_notice,
    )


@dataclass(frozen=True)
class RegionalRow:
    """One region of a method run ``by_region``: its own estimate, p-value and q-value.

    ``value`` is the region's effect (the method's ``effect_name``), or its statistic when the
    method has no effect; ``low`` and ``high`` its interval or range where the method gives
    one; ``q_value`` is the Benjamini-Hochberg adjusted p-value across the regions tested
    (Benjamini & Hochberg 1995, J. R. Stat. Soc. B 57(1), 289-300); ``flagged`` is
    ``q_value < alpha``.
    """

    region: str
    stations: int | None
    value: float | None
    low: float | None
    high: float | None
    p_value: float | None
    q_value: float | None
    flagged: bool


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _regional_value(row: Mapping[str, Any]) -> tuple[float | None, Any]:
    """The region's effect (or statistic) and its interval, from a ``details["regions"]`` row."""
    if "anomalous_votes" in row:  # Shpilkin: anomalous votes, range over definition choices
        return _number(row.get("anomalous_votes")), [row.get("low"), row.get("high")]
    if "mean" in row and "expected" in row:  # digit tests: mean minus its expectation
        mean, expected = _number(row["mean"]), _number(row["expected"])
        value = mean - expected if mean is not None and expected is not None else None
        return value, None
    for key in ("estimate", "dip", "statistic"):
        if key in row:
            return _number(row[key]), row.get("interval")
    return None, None


def regional_rows(result: MethodResult) -> tuple[RegionalRow, ...]:
    """The per-region rows of a result run ``by_region`` (empty when it has none).

    Sorted by q-value, then p-value, then region name; regions without a p-value (methods
    that estimate without testing, such as Shpilkin's) follow, largest value first. Where
    the method gave p-values but no q-values, they are computed here (Benjamini-Hochberg
    across the regions with a p-value).
    """
    raw = result.details.get("regions")
    if isinstance(raw, Mapping):
        entries = [
            {"region": name, **entry} for name, entry in raw.items() if isinstance(entry, Mapping)
        ]
    elif isinstance(raw, list | tuple):
        entries = [dict(entry) for entry in raw if isinstance(entry, Mapping)]
    else:
        return ()
    tested = [e for e in entries if _number(e.get("p_value")) is not None]
    if tested and any(_number(e.get("q_value")) is None for e in tested):
        for entry, q in zip(
            tested, benjamini_hochberg([float(e["p_value"]) for e in tested]), strict=True
        ):
            entry["q_value"] = q
    alpha = result.alpha if result.alpha is not None else 0.05
    rows = []
    for entry in entries:
        value, interval = _regional_value(entry)
        low, high = (
            (_number(interval[0]), _number(interval[1]))
            if isinstance(interval, list | tuple) and len(interval) == 2
            else (None, None)
        )
        q_value = _number(entry.get("q_value"))
        stations = entry.get("stations")
        rows.append(
            RegionalRow(
                region=str(entry.get("region")),
                stations=stations if isinstance(stations, int) else None,
                value=value,
                low=low,
                high=high,
                p_value=_number(entry.get("p_value")),
                q_value=q_value,
                flagged=q_value is not None and q_value < alpha,
            )
        )

    def order(row: RegionalRow) -> tuple[Any, ...]:
        if row.p_value is not None or row.q_value is not None:
            q = row.q_value if row.q_value is not None else math.inf
            p = row.p_value if row.p_value is not None else math.inf
            return (0, q, p, row.region)
        return (1, -row.value if row.value is not None else math.inf, row.region)

    return tuple(sorted(rows, key=order))


def cached_report(election: Election, cache_dir: Path) -> SuiteReport | None:
    """The results :func:`run_suite` cached for this election's current numbers; runs nothing.

    One result per method (where a method is cached with several parameter sets, the one run
    ``by_region``: its national numbers are the same), with the calibration looked up again
    (the table may be newer than the cache). None when nothing is cached; ``skipped`` is empty
    (skips are not cached).
    """
    folder = cache_dir / election.id
    if not folder.is_dir():
        return None
    digest = election.content_digest()
    found: dict[str, MethodResult] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            result = MethodResult.from_json(path.read_text("utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        previous = found.get(result.method)
        if result.input_digest == digest and (
            previous is None
            or (result.parameters.get("by_region") and not previous.parameters.get("by_region"))
        ):
            found[result.method] = result
    if not found:
        return None
    results = tuple(
        replace(r, calibration=calibration_summary(r.method, _calibrated_as(r.parameters)))
        for _, r in sorted(found.items())
    )
    return SuiteReport(
        election_id=election.id,
        input_digest=digest,
        results=results,
        skipped=(),
        simulation=election.meta.simulation_notice,
    )
