"""The ERP middleware's SOAP client: zeep's AsyncClient over httpx, the WSDL read from the package, never fetched.

::

    async with ErpClient("http://127.0.0.1:8090/soap", timeout_s=10) as erp:
        reply = await erp.submit(document)          # SubmitReply("ACCEPTED" | "DUPLICATE", "AR00000042")
        found = await erp.status(document.idempotency_key)

Every failure is one of three exceptions, by what the exporter must do next:

- :class:`ErpValidationFault`: the middleware (or local encoding) refused the document; retrying cannot help.
- :class:`ErpConflictFault`: the key is taken by another payload in the ERP; retrying cannot help.
- :class:`ErpTransientError`: try again later. ``outcome_unknown`` says whether the request may have been processed
  (a timeout, a dropped connection, a garbled reply): then the next attempt asks GetSubmissionStatus first. A
  refused connection or a TRANSIENT fault means the middleware did not take the document.
  :class:`ErpAuthError`, one of them, says the middleware refused OCC's credentials or certificate: nothing was
  taken, and retrying helps once the settings are fixed (``security.py``).
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import zeep
from lxml import etree
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault, TransportError
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from settlement.export.document import ErpDocument, ErpParty
from settlement.export.journal import OPERATION, ErpJournal
from settlement.export.profile import DEFAULT_UNIT, ErpProfile, customer_vat_id, memo
from settlement.export.security import ErpAuth

WSDL_PATH = Path(__file__).with_name("erp.wsdl")
XSD_PATH = Path(__file__).with_name("erp.xsd")
NAMESPACE = "urn:occ:erp:v1"
BINDING = "{urn:occ:erp:v1:service}ErpBinding"


class ErpError(Exception):
    """A call to the middleware failed; ``retriable`` says whether trying again can help."""

    retriable = False


class ErpValidationFault(ErpError):
    """The document was refused as invalid (a VALIDATION fault, or it could not even be encoded)."""


class ErpConflictFault(ErpError):
    """The ERP holds another payload under this idempotency key (``erp_document_number``: that document)."""

    def __init__(self, message: str, *, erp_document_number: str = "") -> None:
        super().__init__(message)
        self.erp_document_number = erp_document_number


class ErpTransientError(ErpError):
    """Try again later; ``outcome_unknown``: the middleware may have processed the request."""

    retriable = True

    def __init__(self, message: str, *, outcome_unknown: bool) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class ErpAuthError(ErpTransientError):
    """The middleware refused OCC's credentials (HTTP 401/403, a WS-Security fault) or its TLS handshake: it took
    nothing. Fix the ERP settings; the documents wait."""

    def __init__(self, message: str) -> None:
        super().__init__(message, outcome_unknown=False)


class SubmitReply(msgspec.Struct, frozen=True):
    """The middleware has the document: ACCEPTED now, or DUPLICATE of what it already had (same key and hash)."""

    status: Literal["ACCEPTED", "DUPLICATE"]
    erp_document_number: str


class SubmissionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """GetSubmissionStatus: whether the ERP holds a document under the key, and which."""

    found: bool
    kind: str = ""
    erp_document_number: str = ""
    payload_sha256: str = ""


def _period(start: Any, end: Any) -> dict[str, Any]:
    return {"start": start, "end": end}


def party_to_soap(party: ErpParty) -> dict[str, Any]:
    """An ``erp:Party`` with only the fields that are set."""
    fields = {"name": party.name, "addressLine": list(party.address), "vatId": party.vat_id,
              "registrationNumber": party.registration_number, "email": party.email}  # fmt: skip
    if party.iban:
        bank = {"bankName": party.bank_name, "iban": party.iban, "bic": party.bic}
        fields["bankAccount"] = {k: v for k, v in bank.items() if v}
    return {k: v for k, v in fields.items() if v}


class Sending(msgspec.Struct, frozen=True, kw_only=True):
    """What a document is sent with besides its payload: the hash the outbox stored for it, the ERP number of the
    invoice a credit note reverses (once the ERP accepted it), and the ERP profile."""

    payload_sha256: str = ""
    base_erp_document_number: str = ""
    profile: ErpProfile = msgspec.field(default_factory=ErpProfile)


def _base_document(document: ErpDocument, erp_number: str) -> dict[str, Any]:
    base = {
        "invoiceNumber": document.invoice_number,
        "revision": document.revision,
        "idempotencyKey": document.idempotency_key.removesuffix(":credit"),
        "erpDocumentNumber": erp_number,
    }
    return {k: v for k, v in base.items() if v != ""}  # fmt: skip


def _erp_fields(document: ErpDocument, sending: Sending) -> dict[str, Any]:
    profile = sending.profile
    fields = {
        "baseDocument": _base_document(document, sending.base_erp_document_number)
        if document.kind == "CREDIT_NOTE" else None,
        "series": profile.series.get(document.kind),
        "paymentTerms": profile.payment_terms if document.kind == "INVOICE" else None,
        "customerVatId": customer_vat_id(document),
        "exchangeRate": profile.exchange_rate(document.currency),
        "memo": memo(document),
    }  # fmt: skip
    return {k: v for k, v in fields.items() if v}


def document_to_soap(document: ErpDocument, sending: Sending | None = None) -> dict[str, Any]:
    """The ``erp:Document`` of ``document``, as zeep takes it (Decimals are written in fixed-point notation)."""
    sending = sending or Sending()
    profile = sending.profile
    parties = {name: party_to_soap(party) for name, party in (("seller", document.seller), ("buyer", document.buyer))
               if party is not None}  # fmt: skip
    return {
        "idempotencyKey": document.idempotency_key,
        "payloadSha256": sending.payload_sha256 or document.payload_sha256,
        "tenant": document.tenant,
        "invoiceNumber": document.invoice_number,
        "revision": document.revision,
        "customerCode": document.customer_code,
        **parties,
        "documentDate": document.document_date,
        "dueDate": document.due_date,
        "billingPeriod": _period(document.period_start, document.period_end),
        "currency": document.currency,
        "priceMode": document.price_mode,
        "netTotal": document.net_total,
        "taxTotal": document.tax_total,
        "grossTotal": document.gross_total,
        "lines": {
            "line": [
                {
                    "lineNumber": line.line_number,
                    "accountCode": line.account_code,
                    "description": line.description,
                    "quantity": line.quantity,
                    "unitPrice": line.unit_price,
                    "lineTotal": line.line_total,
                    "vatGroup": line.vat_group,
                    "taxAmount": line.tax_amount,
                    "servicePeriod": _period(line.period_start, line.period_end),
                    "itemCount": line.item_count,
                    "usageUnits": line.usage_units,
                    "unitOfMeasure": profile.units.get(line.account_code, DEFAULT_UNIT),
                    **profile.line_fields(line.account_code),
                }
                for line in document.lines
            ]
        },
        **_erp_fields(document, sending),
    }


def journal_to_soap(journal: ErpJournal, sending: Sending | None = None) -> dict[str, Any]:
    """The ``erp:Journal`` of a journal entry or incoming payment, as zeep takes it."""
    sending = sending or Sending()
    profile = sending.profile
    optional = {"series": profile.series.get(journal.kind), "exchangeRate": profile.exchange_rate(journal.currency)}
    return {
        "idempotencyKey": journal.idempotency_key,
        "payloadSha256": sending.payload_sha256 or journal.payload_sha256,
        "tenant": journal.tenant,
        "reference": journal.reference,
        "sequence": journal.sequence,
        "customerCode": journal.customer_code,
        "account": journal.account,
        "postingDate": journal.posting_date,
        "currency": journal.currency,
        "total": journal.total,
        "memo": journal.memo,
        "lines": {"line": [
            {"lineNumber": x.line_number, "accountCode": x.account_code, "debit": x.debit, "credit": x.credit,
             "description": x.description, "movement": x.movement, **profile.line_fields(x.account_code)}
            for x in journal.lines
        ]},
        **{k: v for k, v in optional.items() if v},
    }  # fmt: skip


class LedgerBalance(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a general-ledger report: a G/L account in one currency, its debits and credits."""

    account_code: str
    currency: str
    debit: Decimal
    credit: Decimal


def _fault_error(fault: Fault) -> ErpError:
    detail = fault.detail
    node = detail.find(f"{{{NAMESPACE}}}ErpFault") if isinstance(detail, etree._Element) else None
    message = fault.message or "SOAP fault without a message"
    if node is None:  # not one of ours: a client fault is the request's, anything else the server's
        if any(code in str(fault.code or "") for code in ("FailedAuthentication", "InvalidSecurity")):
            return ErpAuthError(f"the ERP refused our WS-Security credentials ({message}): check the ERP username, "
                                "password and --erp-wsse")  # fmt: skip
        if fault.code and str(fault.code).endswith("Client"):
            return ErpValidationFault(message)
        return ErpTransientError(f"fault {fault.code}: {message}", outcome_unknown=True)
    code = node.findtext(f"{{{NAMESPACE}}}code", "")
    text = node.findtext(f"{{{NAMESPACE}}}message", "") or message
    if code == "VALIDATION":
        return ErpValidationFault(text)
    if code == "IDEMPOTENCY_CONFLICT":
        return ErpConflictFault(text, erp_document_number=node.findtext(f"{{{NAMESPACE}}}erpDocumentNumber", ""))
    if code == "TRANSIENT":
        return ErpTransientError(f"transient fault: {text}", outcome_unknown=False)
    return ErpTransientError(f"unknown fault code {code!r}: {text}", outcome_unknown=True)


def _tls_failure(error: BaseException) -> str:
    """What failed in the TLS handshake behind ``error`` (an untrusted certificate, one missing), or ""."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return str(error) if "SSL" in str(error) or "CERTIFICATE" in str(error).upper() else ""


def _transport_error(error: httpx.HTTPError, url: str, timeout_s: float) -> ErpError:
    """The exporter's view of an HTTP failure: TLS refused (settings), unreachable, no reply, or unknown."""
    tls = _tls_failure(error)
    if tls:
        return ErpAuthError(f"TLS with {url} failed ({tls}): check --erp-ca (the CA of the ERP's certificate) and "
                            "--erp-cert / --erp-key")  # fmt: skip
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return ErpTransientError(f"{url} unreachable: {error or type(error).__name__}", outcome_unknown=False)
    if isinstance(error, httpx.TimeoutException):
        return ErpTransientError(f"no reply within {timeout_s:g} s", outcome_unknown=True)
    hint = ""
    if url.startswith("https://") and isinstance(error, httpx.ReadError | httpx.RemoteProtocolError):
        hint = " (an https middleware wanting a client certificate it did not get closes the connection so: --erp-cert)"
    return ErpTransientError(f"{type(error).__name__}: {error}{hint}", outcome_unknown=True)


class ErpClient:
    """One middleware endpoint; open it (``async with`` or :meth:`open`) before calling, close it after."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, auth: ErpAuth | None = None,
                 profile: ErpProfile | None = None) -> None:  # fmt: skip
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the ERP URL must be http:// or https://, got {url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.auth = auth or ErpAuth()
        self.auth.check_url(url)
        self.profile = profile or ErpProfile()
        self.url = url
        self.timeout_s = timeout_s
        self._http: httpx.AsyncClient | None = None
        self._wsdl_http: httpx.Client | None = None
        self._zeep: zeep.AsyncClient | None = None
        self._service: AsyncServiceProxy | None = None

    async def open(self) -> ErpClient:
        if self._service is not None:
            return self
        # zeep reads a local WSDL (and the XSD it imports) from disk; its sync client is only for remote WSDLs.
        self._wsdl_http = httpx.Client(timeout=self.timeout_s)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s), verify=self.auth.verify(),
                                       auth=self.auth.basic())  # fmt: skip
        transport = AsyncTransport(client=self._http, wsdl_client=self._wsdl_http)
        self._zeep = await asyncio.to_thread(zeep.AsyncClient, str(WSDL_PATH), transport=transport,
                                             wsse=self.auth.username_token())  # fmt: skip
        # Client.create_service builds a sync proxy even on an AsyncClient; the async one is built directly.
        self._service = AsyncServiceProxy(self._zeep, self._zeep.wsdl.bindings[BINDING], address=self.url)
        return self

    async def close(self) -> None:
        http, wsdl_http = self._http, self._wsdl_http
        self._http = self._wsdl_http = self._zeep = self._service = None
        if http is not None:
            await http.aclose()
        if wsdl_http is not None:
            wsdl_http.close()

    async def __aenter__(self) -> ErpClient:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def submit(self, document: ErpDocument | ErpJournal, *, payload_sha256: str = "",
                     base_erp_document_number: str = "") -> SubmitReply:  # fmt: skip
        """SubmitInvoice, SubmitCreditNote, SubmitJournalEntry or SubmitIncomingPayment, by the document's kind;
        ``payload_sha256``: the hash the outbox holds (default: the document's own)."""
        sending = Sending(payload_sha256=payload_sha256, base_erp_document_number=base_erp_document_number,
                          profile=self.profile)  # fmt: skip
        if isinstance(document, ErpJournal):
            element = "journalEntry" if document.kind == "JOURNAL_ENTRY" else "incomingPayment"
            result = await self._call(OPERATION[document.kind], **{element: journal_to_soap(document, sending)})
        elif document.kind == "CREDIT_NOTE":
            result = await self._call("SubmitCreditNote", creditNote=document_to_soap(document, sending))
        else:
            result = await self._call("SubmitInvoice", invoice=document_to_soap(document, sending))
        return SubmitReply(result.status, result.erpDocumentNumber)

    async def general_ledger(self, from_date: date, to_date: date) -> list[LedgerBalance]:
        """GetGeneralLedger: the ERP's debits and credits per G/L account and currency, posting days in the range."""
        result = await self._call("GetGeneralLedger", fromDate=from_date, toDate=to_date)
        return [LedgerBalance(account_code=x.accountCode, currency=x.currency, debit=x.debit, credit=x.credit)
                for x in result or ()]  # fmt: skip

    async def status(self, idempotency_key: str) -> SubmissionStatus:
        """GetSubmissionStatus: does the ERP hold a document under this key?"""
        result = await self._call("GetSubmissionStatus", idempotencyKey=idempotency_key)
        if result.status != "FOUND":
            return SubmissionStatus(found=False)
        return SubmissionStatus(
            found=True,
            kind=result.kind or "",
            erp_document_number=result.erpDocumentNumber or "",
            payload_sha256=result.payloadSha256 or "",
        )

    async def ping(self) -> str:
        """Ping: the middleware's service name."""
        return (await self._call("Ping")).service

    async def _call(self, operation: str, **body: Any) -> Any:
        if self._service is None or self._zeep is None:
            raise RuntimeError("ErpClient is not open")
        try:  # encode first: a document zeep cannot write is refused here, before anything is sent
            self._zeep.create_message(self._service, operation, **body)
        except (ZeepError, ValueError, TypeError) as error:
            raise ErpValidationFault(f"cannot encode {operation}: {error}") from error
        try:
            async with asyncio.timeout(self.timeout_s):
                return await getattr(self._service, operation)(**body)
        except Fault as fault:
            raise _fault_error(fault) from fault
        except TimeoutError as error:
            raise ErpTransientError(f"no reply within {self.timeout_s:g} s", outcome_unknown=True) from error
        except httpx.HTTPError as error:
            raise _transport_error(error, self.url, self.timeout_s) from error
        except TransportError as error:
            if error.status_code in (401, 403):
                raise ErpAuthError(f"the ERP refused our credentials (HTTP {error.status_code}): check "
                                   "--erp-username / --erp-password (OCC_ERP_PASSWORD)") from error  # fmt: skip
            raise ErpTransientError(f"HTTP {error.status_code} from {self.url}", outcome_unknown=True) from error
        except (ZeepError, etree.XMLSyntaxError) as error:
            raise ErpTransientError(f"unreadable reply: {error}", outcome_unknown=True) from error
