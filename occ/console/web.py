"""The console's aiohttp application: its parts, routes and middlewares.

``make_app`` takes what the console stands on (the Admin client, the SQL store, the metrics URLs) so that a test can
build it around a real server of its own; ``occ.console.serve`` builds it from the server's settings.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from sqlalchemy import Engine

from occ.console import render
from occ.console.admin import Admin
from occ.console.context import (
    ADMIN,
    CORRECTIONS,
    ENGINE,
    METRICS,
    PREVIEW_ONLY,
    SIGNINS,
    TEMPLATES,
    UPLOAD_MAX_BYTES,
    BalanceCorrections,
)
from occ.console.dashboard import MetricsFeed
from occ.console.pages import accounts, billing, dashboard, outbox, rerate, sessions, signin, tariffs, xdrs
from occ.console.security import SignIns, guard

STATIC = Path(__file__).with_name("static")


def make_app(
    admin: Admin,
    engine: Engine,
    *,
    metrics_urls: list[str],
    secure: bool = False,
    idle_s: float = 3600.0,
    upload_max_bytes: int = 16 * 1024 * 1024,
    corrections: BalanceCorrections = PREVIEW_ONLY,
) -> web.Application:
    """The console. ``secure``: it is served over TLS (cookies are marked Secure); ``corrections``: where re-rating
    applies balance corrections (none: the console previews re-rating only)."""
    signins = SignIns(idle_s)
    app = web.Application(middlewares=[guard(signins, secure=secure)], client_max_size=upload_max_bytes + (1 << 20))
    app[SIGNINS] = signins
    app[ADMIN], app[ENGINE], app[TEMPLATES] = admin, engine, render.environment()
    app[METRICS], app[UPLOAD_MAX_BYTES], app[CORRECTIONS] = MetricsFeed(metrics_urls), upload_max_bytes, corrections
    for part in (signin, dashboard, accounts, sessions, xdrs, tariffs, rerate, billing, outbox):
        app.router.add_routes(part.routes)
    app.router.add_static("/static/", STATIC)
    app.on_cleanup.append(_close)
    return app


async def _close(app: web.Application) -> None:
    await app[METRICS].close()
    await app[ADMIN].close()
