"""Helpers for the finance tests: settle everything, reconcile, run an ``occ`` command, make random traffic."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import grpc
from click.testing import CliRunner, Result
from online_app import MONDAY_PEAK, Client, session, voice
from sqlalchemy import Engine

from occ.cli import main
from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb
from settlement.drain import Drain, DrainOptions
from settlement.entries import book
from settlement.reconcile import Report, reconcile
from settlement.writer import BatchWriter, Booked

JAN = 1_767_258_000_000  # 2026-01-01T09:00:00Z
NUMBERS = ("+442079460000", "+447700900123", "+33142685300", "+12125550100")


async def settle(client: Client, engine: Engine) -> None:
    """Drain every shard's stream into the store; fails the test if anything is left or dead-lettered."""
    settings = client.app.settings
    options = DrainOptions(claim_idle_s=0)
    async with Drain(
        settings.redis_url, engine, shards=settings.shards, cluster=settings.redis_cluster, options=options
    ) as drain:
        left = await drain.drain_once()
    assert (left.lag, left.pending, drain.dead_letters) == (0, 0, 0)


async def check(client: Client, engine: Engine, **options: bool) -> Report:
    settings = client.app.settings
    return await reconcile(
        settings.redis_url, engine, shards=settings.shards, cluster=settings.redis_cluster, **options
    )


async def occ(*args: str, redis_url: str, db_url: str, data_dir: Path) -> Result:
    """Run ``occ ARGS`` against this Redis and store (in a thread: the commands run their own event loop)."""
    flags = ["--redis-url", redis_url, "--db-url", db_url, "--data-dir", str(data_dir)]
    return await asyncio.to_thread(CliRunner().invoke, main, [*args, *flags], catch_exceptions=False)


def sms(engine: Engine, key: str, *, account: str = "alice", ledger: str = "400000004") -> str:
    """Book one SMS charge (an event_charge xDR) under ``key``; an empty ledger code makes it RAW_EXCEPTED."""
    fields = {
        "type": "event_charge", "id": key, "account": account, "amount": "-50000", "balance": "950000",
        "currency": "EUR", "time_ms": str(JAN), "session_id": key, "rg": "0", "units": "1", "service": "message",
        "cost": "50000", "ledger": ledger, "tariff": "t", "plan": "retail", "called": "+447700900123",
    }  # fmt: skip
    BatchWriter(engine).write([Booked(key, *book(key, fields, JAN), (account, "EUR", JAN))])
    return key


async def transact(client: Client, account: str, kind: int, amount: int, key: str, ledger: int = 400000010) -> None:
    request = admin.TransactionRequest(
        account_id=account, type=kind, amount_micros=amount, idempotency_key=key, ledger_code=ledger
    )
    await client.admin.Transact(request)


async def random_workload(client: Client, seed: int, *, accounts: int, operations: int) -> dict[str, int]:
    """Random sessions (some left open), SMS charges and refunds, top-ups, payments, adjustments and refunds over
    ``accounts`` accounts; returns how many of each kind of request succeeded."""
    rng = random.Random(seed)
    names = [f"acct{i:03d}" for i in range(accounts)]
    for name in names:
        await client.account(name, balance=rng.randrange(0, 20_000_000), credit_limit=rng.choice((0, 0, 5_000_000)))
    open_sessions: dict[str, tuple[str, int, int]] = {}  # session id → account, next request number, start
    done = {"start": 0, "update": 0, "end": 0, "event": 0, "transaction": 0}
    c = client.charging
    for op in range(operations):
        choice = rng.random()
        if choice < 0.25 or not open_sessions:
            sid, account, at = f"call-{op}", rng.choice(names), MONDAY_PEAK + rng.randrange(0, 7 * 86400)
            answer = await c.StartSession(
                session(sid, 0, account, voice(requested=60), at=at, called=rng.choice(NUMBERS))
            )
            if answer.result_code == pb.SUCCESS:
                open_sessions[sid] = (account, 1, at)
                done["start"] += 1
        elif choice < 0.50:
            sid = rng.choice(sorted(open_sessions))
            account, number, at = open_sessions[sid]
            await c.UpdateSession(session(sid, number, account, voice(requested=60, used=rng.randrange(1, 90)), at=at))
            open_sessions[sid] = (account, number + 1, at)
            done["update"] += 1
        elif choice < 0.70:
            sid = rng.choice(sorted(open_sessions))
            account, number, at = open_sessions.pop(sid)
            await c.EndSession(session(sid, number, account, voice(used=rng.randrange(0, 90)), at=at))
            done["end"] += 1
        elif choice < 0.85:
            action = rng.choice((pb.DIRECT_DEBIT, pb.DIRECT_DEBIT, pb.REFUND_ACCOUNT))
            event = pb.EventRequest(
                action=action, session_id=f"sms-{op}", subscriber=rng.choice(names), service=pb.MESSAGE,
                units=rng.randrange(1, 4), called_party=rng.choice(NUMBERS),
            )  # fmt: skip
            await c.ChargeEvent(event)
            done["event"] += 1
        else:
            kind = rng.choice((admin.TOP_UP, admin.PAYMENT, admin.ADJUSTMENT, admin.REFUND))
            amount = rng.randrange(1, 3_000_000) * (rng.choice((1, -1)) if kind == admin.ADJUSTMENT else 1)
            try:
                await transact(client, rng.choice(names), kind, amount, f"txn-{op}")
                done["transaction"] += 1
            except grpc.aio.AioRpcError as error:  # e.g. a refund beyond what the balance may lose
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    return done
