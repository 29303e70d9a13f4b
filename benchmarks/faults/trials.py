"""The trials of the fault suite that kill processes: each does its damage, lets OCC recover, and counts.

Every trial returns a :class:`Row`: what was done, how much of it was lost (acknowledged work missing from the
books), duplicated (counted twice), and errored (answers a client cannot act on, orphans, commands that failed,
accounts that do not reconcile). Money movements are top-ups of exactly 1.00 with idempotency keys, so a balance
says how many landed; a request whose answer was lost in a crash is sent again with its key after the recovery.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import grpc
import msgspec
from sqlalchemy import Engine, func, select

from benchmarks.faults.processes import OCC, OccServe, alive, environment, occ, wait_until
from benchmarks.settle_backlog import Backlog, fill_backlog
from occ.store.client import connect
from occ.store.process import start_redis_server
from occ.v1 import admin_pb2 as admin
from occ.v1 import admin_pb2_grpc
from settlement.store.database import open_store
from settlement.store.schema import ledger, xdrs

ONE_EUR = 1_000_000
TOP_UP_LEDGER = 400000009
LOST_REPLY = frozenset({"UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED"})  # the server went away mid-call


class Row(msgspec.Struct, kw_only=True):
    """One line of the table. Attributes: trial (what was done, in words); counts; seconds it took; notes."""

    trial: str
    done: int = 0
    lost: int = 0
    duplicated: int = 0
    errored: int = 0
    seconds: float = 0.0
    notes: list[str] = msgspec.field(default_factory=list)


class TopUps:
    """Top-ups of 1.00 on ``accounts`` by ``callers`` concurrent callers, each with a key of its own; tracks which
    were acknowledged and which are in doubt (their answer was lost)."""

    def __init__(self, accounts: list[str]) -> None:
        self.accounts = accounts
        self.acknowledged: set[tuple[str, str]] = set()
        self.in_doubt: set[tuple[str, str]] = set()
        self.unexpected: list[str] = []
        self._next = 0

    def attempted(self) -> dict[str, int]:
        """Distinct keys sent per account (each must land exactly once)."""
        counts = dict.fromkeys(self.accounts, 0)
        for account, _ in self.acknowledged | self.in_doubt:
            counts[account] += 1
        return counts

    async def create(self, serve: OccServe) -> None:
        async with serve.admin_channel() as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            for account in self.accounts:
                await stub.CreateAccount(admin.Account(id=account, currency="EUR", tariff_plan="retail"), timeout=10)

    async def run(self, serve: OccServe, *, per_caller: int, max_s: float) -> None:
        """Each account's caller sends up to ``per_caller`` top-ups, for at most ``max_s``, stopping at the first
        lost answer (the server is gone)."""
        deadline = time.monotonic() + max_s
        async with serve.admin_channel() as channel:
            stub = admin_pb2_grpc.AdminStub(channel)

            async def caller(account: str) -> None:
                for _ in range(per_caller):
                    if time.monotonic() > deadline:
                        return
                    self._next += 1
                    if not await self._send(stub, account, f"{account}-{self._next}"):
                        return

            await asyncio.gather(*(caller(account) for account in self.accounts))

    async def resend(self, serve: OccServe, *, max_s: float = 30.0) -> None:
        """Send every in-doubt top-up again with its key until each is answered (a repeat changes nothing)."""
        deadline = time.monotonic() + max_s
        async with serve.admin_channel() as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            while self.in_doubt and time.monotonic() < deadline:
                for account, key in sorted(self.in_doubt):
                    await self._send(stub, account, key)
                if self.in_doubt:
                    await asyncio.sleep(0.2)

    async def _send(self, stub: admin_pb2_grpc.AdminStub, account: str, key: str) -> bool:
        request = admin.TransactionRequest(account_id=account, type=admin.TOP_UP, amount_micros=ONE_EUR,
                                           idempotency_key=key, ledger_code=TOP_UP_LEDGER)  # fmt: skip
        try:
            await stub.Transact(request, timeout=10)
        except grpc.aio.AioRpcError as error:
            self.in_doubt.add((account, key))
            if error.code().name not in LOST_REPLY:
                self.unexpected.append(f"{error.code().name}: {error.details()}")
            return False
        self.in_doubt.discard((account, key))
        self.acknowledged.add((account, key))
        return True

    async def landed(self, serve: OccServe) -> dict[str, int]:
        """Top-ups each account's balance holds (balance ÷ 1.00)."""
        async with serve.admin_channel() as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            found = {}
            for account in self.accounts:
                answer = await stub.GetAccount(admin.GetAccountRequest(id=account), timeout=10)
                found[account] = answer.balance_micros // ONE_EUR
            return found

    def score(self, row: Row, landed: dict[str, int]) -> None:
        """Lost and duplicated top-ups, account by account; unexpected statuses as errors."""
        for account, expected in self.attempted().items():
            row.lost += max(0, expected - landed[account])
            row.duplicated += max(0, landed[account] - expected)
        row.done = len(self.acknowledged)
        row.errored += len(self.unexpected)
        row.notes.extend(self.unexpected[:3])


def reconcile(row: Row, *args: str, timeout_s: float = 60.0, **settings: str) -> None:
    """``occ reconcile`` until the streams are drained (exit 2 means not yet); mismatches are errors."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = occ("reconcile", *args, **settings)
        if done.returncode != 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if done.returncode != 0:
        row.errored += 1
        row.notes.append(f"occ reconcile exited {done.returncode}: {(done.stdout + done.stderr).strip()[-300:]}")


def orphans(pids: Iterable[int | None], timeout_s: float = 10.0) -> int:
    """How many of ``pids`` outlive their killed parent by ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    left = [pid for pid in pids if pid is not None]
    while left and time.monotonic() < deadline:
        left = [pid for pid in left if alive(pid)]
        time.sleep(0.05)
    return len(left)


def kill_settle_mid_drain(workdir: Path, *, kills: int = 6, calls: int = 20_000) -> Row:
    """``occ settle`` SIGKILLed ``kills`` times while draining a backlog, then ``settle --once`` with its name."""
    row = Row(trial=f"kill -9 occ settle ×{kills} mid-drain")
    redis = start_redis_server(workdir / "settle-redis")
    db_url = f"sqlite:///{workdir / 'settle.sqlite3'}"
    settings = {"shards": "16"}
    try:
        backlog = asyncio.run(_fill(redis.url, calls))
        row.trial += f" ({backlog.entries:,} entries)"
        occ("db", "upgrade", "--db-url", db_url)
        engine = open_store(db_url)
        command = ["settle", "--redis-url", redis.url, "--db-url", db_url, "--consumer", "chaos", "--batch", "20"]
        step = max(1, backlog.xdrs // (2 * kills + 2))  # each worker settles about this many, then is killed
        for _ in range(kills):
            target = min(_rows(engine)[1] + step, backlog.xdrs)
            worker = _spawn(command, settings)
            try:
                wait_until("the worker settling", lambda t=target: _rows(engine)[1] >= t, 60, poll_s=0.01)
            finally:
                worker.kill()
                worker.wait()
        once = occ(*command, "--once", **settings)
        if once.returncode != 0:
            row.errored += 1
            row.notes.append(f"occ settle --once exited {once.returncode}: {once.stderr.strip()[-300:]}")
        ledger_rows, xdr_rows = _rows(engine)
        engine.dispose()
        row.done = xdr_rows
        row.lost = max(0, backlog.xdrs - xdr_rows) + max(0, backlog.ledger_rows - ledger_rows)
        row.duplicated = max(0, xdr_rows - backlog.xdrs) + max(0, ledger_rows - backlog.ledger_rows)
        reconcile(row, "--redis-url", redis.url, "--db-url", db_url, **settings)
    finally:
        redis.stop()
    return row


async def _fill(url: str, calls: int) -> Backlog:
    client = connect(url)
    try:
        return await fill_backlog(client, shards=16, accounts=500, calls=calls)
    finally:
        await client.aclose()


def _spawn(args: list[str], settings: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([OCC, *args], env=environment(**settings), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as sql:
        return (sql.execute(select(func.count()).select_from(ledger)).scalar() or 0,
                sql.execute(select(func.count()).select_from(xdrs)).scalar() or 0)  # fmt: skip


def kill_serve_under_load(workdir: Path, *, callers: int = 200, load_s: float = 1.5) -> Row:
    """``occ serve`` SIGKILLed while ``callers`` concurrent callers top up; restarted; lost answers sent again."""
    row = Row(trial=f"kill -9 occ serve under {callers} concurrent callers")
    serve = OccServe(workdir / "serve-kill").start()
    top_ups = TopUps([f"k{i:03d}" for i in range(callers)])
    try:
        asyncio.run(top_ups.create(serve))
        children = [serve.settle_pid, serve.redis_pid]

        async def load_then_kill() -> None:
            load = asyncio.create_task(top_ups.run(serve, per_caller=1000, max_s=load_s + 10))
            await asyncio.sleep(load_s)
            serve.kill()
            await load

        asyncio.run(load_then_kill())
        left = orphans(children)
        row.errored += left
        if left:
            row.notes.append(f"{left} child process(es) outlived the killed server")
        row.notes.append(f"{len(top_ups.in_doubt)} answers lost in the kill, sent again after the restart")
        serve.start()
        asyncio.run(top_ups.resend(serve))
        top_ups.score(row, asyncio.run(top_ups.landed(serve)))
        reconcile(row, "--data-dir", str(serve.data_dir))
    finally:
        serve.stop()
    return row


def kill_embedded_redis(workdir: Path, *, top_ups_before: int = 1000, top_ups_after: int = 100) -> Row:
    """The embedded redis-server SIGKILLed after ``top_ups_before`` acknowledged top-ups; ``occ serve`` starts it
    again with its AOF; ``top_ups_after`` more."""
    row = Row(trial=f"kill -9 the embedded Redis after {top_ups_before:,} top-ups")
    serve = OccServe(workdir / "redis-kill").start()
    top_ups = TopUps([f"r{i:02d}" for i in range(50)])
    try:
        asyncio.run(top_ups.create(serve))
        asyncio.run(top_ups.run(serve, per_caller=top_ups_before // 50, max_s=60))
        first = serve.redis_pid
        os.kill(first, signal.SIGKILL)
        wait_until("a new redis-server", lambda: serve.redis_pid != first, 30)
        wait_until("health SERVING", serve.healthy, 30)
        row.notes.append(f"redis-server {first} killed; {serve.redis_pid} serves the same AOF")
        asyncio.run(top_ups.run(serve, per_caller=top_ups_after // 50, max_s=60))
        asyncio.run(top_ups.resend(serve))
        top_ups.score(row, asyncio.run(top_ups.landed(serve)))
        reconcile(row, "--data-dir", str(serve.data_dir))
    finally:
        serve.stop()
    return row
