"""The ledger report for people: a terminal table, CSV, and an A4 landscape PDF (fpdf2, DejaVu Sans as the invoice
PDF) with a bar chart of each month's charges, taxes, payments and adjustments.

Every month ends with its total row and its two tie-out lines (``must be 0.00``); a line that is not zero is marked
``DOES NOT TIE OUT``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from settlement.billing.amounts import format_amount
from settlement.billing.document import now_utc
from settlement.billing.pdf import FONT, close_fonts, find_fonts
from settlement.reports.ledger import COLUMNS, LedgerReport, LedgerRow, MonthTieOut

HEADINGS = ("month", "ledger code", "opening", *COLUMNS, "closing")
CHART = {"charges": (52, 101, 164), "taxes": (230, 145, 56), "payments": (80, 160, 90), "adjustments": (160, 80, 150)}
NEXT = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}
RIGHT = {"new_x": XPos.RIGHT, "new_y": YPos.TOP}


def _amounts(row: LedgerRow) -> list[int]:
    return [row.opening, *(getattr(row, c) for c in COLUMNS), row.closing]


def _total(rows: list[LedgerRow], tie: MonthTieOut) -> LedgerRow:
    sums = {c: sum(getattr(r, c) for r in rows) for c in COLUMNS}
    return LedgerRow(currency=tie.currency, month=tie.month, ledger_code="total",
                     opening=sum(r.opening for r in rows), **sums)  # fmt: skip


def tie_out_lines(tie: MonthTieOut) -> list[tuple[str, int]]:
    """The month's tie-out lines (two; three with the journals), each with its difference (must be 0)."""
    money = lambda micros: format_amount(micros, tie.currency)  # noqa: E731
    pending = f", {tie.erp_pending} not yet accepted" if tie.erp_pending else ""
    lines = [
        (f"tie-out to {tie.invoices} invoice(s): ledger {money(tie.movement)} − invoices {money(tie.invoiced)}",
         tie.invoice_difference),
        (f"tie-out to {tie.erp_documents} ERP document(s){pending}: sent {money(tie.erp_sent)} − invoices' sales "
         f"{money(tie.erp_expected)}", tie.erp_difference),
    ]  # fmt: skip
    if tie.journals_checked:
        waiting = f", {tie.journal_pending} not yet accepted" if tie.journal_pending else ""
        lines.append((f"tie-out to {tie.journal_documents} ERP journal(s){waiting}: posted {money(tie.journal_sent)}"
                      f" − payments, adjustments and prepaid tax billed {money(tie.journal_expected)}",
                      tie.journal_difference))  # fmt: skip
    return lines


def _months(report: LedgerReport) -> Iterator[tuple[MonthTieOut, list[LedgerRow], LedgerRow]]:
    for tie in report.months:
        rows = [r for r in report.rows if (r.currency, r.month) == (tie.currency, tie.month)]
        yield tie, rows, _total(rows, tie)


def text(report: LedgerReport) -> str:
    """The report as a terminal table."""
    out = [f"Ledger report {report.start} – {report.end} (invoices by the month their period starts in)", ""]
    widths = (7, 15, *([13] * (len(HEADINGS) - 2)))
    line = lambda cells: "  ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}"  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths, strict=True)))  # fmt: skip
    for tie, rows, total in _months(report):
        out.append(f"{tie.month} ({tie.currency})")
        out.append(line(HEADINGS))
        for row in [*rows, total]:
            out.append(line([row.month, row.ledger_code, *(format_amount(a, row.currency) for a in _amounts(row))]))
        for label, difference in tie_out_lines(tie):
            verdict = "" if difference == 0 else "  DOES NOT TIE OUT"
            out.append(f"  {label} = {format_amount(difference, tie.currency)} (must be 0){verdict}")
        out.append("")
    if not report.months:
        out.append("no issued invoice has a period starting in these dates")
    out.append("ties out" if report.ties_out else "DOES NOT TIE OUT")
    return "\n".join(out) + "\n"


CSV_FIELDS = ("currency", "month", "ledger_code", "opening", *COLUMNS, "closing", "tie_out_invoices",
              "tie_out_erp", "tie_out_journals")  # fmt: skip


def csv_text(report: LedgerReport) -> str:
    """One row per (currency, month, ledger code), then the month's ``total`` row carrying the tie-out differences
    (empty on the ledger code rows; ``tie_out_journals`` empty when the journals were not checked)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for tie, rows, total in _months(report):
        for row in rows:
            writer.writerow([row.currency, row.month, row.ledger_code,
                             *(format_amount(a, row.currency) for a in _amounts(row)), "", "", ""])  # fmt: skip
        journals = format_amount(tie.journal_difference, tie.currency) if tie.journals_checked else ""
        writer.writerow([total.currency, total.month, "total",
                         *(format_amount(a, total.currency) for a in _amounts(total)),
                         format_amount(tie.invoice_difference, tie.currency),
                         format_amount(tie.erp_difference, tie.currency), journals])  # fmt: skip
    return buffer.getvalue()


def _chart(pdf: FPDF, report: LedgerReport, currency: str) -> None:
    """Grouped bars per month (charges, taxes, payments, adjustments), a zero axis, a legend."""
    totals = [(tie.month, total) for tie, _, total in _months(report) if tie.currency == currency]
    values = [getattr(total, c) for _, total in totals for c in CHART]
    top, bottom = max([0, *values]), min([0, *values])
    span = (top - bottom) or 1
    x0, y0, width, height = pdf.l_margin + 20, pdf.get_y() + 4, 230.0, 70.0
    zero = y0 + height * top / span
    pdf.set_font(FONT, "", 7)
    pdf.set_draw_color(0, 0, 0)
    pdf.line(x0, zero, x0 + width, zero)
    for y, label in ((y0, top), (zero, 0), (y0 + height, bottom)):
        pdf.set_xy(pdf.l_margin, y - 2)
        pdf.cell(19, 4, format_amount(label, currency), align="R")
    group = width / max(1, len(totals))
    bar = group / (len(CHART) + 1)
    for i, (month, total) in enumerate(totals):
        for j, (column, colour) in enumerate(CHART.items()):
            amount = getattr(total, column)
            bar_height = height * abs(amount) / span
            pdf.set_fill_color(*colour)
            x = x0 + i * group + (j + 0.5) * bar
            pdf.rect(x, zero - bar_height if amount > 0 else zero, bar * 0.9, bar_height, style="F")
        pdf.set_xy(x0 + i * group, y0 + height + 1)
        pdf.cell(group, 4, month, align="C")
    pdf.set_xy(x0, y0 + height + 7)
    for column, colour in CHART.items():
        pdf.set_fill_color(*colour)
        pdf.rect(pdf.get_x(), pdf.get_y() + 1, 3, 3, style="F")
        pdf.set_x(pdf.get_x() + 4)
        pdf.cell(30, 5, column, **RIGHT)
    pdf.set_xy(pdf.l_margin, y0 + height + 14)


def _table(pdf: FPDF, report: LedgerReport) -> None:
    widths = (16, 28, *([26] * (len(HEADINGS) - 2)))
    for tie, rows, total in _months(report):
        if pdf.get_y() + 5 * (len(rows) + 4) + 10 > pdf.page_break_trigger:  # keep a month on one page
            pdf.add_page()
        pdf.set_font(FONT, "B", 10)
        pdf.cell(0, 7, f"{tie.month} ({tie.currency})", **NEXT)
        pdf.set_font(FONT, "B", 8)
        pdf.set_fill_color(230, 230, 230)
        for i, (width, title) in enumerate(zip(widths, HEADINGS, strict=True)):
            pdf.cell(width, 5, title, border="B", fill=True, align="L" if i < 2 else "R", **RIGHT)
        pdf.ln(5)
        for row in [*rows, total]:
            pdf.set_font(FONT, "B" if row is total else "", 8)
            cells = [row.month, row.ledger_code, *(format_amount(a, row.currency) for a in _amounts(row))]
            for i, (width, value) in enumerate(zip(widths, cells, strict=True)):
                pdf.cell(width, 5, value, border="T" if row is total else 0, align="L" if i < 2 else "R", **RIGHT)
            pdf.ln(5)
        pdf.set_font(FONT, "", 8)
        for label, difference in tie_out_lines(tie):
            verdict = "" if difference == 0 else " — DOES NOT TIE OUT"
            pdf.cell(0, 5, f"{label} = {format_amount(difference, tie.currency)} (must be 0){verdict}", **NEXT)
        pdf.ln(3)


def pdf_bytes(report: LedgerReport) -> bytes:
    """The report as a PDF: title, one chart per currency, the tables with their tie-out lines."""
    pdf = FPDF(orientation="landscape", format="A4")
    try:
        for style, path in find_fonts().items():
            pdf.add_font(FONT, style, str(path))
        pdf.set_title(f"Ledger report {report.start} – {report.end}")
        pdf.set_creator("OCC")
        pdf.add_page()
        pdf.set_font(FONT, "B", 14)
        pdf.cell(0, 9, f"Ledger report {report.start} – {report.end}", **NEXT)
        pdf.set_font(FONT, "", 8)
        verdict = "Ties out." if report.ties_out else "DOES NOT TIE OUT."
        pdf.cell(0, 5, f"Invoices by the month their period starts in. {verdict} Generated {now_utc()}.", **NEXT)
        for currency in sorted({m.currency for m in report.months}):
            pdf.set_font(FONT, "B", 10)
            pdf.cell(0, 7, f"Per month, {currency}", **NEXT)
            _chart(pdf, report, currency)
        _table(pdf, report)
        return bytes(pdf.output())
    finally:
        close_fonts(pdf)
