"""Tariffs: the one in force; a new one uploaded (its CSV files, or an archive of them) is checked by the server
(``CheckTariff``: what ``occ tariff check`` finds, with file, line and column), summarised against
the current one, and published on a second step. What was checked is kept with the sign-in until then, so what is
published is exactly what was checked."""

from __future__ import annotations

from aiohttp import web

from occ.console.pages.common import AdminError, admin_call, forbidden, form, notice, refused, user
from occ.console.render import page
from occ.console.security import see_other
from occ.v1 import admin_pb2 as pb
from rating_engine.summary import TariffSummary, changes

routes = web.RouteTableDef()


def summary(info: pb.TariffInfo) -> TariffSummary:
    return TariffSummary(tariff_hash=info.tariff_hash, name=info.name, currency=info.currency, timezone=info.timezone,
                         plans=tuple(info.plans), group_prefixes=dict(info.group_prefixes),
                         rate_names=tuple(info.rate_names), bands=tuple(info.bands))  # fmt: skip


async def _current(request: web.Request) -> pb.TariffInfo | None:
    try:
        return await admin_call(request, "GetTariff", pb.GetTariffRequest())
    except AdminError as error:
        if error.status == "FAILED_PRECONDITION":  # no tariff loaded yet
            return None
        raise


@routes.get("/tariffs")
async def tariffs(request: web.Request) -> web.Response:
    try:
        current = await _current(request)
    except AdminError as error:
        return refused(request, str(error), status=400)
    return page(request, "tariffs.html", current=current)


def _upload(values) -> pb.LoadTariffRequest | str:
    """The request of the form's files (``files``, several) or archive (``archive``); a sentence when neither."""
    archive = values.get("archive")
    files = [item for item in values.getall("files", []) if getattr(item, "filename", "")]
    if archive is not None and getattr(archive, "filename", "") and files:
        return "give the tariff's files or an archive of them, not both"
    if archive is not None and getattr(archive, "filename", ""):
        return pb.LoadTariffRequest(archive=archive.file.read())
    if files:
        return pb.LoadTariffRequest(files={item.filename.rsplit("/", 1)[-1]: item.file.read() for item in files})
    return "choose the tariff's CSV files, or an archive (.zip, .tar.gz …) of them"


@routes.post("/tariffs/check")
async def check(request: web.Request) -> web.Response:
    if (refusal := forbidden(request, "tariff.check")) is not None:
        return refusal
    upload = _upload(await form(request))
    if isinstance(upload, str):
        return refused(request, upload, status=400)
    try:
        current = await _current(request)
        answer = await admin_call(request, "CheckTariff", upload)
    except AdminError as error:
        return refused(request, str(error), status=400)
    user(request).tariff_upload = b"" if answer.findings else upload.SerializeToString()
    differences = []
    if not answer.findings:
        differences = changes(summary(current), summary(answer.tariff)) if current else ["no tariff is in force yet"]
    return page(request, "tariff_check.html", answer=answer, current=current, differences=differences)


@routes.post("/tariffs/publish")
async def publish(request: web.Request) -> web.Response:
    if (refusal := forbidden(request, "tariff.publish")) is not None:
        return refusal
    signin = user(request)
    if not signin.tariff_upload:
        return refused(request, "nothing checked to publish: upload the tariff and check it first", status=400)
    upload = pb.LoadTariffRequest.FromString(signin.tariff_upload)
    try:
        answer = await admin_call(request, "LoadTariff", upload)
    except AdminError as error:
        return refused(request, str(error), status=400)
    signin.tariff_upload = b""
    state = "published: it is in force now" if answer.changed else "was already in force"
    notice(request, f"Tariff {answer.tariff_hash[:12]} {state}.")
    return see_other("/tariffs")
