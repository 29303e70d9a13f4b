"""The operator console's paged queries get their indexes; the outbox gets its log of operator actions.

- xDRs newest first (``settlement.listings.xdr_page``: ``ORDER BY end_ms DESC, id DESC``) by account, by status, and
  unfiltered (a period filter rides on the last two: a period's rows are a run of end times);
- invoices by state, newest first (``invoice_page``; by period it walks the id index: an index on the period start
  made SQLite read and sort a whole month of invoices, 44 ms for 10,000, against 1 ms without);
- outbox documents by state, newest first (``outbox_admin.list_documents``: the console, ``occ outbox list --state``);
- ``outbox_actions``: who retried or released which outbox row, when and why (``settlement/export/outbox_admin.py``).

Without them a filtered page of 1,000,000 xDRs read and sorted every row (0.2–0.7 s on SQLite); with them a page
reads its 50 rows (``benchmarks/bench_console.py``).

Revision ID: 0011_console_indexes
Revises: 0010_billable_items
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_console_indexes"
down_revision = "0010_billable_items"


INDEXES = (
    ("xdrs_account_end", "xdrs", ["account", "end_ms", "id"]),
    ("xdrs_status_end", "xdrs", ["status", "end_ms", "id"]),
    ("xdrs_end", "xdrs", ["end_ms", "id"]),
    ("invoices_state", "invoices", ["state", "id"]),
    ("outbox_state_id", "outbox", ["state", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
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
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
