"""The outbox's fault tests, for journal entries and incoming payments: the middleware down, stalled past the
client's timeout, replies dropped after the ERP took the document, two exporters racing. Each time every document is
in the ERP exactly once (one receipt, one ERP number), beside the invoices sharing the outbox."""

from __future__ import annotations

import asyncio

import msgspec
from conftest import FAST, IMPATIENT, document, free_port, queue, rows
from journal_helpers import add_movements, movement
from sqlalchemy import func, select

from settlement.billing.journal import queue_journals
from settlement.export.erp_sim import ErpSim, Injections
from settlement.export.exporter import Exporter
from settlement.store.database import open_store
from settlement.store.schema import accounts, journal_postings

JAN_5 = 1_767_614_400_000
PATIENT = msgspec.structs.replace(FAST, timeout_s=10.0)  # two exporters on a loaded machine: no spurious timeouts


def money(engine, count: int = 3) -> list[str]:  # type: ignore[no-untyped-def]
    """``count`` top-ups with prepaid tax and ``count`` refunds on one account, queued one document each, plus an
    invoice; the idempotency keys of all of them."""
    with engine.begin() as connection:
        connection.execute(accounts.insert(), {"account": "bob", "currency": "EUR", "opening_balance": 0,
                                               "first_seen_ms": JAN_5})  # fmt: skip
    for n in range(count):
        add_movements(engine,
                      movement("bob", "topup", 12_000_000, "100100", JAN_5 + n, key=f"s002:{n}-0"),
                      movement("bob", "topup_tax", -2_000_000, "470000001", JAN_5 + n, key=f"s002:{n}-0:tax"),
                      movement("bob", "refund", -1_250_000, "100100", JAN_5 + n, key=f"s002:{n}-1"))  # fmt: skip
    assert queue_journals(engine, now_ms=JAN_5 + 10_000).documents == 2 * count
    queue(engine, document())
    return sorted(rows(engine))


def exactly_once(store, sim: ErpSim, keys: list[str]) -> None:  # type: ignore[no-untyped-def]
    outbox = rows(store)
    assert sorted(sim.documents) == keys
    assert {r.state for r in outbox.values()} == {"ACCEPTED"}
    assert {k: outbox[k].erp_document_number for k in keys} == {k: sim.documents[k].erp_document_number for k in keys}
    assert len({d.erp_document_number for d in sim.documents.values()}) == len(keys)


async def test_middleware_down_then_started_gets_every_journal_exactly_once(store):
    keys = money(store)
    port = free_port()
    async with Exporter(store, f"http://127.0.0.1:{port}/soap", options=FAST) as exporter:
        down = await exporter.run_once()
        assert down.retrying == len(keys) and all("unreachable" in r.last_error for r in rows(store).values())
        sim = ErpSim()
        await sim.start(port)
        try:
            await asyncio.sleep(0.1)
            up = await exporter.run_once()
        finally:
            await sim.close()
    assert up.accepted == len(keys) and sim.submissions() == len(keys)
    exactly_once(store, sim, keys)


async def test_a_stalled_journal_whose_reply_comes_after_the_client_gave_up_is_reconciled_not_resent(store, sim):
    keys = money(store, count=1)
    sim.injections = Injections(stall_next=1, stall_s=0.8)
    async with Exporter(store, sim.url, options=IMPATIENT) as exporter:
        first = await exporter.run_once()
        assert first.retrying >= 1
        for _ in range(100):  # the ERP takes the stalled one after all
            if len(sim.documents) == len(keys):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        second = await exporter.run_once()
    assert any(o.reconciled for o in second.outcomes)
    assert sim.submissions() == len(keys)  # nothing sent twice
    exactly_once(store, sim, keys)


async def test_journals_whose_replies_were_dropped_are_in_the_erp_once(store, sim):
    keys = money(store)
    sim.injections.drop_next = 3
    async with Exporter(store, sim.url, options=FAST) as exporter:
        dropped = await exporter.run_once()
        assert dropped.retrying == 3 and all("unknown outcome" in o.error for o in dropped.outcomes
                                             if o.state == "RETRYING")  # fmt: skip
        await asyncio.sleep(0.1)
        after = await exporter.run_once()
    assert sum(o.reconciled for o in after.outcomes) == 3 and sim.faults["dropped"] == 3
    assert sim.submissions() == len(keys)
    exactly_once(store, sim, keys)


async def test_two_exporters_racing_send_every_journal_exactly_once(store, sim, db_url):
    keys = money(store, count=8)
    other_engine = open_store(db_url)
    one, other = Exporter(store, sim.url, options=PATIENT), Exporter(other_engine, sim.url, options=PATIENT)
    try:
        async with one as a, other as b:
            first, second = await asyncio.gather(a.run_once(), b.run_once())
    finally:
        other_engine.dispose()
    ids = [o.outbox_id for o in first.outcomes + second.outcomes]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == len(keys)
    assert first.duplicate + second.duplicate == 0 and sim.submissions() == len(keys)
    exactly_once(store, sim, keys)


async def test_two_exporters_queuing_the_same_movements_at_once_post_each_row_once(store, sim, db_url):
    with store.begin() as connection:
        connection.execute(accounts.insert(), {"account": "bob", "currency": "EUR", "opening_balance": 0,
                                               "first_seen_ms": JAN_5})  # fmt: skip
    add_movements(store, *(movement("bob", "payment", 1_000_000 + n, "100100", JAN_5 + n, key=f"s004:{n}-0")
                           for n in range(30)))  # fmt: skip
    other_engine = open_store(db_url)
    first = Exporter(store, sim.url, options=PATIENT, prepare=lambda: queue_journals(store))
    second = Exporter(other_engine, sim.url, options=PATIENT, prepare=lambda: queue_journals(other_engine))
    try:
        async with first as a, second as b:
            await asyncio.gather(a.run_once(), b.run_once())
            await a.run_once()  # whatever the loser of the race left is queued and sent now
    finally:
        other_engine.dispose()
    keys = sorted(rows(store))
    assert len(keys) == 30 and sim.submissions() == 30
    exactly_once(store, sim, keys)
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(journal_postings)).scalar_one() == 30
