"""What the exporter is told and what it tells: its options, the outcome of each attempt, the counts of a run.

See :mod:`settlement.export.exporter` for the rules these describe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec
from sqlalchemy import Connection

from settlement.export.document import ErpDocument
from settlement.export.journal import ErpJournal
from settlement.vocabulary import OutboxState

OutcomeState = Literal["ACCEPTED", "DUPLICATE", "REJECTED", "VOID", "RETRYING"]  # a final OutboxState, or RETRYING
FINAL_STATES = (OutboxState.ACCEPTED, OutboxState.DUPLICATE, OutboxState.REJECTED, OutboxState.VOID)


class ExporterOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How the exporter sends.

    Attributes:
        timeout_s: the most one SOAP call may take; after it the outcome is unknown (reconciled next attempt).
        lease_s: how long a claimed row is the worker's (0: 2 × timeout_s + 5 s, a status call and a submission).
        backoff_s: the wait after a first failed attempt; doubles with each further one.
        backoff_cap_s: the longest wait between attempts.
        jitter: the fraction (0–1) of each wait taken off at random, so workers do not retry in step.
        concurrency: documents in flight at once (of different invoice numbers).
        poll_s: how often the background loop looks for due documents.
        close_grace_s: on close, how long the round in progress may go on finishing its documents.
    """

    timeout_s: float = 10.0
    lease_s: float = 0.0
    backoff_s: float = 1.0
    backoff_cap_s: float = 300.0
    jitter: float = 0.25
    concurrency: int = 4
    poll_s: float = 1.0
    close_grace_s: float = 15.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.lease_s < 0 or self.backoff_s < 0 or self.poll_s <= 0:
            raise ValueError("timeout_s and poll_s must be positive; lease_s and backoff_s not negative")
        if self.backoff_cap_s < self.backoff_s or not 0 <= self.jitter <= 1 or self.concurrency < 1:
            raise ValueError("need backoff_cap_s ≥ backoff_s, 0 ≤ jitter ≤ 1 and concurrency ≥ 1")

    @property
    def lease_ms(self) -> int:
        return int(1000 * (self.lease_s or 2 * self.timeout_s + 5))


class ExportOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one attempt at one outbox row.

    Attributes:
        outbox_id, invoice_id, idempotency_key, kind: the row (``invoice_id`` as billing enqueued it).
        state: ACCEPTED, DUPLICATE (the ERP already had it), REJECTED (final, see ``error``), VOID (a credit note
            of an invoice the ERP rejected: nothing to credit, so not sent) or RETRYING.
        erp_document_number: the ERP's number for the document (ACCEPTED, DUPLICATE).
        attempts: attempts made so far, this one included.
        error: why REJECTED or RETRYING ("unknown outcome: …" when the request may have reached the ERP).
        reconciled: found in the ERP by GetSubmissionStatus (an earlier attempt's reply was lost).
    """

    outbox_id: int
    invoice_id: int | None
    idempotency_key: str
    kind: str
    state: OutcomeState
    erp_document_number: str = ""
    attempts: int
    error: str = ""
    reconciled: bool = False

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


OutcomeHook = Callable[[Connection, ExportOutcome], None]
VerifyHook = Callable[[Connection, int, ErpDocument], list[str]]
"""``verify(connection, invoice_id, document)``: what is wrong with ``document`` for the invoice it was queued for."""
JournalVerifyHook = Callable[[Connection, int, ErpJournal], list[str]]
"""``verify_journal(connection, outbox_id, journal)``: what is wrong with ``journal`` for the ledger rows it posts."""


class ExportSummary(msgspec.Struct, kw_only=True):
    """Counts of a run (``outcomes``: the recorded outcomes, in the order they were recorded)."""

    sent: int = 0
    checked: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    void: int = 0
    retrying: int = 0
    outcomes: list[ExportOutcome] = msgspec.field(default_factory=list)

    def count(self, outcome: ExportOutcome) -> None:
        self.outcomes.append(outcome)
        field = outcome.state.lower()
        setattr(self, field, getattr(self, field) + 1)

    def add(self, other: ExportSummary) -> None:
        """Add ``other``'s counts (not its outcomes) to these."""
        for field in ("sent", "checked", "accepted", "duplicate", "rejected", "void", "retrying"):
            setattr(self, field, getattr(self, field) + getattr(other, field))


class Backlog(msgspec.Struct, frozen=True, kw_only=True):
    """The outbox now: PENDING rows, those tried at least once, the oldest one's age; REJECTED rows."""

    pending: int
    retrying: int
    oldest_pending_age_s: float
    rejected: int
