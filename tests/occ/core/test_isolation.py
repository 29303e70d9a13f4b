"""One account can never see or touch another's session or event, even when both live on the same shard; a
failed Stream request is still answered; losing Redis does not break shutdown."""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest
from online_app import session, voice

from occ.store.keys import shard_of
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

TEN_EUR = 10_000_000


def same_shard_as(account_id: str, shards: int) -> str:
    return next(f"u{n}" for n in itertools.count() if shard_of(f"u{n}", shards) == shard_of(account_id, shards))


async def test_a_session_answers_only_to_its_own_account(charging):
    other = same_shard_as("alice", charging.app.settings.shards)
    await charging.account("alice", balance=TEN_EUR)
    await charging.account(other, balance=TEN_EUR)
    await charging.charging.StartSession(session("s1", 0, "alice", voice(requested=60)))

    update = await charging.charging.UpdateSession(session("s1", 1, other, voice(requested=60, used=60)))
    end = await charging.charging.EndSession(session("s1", 1, other, voice(used=60)))
    assert (update.result_code, end.result_code) == (pb.UNKNOWN_SESSION_ID, pb.UNKNOWN_SESSION_ID)
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await charging.charging.StartSession(session("s1", 0, other, voice(requested=60)))  # not alice's stored answer
    assert taken.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "session_id" in taken.value.details()
    aborted = await charging.admin.AbortSession(admin.AbortSessionRequest(account_id=other, session_id="s1"))
    assert not aborted.aborted

    alice, bystander = await charging.balance("alice"), await charging.balance(other)
    assert (alice.balance_micros, alice.reserved_micros) == (TEN_EUR, 300_000)
    assert (bystander.balance_micros, bystander.reserved_micros) == (TEN_EUR, 0)
    assert [s.session_id for s in (await charging.admin.ListSessions(
        admin.ListSessionsRequest(account_id="alice"))).sessions] == ["s1"]  # fmt: skip


async def test_event_answers_are_kept_per_account(charging):
    other = same_shard_as("alice", charging.app.settings.shards)
    await charging.account("alice", balance=TEN_EUR)
    await charging.account(other, balance=TEN_EUR)

    def sms(subscriber: str) -> pb.EventRequest:
        return pb.EventRequest(session_id="e1", subscriber=subscriber, action=pb.DIRECT_DEBIT, service=pb.MESSAGE,
                               called_party="+447700900123", units=1)  # fmt: skip

    first = await charging.charging.ChargeEvent(sms("alice"))
    second = await charging.charging.ChargeEvent(sms(other))
    assert (first.result_code, second.result_code) == (2001, 2001)
    assert second.balance_micros == TEN_EUR - 50_000  # its own debit, not alice's stored answer
    assert (await charging.balance(other)).balance_micros == TEN_EUR - 50_000


async def test_a_failed_stream_request_is_answered_and_shutdown_survives_losing_redis(charging, redis_server):
    await charging.account("zed", balance=TEN_EUR)
    redis_server.stop()
    requests: asyncio.Queue = asyncio.Queue()
    await requests.put(pb.StreamRequest(correlation_id=7, balance=pb.BalanceRequest(subscriber="zed")))

    async def outgoing():
        yield await requests.get()

    call = charging.charging.Stream(outgoing())
    answer = await asyncio.wait_for(call.read(), timeout=20)
    assert answer.correlation_id == 7 and answer.WhichOneof("answer") == "error"
    assert answer.error.grpc_code == grpc.StatusCode.UNAVAILABLE.value[0]
    call.cancel()
    # the fixture's teardown closes the App: that must not fail although Redis is gone
