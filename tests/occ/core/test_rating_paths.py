"""The engine's two rating paths (``occ.core.rating``): the scalar one for small batches and the vectorised one give
the same rated rows — cumulative cost, ladder of grants, exact grant, failures — for any batch, on the example
tariff (step rates, connect fees, a minimum and a maximum charge, time bands, a summer-time change)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from occ.core import rating
from occ.core.rating import Row, rate, rate_scalar, rate_vectorised
from rating_engine import Call, Service, compile_tariff, load_tariff

COMPILED = compile_tariff(load_tariff(Path(__file__).resolve().parents[3] / "examples" / "tariff"))
DESTINATIONS = ["442079460000", "447700900123", "449012345", "33142685300", "12125550100", "881612345", "99", ""]
SUMMER_TIME = int(datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp())  # Europe/London goes to BST
EVENING = int(datetime(2026, 3, 4, 17, 58, tzinfo=UTC).timestamp())  # two minutes before the PEAK band ends

calls = st.builds(
    Call,
    st.sampled_from(["retail", "wholesale", "unknown"]),
    st.sampled_from(list(Service)),
    st.sampled_from(DESTINATIONS),
    st.one_of(st.integers(SUMMER_TIME - 3600, SUMMER_TIME + 60), st.integers(EVENING - 600, EVENING + 600), st.just(0)),
    st.one_of(st.integers(0, 900), st.integers(0, 50_000_000), st.just(-1)),
)


@st.composite
def batches(draw) -> list[Row]:
    rows = []
    for position in range(draw(st.integers(1, 6))):
        exact_wanted = draw(st.booleans())
        for quota in range(1 if exact_wanted else draw(st.integers(1, 3))):
            back = draw(st.sampled_from([0, 0, 50_000, 2_000_000]))
            credit = draw(st.one_of(st.integers(-100_000, 3_000_000), st.just(2**62)))
            requested = draw(st.sampled_from([0, 1, 30, 60, 3600, 10_000_000]))
            rows.append(Row(position, quota, draw(calls), requested, credit + back, back, exact_wanted=exact_wanted))
    return rows


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=batches())
def test_the_scalar_path_rates_like_the_vectorised_one(rows):
    assert rate_scalar(COMPILED, rows) == rate_vectorised(COMPILED, rows)


def test_small_batches_take_the_scalar_path_and_large_ones_the_vectorised_one(monkeypatch):
    calls_made: list[str] = []
    monkeypatch.setattr(rating, "rate_scalar", lambda tariff, rows: calls_made.append("scalar") or {})
    monkeypatch.setattr(rating, "rate_vectorised", lambda tariff, rows: calls_made.append("vectorised") or {})
    call = Call("retail", Service.VOICE, "442079460000", EVENING, 0)
    rate(COMPILED, [Row(i, 0, call, 60, 10**9) for i in range(rating.SCALAR_MAX_ROWS)])
    rate(COMPILED, [Row(i, 0, call, 60, 10**9) for i in range(rating.SCALAR_MAX_ROWS + 1)])
    assert calls_made == ["scalar", "vectorised"]
