"""The ERP fields an integrator maps (:class:`ErpProfile`), added to each document as it is sent. Pure.

A document's payload (and its hash) is what billing or the ledger said; how the ERP files it — which document series,
which payment terms, the exchange rate to the company's currency, which cost centre or project a G/L account books
to, the unit of measure of a line — is the middleware's master data, configured once (``[erp]`` in the settings) and
applied by the SOAP mapping at send time, like the ERP number of the invoice a credit note reverses, which is only
known once the ERP accepted that invoice. A retry therefore carries the profile in force when it is sent; the ERP's
answer to a replayed key is DUPLICATE all the same.

:meth:`ErpProfile.problems` says what is wrong with a document (a customer VAT id python-stdnum refuses: not sent,
REJECTED); :meth:`ErpProfile.missing` what the profile lacks to send it (the exchange rate of its currency: it waits).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from stdnum import vatin

from settlement.export.document import ErpDocument
from settlement.export.journal import ErpJournal

DEFAULT_UNIT = "EA"  # every line is priced as quantity 1 × its total: one "each"


class ErpProfile(msgspec.Struct, frozen=True, kw_only=True):
    """How documents are filed in the ERP.

    Attributes:
        company_currency: the ERP company's currency (ISO 4217); "" = every currency is the company's.
        exchange_rates: units of the company currency per unit of a document currency (``{"USD": "0.92"}``).
        payment_terms: the ERP's payment terms code of invoices ("" = the customer's default in the ERP).
        series: document series per kind (INVOICE, CREDIT_NOTE, JOURNAL_ENTRY, INCOMING_PAYMENT).
        cost_centres, projects: the cost centre / project a G/L account (ledger code) books to.
        units: the unit of measure of an invoice line, per G/L account (default ``EA``).
    """

    company_currency: str = ""
    exchange_rates: dict[str, Decimal] = msgspec.field(default_factory=dict)
    payment_terms: str = ""
    series: dict[str, str] = msgspec.field(default_factory=dict)
    cost_centres: dict[str, str] = msgspec.field(default_factory=dict)
    projects: dict[str, str] = msgspec.field(default_factory=dict)
    units: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        for currency, rate in self.exchange_rates.items():
            if rate <= 0:
                raise ValueError(f"erp exchange_rates.{currency} must be positive, got {rate}")
        if self.company_currency and (len(self.company_currency) != 3 or not self.company_currency.isupper()):
            raise ValueError(f"erp company_currency must be an ISO 4217 code, got {self.company_currency!r}")

    def exchange_rate(self, currency: str) -> dict[str, Any] | None:
        """``erp:ExchangeRate`` for a document in ``currency``; None when it is the company's (or none is set)."""
        if not self.company_currency or currency == self.company_currency:
            return None
        return {"companyCurrency": self.company_currency, "rate": self.exchange_rates[currency]}

    def line_fields(self, account_code: str) -> dict[str, str]:
        """The cost centre and project ``account_code`` books to, those set."""
        fields = {"costCentre": self.cost_centres.get(account_code, ""), "project": self.projects.get(account_code, "")}
        return {k: v for k, v in fields.items() if v}

    def problems(self, document: ErpDocument | ErpJournal) -> list[str]:
        """What is wrong with ``document`` for the ERP beyond its arithmetic: a customer VAT id python-stdnum
        refuses (the document must be corrected: it is not sent)."""
        vat_id = customer_vat_id(document)
        return [f"customerVatId {vat_id!r} is not a valid VAT id (python-stdnum)"] if vat_id and not \
            vatin.is_valid(vat_id) else []  # fmt: skip

    def missing(self, document: ErpDocument | ErpJournal) -> str:
        """What this profile lacks to send ``document`` ("" = nothing): the exchange rate of its currency. The
        document waits (retried) until the settings give it."""
        currency = document.currency
        if self.company_currency and currency != self.company_currency and currency not in self.exchange_rates:
            return (f"no exchange rate from {currency} to the company currency {self.company_currency}: set "
                    f"erp.exchange_rates.{currency}")  # fmt: skip
        return ""


def customer_vat_id(document: ErpDocument | ErpJournal) -> str:
    """The customer's VAT id on an invoice or credit note (its buyer's), "" when there is none."""
    if isinstance(document, ErpDocument) and document.buyer is not None:
        return document.buyer.vat_id
    return ""


def memo(document: ErpDocument) -> str:
    """What the document is, for people in the ERP."""
    what = "credit note reversing invoice" if document.kind == "CREDIT_NOTE" else "invoice"
    return (f"OCC {what} {document.invoice_number} revision {document.revision}, period "
            f"{document.period_start.isoformat()} to {document.period_end.isoformat()}")  # fmt: skip
