"""Money that is not a charge, to the ERP: journal entries and incoming payments, computed by hand to the cent, queued
from real ledger rows, sent through zeep into a real erp-sim, and the ERP's general ledger against OCC's.

The posting rule (settlement/billing/journal.py): a row of amount r (rounded once, half up) on ledger code c: r > 0
debits c and credits the customer balance account 200000; r < 0 the reverse.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec
import pytest
from conftest import FAST, insert_raw, rows
from journal_helpers import add_movements, movement
from sqlalchemy import select

from settlement.billing.journal import JournalOptions, general_ledger, queue_journals, verify_journal
from settlement.billing.setup import set_account
from settlement.export.exporter import Exporter
from settlement.export.journal import ErpJournal, JournalLine
from settlement.export.outbox import InvalidDocument, enqueue, load
from settlement.export.soap_client import ErpClient, ErpValidationFault
from settlement.store.schema import accounts, journal_postings, outbox

JAN_5 = 1_767_614_400_000  # 2026-01-05T12:00:00Z
DAY_MS = 86_400_000


def add_account(engine, account: str = "alice", **billing) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as connection:
        connection.execute(accounts.insert(), {"account": account, "currency": "EUR", "opening_balance": 0,
                                               "first_seen_ms": JAN_5 - DAY_MS})  # fmt: skip
        if billing:
            set_account(connection, account, **billing)


def E(text: str) -> Decimal:
    return Decimal(text)


def line(n: int, code: str, debit: str, credit: str, text: str, movement_id: str) -> JournalLine:
    return JournalLine(line_number=n, account_code=code, debit=E(debit), credit=E(credit), description=text,
                       movement=movement_id)  # fmt: skip


def queued(engine) -> list[ErpJournal]:  # type: ignore[no-untyped-def]
    return [load(row.payload, row.kind) for row in rows(engine).values()]  # type: ignore[misc]


async def test_a_top_up_with_prepaid_tax_is_one_incoming_payment_by_hand(store, sim):
    # A top-up of 10.00 at 20 % prepaid tax, paid into the bank clearing account 100100: settlement booked +10.00 on
    # 100100 and the tax taken, 10 × 0.2 / 1.2 = 1.666667, as −1.666667 on 470000001 (the balance grew 8.333333).
    # Rounded: 10.00 and 1.67. Lines: Dr 100100 10.00 / Cr 200000 10.00; Dr 200000 1.67 / Cr 470000001 1.67.
    add_account(store, customer_code="C-100", tenant="acme")
    add_movements(store, movement("alice", "topup", 10_000_000, "100100", JAN_5, key="s001:1-0", reference="v-1"),
                  movement("alice", "topup_tax", -1_666_667, "470000001", JAN_5, key="s001:1-0:tax",
                           reference="v-1"))  # fmt: skip
    summary = queue_journals(store, now_ms=JAN_5 + 1000)
    [payment] = queued(store)
    assert (summary.documents, summary.rows, summary.held) == (1, 2, [])
    assert payment == ErpJournal(
        kind="INCOMING_PAYMENT", tenant="acme", reference="s001:1-0", sequence=0, customer_code="C-100",
        account="alice", posting_date=date(2026, 1, 5), currency="EUR", total=E("11.67"),
        memo="OCC top-up s001:1-0",
        lines=(line(1, "100100", "10.00", "0.00", "Top-up v-1", "s001:1-0"),
               line(2, "200000", "0.00", "10.00", "Top-up v-1", "s001:1-0"),
               line(3, "200000", "1.67", "0.00", "Tax taken at top-up v-1", "s001:1-0:tax"),
               line(4, "470000001", "0.00", "1.67", "Tax taken at top-up v-1", "s001:1-0:tax")),
    )  # fmt: skip
    assert payment.idempotency_key == "acme:PY:s001:1-0:0"

    async with Exporter(store, sim.url, options=FAST) as exporter:
        sent = await exporter.run_once()
    stored = sim.documents["acme:PY:s001:1-0:0"]
    assert sent.accepted == 1 and stored.erp_document_number == "PY00000001"
    assert stored.journal == payment and stored.kind == "INCOMING_PAYMENT"  # the XML carried it all
    async with ErpClient(sim.url) as client:
        erp = await client.general_ledger(date(2026, 1, 1), date(2026, 1, 31))
    by_hand = [("100100", "EUR", E("10.00"), E("0.00")), ("200000", "EUR", E("1.67"), E("10.00")),
               ("470000001", "EUR", E("0.00"), E("1.67"))]  # fmt: skip
    assert [(x.account_code, x.currency, x.debit, x.credit) for x in erp] == by_hand
    with store.connect() as connection:
        assert [tuple(x) for x in general_ledger(connection, date(2026, 1, 1), date(2026, 1, 31))] == by_hand


async def test_a_day_of_refunds_and_adjustments_is_one_journal_entry_by_hand(store, sim):
    # Batched per account and day (Europe/Berlin): a goodwill credit of 2.345 on 650000 (rounds half up to 2.35), a
    # debit adjustment of −0.50 on 480000 and a refund of −5.00 paid out of 100100, all on 5 January (Berlin time;
    # the refund at 23:30 UTC on the 4th is 00:30 on the 5th in Berlin). A top-up that day is an incoming payment of
    # its own. Lines: Dr 650000 2.35 / Cr 200000 2.35; Dr 200000 0.50 / Cr 480000 0.50; Dr 200000 5.00 /
    # Cr 100100 5.00. Total 7.85 = 2.35 + 0.50 + 5.00.
    add_account(store, timezone="Europe/Berlin")
    refund_at = JAN_5 - 12 * 3_600_000 - 30 * 60_000  # 2026-01-04T23:30Z
    add_movements(
        store,
        movement("alice", "refund", -5_000_000, "100100", refund_at, key="s001:2-0", reference="r-1"),
        movement("alice", "adjustment", 2_345_000, "650000", JAN_5, key="s001:3-0", reference="a-1",
                 description="goodwill"),
        movement("alice", "adjustment", -500_000, "480000", JAN_5 + 1, key="s001:4-0", reference="a-2"),
        movement("alice", "topup", 20_000_000, "100100", JAN_5 + 2, key="s001:5-0", reference="v-2"),
        movement("alice", "adjustment", -1_000_000, "400000001", JAN_5 + 3, key="s001:6-0",
                 reference="rerate:r1:alice"),
        movement("alice", "session_charge", -300_000, "400000001", JAN_5 + 4, key="s001:7-0"),
    )  # fmt: skip
    options = JournalOptions(batch="account_day")
    assert queue_journals(store, options, now_ms=JAN_5 + 1000).documents == 0  # 5 January is not over in Berlin
    end_of_day = JAN_5 + 11 * 3_600_000  # 2026-01-05T23:00Z = midnight in Berlin
    assert queue_journals(store, options, now_ms=end_of_day).documents == 2
    journal, payment = sorted(queued(store), key=lambda d: d.kind, reverse=True)
    assert journal.idempotency_key == "default:JE:alice@2026-01-05:0" and journal.total == E("7.85")
    assert [(x.account_code, x.debit, x.credit) for x in journal.lines] == [
        ("200000", E("5.00"), E("0.00")), ("100100", E("0.00"), E("5.00")),
        ("650000", E("2.35"), E("0.00")), ("200000", E("0.00"), E("2.35")),
        ("200000", E("0.50"), E("0.00")), ("480000", E("0.00"), E("0.50")),
    ]  # fmt: skip
    assert journal.lines[2].description == "Adjustment a-1 goodwill"
    assert (payment.idempotency_key, payment.total) == ("default:PY:alice@2026-01-05:0", E("20.00"))
    with store.connect() as connection:  # the charge and the rerate's correction are the invoices' business
        posted = set(connection.execute(select(journal_postings.c.ledger_id)).scalars())
    assert posted == {"s001:2-0", "s001:3-0", "s001:4-0", "s001:5-0"}

    # A refund of that day settled late goes in a next document of the same day, never into the one queued.
    add_movements(store, movement("alice", "refund", -1_000_000, "100100", JAN_5 + 5, key="s001:8-0"))
    assert queue_journals(store, options, now_ms=end_of_day + 1).documents == 1
    assert "default:JE:alice@2026-01-05:1" in rows(store)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        sent = await exporter.run_once()
    assert sent.accepted == 3 and {d.erp_document_number[:2] for d in sim.documents.values()} == {"JE", "PY"}
    async with ErpClient(sim.url) as client:
        erp = await client.general_ledger(date(2026, 1, 5), date(2026, 1, 5))
    with store.connect() as connection:
        occ = general_ledger(connection, date(2026, 1, 5), date(2026, 1, 5), options)
    assert [tuple(x) for x in occ] == [(x.account_code, x.currency, x.debit, x.credit) for x in erp]
    assert [tuple(x) for x in occ] == [
        ("100100", "EUR", E("20.00"), E("6.00")), ("200000", "EUR", E("6.50"), E("22.35")),
        ("480000", "EUR", E("0.00"), E("0.50")), ("650000", "EUR", E("2.35"), E("0.00")),
    ]  # fmt: skip


def test_a_movement_without_a_ledger_code_is_held_and_one_that_rounds_to_nothing_is_posted_without_a_document(store):
    add_account(store)
    add_movements(store, movement("alice", "payment", 4_000, "100100", JAN_5, key="s001:1-0"),
                  movement("alice", "payment", 7_000_000, "", JAN_5, key="s001:2-0"))  # fmt: skip
    summary = queue_journals(store, now_ms=JAN_5 + 1)
    assert (summary.documents, summary.rows) == (0, 1)
    assert summary.held == ["s001:2-0: no ledger code (the G/L account to post to)"]
    assert rows(store) == {}
    assert queue_journals(store, now_ms=JAN_5 + 2).rows == 0  # posted once


@pytest.mark.parametrize("change", ["unbalanced", "sub-cent", "both-sides"])
async def test_a_journal_that_does_not_balance_to_the_cent_is_neither_queued_nor_sent(store, sim, change):
    good = ErpJournal(kind="JOURNAL_ENTRY", tenant="acme", reference="s001:1-0", sequence=0, customer_code="C",
                      account="a", posting_date=date(2026, 1, 5), currency="EUR", total=E("1.00"), memo="m",
                      lines=(line(1, "650000", "1.00", "0", "x", "s001:1-0"),
                             line(2, "200000", "0", "1.00", "x", "s001:1-0")))  # fmt: skip
    bad_line = {"unbalanced": {"credit": E("0.99")}, "sub-cent": {"credit": E("1.001")},
                "both-sides": {"debit": E("1.00")}}[change]  # fmt: skip
    bad = msgspec.structs.replace(good, lines=(good.lines[0], msgspec.structs.replace(good.lines[1], **bad_line)))
    with store.begin() as connection, pytest.raises(InvalidDocument, match="acme:JE:s001:1-0:0 not queued"):
        enqueue(connection, bad)
    # Queued anyway, as an older version or a hand edit would have written it:
    insert_raw(store, idempotency_key=bad.idempotency_key, document_ref=bad.document_ref, kind=bad.kind,
               invoice_id=None, payload=msgspec.json.encode(bad).decode(), payload_sha256=bad.payload_sha256,
               state="PENDING", attempts=0, next_attempt_ms=0, last_error="", erp_document_number="", created_ms=0,
               updated_ms=0)  # fmt: skip
    async with Exporter(store, sim.url, options=FAST) as exporter:
        summary = await exporter.run_once()
    row = rows(store)[bad.idempotency_key]
    assert summary.rejected == 1 and sim.submissions() == 0
    assert row.state == "REJECTED" and row.last_error.startswith("not sent, the document does not tie out: ")
    async with ErpClient(sim.url) as client:  # the ERP refuses it too, had it been sent
        with pytest.raises(ErpValidationFault, match=r"does not balance|exactly one"):
            await client.submit(bad)


async def test_a_journal_edited_in_the_outbox_does_not_tie_out_to_its_ledger_rows_and_is_not_sent(store, sim):
    # Balanced still, but the top-up's 10.00 moved from the bank clearing account 100100 to 100200 by hand.
    add_account(store)
    add_movements(store, movement("alice", "topup", 10_000_000, "100100", JAN_5, key="s001:1-0"),
                  movement("alice", "payment", 3_000_000, "100100", JAN_5, key="s001:2-0"))  # fmt: skip
    queue_journals(store, now_ms=JAN_5 + 1)
    [first, second] = queued(store)
    edited = msgspec.structs.replace(first, lines=(msgspec.structs.replace(first.lines[0], account_code="100200"),
                                                   first.lines[1]))  # fmt: skip
    with store.begin() as connection:
        connection.execute(outbox.update().where(outbox.c.idempotency_key == first.idempotency_key).values(
            payload=msgspec.json.encode(edited).decode(), payload_sha256=edited.payload_sha256))  # fmt: skip
    async with Exporter(store, sim.url, options=FAST, verify_journal=verify_journal) as exporter:
        summary = await exporter.run_once()
    row = rows(store)[first.idempotency_key]
    assert (summary.rejected, summary.accepted) == (1, 1) and list(sim.documents) == [second.idempotency_key]
    assert row.state == "REJECTED" and row.last_error == ("not sent, the document does not tie out: the lines of "
                                                          "s001:1-0 are not its top-up of 10.00 on 100100")  # fmt: skip
