"""Billing and the ERP export together: issued invoices go to a real erp-sim and come back POSTED or POSTING_ERROR."""

from __future__ import annotations

from datetime import date

from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from sqlalchemy import select

from settlement.billing.posting import on_export_outcome
from settlement.billing.run import run
from settlement.export.erp_sim import ErpSim
from settlement.export.exporter import Exporter
from settlement.store.schema import invoices


async def test_exported_invoices_are_posted_and_a_rejected_one_is_a_posting_error(store):
    add_profiles(store)
    add_account(store, "good", tax_profile="VAT20", customer_code="C-GOOD")
    add_account(store, "bad", tax_profile="VAT20", customer_code="C BAD")  # the ERP refuses codes with spaces
    add_xdrs(store, [xdr(a, "session", euros("1.5"), "400000001", ms(2026, 1, 10), units=60) for a in ("good", "bad")])
    assert run(store, date(2026, 2, 1)).issued == 2
    sim = ErpSim()
    await sim.start()
    try:
        async with Exporter(store, sim.url, on_outcome=on_export_outcome) as exporter:
            summary = await exporter.run_once()
    finally:
        await sim.close()
    assert (summary.accepted, summary.rejected) == (1, 1)
    with store.connect() as sql:
        states = dict(sql.execute(select(invoices.c.account, invoices.c.state)).all())
        reason = sql.execute(select(invoices.c.state_reason).where(invoices.c.account == "bad")).scalar()
    assert states == {"good": "POSTED", "bad": "POSTING_ERROR"}
    assert "customer" in reason.lower()
