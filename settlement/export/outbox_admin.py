"""What an operator does with the ERP outbox (``occ outbox``, the console): look at documents, retry, release.

A document the middleware REJECTED stays REJECTED until an operator decides, because the exporter never retries a
validation fault or an idempotency conflict on its own. Two ways out, each audited in ``outbox_actions`` with the
actor and the reason, in the transaction that changes the row:

- **retry** — REJECTED → PENDING, due now, *the same payload* (a queued document never changes: its idempotency key
  is bound to its hash). For a cause fixed outside the document: the customer or G/L account created in the ERP,
  a conflicting document removed there, a tie-out bug fixed in OCC. The exporter then reconciles first
  (GetSubmissionStatus), so a document the ERP took meanwhile is recorded ACCEPTED, not sent twice. A PENDING row
  waiting for its backoff is made due now (its state does not change). ``attempts``, the exporter's claim token,
  keeps counting: an exporter still holding an old claim can never record over the new attempt. A REJECTED invoice
  whose credit note was already voided because of that rejection cannot be retried (the ERP would then hold a
  revision that was replaced, with no credit note): release it.
- **release** — REJECTED → RELEASED, final: the document is never sent and no longer holds back the documents
  queued after it under its invoice number. For a document that must not reach the ERP as it is: the invoice is
  re-issued (``occ bill reissue``) or booked in the ERP by hand. Releasing the REJECTED credit note of a re-issue
  lets the replacement invoice go; a credit note queued after a released invoice is VOID (the ERP has nothing to
  credit). The invoice keeps its POSTING_ERROR state: the ERP does not hold it.

Every change is one conditional ``UPDATE … WHERE state = <the state read> AND attempts = <the attempts read>``:
when the exporter or another operator changed the row in between, nothing is written and
:class:`OutboxActionError` says what it is now.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Row, func, insert, select, update

from settlement.export.outbox import load
from settlement.store.database import reading
from settlement.store.schema import outbox, outbox_actions
from settlement.vocabulary import OutboxAction, OutboxState

MAX_REASON = 500
MAX_ACTOR = 300
MAX_PAGE = 500


class OutboxActionError(ValueError):
    """A request that cannot be carried out; ``field`` names the input at fault (``id``, ``reason``, ``actor``,
    ``state`` …) and the message says why and what to do. Nothing was written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class OutboxRow(msgspec.Struct, frozen=True, kw_only=True):
    """One outbox document as an operator sees it.

    Attributes:
        id: the outbox row id (``occ outbox show ID``).
        idempotency_key: ``tenant:invoice:revision`` (``:credit`` for a credit note).
        document_ref: ``tenant:invoice_number``; the documents of one number go out in id order.
        kind: INVOICE or CREDIT_NOTE.
        invoice_id: billing's invoice row (None for a document queued without one).
        state: an :class:`~settlement.vocabulary.OutboxState`.
        attempts: tries so far.
        next_attempt_ms: when a PENDING row may next be tried (epoch ms).
        last_error: the last failure, or why it was rejected.
        erp_document_number: the middleware's number (ACCEPTED, DUPLICATE).
        created_ms, updated_ms: epoch ms.
    """

    id: int
    idempotency_key: str
    document_ref: str
    kind: str
    invoice_id: int | None
    state: str
    attempts: int
    next_attempt_ms: int
    last_error: str
    erp_document_number: str
    created_ms: int
    updated_ms: int


class ActionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One operator action on an outbox row (a row of ``outbox_actions``).

    Attributes:
        outbox_id: the row acted on.
        at_ms: when (epoch ms).
        actor: who (``local:<os user>``, ``token:<name>``, ``console:<user>`` …).
        action: RETRY or RELEASE.
        state_before, state_after: the row's state around the action.
        reason: why, as the operator gave it.
    """

    outbox_id: int
    at_ms: int
    actor: str
    action: str
    state_before: str
    state_after: str
    reason: str


class DocumentSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the queued payload says (None fields: the payload is unreadable, see ``problem``).

    Attributes:
        customer_code: the ERP's business partner.
        currency: ISO 4217 code.
        gross_total: the document's gross total (Decimal, never a float).
        lines: how many lines it has.
        problem: why the payload could not be read ("" when it could).
    """

    customer_code: str | None = None
    currency: str | None = None
    gross_total: Decimal | None = None
    lines: int | None = None
    problem: str = ""


class OutboxDetail(msgspec.Struct, frozen=True, kw_only=True):
    """A document with what it holds and what operators did to it (oldest action first)."""

    row: OutboxRow
    document: DocumentSummary
    actions: tuple[ActionRecord, ...]


class OutboxPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of :func:`list_documents`, newest first; ``next_before``: pass it as ``before`` for the next page
    (None: this is the last one)."""

    rows: tuple[OutboxRow, ...]
    next_before: int | None


def list_documents(
    engine: Engine,
    *,
    state: str | None = None,
    kind: str | None = None,
    invoice_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> OutboxPage:
    """Outbox documents, newest first, optionally of one ``state``, ``kind`` and invoice, with id < ``before``."""
    if state is not None and state not in list(OutboxState):
        raise OutboxActionError("state", f"state must be one of {', '.join(OutboxState)}, got {state!r}")
    if kind is not None and kind not in ("INVOICE", "CREDIT_NOTE"):
        raise OutboxActionError("kind", f"kind must be INVOICE or CREDIT_NOTE, got {kind!r}")
    if not 1 <= limit <= MAX_PAGE:
        raise OutboxActionError("limit", f"limit must be 1 to {MAX_PAGE}, got {limit}")
    columns = [column for column in outbox.c if column.name != "payload"]  # a page never needs the documents
    query = select(*columns).order_by(outbox.c.id.desc()).limit(limit + 1)
    if state is not None:
        query = query.where(outbox.c.state == state)
    if kind is not None:
        query = query.where(outbox.c.kind == kind)
    if invoice_id is not None:
        query = query.where(outbox.c.invoice_id == invoice_id)
    if before is not None:
        query = query.where(outbox.c.id < before)
    with reading(engine) as connection:
        found = [_row(r) for r in connection.execute(query)]
    more = len(found) > limit
    rows = tuple(found[:limit])
    return OutboxPage(rows=rows, next_before=rows[-1].id if more else None)


def count_by_state(engine: Engine) -> dict[str, int]:
    """How many documents are in each outbox state (every state, 0 included)."""
    with reading(engine) as connection:
        counted = dict(connection.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all())
    return {state.value: counted.get(state.value, 0) for state in OutboxState}


def show_document(engine: Engine, outbox_id: int) -> OutboxDetail:
    """The document ``outbox_id`` with a summary of its payload and its operator actions."""
    with reading(engine) as connection:
        row = _find(connection, outbox_id)
        actions = connection.execute(
            select(outbox_actions).where(outbox_actions.c.outbox_id == outbox_id).order_by(outbox_actions.c.id)
        ).all()
    return OutboxDetail(row=_row(row), document=_summary(row.payload), actions=tuple(_action(a) for a in actions))


def retry(engine: Engine, outbox_id: int, *, actor: str, reason: str = "") -> ActionRecord:
    """Send ``outbox_id`` again now: REJECTED → PENDING, or a PENDING row's wait cut short (see the module doc)."""
    actor, reason = _actor(actor), _text("reason", reason, required=False)
    with engine.begin() as connection:
        row = _find(connection, outbox_id)
        if row.state not in (OutboxState.REJECTED, OutboxState.PENDING):
            raise OutboxActionError("id", f"outbox id {outbox_id} is {row.state}: {_final_why(row.state)}")
        if row.state == OutboxState.REJECTED and row.kind == "INVOICE":
            void = connection.execute(
                select(outbox.c.id).where(
                    outbox.c.idempotency_key == f"{row.idempotency_key}:credit", outbox.c.state == OutboxState.VOID
                )
            ).scalar()
            if void is not None:
                raise OutboxActionError(
                    "id",
                    f"outbox id {outbox_id} cannot be retried: its credit note (outbox id {void}) was voided because "
                    "the ERP rejected it, and a replacement invoice is queued; release it instead",
                )
        return _change(connection, row, OutboxAction.RETRY, OutboxState.PENDING, actor, reason)


def release(engine: Engine, outbox_id: int, *, actor: str, reason: str) -> ActionRecord:
    """REJECTED → RELEASED: never sent, no longer holding back later documents of its number (see the module doc)."""
    actor, reason = _actor(actor), _text("reason", reason, required=True)
    with engine.begin() as connection:
        row = _find(connection, outbox_id)
        if row.state != OutboxState.REJECTED:
            raise OutboxActionError(
                "id", f"outbox id {outbox_id} is {row.state}: only a REJECTED document can be released"
            )
        return _change(connection, row, OutboxAction.RELEASE, OutboxState.RELEASED, actor, reason)


def _change(connection: Connection, row: Row[Any], action: OutboxAction, state: OutboxState, actor: str,
            reason: str) -> ActionRecord:  # fmt: skip
    now_ms = int(time.time() * 1000)
    values: dict[str, object] = {"state": state, "updated_ms": now_ms}
    if state == OutboxState.PENDING:
        values["next_attempt_ms"] = now_ms
    changed = connection.execute(
        update(outbox)
        .where(outbox.c.id == row.id, outbox.c.state == row.state, outbox.c.attempts == row.attempts)
        .values(**values)
    ).rowcount
    if changed != 1:
        now = _find(connection, row.id)
        raise OutboxActionError(
            "id", f"outbox id {row.id} changed meanwhile (it is {now.state} now, attempt {now.attempts}); "
                  "nothing was written, look again"
        )  # fmt: skip
    record = ActionRecord(outbox_id=row.id, at_ms=now_ms, actor=actor, action=action, state_before=row.state,
                          state_after=state, reason=reason)  # fmt: skip
    connection.execute(insert(outbox_actions), msgspec.structs.asdict(record))
    return record


def _find(connection: Connection, outbox_id: int) -> Row[Any]:
    if isinstance(outbox_id, bool) or not isinstance(outbox_id, int) or outbox_id < 1:
        raise OutboxActionError("id", f"id must be a positive outbox row id, got {outbox_id!r}")
    row = connection.execute(select(outbox).where(outbox.c.id == outbox_id)).first()
    if row is None:
        raise OutboxActionError("id", f"no outbox document with id {outbox_id}")
    return row


def _final_why(state: str) -> str:
    return {
        OutboxState.ACCEPTED: "the ERP has it; there is nothing to retry",
        OutboxState.DUPLICATE: "the ERP has it; there is nothing to retry",
        OutboxState.VOID: "a credit note of an invoice the ERP never took: there is nothing to credit",
        OutboxState.RELEASED: "it was released and is never sent; re-issue the invoice to send a new revision",
    }.get(state, "only a REJECTED or PENDING document can be retried")


def _actor(actor: str) -> str:
    return _text("actor", actor, required=True, limit=MAX_ACTOR)


def _text(field: str, text: str, *, required: bool, limit: int = MAX_REASON) -> str:
    text = (text or "").strip()
    if required and not text:
        raise OutboxActionError(field, f"{field} is required: it is recorded with the action")
    if len(text) > limit:
        raise OutboxActionError(field, f"{field} is longer than {limit} characters")
    return text


def _row(row: Row[Any]) -> OutboxRow:
    return OutboxRow(
        id=row.id, idempotency_key=row.idempotency_key, document_ref=row.document_ref, kind=row.kind,
        invoice_id=row.invoice_id, state=row.state, attempts=row.attempts, next_attempt_ms=row.next_attempt_ms,
        last_error=row.last_error, erp_document_number=row.erp_document_number, created_ms=row.created_ms,
        updated_ms=row.updated_ms,
    )  # fmt: skip


def _action(row: Row[Any]) -> ActionRecord:
    return ActionRecord(outbox_id=row.outbox_id, at_ms=row.at_ms, actor=row.actor, action=row.action,
                        state_before=row.state_before, state_after=row.state_after, reason=row.reason)  # fmt: skip


def _summary(payload: str) -> DocumentSummary:
    try:
        document = load(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        return DocumentSummary(problem=f"unreadable payload: {error}")
    return DocumentSummary(customer_code=document.customer_code, currency=document.currency,
                           gross_total=document.gross_total, lines=len(document.lines))  # fmt: skip
