"""The typed keys of what the console keeps on its application and on each request."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jinja2
from aiohttp import web
from sqlalchemy import Engine

from occ.console.admin import Admin
from occ.console.dashboard import MetricsFeed
from occ.console.security import SignIns


class BalanceCorrections(NamedTuple):
    """Where a re-rating run applies its balance corrections: ``url`` gives the server's Redis URL to settlement's
    ``RerateRun`` (the console itself never opens it); None: the console previews re-rating only."""

    url: Callable[[], str] | None = None
    shards: int = 256
    cluster: bool = False

    @property
    def available(self) -> bool:
        return self.url is not None


PREVIEW_ONLY = BalanceCorrections()
ADMIN = web.AppKey("admin", Admin)
ENGINE = web.AppKey("engine", Engine)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
METRICS = web.AppKey("metrics", MetricsFeed)
UPLOAD_MAX_BYTES = web.AppKey("upload_max_bytes", int)
SIGNINS = web.AppKey("signins", SignIns)
CORRECTIONS = web.AppKey("corrections", BalanceCorrections)
