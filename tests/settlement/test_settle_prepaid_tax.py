"""Prepaid tax through settlement (issue 5): a top-up the online core credited net books the top-up as paid and the
tax taken from it — two ledger rows that add up to the balance change, a PAYMENT and a TAX xDR — and reconciles.

By hand, 20 %: top-up 10.00 → tax 1.666667, credited 8.333333; top-up 5.00 → tax 0.833333, credited 4.166667;
a payment of 2.00 is not taxed; a call of 30 s at Monday peak costs 0.30 (its close, an xDR, is left out below).
Balance 8.333333 + 4.166667 + 2 − 0.30 = 14.20 = Σ ledger (10 − 1.666667 + 5 − 0.833333 + 2 − 0.30).
"""

from __future__ import annotations

import pytest
from books import check, settle
from online_app import serving, session, voice
from sqlalchemy import select

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb
from settlement.entries import Malformed, book
from settlement.reconcile import Outcome
from settlement.store.database import open_store
from settlement.store.migrate import upgrade
from settlement.store.schema import ledger, xdrs
from settlement.writer import BatchWriter, Booked

VAT20 = admin.PrepaidTax(rate_ppm=200_000, ledger_code=470000001, tax_code="S20")


@pytest.fixture
def store(db_url):
    engine = open_store(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def money(account: str, kind: int, amount: int, key: str, ledger_code: int = 400000009) -> admin.TransactionRequest:
    return admin.TransactionRequest(account_id=account, type=kind, amount_micros=amount, idempotency_key=key,
                                    ledger_code=ledger_code)  # fmt: skip


async def test_a_taxed_top_up_books_two_ledger_rows_and_two_xdrs_and_reconciles(redis_url, store, tmp_path):
    async with serving(redis_url, tmp_path) as client:
        await client.admin.CreateAccount(admin.Account(id="pre", currency="EUR", tariff_plan="retail",
                                                       prepaid_tax=VAT20))  # fmt: skip
        await client.admin.Transact(money("pre", admin.TOP_UP, 10_000_000, "v-1"))
        await client.admin.Transact(money("pre", admin.TOP_UP, 5_000_000, "v-2"))
        await client.admin.Transact(money("pre", admin.PAYMENT, 2_000_000, "p-1", 400000010))
        opened = await client.charging.StartSession(session("call-1", 0, "pre", voice(requested=60)))
        assert opened.result_code == pb.SUCCESS
        await client.charging.EndSession(session("call-1", 1, "pre", voice(used=30)))
        assert (await client.balance("pre")).balance_micros == 14_200_000
        [first, *_] = await client.events("pre")

        await settle(client, store)
        report = await check(client, store)
        assert (report.outcome, report.mismatches) == (Outcome.CLEAN, [])

        with store.connect() as sql:
            rows = sql.execute(
                select(
                    ledger.c.id,
                    ledger.c.kind,
                    ledger.c.amount,
                    ledger.c.balance,
                    ledger.c.ledger_code,
                    ledger.c.reference,
                    ledger.c.xdr_id,
                )
                .where(ledger.c.account == "pre")
                .order_by(ledger.c.time_ms, ledger.c.id)
            ).all()
            items = sql.execute(select(xdrs.c.id, xdrs.c.kind, xdrs.c.record_type, xdrs.c.cost, xdrs.c.ledger_code,
                                       xdrs.c.tax_code, xdrs.c.tax_rate_ppm, xdrs.c.tax_amount, xdrs.c.status)
                                .where(xdrs.c.account == "pre", xdrs.c.kind != "session")
                                .order_by(xdrs.c.start_ms, xdrs.c.id)).all()  # fmt: skip
        v1 = rows[0].id
        assert [tuple(r)[1:] for r in rows] == [
            ("topup", 10_000_000, 10_000_000, "400000009", "v-1", v1),
            ("topup_tax", -1_666_667, 8_333_333, "470000001", "v-1", v1 + ":tax"),
            ("topup", 5_000_000, 13_333_333, "400000009", "v-2", rows[2].id),
            ("topup_tax", -833_333, 12_500_000, "470000001", "v-2", rows[2].id + ":tax"),
            ("payment", 2_000_000, 14_500_000, "400000010", "p-1", rows[4].id),
            ("session_charge", -300_000, 14_200_000, "400000001", "call-1", None),
        ]
        assert rows[1].id == v1 + ":tax" and sum(r.amount for r in rows) == 14_200_000
        assert [tuple(x)[1:] for x in items] == [
            ("topup", "PAYMENT", -10_000_000, "400000009", None, None, None, "BILLABLE"),
            ("topup_tax", "TAX", 1_666_667, "470000001", "S20", 200_000, 1_666_667, "BILLABLE"),
            ("topup", "PAYMENT", -5_000_000, "400000009", None, None, None, "BILLABLE"),
            ("topup_tax", "TAX", 833_333, "470000001", "S20", 200_000, 833_333, "BILLABLE"),
            ("payment", "PAYMENT", -2_000_000, "400000010", None, None, None, "BILLABLE"),
        ]
        assert [x.id for x in items[:2]] == [v1, v1 + ":tax"]

        # Delivered again (a crash between commit and acknowledgement): nothing changes.
        again = book(v1, first, 0)
        BatchWriter(store).write([Booked(v1, *again, ("pre", "EUR", 0))])
        with store.connect() as sql:
            assert len(sql.execute(select(ledger.c.id).where(ledger.c.account == "pre")).all()) == 6
        assert (await check(client, store)).outcome == Outcome.CLEAN


ENTRY = {
    "type": "topup", "id": "t", "account": "a", "amount": "8333333", "balance": "8333333", "currency": "EUR",
    "ledger": "400000009", "idempotency_key": "k", "time_ms": "1767258000000", "gross": "10000000",
    "tax": "1666667", "tax_rate_ppm": "200000", "tax_ledger": "470000001", "tax_code": "S20",
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gross": "10000001"}, "gross"),
        ({"tax": "0"}, "tax"),
        ({"tax": "x"}, "tax"),
        ({"gross": ""}, "gross"),
        ({"tax_rate_ppm": "1000001"}, "tax_rate_ppm"),
        ({"tax_ledger": "1" * 16}, "tax_ledger"),
    ],
)
def test_a_taxed_top_up_that_breaks_the_contract_is_malformed_naming_the_field(change, field):
    with pytest.raises(Malformed, match=field):
        book("s001:1-0", {**ENTRY, **change}, 0)


def test_a_tax_ledger_that_is_not_a_code_leaves_the_tax_xdr_raw_excepted_but_the_ledger_whole():
    (paid, taken), (payment, tax) = book("s001:1-0", {**ENTRY, "tax_ledger": ""}, 0)
    assert (paid.amount + taken.amount, payment.status, tax.status) == (
        8_333_333, "BILLABLE", "RAW_EXCEPTED")  # fmt: skip
