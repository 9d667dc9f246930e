"""``pollwatch video user|token|policy|audit``: accounts, API tokens, the playback policy, audit.

user add | list | remove | passwd;  token create | list | revoke;  policy check | explain |
default;  audit watched | origins | denied.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pollwatch.errors import VideoError
from pollwatch.evidence.archive import EvidenceArchive
from pollwatch.spreadsheet import neutralise_row
from pollwatch.video.accounts import (
    ANONYMOUS,
    ROLES,
    AccountStore,
    User,
    check_role,
    check_user_name,
)
from pollwatch.video.audit import AuditLog
from pollwatch.video.policy import DEFAULT_POLICY, PlaybackRequest, Policy, load_policy
from pollwatch.video.segments import parse_time

from .state import settings as _settings
from .state import unfolded_console as console
from .state import unfolded_err_console as err_console

__all__ = ["register"]


user_app = typer.Typer(help="Local accounts for playback (roles, observers' regions).")
token_app = typer.Typer(help="API bearer tokens (shown once, stored hashed, revocable).")
policy_app = typer.Typer(help="The playback policy: validate a file, explain a decision.")
audit_app = typer.Typer(help="Who watched what, from where; denied requests (custody log).")


def register(video_app: typer.Typer) -> None:
    """Add this module's commands to ``pollwatch video``."""
    video_app.add_typer(user_app, name="user")
    video_app.add_typer(token_app, name="token")
    video_app.add_typer(policy_app, name="policy")
    video_app.add_typer(audit_app, name="audit")


def _accounts(ctx: typer.Context) -> AccountStore:
    return AccountStore(_settings(ctx).video_dir)


def _password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise VideoError(
                "no password on standard input", hint="pipe the password: echo ... | pollwatch ..."
            )
        return line
    value: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return value


# --- users ---------------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    region: Annotated[
        list[str] | None, typer.Option(help="Observer's assigned region (repeatable).")
    ] = None,
    station: Annotated[
        list[str] | None, typer.Option(help="Observer's assigned station (repeatable).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account (the password is asked for, or read from standard input)."""
    check_user_name(name)
    check_role(role)
    store = _accounts(ctx)
    user = store.add_user(
        name, role, _password(password_stdin), regions=region or (), stations=station or ()
    )
    console.print(f"user {user.name} created (role {user.role})", markup=False)


@user_app.command("list")
def user_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The accounts with their roles and assignments."""
    users = _accounts(ctx).users()
    if as_json:
        console.print_json(json.dumps([u.to_dict() for u in users]))
        return
    table = Table("name", "role", "regions", "stations", "created")
    for user in users:
        table.add_row(
            user.name, user.role, ", ".join(user.regions), ", ".join(user.stations), user.created
        )
    console.print(table)


@user_app.command("remove")
def user_remove(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Delete an account, its sessions and its API tokens."""
    _accounts(ctx).remove_user(name)
    console.print(f"user {name} removed", markup=False)


@user_app.command("passwd")
def user_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a new password (the user's web sessions end)."""
    _accounts(ctx).set_password(name, _password(password_stdin))
    console.print(f"password of {name} changed", markup=False)


# --- tokens --------------------------------------------------------------------------------------
@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create an API token and print it once (only its hash is kept)."""
    record, token = _accounts(ctx).create_token(name, label)
    err_console.print(
        f"token {record.id} for {record.user}: shown once, store it now "
        "(send it as 'Authorization: Bearer <token>')",
        markup=False,
    )
    sys.stdout.write(token + "\n")


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
) -> None:
    """API tokens: id, user, label, created, revoked."""
    table = Table("id", "user", "label", "created", "revoked")
    for token in _accounts(ctx).tokens(user):
        table.add_row(token.id, token.user, token.label, token.created, token.revoked or "")
    console.print(table)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument()]) -> None:
    """Revoke a token by its id; it stops working at once."""
    record = _accounts(ctx).revoke_token(token_id)
    console.print(f"token {record.id} of {record.user} revoked", markup=False)


# --- policy --------------------------------------------------------------------------------------
@policy_app.command("check")
def policy_check(file: Annotated[Path, typer.Argument(help="A policy TOML file.")]) -> None:
    """Validate a policy file: one line naming the line and key of the first mistake."""
    policy = Policy.load(file)
    console.print(
        f"{file}: valid, {len(policy.rules)} rules, {len(policy.networks)} named networks, "
        f"{len(policy.regions)} regions (anything no rule allows is denied)",
        markup=False,
    )


@policy_app.command("default")
def policy_default() -> None:
    """Print the built-in policy (in force while <home>/video/policy.toml is absent)."""
    sys.stdout.write(DEFAULT_POLICY)


@policy_app.command("explain")
def policy_explain(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Argument(help="A policy file (default: the one in force).")
    ] = None,
    user: Annotated[str, typer.Option(help="A user name, or 'anonymous'.")] = "anonymous",
    station: Annotated[str, typer.Option(help="The station asked for.")] = "",
    address: Annotated[str, typer.Option(help="The client address.")] = "127.0.0.1",
    copy: Annotated[
        str | None, typer.Option(help="original or blurred (default: the best allowed).")
    ] = None,
    time: Annotated[
        str | None, typer.Option(help="When the viewing happens (ISO 8601; default: now).")
    ] = None,
) -> None:
    """Say which rule decides a request and why the rules before it did not match."""
    settings = _settings(ctx)
    policy = Policy.load(file) if file is not None else load_policy(settings)
    if not station:
        raise VideoError("no station given", hint="add --station <id>")
    if copy not in (None, "original", "blurred"):
        raise VideoError(f"unknown copy {copy!r}", hint="use --copy original or --copy blurred")
    who: User = ANONYMOUS if user == "anonymous" else AccountStore(settings.video_dir).user(user)
    request = PlaybackRequest(
        station=station,
        address=address,
        copy=copy,  # type: ignore[arg-type]
        time=parse_time(time) if time else None,
    )
    region = policy.region_of(station)
    console.print(
        f"user {who.name} (role {who.role}), station {station} (region {region or '-'}), "
        f"address {address} (network {policy.network_name(address) or '-'})",
        markup=False,
    )
    for rule, why in policy.explain(who, request):
        where = f" (line {rule.line})" if rule.line else ""
        verdict = "MATCHES" if why is None else f"skipped: {why}"
        console.print(f"  rule {rule.name}{where}: {verdict}", markup=False)
    decision = policy.decide(who, request)
    outcome = f"ALLOW {decision.copy}" if decision.allowed else "DENY"
    console.print(f"{outcome}: {decision.reason} [{decision.rule}]", markup=False)


# --- audit ---------------------------------------------------------------------------------------
def _audit_output(rows: list[dict[str, Any]], columns: list[str], as_csv: bool) -> None:
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(neutralise_row(row) for row in rows)  # no cell runs as a formula
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


def _audit(ctx: typer.Context) -> AuditLog:
    return AuditLog(EvidenceArchive(_settings(ctx).evidence_dir))


def _window(start: str | None, end: str | None) -> dict[str, datetime | None]:
    """The --start and --end times, as the ``start``/``end`` arguments of the audit queries."""
    return {
        "start": parse_time(start) if start else None,
        "end": parse_time(end) if end else None,
    }


StartOption = Annotated[str | None, typer.Option(help="From this time (ISO 8601).")]
EndOption = Annotated[str | None, typer.Option(help="Before this time (ISO 8601).")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV.")]


@audit_app.command("watched")
def audit_watched(
    ctx: typer.Context,
    station: Annotated[str, typer.Option(help="The station.")],
    start: StartOption = None,
    end: EndOption = None,
    as_csv: CsvOption = False,
) -> None:
    """Who watched a station: user, role, address, time, segment, copy."""
    rows = _audit(ctx).who_watched(
        station,
        **_window(start, end),
    )
    columns = ["time", "user", "role", "address", "segment", "camera", "copy", "range"]
    _audit_output([r.to_dict() for r in rows], columns, as_csv)


@audit_app.command("origins")
def audit_origins(
    ctx: typer.Context, start: StartOption = None, end: EndOption = None, as_csv: CsvOption = False
) -> None:
    """Viewings by origin network (the policy's named networks, else /24 or /48) and role."""
    policy = load_policy(_settings(ctx))
    rows = _audit(ctx).by_origin(
        named=policy.network_name,
        **_window(start, end),
    )
    columns = ["network", "role", "viewings", "users", "segments", "stations", "first", "last"]
    _audit_output([r.to_dict() for r in rows], columns, as_csv)


@audit_app.command("denied")
def audit_denied(
    ctx: typer.Context,
    station: Annotated[str | None, typer.Option(help="Only this station.")] = None,
    start: StartOption = None,
    end: EndOption = None,
    as_csv: CsvOption = False,
) -> None:
    """Denied playback requests: who, from where, which segment, which rule."""
    rows = _audit(ctx).denied(
        station=station,
        **_window(start, end),
    )
    columns = ["time", "user", "role", "address", "station", "segment", "copy", "reason"]
    columns.append("suppressed")  # a rate-limited row: the denials it stands for
    _audit_output([r.to_dict() for r in rows], columns, as_csv)
