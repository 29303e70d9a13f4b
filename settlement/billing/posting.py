"""Invoice states after issue: what the ERP export reports back (``record_posting``) and the allowed transitions.

DRAFT → COMPLETE (validated, numbered: billing does this when it issues) → POSTED | POSTING_ERROR; a POSTING_ERROR
may become POSTED when a retry gets through. A POSTED invoice stays POSTED (a late error does not undo a posting).
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, select, update

from settlement.billing import tieout
from settlement.export.document import ErpDocument
from settlement.export.outcomes import ExportOutcome
from settlement.store.schema import invoice_lines, invoices
from settlement.vocabulary import InvoiceState, OutboxState

DRAFT, COMPLETE = InvoiceState.DRAFT, InvoiceState.COMPLETE
POSTED, POSTING_ERROR = InvoiceState.POSTED, InvoiceState.POSTING_ERROR
TRANSITIONS = {
    DRAFT: frozenset({COMPLETE}),
    COMPLETE: frozenset({POSTED, POSTING_ERROR}),
    POSTING_ERROR: frozenset({POSTED, POSTING_ERROR}),
    POSTED: frozenset({POSTED}),
}
# The export's outcomes (outbox states, or the invoice states themselves) and the invoice state each means.
OUTCOMES = {OutboxState.ACCEPTED: POSTED, OutboxState.DUPLICATE: POSTED, POSTED: POSTED,
            OutboxState.REJECTED: POSTING_ERROR, POSTING_ERROR: POSTING_ERROR}  # fmt: skip


class StateError(ValueError):
    """A transition the state machine does not allow, or an unknown invoice/outcome."""


def record_posting(connection: Connection, invoice_id: int, outcome: str, message: str = "", *,
                   document_kind: str = "INVOICE") -> str:  # fmt: skip
    """Record the ERP's answer for a document of ``invoice_id`` (an outbox row's ``invoice_id`` and ``kind``) in the
    caller's transaction; returns the state of the invoice it was recorded on.

    ``outcome``: ACCEPTED / DUPLICATE / POSTED → POSTED; REJECTED / POSTING_ERROR → POSTING_ERROR (``message``, the
    middleware's text, is kept as ``state_reason``). A repeat of the same answer is a no-op; POSTED is final.

    A CREDIT_NOTE document belongs to the revision it cancels, which stays as it was; its acceptance changes nothing
    (the new revision's own INVOICE posts it), its rejection puts the new revision in POSTING_ERROR, since the ERP
    now holds both revisions.
    """
    if outcome not in OUTCOMES:
        raise StateError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if document_kind == "CREDIT_NOTE":
        successor = connection.execute(
            select(invoices.c.id).where(invoices.c.replaces == invoice_id, invoices.c.state != DRAFT)
        ).scalar()
        if successor is None:
            raise StateError(f"invoice {invoice_id} has no issued revision replacing it")
        if OUTCOMES[outcome] == POSTED:
            return str(connection.execute(select(invoices.c.state).where(invoices.c.id == successor)).scalar())
        return record_posting(connection, successor, outcome, f"credit note for invoice id {invoice_id}: {message}")
    if document_kind != "INVOICE":
        raise StateError(f"document kind must be INVOICE or CREDIT_NOTE, got {document_kind!r}")
    state = connection.execute(select(invoices.c.state).where(invoices.c.id == invoice_id)).scalar()
    if state is None:
        raise StateError(f"no invoice with id {invoice_id}")
    target = OUTCOMES[outcome]
    if state == POSTED:
        return state
    if target not in TRANSITIONS[state]:
        raise StateError(f"invoice {invoice_id} is {state}; it cannot become {target}")
    connection.execute(
        update(invoices).where(invoices.c.id == invoice_id)
        .values(state=target, state_reason=message[:2000] if target == POSTING_ERROR else "",
                updated_ms=int(time.time() * 1000))
    )  # fmt: skip
    return target


def on_export_outcome(connection: Connection, outcome: ExportOutcome) -> None:
    """The exporter's hook (``Exporter(on_outcome=…)``): record each final ERP answer on its invoice, in the
    transaction that records the outbox row. A VOID credit note (its invoice was rejected) changes nothing."""
    if outcome.invoice_id is None or outcome.state not in OUTCOMES:
        return
    record_posting(connection, outcome.invoice_id, outcome.state, outcome.error, document_kind=outcome.kind)


def verify_document(connection: Connection, invoice_id: int, document: ErpDocument) -> list[str]:
    """The exporter's check before sending (``Exporter(verify=…)``): the problems of ``document`` against the stored
    invoice it was queued for (for a credit note, the revision it credits); empty = it ties out."""
    invoice = connection.execute(select(invoices).where(invoices.c.id == invoice_id)).first()
    if invoice is None:
        return [f"no invoice with id {invoice_id}"]
    lines = connection.execute(
        select(invoice_lines).where(invoice_lines.c.invoice_id == invoice_id).order_by(invoice_lines.c.line_number)
    ).all()
    return tieout.problems(invoice, lines, document)
