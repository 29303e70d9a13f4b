"""Quota support for the online core: what a session's next grant costs, and how much credit buys.

A session is always priced on its cumulative usage: granting ``x`` more units to a session that has used ``U``
costs ``cost(U + x) - cost(U)``, so the connect fee and the rounding of the first step apply once per call, however
many grants it takes. Both functions below work on whole batches with the vectorised rater; cost is non-decreasing in
usage (a property test checks it), which makes the searches in ``affordable_units`` and ``call_affordable_units``
exact.

``call_breakpoints`` and ``call_affordable_units`` are the same two answers for one call, priced with the scalar
``CallPricing``: for a handful of calls they cost a fraction of NumPy's fixed cost per batch, and property tests
check that both forms give the same micro-units, grants and failures.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rating_engine.call import Failure, Rated, RatingFailed
from rating_engine.compile import CompiledTariff
from rating_engine.rate import CallBatch, RatedBatch, rate_batch
from rating_engine.scalar import CallPricing

SEARCH_POINTS = 32
"""Candidates ``affordable_units`` prices per call and round: each round narrows the range 33-fold."""


class Breakpoints:
    """Grant candidates per call, largest first.

    Attributes:
        units: ``(n, points)`` total session usage at each candidate (``used`` + grant), non-increasing along a row.
        cost_micros: ``(n, points)`` cumulative cost of the session at those usages, non-increasing along a row.
        base: the rating of the usage already reported (cost, group, ledger code, rate, failure and reasons).
        failure: ``(n,)`` ``Failure`` per call, of the base or of any candidate; rows of failed calls are zero.
    """

    __slots__ = ("base", "cost_micros", "failure", "units")

    def __init__(self, units: np.ndarray, cost: np.ndarray, base: RatedBatch, failure: np.ndarray) -> None:
        self.units, self.cost_micros, self.base, self.failure = units, cost, base, failure

    @property
    def base_cost_micros(self) -> np.ndarray:
        """``(n,)`` cumulative cost of the usage already reported."""
        return self.base.cost_micros


def breakpoints(
    tariff: CompiledTariff, batch: CallBatch, used: np.ndarray, requested: np.ndarray, points: int = 8
) -> Breakpoints:
    """Candidate grants ``requested, requested/2, requested/4 …`` (at least 1 unit) on top of ``used``.

    The online core hands these to the reservation script, which grants the largest candidate the account's available
    credit covers at that moment. One vectorised rating prices the base usage and every candidate.
    """
    used, requested = np.asarray(used, dtype=np.int64), np.asarray(requested, dtype=np.int64)
    n = len(batch)
    grants = np.maximum(requested[:, None] >> np.arange(points, dtype=np.int64)[None, :], 1)
    grants = np.where(requested[:, None] > 0, grants, 0)
    usage = np.concatenate([used[:, None], used[:, None] + grants], axis=1)  # column 0: the usage already reported
    rated = rate_batch(tariff, batch.take(np.repeat(np.arange(n), points + 1)).with_usage(usage.ravel()))
    cost = rated.cost_micros.reshape(n, points + 1)
    failure = rated.failure.reshape(n, points + 1).max(axis=1)
    ok = (failure == 0)[:, None]
    base = rated.take(slice(0, None, points + 1))
    return Breakpoints(np.where(ok, usage[:, 1:], 0), np.where(ok, cost[:, 1:], 0), base, failure)


def affordable_units(
    tariff: CompiledTariff, batch: CallBatch, used: np.ndarray, credit_micros: np.ndarray, cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The most units (≤ ``cap``) each session can add on top of ``used`` for at most ``credit_micros``.

    Returns ``(units, cost_micros, failure)``: the extra units, what they add to the session's cost, and the rating
    failure of the usage already reported (units and cost are 0 where it failed or where credit is negative); a
    candidate that cannot be rated (past a band without a rate, beyond the usage limit) is not affordable.
    A multi-section search: each round prices ``SEARCH_POINTS`` evenly spaced candidates of every open range in
    one vectorised rating.
    """
    used = np.asarray(used, dtype=np.int64)
    credit = np.asarray(credit_micros, dtype=np.int64)
    n = len(batch)
    base = rate_batch(tariff, batch.with_usage(used))
    failure = base.failure
    low = np.zeros(n, dtype=np.int64)  # affordable (adding nothing costs nothing)
    high = np.where((credit >= 0) & (failure == 0), np.asarray(cap, dtype=np.int64), 0)  # answer in [low, high]
    low_cost = np.zeros(n, dtype=np.int64)
    steps = np.arange(1, SEARCH_POINTS + 1, dtype=np.int64)
    while True:
        open_ = np.flatnonzero(low < high)
        if not len(open_):
            break
        span = high[open_] - low[open_]
        # Candidates low + ceil(span × j / points): strictly inside (low, high], the last one high itself.
        probe = low[open_, None] + -(-span[:, None] * steps[None, :] // SEARCH_POINTS)
        rows = np.repeat(open_, SEARCH_POINTS)
        rated = rate_batch(tariff, batch.take(rows).with_usage(used[rows] + probe.ravel()))
        extra = rated.cost_micros.reshape(-1, SEARCH_POINTS) - base.cost_micros[open_, None]
        ok = (rated.failure.reshape(-1, SEARCH_POINTS) == 0) & (extra <= credit[open_, None])
        # Cost is non-decreasing, so the affordable candidates form a prefix; the answer lies past the last of them.
        fits = ok.sum(axis=1)
        row = np.arange(len(open_))
        last_fit, first_miss = np.maximum(fits - 1, 0), np.minimum(fits, SEARCH_POINTS - 1)
        new_low = np.where(fits > 0, probe[row, last_fit], low[open_])
        low_cost[open_] = np.where(fits > 0, extra[row, last_fit], low_cost[open_])
        high[open_] = np.maximum(np.where(fits < SEARCH_POINTS, probe[row, first_miss] - 1, high[open_]), new_low)
        low[open_] = new_low
    failed = failure != 0
    return np.where(failed, 0, low), np.where(failed, 0, low_cost), failure


class CallBreakpoints(NamedTuple):
    """``breakpoints`` for one call (one row of :class:`Breakpoints`).

    Attributes:
        base: the rating of the usage already reported, or why it failed.
        units: total session usage at each candidate, largest first (zeros where ``failure``).
        cost_micros: cumulative cost at those usages (zeros where ``failure``).
        failure: the ``Failure`` of the base or of any candidate (the largest value, as ``breakpoints`` gives).
    """

    base: Rated | RatingFailed
    units: list[int]
    cost_micros: list[int]
    failure: Failure


def _rated(pricing: CallPricing, usage: int) -> Rated | RatingFailed:
    try:
        return pricing.rate(usage)
    except RatingFailed as failed:
        return failed


def call_breakpoints(pricing: CallPricing, used: int, requested: int, points: int = 8) -> CallBreakpoints:
    """``breakpoints`` for the call of ``pricing`` (prepared for at least ``used + requested``)."""
    grants = [max(requested >> k, 1) if requested > 0 else 0 for k in range(points)]
    base = _rated(pricing, used)
    failure = base.failure if isinstance(base, RatingFailed) else Failure.NONE
    units, cost = [used + grant for grant in grants], []
    priced: dict[int, Rated | RatingFailed] = {}  # the ladder's foot repeats (…, 2, 1, 1, 1): price each usage once
    for usage in units:
        rated = priced.get(usage)
        if rated is None:
            rated = priced[usage] = _rated(pricing, usage)
        if isinstance(rated, RatingFailed):
            failure = max(failure, rated.failure)
        else:
            cost.append(rated.cost_micros)
    if failure:
        return CallBreakpoints(base, [0] * points, [0] * points, failure)
    return CallBreakpoints(base, units, cost, failure)


def call_affordable_units(pricing: CallPricing, used: int, credit_micros: int, cap: int) -> tuple[int, int]:
    """``affordable_units`` for the call of ``pricing`` (prepared for at least ``used + cap``): the most extra units
    (≤ ``cap``) that cost at most ``credit_micros`` beyond ``used``, and what they cost; (0, 0) where the usage
    already reported cannot be rated or the credit is negative. A binary search over the units."""
    base = _rated(pricing, used)
    if isinstance(base, RatingFailed) or credit_micros < 0:
        return 0, 0
    low, low_cost, high = 0, 0, cap
    while low < high:
        middle = (low + high + 1) // 2
        rated = _rated(pricing, used + middle)
        if not isinstance(rated, RatingFailed) and rated.cost_micros - base.cost_micros <= credit_micros:
            low, low_cost = middle, rated.cost_micros - base.cost_micros
        else:
            high = middle - 1
    return low, low_cost
