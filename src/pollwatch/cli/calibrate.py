"""``pollwatch calibrate``: false-positive rates and power of each method, in parallel on Ray.

Composes :mod:`pollwatch.calibration.harness` (the cells and the table files),
:mod:`pollwatch.calibration.executors` (serial or Ray) and :mod:`pollwatch.calibration.docs`
(the generated page), with a progress bar and a summary table. Finished cells (one method on
one election) are cached under ``<home>/calibration/``, so an interrupted run resumes and a
run over a new method computes only that method's cells.

``--write-table`` writes one table file per method calibrated, ``<method>.json``, into the
user's table folder ``<home>/calibration/tables/`` (or ``--table-dir DIR``, e.g. the shipped
``src/pollwatch/calibration/tables`` when maintainers refresh it); no other method's file is
touched, so ``pollwatch calibrate -m NAME --write-table`` adds or refreshes NAME alone.

``pollwatch calibrate-stress`` prints the planted-vs-estimated table of
:mod:`pollwatch.calibration.stress` (the table of ``docs/stress-tests.md``).
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
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
from pollwatch.fileio import atomic_write_text

from .state import console, err_console
from .state import settings as _settings

__all__ = ["calibrate_command", "register", "stress_command"]


def _write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)


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
    table_dir: Path | None,
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
    if table_dir is not None:
        words += ["--table-dir", table_dir.as_posix()]
    if docs is not None:
        words += ["--docs", docs.as_posix()]
    return shlex.join(words)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _summary(documents: Mapping[str, Mapping[str, Any]]) -> Table:
    plans = [d.get("plan") or {} for d in documents.values()]
    alphas = next((p["alphas"] for p in plans if p.get("alphas")), ["0.05"])
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

    for name, document in documents.items():
        entry = document["entry"]
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
            "--write-table",
            help="Write each calibrated method's table file, <method>.json, into "
            "<home>/calibration/tables/ (or --table-dir); other methods' files stay as they are.",
        ),
    ] = False,
    table_dir: Annotated[
        Path | None,
        typer.Option(
            "--table-dir",
            help="Folder --write-table writes into, e.g. src/pollwatch/calibration/tables "
            "(the shipped tables).",
        ),
    ] = None,
    docs: Annotated[
        Path | None, typer.Option(help="Regenerate the docs page, e.g. docs/calibration.md.")
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write this run's table documents here too (by method)."),
    ] = None,
) -> None:
    """Measure each method's false-positive rate and power (resumable; cells are cached)."""
    from pollwatch.calibration.docs import render_markdown, render_power_svg
    from pollwatch.calibration.harness import (
        CalibrationPlan,
        build_tables,
        plan_differences,
        run_calibration,
        write_tables,
    )
    from pollwatch.forensics.calibration import (
        CalibrationTable,
        clear_calibration_cache,
        read_tables,
        shipped_tables_folder,
    )

    if executor not in ("ray", "serial"):
        raise PollwatchError(f"unknown executor {executor!r}", hint="use --executor ray or serial")
    if table_dir is not None and not write_table:
        raise PollwatchError(
            "--table-dir without --write-table", hint="add --write-table, or leave out --table-dir"
        )
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
    target = table_dir if table_dir is not None else settings.calibration_dir / "tables"
    if write_table and target.exists() and not target.is_dir():
        raise PollwatchError(
            f"table folder {target} is not a folder", hint="name a folder for the table files"
        )
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
        table_dir=table_dir,
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
        built = 0

        def report(done: int, total: int, key: str, fresh: bool) -> None:
            nonlocal built
            built += int(fresh)
            elapsed = time.perf_counter() - started
            speed = f"{built / elapsed:.2f} elections/s" if built and elapsed > 0 else ""
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
    documents = build_tables(run, command=command)
    console.print(_summary(documents))
    rate = run.elections_per_second
    console.print(
        f"{run.computed + run.cached:,} cells ({_count(len(documents), 'method')} x "
        f"{_count(len(run.records), 'election')}): {run.computed:,} computed, "
        f"{run.cached:,} from the cache ({run.folder}); {run.seconds:,.1f} s"
        + (f", {rate:.2f} elections/s on {executor} with {workers} workers" if rate else ""),
        soft_wrap=True,
    )
    shown = CalibrationTable.from_documents(documents.values())
    if write_table:
        written = write_tables(documents, target)
        clear_calibration_cache()
        console.print(
            f"wrote {len(written)} table file(s) to {target}: "
            + ", ".join(path.name for path in written),
            soft_wrap=True,
        )
        shipped = shipped_tables_folder()
        same = target.resolve() == shipped.resolve()
        shown = read_tables(shipped) if same else read_tables(shipped, target)
        main = shown.main_run()
        for name in documents:
            if main is None or name in main.methods:
                continue
            this, theirs = plan_differences(documents[name], main.plan)
            if this:
                console.print(
                    f"note: {name} was measured with {this}; most tables with {theirs}",
                    soft_wrap=True,
                    markup=False,
                )
    if json_out is not None:
        _write(json_out, json.dumps(documents, ensure_ascii=False, indent=1) + "\n")
        console.print(f"wrote {json_out}", soft_wrap=True)
    if docs is not None:
        svg = docs.with_name(f"{docs.stem}-power.svg")
        _write(svg, render_power_svg(shown))
        _write(docs, render_markdown(shown, power_svg=svg.name))
        console.print(f"wrote {docs} and {svg}", soft_wrap=True)


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
