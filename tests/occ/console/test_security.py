"""Signing in and out, cookies, CSRF and roles."""

from __future__ import annotations

from occ.v1 import admin_pb2 as admin


async def test_every_page_but_sign_in_needs_a_sign_in(console):
    browser = await console.browser()
    for path in ("/", "/accounts", "/sessions", "/xdrs", "/tariffs", "/invoices", "/outbox"):
        page = await browser.get(path)
        assert page.status == 200 and "<h1>Sign in</h1>" in page.text, path


async def test_a_good_token_signs_in_and_the_cookie_is_http_only_and_same_site(console):
    browser = await console.browser()
    first = await browser.get("/sign-in")
    planted = browser.client.session.cookie_jar.filter_cookies(browser.client.make_url("/"))["occ_console"].value
    token = console.tokens.create("alice", "operator")
    async with browser.client.post("/sign-in", data={"csrf": browser.csrf, "token": token},
                                   allow_redirects=False) as response:  # fmt: skip
        assert response.status == 303 and response.headers["Location"] == "/"
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie  # (no TLS here)
    assert first.headers["Content-Security-Policy"].startswith("default-src 'self'")
    signed_in = browser.client.session.cookie_jar.filter_cookies(browser.client.make_url("/"))["occ_console"].value
    assert signed_in != planted  # a new session id at sign-in
    page = await browser.get("/")
    assert "alice (operator)" in page.text


async def test_a_bad_token_is_refused(console):
    browser = await console.browser()
    await browser.get("/sign-in")
    page = await browser.post("/sign-in", {"token": "occ_not-a-token"})
    assert page.status == 401 and "not known" in page.text
    assert "<h1>Sign in</h1>" in (await browser.get("/")).text


async def test_sign_out_ends_the_session(console):
    browser = await console.sign_in("viewer")
    await browser.get("/")
    await browser.post("/sign-out")
    assert "<h1>Sign in</h1>" in (await browser.get("/accounts")).text


async def test_a_form_without_this_sessions_csrf_token_is_refused_and_changes_nothing(console):
    await console.online.account("csrf-target", balance=0)
    browser = await console.sign_in("admin")
    await browser.get("/accounts/csrf-target")
    for csrf in ("", "forged"):
        page = await browser.post("/accounts/csrf-target/status", {"status": "BLOCKED"}, csrf=csrf)
        assert page.status == 403 and "CSRF" in page.text
    account = await console.online.admin.GetAccount(admin.GetAccountRequest(id="csrf-target"))
    assert account.status == admin.ACTIVE
