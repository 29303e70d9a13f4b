"""Journal entries and incoming payments to the ERP: which ledger row went into which outbox document, and an index
that finds the money movements among the ledger's charges.

Revision ID: 0009_erp_journal
Revises: 0008_auth
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_erp_journal"
down_revision = "0008_auth"


def upgrade() -> None:
    op.create_table(
        "journal_postings",
        sa.Column("ledger_id", sa.String(80), primary_key=True),
        sa.Column("outbox_id", sa.BigInteger),
        sa.Column("queued_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("journal_postings_outbox", "journal_postings", ["outbox_id"])
    op.create_index("ledger_kind_time", "ledger", ["kind", "time_ms"])


def downgrade() -> None:
    op.drop_index("ledger_kind_time", "ledger")
    op.drop_index("journal_postings_outbox", "journal_postings")
    op.drop_table("journal_postings")
