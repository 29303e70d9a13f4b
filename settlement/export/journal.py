"""The money that is not an invoice, as the ERP books it: journal entries and incoming payments. Pure.

Every settled balance change that is not a charge (a top-up, payment, refund, adjustment, and the tax taken at a
top-up) reaches the ERP as a double-entry document through the same outbox as the invoices
(:mod:`settlement.billing.journal` builds them from the ledger). Two kinds, one shape:

- ``INCOMING_PAYMENT`` (``SubmitIncomingPayment``): money received — top-ups and payments, with the tax taken at a
  top-up beside its top-up;
- ``JOURNAL_ENTRY`` (``SubmitJournalEntry``): refunds and adjustments.

Each line posts to one G/L account on one side (``debit`` or ``credit``, the other 0). Amounts are already rounded
to the currency's ISO 4217 exponent. A document balances to the cent: its debits and its credits are equal and are
its ``total`` (:func:`balance_problems`); the outbox refuses to queue one that does not, the exporter refuses to send
one, and ``occ erp-sim`` rejects one as an ERP would.

The key is ``tenant:JE|PY:reference:sequence``: ``reference`` is the ledger row it posts (one movement per
document) or ``account@YYYY-MM-DD`` (one document per account and day, the account's own time zone), ``sequence``
0, or 1, 2, … for rows of that day settled after its document was queued.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

import msgspec

from settlement.export.document import HashedPayload

JournalKind = Literal["JOURNAL_ENTRY", "INCOMING_PAYMENT"]
JOURNAL_KINDS: tuple[JournalKind, ...] = ("JOURNAL_ENTRY", "INCOMING_PAYMENT")
PREFIX = {"JOURNAL_ENTRY": "JE", "INCOMING_PAYMENT": "PY"}
OPERATION = {"JOURNAL_ENTRY": "SubmitJournalEntry", "INCOMING_PAYMENT": "SubmitIncomingPayment"}


def document_ref(tenant: str, kind: JournalKind, reference: str) -> str:
    """``tenant:JE|PY:reference``: what every document of one reference shares (sent in sequence order)."""
    return f"{tenant}:{PREFIX[kind]}:{reference}"


class JournalLine(msgspec.Struct, frozen=True, kw_only=True):
    """One posting.

    Attributes:
        line_number: 1, 2, … in document order.
        account_code: the G/L account (a ledger code, or the customer balance account), 1–15 characters.
        debit, credit: the amount on its side; exactly one of them is positive, the other 0.
        description: what moved, for people (the ledger row's kind and text).
        movement: the OCC ledger row the line posts (its id), so the ERP line traces back to the balance change.
        cost_centre, project: where the G/L account maps to one (``ErpProfile.cost_centres``); "" otherwise.
    """

    line_number: int
    account_code: str
    debit: Decimal
    credit: Decimal
    description: str
    movement: str
    cost_centre: str = ""
    project: str = ""


class ErpJournal(HashedPayload, frozen=True, kw_only=True):
    """A journal entry or incoming payment for the middleware.

    Attributes:
        kind: JOURNAL_ENTRY or INCOMING_PAYMENT.
        tenant: the billing tenant of the account.
        reference: what the document posts: a ledger row id, or ``account@YYYY-MM-DD`` (a day's batch).
        sequence: 0; 1, 2, … for a later document of the same reference (rows settled after it was queued).
        customer_code: the ERP's customer (business partner) code of the account.
        account: the OCC account.
        posting_date: the day the money moved (the account's billing time zone).
        currency: ISO 4217 code.
        total: the sum of the debits, which is the sum of the credits.
        memo: what the document is, for people.
        lines: the postings, at least two.
    """

    kind: JournalKind
    tenant: str
    reference: str
    sequence: int
    customer_code: str
    account: str
    posting_date: date
    currency: str
    total: Decimal
    memo: str
    lines: tuple[JournalLine, ...]

    @property
    def document_ref(self) -> str:
        return document_ref(self.tenant, self.kind, self.reference)

    @property
    def idempotency_key(self) -> str:
        return f"{self.document_ref}:{self.sequence}"


def one_side_per_line(journal: ErpJournal) -> list[str]:
    return [f"line {x.line_number}: exactly one of debit {x.debit} and credit {x.credit} must be positive, the "
            "other 0" for x in journal.lines if min(x.debit, x.credit) != 0 or max(x.debit, x.credit) <= 0]  # fmt: skip


def debits_equal_credits(journal: ErpJournal) -> list[str]:
    debits = sum((x.debit for x in journal.lines), Decimal(0))
    credits = sum((x.credit for x in journal.lines), Decimal(0))
    problems = [] if debits == credits else [f"debits {debits} are not credits {credits}: the document does not "
                                             "balance"]  # fmt: skip
    if journal.total != debits:
        problems.append(f"total {journal.total} is not the sum of the debits {debits}")
    return problems


def numbered_lines(journal: ErpJournal) -> list[str]:
    problems = [] if len(journal.lines) >= 2 else ["a journal needs at least two lines"]
    if [x.line_number for x in journal.lines] != list(range(1, len(journal.lines) + 1)):
        problems.append("lineNumber must run 1, 2, … in order")
    return problems


def amounts_in_minor_units(journal: ErpJournal, exponent: int) -> list[str]:
    """Every amount is rounded to the currency (``exponent`` decimals): the ERP books cents, not micro-units."""
    quantum = Decimal(1).scaleb(-exponent)
    return [f"line {x.line_number}: {side} {amount} is not rounded to {exponent} decimals of {journal.currency}"
            for x in journal.lines for side, amount in (("debit", x.debit), ("credit", x.credit))
            if amount != amount.quantize(quantum)]  # fmt: skip


def balance_problems(journal: ErpJournal, exponent: int | None = None) -> list[str]:
    """Every way ``journal`` fails to balance (empty = it balances to the cent); ``exponent``: the currency's
    decimals, when known, so that amounts finer than a cent are refused too."""
    found = numbered_lines(journal) + one_side_per_line(journal) + debits_equal_credits(journal)
    if exponent is not None:
        found += amounts_in_minor_units(journal, exponent)
    return found
