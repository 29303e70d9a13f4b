"""Billing runs (``occ bill run --date D``), out-of-turn invoices (``occ bill now``) and previews (dry runs).

A run closes, for every account settlement has seen, each period that ended by the run date (at local midnight of
that date in the account's time zone), oldest first, in transactions of up to ``CHUNK``
invoices, each in its own savepoint (:func:`issue.issue_many`). An account's first period is the billing cycle
holding its earliest item (a call's start: a call made in January and settled in March opens January), or the
moment settlement first saw it if that is earlier. An account
whose statement stays DRAFT is not billed further until it is fixed. A preview computes the same statements from the
same xDRs without marking anything and stores them in the ``preview_*`` tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, func, insert, select, update

from settlement.accounts import require_known
from settlement.billing import validate
from settlement.billing.cycle import cycle_start, local_midnight_ms, next_boundary
from settlement.billing.issue import (
    CHUNK,
    ITEM_COLUMNS,
    Job,
    Outcome,
    brought_forward,
    header,
    issue,
    issue_many,  # fmt: skip
    items_of,
    late_periods,
    line_rows,
)
from settlement.billing.parties import encode
from settlement.billing.setup import BillingAccount, TaxSetup, load_accounts, load_issuers, load_tax_setup
from settlement.billing.statement import compute
from settlement.store.schema import accounts, billing_runs, invoices, preview_invoice_lines, preview_invoices, xdrs
from settlement.vocabulary import EXCEPTED_STATUSES, ISSUED_STATES, InvoiceKind, XdrStatus

EARLIEST_ZONE = "Etc/GMT-14"  # UTC+14: where a date begins first


class BillingError(ValueError):
    """A request billing cannot carry out (unknown account or invoice, empty period…); the message says why."""


class RunReport(msgspec.Struct, kw_only=True):
    """What a run did.

    Attributes:
        run_id: its ``billing_runs`` row. run_date: the date it closed periods by. preview: a dry run.
        issued, already, drafts: invoices issued now, found issued before, left DRAFT (previews: statements stored).
        outcomes: per invoice (or preview). excepted: the items it could not bill (id, account, status, reason, cost).
    """

    run_id: int
    run_date: str
    preview: bool
    issued: int = 0
    already: int = 0
    drafts: int = 0
    outcomes: list[Outcome] = msgspec.field(default_factory=list)
    excepted: list[dict[str, Any]] = msgspec.field(default_factory=list)


def last_ends(connection: Connection, only: list[str] | None = None) -> dict[str, int]:
    """Each account's end of its latest issued period."""
    query = select(invoices.c.account, func.max(invoices.c.period_end_ms)).where(invoices.c.state.in_(ISSUED_STATES))
    if only is not None:
        query = query.where(invoices.c.account.in_(only))
    return {a: e for a, e in connection.execute(query.group_by(invoices.c.account))}


def earliest_items(connection: Connection, only: list[str] | None = None) -> dict[str, int]:
    """Each account's earliest open item (the least start of its BILLABLE xDRs): one index probe per account."""
    earliest = (
        select(func.min(xdrs.c.start_ms))
        .where(xdrs.c.account == accounts.c.account, xdrs.c.status == XdrStatus.BILLABLE)
        .correlate(accounts).scalar_subquery()
    )  # fmt: skip
    query = select(accounts.c.account, earliest)
    if only is not None:
        query = query.where(accounts.c.account.in_(only))
    return {a: t for a, t in connection.execute(query) if t is not None}


def open_period_start(account: BillingAccount, last_end: int | None, earliest_ms: int | None = None) -> int:
    """Where the account's open period starts: the end of its last invoice, or the cycle start holding the earlier of
    its first sight and its earliest open item (``earliest_ms``)."""
    if last_end is not None:
        return last_end
    first_ms = min(account.first_seen_ms, earliest_ms if earliest_ms is not None else account.first_seen_ms)
    return cycle_start(first_ms, account.billing_day, account.timezone)


def due_periods(account: BillingAccount, start_ms: int, run_date: date) -> list[tuple[int, int]]:
    """The periods from ``start_ms`` that ended by local midnight of ``run_date``, oldest first."""
    by = local_midnight_ms(run_date, account.timezone)
    periods = []
    end = next_boundary(start_ms, account.billing_day, account.timezone)
    while end <= by:
        periods.append((start_ms, end))
        start_ms, end = end, next_boundary(end, account.billing_day, account.timezone)
    return periods


def _begin_run(engine: Engine, run_date: date, preview: bool, now_ms: int) -> int:
    with engine.begin() as connection:
        return connection.execute(
            insert(billing_runs).returning(billing_runs.c.id),
            {"run_date": run_date.isoformat(), "preview": int(preview), "started_ms": now_ms, "issued": 0,
             "already_issued": 0, "drafts": 0, "excepted": 0, "report": ""},
        ).scalar_one()  # fmt: skip


def excepted_items(connection: Connection, before_ms: int) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(xdrs.c.id, xdrs.c.account, xdrs.c.status, xdrs.c.status_reason, xdrs.c.cost)
        .where(xdrs.c.status.in_(EXCEPTED_STATUSES), xdrs.c.invoice_id.is_(None), xdrs.c.start_ms < before_ms)
        .order_by(xdrs.c.account, xdrs.c.id)
    )  # fmt: skip
    return [{"id": r.id, "account": r.account, "status": r.status, "reason": r.status_reason, "cost": r.cost}
            for r in rows]  # fmt: skip


def run(engine: Engine, run_date: date, *, preview: bool = False, accounts: list[str] | None = None,
        progress: Callable[[int, int], None] | None = None, now_ms: int | None = None) -> RunReport:  # fmt: skip
    """Close every period that ended by ``run_date`` (or, with ``preview``, store what would be issued).

    Refuses a date whose midnight has not come anywhere on Earth yet (``now_ms``, default the clock): those periods
    are still open and usage may still arrive for them. Refuses ``accounts`` naming one the books do not know
    (:class:`settlement.accounts.NotInBooks`).
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if local_midnight_ms(run_date, EARLIEST_ZONE) > now_ms:
        raise BillingError(f"run date {run_date} is in the future: its periods have not ended yet")
    if accounts is not None:
        with engine.connect() as connection:
            require_known(connection, accounts)  # NotInBooks: a named account would be skipped without a word
    run_id = _begin_run(engine, run_date, preview, now_ms)
    report = RunReport(run_id=run_id, run_date=run_date.isoformat(), preview=preview)
    with engine.connect() as connection:
        everyone = load_accounts(connection, accounts)
        taxes = load_tax_setup(connection)
        ends = last_ends(connection, accounts)
        earliest = earliest_items(connection, accounts)
    known: set[str] = set()
    jobs: list[Job] = []
    for done, account in enumerate(everyone, 1):
        start = open_period_start(account, ends.get(account.account), earliest.get(account.account))
        periods = due_periods(account, start, run_date)
        if preview and periods:
            report.outcomes.append(preview_statement(engine, account, taxes, periods[0][0], periods[-1][1], run_id))
        elif not preview and periods:
            profile, problems = taxes.profile_of(account)
            jobs.extend(Job(account=account, profile=profile, profile_problems=tuple(problems), start_ms=begin,
                            end_ms=end, kind=InvoiceKind.REGULAR) for begin, end in periods)  # fmt: skip
        if len(jobs) >= CHUNK or (done == len(everyone) and jobs):
            report.outcomes.extend(issue_many(engine, jobs, known_periods=known))
            jobs = []
        if progress is not None:
            progress(done, len(everyone))
    for outcome in report.outcomes:
        report.issued += outcome.status in ("ISSUED", "PREVIEW")
        report.already += outcome.status == "ALREADY"
        report.drafts += outcome.status == "DRAFT" or bool(preview and outcome.problems)
    with engine.begin() as connection:
        report.excepted = excepted_items(connection, local_midnight_ms(run_date + timedelta(days=1), "UTC"))
        connection.execute(
            update(billing_runs).where(billing_runs.c.id == run_id)
            .values(finished_ms=int(time.time() * 1000), issued=report.issued, already_issued=report.already,
                    drafts=report.drafts, excepted=len(report.excepted), report=json.dumps(report.excepted))
        )  # fmt: skip
    return report


def preview_statement(engine: Engine, account: BillingAccount, taxes: TaxSetup, start_ms: int, end_ms: int,
                      run_id: int | None) -> Outcome:  # fmt: skip
    """Compute the statement of ``[start_ms, end_ms)`` without marking anything; store it in ``preview_*``."""
    profile, profile_problems = taxes.profile_of(account)
    now_ms = int(time.time() * 1000)
    with engine.begin() as connection:
        bf = brought_forward(connection, account.account, start_ms)
        rows = connection.execute(
            select(*ITEM_COLUMNS).where(xdrs.c.account == account.account, xdrs.c.status == XdrStatus.BILLABLE,
                                        xdrs.c.invoice_id.is_(None), xdrs.c.start_ms < end_ms)
        ).all()  # fmt: skip
        late = late_periods(connection, account, rows, start_ms)
        s = compute(items_of(rows, late), currency=account.currency, profile=profile, brought_forward=bf,
                    timezone=account.timezone)  # fmt: skip
        issuer = load_issuers(connection, [account.tenant]).get(account.tenant)
        values = {"tenant": account.tenant, "account": account.account, "kind": InvoiceKind.PREVIEW,
                  "period_start_ms": start_ms, "period_end_ms": end_ms, "created_ms": now_ms, "run_id": run_id,
                  "seller": encode(issuer.party) if issuer else "", "buyer": encode(account.customer),
                  **header(account, profile, s)}  # fmt: skip
        preview_id = connection.execute(insert(preview_invoices).returning(preview_invoices.c.id), values).scalar_one()
        if s.lines:
            connection.execute(insert(preview_invoice_lines), line_rows(preview_id, s))
    problems = validate.problems(s, extra=[*profile_problems, *validate.parties(issuer, account.customer)])
    return Outcome(account=account.account, period_start_ms=start_ms, period_end_ms=end_ms, status="PREVIEW",
                   timezone=account.timezone, invoice_id=preview_id, problems=tuple(problems))  # fmt: skip


def _one_account(engine: Engine, account_id: str) -> tuple[BillingAccount, TaxSetup, int]:
    with engine.connect() as connection:
        require_known(connection, [account_id])  # NotInBooks
        found = load_accounts(connection, [account_id])
        taxes = load_tax_setup(connection)
        last = last_ends(connection, [account_id]).get(account_id)
        earliest = earliest_items(connection, [account_id]).get(account_id)
    return found[0], taxes, open_period_start(found[0], last, earliest)


def bill_now(engine: Engine, account_id: str, *, now_ms: int | None = None) -> Outcome:
    """An out-of-turn invoice for the account's open period up to now; the next period starts now."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    account, taxes, start = _one_account(engine, account_id)
    if now_ms <= start:
        raise BillingError(f"account {account_id!r}: its open period starts at {start} ms, not before now")
    profile, problems = taxes.profile_of(account)
    return issue(engine, account, profile, problems, start_ms=start, end_ms=now_ms, kind=InvoiceKind.OUT_OF_TURN,
                 now_ms=now_ms)


def preview_now(engine: Engine, account_id: str, *, now_ms: int | None = None) -> Outcome:
    """A preview of the account's open period up to now (what ``bill now`` would issue)."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    account, taxes, start = _one_account(engine, account_id)
    return preview_statement(engine, account, taxes, start, max(now_ms, start + 1), None)
