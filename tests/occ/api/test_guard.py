"""No request makes the server answer UNKNOWN: undecodable bytes are INVALID_ARGUMENT with one short log line per
method and interval, a path the file system refuses is INVALID_ARGUMENT, and a bug is INTERNAL with a short message
that tells nothing of the exception's text."""

from __future__ import annotations

import logging

import grpc
import pytest
from online_app import session, voice

from occ.api import guard
from occ.core.throttle import Throttle
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb

GARBAGE = b"\xff\xff\xff"


def identity(data: bytes) -> bytes:
    return data


async def raw_unary(channel: grpc.aio.Channel, method: str, data: bytes) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await channel.unary_unary(method, request_serializer=identity, response_deserializer=identity)(data, timeout=10)
    return failure.value


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("/occ.v1.Charging/StartSession", "occ.v1.SessionRequest"),
        ("/occ.v1.Charging/Authorize", "occ.v1.AuthorizeRequest"),
        ("/occ.v1.Admin/Transact", "occ.v1.TransactionRequest"),
        ("/occ.v1.Admin/LoadTariff", "occ.v1.LoadTariffRequest"),
    ],
)
async def test_undecodable_bytes_are_invalid_argument_with_one_short_log_line(charging, caplog, method, message):
    caplog.set_level(logging.WARNING)
    for _ in range(50):
        error = await raw_unary(charging.channel, method, GARBAGE)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == f"request: not a valid {message} message (3 bytes)"
    lines = [record for record in caplog.records if record.name == guard.__name__]
    assert len(lines) == 1 and lines[0].exc_info is None  # 50 refusals, one line, no traceback
    assert "not a valid" in lines[0].getMessage()


async def test_a_path_the_file_system_refuses_is_invalid_argument(charging):
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await charging.admin.LoadTariff(admin.LoadTariffRequest(directory="x" * 300))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details().startswith("directory: is not a tariff directory below the server's tariff root")


async def test_a_bug_is_internal_with_a_short_message(charging, monkeypatch, caplog):
    async def broken(kind, request):
        raise KeyError("secret internals")

    monkeypatch.setattr(charging.app.charging, "_answer_of_kind", broken)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await charging.charging.StartSession(session("bug-1", 0, "nobody", voice(60)))
    assert failure.value.code() == grpc.StatusCode.INTERNAL
    assert failure.value.details() == "internal error (KeyError); the server log has the details"
    call = charging.charging.Stream()
    await call.write(pb.StreamRequest(correlation_id=5, start=session("bug-2", 0, "nobody", voice(60))))
    answer = await call.read()
    assert (answer.correlation_id, answer.error.grpc_code) == (5, grpc.StatusCode.INTERNAL.value[0])
    assert "secret" not in answer.error.message
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK


def test_the_throttle_writes_one_line_per_interval_and_counts_the_rest():
    now = [0.0]
    throttle = Throttle(10.0, clock=lambda: now[0])
    assert throttle.ready("a") == 0
    assert [throttle.ready("a") for _ in range(3)] == [None, None, None]
    assert throttle.ready("b") == 0  # kinds are apart
    now[0] = 10.0
    assert throttle.ready("a") == 3
