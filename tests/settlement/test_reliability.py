"""Settlement reliability: dead letters, dead workers, trimming, and kill -9 in the middle of a batch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from benchmarks.settle_backlog import fill_backlog
from occ.store.client import connect
from occ.store.keys import dead_letters, shard_keys
from settlement import metrics
from settlement.drain import Backlog, Drain, DrainOptions
from settlement.store.database import open_store
from settlement.store.migrate import upgrade
from settlement.store.schema import ledger, xdrs

SHARDS = 16
OCC = str(Path(sys.executable).with_name("occ"))


@pytest.fixture
async def redis(redis_url):
    client = connect(redis_url)
    yield client
    await client.aclose()


def counts(engine) -> tuple[int, int, dict[str, int]]:
    """(ledger rows, xDRs, account → Σ ledger amount)."""
    with engine.connect() as sql:
        n_ledger = sql.execute(select(func.count()).select_from(ledger)).scalar()
        n_xdrs = sql.execute(select(func.count()).select_from(xdrs)).scalar()
        sums = dict(sql.execute(select(ledger.c.account, func.sum(ledger.c.amount)).group_by(ledger.c.account)).all())
    return n_ledger, n_xdrs, sums


async def test_malformed_entries_go_to_the_dead_letter_stream_with_the_reason(redis, redis_url, store):
    backlog = await fill_backlog(redis, shards=SHARDS, accounts=5, calls=30)
    stream = shard_keys(3)[0]
    bad = [
        ({"type": "bonus", "account": "x"}, "type 'bonus' is not one settlement knows"),
        (
            {"type": "topup", "account": "x", "currency": "EUR", "amount": "1e5", "balance": "0", "time_ms": "1"},
            "amount must be an integer, got '1e5'",
        ),
        (
            {"type": "refund", "account": "x", "currency": "EUR", "amount": "--5", "balance": "0", "time_ms": "1"},
            "amount must be an integer, got '--5'",
        ),
        ({"type": "payment", "currency": "EUR", "amount": "5", "balance": "5", "time_ms": "1"}, "account is missing"),
        (
            {
                "type": "topup",
                "account": "x",
                "currency": "EUR",
                "amount": "5",
                "balance": "5",
                "time_ms": "1",
                "ledger": b"\xff" * 20,  # not even UTF-8
            },
            "ledger is longer than 15 characters",
        ),
    ]
    for fields, _ in bad:
        await redis.xadd(stream, fields)
    async with Drain(redis_url, store, shards=SHARDS) as drain:
        left = await drain.drain_once()
        assert (drain.dead_letters, drain.booked, left.pending) == (len(bad), backlog.entries, 0)
        assert await drain.drain_once() == left  # nothing re-delivered, nothing dead-lettered twice
    letters = await redis.xrange(dead_letters(3))
    assert [(f[b"reason"].decode(), f[b"type"].decode()) for _, f in letters] == [
        (reason, fields["type"]) for fields, reason in bad
    ]
    assert all(f[b"source_id"] for _, f in letters)
    n_ledger, n_xdrs, sums = counts(store)
    assert (n_ledger, n_xdrs) == (backlog.ledger_rows, backlog.xdrs)
    assert sums == backlog.balances


async def test_entries_held_by_a_dead_worker_are_claimed_and_booked_once(redis, redis_url, store):
    backlog = await fill_backlog(redis, shards=SHARDS, accounts=20, calls=200)
    dead = Drain(redis_url, store, shards=SHARDS, options=DrainOptions(consumer="dead", read_count=10))
    await dead.setup()
    taken = await dead._next()  # read, never written or acknowledged: the worker "dies" here
    await dead.close()
    assert taken
    patient = DrainOptions(consumer="patient", claim_idle_s=3600)
    async with Drain(redis_url, store, shards=SHARDS, options=patient) as other:
        left = await other.drain_once()
    assert left.pending == len(taken)  # not idle long enough to be taken over
    async with Drain(redis_url, store, shards=SHARDS, options=DrainOptions(consumer="b", claim_idle_s=0)) as other:
        left = await other.drain_once()
    assert (left.lag, left.pending) == (0, 0)
    n_ledger, n_xdrs, sums = counts(store)
    assert (n_ledger, n_xdrs, sums) == (backlog.ledger_rows, backlog.xdrs, backlog.balances)


async def test_streams_are_trimmed_only_below_what_every_group_has_acknowledged(redis, redis_url, store):
    await fill_backlog(redis, shards=SHARDS, accounts=20, calls=100)
    streams = [shard_keys(s)[0] for s in range(SHARDS)]
    await redis.xgroup_create(streams[0], "audit", id="0")  # another consumer, which has read nothing yet
    before = [await redis.xlen(s) for s in streams]
    async with Drain(redis_url, store, shards=SHARDS) as drain:
        await drain.drain_once()
    after = [await redis.xlen(s) for s in streams]
    assert after[0] == before[0]  # "audit" still needs all of shard 0
    assert all(n <= 1 for n in after[1:])  # the rest is trimmed up to the last delivered entry
    assert sum(before[1:]) > 2 * SHARDS


def settle_command(redis_url: str, db_url: str, *args: str) -> list[str]:
    return [OCC, "settle", "--redis-url", redis_url, "--db-url", db_url, *args]


async def test_kill_9_in_the_middle_of_a_batch_loses_and_duplicates_nothing(redis, redis_url, db_url, store, tmp_path):
    backlog = await fill_backlog(redis, shards=256, accounts=500, calls=10_000)
    env = {**os.environ, "OCC_SHARDS": "256"}
    worker = subprocess.Popen(settle_command(redis_url, db_url, "--batch", "5"), env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while counts(store)[1] == 0:
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never wrote anything"
            time.sleep(0.02)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    n_ledger, n_xdrs, _ = counts(store)
    assert 0 < n_xdrs < backlog.xdrs  # killed mid-way
    done = subprocess.run(
        settle_command(redis_url, db_url, "--once", "--claim-idle-s", "0"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "0 dead-lettered" in done.stderr and "0 undelivered, 0 pending" in done.stderr
    n_ledger, n_xdrs, sums = counts(store)
    assert (n_ledger, n_xdrs) == (backlog.ledger_rows, backlog.xdrs)
    assert sums == backlog.balances


async def until(condition, timeout_s: float, what: str) -> None:
    """Wait (polling every 20 ms) until ``condition()`` holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.02)


async def stopped_within_s(stop: asyncio.Event, worker: asyncio.Task) -> float:
    """Set ``stop`` and return how long ``worker`` took to end (failing after 10 s instead of hanging)."""
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(worker, 10)
    return time.monotonic() - started


async def entries_added(redis) -> int:
    """Entries ever added to the shard streams (XINFO STREAM; trimming does not lower it)."""
    total = 0
    for shard in range(SHARDS):
        if await redis.exists(stream := shard_keys(shard)[0]):
            total += (await redis.xinfo_stream(stream))["entries-added"]
    return total


async def test_an_unusable_store_is_retried_not_dead_lettered(redis, redis_url, db_url):
    """A store that cannot take the batch (here: not migrated yet, as when the database is down) is a reason to wait
    and retry; once it can, every entry read in the meantime is settled from this worker's pending list, with no new
    stream traffic to wake it, and the worker stops within a second when asked."""
    backlog = await fill_backlog(redis, shards=SHARDS, accounts=10, calls=100)
    added = await entries_added(redis)
    engine = open_store(db_url)
    sql_errors = metrics.ERRORS.labels("sql")._value.get
    errors_before = sql_errors()
    options = DrainOptions(poll_s=0.05, claim_idle_s=3600)
    async with Drain(redis_url, engine, shards=SHARDS, options=options) as drain:
        stop = asyncio.Event()
        worker = asyncio.create_task(drain.run(stop))
        try:
            await until(lambda: sql_errors() >= errors_before + 3, 20, "the write was not retried after failing")
            assert (drain.booked, drain.dead_letters) == (0, 0)
            assert await drain.backlog() == Backlog(lag=0, pending=backlog.entries)  # all read, held, none lost
            upgrade(engine)
            await until(lambda: drain.booked == backlog.entries, 30, "the held entries were not settled")
            assert await stopped_within_s(stop, worker) < 1.0
        finally:
            stop.set()
            await asyncio.wait([worker], timeout=10)
        assert await drain.drain_once() == Backlog(lag=0, pending=0)
    assert await entries_added(redis) == added  # settled with no new traffic
    assert (drain.booked, drain.dead_letters) == (backlog.entries, 0)
    assert counts(engine) == (backlog.ledger_rows, backlog.xdrs, backlog.balances)
    engine.dispose()


async def test_stop_ends_a_worker_blocked_on_an_empty_stream_within_a_second(redis, redis_url, tmp_path):
    """A long ``poll_s`` does not hold a stop back: the blocking read waits at most ``MAX_BLOCK_S``."""
    engine = open_store(f"sqlite:///{tmp_path / 'occ.sqlite3'}")
    upgrade(engine)
    async with Drain(redis_url, engine, shards=SHARDS, options=DrainOptions(poll_s=60.0)) as drain:
        stop = asyncio.Event()
        worker = asyncio.create_task(drain.run(stop))
        try:

            async def blocked_reads() -> int:
                return sum(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in await redis.client_list())

            deadline = time.monotonic() + 20
            while not await blocked_reads():
                assert time.monotonic() < deadline, "the idle worker never blocked in XREADGROUP"
                await asyncio.sleep(0.02)
            assert await stopped_within_s(stop, worker) < 1.0
        finally:
            stop.set()
            await asyncio.wait([worker], timeout=10)
    assert worker.done() and worker.exception() is None
    engine.dispose()


async def test_a_worker_whose_redis_lost_its_scripts_loads_them_again(redis, redis_url, store):
    backlog = await fill_backlog(redis, shards=SHARDS, accounts=3, calls=10)
    async with Drain(redis_url, store, shards=SHARDS, options=DrainOptions(poll_s=0.05)) as drain:
        await redis.script_flush()  # as a restarted Redis: read.lua and ack.lua are gone
        stop = asyncio.Event()
        worker = asyncio.create_task(drain.run(stop))
        deadline = time.monotonic() + 20
        while drain.booked < backlog.entries:
            assert time.monotonic() < deadline, f"booked {drain.booked} of {backlog.entries}"
            await asyncio.sleep(0.05)
        stop.set()
        await worker
    n_ledger, n_xdrs, _ = counts(store)
    assert (n_ledger, n_xdrs) == (backlog.ledger_rows, backlog.xdrs)
