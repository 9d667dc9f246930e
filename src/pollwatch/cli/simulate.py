"""``pollwatch simulate``: a clean simulated election (or a real one's clean twin) in the store.

The election is saved in the local store like an imported one, so that ``show``, ``analyze``,
``compare`` and ``report`` work on it. With ``--inject NAME:SHARE:MAGNITUDE`` (repeatable) the
named manipulations (:data:`pollwatch.synthetic.injectors.INJECTORS`) are planted in it, in
order, and their labels (affected stations, ballots added, votes moved) are kept in
``<store>/<id>/injections.json`` beside the election. The command only parses and renders:
the simulation, the planting and the saving (through the store) are
:mod:`pollwatch.synthetic`'s, which ``pollwatch demo`` uses too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pollwatch.errors import PollwatchError, StoreError
from pollwatch.results.model import Election
from pollwatch.results.store import ElectionStore
from pollwatch.settings import Settings
from pollwatch.synthetic.planted import (
    PlantedElection,
    injectors_of,
    plant_injections,
    save_planted,
)

from .state import console, err_console
from .state import settings as _settings

__all__ = ["print_planted", "register"]


def _base_election(
    settings: Settings,
    store: ElectionStore,
    like: str,
    stations: int | None,
    seed: int,
    by: str,
) -> Election:
    from pollwatch.results.datasets import DATASETS, import_dataset
    from pollwatch.synthetic.simulator import simulate_like

    if like in store:
        real = store.load(like)
    elif like in DATASETS:
        with err_console.status(f"importing the dataset {like}"):
            real = import_dataset(like, settings)
    else:
        known = ", ".join(e.id for e in store.list()) or "none yet"
        raise StoreError(
            f"--like {like!r}: no such election in the store ({store.root}) and no such dataset",
            hint=f"stored elections: {known}; datasets: {', '.join(DATASETS.names())}",
        )
    with err_console.status(f"fitting a clean twin of {real.id}"):
        return simulate_like(real, seed=seed, stations=stations, by=by)


def print_planted(planted: PlantedElection, outcome: str, labels_path: Path | None) -> None:
    """What was saved: the id, the simulation label, each planted manipulation, the labels."""
    election = planted.election
    words = {"created": "saved", "unchanged": "unchanged (same numbers)", "replaced": "replaced"}
    console.print(f"[green]{escape(election.id)}[/]: {words[outcome]}, {len(election):,} stations")
    notice = election.meta.simulation_notice
    if notice:
        console.print(f"[bold yellow]{escape(notice)}[/]", soft_wrap=True)
    for label in planted.labels:
        console.print(
            f"  {escape(label.injector)}: {len(label.stations):,} stations, "
            f"{label.ballots_added:,} ballots added, {label.votes_moved:,} votes moved"
        )
    if labels_path is not None:
        console.print(f"labels: {escape(str(labels_path))}")


def simulate_command(
    ctx: typer.Context,
    like: Annotated[
        str | None,
        typer.Option(help="Fit a clean twin of this stored election (or public dataset)."),
    ] = None,
    stations: Annotated[
        int | None,
        typer.Option(min=1, help="Stations (default: 5000, or as many as the real election)."),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(help="Fit the twin per 'region' (default) or per 'district'."),
    ] = None,
    regions: Annotated[
        int | None, typer.Option(min=1, help="Regions of a synthetic election (default 20).")
    ] = None,
    hospital_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of hospital stations (synthetic).")
    ] = 0.0,
    abroad_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of stations abroad (synthetic).")
    ] = 0.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed of every random draw.")] = 0,
    election_id: Annotated[
        str | None, typer.Option("--id", help="Id in the store (default: derived).")
    ] = None,
    inject: Annotated[
        list[str] | None,
        typer.Option(help="Plant a manipulation NAME:SHARE:MAGNITUDE (repeatable)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace a different election with this id.")
    ] = False,
) -> None:
    """Simulate a clean election (or a real one's clean twin), optionally manipulated, and
    save it in the store."""
    from pollwatch.synthetic.simulator import simulate_clean

    settings = _settings(ctx)
    store = ElectionStore(settings.elections_dir)
    injectors = injectors_of(inject or [])
    if like is not None and (regions is not None or hospital_share or abroad_share):
        raise PollwatchError(
            "--regions, --hospital-share and --abroad-share apply to synthetic elections only",
            hint="a twin (--like) takes its regions and special stations from the real election",
        )
    if like is None and by is not None:
        raise PollwatchError("--by applies to a twin only", hint="add --like ELECTION_ID")
    if like is not None:
        base = _base_election(settings, store, like, stations, seed, by or "region")
    else:
        base = simulate_clean(
            stations=stations or 5000,
            regions=regions or 20,
            seed=seed,
            hospital_share=hospital_share,
            abroad_share=abroad_share,
            election_id=f"simulated-{seed}",
        )
    planted = plant_injections(base, injectors, seed=seed, election_id=election_id)
    outcome, labels_path = save_planted(store, planted, replace=replace)
    print_planted(planted, outcome, labels_path)


def register(app: typer.Typer) -> None:
    """Add ``pollwatch simulate`` to the command line."""
    app.command("simulate")(simulate_command)
