"""From real online events to an invoice: online core → Redis streams → Drain → SQL → bill run (SQLite, PostgreSQL).

The calls start Monday 2026-01-05 (the switch's time) and are settled today: they are billed in January 2026, the
period of their start; what happens today (top-ups, payments, SMS without a time of their own) in today's period.

The statement of a postpaid account is its ledger seen from the customer's side: carried forward = −(live balance)
+ the tax the invoice adds, rounded to the cent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from billing_helpers import round_micros
from online_app import serving, session, settle_everything, voice
from sqlalchemy import func, select

from occ.v1 import admin_pb2 as admin
from occ.v1 import charging_pb2 as pb
from settlement.billing.cycle import local_date, next_boundary
from settlement.billing.run import BillingError, run
from settlement.billing.setup import set_account, set_tax_profile
from settlement.billing.tax import TaxProfile
from settlement.store.schema import invoice_lines, invoices, xdrs

JANUARY = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)


async def test_online_events_end_on_exactly_one_invoice(redis_url, tmp_path, store):
    async with serving(redis_url, tmp_path) as client:
        await client.account("alice", balance=10_000_000)
        c = client.charging
        await c.StartSession(session("call-1", 0, "alice", voice(requested=60)))
        await c.UpdateSession(session("call-1", 1, "alice", voice(requested=60, used=60)))
        await c.EndSession(session("call-1", 2, "alice", voice(used=1)))  # 61 s: 0.300834
        await c.ChargeEvent(pb.EventRequest(action=pb.DIRECT_DEBIT, session_id="sms-1", subscriber="alice",
                                            service=pb.MESSAGE, units=1, called_party="+447900000000"))  # fmt: skip
        await client.admin.Transact(admin.TransactionRequest(account_id="alice", type=admin.PAYMENT,
                                                             amount_micros=2_500_000, idempotency_key="pay-1",
                                                             ledger_code=400000010))  # fmt: skip
        await settle_everything(client, redis_url, store)
        live = (await client.balance("alice")).balance_micros

    with store.begin() as sql:
        set_tax_profile(sql, TaxProfile(name="VAT20", mode="EXCLUSIVE", rate_ppm=200_000, tax_code="S20",
                                        tax_ledger_code="470000001"))  # fmt: skip
        set_account(sql, "alice", tax_profile="VAT20", customer_code="C-ALICE")
        usage = sql.execute(select(func.sum(xdrs.c.cost)).where(xdrs.c.record_type == "MAIN")).scalar()
    # The first billing day after the traffic (UTC, day 1) closes every period from the call's, January 2026 (it
    # started Monday 2026-01-05 09:00), to the current one, which holds the SMS, the top-up and the payment.
    end = next_boundary(int(time.time() * 1000), 1, "UTC")
    with pytest.raises(BillingError, match="in the future"):
        run(store, local_date(end, "UTC"))
    report = run(store, local_date(end, "UTC"), now_ms=end + 1)  # as if run on that billing day
    assert report.issued == months_from_january_2026() and report.drafts == 0 and report.excepted == []
    with store.connect() as sql:
        last = sql.execute(select(invoices).order_by(invoices.c.period_start_ms.desc()).limit(1)).one()
        tax = sql.execute(select(invoice_lines.c.tax).where(invoice_lines.c.category == "TAX")).scalars().all()
        statuses = sql.execute(select(xdrs.c.status, func.count()).group_by(xdrs.c.status)).all()
        placed = dict(sql.execute(select(xdrs.c.session_id, invoices.c.period_start_ms)
                                  .join(invoices, invoices.c.id == xdrs.c.invoice_id)
                                  .where(xdrs.c.record_type != "TAX")).all())  # fmt: skip
    assert placed == {"call-1": JANUARY, "sms-1": last.period_start_ms, "opening-alice": last.period_start_ms,
                      "pay-1": last.period_start_ms}  # fmt: skip
    assert len(tax) == 2  # January's on the call, this month's on the SMS
    assert last.carried_forward == round_micros(Decimal(-live) + Decimal(usage) * Decimal("0.2"), "EUR")
    assert last.payments == -12_500_000 and last.state == "COMPLETE" and last.customer_code == "C-ALICE"
    assert dict(statuses) == {"BILLED": 4 + len(tax)}  # top-up, call, SMS, payment, and the taxation xDRs


async def test_prepaid_tax_taken_online_is_billed_as_taken(redis_url, tmp_path, store):
    """Top-up 10.00 at 20 %: the online core credits 8.333333 (tax 1.666667); a 61 s call costs 0.300834. The invoice
    carries −(live balance) = −8.032499 → −8.03, with the tax as taken, not computed again."""
    async with serving(redis_url, tmp_path) as client:
        tax = admin.PrepaidTax(rate_ppm=200_000, ledger_code=470000001, tax_code="S20")
        await client.admin.CreateAccount(admin.Account(id="pre", currency="EUR", tariff_plan="retail",
                                                       prepaid_tax=tax))  # fmt: skip
        await client.admin.Transact(admin.TransactionRequest(account_id="pre", type=admin.TOP_UP,
                                                             amount_micros=10_000_000, idempotency_key="v-1",
                                                             ledger_code=400000009))  # fmt: skip
        c = client.charging
        await c.StartSession(session("call-1", 0, "pre", voice(requested=60)))
        await c.EndSession(session("call-1", 1, "pre", voice(used=61)))
        await settle_everything(client, redis_url, store)
        live = (await client.balance("pre")).balance_micros
    assert live == 10_000_000 - 1_666_667 - 300_834

    with store.begin() as sql:
        set_tax_profile(sql, TaxProfile(name="PRE20", mode="PREPAID", rate_ppm=200_000, tax_code="S20",
                                        tax_ledger_code="470000001"))  # fmt: skip
        set_account(sql, "pre", tax_profile="PRE20")
    end = next_boundary(int(time.time() * 1000), 1, "UTC")
    report = run(store, local_date(end, "UTC"), now_ms=end + 1)
    assert (report.issued, report.drafts, report.excepted) == (months_from_january_2026(), 0, [])
    with store.connect() as sql:
        last = sql.execute(select(invoices).order_by(invoices.c.period_start_ms.desc()).limit(1)).one()
        lines = sql.execute(select(invoices.c.period_start_ms, invoice_lines.c.category, invoice_lines.c.amount,
                                   invoice_lines.c.net, invoice_lines.c.tax, invoice_lines.c.reference)
                            .join(invoices, invoices.c.id == invoice_lines.c.invoice_id)
                            .order_by(invoices.c.period_start_ms, invoice_lines.c.line_number)).all()  # fmt: skip
        period_close = sql.execute(select(func.count()).where(xdrs.c.id.startswith("tax:"))).scalar()
    # The call in January (its start), the top-up and its tax this month (when it was made).
    assert [tuple(x) for x in lines] == [
        (JANUARY, "CHARGE", 300_000, 300_000, 0, ""),
        (last.period_start_ms, "PAYMENT", -10_000_000, -10_000_000, 0, "v-1"),
        (last.period_start_ms, "TAX", 1_670_000, 8_330_000, 1_670_000, "400000009"),
    ]
    assert last.carried_forward == round_micros(Decimal(-live), "EUR") == -8_030_000
    assert (last.tax, last.rounding, period_close) == (1_670_000, 0, 0)


def months_from_january_2026() -> int:
    """Billing periods (UTC months) from January 2026 to the current one."""
    today = datetime.now(UTC).date()
    return (today.year - 2026) * 12 + today.month
