"""The invoice PDF (fpdf2, built-in Helvetica: no font files): header, period, statement block, lines, taxes, totals."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from settlement.billing.cycle import local_date
from settlement.billing.document import InvoiceView, now_utc
from settlement.vocabulary import TaxMode

NEXT = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}
RIGHT = {"new_x": XPos.RIGHT, "new_y": YPos.TOP}
TAX_LABELS = {TaxMode.EXCLUSIVE: "Tax", TaxMode.PREPAID: "Tax (taken from top-ups)"}  # else: "Tax (included)"


def _latin1(text: str) -> str:
    """Helvetica speaks Latin-1: replace what it cannot show."""
    text = text.replace("–", "-").replace("—", "-").replace("€", "EUR").replace("−", "-")
    return text.encode("latin-1", "replace").decode("latin-1")


def render(view: InvoiceView, *, issuer: str = "OCC billing") -> bytes:
    """The PDF of ``view`` as bytes."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(_latin1(view.title))
    pdf.set_creator("OCC")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _latin1(view.title), **NEXT)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, _latin1(issuer), **NEXT)
    pdf.ln(3)
    _facts(pdf, view)
    _statement(pdf, view)
    _lines(pdf, view)
    _totals(pdf, view)
    pdf.set_font("Helvetica", "I", 7)
    note = "Amounts are rounded to the currency (half up); any difference is shown as a rounding line."
    pdf.cell(0, 4, note, **NEXT)
    pdf.cell(0, 4, f"Generated {now_utc()}.", **NEXT)
    return bytes(pdf.output())


def _facts(pdf: FPDF, view: InvoiceView) -> None:
    """Customer, period, dates, currency, tax (and state): label and value, one a line."""
    h, d = view.header, view.dates()
    facts = [
        ("Customer", f"{h['customer_code']} (account {h['account']})"),
        ("Billing period", f"{d['period']} ({h['timezone']})"),
        ("Issue date", d["issued"]),
        ("Due date", d["due"]),
        ("Currency", h["currency"]),
        ("Tax", f"{h['tax_profile'] or 'none'} ({h['tax_mode'].lower()})"),
    ]
    if not view.preview:
        facts.append(("State", h["state"] + (f" - {h['state_reason']}" if h["state_reason"] else "")))
    for label, value in facts:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(40, 6, _latin1(label), **RIGHT)
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(0, 6, _latin1(value[:100]), **NEXT)
    pdf.ln(4)


def _statement(pdf: FPDF, view: InvoiceView) -> None:
    """The bank-statement block: brought forward, movements, carried forward (the last one ruled off)."""
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Statement", **NEXT)
    statement = view.statement()
    for i, (label, amount) in enumerate(statement):
        last = i == len(statement) - 1
        pdf.set_font("Helvetica", "B" if last else "", 10)
        pdf.cell(120, 6, label, border="T" if last else 0, **RIGHT)
        pdf.cell(40, 6, view.money(amount), border="T" if last else 0, align="R", **NEXT)
    pdf.ln(4)


def _lines(pdf: FPDF, view: InvoiceView) -> None:
    """The table of lines (payments and adjustments with their date and reference)."""
    h = view.header
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Lines", **NEXT)
    widths = (22, 74, 14, 20, 20, 16, 24)
    heads = ("Ledger", "Description", "Count", "Units", "Net", "Tax", "Amount")
    pdf.set_font("Helvetica", "B", 8)
    pdf.set_fill_color(230, 230, 230)
    for width, title in zip(widths, heads, strict=True):
        pdf.cell(width, 6, title, border="B", fill=True, align="L" if title in ("Ledger", "Description") else "R",
                 **RIGHT)  # fmt: skip
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 8)
    for line in view.lines:
        description = line["description"]
        if line["reference"] and line["category"] in ("PAYMENT", "ADJUSTMENT"):
            when = local_date(line["time_ms"], h["timezone"]).isoformat() if line["time_ms"] is not None else ""
            description = f"{when} {description} ({line['reference']})"
        cells = (line["ledger_code"], _latin1(description)[:52], str(line["count"] or ""), str(line["units"] or ""),
                 view.money(line["net"]), view.money(line["tax"]), view.money(line["amount"]))  # fmt: skip
        for j, (width, value) in enumerate(zip(widths, cells, strict=True)):
            pdf.cell(width, 5, value, align="L" if j < 2 else "R", **RIGHT)
        pdf.ln(5)
    pdf.ln(3)


def _totals(pdf: FPDF, view: InvoiceView) -> None:
    """Charges, tax (labelled by how it applies) and the balance carried forward."""
    h = view.header
    pdf.set_font("Helvetica", "B", 10)
    tax_label = TAX_LABELS.get(h["tax_mode"], "Tax (included)")
    totals = [("Charges", h["charges"]), (tax_label, h["tax"]),
              ("Balance carried forward", h["carried_forward"])]  # fmt: skip
    for label, amount in totals:
        pdf.cell(150, 6, label, align="R", **RIGHT)
        pdf.cell(40, 6, f"{view.money(amount)} {h['currency']}", align="R", **NEXT)
    pdf.ln(6)
