"""Moving xDRs in and out of the excepted statuses (``occ xdr except|restore``), and looking them up.

The lifecycle (DESIGN, "Settlement and billing")::

    RAW ──▶ BILLABLE ──▶ BILLED
     │  ▲      │  ▲
     ▼  │      ▼  │
    RAW_EXCEPTED  BILLABLE_EXCEPTED        (status_reason says why)

An excepted xDR never reaches an invoice (billing takes BILLABLE only). A BILLED xDR cannot be excepted: it is on
an invoice already, and the way to change what it charges is ``occ rerate`` or a credit. Restoring a RAW_EXCEPTED
xDR puts it through the same check settlement applied on arrival (:func:`settlement.entries.billable_status`), so
it becomes BILLABLE only if it now can (``--ledger`` supplies a missing ledger code); otherwise it stays excepted
with the new reason.

Every change is one conditional ``UPDATE … WHERE status = <the status read>`` in one transaction: when another
process changed the xDR in between, nothing is written and :class:`StatusError` says what it is now. The reason is
recorded in ``status_reason`` (prefixed ``restored:`` on a restore, so the audit trail shows the way back).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Row, select, update

from settlement.entries import billable_status
from settlement.store.database import reading
from settlement.store.schema import xdrs
from settlement.vocabulary import XdrStatus

EXCEPTED = {XdrStatus.RAW: XdrStatus.RAW_EXCEPTED, XdrStatus.BILLABLE: XdrStatus.BILLABLE_EXCEPTED}
RESTORED = {excepted: status for status, excepted in EXCEPTED.items()}
MAX_REASON = 500


class StatusError(ValueError):
    """The change is not allowed (or the xDR changed meanwhile); the message says why and what to do."""


class Change(msgspec.Struct, frozen=True):
    """A status change that was made.

    Attributes:
        id: the xDR's id.
        period: its period (the other half of its primary key).
        account: its account.
        before: the status it had.
        after: the status it has now.
        reason: its ``status_reason`` now.
        ledger_code: its ledger code now.
    """

    id: str
    period: str
    account: str
    before: str
    after: str
    reason: str
    ledger_code: str


def lateness(row: Row[Any]) -> str:
    """How late the xDR was billed: "no", or the period it belonged to, already invoiced when it was billed (it then
    went on a later invoice, ``settlement/billing/late.py``)."""
    if row.late_period_start_ms is None:
        return "no"

    def utc(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")

    return (f"yes: its period {utc(row.late_period_start_ms)} – {utc(row.late_period_end_ms)} UTC had been "
            f"invoiced; billed on invoice id {row.invoice_id}")  # fmt: skip


def find(connection: Connection, xdr_id: str) -> Row[Any]:
    """The xDR with this id; :class:`StatusError` when there is none (ids are unique in practice, whatever period)."""
    rows = connection.execute(select(xdrs).where(xdrs.c.id == xdr_id)).all()
    if not rows:
        raise StatusError(f"no xDR {xdr_id!r}")
    if len(rows) > 1:
        periods = ", ".join(sorted(r.period for r in rows))
        raise StatusError(f"xDR id {xdr_id!r} is in several periods ({periods}); this should not happen")
    return rows[0]


def except_xdr(engine: Engine, xdr_id: str, reason: str) -> Change:
    """RAW → RAW_EXCEPTED or BILLABLE → BILLABLE_EXCEPTED, recording ``reason``."""
    reason = _reason(reason)
    with engine.begin() as connection:
        row = find(connection, xdr_id)
        if row.status == XdrStatus.BILLED:
            raise StatusError(
                f"xDR {xdr_id} is BILLED on invoice {row.invoice_id}: it cannot be excepted; "
                "correct it with `occ rerate` or a credit instead"
            )
        if row.status not in EXCEPTED:
            raise StatusError(f"xDR {xdr_id} is already {row.status} ({row.status_reason or 'no reason'})")
        return _set(connection, row, EXCEPTED[row.status], reason, row.ledger_code)


def restore_xdr(engine: Engine, xdr_id: str, reason: str, *, ledger_code: str | None = None) -> Change:
    """BILLABLE_EXCEPTED → BILLABLE; RAW_EXCEPTED → RAW, checked again: BILLABLE, or RAW_EXCEPTED with why not."""
    reason = _reason(reason)
    if ledger_code is not None and not (
        ledger_code.isascii() and ledger_code.isdigit() and len(ledger_code) <= 15 and ledger_code[0] != "0"
    ):
        raise StatusError(f"ledger code must be 1 to 15 digits without a leading zero, got {ledger_code!r}")
    with engine.begin() as connection:
        row = find(connection, xdr_id)
        if row.status not in RESTORED:
            raise StatusError(f"xDR {xdr_id} is {row.status}, not excepted: there is nothing to restore")
        code = row.ledger_code if ledger_code is None else ledger_code
        status, why = RESTORED[row.status], f"restored: {reason}"
        if status == XdrStatus.RAW:
            status, check = billable_status(code)
            if status != XdrStatus.BILLABLE:
                why = check
        return _set(connection, row, status, why, code)


def list_xdrs(
    engine: Engine, *, status: str, account: str | None = None, period: str | None = None, limit: int = 1_000
) -> list[Row[Any]]:
    """xDRs in ``status`` (optionally of one account and one period), oldest first, at most ``limit``."""
    if status not in list(XdrStatus):
        raise StatusError(f"status must be one of {', '.join(XdrStatus)}, got {status!r}")
    query = select(xdrs).where(xdrs.c.status == status)
    if account is not None:
        query = query.where(xdrs.c.account == account)
    if period is not None:
        query = query.where(xdrs.c.period == period)
    with reading(engine) as connection:
        return connection.execute(query.order_by(xdrs.c.end_ms, xdrs.c.id).limit(limit)).all()


def _set(connection: Connection, row: Row[Any], status: str, reason: str, ledger_code: str) -> Change:
    result = connection.execute(
        update(xdrs)
        .where(xdrs.c.id == row.id, xdrs.c.period == row.period, xdrs.c.status == row.status)
        .values(status=status, status_reason=reason, ledger_code=ledger_code)
    )
    if result.rowcount != 1:
        now = find(connection, row.id)
        raise StatusError(f"xDR {row.id} changed meanwhile (it is {now.status} now); nothing was written, try again")
    return Change(row.id, row.period, row.account, row.status, status, reason, ledger_code)


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise StatusError("--reason is required: say why, it is recorded with the xDR")
    if len(reason) > MAX_REASON:
        raise StatusError(f"--reason is longer than {MAX_REASON} characters")
    return reason
