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
from rating_engine.compile import NEVER, WEEK_SECONDS, CompiledTariff
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
        names, inverse = np.unique(plans, return_inverse=True)
        plan_of_name = np.array([tariff.plan_index(str(name)) for name in names], dtype=np.int64)
        return cls(plan_of_name[inverse], services, number_keys(destinations), starts, usages, plans)

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


def _run_amount(units: np.ndarray, price: np.ndarray, per: np.ndarray) -> np.ndarray:
    """``units × price ÷ per`` rounded up to the micro-unit, exactly and without int64 overflow."""
    whole, rest = np.divmod(units, per)
    return whole * price - (-(rest * price) // per)


def rate_batch(tariff: CompiledTariff, batch: CallBatch) -> RatedBatch:
    """Rate every call of ``batch``; failures are reported per call, never as a zero price."""
    n = len(batch)
    out = RatedBatch(tariff, n)
    if n == 0:
        return out
    usage, service = batch.usage, batch.service
    failure = out.failure
    group = tariff.prefix_group[np.searchsorted(tariff.prefix_bounds, batch.key, side="right") - 1]
    out.group[:] = group
    # Checked in the scalar oracle's order (usage, start, plan, destination): later assignments win, so go backwards.
    limit = np.where(service == _VOICE, MAX_VOICE_SECONDS, MAX_USAGE)
    failure[(group < 0) & (batch.key != 0)] = Failure.UNKNOWN_DESTINATION
    failure[batch.plan < 0] = Failure.UNKNOWN_PLAN
    failure[(batch.start < EARLIEST_START) | (batch.start >= LATEST_START)] = Failure.BAD_START
    failure[(usage < 0) | (usage > limit) | (service < 0) | (service >= len(Service))] = Failure.BAD_USAGE

    # State of the calls still being priced, aligned with `calls` (indices into the batch).
    calls = np.flatnonzero(failure == 0)
    binding_base = (
        (batch.plan[calls] * len(Service) + service[calls]) * (len(tariff.group_names) + 1) + group[calls] + 1
    ) * len(tariff.band_names)
    binding_rate, binding_ledger = tariff.binding_rate.ravel(), tariff.binding_ledger.ravel()
    start, used, voice = batch.start[calls], usage[calls], service[calls] == _VOICE
    part_start = np.zeros(len(calls), dtype=np.int64)  # offset where the current part begins
    billed_to = np.zeros(len(calls), dtype=np.int64)  # usage billed so far, rounding included
    amount = np.zeros(len(calls), dtype=np.int64)  # amounts of closed runs
    run_step = np.full(len(calls), -1, dtype=np.int64)  # open run's flat [rate, step] index, -1 for none
    run_units = np.zeros(len(calls), dtype=np.int64)
    steps = tariff.steps
    flat = {
        name: getattr(tariff, name).ravel()
        for name in ("step_start", "step_end", "step_price", "step_per", "step_increment")
    }
    utc_change_after = np.append(tariff.utc_change_at, NEVER)  # [i]: the first change after instants in slot i - 1
    first_part = True
    while len(calls):
        instant = start + part_start
        offset = tariff.utc_offset[np.searchsorted(tariff.utc_change_at, instant, side="right") - 1]
        week_second = (instant + offset + _MONDAY_BEFORE_EPOCH) % WEEK_SECONDS
        segment = np.searchsorted(tariff.band_bounds, week_second, side="right") - 1
        band = tariff.band_of[segment]
        rate = binding_rate[binding_base + band]

        missing = rate < 0
        if missing.any():
            failure[calls[missing]] = Failure.NO_RATE
            out.failed_band[calls[missing]] = band[missing]
            keep = ~missing
            calls, rate, band, segment = calls[keep], rate[keep], band[keep], segment[keep]
            instant, week_second = instant[keep], week_second[keep]
            binding_base, start, used, voice = binding_base[keep], start[keep], used[keep], voice[keep]
            part_start, billed_to, amount = part_start[keep], billed_to[keep], amount[keep]
            run_step, run_units = run_step[keep], run_units[keep]
        if first_part:
            out.rate[calls] = rate
            out.ledger_code[calls] = binding_ledger[binding_base + band]
            first_part = False

        # Where this part ends: the call's end, or for voice the next band edge or UTC-offset change.
        part_end = used
        if voice.any():
            to_band_edge = tariff.band_until[segment] - week_second
            to_offset_change = utc_change_after[np.searchsorted(tariff.utc_change_at, instant, side="right")] - instant
            part_end = np.where(voice, np.minimum(used, part_start + np.minimum(to_band_edge, to_offset_change)), used)

        rate_row = rate.astype(np.int64) * steps
        for k in range(steps):
            index = rate_row + k
            low = np.maximum(np.maximum(part_start, flat["step_start"][index]), billed_to)
            high = np.minimum(part_end, flat["step_end"][index])
            active = high > low
            if not active.any():
                continue
            increment = flat["step_increment"][index]
            billed = np.where(active, -((low - high) // increment) * increment, 0)
            billed_to = np.where(active, low + billed, billed_to)
            same_run = active & (run_step == index)
            closes = active & ~same_run & (run_step >= 0)
            if closes.any():
                closing = run_step[closes]
                amount[closes] += _run_amount(run_units[closes], flat["step_price"][closing], flat["step_per"][closing])
            run_units = np.where(same_run, run_units + billed, np.where(active, billed, run_units))
            run_step = np.where(active, index, run_step)

        done = part_end >= used
        if done.any():
            total = amount[done]
            open_run = run_step[done]
            has_run = open_run >= 0
            total[has_run] += _run_amount(
                run_units[done][has_run], flat["step_price"][open_run[has_run]], flat["step_per"][open_run[has_run]]
            )
            finished = calls[done]
            first_rate = out.rate[finished]
            cost = tariff.connect_fee[first_rate] + total
            cost = np.minimum(np.maximum(cost, tariff.min_charge[first_rate]), tariff.max_cost[first_rate])
            out.cost_micros[finished] = np.where(used[done] > 0, cost, 0)
        more = ~done
        calls, binding_base, start, used, voice = calls[more], binding_base[more], start[more], used[more], voice[more]
        part_start, billed_to, amount = part_end[more], billed_to[more], amount[more]
        run_step, run_units = run_step[more], run_units[more]

    out.rate[failure != 0] = -1
    out.ledger_code[failure != 0] = 0
    return out
