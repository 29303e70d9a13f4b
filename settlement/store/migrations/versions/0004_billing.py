"""Billing: tax profiles, customer classes, billing accounts, invoice sequences, invoices and lines, previews, runs.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from settlement.store.money import Money

revision = "0004"
down_revision = "0003"


def _invoice_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(50), nullable=False),
        sa.Column("account", sa.String(256), nullable=False),
        sa.Column("customer_code", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("period_start_ms", sa.BigInteger, nullable=False),
        sa.Column("period_end_ms", sa.BigInteger, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tax_profile", sa.String(50), nullable=False),
        sa.Column("tax_mode", sa.String(10), nullable=False),
        sa.Column("brought_forward", Money(), nullable=False),
        sa.Column("charges", Money(), nullable=False),
        sa.Column("payments", Money(), nullable=False),
        sa.Column("adjustments", Money(), nullable=False),
        sa.Column("tax", Money(), nullable=False),
        sa.Column("rounding", Money(), nullable=False),
        sa.Column("carried_forward", Money(), nullable=False),
        sa.Column("xdr_count", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    ]


def _line_columns(invoice_table: str) -> list[sa.Column]:
    return [
        sa.Column(
            "invoice_id", sa.BigInteger, sa.ForeignKey(f"{invoice_table}.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("line_number", sa.Integer, primary_key=True),
        sa.Column("category", sa.String(12), nullable=False),
        sa.Column("ledger_code", sa.String(15), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("net", Money(), nullable=False),
        sa.Column("tax", Money(), nullable=False),
        sa.Column("tax_code", sa.String(20), nullable=False),
        sa.Column("tax_rate_ppm", sa.Integer, nullable=False),
        sa.Column("time_ms", sa.BigInteger),
        sa.Column("reference", sa.Text, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "tax_profiles",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("rate_ppm", sa.Integer, nullable=False),
        sa.Column("tax_code", sa.String(20), nullable=False),
        sa.Column("tax_ledger_code", sa.String(15), nullable=False),
    )
    op.create_table(
        "customer_classes",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("tax_profile", sa.String(50), nullable=False),
    )
    op.create_table(
        "billing_accounts",
        sa.Column("account", sa.String(256), primary_key=True),
        sa.Column("tenant", sa.String(50), nullable=False),
        sa.Column("customer_code", sa.String(50), nullable=False),
        sa.Column("customer_class", sa.String(50), nullable=False),
        sa.Column("tax_profile", sa.String(50), nullable=False),
        sa.Column("billing_day", sa.Integer, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "invoice_sequences",
        sa.Column("tenant", sa.String(50), primary_key=True),
        sa.Column("next_number", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "invoices",
        *_invoice_columns(),
        sa.Column("number", sa.BigInteger),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("replaces", sa.BigInteger),
        sa.Column("state", sa.String(14), nullable=False),
        sa.Column("state_reason", sa.Text, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("account", "period_start_ms", "revision", name="invoices_account_period_revision"),
        sa.UniqueConstraint("tenant", "number", "revision", name="invoices_tenant_number_revision"),
    )
    op.create_index("invoices_account_period_end", "invoices", ["account", "period_end_ms"])
    op.create_table("invoice_lines", *_line_columns("invoices"))
    op.create_table("preview_invoices", *_invoice_columns(), sa.Column("run_id", sa.BigInteger))
    op.create_index("preview_invoices_account", "preview_invoices", ["account"])
    op.create_table("preview_invoice_lines", *_line_columns("preview_invoices"))
    op.create_table(
        "billing_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("run_date", sa.String(10), nullable=False),
        sa.Column("preview", sa.Integer, nullable=False),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_ms", sa.BigInteger),
        sa.Column("issued", sa.Integer, nullable=False),
        sa.Column("already_issued", sa.Integer, nullable=False),
        sa.Column("drafts", sa.Integer, nullable=False),
        sa.Column("excepted", sa.Integer, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )
    op.create_index("xdrs_account_status_end", "xdrs", ["account", "status", "end_ms"])


def downgrade() -> None:
    op.drop_index("xdrs_account_status_end", "xdrs")
    for table in ("billing_runs", "preview_invoice_lines", "preview_invoices", "invoice_lines", "invoices",
                  "invoice_sequences", "billing_accounts", "customer_classes", "tax_profiles"):  # fmt: skip
        op.drop_table(table)
