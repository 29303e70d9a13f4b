"""Ledger and xDRs: xDRs filtered by account, period and status, newest first, a page at a time; except one (it
stays off invoices) or restore it, with a reason, which is recorded with the signed-in user's name."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from occ.console.pages.common import ENGINE, books, field, forbidden, form, notice, refused, user
from occ.console.render import page
from occ.console.security import see_other
from settlement.listings import ListingError, xdr_page
from settlement.vocabulary import XdrStatus
from settlement.xdr_status import StatusError, except_xdr, restore_xdr

routes = web.RouteTableDef()
PAGE_SIZE = 50
FILTERS = ("account", "period", "status")


@routes.get("/xdrs")
async def xdrs(request: web.Request) -> web.Response:
    filters = {name: request.query.get(name, "").strip() for name in FILTERS}
    try:
        rows, cursor = await books(request, xdr_page, **filters, before=request.query.get("before", ""),
                                   limit=PAGE_SIZE)  # fmt: skip
    except ListingError as error:
        return refused(request, str(error), status=400)
    next_page = f"/xdrs?{urlencode({**filters, 'before': cursor})}" if cursor else ""
    back = f"/xdrs?{urlencode({**filters, 'before': request.query.get('before', '')})}"
    return page(request, "xdrs.html", rows=rows, filters=filters, statuses=list(XdrStatus), next_page=next_page,
                back=back)  # fmt: skip


@routes.post("/xdrs/status")
async def change_status(request: web.Request) -> web.Response:
    """``change`` = except or restore, of ``xdr_id``, with ``reason`` (and for a restore an optional ledger code)."""
    if (refusal := forbidden(request, "xdr.status")) is not None:
        return refusal
    values = await form(request)
    change, xdr_id, reason = field(values, "change"), field(values, "xdr_id"), field(values, "reason")
    if not reason:
        return refused(request, "reason is required: say why, it is recorded with the xDR", status=400)
    recorded = f"{reason} (by {user(request).actor})"
    engine = request.app[ENGINE]
    try:
        if change == "except":
            done = await asyncio.to_thread(except_xdr, engine, xdr_id, recorded)
        elif change == "restore":
            code = field(values, "ledger_code") or None
            done = await asyncio.to_thread(restore_xdr, engine, xdr_id, recorded, ledger_code=code)
        else:
            return refused(request, "change must be except or restore", status=400)
    except StatusError as error:
        return refused(request, str(error), status=400)
    notice(request, f"{done.id}: {done.before} → {done.after} ({done.reason})")
    back = field(values, "back")
    return see_other(back if back.startswith("/xdrs") else "/xdrs")
