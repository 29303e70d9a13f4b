"""The settlement schema: every table, as SQLAlchemy Core, for SQLite and PostgreSQL alike.

Amounts are :class:`~settlement.store.money.Money` (``int`` micro-units in Python). Times are Unix milliseconds
(``*_ms``, BIGINT). ``period`` is the UTC month ``YYYY-MM`` a row belongs to (an xDR's start, which for a call or
event is when it began, for anything else when it happened; a ledger row's time): xDRs are LIST-partitioned by it
on PostgreSQL and indexed by it everywhere, so a rerate reads the months it names, never the whole table. The
migrations in ``migrations/versions`` create exactly these tables; change both together
(``tests/settlement/test_schema.py`` compares them).

The columns holding a vocabulary (xDR status and record type, account status, tax mode, invoice kind and state,
outbox state) take the words of ``settlement/vocabulary.py``; :func:`check_vocabulary_fits` proves at import that
each word fits.

Identity: a row made from a stream entry is keyed ``s<shard>:<entry id>`` (``s017:1795322840574-0``), the entry's
durable identity (see ``docs/events.md``); inserts are ``ON CONFLICT DO NOTHING``, so a re-delivered entry changes
nothing.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

from settlement.store.money import Money
from settlement.vocabulary import (
    AccountStatus,
    BatchState,
    InvoiceKind,
    InvoiceState,
    ItemOutcome,
    OutboxAction,
    OutboxState,
    RecordType,
    TaxMode,
    XdrStatus,
)

metadata = MetaData()

# Accounts settlement has seen; opening_balance is the balance before the first settled entry (0 for an account
# whose whole stream history was settled). The online settings (plan … created_ms) come from the account's `account`
# entries (created, updated: docs/events.md), the newest one by stream position (settings_ms, settings_seq) winning;
# they are NULL for an account known only from money entries (one made before those entries existed).
accounts = Table(
    "accounts",
    metadata,
    Column("account", String(256), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("opening_balance", Money(), nullable=False, default=0),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("plan", Text),
    Column("credit_limit", Money()),
    Column("status", String(10)),
    Column("prepaid_tax_ppm", Integer),
    Column("prepaid_tax_ledger", String(15)),
    Column("prepaid_tax_code", String(20)),
    Column("created_ms", BigInteger),
    Column("settings_ms", BigInteger),
    Column("settings_seq", BigInteger),
)

# Billable items: one per closed session's rating group, one-shot event, money movement, tax or correction. cost is
# what the customer owes for the item (negative: a credit); status follows RAW → BILLABLE → BILLED, or an EXCEPTED
# status with status_reason; a correction has revision > 0 and names the xDR it corrects. start_ms decides the
# billing period; an item billed after its period was invoiced is late: late_period_start_ms / _end_ms hold the
# period it belonged to (NULL: billed in its own period).
xdrs = Table(
    "xdrs",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("account", String(256), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("record_type", String(10), nullable=False),
    Column("session_id", Text, nullable=False, default=""),
    Column("rating_group", BigInteger, nullable=False, default=0),
    Column("subscriber", Text, nullable=False, default=""),
    Column("calling", Text, nullable=False, default=""),
    Column("called", Text, nullable=False, default=""),
    Column("service", String(10), nullable=False, default=""),
    Column("plan", Text, nullable=False, default=""),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("units", BigInteger, nullable=False, default=0),
    Column("over_units", BigInteger, nullable=False, default=0),
    Column("cost", Money(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("dest_group", Text, nullable=False, default=""),
    Column("ledger_code", String(15), nullable=False, default=""),
    Column("tariff_hash", String(64), nullable=False, default=""),
    Column("rate_id", Text, nullable=False, default=""),
    Column("cause", String(10), nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("tax_code", String(20)),
    Column("tax_rate_ppm", Integer),
    Column("tax_amount", Money()),
    Column("status", String(20), nullable=False),
    Column("status_reason", Text, nullable=False, default=""),
    Column("invoice_id", BigInteger),
    Column("revision", Integer, nullable=False, default=0),
    Column("corrects", String(80)),
    Column("created_ms", BigInteger, nullable=False),
    Column("late_period_start_ms", BigInteger),
    Column("late_period_end_ms", BigInteger),
    Column("actor", Text),  # who caused it through the Admin API (token:<name> …); NULL for the switch's usage
    Index("xdrs_period_account_status", "period", "account", "status"),
    Index("xdrs_session", "session_id"),
    Index("xdrs_invoice", "invoice_id"),
    Index("xdrs_corrects", "corrects"),
    postgresql_partition_by="LIST (period)",
)

# Every balance change: amount is signed (credit positive), balance is the account's balance after it.
ledger = Table(
    "ledger",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("period", String(7), nullable=False),
    Column("account", String(256), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("balance", Money()),
    Column("currency", String(3), nullable=False),
    Column("ledger_code", String(15), nullable=False, default=""),
    Column("reference", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("xdr_id", String(80)),
    Column("actor", Text),  # who caused it through the Admin API (token:<name> …); NULL for the switch's usage
    Index("ledger_account_time", "account", "time_ms"),
    Index("ledger_period_account", "period", "account"),
    Index("ledger_kind_time", "kind", "time_ms"),  # migration 0009: the journals read the money movements only
)

# Every document to send to the ERP, written in the same transaction as the invoice it comes from. The exporter
# sends PENDING ones (attempts, next_attempt_ms, last_error track retries) until the middleware answers ACCEPTED or
# DUPLICATE (both: it has the document, erp_document_number says which) or REJECTED (a validation fault or an
# idempotency conflict: not retried) or VOID (a credit note of an invoice the ERP rejected: nothing to credit, not
# sent). document_ref is "tenant:invoice_number": the documents of one invoice number
# (a credit note, then its replacement) go out one at a time in id order. attempts doubles as the claim token: a
# worker claims a row by incrementing it (and leasing next_attempt_ms), and records its outcome only while it holds.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False),
    Column("document_ref", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("invoice_id", BigInteger),
    Column("payload", Text, nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("last_error", Text, nullable=False, default=""),
    Column("erp_document_number", String(100), nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("idempotency_key", name="outbox_idempotency_key"),
    Index("outbox_state_next", "state", "next_attempt_ms"),
    Index("outbox_document_ref", "document_ref", "id"),
)

# Which ledger row (a top-up, payment, refund, adjustment or the tax taken at a top-up) went into which ERP journal
# document (settlement.billing.journal, migration 0009_erp_journal): written in the transaction that queues the
# document, so every row is posted once. outbox_id is NULL for a row that rounds to nothing (no document).
journal_postings = Table(
    "journal_postings",
    metadata,
    Column("ledger_id", String(80), primary_key=True),
    Column("outbox_id", BigInteger),
    Column("queued_ms", BigInteger, nullable=False),
    Index("journal_postings_outbox", "outbox_id"),
)

# What operators did to outbox rows (occ outbox retry|release, the console; settlement/export/outbox_admin.py): one
# row per action, written in the transaction that changes the outbox row. actor: who (local:<os user>, token:<name>,
# console:<user> …); state_before/state_after: the row's state around it; reason: why, as the operator said.
outbox_actions = Table(
    "outbox_actions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("outbox_id", BigInteger, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(10), nullable=False),
    Column("state_before", String(20), nullable=False),
    Column("state_after", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Index("outbox_actions_outbox", "outbox_id", "id"),
)

# Invoices holding xDRs that a rerate corrected after they were billed: billing issues a new revision of each (to
# the ERP a credit note plus a new invoice) and deletes the request. One row per invoice however many rerates ask.
reissue_requests = Table(
    "reissue_requests",
    metadata,
    Column("invoice_id", BigInteger, primary_key=True, autoincrement=False),
    Column("requested_ms", BigInteger, nullable=False),
    Column("reason", Text, nullable=False, default=""),
)

# The balance correction of one account by one rerate run, written in the transaction that writes its correction
# xDRs and applied to the live balance afterwards (an ADJUSTMENT through Redis with idempotency_key): applied_ms is
# NULL until Redis has taken it, and every rerate applies the ones a crashed run left (see settlement/rerate.py).
rerate_adjustments = Table(
    "rerate_adjustments",
    metadata,
    Column("idempotency_key", String(250), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("account", String(256), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("ledger_code", String(15), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("xdrs", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("applied_ms", BigInteger),
    Column("transaction_id", String(64), nullable=False, default=""),
    Index("rerate_adjustments_applied", "applied_ms"),
)
# --- Billing (issue 5; docs/billing.md) -------------------------------------------------------------------------

# How an account is taxed: rate_ppm is the exact rate in millionths (200000 = 20 %); tax lines post to tax_ledger_code.
tax_profiles = Table(
    "tax_profiles",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("mode", String(10), nullable=False),
    Column("rate_ppm", Integer, nullable=False),
    Column("tax_code", String(20), nullable=False),
    Column("tax_ledger_code", String(15), nullable=False),
)

# A customer class names the tax profile its accounts have unless the account names its own.
customer_classes = Table(
    "customer_classes",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("tax_profile", String(50), nullable=False),
)

# Billing settings of an account (an account without a row bills with the defaults: day 1, UTC, tenant "default").
billing_accounts = Table(
    "billing_accounts",
    metadata,
    Column("account", String(256), primary_key=True),
    Column("tenant", String(50), nullable=False),
    Column("customer_code", String(50), nullable=False),
    Column("customer_class", String(50), nullable=False, default=""),
    Column("tax_profile", String(50), nullable=False, default=""),
    Column("billing_day", Integer, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    # The customer as invoices print it (migration 0005_parties): name, address lines joined by "\n", VAT id.
    Column("customer_name", String(200), nullable=False, server_default=""),
    Column("customer_address", Text, nullable=False, server_default=""),
    Column("customer_vat_id", String(20), nullable=False, server_default=""),
)

# The seller of each tenant's invoices (settlement.billing.parties.Issuer); an invoice copies it when issued.
# require_details (0/1): invoices of the tenant whose customer has no name or address stay DRAFT.
billing_issuers = Table(
    "billing_issuers",
    metadata,
    Column("tenant", String(50), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("address", Text, nullable=False),
    Column("vat_id", String(20), nullable=False),
    Column("registration_number", String(100), nullable=False),
    Column("email", String(254), nullable=False),
    Column("bank_name", String(100), nullable=False),
    Column("iban", String(34), nullable=False),
    Column("bic", String(11), nullable=False),
    Column("require_details", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# The next invoice number of each tenant; its row is locked by the transaction that issues an invoice.
invoice_sequences = Table(
    "invoice_sequences",
    metadata,
    Column("tenant", String(50), primary_key=True),
    Column("next_number", BigInteger, nullable=False),
)


def _invoice_columns() -> list[Column]:
    return [
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("tenant", String(50), nullable=False),
        Column("account", String(256), nullable=False),
        Column("customer_code", String(50), nullable=False),
        Column("kind", String(12), nullable=False),
        Column("period_start_ms", BigInteger, nullable=False),
        Column("period_end_ms", BigInteger, nullable=False),
        Column("timezone", String(64), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("tax_profile", String(50), nullable=False),
        Column("tax_mode", String(10), nullable=False),
        Column("brought_forward", Money(), nullable=False),
        Column("charges", Money(), nullable=False),
        Column("payments", Money(), nullable=False),
        Column("adjustments", Money(), nullable=False),
        Column("tax", Money(), nullable=False),
        Column("rounding", Money(), nullable=False),
        Column("carried_forward", Money(), nullable=False),
        Column("xdr_count", Integer, nullable=False),
        Column("created_ms", BigInteger, nullable=False),
        # The parties as issued (settlement.billing.parties.Party as JSON; "" = not configured), migration 0005.
        Column("seller", Text, nullable=False, server_default=""),
        Column("buyer", Text, nullable=False, server_default=""),
        Column("late_items", Integer, nullable=False, server_default="0"),  # migration 0007
    ]


def _line_columns(invoice_table: str) -> list[Column]:
    from sqlalchemy import ForeignKey

    return [
        Column("invoice_id", BigInteger, ForeignKey(f"{invoice_table}.id", ondelete="CASCADE"), primary_key=True),
        Column("line_number", Integer, primary_key=True),
        Column("category", String(12), nullable=False),
        Column("ledger_code", String(15), nullable=False),
        Column("description", Text, nullable=False),
        Column("count", Integer, nullable=False),
        Column("units", BigInteger, nullable=False),
        Column("amount", Money(), nullable=False),
        Column("net", Money(), nullable=False),
        Column("tax", Money(), nullable=False),
        Column("tax_code", String(20), nullable=False),
        Column("tax_rate_ppm", Integer, nullable=False),
        Column("time_ms", BigInteger),
        Column("reference", Text, nullable=False),
    ]


# Issued statements. number is NULL until the invoice is COMPLETE (gap-free per tenant); a re-issue is a new row with
# the same number, revision + 1 and replaces = the row it replaces. Amounts are rounded to the currency, in the
# customer-owes sign (payments negative); carried_forward = brought_forward + charges + payments + adjustments + tax
# + rounding (tax counts only where it is added to the charges: tax-exclusive profiles).
invoices = Table(
    "invoices",
    metadata,
    *_invoice_columns(),
    Column("number", BigInteger),
    Column("revision", Integer, nullable=False),
    Column("replaces", BigInteger),
    Column("state", String(14), nullable=False),
    Column("state_reason", Text, nullable=False, default=""),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("account", "period_start_ms", "revision", name="invoices_account_period_revision"),
    UniqueConstraint("tenant", "number", "revision", name="invoices_tenant_number_revision"),
    Index("invoices_account_period_end", "account", "period_end_ms"),
)

invoice_lines = Table("invoice_lines", metadata, *_line_columns("invoices"))

# Previews (dry runs, occ bill preview): the same statement, in tables of their own; never numbered, never marks xDRs.
preview_invoices = Table(
    "preview_invoices",
    metadata,
    *_invoice_columns(),
    Column("run_id", BigInteger),
    Index("preview_invoices_account", "account"),
)

preview_invoice_lines = Table("preview_invoice_lines", metadata, *_line_columns("preview_invoices"))

# One row per occ bill run: what it did, and the report of the items it could not bill (JSON).
billing_runs = Table(
    "billing_runs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_date", String(10), nullable=False),
    Column("preview", Integer, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger),
    Column("issued", Integer, nullable=False, default=0),
    Column("already_issued", Integer, nullable=False, default=0),
    Column("drafts", Integer, nullable=False, default=0),
    Column("excepted", Integer, nullable=False, default=0),
    Column("report", Text, nullable=False, default=""),
)

# --- Billable-item export (SAP Convergent Invoicing shape; docs/erp-export.md; migration 0010_billable_items) ------

# One export of a month's BILLABLE xDRs as billable items. A real batch is OPEN (written, its xDRs still BILLABLE,
# open_period = its month: at most one open batch per month) until the receiving side confirms it (CONFIRMED: its
# xDRs BILLED, or BILLABLE_EXCEPTED where the receiver rejected them); a simulated batch (simulated = 1, state
# SIMULATED) changes nothing. file_sha256: the hash of the file as written (a confirmation must name it); report:
# JSON of the items left out (excepted, unclassified) and, once confirmed, what each item became.
billable_batches = Table(
    "billable_batches",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("period", String(7), nullable=False),
    Column("simulated", Integer, nullable=False),
    Column("state", String(10), nullable=False),
    Column("open_period", String(7)),
    Column("items", Integer, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("report", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("confirmed_ms", BigInteger),
    UniqueConstraint("open_period", name="billable_batches_open_period"),
    Index("billable_batches_period", "period", "simulated"),
)


def _batch_item_columns() -> list[Column]:
    from sqlalchemy import ForeignKey

    return [
        Column("batch_id", BigInteger, ForeignKey("billable_batches.id", ondelete="CASCADE"), primary_key=True),
        Column("xdr_id", String(80), primary_key=True),
        Column("xdr_period", String(7), nullable=False),
        Column("item_class", String(30), nullable=False),
        Column("main_item", String(80), nullable=False),  # the main item (IT) it belongs to; itself for a main item
        Column("outcome", String(20), nullable=False),  # EXPORTED, then BILLED / REJECTED / CHANGED on confirmation
    ]


# The xDRs of real batches, and (apart) those of simulated ones.
billable_items = Table("billable_items", metadata, *_batch_item_columns(), Index("billable_items_xdr", "xdr_id"))
simulated_billable_items = Table("simulated_billable_items", metadata, *_batch_item_columns())

# Billing finds an account's open items through this index (account, status, start time: the billing time).
Index("xdrs_account_status_start", xdrs.c.account, xdrs.c.status, xdrs.c.start_ms)

# The console's pages, newest first (settlement/listings.py; migration 0011_console_indexes).
Index("xdrs_account_end", xdrs.c.account, xdrs.c.end_ms, xdrs.c.id)
Index("xdrs_status_end", xdrs.c.status, xdrs.c.end_ms, xdrs.c.id)
Index("xdrs_end", xdrs.c.end_ms, xdrs.c.id)
Index("invoices_state", invoices.c.state, invoices.c.id)
Index("outbox_state_id", outbox.c.state, outbox.c.id)


# The columns that hold a vocabulary (settlement/vocabulary.py), and the vocabulary: every word must fit its column.
VOCABULARY_COLUMNS = (
    (xdrs.c.status, XdrStatus),
    (xdrs.c.record_type, RecordType),
    (accounts.c.status, AccountStatus),
    (tax_profiles.c.mode, TaxMode),
    (invoices.c.kind, InvoiceKind),
    (invoices.c.tax_mode, TaxMode),
    (invoices.c.state, InvoiceState),
    (preview_invoices.c.kind, InvoiceKind),
    (preview_invoices.c.tax_mode, TaxMode),
    (outbox.c.state, OutboxState),
    (outbox_actions.c.action, OutboxAction),
    (outbox_actions.c.state_before, OutboxState),
    (outbox_actions.c.state_after, OutboxState),
    (billable_batches.c.state, BatchState),
    (billable_items.c.outcome, ItemOutcome),
    (simulated_billable_items.c.outcome, ItemOutcome),
)


def check_vocabulary_fits(columns: tuple[tuple[Column, type[StrEnum]], ...]) -> None:
    """Raise ValueError naming the column when a word of its vocabulary is longer than the column holds."""
    for column, words in columns:
        longest = max(words, key=len)
        if len(longest) > column.type.length:
            where = f"{column.table.name}.{column.name} ({column.type})"
            raise ValueError(f"{where} cannot hold {words.__name__} {longest.value!r}")


check_vocabulary_fits(VOCABULARY_COLUMNS)
