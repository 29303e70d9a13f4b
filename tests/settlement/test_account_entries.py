"""``account`` entries (issue 17): settlement records an account, and its online settings, from its creation on.

An ``account`` entry books no money (no ledger row, no xDR): it upserts the account's ``accounts`` row, the newest
entry by stream position winning whatever order workers book them in, and it is never a dead letter.
"""

from __future__ import annotations

import pytest
from alembic import command
from books import settle
from online_app import serving
from sqlalchemy import func, insert, inspect, select

from occ.store.client import connect
from occ.v1 import admin_pb2 as admin
from settlement.drain import Drain, DrainOptions
from settlement.entries import Malformed, account_row
from settlement.records import AccountRow
from settlement.store.database import open_store
from settlement.store.migrate import _config, upgrade
from settlement.store.schema import accounts, ledger, xdrs
from settlement.vocabulary import AccountStatus
from settlement.writer import BatchWriter, Booked

CREATED_MS = 1_767_258_000_000  # 2026-01-01T09:00:00Z


def entry(change: str = "created", **fields: str) -> dict[str, str]:
    """An ``account`` entry as ``occ/store/lua/account.lua`` writes it (docs/events.md)."""
    return {"type": "account", "change": change, "id": "acme", "account": "acme", "amount": "0", "balance": "0",
            "currency": "EUR", "time_ms": str(CREATED_MS), "plan": "retail", "credit_limit": "5000000",
            "status": "ACTIVE", "prepaid_tax_ppm": "0", "prepaid_tax_ledger": "", "prepaid_tax_code": "",
            "created_ms": str(CREATED_MS), **fields}  # fmt: skip


def test_an_account_entry_is_the_accounts_row_it_upserts():
    row = account_row("s017:1767258000000-3", entry(prepaid_tax_ppm="200000", prepaid_tax_ledger="470000001",
                                                    prepaid_tax_code="S20"))  # fmt: skip
    assert row == AccountRow(account="acme", currency="EUR", opening_balance=0, first_seen_ms=CREATED_MS,
                             plan="retail", credit_limit=5_000_000, status=AccountStatus.ACTIVE,
                             prepaid_tax_ppm=200_000, prepaid_tax_ledger="470000001", prepaid_tax_code="S20",
                             created_ms=CREATED_MS, settings_ms=1_767_258_000_000, settings_seq=3)  # fmt: skip
    assert type(row.status) is AccountStatus and row.status == "ACTIVE"
    older = account_row("s017:1767258000000-3", entry("updated", created_ms="", time_ms="1767258999000"))
    assert (older.created_ms, older.first_seen_ms) == (None, 1_767_258_999_000)  # an account made before


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"change": "renamed"}, "change must be one of created, updated"),
        ({"status": "GONE"}, "status must be one of ACTIVE, BLOCKED"),
        ({"currency": "eur"}, "currency must be an ISO 4217 code"),
        ({"credit_limit": "-1"}, "credit_limit must be within 0.."),
        ({"credit_limit": "1e6"}, "credit_limit must be an integer"),
        ({"plan": ""}, "plan is missing"),
        ({"prepaid_tax_ppm": "1000001"}, "prepaid_tax_ppm must be within 0..1000000"),
        ({"prepaid_tax_ledger": "1" * 16}, "prepaid_tax_ledger is longer than 15"),
        ({"created_ms": "yesterday"}, "created_ms must be an integer"),
        ({"account": ""}, "account is missing"),
    ],
)
def test_an_account_entry_that_breaks_the_contract_names_the_field(fields, named):
    with pytest.raises(Malformed, match=named):
        account_row("s000:1-0", entry(**fields))


def booked(entry_id: str, **fields: str) -> Booked:
    row = account_row(f"s017:{entry_id}", entry(**fields))
    return Booked(f"s017:{entry_id}", (), (), (row.account, row.currency, row.first_seen_ms), settings=row)


def settings_of(store, account: str = "acme") -> tuple:
    with store.connect() as sql:
        return sql.execute(
            select(accounts.c.plan, accounts.c.status, accounts.c.credit_limit, accounts.c.first_seen_ms)
            .where(accounts.c.account == account)
        ).one()  # fmt: skip


def test_the_newest_entry_wins_whatever_order_workers_book_them_in(store):
    writer = BatchWriter(store)
    writer.write([booked("100-0")])
    writer.write([booked("300-0", change="updated", status="BLOCKED", plan="wholesale")])
    writer.write([booked("200-0", change="updated", credit_limit="0")])  # older than the last: changes nothing
    writer.write([booked("300-0", change="updated", status="BLOCKED", plan="wholesale")])  # a re-delivery
    assert settings_of(store) == ("wholesale", "BLOCKED", 5_000_000, CREATED_MS)
    writer.write([booked("300-1", change="updated", credit_limit="7"), booked("300-2", change="updated",
                                                                               credit_limit="8")])  # fmt: skip
    assert settings_of(store)[2] == 8  # two of one account in a batch: the newer one
    with store.connect() as sql:
        assert sql.execute(select(func.count()).select_from(ledger)).scalar() == 0  # no money, no rows
        assert sql.execute(select(func.count()).select_from(xdrs)).scalar() == 0


def test_an_account_first_registered_by_a_money_entry_gets_its_settings_and_keeps_its_first_sight(store):
    """Two workers: one books the account's top-up before the other books its creation."""
    writer = BatchWriter(store)
    topup = Booked("s017:150-0", (), (), ("acme", "EUR", CREATED_MS + 5))
    writer.write([topup])
    assert settings_of(store) == (None, None, None, CREATED_MS + 5)  # known, settings not yet
    writer.write([booked("100-0")])
    assert settings_of(store) == ("retail", "ACTIVE", 5_000_000, CREATED_MS + 5)


async def test_account_entries_are_settled_not_dead_lettered_among_old_money_entries(redis_url, store):
    """Streams written before account entries existed (money only) and new ones mixed on one stream."""
    client = connect(redis_url, decode=True)
    stream = "occ:{s000}:events"
    await client.xadd(stream, {"type": "topup", "id": "t1", "account": "old", "amount": "1000000",
                               "balance": "1000000", "currency": "EUR", "ledger": "400000009",
                               "idempotency_key": "k1", "time_ms": str(CREATED_MS)})  # fmt: skip
    await client.xadd(stream, entry())
    await client.xadd(stream, entry("updated", status="BLOCKED"))
    async with Drain(redis_url, store, shards=1, options=DrainOptions(claim_idle_s=0)) as drain:
        left = await drain.drain_once()
    await client.aclose()
    assert (left.lag, left.pending, drain.booked, drain.dead_letters) == (0, 0, 3, 0)
    assert settings_of(store)[:2] == ("retail", "BLOCKED")
    assert settings_of(store, "old") == (None, None, None, CREATED_MS)


async def test_an_account_is_in_the_books_from_its_creation(redis_url, store, tmp_path):
    async with serving(redis_url, tmp_path) as client:
        await client.admin.CreateAccount(admin.Account(id="fresh1", currency="EUR", tariff_plan="retail",
                                                       credit_limit_micros=2_500_000))  # fmt: skip
        await client.admin.UpdateAccount(admin.UpdateAccountRequest(
            id="fresh1", tariff_plan="wholesale", prepaid_tax=admin.PrepaidTax(rate_ppm=200_000,
            ledger_code=470000001, tax_code="S20")))  # fmt: skip
        await client.admin.UpdateAccount(admin.UpdateAccountRequest(id="fresh1"))  # names nothing: no entry
        created, updated = await client.events("fresh1", settings=True)
        assert (created["type"], created["change"], updated["change"]) == ("account", "created", "updated")
        assert (updated["plan"], updated["credit_limit"], updated["prepaid_tax_ppm"]) == ("wholesale", "2500000",
                                                                                         "200000")  # fmt: skip
        assert await client.events("fresh1") == []  # no money moved
        await settle(client, store)
    with store.connect() as sql:
        row = sql.execute(select(accounts).where(accounts.c.account == "fresh1")).one()
        assert sql.execute(select(func.count()).select_from(ledger)).scalar() == 0
    assert (row.plan, row.status, row.credit_limit, row.currency) == ("wholesale", "ACTIVE", 2_500_000, "EUR")
    assert (row.prepaid_tax_ppm, row.prepaid_tax_ledger, row.prepaid_tax_code) == (200_000, "470000001", "S20")
    assert row.first_seen_ms == row.created_ms == int(created["created_ms"]) == int(created["time_ms"])


def test_migration_0006_follows_0005_parties_and_keeps_accounts_written_before_it(db_url):
    engine = open_store(db_url)
    try:
        upgrade(engine, "0005_parties")
        with engine.begin() as c:
            c.execute(insert(accounts).values(account="old", currency="EUR", opening_balance=0, first_seen_ms=7))
        assert upgrade(engine, "0006_account_events") == ("0005_parties", "0006_account_events")
        with engine.connect() as c:
            row = c.execute(select(accounts).where(accounts.c.account == "old")).one()
        assert (row.currency, row.first_seen_ms, row.plan, row.status, row.settings_ms) == ("EUR", 7, None, None, None)
        command.downgrade(_config(engine), "0005_parties")  # and back
        with engine.connect() as c:
            assert "plan" not in {col["name"] for col in inspect(c).get_columns("accounts")}
            assert c.execute(select(accounts.c.first_seen_ms)).scalar() == 7
    finally:
        engine.dispose()
