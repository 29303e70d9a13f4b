"""Does an ERP document tie out to its invoice? Named checks, each returning reasons (empty = it ties). Pure.

The ERP must never be told something other than what the customer was told. A document ties out to the invoice it
was built from (its stored header and lines, or the same values before they are stored) when:

- :func:`adds_up`: it adds up by itself: every line multiplies out (quantity × unit price = line total, exactly), the
  line totals make the net (NET) or gross (GROSS) total, the lines' tax the tax total, net + tax the gross;
- :func:`header_is_the_invoice_s`: tenant, number, revision, customer code, currency, price mode, period and parties
  are the invoice's;
- :func:`totals_are_the_invoice_s`: the gross total is what the invoice totals — for EXCLUSIVE, INCLUSIVE and EXEMPT
  the balance change less payments (carried forward − brought forward − payments: charges, tax added, adjustments,
  rounding line) — for PREPAID the top-ups' gross (TAX lines' net + tax) and the adjustments; the tax total is the
  invoice's tax;
- :func:`lines_are_the_invoice_s`: one line per invoice line it posts (usage, adjustment and rounding lines; PREPAID:
  the prepaid-tax lines and adjustments), in the invoice's order, with its ledger code, text and amount;
- :func:`tax_per_ledger_code`: the tax on each ledger code is the invoice's TAX line for it.

Billing runs :func:`problems` before it queues a document (a document that does not tie out leaves the invoice
DRAFT, nothing queued); the exporter runs it again before sending (:func:`settlement.billing.posting.verify_document`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from settlement.billing.amounts import D, round_to_currency
from settlement.billing.cycle import last_day, local_date
from settlement.billing.erp import GROSS_MODES, USAGE, erp_party, invoice_number, prepaid_description
from settlement.export.document import MAX_DESCRIPTION, ErpDocument, arithmetic_problems

Check = Callable[[Any, Sequence[Any], ErpDocument], list[str]]
POSTED_CATEGORIES = (*USAGE, "ADJUSTMENT", "ROUNDING")


def adds_up(invoice: Any, lines: Sequence[Any], document: ErpDocument) -> list[str]:
    return arithmetic_problems(document)


def header_is_the_invoice_s(invoice: Any, lines: Sequence[Any], document: ErpDocument) -> list[str]:
    tz = invoice.timezone
    expected = {
        "tenant": invoice.tenant, "invoice_number": invoice_number(invoice.number), "revision": invoice.revision,
        "customer_code": invoice.customer_code, "currency": invoice.currency,
        "price_mode": "GROSS" if invoice.tax_mode in GROSS_MODES else "NET",
        "period_start": local_date(invoice.period_start_ms, tz), "period_end": last_day(invoice.period_end_ms, tz),
        "seller": erp_party(invoice.seller), "buyer": erp_party(invoice.buyer),
    }  # fmt: skip
    return [f"{name} {getattr(document, name)!r} is not the invoice's {value!r}"
            for name, value in expected.items() if getattr(document, name) != value]  # fmt: skip


def _money(invoice: Any, micros: int) -> Decimal:
    """An invoice amount (rounded already, so exact) as the document writes it: ``0.87``, not ``0.870000``."""
    return round_to_currency(D(micros), invoice.currency)


def invoice_total(invoice: Any, lines: Sequence[Any]) -> int:
    """What the invoice totals for the A/R document, in micro-units (see the module docstring)."""
    if invoice.tax_mode == "PREPAID":
        return sum(x.net + x.tax if x.category == "TAX" else x.amount for x in lines
                   if x.category in ("TAX", "ADJUSTMENT"))  # fmt: skip
    return invoice.carried_forward - invoice.brought_forward - invoice.payments


def totals_are_the_invoice_s(invoice: Any, lines: Sequence[Any], document: ErpDocument) -> list[str]:
    problems = []
    total = _money(invoice, invoice_total(invoice, lines))
    if document.gross_total != total:
        what = "top-ups and adjustments" if invoice.tax_mode == "PREPAID" else "rounding line included"
        problems.append(f"grossTotal {document.gross_total} is not the invoice's total {total} ({what})")
    if document.tax_total != _money(invoice, invoice.tax):
        problems.append(f"taxTotal {document.tax_total} is not the invoice's tax {_money(invoice, invoice.tax)}")
    return problems


def _expected_lines(invoice: Any, lines: Sequence[Any]) -> list[tuple[str, str, int]]:
    if invoice.tax_mode == "PREPAID":
        return [(x.reference, prepaid_description(x.reference), x.net + x.tax) if x.category == "TAX"
                else (x.ledger_code, x.description, x.amount)
                for x in lines if x.category in ("TAX", "ADJUSTMENT")]  # fmt: skip
    return [(x.ledger_code, x.description, x.amount) for x in lines if x.category in POSTED_CATEGORIES]


def lines_are_the_invoice_s(invoice: Any, lines: Sequence[Any], document: ErpDocument) -> list[str]:
    expected = _expected_lines(invoice, lines)
    problems = []
    if len(expected) != len(document.lines):
        problems.append(f"{len(document.lines)} line(s), but the invoice posts {len(expected)}")
    for line, (code, text, amount) in zip(document.lines, expected, strict=False):  # the lines both have
        n = line.line_number
        if line.account_code != code:
            problems.append(f"line {n}: accountCode {line.account_code} is not the invoice's {code}")
        if line.description != text[:MAX_DESCRIPTION]:
            problems.append(f"line {n}: description {line.description!r} is not the invoice's {text!r}")
        if line.line_total != _money(invoice, amount):
            problems.append(f"line {n}: lineTotal {line.line_total} is not the invoice's {_money(invoice, amount)}")
    return problems


def tax_per_ledger_code(invoice: Any, lines: Sequence[Any], document: ErpDocument) -> list[str]:
    due: dict[str, Decimal] = defaultdict(Decimal)
    for x in lines:
        if x.category == "TAX":
            due[x.reference] += _money(invoice, x.tax)
    sent: dict[str, Decimal] = defaultdict(Decimal)
    for line in document.lines:
        sent[line.account_code] += line.tax_amount
    return [f"tax on {code} is {sent[code]}, the invoice's is {due[code]}"
            for code in sorted(set(due) | set(sent)) if sent[code] != due[code]]  # fmt: skip


CHECKS: tuple[Check, ...] = (
    adds_up,
    header_is_the_invoice_s,
    totals_are_the_invoice_s,
    lines_are_the_invoice_s,
    tax_per_ledger_code,
)


def problems(invoice: Any, lines: Sequence[Any], document: ErpDocument) -> list[str]:
    """Every way ``document`` fails to tie out to ``invoice`` (an ``invoices`` row or its values) and ``lines``."""
    found = []
    for check in CHECKS:
        found.extend(check(invoice, lines, document))
    return found
