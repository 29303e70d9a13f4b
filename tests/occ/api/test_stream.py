"""``Charging.Stream``: any request on one bidirectional stream, answered by correlation id as each completes;
invalid requests answered with ``StreamError`` (the stream goes on); administrator aborts pushed to the stream.
"""

from __future__ import annotations

import asyncio

import grpc
from online_app import session, voice

from occ.store import keys
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

TEN_EUR = 10_000_000
READ_TIMEOUT_S = 5


async def read(call) -> pb.StreamAnswer:
    answer = await asyncio.wait_for(call.read(), READ_TIMEOUT_S)
    assert answer is not grpc.aio.EOF, "the stream ended"
    return answer


async def exchange(call, *requests: pb.StreamRequest) -> dict[int, pb.StreamAnswer]:
    """Write ``requests`` and read as many answers, whatever their order, keyed by correlation id."""
    for request in requests:
        await call.write(request)
    answers = [await read(call) for _ in requests]
    by_id = {answer.correlation_id: answer for answer in answers}
    assert sorted(by_id) == sorted(request.correlation_id for request in requests)
    return by_id


async def listening_for_notices(client) -> None:
    """Wait until the App's notice listener has subscribed (it does so in the background after start)."""
    for _ in range(100):
        [(_, subscribers)] = await client.app.redis.pubsub_numsub(keys.NOTICE_CHANNEL)
        if subscribers:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the notice listener never subscribed")


async def test_a_call_flow_on_the_stream_is_answered_by_correlation_id(charging):
    await charging.account("st", balance=TEN_EUR)
    call = charging.charging.Stream()
    balance = pb.BalanceRequest(subscriber="st")

    answers = await exchange(
        call,
        pb.StreamRequest(correlation_id=11, start=session("st-1", 0, "st", voice(60))),
        pb.StreamRequest(correlation_id=12, balance=balance),
    )
    start = answers[11].session
    assert (start.session_id, start.result_code, start.quotas[0].granted_units) == ("st-1", pb.SUCCESS, 60)
    assert answers[12].WhichOneof("answer") == "balance" and answers[12].balance.balance_micros == TEN_EUR

    answers = await exchange(call, pb.StreamRequest(correlation_id=21, update=session("st-1", 1, "st", voice(60, 61))))
    update = answers[21].session
    assert (update.request_number, update.cost_micros, update.balance_micros) == (1, 300_834, TEN_EUR - 300_834)

    answers = await exchange(
        call,
        pb.StreamRequest(correlation_id=31, end=session("st-1", 2, "st", voice(used=59))),
        pb.StreamRequest(correlation_id=32, authorize=pb.AuthorizeRequest(subscriber="st", service=pb.VOICE)),
    )
    end = answers[31].session
    assert (end.result_code, end.cost_micros, end.balance_micros) == (pb.SUCCESS, 350_000, TEN_EUR - 350_000)
    assert answers[32].WhichOneof("answer") == "authorize"
    await call.done_writing()
    assert await asyncio.wait_for(call.read(), READ_TIMEOUT_S) is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    assert (await charging.balance("st")).reserved_micros == 0


async def test_an_invalid_request_gets_a_stream_error_and_the_stream_goes_on(charging):
    await charging.account("bad", balance=TEN_EUR)
    call = charging.charging.Stream()
    answers = await exchange(
        call,
        pb.StreamRequest(correlation_id=1, start=session("bad-1", 0, "bad", voice(60, used=5))),
        pb.StreamRequest(correlation_id=2),  # no request at all
        pb.StreamRequest(correlation_id=3, event=pb.EventRequest(session_id="e", subscriber="bad", units=1)),
    )
    for correlation_id, field in ((1, "quotas[0].used_units"), (2, "request"), (3, "action")):
        error = answers[correlation_id].error
        assert answers[correlation_id].WhichOneof("answer") == "error"
        assert error.grpc_code == grpc.StatusCode.INVALID_ARGUMENT.value[0] == 3
        assert error.message.startswith(f"{field}: "), error.message
    assert not await charging.app.redis.exists(charging.app.store.keys("bad").session("bad-1"))

    answers = await exchange(call, pb.StreamRequest(correlation_id=4, start=session("bad-1", 0, "bad", voice(60))))
    assert answers[4].session.result_code == pb.SUCCESS
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK


async def test_two_hundred_starts_on_one_stream_are_all_answered(charging):
    accounts = [f"many-{i:03d}" for i in range(200)]
    await asyncio.gather(*(charging.account(account, balance=TEN_EUR) for account in accounts))
    call = charging.charging.Stream()
    requests = [
        pb.StreamRequest(correlation_id=1000 + i, start=session(f"call-{i}", 0, account, voice(60)))
        for i, account in enumerate(accounts)
    ]
    answers = await exchange(call, *requests)
    for i in range(200):
        answer = answers[1000 + i].session
        assert (answer.session_id, answer.result_code) == (f"call-{i}", pb.SUCCESS)
        assert (answer.quotas[0].granted_units, answer.available_micros) == (60, TEN_EUR - 300_000)
    await call.done_writing()
    reserved = await asyncio.gather(*(charging.balance(account) for account in accounts))
    assert {balance.reserved_micros for balance in reserved} == {300_000}


async def test_an_administrator_abort_is_pushed_to_the_stream_that_carries_the_session(charging):
    await charging.account("ab", balance=TEN_EUR)
    call = charging.charging.Stream()
    answers = await exchange(call, pb.StreamRequest(correlation_id=7, start=session("ab-1", 0, "ab", voice(60))))
    assert answers[7].session.result_code == pb.SUCCESS
    assert (await charging.balance("ab")).reserved_micros == 300_000
    await listening_for_notices(charging)

    aborted = await charging.admin.AbortSession(
        admin.AbortSessionRequest(account_id="ab", session_id="ab-1", reason="fraud suspected")
    )
    assert (aborted.aborted, aborted.cost_micros) == (True, 0)
    pushed = await read(call)
    assert pushed.correlation_id == 0 and pushed.WhichOneof("answer") == "abort"
    assert (pushed.abort.session_id, pushed.abort.reason) == ("ab-1", "fraud suspected")

    # The hold is released at once; the session waits for the switch's terminate, which is still charged.
    balance = await charging.balance("ab")
    assert (balance.balance_micros, balance.reserved_micros) == (TEN_EUR, 0)
    late = await exchange(call, pb.StreamRequest(correlation_id=8, update=session("ab-1", 1, "ab", voice(60, 30))))
    assert (late[8].session.quotas[0].result_code, late[8].session.quotas[0].granted_units) == (4010, 0)
    again = await charging.admin.AbortSession(admin.AbortSessionRequest(account_id="ab", session_id="ab-1"))
    assert not again.aborted
    end = await exchange(call, pb.StreamRequest(correlation_id=9, end=session("ab-1", 2, "ab", voice(used=20))))
    assert (end[9].session.result_code, end[9].session.cost_micros) == (pb.SUCCESS, 300_000)  # 50 s used
    [close] = [e for e in await charging.events("ab") if e["type"] == "session_close"]
    assert (close["session_id"], close["cause"], close["cost"], close["units"]) == ("ab-1", "ABORTED", "300000", "50")
    assert (await charging.balance("ab")).balance_micros == TEN_EUR - 300_000
    await call.done_writing()


async def test_credit_added_asks_the_switch_to_reauthorize_its_open_sessions(charging):
    # The account can afford only 180 s; after a top-up the server pushes a re-auth request so the switch sends an
    # update and gets a larger grant (RFC 8506 re-authorization).
    await charging.account("ra", balance=400_000)
    call = charging.charging.Stream()
    answers = await exchange(call, pb.StreamRequest(correlation_id=1, start=session("ra-1", 0, "ra", voice(300))))
    assert answers[1].session.quotas[0].granted_units == 180
    await listening_for_notices(charging)
    await charging.admin.Transact(
        admin.TransactionRequest(
            account_id="ra", type=admin.TOP_UP, amount_micros=TEN_EUR, idempotency_key="ra-top", ledger_code=400000009
        )
    )
    pushed = await read(call)
    assert (pushed.correlation_id, pushed.WhichOneof("answer"), pushed.reauth.session_id) == (0, "reauth", "ra-1")
    answers = await exchange(call, pb.StreamRequest(correlation_id=2, update=session("ra-1", 1, "ra", voice(300, 60))))
    assert answers[2].session.quotas[0].granted_units == 300
    await call.done_writing()
