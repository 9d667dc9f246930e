"""``pollwatch turnout``: turnout over a series of stored elections, and threshold scenarios.

Without ``--threshold`` it prints the series (:func:`pollwatch.turnout.turnout_series`); with
it, for each election the units failing the threshold, their registered voters and the outcome,
also with Shpilkin's anomalous ballots taken out
(:func:`pollwatch.turnout.threshold_scenario`). See ``docs/turnout.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pollwatch.errors import PollwatchError
from pollwatch.results.store import ElectionStore
from pollwatch.turnout import (
    LEVELS,
    load_region_mapping,
    shpilkin_estimate,
    threshold_scenario,
    turnout_series,
)

from .state import console
from .state import settings as _settings

__all__ = ["register", "turnout_command"]


def turnout_command(
    ctx: typer.Context,
    election_ids: Annotated[
        list[str], typer.Argument(help="Stored election ids (a series; any order).")
    ],
    threshold: Annotated[
        float | None,
        typer.Option(help="Minimum turnout in percent: list the units that would fail it."),
    ] = None,
    level: Annotated[
        str, typer.Option(help="Units the threshold applies to: " + ", ".join(LEVELS) + ".")
    ] = "region",
    majority: Annotated[
        bool,
        typer.Option(
            "--majority", help="The vote needs a turnout and a majority (of the ballots cast)."
        ),
    ] = False,
    mapping: Annotated[
        Path | None,
        typer.Option(help="Region mapping file (TOML) for renamed or merged regions."),
    ] = None,
    abroad: Annotated[
        bool, typer.Option("--abroad", help="Count stations abroad (left out by default).")
    ] = False,
    forensic: Annotated[
        bool,
        typer.Option(
            "--forensic/--no-forensic",
            help="Also take out Shpilkin's estimate of anomalous ballots (the clean turnout).",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Turnout over a series of elections, or which units a minimum turnout would fail."""
    settings = _settings(ctx)
    if level not in LEVELS:
        raise PollwatchError(
            f"--level {level!r} is unknown", hint=f"use one of {', '.join(LEVELS)}"
        )
    store = ElectionStore(settings.elections_dir)
    elections = [store.load(election_id) for election_id in election_ids]
    if threshold is None:
        region_mapping = load_region_mapping(mapping) if mapping is not None else None
        series = turnout_series(elections, mapping=region_mapping, abroad=abroad)
        if as_json:
            console.print_json(json.dumps(series.to_dict(), ensure_ascii=False))
        else:
            console.print(series)
        return
    if not 0 < threshold <= 100:
        raise PollwatchError(
            f"--threshold {threshold:g} is not a percentage", hint="give 0 < PCT <= 100, e.g. 50"
        )
    scenarios = []
    for election in elections:
        estimate = shpilkin_estimate(election, settings.analysis_dir) if forensic else None
        scenarios.append(
            threshold_scenario(
                election,
                threshold / 100,
                level=level,  # type: ignore[arg-type]
                majority=majority,
                estimate=estimate,
                abroad=abroad,
            )
        )
    if as_json:
        payload: Any = [s.to_dict() for s in scenarios]
        console.print_json(
            json.dumps(payload if len(payload) > 1 else payload[0], ensure_ascii=False)
        )
        return
    for position, scenario in enumerate(scenarios):
        if position:
            console.print()
        console.print(scenario)


def register(app: typer.Typer) -> None:
    """Add ``pollwatch turnout`` to the command line."""
    app.command("turnout")(turnout_command)
