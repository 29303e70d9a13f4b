"""Billable-item batches in the store: export a month's BILLABLE xDRs, confirm a batch the receiver took.

- :func:`export` (real): the month's BILLABLE xDRs not on an invoice become an OPEN batch (its items in
  ``billable_items``) and a file; their status does not change. While the batch is OPEN, exporting the month again
  writes the same batch again, byte for byte (nothing new joins it); items that arrive meanwhile wait for the next
  batch. Simulated (``simulate=True``): a SIMULATED batch whose items are stored apart
  (``simulated_billable_items``); no status changes, no batch is held open.
- :func:`confirm`: the receiver's confirmation (``{"batch": "B00000007", "sha256": "…", "rejected": [{"item": ID,
  "reason": "…"}]}``) must name an OPEN batch and the hash of its file. In one transaction every item still
  BILLABLE becomes BILLED, a rejected main item (with its dependent records) BILLABLE_EXCEPTED with the receiver's
  reason, and an item that is no longer BILLABLE (invoiced or excepted meanwhile) is left as it is (CHANGED). The
  batch is CONFIRMED; confirming it again changes nothing.

Excepted xDRs of the month (RAW_EXCEPTED, BILLABLE_EXCEPTED) are never exported: every export lists them with
their reasons, and the unclassified ones (no class rule), in its result and in ``billable_batches.report``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from settlement.billable.classes import ClassMap
from settlement.billable.records import Grouping, Item, batch_label, file_bytes, group, records, sha256
from settlement.store.schema import billable_batches, billable_items, billing_accounts, simulated_billable_items, xdrs
from settlement.vocabulary import EXCEPTED_STATUSES, BatchState, ItemOutcome, XdrStatus

CHUNK = 500


class BatchError(ValueError):
    """An export or confirmation that cannot be done (the message says why); nothing was written."""


class Excepted(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account: str
    status: str
    reason: str


class ExportResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an export wrote: the batch (None when there was nothing to export), its file, and what stayed out."""

    label: str | None
    content: bytes
    items: int
    main_items: int
    reused: bool
    excepted: tuple[Excepted, ...]
    unclassified: tuple[tuple[str, str, str], ...]


class Rejection(msgspec.Struct, frozen=True):
    item: str
    reason: str


class Confirmation(msgspec.Struct, frozen=True, kw_only=True):
    """The receiver's answer for a batch (the confirmation file, JSON)."""

    batch: str
    sha256: str
    rejected: tuple[Rejection, ...] = ()


class ConfirmResult(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    billed: int
    rejected: int
    changed: tuple[str, ...]
    already: bool


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _excepted(connection: Connection, period: str) -> tuple[Excepted, ...]:
    rows = connection.execute(select(xdrs.c.id, xdrs.c.account, xdrs.c.status, xdrs.c.status_reason)
                              .where(xdrs.c.period == period, xdrs.c.status.in_(EXCEPTED_STATUSES))
                              .order_by(xdrs.c.id))  # fmt: skip
    return tuple(Excepted(id=r.id, account=r.account, status=r.status, reason=r.status_reason) for r in rows)


def _customers(connection: Connection, accounts: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(accounts)):
        query = select(billing_accounts.c.account, billing_accounts.c.customer_code)
        rows = connection.execute(query.where(billing_accounts.c.account.in_(chunk)))
        found.update((r.account, r.customer_code) for r in rows)
    return found


def _file(connection: Connection, label: str, items: Sequence[Item], rows: dict[str, Any]) -> bytes:
    return file_bytes(label, records(items, rows, _customers(connection, {r.account for r in rows.values()})))


def _report(excepted: Sequence[Excepted], unclassified: Sequence[tuple[str, str, str]]) -> str:
    return json.dumps({"excepted": [msgspec.to_builtins(e) for e in excepted],
                       "unclassified": [list(u) for u in unclassified]})  # fmt: skip


def _open_batch(connection: Connection, period: str) -> Any:
    return connection.execute(select(billable_batches).where(billable_batches.c.open_period == period)).first()


def _rows_of(connection: Connection, items: Sequence[Item]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    periods = sorted({i.xdr_period for i in items})
    for chunk in _chunks([i.xdr_id for i in items]):
        query = select(xdrs).where(xdrs.c.period.in_(periods), xdrs.c.id.in_(chunk))
        rows.update((r.id, r) for r in connection.execute(query))
    return rows


def _reexport(connection: Connection, batch: Any, excepted: tuple[Excepted, ...]) -> ExportResult:
    stored = connection.execute(select(billable_items).where(billable_items.c.batch_id == batch.id)).all()
    items = [Item(xdr_id=r.xdr_id, xdr_period=r.xdr_period, item_class=r.item_class, main_item=r.main_item)
             for r in stored]  # fmt: skip
    rows = _rows_of(connection, items)
    ordered = sorted(items, key=lambda i: (i.item_class, rows[i.main_item].account, rows[i.main_item].start_ms,
                                           i.main_item, i.xdr_id != i.main_item, i.xdr_id))  # fmt: skip
    label = batch_label(batch.id, False)
    content = _file(connection, label, ordered, rows)
    if sha256(content) != batch.file_sha256:
        raise BatchError(f"batch {label} no longer reads as it was written (its xDRs were changed): "
                         "confirm or investigate it before exporting the month again")  # fmt: skip
    unclassified = tuple(tuple(u) for u in json.loads(batch.report)["unclassified"])
    return ExportResult(label=label, content=content, items=len(items), reused=True, excepted=excepted,
                        main_items=sum(i.xdr_id == i.main_item for i in items),
                        unclassified=unclassified)  # type: ignore[arg-type]  # fmt: skip


def _new_batch(connection: Connection, period: str, grouping: Grouping, rows: dict[str, Any], simulate: bool,
               excepted: tuple[Excepted, ...], now_ms: int) -> ExportResult:  # fmt: skip
    state = BatchState.SIMULATED if simulate else BatchState.OPEN
    batch_id = connection.execute(insert(billable_batches).values(
        period=period, simulated=int(simulate), state=state, open_period=None if simulate else period,
        items=len(grouping.items), file_sha256="", report=_report(excepted, grouping.unclassified),
        created_ms=now_ms).returning(billable_batches.c.id)).scalar_one()  # fmt: skip
    table: Table = simulated_billable_items if simulate else billable_items
    connection.execute(insert(table), [{"batch_id": batch_id, **msgspec.to_builtins(i),
                                        "outcome": ItemOutcome.EXPORTED} for i in grouping.items])  # fmt: skip
    label = batch_label(batch_id, simulate)
    content = _file(connection, label, grouping.items, rows)
    connection.execute(update(billable_batches).where(billable_batches.c.id == batch_id)
                       .values(file_sha256=sha256(content)))  # fmt: skip
    return ExportResult(label=label, content=content, items=len(grouping.items), reused=False, excepted=excepted,
                        main_items=sum(i.xdr_id == i.main_item for i in grouping.items),
                        unclassified=grouping.unclassified)  # fmt: skip


def export(engine: Engine, period: str, classes: ClassMap, *, simulate: bool = False,
           now_ms: int | None = None) -> ExportResult:  # fmt: skip
    """Export the BILLABLE xDRs of ``period`` (``YYYY-MM``, the xDRs' UTC month) as billable items."""
    now_ms = now_ms or int(time.time() * 1000)
    try:
        with engine.begin() as connection:
            excepted = _excepted(connection, period)
            if not simulate and (batch := _open_batch(connection, period)) is not None:
                return _reexport(connection, batch, excepted)
            found = connection.execute(select(xdrs).where(xdrs.c.period == period,
                                                          xdrs.c.status == XdrStatus.BILLABLE,
                                                          xdrs.c.invoice_id.is_(None))).all()  # fmt: skip
            grouping = group(found, classes)
            if not grouping.items:
                return ExportResult(label=None, content=b"", items=0, main_items=0, reused=False, excepted=excepted,
                                    unclassified=grouping.unclassified)  # fmt: skip
            return _new_batch(connection, period, grouping, {r.id: r for r in found}, simulate, excepted, now_ms)
    except IntegrityError:  # another export opened the month's batch at the same moment: write that one
        if simulate:
            raise
        return export(engine, period, classes, now_ms=now_ms)


def load_confirmation(content: bytes) -> Confirmation:
    """The confirmation file; raises :class:`BatchError` naming what is wrong."""
    try:
        return msgspec.json.decode(content, type=Confirmation)
    except msgspec.DecodeError as error:
        raise BatchError(f"the confirmation is not {{\"batch\", \"sha256\", \"rejected\": [{{\"item\", "
                         f"\"reason\"}}]}} JSON: {error}") from None  # fmt: skip


def _mark(connection: Connection, ids: Sequence[str], periods: Sequence[str], values: dict[str, str]) -> set[str]:
    """Set ``values`` on those of ``ids`` still BILLABLE and on no invoice; the ids changed."""
    done: set[str] = set()
    for chunk in _chunks(ids):
        done.update(connection.execute(
            update(xdrs)
            .where(xdrs.c.period.in_(periods), xdrs.c.id.in_(chunk), xdrs.c.status == XdrStatus.BILLABLE,
                   xdrs.c.invoice_id.is_(None))
            .values(**values).returning(xdrs.c.id)).scalars())  # fmt: skip
    return done


def confirm(engine: Engine, confirmation: Confirmation, *, now_ms: int | None = None) -> ConfirmResult:
    """Apply the receiver's confirmation of a batch (see the module docstring)."""
    now_ms = now_ms or int(time.time() * 1000)
    label = confirmation.batch
    if len(label) != 9 or not label.startswith(("B", "S")) or not label[1:].isdigit():
        raise BatchError(f"batch: {label!r} is not a batch label like B00000007")
    if label.startswith("S"):
        raise BatchError(f"batch {label} is a simulated export: there is nothing to confirm")
    with engine.begin() as connection:
        batches = billable_batches.c
        batch = connection.execute(select(billable_batches)
                                   .where(batches.id == int(label[1:]), batches.simulated == 0)).first()  # fmt: skip
        if batch is None:
            raise BatchError(f"batch: no batch {label}")
        if confirmation.sha256 != batch.file_sha256:
            raise BatchError(f"sha256: {confirmation.sha256!r} is not the hash of batch {label}'s file "
                             f"({batch.file_sha256}): the receiver confirms another file")  # fmt: skip
        items = connection.execute(select(billable_items).where(billable_items.c.batch_id == batch.id)).all()
        if batch.state == BatchState.CONFIRMED:
            outcomes = [i.outcome for i in items]
            changed = tuple(i.xdr_id for i in items if i.outcome == ItemOutcome.CHANGED)
            return ConfirmResult(label=label, billed=outcomes.count(ItemOutcome.BILLED), already=True,
                                 rejected=outcomes.count(ItemOutcome.REJECTED), changed=changed)  # fmt: skip
        mains = {i.xdr_id for i in items if i.xdr_id == i.main_item}
        reasons = {r.item: r.reason.strip() for r in confirmation.rejected}
        unknown = sorted(set(reasons) - mains)
        if unknown:
            raise BatchError(f"rejected: {', '.join(unknown)} is not a main item of batch {label}")
        if any(not reason for reason in reasons.values()):
            raise BatchError("rejected: every rejected item needs a reason")
        periods = sorted({i.xdr_period for i in items})
        outcome: dict[str, str] = {}
        for main, reason in sorted(reasons.items()):
            ids = [i.xdr_id for i in items if i.main_item == main]
            text = f"rejected by the receiving system (batch {label}): {reason}"
            done = _mark(connection, ids, periods, {"status": XdrStatus.BILLABLE_EXCEPTED, "status_reason": text})
            outcome.update({i: ItemOutcome.REJECTED if i in done else ItemOutcome.CHANGED for i in ids})
        rest = [i.xdr_id for i in items if i.main_item not in reasons]
        done = _mark(connection, rest, periods, {"status": XdrStatus.BILLED})
        outcome.update({i: ItemOutcome.BILLED if i in done else ItemOutcome.CHANGED for i in rest})
        for state in (ItemOutcome.BILLED, ItemOutcome.REJECTED, ItemOutcome.CHANGED):
            ids = [i for i, o in outcome.items() if o == state]
            for chunk in _chunks(ids):
                connection.execute(update(billable_items).where(billable_items.c.batch_id == batch.id,
                                                                billable_items.c.xdr_id.in_(chunk))
                                   .values(outcome=state))  # fmt: skip
        connection.execute(update(billable_batches).where(billable_batches.c.id == batch.id)
                           .values(state=BatchState.CONFIRMED, open_period=None, confirmed_ms=now_ms))  # fmt: skip
    values = list(outcome.values())
    return ConfirmResult(label=label, billed=values.count(ItemOutcome.BILLED), already=False,
                         rejected=values.count(ItemOutcome.REJECTED),
                         changed=tuple(sorted(i for i, o in outcome.items() if o == ItemOutcome.CHANGED)))  # fmt: skip
