"""The invoice PDF (fpdf2): seller and customer, dates, what to pay, statement block, lines, totals, bank details.

Text is set in DejaVu Sans, embedded (subset) from the system's fonts — Debian's ``fonts-dejavu-core``, which
``scripts/setup.sh`` installs — so every name prints as written ("Łukasz Żółć") and amounts carry the currency's
symbol (€). :func:`find_fonts` says clearly what is missing when the fonts are not there. Every amount column ends at
the page's right margin: the statement block, the lines table and the totals line up.
"""

from __future__ import annotations

import os
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from settlement.billing.cycle import local_date
from settlement.billing.document import InvoiceView, now_utc

NEXT = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}
RIGHT = {"new_x": XPos.RIGHT, "new_y": YPos.TOP}
FONT = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FONT_DIR_VARIABLE = "OCC_INVOICE_FONT_DIR"
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu: fonts-dejavu-core
    Path("/usr/share/fonts/dejavu-sans-fonts"),  # Fedora
    Path("/usr/share/fonts/TTF"),  # Arch
    Path("/usr/local/share/fonts/dejavu"),
)
PAGE_WIDTH_MM = 190  # A4 less fpdf2's default 10 mm margins: every right-aligned column ends here
AMOUNT_MM = 30  # the amount column of the statement block and the totals
LINE_WIDTHS_MM = (22, 70, 13, 20, 20, 15, 30)  # ledger, description, count, units, net, tax, amount
assert sum(LINE_WIDTHS_MM) == PAGE_WIDTH_MM and LINE_WIDTHS_MM[-1] == AMOUNT_MM


class FontMissing(RuntimeError):
    """The PDF's font files are not installed; the message says which package brings them."""


def find_fonts(dirs: tuple[Path, ...] | None = None) -> dict[str, Path]:
    """The DejaVu Sans files by style ("" regular, "B" bold): from ``$OCC_INVOICE_FONT_DIR`` if set, else the first
    of ``dirs`` (default: where Debian, Fedora and Arch install them) that has both."""
    if dirs is None:
        override = os.environ.get(FONT_DIR_VARIABLE)
        dirs = (Path(override),) if override else FONT_DIRS
    for folder in dirs:
        if all((folder / name).is_file() for name in FONT_FILES.values()):
            return {style: folder / name for style, name in FONT_FILES.items()}
    looked = ", ".join(str(d) for d in dirs)
    raise FontMissing(f"invoice PDFs need the fonts {' and '.join(FONT_FILES.values())}, not found in {looked}: "
                      f"install the Debian package fonts-dejavu-core (or set {FONT_DIR_VARIABLE})")  # fmt: skip


def _new_pdf(title: str) -> FPDF:
    pdf = FPDF(format="A4")
    for style, path in find_fonts().items():
        pdf.add_font(FONT, style, str(path))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(title)
    pdf.set_creator("OCC")
    pdf.add_page()
    return pdf


def _parties(pdf: FPDF, view: InvoiceView) -> None:
    """Seller (left) and customer (right), side by side; the name in bold when there is one."""
    (seller, buyer), half = view.party_lines(), PAGE_WIDTH_MM / 2
    named = (bool(view.seller.name), bool(view.buyer.name))
    top, bottoms = pdf.get_y(), []
    for column, (heading, lines, bold_first) in enumerate((("From", seller, named[0]), ("Bill to", buyer, named[1]))):
        pdf.set_xy(pdf.l_margin + column * half, top)
        pdf.set_font(FONT, "B", 9)
        pdf.cell(half, 5, heading, new_x=XPos.LEFT, new_y=YPos.NEXT)
        for i, line in enumerate(lines):
            pdf.set_font(FONT, "B" if i == 0 and bold_first else "", 9)
            pdf.multi_cell(half - 4, 4.5, line, new_x=XPos.LEFT, new_y=YPos.NEXT)
        bottoms.append(pdf.get_y())
    pdf.set_xy(pdf.l_margin, max(bottoms) + 4)


def _facts(pdf: FPDF, view: InvoiceView) -> None:
    h, d = view.header, view.dates()
    facts = [
        ("Customer", f"{h['customer_code']} (account {h['account']})"),
        ("Billing period", f"{d['period']} ({h['timezone']})"),
        ("Issue date", d["issued"]),
        ("Amounts in", h["currency"]),
        ("Tax", f"{h['tax_profile'] or 'none'} ({h['tax_mode'].lower()})"),
    ]
    if not view.preview:
        facts.append(("State", h["state"] + (f" — {h['state_reason']}" if h["state_reason"] else "")))
    for label, value in facts:
        pdf.set_font(FONT, "B", 10)
        pdf.cell(40, 6, label, **RIGHT)
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(PAGE_WIDTH_MM - 40, 6, value[:300], **NEXT)
    pdf.ln(2)
    pdf.set_font(FONT, "B", 12)
    pdf.cell(PAGE_WIDTH_MM, 9, view.payment(symbol=True), border=1, align="C", **NEXT)
    pdf.ln(4)


def _statement(pdf: FPDF, view: InvoiceView) -> None:
    pdf.set_font(FONT, "B", 12)
    pdf.cell(0, 8, "Statement", **NEXT)
    statement = view.statement()
    for i, (label, amount) in enumerate(statement):
        last = i == len(statement) - 1
        pdf.set_font(FONT, "B" if last else "", 10)
        pdf.cell(PAGE_WIDTH_MM - AMOUNT_MM, 6, label, border="T" if last else 0, **RIGHT)
        pdf.cell(AMOUNT_MM, 6, view.money(amount), border="T" if last else 0, align="R", **NEXT)
    pdf.ln(4)


def _lines(pdf: FPDF, view: InvoiceView) -> None:
    h = view.header
    pdf.set_font(FONT, "B", 12)
    pdf.cell(0, 8, "Lines", **NEXT)
    heads = ("Ledger", "Description", "Count", "Units", "Net", "Tax", "Amount")
    pdf.set_font(FONT, "B", 8)
    pdf.set_fill_color(230, 230, 230)
    for width, title in zip(LINE_WIDTHS_MM, heads, strict=True):
        pdf.cell(width, 6, title, border="B", fill=True, align="L" if title in ("Ledger", "Description") else "R",
                 **RIGHT)  # fmt: skip
    pdf.ln(6)
    pdf.set_font(FONT, "", 8)
    for line in view.lines:
        description = line["description"]
        if line["reference"] and line["category"] in ("PAYMENT", "ADJUSTMENT"):
            when = local_date(line["time_ms"], h["timezone"]).isoformat() if line["time_ms"] is not None else ""
            description = f"{when} {description} ({line['reference']})"
        cells = (line["ledger_code"], description[:48], str(line["count"] or ""), str(line["units"] or ""),
                 view.money(line["net"]), view.money(line["tax"]), view.money(line["amount"]))  # fmt: skip
        for j, (width, value) in enumerate(zip(LINE_WIDTHS_MM, cells, strict=True)):
            pdf.cell(width, 5, value, align="L" if j < 2 else "R", **RIGHT)
        pdf.ln(5)
    pdf.ln(3)


def _totals(pdf: FPDF, view: InvoiceView) -> None:
    h = view.header
    pdf.set_font(FONT, "B", 10)
    tax_label = {"INCLUSIVE": "Tax (included)", "PREPAID": "Tax (taken from top-ups)"}.get(h["tax_mode"], "Tax")
    for label, amount in (("Charges", h["charges"]), (tax_label, h["tax"]),
                          ("Balance carried forward", h["carried_forward"])):  # fmt: skip
        pdf.cell(PAGE_WIDTH_MM - AMOUNT_MM, 6, label, align="R", **RIGHT)
        pdf.cell(AMOUNT_MM, 6, view.money(amount), align="R", **NEXT)
    pdf.ln(6)


def close_fonts(pdf: FPDF) -> None:
    """Close the font files fpdf2's fontTools reader keeps open (lazily read) once the PDF is written."""
    for font in pdf.fonts.values():
        reader = getattr(font, "ttfont", None)
        if reader is not None:
            reader.close()


def render(view: InvoiceView) -> bytes:
    """The PDF of ``view`` as bytes; raises :class:`FontMissing` when the fonts are not installed."""
    pdf = _new_pdf(view.title)
    try:
        return _render(pdf, view)
    finally:
        close_fonts(pdf)


def _render(pdf: FPDF, view: InvoiceView) -> bytes:
    pdf.set_font(FONT, "B", 16)
    pdf.cell(0, 9, view.title, **NEXT)
    pdf.ln(2)
    _parties(pdf, view)
    _facts(pdf, view)
    _statement(pdf, view)
    _lines(pdf, view)
    _totals(pdf, view)
    pdf.set_font(FONT, "", 7)
    notes = ["Amounts are rounded to the currency (half up); any difference is shown as a rounding line.",
             f"Generated {now_utc()}."]  # fmt: skip
    for note in notes:
        pdf.cell(0, 4, note, **NEXT)
    return bytes(pdf.output())
