"""Billing: invoices by period, state and customer; one invoice as the statement ``occ bill show`` prints, with its
PDF and CSV; a dry-run preview of a bill run (nothing numbered, nothing billed); an out-of-turn invoice; a re-issue
after re-rating. The work is ``settlement.billing``'s; these handlers only read forms and show outcomes."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from urllib.parse import urlencode

from aiohttp import web

from occ.console.pages.common import ENGINE, books, field, forbidden, form, refused, user
from occ.console.render import page
from settlement.accounts import NotInBooks
from settlement.billing import document
from settlement.billing.issue import Outcome
from settlement.billing.reissue import reissue
from settlement.billing.run import BillingError, bill_now, preview_now, run
from settlement.listings import ListingError, invoice_page
from settlement.vocabulary import InvoiceState

routes = web.RouteTableDef()
log = logging.getLogger("occ.console.audit")
PAGE_SIZE = 50
FILTERS = ("account", "period", "state")


@routes.get("/invoices")
async def invoices(request: web.Request) -> web.Response:
    filters = {name: request.query.get(name, "").strip() for name in FILTERS}
    before = request.query.get("before", "")
    if before and not before.isdigit():
        return refused(request, "before must be an invoice id", status=400)
    try:
        rows, cursor = await books(request, invoice_page, **filters, before=int(before or 0), limit=PAGE_SIZE)
    except ListingError as error:
        return refused(request, str(error), status=400)
    next_page = f"/invoices?{urlencode({**filters, 'before': cursor})}" if cursor else ""
    return page(request, "invoices.html", rows=rows, filters=filters, states=list(InvoiceState), next_page=next_page,
                today=date.today().isoformat())  # fmt: skip


async def _found(request: web.Request, preview: bool) -> document.InvoiceView | web.Response:
    raw = request.match_info["invoice_id"]
    view = await books(request, document.load, invoice_id=int(raw), preview=preview) if raw.isdigit() else None
    return view if view is not None else refused(request, f"no {'preview' if preview else 'invoice'} {raw}", status=404)


@routes.get(r"/{kind:invoices|previews}/{invoice_id}")
async def invoice(request: web.Request) -> web.Response:
    """An invoice (or a preview) as the statement ``occ bill show`` prints."""
    view = await _found(request, preview=request.match_info["kind"] == "previews")
    if isinstance(view, web.Response):
        return view
    base = f"/{request.match_info['kind']}/{view.header['id']}"
    return page(request, "invoice.html", view=view, text=document.text(view), base=base)


def _download(view: document.InvoiceView, body: bytes, kind: str, extension: str) -> web.Response:
    name = f"{'preview' if view.preview else 'invoice'}-{view.header['id']}.{extension}"
    return web.Response(body=body, content_type=kind, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@routes.get(r"/{kind:invoices|previews}/{invoice_id}/pdf")
async def pdf(request: web.Request) -> web.Response:
    from settlement.billing.pdf import FontMissing, render

    view = await _found(request, preview=request.match_info["kind"] == "previews")
    if isinstance(view, web.Response):
        return view
    try:
        body = await asyncio.to_thread(render, view)
    except FontMissing as error:
        return refused(request, str(error), status=500)
    return _download(view, body, "application/pdf", "pdf")


@routes.get(r"/{kind:invoices|previews}/{invoice_id}/csv")
async def csv(request: web.Request) -> web.Response:
    view = await _found(request, preview=request.match_info["kind"] == "previews")
    if isinstance(view, web.Response):
        return view
    return _download(view, document.csv_text(view).encode(), "text/csv", "csv")


def _outcomes(request: web.Request, title: str, outcomes: list[Outcome], lines: list[str]) -> web.Response:
    return page(request, "billing_outcome.html", title=title, outcomes=outcomes, lines=lines)


@routes.post("/billing/run")
async def bill_run(request: web.Request) -> web.Response:
    """A dry-run preview (``preview`` = yes) of the bill run closing every period ended by ``date``."""
    if (refusal := forbidden(request, "billing")) is not None:
        return refusal
    values = await form(request)
    try:
        run_date = date.fromisoformat(field(values, "date"))
    except ValueError:
        return refused(request, "date must be YYYY-MM-DD", status=400)
    account = field(values, "account")
    try:
        report = await asyncio.to_thread(run, request.app[ENGINE], run_date, preview=True,
                                         accounts=[account] if account else None)  # fmt: skip
    except (BillingError, NotInBooks) as error:
        return refused(request, str(error), status=400)
    lines = [f"not billed: {item['id']} ({item['account']}) {item['status']}: {item['reason']}"
             for item in report.excepted]  # fmt: skip
    lines.append(f"dry run {report.run_id} ({report.run_date}): {report.issued} previews stored; nothing issued")
    return _outcomes(request, f"Bill run preview, periods ended by {run_date}", report.outcomes, lines)


@routes.post("/billing/now")
async def out_of_turn(request: web.Request) -> web.Response:
    """An out-of-turn invoice for ``account`` up to now, or (``dry_run``) its preview."""
    if (refusal := forbidden(request, "billing")) is not None:
        return refusal
    values = await form(request)
    account, dry_run = field(values, "account"), field(values, "dry_run") == "yes"
    try:
        outcome = await asyncio.to_thread(preview_now if dry_run else bill_now, request.app[ENGINE], account)
    except (BillingError, NotInBooks) as error:
        return refused(request, str(error), status=400)
    if not dry_run:
        log.info("out-of-turn invoice", extra={"actor": user(request).actor, "account": account,
                                               "invoice_id": outcome.invoice_id})  # fmt: skip
    title = f"{'Preview of an o' if dry_run else 'O'}ut-of-turn invoice for {account}"
    return _outcomes(request, title, [outcome], [])


@routes.post(r"/invoices/{invoice_id}/reissue")
async def reissue_invoice(request: web.Request) -> web.Response:
    if (refusal := forbidden(request, "billing")) is not None:
        return refusal
    raw = request.match_info["invoice_id"]
    if not raw.isdigit():
        return refused(request, f"no invoice {raw}", status=404)
    try:
        outcome = await asyncio.to_thread(reissue, request.app[ENGINE], int(raw))
    except BillingError as error:
        return refused(request, str(error), status=400)
    log.info("invoice re-issued", extra={"actor": user(request).actor, "invoice_id": int(raw),
                                         "new_invoice_id": outcome.invoice_id})  # fmt: skip
    return _outcomes(request, f"Re-issue of invoice {raw}", [outcome], [])
