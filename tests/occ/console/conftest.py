"""Fixtures of the console's tests: a real online server (App + gRPC, Admin behind its authentication) on a real
redis-server, a real SQL store, and the console's aiohttp application in front of them, driven over real HTTP on
a free loopback port. ``console`` signs in with a token of the role asked for (``await console.sign_in("viewer")``).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from console_browser import Browser
from online_app import serving

from occ.api.tokens import TOKENS_FILE, TokenFile
from occ.console.admin import Admin
from occ.console.context import BalanceCorrections
from occ.console.web import make_app


class Console:
    """The console, the online server behind it (``online``) and its SQL store (``engine``)."""

    def __init__(self, online, engine, tmp_path) -> None:
        self.online, self.engine, self.tokens = online, engine, TokenFile(tmp_path / TOKENS_FILE)
        self.browsers: list[Browser] = []
        corrections = BalanceCorrections(lambda: online.app.settings.redis_url, online.app.settings.shards)
        self.app = make_app(Admin(online.address), engine, metrics_urls=[], corrections=corrections)

    async def start(self) -> None:
        self.server = TestServer(self.app, host="127.0.0.1")
        await self.server.start_server()

    async def browser(self) -> Browser:
        """A browser of its own (its own cookies), not signed in."""
        client = TestClient(self.server)
        await client.start_server()
        browser = Browser(client)
        self.browsers.append(browser)
        return browser

    async def sign_in(self, role: str = "admin", name: str = "") -> Browser:
        """A browser signed in with a new token of ``role`` (named ``name`` or after the role)."""
        browser = await self.browser()
        token = self.tokens.create(name or f"{role}-user", role)
        await browser.get("/sign-in")
        page = await browser.post("/sign-in", {"token": token})
        assert "Dashboard" in page.text, page.text
        return browser

    async def close(self) -> None:
        for browser in self.browsers:
            await browser.client.close()
        await self.server.close()


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """The console's tests run on SQLite only: what they read, they read through settlement's functions, whose own
    tests run on SQLite and PostgreSQL."""
    path = tmp_path / "occ.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
async def console(redis_url, tmp_path, store) -> AsyncIterator[Console]:
    async with serving(redis_url, tmp_path) as online:
        console = Console(online, store, tmp_path)
        await console.start()
        try:
            yield console
        finally:
            await console.close()
