"""The accounts and sessions pages: search and paging, an account's page, block/unblock, money movements with a
confirmation that cannot move money twice, aborting a session; each as the roles allow."""

from __future__ import annotations

from online_app import session, settle_everything, voice

from occ.console.pages import accounts as accounts_page
from occ.v1 import admin_pb2 as admin


async def _balance(console, account_id: str) -> int:
    return (await console.online.admin.GetAccount(admin.GetAccountRequest(id=account_id))).balance_micros


async def test_accounts_are_searched_by_prefix_and_paged(console, monkeypatch):
    monkeypatch.setattr(accounts_page, "PAGE_SIZE", 2)
    for account_id in ("shop-a", "shop-b", "shop-c", "other"):
        await console.online.account(account_id, balance=0)
    browser = await console.sign_in("viewer")
    first = await browser.get("/accounts?prefix=shop-")
    assert "shop-a" in first.text and "shop-b" in first.text and "shop-c" not in first.text
    assert "other" not in first.text
    next_link = first.text.split('href="')[-1].split('" rel="next"')[0].replace("&amp;", "&")
    second = await browser.get(next_link)
    assert "shop-c" in second.text and "shop-a" not in second.text and 'rel="next"' not in second.text


async def test_the_account_page_shows_its_money_sessions_and_balance_chart(console):
    online = console.online
    await online.account("pat", balance=5_000_000, credit_limit=1_000_000)
    await online.charging.StartSession(session("call-1", 0, "pat", voice(requested=60)))
    await settle_everything(online, online.app.settings.redis_url, console.engine)
    browser = await console.sign_in("viewer")
    page = await browser.get("/accounts/pat")
    assert page.status == 200
    for text in ("5.000000 EUR", "1.000000", "call-1", "retail", "<svg", "Balance of pat", "topup"):
        assert text in page.text, text
    assert "Block</button>" not in page.text and "Review</button>" not in page.text  # a viewer changes nothing


async def test_an_unknown_account_is_404(console):
    browser = await console.sign_in("viewer")
    assert (await browser.get("/accounts/nobody")).status == 404


async def test_block_and_unblock_as_operator_and_refused_to_a_viewer(console):
    await console.online.account("blk", balance=0)
    viewer = await console.sign_in("viewer")
    await viewer.get("/accounts/blk")
    assert (await viewer.post("/accounts/blk/status", {"status": "BLOCKED"})).status == 403
    operator = await console.sign_in("operator")
    await operator.get("/accounts/blk")
    page = await operator.post("/accounts/blk/status", {"status": "BLOCKED"})
    assert "blk is BLOCKED now" in page.text and "Unblock</button>" in page.text
    get = admin.GetAccountRequest(id="blk")
    assert (await console.online.admin.GetAccount(get)).status == admin.BLOCKED
    await operator.post("/accounts/blk/status", {"status": "ACTIVE"})
    assert (await console.online.admin.GetAccount(get)).status == admin.ACTIVE


async def test_a_top_up_is_confirmed_with_its_amount_and_a_second_send_moves_no_money(console):
    await console.online.account("payer", balance=1_000_000)
    browser = await console.sign_in("finance", name="fiona")
    await browser.get("/accounts/payer")
    form = {"kind": "topup", "amount": "12.5", "ledger_code": "400000009", "description": "desk top-up"}
    confirm = await browser.post("/accounts/payer/money/confirm", form)
    assert "12.500000 EUR" in confirm.text and await _balance(console, "payer") == 1_000_000  # nothing yet
    sent = {**form, "amount": confirm.hidden("amount"), "idempotency_key": confirm.hidden("idempotency_key")}
    done = await browser.post("/accounts/payer/money", sent)
    assert "Top-up of 12.500000 done: balance 13.500000" in done.text
    again = await browser.post("/accounts/payer/money", sent)  # a double click, a reload, a second tab
    assert "already done" in again.text
    assert await _balance(console, "payer") == 13_500_000
    events = [e for e in await console.online.events("payer") if e["type"] == "topup"]
    assert [e.get("actor") for e in events][-1] == "token:fiona"  # recorded with the signed-in user


async def test_bad_money_input_names_the_field_and_moves_nothing(console):
    await console.online.account("careful", balance=0)
    browser = await console.sign_in("finance")
    await browser.get("/accounts/careful")
    for form, named in (
        ({"kind": "topup", "amount": "1.2345678", "ledger_code": "1"}, "amount"),
        ({"kind": "refund", "amount": "-3", "ledger_code": "1"}, "amount"),
        ({"kind": "topup", "amount": "3", "ledger_code": "abc"}, "ledger_code"),
        ({"kind": "gift", "amount": "3", "ledger_code": "1"}, "kind"),
    ):
        page = await browser.post("/accounts/careful/money/confirm", form)
        assert page.status == 400 and named in page.text, (form, page.text)
    assert await _balance(console, "careful") == 0


async def test_an_operator_may_not_move_money(console):
    await console.online.account("guarded", balance=0)
    browser = await console.sign_in("operator")
    await browser.get("/accounts/guarded")
    form = {"kind": "topup", "amount": "5", "ledger_code": "1", "idempotency_key": "k"}
    assert (await browser.post("/accounts/guarded/money", form)).status == 403
    assert await _balance(console, "guarded") == 0


async def test_sessions_are_listed_and_one_is_aborted_with_a_reason(console):
    online = console.online
    await online.account("talker", balance=50_000_000)
    await online.charging.StartSession(session("long-call", 0, "talker", voice(requested=60)))
    browser = await console.sign_in("operator")
    page = await browser.get("/sessions")
    assert "long-call" in page.text and "talker" in page.text
    done = await browser.post("/sessions/abort", {"account_id": "talker", "session_id": "long-call",
                                                  "reason": "fraud check"})  # fmt: skip
    assert "aborted (fraud check)" in done.text
    [info] = (await online.admin.ListSessions(admin.ListSessionsRequest(account_id="talker"))).sessions
    assert info.reserved_micros == 0  # the hold is released at once; the switch's terminate closes it


async def test_a_viewer_may_not_abort_a_session(console):
    online = console.online
    await online.account("kept", balance=50_000_000)
    await online.charging.StartSession(session("kept-call", 0, "kept", voice(requested=60)))
    browser = await console.sign_in("viewer")
    page = await browser.get("/sessions")
    assert "kept-call" in page.text and ">Abort</button>" not in page.text
    refused = await browser.post("/sessions/abort", {"account_id": "kept", "session_id": "kept-call", "reason": "x"})
    assert refused.status == 403
    [info] = (await online.admin.ListSessions(admin.ListSessionsRequest(account_id="kept"))).sessions
    assert info.reserved_micros > 0
