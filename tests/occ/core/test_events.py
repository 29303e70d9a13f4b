"""One-shot events (Diameter EVENT requests): direct debit, refund, balance check and price enquiry.

Prices from examples/tariff: a message is SMS, 0.05 each (ledger code 400000004 from the retail plan's message row);
data is 2.00 per MiB billed in 1 KiB increments, so 1500 octets bill as 2 KiB: 2 × 2.00 / 1024 = 0.00390625,
rounded up to 0.003907.
"""

from __future__ import annotations

import asyncio

from online_app import LONDON, MONDAY_PEAK
from redis_state import changed_keys, redis_state

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

ONE_EUR = 1_000_000


def event(
    subscriber: str,
    action: int,
    *,
    units: int = 3,
    session_id: str = "sms-1",
    number: int = 0,
    service: int = pb.MESSAGE,
    called: str = LONDON,
) -> pb.EventRequest:
    request = pb.EventRequest(
        session_id=session_id,
        request_number=number,
        subscriber=subscriber,
        action=action,
        service=service,
        rating_group=200,
        units=units,
        called_party=called,
    )
    request.event_time.seconds = MONDAY_PEAK
    return request


async def test_direct_debit_charges_once_and_appends_one_event(charging):
    await charging.account("sms", balance=ONE_EUR)
    answer = await charging.charging.ChargeEvent(event("sms", pb.DIRECT_DEBIT))
    assert (answer.result_code, answer.cost_micros, answer.enough_credit) == (pb.SUCCESS, 150_000, True)
    assert (answer.balance_micros, answer.available_micros, answer.currency) == (850_000, 850_000, "EUR")
    assert (await charging.balance("sms")).balance_micros == 850_000

    [charge] = [e for e in await charging.events("sms") if e["type"] != "topup"]
    assert charge["type"] == "event_charge"
    assert (charge["ledger"], charge["amount"], charge["cost"], charge["balance"]) == (
        "400000004",
        "-150000",
        "150000",
        "850000",
    )
    assert (charge["units"], charge["service"], charge["rate"], charge["rg"]) == ("3", "message", "SMS", "200")
    assert (charge["session_id"], charge["request_number"], charge["called"]) == ("sms-1", "0", LONDON)


async def test_a_repeated_event_gets_the_same_answer_and_is_not_charged_again(charging):
    await charging.account("rep", balance=ONE_EUR)
    first = await charging.charging.ChargeEvent(event("rep", pb.DIRECT_DEBIT))
    state = await redis_state(charging.app.redis)
    again = await charging.charging.ChargeEvent(event("rep", pb.DIRECT_DEBIT))
    assert again == first
    assert await redis_state(charging.app.redis) == state
    assert (await charging.balance("rep")).balance_micros == 850_000

    other = await charging.charging.ChargeEvent(event("rep", pb.DIRECT_DEBIT, number=1))  # a new request number
    assert other.balance_micros == 700_000


async def test_concurrent_copies_of_an_event_charge_once(charging):
    await charging.account("dup", balance=ONE_EUR)
    answers = await asyncio.gather(*(charging.charging.ChargeEvent(event("dup", pb.DIRECT_DEBIT)) for _ in range(5)))
    assert {answer.balance_micros for answer in answers} == {850_000}
    assert (await charging.balance("dup")).balance_micros == 850_000
    assert [e["type"] for e in await charging.events("dup")] == ["topup", "event_charge"]


async def test_direct_debit_beyond_available_is_credit_limit_reached_and_writes_only_its_answer(charging):
    await charging.account("short", balance=100_000, credit_limit=49_999)  # 3 SMS need 150000
    state = await redis_state(charging.app.redis)
    answer = await charging.charging.ChargeEvent(event("short", pb.DIRECT_DEBIT))
    assert (answer.result_code, answer.cost_micros, answer.enough_credit) == (pb.CREDIT_LIMIT_REACHED, 150_000, False)
    assert (answer.balance_micros, answer.available_micros) == (100_000, 149_999)
    # No balance change and no stream entry: only the stored answer, so that a repeat gets the same refusal.
    answers_key = charging.app.store.keys("short").event_answers(event("short", pb.DIRECT_DEBIT).session_id)
    assert changed_keys(state, await redis_state(charging.app.redis)) == {answers_key}

    await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="short", credit_limit_micros=50_000))
    repeat = await charging.charging.ChargeEvent(event("short", pb.DIRECT_DEBIT))
    assert repeat == answer  # the SMS was refused: its repeat is refused alike, never charged
    retry = await charging.charging.ChargeEvent(event("short", pb.DIRECT_DEBIT, session_id="sms-again"))
    assert (retry.result_code, retry.balance_micros, retry.available_micros) == (pb.SUCCESS, -50_000, 0)


async def test_refund_credits_the_price_back_and_appends_an_event(charging):
    await charging.account("ref", balance=ONE_EUR)
    await charging.charging.ChargeEvent(event("ref", pb.DIRECT_DEBIT))
    refund = await charging.charging.ChargeEvent(event("ref", pb.REFUND_ACCOUNT, units=2, session_id="sms-1-refund"))
    assert (refund.result_code, refund.cost_micros, refund.balance_micros) == (pb.SUCCESS, 100_000, 950_000)
    events = await charging.events("ref")
    assert [e["type"] for e in events] == ["topup", "event_charge", "event_refund"]
    assert (events[-1]["amount"], events[-1]["ledger"], events[-1]["balance"]) == ("100000", "400000004", "950000")
    again = await charging.charging.ChargeEvent(event("ref", pb.REFUND_ACCOUNT, units=2, session_id="sms-1-refund"))
    assert again == refund and (await charging.balance("ref")).balance_micros == 950_000


async def test_check_balance_answers_enough_credit_and_writes_nothing(charging):
    await charging.account("chk", balance=150_000)
    state = await redis_state(charging.app.redis)
    exact = await charging.charging.ChargeEvent(event("chk", pb.CHECK_BALANCE, units=3))
    assert (exact.result_code, exact.cost_micros, exact.enough_credit) == (pb.SUCCESS, 150_000, True)
    over = await charging.charging.ChargeEvent(event("chk", pb.CHECK_BALANCE, units=4, session_id="chk-2"))
    assert (over.result_code, over.cost_micros, over.enough_credit) == (pb.SUCCESS, 200_000, False)
    assert over.balance_micros == over.available_micros == 150_000
    assert await redis_state(charging.app.redis) == state


async def test_price_enquiry_prices_without_a_balance_check_or_a_write(charging):
    await charging.account("empty", balance=0)
    state = await redis_state(charging.app.redis)
    sms = await charging.charging.ChargeEvent(event("empty", pb.PRICE_ENQUIRY))
    assert (sms.result_code, sms.cost_micros, sms.balance_micros) == (pb.SUCCESS, 150_000, 0)
    data = await charging.charging.ChargeEvent(
        event("empty", pb.PRICE_ENQUIRY, units=1500, service=pb.DATA, called="", session_id="data-1")
    )
    assert (data.result_code, data.cost_micros) == (pb.SUCCESS, 3_907)
    call = await charging.charging.ChargeEvent(
        event("empty", pb.PRICE_ENQUIRY, units=61, service=pb.VOICE, session_id="voice-1")
    )
    assert (call.result_code, call.cost_micros) == (pb.SUCCESS, 300_834)
    assert await redis_state(charging.app.redis) == state
