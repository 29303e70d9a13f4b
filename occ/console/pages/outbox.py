"""The ERP outbox: every document with its state, attempts, last error and the middleware's number, newest first."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from occ.console.pages.common import ENGINE, refused
from occ.console.render import page
from settlement.listings import ListingError, outbox_page
from settlement.store.database import reading
from settlement.vocabulary import OutboxState

routes = web.RouteTableDef()
PAGE_SIZE = 50


def _list(engine, state: str, before: int):
    with reading(engine) as connection:
        return outbox_page(connection, state=state, before=before, limit=PAGE_SIZE)


@routes.get("/outbox")
async def outbox(request: web.Request) -> web.Response:
    state, before = request.query.get("state", "").strip(), request.query.get("before", "")
    if state and state not in list(OutboxState):
        return refused(request, f"state must be one of {', '.join(OutboxState)}", status=400)
    if before and not before.isdigit():
        return refused(request, "before must be a document id", status=400)
    try:
        rows, cursor = await asyncio.to_thread(_list, request.app[ENGINE], state, int(before or 0))
    except ListingError as error:
        return refused(request, str(error), status=400)
    next_page = f"/outbox?{urlencode({'state': state, 'before': cursor})}" if cursor else ""
    return page(request, "outbox.html", rows=rows, state=state, states=list(OutboxState), next_page=next_page)
