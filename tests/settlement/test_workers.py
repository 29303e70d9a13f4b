"""Settlement workers as processes: `occ settle --workers N`, the pool behind it, and the worker beside a server.

Real redis-servers, a real SQLite store and real processes (spawned workers, a child command); every wait is
bounded in time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from functools import partial
from pathlib import Path

import redis
from click.testing import CliRunner
from sqlalchemy import func, select

from benchmarks.settle_backlog import fill_backlog
from occ.cli import main
from occ.store.client import connect
from settlement.drain import DrainOptions
from settlement.store.database import open_store
from settlement.store.migrate import upgrade
from settlement.store.schema import ledger, xdrs
from settlement.workers import DEAD_LETTERED, WorkerPool, WorkerProcess, WorkerSpec

SHARDS = 8


async def fill(redis_url: str, calls: int):
    client = connect(redis_url)
    try:
        return await fill_backlog(client, shards=SHARDS, accounts=4, calls=calls)
    finally:
        await client.aclose()


def counts(db_url: str) -> tuple[int, int]:
    engine = open_store(db_url)
    with engine.connect() as sql:
        found = (sql.execute(select(func.count()).select_from(ledger)).scalar(),
                 sql.execute(select(func.count()).select_from(xdrs)).scalar())  # fmt: skip
    engine.dispose()
    return found


def migrated(tmp_path: Path) -> str:
    db_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = open_store(db_url)
    upgrade(engine)
    engine.dispose()
    return db_url


def settle(*args: str, redis_url: str, db_url: str):
    return CliRunner().invoke(main, ["settle", *args, "--redis-url", redis_url, "--db-url", db_url])


def test_two_workers_book_every_entry_once(redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("OCC_SHARDS", str(SHARDS))
    backlog = asyncio.run(fill(redis_url, calls=200))
    db_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    result = settle("--once", "--workers", "2", "--consumer", "w", redis_url=redis_url, db_url=db_url)
    assert result.exit_code == 0, result.output
    assert counts(db_url) == (backlog.ledger_rows, backlog.xdrs)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    groups = [client.xinfo_groups(f"occ:{{s{shard:03d}}}:events")[0] for shard in range(SHARDS)]
    consumers = {c["name"] for shard in range(SHARDS) for c in client.xinfo_consumers(f"occ:{{s{shard:03d}}}:events",
                                                                                       "settlement")}  # fmt: skip
    client.close()
    assert sum(g["pending"] for g in groups) == 0
    assert consumers <= {"w", "w-1"} and "w" in consumers  # the pool's worker is named after the first
    assert "entries booked, 0 dead-lettered" in result.output


def test_a_dead_letter_with_two_workers_exits_3(redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("OCC_SHARDS", str(SHARDS))
    asyncio.run(fill(redis_url, calls=20))
    client = redis.Redis.from_url(redis_url)
    client.xadd("occ:{s003}:events", {"type": "bonus", "account": "acme"})
    client.close()
    db_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    result = settle("--once", "--workers", "2", redis_url=redis_url, db_url=db_url)
    assert result.exit_code == DEAD_LETTERED, result.output


def test_a_pool_stops_its_workers_cleanly_on_sigterm(redis_url, tmp_path):
    db_url = migrated(tmp_path)
    spec = WorkerSpec(redis_url=redis_url, db_url=db_url, shards=SHARDS, options=DrainOptions(consumer="pool",
                      poll_s=0.1))  # fmt: skip
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pool = WorkerPool(spec, 1, setup=partial(logging.basicConfig, level=logging.INFO))
    with pool:
        deadline = time.monotonic() + 60
        while not _has_consumer(client, "pool-1"):  # reading: its signal handlers are in place
            assert time.monotonic() < deadline, "the pool's worker never started reading"
            time.sleep(0.1)
        backlog = asyncio.run(fill(redis_url, calls=20))
        while counts(db_url) != (backlog.ledger_rows, backlog.xdrs):  # the pool's worker alone settles it
            assert time.monotonic() < deadline, f"settled {counts(db_url)} of {backlog}"
            time.sleep(0.1)
        stopping = time.monotonic()
    client.close()
    assert time.monotonic() - stopping < 15
    assert [p.exitcode for p in pool.processes] == [0]  # stopped by SIGTERM, not killed by it
    assert not pool.failed and not pool.dead_lettered


def _has_consumer(client: redis.Redis, name: str) -> bool:
    try:
        return any(c["name"] == name for c in client.xinfo_consumers("occ:{s000}:events", "settlement"))
    except redis.ResponseError:  # no group yet
        return False


def test_a_pool_worker_that_cannot_reach_redis_fails_the_pool(tmp_path):
    spec = WorkerSpec(redis_url="redis://127.0.0.1:1/0", db_url=migrated(tmp_path), shards=SHARDS, once=True)
    pool = WorkerPool(spec, 2)
    started = time.monotonic()
    with pool:
        pass
    assert time.monotonic() - started < 60
    assert pool.failed and [p.exitcode for p in pool.processes] == [1, 1]


def mine(caplog) -> list[str]:
    """What ``settlement.workers`` logged (caplog also catches other loggers' lines, e.g. from a server another test
    of this process still runs in a thread)."""
    return [r.getMessage() for r in caplog.records if r.name == "settlement.workers"]


def test_a_worker_process_stops_on_sigterm_or_is_killed(tmp_path, caplog):
    polite = WorkerProcess([sys.executable, "-c", "import time; time.sleep(60)"], env={}).start()
    ready = tmp_path / "ready"
    code = ("import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)")  # fmt: skip
    stubborn = WorkerProcess([sys.executable, "-c", code, str(ready)], env={}, stop_timeout_s=0.5).start()
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline, "the stubborn child never got ready"
        time.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="settlement.workers"):
        started = time.monotonic()
        polite.stop()
        assert mine(caplog) == [] and polite.process.returncode == -15
        stubborn.stop()
        assert stubborn.process.returncode == -9 and time.monotonic() - started < 10
    assert mine(caplog) == ["settlement worker exited with status -9"]
