"""The document billing hands to the ERP export: an A/R invoice or credit note, as the middleware receives it.

Amounts are :class:`~decimal.Decimal` already rounded to the currency's ISO 4217 exponent (msgspec encodes them as
strings, never floats). A credit note reverses an earlier revision of the same invoice number with positive amounts
(the document kind says it is a credit). ``payload_sha256`` is computed over the canonical JSON of everything else,
so the same document always hashes the same, and ``idempotency_key`` is ``tenant:invoice_number:revision`` (credit
notes add ``:credit``), the middleware's duplicate key.

Every line multiplies out (``quantity × unit_price == line_total``, exactly) and the totals add up
(:func:`arithmetic_problems`): the outbox refuses to queue a document that does not, the exporter refuses to send
one, and ``occ erp-sim`` rejects one as an ERP would.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Literal

import msgspec

DocumentKind = Literal["INVOICE", "CREDIT_NOTE"]
PriceMode = Literal["NET", "GROSS"]
MAX_DESCRIPTION = 254  # erp.xsd's Text


class ErpParty(msgspec.Struct, frozen=True, kw_only=True):
    """A seller or buyer as the document names it (``erp:Party``; every field but the name optional).

    Attributes:
        name: legal name. address: postal address lines. vat_id: VAT id with country prefix.
        registration_number: company register entry. email: billing contact.
        bank_name, iban, bic: the seller's bank account customers pay to.
    """

    name: str
    address: tuple[str, ...] = ()
    vat_id: str = ""
    registration_number: str = ""
    email: str = ""
    bank_name: str = ""
    iban: str = ""
    bic: str = ""


class ErpLine(msgspec.Struct, frozen=True, kw_only=True):
    """One service line posting to a G/L account.

    Attributes:
        line_number: 1, 2, … in document order.
        account_code: the ledger (G/L) code the line posts to.
        description: what was sold, for people.
        quantity, unit_price: ``quantity × unit_price == line_total`` exactly (billing sends quantity 1 and the
            line total as the price: usage is priced per call, not per unit; the units are in ``usage_units``).
        line_total: the amount of the line in the document's price mode: net in a NET document, tax included in a
            GROSS one (so the line totals add up to ``net_total``, resp. ``gross_total``).
        vat_group: the tax code of the line (``EXEMPT`` when no tax applies).
        tax_amount: the tax of the line.
        period_start, period_end: the service period the line covers (end inclusive).
        item_count: the billable items summed into the line (informational).
        usage_units: their usage units — seconds, octets or messages, as the description's service says
            (informational; 0 for lines that are not usage).
    """

    line_number: int
    account_code: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal
    vat_group: str
    tax_amount: Decimal
    period_start: date
    period_end: date
    item_count: int = 0
    usage_units: int = 0


class HashedPayload(msgspec.Struct, frozen=True, kw_only=True):
    """What the outbox sends (an invoice, a credit note, a journal): its canonical JSON and the hash of it that the
    middleware's idempotency check compares. No fields of its own, so a subclass encodes exactly its own fields."""

    def canonical(self) -> bytes:
        """The JSON the hash covers: fields in declaration order, amounts as strings."""
        return msgspec.json.encode(self)

    @property
    def payload_sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


class ErpDocument(HashedPayload, frozen=True, kw_only=True):
    """An invoice or credit note for the middleware.

    Attributes:
        kind: INVOICE or CREDIT_NOTE.
        tenant: the billing tenant (the invoice number sequence it belongs to).
        invoice_number: the billing system's gap-free number (the ERP's customer reference).
        revision: 0 for the first issue; a re-issue is revision n + 1, preceded by a credit note of revision n.
        customer_code: the ERP's customer (business partner) code.
        document_date, due_date: issue date and payment due date.
        period_start, period_end: the billing period (end inclusive).
        currency: ISO 4217 code.
        price_mode: NET (line totals exclude tax) or GROSS (they include it).
        net_total, tax_total, gross_total: the document totals (gross = net + tax).
        lines: the lines, at least one.
        seller, buyer: the invoice's issuer and customer as it was issued (None: not configured).
    """

    kind: DocumentKind
    tenant: str
    invoice_number: str
    revision: int
    customer_code: str
    document_date: date
    due_date: date
    period_start: date
    period_end: date
    currency: str
    price_mode: PriceMode
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    lines: tuple[ErpLine, ...]
    seller: ErpParty | None = None
    buyer: ErpParty | None = None

    @property
    def document_ref(self) -> str:
        """``tenant:invoice_number``: what all revisions and credit notes of one invoice share."""
        return f"{self.tenant}:{self.invoice_number}"

    @property
    def idempotency_key(self) -> str:
        suffix = ":credit" if self.kind == "CREDIT_NOTE" else ""
        return f"{self.tenant}:{self.invoice_number}:{self.revision}{suffix}"


def arithmetic_problems(document: ErpDocument) -> list[str]:
    """What does not add up inside ``document`` (empty = it does): line numbers 1, 2, …; each line's quantity ×
    unit price = its total; the line totals = the net total (NET) or the gross total (GROSS); the lines' tax = the
    tax total; gross = net + tax. Exact Decimal arithmetic, no rounding."""
    errors = []
    if not document.lines:
        errors.append("a document needs at least one line")
    if [line.line_number for line in document.lines] != list(range(1, len(document.lines) + 1)):
        errors.append("lineNumber must run 1, 2, … in order")
    for line in document.lines:
        if line.quantity * line.unit_price != line.line_total:
            errors.append(f"line {line.line_number}: quantity {line.quantity} × unitPrice {line.unit_price} is not "
                          f"lineTotal {line.line_total}")  # fmt: skip
    # Line totals are in the price mode: they add up to the net total (NET) or to the gross total (GROSS).
    lines_total = document.gross_total if document.price_mode == "GROSS" else document.net_total
    if sum((line.line_total for line in document.lines), Decimal(0)) != lines_total:
        which = "grossTotal" if document.price_mode == "GROSS" else "netTotal"
        errors.append(f"{which} {lines_total} is not the sum of the line totals")
    if sum((line.tax_amount for line in document.lines), Decimal(0)) != document.tax_total:
        errors.append(f"taxTotal {document.tax_total} is not the sum of the lines' tax amounts")
    if document.net_total + document.tax_total != document.gross_total:
        errors.append(f"grossTotal {document.gross_total} is not netTotal + taxTotal")
    return errors
