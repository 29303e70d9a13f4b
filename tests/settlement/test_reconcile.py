"""`occ reconcile` against a real online core, real Redis and a real SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

from books import check, occ, random_workload, settle
from online_app import serving
from sqlalchemy import func, select, update

from occ.store.client import connect
from settlement.reconcile import Mismatch, Outcome, compare, stream_marks
from settlement.store.database import open_store
from settlement.store.migrate import upgrade
from settlement.store.schema import ledger


async def test_a_random_workload_reconciles_clean_and_a_break_is_reported_exactly(redis_url, db_url, tmp_path, store):
    async with serving(redis_url, tmp_path) as client:
        done = await random_workload(client, seed=4, accounts=12, operations=160)
        assert min(done.values()) > 5, done  # every kind of request really happened

        # Not drained yet: no comparison, a distinct outcome (and exit status).
        early = await check(client, store)
        assert (early.checked, early.outcome) == (False, Outcome.NOT_DRAINED) and early.backlog.lag > 100
        result = await occ("reconcile", redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
        assert result.exit_code == 2 and "not drained" in result.output

        await settle(client, store)
        report = await check(client, store)
        assert (report.outcome, report.accounts, report.mismatches, report.moved) == (Outcome.CLEAN, 12, [], False)
        result = await occ("reconcile", redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
        assert (result.exit_code, result.output.strip()) == (0, "12 accounts, 0 mismatches")

        # Break one ledger row of acct003 by one micro-unit, and change acct007's balance behind OCC's back.
        with store.begin() as sql:
            row = sql.execute(select(ledger.c.id).where(ledger.c.account == "acct003").limit(1)).scalar_one()
            sql.execute(update(ledger).where(ledger.c.id == row).values(amount=ledger.c.amount + 1))
        await client.app.redis.hincrby(client.app.store.keys("acct007").account, "balance", 5_000_000)

        report = await check(client, store)
        assert report.outcome == Outcome.MISMATCHES
        found = [(m.account, m.difference_micros) for m in report.mismatches]
        assert found == [("acct003", -1), ("acct007", 5_000_000)]
        live = (await client.balance("acct007")).balance_micros
        with store.connect() as sql:
            booked = sql.execute(select(func.sum(ledger.c.amount)).where(ledger.c.account == "acct007")).scalar()
        assert report.mismatches[1] == Mismatch("acct007", "EUR", live, booked, report.mismatches[1].ledger_rows, "")

        result = await occ("reconcile", redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert lines[-1] == "12 accounts, 2 mismatches"
        assert lines[1].split()[0] == "acct003" and lines[1].split()[-1] == "-0.000001"
        assert lines[2].split()[0] == "acct007" and lines[2].split()[-1] == "5.000000"


async def test_an_account_on_one_side_only(redis_url, db_url, tmp_path, store):
    async with serving(redis_url, tmp_path) as client:
        await client.account("quiet", balance=0)  # in Redis only, balance 0: fine
        await client.account("loaded", balance=1_000_000)
        await settle(client, store)
        assert (await check(client, store)).outcome == Outcome.CLEAN
        # A balance written straight into Redis for an account settlement never saw is a mismatch.
        await client.app.redis.hset(client.app.store.keys("ghost").account, mapping={"balance": 7, "currency": "EUR"})
        # An account whose Redis record disappeared while its ledger holds rows is a mismatch too.
        await client.app.redis.delete(client.app.store.keys("loaded").account)
        report = await check(client, store)
        assert [(m.account, m.live_micros, m.expected_micros, m.note) for m in report.mismatches] == [
            ("ghost", 7, 0, "not in the SQL store"),
            ("loaded", None, 1_000_000, "not in Redis"),
        ]
        assert report.accounts == 3 and report.outcome == Outcome.MISMATCHES


async def test_reconcile_reads_every_node_of_a_cluster(redis_cluster_url, tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'occ.sqlite3'}")
    upgrade(engine)
    async with serving(redis_cluster_url, tmp_path, cluster=True) as client:
        await random_workload(client, seed=7, accounts=10, operations=40)
        await settle(client, engine)
        report = await check(client, engine)
        assert (report.outcome, report.accounts) == (Outcome.CLEAN, 10)
        await client.app.redis.hincrby(client.app.store.keys("acct005").account, "balance", -3)
        report = await check(client, engine)
        assert [(m.account, m.difference_micros) for m in report.mismatches] == [("acct005", -3)]
    engine.dispose()


async def test_stream_marks_move_with_every_entry_even_after_a_trim(redis_url):
    client = connect(redis_url, decode=True)
    streams = ["occ:{s000}:events", "occ:{s001}:events"]
    assert await stream_marks(client, streams) == ["", ""]  # no stream yet
    first = await client.xadd(streams[1], {"type": "topup"})
    marks = await stream_marks(client, streams)
    assert marks == ["", first]
    await client.xtrim(streams[1], maxlen=0)
    assert await stream_marks(client, streams) == marks  # trimming is not a change
    await client.xadd(streams[1], {"type": "topup"})
    assert await stream_marks(client, streams) != marks
    await client.aclose()


def test_compare_follows_the_one_side_rules():
    live = {"a": (0, "EUR"), "b": (5, "EUR"), "c": (3, "EUR")}
    expected = {"c": (1, 2, 4, "EUR"), "d": (0, 0, 2, "EUR"), "e": (0, 0, 0, "EUR")}
    found = {m.account: m for m in compare(live, expected)}
    # a: Redis only at 0 → fine; c: 1 + 2 == 3 → fine; e: SQL only, 0, no rows → fine.
    assert sorted(found) == ["b", "d"]
    assert found["b"].difference_micros == 5 and found["d"].note == "not in Redis"  # d: rows summing to 0, no account
