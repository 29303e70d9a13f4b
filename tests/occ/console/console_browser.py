"""A small browser for the console's tests: keeps cookies, follows redirects, and sends the CSRF token of the page
it last loaded with every form (as the console's own forms do)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Page:
    def __init__(self, status: int, text: str, headers: Any) -> None:
        self.status, self.text, self.headers = status, text, headers

    def hidden(self, name: str) -> str:
        """The value of the page's hidden field ``name``."""
        found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', self.text)
        assert found, f"no field {name} on the page"
        return found.group(1)


class Browser:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    async def _page(self, response: Any) -> Page:
        text = await response.text()
        found = CSRF.search(text)
        if found:
            self.csrf = found.group(1)
        return Page(response.status, text, response.headers)

    async def get(self, path: str) -> Page:
        async with self.client.get(path) as response:
            return await self._page(response)

    async def raw(self, path: str) -> tuple[int, bytes, Any]:
        async with self.client.get(path) as response:
            return response.status, await response.read(), response.headers

    async def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None) -> Page:
        fields = {"csrf": self.csrf if csrf is None else csrf, **(data or {})}
        async with self.client.post(path, data=fields) as response:
            return await self._page(response)
