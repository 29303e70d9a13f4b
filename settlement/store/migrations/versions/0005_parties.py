"""Parties on invoices: each tenant's issuer (seller), each account's customer details, and both copied onto invoices.

Revision ID: 0005_parties
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_parties"
down_revision = "0004"

CUSTOMER_COLUMNS = (("customer_name", sa.String(200)), ("customer_address", sa.Text()),
                    ("customer_vat_id", sa.String(20)))  # fmt: skip
INVOICE_TABLES = ("invoices", "preview_invoices")


def upgrade() -> None:
    op.create_table(
        "billing_issuers",
        sa.Column("tenant", sa.String(50), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("vat_id", sa.String(20), nullable=False),
        sa.Column("registration_number", sa.String(100), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("bank_name", sa.String(100), nullable=False),
        sa.Column("iban", sa.String(34), nullable=False),
        sa.Column("bic", sa.String(11), nullable=False),
        sa.Column("require_details", sa.Integer, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    for name, type_ in CUSTOMER_COLUMNS:
        op.add_column("billing_accounts", sa.Column(name, type_, nullable=False, server_default=""))
    for table in INVOICE_TABLES:  # invoices issued before this migration have no parties: ""
        op.add_column(table, sa.Column("seller", sa.Text, nullable=False, server_default=""))
        op.add_column(table, sa.Column("buyer", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    for table in INVOICE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("buyer")
            batch.drop_column("seller")
    with op.batch_alter_table("billing_accounts") as batch:
        for name, _ in reversed(CUSTOMER_COLUMNS):
            batch.drop_column(name)
    op.drop_table("billing_issuers")
