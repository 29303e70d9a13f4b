"""Property tests: on random tariffs and calls the vectorised rater equals the scalar oracle to the micro-unit, and
cost never decreases with usage."""

from __future__ import annotations

import itertools

import numpy as np
from conftest import at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating_engine import (
    Call,
    CallBatch,
    CallPricing,
    RatingFailed,
    Service,
    Tariff,
    affordable_units,
    breakpoints,
    call_affordable_units,
    call_breakpoints,
    compile_tariff,
    rate_batch,
    rate_call,
)
from rating_engine.tariff import ANY, BandWindow, Binding, DestinationGroup, Rate, RateInterval

ZONES = ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
DIGITS = "123"  # a small alphabet makes prefixes nest and collide often
PLANS = ["p0", "p1"]
BANDS = ["b0", "b1", "b2"]
START_LOW, START_HIGH = at("2026-01-01T00:00:00"), at("2027-01-01T00:00:00")
# UTC-offset changes of ZONES in 2026; starting calls near them exercises the split at an offset change.
OFFSET_CHANGES = [
    at(t)
    for t in (
        "2026-03-08T07:00:00",  # America/New_York, spring forward
        "2026-03-29T01:00:00",  # Europe/London, spring forward
        "2026-04-04T15:00:00",  # Australia/Lord_Howe, back 30 minutes
        "2026-10-03T15:30:00",  # Australia/Lord_Howe, forward 30 minutes
        "2026-10-25T01:00:00",  # Europe/London, fall back
        "2026-11-01T06:00:00",  # America/New_York, fall back
    )
]


@st.composite
def rates(draw, name: str) -> Rate:
    starts = sorted(draw(st.sets(st.integers(1, 400), max_size=2)))
    steps = tuple(
        RateInterval(
            start,
            draw(st.integers(0, 300_000)),
            draw(st.sampled_from([1, 7, 60, 1024])),
            draw(st.sampled_from([1, 6, 30, 60, 100])),
        )
        for start in [0, *starts]
    )
    minimum = draw(st.sampled_from([0, 0, 1, 150_000]))
    maximum = draw(st.sampled_from([None, None, minimum + draw(st.integers(0, 2_000_000))]))
    return Rate(name, draw(st.sampled_from([0, 1, 200_000])), minimum, maximum, steps)


@st.composite
def band_windows(draw) -> tuple[BandWindow, ...]:
    windows = []
    for day in range(7):
        cuts = sorted(draw(st.sets(st.integers(1, 1439), max_size=3)))
        edges = [0, *cuts, 1440]
        for low, high in itertools.pairwise(edges):
            windows.append(BandWindow(draw(st.sampled_from(BANDS)), (day,), low, high))
    return tuple(windows)


@st.composite
def tariffs(draw) -> Tariff:
    group_names = [f"g{i}" for i in range(draw(st.integers(1, 4)))]
    groups = {g: DestinationGroup(g, 400000001 + i, "cat") for i, g in enumerate(group_names)}
    prefix_list = draw(st.sets(st.text(DIGITS, min_size=1, max_size=4), min_size=1, max_size=12))
    prefixes = {p: draw(st.sampled_from(group_names)) for p in sorted(prefix_list)}
    rate_map = {f"r{i}": draw(rates(f"r{i}")) for i in range(draw(st.integers(1, 4)))}
    windows = draw(band_windows())
    used_bands = sorted({w.band for w in windows})
    bindings = {}
    for plan in PLANS:
        for service in Service:
            for group in [*group_names, ANY]:
                for band in [*used_bands, ANY]:
                    if draw(st.integers(0, 3)) == 0:
                        ledger = 400000009 if group == ANY else draw(st.sampled_from([None, 400000008]))
                        rate = draw(st.sampled_from(sorted(rate_map)))
                        bindings[plan, service, group, band] = Binding(plan, service, group, band, rate, ledger)
    if not bindings:
        bindings["p0", Service.VOICE, ANY, ANY] = Binding("p0", Service.VOICE, ANY, ANY, "r0", 400000009)
    zone = draw(st.sampled_from(ZONES))
    return Tariff("random", "EUR", zone, "", groups, prefixes, rate_map, windows, tuple(bindings.values()))


def calls(tariff: Tariff) -> st.SearchStrategy[Call]:
    prefix = st.sampled_from(sorted(tariff.prefixes))
    destination = st.one_of(
        st.just(""), st.text(DIGITS, max_size=6), st.builds(lambda p, t: p + t, prefix, st.text(DIGITS, max_size=5))
    )
    return st.builds(
        Call,
        st.sampled_from([*PLANS, "unknown"]),
        st.sampled_from(list(Service)),
        destination,
        st.one_of(
            st.integers(START_LOW, START_HIGH),
            st.builds(
                lambda change, delta: change + delta, st.sampled_from(OFFSET_CHANGES), st.integers(-3 * 86400, 0)
            ),
            st.just(0),  # before 2000: invalid
        ),
        st.one_of(st.integers(0, 200), st.integers(0, 200_000), st.just(-1)),
    )


def scalar_or_failure(tariff: Tariff, call: Call):
    try:
        return rate_call(tariff, call)
    except RatingFailed as failed:
        return (failed.failure, failed.reason)


def vector_or_failure(rated, batch, i: int):
    try:
        return rated.result(i, batch)
    except RatingFailed as failed:
        return (failed.failure, failed.reason)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_vectorised_equals_scalar(data):
    tariff = data.draw(tariffs())
    batch_calls = data.draw(st.lists(calls(tariff), min_size=1, max_size=40))
    compiled = compile_tariff(tariff)
    batch = CallBatch.from_calls(compiled, batch_calls)
    rated = rate_batch(compiled, batch)
    for i, call in enumerate(batch_calls):
        assert vector_or_failure(rated, batch, i) == scalar_or_failure(tariff, call), call


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cost_never_decreases_with_usage(data):
    tariff = data.draw(tariffs())
    call = data.draw(calls(tariff))
    compiled = compile_tariff(tariff)
    usages = np.sort(np.array(data.draw(st.lists(st.integers(0, 100_000), min_size=2, max_size=30)), dtype=np.int64))
    batch = CallBatch.from_calls(compiled, [call] * len(usages)).with_usage(usages)
    rated = rate_batch(compiled, batch)
    ok = rated.failure == 0
    assert np.all(np.diff(rated.cost_micros[ok]) >= 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_quota_matches_a_brute_force_search(data):
    tariff = data.draw(tariffs())
    call = data.draw(calls(tariff))
    used = data.draw(st.integers(0, 300))
    credit = data.draw(st.integers(-10, 3_000_000))
    cap = data.draw(st.integers(0, 400))
    compiled = compile_tariff(tariff)
    batch = CallBatch.from_calls(compiled, [call])
    units, cost, failure = affordable_units(compiled, batch, [used], [credit], [cap])

    def cost_at(usage: int) -> int:
        return rate_call(tariff, Call(call.plan, call.service, call.destination, call.start, usage)).cost_micros

    try:
        base = cost_at(used)
    except RatingFailed:
        assert failure[0] != 0 and units[0] == 0
        return
    fits = [x for x in range(cap + 1) if cost_at(used + x) - base <= credit]
    expected = max(fits, default=0)
    assert (int(units[0]), int(cost[0])) == (expected, cost_at(used + expected) - base)

    requested = data.draw(st.integers(0, 500))
    ladder = breakpoints(compiled, batch, [used], [requested], points=6)
    assert np.all(np.diff(ladder.units[0]) <= 0) and np.all(np.diff(ladder.cost_micros[0]) <= 0)
    assert int(ladder.base_cost_micros[0]) == base
    for total, total_cost in zip(ladder.units[0].tolist(), ladder.cost_micros[0].tolist(), strict=True):
        assert used <= total <= used + max(requested, 0)
        assert total_cost == cost_at(total)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_call_quota_equals_the_vectorised_quota(data):
    """``call_breakpoints`` and ``call_affordable_units`` (one call, scalar) give what ``breakpoints`` and
    ``affordable_units`` give for the same call: the same candidates, micro-units, failure and grant."""
    tariff = data.draw(tariffs())
    call = data.draw(calls(tariff))
    used = data.draw(st.one_of(st.integers(0, 300), st.integers(0, 200_000), st.just(-1)))
    requested = data.draw(st.one_of(st.integers(0, 500), st.integers(0, 100_000)))
    credit = data.draw(st.integers(-10, 3_000_000))
    compiled = compile_tariff(tariff)
    batch = CallBatch.from_calls(compiled, [call])
    pricing = CallPricing(tariff, call, used + requested)

    ladder = breakpoints(compiled, batch, [used], [requested], points=8)
    one = call_breakpoints(pricing, used, requested, points=8)
    assert one.units == ladder.units[0].tolist() and one.cost_micros == ladder.cost_micros[0].tolist()
    assert one.failure == ladder.failure[0]
    base = ladder.base.take(slice(0, 1))
    assert vector_or_failure(base, batch.with_usage(np.array([used])), 0) == (
        (one.base.failure, one.base.reason) if isinstance(one.base, RatingFailed) else one.base
    )

    units, cost, _ = affordable_units(compiled, batch, [used], [credit], [requested])
    assert call_affordable_units(pricing, used, credit, requested) == (int(units[0]), int(cost[0]))
