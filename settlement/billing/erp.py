"""An issued invoice (its stored header and lines) → the :class:`ErpDocument` the export sends. Pure.

The A/R document carries what was sold in the period, not the statement's payments or balances:
- EXCLUSIVE / INCLUSIVE: one line per taxed ledger code (the TAX line's base), NET resp. GROSS prices;
- PREPAID: one line per top-up ledger code (the TAX lines of the tax taken at top-up), GROSS: the top-ups as paid,
  with the tax the online core took from them;
- EXEMPT (or untaxed): one line per charged ledger code, tax 0;
- every mode: one untaxed line per adjustment.
Built only from stored rows, so a credit note for an old revision is rebuilt exactly as that revision was sent.
An invoice with nothing to post (no such lines) has no document.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from settlement.billing.amounts import D, round_to_currency
from settlement.billing.cycle import DUE_AFTER, last_day, local_date
from settlement.billing.tax import NO_TAX_CODE
from settlement.export.document import DocumentKind, ErpDocument, ErpLine
from settlement.vocabulary import TaxMode

USAGE = ("CHARGE", "CREDIT", "CORRECTION")


def invoice_number(number: int) -> str:
    """The printed invoice number: zero-padded to 8 digits."""
    return f"{number:08d}"


def build(invoice: Any, lines: list[Any], *, kind: DocumentKind = "INVOICE") -> ErpDocument | None:
    """The document for ``invoice`` (an ``invoices`` row) and its ``invoice_lines`` rows; None if nothing to post."""
    currency, tz = invoice.currency, invoice.timezone
    start, end = local_date(invoice.period_start_ms, tz), last_day(invoice.period_end_ms, tz)
    gross_mode = invoice.tax_mode in (TaxMode.INCLUSIVE, TaxMode.PREPAID)

    def money(micros: int) -> Decimal:
        return round_to_currency(D(micros), currency)

    units: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.category in USAGE:
            units[line.ledger_code] += line.units
    raw: list[tuple[str, str, Decimal, Decimal, str, Decimal]] = []  # code, text, qty, total, vat, tax
    if invoice.tax_mode == TaxMode.EXEMPT:
        totals: dict[str, int] = defaultdict(int)
        for line in lines:
            if line.category in USAGE:
                totals[line.ledger_code] += line.amount
        for code, amount in sorted(totals.items()):
            vat = next((x.tax_code for x in lines if x.ledger_code == code and x.tax_code), NO_TAX_CODE)
            raw.append((code, f"Services ({code})", Decimal(units[code] or 1), money(amount), vat, money(0)))
    else:
        for line in lines:
            if line.category == "TAX":
                prepaid = invoice.tax_mode == TaxMode.PREPAID
                qty = Decimal(line.count) if prepaid else Decimal(units[line.reference] or 1)
                what = "Prepaid credit" if prepaid else "Services"
                text = f"{what} ({line.reference})"
                total = line.net + line.tax if gross_mode else line.net  # a TAX line's net is its base without tax
                raw.append((line.reference, text, qty, money(total), line.tax_code, money(line.tax)))
    for line in lines:
        if line.category == "ADJUSTMENT":
            raw.append((line.ledger_code, line.description, Decimal(1), money(line.amount), NO_TAX_CODE, money(0)))
    if not raw:
        return None
    erp_lines = tuple(
        ErpLine(line_number=i, account_code=code, description=text[:200], quantity=qty,
                unit_price=round_to_currency(total / qty, currency) if qty else total, line_total=total,
                vat_group=vat, tax_amount=tax, period_start=start, period_end=end)
        for i, (code, text, qty, total, vat, tax) in enumerate(raw, 1)
    )  # fmt: skip
    line_sum = sum((x.line_total for x in erp_lines), Decimal(0))
    tax_total = sum((x.tax_amount for x in erp_lines), Decimal(0))
    net_total = line_sum - tax_total if gross_mode else line_sum
    issued = local_date(invoice.created_ms, tz)
    return ErpDocument(
        kind=kind, tenant=invoice.tenant, invoice_number=invoice_number(invoice.number), revision=invoice.revision,
        customer_code=invoice.customer_code, document_date=issued, due_date=issued + DUE_AFTER, period_start=start,
        period_end=end, currency=currency, price_mode="GROSS" if gross_mode else "NET", net_total=net_total,
        tax_total=tax_total, gross_total=net_total + tax_total, lines=erp_lines,
    )  # fmt: skip
