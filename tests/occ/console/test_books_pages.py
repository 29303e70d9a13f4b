"""The pages on the books: xDRs (filter, except and restore), billing (invoices, statement, PDF and CSV, previews,
out-of-turn invoices, re-issues) and the ERP outbox, over a real SQL store."""

from __future__ import annotations

from datetime import date

from billing_helpers import add_account, add_xdrs, euros, ms, xdr
from sqlalchemy import select, update

from settlement.billing.run import run
from settlement.store.schema import invoices, outbox, xdrs


def _books(console) -> None:
    """Two customers with January calls; ``acme`` billed for January (an invoice, its outbox document)."""
    add_account(console.engine, "acme", first_seen_ms=ms(2026, 1, 1, 0))
    add_account(console.engine, "zed", first_seen_ms=ms(2026, 1, 1, 0))
    add_xdrs(console.engine, [xdr("acme", "session", euros("1.50"), "400000001", ms(2026, 1, 10)),
                              xdr("acme", "session", euros("2.25"), "400000002", ms(2026, 1, 11)),
                              xdr("zed", "session", euros("0.75"), "400000001", ms(2026, 1, 12))])  # fmt: skip


def _status(console, xdr_id: str) -> tuple[str, str]:
    with console.engine.connect() as connection:
        row = connection.execute(select(xdrs.c.status, xdrs.c.status_reason).where(xdrs.c.id == xdr_id)).one()
    return row.status, row.status_reason


async def test_xdrs_are_filtered_and_paged(console, monkeypatch):
    from occ.console.pages import xdrs as xdrs_page

    monkeypatch.setattr(xdrs_page, "PAGE_SIZE", 1)
    _books(console)
    browser = await console.sign_in("viewer")
    first = await browser.get("/xdrs?account=acme&period=2026-01&status=BILLABLE")
    assert "2.250000 EUR" in first.text and "1.500000" not in first.text and "zed" not in first.text
    second = await browser.get(first.text.split('href="')[-2].split('" rel="next"')[0].replace("&amp;", "&"))
    assert "1.500000 EUR" in second.text
    bad = await browser.get("/xdrs?period=January")
    assert bad.status == 400 and "period" in bad.text


async def test_an_xdr_is_excepted_and_restored_with_reasons_naming_who(console):
    _books(console)
    with console.engine.connect() as connection:
        xdr_id = connection.execute(select(xdrs.c.id).where(xdrs.c.account == "zed")).scalar_one()
    browser = await console.sign_in("finance", name="fran")
    await browser.get("/xdrs?account=zed")
    page = await browser.post("/xdrs/status", {"change": "except", "xdr_id": xdr_id, "reason": "disputed"})
    assert "BILLABLE → BILLABLE_EXCEPTED" in page.text
    assert _status(console, xdr_id) == ("BILLABLE_EXCEPTED", "disputed (by token:fran)")
    await browser.post("/xdrs/status", {"change": "restore", "xdr_id": xdr_id, "reason": "settled"})
    assert _status(console, xdr_id)[0] == "BILLABLE"


async def test_a_viewer_may_not_except_an_xdr(console):
    _books(console)
    with console.engine.connect() as connection:
        xdr_id = connection.execute(select(xdrs.c.id).where(xdrs.c.account == "zed")).scalar_one()
    browser = await console.sign_in("viewer")
    page = await browser.get("/xdrs")
    assert ">Except</button>" not in page.text
    assert (await browser.post("/xdrs/status", {"change": "except", "xdr_id": xdr_id, "reason": "x"})).status == 403
    assert _status(console, xdr_id)[0] == "BILLABLE"


async def test_invoices_are_listed_shown_and_downloaded(console):
    _books(console)
    run(console.engine, date(2026, 2, 2), accounts=["acme"])
    with console.engine.connect() as connection:
        invoice_id = connection.execute(select(invoices.c.id).where(invoices.c.account == "acme")).scalar_one()
    browser = await console.sign_in("viewer")
    listed = await browser.get("/invoices?account=acme&period=2026-01&state=COMPLETE")
    assert f'href="/invoices/{invoice_id}"' in listed.text and "3.750000 EUR" in listed.text
    assert "No invoices match" in (await browser.get("/invoices?state=POSTED")).text
    shown = await browser.get(f"/invoices/{invoice_id}")
    assert "400000002" in shown.text and "Re-issue" not in shown.text  # a viewer re-issues nothing
    status, body, headers = await browser.raw(f"/invoices/{invoice_id}/pdf")
    assert status == 200 and body.startswith(b"%PDF") and headers["Content-Type"] == "application/pdf"
    status, body, _ = await browser.raw(f"/invoices/{invoice_id}/csv")
    assert status == 200 and b"400000001" in body
    assert (await browser.get("/invoices/999999")).status == 404


async def test_a_bill_run_preview_stores_previews_and_issues_nothing(console):
    _books(console)
    browser = await console.sign_in("finance")
    await browser.get("/invoices")
    page = await browser.post("/billing/run", {"date": "2026-02-02", "account": ""})
    assert page.status == 200 and "PREVIEW" in page.text and "nothing issued" in page.text
    preview_link = page.text.split('href="/previews/')[1].split('"')[0]
    preview = await browser.get(f"/previews/{preview_link}")
    assert "PREVIEW" in preview.text
    with console.engine.connect() as connection:
        assert connection.execute(select(invoices.c.id)).first() is None


async def test_an_out_of_turn_invoice_is_issued_as_finance_and_refused_to_an_operator(console):
    _books(console)
    operator = await console.sign_in("operator")
    await operator.get("/invoices")
    assert (await operator.post("/billing/now", {"account": "zed", "dry_run": "no"})).status == 403
    finance = await console.sign_in("finance")
    await finance.get("/invoices")
    page = await finance.post("/billing/now", {"account": "zed", "dry_run": "no"})
    assert "ISSUED" in page.text
    with console.engine.connect() as connection:
        assert connection.execute(select(invoices.c.account)).scalars().all() == ["zed"]


async def test_the_outbox_lists_documents_with_their_state(console):
    _books(console)
    run(console.engine, date(2026, 2, 2), accounts=["acme"])
    with console.engine.connect() as connection:
        ref = connection.execute(select(outbox.c.document_ref)).scalar_one()
    browser = await console.sign_in("viewer")
    page = await browser.get("/outbox?state=PENDING")
    assert ref in page.text and "PENDING" in page.text
    assert ref not in (await browser.get("/outbox?state=REJECTED")).text
    assert (await browser.get("/outbox?state=LOST")).status == 400


def _rejected(console) -> int:
    """acme billed, its invoice's document REJECTED by the ERP (written as the exporter records it)."""
    _books(console)
    run(console.engine, date(2026, 2, 2), accounts=["acme"])
    with console.engine.begin() as connection:
        outbox_id = connection.execute(select(outbox.c.id)).scalar_one()
        connection.execute(update(outbox).values(state="REJECTED", attempts=1, last_error="E-VAT: unknown tax code"))
    return outbox_id


def _outbox_state(console, outbox_id: int) -> str:
    with console.engine.connect() as connection:
        return connection.execute(select(outbox.c.state).where(outbox.c.id == outbox_id)).scalar_one()


async def test_a_rejected_document_is_shown_and_retried_by_finance_who_is_recorded(console):
    outbox_id = _rejected(console)
    browser = await console.sign_in("finance", name="fin")
    page = await browser.get(f"/outbox/{outbox_id}")
    assert "E-VAT: unknown tax code" in page.text and "Retry: send it again" in page.text
    done = await browser.post(f"/outbox/{outbox_id}/retry", {"reason": "tax code fixed in the ERP"})
    assert "REJECTED → PENDING" in done.text and "token:fin" in done.text
    assert _outbox_state(console, outbox_id) == "PENDING"


async def test_a_release_needs_a_reason_and_a_viewer_may_do_neither(console):
    outbox_id = _rejected(console)
    viewer = await console.sign_in("viewer")
    page = await viewer.get(f"/outbox/{outbox_id}")
    assert "Retry: send it again" not in page.text
    assert (await viewer.post(f"/outbox/{outbox_id}/release", {"reason": "x"})).status == 403
    finance = await console.sign_in("finance")
    await finance.get(f"/outbox/{outbox_id}")
    refused = await finance.post(f"/outbox/{outbox_id}/release", {"reason": ""})
    assert refused.status == 400 and "reason is required" in refused.text
    assert _outbox_state(console, outbox_id) == "REJECTED"
    await finance.post(f"/outbox/{outbox_id}/release", {"reason": "sent by hand"})
    assert _outbox_state(console, outbox_id) == "RELEASED"
