"""Vectorised rating of whole batches of calls against a ``CompiledTariff``.

Implements exactly the pricing rules documented in ``scalar.py`` (the reference oracle), with arrays: one
``searchsorted`` finds every destination group, and the time-band split is a loop over *parts*, where each round
prices the current part of every call still running and keeps only the calls that cross into another band. Most calls
fit in one part, so most batches take one round.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rating_engine.call import EARLIEST_START, LATEST_START, Call, Failure, Rated, RatingFailed
from rating_engine.compile import WEEK_SECONDS, CompiledTariff
from rating_engine.numbers import key_digits, number_keys
from rating_engine.tariff import MAX_USAGE, MAX_VOICE_SECONDS, Service

_MONDAY_BEFORE_EPOCH = 3 * 86400  # 1970-01-01 was a Thursday
_VOICE = int(Service.VOICE)


class CallBatch:
    """Calls to rate, as columns. Build with ``CallBatch.of`` (or ``from_calls``) so plans and numbers are encoded.

    Attributes:
        plan: plan index in the compiled tariff (-1: unknown plan).
        service: ``Service`` value.
        key: the called number's prefix key (``numbers.number_keys``); 0 for no called number.
        start: Unix seconds.
        usage: units used.
    """

    __slots__ = ("key", "plan", "plan_names", "service", "start", "usage")

    def __init__(
        self,
        plan: np.ndarray,
        service: np.ndarray,
        key: np.ndarray,
        start: np.ndarray,
        usage: np.ndarray,
        plan_names: np.ndarray | None = None,
    ):
        self.plan_names = plan_names  # the plan name of each row as given, for messages; None when not known
        self.plan = np.asarray(plan, dtype=np.int64)
        self.service = np.asarray(service, dtype=np.int64)
        self.key = np.asarray(key, dtype=np.int64)
        self.start = np.asarray(start, dtype=np.int64)
        self.usage = np.asarray(usage, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.usage)

    @classmethod
    def of(
        cls,
        tariff: CompiledTariff,
        *,
        plans: Sequence[str] | np.ndarray,
        services: Sequence[int] | np.ndarray,
        destinations: Sequence[str] | np.ndarray,
        starts: Sequence[int] | np.ndarray,
        usages: Sequence[int] | np.ndarray,
    ) -> CallBatch:
        """Encode columns; ``destinations`` must already be normalised (``numbers.normalize_number``)."""
        plans = np.asarray(plans, dtype=str)
        plan = np.full(len(plans), -1, dtype=np.int64)  # -1 stays for plans the tariff does not have
        for index, name in enumerate(tariff.plan_names):
            plan[plans == name] = index
        return cls(plan, services, number_keys(destinations), starts, usages, plans)

    @classmethod
    def from_calls(cls, tariff: CompiledTariff, calls: Sequence[Call]) -> CallBatch:
        return cls.of(
            tariff,
            plans=[c.plan for c in calls],
            services=[int(c.service) for c in calls],
            destinations=[c.destination for c in calls],
            starts=[c.start for c in calls],
            usages=[c.usage for c in calls],
        )

    def with_usage(self, usage: np.ndarray) -> CallBatch:
        """The same calls with other usage (used by quota search)."""
        return CallBatch(self.plan, self.service, self.key, self.start, usage, self.plan_names)

    def take(self, rows: np.ndarray) -> CallBatch:
        """The calls at ``rows`` (an index array; repeated indices repeat calls)."""
        names = None if self.plan_names is None else self.plan_names[rows]
        columns = (self.plan, self.service, self.key, self.start, self.usage)
        return CallBatch(*(column[rows] for column in columns), plan_names=names)


class RatedBatch:
    """The answer for a batch, as columns aligned with the batch.

    Attributes:
        cost_micros: price in micro-units (0 where the call failed: check ``failure``).
        group: destination group index, -1 for none.
        ledger_code: ledger account of the charge (0 where failed).
        rate: index of the rate in force at the start, -1 where failed.
        failure: ``Failure`` value, ``Failure.NONE`` (0) where rated.
        failed_band: for ``Failure.NO_RATE``, the band that had no rate.
    """

    __slots__ = ("cost_micros", "failed_band", "failure", "group", "ledger_code", "rate", "tariff")

    def __init__(self, tariff: CompiledTariff, n: int) -> None:
        self.tariff = tariff
        self.cost_micros = np.zeros(n, dtype=np.int64)
        self.group = np.full(n, -1, dtype=np.int32)
        self.ledger_code = np.zeros(n, dtype=np.int64)
        self.rate = np.full(n, -1, dtype=np.int32)
        self.failure = np.zeros(n, dtype=np.int8)
        self.failed_band = np.full(n, -1, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.cost_micros)

    def take(self, rows: np.ndarray) -> RatedBatch:
        """The answers at ``rows`` (an index array or slice), as a batch of their own."""
        taken = RatedBatch(self.tariff, 0)
        for name in ("cost_micros", "group", "ledger_code", "rate", "failure", "failed_band"):
            setattr(taken, name, getattr(self, name)[rows])
        return taken

    def group_name(self, i: int) -> str:
        return self.tariff.group_names[self.group[i]] if self.group[i] >= 0 else ""

    def rate_name(self, i: int) -> str:
        return self.tariff.rate_names[self.rate[i]] if self.rate[i] >= 0 else ""

    def reason(self, i: int, batch: CallBatch) -> str:
        """Why call ``i`` failed, in words ("" when it was rated)."""
        failure = Failure(int(self.failure[i]))
        plan = self.tariff.plan_names[batch.plan[i]] if batch.plan[i] >= 0 else ""
        usage, start = int(batch.usage[i]), int(batch.start[i])
        service = Service(int(batch.service[i])) if 0 <= batch.service[i] < len(Service) else None
        if failure == Failure.NONE:
            return ""
        if failure == Failure.UNKNOWN_DESTINATION:
            return f"no destination prefix matches {key_digits(int(batch.key[i]))}"
        if failure == Failure.UNKNOWN_PLAN:
            return "unknown tariff plan" + (f" {str(batch.plan_names[i])!r}" if batch.plan_names is not None else "")
        if failure == Failure.BAD_USAGE:
            if service is None:
                return f"unknown service {int(batch.service[i])}"
            limit = MAX_VOICE_SECONDS if service == Service.VOICE else MAX_USAGE
            return f"usage {usage} is outside 0 … {limit}"
        if failure == Failure.BAD_START:
            return f"start {start} is outside the years 2000 … 2099"
        if failure == Failure.NO_RATE:
            band = self.tariff.band_names[self.failed_band[i]]
            group = self.group_name(i) or "(none)"
            what = service.name.lower() if service is not None else f"service {int(batch.service[i])}"
            return f"plan {plan!r} has no {what} rate for group {group} in band {band}"
        return failure.name.lower().replace("_", " ")

    def result(self, i: int, batch: CallBatch) -> Rated:
        """Call ``i`` as a ``Rated``, or raise ``RatingFailed`` (the same contract as ``scalar.rate_call``)."""
        if self.failure[i]:
            raise RatingFailed(Failure(int(self.failure[i])), self.reason(i, batch))
        return Rated(int(self.cost_micros[i]), self.group_name(i), int(self.ledger_code[i]), self.rate_name(i))


def rate_batch(tariff: CompiledTariff, batch: CallBatch) -> RatedBatch:
    """Rate every call of ``batch``; failures are reported per call, never as a zero price."""
    out = RatedBatch(tariff, len(batch))
    if len(batch) == 0:
        return out
    out.group[:] = group = _destination_groups(tariff, batch.key)
    _check(batch, group, out.failure)

    calls = np.flatnonzero(out.failure == 0)
    binding = _binding_base(tariff, batch, group, calls)
    start, used, voice = batch.start[calls], batch.usage[calls], batch.service[calls] == _VOICE
    band, part_end = _part(tariff, start, np.zeros_like(start), used, voice)
    rate = tariff.binding_rate.ravel()[binding + band]
    missing = rate < 0
    if missing.any():
        out.failure[calls[missing]] = Failure.NO_RATE
        out.failed_band[calls[missing]] = band[missing]
        keep = ~missing
        calls, binding, start, used, voice = calls[keep], binding[keep], start[keep], used[keep], voice[keep]
        band, part_end, rate = band[keep], part_end[keep], rate[keep]
    out.rate[calls] = rate
    out.ledger_code[calls] = tariff.binding_ledger.ravel()[binding + band]

    one = part_end >= used  # most calls: no band edge before they end
    out.cost_micros[calls[one]] = _price_one_part(tariff, rate[one], used[one])
    several = ~one
    if several.any():
        out.cost_micros[calls[several]] = _price_in_parts(
            tariff, out, calls[several], binding[several], start[several], used[several], voice[several]
        )
    failed = out.failure != 0
    out.rate[failed], out.ledger_code[failed], out.cost_micros[failed] = -1, 0, 0
    return out


def _destination_groups(tariff: CompiledTariff, keys: np.ndarray) -> np.ndarray:
    """Destination group index of each number key (-1 for none): one search over the flattened prefix ranges.

    Searching the keys in sorted order keeps the binary searches in cache; that is faster than the sort costs.
    """
    order = np.argsort(keys)
    group = np.empty(len(keys), dtype=np.int32)
    group[order] = tariff.prefix_group[np.searchsorted(tariff.prefix_bounds, keys[order], side="right") - 1]
    return group


def _check(batch: CallBatch, group: np.ndarray, failure: np.ndarray) -> None:
    """Mark what cannot be rated, in the scalar oracle's order (usage, start, plan, destination): the last
    assignment wins, so the checks run backwards."""
    usage, service = batch.usage, batch.service
    limit = np.where(service == _VOICE, MAX_VOICE_SECONDS, MAX_USAGE)
    failure[(group < 0) & (batch.key != 0)] = Failure.UNKNOWN_DESTINATION
    failure[batch.plan < 0] = Failure.UNKNOWN_PLAN
    failure[(batch.start < EARLIEST_START) | (batch.start >= LATEST_START)] = Failure.BAD_START
    failure[(usage < 0) | (usage > limit) | (service < 0) | (service >= len(Service))] = Failure.BAD_USAGE


def _binding_base(tariff: CompiledTariff, batch: CallBatch, group: np.ndarray, calls: np.ndarray) -> np.ndarray:
    """Flat index of ``[plan, service, group + 1, band 0]`` in the binding tables; add the band to look one up."""
    plan_service = batch.plan[calls] * len(Service) + batch.service[calls]
    return (plan_service * (len(tariff.group_names) + 1) + group[calls] + 1) * len(tariff.band_names)


def _part(
    tariff: CompiledTariff, start: np.ndarray, part_start: np.ndarray, used: np.ndarray, voice: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Band of each call at ``part_start``, and the offset where that part ends: the call's end, or for voice the
    next band edge or UTC-offset change, whichever comes first."""
    instant = start + part_start
    slot = _utc_slot(tariff.utc_change_at, instant)
    week_second = (instant + tariff.utc_offset[slot] + _MONDAY_BEFORE_EPOCH) % WEEK_SECONDS
    segment = tariff.minute_segment[week_second // 60]
    band = tariff.band_of[segment]
    if not voice.any():
        return band, used
    to_change = np.minimum(tariff.band_until[segment] - week_second, tariff.utc_next_change[slot] - instant)
    return band, np.where(voice, np.minimum(used, part_start + to_change), used)


def _utc_slot(change_at: np.ndarray, instant: np.ndarray) -> np.ndarray:
    """Index of the UTC offset in force at each instant. A batch usually spans no offset change or one, so count the
    few changes inside its span directly instead of searching."""
    if len(instant) == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = np.searchsorted(change_at, [instant.min(), instant.max()], side="right") - 1
    if last - first > 4:
        return np.searchsorted(change_at, instant, side="right") - 1
    slot = np.full(len(instant), first, dtype=np.int64)
    for change in change_at[first + 1 : last + 1]:
        slot += instant >= change
    return slot


def _amount(tariff: CompiledTariff, units: np.ndarray, step: np.ndarray) -> np.ndarray:
    """``units × price ÷ per`` of each step (flat ``[rate, step]`` index), rounded up to the micro-unit, exactly.

    One integer division when no product can overflow int64 (the usual case); otherwise split by ``divmod`` so that
    every intermediate stays below ``per × price``, which the loader bounds.
    """
    price, per = tariff.step_price.ravel()[step], tariff.step_per.ravel()[step]
    if int(units.max(initial=0)) * tariff.max_step_price < 2**62:
        return -(-(units * price) // per)
    whole, rest = np.divmod(units, per)
    return whole * price - (-(rest * price) // per)


def _finish(tariff: CompiledTariff, rate: np.ndarray, used: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Add the starting rate's connect fee, apply its minimum and maximum; zero usage costs nothing."""
    cost = np.minimum(np.maximum(tariff.connect_fee[rate] + amount, tariff.min_charge[rate]), tariff.max_cost[rate])
    return np.where(used > 0, cost, 0)


def _price_one_part(tariff: CompiledTariff, rate: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Cost of calls priced by one rate from start to end: each step is then its own run.

    Step 0 starts at 0 for every rate; later steps are computed only for the calls that reach them.
    """
    step_start, step_end = tariff.step_start.ravel(), tariff.step_end.ravel()
    increment = tariff.step_increment.ravel()
    first = rate.astype(np.int64) * tariff.steps
    step_increment = increment[first]
    billed_to = -(-np.minimum(used, step_end[first]) // step_increment) * step_increment
    amount = _amount(tariff, billed_to, first)
    for k in range(1, tariff.steps):
        reach = np.flatnonzero(used > step_start[first + k])
        if not len(reach):
            continue
        step = first[reach] + k
        low = np.maximum(step_start[step], billed_to[reach])
        billed = np.maximum(np.minimum(used[reach], step_end[step]) - low, 0)
        billed = -(-billed // increment[step]) * increment[step]
        billed_to[reach] = np.where(billed > 0, low + billed, billed_to[reach])
        amount[reach] += _amount(tariff, billed, step)
    return _finish(tariff, rate, used, amount)


def _price_in_parts(
    tariff: CompiledTariff,
    out: RatedBatch,
    calls: np.ndarray,
    binding: np.ndarray,
    start: np.ndarray,
    used: np.ndarray,
    voice: np.ndarray,
) -> np.ndarray:
    """Cost of calls that cross band edges (aligned with ``calls``; 0 where a later part has no rate, which is then
    recorded in ``out``). Each round prices the current part of every call still running: its steps by call offset,
    billing from where the previous rounding ended, merging a part's first stretch into the previous part's last run
    when both are the same step of the same rate."""
    cost = np.zeros(len(calls), dtype=np.int64)
    first_rate = out.rate[calls]
    left = np.arange(len(calls))  # positions in `calls` still being priced; the arrays below are aligned with it
    part_start = np.zeros(len(calls), dtype=np.int64)
    billed_to = np.zeros(len(calls), dtype=np.int64)  # usage billed so far, rounding included
    amount = np.zeros(len(calls), dtype=np.int64)  # amounts of closed runs
    run_step = np.full(len(calls), -1, dtype=np.int64)  # open run's flat [rate, step] index, -1 for none
    run_units = np.zeros(len(calls), dtype=np.int64)
    step_start, step_end = tariff.step_start.ravel(), tariff.step_end.ravel()
    increment = tariff.step_increment.ravel()
    while len(left):
        band, part_end = _part(tariff, start, part_start, used, voice)
        rate = tariff.binding_rate.ravel()[binding + band]
        missing = rate < 0
        if missing.any():
            out.failure[calls[left[missing]]] = Failure.NO_RATE
            out.failed_band[calls[left[missing]]] = band[missing]
            keep = ~missing
            left, binding, start, used, voice = left[keep], binding[keep], start[keep], used[keep], voice[keep]
            part_start, part_end, billed_to, rate = part_start[keep], part_end[keep], billed_to[keep], rate[keep]
            amount, run_step, run_units = amount[keep], run_step[keep], run_units[keep]

        row = rate.astype(np.int64) * tariff.steps
        for k in range(tariff.steps):
            step = row + k
            low = np.maximum(np.maximum(part_start, step_start[step]), billed_to)
            high = np.minimum(part_end, step_end[step])
            active = high > low
            if not active.any():
                continue
            billed = np.where(active, -((low - high) // increment[step]) * increment[step], 0)
            billed_to = np.where(active, low + billed, billed_to)
            same_run = active & (run_step == step)
            closes = active & ~same_run & (run_step >= 0)
            if closes.any():
                amount[closes] += _amount(tariff, run_units[closes], run_step[closes])
            run_units = np.where(same_run, run_units + billed, np.where(active, billed, run_units))
            run_step = np.where(active, step, run_step)

        done = part_end >= used
        if done.any():
            total = amount[done]
            has_run = run_step[done] >= 0
            total[has_run] += _amount(tariff, run_units[done][has_run], run_step[done][has_run])
            cost[left[done]] = _finish(tariff, first_rate[left[done]], used[done], total)
        more = ~done
        left, binding, start, used, voice = left[more], binding[more], start[more], used[more], voice[more]
        part_start, billed_to, amount = part_end[more], billed_to[more], amount[more]
        run_step, run_units = run_step[more], run_units[more]
    return cost
