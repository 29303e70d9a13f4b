"""Quota support for the online core: what a session's next grant costs, and how much credit buys.

A session is always priced on its cumulative usage: granting ``x`` more units to a session that has used ``U``
costs ``cost(U + x) - cost(U)``, so the connect fee and the rounding of the first step apply once per call, however
many grants it takes. Both functions below work on whole batches with the vectorised rater; cost is non-decreasing in
usage (a property test checks it), which makes the binary search in ``affordable_units`` exact.
"""

from __future__ import annotations

import numpy as np

from rating_engine.compile import CompiledTariff
from rating_engine.rate import CallBatch, rate_batch


class Breakpoints:
    """Grant candidates per call, largest first.

    Attributes:
        units: ``(n, points)`` total session usage at each candidate (``used`` + grant), non-increasing along a row.
        cost_micros: ``(n, points)`` cumulative cost of the session at those usages, non-increasing along a row.
        base_cost_micros: ``(n,)`` cumulative cost of the usage already reported.
        failure: ``(n,)`` ``Failure`` per call; rows of failed calls are zero.
    """

    __slots__ = ("base_cost_micros", "cost_micros", "failure", "units")

    def __init__(self, units: np.ndarray, cost: np.ndarray, base: np.ndarray, failure: np.ndarray) -> None:
        self.units, self.cost_micros, self.base_cost_micros, self.failure = units, cost, base, failure


def breakpoints(
    tariff: CompiledTariff, batch: CallBatch, used: np.ndarray, requested: np.ndarray, points: int = 8
) -> Breakpoints:
    """Candidate grants ``requested, requested/2, requested/4 …`` (at least 1 unit) on top of ``used``.

    The online core hands these to the reservation script, which grants the largest candidate the account's available
    credit covers at that moment.
    """
    used, requested = np.asarray(used, dtype=np.int64), np.asarray(requested, dtype=np.int64)
    n = len(batch)
    grants = np.maximum(requested[:, None] >> np.arange(points, dtype=np.int64)[None, :], 1)
    grants = np.where(requested[:, None] > 0, grants, 0)
    usage = np.concatenate([used[:, None], used[:, None] + grants], axis=1)  # column 0: the usage already reported
    repeated = _subset(batch, np.repeat(np.arange(n), points + 1))
    rated = rate_batch(tariff, repeated.with_usage(usage.ravel()))
    cost = rated.cost_micros.reshape(n, points + 1)
    failure = rated.failure.reshape(n, points + 1).max(axis=1)
    ok = (failure == 0)[:, None]
    return Breakpoints(
        np.where(ok, usage[:, 1:], 0), np.where(ok, cost[:, 1:], 0), np.where(ok[:, 0], cost[:, 0], 0), failure
    )


def affordable_units(
    tariff: CompiledTariff, batch: CallBatch, used: np.ndarray, credit_micros: np.ndarray, cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The most units (≤ ``cap``) each session can add on top of ``used`` for at most ``credit_micros``.

    Returns ``(units, cost_micros, failure)``: the extra units, what they add to the session's cost, and the rating
    failure per call (units and cost are 0 where it failed or where credit is negative).
    """
    used = np.asarray(used, dtype=np.int64)
    credit = np.asarray(credit_micros, dtype=np.int64)
    low = np.zeros(len(batch), dtype=np.int64)  # affordable (adding nothing costs nothing)
    high = np.where(credit >= 0, np.asarray(cap, dtype=np.int64), 0)  # the answer is in [low, high]
    base = rate_batch(tariff, batch.with_usage(used))
    failure = base.failure.copy()
    high[failure != 0] = 0
    while True:
        open_ = np.flatnonzero(low < high)
        if not len(open_):
            break
        middle = (low[open_] + high[open_] + 1) // 2
        probe = rate_batch(tariff, _subset(batch, open_).with_usage(used[open_] + middle))
        failure[open_] = np.maximum(failure[open_], probe.failure)
        fits = (probe.cost_micros - base.cost_micros[open_] <= credit[open_]) & (probe.failure == 0)
        low[open_] = np.where(fits, middle, low[open_])
        high[open_] = np.where(fits, high[open_], np.where(probe.failure == 0, middle - 1, low[open_]))
    extra = rate_batch(tariff, batch.with_usage(used + low)).cost_micros - base.cost_micros
    failed = failure != 0
    return np.where(failed, 0, low), np.where(failed, 0, extra), failure


def _repeat(batch: CallBatch, times: int) -> CallBatch:
    return CallBatch(
        *(np.repeat(column, times) for column in (batch.plan, batch.service, batch.key, batch.start, batch.usage))
    )


def _subset(batch: CallBatch, rows: np.ndarray) -> CallBatch:
    return CallBatch(batch.plan[rows], batch.service[rows], batch.key[rows], batch.start[rows], batch.usage[rows])
