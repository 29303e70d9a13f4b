"""An issued invoice (or the credit note of a replaced revision) as an EN 16931 e-invoice, before any syntax. Pure.

The e-invoice carries what the invoice sold, exactly as the ERP document does (:func:`settlement.billing.erp.postings`:
the usage lines with their tax, the adjustments; for a PREPAID profile the prepaid credit sold at top-up), so the two
tie out line for line. What a bank statement adds besides sales goes to the document totals (EN 16931 BG-22):

- BT-114 rounding amount (``PayableRoundingAmount`` / ``RoundingAmount``): the invoice's ROUNDING line;
- BT-113 paid amount (``PrepaidAmount`` / ``TotalPrepaidAmount``): what the statement counts against the sales —
  the period's payments and the balance brought forward — so that
- BT-115 amount due (``PayableAmount`` / ``DuePayableAmount``) is the invoice's balance carried forward, to the cent.

Lines are net (BT-131); the VAT breakdown (BG-23) has one entry per (category, rate): category ``S`` for a taxed
rate, ``E`` (exempt, with the reason) under an EXEMPT profile, ``Z`` (zero rate) for untaxed lines of other profiles
(adjustments). A credit note (type code 381) is the replaced revision's document with its amounts as they were
(positive), nothing paid, and a reference to the invoice it credits (BG-3).

:func:`settlement.billing.ubl.render` writes UBL 2.1, :func:`settlement.billing.facturx.render_xml` CII (Factur-X).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import msgspec

from settlement.billing.amounts import D, rate, round_to_currency
from settlement.billing.cycle import DUE_AFTER, last_day, local_date
from settlement.billing.erp import invoice_number, postings
from settlement.billing.parties import Party, decode
from settlement.vocabulary import TaxMode

INVOICE = "380"  # UNTDID 1001: commercial invoice
CREDIT_NOTE = "381"  # UNTDID 1001: credit note
STANDARD, EXEMPT, ZERO = "S", "E", "Z"  # UNTDID 5305 VAT categories
EXEMPTION_REASON = "Exempt from VAT"
VAT_PREFIX_COUNTRY = {"EL": "GR"}  # a VAT id's prefix that is not the ISO 3166 code of its country


class EInvoiceError(ValueError):
    """The invoice cannot be an EN 16931 document (the message says why and what to do)."""


class Address(msgspec.Struct, frozen=True, kw_only=True):
    """A postal address from an invoice party's printed lines: the first is the street, the last "postcode city"."""

    street: str
    additional: str
    city: str
    postcode: str
    country: str  # ISO 3166-1 alpha-2


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One invoice line (BG-25): net amount, its VAT category and rate, the G/L code as the buyer's accounting ref."""

    number: int
    name: str
    ledger_code: str
    net: Decimal
    category: str
    rate_percent: Decimal


class VatEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One VAT breakdown entry (BG-23)."""

    category: str
    rate_percent: Decimal
    taxable: Decimal
    tax: Decimal


class EInvoice(msgspec.Struct, frozen=True, kw_only=True):
    """An EN 16931 invoice or credit note. Amounts are Decimals rounded to the currency.

    Attributes:
        type_code: 380 (invoice) or 381 (credit note).
        number: BT-1 (``00000042``; ``00000042-1`` for revision 1; ``CN-00000042-0`` for the credit note of
            revision 0).
        issue_date, due_date: BT-2, BT-9 (None on a credit note).
        currency: BT-5.
        period_start, period_end: BG-14, the billing period (end inclusive).
        seller, buyer: the parties as issued, with their addresses (BG-4, BG-7).
        buyer_reference: BT-10, the ERP's customer code.
        credited: BG-3 for a credit note: the number and issue date of the invoice it credits.
        lines, vat: BG-25, BG-23.
        line_total, tax_total, rounding, paid, payable: BT-106 (= BT-109), BT-110, BT-114, BT-113, BT-115.
    """

    type_code: Literal["380", "381"]
    number: str
    issue_date: date
    due_date: date | None
    currency: str
    period_start: date
    period_end: date
    seller: Party
    seller_address: Address
    buyer: Party
    buyer_address: Address
    buyer_reference: str
    credited: tuple[str, date] | None
    lines: tuple[Line, ...]
    vat: tuple[VatEntry, ...]
    line_total: Decimal
    tax_total: Decimal
    rounding: Decimal
    paid: Decimal
    payable: Decimal

    @property
    def tax_inclusive(self) -> Decimal:
        return self.line_total + self.tax_total


def document_number(invoice: Any) -> str:
    """BT-1 of an invoice revision: its printed number, ``-<revision>`` after a re-issue."""
    return invoice_number(invoice.number) + (f"-{invoice.revision}" if invoice.revision else "")


def country_of(party: Party, fallback: str = "") -> str:
    """The party's country: its VAT id's prefix (``DE136695976`` → ``DE``), else ``fallback``."""
    prefix = party.vat_id[:2].upper()
    if len(prefix) == 2 and prefix.isalpha():
        return VAT_PREFIX_COUNTRY.get(prefix, prefix)
    return fallback


def address(party: Party, country: str) -> Address:
    """``party``'s address lines as EN 16931 wants them (BG-5 / BG-8): street, additional lines, postcode and city
    from the last line (its leading token, when it holds a digit, is the postcode)."""
    lines = list(party.address)
    last = lines[-1] if len(lines) > 1 else ""
    postcode, _, city = last.partition(" ")
    if not any(c.isdigit() for c in postcode):
        postcode, city = "", last
    return Address(street=lines[0] if lines else "", additional=", ".join(lines[1:-1]), city=city.strip(),
                   postcode=postcode, country=country)  # fmt: skip


def _category(tax_mode: str, rate_ppm: int) -> str:
    if rate_ppm:
        return STANDARD
    return EXEMPT if tax_mode == TaxMode.EXEMPT else ZERO


def _lines(invoice: Any, lines: Sequence[Any]) -> tuple[list[Line], list[VatEntry]]:
    currency, mode = invoice.currency, invoice.tax_mode
    rates = {x.tax_code: x.tax_rate_ppm for x in lines if x.tax_code}
    sold = postings(mode, [x for x in lines if x.category != "ROUNDING"])
    out, taxable, taxes = [], defaultdict(int), defaultdict(int)
    gross = mode in (TaxMode.INCLUSIVE, TaxMode.PREPAID)
    for i, posting in enumerate(sold, 1):
        rate_ppm = rates.get(posting.vat_group, 0)
        key = (_category(mode, rate_ppm), rate_ppm)
        net = posting.total - posting.tax if gross else posting.total
        taxable[key] += net
        taxes[key] += posting.tax
        out.append(Line(number=i, name=posting.description, ledger_code=posting.ledger_code,
                        net=round_to_currency(D(net), currency), category=key[0],
                        rate_percent=rate(rate_ppm) * 100))  # fmt: skip
    vat = [VatEntry(category=c, rate_percent=rate(r) * 100, taxable=round_to_currency(D(taxable[c, r]), currency),
                    tax=round_to_currency(D(taxes[c, r]), currency)) for c, r in sorted(taxable)]  # fmt: skip
    return out, vat


def build(invoice: Any, lines: Sequence[Any], *, buyer_country: str = "",
          credit_note_issued: Any = None) -> EInvoice:  # fmt: skip
    """The e-invoice of ``invoice`` (an ``invoices`` row) and its ``invoice_lines`` rows; with ``credit_note_issued``
    (the revision that replaced it) the credit note of ``invoice`` instead. ``buyer_country``: the buyer's country
    when its VAT id does not say (default: the seller's). Raises :class:`EInvoiceError`."""
    if invoice.number is None:
        raise EInvoiceError(f"invoice id {invoice.id} is a DRAFT (not issued): no e-invoice")
    seller, buyer = decode(invoice.seller), decode(invoice.buyer)
    if not seller.complete:
        raise EInvoiceError("the invoice was issued without the seller's name and address (occ bill issuer set): "
                            "not a valid tax invoice, no e-invoice")  # fmt: skip
    if not buyer.name:
        raise EInvoiceError(f"the invoice has no customer name (occ bill account set {invoice.account} --name …, "
                            "then re-issue): no e-invoice")  # fmt: skip
    seller_country = country_of(seller)
    if not seller_country:
        raise EInvoiceError("the seller has no VAT id (occ bill issuer set --vat-id): its country is unknown")
    buyer_country = country_of(buyer, buyer_country.upper() or seller_country)
    sold, vat = _lines(invoice, lines)
    if not sold:
        raise EInvoiceError(f"invoice {document_number(invoice)} sold nothing (only payments): no e-invoice")
    currency, tz = invoice.currency, invoice.timezone
    line_total = sum((x.net for x in sold), Decimal(0))
    tax_total = sum((x.tax for x in vat), Decimal(0))
    rounding = round_to_currency(D(invoice.rounding), currency)
    issued = local_date(invoice.created_ms, tz)
    if credit_note_issued is None:
        payable = round_to_currency(D(invoice.carried_forward), currency)
        number, type_code, due, credited = document_number(invoice), INVOICE, issued + DUE_AFTER, None
    else:  # a PREPAID document never carries the statement's rounding (the ERP's credit note does not either)
        rounding = Decimal(0) if invoice.tax_mode == TaxMode.PREPAID else rounding
        payable = line_total + tax_total + rounding
        number, type_code, due = f"CN-{invoice_number(invoice.number)}-{invoice.revision}", CREDIT_NOTE, None
        credited, issued = (document_number(invoice), issued), local_date(credit_note_issued.created_ms, tz)
    return EInvoice(
        type_code=type_code, number=number, issue_date=issued, due_date=due, currency=currency,
        period_start=local_date(invoice.period_start_ms, tz), period_end=last_day(invoice.period_end_ms, tz),
        seller=seller, seller_address=address(seller, seller_country), buyer=buyer,
        buyer_address=address(buyer, buyer_country), buyer_reference=invoice.customer_code, credited=credited,
        lines=tuple(sold), vat=tuple(vat), line_total=line_total, tax_total=tax_total, rounding=rounding,
        paid=line_total + tax_total + rounding - payable, payable=payable,
    )  # fmt: skip
