"""An invoice (or preview) as people read it: loaded from SQL, printed as a statement, written as CSV of lines.

The statement block reads top to bottom like a bank statement::

    Balance brought forward            -8.17
    Charges                             2.00
    Tax added                           0.40
    Payments                            0.00
    Adjustments                         0.00
    Balance carried forward            -5.77

Every output names the seller (the tenant's issuer) and the customer as they were when the invoice was issued, or
says that they are not configured, and ends with what the customer has to do: "Amount payable 5.77 EUR by
2026-02-15", or "Credit balance 5.77 EUR — nothing to pay" when the balance carried forward is a credit.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import msgspec
from babel.numbers import get_currency_symbol
from sqlalchemy import Connection, select

from settlement.billing.amounts import format_amount
from settlement.billing.cycle import DUE_AFTER, describe, local_date
from settlement.billing.erp import invoice_number
from settlement.billing.parties import Party, bank_lines, decode, printable_lines
from settlement.store.schema import invoice_lines, invoices, preview_invoice_lines, preview_invoices
from settlement.vocabulary import TaxMode


class InvoiceView(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice's header (an ``invoices`` / ``preview_invoices`` row as a dict) and its lines (dicts)."""

    header: dict[str, Any]
    lines: tuple[dict[str, Any], ...]
    preview: bool

    @property
    def title(self) -> str:
        h = self.header
        if self.preview:
            return f"PREVIEW {h['id']} (not an invoice)"
        if h["number"] is None:
            return f"DRAFT {h['id']} (not numbered)"
        revision = f" revision {h['revision']}" if h["revision"] else ""
        return f"Invoice {invoice_number(h['number'])}{revision}"

    def money(self, micros: int) -> str:
        return format_amount(micros, self.header["currency"])

    @property
    def seller(self) -> Party:
        return decode(self.header.get("seller"))

    @property
    def buyer(self) -> Party:
        return decode(self.header.get("buyer"))

    def payment(self, *, symbol: bool = False) -> str:
        """What the customer has to do: pay the balance by the due date, or nothing (a credit or a zero balance).
        ``symbol``: the currency's symbol (``€``) instead of its code, for fonts that have it."""
        carried, currency = self.header["carried_forward"], self.header["currency"]
        unit, figure = get_currency_symbol(currency, locale="en") if symbol else currency, self.money(abs(carried))
        amount = f"{unit}{figure}" if unit != currency else f"{figure} {currency}"  # €5.77, 5.77 EUR, 5.77 PLN
        if carried > 0:
            return f"Amount payable {amount} by {self.dates()['due']}"
        if carried < 0:
            return f"Credit balance {amount} — nothing to pay"
        return "Balance settled — nothing to pay"

    def party_lines(self) -> tuple[list[str], list[str]]:
        """The seller's and the customer's printed lines, or what is missing."""
        seller = printable_lines(self.seller) or ["Seller details not configured (occ bill issuer set): "
                                                  "not a valid tax invoice"]  # fmt: skip
        seller += bank_lines(self.seller)
        buyer = printable_lines(self.buyer) or [f"No customer name or address (occ bill account set "
                                                f"{self.header['account']} --name … --address …)"]  # fmt: skip
        return seller, buyer

    def statement(self) -> list[tuple[str, int]]:
        h = self.header
        rows = [("Balance brought forward", h["brought_forward"]), ("Charges", h["charges"])]
        if h["tax_mode"] == TaxMode.EXCLUSIVE:
            rows.append(("Tax added", h["tax"]))
        elif h["tax_mode"] == TaxMode.PREPAID and h["tax"]:
            rows.append(("Tax taken from top-ups", h["tax"]))
        rows += [("Payments", h["payments"]), ("Adjustments", h["adjustments"])]
        if h["rounding"]:
            rows.append(("Rounding", h["rounding"]))
        rows.append(("Balance carried forward", h["carried_forward"]))
        return rows

    def dates(self) -> dict[str, str]:
        h = self.header
        issued = local_date(h["created_ms"], h["timezone"])
        return {"period": describe(h["period_start_ms"], h["period_end_ms"], h["timezone"]),
                "issued": issued.isoformat(), "due": (issued + DUE_AFTER).isoformat()}  # fmt: skip


def load(connection: Connection, invoice_id: int, *, preview: bool = False) -> InvoiceView | None:
    head, body = (preview_invoices, preview_invoice_lines) if preview else (invoices, invoice_lines)
    row = connection.execute(select(head).where(head.c.id == invoice_id)).first()
    if row is None:
        return None
    lines = connection.execute(select(body).where(body.c.invoice_id == invoice_id).order_by(body.c.line_number))
    return InvoiceView(header=dict(row._mapping), lines=tuple(dict(r._mapping) for r in lines), preview=preview)


def find(connection: Connection, reference: str) -> int | None:
    """An invoice id from ``reference``: an id, or ``tenant:number`` / a number (its newest revision)."""
    tenant, _, number = reference.rpartition(":")
    if not number.isdigit():
        return None
    query = select(invoices.c.id).where(invoices.c.number == int(number))
    if tenant:
        query = query.where(invoices.c.tenant == tenant)
    by_number = connection.execute(query.order_by(invoices.c.revision.desc()).limit(1)).scalar()
    if tenant or len(number) == 8:
        return by_number
    by_id = connection.execute(select(invoices.c.id).where(invoices.c.id == int(number))).scalar()
    return by_id if by_id is not None else by_number


def _when(time_ms: int | None, tz: str) -> str:
    return "" if time_ms is None else local_date(time_ms, tz).isoformat()


DESCRIPTION = 52  # characters of a line's description in the terminal (a late line: "Late usage voice (…) of <day>")
TABLE_WIDTH = 84 + DESCRIPTION  # the lines table's width in text(): the statement's amounts end at the same column


def text(view: InvoiceView) -> str:
    """The statement for a terminal."""
    h, d = view.header, view.dates()
    out = [view.title, "=" * len(view.title)]
    seller, buyer = view.party_lines()
    out.append(f"From:    {seller[0]}")
    out.extend(f"         {line}" for line in seller[1:])
    out.append(f"Bill to: {buyer[0]}")
    out.extend(f"         {line}" for line in buyer[1:])
    out.append(f"Customer {h['customer_code']} (account {h['account']}), tenant {h.get('tenant', '')}")
    out.append(f"Period {d['period']} ({h['timezone']}); issued {d['issued']}; amounts in {h['currency']}")
    tax = h["tax_profile"] or "none"
    items = f"{h['xdr_count']} item{'' if h['xdr_count'] == 1 else 's'}"
    late = f" ({h['late_items']} late: billed after their period was invoiced)" if h.get("late_items") else ""
    out.append(f"Kind {h['kind']}; tax profile {tax} ({h['tax_mode']}); {items}{late}")
    if not view.preview:
        reason = f": {h['state_reason']}" if h["state_reason"] else ""
        replaces = f"; replaces invoice id {h['replaces']}" if h["replaces"] else ""
        out.append(f"State {h['state']}{reason}{replaces}")
    out.append(view.payment())
    out.append("")
    for label, amount in view.statement():
        out.append(f"  {label:<{TABLE_WIDTH - 2 - 16}}{view.money(amount):>16}")
    out.append("")
    out.append(f"  {'#':>3} {'category':<11} {'ledger':<10} {'description':<{DESCRIPTION}} {'count':>6} {'units':>10} "
               f"{'net':>12} {'tax':>10} {'amount':>12}")  # fmt: skip
    for line in view.lines:
        desc = line["description"]
        if line["time_ms"] is not None:
            desc = f"{_when(line['time_ms'], h['timezone'])} {desc} {line['reference']}".strip()
        out.append(f"  {line['line_number']:>3} {line['category']:<11} {line['ledger_code']:<10} "
                   f"{desc[:DESCRIPTION]:<{DESCRIPTION}} "
                   f"{line['count']:>6} {line['units']:>10} {view.money(line['net']):>12} "
                   f"{view.money(line['tax']):>10} {view.money(line['amount']):>12}")  # fmt: skip
    return "\n".join(out) + "\n"


CSV_FIELDS = ("invoice", "revision", "line", "category", "ledger_code", "description", "count", "units", "net", "tax",
              "amount", "tax_code", "tax_rate", "date", "reference", "currency", "seller", "seller_vat_id",
              "customer_name", "customer_address", "customer_vat_id")  # fmt: skip


def csv_text(view: InvoiceView) -> str:
    """The lines as CSV (amounts rounded to the currency, as printed), each with the invoice's parties."""
    h = view.header
    seller, buyer = view.seller, view.buyer
    parties = [seller.name, seller.vat_id, buyer.name, "; ".join(buyer.address), buyer.vat_id]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    label = invoice_number(h["number"]) if not view.preview and h["number"] is not None else f"{h['id']}"
    for line in view.lines:
        writer.writerow([
            label, h.get("revision", 0), line["line_number"], line["category"], line["ledger_code"],
            line["description"], line["count"], line["units"], view.money(line["net"]), view.money(line["tax"]),
            view.money(line["amount"]), line["tax_code"], f"{line['tax_rate_ppm'] / 10_000:g}%",
            _when(line["time_ms"], h["timezone"]), line["reference"], h["currency"], *parties,
        ])  # fmt: skip
    return buffer.getvalue()


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
