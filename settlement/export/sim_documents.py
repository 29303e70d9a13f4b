"""What ``occ erp-sim`` reads out of a request: the documents in it, and what an ERP would refuse in them.

The request body was validated against ``erp.xsd`` before any of this runs, so elements the schema requires are
there and typed. :func:`document_from_xml` and :func:`journal_from_xml` rebuild OCC's own records (so the checks
are OCC's: :func:`~settlement.export.document.arithmetic_problems`,
:func:`~settlement.export.journal.balance_problems`); :func:`erp_fields` keeps the optional ERP fields (base document,
series, payment terms, VAT id, exchange rate, memo; per line unit of measure, cost centre, project) as sent.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree

from settlement.export.document import ErpDocument, ErpLine, ErpParty, arithmetic_problems
from settlement.export.journal import ErpJournal, JournalLine, balance_problems
from settlement.export.soap_client import NAMESPACE

HEADER_FIELDS = ("series", "paymentTerms", "customerVatId", "memo")
LINE_FIELDS = ("unitOfMeasure", "costCentre", "project")


def qname(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def child_text(node: etree._Element, name: str) -> str:
    found = node.find(qname(name))
    return "" if found is None or found.text is None else found.text


def _period(node: etree._Element, name: str) -> tuple[date, date]:
    period = node.find(qname(name))
    return date.fromisoformat(child_text(period, "start")), date.fromisoformat(child_text(period, "end"))


def _party(node: etree._Element | None) -> ErpParty | None:
    if node is None:
        return None
    bank = node.find(qname("bankAccount"))
    account = {} if bank is None else {"bank_name": child_text(bank, "bankName"), "iban": child_text(bank, "iban"),
                                       "bic": child_text(bank, "bic")}  # fmt: skip
    address = tuple(x.text or "" for x in node.iterfind(qname("addressLine")))
    return ErpParty(name=child_text(node, "name"), address=address,
                    vat_id=child_text(node, "vatId"), registration_number=child_text(node, "registrationNumber"),
                    email=child_text(node, "email"), **account)  # fmt: skip


def document_from_xml(node: etree._Element, kind: str) -> ErpDocument:
    """The :class:`ErpDocument` an ``erp:Document`` element (already valid against the XSD) carries."""
    lines = []
    for line in node.find(qname("lines")).iterfind(qname("line")):
        start, end = _period(line, "servicePeriod")
        lines.append(
            ErpLine(
                line_number=int(child_text(line, "lineNumber")),
                account_code=child_text(line, "accountCode"),
                description=child_text(line, "description"),
                quantity=Decimal(child_text(line, "quantity")),
                unit_price=Decimal(child_text(line, "unitPrice")),
                line_total=Decimal(child_text(line, "lineTotal")),
                vat_group=child_text(line, "vatGroup"),
                tax_amount=Decimal(child_text(line, "taxAmount")),
                period_start=start,
                period_end=end,
                item_count=int(child_text(line, "itemCount") or 0),
                usage_units=int(child_text(line, "usageUnits") or 0),
            )
        )
    start, end = _period(node, "billingPeriod")
    return ErpDocument(
        kind=kind,  # type: ignore[arg-type]
        tenant=child_text(node, "tenant"),
        invoice_number=child_text(node, "invoiceNumber"),
        revision=int(child_text(node, "revision")),
        customer_code=child_text(node, "customerCode"),
        document_date=date.fromisoformat(child_text(node, "documentDate")),
        due_date=date.fromisoformat(child_text(node, "dueDate")),
        period_start=start,
        period_end=end,
        currency=child_text(node, "currency"),
        price_mode=child_text(node, "priceMode"),  # type: ignore[arg-type]
        net_total=Decimal(child_text(node, "netTotal")),
        tax_total=Decimal(child_text(node, "taxTotal")),
        gross_total=Decimal(child_text(node, "grossTotal")),
        lines=tuple(lines),
        seller=_party(node.find(qname("seller"))),
        buyer=_party(node.find(qname("buyer"))),
    )


def business_errors(document: ErpDocument, sent_key: str) -> list[str]:
    """What an ERP would refuse in a schema-valid document: keys, numbering, totals, dates."""
    errors = []
    if sent_key != document.idempotency_key:
        errors.append(f"idempotencyKey {sent_key!r} does not name this document ({document.idempotency_key!r})")
    errors += arithmetic_problems(document)  # lines multiply out, totals add up
    if document.due_date < document.document_date:
        errors.append("dueDate is before documentDate")
    periods = [(document.period_start, document.period_end), *((x.period_start, x.period_end) for x in document.lines)]
    if any(start > end for start, end in periods):
        errors.append("a period ends before it starts")
    return errors


def journal_from_xml(node: etree._Element, kind: str) -> ErpJournal:
    """The :class:`ErpJournal` an ``erp:Journal`` element (already valid against the XSD) carries."""
    lines = tuple(
        JournalLine(line_number=int(child_text(x, "lineNumber")), account_code=child_text(x, "accountCode"),
                    debit=Decimal(child_text(x, "debit")), credit=Decimal(child_text(x, "credit")),
                    description=child_text(x, "description"), movement=child_text(x, "movement"))
        for x in node.find(qname("lines")).iterfind(qname("line"))
    )  # fmt: skip
    return ErpJournal(
        kind=kind,  # type: ignore[arg-type]
        tenant=child_text(node, "tenant"), reference=child_text(node, "reference"),
        sequence=int(child_text(node, "sequence")),
        customer_code=child_text(node, "customerCode"), account=child_text(node, "account"),
        posting_date=date.fromisoformat(child_text(node, "postingDate")), currency=child_text(node, "currency"),
        total=Decimal(child_text(node, "total")), memo=child_text(node, "memo"), lines=lines,
    )  # fmt: skip


def journal_errors(journal: ErpJournal, sent_key: str) -> list[str]:
    """What an ERP would refuse in a schema-valid journal: the key, the balance."""
    errors = []
    if sent_key != journal.idempotency_key:
        errors.append(f"idempotencyKey {sent_key!r} does not name this document ({journal.idempotency_key!r})")
    return errors + balance_problems(journal)


def erp_fields(node: etree._Element) -> dict[str, Any]:
    """The optional ERP fields of a document or journal element, as sent (absent ones left out)."""
    fields: dict[str, Any] = {
        name: child_text(node, name) for name in HEADER_FIELDS if node.find(qname(name)) is not None
    }
    for name in ("baseDocument", "exchangeRate"):
        found = node.find(qname(name))
        if found is not None:
            fields[name] = {etree.QName(child).localname: child.text or "" for child in found}
    lines = [{name: child_text(x, name) for name in LINE_FIELDS if x.find(qname(name)) is not None}
             for x in node.find(qname("lines")).iterfind(qname("line"))]  # fmt: skip
    if any(lines):
        fields["lines"] = lines
    return fields
