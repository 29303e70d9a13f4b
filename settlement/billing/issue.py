"""Issuing invoices: the transaction that numbers an invoice, marks its xDRs BILLED and queues its ERP document.

The issuing transaction, in order:
1. lock the tenant's ``invoice_sequences`` row (PostgreSQL ``SELECT … FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``
   already holds the store's write lock), so numbers are handed out one at a time and never skipped (a run issues
   up to ``CHUNK`` invoices per transaction, each in a savepoint, and writes the next number back before commit);
2. look for the invoice of (account, period start, revision): if one is issued, stop (a second run issues nothing);
3. insert the invoice (DRAFT) — the unique (account, period start, revision) is the last line of defence;
4. ``UPDATE xdrs SET status='BILLED', invoice_id=… WHERE account=… AND status='BILLABLE' AND invoice_id IS NULL AND
   start_ms < period end RETURNING …``: what is counted is exactly what was marked, whatever arrives meanwhile (an
   item's start decides its period: a call's start, ``late.py``); the marked items that start before the period are
   late: the period they belonged to is recorded on them;
5. compute the statement, run the validators (the statement's, and the parties' when the tenant's issuer requires
   them): on a problem, roll everything back and store a DRAFT with the reasons (no number, nothing marked; the next
   run tries again);
6. book taxation xDRs (period close's, ids ``tax:…``), write the lines, take the number, set COMPLETE, build the ERP
   document and check that it ties out to the invoice (:mod:`.tieout`; if not: DRAFT as in 5), enqueue it; commit.

The invoice keeps the seller (the tenant's issuer) and the buyer (the account's customer details) as they were when
it was issued (``invoices.seller`` / ``buyer``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from settlement.billing import erp, late, tieout, validate
from settlement.billing.late import Period
from settlement.billing.parties import Issuer, encode
from settlement.billing.setup import BillingAccount, load_issuers
from settlement.billing.statement import Item, Statement, compute
from settlement.billing.tax import TaxProfile
from settlement.entries import period_of
from settlement.export.outbox import enqueue
from settlement.records import XdrRow
from settlement.store.database import ensure_periods
from settlement.store.schema import invoice_lines, invoice_sequences, invoices, xdrs
from settlement.vocabulary import ISSUED_STATES, InvoiceKind, InvoiceState, RecordType, TaxMode, XdrStatus
from settlement.writer import row_dicts

ITEM_NAMES = ("id", "kind", "record_type", "ledger_code", "service", "units", "cost", "currency", "revision", "end_ms",
              "session_id", "description", "tax_code", "tax_rate_ppm", "start_ms", "period", "late_period_start_ms")
ITEM_COLUMNS = tuple(xdrs.c[name] for name in ITEM_NAMES)
# Rows are read by position: a million rows' worth of Row attribute look-ups costs seconds in a billing run.
_ID, _REVISION, _START, _PERIOD, _LATE = (ITEM_NAMES.index(n) for n in ("id", "revision", "start_ms", "period",
                                                                         "late_period_start_ms"))  # fmt: skip
PERIOD_CLOSE_TAX = "tax:"
"""Id prefix of the taxation xDRs a period close books (a re-issue books them afresh; settlement's prepaid-tax xDRs,
``<entry key>:tax``, are items like any other)."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What issuing one invoice did.

    Attributes:
        account, period_start_ms, period_end_ms: which statement; timezone: the account's (to print the period).
        status: ISSUED, ALREADY (someone issued it before), DRAFT (validation failed) or PREVIEW (a dry run's).
        invoice_id, number, revision: the invoice (number None for a DRAFT).
        problems: why it stayed DRAFT.
    """

    account: str
    period_start_ms: int
    period_end_ms: int
    status: str
    timezone: str = "UTC"
    invoice_id: int | None = None
    number: int | None = None
    revision: int = 0
    problems: tuple[str, ...] = ()


class Invalid(Exception):
    def __init__(self, statement: Statement, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.statement, self.problems = statement, problems


def items_of(rows: Any, late: dict[str, Period] | None = None) -> list[Item]:
    """Rows of ``ITEM_COLUMNS`` → items; ``late``: periods found late now (else the one recorded on the row)."""
    late = late or {}
    return [Item(id=r[0], kind=r[1], record_type=r[2], ledger_code=r[3], service=r[4], units=r[5], cost=r[6],
                 currency=r[7], revision=r[8], end_ms=r[9], reference=r[10], description=r[11],
                 tax_code=r[12] or "", tax_rate_ppm=r[13] or 0,
                 late_period_start_ms=late[r[0]][0] if r[0] in late else r[_LATE])
            for r in rows if r[2] != RecordType.TEXT]  # fmt: skip


_SEQ_SELECT = select(invoice_sequences.c.next_number).where(invoice_sequences.c.tenant == bindparam("b_tenant"))
_SEQ_UPDATE = update(invoice_sequences).where(invoice_sequences.c.tenant == bindparam("b_tenant"))
_EXISTING = select(invoices.c.id, invoices.c.state, invoices.c.number).where(
    invoices.c.account == bindparam("b_account"), invoices.c.period_start_ms == bindparam("b_start"),
    invoices.c.revision == 0,
)  # fmt: skip
_BROUGHT_FORWARD = (
    select(invoices.c.carried_forward)
    .where(invoices.c.account == bindparam("b_account"), invoices.c.state.in_(ISSUED_STATES),
           invoices.c.period_end_ms <= bindparam("b_before"))
    .order_by(invoices.c.period_end_ms.desc(), invoices.c.revision.desc())
    .limit(1)
)  # fmt: skip
_MARK = (
    update(xdrs)
    .where(xdrs.c.account == bindparam("b_account"), xdrs.c.status == XdrStatus.BILLABLE,
           xdrs.c.invoice_id.is_(None), xdrs.c.start_ms < bindparam("b_end"))
    .values(status=XdrStatus.BILLED, invoice_id=bindparam("b_invoice"))
    .returning(*ITEM_COLUMNS)
)  # fmt: skip
_MARK_LATE = (
    update(xdrs)
    .where(xdrs.c.id == bindparam("b_id"), xdrs.c.period == bindparam("b_period"))
    .values(late_period_start_ms=bindparam("b_start"), late_period_end_ms=bindparam("b_end"))
)
_INVOICED = (
    select(invoices.c.period_start_ms, invoices.c.period_end_ms)
    .where(invoices.c.account == bindparam("b_account"), invoices.c.state.in_(ISSUED_STATES),
           invoices.c.period_end_ms <= bindparam("b_before"))
    .distinct()
)  # fmt: skip
_INSERT_INVOICE = insert(invoices).returning(invoices.c.id)
_UPDATE_INVOICE = update(invoices).where(invoices.c.id == bindparam("b_id"))
CHUNK = 100  # invoices per transaction in a run (each in its own savepoint)


def lock_sequence(connection: Connection, tenant: str) -> int:
    """Lock the tenant's number sequence for this transaction; returns the next number."""
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(module.insert(invoice_sequences).on_conflict_do_nothing(), {"tenant": tenant, "next_number": 1})
    query = _SEQ_SELECT.with_for_update() if connection.dialect.name == "postgresql" else _SEQ_SELECT
    return connection.execute(query, {"b_tenant": tenant}).scalar_one()


def brought_forward(connection: Connection, account: str, before_ms: int) -> int:
    """The carried-forward of the account's latest issued invoice ending by ``before_ms`` (its newest revision)."""
    row = connection.execute(_BROUGHT_FORWARD, {"b_account": account, "b_before": before_ms}).first()
    return row[0] if row else 0


def late_periods(connection: Connection, account: BillingAccount, rows: Any, period_start_ms: int) -> dict[str, Period]:
    """The rows billed in a period starting at ``period_start_ms`` that are late → the period each belonged to."""
    overdue = [r for r in rows if late.is_late(r[_START], r[_REVISION], period_start_ms)]
    if not overdue:
        return {}
    invoiced = [tuple(p) for p in connection.execute(_INVOICED, {"b_account": account.account,
                                                                   "b_before": period_start_ms})]  # fmt: skip
    return {r[_ID]: late.own_period(r[_START], invoiced, billing_day=account.billing_day, timezone=account.timezone)
            for r in overdue}  # fmt: skip


def mark_late(connection: Connection, rows: Any, periods: dict[str, Period]) -> None:
    """Record on each late xDR the period it belonged to."""
    if periods:
        connection.execute(_MARK_LATE, [{"b_id": r[_ID], "b_period": r[_PERIOD], "b_start": periods[r[_ID]][0],
                                         "b_end": periods[r[_ID]][1]} for r in rows if r[_ID] in periods])  # fmt: skip


def header(account: BillingAccount, profile: TaxProfile, s: Statement) -> dict[str, Any]:
    return {
        "customer_code": account.customer_code, "timezone": account.timezone, "currency": account.currency,
        "tax_profile": profile.name, "tax_mode": profile.mode, "brought_forward": s.brought_forward,
        "charges": s.charges, "payments": s.payments, "adjustments": s.adjustments, "tax": s.tax,
        "rounding": s.rounding, "carried_forward": s.carried_forward, "xdr_count": s.item_count,
        "late_items": s.late_items,
    }  # fmt: skip


def line_rows(invoice_id: int, s: Statement) -> list[dict[str, Any]]:
    return [{"invoice_id": invoice_id, "line_number": i, **msgspec.structs.asdict(line)}
            for i, line in enumerate(s.lines, 1)]  # fmt: skip


def tax_xdrs(invoice_id: int, account: BillingAccount, s: Statement, end_ms: int, now_ms: int) -> list[XdrRow]:
    """The taxation xDRs a period close books: EXCLUSIVE adds tax (cost = tax). INCLUSIVE, EXEMPT and PREPAID book
    none (PREPAID tax was taken at top-up and settlement booked its TAX xDRs then)."""
    if s.profile.mode != TaxMode.EXCLUSIVE:
        return []
    at_ms = end_ms - 1
    return [
        XdrRow(id=f"{PERIOD_CLOSE_TAX}{invoice_id}:{g.ledger_code}:{g.rate_ppm}", period=period_of(at_ms),
               account=account.account, kind="tax", record_type=RecordType.TAX, subscriber=account.account,
               start_ms=at_ms, end_ms=at_ms, cost=g.tax, currency=s.currency, ledger_code=s.profile.tax_ledger_code,
               description=f"tax {s.profile.label()} on {g.ledger_code}", tax_code=s.profile.tax_code,
               tax_rate_ppm=g.rate_ppm, tax_amount=g.tax, status=XdrStatus.BILLED, invoice_id=invoice_id,
               created_ms=now_ms)
        for g in s.tax_groups
    ]  # fmt: skip


def finish(connection: Connection, invoice_id: int, account: BillingAccount, s: Statement, *, number: int,
           end_ms: int, now_ms: int) -> dict[str, Any]:  # fmt: skip
    """Book tax xDRs and lines, number the invoice, set it COMPLETE; returns the header values set."""
    taxes = tax_xdrs(invoice_id, account, s, end_ms, now_ms)
    if taxes:
        connection.execute(insert(xdrs), row_dicts(taxes))
    if s.lines:
        connection.execute(insert(invoice_lines), line_rows(invoice_id, s))
    values = {**header(account, s.profile, s), "number": number, "state": InvoiceState.COMPLETE, "state_reason": "",
              "updated_ms": now_ms}  # fmt: skip
    connection.execute(_UPDATE_INVOICE, {"b_id": invoice_id, **values})
    return values


def enqueue_documents(connection: Connection, invoice_id: int, *, credit_for: int | None = None,
                      invoice: Any = None, lines: Any = None) -> list[str]:  # fmt: skip
    """Queue the ERP documents: a credit note for the replaced revision first (if any), then the invoice (built from
    ``invoice`` and ``lines`` when given, else read back). Each must tie out to its invoice: if one does not, nothing
    is queued and the problems are returned (the caller keeps the invoice DRAFT)."""
    documents = []
    for target, kind in ((credit_for, "CREDIT_NOTE"), (invoice_id, "INVOICE")):
        if target is None:
            continue
        if target == invoice_id and invoice is not None:
            row, body = invoice, lines
        else:
            row = connection.execute(select(invoices).where(invoices.c.id == target)).one()
            body = connection.execute(
                select(invoice_lines).where(invoice_lines.c.invoice_id == target).order_by(invoice_lines.c.line_number)
            ).all()
        document = erp.build(row, body, kind=kind)  # type: ignore[arg-type]
        if document is None:
            continue
        untied = tieout.problems(row, body, document)
        if untied:
            what = "credit note" if kind == "CREDIT_NOTE" else "ERP document"
            return [f"{what} does not tie out to invoice id {target}: {p}" for p in untied]
        documents.append((document, target))
    for document, target in documents:
        enqueue(connection, document, invoice_id=target)
    return []


def insert_draft(connection: Connection, values: dict[str, Any], s: Statement, problems: list[str]) -> int | None:
    """Keep a DRAFT with its reasons (no number, no xDR marked), replacing an earlier DRAFT of the same invoice, in a
    savepoint. None if an issued invoice is there already."""
    try:
        with connection.begin_nested():
            old = connection.execute(
                select(invoices.c.id).where(invoices.c.account == values["account"],
                                            invoices.c.state == InvoiceState.DRAFT,
                                            invoices.c.period_start_ms == values["period_start_ms"],
                                            invoices.c.revision == values["revision"])
            ).scalars().all()  # fmt: skip
            if old:
                connection.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id.in_(old)))
                connection.execute(delete(invoices).where(invoices.c.id.in_(old)))
            invoice_id = connection.execute(
                _INSERT_INVOICE, {**values, "state": InvoiceState.DRAFT, "state_reason": "\n".join(problems)}
            ).scalar_one()
            if s.lines:
                connection.execute(insert(invoice_lines), line_rows(invoice_id, s))
            return invoice_id
    except IntegrityError:
        return None


def store_draft(engine: Engine, values: dict[str, Any], s: Statement, problems: list[str]) -> int | None:
    with engine.begin() as connection:
        return insert_draft(connection, values, s, problems)


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """One invoice to issue: the account, its tax profile (and problems finding it), the period and the kind."""

    account: BillingAccount
    profile: TaxProfile
    profile_problems: tuple[str, ...]
    start_ms: int
    end_ms: int
    kind: InvoiceKind


def _draft_header(job: Job, bf: int, issuer: Issuer | None, now_ms: int) -> dict[str, Any]:
    """The ``invoices`` row of ``job`` as a DRAFT with nothing on it yet (``bf``: the balance brought forward)."""
    account, profile = job.account, job.profile
    return {
        "tenant": account.tenant, "account": account.account, "customer_code": account.customer_code,
        "kind": job.kind, "period_start_ms": job.start_ms, "period_end_ms": job.end_ms, "timezone": account.timezone,
        "currency": account.currency, "tax_profile": profile.name, "tax_mode": profile.mode,
        "brought_forward": bf, "charges": 0, "payments": 0, "adjustments": 0, "tax": 0, "rounding": 0,
        "carried_forward": bf, "xdr_count": 0, "late_items": 0, "created_ms": now_ms, "number": None,
        "revision": 0, "replaces": None, "state": InvoiceState.DRAFT, "state_reason": "", "updated_ms": now_ms,
        "seller": encode(issuer.party) if issuer else "", "buyer": encode(account.customer),
    }  # fmt: skip


def _issue_one(connection: Connection, job: Job, now_ms: int, numbers: dict[str, int],
               issuers: dict[str, Issuer]) -> Outcome:  # fmt: skip
    """Issue one invoice in a savepoint. ``numbers``: each tenant's next number, its sequence row locked by this
    transaction (outside any savepoint: PostgreSQL releases locks taken in a savepoint that is rolled back);
    ``issuers``: the tenants' issuers (absent: not configured)."""
    account, profile, start_ms, end_ms = job.account, job.profile, job.start_ms, job.end_ms
    done = {"account": account.account, "period_start_ms": start_ms, "period_end_ms": end_ms,
            "timezone": account.timezone}
    values: dict[str, Any] = {}
    if account.tenant not in numbers:
        numbers[account.tenant] = lock_sequence(connection, account.tenant)
        issuers.update(load_issuers(connection, [account.tenant]))
    number = numbers[account.tenant]
    issuer = issuers.get(account.tenant)
    savepoint = connection.begin_nested()
    try:
        existing = connection.execute(_EXISTING, {"b_account": account.account, "b_start": start_ms}).first()
        if existing is not None:
            if existing.state != InvoiceState.DRAFT:
                savepoint.commit()
                return Outcome(**done, status="ALREADY", invoice_id=existing.id, number=existing.number)
            connection.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == existing.id))
            connection.execute(delete(invoices).where(invoices.c.id == existing.id))
        bf = brought_forward(connection, account.account, start_ms)
        values = _draft_header(job, bf, issuer, now_ms)
        invoice_id = connection.execute(_INSERT_INVOICE, values).scalar_one()
        marked = connection.execute(
            _MARK, {"b_account": account.account, "b_end": end_ms, "b_invoice": invoice_id}
        ).all()
        periods = late_periods(connection, account, marked, start_ms)
        mark_late(connection, marked, periods)
        s = compute(items_of(marked, periods), currency=account.currency, profile=profile, brought_forward=bf,
                    timezone=account.timezone)  # fmt: skip
        problems = validate.problems(s, extra=[*job.profile_problems, *validate.parties(issuer, account.customer)])
        if problems:
            raise Invalid(s, problems)
        values.update(finish(connection, invoice_id, account, s, number=number, end_ms=end_ms, now_ms=now_ms))
        problems = enqueue_documents(connection, invoice_id, invoice=SimpleNamespace(**values), lines=s.lines)
        if problems:
            raise Invalid(s, problems)
        savepoint.commit()
        numbers[account.tenant] = number + 1
    except Invalid as invalid:
        savepoint.rollback()
        values.update(header(account, profile, invalid.statement), number=None)  # a DRAFT takes no number
        draft_id = insert_draft(connection, values, invalid.statement, invalid.problems)
        return Outcome(**done, status="DRAFT", invoice_id=draft_id, problems=tuple(invalid.problems))
    except IntegrityError:
        savepoint.rollback()
        return Outcome(**done, status="ALREADY")
    except BaseException:
        savepoint.rollback()
        raise
    return Outcome(**done, status="ISSUED", invoice_id=invoice_id, number=number)


def issue_many(engine: Engine, jobs: Sequence[Job], *, known_periods: set[str] | None = None,
               now_ms: int | None = None) -> list[Outcome]:  # fmt: skip
    """Issue ``jobs`` in one transaction, each in a savepoint (at most once each: see the module docstring).

    Jobs of one account must come oldest first; once one stays DRAFT, the account's later periods are skipped.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    known = known_periods if known_periods is not None else set()
    ensure_periods(engine, {period_of(job.end_ms - 1) for job in jobs}, known)
    outcomes: list[Outcome] = []
    stopped: set[str] = set()
    with engine.begin() as connection:
        # Every tenant's sequence row first, in one order for everybody: two runs never wait on each other in a cycle.
        numbers = {tenant: lock_sequence(connection, tenant) for tenant in sorted({j.account.tenant for j in jobs})}
        issuers = load_issuers(connection, list(numbers))
        for job in jobs:
            if job.account.account in stopped:
                continue
            outcome = _issue_one(connection, job, now_ms, numbers, issuers)
            outcomes.append(outcome)
            if outcome.status == "DRAFT":
                stopped.add(job.account.account)
        for tenant, number in numbers.items():
            connection.execute(_SEQ_UPDATE, {"b_tenant": tenant, "next_number": number})
    return outcomes


def issue(engine: Engine, account: BillingAccount, profile: TaxProfile, profile_problems: list[str], *,
          start_ms: int, end_ms: int, kind: InvoiceKind, known_periods: set[str] | None = None,
          now_ms: int | None = None) -> Outcome:  # fmt: skip
    """Issue the invoice of ``account`` for ``[start_ms, end_ms)`` (an :class:`InvoiceKind`: REGULAR or OUT_OF_TURN),
    at most once."""
    job = Job(account=account, profile=profile, profile_problems=tuple(profile_problems), start_ms=start_ms,
              end_ms=end_ms, kind=kind)  # fmt: skip
    [outcome] = issue_many(engine, [job], known_periods=known_periods, now_ms=now_ms)
    return outcome
