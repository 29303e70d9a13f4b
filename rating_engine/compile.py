"""Compile a ``Tariff`` into NumPy arrays for batch rating, once per tariff version.

The arrays, and why they look as they do:

- Prefixes → disjoint key ranges. Each prefix covers a key range (``numbers.py``); prefix ranges nest, so the
  sorted starts and ends of all of them cut the key line into elementary segments whose innermost (longest) prefix
  is fixed. One ``searchsorted`` of a number's key in ``prefix_bounds`` then yields its destination group.
- Time bands → weekly segments. ``band_bounds`` holds the week-seconds (Monday 00:00 local = 0) where the band
  changes, ``band_of`` the band of each segment and ``band_until`` the week-second the segment's band ends
  (past the end of the week when it wraps into Monday). Band edges fall on whole minutes, so ``minute_segment``
  maps each minute of the week straight to its segment.
- Local time → a table of UTC-offset changes of the tariff's time zone for 2000 … 2099.
- Rate plans → a dense ``[plan, service, group + 1, band]`` table of rate index and ledger code with the precedence
  of ``*`` rows already applied (group slot 0 is "no called number").
- Rates → per-rate columns and ``[rate, step]`` matrices padded to the longest rate.

The content hash is a SHA-256 over a canonical encoding of the tariff, so the same files, in any row order, give the
same hash.
"""

from __future__ import annotations

import functools
import hashlib
import zoneinfo
from datetime import datetime

import msgspec
import numpy as np

from rating_engine.call import EARLIEST_START, LATEST_START
from rating_engine.numbers import MAX_DIGITS, number_keys
from rating_engine.tariff import ANY, MAX_USAGE, MAX_VOICE_SECONDS, WEEK_MINUTES, Service, Tariff

WEEK_SECONDS = WEEK_MINUTES * 60
NEVER = np.int64(2**62)
"""A week-second or instant that no call reaches."""


class CompiledTariff:
    """A tariff as arrays, ready for ``rate.rate_batch``. Build with ``compile_tariff``; treat as read-only."""

    def __init__(self, tariff: Tariff) -> None:
        self.tariff = tariff
        self.group_names = list(tariff.groups)
        self.plan_names = tariff.plans
        self.band_names = tariff.band_names
        self.rate_names = list(tariff.rates)
        self.hash = tariff_hash(tariff)
        self._compile_prefixes()
        self._compile_bands()
        self._compile_rates()
        self._compile_bindings()
        self.utc_change_at, self.utc_offset = utc_offsets(tariff.timezone)
        self.utc_next_change = np.append(self.utc_change_at[1:], NEVER)  # [i]: when offset i stops applying

    def _compile_prefixes(self) -> None:
        prefixes = list(self.tariff.prefixes)
        group_index = {name: i for i, name in enumerate(self.group_names)}
        starts = number_keys(prefixes)
        lengths = np.fromiter(map(len, prefixes), dtype=np.int64, count=len(prefixes))
        spans = np.array([11 ** (MAX_DIGITS - n) for n in range(MAX_DIGITS + 1)], dtype=np.int64)[lengths]
        groups = np.fromiter((group_index[g] for g in self.tariff.prefixes.values()), np.int32, len(prefixes))
        order = np.argsort(starts, kind="stable")
        bounds, owners = [0], [-1]  # key 0 (no called number) and anything below the first prefix: no group
        open_ranges: list[tuple[int, int]] = []  # (end key, group) of the ranges containing the sweep point

        def cut(key: int, owner: int) -> None:
            if bounds[-1] == key:
                owners[-1] = owner
            else:
                bounds.append(key)
                owners.append(owner)

        for start, end, group in zip(
            starts[order].tolist(), (starts + spans)[order].tolist(), groups[order].tolist(), strict=True
        ):
            while open_ranges and open_ranges[-1][0] <= start:
                closed_at = open_ranges.pop()[0]
                cut(closed_at, open_ranges[-1][1] if open_ranges else -1)
            cut(start, group)
            open_ranges.append((end, group))
        while open_ranges:
            closed_at = open_ranges.pop()[0]
            cut(closed_at, open_ranges[-1][1] if open_ranges else -1)
        self.prefix_bounds = np.array(bounds, dtype=np.int64)
        self.prefix_group = np.array(owners, dtype=np.int32)
        self.group_ledger = np.array([g.ledger_code for g in self.tariff.groups.values()], dtype=np.int64)

    def _compile_bands(self) -> None:
        band_index = {name: i for i, name in enumerate(self.band_names)}
        minute_band = np.empty(WEEK_MINUTES, dtype=np.int32)
        for window in self.tariff.bands:
            for day in window.days:
                minute_band[day * 1440 + window.start_minute : day * 1440 + window.end_minute] = band_index[window.band]
        changes = np.flatnonzero(np.diff(minute_band)) + 1
        starts = np.concatenate(([0], changes)).astype(np.int64)
        self.band_bounds = starts * 60
        self.band_of = minute_band[starts]
        until = np.append(self.band_bounds[1:], WEEK_SECONDS)
        if len(starts) == 1:
            until[0] = NEVER  # one band all week: it never changes
        elif self.band_of[-1] == self.band_of[0]:
            until[-1] = WEEK_SECONDS + self.band_bounds[1]  # Sunday's band runs on into Monday
        self.band_until = until
        minute_starts = np.arange(WEEK_MINUTES, dtype=np.int64) * 60
        self.minute_segment = (np.searchsorted(self.band_bounds, minute_starts, side="right") - 1).astype(np.int32)

    def _compile_rates(self) -> None:
        rates = list(self.tariff.rates.values())
        steps = max(len(r.intervals) for r in rates)
        self.steps = steps
        self.connect_fee = np.array([r.connect_fee_micros for r in rates], dtype=np.int64)
        self.min_charge = np.array([r.min_charge_micros for r in rates], dtype=np.int64)
        self.max_cost = np.array([NEVER if r.max_cost_micros is None else r.max_cost_micros for r in rates], np.int64)
        shape = (len(rates), steps)
        self.step_start = np.full(shape, NEVER, dtype=np.int64)  # padding steps start beyond any usage
        self.step_end = np.full(shape, NEVER, dtype=np.int64)
        self.step_price = np.zeros(shape, dtype=np.int64)
        self.step_per = np.ones(shape, dtype=np.int64)
        self.step_increment = np.ones(shape, dtype=np.int64)
        self.max_step_price = max(step.price_micros for rate in rates for step in rate.intervals)
        for r, rate in enumerate(rates):
            for k, step in enumerate(rate.intervals):
                self.step_start[r, k] = step.start
                self.step_end[r, k] = rate.intervals[k + 1].start if k + 1 < len(rate.intervals) else MAX_USAGE + 1
                self.step_price[r, k] = step.price_micros
                self.step_per[r, k] = step.per
                self.step_increment[r, k] = step.increment

    def _compile_bindings(self) -> None:
        plan_index = {name: i for i, name in enumerate(self.plan_names)}
        group_index = {name: i for i, name in enumerate(self.group_names)}
        band_index = {name: i for i, name in enumerate(self.band_names)}
        rate_index = {name: i for i, name in enumerate(self.rate_names)}
        shape = (len(self.plan_names), len(Service), len(self.group_names) + 1, len(self.band_names))
        self.binding_rate = np.full(shape, -1, dtype=np.int32)
        self.binding_ledger = np.zeros(shape, dtype=np.int64)
        group_ledger = np.concatenate(([0], self.group_ledger))

        def specificity(binding) -> int:  # later rows override earlier ones: least specific first
            return (binding.group != ANY) * 2 + (binding.band != ANY)

        for binding in sorted(self.tariff.bindings, key=specificity):
            plan, service = plan_index[binding.plan], int(binding.service)
            groups = slice(None) if binding.group == ANY else group_index[binding.group] + 1
            bands = slice(None) if binding.band == ANY else band_index[binding.band]
            self.binding_rate[plan, service, groups, bands] = rate_index[binding.rate]
            if binding.ledger_code is not None:
                self.binding_ledger[plan, service, groups, bands] = binding.ledger_code
            elif binding.group == ANY:
                raise AssertionError("validated: * rows carry a ledger code")
            else:
                self.binding_ledger[plan, service, groups, bands] = group_ledger[groups]


def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """Compile a validated tariff; the result is immutable by convention and safe to share between tasks."""
    return CompiledTariff(tariff)


def tariff_hash(tariff: Tariff) -> str:
    """SHA-256 (hex) of the tariff's content, independent of row order in its files."""
    canonical = {
        "meta": [tariff.name, tariff.currency, tariff.timezone, tariff.country_code],
        "groups": sorted(tariff.groups.values(), key=lambda g: g.name),
        "prefixes": sorted(tariff.prefixes.items()),
        "rates": sorted(tariff.rates.values(), key=lambda r: r.name),
        "bands": sorted(tariff.bands, key=lambda w: (w.days, w.start_minute)),
        "bindings": sorted(tariff.bindings, key=lambda b: (b.plan, b.service, b.group, b.band)),
    }
    return hashlib.sha256(msgspec.json.encode(canonical)).hexdigest()


@functools.lru_cache(maxsize=32)
def utc_offsets(timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Instants (Unix s) where ``timezone`` changes its UTC offset from 2000 until the last second a call that starts
    in 2099 can reach, and the offset (s) from each on.

    The first entry starts at -2**62 and holds the offset in force at the start of 2000. Found by sampling every
    day and bisecting to the second where the offset differs, so it needs nothing but ``zoneinfo``.
    """
    zone = zoneinfo.ZoneInfo(timezone)

    def offset_at(instant: int) -> int:
        return int(datetime.fromtimestamp(instant, zone).utcoffset().total_seconds())

    changes, offsets = [-int(NEVER)], [offset_at(EARLIEST_START)]
    day = 86400
    # A call may start late in 2099 and last MAX_VOICE_SECONDS: follow the zone until its last possible second.
    for instant in range(EARLIEST_START, LATEST_START + MAX_VOICE_SECONDS + day, day):
        if offset_at(instant + day) == offsets[-1]:
            continue
        low, high = instant, instant + day  # offset differs at high, equals at low
        while high - low > 1:
            middle = (low + high) // 2
            if offset_at(middle) == offsets[-1]:
                low = middle
            else:
                high = middle
        changes.append(high)
        offsets.append(offset_at(high))
    return np.array(changes, dtype=np.int64), np.array(offsets, dtype=np.int64)
