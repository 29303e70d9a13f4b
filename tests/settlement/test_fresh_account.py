"""Issue 17: every finance command that names an account, on an account just created and never charged.

Before settlement has run, each refuses with one line saying why and what to do (never a traceback); once
``occ settle --once`` has run, or while a settlement worker runs, each works: settlement records an account from its
``account`` entry, written when it is created.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from books import occ
from online_app import serving
from sqlalchemy import select

from occ.v1 import admin_pb2 as admin
from settlement.drain import Drain, DrainOptions
from settlement.store.schema import accounts, billing_accounts

NOT_IN_BOOKS = (
    "Error: account 'fresh1' is not in the books yet: run `occ settle --once` (or start occ serve's settlement "
    "worker)\n"
)
TODAY = datetime.now(UTC).date()
RERATE_DATES = ("--from", (TODAY - timedelta(days=31)).isoformat(), "--to", (TODAY + timedelta(days=1)).isoformat())
FINANCE_COMMANDS = {  # each names the fresh account
    "bill account set": ("bill", "account", "set", "fresh1", "--billing-day", "1", "--timezone", "UTC"),
    "bill account show": ("bill", "account", "show", "fresh1"),
    "bill now": ("bill", "now", "fresh1"),
    "bill now --dry-run": ("bill", "now", "fresh1", "--dry-run"),
    "bill run --account": ("bill", "run", "--date", TODAY.isoformat(), "--account", "fresh1"),
    "xdr list --account": ("xdr", "list", "--status", "BILLABLE", "--account", "fresh1"),
    "rerate --account": ("rerate", *RERATE_DATES, "--account", "fresh1", "--tariff", "examples/tariff", "--dry-run"),
}


@contextlib.asynccontextmanager
async def fresh_account(redis_url, store, tmp_path):
    """The issue's operator: `occ account create fresh1 --plan retail`, and nothing else (another account of the
    same server is settled already, so the store exists)."""
    async with serving(redis_url, tmp_path) as client:
        await client.account("old", balance=1_000_000)
        await settle_all(redis_url, store, client.app.settings.shards)
        await client.admin.CreateAccount(admin.Account(id="fresh1", currency="EUR", tariff_plan="retail"))
        yield client


async def settle_all(redis_url, store, shards: int) -> None:
    async with Drain(redis_url, store, shards=shards, options=DrainOptions(claim_idle_s=0)) as drain:
        left = await drain.drain_once()
    assert (left.lag, left.pending, drain.dead_letters) == (0, 0, 0)


@pytest.mark.parametrize("name", FINANCE_COMMANDS)
async def test_before_settlement_a_finance_command_says_in_one_line_what_to_do(name, redis_url, db_url, store,
                                                                               tmp_path):  # fmt: skip
    async with fresh_account(redis_url, store, tmp_path):
        result = await occ(*FINANCE_COMMANDS[name], redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
    assert (result.exit_code, result.output) == (1, NOT_IN_BOOKS)
    with store.connect() as sql:
        assert sql.execute(select(billing_accounts)).all() == []  # nothing half-written


@pytest.mark.parametrize("name", FINANCE_COMMANDS)
async def test_after_occ_settle_once_a_finance_command_works(name, redis_url, db_url, store, tmp_path):
    async with fresh_account(redis_url, store, tmp_path):
        settled = await occ("settle", "--once", redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
        assert settled.exit_code == 0, settled.output
        result = await occ(*FINANCE_COMMANDS[name], redis_url=redis_url, db_url=db_url, data_dir=tmp_path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "not in the books" not in result.output


async def test_the_issues_steps_work_while_a_settlement_worker_runs(redis_url, db_url, store, tmp_path):
    """`occ account create fresh1 --plan retail`, then `occ bill account set fresh1 …` with settlement running."""
    async with serving(redis_url, tmp_path) as client:
        stop = asyncio.Event()
        async with Drain(redis_url, store, shards=client.app.settings.shards,
                         options=DrainOptions(poll_s=0.05)) as drain:  # fmt: skip
            worker = asyncio.create_task(drain.run(stop))
            try:
                await client.admin.CreateAccount(admin.Account(id="fresh1", currency="EUR", tariff_plan="retail"))
                for _ in range(200):  # at most 10 s for the worker to book the creation
                    with store.connect() as sql:
                        if sql.execute(select(accounts.c.plan).where(accounts.c.account == "fresh1")).first():
                            break
                    await asyncio.sleep(0.05)
                flags = {"redis_url": redis_url, "db_url": db_url, "data_dir": tmp_path}
                done = await occ(*FINANCE_COMMANDS["bill account set"], **flags)
                shown = await occ(*FINANCE_COMMANDS["bill account show"], **flags)
            finally:
                stop.set()
                await worker
    assert (done.exit_code, done.output) == (0, "fresh1: day 1 UTC, tenant default, customer fresh1, class -, tax -\n"
                                                "  bill to: - (no name or address: occ bill account set fresh1 "
                                                "--name … --address …)\n")  # fmt: skip
    assert shown.exit_code == 0, shown.output
    lines = dict(line.split(":", 1) for line in shown.output.splitlines())
    assert lines["billing"].strip() == "day 1, UTC"  # set now: no "(defaults …)"
    assert lines["tax profile"].strip() == "none (untaxed)"
    assert lines["bill to"].strip().startswith("- (no name or address: occ bill account set fresh1")
    assert lines["online"].strip() == "plan retail, ACTIVE, credit limit 0.000000, prepaid tax none"


async def test_reconcile_of_a_fresh_account_is_not_drained_then_clean(redis_url, db_url, store, tmp_path):
    async with fresh_account(redis_url, store, tmp_path):
        flags = {"redis_url": redis_url, "db_url": db_url, "data_dir": tmp_path}
        waiting = await occ("reconcile", **flags)
        assert waiting.exit_code == 2 and "run `occ settle --once` first" in waiting.output
        await occ("settle", "--once", **flags)
        clean = await occ("reconcile", **flags)
    assert (clean.exit_code, clean.output) == (0, "2 accounts, 0 mismatches\n")
