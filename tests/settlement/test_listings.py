"""``settlement.listings``: keyset pages of the ledger, xDRs and invoices (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest
from billing_helpers import add_account, add_xdrs, euros, ms, xdr
from sqlalchemy import insert

from settlement.billing.run import run
from settlement.listings import ListingError, account_ledger, invoice_page, month_bounds_ms, xdr_page
from settlement.store.database import reading
from settlement.store.schema import ledger


def test_xdr_pages_walk_every_match_once_newest_first(store):
    add_account(store, "p")
    add_xdrs(
        store, [xdr("p", "session", euros("0.10") * n, "400000001", ms(2026, 1, 1 + n % 3, n)) for n in range(1, 8)]
    )
    seen, cursor = [], ""
    with reading(store) as connection:
        while True:
            rows, cursor = xdr_page(connection, account="p", period="2026-01", before=cursor, limit=3)
            seen += [(row.end_ms, row.id) for row in rows]
            if not cursor:
                break
        assert len(seen) == 7 and seen == sorted(seen, reverse=True)
        assert xdr_page(connection, account="p", status="BILLED")[0] == []
        with pytest.raises(ListingError, match="status"):
            xdr_page(connection, status="LOST")


def test_invoices_are_filtered_by_month_state_and_account(store):
    add_account(store, "inv")
    add_xdrs(store, [xdr("inv", "session", euros("1"), "400000001", ms(2026, 1, 10))])
    run(store, date(2026, 2, 2))
    with reading(store) as connection:
        [invoice], cursor = invoice_page(connection, account="inv", period="2026-01", state="COMPLETE")
        assert cursor == 0 and invoice.account == "inv"
        assert invoice_page(connection, period="2026-02")[0] == []


def test_an_accounts_ledger_comes_oldest_first_and_limited(store):
    add_account(store, "led")
    with store.begin() as connection:
        connection.execute(insert(ledger), [{"id": f"l{n}", "period": "2026-01", "account": "led", "time_ms": n,
                                             "kind": "topup", "amount": n, "balance": n, "currency": "EUR"}
                                            for n in range(1, 6)])  # fmt: skip
    with reading(store) as connection:
        assert [row.time_ms for row in account_ledger(connection, "led", limit=3)] == [3, 4, 5]


def test_a_month_is_its_utc_bounds():
    assert month_bounds_ms("2026-12") == (ms(2026, 12, 1, 0), ms(2027, 1, 1, 0))
    with pytest.raises(ListingError, match="period must be YYYY-MM"):
        month_bounds_ms("2026-13")
