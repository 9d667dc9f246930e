"""Each method's measured calibration, carried by every result it produces.

``pollwatch calibrate --write-table`` measures, for every registered method, how often it flags
clean elections (simulated ones and real clean references split into regions and subsamples) and
how often it flags elections with planted manipulation, and writes the table to
``calibration.json`` beside this module (format ``pollwatch-calibration/1``, described in
``docs/calibration.md``). This module reads that table and turns a method's entry into the
summary that :meth:`~pollwatch.forensics.base.Method.result` puts in
:attr:`MethodResult.calibration <pollwatch.forensics.base.MethodResult.calibration>`, so that a
p-value is always shown beside "this method flags X % of clean elections".

A method is **unreliable** when its false-positive rate at the nominal level on clean
simulations or on the clean references is above that level beyond sampling error (the lower end
of the 95 % Wilson interval exceeds it). Unreliable methods are marked, never hidden.

The summary (all keys always present)::

    calibrated          whether the table has an entry for the method
    decision            "p-value" (flags when p < alpha), "empirical" (statistic beyond the clean
                        simulations' quantile), "none" (descriptive)
    alpha               0.05
    false_positive_rate rate at alpha on clean simulations (None when not measured)
    simulated_tests     how many simulated elections that rate rests on
    reference_rate      rate at alpha over the clean reference units (None when not measured)
    reference_tests     how many reference units (regions, states, subsamples) it rests on
    unreliable          bool
    unreliable_reason   one line, or ""
    threshold           the empirical threshold at alpha (empirical decisions only)
    same_parameters     whether the result's parameters are those the table was measured with
                        (true when no parameters are given: the method in general)
    source              the command and date that produced the table
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "ALPHA",
    "TABLE_FORMAT",
    "calibration_summary",
    "calibration_table",
    "calibration_words",
]

TABLE_FORMAT = "pollwatch-calibration/1"
#: the level the summary reports (the table also has 0.01)
ALPHA = "0.05"


@cache
def calibration_table() -> Mapping[str, Any]:
    """The shipped calibration table, or an empty mapping when none has been written yet."""
    try:
        text = (
            resources.files("pollwatch.forensics").joinpath("calibration.json").read_text("utf-8")
        )
    except (FileNotFoundError, OSError):
        return {}
    try:
        table = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(table, dict) or table.get("format") != TABLE_FORMAT:
        return {}
    return table


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
    table: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The calibration summary of ``method`` (see the module docstring); empty if uncalibrated.

    ``table`` defaults to the shipped one; tests pass their own.
    """
    table = calibration_table() if table is None else table
    entry = table.get("methods", {}).get(method) if table else None
    if not isinstance(entry, Mapping):
        return {}
    simulated, simulated_tests = _rate(entry.get("simulated"))
    reference, reference_tests = _rate(entry.get("references"))
    generated = table.get("generated", {})
    summary: dict[str, Any] = {
        "calibrated": True,
        "decision": entry.get("decision", "p-value"),
        "alpha": float(ALPHA),
        "false_positive_rate": simulated,
        "simulated_tests": simulated_tests,
        "reference_rate": reference,
        "reference_tests": reference_tests,
        "unreliable": bool(entry.get("unreliable", False)),
        "unreliable_reason": str(entry.get("unreliable_reason", "")),
        "threshold": (entry.get("thresholds") or {}).get(ALPHA),
        "same_parameters": parameters is None or _same(entry.get("parameters", {}), parameters),
        "source": f"{generated.get('command', 'pollwatch calibrate')} "
        f"({generated.get('date', 'undated')})",
    }
    return summary


def calibration_words(calibration: Mapping[str, Any]) -> str:
    """One line for tables and reports: what the method does on clean elections."""
    if not calibration:
        return "not calibrated"
    if calibration.get("decision") == "none":
        return "descriptive (not a test)"
    parts = []
    rate = calibration.get("false_positive_rate")
    if rate is not None:
        parts.append(
            f"flags {100 * rate:.0f}% of {calibration.get('simulated_tests', 0):,} clean "
            "simulations"
        )
    reference = calibration.get("reference_rate")
    if reference is not None:
        parts.append(
            f"{100 * reference:.0f}% of {calibration.get('reference_tests', 0):,} clean "
            "reference units"
        )
    words = ", ".join(parts) + f" at α = {calibration.get('alpha', 0.05):g}" if parts else ""
    if calibration.get("unreliable"):
        # tables written before the reasons said "α" spell it "alpha"; one symbol in what users read
        reason = str(calibration.get("unreliable_reason") or "").replace("alpha = ", "α = ")
        words = "UNRELIABLE: " + (reason or words)
    if not calibration.get("same_parameters", True):
        words += " (measured with other parameters)"
    return words or "not calibrated"
