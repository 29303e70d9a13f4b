"""One stream entry → the ledger rows and the xDRs it books (``docs/events.md`` is the contract read here).

Pure: no Redis, no SQL. :func:`book` validates an entry completely before returning anything, so an entry is either
booked whole or rejected whole with :class:`Malformed` naming the field (it then goes to the dead-letter stream).

A balance correction made by ``occ rerate`` (an adjustment whose idempotency key starts with :data:`RERATE_KEY`)
books its ledger row only: the correction xDRs the rerate wrote (a reversal and a new revision) already carry what
the customer owes, so an xDR for the adjustment as well would invoice the difference twice.

A top-up with prepaid tax (its entry has ``tax`` > 0: the online core credited the balance net) books two of each:
the top-up as paid (ledger +gross, PAYMENT xDR cost −gross, id = the entry key) and the tax taken from it (ledger
``topup_tax`` −tax on the entry's tax ledger code, TAX xDR kind ``topup_tax`` cost +tax with tax code, rate and
amount, id = ``<entry key>:tax``). The two ledger rows add up to the entry's ``amount``, the balance change, so
``live balance == opening + Σ ledger`` holds; the TAX xDR's id is its top-up's id plus :data:`TAX_SUFFIX`.

Every other money entry books at most one ledger row and one xDR. An ``account`` entry (an account created or
its settings changed) books neither: :func:`account_row` turns it into the ``accounts`` row it upserts, so that the
books know an account from its creation, before any money moves on it.

An entry caused by an administrator (a money movement, the close of a session an administrator aborted) names its
``actor`` (``token:<name>``, ``certificate:<name>``); its ledger rows and xDRs keep it. Entries without one (the
switch's usage, and entries written before actors existed) book ``actor`` None (NULL).

The rows are :class:`~settlement.records.LedgerRow`, :class:`~settlement.records.XdrRow` and
:class:`~settlement.records.AccountRow` (their fields and signs are documented there).

Times: a ledger row is of the moment the balance changed (``time_ms``). A usage xDR (session, event) starts when the
call or event began as the switch reported it (``start_s``; an entry without it falls back to ``time_ms``) and its
``period`` is that start's UTC month: a call priced at its start is billed in the period of that start, whichever
day it is settled (``docs/billing.md``). Every other xDR starts, ends and has its period at ``time_ms``.
"""

from __future__ import annotations

import re
import time

import msgspec

from occ.store.keys import RERATE_KEY
from rating_engine.money import MAX_EXACT_MICROS
from settlement.records import AccountRow, LedgerRow, XdrRow
from settlement.vocabulary import AccountStatus, RecordType, XdrStatus

ACCOUNT = "account"
"""The type of the entries that create an account or change its settings (no money: no ledger row, no xDR)."""
ACCOUNT_CHANGES = frozenset({"created", "updated"})
USAGE = frozenset({"session_close", "event_charge", "event_refund"})
MONEY_MOVEMENTS = frozenset({"topup", "payment", "adjustment", "refund"})
TYPES = USAGE | MONEY_MOVEMENTS | {"session_charge"}
SERVICES = frozenset({"voice", "data", "message"})
CAUSES = frozenset({"TERMINATE", "TIMEOUT", "ABORTED"})
MAX_TEXT = {"account": 256, "ledger": 15, "tariff": 64, "currency": 3, "tax_ledger": 15, "tax_code": 20,
            "prepaid_tax_ledger": 15, "prepaid_tax_code": 20, "actor": 300}  # fmt: skip
_INTEGER = re.compile(r"-?[0-9]{1,19}").fullmatch  # ASCII digits only: int() would take "٣", " 5", "+5", "1_0"
TAX_SUFFIX = ":tax"
"""The id of a top-up's tax rows: ``<entry key>:tax``."""
LedgerRows = tuple[LedgerRow, ...]
XdrRows = tuple[XdrRow, ...]
LATEST_MS = 4_102_444_800_000  # 2100-01-01: times beyond are not believed


class Malformed(ValueError):
    """The entry breaks the contract; the message names the field."""


def entry_key(shard: int, entry_id: str) -> str:
    """The durable identity of a stream entry, used as the id of what it books: ``s017:1795322840574-0``."""
    return f"s{shard:03d}:{entry_id}"


def period_of(time_ms: int) -> str:
    """The UTC month ``YYYY-MM`` of a Unix time in ms."""
    t = time.gmtime(time_ms // 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}"


def _currency(fields: dict[str, str]) -> str:
    currency = _text(fields, "currency", required=True)
    if not (len(currency) == 3 and currency.isascii() and currency.isupper()):
        raise Malformed(f"currency must be an ISO 4217 code, got {currency!r}")
    return currency


def _int(fields: dict[str, str], name: str, *, low: int = -MAX_EXACT_MICROS, high: int = MAX_EXACT_MICROS) -> int:
    text = fields.get(name)
    if not text:
        raise Malformed(f"{name} is missing")
    if _INTEGER(text) is None:
        raise Malformed(f"{name} must be an integer, got {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise Malformed(f"{name} must be within {low}..{high}, got {value}")
    return value


def _text(fields: dict[str, str], name: str, *, required: bool = False) -> str:
    value = fields.get(name, "")
    if required and not value:
        raise Malformed(f"{name} is missing")
    limit = MAX_TEXT.get(name)
    if limit is not None and len(value) > limit:
        raise Malformed(f"{name} is longer than {limit} characters")
    return value


class Head(msgspec.Struct, frozen=True, gc=False):
    """What every entry carries, validated: the fields its rows share (``docs/events.md`` names them)."""

    key: str
    kind: str
    account: str
    currency: str
    amount: int
    balance: int
    time_ms: int
    ledger_code: str
    period: str
    actor: str | None


class Usage(msgspec.Struct, frozen=True, gc=False):
    """The usage fields of a session or event entry, validated."""

    session_id: str
    rating_group: int
    units: int
    service: str
    subscriber: str
    calling: str
    called: str
    dest_group: str
    tariff_hash: str
    rate_id: str


def book(key: str, fields: dict[str, str], now_ms: int) -> tuple[LedgerRows, XdrRows]:
    """(ledger rows, xDR rows) for one entry whose identity is ``key``; raises :class:`Malformed`."""
    kind = fields.get("type", "")
    if kind not in TYPES:
        raise Malformed(f"type {kind[:40]!r} is not one settlement knows")
    head = _head(key, kind, fields)
    ledger = _ledger_row(head, fields) if head.amount != 0 or kind in MONEY_MOVEMENTS else None
    if kind == "adjustment" and fields.get("idempotency_key", "").startswith(RERATE_KEY):
        return (msgspec.structs.replace(ledger, xdr_id=None),), ()  # type: ignore[arg-type]  (a money movement)
    if kind == "session_charge":
        if head.amount > 0:
            raise Malformed(f"amount of a session_charge must not be positive, got {head.amount}")
        _usage(fields)  # validated, not kept: the session_close carries the totals
        return (ledger,) if ledger is not None else (), ()
    if kind in MONEY_MOVEMENTS:
        xdr = _money_xdr(head, fields, now_ms)
        if kind == "topup" and "tax" in fields:
            return _taxed_topup(head, fields, ledger, xdr)  # type: ignore[arg-type]  (a money movement)
        return (ledger,), (xdr,)  # type: ignore[return-value]
    return ((ledger,) if ledger is not None else ()), (_usage_xdr(head, fields, now_ms),)


def _head(key: str, kind: str, fields: dict[str, str]) -> Head:
    account = _text(fields, "account", required=True)
    currency = _currency(fields)
    amount = _int(fields, "amount")
    balance = _int(fields, "balance")
    time_ms = _int(fields, "time_ms", low=0, high=LATEST_MS)
    ledger_code = _text(fields, "ledger")
    actor = _text(fields, "actor") or None
    return Head(key, kind, account, currency, amount, balance, time_ms, ledger_code, period_of(time_ms), actor)


def _ledger_row(head: Head, fields: dict[str, str]) -> LedgerRow:
    return LedgerRow(
        id=head.key,
        period=head.period,
        account=head.account,
        time_ms=head.time_ms,
        kind=head.kind,
        amount=head.amount,
        balance=head.balance,
        currency=head.currency,
        ledger_code=head.ledger_code,
        reference=fields.get("idempotency_key") or fields.get("session_id") or fields.get("id", ""),
        description=fields.get("description", ""),
        xdr_id=None if head.kind == "session_charge" else head.key,
        actor=head.actor,
    )


def _money_xdr(head: Head, fields: dict[str, str], now_ms: int) -> XdrRow:
    """The xDR of a top-up, payment, refund or adjustment: cost = −amount (money in is a credit)."""
    status, reason = billable_status(head.ledger_code)
    return XdrRow(
        id=head.key,
        period=head.period,
        account=head.account,
        kind=head.kind,
        record_type=RecordType.MAIN if head.kind == "adjustment" else RecordType.PAYMENT,
        session_id=fields.get("idempotency_key", ""),
        subscriber=head.account,
        plan=fields.get("plan", ""),
        start_ms=head.time_ms,
        end_ms=head.time_ms,
        cost=-head.amount,
        currency=head.currency,
        ledger_code=head.ledger_code,
        description=fields.get("description", ""),
        status=status,
        status_reason=reason,
        created_ms=now_ms,
        actor=head.actor,
    )


def _usage_xdr(head: Head, fields: dict[str, str], now_ms: int) -> XdrRow:
    """The xDR of a session close (one rating group's totals) or a one-shot event charge or refund."""
    usage = _usage(fields)
    cost = _int(fields, "cost", low=0)
    over_units = 0
    if head.kind == "session_close":
        if head.amount != 0:
            raise Malformed(f"amount of a session_close must be 0, got {head.amount}")
        cause = fields.get("cause", "")
        if cause not in CAUSES:
            raise Malformed(f"cause must be one of {', '.join(sorted(CAUSES))}, got {cause[:40]!r}")
        over_units = _int(fields, "over", low=0)
    else:
        sign = -1 if head.kind == "event_charge" else 1
        if head.amount != sign * cost:
            raise Malformed(f"amount {head.amount} does not match cost {cost} of a {head.kind}")
        cause, cost = "EVENT", -head.amount
    # An entry written before start_s was on every usage entry: the entry's own time.
    start_ms = _int(fields, "start_s", low=0, high=LATEST_MS // 1000) * 1000 if fields.get("start_s") else head.time_ms
    status, reason = billable_status(head.ledger_code)
    return XdrRow(
        id=head.key,
        period=period_of(start_ms),  # a call belongs to the month it started in, not the one it was settled in
        account=head.account,
        kind="session" if head.kind == "session_close" else head.kind,
        record_type=RecordType.MAIN,
        session_id=usage.session_id,
        rating_group=usage.rating_group,
        subscriber=usage.subscriber,
        calling=usage.calling,
        called=usage.called,
        service=usage.service,
        plan=fields.get("plan", ""),
        start_ms=start_ms,
        end_ms=head.time_ms,
        units=usage.units,
        over_units=over_units,
        cost=cost,
        currency=head.currency,
        dest_group=usage.dest_group,
        ledger_code=head.ledger_code,
        tariff_hash=usage.tariff_hash,
        rate_id=usage.rate_id,
        cause=cause,
        description=fields.get("description", ""),
        status=status,
        status_reason=reason,
        created_ms=now_ms,
        actor=head.actor,
    )


def _taxed_topup(head: Head, fields: dict[str, str], ledger: LedgerRow, xdr: XdrRow) -> tuple[LedgerRows, XdrRows]:
    """A top-up the online core credited net: the top-up as paid and the tax taken from it, two rows of each."""
    net = ledger.amount
    tax = _int(fields, "tax", low=1)
    gross = _int(fields, "gross", low=1)
    if gross - tax != net:
        raise Malformed(f"gross {gross} - tax {tax} must be the amount {net}")
    rate = _int(fields, "tax_rate_ppm", low=1, high=1_000_000)
    tax_ledger, tax_code = _text(fields, "tax_ledger"), _text(fields, "tax_code")
    tax_key = head.key + TAX_SUFFIX
    replace = msgspec.structs.replace
    paid = replace(ledger, amount=gross, balance=ledger.balance + tax)  # type: ignore[operator]  (always set here)
    taken = replace(ledger, id=tax_key, kind="topup_tax", amount=-tax, ledger_code=tax_ledger, xdr_id=tax_key)
    status, reason = billable_status(tax_ledger)
    tax_xdr = replace(xdr, id=tax_key, kind="topup_tax", record_type=RecordType.TAX, cost=tax, ledger_code=tax_ledger,
                      tax_code=tax_code, tax_rate_ppm=rate, tax_amount=tax, status=status,
                      status_reason=reason)  # fmt: skip
    return (paid, taken), (replace(xdr, cost=-gross), tax_xdr)


def _usage(fields: dict[str, str]) -> Usage:
    service = fields.get("service", "")
    if service not in SERVICES:
        raise Malformed(f"service must be one of {', '.join(sorted(SERVICES))}, got {service[:40]!r}")
    calling = fields.get("calling", "")
    return Usage(
        session_id=_text(fields, "session_id", required=True),
        rating_group=_int(fields, "rg", low=0, high=2**32 - 1),
        units=_int(fields, "units", low=0, high=10**12),
        service=service,
        subscriber=calling or fields["account"],
        calling=calling,
        called=fields.get("called", ""),
        dest_group=fields.get("group", ""),
        tariff_hash=_text(fields, "tariff"),
        rate_id=fields.get("rate", ""),
    )


def account_row(key: str, fields: dict[str, str]) -> AccountRow:
    """The ``accounts`` row an ``account`` entry (created or updated) upserts; raises :class:`Malformed`.

    The row carries the entry's stream position (``settings_ms``, ``settings_seq``, from ``key``) so that the newest
    entry's settings win whatever order workers book them in; ``first_seen_ms`` is the account's creation (or,
    without ``created_ms``, the entry's time) and counts only when the row is new.
    """
    if fields.get("type") != ACCOUNT:
        raise Malformed(f"type {fields.get('type', '')[:40]!r} is not {ACCOUNT!r}")
    change = fields.get("change", "")
    if change not in ACCOUNT_CHANGES:
        raise Malformed(f"change must be one of {', '.join(sorted(ACCOUNT_CHANGES))}, got {change[:40]!r}")
    status = fields.get("status", "")
    if status not in AccountStatus.__members__:
        raise Malformed(f"status must be one of {', '.join(sorted(AccountStatus))}, got {status[:40]!r}")
    time_ms = _int(fields, "time_ms", low=0, high=LATEST_MS)
    created_ms = _int(fields, "created_ms", low=0, high=LATEST_MS) if fields.get("created_ms") else None
    ms, _, seq = key.rpartition(":")[2].partition("-")
    if not (ms.isdigit() and seq.isdigit()):
        raise Malformed(f"key {key[:100]!r} is not s<shard>:<ms>-<seq>")
    rate = _int(fields, "prepaid_tax_ppm", low=0, high=1_000_000) if fields.get("prepaid_tax_ppm") else 0
    return AccountRow(
        account=_text(fields, "account", required=True),
        currency=_currency(fields),
        first_seen_ms=created_ms if created_ms is not None else time_ms,
        plan=_text(fields, "plan", required=True),
        credit_limit=_int(fields, "credit_limit", low=0),
        status=AccountStatus(status),
        prepaid_tax_ppm=rate,
        prepaid_tax_ledger=_text(fields, "prepaid_tax_ledger"),
        prepaid_tax_code=_text(fields, "prepaid_tax_code"),
        created_ms=created_ms,
        settings_ms=int(ms),
        settings_seq=int(seq),
    )


def billable_status(ledger_code: str) -> tuple[XdrStatus, str]:
    """(status, reason) an xDR with ``ledger_code`` can have on entering the store: BILLABLE, or RAW_EXCEPTED with
    why not."""
    if not ledger_code:
        return XdrStatus.RAW_EXCEPTED, "no ledger code"
    if not ledger_code.isdigit():
        return XdrStatus.RAW_EXCEPTED, f"ledger code {ledger_code!r} is not 1-15 digits"
    return XdrStatus.BILLABLE, ""
