"""The console benchmark's store fill, at a small size: real SQLite (a real bill run) and a real redis-server."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from benchmarks.console_store import Size, account_id, counts, fill_redis, fill_sql
from occ.store.client import connect
from occ.store.scripts import Store
from settlement.store.schema import ledger, outbox


def test_the_store_holds_what_the_benchmark_asks_and_is_reused(tmp_path, redis_url):
    said: list[str] = []
    size = Size(accounts=60, billed=12, per_account=10)
    engine = fill_sql(tmp_path / "occ.sqlite3", said.append, size=size)
    have_accounts, have_xdrs, have_invoices = counts(engine)
    assert (have_accounts, have_invoices) == (60, 12) and have_xdrs > 12 * 10  # with the bill run's taxation xDRs
    with engine.connect() as connection:
        ledger_rows = connection.execute(select(func.count()).select_from(ledger)).scalar_one()
        of_one = select(ledger.c.amount, ledger.c.balance).where(ledger.c.account == account_id(3))
        balances = connection.execute(of_one.order_by(ledger.c.time_ms, ledger.c.id)).all()
        documents = connection.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert ledger_rows == 12 * 10 and documents == 12
    running = 0
    for amount, balance in balances:  # each row's balance is the running sum of the amounts before it and its own
        running += amount
        assert balance == running
    engine.dispose()

    again = fill_sql(tmp_path / "occ.sqlite3", said.append, size=size)
    assert said[-1].startswith("reusing") and counts(again) == (60, have_xdrs, 12)
    again.dispose()

    asyncio.run(fill_redis(redis_url, said.append, accounts=60, in_flight=25))

    async def listed() -> list[str]:
        client = connect(redis_url)
        try:
            ids, more = await Store(client, shards=256, cluster=False).account_ids(prefix="acc", after="", limit=100)
        finally:
            await client.aclose()
        assert not more
        return ids

    assert asyncio.run(listed()) == [account_id(n) for n in range(60)]
