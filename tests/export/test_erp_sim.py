"""erp-sim on its own: the contract it serves, what it refuses, its control endpoint, its JSON store."""

from __future__ import annotations

import httpx
import msgspec
from conftest import document
from lxml import etree

from settlement.export.erp_sim import ErpSim
from settlement.export.soap_client import ErpClient, ErpConflictFault, ErpValidationFault

ERP = "{urn:occ:erp:v1}"


async def test_it_serves_its_wsdl_with_its_own_address_and_the_xsd(sim):
    async with httpx.AsyncClient() as http:
        wsdl = await http.get(sim.url, params={"wsdl": ""})
        xsd = await http.get(sim.url.removesuffix("soap") + "erp.xsd")
        plain = await http.get(sim.url)
    assert wsdl.status_code == 200 and f'location="{sim.url}"' in wsdl.text
    assert xsd.status_code == 200 and 'targetNamespace="urn:occ:erp:v1"' in xsd.text
    assert plain.status_code == 404


async def test_requests_that_are_not_the_contract_get_a_validation_fault(sim):
    async with httpx.AsyncClient() as http:
        not_xml = await http.post(sim.url, content=b"<oops", headers={"content-type": "text/xml"})
        soap = "http://schemas.xmlsoap.org/soap/envelope/"
        other = f'<s:Envelope xmlns:s="{soap}"><s:Body><x:Order xmlns:x="urn:other"/></s:Body></s:Envelope>'
        unknown = await http.post(sim.url, content=other.encode(), headers={"content-type": "text/xml"})
    for reply, reason in ((not_xml, "not XML"), (unknown, "unknown operation")):
        assert reply.status_code == 500
        fault = etree.fromstring(reply.content).find(f".//{ERP}ErpFault")
        assert fault.findtext(f"{ERP}code") == "VALIDATION" and fault.findtext(f"{ERP}retriable") == "false"
        assert reason in fault.findtext(f"{ERP}message")
    assert sim.documents == {} and sim.faults["VALIDATION"] == 2


async def test_ping_status_and_a_too_long_account_code(sim):
    doc = document()
    async with ErpClient(sim.url, timeout_s=2.0) as client:
        assert await client.ping() == "occ-erp-sim"
        assert not (await client.status(doc.idempotency_key)).found
        try:
            await client.submit(document(account_code="4" * 16))
        except ErpValidationFault as fault:
            assert "accountCode" in str(fault) and "maxLength" in str(fault)
        else:
            raise AssertionError("a 16-character G/L account was accepted")
        accepted = await client.submit(doc)
        found = await client.status(doc.idempotency_key)
    assert found.found and found.kind == "INVOICE" and found.payload_sha256 == doc.payload_sha256
    assert found.erp_document_number == accepted.erp_document_number


async def test_the_control_endpoint_sets_faults_and_reports(sim):
    control = sim.url.removesuffix("soap") + "control"
    async with httpx.AsyncClient() as http:
        changed = await http.post(control, json={"fail_next": 2, "stall_s": 0.1})
        refused = await http.post(control, content=b'{"fail_next": "many"}')
        typo = await http.post(control, json={"fail_nxt": 1})
    assert changed.status_code == 200 and changed.json()["injections"]["fail_next"] == 2
    assert sim.injections.fail_next == 2 and sim.injections.stall_s == 0.1
    assert refused.status_code == 400 and typo.status_code == 400 and "fail_nxt" in typo.text
    assert sim.injections.fail_next == 2


async def test_the_json_store_keeps_documents_and_numbers_across_restarts(tmp_path):
    path = tmp_path / "erp.json"
    first = ErpSim(store_path=path)
    await first.start()
    async with ErpClient(first.url, timeout_s=2.0) as client:
        original = await client.submit(document())
    await first.close()
    second = ErpSim(store_path=path)
    await second.start()
    try:
        async with ErpClient(second.url, timeout_s=2.0) as client:
            replay = await client.submit(document())
            fresh = await client.submit(document("00000002"))
            try:
                await client.submit(document(net="1.00"))
            except ErpConflictFault as fault:
                assert fault.erp_document_number == original.erp_document_number
            else:
                raise AssertionError("a changed payload under a stored key was accepted")
    finally:
        await second.close()
    assert (replay.status, replay.erp_document_number) == ("DUPLICATE", original.erp_document_number)
    assert fresh.erp_document_number == "AR00000002"
    assert second.documents[document().idempotency_key].document == document()


async def test_a_gross_document_s_lines_add_up_to_the_gross_total(sim):
    net = document()
    gross_lines = tuple(msgspec.structs.replace(x, line_total=x.line_total + x.tax_amount,
                                                unit_price=x.line_total + x.tax_amount) for x in net.lines)  # fmt: skip
    gross = msgspec.structs.replace(net, price_mode="GROSS", lines=gross_lines, invoice_number="00000005")
    wrong = msgspec.structs.replace(net, price_mode="GROSS", invoice_number="00000006")  # net line totals
    async with ErpClient(sim.url, timeout_s=2.0) as client:
        assert (await client.submit(gross)).status == "ACCEPTED"
        try:
            await client.submit(wrong)
        except ErpValidationFault as fault:
            assert "grossTotal 10.50 is not the sum of the line totals" in str(fault)
        else:
            raise AssertionError("a GROSS document with net line totals was accepted")
    assert sim.documents[gross.idempotency_key].document == gross
