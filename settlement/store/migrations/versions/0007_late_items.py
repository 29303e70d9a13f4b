"""Late items: an xDR billed after its own period was invoiced records that period; billing finds items by start.

- ``xdrs.late_period_start_ms`` / ``late_period_end_ms`` (NULL = on time): the billing period the item belonged to,
  already invoiced when the item reached billing, so it went on a later invoice (``docs/billing.md``);
- ``invoices.late_items`` / ``preview_invoices.late_items``: how many of the statement's items are late;
- the index billing reads an account's open items through is on their start, the time that decides their period:
  ``xdrs_account_status_start (account, status, start_ms)`` replaces ``xdrs_account_status_end``.

Revision ID: 0007_late_items
Revises: 0005_parties
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_late_items"
down_revision = "0006_account_events"


def upgrade() -> None:
    op.add_column("xdrs", sa.Column("late_period_start_ms", sa.BigInteger))
    op.add_column("xdrs", sa.Column("late_period_end_ms", sa.BigInteger))
    for table in ("invoices", "preview_invoices"):
        op.add_column(table, sa.Column("late_items", sa.Integer, nullable=False, server_default="0"))
    op.create_index("xdrs_account_status_start", "xdrs", ["account", "status", "start_ms"])
    op.drop_index("xdrs_account_status_end", "xdrs")


def downgrade() -> None:
    op.create_index("xdrs_account_status_end", "xdrs", ["account", "status", "end_ms"])
    op.drop_index("xdrs_account_status_start", "xdrs")
    for table in ("preview_invoices", "invoices"):
        op.drop_column(table, "late_items")
    op.drop_column("xdrs", "late_period_end_ms")
    op.drop_column("xdrs", "late_period_start_ms")
