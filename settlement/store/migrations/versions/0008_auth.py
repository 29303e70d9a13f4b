"""Who caused a money movement: the Admin caller (``token:<name>``, ``certificate:<name>``) on ledger rows and xDRs.

Nullable: rows of the switch's usage, and every row settled before this migration, have none.

Revision ID: 0008_auth
Revises: 0005_parties (main's head when this branch merged it; the lead re-chains it after 0007_late_items)
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_auth"
down_revision = "0007_late_items"


def upgrade() -> None:
    op.add_column("ledger", sa.Column("actor", sa.Text))
    op.add_column("xdrs", sa.Column("actor", sa.Text))  # on PostgreSQL the partitions take it from the parent


def downgrade() -> None:
    op.drop_column("xdrs", "actor")
    op.drop_column("ledger", "actor")
