"""The recovery runbook "occ settle --once; occ reconcile" works the first time after a worker was killed with
SIGKILL in the middle of a batch: a worker with the dead one's name reads the entries it held at once, and
``--claim-now`` takes over any dead worker's entries without waiting ``--claim-idle-s``."""

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
from occ.store.keys import shard_keys
from settlement.store.database import open_store
from settlement.store.schema import xdrs

OCC = str(Path(sys.executable).with_name("occ"))
SHARDS = 16


def occ(redis_url: str, db_url: str, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    command = [OCC, *args, "--redis-url", redis_url, "--db-url", db_url]
    return subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=timeout_s)


def environment() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("OCC_")}, "OCC_SHARDS": str(SHARDS)}


async def crashed_mid_batch(redis_url: str, db_url: str, *consumer: str) -> int:
    """Fill a backlog, start a worker, SIGKILL it once it has written some xDRs; the number of entries it held."""
    client = connect(redis_url)
    try:
        await fill_backlog(client, shards=SHARDS, accounts=200, calls=3000)
    finally:
        await client.aclose()
    assert occ(redis_url, db_url, "db", "upgrade").returncode == 0
    command = [OCC, "settle", "--redis-url", redis_url, "--db-url", db_url, "--batch", "20", *consumer]
    worker = subprocess.Popen(command, env=environment(), stderr=subprocess.DEVNULL)
    engine = open_store(db_url)
    try:
        deadline = time.monotonic() + 60
        while written(engine) == 0:
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never wrote anything"
            time.sleep(0.01)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        engine.dispose()
    client = connect(redis_url)
    try:
        held = 0
        for shard in range(SHARDS):
            held += int((await client.xpending(shard_keys(shard)[0], "settlement"))["pending"])
        return held
    finally:
        await client.aclose()


def written(engine) -> int:
    with engine.connect() as sql:
        return sql.execute(select(func.count()).select_from(xdrs)).scalar()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'occ.sqlite3'}"


def test_the_same_consumer_name_settles_what_its_dead_worker_held(redis_url, db_path):
    held = asyncio.run(crashed_mid_batch(redis_url, db_path, "--consumer", "night-shift"))
    assert held > 0, "the worker was killed between batches: nothing to recover"
    once = occ(redis_url, db_path, "settle", "--once", "--consumer", "night-shift")
    assert once.returncode == 0, once.stderr
    assert "0 undelivered, 0 pending" in once.stderr
    checked = occ(redis_url, db_path, "reconcile")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 mismatches" in checked.stdout


def test_claim_now_takes_over_a_dead_workers_entries_at_once(redis_url, db_path):
    held = asyncio.run(crashed_mid_batch(redis_url, db_path))
    assert held > 0, "the worker was killed between batches: nothing to recover"
    waiting = occ(redis_url, db_path, "settle", "--once")  # another name: the entries are not idle long enough yet
    assert waiting.returncode == 0 and f"{held:,} pending with other workers" in waiting.stderr
    assert "--claim-now" in waiting.stderr  # the summary says how to take them over
    once = occ(redis_url, db_path, "settle", "--once", "--claim-now")
    assert once.returncode == 0, once.stderr
    assert "0 undelivered, 0 pending" in once.stderr
    checked = occ(redis_url, db_path, "reconcile")
    assert checked.returncode == 0, checked.stdout + checked.stderr
