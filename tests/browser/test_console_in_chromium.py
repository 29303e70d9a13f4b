"""The operator console in headless Chromium, against a real stack (``-m browser``; see ``conftest.py``).

Each test signs in as an operator would (an Admin token in the sign-in form) and checks what a person sees; every
page visited is screenshotted and checked with axe-core (no serious or critical violations).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
from console_stack import EXAMPLE_TARIFF
from pages import look

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
LONDON = "+442079460000"  # UK_FIXED in examples/tariff
FORGED_BLOCK = """() => {
    const form = document.createElement("form");
    form.method = "post"; form.action = "/accounts/e2e-ann/status";
    for (const [name, value] of [["csrf", document.querySelector("input[name=csrf]").value], ["status", "BLOCKED"]]) {
        const input = document.createElement("input");
        input.type = "hidden"; input.name = name; input.value = value; form.appendChild(input);
    }
    document.body.appendChild(form); form.submit();
}"""  # the Block form an operator sees, built and posted by hand


def sign_in(page, stack, who: str = "admin") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{stack.console_url}/sign-in")
    page.get_by_label("Admin token").fill(stack.tokens[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.console_url}/")


def test_sign_in_and_the_dashboard(page, stack, screenshots):
    page.goto(f"{stack.console_url}/")
    assert page.url.startswith(f"{stack.console_url}/sign-in")  # signed out: sent to the sign-in page
    look(page, "sign-in", screenshots)
    page.get_by_label("Admin token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert "not known" in page.get_by_role("alert").inner_text()

    sign_in(page, stack)
    assert "e2e-admin (admin)" in page.locator("header").inner_text()
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"


def reload_until(page, what: str, done, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Reload ``page`` every 0.3 s until ``done()`` holds (a person pressing F5 while watching)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"{what}: not seen within {timeout_s:.0f} s on {page.url}"
        page.wait_for_timeout(300)
        page.reload()


def fact(page, name: str) -> str:  # type: ignore[no-untyped-def]
    """The value of ``name`` in the page's facts list (<dt>name</dt><dd>value</dd>)."""
    return page.locator(f"dl.facts dt:text-is('{name}') + dd").inner_text()


def test_find_an_account_and_top_it_up(page, stack, screenshots):
    stack.occ("account", "create", "e2e-ann", "--plan", "retail")
    stack.occ("account", "topup", "e2e-ann", "20", "--ledger", "400000009")
    sign_in(page, stack)
    page.get_by_role("link", name="Accounts").click()
    page.get_by_label("Account id starts with").fill("e2e-a")
    page.get_by_role("button", name="Search").click()
    look(page, "accounts", screenshots)
    page.get_by_role("link", name="e2e-ann").click()
    assert fact(page, "Balance") == "20.000000 EUR"

    page.get_by_label("Kind").select_option("topup")
    page.get_by_label("Amount (EUR)").fill("5")
    page.get_by_label("Ledger code").fill("400000009")
    page.get_by_label("Description").fill("top-up from the browser test")
    page.get_by_role("button", name="Review").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Confirm: Top-up on e2e-ann"
    assert fact(page, "Amount") == "5.000000 EUR"  # the amount shown back before anything moves
    look(page, "confirm-top-up", screenshots)
    page.get_by_role("button", name="Confirm top-up of 5.000000 EUR").click()
    assert "Top-up of 5.000000 done: balance 25.000000." in page.get_by_role("status").inner_text()
    assert fact(page, "Balance") == "25.000000 EUR"
    reload_until(page, "the top-up booked in the ledger",
                 lambda: page.get_by_role("cell", name="top-up from the browser test").count() == 1)  # fmt: skip
    assert page.locator("figure svg").count() == 1  # the balance chart, drawn from the ledger
    look(page, "account", screenshots)


def test_a_call_shows_on_the_sessions_page_until_it_ends(page, stack, screenshots):
    sign_in(page, stack)
    page.get_by_role("link", name="Sessions").click()
    call = stack.spawn("call-short", "call", "e2e-ann", LONDON, "--seconds", "6", "--step", "2", "--real-time")
    row = page.get_by_role("row").filter(has_text="e2e-ann")
    reload_until(page, "the call's session", lambda: row.count() == 1)
    assert LONDON in row.inner_text()
    look(page, "sessions", screenshots)
    assert call.wait(30) == 0, stack.log("call-short")
    reload_until(page, "the session gone after the call ended", lambda: row.count() == 0)
    assert "No open sessions." in page.locator("main").inner_text()
    assert "call of 6 s ended" in stack.log("call-short")


def test_abort_a_session(page, stack):
    sign_in(page, stack)
    page.get_by_role("link", name="Sessions").click()
    call = stack.spawn("call-long", "call", "e2e-ann", LONDON, "--seconds", "600", "--step", "3", "--real-time")
    row = page.get_by_role("row").filter(has_text="e2e-ann")
    reload_until(page, "the long call's session", lambda: row.count() == 1)
    row.get_by_label("Reason").fill("fraud suspected (browser test)")
    row.get_by_role("button", name="Abort").click()
    assert "aborted (fraud suspected (browser test))" in page.get_by_role("status").inner_text()
    # The holds are released at once; the session waits for the switch's terminate, which its next update brings.
    assert call.wait(30) == 0, stack.log("call-long")
    assert "cut off: the caller wanted 600 s" in stack.log("call-long")
    reload_until(page, "the aborted session gone", lambda: row.count() == 0)


def test_upload_a_broken_tariff_and_see_the_findings(page, stack, screenshots, tmp_path):
    broken = tmp_path / "tariff"
    shutil.copytree(EXAMPLE_TARIFF, broken)
    rates = broken / "rates.csv"
    rates.write_text(rates.read_text().replace("MOBILE,0.05,,", "MOBILE,zero,,"))
    sign_in(page, stack)
    page.get_by_role("link", name="Tariffs").click()
    assert "UK_FIXED" in page.get_by_role("table", name="Destination groups").inner_text()
    look(page, "tariffs", screenshots)
    page.get_by_label("Files (tariff.csv").set_input_files(sorted(broken.glob("*.csv")))
    page.get_by_role("button", name="Check").click()
    assert "2 problem(s); it cannot be published" in page.get_by_role("alert").inner_text()
    findings = page.get_by_role("table", name="Findings").get_by_role("row").all_inner_texts()
    assert any(row.split("\t")[:3] == ["rates.csv", "5", "connect_fee"] and "'zero' is not a decimal" in row
               for row in findings), findings  # fmt: skip
    assert page.get_by_role("button", name="Publish").count() == 0
    look(page, "tariff-check", screenshots)


def test_the_calls_in_the_ledger_and_xdrs(page, stack, screenshots):
    sign_in(page, stack)
    page.get_by_role("link", name="Ledger and xDRs").click()
    page.get_by_label("Account").fill("e2e-ann")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("table", name="xDRs, newest first").get_by_role("row").filter(has_text=LONDON)
    reload_until(page, "both calls settled as xDRs", lambda: rows.count() == 2)
    look(page, "xdrs", screenshots)


def test_bill_the_period_download_its_pdf_and_see_it_posted(page, stack, screenshots):
    sign_in(page, stack)
    page.get_by_role("link", name="Billing").click()
    page.get_by_label("Account", exact=True).fill("e2e-ann")
    page.get_by_label("Preview only").select_option("no")
    page.get_by_role("button", name="Go").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Out-of-turn invoice for e2e-ann"
    look(page, "out-of-turn-invoice", screenshots)
    page.get_by_role("link", name="invoice").click()
    statement = page.locator("pre.statement").inner_text()
    assert "e2e-ann" in statement and "top-up from the browser test" in statement
    look(page, "invoice", screenshots)
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download PDF").click()
    pdf = Path(waiting.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000
    invoice_url = page.url

    page.get_by_role("link", name="ERP outbox").click()
    row = page.get_by_role("table", name="Documents for the ERP, newest first").locator("tbody tr").first
    reload_until(page, "the invoice's document ACCEPTED by erp-sim", lambda: "ACCEPTED" in row.inner_text())
    erp_number = row.get_by_role("cell").nth(7).inner_text()
    assert erp_number.strip()  # the middleware's document number
    look(page, "outbox", screenshots)
    row.get_by_role("link").first.click()
    assert fact(page, "State") == "ACCEPTED" and fact(page, "ERP number") == erp_number
    look(page, "outbox-document", screenshots)
    page.goto(invoice_url)
    assert "state POSTED" in page.locator("main").inner_text()
    held = httpx.get(stack.erp_url.removesuffix("soap") + "documents").json()
    assert [doc["erp_document_number"] for doc in held.values()] == [erp_number]


def test_retry_then_release_a_rejected_document(page, stack, screenshots):
    """The ERP refuses a customer code longer than 50 characters (the XSD): the document is REJECTED; a retry sends
    the same document and is rejected again; releasing it takes it out of the export, with who and why recorded."""
    account = "e2e-customer-" + "x" * 40
    stack.occ("account", "create", account, "--plan", "retail")
    stack.occ("account", "topup", account, "10", "--ledger", "400000009")
    stack.occ("call", account, LONDON, "--seconds", "90")
    sign_in(page, stack)
    page.get_by_role("link", name="Ledger and xDRs").click()
    page.get_by_label("Account").fill(account)
    page.get_by_role("button", name="Filter").click()
    reload_until(page, "the call settled", lambda: page.get_by_role("cell", name=LONDON).count() == 1)
    page.get_by_role("link", name="Billing").click()
    page.get_by_label("Account", exact=True).fill(account)
    page.get_by_label("Preview only").select_option("no")
    page.get_by_role("button", name="Go").click()
    page.get_by_role("link", name="ERP outbox").click()
    page.get_by_label("State").select_option("REJECTED")
    page.get_by_role("button", name="Filter").click()
    row = page.get_by_role("table", name="Documents for the ERP, newest first").locator("tbody tr").first
    reload_until(page, "the document REJECTED by erp-sim", lambda: row.count() == 1)
    assert "customerCode" in row.inner_text() and "maxLength" in row.inner_text()
    row.get_by_role("link").first.click()
    look(page, "outbox-rejected", screenshots)

    page.get_by_label("What was fixed (optional)").fill("asked the ERP team to widen the field")
    page.get_by_role("button", name="Retry: send it again").click()
    reload_until(
        page, "the retry rejected again", lambda: fact(page, "Attempts") == "2" and fact(page, "State") == "REJECTED"
    )
    page.get_by_label("Why it must not be sent").fill("customer code too long for the ERP; booked by hand")
    page.get_by_role("button", name="Release: never send it").click()
    page.wait_for_load_state("load")
    assert fact(page, "State") == "RELEASED"
    actions = page.get_by_role("table", name="Actions on this document, oldest first").locator("tbody tr")
    assert [text.split("\t")[1:4] for text in actions.all_inner_texts()] == [
        ["token:e2e-admin", "RETRY", "REJECTED → PENDING"],
        ["token:e2e-admin", "RELEASE", "REJECTED → RELEASED"],
    ]
    shown = stack.occ("outbox", "show", page.url.rsplit("/", 1)[1]).stdout
    assert "state:            RELEASED" in shown and "booked by hand" in shown


def test_a_viewer_sees_but_is_refused_a_change(page, stack, screenshots):
    sign_in(page, stack, "viewer")
    page.goto(f"{stack.console_url}/accounts/e2e-ann")
    balance = fact(page, "Balance")
    assert page.get_by_role("button", name="Block").count() == 0  # no controls for what a viewer may not do
    assert page.get_by_role("button", name="Review").count() == 0
    # The form an operator would see, posted anyway (with the viewer's own CSRF token): refused, nothing changes.
    with page.expect_navigation():
        page.evaluate(FORGED_BLOCK)
    assert page.get_by_role("heading", level=1).inner_text() == "Refused"
    assert "Your role (viewer) may not do this (account.status)." in page.get_by_role("alert").inner_text()
    look(page, "refused", screenshots)
    page.goto(f"{stack.console_url}/accounts/e2e-ann")
    assert fact(page, "Status") == "ACTIVE" and fact(page, "Balance") == balance


def test_the_dashboard_after_the_traffic(page, stack, screenshots):
    sign_in(page, stack)
    page.wait_for_function("document.querySelectorAll('svg').length > 0")
    look(page, "dashboard", screenshots)
