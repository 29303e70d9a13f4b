"""The invoice as a finance clerk reads it: a Polish name and the euro sign print as written (an embedded Unicode
font, read back with pypdf), a credit balance says there is nothing to pay, a balance due says by when, and the
amounts of the statement, the lines and the totals end at one right edge (PDF and text)."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from datetime import date

import pytest
from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from fpdf import FPDF
from pypdf import PdfReader

from settlement.billing import document
from settlement.billing.pdf import FONT, FontMissing, close_fonts, find_fonts, render
from settlement.billing.run import run
from settlement.billing.setup import set_issuer

MM_PER_PT = 25.4 / 72
AMOUNT = re.compile(r"-?\d+\.\d\d")


def invoice_of(store, *, payment: str | None = None) -> document.InvoiceView:
    """Łukasz Żółć's January invoice, in EUR, 20 % VAT on 4.00 of calls (and a payment, if given)."""
    add_profiles(store)
    with store.begin() as c:
        set_issuer(c, "default", name="ACME Telecom GmbH", address=("Friedrichstraße 123", "10117 Berlin"),
                   vat_id="DE136695976", iban="DE89370400440532013000", bic="COBADEFFXXX")  # fmt: skip
    add_account(store, "lz", tax_profile="VAT20", customer_name="Łukasz Żółć",
                customer_address=("ul. Świętokrzyska 12", "00-916 Warszawa"))  # fmt: skip
    items = [xdr("lz", "session", euros("4.00"), "400000001", ms(2026, 1, 10), units=270)]
    if payment:
        items.append(xdr("lz", "payment", euros(payment), "400000010", ms(2026, 1, 11)))
    add_xdrs(store, items)
    assert run(store, date(2026, 2, 1)).issued == 1
    with store.connect() as c:
        return document.load(c, document.find(c, "00000001"))


def page_text(pdf: bytes) -> str:
    return PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_a_polish_name_and_the_euro_sign_print_as_written(store):
    view = invoice_of(store)
    pdf = render(view)
    text = page_text(pdf)
    assert "Łukasz Żółć" in text and "ul. Świętokrzyska 12" in text and "Friedrichstraße 123" in text
    assert f"Amount payable €4.80 by {view.dates()['due']}" in text  # 4.00 + 20 %
    assert "?" not in text and "EUR4" not in text
    assert "VAT ID DE136695976" in text and "IBAN DE89 3704 0044 0532 0130 00" in text
    fonts = PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]["/Font"]
    names = {str(font.get_object()["/BaseFont"]) for font in fonts.values()}
    assert {name.split("+")[-1] for name in names} == {"DejaVuSansBook", "DejaVuSansBold"}  # embedded subsets


def test_a_credit_balance_has_nothing_to_pay_and_no_due_date(store):
    view = invoice_of(store, payment="-10")
    text = page_text(render(view))
    assert "Credit balance €5.20 — nothing to pay" in text  # 4.80 − 10.00
    assert "payable" not in text.lower() and view.dates()["due"] not in text
    assert view.payment() == "Credit balance 5.20 EUR — nothing to pay"  # the text statement's wording


def test_statement_lines_and_totals_end_at_one_right_edge(store):
    view = invoice_of(store, payment="-1")
    pdf = render(view)
    segments: list[tuple[str, float, float, str, float]] = []  # text, x (pt), y (pt), style, size

    def visit(text, cm, tm, font, size):  # type: ignore[no-untyped-def]
        if AMOUNT.fullmatch(text.strip()):
            style = "B" if "Bold" in str(font["/BaseFont"]) else ""
            segments.append((text.strip(), tm[4], tm[5], style, size * tm[0]))

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    measure = FPDF()
    for style, path in find_fonts().items():
        measure.add_font(FONT, style, str(path))
    rightmost: dict[float, float] = defaultdict(float)  # per printed row, where its last amount ends (mm)
    for text, x, y, style, size in segments:
        measure.set_font(FONT, style, size)
        rightmost[round(y, 1)] = max(rightmost[round(y, 1)], x * MM_PER_PT + measure.get_string_width(text))
    close_fonts(measure)
    assert len(rightmost) >= 12  # 6 statement rows, 4 lines, 3 totals
    assert max(rightmost.values()) - min(rightmost.values()) < 0.05, rightmost  # mm


def test_the_text_statement_s_amounts_end_where_the_lines_table_ends(store):
    printed = document.text(invoice_of(store, payment="-1"))
    ends = {len(line) for line in printed.splitlines()
            if line.startswith("  ") and AMOUNT.fullmatch(line.split()[-1])}  # fmt: skip
    assert len(ends) == 1, ends
    assert "Amount payable 3.80 EUR by " in printed


def test_missing_fonts_are_named_with_the_package_that_brings_them(store, tmp_path, monkeypatch):
    view = invoice_of(store)
    monkeypatch.setenv("OCC_INVOICE_FONT_DIR", str(tmp_path))
    with pytest.raises(FontMissing, match=r"DejaVuSans.ttf and DejaVuSans-Bold.ttf, not found in .*fonts-dejavu-core"):
        render(view)
    with pytest.raises(FontMissing, match=str(tmp_path)):
        find_fonts((tmp_path,))
