"""Settlement: accounts seen, xDRs (partitioned by month on PostgreSQL) and the ledger.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from settlement.store.money import Money

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account", sa.String(256), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("opening_balance", Money(), nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "xdrs",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("account", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("record_type", sa.String(10), nullable=False),
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("rating_group", sa.BigInteger, nullable=False),
        sa.Column("subscriber", sa.Text, nullable=False),
        sa.Column("calling", sa.Text, nullable=False),
        sa.Column("called", sa.Text, nullable=False),
        sa.Column("service", sa.String(10), nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.Column("over_units", sa.BigInteger, nullable=False),
        sa.Column("cost", Money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("dest_group", sa.Text, nullable=False),
        sa.Column("ledger_code", sa.String(15), nullable=False),
        sa.Column("tariff_hash", sa.String(64), nullable=False),
        sa.Column("rate_id", sa.Text, nullable=False),
        sa.Column("cause", sa.String(10), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tax_code", sa.String(20)),
        sa.Column("tax_rate_ppm", sa.Integer),
        sa.Column("tax_amount", Money()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=False),
        sa.Column("invoice_id", sa.BigInteger),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("corrects", sa.String(80)),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        postgresql_partition_by="LIST (period)",
    )
    op.create_index("xdrs_period_account_status", "xdrs", ["period", "account", "status"])
    op.create_index("xdrs_session", "xdrs", ["session_id"])
    op.create_index("xdrs_invoice", "xdrs", ["invoice_id"])
    op.create_index("xdrs_corrects", "xdrs", ["corrects"])
    op.create_table(
        "ledger",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("account", sa.String(256), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("balance", Money()),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("ledger_code", sa.String(15), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("xdr_id", sa.String(80)),
    )
    op.create_index("ledger_account_time", "ledger", ["account", "time_ms"])
    op.create_index("ledger_period_account", "ledger", ["period", "account"])


def downgrade() -> None:
    op.drop_table("ledger")
    op.drop_table("xdrs")
    op.drop_table("accounts")
