"""``occ.v1.Admin``: accounts, money movements, sessions and tariffs.

Every bad field is INVALID_ARGUMENT naming it; an unknown account is NOT_FOUND; nothing is written on an error
(the errors and their statuses: ``occ.core.errors``). Every call needs the caller that
``occ.api.auth.AdminAuthInterceptor`` established (UNAUTHENTICATED without one), and the money movements it causes
carry the caller as their actor (on the event, hence on the ledger row and the xDR).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from occ.api import tariff_source, wire
from occ.api.auth import caller
from occ.api.errors import abort
from occ.core.errors import (
    AlreadyExists,
    CurrencyChange,
    FailedPrecondition,
    InvalidRequest,
    NotFound,
    OccError,
    from_store,
    quoted,
)
from occ.core.payloads import close_request
from occ.core.tariffs import TariffHolder
from occ.store.keys import RERATE_KEY
from occ.store.scripts import Store
from occ.v1 import admin_pb2 as pb
from occ.v1 import admin_pb2_grpc
from rating_engine import TariffError, compile_tariff, load_tariff
from rating_engine.money import MAX_EXACT_MICROS
from rating_engine.summary import TariffSummary, summarize

log = logging.getLogger(__name__)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_STATUS = {pb.ACTIVE: "ACTIVE", pb.BLOCKED: "BLOCKED"}
_STATUS_BACK = {name: value for value, name in _STATUS.items()}
# transaction type → (event type, sign of the balance change, whether the amount must be positive)
_TRANSACTIONS = {
    pb.TOP_UP: ("topup", 1, True),
    pb.PAYMENT: ("payment", 1, True),
    pb.ADJUSTMENT: ("adjustment", 1, False),
    pb.REFUND: ("refund", -1, True),
}


def _account_id(value: str, field: str = "id") -> str:
    # No ':': an account's own keys are its key plus ':sessions', ':txn' … (keys.py), which another id must not name.
    if not value or len(value) > 256 or not value.isprintable() or ":" in value:
        raise InvalidRequest(field, "is required: at most 256 printable characters, no ':'")
    return value


def _credit_limit(value: int) -> int:
    if not 0 <= value <= MAX_EXACT_MICROS:
        raise InvalidRequest("credit_limit_micros", f"must be 0 to {MAX_EXACT_MICROS}")
    return value


MAX_TAX_RATE_PPM = 1_000_000
MAX_TAX_CODE = 20
DEFAULT_PAGE, MAX_PAGE = 50, 1000  # ListAccounts' page_size (and ListSessions' limit over every account)
DEFAULT_SESSIONS = 200


def prepaid_tax_fields(tax: pb.PrepaidTax) -> dict[str, str | int]:
    """The account fields of a prepaid tax (always written together); validated, INVALID_ARGUMENT naming the field."""
    if not 0 <= tax.rate_ppm <= MAX_TAX_RATE_PPM:
        raise InvalidRequest("prepaid_tax.rate_ppm", f"must be 0 to {MAX_TAX_RATE_PPM} (millionths: 200000 = 20 %)")
    if tax.rate_ppm == 0:
        if tax.ledger_code or tax.tax_code:
            raise InvalidRequest("prepaid_tax.rate_ppm", "is 0 (no tax): leave ledger_code and tax_code unset")
        return {"prepaid_tax_ppm": 0, "prepaid_tax_ledger": "", "prepaid_tax_code": ""}
    if not 0 < tax.ledger_code < 10**15:
        raise InvalidRequest("prepaid_tax.ledger_code", "is required with a rate: 1 to 15 digits")
    if len(tax.tax_code) > MAX_TAX_CODE or not tax.tax_code.isprintable():
        raise InvalidRequest("prepaid_tax.tax_code", f"at most {MAX_TAX_CODE} printable characters")
    return {"prepaid_tax_ppm": tax.rate_ppm, "prepaid_tax_ledger": str(tax.ledger_code),
            "prepaid_tax_code": tax.tax_code}  # fmt: skip


def _account(account_id: str, fields: dict[str, str]) -> pb.Account:
    """The Account message of a stored account's fields (``Store.read_account``)."""
    balance, limit, reserved = (int(fields.get(name) or 0) for name in ("balance", "credit_limit", "reserved"))
    return pb.Account(
        id=account_id,
        currency=fields.get("currency", ""),
        credit_limit_micros=limit,
        status=_STATUS_BACK.get(fields.get("status", ""), pb.ACCOUNT_STATUS_UNSPECIFIED),
        tariff_plan=fields.get("plan", ""),
        tax_profile=fields.get("tax_profile", ""),
        balance_micros=balance,
        reserved_micros=reserved,
        available_micros=balance + limit - reserved,
        open_sessions=int(fields["open_sessions"]),
        prepaid_tax=pb.PrepaidTax(
            rate_ppm=int(fields.get("prepaid_tax_ppm") or 0),
            ledger_code=int(fields.get("prepaid_tax_ledger") or 0),
            tax_code=fields.get("prepaid_tax_code", ""),
        ),
    )


def _tariff_info(summary: TariffSummary) -> pb.TariffInfo:
    return pb.TariffInfo(
        tariff_hash=summary.tariff_hash, name=summary.name, currency=summary.currency, timezone=summary.timezone,
        plans=summary.plans, prefixes=summary.prefixes, rates=len(summary.rate_names),
        group_prefixes=summary.group_prefixes, rate_names=summary.rate_names, bands=summary.bands,
    )  # fmt: skip


class AdminService(admin_pb2_grpc.AdminServicer):
    def __init__(
        self,
        store: Store,
        tariffs: TariffHolder,
        *,
        validity_time_s: int,
        notify: Callable[[str, str, str, str], Awaitable[None]],
        tariff_root: Path,
        tariff_upload_max_bytes: int,
    ) -> None:
        self.store, self.tariffs, self.validity_time_s, self.notify = store, tariffs, validity_time_s, notify
        self.tariff_root, self.tariff_upload_max_bytes = tariff_root, tariff_upload_max_bytes

    def _check_plan(self, plan: str) -> None:
        if not plan:
            raise InvalidRequest("tariff_plan", "is required")
        if self.tariffs.loaded and plan not in self.tariffs.current.plan_names:
            plans = ", ".join(self.tariffs.current.plan_names)
            raise InvalidRequest("tariff_plan", f"{quoted(plan)} is not a plan of the current tariff ({plans})")

    def _check_currency(self, currency: str) -> None:
        if not _CURRENCY.match(currency):
            raise InvalidRequest("currency", f"{quoted(currency)} is not an ISO 4217 code such as EUR")
        tariff_currency = self.tariffs.current.tariff.currency if self.tariffs.loaded else currency
        if currency != tariff_currency:
            raise InvalidRequest("currency", f"{currency} differs from the tariff's {tariff_currency}")

    async def _call(self, handler, request, context):
        try:
            caller()  # fail closed: Admin answers only behind the authentication interceptor
            wire.check_lengths(request)
            return await handler(request)
        except OccError as exc:
            await abort(context, exc)

    async def CreateAccount(self, request: pb.Account, context) -> pb.Account:
        return await self._call(self._create, request, context)

    async def _create(self, request: pb.Account) -> pb.Account:
        account_id = _account_id(request.id)
        self._check_currency(request.currency)
        self._check_plan(request.tariff_plan)
        _credit_limit(request.credit_limit_micros)
        if request.status not in (pb.ACCOUNT_STATUS_UNSPECIFIED, *_STATUS):
            raise InvalidRequest("status", f"unknown status {request.status}")
        fields = {
            "currency": request.currency,
            "credit_limit": request.credit_limit_micros,
            "status": _STATUS.get(request.status, "ACTIVE"),
            "plan": request.tariff_plan,
            "tax_profile": request.tax_profile,
            **prepaid_tax_fields(request.prepaid_tax),
        }  # (account.lua sets created_ms)
        if await self.store.write_account(account_id, "create", fields) == "exists":
            raise AlreadyExists("id", f"account {quoted(account_id)} already exists")
        return await self._get(pb.GetAccountRequest(id=account_id))

    async def UpdateAccount(self, request: pb.UpdateAccountRequest, context) -> pb.Account:
        return await self._call(self._update, request, context)

    async def _update(self, request: pb.UpdateAccountRequest) -> pb.Account:
        account_id = _account_id(request.id)
        fields: dict[str, str | int] = {}
        if request.HasField("credit_limit_micros"):
            fields["credit_limit"] = _credit_limit(request.credit_limit_micros)
        if request.HasField("status"):
            if request.status not in _STATUS:
                raise InvalidRequest("status", f"must be ACTIVE or BLOCKED (got {request.status})")
            fields["status"] = _STATUS[request.status]
        if request.HasField("tariff_plan"):
            self._check_plan(request.tariff_plan)
            fields["plan"] = request.tariff_plan
        if request.HasField("tax_profile"):
            fields["tax_profile"] = request.tax_profile
        if request.HasField("prepaid_tax"):
            fields.update(prepaid_tax_fields(request.prepaid_tax))
        if await self.store.write_account(account_id, "update", fields) == "missing":
            raise NotFound("id", f"no account {quoted(account_id)}")
        return await self._get(pb.GetAccountRequest(id=account_id))

    async def GetAccount(self, request: pb.GetAccountRequest, context) -> pb.Account:
        return await self._call(self._get, request, context)

    async def _get(self, request: pb.GetAccountRequest) -> pb.Account:
        account_id = _account_id(request.id)
        fields = await self.store.read_account(account_id)
        if fields is None:
            raise NotFound("id", f"no account {quoted(account_id)}")
        return _account(account_id, fields)

    async def ListAccounts(self, request: pb.ListAccountsRequest, context) -> pb.ListAccountsAnswer:
        return await self._call(self._list_accounts, request, context)

    async def _list_accounts(self, request: pb.ListAccountsRequest) -> pb.ListAccountsAnswer:
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidRequest("page_size", f"must be 1 to {MAX_PAGE} (0: {DEFAULT_PAGE})")
        for field in ("prefix", "page_token"):
            if not getattr(request, field).isprintable():
                raise InvalidRequest(field, "must be printable characters")
        ids, more = await self.store.account_ids(
            prefix=request.prefix, after=request.page_token, limit=request.page_size or DEFAULT_PAGE
        )
        answer = pb.ListAccountsAnswer(next_page_token=ids[-1] if more else "")
        for account_id, fields in zip(ids, await self.store.read_accounts(ids), strict=True):
            if fields is not None:  # (an index entry always has its account: account.lua writes both)
                answer.accounts.append(_account(account_id, fields))
        return answer

    async def WhoAmI(self, request: pb.WhoAmIRequest, context) -> pb.WhoAmIAnswer:
        return await self._call(self._who_am_i, request, context)

    async def _who_am_i(self, request: pb.WhoAmIRequest) -> pb.WhoAmIAnswer:
        identity = caller()
        return pb.WhoAmIAnswer(name=identity.name, role=identity.role, actor=identity.actor)

    async def Transact(self, request: pb.TransactionRequest, context) -> pb.TransactionAnswer:
        return await self._call(self._transact, request, context)

    async def _transact(self, request: pb.TransactionRequest) -> pb.TransactionAnswer:
        account_id = _account_id(request.account_id, "account_id")
        if request.type not in _TRANSACTIONS:
            raise InvalidRequest("type", f"must be TOP_UP, PAYMENT, ADJUSTMENT or REFUND (got {request.type})")
        kind, sign, positive = _TRANSACTIONS[request.type]
        amount = request.amount_micros
        if positive and amount <= 0:
            raise InvalidRequest("amount_micros", f"must be positive for {pb.TransactionType.Name(request.type)}")
        if amount == 0 or abs(amount) > MAX_EXACT_MICROS:
            raise InvalidRequest("amount_micros", f"must be non-zero and at most {MAX_EXACT_MICROS} in size")
        if not request.idempotency_key or len(request.idempotency_key) > 256:
            raise InvalidRequest("idempotency_key", "is required (at most 256 characters)")
        if request.idempotency_key.startswith(RERATE_KEY):
            # occ rerate's balance corrections use these keys; settlement books them without an xDR of their own
            raise InvalidRequest("idempotency_key", f"must not start with {RERATE_KEY!r} (reserved for occ rerate)")
        if not 0 < request.ledger_code < 10**15:
            raise InvalidRequest("ledger_code", "is required: 1 to 15 digits")
        outcome, transaction_id, balance, tax = await self.store.transact(
            account_id,
            key=request.idempotency_key,
            kind=kind,
            amount_micros=sign * amount,
            ledger_code=request.ledger_code,
            description=request.description,
            actor=caller().actor,
        )
        if outcome == "missing":
            raise NotFound("account_id", f"no account {quoted(account_id)}")
        if outcome == "conflict":
            raise FailedPrecondition("idempotency_key", "already used for a different transaction on this account")
        if outcome == "limit":
            raise FailedPrecondition(
                "amount_micros", f"the balance would leave ±{MAX_EXACT_MICROS}, the range OCC keeps exact"
            )
        if outcome == "ok" and sign * amount > 0:
            await self._ask_for_reauthorization(account_id)
        return pb.TransactionAnswer(
            transaction_id=transaction_id, balance_micros=balance, duplicate=outcome == "dup", tax_micros=tax
        )

    async def _ask_for_reauthorization(self, account_id: str) -> None:
        """Credit was added: the account's open sessions may get more now (RFC 8506 re-auth), so tell their switches."""
        account = self.store.keys(account_id)
        session_ids = [member.decode() for member in await self.store.client.smembers(account.sessions)]
        if not session_ids:
            return
        pipe = self.store.client.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.hget(account.session(session_id), "state")
        for session_id, state in zip(session_ids, await pipe.execute(), strict=True):
            if state == b"OPEN":  # an aborted session is being ended: it gets no more credit
                await self.notify("reauth", account_id, session_id, "")

    async def ListSessions(self, request: pb.ListSessionsRequest, context) -> pb.ListSessionsAnswer:
        return await self._call(self._list_sessions, request, context)

    async def _list_sessions(self, request: pb.ListSessionsRequest) -> pb.ListSessionsAnswer:
        if request.account_id:
            sessions = await self.store.open_sessions(_account_id(request.account_id, "account_id"))
        elif not 0 <= request.limit <= MAX_PAGE:
            raise InvalidRequest("limit", f"must be 1 to {MAX_PAGE} (0: {DEFAULT_SESSIONS})")
        else:
            sessions = await self.store.sessions(await self.store.open_session_ids(request.limit or DEFAULT_SESSIONS))
        answer = pb.ListSessionsAnswer()
        for session in sessions:
            answer.sessions.add(
                session_id=session["session_id"],
                account_id=session["account_id"],
                last_request_number=int(session["last_rn"] or 0),
                reserved_micros=session["held"],
                cost_micros=int(session["cost"] or 0),
                called_party=session["called"],
                started_unix_ms=int(session["started_ms"] or 0),
                deadline_unix_ms=int(session["deadline_ms"] or 0),
            )
        return answer

    async def AbortSession(self, request: pb.AbortSessionRequest, context) -> pb.AbortSessionAnswer:
        return await self._call(self._abort, request, context)

    async def _abort(self, request: pb.AbortSessionRequest) -> pb.AbortSessionAnswer:
        account_id = _account_id(request.account_id, "account_id")
        session_id = _account_id(request.session_id, "session_id")
        now_ms = int(time.time() * 1000)
        abort = close_request(self.store, account_id, session_id, cause="ABORTED", now_ms=now_ms,
                              validity_time_s=self.validity_time_s, reason=request.reason,
                              actor=caller().actor)  # fmt: skip
        [result] = await self.store.run_batch("session", [abort])
        if isinstance(result, Exception):
            raise from_store(result)
        if result.outcome != "ok":
            return pb.AbortSessionAnswer(aborted=False)
        await self.notify("abort", account_id, session_id, request.reason)
        log.info("session aborted", extra={"session_id": session_id, "account": account_id})
        return pb.AbortSessionAnswer(aborted=True, cost_micros=int(result.answer[3]))

    async def LoadTariff(self, request: pb.LoadTariffRequest, context) -> pb.LoadTariffAnswer:
        return await self._call(self._load_tariff, request, context)

    async def CheckTariff(self, request: pb.LoadTariffRequest, context) -> pb.LoadTariffAnswer:
        return await self._call(functools.partial(self._load_tariff, check_only=True), request, context)

    async def _load_tariff(self, request: pb.LoadTariffRequest, *, check_only: bool = False) -> pb.LoadTariffAnswer:
        given = [name for name in ("directory", "files", "archive") if getattr(request, name)]
        if len(given) != 1:
            raise InvalidRequest("directory", "give exactly one of directory, files and archive")
        limit = self.tariff_upload_max_bytes
        if request.directory:
            files = await asyncio.to_thread(tariff_source.below_root, self.tariff_root, request.directory, limit)
            label = f"{self.tariff_root}/{request.directory}"
        elif request.files:
            files, label = tariff_source.uploaded(request.files, limit), "uploaded files"
        else:
            files = await asyncio.to_thread(tariff_source.unpacked_archive, request.archive, limit)
            label = "uploaded archive"
        try:
            with tariff_source.unpacked(files) as directory:
                if check_only:
                    return await self._check_tariff(directory)
                compiled, changed = await self.tariffs.publish(directory, label=label)
        except TariffError as exc:
            raise InvalidRequest(given[0], str(exc)) from None
        except CurrencyChange as exc:
            raise FailedPrecondition(given[0], str(exc)) from None
        except OSError as exc:  # a name too long, a loop of links, a file the server may not read …
            raise InvalidRequest(given[0], f"cannot be read: {exc.strerror or type(exc).__name__}") from None
        return pb.LoadTariffAnswer(
            tariff_hash=compiled.hash,
            changed=changed,
            prefixes=len(compiled.tariff.prefixes),
            rates=len(compiled.tariff.rates),
            plans=compiled.plan_names,
        )

    async def _check_tariff(self, directory: Path) -> pb.LoadTariffAnswer:
        """Validate and summarise the tariff in ``directory``: its findings, or its summary; nothing published."""
        try:
            compiled = await asyncio.to_thread(lambda: compile_tariff(load_tariff(directory)))
        except TariffError as exc:
            findings = [pb.TariffFinding(file=i.file, line=i.line, column=i.column, message=i.message)
                        for i in exc.issues]  # fmt: skip
            return pb.LoadTariffAnswer(findings=findings)
        current = self.tariffs.current if self.tariffs.loaded else None
        changed = current is None or current.hash != compiled.hash
        answer = pb.LoadTariffAnswer(tariff_hash=compiled.hash, changed=changed, prefixes=len(compiled.tariff.prefixes),
                                     rates=len(compiled.tariff.rates), plans=compiled.plan_names,
                                     tariff=_tariff_info(summarize(compiled)))  # fmt: skip
        if current is not None and current.tariff.currency != compiled.tariff.currency:
            answer.findings.add(file="tariff.csv", line=0, column="currency",
                                message=f"the tariff is in {compiled.tariff.currency}, the current one and its "
                                        f"accounts in {current.tariff.currency}")  # fmt: skip
        return answer

    async def GetTariff(self, request: pb.GetTariffRequest, context) -> pb.TariffInfo:
        return await self._call(self._get_tariff, request, context)

    async def _get_tariff(self, request: pb.GetTariffRequest) -> pb.TariffInfo:
        if not self.tariffs.loaded:
            raise FailedPrecondition("tariff", "no tariff is loaded")
        return _tariff_info(summarize(self.tariffs.current))
