"""Prices worked out by hand from examples/tariff (amounts in micro-units; 1 EUR = 1,000,000).

Relevant rows: STANDARD = 0.20 to connect, 0.10 per 60 s in 60 s steps from 0 s, then 0.05 per 60 s per 1 s from
60 s; OFFPEAK = 0.02 per 60 s per 1 s; PREMIUM = 1.00 per 60 s per 1 s, minimum 0.50, maximum 5.00;
INTERNATIONAL = 0.10 to connect, 0.30 per 60 s in 30 s steps, from 600 s 0.20 per 60 s per 1 s;
DATA = 2.00 per MiB in 1 KiB steps; SMS = 0.05 each; WHOLESALE = 0.008 per 60 s in 6 s steps.
Bands in Europe/London: PEAK Mon–Fri 08–18, OFFPEAK the rest of the weekdays, WEEKEND Sat–Sun.
"""

from __future__ import annotations

import pytest
from conftest import at

from rating_engine import (
    Call,
    CallBatch,
    Failure,
    RatingFailed,
    Service,
    Tariff,
    compile_tariff,
    normalize_number,
    rate_batch,
    rate_call,
)
from rating_engine.tariff import BandWindow, Binding, DestinationGroup, Rate, RateInterval

VOICE, DATA, MESSAGE = Service.VOICE, Service.DATA, Service.MESSAGE
LONDON_FIXED = "442079460000"
MONDAY_PEAK = at("2026-01-05T09:00:00")  # winter: London local time = UTC


@pytest.mark.parametrize(
    ("usage", "cost"),
    [
        (61, 300_834),  # 0.20 + 0.10 + 0.05/60 rounded up to the micro-unit
        (120, 350_000),  # 0.20 + 0.10 + 60 × 0.05/60 — exactly, not 0.35004 (no per-second rounding)
        (30, 300_000),  # the first step bills a whole 60 s
        (60, 300_000),
        (1, 300_000),
        (0, 0),  # no usage, no charge (not even the connect fee)
        (3600, 3_250_000),  # 0.20 + 0.10 + 3540 × 0.05/60 = 0.30 + 2.95
    ],
)
def test_step_tariff_of_the_specification(rate, usage, cost):
    rated = rate("retail", VOICE, LONDON_FIXED, MONDAY_PEAK, usage)
    assert rated.cost_micros == cost
    assert (rated.group, rated.ledger_code, rated.rate) == ("UK_FIXED", 400000001, "STANDARD")


def test_call_crossing_from_peak_to_offpeak_is_split(rate):
    # Starts 17:59:00 in PEAK: 60 s of STANDARD (0.20 + 0.10), then 60 s OFFPEAK at 0.02/min → 0.32.
    rated = rate("retail", VOICE, LONDON_FIXED, at("2026-01-05T17:59:00"), 120)
    assert rated.cost_micros == 320_000
    assert rated.rate == "STANDARD"  # the rate in force at the start


def test_call_crossing_from_offpeak_into_peak_takes_the_peak_steps_by_call_offset(rate):
    # Starts 07:59:30 OFFPEAK: 30 s at 0.02/min = 0.01. From 08:00 (offset 30 s) STANDARD applies by call offset:
    # billing resumes where OFFPEAK's rounding ended (30 s), its first step's 60 s increment bills [30, 90) = 0.10,
    # then [90, 120) at 0.05/min = 0.025. The connect fee is the starting rate's (OFFPEAK: none).
    rated = rate("retail", VOICE, LONDON_FIXED, at("2026-01-05T07:59:30"), 120)
    assert rated.cost_micros == 10_000 + 100_000 + 25_000
    assert rated.rate == "OFFPEAK"


def test_weekend_band(rate):
    rated = rate("retail", VOICE, LONDON_FIXED, at("2026-01-10T12:00:00"), 90)  # a Saturday
    assert (rated.cost_micros, rated.rate) == (30_000, "OFFPEAK")  # 90 × 0.02/60


def test_band_edges_follow_local_summer_time(rate):
    # 1 July: London is UTC+1, so 16:59:30 UTC is 17:59:30 local: 30 s of PEAK, then OFFPEAK. STANDARD's first step
    # bills offsets [0, 60) whole (0.20 + 0.10); OFFPEAK then bills only what is left, [60, 90): 30 × 0.02/60 = 0.01.
    rated = rate("retail", VOICE, LONDON_FIXED, at("2026-07-01T16:59:30"), 90)
    assert rated.cost_micros == 310_000


def test_utc_offset_change_inside_a_call_adds_no_rounding(rate):
    # Sunday 29 March 2026, 01:00 UTC: London jumps from 01:00 GMT to 02:00 BST; the band stays WEEKEND, so the call
    # is priced as one run: 120 s × 0.02/60 = 0.04 exactly. Rounding 61 s and 59 s apart would give 0.040001.
    rated = rate("retail", VOICE, LONDON_FIXED, at("2026-03-29T00:58:59"), 120)
    assert rated.cost_micros == 40_000


def test_maximum_cost_caps_a_long_premium_call(rate):
    assert rate("retail", VOICE, "449012345", MONDAY_PEAK, 600).cost_micros == 5_000_000  # 10.00 capped at 5.00


def test_minimum_charge_of_a_short_premium_call(rate):
    assert rate("retail", VOICE, "449012345", MONDAY_PEAK, 10).cost_micros == 500_000  # 0.166667 raised to 0.50


def test_premium_call_between_minimum_and_maximum(rate):
    assert rate("retail", VOICE, "449112345", MONDAY_PEAK, 61).cost_micros == 1_016_667  # 61 × 1.00/60 rounded up


def test_longest_prefix_wins(rate):
    assert rate("retail", VOICE, "447700900123", MONDAY_PEAK, 60).group == "UK_MOBILE"
    assert rate("retail", VOICE, "449012345", MONDAY_PEAK, 60).group == "UK_PREMIUM"
    assert rate("retail", VOICE, "441632960000", MONDAY_PEAK, 60).group == "UK_FIXED"


def test_international_steps_and_increments(rate):
    # 0.10 connect; [0, 600) in 30 s steps at 0.30/min; 601 s → 600 s of steps (3.00) + 1 s at 0.20/60 (0.003334).
    assert rate("retail", VOICE, "33123456789", MONDAY_PEAK, 601).cost_micros == 100_000 + 3_000_000 + 3_334
    # 31 s bills two 30 s steps: 0.10 + 0.30.
    assert rate("retail", VOICE, "4915112345678", MONDAY_PEAK, 31).cost_micros == 400_000


def test_data_is_billed_in_kibibyte_increments(rate):
    # 1500 octets → 2 × 1024 = 2048 octets × 2.00 / 1048576 = 0.00390625 → rounded up 0.003907.
    rated = rate("retail", DATA, "", MONDAY_PEAK, 1500)
    assert (rated.cost_micros, rated.group, rated.ledger_code, rated.rate) == (3_907, "", 400000005, "DATA")
    assert rate("retail", DATA, "", MONDAY_PEAK, 1_048_576).cost_micros == 2_000_000
    # One octet past 10 MiB bills one more KiB: 20.00 + 1024 × 2.00/1048576 = 20.001953125 → 20.001954.
    assert rate("retail", DATA, "", MONDAY_PEAK, 10 * 1_048_576 + 1).cost_micros == 20_001_954


def test_messages_are_counted(rate):
    rated = rate("retail", MESSAGE, "447700900123", MONDAY_PEAK, 3)
    assert (rated.cost_micros, rated.group, rated.ledger_code) == (150_000, "UK_MOBILE", 400000004)


def test_wholesale_plan_overrides_the_ledger_code(rate):
    rated = rate("wholesale", VOICE, "33123456789", MONDAY_PEAK, 61)
    assert (rated.cost_micros, rated.ledger_code, rated.group) == (8_800, 400000003, "EU")  # 66 s × 0.008/60


def test_unknown_destination_is_a_failure_not_a_zero_price(rate):
    failed = rate("retail", VOICE, "999123", MONDAY_PEAK, 60)
    assert isinstance(failed, RatingFailed)
    assert failed.failure == Failure.UNKNOWN_DESTINATION
    assert failed.reason == "no destination prefix matches 999123"


def test_service_without_a_rate_is_a_failure_with_the_reason(rate):
    failed = rate("retail", VOICE, "881612345", MONDAY_PEAK, 60)
    assert isinstance(failed, RatingFailed)
    assert failed.failure == Failure.NO_RATE
    assert failed.reason == "plan 'retail' has no voice rate for group SATELLITE in band PEAK"
    failed = rate("wholesale", DATA, "", MONDAY_PEAK, 100)
    assert isinstance(failed, RatingFailed)
    assert failed.reason == "plan 'wholesale' has no data rate for group (none) in band PEAK"


def test_unknown_plan_and_bad_usage_fail(rate):
    assert rate("gold", VOICE, LONDON_FIXED, MONDAY_PEAK, 60).failure == Failure.UNKNOWN_PLAN
    assert rate("retail", VOICE, LONDON_FIXED, MONDAY_PEAK, -1).failure == Failure.BAD_USAGE
    assert rate("retail", VOICE, LONDON_FIXED, MONDAY_PEAK, 10**7 + 1).failure == Failure.BAD_USAGE
    assert rate("retail", VOICE, LONDON_FIXED, 0, 60).failure == Failure.BAD_START
    # Several problems at once: both paths name the same one (usage, then start, then plan, then destination).
    assert rate("gold", VOICE, "999", 0, -1).failure == Failure.BAD_USAGE
    assert rate("gold", VOICE, "999", 0, 1).failure == Failure.BAD_START
    assert rate("gold", VOICE, "999", MONDAY_PEAK, 1).failure == Failure.UNKNOWN_PLAN


@pytest.mark.parametrize(
    "dialled",
    ["+44 20 7946 0000", "0044 20 7946 0000", "44 (20) 7946-0000", "020 7946 0000", "442079460000"],
)
def test_numbers_in_every_format_rate_alike(rate, tariff, dialled):
    number = normalize_number(dialled, tariff.country_code)
    assert number == LONDON_FIXED
    assert rate("retail", VOICE, number, MONDAY_PEAK, 61).cost_micros == 300_834


def test_band_edge_inside_the_skipped_spring_forward_hour():
    # Band NIGHT runs Sunday 00:00–01:30 local, DAY the rest of the week. On 29 March 2026 London jumps from 01:00 GMT
    # to 02:00 BST at 01:00 UTC, so 01:30 local never happens and DAY begins at the jump. A call from 00:30 UTC for
    # an hour is 30 min of NIGHT (0.01/min → 0.30) and 30 min of DAY (1.00/min → 30.00).
    windows = [
        BandWindow("DAY", tuple(range(6)), 0, 1440),
        BandWindow("NIGHT", (6,), 0, 90),
        BandWindow("DAY", (6,), 90, 1440),
    ]
    tariff = Tariff(
        "dst",
        "EUR",
        "Europe/London",
        "",
        {"G": DestinationGroup("G", 400000001, "local")},
        {"44": "G"},
        {
            "NIGHT": Rate("NIGHT", 0, 0, None, (RateInterval(0, 10_000, 60, 1),)),
            "DAY": Rate("DAY", 0, 0, None, (RateInterval(0, 1_000_000, 60, 1),)),
        },
        tuple(windows),
        (Binding("p", VOICE, "G", "NIGHT", "NIGHT"), Binding("p", VOICE, "G", "DAY", "DAY")),
    )
    call = Call("p", VOICE, "441", at("2026-03-29T00:30:00"), 3600)
    compiled = compile_tariff(tariff)
    batch = CallBatch.from_calls(compiled, [call])
    assert rate_call(tariff, call).cost_micros == 300_000 + 30_000_000
    assert rate_batch(compiled, batch).result(0, batch).cost_micros == 300_000 + 30_000_000
