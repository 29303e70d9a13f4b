"""Several exporters at once, a worker stalled past its lease, and the order of a credit note and its replacement."""

from __future__ import annotations

import asyncio

import msgspec
from conftest import FAST, broken, document, queue, rows
from prometheus_client import REGISTRY

from settlement.export.erp_sim import Injections
from settlement.export.exporter import Exporter
from settlement.store.database import open_store


async def test_two_exporters_racing_send_every_document_exactly_once(store, sim, db_url):
    docs = [document(f"{n:08d}") for n in range(1, 25)]
    queue(store, *docs)
    other_engine = open_store(db_url)  # a second process would have its own connections
    try:
        async with Exporter(store, sim.url, options=FAST) as a, Exporter(other_engine, sim.url, options=FAST) as b:
            first, second = await asyncio.gather(a.run_once(), b.run_once())
    finally:
        other_engine.dispose()
    ids = [o.outbox_id for o in first.outcomes + second.outcomes]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == len(docs)  # each row worked by exactly one of them
    assert first.sent + second.sent == len(docs) and first.duplicate + second.duplicate == 0
    assert sim.submissions() == len(docs) and sorted(sim.documents) == sorted(d.idempotency_key for d in docs)
    assert {r.state for r in rows(store).values()} == {"ACCEPTED"}


async def test_a_worker_stalled_past_its_lease_cannot_overwrite_the_takeover(store, sim):
    doc = document()
    queue(store, doc)
    sim.injections = Injections(stall_next=1, stall_s=1.0)
    stuck_options = msgspec.structs.replace(FAST, timeout_s=2.0, lease_s=0.2)  # lease shorter than its own call
    async with Exporter(store, sim.url, options=stuck_options) as stuck, Exporter(store, sim.url, options=FAST) as ok:
        stalled = asyncio.create_task(stuck.run_once())
        await asyncio.sleep(0.35)  # the lease has run out; the stalled request is still in the simulator
        takeover = await ok.run_once()
        late = await stalled
    row = rows(store)[doc.idempotency_key]
    assert takeover.accepted == 1 and late.outcomes == []  # the late DUPLICATE answer is dropped, not recorded
    assert (row.state, row.attempts, row.erp_document_number) == ("ACCEPTED", 2, "AR00000001")
    assert len(sim.documents) == 1 and sim.submissions() == 2  # the ERP answered the second one DUPLICATE


async def test_a_credit_note_reaches_the_erp_before_the_replacement_invoice(store, sim):
    original = document("00000007")
    queue(store, original)
    one_at_a_time = msgspec.structs.replace(FAST, concurrency=1)  # so the injected fault hits the credit note
    async with Exporter(store, sim.url, options=one_at_a_time) as exporter:
        await exporter.run_once()
        # a re-issue: billing enqueues the credit note of revision 0, then revision 1 (another invoice in between)
        credit = msgspec.structs.replace(original, kind="CREDIT_NOTE")
        replacement = document("00000007", revision=1, net="12.00")
        queue(store, credit, document("00000008"), replacement)
        sim.injections.fail_next = 1  # the credit note's first try fails…
        first = await exporter.run_once()
        assert [o.idempotency_key for o in first.outcomes if o.state == "RETRYING"] == [credit.idempotency_key]
        assert replacement.idempotency_key not in sim.documents  # …so the replacement waits for it
        assert rows(store)[replacement.idempotency_key].attempts == 0
        assert "acme:00000008:0" in sim.documents  # other invoices do not wait
        await asyncio.sleep(0.1)
        second = await exporter.run_once()
    assert [o.idempotency_key for o in second.outcomes] == [credit.idempotency_key, replacement.idempotency_key]
    keys = list(sim.documents)  # in the order the ERP took them
    assert keys.index(credit.idempotency_key) < keys.index(replacement.idempotency_key)
    assert sim.documents[credit.idempotency_key].erp_document_number.startswith("CM")
    assert sim.requests["SubmitCreditNote"] == 2 and sim.documents[credit.idempotency_key].kind == "CREDIT_NOTE"


async def test_a_rejected_credit_note_holds_back_its_replacement(store, sim):
    credit = broken(document("00000009", kind="CREDIT_NOTE"), vat_group="")
    replacement = document("00000009", revision=1)
    queue(store, credit, replacement)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        summary = await exporter.run_once()
    states = rows(store)
    assert states[credit.idempotency_key].state == "REJECTED" and summary.rejected == 1
    assert (states[replacement.idempotency_key].state, states[replacement.idempotency_key].attempts) == ("PENDING", 0)
    assert sim.documents == {} and sim.requests["SubmitInvoice"] == 0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_outcomes_and_age_the_backlog(store, sim):
    accepted = sample("occ_export_outcomes_total", outcome="accepted")
    queue(store, document(), document("00000002"))
    sim.injections.fail_next = 1
    async with Exporter(store, sim.url, options=msgspec.structs.replace(FAST, concurrency=1)) as exporter:
        await exporter.run_once()
        assert sample("occ_export_outcomes_total", outcome="retrying") >= 1
        assert sample("occ_export_pending_documents") == 1 and sample("occ_export_retrying_documents") == 1
        assert sample("occ_export_oldest_pending_age_seconds") > 0
        await asyncio.sleep(0.1)
        await exporter.run_once()
    assert sample("occ_export_outcomes_total", outcome="accepted") - accepted == 2
    assert sample("occ_export_pending_documents") == 0 and sample("occ_export_oldest_pending_age_seconds") == 0
    assert sample("occ_export_requests_total", operation="status", result="ok") >= 1


async def test_the_credit_note_of_a_rejected_invoice_is_void_and_its_replacement_goes_out(store, sim):
    rejected = broken(document("00000011"), account_code="")
    queue(store, rejected)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        await exporter.run_once()
        fixed = document("00000011", revision=1)  # a re-issue with the account code put right
        queue(store, msgspec.structs.replace(rejected, kind="CREDIT_NOTE"), fixed)
        summary = await exporter.run_once()
    states = rows(store)
    assert states[rejected.idempotency_key].state == "REJECTED"
    credit = states[rejected.idempotency_key + ":credit"]
    assert credit.state == "VOID"
    assert credit.last_error == f"nothing to credit: the ERP rejected {rejected.idempotency_key}"
    assert states[fixed.idempotency_key].state == "ACCEPTED" and (summary.void, summary.accepted) == (1, 1)
    assert sim.requests["SubmitCreditNote"] == 0 and list(sim.documents) == [fixed.idempotency_key]
