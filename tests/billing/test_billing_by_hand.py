"""Invoices computed by hand, checked line by line and to the cent: VAT-exclusive 20 %, VAT-inclusive 19 % (with a
rounding line), exempt (ROUND_HALF_UP on a half cent), prepaid 20 % (tax taken at top-up, as settlement recorded it,
with a rounding line), and a second period that brings the first one's balance forward."""

from __future__ import annotations

import json
from datetime import date

from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from sqlalchemy import select

from settlement.billing.run import run
from settlement.export.erp_sim import business_errors
from settlement.export.outbox import load
from settlement.store.schema import billing_runs, invoice_lines, invoices, outbox, xdrs


def invoice_of(store, account, revision=0, start=None):
    with store.connect() as c:
        query = select(invoices).where(invoices.c.account == account, invoices.c.revision == revision)
        if start is not None:
            query = query.where(invoices.c.period_start_ms == start)
        inv = c.execute(query.order_by(invoices.c.period_start_ms)).first()
        lines = c.execute(select(invoice_lines).where(invoice_lines.c.invoice_id == inv.id)
                          .order_by(invoice_lines.c.line_number)).all()  # fmt: skip
    return inv, [(l.category, l.ledger_code, l.count, l.units, l.amount, l.net, l.tax) for l in lines]  # noqa: E741


def setup_four(store):
    add_profiles(store)
    add_account(store, "excl", tax_profile="VAT20", customer_code="C-EXCL")
    add_account(store, "incl", tax_profile="VAT19I")
    add_account(store, "exempt", tax_profile="EXEMPT")
    add_account(store, "pre", tax_profile="PRE20")
    jan = ms(2026, 1, 15)
    add_xdrs(store, [
        xdr("excl", "session", euros("1.234567"), "400000001", jan, units=60),
        xdr("excl", "session", euros("0.5"), "400000001", jan + 1, units=30),
        xdr("excl", "event_charge", euros("0.105"), "400000002", jan + 2, units=1),
        xdr("excl", "event_charge", euros("0.105"), "400000002", jan + 3, units=1),
        xdr("excl", "payment", euros("-10"), "400000010", jan + 4, session_id="pay-1"),
        xdr("excl", "adjustment", euros("-0.5"), "400000011", jan + 5, description="Goodwill"),
        xdr("excl", "session", euros("1"), "", jan + 6, status="RAW_EXCEPTED", status_reason="no ledger code"),
        xdr("incl", "session", euros("1.004"), "400000001", jan, units=100),
        xdr("incl", "event_charge", euros("2.004"), "400000002", jan + 1, units=1),
        xdr("incl", "topup", euros("-20"), "400000009", jan + 2),
        xdr("exempt", "session", euros("12.345"), "400000003", jan, units=600),
        xdr("exempt", "refund", euros("5"), "400000010", jan + 1),
        xdr("exempt", "payment", euros("-7.5"), "400000010", jan + 2),
        # Prepaid 20 %: two top-ups of 10.00 (on two ledger codes); the online core took 10 × 0.2 / 1.2 = 1.666667
        # from each and credited 8.333333; settlement booked a PAYMENT xDR (−10) and a TAX xDR (+1.666667) for each.
        xdr("pre", "topup", euros("-10"), "400000009", jan, id="pre-1"),
        prepaid_tax("pre-1", euros("1.666667"), jan),
        xdr("pre", "topup", euros("-10"), "400000008", jan + 2, id="pre-2"),
        prepaid_tax("pre-2", euros("1.666667"), jan + 2),
        xdr("pre", "session", euros("3"), "400000001", jan + 1, units=120),
        xdr("excl", "session", euros("2"), "400000001", ms(2026, 2, 10), units=90),  # February: next invoice
    ])  # fmt: skip


def prepaid_tax(topup_id, tax, end_ms):
    """The TAX xDR settlement books for a top-up the online core taxed (``settlement.entries``)."""
    return xdr("pre", "topup_tax", tax, "470000001", end_ms, id=f"{topup_id}:tax", record_type="TAX", tax_code="S20",
               tax_rate_ppm=200_000, tax_amount=tax)  # fmt: skip


def test_four_tax_modes_to_the_cent(store):
    setup_four(store)
    report = run(store, date(2026, 2, 1))
    assert (report.issued, report.already, report.drafts) == (4, 0, 0)
    assert [(e["account"], e["status"], e["reason"]) for e in report.excepted] == [
        ("excl", "RAW_EXCEPTED", "no ledger code")]  # fmt: skip
    with store.connect() as c:
        stored = c.execute(select(billing_runs.c.excepted, billing_runs.c.report, billing_runs.c.issued)
                           .where(billing_runs.c.id == report.run_id)).one()  # fmt: skip
    assert (stored.excepted, stored.issued, json.loads(stored.report)) == (1, 4, report.excepted)

    inv, lines = invoice_of(store, "excl")
    assert lines == [
        ("CHARGE", "400000001", 2, 90, euros("1.73"), euros("1.73"), euros("0.35")),  # 1.734567; tax 0.3469134
        ("CHARGE", "400000002", 2, 2, euros("0.21"), euros("0.21"), euros("0.04")),  # 0.21; tax 0.042
        ("ADJUSTMENT", "400000011", 1, 0, euros("-0.5"), euros("-0.5"), 0),
        ("PAYMENT", "400000010", 1, 0, euros("-10"), euros("-10"), 0),
        ("TAX", "470000001", 2, 0, euros("0.35"), euros("1.73"), euros("0.35")),
        ("TAX", "470000001", 2, 0, euros("0.04"), euros("0.21"), euros("0.04")),
    ]
    assert (inv.brought_forward, inv.charges, inv.tax, inv.payments, inv.adjustments, inv.rounding) == (
        0, euros("1.94"), euros("0.39"), euros("-10"), euros("-0.5"), 0)  # fmt: skip
    assert inv.carried_forward == euros("-8.17")  # round(1.944567 − 10.5 + 0.3889134) = −8.17
    assert (inv.state, inv.number, inv.customer_code, inv.xdr_count) == ("COMPLETE", inv.number, "C-EXCL", 6)

    inv, lines = invoice_of(store, "incl")
    assert lines == [
        ("CHARGE", "400000001", 1, 100, euros("1"), euros("0.84"), euros("0.16")),  # 1.004 × 0.19 / 1.19 = 0.1603
        ("CHARGE", "400000002", 1, 1, euros("2"), euros("1.68"), euros("0.32")),  # 2.004 × 0.19 / 1.19 = 0.3200
        ("PAYMENT", "400000009", 1, 0, euros("-20"), euros("-20"), 0),
        ("TAX", "470000002", 1, 0, 0, euros("0.84"), euros("0.16")),  # included: shown, not added
        ("TAX", "470000002", 1, 0, 0, euros("1.68"), euros("0.32")),
        ("ROUNDING", "470000002", 0, 0, euros("0.01"), euros("0.01"), 0),  # round(3.008 − 20) − (3.00 − 20)
    ]
    assert (inv.charges, inv.tax, inv.payments, inv.rounding, inv.carried_forward) == (
        euros("3"), euros("0.48"), euros("-20"), euros("0.01"), euros("-16.99"))  # fmt: skip

    inv, lines = invoice_of(store, "exempt")
    assert lines == [
        ("CHARGE", "400000003", 1, 600, euros("12.35"), euros("12.35"), 0),  # 12.345 half up, not half even
        ("PAYMENT", "400000010", 1, 0, euros("5"), euros("5"), 0),
        ("PAYMENT", "400000010", 1, 0, euros("-7.5"), euros("-7.5"), 0),
    ]
    assert (inv.charges, inv.tax, inv.payments, inv.rounding, inv.carried_forward) == (
        euros("12.35"), 0, euros("-2.5"), 0, euros("9.85"))  # fmt: skip

    inv, lines = invoice_of(store, "pre")
    assert lines == [
        ("CHARGE", "400000001", 1, 120, euros("3"), euros("3"), 0),  # usage is not taxed again
        ("PAYMENT", "400000009", 1, 0, euros("-10"), euros("-10"), 0),  # the top-ups as paid (gross)
        ("PAYMENT", "400000008", 1, 0, euros("-10"), euros("-10"), 0),
        ("TAX", "470000001", 1, 0, euros("1.67"), euros("8.33"), euros("1.67")),  # 1.666667 taken from 10.00 (…08)
        ("TAX", "470000001", 1, 0, euros("1.67"), euros("8.33"), euros("1.67")),  # and from 10.00 (…09)
        ("ROUNDING", "470000001", 0, 0, euros("-0.01"), euros("-0.01"), 0),  # round(3 − 20 + 3.333334) − (−13.66)
    ]
    assert (inv.charges, inv.tax, inv.payments, inv.rounding, inv.carried_forward) == (
        euros("3"), euros("3.34"), euros("-20"), euros("-0.01"), euros("-13.67"))  # fmt: skip
    # The balance carried is the live balance's mirror: 8.333333 × 2 − 3 = 13.666666 of credit → −13.67.

    with store.connect() as c:
        taxes = c.execute(select(xdrs.c.account, xdrs.c.kind, xdrs.c.cost, xdrs.c.tax_amount, xdrs.c.status)
                          .where(xdrs.c.record_type == "TAX").order_by(xdrs.c.account, xdrs.c.cost)).all()  # fmt: skip
        statuses = dict(c.execute(select(xdrs.c.status, xdrs.c.id).where(xdrs.c.ledger_code == "")).all())
        feb = c.execute(select(xdrs.c.status).where(xdrs.c.end_ms >= ms(2026, 2, 1, 0))).scalars().all()
    assert [tuple(t) for t in taxes] == [
        ("excl", "tax", euros("0.04"), euros("0.04"), "BILLED"),
        ("excl", "tax", euros("0.35"), euros("0.35"), "BILLED"),
        ("pre", "topup_tax", euros("1.666667"), euros("1.666667"), "BILLED"),  # settlement's, billed as they are:
        ("pre", "topup_tax", euros("1.666667"), euros("1.666667"), "BILLED"),  # period close adds none for PREPAID
    ]
    assert "RAW_EXCEPTED" in statuses and feb == ["BILLABLE"]

    # The ERP documents queued with them: the invoice line for line — usage, adjustments and the rounding line, with
    # the invoice's texts, priced quantity 1 × the line total (units for information) — totalling what the invoice
    # totals besides payments (carried − brought forward − payments). PREPAID sells the top-ups instead.
    with store.connect() as c:
        docs = {d.customer_code: d for d in map(load, c.execute(select(outbox.c.payload)).scalars())}
    expected = {
        "C-EXCL": ("NET", "1.44", "0.39", "1.83", [
            ("400000001", "Usage voice (400000001)", "1", "1.73", 90, "S20", "0.35"),
            ("400000002", "Usage message (400000002)", "1", "0.21", 2, "S20", "0.04"),
            ("400000011", "Goodwill", "1", "-0.50", 0, "EXEMPT", "0.00")]),
        "incl": ("GROSS", "2.53", "0.48", "3.01", [
            ("400000001", "Usage voice (400000001)", "1", "1.00", 100, "S19", "0.16"),
            ("400000002", "Usage message (400000002)", "1", "2.00", 1, "S19", "0.32"),
            ("470000002", "Rounding difference", "1", "0.01", 0, "EXEMPT", "0.00")]),  # 3.01 = −16.99 + 20
        "exempt": ("NET", "12.35", "0.00", "12.35", [
            ("400000003", "Usage voice (400000003)", "1", "12.35", 600, "E0", "0.00")]),
        "pre": ("GROSS", "16.66", "3.34", "20.00", [
            ("400000008", "Prepaid credit (400000008), tax taken at top-up", "1", "10.00", 0, "S20", "1.67"),
            ("400000009", "Prepaid credit (400000009), tax taken at top-up", "1", "10.00", 0, "S20", "1.67")]),
    }  # fmt: skip
    for customer, (mode, net, tax, gross, lines) in expected.items():
        d = docs[customer]
        assert (d.price_mode, str(d.net_total), str(d.tax_total), str(d.gross_total)) == (mode, net, tax, gross)
        assert [(x.account_code, x.description, str(x.quantity), str(x.line_total), x.usage_units, x.vat_group,
                 str(x.tax_amount)) for x in d.lines] == lines  # fmt: skip
        assert all(x.unit_price == x.line_total for x in d.lines)
        assert business_errors(d, d.idempotency_key) == []  # what erp-sim checks besides the XSD

    # February: the balance comes forward; 2.00 + 20 % = 2.40.
    report = run(store, date(2026, 3, 1))
    assert report.issued == 4
    inv, lines = invoice_of(store, "excl", start=ms(2026, 2, 1, 0))
    assert (inv.brought_forward, inv.charges, inv.tax, inv.carried_forward) == (
        euros("-8.17"), euros("2"), euros("0.4"), euros("-5.77"))  # fmt: skip
