"""Ledger rows that are not charges → journal entries and incoming payments for the ERP, queued in the outbox.

**Which rows.** Top-ups, payments, refunds, adjustments and the tax taken at a top-up (:data:`MOVEMENTS`). Charges
reach the ERP on invoices; a rerate's balance correction (an adjustment whose reference starts with ``rerate:``) does
too, as the CORRECTION lines of the next invoice, so it is not posted again here.

**The posting rule** (one place: :func:`postings`). A row of amount *a* on ledger code *c* (credit positive: the
customer's balance grows), rounded once to the currency (ROUND_HALF_UP) to *r*:

- *r* > 0 (money in, a credit): debit *c*, credit the customer balance account (``JournalOptions.customer_account``);
- *r* < 0 (money out, the tax taken at a top-up, a debit adjustment): debit the customer balance account, credit *c*.

So the ledger code names the other side (a bank or clearing account for payments, the tax payable account for the
tax, a goodwill account for an adjustment) and the customer balance account in the ERP moves exactly as OCC's
balances do. Every row gives two lines of the same amount: a document balances by construction, and
:func:`~settlement.export.journal.balance_problems` checks it again before it is queued and before it is sent.

**Which document.** Top-ups and payments, with the tax taken at a top-up beside its top-up, are INCOMING_PAYMENTs;
refunds and adjustments JOURNAL_ENTRYs. ``JournalOptions.batch`` groups them: ``movement`` (default) one document
per movement (a top-up and its tax together), ``account_day`` one per account, day (the account's billing time
zone) and kind, queued once the day is over. Rows of a day settled after its document was queued go in a next
document of the same reference (sequence 1, 2, …). ``journal_postings`` records, in the transaction that queues the
document, which row went into which outbox row, so every row is posted once; a row without a ledger code is not
posted (it is reported, like an excepted xDR, until it gets one).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal, NamedTuple
from urllib.parse import quote

import msgspec
from sqlalchemy import ColumnElement, Connection, Engine, and_, func, insert, select
from sqlalchemy.exc import IntegrityError

from occ.store.keys import RERATE_KEY
from settlement.billing.amounts import D, round_to_currency
from settlement.billing.cycle import local_date, local_midnight_ms
from settlement.billing.setup import BillingAccount, load_accounts
from settlement.entries import TAX_SUFFIX
from settlement.export.document import MAX_DESCRIPTION
from settlement.export.journal import ErpJournal, JournalKind, JournalLine, document_ref
from settlement.export.outbox import OutboxConflict, enqueue
from settlement.store.schema import journal_postings, ledger, outbox

MOVEMENTS: dict[str, JournalKind] = {
    "topup": "INCOMING_PAYMENT", "payment": "INCOMING_PAYMENT", "topup_tax": "INCOMING_PAYMENT",
    "refund": "JOURNAL_ENTRY", "adjustment": "JOURNAL_ENTRY",
}  # fmt: skip
log = logging.getLogger(__name__)
TEXTS = {"topup": "Top-up", "payment": "Payment", "topup_tax": "Tax taken at top-up", "refund": "Refund",
         "adjustment": "Adjustment"}  # fmt: skip


class JournalOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How money movements become ERP documents.

    Attributes:
        batch: ``movement`` (one document per movement) or ``account_day`` (one per account, day and kind).
        customer_account: the G/L account of the customers' balances (the other side of every posting).
    """

    batch: Literal["movement", "account_day"] = "movement"
    customer_account: str = "200000"

    def __post_init__(self) -> None:
        if self.batch not in ("movement", "account_day"):
            raise ValueError(f"journal batch must be movement or account_day, got {self.batch!r}")
        if not 1 <= len(self.customer_account) <= 15 or any(c.isspace() for c in self.customer_account):
            raise ValueError(f"journal customer_account must be a G/L code of 1-15 characters, got "
                             f"{self.customer_account!r}")  # fmt: skip


class Posting(NamedTuple):
    """One line of the rule: an account, a debit or a credit (rounded, ≥ 0), what moved."""

    account_code: str
    debit: Decimal
    credit: Decimal
    description: str
    movement: str


def posted_kinds() -> ColumnElement[bool]:
    """The ledger rows that reach the ERP as journals (see the module docstring): a rerate's correction does not."""
    rerate = and_(ledger.c.kind == "adjustment", ledger.c.reference.startswith(RERATE_KEY, autoescape=True))
    return and_(ledger.c.kind.in_(MOVEMENTS), ~rerate)


def describe(row: Any) -> str:
    text = " ".join(x for x in (TEXTS[row.kind], row.reference, row.description) if x)
    return text[:MAX_DESCRIPTION]


def postings(row: Any, customer_account: str) -> list[Posting]:
    """The two lines of one ledger row (none when it rounds to 0): see the module docstring."""
    amount = round_to_currency(D(row.amount), row.currency)
    if amount == 0:
        return []
    text, zero, size = describe(row), Decimal(0) * amount, abs(amount)
    other, customer = (Posting(row.ledger_code, size, zero, text, row.id),
                       Posting(customer_account, zero, size, text, row.id))  # fmt: skip
    if amount < 0:
        other, customer = other._replace(debit=zero, credit=size), customer._replace(debit=size, credit=zero)
        return [customer, other]
    return [other, customer]


def reference_of(row: Any, account: BillingAccount, batch: str) -> str:
    """The document a row goes in: its movement (a top-up's tax with its top-up), or its account and day."""
    if batch == "account_day":
        return f"{quote(account.account, safe='')}@{local_date(row.time_ms, account.timezone).isoformat()}"
    return row.id.removesuffix(TAX_SUFFIX)


def build(kind: JournalKind, rows: Sequence[Any], account: BillingAccount, *, reference: str, sequence: int,
          options: JournalOptions) -> ErpJournal | None:  # fmt: skip
    """The document posting ``rows`` (ledger rows of one account, in time order); None when they all round to 0."""
    lines = [p for row in rows for p in postings(row, options.customer_account)]
    if not lines:
        return None
    total = sum((p.debit for p in lines), Decimal(0))
    day = local_date(rows[0].time_ms, account.timezone)
    if options.batch == "movement":
        memo = f"OCC {TEXTS[rows[0].kind].lower()} {reference}"
    else:
        memo = f"OCC {kind.replace('_', ' ').lower()}s of account {account.account} on {day.isoformat()}"
    return ErpJournal(
        kind=kind, tenant=account.tenant, reference=reference, sequence=sequence, customer_code=account.customer_code,
        account=account.account, posting_date=day, currency=rows[0].currency, total=total, memo=memo[:MAX_DESCRIPTION],
        lines=tuple(JournalLine(line_number=i, account_code=p.account_code, debit=p.debit, credit=p.credit,
                                description=p.description, movement=p.movement) for i, p in enumerate(lines, 1)),
    )  # fmt: skip


class QueueSummary(msgspec.Struct, kw_only=True):
    """What one :func:`queue_journals` did: documents queued, rows they post, rows held back (and why)."""

    documents: int = 0
    rows: int = 0
    held: list[str] = msgspec.field(default_factory=list)


def _unposted(connection: Connection, before_ms: int, limit: int, *, with_code: bool) -> list[Any]:
    """Rows of the posted kinds not in ``journal_postings`` yet, with a ledger code (or, ``with_code`` False,
    without one: held)."""
    code = ledger.c.ledger_code != "" if with_code else ledger.c.ledger_code == ""
    query = (
        select(ledger)
        .select_from(ledger.outerjoin(journal_postings, journal_postings.c.ledger_id == ledger.c.id))
        .where(journal_postings.c.ledger_id.is_(None), posted_kinds(), code, ledger.c.time_ms < before_ms)
        .order_by(ledger.c.account, ledger.c.time_ms, ledger.c.id)
        .limit(limit)
    )  # fmt: skip
    return connection.execute(query).all()


def _groups(rows: Iterable[Any], accounts: dict[str, BillingAccount],
            batch: str) -> dict[tuple[str, JournalKind, str], list[Any]]:  # fmt: skip
    groups: dict[tuple[str, JournalKind, str], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row.account, MOVEMENTS[row.kind], reference_of(row, accounts[row.account], batch))].append(row)
    return groups


def _day_is_over(rows: Sequence[Any], account: BillingAccount, now_ms: int) -> bool:
    day = local_date(rows[0].time_ms, account.timezone)
    return local_midnight_ms(day.fromordinal(day.toordinal() + 1), account.timezone) <= now_ms


def queue_journals(engine: Engine, options: JournalOptions | None = None, *, now_ms: int | None = None,
                   limit: int = 10_000) -> QueueSummary:  # fmt: skip
    """Queue the documents of every money movement not posted yet (up to ``limit`` rows), in one transaction.

    Two exporters queuing at once: one commits, the other's transaction fails on the outbox's or
    ``journal_postings``' unique keys and queues nothing this time (its next round finds the rows posted)."""
    options = options or JournalOptions()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    summary = QueueSummary()
    try:
        with engine.begin() as connection:
            summary.held = [f"{r.id}: no ledger code (the G/L account to post to)"
                            for r in _unposted(connection, now_ms, 20, with_code=False)]  # fmt: skip
            rows = _unposted(connection, now_ms, limit, with_code=True)
            accounts = {a.account: a for a in load_accounts(connection, sorted({r.account for r in rows}))}
            rows = [r for r in rows if r.account in accounts]
            for (account_id, kind, reference), group in _groups(rows, accounts, options.batch).items():
                account = accounts[account_id]
                if options.batch == "movement" or _day_is_over(group, account, now_ms):
                    _queue(connection, kind, group, account, reference, options, now_ms, summary)
    except (IntegrityError, OutboxConflict) as error:
        log.info("another exporter queued these journals first: %s", error)
        return QueueSummary(held=summary.held)
    return summary


def _queue(connection: Connection, kind: JournalKind, group: list[Any], account: BillingAccount, reference: str,
           options: JournalOptions, now_ms: int, summary: QueueSummary) -> None:  # fmt: skip
    sequence = connection.execute(
        select(func.count()).select_from(outbox)
        .where(outbox.c.document_ref == document_ref(account.tenant, kind, reference))
    ).scalar_one()  # fmt: skip
    document = build(kind, group, account, reference=reference, sequence=sequence, options=options)
    outbox_id = None if document is None else enqueue(connection, document)
    connection.execute(insert(journal_postings),
                       [{"ledger_id": r.id, "outbox_id": outbox_id, "queued_ms": now_ms} for r in group])  # fmt: skip
    summary.documents += document is not None
    summary.rows += len(group)


def posted_rows(connection: Connection, outbox_id: int) -> list[Any]:
    """The ledger rows an outbox row posts (``journal_postings``), in time order."""
    return connection.execute(
        select(ledger).join(journal_postings, journal_postings.c.ledger_id == ledger.c.id)
        .where(journal_postings.c.outbox_id == outbox_id).order_by(ledger.c.time_ms, ledger.c.id)
    ).all()  # fmt: skip


def ties_to_ledger(rows: Sequence[Any], journal: ErpJournal) -> list[str]:
    """Whether ``journal`` posts exactly ``rows`` by the rule: per row two lines (its ledger code on the side its
    sign says, the customer balance account on the other) of the rounded amount, no line of another movement."""
    problems = []
    lines: dict[str, list[JournalLine]] = defaultdict(list)
    for x in journal.lines:
        lines[x.movement].append(x)
    for row in rows:
        expected = postings(row, "")  # the customer side's account is the document's to name
        got = lines.pop(row.id, [])
        own_side = [(p.debit, p.credit) for p in expected if p.account_code == row.ledger_code]
        if sorted((x.debit, x.credit) for x in got) != sorted((p.debit, p.credit) for p in expected) or \
                [(x.debit, x.credit) for x in got if x.account_code == row.ledger_code][:1] != own_side:  # fmt: skip
            problems.append(f"the lines of {row.id} are not its {TEXTS[row.kind].lower()} of "
                            f"{round_to_currency(D(row.amount), row.currency)} on {row.ledger_code}")  # fmt: skip
    problems += [f"line {x[0].line_number}: {movement} is not a ledger row of this document"
                 for movement, x in lines.items()]  # fmt: skip
    return problems


def verify_journal(connection: Connection, outbox_id: int, journal: ErpJournal) -> list[str]:
    """The exporter's check before sending a journal (``Exporter(verify_journal=…)``): it posts exactly the ledger
    rows it was queued for; empty = it ties out."""
    rows = posted_rows(connection, outbox_id)
    return ties_to_ledger(rows, journal) if rows else [f"no ledger rows are recorded for outbox row {outbox_id}"]


class LedgerTotal(NamedTuple):
    """One line of a general-ledger report: a G/L account in one currency, its debits and credits."""

    account_code: str
    currency: str
    debit: Decimal
    credit: Decimal


def general_ledger(connection: Connection, from_date: date, to_date: date,
                   options: JournalOptions | None = None) -> list[LedgerTotal]:  # fmt: skip
    """OCC's general ledger of the money that is not a charge, straight from the ledger rows: per G/L account and
    currency, the debits and credits the posting rule gives every posted row (with a ledger code) whose day (in its
    account's time zone) is in ``from_date`` … ``to_date``. The ERP's (``GetGeneralLedger``) must be the same."""
    customer_account = (options or JournalOptions()).customer_account
    margin_ms = 2 * 86_400_000  # any time zone's day lies within two days of the UTC one
    rows = connection.execute(
        select(ledger).where(posted_kinds(), ledger.c.ledger_code != "",
                             ledger.c.time_ms >= local_midnight_ms(from_date, "UTC") - margin_ms,
                             ledger.c.time_ms < local_midnight_ms(to_date, "UTC") + margin_ms)
    ).all()  # fmt: skip
    zones = {a.account: a.timezone for a in load_accounts(connection, sorted({r.account for r in rows}))}
    totals: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in rows:
        day = local_date(row.time_ms, zones.get(row.account, "UTC"))
        if not from_date <= day <= to_date:
            continue
        for posting in postings(row, customer_account):
            sums = totals[(posting.account_code, row.currency)]
            sums[0] += posting.debit
            sums[1] += posting.credit
    return [LedgerTotal(code, currency, debit, credit) for (code, currency), (debit, credit) in sorted(totals.items())]
