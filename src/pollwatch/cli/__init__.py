"""The ``pollwatch`` command line (Typer + Rich): compose library calls and render results.

No analysis lives here. Every :class:`~pollwatch.errors.PollwatchError` becomes one red line on
standard error and a non-zero exit (2); an unexpected error becomes one line too (exit 70), with
the traceback only when ``POLLWATCH_DEBUG=1``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from typer.core import TyperCommand

from pollwatch import __version__
from pollwatch.errors import DatasetError, InputError, PollwatchError
from pollwatch.fileio import atomic_path
from pollwatch.results.checks import check_protocols
from pollwatch.results.datasets import DATASETS, Dataset, fetch, import_dataset, locate
from pollwatch.results.importers import ImportLimits, all_importers, import_file
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings

from .calibrate import register as register_calibrate_command
from .evidence import evidence_app
from .quarantine import quarantine_table
from .render import (
    catalogue_table,
    failing_stations_table,
    formats_help,
    importers_table,
    method_catalogue,
    method_parameters,
    method_sections,
    methods_table,
    regional_tables,
    summary_renderable,
)
from .simulate import register as register_simulate_command
from .state import State, console, err_console
from .state import state as _state
from .turnout import register as register_turnout_command
from .video import video_app
from .web import register as register_web_commands

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="pollwatch",
    help="Election forensics for polling-station results: import, check, store, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Public datasets: list and fetch (mirror, cache or download).")
app.add_typer(datasets_app, name="datasets")
app.add_typer(evidence_app, name="evidence")
app.add_typer(video_app, name="video")
register_web_commands(app)
register_calibrate_command(app)
register_simulate_command(app)
register_turnout_command(app)


def _version(value: bool) -> None:
    if value:
        console.print(f"pollwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Store folder (default: POLLWATCH_HOME or the user data dir)."),
    ] = None,
    mirror: Annotated[
        Path | None, typer.Option(help="Data mirror folder (default: POLLWATCH_DATA_MIRROR).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    ctx.obj = State(home, mirror)
    if home is not None:
        from pollwatch.forensics.calibration import tables_home

        # results read the calibration tables without settings: X's tables for this command
        ctx.with_resource(tables_home(home.expanduser()))


def _parse_options(values: list[str]) -> dict[str, str]:
    options = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PollwatchError(
                f"--option {item!r} is not KEY=VALUE", hint="e.g. --option office=President"
            )
        options[key.strip()] = value
    return options


def _download_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
    )


def _import_dataset_with_progress(
    dataset: Dataset, settings: Settings, *, timeout: float = 30.0, strict: bool = False
) -> Election:
    with _download_progress() as progress:
        task = progress.add_task(f"fetching {dataset.name}", total=dataset.size)

        def report(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        path = locate(dataset, settings) or fetch(
            dataset, settings, progress=report, timeout=timeout
        )
    with err_console.status(f"importing {dataset.name} from {path.name}"):
        return import_dataset(dataset, settings, strict=strict)


def _save(state: State, election: Election, replace: bool) -> None:
    outcome = state.store.save(election, replace=replace)
    words = {
        "created": "imported",
        "unchanged": "already imported (same numbers), unchanged",
        "replaced": "replaced",
    }
    console.print(f"[green]{escape(election.id)}[/]: {words[outcome]}, {len(election):,} stations")


class _ImportCommand(TyperCommand):
    """``pollwatch import``: its help ends with the registered importers, from the registry."""

    @property
    def epilog(self) -> str:  # read when help is shown, not at every start-up
        return formats_help(all_importers())

    @epilog.setter
    def epilog(self, value: str | None) -> None:
        pass  # click sets it in __init__; the registry's list replaces it


@app.command("import", cls=_ImportCommand)
def import_command(
    ctx: typer.Context,
    source: Annotated[Path | None, typer.Argument(help="File to import.")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Import a public dataset by name instead of a file.")
    ] = None,
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="Importer name (default: detect; listed below)."),
    ] = None,
    mapping: Annotated[
        str | None, typer.Option(help="Mapping file (TOML) or shipped mapping name.")
    ] = None,
    election_id: Annotated[
        str | None, typer.Option("--id", help="Election id in the store.")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Importer option KEY=VALUE.")
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace a different election with this id.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            help="Fail on the first bad row (all or nothing) instead of setting bad rows aside."
        ),
    ] = False,
) -> None:
    """Import an election from a file or a public dataset into the store.

    Rows that fail a row-level check are set aside (see 'pollwatch show ID --quarantine');
    --strict fails on the first one instead and stores nothing.
    """
    state = _state(ctx)
    if (source is None) == (dataset is None):
        raise PollwatchError(
            "give either a FILE or --dataset NAME", hint="see pollwatch import --help"
        )
    if dataset is not None:
        election = _import_dataset_with_progress(
            DATASETS.get(dataset), state.settings, strict=strict
        )
        if election_id:
            election = election.replace_meta(id=election_id)
    else:
        assert source is not None
        with err_console.status(f"importing {source.name}"):
            election = import_file(
                source,
                importer=format,
                mapping=Path(mapping) if mapping else None,
                options=_parse_options(option or []) or None,
                election_id=election_id,
                limits=ImportLimits.from_settings(state.settings),
                strict=strict,
            )
    _save(state, election, replace)
    if len(election.quarantine):
        console.print(escape(election.quarantine.one_line(election.id)), soft_wrap=True)
    report = check_protocols(election)
    failing = report.failing_stations.height
    if failing:
        console.print(
            f"protocol checks: {failing:,} stations with findings "
            f"(see 'pollwatch show {election.id}')"
        )


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the imported elections."""
    entries = _state(ctx).store.list()
    if as_json:
        console.print_json(json.dumps([e.to_dict() for e in entries], ensure_ascii=False))
    elif not entries:
        console.print("no elections imported yet: try 'pollwatch import --dataset russia-2018'")
    else:
        console.print(catalogue_table(entries))


@app.command("show")
def show_command(
    ctx: typer.Context,
    election_id: Annotated[str, typer.Argument(help="Election id (see pollwatch list).")],
    stations: Annotated[
        int, typer.Option(min=0, help="How many stations with findings to list.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quarantine: Annotated[
        bool, typer.Option("--quarantine", help="List the source rows the import set aside.")
    ] = False,
) -> None:
    """Summary of an election: stations, registered, turnout, totals, protocol findings.

    When `pollwatch analyze` has cached results for the election's current numbers, its
    verdict comes first (docs/verdict.md); show itself runs no method.
    """
    if quarantine:
        _show_quarantine(_state(ctx).store, election_id, as_json=as_json)
        return
    from pollwatch.forensics.suite import cached_report
    from pollwatch.forensics.verdict import verdict

    state = _state(ctx)
    election = state.store.load(election_id)
    summary = election.summary()
    report = check_protocols(election)
    # the verdict only where `pollwatch analyze` has cached results: show never runs a method
    cached = cached_report(election, state.settings.analysis_dir)
    judged = None if cached is None else verdict(cached, simulation=election.meta.simulation_notice)
    if as_json:
        payload: dict[str, Any] = {
            "meta": election.meta.to_dict(),
            "simulation": election.meta.simulation_notice,
            "summary": summary.to_dict(),
            "protocol_checks": report.to_dict(),
            "verdict": None if judged is None else judged.to_dict(),
        }
        console.print_json(json.dumps(payload, ensure_ascii=False))
        return
    if judged is not None:
        console.print(judged)
        console.print()
    console.print(summary_renderable(election, summary))
    if len(election.quarantine):
        console.print(escape(election.quarantine.one_line(election.id)), soft_wrap=True)
    console.print(report)
    if stations and report.failing_stations.height:
        console.print(failing_stations_table(report, election, stations))


def _show_quarantine(store: ElectionStore, election_id: str, *, as_json: bool) -> None:
    rows = store.quarantine(election_id)
    if as_json:
        console.print_json(json.dumps(rows.to_dict(), ensure_ascii=False))
    elif not len(rows):
        console.print(f"{escape(election_id)}: no rows were set aside")
    else:
        console.print(quarantine_table(rows, title=escape(rows.one_line())))


def _atomic_write(target: Path, write: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as partial:
        write(partial)


@app.command("export")
def export_command(
    ctx: typer.Context,
    election_id: Annotated[str, typer.Argument(help="Election id (see pollwatch list).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="csv, parquet or nist (default: from the suffix)."),
    ] = None,
) -> None:
    """Export an election's stations (CSV, Parquet) or the whole election (NIST SP 1500-100)."""
    election = _state(ctx).store.load(election_id)
    chosen = format or {".csv": "csv", ".parquet": "parquet", ".json": "nist"}.get(
        output.suffix.lower()
    )
    if chosen == "csv":
        frame = election.with_derived()
        _atomic_write(output, lambda p: frame.write_csv(p))
    elif chosen == "parquet":
        frame = election.with_derived()
        _atomic_write(output, lambda p: frame.write_parquet(p))
    elif chosen == "nist":
        from pollwatch.results.importers.nist import export_nist

        export_nist(election, output)
    else:
        raise PollwatchError(
            f"cannot tell the export format of {output}",
            hint="use --format csv, parquet or nist (or a .csv/.parquet/.json suffix)",
        )
    console.print(f"wrote {output} ({chosen}, {len(election):,} stations)")


@app.command("analyze")
def analyze_command(
    ctx: typer.Context,
    election_id: Annotated[str, typer.Argument(help="Election id (see pollwatch list).")],
    method: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help="Method to run (default: all; see pollwatch methods)."),
    ] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option(
            "--parameter",
            "-p",
            help="A method parameter, KEY=VALUE (every selected method that takes KEY) or "
            "NAME.KEY=VALUE (method NAME only); repeatable. See pollwatch methods NAME.",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(help="Also per administrative unit: 'region' (a table per method)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report.")
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="Full calibration wording under each method.")
    ] = False,
) -> None:
    """Run the forensic methods on an election: the verdict, then a summary table.

    The verdict (docs/verdict.md) cites only the methods reliable on clean elections.
    With -m NAME, each named method's own tables follow (their first 10 rows).

    With --by region, also one table per method that has regional results: each region's
    stations, value, p-value and q-value (Benjamini-Hochberg across regions), sorted by
    q-value then p-value. An election without regions is refused with one line.

    With -p KEY=VALUE, the selected methods that take KEY run with that value (checked
    against the method's constraints: pollwatch methods NAME lists them); with several
    methods, -p NAME.KEY=VALUE sets it for method NAME only.
    """
    from rich.progress import Progress as RichProgress
    from rich.progress import SpinnerColumn

    from pollwatch.forensics.base import METHODS, method_names
    from pollwatch.forensics.parameters import assign_parameters
    from pollwatch.forensics.suite import run_suite

    if by not in (None, "region"):
        raise PollwatchError(f"--by {by!r} is not supported", hint="use --by region")
    selected = list(method) if method else list(method_names("in_default_suite"))
    parameters = assign_parameters({n: METHODS.get(n) for n in selected}, parameter or [])
    state = _state(ctx)
    election = state.store.load(election_id)
    regions = election.stations["region"].drop_nulls().n_unique()
    if by == "region" and regions == 0:
        raise InputError(
            f"election {election.id!r} has no regions (its region column is empty), so "
            "--by region has nothing to split",
            hint="run without --by region for the national table, or re-import with a "
            "mapping that names the region column",
        )
    _print_simulation_notice(election)
    with RichProgress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), console=err_console,
        transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("analysing", total=1)

        def report(name: str, index: int, total: int) -> None:
            bar.update(task, completed=index, total=total, description=name or "done")

        suite = run_suite(
            election,
            method,
            parameters=parameters,
            seed=seed,
            by_region=by == "region",
            cache_dir=state.settings.analysis_dir,
            progress=report,
        )
    from pollwatch.forensics.verdict import verdict

    console.print(verdict(suite, simulation=election.meta.simulation_notice))
    console.print()
    console.print(methods_table(suite, wide=wide))
    if method:  # the methods named: their own tables too (Method.sections)
        console.print()
        console.print(method_sections(suite))
    if by == "region":
        console.print()
        console.print(regional_tables(suite, regions=regions))
    for name, reason in suite.skipped:
        console.print(f"[yellow]skipped[/] {escape(name)}: {escape(reason)}", soft_wrap=True)
    if json_out is not None:
        payload = json.dumps(suite.to_dict(), ensure_ascii=False, indent=1)
        _atomic_write(json_out, lambda p: p.write_text(payload, encoding="utf-8"))
        console.print(f"wrote {json_out}")
    if html_out is not None:
        from pollwatch.reports.html import render_report

        page = render_report(election, check_protocols(election), suite)
        _atomic_write(html_out, lambda p: p.write_text(page, encoding="utf-8"))
        console.print(f"wrote {html_out}")


@app.command("compare")
def compare_command(
    ctx: typer.Context,
    election_ids: Annotated[list[str], typer.Argument(help="Two or more election ids.")],
    method: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help="Method to run (default: the comparison set)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML comparison.")
    ] = None,
) -> None:
    """Run identical methods on several elections and show them side by side."""
    from rich.table import Table

    from pollwatch.forensics.base import method_names
    from pollwatch.forensics.suite import run_suite
    from pollwatch.reports.compare import (
        comparison_rows,
        method_calibration,
        render_comparison,
    )

    if len(election_ids) < 2:
        raise PollwatchError("compare needs two or more elections", hint="pollwatch compare A B")
    state = _state(ctx)
    methods = list(method or method_names("in_comparison"))
    elections = [state.store.load(i) for i in election_ids]
    suites = []
    for election in elections:
        with err_console.status(f"analysing {election.id}"):
            suites.append(
                run_suite(election, methods, seed=seed, cache_dir=state.settings.analysis_dir)
            )
    table = Table(title="Same methods, same definitions", title_justify="left")
    table.add_column("method")
    for election in elections:
        table.add_column(election.id)
    table.add_column("on clean elections (calibration)", overflow="fold")
    for name, cells in comparison_rows(methods, suites):
        words, unreliable = method_calibration(name, suites)
        mark = f"[bold red]{escape(words)}[/]" if unreliable else escape(words)
        table.add_row(name, *(escape(c) for c in cells), mark)
    console.print(table)
    if method:  # the methods named: their own tables too (Method.sections), per election
        for election, suite in zip(elections, suites, strict=True):
            console.print()
            console.print(f"[bold]{escape(election.id)}[/]")
            console.print(method_sections(suite))
    if html_out is not None:
        page = render_comparison(elections, suites, methods)
        _atomic_write(html_out, lambda p: p.write_text(page, encoding="utf-8"))
        console.print(f"wrote {html_out}")


@app.command("methods")
def methods_command(
    name: Annotated[
        str | None,
        typer.Argument(help="One method: its parameters, defaults and what each accepts."),
    ] = None,
) -> None:
    """List the forensic methods, their calibration in full and their sources.

    With a method's name: that method, and each of its parameters with its default and the
    values it accepts (set them with pollwatch analyze -m NAME -p KEY=VALUE).
    """
    from pollwatch.forensics.base import METHODS, all_methods

    if name is not None:
        console.print(method_parameters(name, METHODS.get(name)))
        return
    console.print(method_catalogue(all_methods()))
    console.print("calibration: docs/calibration.md (regenerate with 'pollwatch calibrate')")


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    election_id: Annotated[str, typer.Argument(help="Election id (see pollwatch list).")],
) -> None:
    """Remove an election from the store."""
    _state(ctx).store.delete(election_id)
    console.print(f"deleted {election_id}")


@app.command("formats")
def formats_command() -> None:
    """List the importers (source formats) pollwatch can read."""
    console.print(importers_table(all_importers()))


@datasets_app.command("list")
def datasets_list(ctx: typer.Context) -> None:
    """List the public datasets and whether each is available locally."""
    from rich.table import Table

    settings = _state(ctx).settings
    table = Table(title="Datasets", title_justify="left")
    for column in ("name", "title", "importer", "size", "here"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for name, dataset in DATASETS.items():
        try:
            here = (
                "yes"
                if locate(dataset, settings)
                else ("mirror only" if dataset.mirror_only else "no")
            )
        except PollwatchError:
            here = "[red]checksum mismatch[/]"
        table.add_row(name, dataset.title, dataset.importer, f"{dataset.size / 1e6:.1f} MB", here)
    console.print(table)


@datasets_app.command("fetch")
def datasets_fetch(
    ctx: typer.Context,
    names: Annotated[
        list[str], typer.Argument(help="Dataset names (see pollwatch datasets list).")
    ],
) -> None:
    """Fetch datasets into the cache (or verify them in the mirror) and print their paths."""
    settings = _state(ctx).settings
    for name in names:
        dataset = DATASETS.get(name)
        with _download_progress() as progress:
            task = progress.add_task(f"fetching {name}", total=dataset.size)

            def report(done: int, total: int | None, task: Any = task) -> None:
                progress.update(task, completed=done, total=total)

            path = fetch(dataset, settings, progress=report)
        console.print(f"{name}: {path} (sha256 verified)")


#: The public datasets the demo imports (names, or :class:`Dataset` entries), in this order.
DEMO_DATASETS: tuple[str | Dataset, ...] = ("russia-2018", "us-2016-president-medsl")
#: Seconds a demo download may wait for an answer before the dataset is skipped (no network).
DEMO_DOWNLOAD_TIMEOUT = 15.0


def _print_simulation_notice(election: Election) -> None:
    notice = election.meta.simulation_notice
    if notice:
        console.print(f"[bold yellow]{escape(notice)}[/]", soft_wrap=True)


def _import_demo_datasets(state: State) -> list[str]:
    """Import each demo dataset that can be imported; one line for each one skipped."""
    imported = []
    for entry in DEMO_DATASETS:
        dataset = DATASETS.get(entry) if isinstance(entry, str) else entry
        name = dataset.name
        if name in state.store:
            console.print(f"[green]{escape(name)}[/]: already in the store")
            imported.append(name)
            continue
        try:
            election = _import_dataset_with_progress(
                dataset, state.settings, timeout=DEMO_DOWNLOAD_TIMEOUT
            )
        except DatasetError as exc:
            console.print(
                f"[yellow]{escape(name)}[/]: skipped, {escape(exc.reason)}", soft_wrap=True
            )
            continue
        except PollwatchError as exc:
            console.print(
                f"[yellow]{escape(name)}[/]: skipped, {escape(exc.one_line())}", soft_wrap=True
            )
            continue
        _save(state, election, replace=False)
        imported.append(name)
    return imported


def _save_demo_simulation(state: State) -> str:
    """The demo's simulated election with planted manipulation, saved with its labels."""
    from pollwatch.synthetic.planted import DEMO_ELECTION_ID, demo_election, save_planted

    from .simulate import print_planted

    store = state.store
    # Only the demo's own simulated election is ever replaced (a newer recipe's numbers).
    replace = DEMO_ELECTION_ID in store and store.meta(DEMO_ELECTION_ID).is_simulated
    with err_console.status("simulating an election with planted manipulation"):
        planted = demo_election()
        outcome, labels_path = save_planted(store, planted, replace=replace)
    print_planted(planted, outcome, labels_path)
    return planted.election.id


@app.command("demo")
def demo_command(
    ctx: typer.Context,
    serve: Annotated[
        bool, typer.Option(help="Serve the dashboard at the end (Ctrl+C stops it).")
    ] = True,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Dashboard port.")] = 8000,
    simulated: Annotated[
        bool,
        typer.Option(
            "--simulated",
            help="Also show a simulated election with planted manipulation (the default when "
            "no public dataset can be imported).",
        ),
    ] = False,
) -> None:
    """The main job on embedded defaults: import, summarise, analyse, serve the dashboard.

    Imports the demo datasets from the data mirror, the cache or a download, skipping (one
    line each) those that cannot be had here; when none can, or with --simulated, it adds a
    simulated election with planted manipulation, labelled as simulated everywhere.
    """
    state = _state(ctx)
    settings = state.settings
    console.print(f"pollwatch {__version__}: store at {settings.home}")
    if settings.data_mirror is None:
        console.print(
            "no data mirror set (POLLWATCH_DATA_MIRROR): public datasets are downloaded where "
            "they can be"
        )
    imported = _import_demo_datasets(state)
    simulated_id = None
    if simulated or not imported:
        if not imported:
            console.print(
                "[bold]no public dataset could be imported: the demo shows a simulated "
                "election with planted manipulation instead[/]"
            )
        simulated_id = _save_demo_simulation(state)
    shown = [*imported, *([simulated_id] if simulated_id else [])]
    for election_id in shown:
        console.rule(election_id)
        show_command(ctx, election_id, stations=5, as_json=False)
    # The first real election (as before: russia-2018) and the simulated one are analysed.
    analysed = [*imported[:1], *([simulated_id] if simulated_id else [])]
    for election_id in analysed:
        console.rule(f"forensic methods: {election_id} (cached after the first run)")
        report = settings.home / "reports" / f"{election_id}.html"
        analyze_command(
            ctx,
            election_id,
            method=None,
            by=None,
            seed=0,
            json_out=None,
            html_out=report,
            wide=False,
        )
        console.print(f"report: {report}")
    if serve:
        from .web import serve_command

        serve_command(ctx, host="127.0.0.1", port=port)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status (errors become one line, never a traceback)."""
    try:
        app(args=argv, prog_name="pollwatch")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except PollwatchError as exc:
        err_console.print(f"[red]error:[/] {escape(exc.one_line())}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        return 130
    except Exception as exc:
        if os.environ.get("POLLWATCH_DEBUG"):
            raise
        err_console.print(
            f"[red]internal error:[/] {escape(type(exc).__name__)}: {escape(str(exc))} "
            "(a bug in pollwatch: set POLLWATCH_DEBUG=1 for the traceback and please report it)",
            soft_wrap=True,
        )
        return 70
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
