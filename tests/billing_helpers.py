"""Billing test helpers: accounts, tax profiles and xDRs written directly to the store."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert

from settlement.billing.amounts import round_to_currency, to_micros
from settlement.billing.setup import set_account, set_tax_profile
from settlement.billing.tax import TaxProfile
from settlement.entries import period_of
from settlement.store.database import ensure_periods
from settlement.store.schema import accounts, xdrs

_ids = itertools.count(1)


def ms(year: int, month: int, day: int, hour: int = 12) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp() * 1000)


def round_micros(micros: Decimal | int, currency: str) -> int:
    """Micro-units (possibly fractional) rounded to the currency, as int micro-units (the tests' oracle)."""
    return to_micros(round_to_currency(Decimal(micros).scaleb(-6), currency))


def euros(text: str) -> int:
    """'1.234567' → micro-units."""
    from decimal import Decimal

    return int(Decimal(text) * 1_000_000)


PROFILES = {
    "VAT20": TaxProfile(name="VAT20", mode="EXCLUSIVE", rate_ppm=200_000, tax_code="S20", tax_ledger_code="470000001"),
    "VAT19I": TaxProfile(
        name="VAT19I", mode="INCLUSIVE", rate_ppm=190_000, tax_code="S19", tax_ledger_code="470000002"
    ),
    "EXEMPT": TaxProfile(name="EXEMPT", mode="EXEMPT", rate_ppm=0, tax_code="E0", tax_ledger_code=""),
    "PRE20": TaxProfile(name="PRE20", mode="PREPAID", rate_ppm=200_000, tax_code="S20", tax_ledger_code="470000001"),
}


def add_profiles(engine: Engine) -> None:
    with engine.begin() as c:
        for profile in PROFILES.values():
            set_tax_profile(c, profile)


def add_account(engine: Engine, account: str, *, currency: str = "EUR", first_seen_ms: int | None = None,
                **billing: Any) -> None:  # fmt: skip
    with engine.begin() as c:
        c.execute(insert(accounts), {"account": account, "currency": currency, "opening_balance": 0,
                                     "first_seen_ms": first_seen_ms or ms(2026, 1, 1, 0)})  # fmt: skip
        if billing:
            set_account(c, account, **billing)


def xdr(account: str, kind: str, cost: int, ledger: str, end_ms: int, **extra: Any) -> dict[str, Any]:
    n = next(_ids)
    record_type = "PAYMENT" if kind in ("topup", "payment", "refund") else "MAIN"
    service = {"session": "voice", "event_charge": "message", "event_refund": "message"}.get(kind, "")
    row = {
        "id": f"x{n}", "period": period_of(end_ms), "account": account, "kind": kind, "record_type": record_type,
        "session_id": f"ref-{n}", "rating_group": 0, "subscriber": account, "calling": "", "called": "",
        "service": service, "plan": "", "start_ms": end_ms, "end_ms": end_ms, "units": 0, "over_units": 0,
        "cost": cost, "currency": "EUR", "dest_group": "", "ledger_code": ledger, "tariff_hash": "", "rate_id": "",
        "cause": "", "description": "", "tax_code": None, "tax_rate_ppm": None, "tax_amount": None,
        "status": "BILLABLE", "status_reason": "", "invoice_id": None, "revision": 0, "corrects": None,
        "created_ms": end_ms,
    }  # fmt: skip
    row.update(extra)
    return row


def add_xdrs(engine: Engine, rows: list[dict[str, Any]]) -> None:
    ensure_periods(engine, {r["period"] for r in rows}, set())
    with engine.begin() as c:
        c.execute(insert(xdrs), rows)
