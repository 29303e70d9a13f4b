"""Telecom outcomes are answers with a Diameter result code (not gRPC errors): 4010, 4012, 5002, 5030, 5031.

Amounts from examples/tariff at Monday 09:00 UTC (PEAK → STANDARD): cost(u) = 0.20 connect + 0.10 for the first
60 s step + 0.05/60 per second after, rounded up once per run: cost(60) = 300000, cost(120) = 350000,
cost(121) = 350834.
"""

from __future__ import annotations

import pytest
from online_app import LONDON, MONDAY_PEAK, session, voice
from redis_state import changed_keys, redis_state

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

TEN_EUR = 10_000_000
SATELLITE = "+881612345678"  # SATELLITE: no voice rate on the retail plan
NOWHERE = "+999123"  # no destination prefix matches


def authorize(subscriber: str, called: str = LONDON, *, max_units: int = 0) -> pb.AuthorizeRequest:
    request = pb.AuthorizeRequest(subscriber=subscriber, service=pb.VOICE, called_party=called, max_units=max_units)
    request.event_time.seconds = MONDAY_PEAK
    return request


def event(subscriber: str, action: int = pb.DIRECT_DEBIT, *, session_id: str = "ev-1") -> pb.EventRequest:
    request = pb.EventRequest(
        session_id=session_id, subscriber=subscriber, action=action, service=pb.MESSAGE, units=1, called_party=LONDON
    )
    request.event_time.seconds = MONDAY_PEAK
    return request


async def block(client, account_id: str) -> None:
    account = await client.admin.UpdateAccount(admin.UpdateAccountRequest(id=account_id, status=admin.BLOCKED))
    assert account.status == admin.BLOCKED


async def test_a_blocked_account_is_denied_service_and_charged_nothing(charging):
    await charging.account("blocked", balance=TEN_EUR)
    await block(charging, "blocked")
    state = await redis_state(charging.app.redis)

    start = await charging.charging.StartSession(session("b1", 0, "blocked", voice(60)))
    assert start.result_code == pb.END_USER_SERVICE_DENIED and "blocked" in start.reason
    assert not any(quota.granted_units for quota in start.quotas)
    auth = await charging.charging.Authorize(authorize("blocked"))
    assert (auth.result_code, auth.max_units) == (pb.END_USER_SERVICE_DENIED, 0)
    debit = await charging.charging.ChargeEvent(event("blocked"))
    assert (debit.result_code, debit.balance_micros) == (pb.END_USER_SERVICE_DENIED, TEN_EUR)

    # No session, no debit, no stream entry: only the stored refusals (a repeat is refused alike).
    keys = charging.app.store.keys("blocked")
    stored = {keys.session("b1"), keys.event_answers(event("blocked").session_id)}
    assert changed_keys(state, await redis_state(charging.app.redis)) == stored


async def test_unblocking_restores_service(charging):
    await charging.account("flip", balance=TEN_EUR)
    await block(charging, "flip")
    await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="flip", status=admin.ACTIVE))
    start = await charging.charging.StartSession(session("f1", 0, "flip", voice(60)))
    assert (start.result_code, start.quotas[0].granted_units) == (pb.SUCCESS, 60)


async def test_a_session_whose_account_is_blocked_is_charged_its_usage_but_granted_nothing(charging):
    await charging.account("mid", balance=TEN_EUR)
    start = await charging.charging.StartSession(session("m1", 0, "mid", voice(60)))
    assert (start.quotas[0].granted_units, start.available_micros) == (60, TEN_EUR - 300_000)
    await block(charging, "mid")

    update = await charging.charging.UpdateSession(session("m1", 1, "mid", voice(60, used=60)))
    [quota] = update.quotas
    assert (quota.result_code, quota.granted_units, quota.used_units_total, quota.cost_micros) == (4010, 0, 60, 300_000)
    assert update.result_code == pb.END_USER_SERVICE_DENIED
    assert (update.balance_micros, update.available_micros) == (TEN_EUR - 300_000, TEN_EUR - 300_000)
    balance = await charging.balance("mid")
    assert (balance.balance_micros, balance.reserved_micros) == (TEN_EUR - 300_000, 0)
    [charge] = [e for e in await charging.events("mid") if e["type"] == "session_charge"]
    assert (charge["amount"], charge["units"]) == ("-300000", "60")


async def test_an_unknown_subscriber_is_user_unknown_everywhere(charging):
    state = await redis_state(charging.app.redis)
    start = await charging.charging.StartSession(session("u1", 0, "ghost", voice(60)))
    assert start.result_code == pb.USER_UNKNOWN and start.reason
    assert (await charging.charging.Authorize(authorize("ghost"))).result_code == pb.USER_UNKNOWN
    assert (await charging.charging.ChargeEvent(event("ghost"))).result_code == pb.USER_UNKNOWN
    refund = await charging.charging.ChargeEvent(event("ghost", pb.REFUND_ACCOUNT, session_id="ev-2"))
    assert refund.result_code == pb.USER_UNKNOWN
    assert (await charging.balance("ghost")).result_code == pb.USER_UNKNOWN
    # Nothing but the refused start's stored answer (a repeat is refused alike).
    assert changed_keys(state, await redis_state(charging.app.redis)) == {
        charging.app.store.keys("ghost").session("u1")
    }


@pytest.mark.parametrize(
    ("called", "cause"),
    [(SATELLITE, "no voice rate for group SATELLITE"), (NOWHERE, "no destination prefix matches 999123")],
)
async def test_an_unrateable_call_is_authorized_nothing_with_the_cause(charging, called, cause):
    await charging.account("rf", balance=TEN_EUR)
    answer = await charging.charging.Authorize(authorize("rf", called))
    assert (answer.result_code, answer.max_units, answer.cost_micros) == (pb.RATING_FAILED, 0, 0)
    assert cause in answer.reason
    price = await charging.charging.ChargeEvent(
        pb.EventRequest(
            session_id="p1", subscriber="rf", action=pb.PRICE_ENQUIRY, service=pb.VOICE, units=60, called_party=called
        )
    )
    assert price.result_code == pb.RATING_FAILED and cause in price.reason


@pytest.mark.parametrize(
    ("called", "cause"),
    [(SATELLITE, "no voice rate for group SATELLITE"), (NOWHERE, "no destination prefix matches 999123")],
)
async def test_an_unrateable_start_fails_with_the_cause_and_opens_nothing(charging, called, cause):
    await charging.account("rf", balance=TEN_EUR)
    state = await redis_state(charging.app.redis)
    start = await charging.charging.StartSession(session("r1", 0, "rf", voice(60), called=called))
    assert start.quotas[0].result_code == pb.RATING_FAILED and cause in start.quotas[0].reason
    assert cause in start.reason
    assert start.result_code == pb.RATING_FAILED  # nothing requested was granted: the request failed
    # No open session, hold, deadline or stream entry: only the stored answer (a repeat is refused alike).
    session_key = charging.app.store.keys("rf").session("r1")
    assert changed_keys(state, await redis_state(charging.app.redis)) == {session_key}
    assert await charging.app.redis.hget(session_key, "state") == b"FAILED"
    assert await charging.charging.StartSession(session("r1", 0, "rf", voice(60), called=called)) == start


async def test_update_and_end_of_an_unknown_session_are_unknown_session_id(charging):
    await charging.account("nos", balance=TEN_EUR)
    state = await redis_state(charging.app.redis)
    update = await charging.charging.UpdateSession(session("never", 1, "nos", voice(60, used=30)))
    end = await charging.charging.EndSession(session("never", 2, "nos", voice(used=30)))
    assert (update.result_code, end.result_code) == (pb.UNKNOWN_SESSION_ID, pb.UNKNOWN_SESSION_ID)
    assert await redis_state(charging.app.redis) == state


async def test_update_of_an_ended_session_is_unknown_session_id(charging):
    await charging.account("ended", balance=TEN_EUR)
    await charging.charging.StartSession(session("e1", 0, "ended", voice(60)))
    assert (await charging.charging.EndSession(session("e1", 1, "ended", voice(used=60)))).result_code == pb.SUCCESS
    late = await charging.charging.UpdateSession(session("e1", 2, "ended", voice(60, used=10)))
    assert late.result_code == pb.UNKNOWN_SESSION_ID
    assert (await charging.balance("ended")).balance_micros == TEN_EUR - 300_000


@pytest.mark.parametrize(
    ("balance", "max_units", "cost"),
    [
        (350_000, 120, 350_000),  # cost(120) = 0.35 exactly; cost(121) = 0.350834
        (350_833, 120, 350_000),  # one micro-unit short of 121 s
        (350_834, 121, 350_834),
        (300_000, 60, 300_000),  # the connect fee and the first 60 s step, nothing more
        (1_000_000, 900, 1_000_000),  # 0.30 + 0.05 × 840/60 = 1.00: 60 + 840 s
    ],
)
async def test_authorize_gives_the_exact_longest_affordable_call(charging, balance, max_units, cost):
    await charging.account("low", balance=balance)
    answer = await charging.charging.Authorize(authorize("low"))
    assert (answer.result_code, answer.max_units, answer.cost_micros) == (pb.SUCCESS, max_units, cost)
    assert (answer.balance_micros, answer.available_micros, answer.currency) == (balance, balance, "EUR")
    assert answer.destination_group == "UK_FIXED"


async def test_authorize_counts_the_credit_limit_and_open_holds(charging):
    await charging.account("lim", balance=100_000, credit_limit=250_000)  # available 0.35
    assert (await charging.charging.Authorize(authorize("lim"))).max_units == 120
    await charging.charging.StartSession(session("h1", 0, "lim", voice(60)))  # holds 0.30
    answer = await charging.charging.Authorize(authorize("lim"))
    assert (answer.result_code, answer.available_micros) == (pb.CREDIT_LIMIT_REACHED, 50_000)


async def test_authorize_caps_at_max_units(charging):
    await charging.account("cap", balance=TEN_EUR)
    answer = await charging.charging.Authorize(authorize("cap", max_units=90))
    assert (answer.max_units, answer.cost_micros) == (90, 325_000)  # 0.30 + 0.05 × 30/60


@pytest.mark.parametrize("balance", [0, 299_999])
async def test_authorize_is_credit_limit_reached_below_connect_fee_and_first_step(charging, balance):
    await charging.account("poor", balance=balance)
    answer = await charging.charging.Authorize(authorize("poor"))
    assert (answer.result_code, answer.max_units, answer.cost_micros) == (pb.CREDIT_LIMIT_REACHED, 0, 0)
    assert answer.balance_micros == balance and answer.reason
    start = await charging.charging.StartSession(session("p1", 0, "poor", voice(60)))
    assert (start.result_code, start.quotas[0].result_code) == (pb.CREDIT_LIMIT_REACHED, pb.CREDIT_LIMIT_REACHED)
