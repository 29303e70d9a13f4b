"""A credit note linked to the invoice it reverses, and the ERP fields of the profile, through a real erp-sim.

By hand (tests/export/conftest.py's document): invoice acme 00000007 revision 0, EUR, NET: a usage line 10.00 (tax
2.00, S20) and a goodwill line −1.50 (EXEMPT): net 8.50, tax 2.00, gross 10.50. Its credit note carries the same
amounts, OCC's number and revision, and the ERP number the ERP gave the invoice (AR00000001).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import pytest
from conftest import FAST, document, queue, rows

from settlement.export.document import ErpParty
from settlement.export.exporter import Exporter
from settlement.export.profile import ErpProfile
from settlement.export.soap_client import ErpClient, ErpValidationFault


async def test_a_credit_note_waits_for_its_invoice_and_carries_its_erp_number(store, sim):
    invoice = document("00000007")
    credit = msgspec.structs.replace(invoice, kind="CREDIT_NOTE")
    assert (credit.net_total, credit.tax_total, credit.gross_total) == (Decimal("8.50"), Decimal("2.00"),
                                                                       Decimal("10.50"))  # fmt: skip
    queue(store, invoice, credit)
    sim.injections.fail_next = 1  # the invoice's first try fails: the credit note must not go before it is accepted
    async with Exporter(store, sim.url, options=FAST) as exporter:
        first = await exporter.run_once()
        assert [o.idempotency_key for o in first.outcomes] == [invoice.idempotency_key]
        assert rows(store)[credit.idempotency_key].attempts == 0 and sim.requests["SubmitCreditNote"] == 0
        await asyncio.sleep(0.1)
        await exporter.run_once()
        await exporter.run_once()
    held = sim.documents[credit.idempotency_key]
    assert held.erp_document_number == "CM00000002" and held.document == credit
    assert held.fields["baseDocument"] == {"invoiceNumber": "00000007", "revision": "0",
                                           "idempotencyKey": "acme:00000007:0", "erpDocumentNumber": "AR00000001"}
    assert held.fields["memo"] == "OCC credit note reversing invoice 00000007 revision 0, period 2026-10-01 to " \
                                  "2026-10-31"  # fmt: skip
    assert rows(store)[credit.idempotency_key].state == "ACCEPTED"


async def test_the_erp_refuses_a_credit_note_naming_another_document_as_its_invoice(sim):
    invoice = document("00000012")
    async with ErpClient(sim.url) as client:
        await client.submit(invoice)
        with pytest.raises(ErpValidationFault, match="baseDocument acme:00000012:0 is not held as AR00000099"):
            await client.submit(msgspec.structs.replace(invoice, kind="CREDIT_NOTE"),
                                base_erp_document_number="AR00000099")  # fmt: skip


PROFILE = ErpProfile(company_currency="EUR", exchange_rates={"USD": Decimal("0.9215")}, payment_terms="NET14",
                     series={"INVOICE": "OCC-AR", "INCOMING_PAYMENT": "OCC-PY"}, cost_centres={"400000001": "CC-VOICE"},
                     projects={"400000001": "PRJ-7"}, units={"400000001": "MIN"})  # fmt: skip


async def test_the_profile_s_fields_reach_the_erp(store, sim):
    doc = msgspec.structs.replace(document("00000020"), currency="USD",
                                  buyer=ErpParty(name="Kunde GmbH", vat_id="DE136695976"))  # fmt: skip
    queue(store, doc)
    async with Exporter(store, sim.url, options=FAST, profile=PROFILE) as exporter:
        assert (await exporter.run_once()).accepted == 1
    held = sim.documents[doc.idempotency_key]
    assert held.fields == {
        "series": "OCC-AR", "paymentTerms": "NET14", "customerVatId": "DE136695976",
        "memo": "OCC invoice 00000020 revision 0, period 2026-10-01 to 2026-10-31",
        "exchangeRate": {"companyCurrency": "EUR", "rate": "0.9215"},
        "lines": [{"unitOfMeasure": "MIN", "costCentre": "CC-VOICE", "project": "PRJ-7"}, {"unitOfMeasure": "EA"}],
    }  # fmt: skip
    assert held.document == doc and held.payload_sha256 == rows(store)[doc.idempotency_key].payload_sha256


async def test_a_bad_customer_vat_id_is_not_sent_and_a_missing_exchange_rate_waits(store, sim):
    bad_vat = msgspec.structs.replace(document("00000021"), buyer=ErpParty(name="X", vat_id="DE136695977"))
    yen = msgspec.structs.replace(document("00000022"), currency="JPY")
    queue(store, bad_vat, yen)
    async with Exporter(store, sim.url, options=FAST, profile=PROFILE) as exporter:
        summary = await exporter.run_once()
    outbox = rows(store)
    assert outbox[bad_vat.idempotency_key].state == "REJECTED"
    assert "customerVatId 'DE136695977' is not a valid VAT id" in outbox[bad_vat.idempotency_key].last_error
    assert (outbox[yen.idempotency_key].state, outbox[yen.idempotency_key].last_error) == (
        "PENDING", "not sent: no exchange rate from JPY to the company currency EUR: set erp.exchange_rates.JPY")
    assert (summary.rejected, summary.retrying) == (1, 1) and sim.submissions() == 0
