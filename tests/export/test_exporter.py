"""The exporter against a real erp-sim over HTTP, with a real SQL store: outcomes, faults, retries, reconciling."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from conftest import FAST, IMPATIENT, broken, document, free_port, queue, queue_unchecked, rows

from settlement.export.erp_sim import ErpSim, Injections
from settlement.export.exporter import Exporter, ExportOutcome
from settlement.export.outbox import InvalidDocument
from settlement.export.soap_client import ErpClient


async def wait_for(predicate, timeout_s: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_an_invoice_reaches_the_erp_once_and_billing_hears_of_it(store, sim):
    doc = document()
    queue(store, doc, invoice_id=42)
    heard: list[tuple[ExportOutcome, bool]] = []
    async with Exporter(store, sim.url, options=FAST,
                        on_outcome=lambda conn, o: heard.append((o, conn.in_transaction()))) as exporter:  # fmt: skip
        summary = await exporter.run_once()
        again = await exporter.run_once()
    row = rows(store)[doc.idempotency_key]
    stored = sim.documents[doc.idempotency_key]
    assert (row.state, row.attempts, row.last_error) == ("ACCEPTED", 1, "")
    assert row.erp_document_number == stored.erp_document_number == "AR00000001"
    assert stored.document == doc and stored.payload_sha256 == doc.payload_sha256  # the XML carried it all
    assert (summary.sent, summary.accepted, summary.checked) == (1, 1, 0)
    assert [(o.invoice_id, o.state, o.erp_document_number) for o, _ in heard] == [(42, "ACCEPTED", "AR00000001")]
    assert heard[0][1], "the hook runs inside the transaction that records the outcome"
    assert again.outcomes == [] and sim.submissions() == 1


async def test_a_replayed_key_is_a_duplicate_with_the_original_number(store, sim):
    doc = document()
    async with ErpClient(sim.url, timeout_s=2.0) as client:
        first = await client.submit(doc)  # e.g. sent before the store was restored from a backup
        assert (await client.submit(doc)).status == "DUPLICATE"
    queue(store, doc)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        summary = await exporter.run_once()
    row = rows(store)[doc.idempotency_key]
    assert first.status == "ACCEPTED"
    assert (row.state, row.erp_document_number) == ("DUPLICATE", first.erp_document_number)
    assert summary.duplicate == 1 and len(sim.documents) == 1


async def test_another_payload_under_a_taken_key_is_rejected_as_a_conflict_and_not_retried(store, sim):
    async with ErpClient(sim.url, timeout_s=2.0) as client:
        await client.submit(document(net="99.00"))
    doc = document()
    queue(store, doc)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        summary = await exporter.run_once()
        await asyncio.sleep(0.1)
        await exporter.run_once()
    row = rows(store)[doc.idempotency_key]
    assert row.state == "REJECTED" and row.last_error.startswith("idempotency conflict:")
    assert "AR00000001" in row.last_error
    assert summary.rejected == 1 and sim.submissions() == 2  # one by hand, one by the exporter, no retry
    assert sim.documents[doc.idempotency_key].payload_sha256 != doc.payload_sha256


async def test_a_document_the_xsd_refuses_is_rejected_and_never_retried(store, sim):
    bad = broken(document(), account_code="")
    good = document("00000002")
    queue(store, bad, good)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        summary = await exporter.run_once()
        await asyncio.sleep(0.1)
        await exporter.run_once()
    states = rows(store)
    assert states[bad.idempotency_key].state == "REJECTED"
    assert "validation fault" in states[bad.idempotency_key].last_error
    assert "accountCode" in states[bad.idempotency_key].last_error
    assert states[bad.idempotency_key].attempts == 1
    assert states[good.idempotency_key].state == "ACCEPTED"  # other invoices are not held up
    assert (summary.rejected, summary.accepted) == (1, 1) and sim.submissions() == 2
    assert list(sim.documents) == [good.idempotency_key]


async def test_a_document_that_does_not_add_up_is_neither_queued_nor_sent(store, sim):
    doc = broken(document(), line_total=document().lines[0].line_total + 1)  # 1 × 10.00 is not 11.00
    with pytest.raises(InvalidDocument, match=r"line 1: quantity 1 × unitPrice 10.00 is not lineTotal 11.00"):
        queue(store, doc)
    assert rows(store) == {}  # nothing written
    queue_unchecked(store, doc)  # as a row written before the outbox checked, or by hand
    async with Exporter(store, sim.url, options=FAST) as exporter:
        summary = await exporter.run_once()
    row = rows(store)[doc.idempotency_key]
    assert row.state == "REJECTED" and row.last_error.startswith("not sent, the document does not tie out:")
    assert "netTotal 8.50 is not the sum of the line totals" in row.last_error
    assert (summary.rejected, summary.sent, sim.submissions()) == (1, 0, 0) and sim.documents == {}


async def test_a_document_the_billing_check_refuses_is_rejected_before_sending(store, sim):
    doc, good = document(), document("00000002")
    queue(store, doc, invoice_id=7)
    queue(store, good, invoice_id=8)
    asked = []

    def verify(connection, invoice_id, document):  # type: ignore[no-untyped-def]
        asked.append((invoice_id, document.invoice_number, connection.closed))
        return ["lineTotal 10.00 is not the invoice's 9.00"] if invoice_id == 7 else []

    async with Exporter(store, sim.url, options=FAST, verify=verify) as exporter:
        summary = await exporter.run_once()
    states = rows(store)
    assert states[doc.idempotency_key].state == "REJECTED"
    assert states[doc.idempotency_key].last_error == (
        "not sent, the document does not tie out: lineTotal 10.00 is not the invoice's 9.00")
    assert states[good.idempotency_key].state == "ACCEPTED"
    assert sorted(asked) == [(7, "00000001", False), (8, "00000002", False)]  # an open connection
    assert (summary.rejected, summary.accepted, sim.submissions()) == (1, 1, 1)
    assert list(sim.documents) == [good.idempotency_key]


async def test_transient_faults_are_retried_with_backoff_until_accepted(store, sim):
    doc = document()
    queue(store, doc)
    sim.injections.fail_next = 2
    options = msgspec.structs.replace(FAST, backoff_s=0.3, backoff_cap_s=0.5)
    delays = []
    async with Exporter(store, sim.url, options=options) as exporter:
        first = await exporter.run_once()
        assert (await exporter.run_once()).outcomes == []  # not due before the backoff has passed
        row = rows(store)[doc.idempotency_key]
        assert (row.state, row.attempts) == ("PENDING", 1) and row.last_error.startswith("transient fault:")
        assert first.retrying == 1 and first.sent == 1
        for pause in (0.35, 0.55):
            delays.append(row.next_attempt_ms - row.updated_ms)
            await asyncio.sleep(pause)
            last = await exporter.run_once()
            row = rows(store)[doc.idempotency_key]
    assert delays == [300, 500]  # 0.3 s, then 0.6 s capped at 0.5 s (no jitter here)
    assert (row.state, row.attempts) == ("ACCEPTED", 3) and last.accepted == 1
    assert sim.submissions() == 3 and sim.requests["GetSubmissionStatus"] == 2 and len(sim.documents) == 1


async def test_middleware_down_then_started_gets_every_invoice_exactly_once(store):
    port = free_port()
    docs = [document(f"{n:08d}") for n in range(1, 4)]
    queue(store, *docs)
    async with Exporter(store, f"http://127.0.0.1:{port}/soap", options=FAST) as exporter:
        down = await exporter.run_once()
        assert down.retrying == 3
        assert all("unreachable" in row.last_error for row in rows(store).values())
        sim = ErpSim()
        await sim.start(port)
        try:
            await asyncio.sleep(0.1)
            up = await exporter.run_once()
        finally:
            await sim.close()
    assert up.accepted == 3 and {r.state for r in rows(store).values()} == {"ACCEPTED"}
    assert sorted(sim.documents) == sorted(d.idempotency_key for d in docs)
    assert sim.submissions() == 3 and sim.requests["GetSubmissionStatus"] == 3


async def test_a_reply_after_the_client_gave_up_is_reconciled_not_resent(store, sim):
    doc = document()
    queue(store, doc)
    sim.injections = Injections(stall_next=1, stall_s=0.8)
    async with Exporter(store, sim.url, options=IMPATIENT) as exporter:
        timed_out = await exporter.run_once()
        assert timed_out.retrying == 1
        assert rows(store)[doc.idempotency_key].last_error.startswith("unknown outcome: no reply within 0.5 s")
        await wait_for(lambda: doc.idempotency_key in sim.documents)  # the ERP took it after all
        await asyncio.sleep(0.1)
        reconciled = await exporter.run_once()
    row = rows(store)[doc.idempotency_key]
    assert reconciled.outcomes[0].reconciled and reconciled.sent == 0 and reconciled.checked == 1
    assert (row.state, row.erp_document_number) == ("ACCEPTED", sim.documents[doc.idempotency_key].erp_document_number)
    assert sim.submissions() == 1 and len(sim.documents) == 1


async def test_an_accepted_document_whose_reply_was_dropped_is_in_the_erp_once(store, sim):
    doc = document()
    queue(store, doc)
    sim.injections.drop_next = 1
    async with Exporter(store, sim.url, options=FAST) as exporter:
        dropped = await exporter.run_once()
        assert dropped.retrying == 1 and "unknown outcome" in dropped.outcomes[0].error
        await asyncio.sleep(0.1)
        after = await exporter.run_once()
    assert after.accepted == 1 and after.outcomes[0].reconciled
    assert rows(store)[doc.idempotency_key].erp_document_number == "AR00000001"
    assert sim.submissions() == 1 and sim.faults["dropped"] == 1 and len(sim.documents) == 1


async def test_a_failing_billing_hook_leaves_the_row_to_be_reconciled(store, sim):
    doc = document()
    queue(store, doc, invoice_id=7)
    calls: list[ExportOutcome] = []

    def hook(_connection, outcome: ExportOutcome) -> None:
        calls.append(outcome)
        if len(calls) == 1:
            raise RuntimeError("invoices table locked")

    options = msgspec.structs.replace(FAST, lease_s=0.8)
    async with Exporter(store, sim.url, options=options, on_outcome=hook) as exporter:
        failed = await exporter.run_once()
        row = rows(store)[doc.idempotency_key]
        assert (row.state, row.erp_document_number) == ("PENDING", "")  # rolled back with the hook
        assert failed.outcomes == [] and doc.idempotency_key in sim.documents
        assert (await exporter.run_once()).outcomes == []  # still leased to the failed attempt
        await asyncio.sleep(0.85)
        later = await exporter.run_once()
    row = rows(store)[doc.idempotency_key]
    assert (row.state, row.attempts) == ("ACCEPTED", 2) and later.outcomes[0].reconciled
    assert [(o.state, o.invoice_id) for o in calls] == [("ACCEPTED", 7), ("ACCEPTED", 7)]
    assert sim.submissions() == 1


async def test_a_document_xml_cannot_carry_is_rejected_before_anything_is_sent(store, sim):
    doc = broken(document(), description="Calls\x00")
    queue(store, doc)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        summary = await exporter.run_once()
    row = rows(store)[doc.idempotency_key]
    assert row.state == "REJECTED" and "cannot encode SubmitInvoice" in row.last_error
    assert summary.rejected == 1 and sim.submissions() == 0


async def test_the_background_loop_sends_what_arrives_while_it_runs(store, sim):
    runs: list[int] = []
    exporter = Exporter(store, sim.url, options=FAST, on_run=lambda summary: runs.append(len(summary.outcomes)))
    await exporter.start()
    try:
        await wait_for(lambda: len(runs) >= 1)  # it has looked, found nothing…
        queue(store, document(), document("00000002"))  # …and then documents arrive
        await wait_for(lambda: len(sim.documents) == 2)
        await wait_for(lambda: exporter.totals.accepted == 2)
    finally:
        await exporter.close()
    assert {r.state for r in rows(store).values()} == {"ACCEPTED"} and runs[0] == 0 and sum(runs) == 2
