"""Re-rating with the tariff last checked on the tariffs page: a preview (the dry run: every xDR whose price would
change, and each account's balance change; nothing written), then, on a second step, the run itself (corrections
written, invoices put up for re-issue, balance corrections applied: ``settlement.rerate_run``, as ``occ rerate``).

The apply step needs where balance corrections go (``context.BalanceCorrections``, given by ``occ console``; a
console built without it offers the preview only). The console itself never reaches Redis: settlement does, with it.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import msgspec
from aiohttp import web

from occ.console.context import CORRECTIONS
from occ.console.pages.common import ENGINE, field, forbidden, form, refused, user
from occ.console.render import page
from occ.v1 import admin_pb2 as pb
from rating_engine import CompiledTariff, TariffError, compile_tariff, load_tariff
from settlement.accounts import NotInBooks
from settlement.rerate import Plan, parse_time
from settlement.rerate_run import Corrected, RerateRun

routes = web.RouteTableDef()
log = logging.getLogger("occ.console.audit")
SHOWN = 500  # corrections listed on the preview page (the totals count them all)


class Window(msgspec.Struct, frozen=True):
    """What is re-rated: xDRs starting in [from_ms, to_ms), of ``account`` when given."""

    from_ms: int
    to_ms: int
    account: str


def _tariff(upload: bytes) -> CompiledTariff | str:
    """The tariff of the sign-in's last checked upload, compiled; a sentence when there is none to use."""
    if not upload:
        return "check a tariff on the tariffs page first: re-rating prices with it"
    request = pb.LoadTariffRequest.FromString(upload)
    if not request.files:
        return "re-rating needs the tariff's CSV files: check them uploaded as files, not as an archive"
    with tempfile.TemporaryDirectory(prefix="occ-console-tariff-") as directory:
        for name, content in request.files.items():
            (Path(directory) / Path(name).name).write_bytes(content)
        try:
            return compile_tariff(load_tariff(directory))
        except TariffError as error:
            return str(error)


def _window(values) -> Window | str:
    try:
        from_ms, to_ms = parse_time(field(values, "from")), parse_time(field(values, "to"))
    except ValueError as error:
        return f"from/to: {error}"
    if to_ms <= from_ms:
        return "to must be after from"
    return Window(from_ms, to_ms, field(values, "account"))


def _run(request: web.Request, tariff: CompiledTariff) -> RerateRun:
    target = request.app[CORRECTIONS]
    return RerateRun(request.app[ENGINE], tariff, redis_url=target.url or _no_redis, shards=target.shards,
                     cluster=target.cluster)  # fmt: skip


def _no_redis() -> str:
    raise RuntimeError("this console applies no balance corrections")


async def _prepare(request: web.Request) -> tuple[RerateRun, Window] | web.Response:
    if (refusal := forbidden(request, "rerate")) is not None:
        return refusal
    window = _window(await form(request))
    tariff = await asyncio.to_thread(_tariff, user(request).tariff_upload)
    if isinstance(window, str) or isinstance(tariff, str):
        return refused(request, window if isinstance(window, str) else str(tariff), status=400)
    return _run(request, tariff), window


@routes.post("/rerate/preview")
async def preview(request: web.Request) -> web.Response:
    prepared = await _prepare(request)
    if isinstance(prepared, web.Response):
        return prepared
    run, window = prepared
    try:
        plan = await asyncio.to_thread(run.plan, from_ms=window.from_ms, to_ms=window.to_ms,
                                       account=window.account or None)  # fmt: skip
    except NotInBooks as error:
        return refused(request, str(error), status=400)
    return await _shown(request, plan, window, can_apply=request.app[CORRECTIONS].available, done=None)


@routes.post("/rerate/apply")
async def apply(request: web.Request) -> web.Response:
    prepared = await _prepare(request)
    if isinstance(prepared, web.Response):
        return prepared
    run, window = prepared
    if not request.app[CORRECTIONS].available:
        return refused(request, "this console applies no re-rating (it was started without the server's Redis): "
                                "run occ rerate", status=400)  # fmt: skip

    def plan_and_correct():
        plan = run.plan(from_ms=window.from_ms, to_ms=window.to_ms, account=window.account or None)
        return plan, run.correct(plan)

    plan, done = await asyncio.to_thread(plan_and_correct)
    log.info("rerate applied", extra={"actor": user(request).actor, "run_id": done.run_id,
                                      "corrections": len(plan.corrections)})  # fmt: skip
    return await _shown(request, plan, window, can_apply=False, done=done)


async def _shown(request: web.Request, plan: Plan, window: Window, *, can_apply: bool, done: Corrected | None
                 ) -> web.Response:  # fmt: skip
    return page(request, "rerate.html", plan=plan, shown=plan.corrections[:SHOWN],
                totals=sorted(plan.by_account().items()), window=window, values=await form(request),
                can_apply=can_apply, done=done)  # fmt: skip
