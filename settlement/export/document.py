"""The document billing hands to the ERP export: an A/R invoice or credit note, as the middleware receives it.

Amounts are :class:`~decimal.Decimal` already rounded to the currency's ISO 4217 exponent (msgspec encodes them as
strings, never floats). A credit note reverses an earlier revision of the same invoice number with positive amounts
(the document kind says it is a credit). ``payload_sha256`` is computed over the canonical JSON of everything else,
so the same document always hashes the same, and ``idempotency_key`` is ``tenant:invoice_number:revision`` (credit
notes add ``:credit``), the middleware's duplicate key.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Literal

import msgspec

DocumentKind = Literal["INVOICE", "CREDIT_NOTE"]
PriceMode = Literal["NET", "GROSS"]


class ErpLine(msgspec.Struct, frozen=True, kw_only=True):
    """One service line posting to a G/L account.

    Attributes:
        line_number: 1, 2, … in document order.
        account_code: the ledger (G/L) code the line posts to.
        description: what was sold, for people.
        quantity: units (seconds, octets, messages, or 1 for a lump sum).
        unit_price: net price per unit, rounded to the currency (informational: ``line_total`` is authoritative).
        line_total: the amount of the line in the document's price mode: net in a NET document, tax included in a
            GROSS one (so the line totals add up to ``net_total``, resp. ``gross_total``).
        vat_group: the tax code of the line (``EXEMPT`` when no tax applies).
        tax_amount: the tax of the line.
        period_start, period_end: the service period the line covers (end inclusive).
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


class ErpDocument(msgspec.Struct, frozen=True, kw_only=True):
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

    @property
    def document_ref(self) -> str:
        """``tenant:invoice_number``: what all revisions and credit notes of one invoice share."""
        return f"{self.tenant}:{self.invoice_number}"

    @property
    def idempotency_key(self) -> str:
        suffix = ":credit" if self.kind == "CREDIT_NOTE" else ""
        return f"{self.tenant}:{self.invoice_number}:{self.revision}{suffix}"

    def canonical(self) -> bytes:
        """The JSON the hash covers: fields in declaration order, amounts as strings."""
        return msgspec.json.encode(self)

    @property
    def payload_sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()
