"""The settlement schema: every table, as SQLAlchemy Core, for SQLite and PostgreSQL alike.

Amounts are :class:`~settlement.store.money.Money` (``int`` micro-units in Python). Times are Unix milliseconds
(``*_ms``, BIGINT). ``period`` is the UTC month ``YYYY-MM`` a row belongs to (an xDR's end, a ledger row's time):
xDRs are LIST-partitioned by it on PostgreSQL and indexed by it everywhere, so a billing run reads one or two
periods, never the whole table. The migrations in ``migrations/versions`` create exactly these tables; change both
together (``tests/settlement/test_schema.py`` compares them).

Identity: a row made from a stream entry is keyed ``s<shard>:<entry id>`` (``s017:1795322840574-0``), the entry's
durable identity (see ``docs/events.md``); inserts are ``ON CONFLICT DO NOTHING``, so a re-delivered entry changes
nothing.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

from settlement.store.money import Money

metadata = MetaData()

XDR_STATUSES = ("RAW", "BILLABLE", "BILLED", "RAW_EXCEPTED", "BILLABLE_EXCEPTED")
RECORD_TYPES = ("MAIN", "PAYMENT", "TAX", "TEXT")

# Accounts settlement has seen; opening_balance is the balance before the first settled entry (0 for an account
# whose whole stream history was settled).
accounts = Table(
    "accounts",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("opening_balance", Money(), nullable=False, default=0),
    Column("first_seen_ms", BigInteger, nullable=False),
)

# Billable items: one per closed session's rating group, one-shot event, money movement, tax or correction. cost is
# what the customer owes for the item (negative: a credit); status follows RAW → BILLABLE → BILLED, or an EXCEPTED
# status with status_reason; a correction has revision > 0 and names the xDR it corrects.
xdrs = Table(
    "xdrs",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("account", String(200), nullable=False),
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
    Column("account", String(200), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("balance", Money()),
    Column("currency", String(3), nullable=False),
    Column("ledger_code", String(15), nullable=False, default=""),
    Column("reference", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("xdr_id", String(80)),
    Index("ledger_account_time", "account", "time_ms"),
    Index("ledger_period_account", "period", "account"),
)

OUTBOX_STATES = ("PENDING", "ACCEPTED", "DUPLICATE", "REJECTED", "VOID")

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
