"""The verdict on one election: what the reliable methods find, in plain words, with calibration.

:func:`verdict` turns a :class:`~pollwatch.forensics.suite.SuiteReport` into a frozen
:class:`Verdict`: one headline sentence, then one :class:`Finding` per reliable method run, then
the methods that are not cited (with the reason from the calibration table) and those skipped.
The CLI (``pollwatch analyze``, ``pollwatch show``), the dashboard's election page, the HTML
report and the JSON API (``/api/elections/{id}/verdict``) only render it.

**Which methods are cited.** A method's result is *reliable* when its calibration summary
(:attr:`MethodResult.calibration <pollwatch.forensics.base.MethodResult.calibration>`, see
:mod:`pollwatch.forensics.calibration`) says ``calibrated`` is true, ``unreliable`` is false
and ``same_parameters`` is true (the result was computed with the parameters the calibration
measured), and the method is a test (decision "p-value" with a p-value on this election, or
"empirical" with a calibrated threshold). Every other result is listed under "not cited",
with the reason, never hidden and never cited.

**When a reliable method finds an anomaly.** The reliable methods run form one family tested
at ``α = 0.05`` with Holm's step-down procedure (Holm 1979, "A simple sequentially rejective
multiple test procedure", Scand. J. Statist. 6(2), 65-70): with ``m`` reliable tests and their
p-values sorted ``p(1) <= ... <= p(m)``, the ``i``-th is an anomaly when
``p(j) <= α / (m - j + 1)`` for every ``j <= i``. So on a clean election the chance that the
verdict names any anomaly is at most α (not ``m`` times α, as it would be if each method were
read at α on its own). A method without a p-value (decision "empirical") is judged by
Bonferroni, its statistic beyond the clean simulations' threshold at the largest tabulated
level at or below ``α / m`` (the smallest tabulated level when none is that small; the finding
names the level used).

**What each finding says.** The effect (or the statistic) with its name, the p-value
(:func:`~pollwatch.forensics.base.format_p_value`), the level it was judged at, the method's
false-positive rate at α on clean simulations and on clean reference units, its power against
the manipulation it detects best (from the table's ``power`` block: the injector and magnitude
with the highest rejection rate at α, the smallest magnitude on ties), and the same statistic
on the clean reference elections, whole, under the same parameters (the table's
``references.whole`` block, "not measured" when the table has none).

The wording never accuses: it speaks of anomalies and their calibration, and the word "fraud"
never stands on its own. A simulated election's verdict starts with "SIMULATED election".
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pollwatch.forensics.base import MethodResult, format_p_value
from pollwatch.forensics.calibration import (
    ALPHA,
    CalibrationTable,
    calibration_table,
    clean_rate_words,
)
from pollwatch.forensics.suite import SuiteReport

__all__ = [
    "RULE",
    "VERDICT_FORMAT",
    "Finding",
    "NotCited",
    "PowerFigure",
    "ReferenceValue",
    "Verdict",
    "verdict",
]

#: ``format`` of :meth:`Verdict.to_dict`
VERDICT_FORMAT = "pollwatch-verdict/1"

#: the rule every verdict states under its findings (the module docstring gives it in full)
RULE = (
    "cited: calibrated, not unreliable, and run with the calibrated parameters; anomalies at "
    f"α = {ALPHA} family-wise (Holm across the reliable methods run)"
)

#: parameters that never change what a method measures (see calibration ``_same``), plus
#: ``by_region``, which only adds per-region details to the national result
_NEUTRAL_PARAMETERS = frozenset({"seed", "by_region"})


def _number(value: float | None) -> str:
    """A number as the verdict prints it: thousands separators, 3-4 significant digits."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return f"{int(value):,}"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _percent(rate: float) -> str:
    return f"{100 * rate:.0f}%"


def _p_words(text: str) -> str:
    """``p < 1e-300`` or ``p = 0.03`` from :func:`format_p_value`'s text."""
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class PowerFigure:
    """How often a method flags simulations with one planted manipulation (the table's power).

    ``rate`` of ``tests`` simulated elections with ``injector`` at ``magnitude`` (``meaning``)
    planted at ``share`` of the stations are flagged at α.
    """

    injector: str
    magnitude: float
    meaning: str
    share: float | None
    rate: float
    tests: int

    def words(self) -> str:
        where = f" at {_percent(self.share)} of stations" if self.share is not None else ""
        meaning = f": {self.meaning}" if self.meaning else ""
        return (
            f"flags {_percent(self.rate)} of {self.tests:,} simulations with {self.injector} "
            f"(magnitude {self.magnitude:g}{meaning}){where}"
        )


@dataclass(frozen=True)
class ReferenceValue:
    """The method's result on one clean reference election, whole, with the same parameters."""

    reference: str
    statistic: float | None
    effect: float | None
    p_value: float | None


@dataclass(frozen=True)
class Finding:
    """What one reliable method says about the election (see the module docstring).

    ``value`` is the effect when the method has one (``quantity`` is its name), else the
    statistic; ``level`` is the level it was judged at (its Holm level, or the tabulated level
    of an empirical threshold); ``references`` is None when the table has not measured the
    clean references whole.
    """

    method: str
    title: str
    anomalous: bool
    decision: str
    quantity: str
    value: float | None
    p_value: float | None
    p_value_text: str
    level: float | None
    false_positive_rate: float | None
    simulated_tests: int
    reference_rate: float | None
    reference_tests: int
    power: PowerFigure | None = None
    references: tuple[ReferenceValue, ...] | None = None
    threshold: Any = None

    def result_words(self) -> str:
        """``excess stations over the null mean 1,709, p < 1e-300``."""
        words = f"{self.quantity} = {_number(self.value)}"
        if self.decision == "p-value":
            words += f", {_p_words(self.p_value_text)}"
        return words

    def words(self) -> str:
        """The plain-words finding: the result and whether it is an anomaly at its level."""
        level = f"{self.level:.3g}" if self.level is not None else "—"
        if self.decision == "p-value":
            judged = (
                f"an anomaly (below its level {level})"
                if self.anomalous
                else f"not an anomaly (level {level})"
            )
        else:
            judged = (
                f"an anomaly (beyond the clean simulations' threshold at α = {level})"
                if self.anomalous
                else f"not an anomaly (within the clean simulations' threshold at α = {level})"
            )
        return f"{self.result_words()}: {judged}"

    def calibration_words(self) -> str:
        """``the same test flags 2% of 200 clean simulations and 7% of 88 clean reference
        units at α = 0.05``."""
        parts = clean_rate_words(
            self.false_positive_rate,
            self.simulated_tests,
            self.reference_rate,
            self.reference_tests,
        )
        if not parts:
            return "false-positive rate not measured"
        return f"the same test flags {' and '.join(parts)} at α = {ALPHA}"

    def power_words(self) -> str:
        return f"power: {self.power.words()}" if self.power else "power: not measured"

    def reference_words(self) -> str:
        """The clean references' values of the same quantity, and where this election stands."""
        if self.references is None:
            return "clean references, whole, same parameters: not measured"
        if not self.references:
            return "clean references, whole, same parameters: none ran"
        use_effect = self.quantity != "" and any(r.effect is not None for r in self.references)
        values = []
        numbers = []
        for ref in self.references:
            number = ref.effect if use_effect else ref.statistic
            text = f"{ref.reference} {_number(number)}"
            if ref.p_value is not None:
                text += f" ({_p_words(format_p_value(ref.p_value))})"
            values.append(text)
            if number is not None:
                numbers.append(number)
        words = "clean references, whole, same parameters: " + ", ".join(values)
        if numbers and self.value is not None:
            if self.value > max(numbers):
                words += f"; this election is above all {len(numbers)}"
            elif self.value < min(numbers):
                words += f"; this election is below all {len(numbers)}"
            else:
                words += "; this election is within their range"
        return words

    def lines(self) -> list[str]:
        """The finding's sentences after its method name, one per line."""
        return [self.words(), self.calibration_words(), self.power_words(), self.reference_words()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "title": self.title,
            "anomalous": self.anomalous,
            "decision": self.decision,
            "quantity": self.quantity,
            "value": self.value,
            "p_value": self.p_value,
            "p_value_text": self.p_value_text,
            "level": self.level,
            "threshold": self.threshold,
            "false_positive_rate": self.false_positive_rate,
            "simulated_tests": self.simulated_tests,
            "reference_rate": self.reference_rate,
            "reference_tests": self.reference_tests,
            "power": None if self.power is None else vars(self.power).copy(),
            "references": None
            if self.references is None
            else [vars(r).copy() for r in self.references],
            "words": self.words(),
            "calibration_words": self.calibration_words(),
            "power_words": self.power_words(),
            "reference_words": self.reference_words(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        power = data.get("power")
        references = data.get("references")
        return cls(
            method=data["method"],
            title=data["title"],
            anomalous=bool(data["anomalous"]),
            decision=data["decision"],
            quantity=data["quantity"],
            value=data.get("value"),
            p_value=data.get("p_value"),
            p_value_text=data["p_value_text"],
            level=data.get("level"),
            threshold=data.get("threshold"),
            false_positive_rate=data.get("false_positive_rate"),
            simulated_tests=int(data.get("simulated_tests") or 0),
            reference_rate=data.get("reference_rate"),
            reference_tests=int(data.get("reference_tests") or 0),
            power=None if power is None else PowerFigure(**power),
            references=None
            if references is None
            else tuple(ReferenceValue(**r) for r in references),
        )


@dataclass(frozen=True)
class NotCited:
    """A method that ran but is not cited, why (from the calibration table), and what it gave."""

    method: str
    title: str
    reason: str
    result: str

    def to_dict(self) -> dict[str, Any]:
        return vars(self).copy()


@dataclass(frozen=True)
class Verdict:
    """The verdict on one election (see the module docstring for the rule and the wording).

    Attributes:
        election_id, input_digest: the election and its content digest.
        simulation: the election's simulation notice (None for real results).
        alpha: the family-wise level (0.05).
        headline: one sentence; the first thing every rendering shows.
        anomalous: whether any reliable method finds an anomaly.
        findings: one per reliable method run, anomalies first, then by method name.
        not_cited: the methods that ran but are unreliable, uncalibrated, run with other
            parameters than those calibrated, or descriptive, each with the reason.
        skipped: ``(method, reason)`` for the methods the election could not support.
        not_run: methods the calibration table finds reliable that were not run here.
        calibration_source: the command and date of the calibration table.
    """

    election_id: str
    input_digest: str
    simulation: str | None
    alpha: float
    headline: str
    anomalous: bool
    findings: tuple[Finding, ...]
    not_cited: tuple[NotCited, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    not_run: tuple[str, ...] = ()
    calibration_source: str = ""
    rule: str = RULE

    # --- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (format :data:`VERDICT_FORMAT`); :meth:`from_dict` inverts it."""
        return {
            "format": VERDICT_FORMAT,
            "election_id": self.election_id,
            "input_digest": self.input_digest,
            "simulation": self.simulation,
            "alpha": self.alpha,
            "headline": self.headline,
            "anomalous": self.anomalous,
            "rule": self.rule,
            "findings": [f.to_dict() for f in self.findings],
            "not_cited": [n.to_dict() for n in self.not_cited],
            "skipped": [{"method": m, "reason": r} for m, r in self.skipped],
            "not_run": list(self.not_run),
            "calibration_source": self.calibration_source,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            election_id=data["election_id"],
            input_digest=data["input_digest"],
            simulation=data.get("simulation"),
            alpha=float(data["alpha"]),
            headline=data["headline"],
            anomalous=bool(data["anomalous"]),
            rule=data.get("rule", RULE),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
            not_cited=tuple(
                NotCited(
                    method=n["method"], title=n["title"], reason=n["reason"], result=n["result"]
                )
                for n in data.get("not_cited", ())
            ),
            skipped=tuple((s["method"], s["reason"]) for s in data.get("skipped", ())),
            not_run=tuple(data.get("not_run", ())),
            calibration_source=data.get("calibration_source", ""),
        )

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        return cls.from_dict(json.loads(text))

    # --- renderings --------------------------------------------------------------------------
    def text(self) -> str:
        """Plain text, unwrapped: the headline, the findings, the methods not cited."""
        lines = [self.headline, ""]
        if self.findings:
            lines.append("Reliable methods:")
            for finding in self.findings:
                mark = "ANOMALY" if finding.anomalous else "no anomaly"
                lines.append(f"- {finding.method} ({mark}): " + "; ".join(finding.lines()))
        if self.not_run:
            lines.append("Reliable methods not run here: " + ", ".join(self.not_run))
        if self.not_cited:
            lines.append("Not cited (from the calibration table):")
            lines += [f"- {n.method}: {n.reason}; it gave {n.result}" for n in self.not_cited]
        if self.skipped:
            lines.append("Skipped:")
            lines += [f"- {m}: {r}" for m, r in self.skipped]
        return "\n".join(lines) + "\n"

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.padding import Padding
        from rich.rule import Rule
        from rich.text import Text

        parts: list[Any] = [Rule(f"Verdict: {self.election_id}", align="left")]
        style = "bold red" if self.anomalous else "bold"
        if self.simulation:
            style = "bold yellow"
        parts.append(Text(self.headline, style=style))
        if self.findings:
            parts.append(Text("\nReliable methods (cited):", style="bold"))
            for finding in self.findings:
                mark = "ANOMALY" if finding.anomalous else "no anomaly"
                head = Text(f"{finding.method} ", style="bold")
                head.append(f"({mark})", style="bold red" if finding.anomalous else "green")
                head.append(f" {finding.title}")
                parts.append(Padding(head, (0, 0, 0, 2)))
                parts += [Padding(Text(line), (0, 0, 0, 4)) for line in finding.lines()]
        if self.not_run:
            parts.append(
                Text(
                    "\nReliable methods not run here: " + ", ".join(self.not_run),
                    style="yellow",
                )
            )
        if self.not_cited:
            parts.append(Text("\nNot cited (reason from the calibration table):", style="bold"))
            for item in self.not_cited:
                line = Text(f"{item.method}: ", style="bold")
                line.append(item.reason, style="red")
                line.append(f"; it gave {item.result}")
                parts.append(Padding(line, (0, 0, 0, 2)))
        if self.skipped:
            parts.append(Text("\nSkipped:", style="bold"))
            parts += [Padding(Text(f"{m}: {r}"), (0, 0, 0, 2)) for m, r in self.skipped]
        parts.append(Text(f"\n{self.rule}; calibration: {self.calibration_source}", style="dim"))
        return Group(*parts)

    def html(self) -> str:
        """The verdict as an HTML section (``<section id="verdict">``), everything escaped."""
        e = html.escape
        kind = "anomalous" if self.anomalous else "no-anomaly"
        out = [f'<section id="verdict" class="verdict {kind}">', "<h2>Verdict</h2>"]
        out.append(f'<p id="verdict-headline" class="headline"><b>{e(self.headline)}</b></p>')
        if self.findings:
            out.append('<h3>Reliable methods (cited)</h3><ul id="verdict-findings">')
            for f in self.findings:
                mark = (
                    '<span class="anomaly">ANOMALY</span>'
                    if f.anomalous
                    else '<span class="none">no anomaly</span>'
                )
                items = "".join(f"<li>{e(line)}</li>" for line in f.lines())
                out.append(
                    f'<li data-method="{e(f.method)}"><b>{e(f.method)}</b> ({mark}) '
                    f"{e(f.title)}<ul>{items}</ul></li>"
                )
            out.append("</ul>")
        if self.not_run:
            out.append(
                f'<p class="note">Reliable methods not run here: {e(", ".join(self.not_run))}</p>'
            )
        if self.not_cited:
            out.append('<h3>Not cited (reason from the calibration table)</h3><ul id="not-cited">')
            out += [
                f'<li data-method="{e(n.method)}"><b>{e(n.method)}</b>: '
                f'<span class="unreliable">{e(n.reason)}</span>; it gave {e(n.result)}</li>'
                for n in self.not_cited
            ]
            out.append("</ul>")
        if self.skipped:
            out.append('<h3>Skipped</h3><ul id="verdict-skipped">')
            out += [f"<li><b>{e(m)}</b>: {e(r)}</li>" for m, r in self.skipped]
            out.append("</ul>")
        out.append(f'<p class="note">{e(self.rule)}; calibration: {e(self.calibration_source)}</p>')
        out.append("</section>")
        return "".join(out)

    def _repr_html_(self) -> str:
        return self.html()


# --- building the verdict -------------------------------------------------------------------
def _not_cited_reason(result: MethodResult, entry: Mapping[str, Any] | None) -> str:
    """Why a result is not cited, or "" when it may be (see the module docstring)."""
    calibration = result.calibration
    if calibration is None or not calibration.calibrated:
        return "not calibrated (the calibration table has no entry for it)"
    reasons = []
    if calibration.decision == "none":
        reasons.append("descriptive (not a test)")
    if calibration.unreliable:
        reason = calibration.unreliable_reason or "unreliable on clean elections"
        reasons.append("unreliable: " + reason.replace("alpha = ", "α = "))
    if not calibration.same_parameters:
        calibrated = (entry or {}).get("parameters", {}) if entry else {}
        differ = [
            key
            for key in sorted(set(calibrated) | set(result.parameters))
            if key not in _NEUTRAL_PARAMETERS and calibrated.get(key) != result.parameters.get(key)
        ]
        reasons.append(
            "run with other parameters than those calibrated"
            + (f" ({', '.join(differ)})" if differ else "")
        )
    if reasons:
        return "; ".join(reasons)
    if calibration.decision == "p-value" and result.p_value is None:
        return "gave no p-value on this election"
    if calibration.decision == "empirical" and not (entry or {}).get("thresholds"):
        return "no calibrated threshold"
    return ""


def _decision(result: MethodResult) -> str:
    return result.calibration.decision if result.calibration is not None else "p-value"


def _result_words(result: MethodResult) -> str:
    words = f"{result.statistic_name} = {_number(result.statistic)}"
    if result.p_value is not None:
        words += f", {_p_words(result.p_value_text())}"
    return words


def _power(entry: Mapping[str, Any], generated: Mapping[str, Any]) -> PowerFigure | None:
    """The injector and magnitude the method flags most often at α (smallest magnitude on ties,
    then injector name); ``generated`` is what the power was measured at
    (:meth:`~pollwatch.forensics.calibration.CalibrationTable.power_settings`)."""
    block = entry.get("power")
    if not isinstance(block, Mapping):
        return None
    order = generated.get("magnitudes", {})
    meanings = generated.get("meanings", {})
    best: tuple[Any, ...] | None = None
    for injector, by_magnitude in block.items():
        if not isinstance(by_magnitude, Mapping):
            continue
        listed = [
            f"{m:g}" if isinstance(m, int | float) else str(m) for m in order.get(injector, ())
        ]
        for magnitude, levels in by_magnitude.items():
            rate_block = levels.get(ALPHA) if isinstance(levels, Mapping) else None
            if not isinstance(rate_block, Mapping):
                continue
            rate, tests = _float(rate_block.get("rate")), int(rate_block.get("tests") or 0)
            if rate is None or tests == 0:
                continue
            position = listed.index(magnitude) if magnitude in listed else len(listed)
            key = (-rate, position, _float(_magnitude(magnitude)) or 0.0, injector)
            if best is None or key < best[0]:
                best = (key, injector, magnitude, rate, tests)
    if best is None:
        return None
    _, injector, magnitude, rate, tests = best
    return PowerFigure(
        injector=injector,
        magnitude=_magnitude(magnitude),
        meaning=str(meanings.get(injector, "")),
        share=_float(generated.get("share")),
        rate=rate,
        tests=tests,
    )


def _magnitude(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _references(entry: Mapping[str, Any]) -> tuple[ReferenceValue, ...] | None:
    """The clean references' whole-election values (``references.whole``), None if unmeasured."""
    references = entry.get("references")
    whole = references.get("whole") if isinstance(references, Mapping) else None
    if not isinstance(whole, Mapping):
        return None
    return tuple(
        ReferenceValue(
            reference=str(reference),
            statistic=_float(values.get("statistic")),
            effect=_float(values.get("effect")),
            p_value=_float(values.get("p_value")),
        )
        for reference, values in sorted(whole.items())
        if isinstance(values, Mapping)
    )


def _threshold_at(entry: Mapping[str, Any], level: float) -> tuple[str, Any] | None:
    """The tabulated empirical threshold at the largest level <= ``level`` (else the smallest)."""
    thresholds = entry.get("thresholds")
    if not isinstance(thresholds, Mapping) or not thresholds:
        return None
    levels = sorted((float(k), k) for k in thresholds if thresholds[k] is not None)
    if not levels:
        return None
    at_or_below = [item for item in levels if item[0] <= level * (1 + 1e-12)]
    _, key = at_or_below[-1] if at_or_below else levels[0]
    return key, thresholds[key]


def _beyond(statistic: float, threshold: Any, tail: str) -> bool:
    """Whether ``statistic`` lies beyond ``threshold`` in ``tail`` (as the harness decides)."""
    if tail == "lower":
        return statistic < float(threshold)
    if tail == "two-sided":
        low, high = threshold
        return statistic < float(low) or statistic > float(high)
    return statistic > float(threshold)


def _finding(
    result: MethodResult,
    entry: Mapping[str, Any],
    table: CalibrationTable,
    *,
    anomalous: bool,
    level: float | None,
    threshold: Any = None,
) -> Finding:
    calibration = result.calibration
    assert calibration is not None  # only calibrated results are findings
    has_effect = bool(result.effect_name)
    return Finding(
        method=result.method,
        title=result.title,
        anomalous=anomalous,
        decision=calibration.decision,
        quantity=result.effect_name if has_effect else result.statistic_name,
        value=_float(result.effect if has_effect else result.statistic),
        p_value=_float(result.p_value),
        p_value_text=result.p_value_text(),
        level=level,
        threshold=threshold,
        false_positive_rate=_float(calibration.false_positive_rate),
        simulated_tests=calibration.simulated_tests,
        reference_rate=_float(calibration.reference_rate),
        reference_tests=calibration.reference_tests,
        power=_power(entry, table.power_settings(result.method)),
        references=_references(entry),
    )


def _holm(p_values: Sequence[float], family: int, alpha: float) -> list[tuple[bool, float]]:
    """Holm's step-down decisions and levels, in the order of ``p_values``.

    ``family`` is the number of hypotheses (at least ``len(p_values)``: the empirical tests
    count too). The i-th smallest p-value is judged at ``alpha / (family - i)`` (i from 0) and
    rejected only if every smaller one was.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    decisions: list[tuple[bool, float]] = [(False, alpha)] * len(p_values)
    rejecting = True
    for rank, index in enumerate(order):
        level = alpha / (family - rank)
        rejecting = rejecting and p_values[index] <= level
        decisions[index] = (rejecting, level)
    return decisions


def _headline(
    findings: Sequence[Finding], not_cited: Sequence[NotCited], simulation: str | None
) -> str:
    alpha = ALPHA
    anomalies = [f for f in findings if f.anomalous]
    if anomalies:
        cited = "; ".join(f"{f.method} ({f.result_words()})" for f in anomalies)
        text = (
            f"{len(anomalies)} of {len(findings)} reliable method"
            f"{'s' if len(findings) != 1 else ''} "
            f"find{'s' if len(findings) == 1 else ''} an anomaly at α = {alpha} "
            f"(family-wise, Holm): {cited}."
        )
    elif findings:
        names = ", ".join(f.method for f in findings)
        text = (
            f"No reliable method finds an anomaly at α = {alpha} (family-wise, Holm; "
            f"{len(findings)} run: {names})."
        )
    else:
        text = (
            f"No reliable method was run, so there is no verdict at α = {alpha}: "
            f"{len(not_cited)} method{'s' if len(not_cited) != 1 else ''} ran, none of them "
            "reliable on clean elections (listed below)."
        )
    return f"SIMULATED election: {text}" if simulation else text


def verdict(
    report: SuiteReport,
    *,
    simulation: str | None = None,
    table: CalibrationTable | None = None,
) -> Verdict:
    """The verdict on the election of ``report`` (the rule is in the module docstring).

    ``simulation`` is the election's :attr:`~pollwatch.results.model.ElectionMeta.simulation_notice`
    (the verdict of a simulated election says so first); ``table`` defaults to the shipped
    calibration tables (:func:`~pollwatch.forensics.calibration.calibration_table`: they give
    the power and the clean references' values; reliability comes from each result's own
    calibration summary).
    """
    table = calibration_table() if table is None else table
    entries: Mapping[str, Any] = table.entries()
    alpha = float(ALPHA)
    reliable: list[tuple[MethodResult, Mapping[str, Any]]] = []
    not_cited: list[NotCited] = []
    for result in sorted(report.results, key=lambda r: r.method):
        entry = entries.get(result.method)
        entry = entry if isinstance(entry, Mapping) else None
        reason = _not_cited_reason(result, entry)
        if reason or entry is None:
            not_cited.append(
                NotCited(
                    method=result.method,
                    title=result.title,
                    reason=reason or "not calibrated (the calibration table has no entry for it)",
                    result=_result_words(result),
                )
            )
        else:
            reliable.append((result, entry))
    family = len(reliable)
    tested = [(r, e) for r, e in reliable if _decision(r) == "p-value"]
    p_values = [1.0 if r.p_value is None else float(r.p_value) for r, _ in tested]
    decisions = _holm(p_values, family, alpha)
    findings = [
        _finding(result, entry, table, anomalous=anomalous, level=level)
        for (result, entry), (anomalous, level) in zip(tested, decisions, strict=True)
    ]
    for result, entry in reliable:
        if _decision(result) != "empirical":
            continue
        found = _threshold_at(entry, alpha / family)
        statistic = _float(result.statistic)
        if found is None or statistic is None:
            not_cited.append(
                NotCited(
                    result.method, result.title, "no calibrated threshold", _result_words(result)
                )
            )
            continue
        key, threshold = found
        tail = str(entry.get("tail", "upper"))
        findings.append(
            _finding(
                result,
                entry,
                table,
                anomalous=_beyond(statistic, threshold, tail),
                level=float(key),
                threshold=threshold,
            )
        )
    findings.sort(key=lambda f: (not f.anomalous, f.method))
    ran = {r.method for r in report.results} | {m for m, _ in report.skipped}
    not_run = tuple(
        sorted(
            name
            for name, entry in entries.items()
            if isinstance(entry, Mapping)
            and name not in ran
            and not entry.get("unreliable", False)
            and entry.get("decision") in ("p-value", "empirical")
        )
    )
    source = table.source()
    return Verdict(
        election_id=report.election_id,
        input_digest=report.input_digest,
        simulation=simulation,
        alpha=alpha,
        headline=_headline(findings, not_cited, simulation),
        anomalous=any(f.anomalous for f in findings),
        findings=tuple(findings),
        not_cited=tuple(sorted(not_cited, key=lambda n: n.method)),
        skipped=tuple(report.skipped),
        not_run=not_run,
        calibration_source=source,
    )
