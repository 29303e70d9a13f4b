"""``occ rerate``, step 1: price settled xDRs again with a tariff and list the ones whose price changed.

Writes nothing (``occ rerate --dry-run`` stops here). What is re-rated, and how a correction is made of what this
finds, is told in :mod:`settlement.rerate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Row, select, tuple_

from rating_engine import CallBatch, CompiledTariff, Service, normalize_number, rate_batch
from settlement.entries import period_of
from settlement.store.schema import xdrs
from settlement.vocabulary import USAGE_KINDS, XdrStatus

RERATED_KINDS = tuple(sorted(USAGE_KINDS))
BATCH = 10_000
IN_CHUNK = 500  # ids per ``IN (…)`` list


class Correction(msgspec.Struct, frozen=True):
    """One re-rated xDR whose price changed.

    Attributes:
        original: the original xDR's id.
        account: its account.
        currency: its currency.
        revision: the number ``n`` of the new revision.
        reversed_id: the xDR the reversal cancels: the original, or revision n−1.
        old_cost_micros: the effective cost now (what the customer owes for the item).
        new_cost_micros: the cost at the new price.
        group: destination group of the new pricing.
        ledger_code: ledger code of the new pricing.
        rate: rate id of the new pricing.
    """

    original: str
    account: str
    currency: str
    revision: int
    reversed_id: str
    old_cost_micros: int
    new_cost_micros: int
    group: str
    ledger_code: str
    rate: str

    @property
    def balance_change_micros(self) -> int:
        """What the balance gets back (old − new; negative: a further debit)."""
        return self.old_cost_micros - self.new_cost_micros


class Plan(msgspec.Struct):
    """What a rerate would change, before anything is written.

    Attributes:
        tariff_hash: content hash of the tariff used.
        examined: xDRs priced again.
        corrections: the ones whose price changed, by account then id.
        failures: (xDR id, reason) of those the tariff could not price; they are left as they are.
    """

    tariff_hash: str
    examined: int = 0
    corrections: list[Correction] = []
    failures: list[tuple[str, str]] = []

    def by_account(self) -> dict[str, tuple[int, int, int, str]]:
        """account → (Σ old cost, Σ new cost, corrections, currency)."""
        totals: dict[str, tuple[int, int, int, str]] = {}
        for c in self.corrections:
            old, new, n, _ = totals.get(c.account, (0, 0, 0, c.currency))
            totals[c.account] = (old + c.old_cost_micros, new + c.new_cost_micros, n + 1, c.currency)
        return totals


def parse_time(text: str) -> int:
    """``YYYY-MM-DD`` or an ISO 8601 date-time (UTC unless it names an offset) → Unix ms; ValueError otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD (or an ISO 8601 date-time)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def periods_between(from_ms: int, to_ms: int) -> list[str]:
    """The months ``YYYY-MM`` that ``[from_ms, to_ms)`` touches."""
    first, last = period_of(from_ms), period_of(to_ms - 1)
    year, month = int(first[:4]), int(first[5:])
    found = []
    while (period := f"{year:04d}-{month:02d}") <= last:
        found.append(period)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def plan(
    engine: Engine,
    tariff: CompiledTariff,
    *,
    from_ms: int,
    to_ms: int,
    account: str | None = None,
    batch: int = BATCH,
    progress: Callable[[Plan], None] | None = None,
) -> Plan:
    """Price every selected xDR again and list the corrections; writes nothing."""
    result = Plan(tariff.hash)
    query = select(xdrs).where(
        xdrs.c.start_ms >= from_ms,
        xdrs.c.start_ms < to_ms,
        xdrs.c.kind.in_(RERATED_KINDS),
        xdrs.c.status.in_((XdrStatus.BILLABLE, XdrStatus.BILLED)),
        xdrs.c.revision == 0,
    )
    if account is not None:
        query = query.where(xdrs.c.account == account)
    # Month by month, in pages ordered by (account, id) that the (period, account, status) index serves; each page
    # is its own short read, so a long rerate never holds the store (SQLite's lock) between pages.
    for period in periods_between(from_ms, to_ms):
        after: tuple[str, str] | None = None
        while True:
            page = query.where(xdrs.c.period == period)
            if after is not None:
                page = page.where(tuple_(xdrs.c.account, xdrs.c.id) > tuple_(*after))
            with engine.connect() as connection:
                rows = connection.execute(page.order_by(xdrs.c.account, xdrs.c.id).limit(batch)).all()
                if not rows:
                    break
                latest = _latest_revisions(connection, [r.id for r in rows])
            _price(tariff, rows, latest, result)
            result.examined += len(rows)
            after = (rows[-1].account, rows[-1].id)
            if progress is not None:
                progress(result)
    return result


def _latest_revisions(connection: Connection, ids: list[str]) -> dict[str, Row[Any]]:
    """original id → its latest revision (the row of the new cost, not the reversal), for those corrected before."""
    latest: dict[str, Row[Any]] = {}
    for chunk in chunked(ids, IN_CHUNK):
        query = select(xdrs.c.id, xdrs.c.corrects, xdrs.c.revision, xdrs.c.cost).where(
            xdrs.c.corrects.in_(chunk), xdrs.c.kind != "correction"
        )
        for row in connection.execute(query):
            if row.corrects not in latest or row.revision > latest[row.corrects].revision:
                latest[row.corrects] = row
    return latest


def _price(tariff: CompiledTariff, rows: list[Row[Any]], latest: dict[str, Row[Any]], result: Plan) -> None:
    country = tariff.tariff.country_code
    destinations, failed = [], {}
    for i, row in enumerate(rows):
        destination = ""
        try:
            destination = normalize_number(row.called, country) if row.called.strip() else ""
        except ValueError as error:
            failed[i] = str(error)
        if row.currency != tariff.tariff.currency:
            failed[i] = f"the tariff is in {tariff.tariff.currency}, the xDR in {row.currency}"
        destinations.append(destination)
    calls = CallBatch.of(
        tariff,
        plans=[row.plan for row in rows],
        services=[int(Service.parse(row.service)) for row in rows],
        destinations=destinations,
        starts=[row.start_ms // 1000 for row in rows],
        usages=[row.units for row in rows],
    )
    rated = rate_batch(tariff, calls)
    for i, row in enumerate(rows):
        if i not in failed and rated.failure[i]:
            failed[i] = rated.reason(i, calls)
        if i in failed:
            result.failures.append((row.id, failed[i]))
            continue
        price = int(rated.cost_micros[i])
        new_cost = -price if row.kind == "event_refund" else price
        current = latest.get(row.id)
        if current is None:
            old_cost, revision, reversed_id = row.cost, 0, row.id
        else:
            old_cost, revision, reversed_id = current.cost, current.revision, current.id
        if new_cost == old_cost:
            continue
        result.corrections.append(
            Correction(
                original=row.id,
                account=row.account,
                currency=row.currency,
                revision=revision + 1,
                reversed_id=reversed_id,
                old_cost_micros=old_cost,
                new_cost_micros=new_cost,
                group=rated.group_name(i),
                ledger_code=str(int(rated.ledger_code[i])),
                rate=rated.rate_name(i),
            )
        )


def chunked(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
