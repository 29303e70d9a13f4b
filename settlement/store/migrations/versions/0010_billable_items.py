"""Billable-item export batches (SAP Convergent Invoicing shape): real and simulated batches, their items apart.

Revision ID: 0010_billable_items
Revises: 0009_erp_journal (written on 0008_auth; re-chained after fin-erp's 0009 when this branch merged it)
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_billable_items"
down_revision = "0009_erp_journal"


def _items(name: str) -> None:
    op.create_table(
        name,
        sa.Column(
            "batch_id", sa.BigInteger, sa.ForeignKey("billable_batches.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("xdr_id", sa.String(80), primary_key=True),
        sa.Column("xdr_period", sa.String(7), nullable=False),
        sa.Column("item_class", sa.String(30), nullable=False),
        sa.Column("main_item", sa.String(80), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
    )


def upgrade() -> None:
    op.create_table(
        "billable_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("simulated", sa.Integer, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("open_period", sa.String(7)),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("confirmed_ms", sa.BigInteger),
        sa.UniqueConstraint("open_period", name="billable_batches_open_period"),
    )
    op.create_index("billable_batches_period", "billable_batches", ["period", "simulated"])
    _items("billable_items")
    op.create_index("billable_items_xdr", "billable_items", ["xdr_id"])
    _items("simulated_billable_items")


def downgrade() -> None:
    op.drop_table("simulated_billable_items")
    op.drop_table("billable_items")
    op.drop_table("billable_batches")
