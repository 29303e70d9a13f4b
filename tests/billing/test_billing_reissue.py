"""Re-issue after re-rating (a new revision, a credit note then an invoice to the ERP) and out-of-turn invoices."""

from __future__ import annotations

from datetime import date

import pytest
from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from sqlalchemy import select

from settlement.billing.posting import record_posting
from settlement.billing.reissue import reissue
from settlement.billing.run import BillingError, bill_now, run
from settlement.export.outbox import load
from settlement.store.schema import invoice_lines, invoices, outbox, xdrs


def test_reissue_takes_the_corrections_and_sends_a_credit_note_then_the_new_revision(store):
    add_profiles(store)
    add_account(store, "a", tax_profile="VAT20")
    original = xdr("a", "session", euros("1.00"), "400000001", ms(2026, 1, 10), units=60)
    add_xdrs(store, [original, xdr("a", "payment", euros("-5"), "400000010", ms(2026, 1, 11))])
    [first] = run(store, date(2026, 2, 1)).outcomes
    # Re-rating found the call cost 1.50: a correction of +0.50 for the original.
    add_xdrs(store, [xdr("a", "session", euros("0.5"), "400000001", ms(2026, 1, 10), units=0, revision=1,
                         corrects=original["id"])])  # fmt: skip
    second = reissue(store, first.invoice_id)
    assert (second.status, second.number, second.revision) == ("ISSUED", first.number, 1)
    with store.connect() as c:
        new = c.execute(select(invoices).where(invoices.c.id == second.invoice_id)).one()
        lines = c.execute(select(invoice_lines.c.category, invoice_lines.c.amount, invoice_lines.c.tax)
                          .where(invoice_lines.c.invoice_id == new.id)
                          .order_by(invoice_lines.c.line_number)).all()  # fmt: skip
        docs = [load(p) for p in c.execute(select(outbox.c.payload).order_by(outbox.c.id)).scalars()]
        owners = set(c.execute(select(xdrs.c.invoice_id).where(xdrs.c.record_type == "MAIN")).scalars())
        old_state = c.execute(select(invoices.c.state).where(invoices.c.id == first.invoice_id)).scalar()
    assert (new.kind, new.replaces, new.state) == ("REISSUE", first.invoice_id, "COMPLETE")
    assert [tuple(x) for x in lines] == [
        ("CHARGE", euros("1"), euros("0.2")),
        ("CORRECTION", euros("0.5"), euros("0.1")),
        ("PAYMENT", euros("-5"), 0),
        ("TAX", euros("0.3"), euros("0.3")),  # 20 % of the unrounded 1.50 of ledger code 400000001
    ]
    assert (new.charges, new.tax, new.carried_forward) == (euros("1.5"), euros("0.3"), euros("-3.2"))
    assert [(d.kind, d.revision, str(d.gross_total)) for d in docs] == [
        ("INVOICE", 0, "1.20"), ("CREDIT_NOTE", 0, "1.20"), ("INVOICE", 1, "1.80")]  # fmt: skip
    assert owners == {new.id} and old_state == "COMPLETE"
    with pytest.raises(BillingError, match="not the account's latest"):
        reissue(store, first.invoice_id)
    third = reissue(store, second.invoice_id)  # nothing new: the same content again, revision 2
    assert (third.status, third.revision) == ("ISSUED", 2)

    with store.begin() as c:  # the ERP refuses the credit note of revision 1: revision 2 is in POSTING_ERROR
        assert record_posting(c, first.invoice_id, "ACCEPTED") == "POSTED"
        assert record_posting(c, second.invoice_id, "ACCEPTED", document_kind="CREDIT_NOTE") == "COMPLETE"
        assert record_posting(c, second.invoice_id, "REJECTED", "period closed",
                              document_kind="CREDIT_NOTE") == "POSTING_ERROR"  # fmt: skip
        reason = c.execute(select(invoices.c.state_reason).where(invoices.c.id == third.invoice_id)).scalar()
    assert reason == f"credit note for invoice id {second.invoice_id}: period closed"


def test_out_of_turn_ends_the_period_now_and_the_next_one_runs_to_the_billing_day(store):
    add_profiles(store)
    add_account(store, "a", tax_profile="EXEMPT", billing_day=1, timezone="Europe/Berlin")
    add_xdrs(store, [xdr("a", "session", euros("2"), "400000001", ms(2026, 1, 10)),
                     xdr("a", "session", euros("3"), "400000001", ms(2026, 1, 20))])  # fmt: skip
    now = ms(2026, 1, 15)
    early = bill_now(store, "a", now_ms=now)
    assert (early.status, early.number, early.period_end_ms) == ("ISSUED", 1, now)
    with pytest.raises(BillingError, match="not before now"):
        bill_now(store, "a", now_ms=now)
    [regular] = run(store, date(2026, 2, 1)).outcomes
    assert (regular.period_start_ms, regular.number) == (now, 2)
    assert regular.period_end_ms == ms(2026, 1, 31, 23)  # midnight in Berlin is 23:00 UTC in winter
    with store.connect() as c:
        rows = c.execute(select(invoices.c.kind, invoices.c.brought_forward, invoices.c.carried_forward)
                         .order_by(invoices.c.number)).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [("OUT_OF_TURN", 0, euros("2")), ("REGULAR", euros("2"), euros("5"))]
