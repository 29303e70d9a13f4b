"""The ledger report of two months, computed by hand to the cent, tying out to the invoices and to the ERP documents
(a re-issue's credit note included); a document the ERP refused breaks the ERP tie-out; the command's table, CSV and
PDF.

January (UTC, billing day 1):
- a (VAT 20 % exclusive): a call of 1.234567 on 400000001 → CHARGE 1.23, tax 20 % of the unrounded 1.234567 =
  0.2469134 → TAX 0.25 on 470000001; a payment of −5.00 (400000010); an adjustment of −0.50 (400000011). Carried
  forward round(1.234567 + 0.2469134 − 5.5) = −4.02; the A/R document 1.23 + 0.25 − 0.50 = 0.98.
- b (exempt): a call of 2.005 on 400000002 → 2.01 (half up); a payment of −1.00. Carried 1.01; document 2.01.
  January's ledger: 1.23 + 2.01 + 0.25 − 6.00 − 0.50 = −3.01 = (−4.02) + 1.01.
February:
- a: a call of 0.50 → CHARGE 0.50, TAX 0.10; a payment of −1.00: −0.40, carried −4.42; document 0.60. Re-rated to
  0.75 (a correction of +0.25) and re-issued: revision 1 has CHARGE 0.50, CORRECTION 0.25, TAX 0.15 (20 % of 0.75),
  PAYMENT −1.00: −0.10, carried −4.12. The ERP got INVOICE r0 0.60, CREDIT_NOTE r0 0.60, INVOICE r1 0.90: net 0.90.
- b: nothing happened: an invoice that changes nothing (1.01 brought and carried forward).
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import insert, select, update

from occ.cli import main
from settlement.billing.journal import queue_journals
from settlement.billing.reissue import reissue
from settlement.billing.run import run
from settlement.reports.ledger import ReportError, ledger_report
from settlement.store.database import reading
from settlement.store.schema import invoices, journal_postings, ledger, outbox, xdrs


def two_months(store):
    add_profiles(store)
    add_account(store, "a", tax_profile="VAT20")
    add_account(store, "b", tax_profile="EXEMPT")
    feb_call = xdr("a", "session", euros("0.5"), "400000001", ms(2026, 2, 3), units=30)
    add_xdrs(store, [
        xdr("a", "session", euros("1.234567"), "400000001", ms(2026, 1, 10), units=60),
        xdr("a", "payment", euros("-5"), "400000010", ms(2026, 1, 12)),
        xdr("a", "adjustment", euros("-0.5"), "400000011", ms(2026, 1, 13), description="Goodwill"),
        xdr("b", "session", euros("2.005"), "400000002", ms(2026, 1, 10), units=120),
        xdr("b", "payment", euros("-1"), "400000010", ms(2026, 1, 14)),
        feb_call,
        xdr("a", "payment", euros("-1"), "400000010", ms(2026, 2, 4)),
    ])  # fmt: skip
    run(store, date(2026, 3, 1))
    with store.connect() as c:
        february = c.execute(select(invoices.c.id).where(invoices.c.account == "a")
                             .order_by(invoices.c.period_start_ms.desc()).limit(1)).scalar_one()  # fmt: skip
    add_xdrs(store, [xdr("a", "session", euros("0.25"), "400000001", ms(2026, 2, 3), units=0, revision=1,
                         corrects=feb_call["id"])])  # fmt: skip
    assert reissue(store, february).status == "ISSUED"


def cents(row):
    return tuple(round(v / 1_000_000, 2) for v in (row.opening, row.charges, row.taxes, row.payments,
                                                  row.adjustments, row.rounding, row.closing))  # fmt: skip


def test_two_months_by_hand_tie_out(store):
    two_months(store)
    with reading(store) as c:
        report = ledger_report(c, date(2026, 1, 1), date(2026, 2, 28))
    got = [(r.month, r.ledger_code, cents(r)) for r in report.rows]
    assert got == [  # opening, charges, taxes, payments, adjustments, rounding, closing
        ("2026-01", "400000001", (0, 1.23, 0, 0, 0, 0, 1.23)),
        ("2026-01", "400000002", (0, 2.01, 0, 0, 0, 0, 2.01)),
        ("2026-01", "400000010", (0, 0, 0, -6.00, 0, 0, -6.00)),
        ("2026-01", "400000011", (0, 0, 0, 0, -0.50, 0, -0.50)),
        ("2026-01", "470000001", (0, 0, 0.25, 0, 0, 0, 0.25)),
        ("2026-02", "400000001", (1.23, 0.75, 0, 0, 0, 0, 1.98)),  # 0.50 + the 0.25 correction (revision 1)
        ("2026-02", "400000002", (2.01, 0, 0, 0, 0, 0, 2.01)),
        ("2026-02", "400000010", (-6.00, 0, 0, -1.00, 0, 0, -7.00)),
        ("2026-02", "400000011", (-0.50, 0, 0, 0, 0, 0, -0.50)),
        ("2026-02", "470000001", (0.25, 0, 0.15, 0, 0, 0, 0.40)),
    ]
    jan, feb = report.months
    assert (jan.month, jan.invoices, jan.movement, jan.invoiced) == ("2026-01", 2, euros("-3.01"), euros("-3.01"))
    assert (jan.erp_expected, jan.erp_sent, jan.erp_documents, jan.erp_pending) == (euros("2.99"), euros("2.99"), 2, 2)
    assert (feb.month, feb.invoices, feb.movement, feb.invoiced) == ("2026-02", 2, euros("-0.10"), euros("-0.10"))
    assert (feb.erp_expected, feb.erp_sent, feb.erp_documents) == (euros("0.90"), euros("0.90"), 3)
    assert [(m.invoice_difference, m.erp_difference) for m in report.months] == [(0, 0), (0, 0)]
    assert report.ties_out

    with reading(store) as c:  # February alone opens with January's closing balances
        february = ledger_report(c, date(2026, 2, 1), date(2026, 2, 28))
    assert [r.opening for r in february.rows] == [r.opening for r in report.rows if r.month == "2026-02"]
    assert len(february.months) == 1 and february.ties_out


def test_a_refused_document_breaks_the_erp_tie_out(store):
    two_months(store)
    with store.begin() as c:  # the ERP refused b's January invoice (2.01): it never reached the books
        b_january = c.execute(select(invoices.c.id).where(invoices.c.account == "b")
                              .order_by(invoices.c.period_start_ms).limit(1)).scalar_one()  # fmt: skip
        c.execute(update(outbox).where(outbox.c.invoice_id == b_january).values(state="REJECTED"))
    with reading(store) as c:
        report = ledger_report(c, date(2026, 1, 1), date(2026, 1, 31))
        with pytest.raises(ReportError, match="before --from"):
            ledger_report(c, date(2026, 2, 1), date(2026, 1, 31))
    [jan] = report.months
    assert (jan.invoice_difference, jan.erp_difference, report.ties_out) == (0, euros("-2.01"), False)


def test_occ_report_ledger_prints_writes_csv_and_pdf(store, db_url, tmp_path):
    two_months(store)
    runner = CliRunner()
    args = ["report", "ledger", "--from", "2026-01-01", "--to", "2026-02-28", "--db-url", db_url]
    result = runner.invoke(main, [*args, "--csv", str(tmp_path / "l.csv"), "--pdf", str(tmp_path / "l.pdf")])
    assert result.exit_code == 0, result.output
    assert "tie-out to 2 invoice(s): ledger -3.01 − invoices -3.01 = 0.00 (must be 0)" in result.output
    assert "tie-out to 3 ERP document(s), 3 not yet accepted: sent 0.90 − invoices' sales 0.90 = 0.00" in result.output
    assert "\nties out\n" in result.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "l.csv").read_text())))
    totals = [r for r in rows if r["ledger_code"] == "total"]
    assert [(r["month"], r["opening"], r["closing"], r["tie_out_invoices"], r["tie_out_erp"]) for r in totals] == [
        ("2026-01", "0.00", "-3.01", "0.00", "0.00"), ("2026-02", "-3.01", "-3.11", "0.00", "0.00")]  # fmt: skip
    assert len(rows) == 12
    page = PdfReader(tmp_path / "l.pdf").pages[0].extract_text()
    assert "Ledger report 2026-01-01 – 2026-02-28" in page and "Ties out." in page
    assert all(word in page for word in ("charges", "taxes", "payments", "adjustments", "2026-01", "2026-02"))

    with store.begin() as c:
        c.execute(update(outbox).values(state="REJECTED"))
    result = runner.invoke(main, args)
    assert result.exit_code == 3 and "DOES NOT TIE OUT" in result.output


def book_movements(store):
    """The ledger rows settlement books beside the money-movement xDRs (amount = −cost: credit positive)."""
    with store.begin() as c:
        moved = c.execute(select(xdrs).where(xdrs.c.kind.in_(("payment", "adjustment")))).all()
        c.execute(insert(ledger), [{"id": x.id, "period": x.period, "account": x.account, "time_ms": x.start_ms,
                                    "kind": x.kind, "amount": -x.cost, "balance": None, "currency": x.currency,
                                    "ledger_code": x.ledger_code, "reference": x.session_id,
                                    "description": x.description, "xdr_id": x.id, "actor": None}
                                   for x in moved])  # fmt: skip


def test_journals_tie_out_to_the_payments_and_adjustments_billed(store, db_url, tmp_path):
    two_months(store)
    book_movements(store)
    with reading(store) as c:  # nothing posted to the ERP yet: the journal tie-out says what is missing
        report = ledger_report(c, date(2026, 1, 1), date(2026, 2, 28), journals=True)
    assert [(m.journal_expected, m.journal_sent, m.journal_difference) for m in report.months] == [
        (euros("-6.50"), 0, euros("6.50")), (euros("-1.00"), 0, euros("1.00"))]  # fmt: skip
    assert not report.ties_out

    queue_journals(store, now_ms=ms(2026, 3, 1))  # payments −5.00, −1.00, −1.00 and the −0.50 goodwill adjustment
    with store.connect() as c:
        assert c.execute(select(journal_postings)).all()  # every row posted
    with reading(store) as c:
        report = ledger_report(c, date(2026, 1, 1), date(2026, 2, 28), journals=True)
    jan, feb = report.months
    assert (jan.journal_expected, jan.journal_sent, jan.journal_documents, jan.journal_pending) == (
        euros("-6.50"), euros("-6.50"), 3, 3)  # fmt: skip
    assert (feb.journal_expected, feb.journal_sent, feb.journal_documents) == (euros("-1.00"), euros("-1.00"), 1)
    assert report.ties_out

    result = CliRunner().invoke(main, ["report", "ledger", "--from", "2026-01-01", "--to", "2026-01-31",
                                       "--journals", "--db-url", db_url])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert ("tie-out to 3 ERP journal(s), 3 not yet accepted: posted -6.50 − payments, adjustments and prepaid tax "
            "billed -6.50 = 0.00 (must be 0)") in result.output
