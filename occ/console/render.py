"""Pages from Jinja2 templates (``templates/``, autoescaped), with the filters every page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from occ.console import charts
from occ.console.context import TEMPLATES
from occ.console.security import SIGNIN, may
from rating_engine.money import format_micros

NAVIGATION = [
    ("/", "Dashboard"),
    ("/accounts", "Accounts"),
    ("/sessions", "Sessions"),
    ("/xdrs", "Ledger and xDRs"),
    ("/tariffs", "Tariffs"),
    ("/invoices", "Billing"),
    ("/outbox", "ERP outbox"),
]


def utc(unix_ms: int | None) -> str:
    """``2026-01-05 09:00:00`` (UTC) from Unix milliseconds; ``-`` for none."""
    return datetime.fromtimestamp(unix_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if unix_ms else "-"


def account_path(account_id: str) -> str:
    """The account's page (every character of the id quoted, ``/`` too)."""
    return f"/accounts/{quote(account_id, safe='')}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("occ.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda micros: "-" if micros is None else format_micros(int(micros))
    env.filters["utc"] = utc
    env.filters["account_path"] = account_path
    env.globals.update(navigation=NAVIGATION, may=may, charts=charts)
    return env


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """The page ``template`` for the signed-in user (their notices shown once)."""
    signin = request[SIGNIN]
    notices, signin.notices = signin.notices, []
    html = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(signin=signin, csrf=signin.csrf, notices=notices, here=request.path, **context)
    )
    return web.Response(text=html, content_type="text/html", status=status)


def refused(request: web.Request, message: str, *, status: int = 403) -> web.Response:
    """A page saying why the request was refused (a role that may not, a bad field, an Admin error)."""
    return page(request, "refused.html", status=status, message=message)
