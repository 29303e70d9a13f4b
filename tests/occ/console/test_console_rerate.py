"""Re-rating from the console: the tariff checked on the tariffs page prices the xDRs again; a preview writes
nothing, the run corrects the xDRs and the balance (through settlement, as occ rerate does)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from online_app import EXAMPLE_TARIFF, MONDAY_PEAK, session, settle_everything, voice
from sqlalchemy import func, select
from test_tariffs_and_dashboard import _upload

from occ.api.tariff_source import local_files
from occ.v1 import admin_pb2 as admin
from settlement.billing.run import run
from settlement.store.schema import invoices, xdrs

WINDOW = {"from": "2026-01-05", "to": "2026-01-06", "account": "rr"}


async def _a_settled_call(console) -> None:
    online = console.online
    await online.account("rr", balance=10_000_000)
    await online.charging.StartSession(session("rr-call", 0, "rr", voice(requested=60), at=MONDAY_PEAK))
    await online.charging.EndSession(session("rr-call", 1, "rr", voice(used=60), at=MONDAY_PEAK + 60))
    await settle_everything(online, online.app.settings.redis_url, console.engine)


def _dearer_connect_fee() -> dict[str, bytes]:
    files = local_files(Path(EXAMPLE_TARIFF))
    files["rates.csv"] = files["rates.csv"].replace(b"STANDARD,0.20,", b"STANDARD,0.30,")
    return files


def _revisions(console) -> int:
    with console.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(xdrs).where(xdrs.c.account == "rr")).scalar_one()


async def _balance(console) -> int:
    return (await console.online.admin.GetAccount(admin.GetAccountRequest(id="rr"))).balance_micros


async def test_a_preview_shows_the_change_and_writes_nothing_then_the_run_corrects_the_balance(console):
    await _a_settled_call(console)
    before, rows = await _balance(console), _revisions(console)
    browser = await console.sign_in("finance", name="rita")
    await browser.get("/tariffs")
    status, text = await _upload(browser, _dearer_connect_fee())
    assert status == 200 and "Re-rate with this tariff" in text and "Publish" not in text  # finance re-rates only
    browser.csrf = text.split('name="csrf" value="')[1].split('"')[0]
    preview = await browser.post("/rerate/preview", WINDOW)
    assert "1 would change" in preview.text and "-0.100000 EUR" in preview.text
    assert (await _balance(console), _revisions(console)) == (before, rows)  # a dry run
    done = await browser.post("/rerate/apply", WINDOW)
    assert "1 changed" in done.text and "1 balance correction(s) applied" in done.text
    assert await _balance(console) == before - 100_000
    assert _revisions(console) > rows  # a reversal and a new revision


async def test_re_rating_needs_a_checked_tariff_and_the_finance_role(console):
    await _a_settled_call(console)
    finance = await console.sign_in("finance")
    await finance.get("/tariffs")
    page = await finance.post("/rerate/preview", WINDOW)
    assert page.status == 400 and "check a tariff" in page.text
    operator = await console.sign_in("operator")
    await operator.get("/tariffs")
    assert (await operator.post("/rerate/preview", WINDOW)).status == 403


async def test_a_billed_call_re_rated_is_re_issued_from_its_invoice_page(console):
    await _a_settled_call(console)
    run(console.engine, date(2026, 2, 2), accounts=["rr"])
    with console.engine.connect() as connection:
        invoice_id = connection.execute(select(invoices.c.id).where(invoices.c.account == "rr")).scalar_one()
    browser = await console.sign_in("finance")
    await browser.get("/tariffs")
    _, text = await _upload(browser, _dearer_connect_fee())
    browser.csrf = text.split('name="csrf" value="')[1].split('"')[0]
    await browser.post("/rerate/apply", WINDOW)
    page = await browser.get(f"/invoices/{invoice_id}")
    assert "Re-issue invoice" in page.text
    done = await browser.post(f"/invoices/{invoice_id}/reissue")
    assert done.status == 200 and "ISSUED" in done.text, done.text
    with console.engine.connect() as connection:
        revisions = connection.execute(select(invoices.c.revision).where(invoices.c.account == "rr")).scalars().all()
    assert sorted(revisions) == [0, 1]
