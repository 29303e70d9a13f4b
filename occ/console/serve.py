"""``occ console``: the console for the server whose settings are given, on ``console_listen``.

It reaches the Admin API on ``admin_listen`` (TLS when the server uses TLS, trusting ``console_admin_ca_file`` or
the server's own certificate), reads the SQL store at ``db_url`` (default ``<data_dir>/occ.sqlite3``) and the
server's ``/metrics`` on ``metrics_port`` (plus ``console_metrics``). Over TLS it serves HTTPS with the server's
certificate and key; a non-loopback ``console_listen`` without TLS is refused by the settings, as for every
listener.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from sqlalchemy import Engine

from occ.console.admin import Admin
from occ.console.context import PREVIEW_ONLY, BalanceCorrections
from occ.console.web import make_app
from occ.settings import Settings, split_host_port


def metrics_urls(settings: Settings) -> list[str]:
    """The server's own ``/metrics`` (when it serves one) and the extra URLs of ``console_metrics``."""
    own = []
    if settings.metrics_port:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        own = [f"http://{f'[{host}]' if ':' in host else host}:{settings.metrics_port}/metrics"]
    return own + [url.strip() for url in settings.console_metrics.split(",") if url.strip()]


def build(settings: Settings, engine: Engine, corrections: BalanceCorrections) -> web.Application:
    """The console's application for ``settings``, on the settlement store ``engine``."""
    ca = settings.console_admin_ca_file or settings.tls_cert_file
    admin = Admin(settings.admin_listen, ca_file=Path(ca) if settings.tls else None)
    return make_app(admin, engine, metrics_urls=metrics_urls(settings), secure=settings.tls,
                    idle_s=settings.console_session_idle_s,
                    upload_max_bytes=settings.tariff_upload_max_bytes, corrections=corrections)  # fmt: skip


async def run(
    settings: Settings,
    engine: Engine,
    *,
    corrections: BalanceCorrections = PREVIEW_ONLY,
    ready: Callable[[str], None] = print,
) -> None:
    """Serve until SIGINT or SIGTERM (or cancelled); ``ready`` gets a line with the console's URL once it listens."""
    host, port = split_host_port(settings.console_listen)
    runner = web.AppRunner(build(settings, engine, corrections), access_log=None)
    await runner.setup()
    tls = None
    if settings.tls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await site.start()
        ready(f"occ console: {settings.console_url} (sign in with an Admin token)")
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
