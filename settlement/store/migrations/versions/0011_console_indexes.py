"""The operator console's paged queries get their indexes; the outbox gets its log of operator actions.

- ``outbox_actions``: who retried or released which outbox row, when and why (``settlement/export/outbox_admin.py``).

Revision ID: 0011_console_indexes
Revises: 0008_auth (the lead re-chains it after the migrations merged before it)
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_console_indexes"
down_revision = "0008_auth"


def upgrade() -> None:
    op.create_table(
        "outbox_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.BigInteger, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("state_before", sa.String(20), nullable=False),
        sa.Column("state_after", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("outbox_actions_outbox", "outbox_actions", ["outbox_id", "id"])


def downgrade() -> None:
    op.drop_table("outbox_actions")
