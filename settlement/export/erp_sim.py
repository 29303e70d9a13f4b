"""``occ erp-sim``: a small, real ERP middleware endpoint for demos and tests (aiohttp, loopback only).

It speaks the SOAP service of ``erp.wsdl``: every request body is validated against ``erp.xsd`` (lxml), documents are
checked like an ERP would (totals add up, the key names the document), stored in memory (and in a JSON file when
given one), and answered ACCEPTED with a new ERP document number, or DUPLICATE with the original number when the
same idempotency key comes again with the same payload hash; the same key with another hash is an
IDEMPOTENCY_CONFLICT fault. Journals (SubmitJournalEntry, SubmitIncomingPayment) must balance to the cent; a credit
note naming the ERP number of its invoice must name the one given. GetSubmissionStatus looks a key up;
GetGeneralLedger sums the journals held per G/L account; Ping answers.

Faults on demand, for the submissions only (SubmitInvoice, SubmitCreditNote, SubmitJournalEntry,
SubmitIncomingPayment), in this order:

- ``fail_next`` N: answer the next N with a TRANSIENT fault (nothing stored);
- ``stall_next`` N: hold the next N for ``stall_s`` seconds, then process and answer (a client with a shorter
  timeout has given up by then: the document is stored all the same, "replying after the client gave up");
- ``drop_next`` N: process the next N, then close the connection without an answer.

Routes: ``POST /soap`` (the service), ``GET /soap?wsdl`` and ``GET /erp.xsd`` (the contract, with this endpoint's
address), ``GET|POST /control`` (counters and fault injection as JSON: ``{"fail_next": 2}``), ``GET /documents``.

Security on demand (:class:`~settlement.export.security.SimSecurity`): https with a certificate, client certificates
required in the handshake, HTTP basic (401 without it) and a WS-Security UsernameToken (a ``wsse:FailedAuthentication``
fault without it) on ``POST /soap``.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from lxml import etree

from settlement.export.document import ErpDocument
from settlement.export.journal import JOURNAL_KINDS, ErpJournal
from settlement.export.security import WSSE, SimSecurity
from settlement.export.sim_documents import (
    business_errors,
    child_text,
    document_from_xml,
    erp_fields,
    journal_errors,
    journal_from_xml,
    qname,
)
from settlement.export.soap_client import NAMESPACE, WSDL_PATH, XSD_PATH

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICE_NAME = "occ-erp-sim"
OPERATIONS = {
    "SubmitInvoiceRequest": "SubmitInvoice",
    "SubmitCreditNoteRequest": "SubmitCreditNote",
    "SubmitJournalEntryRequest": "SubmitJournalEntry",
    "SubmitIncomingPaymentRequest": "SubmitIncomingPayment",
    "GetGeneralLedgerRequest": "GetGeneralLedger",
    "GetSubmissionStatusRequest": "GetSubmissionStatus",
    "PingRequest": "Ping",
}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)


SUBMISSIONS = {"SubmitInvoice": "INVOICE", "SubmitCreditNote": "CREDIT_NOTE", "SubmitJournalEntry": "JOURNAL_ENTRY",
               "SubmitIncomingPayment": "INCOMING_PAYMENT"}  # fmt: skip
NUMBER_PREFIX = {"INVOICE": "AR", "CREDIT_NOTE": "CM", "JOURNAL_ENTRY": "JE", "INCOMING_PAYMENT": "PY"}


class StoredDocument(msgspec.Struct, frozen=True, kw_only=True):
    """A document the simulated ERP holds, with the number it gave it: an invoice or credit note (``document``) or
    a journal entry or incoming payment (``journal``), and the optional ERP fields it came with (``fields``)."""

    erp_document_number: str
    kind: str
    payload_sha256: str
    received_ms: int
    document: ErpDocument | None = None
    journal: ErpJournal | None = None
    fields: dict[str, Any] = msgspec.field(default_factory=dict)


class Injections(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Faults still to inject (see the module docstring)."""

    fail_next: int = 0
    stall_next: int = 0
    stall_s: float = 0.0
    drop_next: int = 0


class SoapFault(Exception):
    """Answer with an erp:ErpFault."""

    def __init__(self, code: str, message: str, *, erp_document_number: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.erp_document_number = code, message, erp_document_number


def _envelope(payload: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "erp": NAMESPACE})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(payload)
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _element(name: str, **children: str) -> etree._Element:
    node = etree.Element(qname(name), nsmap={"erp": NAMESPACE})
    for child, value in children.items():
        if value:
            etree.SubElement(node, qname(child)).text = value
    return node


class ErpSim:
    """The simulated middleware; ``await start()``, use :attr:`url`, ``await close()``."""

    def __init__(self, *, store_path: Path | None = None, injections: Injections | None = None,
                 security: SimSecurity | None = None) -> None:  # fmt: skip
        self.injections = injections or Injections()
        self.security = security or SimSecurity()
        self.store_path = store_path
        self.documents: dict[str, StoredDocument] = {}
        self.requests: Counter[str] = Counter()  # arrivals per operation, faulted ones included
        self.faults: Counter[str] = Counter()  # answered faults per code, plus "dropped" replies
        self._sequence = 0
        self._schema = etree.XMLSchema(etree.parse(str(XSD_PATH)))
        self._runner: web.AppRunner | None = None
        self.url = ""
        if store_path is not None and store_path.exists():
            saved = msgspec.json.decode(store_path.read_bytes(), type=dict[str, StoredDocument])
            self.documents.update(saved)
            self._sequence = max((int(d.erp_document_number[2:]) for d in saved.values()), default=0)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/soap", self._soap)
        app.router.add_get("/soap", self._wsdl)
        app.router.add_get("/erp.xsd", self._xsd)
        app.router.add_get("/control", self._control)
        app.router.add_post("/control", self._control)
        app.router.add_get("/documents", self._documents)
        return app

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1:``port`` (0: any free port); returns the service URL."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        context = self.security.server_context()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=context)
        await site.start()
        host, bound = self._runner.addresses[0][:2]
        self.url = f"{'https' if context else 'http'}://{host}:{bound}/soap"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def submissions(self) -> int:
        """Submit requests that arrived (whatever became of them)."""
        return sum(self.requests[operation] for operation in SUBMISSIONS)

    def general_ledger(self, from_date: date, to_date: date) -> list[tuple[str, str, Decimal, Decimal]]:
        """(G/L account, currency, debits, credits) of the journals held with a posting date in the range, sorted."""
        totals: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for stored in self.documents.values():
            journal = stored.journal
            if journal is None or not from_date <= journal.posting_date <= to_date:
                continue
            for line in journal.lines:
                sums = totals[(line.account_code, journal.currency)]
                sums[0] += line.debit
                sums[1] += line.credit
        return [(code, currency, debit, credit) for (code, currency), (debit, credit) in sorted(totals.items())]

    def state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "documents": len(self.documents),
            "requests": dict(self.requests),
            "faults": dict(self.faults),
            "injections": msgspec.to_builtins(self.injections),
        }

    # --- HTTP handlers -------------------------------------------------------------------------------------------

    async def _wsdl(self, request: web.Request) -> web.Response:
        if "wsdl" not in {key.lower() for key in request.query}:
            raise web.HTTPNotFound(text="GET /soap?wsdl for the contract; POST /soap for the service\n")
        text = WSDL_PATH.read_text().replace("http://127.0.0.1:8090/soap", str(request.url.with_query(None)))
        return web.Response(text=text, content_type="text/xml")

    async def _xsd(self, _request: web.Request) -> web.Response:
        return web.Response(text=XSD_PATH.read_text(), content_type="text/xml")

    async def _documents(self, _request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(self.documents), content_type="application/json")

    async def _control(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                changes = msgspec.json.decode(await request.read(), type=dict[str, float])
                merged = {**msgspec.to_builtins(self.injections), **changes}
                self.injections = msgspec.convert(merged, Injections, strict=False)
            except (msgspec.ValidationError, msgspec.DecodeError) as error:
                raise web.HTTPBadRequest(text=f"{error}\n") from None
        return web.json_response(self.state())

    async def _soap(self, request: web.Request) -> web.StreamResponse:
        if not self.security.basic_ok(request.headers.get("Authorization")):
            self.faults["unauthorized"] += 1
            return web.Response(status=401, text="credentials required\n",
                                headers={"WWW-Authenticate": f'Basic realm="{SERVICE_NAME}"'})  # fmt: skip
        try:
            operation, payload = self._parse(await request.read())
            self.requests[operation] += 1
            self._validate(payload)
        except SoapFault as fault:
            return self._fault(fault)
        if operation in SUBMISSIONS:
            injections = self.injections
            if injections.fail_next > 0:
                injections.fail_next -= 1
                return self._fault(SoapFault("TRANSIENT", "the ERP is busy (injected); try again later"))
            if injections.stall_next > 0:
                injections.stall_next -= 1
                await asyncio.sleep(injections.stall_s)
            if injections.drop_next > 0:
                injections.drop_next -= 1
                self._answer(operation, payload)
                self.faults["dropped"] += 1
                if request.transport is not None:  # (None: a stalled client gave up and hung up already)
                    request.transport.close()  # processed, but the client never hears of it
                return web.Response(status=204)
        return self._answer(operation, payload)

    # --- SOAP ----------------------------------------------------------------------------------------------------

    def _parse(self, body: bytes) -> tuple[str, etree._Element]:
        try:
            envelope = etree.fromstring(body, _PARSER)
        except etree.XMLSyntaxError as error:
            raise SoapFault("VALIDATION", f"the request is not XML: {error}") from None
        soap_body = envelope.find(f"{{{SOAP_ENV}}}Body")
        if envelope.tag != f"{{{SOAP_ENV}}}Envelope" or soap_body is None or len(soap_body) != 1:
            raise SoapFault("VALIDATION", "expected a SOAP 1.1 Envelope whose Body holds one element")
        if not self.security.wsse_ok(envelope):
            raise SoapFault("AUTHENTICATION", "The security token could not be authenticated or authorized")
        payload = soap_body[0]
        name = etree.QName(payload)
        if name.namespace != NAMESPACE or name.localname not in OPERATIONS:
            raise SoapFault("VALIDATION", f"unknown operation element {payload.tag}")
        return OPERATIONS[name.localname], copy.deepcopy(payload)  # a root of its own, for the XSD

    def _validate(self, payload: etree._Element) -> None:
        if not self._schema.validate(payload):
            error = self._schema.error_log.last_error
            raise SoapFault("VALIDATION", f"{error.path}: {error.message}")

    def _answer(self, operation: str, payload: etree._Element) -> web.Response:
        try:
            if operation == "Ping":
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                return self._reply(_element("PingResponse", service=SERVICE_NAME, serverTime=now))
            if operation == "GetSubmissionStatus":
                return self._reply(self._status(child_text(payload, "idempotencyKey")))
            if operation == "GetGeneralLedger":
                return self._reply(self._ledger(payload))
            return self._reply(self._submit(operation, payload[0]))
        except SoapFault as fault:
            return self._fault(fault)

    def _status(self, key: str) -> etree._Element:
        stored = self.documents.get(key)
        if stored is None:
            return _element("GetSubmissionStatusResponse", status="NOT_FOUND", idempotencyKey=key)
        return _element(
            "GetSubmissionStatusResponse",
            status="FOUND",
            idempotencyKey=key,
            kind=stored.kind,
            erpDocumentNumber=stored.erp_document_number,
            payloadSha256=stored.payload_sha256,
        )

    def _ledger(self, payload: etree._Element) -> etree._Element:
        span = date.fromisoformat(child_text(payload, "fromDate")), date.fromisoformat(child_text(payload, "toDate"))
        reply = _element("GetGeneralLedgerResponse")
        for code, currency, debit, credit in self.general_ledger(*span):
            reply.append(_element("account", accountCode=code, currency=currency, debit=str(debit),
                                  credit=str(credit)))  # fmt: skip
        return reply

    def _read(self, kind: str, key: str, node: etree._Element) -> dict[str, Any]:
        """The stored form of a submitted document (``document`` or ``journal``); a VALIDATION fault if an ERP would
        refuse it."""
        try:
            if kind in JOURNAL_KINDS:
                journal = journal_from_xml(node, kind)
                errors, read = journal_errors(journal, key), {"journal": journal}
            else:
                document = document_from_xml(node, kind)
                errors, read = business_errors(document, key) + self._base_errors(node), {"document": document}
        except (ValueError, InvalidOperation) as error:
            raise SoapFault("VALIDATION", f"unreadable document: {error}") from None
        if errors:
            raise SoapFault("VALIDATION", "; ".join(errors))
        return read

    def _base_errors(self, node: etree._Element) -> list[str]:
        """A credit note naming the ERP number of its invoice must name one this ERP gave that invoice."""
        base = node.find(qname("baseDocument"))
        number = "" if base is None else child_text(base, "erpDocumentNumber")
        if not number:
            return []
        held = self.documents.get(child_text(base, "idempotencyKey"))
        if held is None or held.erp_document_number != number:
            return [f"baseDocument {child_text(base, 'idempotencyKey')} is not held as {number}"]
        return []

    def _submit(self, operation: str, node: etree._Element) -> etree._Element:
        kind = SUBMISSIONS[operation]
        reply = f"{operation}Response"
        key, digest = child_text(node, "idempotencyKey"), child_text(node, "payloadSha256")
        read = self._read(kind, key, node)
        stored = self.documents.get(key)
        if stored is not None:
            if stored.payload_sha256 != digest:
                raise SoapFault(
                    "IDEMPOTENCY_CONFLICT",
                    f"{key} is already held as {stored.erp_document_number} with payload {stored.payload_sha256}",
                    erp_document_number=stored.erp_document_number,
                )
            return _element(reply, status="DUPLICATE", idempotencyKey=key, erpDocumentNumber=stored.erp_document_number)
        self._sequence += 1
        number = f"{NUMBER_PREFIX[kind]}{self._sequence:08d}"
        self.documents[key] = StoredDocument(
            erp_document_number=number,
            kind=kind,
            payload_sha256=digest,
            received_ms=int(time.time() * 1000),
            fields=erp_fields(node),
            **read,
        )
        self._save()
        return _element(reply, status="ACCEPTED", idempotencyKey=key, erpDocumentNumber=number)

    def _save(self) -> None:
        if self.store_path is None:
            return
        partial = self.store_path.with_name(self.store_path.name + ".tmp")
        partial.write_bytes(msgspec.json.encode(self.documents))
        partial.replace(self.store_path)

    def _reply(self, payload: etree._Element) -> web.Response:
        if not self._schema.validate(payload):  # the simulator keeps its own side of the contract too
            raise RuntimeError(f"erp-sim built an invalid reply: {self._schema.error_log.last_error}")
        return web.Response(body=_envelope(payload), content_type="text/xml", charset="utf-8")

    def _fault(self, fault: SoapFault) -> web.Response:
        self.faults[fault.code] += 1
        if fault.code == "AUTHENTICATION":  # WS-Security's own fault, not an erp:ErpFault
            node = etree.Element(f"{{{SOAP_ENV}}}Fault", nsmap={"wsse": WSSE})
            etree.SubElement(node, "faultcode").text = "wsse:FailedAuthentication"
            etree.SubElement(node, "faultstring").text = fault.message
            return web.Response(status=500, body=_envelope(node), content_type="text/xml", charset="utf-8")
        node = etree.Element(f"{{{SOAP_ENV}}}Fault")
        etree.SubElement(node, "faultcode").text = "soap:Server" if fault.code == "TRANSIENT" else "soap:Client"
        etree.SubElement(node, "faultstring").text = fault.message
        detail = _element(
            "ErpFault",
            code=fault.code,
            retriable="true" if fault.code == "TRANSIENT" else "false",
            message=fault.message or "-",
            erpDocumentNumber=fault.erp_document_number,
        )
        etree.SubElement(node, "detail").append(detail)
        return web.Response(status=500, body=_envelope(node), content_type="text/xml", charset="utf-8")
