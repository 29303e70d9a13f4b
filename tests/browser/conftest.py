"""Fixtures of the console's browser tests (``-m browser``): the running stack, headless Chromium, page checks.

Chromium is Debian's ``/usr/bin/chromium`` (``scripts/setup.sh --with-browser``), driven by Playwright with a new,
empty profile; Playwright's own browser download is never used. Every page a test visits goes through
:func:`look`: a screenshot (``<tmp>/screenshots``, and ``$OCC_CONSOLE_SCREENSHOTS`` when set: ``docs/console``
holds the committed ones) and an axe-core check that fails on any serious or critical violation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_stack import ConsoleStack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    running = ConsoleStack.start(tmp_path_factory.mktemp("console-e2e"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Where :func:`look` saves each page: the test's own folder, and ``$OCC_CONSOLE_SCREENSHOTS`` if set."""
    folders = [tmp_path_factory.mktemp("screenshots")]
    if os.environ.get("OCC_CONSOLE_SCREENSHOTS"):
        folders.append(Path(os.environ["OCC_CONSOLE_SCREENSHOTS"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One headless Chromium with a new, empty profile for the module."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh --with-browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport=VIEWPORT, accept_downloads=True,
        )  # fmt: skip
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A new tab, signed out (no cookies)."""
    browser.clear_cookies()
    tab = browser.new_page()
    try:
        yield tab
    finally:
        tab.close()
