"""Operator actions on the outbox (retry, release; list, show) against a real erp-sim, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import msgspec
import pytest
from click.testing import CliRunner
from conftest import FAST, broken, document, queue, rows
from sqlalchemy import select, update

from occ.cli import main
from settlement.export.exporter import Exporter
from settlement.export.outbox_admin import (
    OutboxActionError,
    _change,
    _find,
    count_by_state,
    list_documents,
    release,
    retry,
    show_document,
)
from settlement.store.schema import outbox, outbox_actions
from settlement.vocabulary import OutboxAction


def actions(engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(
            select(outbox_actions.c.outbox_id, outbox_actions.c.actor, outbox_actions.c.action,
                   outbox_actions.c.state_before, outbox_actions.c.state_after, outbox_actions.c.reason)
            .order_by(outbox_actions.c.id))]  # fmt: skip


async def test_a_conflict_cleared_in_the_erp_is_retried_and_accepted(store, sim):
    """The ERP held another payload under the key (REJECTED, never retried by itself); once finance removes it
    there, the operator's retry sends the same queued document and the ERP takes it."""
    other, queued = document("00000021", net="9.00"), document("00000021")
    async with Exporter(store, sim.url, options=FAST) as exporter:
        queue(store, other)
        await exporter.run_once()
        with store.begin() as connection:  # the same key, another payload: as a restored old database would queue
            connection.execute(update(outbox).values(payload=msgspec.json.encode(queued).decode(),
                                                     payload_sha256=queued.payload_sha256, state="PENDING",
                                                     next_attempt_ms=0))  # fmt: skip
        await exporter.run_once()
        row = rows(store)[queued.idempotency_key]
        assert row.state == "REJECTED" and "idempotency conflict" in row.last_error
        del sim.documents[queued.idempotency_key]  # finance deletes the stray document in the ERP

        record = retry(store, row.id, actor="local:alice", reason="stray document removed in the ERP")
        assert (record.state_before, record.state_after, record.action) == ("REJECTED", "PENDING", "RETRY")
        again = rows(store)[queued.idempotency_key]
        assert again.state == "PENDING" and again.attempts == row.attempts  # the claim token keeps counting
        summary = await exporter.run_once()
    done = rows(store)[queued.idempotency_key]
    assert done.state == "ACCEPTED" and summary.accepted == 1 and done.attempts == row.attempts + 1
    assert sim.documents[queued.idempotency_key].payload_sha256 == queued.payload_sha256
    assert actions(store) == [(row.id, "local:alice", "RETRY", "REJECTED", "PENDING",
                               "stray document removed in the ERP")]  # fmt: skip


async def test_releasing_a_rejected_credit_note_lets_its_replacement_go(store, sim):
    credit = broken(document("00000009", kind="CREDIT_NOTE"), vat_group="")
    replacement = document("00000009", revision=1)
    queue(store, credit, replacement)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        await exporter.run_once()
        held = rows(store)
        assert held[credit.idempotency_key].state == "REJECTED" and held[replacement.idempotency_key].attempts == 0
        record = release(store, held[credit.idempotency_key].id, actor="token:finance",
                         reason="credit note booked by hand in the ERP")  # fmt: skip
        assert (record.state_before, record.state_after) == ("REJECTED", "RELEASED")
        summary = await exporter.run_once()
    after = rows(store)
    assert after[credit.idempotency_key].state == "RELEASED" and after[replacement.idempotency_key].state == "ACCEPTED"
    assert summary.accepted == 1 and list(sim.documents) == [replacement.idempotency_key]
    assert sim.requests["SubmitCreditNote"] == 1  # the one rejected attempt; releasing never sends


async def test_a_released_invoice_is_never_sent_and_its_credit_note_is_void(store, sim):
    rejected = broken(document("00000011"), account_code="")
    queue(store, rejected)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        await exporter.run_once()
        row = rows(store)[rejected.idempotency_key]
        release(store, row.id, actor="local:bob", reason="re-issued with the G/L code put right")
        with pytest.raises(OutboxActionError, match="it was released and is never sent") as refused:
            retry(store, row.id, actor="local:bob")
        assert refused.value.field == "id"
        queue(store, msgspec.structs.replace(rejected, kind="CREDIT_NOTE"), document("00000011", revision=1))
        summary = await exporter.run_once()
    credit = rows(store)[rejected.idempotency_key + ":credit"]
    assert credit.state == "VOID" and "released by an operator" in credit.last_error
    assert (summary.void, summary.accepted) == (1, 1) and sim.requests["SubmitCreditNote"] == 0


async def test_a_rejected_invoice_whose_credit_note_was_voided_cannot_be_retried(store, sim):
    rejected = broken(document("00000012"), account_code="")
    queue(store, rejected)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        await exporter.run_once()
        queue(store, msgspec.structs.replace(rejected, kind="CREDIT_NOTE"), document("00000012", revision=1))
        await exporter.run_once()
    states = rows(store)
    void_id = states[rejected.idempotency_key + ":credit"].id
    with pytest.raises(OutboxActionError, match=f"credit note \\(outbox id {void_id}\\) was voided.*release it"):
        retry(store, states[rejected.idempotency_key].id, actor="local:carol")
    assert rows(store)[rejected.idempotency_key].state == "REJECTED" and actions(store) == []


def test_retry_cuts_a_pending_documents_wait_short(store):
    (row_id,) = queue(store, document("00000031"))
    later_ms = int(time.time() * 1000) + 3_600_000
    with store.begin() as connection:
        connection.execute(update(outbox).values(attempts=2, next_attempt_ms=later_ms, last_error="transient fault"))
    record = retry(store, row_id, actor="local:alice")
    row = rows(store)["acme:00000031:0"]
    assert (record.state_before, record.state_after, record.reason) == ("PENDING", "PENDING", "")
    assert row.state == "PENDING" and row.attempts == 2 and row.next_attempt_ms <= int(time.time() * 1000)


def test_bad_requests_name_the_field_and_write_nothing(store):
    (row_id,) = queue(store, document("00000041"))
    with store.begin() as connection:
        connection.execute(update(outbox).values(state="ACCEPTED", erp_document_number="INV-1"))
    cases = [
        (lambda: release(store, row_id, actor="local:a", reason="  "), "reason", "reason is required"),
        (lambda: release(store, row_id, actor="", reason="why"), "actor", "actor is required"),
        (lambda: release(store, row_id, actor="local:a", reason="x" * 501), "reason", "longer than 500"),
        (lambda: release(store, row_id, actor="local:a", reason="why"), "id", "only a REJECTED document"),
        (lambda: retry(store, row_id, actor="local:a"), "id", "ACCEPTED: the ERP has it"),
        (lambda: retry(store, 999_999, actor="local:a"), "id", "no outbox document with id 999999"),
        (lambda: retry(store, 0, actor="local:a"), "id", "positive outbox row id"),
        (lambda: list_documents(store, state="LOST"), "state", "state must be one of PENDING"),
        (lambda: list_documents(store, kind="RECEIPT"), "kind", "INVOICE or CREDIT_NOTE"),
        (lambda: list_documents(store, limit=0), "limit", "limit must be 1 to 500"),
    ]
    for call, field, message in cases:
        with pytest.raises(OutboxActionError, match=message) as refused:
            call()
        assert refused.value.field == field
    assert rows(store)["acme:00000041:0"].state == "ACCEPTED" and actions(store) == []


def test_a_row_changed_meanwhile_is_not_overwritten(store):
    (row_id,) = queue(store, document("00000051"))
    with store.begin() as connection:
        connection.execute(update(outbox).values(state="REJECTED", attempts=1))
        stale = _find(connection, row_id)
        connection.execute(update(outbox).values(attempts=2))  # an exporter claimed it in between
    with pytest.raises(OutboxActionError, match=r"changed meanwhile .*attempt 2.*nothing was written"), \
            store.begin() as connection:  # fmt: skip
        _change(connection, stale, OutboxAction.RELEASE, "RELEASED", "local:a", "why")
    assert rows(store)["acme:00000051:0"].state == "REJECTED" and actions(store) == []


def test_list_pages_newest_first_and_show_tells_the_story(store):
    ids = queue(store, *(document(f"{n:08d}") for n in range(1, 8)))
    with store.begin() as connection:
        connection.execute(
            update(outbox).where(outbox.c.id.in_(ids[:3])).values(state="REJECTED", last_error="validation fault")
        )
    first = list_documents(store, limit=3)
    assert [r.id for r in first.rows] == ids[:3:-1] and first.next_before == ids[4]
    second = list_documents(store, limit=3, before=first.next_before)
    assert [r.id for r in second.rows] == ids[3::-1][:3] and second.next_before == ids[1]
    last = list_documents(store, limit=3, before=second.next_before)
    assert [r.id for r in last.rows] == [ids[0]] and last.next_before is None
    rejected = list_documents(store, state="REJECTED")
    assert [r.id for r in rejected.rows] == ids[2::-1] and rejected.next_before is None
    assert list_documents(store, kind="CREDIT_NOTE").rows == ()
    assert count_by_state(store) == {"PENDING": 4, "ACCEPTED": 0, "DUPLICATE": 0, "REJECTED": 3, "VOID": 0,
                                     "RELEASED": 0}  # fmt: skip

    release(store, ids[0], actor="console:finance", reason="booked by hand")
    detail = show_document(store, ids[0])
    assert detail.row.state == "RELEASED" and detail.row.idempotency_key == "acme:00000001:0"
    assert (detail.document.customer_code, detail.document.currency, detail.document.lines) == ("C-1001", "EUR", 2)
    assert str(detail.document.gross_total) == "10.50"
    assert [(a.actor, a.action, a.reason) for a in detail.actions] == [("console:finance", "RELEASE",
                                                                        "booked by hand")]  # fmt: skip


def occ(db_url: str, tmp_path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, [*args, "--db-url", db_url, "--data-dir", str(tmp_path)], env=env)


async def test_occ_outbox_list_show_retry_release(store, db_url, tmp_path, sim):
    bad_credit = broken(document("00000061", kind="CREDIT_NOTE"), vat_group="")
    replacement, stray = document("00000061", revision=1), broken(document("00000062"), account_code="")
    credit_id, replacement_id, stray_id = queue(store, bad_credit, replacement, stray)
    async with Exporter(store, sim.url, options=FAST) as exporter:
        await exporter.run_once()

        listed = occ(db_url, tmp_path, "outbox", "list", "--state", "REJECTED")
        assert listed.exit_code == 0, listed.output
        lines = listed.output.splitlines()
        assert [int(line.split()[0]) for line in lines[:2]] == [stray_id, credit_id]
        assert "REJECTED" in lines[0] and "validation fault" in lines[0]
        assert lines[-1] == "1 PENDING, 0 ACCEPTED, 0 DUPLICATE, 2 REJECTED, 0 VOID, 0 RELEASED"
        paged = occ(db_url, tmp_path, "outbox", "list", "--limit", "1")
        assert paged.output.splitlines()[1] == f"more: --before {stray_id}"

        refused = occ(db_url, tmp_path, "outbox", "release", str(credit_id), "--reason", " ")
        assert refused.exit_code == 1 and "reason is required" in refused.output
        released = occ(db_url, tmp_path, "outbox", "release", str(credit_id), "--reason", "booked by hand",
                       env={"OCC_ACTOR": "local:finance-desk"})  # fmt: skip
        assert released.exit_code == 0 and "REJECTED → RELEASED (booked by hand)" in released.output
        retried = occ(db_url, tmp_path, "outbox", "retry", str(stray_id), "--actor", "local:ops")
        assert retried.exit_code == 0 and f"outbox id {stray_id}: REJECTED → PENDING, due now" in retried.output
        twice = occ(db_url, tmp_path, "outbox", "release", str(credit_id), "--reason", "again")
        assert twice.exit_code == 1 and "is RELEASED: only a REJECTED document can be released" in twice.output
        missing = occ(db_url, tmp_path, "outbox", "show", "424242")
        assert missing.exit_code == 1 and "no outbox document with id 424242" in missing.output

        await exporter.run_once()  # the replacement goes now; the stray is rejected again (still broken)
    shown = occ(db_url, tmp_path, "outbox", "show", str(credit_id))
    assert shown.exit_code == 0, shown.output
    assert "state:            RELEASED" in shown.output and "kind:             CREDIT_NOTE" in shown.output
    assert "customer:         C-1001" in shown.output and "gross total:      10.50 EUR (2 lines)" in shown.output
    assert "local:finance-desk RELEASE REJECTED → RELEASED: booked by hand" in shown.output
    assert rows(store)[replacement.idempotency_key].state == "ACCEPTED"
    assert replacement_id and list(sim.documents) == [replacement.idempotency_key]
    stray_shown = occ(db_url, tmp_path, "outbox", "show", str(stray_id))
    assert "state:            REJECTED" in stray_shown.output and "attempts:         2" in stray_shown.output
    assert "local:ops RETRY REJECTED → PENDING" in stray_shown.output
