"""``occ bill`` end to end on a SQLite file: settings, run, show with CSV and PDF, previews, re-issue."""

from __future__ import annotations

import csv
import io

from billing_helpers import add_xdrs, euros, ms, xdr
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import insert

from occ.cli import main
from settlement.store.database import open_store
from settlement.store.migrate import upgrade
from settlement.store.schema import accounts


def occ(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_bill_commands(tmp_path):
    url = f"sqlite:///{tmp_path / 'occ.sqlite3'}"
    engine = open_store(url)
    upgrade(engine)
    with engine.begin() as c:
        c.execute(insert(accounts), {"account": "alice", "currency": "EUR", "opening_balance": 0,
                                     "first_seen_ms": ms(2026, 1, 1, 0)})  # fmt: skip
    add_xdrs(engine, [xdr("alice", "session", euros("1.004"), "400000001", ms(2026, 1, 10), units=61),
                      xdr("alice", "topup", euros("-10"), "400000009", ms(2026, 1, 9))])  # fmt: skip
    db = f"--db-url={url}"
    for args in (
        ("tax-profile", "set", "VAT19", "--mode", "INCLUSIVE", "--rate", "19%", "--tax-code", "S19",
         "--tax-ledger-code", "470000002"),
        ("class", "set", "retail", "--tax-profile", "VAT19"),
        ("account", "set", "alice", "--customer-class", "retail", "--customer-code", "C-100", "--timezone", "UTC"),
    ):  # fmt: skip
        result = occ("bill", *args, db)
        assert result.exit_code == 0, result.output
    assert "bill to: - (no name or address: occ bill account set alice --name … --address …)" in result.output
    bad = occ("bill", "account", "set", "alice", "--timezone", "Mars/Olympus", db)
    assert bad.exit_code == 1 and "Mars/Olympus" in bad.output

    issuer = occ("bill", "issuer", "set", "--name", "ACME Telecom GmbH", "--address", "Friedrichstraße 123",
                 "--address", "10117 Berlin", "--vat-id", "DE136695976", "--iban", "DE89 3704 0044 0532 0130 00",
                 "--bic", "COBADEFFXXX", "--bank-name", "Commerzbank", db)  # fmt: skip
    assert issuer.exit_code == 0, issuer.output
    assert issuer.output == (
        "issuer of tenant default: ACME Telecom GmbH / Friedrichstraße 123 / 10117 Berlin / VAT ID DE136695976\n"
        "  pay to: Bank Commerzbank, IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX\n"
        "  customer name and address on its invoices: not required\n")  # fmt: skip
    bad = occ("bill", "issuer", "set", "--iban", "DE00 1234", db)
    assert bad.exit_code == 1 and "--iban: 'DE00 1234' is not a valid IBAN" in bad.output
    customer = occ("bill", "account", "set", "alice", "--name", "Łukasz Żółć", "--address", "ul. Świętokrzyska 12",
                   "--address", "00-916 Warszawa", db)  # fmt: skip
    assert customer.exit_code == 0, customer.output
    assert "bill to: Łukasz Żółć / ul. Świętokrzyska 12 / 00-916 Warszawa" in customer.output

    preview = occ("bill", "run", "--date", "2026-02-01", "--dry-run", db)
    assert preview.exit_code == 0 and "1 previews stored" in preview.output
    shown = occ("bill", "show", "1", "--preview", db)
    assert shown.exit_code == 0 and "PREVIEW 1 (not an invoice)" in shown.output
    assert occ("bill", "show", "1", db).exit_code == 1  # no invoice yet

    result = occ("bill", "run", "--date", "2026-02-01", db)
    assert result.exit_code == 0, result.output
    assert "invoice 00000001" in result.output and "1 invoices issued" in result.output
    csv_path, pdf_path = tmp_path / "i.csv", tmp_path / "i.pdf"
    shown = occ("bill", "show", "00000001", db, "--csv", csv_path, "--pdf", pdf_path)
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "Invoice 00000001" in text and "C-100" in text and "Balance carried forward" in text
    assert "-9.00" in text  # round(1.004 − 10) = round(−8.996) = −9.00, as the lines 1.00 − 10.00: no rounding line
    assert "From:    ACME Telecom GmbH" in text and "Bill to: Łukasz Żółć" in text
    assert "Credit balance 9.00 EUR — nothing to pay" in text and "due" not in text
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert [(r["category"], r["amount"], r["tax"]) for r in rows] == [
        ("CHARGE", "1.00", "0.16"), ("PAYMENT", "-10.00", "0.00"), ("TAX", "0.00", "0.16")]  # fmt: skip
    assert {(r["seller"], r["seller_vat_id"], r["customer_name"]) for r in rows} == {
        ("ACME Telecom GmbH", "DE136695976", "Łukasz Żółć")}  # fmt: skip
    pdf = PdfReader(pdf_path).pages[0].extract_text()
    assert "Invoice 00000001" in pdf and "Łukasz Żółć" in pdf and "Credit balance €9.00 — nothing to pay" in pdf

    again = occ("bill", "run", "--date", "2026-02-01", db)
    assert "0 invoices issued" in again.output
    reissued = occ("bill", "reissue", "00000001", db)
    assert reissued.exit_code == 0 and "revision 1" in reissued.output, reissued.output
    engine.dispose()
