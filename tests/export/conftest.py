"""Fixtures of the ERP export tests: a real SQL store (SQLite and PostgreSQL), a real erp-sim on 127.0.0.1.

No mocks: documents go through zeep over HTTP into the simulator, which validates them against the XSD.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from sqlalchemy import Engine, insert, select

from settlement.export.document import ErpDocument, ErpLine
from settlement.export.erp_sim import ErpSim
from settlement.export.exporter import ExporterOptions
from settlement.export.outbox import enqueue
from settlement.store.schema import outbox

# Short everything: a retry comes 50 ms later; calls give up after 2 s (a loaded CI machine is slow, and a spurious
# timeout would add an attempt), or after 0.5 s with IMPATIENT, for the tests that stall the middleware.
FAST = ExporterOptions(timeout_s=2.0, backoff_s=0.05, backoff_cap_s=0.2, jitter=0.0, poll_s=0.05)
IMPATIENT = msgspec.structs.replace(FAST, timeout_s=0.5)


def document(number: str = "00000001", *, revision: int = 0, kind: str = "INVOICE", net: str = "10.00",
             account_code: str = "400000001", tenant: str = "acme") -> ErpDocument:  # fmt: skip
    """A small invoice (or credit note): one taxed usage line and one untaxed adjustment line, in EUR."""
    october = {"period_start": date(2026, 10, 1), "period_end": date(2026, 10, 31)}
    lines = (
        ErpLine(line_number=1, account_code=account_code, description="Local calls", quantity=Decimal("1"),
                unit_price=Decimal(net), line_total=Decimal(net), vat_group="S20", tax_amount=Decimal("2.00"),
                item_count=40, usage_units=3600, **october),
        ErpLine(line_number=2, account_code="400000003", description="Goodwill credit", quantity=Decimal("1"),
                unit_price=Decimal("-1.50"), line_total=Decimal("-1.50"), vat_group="EXEMPT",
                tax_amount=Decimal("0.00"), **october),
    )  # fmt: skip
    net_total = Decimal(net) - Decimal("1.50")
    return ErpDocument(
        kind=kind, tenant=tenant, invoice_number=number, revision=revision, customer_code="C-1001",
        document_date=date(2026, 11, 1), due_date=date(2026, 11, 15), currency="EUR", price_mode="NET",
        net_total=net_total, tax_total=Decimal("2.00"), gross_total=net_total + Decimal("2.00"), lines=lines,
        **october,
    )  # type: ignore[arg-type]  # fmt: skip


def broken(doc: ErpDocument, **line_changes: Any) -> ErpDocument:
    """``doc`` with its first line changed."""
    return msgspec.structs.replace(doc, lines=(msgspec.structs.replace(doc.lines[0], **line_changes), *doc.lines[1:]))


def queue(engine: Engine, *documents: ErpDocument, invoice_id: int | None = None) -> list[int]:
    with engine.begin() as connection:
        return [enqueue(connection, doc, invoice_id=invoice_id) for doc in documents]


def rows(engine: Engine) -> dict[str, Any]:
    """Outbox rows by idempotency key."""
    with engine.connect() as connection:
        return {row.idempotency_key: row for row in connection.execute(select(outbox).order_by(outbox.c.id))}


def insert_raw(engine: Engine, **row: Any) -> None:
    with engine.begin() as connection:
        connection.execute(insert(outbox), row)


def queue_unchecked(engine: Engine, doc: ErpDocument, *, invoice_id: int | None = None) -> None:
    """Write ``doc`` into the outbox as a PENDING row without ``enqueue``'s checks (as an older version, a bug or a
    hand-edited row would), to see what the exporter does with it."""
    now_ms = int(time.time() * 1000)
    insert_raw(engine, idempotency_key=doc.idempotency_key, document_ref=doc.document_ref, kind=doc.kind,
               invoice_id=invoice_id, payload=msgspec.json.encode(doc).decode(), payload_sha256=doc.payload_sha256,
               state="PENDING", attempts=0, next_attempt_ms=now_ms, last_error="", erp_document_number="",
               created_ms=now_ms, updated_ms=now_ms)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def sim() -> AsyncIterator[ErpSim]:
    """A running erp-sim on a free loopback port."""
    server = ErpSim()
    await server.start()
    yield server
    await server.close()
