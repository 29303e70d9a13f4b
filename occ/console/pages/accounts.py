"""Accounts: search and page through them, an account's page (balance, limits, status, plan, taxes, a chart of its
balance from the ledger, its open sessions), block/unblock, and money movements with a confirmation step.

A money movement is two posts: the form (kind, amount, ledger code, description) shows the amount back with a new
idempotency key made here; the confirmation sends that key with the movement, so sending it twice (a double click,
a reload, a second tab) moves the money once: the Admin API answers the repeat as a duplicate.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlencode

from aiohttp import web

from occ.console import charts
from occ.console.pages.common import ENGINE, AdminError, admin_call, field, forbidden, form, notice, refused
from occ.console.render import account_path, page
from occ.console.security import see_other
from occ.v1 import admin_pb2 as pb
from rating_engine.money import MAX_EXACT_MICROS, format_micros, parse_micros
from settlement.accounts import NotInBooks
from settlement.billing.account_view import account_view
from settlement.listings import account_ledger
from settlement.store.database import reading

routes = web.RouteTableDef()
PAGE_SIZE = 50
MAX_DESCRIPTION = 1024  # as the Admin API takes it
# kind in the form → (Admin transaction type, a label for people, whether the amount must be positive)
MOVEMENTS = {
    "topup": (pb.TOP_UP, "Top-up", True),
    "payment": (pb.PAYMENT, "Payment", True),
    "refund": (pb.REFUND, "Refund", True),
    "adjustment": (pb.ADJUSTMENT, "Adjustment", False),
}


@routes.get("/accounts")
async def accounts(request: web.Request) -> web.Response:
    prefix, token = request.query.get("prefix", "").strip(), request.query.get("page_token", "")
    message = pb.ListAccountsRequest(prefix=prefix, page_size=PAGE_SIZE, page_token=token)
    try:
        answer = await admin_call(request, "ListAccounts", message)
    except AdminError as error:
        return refused(request, str(error), status=400)
    next_page = f"/accounts?{urlencode({'prefix': prefix, 'page_token': answer.next_page_token})}"
    return page(request, "accounts.html", prefix=prefix, accounts=answer.accounts, status_name=pb.AccountStatus.Name,
                next_page=next_page if answer.next_page_token else "")  # fmt: skip


def _books(engine, account_id: str) -> tuple[list, object | None]:
    """The account's ledger rows (for the balance chart) and its billing view (None before settlement knows it)."""
    with reading(engine) as connection:
        rows = account_ledger(connection, account_id)
        try:
            view = account_view(connection, account_id)
        except NotInBooks:
            view = None
    return rows, view


@routes.get("/accounts/{account_id}")
async def account(request: web.Request) -> web.Response:
    account_id = request.match_info["account_id"]
    try:
        found = await admin_call(request, "GetAccount", pb.GetAccountRequest(id=account_id))
        sessions = await admin_call(request, "ListSessions", pb.ListSessionsRequest(account_id=account_id))
    except AdminError as error:
        return refused(request, str(error), status=404 if error.status == "NOT_FOUND" else 400)
    rows, view = await asyncio.to_thread(_books, request.app[ENGINE], account_id)
    points = [(row.time_ms, row.balance) for row in rows if row.balance is not None]
    chart = charts.line(points, label=f"Balance of {account_id} over its last {len(points)} ledger rows",
                        fmt=lambda micros: format_micros(int(micros)))  # fmt: skip
    return page(request, "account.html", account=found, sessions=sessions.sessions, ledger=rows, books=view,
                chart=chart, status_name=pb.AccountStatus.Name, movements={kind: m[1] for kind, m in MOVEMENTS.items()},
                path=account_path(account_id))  # fmt: skip


@routes.post("/accounts/{account_id}/status")
async def set_status(request: web.Request) -> web.Response:
    if (refusal := forbidden(request, "account.status")) is not None:
        return refusal
    account_id = request.match_info["account_id"]
    wanted = field(await form(request), "status")
    if wanted not in ("ACTIVE", "BLOCKED"):
        return refused(request, "status must be ACTIVE or BLOCKED", status=400)
    try:
        await admin_call(
            request, "UpdateAccount", pb.UpdateAccountRequest(id=account_id, status=pb.AccountStatus.Value(wanted))
        )
    except AdminError as error:
        return refused(request, str(error))
    notice(request, f"{account_id} is {wanted} now.")
    return see_other(account_path(account_id))


class Movement:
    """A money movement read from a form; bad input raises ValueError naming the field."""

    def __init__(self, values) -> None:
        self.kind = field(values, "kind")
        if self.kind not in MOVEMENTS:
            raise ValueError(f"kind must be one of {', '.join(MOVEMENTS)}")
        self.type, self.label, positive = MOVEMENTS[self.kind]
        try:
            self.amount_micros = parse_micros(field(values, "amount"))
        except ValueError as error:
            raise ValueError(f"amount: {error}") from None
        if (
            self.amount_micros == 0
            or (positive and self.amount_micros < 0)
            or abs(self.amount_micros) > MAX_EXACT_MICROS
        ):
            raise ValueError(f"amount must be {'above' if positive else 'other than'} 0 (and at most "
                             f"{format_micros(MAX_EXACT_MICROS)})")  # fmt: skip
        ledger_code = field(values, "ledger_code")
        if not (ledger_code.isascii() and ledger_code.isdigit() and len(ledger_code) <= 15 and int(ledger_code) > 0):
            raise ValueError("ledger_code must be 1 to 15 digits")
        self.ledger_code = int(ledger_code)
        self.description = field(values, "description")
        if len(self.description) > MAX_DESCRIPTION:
            raise ValueError(f"description must be at most {MAX_DESCRIPTION} characters")


@routes.post("/accounts/{account_id}/money/confirm")
async def confirm_money(request: web.Request) -> web.Response:
    if (refusal := forbidden(request, "account.money")) is not None:
        return refusal
    account_id = request.match_info["account_id"]
    try:
        movement = Movement(await form(request))
        found = await admin_call(request, "GetAccount", pb.GetAccountRequest(id=account_id))
    except (ValueError, AdminError) as error:
        return refused(request, str(error), status=400)
    return page(request, "confirm_money.html", account=found, movement=movement, key=str(uuid.uuid4()),
                path=account_path(account_id))  # fmt: skip


@routes.post("/accounts/{account_id}/money")
async def move_money(request: web.Request) -> web.Response:
    if (refusal := forbidden(request, "account.money")) is not None:
        return refusal
    account_id = request.match_info["account_id"]
    values = await form(request)
    try:
        movement = Movement(values)
    except ValueError as error:
        return refused(request, str(error), status=400)
    key = field(values, "idempotency_key")
    if not key:
        return refused(request, "idempotency_key is missing: start again from the account's page", status=400)
    request_message = pb.TransactionRequest(
        account_id=account_id, type=movement.type, amount_micros=movement.amount_micros,
        idempotency_key=f"console:{key}", ledger_code=movement.ledger_code, description=movement.description,
    )  # fmt: skip
    try:
        answer = await admin_call(request, "Transact", request_message)
    except AdminError as error:
        return refused(request, str(error), status=400)
    if answer.duplicate:
        notice(request, f"{movement.label} was already done (sent twice): nothing changed. Balance "
                        f"{format_micros(answer.balance_micros)}.")  # fmt: skip
    else:
        notice(request, f"{movement.label} of {format_micros(movement.amount_micros)} done: balance "
                        f"{format_micros(answer.balance_micros)}.")  # fmt: skip
    return see_other(account_path(account_id))
