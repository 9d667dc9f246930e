"""``pollwatch calibrate``: false-positive rates and power of every method, in parallel on Ray.

Composes :mod:`pollwatch.calibration.harness` (the cells and the table),
:mod:`pollwatch.calibration.executors` (serial or Ray) and :mod:`pollwatch.calibration.docs`
(the generated page), with a progress bar and a summary table. Finished cells are cached under
``<home>/calibration/``, so an interrupted run resumes.

``--write-table`` with ``--method`` replaces only those methods' entries in the shipped table
(:func:`~pollwatch.calibration.harness.merge_tables`), and only when the run's plan is the
table's; otherwise it stops before running, naming the settings that differ.

``pollwatch calibrate-stress`` prints the planted-vs-estimated table of
:mod:`pollwatch.calibration.stress` (the table of ``docs/stress-tests.md``).
"""

from __future__ import annotations

import os
import shlex
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pollwatch.errors import PollwatchError
from pollwatch.settings import Settings, load_settings

__all__ = ["calibrate_command", "register", "stress_command"]

console = Console()
err_console = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    state: Any = ctx.find_root().obj
    settings = getattr(state, "settings", None)
    return settings if isinstance(settings, Settings) else load_settings()


def _write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()


def _command_line(
    *,
    elections: int,
    stations: int,
    replicates: int,
    references: bool,
    subsamples: int,
    methods: list[str] | None,
    executor: str,
    workers: int,
    seed: int,
    docs: Path | None,
) -> str:
    """The command that regenerates the table and page (paths as given, relative ones kept)."""
    words = [
        "pollwatch",
        "calibrate",
        "--elections",
        str(elections),
        "--stations",
        str(stations),
        "--replicates",
        str(replicates),
        "--references" if references else "--no-references",
    ]
    if references:
        words += ["--subsamples", str(subsamples)]
    for name in methods or []:
        words += ["--method", name]
    words += ["--executor", executor, "--workers", str(workers), "--seed", str(seed)]
    words.append("--write-table")
    if docs is not None:
        words += ["--docs", docs.as_posix()]
    return shlex.join(words)


def _summary(table: dict[str, Any]) -> Table:
    alphas = table["generated"].get("alphas", ["0.05"])
    first = alphas[0]
    out = Table(title=f"Calibration at α = {first}", title_justify="left")
    for column in ("method", "decision", "clean sims", "clean refs", "power"):
        out.add_column(
            column,
            justify="left" if column in ("method", "decision") else "right",
            no_wrap=column in ("method", "decision"),
        )
    out.add_column("reliable", no_wrap=True)

    def rate(block: dict[str, Any] | None) -> str:
        if not block or not block.get("tests"):
            return "—"
        return f"{100 * block['rate']:.0f}%/{block['tests']:,}"

    for name, entry in table["methods"].items():
        powers = [
            magnitude[first]["rate"]
            for injector in entry.get("power", {}).values()
            for magnitude in injector.values()
            if magnitude[first]["tests"]
        ]
        spread = f"{100 * min(powers):.0f}–{100 * max(powers):.0f}%" if powers else "—"
        out.add_row(
            escape(name),
            entry["decision"],
            rate(entry["simulated"].get(first)),
            rate(entry["references"].get(first)),
            spread,
            "[red]unreliable[/]" if entry["unreliable"] else "yes",
        )
    return out


def calibrate_command(
    ctx: typer.Context,
    elections: Annotated[
        int, typer.Option("--elections", help="Clean simulated elections (each one test).")
    ] = 1000,
    stations: Annotated[int, typer.Option(help="Stations per simulated election.")] = 100_000,
    replicates: Annotated[
        int, typer.Option(help="Simulated elections per manipulation and magnitude.")
    ] = 20,
    references: Annotated[
        bool,
        typer.Option(
            "--references/--no-references",
            help="Also the real clean references from the data mirror (POLLWATCH_DATA_MIRROR).",
        ),
    ] = True,
    subsamples: Annotated[int, typer.Option(help="Random subsamples per reference.")] = 20,
    method: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help="Method to calibrate (default: every registered)."),
    ] = None,
    executor: Annotated[str, typer.Option(help="ray (parallel) or serial (one process).")] = "ray",
    workers: Annotated[
        int, typer.Option(help="CPUs of the local Ray (ignored with --address).")
    ] = (os.cpu_count() or 1),
    address: Annotated[
        str | None, typer.Option(help="Join the Ray cluster at HOST:PORT instead of a local one.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Root seed of every simulation and draw.")] = 0,
    write_table: Annotated[
        bool,
        typer.Option(
            "--write-table", help="Update src/pollwatch/forensics/calibration.json (shipped)."
        ),
    ] = False,
    docs: Annotated[
        Path | None, typer.Option(help="Regenerate the docs page, e.g. docs/calibration.md.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the calibration table here too.")
    ] = None,
) -> None:
    """Measure every method's false-positive rate and power (resumable; cells are cached)."""
    from pollwatch.calibration.docs import render_markdown, render_power_svg
    from pollwatch.calibration.harness import (
        CalibrationPlan,
        build_table,
        check_same_plan,
        default_table_path,
        merge_tables,
        run_calibration,
        table_json,
    )

    if executor not in ("ray", "serial"):
        raise PollwatchError(f"unknown executor {executor!r}", hint="use --executor ray or serial")
    settings = _settings(ctx)
    plan = CalibrationPlan(
        elections=elections,
        stations=stations,
        replicates=replicates,
        references=None if references else (),
        subsamples=subsamples,
        methods=tuple(method) if method else None,
        seed=seed,
    )
    plan.method_specs()  # an unknown method fails before anything runs
    shipped = _shipped_table(default_table_path()) if write_table and method else None
    if shipped is not None:
        # a subset run replaces entries of the shipped table: same plan, or nothing runs
        check_same_plan(shipped, plan, where=f"the shipped table {default_table_path()}")
    command = _command_line(
        elections=elections,
        stations=stations,
        replicates=replicates,
        references=references,
        subsamples=subsamples,
        methods=method,
        executor=executor,
        workers=workers,
        seed=seed,
        docs=docs,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("calibrating", total=None, speed="")
        started = time.perf_counter()
        computed = 0

        def report(done: int, total: int, key: str, fresh: bool) -> None:
            nonlocal computed
            computed += int(fresh)
            elapsed = time.perf_counter() - started
            speed = f"{computed / elapsed:.2f} elections/s" if computed and elapsed > 0 else ""
            bar.update(task, completed=done, total=total, speed=speed, description=key or "cells")

        progress: Callable[[int, int, str, bool], None] = report
        run = run_calibration(
            plan,
            settings=settings,
            executor=executor,
            workers=workers,
            address=address,
            progress=progress,
        )
    table = build_table(run, command=command)
    console.print(_summary(table))
    rate = run.elections_per_second
    console.print(
        f"{len(run.records):,} cells: {run.computed:,} computed, {run.cached:,} from the cache "
        f"({run.folder}); {run.seconds:,.1f} s"
        + (f", {rate:.2f} elections/s on {executor} with {workers} workers" if rate else ""),
        soft_wrap=True,
    )
    if shipped is not None:
        table = merge_tables(shipped, table)
        console.print(
            f"merged {len(method or [])} method(s) into the shipped table "
            f"({len(table['methods'])} in all)",
            soft_wrap=True,
        )
    text = table_json(table)
    if write_table:
        target = default_table_path()
        _write(target, text)
        console.print(f"wrote {target}", soft_wrap=True)
    if json_out is not None:
        _write(json_out, text)
        console.print(f"wrote {json_out}", soft_wrap=True)
    if docs is not None:
        svg = docs.with_name(f"{docs.stem}-power.svg")
        _write(svg, render_power_svg(table))
        _write(docs, render_markdown(table, power_svg=svg.name))
        console.print(f"wrote {docs} and {svg}", soft_wrap=True)


def _shipped_table(path: Path) -> dict[str, Any] | None:
    """The shipped table at ``path``, or None when there is none (a subset run writes alone)."""
    import json

    from pollwatch.calibration.harness import TABLE_FORMAT

    try:
        table = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PollwatchError(
            f"{path}: the shipped calibration table cannot be read ({exc})",
            hint="restore it from git, or leave out --method to write a whole new table",
        ) from None
    if not isinstance(table, dict) or table.get("format") != TABLE_FORMAT:
        return None
    return table


def stress_command(
    stations: Annotated[int, typer.Option(help="Stations per simulated election.")] = 3000,
    seeds: Annotated[
        int, typer.Option(help="Simulations per case and share, seeds 0 to SEEDS - 1.")
    ] = 20,
    method: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help="Only this method's cases (repeat; default all)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every point and row as JSON here.")
    ] = None,
) -> None:
    """Planted manipulation at 0-90 % of stations against each method's estimate of it."""
    import json

    from pollwatch.calibration.stress import STRESS_CASES, run_stress

    cases = [c for c in STRESS_CASES if not method or c.method in method]
    if not cases:
        known = sorted({c.method for c in STRESS_CASES})
        raise PollwatchError(
            f"no stress case for method(s) {', '.join(method or [])}",
            hint=f"methods with stress cases: {', '.join(known)}",
        )
    if seeds < 1:
        raise PollwatchError(f"--seeds {seeds} must be at least 1", hint="e.g. --seeds 20")
    chosen = tuple(range(seeds))
    started = time.perf_counter()
    with err_console.status(f"{len(cases)} cases x 5 shares x {seeds} seeds"):
        result = run_stress(stations=stations, seeds=chosen, cases=cases)
    console.print(result.markdown(), markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"{len(result.points)} simulated elections of {stations:,} stations, seeds 0-"
        f"{seeds - 1}; {time.perf_counter() - started:,.1f} s",
        soft_wrap=True,
    )
    if json_out is not None:
        _write(json_out, json.dumps(result.to_dict(), indent=1) + "\n")
        console.print(f"wrote {json_out}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``pollwatch calibrate`` and ``pollwatch calibrate-stress`` to the command line."""
    app.command("calibrate")(calibrate_command)
    app.command("calibrate-stress")(stress_command)
