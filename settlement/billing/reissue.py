"""Re-issue after re-rating: revision n + 1 of an invoice, with its original xDRs and their corrections.

A correction xDR (revision > 0, ``corrects`` = the original's id, status BILLABLE) carries the change in cost. The
new revision keeps the number, period and brought-forward; it takes the original items and every open correction of
them, gets fresh taxation xDRs, and is queued to the ERP as a CREDIT_NOTE of revision n followed by the INVOICE of
revision n + 1, in the same transaction. Only an account's latest invoice can be re-issued (a later statement has
already carried its balance forward); corrections to earlier periods go on the next invoice as CORRECTION lines.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, delete, insert, select, update

from settlement.billing import validate
from settlement.billing.issue import (
    ITEM_COLUMNS,
    PERIOD_CLOSE_TAX,
    Invalid,
    Outcome,
    enqueue_documents,
    finish,
    header,
    items_of,  # fmt: skip
    lock_sequence,
    store_draft,
)
from settlement.billing.parties import encode
from settlement.billing.run import BillingError
from settlement.billing.setup import BillingAccount, TaxSetup, load_accounts, load_issuers, load_tax_setup
from settlement.billing.statement import compute
from settlement.billing.tax import TaxProfile
from settlement.entries import period_of
from settlement.store.database import ensure_periods
from settlement.store.schema import invoice_lines, invoices, xdrs
from settlement.vocabulary import ISSUED_STATES, InvoiceKind, InvoiceState, XdrStatus


def reissue(engine: Engine, invoice_id: int, *, now_ms: int | None = None) -> Outcome:
    """Issue revision n + 1 of invoice ``invoice_id`` (which must be the newest revision of the account's latest
    invoice); raises :class:`BillingError` if it cannot be re-issued."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    old, account, taxes = _load(engine, invoice_id)
    profile, profile_problems = taxes.profile_of(account)
    ensure_periods(engine, [period_of(old.period_end_ms - 1)], set())
    values: dict[str, Any] = {}
    try:
        with engine.begin() as connection:
            lock_sequence(connection, old.tenant)
            issuer = load_issuers(connection, [old.tenant]).get(old.tenant)  # the parties as they are now
            old = connection.execute(select(invoices).where(invoices.c.id == invoice_id)).one()
            _clear_the_way(connection, old)
            values = {**_revision(old, profile, now_ms),
                      "seller": encode(issuer.party) if issuer else "", "buyer": encode(account.customer)}
            new_id = connection.execute(insert(invoices).returning(invoices.c.id), values).scalar_one()
            s = compute(items_of(_take_items(connection, old, new_id)), currency=old.currency, profile=profile,
                        brought_forward=old.brought_forward, timezone=old.timezone)  # fmt: skip
            problems = validate.problems(s, extra=[*profile_problems, *validate.parties(issuer, account.customer)])
            if problems:
                raise Invalid(s, problems)
            finish(connection, new_id, account, s, number=old.number, end_ms=old.period_end_ms, now_ms=now_ms)
            problems = enqueue_documents(connection, new_id, credit_for=old.id)
            if problems:
                raise Invalid(s, problems)
    except Invalid as invalid:
        values.update(header(account, profile, invalid.statement))
        draft = store_draft(engine, values, invalid.statement, invalid.problems)
        return Outcome(account=old.account, period_start_ms=old.period_start_ms, period_end_ms=old.period_end_ms,
                       status="DRAFT", timezone=old.timezone, invoice_id=draft, revision=old.revision + 1,
                       problems=tuple(invalid.problems))  # fmt: skip
    return Outcome(account=old.account, period_start_ms=old.period_start_ms, period_end_ms=old.period_end_ms,
                   status="ISSUED", timezone=old.timezone, invoice_id=new_id, number=old.number,
                   revision=old.revision + 1)  # fmt: skip


def _load(engine: Engine, invoice_id: int) -> tuple[Row[Any], BillingAccount, TaxSetup]:
    """The invoice, its account and the tax set-up; :class:`BillingError` when either is unknown."""
    with engine.connect() as connection:
        old = connection.execute(select(invoices).where(invoices.c.id == invoice_id)).first()
        if old is None:
            raise BillingError(f"no invoice with id {invoice_id}")
        found = load_accounts(connection, [old.account])
        taxes = load_tax_setup(connection)
    if not found:
        raise BillingError(f"invoice {invoice_id}: account {old.account!r} is unknown")
    return old, found[0], taxes


def _clear_the_way(connection: Connection, old: Row[Any]) -> None:
    """Refuse unless ``old`` is issued and the account's latest; delete the DRAFTs an earlier failed attempt left."""
    if old.state not in ISSUED_STATES:
        raise BillingError(f"invoice {old.id} is {old.state}: only an issued invoice can be re-issued")
    newer = connection.execute(
        select(invoices.c.id, invoices.c.revision, invoices.c.state).where(
            invoices.c.account == old.account,
            (invoices.c.period_start_ms > old.period_start_ms)
            | and_(invoices.c.period_start_ms == old.period_start_ms, invoices.c.revision > old.revision),
        )
    ).all()
    for row in newer:
        if row.state in ISSUED_STATES:
            raise BillingError(f"invoice {old.id} is not the account's latest (invoice {row.id} is); "
                               "re-issue that one, or bill the corrections on the next invoice")  # fmt: skip
        connection.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == row.id))
        connection.execute(delete(invoices).where(invoices.c.id == row.id))  # an earlier failed DRAFT


def _revision(old: Row[Any], profile: TaxProfile, now_ms: int) -> dict[str, Any]:
    """The header of revision n + 1 as a DRAFT: the number, period and brought-forward of ``old``."""
    kept = ("tenant", "account", "customer_code", "period_start_ms", "period_end_ms", "timezone", "currency",
            "brought_forward")  # fmt: skip
    return {
        **{c: getattr(old, c) for c in kept},
        "kind": InvoiceKind.REISSUE, "tax_profile": profile.name, "tax_mode": profile.mode, "charges": 0,
        "payments": 0, "adjustments": 0, "tax": 0, "rounding": 0, "carried_forward": old.brought_forward,
        "xdr_count": 0, "late_items": 0, "created_ms": now_ms, "number": None, "revision": old.revision + 1,
        "replaces": old.id, "state": InvoiceState.DRAFT, "state_reason": "", "updated_ms": now_ms,
    }  # fmt: skip


def _take_items(connection: Connection, old: Row[Any], new_id: int) -> list[Row[Any]]:
    """Move the original items of ``old`` (not its period close's tax) to ``new_id`` and mark the open corrections
    of them BILLED on it; returns both, as billing reads items."""
    originals = connection.execute(
        update(xdrs).where(xdrs.c.invoice_id == old.id, ~xdrs.c.id.startswith(PERIOD_CLOSE_TAX))
        .values(invoice_id=new_id).returning(*ITEM_COLUMNS)
    ).all()  # fmt: skip
    originals_ids = select(xdrs.c.id).where(xdrs.c.invoice_id == new_id).scalar_subquery()
    corrections = connection.execute(
        update(xdrs)
        .where(xdrs.c.account == old.account, xdrs.c.status == XdrStatus.BILLABLE, xdrs.c.invoice_id.is_(None),
               xdrs.c.revision > 0, xdrs.c.corrects.in_(originals_ids))
        .values(status=XdrStatus.BILLED, invoice_id=new_id).returning(*ITEM_COLUMNS)
    ).all()  # fmt: skip
    return [*originals, *corrections]
