"""The words settlement, billing and the export write into the SQL store, each vocabulary defined once.

Every vocabulary is a :class:`~enum.StrEnum` whose members are their own value (``XdrStatus.BILLABLE ==
"BILLABLE"``), so a member is stored, compared and printed as the plain string it always was: the schema, the rows
already written and the command-line output do not change. ``settlement/store/schema.py`` checks at import that every
word fits the column that holds it.

The lifecycles these words take part in:

- xDR status: ``RAW → BILLABLE → BILLED``, with ``RAW_EXCEPTED`` / ``BILLABLE_EXCEPTED`` (``status_reason`` says why)
  for items that cannot go on, and back (``settlement/xdr_status.py``).
- Invoice state: ``DRAFT → COMPLETE → POSTED | POSTING_ERROR`` (``settlement/billing/posting.py``).
- Outbox state: ``PENDING → ACCEPTED | DUPLICATE | REJECTED | VOID`` (``settlement/export/exporter.py``); an operator
  takes a REJECTED document back to PENDING (retry) or to RELEASED (``settlement/export/outbox_admin.py``).
"""

from __future__ import annotations

from enum import StrEnum


class XdrStatus(StrEnum):
    """Where an xDR is in its lifecycle (``xdrs.status``)."""

    RAW = "RAW"
    """Booked, not yet checked for billing (settlement checks on arrival, so rows rarely stay here)."""
    BILLABLE = "BILLABLE"
    """May go on the account's next invoice."""
    BILLED = "BILLED"
    """On an invoice (``invoice_id``); changed only by re-rating (a correction) or a credit."""
    RAW_EXCEPTED = "RAW_EXCEPTED"
    """Cannot be billed as it is (e.g. no ledger code); ``occ xdr restore`` checks it again."""
    BILLABLE_EXCEPTED = "BILLABLE_EXCEPTED"
    """Held off invoices by someone (``occ xdr except``), with the reason."""


EXCEPTED_STATUSES = (XdrStatus.RAW_EXCEPTED, XdrStatus.BILLABLE_EXCEPTED)
"""The statuses of xDRs held off invoices."""


class AccountStatus(StrEnum):
    """An account's online status as its newest ``account`` entry gave it (``accounts.status``; the online core's
    words: ``occ account block`` / ``unblock``)."""

    ACTIVE = "ACTIVE"
    """May be charged."""
    BLOCKED = "BLOCKED"
    """Refused new charges online; settlement and billing treat it like any other."""


class RecordType(StrEnum):
    """What an xDR is to an invoice (``xdrs.record_type``)."""

    MAIN = "MAIN"
    """Usage and adjustments: charges (or credits) on the statement."""
    PAYMENT = "PAYMENT"
    """Money in: top-ups, payments, refunds."""
    TAX = "TAX"
    """Tax: taken at top-up (prepaid), or added at period close (tax-exclusive profiles)."""
    TEXT = "TEXT"
    """Text only: never summed on an invoice."""


class TaxMode(StrEnum):
    """How a tax profile taxes (``tax_profiles.mode``, ``invoices.tax_mode``; ``settlement/billing/tax.py``)."""

    EXCLUSIVE = "EXCLUSIVE"
    """Prices are net; period close adds a taxation xDR per ledger code."""
    INCLUSIVE = "INCLUSIVE"
    """Prices include tax; the invoice shows the tax they contain."""
    PREPAID = "PREPAID"
    """Tax is taken online at top-up; the invoice bills settlement's TAX xDRs as they are."""
    EXEMPT = "EXEMPT"
    """No tax."""


class InvoiceKind(StrEnum):
    """Why an invoice was issued (``invoices.kind``; a preview's ``preview_invoices.kind`` too)."""

    REGULAR = "REGULAR"
    """A billing period's close (``occ bill run``)."""
    OUT_OF_TURN = "OUT_OF_TURN"
    """On demand, up to now (``occ bill now``)."""
    REISSUE = "REISSUE"
    """A new revision after re-rating (``occ bill reissue``)."""
    PREVIEW = "PREVIEW"
    """A dry run's statement (only in ``preview_invoices``: never numbered, marks nothing)."""


class InvoiceState(StrEnum):
    """Where an invoice is (``invoices.state``)."""

    DRAFT = "DRAFT"
    """Not valid yet (``state_reason``): no number, no xDR marked."""
    COMPLETE = "COMPLETE"
    """Validated and numbered, queued for the ERP."""
    POSTED = "POSTED"
    """The ERP has it (final)."""
    POSTING_ERROR = "POSTING_ERROR"
    """The ERP refused it (``state_reason``); a later success makes it POSTED."""


ISSUED_STATES = (InvoiceState.COMPLETE, InvoiceState.POSTED, InvoiceState.POSTING_ERROR)
"""The states of an invoice that was issued (numbered)."""


class OutboxState(StrEnum):
    """Where a document for the ERP is (``outbox.state``)."""

    PENDING = "PENDING"
    """To send (or being sent, or waiting for a retry)."""
    ACCEPTED = "ACCEPTED"
    """The ERP took it (``erp_document_number``)."""
    DUPLICATE = "DUPLICATE"
    """The ERP had it already (under the same idempotency key and payload)."""
    REJECTED = "REJECTED"
    """A validation fault or an idempotency conflict: final, never retried."""
    VOID = "VOID"
    """A credit note of an invoice the ERP rejected (or an operator released): nothing to credit, not sent."""
    RELEASED = "RELEASED"
    """A REJECTED document an operator took out of the export for good (``outbox_actions`` says who and why): never
    sent, and no longer holding back the documents queued after it under its invoice number."""


class OutboxAction(StrEnum):
    """What an operator did to an outbox row (``outbox_actions.action``)."""

    RETRY = "RETRY"
    """Send it again now: REJECTED → PENDING, or a PENDING row waiting for its backoff made due."""
    RELEASE = "RELEASE"
    """REJECTED → RELEASED."""


class BatchState(StrEnum):
    """Where a billable-item export batch is (``billable_batches.state``; ``settlement/billable/``)."""

    OPEN = "OPEN"
    """Written; its xDRs stay BILLABLE until the receiving side confirms it."""
    CONFIRMED = "CONFIRMED"
    """Confirmed: its xDRs are BILLED (or BILLABLE_EXCEPTED where the receiver rejected them)."""
    SIMULATED = "SIMULATED"
    """A simulated export: changed nothing, never confirmed."""


class ItemOutcome(StrEnum):
    """What became of one xDR of a batch (``billable_items.outcome``)."""

    EXPORTED = "EXPORTED"
    """Written to the batch's file; not confirmed yet."""
    BILLED = "BILLED"
    """Confirmed: the xDR is BILLED."""
    REJECTED = "REJECTED"
    """The receiver rejected it: the xDR is BILLABLE_EXCEPTED with the receiver's reason."""
    CHANGED = "CHANGED"
    """It was no longer BILLABLE when the batch was confirmed (invoiced or excepted meanwhile): left as it was."""


USAGE_KINDS = frozenset({"session", "event_charge", "event_refund"})
"""The xDR kinds of usage (priced by a tariff: re-rated, taxed as usage); the others are money movements and tax."""
