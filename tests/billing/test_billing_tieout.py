"""The ERP document ties out to its invoice: the issue's invoice (a −0.01 rounding line, a 270-unit usage line), a
validator that names what does not tie, billing keeping an invoice DRAFT rather than queue such a document, and
the exporter refusing to send one (real SQL store, real erp-sim over HTTP)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec
from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from sqlalchemy import func, select, update

from settlement.billing import erp, tieout
from settlement.billing.posting import on_export_outcome, verify_document
from settlement.billing.run import run
from settlement.billing.setup import set_account, set_issuer
from settlement.export.document import ErpLine
from settlement.export.erp_sim import ErpSim
from settlement.export.exporter import Exporter
from settlement.export.outbox import load
from settlement.store.schema import invoice_lines, invoices, outbox, xdrs

JAN = ms(2026, 1, 15)


def issue_the_issue_s_invoice(store, account: str = "a") -> None:
    """EXEMPT: 270 s of voice for 0.435 and a message for 0.435 print as 0.44 + 0.44; the exact total 0.87 needs a
    rounding line of −0.01."""
    add_account(store, account, tax_profile="EXEMPT", customer_code=f"C-{account}")
    add_xdrs(store, [xdr(account, "session", euros("0.435"), "400000001", JAN, units=270),
                     xdr(account, "event_charge", euros("0.435"), "400000002", JAN + 1, units=1)])  # fmt: skip


def stored(store, account: str = "a"):  # type: ignore[no-untyped-def]
    with store.connect() as c:
        invoice = c.execute(select(invoices).where(invoices.c.account == account)).one()
        lines = c.execute(select(invoice_lines).where(invoice_lines.c.invoice_id == invoice.id)
                          .order_by(invoice_lines.c.line_number)).all()  # fmt: skip
        payload = c.execute(select(outbox.c.payload).where(outbox.c.invoice_id == invoice.id)).scalar()
    return invoice, lines, load(payload) if payload else None


def test_the_issue_s_invoice_and_its_erp_document_total_the_same(store):
    add_profiles(store)
    issue_the_issue_s_invoice(store)
    assert run(store, date(2026, 2, 1)).issued == 1
    invoice, lines, doc = stored(store)
    assert [(x.category, x.description, x.units, x.amount) for x in lines] == [
        ("CHARGE", "Usage voice (400000001)", 270, euros("0.44")),
        ("CHARGE", "Usage message (400000002)", 1, euros("0.44")),
        ("ROUNDING", "Rounding difference", 0, euros("-0.01")),
    ]
    assert invoice.carried_forward == euros("0.87")  # the invoice moved the balance by 0.87
    assert (doc.price_mode, doc.net_total, doc.tax_total, doc.gross_total) == (
        "NET", Decimal("0.87"), Decimal("0.00"), Decimal("0.87"))  # not 0.88: the rounding line is in  # fmt: skip
    assert [(x.account_code, x.description, x.quantity, x.unit_price, x.line_total, x.usage_units)
            for x in doc.lines] == [
        ("400000001", "Usage voice (400000001)", 1, Decimal("0.44"), Decimal("0.44"), 270),
        ("400000002", "Usage message (400000002)", 1, Decimal("0.44"), Decimal("0.44"), 1),
        ("400000001", "Rounding difference", 1, Decimal("-0.01"), Decimal("-0.01"), 0),
    ]  # fmt: skip
    assert all(x.quantity * x.unit_price == x.line_total for x in doc.lines)
    assert tieout.problems(invoice, lines, doc) == []


def test_the_document_the_issue_describes_does_not_tie_out_and_the_validator_says_why(store):
    add_profiles(store)
    issue_the_issue_s_invoice(store)
    run(store, date(2026, 2, 1))
    invoice, lines, good = stored(store)
    old = msgspec.structs.replace(good, net_total=Decimal("0.88"), gross_total=Decimal("0.88"), lines=(
        ErpLine(line_number=1, account_code="400000001", description="Services (400000001)",
                quantity=Decimal(270), unit_price=Decimal("0.00"), line_total=Decimal("0.44"), vat_group="E0",
                tax_amount=Decimal("0.00"), period_start=good.period_start, period_end=good.period_end),
        ErpLine(line_number=2, account_code="400000002", description="Services (400000002)",
                quantity=Decimal(1), unit_price=Decimal("0.44"), line_total=Decimal("0.44"), vat_group="E0",
                tax_amount=Decimal("0.00"), period_start=good.period_start, period_end=good.period_end),
    ))  # fmt: skip
    assert tieout.problems(invoice, lines, old) == [
        "line 1: quantity 270 × unitPrice 0.00 is not lineTotal 0.44",
        "grossTotal 0.88 is not the invoice's total 0.87 (rounding line included)",
        "2 line(s), but the invoice posts 3",
        "line 1: description 'Services (400000001)' is not the invoice's 'Usage voice (400000001)'",
        "line 2: description 'Services (400000002)' is not the invoice's 'Usage message (400000002)'",
    ]
    # One thing wrong at a time, each named: another customer, a line moved to another G/L code.
    assert tieout.problems(invoice, lines, msgspec.structs.replace(good, customer_code="C-b")) == [
        "customer_code 'C-b' is not the invoice's 'C-a'"]  # fmt: skip
    moved = msgspec.structs.replace(good, lines=(msgspec.structs.replace(good.lines[0], account_code="400000009"),
                                                 *good.lines[1:]))  # fmt: skip
    assert tieout.problems(invoice, lines, moved) == [
        "line 1: accountCode 400000009 is not the invoice's 400000001"]  # fmt: skip


def test_exclusive_tax_is_shared_out_per_ledger_code_and_the_rounding_line_is_posted(store):
    """Voice and messages on one ledger code, 0.365 each: lines 0.37 + 0.37 (tax 0.07 each as printed), tax 20 % on the
    unrounded 0.73 = 0.146 → 0.15; exact total 0.876 → 0.88, lines 0.89: rounding −0.01."""
    add_profiles(store)
    add_account(store, "x", tax_profile="VAT20")
    add_xdrs(store, [xdr("x", "session", euros("0.365"), "400000001", JAN, units=90),
                     xdr("x", "event_charge", euros("0.365"), "400000001", JAN + 1, units=1)])  # fmt: skip
    run(store, date(2026, 2, 1))
    invoice, lines, doc = stored(store, "x")
    assert (invoice.charges, invoice.tax, invoice.rounding, invoice.carried_forward) == (
        euros("0.74"), euros("0.15"), euros("-0.01"), euros("0.88"))  # fmt: skip
    assert [(x.description, x.line_total, x.tax_amount) for x in doc.lines] == [
        ("Usage message (400000001)", Decimal("0.37"), Decimal("0.08")),  # the first of the largest takes the cent
        ("Usage voice (400000001)", Decimal("0.37"), Decimal("0.07")),
        ("Rounding difference", Decimal("-0.01"), Decimal("0.00")),
    ]
    assert (doc.net_total, doc.tax_total, doc.gross_total) == (Decimal("0.73"), Decimal("0.15"), Decimal("0.88"))
    assert tieout.problems(invoice, lines, doc) == []


def test_a_document_that_would_not_tie_out_keeps_the_invoice_draft_with_nothing_written(store, monkeypatch):
    add_profiles(store)
    issue_the_issue_s_invoice(store)
    real_build = erp.build

    def without_rounding(invoice, lines, *, kind="INVOICE"):  # type: ignore[no-untyped-def]
        """The old builder's mistake: the rounding line left out, totals taken from the remaining lines."""
        doc = real_build(invoice, lines, kind=kind)
        kept = tuple(x for x in doc.lines if x.description != "Rounding difference")
        total = sum((x.line_total for x in kept), Decimal(0))
        return msgspec.structs.replace(doc, lines=kept, net_total=total, gross_total=total)

    monkeypatch.setattr(erp, "build", without_rounding)
    [outcome] = run(store, date(2026, 2, 1)).outcomes
    assert (outcome.status, outcome.number) == ("DRAFT", None)
    assert outcome.problems == (
        "ERP document does not tie out to invoice id 1: grossTotal 0.88 is not the invoice's total 0.87 "
        "(rounding line included)",
        "ERP document does not tie out to invoice id 1: 2 line(s), but the invoice posts 3",
    )
    with store.connect() as c:
        assert c.execute(select(func.count()).select_from(outbox)).scalar() == 0
        assert set(c.execute(select(xdrs.c.status)).scalars()) == {"BILLABLE"}
        draft = c.execute(select(invoices.c.state, invoices.c.number, invoices.c.state_reason)).one()
    assert (draft.state, draft.number) == ("DRAFT", None) and "does not tie out" in draft.state_reason

    monkeypatch.setattr(erp, "build", real_build)  # fixed: the next run issues it, with the number nobody took
    [outcome] = run(store, date(2026, 2, 1)).outcomes
    assert (outcome.status, outcome.number) == ("ISSUED", 1)


async def test_the_exporter_refuses_a_document_that_no_longer_ties_out_to_its_invoice(store):
    add_profiles(store)
    with store.begin() as c:
        set_issuer(c, "default", name="ACME Telecom GmbH", address=("Friedrichstraße 1", "10117 Berlin"),
                   vat_id="DE136695976", iban="DE89370400440532013000", bic="COBADEFFXXX")  # fmt: skip
    issue_the_issue_s_invoice(store, "a")
    issue_the_issue_s_invoice(store, "b")
    with store.begin() as c:
        set_account(c, "b", customer_name="Łukasz Żółć", customer_address=("ul. Floriańska 1", "31-019 Kraków"),
                    customer_vat_id="PL5261040828")  # fmt: skip
    assert run(store, date(2026, 2, 1)).issued == 2
    _, _, doc = stored(store, "a")
    tampered = msgspec.structs.replace(doc, lines=(
        msgspec.structs.replace(doc.lines[0], description="Services (400000001)"), *doc.lines[1:]))  # fmt: skip
    with store.begin() as c:  # as a row an older version queued, or one edited by hand
        payload = msgspec.json.encode(tampered).decode()
        c.execute(update(outbox).where(outbox.c.idempotency_key == doc.idempotency_key)
                  .values(payload=payload, payload_sha256=tampered.payload_sha256))  # fmt: skip
    sim = ErpSim()
    await sim.start()
    try:
        async with Exporter(store, sim.url, on_outcome=on_export_outcome, verify=verify_document) as exporter:
            summary = await exporter.run_once()
    finally:
        await sim.close()
    assert (summary.rejected, summary.accepted, summary.sent) == (1, 1, 1)
    with store.connect() as c:
        rows = {r.idempotency_key: r for r in c.execute(select(outbox))}
        states = dict(c.execute(select(invoices.c.account, invoices.c.state)).all())
        reason = c.execute(select(invoices.c.state_reason).where(invoices.c.account == "a")).scalar()
    refused = rows[doc.idempotency_key]
    assert refused.state == "REJECTED"
    assert refused.last_error == ("not sent, the document does not tie out: line 1: description 'Services "
                                  "(400000001)' is not the invoice's 'Usage voice (400000001)'")  # fmt: skip
    assert states == {"a": "POSTING_ERROR", "b": "POSTED"} and "Services (400000001)" in reason
    [(key, held)] = sim.documents.items()  # only b's reached the ERP, with the parties it was issued with
    assert key != doc.idempotency_key and held.document.gross_total == Decimal("0.87")
    assert held.document.seller.name == "ACME Telecom GmbH" and held.document.seller.iban == "DE89370400440532013000"
    assert held.document.buyer.name == "Łukasz Żółć" and held.document.buyer.address[1] == "31-019 Kraków"
    assert held.document.lines[0].usage_units == 270 and held.document.lines[0].item_count == 1
