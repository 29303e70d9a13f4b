"""Re-rating: invoices to re-issue, and the balance corrections a rerate owes the live balances.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from settlement.store.money import Money

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "reissue_requests",
        sa.Column("invoice_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("requested_ms", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "rerate_adjustments",
        sa.Column("idempotency_key", sa.String(250), primary_key=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("account", sa.String(256), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("ledger_code", sa.String(15), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("xdrs", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("applied_ms", sa.BigInteger),
        sa.Column("transaction_id", sa.String(64), nullable=False),
    )
    op.create_index("rerate_adjustments_applied", "rerate_adjustments", ["applied_ms"])


def downgrade() -> None:
    op.drop_table("rerate_adjustments")
    op.drop_table("reissue_requests")
