"""Ledger rows written directly to the store, as settlement books them, for the journal tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert

from settlement.entries import period_of
from settlement.store.schema import ledger


def movement(account: str, kind: str, amount: int, ledger_code: str, time_ms: int, *, key: str,
             reference: str = "", description: str = "") -> dict[str, Any]:  # fmt: skip
    """A ledger row (amount in micro-units, credit positive)."""
    return {"id": key, "period": period_of(time_ms), "account": account, "time_ms": time_ms, "kind": kind,
            "amount": amount, "balance": None, "currency": "EUR", "ledger_code": ledger_code,
            "reference": reference or f"ref-{key}", "description": description, "xdr_id": key,
            "actor": None}  # fmt: skip


def add_movements(engine: Engine, *rows: dict[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(ledger), list(rows))
