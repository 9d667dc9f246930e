"""``pollwatch serve`` (the dashboard) and ``pollwatch report`` (a self-contained HTML file).

:func:`register` adds both commands to the root Typer app; they read the store and settings
from the root command's state (``--home``, ``--mirror``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pollwatch.fileio import atomic_write_text

from .state import console, err_console
from .state import settings as _settings

__all__ = ["register"]


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve the dashboard and JSON API over the local store."""
    import uvicorn

    from pollwatch.web.app import create_app
    from pollwatch.web.server import configure_access_log, server_config

    settings = _settings(ctx)
    app = create_app(settings)
    access_log = configure_access_log(settings.home)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"pollwatch dashboard: http://{shown}:{port}/  (API docs: /docs; Ctrl+C stops)")
    console.print(f"access log: {access_log}", style="dim")
    uvicorn.Server(server_config(app, host=host, port=port)).run()


def report_command(
    ctx: typer.Context,
    election_id: Annotated[str, typer.Argument(help="Election id (see pollwatch list).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
) -> None:
    """Write a self-contained HTML report (every method; cached results are reused)."""
    from pollwatch.forensics.suite import run_suite
    from pollwatch.reports.html import render_report
    from pollwatch.results.checks import check_protocols
    from pollwatch.results.store import ElectionStore

    settings = _settings(ctx)
    election = ElectionStore(settings.elections_dir).load(election_id)
    with err_console.status(f"analysing {election_id} (cached results are reused)"):
        suite = run_suite(election, seed=seed, cache_dir=settings.analysis_dir)
    page = render_report(election, check_protocols(election), suite)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, page)
    console.print(
        f"wrote {output} ({len(suite.results)} methods, {len(suite.skipped)} skipped, "
        f"{len(page) / 1e6:.1f} MB)"
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``report`` to the root command ``app``."""
    app.command("serve")(serve_command)
    app.command("report")(report_command)
