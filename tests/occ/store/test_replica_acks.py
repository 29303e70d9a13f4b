"""``min_replicas_acked``: a balance change is acknowledged only once a replica holds it; otherwise the request fails
UNAVAILABLE (retriable), and the same request again is charged once and confirmed before it is answered.

A real primary and replica; the replica is frozen (SIGSTOP) to make ``WAIT`` time out.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

import grpc
import pytest
from online_app import serving
from redis_sentinel import start_replicated

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb


@pytest.fixture
def replicated(tmp_path):
    primary, (replica,) = start_replicated(tmp_path / "redis")
    try:
        yield primary, replica
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
        replica.stop()
        primary.stop()


@contextmanager
def frozen(replica):
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)


def top_up(key: str, amount: int = 2_000_000) -> admin.TransactionRequest:
    return admin.TransactionRequest(account_id="alice", type=admin.TOP_UP, amount_micros=amount, idempotency_key=key,
                                    ledger_code=400000009)  # fmt: skip


SMS = pb.EventRequest(action=pb.DIRECT_DEBIT, session_id="sms-1", subscriber="alice", service=pb.MESSAGE, units=1,
                      called_party="+447700900123")  # fmt: skip


async def unavailable(call) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, raised.value
    return raised.value.details()


async def test_unconfirmed_by_a_replica_nothing_is_acknowledged_and_a_retry_is_charged_once(replicated, tmp_path):
    primary, replica = replicated
    # 1.5 s: a replica on a loaded 2-core machine can take over 500 ms to confirm even while it is up
    async with serving(primary.url, tmp_path, min_replicas_acked=1, replica_ack_timeout_ms=1500) as client:
        await client.account("alice", balance=10_000_000)  # both acknowledged: the replica is up
        with frozen(replica):
            assert "replica(s) confirmed" in await unavailable(client.admin.Transact(top_up("k1")))
            await unavailable(client.charging.ChargeEvent(SMS))
            # Asked again while the replica still lags: the stored answers are not replayed unconfirmed.
            await unavailable(client.admin.Transact(top_up("k1")))
            await unavailable(client.charging.ChargeEvent(SMS))
        again = await client.admin.Transact(top_up("k1"))
        assert again.duplicate and again.balance_micros == 12_000_000
        sms = await client.charging.ChargeEvent(SMS)
        assert sms.result_code == pb.SUCCESS and sms.cost_micros > 0
        assert sms.balance_micros == 12_000_000 - sms.cost_micros  # charged once
        assert (await client.balance("alice")).balance_micros == 12_000_000 - sms.cost_micros
    entries = [e["type"] for e in await replica_events(replica, client)]
    assert entries == ["account", "topup", "topup", "event_charge"]  # the replica holds each change once


async def replica_events(replica, client) -> list[dict[str, str]]:
    """alice's events as the replica has them."""
    from occ.store.client import connect

    redis = connect(replica.url)
    try:
        stream = client.app.store.keys("alice").events
        entries = await redis.xrange(stream)
    finally:
        await redis.aclose()
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def test_writes_wait_for_the_replica_in_the_same_round_trip(replicated, tmp_path):
    primary, replica = replicated
    async with serving(primary.url, tmp_path, min_replicas_acked=1) as client:
        await client.account("alice", balance=10_000_000)
        await client.charging.ChargeEvent(SMS)
        before = int(primary.command("INFO", "commandstats").split(b"cmdstat_wait:calls=")[1].split(b",")[0])
        await client.admin.Transact(top_up("k2"))
        after = int(primary.command("INFO", "commandstats").split(b"cmdstat_wait:calls=")[1].split(b",")[0])
        assert after == before + 1
    entries = [e["type"] for e in await replica_events(replica, client)]
    assert entries == ["account", "topup", "event_charge", "topup"]  # the account entry (issue 17) and three moves
