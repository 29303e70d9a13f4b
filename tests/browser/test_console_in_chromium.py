"""The operator console in headless Chromium, against a real stack (``-m browser``; see ``conftest.py``).

Each test signs in as an operator would (an Admin token in the sign-in form) and checks what a person sees; every
page visited is screenshotted and checked with axe-core (no serious or critical violations).
"""

from __future__ import annotations

import pytest
from pages import look

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


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
    look(page, "dashboard", screenshots)
