"""The pure parts: rounding to ISO 4217 exponents, rates, billing cycles across time zones and DST, validators."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import pytest
from billing_helpers import round_micros
from hypothesis import given
from hypothesis import strategies as st

from settlement.billing import validate
from settlement.billing.amounts import parse_rate_ppm, round_to_currency
from settlement.billing.cycle import CycleError, check_billing_day, cycle_start, next_boundary, zone
from settlement.billing.late import is_late, own_period
from settlement.billing.run import due_periods
from settlement.billing.setup import BillingAccount
from settlement.billing.statement import Item, compute
from settlement.billing.tax import TaxProfile

VAT = TaxProfile(name="V", mode="EXCLUSIVE", rate_ppm=200_000, tax_code="S", tax_ledger_code="4700")


def test_half_up_to_each_currencys_exponent():
    assert round_to_currency(Decimal("0.125"), "EUR") == Decimal("0.13")
    assert round_to_currency(Decimal("-0.125"), "EUR") == Decimal("-0.13")  # away from zero, never half-even
    assert round_to_currency(Decimal("2.5"), "JPY") == Decimal("3")
    assert round_to_currency(Decimal("0.0005"), "BHD") == Decimal("0.001")
    assert round_micros(12_345_000, "EUR") == 12_350_000


def test_rates_are_exact():
    assert parse_rate_ppm("20%") == 200_000
    assert parse_rate_ppm("19.6 %") == 196_000
    assert parse_rate_ppm("0.07") == 70_000
    for bad in ("101%", "0.0000001", "-1%"):
        with pytest.raises(ValueError):
            parse_rate_ppm(bad)


def ms(*args: int, tz: str = "UTC") -> int:
    return int(datetime(*args, tzinfo=zone(tz)).timestamp() * 1000)


def test_cycles_follow_the_local_billing_day():
    tz = "Europe/Berlin"
    t = ms(2026, 3, 20, 12, tz=tz)
    assert cycle_start(t, 15, tz) == ms(2026, 3, 15, tz=tz)
    assert next_boundary(t, 15, tz) == ms(2026, 4, 15, tz=tz)  # across the DST change: 23 h earlier in UTC terms
    assert next_boundary(ms(2026, 4, 15, tz=tz), 15, tz) == ms(2026, 5, 15, tz=tz)
    assert cycle_start(ms(2026, 1, 3, tz=tz), 15, tz) == ms(2025, 12, 15, tz=tz)
    with pytest.raises(CycleError):
        check_billing_day(29)
    with pytest.raises(CycleError):
        zone("Nowhere/City")


def test_due_periods_close_every_period_ended_by_the_date():
    account = BillingAccount(account="a", currency="EUR", first_seen_ms=0, billing_day=5, timezone="America/New_York")
    start = ms(2026, 1, 5, tz="America/New_York")
    periods = due_periods(account, start, date(2026, 4, 5))
    assert [datetime.fromtimestamp(e / 1000, UTC).date().isoformat() for _, e in periods] == [
        "2026-02-05", "2026-03-05", "2026-04-05"]  # fmt: skip
    assert due_periods(account, start, date(2026, 2, 4)) == []


def item(cost: int, code: str = "400000001", kind: str = "session", **extra) -> Item:
    return Item(id=f"x{cost}", kind=kind, record_type="PAYMENT" if kind == "payment" else "MAIN", ledger_code=code,
                service="voice", units=1, cost=cost, currency="EUR", revision=0, end_ms=0, **extra)  # fmt: skip


@given(st.lists(st.tuples(st.integers(-5_000_000, 50_000_000), st.sampled_from(["1", "2", "3"])), max_size=30),
       st.integers(-10**9, 10**9).map(lambda m: m - m % 10_000))  # fmt: skip
def test_any_statement_balances_and_is_valid(items, brought_forward):
    s = compute([item(c, code) for c, code in items], currency="EUR", profile=VAT, brought_forward=brought_forward)
    assert validate.problems(s) == []
    exact = Decimal(brought_forward + sum(c for c, _ in items)) * Decimal("1e-6")
    exact += sum((g.tax_exact for g in s.tax_groups), Decimal(0))
    assert s.carried_forward == round_micros(exact * 1_000_000, "EUR")


def test_validators_name_what_is_wrong():
    s = compute([item(1_000_000), item(-2_000_000, kind="payment")], currency="EUR", profile=VAT, brought_forward=0)
    broken = msgspec.structs.replace(s, carried_forward=s.carried_forward + 10_000, charges=0,
                                     foreign_currency=("x9",))  # fmt: skip
    found = validate.problems(broken)
    assert any("balance does not carry" in p for p in found)
    assert any(p.startswith("charges total 0 differs") for p in found)
    assert any("not in EUR" in p for p in found)
    line = msgspec.structs.replace(s.lines[0], ledger_code="", amount=1)
    found = validate.problems(msgspec.structs.replace(s, lines=(line, *s.lines[1:])))
    assert any("has no ledger code" in p for p in found) and any("not rounded" in p for p in found)


def test_late_items_get_lines_of_their_own_and_are_counted():
    january = ms(2026, 1, 1, tz="Europe/Berlin")
    items = [item(1_004_000), item(2_003_000, late_period_start_ms=january),
             item(1_001_000, late_period_start_ms=january),
             item(-5_000_000, "400000009", "payment", late_period_start_ms=january, description="Top-up")]  # fmt: skip
    s = compute(items, currency="EUR", profile=VAT, brought_forward=0, timezone="Europe/Berlin")
    assert [(line.category, line.description, line.count, line.amount) for line in s.lines] == [
        ("CHARGE", "Usage voice (400000001)", 1, 1_000_000),
        ("CHARGE", "Late usage voice (400000001) of 2026-01-01", 2, 3_000_000),  # its first day in Berlin
        ("PAYMENT", "Top-up (late)", 1, -5_000_000),
        ("TAX", "Tax S 20 % on 400000001", 3, 800_000),  # one tax on the code's whole base 4.008: 0.8016
        ("ROUNDING", "Rounding difference", 0, 10_000),  # exact −0.1904 carries as −0.19, the lines make −0.20
    ]
    assert (s.item_count, s.late_items, s.charges) == (4, 3, 4_000_000) and validate.problems(s) == []


def test_a_late_item_belonged_to_the_invoiced_period_holding_its_start_or_else_to_its_billing_cycle():
    tz = "Europe/Berlin"
    split = ms(2026, 1, 20, 15, tz=tz)
    invoiced = [(ms(2026, 1, 1, tz=tz), split), (split, ms(2026, 2, 1, tz=tz))]
    out_of_turn = own_period(ms(2026, 1, 20, 9, tz=tz), invoiced, billing_day=1, timezone=tz)
    assert out_of_turn == invoiced[0]  # an out-of-turn invoice ended the first period at 15:00 on the 20th
    assert own_period(ms(2026, 1, 25, tz=tz), invoiced, billing_day=1, timezone=tz) == invoiced[1]
    before_the_first = own_period(ms(2025, 11, 20, tz=tz), invoiced, billing_day=1, timezone=tz)
    assert before_the_first == (ms(2025, 11, 1, tz=tz), ms(2025, 12, 1, tz=tz))
    items = ((1, 0), (5, 0), (1, 1), (9, 0))  # (start, revision) billed in a period starting at 5
    assert [is_late(start, revision, 5) for start, revision in items] == [True, False, False, False]  # a correction
