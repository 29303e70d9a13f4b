"""Paged reads of the books for people (the operator console): an account's ledger, xDRs and invoices, newest
first, a page at a time (the ERP outbox's is ``settlement.export.outbox_admin.list_documents``).

Pages are keyset pages: each answer's last row gives the cursor of the next (``before``), so a page costs the same
however deep it is, on the indexes the books already have (ledger and xDRs by account and time, invoices by id).
Every function takes a connection (``settlement.store.database.reading``) and returns rows; none writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, or_, select

from settlement.store.schema import invoices, ledger, xdrs
from settlement.vocabulary import XdrStatus

MAX_PAGE = 500


class ListingError(ValueError):
    """A filter or cursor that cannot be used; the message names it."""


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ListingError(f"limit must be 1 to {MAX_PAGE}, got {limit}")
    return limit


def month_bounds_ms(period: str) -> tuple[int, int]:
    """[start, end) of the UTC month ``YYYY-MM`` in Unix ms; :class:`ListingError` naming ``period`` otherwise."""
    try:
        start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ListingError(f"period must be YYYY-MM, got {period!r}") from None
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def account_ledger(connection: Connection, account: str, *, limit: int = 200) -> list[Row[Any]]:
    """The account's newest ledger rows (time, kind, amount, balance after, code, description, actor), oldest first."""
    query = (
        select(ledger.c.id, ledger.c.time_ms, ledger.c.kind, ledger.c.amount, ledger.c.balance, ledger.c.currency,
               ledger.c.ledger_code, ledger.c.description, ledger.c.actor)
        .where(ledger.c.account == account)
        .order_by(ledger.c.time_ms.desc(), ledger.c.id.desc())
        .limit(_limit(limit))
    )  # fmt: skip
    return list(reversed(connection.execute(query).all()))


def _cursor(before: str) -> tuple[int, str] | None:
    """``"<time_ms>:<id>"`` → (time_ms, id); empty: None."""
    if not before:
        return None
    time_ms, sep, row_id = before.partition(":")
    if not sep or not time_ms.isdigit():
        raise ListingError(f"before must be <time_ms>:<id>, got {before[:64]!r}")
    return int(time_ms), row_id


def xdr_page(connection: Connection, *, account: str = "", period: str = "", status: str = "", before: str = "",
             limit: int = 50) -> tuple[list[Row[Any]], str]:  # fmt: skip
    """xDRs, newest end first, filtered by account, period (``YYYY-MM``) and status; and the cursor of the next page
    (empty on the last)."""
    query = select(xdrs)
    if account:
        query = query.where(xdrs.c.account == account)
    if period:
        month_bounds_ms(period)  # (checks the form)
        query = query.where(xdrs.c.period == period)
    if status:
        if status not in list(XdrStatus):
            raise ListingError(f"status must be one of {', '.join(XdrStatus)}, got {status!r}")
        query = query.where(xdrs.c.status == status)
    cursor = _cursor(before)
    if cursor is not None:
        end_ms, row_id = cursor
        query = query.where(or_(xdrs.c.end_ms < end_ms, and_(xdrs.c.end_ms == end_ms, xdrs.c.id < row_id)))
    rows = connection.execute(query.order_by(xdrs.c.end_ms.desc(), xdrs.c.id.desc()).limit(_limit(limit) + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, f"{rows[-1].end_ms}:{rows[-1].id}" if more else ""


def invoice_page(connection: Connection, *, account: str = "", period: str = "", state: str = "", before: int = 0,
                 limit: int = 50) -> tuple[list[Row[Any]], int]:  # fmt: skip
    """Invoices, newest first, filtered by account, the UTC month their period starts in, and state; and the id to
    pass as ``before`` for the next page (0 on the last)."""
    query = select(invoices)
    if account:
        query = query.where(invoices.c.account == account)
    if period:
        start_ms, end_ms = month_bounds_ms(period)
        query = query.where(invoices.c.period_start_ms >= start_ms, invoices.c.period_start_ms < end_ms)
    if state:
        query = query.where(invoices.c.state == state)
    if before:
        query = query.where(invoices.c.id < before)
    rows = connection.execute(query.order_by(invoices.c.id.desc()).limit(_limit(limit) + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else 0
