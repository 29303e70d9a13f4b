"""Redis Sentinel: the primary is killed (SIGKILL) under a bounded load of balance changes; the sentinels promote
a replica, the frontend finds the new primary by itself, and with ``min_replicas_acked = 1`` no acknowledged
balance change is lost.

A real primary, two replicas (so that the new primary still has one to confirm its writes) and three sentinels on
loopback (``tests/redis_sentinel.py``); the load is top-ups (Admin
``Transact``) and SMS charges (``ChargeEvent``) from concurrent callers that retry each request, unchanged, until it
is acknowledged, as a switch or a billing system would.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import grpc
import pytest
from online_app import serving, settle_everything
from redis_sentinel import SERVICE, start_sentinel_set

from occ.store.client import connect
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb
from settlement.reconcile import Outcome, reconcile
from settlement.store.database import open_store
from settlement.store.migrate import upgrade

OPERATIONS = 240  # balance changes in all
KILL_AFTER = 80  # acknowledged changes before the primary is killed
CALLERS = 6
DEADLINE_S = 90.0
RETRY_PAUSE_S = 0.05


class Load:
    """The callers' shared state: the next operation, what was acknowledged, what failed on the way."""

    def __init__(self) -> None:
        self.next = 0
        self.acked: dict[str, int] = {}  # operation key → balance change acknowledged
        self.failures: list[tuple[float, str]] = []  # (when, gRPC status) of failed attempts
        self.killed = asyncio.Event()


async def change(client, number: int) -> tuple[str, int]:
    """Operation ``number``: a top-up of its own amount (even) or an SMS charge (odd); its key and balance change."""
    if number % 2 == 0:
        key, amount = f"topup-{number}", 1_000 + number
        await client.admin.Transact(
            admin.TransactionRequest(
                account_id="alice", type=admin.TOP_UP, amount_micros=amount, idempotency_key=key, ledger_code=400000009
            )
        )
        return key, amount  # fmt: skip
    key = f"sms-{number}"
    answer = await client.charging.ChargeEvent(pb.EventRequest(
        action=pb.DIRECT_DEBIT, session_id=key, subscriber="alice", service=pb.MESSAGE, units=1,
        called_party="+447700900123"))  # fmt: skip
    assert answer.result_code == pb.SUCCESS, answer
    return key, -answer.cost_micros


async def caller(client, load: Load, kill) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while load.next < OPERATIONS:
        number, load.next = load.next, load.next + 1
        while True:  # the same request until it is acknowledged
            assert time.monotonic() < deadline, f"operation {number} never acknowledged; failures {load.failures[-5:]}"
            try:
                key, delta = await change(client, number)
                break
            except grpc.aio.AioRpcError as error:
                load.failures.append((time.monotonic(), error.code().name))
                await asyncio.sleep(RETRY_PAUSE_S)
        load.acked[key] = delta
        if len(load.acked) == KILL_AFTER and not load.killed.is_set():
            load.killed.set()
            kill()


async def promoted_holds(url: str, keys, acked: dict[str, int], expected_micros: int) -> None:
    """The balance and the event stream as the promoted replica itself has them: every acknowledged change, once."""
    redis = connect(url)
    try:
        assert int(await redis.hget(keys.account, "balance")) == expected_micros
        entries = await redis.xrange(keys.events)
    finally:
        await redis.aclose()
    key_field = {b"topup": b"idempotency_key", b"event_charge": b"session_id"}
    moves = [fields for _, fields in entries if fields[b"type"] != b"account"]
    assert len(entries) - len(moves) == 1  # the account's entry (created, no money), once
    booked = sorted(fields[key_field[fields[b"type"]]].decode() for fields in moves)
    assert booked == sorted([*acked, "opening-alice"])


async def settle_and_reconcile(client, url: str, database: Path) -> None:
    """Settlement and reconcile run over Sentinel too, after the failover."""
    engine = open_store(f"sqlite:///{database}")
    try:
        upgrade(engine)
        await settle_everything(client, url, engine)
        report = await reconcile(url, engine, shards=client.app.settings.shards)
        assert report.outcome is Outcome.CLEAN and report.accounts == 1
    finally:
        engine.dispose()


@pytest.mark.timeout(240)
async def test_a_failover_under_load_loses_no_acknowledged_balance_change(tmp_path):
    servers = start_sentinel_set(tmp_path / "sentinel-set")
    try:
        old_port = servers.primary.port
        options = {"min_replicas_acked": 1, "replica_ack_timeout_ms": 1000}
        async with serving(servers.url, tmp_path, **options) as client:
            await client.account("alice", balance=50_000_000)
            load = Load()
            killed_at: list[float] = []

            def kill() -> None:
                killed_at.append(time.monotonic())
                servers.primary.process.send_signal(signal.SIGKILL)

            await asyncio.gather(*(caller(client, load, kill) for _ in range(CALLERS)))
            assert len(load.acked) == OPERATIONS and killed_at
            new_port = servers.primary_port()
            assert (await client.app.redis.info("server"))["tcp_port"] == new_port != old_port  # found by itself
            expected = 50_000_000 + sum(load.acked.values())
            assert (await client.balance("alice")).balance_micros == expected
            (promoted,) = [replica for replica in servers.replicas if replica.port == new_port]
            await promoted_holds(promoted.url, client.app.store.keys("alice"), load.acked, expected)
            await settle_and_reconcile(client, servers.url, tmp_path / "occ.sqlite3")
        outage = [when for when, _ in load.failures if when >= killed_at[0]]
        print(f"\nfailover: {len(load.failures)} failed attempts "
              f"({', '.join(sorted({code for _, code in load.failures}))}), "
              f"{(max(outage) - killed_at[0]) if outage else 0:.1f} s from the kill to the last failure")  # fmt: skip
        assert outage, "the kill should have failed some requests in flight"
    finally:
        servers.stop()


async def test_discoveries_at_once_keep_every_sentinel_and_close_them_all(tmp_path):
    """redis-py's master discovery swaps the sentinel that answered to the front of a shared list; many at once (a
    pool opening connections after a failover) used to leave one sentinel twice and lose another, whose connections
    were then never closed."""
    servers = start_sentinel_set(tmp_path / "sentinel-set")
    try:
        client = connect(servers.url)
        manager = client.connection_pool.sentinel_manager
        every = list(manager.sentinels)
        port = every[0].connection_pool.connection_kwargs["port"]
        (first,) = [sentinel for sentinel in servers.sentinels if sentinel.port == port]
        first.stop()  # each discovery passes it and finds the primary at the second sentinel: the same swap at once
        answers = await asyncio.gather(*(manager.discover_master(SERVICE) for _ in range(10)))
        assert set(answers) == {("127.0.0.1", servers.primary.port)}
        assert sorted(map(id, manager.sentinels)) == sorted(map(id, every))
        await client.aclose()
        pools = [sentinel.connection_pool for sentinel in every]
        assert not any(c.is_connected for pool in pools for c in (*pool._available_connections,
                                                                   *pool._in_use_connections))  # fmt: skip
    finally:
        servers.stop()
