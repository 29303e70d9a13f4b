"""What every page handler does: call the Admin API as the signed-in user, check a role, read a form, leave a notice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiDictProxy

from occ.console.admin import AdminError
from occ.console.context import ADMIN, ENGINE
from occ.console.render import refused
from occ.console.security import SIGNIN, SignIn, may
from settlement.store.database import reading

T = TypeVar("T")

__all__ = ["ENGINE", "AdminError", "admin_call", "field", "forbidden", "form", "notice", "refused", "user"]


def user(request: web.Request) -> SignIn:
    return request[SIGNIN]


async def admin_call(request: web.Request, method: str, message: Any) -> Any:
    """The Admin method's answer, called with the user's own token; :class:`AdminError` when refused or failed."""
    return await request.app[ADMIN].call(method, message, user(request).token)


async def books(request: web.Request, read: Callable[..., T], **options: Any) -> T:
    """``read(connection, **options)`` on a reading connection to the books, in a thread (SQL blocks)."""

    def run() -> T:
        with reading(request.app[ENGINE]) as connection:
            return read(connection, **options)

    return await asyncio.to_thread(run)


def forbidden(request: web.Request, action: str) -> web.Response | None:
    """A 403 page when the user's role may not take ``action``; None when it may."""
    role = user(request).role
    if may(role, action):
        return None
    return refused(request, f"Your role ({role}) may not do this ({action}).")


async def form(request: web.Request) -> MultiDictProxy[Any]:
    return await request.post()


def field(values: MultiDictProxy[Any], name: str) -> str:
    """A form field's text, stripped ('' when absent)."""
    return str(values.get(name, "")).strip()


def notice(request: web.Request, text: str) -> None:
    """Show ``text`` on the next page the user sees."""
    user(request).notices.append(text)
