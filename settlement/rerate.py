"""``occ rerate``: price settled xDRs again with a tariff, and correct the ones whose price changed.

**What is re-rated.** Original xDRs (revision 0) of kind ``session``, ``event_charge`` or ``event_refund``, status
BILLABLE or BILLED, whose start falls in ``[from, to)`` (UTC; ``period``, the start's month, prunes the scan),
optionally of one account: a call is re-rated with the month it is billed in, whenever it was settled.
Each is priced as the online core priced it: its plan, service, called number (normalised with the tariff's
country code), start and units as one call. A session xDR's units are the rating group's cumulative usage from the
call's start, and the online core charged exactly the price of that usage, in parts.

**Corrections.** An xDR whose new price differs from its *effective* cost (that of its latest revision, or its
own) gets revision ``n`` = latest + 1, both rows BILLABLE, with ``corrects`` = the original's id and the original's
period and times (a re-issued invoice of that period shows them):

- ``<id>:r<n>:rev``, kind ``correction``: cost = −effective cost (it reverses the original, or revision n−1);
- ``<id>:r<n>``, the original's kind: the new cost, with the new tariff's hash, group, ledger code and rate.

When the xDR reversed is BILLED, its invoice goes into ``reissue_requests``. Re-running a rerate with the same tariff
finds every effective cost equal to the new price, so it changes nothing; a later rerate reverses the latest
revision, never the original again.

**Balances.** Each account's balance is corrected by Σ(old − new) over its corrections (a lower price gives money
back), as one ADJUSTMENT through Redis (``lua/transaction.lua``) with ledger code ``--ledger`` (default
:data:`DEFAULT_LEDGER`) and idempotency key ``rerate:<run id>:<account>``. It reaches SQL like every money
movement (stream → ``occ settle`` → a ledger row), so ``occ reconcile`` stays clean. Settlement books no xDR for it
(``settlement.entries.RERATE_KEY``): the corrections already invoice the difference.

**Order of effects**, so that a crash anywhere neither loses nor doubles a correction:

1. Plan (:mod:`settlement.rerate_plan`): read and rate; nothing is written (``--dry-run`` stops here).
2. Whole accounts per SQL transaction (several, up to :data:`WRITE_ROWS` corrections): each account's correction
   xDRs, re-issue requests and one ``rerate_adjustments`` row holding the balance correction owed (``applied_ms``
   NULL) commit together. Correction ids are deterministic primary keys, and the xDRs reversed are read again
   (locked on PostgreSQL) and must still have the cost planned: a concurrent rerate of the same xDR makes the
   transaction fail instead of correcting twice (its accounts are then tried one by one, and only those in
   conflict are left out, reported).
3. Every ``rerate_adjustments`` row not yet applied (this run's and any a crashed run left) is sent to Redis with
   its idempotency key, then marked applied.

A crash before 2 commits changes nothing. Between 2 and 3, the xDRs are corrected and the adjustment is owed in SQL:
the next ``occ rerate`` (any range, also one with nothing to re-rate) applies it in its step 3. In 3, after Redis
took an adjustment but before it was marked, the next run sends it again with the same key and request and Redis
answers "dup": nothing is moved twice. The other order (Redis first) could not be recovered: a re-run would see the old
xDRs again and correct the balance a second time under a new key.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from itertools import groupby
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from occ.store.keys import RERATE_KEY
from occ.store.scripts import Store
from settlement.records import XdrRow
from settlement.rerate_plan import IN_CHUNK, Correction, Plan, chunked, parse_time, periods_between, plan
from settlement.store.schema import reissue_requests, rerate_adjustments, xdrs
from settlement.vocabulary import XdrStatus
from settlement.writer import row_dicts

__all__ = [
    "DEFAULT_LEDGER", "Adjustment", "Conflict", "Correction", "Plan", "apply_adjustments", "new_run_id", "owed",
    "parse_time", "periods_between", "plan", "write",
]  # fmt: skip

DEFAULT_LEDGER = 400000090
"""Ledger code of the balance corrections a rerate makes: "rating corrections" (change it with ``--ledger``)."""
WRITE_ROWS = 5_000  # corrections per SQL transaction (whole accounts; one account may exceed it)


class Adjustment(msgspec.Struct, frozen=True):
    """The outcome of sending one owed balance correction to Redis.

    Attributes:
        key: its idempotency key.
        account: the account.
        amount_micros: the balance change.
        outcome: "ok", "dup" (Redis had it already), or "missing" / "conflict" / "limit" (not applied, still owed).
    """

    key: str
    account: str
    amount_micros: int
    outcome: str


class Conflict(RuntimeError):
    """An xDR changed between planning and writing (another rerate, or billing): the account was left as it was."""


# -- 2. write the corrections (1., the plan, is settlement.rerate_plan) ---------------------------------------


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def write(
    engine: Engine,
    corrections: Iterable[Correction],
    *,
    run_id: str,
    tariff_hash: str,
    ledger_code: int = DEFAULT_LEDGER,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """Write the corrections, whole accounts at a time: up to :data:`WRITE_ROWS` corrections of several accounts
    per transaction, and account by account when such a transaction meets a conflict, so that only the accounts in
    conflict are left out. Returns (accounts written, [(account, why not)])."""
    ordered = sorted(corrections, key=lambda c: (c.account, c.original))
    accounts = [(account, list(group)) for account, group in groupby(ordered, lambda c: c.account)]
    written, conflicts = 0, []
    for chunk in _account_chunks(accounts, WRITE_ROWS):
        try:
            _transaction(engine, chunk, run_id, tariff_hash, ledger_code)
            written += len(chunk)
        except Conflict:
            for one in chunk:
                try:
                    _transaction(engine, [one], run_id, tariff_hash, ledger_code)
                    written += 1
                except Conflict as error:
                    conflicts.append((one[0], str(error)))
        if progress is not None:
            progress(written + len(conflicts))
    return written, conflicts


def _account_chunks(
    accounts: list[tuple[str, list[Correction]]], max_rows: int
) -> Iterable[list[tuple[str, list[Correction]]]]:
    chunk: list[tuple[str, list[Correction]]] = []
    rows = 0
    for account in accounts:
        if chunk and rows + len(account[1]) > max_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.append(account)
        rows += len(account[1])
    if chunk:
        yield chunk


def _transaction(
    engine: Engine, accounts: list[tuple[str, list[Correction]]], run_id: str, tariff_hash: str, ledger_code: int
) -> None:
    try:
        with engine.begin() as connection:
            for account, corrections in accounts:
                _write_account(connection, account, corrections, run_id, tariff_hash, ledger_code)
    except IntegrityError as error:  # a correction id (or this run's adjustment) written meanwhile by another run
        raise Conflict(f"another rerate corrected these xDRs meanwhile: {str(error.orig).splitlines()[0]}") from None


def _write_account(
    connection: Connection,
    account: str,
    corrections: list[Correction],
    run_id: str,
    tariff_hash: str,
    ledger_code: int,
) -> None:
    now_ms = int(time.time() * 1000)
    found = _locked(connection, sorted({c.original for c in corrections} | {c.reversed_id for c in corrections}))
    rows: list[XdrRow] = []
    invoices: set[int] = set()
    for c in corrections:
        reversed_row, original = found.get(c.reversed_id), found.get(c.original)
        if reversed_row is None or original is None or reversed_row.cost != c.old_cost_micros:
            raise Conflict(f"xDR {c.reversed_id} changed since it was priced; re-run the rerate")
        if reversed_row.status == XdrStatus.BILLED and reversed_row.invoice_id is not None:
            invoices.add(reversed_row.invoice_id)
        rows.extend(_revision(c, reversed_row, original, run_id=run_id, tariff_hash=tariff_hash, now_ms=now_ms))
    connection.execute(insert(xdrs), row_dicts(rows))  # a plain insert: a revision written meanwhile fails it
    if invoices:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        reason = f"rerate {run_id} corrected xDRs of account {account}"
        connection.execute(
            dialect.insert(reissue_requests).on_conflict_do_nothing(),
            [{"invoice_id": i, "requested_ms": now_ms, "reason": reason} for i in sorted(invoices)],
        )
    amount = sum(c.balance_change_micros for c in corrections)
    if amount:
        connection.execute(
            insert(rerate_adjustments),
            {"idempotency_key": f"{RERATE_KEY}{run_id}:{account}", "run_id": run_id, "account": account,
             "amount": amount, "ledger_code": str(ledger_code), "xdrs": len(corrections),
             "description": f"rerate {run_id}: {len(corrections)} xDRs re-rated", "created_ms": now_ms},
        )  # fmt: skip


def _locked(connection: Connection, ids: list[str]) -> dict[str, XdrRow]:
    """The xDRs with these ids, read again (and locked, on PostgreSQL) in the writing transaction."""
    found = {}
    for chunk in chunked(ids, IN_CHUNK):
        query = select(xdrs).where(xdrs.c.id.in_(chunk)).with_for_update()
        found.update({r.id: XdrRow(**r._asdict()) for r in connection.execute(query)})
    return found


def _revision(
    c: Correction, reversed_row: XdrRow, original: XdrRow, *, run_id: str, tariff_hash: str, now_ms: int
) -> tuple[XdrRow, XdrRow]:
    """Revision ``n`` of an xDR: the reversal of ``reversed_row`` (kind ``correction``) and the original at its new
    price, both BILLABLE in the original's period."""
    replace = msgspec.structs.replace
    # A revision is billed afresh: never late (settlement/billing/late.py), whatever the row it copies was.
    common = {"revision": c.revision, "corrects": c.original, "status": XdrStatus.BILLABLE, "status_reason": "",
              "invoice_id": None, "created_ms": now_ms, "late_period_start_ms": None,
              "late_period_end_ms": None}  # fmt: skip
    tax = reversed_row.tax_amount
    reversal = replace(reversed_row, **common, id=f"{c.original}:r{c.revision}:rev", kind="correction",
                       cost=-c.old_cost_micros, tax_amount=None if tax is None else -tax,
                       description=f"reverses {c.reversed_id} (rerate {run_id})")  # fmt: skip
    repriced = replace(original, **common, id=f"{c.original}:r{c.revision}", cost=c.new_cost_micros,
                       tariff_hash=tariff_hash, dest_group=c.group, ledger_code=c.ledger_code, rate_id=c.rate,
                       tax_amount=None, description=f"rerate {run_id}")  # fmt: skip
    return reversal, repriced


# -- 3. apply the balance corrections --------------------------------------------------------------------------


def owed(engine: Engine) -> list[Row[Any]]:
    """Balance corrections written but not yet applied to Redis, oldest first."""
    table = rerate_adjustments
    query = select(table).where(table.c.applied_ms.is_(None)).order_by(table.c.created_ms, table.c.idempotency_key)
    with engine.connect() as connection:
        return connection.execute(query).all()


async def apply_adjustments(store: Store, engine: Engine) -> list[Adjustment]:
    """Send every owed balance correction to Redis (idempotently) and mark those Redis took; returns the outcomes."""
    outcomes = []
    for row in owed(engine):
        outcome, transaction_id, _, _ = await store.transact(
            row.account,
            key=row.idempotency_key,
            kind="adjustment",
            amount_micros=row.amount,
            ledger_code=int(row.ledger_code),
            description=row.description,
        )
        if outcome in ("ok", "dup"):
            with engine.begin() as connection:
                connection.execute(
                    update(rerate_adjustments)
                    .where(rerate_adjustments.c.idempotency_key == row.idempotency_key)
                    .values(applied_ms=int(time.time() * 1000), transaction_id=transaction_id)
                )
        outcomes.append(Adjustment(row.idempotency_key, row.account, row.amount, outcome))
    return outcomes


