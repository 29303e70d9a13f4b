"""The rate step of the engine: what a request asks to have priced, priced vectorised for a whole batch.

Each request becomes rows (:class:`Row`): one per quota item of a session request, one for an event or an
authorization. A session is priced on its cumulative usage with the plan, destination, start time and tariff it
began with, so a row's call carries the usage so far plus what is reported now. :func:`rate` prices the rows of one
tariff version in one ``rate_batch`` (through ``breakpoints``): each row's cumulative cost, a ladder of grant
candidates and, where the credit may not cover the whole request (``allocation.py``), the exact largest grant.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec
import numpy as np

from occ.core.allocation import Items, allocate
from occ.core.requests import Code, Kind, Work
from rating_engine import Call, CallBatch, CompiledTariff, Service, affordable_units, breakpoints
from rating_engine.tariff import MAX_USAGE, MAX_VOICE_SECONDS

NOT_READ = 2**62
"""Credit of an account that was not read: large enough that rating never searches for a smaller grant."""
LADDER_POINTS = 8
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
    """Price ``rows`` (all of one tariff version) in one vectorised pass; the rated rows by request position."""
    batch = CallBatch.from_calls(tariff, [row.call for row in rows])
    used = batch.usage
    requested = np.array([row.requested for row in rows], dtype=np.int64)
    ladder = breakpoints(tariff, batch, used, requested, LADDER_POINTS)
    base = ladder.base
    items = Items(
        request=np.array([row.position for row in rows], dtype=np.int64),
        index=np.array([row.quota for row in rows], dtype=np.int64),
        credit_micros=np.array([row.credit for row in rows], dtype=np.int64) - base.cost_micros,
        back_micros=np.array([row.back for row in rows], dtype=np.int64),
        usage_cost_micros=base.cost_micros,
        top_cost_micros=ladder.cost_micros[:, 0] - base.cost_micros,
        requested=requested,
        ladder_ok=ladder.failure == 0,
        usage_ok=base.failure == 0,
        exact_wanted=np.array([row.exact_wanted for row in rows], dtype=bool),
    )

    def search(chosen: np.ndarray, credit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        units, cost, _ = affordable_units(tariff, batch.take(chosen), used[chosen], credit, requested[chosen])
        return units, cost

    exact_units, exact_cost = allocate(items, search)
    rated: dict[int, list[Rated]] = defaultdict(list)
    for i, row in enumerate(rows):
        if base.failure[i]:
            item = Rated(int(used[i]), int(requested[i]), failure=int(Code.RATING_FAILED), reason=base.reason(i, batch))
        else:
            points = {int(u): int(c) for u, c in zip(ladder.units[i], ladder.cost_micros[i], strict=True)
                      if ladder.failure[i] == 0}  # fmt: skip
            if exact_units[i] > 0:
                points[int(used[i] + exact_units[i])] = int(base.cost_micros[i] + exact_cost[i])
            item = Rated(
                int(used[i]),
                int(requested[i]),
                cost_total=int(base.cost_micros[i]),
                breakpoints=sorted(points.items(), reverse=True),
                group=base.group_name(i),
                ledger=str(int(base.ledger_code[i])),
                rate=base.rate_name(i),
                exact_units=int(exact_units[i]),
                exact_cost=int(exact_cost[i]),
            )
        rated[row.position].append(item)
    return rated
