"""The dashboard: the server's own metrics as charts (``occ.console.dashboard``), and the credit open sessions hold."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from occ.console.context import METRICS
from occ.console.pages.common import AdminError, admin_call
from occ.console.render import page
from occ.v1 import admin_pb2 as pb

routes = web.RouteTableDef()
SESSIONS_SUMMED = 1000


async def _figures(request: web.Request) -> dict[str, Any]:
    view = await request.app[METRICS].view()
    try:
        answer = await admin_call(request, "ListSessions", pb.ListSessionsRequest(limit=SESSIONS_SUMMED))
        held: int | None = sum(session.reserved_micros for session in answer.sessions)
        counted = len(answer.sessions)
    except AdminError:
        held, counted = None, 0
    return {"view": view, "reserved_micros": held, "sessions_counted": counted, "sessions_limit": SESSIONS_SUMMED}


@routes.get("/")
async def dashboard(request: web.Request) -> web.Response:
    return page(request, "dashboard.html", **await _figures(request))


@routes.get("/dashboard/live")
async def live(request: web.Request) -> web.Response:
    """The figures alone, for the page's script to swap in every few seconds."""
    return page(request, "dashboard_live.html", **await _figures(request))
