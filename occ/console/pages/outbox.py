"""The ERP outbox: every document with its state, attempts, last error and the middleware's number, newest first;
one document with its payload's summary and the operator actions on it; retry or release a REJECTED document (the
work and its rules are ``settlement.export.outbox_admin``'s, as for ``occ outbox retry|release``; the signed-in
user is recorded as the actor)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from occ.console.pages.common import ENGINE, field, forbidden, form, notice, refused, user
from occ.console.render import page
from occ.console.security import see_other
from settlement.export.outbox_admin import OutboxActionError, list_documents, release, retry, show_document
from settlement.vocabulary import OutboxState

routes = web.RouteTableDef()
PAGE_SIZE = 50


@routes.get("/outbox")
async def outbox(request: web.Request) -> web.Response:
    state, before = request.query.get("state", "").strip(), request.query.get("before", "")
    if before and not before.isdigit():
        return refused(request, "before must be a document id", status=400)
    try:
        found = await asyncio.to_thread(list_documents, request.app[ENGINE], state=state or None,
                                        before=int(before) if before else None, limit=PAGE_SIZE)  # fmt: skip
    except OutboxActionError as error:
        return refused(request, str(error), status=400)
    next_page = f"/outbox?{urlencode({'state': state, 'before': found.next_before})}" if found.next_before else ""
    return page(request, "outbox.html", rows=found.rows, state=state, states=list(OutboxState), next_page=next_page)


@routes.get(r"/outbox/{outbox_id:\d+}")
async def document(request: web.Request) -> web.Response:
    try:
        detail = await asyncio.to_thread(show_document, request.app[ENGINE], int(request.match_info["outbox_id"]))
    except OutboxActionError as error:
        return refused(request, str(error), status=404)
    return page(request, "outbox_document.html", detail=detail)


@routes.post(r"/outbox/{outbox_id:\d+}/{action:retry|release}")
async def act(request: web.Request) -> web.Response:
    if (refusal := forbidden(request, "outbox")) is not None:
        return refusal
    outbox_id, action = int(request.match_info["outbox_id"]), request.match_info["action"]
    reason = field(await form(request), "reason")
    call = retry if action == "retry" else release
    try:
        done = await asyncio.to_thread(call, request.app[ENGINE], outbox_id, actor=user(request).actor, reason=reason)
    except OutboxActionError as error:
        return refused(request, str(error), status=400)
    notice(request, f"Outbox document {done.outbox_id}: {done.state_before} → {done.state_after}.")
    return see_other(f"/outbox/{outbox_id}")
