"""Open sessions: every account's (those ending soonest first) or one account's, with their holds, deadlines and
request numbers; abort one with a reason (told to the switch, recorded with the signed-in user's name)."""

from __future__ import annotations

from aiohttp import web

from occ.console.pages.common import AdminError, admin_call, field, forbidden, form, notice, refused
from occ.console.render import page
from occ.console.security import see_other
from occ.v1 import admin_pb2 as pb

routes = web.RouteTableDef()
LIMIT = 200


@routes.get("/sessions")
async def sessions(request: web.Request) -> web.Response:
    account_id = request.query.get("account", "").strip()
    try:
        answer = await admin_call(
            request, "ListSessions", pb.ListSessionsRequest(account_id=account_id, limit=0 if account_id else LIMIT)
        )
    except AdminError as error:
        return refused(request, str(error), status=400)
    return page(request, "sessions.html", sessions=answer.sessions, account=account_id, limit=LIMIT)


@routes.post("/sessions/abort")
async def abort(request: web.Request) -> web.Response:
    if (refusal := forbidden(request, "session.abort")) is not None:
        return refusal
    values = await form(request)
    account_id, session_id, reason = field(values, "account_id"), field(values, "session_id"), field(values, "reason")
    if not reason:
        return refused(request, "reason is required: it is told to the switch and recorded", status=400)
    message = pb.AbortSessionRequest(account_id=account_id, session_id=session_id, reason=reason)
    try:
        answer = await admin_call(request, "AbortSession", message)
    except AdminError as error:
        return refused(request, str(error), status=400)
    if answer.aborted:
        notice(request, f"Session {session_id} of {account_id} aborted ({reason}); its cost so far stays charged.")
    else:
        notice(request, f"Session {session_id} of {account_id} was not open (or was aborted already): nothing done.")
    return see_other("/sessions")
