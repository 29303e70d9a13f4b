"""Who caused a money movement: the Admin caller (``token:<name>``, ``certificate:<name>``) on ledger rows and xDRs.

Nullable: rows of the switch's usage, and every row settled before this migration, have none.

Revision ID: 0006_auth
Revises: 0004 (0004_billing.py)
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_auth"
down_revision = "0004"  # the id of 0004_billing.py


def upgrade() -> None:
    op.add_column("ledger", sa.Column("actor", sa.Text))
    op.add_column("xdrs", sa.Column("actor", sa.Text))  # on PostgreSQL the partitions take it from the parent


def downgrade() -> None:
    op.drop_column("xdrs", "actor")
    op.drop_column("ledger", "actor")
