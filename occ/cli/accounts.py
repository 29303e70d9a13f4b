"""``occ account …`` and ``occ sessions …``: the Admin API of a running server, for people.

Every command talks gRPC (sync stubs) to the Admin listener, ``--admin-server`` (or ``$OCC_ADMIN_SERVER``; default
``127.0.0.1:50052``), with a bearer token (``--token``, ``$OCC_TOKEN``, ``--token-file``; on the server's machine the
one ``occ serve`` wrote to ``./data/admin-token``) and TLS files when the server uses TLS (``occ.cli.connection``).
Amounts are decimals in the account's currency (``10.50``), sent as micro-units and shown with six decimals. A gRPC
error prints ``error: <status>: <details>`` on stderr and exits with status 1.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
import grpc

from occ.cli.connection import Target, admin_options, channel_to
from occ.cli.types import MINUS_IS_A_VALUE, MONEY, PERCENT, POSITIVE_MONEY, percent_of_ppm
from occ.v1 import admin_pb2 as admin
from occ.v1 import admin_pb2_grpc, charging_pb2_grpc
from rating_engine.money import format_micros

TIMEOUT_S = 10.0
"""Deadline of each call: an unreachable or stuck server fails the command instead of hanging it."""
TAX_LABEL_HELP = "A label kept on the online account; billing does not read it (occ bill account set --tax-profile)."


class Stubs:
    """The Charging and Admin stubs of one channel (pass ``timeout=TIMEOUT_S`` on every call)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.admin = admin_pb2_grpc.AdminStub(channel)
        self.charging = charging_pb2_grpc.ChargingStub(channel)


@contextlib.contextmanager
def connect(target: Target) -> Iterator[Stubs]:
    """Stubs for ``target``; a gRPC error becomes ``error: <status>: <details>`` on stderr and exit status 1."""
    with channel_to(target) as channel:
        yield Stubs(channel)


def echo_pairs(pairs: list[tuple[str, str]]) -> None:
    for label, value in pairs:
        click.echo(f"{label + ':':<16} {value}")


def echo_account(account: admin.Account) -> None:
    """The online account. Billing settings (billing day, time zone, tax profile) live in the SQL store, so the
    last line says where to see them rather than showing the online ``tax_profile`` label as if billing used it."""
    label = [("tax label", f"{account.tax_profile} (online only; billing does not read it)")]
    echo_pairs(
        [
            ("account", account.id),
            ("status", admin.AccountStatus.Name(account.status)),
            ("plan", account.tariff_plan),
            ("currency", account.currency),
            ("balance", format_micros(account.balance_micros)),
            ("credit limit", format_micros(account.credit_limit_micros)),
            ("reserved", format_micros(account.reserved_micros)),
            ("available", format_micros(account.available_micros)),
            ("open sessions", str(account.open_sessions)),
            ("prepaid tax", _prepaid_tax(account.prepaid_tax)),
            *(label if account.tax_profile else []),
            ("billing", f"settings in the SQL store: occ bill account show {account.id}"),
        ]
    )


def _prepaid_tax(tax: admin.PrepaidTax) -> str:
    if not tax.rate_ppm:
        return "(none)"
    percent = percent_of_ppm(tax.rate_ppm)
    code = f", tax code {tax.tax_code}" if tax.tax_code else ""
    return f"{percent} % taken from top-ups (ledger {tax.ledger_code}{code})"


def prepaid_tax_options(command: Any) -> Any:
    """--prepaid-tax-rate / --prepaid-tax-ledger / --prepaid-tax-code, set together."""
    for option in reversed([
        click.option("--prepaid-tax-rate", type=PERCENT, default=None,
                     help="Tax taken from every top-up, in percent (20 = 20 %; 0 turns it off)."),
        click.option("--prepaid-tax-ledger", type=click.IntRange(min=1), default=None,
                     help="Ledger code the prepaid tax posts to (required with a rate above 0)."),
        click.option("--prepaid-tax-code", default="", help="VAT group / tax code of the prepaid tax (for the ERP)."),
    ]):  # fmt: skip
        command = option(command)
    return command


def prepaid_tax_of(rate: int | None, ledger: int | None, code: str) -> admin.PrepaidTax | None:
    if rate is None:
        if ledger is not None or code:
            raise click.UsageError("--prepaid-tax-ledger and --prepaid-tax-code go with --prepaid-tax-rate")
        return None
    return admin.PrepaidTax(rate_ppm=rate, ledger_code=ledger or 0, tax_code=code)


def utc(unix_ms: int) -> str:
    return datetime.fromtimestamp(unix_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if unix_ms else "-"


@click.group()
def account() -> None:
    """Create, list, inspect, block and credit accounts on a running server."""


@account.command()
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--plan", required=True, help="A tariff plan of the server's current tariff.")
@click.option("--currency", default="EUR", show_default=True, help="ISO 4217 code; must be the tariff's.")
@click.option("--credit-limit", type=MONEY, default=0, help="How far below zero the balance may go.  [default: 0]")
@click.option("--tax-profile", default="", help=TAX_LABEL_HELP)
@prepaid_tax_options
@admin_options
def create(
    account_id: str,
    plan: str,
    currency: str,
    credit_limit: int,
    tax_profile: str,
    prepaid_tax_rate: int | None,
    prepaid_tax_ledger: int | None,
    prepaid_tax_code: str,
    target: Target,
) -> None:
    """Create ACCOUNT (balance 0: credit it with `occ account topup`)."""
    request = admin.Account(
        id=account_id, tariff_plan=plan, currency=currency, credit_limit_micros=credit_limit, tax_profile=tax_profile
    )
    tax = prepaid_tax_of(prepaid_tax_rate, prepaid_tax_ledger, prepaid_tax_code)
    if tax is not None:
        request.prepaid_tax.CopyFrom(tax)
    with connect(target) as stubs:
        echo_account(stubs.admin.CreateAccount(request, timeout=TIMEOUT_S))


@account.command()
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--plan", default=None, help="A tariff plan of the server's current tariff.")
@click.option("--credit-limit", type=MONEY, default=None, help="How far below zero the balance may go.")
@click.option("--tax-profile", default=None, help=TAX_LABEL_HELP)
@prepaid_tax_options
@admin_options
def update(
    account_id: str,
    plan: str | None,
    credit_limit: int | None,
    tax_profile: str | None,
    prepaid_tax_rate: int | None,
    prepaid_tax_ledger: int | None,
    prepaid_tax_code: str,
    target: Target,
) -> None:
    """Change the settings given of ACCOUNT (never its balance)."""
    request = admin.UpdateAccountRequest(id=account_id)
    if plan is not None:
        request.tariff_plan = plan
    if credit_limit is not None:
        request.credit_limit_micros = credit_limit
    if tax_profile is not None:
        request.tax_profile = tax_profile
    tax = prepaid_tax_of(prepaid_tax_rate, prepaid_tax_ledger, prepaid_tax_code)
    if tax is not None:
        request.prepaid_tax.CopyFrom(tax)
    with connect(target) as stubs:
        echo_account(stubs.admin.UpdateAccount(request, timeout=TIMEOUT_S))


@account.command()
@click.argument("account_id", metavar="ACCOUNT")
@admin_options
def show(account_id: str, target: Target) -> None:
    """Show ACCOUNT: status, plan, balance, reservations."""
    with connect(target) as stubs:
        echo_account(stubs.admin.GetAccount(admin.GetAccountRequest(id=account_id), timeout=TIMEOUT_S))


@account.command("list")
@click.option("--prefix", default="", help="Only accounts whose id starts with this.")
@click.option("--page-size", type=click.IntRange(1, 1000), default=50, show_default=True, help="Accounts per page.")
@click.option("--page-token", default="", help="Where the previous page ended (it prints the token of the next).")
@click.option("--all", "every_page", is_flag=True, help="Every page, one after the other.")
@admin_options
def list_accounts(prefix: str, page_size: int, page_token: str, every_page: bool, target: Target) -> None:
    """List accounts in id order, a page at a time: status, plan, balance, available credit, open sessions."""
    header = ("account", "status", "plan", "currency", "balance", "available", "sessions")
    rows: list[tuple[str, ...]] = [header]
    with connect(target) as stubs:
        while True:
            request = admin.ListAccountsRequest(prefix=prefix, page_size=page_size, page_token=page_token)
            answer = stubs.admin.ListAccounts(request, timeout=TIMEOUT_S)
            rows += [(a.id, admin.AccountStatus.Name(a.status), a.tariff_plan, a.currency,
                      format_micros(a.balance_micros), format_micros(a.available_micros), str(a.open_sessions))
                     for a in answer.accounts]  # fmt: skip
            page_token = answer.next_page_token
            if not (every_page and page_token):
                break
    if len(rows) == 1:
        click.echo(f"no accounts{f' starting with {prefix!r}' if prefix else ''}")
        return
    echo_table(rows)
    if page_token:
        click.echo(f"more: --page-token {page_token}")


def _set_status(name: str, status: int, summary: str) -> None:
    @account.command(name, help=summary)
    @click.argument("account_id", metavar="ACCOUNT")
    @admin_options
    def command(account_id: str, target: Target) -> None:
        request = admin.UpdateAccountRequest(id=account_id, status=status)
        with connect(target) as stubs:
            echo_account(stubs.admin.UpdateAccount(request, timeout=TIMEOUT_S))


_set_status("block", admin.BLOCKED, "Block ACCOUNT: every charging request is denied (4010).")
_set_status("unblock", admin.ACTIVE, "Make ACCOUNT active again.")


def _transact(account_id: str, kind: int, amount: int, ledger: int, key: str, description: str, target: Target) -> None:
    request = admin.TransactionRequest(
        account_id=account_id,
        type=kind,
        amount_micros=amount,
        idempotency_key=key,
        ledger_code=ledger,
        description=description,
    )
    with connect(target) as stubs:
        answer = stubs.admin.Transact(request, timeout=TIMEOUT_S)
    echo_pairs(
        [
            ("transaction", answer.transaction_id),
            ("idempotency key", key),
            ("balance", format_micros(answer.balance_micros)),
        ]
    )
    if answer.tax_micros:
        net = amount - answer.tax_micros
        echo_pairs([("prepaid tax", format_micros(answer.tax_micros)), ("credited", format_micros(net))])
    if answer.duplicate:
        click.echo("duplicate: this key was used before; nothing changed (the balance shown is the first answer's)")


def _money_command(name: str, kind: int, summary: str) -> None:
    @account.command(name, help=summary, context_settings=MINUS_IS_A_VALUE)
    @click.argument("account_id", metavar="ACCOUNT")
    @click.argument("amount", type=POSITIVE_MONEY)
    @click.option("--ledger", type=click.IntRange(min=1), required=True, help="Ledger code of the movement.")
    @click.option("--key", default=None, help="Idempotency key: a repeat changes nothing.  [default: a new uuid4]")
    @click.option("--description", default="", help="Free text kept with the transaction.")
    @admin_options
    def command(account_id: str, amount: int, ledger: int, key: str | None, description: str, target: Target) -> None:
        _transact(account_id, kind, amount, ledger, key or str(uuid.uuid4()), description, target)


_money_command("topup", admin.TOP_UP, "Credit AMOUNT of prepaid credit to ACCOUNT.")
_money_command("payment", admin.PAYMENT, "Record a payment of AMOUNT received from ACCOUNT (raises its balance).")
_money_command("refund", admin.REFUND, "Give AMOUNT back to the customer of ACCOUNT (lowers its balance).")


@account.command(context_settings=MINUS_IS_A_VALUE)  # AMOUNT may be negative: -1.25
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("amount", type=MONEY)
@click.option("--ledger", type=click.IntRange(min=1), required=True, help="Ledger code of the correction.")
@click.option("--key", required=True, help="Idempotency key: a repeat changes nothing.")
@click.option("--description", default="", help="Free text kept with the transaction.")
@admin_options
def adjust(account_id: str, amount: int, ledger: int, key: str, description: str, target: Target) -> None:
    """Correct the balance of ACCOUNT by AMOUNT (signed: -1.25 lowers it)."""
    _transact(account_id, admin.ADJUSTMENT, amount, ledger, key, description, target)


@click.group()
def sessions() -> None:
    """List and abort an account's open sessions on a running server."""


@sessions.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@admin_options
def list_sessions(account_id: str, target: Target) -> None:
    """List the open sessions of ACCOUNT with their holds and deadlines (UTC)."""
    with connect(target) as stubs:
        answer = stubs.admin.ListSessions(admin.ListSessionsRequest(account_id=account_id), timeout=TIMEOUT_S)
    if not answer.sessions:
        click.echo(f"no open sessions on {account_id}")
        return
    header = ("session", "request", "reserved", "cost", "called", "started (UTC)", "deadline (UTC)")
    rows = [header] + [
        (
            info.session_id,
            str(info.last_request_number),
            format_micros(info.reserved_micros),
            format_micros(info.cost_micros),
            info.called_party or "-",
            utc(info.started_unix_ms),
            utc(info.deadline_unix_ms),
        )
        for info in answer.sessions
    ]
    echo_table(rows)


def echo_table(rows: list[tuple[str, ...]]) -> None:
    """Rows of text (the first a header) in columns padded to the widest cell."""
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@sessions.command()
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("session_id", metavar="SESSION")
@click.option("--reason", default="aborted by an administrator", show_default=True, help="Told to the switch.")
@admin_options
def abort(account_id: str, session_id: str, reason: str, target: Target) -> None:
    """End SESSION of ACCOUNT now: its hold is released, its reported usage stays charged."""
    request = admin.AbortSessionRequest(account_id=account_id, session_id=session_id, reason=reason)
    with connect(target) as stubs:
        answer = stubs.admin.AbortSession(request, timeout=TIMEOUT_S)
    if answer.aborted:
        click.echo(f"aborted {session_id}: cost {format_micros(answer.cost_micros)}")
    else:
        click.echo(f"{session_id} is not an open session of {account_id}: nothing to abort")
