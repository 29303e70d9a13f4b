"""E-invoices from the store: ``occ bill einvoice`` reads an issued invoice here and gets its document checked.

Formats: ``ubl`` (UBL 2.1 XML), ``cii`` (the CII XML alone), ``facturx`` (the invoice PDF as Factur-X PDF/A-3, the
CII XML embedded; invoices only: OCC renders no credit note PDF). Every document is validated against its XSD before
it is returned.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Connection, select

from settlement.billing import einvoice, facturx, ubl
from settlement.billing.document import load as load_view
from settlement.store.schema import invoice_lines, invoices

Format = Literal["ubl", "cii", "facturx"]
FORMATS: tuple[Format, ...] = ("ubl", "cii", "facturx")


def _rows(connection: Connection, invoice_id: int):  # type: ignore[no-untyped-def]
    row = connection.execute(select(invoices).where(invoices.c.id == invoice_id)).one()
    lines = connection.execute(select(invoice_lines).where(invoice_lines.c.invoice_id == invoice_id)
                               .order_by(invoice_lines.c.line_number)).all()  # fmt: skip
    return row, lines


def build(connection: Connection, invoice_id: int, *, credit_note: bool = False,
          buyer_country: str = "") -> einvoice.EInvoice:  # fmt: skip
    """The e-invoice of invoice row ``invoice_id``; ``credit_note``: the credit note issued with that revision (it
    credits the revision it replaced). Raises :class:`~settlement.billing.einvoice.EInvoiceError`."""
    row, lines = _rows(connection, invoice_id)
    if not credit_note:
        return einvoice.build(row, lines, buyer_country=buyer_country)
    if row.replaces is None:
        raise einvoice.EInvoiceError(f"invoice {einvoice.document_number(row)} replaces no earlier revision: "
                                     "no credit note was issued with it")  # fmt: skip
    credited, credited_lines = _rows(connection, row.replaces)
    return einvoice.build(credited, credited_lines, buyer_country=buyer_country, credit_note_issued=row)


def render(connection: Connection, invoice_id: int, form: Format, *, credit_note: bool = False,
           buyer_country: str = "") -> bytes:  # fmt: skip
    """The document in ``form``, validated against its schema."""
    document = build(connection, invoice_id, credit_note=credit_note, buyer_country=buyer_country)
    if form == "ubl":
        xml = ubl.render(document)
        facturx.check(xml, "ubl", document.type_code)
        return xml
    if form == "cii":
        xml = facturx.render_xml(document)
        facturx.check(xml, "cii", document.type_code)
        return xml
    if credit_note:
        raise einvoice.EInvoiceError("a Factur-X credit note needs a credit note PDF, which OCC does not render: "
                                     "use --format ubl or cii")  # fmt: skip
    from settlement.billing.pdf import render as render_invoice_pdf

    view = load_view(connection, invoice_id)
    assert view is not None  # build() read the same row
    return facturx.render_pdf(document, render_invoice_pdf(view))
