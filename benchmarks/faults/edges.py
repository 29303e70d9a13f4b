"""The trials at OCC's edges: the ERP middleware down, failing, stalling and dropping replies under the export (of
invoices and incoming payments alike); and fuzzed gRPC input against a running ``occ serve``."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine, select

from benchmarks.faults.fuzz import Tally, stream_frames, unary_requests
from benchmarks.faults.processes import OccServe, occ
from benchmarks.faults.trials import Row, reconcile
from occ.store.process import free_port
from settlement.export.document import ErpDocument, ErpLine
from settlement.export.erp_sim import ErpSim, Injections
from settlement.export.exporter import Exporter, ExporterOptions
from settlement.export.journal import ErpJournal, JournalLine
from settlement.export.outbox import enqueue
from settlement.store.database import open_store
from settlement.store.schema import outbox
from settlement.vocabulary import OutboxState

# Impatient on purpose: a stalled reply outlasts the 0.5 s timeout, so the exporter must reconcile, not resend.
EXPORT = ExporterOptions(timeout_s=0.5, backoff_s=0.05, backoff_cap_s=0.3, jitter=0.0, poll_s=0.05, concurrency=8)


def invoice(number: int) -> ErpDocument:
    """A small valid invoice: one usage line with tax, in EUR, priced as billing prices it (quantity 1 × the line
    total; the seconds in ``usage_units``), so that it adds up (``document.arithmetic_problems``)."""
    october = {"period_start": date(2026, 10, 1), "period_end": date(2026, 10, 31)}
    net, tax = Decimal(number % 97 + 1), Decimal("2.00")
    line = ErpLine(line_number=1, account_code="400000001", description="Local calls", quantity=Decimal("1"),
                   unit_price=net, line_total=net, vat_group="S20", tax_amount=tax, item_count=1, usage_units=60,
                   **october)  # fmt: skip
    return ErpDocument(
        kind="INVOICE", tenant="chaos", invoice_number=f"{number:08d}", revision=0, customer_code=f"C-{number}",
        document_date=date(2026, 11, 1), due_date=date(2026, 11, 15), currency="EUR", price_mode="NET",
        net_total=net, tax_total=tax, gross_total=net + tax, lines=(line,), **october,
    )  # type: ignore[arg-type]  # fmt: skip


def payment(number: int) -> ErpJournal:
    """A small balanced incoming payment: a top-up into the bank clearing account, credited to the customer."""
    amount = Decimal(number % 89 + 1)
    sides = ((1, "100100", amount, Decimal(0)), (2, "200000", Decimal(0), amount))
    lines = tuple(JournalLine(line_number=n, account_code=code, debit=debit, credit=credit, description="Top-up",
                              movement=f"s000:{number}-0") for n, code, debit, credit in sides)  # fmt: skip
    return ErpJournal(kind="INCOMING_PAYMENT", tenant="chaos", reference=f"s000:{number}-0", sequence=0,
                      customer_code=f"C-{number}", account=f"a{number}", posting_date=date(2026, 11, 1),
                      currency="EUR", total=amount, memo="OCC top-up", lines=lines)  # fmt: skip


def erp_faults(workdir: Path, *, documents: int = 500, max_s: float = 60.0) -> Row:
    """The outbox sent to a middleware that is down, then fails, stalls past the timeout and drops replies: half
    invoices, half incoming payments."""
    row = Row(trial=f"ERP down, failing, stalled, dropping replies ({documents:,} documents)")
    db_url = f"sqlite:///{workdir / 'erp.sqlite3'}"
    occ("db", "upgrade", "--db-url", db_url)
    engine = open_store(db_url)
    try:
        with engine.begin() as connection:
            queued = [invoice(n) if n % 2 else payment(n) for n in range(1, documents + 1)]
            keys = {document.idempotency_key for document in queued}
            for document in queued:
                enqueue(connection, document)
        accepted, sim = asyncio.run(_export(engine, max_s))
        with engine.connect() as connection:
            states = Counter(state for (state,) in connection.execute(select(outbox.c.state)))
        posted = states[OutboxState.ACCEPTED] + states[OutboxState.DUPLICATE]
        row.done = posted
        row.lost = len(keys - set(sim.documents)) + (documents - posted)
        row.duplicated = sum(count - 1 for count in accepted.values() if count > 1)  # accepted twice by the ERP
        row.errored = states[OutboxState.REJECTED]
        row.notes.append(f"ERP saw {sim.submissions():,} submissions, {dict(sim.faults)} faults; outbox {dict(states)}")
    finally:
        engine.dispose()
    return row


async def _export(engine: Engine, max_s: float) -> tuple[Counter[str], ErpSim]:
    port = free_port()
    accepted: Counter[str] = Counter()
    async with Exporter(engine, f"http://127.0.0.1:{port}/soap", options=EXPORT) as exporter:
        down = await exporter.run_once()  # nothing listens: every document waits for a retry
        assert down.accepted == 0
        sim = ErpSim(injections=Injections(fail_next=40, stall_next=8, stall_s=1.0, drop_next=25))
        await sim.start(port)
        try:
            deadline = time.monotonic() + max_s
            while time.monotonic() < deadline:
                summary = await exporter.run_once()
                for outcome in summary.outcomes:
                    if outcome.state == OutboxState.ACCEPTED:
                        accepted[outcome.idempotency_key] += 1
                backlog = await asyncio.to_thread(exporter.backlog)
                if backlog.pending == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            await sim.close()
    return accepted, sim


def fuzz_grpc(workdir: Path, *, unary: int = 1500, streams: int = 150) -> Row:
    """Hypothesis-drawn requests (random bytes, extreme fields) to every method of a running ``occ serve``."""
    row = Row(trial=f"fuzzed gRPC input ({unary:,} requests, {streams:,} streams)")
    serve = OccServe(workdir / "fuzz").start()
    tally = Tally()
    try:
        with serve.admin_sync_channel() as channel:
            quiet = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))

            @settings(quiet, max_examples=unary)
            @given(unary_requests())
            def send(request: tuple[str, bytes]) -> None:
                tally.unary(channel, *request)

            @settings(quiet, max_examples=streams)
            @given(stream_frames())
            def stream(frames: list[bytes]) -> None:
                tally.stream(channel, frames)

            send()
            stream()
        row.done = tally.sent
        row.errored = len(tally.violations)
        row.notes.extend(tally.violations[:3])
        row.notes.append("answers: " + ", ".join(f"{code} {count:,}" for code, count in tally.codes.most_common()))
        if not serve.healthy():
            row.errored += 1
            row.notes.append("the server was not SERVING after the fuzzing")
        reconcile(row, "--data-dir", str(serve.data_dir))
    finally:
        serve.stop()
    return row
