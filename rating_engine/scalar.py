"""The reference rating of one call, written for clarity rather than speed.

It reads the ``Tariff`` model directly (a dictionary prefix lookup, ``zoneinfo`` for local time, exact Python
integers) and shares no code with the vectorised path beyond the model, so property tests can use it as the oracle.

Pricing rules (documented in ``docs/tariffs.md``):

- Zero usage costs nothing. Otherwise the connect fee of the rate in force at the start of the call is charged once.
- A voice call is split where its time band changes (and where the tariff's time zone changes its UTC offset); each
  part is priced with the rate of its band. Data and messages take the band at their start.
- Within a part, a rate's steps apply by offset from the start of the call. Each stretch of usage in a step is billed
  in whole increments, rounded up; billed usage carries on from where the previous rounding ended.
- Consecutive stretches priced by the same step of the same rate form one run; a run's amount is
  ``units × price ÷ per`` rounded up to the micro-unit once, so rounding never grows with the number of increments.
- Then the minimum charge and the maximum cost of the starting rate apply, in that order.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import datetime

from rating_engine.call import EARLIEST_START, LATEST_START, Call, Failure, Rated, RatingFailed
from rating_engine.money import ceil_div
from rating_engine.tariff import ANY, MAX_USAGE, MAX_VOICE_SECONDS, WEEK_MINUTES, Binding, Rate, Service, Tariff

WEEK_SECONDS = WEEK_MINUTES * 60


def rate_call(tariff: Tariff, call: Call) -> Rated:
    """Price one call, or raise ``RatingFailed`` with the reason."""
    return CallPricing(tariff, call, call.usage).rate(call.usage)


class CallPricing:
    """One call priced at any usage up to ``max_usage``: what does not depend on the usage (the checks of start,
    plan and destination, the starting rate, the parts of the call) is worked out once, so pricing a ladder of
    usages or searching for the largest affordable one costs a short loop per usage.

    ``rate(usage)`` gives exactly what ``rate_call`` gives for the call with that usage (``usage`` ≤ ``max_usage``).
    """

    def __init__(self, tariff: Tariff, call: Call, max_usage: int) -> None:
        self.tariff, self.call = tariff, call
        self.limit = MAX_VOICE_SECONDS if call.service == Service.VOICE else MAX_USAGE
        self._failure: RatingFailed | None = None  # fails every usage in range
        self._parts: list[tuple[int, int, Rate]] = []  # (start offset, end offset, rate), in call order
        self._covered = 0  # the parts reach this offset; a longer call fails with ``_beyond``
        self._beyond: RatingFailed | None = None
        try:
            self._prepare(min(max(max_usage, 0), self.limit))
        except RatingFailed as failed:
            self._failure = failed

    def _prepare(self, max_usage: int) -> None:
        tariff, call = self.tariff, self.call
        if not EARLIEST_START <= call.start < LATEST_START:
            raise RatingFailed(Failure.BAD_START, f"start {call.start} is outside the years 2000 … 2099")
        if call.plan not in _lookups(tariff).plans:
            raise RatingFailed(Failure.UNKNOWN_PLAN, f"unknown tariff plan {call.plan!r}")
        self.group = _destination_group(tariff, call.destination)
        zone = zoneinfo.ZoneInfo(tariff.timezone)
        self.first = _binding(tariff, call, self.group, _band_at(tariff, zone, call.start))
        self.ledger_code = self.first.ledger_code or tariff.groups[self.group].ledger_code
        try:
            for part in _segments(tariff, zone, call, self.group, max_usage):
                self._parts.append(part)
                self._covered = part[1]
        except RatingFailed as failed:
            self._beyond = failed
        else:
            self._covered = max_usage

    def rate(self, usage: int) -> Rated:
        """The call priced at ``usage``, or ``RatingFailed`` with the reason."""
        if not 0 <= usage <= self.limit:
            raise RatingFailed(Failure.BAD_USAGE, f"usage {usage} is outside 0 … {self.limit}")
        if self._failure is not None:
            raise self._failure
        if usage == 0:
            return Rated(0, self.group, self.ledger_code, self.first.rate)
        if usage > self._covered:
            if self._beyond is None:
                raise ValueError(f"usage {usage} is beyond the {self._covered} this pricing was prepared for")
            raise self._beyond
        runs: list[list] = []  # [rate name, step index, billed units], in call order
        billed_to = 0  # usage billed so far, including rounding
        for seg_start, part_end, rate in self._parts:
            if seg_start >= usage:
                break
            seg_end = min(part_end, usage)
            for index, step in enumerate(rate.intervals):
                step_end = rate.intervals[index + 1].start if index + 1 < len(rate.intervals) else MAX_USAGE + 1
                low, high = max(seg_start, step.start, billed_to), min(seg_end, step_end)
                if high <= low:
                    continue
                billed = ceil_div(high - low, step.increment) * step.increment
                billed_to = low + billed
                if runs and runs[-1][:2] == [rate.name, index]:
                    runs[-1][2] += billed
                else:
                    runs.append([rate.name, index, billed])

        starting = self.tariff.rates[self.first.rate]
        cost = starting.connect_fee_micros
        for rate_name, index, units in runs:
            step = self.tariff.rates[rate_name].intervals[index]
            cost += ceil_div(units * step.price_micros, step.per)
        cost = max(cost, starting.min_charge_micros)
        if starting.max_cost_micros is not None:
            cost = min(cost, starting.max_cost_micros)
        return Rated(cost, self.group, self.ledger_code, self.first.rate)


def _destination_group(tariff: Tariff, destination: str) -> str:
    for length in range(len(destination), 0, -1):
        group = tariff.prefixes.get(destination[:length])
        if group is not None:
            return group
    if destination:
        raise RatingFailed(Failure.UNKNOWN_DESTINATION, f"no destination prefix matches {destination}")
    return ""


def _binding(tariff: Tariff, call: Call, group: str, band: str) -> Binding:
    """The most specific rate-plan row: group and band, group and any band, any group and band, any and any."""
    candidates = [(group, band), (group, ANY), (ANY, band), (ANY, ANY)] if group else [(ANY, band), (ANY, ANY)]
    index = _lookups(tariff).bindings
    for want_group, want_band in candidates:
        binding = index.get((call.plan, call.service, want_group, want_band))
        if binding is not None:
            return binding
    raise RatingFailed(
        Failure.NO_RATE,
        f"plan {call.plan!r} has no {call.service.name.lower()} rate for group {group or '(none)'} in band {band}",
    )


def _band_at(tariff: Tariff, zone: zoneinfo.ZoneInfo, instant: int) -> str:
    local = datetime.fromtimestamp(instant, zone)
    minute = local.weekday() * 1440 + local.hour * 60 + local.minute
    for window in tariff.bands:
        if minute // 1440 in window.days and window.start_minute <= minute % 1440 < window.end_minute:
            return window.band
    raise AssertionError("validated bands cover the whole week")


def _next_change(tariff: Tariff, zone: zoneinfo.ZoneInfo, instant: int) -> int:
    """The first instant after ``instant`` where the band may change: a window edge or a UTC offset change."""
    local = datetime.fromtimestamp(instant, zone)
    week_second = local.weekday() * 86400 + local.hour * 3600 + local.minute * 60 + local.second
    edges = _lookups(tariff).edges
    later = [edge for edge in edges if edge > week_second] or [edges[0] + WEEK_SECONDS]
    candidate = instant + later[0] - week_second
    offset = local.utcoffset()
    if datetime.fromtimestamp(candidate, zone).utcoffset() == offset:
        return candidate
    low, high = instant, candidate  # the offset changes somewhere in (low, high]
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high


def _segments(tariff: Tariff, zone: zoneinfo.ZoneInfo, call: Call, group: str,
              usage: int) -> Iterator[tuple[int, int, Rate]]:  # fmt: skip
    """The parts of the call up to ``usage`` as (start offset, end offset, rate), in order; raises where a part
    has no rate."""
    if call.service != Service.VOICE:
        binding = _binding(tariff, call, group, _band_at(tariff, zone, call.start))
        yield (0, usage, tariff.rates[binding.rate])
        return
    offset = 0
    while offset < usage:
        instant = call.start + offset
        binding = _binding(tariff, call, group, _band_at(tariff, zone, instant))
        end = min(usage, _next_change(tariff, zone, instant) - call.start)
        yield (offset, end, tariff.rates[binding.rate])
        offset = end


class _Lookups:
    """Dictionaries built once per tariff so that rating one call does not scan the tariff's tables."""

    def __init__(self, tariff: Tariff) -> None:
        self.tariff = tariff
        self.bindings = {(b.plan, b.service, b.group, b.band): b for b in tariff.bindings}
        self.plans = frozenset(b.plan for b in tariff.bindings)
        self.edges = sorted(
            {(day * 1440 + m) * 60 for w in tariff.bands for day in w.days for m in (w.start_minute, w.end_minute)}
        )  # week-seconds (from Monday 00:00 local) where some band window starts or ends


_LOOKUPS: dict[int, _Lookups] = {}


def _lookups(tariff: Tariff) -> _Lookups:
    found = _LOOKUPS.get(id(tariff))
    if found is None or found.tariff is not tariff:
        if len(_LOOKUPS) >= 16:
            _LOOKUPS.clear()
        found = _LOOKUPS[id(tariff)] = _Lookups(tariff)
    return found
