"""Bad input fails the call with INVALID_ARGUMENT naming the field, and nothing at all is written to Redis.

Each case runs against an account with an open session, so a rejected update or end is checked against a real
session too; "nothing written" compares every Redis key (account hash, session hashes, the shard's event stream,
deadlines) before and after the rejected call.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from online_app import LONDON, MONDAY_PEAK, session, voice
from redis_state import redis_state

from occ.v1 import charging_pb2 as pb

ACCOUNT, OPEN, NEW = "alice", "s-open", "s-new"
TEN_EUR = 10_000_000


def event(*, action: int = pb.DIRECT_DEBIT, units: int = 3, service: int = pb.MESSAGE, called: str = LONDON):
    request = pb.EventRequest(
        session_id="e-1", subscriber=ACCOUNT, action=action, service=service, units=units, called_party=called
    )
    request.event_time.seconds = MONDAY_PEAK
    return request


def quota(service: int) -> pb.QuotaRequest:
    return pb.QuotaRequest(rating_group=100, service=service, requested_units=60)


# name → (method, request, field the message must start with)
CASES: dict[str, tuple[str, Callable[[], object], str]] = {
    "start without session_id": ("StartSession", lambda: session("", 0, ACCOUNT, voice(60)), "session_id"),
    "start without subscriber": ("StartSession", lambda: session(NEW, 0, "", voice(60)), "subscriber"),
    "update without session_id": ("UpdateSession", lambda: session("", 1, ACCOUNT, voice(60, 10)), "session_id"),
    "start with request_number 1": ("StartSession", lambda: session(NEW, 1, ACCOUNT, voice(60)), "request_number"),
    "update with request_number 0": (
        "UpdateSession",
        lambda: session(OPEN, 0, ACCOUNT, voice(60, used=10)),
        "request_number",
    ),
    "end with request_number 0": ("EndSession", lambda: session(OPEN, 0, ACCOUNT, voice(used=10)), "request_number"),
    "update with negative used_units": (
        "UpdateSession",
        lambda: session(OPEN, 1, ACCOUNT, voice(60, used=-5)),
        "quotas[0].used_units",
    ),
    "end with negative used_units": (
        "EndSession",
        lambda: session(OPEN, 1, ACCOUNT, voice(used=-1)),
        "quotas[0].used_units",
    ),
    "start with negative requested_units": (
        "StartSession",
        lambda: session(NEW, 0, ACCOUNT, voice(-60)),
        "quotas[0].requested_units",
    ),
    "update with negative requested_units": (
        "UpdateSession",
        lambda: session(OPEN, 1, ACCOUNT, voice(-1, used=10)),
        "quotas[0].requested_units",
    ),
    "unknown service 7": ("StartSession", lambda: session(NEW, 0, ACCOUNT, quota(7)), "quotas[0].service"),
    "SERVICE_UNSPECIFIED": (
        "StartSession",
        lambda: session(NEW, 0, ACCOUNT, quota(pb.SERVICE_UNSPECIFIED)),
        "quotas[0].service",
    ),
    "duplicate rating group": (
        "StartSession",
        lambda: session(NEW, 0, ACCOUNT, voice(60), voice(30)),
        "quotas[1].rating_group",
    ),
    "used_units on start": (
        "StartSession",
        lambda: session(NEW, 0, ACCOUNT, voice(60, used=5)),
        "quotas[0].used_units",
    ),
    "start without quotas": ("StartSession", lambda: session(NEW, 0, ACCOUNT), "quotas"),
    "malformed called_party": (
        "StartSession",
        lambda: session(NEW, 0, ACCOUNT, voice(60), called="+44 20 ABCD 0000"),
        "called_party",
    ),
    "event with units 0": ("ChargeEvent", lambda: event(units=0), "units"),
    "event with negative units": ("ChargeEvent", lambda: event(units=-3), "units"),
    "event with unknown action": ("ChargeEvent", lambda: event(action=9), "action"),
    "event without action": ("ChargeEvent", lambda: event(action=pb.EVENT_ACTION_UNSPECIFIED), "action"),
    "event without service": ("ChargeEvent", lambda: event(service=pb.SERVICE_UNSPECIFIED), "service"),
    "event with malformed called_party": ("ChargeEvent", lambda: event(called="tel:+44"), "called_party"),
    "authorize without subscriber": (
        "Authorize",
        lambda: pb.AuthorizeRequest(service=pb.VOICE, called_party=LONDON),
        "subscriber",
    ),
    "authorize with negative max_units": (
        "Authorize",
        lambda: pb.AuthorizeRequest(subscriber=ACCOUNT, service=pb.VOICE, called_party=LONDON, max_units=-1),
        "max_units",
    ),
    "balance without subscriber": ("GetBalance", lambda: pb.BalanceRequest(), "subscriber"),
}


@pytest.fixture
async def client(charging):
    await charging.account(ACCOUNT, balance=TEN_EUR)
    start = await charging.charging.StartSession(session(OPEN, 0, ACCOUNT, voice(60)))
    assert start.result_code == pb.SUCCESS
    return charging


async def assert_rejected(client, method: str, request, code: grpc.StatusCode) -> str:
    before = await client.app.redis.hgetall(client.app.store.keys(ACCOUNT).account)
    state = await redis_state(client.app.redis)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await getattr(client.charging, method)(request)
    assert failure.value.code() == code, failure.value.details()
    after = await client.app.redis.hgetall(client.app.store.keys(ACCOUNT).account)
    assert (after[b"balance"], after[b"reserved"]) == (before[b"balance"], before[b"reserved"])
    assert not await client.app.redis.exists(client.app.store.keys(ACCOUNT).session(NEW))
    assert await redis_state(client.app.redis) == state  # no key written, no stream entry appended
    return failure.value.details()


@pytest.mark.parametrize("case", CASES)
async def test_invalid_argument_names_the_field_and_writes_nothing(client, case):
    method, request, field = CASES[case]
    details = await assert_rejected(client, method, request(), grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(f"{field}: "), details


async def test_an_oversize_message_hits_the_grpc_limit_and_writes_nothing(client):
    assert client.app.settings.max_message_bytes == 65536
    request = session(NEW, 0, ACCOUNT, voice(60))
    request.calling_party = "4" * 100_000
    await assert_rejected(client, "StartSession", request, grpc.StatusCode.RESOURCE_EXHAUSTED)


async def test_the_session_still_works_after_the_rejections(client):
    """Rejections leave the open session exactly as it was: its first update is still request 1."""
    for method, request, _ in CASES.values():
        with pytest.raises(grpc.aio.AioRpcError):
            await getattr(client.charging, method)(request())
    update = await client.charging.UpdateSession(session(OPEN, 1, ACCOUNT, voice(60, used=60)))
    assert (update.result_code, update.cost_micros, update.balance_micros) == (2001, 300_000, TEN_EUR - 300_000)
