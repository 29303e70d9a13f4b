"""Prepaid tax taken at top-up, billed as settlement recorded it: kept through a re-issue, and refused (DRAFT) under
a profile that is not PREPAID. Figures: top-up 10.00 at 20 % → tax 1.666667, credited 8.333333; a call of 2.00."""

from __future__ import annotations

from datetime import date

from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from sqlalchemy import select

from settlement.billing.reissue import reissue
from settlement.billing.run import run
from settlement.store.schema import invoice_lines, invoices, xdrs


def taxed_topup(account: str, key: str, end_ms: int) -> list[dict]:
    tax = euros("1.666667")
    return [
        xdr(account, "topup", euros("-10"), "400000009", end_ms, id=key),
        xdr(account, "topup_tax", tax, "470000001", end_ms, id=f"{key}:tax", record_type="TAX", tax_code="S20",
            tax_rate_ppm=200_000, tax_amount=tax),
    ]  # fmt: skip


def lines_of(c, invoice_id):
    rows = c.execute(
        select(
            invoice_lines.c.category,
            invoice_lines.c.amount,
            invoice_lines.c.net,
            invoice_lines.c.tax,
            invoice_lines.c.reference,
        )
        .where(invoice_lines.c.invoice_id == invoice_id)
        .order_by(invoice_lines.c.line_number)
    ).all()
    return [tuple(r) for r in rows]


def test_a_reissue_keeps_the_tax_taken_at_top_up(store):
    add_profiles(store)
    add_account(store, "p", tax_profile="PRE20")
    jan = ms(2026, 1, 10)
    add_xdrs(store, [*taxed_topup("p", "s001:1-0", jan), xdr("p", "session", euros("2"), "400000001", jan + 1)])
    [first] = run(store, date(2026, 2, 1)).outcomes
    second = reissue(store, first.invoice_id)
    expected = [
        ("CHARGE", euros("2"), euros("2"), 0),
        ("PAYMENT", euros("-10"), euros("-10"), 0),
        ("TAX", euros("1.67"), euros("8.33"), euros("1.67")),  # taken from the top-up on 400000009
    ]
    with store.connect() as c:
        old, new = (lines_of(c, i) for i in (first.invoice_id, second.invoice_id))
        carried = dict(c.execute(select(invoices.c.revision, invoices.c.carried_forward)).all())
        owners = c.execute(select(xdrs.c.id, xdrs.c.invoice_id).where(xdrs.c.account == "p").order_by(xdrs.c.id))
        owners = dict(owners.all())
    assert [line[:4] for line in old] == expected and old[2][4] == "400000009"
    assert new == old  # a re-issue used to leave every TAX xDR behind: the tax taken at top-up would vanish
    assert carried == {0: euros("-6.33"), 1: euros("-6.33")}  # −10 + 1.666667 + 2 = −6.333333
    assert owners["s001:1-0:tax"] == second.invoice_id == owners["s001:1-0"]


def test_tax_taken_at_top_up_under_a_profile_that_is_not_prepaid_leaves_the_invoice_draft(store):
    add_profiles(store)
    add_account(store, "x", tax_profile="VAT20")
    add_xdrs(store, taxed_topup("x", "s002:1-0", ms(2026, 1, 10)))
    [outcome] = run(store, date(2026, 2, 1)).outcomes
    assert outcome.status == "DRAFT"
    assert any("taken at top-up" in p and "'VAT20' is EXCLUSIVE" in p for p in outcome.problems), outcome.problems
