"""Session semantics: the call flow, holds that replace, cumulative pricing, overuse, duplicates, unknown sessions.

Amounts from examples/tariff at Monday 09:00 UTC (PEAK → STANDARD): cost(u) = 0.20 + 0.10 for the first 60 s step
+ 0.05/60 per second after 60 s, each run rounded up to the micro-unit: cost(60) = 300000, cost(61) = 300834,
cost(120) = 350000, cost(121) = 350834, cost(150) = 375000.
"""

from __future__ import annotations

import asyncio

from online_app import session, voice

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

TEN_EUR = 10_000_000


async def test_call_flow_charges_cumulative_usage_once(backend_charging):
    client = backend_charging
    await client.account("alice", balance=TEN_EUR)

    start = await client.charging.StartSession(session("s1", 0, "alice", voice(requested=60)))
    assert (start.result_code, start.quotas[0].result_code, start.quotas[0].granted_units) == (2001, 2001, 60)
    assert start.validity_time_s == 60 and start.available_micros == TEN_EUR - 300_000

    update = await client.charging.UpdateSession(session("s1", 1, "alice", voice(requested=60, used=61)))
    quota = update.quotas[0]
    assert (quota.used_units_total, quota.cost_micros, quota.granted_units, quota.overused_units) == (
        61,
        300_834,
        60,
        1,
    )
    assert update.balance_micros == TEN_EUR - 300_834
    assert update.available_micros == TEN_EUR - 300_834 - 50_000  # new hold: cost(121) - cost(61)

    end = await client.charging.EndSession(session("s1", 2, "alice", voice(used=59)))
    assert (end.result_code, end.cost_micros, end.quotas[0].used_units_total) == (2001, 350_000, 120)
    balance = await client.balance("alice")
    assert (balance.balance_micros, balance.reserved_micros) == (TEN_EUR - 350_000, 0)

    events = await client.events("alice")
    charges = [e for e in events if e["type"] == "session_charge"]
    assert [int(e["amount"]) for e in charges] == [-300_834, -49_166]
    assert [e["balance"] for e in charges] == [str(TEN_EUR - 300_834), str(TEN_EUR - 350_000)]
    [close] = [e for e in events if e["type"] == "session_close"]
    assert (close["cost"], close["units"], close["cause"], close["over"]) == ("350000", "120", "TERMINATE", "1")
    assert (close["group"], close["ledger"], close["rate"], close["called"]) == (
        "UK_FIXED",
        "400000001",
        "STANDARD",
        "+442079460000",
    )
    assert close["tariff"] == client.app.tariffs.current.hash


async def test_every_balance_change_is_on_the_stream(backend_charging):
    client = backend_charging
    await client.account("bob", balance=TEN_EUR)
    await client.charging.StartSession(session("b1", 0, "bob", voice(requested=60)))
    for number in range(1, 6):
        await client.charging.UpdateSession(session("b1", number, "bob", voice(requested=60, used=37)))
    await client.charging.EndSession(session("b1", 6, "bob", voice(used=5)))
    balance = await client.balance("bob")
    events = await client.events("bob")
    assert sum(int(e["amount"]) for e in events) == balance.balance_micros  # opening top-up included
    assert int(events[-1]["balance"]) == balance.balance_micros


async def test_new_hold_replaces_the_previous_one(charging):
    await charging.account("carol", balance=TEN_EUR)
    await charging.charging.StartSession(session("c1", 0, "carol", voice(requested=60)))
    assert (await charging.balance("carol")).reserved_micros == 300_000
    await charging.charging.UpdateSession(session("c1", 1, "carol", voice(requested=60, used=0)))
    assert (await charging.balance("carol")).reserved_micros == 300_000  # replaced, not 600000
    answer = await charging.charging.UpdateSession(session("c1", 2, "carol", voice(requested=120, used=30)))
    assert answer.quotas[0].cost_micros == 300_000  # cost(30): the first 60 s step
    balance = await charging.balance("carol")
    assert (balance.balance_micros, balance.reserved_micros) == (TEN_EUR - 300_000, 75_000)  # cost(150) - cost(30)


async def test_usage_above_the_grant_is_charged_and_reported(charging):
    await charging.account("dave", balance=TEN_EUR)
    await charging.charging.StartSession(session("d1", 0, "dave", voice(requested=60)))
    end = await charging.charging.EndSession(session("d1", 1, "dave", voice(used=150)))
    assert (end.quotas[0].cost_micros, end.quotas[0].overused_units) == (375_000, 90)
    assert (await charging.balance("dave")).balance_micros == TEN_EUR - 375_000


async def test_repeated_request_replays_the_stored_answer_and_charges_nothing(backend_charging):
    client = backend_charging
    await client.account("erin", balance=TEN_EUR)
    await client.charging.StartSession(session("e1", 0, "erin", voice(requested=60)))
    request = session("e1", 1, "erin", voice(requested=60, used=61))
    answers = await asyncio.gather(*(client.charging.UpdateSession(request) for _ in range(10)))
    assert len({answer.SerializeToString() for answer in answers}) == 1
    again = await client.charging.UpdateSession(request)
    assert again == answers[0]
    assert (await client.balance("erin")).balance_micros == TEN_EUR - 300_834
    charges = [e for e in await client.events("erin") if e["type"] == "session_charge"]
    assert len(charges) == 1
    repeated_start = await client.charging.StartSession(session("e1", 0, "erin", voice(requested=60)))
    assert repeated_start.quotas[0].granted_units == 60 and repeated_start.balance_micros == TEN_EUR


async def test_out_of_order_updates_are_not_errors(charging):
    await charging.account("fay", balance=TEN_EUR)
    await charging.charging.StartSession(session("f1", 0, "fay", voice(requested=60)))
    late = await charging.charging.UpdateSession(session("f1", 3, "fay", voice(requested=60, used=40)))
    early = await charging.charging.UpdateSession(session("f1", 2, "fay", voice(requested=60, used=40)))
    assert (late.result_code, early.result_code) == (2001, 2001)
    assert early.quotas[0].used_units_total == 80 and early.quotas[0].cost_micros == 316_667  # 0.30 + 20 s
    end = await charging.charging.EndSession(session("f1", 4, "fay", voice(used=0)))
    assert end.cost_micros == 316_667


async def test_requests_on_unknown_or_closed_sessions_get_5002(charging):
    await charging.account("gus", balance=TEN_EUR)
    unknown = await charging.charging.UpdateSession(session("nope", 1, "gus", voice(requested=60, used=5)))
    assert unknown.result_code == pb.UNKNOWN_SESSION_ID
    await charging.charging.StartSession(session("g1", 0, "gus", voice(requested=60)))
    end = await charging.charging.EndSession(session("g1", 1, "gus", voice(used=10)))
    after = await charging.charging.UpdateSession(session("g1", 2, "gus", voice(requested=60, used=5)))
    assert after.result_code == pb.UNKNOWN_SESSION_ID
    assert await charging.charging.EndSession(session("g1", 1, "gus", voice(used=10))) == end  # late repeat
    assert (await charging.balance("gus")).balance_micros == TEN_EUR - 300_000


async def test_credit_runs_out_during_the_call(charging):
    # 0.40 EUR buys exactly cost(180) = 0.30 + 120 × 0.05/60: the start grants 180 s of the 300 asked, with a
    # final-unit indication. After 120 s are used (cost 0.35) the rest, 60 s, is granted again with the indication;
    # once all 180 s are used nothing is left and the next update gets 4012.
    await charging.account("hal", balance=400_000)
    start = await charging.charging.StartSession(session("h1", 0, "hal", voice(requested=300)))
    assert (start.quotas[0].granted_units, start.quotas[0].final_unit.action) == (180, pb.TERMINATE)
    update = await charging.charging.UpdateSession(session("h1", 1, "hal", voice(requested=300, used=120)))
    assert (update.quotas[0].granted_units, update.quotas[0].final_unit.action) == (60, pb.TERMINATE)
    assert (update.balance_micros, update.available_micros) == (50_000, 0)
    last = await charging.charging.UpdateSession(session("h1", 2, "hal", voice(requested=300, used=60)))
    assert (last.result_code, last.quotas[0].result_code, last.quotas[0].granted_units) == (4012, 4012, 0)
    assert (await charging.balance("hal")).balance_micros == 0


async def test_start_on_an_account_known_to_the_frontend_still_gets_the_exact_grant(charging):
    # After any read the frontend knows the account's plan and skips the read on starts; when credit cannot cover the
    # whole request, the script says so and the engine reads the credit to search for the exact grant.
    await charging.account("ida", balance=400_000)
    await charging.balance("ida")  # the frontend now knows ida
    start = await charging.charging.StartSession(session("i1", 0, "ida", voice(requested=300)))
    assert (start.quotas[0].granted_units, start.quotas[0].final_unit.action) == (180, pb.TERMINATE)
    assert (await charging.balance("ida")).reserved_micros == 400_000


async def test_a_plan_change_is_seen_by_a_frontend_that_knew_the_old_plan(charging):
    await charging.account("jon", balance=TEN_EUR)
    await charging.balance("jon")  # known on the retail plan
    await charging.admin.UpdateAccount(admin.UpdateAccountRequest(id="jon", tariff_plan="wholesale"))
    await charging.charging.StartSession(session("w1", 0, "jon", voice(requested=60)))
    end = await charging.charging.EndSession(session("w1", 1, "jon", voice(used=61)))
    assert end.cost_micros == 8_800  # WHOLESALE: 66 s × 0.008/60, not retail's 300834
