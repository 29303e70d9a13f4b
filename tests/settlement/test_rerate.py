"""`occ rerate` end to end: real online core → streams → settlement → rerate → Redis adjustment → settle → reconcile.

Hand-checked amounts (docs/tariffs.md, "Pricing rules, exactly"; the cheaper tariff charges 0.08 instead of 0.10
for STANDARD's first minute and 0.04 instead of 0.05 per SMS):

- a 61 s peak call to a London number: 0.20 connect + 0.08 (first 60 s step) + 0.05 × 1/60 = 0.000833… rounded up
  to 0.000834, so 0.280834 (it was 0.300834): the customer gets 0.020000 back;
- 3 SMS: 3 × 0.04 = 0.120000 (was 0.150000); an SMS refund of 1: −0.040000 (was −0.050000): net 0.020000 back.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
from books import JAN, check, occ, settle, sms
from online_app import EXAMPLE_TARIFF, serving, session, voice
from sqlalchemy import func, select, update

from occ.v1 import charging_pb2 as pb
from rating_engine import compile_tariff, load_tariff
from settlement import rerate
from settlement.reconcile import Outcome
from settlement.rerate_run import RerateRun
from settlement.store.schema import ledger, reissue_requests, rerate_adjustments, xdrs


@pytest.fixture
def cheaper(tmp_path):
    """The example tariff with STANDARD's first minute at 0.08 (was 0.10) and SMS at 0.04 (was 0.05)."""
    directory = tmp_path / "cheaper"
    shutil.copytree(EXAMPLE_TARIFF, directory)
    intervals = directory / "rate_intervals.csv"
    text = intervals.read_text().replace("STANDARD,0,0.10,60,60", "STANDARD,0,0.08,60,60")
    intervals.write_text(text.replace("SMS,0,0.05,1,1", "SMS,0,0.04,1,1"))
    return directory


def days() -> tuple[str, str]:
    """--from and --to covering the xDRs' starts: the calls' (Monday 2026-01-05) and the SMS's (now, the events name
    no time). A rerate selects by start, whatever day OCC closed the call."""
    return "2026-01-05", str(datetime.now(UTC).date() + timedelta(days=1))


async def traffic(client) -> dict[str, str]:
    """alice: a 61 s call to London (re-priced) and a 30 s call to a mobile (not); bob: 3 SMS and a refund of 1."""
    await client.account("alice", balance=10_000_000)
    await client.account("bob", balance=5_000_000)
    c = client.charging
    await c.StartSession(session("call-1", 0, "alice", voice(requested=60)))
    await c.UpdateSession(session("call-1", 1, "alice", voice(requested=60, used=60)))
    await c.EndSession(session("call-1", 2, "alice", voice(used=1)))
    await c.StartSession(session("call-2", 0, "alice", voice(requested=60), called="+447700900123"))
    await c.EndSession(session("call-2", 1, "alice", voice(used=30)))
    for sid, action, units in (("sms-1", pb.DIRECT_DEBIT, 3), ("sms-2", pb.REFUND_ACCOUNT, 1)):
        await c.ChargeEvent(pb.EventRequest(action=action, session_id=sid, subscriber="bob", service=pb.MESSAGE,
                                            units=units, called_party="+447700900123"))  # fmt: skip


def ids(engine) -> dict[str, str]:
    """session or event id → xDR id of the originals."""
    with engine.connect() as sql:
        return dict(sql.execute(select(xdrs.c.session_id, xdrs.c.id).where(xdrs.c.revision == 0)).all())


def costs(engine, corrects: str) -> list[tuple[str, str, int, int, str]]:
    with engine.connect() as sql:
        query = select(xdrs.c.id, xdrs.c.kind, xdrs.c.revision, xdrs.c.cost, xdrs.c.status).where(
            xdrs.c.corrects == corrects
        )
        return [tuple(r) for r in sql.execute(query.order_by(xdrs.c.revision, xdrs.c.id))]


async def balances(client) -> dict[str, int]:
    return {a: (await client.balance(a)).balance_micros for a in ("alice", "bob")}


async def test_rerate_corrects_xdrs_and_balances_and_stays_reconciled(redis_url, db_url, tmp_path, store, cheaper):
    start, end = days()
    args = ("rerate", "--from", start, "--to", end, "--tariff", str(cheaper))
    async with serving(redis_url, tmp_path) as client:
        await traffic(client)
        await settle(client, store)
        x = ids(store)
        with store.begin() as sql:  # billing has put the London call on invoice 7
            sql.execute(update(xdrs).where(xdrs.c.id == x["call-1"]).values(status="BILLED", invoice_id=7))
        before = await balances(client)
        with store.connect() as sql:
            n_xdrs = sql.execute(select(func.count()).select_from(xdrs)).scalar()

        dry = await occ(*args, "--dry-run", redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
        assert dry.exit_code == 0, dry.output
        lines = {line.split()[0]: line.split() for line in dry.stdout.splitlines() if line.strip()}
        assert lines[x["call-1"]][1:] == ["alice", "0.300834", "0.280834", "-0.020000"]
        assert lines[x["sms-1"]][2:] == ["0.150000", "0.120000", "-0.030000"]
        assert lines[x["sms-2"]][2:] == ["-0.050000", "-0.040000", "0.010000"]
        assert lines["alice"][1:] == ["1", "0.300834", "0.280834", "0.020000", "EUR"]
        assert lines["bob"][1:] == ["2", "0.100000", "0.080000", "0.020000", "EUR"]
        assert "4 xDRs priced" in dry.stdout and "3 would change" in dry.stdout
        with store.connect() as sql:  # a dry run writes nothing
            assert sql.execute(select(func.count()).select_from(xdrs)).scalar() == n_xdrs
            assert sql.execute(select(func.count()).select_from(rerate_adjustments)).scalar() == 0
        assert await balances(client) == before

        result = await occ(*args, redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
        assert result.exit_code == 0, result.output
        assert "3 xDRs corrected on 2 accounts, 2 balance corrections applied" in result.stdout
        call = x["call-1"]
        assert costs(store, call) == [
            (f"{call}:r1", "session", 1, 280_834, "BILLABLE"),
            (f"{call}:r1:rev", "correction", 1, -300_834, "BILLABLE"),
        ]
        assert [c[3] for c in costs(store, x["sms-2"])] == [-40_000, 50_000]
        assert costs(store, x["call-2"]) == []  # the mobile call costs the same
        with store.connect() as sql:
            assert sql.execute(select(reissue_requests.c.invoice_id)).scalars().all() == [7]
        assert await balances(client) == {"alice": before["alice"] + 20_000, "bob": before["bob"] + 20_000}

        # The adjustments settle like any money movement (a ledger row, no xDR: the corrections bill the difference).
        await settle(client, store)
        assert (await check(client, store)).outcome == Outcome.CLEAN
        with store.connect() as sql:
            columns = (ledger.c.account, ledger.c.amount, ledger.c.ledger_code, ledger.c.xdr_id)
            query = select(*columns).where(ledger.c.reference.like("rerate:%")).order_by(ledger.c.account)
            booked = sql.execute(query).all()
            assert [tuple(r) for r in booked] == [
                ("alice", 20_000, "400000090", None),
                ("bob", 20_000, "400000090", None),
            ]
            assert sql.execute(select(func.count()).select_from(xdrs)).scalar() == n_xdrs + 6

        # The same rerate again changes nothing.
        again = await occ(*args, redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
        assert again.exit_code == 0 and "0 change" in again.stdout
        with store.connect() as sql:
            assert sql.execute(select(func.count()).select_from(xdrs)).scalar() == n_xdrs + 6

        # Back to the example tariff: revision 2 reverses revision 1 (not the original) and restores the price.
        back = await occ(*args[:-1], EXAMPLE_TARIFF, "--account", "alice", redis_url=redis_url, db_url=db_url,
                         data_dir=tmp_path)  # fmt: skip
        assert back.exit_code == 0, back.output
        assert costs(store, call)[2:] == [
            (f"{call}:r2", "session", 2, 300_834, "BILLABLE"),
            (f"{call}:r2:rev", "correction", 2, -280_834, "BILLABLE"),
        ]
        with store.connect() as sql:  # revision 1 was not billed: no further invoice to re-issue
            assert sql.execute(select(reissue_requests.c.invoice_id)).scalars().all() == [7]
        assert await balances(client) == {"alice": before["alice"], "bob": before["bob"] + 20_000}
        await settle(client, store)
        assert (await check(client, store)).outcome == Outcome.CLEAN


async def test_a_crash_before_the_balance_correction_is_repaired_once(redis_url, tmp_path, store, cheaper):
    async with serving(redis_url, tmp_path) as client:
        await traffic(client)
        await settle(client, store)
        before = await balances(client)
        tariff = compile_tariff(load_tariff(cheaper))
        start, end = days()
        window = {"from_ms": rerate.parse_time(start), "to_ms": rerate.parse_time(end)}

        plan = rerate.plan(store, tariff, **window)
        assert rerate.plan(store, tariff, **window, batch=1).corrections == plan.corrections  # page by page
        # By start: Monday 2026-01-05 holds alice's calls (settled today), not bob's SMS of today.
        monday = rerate.plan(store, tariff, from_ms=rerate.parse_time("2026-01-05"),
                             to_ms=rerate.parse_time("2026-01-06"))  # fmt: skip
        assert (monday.examined, [c.account for c in monday.corrections]) == (2, ["alice"])
        # Another run corrected bob in between: this run writes alice and leaves bob, whose xDRs it would double.
        bob = [c for c in plan.corrections if c.account == "bob"]
        assert rerate.write(store, bob, run_id="run0", tariff_hash=tariff.hash) == (1, [])
        written, conflicts = rerate.write(store, plan.corrections, run_id="run1", tariff_hash=tariff.hash)
        assert written == 1 and [account for account, _ in conflicts] == ["bob"]
        # … and the process dies here: the xDRs are corrected, the balances not yet, the corrections are owed.
        assert await balances(client) == before
        assert {r.account: r.amount for r in rerate.owed(store)} == {"alice": 20_000, "bob": 20_000}

        # The next run has nothing left to re-rate, but applies what is owed.
        assert rerate.plan(store, tariff, **window).corrections == []
        outcomes = await rerate.apply_adjustments(client.app.store, store)
        assert sorted((a.account, a.outcome) for a in outcomes) == [("alice", "ok"), ("bob", "ok")]
        assert rerate.owed(store) == []
        # A crash after Redis took them but before they were marked: sent again, Redis answers "dup".
        with store.begin() as sql:
            sql.execute(update(rerate_adjustments).values(applied_ms=None))
        outcomes = await rerate.apply_adjustments(client.app.store, store)
        assert [a.outcome for a in outcomes] == ["dup", "dup"]
        assert await balances(client) == {"alice": before["alice"] + 20_000, "bob": before["bob"] + 20_000}

        # Writing the same plan twice (a second process with a stale plan) is refused, not doubled.
        again, conflicts = rerate.write(store, plan.corrections, run_id="run2", tariff_hash=tariff.hash)
        assert again == 0 and [a for a, _ in conflicts] == ["alice", "bob"]
        await settle(client, store)
        assert (await check(client, store)).outcome == Outcome.CLEAN


def test_a_tariff_that_cannot_price_the_xdrs_changes_nothing(tmp_path, store, cheaper):
    (cheaper / "tariff.csv").write_text("name,currency,timezone,country_code\nUSD tariff,USD,Europe/London,44\n")
    key = sms(store, "s001:1-0")
    plan = rerate.plan(store, compile_tariff(load_tariff(cheaper)), from_ms=JAN - 1000, to_ms=JAN + 1000)
    assert (plan.examined, plan.corrections, plan.failures) == (1, [], [(key, "the tariff is in USD, the xDR in EUR")])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--from", "2026-13-01", "--to", "2026-02-01"], "'--from'"),
        (["--from", "2026-01-01", "--to", "tomorrow"], "'--to'"),
        (["--from", "2026-02-01", "--to", "2026-01-01"], "must be after --from"),
    ],
)
def test_dates_are_checked_with_the_option_named(flags, message, tmp_path):
    from click.testing import CliRunner

    from occ.cli import main

    result = CliRunner().invoke(main, ["rerate", *flags, "--tariff", EXAMPLE_TARIFF, "--db-url", "sqlite:///x"])
    assert result.exit_code == 2 and message in result.output


def never() -> str:
    raise AssertionError("Redis was asked for, but nothing needed it")


def test_a_rerate_that_changes_no_balance_needs_no_redis(store, cheaper):
    sms(store, "s001:1-0")
    run = RerateRun(store, compile_tariff(load_tariff(cheaper)), redis_url=never, shards=8)
    plan = run.plan(from_ms=JAN - 1000, to_ms=JAN + 1000)
    assert ([c.old_cost_micros for c in plan.corrections], run.owed()) == ([50_000], 0)  # a dry run stops here
    nothing = run.plan(from_ms=JAN + 1000, to_ms=JAN + 2000)
    done = run.correct(nothing)
    assert (nothing.examined, done.written, done.conflicts, done.adjustments) == (0, 0, [], [])


def test_a_balance_correction_redis_does_not_take_stays_owed(store, cheaper, redis_url):
    sms(store, "s001:1-0")  # settled, but the account is not in this Redis
    run = RerateRun(store, compile_tariff(load_tariff(cheaper)), redis_url=lambda: redis_url, shards=8)
    plan = run.plan(from_ms=JAN - 1000, to_ms=JAN + 1000)
    progress: list[tuple[int, int]] = []
    done = run.correct(plan, ledger_code=400000091, progress=lambda *p: progress.append(p))
    assert (done.written, done.conflicts, progress) == (1, [], [(1, 1)])
    assert [(a.account, a.amount_micros, a.outcome) for a in done.not_applied] == [("alice", 10_000, "missing")]
    assert run.owed() == 1
    with store.connect() as sql:
        owed = sql.execute(select(rerate_adjustments.c.ledger_code, rerate_adjustments.c.applied_ms)).all()
    assert [tuple(r) for r in owed] == [("400000091", None)]
