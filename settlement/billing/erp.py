"""An issued invoice (its stored header and lines) → the :class:`ErpDocument` the export sends. Pure.

The A/R document is the invoice as the ERP books it, line for line, so that it totals exactly what the invoice does:

- EXCLUSIVE, INCLUSIVE, EXEMPT (or untaxed): every usage line (CHARGE, CREDIT, CORRECTION) with the invoice's text,
  ledger code and amount (net in a NET document; tax included in a GROSS one, INCLUSIVE), every ADJUSTMENT line
  (untaxed) and the ROUNDING line (untaxed). The gross total is what the invoice added to the balance besides the
  payments: carried forward − brought forward − payments. Tax is computed once per (ledger code, rate) on the
  unrounded sum (the invoice's TAX line); the usage lines of that code share it: each keeps the tax the invoice
  prints beside it, and the one with the largest amount also takes the difference to the TAX line's tax.
- PREPAID: what was sold is prepaid credit: one GROSS line per TAX line (the tax taken at top-up, per top-up ledger
  code) for the top-ups' gross, with that tax, and the adjustment lines. Usage spends credit already sold and the
  rounding line squares the statement's balance: neither is a sale, neither is posted.

Every line is priced as quantity 1 × its total, so it multiplies out exactly; the item count and usage units go
along for information. Built only from stored rows, so a credit note for an old revision is rebuilt exactly as that
revision was sent. An invoice with nothing to post (no usage, adjustment or prepaid-tax line: only payments, say)
has no document. :mod:`settlement.billing.tieout` checks a document against its invoice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from settlement.billing.amounts import D, round_to_currency
from settlement.billing.cycle import DUE_AFTER, last_day, local_date
from settlement.billing.parties import decode
from settlement.billing.tax import NO_TAX_CODE
from settlement.export.document import MAX_DESCRIPTION, DocumentKind, ErpDocument, ErpLine, ErpParty

USAGE = ("CHARGE", "CREDIT", "CORRECTION")
GROSS_MODES = ("INCLUSIVE", "PREPAID")
USAGE_TAXED = ("EXCLUSIVE", "INCLUSIVE")


def invoice_number(number: int) -> str:
    """The printed invoice number: zero-padded to 8 digits."""
    return f"{number:08d}"


def prepaid_description(ledger_code: str) -> str:
    """The text of a PREPAID document's line: the top-ups of one ledger code, tax included."""
    return f"Prepaid credit ({ledger_code}), tax taken at top-up"


class Posting(NamedTuple):
    """One line of the A/R document, from the invoice line(s) it mirrors (amounts in rounded micro-units)."""

    ledger_code: str
    description: str
    total: int  # in the document's price mode
    tax: int
    vat_group: str
    count: int
    units: int


def _usage_taxes(mode: str, usage: Sequence[Any], lines: Sequence[Any]) -> list[int]:
    """Each usage line's share of its ledger code's tax (the TAX line whose reference is that code)."""
    if mode not in USAGE_TAXED:
        return [0] * len(usage)
    due: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.category == "TAX":
            due[line.reference] += line.tax
    shares = [line.tax for line in usage]
    for code in {line.ledger_code for line in usage}:
        mine = [i for i, line in enumerate(usage) if line.ledger_code == code]
        gap = due.get(code, 0) - sum(shares[i] for i in mine)
        if gap:
            shares[max(mine, key=lambda i: abs(usage[i].amount))] += gap
    return shares


def postings(tax_mode: str, lines: Sequence[Any]) -> list[Posting]:
    """The invoice lines the A/R document carries, in invoice order (see the module docstring); [] = no document."""
    if tax_mode == "PREPAID":
        out = [Posting(x.reference, prepaid_description(x.reference), x.net + x.tax, x.tax, x.tax_code or NO_TAX_CODE,
                       x.count, 0) for x in lines if x.category == "TAX"]  # fmt: skip
    else:
        usage = [x for x in lines if x.category in USAGE]
        out = [Posting(x.ledger_code, x.description, x.amount, tax, x.tax_code or NO_TAX_CODE, x.count, x.units)
               for x, tax in zip(usage, _usage_taxes(tax_mode, usage, lines), strict=True)]  # fmt: skip
    out += [Posting(x.ledger_code, x.description, x.amount, 0, NO_TAX_CODE, x.count, 0)
            for x in lines if x.category == "ADJUSTMENT"]  # fmt: skip
    if out and tax_mode != "PREPAID":
        out += [Posting(x.ledger_code, x.description, x.amount, 0, NO_TAX_CODE, 0, 0)
                for x in lines if x.category == "ROUNDING"]  # fmt: skip
    return out


def erp_party(stored: str) -> ErpParty | None:
    """A party as stored on an invoice (JSON, "" = none) → the document's."""
    party = decode(stored)
    return None if party.empty else ErpParty(**msgspec.structs.asdict(party))


def build(invoice: Any, lines: Sequence[Any], *, kind: DocumentKind = "INVOICE") -> ErpDocument | None:
    """The document for ``invoice`` (an ``invoices`` row) and its ``invoice_lines`` rows; None if nothing to post."""
    currency, tz = invoice.currency, invoice.timezone
    start, end = local_date(invoice.period_start_ms, tz), last_day(invoice.period_end_ms, tz)
    posted = postings(invoice.tax_mode, lines)
    if not posted:
        return None

    def money(micros: int) -> Decimal:
        return round_to_currency(D(micros), currency)

    erp_lines = tuple(
        ErpLine(line_number=i, account_code=p.ledger_code, description=p.description[:MAX_DESCRIPTION],
                quantity=Decimal(1), unit_price=money(p.total), line_total=money(p.total), vat_group=p.vat_group,
                tax_amount=money(p.tax), period_start=start, period_end=end, item_count=p.count, usage_units=p.units)
        for i, p in enumerate(posted, 1)
    )  # fmt: skip
    gross_mode = invoice.tax_mode in GROSS_MODES
    line_sum = sum((x.line_total for x in erp_lines), Decimal(0))
    tax_total = sum((x.tax_amount for x in erp_lines), Decimal(0))
    net_total = line_sum - tax_total if gross_mode else line_sum
    issued = local_date(invoice.created_ms, tz)
    return ErpDocument(
        kind=kind, tenant=invoice.tenant, invoice_number=invoice_number(invoice.number), revision=invoice.revision,
        customer_code=invoice.customer_code, document_date=issued, due_date=issued + DUE_AFTER, period_start=start,
        period_end=end, currency=currency, price_mode="GROSS" if gross_mode else "NET", net_total=net_total,
        tax_total=tax_total, gross_total=net_total + tax_total, lines=erp_lines, seller=erp_party(invoice.seller),
        buyer=erp_party(invoice.buyer),
    )  # fmt: skip
