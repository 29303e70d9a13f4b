"""The ledger report (``occ report ledger``): per currency, month and ledger code, what the invoices posted — charges,
taxes, payments, adjustments, rounding — between an opening and a closing balance, and per month two tie-out lines
that must be zero.

What counts:

- **Invoices**: the issued ones (COMPLETE, POSTED, POSTING_ERROR), each invoice number at its newest issued revision
  (a re-issue replaces the revision before it). An invoice belongs to the month its period starts in (its local
  date, in the account's billing time zone); ``--from`` / ``--to`` (dates, inclusive) pick the invoices whose period
  starts between them and the months they are in.
- **Columns** (amounts as the customer owes them: a payment is negative), from the invoice lines by category:
  charges = CHARGE + CREDIT + CORRECTION, taxes = TAX (the tax added to the balance; tax included in gross prices
  stays in the charges), payments = PAYMENT, adjustments = ADJUSTMENT, rounding = ROUNDING. Each line counts under
  its own ledger code (tax and rounding lines under the tax ledger code).
- **Balances**: a ledger code's opening balance is everything the invoices of earlier months posted to it; closing =
  opening + the month's columns.
- **Tie-out to the invoices**: Σ of the month's columns − Σ (carried forward − brought forward) of its invoices.
- **Tie-out to the ERP**: what the ERP was sent for the month's invoice numbers (every revision: INVOICE documents
  less CREDIT_NOTE documents, gross totals, outbox rows not REJECTED or VOID) − what the newest revisions sell
  (:func:`settlement.billing.tieout.invoice_total`; nothing for an invoice that posts no line). Documents the ERP has
  not accepted yet are counted and reported as pending.
- **Tie-out to the ERP journals** (with ``journals=True``: where top-ups, payments, refunds, adjustments and prepaid
  tax go to the ERP as journal entries and incoming payments, :mod:`settlement.billing.journal`): the journal lines
  that post the ledger rows of the money movements billed on the month's invoices (their own ledger code's side,
  in the customer-owes sign), less those movements as billed (each xDR rounded once, as its journal rounds it).
  A movement not posted yet leaves a difference: the ERP does not have it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import msgspec
from sqlalchemy import Connection, func, select

from settlement.billing.amounts import D, round_to_currency, to_micros
from settlement.billing.cycle import local_date, local_midnight_ms
from settlement.billing.erp import USAGE
from settlement.billing.journal import MOVEMENTS
from settlement.export.journal import JOURNAL_KINDS
from settlement.export.outbox import load
from settlement.store.schema import invoice_lines, invoices, journal_postings, ledger, outbox, xdrs
from settlement.vocabulary import ISSUED_STATES, OutboxState, TaxMode

COLUMNS = ("charges", "taxes", "payments", "adjustments", "rounding")
CATEGORY_COLUMN = {"CHARGE": "charges", "CREDIT": "charges", "CORRECTION": "charges", "TAX": "taxes",
                   "PAYMENT": "payments", "ADJUSTMENT": "adjustments", "ROUNDING": "rounding"}  # fmt: skip
SENT_STATES = (OutboxState.PENDING, OutboxState.ACCEPTED, OutboxState.DUPLICATE)
CHUNK = 500  # invoice ids per IN (...) list


class ReportError(ValueError):
    """The report cannot be made as asked (the message names the option)."""


class LedgerRow(msgspec.Struct, frozen=True, kw_only=True):
    """One ledger code in one month (amounts in micro-units, rounded to the currency as the invoices are)."""

    currency: str
    month: str  # YYYY-MM
    ledger_code: str
    opening: int
    charges: int
    taxes: int
    payments: int
    adjustments: int
    rounding: int

    @property
    def movement(self) -> int:
        return self.charges + self.taxes + self.payments + self.adjustments + self.rounding

    @property
    def closing(self) -> int:
        return self.opening + self.movement


class MonthTieOut(msgspec.Struct, frozen=True, kw_only=True):
    """A month's totals and its two tie-out lines (each difference must be zero).

    Attributes:
        movement: Σ of the month's ledger columns.
        invoices: how many invoices the month has; invoiced: Σ (carried forward − brought forward) of them.
        erp_expected: what their newest revisions sell (the A/R documents' gross totals should come to this).
        erp_sent: Σ INVOICE − Σ CREDIT_NOTE gross totals queued for them (not REJECTED or VOID).
        erp_documents, erp_pending: those documents, and how many of them the ERP has not accepted yet.
        journals_checked: whether the journal tie-out was made (``journals=True``).
        journal_expected: the money movements billed on the month's invoices (each rounded once).
        journal_sent: what the journals queued for their ledger rows post on those rows' ledger codes.
        journal_documents, journal_pending: those journal documents, and those the ERP has not accepted yet.
    """

    currency: str
    month: str
    movement: int
    invoices: int
    invoiced: int
    erp_expected: int
    erp_sent: int
    erp_documents: int
    erp_pending: int
    journals_checked: bool = False
    journal_expected: int = 0
    journal_sent: int = 0
    journal_documents: int = 0
    journal_pending: int = 0

    @property
    def invoice_difference(self) -> int:
        return self.movement - self.invoiced

    @property
    def erp_difference(self) -> int:
        return self.erp_sent - self.erp_expected

    @property
    def journal_difference(self) -> int:
        return self.journal_sent - self.journal_expected


class LedgerReport(msgspec.Struct, frozen=True, kw_only=True):
    start: date
    end: date
    rows: tuple[LedgerRow, ...]
    months: tuple[MonthTieOut, ...]

    @property
    def ties_out(self) -> bool:
        return all(m.invoice_difference == m.erp_difference == m.journal_difference == 0 for m in self.months)


class _Invoice(msgspec.Struct, kw_only=True):
    id: int
    tenant: str
    number: int
    currency: str
    month: str
    day: date
    tax_mode: str
    change: int  # carried forward − brought forward
    payments: int
    sums: dict[str, tuple[int, int, int]] = msgspec.field(default_factory=dict)  # category → (amount, net, tax)


def _months(start: date, end: date) -> list[str]:
    months, day = [], start.replace(day=1)
    while day <= end:
        months.append(f"{day:%Y-%m}")
        day = (day + timedelta(days=32)).replace(day=1)
    return months


def _chunks(ids: list) -> Iterator[list]:  # type: ignore[type-arg]
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _newest_revisions(connection: Connection, end: date) -> tuple[list[_Invoice], dict[tuple[str, int], list[int]]]:
    """The newest issued revision of every invoice number whose period starts by ``end``, and the ids of every issued
    revision of each number."""
    limit_ms = local_midnight_ms(end + timedelta(days=2), "UTC")  # no zone is more than a day ahead of UTC
    rows = connection.execute(
        select(invoices.c.id, invoices.c.tenant, invoices.c.number, invoices.c.revision, invoices.c.currency,
               invoices.c.period_start_ms, invoices.c.timezone, invoices.c.tax_mode, invoices.c.carried_forward,
               invoices.c.brought_forward, invoices.c.payments)
        .where(invoices.c.state.in_(ISSUED_STATES), invoices.c.period_start_ms < limit_ms)
        .order_by(invoices.c.tenant, invoices.c.number, invoices.c.revision)
    ).all()  # fmt: skip
    newest: dict[tuple[str, int], _Invoice] = {}
    revisions: dict[tuple[str, int], list[int]] = defaultdict(list)
    for r in rows:
        day = local_date(r.period_start_ms, r.timezone)
        if day > end:
            continue
        key = (r.tenant, r.number)
        revisions[key].append(r.id)
        newest[key] = _Invoice(id=r.id, tenant=r.tenant, number=r.number, currency=r.currency, month=f"{day:%Y-%m}",
                               day=day, tax_mode=r.tax_mode, change=r.carried_forward - r.brought_forward,
                               payments=r.payments)  # fmt: skip
    return list(newest.values()), revisions


def _add_line_sums(connection: Connection, chosen: list[_Invoice]) -> dict[tuple[int, str, str], int]:
    """Fill each invoice's per-category sums; return the amounts per (invoice id, ledger code, category)."""
    by_id = {x.id: x for x in chosen}
    per_code: dict[tuple[int, str, str], int] = {}
    for ids in _chunks(list(by_id)):
        line = invoice_lines.c
        query = (select(line.invoice_id, line.ledger_code, line.category, func.sum(line.amount), func.sum(line.net),
                        func.sum(line.tax))
                 .where(line.invoice_id.in_(ids))
                 .group_by(line.invoice_id, line.ledger_code, line.category))  # fmt: skip
        for invoice_id, code, category, amount, net, tax in connection.execute(query):
            per_code[invoice_id, code, category] = amount
            sums = by_id[invoice_id].sums
            before = sums.get(category, (0, 0, 0))
            sums[category] = (before[0] + amount, before[1] + net, before[2] + tax)
    return per_code


def expected_erp_total(x: _Invoice) -> int:
    """What the A/R document of ``x`` totals (``tieout.invoice_total`` from line sums); 0 when it posts no line."""
    if x.tax_mode == TaxMode.PREPAID:
        tax = x.sums.get("TAX", (0, 0, 0))
        return tax[1] + tax[2] + x.sums.get("ADJUSTMENT", (0, 0, 0))[0]
    if not any(category in x.sums for category in (*USAGE, "ADJUSTMENT")):
        return 0
    return x.change - x.payments


def _erp_sent(connection: Connection, ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """Per invoice row id: (Σ INVOICE − Σ CREDIT_NOTE gross, documents, documents not yet accepted)."""
    sent: dict[int, tuple[int, int, int]] = {}
    for chunk in _chunks(ids):
        query = (select(outbox.c.invoice_id, outbox.c.kind, outbox.c.state, outbox.c.payload)
                 .where(outbox.c.invoice_id.in_(chunk), outbox.c.kind.in_(("INVOICE", "CREDIT_NOTE")),
                        outbox.c.state.in_(SENT_STATES)))  # fmt: skip
        for invoice_id, kind, state, payload in connection.execute(query):
            gross = to_micros(load(payload).gross_total)
            total, documents, pending = sent.get(invoice_id, (0, 0, 0))
            sent[invoice_id] = (total + (gross if kind == "INVOICE" else -gross), documents + 1,
                                pending + (state == OutboxState.PENDING))  # fmt: skip
    return sent


def _journal_ties(connection: Connection, month_of: dict[int, tuple[str, str]]) -> dict[tuple[str, str], Counter]:
    """Per (currency, month) of the invoices in ``month_of`` (invoice id → its month): the journal tie-out's sums."""
    ties: dict[tuple[str, str], Counter] = defaultdict(Counter)
    month_of_xdr: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(list(month_of)):
        query = select(xdrs.c.id, xdrs.c.invoice_id, xdrs.c.cost, xdrs.c.currency).where(
            xdrs.c.invoice_id.in_(chunk), xdrs.c.kind.in_(MOVEMENTS))  # fmt: skip
        for xdr_id, invoice_id, cost, currency in connection.execute(query):
            month_of_xdr[xdr_id] = month_of[invoice_id]
            ties[month_of[invoice_id]]["journal_expected"] += to_micros(round_to_currency(D(cost), currency))
    rows: dict[str, tuple[str, tuple[str, str]]] = {}  # ledger row id → (its ledger code, the month)
    for chunk in _chunks(list(month_of_xdr)):
        query = select(ledger.c.id, ledger.c.xdr_id, ledger.c.ledger_code).where(ledger.c.xdr_id.in_(chunk))
        rows.update((r.id, (r.ledger_code, month_of_xdr[r.xdr_id])) for r in connection.execute(query))
    documents: set[int] = set()
    for chunk in _chunks(list(rows)):
        query = select(journal_postings.c.outbox_id).where(journal_postings.c.ledger_id.in_(chunk))
        documents.update(i for i in connection.execute(query).scalars() if i is not None)
    for chunk in _chunks(sorted(documents)):
        query = select(outbox.c.id, outbox.c.kind, outbox.c.state, outbox.c.payload).where(
            outbox.c.id.in_(chunk), outbox.c.kind.in_(JOURNAL_KINDS), outbox.c.state.in_(SENT_STATES))  # fmt: skip
        for document in connection.execute(query):
            months = set()
            for line in load(document.payload, document.kind).lines:
                code, month = rows.get(line.movement, ("", ("", "")))
                if line.account_code == code:  # the row's own side (the other is the customer balance account)
                    ties[month]["journal_sent"] -= to_micros(line.debit) - to_micros(line.credit)
                    months.add(month)
            for month in months:
                ties[month]["journal_documents"] += 1
                ties[month]["journal_pending"] += document.state == OutboxState.PENDING
    return ties


def _rows(chosen: Iterable[_Invoice], per_code: dict[tuple[int, str, str], int], start: date,
          months: list[str]) -> list[LedgerRow]:  # fmt: skip
    month_of = {x.id: (x.currency, x.month, x.day < start) for x in chosen}
    opening: dict[tuple[str, str], int] = defaultdict(int)
    moved: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    for (invoice_id, code, category), amount in per_code.items():
        currency, month, before = month_of[invoice_id]
        if before:
            opening[currency, code] += amount
        else:
            moved[currency, month, code][CATEGORY_COLUMN[category]] += amount
    rows = []
    for currency in sorted({c for c, _ in opening} | {c for c, _, _ in moved}):
        balance = {code: amount for (c, code), amount in opening.items() if c == currency}
        for month in months:
            codes = sorted(set(balance) | {code for c, m, code in moved if (c, m) == (currency, month)})
            for code in codes:
                columns = moved.get((currency, month, code), dict.fromkeys(COLUMNS, 0))
                row = LedgerRow(currency=currency, month=month, ledger_code=code, opening=balance.get(code, 0),
                                **columns)  # fmt: skip
                balance[code] = row.closing
                if row.opening or any(columns.values()):
                    rows.append(row)
    return rows


def ledger_report(connection: Connection, start: date, end: date, *, journals: bool = False) -> LedgerReport:
    """The report of the invoices whose period starts from ``start`` to ``end`` (inclusive); ``journals``: tie out
    to the ERP journals too."""
    if end < start:
        raise ReportError(f"--to {end} is before --from {start}")
    chosen, revisions = _newest_revisions(connection, end)
    per_code = _add_line_sums(connection, chosen)
    months = _months(start, end)
    rows = _rows(chosen, per_code, start, months)
    in_range = [x for x in chosen if x.day >= start]
    sent = _erp_sent(connection, [i for x in in_range for i in revisions[x.tenant, x.number]])
    ties: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        tie = ties.setdefault((row.currency, row.month), defaultdict(int))
        tie["movement"] += row.movement
    for x in in_range:
        tie = ties.setdefault((x.currency, x.month), defaultdict(int))
        tie["invoices"] += 1
        tie["invoiced"] += x.change
        tie["erp_expected"] += expected_erp_total(x)
        for revision_id in revisions[x.tenant, x.number]:
            total, documents, pending = sent.get(revision_id, (0, 0, 0))
            tie["erp_sent"] += total
            tie["erp_documents"] += documents
            tie["erp_pending"] += pending
    if journals:
        for key, sums in _journal_ties(connection, {x.id: (x.currency, x.month) for x in in_range}).items():
            ties.setdefault(key, defaultdict(int)).update(sums)
    fields = ("movement", "invoices", "invoiced", "erp_expected", "erp_sent", "erp_documents", "erp_pending",
              "journal_expected", "journal_sent", "journal_documents", "journal_pending")  # fmt: skip
    month_ties = tuple(MonthTieOut(currency=c, month=m, journals_checked=journals,
                                   **{f: values.get(f, 0) for f in fields})
                       for (c, m), values in sorted(ties.items()))  # fmt: skip
    return LedgerReport(start=start, end=end, rows=tuple(rows), months=month_ties)
