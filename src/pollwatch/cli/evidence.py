"""``pollwatch evidence``: the evidence archive from the command line.

init | add | get | log | show | checkpoint | prove | export | verify | fsck | witness
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pollwatch.errors import EvidenceError
from pollwatch.evidence.archive import EvidenceArchive, local_address
from pollwatch.evidence.bundle import TrustStore, export_bundle, verify_bundle
from pollwatch.evidence.checkpoint import Signer, Verifier, Witness, generate_cosigner
from pollwatch.evidence.fsck import FsckReport, fsck, repair
from pollwatch.fileio import atomic_write, atomic_write_text

from .state import console, err_console
from .state import settings as _settings

__all__ = ["evidence_app"]


evidence_app = typer.Typer(
    help="Tamper-evident evidence archive: add files, prove, export and verify bundles.",
    no_args_is_help=True,
)
witness_app = typer.Typer(help="Act as a witness: cosign another archive's checkpoints.")
evidence_app.add_typer(witness_app, name="witness")


def _archive(ctx: typer.Context) -> EvidenceArchive:
    return EvidenceArchive(_settings(ctx).evidence_dir)


@evidence_app.command("init")
def init_command(
    ctx: typer.Context,
    origin: Annotated[
        str | None,
        typer.Option(help="The log's name in checkpoints (default: pollwatch/<hostname>)."),
    ] = None,
) -> None:
    """Create the archive and its Ed25519 log key."""
    settings = _settings(ctx)
    name = origin or f"pollwatch/{socket.gethostname()}"
    archive = EvidenceArchive.init(settings.evidence_dir, name)
    console.print(f"evidence archive created in {archive.folder}")
    console.print(f"log origin: {archive.origin}")
    console.print(
        f"log verifier key (give it to witnesses and verifiers): {archive.verifier}",
        soft_wrap=True,
        markup=False,
    )


@evidence_app.command("add")
def add_command(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Files to archive.")],
    station: Annotated[str | None, typer.Option(help="Polling station id.")] = None,
    device: Annotated[str | None, typer.Option(help="Camera or device id.")] = None,
    capture_time: Annotated[
        str | None, typer.Option(help="When it was captured (ISO 8601), as the device says.")
    ] = None,
    clock_source: Annotated[
        str | None, typer.Option(help="Where the capture time comes from (gps, ntp, device).")
    ] = None,
    media_type: Annotated[str | None, typer.Option(help="Media type (default: guessed).")] = None,
    source_item: Annotated[
        str | None, typer.Option(help="For a derived copy: the item it was made from.")
    ] = None,
    derivation: Annotated[
        str | None, typer.Option(help="For a derived copy: how (redacted, transcoded, ...).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="A free-text note.")] = None,
) -> None:
    """Store files (streamed, write-once) and enter them in the log."""
    settings = _settings(ctx)
    with _archive(ctx) as archive:
        for path in files:
            record = archive.add(
                path,
                submitter=settings.actor,
                media_type=media_type,
                station=station,
                device=device,
                capture_time=capture_time,
                clock_source=clock_source,
                source_item=source_item,
                derivation=derivation,
                note=note,
            )
            if source_item is not None:
                archive.record_custody(
                    "redaction" if derivation == "redacted" else "transcode",
                    [source_item],
                    actor=settings.actor,
                    address=local_address(),
                    reason=derivation or "derived copy",
                    details={"derived_item": record.sha256},
                )
            console.print(
                f"{record.sha256}  entry {record.index}  {escape(record.filename)}", soft_wrap=True
            )


@evidence_app.command("get")
def get_command(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="Item hash (8 or more hex digits).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the copy.")],
    reason: Annotated[str, typer.Option(help="Why you access it (recorded).")],
) -> None:
    """Copy an item out of the archive; the access is logged first."""
    settings = _settings(ctx)
    # the item is verified when its stream closes, before the copy replaces the output
    with (
        _archive(ctx) as archive,
        atomic_write(output) as target,
        archive.open_item(
            item, actor=settings.actor, address=local_address(), reason=reason
        ) as stream,
    ):
        shutil.copyfileobj(stream, target)
    console.print(f"wrote {output} (access recorded)")


@evidence_app.command("log")
def log_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="Show the last N entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """The log's entries (items and custody), newest last."""
    with _archive(ctx) as archive:
        start = max(0, archive.log.size - limit)
        entries = list(archive.entries(start))
        if as_json:
            for index, entry in entries:
                console.print_json(json.dumps({"index": index, **entry}, ensure_ascii=False))
            return
        table = Table(title=f"{archive.origin}: {archive.log.size} entries", title_justify="left")
        for column in ("#", "kind", "item", "what", "who", "when"):
            table.add_column(column)
        for index, entry in entries:
            if entry["kind"] == "item":
                what = f"{entry['filename']} ({entry['size']:,} bytes)"
                row = (entry["sha256"][:16], what, entry["submitter"], entry["ingest_time"])
            elif entry["kind"] == "custody":
                what = f"{entry['action']}: {entry.get('reason', '')}"
                row = (entry["item"][:16], what, entry["actor"], entry["time"])
            else:  # video events, maintenance statements, ...
                action = entry.get("action") or entry.get("event") or ""
                row = (
                    str(entry.get("station") or entry.get("item") or "")[:16],
                    f"{action}: {entry.get('reason', '')}".strip(": "),
                    entry.get("actor", ""),
                    entry.get("time", ""),
                )
            table.add_row(str(index), entry["kind"], *(escape(str(v)) for v in row))
        console.print(table)


@evidence_app.command("show")
def show_command(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="Item hash (8 or more hex digits).")],
) -> None:
    """An item's entry and its custody history."""
    with _archive(ctx) as archive:
        record = archive.item(item)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for name, value in record.__dict__.items():
            if value is not None:
                grid.add_row(name, escape(str(value)))
        console.print(grid)
        table = Table(title="Custody", title_justify="left")
        for column in ("#", "action", "actor", "from", "when", "why"):
            table.add_column(column)
        for event in archive.custody_of(record.sha256):
            table.add_row(
                str(event.index),
                event.action,
                escape(event.actor),
                escape(event.address),
                event.time,
                escape(event.reason),
            )
        console.print(table)


@evidence_app.command("checkpoint")
def checkpoint_command(
    ctx: typer.Context,
    tsa: Annotated[
        list[str] | None,
        typer.Option(help="RFC 3161 authority URL (default: the timestamp_authorities setting)."),
    ] = None,
) -> None:
    """Sign the log's current state, and time-stamp it."""
    settings = _settings(ctx)
    with _archive(ctx) as archive:
        stored = archive.sign_checkpoint(
            timestamp_authorities=tsa or settings.timestamp_authorities
        )
        console.print(stored.note.rstrip("\n"), soft_wrap=True, markup=False, highlight=False)
        console.print(f"{len(stored.timestamps)} time-stamp token(s)")


@evidence_app.command("prove")
def prove_command(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="Item hash (8 or more hex digits).")],
) -> None:
    """Print the inclusion proof of an item's entry in the latest checkpoint (JSON)."""
    with _archive(ctx) as archive:
        record = archive.item(item)
        sizes = archive.checkpoint_sizes()
        stored = (
            archive.checkpoint()
            if sizes and sizes[-1] > record.index
            else archive.sign_checkpoint()
        )
        size = stored.checkpoint.size
        proof = {
            "item": record.sha256,
            "entry": record.index,
            "leaf_hash": archive.log.leaf_hash(record.index).hex(),
            "tree_size": size,
            "root_hash": stored.checkpoint.root_hash.hex(),
            "inclusion_proof": [h.hex() for h in archive.inclusion_proof(record.index, size)],
            "checkpoint": stored.note,
        }
        console.print_json(json.dumps(proof))


@evidence_app.command("export")
def export_command(
    ctx: typer.Context,
    items: Annotated[list[str], typer.Argument(help="Item hashes to put in the bundle.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle (.zip).")],
    reason: Annotated[str, typer.Option(help="Why it is exported (recorded).")],
    witness_dir: Annotated[
        list[Path] | None,
        typer.Option(help="A witness folder whose witness cosigns the bundle's checkpoint."),
    ] = None,
) -> None:
    """Write a self-contained bundle that verifies offline."""
    settings = _settings(ctx)
    witnesses = [_load_witness(folder) for folder in witness_dir or []]
    with _archive(ctx) as archive:
        report = export_bundle(
            archive,
            items,
            output,
            actor=settings.actor,
            address=local_address(),
            reason=reason,
            timestamp_authorities=settings.timestamp_authorities,
            witnesses=witnesses,
        )
    console.print(f"wrote {output}: {len(report.checks)} checks passed")


@evidence_app.command("verify")
def verify_command(
    ctx: typer.Context,
    bundle: Annotated[
        Path | None, typer.Argument(help="A bundle to verify (default: the local archive).")
    ] = None,
    trust: Annotated[
        Path | None,
        typer.Option(help="File of trusted keys: 'log VKEY', 'witness VKEY', PEM certificates."),
    ] = None,
    witnesses: Annotated[
        int, typer.Option(min=0, help="Witness cosignatures required (k of the trusted n).")
    ] = 0,
) -> None:
    """Verify a bundle offline (each check printed), or the local archive."""
    if bundle is None:
        with _archive(ctx) as archive:
            size, objects = archive.verify()
        console.print(f"[green]ok[/] log of {size} entries and {objects} objects verify")
        return
    store = TrustStore.from_file(trust) if trust else None
    report = verify_bundle(bundle, store, required_witnesses=witnesses)
    for check in report.checks:
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        console.print(f"{mark} {check.name}: {escape(check.detail)}", soft_wrap=True)
    for warning in report.warnings:
        console.print(f"[yellow]note[/] {escape(warning)}", soft_wrap=True)
    failure = report.failure
    if failure is not None:
        raise EvidenceError(f"{bundle}: {failure.name}: {failure.detail}")


@evidence_app.command("fsck")
def fsck_command(
    ctx: typer.Context,
    repair_leftovers: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Quarantine the crash leftovers, after logging and signing what moves where.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the archive for damage and crash leftovers (exit 2 when damaged)."""
    settings = _settings(ctx)
    folder = settings.evidence_dir
    report = fsck(folder)
    if repair_leftovers and not report.damaged:
        result = repair(
            folder,
            actor=settings.actor,
            address=local_address(),
            timestamp_authorities=settings.timestamp_authorities,
        )
        assert result.after is not None
        if as_json:
            console.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            _print_repair(result.statement_entry, result.checkpoint_size, result.moved)
            _print_report(result.after)
        report = result.after
    elif as_json:
        console.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report)
    if report.damaged:
        inside = any(finding.signed for finding in report.damage)
        err_console.print(
            "[red]damaged:[/] pollwatch adds nothing to this archive and signs no checkpoint "
            "until it is restored"
            + (
                "; damage inside the checkpointed range needs a person (compare with a backup, "
                "an evidence bundle or the witnesses' copies of the checkpoints)"
                if inside
                else ""
            )
            + ("; --repair moved nothing" if repair_leftovers else ""),
            soft_wrap=True,
        )
        raise typer.Exit(2)


_MARKS = {"damage": "[red]damage[/]  ", "leftover": "[yellow]leftover[/]", "note": "note    "}


def _print_report(report: FsckReport) -> None:
    for finding in report.findings:
        console.print(f"{_MARKS[finding.kind]} {escape(finding.detail)}", soft_wrap=True)
    signed = (
        "no checkpoint"
        if report.checkpoint_size is None
        else (f"latest checkpoint {report.checkpoint_size}")
    )
    counts = (len(report.damage), len(report.leftovers), len(report.notes))
    summary = f"{report.entries} entries, {signed}: " + ", ".join(
        f"{count} {word}{'' if count == 1 else 's'}"
        for count, word in zip(counts, ("damage finding", "leftover", "note"), strict=True)
    )
    if report.clean:
        console.print(f"[green]ok[/] {summary}", soft_wrap=True)
    else:
        console.print(summary, soft_wrap=True)
    if report.leftovers and not report.damaged:
        console.print("run 'pollwatch evidence fsck --repair' to quarantine the leftovers")


def _print_repair(
    entry: int | None, size: int | None, moved: tuple[dict[str, object], ...]
) -> None:
    if entry is None:
        console.print("nothing to repair")
        return
    console.print(
        f"statement logged as entry {entry} and signed in checkpoint {size}; "
        f"{len(moved)} leftovers quarantined",
        soft_wrap=True,
    )
    for move in moved:
        back = " (put back: an entry names it now)" if move.get("restored") else ""
        console.print(f"moved {escape(str(move['path']))} -> {escape(str(move['to']))}{back}")


@witness_app.command("init")
def witness_init(
    folder: Annotated[Path, typer.Option("--dir", help="The witness's own folder.")],
    name: Annotated[str, typer.Option(help="The witness's name (e.g. observers.example/w1).")],
    log_key: Annotated[list[str], typer.Option(help="Verifier key of a log this witness follows.")],
) -> None:
    """Create a witness identity that follows the given logs."""

    if (folder / "witness.key").exists():
        raise EvidenceError(f"{folder} already holds a witness", hint="use another folder")
    keys = [Verifier.from_string(k).to_string() for k in log_key]
    skey, vkey = generate_cosigner(name)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "witness.key", skey + "\n", permissions=0o600)  # never readable
    (folder / "witness.pub").write_text(vkey + "\n", encoding="utf-8")
    (folder / "logs.txt").write_text("".join(f"{k}\n" for k in keys), encoding="utf-8")
    console.print(f"witness {name} created; its verifier key: {vkey}", soft_wrap=True, markup=False)


@witness_app.command("cosign")
def witness_cosign(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Option("--dir", help="The witness's own folder.")],
) -> None:
    """Cosign this archive's latest checkpoint as the witness in --dir."""
    witness = _load_witness(folder)
    with _archive(ctx) as archive:
        stored = archive.witness(witness)
    console.print(stored.note.rstrip("\n"), soft_wrap=True, markup=False, highlight=False)


def _load_witness(folder: Path) -> Witness:
    """The witness kept in ``folder`` (created by 'witness init')."""

    try:
        signer = Signer.from_string((folder / "witness.key").read_text("utf-8").strip())
        logs = [
            Verifier.from_string(line.strip())
            for line in (folder / "logs.txt").read_text("utf-8").splitlines()
            if line.strip()
        ]
    except OSError as exc:
        raise EvidenceError(
            f"no witness in {folder} ({exc.strerror})", hint="create one with 'witness init'"
        ) from None
    return Witness(signer, logs, state=folder / "state.json")
