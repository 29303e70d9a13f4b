"""``occ outbox list|show|retry|release``: the ERP outbox as an operator sees and resolves it.

The work is done in ``settlement.export.outbox_admin``; this module only parses options, calls it and prints.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from occ.cli.store_options import load_settings, open_database, store_options
from settlement.export.outbox_admin import (
    ActionRecord,
    OutboxActionError,
    count_by_state,
    list_documents,
    release,
    retry,
    show_document,
)
from settlement.vocabulary import OutboxState

T = TypeVar("T")


def _actor_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--actor", envvar="OCC_ACTOR", default=lambda: f"local:{getpass.getuser()}", show_default="local:<OS user>",
        help="Who does it, recorded with the action; also $OCC_ACTOR.",
    )(command)  # fmt: skip


@click.group()
def outbox() -> None:
    """The ERP outbox: list and show documents; retry or release a REJECTED one."""


@outbox.command("list")
@store_options
@click.option("--state", type=click.Choice([s.value for s in OutboxState]), help="Only documents in this state.")
@click.option("--kind", type=click.Choice(["INVOICE", "CREDIT_NOTE"]), help="Only this kind of document.")
@click.option("--invoice-id", type=click.IntRange(1), help="Only the documents of this invoice row.")
@click.option("--before", type=click.IntRange(1), help="Only ids below this one (the next page).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="At most this many.")
def list_command(config: Path | None, state: str | None, kind: str | None, invoice_id: int | None,
                 before: int | None, limit: int, **flags: object) -> None:  # fmt: skip
    """Documents newest first: id, state, attempts, kind, idempotency key, ERP number, last error; then the count
    in each state."""
    engine = open_database(load_settings(config, **flags), must_exist=True)
    page = _checked(lambda: list_documents(engine, state=state, kind=kind, invoice_id=invoice_id, before=before,
                                           limit=limit))  # fmt: skip
    for row in page.rows:
        click.echo(f"{row.id:>8} {row.state:<9} {row.attempts:>3} {row.kind:<11} {row.idempotency_key:<32} "
                   f"{row.erp_document_number or '-':<14} {row.last_error}".rstrip())  # fmt: skip
    if page.next_before is not None:
        click.echo(f"more: --before {page.next_before}")
    counts = count_by_state(engine)
    click.echo(", ".join(f"{count:,} {state_name}" for state_name, count in counts.items()))


@outbox.command("show")
@store_options
@click.argument("outbox_id", type=int)
def show_command(config: Path | None, outbox_id: int, **flags: object) -> None:
    """One document: its row, what its payload holds, and every operator action on it."""
    engine = open_database(load_settings(config, **flags), must_exist=True)
    detail = _checked(lambda: show_document(engine, outbox_id))
    row, document = detail.row, detail.document
    fields = {
        "id": row.id, "idempotency key": row.idempotency_key, "document ref": row.document_ref, "kind": row.kind,
        "invoice id": "-" if row.invoice_id is None else row.invoice_id, "state": row.state,
        "attempts": row.attempts, "next attempt": _utc(row.next_attempt_ms) if row.state == "PENDING" else "-",
        "ERP number": row.erp_document_number or "-", "last error": row.last_error or "-",
        "created": _utc(row.created_ms), "updated": _utc(row.updated_ms),
    }  # fmt: skip
    if document.problem:
        fields["payload"] = document.problem
    else:
        fields["customer"] = document.customer_code
        fields["gross total"] = f"{document.gross_total} {document.currency} ({document.lines} lines)"
    for name, value in fields.items():
        click.echo(f"{name + ':':<17} {value}")
    for action in detail.actions:
        click.echo(_action_line(action))


@outbox.command("retry")
@store_options
@click.argument("outbox_id", type=int)
@click.option("--reason", default="", help="What was fixed (recorded with the action).")
@_actor_option
def retry_command(config: Path | None, outbox_id: int, reason: str, actor: str, **flags: object) -> None:
    """Send a REJECTED document again (the same payload) on the exporter's next round, or a PENDING one now."""
    engine = open_database(load_settings(config, **flags), must_exist=True)
    record = _checked(lambda: retry(engine, outbox_id, actor=actor, reason=reason))
    click.echo(f"outbox id {record.outbox_id}: {record.state_before} → {record.state_after}, due now")


@outbox.command("release")
@store_options
@click.argument("outbox_id", type=int)
@click.option("--reason", required=True, help="Why it must not be sent (recorded with the action).")
@_actor_option
def release_command(config: Path | None, outbox_id: int, reason: str, actor: str, **flags: object) -> None:
    """REJECTED → RELEASED: never sent, and no longer holding back the documents after it of its invoice number."""
    engine = open_database(load_settings(config, **flags), must_exist=True)
    record = _checked(lambda: release(engine, outbox_id, actor=actor, reason=reason))
    click.echo(f"outbox id {record.outbox_id}: {record.state_before} → {record.state_after} ({record.reason})")


def _checked(call: Callable[[], T]) -> T:
    try:
        return call()
    except OutboxActionError as error:
        raise click.ClickException(str(error)) from None


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _action_line(action: ActionRecord) -> str:
    why = f": {action.reason}" if action.reason else ""
    return f"{_utc(action.at_ms)}  {action.actor} {action.action} {action.state_before} → {action.state_after}{why}"
