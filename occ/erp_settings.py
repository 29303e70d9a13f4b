"""The ``[erp]`` section of the settings: where the ERP middleware is, how OCC proves itself to it, what goes to it
and how the ERP files it. ``occ export`` and ``occ erp-gl`` read it; their flags win over it.

::

    [erp]
    url = "https://erp.example/soap"          # or OCC_ERP__URL; occ export --erp-url wins
    username = "occ"                          # the password better from OCC_ERP__PASSWORD
    journals = true                           # queue top-ups, payments, refunds, adjustments, prepaid tax
    journal_batch = "account_day"             # or "movement" (one document each)
    journal_interval_s = 30                   # how often a running occ export queues them
    customer_account = "200000"               # the G/L account of the customers' balances
    company_currency = "EUR"
    exchange_rates = { USD = "0.9215" }
    payment_terms = "NET14"
    series = { INVOICE = "OCC-AR", CREDIT_NOTE = "OCC-CM", JOURNAL_ENTRY = "OCC-JE", INCOMING_PAYMENT = "OCC-PY" }
    cost_centres = { "400000001" = "CC-VOICE" }
    projects = { "400000002" = "PRJ-INTL" }
    units = { "400000001" = "MIN" }

Checked on construction; an error names the field (``erp.journal_batch …``).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from occ.config_layers import SettingsError

JOURNAL_BATCHES = ("movement", "account_day")
DOCUMENT_KINDS = ("INVOICE", "CREDIT_NOTE", "JOURNAL_ENTRY", "INCOMING_PAYMENT")
WSSE_MODES = ("", "text", "digest")


class ErpSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The ERP middleware and its mapping.

    Attributes:
        url: the middleware's SOAP endpoint (``http://`` or ``https://``); empty: give ``--erp-url``.
        username, password: OCC's credentials there (HTTP basic, or a WS-Security UsernameToken with ``wsse``).
        wsse: ``text`` or ``digest`` to send them as a UsernameToken; empty: HTTP basic.
        cert_file, key_file: OCC's client certificate and key (https); ca_file: the CA of the middleware's.
        journals: queue the money that is not a charge (top-ups, payments, refunds, adjustments, the tax taken at a
            top-up) as journal entries and incoming payments before each export round.
        journal_batch: ``movement`` (a document per movement) or ``account_day`` (per account, day and kind).
        journal_interval_s: how often a running ``occ export`` looks for movements to queue (each look reads the
            movements not posted yet; ``--once`` looks once).
        customer_account: the G/L account of the customers' balances, the other side of every journal posting.
        company_currency: the ERP company's currency; documents in another carry ``exchange_rates[currency]``.
        exchange_rates: company-currency units per unit of a document currency.
        payment_terms: the ERP's payment terms code on invoices.
        series: the ERP document series per kind (INVOICE, CREDIT_NOTE, JOURNAL_ENTRY, INCOMING_PAYMENT).
        cost_centres, projects: per G/L account (ledger code), the cost centre and project its lines book to.
        units: per G/L account, the unit of measure of invoice lines (default ``EA``).
    """

    url: str = ""
    username: str = ""
    password: str = ""
    wsse: str = ""
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    journals: bool = False
    journal_batch: str = "movement"
    journal_interval_s: float = 30.0
    customer_account: str = "200000"
    company_currency: str = ""
    exchange_rates: dict[str, Decimal] = msgspec.field(default_factory=dict)
    payment_terms: str = ""
    series: dict[str, str] = msgspec.field(default_factory=dict)
    cost_centres: dict[str, str] = msgspec.field(default_factory=dict)
    projects: dict[str, str] = msgspec.field(default_factory=dict)
    units: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = [(f"erp.{name}", f"erp.{name} {message}") for name, message in self._problems()]
        if problems:
            raise SettingsError("; ".join(message for _, message in problems), tuple(problems))

    def _problems(self) -> list[tuple[str, str]]:
        found = []
        if self.url and not self.url.startswith(("http://", "https://")):
            found.append(("url", f"must be http:// or https://, got {self.url!r}"))
        if self.wsse not in WSSE_MODES:
            found.append(("wsse", f"must be text or digest, got {self.wsse!r}"))
        if self.journal_interval_s <= 0:
            found.append(("journal_interval_s", f"must be positive, got {self.journal_interval_s}"))
        if self.journal_batch not in JOURNAL_BATCHES:
            found.append(("journal_batch", f"must be movement or account_day, got {self.journal_batch!r}"))
        if not 1 <= len(self.customer_account) <= 15 or any(c.isspace() for c in self.customer_account):
            found.append(("customer_account", f"must be a G/L code of 1-15 characters, got {self.customer_account!r}"))
        found += [(f"series.{kind}", f"is not a document kind ({', '.join(DOCUMENT_KINDS)})")
                  for kind in self.series if kind not in DOCUMENT_KINDS]  # fmt: skip
        found += [(f"exchange_rates.{currency}", f"must be positive, got {rate}")
                  for currency, rate in self.exchange_rates.items() if rate <= 0]  # fmt: skip
        return found
