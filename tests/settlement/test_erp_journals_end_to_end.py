"""Money that is not a charge, end to end: the online core takes top-ups (with prepaid tax), a payment, an adjustment
and a refund; settlement books them; the exporter queues their journals and sends them through zeep into a real
erp-sim; the ERP's general ledger is OCC's, and its customer balance account moved exactly as the balance did less
the call.

By hand (20 % prepaid tax, rounded per ledger row): top-up 10.00 → tax 1.67; top-up 5.00 → tax 0.83; payment 2.00;
adjustment −0.50 on 650000; refund 1.00 out of 400000009. A 30 s call of 0.30 is a charge: not a journal.
Customer balance account 200000: credits 10.00 + 5.00 + 2.00 = 17.00, debits 1.67 + 0.83 + 0.50 + 1.00 = 4.00;
net 13.00 = the balance 12.70 + the call 0.30. Documents: 3 incoming payments (two with their tax), 2 journal entries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from books import settle
from online_app import serving, session, voice
from sqlalchemy import select

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb
from settlement.billing.journal import general_ledger, queue_journals, verify_journal
from settlement.export.erp_sim import ErpSim
from settlement.export.exporter import Exporter, ExporterOptions
from settlement.export.soap_client import ErpClient
from settlement.store.schema import outbox

VAT20 = admin.PrepaidTax(rate_ppm=200_000, ledger_code=470000001, tax_code="S20")
FAST = ExporterOptions(timeout_s=5.0, backoff_s=0.05, backoff_cap_s=0.2, jitter=0.0)


def money(kind: int, amount: int, key: str, ledger_code: int) -> admin.TransactionRequest:
    return admin.TransactionRequest(account_id="pre", type=kind, amount_micros=amount, idempotency_key=key,
                                    ledger_code=ledger_code)  # fmt: skip


async def test_money_movements_reach_the_erp_as_balanced_journals_whose_ledger_is_occ_s(redis_url, store, tmp_path):
    async with serving(redis_url, tmp_path) as client:
        await client.admin.CreateAccount(admin.Account(id="pre", currency="EUR", tariff_plan="retail",
                                                       prepaid_tax=VAT20))  # fmt: skip
        await client.admin.Transact(money(admin.TOP_UP, 10_000_000, "v-1", 400000009))
        await client.admin.Transact(money(admin.TOP_UP, 5_000_000, "v-2", 400000009))
        await client.admin.Transact(money(admin.PAYMENT, 2_000_000, "p-1", 400000010))
        await client.admin.Transact(money(admin.ADJUSTMENT, -500_000, "a-1", 650000))
        await client.admin.Transact(money(admin.REFUND, 1_000_000, "r-1", 400000009))
        opened = await client.charging.StartSession(session("call-1", 0, "pre", voice(requested=60)))
        assert opened.result_code == pb.SUCCESS
        await client.charging.EndSession(session("call-1", 1, "pre", voice(used=30)))
        assert (await client.balance("pre")).balance_micros == 12_700_000
        await settle(client, store)

    sim = ErpSim()
    await sim.start()
    try:
        exporter = Exporter(store, sim.url, options=FAST, prepare=lambda: queue_journals(store),
                            verify_journal=verify_journal)  # fmt: skip
        async with exporter:
            sent = await exporter.run_once()
            again = await exporter.run_once()
        today = datetime.now(UTC).date()
        async with ErpClient(sim.url) as erp_client:
            erp = await erp_client.general_ledger(today.replace(day=1), today)
    finally:
        await sim.close()
    assert (sent.accepted, again.outcomes) == (5, [])
    assert sorted(d.erp_document_number[:2] for d in sim.documents.values()) == ["JE", "JE", "PY", "PY", "PY"]
    with store.connect() as connection:
        occ = general_ledger(connection, today.replace(day=1), today)
        states = set(connection.execute(select(outbox.c.state)).scalars())
    assert states == {"ACCEPTED"}
    assert [tuple(x) for x in occ] == [(x.account_code, x.currency, x.debit, x.credit) for x in erp]
    assert [tuple(x) for x in occ] == [
        ("200000", "EUR", Decimal("4.00"), Decimal("17.00")),
        ("400000009", "EUR", Decimal("15.00"), Decimal("1.00")),
        ("400000010", "EUR", Decimal("2.00"), Decimal("0.00")),
        ("470000001", "EUR", Decimal("0.00"), Decimal("2.50")),
        ("650000", "EUR", Decimal("0.00"), Decimal("0.50")),
    ]  # fmt: skip
