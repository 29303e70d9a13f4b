"""Accounts' online settings, recorded from their ``account`` stream entries (created, updated).

Settlement used to learn of an account from its first settled money entry, so every finance command that names an
account failed for one created but not yet charged (issue 17). The online core now appends an ``account`` entry on
creation and on every update; these columns keep what the newest one said (NULL until one is settled).

Revision ID: 0006_account_events
Revises: 0005_parties
"""

import sqlalchemy as sa
from alembic import op

from settlement.store.money import Money

revision = "0006_account_events"
down_revision = "0005_parties"

COLUMNS = (
    ("plan", sa.Text),
    ("credit_limit", Money),
    ("status", lambda: sa.String(10)),
    ("prepaid_tax_ppm", sa.Integer),
    ("prepaid_tax_ledger", lambda: sa.String(15)),
    ("prepaid_tax_code", lambda: sa.String(20)),
    ("created_ms", sa.BigInteger),
    ("settings_ms", sa.BigInteger),
    ("settings_seq", sa.BigInteger),
)


def upgrade() -> None:
    for name, column_type in COLUMNS:
        op.add_column("accounts", sa.Column(name, column_type()))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
