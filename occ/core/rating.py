"""The rate step of the engine: what a request asks to have priced, priced vectorised for a whole batch.

Each request becomes rows (:class:`Row`): one per quota item of a session request, one for an event or an
authorization. A session is priced on its cumulative usage with the plan, destination, start time and tariff it
began with, so a row's call carries the usage so far plus what is reported now. :func:`rate` prices the rows of one
tariff version in one ``rate_batch`` (through ``breakpoints``): each row's cumulative cost, a ladder of grant
candidates and, where the credit may not cover the whole request (``allocation.py``), the exact largest grant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import msgspec
import numpy as np

from occ.core.allocation import Items, allocate
from occ.core.requests import Code, Kind, Work
from rating_engine import (
    Call,
    CallBatch,
    CallPricing,
    CompiledTariff,
    RatingFailed,
    Service,
    affordable_units,
    breakpoints,
    call_affordable_units,
    call_breakpoints,
)
from rating_engine import Rated as RatedCall
from rating_engine.tariff import MAX_USAGE, MAX_VOICE_SECONDS

NOT_READ = 2**62
"""Credit of an account that was not read: large enough that rating never searches for a smaller grant."""
LADDER_POINTS = 8
SCALAR_MAX_ROWS = 6
"""Batches of at most this many rows are rated one by one: below it NumPy's fixed cost per batch outweighs its speed
per row (``benchmarks/bench_rating_path.py``: with credit enough for the ladder the scalar path is cheaper up to
6 rows, 48 against 161 µs of CPU for one; where the exact grant is searched for, up to 16)."""
AUTHORIZE_CAP = {Service.VOICE: 4 * 3600, Service.DATA: 10 * 2**30, Service.MESSAGE: 100}
USAGE_LIMIT = {Service.VOICE: MAX_VOICE_SECONDS, Service.DATA: MAX_USAGE, Service.MESSAGE: MAX_USAGE}


class Account:
    """An account as ``read.lua`` read it (``[balance, credit_limit, reserved, status, plan, currency]``)."""

    __slots__ = ("available", "balance", "currency", "limit", "plan", "reserved", "status")

    def __init__(self, fields: list) -> None:
        self.balance, self.limit, self.reserved = (int(f or 0) for f in fields[:3])
        self.status, self.plan, self.currency = fields[3] or "", fields[4] or "", fields[5] or ""
        self.available = self.balance + self.limit - self.reserved

    @classmethod
    def missing(cls) -> Account:
        """Stands in for an account that does not exist (its start is refused by the script)."""
        return cls([0, 0, 0, "", "", ""])

    @classmethod
    def assumed(cls, plan: str, currency: str) -> Account:
        """An account known from earlier requests but not read now: its credit is left to the script."""
        account = cls([0, 0, 0, "ACTIVE", plan, currency])
        account.available = NOT_READ
        return account


class Row:
    """One thing to rate: a quota item of a session request, an event, or an authorization.

    ``call.usage`` is the session's cumulative usage including what is reported now; ``credit`` is the account's
    available credit plus ``back``, what applying this item gives back first (its old hold and committed cost)."""

    __slots__ = ("back", "call", "credit", "exact_wanted", "position", "quota", "requested")

    def __init__(self, position: int, quota: int, call: Call, requested: int, credit: int, back: int = 0,
                 *, exact_wanted: bool = False) -> None:  # fmt: skip
        self.position, self.quota, self.call, self.requested, self.credit = position, quota, call, requested, credit
        self.back, self.exact_wanted = back, exact_wanted


class Rated(msgspec.Struct):
    """A row, priced.

    Attributes:
        used_total: the cumulative usage priced.
        requested: units asked for (capped below the usage limit; 0 on an end).
        cost_total: the cumulative cost of ``used_total``, micro-units.
        breakpoints: grant candidates ``(units_total, cost_total)``, largest first.
        group, ledger, rate: destination group, ledger code and rate id of the pricing.
        exact_units, exact_cost: the exact largest grant the credit covers, where it was searched for (else 0).
        failure: the result code when the row could not be rated (0 otherwise), with ``reason``.
    """

    used_total: int
    requested: int
    cost_total: int = 0
    breakpoints: list[tuple[int, int]] = []
    group: str = ""
    ledger: str = ""
    rate: str = ""
    exact_units: int = 0
    exact_cost: int = 0
    failure: int = 0
    reason: str = ""


def rows_for(position: int, work: Work, account: Account, session: list | None, rgs: list) -> list[Row]:
    """The rows of one request; ``session`` and ``rgs`` as ``read.lua`` read them (None and [] for a start)."""
    if work.kind is Kind.AUTHORIZE:
        call = Call(account.plan, work.service, work.destination, work.event_time_s, 0)
        cap = min(work.units or AUTHORIZE_CAP[work.service], USAGE_LIMIT[work.service])
        return [Row(position, 0, call, cap, account.available, exact_wanted=True)]
    if work.kind is Kind.EVENT:
        call = Call(account.plan, work.service, work.destination, work.event_time_s, work.units)
        return [Row(position, 0, call, 0, 0)]
    if work.kind is Kind.START:
        plan, destination, start_s = account.plan, work.destination, work.event_time_s
    else:
        plan, destination, start_s = session[2], session[3], int(session[4])
    rows = []
    for index, quota in enumerate(work.quotas):
        used_before, cost_before, hold = (int(value or 0) for value in rgs[index][:3]) if rgs else (0, 0, 0)
        used_total = used_before + quota.used
        # Nothing beyond the usage limit can be rated: ask for at most what is left below it.
        requested = (
            0 if work.kind is Kind.END else max(0, min(quota.requested, USAGE_LIMIT[quota.service] - used_total))
        )
        call = Call(plan, quota.service, destination, start_s, used_total)
        # Credit for the grant as of the read: the session's own hold on this rating group is given back first,
        # and the usage reported now is debited first (``rate`` subtracts its cumulative cost).
        back = hold + cost_before
        rows.append(Row(position, index, call, requested, account.available + back, back))
    return rows


def rate(tariff: CompiledTariff, rows: list[Row]) -> dict[int, list[Rated]]:
    """Price ``rows`` (all of one tariff version); the rated rows by request position. A few rows are priced one by
    one (``rate_scalar``), more in one vectorised pass (``rate_vectorised``): both give the same answers, and the
    scalar form saves NumPy's fixed cost per batch where that is most of the work (``SCALAR_MAX_ROWS``)."""
    return rate_scalar(tariff, rows) if len(rows) <= SCALAR_MAX_ROWS else rate_vectorised(tariff, rows)


def rate_scalar(tariff: CompiledTariff, rows: list[Row]) -> dict[int, list[Rated]]:
    """Price ``rows`` one call at a time with the scalar rater (``CallPricing``)."""
    pricings = [CallPricing(tariff.tariff, row.call, row.call.usage + row.requested) for row in rows]
    ladders = [call_breakpoints(pricing, row.call.usage, row.requested, LADDER_POINTS)
               for pricing, row in zip(pricings, rows, strict=True)]  # fmt: skip
    usage_ok = [not isinstance(ladder.base, RatingFailed) for ladder in ladders]
    usage_cost = [ladder.base.cost_micros if ok else 0 for ladder, ok in zip(ladders, usage_ok, strict=True)]
    top_cost = [ladder.cost_micros[0] for ladder in ladders]

    def search(chosen: np.ndarray, credit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = [call_affordable_units(pricings[i], rows[i].call.usage, c, rows[i].requested)
                 for i, c in zip(chosen.tolist(), credit.tolist(), strict=True)]  # fmt: skip
        return np.array([units for units, _ in found], dtype=np.int64), np.array([c for _, c in found], dtype=np.int64)

    exact_units, exact_cost = allocate(
        _items(rows, usage_cost, top_cost, [ladder.failure == 0 for ladder in ladders], usage_ok), search
    )
    rated: dict[int, list[Rated]] = defaultdict(list)
    for i, (row, ladder) in enumerate(zip(rows, ladders, strict=True)):
        points = list(zip(ladder.units, ladder.cost_micros, strict=True)) if ladder.failure == 0 else []
        rated[row.position].append(_priced(row, ladder.base, points, int(exact_units[i]), int(exact_cost[i])))
    return rated


def rate_vectorised(tariff: CompiledTariff, rows: list[Row]) -> dict[int, list[Rated]]:
    """Price ``rows`` in one vectorised pass."""
    batch = CallBatch.from_calls(tariff, [row.call for row in rows])
    used = batch.usage
    requested = np.array([row.requested for row in rows], dtype=np.int64)
    ladder = breakpoints(tariff, batch, used, requested, LADDER_POINTS)
    base = ladder.base

    def search(chosen: np.ndarray, credit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        units, cost, _ = affordable_units(tariff, batch.take(chosen), used[chosen], credit, requested[chosen])
        return units, cost

    exact_units, exact_cost = allocate(
        _items(rows, base.cost_micros, ladder.cost_micros[:, 0], ladder.failure == 0, base.failure == 0), search
    )
    rated: dict[int, list[Rated]] = defaultdict(list)
    for i, row in enumerate(rows):
        try:
            priced = base.result(i, batch)
        except RatingFailed as failed:
            priced = failed
        points = list(zip(ladder.units[i].tolist(), ladder.cost_micros[i].tolist(), strict=True)) \
            if ladder.failure[i] == 0 else []  # fmt: skip
        rated[row.position].append(_priced(row, priced, points, int(exact_units[i]), int(exact_cost[i])))
    return rated


def _items(rows: list[Row], usage_cost: Sequence[int] | np.ndarray, top_total_cost: Sequence[int] | np.ndarray,
           ladder_ok: Sequence[bool] | np.ndarray, usage_ok: Sequence[bool] | np.ndarray) -> Items:  # fmt: skip
    """The quota items of ``rows`` for ``allocate``; costs are cumulative (the ladder's top: the total at its top)."""
    usage_cost = np.asarray(usage_cost, dtype=np.int64)
    return Items(
        request=np.array([row.position for row in rows], dtype=np.int64),
        index=np.array([row.quota for row in rows], dtype=np.int64),
        credit_micros=np.array([row.credit for row in rows], dtype=np.int64) - usage_cost,
        back_micros=np.array([row.back for row in rows], dtype=np.int64),
        usage_cost_micros=usage_cost,
        top_cost_micros=np.asarray(top_total_cost, dtype=np.int64) - usage_cost,
        requested=np.array([row.requested for row in rows], dtype=np.int64),
        ladder_ok=np.asarray(ladder_ok, dtype=bool),
        usage_ok=np.asarray(usage_ok, dtype=bool),
        exact_wanted=np.array([row.exact_wanted for row in rows], dtype=bool),
    )


def _priced(row: Row, base: RatedCall | RatingFailed, ladder: list[tuple[int, int]], exact_units: int,
            exact_cost: int) -> Rated:  # fmt: skip
    """The rated row: its base rating (or why it failed), its ladder of candidates and its exact grant."""
    used = row.call.usage
    if isinstance(base, RatingFailed):
        return Rated(used, row.requested, failure=int(Code.RATING_FAILED), reason=base.reason)
    points = dict(ladder)
    if exact_units > 0:
        points[used + exact_units] = base.cost_micros + exact_cost
    return Rated(
        used,
        row.requested,
        cost_total=base.cost_micros,
        breakpoints=sorted(points.items(), reverse=True),
        group=base.group,
        ledger=str(base.ledger_code),
        rate=base.rate,
        exact_units=exact_units,
        exact_cost=exact_cost,
    )
