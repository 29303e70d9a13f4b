"""``Charging.Stream`` under a broken client: every request the server accepted is answered before the stream ends,
and a frame that is not a ``StreamRequest`` ends the stream with INVALID_ARGUMENT, never OK."""

from __future__ import annotations

import asyncio

import grpc
from online_app import session, voice

from occ.v1 import charging_pb2 as pb

TEN_EUR = 10_000_000
STARTS = 20
GARBAGE = b"\xff\xff\xff"  # field 31, wire type 7: not a protobuf message at all


def identity(data: bytes) -> bytes:
    return data


async def test_a_broken_frame_after_twenty_starts_answers_all_twenty_then_fails_the_stream(charging):
    accounts = [f"frame-{i:02d}" for i in range(STARTS)]
    await asyncio.gather(*(charging.account(account, balance=TEN_EUR) for account in accounts))
    raw = charging.channel.stream_stream(
        "/occ.v1.Charging/Stream", request_serializer=identity, response_deserializer=identity
    )
    frames = [
        pb.StreamRequest(
            correlation_id=100 + i, start=session(f"frame-call-{i}", 0, account, voice(60))
        ).SerializeToString()
        for i, account in enumerate(accounts)
    ]
    call = raw(iter([*frames, GARBAGE]))
    answers = [pb.StreamAnswer.FromString(data) async for data in _answers(call)]

    assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "StreamRequest" in await call.details()
    assert sorted(answer.correlation_id for answer in answers) == [100 + i for i in range(STARTS)]
    assert {answer.session.result_code for answer in answers} == {pb.SUCCESS}
    reserved = await asyncio.gather(*(charging.balance(account) for account in accounts))
    assert {balance.reserved_micros for balance in reserved} == {300_000}  # every hold was told to its switch


async def _answers(call):
    try:
        async for data in call:
            yield data
    except grpc.aio.AioRpcError:
        return
