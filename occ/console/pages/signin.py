"""Sign-in with an Admin bearer token (``occ token create``; on the server's machine ``data/admin-token``), and
sign-out. The token is checked by the Admin API itself (``WhoAmI``), which also says the user's name and role."""

from __future__ import annotations

from aiohttp import web

from occ.console.context import ADMIN, SIGNINS
from occ.console.pages.common import AdminError, field, form
from occ.console.render import page
from occ.console.security import NEW_SESSION_ID, SESSION_ID, see_other
from occ.v1 import admin_pb2 as pb

routes = web.RouteTableDef()


@routes.get("/sign-in")
async def sign_in_page(request: web.Request) -> web.Response:
    return page(request, "sign_in.html", error="")


@routes.post("/sign-in")
async def sign_in(request: web.Request) -> web.Response:
    token = field(await form(request), "token")
    if not token:
        return page(request, "sign_in.html", status=400, error="Give your Admin token.")
    try:
        who = await request.app[ADMIN].call("WhoAmI", pb.WhoAmIRequest(), token)
    except AdminError as error:
        message = "That token is not known, or was revoked." if error.status == "UNAUTHENTICATED" else str(error)
        return page(request, "sign_in.html", status=401, error=message)
    signins = request.app[SIGNINS]
    signins.drop(request[SESSION_ID])  # a new session id at sign-in: one planted before it is worth nothing
    new_id, signed_in = signins.new()
    signed_in.token, signed_in.name, signed_in.role, signed_in.actor = token, who.name, who.role, who.actor
    request[NEW_SESSION_ID] = new_id
    return see_other("/")


@routes.post("/sign-out")
async def sign_out(request: web.Request) -> web.Response:
    request.app[SIGNINS].drop(request[SESSION_ID])
    return see_other("/sign-in")
