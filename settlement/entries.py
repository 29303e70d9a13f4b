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

Every other entry books at most one ledger row and one xDR.

Signs: a ledger row's ``amount`` is the balance change (credit positive); an xDR's ``cost`` is what the customer
owes for the item (a debit of 0.30 is an xDR of cost 0.30; a top-up of 10 is an xDR of cost −10).

Times: a ledger row is of the moment the balance changed (``time_ms``). A usage xDR (session, event) starts when the
call or event began as the switch reported it (``start_s``; an entry without it falls back to ``time_ms``) and its
``period`` is that start's UTC month: a call priced at its start is billed in the period of that start, whichever
day it is settled (``docs/billing.md``). Every other xDR starts, ends and has its period at ``time_ms``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from rating_engine.money import MAX_EXACT_MICROS

USAGE = frozenset({"session_close", "event_charge", "event_refund"})
MONEY_MOVEMENTS = frozenset({"topup", "payment", "adjustment", "refund"})
TYPES = USAGE | MONEY_MOVEMENTS | {"session_charge"}
SERVICES = frozenset({"voice", "data", "message"})
CAUSES = frozenset({"TERMINATE", "TIMEOUT", "ABORTED"})
RERATE_KEY = "rerate:"
"""Idempotency-key prefix of the adjustments ``occ rerate`` makes (see ``settlement/rerate.py``)."""
MAX_TEXT = {"account": 256, "ledger": 15, "tariff": 64, "currency": 3, "tax_ledger": 15, "tax_code": 20}
_INTEGER = re.compile(r"-?[0-9]{1,19}").fullmatch  # ASCII digits only: int() would take "٣", " 5", "+5", "1_0"
TAX_SUFFIX = ":tax"
"""The id of a top-up's tax rows: ``<entry key>:tax``."""
Rows = tuple[dict[str, Any], ...]


class Malformed(ValueError):
    """The entry breaks the contract; the message names the field."""


def entry_key(shard: int, entry_id: str) -> str:
    """The durable identity of a stream entry, used as the id of what it books: ``s017:1795322840574-0``."""
    return f"s{shard:03d}:{entry_id}"


def period_of(time_ms: int) -> str:
    """The UTC month ``YYYY-MM`` of a Unix time in ms."""
    t = time.gmtime(time_ms // 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}"


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


def book(key: str, fields: dict[str, str], now_ms: int) -> tuple[Rows, Rows]:
    """(ledger rows, xDR rows) for one entry whose identity is ``key``; raises :class:`Malformed`."""
    kind = fields.get("type", "")
    if kind not in TYPES:
        raise Malformed(f"type {kind[:40]!r} is not one settlement knows")
    account = _text(fields, "account", required=True)
    currency = _text(fields, "currency", required=True)
    if not (len(currency) == 3 and currency.isascii() and currency.isupper()):
        raise Malformed(f"currency must be an ISO 4217 code, got {currency!r}")
    amount = _int(fields, "amount")
    balance = _int(fields, "balance")
    time_ms = _int(fields, "time_ms", low=0, high=4_102_444_800_000)  # before 2100
    ledger_code = _text(fields, "ledger")
    period = period_of(time_ms)

    ledger = None
    if amount != 0 or kind in MONEY_MOVEMENTS:
        ledger = {
            "id": key,
            "period": period,
            "account": account,
            "time_ms": time_ms,
            "kind": kind,
            "amount": amount,
            "balance": balance,
            "currency": currency,
            "ledger_code": ledger_code,
            "reference": fields.get("idempotency_key") or fields.get("session_id") or fields.get("id", ""),
            "description": fields.get("description", ""),
            "xdr_id": None if kind == "session_charge" else key,
        }
    if kind == "adjustment" and fields.get("idempotency_key", "").startswith(RERATE_KEY):
        ledger["xdr_id"] = None  # type: ignore[index]  (always a ledger row: a money movement)
        return (ledger,), ()  # type: ignore[return-value]
    if kind == "session_charge":
        if amount > 0:
            raise Malformed(f"amount of a session_charge must not be positive, got {amount}")
        _usage(fields)  # validated, not kept: the session_close carries the totals
        return (ledger,) if ledger is not None else (), ()

    xdr: dict[str, Any] = {
        "id": key,
        "period": period,
        "account": account,
        "kind": "session" if kind == "session_close" else kind,
        "record_type": "MAIN",
        "session_id": "",
        "rating_group": 0,
        "subscriber": account,
        "calling": "",
        "called": "",
        "service": "",
        "plan": fields.get("plan", ""),
        "start_ms": time_ms,
        "end_ms": time_ms,
        "units": 0,
        "over_units": 0,
        "currency": currency,
        "dest_group": "",
        "ledger_code": ledger_code,
        "tariff_hash": "",
        "rate_id": "",
        "cause": "",
        "description": fields.get("description", ""),
        "tax_code": None,
        "tax_rate_ppm": None,
        "tax_amount": None,
        "invoice_id": None,
        "revision": 0,
        "corrects": None,
        "created_ms": now_ms,
        "late_period_start_ms": None,
        "late_period_end_ms": None,
    }
    if kind in MONEY_MOVEMENTS:
        if kind != "adjustment":
            xdr["record_type"] = "PAYMENT"
        xdr["cost"] = -amount
        xdr["session_id"] = fields.get("idempotency_key", "")
    else:
        usage = _usage(fields)
        cost = _int(fields, "cost", low=0)
        xdr.update(usage)
        if kind == "session_close":
            if amount != 0:
                raise Malformed(f"amount of a session_close must be 0, got {amount}")
            cause = fields.get("cause", "")
            if cause not in CAUSES:
                raise Malformed(f"cause must be one of {', '.join(sorted(CAUSES))}, got {cause[:40]!r}")
            xdr["cause"] = cause
            xdr["over_units"] = _int(fields, "over", low=0)
            xdr["cost"] = cost
        else:
            sign = -1 if kind == "event_charge" else 1
            if amount != sign * cost:
                raise Malformed(f"amount {amount} does not match cost {cost} of a {kind}")
            xdr["cause"] = "EVENT"
            xdr["cost"] = -amount
        if fields.get("start_s"):  # entries written before start_s was on every usage entry: the entry's time
            xdr["start_ms"] = _int(fields, "start_s", low=0, high=4_102_444_800) * 1000
        xdr["period"] = period_of(xdr["start_ms"])  # a call belongs to the month it started in, not the one it settled
    xdr["status"], xdr["status_reason"] = billable_status(xdr)
    if kind == "topup" and "tax" in fields:
        return _taxed_topup(key, fields, ledger, xdr)  # type: ignore[arg-type]
    return ((ledger,) if ledger is not None else ()), (xdr,)


def _taxed_topup(key: str, fields: dict[str, str], ledger: dict[str, Any], xdr: dict[str, Any]) -> tuple[Rows, Rows]:
    """A top-up the online core credited net: the top-up as paid and the tax taken from it, two rows of each."""
    net = ledger["amount"]
    tax = _int(fields, "tax", low=1)
    gross = _int(fields, "gross", low=1)
    if gross - tax != net:
        raise Malformed(f"gross {gross} - tax {tax} must be the amount {net}")
    rate = _int(fields, "tax_rate_ppm", low=1, high=1_000_000)
    tax_ledger, tax_code = _text(fields, "tax_ledger"), _text(fields, "tax_code")
    tax_key = key + TAX_SUFFIX
    paid = {**ledger, "amount": gross, "balance": ledger["balance"] + tax}
    taken = {**ledger, "id": tax_key, "kind": "topup_tax", "amount": -tax, "ledger_code": tax_ledger,
             "xdr_id": tax_key}  # fmt: skip
    xdr["cost"] = -gross
    tax_xdr = {**xdr, "id": tax_key, "kind": "topup_tax", "record_type": "TAX", "cost": tax, "ledger_code": tax_ledger,
               "tax_code": tax_code, "tax_rate_ppm": rate, "tax_amount": tax}  # fmt: skip
    tax_xdr["status"], tax_xdr["status_reason"] = billable_status(tax_xdr)
    return (paid, taken), (xdr, tax_xdr)


def _usage(fields: dict[str, str]) -> dict[str, Any]:
    service = fields.get("service", "")
    if service not in SERVICES:
        raise Malformed(f"service must be one of {', '.join(sorted(SERVICES))}, got {service[:40]!r}")
    calling, called = fields.get("calling", ""), fields.get("called", "")
    return {
        "session_id": _text(fields, "session_id", required=True),
        "rating_group": _int(fields, "rg", low=0, high=2**32 - 1),
        "units": _int(fields, "units", low=0, high=10**12),
        "service": service,
        "subscriber": calling or fields["account"],
        "calling": calling,
        "called": called,
        "dest_group": fields.get("group", ""),
        "tariff_hash": _text(fields, "tariff"),
        "rate_id": fields.get("rate", ""),
    }


def billable_status(xdr: dict[str, Any]) -> tuple[str, str]:
    """(status, reason) an xDR can have on entering the store: BILLABLE, or RAW_EXCEPTED with why not."""
    if not xdr["ledger_code"]:
        return "RAW_EXCEPTED", "no ledger code"
    if not xdr["ledger_code"].isdigit():
        return "RAW_EXCEPTED", f"ledger code {xdr['ledger_code']!r} is not 1-15 digits"
    return "BILLABLE", ""
