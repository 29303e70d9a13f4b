"""The outbox: documents for the ERP, written in the transaction that creates them, sent later by the exporter.

A document is an :class:`~settlement.export.document.ErpDocument` (INVOICE, CREDIT_NOTE) or an
:class:`~settlement.export.journal.ErpJournal` (JOURNAL_ENTRY, INCOMING_PAYMENT); the row's ``kind`` says which.

``enqueue`` is idempotent on the document's idempotency key: the same document twice is one row; another document
under the same key (a changed invoice that kept its revision) is refused with :class:`OutboxConflict`, so nothing is
ever sent as two different documents under one key. A document whose lines do not multiply out or whose totals do
not add up (:func:`~settlement.export.document.arithmetic_problems`), or a journal that does not balance to the cent
(:func:`~settlement.export.journal.balance_problems`), is refused with :class:`InvalidDocument` before anything is
written.
"""

from __future__ import annotations

import time

import msgspec
from babel.numbers import get_currency_precision
from sqlalchemy import Connection, insert, select

from settlement.export.document import ErpDocument, arithmetic_problems
from settlement.export.journal import JOURNAL_KINDS, ErpJournal, balance_problems
from settlement.store.schema import outbox
from settlement.vocabulary import OutboxState


class OutboxConflict(ValueError):
    """A different document is already queued under this idempotency key."""


class InvalidDocument(ValueError):
    """The document does not add up; the message says where."""


AnyDocument = ErpDocument | ErpJournal


def problems_of(document: AnyDocument) -> list[str]:
    """What does not add up in ``document`` (an invoice or credit note), or does not balance (a journal)."""
    if isinstance(document, ErpJournal):
        return balance_problems(document, get_currency_precision(document.currency))  # ISO 4217 decimals
    return arithmetic_problems(document)


def enqueue(connection: Connection, document: AnyDocument, *, invoice_id: int | None = None) -> int:
    """Queue ``document`` in the caller's transaction; returns the outbox row id (the existing one for a repeat)."""
    key, digest = document.idempotency_key, document.payload_sha256
    problems = problems_of(document)
    if problems:
        raise InvalidDocument(f"{key} not queued: " + "; ".join(problems))
    existing = connection.execute(
        select(outbox.c.id, outbox.c.payload_sha256).where(outbox.c.idempotency_key == key)
    ).first()
    if existing is not None:
        if existing.payload_sha256 != digest:
            raise OutboxConflict(f"{key} is already queued with another payload ({existing.payload_sha256[:12]}…)")
        return existing.id
    now_ms = int(time.time() * 1000)
    row = {
        "idempotency_key": key,
        "document_ref": document.document_ref,
        "kind": document.kind,
        "invoice_id": invoice_id,
        "payload": msgspec.json.encode(document).decode(),
        "payload_sha256": digest,
        "state": OutboxState.PENDING,
        "attempts": 0,
        "next_attempt_ms": now_ms,
        "last_error": "",
        "erp_document_number": "",
        "created_ms": now_ms,
        "updated_ms": now_ms,
    }
    return connection.execute(insert(outbox).returning(outbox.c.id), row).scalar_one()


def load(payload: str, kind: str = "INVOICE") -> AnyDocument:
    """The document stored in an outbox row's ``payload`` (``kind``: the row's)."""
    return msgspec.json.decode(payload, type=ErpJournal if kind in JOURNAL_KINDS else ErpDocument)
