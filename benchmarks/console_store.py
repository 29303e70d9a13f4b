"""The console benchmark's store: 100,000 accounts, 1,000,000 xDRs and 10,000 invoices, loaded in bounded time.

SQL (SQLite file): ``bench_billing.populate`` bulk-loads 10,000 accounts with 100 January xDRs each (1,000,000),
a real billing run issues their 10,000 invoices (lines, taxation xDRs, ERP documents in the outbox), 90,000 more
accounts are bulk-inserted without usage, and every January xDR gets its ledger row (1,000,000). Redis: the same
100,000 accounts written by ``account.lua`` (what ``Admin.CreateAccount`` runs), so ``Admin.ListAccounts`` pages
through all of them. The SQL part takes about two minutes, so a store already filled in ``--dir`` is reused (its
row counts are checked); Redis is filled every run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import msgspec
from sqlalchemy import Engine, func, select

from benchmarks.bench_billing import insert_accounts, populate
from occ.store.client import connect
from occ.store.scripts import Store
from settlement.billing.run import run
from settlement.store.database import open_store
from settlement.store.migrate import upgrade
from settlement.store.schema import accounts, invoices, xdrs

BILLED_ACCOUNTS = 10_000
XDRS_PER_ACCOUNT = 100
ACCOUNTS = 100_000
SHARDS = 256
# A ledger row for every January xDR (as settlement books one per balance change), with the balance after it: what
# an account's page reads for its balance chart and ledger table. SQLite keeps Money as integer micro-units.
LEDGER_OF_XDRS = """
INSERT INTO ledger (id, period, account, time_ms, kind, amount, balance, currency, ledger_code, reference,
                    description, xdr_id, actor)
SELECT id, period, account, end_ms, kind, -cost, SUM(-cost) OVER (PARTITION BY account ORDER BY end_ms, id), currency,
       ledger_code, '', description, id, NULL
FROM xdrs WHERE period = '2026-01' AND kind != 'tax'
"""


def account_id(number: int) -> str:
    """The benchmark's account names (``bench_billing``'s for the billed ones): acc000000 … acc099999."""
    return f"acc{number:06d}"


def counts(engine: Engine) -> tuple[int, int, int]:
    """(accounts, xDRs, invoices) in the store."""
    with engine.connect() as connection:
        return tuple(connection.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (accounts, xdrs, invoices))  # fmt: skip


class Size(msgspec.Struct, frozen=True):
    """How much to load: ``accounts`` in all, ``billed`` of them with ``per_account`` January xDRs and an invoice."""

    accounts: int = ACCOUNTS
    billed: int = BILLED_ACCOUNTS
    per_account: int = XDRS_PER_ACCOUNT


FULL = Size()


def fill_sql(path: Path, say: Callable[[str], None], *, size: Size = FULL, seed: int = 15) -> Engine:
    """The SQLite store at ``path``, filled (or reused when it already holds the full set)."""
    engine = open_store(f"sqlite:///{path}")
    upgrade(engine)
    have = counts(engine)
    if have[0] >= size.accounts and have[1] >= size.billed * size.per_account and have[2] >= size.billed:
        say(f"reusing {path}: {have[0]:,} accounts, {have[1]:,} xDRs, {have[2]:,} invoices")
        return engine
    if any(have):
        raise SystemExit(f"{path} is partly filled ({have}); remove it and run again")
    started = time.perf_counter()
    n = populate(engine, size.billed, size.per_account, seed)
    say(f"loaded {n:,} xDRs of {size.billed:,} accounts in {time.perf_counter() - started:.0f} s")

    def progress(done: int, total: int) -> None:
        if done % 2_000 == 0 or done == total:
            say(f"  billing: {done:,}/{total:,} accounts, {time.perf_counter() - started:.0f} s")

    report = run(engine, date(2026, 2, 1), progress=progress)
    if report.issued != size.billed:
        raise SystemExit(f"the billing run issued {report.issued:,} invoices, not {size.billed:,}: {report}")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        insert_accounts(cursor, range(size.billed, size.accounts))
        cursor.execute(LEDGER_OF_XDRS)
        cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
    finally:
        raw.close()
    have = counts(engine)
    say(f"store filled in {time.perf_counter() - started:.0f} s: {have[0]:,} accounts, {have[1]:,} xDRs, "
        f"{have[2]:,} invoices")  # fmt: skip
    return engine


async def fill_redis(
    redis_url: str, say: Callable[[str], None], *, accounts: int = ACCOUNTS, in_flight: int = 64
) -> None:
    """Create the accounts in Redis with ``account.lua`` (as ``Admin.CreateAccount`` does)."""
    started = time.perf_counter()
    client = connect(redis_url, pool_size=in_flight)  # one connection per call in flight: none waits for the pool
    store = Store(client, shards=SHARDS, cluster=False)
    try:
        await store.load_scripts()
        fields: dict[str, str | int] = {
            "currency": "EUR",
            "credit_limit": 0,
            "status": "ACTIVE",
            "plan": "retail",
            "tax_profile": "",
        }
        for first in range(0, accounts, in_flight):
            batch = range(first, min(accounts, first + in_flight))
            await asyncio.gather(*(store.write_account(account_id(a), "create", fields) for a in batch))
    finally:
        await client.aclose()
    say(f"created {accounts:,} accounts in Redis in {time.perf_counter() - started:.0f} s")
