"""Runs issue each invoice once (back to back and concurrently), number them without gaps, never bill a preview,
keep an invalid statement DRAFT without a number, and follow the state machine."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from billing_helpers import add_account, add_profiles, add_xdrs, euros, ms, xdr
from sqlalchemy import delete, func, select

from settlement.billing.posting import StateError, record_posting
from settlement.billing.run import run
from settlement.export.outbox import load
from settlement.store.database import open_store
from settlement.store.schema import invoice_sequences, invoices, outbox, preview_invoices, tax_profiles, xdrs


def populate(store, n_accounts: int = 6, per_account: int = 5) -> None:
    add_profiles(store)
    rows = []
    for a in range(n_accounts):
        tenant = "t1" if a % 2 == 0 else "t2"
        add_account(store, f"acc{a}", tax_profile="VAT20", tenant=tenant)
        for i in range(per_account):
            rows.append(xdr(f"acc{a}", "session", euros("0.5") + i, "400000001", ms(2026, 1, 10) + i, units=30))
    add_xdrs(store, rows)


def numbers(store) -> dict[str, list[int]]:
    with store.connect() as c:
        rows = c.execute(select(invoices.c.tenant, invoices.c.number).where(invoices.c.number.is_not(None))
                         .order_by(invoices.c.tenant, invoices.c.number)).all()  # fmt: skip
    out: dict[str, list[int]] = {}
    for tenant, number in rows:
        out.setdefault(tenant, []).append(number)
    return out


def test_a_second_run_issues_nothing_and_numbers_have_no_gaps(store):
    populate(store)
    first = run(store, date(2026, 2, 1))
    assert (first.issued, first.already) == (6, 0)
    second = run(store, date(2026, 2, 1))
    assert (second.issued, second.already, second.drafts) == (0, 0, 0)
    assert numbers(store) == {"t1": [1, 2, 3], "t2": [1, 2, 3]}
    with store.connect() as c:
        assert c.execute(select(func.count()).select_from(outbox)).scalar() == 6
        assert c.execute(select(func.count()).where(xdrs.c.status == "BILLABLE")).scalar() == 0


def test_concurrent_runs_issue_each_invoice_once(store, db_url):
    populate(store, n_accounts=10)
    reports, errors = [], []

    def bill() -> None:
        engine = open_store(db_url)
        try:
            reports.append(run(engine, date(2026, 2, 1)))
        except Exception as error:
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=bill) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.issued for r in reports) == 10
    assert numbers(store) == {"t1": [1, 2, 3, 4, 5], "t2": [1, 2, 3, 4, 5]}
    with store.connect() as c:
        billed = c.execute(select(xdrs.c.account, invoices.c.account).join(invoices, invoices.c.id == xdrs.c.invoice_id)
                           .where(xdrs.c.record_type == "MAIN")).all()  # fmt: skip
        assert len(billed) == 50 and all(a == b for a, b in billed)
        assert c.execute(select(func.count()).select_from(outbox)).scalar() == 10


def test_concurrent_runs_over_overlapping_accounts_of_two_tenants_neither_deadlock_nor_double_bill(store, db_url):
    populate(store, n_accounts=8, per_account=1)  # tenants alternate: acc0 t1, acc1 t2, acc2 t1, …
    subsets = [["acc1", "acc2", "acc5", "acc6"], ["acc0", "acc1", "acc2", "acc3"], ["acc3", "acc4", "acc6", "acc7"],
               None]  # fmt: skip
    errors: list[Exception] = []

    def bill(only) -> None:
        engine = open_store(db_url)
        try:
            for _ in range(3):
                run(engine, date(2026, 2, 1), accounts=only)
        except Exception as error:
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=bill, args=(subset,)) for subset in subsets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert numbers(store) == {"t1": [1, 2, 3, 4], "t2": [1, 2, 3, 4]}


def test_a_preview_never_marks_numbers_or_exports(store):
    populate(store, n_accounts=2)
    report = run(store, date(2026, 2, 1), preview=True)
    assert report.preview and report.issued == 2
    with store.connect() as c:
        assert c.execute(select(func.count()).select_from(invoices)).scalar() == 0
        assert c.execute(select(func.count()).select_from(preview_invoices)).scalar() == 2
        assert c.execute(select(func.count()).select_from(outbox)).scalar() == 0
        assert c.execute(select(func.count()).select_from(invoice_sequences)).scalar() == 0
        assert set(c.execute(select(xdrs.c.status)).scalars()) == {"BILLABLE"}
        previewed = c.execute(select(preview_invoices.c.carried_forward).order_by(preview_invoices.c.account)).all()
    run(store, date(2026, 2, 1))
    with store.connect() as c:
        issued = c.execute(select(invoices.c.carried_forward).order_by(invoices.c.account)).all()
    assert issued == previewed
    assert numbers(store) == {"t1": [1], "t2": [1]}


def test_an_invalid_statement_stays_draft_without_a_number(store):
    populate(store, n_accounts=4)
    with store.begin() as c:  # acc1's profile disappears (it was valid when the account was set up)
        c.execute(tax_profiles.insert(), {"name": "GONE", "mode": "EXCLUSIVE", "rate_ppm": 1, "tax_code": "X",
                                          "tax_ledger_code": "1"})  # fmt: skip
    from settlement.billing.setup import set_account

    with store.begin() as c:
        set_account(c, "acc1", tax_profile="GONE")
        c.execute(delete(tax_profiles).where(tax_profiles.c.name == "GONE"))
    report = run(store, date(2026, 2, 1))
    assert (report.issued, report.drafts) == (3, 1)
    draft = next(o for o in report.outcomes if o.status == "DRAFT")
    assert draft.account == "acc1" and draft.number is None
    assert draft.problems == ("tax profile 'GONE' is not defined",)
    with store.connect() as c:
        row = c.execute(select(invoices).where(invoices.c.account == "acc1")).one()
        assert (row.state, row.number, row.state_reason) == ("DRAFT", None, "tax profile 'GONE' is not defined")
        assert set(c.execute(select(xdrs.c.status).where(xdrs.c.account == "acc1")).scalars()) == {"BILLABLE"}
    assert numbers(store) == {"t1": [1, 2], "t2": [1]}  # acc1 (t2) took no number
    retry = run(store, date(2026, 2, 1))  # not fixed yet: the DRAFT is recomputed, still one, still no number
    assert (retry.issued, retry.drafts) == (0, 1)
    [again_draft] = [o for o in retry.outcomes if o.status == "DRAFT"]
    with store.connect() as c:
        assert c.execute(select(invoices.c.id).where(invoices.c.account == "acc1")).scalars().all() == [
            again_draft.invoice_id]  # fmt: skip

    with store.begin() as c:
        set_account(c, "acc1", tax_profile="VAT20")
    again = run(store, date(2026, 2, 1))
    assert (again.issued, again.drafts) == (1, 0)
    assert numbers(store) == {"t1": [1, 2], "t2": [1, 2]}
    with store.connect() as c:
        assert c.execute(select(invoices.c.state).where(invoices.c.account == "acc1")).scalar() == "COMPLETE"


def test_a_draft_cannot_be_posted(store):
    populate(store, n_accounts=1)
    with store.begin() as c:
        c.execute(tax_profiles.delete())
    [draft] = run(store, date(2026, 2, 1)).outcomes
    with store.begin() as c, pytest.raises(StateError, match="DRAFT; it cannot become POSTED"):
        record_posting(c, draft.invoice_id, "ACCEPTED")


def test_posting_states(store):
    populate(store, n_accounts=1)
    run(store, date(2026, 2, 1))
    with store.connect() as c:
        invoice = c.execute(select(invoices)).one()
        document = load(c.execute(select(outbox.c.payload)).scalar())
    assert invoice.state == "COMPLETE"
    assert (document.kind, document.invoice_number, document.revision) == ("INVOICE", "00000001", 0)
    assert document.net_total + document.tax_total == document.gross_total
    with store.begin() as c:
        assert record_posting(c, invoice.id, "REJECTED", "customer C-1 blocked in ERP") == "POSTING_ERROR"
    with store.connect() as c:
        row = c.execute(select(invoices.c.state, invoices.c.state_reason)).one()
    assert tuple(row) == ("POSTING_ERROR", "customer C-1 blocked in ERP")
    with store.begin() as c:
        assert record_posting(c, invoice.id, "ACCEPTED") == "POSTED"
        assert record_posting(c, invoice.id, "REJECTED", "late") == "POSTED"  # POSTED is final
        with pytest.raises(StateError, match="outcome"):
            record_posting(c, invoice.id, "MAYBE")
        with pytest.raises(StateError, match="no invoice"):
            record_posting(c, 999, "ACCEPTED")
